//! What to do with each value of a bulk add, decided without MISP where possible: the items
//! read from the list with their types, the outcome MISP's answers give each, the attributes
//! to send, and the per-item results with their counts and summary.

use std::collections::{HashMap, HashSet};

use fn_misp::attribute_type;
use fn_misp::indicators::{self, ListedValue};
use fn_misp::warninglists::WarninglistHit;
use serde_json::{Map, Value, json};
pub use uuid::Uuid;

/// One entry of `misp_values` and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The value refanged (empty for an entry that was not a value).
    pub value: String,
    /// The MISP type: given with the value, or detected.
    pub attribute_type: Option<String>,
    /// Whether the type was detected rather than given.
    pub detected: bool,
    pub outcome: Outcome,
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not decided yet: to be looked up and sent.
    Pending,
    /// MISP added it.
    Created { id: String, uuid: String },
    /// The event has an attribute with this type and value already.
    AlreadyPresent { id: String },
    /// On a warninglist, and not added because `misp_add_warninglisted` was not set.
    OnWarninglist,
    /// Not added: why.
    Invalid { reason: String },
}

/// The settings shared by every attribute of the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSettings {
    pub to_ids: Option<bool>,
    pub comment: Option<String>,
    pub category: Option<String>,
    pub add_warninglisted: bool,
}

/// Every item of a bulk add, in the input's order, with the warninglists each is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub items: Vec<Item>,
    pub warninglists: Vec<Vec<WarninglistHit>>,
}

impl Plan {
    /// Reads `misp_values`: refangs each value, takes the given type (checked against
    /// describeTypes) or detects one; an entry without a known type, an empty one, or a
    /// repeat of an earlier item is invalid, the others pending.
    pub fn read(text: &str) -> Plan {
        let mut items: Vec<Item> = Vec::new();
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        for listed in indicators::parse_values(text) {
            let item = match listed {
                ListedValue::Unreadable { entry, problem } => Item {
                    value: String::new(),
                    attribute_type: None,
                    detected: false,
                    outcome: Outcome::Invalid {
                        reason: format!("the entry {entry} {problem}"),
                    },
                },
                ListedValue::Value { value, given_type } => typed_item(value, given_type),
            };
            let item = match (&item.outcome, &item.attribute_type) {
                (Outcome::Pending, Some(attribute_type)) => {
                    let key = (attribute_type.clone(), item.value.clone());
                    match seen.get(&key) {
                        Some(first) => Item {
                            outcome: Outcome::Invalid {
                                reason: format!(
                                    "the same {attribute_type} value as item {}",
                                    first + 1
                                ),
                            },
                            ..item
                        },
                        None => {
                            seen.insert(key, items.len());
                            item
                        }
                    }
                }
                _ => item,
            };
            items.push(item);
        }
        let warninglists = vec![Vec::new(); items.len()];
        Plan {
            items,
            warninglists,
        }
    }

    /// The values still pending, each once, for checkValue and the search.
    pub fn pending_values(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.pending()
            .map(|(_, item)| item.value.clone())
            .filter(|value| seen.insert(value.clone()))
            .collect()
    }

    /// Marks the pending items the event already has (same type and value; MISP's search
    /// also matches parts of composite values, so the match is checked here exactly).
    pub fn mark_present(&mut self, search_answer: &Value) {
        let mut present: HashMap<(String, String), String> = HashMap::new();
        for attribute in search_attributes(search_answer) {
            let key = (text(attribute.get("type")), text(attribute.get("value")));
            present
                .entry(key)
                .or_insert_with(|| text(attribute.get("id")));
        }
        for item in &mut self.items {
            let Some(attribute_type) = &item.attribute_type else {
                continue;
            };
            if item.outcome != Outcome::Pending {
                continue;
            }
            if let Some(id) = present.get(&(attribute_type.clone(), item.value.clone())) {
                item.outcome = Outcome::AlreadyPresent { id: id.clone() };
            }
        }
    }

    /// Notes each item's warninglists; a pending item on one is not added unless
    /// `add_warninglisted`.
    pub fn mark_warninglisted(
        &mut self,
        hits: &HashMap<String, Vec<WarninglistHit>>,
        add_warninglisted: bool,
    ) {
        for (item, lists) in self.items.iter_mut().zip(self.warninglists.iter_mut()) {
            let Some(found) = hits.get(&item.value) else {
                continue;
            };
            if item.value.is_empty() {
                continue;
            }
            *lists = found.clone();
            if item.outcome == Outcome::Pending && !add_warninglisted {
                item.outcome = Outcome::OnWarninglist;
            }
        }
    }

