//! `soar-runner status`: reads a running runner's `/status` and prints a short summary for
//! a person (or the JSON as it came, with `--json`).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::dispatch::OUTCOME_LABELS;
use crate::metrics::StatusReport;
use crate::recent::{UpstreamSummary, WindowSummary};

/// Fetches the status from the listener at `address` and prints it. Exit code 0 when the
/// runner is ready, 2 when it answers but is not ready.
pub async fn run(address: SocketAddr, json: bool) -> anyhow::Result<ExitCode> {
    soar_core::tls::install_crypto_provider();
    let address = reachable(address);
    let url = format!("http://{address}/status");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("no runner answers at {url}; is `soar-runner run` running with this [resilient] metrics_listen?"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    anyhow::ensure!(status.is_success(), "{url} answered HTTP {status}: {body}");
    let report: StatusReport = serde_json::from_str(&body)
        .with_context(|| format!("{url} did not answer a soar-runner status"))?;
    if json {
        println!("{body}");
    } else {
        print!("{}", summary(&report));
    }
    Ok(if report.ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Where to connect for a listener bound to `address`: an unspecified address (0.0.0.0,
/// [::]) is reached on loopback.
fn reachable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), address.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), address.port())
        }
        _ => address,
    }
}

/// The human summary: readiness, the broker, workers, calls by outcome, each function's
/// latency, and how MISP (and urlscan.io, once used) are doing.
pub fn summary(report: &StatusReport) -> String {
    let mut text = String::new();
    let readiness = match &report.not_ready_reason {
        None => "ready".to_string(),
        Some(reason) => format!("NOT READY: {reason}"),
    };
    let _ = writeln!(
        text,
        "soar-runner {}, up {}: {readiness}",
        report.version,
        duration(report.uptime_seconds)
    );
    let broker = &report.broker;
    let connection = match &broker.connected_since {
        Some(since) if broker.connected => format!(
            "connected since {since}, {} of {} destinations subscribed",
            broker.destinations_subscribed, broker.destinations
        ),
        _ => "not connected".to_string(),
    };
    let _ = writeln!(
        text,
        "broker: {connection}; reconnects: {}",
        broker.reconnects
    );
    let _ = writeln!(
        text,
        "workers: {} of {} busy; {} calls in flight",
        report.workers.busy, report.workers.total, report.calls_in_flight
    );
    let _ = writeln!(text, "\ncalls              last minute   last hour");
    let outcomes: Vec<&str> = OUTCOME_LABELS
        .into_iter()
        .filter(|label| report.last_hour.calls.contains_key(*label))
        .collect();
    if outcomes.is_empty() {
        let _ = writeln!(text, "  (none in the last hour)");
    }
    for outcome in outcomes {
        let count = |window: &WindowSummary| window.calls.get(outcome).copied().unwrap_or(0);
        let _ = writeln!(
            text,
            "  {:<17}{:>11}{:>12}",
            outcome.replace('_', " "),
            count(&report.last_minute),
            count(&report.last_hour)
        );
    }
    if !report.functions.is_empty() {
        let _ = writeln!(
            text,
            "\n{:<32}{:>8}{:>11}{:>11}",
            "last hour, by function", "calls", "p50", "p95"
        );
        for function in &report.functions {
            let _ = writeln!(
                text,
                "  {:<30}{:>8}{:>11}{:>11}",
                function.function,
                function.calls,
                millis(function.p50_ms),
                millis(function.p95_ms)
            );
        }
    }
    let _ = writeln!(text);
    upstream(
        &mut text,
        "MISP",
        &report.last_minute.misp,
        &report.last_hour.misp,
        true,
    );
    upstream(
        &mut text,
        "urlscan.io",
        &report.last_minute.urlscan,
        &report.last_hour.urlscan,
        false,
    );
    text
}

