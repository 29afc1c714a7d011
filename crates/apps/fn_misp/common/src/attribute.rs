//! Which attribute a function acts on: by id, by UUID, or by value within an event, read
//! from the inputs once and looked up in MISP the same way by every function.

use serde_json::{Value, json};
use soar_core::misp::{Method, MispClient, MispError, Repeat};
use soar_core::{FunctionError, InputError, Inputs};

use crate::{MISP_ATTRIBUTE_ID, MISP_ATTRIBUTE_UUID, MISP_ATTRIBUTE_VALUE, MISP_EVENT_ID};

/// An attribute as the inputs name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeRef {
    /// `misp_attribute_id`.
    Id(i64),
    /// `misp_attribute_uuid`.
    Uuid(String),
    /// `misp_attribute_value` within event `misp_event_id`.
    ValueInEvent { event_id: i64, value: String },
}

impl AttributeRef {
    /// Reads `misp_attribute_id`, else `misp_attribute_uuid`, else `misp_event_id` with
    /// `misp_attribute_value`; none of them is an error naming all three ways.
    pub fn from_inputs(inputs: &Inputs) -> Result<AttributeRef, FunctionError> {
        if let Some(id) = inputs.integer(MISP_ATTRIBUTE_ID.name)? {
            if id < 1 {
                return Err(InputError::Invalid {
                    field: MISP_ATTRIBUTE_ID.name.to_string(),
                    value: id.to_string(),
                    problem: "must be a MISP attribute ID (1 or more)".to_string(),
                }
                .into());
            }
            return Ok(AttributeRef::Id(id));
        }
        if let Some(uuid) = inputs.text(MISP_ATTRIBUTE_UUID.name)? {
            let uuid = uuid.trim().to_string();
            if uuid::Uuid::parse_str(&uuid).is_err() {
                return Err(InputError::Invalid {
                    field: MISP_ATTRIBUTE_UUID.name.to_string(),
                    value: uuid,
                    problem: "is not a UUID".to_string(),
                }
                .into());
            }
            return Ok(AttributeRef::Uuid(uuid));
        }
        let value = inputs.text(MISP_ATTRIBUTE_VALUE.name)?;
        match value {
            Some(value) => {
                let event_id = crate::required_event_id(inputs)?;
                Ok(AttributeRef::ValueInEvent { event_id, value })
            }
            None => Err(InputError::Missing {
                field: format!(
                    "{}' or '{}' or '{}' with '{}",
                    MISP_ATTRIBUTE_ID.name,
                    MISP_ATTRIBUTE_UUID.name,
                    MISP_ATTRIBUTE_VALUE.name,
                    MISP_EVENT_ID.name
                ),
            }
            .into()),
        }
    }

    /// How a message names the attribute: `attribute 12`, `attribute <uuid>`, or
    /// `attribute with value 1.2.3.4 in event 5`.
    pub fn describe(&self) -> String {
        match self {
            AttributeRef::Id(id) => format!("attribute {id}"),
            AttributeRef::Uuid(uuid) => format!("attribute {uuid}"),
            AttributeRef::ValueInEvent { event_id, value } => {
                format!("attribute with value {value} in event {event_id}")
            }
        }
    }
}

/// The attribute (MISP's `Attribute` object, unwrapped) the reference names, or `None` when
/// MISP has none (or the key's user cannot see it). By id or UUID with
/// `GET /attributes/view/{id|uuid}`; by value with `attributes/restSearch`, the last exact
/// match as the original create_tag took it. Reads are retried.
pub async fn find_attribute(
    client: &MispClient,
    reference: &AttributeRef,
) -> Result<Option<Value>, FunctionError> {
    match reference {
        AttributeRef::Id(id) => view_attribute(client, &id.to_string()).await,
        AttributeRef::Uuid(uuid) => view_attribute(client, uuid).await,
        AttributeRef::ValueInEvent { event_id, value } => {
            let found = client
                .search_attributes(json!({"eventid": event_id.to_string(), "value": value}))
                .await?;
            Ok(found
                .get("Attribute")
                .and_then(Value::as_array)
                .and_then(|attributes| {
                    attributes
                        .iter()
                        .rfind(|attribute| {
                            attribute.get("value").and_then(Value::as_str) == Some(value.as_str())
                        })
                        .cloned()
                }))
        }
    }
}

/// [`find_attribute`], with a missing attribute as an error naming the reference.
pub async fn require_attribute(
    client: &MispClient,
    reference: &AttributeRef,
) -> Result<Value, FunctionError> {
    find_attribute(client, reference)
        .await?
        .ok_or_else(|| attribute_not_found(reference))
}

/// The error for an attribute MISP does not know.
pub fn attribute_not_found(reference: &AttributeRef) -> FunctionError {
    FunctionError::integration(format!(
        "MISP has no {}, or the API key's user cannot see it",
        reference.describe()
    ))
}

async fn view_attribute(
    client: &MispClient,
    id_or_uuid: &str,
) -> Result<Option<Value>, FunctionError> {
    match client
        .request(
            Method::GET,
            &["attributes", "view", id_or_uuid],
            None,
            Repeat::Safe,
        )
        .await
    {
        Ok(answer) => Ok(answer.get("Attribute").cloned()),
        // MISP 2.5 answers an unknown or deleted attribute with 405 "Invalid attribute"
        // (AttributesController::view), and a malformed reference with 404.
        Err(MispError::NotFound { .. } | MispError::Rejected { status: 405, .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(value: Value) -> Result<AttributeRef, String> {
        let inputs = Inputs::from_value(value).expect("test inputs are an object");
        AttributeRef::from_inputs(&inputs).map_err(|error| error.to_string())
    }

    #[test]
    fn id_wins_over_uuid_and_uuid_over_value() {
        let uuid = "5e0f2d2a-1c4b-4f6e-9a0b-0c1d2e3f4a5b";
        assert_eq!(
            reference(json!({"misp_attribute_id": 7, "misp_attribute_uuid": uuid})),
            Ok(AttributeRef::Id(7))
        );
        assert_eq!(
            reference(
                json!({"misp_attribute_uuid": uuid, "misp_attribute_value": "x", "misp_event_id": 1})
            ),
            Ok(AttributeRef::Uuid(uuid.to_string()))
        );
        assert_eq!(
            reference(json!({"misp_attribute_value": "1.2.3.4", "misp_event_id": 5})),
            Ok(AttributeRef::ValueInEvent {
                event_id: 5,
                value: "1.2.3.4".to_string()
            })
        );
    }

    #[test]
    fn bad_or_missing_references_name_the_fields() {
        assert_eq!(
            reference(json!({})).expect_err("nothing given"),
            "input 'misp_attribute_id' or 'misp_attribute_uuid' or 'misp_attribute_value' with 'misp_event_id' is required but was not given"
        );
        assert_eq!(
            reference(json!({"misp_attribute_uuid": "12"})).expect_err("not a uuid"),
            "input 'misp_attribute_uuid' is 12, is not a UUID"
        );
        assert_eq!(
            reference(json!({"misp_attribute_id": 0})).expect_err("not an id"),
            "input 'misp_attribute_id' is 0, must be a MISP attribute ID (1 or more)"
        );
        assert_eq!(
            reference(json!({"misp_attribute_value": "x"})).expect_err("no event"),
            "input 'misp_event_id' is required but was not given"
        );
    }
}
