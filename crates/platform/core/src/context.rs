//! What a running function gets from the runner: progress, the MISP client, its config
//! section, SOAR's REST API and a cancellation signal.

use std::fmt;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::FunctionError;
use crate::config::{AppConfig, Section};
use crate::misp::MispClient;
use crate::observe::SharedObserver;

/// Where progress messages go: a SOAR status message in the runner, stderr in `invoke`.
pub type ProgressSink = Arc<dyn Fn(String) + Send + Sync>;

/// The part of SOAR's REST API that functions may use.
#[async_trait::async_trait]
pub trait SoarRest: Send + Sync {
    /// Uploads a file to an incident as an attachment and returns SOAR's JSON answer.
    async fn upload_incident_attachment(
        &self,
        incident_id: i64,
        file_name: &str,
        content_type: &str,
        content: Vec<u8>,
    ) -> Result<serde_json::Value, String>;
}

/// Where a call came from, as far as the message says: what identifies one run of a
/// workflow or playbook step, so that a function can recognise the same call made again
/// (a redelivery, or a retry of the step). All `None` outside SOAR (`invoke`, tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOrigin {
    /// The SOAR organisation whose queue the message came from.
    pub org_id: Option<i64>,
    pub workflow_instance_id: Option<i64>,
    pub playbook_instance_id: Option<i64>,
}

/// The context of one function call.
#[derive(Clone)]
pub struct FunctionContext {
    origin: CallOrigin,
    progress: ProgressSink,
    /// This call's view of the shared client, with its budget ([`MispClient::for_call`]).
    misp: Result<MispClient, Arc<String>>,
    config: Arc<AppConfig>,
    soar: Option<Arc<dyn SoarRest>>,
    cancel: CancellationToken,
    request_observer: Option<SharedObserver>,
}

impl fmt::Debug for FunctionContext {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FunctionContext")
            .field("misp", &self.misp.as_ref().map(|_| "MispClient"))
            .field("soar", &self.soar.is_some())
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl FunctionContext {
    /// `misp` is the shared client, or the reason it could not be built (a config error),
    /// which is reported only when a function actually needs MISP. Made when the function
    /// starts: the call's time for MISP (`[fn_misp] call_timeout`) counts from here.
    pub fn new(
        progress: ProgressSink,
        misp: Result<Arc<MispClient>, String>,
        config: Arc<AppConfig>,
        soar: Option<Arc<dyn SoarRest>>,
        cancel: CancellationToken,
    ) -> FunctionContext {
        FunctionContext {
            origin: CallOrigin::default(),
            progress,
            misp: misp.map(|client| client.for_call()).map_err(Arc::new),
            config,
            soar,
            cancel,
            request_observer: None,
        }
    }

    /// The same context with someone watching the requests its clients send (the runner's
    /// metrics); clients built in a function take it from [`FunctionContext::request_observer`].
    pub fn with_request_observer(mut self, observer: Option<SharedObserver>) -> FunctionContext {
        self.request_observer = observer;
        self
    }

    /// The same context for a call from `origin`.
    pub fn with_origin(mut self, origin: CallOrigin) -> FunctionContext {
        self.origin = origin;
        self
    }

    /// Where the call came from (all `None` outside SOAR).
    pub fn origin(&self) -> &CallOrigin {
        &self.origin
    }

    /// Sends a progress message (a SOAR status message).
    pub fn progress(&self, message: impl Into<String>) {
        (self.progress)(message.into());
    }

    /// The MISP client for this call: every request it sends ends within the call's budget.
    pub fn misp(&self) -> Result<&MispClient, FunctionError> {
        match &self.misp {
            Ok(client) => Ok(client),
            Err(reason) => Err(FunctionError::Config(reason.to_string())),
        }
    }

    /// The function's own `app.config` section, such as `[urlscanio]`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.config.section(name)
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    pub fn soar(&self) -> Result<&dyn SoarRest, FunctionError> {
        self.soar.as_deref().ok_or_else(|| {
            FunctionError::Soar("no SOAR connection is available in this mode".to_string())
        })
    }

    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Who watches the requests a function's own HTTP client sends, if anyone.
    pub fn request_observer(&self) -> Option<SharedObserver> {
        self.request_observer.clone()
    }
}
