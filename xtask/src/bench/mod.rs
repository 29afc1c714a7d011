//! `cargo xtask bench [--quick] [--broker shipped|tuned] [--only KEY,...] [--write]`:
//! throughput, latency, CPU, memory and start-up of `soar-runner` side by side with
//! resilient-circuits, against the limit of the broker.
//!
//! Builds the runner in release mode, starts a private ActiveMQ (by default with its
//! connectors as a customer's broker ships them), `soar-sim` and `misp-sim` in this process,
//! runs every scenario, prints a table and writes `bench/RESULTS.md` and
//! `bench/results.json`. Speed is measured and reported here, never asserted. `--only` runs
//! just the named scenarios (for profiling one of them) and writes no file unless `--write`
//! is given too.

mod load;
mod procfs;
mod report;
mod setup;
mod stats;
mod subjects;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use misp_sim::{MispSim, SimOptions};
use serde_json::json;

use load::{BurstOptions, BurstOutcome};
use procfs::ProcessSample;
use report::{Report, RunFigures, ScenarioResult, StartupResult};
use setup::BrokerConfig;
use subjects::Subject;

const USAGE: &str =
    "usage: cargo xtask bench [--quick] [--broker shipped|tuned] [--only KEY,...] [--write]
  --quick   small bursts, finishes in about two minutes
  --broker  shipped (default): the subjects' STOMP+TLS connector without tcpNoDelay, as a
            customer's broker ships; tuned: tcpNoDelay on both connectors
  --only    run only these scenarios and write no file; keys: ceiling, ceiling_50ms_w100,
            runner_instant, runner_instant_same_burst, baseline_instant, runner_50ms_w25,
            runner_50ms_w100, baseline_50ms_w25, sequential, baseline_sequential,
            quickack, scale_out, renewal,
            runner_get_event_1000, runner_get_event_1000_w25, runner_verdict_50ms_w25,
            runner_add_attributes_1000, listener, startup
  --write   with --only, write bench/RESULTS.md and bench/results.json all the same
BENCH_RUNNER_BINARY=PATH measures that soar-runner instead of building one";

/// Every scenario key, in the order they run.
const SCENARIOS: [&str; 19] = [
    "ceiling",
    "ceiling_50ms_w100",
    "runner_instant",
    "runner_instant_same_burst",
    "baseline_instant",
    "runner_50ms_w25",
    "runner_50ms_w100",
    "baseline_50ms_w25",
    "sequential",
    "baseline_sequential",
    "quickack",
    "scale_out",
    "renewal",
    "runner_get_event_1000",
    "runner_get_event_1000_w25",
    "runner_verdict_50ms_w25",
    "runner_add_attributes_1000",
    "listener",
    "startup",
];

/// The attribute value every call searches for; the seeded MISP event holds it.
const SEARCH_VALUE: &str = "198.51.100.7";

/// How many attributes the event `misp_get_event` reads holds (the function's default cap,
/// so nothing is cut).
const BIG_EVENT_ATTRIBUTES: usize = 1_000;

/// How much of everything to run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    quick: bool,
    broker: BrokerConfig,
    /// Write the files even when `only` is set.
    write: bool,
    /// Messages and runs per scenario.
    ceiling: (usize, usize),
    ceiling_50ms_w100: (usize, usize),
    runner_instant: (usize, usize),
    runner_50ms_w25: (usize, usize),
    runner_50ms_w100: (usize, usize),
    baseline_instant: (usize, usize),
    baseline_50ms_w25: (usize, usize),
    /// `misp_get_event` on the big event, one call at a time, then 25 at once.
    get_event: (usize, usize),
    get_event_w25: (usize, usize),
    /// `misp_verdict` with MISP at 50 ms and num_workers 25.
    verdict_50ms_w25: (usize, usize),
    /// `misp_add_attributes` with [`BULK_VALUES`] values: calls per run (each to a new
    /// event) and runs.
    add_attributes: (usize, usize),
    /// The runner with its operator's listener off and on, runs taken in turn.
    listener: (usize, usize),
    /// One call at a time, MISP instant: the ceiling consumer and the runner; then
    /// resilient-circuits, which takes about 0.6 s a call, so fewer runs.
    sequential: (usize, usize),
    baseline_sequential: (usize, usize),
    /// The runner with `TCP_QUICKACK` off and on, runs taken in turn: one call at a time
    /// (MISP instant), and a burst with MISP at 50 ms and num_workers 25.
    quickack_sequential: (usize, usize),
    quickack_50ms_w25: (usize, usize),
    /// 1, 2 and 4 runners on one queue, MISP 50 ms, num_workers 25 each: calls per runner
    /// (the burst is this times the number of runners) and runs.
    scale_out: (usize, usize),
    /// The runner replacing its broker connection every 5,000 messages (as shipped) and on
    /// one connection, runs taken in turn, MISP instant.
    renewal: (usize, usize),
    /// Messages through the ceiling consumer before anything is measured, so that the
    /// broker's JIT has compiled its hot paths before the first scenario.
    warm_up: usize,
    /// Start-ups per subject, and how many of them also measure idle memory.
    startups: usize,
    idle_samples: usize,
    /// The scenarios to run; `None` for all of them (and then the files are written).
    only: Option<&'static [&'static str]>,
}

/// How long after subscribing the idle memory is read (as in research/baseline.md).
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// Time a subject gets after its "started" line before the burst, so that its SUBSCRIBE
/// has reached the broker.
const SETTLE: Duration = Duration::from_millis(1000);

impl Plan {
    fn full() -> Plan {
        Plan {
            quick: false,
            broker: BrokerConfig::Shipped,
            write: false,
            ceiling: (20_000, 3),
            ceiling_50ms_w100: (10_000, 3),
            runner_instant: (20_000, 3),
            runner_50ms_w25: (5_000, 3),
            runner_50ms_w100: (10_000, 3),
            baseline_instant: (2_000, 3),
            baseline_50ms_w25: (500, 3),
            get_event: (200, 3),
            get_event_w25: (500, 3),
            verdict_50ms_w25: (5_000, 3),
            add_attributes: (1, 3),
            listener: (20_000, 5),
            sequential: (200, 3),
            baseline_sequential: (200, 1),
            // More calls than `sequential`: CPU time is read in 10 ms ticks.
            quickack_sequential: (500, 3),
            quickack_50ms_w25: (5_000, 3),
            scale_out: (5_000, 3),
            // Not a multiple of 5,000, so that the last connection has answered some.
            renewal: (22_000, 3),
            warm_up: 20_000,
            startups: 10,
            idle_samples: 3,
            only: None,
        }
    }

    fn quick() -> Plan {
        Plan {
            quick: true,
            broker: BrokerConfig::Shipped,
            write: false,
            ceiling: (2_000, 2),
            ceiling_50ms_w100: (2_000, 2),
            runner_instant: (2_000, 2),
            runner_50ms_w25: (1_000, 2),
            runner_50ms_w100: (2_000, 2),
            baseline_instant: (300, 1),
            baseline_50ms_w25: (100, 1),
            get_event: (50, 1),
            get_event_w25: (100, 1),
            verdict_50ms_w25: (1_000, 2),
            add_attributes: (1, 1),
            listener: (2_000, 2),
            sequential: (100, 1),
            baseline_sequential: (50, 1),
            quickack_sequential: (100, 1),
            quickack_50ms_w25: (1_000, 1),
            scale_out: (1_000, 1),
            renewal: (2_000, 1),
            warm_up: 5_000,
            startups: 3,
            idle_samples: 1,
            only: None,
        }
    }

