//! Connecting to a broker, and the sender and receiver handles over one connection's tasks.

use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use crate::quickack::QuickAckStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_util::codec::{Decoder, Framed, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::codec::{StompCodec, StompItem};
use crate::error::StompError;
use crate::frame::Frame;
use crate::tls;

/// Where and how to connect. There is deliberately no `Default`: every field is a decision.
#[derive(Clone)]
pub struct ConnectOptions {
    /// The broker's host name or IP address.
    pub host: String,
    /// The broker's STOMP port.
    pub port: u16,
    /// TLS settings; `None` for plain TCP.
    pub tls: Option<TlsOptions>,
    /// The `login` header; when empty, neither `login` nor `passcode` is sent.
    pub login: String,
    /// The `passcode` header. Never printed by `Debug`.
    pub passcode: String,
    /// The `host` header of CONNECT (ActiveMQ ignores it; RabbitMQ reads it as the vhost).
    pub vhost: String,
    /// `(cx, cy)` of the CONNECT `heart-beat` header in milliseconds: how often we can send
    /// heart-beats and how often we want them; 0 means never. resilient-circuits uses `(0, 15000)`.
    pub heart_beat: (u64, u64),
    /// Limit for TCP connect, TLS handshake and CONNECT/CONNECTED together; also how long
    /// [`StompSender::disconnect`] waits for the broker's receipt.
    pub connect_timeout: Duration,
    /// The largest frame accepted from the broker, in bytes (head, body and NUL).
    pub max_frame_size: usize,
}

/// TLS settings of a connection.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// PEM file with the CA certificates to trust; `None` for the system's roots.
    pub ca_file: Option<PathBuf>,
    /// `false` accepts any certificate (the caller should log a warning).
    pub verify: bool,
    /// The name sent as SNI and checked against the certificate (a DNS name or an IP address).
    pub server_name: String,
}

/// The `ack` mode of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// The broker considers a message consumed once sent.
    Auto,
    /// `ACK` acknowledges the message and all earlier ones of the subscription.
    Client,
    /// `ACK` acknowledges only the one message; what resilient-circuits uses.
    ClientIndividual,
}

/// What the broker said in CONNECTED.
#[derive(Debug, Clone)]
pub struct ConnectedInfo {
    /// The `version` header (`1.2` for ActiveMQ).
    pub version: String,
    /// The `server` header, such as `ActiveMQ/5.17.2`.
    pub server: Option<String>,
    /// The `session` header.
    pub session: Option<String>,
    /// The negotiated heart-beats in milliseconds: `(we send every, the broker sends every)`;
    /// 0 means off. The connection is declared dead after 2.5 times the second value of
    /// silence (see [`StompError::HeartbeatTimeout`]).
    pub heart_beat: (u64, u64),
    /// The whole CONNECTED frame.
    pub frame: Frame,
}

/// Sends frames over the connection. Cheap to clone; all clones share one writer task.
///
/// Every method waits until its frame has been written to the socket, and returns an error
/// if the connection has ended, so an unsent frame is never silently lost (a written one can
/// still be lost with the connection unless it asked for a receipt). Frames from one task are
/// written in call order. Dropping a call's future after it was queued may still let the
/// frame be written.
#[derive(Debug, Clone)]
pub struct StompSender {
    shared: Arc<Shared>,
    requests: mpsc::Sender<WriteRequest>,
    _handles: Arc<HandleGuard>,
}

/// Frames the broker applies together or not at all: one STOMP transaction.
///
/// Built with [`StompSender::transaction`]; nothing is written until
/// [`Transaction::commit`], which queues BEGIN, every frame with the `transaction` header,
/// and COMMIT back to back (so one flush usually carries them all) and waits for the
/// COMMIT's receipt. If the connection ends before the broker has processed the COMMIT, the
/// broker rolls the transaction back: ActiveMQ discards its SENDs and redelivers the
/// messages it ACKed. Dropping a `Transaction` without committing sends nothing.
#[derive(Debug)]
#[must_use = "a transaction sends nothing until it is committed"]
pub struct Transaction {
    sender: StompSender,
    id: String,
    frames: Vec<Frame>,
}

/// Receives the broker's MESSAGE frames.
#[derive(Debug)]
pub struct StompReceiver {
    shared: Arc<Shared>,
    messages: mpsc::UnboundedReceiver<Result<Frame, StompError>>,
    _handles: Arc<HandleGuard>,
}

