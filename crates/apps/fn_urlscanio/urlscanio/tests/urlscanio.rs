//! The `urlscanio` function end to end against the urlscan.io simulator, with a recording
//! stand-in for SOAR's REST API and tokio's clock paused so waits cost no real time.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use soar_core::config::AppConfig;
use soar_core::{Function, FunctionContext, FunctionError, FunctionOutput, Inputs, SoarRest};
use tokio_util::sync::CancellationToken;
use urlscan_sim::{SimOptions, UrlscanSim, screenshot_png};
use urlscanio::Urlscanio;

const KEY: &str = "urlscan-test-key-5f1d9c0e-7b2a";

/// One call of [`SoarRest::upload_incident_attachment`].
#[derive(Debug, Clone, PartialEq)]
struct Upload {
    incident_id: i64,
    file_name: String,
    content_type: String,
    content: Vec<u8>,
}

/// Records uploads; answers like SOAR does, or with `failure`.
#[derive(Debug, Default)]
struct FakeSoar {
    uploads: Mutex<Vec<Upload>>,
    failure: Option<String>,
}

#[soar_core::async_trait]
impl SoarRest for FakeSoar {
    async fn upload_incident_attachment(
        &self,
        incident_id: i64,
        file_name: &str,
        content_type: &str,
        content: Vec<u8>,
    ) -> Result<Value, String> {
        let size = content.len();
        lock(&self.uploads).push(Upload {
            incident_id,
            file_name: file_name.to_string(),
            content_type: content_type.to_string(),
            content,
        });
        match &self.failure {
            Some(failure) => Err(failure.clone()),
            None => Ok(json!({"id": 1, "name": file_name, "size": size, "inc_id": incident_id})),
        }
    }
}

/// A function call's surroundings: its progress messages and the SOAR stand-in.
struct Harness {
    context: FunctionContext,
    progress: Arc<Mutex<Vec<String>>>,
    soar: Arc<FakeSoar>,
}

impl Harness {
    fn new(config: &str) -> Harness {
        Harness::with_soar(config, FakeSoar::default())
    }

    fn with_soar(config: &str, soar: FakeSoar) -> Harness {
        let progress = Arc::new(Mutex::new(Vec::new()));
        let sink = progress.clone();
        let soar = Arc::new(soar);
        let app_config = AppConfig::parse(config, "test").expect("the test config parses");
        let context = FunctionContext::new(
            Arc::new(move |message: String| lock(&sink).push(message)),
            Err("no MISP here".into()),
            Arc::new(app_config),
            Some(soar.clone() as Arc<dyn SoarRest>),
            CancellationToken::new(),
        );
        Harness {
            context,
            progress,
            soar,
        }
    }

    async fn run(&self, inputs: Value) -> Result<FunctionOutput, FunctionError> {
        let inputs = Inputs::from_value(inputs).expect("test inputs are an object");
        Urlscanio.run(&self.context, &inputs).await
    }

    fn progress(&self) -> Vec<String> {
        lock(&self.progress).clone()
    }

    fn uploads(&self) -> Vec<Upload> {
        lock(&self.soar.uploads).clone()
    }
}

/// Every log line of this test binary, at TRACE, from a global subscriber.
///
/// Global rather than per test: `tracing` caches per call site whether anyone listens, and
/// a thread-local subscriber loses that race against tests running on other threads. Every
/// test calls this (through [`sim`]) before any code under test runs, so no call site is
/// seen before the subscriber exists, and the redaction test checks all tests' logs.
fn captured_logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // If something else had set one, the redaction test's "was logged" check fails.
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
}

/// A poisoned lock only means another assertion already failed; keep its data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn sim(pending_polls: u32) -> UrlscanSim {
    captured_logs();
    UrlscanSim::start(SimOptions {
        required_key: Some(KEY.to_string()),
        pending_polls,
        ..SimOptions::default()
    })
    .await
    .expect("the simulator starts")
}

