//! The `misp_create_sighting` function: records that an artifact's value was seen.

use std::time::{SystemTime, UNIX_EPOCH};

use fn_misp::{APP, DESTINATION, MISP_SIGHTING};
use soar_core::misp::NewSighting;
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, Inputs,
};

/// Adds a sighting to every attribute with the value (`POST /sightings/add`) and returns
/// MISP's `{"Sighting": …}`.
#[derive(Debug, Clone, Copy)]
pub struct MispCreateSighting;

/// The definition of the original fn_misp 3.0.2 export.
pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_create_sighting",
    display_name: "MISP Create Sighting",
    description: "Create a MISP sighting from an incident artifact",
    destination: DESTINATION,
    uuid: "e9df792b-a3af-4d67-ae90-e48aabca138c",
    app: &APP,
    inputs: &[MISP_SIGHTING],
};

soar_core::register_function!(MispCreateSighting);

/// The sighting's `source`, as fn_misp 3.0.2 sent it.
pub const SIGHTING_SOURCE: &str = "IBM QRadar SOAR";

#[soar_core::async_trait]
impl Function for MispCreateSighting {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let sighting = new_sighting(inputs, now_epoch_seconds())?;
        let client = fn_misp::connect(context)?;
        context.progress(format!("Marking {} as sighted", sighting.value));
        match client.add_sighting(&sighting).await {
            Ok(created) => {
                context.progress("Sighting has been created");
                Ok(FunctionOutput::success(created))
            }
            // MISP answers "Could not add the Sighting" with HTTP 200; the original reported
            // that as a success, which hid that nothing was recorded.
            Err(error) => fn_misp::rejection_as_failure(error),
        }
    }
}

fn new_sighting(inputs: &Inputs, timestamp: i64) -> Result<NewSighting, FunctionError> {
    Ok(NewSighting {
        value: inputs.required_text(MISP_SIGHTING.name)?,
        timestamp,
        source: SIGHTING_SOURCE.to_string(),
    })
}

fn now_epoch_seconds() -> i64 {
    // A clock before 1970 is not worth failing a sighting over; MISP then uses its own time.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sighting_carries_value_time_and_the_soar_source() {
        let inputs = Inputs::from_value(json!({"misp_sighting": "sample text"}))
            .expect("test inputs are an object");
        assert_eq!(
            new_sighting(&inputs, 1_701_877_013).expect("valid inputs"),
            NewSighting {
                value: "sample text".into(),
                timestamp: 1_701_877_013,
                source: "IBM QRadar SOAR".into(),
            }
        );
    }

    #[test]
    fn value_is_required() {
        let inputs =
            Inputs::from_value(json!({"misp_sighting": ""})).expect("test inputs are an object");
        assert_eq!(
            new_sighting(&inputs, 0)
                .expect_err("an empty value is missing")
                .to_string(),
            "input 'misp_sighting' is required but was not given"
        );
    }

    #[test]
    fn now_is_a_plausible_epoch() {
        // 2023-11-14 onwards: a clock reading of 0 would mean the conversion is broken.
        assert!(now_epoch_seconds() > 1_700_000_000);
    }
}
