//! The error type of the STOMP client; every variant names the broker's host:port.

use std::time::Duration;

use crate::codec::CodecError;

/// Everything that can go wrong talking to a STOMP broker.
///
/// [`StompError::is_transient`] tells whether reconnecting may help.
#[derive(Debug, thiserror::Error)]
pub enum StompError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// TCP, TLS and the CONNECT/CONNECTED exchange did not finish in time.
    #[error("connecting to {addr} did not finish within {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },
    /// The TLS settings cannot be used (unreadable CA file, bad server name, no roots).
    #[error("invalid tls settings for {addr}: {reason}")]
    TlsConfig { addr: String, reason: String },
    /// The TLS handshake failed, for example because the certificate is not trusted.
    #[error("tls handshake with {addr} failed: {source}")]
    TlsHandshake {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The broker answered CONNECT with something other than CONNECTED or ERROR.
    #[error("{addr} answered CONNECT with a {command} frame instead of CONNECTED")]
    UnexpectedFrame { addr: String, command: String },
    /// The broker sent an ERROR frame; it closes the connection afterwards.
    #[error("{addr} sent an ERROR frame: {message}")]
    ServerError {
        addr: String,
        /// The `message` header (empty when absent).
        message: String,
        /// The body, decoded lossily as UTF-8.
        body: String,
    },
    /// Nothing (not even a heart-beat) arrived for 2.5 negotiated server intervals: twice the
    /// interval as in resilient-circuits, plus half an interval because ActiveMQ's beats can be
    /// two full intervals apart right after it sent a frame.
    #[error(
        "nothing received from {addr} for {silent_for:?} (2.5 negotiated heart-beat intervals)"
    )]
    HeartbeatTimeout { addr: String, silent_for: Duration },
    /// The broker closed the connection.
    #[error("{addr} closed the connection")]
    Closed { addr: String },
    /// Reading from or writing to the connection failed.
    #[error("i/o error on the connection to {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The broker sent bytes that are not valid STOMP, or a frame too large.
    #[error("protocol error on the connection to {addr}: {source}")]
    Protocol {
        addr: String,
        #[source]
        source: CodecError,
    },
    /// A frame given to the sender cannot be written (see [`CodecError::Unencodable`]).
    #[error("cannot send to {addr}: {source}")]
    InvalidFrame {
        addr: String,
        #[source]
        source: CodecError,
    },
    /// The connection has ended; `reason` says how. Unsent frames were not sent.
    #[error("not connected to {addr}: {reason}")]
    NotConnected { addr: String, reason: String },
    /// [`crate::StompSender::disconnect`] closed the connection.
    #[error("disconnected from {addr} at our request")]
    Disconnected { addr: String },
    /// The broker did not confirm a DISCONNECT in time; the connection was closed anyway.
    #[error("{addr} sent no receipt for {what} within {timeout:?}")]
    ReceiptTimeout {
        addr: String,
        what: &'static str,
        timeout: Duration,
    },
}

impl StompError {
    /// Whether reconnecting later may succeed (network trouble, a restarted broker), as opposed
    /// to a configuration problem that will fail the same way again.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            StompError::TlsConfig { .. } | StompError::InvalidFrame { .. }
        )
    }

    /// The same failure, for another caller of a grouped commit: the broker's ERROR and the
    /// end of the connection as they are, anything else (which ends the connection too) as
    /// [`StompError::NotConnected`] with this error's text as the reason.
    pub(crate) fn for_another(&self, addr: &str) -> StompError {
        match self {
            StompError::ServerError {
                addr,
                message,
                body,
            } => StompError::ServerError {
                addr: addr.clone(),
                message: message.clone(),
                body: body.clone(),
            },
            StompError::NotConnected { addr, reason } => StompError::NotConnected {
                addr: addr.clone(),
                reason: reason.clone(),
            },
            StompError::Disconnected { addr } => StompError::Disconnected { addr: addr.clone() },
            other => StompError::NotConnected {
                addr: addr.to_owned(),
                reason: other.to_string(),
            },
        }
    }

    pub(crate) fn from_codec(addr: &str, error: CodecError) -> StompError {
        match error {
            CodecError::Io(source) => StompError::Io {
                addr: addr.to_owned(),
                source,
            },
            source @ CodecError::Unencodable { .. } => StompError::InvalidFrame {
                addr: addr.to_owned(),
                source,
            },
            source => StompError::Protocol {
                addr: addr.to_owned(),
                source,
            },
        }
    }
}
