//! More than one runner, and runners that die: two runners as competing consumers of the
//! same queues, one killed with SIGKILL mid-burst, and a burst across a broker restart.
//! Every call must get exactly one final reply, and MISP must hold each created event once.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Broker, Harness, Runner, RunnerOptions};

/// Calls in each burst.
const CALLS: usize = 300;

/// The runner that dies is killed when it is about to commit the transaction that carries its
/// 40th final reply (replies ready together share one): by then it has answered calls, holds
/// others running at MISP, and the burst is far from over.
const KILL_AT_REPLY: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_burst_leaves_every_call_exactly_one_final_reply() {
    let harness = Harness::start().await;
    harness.misp.set_latency(Duration::from_millis(50));
    let options = RunnerOptions {
        num_workers: 10,
        ..RunnerOptions::default()
    };
    // The doomed runner talks plain STOMP through a proxy that sees its frames, so that it
    // can be killed at the one moment that matters most: its final reply and ACK written,
    // their COMMIT not.
    let doomed_pid = Arc::new(AtomicU32::new(0));
    let proxy = CommitKiller::start(harness.broker.port, KILL_AT_REPLY, doomed_pid.clone()).await;
    let config = harness.write_config(
        "doomed",
        &RunnerOptions {
            stomp_tls: false,
            ..options.clone()
        },
    );
    let text = std::fs::read_to_string(&config).expect("read app.config");
    let through_proxy = text.replacen(
        &format!("stomp_port={}\n", harness.broker.port),
        &format!("stomp_port={}\n", proxy.port),
        1,
    );
    assert_ne!(
        text, through_proxy,
        "the doomed runner's config names the broker's port"
    );
    std::fs::write(&config, through_proxy).expect("write app.config");
    let mut doomed = Runner::spawn(&config, &["run"], harness.dir.path().join("doomed.log"));
    doomed_pid.store(
        doomed.pid().expect("the runner is running"),
        Ordering::SeqCst,
    );
    doomed.wait_for_log("has started successfully", Duration::from_secs(30));
    let survivor = harness.start_runner("survivor", &options);
    let driver = harness.driver().await;

    let started = Instant::now();
    let ids = crate::invoke_many(
        &driver,
        "fn_misp",
        "misp_create_event",
        CALLS,
        |index| json!({"misp_event_name": event_name(index), "misp_distribution": 0}),
    )
    .await;
    wait_for_every_final(
        &driver,
        &ids,
        Duration::from_secs(45),
        "the survivor's log",
        &survivor,
    )
    .await;
    let answered_in = started.elapsed();
    // Late duplicates would arrive now.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let status = doomed.wait_exit(Duration::from_secs(5));
    assert_eq!(
        status.signal(),
        Some(9),
        "the doomed runner was killed by the proxy at the commit of its final reply number {KILL_AT_REPLY}: {status:?}"
    );
    let held = proxy.held_correlation_ids();
    assert!(
        !held.is_empty(),
        "the proxy held back a COMMIT carrying a final reply"
    );
    assert_exactly_one_final_reply_each(&driver, &ids);
    let survivor_log = survivor.log();
    for held in &held {
        assert!(
            crate::final_reply(&driver.replies(held)).message_type == 0,
            "the call whose reply was written but never committed is answered by the survivor"
        );
        assert!(
            survivor_log.contains(held.as_str()),
            "the survivor ran {held}, which the dead runner had answered but not committed"
        );
    }

    let figures = MispFigures::of(&harness, CALLS);
    assert_each_event_created_once(&harness);
    for held in &held {
        assert!(
            figures.ran_twice.contains(&event_name_of(&ids, held)),
            "the held call ran on both runners, so MISP saw its create twice: {figures:?}"
        );
    }
    let answered_by_dead = doomed.count_in_log(COMPLETED);
    eprintln!(
        "scale kill: {CALLS} calls answered in {answered_in:?} by two runners, one killed at the \
         commit carrying its final reply {KILL_AT_REPLY}, which carried {} final replies; {} \
         MISP requests ({:.2} per call); {} calls ran twice at MISP (the dead runner had started them; MISP holds each \
         event once); the dead runner logged {answered_by_dead} completions, the survivor {}",
        held.len(),
        figures.requests,
        figures.requests as f64 / CALLS as f64,
        figures.ran_twice.len(),
        survivor.count_in_log(COMPLETED),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_across_a_broker_restart_gets_exactly_one_final_reply_per_call() {
    let harness = Arc::new(Harness::start_with(Broker::private("scale-restart")).await);
    harness.misp.set_latency(Duration::from_millis(50));
    let driver = harness.driver().await;
    // Every call is queued before the runner starts, so that no publish spans the restart
    // (a publish whose receipt the restart swallows is sent again, a second message).
    let ids = crate::invoke_many(
        &driver,
        "fn_misp",
        "misp_create_event",
        CALLS,
        |index| json!({"misp_event_name": event_name(index), "misp_distribution": 0}),
    )
    .await;
    // Five workers at 50 ms: about 100 calls a second, so the burst lasts about 3 s.
    let runner = harness.start_runner(
        "runner",
        &RunnerOptions {
            num_workers: 5,
            extra_resilient: "stomp_heartbeat_ms=2000".into(),
            ..RunnerOptions::default()
        },
    );
    let started = Instant::now();
    // Restart while some calls are answered, some running and most still queued.
    crate::wait_until(Duration::from_secs(20), || {
        driver.final_replies().len() >= CALLS / 4
    })
    .await;
    let before_restart = driver.final_replies().len();
    assert!(
        before_restart < CALLS,
        "the burst was over before the restart ({before_restart} answered)"
    );
    let restarting = harness.clone();
    tokio::task::spawn_blocking(move || restarting.broker.restart())
        .await
        .expect("the restart finishes");
    let restarted_at = started.elapsed();
    wait_for_every_final(
        &driver,
        &ids,
        Duration::from_secs(40),
        "runner log",
        &runner,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert!(
        driver.republished().is_empty(),
        "every call was published before the restart: {:?}",
        driver.republished()
    );
    assert_exactly_one_final_reply_each(&driver, &ids);
    assert_each_event_created_once(&harness);
    let figures = MispFigures::of(&harness, CALLS);
    eprintln!(
        "scale restart: {CALLS} calls, broker restarted after {before_restart} were answered \
         (back at {restarted_at:?}); all answered in {:?}; {} replies kept for their \
         redelivery and committed then; {} MISP requests ({:.2} per call), {} calls ran twice \
         at MISP",
        started.elapsed(),
        runner.count_in_log("committing the kept reply"),
        figures.requests,
        figures.requests as f64 / CALLS as f64,
        figures.ran_twice.len(),
    );
}

/// Waits until every call in `ids` has its final reply, all within `within`; otherwise fails
/// the test with the count answered and the tail of `runner`'s log.
async fn wait_for_every_final(
    driver: &soar_sim::Driver,
    ids: &[String],
    within: Duration,
    whose_log: &str,
    runner: &Runner,
) {
    let deadline = Instant::now() + within;
    for id in ids {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(error) = driver
            .wait_final(id, left.max(Duration::from_millis(1)))
            .await
        {
            panic!(
                "{error}; {} of {} answered; {whose_log}:\n{}",
                driver.final_replies().len(),
                ids.len(),
                tail(&runner.log(), 40)
            );
        }
    }
}

/// How the runner's log line for a completed call ends (the span's fields come first).
const COMPLETED: &str = "completed elapsed_ms";

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn event_name(index: usize) -> String {
    format!("scale {index}")
}

/// The event name of the call with correlation id `id` (calls are published in order).
fn event_name_of(ids: &[String], id: &str) -> String {
    let index = ids
        .iter()
        .position(|candidate| candidate == id)
        .unwrap_or_else(|| panic!("{id} is not one of the calls published"));
    event_name(index)
}

fn assert_exactly_one_final_reply_each(driver: &soar_sim::Driver, ids: &[String]) {
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for id in driver.final_replies() {
        *per_id.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        twice.is_empty(),
        "calls with more than one final reply: {twice:?}"
    );
    let published: HashSet<&String> = ids.iter().collect();
    assert!(
        per_id.keys().all(|id| published.contains(id)),
        "a final reply for a call never published"
    );
    assert_eq!(per_id.len(), ids.len(), "every call has its final reply");
    for id in ids {
        let replies = driver.replies(id);
        assert_eq!(crate::final_reply(&replies).message_type, 0, "{replies:?}");
    }
}

fn assert_each_event_created_once(harness: &Harness) {
    let mut created: HashMap<String, usize> = HashMap::new();
    for event in harness.misp.events() {
        if let Some(info) = event.pointer("/Event/info").and_then(Value::as_str) {
            *created.entry(info.to_string()).or_default() += 1;
        }
    }
    let twice: Vec<_> = created.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "events created twice: {twice:?}");
    assert_eq!(created.len(), CALLS, "one event per call");
}

/// What MISP saw of a burst of creates.
#[derive(Debug)]
struct MispFigures {
    requests: usize,
    /// Event names whose create reached MISP more than once.
    ran_twice: HashSet<String>,
}

impl MispFigures {
    fn of(harness: &Harness, calls: usize) -> MispFigures {
        let requests = harness.misp.requests();
        let mut creates: HashMap<String, usize> = HashMap::new();
        for request in &requests {
            if request.method == "POST"
                && request.path == "/events/add"
                && let Some(info) = request.body.pointer("/Event/info").and_then(Value::as_str)
            {
                *creates.entry(info.to_string()).or_default() += 1;
            }
        }
        assert_eq!(creates.len(), calls, "every call reached MISP");
        MispFigures {
            requests: requests.len(),
            ran_twice: creates
                .into_iter()
                .filter(|(_, count)| *count > 1)
                .map(|(name, _)| name)
                .collect(),
        }
    }
}

/// A plain-TCP proxy between one runner and the broker that reads the runner's frames and,
/// at the COMMIT of the transaction carrying the runner's `kill_at`-th final reply, kills the runner with SIGKILL and drops the
/// connection without passing that COMMIT on: the broker got BEGIN, the final reply and
/// the ACK, and rolls them back.
struct CommitKiller {
    port: u16,
    held: Arc<Mutex<Vec<String>>>,
}

impl CommitKiller {
    async fn start(broker_port: u16, kill_at: usize, pid: Arc<AtomicU32>) -> CommitKiller {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy listens");
        let port = listener.local_addr().expect("a local address").port();
        let held = Arc::new(Mutex::new(Vec::new()));
        let replies = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let state = (held.clone(), replies);
        tokio::spawn(async move {
            while let Ok((runner, _)) = listener.accept().await {
                let broker = TcpStream::connect(("127.0.0.1", broker_port))
                    .await
                    .expect("the proxy reaches the broker");
                tokio::spawn(relay(runner, broker, kill_at, pid.clone(), state.clone()));
            }
        });
        CommitKiller { port, held }
    }

    /// The correlation ids of the final replies in the transaction whose COMMIT was held
    /// back (the runner groups replies that are ready together into one transaction).
    fn held_correlation_ids(&self) -> Vec<String> {
        self.held.lock().expect("not poisoned").clone()
    }
}

type KillerState = (Arc<Mutex<Vec<String>>>, Arc<std::sync::atomic::AtomicUsize>);

async fn relay(
    runner: TcpStream,
    broker: TcpStream,
    kill_at: usize,
    pid: Arc<AtomicU32>,
    (held, replies): KillerState,
) {
    let (mut from_runner, mut to_runner) = runner.into_split();
    let (mut from_broker, mut to_broker) = broker.into_split();
    let downstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_broker, &mut to_runner).await;
    });
    // The correlation ids of each transaction's SENDs, by transaction id.
    let mut replies_in: HashMap<String, Vec<String>> = HashMap::new();
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    'relay: loop {
        let read = match from_runner.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        buffer.extend_from_slice(&chunk[..read]);
        // The runner's frames are JSON bodies and headers, so a NUL ends each frame.
        while let Some(end) = buffer.iter().position(|byte| *byte == 0) {
            let frame: Vec<u8> = buffer.drain(..=end).collect();
            let text = String::from_utf8_lossy(&frame);
            let mut lines = text.trim_start_matches(['\r', '\n']).lines();
            let command = lines.next().unwrap_or_default().to_string();
            let headers: HashMap<String, String> = lines
                .take_while(|line| !line.is_empty())
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.to_string(), unescape(value)))
                .collect();
            if command == "SEND"
                && let (Some(transaction), Some(correlation)) =
                    (headers.get("transaction"), headers.get("correlation-id"))
            {
                replies_in
                    .entry(transaction.clone())
                    .or_default()
                    .push(correlation.clone());
                replies.fetch_add(1, Ordering::SeqCst);
            }
            if command == "COMMIT" && replies.load(Ordering::SeqCst) >= kill_at {
                let transaction = headers.get("transaction").cloned().unwrap_or_default();
                *held.lock().expect("not poisoned") =
                    replies_in.remove(&transaction).unwrap_or_default();
                let _ = std::process::Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.load(Ordering::SeqCst).to_string())
                    .status();
                break 'relay;
            }
            if to_broker.write_all(&frame).await.is_err() {
                break 'relay;
            }
        }
    }
    // Both directions close: the broker sees the runner's connection drop.
    downstream.abort();
    let _ = to_broker.shutdown().await;
}

