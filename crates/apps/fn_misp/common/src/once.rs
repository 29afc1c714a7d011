//! Creates that never duplicate: the MISP UUID of what a call creates is derived from what
//! identifies the call, so a redelivered or retried message finds the first attempt's event,
//! attribute or object instead of creating another.
//!
//! "The same call" is: the same SOAR organisation, workflow instance and playbook instance
//! (`FunctionContext::origin`), the same function, and the same inputs once normalized
//! (`Inputs::normalized`: a select by its label, a text area by its content). A call with no
//! origin at all (`invoke`, crate tests) is never "the same" as another: it gets no derived
//! UUID and MISP picks a random one, so two deliberate identical creates make two objects.

use std::future::Future;

use serde_json::{Map, Value};
use soar_core::misp::{Method, MispClient, MispError};
use soar_core::{CallOrigin, Inputs};
use uuid::Uuid;

/// The fixed namespace of every derived UUID (never change it: the UUIDs of calls already
/// made would change with it).
pub const NAMESPACE: Uuid = Uuid::from_u128(0x90ea_b954_c714_4f1b_894f_f72d_7b46_2772);

/// MISP's validation message for a UUID already taken (events, attributes, objects).
pub const UUID_TAKEN: &str = "The UUID provided is not unique";

/// The UUID of what `function` creates for this call, or `None` for a call from outside SOAR.
pub fn call_uuid(origin: &CallOrigin, function: &str, inputs: &Inputs) -> Option<Uuid> {
    call_uuid_of(origin, function, &inputs.normalized())
}

/// [`call_uuid`] for inputs already normalized.
pub fn call_uuid_of(origin: &CallOrigin, function: &str, normalized: &Value) -> Option<Uuid> {
    if *origin == CallOrigin::default() {
        return None;
    }
    let number = |value: Option<i64>| value.map_or(Value::Null, Value::from);
    let mut identity = Map::new();
    identity.insert("function".to_string(), Value::from(function));
    identity.insert("inputs".to_string(), sorted(normalized));
    identity.insert("org_id".to_string(), number(origin.org_id));
    identity.insert(
        "playbook_instance_id".to_string(),
        number(origin.playbook_instance_id),
    );
    identity.insert(
        "workflow_instance_id".to_string(),
        number(origin.workflow_instance_id),
    );
    let text = Value::Object(identity).to_string();
    Some(Uuid::new_v5(&NAMESPACE, text.as_bytes()))
}

/// The same value with every object's keys in order, so the text does not depend on the
/// order the message listed them in.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(fields) => {
            let mut names: Vec<&String> = fields.keys().collect();
            names.sort();
            let mut ordered = Map::new();
            for name in names {
                ordered.insert(name.clone(), sorted(&fields[name]));
            }
            Value::Object(ordered)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Whether MISP refused a create because its UUID is taken: events answer 404 "Event already
/// exists" with a Location header; attributes and objects a save failure naming the uuid.
pub fn is_uuid_taken(error: &MispError) -> bool {
    match error {
        MispError::NotFound { message, .. } => message.starts_with("Event already exists"),
        MispError::Rejected { body, message, .. } => {
            message.contains(UUID_TAKEN) || mentions_uuid_taken(body)
        }
        _ => false,
    }
}

fn mentions_uuid_taken(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains(UUID_TAKEN),
        Value::Array(items) => items.iter().any(mentions_uuid_taken),
        Value::Object(fields) => fields.values().any(mentions_uuid_taken),
        _ => false,
    }
}

/// Sends a create carrying a derived UUID: a lost answer is followed by `read_back` before
/// any repeat, and a refusal because the UUID is taken is answered with `read_back`'s object,
/// as if it had just been created.
pub async fn create_once<Read, Reading>(
    client: &MispClient,
    segments: &[&str],
    body: &Value,
    read_back: Read,
) -> Result<Value, MispError>
where
    Read: Fn() -> Reading,
    Reading: Future<Output = Result<Option<Value>, MispError>>,
{
    match client
        .change_checked(Method::POST, segments, Some(body), &read_back)
        .await
    {
        Ok(answer) => Ok(answer),
        Err(error) if is_uuid_taken(&error) => match read_back().await? {
            Some(existing) => Ok(existing),
            None => Err(error),
        },
        Err(error) => Err(error),
    }
}

