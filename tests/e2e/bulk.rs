//! `misp_check_warninglist` and `misp_add_attributes` through ActiveMQ against misp-sim: the
//! per-value results SOAR gets back with their summary, the MISP requests behind them (one of
//! each kind, whatever the number of values), their failures, and a bulk add whose answer was
//! lost, checked rather than sent again.

use std::time::Duration;

use serde_json::{Value, json};

use super::support::{Harness, RunnerOptions, call_fn_misp};
use super::{WAIT, completed_results, error_message, messages, misp_paths, wait_until};

/// Event 12 holding ip-dst 203.0.113.9; a resolver warninglist holding 8.8.8.8.
fn seed(harness: &Harness) {
    harness
        .misp
        .seed_event(json!({"id": "12", "info": "phishing", "Attribute": [
            {"id": "40", "type": "ip-dst", "category": "Network activity", "value": "203.0.113.9",
             "to_ids": true},
        ]}));
    harness.misp.seed_warninglist(json!({
        "id": "3", "name": "List of known IPv4 public DNS resolvers", "type": "cidr",
        "list": ["8.8.8.8/32"], "matching_attributes": ["ip-src", "ip-dst"],
    }));
}

fn outcomes(results: &Value) -> Vec<(String, String)> {
    results["results"]
        .as_array()
        .expect("results lists the values")
        .iter()
        .map(|item| {
            (
                item["value"].as_str().unwrap_or_default().to_string(),
                item["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(value, outcome)| (value.to_string(), outcome.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warninglist_reports_each_value_and_fails_on_a_refusing_misp() {
    let harness = Harness::start().await;
    seed(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_check_warninglist",
        json!({"misp_values": {"format": "text", "content": "8.8.8[.]8\nevil.example\n"}}),
        WAIT,
    )
    .await;
    let summary =
        "1 of 2 values are on MISP warninglists: 8.8.8.8 (List of known IPv4 public DNS resolvers)";
    assert_eq!(
        messages(&replies),
        [
            "Setting up connection to MISP",
            "Checking 2 values against MISP's warninglists",
            summary,
            "Completed",
        ]
    );
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true));
    assert_eq!(results["summary"], json!(summary));
    assert_eq!(
        results["results"],
        json!([
            {"value": "8.8.8.8", "on_warninglist": true, "warninglists": [
                {"id": "3", "name": "List of known IPv4 public DNS resolvers", "matched": "8.8.8.8/32"}]},
            {"value": "evil.example", "on_warninglist": false, "warninglists": []},
        ])
    );
    assert_eq!(misp_paths(&harness), ["/warninglists/checkValue"]);
    let request = harness.misp.requests().pop().expect("the check");
    assert_eq!(request.body, json!(["8.8.8.8", "evil.example"]));

    harness.misp.fail_next(1, 403, None);
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_check_warninglist",
        json!({"misp_values": "8.8.8.8"}),
        WAIT,
    )
    .await;
    let message = error_message(&replies);
    assert!(message.contains("HTTP 403"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_attributes_adds_a_pasted_batch_in_one_request_with_each_outcome() {
    let harness = Harness::start().await;
    seed(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let report = "203.0.113[.]9\n8.8.8.8\nhxxps://evil[.]example/login\nuser[@]evil[.]example\nnonsense here\n";
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_add_attributes",
        json!({"misp_event_id": 12, "misp_values": report, "misp_to_ids": true,
               "misp_comment": "incident 2095"}),
        WAIT,
    )
    .await;
    let summary =
        "Event 12: 2 created, 1 already present, 1 on a warninglist (not added), 1 invalid";
    assert_eq!(
        messages(&replies),
        [
            "Setting up connection to MISP",
            "Reading event 12",
            "Checking 4 values against MISP's warninglists and event 12",
            "Adding 2 attributes to event 12",
            summary,
            "Completed",
        ]
    );
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true));
    assert_eq!(
        outcomes(&results),
        pairs(&[
            ("203.0.113.9", "already present"),
            ("8.8.8.8", "on warninglist"),
            ("https://evil.example/login", "created"),
            ("user@evil.example", "created"),
            ("nonsense here", "invalid"),
        ])
    );
    assert_eq!(results["results"][3]["type"], json!("email-src"));
    assert_eq!(
        results["counts"],
        json!({"created": 2, "already present": 1, "on warninglist": 1, "invalid": 1})
    );
    assert_eq!(
        misp_paths(&harness),
        [
            "/events/restSearch",
            "/warninglists/checkValue",
            "/attributes/restSearch",
            "/attributes/add/12",
        ]
    );
    let add = harness.misp.requests().pop().expect("the add");
    let sent = add.body.as_array().expect("a list of attributes");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["type"], json!("url"));
    assert_eq!(sent[0]["comment"], json!("incident 2095"));
    assert!(
        sent[0]["uuid"].is_string(),
        "each attribute has its derived UUID"
    );

    // An event MISP does not have: an error naming it, and nothing added.
    harness.misp.clear_requests();
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_add_attributes",
        json!({"misp_event_id": 99, "misp_values": "evil.example"}),
        WAIT,
    )
    .await;
    assert_eq!(
        error_message(&replies),
        "MISP has no event with ID 99, or the API key's user cannot see it"
    );
    assert_eq!(misp_paths(&harness), ["/events/restSearch"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_attributes_after_a_lost_answer_checks_and_does_not_add_twice() {
    let harness = Harness::start().await;
    seed(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    harness.misp.clear_requests();
    harness.misp.set_latency(Duration::from_millis(500));
    let id = driver
        .invoke(
            "fn_misp",
            "misp_add_attributes",
            json!({"misp_event_id": 12, "misp_values": "evil.example\n198.51.100.20\n"}),
        )
        .await
        .expect("the driver publishes");
    // The third request (the search of the event) is under way: the add is the next one.
    wait_until(WAIT, || harness.misp.request_count() >= 3).await;
    harness.misp.lose_next_answers(1);
    harness.misp.set_latency(Duration::ZERO);
    let replies = driver.wait_final(&id, WAIT).await.expect("a final reply");
    let results = completed_results(&replies);
    assert_eq!(
        outcomes(&results),
        pairs(&[("evil.example", "created"), ("198.51.100.20", "created")])
    );
    let adds: Vec<String> = misp_paths(&harness)
        .into_iter()
        .filter(|path| path.starts_with("/attributes/add"))
        .collect();
    assert_eq!(adds.len(), 1, "one add, not two: {adds:?}");
    let event = harness
        .misp
        .events()
        .into_iter()
        .find(|event| event["Event"]["id"] == "12")
        .expect("event 12");
    assert_eq!(
        event["Event"]["Attribute"].as_array().map(Vec::len),
        Some(3)
    );
}