    fn runs(&self, key: &str) -> bool {
        self.only.is_none_or(|only| only.contains(&key))
    }

    /// Whether the run writes bench/RESULTS.md and bench/results.json.
    fn writes_files(&self) -> bool {
        self.only.is_none() || self.write
    }
}

/// Reads `--quick` and `--only KEY,...`; `None` asks for the usage text.
fn parse_plan(arguments: &[String]) -> Result<Option<Plan>> {
    let mut plan = Plan::full();
    let mut rest = arguments.iter().map(String::as_str);
    while let Some(argument) = rest.next() {
        match argument {
            "--quick" => {
                plan = Plan {
                    only: plan.only,
                    broker: plan.broker,
                    write: plan.write,
                    ..Plan::quick()
                }
            }
            "--broker" => {
                let Some(name) = rest.next() else {
                    bail!("--broker needs shipped or tuned\n{USAGE}");
                };
                let Some(broker) = BrokerConfig::parse(name) else {
                    bail!("unknown broker configuration {name:?} in --broker\n{USAGE}");
                };
                plan.broker = broker;
            }
            "--write" => plan.write = true,
            "--only" => {
                let Some(keys) = rest.next() else {
                    bail!("--only needs a comma-separated list of scenarios\n{USAGE}");
                };
                let mut chosen = Vec::new();
                for key in keys.split(',').map(str::trim).filter(|key| !key.is_empty()) {
                    let Some(known) = SCENARIOS.iter().find(|known| **known == key) else {
                        bail!("unknown scenario {key:?} in --only\n{USAGE}");
                    };
                    chosen.push(*known);
                }
                if chosen.is_empty() {
                    bail!("--only needs at least one scenario\n{USAGE}");
                }
                plan.only = Some(chosen.leak());
            }
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(Some(plan))
}

/// Runs `cargo xtask bench` with the arguments after `bench`.
pub fn run(arguments: &[String]) -> Result<ExitCode> {
    let Some(plan) = parse_plan(arguments)? else {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    };
    if cfg!(debug_assertions) {
        return rerun_in_release(arguments);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let report = runtime.block_on(run_plan(plan))?;
    println!("{}", report::table(&report));
    if plan.writes_files() {
        for path in report::write(&crate::workspace_root(), &report)? {
            println!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The load driver must not be what limits the figures, so the harness itself runs as a
/// release build: `cargo xtask` builds a debug one, which hands over to it.
fn rerun_in_release(arguments: &[String]) -> Result<ExitCode> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "xtask",
            "--",
            "bench",
        ])
        .args(arguments)
        .current_dir(crate::workspace_root())
        .status()
        .context("running the release build of xtask")?;
    Ok(match status.success() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

/// Everything the scenarios share.
struct Bench<'a> {
    context: subjects::Surroundings<'a>,
    misp: &'a MispSim,
    ticks: u64,
    next_org: u64,
    /// The id of the event of [`BIG_EVENT_ATTRIBUTES`] attributes, once seeded.
    big_event_id: Option<String>,
}

async fn run_plan(plan: Plan) -> Result<Report> {
    let started = Instant::now();
    let root = crate::workspace_root();
    let target = setup::target_dir(&root);
    let runner_binary = match std::env::var_os("BENCH_RUNNER_BINARY") {
        // A binary built before (another revision for an A/B, or the same one for a second
        // broker configuration) is measured as it is.
        Some(binary) => std::path::PathBuf::from(binary),
        None => {
            eprintln!("bench: building soar-runner with the dist profile");
            setup::build_runner(&root, &target)?
        }
    };
    let venv = setup::python_env(&target)?;
    let work_dir = target.join("bench-work");
    let _ = std::fs::remove_dir_all(&work_dir);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    eprintln!(
        "bench: starting a private ActiveMQ, {}",
        plan.broker.description()
    );
    let broker = setup::Broker::start(&root, target.join("bench-amq"), plan.broker)?;
    let misp = MispSim::try_start(SimOptions::default())
        .await
        .map_err(|error| anyhow::anyhow!("starting misp-sim: {error}"))?;
    misp.seed_event(json!({
        "info": "benchmark event",
        "Tag": [{"name": "tlp:green"}],
        "Attribute": [{
            "type": "ip-dst",
            "category": "Network activity",
            "value": SEARCH_VALUE,
            "Tag": [{"name": "tlp:white"}],
        }],
    }));
    let components_dir = root.join("xtask/bench/components");
    let mut bench = Bench {
        context: subjects::Surroundings {
            broker: &broker,
            misp: &misp,
            runner_binary: &runner_binary,
            venv: &venv,
            components_dir: &components_dir,
            work_dir: &work_dir,
        },
        misp: &misp,
        ticks: procfs::ticks_per_second(),
        next_org: 301,
        big_event_id: None,
    };

    bench.warm_up(plan.warm_up).await?;
    let mut scenarios = Vec::new();
    if plan.runs("ceiling") {
        scenarios.push(bench.ceiling("ceiling", 25, 0, plan.ceiling).await?);
    }
    if plan.runs("ceiling_50ms_w100") {
        let sizes = plan.ceiling_50ms_w100;
        scenarios.push(bench.ceiling("ceiling_50ms_w100", 100, 50, sizes).await?);
    }
    // The baseline's burst size is run again by the runner, so that latencies compare at
    // equal load.
    let same_burst = (plan.baseline_instant.0, plan.runner_instant.1);
    let subject_scenarios = [
        (
            "runner_instant",
            Subject::Runner,
            25,
            0,
            plan.runner_instant,
        ),
        (
            "runner_instant_same_burst",
            Subject::Runner,
            25,
            0,
            same_burst,
        ),
        (
            "baseline_instant",
            Subject::Baseline,
            25,
            0,
            plan.baseline_instant,
        ),
        (
            "runner_50ms_w25",
            Subject::Runner,
            25,
            50,
            plan.runner_50ms_w25,
        ),
        (
            "runner_50ms_w100",
            Subject::Runner,
            100,
            50,
            plan.runner_50ms_w100,
        ),
        (
            "baseline_50ms_w25",
            Subject::Baseline,
            25,
            50,
            plan.baseline_50ms_w25,
        ),
    ];
    for (key, subject, num_workers, misp_latency_ms, sizes) in subject_scenarios {
        if plan.runs(key) {
            let result = bench
                .subject_scenario(key, subject, num_workers, misp_latency_ms, sizes)
                .await?;
            scenarios.push(result);
        }
    }
    if plan.runs("sequential") {
        scenarios.extend(bench.sequential_scenarios(plan.sequential).await?);
    }
    if plan.runs("baseline_sequential") {
        let sizes = plan.baseline_sequential;
        scenarios.push(
            bench
                .sequential_subject("baseline_sequential", Subject::Baseline, sizes)
                .await?,
        );
    }
    if plan.runs("quickack") {
        let sizes = (plan.quickack_sequential, plan.quickack_50ms_w25);
        scenarios.extend(bench.quickack_scenarios(sizes).await?);
    }
    if plan.runs("scale_out") {
        scenarios.extend(bench.scale_out_scenarios(plan.scale_out).await?);
    }
    if plan.runs("renewal") {
        scenarios.extend(bench.renewal_scenarios(plan.renewal).await?);
    }
    misp.set_latency(Duration::ZERO);
    let get_event_scenarios = [
        ("runner_get_event_1000", Some(1), plan.get_event),
        ("runner_get_event_1000_w25", None, plan.get_event_w25),
    ];
    for (key, in_flight, sizes) in get_event_scenarios {
        if plan.runs(key) {
            scenarios.push(bench.get_event_scenario(key, in_flight, sizes).await?);
        }
    }
    if plan.runs("runner_verdict_50ms_w25") {
        let sizes = plan.verdict_50ms_w25;
        scenarios.push(
            bench
                .verdict_scenario("runner_verdict_50ms_w25", sizes)
                .await?,
        );
        misp.set_latency(Duration::ZERO);
    }
    if plan.runs("runner_add_attributes_1000") {
        let sizes = plan.add_attributes;
        scenarios.push(
            bench
                .add_attributes_scenario("runner_add_attributes_1000", sizes)
                .await?,
        );
    }
    if plan.runs("listener") {
        scenarios.extend(bench.listener_scenarios(plan.listener).await?);
    }
    let startup = match plan.runs("startup") {
        true => bench.startup(plan.startups, plan.idle_samples).await?,
        false => StartupResult::default(),
    };

    let versions = json!({
        "soar_runner": match std::env::var_os("BENCH_RUNNER_BINARY") {
            Some(binary) => Some(format!("{} (BENCH_RUNNER_BINARY; HEAD was {})", binary.to_string_lossy(), git_revision(&root).unwrap_or_default())),
            None => git_revision(&root),
        },
        "resilient_circuits": setup::python_package_version(&venv, "resilient-circuits"),
        "pymisp": setup::python_package_version(&venv, "pymisp"),
        "activemq": activemq_version(),
        "activemq_broker": plan.broker.name(),
        "activemq_broker_description": plan.broker.description(),
        "activemq_tls_connector": connector(&broker.base, "stomp+ssl://"),
        "activemq_stomp_connector": connector(&broker.base, "stomp://"),
        "activemq_jvm_options": setup::jvm_options(),
    });
    Ok(Report {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: procfs::Machine::detect(),
        quick: plan.quick,
        only: plan.only,
        versions,
        scenarios,
        startup,
        duration: started.elapsed(),
    })
}

impl Bench<'_> {
    fn next_org(&mut self) -> u64 {
        self.next_org += 1;
        self.next_org
    }

    /// An unmeasured burst through the ceiling consumer: a fresh broker's first burst is
    /// its slowest (its JIT is cold), which would fall on whichever scenario runs first.
    async fn warm_up(&mut self, messages: usize) -> Result<()> {
        let org_id = self.next_org();
        let consumer =
            load::start_ceiling_consumer(self.context.broker, org_id, 25, Duration::ZERO).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        eprintln!("bench: warming the broker up with {messages} messages (not measured)");
        self.measured_burst(org_id, messages, &[]).await?;
        drop(consumer);
        Ok(())
    }

    /// Scenario 1: the broker's round trip with a consumer that only acks and replies,
    /// `prefetch` messages in flight. With `hold_ms`, each message is held that long first:
    /// the broker's bound for a function that waits on MISP, the yardstick for scenario 3.
    async fn ceiling(
        &mut self,
        key: &'static str,
        prefetch: usize,
        hold_ms: u64,
        (messages, runs): (usize, usize),
    ) -> Result<ScenarioResult> {
        let hold = Duration::from_millis(hold_ms);
        let mut figures = Vec::new();
        for run in 1..=runs {
            let org_id = self.next_org();
            let consumer =
                load::start_ceiling_consumer(self.context.broker, org_id, prefetch, hold).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            eprintln!("bench: {key}, run {run}/{runs}: {messages} messages");
            let measured = self.measured_burst(org_id, messages, &[]).await?;
            drop(consumer);
            figures.push(measured);
        }
        let title = match hold_ms {
            0 => "ceiling: minimal consumer (ack + 1 reply), TLS".to_string(),
            ms => format!(
                "ceiling: minimal consumer, {prefetch} in flight, each held {ms} ms, then ack + 1 reply, TLS"
            ),
        };
        Ok(ScenarioResult {
            key,
            title,
            subject: None,
            num_workers: prefetch,
            misp_latency_ms: hold_ms,
            runs: figures,
        })
    }

    /// Scenarios 2, 3 and 5: a fresh subject per run, one burst each.
    async fn subject_scenario(
        &mut self,
        key: &'static str,
        subject: Subject,
        num_workers: usize,
        misp_latency_ms: u64,
        (messages, runs): (usize, usize),
    ) -> Result<ScenarioResult> {
        self.misp
            .set_latency(Duration::from_millis(misp_latency_ms));
        let mut figures = Vec::new();
        for run in 1..=runs {
            let org_id = self.next_org();
            let started = subjects::start(&self.context, subject, org_id, num_workers).await?;
            tokio::time::sleep(SETTLE).await;
            eprintln!(
                "bench: {key}, run {run}/{runs}: {messages} messages to {} (num_workers {num_workers}, MISP {misp_latency_ms} ms)",
                subject.name()
            );
            let measured = self
                .measured_burst(org_id, messages, &[started.pid])
                .await?;
            let unexpected = started.unexpected_soar_requests();
            if !unexpected.is_empty() {
                eprintln!("bench: warning: soar-sim has no endpoint for {unexpected:?}");
            }
            if measured.missing > 0 {
                eprintln!(
                    "bench: warning: {} of {messages} calls got no final reply; see {}",
                    measured.missing,
                    started.log_path.display()
                );
            }
            started.stop();
            self.misp.clear_requests();
            figures.push(measured);
        }
        let kind = match misp_latency_ms {
            0 => "MISP instant".to_string(),
            ms => format!("MISP {ms} ms"),
        };
        Ok(ScenarioResult {
            key,
            title: format!("{}, num_workers {num_workers}, {kind}", subject.name()),
            subject: Some(subject),
            num_workers,
            misp_latency_ms,
            runs: figures,
        })
    }

    /// One run of `subject` on a fresh org: start, settle, the calls, stop.
    async fn subject_run(
        &mut self,
        label: &str,
        subject: Subject,
        num_workers: usize,
        messages: usize,
        in_flight: Option<usize>,
    ) -> Result<RunFigures> {
        let org_id = self.next_org();
        let started = subjects::start(&self.context, subject, org_id, num_workers).await?;
        tokio::time::sleep(SETTLE).await;
        eprintln!(
            "bench: {label}: {messages} messages to {} (num_workers {num_workers}, {})",
            subject.name(),
            in_flight.map_or("all at once".to_string(), |n| format!("{n} in flight")),
        );
        let call = Call {
            function: load::FUNCTION,
            inputs: json!({"misp_attribute_value": SEARCH_VALUE}),
            in_flight,
        };
        let mut measured = self
            .measured_calls(org_id, messages, &[started.pid], call)
            .await?;
        warn_if_incomplete(&measured, &started.log_path);
        // Read with the subject still connected: closing a connection frees what it kept.
        measured.broker_kept = self.context.broker.pid().and_then(broker_kept_messages);
        started.stop();
        self.misp.clear_requests();
        Ok(measured)
    }

    /// One call at a time (the next is published when the previous has its final reply),
    /// MISP instant: the minimal consumer and the runner. The latency is
    /// then one call's: publish → broker → subject → MISP → final reply.
    async fn sequential_scenarios(
        &mut self,
        (messages, runs): (usize, usize),
    ) -> Result<Vec<ScenarioResult>> {
        self.misp.set_latency(Duration::ZERO);
        let mut ceiling = Vec::new();
        for run in 1..=runs {
            let org_id = self.next_org();
            let consumer =
                load::start_ceiling_consumer(self.context.broker, org_id, 25, Duration::ZERO)
                    .await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            eprintln!(
                "bench: ceiling_sequential, run {run}/{runs}: {messages} messages, one at a time"
            );
            let call = Call {
                function: load::FUNCTION,
                inputs: json!({"misp_attribute_value": SEARCH_VALUE}),
                in_flight: Some(1),
            };
            ceiling.push(self.measured_calls(org_id, messages, &[], call).await?);
            drop(consumer);
        }
        let mut results = vec![ScenarioResult {
            key: "ceiling_sequential",
            title: "ceiling: minimal consumer (ack + 1 reply), TLS, one call at a time".to_string(),
            subject: None,
            num_workers: 25,
            misp_latency_ms: 0,
            runs: ceiling,
        }];
        results.push(
            self.sequential_subject("runner_sequential", Subject::Runner, (messages, runs))
                .await?,
        );
        Ok(results)
    }

    /// `subject` answering one call at a time, MISP instant.
    async fn sequential_subject(
        &mut self,
        key: &'static str,
        subject: Subject,
        (messages, runs): (usize, usize),
    ) -> Result<ScenarioResult> {
        self.misp.set_latency(Duration::ZERO);
        let mut figures = Vec::new();
        for run in 1..=runs {
            let label = format!("{key}, run {run}/{runs}");
            figures.push(
                self.subject_run(&label, subject, 25, messages, Some(1))
                    .await?,
            );
        }
        Ok(ScenarioResult {
            key,
            title: format!(
                "{}, num_workers 25, MISP instant, one call at a time",
                subject.name()
            ),
            subject: Some(subject),
            num_workers: 25,
            misp_latency_ms: 0,
            runs: figures,
        })
    }

    /// The runner with `TCP_QUICKACK` re-armed (as shipped) and with it off
    /// (`SOAR_STOMP_QUICKACK=0`), runs taken in turn so that drift in the machine falls on
    /// both alike: one call at a time with MISP instant, then a burst with MISP at 50 ms.
    async fn quickack_scenarios(
        &mut self,
        (sequential, burst): ((usize, usize), (usize, usize)),
    ) -> Result<Vec<ScenarioResult>> {
        let shapes = [
            (
                [
                    "runner_sequential_quickack_off",
                    "runner_sequential_quickack_on",
                ],
                0,
                Some(1),
                sequential,
            ),
            (
                [
                    "runner_50ms_w25_quickack_off",
                    "runner_50ms_w25_quickack_on",
                ],
                50,
                None,
                burst,
            ),
        ];
        let mut results = Vec::new();
        for (keys, misp_latency_ms, in_flight, (messages, runs)) in shapes {
            self.misp
                .set_latency(Duration::from_millis(misp_latency_ms));
            let [off, on] = self
                .alternated_runs(
                    [
                        (keys[0], Subject::RunnerQuickAckOff),
                        (keys[1], Subject::Runner),
                    ],
                    (messages, runs),
                    in_flight,
                )
                .await?;
            let shape = match in_flight {
                Some(_) => "MISP instant, one call at a time".to_string(),
                None => format!("MISP {misp_latency_ms} ms"),
            };
            for (key, runs, switch) in [
                (keys[0], off, "TCP_QUICKACK off (SOAR_STOMP_QUICKACK=0)"),
                (keys[1], on, "TCP_QUICKACK re-armed after reads"),
            ] {
                results.push(ScenarioResult {
                    key,
                    title: format!("soar-runner, {switch}, num_workers 25, {shape}"),
                    subject: Some(Subject::Runner),
                    num_workers: 25,
                    misp_latency_ms,
                    runs,
                });
            }
        }
        self.misp.set_latency(Duration::ZERO);
        Ok(results)
    }

    /// `runs` runs of each of two subjects, taken in turn (first, second, first...) so that
    /// drift in the machine falls on both alike, num_workers 25; the figures of each.
    async fn alternated_runs(
        &mut self,
        pair: [(&str, Subject); 2],
        (messages, runs): (usize, usize),
        in_flight: Option<usize>,
    ) -> Result<[Vec<RunFigures>; 2]> {
        let mut figures = [Vec::new(), Vec::new()];
        for run in 1..=runs {
            for (side, (key, subject)) in pair.iter().enumerate() {
                let label = format!("{key}, run {run}/{runs}");
                figures[side].push(
                    self.subject_run(&label, *subject, 25, messages, in_flight)
                        .await?,
                );
            }
        }
        Ok(figures)
    }

    /// The runner as shipped (a fresh broker connection every 5,000 messages) and on one
    /// connection (`stomp_max_calls_per_connection=0`), runs taken in turn, MISP instant,
    /// each run one burst: the broker's CPU per call, and what it still keeps for the
    /// runner's connections at the end (see soar-stomp's `forget_committed_acks`).
    async fn renewal_scenarios(
        &mut self,
        (messages, runs): (usize, usize),
    ) -> Result<Vec<ScenarioResult>> {
        self.misp.set_latency(Duration::ZERO);
        let [one, renewing] = self
            .alternated_runs(
                [
                    ("runner_one_connection", Subject::RunnerOneConnection),
                    ("runner_renewing", Subject::Runner),
                ],
                (messages, runs),
                None,
            )
            .await?;
        Ok(vec![
            ScenarioResult {
                key: "runner_one_connection",
                title: "soar-runner on one broker connection (stomp_max_calls_per_connection=0), num_workers 25, MISP instant".to_string(),
                subject: Some(Subject::RunnerOneConnection),
                num_workers: 25,
                misp_latency_ms: 0,
                runs: one,
            },
            ScenarioResult {
                key: "runner_renewing",
                title: "soar-runner, a fresh broker connection every 5,000 messages (as shipped), num_workers 25, MISP instant".to_string(),
                subject: Some(Subject::Runner),
                num_workers: 25,
                misp_latency_ms: 0,
                runs: renewing,
            },
        ])
    }

    /// Several runners as users grow past one: 1, 2 and 4 processes subscribed to the same
    /// org's queue (competing consumers), num_workers 25 each, MISP at 50 ms. Each is set
    /// beside the held ceiling with the same number in flight (25 × runners, each held
    /// 50 ms). The bound is `runners × num_workers / latency`.
    async fn scale_out_scenarios(
        &mut self,
        (per_runner, runs): (usize, usize),
    ) -> Result<Vec<ScenarioResult>> {
        const NUM_WORKERS: usize = 25;
        const MISP_LATENCY_MS: u64 = 50;
        let shapes = [
            (1, "ceiling_scale_1", "runner_scale_1"),
            (2, "ceiling_scale_2", "runner_scale_2"),
            (4, "ceiling_scale_4", "runner_scale_4"),
        ];
        let mut results = Vec::new();
        for (runners, ceiling_key, runner_key) in shapes {
            let messages = per_runner * runners;
            let in_flight = NUM_WORKERS * runners;
            results.push(
                self.ceiling(ceiling_key, in_flight, MISP_LATENCY_MS, (messages, runs))
                    .await?,
            );
            self.misp
                .set_latency(Duration::from_millis(MISP_LATENCY_MS));
            let mut figures = Vec::new();
            for run in 1..=runs {
                let org_id = self.next_org();
                let mut started = Vec::new();
                for replica in 0..runners {
                    started.push(
                        subjects::start_replica(
                            &self.context,
                            Subject::Runner,
                            org_id,
                            NUM_WORKERS,
                            replica,
                        )
                        .await?,
                    );
                }
                tokio::time::sleep(SETTLE).await;
                self.misp.clear_requests();
                eprintln!(
                    "bench: {runner_key}, run {run}/{runs}: {messages} messages to {runners} runners (num_workers {NUM_WORKERS} each, MISP {MISP_LATENCY_MS} ms)"
                );
                let pids: Vec<u32> = started.iter().map(|subject| subject.pid).collect();
                let call = Call {
                    function: load::FUNCTION,
                    inputs: json!({"misp_attribute_value": SEARCH_VALUE}),
                    in_flight: None,
                };
                let measured = self.measured_calls(org_id, messages, &pids, call).await?;
                let bound = (in_flight as u64 * 1000 / MISP_LATENCY_MS) as f64;
                eprintln!(
                    "bench: {runner_key}, run {run}/{runs}: {:.0} calls/s against a bound of {bound:.0} ({:.3}), {:.2} MISP requests per call",
                    measured.throughput_per_s,
                    measured.throughput_per_s / bound,
                    measured.misp_requests_per_call.unwrap_or_default(),
                );
                for subject in &started {
                    warn_if_incomplete(&measured, &subject.log_path);
                }
                for subject in started {
                    subject.stop();
                }
                self.misp.clear_requests();
                figures.push(measured);
            }
            results.push(ScenarioResult {
                key: runner_key,
                title: format!(
                    "{runners} soar-runner process{} on one queue, num_workers {NUM_WORKERS} each, MISP {MISP_LATENCY_MS} ms",
                    if runners == 1 { "" } else { "es" }
                ),
                subject: Some(Subject::Runner),
                num_workers: in_flight,
                misp_latency_ms: MISP_LATENCY_MS,
                runs: figures,
            });
            self.misp.set_latency(Duration::ZERO);
        }
        Ok(results)
    }

    /// The cost of `[resilient] metrics_listen`: the runner's instant-MISP burst with the
    /// listener off and on, the runs taken in turn (off, on, off, on...) so that drift in
    /// the machine falls on both alike. While on, `/metrics` and `/status` are read every
    /// second, fifteen times Prometheus' usual rate.
    async fn listener_scenarios(
        &mut self,
        (messages, runs): (usize, usize),
    ) -> Result<[ScenarioResult; 2]> {
        self.misp.set_latency(Duration::ZERO);
        let mut off = Vec::new();
        let mut on = Vec::new();
        for run in 1..=runs {
            for subject in [Subject::Runner, Subject::RunnerListening] {
                let org_id = self.next_org();
                let started = subjects::start(&self.context, subject, org_id, 25).await?;
                tokio::time::sleep(SETTLE).await;
                eprintln!(
                    "bench: listener, run {run}/{runs}: {messages} messages to {}",
                    subject.name()
                );
                let scraper = started.metrics_port.map(|port| tokio::spawn(scrape(port)));
                let measured = self
                    .measured_burst(org_id, messages, &[started.pid])
                    .await?;
                if let Some(scraper) = scraper {
                    scraper.abort();
                }
                started.stop();
                self.misp.clear_requests();
                match subject {
                    Subject::RunnerListening => on.push(measured),
                    _ => off.push(measured),
                }
            }
        }
        let scenario = |key, title: &str, subject, runs| ScenarioResult {
            key,
            title: title.to_string(),
            subject: Some(subject),
            num_workers: 25,
            misp_latency_ms: 0,
            runs,
        };
        Ok([
            scenario(
                "runner_listener_off",
                "soar-runner, num_workers 25, MISP instant, no metrics_listen (runs alternate with the next row)",
                Subject::Runner,
                off,
            ),
            scenario(
                "runner_listener_on",
                "soar-runner, num_workers 25, MISP instant, metrics_listen on, /metrics and /status read every second",
                Subject::RunnerListening,
                on,
            ),
        ])
    }

    /// `misp_get_event` on an event of [`BIG_EVENT_ATTRIBUTES`] attributes, soar-runner only
    /// (the Python baseline has no such function): with `in_flight` 1 the latency is the
    /// time of one call; without it the whole burst is published at once (num_workers 25).
    async fn get_event_scenario(
        &mut self,
        key: &'static str,
        in_flight: Option<usize>,
        (messages, runs): (usize, usize),
    ) -> Result<ScenarioResult> {
        let event_id = match &self.big_event_id {
            Some(event_id) => event_id.clone(),
            None => {
                let event_id = self.misp.seed_event(big_event(BIG_EVENT_ATTRIBUTES));
                self.big_event_id = Some(event_id.clone());
                event_id
            }
        };
        let event_id: i64 = event_id
            .parse()
            .with_context(|| format!("misp-sim gave the event a non-numeric id {event_id}"))?;
        let num_workers = 25;
        let mut figures = Vec::new();
        for run in 1..=runs {
            let org_id = self.next_org();
            let started =
                subjects::start(&self.context, Subject::Runner, org_id, num_workers).await?;
            tokio::time::sleep(SETTLE).await;
            eprintln!(
                "bench: {key}, run {run}/{runs}: {messages} calls of {} (event {event_id}, {BIG_EVENT_ATTRIBUTES} attributes, {})",
                load::GET_EVENT_FUNCTION,
                in_flight.map_or("all at once".to_string(), |n| format!("{n} in flight")),
            );
            let call = Call {
                function: load::GET_EVENT_FUNCTION,
                inputs: json!({"misp_event_id": event_id}),
                in_flight,
            };
            let measured = self
                .measured_calls(org_id, messages, &[started.pid], call)
                .await?;
            if measured.missing > 0 || measured.error_replies > 0 {
                eprintln!(
                    "bench: warning: {} calls without a final reply, {} error replies; see {}",
                    measured.missing,
                    measured.error_replies,
                    started.log_path.display()
                );
            }
            started.stop();
            self.misp.clear_requests();
            figures.push(measured);
        }
        let shape = match in_flight {
            Some(1) => "one call at a time".to_string(),
            Some(n) => format!("{n} calls in flight"),
            None => format!("all at once, num_workers {num_workers}"),
        };
        Ok(ScenarioResult {
            key,
            title: format!(
                "{}, {} on an event of {BIG_EVENT_ATTRIBUTES} attributes, {shape}",
                Subject::Runner.name(),
                load::GET_EVENT_FUNCTION
            ),
            subject: Some(Subject::Runner),
            num_workers,
            misp_latency_ms: 0,
            runs: figures,
        })
    }

    /// `misp_verdict` on a tagged, sighted value with MISP at 50 ms and num_workers 25,
    /// soar-runner only: the bound is `num_workers / latency` (500 calls/s) when each verdict
    /// costs one MISP request, which misp-sim's request log counts.
    async fn verdict_scenario(
        &mut self,
        key: &'static str,
        (messages, runs): (usize, usize),
    ) -> Result<ScenarioResult> {
        let num_workers = 25;
        let misp_latency_ms = 50;
        self.misp.seed_event(verdict_event());
        self.misp
            .set_latency(Duration::from_millis(misp_latency_ms));
        let mut figures = Vec::new();
        for run in 1..=runs {
            let org_id = self.next_org();
            let started =
                subjects::start(&self.context, Subject::Runner, org_id, num_workers).await?;
            tokio::time::sleep(SETTLE).await;
            self.misp.clear_requests();
            eprintln!(
                "bench: {key}, run {run}/{runs}: {messages} calls of {VERDICT_FUNCTION} (num_workers {num_workers}, MISP {misp_latency_ms} ms)"
            );
            let call = Call {
                function: VERDICT_FUNCTION,
                inputs: json!({"misp_attribute_value": VERDICT_VALUE, "misp_artifact_type": "IP Address"}),
                in_flight: None,
            };
            let measured = self
                .measured_calls(org_id, messages, &[started.pid], call)
                .await?;
            let requests = self.misp.request_count();
            eprintln!(
                "bench: {key}, run {run}/{runs}: {:.0} calls/s against a bound of {} ({:.1} %), {requests} MISP requests, {:.2} per call",
                measured.throughput_per_s,
                num_workers as u64 * 1000 / misp_latency_ms,
                measured.throughput_per_s * misp_latency_ms as f64 / (num_workers as f64 * 10.0),
                requests as f64 / measured.answered.max(1) as f64,
            );
            if measured.missing > 0 || measured.error_replies > 0 {
                eprintln!(
                    "bench: warning: {} calls without a final reply, {} error replies; see {}",
                    measured.missing,
                    measured.error_replies,
                    started.log_path.display()
                );
            }
            started.stop();
            self.misp.clear_requests();
            figures.push(measured);
        }
        Ok(ScenarioResult {
            key,
            title: format!(
                "{}, {VERDICT_FUNCTION}, num_workers {num_workers}, MISP {misp_latency_ms} ms",
                Subject::Runner.name()
            ),
            subject: Some(Subject::Runner),
            num_workers,
            misp_latency_ms,
            runs: figures,
        })
    }

    /// `misp_add_attributes` with [`BULK_VALUES`] values in one call, to a new empty event
    /// each run, soar-runner only: the call's time, the MISP requests behind it (four,
    /// whatever the number of values) and the runner's peak memory.
    async fn add_attributes_scenario(
        &mut self,
        key: &'static str,
        (messages, runs): (usize, usize),
    ) -> Result<ScenarioResult> {
        let num_workers = 25;
        let values = bulk_values(BULK_VALUES);
        let mut figures = Vec::new();
        for run in 1..=runs {
            let org_id = self.next_org();
            let started =
                subjects::start(&self.context, Subject::Runner, org_id, num_workers).await?;
            tokio::time::sleep(SETTLE).await;
            let event_id = self
                .misp
                .seed_event(json!({"info": format!("benchmark bulk add, run {run}")}));
            let event_id: i64 = event_id
                .parse()
                .with_context(|| format!("misp-sim gave the event a non-numeric id {event_id}"))?;
            self.misp.clear_requests();
            eprintln!(
                "bench: {key}, run {run}/{runs}: {messages} call(s) of {BULK_FUNCTION} with {BULK_VALUES} values (event {event_id})"
            );
            let call = Call {
                function: BULK_FUNCTION,
                inputs: json!({"misp_event_id": event_id, "misp_values": values}),
                in_flight: Some(1),
            };
            let measured = self
                .measured_calls(org_id, messages, &[started.pid], call)
                .await?;
            let requests = self.misp.request_count();
            eprintln!(
                "bench: {key}, run {run}/{runs}: {:.0} ms per call (max), {requests} MISP requests, {:.2} per call, runner peak {:.1} MiB",
                measured.max_ms.unwrap_or_default(),
                requests as f64 / measured.answered.max(1) as f64,
                measured.peak_rss_mib.unwrap_or_default(),
            );
            if measured.missing > 0 || measured.error_replies > 0 {
                eprintln!(
                    "bench: warning: {} calls without a final reply, {} error replies; see {}",
                    measured.missing,
                    measured.error_replies,
                    started.log_path.display()
                );
            }
            started.stop();
            self.misp.clear_requests();
            figures.push(measured);
        }
        Ok(ScenarioResult {
            key,
            title: format!(
                "{}, {BULK_FUNCTION} with {BULK_VALUES} values in one call",
                Subject::Runner.name()
            ),
            subject: Some(Subject::Runner),
            num_workers,
            misp_latency_ms: 0,
            runs: figures,
        })
    }

    /// One burst, with the CPU of the subject, the broker and this harness around it.
    async fn measured_burst(
        &mut self,
        org_id: u64,
        messages: usize,
        subject_pids: &[u32],
    ) -> Result<RunFigures> {
        let call = Call {
            function: load::FUNCTION,
            inputs: json!({"misp_attribute_value": SEARCH_VALUE}),
            in_flight: None,
        };
        self.measured_calls(org_id, messages, subject_pids, call)
            .await
    }

    /// Like [`Bench::measured_burst`], for any function, inputs and window. With several
    /// subject processes, their CPU is summed and the largest peak RSS kept.
    async fn measured_calls(
        &mut self,
        org_id: u64,
        messages: usize,
        subject_pids: &[u32],
        call: Call,
    ) -> Result<RunFigures> {
        let own_pid = std::process::id();
        let broker_pid = self.context.broker.pid();
        let sample = |pid: Option<u32>| pid.and_then(|pid| procfs::sample(pid, self.ticks).ok());
        let subjects = || procfs::sample_all(subject_pids, self.ticks);
        let misp_requests_before = self.misp.request_count();
        let before = (subjects(), sample(Some(own_pid)), sample(broker_pid));
        let wall = Instant::now();
        let outcome = load::burst(
            self.context.broker,
            &BurstOptions {
                org_id,
                messages,
                function: call.function,
                inputs: call.inputs,
                in_flight: call.in_flight,
                idle_timeout: Duration::from_secs(60),
                total_timeout: Duration::from_secs(600),
            },
        )
        .await?;
        let wall = wall.elapsed();
        let after = (subjects(), sample(Some(own_pid)), sample(broker_pid));
        let mut figures = figures_of(
            &outcome,
            wall,
            (before.0, after.0),
            (before.1, after.1),
            (before.2, after.2),
        );
        if !subject_pids.is_empty() {
            let requests = self
                .misp
                .request_count()
                .saturating_sub(misp_requests_before);
            figures.misp_requests_per_call = Some(requests as f64 / outcome.answered.max(1) as f64);
        }
        Ok(figures)
    }

    /// Scenario 4: process start to SUBSCRIBE (and, for the runner, to the broker's receipt
    /// for it), and memory once idle.
    async fn startup(&mut self, count: usize, idle_samples: usize) -> Result<StartupResult> {
        let mut result = StartupResult::default();
        for subject in [Subject::Runner, Subject::Baseline] {
            for run in 1..=count {
                let org_id = self.next_org();
                let started = subjects::start(&self.context, subject, org_id, 25).await?;
                let startup_ms = started.startup.as_secs_f64() * 1000.0;
                let mut idle_rss_mib = None;
                if run <= idle_samples {
                    tokio::time::sleep(IDLE_WAIT).await;
                    idle_rss_mib = procfs::sample(started.pid, self.ticks)
                        .ok()
                        .map(|sampled| sampled.rss_kib as f64 / 1024.0);
                }
                let confirmed_ms = started
                    .confirmed
                    .map(|confirmed| confirmed.as_secs_f64() * 1000.0);
                if let Some(confirmed_ms) = confirmed_ms {
                    result.runner_confirmed_ms.push(confirmed_ms);
                }
                eprintln!(
                    "bench: start-up of {}, run {run}/{count}: {startup_ms:.0} ms{}{}",
                    subject.name(),
                    confirmed_ms
                        .map(|ms| format!(" (subscription confirmed at {ms:.0} ms)"))
                        .unwrap_or_default(),
                    idle_rss_mib
                        .map(|mib| format!(", idle RSS {mib:.1} MiB"))
                        .unwrap_or_default()
                );
                started.stop();
                let (times, idle) = match subject {
                    Subject::Runner
                    | Subject::RunnerListening
                    | Subject::RunnerQuickAckOff
                    | Subject::RunnerOneConnection => {
                        (&mut result.runner_ms, &mut result.runner_idle_rss_mib)
                    }
                    Subject::Baseline => {
                        (&mut result.baseline_ms, &mut result.baseline_idle_rss_mib)
                    }
                };
                times.push(startup_ms);
                idle.extend(idle_rss_mib);
            }
        }
        Ok(result)
    }
}

/// Says so when a run left calls without a final reply or answered some with an error.
fn warn_if_incomplete(measured: &RunFigures, log_path: &Path) {
    if measured.missing > 0 || measured.error_replies > 0 || measured.duplicate_finals > 0 {
        eprintln!(
            "bench: warning: {} calls without a final reply, {} error replies, {} duplicate final replies; see {}",
            measured.missing,
            measured.error_replies,
            measured.duplicate_finals,
            log_path.display()
        );
    }
}

/// What each message of a measured run calls.
struct Call {
    function: &'static str,
    inputs: serde_json::Value,
    /// See [`BurstOptions::in_flight`].
    in_flight: Option<usize>,
}

/// An event of `attributes` attributes as analysts build them: four types in turn (IPs from
/// the benchmarking range, domains, MD5s, URLs), a comment on each, `tlp:amber` on every
/// tenth, and an ATT&CK technique and a TLP tag on the event.
fn big_event(attributes: usize) -> serde_json::Value {
    let attribute = |index: usize| {
        let (kind, category, value) = match index % 4 {
            0 => (
                "ip-dst",
                "Network activity",
                format!("198.18.{}.{}", index / 250, index % 250 + 1),
            ),
            1 => (
                "domain",
                "Network activity",
                format!("host{index}.bench.example"),
            ),
            2 => ("md5", "Payload delivery", format!("{index:032x}")),
            _ => (
                "url",
                "Network activity",
                format!("https://files{index}.bench.example/payload.bin"),
            ),
        };
        let tags = match index % 10 {
            0 => json!([{"name": "tlp:amber"}]),
            _ => json!([]),
        };
        json!({
            "type": kind,
            "category": category,
            "value": value,
            "to_ids": !index.is_multiple_of(3),
            "comment": format!("seen in campaign wave {}", index % 7),
            "Tag": tags,
        })
    };
    json!({
        "info": format!("benchmark event of {attributes} attributes"),
        "threat_level_id": "2",
        "Tag": [
            {"name": "tlp:green"},
            {"name": "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\""},
        ],
        "Attribute": (0..attributes).map(attribute).collect::<Vec<_>>(),
    })
}

/// The function the verdict scenario calls, and the value it asks about.
const BULK_FUNCTION: &str = "misp_add_attributes";
/// How many values the bulk add scenario sends in one call.
const BULK_VALUES: usize = 1_000;

/// `count` distinct values as pasted from a report, one per line: IPv4 addresses (half of
/// them defanged), domains, URLs (defanged) and SHA-256 hashes in turn.
fn bulk_values(count: usize) -> String {
    (0..count)
        .map(|index| match index % 4 {
            0 if index % 8 == 0 => format!(
                "10.{}.{}[.]{}",
                index / 65_536,
                (index / 256) % 256,
                index % 256
            ),
            0 => format!(
                "10.{}.{}.{}",
                index / 65_536,
                (index / 256) % 256,
                index % 256
            ),
            1 => format!("host-{index}.example"),
            2 => format!("hxxps://bulk-{index}[.]example/payload"),
            _ => format!("{index:064x}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const VERDICT_FUNCTION: &str = "misp_verdict";
const VERDICT_VALUE: &str = "203.0.113.66";

/// The event the verdict scenario reads: [`VERDICT_VALUE`] with to_ids (so MISP's search
/// answers for warninglists too), a malware tag of its own, event tags and three sightings.
fn verdict_event() -> serde_json::Value {
    json!({
        "info": "benchmark verdict event",
        "threat_level_id": "2",
        "Tag": [
            {"name": "tlp:green"},
            {"name": "misp-galaxy:threat-actor=\"Sofacy\""},
        ],
        "Attribute": [{
            "type": "ip-dst",
            "category": "Network activity",
            "value": VERDICT_VALUE,
            "to_ids": true,
            "Tag": [{"name": "misp-galaxy:malpedia=\"Emotet\""}, {"name": "tlp:amber"}],
            "Sighting": [
                {"type": "0", "date_sighting": "1796000000"},
                {"type": "0", "date_sighting": "1796036000"},
                {"type": "1", "date_sighting": "1795000000"},
            ],
        }],
    })
}

/// The figures of one run from its burst and the process samples around it.
fn figures_of(
    outcome: &BurstOutcome,
    wall: Duration,
    subject: (Option<ProcessSample>, Option<ProcessSample>),
    harness: (Option<ProcessSample>, Option<ProcessSample>),
    broker: (Option<ProcessSample>, Option<ProcessSample>),
) -> RunFigures {
    let cpu_delta = |pair: (Option<ProcessSample>, Option<ProcessSample>)| match pair {
        (Some(before), Some(after)) => Some(after.cpu.saturating_sub(before.cpu).as_secs_f64()),
        _ => None,
    };
    let latencies = stats::latencies(&outcome.latencies_ms);
    let wall_seconds = wall.as_secs_f64().max(1e-9);
    RunFigures {
        messages: outcome.published,
        answered: outcome.answered,
        missing: outcome.published.saturating_sub(outcome.answered),
        error_replies: outcome.error_replies,
        duplicate_finals: outcome.duplicate_finals,
        progress_per_call: outcome.progress_replies as f64 / outcome.answered.max(1) as f64,
        throughput_per_s: outcome.throughput(),
        p50_ms: latencies.map(|l| l.p50),
        p95_ms: latencies.map(|l| l.p95),
        p99_ms: latencies.map(|l| l.p99),
        max_ms: latencies.map(|l| l.max),
        cpu_ms_per_1000: cpu_delta(subject)
            .map(|seconds| seconds * 1000.0 * 1000.0 / outcome.answered.max(1) as f64),
        peak_rss_mib: subject.1.map(|after| after.peak_rss_kib as f64 / 1024.0),
        harness_cpu_share: cpu_delta(harness).map(|seconds| seconds / wall_seconds),
        broker_cpu_share: cpu_delta(broker).map(|seconds| seconds / wall_seconds),
        publish_seconds: outcome.publish_time.as_secs_f64(),
        misp_requests_per_call: None,
        broker_kept: None,
    }
}

/// Reads `/metrics` and `/status` from the runner's listener every second until aborted.
async fn scrape(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for path in ["/metrics", "/status"] {
            let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                continue;
            };
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            if stream.write_all(request.as_bytes()).await.is_ok() {
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer).await;
            }
        }
    }
}

fn git_revision(root: &Path) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()?;
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!revision.is_empty()).then_some(revision)
}

/// The URI of the broker's connector with `scheme` as its config has it (its options
/// matter: see RESULTS.md on `tcpNoDelay`).
fn connector(base: &Path, scheme: &str) -> Option<String> {
    let config = std::fs::read_to_string(base.join("conf/activemq.xml")).ok()?;
    let line = config
        .lines()
        .find(|line| line.contains(&format!("uri=\"{scheme}")))?;
    let (_, after) = line.split_once("uri=\"")?;
    let (uri, _) = after.split_once('"')?;
    Some(uri.replace("&amp;", "&"))
}

fn activemq_version() -> Option<String> {
    let output = std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "activemq"])
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!version.is_empty()).then_some(version)
}

