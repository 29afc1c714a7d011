//! The `misp_delete_attribute` function: deletes a MISP attribute, softly (MISP marks it
//! deleted and can restore it) unless a hard delete is asked for; deleting again is a success.

use fn_misp::attribute::{self, AttributeRef};
use fn_misp::{
    APP, DESTINATION, MISP_ATTRIBUTE_ID, MISP_ATTRIBUTE_UUID, MISP_ATTRIBUTE_VALUE, MISP_EVENT_ID,
};
use serde_json::{Value, json};
use soar_core::misp::{Method, MispClient, MispError};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputField,
    Inputs,
};

/// Deletes an attribute (`POST /attributes/delete/{id}`, `/attributes/delete/{id}/1` for a
/// hard delete) and returns MISP's answer.
#[derive(Debug, Clone, Copy)]
pub struct MispDeleteAttribute;

/// `__function/misp_hard_delete`: remove the attribute for good.
pub static MISP_HARD_DELETE: InputField =
    InputField::boolean("misp_hard_delete", "390fa4de-cab2-4c33-b7ee-240820e5b843").tooltip(
        "Remove the attribute for good; otherwise MISP marks it deleted (a soft delete, which MISP can restore)",
    );

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_delete_attribute",
    display_name: "MISP Delete Attribute",
    description: "Deletes a MISP attribute, named by ID, by UUID, or by value within an event: a soft delete (MISP marks it deleted) unless misp_hard_delete is set. Deleting again is a success with already_deleted true: an attribute named by UUID or by value that MISP holds soft-deleted counts as deleted when a soft delete is asked (a hard delete then removes it), and one that disappears while the function runs counts as deleted. MISP does not look deleted attributes up by numeric ID and keeps nothing of a hard-deleted one, so an ID MISP does not show, or a UUID or value it has no attribute for, is an error naming it.",
    destination: DESTINATION,
    uuid: "1a41743c-fb55-4389-a5b5-24fbdf3f7f21",
    app: &APP,
    inputs: &[
        MISP_ATTRIBUTE_ID,
        MISP_ATTRIBUTE_UUID,
        MISP_EVENT_ID,
        MISP_ATTRIBUTE_VALUE,
        MISP_HARD_DELETE,
    ],
};

soar_core::register_function!(MispDeleteAttribute);

/// The request the inputs describe, checked before MISP is called.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeleteRequest {
    attribute: AttributeRef,
    hard: bool,
}

/// What MISP holds for the attribute before the delete.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    Live(Value),
    SoftDeleted(Value),
    Nothing,
}

/// The attribute's identity, read from MISP's `Attribute` object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    id: i64,
    uuid: String,
}

#[soar_core::async_trait]
impl Function for MispDeleteAttribute {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let request = delete_request(inputs)?;
        let hard = request.hard;
        let client = fn_misp::connect(context)?;
        context.progress(format!("Looking up {}", request.attribute.describe()));
        let attribute = match find(client, &request.attribute).await? {
            Found::Live(attribute) => attribute,
            Found::SoftDeleted(attribute) if !hard => {
                let identity = Identity::of(&attribute)?;
                let message = format!(
                    "Attribute {} is already deleted; nothing was changed",
                    identity.id
                );
                context.progress(message.clone());
                return Ok(output(
                    json!({"Attribute": attribute}),
                    &identity,
                    false,
                    true,
                    message,
                ));
            }
            Found::SoftDeleted(attribute) => attribute,
            Found::Nothing => return Err(not_found(&request.attribute)),
        };
        let identity = Identity::of(&attribute)?;
        let id = identity.id.to_string();
        let kind = if hard { "Hard-deleting" } else { "Deleting" };
        context.progress(format!("{kind} attribute {id}"));

        let mut segments = vec!["attributes", "delete", id.as_str()];
        if hard {
            segments.push("1");
        }
        let uuid = identity.uuid.as_str();
        let check = move || async move { deleted_state(client, uuid, hard).await };
        let answer = match client
            .change_checked(Method::POST, &segments, None, check)
            .await
        {
            Ok(answer) => answer,
            // Gone between the lookup and the delete: done, if MISP now holds it deleted.
            Err(MispError::NotFound { .. }) => match deleted_state(client, uuid, hard).await? {
                Some(state) => {
                    let message = format!("Attribute {id} is already deleted; nothing was changed");
                    context.progress(message.clone());
                    return Ok(output(state, &identity, hard, true, message));
                }
                None => return Err(not_found(&request.attribute)),
            },
            Err(MispError::Forbidden {
                status, message, ..
            }) => {
                return Err(FunctionError::integration(format!(
                    "MISP refused to delete attribute {id} (HTTP {status}): {message}"
                )));
            }
            Err(other) => return Err(other.into()),
        };
        let message = if hard {
            format!("Attribute {id} hard-deleted")
        } else {
            format!("Attribute {id} deleted")
        };
        context.progress(message.clone());
        Ok(output(answer, &identity, hard, false, message))
    }
}

