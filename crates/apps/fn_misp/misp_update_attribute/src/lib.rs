//! The `misp_update_attribute` function: changes an attribute's to_ids flag, comment,
//! category, distribution or first and last seen times, and answers with the attribute as
//! MISP holds it afterwards.

use chrono::{DateTime, Utc};
use fn_misp::attribute::{self, AttributeRef};
use fn_misp::{
    APP, DESTINATION, MISP_ATTRIBUTE_ID, MISP_ATTRIBUTE_UUID, MISP_ATTRIBUTE_VALUE, MISP_CATEGORY,
    MISP_DISTRIBUTION, MISP_EVENT_ID,
};
use serde_json::{Map, Value, json};
use soar_core::misp::{Method, MispClient, MispError, Repeat};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputError,
    InputField, InputType, Inputs,
};

/// Edits an attribute (`POST /attributes/edit/{id}`) and returns MISP's `{"Attribute": …}`.
#[derive(Debug, Clone, Copy)]
pub struct MispUpdateAttribute;

/// The shared fields, also reachable here where they were first defined.
pub use fn_misp::{MISP_COMMENT, MISP_TO_IDS};

/// `__function/misp_first_seen`: when the attribute was first seen.
pub static MISP_FIRST_SEEN: InputField = InputField::new(
    "misp_first_seen",
    InputType::Datetimepicker,
    "5639ac31-9bec-4b40-852d-b997237682c1",
)
.tooltip("When the attribute was first seen; empty leaves it as it is");

/// `__function/misp_last_seen`: when the attribute was last seen.
pub static MISP_LAST_SEEN: InputField = InputField::new(
    "misp_last_seen",
    InputType::Datetimepicker,
    "8628ff2e-6c66-470f-b68c-1f6202c68a29",
)
.tooltip("When the attribute was last seen; empty leaves it as it is");

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_update_attribute",
    display_name: "MISP Update Attribute",
    description: "Changes a MISP attribute, named by ID, by UUID, or by value within an event: its to_ids flag, comment, category, distribution, first seen and last seen. Fields left empty stay as they are; at least one is needed. Answers with the attribute as MISP holds it afterwards.",
    destination: DESTINATION,
    uuid: "18de0777-66fa-4157-8398-c2f976332be4",
    app: &APP,
    inputs: &[
        MISP_ATTRIBUTE_ID,
        MISP_ATTRIBUTE_UUID,
        MISP_EVENT_ID,
        MISP_ATTRIBUTE_VALUE,
        MISP_TO_IDS,
        MISP_COMMENT,
        MISP_CATEGORY,
        MISP_DISTRIBUTION,
        MISP_FIRST_SEEN,
        MISP_LAST_SEEN,
    ],
};

soar_core::register_function!(MispUpdateAttribute);

/// What each distribution number means for an attribute; 5 follows its event.
pub const ATTRIBUTE_DISTRIBUTION_MEANING: &str = "0 your organisation only, 1 this community only, 2 connected communities, 3 all communities, 4 sharing group, 5 as its event";

/// The fields that can change, in the order the error for "no change" names them.
const CHANGE_FIELDS: [&InputField; 6] = [
    &MISP_TO_IDS,
    &MISP_COMMENT,
    &MISP_CATEGORY,
    &MISP_DISTRIBUTION,
    &MISP_FIRST_SEEN,
    &MISP_LAST_SEEN,
];

/// The request the inputs describe, checked before MISP is called.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UpdateRequest {
    attribute: AttributeRef,
    changes: Changes,
}

/// The new values; `None` leaves a field as it is. At least one is set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Changes {
    to_ids: Option<bool>,
    comment: Option<String>,
    category: Option<String>,
    distribution: Option<i64>,
    first_seen: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
}

