//! The urlscan.io calls: submit a scan, wait for its result, fetch its screenshot. 429s are
//! waited out as urlscan asks, cancellation is honoured while waiting, and the API key only
//! ever travels in the `API-Key` header, marked sensitive.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use soar_core::observe::{AttemptEnd, FinishedAttempt, Service, SharedObserver};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::UrlscanConfig;

/// The text urlscan.io answers an accepted submission with.
pub const SUBMISSION_SUCCESSFUL: &str = "Submission successful";

/// A urlscan.io client for one call, sharing the process-wide HTTP connection pool.
#[derive(Clone)]
pub struct UrlscanClient {
    http: reqwest::Client,
    config: UrlscanConfig,
    api_key_header: HeaderValue,
    observer: Option<SharedObserver>,
}

/// What to scan, from the function's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    pub url: String,
    pub public: bool,
    pub user_agent: Option<String>,
    pub referer: Option<String>,
}

/// An accepted submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub uuid: String,
    /// The human-readable result page urlscan.io named, when it named one.
    pub result_page: Option<String>,
    /// urlscan.io's answer as it came.
    pub answer: Value,
}

/// Why a wait is not over yet; passed to the caller's progress callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// The scan is still running (HTTP 404).
    Pending,
    /// urlscan.io asked to slow down (HTTP 429) for this long.
    RateLimited(Duration),
    /// A 502/503/504 or a connection problem that may pass.
    Transient(String),
}

/// A urlscan.io call that failed, carrying what urlscan.io said.
#[derive(Debug, thiserror::Error)]
pub enum UrlscanError {
    #[error("cannot reach urlscan.io at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("urlscan.io did not answer {method} {url} within {seconds} s")]
    RequestTimeout {
        method: &'static str,
        url: String,
        seconds: u64,
    },
    /// HTTP 400: a blocked, invalid or unresolvable URL. `body` is urlscan.io's JSON.
    #[error("urlscan.io refused {what} (HTTP 400): {reason}")]
    Refused {
        what: &'static str,
        reason: String,
        body: Value,
    },
    /// HTTP 200 without "Submission successful".
    #[error("urlscan.io did not accept the URL: {message}")]
    NotSubmitted { message: String, body: Value },
    #[error("urlscan.io answered {method} {url} with HTTP {status}: {message}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "urlscan.io kept rate-limiting the submission (HTTP 429) beyond the {seconds} s timeout"
    )]
    SubmitRateLimited { seconds: u64 },
    #[error(
        "urlscan.io did not finish scan {uuid} within {seconds} s ({last}); look for the report later at {result_page} (API: {api_url})"
    )]
    ScanTimeout {
        uuid: String,
        seconds: u64,
        last: String,
        result_page: String,
        api_url: String,
    },
    #[error("the screenshot of scan {uuid} was not available at {url} in time ({last})")]
    ScreenshotTimeout {
        uuid: String,
        url: String,
        last: String,
    },
    #[error("urlscan.io's answer to {url} could not be read: {problem}")]
    InvalidResponse { url: String, problem: String },
    #[error("cannot build the HTTP client for urlscan.io: {0}")]
    Client(String),
    #[error("cancelled")]
    Cancelled,
}

impl ScanRequest {
    /// The JSON body of `POST /scan/`.
    ///
    /// The original sent `"public": "on"` for a public scan and nothing otherwise, which in
    /// urlscan's older API meant private. Today urlscan reads `visibility`
    /// (`public`/`unlisted`/`private`), so both are sent. A non-public scan is `private`, not
    /// `unlisted`: unlisted scans are shown to urlscan's paying customers, which the original
    /// never allowed.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "url": self.url,
            "visibility": if self.public { "public" } else { "private" },
        });
        if self.public {
            body["public"] = json!("on");
        }
        if let Some(agent) = &self.user_agent {
            body["customagent"] = json!(agent);
        }
        if let Some(referer) = &self.referer {
            body["referer"] = json!(referer);
        }
        body
    }
}

impl Waiting {
    fn describe(&self) -> String {
        match self {
            Waiting::Pending => "the scan was still running".to_string(),
            Waiting::RateLimited(wait) => {
                format!(
                    "urlscan.io was rate-limiting, asking for {} s",
                    wait.as_secs()
                )
            }
            Waiting::Transient(problem) => format!("last problem: {problem}"),
        }
    }
}

impl std::fmt::Debug for UrlscanClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UrlscanClient")
            .field("config", &self.config)
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

