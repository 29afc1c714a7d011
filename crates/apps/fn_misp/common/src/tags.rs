//! Reading tags out of MISP events: every tag name, the MITRE ATT&CK techniques among them
//! (and among galaxy clusters), and the tags grouped by kind.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// The kinds of tag an analyst tells apart, in the order `tag_groups` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TagKind {
    /// `tlp:amber`
    Tlp,
    /// `PAP:GREEN`
    Pap,
    /// MITRE ATT&CK galaxy clusters: `misp-galaxy:mitre-attack-pattern="… - T1059"`.
    Attack,
    /// Any other galaxy cluster: `misp-galaxy:threat-actor="APT 28"`.
    Galaxy,
    /// A taxonomy tag: `namespace:predicate` or `namespace:predicate="value"`.
    Taxonomy,
    /// Free text such as `Phishing`.
    Other,
}

/// One MITRE ATT&CK technique named in a tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttackTechnique {
    /// `T1067` or a sub-technique such as `T1059.001`.
    pub id: String,
    pub name: String,
}

/// The distinct tag names of every event in `events` and of their attributes (also those
/// inside objects), sorted.
pub fn tag_names(events: &[Value]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for event in events.iter().filter_map(|entry| entry.get("Event")) {
        add_tag_names(event, &mut names);
        for attribute in list(event, "Attribute") {
            add_tag_names(attribute, &mut names);
        }
        for object in list(event, "Object") {
            for attribute in list(object, "Attribute") {
                add_tag_names(attribute, &mut names);
            }
        }
    }
    names
}

/// The distinct techniques of one event (MISP's `Event` object, unwrapped): from the tags and
/// galaxy clusters of the event and of its attributes, also those inside objects, sorted by id.
pub fn event_attack_techniques(event: &Value) -> Vec<AttackTechnique> {
    let mut techniques = BTreeSet::new();
    let mut add_from = |holder: &Value| {
        for tag in list(holder, "Tag") {
            if let Some(technique) = tag
                .get("name")
                .and_then(Value::as_str)
                .and_then(attack_technique)
            {
                techniques.insert(technique);
            }
        }
        for galaxy in list(holder, "Galaxy") {
            for cluster in list(galaxy, "GalaxyCluster") {
                if let Some(technique) = cluster_attack_technique(cluster) {
                    techniques.insert(technique);
                }
            }
        }
    };
    add_from(event);
    for attribute in list(event, "Attribute") {
        add_from(attribute);
    }
    for object in list(event, "Object") {
        for attribute in list(object, "Attribute") {
            add_from(attribute);
        }
    }
    techniques.into_iter().collect()
}

/// The technique a galaxy cluster (an element of MISP's `GalaxyCluster` list) stands for: read
/// from its `tag_name`, else from its `type` and `value` the way the tag is written.
pub fn cluster_attack_technique(cluster: &Value) -> Option<AttackTechnique> {
    if let Some(technique) = cluster
        .get("tag_name")
        .and_then(Value::as_str)
        .and_then(attack_technique)
    {
        return Some(technique);
    }
    let galaxy = cluster.get("type").and_then(Value::as_str)?;
    let value = cluster.get("value").and_then(Value::as_str)?;
    attack_technique(&format!("misp-galaxy:{galaxy}=\"{value}\""))
}

/// The kind of tag `name` is.
pub fn tag_kind(name: &str) -> TagKind {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("tlp:") {
        return TagKind::Tlp;
    }
    if lower.starts_with("pap:") {
        return TagKind::Pap;
    }
    if let Some(cluster) = lower.strip_prefix("misp-galaxy:") {
        return if cluster.starts_with("mitre-") {
            TagKind::Attack
        } else {
            TagKind::Galaxy
        };
    }
    if is_taxonomy_tag(name) {
        return TagKind::Taxonomy;
    }
    TagKind::Other
}

/// The technique a tag such as `misp-galaxy:mitre-attack-pattern="Process Hollowing - T1093"`
/// names. Older MISP galaxies (`mitre-enterprise-attack-attack-pattern`,
/// `mitre-mobile-attack-attack-pattern`, …) are read the same way.
pub fn attack_technique(tag: &str) -> Option<AttackTechnique> {
    let (galaxy, value) = tag.strip_prefix("misp-galaxy:")?.split_once('=')?;
    if !(galaxy.starts_with("mitre-") && galaxy.ends_with("attack-pattern")) {
        return None;
    }
    let value = value.trim().trim_matches('"');
    let (name, id) = value.rsplit_once(" - ")?;
    let id = id.trim();
    if !is_technique_id(id) {
        return None;
    }
    Some(AttackTechnique {
        id: id.to_string(),
        name: name.trim().to_string(),
    })
}