#[soar_core::async_trait]
impl Function for MispUpdateAttribute {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let request = update_request(inputs)?;
        let changes = &request.changes;
        let client = fn_misp::connect(context)?;
        context.progress(format!("Looking up {}", request.attribute.describe()));
        let mut attribute = attribute::require_attribute(client, &request.attribute).await?;
        if let Value::Object(fields) = &mut attribute {
            // A search's context is not part of the attribute.
            fields.remove("Event");
        }
        let id = attribute_id(&attribute)?;
        if changes.already_in(&attribute) {
            context.progress(format!(
                "Attribute {id} already has these values; nothing was changed"
            ));
            return Ok(output(json!({"Attribute": attribute}), id, false));
        }
        if let Some(category) = &changes.category
            && attribute.get("category").and_then(Value::as_str) != Some(category.as_str())
        {
            check_category_fits(client, &attribute, category).await?;
        }
        context.progress(format!("Updating attribute {id}: {}", changes.describe()));

        let id_text = id.to_string();
        let id_ref = id_text.as_str();
        // After a lost answer: an attribute that already holds every new value was changed.
        let check = move || async move {
            Ok(view(client, id_ref)
                .await?
                .filter(|now| changes.already_in(now))
                .map(|now| json!({"Attribute": now})))
        };
        let answer = match client
            .change_checked(
                Method::POST,
                &["attributes", "edit", &id_text],
                Some(&changes.body()),
                check,
            )
            .await
        {
            Ok(answer) => answer,
            Err(MispError::NotFound { .. }) => {
                return Err(attribute::attribute_not_found(&request.attribute));
            }
            // A saveFail envelope with MISP's validation errors, field by field.
            Err(rejected @ MispError::Rejected { status: 403, .. }) => {
                return fn_misp::rejection_as_failure(rejected);
            }
            Err(MispError::Forbidden {
                status, message, ..
            }) => {
                return Err(FunctionError::integration(format!(
                    "MISP refused to update attribute {id} (HTTP {status}): {message}"
                )));
            }
            Err(other) => return Err(other.into()),
        };
        if answer
            .get("Attribute")
            .is_none_or(|found| !found.is_object())
        {
            return Err(MispError::InvalidResponse {
                path: format!("/attributes/edit/{id}"),
                problem: "the answer has no Attribute object".to_string(),
            }
            .into());
        }
        context.progress(format!("Attribute {id} updated"));
        Ok(output(answer, id, true))
    }
}

impl Changes {
    /// Whether `attribute` (MISP's `Attribute` object) already holds every new value.
    fn already_in(&self, attribute: &Value) -> bool {
        let text = |name: &str| match attribute.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => String::new(),
        };
        let seen = |name: &str| {
            attribute
                .get(name)
                .and_then(Value::as_str)
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|instant| instant.with_timezone(&Utc))
        };
        self.to_ids
            .is_none_or(|to_ids| flag(attribute.get("to_ids")) == Some(to_ids))
            && self
                .comment
                .as_ref()
                .is_none_or(|comment| *comment == text("comment"))
            && self
                .category
                .as_ref()
                .is_none_or(|category| *category == text("category"))
            && self
                .distribution
                .is_none_or(|distribution| distribution.to_string() == text("distribution"))
            && self
                .first_seen
                .is_none_or(|first_seen| seen("first_seen") == Some(first_seen))
            && self
                .last_seen
                .is_none_or(|last_seen| seen("last_seen") == Some(last_seen))
    }

    /// The body MISP's document gives `attributes/edit`: the attribute's fields, flat, only
    /// those that change; distribution as text, seen times in ISO 8601 with microseconds.
    fn body(&self) -> Value {
        let mut body = Map::new();
        if let Some(to_ids) = self.to_ids {
            body.insert("to_ids".to_string(), json!(to_ids));
        }
        if let Some(comment) = &self.comment {
            body.insert("comment".to_string(), json!(comment));
        }
        if let Some(category) = &self.category {
            body.insert("category".to_string(), json!(category));
        }
        if let Some(distribution) = self.distribution {
            body.insert("distribution".to_string(), json!(distribution.to_string()));
        }
        if let Some(first_seen) = self.first_seen {
            body.insert("first_seen".to_string(), json!(iso_micro(first_seen)));
        }
        if let Some(last_seen) = self.last_seen {
            body.insert("last_seen".to_string(), json!(iso_micro(last_seen)));
        }
        Value::Object(body)
    }

    /// The changes for a progress message: `to_ids off, comment, category Network activity`.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(to_ids) = self.to_ids {
            parts.push(format!("to_ids {}", if to_ids { "on" } else { "off" }));
        }
        if self.comment.is_some() {
            parts.push("comment".to_string());
        }
        if let Some(category) = &self.category {
            parts.push(format!("category {category}"));
        }
        if let Some(distribution) = self.distribution {
            parts.push(format!("distribution {distribution}"));
        }
        if let Some(first_seen) = self.first_seen {
            parts.push(format!("first seen {}", iso_micro(first_seen)));
        }
        if let Some(last_seen) = self.last_seen {
            parts.push(format!("last seen {}", iso_micro(last_seen)));
        }
        parts.join(", ")
    }
}

