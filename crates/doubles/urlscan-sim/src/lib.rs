//! An in-process urlscan.io stand-in: it accepts scans, answers 404 while a scan is
//! "running", then serves a result document and a real PNG screenshot, with knobs for rate
//! limiting, refusals, a required API key and latency, and a log of every request.
//!
//! Where the shapes come from: the submit answer, the `visibility` field, the 400 refusal
//! (`{"message", "description", "status", "errors"}`) and the `X-Rate-Limit-*` headers follow
//! urlscan.io's public API documentation (the quickstart, "API Error Codes" and "API Rate
//! Limits" pages at docs.urlscan.io). The result document (`task`, `page`, `lists`,
//! `verdicts`, `stats`, `data.requests`, `meta`, `submitter`) follows urlscan's result API
//! as documented and as widely seen in integrations; only the fields an integration reads
//! are filled, with plausible values. The exact wording of the 401 and 404 messages is a
//! reconstruction: urlscan documents the status codes, not those texts.
//!
//! ```no_run
//! # async fn demo() -> Result<(), urlscan_sim::SimError> {
//! let sim = urlscan_sim::UrlscanSim::start(urlscan_sim::SimOptions::default()).await?;
//! sim.set_pending_polls(2);
//! let report_url = sim.api_url(); // `[urlscanio] urlscanio_report_url`
//! let screenshot_url = sim.screenshot_url(); // `[urlscanio] urlscanio_screenshot_url`
//! # let _ = (report_url, screenshot_url);
//! # Ok(())
//! # }
//! ```

mod png;
mod server;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

pub use png::screenshot_png;

/// How to start a simulator.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Where to listen; `127.0.0.1:0` (a free port) when absent.
    pub listen: Option<SocketAddr>,
    /// When set, every `/api/v1/` call must carry this `API-Key` header or gets urlscan's 401.
    pub required_key: Option<String>,
    /// How many polls of a new scan's result answer 404 before the report is ready.
    pub pending_polls: u32,
    /// How long every answer is held back.
    pub latency: Duration,
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct UrlscanSim {
    url: String,
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// One request as the simulator received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// Header names lower-cased; a repeated header keeps its last value. Recorded verbatim
    /// (the API key included) so tests can check what was sent.
    pub headers: BTreeMap<String, String>,
    /// The JSON body, `Null` when empty, a JSON string when it was not JSON.
    pub body: Value,
    pub status: u16,
    /// When the request arrived, on tokio's clock, so tests with paused time can check
    /// how long a client waited between requests.
    pub at: tokio::time::Instant,
    /// False when no simulated endpoint matched: a test should treat that as a bug.
    pub known_endpoint: bool,
}

/// A scan the simulator has accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedScan {
    pub uuid: String,
    pub url: String,
    pub visibility: String,
    pub custom_agent: Option<String>,
    pub referer: Option<String>,
    /// Polls still to be answered with 404.
    pub pending_polls: u32,
    pub malicious: bool,
}

