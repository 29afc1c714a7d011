//! `misp_delete_attribute` against misp-sim: soft and hard deletes by id, UUID and value,
//! deleting again, unknown attributes, MISP's refusals, and a lost answer.

use std::time::Duration;

use fn_misp::test_support::{self};
use misp_delete_attribute::MispDeleteAttribute;
use misp_sim::{MispSim, RecordedRequest, RolePermissions, SimOptions};
use serde_json::{Value, json};
use soar_core::{FunctionError, FunctionOutput};

#[test]
fn the_function_is_registered_with_the_shared_fields() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_delete_attribute")
        .expect("register_function! put it in the registry");
    let definition = function.definition();
    assert_eq!(definition, &misp_delete_attribute::DEFINITION);
    let names: Vec<&str> = definition.inputs.iter().map(|input| input.name).collect();
    assert_eq!(
        names,
        [
            "misp_attribute_id",
            "misp_attribute_uuid",
            "misp_event_id",
            "misp_attribute_value",
            "misp_hard_delete",
        ]
    );
    assert_eq!(definition.inputs[0], fn_misp::MISP_ATTRIBUTE_ID);
}

/// Runs the function with one retry allowed, as a lost answer needs.
async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    test_support::run_function(&MispDeleteAttribute, sim.url(), sim.key(), 1, inputs).await
}

fn deletes(sim: &MispSim) -> Vec<RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/attributes/delete/"))
        .collect()
}

/// Event 12 holding attribute 40 (203.0.113.9) and 41 (example.org). Returns 40's UUID.
async fn sim_with_attribute() -> (MispSim, String) {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({"id": "12", "info": "phishing", "Attribute": [
        {"id": "40", "type": "ip-dst", "value": "203.0.113.9"},
        {"id": "41", "type": "domain", "value": "example.org"},
    ]}));
    let uuid = sim
        .attribute("40")
        .and_then(|attribute| attribute["uuid"].as_str().map(str::to_string))
        .expect("attribute 40 has a uuid");
    (sim, uuid)
}

