//! The soak with faults: thousands of function messages through one runner for about two
//! minutes (`SOAK_SECONDS` for longer) while MISP fails in every way misp-sim knows, the
//! broker restarts twice and some messages are bad. Then every message must have exactly
//! one final reply, nothing answered may have run twice, and the runner's memory, file
//! descriptors and threads must be where they were after warm-up.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use misp_sim::{ForcedBody, ForcedResponse};
use serde_json::{Value, json};

use crate::support::{Broker, Harness, Runner, RunnerOptions};

/// The runner's resources as /proc shows them.
#[derive(Debug, Clone, Copy)]
pub struct Resources {
    pub rss_kib: u64,
    pub threads: u64,
    pub fds: usize,
}

impl Resources {
    pub fn of(runner: &Runner) -> Resources {
        let pid = runner.pid().expect("the runner is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("/proc/<pid>/status is readable");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|number| number.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("/proc/<pid>/fd is readable")
            .count();
        Resources {
            rss_kib: field("VmRSS:"),
            threads: field("Threads:"),
            fds,
        }
    }
}

/// What a message was, so its reply can be checked.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Creates an event with this unique name.
    Create(String),
    Search,
    SightingList,
    /// A failure reply is expected, containing this text.
    Bad(&'static str),
}

const ONE_MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_faults_answers_everything_once_and_leaks_nothing() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(120);
    let soak = Duration::from_secs(seconds);
    let harness = Arc::new(Harness::start_with(Broker::private("soak")).await);
    let options = RunnerOptions {
        num_workers: 20,
        // A record of 2000 answered messages fills up during warm-up, so that what grows
        // after it is a leak and not the record (100000 by default) filling.
        extra_resilient: "max_message_size_mb=1\nstomp_heartbeat_ms=2000\nmessage_record_size=2000"
            .into(),
        ..RunnerOptions::default()
    };
    // A short MISP timeout so that hangs end quickly; one retry for what is safe to repeat.
    let config = harness.write_config("soak", &options);
    let text = std::fs::read_to_string(&config).expect("read app.config");
    let text = text.replacen("timeout=10\nretries=1", "timeout=2\nretries=1", 1);
    assert!(text.contains("timeout=2\nretries=1"), "{text}");
    std::fs::write(&config, text).expect("write app.config");
    let runner = Runner::spawn(&config, &["run"], harness.dir.path().join("soak.log"));
    let _keep = KeepLogOnFailure(runner.log_path.clone());
    runner.wait_for_log("has started successfully", Duration::from_secs(30));
    let driver = Arc::new(harness.driver().await);

    // A few events for the sighting lists to read.
    let seeded: Vec<i64> = (0..5)
        .map(|index| {
            harness
                .misp
                .seed_event(json!({"info": format!("seeded {index}")}))
                .parse()
                .expect("MISP ids are digits")
        })
        .collect();

    let started = Instant::now();
    let stop_faults = Arc::new(AtomicBool::new(false));
    let faults = tokio::spawn(inject_misp_faults(harness.clone(), stop_faults.clone()));
    let restarts = {
        let harness = harness.clone();
        tokio::task::spawn_blocking(move || {
            for fraction in [0.35, 0.70] {
                let at = soak.mul_f64(fraction);
                if let Some(wait) = at.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                eprintln!("soak: restarting the broker at {:?}", started.elapsed());
                harness.broker.restart();
                eprintln!("soak: broker back at {:?}", started.elapsed());
            }
        })
    };

    let mut sent: Vec<(String, Kind)> = Vec::new();
    let mut warm: Option<Resources> = None;
    let window = 150;
    let mut index: u64 = 0;
    while started.elapsed() < soak {
        // Keep a bounded number of messages outstanding, so the soak measures the runner
        // and not a queue that grows for two minutes.
        while sent.len().saturating_sub(driver.final_replies().len()) > window
            && started.elapsed() < soak
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (id, kind) = publish(&driver, index, &seeded).await;
        sent.push((id, kind));
        index += 1;
        if warm.is_none() && driver.final_replies().len() >= 3000 {
            warm = Some(Resources::of(&runner));
            eprintln!(
                "soak: warm after {:?} and {} messages: {:?}",
                started.elapsed(),
                sent.len(),
                warm
            );
        }
    }
    stop_faults.store(true, Ordering::SeqCst);
    faults.await.expect("the fault task ends");
    restarts.await.expect("the restarts finish");
    let published = sent.len();
    eprintln!(
        "soak: published {published} messages in {:?}",
        started.elapsed()
    );

