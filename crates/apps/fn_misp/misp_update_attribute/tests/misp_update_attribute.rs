//! `misp_update_attribute` against misp-sim: changes by id, UUID and value, a category that
//! does not fit, values already held, MISP's refusals, and a lost answer.

use std::time::Duration;

use fn_misp::test_support::{self};
use misp_sim::{MispSim, RecordedRequest, RolePermissions, SimOptions};
use misp_update_attribute::MispUpdateAttribute;
use serde_json::{Value, json};
use soar_core::{FunctionError, FunctionOutput};

#[test]
fn the_function_is_registered_with_the_shared_fields() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_update_attribute")
        .expect("register_function! put it in the registry");
    let definition = function.definition();
    assert_eq!(definition, &misp_update_attribute::DEFINITION);
    let names: Vec<&str> = definition.inputs.iter().map(|input| input.name).collect();
    assert_eq!(
        names,
        [
            "misp_attribute_id",
            "misp_attribute_uuid",
            "misp_event_id",
            "misp_attribute_value",
            "misp_to_ids",
            "misp_comment",
            "misp_category",
            "misp_distribution",
            "misp_first_seen",
            "misp_last_seen",
        ]
    );
    assert_eq!(definition.inputs[6], fn_misp::MISP_CATEGORY);
    assert_eq!(definition.inputs[7], fn_misp::MISP_DISTRIBUTION);
}

/// Runs the function with one retry allowed, as a lost answer needs.
async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    test_support::run_function(&MispUpdateAttribute, sim.url(), sim.key(), 1, inputs).await
}

fn edits(sim: &MispSim) -> Vec<RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/attributes/edit/"))
        .collect()
}

/// Event 12 (published) holding attribute 40, an IDS indicator 203.0.113.9, and 41, a domain.
/// Returns attribute 40's UUID.
async fn sim_with_attribute() -> (MispSim, String) {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(
        json!({"id": "12", "info": "phishing", "published": true, "Attribute": [
            {"id": "40", "type": "ip-dst", "category": "Network activity", "value": "203.0.113.9",
             "to_ids": true, "comment": "C2"},
            {"id": "41", "type": "domain", "category": "Network activity", "value": "example.org"},
        ]}),
    );
    let uuid = sim
        .attribute("40")
        .and_then(|attribute| attribute["uuid"].as_str().map(str::to_string))
        .expect("attribute 40 has a uuid");
    (sim, uuid)
}

#[tokio::test]
async fn to_ids_and_comment_change_by_id_and_the_answer_is_the_attribute_after() {
    let (sim, _) = sim_with_attribute().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_attribute_id": 40, "misp_to_ids": false, "misp_comment": "benign: CDN"}),
    )
    .await;
    let output = result.expect("the attribute is updated");
    assert!(output.success);
    assert_eq!(output.content["Attribute"]["to_ids"], false);
    assert_eq!(output.content["Attribute"]["comment"], "benign: CDN");
    assert_eq!(output.content["Attribute"]["value"], "203.0.113.9");
    assert_eq!(output.extra["attribute_id"], json!(40));
    assert_eq!(output.extra["changed"], json!(true));
    assert_eq!(
        progress,
        test_support::progress(&[
            "Looking up attribute 40",
            "Updating attribute 40: to_ids off, comment",
            "Attribute 40 updated",
        ])
    );
    let paths: Vec<String> = sim.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/attributes/view/40", "/attributes/edit/40"]);
    assert_eq!(
        edits(&sim)[0].body,
        json!({"to_ids": false, "comment": "benign: CDN"})
    );
    assert_eq!(sim.attribute("40").expect("kept")["to_ids"], false);
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn seen_times_go_to_misp_in_iso_8601_with_microseconds_by_uuid() {
    let (sim, uuid) = sim_with_attribute().await;
    let (result, _) = run(
        &sim,
        json!({"misp_attribute_uuid": uuid, "misp_first_seen": 1_709_288_430_123_i64,
               "misp_last_seen": 1_709_374_830_000_i64, "misp_distribution": 0}),
    )
    .await;
    let output = result.expect("the attribute is updated");
    assert_eq!(
        edits(&sim)[0].body,
        json!({"first_seen": "2024-03-01T10:20:30.123000+00:00",
               "last_seen": "2024-03-02T10:20:30.000000+00:00", "distribution": "0"})
    );
    assert_eq!(
        output.content["Attribute"]["first_seen"],
        "2024-03-01T10:20:30.123000+00:00"
    );
    assert_eq!(output.content["Attribute"]["distribution"], "0");
}

