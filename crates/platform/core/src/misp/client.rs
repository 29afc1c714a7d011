//! [`MispClient`]: the typed MISP calls fn_misp makes, over one pooled reqwest client, with
//! MISP's answers classified into [`MispError`] and safe requests retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::budget::{CallBudget, RequestLimit};
use super::config::without_password;
use super::{
    CertificateCheck, MispConfig, MispError, NewAttribute, NewEvent, NewSighting, RetryClass,
};
use crate::config::ConfigError;
use crate::observe::{AttemptEnd, FinishedAttempt, Service, SharedObserver};

/// The shared MISP client, or a view of it for one call ([`MispClient::for_call`]).
#[derive(Clone)]
pub struct MispClient {
    config: Arc<MispConfig>,
    http: reqwest::Client,
    retry: RetryPolicy,
    max_answer_bytes: usize,
    observer: Option<SharedObserver>,
    /// Set on a call's view only; the shared client waits `timeout` per attempt, no more.
    budget: Option<CallBudget>,
}

/// The largest answer read from MISP. A search for a common value can return hundreds of
/// megabytes; reading stops here instead of exhausting memory, and the call fails with a
/// message that says to narrow the search (the runner's result limit is far below this).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// How long to wait between attempts of a request that is safe to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first back-off; each later one doubles, with jitter.
    pub base_delay: Duration,
    /// No back-off is longer than this.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this ends the retries instead of waiting.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// 0.5 s doubling to at most 10 s; a server asking for more than 60 s is not waited for.
    pub const STANDARD: RetryPolicy = RetryPolicy {
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(10),
        max_retry_after: Duration::from_secs(60),
    };
}

/// A MISP endpoint the client calls, named so that an answer can be read without a request
/// ([`read_answer`], which the fuzz targets use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /events/add`
    AddEvent,
    /// `GET /events/view`
    GetEvent,
    /// `POST /attributes/add`
    AddAttribute,
    /// `POST /events/restSearch`
    SearchEvents,
    /// `POST /attributes/restSearch`
    SearchAttributes,
    /// `POST /sightings/add`
    AddSighting,
    /// `POST /sightings/listSightings`
    ListSightings,
    /// `POST /tags/attachTagToObject`
    AttachTag,
    /// `GET /servers/getVersion`
    Version,
    /// `GET /users/view/me`
    Me,
}

/// An `events/restSearch` answer with MISP's count of the events the filters match.
#[derive(Debug, Clone, PartialEq)]
pub struct CountedEvents {
    /// The list of `{"Event": …}`, `{"response": …}` unwrapped.
    pub events: Value,
    /// MISP's `X-Result-Count` header: with `limit`, every match on every page; `None` when
    /// the answer had none (an older MISP, or a proxy that drops headers).
    pub result_count: Option<u64>,
}

/// Whether a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Reads and searches: repeating cannot change anything.
    Safe,
    /// Creates: a lost answer does not mean MISP did not act.
    Never,
}

/// A request as its attempts send it.
struct PreparedRequest<'a> {
    method: &'a Method,
    url: reqwest::Url,
    /// The URL's path, for messages.
    path: String,
    /// The path with ids replaced, for the observer.
    template: String,
    body: Option<&'a Value>,
    /// The most attempts it may get, for messages.
    attempts: u32,
    repeat: Repeat,
}

