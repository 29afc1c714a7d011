//! The function-message driver: publishes function messages to `actions.<org>.<destination>`
//! through the real broker with SOAR's headers and body, and collects the replies in order,
//! as the SOAR platform does. It reconnects by itself, so a test can restart the broker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use soar_stomp::{AckMode, ConnectOptions, StompError, StompSender, TlsOptions};
use tokio::sync::{Notify, watch};

/// Where the broker is and which org's queues to use.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsOptions>,
    pub org_id: i64,
    /// Message destinations whose reply queues (`acks.<org>.<destination>`) are read.
    pub destinations: Vec<String>,
}

/// One reply the runner sent, as SOAR receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub message_type: i64,
    pub message: String,
    pub complete: bool,
    pub results: Option<Value>,
    /// The whole body.
    pub body: Value,
}

/// Why the driver could not do something.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Stomp(#[from] StompError),
    #[error("no final reply for {correlation_id} within {timeout:?}; replies so far: {so_far:?}")]
    NoFinalReply {
        correlation_id: String,
        timeout: Duration,
        so_far: Vec<Reply>,
    },
    #[error("the driver is not connected to the broker")]
    NotConnected,
}

/// A connected driver. Dropping it stops its background task.
#[derive(Debug)]
pub struct Driver {
    options: DriverOptions,
    sender: watch::Receiver<Option<StompSender>>,
    replies: Arc<Replies>,
    next_invocation: AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Replies {
    by_correlation: Mutex<HashMap<String, Vec<Reply>>>,
    /// Reply message ids already recorded: the broker redelivers a reply whose ack was
    /// lost (a broker restart), and that is the same reply, not a second one.
    seen: Mutex<std::collections::HashSet<String>>,
    /// Correlation ids published again after a send whose receipt never came: the broker
    /// may hold both copies, so the runner may rightly answer each.
    republished: Mutex<std::collections::HashSet<String>>,
    /// Every final reply in arrival order, to check that none came twice.
    finals: Mutex<Vec<String>>,
    changed: Notify,
}

impl Driver {
    /// Connects, subscribes to the reply queues, and keeps reconnecting in the background.
    pub async fn connect(options: DriverOptions) -> Result<Driver, DriverError> {
        let (sender_tx, sender_rx) = watch::channel(None);
        let replies = Arc::new(Replies::default());
        // The first connection is made here so a wrong address fails the test at once.
        let first = open(&options, &replies).await?;
        let _ = sender_tx.send(Some(first.0.clone()));
        let task = tokio::spawn(keep_connected(
            options.clone(),
            replies.clone(),
            sender_tx,
            first,
        ));
        Ok(Driver {
            options,
            sender: sender_rx,
            replies,
            next_invocation: AtomicU64::new(fastrand_seed()),
            task,
        })
    }

    /// Publishes a function message the way SOAR does; returns its correlation id.
    pub async fn invoke(
        &self,
        destination: &str,
        function: &str,
        inputs: Value,
    ) -> Result<String, DriverError> {
        let invocation = self.next_invocation.fetch_add(1, Ordering::Relaxed);
        let body = function_message(function, inputs, invocation as i64);
        self.publish_raw(destination, body.to_string().into_bytes(), invocation)
            .await
    }

