//! The `misp_get_event` function: one MISP event by id or UUID, with its ATT&CK techniques and
//! related events, sighting counts in place of sighting lists, and big events capped.

use fn_misp::event::EventRef;
use fn_misp::tags::{self, AttackTechnique};
use fn_misp::{APP, DESTINATION, MISP_EVENT_ID, MISP_EVENT_UUID};
use serde_json::{Map, Value, json};
use soar_core::misp::MispError;
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputField,
    Inputs,
};

/// Reads an event (`GET /events/view/{id|uuid}`). `content` is MISP's `{"Event": …}` with at
/// most `misp_max_attributes` attributes (the event's first, then its objects'), each with
/// `sighting_counts` instead of MISP's `Sighting` list; `attack_techniques`,
/// `related_events`, `truncated` and `total_attributes` sit beside it.
#[derive(Debug, Clone, Copy)]
pub struct MispGetEvent;

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_get_event",
    display_name: "MISP Get Event",
    description: "Get a MISP event by ID or UUID: its attributes and objects (at most misp_max_attributes attributes, 1000 by default; truncated says when more were left out), tags, galaxies, ATT&CK techniques and related events. Each attribute's sightings are given as counts (sighting_counts: sightings, false_positives, expirations, last_seen) rather than as MISP's list.",
    destination: DESTINATION,
    uuid: "ed6adc8e-13d6-4cef-a750-02ad7e8070bd",
    app: &APP,
    inputs: &[MISP_EVENT_ID, MISP_EVENT_UUID, MISP_MAX_ATTRIBUTES],
};

/// `__function/misp_max_attributes`.
pub static MISP_MAX_ATTRIBUTES: InputField =
    InputField::number("misp_max_attributes", "2b086e47-93f2-49cb-a2b2-61a4cb6138c0").tooltip(
        "The most attributes to return, the event's and its objects' together (1000 when empty, at most 100000)",
    );

/// How many attributes a result holds when `misp_max_attributes` is not given.
pub const DEFAULT_MAX_ATTRIBUTES: usize = 1_000;

/// The largest `misp_max_attributes`: above it the result outgrows what SOAR takes.
pub const MOST_ATTRIBUTES: i64 = 100_000;

soar_core::register_function!(MispGetEvent);

#[soar_core::async_trait]
impl Function for MispGetEvent {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let event = EventRef::from_inputs(inputs)?;
        let max_attributes = max_attributes(inputs)?;
        let client = fn_misp::connect(context)?;
        context.progress(format!("Getting MISP {}", event.describe()));
        let answer = match client.get_event(&event.segment()).await {
            Ok(answer) => answer,
            Err(MispError::NotFound { .. }) => return Err(event.not_found()),
            Err(error) => return Err(error.into()),
        };
        let summary = EventSummary::of(answer, max_attributes);
        if summary.truncated() {
            context.progress(format!(
                "MISP {} has {} attributes; returning the first {}",
                event.describe(),
                summary.total_attributes,
                summary.returned_attributes
            ));
        } else {
            context.progress(format!(
                "Got MISP {} with {} attributes",
                event.describe(),
                summary.total_attributes
            ));
        }
        Ok(summary.into_output())
    }
}

/// An event read from MISP, cut down to what the result carries.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSummary {
    /// MISP's `{"Event": …}`, attributes capped and sightings counted.
    pub content: Value,
    pub attack_techniques: Vec<AttackTechnique>,
    pub related_events: Vec<Value>,
    /// Attributes in the event and its objects, before the cap.
    pub total_attributes: usize,
    /// Attributes the result holds.
    pub returned_attributes: usize,
}

impl EventSummary {
    /// Works on MISP's answer in place: a big event is never copied, and the attributes over
    /// the cap are dropped before the result is built.
    pub fn of(mut answer: Value, max_attributes: usize) -> EventSummary {
        let (attack_techniques, related_events) = match answer.get("Event") {
            Some(event) => (tags::event_attack_techniques(event), related_events(event)),
            None => (Vec::new(), Vec::new()),
        };
        let (total_attributes, returned_attributes) =
            match answer.get_mut("Event").and_then(Value::as_object_mut) {
                Some(event) => cap_attributes(event, max_attributes),
                None => (0, 0),
            };
        EventSummary {
            content: answer,
            attack_techniques,
            related_events,
            total_attributes,
            returned_attributes,
        }
    }

    pub fn truncated(&self) -> bool {
        self.returned_attributes < self.total_attributes
    }

    pub fn into_output(self) -> FunctionOutput {
        let truncated = self.truncated();
        let techniques: Vec<Value> = self
            .attack_techniques
            .iter()
            .map(AttackTechnique::to_json)
            .collect();
        FunctionOutput::success(self.content)
            .with_extra("attack_techniques", Value::Array(techniques))
            .with_extra("related_events", Value::Array(self.related_events))
            .with_extra("truncated", Value::Bool(truncated))
            .with_extra("total_attributes", json!(self.total_attributes))
    }
}

