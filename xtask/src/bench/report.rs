//! The benchmark's results: per-run figures, their medians and spreads, the ratios between
//! the subjects and the limits, and how they are written (`bench/results.json`,
//! `bench/RESULTS.md`, the table on stdout).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use super::procfs::Machine;
use super::stats::{self, Spread, format_figure};
use super::subjects::Subject;

/// Everything one `cargo xtask bench` measured.
#[derive(Debug)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub quick: bool,
    /// The scenarios `--only` chose; `None` for all of them.
    pub only: Option<&'static [&'static str]>,
    pub versions: Value,
    pub scenarios: Vec<ScenarioResult>,
    pub startup: StartupResult,
    pub duration: Duration,
}

/// One throughput scenario and each of its runs.
#[derive(Debug)]
pub struct ScenarioResult {
    /// The key in results.json.
    pub key: &'static str,
    pub title: String,
    /// `None` for the ceiling consumer.
    pub subject: Option<Subject>,
    /// `num_workers`, or the ceiling consumer's prefetch window.
    pub num_workers: usize,
    /// MISP's latency, or how long the ceiling consumer holds each message.
    pub misp_latency_ms: u64,
    pub runs: Vec<RunFigures>,
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct RunFigures {
    pub messages: usize,
    pub answered: usize,
    pub missing: usize,
    pub error_replies: usize,
    pub duplicate_finals: usize,
    pub progress_per_call: f64,
    pub throughput_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// The subject's user + system CPU per 1,000 answered calls.
    pub cpu_ms_per_1000: Option<f64>,
    /// The subject's VmHWM after the run.
    pub peak_rss_mib: Option<f64>,
    /// This process's CPU (driver, soar-sim, misp-sim, ceiling consumer) over the run's wall
    /// time, in cores.
    pub harness_cpu_share: Option<f64>,
    /// ActiveMQ's CPU over the run's wall time, in cores.
    pub broker_cpu_share: Option<f64>,
    pub publish_seconds: f64,
    /// Requests misp-sim saw during the run per answered call; `None` for the ceiling.
    pub misp_requests_per_call: Option<f64>,
    /// Messages the broker still held for the subject's connections after the burst, with
    /// the subject connected (ActiveMQ's `StompAckEntry` objects alive after a full GC, from
    /// `jcmd GC.class_histogram`); `None` where not measured.
    pub broker_kept: Option<f64>,
}

/// Scenario 4, per subject.
#[derive(Debug, Default)]
pub struct StartupResult {
    /// Process start to the SUBSCRIBE frames going out.
    pub runner_ms: Vec<f64>,
    /// Process start to the broker's receipt for every SUBSCRIBE.
    pub runner_confirmed_ms: Vec<f64>,
    pub runner_idle_rss_mib: Vec<f64>,
    pub baseline_ms: Vec<f64>,
    pub baseline_idle_rss_mib: Vec<f64>,
}

/// A comparison, or a figure, with the issue's aim for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    pub key: &'static str,
    pub description: &'static str,
    pub value: Option<f64>,
    /// `None` when informative only.
    pub aim: Option<Aim>,
    /// What follows the value: `×` for a ratio, ` ms` for a latency.
    pub unit: &'static str,
}

/// Which side of a limit a value must stay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aim {
    AtLeast(f64),
    AtMost(f64),
}

/// Everything below this line in an existing RESULTS.md (profiles, analysis) is kept.
pub const KEPT_MARKER: &str =
    "<!-- Written by hand below this line; cargo xtask bench keeps it. -->";

/// The figures of a throughput scenario, in results.json's order, with their units.
const FIGURES: &[(&str, &str)] = &[
    ("throughput_per_s", "/s"),
    ("p50_ms", "ms"),
    ("p95_ms", "ms"),
    ("p99_ms", "ms"),
    ("max_ms", "ms"),
    ("cpu_ms_per_1000", "ms"),
    ("peak_rss_mib", "MiB"),
    ("harness_cpu_share", "cores"),
    ("broker_cpu_share", "cores"),
    ("misp_requests_per_call", ""),
    ("broker_kept", "messages"),
];