impl std::fmt::Debug for MispClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MispClient")
            .field("config", &self.config)
            .field("retry", &self.retry)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl MispClient {
    pub fn new(config: MispConfig) -> Result<MispClient, MispError> {
        crate::tls::install_crypto_provider();
        let mut headers = HeaderMap::new();
        let mut authorization = HeaderValue::from_str(config.key.expose()).map_err(|_| {
            // Not echoing the value: it is the key.
            MispError::Config(ConfigError::Parse {
                origin: "[fn_misp]".to_string(),
                message: "misp_key contains characters that cannot go in an HTTP header"
                    .to_string(),
            })
        })?;
        authorization.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, authorization);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );

        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("soar-misp-rs/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // A redirect means MISP took us for a browser (login page); say so instead.
            .redirect(reqwest::redirect::Policy::none());
        match &config.certificate_check {
            CertificateCheck::System => {}
            CertificateCheck::CaFile(path) => {
                let pem = std::fs::read(path).map_err(|error| {
                    MispError::Config(ConfigError::Read {
                        origin: path.display().to_string(),
                        message: error.to_string(),
                    })
                })?;
                let certificates =
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                        MispError::Config(ConfigError::Parse {
                            origin: path.display().to_string(),
                            message: format!("not a PEM CA bundle: {error}"),
                        })
                    })?;
                if certificates.is_empty() {
                    return Err(MispError::Config(ConfigError::Parse {
                        origin: path.display().to_string(),
                        message: "holds no PEM certificate".to_string(),
                    }));
                }
                builder = builder.tls_certs_only(certificates);
            }
            CertificateCheck::Off => {
                tracing::warn!(
                    url = %without_password(config.url.as_str()),
                    "verify_cert=false: MISP's certificate is not checked"
                );
                builder = builder.tls_danger_accept_invalid_certs(true);
            }
        }
        if let Some(proxy) = &config.http_proxy {
            builder = builder.proxy(
                reqwest::Proxy::http(proxy).map_err(|error| proxy_error("http_proxy", error))?,
            );
        }
        if let Some(proxy) = &config.https_proxy {
            builder = builder.proxy(
                reqwest::Proxy::https(proxy).map_err(|error| proxy_error("https_proxy", error))?,
            );
        }
        let http = builder.build().map_err(|error| {
            MispError::Config(ConfigError::Parse {
                origin: "[fn_misp]".to_string(),
                message: format!("cannot build the HTTP client: {}", error_chain(&error)),
            })
        })?;
        Ok(MispClient {
            config: Arc::new(config),
            http,
            retry: RetryPolicy::STANDARD,
            max_answer_bytes: MAX_ANSWER_BYTES,
            observer: None,
            budget: None,
        })
    }

    /// A view of this client for one call, sharing its connections: from now on, the call's
    /// requests, retries and back-offs all end within `call_timeout`. Each request waits
    /// `timeout` or what is left, whichever is less; a retry that could not start in time is
    /// not made, and once the time is spent nothing more is sent.
    pub fn for_call(&self) -> MispClient {
        MispClient {
            budget: Some(CallBudget::starting_at(
                tokio::time::Instant::now(),
                self.config.call_timeout,
            )),
            ..self.clone()
        }
    }

    /// The same client, telling `observer` of every attempt of every request (the runner's
    /// metrics and readiness check).
    pub fn with_observer(mut self, observer: SharedObserver) -> MispClient {
        self.observer = Some(observer);
        self
    }

    /// The same client with other back-off delays (tests use short ones).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> MispClient {
        self.retry = retry;
        self
    }

    /// Sets the largest answer read (tests use a small one).
    pub fn with_max_answer_bytes(mut self, max_answer_bytes: usize) -> MispClient {
        self.max_answer_bytes = max_answer_bytes;
        self
    }

    pub fn config(&self) -> &MispConfig {
        &self.config
    }

    /// `POST /events/add`; MISP's `{"Event": …}`.
    pub async fn add_event(&self, event: &NewEvent) -> Result<Value, MispError> {
        let mut fields = Map::new();
        fields.insert("info".to_string(), json!(event.info));
        // PyMISP sends these as strings; MISP fills in its defaults for absent ones.
        for (name, value) in [
            ("distribution", event.distribution),
            ("threat_level_id", event.threat_level_id),
            ("analysis", event.analysis),
        ] {
            if let Some(value) = value {
                fields.insert(name.to_string(), json!(value.to_string()));
            }
        }
        let body = json!({"Event": fields});
        let answer = self
            .call(Method::POST, &["events", "add"], Some(&body), Repeat::Never)
            .await?;
        Endpoint::AddEvent.check_shape(&answer)?;
        Ok(answer)
    }

    /// `GET /events/view/{id}`; MISP's `{"Event": …}`.
    pub async fn get_event(&self, event_id: &str) -> Result<Value, MispError> {
        let answer = self
            .call(
                Method::GET,
                &["events", "view", event_id],
                None,
                Repeat::Safe,
            )
            .await?;
        Endpoint::GetEvent.check_shape(&answer)?;
        Ok(answer)
    }

    /// `POST /attributes/add/{event}` (id or uuid); MISP's `{"Attribute": …}`.
    pub async fn add_attribute(
        &self,
        event: &str,
        attribute: &NewAttribute,
    ) -> Result<Value, MispError> {
        let body = json!({"type": attribute.attribute_type, "value": attribute.value});
        let answer = self
            .call(
                Method::POST,
                &["attributes", "add", event],
                Some(&body),
                Repeat::Never,
            )
            .await?;
        Endpoint::AddAttribute.check_shape(&answer)?;
        Ok(answer)
    }

    /// `POST /events/restSearch` with `query` (`returnFormat: json` is added); the list of
    /// `{"Event": …}`, `{"response": …}` unwrapped. Retried: searches are safe to repeat.
    pub async fn search_events(&self, query: Value) -> Result<Value, MispError> {
        let body = with_json_format(query);
        let answer = self
            .call(
                Method::POST,
                &["events", "restSearch"],
                Some(&body),
                Repeat::Safe,
            )
            .await?;
        Endpoint::SearchEvents.check_shape(&answer)?;
        Ok(answer)
    }

    /// [`MispClient::search_events`], keeping MISP's count of every match, which a page of
    /// results (`limit`, `page`) does not show.
    pub async fn search_events_counted(&self, query: Value) -> Result<CountedEvents, MispError> {
        let body = with_json_format(query);
        let (events, headers) = self
            .call_with_headers(
                Method::POST,
                &["events", "restSearch"],
                Some(&body),
                Repeat::Safe,
            )
            .await?;
        Endpoint::SearchEvents.check_shape(&events)?;
        Ok(CountedEvents {
            events,
            result_count: result_count(&headers),
        })
    }

    /// `POST /attributes/restSearch`; `{"Attribute": [...]}` with `response` unwrapped.
    pub async fn search_attributes(&self, query: Value) -> Result<Value, MispError> {
        let body = with_json_format(query);
        let answer = self
            .call(
                Method::POST,
                &["attributes", "restSearch"],
                Some(&body),
                Repeat::Safe,
            )
            .await?;
        Endpoint::SearchAttributes.check_shape(&answer)?;
        Ok(answer)
    }

    /// `POST /sightings/add`; MISP's `{"Sighting": …}`. An HTTP-200 "Could not add the
    /// Sighting" is `MispError::Rejected`.
    pub async fn add_sighting(&self, sighting: &NewSighting) -> Result<Value, MispError> {
        // The timestamp as a digit string, as MISP's API document types it; PyMISP sends a
        // number, and MISP takes either (its Sighting model only checks `numeric`).
        let body = json!({
            "value": sighting.value,
            "timestamp": sighting.timestamp.to_string(),
            "source": sighting.source,
        });
        let answer = self
            .call(
                Method::POST,
                &["sightings", "add"],
                Some(&body),
                Repeat::Never,
            )
            .await?;
        Endpoint::AddSighting.check_shape(&answer)?;
        Ok(answer)
    }

    /// `POST /sightings/listSightings` `{"context": "event", "id": N}`.
    pub async fn list_event_sightings(&self, event_id: i64) -> Result<Value, MispError> {
        let body = json!({"context": "event", "id": event_id});
        let answer = self
            .call(
                Method::POST,
                &["sightings", "listSightings"],
                Some(&body),
                Repeat::Safe,
            )
            .await?;
        Endpoint::ListSightings.check_shape(&answer)?;
        Ok(answer)
    }

    /// `POST /tags/attachTagToObject` `{"uuid", "tag", "local"}`.
    pub async fn attach_tag(&self, uuid: &str, tag: &str, local: bool) -> Result<Value, MispError> {
        let body = json!({"uuid": uuid, "tag": tag, "local": local});
        let answer = self
            .call(
                Method::POST,
                &["tags", "attachTagToObject"],
                Some(&body),
                Repeat::Never,
            )
            .await?;
        Endpoint::AttachTag.check_shape(&answer)?;
        Ok(answer)
    }

    /// `GET /servers/getVersion`.
    pub async fn get_version(&self) -> Result<Value, MispError> {
        let answer = self
            .call(Method::GET, &["servers", "getVersion"], None, Repeat::Safe)
            .await?;
        Endpoint::Version.check_shape(&answer)?;
        Ok(answer)
    }

    /// `GET /users/view/me`: the key's user with its `Role`.
    pub async fn get_me(&self) -> Result<Value, MispError> {
        let answer = self
            .call(Method::GET, &["users", "view", "me"], None, Repeat::Safe)
            .await?;
        Endpoint::Me.check_shape(&answer)?;
        Ok(answer)
    }

    /// A request to an endpoint without a typed call here, for function crates: `segments`
    /// is the path below MISP's base URL, each segment percent-encoded. A `Safe` request is
    /// retried after transient failures; a `Never` one is sent once (see
    /// [`MispClient::change_checked`] for changes that may be retried).
    pub async fn request(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Value, MispError> {
        self.call(method, segments, body, repeat).await
    }

    /// Sends a change that must not be applied twice. After a failure that a repeat could
    /// cure (connection, timeout, 502/503/504, 429), it first asks `already_done` whether MISP
    /// applied the change anyway (the answer was lost, not the request): `Some(answer)` ends
    /// with that answer, `None` sends the change again, up to `retries` more times.
    pub async fn change_checked<Check, Checked>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        already_done: Check,
    ) -> Result<Value, MispError>
    where
        Check: Fn() -> Checked,
        Checked: std::future::Future<Output = Result<Option<Value>, MispError>>,
    {
        let attempts = self.config.retries.saturating_add(1);
        let request = self.prepare(&method, segments, body, attempts, Repeat::Never);
        let mut attempt = 1;
        let mut error = match self.attempt_in_budget(&request, attempt).await {
            Ok((answer, _)) => return Ok(answer),
            Err(error) => error,
        };
        loop {
            if attempt >= attempts {
                return Err(error);
            }
            let delay = self.retry_delay_in_budget(error, &request, attempt)?;
            tracing::info!(
                method = %method,
                segments = ?segments,
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "checking whether MISP applied a change before sending it again"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
            // A check that fails for a transient reason counts as an attempt, like the change.
            match already_done().await {
                Ok(Some(answer)) => return Ok(answer),
                Ok(None) => {}
                Err(MispError::BudgetSpent { budget, detail }) => {
                    // Neither sent again nor known to be applied: say so.
                    return Err(MispError::BudgetSpent {
                        budget,
                        detail: format!(
                            "{detail}; whether MISP applied {method} {} is unknown (its answer was lost), so it was not sent again",
                            request.path
                        ),
                    });
                }
                Err(check_error) => {
                    error = check_error;
                    continue;
                }
            }
            // Sent as attempt `attempt`, so that the observer counts it as a retry.
            error = match self.attempt_in_budget(&request, attempt).await {
                Ok((answer, _)) => return Ok(answer),
                Err(error) => error,
            };
        }
    }

    /// Sends a request, repeating it after transient failures when `repeat` allows.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Value, MispError> {
        self.call_with_headers(method, segments, body, repeat)
            .await
            .map(|(answer, _)| answer)
    }

    /// [`MispClient::call`], also handing back the answer's headers.
    async fn call_with_headers(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<(Value, HeaderMap), MispError> {
        let attempts = match repeat {
            Repeat::Safe => self.config.retries.saturating_add(1),
            Repeat::Never => 1,
        };
        let request = self.prepare(&method, segments, body, attempts, repeat);
        let mut attempt = 1;
        loop {
            let error = match self.attempt_in_budget(&request, attempt).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if attempt >= attempts {
                return Err(error);
            }
            let delay = self.retry_delay_in_budget(error, &request, attempt)?;
            tracing::info!(
                method = %method,
                path = %request.path,
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "retrying MISP request"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn prepare<'a>(
        &self,
        method: &'a Method,
        segments: &[&str],
        body: Option<&'a Value>,
        attempts: u32,
        repeat: Repeat,
    ) -> PreparedRequest<'a> {
        let url = self.endpoint(segments);
        PreparedRequest {
            method,
            path: url.path().to_string(),
            url,
            template: crate::observe::misp_endpoint_template(segments),
            body,
            attempts,
            repeat,
        }
    }

    /// One attempt, within the call's budget when it has one: not sent when nothing is left,
    /// and a timeout the budget set is the budget's error.
    async fn attempt_in_budget(
        &self,
        request: &PreparedRequest<'_>,
        attempt: u32,
    ) -> Result<(Value, HeaderMap), MispError> {
        let limit = match self.budget {
            None => RequestLimit::unbudgeted(self.config.timeout),
            Some(budget) => {
                match budget.request_limit(self.config.timeout, tokio::time::Instant::now()) {
                    Some(limit) => limit,
                    None => {
                        return Err(self.budget_spent(
                            budget,
                            format!(
                                "{} {} was not sent (attempt {attempt} of {})",
                                request.method, request.path, request.attempts
                            ),
                        ));
                    }
                }
            }
        };
        let outcome = self.attempt(request, attempt, limit.timeout).await;
        match (outcome, self.budget) {
            (Err(MispError::Timeout { .. }), Some(budget)) if limit.cut_by_budget => {
                let applied = match request.repeat {
                    Repeat::Safe => "",
                    Repeat::Never => "; MISP may have applied it",
                };
                Err(self.budget_spent(
                    budget,
                    format!(
                        "{} {} had no answer when it ran out (attempt {attempt} of {}){applied}",
                        request.method, request.path, request.attempts
                    ),
                ))
            }
            (outcome, _) => outcome,
        }
    }

    /// The back-off before retrying after `error`, or the error to end with: `error` itself
    /// when it is not worth a retry, the budget's when the retry would start too late.
    fn retry_delay_in_budget(
        &self,
        error: MispError,
        request: &PreparedRequest<'_>,
        attempt: u32,
    ) -> Result<Duration, MispError> {
        let Some(delay) = self.delay_before_retry(&error, attempt) else {
            return Err(error);
        };
        match self.budget {
            Some(budget) if !budget.allows_retry_after(delay, tokio::time::Instant::now()) => {
                Err(self.budget_spent(
                    budget,
                    format!(
                        "{} {} failed (attempt {attempt} of {}) and a retry could not start in time: {error}",
                        request.method, request.path, request.attempts
                    ),
                ))
            }
            _ => Ok(delay),
        }
    }

    fn budget_spent(&self, budget: CallBudget, detail: String) -> MispError {
        tracing::info!(
            budget_ms = u64::try_from(budget.total().as_millis()).unwrap_or(u64::MAX),
            detail = %detail,
            "the call's time for MISP ran out"
        );
        MispError::BudgetSpent {
            budget: budget.total(),
            detail,
        }
    }

    async fn attempt(
        &self,
        request: &PreparedRequest<'_>,
        attempt: u32,
        timeout: Duration,
    ) -> Result<(Value, HeaderMap), MispError> {
        let PreparedRequest {
            method,
            url,
            path,
            template,
            body,
            ..
        } = request;
        let (path, template) = (path.as_str(), template.as_str());
        let span = tracing::debug_span!(
            "misp_request",
            method = %method,
            path = %path,
            attempt,
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        async {
            let mut request = self
                .http
                .request((*method).clone(), url.clone())
                .timeout(timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = match request.send().await {
                Ok(mut response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let mut bytes = Vec::new();
                    loop {
                        match response.chunk().await {
                            Ok(Some(chunk)) if bytes.len() + chunk.len() > self.max_answer_bytes => {
                                let end = AttemptEnd::Answered(status.as_u16());
                                self.observe(method, template, end, started, attempt);
                                return Err(MispError::InvalidResponse {
                                    path: path.to_string(),
                                    problem: format!(
                                        "the answer is larger than {} MiB; narrow the request (a search for a very common value, for instance)",
                                        self.max_answer_bytes / (1024 * 1024)
                                    ),
                                });
                            }
                            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                            Ok(None) => break Ok((status, headers, bytes::Bytes::from(bytes))),
                            Err(error) => break Err(error),
                        }
                    }
                }
                Err(error) => Err(error),
            };
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::Span::current().record("elapsed_ms", elapsed_ms);
            let end = match &outcome {
                Ok((status, _, _)) => AttemptEnd::Answered(status.as_u16()),
                Err(error) => AttemptEnd::from_transport_error(error),
            };
            self.observe(method, template, end, started, attempt);
            match outcome {
                Ok((status, headers, bytes)) => {
                    tracing::Span::current().record("status", status.as_u16());
                    tracing::debug!(status = status.as_u16(), elapsed_ms, "MISP answered");
                    self.interpret(method, path, status, &headers, &bytes)
                        .map(|answer| (answer, headers))
                }
                Err(error) => {
                    let error = self.transport_error(method, path, &error);
                    tracing::debug!(elapsed_ms, error = %error, "MISP request failed");
                    Err(error)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Tells the observer, if any, how an attempt ended.
    fn observe(
        &self,
        method: &Method,
        template: &str,
        end: AttemptEnd,
        started: Instant,
        attempt: u32,
    ) {
        if let Some(observer) = &self.observer {
            observer.attempt_finished(&FinishedAttempt {
                service: Service::Misp,
                method: method.as_str(),
                endpoint: template,
                end,
                elapsed: started.elapsed(),
                retry: attempt > 1,
            });
        }
    }

    /// Turns MISP's answer into the body or the error it stands for.
    fn interpret(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        headers: &HeaderMap,
        bytes: &[u8],
    ) -> Result<Value, MispError> {
        interpret(
            self.config.key.expose(),
            method,
            path,
            status,
            headers,
            bytes,
        )
    }

    fn transport_error(&self, method: &Method, path: &str, error: &reqwest::Error) -> MispError {
        if error.is_timeout() {
            return MispError::Timeout {
                method: method.to_string(),
                path: path.to_string(),
                seconds: self.config.timeout.as_secs(),
            };
        }
        MispError::Connect {
            url: without_password(self.config.url.as_str()),
            message: self.redact(&error_chain(error)),
        }
    }

    fn delay_before_retry(&self, error: &MispError, attempt: u32) -> Option<Duration> {
        match error.retry_class() {
            RetryClass::Permanent => None,
            RetryClass::Transient | RetryClass::Throttled(None) => Some(self.backoff(attempt)),
            RetryClass::Throttled(Some(wait)) if wait <= self.retry.max_retry_after => Some(wait),
            RetryClass::Throttled(Some(_)) => None,
        }
    }

    /// Exponential back-off with "equal jitter": half fixed, half random, so that many
    /// runners failing together do not retry in step.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let full = self
            .retry
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.retry.max_delay);
        let half = full / 2;
        half + half.mul_f64(fastrand::f64())
    }

    fn endpoint(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.config.url.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            // Keeps a base path such as `/misp/`; each segment is percent-encoded.
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Removes the key from text that came from elsewhere, in case a server echoes it.
    fn redact(&self, text: &str) -> String {
        redact(self.config.key.expose(), text)
    }
}

impl Endpoint {
    pub const ALL: [Endpoint; 10] = [
        Endpoint::AddEvent,
        Endpoint::GetEvent,
        Endpoint::AddAttribute,
        Endpoint::SearchEvents,
        Endpoint::SearchAttributes,
        Endpoint::AddSighting,
        Endpoint::ListSightings,
        Endpoint::AttachTag,
        Endpoint::Version,
        Endpoint::Me,
    ];

    /// The path, without MISP's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::AddEvent => "/events/add",
            Endpoint::GetEvent => "/events/view",
            Endpoint::AddAttribute => "/attributes/add",
            Endpoint::SearchEvents => "/events/restSearch",
            Endpoint::SearchAttributes => "/attributes/restSearch",
            Endpoint::AddSighting => "/sightings/add",
            Endpoint::ListSightings => "/sightings/listSightings",
            Endpoint::AttachTag => "/tags/attachTagToObject",
            Endpoint::Version => "/servers/getVersion",
            Endpoint::Me => "/users/view/me",
        }
    }

    fn method(self) -> Method {
        match self {
            Endpoint::AddEvent => Method::POST,
            Endpoint::GetEvent => Method::GET,
            Endpoint::AddAttribute => Method::POST,
            Endpoint::SearchEvents => Method::POST,
            Endpoint::SearchAttributes => Method::POST,
            Endpoint::AddSighting => Method::POST,
            Endpoint::ListSightings => Method::POST,
            Endpoint::AttachTag => Method::POST,
            Endpoint::Version => Method::GET,
            Endpoint::Me => Method::GET,
        }
    }

    /// Checks that `answer` has the fields the functions rely on.
    fn check_shape(self, answer: &Value) -> Result<(), MispError> {
        let path = self.path();
        match self {
            Endpoint::AddEvent => check_shape::<EventEnvelope>(path, answer),
            Endpoint::GetEvent => check_shape::<EventEnvelope>(path, answer),
            Endpoint::AddAttribute => check_shape::<AttributeEnvelope>(path, answer),
            Endpoint::SearchEvents => check_shape::<Vec<EventEnvelope>>(path, answer),
            Endpoint::SearchAttributes => check_shape::<AttributeList>(path, answer),
            Endpoint::AddSighting => check_shape::<Map<String, Value>>(path, answer),
            Endpoint::ListSightings => check_shape::<Vec<SightingEnvelope>>(path, answer),
            Endpoint::AttachTag => check_shape::<Map<String, Value>>(path, answer),
            Endpoint::Version => check_shape::<Version>(path, answer),
            Endpoint::Me => check_shape::<Me>(path, answer),
        }
    }
}

/// Reads an answer MISP gave to `endpoint` exactly as the client does: the status, the soft
/// errors, the `response` wrapper, the shape the functions rely on, and `key` removed from
/// anything MISP said. Header names or values that HTTP would not carry are skipped.
pub fn read_answer(
    endpoint: Endpoint,
    key: &str,
    status: u16,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<Value, MispError> {
    let Ok(status) = StatusCode::from_u16(status) else {
        return Err(MispError::InvalidResponse {
            path: endpoint.path().to_string(),
            problem: format!("HTTP status {status} is not a status"),
        });
    };
    let mut header_map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            header_map.append(name, value);
        }
    }
    let answer = interpret(
        key,
        &endpoint.method(),
        endpoint.path(),
        status,
        &header_map,
        body,
    )?;
    endpoint.check_shape(&answer)?;
    Ok(answer)
}

/// Turns MISP's answer into the body or the error it stands for; `key` is removed from
/// everything MISP said, in case it echoes it.
fn interpret(
    key: &str,
    method: &Method,
    path: &str,
    status: StatusCode,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Value, MispError> {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok().map(|mut body| {
        redact_json(key, bytes, &mut body);
        body
    });
    // Only errors quote the body, so a good answer never pays for the excerpt. Redacted
    // before it is cut, so that no part of an echoed key survives the cut.
    let text = || excerpt(redact(key, &String::from_utf8_lossy(bytes)).as_bytes());
    let message_of = |body: Option<&Value>| body.and_then(misp_message).unwrap_or_else(text);
    let code = status.as_u16();
    let rejected = |body: Option<Value>| MispError::Rejected {
        method: method.to_string(),
        path: path.to_string(),
        status: code,
        message: message_of(body.as_ref()),
        body: body.unwrap_or_else(|| Value::String(text())),
    };
    match code {
        200..=299 => {
            let Some(body) = parsed else {
                // A proxy may put anything in the header, the key included.
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .map(|content_type| excerpt(redact(key, content_type).as_bytes()))
                    .unwrap_or_else(|| "no content type".to_string());
                return Err(MispError::InvalidResponse {
                    path: path.to_string(),
                    problem: format!("expected JSON, got {content_type}: {}", text()),
                });
            };
            if is_soft_error(&body) {
                return Err(rejected(Some(body)));
            }
            Ok(unwrap_response(body))
        }
        300..=399 => {
            let location = headers
                .get(header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(|location| redact(key, location))
                .unwrap_or_else(|| "nowhere".to_string());
            Err(MispError::InvalidResponse {
                path: path.to_string(),
                problem: format!(
                    "MISP redirected (HTTP {code}) to {location}; is misp_url the MISP base URL and does a proxy keep the Accept header?"
                ),
            })
        }
        // A saveFail envelope is a refusal of the content, not of the caller.
        401 | 403
            if parsed
                .as_ref()
                .is_some_and(|body| body.get("saved") == Some(&Value::Bool(false))) =>
        {
            Err(rejected(parsed))
        }
        401 | 403 => Err(MispError::Forbidden {
            method: method.to_string(),
            path: path.to_string(),
            status: code,
            message: message_of(parsed.as_ref()),
        }),
        404 => Err(MispError::NotFound {
            path: path.to_string(),
            message: message_of(parsed.as_ref()),
        }),
        429 => Err(MispError::RateLimited {
            path: path.to_string(),
            retry_after: retry_after(headers),
        }),
        500..=599 => Err(MispError::Server {
            method: method.to_string(),
            path: path.to_string(),
            status: code,
            message: message_of(parsed.as_ref()),
        }),
        _ => Err(rejected(parsed)),
    }
}

/// Removes `key` from text that came from elsewhere, in case a server echoes it.
fn redact(key: &str, text: &str) -> String {
    if key.is_empty() {
        text.to_string()
    } else {
        text.replace(key, "<redacted>")
    }
}

/// Removes `key` from every string (and object key) of MISP's JSON, which may reach a reply.
/// `raw` is the text the value was parsed from: when the key cannot hide in it, the walk over
/// the value is skipped, which is what happens for nearly every answer.
fn redact_json(key: &str, raw: &[u8], value: &mut Value) {
    if key.is_empty() {
        return;
    }
    let finder = memchr::memmem::Finder::new(key.as_bytes());
    // A JSON string holds the key either literally or with escapes. Without `\u` escapes in
    // the text, only the characters of JSON's short escapes can be written another way.
    let may_be_escaped = key.contains(['"', '\\', '/', '\u{8}', '\u{c}', '\n', '\r', '\t'])
        || memchr::memmem::find(raw, b"\\u").is_some();
    if finder.find(raw).is_none() && !may_be_escaped {
        return;
    }
    redact_walk(key, &finder, value);
}

fn redact_walk(key: &str, finder: &memchr::memmem::Finder<'_>, value: &mut Value) {
    match value {
        Value::String(text) => {
            if finder.find(text.as_bytes()).is_some() {
                *text = redact(key, text);
            }
        }
        Value::Array(items) => {
            for item in items {
                redact_walk(key, finder, item);
            }
        }
        Value::Object(fields) => {
            if fields
                .keys()
                .any(|name| finder.find(name.as_bytes()).is_some())
            {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(name, item)| (redact(key, &name), item))
                    .collect();
            }
            for item in fields.values_mut() {
                redact_walk(key, finder, item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[derive(Deserialize)]
struct EventEnvelope {
    #[serde(rename = "Event")]
    _event: Identified,
}

#[derive(Deserialize)]
struct AttributeEnvelope {
    #[serde(rename = "Attribute")]
    _attribute: Identified,
}

#[derive(Deserialize)]
struct AttributeList {
    #[serde(rename = "Attribute")]
    _attributes: Vec<Identified>,
}

#[derive(Deserialize)]
struct SightingEnvelope {
    #[serde(rename = "Sighting")]
    _sighting: Identified,
}

#[derive(Deserialize)]
struct Identified {
    #[serde(rename = "id")]
    _id: IdText,
}

/// MISP sends ids as strings; some versions and proxies send numbers.
#[derive(Deserialize)]
#[allow(dead_code)] // Only the shape is checked; the caller gets the raw JSON.
#[serde(untagged)]
enum IdText {
    Text(String),
    Number(u64),
}

#[derive(Deserialize)]
struct Version {
    #[serde(rename = "version")]
    _version: String,
}

#[derive(Deserialize)]
struct Me {
    #[serde(rename = "User")]
    _user: Identified,
    #[serde(rename = "Role")]
    _role: Map<String, Value>,
}

/// Checks that `answer` has the fields the functions rely on, naming the JSON path that
/// does not; `path` is the endpoint's, for the message.
pub fn check_shape<T: serde::de::DeserializeOwned>(
    path: &str,
    answer: &Value,
) -> Result<(), MispError> {
    serde_path_to_error::deserialize::<_, T>(answer)
        .map(|_| ())
        .map_err(|error| MispError::InvalidResponse {
            path: path.to_string(),
            problem: format!("unexpected shape at {}: {}", error.path(), error.inner()),
        })
}

fn with_json_format(query: Value) -> Value {
    match query {
        Value::Object(mut fields) => {
            fields
                .entry("returnFormat")
                .or_insert_with(|| json!("json"));
            Value::Object(fields)
        }
        other => other,
    }
}

/// MISP reports some failures with HTTP 200: `{"saved": false, …}` from the tag endpoints and
/// `{"message": "Could not add the Sighting. Reason: …"}` from `sightings/add`.
fn is_soft_error(body: &Value) -> bool {
    let Value::Object(fields) = body else {
        return false;
    };
    match fields.get("saved") {
        Some(Value::Bool(false)) => return true,
        // A saveSuccess envelope may say anything in `message`.
        Some(Value::Bool(true)) => return false,
        _ => {}
    }
    let message = fields.get("message").and_then(Value::as_str);
    let has_payload = fields
        .keys()
        .any(|key| key.starts_with(|first: char| first.is_ascii_uppercase()) || key == "response");
    !has_payload && message.is_some_and(|message| message.starts_with("Could not"))
}

fn unwrap_response(body: Value) -> Value {
    match body {
        Value::Object(mut fields)
            if fields.get("response").is_some_and(|inner| !inner.is_null()) =>
        {
            fields.remove("response").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// MISP's own words: `message`, else `name`, else a string `errors`.
fn misp_message(body: &Value) -> Option<String> {
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    };
    let mut message = text("message").or_else(|| text("name"))?;
    match body.get("errors") {
        Some(Value::String(errors)) if !errors.is_empty() => {
            message = format!("{message}: {errors}");
        }
        Some(errors @ Value::Object(_)) => message = format!("{message}: {errors}"),
        _ => {}
    }
    Some(message)
}

/// MISP's `X-Result-Count`, when it is a number.
fn result_count(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("x-result-count")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
}

/// `Retry-After` in seconds, else MISP's `X-Rate-Limit-Reset` (seconds until the reset).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    ["retry-after", "x-rate-limit-reset"]
        .iter()
        .find_map(|name| {
            headers
                .get(*name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        })
}

/// The start of a body, on one line, for error messages.
fn excerpt(bytes: &[u8]) -> String {
    const LIMIT: usize = 200;
    let text = String::from_utf8_lossy(bytes);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "(empty body)".to_string();
    }
    match flat.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn proxy_error(key: &str, error: reqwest::Error) -> MispError {
    MispError::Config(ConfigError::Parse {
        origin: "[fn_misp]".to_string(),
        message: format!("{key} is not a proxy URL: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sighting_failure_with_http_200_is_a_soft_error() {
        let body =
            json!({"message": "Could not add the Sighting. Reason: No valid attributes found."});
        assert!(is_soft_error(&body));
        assert!(is_soft_error(
            &json!({"saved": false, "errors": "Invalid Tag."})
        ));
        assert!(!is_soft_error(&json!({"Sighting": {"id": "1"}})));
        assert!(!is_soft_error(
            &json!({"saved": true, "message": "Could not be happier"})
        ));
        assert!(!is_soft_error(&json!({"message": "Sighting added"})));
    }

    #[test]
    fn the_response_wrapper_is_removed_only_when_it_holds_something() {
        assert_eq!(unwrap_response(json!({"response": [1]})), json!([1]));
        assert_eq!(
            unwrap_response(json!({"response": null, "x": 1})),
            json!({"response": null, "x": 1})
        );
    }

    #[test]
    fn misp_messages_include_string_and_object_errors() {
        let save_fail = json!({"saved": false, "name": "Could not add Attribute", "message": "Could not add Attribute", "errors": {"value": ["A similar attribute already exists for this event."]}});
        let message = misp_message(&save_fail).expect("a message");
        assert!(
            message.starts_with("Could not add Attribute: "),
            "{message}"
        );
        assert!(
            message.contains("A similar attribute already exists"),
            "{message}"
        );
    }

    #[test]
    fn the_result_count_is_read_when_it_is_a_number() {
        let mut headers = HeaderMap::new();
        assert_eq!(result_count(&headers), None);
        headers.insert("x-result-count", HeaderValue::from_static("many"));
        assert_eq!(result_count(&headers), None);
        headers.insert("x-result-count", HeaderValue::from_static(" 1234"));
        assert_eq!(result_count(&headers), Some(1234));
    }

    #[test]
    fn retry_after_prefers_the_standard_header_then_misps() {
        let mut headers = HeaderMap::new();
        headers.insert("x-rate-limit-reset", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
    }

    /// Found by the misp_response fuzz target: the key echoed in `Content-Type` of a
    /// non-JSON answer came back in the error.
    #[test]
    fn a_key_echoed_in_any_part_of_an_answer_never_comes_back() {
        const KEY: &str = "FuzzMispKey0123456789abcdefghijklmnopqrs";
        let padded = format!("{}{KEY}", "p".repeat(190));
        let json_echo = format!(
            r#"{{"saved": false, "message": "Could not add {KEY}", "errors": {{"{KEY}": ["{KEY}"]}}}}"#
        );
        type Headers<'a> = Vec<(&'a str, &'a [u8])>;
        let cases: Vec<(u16, Headers, String)> = vec![
            (200, vec![("content-type", KEY.as_bytes())], "<html>".into()),
            (200, vec![("content-type", b"text/html")], padded.clone()),
            (500, vec![], padded.clone()),
            (302, vec![("location", KEY.as_bytes())], String::new()),
            (400, vec![], json_echo.clone()),
            (200, vec![], json_echo.clone()),
            (403, vec![], json_echo),
        ];
        for (status, headers, body) in cases {
            for endpoint in Endpoint::ALL {
                let shown = match read_answer(endpoint, KEY, status, &headers, body.as_bytes()) {
                    Ok(value) => value.to_string(),
                    Err(error) => format!("{error} {error:?}"),
                };
                assert!(
                    !shown.contains(KEY) && !shown.contains(&KEY[..20]),
                    "{endpoint:?} {status}: the key came back in {shown}"
                );
            }
        }
    }

    #[test]
    fn a_key_written_with_json_escapes_is_still_redacted() {
        const KEY: &str = "AbcKey0123456789abcdefghijklmnopqrstuvwx";
        // `A` written as \u0041: the raw text never holds the key literally.
        let escaped = format!("\\u0041{}", &KEY[1..]);
        let raw = format!(r#"{{"Attribute": [{{"value": "{escaped}", "{escaped}": 1}}]}}"#);
        let mut value: Value = serde_json::from_str(&raw).unwrap();
        assert!(value.to_string().contains(KEY));
        redact_json(KEY, raw.as_bytes(), &mut value);
        assert_eq!(
            value,
            json!({"Attribute": [{"value": "<redacted>", "<redacted>": 1}]})
        );
        // A key with a character of a short escape: `/` may be written `\/`.
        let slashed_key = "abc/def0123456789";
        let raw = r#"{"url": "x abc\/def0123456789 y"}"#;
        let mut value: Value = serde_json::from_str(raw).unwrap();
        redact_json(slashed_key, raw.as_bytes(), &mut value);
        assert_eq!(value, json!({"url": "x <redacted> y"}));
    }

    #[test]
    fn an_answer_without_the_key_is_left_as_it_is() {
        const KEY: &str = "AbcKey0123456789abcdefghijklmnopqrstuvwx";
        let raw = r#"{"response": {"Attribute": [{"value": "198.51.100.7", "Tag": [{"name": "tlp:white"}]}]}}"#;
        let mut value: Value = serde_json::from_str(raw).unwrap();
        let before = value.clone();
        redact_json(KEY, raw.as_bytes(), &mut value);
        assert_eq!(value, before);
    }

    #[test]
    fn excerpts_are_one_short_line() {
        let long = "<html>\n".repeat(100);
        let text = excerpt(long.as_bytes());
        assert!(!text.contains('\n'));
        assert!(text.chars().count() <= 201, "{}", text.len());
    }
}