/// The distinct techniques named in `tags`, sorted by id.
pub fn attack_techniques<'a>(tags: impl IntoIterator<Item = &'a String>) -> Vec<AttackTechnique> {
    let techniques: BTreeSet<AttackTechnique> = tags
        .into_iter()
        .filter_map(|tag| attack_technique(tag))
        .collect();
    techniques.into_iter().collect()
}

/// `{"tlp": [...], "pap": [...], "attack": [...], "galaxies": [...], "taxonomies": [...],
/// "other": [...]}`, each list sorted; `tags` are expected distinct already.
pub fn tag_groups<'a>(tags: impl IntoIterator<Item = &'a String>) -> Value {
    let mut groups: [Vec<&str>; 6] = Default::default();
    for tag in tags {
        groups[tag_kind(tag) as usize].push(tag);
    }
    for group in &mut groups {
        group.sort_unstable();
        group.dedup();
    }
    let [tlp, pap, attack, galaxies, taxonomies, other] = groups;
    json!({
        "tlp": tlp,
        "pap": pap,
        "attack": attack,
        "galaxies": galaxies,
        "taxonomies": taxonomies,
        "other": other,
    })
}

impl AttackTechnique {
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name})
    }
}

fn list<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn add_tag_names(holder: &Value, names: &mut BTreeSet<String>) {
    for tag in list(holder, "Tag") {
        if let Some(name) = tag.get("name").and_then(Value::as_str) {
            names.insert(name.to_string());
        }
    }
}

/// `namespace:predicate[="value"]` with a namespace of one word, as MISP taxonomies are
/// written; `Emotet: loader` or `:x` are not taxonomy tags.
fn is_taxonomy_tag(name: &str) -> bool {
    let Some((namespace, rest)) = name.split_once(':') else {
        return false;
    };
    let predicate = rest
        .split_once('=')
        .map_or(rest, |(predicate, _)| predicate);
    !namespace.is_empty()
        && !predicate.is_empty()
        && !namespace.contains(|c: char| c.is_whitespace() || c == '=' || c == '"')
        && !predicate.starts_with(char::is_whitespace)
}

