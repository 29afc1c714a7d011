//! The error a function run ends with; its text is what the analyst sees in SOAR.

use crate::inputs::InputError;
use crate::misp::MispError;

/// Why a function run failed. Each variant renders to a message an analyst can act on.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Misp(#[from] MispError),
    /// A config section or key the function needs is missing or wrong.
    #[error("{0}")]
    Config(String),
    /// The function's own verdict, with the original app's wording where it had one.
    #[error("{0}")]
    Integration(String),
    /// A call to SOAR's REST API (attachments, for instance) failed.
    #[error("SOAR REST call failed: {0}")]
    Soar(String),
    #[error("the function was cancelled because the runner is shutting down")]
    Cancelled,
}

impl FunctionError {
    pub fn integration(message: impl Into<String>) -> FunctionError {
        FunctionError::Integration(message.into())
    }
}
