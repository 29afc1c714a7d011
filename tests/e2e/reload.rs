//! `run` notices a changed `app.config`, drains as on SIGTERM and serves again with it,
//! without losing or re-running a message; a config that does not load is logged and the
//! one loaded before keeps serving.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use misp_sim::{MispSim, SimOptions};
use serde_json::{Value, json};

use super::support::{Harness, RunnerOptions, final_bodies};
use super::{WAIT, completed_results, invoke_many, wait_until};

/// Replaces `app.config` the way a ConfigMap update does: a new file renamed over the old,
/// so the runner never reads a half-written one.
fn replace_config(path: &Path, text: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, text).expect("write the new app.config");
    std::fs::rename(&staged, path).expect("replace app.config");
}

/// How many events each name has in `misp`.
fn event_names(misp: &MispSim) -> HashMap<String, usize> {
    let mut names = HashMap::new();
    for event in misp.events() {
        if let Some(name) = event.pointer("/Event/info").and_then(Value::as_str) {
            *names.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_is_drained_and_served_again_without_losing_or_rerunning_a_call() {
    let harness = Harness::start().await;
    let second = MispSim::start(SimOptions::default()).await;
    // Slow MISP: calls are in flight and more wait in the prefetch when the change lands.
    harness.misp.set_latency(Duration::from_millis(500));
    let options = RunnerOptions {
        num_workers: 4,
        ..RunnerOptions::default()
    };
    let config = harness.write_config("reload", &options);
    let runner = harness.start_runner("reload", &options);
    let driver = harness.driver().await;

    let burst = 40;
    let ids = invoke_many(
        &driver,
        "fn_misp",
        "misp_create_event",
        burst,
        |index| json!({ "misp_event_name": format!("burst {index}") }),
    )
    .await;
    wait_until(WAIT, || harness.misp.events().len() >= 2).await;
    assert!(
        harness.misp.events().len() >= 2,
        "calls are running when the config changes"
    );
    let text = std::fs::read_to_string(&config).expect("read app.config");
    replace_config(&config, &text.replace(harness.misp.url(), second.url()));

    for id in &ids {
        let replies = driver
            .wait_final(id, WAIT)
            .await
            .unwrap_or_else(|error| panic!("{error}; runner log:\n{}", runner.log()));
        completed_results(&replies);
    }
    runner.wait_for_log("app.config changed", WAIT);
    wait_until(WAIT, || {
        runner.count_in_log("has started successfully") >= 2
    })
    .await;
    assert_eq!(
        runner.count_in_log("has started successfully"),
        2,
        "started again once: {}",
        runner.log()
    );

    // Later calls use the new misp_url.
    let later = invoke_many(
        &driver,
        "fn_misp",
        "misp_create_event",
        3,
        |index| json!({ "misp_event_name": format!("later {index}") }),
    )
    .await;
    for id in &later {
        let replies = driver.wait_final(id, WAIT).await.expect("a final reply");
        completed_results(&replies);
    }
    // Let any duplicate reply arrive before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for id in ids.iter().chain(&later) {
        assert_eq!(
            final_bodies(&driver, id).len(),
            1,
            "{id}: exactly one final reply"
        );
    }
    let first_names = event_names(&harness.misp);
    let second_names = event_names(&second);
    for index in 0..burst {
        let name = format!("burst {index}");
        let made = first_names.get(&name).copied().unwrap_or(0)
            + second_names.get(&name).copied().unwrap_or(0);
        assert_eq!(
            made, 1,
            "{name} was created once, in one MISP: {first_names:?} {second_names:?}"
        );
    }
    for index in 0..3 {
        let name = format!("later {index}");
        assert_eq!(
            second_names.get(&name),
            Some(&1),
            "{name} went to the new MISP"
        );
        assert_eq!(
            first_names.get(&name),
            None,
            "{name} did not go to the old MISP"
        );
    }
    assert!(
        second_names.keys().any(|name| name.starts_with("burst")),
        "calls of the burst not started before the change ran after it, with the new MISP: {second_names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_that_does_not_load_is_logged_and_the_old_one_keeps_serving() {
    let harness = Harness::start().await;
    let options = RunnerOptions::default();
    let config = harness.write_config("broken", &options);
    let runner = harness.start_runner("broken", &options);
    let text = std::fs::read_to_string(&config).expect("read app.config");
    replace_config(&config, &text.replace("num_workers=25", "num_workers=many"));
    runner.wait_for_log("app.config changed but cannot be used", WAIT);
    let log = runner.log();
    assert!(
        log.contains("num_workers"),
        "the reason names the key: {log}"
    );

    let (_id, replies) = harness.search_once("203.0.113.99").await;
    completed_results(&replies);
    assert_eq!(
        runner.count_in_log("has started successfully"),
        1,
        "no restart"
    );
    // Reported once, not at every poll.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        runner.count_in_log("app.config changed but cannot be used"),
        1
    );

    // A good config after the broken one is taken, and its log level applies at once.
    assert!(!runner.log().contains(" DEBUG "), "loglevel=info so far");
    replace_config(&config, &text.replace("loglevel=info", "loglevel=DEBUG"));
    wait_until(WAIT, || {
        runner.count_in_log("has started successfully") >= 2
    })
    .await;
    let (_id, replies) = harness.search_once("203.0.113.100").await;
    completed_results(&replies);
    let log = runner.log();
    assert!(log.contains("log level applied"), "{log}");
    assert!(
        log.lines().any(|line| line.contains(" DEBUG ")),
        "DEBUG lines after the reload: {log}"
    );
}
