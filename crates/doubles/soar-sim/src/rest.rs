//! The SOAR REST stand-in: the calls resilient-circuits makes at start-up and in `customize`,
//! answered with SOAR's shapes, HTTP Basic auth on every request, test knobs, and a log of
//! what was asked.
//!
//! ```no_run
//! # async fn demo() {
//! use soar_sim::{SoarRestOptions, SoarRestSim};
//! let sim = SoarRestSim::start(SoarRestOptions {
//!     functions: vec![("misp_create_event".into(), "fn_misp".into())],
//!     ..SoarRestOptions::default()
//! })
//! .await;
//! // Point the runner at sim.url() with the default API key, then inspect sim.requests().
//! # let _ = sim.url();
//! # }
//! ```

mod configuration;
mod multipart;
mod routes;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;

/// The API key id the simulator accepts when [`SoarRestOptions::api_key_id`] is left as is.
pub const DEFAULT_API_KEY_ID: &str = "soar-sim-api-key-id";
/// The API key secret the simulator accepts by default.
pub const DEFAULT_API_KEY_SECRET: &str = "soar-sim-api-key-secret";
/// The user of the legacy email/password login.
pub const DEFAULT_EMAIL: &str = "admin@example.com";
pub const DEFAULT_PASSWORD: &str = "soar-sim-password";
/// The handle SOAR gives the API key; `customize` adds it to message destinations.
pub const API_KEY_HANDLE: u64 = 7;
/// The user id of the legacy login; `customize` adds it to message destinations.
pub const USER_ID: u64 = 1;
/// The second org every session lists (pytest-resilient-circuits' mock has one too), so that
/// org selection by name, uuid or cloud account is actually exercised.
pub const OTHER_ORG_NAME: &str = "Mock Org";
/// `GET /rest/const`'s `server_version.version`.
pub const SERVER_VERSION: &str = "51.0.9.0";

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SoarRestOptions {
    /// Where to listen; `127.0.0.1:0` (a free port) when absent.
    pub listen: Option<SocketAddr>,
    /// The org the API key works in; the other org of the session answers 403.
    pub org_id: u64,
    pub org_name: String,
    pub api_key_id: String,
    pub api_key_secret: String,
    /// The legacy `POST /rest/session` login.
    pub email: String,
    pub password: String,
    /// `(function API name, message destination programmatic name)`; the destinations are
    /// created too.
    pub functions: Vec<(String, String)>,
    /// Serve HTTPS with a fresh CA ([`SoarRestSim::ca_pem`]) and a certificate for
    /// `localhost` and `127.0.0.1`.
    pub tls: bool,
}

/// One request as the simulator received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: Option<String>,
    /// Header names lower-cased; a repeated header keeps its last value.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub status: u16,
    /// False when no simulated endpoint matched: a test should treat that as a bug.
    pub known_endpoint: bool,
}