    /// Publishes any body (malformed ones included) with SOAR's headers.
    pub async fn publish_raw(
        &self,
        destination: &str,
        body: Vec<u8>,
        invocation: u64,
    ) -> Result<String, DriverError> {
        let correlation_id = format!("invid:{invocation}");
        let queue = format!("actions.{}.{destination}", self.options.org_id);
        let reply_to = format!("/queue/acks.{}.{destination}", self.options.org_id);
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis().to_string())
            .unwrap_or_default();
        let headers = [
            ("reply-to", reply_to.as_str()),
            ("correlation-id", correlation_id.as_str()),
            ("Co3MessagePayload", "FunctionDataDTO"),
            ("Co3ContentType", "application/json"),
            ("Co3ContextToken", "eyJhbGciOiJIUzI1NiJ9.bnVsbA.soar-sim"),
            ("Co3RemoteAddr", "127.0.0.1"),
            ("persistent", "true"),
            ("timestamp", timestamp.as_str()),
        ];
        let mut attempts = 0;
        loop {
            let sender = self.current_sender().await?;
            match sender
                .send_with_receipt(&queue, &headers, body.clone())
                .await
            {
                Ok(()) => return Ok(correlation_id),
                Err(error) if attempts < 50 => {
                    attempts += 1;
                    lock(&self.replies.republished).insert(correlation_id.clone());
                    tracing_like_log(&format!("publish failed ({error}); retrying"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// A fresh invocation number for `publish_raw`.
    pub fn next_invocation(&self) -> u64 {
        self.next_invocation.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits for the final reply of `correlation_id`; returns every reply in order.
    pub async fn wait_final(
        &self,
        correlation_id: &str,
        timeout: Duration,
    ) -> Result<Vec<Reply>, DriverError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.replies.changed.notified();
            let so_far = self.replies(correlation_id);
            if so_far.iter().any(|reply| reply.complete) {
                return Ok(so_far);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(DriverError::NoFinalReply {
                    correlation_id: correlation_id.to_string(),
                    timeout,
                    so_far: self.replies(correlation_id),
                });
            }
        }
    }

    /// The replies received so far for `correlation_id`, in order.
    pub fn replies(&self, correlation_id: &str) -> Vec<Reply> {
        lock(&self.replies.by_correlation)
            .get(correlation_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The correlation ids of every final reply received, in order, duplicates included.
    pub fn final_replies(&self) -> Vec<String> {
        lock(&self.replies.finals).clone()
    }

    /// Correlation ids that were published more than once because a send's receipt never
    /// came (the broker went away mid-send); each copy is a message of its own.
    pub fn republished(&self) -> std::collections::HashSet<String> {
        lock(&self.replies.republished).clone()
    }

    async fn current_sender(&self) -> Result<StompSender, DriverError> {
        let mut receiver = self.sender.clone();
        let wait =
            receiver.wait_for(|sender| sender.as_ref().is_some_and(StompSender::is_connected));
        match tokio::time::timeout(Duration::from_secs(60), wait).await {
            Ok(Ok(sender)) => sender.clone().ok_or(DriverError::NotConnected),
            _ => Err(DriverError::NotConnected),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A FunctionDataDTO body as SOAR sends it (soar_protocol §3.3).
pub fn function_message(function: &str, inputs: Value, invocation: i64) -> Value {
    let workflow = json!({
        "workflow_id": 155, "programmatic_name": format!("example_{function}"),
        "name": format!("Example: {function}"), "description": null, "uuid": null,
        "object_type": {"id": 0, "name": "incident"}, "actions": [], "tags": []
    });
    json!({
        "function": {
            "id": 146, "name": function, "display_name": function,
            "description": {"format": "text", "content": function},
            "uuid": null, "version": 1, "creator": null, "view_items": [], "workflows": [],
            "tags": []
        },
        "groups": [],
        "inputs": inputs,
        "playbook_instance": null,
        "principal": {"id": 1, "type": "user", "name": "admin@example.com", "display_name": "Admin User"},
        "workflow": workflow.clone(),
        "workflow_instance": {"workflow_instance_id": invocation, "workflow": workflow}
    })
}

type Connection = (StompSender, soar_stomp::StompReceiver);

async fn open(options: &DriverOptions, replies: &Arc<Replies>) -> Result<Connection, StompError> {
    let _ = replies;
    let (sender, receiver, _) = soar_stomp::connect(ConnectOptions {
        host: options.host.clone(),
        port: options.port,
        tls: options.tls.clone(),
        login: "soar-sim".into(),
        passcode: "soar-sim".into(),
        vhost: options.host.clone(),
        heart_beat: (0, 0),
        connect_timeout: Duration::from_secs(10),
        max_frame_size: 256 * 1024 * 1024,
    })
    .await?;
    for destination in &options.destinations {
        let queue = format!("/queue/acks.{}.{destination}", options.org_id);
        sender
            .subscribe(&queue, &queue, AckMode::ClientIndividual, &[])
            .await?;
    }
    Ok((sender, receiver))
}

async fn keep_connected(
    options: DriverOptions,
    replies: Arc<Replies>,
    sender_tx: watch::Sender<Option<StompSender>>,
    first: Connection,
) {
    let mut connection = Some(first);
    loop {
        let (sender, mut receiver) = match connection.take() {
            Some(connection) => connection,
            None => match open(&options, &replies).await {
                Ok(connection) => connection,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let _ = sender_tx.send(Some(sender.clone()));
        while let Ok(frame) = receiver.next_message().await {
            if let Some(ack) = frame.header("ack") {
                let _ = sender.ack(ack).await;
            }
            record(&replies, &frame);
        }
        let _ = sender_tx.send(None);
    }
}

fn record(replies: &Replies, frame: &soar_stomp::Frame) {
    if let Some(message_id) = frame.header("message-id")
        && !lock(&replies.seen).insert(message_id.to_string())
    {
        return;
    }
    let correlation_id = frame.header("correlation-id").unwrap_or("").to_string();
    let body: Value = serde_json::from_slice(&frame.body).unwrap_or(Value::Null);
    let reply = Reply {
        message_type: body
            .get("message_type")
            .and_then(Value::as_i64)
            .unwrap_or(-1),
        message: body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        complete: body
            .get("complete")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        results: body.get("results").cloned(),
        body,
    };
    if reply.complete {
        lock(&replies.finals).push(correlation_id.clone());
    }
    lock(&replies.by_correlation)
        .entry(correlation_id)
        .or_default()
        .push(reply);
    replies.changed.notify_waiters();
}

fn fastrand_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos % 1_000_000) * 1_000
}

fn tracing_like_log(message: &str) {
    eprintln!("soar-sim driver: {message}");
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
