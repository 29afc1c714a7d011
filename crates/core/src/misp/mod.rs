//! The shared MISP client: one per process, pooled connections, typed calls, MISP's own
//! errors, retries for what is safe to repeat, and a key that never leaves the process.
//!
//! STUB: the public surface is fixed; the bodies are being written.

use std::time::Duration;

use serde_json::Value;

use crate::config::{AppConfig, ConfigError};

/// A MISP API key; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(<redacted>)")
    }
}

/// How the server certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateCheck {
    /// Against the system roots.
    System,
    /// Against the CA bundle at this path only.
    CaFile(std::path::PathBuf),
    /// Not at all (`verify_cert = false`); logged as a warning.
    Off,
}

/// The validated `[fn_misp]` section.
#[derive(Debug, Clone)]
pub struct MispConfig {
    pub url: reqwest::Url,
    pub key: Secret,
    pub certificate_check: CertificateCheck,
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
    /// The most events `misp_search_attribute` asks for.
    pub search_limit: u32,
}

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
}

/// A new event for `POST /events/add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub info: String,
    pub distribution: Option<i64>,
    pub threat_level_id: Option<i64>,
    pub analysis: Option<i64>,
}

/// A new attribute for `POST /attributes/add/{event}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttribute {
    pub attribute_type: String,
    pub value: String,
}

/// A new sighting for `POST /sightings/add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSighting {
    pub value: String,
    pub timestamp: i64,
    pub source: String,
}

/// The shared MISP client.
#[derive(Debug, Clone)]
pub struct MispClient {
    config: MispConfig,
}

impl MispConfig {
    /// Validates `[fn_misp]` (with `[integrations]` for proxies and timeout).
    pub fn from_app_config(config: &AppConfig) -> Result<MispConfig, ConfigError> {
        let _ = config;
        todo!()
    }
}

impl MispClient {
    pub fn new(config: MispConfig) -> Result<MispClient, MispError> {
        let _ = &config;
        todo!()
    }

    pub fn config(&self) -> &MispConfig {
        &self.config
    }

    /// `POST /events/add`; MISP's `{"Event": …}`.
    pub async fn add_event(&self, event: &NewEvent) -> Result<Value, MispError> {
        let _ = event;
        todo!()
    }

    /// `GET /events/view/{id}`; MISP's `{"Event": …}`.
    pub async fn get_event(&self, event_id: &str) -> Result<Value, MispError> {
        let _ = event_id;
        todo!()
    }

    /// `POST /attributes/add/{event}` (id or uuid); MISP's `{"Attribute": …}`.
    pub async fn add_attribute(
        &self,
        event: &str,
        attribute: &NewAttribute,
    ) -> Result<Value, MispError> {
        let _ = (event, attribute);
        todo!()
    }

    /// `POST /events/restSearch` with `query` (`returnFormat: json` is added); the list of
    /// `{"Event": …}`, `{"response": …}` unwrapped. Retried: searches are safe to repeat.
    pub async fn search_events(&self, query: Value) -> Result<Value, MispError> {
        let _ = query;
        todo!()
    }

    /// `POST /attributes/restSearch`; `{"Attribute": [...]}` with `response` unwrapped.
    pub async fn search_attributes(&self, query: Value) -> Result<Value, MispError> {
        let _ = query;
        todo!()
    }

    /// `POST /sightings/add`; MISP's `{"Sighting": …}`. An HTTP-200 "Could not add the
    /// Sighting" is `MispError::Rejected`.
    pub async fn add_sighting(&self, sighting: &NewSighting) -> Result<Value, MispError> {
        let _ = sighting;
        todo!()
    }

    /// `POST /sightings/listSightings` `{"context": "event", "id": N}`.
    pub async fn list_event_sightings(&self, event_id: i64) -> Result<Value, MispError> {
        let _ = event_id;
        todo!()
    }

    /// `POST /tags/attachTagToObject` `{"uuid", "tag", "local"}`.
    pub async fn attach_tag(&self, uuid: &str, tag: &str, local: bool) -> Result<Value, MispError> {
        let _ = (uuid, tag, local);
        todo!()
    }

    /// `GET /servers/getVersion`.
    pub async fn get_version(&self) -> Result<Value, MispError> {
        todo!()
    }

    /// `GET /users/view/me`: the key's user with its `Role`.
    pub async fn get_me(&self) -> Result<Value, MispError> {
        todo!()
    }
}
