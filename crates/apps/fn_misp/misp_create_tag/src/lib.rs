//! The `misp_create_tag` function: attaches a tag (`tlp:white`, an ATT&CK technique, a threat
//! actor…) to a MISP event or to one of its attributes.

use fn_misp::{
    APP, DESTINATION, MISP_ATTRIBUTE_VALUE, MISP_EVENT_ID, MISP_TAG_NAME, MISP_TAG_TYPE,
};
use serde_json::{Value, json};
use soar_core::misp::{MispClient, MispError};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputError,
    Inputs,
};

/// Attaches a tag (`POST /tags/attachTagToObject`) and returns MISP's answer.
#[derive(Debug, Clone, Copy)]
pub struct MispCreateTag;

/// The definition of the original fn_misp 3.0.2 export.
pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_create_tag",
    display_name: "MISP Create Tag",
    description: "Creates a Tag",
    destination: DESTINATION,
    uuid: "71d3fed2-0eec-49af-a418-8e8178e5a458",
    app: &APP,
    inputs: &[
        MISP_TAG_TYPE,
        MISP_TAG_NAME,
        MISP_ATTRIBUTE_VALUE,
        MISP_EVENT_ID,
    ],
};

soar_core::register_function!(MispCreateTag);

/// What the tag goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagTarget {
    Event,
    Attribute,
}

/// The request the inputs describe, checked before MISP is called.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TagRequest {
    target: TagTarget,
    tag_name: String,
    event_id: i64,
    /// Only for [`TagTarget::Attribute`].
    attribute_value: Option<String>,
}

#[soar_core::async_trait]
impl Function for MispCreateTag {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let request = tag_request(inputs)?;
        let client = fn_misp::connect(context)?;
        context.progress(format!(
            "Tagging {} with {}",
            request.target.label(),
            request.tag_name
        ));
        let uuid = match &request.attribute_value {
            Some(value) => attribute_uuid(client, request.event_id, value).await?,
            None => fn_misp::event_uuid(client, request.event_id).await?,
        };
        let answer = match client.attach_tag(&uuid, &request.tag_name, false).await {
            Ok(answer) => answer,
            Err(MispError::Rejected { message, body, .. }) => {
                return Err(unable_to_save(&body, &message));
            }
            Err(other) => return Err(other.into()),
        };
        if answer.get("errors").is_some() || answer.get("saved") == Some(&Value::Bool(false)) {
            return Err(unable_to_save(&answer, ""));
        }
        context.progress("Tag has been created");
        Ok(FunctionOutput::success(answer))
    }
}

impl TagTarget {
    pub fn label(self) -> &'static str {
        match self {
            TagTarget::Event => "Event",
            TagTarget::Attribute => "Attribute",
        }
    }
}

fn tag_request(inputs: &Inputs) -> Result<TagRequest, FunctionError> {
    let label = inputs.required_select(MISP_TAG_TYPE.name)?;
    let target = match MISP_TAG_TYPE
        .value_by_label(&label)
        .map(|value| value.label)
    {
        Some("Event") => TagTarget::Event,
        Some("Attribute") => TagTarget::Attribute,
        _ => {
            return Err(InputError::Invalid {
                field: MISP_TAG_TYPE.name.to_string(),
                value: format!("{label:?}"),
                problem: "must be Event or Attribute".to_string(),
            }
            .into());
        }
    };
    let tag_name = inputs.required_text(MISP_TAG_NAME.name)?;
    let event_id = fn_misp::required_event_id(inputs)?;
    let attribute_value = match target {
        TagTarget::Event => None,
        TagTarget::Attribute => Some(inputs.required_text(MISP_ATTRIBUTE_VALUE.name)?),
    };
    Ok(TagRequest {
        target,
        tag_name,
        event_id,
        attribute_value,
    })
}

/// The UUID of the attribute of event `event_id` whose value is `value`, found with
/// `attributes/restSearch` instead of fetching the whole event as the original did.
async fn attribute_uuid(
    client: &MispClient,
    event_id: i64,
    value: &str,
) -> Result<String, FunctionError> {
    let found = client
        .search_attributes(json!({"eventid": event_id.to_string(), "value": value}))
        .await?;
    if let Some(uuid) = matching_attribute_uuid(&found, value) {
        return Ok(uuid);
    }
    // Tell an event without attributes from a value that is not there, as the original did.
    let any = client
        .search_attributes(json!({"eventid": event_id.to_string(), "limit": 1}))
        .await?;
    if attributes(&any).next().is_none() {
        return Err(FunctionError::integration(format!(
            "Failed to find any attributes on event {event_id}"
        )));
    }
    Err(FunctionError::integration(format!(
        "Failed to match attribute value = {value} for any attributes associated with event = {event_id}"
    )))
}

/// The last attribute whose value is exactly `value` (the original took the last match);
/// MISP's `value` filter also matches `%` wildcards and either half of composite values.
fn matching_attribute_uuid(found: &Value, value: &str) -> Option<String> {
    attributes(found)
        .filter(|attribute| attribute.get("value").and_then(Value::as_str) == Some(value))
        .filter_map(|attribute| attribute.get("uuid").and_then(Value::as_str))
        .next_back()
        .map(str::to_string)
}