/// One line per outside service; urlscan.io only once it has been used.
fn upstream(
    text: &mut String,
    name: &str,
    minute: &UpstreamSummary,
    hour: &UpstreamSummary,
    always: bool,
) {
    if hour.requests == 0 && !always {
        return;
    }
    if hour.requests == 0 {
        let _ = writeln!(text, "{name}: no requests in the last hour");
        return;
    }
    let _ = writeln!(
        text,
        "{name}: last hour {} requests, {} errors ({:.1} %), p50 {}, p95 {}; last minute {} requests, {} errors",
        hour.requests,
        hour.errors,
        hour.error_rate * 100.0,
        millis(hour.p50_ms),
        millis(hour.p95_ms),
        minute.requests,
        minute.errors
    );
}

fn millis(value: Option<f64>) -> String {
    match value {
        None => "-".to_string(),
        Some(ms) if ms >= 10_000.0 => format!("{:.0} s", ms / 1000.0),
        Some(ms) if ms >= 1000.0 => format!("{:.1} s", ms / 1000.0),
        Some(ms) => format!("{ms:.0} ms"),
    }
}

fn duration(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{BrokerReport, WorkersReport};
    use crate::recent::FunctionSummary;

    fn upstream(requests: u64, errors: u64) -> UpstreamSummary {
        UpstreamSummary {
            requests,
            errors,
            error_rate: if requests == 0 {
                0.0
            } else {
                errors as f64 / requests as f64
            },
            p50_ms: (requests > 0).then_some(40.0),
            p95_ms: (requests > 0).then_some(180.0),
        }
    }

    #[test]
    fn the_summary_names_readiness_broker_outcomes_percentiles_and_misp() {
        let report = StatusReport {
            version: "0.1.0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            uptime_seconds: 3 * 3600 + 12 * 60,
            ready: true,
            not_ready_reason: None,
            broker: BrokerReport {
                connected: true,
                connected_since: Some("2026-01-01T00:00:01Z".into()),
                reconnects: 1,
                destinations_subscribed: 2,
                destinations: 2,
            },
            workers: WorkersReport { total: 25, busy: 3 },
            calls_in_flight: 3,
            last_minute: WindowSummary {
                calls: [("success".to_string(), 4)].into(),
                misp: upstream(8, 0),
                urlscan: upstream(0, 0),
            },
            last_hour: WindowSummary {
                calls: [("success".to_string(), 120), ("input_error".to_string(), 2)].into(),
                misp: upstream(400, 2),
                urlscan: upstream(0, 0),
            },
            functions: vec![FunctionSummary {
                function: "misp_search_attribute".into(),
                calls: 122,
                p50_ms: Some(45.3),
                p95_ms: Some(1530.0),
            }],
        };
        let text = summary(&report);
        for expected in [
            "soar-runner 0.1.0, up 3 h 12 min: ready\n",
            "broker: connected since 2026-01-01T00:00:01Z, 2 of 2 destinations subscribed; reconnects: 1\n",
            "workers: 3 of 25 busy; 3 calls in flight\n",
            "  success                    4         120\n",
            "  input error                0           2\n",
            "  misp_search_attribute              122      45 ms      1.5 s\n",
            "MISP: last hour 400 requests, 2 errors (0.5 %), p50 40 ms, p95 180 ms; last minute 8 requests, 0 errors\n",
        ] {
            assert!(text.contains(expected), "expected {expected:?} in\n{text}");
        }
        assert!(!text.contains("urlscan.io"), "{text}");
        assert!(
            !text.contains("failure"),
            "outcomes without calls are left out:\n{text}"
        );
    }

    #[test]
    fn unspecified_addresses_are_reached_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:9102".parse().unwrap()),
            "127.0.0.1:9102".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:9102".parse().unwrap()),
            "[::1]:9102".parse().unwrap()
        );
        assert_eq!(
            reachable("10.1.2.3:9102".parse().unwrap()),
            "10.1.2.3:9102".parse().unwrap()
        );
    }
}