fn update_request(inputs: &Inputs) -> Result<UpdateRequest, FunctionError> {
    let attribute = AttributeRef::from_inputs(inputs)?;
    let category = match inputs.select(MISP_CATEGORY.name)? {
        None => None,
        Some(label) => match MISP_CATEGORY.value_by_label(&label) {
            Some(known) => Some(known.label.to_string()),
            None => {
                return Err(InputError::Invalid {
                    field: MISP_CATEGORY.name.to_string(),
                    value: format!("{label:?}"),
                    problem: "is not a MISP attribute category".to_string(),
                }
                .into());
            }
        },
    };
    let changes = Changes {
        to_ids: inputs.boolean(MISP_TO_IDS.name)?,
        comment: inputs.text(MISP_COMMENT.name)?,
        category,
        distribution: inputs.integer_in(
            MISP_DISTRIBUTION.name,
            0..=5,
            ATTRIBUTE_DISTRIBUTION_MEANING,
        )?,
        first_seen: seen_time(inputs, &MISP_FIRST_SEEN)?,
        last_seen: seen_time(inputs, &MISP_LAST_SEEN)?,
    };
    if changes
        == (Changes {
            to_ids: None,
            comment: None,
            category: None,
            distribution: None,
            first_seen: None,
            last_seen: None,
        })
    {
        let names: Vec<&str> = CHANGE_FIELDS.iter().map(|field| field.name).collect();
        return Err(InputError::Missing {
            field: names.join("' or '"),
        }
        .into());
    }
    if let (Some(first_seen), Some(last_seen)) = (changes.first_seen, changes.last_seen)
        && last_seen < first_seen
    {
        return Err(InputError::Invalid {
            field: MISP_LAST_SEEN.name.to_string(),
            value: iso_micro(last_seen),
            problem: format!(
                "is before {} {}; MISP needs last seen at or after first seen",
                MISP_FIRST_SEEN.name,
                iso_micro(first_seen)
            ),
        }
        .into());
    }
    Ok(UpdateRequest { attribute, changes })
}

/// A datetimepicker input (epoch milliseconds) as a UTC time.
fn seen_time(inputs: &Inputs, field: &InputField) -> Result<Option<DateTime<Utc>>, InputError> {
    let Some(millis) = inputs.epoch_millis(field.name)? else {
        return Ok(None);
    };
    DateTime::from_timestamp_millis(millis)
        .map(Some)
        .ok_or_else(|| InputError::Invalid {
            field: field.name.to_string(),
            value: millis.to_string(),
            problem: "is not a time (epoch milliseconds)".to_string(),
        })
}

/// MISP's form of a seen time: UTC, microseconds and the offset, as MISP shows it back.
fn iso_micro(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// MISP's `to_ids`, which comes as a boolean, a number or a string.
fn flag(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => Some(number.as_i64() != Some(0)),
        Value::String(text) => Some(text == "1" || text == "true"),
        _ => None,
    }
}

/// The attribute's numeric id, which `attributes/edit` is called with.
fn attribute_id(attribute: &Value) -> Result<i64, FunctionError> {
    let id = match attribute.get("id") {
        Some(Value::String(text)) => text.parse().ok(),
        Some(Value::Number(number)) => number.as_i64(),
        _ => None,
    };
    id.ok_or_else(|| {
        MispError::InvalidResponse {
            path: "/attributes/view".to_string(),
            problem: format!(
                "the attribute has no numeric id: {}",
                attribute.get("id").unwrap_or(&Value::Null)
            ),
        }
        .into()
    })
}