/// The endpoints as the runner's metrics name them: templates, never a scan's uuid.
const SCAN_ENDPOINT: &str = "/scan";
const RESULT_ENDPOINT: &str = "/result";
const SCREENSHOT_ENDPOINT: &str = "/screenshots";

impl UrlscanClient {
    /// A client for `config`; the HTTP connection pool is built once per proxy setting.
    pub fn new(config: &UrlscanConfig) -> Result<UrlscanClient, UrlscanError> {
        let mut api_key_header = HeaderValue::from_str(config.api_key.expose())
            .map_err(|_| UrlscanError::Client("the API key cannot go in an HTTP header".into()))?;
        api_key_header.set_sensitive(true);
        Ok(UrlscanClient {
            http: shared_http(config)?,
            config: config.clone(),
            api_key_header,
            observer: None,
        })
    }

    /// The same client, telling `observer` (the runner's metrics) of every request.
    pub fn with_observer(mut self, observer: Option<SharedObserver>) -> UrlscanClient {
        self.observer = observer;
        self
    }

    /// `{report_url}/result/{uuid}/`: where the report is fetched from.
    pub fn report_url(&self, uuid: &str) -> String {
        format!("{}/result/{uuid}/", self.config.report_url)
    }

    /// `{screenshot_url}/{uuid}.png`.
    pub fn screenshot_url(&self, uuid: &str) -> String {
        format!("{}/{uuid}.png", self.config.screenshot_url)
    }

