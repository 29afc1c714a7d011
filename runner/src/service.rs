//! `soar-runner run`: the STOMP side of the runner. Subscribes to each message
//! destination, runs at most `num_workers` functions at once, answers every message with
//! exactly one final reply committed together with its ACK, reconnects forever, and drains
//! on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use soar_stomp::{AckMode, ConnectOptions, Frame, StompError, StompSender, TlsOptions};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::dispatch::{self, Environment, Failure, Outcome};
use crate::metrics::{Metrics, NO_FUNCTION};
use crate::record::{AckId, Arrival, FinalReply, Record, Settled};
use crate::settings::{ResilientSettings, Verify};

/// What the service needs beyond the function environment.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub settings: ResilientSettings,
    pub org_id: i64,
    /// Message destinations (programmatic names) to subscribe to.
    pub destinations: Vec<String>,
}

/// Why the service stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the broker refused the runner for good: {0}")]
    Refused(String),
}

/// What outlives one [`run`]: the redelivery record and the count of connections, so that
/// a run after another in the same process (a reloaded `app.config`) still knows the replies
/// the first kept for messages the broker will deliver again, and no ack id of one
/// connection is taken for another's.
#[derive(Clone)]
pub struct Carried {
    record: Arc<Mutex<Record>>,
    epochs: Arc<std::sync::atomic::AtomicU64>,
}

impl Carried {
    /// The record holds `[resilient] message_record_size` entries of the first config.
    pub fn new(settings: &ResilientSettings) -> Carried {
        Carried {
            record: Arc::new(Mutex::new(Record::new(
                Duration::from_secs(3600),
                settings.message_record_size,
            ))),
            epochs: Arc::default(),
        }
    }
}

