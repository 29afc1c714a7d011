//! The `misp_search_attribute` function: finds the MISP events that hold an artifact's value,
//! with their tags, ATT&CK techniques and tags grouped by kind.

use fn_misp::tags;
use fn_misp::{APP, DESTINATION, MISP_ATTRIBUTE_VALUE};
use serde_json::{Value, json};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, Inputs,
};

/// Searches events by attribute value (`POST /events/restSearch`). `content` is MISP's list
/// of `{"Event": …}`; `tags`, `attack_techniques` and `tag_groups` sit beside it.
#[derive(Debug, Clone, Copy)]
pub struct MispSearchAttribute;

/// The definition of the original fn_misp 3.0.2 export.
pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_search_attribute",
    display_name: "MISP Search Attribute",
    description: "Search MISP event attributes for a given match on an artifact",
    destination: DESTINATION,
    uuid: "c248bc7c-b60f-4d36-9a2e-294ee78a5981",
    app: &APP,
    inputs: &[MISP_ATTRIBUTE_VALUE],
};

soar_core::register_function!(MispSearchAttribute);

#[soar_core::async_trait]
impl Function for MispSearchAttribute {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let value = inputs.required_text(MISP_ATTRIBUTE_VALUE.name)?;
        let client = fn_misp::connect(context)?;
        context.progress(format!("Searching for attribute - {value}"));
        let limit = client.config().search_limit;
        let found = client
            .search_events(json!({"value": value, "limit": limit}))
            .await?;
        context.progress("Attribute search complete.");
        search_output(&value, found)
    }
}

/// The result for MISP's answer `found`: a match is a success, no match a failed result with
/// `[]` (as the original), and anything but a list the original's error.
fn search_output(value: &str, found: Value) -> Result<FunctionOutput, FunctionError> {
    let Value::Array(events) = found else {
        return Err(FunctionError::integration(format!(
            "Received an unexpected response type from the MISP API. Expected a list but received: {}",
            fn_misp::python_type_name(&found)
        )));
    };
    let names = tags::tag_names(&events);
    let techniques: Vec<Value> = tags::attack_techniques(&names)
        .iter()
        .map(tags::AttackTechnique::to_json)
        .collect();
    let groups = tags::tag_groups(&names);
    let output = if events.is_empty() {
        FunctionOutput::failure(
            format!("No attributes matching {value} found"),
            Value::Array(events),
        )
    } else {
        FunctionOutput::success(Value::Array(events))
    };
    // Always present, empty on no match, so playbooks can read them without checking.
    Ok(output
        .with_extra("tags", json!(names))
        .with_extra("attack_techniques", Value::Array(techniques))
        .with_extra("tag_groups", groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_is_a_success_with_tags_techniques_and_groups() {
        let found = json!([{"Event": {
            "id": "10",
            "Tag": [{"name": "tlp:white"}],
            "Attribute": [{"value": "1.1.1.1", "Tag": [
                {"name": "misp-galaxy:mitre-attack-pattern=\"Bootkit - T1067\""},
                {"name": "tlp:white"},
            ]}],
        }}]);
        let output = search_output("1.1.1.1", found.clone()).expect("a list is a result");
        assert!(output.success);
        assert_eq!(output.reason, None);
        assert_eq!(output.content, found);
        assert_eq!(
            output.extra["tags"],
            json!([
                "misp-galaxy:mitre-attack-pattern=\"Bootkit - T1067\"",
                "tlp:white"
            ])
        );
        assert_eq!(
            output.extra["attack_techniques"],
            json!([{"id": "T1067", "name": "Bootkit"}])
        );
        assert_eq!(output.extra["tag_groups"]["tlp"], json!(["tlp:white"]));
    }

    #[test]
    fn no_match_is_a_failed_result_with_an_empty_list() {
        let output = search_output("sample text", json!([])).expect("an empty list is a result");
        assert!(!output.success);
        assert_eq!(output.content, json!([]));
        assert_eq!(
            output.reason.as_deref(),
            Some("No attributes matching sample text found")
        );
        assert_eq!(output.extra["tags"], json!([]));
        assert_eq!(output.extra["attack_techniques"], json!([]));
    }

    #[test]
    fn a_non_list_answer_is_the_original_error() {
        let error = search_output("x", json!({"Attribute": []})).expect_err("a dict is wrong");
        assert_eq!(
            error.to_string(),
            "Received an unexpected response type from the MISP API. Expected a list but received: <class 'dict'>"
        );
    }
}
