//! What a running function gets from the runner: progress, the MISP client, its config
//! section, SOAR's REST API and a cancellation signal.

use std::fmt;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::FunctionError;
use crate::config::{AppConfig, Section};
use crate::misp::MispClient;

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

/// The context of one function call.
#[derive(Clone)]
pub struct FunctionContext {
    progress: ProgressSink,
    misp: Result<Arc<MispClient>, Arc<String>>,
    config: Arc<AppConfig>,
    soar: Option<Arc<dyn SoarRest>>,
    cancel: CancellationToken,
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
    /// which is reported only when a function actually needs MISP.
    pub fn new(
        progress: ProgressSink,
        misp: Result<Arc<MispClient>, String>,
        config: Arc<AppConfig>,
        soar: Option<Arc<dyn SoarRest>>,
        cancel: CancellationToken,
    ) -> FunctionContext {
        FunctionContext {
            progress,
            misp: misp.map_err(Arc::new),
            config,
            soar,
            cancel,
        }
    }

    /// Sends a progress message (a SOAR status message).
    pub fn progress(&self, message: impl Into<String>) {
        (self.progress)(message.into());
    }

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
}
