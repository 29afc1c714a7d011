//! What a verdict reads besides tags, sightings and events: warninglists (the hits
//! `attributes/restSearch` attaches with `includeWarninglistHits`, and
//! `warninglists/checkValue`) and decay scores (`includeDecayScore`), as MISP 2.5 computes
//! them, with the seeding of the lists and models behind them.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::{Reply, State, error, int_like, now, ok, truthy, value_text};

/// The warninglists and decaying models MISP has enabled, and its `MISP.warning_for_all`.
#[derive(Debug, Default)]
pub(crate) struct VerdictData {
    warninglists: Vec<Warninglist>,
    decaying_models: Vec<DecayingModel>,
    /// MISP only looks up attributes with `to_ids` in warninglists unless this is set.
    warning_for_all: bool,
}

/// One enabled warninglist.
#[derive(Debug, Clone)]
struct Warninglist {
    id: String,
    name: String,
    /// `false_positive` or `known`.
    category: String,
    kind: ListKind,
    entries: Vec<String>,
    /// The attribute types it applies to; `ALL` for every type.
    types: Vec<String>,
}

/// How a warninglist's entries match (Warninglist::checkValue); `regex` lists never match
/// here (the simulator has no PCRE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Cidr,
    String,
    Hostname,
    Substring,
    Regex,
}

/// One enabled decaying model of MISP's Polynomial formula.
#[derive(Debug, Clone)]
struct DecayingModel {
    id: String,
    name: String,
    attribute_types: Vec<String>,
    lifetime_days: f64,
    decay_speed: f64,
    threshold: f64,
    base_score: f64,
}

impl State {
    /// Adds to one `attributes/restSearch` result what its options ask: `warnings` (for an
    /// attribute with `to_ids`, or any with `warning_for_all`) and `decay_score` (when an
    /// enabled model covers its type), as MispAttribute::fetchAttributes does.
    pub(super) fn add_search_extras(
        &self,
        filters: &Map<String, Value>,
        attribute: &Value,
        output: &mut Map<String, Value>,
    ) {
        if filters.get("includeWarninglistHits").is_some_and(truthy) {
            let warnings = self.attribute_warnings(attribute);
            if !warnings.is_empty() {
                output.insert("warnings".to_string(), Value::Array(warnings));
            }
        }
        if filters.get("includeDecayScore").is_some_and(truthy) {
            let scores = self.decay_scores(attribute);
            if !scores.is_empty() {
                output.insert("decay_score".to_string(), Value::Array(scores));
            }
        }
    }

