//! The verdict from the evidence and the rules, the evidence that decided it, and the result
//! a playbook reads: the content and its one-line summary.

use chrono::DateTime;
use serde_json::{Value, json};

use crate::evidence::{Evidence, WarninglistCheck, WarninglistHit};
use crate::rules::{TagVerdict, VerdictRules, threat_level_name};

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Malicious,
    Suspicious,
    Benign,
    Unknown,
}

/// What decided the verdict; indexes point into the evidence.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// A tag on one of the attributes.
    AttributeTag {
        verdict: TagVerdict,
        tag: String,
        attribute: usize,
    },
    /// A tag on the event of one of the attributes (which inherits it).
    EventTag {
        verdict: TagVerdict,
        tag: String,
        attribute: usize,
    },
    /// The value is on a warninglist of known-good infrastructure.
    Warninglist { hit: WarninglistHit },
    /// It was reported as a false positive, and not sighted since.
    FalsePositiveSightings,
    /// The threat level of one of its events.
    ThreatLevel {
        verdict: TagVerdict,
        event: usize,
        threat_level_id: u8,
    },
    /// MISP holds it, but no rule applies.
    NoRule,
    /// MISP holds no attribute with this value.
    NotFound,
}

/// A verdict with its score and reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    /// How bad, 0 to 100: see [`score`].
    pub score: u8,
    pub reason: Reason,
}

/// The longest event title a summary quotes.
const SUMMARY_INFO_CHARS: usize = 80;

/// Decides, in this order (XSOAR's precedence, by tag names, with known-good values added):
/// 1. a malicious tag on an attribute;
/// 2. known-good: the value on a benign warninglist, or reported as a false positive (at
///    least `verdict_false_positive_sightings` times, and not sighted since): benign, since
///    only a tag on the value itself outweighs a list of known-good infrastructure;
/// 3. a suspicious, then a benign tag on an attribute;
/// 4. a malicious, suspicious, then benign tag on an event;
/// 5. the threat level of an event (malicious, then suspicious levels);
/// 6. unknown, whether MISP holds the value or not.
///
/// Attributes are taken newest event first, tags in MISP's order.
pub fn decide(evidence: &Evidence, rules: &VerdictRules) -> Decision {
    if let Some(reason) = attribute_tag(evidence, rules, TagVerdict::Malicious) {
        return decision(reason);
    }
    if let Some(reason) = known_good(evidence, rules) {
        return decision(reason);
    }
    for wanted in [TagVerdict::Suspicious, TagVerdict::Benign] {
        if let Some(reason) = attribute_tag(evidence, rules, wanted) {
            return decision(reason);
        }
    }
    for wanted in [
        TagVerdict::Malicious,
        TagVerdict::Suspicious,
        TagVerdict::Benign,
    ] {
        if let Some(reason) = event_tag(evidence, rules, wanted) {
            return decision(reason);
        }
    }
    for wanted in [TagVerdict::Malicious, TagVerdict::Suspicious] {
        let found = evidence
            .events
            .iter()
            .enumerate()
            .find_map(|(index, event)| {
                let level = event.threat_level_id?;
                (rules.threat_level_verdict(level) == Some(wanted)).then_some((index, level))
            });
        if let Some((event, threat_level_id)) = found {
            return decision(Reason::ThreatLevel {
                verdict: wanted,
                event,
                threat_level_id,
            });
        }
    }
    if evidence.attributes.is_empty() {
        decision(Reason::NotFound)
    } else {
        decision(Reason::NoRule)
    }
}

/// Whether asking `warninglists/checkValue` could change the verdict: the search did not
/// tell, the rules want it, some list counts as benign, and no malicious tag on an
/// attribute would outweigh a hit anyway.
pub fn needs_warninglist_lookup(evidence: &Evidence, rules: &VerdictRules) -> bool {
    rules.check_warninglists
        && evidence.warninglists == WarninglistCheck::NotChecked
        && !rules.benign_warninglists.is_empty()
        && attribute_tag(evidence, rules, TagVerdict::Malicious).is_none()
}

