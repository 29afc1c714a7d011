//! What the runner counts for its operators once `[resilient] metrics_listen` is set: the
//! Prometheus registry behind `/metrics`, the last hour behind `/status`, and the state
//! `/readyz` reports. Without a listener none of this exists and nothing is counted.
//!
//! Label values are fixed words, registered function names and MISP path templates: never
//! an input, an artifact value, an id or a secret.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use serde::{Deserialize, Serialize};
use soar_core::observe::{AttemptEnd, FinishedAttempt, RequestObserver, Service};
use tokio::sync::Semaphore;

use crate::dispatch::OUTCOME_LABELS;
use crate::recent::{FunctionSummary, Recent, Upstream, WindowSummary};

/// The function label of a call that names no function served here.
pub const NO_FUNCTION: &str = "none";

/// Everything counted, behind the listener.
pub struct Metrics {
    registry: Registry,
    started: Instant,
    started_at: SystemTime,
    calls: Family<CallLabels, Counter>,
    call_duration: Family<FunctionLabel, Histogram>,
    worker_wait: Histogram,
    in_flight: Gauge,
    workers: Gauge,
    workers_free: Gauge,
    misp: UpstreamMetrics,
    urlscan: UpstreamMetrics,
    broker_connected: Gauge,
    broker_connection_start: Gauge<f64, AtomicU64>,
    broker_reconnects: Counter,
    broker_renewals: Counter,
    broker_connect_failures: Counter,
    destinations_subscribed: Gauge,
    redeliveries: Family<RedeliveryLabels, Counter>,
    replies_sent: Family<ReplyLabels, Counter>,
    replies_resent: Counter,
    replies_kept: Counter,
    /// The current round's workers (a reloaded config starts a new round).
    permits: Mutex<Option<Arc<Semaphore>>>,
    state: Mutex<State>,
}

