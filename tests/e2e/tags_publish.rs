//! `misp_remove_tag` and `misp_publish_event` through ActiveMQ against misp-sim: what SOAR
//! gets back (progress, the final reply, its results) and what MISP received.

use std::time::Duration;

use serde_json::{Value, json};

use super::support::{Harness, RunnerOptions, call_fn_misp};
use super::{WAIT, completed_results, error_message, messages, wait_until};

/// The POSTs that change something: every request but the reads.
fn changes(harness: &Harness) -> Vec<misp_sim::RecordedRequest> {
    harness
        .misp
        .requests()
        .into_iter()
        .filter(|request| request.method == "POST" && !request.path.ends_with("/restSearch"))
        .collect()
}

/// Event 12 tagged `tlp:amber`, its attribute tagged `malicious`, and `tlp:white` defined
/// but on nothing; returns the event's and the attribute's UUIDs.
fn seed_tagged_event(harness: &Harness) -> (String, String) {
    harness.misp.seed_event(
        json!({"id": "12", "info": "phishing", "Tag": [{"name": "tlp:amber"}],
        "Attribute": [{"type": "ip-dst", "value": "203.0.113.9", "Tag": [{"name": "malicious"}]}]}),
    );
    harness.misp.seed_tag("tlp:white");
    let event = &harness.misp.events()[0]["Event"];
    let uuid = |value: &Value| value.as_str().expect("a uuid").to_string();
    (uuid(&event["uuid"]), uuid(&event["Attribute"][0]["uuid"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_tag_removes_says_when_nothing_was_attached_and_names_unknown_events() {
    let harness = Harness::start().await;
    let (event_uuid, attribute_uuid) = seed_tagged_event(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_remove_tag",
        json!({"misp_tag_type": {"id": 3964, "name": "Attribute"}, "misp_tag_name": "malicious",
               "misp_event_id": 12, "misp_attribute_value": "203.0.113.9"}),
        WAIT,
    )
    .await;
    assert_eq!(
        messages(&replies),
        [
            "Setting up connection to MISP".to_string(),
            "Removing tag malicious from attribute with value 203.0.113.9 in event 12".to_string(),
            format!("Tag malicious removed from Attribute {attribute_uuid}"),
            "Completed".to_string(),
        ]
    );
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true));
    assert_eq!(results["removed"], json!(true));
    assert_eq!(
        results["target"],
        json!({"type": "Attribute", "uuid": attribute_uuid})
    );
    assert_eq!(results["content"]["saved"], json!(true));
    assert_eq!(harness.misp.tags_of(&attribute_uuid), Some(vec![]));
    let removal = changes(&harness).pop().expect("the removal");
    assert_eq!(removal.path, "/tags/removeTagFromObject");
    assert_eq!(
        removal.body,
        json!({"uuid": attribute_uuid, "tag": "malicious"})
    );

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_remove_tag",
        json!({"misp_tag_type": {"id": 3963, "name": "Event"}, "misp_tag_name": "tlp:white",
               "misp_event_uuid": event_uuid}),
        WAIT,
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(
        results["success"],
        json!(true),
        "not attached is no failure"
    );
    assert_eq!(results["removed"], json!(false));
    assert_eq!(
        results["message"],
        json!(format!(
            "Tag tlp:white is not attached to Event {event_uuid}; nothing to remove"
        ))
    );
    assert_eq!(
        harness.misp.tags_of(&event_uuid),
        Some(vec!["tlp:amber".to_string()])
    );

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_remove_tag",
        json!({"misp_tag_type": {"id": 3963, "name": "Event"}, "misp_tag_name": "tlp:amber",
               "misp_event_id": 999}),
        WAIT,
    )
    .await;
    assert!(
        error_message(&replies)
            .contains("MISP has no event with ID 999, or the API key's user cannot see it"),
        "{replies:?}"
    );
    assert_eq!(
        changes(&harness).len(),
        2,
        "no removal for an unknown event"
    );
    assert!(harness.misp.unexpected_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_tag_after_a_lost_answer_checks_instead_of_removing_again() {
    let harness = Harness::start().await;
    let (event_uuid, _) = seed_tagged_event(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;
    harness.misp.lose_next_answers(1);
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_remove_tag",
        json!({"misp_tag_type": {"id": 3963, "name": "Event"}, "misp_tag_name": "tlp:amber",
               "misp_event_uuid": event_uuid}),
        WAIT,
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(results["removed"], json!(true));
    assert_eq!(results["content"], Value::Null, "MISP's answer never came");
    assert_eq!(changes(&harness).len(), 1, "{:?}", harness.misp.requests());
    assert_eq!(harness.misp.tags_of(&event_uuid), Some(vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_event_publishes_once_and_says_when_it_already_was() {
    let harness = Harness::start().await;
    harness
        .misp
        .seed_event(json!({"id": "12", "info": "phishing"}));
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_publish_event",
        json!({"misp_event_id": 12}),
        WAIT,
    )
    .await;
    assert_eq!(
        messages(&replies),
        [
            "Setting up connection to MISP",
            "Reading event 12",
            "Publishing event 12",
            "Event 12 published: Event published without alerts",
            "Completed",
        ]
    );
    let results = completed_results(&replies);
    assert_eq!(results["published"], json!(true));
    assert_eq!(results["already_published"], json!(false));
    assert_eq!(results["event_id"], json!(12));
    assert_eq!(
        results["content"],
        json!({"saved": true, "success": true, "name": "Event published without alerts",
               "message": "Event published without alerts", "url": "/events/publish/12", "id": "12"})
    );
    assert_eq!(harness.misp.events()[0]["Event"]["published"], json!(true));

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_publish_event",
        json!({"misp_event_id": 12}),
        WAIT,
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true));
    assert_eq!(results["already_published"], json!(true));
    assert_eq!(
        results["message"],
        json!("Event 12 is already published; it was not published again")
    );
    let paths: Vec<String> = changes(&harness)
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(paths, ["/events/publish/12"], "published once");
    assert!(harness.misp.unexpected_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_event_failures_reach_soar_with_misps_reason_and_a_lost_answer_is_checked() {
    let harness = Harness::start().await;
    harness
        .misp
        .seed_event(json!({"id": "12", "info": "phishing"}));
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_publish_event",
        json!({"misp_event_id": 999}),
        WAIT,
    )
    .await;
    assert!(
        error_message(&replies)
            .contains("MISP has no event with ID 999, or the API key's user cannot see it"),
        "{replies:?}"
    );

    harness.misp.set_permissions(misp_sim::RolePermissions {
        publish: false,
        ..misp_sim::RolePermissions::all()
    });
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_publish_event",
        json!({"misp_event_id": 12, "misp_publish_alert": true}),
        WAIT,
    )
    .await;
    let message = error_message(&replies);
    assert!(
        message.contains(
            "MISP refused to publish event 12 (HTTP 403): You do not have permission to use this functionality."
        ),
        "{message}"
    );
    assert_eq!(harness.misp.events()[0]["Event"]["published"], json!(false));

    // The read's answer is held back until the next request is set to lose its answer, so
    // that MISP publishes and the answer to the publish is what is lost.
    harness
        .misp
        .set_permissions(misp_sim::RolePermissions::all());
    harness.misp.clear_requests();
    harness.misp.set_latency(Duration::from_millis(500));
    let id = driver
        .invoke(
            "fn_misp",
            "misp_publish_event",
            json!({"misp_event_id": 12, "misp_publish_alert": true}),
        )
        .await
        .expect("the driver publishes");
    wait_until(WAIT, || harness.misp.request_count() >= 1).await;
    harness.misp.lose_next_answers(1);
    harness.misp.set_latency(Duration::ZERO);
    let replies = driver.wait_final(&id, WAIT).await.expect("a final reply");
    let results = completed_results(&replies);
    assert_eq!(results["published"], json!(true));
    assert_eq!(results["alert"], json!(true));
    assert_eq!(results["content"]["Event"]["published"], json!(true));
    let paths: Vec<String> = changes(&harness)
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(paths, ["/events/alert/12"], "one alert, not two");
}