/// The score of a reason: how bad MISP says the value is, 0 to 100. A tag on the value
/// itself weighs more than one on its event, which weighs more than a threat level;
/// unknown values MISP holds score 20, those it does not hold and benign ones 0.
pub fn score(reason: &Reason) -> u8 {
    match reason {
        Reason::AttributeTag { verdict, .. } => match verdict {
            TagVerdict::Malicious => 100,
            TagVerdict::Suspicious => 70,
            TagVerdict::Benign => 0,
        },
        Reason::EventTag { verdict, .. } => match verdict {
            TagVerdict::Malicious => 90,
            TagVerdict::Suspicious => 60,
            TagVerdict::Benign => 0,
        },
        Reason::ThreatLevel { verdict, .. } => match verdict {
            TagVerdict::Malicious => 80,
            TagVerdict::Suspicious => 50,
            TagVerdict::Benign => 0,
        },
        Reason::Warninglist { .. } | Reason::FalsePositiveSightings => 0,
        Reason::NoRule => 20,
        Reason::NotFound => 0,
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Malicious => "malicious",
            Verdict::Suspicious => "suspicious",
            Verdict::Benign => "benign",
            Verdict::Unknown => "unknown",
        }
    }
}

impl From<TagVerdict> for Verdict {
    fn from(verdict: TagVerdict) -> Verdict {
        match verdict {
            TagVerdict::Malicious => Verdict::Malicious,
            TagVerdict::Suspicious => Verdict::Suspicious,
            TagVerdict::Benign => Verdict::Benign,
        }
    }
}

/// The result's `content`: `{verdict, score, summary, value, types_searched, evidence,
/// attributes_seen, truncated, events}`.
pub fn content(
    value: &str,
    types_searched: Option<Vec<String>>,
    evidence: &Evidence,
    rules: &VerdictRules,
    decision: &Decision,
) -> Value {
    json!({
        "verdict": decision.verdict.as_str(),
        "score": decision.score,
        "summary": summary(evidence, decision),
        "value": value,
        "types_searched": types_searched,
        "evidence": {
            "decided_by": decided_by(evidence, decision),
            "attributes": evidence.attributes.iter().map(|attribute| json!({
                "id": attribute.id,
                "uuid": attribute.uuid,
                "type": attribute.attribute_type,
                "category": attribute.category,
                "value": attribute.value,
                "to_ids": attribute.to_ids,
                "event_id": attribute.event_id,
            })).collect::<Vec<_>>(),
            "tags": tags_json(evidence, rules),
            "threat_levels": evidence.events.iter().filter_map(|event| {
                let level = event.threat_level_id?;
                Some(json!({
                    "event_id": event.id,
                    "threat_level_id": level,
                    "threat_level": threat_level_name(level),
                    "verdict": rules.threat_level_verdict(level).map(TagVerdict::as_str),
                }))
            }).collect::<Vec<_>>(),
            "sightings": {
                "sightings": evidence.sightings.sightings,
                "last_seen": evidence.sightings.last_seen.and_then(iso_time),
                "false_positives": evidence.sightings.false_positives,
                "last_false_positive": evidence.sightings.last_false_positive.and_then(iso_time),
                "expirations": evidence.sightings.expirations,
            },
            "warninglists": warninglists_json(evidence, rules),
            "decay_scores": evidence.attributes.iter().flat_map(|attribute| &attribute.decay_scores).map(|score| json!({
                "attribute_id": score.attribute_id,
                "model": score.model,
                "score": score.score,
                "base_score": score.base_score,
                "decayed": score.decayed,
            })).collect::<Vec<_>>(),
        },
        "attributes_seen": evidence.attributes.len(),
        "truncated": evidence.truncated,
        "events": evidence.events.iter().map(|event| json!({
            "id": event.id,
            "uuid": event.uuid,
            "info": event.info,
            "date": event.date,
            "threat_level_id": event.threat_level_id,
            "threat_level": event.threat_level_id.and_then(threat_level_name),
            "published": event.published,
            "org": event.org,
            "tags": event.tags,
        })).collect::<Vec<_>>(),
    })
}

/// One line for an artifact's description or a note: the verdict, what decided it, the
/// sightings, the warninglists and the decay score, e.g. `MISP: malicious (score 100) — tag
/// misp-galaxy:malpedia="Emotet" on attribute 1.2.3.4 in event 12 "Emotet C2"; 3
/// sightings, last 2026-11-30; on no warninglist`.
pub fn summary(evidence: &Evidence, decision: &Decision) -> String {
    let mut parts = vec![format!(
        "MISP: {} (score {}) — {}",
        decision.verdict.as_str(),
        decision.score,
        reason_text(evidence, decision)
    )];
    if !evidence.attributes.is_empty() {
        parts.push(sightings_text(evidence));
    }
    if let Some(text) = warninglists_text(evidence, decision) {
        parts.push(text);
    }
    if let Some(text) = decay_text(evidence) {
        parts.push(text);
    }
    if evidence.truncated {
        parts.push(format!(
            "only the first {} attributes read (search_limit)",
            evidence.attributes.len()
        ));
    }
    parts.join("; ")
}