/// Serves until `shutdown` resolves, then drains and disconnects. `metrics`, when the
/// operator's listener is on, is told of everything that happens.
pub async fn run(
    config: ServiceConfig,
    environment: Environment,
    metrics: Option<Arc<Metrics>>,
    early: Option<EarlyConnection>,
    carried: Carried,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let mut early = early;
    let shared = Arc::new(Shared {
        org_id: config.org_id,
        environment,
        record: carried.record.clone(),
        links: Mutex::new(Links {
            current: 0,
            open: HashMap::new(),
        }),
        permits: Arc::new(Semaphore::new(config.settings.num_workers)),
        tracker: TaskTracker::new(),
        stop_functions: CancellationToken::new(),
        max_message_size: config.settings.max_message_size,
        metrics,
    });
    shared.count(|metrics| metrics.watch_workers(shared.permits.clone()));
    tokio::pin!(shutdown);
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut epoch = carried.epochs.load(std::sync::atomic::Ordering::Relaxed);
    let max_calls = config.settings.max_calls_per_connection;
    let mut renewing = false;
    let last_sender = loop {
        let connected = tokio::select! {
            biased;
            () = &mut shutdown => break None,
            connected = connect_and_subscribe(&config, early.take()) => connected,
        };
        let (sender, mut receiver) = match connected {
            Ok(pair) => pair,
            Err(error) => {
                if let Some(reason) = fatal(&error) {
                    return Err(ServiceError::Refused(reason));
                }
                shared.count(Metrics::broker_connect_failed);
                if renewing {
                    // The connection being replaced takes no messages: until a new one is
                    // subscribed, the runner is not serving, and says so.
                    renewing = false;
                    shared.count(Metrics::broker_down);
                }
                let delay = backoff.next_delay();
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "cannot connect to the broker; retrying");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break None,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        backoff.reset();
        epoch += 1;
        carried
            .epochs
            .store(epoch, std::sync::atomic::Ordering::Relaxed);
        shared.open_link(epoch, sender.clone());
        shared.count(|metrics| metrics.broker_up(config.destinations.len()));
        if !renewing {
            tracing::info!(
                destinations = ?config.destinations,
                num_workers = config.settings.num_workers,
                "soar-runner has started successfully and is now running"
            );
        }
        renewing = false;
        // The calls taken on this connection: a connection being replaced is closed once
        // they have all been answered.
        let calls = TaskTracker::new();
        let mut taken: u64 = 0;
        let ended = loop {
            let frame = tokio::select! {
                biased;
                () = &mut shutdown => break Ended::Shutdown,
                frame = receiver.next_message() => frame,
            };
            match frame {
                Ok(frame) if frame.command == "MESSAGE" => {
                    let waiting = std::time::Instant::now();
                    let permit = tokio::select! {
                        biased;
                        () = &mut shutdown => break Ended::Shutdown,
                        permit = shared.permits.clone().acquire_owned() => permit,
                    };
                    let Ok(permit) = permit else {
                        break Ended::Shutdown;
                    };
                    let waited = waiting.elapsed();
                    shared
                        .clone()
                        .take(frame, epoch, &sender, &calls, permit, waited)
                        .await;
                    taken += 1;
                    if max_calls > 0 && taken >= max_calls {
                        break Ended::Renew;
                    }
                }
                Ok(frame) => {
                    tracing::debug!(command = %frame.command, "ignoring a frame from the broker");
                }
                Err(error) => {
                    if let Some(reason) = fatal(&error) {
                        return Err(ServiceError::Refused(reason));
                    }
                    tracing::warn!(%error, "lost the broker connection; reconnecting");
                    shared.close_link(epoch);
                    shared.count(Metrics::broker_down);
                    break Ended::Lost;
                }
            }
        };
        match ended {
            Ended::Shutdown => break Some(sender),
            Ended::Lost => {}
            Ended::Renew => {
                shared.count(Metrics::broker_renewing);
                renewing = true;
                shared.tracker.spawn(retire(
                    shared.clone(),
                    epoch,
                    sender,
                    receiver,
                    calls,
                    taken,
                ));
            }
        }
    };
    shared.count(Metrics::draining);
    drain(&shared, config.settings.shutdown_timeout).await;
    if let Some(sender) = last_sender
        && let Err(error) = sender.disconnect().await
    {
        tracing::warn!(%error, "the broker did not confirm the disconnect");
    }
    tracing::info!("soar-runner stopped");
    Ok(())
}

/// Connects, subscribes, and waits `wait` for an `ERROR` frame, as resilient-circuits'
/// selftest does; returns the queues subscribed.
pub async fn probe(config: &ServiceConfig, wait: Duration) -> Result<Vec<String>, StompError> {
    let (sender, mut receiver) = connect_and_subscribe(config, None).await?;
    // An ERROR frame within `wait` fails the probe; a message or silence does not.
    if let Ok(Err(error)) = tokio::time::timeout(wait, receiver.next_message()).await {
        return Err(error);
    }
    let _ = sender.disconnect().await;
    Ok(config
        .destinations
        .iter()
        .map(|destination| format!("actions.{}.{destination}", config.org_id))
        .collect())
}

/// How a connection's receive loop ended.
enum Ended {
    Shutdown,
    Lost,
    /// It took `stomp_max_calls_per_connection` messages: a fresh connection replaces it.
    Renew,
}

/// Closes a connection that a fresh one has replaced, once every call it took has been
/// answered on it (each final reply is committed with its ACK on the connection that
/// delivered the message). Messages the broker hands it meanwhile are not taken; closing the
/// connection gives them back to the queue, for the new connection or another runner. This
/// is what frees what ActiveMQ keeps of every message the connection ACKed in a
/// transaction (see soar-stomp's `commit_grouped`).
async fn retire(
    shared: Arc<Shared>,
    epoch: u64,
    sender: StompSender,
    mut receiver: soar_stomp::StompReceiver,
    calls: TaskTracker,
    taken: u64,
) {
    calls.close();
    let mut held = 0usize;
    let lost = loop {
        tokio::select! {
            biased;
            () = calls.wait() => break false,
            frame = receiver.next_message() => match frame {
                Ok(frame) if frame.command == "MESSAGE" => held += 1,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "lost a broker connection being replaced; its calls' replies are kept for their redelivery");
                    break true;
                }
            },
        }
    };
    shared.close_link(epoch);
    if !lost && let Err(error) = sender.disconnect().await {
        tracing::debug!(%error, "the broker did not confirm the disconnect of a replaced connection");
    }
    tracing::info!(
        taken,
        held,
        "closed a broker connection after {taken} messages (stomp_max_calls_per_connection); the {held} it was handed meanwhile go back to the queue"
    );
}

