//! Links every function crate listed in this package's Cargo.toml into whatever depends on
//! it (the runner, xtask), so that each crate's `register_function!` is collected.
//!
//! A crate nothing names is not linked, and its registration silently vanishes; build.rs
//! names each dependency here, and the runner's `every_function_crate_is_linked` compares
//! the registry with the function crates on disk.

include!(concat!(env!("OUT_DIR"), "/linked.rs"));