/// `[urlscanio]` pointing at `sim`, with `extra` lines appended.
fn config(sim: &UrlscanSim, extra: &str) -> String {
    format!(
        "[urlscanio]\nurlscanio_api_key = {KEY}\nurlscanio_report_url = {}\nurlscanio_screenshot_url = {}\n{extra}",
        sim.api_url(),
        sim.screenshot_url()
    )
}

fn only_uuid(sim: &UrlscanSim) -> String {
    let scans = sim.scans();
    assert_eq!(scans.len(), 1, "expected exactly one scan, got {scans:?}");
    scans[0].uuid.clone()
}

#[tokio::test(start_paused = true)]
async fn a_scan_succeeds_after_several_polls_with_report_screenshot_and_summary() {
    let sim = sim(3).await;
    let harness = Harness::new(&config(&sim, "poll_interval = 10\n"));

    let output = harness
        .run(json!({"urlscanio_url": "https://example.com/login", "urlscanio_public": true,
                    "urlscanio_useragent": "Mozilla/5.0 (Test)", "urlscanio_referer": "https://mail.example/"}))
        .await
        .expect("the scan succeeds");

    let uuid = only_uuid(&sim);
    assert!(output.success, "expected success, got {output:?}");
    let content = &output.content;
    let png = base64::engine::general_purpose::STANDARD
        .decode(content["png_base64content"].as_str().expect("base64 text"))
        .expect("valid base64");
    assert_eq!(
        png,
        screenshot_png(),
        "the screenshot bytes, base64-encoded"
    );
    assert_eq!(
        content["png_url"],
        json!(format!("{}/{uuid}.png", sim.screenshot_url()))
    );
    assert_eq!(
        content["report_url"],
        json!(format!("{}/result/{uuid}/", sim.api_url()))
    );
    assert_eq!(content["report"]["task"]["uuid"], json!(uuid));
    assert_eq!(
        content["summary"],
        json!({
            "malicious": false, "score": 0, "categories": [], "brands": [],
            "final_url": "https://example.com/login", "ip": "93.184.215.14", "country": "US",
            "server": "ECAcc (nyd/D184)", "requests": 3, "domains": 2,
            "result_page": format!("{}/result/{uuid}/", sim.url()),
        })
    );

    let requests = sim.requests();
    let paths: Vec<_> = requests
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    let result_path = format!("/api/v1/result/{uuid}/");
    assert_eq!(
        paths,
        [
            "POST /api/v1/scan/ 200".to_string(),
            format!("GET {result_path} 404"),
            format!("GET {result_path} 404"),
            format!("GET {result_path} 404"),
            format!("GET {result_path} 200"),
            format!("GET /screenshots/{uuid}.png 200"),
        ]
    );
    assert_eq!(
        requests[0].body,
        json!({"url": "https://example.com/login", "visibility": "public", "public": "on",
               "customagent": "Mozilla/5.0 (Test)", "referer": "https://mail.example/"})
    );
    assert_eq!(
        requests[0].headers.get("api-key").map(String::as_str),
        Some(KEY)
    );
    for pair in requests[1..5].windows(2) {
        assert_eq!(
            pair[1].at - pair[0].at,
            Duration::from_secs(10),
            "polls should be poll_interval apart"
        );
    }
    assert!(sim.unexpected_requests().is_empty());
    assert!(harness.uploads().is_empty(), "no incident, no upload");
}

