//! A SOAR stand-in for tests: the REST API that resilient-circuits (and our runner) calls at
//! start-up and in `customize` ([`rest`]). The function-message driver over the real broker
//! is a separate module.

pub mod driver;
pub mod rest;

/// The functions SOAR knows after the fn_misp and fn_urlscanio customizations, with their
/// message destinations: what the `soar-sim` program and the end-to-end tests serve.
pub const KNOWN_FUNCTIONS: &[(&str, &str)] = &[
    ("misp_create_attribute", "fn_misp"),
    ("misp_create_event", "fn_misp"),
    ("misp_create_sighting", "fn_misp"),
    ("misp_create_tag", "fn_misp"),
    ("misp_search_attribute", "fn_misp"),
    ("misp_sighting_list", "fn_misp"),
    ("misp_get_event", "fn_misp"),
    ("misp_search_events", "fn_misp"),
    ("misp_remove_tag", "fn_misp"),
    ("misp_publish_event", "fn_misp"),
    ("misp_update_attribute", "fn_misp"),
    ("misp_delete_attribute", "fn_misp"),
    ("misp_add_sighting", "fn_misp"),
    ("misp_verdict", "fn_misp"),
    ("misp_check_warninglist", "fn_misp"),
    ("misp_add_attributes", "fn_misp"),
    ("misp_add_object", "fn_misp"),
    ("urlscanio", "urlscanio"),
];

pub use driver::{Driver, DriverError, DriverOptions, Reply, function_message};
pub use rest::{
    RecordedAttachment, RecordedImport, RecordedRequest, SoarRestOptions, SoarRestSim, SoarSimError,
};
