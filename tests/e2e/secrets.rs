//! Secret hygiene end to end: every function and every failure path, with the runner logging
//! at `trace`, and then all it wrote (logs, replies, `selftest` and `invoke` output) is
//! searched for each secret, including MISP answers that echo the key back.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use misp_sim::{ForcedBody, ForcedResponse, MispSim, SimOptions};
use serde_json::{Value, json};

use crate::support::{Harness, Runner, RunnerOptions, URLSCAN_KEY, runner_binary};

const WAIT: Duration = Duration::from_secs(60);
const WRONG_MISP_KEY: &str = "WrongMispKey0123456789abcdefghijklmnopqr";
const WRONG_SOAR_SECRET: &str = "wrong-soar-api-key-secret-4d1c";
const WRONG_URLSCAN_KEY: &str = "urlscan-wrong-key-9e8d7c6b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_replies_or_command_output_at_trace_level() {
    let harness = Harness::start().await;
    let misp_key = harness.misp.key().to_string();
    let options = RunnerOptions {
        num_workers: 4,
        ..RunnerOptions::default()
    };
    let config = trace_config(&harness, "trace", &options, |text| text);
    let runner = Runner::spawn(&config, &["run"], harness.dir.path().join("trace.log"));
    runner.wait_for_log("has started successfully", WAIT);
    let driver = harness.driver().await;
    let mut ids = Vec::new();
    let mut call = async |destination: &str, function: &str, inputs: Value| {
        let id = driver
            .invoke(destination, function, inputs)
            .await
            .expect("the driver publishes");
        driver
            .wait_final(&id, WAIT)
            .await
            .unwrap_or_else(|error| panic!("{function}: {error}"));
        ids.push(id);
    };

    // Every function, succeeding.
    call(
        "fn_misp",
        "misp_create_event",
        json!({"misp_event_name": "secrets", "misp_distribution": 0}),
    )
    .await;
    let event_id = harness.misp.events().len() as i64;
    call(
        "fn_misp",
        "misp_create_attribute",
        json!({"misp_event_id": event_id, "misp_attribute_value": "203.0.113.9",
               "misp_attribute_type": "ip-dst"}),
    )
    .await;
    call(
        "fn_misp",
        "misp_create_sighting",
        json!({"misp_sighting": "203.0.113.9"}),
    )
    .await;
    call(
        "fn_misp",
        "misp_create_tag",
        json!({"misp_tag_type": {"id": 3963, "name": "Event"}, "misp_tag_name": "tlp:red",
               "misp_event_id": event_id}),
    )
    .await;
    call(
        "fn_misp",
        "misp_search_attribute",
        json!({"misp_attribute_value": "203.0.113.9"}),
    )
    .await;
    call(
        "fn_misp",
        "misp_sighting_list",
        json!({"misp_event_id": event_id}),
    )
    .await;
    let scan = json!({"urlscanio_url": "https://phish.example.com/a", "urlscanio_public": false,
                      "incident_id": 2095});
    call("urlscanio", "urlscanio", scan.clone()).await;

    // Every way MISP can fail, on a create (never retried) and on a search (retried).
    let echo = |status: u16| ForcedResponse {
        status,
        headers: vec![("x-echo".into(), misp_key.clone())],
        body: ForcedBody::Json(json!({
            "saved": false, "name": format!("Could not add: key {misp_key} is odd"),
            "message": format!("Could not add: key {misp_key} is odd"),
            "url": "/events/add", "errors": {"Authorization": [misp_key.clone()]},
        })),
    };
    let text = |status: u16, content_type: &str, text: String| ForcedResponse {
        status,
        headers: vec![],
        body: ForcedBody::Text {
            content_type: content_type.into(),
            text,
        },
    };
    // Long enough that a 200-character excerpt would cut through the key.
    let padded = format!("{}{misp_key} trailing", "p".repeat(180));
    let faults: Vec<Box<dyn Fn(usize)>> = vec![
        Box::new(|count| harness.misp.fail_next(count, 500, None)),
        Box::new(|count| harness.misp.fail_next(count, 502, None)), // transient
        Box::new(|count| harness.misp.fail_next(count, 429, None)), // transient
        Box::new(|count| harness.misp.fail_next(count, 403, None)),
        Box::new(|count| harness.misp.fail_next(count, 404, None)),
        Box::new(|count| harness.misp.hang_next(count)), // transient
        Box::new(|count| harness.misp.drop_next(count)), // transient
        Box::new(|count| harness.misp.force_next(count, echo(400))),
        Box::new(|count| harness.misp.force_next(count, echo(200))),
        Box::new(|count| harness.misp.force_next(count, echo(403))),
        Box::new(|count| {
            harness
                .misp
                .force_next(count, text(500, "text/html", padded.clone()))
        }),
        Box::new(|count| {
            harness
                .misp
                .force_next(count, text(200, "text/html", padded.clone()))
        }),
        Box::new(|count| {
            harness.misp.force_next(
                count,
                text(200, "application/json", format!("{{\"key\": \"{misp_key}")),
            )
        }),
        Box::new(|count| {
            harness.misp.force_next(
                count,
                text(302, "text/html", format!("moved to /login?key={misp_key}")),
            )
        }),
    ];
    // A create is sent once; a search is sent again after the transient kinds,
    // so it takes two of those. Nothing is left over for the calls that follow.
    for (index, fault) in faults.iter().enumerate() {
        let transient = [1, 2, 5, 6].contains(&index);
        fault(1);
        call(
            "fn_misp",
            "misp_create_event",
            json!({"misp_event_name": "fault"}),
        )
        .await;
        fault(if transient { 2 } else { 1 });
        call(
            "fn_misp",
            "misp_search_attribute",
            json!({"misp_attribute_value": "203.0.113.9"}),
        )
        .await;
    }
    // The functions that turn MISP's refusal into a failure result carry its body.
    for status in [400, 200] {
        harness.misp.force_next(1, echo(status));
        call(
            "fn_misp",
            "misp_create_attribute",
            json!({"misp_event_id": event_id, "misp_attribute_value": "203.0.113.10",
                   "misp_attribute_type": "ip-dst"}),
        )
        .await;
        harness.misp.force_next(1, echo(status));
        call(
            "fn_misp",
            "misp_create_sighting",
            json!({"misp_sighting": "203.0.113.9"}),
        )
        .await;
    }
    // And urlscan.io.
    harness.urlscan.fail_next(1, 500);
    call("urlscanio", "urlscanio", scan.clone()).await;
    harness.urlscan.rate_limit_next(1, Duration::from_secs(1));
    call("urlscanio", "urlscanio", scan.clone()).await;
    harness
        .urlscan
        .refuse_submissions("DNS Error", "could not resolve");
    call("urlscanio", "urlscanio", scan.clone()).await;
    harness.urlscan.accept_submissions();
    harness.urlscan.set_required_key(Some("another-key"));
    call("urlscanio", "urlscanio", scan.clone()).await;
    harness.urlscan.set_required_key(Some(URLSCAN_KEY));

    // Bad messages and inputs.
    call("fn_misp", "misp_no_such_function", json!({})).await;
    call(
        "fn_misp",
        "misp_sighting_list",
        json!({"misp_event_id": "abc"}),
    )
    .await;
    call(
        "fn_misp",
        "misp_create_event",
        json!({"misp_threat_level": 9}),
    )
    .await;
    call("urlscanio", "urlscanio", json!({"urlscanio_url": 5})).await;
    for body in [&b"{not json"[..], br#"{"inputs": {}}"#, b"[1]"] {
        let id = driver
            .publish_raw("fn_misp", body.to_vec(), driver.next_invocation())
            .await
            .expect("the driver publishes");
        driver.wait_final(&id, WAIT).await.expect("a final reply");
        ids.push(id);
    }
    let mut replies = String::new();
    for id in &ids {
        for reply in driver.replies(id) {
            replies.push_str(&reply.body.to_string());
            replies.push('\n');
        }
    }
    drop(runner);

    // A runner with the legacy password, wrong MISP and urlscan keys, then the commands.
    let legacy = trace_config(&harness, "legacy", &options, |text| {
        text.replace(
            &format!("api_key_id={}\n", soar_sim::rest::DEFAULT_API_KEY_ID),
            &format!("email={}\n", soar_sim::rest::DEFAULT_EMAIL),
        )
        .replace(
            &format!(
                "api_key_secret={}\n",
                soar_sim::rest::DEFAULT_API_KEY_SECRET
            ),
            &format!("password={}\n", soar_sim::rest::DEFAULT_PASSWORD),
        )
        .replace(&misp_key, WRONG_MISP_KEY)
        .replace(URLSCAN_KEY, WRONG_URLSCAN_KEY)
    });
    let legacy_runner = Runner::spawn(&legacy, &["run"], harness.dir.path().join("legacy.log"));
    legacy_runner.wait_for_log("has started successfully", WAIT);
    for (destination, function, inputs) in [
        (
            "fn_misp",
            "misp_create_event",
            json!({"misp_event_name": "k"}),
        ),
        (
            "fn_misp",
            "misp_search_attribute",
            json!({"misp_attribute_value": "x"}),
        ),
        ("urlscanio", "urlscanio", scan.clone()),
    ] {
        let id = driver.invoke(destination, function, inputs).await.unwrap();
        for reply in driver.wait_final(&id, WAIT).await.expect("a final reply") {
            replies.push_str(&reply.body.to_string());
            replies.push('\n');
        }
    }
    drop(legacy_runner);
    let wrong_secret = trace_config(&harness, "wrong-secret", &options, |text| {
        text.replace(soar_sim::rest::DEFAULT_API_KEY_SECRET, WRONG_SOAR_SECRET)
    });
    let mut commands = String::new();
    for (config, args) in [
        (&config, &["selftest"][..]),
        (&legacy, &["selftest"][..]),
        (&wrong_secret, &["selftest"][..]),
        (&wrong_secret, &["run"][..]),
        (
            &legacy,
            &["invoke", "misp_search_attribute", "misp_attribute_value=x"][..],
        ),
        (
            &config,
            &["invoke", "misp_search_attribute", "misp_attribute_value=x"][..],
        ),
        (
            &legacy,
            &[
                "invoke",
                "urlscanio",
                "urlscanio_url=https://a.example.com/",
            ][..],
        ),
    ] {
        commands.push_str(&run_at_trace(config, args));
    }

    let logs = ["trace.log", "legacy.log"]
        .iter()
        .map(|name| std::fs::read_to_string(harness.dir.path().join(name)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        logs.contains("TRACE") && logs.lines().count() > 1000,
        "the runner should have logged at trace level ({} lines)",
        logs.lines().count()
    );
    let api_key_basic = base64(&format!(
        "{}:{}",
        soar_sim::rest::DEFAULT_API_KEY_ID,
        soar_sim::rest::DEFAULT_API_KEY_SECRET
    ));
    let password_basic = base64(&format!(
        "{}:{}",
        soar_sim::rest::DEFAULT_EMAIL,
        soar_sim::rest::DEFAULT_PASSWORD
    ));
    let secrets = [
        ("the MISP key", misp_key.as_str()),
        // What a cut through the key would leave.
        ("the first half of the MISP key", &misp_key[..20]),
        ("the wrong MISP key", WRONG_MISP_KEY),
        (
            "the SOAR API key secret",
            soar_sim::rest::DEFAULT_API_KEY_SECRET,
        ),
        ("the wrong SOAR API key secret", WRONG_SOAR_SECRET),
        ("the SOAR password", soar_sim::rest::DEFAULT_PASSWORD),
        ("the urlscan key", URLSCAN_KEY),
        ("the wrong urlscan key", WRONG_URLSCAN_KEY),
        ("the API key as Basic auth", api_key_basic.as_str()),
        ("the password as Basic auth", password_basic.as_str()),
    ];
    let mut leaks = Vec::new();
    for (what, output) in [
        ("the runner logs", &logs),
        ("the replies", &replies),
        ("the command output", &commands),
    ] {
        for (name, secret) in &secrets {
            if let Some(at) = output.find(secret) {
                let from = output[..at]
                    .char_indices()
                    .rev()
                    .nth(150)
                    .map_or(0, |(i, _)| i);
                let line: String = output[from..].chars().take(300 + secret.len()).collect();
                leaks.push(format!("{name} in {what}: …{line}…"));
            }
        }
    }
    eprintln!(
        "secrets: searched {} log lines, {} reply bytes, {} command output bytes",
        logs.lines().count(),
        replies.len(),
        commands.len()
    );
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
    assert!(
        replies.contains("<redacted>"),
        "MISP's echo of the key should show as <redacted> in a reply"
    );
}

