//! What a failed MISP call says: one variant per cause, carrying MISP's own words, and the
//! classification the retry loop uses.

use std::time::Duration;

use serde_json::Value;

use crate::config::ConfigError;

/// A MISP call that failed, carrying what MISP said.
#[derive(Debug, thiserror::Error)]
pub enum MispError {
    #[error("cannot connect to MISP at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("MISP did not answer {method} {path} within {seconds} s")]
    Timeout {
        method: String,
        path: String,
        seconds: u64,
    },
    /// 401/403 authentication and permission failures.
    #[error("MISP refused {method} {path} (HTTP {status}): {message}")]
    Forbidden {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("MISP has no such object for {path} (HTTP 404): {message}")]
    NotFound { path: String, message: String },
    /// MISP refused the request's content: a 4xx envelope, or an HTTP-200 soft error such
    /// as `{"saved": false, "errors": …}`. `body` is MISP's JSON as it came.
    #[error("MISP rejected {method} {path} (HTTP {status}): {message}")]
    Rejected {
        method: String,
        path: String,
        status: u16,
        message: String,
        body: Value,
    },
    #[error("MISP is rate-limiting {path} (HTTP 429){}", retry_after.map(|d| format!("; retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        path: String,
        retry_after: Option<Duration>,
    },
    #[error("MISP failed on {method} {path} (HTTP {status}): {message}")]
    Server {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    /// The call's time for MISP (`[fn_misp] call_timeout`) ran out; nothing more was sent.
    #[error(
        "MISP did not answer within the call's {} budget ([fn_misp] call_timeout); {detail}",
        super::budget::seconds_text(*budget)
    )]
    BudgetSpent { budget: Duration, detail: String },
    #[error("MISP's answer to {path} could not be read: {problem}")]
    InvalidResponse { path: String, problem: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl MispError {
    /// MISP's own JSON body for a rejected request.
    pub fn body(&self) -> Option<&Value> {
        match self {
            MispError::Rejected { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The HTTP status MISP answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            MispError::Forbidden { status, .. }
            | MispError::Rejected { status, .. }
            | MispError::Server { status, .. } => Some(*status),
            MispError::NotFound { .. } => Some(404),
            MispError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// How a retry loop should treat this failure.
    pub fn retry_class(&self) -> RetryClass {
        match self {
            MispError::Connect { .. } | MispError::Timeout { .. } => RetryClass::Transient,
            MispError::Server {
                status: 502..=504, ..
            } => RetryClass::Transient,
            MispError::RateLimited { retry_after, .. } => RetryClass::Throttled(*retry_after),
            _ => RetryClass::Permanent,
        }
    }
}

/// Whether a failed request may succeed if repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Connection failures, timeouts, 502/503/504: repeat after a back-off.
    Transient,
    /// 429: repeat after the server's delay, when it gave one.
    Throttled(Option<Duration>),
    /// Everything else: repeating gives the same answer.
    Permanent,
}
