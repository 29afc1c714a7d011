//! The `misp_remove_tag` function: removes a tag from a MISP event or attribute. A tag that is
//! not attached, or that MISP does not have, is a success with `removed: false`.

use fn_misp::attribute::{self, AttributeRef};
use fn_misp::event::EventRef;
use fn_misp::{
    APP, DESTINATION, MISP_ATTRIBUTE_ID, MISP_ATTRIBUTE_UUID, MISP_ATTRIBUTE_VALUE, MISP_EVENT_ID,
    MISP_EVENT_UUID, MISP_TAG_NAME, MISP_TAG_TYPE,
};
use serde_json::{Value, json};
use soar_core::misp::{Method, MispClient, MispError};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputError,
    Inputs,
};

/// Removes a tag (`POST /tags/removeTagFromObject`) and says whether one was removed.
#[derive(Debug, Clone, Copy)]
pub struct MispRemoveTag;

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_remove_tag",
    display_name: "MISP Remove Tag",
    description: "Removes a tag from a MISP event (by ID or UUID) or attribute (by ID, UUID, or value within an event). A tag that is not attached is a success with removed false.",
    destination: DESTINATION,
    uuid: "77fc054e-e709-4473-ac36-358d26c71b83",
    app: &APP,
    inputs: &[
        MISP_TAG_TYPE,
        MISP_TAG_NAME,
        MISP_EVENT_ID,
        MISP_EVENT_UUID,
        MISP_ATTRIBUTE_ID,
        MISP_ATTRIBUTE_UUID,
        MISP_ATTRIBUTE_VALUE,
    ],
};

soar_core::register_function!(MispRemoveTag);

/// What the tag comes off.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Event(EventRef),
    Attribute(AttributeRef),
}

/// The request the inputs describe, checked before MISP is called.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RemoveTagRequest {
    /// Trimmed, as MISP trims it before looking the tag up.
    tag_name: String,
    target: Target,
}

/// How MISP's 404 for a tag that is not on the object starts (the object's type follows).
const NOT_ATTACHED: &str = "Could not remove tag as it is not attached to the target";
/// MISP's 404 for a UUID that is neither an event nor an attribute the user can see.
const INVALID_TARGET: &str = "Invalid Target.";
/// MISP's 405 for a tag name or id it does not have.
const INVALID_TAG: &str = "Invalid Tag.";

#[soar_core::async_trait]
impl Function for MispRemoveTag {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let request = remove_tag_request(inputs)?;
        let client = fn_misp::connect(context)?;
        let tag = request.tag_name.as_str();
        context.progress(format!(
            "Removing tag {tag} from {}",
            request.target.describe()
        ));
        let (kind, uuid) = resolve_uuid(client, &request.target).await?;
        let object = format!("{kind} {uuid}");
        let target = json!({"type": kind, "uuid": uuid});

        let body = json!({"uuid": uuid, "tag": tag});
        // After a lost answer, a tag no longer attached means MISP removed it: the request
        // is not sent again, and MISP's answer, which never came, is null.
        let object_uuid = uuid.as_str();
        let check = move || async move {
            Ok(match is_attached(client, kind, object_uuid, tag).await? {
                Some(false) => Some(Value::Null),
                Some(true) | None => None,
            })
        };
        let outcome = client
            .change_checked(
                Method::POST,
                &["tags", "removeTagFromObject"],
                Some(&body),
                check,
            )
            .await;
        let (content, removed, message) = match outcome {
            Ok(answer) => (answer, true, format!("Tag {tag} removed from {object}")),
            Err(MispError::NotFound { path, message }) if message.starts_with(NOT_ATTACHED) => (
                json!({"name": message, "message": message, "url": path}),
                false,
                format!("Tag {tag} is not attached to {object}; nothing to remove"),
            ),
            Err(MispError::NotFound { message, .. }) if message == INVALID_TARGET => {
                return Err(target_not_found(&request.target, &uuid));
            }
            Err(MispError::Rejected {
                status: 405,
                message,
                body,
                ..
            }) if message == INVALID_TAG => (
                body,
                false,
                format!("MISP has no tag named {tag}; nothing to remove from {object}"),
            ),
            Err(other) => return Err(other.into()),
        };
        context.progress(message.clone());
        Ok(FunctionOutput::success(content)
            .with_extra("removed", json!(removed))
            .with_extra("target", target)
            .with_extra("message", json!(message)))
    }
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Event(reference) => reference.describe(),
            Target::Attribute(reference) => reference.describe(),
        }
    }
}