impl RunFigures {
    fn figure(&self, key: &str) -> Option<f64> {
        match key {
            "throughput_per_s" => Some(self.throughput_per_s),
            "p50_ms" => self.p50_ms,
            "p95_ms" => self.p95_ms,
            "p99_ms" => self.p99_ms,
            "max_ms" => self.max_ms,
            "cpu_ms_per_1000" => self.cpu_ms_per_1000,
            "peak_rss_mib" => self.peak_rss_mib,
            "harness_cpu_share" => self.harness_cpu_share,
            "broker_cpu_share" => self.broker_cpu_share,
            "progress_per_call" => Some(self.progress_per_call),
            "misp_requests_per_call" => self.misp_requests_per_call,
            "broker_kept" => self.broker_kept,
            _ => None,
        }
    }
}

impl ScenarioResult {
    /// The median and spread of `key` over the runs.
    pub fn spread(&self, key: &str) -> Option<Spread> {
        let values: Vec<f64> = self.runs.iter().filter_map(|run| run.figure(key)).collect();
        stats::spread(&values)
    }

    pub fn median(&self, key: &str) -> Option<f64> {
        self.spread(key).map(|spread| spread.median)
    }

    /// `num_workers / latency` for one MISP request per call; `None` without latency.
    pub fn bound_per_s(&self) -> Option<f64> {
        (self.misp_latency_ms > 0)
            .then(|| self.num_workers as f64 * 1000.0 / self.misp_latency_ms as f64)
    }

    fn messages(&self) -> usize {
        self.runs.first().map_or(0, |run| run.messages)
    }

    fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("title".into(), json!(self.title));
        object.insert(
            "subject".into(),
            json!(self.subject.map_or("ceiling consumer", Subject::name)),
        );
        object.insert("messages".into(), json!(self.messages()));
        object.insert("num_workers".into(), json!(self.num_workers));
        object.insert("misp_latency_ms".into(), json!(self.misp_latency_ms));
        object.insert("runs".into(), json!(self.runs.len()));
        let mut spreads = Map::new();
        for (key, _) in FIGURES {
            let spread = self.spread(key);
            object.insert(
                (*key).into(),
                json!(spread.map(|spread| stats::round(spread.median))),
            );
            if let Some(spread) = spread {
                spreads.insert((*key).into(), spread.to_json());
            }
        }
        if let Some(bound) = self.bound_per_s() {
            object.insert("bound_per_s".into(), json!(bound));
            object.insert(
                "of_bound".into(),
                json!(
                    self.median("throughput_per_s")
                        .map(|t| stats::round(t / bound))
                ),
            );
        }
        object.insert(
            "answered".into(),
            json!(self.runs.iter().map(|run| run.answered).sum::<usize>()),
        );
        let publish: Vec<f64> = self.runs.iter().map(|run| run.publish_seconds).collect();
        object.insert(
            "publish_s".into(),
            json!(stats::spread(&publish).map(|spread| stats::round(spread.median))),
        );
        object.insert(
            "missing_replies".into(),
            json!(self.runs.iter().map(|run| run.missing).sum::<usize>()),
        );
        object.insert(
            "error_replies".into(),
            json!(self.runs.iter().map(|run| run.error_replies).sum::<usize>()),
        );
        object.insert(
            "duplicate_final_replies".into(),
            json!(
                self.runs
                    .iter()
                    .map(|run| run.duplicate_finals)
                    .sum::<usize>()
            ),
        );
        object.insert(
            "progress_replies_per_call".into(),
            json!(self.median("progress_per_call").map(stats::round)),
        );
        object.insert("spread".into(), Value::Object(spreads));
        Value::Object(object)
    }
}

impl StartupResult {
    fn to_json(&self) -> Value {
        let median = |values: &[f64]| stats::spread(values).map(|s| stats::round(s.median));
        let spread = |values: &[f64]| stats::spread(values).map(Spread::to_json);
        json!({
            "runner_ms": median(&self.runner_ms),
            "runner_confirmed_ms": median(&self.runner_confirmed_ms),
            "runner_idle_rss_mib": median(&self.runner_idle_rss_mib),
            "baseline_ms": median(&self.baseline_ms),
            "baseline_idle_rss_mib": median(&self.baseline_idle_rss_mib),
            "spread": {
                "runner_ms": spread(&self.runner_ms),
                "runner_confirmed_ms": spread(&self.runner_confirmed_ms),
                "runner_idle_rss_mib": spread(&self.runner_idle_rss_mib),
                "baseline_ms": spread(&self.baseline_ms),
                "baseline_idle_rss_mib": spread(&self.baseline_idle_rss_mib),
            },
        })
    }
}

