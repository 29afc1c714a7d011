//! `misp_update_attribute`, `misp_delete_attribute` and `misp_add_sighting` through ActiveMQ
//! against misp-sim: what SOAR gets back (progress, the final reply, its results), what MISP
//! received, and that a change whose answer was lost is checked rather than sent again.

use std::time::Duration;

use serde_json::{Value, json};

use super::support::{Harness, RunnerOptions, call_fn_misp};
use super::{WAIT, completed_results, error_message, messages, wait_until};

/// Requests to `path_prefix` that MISP received, in order.
fn requests_to(harness: &Harness, path_prefix: &str) -> Vec<misp_sim::RecordedRequest> {
    harness
        .misp
        .requests()
        .into_iter()
        .filter(|request| request.path.starts_with(path_prefix))
        .collect()
}

/// Event 12 holding attribute 40, an IDS indicator 203.0.113.9, and 41, example.org; returns
/// their UUIDs.
fn seed_event(harness: &Harness) -> (String, String) {
    harness
        .misp
        .seed_event(json!({"id": "12", "info": "phishing", "Attribute": [
            {"id": "40", "type": "ip-dst", "category": "Network activity", "value": "203.0.113.9",
             "to_ids": true},
            {"id": "41", "type": "domain", "category": "Network activity", "value": "example.org"},
        ]}));
    let uuid = |id: &str| {
        harness
            .misp
            .attribute(id)
            .and_then(|attribute| attribute["uuid"].as_str().map(str::to_string))
            .expect("a seeded attribute has a uuid")
    };
    (uuid("40"), uuid("41"))
}

