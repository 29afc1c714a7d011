//! `misp_publish_event` against misp-sim: publishing by id or UUID, with and without the
//! e-mail alert, an event already published, MISP's refusals, and a lost answer.

use std::time::Duration;

use fn_misp::test_support::{self, ProgressLog};
use misp_publish_event::MispPublishEvent;
use misp_sim::{MispSim, RecordedRequest, RolePermissions, SimOptions};
use serde_json::{Value, json};
use soar_core::{Function, FunctionError, FunctionOutput, InputType};

#[test]
fn the_function_is_registered_with_its_inputs() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_publish_event")
        .expect("register_function! put it in the registry");
    let definition = function.definition();
    assert_eq!(definition, &misp_publish_event::DEFINITION);
    let inputs: Vec<(&str, InputType)> = definition
        .inputs
        .iter()
        .map(|input| (input.name, input.input_type))
        .collect();
    assert_eq!(
        inputs,
        [
            ("misp_event_id", InputType::Number),
            ("misp_event_uuid", InputType::Text),
            ("misp_publish_alert", InputType::Boolean),
        ]
    );
}

/// Runs the function with one retry allowed, as a lost answer needs.
async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let config = format!(
        "[fn_misp]\nmisp_url={}\nmisp_key={}\nverify_cert=false\nretries=1\ntimeout=10\n",
        sim.url(),
        sim.key()
    );
    let context = test_support::context_from_config(&config, &log);
    let result = MispPublishEvent
        .run(&context, &test_support::inputs(inputs))
        .await;
    (result, log.messages())
}

fn event(sim: &MispSim, event_id: &str) -> Value {
    sim.events()
        .into_iter()
        .map(|event| event["Event"].clone())
        .find(|event| event["id"] == event_id)
        .unwrap_or_else(|| panic!("event {event_id} was seeded"))
}

fn changes(sim: &MispSim) -> Vec<RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|request| request.method == "POST" && request.path != "/events/restSearch")
        .collect()
}

/// Event 12 not yet published, event 13 published in 2023.
async fn sim_with_events() -> MispSim {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({"id": "12", "info": "draft"}));
    sim.seed_event(
        json!({"id": "13", "info": "out", "published": true, "publish_timestamp": "1700000000"}),
    );
    sim
}

#[tokio::test]
async fn an_unpublished_event_is_published_with_misps_answer() {
    let sim = sim_with_events().await;
    let (result, progress) = run(&sim, json!({"misp_event_id": 12})).await;
    let output = result.expect("the event is published");
    assert!(output.success);
    assert_eq!(
        output.content,
        json!({"saved": true, "success": true, "name": "Event published without alerts",
               "message": "Event published without alerts", "url": "/events/publish/12", "id": "12"})
    );
    assert_eq!(output.extra["published"], json!(true));
    assert_eq!(output.extra["already_published"], json!(false));
    assert_eq!(output.extra["alert"], json!(false));
    assert_eq!(output.extra["event_id"], json!(12));
    assert_eq!(
        progress,
        test_support::progress(&[
            "Reading event 12",
            "Publishing event 12",
            "Event 12 published: Event published without alerts",
        ])
    );
    assert_eq!(event(&sim, "12")["published"], json!(true));
    let changes = changes(&sim);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].path, "/events/publish/12");
    assert_eq!(changes[0].body, Value::Null, "publish takes no body");
    let read = &sim.requests()[0];
    assert_eq!(read.path, "/events/restSearch");
    assert_eq!(
        read.body["metadata"],
        json!(true),
        "the read leaves attributes out"
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn an_event_named_by_uuid_is_published_through_its_id_with_the_alert() {
    let sim = sim_with_events().await;
    let uuid = event(&sim, "12")["uuid"].clone();
    let (result, progress) = run(
        &sim,
        json!({"misp_event_uuid": uuid, "misp_publish_alert": true}),
    )
    .await;
    let output = result.expect("the event is published");
    assert_eq!(
        output.content["message"],
        json!("Email sent to all participants.")
    );
    assert_eq!(output.extra["alert"], json!(true));
    assert_eq!(output.extra["event_id"], json!(12));
    assert_eq!(
        progress[1..3],
        [
            format!("Reading event {}", uuid.as_str().unwrap_or_default()),
            "Publishing event 12 with MISP's e-mail alert".to_string(),
        ]
    );
    let changes = changes(&sim);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].path, "/events/alert/12");
}

#[tokio::test]
async fn an_event_already_published_is_a_success_that_says_so_and_is_not_published_again() {
    let sim = sim_with_events().await;
    let (result, progress) = run(&sim, json!({"misp_event_id": 13})).await;
    let output = result.expect("already published is a success");
    assert!(output.success);
    assert_eq!(output.extra["already_published"], json!(true));
    assert_eq!(output.extra["published"], json!(true));
    assert_eq!(output.content["Event"]["id"], json!("13"));
    assert_eq!(
        output.content["Event"]["publish_timestamp"],
        json!("1700000000")
    );
    assert_eq!(
        progress.last().map(String::as_str),
        Some("Event 13 is already published; it was not published again")
    );
    assert!(changes(&sim).is_empty(), "{:?}", sim.requests());
    assert_eq!(event(&sim, "13")["publish_timestamp"], json!("1700000000"));
}

