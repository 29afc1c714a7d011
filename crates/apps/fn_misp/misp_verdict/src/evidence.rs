//! What MISP said about a value, read out of one `attributes/restSearch` answer (and, when
//! asked, a `warninglists/checkValue` answer): the attributes holding it, their own and
//! inherited tags, their events, sightings, warninglist hits and decay scores.

use std::collections::BTreeMap;

use serde_json::Value;

/// Everything a verdict is decided on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evidence {
    /// The attributes holding exactly the value, newest event first.
    pub attributes: Vec<AttributeSeen>,
    /// Their events, newest first.
    pub events: Vec<EventSeen>,
    /// Every attribute's sightings together.
    pub sightings: SightingCounts,
    pub warninglists: WarninglistCheck,
    /// The search returned as many attributes as it asked for: there may be more.
    pub truncated: bool,
}

/// One attribute holding the value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttributeSeen {
    pub id: String,
    pub uuid: String,
    pub attribute_type: String,
    pub category: String,
    pub value: String,
    pub to_ids: bool,
    pub event_id: String,
    /// Tags on the attribute itself.
    pub own_tags: Vec<String>,
    /// Tags it inherits from its event.
    pub event_tags: Vec<String>,
    pub sightings: SightingCounts,
    pub warnings: Vec<WarninglistHit>,
    pub decay_scores: Vec<DecayScore>,
}

/// One event holding the value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventSeen {
    pub id: String,
    pub uuid: Option<String>,
    pub info: String,
    /// 1 High, 2 Medium, 3 Low, 4 Undefined.
    pub threat_level_id: Option<u8>,
    pub date: Option<String>,
    pub published: Option<bool>,
    /// The creating organisation.
    pub org: Option<String>,
    pub tags: Vec<String>,
}

/// Sightings by MISP's types: 0 sighting, 1 false positive, 2 expiration; times in epoch
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SightingCounts {
    pub sightings: u64,
    pub false_positives: u64,
    pub expirations: u64,
    pub last_seen: Option<i64>,
    pub last_false_positive: Option<i64>,
}

/// One warninglist the value is on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WarninglistHit {
    pub id: String,
    pub name: String,
    /// `false_positive` or `known`; `checkValue` does not say.
    pub category: Option<String>,
    /// The list entry that matched (`8.8.8.0/24` for 8.8.8.8).
    pub matched: Option<String>,
}

/// One decay score MISP computed for an attribute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecayScore {
    pub attribute_id: String,
    pub model: String,
    pub score: f64,
    pub base_score: Option<f64>,
    pub decayed: bool,
}

/// What is known of the value and MISP's warninglists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WarninglistCheck {
    /// Nobody looked: MISP checks only attributes with `to_ids` when searching (unless its
    /// `warning_for_all` is set), and `checkValue` was not asked.
    #[default]
    NotChecked,
    /// `checkValue` was asked and failed.
    Failed(String),
    /// The search looked up an attribute with `to_ids`: these are the hits (maybe none).
    BySearch(Vec<WarninglistHit>),
    /// `warninglists/checkValue` answered: these are the hits (maybe none).
    ByCheckValue(Vec<WarninglistHit>),
}

impl Evidence {
    /// Reads `{"Attribute": [...]}` (restSearch's answer, `response` unwrapped), keeping the
    /// attributes whose value is `wanted` (either half of a composite), case aside: MISP's
    /// search reads `%` as a wildcard and compares without regard to case. `asked` is the
    /// search's `limit`.
    pub fn from_search(answer: &Value, wanted: &str, asked: usize) -> Evidence {
        let listed: Vec<&Value> = list(answer, "Attribute").collect();
        let truncated = listed.len() >= asked;
        let mut attributes = Vec::new();
        let mut events: BTreeMap<(i64, String), EventSeen> = BTreeMap::new();
        for raw in listed {
            if !holds_value(raw, wanted) {
                continue;
            }
            let attribute = AttributeSeen::read(raw);
            let event = EventSeen::read(raw, &attribute);
            events
                .entry((-number(&event.id).unwrap_or(0), event.id.clone()))
                .or_insert(event);
            attributes.push(attribute);
        }
        attributes.sort_by_key(|attribute| {
            (
                -number(&attribute.event_id).unwrap_or(0),
                number(&attribute.id).unwrap_or(0),
            )
        });
        let sightings = attributes
            .iter()
            .fold(SightingCounts::default(), |total, attribute| {
                total.plus(&attribute.sightings)
            });
        let warninglists = if attributes.iter().any(|attribute| attribute.to_ids)
            || attributes
                .iter()
                .any(|attribute| !attribute.warnings.is_empty())
        {
            let mut hits: Vec<WarninglistHit> = Vec::new();
            for hit in attributes.iter().flat_map(|attribute| &attribute.warnings) {
                if !hits.iter().any(|known| known.id == hit.id) {
                    hits.push(hit.clone());
                }
            }
            WarninglistCheck::BySearch(hits)
        } else {
            WarninglistCheck::NotChecked
        };
        Evidence {
            attributes,
            events: events.into_values().collect(),
            sightings,
            warninglists,
            truncated,
        }
    }