    /// Submits a scan, waiting out 429s until `deadline`. POST is not repeated after any
    /// other failure: urlscan.io may have accepted it.
    pub async fn submit(
        &self,
        request: &ScanRequest,
        deadline: Instant,
        cancel: &CancellationToken,
        mut on_wait: impl FnMut(&Waiting),
    ) -> Result<Submission, UrlscanError> {
        let url = format!("{}/scan/", self.config.report_url);
        let body = request.body();
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let builder = self
                .http
                .post(&url)
                .header("API-Key", self.api_key_header.clone())
                .json(&body);
            // Only a 429 makes this loop go round, so every later attempt is a retry.
            let retry = attempt > 1;
            let answer = self
                .exchange("POST", &url, SCAN_ENDPOINT, builder, attempt, retry, cancel)
                .await?;
            match answer.status {
                200 => return submission(&url, &answer.body),
                400 => {
                    let json = body_json(&answer.body);
                    return Err(UrlscanError::Refused {
                        what: "the URL",
                        reason: urlscan_message(&json, &answer.body),
                        body: json,
                    });
                }
                429 => {
                    let wait = retry_after(&answer.headers).unwrap_or(self.config.poll_interval);
                    if Instant::now() + wait > deadline {
                        return Err(UrlscanError::SubmitRateLimited {
                            seconds: self.config.timeout.as_secs(),
                        });
                    }
                    on_wait(&Waiting::RateLimited(wait));
                    sleep_or_cancel(wait, cancel).await?;
                }
                status => return Err(status_error("POST", &url, status, &answer.body)),
            }
        }
    }

    /// Polls the result until it is ready (HTTP 200) and returns the report. `on_wait` gets
    /// why it is still waiting and for how long it has waited.
    pub async fn wait_for_report(
        &self,
        submission: &Submission,
        deadline: Instant,
        cancel: &CancellationToken,
        on_wait: impl FnMut(&Waiting, Duration),
    ) -> Result<Value, UrlscanError> {
        let uuid = &submission.uuid;
        let url = self.report_url(uuid);
        match self
            .get_when_ready(&url, RESULT_ENDPOINT, deadline, cancel, on_wait)
            .await
        {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|error| UrlscanError::InvalidResponse {
                    url: url.clone(),
                    problem: format!("the report is not JSON: {error}"),
                })
            }
            Err(PollError::Deadline(last)) => Err(UrlscanError::ScanTimeout {
                uuid: uuid.clone(),
                seconds: self.config.timeout.as_secs(),
                last: last.describe(),
                result_page: submission
                    .result_page
                    .clone()
                    .unwrap_or_else(|| url.clone()),
                api_url: url,
            }),
            Err(PollError::Refused(json, raw)) => Err(UrlscanError::Refused {
                what: "the result",
                reason: urlscan_message(&json, &raw),
                body: json,
            }),
            Err(PollError::Failed(error)) => Err(error),
        }
    }

    /// Downloads the screenshot, which can lag a moment behind the report. It gets until
    /// `deadline` or [`SCREENSHOT_GRACE`] from now, whichever is later.
    pub async fn screenshot(
        &self,
        uuid: &str,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, UrlscanError> {
        let url = self.screenshot_url(uuid);
        let deadline = deadline.max(Instant::now() + SCREENSHOT_GRACE);
        match self
            .get_when_ready(&url, SCREENSHOT_ENDPOINT, deadline, cancel, |_, _| {})
            .await
        {
            Ok(bytes) if bytes.starts_with(PNG_SIGNATURE) => Ok(bytes),
            Ok(_) => Err(UrlscanError::InvalidResponse {
                url,
                problem: "the screenshot is not a PNG image".into(),
            }),
            Err(PollError::Deadline(last)) => Err(UrlscanError::ScreenshotTimeout {
                uuid: uuid.to_string(),
                url,
                last: last.describe(),
            }),
            Err(PollError::Refused(json, raw)) => Err(UrlscanError::Refused {
                what: "the screenshot",
                reason: urlscan_message(&json, &raw),
                body: json,
            }),
            Err(PollError::Failed(error)) => Err(error),
        }
    }

    /// GETs `url` until it answers 200: 404 means not yet, 429 waits as asked, transient
    /// failures are retried a few times in a row. The last try is at `deadline`.
    async fn get_when_ready(
        &self,
        url: &str,
        endpoint: &'static str,
        deadline: Instant,
        cancel: &CancellationToken,
        mut on_wait: impl FnMut(&Waiting, Duration),
    ) -> Result<Vec<u8>, PollError> {
        let started = Instant::now();
        let mut transient_in_a_row = 0;
        let mut attempt = 0u32;
        // A poll after "not yet" (404) is no retry; one after a failure or a 429 is.
        let mut retry = false;
        loop {
            attempt = attempt.saturating_add(1);
            let builder = self
                .http
                .get(url)
                .header("API-Key", self.api_key_header.clone());
            let exchanged = self
                .exchange("GET", url, endpoint, builder, attempt, retry, cancel)
                .await;
            let (waiting, wait) = match exchanged {
                Ok(answer) => match answer.status {
                    200 => return Ok(answer.body),
                    404 => (Waiting::Pending, self.config.poll_interval),
                    429 => {
                        let wait =
                            retry_after(&answer.headers).unwrap_or(self.config.poll_interval);
                        (Waiting::RateLimited(wait), wait)
                    }
                    400 => return Err(PollError::Refused(body_json(&answer.body), answer.body)),
                    status @ (502..=504) => (
                        Waiting::Transient(format!("HTTP {status}")),
                        self.config.poll_interval,
                    ),
                    status => {
                        return Err(PollError::Failed(status_error(
                            "GET",
                            url,
                            status,
                            &answer.body,
                        )));
                    }
                },
                Err(UrlscanError::Connect { message, .. }) => {
                    (Waiting::Transient(message), self.config.poll_interval)
                }
                Err(UrlscanError::RequestTimeout { seconds, .. }) => (
                    Waiting::Transient(format!("no answer within {seconds} s")),
                    self.config.poll_interval,
                ),
                Err(error) => return Err(PollError::Failed(error)),
            };
            match &waiting {
                Waiting::Transient(problem) => {
                    transient_in_a_row += 1;
                    if transient_in_a_row > MAX_TRANSIENT_IN_A_ROW {
                        return Err(PollError::Failed(UrlscanError::Connect {
                            url: url.to_string(),
                            message: format!("{problem} ({transient_in_a_row} times in a row)"),
                        }));
                    }
                }
                Waiting::Pending | Waiting::RateLimited(_) => transient_in_a_row = 0,
            }
            retry = !matches!(waiting, Waiting::Pending);
            let now = Instant::now();
            if now >= deadline {
                return Err(PollError::Deadline(waiting));
            }
            on_wait(&waiting, now - started);
            // Never sleep past the deadline: the last poll happens right at it.
            sleep_or_cancel(wait.min(deadline - now), cancel)
                .await
                .map_err(PollError::Failed)?;
        }
    }

    /// Sends one request and reads the whole answer, logging method, path, status, attempt
    /// and elapsed time (never headers: they hold the key).
    #[allow(clippy::too_many_arguments)] // Each says something about one request.
    async fn exchange(
        &self,
        method: &'static str,
        url: &str,
        endpoint: &'static str,
        builder: reqwest::RequestBuilder,
        attempt: u32,
        retry: bool,
        cancel: &CancellationToken,
    ) -> Result<Answer, UrlscanError> {
        let started = Instant::now();
        let path = reqwest::Url::parse(url)
            .map(|parsed| parsed.path().to_string())
            .unwrap_or_default();
        let span = tracing::debug_span!(
            "urlscan_request",
            method,
            path,
            attempt,
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        let failed = |error: reqwest::Error| {
            let end = AttemptEnd::from_transport_error(&error);
            (Err(transport_error(method, url, &error)), Some(end))
        };
        let exchange = async {
            let response = match builder.send().await {
                Ok(response) => response,
                Err(error) => return failed(error),
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            match response.bytes().await {
                Ok(body) => (
                    Ok(Answer {
                        status,
                        headers,
                        body: body.to_vec(),
                    }),
                    Some(AttemptEnd::Answered(status)),
                ),
                Err(error) => failed(error),
            }
        };
        let (answer, end) = tokio::select! {
            biased;
            _ = cancel.cancelled() => (Err(UrlscanError::Cancelled), None),
            exchanged = exchange.instrument(span.clone()) => exchanged,
        };
        if let (Some(observer), Some(end)) = (&self.observer, end) {
            observer.attempt_finished(&FinishedAttempt {
                service: Service::Urlscan,
                method,
                endpoint,
                end,
                elapsed: started.elapsed(),
                retry,
            });
        }
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        span.record("elapsed_ms", elapsed_ms);
        let _entered = span.enter();
        match &answer {
            Ok(answer) => {
                span.record("status", answer.status);
                tracing::debug!("urlscan.io answered");
            }
            Err(error) => tracing::debug!(%error, "urlscan.io request failed"),
        }
        answer
    }
}

/// How long past the scan's deadline the screenshot may still take to appear.
pub const SCREENSHOT_GRACE: Duration = Duration::from_secs(30);

/// Each urlscan request may take this long; the scan as a whole has `timeout`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TRANSIENT_IN_A_ROW: u32 = 3;
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// One complete HTTP answer.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// How waiting for a resource ended, before the caller names what it waited for.
enum PollError {
    Deadline(Waiting),
    /// HTTP 400: urlscan's JSON and the raw body.
    Refused(Value, Vec<u8>),
    Failed(UrlscanError),
}

/// One pool per proxy setting for the whole process. Connections are keyed by host, so
/// test servers on different ports never share one.
fn shared_http(config: &UrlscanConfig) -> Result<reqwest::Client, UrlscanError> {
    type Pools = HashMap<(Option<String>, Option<String>), reqwest::Client>;
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    let key = (config.http_proxy.clone(), config.https_proxy.clone());
    let mut pools = POOLS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(client) = pools.get(&key) {
        return Ok(client.clone());
    }
    soar_core::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("soar-urlscanio-rs/", env!("CARGO_PKG_VERSION")))
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(proxy) = &config.http_proxy {
        builder = builder.proxy(reqwest::Proxy::http(proxy).map_err(|error| {
            UrlscanError::Client(format!("http_proxy is not a proxy URL: {error}"))
        })?);
    }
    if let Some(proxy) = &config.https_proxy {
        builder = builder.proxy(reqwest::Proxy::https(proxy).map_err(|error| {
            UrlscanError::Client(format!("https_proxy is not a proxy URL: {error}"))
        })?);
    }
    let client = builder
        .build()
        .map_err(|error| UrlscanError::Client(error_chain(&error)))?;
    pools.insert(key, client.clone());
    Ok(client)
}

fn submission(url: &str, body: &[u8]) -> Result<Submission, UrlscanError> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|error| UrlscanError::InvalidResponse {
            url: url.to_string(),
            problem: format!("the submission answer is not JSON: {error}"),
        })?;
    let message = answer.get("message").and_then(Value::as_str).unwrap_or("");
    if message != SUBMISSION_SUCCESSFUL {
        return Err(UrlscanError::NotSubmitted {
            message: match message {
                "" => "the answer had no message".to_string(),
                other => other.to_string(),
            },
            body: answer,
        });
    }
    let Some(uuid) = answer.get("uuid").and_then(Value::as_str) else {
        return Err(UrlscanError::InvalidResponse {
            url: url.to_string(),
            problem: "the submission answer has no 'uuid'".into(),
        });
    };
    // The uuid goes into URL paths; anything but a plain id would change what is fetched.
    if uuid.is_empty() || !uuid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(UrlscanError::InvalidResponse {
            url: url.to_string(),
            problem: format!("the submission answer's uuid '{uuid}' is not a scan id"),
        });
    }
    let uuid = uuid.to_string();
    let result_page = answer
        .get("result")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Submission {
        uuid,
        result_page,
        answer,
    })
}