/// Opens a connection: TCP, optional TLS, then CONNECT and CONNECTED.
///
/// On success, two tasks run until the connection ends: one writes frames and heart-beats,
/// the other reads frames, hands MESSAGE frames to the [`StompReceiver`], resolves receipts
/// and watches the broker's heart-beats. The connection ends when the broker closes it, sends
/// ERROR, stays silent for 2.5 heart-beat intervals, on an I/O error, on
/// [`StompSender::disconnect`], or when every sender and the receiver have been dropped.
pub async fn connect(
    options: ConnectOptions,
) -> Result<(StompSender, StompReceiver, ConnectedInfo), StompError> {
    let addr = format!("{}:{}", options.host, options.port);
    match tokio::time::timeout(options.connect_timeout, handshake(&options, &addr)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(StompError::ConnectTimeout {
            addr,
            timeout: options.connect_timeout,
        }),
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("login", &self.login)
            .field("passcode", &"<redacted>")
            .field("vhost", &self.vhost)
            .field("heart_beat", &self.heart_beat)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_frame_size", &self.max_frame_size)
            .finish()
    }
}

impl AckMode {
    /// The value of the SUBSCRIBE `ack` header.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }
}

impl StompSender {
    /// Sends `body` to `destination` with `content-length` and the extra headers.
    pub async fn send(
        &self,
        destination: &str,
        extra_headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<(), StompError> {
        self.send_frame(send_frame(destination, extra_headers, body.into()))
            .await
    }

    /// Like [`StompSender::send`], then waits for the broker's RECEIPT, which ActiveMQ sends
    /// once the message is accepted. Has no timeout of its own; wrap it in one if needed.
    pub async fn send_with_receipt(
        &self,
        destination: &str,
        extra_headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<(), StompError> {
        self.send_frame_with_receipt(send_frame(destination, extra_headers, body.into()))
            .await
    }

    /// Subscribes to `destination` under subscription `id`.
    /// resilient-circuits uses the destination as the id, `ClientIndividual`, and
    /// `activemq.prefetchSize` as an extra header.
    pub async fn subscribe(
        &self,
        id: &str,
        destination: &str,
        ack_mode: AckMode,
        extra_headers: &[(&str, &str)],
    ) -> Result<(), StompError> {
        let mut frame = Frame::new("SUBSCRIBE")
            .with_header("destination", destination)
            .with_header("id", id)
            .with_header("ack", ack_mode.as_str());
        for (name, value) in extra_headers {
            frame = frame.with_header(*name, *value);
        }
        self.send_frame(frame).await
    }

    /// Ends subscription `id`.
    pub async fn unsubscribe(&self, id: &str) -> Result<(), StompError> {
        self.send_frame(Frame::new("UNSUBSCRIBE").with_header("id", id))
            .await
    }

    /// Acknowledges a message; `id` is the value of its `ack` header ([`crate::ACK_HEADER`]).
    pub async fn ack(&self, id: &str) -> Result<(), StompError> {
        self.send_frame(Frame::new("ACK").with_header("id", id))
            .await
    }

    /// Rejects a message; `id` is the value of its `ack` header.
    pub async fn nack(&self, id: &str) -> Result<(), StompError> {
        self.send_frame(Frame::new("NACK").with_header("id", id))
            .await
    }

    /// Starts a transaction on this connection; see [`Transaction`].
    pub fn transaction(&self) -> Transaction {
        let id = format!(
            "soar-stomp-tx-{}",
            self.shared.next_transaction.fetch_add(1, Ordering::Relaxed)
        );
        Transaction {
            sender: self.clone(),
            id,
            frames: Vec::new(),
        }
    }

    /// Writes any frame as it is.
    pub async fn send_frame(&self, frame: Frame) -> Result<(), StompError> {
        self.send_frames(vec![frame]).await
    }

    /// Queues `frames` back to back, in order, and waits until each has been written.
    async fn send_frames(&self, frames: Vec<Frame>) -> Result<(), StompError> {
        if self.shared.ended.is_cancelled() {
            return Err(self.shared.not_connected());
        }
        let mut pending = Vec::with_capacity(frames.len());
        for frame in frames {
            let (done, written) = oneshot::channel();
            // A peer that stops reading blocks the writer; once heart-beat supervision (or
            // anything else) ends the connection, callers must not wait on it any longer.
            let queued = tokio::select! {
                biased;
                queued = self.requests.send(WriteRequest { frame, done }) => queued.is_ok(),
                () = self.shared.ended.cancelled() => false,
            };
            if !queued {
                return Err(self.shared.not_connected());
            }
            pending.push(written);
        }
        for written in pending {
            tokio::select! {
                biased;
                result = written => match result {
                    Ok(result) => result?,
                    Err(_dropped) => return Err(self.shared.not_connected()),
                },
                () = self.shared.ended.cancelled() => return Err(self.shared.not_connected()),
            }
        }
        Ok(())
    }

    /// Writes a frame with a fresh `receipt` header and waits for the matching RECEIPT.
    pub async fn send_frame_with_receipt(&self, frame: Frame) -> Result<(), StompError> {
        let (receipt_id, receipt) = self.shared.register_receipt()?;
        self.send_frame(frame.with_header("receipt", receipt_id))
            .await?;
        match receipt.await {
            Ok(result) => result,
            Err(_dropped) => Err(self.shared.not_connected()),
        }
    }

    /// Sends DISCONNECT with a receipt, waits for the receipt up to the connect timeout, then
    /// closes the connection whatever happened. Returns `Ok` at once if it had already ended.
    pub async fn disconnect(&self) -> Result<(), StompError> {
        if self.shared.ended.is_cancelled() {
            return Ok(());
        }
        self.shared.disconnecting.store(true, Ordering::SeqCst);
        let timeout = self.shared.disconnect_timeout;
        let result = tokio::time::timeout(
            timeout,
            self.send_frame_with_receipt(Frame::new("DISCONNECT")),
        )
        .await;
        self.shared.finish(StompError::Disconnected {
            addr: self.shared.addr.clone(),
        });
        match result {
            Ok(Ok(())) => Ok(()),
            // The broker closes the socket right after the receipt; losing that race is fine.
            Ok(Err(StompError::NotConnected { .. } | StompError::Disconnected { .. })) => Ok(()),
            Ok(Err(error)) => Err(error),
            Err(_elapsed) => Err(StompError::ReceiptTimeout {
                addr: self.shared.addr.clone(),
                what: "DISCONNECT",
                timeout,
            }),
        }
    }

    /// Whether the connection is still up, as far as this process knows.
    pub fn is_connected(&self) -> bool {
        !self.shared.ended.is_cancelled()
    }

    /// The broker's `host:port`.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }
}

impl Transaction {
    /// Adds a SEND of `body` to `destination` with `content-length` and the extra headers.
    pub fn send(
        &mut self,
        destination: &str,
        extra_headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> &mut Transaction {
        self.frames
            .push(send_frame(destination, extra_headers, body.into()));
        self
    }

    /// Adds an ACK of a message; `id` is the value of its `ack` header.
    pub fn ack(&mut self, id: &str) -> &mut Transaction {
        self.frames.push(Frame::new("ACK").with_header("id", id));
        self
    }

    /// Sends BEGIN, the frames and COMMIT, and waits for the broker's receipt of the COMMIT:
    /// `Ok` means the broker applied every frame. An error means it applied none, or (when
    /// the connection ended after COMMIT was written) that this process cannot know; the
    /// broker's redelivery of an ACKed message is then what tells. Has no timeout of its own.
    pub async fn commit(self) -> Result<(), StompError> {
        let Transaction { sender, id, frames } = self;
        let (receipt_id, receipt) = sender.shared.register_receipt()?;
        let mut all = Vec::with_capacity(frames.len() + 2);
        all.push(Frame::new("BEGIN").with_header("transaction", id.as_str()));
        // Only SEND and ACK frames are added, and those always encode, so the writer can
        // never drop one frame of the transaction and write the rest.
        all.extend(
            frames
                .into_iter()
                .map(|frame| frame.with_header("transaction", id.as_str())),
        );
        all.push(
            Frame::new("COMMIT")
                .with_header("transaction", id.as_str())
                .with_header("receipt", receipt_id),
        );
        sender.send_frames(all).await?;
        match receipt.await {
            Ok(result) => result,
            Err(_dropped) => Err(sender.shared.not_connected()),
        }
    }

    /// Like [`Transaction::commit`], but the frames may share one STOMP transaction with
    /// other callers' grouped transactions on this connection: while a grouped commit is out,
    /// the transactions grouped meanwhile wait, and the next commit carries all of them (up to
    /// [`GROUP_LIMIT`] transactions or [`GROUP_BYTES`] of bodies). One call at a time this is
    /// one commit per transaction, as before; under load the broker gets fewer, larger commits.
    ///
    /// The guarantee is the same as `commit`'s for this transaction's frames: `Ok` means the
    /// broker applied them, an error that it applied none or that this process cannot know.
    /// The group fails together: a frame of another transaction the broker refuses ends the
    /// connection, and with it this transaction. Worth it against ActiveMQ, whose work per
    /// COMMIT that carries an ACK grows with the ACKs the connection has committed (see the
    /// crate's documentation).
    pub async fn commit_grouped(self) -> Result<(), StompError> {
        let Transaction {
            sender,
            id: _,
            frames,
        } = self;
        let (done, result) = oneshot::channel();
        let lead = {
            let mut group = sender.shared.group();
            group.waiting.push(Grouped { frames, done });
            !std::mem::replace(&mut group.committing, true)
        };
        if lead {
            // A task of its own, so that a caller that stops waiting does not stop the
            // commit the others in its group wait for.
            tokio::spawn(commit_groups(sender.clone()));
        }
        match result.await {
            Ok(result) => result,
            Err(_dropped) => Err(sender.shared.not_connected()),
        }
    }

    /// The `transaction` header's value, unique on its connection.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// At most this many grouped transactions share one COMMIT.
pub const GROUP_LIMIT: usize = 64;

/// A grouped commit takes no more transactions once their bodies reach this many bytes (it
/// always takes the first, whatever its size).
pub const GROUP_BYTES: usize = 1024 * 1024;

/// A transaction waiting for the grouped commit that will carry it.
#[derive(Debug)]
struct Grouped {
    frames: Vec<Frame>,
    done: oneshot::Sender<Result<(), StompError>>,
}

/// The grouped transactions of one connection: those waiting, and whether a task is
/// committing (it takes whatever waits each time its commit is done, until nothing does).
#[derive(Debug, Default)]
struct Group {
    waiting: Vec<Grouped>,
    committing: bool,
}

/// Commits what waits in the connection's group, a batch at a time, until nothing does.
async fn commit_groups(sender: StompSender) {
    loop {
        let batch = {
            let mut group = sender.shared.group();
            if group.waiting.is_empty() {
                group.committing = false;
                return;
            }
            let mut bytes = 0;
            let take = group
                .waiting
                .iter()
                .take(GROUP_LIMIT)
                .take_while(|grouped| {
                    let first = bytes == 0;
                    bytes += grouped
                        .frames
                        .iter()
                        .map(|frame| frame.body.len())
                        .sum::<usize>()
                        .max(1);
                    first || bytes <= GROUP_BYTES
                })
                .count();
            group.waiting.drain(..take).collect::<Vec<_>>()
        };
        let mut transaction = sender.transaction();
        let mut waiters = Vec::with_capacity(batch.len());
        for Grouped { frames, done } in batch {
            transaction.frames.extend(frames);
            waiters.push(done);
        }
        let acks = transaction
            .frames
            .iter()
            .any(|frame| frame.command == "ACK");
        let result = transaction.commit().await;
        let committed = result.is_ok();
        for done in waiters {
            let _caller_gone = done.send(match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(error.for_another(&sender.shared.addr)),
            });
        }
        if committed && acks {
            forget_committed_acks(&sender).await;
        }
    }
}

/// Begins and aborts an empty transaction, which is how ActiveMQ can be made to forget the
/// ACKs it has committed.
///
/// ActiveMQ 5.x (5.17.2 checked, and its main branch) keeps every message ACKed inside a
/// transaction on a `client-individual` subscription in a list that COMMIT never empties:
/// only ABORT does. Each COMMIT then searches that list once per message still unacked, so
/// its cost grows with every call the connection has answered (1.7 ms of broker CPU per
/// commit on average over 10,000 calls, against 0.29 ms with this ABORT after each commit), and each entry
/// keeps its message in the broker's memory until the connection closes. ABORT moves the
/// entries to the connection's table of ack ids, which costs nothing to search but still
/// holds them: only closing the connection frees them (see the runner's
/// `stomp_max_calls_per_connection`).
///
/// The ABORT forgets the ACKs of every open transaction on the connection, which is why it
/// is only sent here, after a grouped commit's receipt and before the next grouped
/// transaction begins: a connection whose transactions all go through
/// [`Transaction::commit_grouped`] never has another one open at that point.
async fn forget_committed_acks(sender: &StompSender) {
    let id = format!(
        "soar-stomp-forget-{}",
        sender
            .shared
            .next_transaction
            .fetch_add(1, Ordering::Relaxed)
    );
    // Written without a receipt: a broker that refuses it ends the connection, which the
    // next commit and the receiver report.
    let _ = sender
        .send_frames(vec![
            Frame::new("BEGIN").with_header("transaction", id.as_str()),
            Frame::new("ABORT").with_header("transaction", id.as_str()),
        ])
        .await;
}

impl StompReceiver {
    /// The next MESSAGE frame. When the connection ends this returns the reason once (such as
    /// [`StompError::HeartbeatTimeout`], [`StompError::Closed`] or [`StompError::ServerError`]),
    /// then [`StompError::NotConnected`]. Cancel-safe, so it can be used in `select!`.
    ///
    /// Messages are queued without a bound: the broker's prefetch (`activemq.prefetchSize`
    /// with client acks) is what limits them.
    pub async fn next_message(&mut self) -> Result<Frame, StompError> {
        match self.messages.recv().await {
            Some(result) => result,
            None => Err(self.shared.not_connected()),
        }
    }

    /// The broker's `host:port`.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }
}

/// Anything a connection can run over: a TCP stream or a TLS stream over one.
trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

type BoxedTransport = Box<dyn Transport>;

#[derive(Debug)]
struct WriteRequest {
    frame: Frame,
    done: oneshot::Sender<Result<(), StompError>>,
}

/// State shared by the handles and the two tasks of one connection.
#[derive(Debug)]
struct Shared {
    addr: String,
    /// Cancelled when the connection has ended, for whatever reason.
    ended: CancellationToken,
    disconnecting: AtomicBool,
    disconnect_timeout: Duration,
    next_receipt: AtomicU64,
    next_transaction: AtomicU64,
    state: Mutex<SharedState>,
    group: Mutex<Group>,
}

#[derive(Debug)]
struct SharedState {
    /// Why the connection ended, for errors returned after the fact.
    end_reason: Option<String>,
    /// Taken (dropped) when the connection ends, so the receiver sees the end.
    messages: Option<mpsc::UnboundedSender<Result<Frame, StompError>>>,
    receipts: HashMap<String, oneshot::Sender<Result<(), StompError>>>,
}

/// Ends the connection when the last sender clone and the receiver have both been dropped.
#[derive(Debug)]
struct HandleGuard {
    shared: Arc<Shared>,
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        self.shared.finish(StompError::Disconnected {
            addr: self.shared.addr.clone(),
        });
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SharedState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters here, so a poisoned lock is still used.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn group(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the end of the connection once: the receiver gets `error`, waiters for
    /// receipts get `NotConnected`, and both tasks stop.
    fn finish(&self, error: StompError) {
        let mut state = self.lock();
        if state.end_reason.is_none() {
            tracing::debug!(addr = %self.addr, reason = %error, "stomp connection ended");
            state.end_reason = Some(error.to_string());
            if let Some(messages) = state.messages.take() {
                let _receiver_gone = messages.send(Err(error));
            }
            state.receipts.clear();
        }
        drop(state);
        self.ended.cancel();
    }

    fn deliver(&self, frame: Frame) {
        if let Some(messages) = &self.lock().messages {
            let _receiver_gone = messages.send(Ok(frame));
        }
    }

    fn not_connected(&self) -> StompError {
        let reason = self.lock().end_reason.clone();
        StompError::NotConnected {
            addr: self.addr.clone(),
            reason: reason.unwrap_or_else(|| "the connection has ended".to_owned()),
        }
    }

    fn register_receipt(
        &self,
    ) -> Result<(String, oneshot::Receiver<Result<(), StompError>>), StompError> {
        let id = format!(
            "soar-stomp-{}",
            self.next_receipt.fetch_add(1, Ordering::Relaxed)
        );
        let (sender, receiver) = oneshot::channel();
        let mut state = self.lock();
        if state.end_reason.is_some() {
            drop(state);
            return Err(self.not_connected());
        }
        state.receipts.insert(id.clone(), sender);
        Ok((id, receiver))
    }

    fn complete_receipt(&self, receipt_id: &str, result: Result<(), StompError>) {
        if let Some(waiter) = self.lock().receipts.remove(receipt_id) {
            let _waiter_gone = waiter.send(result);
        }
    }
}

async fn handshake(
    options: &ConnectOptions,
    addr: &str,
) -> Result<(StompSender, StompReceiver, ConnectedInfo), StompError> {
    // Check the TLS settings before touching the network, so a bad CA file is reported as such.
    let tls_config = match &options.tls {
        None => None,
        Some(tls_options) => {
            Some(
                tls::client_config(tls_options).map_err(|reason| StompError::TlsConfig {
                    addr: addr.to_owned(),
                    reason,
                })?,
            )
        }
    };
    let tcp = TcpStream::connect((options.host.as_str(), options.port))
        .await
        .map_err(|source| StompError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    // Frames are written whole; waiting to coalesce them only adds latency.
    let _ = tcp.set_nodelay(true);
    // And what the broker sends is acknowledged at once: a broker with Nagle's algorithm on
    // holds its next frame until then (see `quickack`).
    let tcp = QuickAckStream::new(tcp);
    let transport: BoxedTransport = match tls_config {
        None => Box::new(tcp),
        Some((config, server_name)) => Box::new(
            TlsConnector::from(config)
                .connect(server_name, tcp)
                .await
                .map_err(|source| StompError::TlsHandshake {
                    addr: addr.to_owned(),
                    source,
                })?,
        ),
    };

    let mut framed = Framed::new(transport, StompCodec::new(options.max_frame_size));
    framed
        .send(connect_frame(options))
        .await
        .map_err(|error| StompError::from_codec(addr, error))?;
    let connected = loop {
        match framed.next().await {
            None => {
                return Err(StompError::Closed {
                    addr: addr.to_owned(),
                });
            }
            Some(Err(error)) => return Err(StompError::from_codec(addr, error)),
            Some(Ok(StompItem::HeartBeat)) => continue,
            Some(Ok(StompItem::Frame(frame))) => match frame.command.as_str() {
                "CONNECTED" => break frame,
                "ERROR" => return Err(server_error(addr, &frame)),
                _ => {
                    return Err(StompError::UnexpectedFrame {
                        addr: addr.to_owned(),
                        command: frame.command,
                    });
                }
            },
        }
    };
    let heart_beat = negotiate_heart_beat(options.heart_beat, connected.header("heart-beat"));
    let info = ConnectedInfo {
        version: connected.header("version").unwrap_or("1.0").to_owned(),
        server: connected.header("server").map(str::to_owned),
        session: connected.header("session").map(str::to_owned),
        heart_beat,
        frame: connected,
    };
    tracing::debug!(
        addr,
        version = %info.version,
        server = info.server.as_deref().unwrap_or(""),
        send_heart_beat_ms = heart_beat.0,
        receive_heart_beat_ms = heart_beat.1,
        "stomp connected"
    );

    let mut parts = framed.into_parts();
    // The broker may have sent more right after CONNECTED, and that is already buffered: the
    // reader below would only look at it after more bytes arrive, so decode it now.
    // A decode error there is reported through the receiver like any later one.
    let mut early_items = Vec::new();
    loop {
        match parts.codec.decode(&mut parts.read_buf) {
            Ok(Some(item)) => early_items.push(Ok(item)),
            Ok(None) => break,
            Err(error) => {
                early_items.push(Err(error));
                break;
            }
        }
    }
    let (read_half, write_half) = tokio::io::split(parts.io);
    let mut reader = FramedRead::new(read_half, parts.codec);
    reader.read_buffer_mut().extend_from_slice(&parts.read_buf);
    let writer = FramedWrite::new(write_half, StompCodec::new(options.max_frame_size));

    let (message_sender, messages) = mpsc::unbounded_channel();
    let (requests, request_receiver) = mpsc::channel(64);
    let shared = Arc::new(Shared {
        addr: addr.to_owned(),
        ended: CancellationToken::new(),
        disconnecting: AtomicBool::new(false),
        disconnect_timeout: options.connect_timeout,
        next_receipt: AtomicU64::new(1),
        next_transaction: AtomicU64::new(1),
        group: Mutex::new(Group::default()),
        state: Mutex::new(SharedState {
            end_reason: None,
            messages: Some(message_sender),
            receipts: HashMap::new(),
        }),
    });
    let handles = Arc::new(HandleGuard {
        shared: shared.clone(),
    });
    // Send well within the broker's expected interval so scheduling delays never look like
    // a dead client.
    let send_every = (heart_beat.0 > 0).then(|| Duration::from_millis(heart_beat.0) / 2);
    // Twice the interval, as resilient-circuits does, plus half an interval of grace: ActiveMQ
    // counts its own frames as beats, so its first beat after CONNECTED (or after any frame)
    // can come a full two intervals later (measured against 5.17: 2.004 s for 1 s).
    let silence_limit = (heart_beat.1 > 0).then(|| Duration::from_millis(heart_beat.1) * 5 / 2);
    tokio::spawn(write_loop(
        shared.clone(),
        writer,
        request_receiver,
        send_every,
    ));
    tokio::spawn(read_loop(
        shared.clone(),
        reader,
        early_items,
        silence_limit,
    ));

    let sender = StompSender {
        shared: shared.clone(),
        requests,
        _handles: handles.clone(),
    };
    let receiver = StompReceiver {
        shared,
        messages,
        _handles: handles,
    };
    Ok((sender, receiver, info))
}

fn connect_frame(options: &ConnectOptions) -> Frame {
    let mut frame = Frame::new("CONNECT")
        .with_header("accept-version", "1.2")
        .with_header("host", options.vhost.as_str());
    if !options.login.is_empty() {
        frame = frame
            .with_header("login", options.login.as_str())
            .with_header("passcode", options.passcode.as_str());
    }
    frame.with_header(
        "heart-beat",
        format!("{},{}", options.heart_beat.0, options.heart_beat.1),
    )
}

fn send_frame(destination: &str, extra_headers: &[(&str, &str)], body: Bytes) -> Frame {
    let mut frame = Frame::new("SEND").with_header("destination", destination);
    for (name, value) in extra_headers {
        frame = frame.with_header(*name, *value);
    }
    frame.with_body(body)
}

fn server_error(addr: &str, frame: &Frame) -> StompError {
    StompError::ServerError {
        addr: addr.to_owned(),
        message: frame.header("message").unwrap_or_default().to_owned(),
        body: frame.body_text(),
    }
}

/// STOMP 1.2 negotiation: each direction is the larger of the two wishes, or off if either
/// side said 0. Returns `(we send every, the broker sends every)` in milliseconds.
pub(crate) fn negotiate_heart_beat(ours: (u64, u64), theirs: Option<&str>) -> (u64, u64) {
    let (client_send, client_want) = ours;
    let (server_send, server_want) = theirs
        .and_then(|value| value.split_once(','))
        .and_then(|(send, want)| Some((send.trim().parse().ok()?, want.trim().parse().ok()?)))
        .unwrap_or((0u64, 0u64));
    let direction = |can: u64, want: u64| {
        if can == 0 || want == 0 {
            0
        } else {
            can.max(want)
        }
    };
    (
        direction(client_send, server_want),
        direction(server_send, client_want),
    )
}

async fn write_loop(
    shared: Arc<Shared>,
    mut writer: FramedWrite<WriteHalf<BoxedTransport>, StompCodec>,
    mut requests: mpsc::Receiver<WriteRequest>,
    send_every: Option<Duration>,
) {
    let mut last_write = Instant::now();
    let mut senders_alive = true;
    loop {
        let heart_beat_due = send_every.map(|every| last_write + every);
        let request = tokio::select! {
            biased;
            () = shared.ended.cancelled() => break,
            request = requests.recv(), if senders_alive => match request {
                Some(request) => request,
                // The receiver may still be in use, so keep the heart-beats going.
                None => {
                    senders_alive = false;
                    continue;
                }
            },
            () = sleep_until_optional(heart_beat_due) => {
                let beat = tokio::select! {
                    biased;
                    () = shared.ended.cancelled() => break,
                    beat = writer.send(StompItem::HeartBeat) => beat,
                };
                if let Err(error) = beat {
                    shared.finish(StompError::from_codec(&shared.addr, error));
                    break;
                }
                last_write = Instant::now();
                continue;
            }
        };
        // Frames queued meanwhile go out with this one: one flush, so one TLS record and one
        // write for the lot, which spares the broker a read per frame under load.
        let mut batch = vec![request];
        while batch.len() < MAX_WRITE_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_empty_or_closed) => break,
            }
        }
        // A write blocked by a peer that no longer reads gives up when the connection ends.
        let written = tokio::select! {
            biased;
            () = shared.ended.cancelled() => Err(None),
            written = write_batch(&mut writer, &mut batch, &shared.addr) => written,
        };
        match written {
            Ok(()) => {
                last_write = Instant::now();
                for request in batch {
                    let _caller_gone = request.done.send(Ok(()));
                }
            }
            Err(error) => {
                if let Some(error) = error {
                    shared.finish(StompError::from_codec(&shared.addr, error));
                }
                for request in batch {
                    let _caller_gone = request.done.send(Err(shared.not_connected()));
                }
                break;
            }
        }
    }
    // Queued requests are dropped here, so their callers get `NotConnected`.
    requests.close();
    // Shut down our side (TLS close_notify, TCP FIN); a dead peer must not hold us up.
    let close = SinkExt::<StompItem>::close(&mut writer);
    let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
}

/// How many queued frames one flush may carry.
const MAX_WRITE_BATCH: usize = 64;

/// Encodes every frame of `batch` into the write buffer, then flushes once. A frame that
/// cannot be encoded is answered at once and taken out of the batch (encoding fails before
/// anything is buffered, so the connection is still fine); any other error ends the
/// connection, reported as `Err(Some(_))`.
async fn write_batch<W: AsyncWrite + Unpin>(
    writer: &mut FramedWrite<W, StompCodec>,
    batch: &mut Vec<WriteRequest>,
    addr: &str,
) -> Result<(), Option<crate::CodecError>> {
    let mut index = 0;
    while index < batch.len() {
        match writer.feed(&batch[index].frame).await {
            Ok(()) => index += 1,
            Err(error @ crate::CodecError::Unencodable { .. }) => {
                let request = batch.remove(index);
                let _caller_gone = request.done.send(Err(StompError::from_codec(addr, error)));
            }
            Err(error) => return Err(Some(error)),
        }
    }
    SinkExt::<StompItem>::flush(writer).await.map_err(Some)
}

async fn read_loop(
    shared: Arc<Shared>,
    mut reader: FramedRead<ReadHalf<BoxedTransport>, StompCodec>,
    early_items: Vec<Result<StompItem, crate::CodecError>>,
    silence_limit: Option<Duration>,
) {
    let addr = shared.addr.clone();
    for item in early_items {
        let item = match item {
            Ok(item) => item,
            Err(error) => {
                shared.finish(StompError::from_codec(&addr, error));
                return;
            }
        };
        if handle_item(&shared, item).is_break() {
            return;
        }
    }
    loop {
        let next = tokio::select! {
            biased;
            () = shared.ended.cancelled() => return,
            next = next_with_optional_timeout(&mut reader, silence_limit) => next,
        };
        let disconnecting = shared.disconnecting.load(Ordering::SeqCst);
        let item = match next {
            Err(silent_for) => {
                shared.finish(StompError::HeartbeatTimeout {
                    addr: addr.clone(),
                    silent_for,
                });
                return;
            }
            Ok(None) | Ok(Some(Err(_))) if disconnecting => {
                shared.finish(StompError::Disconnected { addr: addr.clone() });
                return;
            }
            Ok(None) => {
                shared.finish(StompError::Closed { addr: addr.clone() });
                return;
            }
            Ok(Some(Err(error))) => {
                shared.finish(StompError::from_codec(&addr, error));
                return;
            }
            Ok(Some(Ok(item))) => item,
        };
        if handle_item(&shared, item).is_break() {
            return;
        }
    }
}

/// Acts on one item from the broker; `Break` when it ended the connection (an ERROR frame).
fn handle_item(shared: &Shared, item: StompItem) -> ControlFlow<()> {
    let frame = match item {
        StompItem::HeartBeat => return ControlFlow::Continue(()),
        StompItem::Frame(frame) => frame,
    };
    match frame.command.as_str() {
        "MESSAGE" => shared.deliver(frame),
        "RECEIPT" => {
            if let Some(receipt_id) = frame.header("receipt-id") {
                shared.complete_receipt(receipt_id, Ok(()));
            }
        }
        "ERROR" => {
            if let Some(receipt_id) = frame.header("receipt-id") {
                shared.complete_receipt(receipt_id, Err(server_error(&shared.addr, &frame)));
            }
            shared.finish(server_error(&shared.addr, &frame));
            return ControlFlow::Break(());
        }
        other => tracing::debug!(
            addr = %shared.addr,
            command = other,
            "ignoring unexpected stomp frame"
        ),
    }
    ControlFlow::Continue(())
}

/// The next item, or `Err(limit)` if nothing at all arrived within `limit`.
async fn next_with_optional_timeout(
    reader: &mut FramedRead<ReadHalf<BoxedTransport>, StompCodec>,
    limit: Option<Duration>,
) -> Result<Option<Result<StompItem, crate::CodecError>>, Duration> {
    match limit {
        None => Ok(reader.next().await),
        Some(limit) => tokio::time::timeout(limit, reader.next())
            .await
            .map_err(|_elapsed| limit),
    }
}

async fn sleep_until_optional(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// Counts the writes that reach the socket.
    #[derive(Default)]
    struct CountingWriter {
        writes: Vec<Vec<u8>>,
    }

    impl AsyncWrite for CountingWriter {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn request(frame: Frame) -> (WriteRequest, oneshot::Receiver<Result<(), StompError>>) {
        let (done, written) = oneshot::channel();
        (WriteRequest { frame, done }, written)
    }

    #[tokio::test]
    async fn a_batch_goes_out_in_one_write_and_an_unencodable_frame_is_answered_alone() {
        let mut writer = FramedWrite::new(CountingWriter::default(), StompCodec::new(1 << 20));
        let (ack, _) = request(Frame::new("ACK").with_header("id", "m-1"));
        let (bad, bad_written) = request(Frame::new("send"));
        let (send, _) = request(Frame::new("SEND").with_body("{}"));
        let mut batch = vec![ack, bad, send];
        write_batch(&mut writer, &mut batch, "broker:61612")
            .await
            .unwrap();
        let commands: Vec<&str> = batch.iter().map(|r| r.frame.command.as_str()).collect();
        assert_eq!(commands, ["ACK", "SEND"]);
        let writes = &writer.get_ref().writes;
        assert_eq!(writes.len(), 1, "one write for the whole batch: {writes:?}");
        let written = String::from_utf8_lossy(&writes[0]);
        assert!(
            written.starts_with("ACK\nid:m-1\n\n\0SEND\n"),
            "{written:?}"
        );
        assert!(matches!(
            bad_written.await.unwrap(),
            Err(StompError::InvalidFrame { .. })
        ));
    }

    #[test]
    fn heart_beat_negotiation_takes_the_larger_wish_and_zero_means_off() {
        // resilient-circuits against ActiveMQ: the broker sends every 15 s, we send nothing.
        assert_eq!(
            negotiate_heart_beat((0, 15000), Some("15000,0")),
            (0, 15000)
        );
        assert_eq!(
            negotiate_heart_beat((1000, 1000), Some("5000,2000")),
            (2000, 5000)
        );
        assert_eq!(
            negotiate_heart_beat((1000, 0), Some("5000,2000")),
            (2000, 0)
        );
        assert_eq!(negotiate_heart_beat((1000, 1000), None), (0, 0));
        assert_eq!(negotiate_heart_beat((1000, 1000), Some("garbage")), (0, 0));
    }
}
