//! The systemd unit in `docs/` is checked by `systemd-analyze verify` against the real binary,
//! and its stop timeout leaves the runner's drain time.

use std::path::Path;
use std::process::Command;

const INSTALLED_PATH: &str = "/usr/local/bin/soar-runner";

fn unit_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/soar-runner.service");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The value of `key=` in the unit, the last one if repeated (as systemd reads it).
fn setting(text: &str, key: &str) -> Option<String> {
    text.lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
}

#[test]
fn the_unit_runs_the_installed_binary_and_gives_the_drain_time() {
    let text = unit_text();
    assert_eq!(
        setting(&text, "ExecStart").as_deref(),
        Some(format!("{INSTALLED_PATH} run").as_str())
    );
    let stop: u64 = setting(&text, "TimeoutStopSec")
        .expect("TimeoutStopSec is set")
        .parse()
        .expect("TimeoutStopSec is whole seconds");
    // The default shutdown_timeout is 30 s; systemd must not kill during the drain.
    assert!(stop > 30, "TimeoutStopSec={stop} leaves no time to drain");
    assert_eq!(
        setting(&text, "KillSignal"),
        None,
        "the drain needs SIGTERM"
    );
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed; the unit was not verified");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let unit = dir.path().join("soar-runner.service");
    let text = unit_text().replace(INSTALLED_PATH, env!("CARGO_BIN_EXE_soar-runner"));
    std::fs::write(&unit, text).expect("write the unit");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {}\n{said}",
        output.status
    );
}