/// A file posted to `/rest/orgs/{org}/incidents/{incident}/attachments`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedAttachment {
    pub id: u64,
    pub incident_id: u64,
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A customisation import (`POST /configurations/imports`) and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedImport {
    pub id: u64,
    /// `PENDING`, then `ACCEPTED` or `REJECTED`; `FAILED` when refused.
    pub status: String,
    /// The export document as posted.
    pub definition: Value,
}

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SoarSimError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SoarRestSim {
    url: String,
    address: SocketAddr,
    ca_pem: Option<String>,
    shared: Arc<routes::Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Default for SoarRestOptions {
    /// Org 201 "Test Org" as in pytest-resilient-circuits, the default credentials, no
    /// functions, plain HTTP.
    fn default() -> SoarRestOptions {
        SoarRestOptions {
            listen: None,
            org_id: 201,
            org_name: "Test Org".to_string(),
            api_key_id: DEFAULT_API_KEY_ID.to_string(),
            api_key_secret: DEFAULT_API_KEY_SECRET.to_string(),
            email: DEFAULT_EMAIL.to_string(),
            password: DEFAULT_PASSWORD.to_string(),
            functions: Vec::new(),
            tls: false,
        }
    }
}

impl RecordedRequest {
    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `METHOD /path?query`, for compact assertions on the order of calls.
    pub fn line(&self) -> String {
        match &self.query {
            Some(query) => format!("{} {}?{query}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

impl SoarRestSim {
    /// Starts a simulator; panics when it cannot (this is test support). See
    /// [`SoarRestSim::try_start`].
    pub async fn start(options: SoarRestOptions) -> SoarRestSim {
        match SoarRestSim::try_start(options).await {
            Ok(sim) => sim,
            Err(error) => panic!("soar-sim did not start: {error}"),
        }
    }

    pub async fn try_start(options: SoarRestOptions) -> Result<SoarRestSim, SoarSimError> {
        let requested = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = tokio::net::TcpListener::bind(requested)
            .await
            .map_err(|source| SoarSimError::Bind {
                address: requested,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| SoarSimError::Bind {
            address: requested,
            source,
        })?;
        let tls = match options.tls {
            true => Some(server::TlsMaterial::generate().map_err(SoarSimError::Tls)?),
            false => None,
        };
        let ca_pem = tls.as_ref().map(|material| material.ca_pem.clone());
        let url = match (&tls, address.ip().is_loopback()) {
            // The certificate names `localhost`; clients check the name they dialled.
            (Some(_), true) => format!("https://localhost:{}", address.port()),
            (Some(_), false) => format!("https://{address}"),
            (None, _) => format!("http://{address}"),
        };
        let shared = Arc::new(routes::Shared::new(&options));
        let server = tokio::spawn(server::serve(
            listener,
            tls.map(|material| material.acceptor),
            Arc::clone(&shared),
        ));
        Ok(SoarRestSim {
            url,
            address,
            ca_pem,
            shared,
            server,
        })
    }

    /// The base URL (scheme, host and port), without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The CA certificate (PEM) that signed the server certificate, when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn org_id(&self) -> u64 {
        self.shared.org_id()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Requests no simulated endpoint matched: a non-empty list means the client called
    /// something this stand-in does not have.
    pub fn unexpected_requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|request| !request.known_endpoint)
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    pub fn attachments(&self) -> Vec<RecordedAttachment> {
        self.shared.lock().attachments.clone()
    }

    pub fn imports(&self) -> Vec<RecordedImport> {
        self.shared.lock().imports.clone()
    }

    /// What `POST /configurations/exports` answers (with playbooks), for tests to inspect
    /// what imports left in the org.
    pub fn export(&self) -> Value {
        self.shared.lock().export_document(0, true)
    }

    /// The message destinations as `GET /message_destinations` lists them.
    pub fn message_destinations(&self) -> Vec<Value> {
        self.shared.lock().destinations.clone()
    }

    /// Answers every request with 401, as SOAR does for a revoked API key.
    pub fn set_unauthorized(&self, unauthorized: bool) {
        self.shared.lock().unauthorized = unauthorized;
    }

    /// Defines (or redefines) a function and creates its destination if needed.
    pub fn set_function(&self, name: &str, destination: &str) {
        self.shared.lock().define_function(name, destination);
    }

    /// Makes `GET /functions/{name}` answer 404, as for a function not imported into SOAR.
    pub fn remove_function(&self, name: &str) {
        self.shared.lock().functions.remove(name);
    }

    /// Refuses every later import with `reason` in SOAR's `messages`; `None` accepts again.
    pub fn refuse_imports(&self, reason: Option<&str>) {
        self.shared.lock().import_refusal = reason.map(str::to_string);
    }

    /// `GET /rest/orgs/{id}`'s `actions_framework_enabled` (true by default).
    pub fn set_actions_framework_enabled(&self, enabled: bool) {
        self.shared.lock().actions_framework_enabled = enabled;
    }
}

impl Drop for SoarRestSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[cfg(test)]
mod tests;