    /// The attributes to send, in order, with the index of the item each is for. Each gets a
    /// UUID derived from the event's UUID, its type and its value, so that sending the same
    /// batch again after a lost answer cannot make a twin: MISP refuses a UUID it holds.
    pub fn attributes_to_add(
        &self,
        event_uuid: &Uuid,
        settings: &BatchSettings,
    ) -> Vec<(usize, Value)> {
        self.pending()
            .filter_map(|(index, item)| {
                let attribute_type = item.attribute_type.as_deref()?;
                let mut attribute = Map::new();
                attribute.insert("type".into(), json!(attribute_type));
                attribute.insert("value".into(), json!(item.value));
                attribute.insert(
                    "uuid".into(),
                    json!(attribute_uuid(event_uuid, attribute_type, &item.value).to_string()),
                );
                if let Some(category) = &settings.category {
                    attribute.insert("category".into(), json!(category));
                }
                if let Some(to_ids) = settings.to_ids {
                    attribute.insert("to_ids".into(), json!(to_ids));
                }
                if let Some(comment) = &settings.comment {
                    attribute.insert("comment".into(), json!(comment));
                }
                Some((index, Value::Object(attribute)))
            })
            .collect()
    }

    /// Reads MISP's answer to the add of `sent` (from [`Plan::attributes_to_add`]): items
    /// MISP added are created, those its `errors` name are invalid with its reasons, and any
    /// it says nothing of are invalid too.
    pub fn apply_add_answer(&mut self, sent: &[(usize, Value)], answer: &Value) {
        let added = added_attributes(answer);
        let by_uuid: HashMap<String, &Value> = added
            .iter()
            .map(|attribute| (text(attribute.get("uuid")).to_lowercase(), *attribute))
            .collect();
        let errors = answer.get("errors");
        for (position, (index, attribute)) in sent.iter().enumerate() {
            let uuid = text(attribute.get("uuid")).to_lowercase();
            let reason = match by_uuid.get(&uuid) {
                Some(created) => {
                    self.items[*index].outcome = Outcome::Created {
                        id: text(created.get("id")),
                        uuid: text(created.get("uuid")),
                    };
                    continue;
                }
                None => item_errors(errors, position, sent.len()),
            };
            self.items[*index].outcome = Outcome::Invalid {
                reason: reason.unwrap_or_else(|| {
                    "MISP's answer does not list it as added, and names no error".to_string()
                }),
            };
        }
    }

    /// MISP refused the whole batch (saveFail): each item sent is invalid with its reason.
    pub fn apply_refusal(&mut self, sent: &[(usize, Value)], body: &Value, message: &str) {
        let errors = body.get("errors");
        for (position, (index, _)) in sent.iter().enumerate() {
            self.items[*index].outcome = Outcome::Invalid {
                reason: item_errors(errors, position, sent.len())
                    .unwrap_or_else(|| format!("MISP refused it: {message}")),
            };
        }
    }

    /// The per-item results, in the input's order.
    pub fn results(&self) -> Vec<Value> {
        self.items
            .iter()
            .zip(&self.warninglists)
            .map(|(item, lists)| {
                let mut result = json!({
                    "value": item.value,
                    "type": item.attribute_type,
                    "type_detected": item.detected,
                    "outcome": item.outcome.label(),
                });
                match &item.outcome {
                    Outcome::Created { id, uuid } => {
                        result["id"] = json!(id);
                        result["uuid"] = json!(uuid);
                    }
                    Outcome::AlreadyPresent { id } => result["id"] = json!(id),
                    Outcome::Invalid { reason } => result["reason"] = json!(reason),
                    Outcome::Pending | Outcome::OnWarninglist => {}
                }
                if !lists.is_empty() {
                    result["warninglists"] =
                        Value::Array(lists.iter().map(WarninglistHit::to_json).collect());
                }
                result
            })
            .collect()
    }