fn decision(reason: Reason) -> Decision {
    let verdict = match &reason {
        Reason::AttributeTag { verdict, .. }
        | Reason::EventTag { verdict, .. }
        | Reason::ThreatLevel { verdict, .. } => Verdict::from(*verdict),
        Reason::Warninglist { .. } | Reason::FalsePositiveSightings => Verdict::Benign,
        Reason::NoRule | Reason::NotFound => Verdict::Unknown,
    };
    Decision {
        verdict,
        score: score(&reason),
        reason,
    }
}

fn attribute_tag(evidence: &Evidence, rules: &VerdictRules, wanted: TagVerdict) -> Option<Reason> {
    evidence
        .attributes
        .iter()
        .enumerate()
        .find_map(|(index, attribute)| {
            let tag = attribute
                .own_tags
                .iter()
                .find(|tag| rules.tag_verdict(tag) == Some(wanted))?;
            Some(Reason::AttributeTag {
                verdict: wanted,
                tag: tag.clone(),
                attribute: index,
            })
        })
}

fn event_tag(evidence: &Evidence, rules: &VerdictRules, wanted: TagVerdict) -> Option<Reason> {
    evidence
        .attributes
        .iter()
        .enumerate()
        .find_map(|(index, attribute)| {
            let from_context = evidence
                .event(&attribute.event_id)
                .map(|event| event.tags.as_slice())
                .unwrap_or_default();
            let tag = attribute
                .event_tags
                .iter()
                .chain(from_context)
                .find(|tag| rules.tag_verdict(tag) == Some(wanted))?;
            Some(Reason::EventTag {
                verdict: wanted,
                tag: tag.clone(),
                attribute: index,
            })
        })
}

fn known_good(evidence: &Evidence, rules: &VerdictRules) -> Option<Reason> {
    if let Some(hit) = evidence
        .warninglist_hits()
        .iter()
        .find(|hit| rules.is_benign_warninglist(&hit.name))
    {
        return Some(Reason::Warninglist { hit: hit.clone() });
    }
    let sightings = &evidence.sightings;
    let threshold = rules.false_positive_sightings;
    let not_sighted_since = match (sightings.last_seen, sightings.last_false_positive) {
        (None, _) => true,
        (Some(seen), Some(reported)) => reported >= seen,
        (Some(_), None) => false,
    };
    (threshold > 0 && sightings.false_positives >= threshold && not_sighted_since)
        .then_some(Reason::FalsePositiveSightings)
}

fn decided_by(evidence: &Evidence, decision: &Decision) -> Value {
    let attribute_json = |index: usize| {
        evidence.attributes.get(index).map(|attribute| {
            json!({
                "id": attribute.id,
                "uuid": attribute.uuid,
                "type": attribute.attribute_type,
                "value": attribute.value,
            })
        })
    };
    let event_json = |id: &str| {
        evidence
            .event(id)
            .map(|event| json!({"id": event.id, "uuid": event.uuid, "info": event.info}))
    };
    match &decision.reason {
        Reason::AttributeTag {
            verdict,
            tag,
            attribute,
        }
        | Reason::EventTag {
            verdict,
            tag,
            attribute,
        } => {
            let rule = match decision.reason {
                Reason::AttributeTag { .. } => "attribute_tag",
                _ => "event_tag",
            };
            let event_id = evidence
                .attributes
                .get(*attribute)
                .map(|attribute| attribute.event_id.as_str())
                .unwrap_or_default();
            json!({
                "rule": rule,
                "verdict": verdict.as_str(),
                "tag": tag,
                "inherited": rule == "event_tag",
                "attribute": attribute_json(*attribute),
                "event": event_json(event_id),
            })
        }
        Reason::Warninglist { hit } => json!({
            "rule": "warninglist",
            "verdict": "benign",
            "warninglist": {"id": hit.id, "name": hit.name, "category": hit.category, "matched": hit.matched},
        }),
        Reason::FalsePositiveSightings => json!({
            "rule": "false_positive_sightings",
            "verdict": "benign",
            "false_positives": evidence.sightings.false_positives,
            "last_false_positive": evidence.sightings.last_false_positive.and_then(iso_time),
            "last_seen": evidence.sightings.last_seen.and_then(iso_time),
        }),
        Reason::ThreatLevel {
            verdict,
            event,
            threat_level_id,
        } => json!({
            "rule": "threat_level",
            "verdict": verdict.as_str(),
            "threat_level_id": threat_level_id,
            "threat_level": threat_level_name(*threat_level_id),
            "event": evidence.events.get(*event).map(|event| json!({"id": event.id, "uuid": event.uuid, "info": event.info})),
        }),
        Reason::NoRule => json!({"rule": "no_rule", "verdict": "unknown"}),
        Reason::NotFound => json!({"rule": "not_found", "verdict": "unknown"}),
    }
}

