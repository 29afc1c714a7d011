//! An in-memory, stateful MISP stand-in that answers the REST calls fn_misp makes with MISP's
//! own shapes, status codes and soft errors, and records every request for tests.
//!
//! ```no_run
//! # async fn demo() {
//! let sim = misp_sim::MispSim::start(misp_sim::SimOptions::default()).await;
//! let event_id = sim.seed_event(serde_json::json!({"info": "seeded"}));
//! assert_eq!(sim.request_count(), 0);
//! # let _ = event_id;
//! # }
//! ```

mod misp;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

/// How to start a simulator.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Where to listen; `127.0.0.1:0` (a free port) when absent.
    pub listen: Option<SocketAddr>,
    /// The one API key the simulator accepts; [`DEFAULT_KEY`] when absent.
    pub key: Option<String>,
    /// Serve HTTPS with a freshly generated CA and a certificate for `localhost`/`127.0.0.1`.
    pub tls: bool,
}

/// The key a simulator accepts when [`SimOptions::key`] is not given.
pub const DEFAULT_KEY: &str = "SimulatedMispKey0123456789abcdefghijklmn";

/// The organisation every simulated user and event belongs to.
pub const ORG_NAME: &str = "ORGNAME";

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct MispSim {
    url: String,
    address: SocketAddr,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

/// Why a simulator could not start.
#[derive(Debug)]
pub enum SimError {
    Bind(SocketAddr, std::io::Error),
    Tls(String),
    BadKey(String),
}

/// One request as the simulator received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// Arrival order, from 0; survives [`MispSim::clear_requests`].
    pub sequence: u64,
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: Option<String>,
    /// Header names lower-cased; a repeated header keeps its last value.
    pub headers: BTreeMap<String, String>,
    /// The JSON body, `Null` when empty, a JSON string when it was not JSON.
    pub body: Value,
    /// The status answered; `None` while the answer is pending, or when the connection was
    /// dropped, left hanging or closed by the client first (a timeout).
    pub status: Option<u16>,
    /// False when no simulated endpoint matched: a test should treat that as a bug.
    pub known_endpoint: bool,
}

/// A forced answer for [`MispSim::force_next`].
#[derive(Debug, Clone, PartialEq)]
pub struct ForcedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ForcedBody,
}

/// The body of a forced answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ForcedBody {
    Json(Value),
    Text { content_type: String, text: String },
}

/// The role flags of the simulated user; a missing flag gives MISP's 403 ACL error on the
/// endpoints that need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolePermissions {
    /// `events/add`, `attributes/add`.
    pub add: bool,
    pub publish: bool,
    /// `tags/attachTagToObject`.
    pub tagger: bool,
    /// Creating tags that do not exist yet.
    pub tag_editor: bool,
    /// `sightings/add`.
    pub sighting: bool,
    /// `servers/getVersion`.
    pub auth: bool,
    pub site_admin: bool,
}

impl RolePermissions {
    /// An admin: every flag set.
    pub fn all() -> RolePermissions {
        RolePermissions {
            add: true,
            publish: true,
            tagger: true,
            tag_editor: true,
            sighting: true,
            auth: true,
            site_admin: true,
        }
    }

    /// MISP's "Read Only" role: only `perm_auth`.
    pub fn read_only() -> RolePermissions {
        RolePermissions {
            add: false,
            publish: false,
            tagger: false,
            tag_editor: false,
            sighting: false,
            auth: true,
            site_admin: false,
        }
    }
}

impl std::fmt::Display for SimError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Bind(address, error) => {
                write!(formatter, "cannot listen on {address}: {error}")
            }
            SimError::Tls(message) => write!(formatter, "cannot set up TLS: {message}"),
            SimError::BadKey(problem) => write!(formatter, "unusable API key: {problem}"),
        }
    }
}

impl std::error::Error for SimError {}

impl MispSim {
    /// Starts a simulator; panics when it cannot (this is test support). See [`MispSim::try_start`].
    pub async fn start(options: SimOptions) -> MispSim {
        match MispSim::try_start(options).await {
            Ok(sim) => sim,
            Err(error) => panic!("misp-sim did not start: {error}"),
        }
    }