impl UrlscanSim {
    /// Starts a simulator on a free local port (or `options.listen`).
    pub async fn start(options: SimOptions) -> Result<UrlscanSim, SimError> {
        let listen = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|error| SimError::Bind(listen, error))?;
        let address = listener
            .local_addr()
            .map_err(|error| SimError::Bind(listen, error))?;
        let url = format!("http://{address}");
        let shared = Arc::new(Shared {
            base_url: url.clone(),
            state: Mutex::new(State {
                required_key: options.required_key,
                pending_polls: options.pending_polls,
                latency: options.latency,
                rate_limited_requests: 0,
                failed_requests: 0,
                failure_status: 503,
                retry_after: Duration::from_secs(1),
                refusal: None,
                malicious: false,
                scans: HashMap::new(),
                requests: Vec::new(),
            }),
        });
        let server = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(UrlscanSim {
            url,
            address,
            shared,
            server,
        })
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The value for `urlscanio_report_url`: `{url}/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.url)
    }

    /// The value for `urlscanio_screenshot_url`: `{url}/screenshots`.
    pub fn screenshot_url(&self) -> String {
        format!("{}/screenshots", self.url)
    }

    /// How many 404 polls scans submitted from now on go through before they are ready.
    pub fn set_pending_polls(&self, polls: u32) {
        self.state().pending_polls = polls;
    }

    /// Answers the next `requests` requests to known endpoints with 429, `Retry-After` and
    /// `X-Rate-Limit-Reset-After` set to `retry_after` (whole seconds, rounded up).
    pub fn rate_limit_next(&self, requests: u32, retry_after: Duration) {
        let mut state = self.state();
        state.rate_limited_requests = requests;
        state.retry_after = retry_after;
    }

    /// Answers the next `requests` requests to known endpoints with `status` (a 503, say)
    /// and urlscan's error shape.
    pub fn fail_next(&self, requests: u32, status: u16) {
        let mut state = self.state();
        state.failed_requests = requests;
        state.failure_status = status;
    }

    /// Refuses every submission from now on with urlscan's 400 answer.
    pub fn refuse_submissions(&self, message: &str, description: &str) {
        self.state().refusal = Some((message.to_string(), description.to_string()));
    }

    pub fn accept_submissions(&self) {
        self.state().refusal = None;
    }

    /// Whether scans submitted from now on get a malicious verdict.
    pub fn set_malicious(&self, malicious: bool) {
        self.state().malicious = malicious;
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    pub fn set_required_key(&self, key: Option<&str>) {
        self.state().required_key = key.map(str::to_string);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// Requests no simulated endpoint matched; a correct client makes none.
    pub fn unexpected_requests(&self) -> Vec<RecordedRequest> {
        self.state()
            .requests
            .iter()
            .filter(|request| !request.known_endpoint)
            .cloned()
            .collect()
    }

    /// The scans accepted so far.
    pub fn scans(&self) -> Vec<SimulatedScan> {
        let mut scans: Vec<_> = self.state().scans.values().cloned().collect();
        scans.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        scans
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }
}

impl Drop for UrlscanSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What the handler and the test-facing methods share.
#[derive(Debug)]
struct Shared {
    base_url: String,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    required_key: Option<String>,
    pending_polls: u32,
    latency: Duration,
    rate_limited_requests: u32,
    failed_requests: u32,
    failure_status: u16,
    retry_after: Duration,
    refusal: Option<(String, String)>,
    malicious: bool,
    scans: HashMap<String, SimulatedScan>,
    requests: Vec<RecordedRequest>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client() -> reqwest::Client {
        soar_core::tls::install_crypto_provider();
        reqwest::Client::builder()
            .build()
            .expect("a plain client builds")
    }

    async fn sim(options: SimOptions) -> UrlscanSim {
        UrlscanSim::start(options).await.expect("simulator starts")
    }

    #[tokio::test]
    async fn a_scan_is_pending_for_the_configured_polls_then_ready() {
        let sim = sim(SimOptions {
            pending_polls: 2,
            ..SimOptions::default()
        })
        .await;
        let client = client();
        let submitted: Value = client
            .post(format!("{}/scan/", sim.api_url()))
            .json(&json!({"url": "https://example.com/login", "visibility": "unlisted"}))
            .send()
            .await
            .expect("submit")
            .json()
            .await
            .expect("submit answer is JSON");
        assert_eq!(submitted["message"], "Submission successful");
        assert_eq!(submitted["visibility"], "unlisted");
        let uuid = submitted["uuid"]
            .as_str()
            .expect("uuid is a string")
            .to_string();
        assert_eq!(
            submitted["api"],
            json!(format!("{}/api/v1/result/{uuid}/", sim.url()))
        );

        let result_url = format!("{}/result/{uuid}/", sim.api_url());
        for poll in 0..2 {
            let pending = client.get(&result_url).send().await.expect("poll");
            assert_eq!(pending.status(), 404, "poll {poll} should still be pending");
        }
        let ready = client.get(&result_url).send().await.expect("poll");
        assert_eq!(ready.status(), 200);
        let report: Value = ready.json().await.expect("report is JSON");
        assert_eq!(report["task"]["uuid"], json!(uuid));
        assert_eq!(report["page"]["url"], "https://example.com/login");
        assert_eq!(report["page"]["domain"], "example.com");
        assert_eq!(report["verdicts"]["overall"]["malicious"], false);
        assert_eq!(report["data"]["requests"].as_array().map(Vec::len), Some(3));

        let png = client
            .get(format!("{}/{uuid}.png", sim.screenshot_url()))
            .send()
            .await
            .expect("screenshot");
        assert_eq!(png.status(), 200);
        assert_eq!(
            png.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("image/png")
        );
        assert_eq!(png.bytes().await.expect("bytes").as_ref(), screenshot_png());
        assert!(sim.unexpected_requests().is_empty());
    }

    #[tokio::test]
    async fn the_legacy_public_flag_makes_a_public_scan() {
        let sim = sim(SimOptions::default()).await;
        let answer: Value = client()
            .post(format!("{}/scan/", sim.api_url()))
            .json(&json!({"url": "example.com", "public": "on", "customagent": "UA/1"}))
            .send()
            .await
            .expect("submit")
            .json()
            .await
            .expect("JSON");
        assert_eq!(answer["visibility"], "public");
        assert_eq!(answer["options"]["useragent"], "UA/1");
        assert_eq!(sim.scans()[0].custom_agent.as_deref(), Some("UA/1"));
    }

    #[tokio::test]
    async fn rate_limit_answers_429_with_both_headers_then_recovers() {
        let sim = sim(SimOptions::default()).await;
        sim.rate_limit_next(1, Duration::from_millis(1500));
        let client = client();
        let limited = client
            .post(format!("{}/scan/", sim.api_url()))
            .json(&json!({"url": "example.com"}))
            .send()
            .await
            .expect("submit");
        assert_eq!(limited.status(), 429);
        let header = |name: &str| {
            limited
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(header("retry-after").as_deref(), Some("2"));
        assert_eq!(header("x-rate-limit-reset-after").as_deref(), Some("2"));
        assert_eq!(header("x-rate-limit-remaining").as_deref(), Some("0"));
        let next = client
            .post(format!("{}/scan/", sim.api_url()))
            .json(&json!({"url": "example.com"}))
            .send()
            .await
            .expect("submit");
        assert_eq!(next.status(), 200);
    }

    #[tokio::test]
    async fn refusals_and_missing_keys_have_urlscans_error_shape() {
        let sim = sim(SimOptions {
            required_key: Some("sim-key".into()),
            ..SimOptions::default()
        })
        .await;
        let client = client();
        let unauthorised = client
            .post(format!("{}/scan/", sim.api_url()))
            .json(&json!({"url": "example.com"}))
            .send()
            .await
            .expect("submit");
        assert_eq!(unauthorised.status(), 401);
        let body: Value = unauthorised.json().await.expect("JSON");
        assert_eq!(body["status"], 401);
        assert!(body["message"].is_string());

        sim.refuse_submissions("DNS Error - Could not resolve domain", "Not resolvable.");
        let refused = client
            .post(format!("{}/scan/", sim.api_url()))
            .header("API-Key", "sim-key")
            .json(&json!({"url": "nx.invalid"}))
            .send()
            .await
            .expect("submit");
        assert_eq!(refused.status(), 400);
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(body["message"], "DNS Error - Could not resolve domain");
        assert_eq!(body["description"], "Not resolvable.");
        assert_eq!(body["status"], 400);
        assert_eq!(body["errors"][0]["status"], 400);
    }

    #[tokio::test]
    async fn unknown_paths_are_recorded_as_unexpected() {
        let sim = sim(SimOptions::default()).await;
        let answer = client()
            .get(format!("{}/api/v1/nope", sim.url()))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 404);
        assert_eq!(sim.unexpected_requests().len(), 1);
        assert_eq!(sim.unexpected_requests()[0].path, "/api/v1/nope");
    }
}