/// urlscan's `message` and `description`, or the start of the body when it is not JSON.
fn urlscan_message(json: &Value, raw: &[u8]) -> String {
    let field = |key: &str| {
        json.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match (field("message"), field("description")) {
        (Some(message), Some(description)) => format!("{message}: {description}"),
        (Some(message), None) => message.to_string(),
        (None, Some(description)) => description.to_string(),
        (None, None) => {
            let text = String::from_utf8_lossy(raw);
            let text = text.trim();
            match text.chars().count() {
                0 => "no message".to_string(),
                1..=200 => text.to_string(),
                _ => format!("{}...", text.chars().take(197).collect::<String>()),
            }
        }
    }
}

fn body_json(raw: &[u8]) -> Value {
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into()))
}

fn status_error(method: &'static str, url: &str, status: u16, raw: &[u8]) -> UrlscanError {
    UrlscanError::Status {
        method,
        url: url.to_string(),
        status,
        message: urlscan_message(&body_json(raw), raw),
    }
}

/// `Retry-After`, else `X-Rate-Limit-Reset-After`, in seconds; at least one second so a
/// `0` cannot make a busy loop.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    ["retry-after", "x-rate-limit-reset-after"]
        .into_iter()
        .find_map(|name| {
            let seconds: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
            (seconds.is_finite() && seconds >= 0.0)
                .then(|| Duration::from_secs_f64(seconds.clamp(1.0, 86_400.0)))
        })
}

