//! The two subjects under test, started as users start them: `soar-runner run` and
//! resilient-circuits with the harness's Python component, each with its own `app.config`
//! pointing at the broker, a fresh `soar-sim` org and the shared `misp-sim`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use misp_sim::MispSim;
use soar_sim::{SoarRestOptions, SoarRestSim};

use super::load::{DESTINATION, FUNCTION, GET_EVENT_FUNCTION};
use super::setup::Broker;

/// Which implementation a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Runner,
    /// The runner with `[resilient] metrics_listen` on, for the listener's cost.
    RunnerListening,
    /// The runner with `SOAR_STOMP_QUICKACK=0`: delayed ACKs as the kernel sets them, for
    /// the before/after comparison of issue 16.
    RunnerQuickAckOff,
    /// The runner with `stomp_max_calls_per_connection=0`: one broker connection for the
    /// whole run, for what replacing connections saves the broker.
    RunnerOneConnection,
    Baseline,
}

/// What both subjects need to start.
#[derive(Debug)]
pub struct Surroundings<'a> {
    pub broker: &'a Broker,
    pub misp: &'a MispSim,
    pub runner_binary: &'a Path,
    pub venv: &'a Path,
    /// The directory of the Python component.
    pub components_dir: &'a Path,
    /// Scratch space for configs and logs.
    pub work_dir: &'a Path,
}

/// A subject that has subscribed; killed when dropped.
#[derive(Debug)]
pub struct Started {
    pub pid: u32,
    /// Process start to the moment SUBSCRIBE goes out, the point both subjects log.
    pub startup: Duration,
    /// Process start to the subscription confirmed by the broker's receipt; the runner
    /// waits for it, resilient-circuits does not.
    pub confirmed: Option<Duration>,
    pub log_path: PathBuf,
    /// The operator's listener, for [`Subject::RunnerListening`].
    pub metrics_port: Option<u16>,
    child: Child,
    /// The SOAR stand-in of this subject's org; it must outlive the subject.
    soar: SoarRestSim,
}

/// The line both print once started: resilient-circuits just before its SUBSCRIBE frames go
/// out (research/soar_protocol.md §1.4), the runner once the broker has confirmed them.
const STARTED_LINE: &str = "has started successfully";
/// The runner's line just before its SUBSCRIBE frames go out.
const SUBSCRIBING_LINE: &str = "subscribing";

impl Subject {
    pub fn name(self) -> &'static str {
        match self {
            Subject::Runner => "soar-runner",
            Subject::RunnerListening => "soar-runner with metrics_listen",
            Subject::RunnerQuickAckOff => "soar-runner with TCP_QUICKACK off",
            Subject::RunnerOneConnection => "soar-runner on one connection",
            Subject::Baseline => "resilient-circuits",
        }
    }

    fn is_runner(self) -> bool {
        matches!(
            self,
            Subject::Runner
                | Subject::RunnerListening
                | Subject::RunnerQuickAckOff
                | Subject::RunnerOneConnection
        )
    }
}

