//! The shared MISP client: one per process, pooled connections, typed calls, MISP's own
//! errors, retries for what is safe to repeat, and a key that never leaves the process.

mod budget;
mod client;
mod config;
mod error;

pub use client::{
    CountedEvents, Endpoint, MispClient, Repeat, RetryPolicy, check_shape, read_answer,
};
pub use config::{
    CertificateCheck, DEFAULT_CALL_TIMEOUT_MARGIN_SECONDS, DEFAULT_RETRIES, DEFAULT_SEARCH_LIMIT,
    DEFAULT_TIMEOUT_SECONDS, KEY_PLACEHOLDER, MAX_CALL_TIMEOUT_SECONDS, MispConfig, SECTION,
    Secret,
};
pub use error::{MispError, RetryClass};
pub use reqwest::Method;

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