async fn sleep_or_cancel(wait: Duration, cancel: &CancellationToken) -> Result<(), UrlscanError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(UrlscanError::Cancelled),
        _ = tokio::time::sleep(wait) => Ok(()),
    }
}

fn transport_error(method: &'static str, url: &str, error: &reqwest::Error) -> UrlscanError {
    if error.is_timeout() {
        return UrlscanError::RequestTimeout {
            method,
            url: url.to_string(),
            seconds: REQUEST_TIMEOUT.as_secs(),
        };
    }
    UrlscanError::Connect {
        url: url.to_string(),
        message: error_chain(error),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_public_scan_sends_both_the_old_flag_and_visibility() {
        let request = ScanRequest {
            url: "https://example.com".into(),
            public: true,
            user_agent: Some("UA/1".into()),
            referer: Some("https://ref.example".into()),
        };
        assert_eq!(
            request.body(),
            json!({"url": "https://example.com", "visibility": "public", "public": "on",
                   "customagent": "UA/1", "referer": "https://ref.example"})
        );
    }

    #[test]
    fn a_non_public_scan_is_private_and_sends_no_public_flag() {
        let request = ScanRequest {
            url: "example.com".into(),
            public: false,
            user_agent: None,
            referer: None,
        };
        assert_eq!(
            request.body(),
            json!({"url": "example.com", "visibility": "private"})
        );
    }

    #[test]
    fn retry_after_prefers_retry_after_then_the_rate_limit_header() {
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after", "7"),
                ("x-rate-limit-reset-after", "3")
            ])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers(&[("x-rate-limit-reset-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "0")])),
            Some(Duration::from_secs(1)),
            "a zero wait must not make a busy loop"
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn urlscan_messages_join_message_and_description() {
        let body = json!({"message": "DNS Error - Could not resolve domain",
                          "description": "The domain nx.invalid could not be resolved.", "status": 400});
        assert_eq!(
            urlscan_message(&body, b""),
            "DNS Error - Could not resolve domain: The domain nx.invalid could not be resolved."
        );
        assert_eq!(
            urlscan_message(&Value::Null, b"<html>Bad gateway</html>"),
            "<html>Bad gateway</html>"
        );
        assert_eq!(urlscan_message(&Value::Null, b""), "no message");
    }

    #[test]
    fn a_submission_needs_the_success_message_and_a_plain_uuid() {
        let ok = submission(
            "u",
            br#"{"message": "Submission successful", "uuid": "0196d976-07f6-7aae", "result": "https://r/"}"#,
        )
        .unwrap();
        assert_eq!(ok.uuid, "0196d976-07f6-7aae");
        assert_eq!(ok.result_page.as_deref(), Some("https://r/"));

        let other = submission("u", br#"{"message": "Something else"}"#).unwrap_err();
        assert_eq!(
            other.to_string(),
            "urlscan.io did not accept the URL: Something else"
        );

        let sneaky = submission(
            "u",
            br#"{"message": "Submission successful", "uuid": "../../admin"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(sneaky, UrlscanError::InvalidResponse { .. }),
            "a uuid with path characters must be refused, got {sneaky}"
        );
    }
}
