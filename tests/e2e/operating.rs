//! The operator's view: `[resilient] metrics_listen`'s `/metrics` (checked by promtool),
//! `/healthz`, `/readyz` and `soar-runner status`, after real calls through ActiveMQ; the
//! one log line per call; a port in use; and a runner without the key listening nowhere.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{self, Broker, Harness, RunnerOptions};

const WAIT: Duration = Duration::from_secs(60);
/// A value that must never become a label or reach the metrics.
const ARTIFACT: &str = "metrics-canary-198.51.100.77";
const INCIDENT: i64 = 987_654_321;
const PLAYBOOK_INSTANCE: i64 = 31_337;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_outcome_pass_promtool_and_status_summarises_them() {
    let harness = Harness::start().await;
    let port = support::free_port();
    let options = RunnerOptions {
        num_workers: 2,
        extra_resilient: format!("max_message_size_mb=1\nmetrics_listen={port}"),
        ..RunnerOptions::default()
    };
    let config = harness.write_config("operated", &options);
    // Debug builds let a test make one function panic; the test binary and the runner it
    // builds share the profile.
    let panics = cfg!(debug_assertions);
    let runner = support::Runner::spawn_with_env(
        &config,
        &["run"],
        harness.dir.path().join("operated.log"),
        &[(
            "SOAR_RUNNER_TEST_PANIC",
            std::ffi::OsStr::new("misp_sighting_list"),
        )],
    );
    runner.wait_for_log("has started successfully", Duration::from_secs(30));
    let address = format!("127.0.0.1:{port}");
    wait_for_status(&address, "/readyz", 200).await;
    let driver = harness.driver().await;

    // Each call waits for its final reply, so that what MISP sees is what each call asked.
    let mut ids = Vec::new();
    let call = async |destination: &str, function: &str, inputs: Value| {
        let id = driver.invoke(destination, function, inputs).await.unwrap();
        driver
            .wait_final(&id, WAIT)
            .await
            .unwrap_or_else(|error| panic!("{function}: {error}; log:\n{}", runner.log()));
        id
    };
    ids.push(
        call(
            "fn_misp",
            "misp_create_event",
            json!({"misp_event_name": "counted"}),
        )
        .await,
    );
    harness.misp.fail_next(1, 503, None);
    ids.push(
        call(
            "fn_misp",
            "misp_search_attribute",
            json!({"misp_attribute_value": ARTIFACT}),
        )
        .await,
    );
    harness.misp.fail_next(1, 403, None);
    ids.push(
        call(
            "fn_misp",
            "misp_create_event",
            json!({"misp_event_name": "refused"}),
        )
        .await,
    );
    ids.push(call("fn_misp", "misp_create_event", json!({})).await);
    ids.push(call("fn_misp", "misp_no_such_function", json!({})).await);
    ids.push(
        call(
            "urlscanio",
            "urlscanio",
            json!({"urlscanio_url": "https://phish.example.com/counted", "incident_id": INCIDENT}),
        )
        .await,
    );
    if panics {
        ids.push(call("fn_misp", "misp_sighting_list", json!({"misp_event_id": 1})).await);
    }
    let big = "x".repeat(1_200_000);
    ids.push(
        call(
            "fn_misp",
            "misp_search_attribute",
            json!({"misp_attribute_value": big}),
        )
        .await,
    );
    let raw_bodies: [Vec<u8>; 3] = [
        b"{this is not json".to_vec(),
        br#"{"inputs": {}}"#.to_vec(),
        json!({
            "function": {"name": "misp_create_event"},
            "inputs": {"misp_event_name": "from a playbook"},
            "workflow_instance": null,
            "playbook_instance": {"playbook_instance_id": PLAYBOOK_INSTANCE},
        })
        .to_string()
        .into_bytes(),
    ];
    for body in raw_bodies {
        let invocation = driver.next_invocation();
        let id = driver
            .publish_raw("fn_misp", body, invocation)
            .await
            .unwrap();
        driver.wait_final(&id, WAIT).await.unwrap();
        ids.push(id);
    }
    // The final reply's receipt is counted just after SOAR may have seen the reply.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (status, metrics) = http_get(&address, "/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    promtool_check(&metrics);

    let calls = |function: &str, outcome: &str| {
        value(
            &metrics,
            &format!("soar_runner_calls_total{{function=\"{function}\",outcome=\"{outcome}\"}}"),
        )
    };
    let expected = [
        ("misp_create_event", "success", 2.0),
        ("misp_create_event", "failure", 1.0),
        ("misp_create_event", "input_error", 1.0),
        ("misp_search_attribute", "success", 1.0),
        ("urlscanio", "success", 1.0),
        (
            "misp_sighting_list",
            "panic",
            if panics { 1.0 } else { 0.0 },
        ),
        ("none", "unknown_function", 1.0),
        ("none", "malformed", 2.0),
        ("none", "oversized", 1.0),
    ];
    for (function, outcome, count) in expected {
        assert_eq!(
            calls(function, outcome),
            count,
            "calls of {function} ending {outcome}; metrics:\n{metrics}"
        );
    }
    let sent = ids.len() as f64;
    assert_eq!(sum(&metrics, "soar_runner_calls_total"), sent, "{metrics}");
    assert_eq!(
        value(&metrics, "soar_runner_worker_wait_seconds_count"),
        sent
    );
    assert_eq!(
        value(&metrics, "soar_runner_replies_sent_total{kind=\"final\"}"),
        sent
    );
    let progress: usize = ids
        .iter()
        .map(|id| driver.replies(id).iter().filter(|r| !r.complete).count())
        .sum();
    assert_eq!(
        value(
            &metrics,
            "soar_runner_replies_sent_total{kind=\"progress\"}"
        ),
        progress as f64,
        "progress replies SOAR received"
    );
    assert_eq!(value(&metrics, "soar_runner_calls_in_flight"), 0.0);
    assert_eq!(value(&metrics, "soar_runner_workers"), 2.0);
    assert_eq!(value(&metrics, "soar_runner_workers_free"), 2.0);
    assert_eq!(value(&metrics, "soar_runner_broker_connected"), 1.0);
    assert_eq!(value(&metrics, "soar_runner_destinations_subscribed"), 2.0);

    // MISP and urlscan.io: every request their stand-ins saw, by status, with the retry.
    assert_eq!(
        sum(&metrics, "soar_runner_misp_requests_total"),
        harness.misp.request_count() as f64,
        "{metrics}"
    );
    assert_eq!(
        sum_where(
            &metrics,
            "soar_runner_misp_requests_total",
            "status=\"503\""
        ),
        1.0
    );
    assert_eq!(
        sum_where(
            &metrics,
            "soar_runner_misp_requests_total",
            "status=\"403\""
        ),
        1.0
    );
    assert_eq!(sum(&metrics, "soar_runner_misp_retries_total"), 1.0);
    assert_eq!(
        sum(&metrics, "soar_runner_urlscan_requests_total"),
        harness.urlscan.requests().len() as f64,
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "soar_runner_urlscan_requests_total{endpoint=\"/result\",method=\"GET\",status=\"404\"}"
        ),
        "{metrics}"
    );

    // Labels carry no input, value, id or secret.
    for forbidden in [
        ARTIFACT,
        "misp_no_such_function",
        "phish.example.com",
        harness.misp.key(),
        support::URLSCAN_KEY,
        soar_sim::rest::DEFAULT_API_KEY_SECRET,
        "invid:",
        &INCIDENT.to_string(),
    ] {
        assert!(
            !metrics.contains(forbidden),
            "the metrics carry '{forbidden}':\n{metrics}"
        );
    }
    for line in metrics.lines().filter(|line| line.contains("endpoint=")) {
        let endpoint = line
            .split("endpoint=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default();
        assert!(
            !endpoint.chars().any(|c| c.is_ascii_digit()),
            "an endpoint label with a number (an id?): {line}"
        );
    }

    // One line per final reply, with the outcome and SOAR's ids; progress stays below info.
    let log = runner.log();
    let finals: Vec<&str> = log
        .lines()
        .filter(|line| {
            line.contains(": completed elapsed_ms=") || line.contains(": failed elapsed_ms=")
        })
        .collect();
    assert_eq!(finals.len(), ids.len(), "one line per call:\n{log}");
    assert!(
        finals
            .iter()
            .any(|line| line.contains("function=\"urlscanio\"")
                && line.contains(&format!("incident={INCIDENT}"))
                && line.contains("workflow_instance=")
                && line.contains("outcome=\"success\"")),
        "the urlscanio line names its function, workflow and incident:\n{log}"
    );
    assert!(
        finals
            .iter()
            .any(|line| line.contains(&format!("playbook_instance={PLAYBOOK_INSTANCE}"))),
        "the playbook's call names its playbook instance:\n{log}"
    );
    assert!(
        finals
            .iter()
            .any(|line| line.contains("outcome=\"input_error\"")),
        "{log}"
    );
    assert!(
        !log.contains("Submitted URL successfully"),
        "progress messages are not logged at info:\n{log}"
    );

    // `soar-runner status`, for a person and for a script.
    let (code, stdout, stderr) = support::run_split(&config, &["status"]);
    assert_eq!(code, 0, "status exits 0 when ready: {stdout}{stderr}");
    for expected in [
        ": ready\n",
        "broker: connected since ",
        "2 of 2 destinations subscribed",
        "  success  ",
        "  malformed  ",
        "  misp_create_event  ",
        " ms",
        "MISP: last hour ",
    ] {
        assert!(
            stdout.contains(expected),
            "expected '{expected}' in:\n{stdout}"
        );
    }
    let (code, stdout, _) = support::run_split(&config, &["status", "--json"]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&stdout).expect("status --json prints JSON");
    assert_eq!(report["ready"], json!(true), "{report}");
    assert_eq!(
        report["last_hour"]["calls"]["success"],
        json!(4),
        "{report}"
    );
    assert_eq!(
        report["last_hour"]["calls"]["malformed"],
        json!(2),
        "{report}"
    );
    let functions: HashSet<&str> = report["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|function| function["function"].as_str())
        .collect();
    assert!(functions.contains("misp_search_attribute"), "{report}");
    assert!(
        report["functions"][0]["p95_ms"].as_f64().is_some(),
        "{report}"
    );
    assert_eq!(
        report["last_hour"]["misp"]["requests"],
        json!(harness.misp.request_count()),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_the_broker_is_stopped_and_200_once_the_runner_is_back() {
    let broker = Broker::private("readyz");
    let base = broker.base.clone().expect("a private broker has a base");
    let harness = Harness::start_with(broker).await;
    let port = support::free_port();
    let options = RunnerOptions {
        extra_resilient: format!("metrics_listen=127.0.0.1:{port}"),
        ..RunnerOptions::default()
    };
    let runner = harness.start_runner("runner", &options);
    let address = format!("127.0.0.1:{port}");
    wait_for_status(&address, "/readyz", 200).await;

    activemq(&base, "stop");
    let body = wait_for_status(&address, "/readyz", 503).await;
    assert!(
        body.starts_with("not subscribed") && body.lines().count() == 1,
        "a one-line reason: {body:?}"
    );
    assert_eq!(http_get(&address, "/healthz").await.0, 200);
    let (_, metrics) = http_get(&address, "/metrics").await;
    assert_eq!(value(&metrics, "soar_runner_broker_connected"), 0.0);

    activemq(&base, "start");
    wait_for_status(&address, "/readyz", 200).await;
    let (_, metrics) = http_get(&address, "/metrics").await;
    assert_eq!(value(&metrics, "soar_runner_broker_connected"), 1.0);
    assert_eq!(
        value(&metrics, "soar_runner_broker_reconnects_total"),
        1.0,
        "{metrics}"
    );
    // Served again: a call goes through.
    let (_, replies) = harness.search_once("after the restart").await;
    assert!(
        replies.last().is_some_and(|reply| reply.complete),
        "{}",
        runner.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_port_in_use_stops_the_start_with_an_error_naming_key_and_address() {
    let harness = Harness::start().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("an address").port();
    let options = RunnerOptions {
        extra_resilient: format!("metrics_listen={port}"),
        ..RunnerOptions::default()
    };
    let config = harness.write_config("taken", &options);
    let mut runner =
        support::Runner::spawn(&config, &["run"], harness.dir.path().join("taken.log"));
    let status = runner.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    let log = runner.log();
    assert!(
        log.contains(&format!(
            "error: [resilient] metrics_listen: cannot listen on 127.0.0.1:{port}: "
        )),
        "{log}"
    );
    assert!(!log.contains("has started successfully"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_listen_the_runner_listens_nowhere_and_status_says_why() {
    let harness = Harness::start().await;
    let runner = harness.start_runner("plain", &RunnerOptions::default());
    let (_, replies) = harness.search_once("unobserved").await;
    assert!(replies.last().is_some_and(|reply| reply.complete));
    let pid = runner.pid().expect("the runner runs");
    let listening = listening_inodes();
    let sockets = socket_inodes(pid);
    assert!(
        !sockets.is_empty(),
        "the runner has its broker and MISP sockets"
    );
    assert!(
        sockets.is_disjoint(&listening),
        "a runner without metrics_listen opened a listening socket"
    );
    let config = harness.write_config("plain", &RunnerOptions::default());
    let (code, _, stderr) = support::run_split(&config, &["status"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("[resilient] metrics_listen is not set"),
        "{stderr}"
    );
}

/// Checks the text with `promtool check metrics`. Without promtool the check fails in CI
/// (`CI` set) and is skipped, saying so, elsewhere.
fn promtool_check(metrics: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if std::env::var_os("CI").is_none() => {
            println!(
                "skipped: promtool check metrics ({error}); install Debian's prometheus package"
            );
            return;
        }
        Err(error) => panic!(
            "promtool is needed in CI (Debian's prometheus package; scripts/test installs it): {error}"
        ),
    };
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(metrics.as_bytes())
        .expect("promtool reads the metrics");
    let output = child.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The value of the sample whose name and labels are exactly `series`.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
}

/// The sum of every sample of metric `name`, whatever its labels.
fn sum(metrics: &str, name: &str) -> f64 {
    sum_where(metrics, name, "")
}

/// The sum of the samples of `name` whose line contains `label`.
fn sum_where(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A plain HTTP/1.1 GET on loopback; returns the status and the body.
async fn http_get(address: &str, path: &str) -> (u16, String) {
    let address = address.to_string();
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).expect("the listener accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .expect("the request is written");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("the response is read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        (status, body)
    })
    .await
    .expect("the request task")
}

/// Polls `path` until it answers `status` (two minutes at most); returns the body.
async fn wait_for_status(address: &str, path: &str, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (got, body) = http_get(address, path).await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {got} ({body:?}), not {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn activemq(base: &Path, command: &str) {
    let status = Command::new("bash")
        .arg(support::repo_root().join(".ci/activemq.sh"))
        .arg(command)
        .arg(base)
        .status()
        .expect("bash runs");
    assert!(status.success(), "activemq.sh {command} failed");
}

/// The inodes of every listening TCP socket on the machine.
fn listening_inodes() -> HashSet<String> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // st 0A is LISTEN; field 9 is the inode.
            if fields.get(3) == Some(&"0A")
                && let Some(inode) = fields.get(9)
            {
                inodes.insert(inode.to_string());
            }
        }
    }
    inodes
}

/// The inodes of the sockets process `pid` holds.
fn socket_inodes(pid: u32) -> HashSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| std::fs::read_link(entry.path()).ok())
                .filter_map(|target| {
                    let target = target.to_string_lossy().into_owned();
                    Some(
                        target
                            .strip_prefix("socket:[")?
                            .strip_suffix(']')?
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// When the fresh connection that replaces one after `stomp_max_calls_per_connection`
/// messages cannot be made, the runner takes no messages, and `/readyz` says so until a
/// connection is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_a_replacement_connection_cannot_be_made() {
    let harness = Harness::start().await;
    let gate = Gate::start(harness.broker.port).await;
    let port = support::free_port();
    let options = RunnerOptions {
        stomp_tls: false,
        extra_resilient: format!(
            "metrics_listen=127.0.0.1:{port}\nstomp_max_calls_per_connection=3"
        ),
        ..RunnerOptions::default()
    };
    let config = harness.write_config("renewing", &options);
    let text = std::fs::read_to_string(&config).expect("read app.config");
    let through_gate = text.replacen(
        &format!("stomp_port={}\n", harness.broker.port),
        &format!("stomp_port={}\n", gate.port),
        1,
    );
    assert_ne!(text, through_gate, "the config names the broker's port");
    std::fs::write(&config, through_gate).expect("write app.config");
    let runner = support::Runner::spawn(&config, &["run"], harness.dir.path().join("renewing.log"));
    runner.wait_for_log("has started successfully", WAIT);
    let address = format!("127.0.0.1:{port}");
    wait_for_status(&address, "/readyz", 200).await;

    gate.refuse(true);
    // The third message taken makes the runner replace its connection, which the gate
    // refuses; the three replies go out on the connection being replaced.
    for n in 0..3 {
        let (_, replies) = harness.search_once(&format!("before renewal {n}")).await;
        assert!(replies.last().is_some_and(|reply| reply.complete));
    }
    let body = wait_for_status(&address, "/readyz", 503).await;
    assert!(body.starts_with("not subscribed"), "{body:?}");
    let (_, metrics) = http_get(&address, "/metrics").await;
    assert_eq!(value(&metrics, "soar_runner_broker_connected"), 0.0);

    gate.refuse(false);
    wait_for_status(&address, "/readyz", 200).await;
    let (_, replies) = harness.search_once("after renewal").await;
    assert!(
        replies.last().is_some_and(|reply| reply.complete),
        "served again once a connection is back; log:\n{}",
        runner.log()
    );
    let (_, metrics) = http_get(&address, "/metrics").await;
    assert!(value(&metrics, "soar_runner_broker_renewals_total") >= 1.0);
    assert!(value(&metrics, "soar_runner_broker_connect_failures_total") >= 1.0);
}

/// A plain-TCP proxy to the broker that relays every connection, or, while refusing,
/// closes new ones at once (connections already relayed carry on).
struct Gate {
    port: u16,
    refusing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Gate {
    async fn start(broker_port: u16) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the gate listens");
        let port = listener.local_addr().expect("a local address").port();
        let refusing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refuse = refusing.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if refuse.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut broker) =
                        tokio::net::TcpStream::connect(("127.0.0.1", broker_port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                    }
                });
            }
        });
        Gate { port, refusing }
    }

    fn refuse(&self, refusing: bool) {
        self.refusing
            .store(refusing, std::sync::atomic::Ordering::SeqCst);
    }
}
