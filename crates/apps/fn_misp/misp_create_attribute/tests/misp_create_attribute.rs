//! `misp_create_attribute` as SOAR sees it: its definition against the original export, and
//! runs against misp-sim.

use fn_misp::test_support::{self, ProgressLog};
use misp_create_attribute::MispCreateAttribute;
use misp_sim::{MispSim, SimOptions};
use serde_json::{Value, json};
use soar_core::{Function, FunctionError, FunctionOutput};

#[test]
fn definition_matches_the_original_export() {
    test_support::assert_matches_export(&misp_create_attribute::DEFINITION);
}

#[test]
fn the_function_is_registered_under_its_api_name() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_create_attribute")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_create_attribute::DEFINITION);
}

async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let context = test_support::context(sim.url(), sim.key(), &log);
    let result = MispCreateAttribute
        .run(&context, &test_support::inputs(inputs))
        .await;
    (result, log.messages())
}

/// A simulator holding events 5 and 10, as the original's live tests expected.
async fn sim_with_events() -> MispSim {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({"id": "5", "info": "Event five"}));
    sim.seed_event(json!({"id": "10", "info": "Event ten"}));
    sim
}

fn event_uuid(sim: &MispSim, event_id: &str) -> String {
    sim.events()
        .iter()
        .map(|event| &event["Event"])
        .find(|event| event["id"] == event_id)
        .and_then(|event| event["uuid"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("event {event_id} was seeded"))
}

#[tokio::test]
async fn the_original_test_cases_add_attributes_by_event_uuid() {
    let sim = sim_with_events().await;
    for (attribute_type, event_id) in [("filename", 10), ("text", 5)] {
        let (result, progress) = run(
            &sim,
            json!({
                "misp_attribute_type": attribute_type,
                "misp_attribute_value": "sample text",
                "misp_event_id": event_id,
            }),
        )
        .await;
        let output = result.expect("the attribute is created");
        assert!(output.success);
        let attribute = &output.content["Attribute"];
        assert_eq!(attribute["type"], attribute_type);
        assert_eq!(attribute["value"], "sample text");
        assert_eq!(attribute["event_id"], event_id.to_string());
        assert_eq!(
            progress,
            test_support::progress(&[
                &format!("Creating new misp attribute {attribute_type} sample text"),
                "Attribute has been created",
            ])
        );
    }
    let add_paths: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/attributes/add/"))
        .map(|request| request.path)
        .collect();
    assert_eq!(
        add_paths,
        vec![
            format!("/attributes/add/{}", event_uuid(&sim, "10")),
            format!("/attributes/add/{}", event_uuid(&sim, "5")),
        ],
        "the attribute goes to the event's uuid, as in the original"
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn a_duplicate_is_a_failed_result_with_misps_errors() {
    let sim = sim_with_events().await;
    let inputs = json!({
        "misp_attribute_type": "ip-dst",
        "misp_attribute_value": "1.1.1.1",
        "misp_event_id": 10,
    });
    let (first, _) = run(&sim, inputs.clone()).await;
    assert!(first.expect("the first add works").success);
    let (second, progress) = run(&sim, inputs).await;
    let output = second.expect("a duplicate is a result, not an error");
    assert!(!output.success);
    assert_eq!(
        output.content["errors"]["value"],
        json!(["A similar attribute already exists for this event."]),
        "scripts read content.errors.value: {}",
        output.content
    );
    let reason = output.reason.unwrap_or_default();
    assert!(
        reason.contains("Could not add Attribute"),
        "MISP's reason: {reason}"
    );
    assert_eq!(
        progress,
        test_support::progress(&["Creating new misp attribute ip-dst 1.1.1.1"])
    );
}

#[tokio::test]
async fn a_value_misp_finds_malformed_is_a_failed_result() {
    let sim = sim_with_events().await;
    let (result, _) = run(
        &sim,
        json!({
            "misp_attribute_type": "ip-dst",
            "misp_attribute_value": "not an address",
            "misp_event_id": 10,
        }),
    )
    .await;
    let output = result.expect("a refused value is a result");
    assert!(!output.success);
    assert!(
        output.content["errors"]["value"].is_array(),
        "MISP's errors are kept: {}",
        output.content
    );
}

#[tokio::test]
async fn a_missing_event_is_an_error_naming_the_id() {
    let sim = sim_with_events().await;
    let (result, _) = run(
        &sim,
        json!({
            "misp_attribute_type": "md5",
            "misp_attribute_value": "d41d8cd98f00b204e9800998ecf8427e",
            "misp_event_id": 999,
        }),
    )
    .await;
    let error = result.expect_err("event 999 does not exist");
    assert_eq!(
        error.to_string(),
        "MISP has no event with ID 999, or the API key's user cannot see it"
    );
    assert!(
        sim.requests()
            .iter()
            .all(|request| !request.path.starts_with("/attributes/add")),
        "nothing is added to a missing event"
    );
}

#[tokio::test]
async fn an_event_id_given_as_text_gets_the_original_error_and_calls_nothing() {
    let sim = sim_with_events().await;
    let (result, progress) = run(
        &sim,
        json!({
            "misp_attribute_type": "text",
            "misp_attribute_value": "sample text",
            "misp_event_id": "10",
        }),
    )
    .await;
    let error = result.expect_err("a text event id is refused");
    assert!(matches!(error, FunctionError::Integration(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "Unexpected input type for MISP Event ID. Expected and integer, received <class 'str'>"
    );
    assert!(progress.is_empty());
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn an_unknown_type_suggests_types_and_calls_nothing() {
    let sim = sim_with_events().await;
    let (result, _) = run(
        &sim,
        json!({
            "misp_attribute_type": "IP Address",
            "misp_attribute_value": "1.1.1.1",
            "misp_event_id": 10,
        }),
    )
    .await;
    let error = result.expect_err("'IP Address' is a SOAR artifact type, not a MISP type");
    let text = error.to_string();
    assert!(
        text.starts_with(
            "input 'misp_attribute_type' is \"IP Address\", not a MISP attribute type; closest: ip-dst, ip-src"
        ),
        "{text}"
    );
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn the_same_call_from_soar_twice_answers_with_the_first_attribute() {
    let sim = misp_sim::MispSim::start(misp_sim::SimOptions::default()).await;
    sim.seed_event(serde_json::json!({"id": "5", "info": "five"}));
    let origin = soar_core::CallOrigin {
        org_id: Some(201),
        workflow_instance_id: None,
        playbook_instance_id: Some(12),
    };
    let inputs = serde_json::json!({
        "misp_event_id": 5,
        "misp_attribute_type": "ip-dst",
        "misp_attribute_value": "198.51.100.7",
    });
    let mut answers = Vec::new();
    for _ in 0..2 {
        let log = fn_misp::test_support::ProgressLog::new();
        let context =
            fn_misp::test_support::context(sim.url(), sim.key(), &log).with_origin(origin.clone());
        let output = soar_core::Function::run(
            &misp_create_attribute::MispCreateAttribute,
            &context,
            &fn_misp::test_support::inputs(inputs.clone()),
        )
        .await
        .expect("created or found");
        assert!(output.success, "{:?}", output.content);
        answers.push(output.content);
    }
    assert_eq!(answers[0]["Attribute"]["id"], answers[1]["Attribute"]["id"]);
    assert_eq!(answers[1]["Attribute"]["value1"], "198.51.100.7");
    assert_eq!(answers[1]["AttributeTag"], serde_json::json!([]));
    let event = &sim.events()[0]["Event"];
    assert_eq!(event["Attribute"].as_array().map(Vec::len), Some(1));
}