/// How many messages ActiveMQ keeps for STOMP acks (`StompAckEntry` objects alive after the
/// full GC that `jcmd GC.class_histogram` makes); `None` when jcmd cannot tell.
fn broker_kept_messages(broker_pid: u32) -> Option<f64> {
    let output = std::process::Command::new("jcmd")
        .arg(broker_pid.to_string())
        .arg("GC.class_histogram")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(kept_in_histogram(&String::from_utf8_lossy(&output.stdout)))
}

/// The `StompAckEntry` count of a class histogram (`num: #instances #bytes class`); none
/// when the class is not in it, since it lists only classes with live objects.
fn kept_in_histogram(text: &str) -> f64 {
    text.lines()
        .find(|line| line.trim_end().ends_with(".stomp.StompAckEntry"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|count| count.parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kept_messages_are_the_stomp_ack_entries_of_the_histogram() {
        let histogram = "\
 num     #instances         #bytes  class name (module)
-------------------------------------------------------
  12:         10001         640064  org.apache.activemq.command.MessageDispatch
  20:         10001         320032  org.apache.activemq.transport.stomp.StompAckEntry
  21:             3            408  org.apache.activemq.transport.stomp.StompAckEntryHolder
";
        assert_eq!(super::kept_in_histogram(histogram), 10001.0);
        assert_eq!(
            super::kept_in_histogram("  1:  5  80  java.lang.String (java.base@17)\n"),
            0.0
        );
    }

    use super::*;

    fn plan(arguments: &[&str]) -> Result<Option<Plan>> {
        let arguments: Vec<String> = arguments.iter().map(|a| a.to_string()).collect();
        parse_plan(&arguments)
    }

    #[test]
    fn only_keeps_the_named_scenarios_and_quick_still_applies() {
        let chosen = plan(&["--only", "runner_instant,startup", "--quick"])
            .unwrap()
            .unwrap();
        assert!(chosen.quick);
        assert_eq!(chosen.only, Some(&["runner_instant", "startup"][..]));
        assert!(chosen.runs("startup"));
        assert!(!chosen.runs("ceiling"));
        let all = plan(&[]).unwrap().unwrap();
        assert!(!all.quick);
        assert!(SCENARIOS.iter().all(|key| all.runs(key)));
    }

    #[test]
    fn the_broker_is_as_shipped_unless_tuned_is_asked_for() {
        let default = plan(&[]).unwrap().unwrap();
        assert_eq!(default.broker, BrokerConfig::Shipped);
        assert!(
            default.writes_files(),
            "a run of every scenario writes the files"
        );
        let tuned = plan(&["--broker", "tuned", "--quick"]).unwrap().unwrap();
        assert_eq!(tuned.broker, BrokerConfig::Tuned, "--quick keeps --broker");
        assert!(tuned.quick);
        let shipped = plan(&["--broker", "shipped"]).unwrap().unwrap();
        assert_eq!(shipped.broker, BrokerConfig::Shipped);
        let error = plan(&["--broker", "fast"]).unwrap_err().to_string();
        assert!(error.contains("\"fast\""), "{error}");
        assert!(plan(&["--broker"]).is_err(), "--broker needs a value");
    }

    #[test]
    fn only_writes_no_file_unless_write_is_given() {
        let only = plan(&["--only", "sequential,quickack,scale_out"])
            .unwrap()
            .unwrap();
        assert!(!only.writes_files());
        assert!(only.runs("sequential") && only.runs("quickack") && only.runs("scale_out"));
        assert!(!only.runs("runner_instant"));
        let written = plan(&["--write", "--only", "scale_out", "--quick"])
            .unwrap()
            .unwrap();
        assert!(
            written.writes_files(),
            "--write survives --only and --quick"
        );
        assert_eq!(written.only, Some(&["scale_out"][..]));
    }

    #[test]
    fn the_big_event_holds_distinct_values_misp_would_accept() {
        let event = big_event(BIG_EVENT_ATTRIBUTES);
        let attributes = event["Attribute"].as_array().unwrap();
        assert_eq!(attributes.len(), BIG_EVENT_ATTRIBUTES);
        let values: std::collections::BTreeSet<&str> = attributes
            .iter()
            .map(|attribute| attribute["value"].as_str().unwrap())
            .collect();
        assert_eq!(values.len(), BIG_EVENT_ATTRIBUTES, "no duplicate values");
        for attribute in attributes {
            let value = attribute["value"].as_str().unwrap();
            match attribute["type"].as_str().unwrap() {
                "ip-dst" => assert!(value.parse::<std::net::Ipv4Addr>().is_ok(), "{value}"),
                "md5" => assert!(
                    value.len() == 32 && value.bytes().all(|byte| byte.is_ascii_hexdigit()),
                    "{value}"
                ),
                _ => assert!(value.contains(".bench.example"), "{value}"),
            }
        }
    }

    #[test]
    fn unknown_or_missing_scenarios_are_refused_by_name() {
        let error = plan(&["--only", "runner_fast"]).unwrap_err().to_string();
        assert!(error.contains("\"runner_fast\""), "{error}");
        assert!(plan(&["--only"]).is_err());
        assert!(plan(&["--only", ","]).is_err());
        assert!(plan(&["--slow"]).is_err());
        assert!(plan(&["--help"]).unwrap().is_none());
    }
}
