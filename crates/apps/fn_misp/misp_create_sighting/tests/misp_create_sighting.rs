//! `misp_create_sighting` as SOAR sees it: its definition against the original export, and
//! runs against misp-sim.

use fn_misp::test_support::{self, ProgressLog};
use misp_create_sighting::MispCreateSighting;
use misp_sim::{MispSim, SimOptions};
use serde_json::{Value, json};
use soar_core::{Function, FunctionError, FunctionOutput};

#[test]
fn definition_matches_the_original_export() {
    test_support::assert_matches_export(&misp_create_sighting::DEFINITION);
}

#[test]
fn the_function_is_registered_under_its_api_name() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_create_sighting")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_create_sighting::DEFINITION);
}

async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let context = test_support::context(sim.url(), sim.key(), &log);
    let result = MispCreateSighting
        .run(&context, &test_support::inputs(inputs))
        .await;
    (result, log.messages())
}

#[tokio::test]
async fn the_original_test_case_sights_the_value_twice() {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({"id": "11", "info": "seen", "Attribute": [{"type": "text", "value": "sample text"}]}));
    for _ in 0..2 {
        let (result, progress) = run(&sim, json!({"misp_sighting": "sample text"})).await;
        let output = result.expect("the sighting is added");
        assert!(output.success);
        let sighting = &output.content["Sighting"];
        assert_eq!(sighting["source"], "IBM QRadar SOAR");
        assert_eq!(sighting["event_id"], "11");
        assert_eq!(
            progress,
            test_support::progress(&[
                "Marking sample text as sighted",
                "Sighting has been created"
            ])
        );
    }
    let adds: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|request| request.path == "/sightings/add")
        .collect();
    assert_eq!(adds.len(), 2);
    let body = &adds[0].body;
    assert_eq!(body["value"], "sample text");
    assert_eq!(body["source"], "IBM QRadar SOAR");
    let timestamp: i64 = body["timestamp"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .expect("the timestamp is a digit string, as MISP's API document types it");
    assert!(
        timestamp > 1_700_000_000,
        "the timestamp is now: {timestamp}"
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn a_value_misp_does_not_hold_is_a_failed_result_not_a_success() {
    let sim = MispSim::start(SimOptions::default()).await;
    let (result, progress) = run(&sim, json!({"misp_sighting": "nowhere.example"})).await;
    let output = result.expect("MISP's HTTP-200 refusal is a result");
    assert!(!output.success);
    assert_eq!(
        output.reason.as_deref(),
        Some(
            "Could not add the Sighting. Reason: No valid attributes found that match the criteria."
        )
    );
    assert_eq!(
        output.content,
        json!({"message": "Could not add the Sighting. Reason: No valid attributes found that match the criteria."})
    );
    assert_eq!(
        progress,
        test_support::progress(&["Marking nowhere.example as sighted"])
    );
}

#[tokio::test]
async fn the_value_is_required() {
    let sim = MispSim::start(SimOptions::default()).await;
    let (result, _) = run(&sim, json!({})).await;
    assert_eq!(
        result.expect_err("no value").to_string(),
        "input 'misp_sighting' is required but was not given"
    );
    assert_eq!(sim.request_count(), 0);
}