/// Each distinct tag with the verdict it calls for and where it was seen: on which
/// attributes (by id) and, inherited, on which events.
fn tags_json(evidence: &Evidence, rules: &VerdictRules) -> Vec<Value> {
    struct Seen<'a> {
        name: &'a str,
        on_attributes: Vec<&'a str>,
        on_events: Vec<&'a str>,
    }
    let mut seen: Vec<Seen> = Vec::new();
    for attribute in &evidence.attributes {
        for name in &attribute.own_tags {
            remember(&mut seen, name, Some(&attribute.id), None);
        }
        for name in &attribute.event_tags {
            remember(&mut seen, name, None, Some(&attribute.event_id));
        }
    }
    for event in &evidence.events {
        for name in &event.tags {
            remember(&mut seen, name, None, Some(&event.id));
        }
    }
    fn remember<'a>(
        seen: &mut Vec<Seen<'a>>,
        name: &'a str,
        attribute: Option<&'a str>,
        event: Option<&'a str>,
    ) {
        let index = match seen.iter().position(|known| known.name == name) {
            Some(index) => index,
            None => {
                seen.push(Seen {
                    name,
                    on_attributes: Vec::new(),
                    on_events: Vec::new(),
                });
                seen.len() - 1
            }
        };
        let entry = &mut seen[index];
        if let Some(id) = attribute
            && !entry.on_attributes.contains(&id)
        {
            entry.on_attributes.push(id);
        }
        if let Some(id) = event
            && !entry.on_events.contains(&id)
        {
            entry.on_events.push(id);
        }
    }
    seen.iter()
        .map(|tag| {
            json!({
                "name": tag.name,
                "verdict": rules.tag_verdict(tag.name).map(TagVerdict::as_str),
                "on_attributes": tag.on_attributes,
                "on_events": tag.on_events,
            })
        })
        .collect()
}

fn warninglists_json(evidence: &Evidence, rules: &VerdictRules) -> Value {
    let hits = |hits: &[WarninglistHit]| {
        hits.iter()
            .map(|hit| {
                json!({
                    "id": hit.id,
                    "name": hit.name,
                    "category": hit.category,
                    "matched": hit.matched,
                    "benign": rules.is_benign_warninglist(&hit.name),
                })
            })
            .collect::<Vec<_>>()
    };
    match &evidence.warninglists {
        WarninglistCheck::NotChecked => json!({"checked": "no", "hits": []}),
        WarninglistCheck::Failed(reason) => {
            json!({"checked": "failed", "error": reason, "hits": []})
        }
        WarninglistCheck::BySearch(found) => json!({"checked": "search", "hits": hits(found)}),
        WarninglistCheck::ByCheckValue(found) => {
            json!({"checked": "checkValue", "hits": hits(found)})
        }
    }
}