/// The harness's `app.config` for a runner, logging at trace, with a 2 s MISP timeout, then
/// `edit`ed.
/// In App Host, `$NAME` values come from `/etc/secrets/NAME`, JWE tokens that jwcrypto made
/// (`tests/fixtures/app_host_secrets`); the runner decrypts them, works with them, never logs
/// them and deletes the directory once read, as resilient does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_host_protected_secrets_are_decrypted_used_and_removed() {
    const FIXTURE_MISP_KEY: &str = "Fixture0MispKey0Not0Real0000000000000000";
    let harness = Harness::start().await;
    let misp = MispSim::start(SimOptions {
        key: Some(FIXTURE_MISP_KEY.to_string()),
        ..SimOptions::default()
    })
    .await;
    let secrets_dir = harness.dir.path().join("etc-secrets");
    copy_dir(
        &crate::support::repo_root().join("tests/fixtures/app_host_secrets"),
        &secrets_dir,
    );
    let config = harness.write_config("app-host", &RunnerOptions::default());
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace(
            &format!("api_key_secret={}", soar_sim::rest::DEFAULT_API_KEY_SECRET),
            "api_key_secret=$SOAR_API_SECRET",
        )
        .replace(
            &format!("misp_url={}", harness.misp.url()),
            &format!("misp_url={}", misp.url()),
        )
        .replace(
            &format!("misp_key={}", harness.misp.key()),
            "misp_key=${MISP_KEY}",
        );
    assert!(text.contains("$SOAR_API_SECRET") && text.contains("${MISP_KEY}"));
    std::fs::write(&config, text).unwrap();

    let runner = Runner::spawn_with_env(
        &config,
        &["run"],
        harness.dir.path().join("app-host.log"),
        &[
            ("APP_HOST_CONTAINER", "1".as_ref()),
            ("SOAR_SECRETS_DIR", secrets_dir.as_os_str()),
            // Set but not used: the protected secret wins over the environment.
            (
                "MISP_KEY",
                "EnvironmentKeyIsNotUsed00000000000000000".as_ref(),
            ),
        ],
    );
    runner.wait_for_log("has started successfully", WAIT);
    let (_, replies) = harness.search_once("app-host").await;
    let last = replies.last().expect("a final reply");
    assert_eq!(last.message_type, 0, "{:?}", last.body);
    let requests = misp.requests();
    let search = requests
        .iter()
        .find(|request| request.path == "/events/restSearch")
        .expect("MISP was searched");
    assert_eq!(
        search.headers.get("authorization").map(String::as_str),
        Some(FIXTURE_MISP_KEY),
        "MISP was not asked with the decrypted key"
    );
    assert!(
        harness.misp.requests().is_empty(),
        "the harness's MISP was asked"
    );
    assert!(
        !secrets_dir.exists(),
        "the secrets directory is still there"
    );
    // A changed app.config still naming the secrets loads after their directory is gone
    // (the runner holds what it read), and the next call uses it.
    let moved = MispSim::start(SimOptions {
        key: Some(FIXTURE_MISP_KEY.to_string()),
        ..SimOptions::default()
    })
    .await;
    let text = std::fs::read_to_string(&config).unwrap();
    let staged = config.with_extension("staged");
    std::fs::write(
        &staged,
        text.replace(
            &format!("misp_url={}", misp.url()),
            &format!("misp_url={}", moved.url()),
        ),
    )
    .unwrap();
    std::fs::rename(&staged, &config).unwrap();
    crate::wait_until(WAIT, || {
        runner.count_in_log("has started successfully") >= 2
            || runner.log().contains("cannot be used")
    })
    .await;
    assert_eq!(
        runner.count_in_log("has started successfully"),
        2,
        "the changed config was not served: {}",
        runner.log()
    );
    let (_, replies) = harness.search_once("app-host-reloaded").await;
    let last = replies.last().expect("a final reply");
    assert_eq!(last.message_type, 0, "{:?}", last.body);
    let asked_with: Vec<Option<String>> = moved
        .requests()
        .iter()
        .map(|request| request.headers.get("authorization").cloned())
        .collect();
    assert!(
        !asked_with.is_empty()
            && asked_with
                .iter()
                .all(|key| key.as_deref() == Some(FIXTURE_MISP_KEY)),
        "the reloaded config's MISP was asked with {asked_with:?}"
    );

    let log = runner.log();
    assert!(
        log.contains("removed the protected secrets once read"),
        "{log}"
    );
    for secret in [FIXTURE_MISP_KEY, soar_sim::rest::DEFAULT_API_KEY_SECRET] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the fixture directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a fixture");
        }
    }
}

