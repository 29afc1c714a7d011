//! The load driver (SOAR's side: publish a burst of function messages, or one at a time,
//! and time every final reply) and the ceiling consumer (ack and one reply per message, no function logic, at
//! once or after a fixed hold).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use soar_stomp::{AckMode, ConnectOptions, Frame, StompReceiver, StompSender, TlsOptions};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::setup::Broker;

/// The message destination every scenario uses.
pub const DESTINATION: &str = "fn_misp";
/// The function the throughput scenarios call.
pub const FUNCTION: &str = "misp_search_attribute";
/// The function the big-event scenarios call.
pub const GET_EVENT_FUNCTION: &str = "misp_get_event";

/// One burst: `messages` calls of `function` to org `org_id`'s queue.
#[derive(Debug, Clone)]
pub struct BurstOptions {
    pub org_id: u64,
    pub messages: usize,
    pub function: &'static str,
    /// The same inputs for every call.
    pub inputs: Value,
    /// At most this many calls without a final reply (the next is published when one is
    /// answered); `None` publishes the whole burst at once.
    pub in_flight: Option<usize>,
    /// Give up once no final reply has come for this long.
    pub idle_timeout: Duration,
    /// Give up after this long in any case.
    pub total_timeout: Duration,
}

/// What one burst measured.
#[derive(Debug, Clone)]
pub struct BurstOutcome {
    pub published: usize,
    /// Distinct messages with a final reply.
    pub answered: usize,
    /// Final replies with `message_type` 1.
    pub error_replies: usize,
    /// Final replies beyond the first for a message.
    pub duplicate_finals: usize,
    /// Progress replies (`complete: false`).
    pub progress_replies: usize,
    /// Publish to final reply, in milliseconds, one per answered message.
    pub latencies_ms: Vec<f64>,
    /// First publish to last final reply.
    pub elapsed: Duration,
    /// How long publishing the burst took.
    pub publish_time: Duration,
}

/// A running ceiling consumer; stopped when dropped.
#[derive(Debug)]
pub struct CeilingConsumer {
    task: JoinHandle<()>,
}

