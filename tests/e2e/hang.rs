//! A MISP that accepts connections and answers nothing: each call ends at its budget
//! (`[fn_misp] call_timeout`) with an error naming it, and a call that needs no MISP is
//! not held behind the hung ones for long.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Harness, Runner, RunnerOptions};
use crate::{error_message, invoke_many, misp_paths};

const WORKERS: usize = 5;
/// Two waves of searches for the workers.
const SEARCHES: usize = 2 * WORKERS;
const TIMEOUT_SECS: u64 = 2;
const BUDGET_SECS: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_misp_ends_each_call_at_its_budget_and_a_call_without_misp_still_gets_through() {
    let harness = Harness::start().await;
    let options = RunnerOptions {
        num_workers: WORKERS,
        ..RunnerOptions::default()
    };
    // Without the budget, each search here takes four 2 s attempts and their back-offs,
    // about 10 s, and the second wave ends after about 20 s.
    let config = harness.write_config("hang", &options);
    let text = std::fs::read_to_string(&config).expect("the written app.config");
    let usual = "timeout=10\nretries=1\n";
    assert!(
        text.contains(usual),
        "the harness's [fn_misp] timings: {text}"
    );
    let text = text.replace(
        usual,
        &format!("timeout={TIMEOUT_SECS}\nretries=3\ncall_timeout={BUDGET_SECS}\n"),
    );
    std::fs::write(&config, text).expect("rewrite app.config");
    let runner = Runner::spawn(&config, &["run"], harness.dir.path().join("hang.log"));
    runner.wait_for_log("has started successfully", Duration::from_secs(30));
    harness.misp.hang_next(100_000);
    let driver = harness.driver().await;

    let published = Instant::now();
    let searches = invoke_many(
        &driver,
        "fn_misp",
        "misp_search_attribute",
        SEARCHES,
        |index| json!({"misp_attribute_value": format!("198.51.100.{index}")}),
    )
    .await;
    let probe = driver
        .invoke(
            "urlscanio",
            "urlscanio",
            json!({"urlscanio_url": "https://phish.example.com/hang", "urlscanio_public": false}),
        )
        .await
        .expect("the probe is published");

    // When each final reply arrived, from the first publish.
    let mut every: Vec<String> = searches.clone();
    every.push(probe.clone());
    let mut arrived: Vec<Option<Duration>> = vec![None; every.len()];
    let give_up = published + Duration::from_secs(60);
    while arrived.iter().any(Option::is_none) && Instant::now() < give_up {
        for (index, id) in every.iter().enumerate() {
            if arrived[index].is_none() && driver.replies(id).iter().any(|reply| reply.complete) {
                arrived[index] = Some(published.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = |at: Option<Duration>| {
        at.map_or("none".to_string(), |at| format!("{:.2}", at.as_secs_f64()))
    };
    let search_times: Vec<String> = arrived[..SEARCHES].iter().copied().map(seconds).collect();
    println!(
        "hang: MISP answers nothing; timeout {TIMEOUT_SECS} s, call_timeout {BUDGET_SECS} s, {WORKERS} workers; \
         the {SEARCHES} searches' error replies came at {} s; the urlscanio probe's reply at {} s (from the first publish)",
        search_times.join(", "),
        seconds(arrived[SEARCHES]),
    );
    assert!(
        arrived.iter().all(Option::is_some),
        "every call got a final reply within 60 s: {arrived:?}; runner log:\n{}",
        runner.log()
    );

    let budget = Duration::from_secs(BUDGET_SECS);
    let slack = Duration::from_millis(1500);
    let mut search_arrivals: Vec<Duration> =
        arrived[..SEARCHES].iter().flatten().copied().collect();
    search_arrivals.sort();
    // The first wave ends at one budget. The probe takes one of the freed workers, so the
    // searches end within three budgets: without the budget, each wave takes about 10 s.
    assert!(
        search_arrivals[WORKERS - 1] <= budget + slack,
        "the first {WORKERS} searches are answered at about {BUDGET_SECS} s: {search_arrivals:?}"
    );
    assert!(
        search_arrivals[SEARCHES - 1] <= 3 * budget + slack,
        "the last search is answered within {} s: {search_arrivals:?}",
        3 * BUDGET_SECS
    );
    for id in &searches {
        let message = error_message(&driver.replies(id));
        let budget_spent = format!(
            "MISP did not answer within the call's {BUDGET_SECS} s budget ([fn_misp] call_timeout); POST /events/restSearch had no answer when it ran out (attempt 2 of 4)"
        );
        assert_eq!(message, budget_spent, "a search's error names the budget");
    }
    let probe_replies = driver.replies(&probe);
    let probe_reply = probe_replies.last().expect("the probe's final reply");
    assert_eq!(
        probe_reply.message_type, 0,
        "the probe needs no MISP and completes: {probe_replies:?}"
    );
    assert!(
        arrived[SEARCHES].is_some_and(|at| at <= 2 * budget + Duration::from_secs(5)),
        "the probe waits for a worker at most until the second wave ends, then scans: {:?}",
        arrived[SEARCHES]
    );

    // Two attempts per search (one 2 s timeout, one cut at the deadline), none after.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let requests = misp_paths(&harness);
    println!(
        "hang: {} MISP requests for {SEARCHES} searches",
        requests.len()
    );
    assert_eq!(
        requests.len(),
        2 * SEARCHES,
        "two attempts per search and nothing after the budget: {requests:?}"
    );
    assert!(
        requests.iter().all(|path| path == "/events/restSearch"),
        "{requests:?}"
    );
}