    /// How many items had each outcome.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for item in &self.items {
            match item.outcome {
                Outcome::Created { .. } => counts.created += 1,
                Outcome::AlreadyPresent { .. } => counts.already_present += 1,
                Outcome::OnWarninglist => counts.on_warninglist += 1,
                Outcome::Invalid { .. } | Outcome::Pending => counts.invalid += 1,
            }
        }
        counts
    }

    fn pending(&self) -> impl Iterator<Item = (usize, &Item)> {
        self.items
            .iter()
            .enumerate()
            .filter(|(_, item)| item.outcome == Outcome::Pending)
    }
}

/// The number of items with each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub already_present: usize,
    pub on_warninglist: usize,
    pub invalid: usize,
}

impl Counts {
    pub fn to_json(self) -> Value {
        json!({
            "created": self.created,
            "already present": self.already_present,
            "on warninglist": self.on_warninglist,
            "invalid": self.invalid,
        })
    }

    /// `Event 12: 3 created, 1 already present, 1 on a warninglist (not added), 0 invalid`.
    pub fn summary(self, event: &str) -> String {
        format!(
            "{event}: {} created, {} already present, {} on a warninglist (not added), {} invalid",
            self.created, self.already_present, self.on_warninglist, self.invalid
        )
    }
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Created { .. } => "created",
            Outcome::AlreadyPresent { .. } => "already present",
            Outcome::OnWarninglist => "on warninglist",
            Outcome::Invalid { .. } => "invalid",
        }
    }
}

/// The UUID of the attribute with `attribute_type` and `value` in the event `event_uuid`: a
/// version 5 UUID in the event's UUID as namespace, so the same value in the same event
/// always gets the same UUID.
pub fn attribute_uuid(event_uuid: &Uuid, attribute_type: &str, value: &str) -> Uuid {
    Uuid::new_v5(event_uuid, format!("{attribute_type}\n{value}").as_bytes())
}

/// The attributes of an `attributes/restSearch` answer (`{"response": {"Attribute": […]}}`,
/// or without the `response` wrapper).
pub fn search_attributes(answer: &Value) -> Vec<&Value> {
    let inner = answer.get("response").unwrap_or(answer);
    inner
        .get("Attribute")
        .and_then(Value::as_array)
        .map(|attributes| attributes.iter().collect())
        .unwrap_or_default()
}

fn typed_item(value: String, given_type: Option<String>) -> Item {
    let invalid = |value: String, attribute_type, detected, reason: String| Item {
        value,
        attribute_type,
        detected,
        outcome: Outcome::Invalid { reason },
    };
    if value.is_empty() {
        return invalid(value, given_type, false, "the value is empty".to_string());
    }
    match given_type {
        Some(given) => {
            if attribute_type::is_misp_type(&given) {
                Item {
                    value,
                    attribute_type: Some(given),
                    detected: false,
                    outcome: Outcome::Pending,
                }
            } else {
                let closest = attribute_type::closest_types(&given);
                let reason = if closest.is_empty() {
                    format!("{given:?} is not a MISP attribute type")
                } else {
                    format!(
                        "{given:?} is not a MISP attribute type; closest: {}",
                        closest.join(", ")
                    )
                };
                invalid(value, Some(given), false, reason)
            }
        }
        None => match indicators::detect_type(&value) {
            Some(detected) => Item {
                value,
                attribute_type: Some(detected.to_string()),
                detected: true,
                outcome: Outcome::Pending,
            },
            None => invalid(
                value,
                None,
                false,
                "its MISP type could not be told from the value; give it as {\"value\", \"type\"}"
                    .to_string(),
            ),
        },
    }
}

/// The attributes of MISP's add answer: `{"Attribute": […]}` or `{"Attribute": {…}}` (one
/// added), or a list of `{"Attribute": …}` entries.
fn added_attributes(answer: &Value) -> Vec<&Value> {
    match answer {
        Value::Object(fields) => match fields.get("Attribute") {
            Some(Value::Array(attributes)) => attributes.iter().collect(),
            Some(attribute @ Value::Object(_)) => vec![attribute],
            _ => fields
                .values()
                .filter_map(|entry| entry.get("Attribute"))
                .collect(),
        },
        Value::Array(entries) => entries
            .iter()
            .map(|entry| entry.get("Attribute").unwrap_or(entry))
            .collect(),
        _ => Vec::new(),
    }
}

