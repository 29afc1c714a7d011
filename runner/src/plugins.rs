//! Links every function crate into the binary so its `register_function!` runs.
//!
//! A crate the binary never names is not linked, and its registration silently vanishes;
//! `every_function_crate_is_linked` in `main.rs` guards this list.

use misp_create_attribute as _;
use misp_create_event as _;
use misp_create_sighting as _;
use misp_create_tag as _;
use misp_search_attribute as _;
use misp_sighting_list as _;
use urlscanio as _;
