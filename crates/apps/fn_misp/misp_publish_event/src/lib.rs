//! The `misp_publish_event` function: publishes a MISP event, optionally with MISP's e-mail
//! alert; an event that is already published is left as it is and the result says so.

use fn_misp::event::EventRef;
use fn_misp::{APP, DESTINATION, MISP_EVENT_ID, MISP_EVENT_UUID};
use serde_json::{Value, json};
use soar_core::misp::{Method, MispClient, MispError};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputField,
    Inputs,
};

/// Publishes an event (`POST /events/publish/{id}`, or `/events/alert/{id}` with the alert).
#[derive(Debug, Clone, Copy)]
pub struct MispPublishEvent;

/// `__function/misp_publish_alert`: also send MISP's e-mail alert to its users.
pub static MISP_PUBLISH_ALERT: InputField =
    InputField::boolean("misp_publish_alert", "3e18eefc-b145-4586-be6b-1746a1f29237")
        .tooltip("Also send MISP's e-mail alert about the event to the users who asked for alerts");

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_publish_event",
    display_name: "MISP Publish Event",
    description: "Publishes a MISP event, optionally with MISP's e-mail alert. An event that is already published is a success that says so.",
    destination: DESTINATION,
    uuid: "b2273607-8062-4ad4-954f-67388e582887",
    app: &APP,
    inputs: &[MISP_EVENT_ID, MISP_EVENT_UUID, MISP_PUBLISH_ALERT],
};

soar_core::register_function!(MispPublishEvent);

/// The request the inputs describe, checked before MISP is called.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PublishRequest {
    event: EventRef,
    alert: bool,
}

/// What the function needs to know of the event before publishing it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EventState {
    id: String,
    published: bool,
    publish_timestamp: String,
}

/// The text of MISP's ACL refusal, which means the role lacks the flag the endpoint needs.
const NO_PERMISSION: &str = "You do not have permission to use this functionality.";

#[soar_core::async_trait]
impl Function for MispPublishEvent {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let request = publish_request(inputs)?;
        let client = fn_misp::connect(context)?;
        context.progress(format!("Reading {}", request.event.describe()));
        let event = read_event(client, &request.event)
            .await?
            .ok_or_else(|| request.event.not_found())?;
        let before = EventState::of(&event);
        let Ok(event_id) = before.id.parse::<i64>() else {
            return Err(MispError::InvalidResponse {
                path: "/events/restSearch".to_string(),
                problem: format!("the event's id {:?} is not a number", before.id),
            }
            .into());
        };
        let id = event_id.to_string();

        if before.published && !request.alert {
            let message = format!("Event {id} is already published; it was not published again");
            context.progress(message.clone());
            return Ok(output(
                json!({"Event": event}),
                event_id,
                true,
                false,
                message,
            ));
        }
        // MISP keeps no record of alerts sent, and its alert endpoint publishes the event
        // again as it sends the e-mail: an alert that was asked for is sent even when the
        // event is published already.
        let (action, step) = match (request.alert, before.published) {
            (true, true) => (
                "alert",
                format!(
                    "Event {id} is already published; sending MISP's e-mail alert as asked (MISP publishes the event again with it)"
                ),
            ),
            (true, false) => (
                "alert",
                format!("Publishing event {id} with MISP's e-mail alert"),
            ),
            (false, _) => ("publish", format!("Publishing event {id}")),
        };
        context.progress(step);

