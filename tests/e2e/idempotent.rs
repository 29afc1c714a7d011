//! Creates that never duplicate, the hard way: a runner killed with SIGKILL after MISP
//! created the event but before it replied, the broker redelivering the call to a second
//! runner, and one event and one final reply in the end.

use std::time::Duration;

use serde_json::json;

use super::support::{Harness, RunnerOptions, final_bodies};
use super::{WAIT, final_reply, wait_until};

/// SIGKILL, through kill(1) as the support module signals runners.
fn kill_hard(pid: u32) {
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -KILL {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_after_misp_created_the_event_leaves_one_event_and_one_final_reply() {
    let harness = Harness::start().await;
    let options = RunnerOptions::default();
    let mut first = harness.start_runner("first", &options);
    let driver = harness.driver().await;
    harness.misp.clear_requests();
    // MISP creates the event and the answer is lost; the runner's check of whether the
    // create happened is then never answered: the runner holds the call, unanswered.
    harness.misp.lose_next_answers(1);
    harness.misp.hang_next(1);
    let id = driver
        .invoke(
            "fn_misp",
            "misp_create_event",
            json!({"misp_event_name": "Killed mid-call", "misp_threat_level": 2}),
        )
        .await
        .expect("the driver publishes");
    wait_until(WAIT, || harness.misp.request_count() >= 2).await;
    let paths: Vec<String> = harness
        .misp
        .requests()
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(paths.len(), 2, "the add, then the check: {paths:?}");
    assert_eq!(paths[0], "/events/add");
    assert!(paths[1].starts_with("/events/view/"), "{paths:?}");
    assert_eq!(harness.misp.events().len(), 1, "MISP created the event");

    kill_hard(first.pid().expect("the first runner runs"));
    let status = first.wait_exit(WAIT);
    assert!(!status.success(), "killed, not exited: {status:?}");
    assert!(
        driver.replies(&id).iter().all(|reply| !reply.complete),
        "the first runner never replied finally"
    );

    let second = harness.start_runner("second", &options);
    let replies = driver
        .wait_final(&id, WAIT)
        .await
        .expect("the redelivered call is answered");
    let last = final_reply(&replies);
    assert_eq!(last.message_type, 0, "{replies:?}");
    let events = harness.misp.events();
    assert_eq!(events.len(), 1, "exactly one event: {events:#?}");
    let event = &events[0]["Event"];
    assert_eq!(event["info"], "Killed mid-call");
    let content = &last.results.as_ref().expect("results")["content"]["Event"];
    assert_eq!(content["uuid"], event["uuid"], "{last:?}");
    assert_eq!(content["id"], event["id"]);
    assert_eq!(content["threat_level_id"], "2");

    let adds: Vec<misp_sim::RecordedRequest> = harness
        .misp
        .requests()
        .into_iter()
        .filter(|request| request.path == "/events/add")
        .collect();
    assert_eq!(adds.len(), 2, "one add per runner: {adds:#?}");
    assert_eq!(adds[0].body["Event"]["uuid"], adds[1].body["Event"]["uuid"]);
    assert_eq!(adds[1].status, Some(404), "MISP refused the taken UUID");

    // Give a stray second answer time to arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(final_bodies(&driver, &id).len(), 1, "one final reply");
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_run_twice_creates_one_attribute() {
    let harness = Harness::start().await;
    harness
        .misp
        .seed_event(json!({"id": "31", "info": "thirty-one"}));
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;
    // The same call published twice (a playbook's retry of the same step sends the same
    // workflow instance): the second finds the first one's attribute.
    let body = soar_sim::driver::function_message(
        "misp_create_attribute",
        json!({"misp_event_id": 31, "misp_attribute_type": "domain", "misp_attribute_value": "bad.example"}),
        4242,
    );
    let mut answers = Vec::new();
    for invocation in [1, 2] {
        let id = driver
            .publish_raw("fn_misp", body.to_string().into_bytes(), invocation)
            .await
            .expect("the driver publishes");
        let replies = driver.wait_final(&id, WAIT).await.expect("a final reply");
        let last = final_reply(&replies);
        assert_eq!(last.message_type, 0, "{replies:?}");
        answers.push(last.results.clone().expect("results"));
    }
    assert_eq!(answers[0]["success"], true, "{answers:?}");
    assert_eq!(answers[1]["success"], true, "{answers:?}");
    assert_eq!(
        answers[0]["content"]["Attribute"]["uuid"],
        answers[1]["content"]["Attribute"]["uuid"]
    );
    let event = &harness.misp.events()[0]["Event"];
    assert_eq!(event["Attribute"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_object_adds_a_url_object_and_refuses_a_missing_requirement_before_misp() {
    let harness = Harness::start().await;
    harness
        .misp
        .seed_event(json!({"id": "44", "info": "phishing"}));
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = super::support::call_fn_misp(
        &driver,
        "misp_add_object",
        json!({
            "misp_event_id": 44,
            "misp_object_template": "url",
            "misp_object_attributes": {"format": "text", "content": "{\"url\": \"https://bad.example/login\", \"host\": \"bad.example\"}"},
        }),
        WAIT,
    )
    .await;
    let last = final_reply(&replies);
    assert_eq!(last.message_type, 0, "{replies:?}");
    let object = &last.results.as_ref().expect("results")["content"]["Object"];
    assert_eq!(object["name"], "url");
    assert_eq!(object["event_id"], "44");
    let messages = super::messages(&replies);
    assert!(
        messages.contains(&"Adding a url object with 2 attributes to event 44".to_string()),
        "{messages:?}"
    );
    assert!(
        messages.contains(&format!(
            "Object {} has been added",
            object["id"].as_str().unwrap_or("")
        )),
        "{messages:?}"
    );
    let objects = harness.misp.objects();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["Object"]["uuid"], object["uuid"]);
    let add = harness
        .misp
        .requests()
        .into_iter()
        .find(|request| request.path.starts_with("/objects/add/"))
        .expect("the object was posted");
    assert_eq!(add.path, "/objects/add/44/2");
    assert_eq!(add.body["uuid"], object["uuid"], "the call's own UUID");

    harness.misp.clear_requests();
    let (_, replies) = super::support::call_fn_misp(
        &driver,
        "misp_add_object",
        json!({
            "misp_event_id": 44,
            "misp_object_template": "url",
            "misp_object_attributes": "{\"host\": \"bad.example\"}",
        }),
        WAIT,
    )
    .await;
    let last = final_reply(&replies);
    assert_eq!(last.message_type, 1, "{replies:?}");
    assert!(
        last.message.contains(
            "input 'misp_object_attributes': the url template requires at least one of: url, resource_path"
        ),
        "{}",
        last.message
    );
    assert!(
        !harness
            .misp
            .requests()
            .iter()
            .any(|request| request.path.starts_with("/objects/add/")),
        "nothing was posted"
    );
    assert_eq!(harness.misp.objects().len(), 1);
}