#[tokio::test]
async fn a_category_that_fits_the_type_is_set_by_value_within_the_event() {
    let (sim, _) = sim_with_attribute().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_event_id": 12, "misp_attribute_value": "example.org",
               "misp_category": {"id": 5004, "name": "Payload delivery"}}),
    )
    .await;
    let output = result.expect("domain fits Payload delivery");
    assert_eq!(output.content["Attribute"]["category"], "Payload delivery");
    assert_eq!(output.content["Attribute"]["id"], "41");
    assert!(output.content["Attribute"].get("Event").is_none());
    assert_eq!(
        progress[1],
        "Looking up attribute with value example.org in event 12"
    );
    let paths: Vec<String> = sim.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/attributes/restSearch",
            "/attributes/describeTypes",
            "/attributes/edit/41"
        ]
    );
}

#[tokio::test]
async fn a_category_that_does_not_fit_the_type_is_refused_before_the_edit() {
    let (sim, _) = sim_with_attribute().await;
    let (result, _) = run(
        &sim,
        json!({"misp_attribute_id": 40, "misp_category": "Attribution"}),
    )
    .await;
    let error = result.expect_err("an IP address is no Attribution");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "input 'misp_category' is Attribution, does not fit the attribute's type ip-dst; MISP allows "
        ),
        "{message}"
    );
    assert!(message.contains("Network activity"), "{message}");
    assert!(edits(&sim).is_empty());
}

#[tokio::test]
async fn values_the_attribute_already_holds_send_no_edit() {
    let (sim, _) = sim_with_attribute().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_attribute_id": 40, "misp_to_ids": true, "misp_comment": "C2"}),
    )
    .await;
    let output = result.expect("nothing to do is a success");
    assert_eq!(output.extra["changed"], json!(false));
    assert_eq!(output.content["Attribute"]["id"], "40");
    assert_eq!(
        progress.last().map(String::as_str),
        Some("Attribute 40 already has these values; nothing was changed")
    );
    assert!(edits(&sim).is_empty());
    assert_eq!(
        sim.events()[0]["Event"]["published"],
        true,
        "still published"
    );
}