/// Lets running functions finish within the deadline; those cut off are not acked, so
/// the broker hands them to another runner.
async fn drain(shared: &Arc<Shared>, deadline: Duration) {
    shared.tracker.close();
    let running = shared.tracker.len();
    if running > 0 {
        tracing::info!(
            running,
            ?deadline,
            "waiting for running functions to finish"
        );
    }
    if tokio::time::timeout(deadline, shared.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            running = shared.tracker.len(),
            "shutdown deadline reached; cancelling the functions still running (they are not acked and will be redelivered)"
        );
        shared.stop_functions.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), shared.tracker.wait()).await;
    }
}

struct Shared {
    org_id: i64,
    environment: Environment,
    record: Arc<Mutex<Record>>,
    links: Mutex<Links>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    stop_functions: CancellationToken,
    max_message_size: usize,
    metrics: Option<Arc<Metrics>>,
}

/// The broker connections still open: the current one, which takes messages, and any
/// being replaced, which only commit the replies of the calls they took. Each by its epoch,
/// since an ack id is only valid on the connection that delivered the message.
struct Links {
    current: u64,
    open: HashMap<u64, StompSender>,
}

/// A message's headers that matter here.
struct Delivery {
    message_id: String,
    ack: Option<String>,
    reply_to: Option<String>,
    correlation_id: Option<String>,
}

/// Counts a message taken as in flight until it is dropped: its final reply was committed,
/// was kept for the message's redelivery, or the message was given up at shutdown.
struct InFlight(Option<Arc<Metrics>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(metrics) = &self.0 {
            metrics.message_settled();
        }
    }
}

impl Shared {
    /// Tells the metrics, when the listener is on.
    fn count(&self, record: impl FnOnce(&Metrics)) {
        if let Some(metrics) = &self.metrics {
            record(metrics);
        }
    }

    /// A new connection, `epoch`, becomes the current one.
    fn open_link(&self, epoch: u64, sender: StompSender) {
        let mut links = lock(&self.links);
        links.current = epoch;
        links.open.insert(epoch, sender);
    }

    fn close_link(&self, epoch: u64) {
        lock(&self.links).open.remove(&epoch);
    }

    /// The current connection, if it is open.
    fn current_sender(&self) -> Option<StompSender> {
        let links = lock(&self.links);
        links.open.get(&links.current).cloned()
    }

    /// Connection `epoch`, if it is still open.
    fn sender_for(&self, epoch: u64) -> Option<StompSender> {
        lock(&self.links).open.get(&epoch).cloned()
    }