        // After a lost answer: published, with a publish time other than the one read above,
        // means MISP did publish, so the request is not sent (and no alert mailed) again.
        let published_before = before.publish_timestamp.as_str();
        let check = move || async move {
            let events = client
                .search_events(json!({"eventid": event_id.to_string(), "metadata": true}))
                .await?;
            Ok(find_event(&events, &EventRef::Id(event_id))
                .filter(|event| {
                    let now = EventState::of(event);
                    now.published && now.publish_timestamp != published_before
                })
                .map(|event| json!({"Event": event})))
        };
        let answer = match client
            .change_checked(Method::POST, &["events", action, &id], None, check)
            .await
        {
            Ok(answer) => answer,
            Err(MispError::NotFound { .. }) => return Err(request.event.not_found()),
            // A saveFail envelope: a blocking module refused, or the push to other servers
            // failed; MISP's body says which.
            Err(rejected @ MispError::Rejected { status: 403, .. }) => {
                return fn_misp::rejection_as_failure(rejected);
            }
            Err(
                MispError::Forbidden {
                    status, message, ..
                }
                | MispError::Rejected {
                    status, message, ..
                },
            ) => return Err(refused(&id, status, &message)),
            Err(other) => return Err(other.into()),
        };
        let message = match answer.get("message").and_then(Value::as_str) {
            Some(said) => format!("Event {id} published: {said}"),
            None => format!("Event {id} published"),
        };
        context.progress(message.clone());
        Ok(output(
            answer,
            event_id,
            before.published,
            request.alert,
            message,
        ))
    }
}

impl EventState {
    /// Reads MISP's `Event` object; ids and timestamps come as strings or numbers.
    fn of(event: &Value) -> EventState {
        let text = |name: &str| match event.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => String::new(),
        };
        EventState {
            id: text("id"),
            published: event
                .get("published")
                .is_some_and(|published| match published {
                    Value::Bool(flag) => *flag,
                    Value::Number(number) => number.as_i64() == Some(1),
                    Value::String(text) => text == "1" || text == "true",
                    _ => false,
                }),
            publish_timestamp: text("publish_timestamp"),
        }
    }
}

fn publish_request(inputs: &Inputs) -> Result<PublishRequest, FunctionError> {
    let event = EventRef::from_inputs(inputs)?;
    let alert = inputs.boolean(MISP_PUBLISH_ALERT.name)?.unwrap_or(false);
    Ok(PublishRequest { event, alert })
}

/// The event's metadata (no attributes: events can be huge) through `events/restSearch`,
/// or `None` when MISP has no such event for this key's user.
async fn read_event(
    client: &MispClient,
    reference: &EventRef,
) -> Result<Option<Value>, FunctionError> {
    let query = match reference {
        EventRef::Id(id) => json!({"eventid": id.to_string(), "metadata": true}),
        EventRef::Uuid(uuid) => json!({"uuid": uuid, "metadata": true}),
    };
    let events = client.search_events(query).await?;
    Ok(find_event(&events, reference).cloned())
}

/// The `Event` of a restSearch answer that `reference` names; matching guards against a
/// server that ignored the filter.
fn find_event<'a>(events: &'a Value, reference: &EventRef) -> Option<&'a Value> {
    events
        .as_array()?
        .iter()
        .filter_map(|entry| entry.get("Event"))
        .find(|event| match reference {
            EventRef::Id(id) => EventState::of(event).id == id.to_string(),
            EventRef::Uuid(uuid) => event
                .get("uuid")
                .and_then(Value::as_str)
                .is_some_and(|known| known.eq_ignore_ascii_case(uuid)),
        })
}

/// MISP's refusal with its reason, plus what to change when the reason is the role.
fn refused(id: &str, status: u16, message: &str) -> FunctionError {
    let hint = if message == NO_PERMISSION {
        " (publishing needs a role with the publish permission, perm_publish)"
    } else {
        ""
    };
    FunctionError::integration(format!(
        "MISP refused to publish event {id} (HTTP {status}): {message}{hint}"
    ))
}