fn remove_tag_request(inputs: &Inputs) -> Result<RemoveTagRequest, FunctionError> {
    let label = inputs.required_select(MISP_TAG_TYPE.name)?;
    let is_event = match MISP_TAG_TYPE
        .value_by_label(&label)
        .map(|value| value.label)
    {
        Some("Event") => true,
        Some("Attribute") => false,
        _ => {
            return Err(InputError::Invalid {
                field: MISP_TAG_TYPE.name.to_string(),
                value: format!("{label:?}"),
                problem: "must be Event or Attribute".to_string(),
            }
            .into());
        }
    };
    let tag_name = inputs.required_text(MISP_TAG_NAME.name)?.trim().to_string();
    if tag_name.is_empty() {
        return Err(InputError::Missing {
            field: MISP_TAG_NAME.name.to_string(),
        }
        .into());
    }
    let target = if is_event {
        Target::Event(EventRef::from_inputs(inputs)?)
    } else {
        Target::Attribute(AttributeRef::from_inputs(inputs)?)
    };
    Ok(RemoveTagRequest { tag_name, target })
}

/// The object's type as MISP names it and its UUID, which `removeTagFromObject` needs: a UUID
/// given is used as it is (MISP says when it has no such object), an id or a value is looked
/// up first.
async fn resolve_uuid(
    client: &MispClient,
    target: &Target,
) -> Result<(&'static str, String), FunctionError> {
    match target {
        Target::Event(EventRef::Uuid(uuid)) => Ok(("Event", uuid.clone())),
        Target::Event(EventRef::Id(id)) => Ok(("Event", fn_misp::event_uuid(client, *id).await?)),
        Target::Attribute(AttributeRef::Uuid(uuid)) => Ok(("Attribute", uuid.clone())),
        Target::Attribute(reference) => {
            let found = attribute::require_attribute(client, reference).await?;
            match found.get("uuid").and_then(Value::as_str) {
                Some(uuid) => Ok(("Attribute", uuid.to_string())),
                None => Err(FunctionError::integration(format!(
                    "MISP's answer for {} has no uuid",
                    reference.describe()
                ))),
            }
        }
    }
}

/// Whether the object still carries the tag (by name, ignoring case, as MISP matches it), read
/// with a metadata search; `None` when MISP no longer shows the object.
async fn is_attached(
    client: &MispClient,
    kind: &str,
    uuid: &str,
    tag: &str,
) -> Result<Option<bool>, MispError> {
    let object = if kind == "Event" {
        let events = client
            .search_events(json!({"uuid": uuid, "metadata": true}))
            .await?;
        find_by_uuid(events.as_array(), "Event", uuid)
    } else {
        let found = client.search_attributes(json!({"uuid": uuid})).await?;
        find_by_uuid(found.get("Attribute").and_then(Value::as_array), "", uuid)
    };
    Ok(object.map(|object| has_tag(&object, tag)))
}

/// The object with `uuid` in a search's list, each entry wrapped in `wrapper` when not empty.
fn find_by_uuid(list: Option<&Vec<Value>>, wrapper: &str, uuid: &str) -> Option<Value> {
    list?
        .iter()
        .map(|entry| match wrapper {
            "" => entry,
            wrapper => entry.get(wrapper).unwrap_or(&Value::Null),
        })
        .find(|object| {
            object
                .get("uuid")
                .and_then(Value::as_str)
                .is_some_and(|known| known.eq_ignore_ascii_case(uuid))
        })
        .cloned()
}

fn has_tag(object: &Value, tag: &str) -> bool {
    object
        .get("Tag")
        .and_then(Value::as_array)
        .is_some_and(|tags| {
            tags.iter().any(|attached| {
                attached
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.trim().eq_ignore_ascii_case(tag))
            })
        })
}

