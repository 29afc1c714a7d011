//! The `misp_create_event` function: creates a MISP event named after an incident.

use fn_misp::{APP, DESTINATION, MISP_DISTRIBUTION};
use serde_json::{Map, Value, json};
use soar_core::misp::{Method, MispClient, NewEvent, Repeat};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputField,
    InputType, Inputs,
};

/// Creates a MISP event (`POST /events/add`) and returns MISP's `{"Event": …}`.
#[derive(Debug, Clone, Copy)]
pub struct MispCreateEvent;

/// The definition of the original fn_misp 3.0.2 export.
pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_create_event",
    display_name: "MISP Create Event",
    description: "Create a MISP event from an incident",
    destination: DESTINATION,
    uuid: "8f9b7c45-9d4e-4d35-8bdd-eb2e2923413a",
    app: &APP,
    inputs: &[
        MISP_EVENT_NAME,
        MISP_DISTRIBUTION,
        MISP_ANALYSIS_LEVEL,
        MISP_THREAT_LEVEL,
    ],
};

soar_core::register_function!(MispCreateEvent);

/// The meanings MISP gives each number, shown when a value is out of range.
pub const DISTRIBUTION_MEANING: &str = "0 your organisation only, 1 this community only, 2 connected communities, 3 all communities, 4 sharing group";
pub const ANALYSIS_MEANING: &str = "0 initial, 1 ongoing, 2 completed";
pub const THREAT_LEVEL_MEANING: &str = "1 high, 2 medium, 3 low, 4 undefined";

const MISP_EVENT_NAME: InputField = InputField {
    name: "misp_event_name",
    input_type: InputType::Text,
    required: true,
    tooltip: "",
    placeholder: "",
    values: &[],
    uuid: "cce1ad61-1368-4bbd-ba36-5a79bfdec88c",
};

const MISP_ANALYSIS_LEVEL: InputField = InputField {
    name: "misp_analysis_level",
    input_type: InputType::Number,
    required: false,
    // The odd spacing is the original's.
    tooltip: "initial =0, ongoing=1, complete=2",
    placeholder: "",
    values: &[],
    uuid: "1dcf6488-6e2d-4062-bb74-16be4bb4fbdd",
};

const MISP_THREAT_LEVEL: InputField = InputField {
    name: "misp_threat_level",
    input_type: InputType::Number,
    required: false,
    tooltip: "high=1, medium=2, low=3",
    placeholder: "",
    values: &[],
    uuid: "a4929691-12e6-4c36-b151-bb81579c8a76",
};

#[soar_core::async_trait]
impl Function for MispCreateEvent {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let event = new_event(inputs)?;
        let client = fn_misp::connect(context)?;
        context.progress(format!("Creating event {}", event.info));
        let created = match fn_misp::once::call_uuid(context.origin(), DEFINITION.name, inputs) {
            None => client.add_event(&event).await?,
            Some(uuid) => create_once(client, &event, &uuid.to_string()).await?,
        };
        context.progress("Event has been created");
        Ok(FunctionOutput::success(created))
    }
}

/// `POST /events/add` with the call's own UUID: a retried or redelivered call answers with
/// the event its first attempt created (`GET /events/view/{uuid}`) instead of a second one.
async fn create_once(
    client: &MispClient,
    event: &NewEvent,
    uuid: &str,
) -> Result<Value, soar_core::misp::MispError> {
    let body = event_body(event, uuid);
    let read_back = || async {
        fn_misp::once::absent_as_none(
            client
                .request(Method::GET, &["events", "view", uuid], None, Repeat::Safe)
                .await,
        )
    };
    fn_misp::once::create_once(client, &["events", "add"], &body, read_back).await
}

/// The body `MispClient::add_event` sends, with `uuid` added.
fn event_body(event: &NewEvent, uuid: &str) -> Value {
    let mut fields = Map::new();
    fields.insert("info".to_string(), json!(event.info));
    for (name, value) in [
        ("distribution", event.distribution),
        ("threat_level_id", event.threat_level_id),
        ("analysis", event.analysis),
    ] {
        if let Some(value) = value {
            fields.insert(name.to_string(), json!(value.to_string()));
        }
    }
    fields.insert("uuid".to_string(), json!(uuid));
    json!({"Event": fields})
}

/// The event the inputs describe. The original passed any number through to MISP; out-of-range
/// values are refused here with what each number means, before anything is sent.
fn new_event(inputs: &Inputs) -> Result<NewEvent, FunctionError> {
    Ok(NewEvent {
        info: inputs.required_text(MISP_EVENT_NAME.name)?,
        distribution: inputs.integer_in(MISP_DISTRIBUTION.name, 0..=4, DISTRIBUTION_MEANING)?,
        threat_level_id: inputs.integer_in(MISP_THREAT_LEVEL.name, 1..=4, THREAT_LEVEL_MEANING)?,
        analysis: inputs.integer_in(MISP_ANALYSIS_LEVEL.name, 0..=2, ANALYSIS_MEANING)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(value: Value) -> Inputs {
        Inputs::from_value(value).expect("test inputs are an object")
    }

    #[test]
    fn all_inputs_make_the_event() {
        let event = new_event(&inputs(json!({
            "misp_event_name": "sample text",
            "misp_distribution": 1,
            "misp_threat_level": 2,
            "misp_analysis_level": 1,
        })))
        .expect("valid inputs");
        assert_eq!(
            event,
            NewEvent {
                info: "sample text".into(),
                distribution: Some(1),
                threat_level_id: Some(2),
                analysis: Some(1),
            }
        );
    }

    #[test]
    fn optional_levels_may_be_left_out() {
        let event = new_event(&inputs(
            json!({"misp_event_name": "x", "misp_distribution": null}),
        ))
        .expect("only the name is required");
        assert_eq!(event.distribution, None);
        assert_eq!(event.threat_level_id, None);
        assert_eq!(event.analysis, None);
    }

    #[test]
    fn event_name_is_required() {
        let error =
            new_event(&inputs(json!({"misp_distribution": 0}))).expect_err("the name is required");
        assert_eq!(
            error.to_string(),
            "input 'misp_event_name' is required but was not given"
        );
    }

    #[test]
    fn out_of_range_levels_are_refused_with_their_meaning() {
        let error_for = |field: &str, value: i64| {
            let mut object = json!({"misp_event_name": "x"});
            object[field] = json!(value);
            new_event(&inputs(object))
                .expect_err("out of range")
                .to_string()
        };
        assert_eq!(
            error_for("misp_distribution", 5),
            format!("input 'misp_distribution' is 5, must be from 0 to 4 ({DISTRIBUTION_MEANING})")
        );
        assert_eq!(
            error_for("misp_analysis_level", 3),
            format!("input 'misp_analysis_level' is 3, must be from 0 to 2 ({ANALYSIS_MEANING})")
        );
        assert_eq!(
            error_for("misp_threat_level", 0),
            format!("input 'misp_threat_level' is 0, must be from 1 to 4 ({THREAT_LEVEL_MEANING})")
        );
    }

    #[test]
    fn a_level_given_as_text_is_refused() {
        let error = new_event(&inputs(
            json!({"misp_event_name": "x", "misp_threat_level": "high"}),
        ))
        .expect_err("text is not a level");
        assert_eq!(
            error.to_string(),
            "input 'misp_threat_level' must be a number, got \"high\""
        );
    }
}