    // Every message gets its final reply; a hang costs at most two 2 s attempts.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut outcomes: HashMap<String, soar_sim::Reply> = HashMap::new();
    for (id, kind) in &sent {
        let left = deadline.saturating_duration_since(Instant::now());
        let replies = driver
            .wait_final(id, left.max(Duration::from_millis(1)))
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "{kind:?}: {error}; {} of {published} answered; runner log tail:\n{}",
                    driver.final_replies().len(),
                    tail(&runner.log(), 60)
                )
            });
        let last = replies
            .into_iter()
            .find(|reply| reply.complete)
            .expect("a final reply");
        outcomes.insert(id.clone(), last);
    }
    // Late duplicates would arrive now.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The final reply and the ACK are committed in one transaction, so a broker restart
    // cannot make the runner answer a message twice.
    // The driver publishes again when a broker restart swallowed its publish receipt. If the
    // broker had stored the first copy, the queue holds two messages with their own message
    // ids, and both are run: the runner cannot tell them apart, and SOAR does not do this.
    // Those ids may have two final replies, which may differ.
    let republished = driver.republished();
    let finals = driver.final_replies();
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for id in &finals {
        *per_id.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<&str> = per_id
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, _)| *id)
        .collect();
    let unexplained: Vec<&&str> = twice
        .iter()
        .filter(|id| !republished.contains(**id))
        .collect();
    assert!(
        unexplained.is_empty(),
        "messages with more than one final reply although the first was confirmed: {unexplained:?}"
    );
    let unique_finals = per_id.len();
    assert_eq!(
        unique_finals, published,
        "one final reply per message, none for anything else"
    );
    assert!(
        per_id
            .keys()
            .all(|id| sent.iter().any(|(sent_id, _)| sent_id == id)),
        "a final reply for a message never sent"
    );

    // Replies say what each message deserved.
    let mut completed = 0;
    let mut failed = 0;
    let mut failure_texts: HashMap<String, usize> = HashMap::new();
    for (id, kind) in &sent {
        let reply = &outcomes[id];
        match kind {
            Kind::Bad(expected) => {
                assert_eq!(reply.message_type, 1, "{kind:?}: {reply:?}");
                assert!(
                    reply.message.contains(expected),
                    "{kind:?}: expected '{expected}' in '{}'",
                    reply.message
                );
            }
            _ if reply.message_type == 0 => completed += 1,
            _ => {
                failed += 1;
                let text: String = reply.message.chars().take(60).collect();
                *failure_texts.entry(text).or_default() += 1;
            }
        }
    }

    // Nothing answered ran twice: each event name was created at most once, and exactly
    // once where the reply said it was created.
    let mut created: HashMap<String, usize> = HashMap::new();
    for event in harness.misp.events() {
        if let Some(info) = event.pointer("/Event/info").and_then(Value::as_str) {
            *created.entry(info.to_string()).or_default() += 1;
        }
    }
    let published_twice: std::collections::HashSet<&str> = sent
        .iter()
        .filter(|(id, _)| republished.contains(id))
        .filter_map(|(_, kind)| match kind {
            Kind::Create(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let ran_twice: Vec<_> = created
        .iter()
        .filter(|(name, count)| **count > 1 && !published_twice.contains(name.as_str()))
        .collect();
    assert!(ran_twice.is_empty(), "events created twice: {ran_twice:?}");
    for (id, kind) in &sent {
        if let Kind::Create(name) = kind
            && outcomes[id].message_type == 0
        {
            let allowed = if republished.contains(id) { 2 } else { 1 };
            let count = created.get(name).copied().unwrap_or(0);
            assert!(
                (1..=allowed).contains(&count),
                "'{name}' was reported created, so MISP must hold it once (twice if published twice), not {count} times"
            );
        }
    }

    // Let idle pool threads and connections settle before counting.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let warm = warm.expect("the soak ran long enough to warm up");
    let end = Resources::of(&runner);
    let creates = sent
        .iter()
        .filter(|(_, kind)| matches!(kind, Kind::Create(_)))
        .count();
    let bad = sent
        .iter()
        .filter(|(_, kind)| matches!(kind, Kind::Bad(_)))
        .count();
    eprintln!(
        "soak figures: {published} messages in {seconds} s ({creates} creates, {bad} bad); \
         {completed} completed, {failed} failed by faults, {} MISP requests; \
         {} redeliveries settled without running; {} kept replies committed on \
         redelivery; {} messages answered twice, all among the {} the driver published twice; \
         RSS {} KiB after warm-up, {} KiB at the end ({:+.1} %); \
         fds {} -> {}; threads {} -> {}",
        harness.misp.request_count(),
        runner.count_in_log("it is not run twice") + runner.count_in_log("acking it again"),
        runner.count_in_log("committing the kept reply"),
        twice.len(),
        republished.len(),
        warm.rss_kib,
        end.rss_kib,
        (end.rss_kib as f64 / warm.rss_kib as f64 - 1.0) * 100.0,
        warm.fds,
        end.fds,
        warm.threads,
        end.threads,
    );
    let mut texts: Vec<_> = failure_texts.into_iter().collect();
    texts.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    for (text, count) in texts.iter().take(12) {
        eprintln!("soak: {count:5} x {text}");
    }
    assert!(
        published >= 1000,
        "only {published} messages in {seconds} s"
    );
    assert!(
        completed > 0 && failed > 0,
        "faults should fail some calls and not others"
    );
    assert!(
        end.rss_kib as f64 <= warm.rss_kib as f64 * 1.2,
        "RSS grew from {} KiB after warm-up to {} KiB",
        warm.rss_kib,
        end.rss_kib
    );
    // Pooled connections to MISP and SOAR may differ by a few; a leak per fault would not.
    assert!(
        end.fds <= warm.fds + 8,
        "file descriptors went from {} to {}: a connection leaked",
        warm.fds,
        end.fds
    );
    assert!(
        end.threads <= warm.threads + 4,
        "threads went from {} to {}: a task or thread leaked",
        warm.threads,
        end.threads
    );
}

/// Publishes message number `index`: mostly valid calls, with bad ones mixed in.
async fn publish(driver: &soar_sim::Driver, index: u64, seeded: &[i64]) -> (String, Kind) {
    let invoke = |function: &str, inputs: Value| {
        let function = function.to_string();
        async move {
            driver
                .invoke("fn_misp", &function, inputs)
                .await
                .expect("the driver publishes")
        }
    };
    let raw = |body: Vec<u8>| async move {
        driver
            .publish_raw("fn_misp", body, driver.next_invocation())
            .await
            .expect("the driver publishes")
    };
    match index % 20 {
        0..=10 => {
            let name = format!("soak {index}");
            let id = invoke(
                "misp_create_event",
                json!({"misp_event_name": name, "misp_distribution": 0}),
            )
            .await;
            (id, Kind::Create(name))
        }
        11..=13 => {
            let id = invoke(
                "misp_search_attribute",
                json!({"misp_attribute_value": format!("198.51.100.{}", index % 250)}),
            )
            .await;
            (id, Kind::Search)
        }
        14 => {
            let event = seeded[index as usize % seeded.len()];
            let id = invoke("misp_sighting_list", json!({"misp_event_id": event})).await;
            (id, Kind::SightingList)
        }
        15 => (
            raw(b"{\"function\": {\"name\": \"misp_create_ev".to_vec()).await,
            Kind::Bad("the message body is not valid JSON"),
        ),
        16 => (
            invoke("misp_no_such_function", json!({})).await,
            Kind::Bad("no function named 'misp_no_such_function'"),
        ),
        17 => (
            invoke("misp_sighting_list", json!({"misp_event_id": "abc"})).await,
            Kind::Bad("Unexpected input type for MISP Event ID"),
        ),
        18 => (
            raw(br#"{"inputs": {"misp_event_name": "x"}}"#.to_vec()).await,
            Kind::Bad("function.name is missing"),
        ),
        _ if index % 200 == 19 => {
            let big = "x".repeat(ONE_MIB + 100_000);
            (
                invoke(
                    "misp_search_attribute",
                    json!({"misp_attribute_value": big}),
                )
                .await,
                Kind::Bad("more than the 1048576 bytes allowed"),
            )
        }
        _ => (
            invoke(
                "misp_create_event",
                json!({"misp_event_name": format!("bad {index}"), "misp_threat_level": "high"}),
            )
            .await,
            Kind::Bad("input 'misp_threat_level' must be"),
        ),
    }
}

/// Every 200 ms the next MISP request fails in one more way, round robin.
async fn inject_misp_faults(harness: Arc<Harness>, stop: Arc<AtomicBool>) {
    let misp = &harness.misp;
    let html = ForcedResponse {
        status: 200,
        headers: vec![],
        body: ForcedBody::Text {
            content_type: "text/html".into(),
            text: "<html><body><h1>Login</h1></body></html>".into(),
        },
    };
    let malformed = ForcedResponse {
        status: 200,
        headers: vec![],
        body: ForcedBody::Text {
            content_type: "application/json".into(),
            text: "{\"Event\": {\"id\": \"12\", \"info\": ".into(),
        },
    };
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        match round % 9 {
            0 => misp.fail_next(1, 500, None),
            1 => misp.fail_next(1, 502, None),
            2 => misp.fail_next(1, 429, None),
            3 => misp.hang_next(1),
            4 => misp.drop_next(1),
            5 => misp.force_next(1, html.clone()),
            6 => misp.force_next(1, malformed.clone()),
            7 => misp.fail_next(1, 503, None),
            _ => misp.set_latency(Duration::from_millis(if round.is_multiple_of(2) {
                0
            } else {
                40
            })),
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    misp.set_latency(Duration::ZERO);
}

/// Copies the runner's log next to the temporary directory when the test fails, since the
/// harness's directory goes with it.
struct KeepLogOnFailure(std::path::PathBuf);

impl Drop for KeepLogOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let kept = std::env::temp_dir().join(format!("soar-soak-{}.log", std::process::id()));
            if std::fs::copy(&self.0, &kept).is_ok() {
                eprintln!("soak: the runner's log is kept in {}", kept.display());
            }
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A MISP that never answers costs a call at most its attempts times `timeout`: the
/// worker gets a timeout reply and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_misp_gives_a_timeout_reply_within_the_configured_time() {
    let harness = Harness::start().await;
    let options = RunnerOptions {
        num_workers: 1,
        ..RunnerOptions::default()
    };
    let config = harness.write_config("hang", &options);
    let text = std::fs::read_to_string(&config).expect("read app.config");
    std::fs::write(
        &config,
        text.replacen("timeout=10\nretries=1", "timeout=2\nretries=1", 1),
    )
    .expect("write app.config");
    let runner = Runner::spawn(&config, &["run"], harness.dir.path().join("hang.log"));
    runner.wait_for_log("has started successfully", Duration::from_secs(30));
    let driver = harness.driver().await;

    // A create that times out is sent again only after a read of its UUID shows MISP does
    // not hold it (see tests/e2e/idempotent.rs): one 2 s timeout, then the event is created.
    harness.misp.hang_next(1);
    let (last, elapsed) = timed_call(
        &driver,
        "misp_create_event",
        json!({"misp_event_name": "hung"}),
    )
    .await;
    assert_eq!(last.message_type, 0, "{last:?}");
    assert_eq!(harness.misp.events().len(), 1, "created once");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(6),
        "one 2 s attempt, answered after {elapsed:?}"
    );

    // A search is retried once after a back-off of at most 0.5 s: two timeouts.
    harness.misp.hang_next(2);
    let (last, elapsed) = timed_call(
        &driver,
        "misp_search_attribute",
        json!({"misp_attribute_value": "198.51.100.1"}),
    )
    .await;
    assert_eq!(last.message_type, 1, "{last:?}");
    assert!(last.message.contains("within 2 s"), "{}", last.message);
    assert!(
        elapsed >= Duration::from_secs(4) && elapsed < Duration::from_secs(9),
        "two 2 s attempts, answered after {elapsed:?}"
    );

    // The one worker is free again.
    let (_, replies) = crate::support::call_fn_misp(
        &driver,
        "misp_create_event",
        json!({"misp_event_name": "after the hang"}),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(replies.last().map(|reply| reply.message_type), Some(0));
}

/// Calls an fn_misp function and waits for its final reply; returns it with the time taken.
async fn timed_call(
    driver: &soar_sim::Driver,
    function: &str,
    inputs: Value,
) -> (soar_sim::Reply, Duration) {
    let started = Instant::now();
    let (_, replies) =
        crate::support::call_fn_misp(driver, function, inputs, Duration::from_secs(30)).await;
    let last = replies.last().expect("a reply").clone();
    (last, started.elapsed())
}