/// Publishes a call whose first read MISP holds back until `knob` is set, so that the knob
/// acts on the change that follows; returns every reply.
async fn call_with_knob_after_the_first_read(
    harness: &Harness,
    driver: &soar_sim::Driver,
    function: &str,
    inputs: Value,
    knob: impl FnOnce(&misp_sim::MispSim),
) -> Vec<soar_sim::Reply> {
    harness.misp.clear_requests();
    harness.misp.set_latency(Duration::from_millis(500));
    let id = driver
        .invoke("fn_misp", function, inputs)
        .await
        .expect("the driver publishes");
    wait_until(WAIT, || harness.misp.request_count() >= 1).await;
    knob(&harness.misp);
    harness.misp.set_latency(Duration::ZERO);
    driver.wait_final(&id, WAIT).await.expect("a final reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_attribute_turns_off_to_ids_and_refuses_what_it_cannot_do() {
    let harness = Harness::start().await;
    seed_event(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_update_attribute",
        json!({"misp_event_id": 12, "misp_attribute_value": "203.0.113.9",
               "misp_to_ids": false, "misp_comment": "benign: CDN",
               "misp_first_seen": 1_709_288_430_123_i64}),
        WAIT,
    )
    .await;
    assert_eq!(
        messages(&replies),
        [
            "Setting up connection to MISP",
            "Looking up attribute with value 203.0.113.9 in event 12",
            "Updating attribute 40: to_ids off, comment, first seen 2024-03-01T10:20:30.123000+00:00",
            "Attribute 40 updated",
            "Completed",
        ]
    );
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true));
    assert_eq!(results["changed"], json!(true));
    assert_eq!(results["attribute_id"], json!(40));
    assert_eq!(results["content"]["Attribute"]["to_ids"], json!(false));
    assert_eq!(
        results["content"]["Attribute"]["first_seen"],
        json!("2024-03-01T10:20:30.123000+00:00")
    );
    let edit = requests_to(&harness, "/attributes/edit/")
        .pop()
        .expect("the edit");
    assert_eq!(edit.path, "/attributes/edit/40");
    assert_eq!(
        edit.body,
        json!({"to_ids": false, "comment": "benign: CDN",
               "first_seen": "2024-03-01T10:20:30.123000+00:00"})
    );

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_update_attribute",
        json!({"misp_attribute_id": 40, "misp_comment": ""}),
        WAIT,
    )
    .await;
    assert!(
        error_message(&replies).contains(
            "input 'misp_to_ids' or 'misp_comment' or 'misp_category' or 'misp_distribution' or 'misp_first_seen' or 'misp_last_seen' is required but was not given"
        ),
        "{replies:?}"
    );

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_update_attribute",
        json!({"misp_attribute_id": 999, "misp_to_ids": false}),
        WAIT,
    )
    .await;
    assert!(
        error_message(&replies)
            .contains("MISP has no attribute 999, or the API key's user cannot see it"),
        "{replies:?}"
    );

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_update_attribute",
        json!({"misp_attribute_id": 40, "misp_category": {"id": 5010, "name": "Attribution"}}),
        WAIT,
    )
    .await;
    assert!(
        error_message(&replies).contains(
            "input 'misp_category' is Attribution, does not fit the attribute's type ip-dst"
        ),
        "{replies:?}"
    );
    assert_eq!(
        requests_to(&harness, "/attributes/edit/").len(),
        1,
        "only the first call edited"
    );
    assert!(harness.misp.unexpected_requests().is_empty());

    // The edit's answer is lost: the check finds the new comment and the edit is not resent.
    let replies = call_with_knob_after_the_first_read(
        &harness,
        &driver,
        "misp_update_attribute",
        json!({"misp_attribute_id": 41, "misp_comment": "parked domain"}),
        |misp| misp.lose_next_answers(1),
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(
        results["content"]["Attribute"]["comment"],
        json!("parked domain")
    );
    assert_eq!(
        requests_to(&harness, "/attributes/edit/").len(),
        1,
        "one edit, not two: {:?}",
        harness.misp.requests()
    );
    assert_eq!(
        harness.misp.requests().pop().map(|request| request.path),
        Some("/attributes/view/41".to_string()),
        "the check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_attribute_soft_deletes_then_says_already_deleted_and_names_unknown_ones() {
    let harness = Harness::start().await;
    let (uuid_40, uuid_41) = seed_event(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_delete_attribute",
        json!({"misp_attribute_id": 40}),
        WAIT,
    )
    .await;
    assert_eq!(
        messages(&replies),
        [
            "Setting up connection to MISP",
            "Looking up attribute 40",
            "Deleting attribute 40",
            "Attribute 40 deleted",
            "Completed",
        ]
    );
    let results = completed_results(&replies);
    assert_eq!(results["deleted"], json!(true));
    assert_eq!(results["hard"], json!(false));
    assert_eq!(results["already_deleted"], json!(false));
    assert_eq!(results["attribute_uuid"], json!(uuid_40));
    assert_eq!(results["content"], json!({"message": "Attribute deleted."}));
    assert_eq!(
        harness.misp.attribute("40").expect("soft-deleted")["deleted"],
        json!(true)
    );

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_delete_attribute",
        json!({"misp_attribute_uuid": uuid_40}),
        WAIT,
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true), "deleting again succeeds");
    assert_eq!(results["already_deleted"], json!(true));
    assert_eq!(
        results["message"],
        json!("Attribute 40 is already deleted; nothing was changed")
    );
    assert_eq!(requests_to(&harness, "/attributes/delete/").len(), 1);

    let unknown = "5e0f2d2a-1c4b-4f6e-9a0b-0c1d2e3f4a5b";
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_delete_attribute",
        json!({"misp_attribute_uuid": unknown}),
        WAIT,
    )
    .await;
    assert!(
        error_message(&replies).contains(&format!(
            "MISP has no attribute {unknown}, or the API key's user cannot see it"
        )),
        "{replies:?}"
    );
    assert!(harness.misp.unexpected_requests().is_empty());

    // A hard delete whose answer is lost: the check finds it gone and does not resend it.
    let replies = call_with_knob_after_the_first_read(
        &harness,
        &driver,
        "misp_delete_attribute",
        json!({"misp_attribute_uuid": uuid_41, "misp_hard_delete": true}),
        |misp| misp.lose_next_answers(1),
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(results["deleted"], json!(true));
    assert_eq!(results["hard"], json!(true));
    let deletes = requests_to(&harness, "/attributes/delete/");
    assert_eq!(deletes.len(), 1, "one delete, not two: {deletes:?}");
    assert_eq!(deletes[0].path, "/attributes/delete/41/1");
    assert_eq!(harness.misp.attribute("41"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_sighting_records_a_false_positive_and_reports_misps_soft_error() {
    let harness = Harness::start().await;
    seed_event(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_add_sighting",
        json!({"misp_sighting": "203.0.113.9",
               "misp_sighting_type": {"id": 5102, "name": "False positive"},
               "misp_sighting_time": 1_709_288_430_000_i64}),
        WAIT,
    )
    .await;
    assert_eq!(
        messages(&replies),
        [
            "Setting up connection to MISP",
            "Adding a false positive of 203.0.113.9 (source IBM QRadar SOAR)",
            "False positive added",
            "Completed",
        ]
    );
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true));
    assert_eq!(results["sighting_type"], json!("False positive"));
    assert_eq!(results["content"]["Sighting"]["type"], json!("1"));
    assert_eq!(results["content"]["Sighting"]["attribute_id"], json!("40"));
    let add = requests_to(&harness, "/sightings/add")
        .pop()
        .expect("the add");
    assert_eq!(
        add.body,
        json!({"value": "203.0.113.9", "type": "1", "source": "IBM QRadar SOAR",
               "timestamp": "1709288430"})
    );

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_add_sighting",
        json!({"misp_sighting": "198.51.100.7"}),
        WAIT,
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(false), "MISP added nothing");
    assert_eq!(
        results["reason"],
        json!(
            "Could not add the Sighting. Reason: No valid attributes found that match the criteria."
        )
    );

    // The add's answer is lost: the check finds the sighting and does not add a second one.
    harness.misp.clear_requests();
    harness.misp.lose_next_answers(1);
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_add_sighting",
        json!({"misp_attribute_id": 41, "misp_sighting_source": "EDR"}),
        WAIT,
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true));
    assert_eq!(results["content"]["Sighting"]["source"], json!("EDR"));
    assert_eq!(requests_to(&harness, "/sightings/add").len(), 1);
    assert_eq!(
        requests_to(&harness, "/sightings/restSearch/attribute").len(),
        1,
        "the check"
    );
    let on_41 = harness
        .misp
        .sightings()
        .into_iter()
        .filter(|row| row["attribute_id"] == json!("41"))
        .count();
    assert_eq!(on_41, 1, "one sighting, not two");
    assert!(harness.misp.unexpected_requests().is_empty());
}