#[tokio::test(start_paused = true)]
async fn progress_messages_come_in_order_and_say_how_long_it_waited() {
    let sim = sim(2).await;
    let harness = Harness::new(&config(&sim, "poll_interval = 15\n"));

    harness
        .run(json!({"urlscanio_url": "example.com", "incident_id": 2095}))
        .await
        .expect("the scan succeeds");

    let uuid = only_uuid(&sim);
    assert_eq!(
        harness.progress(),
        [
            format!("Submitted URL successfully as {uuid}"),
            format!("Waited 0 s for scan {uuid} to finish"),
            format!("Waited 15 s for scan {uuid} to finish"),
            format!("Downloaded report from {}/result/{uuid}/", sim.api_url()),
            format!(
                "Downloaded PNG screenshot from {}/{uuid}.png",
                sim.screenshot_url()
            ),
            "Attached the screenshot to incident 2095 as urlscanio-screenshot-example.com.png"
                .to_string(),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_scan_that_never_finishes_times_out_naming_the_uuid_and_where_to_look() {
    let sim = sim(u32::MAX).await;
    let harness = Harness::new(&config(&sim, "timeout = 60\npoll_interval = 10\n"));
    let started = tokio::time::Instant::now();

    let error = harness
        .run(json!({"urlscanio_url": "https://slow.example/"}))
        .await
        .expect_err("the scan must time out");

    let uuid = only_uuid(&sim);
    assert!(matches!(error, FunctionError::Integration(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "urlscan.io did not finish scan {uuid} within 60 s (the scan was still running); \
             look for the report later at {url}/result/{uuid}/ (API: {api}/result/{uuid}/)",
            url = sim.url(),
            api = sim.api_url()
        )
    );
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    let polls = sim.requests().iter().filter(|r| r.method == "GET").count();
    assert_eq!(polls, 7, "polls at 0, 10, ..., 60 s");
}

#[tokio::test(start_paused = true)]
async fn rate_limiting_is_waited_out_for_as_long_as_urlscan_asks() {
    let sim = sim(1).await;
    let harness = Harness::new(&config(&sim, "poll_interval = 5\n"));
    // The submission and its first retry are refused; urlscan asks for 25 s each time.
    sim.rate_limit_next(2, Duration::from_secs(25));

    let output = harness
        .run(json!({"urlscanio_url": "https://example.com/"}))
        .await
        .expect("the scan succeeds once the limit passes");

    assert!(output.success);
    let requests = sim.requests();
    let statuses: Vec<_> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 200, 404, 200, 200]);
    assert_eq!(requests[1].at - requests[0].at, Duration::from_secs(25));
    assert_eq!(requests[2].at - requests[1].at, Duration::from_secs(25));
    assert_eq!(
        harness.progress()[..2],
        [
            "urlscan.io is rate-limiting submissions; trying again in 25 s",
            "urlscan.io is rate-limiting submissions; trying again in 25 s",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_poll_waits_as_asked_then_goes_on_polling() {
    let sim = sim(1).await;
    let harness = Harness::new(&config(&sim, "poll_interval = 5\n"));
    let wait_for_first_poll = async {
        // Let the submission through, then limit the first poll.
        while sim.requests().is_empty() {
            tokio::task::yield_now().await;
        }
        sim.rate_limit_next(1, Duration::from_secs(40));
    };
    let (output, ()) = tokio::join!(
        harness.run(json!({"urlscanio_url": "https://example.com/"})),
        wait_for_first_poll
    );

    assert!(output.expect("the scan succeeds").success);
    let requests = sim.requests();
    let statuses: Vec<_> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 429, 404, 200, 200]);
    assert_eq!(requests[2].at - requests[1].at, Duration::from_secs(40));
    assert_eq!(requests[3].at - requests[2].at, Duration::from_secs(5));
    let uuid = only_uuid(&sim);
    assert!(
        harness.progress().contains(&format!(
            "Waited 0 s for scan {uuid}; urlscan.io is rate-limiting, next try in 40 s"
        )),
        "{:?}",
        harness.progress()
    );
}

#[tokio::test(start_paused = true)]
async fn a_poll_that_meets_a_passing_503_tries_again_but_a_submission_is_never_repeated() {
    let sim = sim(0).await;
    let harness = Harness::new(&config(&sim, "poll_interval = 5\n"));
    let fail_the_first_two_polls = async {
        while sim.requests().is_empty() {
            tokio::task::yield_now().await;
        }
        sim.fail_next(2, 503);
    };
    let (output, ()) = tokio::join!(
        harness.run(json!({"urlscanio_url": "https://example.com/"})),
        fail_the_first_two_polls
    );
    assert!(output.expect("the scan succeeds").success);
    let statuses: Vec<_> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 503, 503, 200, 200]);

    sim.fail_next(1, 503);
    let error = harness
        .run(json!({"urlscanio_url": "https://example.com/"}))
        .await
        .expect_err("a failed submission is not repeated: urlscan.io may have taken it");
    assert_eq!(
        error.to_string(),
        format!(
            "urlscan.io answered POST {}/scan/ with HTTP 503: Service Unavailable: A failure forced by the simulator.",
            sim.api_url()
        )
    );
    assert_eq!(sim.requests().len(), 6);

    let before = sim.requests().len();
    let fail_every_poll = async {
        // Let the submission through, then fail every poll.
        while sim.requests().len() == before {
            tokio::task::yield_now().await;
        }
        sim.fail_next(10, 502);
    };
    let (error, ()) = tokio::join!(
        harness.run(json!({"urlscanio_url": "https://example.com/"})),
        fail_every_poll
    );
    let error = error.expect_err("four failures in a row end the wait");
    assert!(
        error.to_string().ends_with("HTTP 502 (4 times in a row)"),
        "expected the repeated 502 to be named, got: {error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_longer_than_the_timeout_fails_without_sleeping_it_out() {
    let sim = sim(0).await;
    let harness = Harness::new(&config(&sim, "timeout = 30\n"));
    sim.rate_limit_next(1, Duration::from_secs(3600));

    let error = harness
        .run(json!({"urlscanio_url": "https://example.com/"}))
        .await
        .expect_err("the limit outlasts the timeout");

    assert_eq!(
        error.to_string(),
        "urlscan.io kept rate-limiting the submission (HTTP 429) beyond the 30 s timeout"
    );
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_url_is_an_unsuccessful_result_with_urlscans_own_message() {
    let sim = sim(0).await;
    let harness = Harness::new(&config(&sim, ""));
    sim.refuse_submissions(
        "DNS Error - Could not resolve domain",
        "The domain nx.invalid could not be resolved to a valid IPv4/IPv6 address. We won't try to load it in the browser.",
    );

    let output = harness
        .run(json!({"urlscanio_url": "https://nx.invalid/", "incident_id": 7}))
        .await
        .expect("a refusal is an answer, not an error");

    assert!(!output.success);
    assert_eq!(
        output.reason.as_deref(),
        Some(
            "DNS Error - Could not resolve domain: The domain nx.invalid could not be resolved to a valid IPv4/IPv6 address. We won't try to load it in the browser."
        )
    );
    assert_eq!(output.content["status"], 400);
    assert_eq!(
        output.content["message"],
        "DNS Error - Could not resolve domain"
    );
    assert_eq!(sim.requests().len(), 1, "nothing is polled after a refusal");
    assert!(harness.uploads().is_empty());
}

#[tokio::test]
async fn a_missing_key_fails_with_the_originals_message_before_any_request() {
    let sim = sim(0).await;
    let text = format!("[urlscanio]\nurlscanio_report_url = {}\n", sim.api_url());
    let harness = Harness::new(&text);

    let error = harness
        .run(json!({"urlscanio_url": "https://example.com/"}))
        .await
        .expect_err("no key, no scan");

    assert!(matches!(error, FunctionError::Config(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "No API key found - please add urlscanio_api_key under a [urlscanio] in app.config"
    );
    let placeholder = Harness::new("[urlscanio]\nurlscanio_api_key = xxx\n")
        .run(json!({"urlscanio_url": "https://example.com/"}))
        .await
        .expect_err("the template's placeholder is no key");
    assert_eq!(
        placeholder.to_string(),
        "test: [urlscanio] urlscanio_api_key is still the placeholder 'xxx'"
    );
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn a_missing_url_input_is_named() {
    let sim = sim(0).await;
    let error = Harness::new(&config(&sim, ""))
        .run(json!({"urlscanio_public": true}))
        .await
        .expect_err("the URL is required");
    assert_eq!(
        error.to_string(),
        "input 'urlscanio_url' is required but was not given"
    );
    assert!(sim.requests().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_screenshot_is_attached_to_the_incident_as_the_original_named_it() {
    let sim = sim(1).await;
    let harness = Harness::new(&config(&sim, ""));

    let output = harness
        .run(json!({"urlscanio_url": "https://example.com/a?b=c", "incident_id": 2095}))
        .await
        .expect("the scan succeeds");

    assert!(output.success);
    assert_eq!(
        harness.uploads(),
        [Upload {
            incident_id: 2095,
            file_name: "urlscanio-screenshot-https://example.com/a?b=c.png".to_string(),
            content_type: "image/png".to_string(),
            content: screenshot_png(),
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_upload_says_which_scan_and_where_its_report_is() {
    let sim = sim(0).await;
    let soar = FakeSoar {
        failure: Some("HTTP 403: no permission to edit incident 9".to_string()),
        ..FakeSoar::default()
    };
    let harness = Harness::with_soar(&config(&sim, ""), soar);

    let error = harness
        .run(json!({"urlscanio_url": "https://example.com/", "incident_id": 9}))
        .await
        .expect_err("the upload failed");

    let uuid = only_uuid(&sim);
    assert_eq!(
        error.to_string(),
        format!(
            "SOAR REST call failed: could not attach the screenshot of scan {uuid} to incident 9 \
             (HTTP 403: no permission to edit incident 9); the report is at {}/result/{uuid}/",
            sim.api_url()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn cancellation_ends_the_wait_promptly() {
    let sim = sim(u32::MAX).await;
    let harness = Harness::new(&config(&sim, "timeout = 600\npoll_interval = 10\n"));
    let cancel = harness.context.cancellation().clone();
    let started = tokio::time::Instant::now();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(25)).await;
        cancel.cancel();
    });

    let error = harness
        .run(json!({"urlscanio_url": "https://example.com/"}))
        .await
        .expect_err("cancelled");

    assert!(matches!(error, FunctionError::Cancelled), "{error:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(25));
}

#[tokio::test(start_paused = true)]
async fn other_statuses_are_errors_with_the_status_and_urlscans_message() {
    let sim = sim(0).await;
    sim.set_required_key(Some("a-different-key"));
    let error = Harness::new(&config(&sim, ""))
        .run(json!({"urlscanio_url": "https://example.com/"}))
        .await
        .expect_err("the key is refused");
    assert_eq!(
        error.to_string(),
        format!(
            "urlscan.io answered POST {}/scan/ with HTTP 401: Missing or invalid API key: \
             Your API key was not found. Pass a valid key in the API-Key header.",
            sim.api_url()
        )
    );
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_api_key_appears_in_no_log_error_progress_reply_or_debug_output() {
    let sim = sim(1).await;
    let harness = Harness::new(&config(&sim, ""));
    let success = harness
        .run(json!({"urlscanio_url": "https://example.com/", "incident_id": 3}))
        .await
        .expect("the scan succeeds");
    sim.set_required_key(Some("another-key"));
    let failure = harness
        .run(json!({"urlscanio_url": "https://example.com/"}))
        .await
        .expect_err("the key is refused");

    let config = urlscanio::config::UrlscanConfig::from_app_config(harness.context.config())
        .expect("the config is valid");
    let client = urlscanio::client::UrlscanClient::new(&config).expect("the client builds");
    let everything = [
        String::from_utf8_lossy(&lock(&captured_logs().0)).into_owned(),
        format!("{success:?}"),
        serde_json::to_string(&success.content).expect("content serialises"),
        failure.to_string(),
        format!("{failure:?}"),
        harness.progress().join("\n"),
        format!("{:?}", harness.context),
        format!("{config:?}"),
        format!("{client:?}"),
    ];
    assert!(
        everything[0].contains("urlscan_request") && everything[0].contains("urlscan.io answered"),
        "this function's HTTP requests should have been logged: {}",
        everything[0]
    );
    // The key did travel, in the header: this test would see it if it leaked.
    assert_eq!(
        sim.requests()[0].headers.get("api-key").map(String::as_str),
        Some(KEY)
    );
    for (index, text) in everything.iter().enumerate() {
        assert!(
            !text.contains(KEY),
            "the key leaked in output {index}: {text}"
        );
    }
}