impl Identity {
    fn of(attribute: &Value) -> Result<Identity, FunctionError> {
        let id = match attribute.get("id") {
            Some(Value::String(text)) => text.parse().ok(),
            Some(Value::Number(number)) => number.as_i64(),
            _ => None,
        };
        let uuid = attribute.get("uuid").and_then(Value::as_str);
        match (id, uuid) {
            (Some(id), Some(uuid)) => Ok(Identity {
                id,
                uuid: uuid.to_string(),
            }),
            _ => Err(MispError::InvalidResponse {
                path: "/attributes/restSearch".to_string(),
                problem: format!("the attribute lacks a numeric id or a uuid: {attribute}"),
            }
            .into()),
        }
    }
}

fn delete_request(inputs: &Inputs) -> Result<DeleteRequest, FunctionError> {
    Ok(DeleteRequest {
        attribute: AttributeRef::from_inputs(inputs)?,
        hard: inputs.boolean(MISP_HARD_DELETE.name)?.unwrap_or(false),
    })
}

/// What MISP holds for the reference. By id through `attributes/view`, which shows live
/// attributes only; by UUID or value through `attributes/restSearch` with `deleted: [0, 1]`,
/// which finds soft-deleted ones too (a live match wins over a deleted one).
async fn find(client: &MispClient, reference: &AttributeRef) -> Result<Found, FunctionError> {
    let query = match reference {
        AttributeRef::Id(_) => {
            return Ok(match attribute::find_attribute(client, reference).await? {
                Some(attribute) => Found::Live(attribute),
                None => Found::Nothing,
            });
        }
        AttributeRef::Uuid(uuid) => json!({"uuid": uuid, "deleted": [0, 1]}),
        AttributeRef::ValueInEvent { event_id, value } => {
            json!({"eventid": event_id.to_string(), "value": value, "deleted": [0, 1]})
        }
    };
    let found = client.search_attributes(query).await?;
    Ok(pick(&found, reference))
}

/// The attribute `reference` names in a restSearch answer: the last live exact match, else
/// the last deleted one. MISP's `uuid` filter also matches the event's UUID and its `value`
/// filter wildcards and composite halves, hence the exact comparison.
fn pick(found: &Value, reference: &AttributeRef) -> Found {
    let matches = |attribute: &&Value| match reference {
        AttributeRef::Uuid(uuid) => attribute
            .get("uuid")
            .and_then(Value::as_str)
            .is_some_and(|known| known.eq_ignore_ascii_case(uuid)),
        AttributeRef::ValueInEvent { value, .. } => {
            attribute.get("value").and_then(Value::as_str) == Some(value.as_str())
        }
        AttributeRef::Id(_) => false,
    };
    let candidates: Vec<&Value> = found
        .get("Attribute")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(matches)
        .collect();
    let clean = |attribute: &Value| {
        let mut attribute = attribute.clone();
        if let Value::Object(fields) = &mut attribute {
            fields.remove("Event");
        }
        attribute
    };
    if let Some(live) = candidates.iter().rfind(|attribute| !is_deleted(attribute)) {
        return Found::Live(clean(live));
    }
    match candidates.last() {
        Some(deleted) => Found::SoftDeleted(clean(deleted)),
        None => Found::Nothing,
    }
}

/// Whether MISP now holds the attribute deleted (the retry check): gone, or, for a soft
/// delete, marked deleted. `Some` carries what MISP shows of it, `{}` when it is gone.
async fn deleted_state(
    client: &MispClient,
    uuid: &str,
    hard: bool,
) -> Result<Option<Value>, MispError> {
    let found = client
        .search_attributes(json!({"uuid": uuid, "deleted": [0, 1]}))
        .await?;
    Ok(match pick(&found, &AttributeRef::Uuid(uuid.to_string())) {
        Found::Nothing => Some(json!({})),
        Found::SoftDeleted(attribute) if !hard => Some(json!({"Attribute": attribute})),
        Found::SoftDeleted(_) | Found::Live(_) => None,
    })
}