fn reason_text(evidence: &Evidence, decision: &Decision) -> String {
    let event_text = |id: &str| match evidence.event(id) {
        Some(event) if !event.info.is_empty() => {
            format!(
                "event {id} \"{}\"",
                one_line(&event.info, SUMMARY_INFO_CHARS)
            )
        }
        _ => format!("event {id}"),
    };
    match &decision.reason {
        Reason::AttributeTag { tag, attribute, .. } => {
            let attribute = &evidence.attributes[*attribute];
            format!(
                "tag {} on attribute {} in {}",
                one_line(tag, SUMMARY_INFO_CHARS),
                one_line(&attribute.value, SUMMARY_INFO_CHARS),
                event_text(&attribute.event_id)
            )
        }
        Reason::EventTag { tag, attribute, .. } => {
            let attribute = &evidence.attributes[*attribute];
            format!(
                "tag {} on {} (inherited by its attribute {})",
                one_line(tag, SUMMARY_INFO_CHARS),
                event_text(&attribute.event_id),
                one_line(&attribute.value, SUMMARY_INFO_CHARS)
            )
        }
        Reason::Warninglist { hit } => match &hit.matched {
            Some(matched) if !matched.is_empty() => format!(
                "on warninglist \"{}\" (entry {})",
                one_line(&hit.name, SUMMARY_INFO_CHARS),
                one_line(matched, SUMMARY_INFO_CHARS)
            ),
            _ => format!(
                "on warninglist \"{}\"",
                one_line(&hit.name, SUMMARY_INFO_CHARS)
            ),
        },
        Reason::FalsePositiveSightings => {
            let count = evidence.sightings.false_positives;
            let last = evidence
                .sightings
                .last_false_positive
                .and_then(iso_date)
                .map(|date| format!(", the last on {date}"))
                .unwrap_or_default();
            format!(
                "reported as a false positive {count} {}{last}, not sighted since",
                plural(count, "time", "times")
            )
        }
        Reason::ThreatLevel {
            event,
            threat_level_id,
            ..
        } => {
            let id = evidence
                .events
                .get(*event)
                .map(|event| event.id.as_str())
                .unwrap_or_default();
            format!(
                "{} has threat level {}",
                event_text(id),
                threat_level_name(*threat_level_id).unwrap_or("?")
            )
        }
        Reason::NoRule => {
            let events = evidence.events.len();
            format!(
                "in {events} {}, but no tag or threat level decides",
                plural(events as u64, "event", "events")
            )
        }
        Reason::NotFound => "in no MISP event".to_string(),
    }
}

fn sightings_text(evidence: &Evidence) -> String {
    let counts = &evidence.sightings;
    let mut text = match (counts.sightings, counts.last_seen.and_then(iso_date)) {
        (0, _) => "no sightings".to_string(),
        (count, Some(last)) => format!(
            "{count} {}, last {last}",
            plural(count, "sighting", "sightings")
        ),
        (count, None) => format!("{count} {}", plural(count, "sighting", "sightings")),
    };
    if counts.false_positives > 0 {
        let count = counts.false_positives;
        text.push_str(&format!(
            ", {count} {}",
            plural(count, "false positive", "false positives")
        ));
        if let Some(last) = counts.last_false_positive.and_then(iso_date) {
            text.push_str(&format!(" (last {last})"));
        }
    }
    text
}

fn warninglists_text(evidence: &Evidence, decision: &Decision) -> Option<String> {
    let hits = evidence.warninglist_hits();
    let (said, others): (Vec<&WarninglistHit>, Vec<&WarninglistHit>) = match &decision.reason {
        Reason::Warninglist { hit } => (
            vec![hit],
            hits.iter().filter(|other| other.id != hit.id).collect(),
        ),
        _ => (Vec::new(), hits.iter().collect()),
    };
    match &evidence.warninglists {
        WarninglistCheck::NotChecked => Some("warninglists not checked".to_string()),
        WarninglistCheck::Failed(_) => Some("warninglists could not be checked".to_string()),
        WarninglistCheck::BySearch(_) | WarninglistCheck::ByCheckValue(_) => {
            match (said.is_empty(), others.as_slice()) {
                (true, []) => Some("on no warninglist".to_string()),
                (false, []) => None,
                (first_said, [only]) => Some(format!(
                    "{}on warninglist \"{}\"",
                    if first_said { "" } else { "also " },
                    one_line(&only.name, SUMMARY_INFO_CHARS)
                )),
                (first_said, [first, rest @ ..]) => Some(format!(
                    "{}on warninglist \"{}\" and {} more",
                    if first_said { "" } else { "also " },
                    one_line(&first.name, SUMMARY_INFO_CHARS),
                    rest.len()
                )),
            }
        }
    }
}

/// The best decay score MISP reported, and whether every model says the value decayed.
fn decay_text(evidence: &Evidence) -> Option<String> {
    let scores: Vec<_> = evidence
        .attributes
        .iter()
        .flat_map(|attribute| &attribute.decay_scores)
        .collect();
    let best = scores.iter().max_by(|a, b| a.score.total_cmp(&b.score))?;
    let decayed = if scores.iter().all(|score| score.decayed) {
        ", decayed"
    } else {
        ""
    };
    Some(format!(
        "decay score {:.0} ({}){decayed}",
        best.score,
        one_line(&best.model, SUMMARY_INFO_CHARS)
    ))
}