/// `misp_max_attributes`, 1 to [`MOST_ATTRIBUTES`], [`DEFAULT_MAX_ATTRIBUTES`] when not given.
fn max_attributes(inputs: &Inputs) -> Result<usize, FunctionError> {
    let given = inputs.integer_in(
        MISP_MAX_ATTRIBUTES.name,
        1..=MOST_ATTRIBUTES,
        "how many attributes to return",
    )?;
    Ok(given
        .and_then(|count| usize::try_from(count).ok())
        .unwrap_or(DEFAULT_MAX_ATTRIBUTES))
}

/// Keeps the first `max` attributes, the event's before its objects' (an object left with
/// none of its attributes is dropped), and replaces each one's sightings by counts. Returns
/// (attributes before, attributes kept).
fn cap_attributes(event: &mut Map<String, Value>, max: usize) -> (usize, usize) {
    let mut total = 0;
    let mut budget = max;
    if let Some(Value::Array(attributes)) = event.get_mut("Attribute") {
        total += keep_first(attributes, &mut budget);
    }
    if let Some(Value::Array(objects)) = event.get_mut("Object") {
        objects.retain_mut(|object| {
            let Some(Value::Array(attributes)) = object.get_mut("Attribute") else {
                return true;
            };
            let before = attributes.len();
            total += keep_first(attributes, &mut budget);
            before == 0 || !attributes.is_empty()
        });
    }
    (total, max - budget)
}

/// Cuts `attributes` to what is left of `budget`, counts the sightings of those kept, and
/// returns how many there were.
fn keep_first(attributes: &mut Vec<Value>, budget: &mut usize) -> usize {
    let before = attributes.len();
    attributes.truncate(*budget);
    *budget -= attributes.len();
    for attribute in attributes.iter_mut() {
        if let Some(fields) = attribute.as_object_mut() {
            count_sightings(fields);
        }
    }
    before
}

/// Replaces MISP's `Sighting` list (absent when there are none) with `sighting_counts`:
/// sightings, false positives and expirations (MISP's types 0, 1 and 2), and `last_seen`, the
/// epoch second of the latest sighting of type 0 (`null` when none).
fn count_sightings(attribute: &mut Map<String, Value>) {
    let (mut sightings, mut false_positives, mut expirations) = (0u64, 0u64, 0u64);
    let mut last_seen: Option<i64> = None;
    if let Some(Value::Array(list)) = attribute.remove("Sighting") {
        for sighting in &list {
            match number(sighting.get("type")).unwrap_or(0) {
                0 => {
                    sightings += 1;
                    let seen = number(sighting.get("date_sighting"));
                    last_seen = last_seen.max(seen);
                }
                1 => false_positives += 1,
                2 => expirations += 1,
                _ => {}
            }
        }
    }
    attribute.insert(
        "sighting_counts".to_string(),
        json!({
            "sightings": sightings,
            "false_positives": false_positives,
            "expirations": expirations,
            "last_seen": last_seen,
        }),
    );
}

