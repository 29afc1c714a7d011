//! The `misp_add_attributes` function: many values (as pasted from a report, defanged or
//! not, or a JSON list) added to one MISP event in one call, each with its outcome: created,
//! already present, on a warninglist, or invalid and why.

pub mod plan;

use fn_misp::event::EventRef;
use fn_misp::warninglists;
use fn_misp::{
    APP, DESTINATION, MISP_CATEGORY, MISP_COMMENT, MISP_EVENT_ID, MISP_EVENT_UUID, MISP_TO_IDS,
    MISP_VALUES,
};
use serde_json::{Value, json};
use soar_core::misp::{Method, MispClient, MispError};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputError,
    InputField, Inputs,
};
use uuid::Uuid;

use plan::{BatchSettings, Plan};

/// Adds many attributes to an event: `events/restSearch` (the event), one
/// `warninglists/checkValue`, one `attributes/restSearch` (values already there) and one
/// `POST /attributes/add/{event}` with the list of new attributes.
#[derive(Debug, Clone, Copy)]
pub struct MispAddAttributes;

/// `__function/misp_add_warninglisted`: add values that are on a warninglist anyway.
pub static MISP_ADD_WARNINGLISTED: InputField = InputField::boolean(
    "misp_add_warninglisted",
    "deb22fe5-e43a-46e0-8266-f412cb4178e7",
)
.tooltip("Also add values that are on one of MISP's warninglists (known benign or common values); by default they are left out");

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_add_attributes",
    display_name: "MISP Add Attributes",
    description: "Add many values to one MISP event in one call. misp_values takes one value per line as pasted from a report (defanged forms such as hxxp://, 1.2.3[.]4 and user[@]example.com are read as the real ones), a JSON list of values, or a JSON list of {\"value\", \"type\"}; where no type is given it is detected: ip-dst (addresses and CIDR blocks), ip-dst|port, domain|ip, domain, hostname, url, email-src, md5, sha1, sha256, sha512, filename|<hash>, filename and vulnerability. misp_to_ids, misp_comment and misp_category apply to every value. Values on a MISP warninglist are left out unless misp_add_warninglisted is set, and values the event already has are not added again. Each new attribute's UUID is derived from the event's UUID, its type and its value, so a retry after a lost answer cannot add a twin. content.results lists every value with its outcome (created, already present, on warninglist, invalid with the reason); content.counts and content.summary add them up. One bad value never fails the others.",
    destination: DESTINATION,
    uuid: "5a4d3d5b-f411-428f-8139-f52991bda32d",
    app: &APP,
    inputs: &[
        MISP_EVENT_ID,
        MISP_EVENT_UUID,
        MISP_VALUES,
        MISP_TO_IDS,
        MISP_COMMENT,
        MISP_CATEGORY,
        MISP_ADD_WARNINGLISTED,
    ],
};

soar_core::register_function!(MispAddAttributes);

/// The request the inputs describe, checked before MISP is called.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AddRequest {
    event: EventRef,
    values: String,
    settings: BatchSettings,
}

/// The event's id and UUID, as MISP holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EventIds {
    id: String,
    uuid: Uuid,
}

#[soar_core::async_trait]
impl Function for MispAddAttributes {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let request = add_request(inputs)?;
        let mut plan = Plan::read(&request.values);
        if plan.items.is_empty() {
            return Err(InputError::Missing {
                field: MISP_VALUES.name.to_string(),
            }
            .into());
        }
        let client = fn_misp::connect(context)?;
        context.progress(format!("Reading {}", request.event.describe()));
        let event = read_event(client, &request.event).await?;
        let event_name = format!("Event {}", event.id);

        let values = plan.pending_values();
        let mut warninglist_answer = Value::Null;
        if !values.is_empty() {
            context.progress(format!(
                "Checking {} against MISP's warninglists and {}",
                count_text(values.len(), "value"),
                event_name.to_lowercase()
            ));
            warninglist_answer = warninglists::check_values(client, &values).await?;
            let present = client
                .search_attributes(json!({"eventid": event.id, "value": values}))
                .await?;
            plan.mark_present(&present);
            plan.mark_warninglisted(
                &warninglists::hits_by_value(&warninglist_answer),
                request.settings.add_warninglisted,
            );
        }

        let sent = plan.attributes_to_add(&event.uuid, &request.settings);
        let mut content = json!({"Attribute": []});
        if !sent.is_empty() {
            context.progress(format!(
                "Adding {} to {}",
                count_text(sent.len(), "attribute"),
                event_name.to_lowercase()
            ));
            let attributes: Vec<Value> = sent
                .iter()
                .map(|(_, attribute)| attribute.clone())
                .collect();
            let body = Value::Array(attributes);
            let uuids: Vec<Value> = sent
                .iter()
                .filter_map(|(_, attribute)| attribute.get("uuid").cloned())
                .collect();
            let event_id = event.id.as_str();
            // After a lost answer: the attributes MISP holds with the UUIDs sent mean it
            // applied the add; the batch is not sent again.
            let check = || {
                let uuids = uuids.clone();
                async move {
                    let found = client
                        .search_attributes(json!({"eventid": event_id, "uuid": uuids}))
                        .await?;
                    let attributes: Vec<Value> = plan::search_attributes(&found)
                        .into_iter()
                        .cloned()
                        .collect();
                    Ok((!attributes.is_empty()).then(|| json!({"Attribute": attributes})))
                }
            };
            match client
                .change_checked(
                    Method::POST,
                    &["attributes", "add", event_id],
                    Some(&body),
                    check,
                )
                .await
            {
                Ok(answer) => {
                    plan.apply_add_answer(&sent, &answer);
                    content = answer;
                }
                // Every attribute refused: a saveFail envelope naming each one's problem.
                Err(MispError::Rejected { message, body, .. }) => {
                    plan.apply_refusal(&sent, &body, &message);
                    content = body;
                }
                Err(MispError::NotFound { .. }) => return Err(request.event.not_found()),
                Err(MispError::Forbidden {
                    status, message, ..
                }) => {
                    return Err(FunctionError::integration(format!(
                        "MISP refused to add attributes to event {} (HTTP {status}): {message}",
                        event.id
                    )));
                }
                Err(other) => return Err(other.into()),
            }
        }