/// `T` and four digits, optionally `.` and three more (a sub-technique).
fn is_technique_id(id: &str) -> bool {
    let Some(digits) = id.strip_prefix('T') else {
        return false;
    };
    let (technique, sub) = match digits.split_once('.') {
        Some((technique, sub)) => (technique, Some(sub)),
        None => (digits, None),
    };
    let all_digits = |text: &str, count: usize| {
        text.len() == count && text.bytes().all(|byte| byte.is_ascii_digit())
    };
    all_digits(technique, 4) && sub.is_none_or(|sub| all_digits(sub, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn tag_names_come_from_events_attributes_and_objects() {
        let events = vec![
            json!({"Event": {
                "Tag": [{"name": "tlp:white"}, {"name": "osint:source-type=\"blog-post\""}],
                "Attribute": [
                    {"value": "1.1.1.1", "Tag": [{"name": "tlp:white"}, {"name": "Phishing"}]},
                    {"value": "2.2.2.2"},
                ],
                "Object": [{"Attribute": [{"Tag": [{"name": "PAP:GREEN"}]}]}],
            }}),
            json!({"Event": {"Attribute": [{"Tag": [{"name": "apt"}, {"id": "no name"}]}]}}),
            json!({"not an event": true}),
        ];
        let names: Vec<String> = tag_names(&events).into_iter().collect();
        assert_eq!(
            names,
            tags(&[
                "PAP:GREEN",
                "Phishing",
                "apt",
                "osint:source-type=\"blog-post\"",
                "tlp:white"
            ])
        );
    }

    #[test]
    fn attack_pattern_tags_give_technique_and_name() {
        assert_eq!(
            attack_technique(r#"misp-galaxy:mitre-attack-pattern="Bootkit - T1067""#),
            Some(AttackTechnique {
                id: "T1067".into(),
                name: "Bootkit".into()
            })
        );
        assert_eq!(
            attack_technique(
                r#"misp-galaxy:mitre-attack-pattern="Command and Scripting Interpreter: PowerShell - T1059.001""#
            ),
            Some(AttackTechnique {
                id: "T1059.001".into(),
                name: "Command and Scripting Interpreter: PowerShell".into()
            })
        );
        assert_eq!(
            attack_technique(
                r#"misp-galaxy:mitre-enterprise-attack-attack-pattern="Spearphishing Link - T1192""#
            )
            .map(|technique| technique.id),
            Some("T1192".into())
        );
    }

    #[test]
    fn other_tags_give_no_technique() {
        for tag in [
            r#"misp-galaxy:mitre-intrusion-set="APT28 - G0007""#,
            r#"misp-galaxy:threat-actor="Sofacy - T1234""#,
            r#"misp-galaxy:mitre-attack-pattern="No id here""#,
            r#"misp-galaxy:mitre-attack-pattern="Bad id - T10""#,
            r#"misp-galaxy:mitre-attack-pattern="Bad sub - T1059.1""#,
            "tlp:white",
            "T1067",
        ] {
            assert_eq!(attack_technique(tag), None, "{tag} names no technique");
        }
    }

    #[test]
    fn event_techniques_come_from_tags_and_galaxy_clusters_at_every_level() {
        let event = json!({
            "Tag": [{"name": "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\""}, {"name": "tlp:white"}],
            "Galaxy": [{"type": "mitre-attack-pattern", "GalaxyCluster": [
                {"type": "mitre-attack-pattern", "value": "Phishing - T1566",
                 "tag_name": "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\""},
                {"type": "mitre-attack-pattern", "value": "PowerShell - T1059.001"},
            ]}, {"type": "threat-actor", "GalaxyCluster": [
                {"type": "threat-actor", "value": "Sofacy - T1234", "tag_name": "misp-galaxy:threat-actor=\"Sofacy - T1234\""},
            ]}],
            "Attribute": [{"Tag": [{"name": "misp-galaxy:mitre-attack-pattern=\"Bootkit - T1067\""}]}],
            "Object": [{"Attribute": [{"Galaxy": [{"GalaxyCluster": [
                {"tag_name": "misp-galaxy:mitre-attack-pattern=\"Rootkit - T1014\""},
            ]}]}]}],
        });
        let ids: Vec<String> = event_attack_techniques(&event)
            .into_iter()
            .map(|technique| technique.id)
            .collect();
        assert_eq!(ids, vec!["T1014", "T1059.001", "T1067", "T1566"]);
        assert!(event_attack_techniques(&json!({})).is_empty());
    }

    #[test]
    fn techniques_are_sorted_and_distinct() {
        let names = tags(&[
            r#"misp-galaxy:mitre-attack-pattern="PowerShell - T1086""#,
            r#"misp-galaxy:mitre-attack-pattern="Bootkit - T1067""#,
            r#"misp-galaxy:mitre-attack-pattern="Bootkit - T1067""#,
            "tlp:red",
        ]);
        let ids: Vec<String> = attack_techniques(&names)
            .into_iter()
            .map(|technique| technique.id)
            .collect();
        assert_eq!(ids, vec!["T1067", "T1086"]);
    }

    #[test]
    fn tags_are_grouped_by_kind() {
        let names = tags(&[
            "tlp:amber",
            "TLP:WHITE",
            "PAP:GREEN",
            r#"misp-galaxy:mitre-attack-pattern="Bootkit - T1067""#,
            r#"misp-galaxy:mitre-intrusion-set="APT28 - G0007""#,
            r#"misp-galaxy:threat-actor="Sofacy""#,
            r#"admiralty-scale:source-reliability="a""#,
            "type:OSINT",
            "Phishing",
            "Emotet: loader",
        ]);
        assert_eq!(
            tag_groups(&names),
            json!({
                "tlp": ["TLP:WHITE", "tlp:amber"],
                "pap": ["PAP:GREEN"],
                "attack": [
                    r#"misp-galaxy:mitre-attack-pattern="Bootkit - T1067""#,
                    r#"misp-galaxy:mitre-intrusion-set="APT28 - G0007""#,
                ],
                "galaxies": [r#"misp-galaxy:threat-actor="Sofacy""#],
                "taxonomies": [r#"admiralty-scale:source-reliability="a""#, "type:OSINT"],
                "other": ["Emotet: loader", "Phishing"],
            })
        );
    }

    #[test]
    fn no_tags_give_empty_groups() {
        assert_eq!(
            tag_groups(&Vec::<String>::new()),
            json!({"tlp": [], "pap": [], "attack": [], "galaxies": [], "taxonomies": [], "other": []})
        );
    }
}