fn trace_config(
    harness: &Harness,
    name: &str,
    options: &RunnerOptions,
    edit: impl FnOnce(String) -> String,
) -> std::path::PathBuf {
    let path = harness.write_config(name, options);
    let text = std::fs::read_to_string(&path).expect("read app.config");
    assert!(text.contains("loglevel=info\n") && text.contains("timeout=10\nretries=1"));
    let text = text
        .replacen("loglevel=info\n", "loglevel=trace\n", 1)
        .replacen("timeout=10\nretries=1", "timeout=2\nretries=1", 1);
    std::fs::write(&path, edit(text)).expect("write app.config");
    path
}

/// Runs a command of `soar-runner` with `RUST_LOG=trace` (the commands other than `run`
/// log at `warn` otherwise); returns all it printed. Stopped after 30 s.
fn run_at_trace(config: &Path, args: &[&str]) -> String {
    let out = config.with_extension(format!("{}.out", args.join("_").replace(['/', ':'], "_")));
    let file = std::fs::File::create(&out).expect("create the output file");
    let mut child = Command::new(runner_binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "trace")
        .env_remove("APP_CONFIG_FILE")
        .stdout(file.try_clone().expect("clone the output file"))
        .stderr(file)
        .spawn()
        .expect("soar-runner starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait works").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    String::from_utf8_lossy(&std::fs::read(&out).unwrap_or_default()).into_owned()
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