#[tokio::test]
async fn no_change_and_no_attribute_are_refused_before_misp_is_called() {
    let (sim, _) = sim_with_attribute().await;
    let (result, progress) = run(&sim, json!({"misp_attribute_id": 40})).await;
    assert_eq!(
        result.expect_err("nothing to change").to_string(),
        "input 'misp_to_ids' or 'misp_comment' or 'misp_category' or 'misp_distribution' or 'misp_first_seen' or 'misp_last_seen' is required but was not given"
    );
    let (result, _) = run(
        &sim,
        json!({"misp_attribute_id": 40, "misp_distribution": 7}),
    )
    .await;
    assert!(
        result
            .expect_err("7 is no distribution")
            .to_string()
            .starts_with("input 'misp_distribution' is 7, must be from 0 to 5")
    );
    assert!(progress.is_empty());
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn an_unknown_attribute_is_an_error_naming_it() {
    let (sim, _) = sim_with_attribute().await;
    let (result, _) = run(
        &sim,
        json!({"misp_attribute_id": 999, "misp_to_ids": false}),
    )
    .await;
    assert_eq!(
        result.expect_err("no attribute 999").to_string(),
        "MISP has no attribute 999, or the API key's user cannot see it"
    );
    let uuid = "5e0f2d2a-1c4b-4f6e-9a0b-0c1d2e3f4a5b";
    let (result, _) = run(
        &sim,
        json!({"misp_attribute_uuid": uuid, "misp_to_ids": false}),
    )
    .await;
    assert_eq!(
        result.expect_err("no such uuid").to_string(),
        format!("MISP has no attribute {uuid}, or the API key's user cannot see it")
    );
    assert!(edits(&sim).is_empty());
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn misps_validation_errors_become_a_failed_result() {
    let (sim, _) = sim_with_attribute().await;
    // The attribute was first seen in 2024; a last seen in 1970 is refused by MISP.
    run(
        &sim,
        json!({"misp_attribute_id": 40, "misp_first_seen": 1_709_288_430_000_i64}),
    )
    .await
    .0
    .expect("first seen is set");
    let (result, _) = run(
        &sim,
        json!({"misp_attribute_id": 40, "misp_last_seen": 1000}),
    )
    .await;
    let output = result.expect("a refusal is a result");
    assert!(!output.success);
    assert_eq!(
        output.reason.as_deref(),
        Some(
            "Could not edit Attribute: {\"last_seen\":[\"Last seen value should be greater than first seen value\"]}"
        )
    );
    assert_eq!(output.content["saved"], false);
    assert_eq!(
        output.content["errors"]["last_seen"][0],
        "Last seen value should be greater than first seen value"
    );
}

#[tokio::test]
async fn a_role_that_may_not_edit_gets_misps_reason() {
    let (sim, _) = sim_with_attribute().await;
    sim.set_permissions(RolePermissions::read_only());
    let (result, _) = run(&sim, json!({"misp_attribute_id": 40, "misp_to_ids": false})).await;
    assert_eq!(
        result.expect_err("read-only").to_string(),
        "MISP refused to update attribute 40 (HTTP 403): You do not have permission to use this functionality."
    );
}

/// Runs the function with `knob` applied once MISP has received the lookup, whose answer
/// is held back until then: the knob acts on the edit.
async fn run_with_knob_after_the_lookup(
    sim: &MispSim,
    inputs: Value,
    knob: impl FnOnce(&MispSim),
) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    sim.set_latency(Duration::from_millis(300));
    let watcher = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while sim.request_count() == 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        knob(sim);
        sim.set_latency(Duration::ZERO);
    };
    let (outcome, ()) = tokio::join!(run(sim, inputs), watcher);
    outcome
}

/// MISP edits and the answer is lost: the check finds the new values and the function
/// succeeds without a second edit.
#[tokio::test]
async fn a_lost_answer_is_checked_and_not_applied_twice() {
    let (sim, _) = sim_with_attribute().await;
    let (result, progress) = run_with_knob_after_the_lookup(
        &sim,
        json!({"misp_attribute_id": 40, "misp_to_ids": false}),
        |sim| sim.lose_next_answers(1),
    )
    .await;
    let output = result.expect("the check finds the new value");
    assert_eq!(output.extra["changed"], json!(true));
    assert_eq!(output.content["Attribute"]["to_ids"], false);
    assert_eq!(
        progress.last().map(String::as_str),
        Some("Attribute 40 updated")
    );
    let edits = edits(&sim);
    assert_eq!(edits.len(), 1, "one edit, not two: {edits:?}");
    let check = sim.requests().pop().expect("the check");
    assert_eq!(check.path, "/attributes/view/40");
}

/// A 503 before MISP acted: the attribute still has its old values, so the edit is sent again.
#[tokio::test]
async fn an_edit_that_did_not_happen_is_sent_again() {
    let (sim, _) = sim_with_attribute().await;
    let (result, _) = run_with_knob_after_the_lookup(
        &sim,
        json!({"misp_attribute_id": 40, "misp_comment": "benign"}),
        |sim| sim.fail_next(1, 503, None),
    )
    .await;
    let output = result.expect("the second edit succeeds");
    assert_eq!(output.content["Attribute"]["comment"], "benign");
    let statuses: Vec<Option<u16>> = edits(&sim).iter().map(|edit| edit.status).collect();
    assert_eq!(statuses, [Some(503), Some(200)]);
}