/// STOMP 1.2 header unescaping.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('c') => out.push(':'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A runner that replaces its broker connection every 40 messages
/// (`stomp_max_calls_per_connection`, which frees what ActiveMQ keeps of every message a
/// connection ACKed in a transaction) answers a burst exactly as one that never does: each
/// call once, run once, with every reply committed on the connection that delivered its
/// message, and the messages a closing connection was handed meanwhile served by the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_the_connection_every_40_messages_runs_and_answers_each_call_once() {
    const EVERY: usize = 40;
    let harness = Harness::start().await;
    harness.misp.set_latency(Duration::from_millis(20));
    let driver = harness.driver().await;
    let ids = crate::invoke_many(
        &driver,
        "fn_misp",
        "misp_create_event",
        CALLS,
        |index| json!({"misp_event_name": event_name(index), "misp_distribution": 0}),
    )
    .await;
    let runner = harness.start_runner(
        "renewing",
        &RunnerOptions {
            num_workers: 10,
            extra_resilient: format!("stomp_max_calls_per_connection={EVERY}"),
            ..RunnerOptions::default()
        },
    );
    let started = Instant::now();
    wait_for_every_final(
        &driver,
        &ids,
        Duration::from_secs(60),
        "runner log",
        &runner,
    )
    .await;
    let answered_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_exactly_one_final_reply_each(&driver, &ids);
    assert_each_event_created_once(&harness);
    let figures = MispFigures::of(&harness, CALLS);
    assert!(
        figures.ran_twice.is_empty(),
        "replacing a connection never runs a call twice: {figures:?}"
    );
    let log = runner.log();
    let closed = log
        .matches(&format!(
            "closed a broker connection after {EVERY} messages"
        ))
        .count();
    assert!(
        closed >= CALLS / EVERY - 1,
        "the runner replaced its connection about every {EVERY} messages, but closed only \
         {closed} of them; log:\n{}",
        tail(&log, 40)
    );
    assert_eq!(
        runner.count_in_log("the reply was not committed"),
        0,
        "every reply was committed on the connection that delivered its message"
    );
    let held: usize = log
        .lines()
        .filter(|line| line.contains("closed a broker connection after"))
        .filter_map(|line| line.split("held=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    eprintln!(
        "scale renew: {CALLS} calls answered in {answered_in:?} over {} connections, each \
         closed after {EVERY} messages; {held} messages handed to closing connections went \
         back to the queue and were served once; {} MISP requests",
        closed + 1,
        figures.requests,
    );
}
