//! Names every crate in this package's `[dependencies]` in the library, so that the list in
//! Cargo.toml is the only place a function crate is added.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let manifest_path = manifest_dir.join("Cargo.toml");
    println!("cargo::rerun-if-changed={}", manifest_path.display());
    let manifest = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(error) => panic!("cannot read {}: {error}", manifest_path.display()),
    };
    let crates = dependency_names(&manifest);
    let mut source = String::new();
    for name in &crates {
        let _ = writeln!(source, "extern crate {name} as _;");
    }
    let _ = writeln!(
        source,
        "/// The function crates this package links, by crate name.\npub const LINKED_CRATES: &[&str] = &[{}];",
        crates
            .iter()
            .map(|name| format!("{name:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(error) = std::fs::write(out_dir.join("linked.rs"), source) {
        panic!("cannot write linked.rs: {error}");
    }
}

/// The keys of the `[dependencies]` table, as Rust crate names (`-` becomes `_`).
fn dependency_names(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut names = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if !in_dependencies || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let name = key.trim().split('.').next().unwrap_or_default().trim();
        if !name.is_empty() {
            names.push(name.replace('-', "_"));
        }
    }
    names
}