#[tokio::test]
async fn an_alert_asked_for_an_event_already_published_is_sent() {
    let sim = sim_with_events().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_event_id": 13, "misp_publish_alert": true}),
    )
    .await;
    let output = result.expect("the alert is sent");
    assert_eq!(output.extra["already_published"], json!(true));
    assert_eq!(output.extra["alert"], json!(true));
    assert_eq!(output.content["url"], json!("/events/alert/13"));
    assert!(
        progress.contains(&"Event 13 is already published; sending MISP's e-mail alert as asked (MISP publishes the event again with it)".to_string()),
        "{progress:?}"
    );
    assert_eq!(changes(&sim).len(), 1);
    assert_ne!(event(&sim, "13")["publish_timestamp"], json!("1700000000"));
}

#[tokio::test]
async fn an_unknown_event_is_an_error_naming_it() {
    let sim = sim_with_events().await;
    let (result, _) = run(&sim, json!({"misp_event_id": 999})).await;
    assert_eq!(
        result.expect_err("no event 999").to_string(),
        "MISP has no event with ID 999, or the API key's user cannot see it"
    );
    let uuid = "8c3b5c0e-0000-4000-8000-000000000000";
    let (result, _) = run(&sim, json!({"misp_event_uuid": uuid})).await;
    assert_eq!(
        result.expect_err("no such uuid").to_string(),
        format!("MISP has no event with UUID {uuid}, or the API key's user cannot see it")
    );
    assert!(changes(&sim).is_empty());
}

#[tokio::test]
async fn a_role_without_the_publish_flag_gets_misps_reason() {
    let sim = sim_with_events().await;
    sim.set_permissions(RolePermissions {
        publish: false,
        ..RolePermissions::all()
    });
    let (result, _) = run(&sim, json!({"misp_event_id": 12})).await;
    assert_eq!(
        result.expect_err("no perm_publish").to_string(),
        "MISP refused to publish event 12 (HTTP 403): You do not have permission to use this functionality. (publishing needs a role with the publish permission, perm_publish)"
    );
    assert_eq!(event(&sim, "12")["published"], json!(false));
}

#[tokio::test]
async fn bad_inputs_are_refused_before_misp_is_called() {
    let sim = sim_with_events().await;
    let (result, _) = run(&sim, json!({"misp_publish_alert": true})).await;
    assert_eq!(
        result.expect_err("no event").to_string(),
        "input 'misp_event_id' or 'misp_event_uuid' is required but was not given"
    );
    assert_eq!(sim.request_count(), 0);
}

/// MISP publishes, the answer is lost: the check finds the event published since the read
/// and the function succeeds without a second publish.
#[tokio::test]
async fn a_lost_answer_is_checked_and_not_published_twice() {
    let sim = sim_with_events().await;
    let (result, progress) = run_with_knob_after_the_read(
        &sim,
        json!({"misp_event_id": 12, "misp_publish_alert": true}),
        |sim| sim.lose_next_answers(1),
    )
    .await;
    let output = result.expect("the check finds the event published");
    assert_eq!(output.extra["published"], json!(true));
    assert_eq!(output.extra["already_published"], json!(false));
    assert_eq!(
        output.content["Event"]["published"],
        json!(true),
        "the event as MISP shows it after"
    );
    assert_eq!(
        progress.last().map(String::as_str),
        Some("Event 12 published")
    );
    let changes = changes(&sim);
    assert_eq!(changes.len(), 1, "one alert, not two: {changes:?}");
    assert_eq!(event(&sim, "12")["published"], json!(true));
}

/// A 503 before MISP acted: the check finds the event unpublished and the publish is sent again.
#[tokio::test]
async fn a_change_that_did_not_happen_is_sent_again() {
    let sim = sim_with_events().await;
    let (result, _) = run_with_knob_after_the_read(&sim, json!({"misp_event_id": 12}), |sim| {
        sim.fail_next(1, 503, None)
    })
    .await;
    let output = result.expect("the second publish succeeds");
    assert_eq!(
        output.content["message"],
        json!("Event published without alerts")
    );
    let statuses: Vec<Option<u16>> = changes(&sim).iter().map(|request| request.status).collect();
    assert_eq!(statuses, [Some(503), Some(200)]);
}

/// Runs the function and arms `knob` once its first request (the read) has arrived, so
/// that the knob applies to the change that follows: the read's answer is held back until then.
async fn run_with_knob_after_the_read(
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
