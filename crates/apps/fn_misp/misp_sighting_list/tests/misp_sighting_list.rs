//! `misp_sighting_list` as SOAR sees it: its definition against the original export, and
//! runs against misp-sim.

use fn_misp::test_support::{self, ProgressLog};
use misp_sighting_list::MispSightingList;
use misp_sim::{MispSim, SimOptions};
use serde_json::{Value, json};
use soar_core::misp::MispError;
use soar_core::{Function, FunctionError, FunctionOutput};

#[test]
fn definition_matches_the_original_export() {
    test_support::assert_matches_export(&misp_sighting_list::DEFINITION);
}

#[test]
fn the_function_is_registered_under_its_api_name() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_sighting_list")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_sighting_list::DEFINITION);
}

async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let context = test_support::context(sim.url(), sim.key(), &log);
    let result = MispSightingList
        .run(&context, &test_support::inputs(inputs))
        .await;
    (result, log.messages())
}

/// Events 5 (one sighting) and 10 (two sightings, one per attribute).
async fn sim_with_sightings() -> MispSim {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({"id": "5", "info": "five", "Attribute": [
        {"type": "ip-dst", "value": "1.1.1.1", "Sighting": [{"source": "IBM QRadar SOAR", "date_sighting": "1701370203"}]},
    ]}));
    sim.seed_event(json!({"id": "10", "info": "ten", "Attribute": [
        {"type": "ip-dst", "value": "2.2.2.2", "Sighting": [{"source": "a", "date_sighting": "1701370100"}]},
        {"type": "domain", "value": "example.org", "Sighting": [{"source": "b", "date_sighting": "1701370200"}]},
    ]}));
    sim
}

#[tokio::test]
async fn the_original_test_cases_list_each_events_sightings() {
    let sim = sim_with_sightings().await;
    for (event_id, expected) in [(5, 1), (10, 2)] {
        let (result, progress) = run(&sim, json!({"misp_event_id": event_id})).await;
        let output = result.expect("the list is read");
        assert!(output.success);
        let sightings = output.content.as_array().expect("a list of sightings");
        assert_eq!(sightings.len(), expected, "{}", output.content);
        for entry in sightings {
            assert_eq!(entry["Sighting"]["event_id"], event_id.to_string());
            assert_eq!(entry["Organisation"]["name"], misp_sim::ORG_NAME);
        }
        assert_eq!(
            progress,
            test_support::progress(&["Getting sighted list", "Finished getting sighting list"])
        );
    }
    let list = sim
        .requests()
        .into_iter()
        .find(|request| request.path == "/sightings/listSightings")
        .expect("listSightings was called");
    assert_eq!(list.body, json!({"context": "event", "id": 5}));
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn an_event_without_sightings_gives_an_empty_list() {
    let sim = sim_with_sightings().await;
    sim.seed_event(json!({"id": "12", "info": "quiet"}));
    let (result, _) = run(&sim, json!({"misp_event_id": 12})).await;
    assert_eq!(
        result.expect("an empty list is a result").content,
        json!([])
    );
}

#[tokio::test]
async fn an_unknown_event_is_misps_error() {
    let sim = sim_with_sightings().await;
    let (result, _) = run(&sim, json!({"misp_event_id": 999})).await;
    let error = result.expect_err("event 999 does not exist");
    assert!(
        matches!(
            error,
            FunctionError::Misp(MispError::Rejected { status: 405, .. })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("Invalid object."), "{error}");
}

#[tokio::test]
async fn the_event_id_must_be_given_as_a_whole_number() {
    let sim = sim_with_sightings().await;
    let (missing, _) = run(&sim, json!({})).await;
    assert_eq!(
        missing.expect_err("no id").to_string(),
        "input 'misp_event_id' is required but was not given"
    );
    let (fraction, _) = run(&sim, json!({"misp_event_id": 5.5})).await;
    assert_eq!(
        fraction.expect_err("5.5 is no id").to_string(),
        "Unexpected input type for MISP Event ID. Expected and integer, received <class 'float'>"
    );
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn a_config_without_a_key_is_a_config_error_once_misp_is_needed() {
    let log = ProgressLog::new();
    let context =
        test_support::context_from_config("[fn_misp]\nmisp_url=https://misp.example\n", &log);
    let result = MispSightingList
        .run(&context, &test_support::inputs(json!({"misp_event_id": 5})))
        .await;
    let error = result.expect_err("no key, no MISP");
    assert!(matches!(error, FunctionError::Config(_)), "{error:?}");
    assert!(error.to_string().contains("misp_key"), "{error}");
    assert_eq!(log.messages(), test_support::progress(&[]));
}
