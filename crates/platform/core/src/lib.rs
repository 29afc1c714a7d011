//! The contract between the runner and the function crates: definitions, inputs, results,
//! errors, the registry, configuration and the shared MISP client. Nothing here knows STOMP.

pub mod config;
pub mod context;
pub mod error;
pub mod function;
pub mod inputs;
pub mod message;
pub mod misp;
pub mod observe;
pub mod payload;
pub mod protected;
pub mod registry;
pub mod secret;
pub mod tls;

pub use async_trait::async_trait;
pub use context::{CallOrigin, FunctionContext, ProgressSink, SoarRest};
pub use error::FunctionError;
pub use function::{AppInfo, Function, FunctionDefinition, InputField, InputType, SelectValue};
pub use inputs::{InputError, Inputs};
pub use payload::{FunctionOutput, Metrics, result_payload};
pub use registry::{Registration, Registry, RegistryError};

/// Re-exported so that `register_function!` works without function crates naming `inventory`.
#[doc(hidden)]
pub use inventory;

/// Registers a function with the process-wide registry.
///
/// The argument is a constant expression of a type that implements [`Function`], usually a
/// unit struct: `soar_core::register_function!(MispCreateEvent);`.
#[macro_export]
macro_rules! register_function {
    ($function:expr) => {
        $crate::inventory::submit! {
            $crate::Registration::new(&$function)
        }
    };
}