    /// `POST /warninglists/checkValue`: a list of values (bare, or under `Warninglist` or
    /// `[]`, or one string); `{value: [{id, name, matched}]}` for the values on an enabled
    /// list, `[]` when none is (PHP's empty array).
    pub(super) fn check_warninglist_values(&self, body: &Value, path: &str) -> Reply {
        let mut data = body.clone();
        if let Some(inner) = data.get("Warninglist") {
            data = inner.clone();
        }
        if let Some(inner) = data.get("[]") {
            data = inner.clone();
        }
        let values: Vec<String> = match &data {
            Value::Null => return error(404, "No valid data received.", path),
            Value::Array(items) if items.is_empty() => {
                return error(404, "No valid data received.", path);
            }
            Value::Object(fields) if fields.is_empty() => {
                return error(404, "No valid data received.", path);
            }
            Value::Array(items) => items.iter().map(value_text).collect(),
            Value::Object(fields) => fields.values().map(value_text).collect(),
            other => vec![value_text(other)],
        };
        let mut hits = Map::new();
        for value in values {
            let value = value.trim().to_string();
            for list in &self.verdict_data.warninglists {
                if let Some(matched) = list.matches(&value) {
                    let entry = hits
                        .entry(value.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(found) = entry {
                        found.push(json!({"id": list.id, "name": list.name, "matched": matched}));
                    }
                }
            }
        }
        if hits.is_empty() {
            return ok(json!([]));
        }
        ok(Value::Object(hits))
    }

    fn attribute_warnings(&self, attribute: &Value) -> Vec<Value> {
        let to_ids = attribute.get("to_ids").is_some_and(truthy);
        if !(to_ids || self.verdict_data.warning_for_all) {
            return Vec::new();
        }
        let attribute_type = attribute.get("type").map(value_text).unwrap_or_default();
        let value = attribute.get("value").map(value_text).unwrap_or_default();
        // Composite types are looked up part by part, the first hit counting (checkValue).
        let parts: Vec<&str> = if attribute_type == "malware-sample" || attribute_type.contains('|')
        {
            value.splitn(2, '|').collect()
        } else {
            vec![value.as_str()]
        };
        self.verdict_data
            .warninglists
            .iter()
            .filter(|list| {
                list.types
                    .iter()
                    .any(|known| known == "ALL" || *known == attribute_type)
            })
            .filter_map(|list| {
                parts.iter().find_map(|part| {
                    list.matches(part).map(|matched| {
                        json!({
                            "match": matched,
                            "value": part,
                            "warninglist_id": list.id,
                            "warninglist_name": list.name,
                            "warninglist_category": list.category,
                        })
                    })
                })
            })
            .collect()
    }

    fn decay_scores(&self, attribute: &Value) -> Vec<Value> {
        let attribute_type = attribute.get("type").map(value_text).unwrap_or_default();
        let changed = attribute.get("timestamp").and_then(int_like).unwrap_or(0);
        let last_sighting = self
            .attribute_sightings(attribute)
            .iter()
            .filter(|sighting| sighting.get("type").and_then(int_like).unwrap_or(0) == 0)
            .filter_map(|sighting| sighting.get("date_sighting").and_then(int_like))
            .max();
        // The newer of the last sighting and the last change (DecayingModelBase).
        let since = last_sighting.unwrap_or(changed).max(changed);
        let elapsed = (now() - since) as f64;
        self.verdict_data
            .decaying_models
            .iter()
            .filter(|model| model.attribute_types.contains(&attribute_type))
            .map(|model| {
                let score = model.score(elapsed);
                json!({
                    "score": score,
                    "base_score": model.base_score,
                    "decayed": model.threshold > score,
                    "DecayingModel": {"id": model.id, "name": model.name},
                })
            })
            .collect()
    }
}

impl crate::MispSim {
    /// Enables a warninglist, given as the misp-warninglists repository writes one:
    /// `{"name", "type": "cidr"|"string"|"hostname"|"substring"|"regex", "list": [...],
    /// "matching_attributes": [...], "category": "false_positive"|"known"}` (category
    /// `false_positive` and types `ALL` when absent; `id` kept when given). Returns its id.
    pub fn seed_warninglist(&self, list: Value) -> String {
        let mut state = self.shared.lock();
        let data = &mut state.verdict_data;
        let id = list
            .get("id")
            .map(value_text)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| (data.warninglists.len() + 1).to_string());
        let kind = match list.get("type").map(value_text).as_deref() {
            Some("cidr") => ListKind::Cidr,
            Some("hostname") => ListKind::Hostname,
            Some("substring") => ListKind::Substring,
            Some("regex") => ListKind::Regex,
            _ => ListKind::String,
        };
        let strings = |name: &str| -> Vec<String> {
            list.get(name)
                .and_then(Value::as_array)
                .map(|items| items.iter().map(value_text).collect())
                .unwrap_or_default()
        };
        let mut entries = strings("list");
        if kind == ListKind::Hostname {
            // As Warninglist::getFilteredEntries stores them.
            entries = entries
                .iter()
                .map(|entry| entry.trim_matches('.').to_lowercase())
                .collect();
        }
        let mut types = strings("matching_attributes");
        if types.is_empty() {
            types.push("ALL".to_string());
        }
        data.warninglists.push(Warninglist {
            id: id.clone(),
            name: list.get("name").map(value_text).unwrap_or_default(),
            category: list
                .get("category")
                .map(value_text)
                .unwrap_or_else(|| "false_positive".to_string()),
            kind,
            entries,
            types,
        });
        id
    }

