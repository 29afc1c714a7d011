//! End-to-end tests: `soar-runner` started as a user would, against a real ActiveMQ over
//! TLS, `soar-sim` (SOAR's REST API and its function messages) and `misp-sim`.

mod attributes_change;
mod bulk;
mod clone;
mod commands;
mod events_read;
mod hang;
mod idempotent;
mod image;
mod operating;
mod reload;
mod scale;
mod secrets;
mod soak;
mod support;
mod tags_publish;
mod verdict;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Broker, Harness, RunnerOptions, run_to_completion};

const WAIT: Duration = Duration::from_secs(60);

/// Publishes `count` calls of one function and returns their correlation ids in order.
async fn invoke_many(
    driver: &soar_sim::Driver,
    destination: &str,
    function: &str,
    count: usize,
    inputs: impl Fn(usize) -> Value,
) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for index in 0..count {
        let id = driver
            .invoke(destination, function, inputs(index))
            .await
            .unwrap_or_else(|error| panic!("publishing call {index} of {function}: {error}"));
        ids.push(id);
    }
    ids
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes (the caller's next
/// assertion then says what was missing).
async fn wait_until(timeout: Duration, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !condition() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn messages(replies: &[soar_sim::Reply]) -> Vec<String> {
    replies.iter().map(|reply| reply.message.clone()).collect()
}

/// Waits for each call's final reply and checks that every one completed (`message_type` 0).
async fn expect_completed(driver: &soar_sim::Driver, ids: &[String], timeout: Duration) {
    for id in ids {
        let replies = driver
            .wait_final(id, timeout)
            .await
            .expect("a final reply within the timeout");
        assert_eq!(final_reply(&replies).message_type, 0, "{replies:?}");
    }
}

/// The results of a call that completed (`message_type 0`).
fn completed_results(replies: &[soar_sim::Reply]) -> serde_json::Value {
    let last = final_reply(replies);
    assert_eq!(last.message_type, 0, "a completed call: {replies:?}");
    last.results.clone().expect("a completed call has results")
}

/// The message of a call that ended in an error reply (`message_type 1`, no results).
fn error_message(replies: &[soar_sim::Reply]) -> String {
    let last = final_reply(replies);
    assert_eq!(last.message_type, 1, "an error reply: {replies:?}");
    assert!(last.results.is_none(), "{replies:?}");
    last.message.clone()
}

/// The path of every request misp-sim received, in order.
fn misp_paths(harness: &support::Harness) -> Vec<String> {
    harness
        .misp
        .requests()
        .into_iter()
        .map(|request| request.path)
        .collect()
}

fn final_reply(replies: &[soar_sim::Reply]) -> &soar_sim::Reply {
    let last = replies.last().expect("at least one reply");
    assert!(
        last.complete,
        "the last reply must be the final one: {replies:?}"
    );
    let finals = replies.iter().filter(|reply| reply.complete).count();
    assert_eq!(finals, 1, "exactly one final reply: {replies:?}");
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_works_end_to_end_with_progress_before_the_final_reply() {
    let harness = Harness::start().await;
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let id = driver
        .invoke(
            "fn_misp",
            "misp_create_event",
            json!({"misp_event_name": "Phishing campaign 42", "misp_distribution": 0,
                   "misp_analysis_level": 1, "misp_threat_level": 2}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    assert_eq!(
        messages(&replies),
        vec![
            "Setting up connection to MISP",
            "Creating event Phishing campaign 42",
            "Event has been created",
            "Completed"
        ]
    );
    let results = final_reply(&replies).results.clone().expect("results");
    assert_eq!(results["version"], json!(2.0));
    assert_eq!(results["success"], json!(true));
    assert_eq!(
        results["content"]["Event"]["info"],
        json!("Phishing campaign 42")
    );
    assert_eq!(
        results["inputs"]["misp_event_name"],
        json!("Phishing campaign 42")
    );
    assert_eq!(results["metrics"]["package"], json!("fn-misp"));
    let event_id: i64 = results["content"]["Event"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("MISP ids are strings of digits");

    let id = driver
        .invoke(
            "fn_misp",
            "misp_create_attribute",
            json!({"misp_event_id": event_id, "misp_attribute_value": "203.0.113.7",
                   "misp_attribute_type": "ip-dst"}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    let results = final_reply(&replies).results.clone().expect("results");
    assert_eq!(results["success"], json!(true), "{results}");
    assert_eq!(
        results["content"]["Attribute"]["value"],
        json!("203.0.113.7")
    );

    let id = driver
        .invoke(
            "fn_misp",
            "misp_create_sighting",
            json!({"misp_sighting": "203.0.113.7"}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    let results = final_reply(&replies).results.clone().expect("results");
    assert_eq!(results["success"], json!(true), "{results}");
    assert_eq!(
        results["content"]["Sighting"]["source"],
        json!("IBM QRadar SOAR")
    );

    let id = driver
        .invoke(
            "fn_misp",
            "misp_create_tag",
            json!({"misp_tag_type": {"id": 3964, "name": "Attribute"}, "misp_tag_name": "tlp:amber",
                   "misp_event_id": event_id, "misp_attribute_value": "203.0.113.7"}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    assert!(
        messages(&replies).contains(&"Tagging Attribute with tlp:amber".to_string()),
        "{replies:?}"
    );
    assert_eq!(
        final_reply(&replies).results.as_ref().expect("results")["success"],
        json!(true)
    );

    let id = driver
        .invoke(
            "fn_misp",
            "misp_create_tag",
            json!({"misp_tag_type": {"id": 3963, "name": "Event"},
                   "misp_tag_name": "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\"",
                   "misp_event_id": event_id}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    assert_eq!(
        final_reply(&replies).results.as_ref().expect("results")["success"],
        json!(true)
    );

    let id = driver
        .invoke(
            "fn_misp",
            "misp_search_attribute",
            json!({"misp_attribute_value": "203.0.113.7"}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    let results = final_reply(&replies).results.clone().expect("results");
    assert_eq!(results["success"], json!(true), "{results}");
    assert_eq!(results["content"].as_array().map(Vec::len), Some(1));
    let tags: Vec<&str> = results["tags"]
        .as_array()
        .expect("tags beside the envelope, as 3.0.1 workflows read them")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tags.contains(&"tlp:amber"), "{tags:?}");
    assert_eq!(
        results["attack_techniques"][0]["id"],
        json!("T1566"),
        "{results}"
    );

    let id = driver
        .invoke(
            "fn_misp",
            "misp_sighting_list",
            json!({"misp_event_id": event_id}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    let results = final_reply(&replies).results.clone().expect("results");
    assert_eq!(
        results["content"][0]["Sighting"]["source"],
        json!("IBM QRadar SOAR")
    );

    let id = driver
        .invoke(
            "fn_misp",
            "misp_search_attribute",
            json!({"misp_attribute_value": "no-such-value"}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    let last = final_reply(&replies);
    assert_eq!(last.message_type, 0, "no match is not an error");
    let results = last.results.clone().expect("results");
    assert_eq!(results["success"], json!(false));
    assert_eq!(results["content"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_message_gets_an_error_reply_and_is_acked() {
    let harness = Harness::start().await;
    let options = RunnerOptions {
        num_workers: 2,
        extra_resilient: "max_message_size_mb=1".into(),
        ..RunnerOptions::default()
    };
    let mut runner = harness.start_runner("runner", &options);
    let driver = harness.driver().await;

    let mut expectations = Vec::new();
    let invocation = driver.next_invocation();
    let id = driver
        .publish_raw("fn_misp", b"{this is not json".to_vec(), invocation)
        .await
        .unwrap();
    expectations.push((id, "the message body is not valid JSON"));
    let invocation = driver.next_invocation();
    let id = driver
        .publish_raw("fn_misp", br#"{"inputs": {}}"#.to_vec(), invocation)
        .await
        .unwrap();
    expectations.push((id, "function.name is missing"));
    let id = driver
        .invoke("fn_misp", "misp_no_such_function", json!({}))
        .await
        .unwrap();
    expectations.push((id, "no function named 'misp_no_such_function' is served here; known functions: misp_add_attributes, misp_add_object, misp_add_sighting, misp_check_warninglist, misp_create_attribute"));
    let id = driver
        .invoke(
            "fn_misp",
            "misp_sighting_list",
            json!({"misp_event_id": "abc"}),
        )
        .await
        .unwrap();
    expectations.push((id, "Unexpected input type for MISP Event ID"));
    let id = driver
        .invoke(
            "fn_misp",
            "misp_create_event",
            json!({"misp_event_name": "x", "misp_threat_level": 9}),
        )
        .await
        .unwrap();
    expectations.push((id, "input 'misp_threat_level' is 9"));
    let id = driver
        .invoke("fn_misp", "misp_create_event", json!({}))
        .await
        .unwrap();
    expectations.push((id, "input 'misp_event_name' is required"));
    let big = "x".repeat(1_200_000);
    let id = driver
        .invoke(
            "fn_misp",
            "misp_search_attribute",
            json!({"misp_attribute_value": big}),
        )
        .await
        .unwrap();
    expectations.push((id, "more than the 1048576 bytes allowed"));
    // More bad messages than workers: if any were left unacked the valid call below
    // would never be delivered.
    let good = driver
        .invoke(
            "fn_misp",
            "misp_create_event",
            json!({"misp_event_name": "still served"}),
        )
        .await
        .unwrap();

    for (id, expected) in &expectations {
        let replies = driver
            .wait_final(id, WAIT)
            .await
            .unwrap_or_else(|error| panic!("{expected}: {error}; runner log:\n{}", runner.log()));
        let last = final_reply(&replies);
        assert_eq!(last.message_type, 1, "{expected}: {replies:?}");
        assert!(
            last.message.contains(expected),
            "expected '{expected}' in '{}'",
            last.message
        );
        assert!(last.results.is_none());
    }
    let replies = driver.wait_final(&good, WAIT).await.unwrap();
    assert_eq!(final_reply(&replies).message_type, 0);

    // Every message was acked: a second runner on the same queue gets nothing to redo.
    runner.terminate();
    assert!(runner.wait_exit(WAIT).success());
    let second = harness.start_runner("second", &options);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        driver.final_replies().len(),
        expectations.len() + 1,
        "no message was redelivered; second runner's log:\n{}",
        second.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_is_answered_with_never_more_than_num_workers_running() {
    let harness = Harness::start().await;
    harness.misp.set_latency(Duration::from_millis(20));
    let options = RunnerOptions {
        num_workers: 5,
        ..RunnerOptions::default()
    };
    let runner = harness.start_runner("runner", &options);
    let driver = harness.driver().await;
    let ids = invoke_many(
        &driver,
        "fn_misp",
        "misp_search_attribute",
        200,
        |index| json!({"misp_attribute_value": format!("v{index}")}),
    )
    .await;
    expect_completed(&driver, &ids, WAIT).await;
    let finals = driver.final_replies();
    assert_eq!(finals.len(), 200);
    assert_eq!(
        finals.iter().collect::<HashSet<_>>().len(),
        200,
        "no reply twice"
    );
    let max = harness.misp.max_in_flight();
    assert!(
        max <= 5,
        "MISP saw {max} requests at once with num_workers 5"
    );
    assert!(
        max >= 2,
        "the runner should run calls concurrently (saw {max})"
    );
    drop(runner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_functions_finish_reply_and_ack() {
    let harness = Harness::start().await;
    harness.misp.set_latency(Duration::from_millis(1500));
    let mut runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;
    let ids = invoke_many(
        &driver,
        "fn_misp",
        "misp_create_event",
        5,
        |index| json!({"misp_event_name": format!("drain {index}")}),
    )
    .await;
    wait_until(WAIT, || harness.misp.request_count() >= 5).await;
    runner.terminate();
    let status = runner.wait_exit(WAIT);
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        runner.log()
    );
    expect_completed(&driver, &ids, Duration::from_secs(5)).await;
    assert_eq!(harness.misp.events().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_share_a_burst_and_no_message_is_answered_twice() {
    let harness = Harness::start().await;
    harness.misp.set_latency(Duration::from_millis(10));
    let options = RunnerOptions {
        num_workers: 4,
        ..RunnerOptions::default()
    };
    let first = harness.start_runner("first", &options);
    let second = harness.start_runner("second", &options);
    let driver = harness.driver().await;
    let ids = invoke_many(
        &driver,
        "fn_misp",
        "misp_create_event",
        100,
        |index| json!({"misp_event_name": format!("shared {index}")}),
    )
    .await;
    for id in &ids {
        driver.wait_final(id, WAIT).await.unwrap();
    }
    let finals = driver.final_replies();
    assert_eq!(finals.len(), 100);
    assert_eq!(finals.iter().collect::<HashSet<_>>().len(), 100);
    assert_eq!(harness.misp.events().len(), 100, "no function ran twice");
    let (a, b) = (
        first.count_in_log("completed"),
        second.count_in_log("completed"),
    );
    assert_eq!(a + b, 100);
    assert!(a > 0 && b > 0, "both runners took part: {a} and {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_no_reply_and_runs_nothing_twice() {
    let broker = Broker::private("restart");
    let harness = Harness::start_with(broker).await;
    harness.misp.set_latency(Duration::from_millis(100));
    let options = RunnerOptions {
        num_workers: 10,
        ..RunnerOptions::default()
    };
    let runner = harness.start_runner("runner", &options);
    let driver = harness.driver().await;
    let ids = invoke_many(
        &driver,
        "fn_misp",
        "misp_create_event",
        60,
        |index| json!({"misp_event_name": format!("restart {index}")}),
    )
    .await;
    wait_until(WAIT, || driver.final_replies().len() >= 10).await;
    harness.broker.restart();
    for id in &ids {
        let replies = driver
            .wait_final(id, Duration::from_secs(120))
            .await
            .unwrap_or_else(|error| panic!("{error}; runner log:\n{}", runner.log()));
        let last = replies.last().expect("at least one reply");
        assert!(last.complete && last.message_type == 0, "{replies:?}");
    }
    let finals = driver.final_replies();
    let unique: HashSet<_> = finals.iter().collect();
    assert_eq!(unique.len(), 60, "every call answered");
    // The final reply and the ACK are committed together, so a restart leaves a call
    // answered once or not yet, never twice.
    let mut seen = HashSet::new();
    for id in &finals {
        assert!(seen.insert(id), "{id} was answered twice");
    }
    let names: HashSet<String> = harness
        .misp
        .events()
        .iter()
        .filter_map(|event| {
            event
                .pointer("/Event/info")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    assert_eq!(harness.misp.events().len(), 60, "no function ran twice");
    assert_eq!(names.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selftest_exit_codes_follow_resilient_circuits() {
    let harness = Harness::start().await;
    let good = harness.write_config("good", &RunnerOptions::default());
    let (code, output) = run_to_completion(&good, &["selftest"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("fn_misp: ok"), "{output}");

    let text = std::fs::read_to_string(&good).unwrap();
    let wrong_key = harness.dir.path().join("wrong-key.config");
    std::fs::write(
        &wrong_key,
        text.replace(soar_sim::rest::DEFAULT_API_KEY_SECRET, "not-the-secret"),
    )
    .unwrap();
    let (code, output) = run_to_completion(&wrong_key, &["selftest"]);
    assert_eq!(code, 21, "{output}");
    assert!(output.contains("API key"), "{output}");
    assert!(
        !output.contains("not-the-secret"),
        "the secret leaked: {output}"
    );

    let no_broker = harness.dir.path().join("no-broker.config");
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &no_broker,
        text.replace(
            &format!("stomp_port={}", harness.broker.tls_port),
            &format!("stomp_port={closed_port}"),
        ),
    )
    .unwrap();
    let (code, output) = run_to_completion(&no_broker, &["selftest"]);
    assert_eq!(code, 30, "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urlscanio_scans_through_the_runner_and_attaches_the_screenshot() {
    let harness = Harness::start().await;
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;
    let id = driver
        .invoke(
            "urlscanio",
            "urlscanio",
            json!({"urlscanio_url": "https://phish.example.com/login", "urlscanio_public": false,
                   "incident_id": 2095}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    let statuses = messages(&replies);
    assert!(
        statuses
            .iter()
            .any(|message| message.starts_with("Submitted URL successfully as ")),
        "{statuses:?}"
    );
    let results = final_reply(&replies).results.clone().expect("results");
    assert_eq!(results["success"], json!(true), "{results}");
    assert!(
        results["content"]["png_base64content"]
            .as_str()
            .is_some_and(|png| !png.is_empty())
    );
    assert!(results["content"]["report"].is_object());
    assert!(results["content"]["summary"].is_object());
    let attachments = harness.soar.attachments();
    assert_eq!(
        attachments.len(),
        1,
        "one screenshot attached to the incident"
    );
    assert_eq!(attachments[0].incident_id, 2095);
    assert_eq!(
        attachments[0].name,
        "urlscanio-screenshot-https://phish.example.com/login.png"
    );
    assert!(attachments[0].bytes.starts_with(b"\x89PNG"));
    let reply_text =
        serde_json::to_string(&replies.iter().map(|r| &r.body).collect::<Vec<_>>()).unwrap();
    assert!(
        !reply_text.contains(support::URLSCAN_KEY),
        "the urlscan key leaked into a reply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customize_imports_the_exports_and_grants_the_api_key_its_destinations() {
    let harness = Harness::start().await;
    for (name, _) in support::FUNCTIONS {
        harness.soar.remove_function(name);
    }
    let config = harness.write_config("customize", &RunnerOptions::default());

    // Before the import SOAR knows no function: the runner refuses to start, naming the fix.
    let (code, output) = run_to_completion(&config, &["run"]);
    assert_ne!(code, 0);
    assert!(output.contains("soar-runner customize"), "{output}");

    harness
        .soar
        .refuse_imports(Some("The import contains a field that conflicts"));
    let (code, output) = run_to_completion(&config, &["customize", "-y"]);
    assert_ne!(code, 0, "a refused import fails the command: {output}");
    assert!(
        output.contains("The import contains a field that conflicts"),
        "{output}"
    );

    harness.soar.refuse_imports(None);
    let (code, output) = run_to_completion(&config, &["customize", "-y"]);
    assert_eq!(code, 0, "{output}");
    let accepted: Vec<_> = harness
        .soar
        .imports()
        .into_iter()
        .filter(|import| import.status == "ACCEPTED")
        .collect();
    assert_eq!(accepted.len(), 2, "fn_misp and fn_urlscanio: {output}");
    for destination in harness.soar.message_destinations() {
        let keys = destination["api_keys"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            keys.contains(&json!(soar_sim::rest::API_KEY_HANDLE)),
            "the API key may read {}: {destination}",
            destination["programmatic_name"]
        );
    }

    // After the import the runner starts and serves.
    let _runner = harness.start_runner("after-import", &RunnerOptions::default());
    let driver = harness.driver().await;
    let id = driver
        .invoke(
            "fn_misp",
            "misp_create_event",
            json!({"misp_event_name": "after customize"}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    assert_eq!(final_reply(&replies).message_type, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_create_writes_every_section_and_update_keeps_existing_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.config");
    let (code, output) = run_to_completion(
        std::path::Path::new("/nonexistent"),
        &["config", "-c", path.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{output}");
    let text = std::fs::read_to_string(&path).unwrap();
    for section in ["[resilient]", "[fn_misp]", "[urlscanio]"] {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
    let (code, _) = run_to_completion(
        std::path::Path::new("/nonexistent"),
        &["config", "-c", path.to_str().unwrap()],
    );
    assert_ne!(code, 0, "-c never overwrites");

    std::fs::write(&path, "[resilient]\nhost=soar.example.com\n").unwrap();
    let (code, output) = run_to_completion(
        std::path::Path::new("/nonexistent"),
        &["config", "-u", path.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{output}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("[resilient]\nhost=soar.example.com\n"),
        "{text}"
    );
    assert_eq!(text.matches("[resilient]").count(), 1);
    assert!(text.contains("[fn_misp]") && text.contains("misp_key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_runs_one_function_without_soar_and_prints_the_payload() {
    let harness = Harness::start().await;
    let config = harness.write_config("invoke", &RunnerOptions::default());
    let (code, stdout, stderr) = support::run_split(
        &config,
        &[
            "invoke",
            "misp_create_event",
            "misp_event_name=From the CLI",
            "misp_threat_level=3",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("progress: Creating event From the CLI"),
        "{stderr}"
    );
    let payload: Value = serde_json::from_str(&stdout).expect("stdout is the payload JSON");
    assert_eq!(payload["content"]["Event"]["threat_level_id"], json!("3"));
    let event_id = payload["content"]["Event"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A select input takes its label; inputs can also come from a JSON file.
    let inputs = harness.dir.path().join("inputs.json");
    std::fs::write(&inputs, json!({"misp_tag_name": "tlp:green"}).to_string()).unwrap();
    let (code, stdout, stderr) = support::run_split(
        &config,
        &[
            "invoke",
            "misp_create_tag",
            "misp_tag_type=Event",
            &format!("misp_event_id={event_id}"),
            "--inputs-json",
            inputs.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let payload: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(payload["inputs"]["misp_tag_type"], json!("Event"));
    assert_eq!(payload["inputs"]["misp_tag_name"], json!("tlp:green"));

    let (code, stdout, stderr) = support::run_split(
        &config,
        &["invoke", "misp_sighting_list", "misp_event_id=abc"],
    );
    assert_eq!(code, 1, "a failure exits non-zero");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("Unexpected input type for MISP Event ID"),
        "{stderr}"
    );

    let (code, _, stderr) = support::run_split(
        &config,
        &["invoke", "misp_create_tag", "misp_tag_type=Neither"],
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("takes one of: Event, Attribute"),
        "{stderr}"
    );

    let (code, _, _) = support::run_split(
        &config,
        &[
            "invoke",
            "misp_search_attribute",
            "misp_attribute_value=nothing-matches",
        ],
    );
    assert_eq!(code, 2, "a completed call whose answer is no exits 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selftest_names_the_misp_permissions_the_key_lacks() {
    let harness = Harness::start().await;
    harness
        .misp
        .set_permissions(misp_sim::RolePermissions::read_only());
    let config = harness.write_config("selftest", &RunnerOptions::default());
    let (code, output) = run_to_completion(&config, &["selftest"]);
    assert_eq!(code, 1, "{output}");
    for permission in ["perm_add", "perm_sighting", "perm_tagger"] {
        assert!(
            output.contains(permission),
            "{permission} not named:\n{output}"
        );
    }
    assert!(output.contains("STOMP: ok"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cut_off_by_the_shutdown_deadline_go_to_the_next_runner() {
    let harness = Harness::start().await;
    harness.misp.set_latency(Duration::from_secs(4));
    let options = RunnerOptions {
        shutdown_timeout_secs: 1,
        ..RunnerOptions::default()
    };
    let mut first = harness.start_runner("first", &options);
    let driver = harness.driver().await;
    let ids = invoke_many(
        &driver,
        "fn_misp",
        "misp_search_attribute",
        3,
        |index| json!({"misp_attribute_value": format!("slow {index}")}),
    )
    .await;
    wait_until(WAIT, || harness.misp.request_count() >= 3).await;
    first.terminate();
    let status = first.wait_exit(WAIT);
    assert!(status.success(), "{}", first.log());
    assert!(
        driver.final_replies().is_empty(),
        "cut-off calls are not answered by the first runner"
    );
    assert!(
        first.log().contains("shutdown deadline reached"),
        "{}",
        first.log()
    );

    harness.misp.set_latency(Duration::ZERO);
    let _second = harness.start_runner("second", &options);
    expect_completed(&driver, &ids, WAIT).await;
    assert_eq!(driver.final_replies().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_go_to_app_log_in_logdir_as_json_with_one_span_per_message() {
    let harness = Harness::start().await;
    let logdir = harness.dir.path().join("logs");
    let options = RunnerOptions {
        extra_resilient: format!("logdir={}", logdir.display()),
        ..RunnerOptions::default()
    };
    let config = harness.write_config("json", &options);
    let runner = support::Runner::spawn(
        &config,
        &["--log-format", "json", "run"],
        harness.dir.path().join("json.log"),
    );
    runner.wait_for_log("has started successfully", Duration::from_secs(30));
    let (id, _) = harness.search_once("logged").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let app_log = std::fs::read_to_string(logdir.join("app.log")).expect("app.log is written");
    let completed = app_log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["fields"]["message"] == json!("completed"))
        .unwrap_or_else(|| panic!("no JSON 'completed' line in app.log:\n{app_log}"));
    let span = &completed["span"];
    assert_eq!(
        span["function"],
        json!("misp_search_attribute"),
        "{completed}"
    );
    assert_eq!(span["correlation_id"], json!(id), "{completed}");
    assert!(!app_log.contains(soar_sim::rest::DEFAULT_API_KEY_SECRET));
    assert!(!app_log.contains(harness.misp.key()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_to_a_file_or_a_pipe_carry_no_colour_codes() {
    let harness = Harness::start().await;
    let logdir = harness.dir.path().join("logs");
    let options = RunnerOptions {
        extra_resilient: format!("logdir={}", logdir.display()),
        ..RunnerOptions::default()
    };
    let config = harness.write_config("text", &options);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))
            .expect("chmod the config");
    }
    let stderr_path = harness.dir.path().join("text.log");
    let runner = support::Runner::spawn(&config, &["run"], stderr_path.clone());
    runner.wait_for_log("has started successfully", Duration::from_secs(30));
    let (_id, _) = harness.search_once("plain").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let app_log = std::fs::read_to_string(logdir.join("app.log")).expect("app.log is written");
    let stderr = std::fs::read_to_string(&stderr_path).expect("stderr was captured");
    for (name, text) in [("app.log", &app_log), ("stderr", &stderr)] {
        assert!(
            text.lines()
                .any(|line| line.contains("completed elapsed_ms=")),
            "no plain 'completed' line in {name}:\n{text}"
        );
        assert!(!text.contains('\u{1b}'), "colour codes in {name}:\n{text}");
    }
    // Others can read the config; the warning is found while loading, before logging is
    // set up, and must still be logged.
    assert!(
        stderr.contains("readable by other users (mode 644)"),
        "no warning about the readable config:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_broker_is_detected_by_missed_heart_beats_and_the_runner_reconnects() {
    let broker = Broker::private("heartbeat");
    let pid = std::fs::read_to_string(broker.base.as_ref().unwrap().join("activemq.pid"))
        .unwrap()
        .trim()
        .to_string();
    let harness = Harness::start_with(broker).await;
    let options = RunnerOptions {
        extra_resilient: "stomp_heartbeat_ms=1000".into(),
        ..RunnerOptions::default()
    };
    let runner = harness.start_runner("runner", &options);
    // Freeze the broker: its socket stays open but it sends nothing, as on a dead network.
    let freeze = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    assert!(freeze.success());
    runner.wait_for_log("nothing received", Duration::from_secs(20));
    let thaw = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert!(thaw.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while runner.count_in_log("has started successfully") < 2
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        runner.count_in_log("has started successfully") >= 2,
        "the runner resubscribed after the heart-beat timeout:\n{}",
        runner.log()
    );
    let driver = harness.driver().await;
    let id = driver
        .invoke(
            "fn_misp",
            "misp_create_event",
            json!({"misp_event_name": "after the freeze"}),
        )
        .await
        .unwrap();
    let replies = driver.wait_final(&id, WAIT).await.unwrap();
    assert_eq!(final_reply(&replies).message_type, 0);
}