/// The event's `RelatedEvent` entries, compact: id, uuid, info, threat_level_id, date and
/// the names of the owning (`org`) and creating (`orgc`) organisations.
fn related_events(event: &Value) -> Vec<Value> {
    let Some(Value::Array(related)) = event.get("RelatedEvent") else {
        return Vec::new();
    };
    related
        .iter()
        .filter_map(|entry| entry.get("Event"))
        .map(|related| {
            let field = |name: &str| related.get(name).cloned().unwrap_or(Value::Null);
            let org_name = |name: &str| {
                related
                    .get(name)
                    .and_then(|org| org.get("name"))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            json!({
                "id": field("id"),
                "uuid": field("uuid"),
                "info": field("info"),
                "threat_level_id": field("threat_level_id"),
                "date": field("date"),
                "org": org_name("Org"),
                "orgc": org_name("Orgc"),
            })
        })
        .collect()
}

/// MISP's numbers come as strings of digits or as numbers.
fn number(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(value: Value) -> Inputs {
        Inputs::from_value(value).expect("test inputs are an object")
    }

    fn attribute(value: &str, sightings: Value) -> Value {
        json!({"id": value, "type": "ip-dst", "value": value, "category": "Network activity",
               "to_ids": true, "comment": "", "Tag": [{"name": "tlp:green"}], "Sighting": sightings})
    }

    fn event(attributes: usize, objects: &[usize]) -> Value {
        let objects: Vec<Value> = objects
            .iter()
            .enumerate()
            .map(|(object, count)| {
                let attributes: Vec<Value> = (0..*count)
                    .map(|index| attribute(&format!("o{object}-{index}"), json!([])))
                    .collect();
                json!({"id": object.to_string(), "name": "file", "Attribute": attributes})
            })
            .collect();
        let attributes: Vec<Value> = (0..attributes)
            .map(|index| attribute(&format!("a{index}"), json!([])))
            .collect();
        json!({"Event": {"id": "12", "info": "x", "Attribute": attributes, "Object": objects}})
    }

    fn kept_values(summary: &EventSummary) -> Vec<String> {
        let event = &summary.content["Event"];
        let mut values: Vec<String> = Vec::new();
        for attribute in event["Attribute"].as_array().into_iter().flatten() {
            values.push(attribute["value"].as_str().unwrap_or_default().to_string());
        }
        for object in event["Object"].as_array().into_iter().flatten() {
            for attribute in object["Attribute"].as_array().into_iter().flatten() {
                values.push(attribute["value"].as_str().unwrap_or_default().to_string());
            }
        }
        values
    }

    #[test]
    fn max_attributes_defaults_to_1000_and_is_bounded() {
        assert_eq!(max_attributes(&inputs(json!({}))).ok(), Some(1000));
        assert_eq!(
            max_attributes(&inputs(json!({"misp_max_attributes": 5}))).ok(),
            Some(5)
        );
        let error = max_attributes(&inputs(json!({"misp_max_attributes": 0})))
            .expect_err("0 attributes is no result");
        assert_eq!(
            error.to_string(),
            "input 'misp_max_attributes' is 0, must be from 1 to 100000 (how many attributes to return)"
        );
        assert!(max_attributes(&inputs(json!({"misp_max_attributes": 100_001}))).is_err());
        assert!(max_attributes(&inputs(json!({"misp_max_attributes": "ten"}))).is_err());
    }

    #[test]
    fn the_events_attributes_come_first_then_its_objects() {
        let summary = EventSummary::of(event(2, &[2, 3, 0]), 3);
        assert_eq!(kept_values(&summary), vec!["a0", "a1", "o0-0"]);
        assert_eq!(summary.total_attributes, 7);
        assert_eq!(summary.returned_attributes, 3);
        assert!(summary.truncated());
        let objects = summary.content["Event"]["Object"]
            .as_array()
            .expect("objects");
        let ids: Vec<&str> = objects.iter().filter_map(|o| o["id"].as_str()).collect();
        assert_eq!(
            ids,
            vec!["0", "2"],
            "an object whose attributes were all cut goes, an empty one stays"
        );
    }

    #[test]
    fn an_event_within_the_cap_is_whole() {
        let summary = EventSummary::of(event(2, &[2]), 4);
        assert_eq!(kept_values(&summary).len(), 4);
        assert!(!summary.truncated());
        let output = summary.into_output();
        assert_eq!(output.extra["truncated"], json!(false));
        assert_eq!(output.extra["total_attributes"], json!(4));
        assert_eq!(output.extra["attack_techniques"], json!([]));
        assert_eq!(output.extra["related_events"], json!([]));
    }

    #[test]
    fn sightings_become_counts() {
        let answer = json!({"Event": {"id": "1", "Attribute": [
            attribute("a", json!([
                {"type": "0", "date_sighting": "1700000000"},
                {"type": "0", "date_sighting": "1700000500"},
                {"type": "1", "date_sighting": "1700009999"},
                {"type": "2", "date_sighting": "1700000001"},
            ])),
            {"id": "2", "value": "b"},
        ]}});
        let summary = EventSummary::of(answer, 10);
        let attributes = &summary.content["Event"]["Attribute"];
        assert!(attributes[0].get("Sighting").is_none());
        assert_eq!(
            attributes[0]["sighting_counts"],
            json!({"sightings": 2, "false_positives": 1, "expirations": 1, "last_seen": 1700000500})
        );
        assert_eq!(
            attributes[1]["sighting_counts"],
            json!({"sightings": 0, "false_positives": 0, "expirations": 0, "last_seen": null})
        );
        assert_eq!(attributes[0]["Tag"][0]["name"], json!("tlp:green"));
    }

    #[test]
    fn techniques_and_related_events_are_read_beside_the_event() {
        let answer = json!({"Event": {
            "id": "9",
            "Tag": [{"name": "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\""}],
            "Galaxy": [{"GalaxyCluster": [{"type": "mitre-attack-pattern", "value": "PowerShell - T1059.001"}]}],
            "Attribute": [],
            "RelatedEvent": [{"Event": {
                "id": "4", "uuid": "5a329d19-03e0-4eaa-8b4d-4310950d210f", "info": "TRITON",
                "threat_level_id": "3", "date": "2017-12-14", "published": false,
                "Org": {"id": "1", "name": "ORGNAME"}, "Orgc": {"id": "2", "name": "CIRCL"},
            }}],
        }});
        let output = EventSummary::of(answer, 10).into_output();
        assert_eq!(
            output.extra["attack_techniques"],
            json!([{"id": "T1059.001", "name": "PowerShell"}, {"id": "T1566", "name": "Phishing"}])
        );
        assert_eq!(
            output.extra["related_events"],
            json!([{"id": "4", "uuid": "5a329d19-03e0-4eaa-8b4d-4310950d210f", "info": "TRITON",
                    "threat_level_id": "3", "date": "2017-12-14", "org": "ORGNAME", "orgc": "CIRCL"}])
        );
        assert_eq!(
            output.content["Event"]["RelatedEvent"][0]["Event"]["id"],
            json!("4")
        );
    }
}