fn attributes(found: &Value) -> std::slice::Iter<'_, Value> {
    found
        .get("Attribute")
        .and_then(Value::as_array)
        .map_or([].iter(), |attributes| attributes.iter())
}

/// The original's "Unable to save the tag." error with MISP's `errors`, or its message when
/// the answer has none.
fn unable_to_save(body: &Value, message: &str) -> FunctionError {
    let errors = match body.get("errors") {
        Some(Value::String(errors)) => errors.clone(),
        Some(errors) => errors.to_string(),
        None if !message.is_empty() => message.to_string(),
        None => body.to_string(),
    };
    FunctionError::integration(format!("Unable to save the tag. {errors}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(value: Value) -> Inputs {
        Inputs::from_value(value).expect("test inputs are an object")
    }

    #[test]
    fn event_tag_needs_no_attribute_value() {
        let request = tag_request(&inputs(json!({
            "misp_tag_type": {"id": 3963, "name": "Event"},
            "misp_tag_name": "tlp:white",
            "misp_event_id": 12,
            "misp_attribute_value": "",
        })))
        .expect("valid inputs");
        assert_eq!(
            request,
            TagRequest {
                target: TagTarget::Event,
                tag_name: "tlp:white".into(),
                event_id: 12,
                attribute_value: None,
            }
        );
    }

    #[test]
    fn attribute_tag_needs_the_value() {
        let base = json!({
            "misp_tag_type": "Attribute",
            "misp_tag_name": "tlp:white",
            "misp_event_id": 10,
        });
        let error = tag_request(&inputs(base.clone())).expect_err("value is required");
        assert_eq!(
            error.to_string(),
            "input 'misp_attribute_value' is required but was not given"
        );
        let mut with_value = base;
        with_value["misp_attribute_value"] = json!("sample text");
        let request = tag_request(&inputs(with_value)).expect("valid inputs");
        assert_eq!(request.target, TagTarget::Attribute);
        assert_eq!(request.attribute_value.as_deref(), Some("sample text"));
    }

    #[test]
    fn tag_type_name_and_event_id_are_required() {
        let error = tag_request(&inputs(json!({"misp_tag_name": "x", "misp_event_id": 1})))
            .expect_err("type is required");
        assert_eq!(
            error.to_string(),
            "input 'misp_tag_type' is required but was not given"
        );
        let error = tag_request(&inputs(
            json!({"misp_tag_type": "Event", "misp_event_id": 1}),
        ))
        .expect_err("name is required");
        assert_eq!(
            error.to_string(),
            "input 'misp_tag_name' is required but was not given"
        );
        let error = tag_request(&inputs(
            json!({"misp_tag_type": "Event", "misp_tag_name": "x"}),
        ))
        .expect_err("event id is required");
        assert_eq!(
            error.to_string(),
            "input 'misp_event_id' is required but was not given"
        );
        let error = tag_request(&inputs(
            json!({"misp_tag_type": "Event", "misp_tag_name": "x", "misp_event_id": "5"}),
        ))
        .expect_err("a text event id is refused");
        assert_eq!(
            error.to_string(),
            "Unexpected input type for MISP Event ID. Expected and integer, received <class 'str'>"
        );
    }

    #[test]
    fn unknown_tag_type_is_refused() {
        let error = tag_request(&inputs(json!({
            "misp_tag_type": {"id": 1, "name": "Object"},
            "misp_tag_name": "x",
            "misp_event_id": 1,
        })))
        .expect_err("Object is not a choice");
        assert_eq!(
            error.to_string(),
            "input 'misp_tag_type' is \"Object\", must be Event or Attribute"
        );
    }

    #[test]
    fn the_last_exact_match_wins() {
        let found = json!({"Attribute": [
            {"value": "1.1.1.1", "uuid": "first"},
            {"value": "1.1.1.10", "uuid": "wildcard"},
            {"value": "1.1.1.1", "uuid": "last"},
        ]});
        assert_eq!(
            matching_attribute_uuid(&found, "1.1.1.1").as_deref(),
            Some("last")
        );
        assert_eq!(matching_attribute_uuid(&found, "2.2.2.2"), None);
        assert_eq!(matching_attribute_uuid(&json!([]), "1.1.1.1"), None);
    }

    #[test]
    fn unable_to_save_shows_misps_errors() {
        let body = json!({"saved": false, "errors": "Failed to attach 1 tags. Reasons: {\"0\":\"Invalid Tag.\"}"});
        assert_eq!(
            unable_to_save(&body, "Could not attachTagToObject Tag").to_string(),
            "Unable to save the tag. Failed to attach 1 tags. Reasons: {\"0\":\"Invalid Tag.\"}"
        );
        assert_eq!(
            unable_to_save(&json!({"saved": false}), "Could not attachTagToObject Tag").to_string(),
            "Unable to save the tag. Could not attachTagToObject Tag"
        );
    }
}
