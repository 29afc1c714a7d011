//! `misp_create_tag` as SOAR sees it: its definition against the original export, and runs
//! against misp-sim.

use fn_misp::test_support::{self, ProgressLog};
use misp_create_tag::MispCreateTag;
use misp_sim::{MispSim, RolePermissions, SimOptions};
use serde_json::{Value, json};
use soar_core::misp::MispError;
use soar_core::{Function, FunctionError, FunctionOutput};

#[test]
fn definition_matches_the_original_export() {
    test_support::assert_matches_export(&misp_create_tag::DEFINITION);
}

#[test]
fn the_function_is_registered_under_its_api_name() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_create_tag")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_create_tag::DEFINITION);
}

async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let context = test_support::context(sim.url(), sim.key(), &log);
    let result = MispCreateTag
        .run(&context, &test_support::inputs(inputs))
        .await;
    (result, log.messages())
}

fn tag_inputs(tag_type: &str, event_id: i64, value: &str) -> Value {
    let id = if tag_type == "Event" { 3963 } else { 3964 };
    json!({
        "misp_tag_type": {"id": id, "name": tag_type},
        "misp_tag_name": "sample text",
        "misp_event_id": event_id,
        "misp_attribute_value": value,
    })
}

/// Event 5 without attributes, event 10 holding `sample text` and `1.1.1.1`.
async fn sim_with_events() -> MispSim {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({"id": "5", "info": "five"}));
    sim.seed_event(json!({"id": "10", "info": "ten", "Attribute": [
        {"type": "text", "value": "sample text"},
        {"type": "ip-dst", "value": "1.1.1.1"},
    ]}));
    sim
}

fn event(sim: &MispSim, event_id: &str) -> Value {
    sim.events()
        .into_iter()
        .map(|event| event["Event"].clone())
        .find(|event| event["id"] == event_id)
        .unwrap_or_else(|| panic!("event {event_id} was seeded"))
}

fn tag_names(holder: &Value) -> Vec<String> {
    holder["Tag"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tag| tag["name"].as_str())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_original_event_case_tags_the_event() {
    let sim = sim_with_events().await;
    let (result, progress) = run(&sim, tag_inputs("Event", 5, "sample text")).await;
    let output = result.expect("the event is tagged");
    assert!(output.success);
    assert_eq!(
        output.content["saved"], true,
        "MISP's answer: {}",
        output.content
    );
    assert_eq!(tag_names(&event(&sim, "5")), vec!["sample text"]);
    assert_eq!(
        progress,
        test_support::progress(&["Tagging Event with sample text", "Tag has been created"])
    );
    let attach = sim
        .requests()
        .into_iter()
        .find(|request| request.path == "/tags/attachTagToObject")
        .expect("attachTagToObject was called");
    assert_eq!(
        attach.body,
        json!({"uuid": event(&sim, "5")["uuid"], "tag": "sample text", "local": false})
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn the_original_attribute_case_tags_the_matching_attribute_only() {
    let sim = sim_with_events().await;
    let (result, progress) = run(&sim, tag_inputs("Attribute", 10, "sample text")).await;
    assert!(result.expect("the attribute is tagged").success);
    let ten = event(&sim, "10");
    assert_eq!(tag_names(&ten["Attribute"][0]), vec!["sample text"]);
    assert!(tag_names(&ten["Attribute"][1]).is_empty());
    assert!(tag_names(&ten).is_empty(), "the event itself is not tagged");
    assert_eq!(
        progress,
        test_support::progress(&["Tagging Attribute with sample text", "Tag has been created"])
    );
    let paths: Vec<String> = sim
        .requests()
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(
        paths,
        vec!["/attributes/restSearch", "/tags/attachTagToObject"],
        "the attribute is found by search, not by fetching the whole event"
    );
}

#[tokio::test]
async fn an_event_without_attributes_gets_the_original_error() {
    let sim = sim_with_events().await;
    let (result, _) = run(&sim, tag_inputs("Attribute", 5, "sample text")).await;
    assert_eq!(
        result.expect_err("event 5 has no attributes").to_string(),
        "Failed to find any attributes on event 5"
    );
}

#[tokio::test]
async fn a_value_not_on_the_event_gets_the_original_error() {
    let sim = sim_with_events().await;
    let (result, _) = run(&sim, tag_inputs("Attribute", 10, "2.2.2.2")).await;
    assert_eq!(
        result.expect_err("2.2.2.2 is not on event 10").to_string(),
        "Failed to match attribute value = 2.2.2.2 for any attributes associated with event = 10"
    );
    assert!(
        sim.requests()
            .iter()
            .all(|request| request.path != "/tags/attachTagToObject"),
        "nothing is tagged"
    );
}

#[tokio::test]
async fn a_missing_event_is_an_error_naming_the_id() {
    let sim = sim_with_events().await;
    let (result, _) = run(&sim, tag_inputs("Event", 999, "")).await;
    assert_eq!(
        result.expect_err("event 999 does not exist").to_string(),
        "MISP has no event with ID 999, or the API key's user cannot see it"
    );
}

#[tokio::test]
async fn a_tag_misp_will_not_save_gets_the_original_error() {
    let sim = sim_with_events().await;
    // A tagger who may not create tags, attaching a tag MISP does not have yet.
    sim.set_permissions(RolePermissions {
        tag_editor: false,
        ..RolePermissions::all()
    });
    let (result, progress) = run(&sim, tag_inputs("Event", 5, "")).await;
    let error = result.expect_err("MISP refuses the unknown tag");
    assert!(matches!(error, FunctionError::Integration(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "Unable to save the tag. Failed to attach 1 tags. Reasons: {\"0\":\"Tag not found and insufficient privileges to create it.\"}"
    );
    assert_eq!(
        progress,
        test_support::progress(&["Tagging Event with sample text"])
    );
}

#[tokio::test]
async fn a_user_who_may_not_tag_gets_misps_permission_error() {
    let sim = sim_with_events().await;
    sim.set_permissions(RolePermissions::read_only());
    let (result, _) = run(&sim, tag_inputs("Event", 5, "")).await;
    let error = result.expect_err("a read-only user cannot tag");
    assert!(
        matches!(error, FunctionError::Misp(MispError::Forbidden { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn inputs_are_checked_before_misp_is_called() {
    let sim = sim_with_events().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_tag_type": "Event", "misp_tag_name": "tlp:white", "misp_event_id": "5"}),
    )
    .await;
    assert_eq!(
        result.expect_err("a text event id").to_string(),
        "Unexpected input type for MISP Event ID. Expected and integer, received <class 'str'>"
    );
    let (result, _) = run(
        &sim,
        json!({"misp_tag_type": "Attribute", "misp_tag_name": "tlp:white", "misp_event_id": 10}),
    )
    .await;
    assert_eq!(
        result.expect_err("no attribute value").to_string(),
        "input 'misp_attribute_value' is required but was not given"
    );
    assert!(progress.is_empty());
    assert_eq!(sim.request_count(), 0);
}