/// MISP's reasons for the item at `position` of the batch: `errors.attribute_<position>`
/// (several sent), or `errors` itself when only one was sent.
fn item_errors(errors: Option<&Value>, position: usize, sent: usize) -> Option<String> {
    let errors = errors?;
    let own = match errors.get(format!("attribute_{position}")) {
        Some(own) => own,
        None if sent == 1 => errors,
        None => return None,
    };
    let text = reasons_text(own);
    (!text.is_empty()).then_some(text)
}

/// `value: A similar attribute already exists for this event.; type: …` from MISP's
/// `{field: [messages]}`, or the text itself.
fn reasons_text(errors: &Value) -> String {
    match errors {
        Value::String(text) => text.clone(),
        Value::Object(fields) => fields
            .iter()
            .map(|(field, messages)| format!("{field}: {}", reasons_text(messages)))
            .collect::<Vec<_>>()
            .join("; "),
        Value::Array(messages) => messages
            .iter()
            .map(reasons_text)
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT_UUID: &str = "5b646415-7b48-40d5-86b4-c0070acd0835";

    fn event_uuid() -> Uuid {
        Uuid::parse_str(EVENT_UUID).expect("a UUID")
    }

    fn outcomes(plan: &Plan) -> Vec<&'static str> {
        plan.items.iter().map(|item| item.outcome.label()).collect()
    }

    #[test]
    fn values_are_refanged_typed_and_bad_ones_explained() {
        let plan = Plan::read(
            "1.2.3[.]4\nhxxp://evil[.]example/x\nnot a value\n1.2.3.4\nd41d8cd98f00b204e9800998ecf8427e\n",
        );
        let typed: Vec<(&str, Option<&str>)> = plan
            .items
            .iter()
            .map(|item| (item.value.as_str(), item.attribute_type.as_deref()))
            .collect();
        assert_eq!(
            typed,
            [
                ("1.2.3.4", Some("ip-dst")),
                ("http://evil.example/x", Some("url")),
                ("not a value", None),
                ("1.2.3.4", Some("ip-dst")),
                ("d41d8cd98f00b204e9800998ecf8427e", Some("md5")),
            ]
        );
        assert_eq!(
            outcomes(&plan),
            ["pending", "pending", "invalid", "invalid", "pending"]
        );
        assert_eq!(
            plan.items[3].outcome,
            Outcome::Invalid {
                reason: "the same ip-dst value as item 1".into()
            }
        );
        assert_eq!(
            plan.pending_values(),
            [
                "1.2.3.4",
                "http://evil.example/x",
                "d41d8cd98f00b204e9800998ecf8427e"
            ]
        );
    }

    #[test]
    fn a_given_type_must_be_a_misp_type() {
        let plan = Plan::read(
            r#"[{"value": "a b c", "type": "text"}, {"value": "x", "type": "SHA256"}, "", {"value": 3}]"#,
        );
        assert_eq!(
            outcomes(&plan),
            ["pending", "invalid", "invalid", "invalid"]
        );
        assert!(!plan.items[0].detected);
        assert_eq!(
            plan.items[1].outcome,
            Outcome::Invalid {
                reason:
                    "\"SHA256\" is not a MISP attribute type; closest: sha256, sha3-256, sha512"
                        .into()
            }
        );
        assert_eq!(
            plan.items[2].outcome,
            Outcome::Invalid {
                reason: "the value is empty".into()
            }
        );
        assert_eq!(
            plan.items[3].outcome,
            Outcome::Invalid {
                reason: "the entry {\"value\":3} has no text 'value'".into()
            }
        );
    }

    #[test]
    fn present_and_warninglisted_values_are_not_sent() {
        let mut plan = Plan::read("1.2.3.4\n8.8.8.8\nevil.example\nnew.example\n");
        plan.mark_present(&json!({"response": {"Attribute": [
            {"id": "41", "type": "ip-dst", "value": "1.2.3.4"},
            {"id": "42", "type": "hostname", "value": "evil.example"},
        ]}}));
        let hits = HashMap::from([(
            "8.8.8.8".to_string(),
            vec![WarninglistHit {
                id: "3".into(),
                name: "Google DNS".into(),
                matched: Some("8.8.8.8/32".into()),
            }],
        )]);
        plan.mark_warninglisted(&hits, false);
        assert_eq!(
            outcomes(&plan),
            ["already present", "on warninglist", "pending", "pending"],
            "a hostname attribute is not the domain evil.example"
        );
        let settings = BatchSettings {
            to_ids: Some(true),
            comment: Some("from incident 2095".into()),
            category: Some("Network activity".into()),
            add_warninglisted: false,
        };
        let sent = plan.attributes_to_add(&event_uuid(), &settings);
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].0, 2);
        assert_eq!(
            sent[0].1,
            json!({"type": "domain", "value": "evil.example", "category": "Network activity",
                   "to_ids": true, "comment": "from incident 2095",
                   "uuid": attribute_uuid(&event_uuid(), "domain", "evil.example").to_string()})
        );
        let mut again = Plan::read("8.8.8.8\n");
        again.mark_warninglisted(&hits, true);
        assert_eq!(outcomes(&again), ["pending"], "added when asked");
        assert_eq!(again.results()[0]["warninglists"][0]["name"], "Google DNS");
    }

    #[test]
    fn attribute_uuids_depend_on_event_type_and_value_only() {
        let first = attribute_uuid(&event_uuid(), "ip-dst", "1.2.3.4");
        assert_eq!(first, attribute_uuid(&event_uuid(), "ip-dst", "1.2.3.4"));
        assert_ne!(first, attribute_uuid(&event_uuid(), "ip-src", "1.2.3.4"));
        assert_ne!(first, attribute_uuid(&Uuid::nil(), "ip-dst", "1.2.3.4"));
        assert_eq!(first.get_version_num(), 5);
    }

    #[test]
    fn misps_answer_gives_each_sent_item_its_outcome() {
        let mut plan = Plan::read("1.2.3.4\nevil.example\nnew.example\n");
        let sent = plan.attributes_to_add(&event_uuid(), &BatchSettings::default());
        let uuid = |position: usize| text(sent[position].1.get("uuid"));
        plan.apply_add_answer(
            &sent,
            &json!({"Attribute": [
                {"id": "50", "uuid": uuid(0), "type": "ip-dst", "value": "1.2.3.4"},
                {"id": "51", "uuid": uuid(2).to_uppercase(), "type": "domain", "value": "new.example"},
            ], "errors": {"attribute_1": {"type": ["Options depend on the selected category."]}}}),
        );
        assert_eq!(
            plan.items[0].outcome,
            Outcome::Created {
                id: "50".into(),
                uuid: uuid(0)
            }
        );
        assert_eq!(
            plan.items[1].outcome,
            Outcome::Invalid {
                reason: "type: Options depend on the selected category.".into()
            }
        );
        assert_eq!(plan.items[2].outcome.label(), "created");
        let counts = plan.counts();
        assert_eq!(counts.created, 2);
        assert_eq!(counts.invalid, 1);
        assert_eq!(
            counts.summary("Event 12"),
            "Event 12: 2 created, 0 already present, 0 on a warninglist (not added), 1 invalid"
        );
    }

    #[test]
    fn a_single_attribute_answer_and_a_refusal_are_read_too() {
        let mut plan = Plan::read("1.2.3.4\n");
        let sent = plan.attributes_to_add(&event_uuid(), &BatchSettings::default());
        let uuid = text(sent[0].1.get("uuid"));
        plan.apply_add_answer(&sent, &json!({"Attribute": {"id": "7", "uuid": uuid}}));
        assert_eq!(plan.items[0].outcome.label(), "created");

        let mut refused = Plan::read("1.2.3.4\n");
        let sent = refused.attributes_to_add(&event_uuid(), &BatchSettings::default());
        refused.apply_refusal(
            &sent,
            &json!({"saved": false, "errors": {"value": ["A similar attribute already exists for this event."]}}),
            "Could not add Attribute",
        );
        assert_eq!(
            refused.items[0].outcome,
            Outcome::Invalid {
                reason: "value: A similar attribute already exists for this event.".into()
            }
        );
        let mut silent = Plan::read("1.2.3.4\nevil.example\n");
        let sent = silent.attributes_to_add(&event_uuid(), &BatchSettings::default());
        silent.apply_refusal(&sent, &json!({}), "Could not add Attribute");
        assert_eq!(
            silent.items[1].outcome,
            Outcome::Invalid {
                reason: "MISP refused it: Could not add Attribute".into()
            }
        );
    }
}
