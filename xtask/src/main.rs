//! `cargo xtask`: generates each app's customization export and the function reference.
//!
//! `cargo xtask customize [--check]` covers every generated file; `cargo xtask docs
//! [--check]` only `docs/functions.md`. With `--check` nothing is written and the exit
//! status is non-zero when a file is stale.

mod bench;

use std::process::ExitCode;

use anyhow::{Result, bail};
use xtask::{Outputs, generated_files, registered_apps, stale_files, workspace_root, write_files};

const USAGE: &str = "usage: cargo xtask customize [--check] | cargo xtask docs [--check]
       cargo xtask package [--image-digest] [--repository-name NAME] [--no-image] [--binary PATH]
       cargo xtask package --write-samples";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(arguments: Vec<String>) -> Result<ExitCode> {
    if arguments.first().is_some_and(|command| command == "bench") {
        return bench::run(&arguments[1..]);
    }
    if arguments
        .first()
        .is_some_and(|command| command == "package")
    {
        return xtask::package::run(&arguments[1..]);
    }
    if arguments.first().is_some_and(|command| command == "image") {
        return xtask::image::command(&arguments[1..]);
    }
    let (outputs, check) = match arguments.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["customize"] => (Outputs::All, false),
        ["customize", "--check"] => (Outputs::All, true),
        ["docs"] => (Outputs::Docs, false),
        ["docs", "--check"] => (Outputs::Docs, true),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        _ => bail!("unknown arguments {arguments:?}\n{USAGE}"),
    };
    let root = workspace_root();
    let apps = registered_apps()?;
    if apps.is_empty() {
        bail!("no function is registered: is every function crate named in xtask/src/lib.rs?");
    }
    let files = generated_files(&root, &apps, outputs)?;
    if check {
        let stale = stale_files(&root, &files);
        if stale.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        for path in &stale {
            eprintln!("stale: {} (run `cargo xtask customize`)", path.display());
        }
        return Ok(ExitCode::FAILURE);
    }
    for path in write_files(&root, &files)? {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
