//! A STOMP 1.2 client for ActiveMQ: frame codec, TLS, heart-beats, receipts.
//!
//! It speaks to the broker the way IBM SOAR's `resilient-circuits` does: `CONNECT` with
//! `accept-version:1.2`, `host`, `login`, `passcode` and `heart-beat`, subscriptions with
//! `ack:client-individual`, and `ACK` frames whose `id` is the `ack` header of the MESSAGE.
//!
//! # Using it
//!
//! ```no_run
//! use std::time::Duration;
//! use soar_stomp::{AckMode, ConnectOptions, TlsOptions, connect};
//!
//! # async fn run() -> Result<(), soar_stomp::StompError> {
//! let (sender, mut receiver, info) = connect(ConnectOptions {
//!     host: "soar.example.com".into(),
//!     port: 65001,
//!     tls: Some(TlsOptions { ca_file: None, verify: true, server_name: "soar.example.com".into() }),
//!     login: "api-key-id".into(),
//!     passcode: "api-key-secret".into(),
//!     vhost: "soar.example.com".into(),
//!     heart_beat: (0, 15_000),
//!     connect_timeout: Duration::from_secs(30),
//!     max_frame_size: 16 * 1024 * 1024,
//! })
//! .await?;
//! let queue = "actions.201.fn_misp";
//! sender.subscribe(queue, queue, AckMode::ClientIndividual, &[("activemq.prefetchSize", "10")]).await?;
//! loop {
//!     // Ends with an error saying why: heart-beat timeout, closed, ERROR frame, ...
//!     let message = receiver.next_message().await?;
//!     let reply_to = message.header("reply-to").unwrap_or("/queue/acks.201.fn_misp").to_owned();
//!     let correlation = message.header("correlation-id").unwrap_or_default().to_owned();
//!     sender.send(&reply_to, &[("correlation-id", &correlation)], "{\"message_type\": 0}").await?;
//!     if let Some(ack_id) = message.header(soar_stomp::ACK_HEADER) {
//!         sender.ack(ack_id).await?;
//!     }
//! }
//! # }
//! ```
//!
//! * [`connect`] opens TCP, optionally TLS (rustls with the ring provider: the CA file if
//!   given, else the system roots; `verify: false` accepts any certificate), sends CONNECT and
//!   waits for CONNECTED, all within `connect_timeout`. It returns a [`StompSender`], a
//!   [`StompReceiver`] and the [`ConnectedInfo`] (including the negotiated heart-beats).
//! * [`StompSender`] is `Clone`; all clones feed one writer task. `send`, `send_with_receipt`,
//!   `subscribe`, `unsubscribe`, `ack`, `nack`, `send_frame` and `disconnect` each return once
//!   the frame is written (or its receipt arrived), and return an error if the connection has
//!   ended, so a caller can keep an unsent reply and send it after reconnecting.
//! * [`StompSender::transaction`] collects SENDs and ACKs that [`Transaction::commit`] sends
//!   as one STOMP transaction (BEGIN, the frames, COMMIT with a receipt): the broker applies
//!   all of them or, when the connection ends first, none. [`Transaction::commit_grouped`]
//!   lets transactions that become ready while a commit is out share the next COMMIT (group
//!   commit), and after each one that carried an ACK it aborts an empty transaction. ActiveMQ
//!   5.17's work for a COMMIT that carries an ACK grows with the number of messages the
//!   connection has ACKed in transactions, until an ABORT (a bare client answering 10,000
//!   calls on one connection: 1.7 ms of broker CPU per transaction of one reply and one ACK,
//!   0.30 ms per reply when 20 share a COMMIT, 0.29 ms with an ABORT after each, 0.19 ms with
//!   no transaction).
//! * [`StompReceiver::next_message`] yields MESSAGE frames. When the connection ends it returns
//!   the reason once: [`StompError::ServerError`] for an ERROR frame,
//!   [`StompError::HeartbeatTimeout`] after 2.5 of the broker's heart-beat intervals of silence
//!   (twice, as resilient-circuits, plus grace for ActiveMQ's late first beat),
//!   [`StompError::Closed`] on EOF, [`StompError::Io`] or [`StompError::Protocol`]; after that,
//!   [`StompError::NotConnected`]. There is no automatic reconnection: the caller connects again
//!   and re-subscribes, as resilient-circuits does.
//! * When heart-beats from us were negotiated, the writer sends an EOL whenever it has been idle
//!   for half the interval.
//!
//! # The wire format
//!
//! [`StompCodec`] implements `tokio_util::codec::{Decoder, Encoder}` and is also what the tests'
//! fake brokers use. Header names and values in a [`Frame`] are unescaped; on the wire they are
//! escaped (`\\`, `\n`, `\r`, `\c`) on every frame except CONNECT and CONNECTED. ActiveMQ's
//! `ack` values contain colons (`ID\cvm-…`), so this matters. Frames with a body get
//! `content-length`, so bodies may contain NUL bytes. The decoder refuses frames over
//! `max_frame_size` with [`CodecError::FrameTooLarge`] before buffering them.

mod codec;
mod connection;
mod error;
mod frame;
mod quickack;
mod tls;

pub use codec::{CodecError, StompCodec, StompItem};
pub use connection::{
    AckMode, ConnectOptions, ConnectedInfo, GROUP_BYTES, GROUP_LIMIT, StompReceiver, StompSender,
    TlsOptions, Transaction, connect,
};
pub use error::StompError;
pub use frame::{ACK_HEADER, Frame};