        let counts = plan.counts();
        let summary = counts.summary(&event_name);
        context.progress(summary.clone());
        Ok(FunctionOutput::success(content)
            .with_extra("results", Value::Array(plan.results()))
            .with_extra("counts", counts.to_json())
            .with_extra("summary", json!(summary))
            .with_extra("event_id", json!(event.id))
            .with_extra("event_uuid", json!(event.uuid.to_string()))
            .with_extra("warninglists", warninglist_answer))
    }
}

fn add_request(inputs: &Inputs) -> Result<AddRequest, FunctionError> {
    let event = EventRef::from_inputs(inputs)?;
    let values = inputs.required_text(MISP_VALUES.name)?;
    let comment = inputs
        .text(MISP_COMMENT.name)?
        .map(|comment| comment.trim().to_string())
        .filter(|comment| !comment.is_empty());
    let settings = BatchSettings {
        to_ids: inputs.boolean(MISP_TO_IDS.name)?,
        comment,
        category: inputs.select(MISP_CATEGORY.name)?,
        add_warninglisted: inputs
            .boolean(MISP_ADD_WARNINGLISTED.name)?
            .unwrap_or(false),
    };
    if let Some(category) = &settings.category
        && !MISP_CATEGORY
            .values
            .iter()
            .any(|known| known.label == category)
    {
        return Err(InputError::Invalid {
            field: MISP_CATEGORY.name.to_string(),
            value: category.clone(),
            problem: "is not a MISP attribute category".to_string(),
        }
        .into());
    }
    Ok(AddRequest {
        event,
        values,
        settings,
    })
}

/// The event's id and UUID through `events/restSearch` with `metadata` (no attributes: the
/// event may be huge); an event MISP does not show is an error naming it.
async fn read_event(client: &MispClient, reference: &EventRef) -> Result<EventIds, FunctionError> {
    let query = match reference {
        EventRef::Id(id) => json!({"eventid": id.to_string(), "metadata": true}),
        EventRef::Uuid(uuid) => json!({"uuid": uuid, "metadata": true}),
    };
    let events = client.search_events(query).await?;
    events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("Event"))
        .find_map(|event| {
            let id = match event.get("id") {
                Some(Value::String(id)) => id.clone(),
                Some(Value::Number(id)) => id.to_string(),
                _ => return None,
            };
            let uuid = Uuid::parse_str(event.get("uuid")?.as_str()?).ok()?;
            let matches = match reference {
                EventRef::Id(wanted) => id == wanted.to_string(),
                EventRef::Uuid(wanted) => uuid.to_string().eq_ignore_ascii_case(wanted),
            };
            matches.then_some(EventIds { id, uuid })
        })
        .ok_or_else(|| reference.not_found())
}

fn count_text(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> Result<AddRequest, String> {
        let inputs = Inputs::from_value(value).expect("test inputs are an object");
        add_request(&inputs).map_err(|error| error.to_string())
    }

    #[test]
    fn the_batch_settings_are_read_once() {
        assert_eq!(
            request(json!({
                "misp_event_id": 12, "misp_values": "1.2.3.4",
                "misp_to_ids": false, "misp_comment": "  from the report ",
                "misp_category": {"id": 5008, "name": "Network activity"},
                "misp_add_warninglisted": true,
            })),
            Ok(AddRequest {
                event: EventRef::Id(12),
                values: "1.2.3.4".into(),
                settings: BatchSettings {
                    to_ids: Some(false),
                    comment: Some("from the report".into()),
                    category: Some("Network activity".into()),
                    add_warninglisted: true,
                },
            })
        );
        let plain = request(json!({"misp_event_id": 12, "misp_values": "x", "misp_comment": " "}))
            .expect("only the event and values are needed");
        assert_eq!(plain.settings, BatchSettings::default());
    }

    #[test]
    fn missing_or_wrong_inputs_name_the_field() {
        assert_eq!(
            request(json!({"misp_values": "1.2.3.4"})),
            Err("input 'misp_event_id' or 'misp_event_uuid' is required but was not given".into())
        );
        assert_eq!(
            request(json!({"misp_event_id": 12})),
            Err("input 'misp_values' is required but was not given".into())
        );
        assert_eq!(
            request(
                json!({"misp_event_id": 12, "misp_values": "x", "misp_category": "Networking"})
            ),
            Err("input 'misp_category' is Networking, is not a MISP attribute category".into())
        );
        assert_eq!(
            request(
                json!({"misp_event_id": 12, "misp_values": "x", "misp_add_warninglisted": "yes"})
            ),
            Err("input 'misp_add_warninglisted' must be true or false, got \"yes\"".into())
        );
    }
}
