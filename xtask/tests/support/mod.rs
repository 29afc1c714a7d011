//! What the xtask test binaries share.

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::workspace_root;

/// Where the resilient-sdk virtualenv lives: the place `scripts/python-env` makes it.
fn python_env_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SOAR_PYTHON_ENV") {
        return PathBuf::from(dir);
    }
    // CARGO_TARGET_TMPDIR is <target dir>/tmp.
    let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    target_tmp.parent().unwrap_or(target_tmp).join("python-env")
}

/// The Python of a virtualenv with resilient-sdk (made once by `scripts/python-env`), or
/// `None`, said as skipped, where python3 is not installed; in CI that is a failure. `what`
/// names what the test checks with it.
pub fn resilient_sdk_python(what: &str) -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is required in CI to check {what} with resilient-sdk"
        );
        eprintln!("skipped: python3 is not installed");
        return None;
    }
    let target_dir = python_env_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let made = Command::new("bash")
        .arg(workspace_root().join("scripts/python-env"))
        .env("SOAR_PYTHON_ENV", python_env_dir())
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .unwrap_or_else(|error| panic!("cannot run scripts/python-env: {error}"));
    assert!(
        made.status.success(),
        "scripts/python-env failed:\n{}",
        String::from_utf8_lossy(&made.stderr)
    );
    Some(python_env_dir().join("bin/python"))
}