fn plural<'a>(count: u64, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

/// `text` on one line (control characters as spaces), cut to `most` characters with `…`.
fn one_line(text: &str, most: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= most {
        return flat;
    }
    let cut: String = flat.chars().take(most.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// Epoch seconds as `2026-11-30T12:00:00Z`.
fn iso_time(seconds: i64) -> Option<String> {
    DateTime::from_timestamp(seconds, 0).map(|time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Epoch seconds as `2026-11-30` (UTC).
fn iso_date(seconds: i64) -> Option<String> {
    DateTime::from_timestamp(seconds, 0).map(|time| time.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VALUE: &str = "198.51.100.7";

    /// An attribute holding [`VALUE`] in event `event_id`, with `own` tags, its event's
    /// `event_tags`, `threat_level` and sightings.
    fn attribute(event_id: u32, own: &[&str], event_tags: &[&str], threat_level: u8) -> Value {
        let mut tags: Vec<Value> = own.iter().map(|name| json!({"name": name})).collect();
        tags.extend(
            event_tags
                .iter()
                .map(|name| json!({"name": name, "inherited": 1})),
        );
        json!({
            "id": (event_id * 10).to_string(), "event_id": event_id.to_string(),
            "type": "ip-dst", "value": VALUE, "to_ids": true, "uuid": format!("uuid-{event_id}"),
            "Tag": tags,
            "Event": {"id": event_id.to_string(), "info": format!("event {event_id} report"),
                      "threat_level_id": threat_level.to_string(),
                      "Tag": event_tags.iter().map(|name| json!({"name": name})).collect::<Vec<_>>()},
        })
    }

    fn evidence(attributes: Vec<Value>) -> Evidence {
        Evidence::from_search(&json!({"Attribute": attributes}), VALUE, 100)
    }

    fn verdict_of(attributes: Vec<Value>) -> (Verdict, u8, Value) {
        let evidence = evidence(attributes);
        let decision = decide(&evidence, &VerdictRules::defaults());
        (
            decision.verdict,
            decision.score,
            decided_by(&evidence, &decision),
        )
    }

    const MALWARE: &str = r#"misp-galaxy:malpedia="Emotet""#;
    const ACTOR: &str = r#"misp-galaxy:threat-actor="Sofacy""#;
    const GOOD: &str = r#"ioc:artifact-state="not-malicious""#;

    #[test]
    fn an_attributes_malicious_tag_wins_over_everything() {
        let (verdict, score, by) = verdict_of(vec![
            attribute(20, &[ACTOR, GOOD], &[], 4),
            attribute(12, &[MALWARE], &[GOOD], 4),
        ]);
        assert_eq!((verdict, score), (Verdict::Malicious, 100));
        assert_eq!(by["rule"], "attribute_tag");
        assert_eq!(by["tag"], MALWARE);
        assert_eq!(by["inherited"], false);
        assert_eq!(by["attribute"]["id"], "120");
        assert_eq!(by["event"]["info"], "event 12 report");
    }

    #[test]
    fn attribute_tags_come_before_event_tags_as_in_xsoar() {
        let (verdict, score, by) = verdict_of(vec![attribute(12, &[ACTOR], &[MALWARE], 1)]);
        assert_eq!((verdict, score), (Verdict::Suspicious, 70));
        assert_eq!(by["rule"], "attribute_tag");
        let (verdict, _, _) = verdict_of(vec![attribute(12, &[GOOD], &[MALWARE], 1)]);
        assert_eq!(verdict, Verdict::Benign);
    }

    #[test]
    fn event_tags_decide_next_and_say_they_are_inherited() {
        let (verdict, score, by) = verdict_of(vec![attribute(12, &["tlp:red"], &[MALWARE], 3)]);
        assert_eq!((verdict, score), (Verdict::Malicious, 90));
        assert_eq!(by["rule"], "event_tag");
        assert_eq!(by["inherited"], true);
        assert_eq!(by["event"]["id"], "12");
        let (verdict, score, _) = verdict_of(vec![attribute(12, &[], &[ACTOR, GOOD], 3)]);
        assert_eq!((verdict, score), (Verdict::Suspicious, 60));
    }

    #[test]
    fn threat_levels_decide_when_no_tag_does() {
        let (verdict, score, by) = verdict_of(vec![
            attribute(20, &["tlp:white"], &[], 2),
            attribute(12, &[], &[], 1),
        ]);
        assert_eq!((verdict, score), (Verdict::Malicious, 80));
        assert_eq!(by["rule"], "threat_level");
        assert_eq!(by["threat_level"], "High");
        assert_eq!(by["event"]["id"], "12");
        let (verdict, score, _) = verdict_of(vec![attribute(20, &[], &[], 2)]);
        assert_eq!((verdict, score), (Verdict::Suspicious, 50));
    }

    #[test]
    fn held_without_a_deciding_rule_or_not_held_at_all_is_unknown() {
        let (verdict, score, by) = verdict_of(vec![attribute(20, &["tlp:white"], &[], 3)]);
        assert_eq!((verdict, score), (Verdict::Unknown, 20));
        assert_eq!(by["rule"], "no_rule");
        let (verdict, score, by) = verdict_of(vec![]);
        assert_eq!((verdict, score), (Verdict::Unknown, 0));
        assert_eq!(by["rule"], "not_found");
    }

    fn on_resolver_list(mut attribute: Value) -> Value {
        attribute["warnings"] = json!([{"match": "198.51.100.0/24", "value": VALUE,
            "warninglist_id": "4", "warninglist_name": "List of known test networks",
            "warninglist_category": "false_positive"}]);
        attribute
    }

    #[test]
    fn a_warninglist_makes_it_benign_unless_its_attribute_is_tagged_malicious() {
        let (verdict, score, by) = verdict_of(vec![on_resolver_list(attribute(
            12,
            &[ACTOR],
            &[MALWARE],
            1,
        ))]);
        assert_eq!((verdict, score), (Verdict::Benign, 0));
        assert_eq!(by["rule"], "warninglist");
        assert_eq!(by["warninglist"]["name"], "List of known test networks");
        let (verdict, _, _) = verdict_of(vec![on_resolver_list(attribute(12, &[MALWARE], &[], 4))]);
        assert_eq!(verdict, Verdict::Malicious);
    }

    #[test]
    fn only_warninglists_the_rules_name_are_benign() {
        let evidence = evidence(vec![on_resolver_list(attribute(12, &[], &[], 4))]);
        let mut rules = VerdictRules::defaults();
        rules.benign_warninglists =
            crate::rules::parse_patterns("List of known IPv4 public DNS resolvers").expect("valid");
        let decision = decide(&evidence, &rules);
        assert_eq!(decision.verdict, Verdict::Unknown);
        let content = content(VALUE, None, &evidence, &rules, &decision);
        assert_eq!(
            content["evidence"]["warninglists"]["hits"][0]["benign"],
            false
        );
    }

    fn with_sightings(mut attribute: Value, rows: Value) -> Value {
        attribute["Sighting"] = rows;
        attribute
    }

    #[test]
    fn false_positive_reports_make_it_benign_until_it_is_sighted_again() {
        let reported = with_sightings(
            attribute(12, &[ACTOR], &[], 1),
            json!([{"type": "0", "date_sighting": "1700000000"},
                   {"type": "1", "date_sighting": "1700000500"}]),
        );
        let (verdict, _, by) = verdict_of(vec![reported]);
        assert_eq!(verdict, Verdict::Benign);
        assert_eq!(by["rule"], "false_positive_sightings");
        assert_eq!(by["false_positives"], 1);
        let sighted_since = with_sightings(
            attribute(12, &[ACTOR], &[], 1),
            json!([{"type": "1", "date_sighting": "1700000000"},
                   {"type": "0", "date_sighting": "1700000500"}]),
        );
        assert_eq!(verdict_of(vec![sighted_since]).0, Verdict::Suspicious);
        let mut rules = VerdictRules::defaults();
        rules.false_positive_sightings = 0;
        let reported = evidence(vec![with_sightings(
            attribute(12, &[], &[], 1),
            json!([{"type": "1", "date_sighting": "1700000000"}]),
        )]);
        assert_eq!(decide(&reported, &rules).verdict, Verdict::Malicious);
    }

    #[test]
    fn the_warninglist_lookup_is_asked_only_when_it_could_matter() {
        let rules = VerdictRules::defaults();
        let not_ids = |mut attribute: Value| {
            attribute["to_ids"] = json!(false);
            attribute
        };
        assert!(needs_warninglist_lookup(&evidence(vec![]), &rules));
        assert!(needs_warninglist_lookup(
            &evidence(vec![not_ids(attribute(12, &[ACTOR], &[], 1))]),
            &rules
        ));
        // A malicious tag on an attribute outweighs any list.
        assert!(!needs_warninglist_lookup(
            &evidence(vec![not_ids(attribute(12, &[MALWARE], &[], 1))]),
            &rules
        ));
        // The search looked up an attribute with to_ids already.
        assert!(!needs_warninglist_lookup(
            &evidence(vec![attribute(12, &[], &[], 1)]),
            &rules
        ));
        let mut off = VerdictRules::defaults();
        off.check_warninglists = false;
        assert!(!needs_warninglist_lookup(&evidence(vec![]), &off));
    }

    #[test]
    fn the_summary_names_the_deciding_evidence_sightings_and_warninglists() {
        let tagged = with_sightings(
            attribute(12, &[MALWARE], &["tlp:white"], 2),
            json!([{"type": "0", "date_sighting": "1796000000"},
                   {"type": "0", "date_sighting": "1796036000"},
                   {"type": "0", "date_sighting": "1790000000"}]),
        );
        let evidence = evidence(vec![tagged]);
        let decision = decide(&evidence, &VerdictRules::defaults());
        assert_eq!(
            summary(&evidence, &decision),
            r#"MISP: malicious (score 100) — tag misp-galaxy:malpedia="Emotet" on attribute 198.51.100.7 in event 12 "event 12 report"; 3 sightings, last 2026-11-30; on no warninglist"#
        );
        let nothing = Evidence::default();
        let decision = decide(&nothing, &VerdictRules::defaults());
        assert_eq!(
            summary(&nothing, &decision),
            "MISP: unknown (score 0) — in no MISP event; warninglists not checked"
        );
    }

    #[test]
    fn the_summary_of_a_benign_value_names_its_list_and_stays_on_one_line() {
        let mut listed = on_resolver_list(attribute(12, &[], &[], 4));
        listed["Event"]["info"] = json!("line one\nline two");
        listed["decay_score"] = json!([{"score": 12.4, "decayed": true,
            "DecayingModel": {"id": "1", "name": "NIDS Simple Decaying Model"}}]);
        let evidence = evidence(vec![listed]);
        let decision = decide(&evidence, &VerdictRules::defaults());
        let text = summary(&evidence, &decision);
        assert_eq!(
            text,
            r#"MISP: benign (score 0) — on warninglist "List of known test networks" (entry 198.51.100.0/24); no sightings; decay score 12 (NIDS Simple Decaying Model), decayed"#
        );
        assert_eq!(one_line("a\nb", 80), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
    }

    #[test]
    fn the_content_carries_the_evidence_and_the_events() {
        let evidence = evidence(vec![
            attribute(20, &["tlp:white"], &[ACTOR], 2),
            attribute(12, &[], &[ACTOR], 1),
        ]);
        let rules = VerdictRules::defaults();
        let decision = decide(&evidence, &rules);
        let content = content(
            VALUE,
            Some(vec!["ip-dst".into()]),
            &evidence,
            &rules,
            &decision,
        );
        assert_eq!(content["verdict"], "suspicious");
        assert_eq!(content["score"], 60);
        assert_eq!(content["attributes_seen"], 2);
        assert_eq!(content["types_searched"], json!(["ip-dst"]));
        assert_eq!(content["truncated"], false);
        let events: Vec<&str> = content["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|event| event["id"].as_str())
            .collect();
        assert_eq!(events, vec!["20", "12"]);
        assert_eq!(content["events"][1]["threat_level"], "High");
        let tags = &content["evidence"]["tags"];
        assert_eq!(
            tags[0],
            json!({"name": "tlp:white", "verdict": null, "on_attributes": ["200"], "on_events": []})
        );
        assert_eq!(
            tags[1],
            json!({"name": ACTOR, "verdict": "suspicious", "on_attributes": [], "on_events": ["20", "12"]})
        );
        assert_eq!(
            content["evidence"]["threat_levels"][1],
            json!({"event_id": "12", "threat_level_id": 1, "threat_level": "High", "verdict": "malicious"})
        );
        assert_eq!(
            content["evidence"]["warninglists"],
            json!({"checked": "search", "hits": []})
        );
        assert_eq!(content["evidence"]["sightings"]["sightings"], 0);
    }
}
