//! What the benchmark reads from `/proc`: the machine (cores, memory, CPU model) and a
//! process's CPU time and resident memory.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The machine the figures were measured on.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu: String,
}

/// A process's CPU time so far and its memory, from `/proc/<pid>/stat` and `status`.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSample {
    /// User plus system time.
    pub cpu: Duration,
    /// `VmRSS`.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident set since the process started.
    pub peak_rss_kib: u64,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, name)| name.trim().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = status_field_kib(&meminfo, "MemTotal").unwrap_or(0);
        Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: memory_kib as f64 / (1024.0 * 1024.0),
            cpu,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "cores": self.cores,
            "memory_gib": super::stats::round(self.memory_gib),
            "cpu": self.cpu,
        })
    }
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn sample(pid: u32, ticks_per_second: u64) -> Result<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let ticks = cpu_ticks(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))?;
    Ok(ProcessSample {
        cpu: Duration::from_secs_f64(ticks as f64 / ticks_per_second.max(1) as f64),
        rss_kib: status_field_kib(&status, "VmRSS").unwrap_or(0),
        peak_rss_kib: status_field_kib(&status, "VmHWM").unwrap_or(0),
    })
}

/// Several processes as one: their CPU summed, the largest resident sets. `None` when
/// there are none or one cannot be read.
pub fn sample_all(pids: &[u32], ticks_per_second: u64) -> Option<ProcessSample> {
    let samples: Vec<ProcessSample> = pids
        .iter()
        .map(|pid| sample(*pid, ticks_per_second).ok())
        .collect::<Option<_>>()?;
    combined(&samples)
}

fn combined(samples: &[ProcessSample]) -> Option<ProcessSample> {
    let first = samples.first()?;
    Some(
        samples[1..]
            .iter()
            .fold(*first, |sum, sample| ProcessSample {
                cpu: sum.cpu + sample.cpu,
                rss_kib: sum.rss_kib.max(sample.rss_kib),
                peak_rss_kib: sum.peak_rss_kib.max(sample.peak_rss_kib),
            }),
    )
}

/// `CLK_TCK`, the unit of the CPU times in `/proc/<pid>/stat` (100 on Linux everywhere
/// that matters, but asked rather than assumed).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// utime + stime in clock ticks. The command name may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Result<u64> {
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        bail!("no ')' after the command name");
    };
    // After the name come state (field 3), …, utime (14) and stime (15).
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize| -> Result<u64> {
        fields
            .get(index)
            .context("too few fields")?
            .parse::<u64>()
            .context("a CPU time is not a number")
    };
    Ok(field(11)? + field(12)?)
}

/// A `Name:   1234 kB` line of `/proc/<pid>/status` or `/proc/meminfo`, in KiB.
fn status_field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (odd (name) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_ticks(stat).expect("a valid stat line"), 300);
    }

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tsoar-runner\nVmHWM:\t   12345 kB\nVmRSS:\t    6789 kB\n";
        assert_eq!(status_field_kib(status, "VmHWM"), Some(12345));
        assert_eq!(status_field_kib(status, "VmRSS"), Some(6789));
        assert_eq!(status_field_kib(status, "VmSwap"), None);
    }

    #[test]
    fn several_processes_sum_their_cpu_and_keep_the_largest_memory() {
        let sample = |cpu_ms, rss_kib, peak_rss_kib| ProcessSample {
            cpu: Duration::from_millis(cpu_ms),
            rss_kib,
            peak_rss_kib,
        };
        let both = combined(&[sample(300, 10, 40), sample(200, 30, 35)]).expect("two samples");
        assert_eq!(both.cpu, Duration::from_millis(500));
        assert_eq!((both.rss_kib, both.peak_rss_kib), (30, 40));
        assert!(combined(&[]).is_none(), "no process, no sample");
        assert!(sample_all(&[], 100).is_none());
    }

    #[test]
    fn this_process_can_be_sampled() {
        let sampled = sample(std::process::id(), ticks_per_second()).expect("/proc is mounted");
        assert!(sampled.peak_rss_kib >= sampled.rss_kib);
    }
}