/// What `/status` answers and `soar-runner status` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub uptime_seconds: u64,
    pub ready: bool,
    pub not_ready_reason: Option<String>,
    pub broker: BrokerReport,
    pub workers: WorkersReport,
    /// Messages taken whose final reply has not reached the broker yet.
    pub calls_in_flight: i64,
    pub last_minute: WindowSummary,
    pub last_hour: WindowSummary,
    /// Each function called in the last hour.
    pub functions: Vec<FunctionSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerReport {
    pub connected: bool,
    /// RFC 3339, UTC; `None` while disconnected.
    pub connected_since: Option<String>,
    pub reconnects: u64,
    pub destinations_subscribed: usize,
    pub destinations: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkersReport {
    pub total: usize,
    pub busy: usize,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    function: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabel {
    function: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    method: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RedeliveryLabels {
    /// `running` (still running when it came again) or `answered`.
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplyLabels {
    /// `progress` or `final`.
    kind: &'static str,
}

/// Requests to one outside service.
struct UpstreamMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<EndpointLabel, Histogram>,
    retries: Family<EndpointLabel, Counter>,
}

struct State {
    recent: Recent,
    subscribed: bool,
    destinations_subscribed: usize,
    destinations: usize,
    connected_since: Option<SystemTime>,
    connections: u64,
    renewals: u64,
    /// Why the last MISP request failed, when it failed to connect.
    misp_unreachable: Option<String>,
    draining: bool,
}

/// Call durations: from a few milliseconds (a MISP read) to minutes (a urlscan.io scan).
const CALL_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Waits for a worker: none at all while workers are free.
const WAIT_BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0,
];
/// One HTTP request to MISP or urlscan.io.
const REQUEST_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Metrics {
    /// Counters for `functions` (the registry's names) start at zero for every outcome, so
    /// that a rate is defined before the first failure.
    pub fn new(functions: &[&'static str], workers: usize) -> Metrics {
        let started_at = SystemTime::now();
        let mut metrics = Metrics {
            registry: Registry::default(),
            started: Instant::now(),
            started_at,
            calls: Family::default(),
            call_duration: Family::new_with_constructor(|| Histogram::new(CALL_BUCKETS)),
            worker_wait: Histogram::new(WAIT_BUCKETS),
            in_flight: Gauge::default(),
            workers: Gauge::default(),
            workers_free: Gauge::default(),
            misp: UpstreamMetrics::new(),
            urlscan: UpstreamMetrics::new(),
            broker_connected: Gauge::default(),
            broker_connection_start: Gauge::default(),
            broker_reconnects: Counter::default(),
            broker_renewals: Counter::default(),
            broker_connect_failures: Counter::default(),
            destinations_subscribed: Gauge::default(),
            redeliveries: Family::default(),
            replies_sent: Family::default(),
            replies_resent: Counter::default(),
            replies_kept: Counter::default(),
            permits: Mutex::new(None),
            state: Mutex::new(State {
                recent: Recent::default(),
                subscribed: false,
                destinations_subscribed: 0,
                destinations: 0,
                connected_since: None,
                connections: 0,
                renewals: 0,
                misp_unreachable: None,
                draining: false,
            }),
        };
        metrics.workers.set(workers as i64);
        metrics.workers_free.set(workers as i64);
        for function in functions.iter().copied().chain([NO_FUNCTION]) {
            for outcome in OUTCOME_LABELS {
                let _ = metrics
                    .calls
                    .get_or_create(&CallLabels { function, outcome });
            }
        }
        for state in ["running", "answered"] {
            let _ = metrics
                .redeliveries
                .get_or_create(&RedeliveryLabels { state });
        }
        for kind in ["progress", "final"] {
            let _ = metrics.replies_sent.get_or_create(&ReplyLabels { kind });
        }
        let process_start: Gauge<f64, AtomicU64> = Gauge::default();
        process_start.set(unix_seconds(started_at));
        metrics.registry.register_with_unit(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            process_start,
        );
        let runner = metrics.registry.sub_registry_with_prefix("soar_runner");
        runner.register(
            "build",
            "The soar-runner version serving",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        runner.register(
            "calls",
            "Function messages answered, by function and outcome (function \"none\" when the message named none served here)",
            metrics.calls.clone(),
        );
        runner.register_with_unit(
            "call_duration",
            "Time from taking a message to its final reply being ready, by function",
            Unit::Seconds,
            metrics.call_duration.clone(),
        );
        runner.register_with_unit(
            "worker_wait",
            "Time a message read from the broker waited for a free worker",
            Unit::Seconds,
            metrics.worker_wait.clone(),
        );
        runner.register(
            "calls_in_flight",
            "Messages taken whose final reply has not reached the broker yet",
            metrics.in_flight.clone(),
        );
        runner.register(
            "workers",
            "Functions that may run at once ([resilient] num_workers)",
            metrics.workers.clone(),
        );
        runner.register(
            "workers_free",
            "Workers not running a function now",
            metrics.workers_free.clone(),
        );
        metrics.misp.register(runner, "misp", "MISP");
        metrics.urlscan.register(runner, "urlscan", "urlscan.io");
        runner.register(
            "broker_connected",
            "1 while connected to the broker and subscribed to every destination, else 0",
            metrics.broker_connected.clone(),
        );
        runner.register_with_unit(
            "broker_connection_start_time",
            "When the current broker connection was made, since the Unix epoch (0 while disconnected)",
            Unit::Seconds,
            metrics.broker_connection_start.clone(),
        );
        runner.register(
            "broker_reconnects",
            "Broker connections made after the first",
            metrics.broker_reconnects.clone(),
        );
        runner.register(
            "broker_renewals",
            "Broker connections replaced on purpose after stomp_max_calls_per_connection calls (not counted as reconnects)",
            metrics.broker_renewals.clone(),
        );
        runner.register(
            "broker_connect_failures",
            "Attempts to connect and subscribe to the broker that failed",
            metrics.broker_connect_failures.clone(),
        );
        runner.register(
            "destinations_subscribed",
            "Message destinations subscribed to on the current connection",
            metrics.destinations_subscribed.clone(),
        );
        runner.register(
            "redeliveries",
            "Messages the broker delivered again that were recognised and not run twice, by where they stood",
            metrics.redeliveries.clone(),
        );
        runner.register(
            "replies_sent",
            "Replies the broker took, by kind (final replies once the broker confirmed them)",
            metrics.replies_sent.clone(),
        );
        runner.register(
            "replies_resent",
            "Kept final replies committed when their message was delivered again",
            metrics.replies_resent.clone(),
        );
        runner.register(
            "replies_kept",
            "Final replies not committed, kept until their message is delivered again",
            metrics.replies_kept.clone(),
        );
        metrics
    }

    /// Lets `/metrics` and `/status` read how many workers are free.
    pub fn watch_workers(&self, permits: Arc<Semaphore>) {
        *lock(&self.permits) = Some(permits);
    }

    /// The runner starts again after a drain (a reloaded `app.config`), with `workers`
    /// workers: not draining, and not subscribed until the new round's broker is up. The
    /// counters carry on.
    pub fn serving_again(&self, workers: usize) {
        self.workers.set(workers as i64);
        self.broker_down();
        lock(&self.state).draining = false;
    }

    /// A message was taken to be run.
    pub fn message_taken(&self, waited_for_worker: Duration) {
        self.in_flight.inc();
        self.worker_wait.observe(waited_for_worker.as_secs_f64());
    }

    /// A message taken has got its final reply to the broker, or kept it for later, or was
    /// given up at shutdown.
    pub fn message_settled(&self) {
        self.in_flight.dec();
    }

    /// A call ended with `outcome` (its label, [`crate::dispatch::Outcome::label`]).
    pub fn call_finished(&self, function: &'static str, outcome: &'static str, duration: Duration) {
        self.calls
            .get_or_create(&CallLabels { function, outcome })
            .inc();
        self.call_duration
            .get_or_create(&FunctionLabel { function })
            .observe(duration.as_secs_f64());
        lock(&self.state)
            .recent
            .record_call(self.started.elapsed(), function, outcome, duration);
    }

    pub fn progress_sent(&self) {
        self.replies_sent
            .get_or_create(&ReplyLabels { kind: "progress" })
            .inc();
    }

    pub fn final_sent(&self) {
        self.replies_sent
            .get_or_create(&ReplyLabels { kind: "final" })
            .inc();
    }

    pub fn reply_kept(&self) {
        self.replies_kept.inc();
    }

    pub fn reply_resent(&self) {
        self.replies_resent.inc();
    }

    /// A redelivery was recognised; `answered` if its reply was already known.
    pub fn redelivered(&self, answered: bool) {
        let state = if answered { "answered" } else { "running" };
        self.redeliveries
            .get_or_create(&RedeliveryLabels { state })
            .inc();
    }

    /// Connected and subscribed to `destinations`.
    pub fn broker_up(&self, destinations: usize) {
        let now = SystemTime::now();
        let mut state = lock(&self.state);
        state.connections += 1;
        if state.connections > 1 + state.renewals {
            self.broker_reconnects.inc();
        }
        state.subscribed = true;
        state.destinations_subscribed = destinations;
        state.destinations = destinations;
        state.connected_since = Some(now);
        self.broker_connected.set(1);
        self.broker_connection_start.set(unix_seconds(now));
        self.destinations_subscribed.set(destinations as i64);
    }

    /// The current connection is being replaced by a fresh one on purpose (after
    /// `stomp_max_calls_per_connection` calls); the next [`Metrics::broker_up`] is not a
    /// reconnect.
    pub fn broker_renewing(&self) {
        lock(&self.state).renewals += 1;
        self.broker_renewals.inc();
    }

    pub fn broker_down(&self) {
        let mut state = lock(&self.state);
        state.subscribed = false;
        state.destinations_subscribed = 0;
        state.connected_since = None;
        self.broker_connected.set(0);
        self.broker_connection_start.set(0.0);
        self.destinations_subscribed.set(0);
    }

    pub fn broker_connect_failed(&self) {
        self.broker_connect_failures.inc();
    }

    /// Shutdown has begun: no new messages are taken.
    pub fn draining(&self) {
        lock(&self.state).draining = true;
    }

    /// `Ok` when the runner can serve: subscribed, not shutting down, and the last MISP
    /// request did not fail to connect; else the one-line reason.
    pub fn readiness(&self) -> Result<(), String> {
        let state = lock(&self.state);
        if state.draining {
            return Err("shutting down: no new messages are taken".to_string());
        }
        if !state.subscribed {
            return Err(
                "not subscribed: no broker connection (reconnecting with back-off)".to_string(),
            );
        }
        match &state.misp_unreachable {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// `/metrics` in Prometheus' text format.
    pub fn encode(&self) -> String {
        self.refresh_workers();
        let mut text = String::new();
        // Writing to a String cannot fail; the encoder's own errors come from the writer.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }

    pub fn status(&self) -> StatusReport {
        let (total, free) = self.refresh_workers();
        let now = self.started.elapsed();
        let readiness = self.readiness();
        let state = lock(&self.state);
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: rfc3339(self.started_at),
            uptime_seconds: now.as_secs(),
            ready: readiness.is_ok(),
            not_ready_reason: readiness.err(),
            broker: BrokerReport {
                connected: state.subscribed,
                connected_since: state.connected_since.map(rfc3339),
                reconnects: state.connections.saturating_sub(1 + state.renewals),
                destinations_subscribed: state.destinations_subscribed,
                destinations: state.destinations,
            },
            workers: WorkersReport {
                total,
                busy: total.saturating_sub(free),
            },
            calls_in_flight: self.in_flight.get(),
            last_minute: state.recent.last_minute(now),
            last_hour: state.recent.last_hour(now),
            functions: state.recent.functions_last_hour(now),
        }
    }

    /// Reads the free workers from the semaphore; returns (total, free).
    fn refresh_workers(&self) -> (usize, usize) {
        let total = usize::try_from(self.workers.get()).unwrap_or(0);
        let free = lock(&self.permits)
            .as_ref()
            .map(|permits| permits.available_permits().min(total))
            .unwrap_or(total);
        self.workers_free.set(free as i64);
        (total, free)
    }
}

impl RequestObserver for Metrics {
    fn attempt_finished(&self, attempt: &FinishedAttempt<'_>) {
        let (upstream, window) = match attempt.service {
            Service::Misp => (&self.misp, Upstream::Misp),
            Service::Urlscan => (&self.urlscan, Upstream::Urlscan),
        };
        upstream.record(attempt);
        let mut state = lock(&self.state);
        state.recent.record_request(
            self.started.elapsed(),
            window,
            is_service_error(attempt.end),
            attempt.elapsed,
        );
        if attempt.service == Service::Misp {
            match attempt.end {
                AttemptEnd::ConnectFailed => {
                    state.misp_unreachable = Some(format!(
                        "MISP unreachable: the last request ({} {}) could not connect",
                        attempt.method, attempt.endpoint
                    ));
                }
                AttemptEnd::Answered(_) => state.misp_unreachable = None,
                AttemptEnd::TimedOut | AttemptEnd::Failed => {}
            }
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl UpstreamMetrics {
    fn new() -> UpstreamMetrics {
        UpstreamMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(REQUEST_BUCKETS)),
            retries: Family::default(),
        }
    }

    fn register(&self, registry: &mut Registry, prefix: &str, service: &str) {
        registry.register(
            format!("{prefix}_requests"),
            format!(
                "HTTP requests to {service} (each attempt), by endpoint, method and status (connect_error, timeout or error when there was no answer)"
            ),
            self.requests.clone(),
        );
        registry.register_with_unit(
            format!("{prefix}_request_duration"),
            format!("Time of each HTTP request to {service}, by endpoint"),
            Unit::Seconds,
            self.duration.clone(),
        );
        registry.register(
            format!("{prefix}_retries"),
            format!("HTTP requests to {service} that repeated a failed one, by endpoint"),
            self.retries.clone(),
        );
    }

    fn record(&self, attempt: &FinishedAttempt<'_>) {
        let status = match attempt.end {
            AttemptEnd::Answered(status) => status.to_string(),
            AttemptEnd::ConnectFailed => "connect_error".to_string(),
            AttemptEnd::TimedOut => "timeout".to_string(),
            AttemptEnd::Failed => "error".to_string(),
        };
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: attempt.endpoint.to_string(),
                method: attempt.method.to_string(),
                status,
            })
            .inc();
        let endpoint = EndpointLabel {
            endpoint: attempt.endpoint.to_string(),
        };
        self.duration
            .get_or_create(&endpoint)
            .observe(attempt.elapsed.as_secs_f64());
        if attempt.retry {
            self.retries.get_or_create(&endpoint).inc();
        }
    }
}

/// Whether an attempt's end says the service is unwell (rather than the input wrong):
/// no answer, a refused key, throttling or a server error.
fn is_service_error(end: AttemptEnd) -> bool {
    match end {
        AttemptEnd::Answered(status) => matches!(status, 401 | 403 | 429 | 500..=599),
        AttemptEnd::ConnectFailed | AttemptEnd::TimedOut | AttemptEnd::Failed => true,
    }
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|since| since.as_secs_f64())
        .unwrap_or(0.0)
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters stay usable after a panic elsewhere; at worst one figure is off.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(end: AttemptEnd) -> FinishedAttempt<'static> {
        FinishedAttempt {
            service: Service::Misp,
            method: "POST",
            endpoint: "/events/restSearch",
            end,
            elapsed: Duration::from_millis(12),
            retry: false,
        }
    }

    #[test]
    fn readiness_needs_the_broker_and_a_misp_that_connects() {
        let metrics = Metrics::new(&["misp_create_event"], 4);
        assert!(
            metrics
                .readiness()
                .unwrap_err()
                .starts_with("not subscribed")
        );
        metrics.broker_up(2);
        assert_eq!(metrics.readiness(), Ok(()));
        metrics.attempt_finished(&attempt(AttemptEnd::ConnectFailed));
        assert_eq!(
            metrics.readiness().unwrap_err(),
            "MISP unreachable: the last request (POST /events/restSearch) could not connect"
        );
        // A timeout says nothing about reaching MISP; any answer does.
        metrics.attempt_finished(&attempt(AttemptEnd::TimedOut));
        assert!(metrics.readiness().is_err());
        metrics.attempt_finished(&attempt(AttemptEnd::Answered(404)));
        assert_eq!(metrics.readiness(), Ok(()));
        metrics.broker_down();
        assert!(metrics.readiness().is_err());
        metrics.broker_up(2);
        metrics.draining();
        assert!(
            metrics
                .readiness()
                .unwrap_err()
                .starts_with("shutting down")
        );
    }

    #[test]
    fn a_planned_renewal_of_the_connection_is_not_a_reconnect() {
        let metrics = Metrics::new(&["misp_create_event"], 4);
        metrics.broker_up(1);
        metrics.broker_renewing();
        metrics.broker_up(1);
        metrics.broker_renewing();
        metrics.broker_up(1);
        let text = metrics.encode();
        assert!(
            text.contains("soar_runner_broker_renewals_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("soar_runner_broker_reconnects_total 0\n"),
            "{text}"
        );
        assert_eq!(metrics.status().broker.reconnects, 0);
        metrics.broker_down();
        metrics.broker_up(1);
        let text = metrics.encode();
        assert!(
            text.contains("soar_runner_broker_reconnects_total 1\n"),
            "{text}"
        );
        assert_eq!(metrics.status().broker.reconnects, 1);
    }

    #[test]
    fn after_a_reload_drain_the_new_rounds_workers_and_broker_decide_readiness() {
        let metrics = Metrics::new(&["misp_create_event"], 4);
        metrics.watch_workers(Arc::new(Semaphore::new(4)));
        metrics.broker_up(2);
        metrics.message_taken(Duration::ZERO);
        metrics.draining();
        metrics.serving_again(6);
        assert!(
            metrics
                .readiness()
                .unwrap_err()
                .starts_with("not subscribed"),
            "not ready until the new round subscribes"
        );
        let permits = Arc::new(Semaphore::new(6));
        metrics.watch_workers(permits.clone());
        metrics.broker_up(2);
        assert_eq!(metrics.readiness(), Ok(()));
        let _busy = permits.try_acquire().expect("a free worker");
        let text = metrics.encode();
        assert!(text.contains("soar_runner_workers 6\n"), "{text}");
        assert!(
            text.contains("soar_runner_workers_free 5\n"),
            "the new round's semaphore is watched: {text}"
        );
        assert!(
            text.contains("soar_runner_calls_in_flight 1\n"),
            "counters carry on: {text}"
        );
    }

    #[test]
    fn every_outcome_of_every_function_starts_at_zero() {
        let metrics = Metrics::new(&["misp_create_event"], 4);
        let text = metrics.encode();
        for outcome in OUTCOME_LABELS {
            for function in ["misp_create_event", NO_FUNCTION] {
                let line = format!(
                    "soar_runner_calls_total{{function=\"{function}\",outcome=\"{outcome}\"}} 0\n"
                );
                assert!(text.contains(&line), "expected {line} in\n{text}");
            }
        }
        assert!(text.contains("soar_runner_build_info{version=\""), "{text}");
        assert!(text.contains("\nprocess_start_time_seconds "), "{text}");
        assert!(text.contains("soar_runner_workers_free 4\n"), "{text}");
    }

    #[test]
    fn calls_and_requests_are_counted_by_their_labels() {
        let metrics = Metrics::new(&["misp_create_event"], 4);
        metrics.call_finished("misp_create_event", "input_error", Duration::from_millis(3));
        metrics.attempt_finished(&attempt(AttemptEnd::Answered(200)));
        metrics.attempt_finished(&FinishedAttempt {
            retry: true,
            ..attempt(AttemptEnd::TimedOut)
        });
        let text = metrics.encode();
        for line in [
            "soar_runner_calls_total{function=\"misp_create_event\",outcome=\"input_error\"} 1\n",
            "soar_runner_call_duration_seconds_count{function=\"misp_create_event\"} 1\n",
            "soar_runner_misp_requests_total{endpoint=\"/events/restSearch\",method=\"POST\",status=\"200\"} 1\n",
            "soar_runner_misp_requests_total{endpoint=\"/events/restSearch\",method=\"POST\",status=\"timeout\"} 1\n",
            "soar_runner_misp_retries_total{endpoint=\"/events/restSearch\"} 1\n",
        ] {
            assert!(text.contains(line), "expected {line} in\n{text}");
        }
        let status = metrics.status();
        assert_eq!(status.last_minute.calls.get("input_error"), Some(&1));
        assert_eq!(status.last_hour.misp.requests, 2);
        assert_eq!(status.last_hour.misp.errors, 1);
        assert_eq!(status.functions[0].function, "misp_create_event");
    }

    #[test]
    fn free_workers_are_read_from_the_semaphore() {
        let metrics = Metrics::new(&[], 3);
        let permits = Arc::new(Semaphore::new(3));
        metrics.watch_workers(permits.clone());
        let _busy = permits.clone().try_acquire_owned().expect("a permit");
        assert_eq!(
            metrics.status().workers,
            WorkersReport { total: 3, busy: 1 }
        );
        assert!(metrics.encode().contains("soar_runner_workers_free 2\n"));
    }
}
