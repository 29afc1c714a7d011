//! What the benchmark stands on: a private ActiveMQ on free ports, the release build of
//! `soar-runner`, and the virtualenv with resilient-circuits for the baseline.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The broker's JVM options in the benchmark: a production broker's JIT (tiered, with C2) and
/// collector (G1), on a fixed 512 MiB heap. The tests' default (C1 only, serial collector)
/// starts faster but handles fewer frames per second. `$AMQ_JVM_OPTS` replaces it.
pub const BENCH_JVM_OPTS: &str = "-Xms512m -Xmx512m";

/// The JVM options the benchmark's broker runs with.
pub fn jvm_options() -> String {
    std::env::var("AMQ_JVM_OPTS").unwrap_or_else(|_| BENCH_JVM_OPTS.to_string())
}

/// How the broker's STOMP connectors are set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerConfig {
    /// As a customer's SOAR broker ships: the STOMP+TLS connector the subjects use without
    /// `transport.tcpNoDelay`, so Nagle's algorithm is on there. The plain STOMP connector
    /// the harness publishes and collects replies on keeps `tcpNoDelay`, so that the
    /// platform's side adds no stall of its own and the figures are the subject's.
    Shipped,
    /// `transport.tcpNoDelay=true` on both connectors, as the tests' broker.
    Tuned,
}

impl BrokerConfig {
    /// Reads `--broker`'s value.
    pub fn parse(name: &str) -> Option<BrokerConfig> {
        match name {
            "shipped" => Some(BrokerConfig::Shipped),
            "tuned" => Some(BrokerConfig::Tuned),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BrokerConfig::Shipped => "shipped",
            BrokerConfig::Tuned => "tuned",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            BrokerConfig::Shipped => {
                "as shipped: the subjects' STOMP+TLS connector without tcpNoDelay (Nagle on); the harness's plain STOMP connector with tcpNoDelay"
            }
            BrokerConfig::Tuned => "tuned: tcpNoDelay on both STOMP connectors",
        }
    }

    /// `.ci/activemq.sh`'s switch for the TLS connector.
    fn tls_nodelay(self) -> &'static str {
        match self {
            BrokerConfig::Shipped => "false",
            BrokerConfig::Tuned => "true",
        }
    }
}

/// An ActiveMQ of the benchmark's own (`.ci/activemq.sh` with a private base); stopped and
/// removed when dropped.
#[derive(Debug)]
pub struct Broker {
    pub base: PathBuf,
    pub port: u16,
    pub tls_port: u16,
    /// The broker's certificate, which is also the CA to trust.
    pub ca: PathBuf,
    script: PathBuf,
}

impl Broker {
    /// Starts a non-persistent broker under `base` on two free loopback ports, with
    /// `.ci/activemq.sh` or, to try a broker setting, the script `$BENCH_ACTIVEMQ_SCRIPT`.
    pub fn start(root: &Path, base: PathBuf, config: BrokerConfig) -> Result<Broker> {
        let script = std::env::var_os("BENCH_ACTIVEMQ_SCRIPT")
            .map_or_else(|| root.join(".ci/activemq.sh"), PathBuf::from);
        let status = Command::new("bash")
            .arg(&script)
            .arg("install")
            .status()
            .context("running .ci/activemq.sh install")?;
        if !status.success() {
            bail!(".ci/activemq.sh install failed ({status})");
        }
        // A base left by an interrupted run may still have its broker running.
        let _ = Command::new("bash")
            .arg(&script)
            .arg("stop")
            .arg(&base)
            .status();
        let _ = std::fs::remove_dir_all(&base);
        let port = free_port()?;
        let tls_port = free_port()?;
        let status = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(&base)
            .env("AMQ_STOMP_PORT", port.to_string())
            .env("AMQ_STOMP_TLS_PORT", tls_port.to_string())
            .env("AMQ_PERSISTENT", "false")
            .env("AMQ_TLS_NODELAY", config.tls_nodelay())
            .env("AMQ_JVM_OPTS", jvm_options())
            .status()
            .context("running .ci/activemq.sh start")?;
        if !status.success() {
            bail!(
                ".ci/activemq.sh start {} failed ({status}); see {}/activemq.log",
                base.display(),
                base.display()
            );
        }
        Ok(Broker {
            ca: base.join("broker-ca.pem"),
            base,
            port,
            tls_port,
            script,
        })
    }

    /// The broker's pid, from the script's pid file.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.base.join("activemq.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.base)
            .status();
    }
}

/// `cargo build --profile dist -p runner`, the build users install; returns the path of
/// `soar-runner`.
pub fn build_runner(root: &Path, target_dir: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--profile",
            "dist",
            "-p",
            "runner",
            "--bin",
            "soar-runner",
        ])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .context("running cargo build --profile dist -p runner")?;
    if !status.success() {
        bail!("building soar-runner with the dist profile failed ({status})");
    }
    let binary = target_dir.join("dist/soar-runner");
    if !binary.exists() {
        bail!("the dist build left no {}", binary.display());
    }
    Ok(binary)
}

/// Where cargo puts builds: `$CARGO_TARGET_DIR`, else `<root>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            match dir.is_absolute() {
                true => dir,
                false => root.join(dir),
            }
        }
        None => root.join("target"),
    }
}

/// The virtualenv with the current resilient-circuits and PyMISP releases; made once and
/// reused while it imports both. Returns its directory.
pub fn python_env(target_dir: &Path) -> Result<PathBuf> {
    let venv = target_dir.join("bench-venv");
    let python = venv.join("bin/python");
    let imports = |python: &Path| {
        Command::new(python)
            .args(["-c", "import resilient_circuits, pymisp"])
            .status()
            .is_ok_and(|status| status.success())
    };
    if python.exists() && imports(&python) {
        return Ok(venv);
    }
    let _ = std::fs::remove_dir_all(&venv);
    eprintln!(
        "bench: creating {} with resilient-circuits and pymisp (once)",
        venv.display()
    );
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("running python3 -m venv (is python3-venv installed?)")?;
    if !status.success() {
        bail!("python3 -m venv {} failed ({status})", venv.display());
    }
    let status = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "resilient-circuits",
            "pymisp",
        ])
        .status()
        .context("running pip install resilient-circuits pymisp")?;
    if !status.success() || !imports(&python) {
        bail!(
            "installing resilient-circuits and pymisp into {} failed",
            venv.display()
        );
    }
    Ok(venv)
}

/// The version of an installed distribution, as pip reports it.
pub fn python_package_version(venv: &Path, package: &str) -> Option<String> {
    let script = format!("import importlib.metadata as m; print(m.version('{package}'))");
    let output = Command::new(venv.join("bin/python"))
        .args(["-c", &script])
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!version.is_empty()).then_some(version)
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("binding 127.0.0.1:0 for a free port")?;
    Ok(listener
        .local_addr()
        .context("the free port's address")?
        .port())
}