#[tokio::test]
async fn a_soft_delete_by_id_marks_the_attribute_deleted() {
    let (sim, uuid) = sim_with_attribute().await;
    let (result, progress) = run(&sim, json!({"misp_attribute_id": 40})).await;
    let output = result.expect("the attribute is deleted");
    assert_eq!(output.content, json!({"message": "Attribute deleted."}));
    assert_eq!(output.extra["deleted"], json!(true));
    assert_eq!(output.extra["hard"], json!(false));
    assert_eq!(output.extra["already_deleted"], json!(false));
    assert_eq!(output.extra["attribute_id"], json!(40));
    assert_eq!(output.extra["attribute_uuid"], json!(uuid));
    assert_eq!(
        progress,
        test_support::progress(&[
            "Looking up attribute 40",
            "Deleting attribute 40",
            "Attribute 40 deleted",
        ])
    );
    let paths: Vec<String> = sim.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/attributes/view/40", "/attributes/delete/40"]);
    assert_eq!(sim.attribute("40").expect("kept")["deleted"], true);
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn deleting_again_by_uuid_is_a_success_that_says_so() {
    let (sim, uuid) = sim_with_attribute().await;
    run(&sim, json!({"misp_attribute_uuid": uuid}))
        .await
        .0
        .expect("the first delete");
    sim.clear_requests();
    let (result, progress) = run(&sim, json!({"misp_attribute_uuid": uuid})).await;
    let output = result.expect("already deleted is a success");
    assert_eq!(output.extra["already_deleted"], json!(true));
    assert_eq!(output.extra["deleted"], json!(true));
    assert_eq!(output.content["Attribute"]["deleted"], true);
    assert_eq!(
        progress.last().map(String::as_str),
        Some("Attribute 40 is already deleted; nothing was changed")
    );
    assert!(deletes(&sim).is_empty());
    assert_eq!(
        sim.requests()[0].body,
        json!({"uuid": uuid, "deleted": [0, 1], "returnFormat": "json"})
    );
}

#[tokio::test]
async fn a_hard_delete_removes_a_soft_deleted_attribute_by_value() {
    let (sim, _) = sim_with_attribute().await;
    run(&sim, json!({"misp_attribute_id": 40}))
        .await
        .0
        .expect("the soft delete");
    let (result, progress) = run(
        &sim,
        json!({"misp_event_id": 12, "misp_attribute_value": "203.0.113.9", "misp_hard_delete": true}),
    )
    .await;
    let output = result.expect("the hard delete");
    assert_eq!(output.extra["hard"], json!(true));
    assert_eq!(output.extra["already_deleted"], json!(false));
    assert_eq!(
        progress[2..],
        ["Hard-deleting attribute 40", "Attribute 40 hard-deleted"]
    );
    assert_eq!(
        deletes(&sim).last().map(|r| r.path.clone()).as_deref(),
        Some("/attributes/delete/40/1")
    );
    assert_eq!(sim.attribute("40"), None);
    assert!(sim.attribute("41").is_some(), "the other attribute stays");
}

#[tokio::test]
async fn unknown_attributes_are_errors_naming_them() {
    let (sim, _) = sim_with_attribute().await;
    let uuid = "5e0f2d2a-1c4b-4f6e-9a0b-0c1d2e3f4a5b";
    let (result, _) = run(&sim, json!({"misp_attribute_uuid": uuid})).await;
    assert_eq!(
        result.expect_err("no such uuid").to_string(),
        format!("MISP has no attribute {uuid}, or the API key's user cannot see it")
    );
    let (result, _) = run(
        &sim,
        json!({"misp_event_id": 12, "misp_attribute_value": "198.51.100.1"}),
    )
    .await;
    assert_eq!(
        result.expect_err("no such value").to_string(),
        "MISP has no attribute with value 198.51.100.1 in event 12, or the API key's user cannot see it"
    );
    let (result, _) = run(&sim, json!({"misp_attribute_id": 999})).await;
    let message = result.expect_err("no attribute 999").to_string();
    assert!(
        message.starts_with("MISP shows no attribute 999: it never existed"),
        "{message}"
    );
    assert!(deletes(&sim).is_empty());
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn a_role_that_may_not_delete_gets_misps_reason() {
    let (sim, _) = sim_with_attribute().await;
    sim.set_permissions(RolePermissions {
        add: false,
        ..RolePermissions::all()
    });
    let (result, _) = run(&sim, json!({"misp_attribute_id": 40})).await;
    assert_eq!(
        result.expect_err("no perm_add").to_string(),
        "MISP refused to delete attribute 40 (HTTP 403): You do not have permission to use this functionality."
    );
    assert_eq!(sim.attribute("40").expect("kept")["deleted"], false);
}

/// Runs the function with `knob` applied once MISP has received the lookup, whose answer
/// is held back until then: the knob acts on the delete.
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

/// MISP deletes and the answer is lost: the check finds the attribute deleted, and the delete
/// is not sent again (a second soft delete would get MISP's 404).
#[tokio::test]
async fn a_lost_answer_is_checked_and_not_sent_twice() {
    for hard in [false, true] {
        let (sim, uuid) = sim_with_attribute().await;
        let (result, progress) = run_with_knob_after_the_lookup(
            &sim,
            json!({"misp_attribute_uuid": uuid, "misp_hard_delete": hard}),
            |sim| sim.lose_next_answers(1),
        )
        .await;
        let output = result.expect("the check finds the attribute deleted");
        assert_eq!(output.extra["already_deleted"], json!(false));
        assert_eq!(output.extra["hard"], json!(hard));
        // What MISP shows after the delete: nothing after a hard one, the attribute marked
        // deleted after a soft one.
        if hard {
            assert_eq!(output.content, json!({}));
        } else {
            assert_eq!(
                output.content["Attribute"]["deleted"], true,
                "{}",
                output.content
            );
        }
        assert!(
            progress
                .last()
                .is_some_and(|last| last.starts_with("Attribute 40"))
        );
        assert_eq!(deletes(&sim).len(), 1, "hard {hard}: {:?}", sim.requests());
        let check = sim.requests().pop().expect("the check");
        assert_eq!(check.path, "/attributes/restSearch");
    }
}

/// A 503 before MISP acted: the attribute is still live, so the delete is sent again.
#[tokio::test]
async fn a_delete_that_did_not_happen_is_sent_again() {
    let (sim, _) = sim_with_attribute().await;
    let (result, _) =
        run_with_knob_after_the_lookup(&sim, json!({"misp_attribute_id": 40}), |sim| {
            sim.fail_next(1, 503, None)
        })
        .await;
    let output = result.expect("the second delete succeeds");
    assert_eq!(output.content, json!({"message": "Attribute deleted."}));
    let statuses: Vec<Option<u16>> = deletes(&sim).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(503), Some(200)]);
}