    /// Takes one MESSAGE: runs it, or settles a redelivery without running it again.
    async fn take(
        self: Arc<Self>,
        frame: Frame,
        epoch: u64,
        sender: &StompSender,
        calls: &TaskTracker,
        permit: tokio::sync::OwnedSemaphorePermit,
        waited_for_worker: Duration,
    ) {
        let delivery = Delivery {
            message_id: frame
                .header("message-id")
                .map(str::to_string)
                .unwrap_or_else(|| format!("no-message-id-{}", fastrand::u64(..))),
            ack: frame.header("ack").map(str::to_string),
            reply_to: frame.header("reply-to").map(str::to_string),
            correlation_id: frame.header("correlation-id").map(str::to_string),
        };
        let arrival = lock(&self.record).arrive(&delivery.message_id, epoch, delivery.ack.clone());
        match arrival {
            Arrival::Run => {}
            Arrival::AlreadyRunning => {
                tracing::info!(message_id = %delivery.message_id, "redelivered while still running; it is not run twice");
                self.count(|metrics| metrics.redelivered(false));
                return;
            }
            Arrival::BeingAnswered => {
                tracing::info!(message_id = %delivery.message_id, "redelivered while its reply is being committed; kept in case that commit fails");
                self.count(|metrics| metrics.redelivered(true));
                return;
            }
            Arrival::AlreadyAnswered => {
                tracing::info!(message_id = %delivery.message_id, "redelivered after its reply was committed; acking it again");
                self.count(|metrics| metrics.redelivered(true));
                if let Some(ack) = &delivery.ack {
                    let _ = sender.ack(ack).await;
                }
                return;
            }
            Arrival::Answer { reply } => {
                tracing::info!(message_id = %delivery.message_id, "redelivered after it was answered; committing the kept reply with this delivery's ack");
                self.count(|metrics| metrics.redelivered(true));
                // Off the receive loop: a commit waiting for its receipt must not hold up
                // the messages behind it.
                let shared = self.clone();
                let ack = delivery.ack.clone().map(|ack| (epoch, ack));
                let span = tracing::info_span!(
                    "message",
                    message_id = %delivery.message_id,
                    correlation_id = delivery.correlation_id.as_deref().unwrap_or(""),
                );
                self.tracker.spawn(
                    calls.track_future(
                        async move {
                            shared
                                .answer(&delivery.message_id, reply, ack, Answering::Again)
                                .await;
                            drop(permit);
                        }
                        .instrument(span),
                    ),
                );
                return;
            }
        }
        let span = tracing::info_span!(
            "message",
            message_id = %delivery.message_id,
            correlation_id = delivery.correlation_id.as_deref().unwrap_or(""),
            function = tracing::field::Empty,
            workflow_instance = tracing::field::Empty,
            playbook_instance = tracing::field::Empty,
            incident = tracing::field::Empty,
        );
        self.count(|metrics| metrics.message_taken(waited_for_worker));
        let in_flight = InFlight(self.metrics.clone());
        let shared = self.clone();
        self.tracker.spawn(
            calls.track_future(
                async move {
                    shared
                        .serve(frame, delivery, epoch, permit, in_flight)
                        .await
                }
                .instrument(span),
            ),
        );
    }