    /// Enables a decaying model of MISP's Polynomial formula: `{"id", "name",
    /// "attribute_types": [...], "parameters": {"lifetime" (days), "decay_speed",
    /// "threshold", "default_base_score"}}`.
    pub fn seed_decaying_model(&self, model: Value) {
        let parameter = |name: &str, default: f64| {
            model
                .pointer(&format!("/parameters/{name}"))
                .and_then(|value| match value {
                    Value::Number(number) => number.as_f64(),
                    Value::String(text) => text.parse().ok(),
                    _ => None,
                })
                .unwrap_or(default)
        };
        let model = DecayingModel {
            id: model
                .get("id")
                .map(value_text)
                .unwrap_or_else(|| "1".into()),
            name: model.get("name").map(value_text).unwrap_or_default(),
            attribute_types: model
                .get("attribute_types")
                .and_then(Value::as_array)
                .map(|types| types.iter().map(value_text).collect())
                .unwrap_or_default(),
            lifetime_days: parameter("lifetime", 30.0),
            decay_speed: parameter("decay_speed", 1.0),
            threshold: parameter("threshold", 30.0),
            base_score: parameter("default_base_score", 80.0),
        };
        self.shared.lock().verdict_data.decaying_models.push(model);
    }

    /// MISP's `MISP.warning_for_all`: look up attributes without `to_ids` in warninglists too.
    pub fn set_warning_for_all(&self, on: bool) {
        self.shared.lock().verdict_data.warning_for_all = on;
    }
}

impl Warninglist {
    /// The entry `value` matched, as Warninglist::checkValue returns it.
    fn matches(&self, value: &str) -> Option<String> {
        match self.kind {
            ListKind::String => self
                .entries
                .iter()
                .find(|entry| entry.as_str() == value)
                .cloned(),
            ListKind::Substring => self
                .entries
                .iter()
                .find(|entry| value.contains(entry.as_str()))
                .cloned(),
            ListKind::Hostname => self.match_hostname(value),
            ListKind::Cidr => {
                let address: IpAddr = value.parse().ok()?;
                self.entries
                    .iter()
                    .find(|entry| cidr_contains(entry, address))
                    .cloned()
            }
            ListKind::Regex => None,
        }
    }

    /// The host of a URL or a hostname, then each parent domain, against the entries.
    fn match_hostname(&self, value: &str) -> Option<String> {
        let pieces: Vec<&str> = value.split('/').collect();
        let host = if value.contains("//") {
            pieces.get(2)?
        } else {
            pieces.first()?
        };
        let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
        (1..=labels.len()).find_map(|count| {
            let candidate = labels[labels.len() - count..].join(".");
            self.entries.contains(&candidate).then_some(candidate)
        })
    }
}

impl DecayingModel {
    /// MISP's Polynomial formula: `base * (1 - (t / lifetime)^(1 / speed))`, never below 0.
    fn score(&self, elapsed_seconds: f64) -> f64 {
        if elapsed_seconds < 0.0 {
            return 0.0;
        }
        let lifetime = self.lifetime_days * 86_400.0;
        let score =
            self.base_score * (1.0 - (elapsed_seconds / lifetime).powf(1.0 / self.decay_speed));
        score.max(0.0)
    }
}