    pub async fn try_start(options: SimOptions) -> Result<MispSim, SimError> {
        let key = options.key.unwrap_or_else(|| DEFAULT_KEY.to_string());
        if !misp::is_well_formed_key(&key) {
            return Err(SimError::BadKey(
                "MISP keys are 40 characters of [a-zA-Z0-9]".to_string(),
            ));
        }
        let address = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| SimError::Bind(address, error))?;
        let address = listener
            .local_addr()
            .map_err(|error| SimError::Bind(address, error))?;
        let tls = if options.tls {
            Some(server::TlsMaterial::generate().map_err(SimError::Tls)?)
        } else {
            None
        };
        let ca_pem = tls.as_ref().map(|material| material.ca_pem.clone());
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Certificates name `localhost`, so HTTPS URLs use it rather than the IP.
        let host = if tls.is_some() && address.ip().is_loopback() {
            "localhost".to_string()
        } else {
            address.ip().to_string()
        };
        let url = format!("{scheme}://{host}:{}", address.port());
        let shared = Arc::new(Shared {
            key,
            state: Mutex::new(misp::State::new()),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            max_in_flight: std::sync::atomic::AtomicUsize::new(0),
        });
        let server = tokio::spawn(server::serve(
            listener,
            tls.map(|material| material.acceptor),
            Arc::clone(&shared),
        ));
        Ok(MispSim {
            url,
            address,
            ca_pem,
            shared,
            server,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// The CA certificate (PEM) that signed the server certificate, when serving HTTPS.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Delays every answer by `latency` (forced answers too).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Answers the next `count` requests with `status`, before authentication and routing.
    /// Without a body MISP's (or, for 502/503/504, a proxy's HTML) body for that status is used;
    /// 429 carries `Retry-After: 1` and the `X-Rate-Limit-*` headers.
    pub fn fail_next(&self, count: usize, status: u16, body: Option<Value>) {
        let forced = misp::default_forced_response(status, body);
        self.force_next(count, forced);
    }

    /// Answers the next `count` requests with `response`.
    pub fn force_next(&self, count: usize, response: ForcedResponse) {
        let mut state = self.shared.lock();
        for _ in 0..count {
            state.forced.push_back(response.clone());
        }
    }

    /// Closes the connection of each of the next `count` requests without answering.
    pub fn drop_next(&self, count: usize) {
        self.shared.lock().drops += count;
    }

    /// Acts on each of the next `count` requests (an add adds, a delete deletes), then closes
    /// the connection without answering: the answer was lost, not the request.
    pub fn lose_next_answers(&self, count: usize) {
        self.shared.lock().losses += count;
    }

    /// Never answers the next `count` requests (the connection stays open).
    pub fn hang_next(&self, count: usize) {
        self.shared.lock().hangs += count;
    }

    /// Acts on each of the next `count` requests, then never answers (the connection stays
    /// open): MISP applied a change whose answer the client will not wait for. Served
    /// before [`MispSim::hang_next`]'s, so that the two together hang what follows too.
    pub fn apply_and_hang_next(&self, count: usize) {
        self.shared.lock().applied_hangs += count;
    }

    pub fn set_permissions(&self, permissions: RolePermissions) {
        self.shared.lock().permissions = permissions;
    }

    /// Adds an event (`{"Event": …}` or bare, as `GET /events/view` returns it) and returns
    /// its id. Missing fields get MISP's defaults; ids already present are kept.
    pub fn seed_event(&self, event: Value) -> String {
        self.shared.lock().seed_event(event)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The most requests that were being answered at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.shared
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// Requests no simulated endpoint matched: a non-empty list means the client called
    /// something MISP does not have.
    pub fn unexpected_requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|request| !request.known_endpoint)
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests (the events stay).
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Every event as `GET /events/view` would show it (`{"Event": …}`), in id order.
    pub fn events(&self) -> Vec<Value> {
        self.shared.lock().event_views()
    }
}

impl Drop for MispSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What the server task and the handle share.
#[derive(Debug)]
struct Shared {
    key: String,
    state: Mutex<misp::State>,
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

/// Counts a request as in flight until it is dropped, answered or abandoned.
pub(crate) struct InFlight(Arc<Shared>);

impl InFlight {
    pub(crate) fn start(shared: &Arc<Shared>) -> InFlight {
        use std::sync::atomic::Ordering;
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, misp::State> {
        // A panic in another test thread must not hide this test's requests.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