impl Started {
    /// REST calls the subject made that `soar-sim` has no endpoint for.
    pub fn unexpected_soar_requests(&self) -> Vec<String> {
        self.soar
            .unexpected_requests()
            .iter()
            .map(soar_sim::RecordedRequest::line)
            .collect()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `subject` on a fresh org with `num_workers` and waits until it has subscribed.
pub async fn start(
    context: &Surroundings<'_>,
    subject: Subject,
    org_id: u64,
    num_workers: usize,
) -> Result<Started> {
    start_replica(context, subject, org_id, num_workers, 0).await
}

/// Like [`start`], for one of several subjects on the same org, competing for its queues:
/// each replica has its own directory and SOAR stand-in.
pub async fn start_replica(
    context: &Surroundings<'_>,
    subject: Subject,
    org_id: u64,
    num_workers: usize,
    replica: usize,
) -> Result<Started> {
    let soar = SoarRestSim::try_start(SoarRestOptions {
        org_id,
        tls: true,
        functions: [FUNCTION, GET_EVENT_FUNCTION]
            .iter()
            .map(|function| (function.to_string(), DESTINATION.to_string()))
            .collect(),
        ..SoarRestOptions::default()
    })
    .await
    .context("starting soar-sim")?;
    let dir = match replica {
        0 => format!("{}-{org_id}", subject.name()),
        replica => format!("{}-{org_id}-{replica}", subject.name()),
    };
    let dir = context.work_dir.join(dir);
    // resilient-circuits needs its logdir to exist.
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let soar_ca = dir.join("soar-ca.pem");
    std::fs::write(&soar_ca, soar.ca_pem().unwrap_or_default())
        .with_context(|| format!("writing {}", soar_ca.display()))?;
    let config = dir.join("app.config");
    let metrics_port = match subject {
        Subject::RunnerListening => Some(free_port()?),
        Subject::Runner
        | Subject::RunnerQuickAckOff
        | Subject::RunnerOneConnection
        | Subject::Baseline => None,
    };
    let mut text = app_config(context, subject, &soar, &soar_ca, &dir, num_workers);
    if let Some(port) = metrics_port {
        // Appended after the [fn_misp] section would put it there; it belongs in [resilient].
        text = text.replacen(
            "[resilient]\n",
            &format!("[resilient]\nmetrics_listen={port}\n"),
            1,
        );
    }
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    let log_path = dir.join("output.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = match subject {
        Subject::Runner
        | Subject::RunnerListening
        | Subject::RunnerQuickAckOff
        | Subject::RunnerOneConnection => {
            let mut command = Command::new(context.runner_binary);
            command.arg("--config").arg(&config).arg("run");
            // The harness's own environment must not switch it for the other runners.
            match subject {
                Subject::RunnerQuickAckOff => command.env("SOAR_STOMP_QUICKACK", "0"),
                _ => command.env_remove("SOAR_STOMP_QUICKACK"),
            };
            command
        }
        Subject::Baseline => {
            let mut command = Command::new(context.venv.join("bin/resilient-circuits"));
            command
                .arg("run")
                .env("APP_CONFIG_FILE", &config)
                .env("APP_LOCK_FILE", dir.join("resilient_circuits_lockfile"));
            command
        }
    };
    let started = Instant::now();
    let child = command
        .current_dir(&dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            log.try_clone().context("duplicating the log file handle")?,
        ))
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("starting {}", subject.name()))?;
    let mut started_subject = Started {
        pid: child.id(),
        startup: Duration::ZERO,
        confirmed: None,
        log_path: log_path.clone(),
        metrics_port,
        child,
        soar,
    };
    // resilient-circuits logs to logs/app.log as well as to the console.
    let logs = [log_path, dir.join("logs/app.log")];
    let deadline = started + Duration::from_secs(60);
    let sent_line = match subject.is_runner() {
        true => SUBSCRIBING_LINE,
        false => STARTED_LINE,
    };
    let mut sent_at = None;
    loop {
        let elapsed = started.elapsed();
        // Each log is read once per poll, for both lines.
        let text: String = logs
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect();
        if sent_at.is_none() && text.contains(sent_line) {
            sent_at = Some(elapsed);
        }
        if text.contains(STARTED_LINE) {
            started_subject.startup = sent_at.unwrap_or(elapsed);
            if subject.is_runner() {
                started_subject.confirmed = Some(elapsed);
            }
            return Ok(started_subject);
        }
        if let Ok(Some(status)) = started_subject.child.try_wait() {
            bail!(
                "{} exited ({status}) before subscribing; its output:\n{}",
                subject.name(),
                tail(&logs[0])
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not subscribe within 60 s; its output:\n{}",
                subject.name(),
                tail(&logs[0])
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn app_config(
    context: &Surroundings<'_>,
    subject: Subject,
    soar: &SoarRestSim,
    soar_ca: &Path,
    dir: &Path,
    num_workers: usize,
) -> String {
    let common = format!(
        "[resilient]\nhost=localhost\nport={port}\norg=Test Org\napi_key_id={key_id}\n\
         api_key_secret={secret}\ncafile={soar_ca}\nstomp_host=localhost\nnum_workers={num_workers}\n\
         loglevel=INFO\n",
        port = soar.address().port(),
        key_id = soar_sim::rest::DEFAULT_API_KEY_ID,
        secret = soar_sim::rest::DEFAULT_API_KEY_SECRET,
        soar_ca = soar_ca.display(),
    );
    let specific = match subject {
        // The runner verifies the broker's certificate, as it does by default.
        Subject::Runner
        | Subject::RunnerListening
        | Subject::RunnerQuickAckOff
        | Subject::RunnerOneConnection => format!(
            "stomp_port={port}\nstomp_tls=true\nstomp_cafile={ca}\n{renewal}",
            port = context.broker.tls_port,
            ca = context.broker.ca.display(),
            renewal = match subject {
                Subject::RunnerOneConnection => "stomp_max_calls_per_connection=0\n",
                _ => "",
            },
        ),
        // resilient-circuits always speaks TLS to the broker and does not check the CA.
        Subject::Baseline => format!(
            "stomp_port={port}\ncomponentsdir={components}\nlogdir={logs}\nlogfile=app.log\n",
            port = context.broker.tls_port,
            components = context.components_dir.display(),
            logs = dir.join("logs").display(),
        ),
    };
    format!(
        "{common}{specific}\n[fn_misp]\nmisp_url={url}\nmisp_key={key}\nverify_cert=false\n",
        url = context.misp.url(),
        key = context.misp.key(),
    )
}

fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .context("finding a free port for metrics_listen")
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