/// Checks, with the server's own describeTypes, that the attribute's type may have
/// `category`; a server whose answer lacks the mapping leaves the check to MISP's validation.
async fn check_category_fits(
    client: &MispClient,
    attribute: &Value,
    category: &str,
) -> Result<(), FunctionError> {
    let Some(attribute_type) = attribute.get("type").and_then(Value::as_str) else {
        return Ok(());
    };
    let described = client
        .request(
            Method::GET,
            &["attributes", "describeTypes"],
            None,
            Repeat::Safe,
        )
        .await?;
    match category_problem(&described, attribute_type, category) {
        None => Ok(()),
        Some(problem) => Err(InputError::Invalid {
            field: MISP_CATEGORY.name.to_string(),
            value: category.to_string(),
            problem,
        }
        .into()),
    }
}

/// Why `category` does not fit `attribute_type` by describeTypes' `category_type_mappings`,
/// naming the categories that do; `None` when it fits or the answer has no mapping.
fn category_problem(described: &Value, attribute_type: &str, category: &str) -> Option<String> {
    let mappings = described
        .get("result")
        .unwrap_or(described)
        .get("category_type_mappings")?
        .as_object()?;
    let allows = |types: &Value| {
        types.as_array().is_some_and(|types| {
            types
                .iter()
                .any(|known| known.as_str() == Some(attribute_type))
        })
    };
    if mappings.get(category).is_some_and(allows) {
        return None;
    }
    let fitting: Vec<&str> = mappings
        .iter()
        .filter(|(_, types)| allows(types))
        .map(|(name, _)| name.as_str())
        .collect();
    Some(format!(
        "does not fit the attribute's type {attribute_type}; MISP allows {} for it",
        if fitting.is_empty() {
            "no category".to_string()
        } else {
            fitting.join(", ")
        }
    ))
}