/// MISP's "Invalid Target." in words that name the input the UUID came from.
fn target_not_found(target: &Target, uuid: &str) -> FunctionError {
    let input = match target {
        Target::Event(EventRef::Id(_)) => MISP_EVENT_ID.name,
        Target::Event(EventRef::Uuid(_)) => MISP_EVENT_UUID.name,
        Target::Attribute(AttributeRef::Id(_)) => MISP_ATTRIBUTE_ID.name,
        Target::Attribute(AttributeRef::Uuid(_)) => MISP_ATTRIBUTE_UUID.name,
        Target::Attribute(AttributeRef::ValueInEvent { .. }) => MISP_ATTRIBUTE_VALUE.name,
    };
    FunctionError::integration(format!(
        "MISP has no event or attribute with UUID {uuid} (from input '{input}'), or the API key's user cannot see it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> Result<RemoveTagRequest, String> {
        let inputs = Inputs::from_value(value).expect("test inputs are an object");
        remove_tag_request(&inputs).map_err(|error| error.to_string())
    }

    const UUID: &str = "5e0f2d2a-1c4b-4f6e-9a0b-0c1d2e3f4a5b";

    #[test]
    fn an_event_is_named_by_id_or_uuid() {
        assert_eq!(
            request(
                json!({"misp_tag_type": {"id": 3963, "name": "Event"}, "misp_tag_name": " tlp:white ",
                           "misp_event_id": 12, "misp_event_uuid": UUID})
            ),
            Ok(RemoveTagRequest {
                tag_name: "tlp:white".into(),
                target: Target::Event(EventRef::Id(12)),
            })
        );
        assert_eq!(
            request(
                json!({"misp_tag_type": "Event", "misp_tag_name": "x", "misp_event_uuid": UUID})
            ),
            Ok(RemoveTagRequest {
                tag_name: "x".into(),
                target: Target::Event(EventRef::Uuid(UUID.into())),
            })
        );
    }

    #[test]
    fn an_attribute_is_named_by_id_uuid_or_value_in_an_event() {
        let base = json!({"misp_tag_type": {"id": 3964, "name": "Attribute"}, "misp_tag_name": "malicious"});
        let with = |extra: Value| {
            let mut inputs = base.clone();
            for (key, value) in extra.as_object().expect("an object") {
                inputs[key] = value.clone();
            }
            request(inputs).map(|request| request.target)
        };
        assert_eq!(
            with(json!({"misp_attribute_id": 7})),
            Ok(Target::Attribute(AttributeRef::Id(7)))
        );
        assert_eq!(
            with(json!({"misp_attribute_uuid": UUID})),
            Ok(Target::Attribute(AttributeRef::Uuid(UUID.into())))
        );
        assert_eq!(
            with(json!({"misp_attribute_value": "1.2.3.4", "misp_event_id": 5})),
            Ok(Target::Attribute(AttributeRef::ValueInEvent {
                event_id: 5,
                value: "1.2.3.4".into()
            }))
        );
        assert_eq!(
            with(json!({"misp_event_id": 5})),
            Err("input 'misp_attribute_id' or 'misp_attribute_uuid' or 'misp_attribute_value' with 'misp_event_id' is required but was not given".into())
        );
    }

    #[test]
    fn missing_or_bad_inputs_name_the_field() {
        assert_eq!(
            request(json!({"misp_tag_name": "x", "misp_event_id": 1})),
            Err("input 'misp_tag_type' is required but was not given".into())
        );
        assert_eq!(
            request(json!({"misp_tag_type": "Event", "misp_tag_name": "  ", "misp_event_id": 1})),
            Err("input 'misp_tag_name' is required but was not given".into())
        );
        assert_eq!(
            request(json!({"misp_tag_type": "Object", "misp_tag_name": "x", "misp_event_id": 1})),
            Err("input 'misp_tag_type' is \"Object\", must be Event or Attribute".into())
        );
        assert_eq!(
            request(json!({"misp_tag_type": "Event", "misp_tag_name": "x"})),
            Err("input 'misp_event_id' or 'misp_event_uuid' is required but was not given".into())
        );
        assert_eq!(
            request(
                json!({"misp_tag_type": "Event", "misp_tag_name": "x", "misp_event_uuid": "nope"})
            ),
            Err("input 'misp_event_uuid' is nope, is not a UUID".into())
        );
    }

    #[test]
    fn the_tag_is_matched_by_name_ignoring_case() {
        let object = json!({"uuid": UUID, "Tag": [{"name": "TLP:White"}, {"name": "malicious"}]});
        assert!(has_tag(&object, "tlp:white"));
        assert!(has_tag(&object, "malicious"));
        assert!(!has_tag(&object, "tlp:amber"));
        assert!(!has_tag(&json!({"uuid": UUID}), "malicious"));
    }

    #[test]
    fn the_searched_object_is_the_one_with_the_uuid() {
        let events = vec![
            json!({"Event": {"uuid": "other"}}),
            json!({"Event": {"uuid": UUID.to_uppercase(), "Tag": []}}),
        ];
        assert_eq!(
            find_by_uuid(Some(&events), "Event", UUID),
            Some(json!({"uuid": UUID.to_uppercase(), "Tag": []}))
        );
        let attributes = vec![json!({"uuid": UUID})];
        assert_eq!(
            find_by_uuid(Some(&attributes), "", UUID),
            Some(json!({"uuid": UUID}))
        );
        assert_eq!(find_by_uuid(Some(&attributes), "", "other"), None);
        assert_eq!(find_by_uuid(None, "", UUID), None);
    }

    #[test]
    fn an_unknown_target_names_the_input_it_came_from() {
        assert_eq!(
            target_not_found(&Target::Attribute(AttributeRef::Uuid(UUID.into())), UUID).to_string(),
            format!(
                "MISP has no event or attribute with UUID {UUID} (from input 'misp_attribute_uuid'), or the API key's user cannot see it"
            )
        );
    }
}