    /// The event with id `id`.
    pub fn event(&self, id: &str) -> Option<&EventSeen> {
        self.events.iter().find(|event| event.id == id)
    }

    /// The warninglist hits known, from either source.
    pub fn warninglist_hits(&self) -> &[WarninglistHit] {
        match &self.warninglists {
            WarninglistCheck::BySearch(hits) | WarninglistCheck::ByCheckValue(hits) => hits,
            WarninglistCheck::NotChecked | WarninglistCheck::Failed(_) => &[],
        }
    }
}

/// The hits in a `warninglists/checkValue` answer (`{value: [{id, name, matched}]}`, or `[]`
/// when the value is on no list).
pub fn check_value_hits(answer: &Value) -> Vec<WarninglistHit> {
    let Value::Object(by_value) = answer else {
        return Vec::new();
    };
    by_value
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .map(|hit| WarninglistHit {
            id: text(hit.get("id")),
            name: text(hit.get("name")),
            category: None,
            matched: optional_text(hit.get("matched")),
        })
        .collect()
}

impl AttributeSeen {
    fn read(raw: &Value) -> AttributeSeen {
        let mut own_tags = Vec::new();
        let mut event_tags = Vec::new();
        for tag in list(raw, "Tag") {
            let Some(name) = tag.get("name").and_then(Value::as_str) else {
                continue;
            };
            let target = if tag.get("inherited").is_some_and(truthy) {
                &mut event_tags
            } else {
                &mut own_tags
            };
            if !target.iter().any(|known| known == name) {
                target.push(name.to_string());
            }
        }
        let id = text(raw.get("id"));
        let warnings = list(raw, "warnings")
            .map(|warning| WarninglistHit {
                id: text(warning.get("warninglist_id")),
                name: text(warning.get("warninglist_name")),
                category: optional_text(warning.get("warninglist_category")),
                matched: optional_text(warning.get("match")),
            })
            .collect();
        let decay_scores = list(raw, "decay_score")
            .map(|score| DecayScore {
                attribute_id: id.clone(),
                model: text(score.pointer("/DecayingModel/name")),
                score: float(score.get("score")).unwrap_or(0.0),
                base_score: float(score.get("base_score")),
                decayed: score.get("decayed").is_some_and(truthy),
            })
            .collect();
        AttributeSeen {
            uuid: text(raw.get("uuid")),
            attribute_type: text(raw.get("type")),
            category: text(raw.get("category")),
            value: text(raw.get("value")),
            to_ids: raw.get("to_ids").is_some_and(truthy),
            event_id: text(raw.get("event_id")),
            own_tags,
            event_tags,
            sightings: SightingCounts::of(list(raw, "Sighting")),
            warnings,
            decay_scores,
            id,
        }
    }
}