/// `None` for MISP's "no such object" answers (404, or the 405/403 some views send), so a
/// read-back can say "not created yet".
pub fn absent_as_none(answer: Result<Value, MispError>) -> Result<Option<Value>, MispError> {
    match answer {
        Ok(value) => Ok(Some(value)),
        Err(MispError::NotFound { .. }) => Ok(None),
        Err(MispError::Rejected {
            status: 403 | 405, ..
        }) => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn origin() -> CallOrigin {
        CallOrigin {
            org_id: Some(201),
            workflow_instance_id: Some(7),
            playbook_instance_id: None,
        }
    }

    #[test]
    fn no_origin_means_no_derived_uuid() {
        assert_eq!(
            call_uuid_of(&CallOrigin::default(), "misp_create_event", &json!({})),
            None
        );
    }

    #[test]
    fn the_same_call_gets_the_same_uuid_and_others_differ() {
        let inputs = json!({"misp_event_name": "x", "misp_distribution": 0});
        let first = call_uuid_of(&origin(), "misp_create_event", &inputs);
        assert!(first.is_some());
        assert_eq!(first, call_uuid_of(&origin(), "misp_create_event", &inputs));
        assert_eq!(first.map(|uuid| uuid.get_version_num()), Some(5));
        let other_workflow = CallOrigin {
            workflow_instance_id: Some(8),
            ..origin()
        };
        assert_ne!(
            first,
            call_uuid_of(&other_workflow, "misp_create_event", &inputs)
        );
        assert_ne!(first, call_uuid_of(&origin(), "misp_add_object", &inputs));
        assert_ne!(
            first,
            call_uuid_of(
                &origin(),
                "misp_create_event",
                &json!({"misp_event_name": "y"})
            )
        );
    }

    #[test]
    fn a_taken_uuid_is_recognised_in_each_of_misps_answers() {
        let event = MispError::NotFound {
            path: "/events/add".into(),
            message: "Event already exists, if you would like to edit it, use the url in the location header.".into(),
        };
        let attribute = MispError::Rejected {
            method: "POST".into(),
            path: "/attributes/add/1".into(),
            status: 403,
            message: "Could not add Attribute".into(),
            body: json!({"errors": {"uuid": [UUID_TAKEN]}}),
        };
        let object = MispError::Rejected {
            method: "POST".into(),
            path: "/objects/add/1/2".into(),
            status: 403,
            message: "Could not add Object".into(),
            body: json!({"errors": format!("Object could not be saved.\nuuid: {UUID_TAKEN}")}),
        };
        let other = MispError::Rejected {
            method: "POST".into(),
            path: "/attributes/add/1".into(),
            status: 403,
            message: "Could not add Attribute".into(),
            body: json!({"errors": {"value": ["A similar attribute already exists for this event."]}}),
        };
        assert!(is_uuid_taken(&event));
        assert!(is_uuid_taken(&attribute));
        assert!(is_uuid_taken(&object));
        assert!(!is_uuid_taken(&other));
    }

    proptest! {
        #[test]
        fn key_order_does_not_change_the_uuid(names in proptest::collection::btree_set("[a-z_]{1,8}", 1..6)) {
            let names: Vec<String> = names.into_iter().collect();
            let mut forward = Map::new();
            for (position, name) in names.iter().enumerate() {
                forward.insert(name.clone(), json!(position));
            }
            let mut backward = Map::new();
            for (position, name) in names.iter().enumerate().rev() {
                backward.insert(name.clone(), json!(position));
            }
            prop_assert_eq!(
                call_uuid_of(&origin(), "f", &Value::Object(forward)),
                call_uuid_of(&origin(), "f", &Value::Object(backward))
            );
        }
    }
}