impl Report {
    fn scenario(&self, key: &str) -> Option<&ScenarioResult> {
        self.scenarios.iter().find(|scenario| scenario.key == key)
    }

    fn median(&self, scenario: &str, figure: &str) -> Option<f64> {
        self.scenario(scenario)?.median(figure)
    }

    /// The comparisons the issue sets aims for, and a few informative ones.
    pub fn ratios(&self) -> Vec<Ratio> {
        let divide = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let startup_median = |values: &[f64]| stats::spread(values).map(|s| s.median);
        let of_bound = |key: &str| {
            let scenario = self.scenario(key)?;
            divide(scenario.median("throughput_per_s"), scenario.bound_per_s())
        };
        vec![
            Ratio {
                key: "throughput_vs_baseline",
                description: "throughput, MISP instant: runner / resilient-circuits",
                value: divide(
                    self.median("runner_instant", "throughput_per_s"),
                    self.median("baseline_instant", "throughput_per_s"),
                ),
                aim: Some(Aim::AtLeast(10.0)),
                unit: "×",
            },
            Ratio {
                key: "p99_vs_baseline",
                description: "p99 latency, same burst and num_workers: resilient-circuits / runner",
                value: divide(
                    self.median("baseline_instant", "p99_ms"),
                    self.median("runner_instant_same_burst", "p99_ms"),
                ),
                aim: Some(Aim::AtLeast(5.0)),
                unit: "×",
            },
            Ratio {
                key: "peak_memory_vs_baseline",
                description: "peak RSS, same burst and num_workers: resilient-circuits / runner",
                value: divide(
                    self.median("baseline_instant", "peak_rss_mib"),
                    self.median("runner_instant_same_burst", "peak_rss_mib"),
                ),
                aim: Some(Aim::AtLeast(5.0)),
                unit: "×",
            },
            Ratio {
                key: "peak_memory_long_burst_vs_baseline",
                description: "peak RSS, runner's long burst against the baseline's burst: resilient-circuits / runner",
                value: divide(
                    self.median("baseline_instant", "peak_rss_mib"),
                    self.median("runner_instant", "peak_rss_mib"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "idle_memory_vs_baseline",
                description: "idle RSS: resilient-circuits / runner",
                value: divide(
                    startup_median(&self.startup.baseline_idle_rss_mib),
                    startup_median(&self.startup.runner_idle_rss_mib),
                ),
                aim: Some(Aim::AtLeast(5.0)),
                unit: "×",
            },
            Ratio {
                key: "startup_vs_baseline",
                description: "start-up to SUBSCRIBE sent: resilient-circuits / runner",
                value: divide(
                    startup_median(&self.startup.baseline_ms),
                    startup_median(&self.startup.runner_ms),
                ),
                aim: Some(Aim::AtLeast(20.0)),
                unit: "×",
            },
            Ratio {
                key: "cpu_per_call_vs_baseline",
                description: "CPU per call, MISP instant: resilient-circuits / runner",
                value: divide(
                    self.median("baseline_instant", "cpu_ms_per_1000"),
                    self.median("runner_instant", "cpu_ms_per_1000"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "throughput_50ms_vs_baseline",
                description: "throughput, MISP 50 ms, num_workers 25: runner / resilient-circuits",
                value: divide(
                    self.median("runner_50ms_w25", "throughput_per_s"),
                    self.median("baseline_50ms_w25", "throughput_per_s"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "listener_cpu_per_call",
                description: "CPU per call, MISP instant: metrics_listen on / off (runs in turn; compare with each row's range)",
                value: divide(
                    self.median("runner_listener_on", "cpu_ms_per_1000"),
                    self.median("runner_listener_off", "cpu_ms_per_1000"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "runner_vs_ceiling",
                description: "runner throughput, MISP instant / ceiling",
                value: divide(
                    self.median("runner_instant", "throughput_per_s"),
                    self.median("ceiling", "throughput_per_s"),
                ),
                aim: Some(Aim::AtLeast(0.5)),
                unit: "×",
            },
            Ratio {
                key: "runner_50ms_w25_of_bound",
                description: "runner, MISP 50 ms, num_workers 25: throughput / (25 / 50 ms)",
                value: of_bound("runner_50ms_w25"),
                aim: Some(Aim::AtLeast(0.9)),
                unit: "×",
            },
            Ratio {
                key: "runner_50ms_w100_of_bound",
                description: "runner, MISP 50 ms, num_workers 100: throughput / (100 / 50 ms)",
                value: of_bound("runner_50ms_w100"),
                aim: Some(Aim::AtLeast(0.9)),
                unit: "×",
            },
            Ratio {
                key: "ceiling_50ms_w100_of_bound",
                description: "ceiling, 100 in flight, each held 50 ms: throughput / (100 / 50 ms)",
                value: of_bound("ceiling_50ms_w100"),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "runner_50ms_w100_vs_held_ceiling",
                description: "runner, MISP 50 ms, num_workers 100 / ceiling, 100 in flight, each held 50 ms",
                value: divide(
                    self.median("runner_50ms_w100", "throughput_per_s"),
                    self.median("ceiling_50ms_w100", "throughput_per_s"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "runner_sequential_p50_ms",
                description: "runner, one call at a time, MISP instant: median publish → final reply",
                value: self.median("runner_sequential", "p50_ms"),
                aim: Some(Aim::AtMost(10.0)),
                unit: " ms",
            },
            Ratio {
                key: "runner_sequential_p99_ms",
                description: "runner, one call at a time, MISP instant: p99 publish → final reply",
                value: self.median("runner_sequential", "p99_ms"),
                aim: None,
                unit: " ms",
            },
            Ratio {
                key: "runner_sequential_vs_ceiling",
                description: "one call at a time, median: runner / minimal consumer",
                value: divide(
                    self.median("runner_sequential", "p50_ms"),
                    self.median("ceiling_sequential", "p50_ms"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "baseline_sequential_vs_runner",
                description: "one call at a time, median: resilient-circuits / runner",
                value: divide(
                    self.median("baseline_sequential", "p50_ms"),
                    self.median("runner_sequential", "p50_ms"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "quickack_sequential_p50_off_vs_on",
                description: "one call at a time, median: TCP_QUICKACK off / on",
                value: divide(
                    self.median("runner_sequential_quickack_off", "p50_ms"),
                    self.median("runner_sequential_quickack_on", "p50_ms"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "quickack_sequential_cpu_on_vs_off",
                description: "one call at a time, CPU per call: TCP_QUICKACK on / off",
                value: divide(
                    self.median("runner_sequential_quickack_on", "cpu_ms_per_1000"),
                    self.median("runner_sequential_quickack_off", "cpu_ms_per_1000"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "quickack_50ms_cpu_on_vs_off",
                description: "MISP 50 ms, num_workers 25, CPU per call: TCP_QUICKACK on / off",
                value: divide(
                    self.median("runner_50ms_w25_quickack_on", "cpu_ms_per_1000"),
                    self.median("runner_50ms_w25_quickack_off", "cpu_ms_per_1000"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "quickack_on_50ms_w25_of_bound",
                description: "runner, TCP_QUICKACK on, MISP 50 ms, num_workers 25: throughput / (25 / 50 ms)",
                value: of_bound("runner_50ms_w25_quickack_on"),
                aim: Some(Aim::AtLeast(0.9)),
                unit: "×",
            },
            Ratio {
                key: "quickack_off_50ms_w25_of_bound",
                description: "runner, TCP_QUICKACK off, MISP 50 ms, num_workers 25: throughput / (25 / 50 ms)",
                value: of_bound("runner_50ms_w25_quickack_off"),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "renewal_throughput_renewing_vs_one_connection",
                description: "MISP instant, one burst: throughput, a fresh connection every 5,000 messages / one connection",
                value: divide(
                    self.median("runner_renewing", "throughput_per_s"),
                    self.median("runner_one_connection", "throughput_per_s"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "renewal_broker_kept_one_connection_vs_renewing",
                description: "messages the broker keeps at the burst's end: one connection / a fresh one every 5,000",
                value: divide(
                    self.median("runner_one_connection", "broker_kept"),
                    self.median("runner_renewing", "broker_kept"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "runner_scale_1_of_bound",
                description: "1 runner, MISP 50 ms, num_workers 25: throughput / (25 / 50 ms)",
                value: of_bound("runner_scale_1"),
                aim: Some(Aim::AtLeast(0.9)),
                unit: "×",
            },
            Ratio {
                key: "runner_scale_2_of_bound",
                description: "2 runners, MISP 50 ms, num_workers 25 each: throughput / (2 × 25 / 50 ms)",
                value: of_bound("runner_scale_2"),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "runner_scale_4_of_bound",
                description: "4 runners, MISP 50 ms, num_workers 25 each: throughput / (4 × 25 / 50 ms)",
                value: of_bound("runner_scale_4"),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "runner_scale_1_vs_held_ceiling",
                description: "1 runner / ceiling, 25 in flight, each held 50 ms",
                value: divide(
                    self.median("runner_scale_1", "throughput_per_s"),
                    self.median("ceiling_scale_1", "throughput_per_s"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "runner_scale_2_vs_held_ceiling",
                description: "2 runners / ceiling, 50 in flight, each held 50 ms",
                value: divide(
                    self.median("runner_scale_2", "throughput_per_s"),
                    self.median("ceiling_scale_2", "throughput_per_s"),
                ),
                aim: None,
                unit: "×",
            },
            Ratio {
                key: "runner_scale_4_vs_held_ceiling",
                description: "4 runners / ceiling, 100 in flight, each held 50 ms",
                value: divide(
                    self.median("runner_scale_4", "throughput_per_s"),
                    self.median("ceiling_scale_4", "throughput_per_s"),
                ),
                aim: None,
                unit: "×",
            },
        ]
    }

    pub fn to_json(&self) -> Value {
        let mut scenarios = Map::new();
        for scenario in &self.scenarios {
            scenarios.insert(scenario.key.into(), scenario.to_json());
        }
        scenarios.insert("startup".into(), self.startup.to_json());
        let ratios: Map<String, Value> = self
            .ratios()
            .into_iter()
            .map(|ratio| {
                (
                    ratio.key.to_string(),
                    json!({
                        "description": ratio.description,
                        "value": ratio.value.map(stats::round),
                        "unit": ratio.unit.trim(),
                        "aim_at_least": match ratio.aim {
                            Some(Aim::AtLeast(aim)) => Some(aim),
                            _ => None,
                        },
                        "aim_at_most": match ratio.aim {
                            Some(Aim::AtMost(aim)) => Some(aim),
                            _ => None,
                        },
                        "met": met(&ratio),
                    }),
                )
            })
            .collect();
        json!({
            "date": self.date,
            "mode": if self.quick { "quick" } else { "full" },
            "only": self.only,
            "machine": self.machine.to_json(),
            "versions": self.versions,
            "duration_s": stats::round(self.duration.as_secs_f64()),
            "scenarios": scenarios,
            "ratios": ratios,
        })
    }
}

/// The table printed at the end and put at the top of RESULTS.md.
pub fn table(report: &Report) -> String {
    let mut text = String::new();
    text.push_str(
        "| scenario | calls × runs | throughput /s | p50 ms | p95 ms | p99 ms | max ms | CPU ms / 1000 calls | peak RSS MiB | harness CPU (cores) | broker CPU (cores) | MISP requests / call | broker kept, messages |\n",
    );
    text.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for scenario in &report.scenarios {
        let cell = |key: &str| {
            scenario
                .spread(key)
                .map_or_else(|| "–".to_string(), Spread::display)
        };
        let mut throughput = cell("throughput_per_s");
        if let Some(bound) = scenario.bound_per_s() {
            throughput.push_str(&format!(" (bound {})", format_figure(bound)));
        }
        text.push_str(&format!(
            "| `{}`: {} | {} × {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            scenario.key,
            scenario.title,
            scenario.messages(),
            scenario.runs.len(),
            throughput,
            cell("p50_ms"),
            cell("p95_ms"),
            cell("p99_ms"),
            cell("max_ms"),
            cell("cpu_ms_per_1000"),
            cell("peak_rss_mib"),
            cell("harness_cpu_share"),
            cell("broker_cpu_share"),
            cell("misp_requests_per_call"),
            cell("broker_kept"),
        ));
    }
    text.push('\n');
    text.push_str(
        "| start-up | process start → SUBSCRIBE sent, ms | → subscription confirmed, ms | idle RSS, MiB |\n|---|---|---|---|\n",
    );
    let show =
        |values: &[f64]| stats::spread(values).map_or_else(|| "–".to_string(), Spread::display);
    text.push_str(&format!(
        "| soar-runner | {} | {} | {} |\n| resilient-circuits | {} | not waited for | {} |\n",
        show(&report.startup.runner_ms),
        show(&report.startup.runner_confirmed_ms),
        show(&report.startup.runner_idle_rss_mib),
        show(&report.startup.baseline_ms),
        show(&report.startup.baseline_idle_rss_mib),
    ));
    text.push('\n');
    text.push_str("| comparison | value | aim | met |\n|---|---|---|---|\n");
    // A run of a few scenarios lists only the comparisons it has figures for.
    let ratios = report
        .ratios()
        .into_iter()
        .filter(|ratio| report.only.is_none() || ratio.value.is_some());
    for ratio in ratios {
        let unit = ratio.unit;
        let value = ratio.value.map_or_else(
            || "–".to_string(),
            |v| format!("{}{unit}", format_figure(v)),
        );
        let aim = match ratio.aim {
            None => "–".to_string(),
            Some(Aim::AtLeast(aim)) => format!("≥ {}{unit}", format_figure(aim)),
            Some(Aim::AtMost(aim)) => format!("≤ {}{unit}", format_figure(aim)),
        };
        let met = match met(&ratio) {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        text.push_str(&format!(
            "| {} | {value} | {aim} | {met} |\n",
            ratio.description
        ));
    }
    text
}

/// Writes bench/results.json and bench/RESULTS.md (keeping the hand-written part).
pub fn write(root: &Path, report: &Report) -> Result<Vec<PathBuf>> {
    let dir = root.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let json_path = dir.join("results.json");
    let json_text =
        serde_json::to_string_pretty(&report.to_json()).context("serialising the results")?;
    std::fs::write(&json_path, format!("{json_text}\n"))
        .with_context(|| format!("writing {}", json_path.display()))?;
    let markdown_path = dir.join("RESULTS.md");
    let kept = std::fs::read_to_string(&markdown_path)
        .ok()
        .and_then(|text| {
            text.split_once(KEPT_MARKER)
                .map(|(_, kept)| kept.to_string())
        })
        .unwrap_or_else(|| "\n".to_string());
    let markdown = format!("{}\n{KEPT_MARKER}{kept}", markdown(report));
    std::fs::write(&markdown_path, markdown)
        .with_context(|| format!("writing {}", markdown_path.display()))?;
    Ok(vec![markdown_path, json_path])
}

fn met(ratio: &Ratio) -> Option<bool> {
    let value = ratio.value?;
    match ratio.aim? {
        Aim::AtLeast(aim) => Some(value >= aim),
        Aim::AtMost(aim) => Some(value <= aim),
    }
}

fn markdown(report: &Report) -> String {
    let versions = &report.versions;
    let version = |key: &str| versions[key].as_str().unwrap_or("unknown").to_string();
    let harness_max = report
        .scenarios
        .iter()
        .filter_map(|scenario| scenario.spread("harness_cpu_share"))
        .map(|spread| spread.max)
        .fold(0.0_f64, f64::max);
    let incomplete: Vec<String> = report
        .scenarios
        .iter()
        .filter_map(|scenario| {
            let missing: usize = scenario.runs.iter().map(|run| run.missing).sum();
            let errors: usize = scenario.runs.iter().map(|run| run.error_replies).sum();
            (missing + errors > 0).then(|| {
                format!(
                    "`{}`: {missing} calls without a final reply, {errors} error replies",
                    scenario.key
                )
            })
        })
        .collect();
    let mut text = String::new();
    text.push_str("# Benchmark: soar-runner side by side with resilient-circuits\n\n");
    text.push_str(
        "Generated by `cargo xtask bench`; the figures above the marker line are rewritten by every run.\n\n",
    );
    let scenarios = match report.only {
        None => "every scenario".to_string(),
        Some(only) => format!("`--only {}`", only.join(",")),
    };
    text.push_str(&format!(
        "- Date: {}; mode: {}, {scenarios}; whole run {:.0} s.\n- Machine: {} cores, {:.1} GiB, {}.\n\
         - soar-runner {} (dist build), resilient-circuits {} with PyMISP {}, ActiveMQ {} (non-persistent; broker {}; the subjects and the ceiling consumer speak STOMP over TLS to `{}`, the load driver plain STOMP to `{}`; JVM options `{}`).\n",
        report.date,
        if report.quick { "quick" } else { "full" },
        report.duration.as_secs_f64(),
        report.machine.cores,
        report.machine.memory_gib,
        report.machine.cpu,
        version("soar_runner"),
        version("resilient_circuits"),
        version("pymisp"),
        version("activemq"),
        version("activemq_broker_description"),
        version("activemq_tls_connector"),
        version("activemq_stomp_connector"),
        version("activemq_jvm_options"),
    ));
    text.push_str(
        "- Each cell is the median over the runs, with the smallest and largest run in brackets. \
         A burst is published all at once unless the scenario says one call at a time (the next published when the previous has its final reply); latency runs from a message's publish to its final reply. \
         With several runners, CPU is their sum and peak RSS the largest; MISP requests are those misp-sim saw per answered call. \
         CPU is the subject's user + system time (`/proc/<pid>/stat`) during the burst; peak RSS is its `VmHWM` after the burst. \
         \"Broker kept\" is how many messages ActiveMQ still held for STOMP acks after the burst, the subject still connected (`StompAckEntry` objects alive after `jcmd GC.class_histogram`'s full GC). \
         Every run starts a fresh subject on a fresh org.\n",
    );
    text.push_str(&format!(
        "- The load driver, `soar-sim`, `misp-sim` and the ceiling consumer share the harness process; \
         its CPU (\"harness CPU\") peaked at {harness_max:.2} of the machine's {} cores in any run, so it was not the bottleneck \
         unless that column approaches a whole core.\n",
        report.machine.cores
    ));
    if incomplete.is_empty() {
        text.push_str("- Every call got exactly one final reply with `message_type` 0.\n");
    } else {
        text.push_str(&format!("- Incomplete: {}.\n", incomplete.join("; ")));
    }
    text.push('\n');
    text.push_str(&table(report));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(throughput: f64, p99: f64) -> RunFigures {
        RunFigures {
            messages: 100,
            answered: 100,
            missing: 0,
            error_replies: 0,
            duplicate_finals: 0,
            progress_per_call: 3.0,
            throughput_per_s: throughput,
            p50_ms: Some(p99 / 2.0),
            p95_ms: Some(p99 * 0.9),
            p99_ms: Some(p99),
            max_ms: Some(p99 * 1.1),
            cpu_ms_per_1000: Some(50.0),
            peak_rss_mib: Some(10.0),
            harness_cpu_share: Some(0.2),
            broker_cpu_share: Some(0.6),
            publish_seconds: 0.1,
            misp_requests_per_call: Some(1.0),
            broker_kept: None,
        }
    }

    fn report() -> Report {
        let scenario = |key, subject, latency, runs| ScenarioResult {
            key,
            title: key.to_string(),
            subject,
            num_workers: 25,
            misp_latency_ms: latency,
            runs,
        };
        Report {
            date: "2026-01-01 00:00 UTC".to_string(),
            machine: Machine {
                cores: 2,
                memory_gib: 4.0,
                cpu: "test CPU".to_string(),
            },
            quick: true,
            only: None,
            versions: json!({}),
            scenarios: vec![
                scenario("ceiling", None, 0, vec![run(4000.0, 10.0)]),
                scenario(
                    "runner_instant",
                    Some(Subject::Runner),
                    0,
                    vec![run(900.0, 20.0), run(1100.0, 30.0), run(1000.0, 25.0)],
                ),
                scenario(
                    "baseline_instant",
                    Some(Subject::Baseline),
                    0,
                    vec![run(50.0, 9000.0)],
                ),
                scenario(
                    "runner_50ms_w25",
                    Some(Subject::Runner),
                    50,
                    vec![run(450.0, 60.0)],
                ),
                scenario("ceiling_50ms_w100", None, 50, vec![run(480.0, 55.0)]),
            ],
            startup: StartupResult {
                runner_ms: vec![40.0, 50.0],
                runner_confirmed_ms: vec![48.0, 61.0],
                runner_idle_rss_mib: vec![8.0],
                baseline_ms: vec![1600.0],
                baseline_idle_rss_mib: vec![64.0],
            },
            duration: Duration::from_secs(90),
        }
    }

    #[test]
    fn ratios_compare_medians_and_say_whether_the_aim_is_met() {
        let ratios = report().ratios();
        let find = |key: &str| {
            ratios
                .iter()
                .find(|ratio| ratio.key == key)
                .expect("the ratio is listed")
                .clone()
        };
        assert_eq!(find("throughput_vs_baseline").value, Some(20.0));
        assert_eq!(met(&find("throughput_vs_baseline")), Some(true));
        assert_eq!(find("runner_vs_ceiling").value, Some(0.25));
        assert_eq!(met(&find("runner_vs_ceiling")), Some(false));
        assert_eq!(find("runner_50ms_w25_of_bound").value, Some(0.9));
        assert_eq!(find("ceiling_50ms_w100_of_bound").value, Some(0.96));
        assert_eq!(
            find("runner_50ms_w100_vs_held_ceiling").value,
            None,
            "no runner_50ms_w100 in this report"
        );
        assert_eq!(find("startup_vs_baseline").value, Some(1600.0 / 45.0));
        // No same-burst runner scenario in this report: the ratio is unknown, not failed.
        assert_eq!(met(&find("p99_vs_baseline")), None);
    }

    #[test]
    fn results_json_has_the_keys_the_issue_names() {
        let value = report().to_json();
        for key in ["date", "machine", "scenarios"] {
            assert!(value.get(key).is_some(), "results.json lacks {key}");
        }
        let runner = &value["scenarios"]["runner_instant"];
        for key in [
            "messages",
            "throughput_per_s",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "max_ms",
            "cpu_ms_per_1000",
            "peak_rss_mib",
        ] {
            assert!(runner.get(key).is_some(), "runner_instant lacks {key}");
        }
        assert_eq!(runner["throughput_per_s"], json!(1000.0));
        assert_eq!(runner["spread"]["throughput_per_s"]["min"], json!(900.0));
        let startup = &value["scenarios"]["startup"];
        assert_eq!(startup["runner_ms"], json!(45.0));
        assert_eq!(startup["runner_confirmed_ms"], json!(54.5));
        assert_eq!(startup["baseline_idle_rss_mib"], json!(64.0));
        assert_eq!(value["machine"]["cores"], json!(2));
    }

    #[test]
    fn a_latency_aim_is_met_at_or_below_its_limit() {
        let mut report = report();
        let sequential = |key, p50| ScenarioResult {
            key,
            title: key.to_string(),
            subject: Some(Subject::Runner),
            num_workers: 25,
            misp_latency_ms: 0,
            runs: vec![run(150.0, p50 * 2.0)],
        };
        report.scenarios.push(sequential("runner_sequential", 6.0));
        report.scenarios.push(sequential("ceiling_sequential", 3.0));
        let ratios = report.ratios();
        let median = ratios
            .iter()
            .find(|ratio| ratio.key == "runner_sequential_p50_ms")
            .expect("the sequential aim is listed");
        assert_eq!(median.value, Some(6.0));
        assert_eq!(met(median), Some(true), "6 ms is within 10 ms");
        let slow = Ratio {
            value: Some(48.0),
            ..median.clone()
        };
        assert_eq!(met(&slow), Some(false), "48 ms is not");
        let text = table(&report);
        assert!(
            text.contains("median publish → final reply | 6.00 ms | ≤ 10.0 ms | yes |"),
            "{text}"
        );
        assert!(
            text.contains("| p99 latency, same burst"),
            "a full run lists every comparison"
        );
        report.only = Some(&["sequential"]);
        let text = table(&report);
        assert!(text.contains("≤ 10.0 ms | yes |"), "{text}");
        assert!(
            !text.contains("| p99 latency, same burst"),
            "an --only run leaves out comparisons it has no figures for: {text}"
        );
        let json = report.to_json();
        let aim = &json["ratios"]["runner_sequential_p50_ms"];
        assert_eq!(aim["aim_at_most"], json!(10.0));
        assert_eq!(aim["met"], json!(true));
        assert_eq!(
            json["scenarios"]["runner_sequential"]["misp_requests_per_call"],
            json!(1.0)
        );
    }

    #[test]
    fn the_table_shows_medians_ranges_bounds_and_unmet_aims() {
        let text = table(&report());
        assert!(text.contains("| 1000 (900–1100) |"), "{text}");
        assert!(text.contains("450 (bound 500)"), "{text}");
        assert!(
            text.contains(
                "| runner throughput, MISP instant / ceiling | 0.250× | ≥ 0.500× | **no** |"
            ),
            "{text}"
        );
    }
}