fn output(
    content: Value,
    event_id: i64,
    already_published: bool,
    alert: bool,
    message: String,
) -> FunctionOutput {
    FunctionOutput::success(content)
        .with_extra("published", json!(true))
        .with_extra("already_published", json!(already_published))
        .with_extra("alert", json!(alert))
        .with_extra("event_id", json!(event_id))
        .with_extra("message", json!(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> Result<PublishRequest, String> {
        let inputs = Inputs::from_value(value).expect("test inputs are an object");
        publish_request(&inputs).map_err(|error| error.to_string())
    }

    #[test]
    fn the_event_is_named_by_id_or_uuid_and_the_alert_is_off_unless_asked() {
        let uuid = "5e0f2d2a-1c4b-4f6e-9a0b-0c1d2e3f4a5b";
        assert_eq!(
            request(json!({"misp_event_id": 12, "misp_event_uuid": uuid})),
            Ok(PublishRequest {
                event: EventRef::Id(12),
                alert: false
            })
        );
        assert_eq!(
            request(json!({"misp_event_uuid": format!(" {uuid} "), "misp_publish_alert": true})),
            Ok(PublishRequest {
                event: EventRef::Uuid(uuid.to_string()),
                alert: true
            })
        );
        assert_eq!(
            request(json!({"misp_event_id": 3, "misp_publish_alert": null})),
            Ok(PublishRequest {
                event: EventRef::Id(3),
                alert: false
            })
        );
    }

    #[test]
    fn a_missing_or_bad_event_names_the_fields() {
        assert_eq!(
            request(json!({})),
            Err("input 'misp_event_id' or 'misp_event_uuid' is required but was not given".into())
        );
        assert_eq!(
            request(json!({"misp_event_uuid": "12"})),
            Err("input 'misp_event_uuid' is 12, is not a UUID".into())
        );
        assert_eq!(
            request(json!({"misp_event_id": 0})),
            Err("input 'misp_event_id' is 0, must be a MISP event ID (1 or more)".into())
        );
        assert_eq!(
            request(json!({"misp_event_id": 1, "misp_publish_alert": "yes"})),
            Err("input 'misp_publish_alert' must be true or false, got \"yes\"".into())
        );
    }

    #[test]
    fn event_state_reads_strings_numbers_and_flags() {
        let state = EventState::of(
            &json!({"id": "12", "published": true, "publish_timestamp": "1700000000"}),
        );
        assert_eq!(
            state,
            EventState {
                id: "12".into(),
                published: true,
                publish_timestamp: "1700000000".into()
            }
        );
        let state = EventState::of(&json!({"id": 7, "published": 0, "publish_timestamp": 0}));
        assert_eq!((state.id.as_str(), state.published), ("7", false));
        assert_eq!(state.publish_timestamp, "0");
    }

    #[test]
    fn the_event_is_found_by_what_names_it() {
        let uuid = "5e0f2d2a-1c4b-4f6e-9a0b-0c1d2e3f4a5b";
        let events = json!([
            {"Event": {"id": "3", "uuid": "other"}},
            {"Event": {"id": "12", "uuid": uuid.to_uppercase()}},
        ]);
        let id = |event: Option<&Value>| event.map(|event| event["id"].clone());
        assert_eq!(
            id(find_event(&events, &EventRef::Id(12))),
            Some(json!("12"))
        );
        assert_eq!(
            id(find_event(&events, &EventRef::Uuid(uuid.into()))),
            Some(json!("12"))
        );
        assert_eq!(find_event(&events, &EventRef::Id(4)), None);
        assert_eq!(find_event(&json!({}), &EventRef::Id(4)), None);
    }

    #[test]
    fn a_refusal_for_want_of_the_publish_flag_says_which_flag() {
        assert_eq!(
            refused("12", 403, NO_PERMISSION).to_string(),
            "MISP refused to publish event 12 (HTTP 403): You do not have permission to use this functionality. (publishing needs a role with the publish permission, perm_publish)"
        );
        assert_eq!(
            refused("12", 405, "You do not have the permission to do that.").to_string(),
            "MISP refused to publish event 12 (HTTP 405): You do not have the permission to do that."
        );
    }
}