impl EventSeen {
    /// The attribute's `Event` (its context); the inherited tags stand in for the event's
    /// when the context has none.
    fn read(raw: &Value, attribute: &AttributeSeen) -> EventSeen {
        let event = raw.get("Event").unwrap_or(&Value::Null);
        let mut tags: Vec<String> = list(event, "Tag")
            .filter_map(|tag| tag.get("name").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        for inherited in &attribute.event_tags {
            if !tags.contains(inherited) {
                tags.push(inherited.clone());
            }
        }
        let id = match text(event.get("id")) {
            id if id.is_empty() => attribute.event_id.clone(),
            id => id,
        };
        EventSeen {
            id,
            uuid: optional_text(event.get("uuid")),
            info: text(event.get("info")),
            threat_level_id: event
                .get("threat_level_id")
                .and_then(number_of)
                .and_then(|level| u8::try_from(level).ok())
                .filter(|level| (1..=4).contains(level)),
            date: optional_text(event.get("date")),
            published: event.get("published").map(truthy),
            org: event
                .pointer("/Orgc/name")
                .and_then(Value::as_str)
                .map(str::to_string),
            tags,
        }
    }
}

impl SightingCounts {
    fn of<'a>(rows: impl Iterator<Item = &'a Value>) -> SightingCounts {
        let mut counts = SightingCounts::default();
        for row in rows {
            // A row may be bare or wrapped as `{"Sighting": …}` (listSightings' form).
            let row = row.get("Sighting").unwrap_or(row);
            let date = row.get("date_sighting").and_then(number_of);
            match row.get("type").and_then(number_of).unwrap_or(0) {
                0 => {
                    counts.sightings += 1;
                    counts.last_seen = counts.last_seen.max(date);
                }
                1 => {
                    counts.false_positives += 1;
                    counts.last_false_positive = counts.last_false_positive.max(date);
                }
                2 => counts.expirations += 1,
                _ => {}
            }
        }
        counts
    }

    fn plus(self, other: &SightingCounts) -> SightingCounts {
        SightingCounts {
            sightings: self.sightings + other.sightings,
            false_positives: self.false_positives + other.false_positives,
            expirations: self.expirations + other.expirations,
            last_seen: self.last_seen.max(other.last_seen),
            last_false_positive: self.last_false_positive.max(other.last_false_positive),
        }
    }
}

/// Whether the attribute holds `wanted`: its value, or a half of a composite one.
fn holds_value(attribute: &Value, wanted: &str) -> bool {
    let wanted = wanted.to_lowercase();
    let value = text(attribute.get("value")).to_lowercase();
    if value == wanted {
        return true;
    }
    let kind = text(attribute.get("type"));
    (kind.contains('|') || kind == "malware-sample")
        && value.splitn(2, '|').any(|half| half == wanted)
}

fn list<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// MISP's strings, numbers and booleans as text; nothing as "".
fn text(value: Option<&Value>) -> String {
    optional_text(value).unwrap_or_default()
}

