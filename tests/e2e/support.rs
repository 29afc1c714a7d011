//! The harness: a real ActiveMQ (started by `.ci/activemq.sh`), `soar-sim`'s REST API and
//! driver, `misp-sim`, and the `soar-runner` binary started as a user would start it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use misp_sim::{MispSim, SimOptions};
use soar_sim::{Driver, DriverOptions, SoarRestOptions, SoarRestSim};
use soar_stomp::TlsOptions;
use urlscan_sim::UrlscanSim;

/// The broker the tests use, from the variables `.ci/activemq.sh env` prints.
#[derive(Debug, Clone)]
pub struct Broker {
    pub port: u16,
    pub tls_port: u16,
    pub ca: PathBuf,
    /// Set for a broker a test started itself (and stops).
    pub base: Option<PathBuf>,
}

impl Broker {
    /// The shared broker. Without it the tests cannot run: they fail with how to start it.
    pub fn shared() -> Broker {
        let from_script = script_env();
        let variable = |name: &str| {
            std::env::var(name).ok().or_else(|| {
                from_script
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.clone())
            })
        };
        let port = variable("STOMP_TEST_PORT").and_then(|p| p.parse().ok());
        let tls_port = variable("STOMP_TEST_TLS_PORT").and_then(|p| p.parse().ok());
        let ca = variable("STOMP_TEST_CA").map(PathBuf::from);
        match (port, tls_port, ca) {
            (Some(port), Some(tls_port), Some(ca)) => Broker {
                port,
                tls_port,
                ca,
                base: None,
            },
            _ => panic!(
                "no broker: run `bash .ci/activemq.sh start && eval \"$(bash .ci/activemq.sh env)\"` first (scripts/test does this)"
            ),
        }
    }

    /// A broker of the test's own, persistent so that messages survive a restart.
    pub fn private(name: &str) -> Broker {
        let base = std::env::temp_dir().join(format!("soar-amq-{name}-{}", std::process::id()));
        let port = free_port();
        let tls_port = free_port();
        let status = Command::new("bash")
            .arg(repo_root().join(".ci/activemq.sh"))
            .arg("start")
            .arg(&base)
            .env("AMQ_STOMP_PORT", port.to_string())
            .env("AMQ_STOMP_TLS_PORT", tls_port.to_string())
            .env("AMQ_PERSISTENT", "true")
            .status()
            .expect("bash runs");
        assert!(
            status.success(),
            "starting a private broker in {} failed",
            base.display()
        );
        Broker {
            port,
            tls_port,
            ca: base.join("broker-ca.pem"),
            base: Some(base),
        }
    }

    /// Stops and starts this (private) broker on the same ports.
    pub fn restart(&self) {
        let base = self
            .base
            .as_ref()
            .expect("only a private broker is restarted");
        let status = Command::new("bash")
            .arg(repo_root().join(".ci/activemq.sh"))
            .arg("restart")
            .arg(base)
            .status()
            .expect("bash runs");
        assert!(status.success(), "restarting the broker failed");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(base) = &self.base {
            let _ = Command::new("bash")
                .arg(repo_root().join(".ci/activemq.sh"))
                .arg("stop")
                .arg(base)
                .status();
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// What `.ci/activemq.sh env` says of a broker that is running, for a developer who
/// started it without exporting its variables.
fn script_env() -> Vec<(String, String)> {
    let running = Command::new("bash")
        .arg(repo_root().join(".ci/activemq.sh"))
        .arg("status")
        .stdout(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false);
    if !running {
        return Vec::new();
    }
    let Ok(output) = Command::new("bash")
        .arg(repo_root().join(".ci/activemq.sh"))
        .arg("env")
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Everything one test needs, on its own org id so tests can share the broker.
pub struct Harness {
    pub broker: Broker,
    pub soar: SoarRestSim,
    pub misp: MispSim,
    pub urlscan: UrlscanSim,
    pub org_id: u64,
    pub dir: tempfile::TempDir,
}

/// Knobs of the runner's `app.config`.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub num_workers: usize,
    pub shutdown_timeout_secs: u64,
    pub extra_resilient: String,
    pub stomp_tls: bool,
}

impl Default for RunnerOptions {
    fn default() -> RunnerOptions {
        RunnerOptions {
            num_workers: 25,
            shutdown_timeout_secs: 30,
            extra_resilient: String::new(),
            stomp_tls: true,
        }
    }
}

/// The functions SOAR knows, with their message destinations.
pub use soar_sim::KNOWN_FUNCTIONS as FUNCTIONS;

/// The urlscan.io key the tests configure.
pub const URLSCAN_KEY: &str = "urlscan-test-key-0000-1111";

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(Broker::shared()).await
    }

    pub async fn start_with(broker: Broker) -> Harness {
        let org_id = next_org_id();
        let soar = SoarRestSim::start(SoarRestOptions {
            org_id,
            tls: true,
            functions: FUNCTIONS
                .iter()
                .map(|(name, destination)| (name.to_string(), destination.to_string()))
                .collect(),
            ..SoarRestOptions::default()
        })
        .await;
        let misp = MispSim::start(SimOptions::default()).await;
        let urlscan = UrlscanSim::start(urlscan_sim::SimOptions {
            required_key: Some(URLSCAN_KEY.to_string()),
            pending_polls: 2,
            ..urlscan_sim::SimOptions::default()
        })
        .await
        .expect("urlscan-sim starts");
        Harness {
            broker,
            soar,
            misp,
            urlscan,
            org_id,
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// Writes an `app.config` for a runner and returns its path.
    pub fn write_config(&self, name: &str, options: &RunnerOptions) -> PathBuf {
        let soar_ca = self.dir.path().join("soar-ca.pem");
        std::fs::write(&soar_ca, self.soar.ca_pem().expect("soar-sim serves TLS"))
            .expect("write CA");
        let port = self.soar.address().port();
        let (stomp_port, stomp_tls) = if options.stomp_tls {
            (self.broker.tls_port, "true")
        } else {
            (self.broker.port, "false")
        };
        let text = format!(
            "[resilient]\nhost=localhost\nport={port}\norg={org}\napi_key_id={key_id}\napi_key_secret={secret}\n\
             cafile={soar_ca}\nstomp_host=localhost\nstomp_port={stomp_port}\nstomp_tls={stomp_tls}\n\
             stomp_cafile={broker_ca}\nnum_workers={workers}\nshutdown_timeout={shutdown}\nloglevel=info\n{extra}\n\
             [fn_misp]\nmisp_url={misp_url}\nmisp_key={misp_key}\nverify_cert=false\ntimeout=10\nretries=1\n\n\
             [urlscanio]\nurlscanio_api_key={urlscan_key}\nurlscanio_report_url={urlscan_api}\n\
             urlscanio_screenshot_url={urlscan_shots}\ntimeout=60\npoll_interval=1\n",
            org = "Test Org",
            key_id = soar_sim::rest::DEFAULT_API_KEY_ID,
            secret = soar_sim::rest::DEFAULT_API_KEY_SECRET,
            soar_ca = soar_ca.display(),
            broker_ca = self.broker.ca.display(),
            workers = options.num_workers,
            shutdown = options.shutdown_timeout_secs,
            extra = options.extra_resilient,
            misp_url = self.misp.url(),
            misp_key = self.misp.key(),
            urlscan_key = URLSCAN_KEY,
            urlscan_api = self.urlscan.api_url(),
            urlscan_shots = self.urlscan.screenshot_url(),
        );
        let path = self.dir.path().join(format!("{name}.config"));
        std::fs::write(&path, text).expect("write app.config");
        path
    }

    /// Starts `soar-runner run` and waits until it has subscribed.
    pub fn start_runner(&self, name: &str, options: &RunnerOptions) -> Runner {
        let config = self.write_config(name, options);
        let runner = Runner::spawn(
            &config,
            &["run"],
            self.dir.path().join(format!("{name}.log")),
        );
        runner.wait_for_log("has started successfully", Duration::from_secs(30));
        runner
    }

    /// Connects a driver, calls `misp_search_attribute` for `value` once and waits for the
    /// final reply; returns the correlation id and every reply in order.
    pub async fn search_once(&self, value: &str) -> (String, Vec<soar_sim::Reply>) {
        let driver = self.driver().await;
        call_fn_misp(
            &driver,
            "misp_search_attribute",
            serde_json::json!({ "misp_attribute_value": value }),
            Duration::from_secs(60),
        )
        .await
    }

    pub async fn driver(&self) -> Driver {
        Driver::connect(DriverOptions {
            host: "localhost".into(),
            port: self.broker.tls_port,
            tls: Some(TlsOptions {
                ca_file: Some(self.broker.ca.clone()),
                verify: true,
                server_name: "localhost".into(),
            }),
            org_id: self.org_id as i64,
            destinations: vec!["fn_misp".into(), "urlscanio".into()],
        })
        .await
        .expect("the driver connects to the broker")
    }
}

/// Calls an fn_misp function through SOAR's queue and waits up to `timeout` for its final
/// reply; returns the correlation id and every reply in order.
pub async fn call_fn_misp(
    driver: &Driver,
    function: &str,
    inputs: serde_json::Value,
    timeout: Duration,
) -> (String, Vec<soar_sim::Reply>) {
    let id = driver
        .invoke("fn_misp", function, inputs)
        .await
        .expect("the driver publishes");
    let replies = driver
        .wait_final(&id, timeout)
        .await
        .expect("a final reply");
    (id, replies)
}

/// A `soar-runner` process whose stderr goes to a log file.
pub struct Runner {
    child: Option<Child>,
    pub log_path: PathBuf,
}

impl Runner {
    pub fn spawn(config: &Path, args: &[&str], log_path: PathBuf) -> Runner {
        Runner::spawn_with_env(config, args, log_path, &[])
    }

    /// [`Runner::spawn`] with these environment variables set for the runner.
    pub fn spawn_with_env(
        config: &Path,
        args: &[&str],
        log_path: PathBuf,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Runner {
        let log = std::fs::File::create(&log_path).expect("create the runner log");
        let child = Command::new(runner_binary())
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("APP_CONFIG_FILE")
            .env_remove("APP_HOST_CONTAINER")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("soar-runner starts");
        Runner::watch(child, log_path)
    }

    /// A runner started some other way (from an unpacked image, say) whose stderr goes to
    /// `log_path`; killed when dropped, like one [`Runner::spawn`] started.
    pub fn watch(child: Child, log_path: PathBuf) -> Runner {
        Runner {
            child: Some(child),
            log_path,
        }
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log_path) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the runner never logged '{needle}'; its log:\n{}",
            self.log()
        );
    }

    /// The process id while it runs, for reading its resources under /proc.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn count_in_log(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            signal(child.id(), "TERM");
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("the runner is running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait works") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the runner did not exit within {timeout:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The bodies of every final reply `id` got, in arrival order.
pub fn final_bodies(driver: &Driver, id: &str) -> Vec<serde_json::Value> {
    driver
        .replies(id)
        .into_iter()
        .filter(|reply| reply.complete)
        .map(|reply| reply.body)
        .collect()
}

/// Runs `soar-runner` to completion; returns its exit code, stdout and stderr apart.
pub fn run_split(config: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(runner_binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("soar-runner runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `soar-runner` to completion and returns its exit code and output.
pub fn run_to_completion(config: &Path, args: &[&str]) -> (i32, String) {
    let (code, stdout, stderr) = run_split(config, args);
    (code, format!("{stdout}{stderr}"))
}

/// Sends a signal with kill(1), which keeps this crate free of `unsafe`.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// The `soar-runner` binary next to this test binary, built fresh once per test run:
/// `cargo test -p e2e-tests` alone does not rebuild another package's binary, and a stale
/// one would test yesterday's code. Cargo does not hold its lock while tests run.
pub fn runner_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let test_binary = std::env::current_exe().expect("the test binary has a path");
            let profile_dir = test_binary
                .parent()
                .and_then(Path::parent)
                .expect("the test binary lives in target/<profile>/deps");
            let mut build = Command::new(env!("CARGO"));
            build
                .args([
                    "build",
                    "--quiet",
                    "--package",
                    "runner",
                    "--bin",
                    "soar-runner",
                ])
                .current_dir(repo_root());
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "building soar-runner failed");
            profile_dir.join("soar-runner")
        })
        .clone()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

fn next_org_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = 1000 + u64::from(std::process::id() % 10_000) * 100;
    base + NEXT.fetch_add(1, Ordering::Relaxed)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