impl BurstOutcome {
    /// Answered messages per second of `elapsed`.
    pub fn throughput(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl Drop for CeilingConsumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Publishes the burst as SOAR does (plain STOMP: the driver is SOAR, not the subject) and
/// waits for every final reply, or for a timeout.
pub async fn burst(broker: &Broker, options: &BurstOptions) -> Result<BurstOutcome> {
    let queue = format!("actions.{}.{DESTINATION}", options.org_id);
    let reply_to = format!("/queue/acks.{}.{DESTINATION}", options.org_id);
    // Subscribed before anything is published, so that no reply is missed.
    let (reply_sender, mut replies) = open(broker, false).await?;
    reply_sender
        .subscribe(&reply_to, &reply_to, AckMode::Auto, &[])
        .await
        .context("subscribing to the reply queue")?;
    let (publisher, _unused) = open(broker, false).await?;
    // Bodies are built before the clock starts.
    let bodies: Vec<Vec<u8>> = (0..options.messages)
        .map(|index| {
            soar_sim::function_message(options.function, options.inputs.clone(), index as i64)
                .to_string()
                .into_bytes()
        })
        .collect();
    let total = options.messages;
    let idle_timeout = options.idle_timeout;
    let deadline = Instant::now() + options.total_timeout;
    // Each final reply gives a permit back, so that the next call can be published.
    let window = options
        .in_flight
        .map(|in_flight| Arc::new(Semaphore::new(in_flight.max(1))));
    let answered = window.clone();
    let collector = tokio::spawn(async move {
        let collected = collect(
            &mut replies,
            total,
            idle_timeout,
            deadline,
            answered.as_deref(),
        )
        .await;
        if let Some(window) = answered {
            // Ends a publisher waiting for a reply that will not come.
            window.close();
        }
        drop(reply_sender);
        collected
    });
    let mut sent_at = Vec::with_capacity(total);
    let started = Instant::now();
    for (index, body) in bodies.into_iter().enumerate() {
        if let Some(window) = &window {
            // Closed when the collector gave up waiting for a reply.
            let Ok(permit) = window.acquire().await else {
                break;
            };
            permit.forget();
        }
        let correlation_id = format!("invid:{index}");
        let headers = [
            ("reply-to", reply_to.as_str()),
            ("correlation-id", correlation_id.as_str()),
            ("Co3MessagePayload", "FunctionDataDTO"),
            ("Co3ContentType", "application/json"),
            ("Co3ContextToken", "eyJhbGciOiJIUzI1NiJ9.bnVsbA.bench"),
            ("Co3RemoteAddr", "127.0.0.1"),
            ("persistent", "true"),
        ];
        sent_at.push(Instant::now());
        publisher
            .send(&queue, &headers, body)
            .await
            .with_context(|| format!("publishing message {index} of the burst"))?;
    }
    let publish_time = started.elapsed();
    let collected = collector.await.context("the reply collector panicked")?;
    let _ = publisher.disconnect().await;
    let mut latencies_ms = Vec::with_capacity(total);
    let mut last_final = started;
    for (index, arrived) in collected.final_at.iter().enumerate() {
        if let (Some(arrived), Some(sent)) = (arrived, sent_at.get(index)) {
            latencies_ms.push(arrived.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
            last_final = last_final.max(*arrived);
        }
    }
    Ok(BurstOutcome {
        published: sent_at.len(),
        answered: latencies_ms.len(),
        error_replies: collected.error_replies,
        duplicate_finals: collected.duplicate_finals,
        progress_replies: collected.progress_replies,
        latencies_ms,
        elapsed: last_final.saturating_duration_since(started),
        publish_time,
    })
}

/// Starts the ceiling consumer on org `org_id`'s queue: over TLS like the subjects, acks,
/// then sends one final reply per message, with `prefetch` messages in flight. With a
/// `hold`, each message waits that long before its ACK and reply, all of them at once, as
/// a function that only waits on MISP would: the broker's own bound for that shape.
pub async fn start_ceiling_consumer(
    broker: &Broker,
    org_id: u64,
    prefetch: usize,
    hold: Duration,
) -> Result<CeilingConsumer> {
    let (sender, mut receiver) = open(broker, true).await?;
    let queue = format!("actions.{org_id}.{DESTINATION}");
    let prefetch = prefetch.to_string();
    sender
        .subscribe(
            &queue,
            &queue,
            AckMode::ClientIndividual,
            &[("activemq.prefetchSize", prefetch.as_str())],
        )
        .await
        .context("subscribing the ceiling consumer")?;
    let reply = json!({"message_type": 0, "message": "Completed", "complete": true, "results": {}})
        .to_string();
    let task = tokio::spawn(async move {
        while let Ok(frame) = receiver.next_message().await {
            if hold.is_zero() {
                if answer(&sender, &frame, &reply).await.is_err() {
                    break;
                }
                continue;
            }
            let (sender, reply) = (sender.clone(), reply.clone());
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                let _ = answer(&sender, &frame, &reply).await;
            });
        }
    });
    Ok(CeilingConsumer { task })
}

/// The ceiling consumer's answer to one message: its ACK, then one final reply.
async fn answer(sender: &StompSender, frame: &Frame, reply: &str) -> Result<()> {
    if let Some(ack) = frame.header("ack") {
        sender.ack(ack).await?;
    }
    let (Some(reply_to), correlation_id) =
        (frame.header("reply-to"), frame.header("correlation-id"))
    else {
        return Ok(());
    };
    let headers = [("correlation-id", correlation_id.unwrap_or(""))];
    sender
        .send(reply_to, &headers, reply.as_bytes().to_vec())
        .await?;
    Ok(())
}

/// The replies of one burst as they arrived.
struct Collected {
    final_at: Vec<Option<Instant>>,
    error_replies: usize,
    duplicate_finals: usize,
    progress_replies: usize,
}

async fn collect(
    replies: &mut StompReceiver,
    total: usize,
    idle_timeout: Duration,
    deadline: Instant,
    window: Option<&Semaphore>,
) -> Collected {
    let mut collected = Collected {
        final_at: vec![None; total],
        error_replies: 0,
        duplicate_finals: 0,
        progress_replies: 0,
    };
    let mut answered = 0;
    let mut last_final = Instant::now();
    while answered < total {
        let now = Instant::now();
        let wait_until = (last_final + idle_timeout).min(deadline);
        let Some(wait) = wait_until.checked_duration_since(now) else {
            break;
        };
        let frame = match tokio::time::timeout(wait, replies.next_message()).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(error)) => {
                eprintln!("bench: the reply connection ended: {error}");
                break;
            }
            Err(_) => break,
        };
        let arrived = Instant::now();
        let index = frame
            .header("correlation-id")
            .and_then(|id| id.strip_prefix("invid:"))
            .and_then(|number| number.parse::<usize>().ok());
        let body: Value = serde_json::from_slice(&frame.body).unwrap_or(Value::Null);
        if body.get("complete").and_then(Value::as_bool) != Some(true) {
            collected.progress_replies += 1;
            continue;
        }
        if body.get("message_type").and_then(Value::as_i64) != Some(0) {
            collected.error_replies += 1;
        }
        match index.and_then(|index| collected.final_at.get_mut(index)) {
            Some(slot @ None) => {
                *slot = Some(arrived);
                answered += 1;
                last_final = arrived;
                if let Some(window) = window {
                    window.add_permits(1);
                }
            }
            Some(Some(_)) => collected.duplicate_finals += 1,
            None => {}
        }
    }
    collected
}

async fn open(broker: &Broker, tls: bool) -> Result<(StompSender, StompReceiver)> {
    let (port, tls) = match tls {
        true => (broker.tls_port, Some(tls_options(&broker.ca))),
        false => (broker.port, None),
    };
    let (sender, receiver, _) = soar_stomp::connect(ConnectOptions {
        host: "127.0.0.1".into(),
        port,
        tls,
        login: "bench".into(),
        passcode: "bench".into(),
        vhost: "localhost".into(),
        heart_beat: (0, 0),
        connect_timeout: Duration::from_secs(10),
        max_frame_size: 64 * 1024 * 1024,
    })
    .await
    .with_context(|| format!("connecting to the broker on 127.0.0.1:{port}"))?;
    Ok((sender, receiver))
}

fn tls_options(ca: &Path) -> TlsOptions {
    TlsOptions {
        ca_file: Some(ca.to_path_buf()),
        verify: true,
        server_name: "localhost".into(),
    }
}