fn is_deleted(attribute: &Value) -> bool {
    match attribute.get("deleted") {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::Number(number)) => number.as_i64() != Some(0),
        Some(Value::String(text)) => text == "1" || text == "true",
        _ => false,
    }
}

fn not_found(reference: &AttributeRef) -> FunctionError {
    match reference {
        AttributeRef::Id(id) => FunctionError::integration(format!(
            "MISP shows no attribute {id}: it never existed, the API key's user cannot see it, or it is deleted already (MISP does not look deleted attributes up by ID; name it by misp_attribute_uuid to have an earlier delete count as done)"
        )),
        other => attribute::attribute_not_found(other),
    }
}

fn output(
    content: Value,
    identity: &Identity,
    hard: bool,
    already_deleted: bool,
    message: String,
) -> FunctionOutput {
    FunctionOutput::success(content)
        .with_extra("deleted", json!(true))
        .with_extra("hard", json!(hard))
        .with_extra("already_deleted", json!(already_deleted))
        .with_extra("attribute_id", json!(identity.id))
        .with_extra("attribute_uuid", json!(identity.uuid))
        .with_extra("message", json!(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> Result<DeleteRequest, String> {
        let inputs = Inputs::from_value(value).expect("test inputs are an object");
        delete_request(&inputs).map_err(|error| error.to_string())
    }

    #[test]
    fn a_soft_delete_unless_a_hard_one_is_asked_for() {
        assert_eq!(
            request(json!({"misp_attribute_id": 7})),
            Ok(DeleteRequest {
                attribute: AttributeRef::Id(7),
                hard: false
            })
        );
        assert_eq!(
            request(json!({"misp_attribute_id": 7, "misp_hard_delete": true})),
            Ok(DeleteRequest {
                attribute: AttributeRef::Id(7),
                hard: true
            })
        );
        assert_eq!(
            request(json!({"misp_attribute_id": 7, "misp_hard_delete": "yes"})),
            Err("input 'misp_hard_delete' must be true or false, got \"yes\"".into())
        );
        assert_eq!(
            request(json!({})),
            Err("input 'misp_attribute_id' or 'misp_attribute_uuid' or 'misp_attribute_value' with 'misp_event_id' is required but was not given".into())
        );
    }

    #[test]
    fn a_live_match_wins_over_a_deleted_one_and_matches_are_exact() {
        let found = json!({"Attribute": [
            {"id": "1", "uuid": "u1", "value": "1.2.3.4", "deleted": false, "Event": {"id": "5"}},
            {"id": "2", "uuid": "u2", "value": "1.2.3.4", "deleted": true},
            {"id": "3", "uuid": "u3", "value": "1.2.3.40", "deleted": false},
        ]});
        let by_value = AttributeRef::ValueInEvent {
            event_id: 5,
            value: "1.2.3.4".into(),
        };
        assert_eq!(
            pick(&found, &by_value),
            Found::Live(json!({"id": "1", "uuid": "u1", "value": "1.2.3.4", "deleted": false}))
        );
        assert!(matches!(
            pick(&found, &AttributeRef::Uuid("U2".into())),
            Found::SoftDeleted(attribute) if attribute["id"] == "2"
        ));
        assert_eq!(
            pick(&found, &AttributeRef::Uuid("u9".into())),
            Found::Nothing
        );
        assert_eq!(pick(&json!({}), &by_value), Found::Nothing);
    }

    #[test]
    fn deleted_flags_come_in_misps_forms() {
        assert!(is_deleted(&json!({"deleted": true})));
        assert!(is_deleted(&json!({"deleted": "1"})));
        assert!(is_deleted(&json!({"deleted": 1})));
        assert!(!is_deleted(&json!({"deleted": false})));
        assert!(!is_deleted(&json!({})));
    }

    #[test]
    fn an_unknown_id_says_why_misp_cannot_tell() {
        assert!(
            not_found(&AttributeRef::Id(12))
                .to_string()
                .starts_with("MISP shows no attribute 12: it never existed")
        );
        assert_eq!(
            not_found(&AttributeRef::Uuid("u".into())).to_string(),
            "MISP has no attribute u, or the API key's user cannot see it"
        );
    }

    #[test]
    fn identity_needs_a_numeric_id_and_a_uuid() {
        assert_eq!(
            Identity::of(&json!({"id": "40", "uuid": "u"})).ok(),
            Some(Identity {
                id: 40,
                uuid: "u".into()
            })
        );
        assert!(Identity::of(&json!({"id": "x", "uuid": "u"})).is_err());
        assert!(Identity::of(&json!({"id": 40})).is_err());
    }
}