    /// Runs the function, streams its progress, then commits the final reply with the ACK.
    /// The worker permit is given back as soon as the function has finished: waiting for
    /// the commit's receipt is not work, and the broker's prefetch still bounds how many
    /// messages are out.
    async fn serve(
        self: Arc<Self>,
        frame: Frame,
        delivery: Delivery,
        epoch: u64,
        permit: tokio::sync::OwnedSemaphorePermit,
        _in_flight: InFlight,
    ) {
        let started = std::time::Instant::now();
        let Some(reply_to) = delivery.reply_to.clone() else {
            tracing::error!(
                outcome = Failure::Malformed.label(),
                "the message has no reply-to header; acking it without a reply"
            );
            self.count(|metrics| {
                metrics.call_finished(NO_FUNCTION, Failure::Malformed.label(), started.elapsed())
            });
            // Nothing to send: the transaction carries only the ACK.
            let (reply, ack) = lock(&self.record).finish(
                &delivery.message_id,
                FinalReply {
                    reply_to: String::new(),
                    correlation_id: None,
                    body: String::new(),
                },
            );
            self.answer(&delivery.message_id, reply, ack, Answering::First)
                .await;
            return;
        };
        let (progress_tx, progress_rx) = mpsc::unbounded_channel::<String>();
        let forwarder = tokio::spawn(forward_progress(
            self.clone(),
            epoch,
            progress_rx,
            reply_to.clone(),
            delivery.correlation_id.clone(),
        ));
        // The function's registered name, for the metrics; never a name the message made up.
        let mut function = NO_FUNCTION;
        let outcome = if frame.body.len() > self.max_message_size {
            Outcome::Failed(
                Failure::Oversized,
                format!(
                    "the message is {} bytes, more than the {} bytes allowed ([resilient] max_message_size_mb)",
                    frame.body.len(),
                    self.max_message_size
                ),
            )
        } else {
            match dispatch::parse_call(&frame.body) {
                Err(problem) => Outcome::Failed(Failure::Malformed, problem),
                Ok(call) => {
                    if let Ok(served) = self.environment.registry.get(&call.function) {
                        function = served.definition().name;
                    }
                    record_call_ids(&call);
                    let sink = progress_tx.clone();
                    let progress: soar_core::ProgressSink = Arc::new(move |message: String| {
                        let _ = sink.send(message);
                    });
                    let cancel = self.stop_functions.child_token();
                    let origin = soar_core::CallOrigin {
                        org_id: Some(self.org_id),
                        workflow_instance_id: call.workflow_instance_id,
                        playbook_instance_id: call.playbook_instance_id,
                    };
                    let outcome = dispatch::execute(
                        &self.environment,
                        call,
                        origin,
                        progress,
                        cancel.clone(),
                    )
                    .await;
                    if cancel.is_cancelled() {
                        tracing::warn!(
                            "cut off by the shutdown deadline; not acked, the broker will redeliver it"
                        );
                        lock(&self.record).abandon(&delivery.message_id);
                        forwarder.abort();
                        return;
                    }
                    outcome
                }
            }
        };
        drop(permit);
        // The forwarder ends once every sender of the channel is gone, including the one the
        // error paths never used.
        drop(progress_tx);
        let elapsed = started.elapsed();
        self.count(|metrics| metrics.call_finished(function, outcome.label(), elapsed));
        // The one line per call at info level; the span adds the function and SOAR's ids.
        let elapsed_ms = elapsed.as_millis() as u64;
        match &outcome {
            Outcome::Completed(_) => {
                tracing::info!(elapsed_ms, outcome = outcome.label(), "completed")
            }
            Outcome::Failed(_, reason) => {
                tracing::warn!(elapsed_ms, outcome = outcome.label(), %reason, "failed")
            }
        }
        let reply = FinalReply {
            reply_to,
            correlation_id: delivery.correlation_id.clone(),
            body: dispatch::final_body(&outcome),
        };
        let (reply, ack) = lock(&self.record).finish(&delivery.message_id, reply);
        // SOAR must see every progress message before the final reply: they are written
        // before the transaction that carries it.
        let _ = forwarder.await;
        self.answer(&delivery.message_id, reply, ack, Answering::First)
            .await;
    }

    /// Commits the final reply together with its message's ACK, in one transaction, on the
    /// connection the ack id came from. When that is not possible (the connection is gone,
    /// or the commit was not confirmed) the reply is kept and committed only when the broker
    /// delivers the message again; if that redelivery came while this commit was out, the
    /// reply is committed again at once with the new ack id.
    async fn answer(
        &self,
        message_id: &str,
        reply: Arc<FinalReply>,
        ack: Option<AckId>,
        answering: Answering,
    ) {
        let (mut reply, mut ack) = (reply, ack);
        loop {
            let committed = match &ack {
                None => match self.current_sender() {
                    Some(sender) => commit_reply(&sender, &reply, None).await,
                    None => false,
                },
                // An ack id is only valid on the connection that delivered the message.
                Some((ack_epoch, ack_id)) => match self.sender_for(*ack_epoch) {
                    Some(sender) => commit_reply(&sender, &reply, Some(ack_id)).await,
                    None => false,
                },
            };
            let settled = lock(&self.record).settled(message_id, committed);
            match settled {
                Settled::Retry {
                    reply: same,
                    ack: newer,
                } => {
                    (reply, ack) = (same, Some(newer));
                    continue;
                }
                Settled::AckAlso((ack_epoch, ack_id)) => {
                    if let Some(sender) = self.sender_for(ack_epoch) {
                        let _ = sender.ack(&ack_id).await;
                    }
                }
                Settled::Done => {}
            }
            match (committed, answering) {
                (true, Answering::First) => self.count(Metrics::final_sent),
                (true, Answering::Again) => self.count(Metrics::reply_resent),
                (false, _) => {
                    tracing::warn!(
                        "the reply was not committed; it is kept until the broker delivers the message again"
                    );
                    self.count(Metrics::reply_kept);
                }
            }
            return;
        }
    }
}