/// Whether `address` lies in `entry`, a CIDR block or a single address.
fn cidr_contains(entry: &str, address: IpAddr) -> bool {
    let (network, prefix) = match entry.split_once('/') {
        Some((network, prefix)) => (network, prefix.parse::<u32>().ok()),
        None => (entry, None),
    };
    let Ok(network) = network.trim().parse::<IpAddr>() else {
        return false;
    };
    match (network, address) {
        (IpAddr::V4(network), IpAddr::V4(address)) => {
            let prefix = prefix.unwrap_or(32).min(32);
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(network) & mask == u32::from(address) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(address)) => {
            let prefix = prefix.unwrap_or(128).min(128);
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(network) & mask == u128::from(address) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(kind: ListKind, entries: &[&str]) -> Warninglist {
        Warninglist {
            id: "1".into(),
            name: "test list".into(),
            category: "false_positive".into(),
            kind,
            entries: entries.iter().map(|entry| entry.to_string()).collect(),
            types: vec!["ALL".into()],
        }
    }

    fn body(reply: Reply) -> Value {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        match reply.body {
            super::super::ReplyBody::Json(body) => body,
            other => panic!("expected JSON, got {other:?}"),
        }
    }

    /// Event 1 holds 8.8.8.8 twice (with and without to_ids) and, in a file object, an md5
    /// on no list; a resolver list and a decaying model for ip-dst are enabled.
    fn state() -> State {
        let mut state = State::new();
        let recent = (now() - 86_400).to_string();
        state.seed_event(json!({
            "id": "1", "info": "resolvers", "threat_level_id": "2",
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [
                {"type": "ip-dst", "value": "8.8.8.8", "to_ids": true, "timestamp": recent,
                 "Tag": [{"name": "ioc:artifact-state=\"malicious\""}]},
                {"type": "ip-src", "value": "8.8.8.8", "to_ids": false},
            ],
            "Object": [{"name": "file", "Attribute": [
                {"type": "md5", "value": "0123456789abcdef0123456789abcdef", "to_ids": true},
            ]}],
        }));
        state.verdict_data.warninglists.push(Warninglist {
            types: vec!["ip-src".into(), "ip-dst".into()],
            ..list(ListKind::Cidr, &["8.8.8.0/24"])
        });
        state.verdict_data.decaying_models.push(DecayingModel {
            id: "3".into(),
            name: "NIDS Simple Decaying Model".into(),
            attribute_types: vec!["ip-dst".into()],
            lifetime_days: 10.0,
            decay_speed: 1.0,
            threshold: 30.0,
            base_score: 80.0,
        });
        state
    }

    #[test]
    fn a_search_with_every_option_has_warnings_decay_scores_event_tags_and_sightings() {
        let state = state();
        let filters = json!({
            "value": "8.8.8.8", "includeEventTags": true, "includeContext": true,
            "includeSightings": true, "includeWarninglistHits": true, "includeDecayScore": true,
        });
        let answer = body(state.search_attributes(&filters, "/attributes/restSearch"));
        let attributes = answer["response"]["Attribute"]
            .as_array()
            .expect("attributes");
        assert_eq!(attributes.len(), 2, "{answer}");
        let ids_attribute = &attributes[0];
        assert_eq!(
            ids_attribute["warnings"],
            json!([{"match": "8.8.8.0/24", "value": "8.8.8.8", "warninglist_id": "1",
                    "warninglist_name": "test list", "warninglist_category": "false_positive"}])
        );
        let decay = &ids_attribute["decay_score"][0];
        assert_eq!(
            decay["DecayingModel"],
            json!({"id": "3", "name": "NIDS Simple Decaying Model"})
        );
        let score = decay["score"].as_f64().expect("a score");
        assert!((71.0..73.0).contains(&score), "one day of ten: {score}");
        assert_eq!(decay["decayed"], json!(false));
        let tags: Vec<(&str, bool)> = ids_attribute["Tag"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|tag| {
                (
                    tag["name"].as_str().unwrap_or(""),
                    tag.get("inherited").is_some(),
                )
            })
            .collect();
        assert_eq!(
            tags,
            vec![
                ("ioc:artifact-state=\"malicious\"", false),
                ("tlp:green", true)
            ]
        );
        assert_eq!(ids_attribute["Sighting"], json!([]));
        assert_eq!(ids_attribute["Event"]["threat_level_id"], json!("2"));
        // Without to_ids MISP looks nothing up, and no model covers ip-src.
        assert!(attributes[1].get("warnings").is_none());
        assert!(attributes[1].get("decay_score").is_none());
        let plain = body(state.search_attributes(&json!({"value": "8.8.8.8"}), "/x"));
        assert!(plain["response"]["Attribute"][0].get("warnings").is_none());
        assert!(
            plain["response"]["Attribute"][0]
                .get("decay_score")
                .is_none()
        );
    }

    #[test]
    fn warning_for_all_looks_up_attributes_without_to_ids() {
        let mut state = state();
        state.verdict_data.warning_for_all = true;
        let filters = json!({"value": "8.8.8.8", "type": "ip-src", "includeWarninglistHits": 1});
        let answer = body(state.search_attributes(&filters, "/attributes/restSearch"));
        assert_eq!(
            answer["response"]["Attribute"][0]["warnings"][0]["warninglist_name"],
            json!("test list")
        );
    }

    #[test]
    fn object_attributes_are_searched_too() {
        let state = state();
        let filters =
            json!({"value": "0123456789abcdef0123456789abcdef", "includeWarninglistHits": true});
        let answer = body(state.search_attributes(&filters, "/attributes/restSearch"));
        let found = &answer["response"]["Attribute"];
        assert_eq!(found.as_array().map(Vec::len), Some(1), "{answer}");
        assert_ne!(found[0]["object_id"], json!("0"));
        assert!(found[0].get("warnings").is_none());
    }

    #[test]
    fn check_value_lists_each_value_on_a_list_and_nothing_else() {
        let state = state();
        let path = "/warninglists/checkValue";
        assert_eq!(
            body(state.check_warninglist_values(&json!(["8.8.8.8", " 9.9.9.9 "]), path)),
            json!({"8.8.8.8": [{"id": "1", "name": "test list", "matched": "8.8.8.0/24"}]})
        );
        assert_eq!(
            body(state.check_warninglist_values(&json!({"Warninglist": ["8.8.8.9"]}), path)),
            json!({"8.8.8.9": [{"id": "1", "name": "test list", "matched": "8.8.8.0/24"}]})
        );
        assert_eq!(
            body(state.check_warninglist_values(&json!(["203.0.113.1"]), path)),
            json!([])
        );
        let empty = state.check_warninglist_values(&json!([]), path);
        assert_eq!(empty.status, 404);
    }

    #[test]
    fn cidr_lists_match_addresses_inside_their_blocks() {
        let resolvers = list(
            ListKind::Cidr,
            &["8.8.8.8/32", "1.1.1.0/24", "2001:4860::/32"],
        );
        assert_eq!(resolvers.matches("8.8.8.8").as_deref(), Some("8.8.8.8/32"));
        assert_eq!(resolvers.matches("1.1.1.77").as_deref(), Some("1.1.1.0/24"));
        assert_eq!(
            resolvers.matches("2001:4860:4860::8888").as_deref(),
            Some("2001:4860::/32")
        );
        assert_eq!(resolvers.matches("8.8.4.4"), None);
        assert_eq!(resolvers.matches("example.com"), None);
        assert!(cidr_contains("0.0.0.0/0", "203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn hostname_lists_match_the_host_and_its_parent_domains() {
        let top = list(ListKind::Hostname, &["google.com"]);
        assert_eq!(top.matches("google.com").as_deref(), Some("google.com"));
        assert_eq!(
            top.matches("www.google.com.").as_deref(),
            Some("google.com")
        );
        assert_eq!(
            top.matches("https://mail.google.com/x/y").as_deref(),
            Some("google.com")
        );
        assert_eq!(top.matches("google.com.evil.example"), None);
    }

    #[test]
    fn string_and_substring_lists_match_as_misp_does() {
        assert_eq!(
            list(ListKind::String, &["abc"]).matches("abc").as_deref(),
            Some("abc")
        );
        assert_eq!(list(ListKind::String, &["abc"]).matches("abcd"), None);
        assert_eq!(
            list(ListKind::Substring, &["amazonaws"])
                .matches("s3.amazonaws.com")
                .as_deref(),
            Some("amazonaws")
        );
        assert_eq!(list(ListKind::Regex, &["/.*/"]).matches("x"), None);
    }

    #[test]
    fn polynomial_decay_starts_at_the_base_score_and_reaches_zero_at_its_lifetime() {
        let model = DecayingModel {
            id: "1".into(),
            name: "NIDS Simple Decaying Model".into(),
            attribute_types: vec!["ip-dst".into()],
            lifetime_days: 10.0,
            decay_speed: 1.0,
            threshold: 30.0,
            base_score: 80.0,
        };
        assert_eq!(model.score(0.0), 80.0);
        assert!((model.score(5.0 * 86_400.0) - 40.0).abs() < 1e-9);
        assert_eq!(model.score(20.0 * 86_400.0), 0.0);
    }
}
