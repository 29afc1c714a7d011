//! The `misp_sighting_list` function: lists the sightings of a MISP event.

use fn_misp::{APP, DESTINATION, MISP_EVENT_ID};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, Inputs,
};

/// Lists an event's sightings (`POST /sightings/listSightings`) as MISP's list of
/// `{"Sighting": …, "Organisation": …}`.
#[derive(Debug, Clone, Copy)]
pub struct MispSightingList;

/// The definition of the original fn_misp 3.0.2 export.
pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_sighting_list",
    display_name: "MISP Sighting List",
    description: "List all sightings associated with an event",
    destination: DESTINATION,
    uuid: "8b531827-741d-40e8-90a5-1ec99cb1710d",
    app: &APP,
    inputs: &[MISP_EVENT_ID],
};

soar_core::register_function!(MispSightingList);

#[soar_core::async_trait]
impl Function for MispSightingList {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let event_id = fn_misp::required_event_id(inputs)?;
        let client = fn_misp::connect(context)?;
        context.progress("Getting sighted list");
        let sightings = client.list_event_sightings(event_id).await?;
        context.progress("Finished getting sighting list");
        Ok(FunctionOutput::success(sightings))
    }
}