/// Whether a final reply is committed for the first time or after a redelivery.
#[derive(Debug, Clone, Copy)]
enum Answering {
    First,
    Again,
}

async fn forward_progress(
    shared: Arc<Shared>,
    epoch: u64,
    mut messages: mpsc::UnboundedReceiver<String>,
    reply_to: String,
    correlation_id: Option<String>,
) {
    while let Some(message) = messages.recv().await {
        // On the connection that delivered the message, which also carries the final
        // reply: one connection keeps their order.
        let Some(sender) = shared.sender_for(epoch) else {
            continue;
        };
        let mut headers = correlation_headers(correlation_id.as_deref());
        // As persistent as the final reply: ActiveMQ does not keep the order between
        // persistent and non-persistent messages, and progress must come before the end.
        headers.push(("persistent", "true"));
        match sender
            .send(&reply_to, &headers, dispatch::progress_body(&message))
            .await
        {
            Ok(()) => shared.count(Metrics::progress_sent),
            Err(error) => {
                tracing::debug!(%error, "a progress message was lost with the connection");
            }
        }
    }
}

/// Puts SOAR's ids on the message's span, so every line logged for the call carries them:
/// the workflow or playbook instance, and the incident when the function takes one.
fn record_call_ids(call: &dispatch::Call) {
    let span = tracing::Span::current();
    span.record("function", call.function.as_str());
    if let Some(id) = call.workflow_instance_id {
        span.record("workflow_instance", id);
    }
    if let Some(id) = call.playbook_instance_id {
        span.record("playbook_instance", id);
    }
    if let Some(id) = call
        .inputs
        .get("incident_id")
        .and_then(serde_json::Value::as_i64)
    {
        span.record("incident", id);
    }
}

/// Sends a final reply and its message's ACK in one transaction and waits for the broker's
/// receipt of the COMMIT, so `true` means the broker has both. An empty `reply_to` sends
/// only the ACK. Replies that become ready while a commit is out share the next one
/// (`commit_grouped`), so under load the broker gets fewer commits.
async fn commit_reply(sender: &StompSender, reply: &FinalReply, ack: Option<&str>) -> bool {
    let mut transaction = sender.transaction();
    if !reply.reply_to.is_empty() {
        let mut headers = correlation_headers(reply.correlation_id.as_deref());
        // Persistent, so that the broker's receipt means the reply outlives a broker restart
        // (a non-persistent reply not yet read by SOAR is dropped by the restart).
        headers.push(("persistent", "true"));
        transaction.send(&reply.reply_to, &headers, reply.body.clone());
    }
    if let Some(ack) = ack {
        transaction.ack(ack);
    }
    matches!(
        tokio::time::timeout(RECEIPT_TIMEOUT, transaction.commit_grouped()).await,
        Ok(Ok(()))
    )
}

/// How long a final reply's commit may wait for the broker's receipt before the reply is
/// kept for the message's redelivery.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);

fn correlation_headers(correlation_id: Option<&str>) -> Vec<(&'static str, &str)> {
    correlation_id
        .map(|id| vec![("correlation-id", id)])
        .unwrap_or_default()
}

/// A broker connection opened before the service starts (while SOAR's REST start-up calls
/// run), not yet subscribed.
pub type EarlyConnection = tokio::task::JoinHandle<Result<Connection, StompError>>;

/// A connection's two halves.
pub type Connection = (StompSender, soar_stomp::StompReceiver);