fn optional_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// MISP's numbers come as strings of digits or as numbers.
fn number_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn number(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

fn float(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// MISP's booleans: true/false, 1/0, "1"/"0".
fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|number| number != 0.0),
        Value::String(text) => matches!(text.trim(), "1" | "true" | "True"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// MISP 2.5's answer with includeContext, includeEventTags, includeSightings,
    /// includeWarninglistHits and includeDecayScore, shaped as the XSOAR fixture and
    /// MispAttribute::fetchAttributes have it.
    fn answer() -> Value {
        json!({"Attribute": [
            {"id": "71742", "event_id": "145", "type": "ip-dst", "category": "Network activity",
             "to_ids": true, "uuid": "ec686712-d0a5-4dd8-8736-330da8abefa6",
             "value": "198.51.100.7",
             "Sighting": [
                {"id": "1", "type": "0", "date_sighting": "1700000000"},
                {"id": "2", "type": "0", "date_sighting": "1700100000"},
                {"id": "3", "type": "1", "date_sighting": "1700050000"},
             ],
             "warnings": [{"match": "198.51.100.0/24", "value": "198.51.100.7",
                           "warninglist_id": "9", "warninglist_name": "Test nets",
                           "warninglist_category": "false_positive"}],
             "decay_score": [{"score": 41.5, "base_score": 80, "decayed": false,
                              "DecayingModel": {"id": "1", "name": "NIDS Simple Decaying Model"}}],
             "Event": {"id": "145", "info": "DDoS report", "threat_level_id": "2",
                       "date": "2016-01-04", "published": false, "uuid": "56d76936-0d34-44ff-a8c5-5280c0a8ab16",
                       "Tag": [{"id": "2", "name": "tlp:white"}],
                       "Orgc": {"id": "7", "name": "CUDESO"}},
             "Tag": [
                {"id": "247", "name": "passivetotal:class=suspicious", "local": false},
                {"id": "2", "name": "tlp:white", "inherited": 1},
             ]},
            {"id": "80", "event_id": "200", "type": "ip-dst|port", "to_ids": false,
             "value": "198.51.100.7|443",
             "Event": {"id": "200", "info": "C2 list", "threat_level_id": "1"},
             "Tag": [{"name": "apt", "inherited": 1}]},
            {"id": "81", "event_id": "200", "type": "text", "to_ids": false,
             "value": "198.51.100.70", "Event": {"id": "200"}},
        ]})
    }

    #[test]
    fn attributes_holding_the_value_are_read_with_their_tags_sightings_and_scores() {
        let evidence = Evidence::from_search(&answer(), "198.51.100.7", 100);
        let ids: Vec<&str> = evidence.attributes.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["80", "71742"],
            "newest event first, near misses left out"
        );
        assert!(!evidence.truncated);
        let first = &evidence.attributes[1];
        assert_eq!(first.own_tags, vec!["passivetotal:class=suspicious"]);
        assert_eq!(first.event_tags, vec!["tlp:white"]);
        assert_eq!(
            first.sightings,
            SightingCounts {
                sightings: 2,
                false_positives: 1,
                expirations: 0,
                last_seen: Some(1_700_100_000),
                last_false_positive: Some(1_700_050_000),
            }
        );
        assert_eq!(first.decay_scores[0].model, "NIDS Simple Decaying Model");
        assert_eq!(first.decay_scores[0].score, 41.5);
        assert_eq!(evidence.sightings.sightings, 2);
        assert_eq!(
            evidence.warninglists,
            WarninglistCheck::BySearch(vec![WarninglistHit {
                id: "9".into(),
                name: "Test nets".into(),
                category: Some("false_positive".into()),
                matched: Some("198.51.100.0/24".into()),
            }])
        );
    }

    #[test]
    fn events_come_from_the_context_newest_first() {
        let evidence = Evidence::from_search(&answer(), "198.51.100.7", 100);
        let ids: Vec<&str> = evidence.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec!["200", "145"]);
        let report = evidence.event("145").expect("event 145");
        assert_eq!(report.info, "DDoS report");
        assert_eq!(report.threat_level_id, Some(2));
        assert_eq!(report.org.as_deref(), Some("CUDESO"));
        assert_eq!(report.tags, vec!["tlp:white"]);
        assert_eq!(report.published, Some(false));
        // Without tags in the context, the inherited ones stand in.
        assert_eq!(
            evidence.event("200").map(|e| e.tags.clone()),
            Some(vec!["apt".to_string()])
        );
    }

    #[test]
    fn without_an_ids_attribute_the_search_says_nothing_of_warninglists() {
        let answer = json!({"Attribute": [
            {"id": "1", "event_id": "1", "type": "domain", "value": "Example.COM", "to_ids": false},
        ]});
        let evidence = Evidence::from_search(&answer, "example.com", 1);
        assert_eq!(evidence.attributes.len(), 1, "case is ignored");
        assert_eq!(evidence.warninglists, WarninglistCheck::NotChecked);
        assert!(
            evidence.truncated,
            "as many as asked for: there may be more"
        );
        let nothing = Evidence::from_search(&json!({"Attribute": []}), "x", 10);
        assert!(nothing.attributes.is_empty());
        assert_eq!(nothing.warninglists, WarninglistCheck::NotChecked);
    }

    #[test]
    fn check_value_answers_give_hits_or_none() {
        let hits = check_value_hits(&json!({"8.8.8.8": [
            {"id": "4", "name": "List of known IPv4 public DNS resolvers", "matched": "8.8.8.8/32"},
        ]}));
        assert_eq!(
            hits,
            vec![WarninglistHit {
                id: "4".into(),
                name: "List of known IPv4 public DNS resolvers".into(),
                category: None,
                matched: Some("8.8.8.8/32".into()),
            }]
        );
        assert!(check_value_hits(&json!([])).is_empty());
    }

    #[test]
    fn sightings_are_counted_by_type_bare_or_wrapped() {
        let rows = [
            json!({"type": "0", "date_sighting": "10"}),
            json!({"Sighting": {"type": 0, "date_sighting": 30}}),
            json!({"type": "2", "date_sighting": "40"}),
            json!({"date_sighting": "20"}),
        ];
        let counts = SightingCounts::of(rows.iter());
        assert_eq!(counts.sightings, 3);
        assert_eq!(counts.expirations, 1);
        assert_eq!(counts.last_seen, Some(30));
        assert_eq!(counts.last_false_positive, None);
    }
}
