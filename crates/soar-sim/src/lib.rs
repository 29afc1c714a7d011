//! A SOAR stand-in for tests: the REST API that resilient-circuits (and our runner) calls at
//! start-up and in `customize` ([`rest`]). The function-message driver over the real broker
//! is a separate module.

pub mod driver;
pub mod rest;

pub use driver::{Driver, DriverError, DriverOptions, Reply, function_message};
pub use rest::{
    RecordedAttachment, RecordedImport, RecordedRequest, SoarRestOptions, SoarRestSim, SoarSimError,
};