/// `GET /attributes/view/{id}` for the retry check, `None` when MISP no longer shows it.
async fn view(client: &MispClient, id: &str) -> Result<Option<Value>, MispError> {
    match client
        .request(Method::GET, &["attributes", "view", id], None, Repeat::Safe)
        .await
    {
        Ok(answer) => Ok(answer.get("Attribute").cloned()),
        Err(MispError::NotFound { .. } | MispError::Rejected { status: 405, .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

fn output(content: Value, attribute_id: i64, changed: bool) -> FunctionOutput {
    FunctionOutput::success(content)
        .with_extra("attribute_id", json!(attribute_id))
        .with_extra("changed", json!(changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> Result<UpdateRequest, String> {
        let inputs = Inputs::from_value(value).expect("test inputs are an object");
        update_request(&inputs).map_err(|error| error.to_string())
    }

    fn changes(value: Value) -> Changes {
        let mut inputs = json!({"misp_attribute_id": 7});
        for (key, item) in value.as_object().expect("an object") {
            inputs[key] = item.clone();
        }
        request(inputs).expect("valid inputs").changes
    }

    #[test]
    fn every_change_is_read_and_sent_in_misps_form() {
        let read = changes(json!({
            "misp_to_ids": false,
            "misp_comment": "benign per analyst",
            "misp_category": {"id": 5011, "name": "External analysis"},
            "misp_distribution": 5,
            "misp_first_seen": 1_709_288_430_123_i64,
            "misp_last_seen": 1_709_374_830_000_i64,
        }));
        assert_eq!(
            read.body(),
            json!({
                "to_ids": false,
                "comment": "benign per analyst",
                "category": "External analysis",
                "distribution": "5",
                "first_seen": "2024-03-01T10:20:30.123000+00:00",
                "last_seen": "2024-03-02T10:20:30.000000+00:00",
            })
        );
        assert_eq!(
            read.describe(),
            "to_ids off, comment, category External analysis, distribution 5, first seen 2024-03-01T10:20:30.123000+00:00, last seen 2024-03-02T10:20:30.000000+00:00"
        );
    }

    #[test]
    fn empty_fields_stay_as_they_are() {
        let read =
            changes(json!({"misp_to_ids": null, "misp_comment": "", "misp_distribution": 0}));
        assert_eq!(read.body(), json!({"distribution": "0"}));
    }

    #[test]
    fn at_least_one_change_is_needed_and_the_error_names_them_all() {
        assert_eq!(
            request(json!({"misp_attribute_id": 7, "misp_comment": ""})),
            Err("input 'misp_to_ids' or 'misp_comment' or 'misp_category' or 'misp_distribution' or 'misp_first_seen' or 'misp_last_seen' is required but was not given".into())
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let with = |key: &str, value: Value| {
            let mut inputs = json!({"misp_attribute_id": 7});
            inputs[key] = value;
            request(inputs).expect_err("refused")
        };
        assert_eq!(
            with("misp_distribution", json!(6)),
            "input 'misp_distribution' is 6, must be from 0 to 5 (0 your organisation only, 1 this community only, 2 connected communities, 3 all communities, 4 sharing group, 5 as its event)"
        );
        assert_eq!(
            with("misp_category", json!({"id": 1, "name": "Gossip"})),
            "input 'misp_category' is \"Gossip\", is not a MISP attribute category"
        );
        assert_eq!(
            with("misp_to_ids", json!("no")),
            "input 'misp_to_ids' must be true or false, got \"no\""
        );
        assert_eq!(
            request(json!({"misp_attribute_id": 7, "misp_first_seen": 2000, "misp_last_seen": 1000})),
            Err("input 'misp_last_seen' is 1970-01-01T00:00:01.000000+00:00, is before misp_first_seen 1970-01-01T00:00:02.000000+00:00; MISP needs last seen at or after first seen".into())
        );
        assert_eq!(
            request(json!({"misp_to_ids": true})),
            Err("input 'misp_attribute_id' or 'misp_attribute_uuid' or 'misp_attribute_value' with 'misp_event_id' is required but was not given".into())
        );
    }

    #[test]
    fn an_attribute_that_holds_the_new_values_needs_no_change() {
        let attribute = json!({
            "id": "7", "to_ids": false, "comment": "benign", "category": "Network activity",
            "distribution": "5", "first_seen": "2024-03-01T10:20:30.123000+00:00", "last_seen": null,
        });
        let holds = |value: Value| changes(value).already_in(&attribute);
        assert!(holds(
            json!({"misp_to_ids": false, "misp_comment": "benign"})
        ));
        assert!(holds(
            json!({"misp_distribution": 5, "misp_first_seen": 1_709_288_430_123_i64})
        ));
        assert!(holds(json!({"misp_category": "Network activity"})));
        assert!(!holds(json!({"misp_to_ids": true})));
        assert!(!holds(
            json!({"misp_to_ids": false, "misp_comment": "other"})
        ));
        assert!(!holds(json!({"misp_last_seen": 1_709_288_430_123_i64})));
        assert!(changes(json!({"misp_to_ids": true})).already_in(&json!({"to_ids": "1"})));
    }

    #[test]
    fn a_category_that_does_not_fit_names_the_ones_that_do() {
        let described = json!({"result": {"category_type_mappings": {
            "Network activity": ["ip-dst", "domain"],
            "Payload delivery": ["md5", "ip-dst"],
            "Attribution": ["threat-actor"],
        }}});
        assert_eq!(
            category_problem(&described, "ip-dst", "Payload delivery"),
            None
        );
        assert_eq!(
            category_problem(&described, "ip-dst", "Attribution").as_deref(),
            Some(
                "does not fit the attribute's type ip-dst; MISP allows Network activity, Payload delivery for it"
            )
        );
        assert_eq!(category_problem(&json!({}), "ip-dst", "Attribution"), None);
    }

    #[test]
    fn the_attribute_id_comes_as_text_or_number() {
        assert_eq!(attribute_id(&json!({"id": "40"})).ok(), Some(40));
        assert_eq!(attribute_id(&json!({"id": 41})).ok(), Some(41));
        assert!(attribute_id(&json!({"uuid": "x"})).is_err());
    }
}