/// Opens the broker connection (TCP, TLS, CONNECT) without subscribing; it needs only the
/// `[resilient]` settings, so start-up can run it alongside the REST calls.
pub async fn connect(settings: &ResilientSettings) -> Result<Connection, StompError> {
    let (login, passcode) = settings.stomp_login();
    let tls = settings.stomp_tls.then(|| TlsOptions {
        ca_file: match &settings.stomp_verify {
            Verify::CaFile(path) => Some(path.clone()),
            _ => None,
        },
        verify: settings.stomp_verify != Verify::Off,
        server_name: settings.stomp_host.clone(),
    });
    if settings.stomp_tls && settings.stomp_verify == Verify::Off {
        tracing::warn!(
            "the broker's TLS certificate is NOT verified (cafile/stomp_cafile = false)"
        );
    }
    if !settings.stomp_tls {
        tracing::warn!("stomp_tls = false: talking to the broker in plain text");
    }
    let heartbeat = settings.stomp_heartbeat.as_millis() as u64;
    let options = ConnectOptions {
        host: settings.stomp_host.clone(),
        port: settings.stomp_port,
        tls,
        login: login.to_string(),
        passcode: passcode.to_string(),
        vhost: settings.stomp_host.clone(),
        heart_beat: (0, heartbeat),
        connect_timeout: settings.stomp_timeout,
        max_frame_size: settings
            .max_message_size
            .saturating_mul(2)
            .max(64 * 1024 * 1024),
    };
    let (sender, receiver, _info) = soar_stomp::connect(options).await?;
    Ok((sender, receiver))
}

async fn subscribe(
    config: &ServiceConfig,
    connection: Connection,
) -> Result<Connection, StompError> {
    let settings = &config.settings;
    let prefetch = settings.prefetch.to_string();
    // The point where resilient-circuits logs that it has started: SUBSCRIBE goes out.
    tracing::info!(destinations = ?config.destinations, "subscribing");
    // Every SUBSCRIBE goes out at once; each waits for its own receipt.
    let subscriptions = config.destinations.iter().map(|destination| {
        let queue = format!("actions.{}.{destination}", config.org_id);
        let sender = &connection.0;
        let prefetch = prefetch.as_str();
        async move {
            sender
                .subscribe(
                    &queue,
                    &queue,
                    AckMode::ClientIndividual,
                    &[("activemq.prefetchSize", prefetch)],
                )
                .await?;
            tracing::info!(queue, prefetch = settings.prefetch, "subscribed");
            Ok::<(), StompError>(())
        }
    });
    futures_util::future::try_join_all(subscriptions).await?;
    Ok(connection)
}

/// Uses the early connection if there is one and it worked, else opens a new one; then
/// subscribes.
async fn connect_and_subscribe(
    config: &ServiceConfig,
    early: Option<EarlyConnection>,
) -> Result<Connection, StompError> {
    let connection = match early {
        Some(early) => match early.await {
            Ok(Ok(connection)) if connection.0.is_connected() => connection,
            _ => connect(&config.settings).await?,
        },
        None => connect(&config.settings).await?,
    };
    subscribe(config, connection).await
}

/// Broker refusals that no reconnect can fix (resilient-circuits exits on them too).
fn fatal(error: &StompError) -> Option<String> {
    let text = error.to_string();
    let lower = text.to_lowercase();
    let refused = lower.contains("is not authorized to")
        || lower.contains("already subscribed")
        || lower.contains("user name [") && lower.contains("] or password is invalid");
    refused.then_some(text)
}

/// Exponential back-off with jitter: 1 s doubling to 60 s.
struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = base.mul_f64(fastrand::f64() * 0.25);
        (base + jitter).min(self.max)
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these structures half-updated in a
    // way that matters more than stopping the runner would.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<_> = (0..8).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_secs(1) && delays[0] <= Duration::from_millis(1250));
        assert!(delays[1] >= Duration::from_secs(2));
        assert!(delays[7] <= Duration::from_secs(60));
        assert!(delays[7] >= Duration::from_secs(60).mul_f64(0.99));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(1250));
    }
}
