//! The last hour of calls and outside requests in ten-second slots, for `soar-runner
//! status`: counts by outcome and latency percentiles, which Prometheus' ever-growing
//! counters cannot give a person at a terminal without a Prometheus server.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long one slot lasts; "the last minute" is the last six slots.
pub const SLOT: Duration = Duration::from_secs(10);
const SLOTS_PER_MINUTE: u64 = 6;
const SLOTS_PER_HOUR: u64 = 360;

/// The recent history. Slots are numbered by time since the runner started, so the caller
/// passes "now" and tests need no clock.
#[derive(Debug, Default)]
pub struct Recent {
    slots: VecDeque<Slot>,
}

/// What a window of slots adds up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// Calls by outcome label; outcomes with no call are left out.
    pub calls: BTreeMap<String, u64>,
    pub misp: UpstreamSummary,
    pub urlscan: UpstreamSummary,
}

/// Requests to one outside service in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamSummary {
    pub requests: u64,
    /// Attempts that got no answer, or an answer that says the service (not the input) is
    /// at fault: 401, 403, 429 and 5xx.
    pub errors: u64,
    /// `errors / requests`, 0 without requests.
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// One function's calls in the last hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSummary {
    pub function: String,
    pub calls: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// Which outside service a request went to, as the window keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    Misp,
    Urlscan,
}

#[derive(Debug)]
struct Slot {
    index: u64,
    calls: HashMap<(&'static str, &'static str), u32>,
    durations: HashMap<&'static str, Latencies>,
    misp: UpstreamSlot,
    urlscan: UpstreamSlot,
}

#[derive(Debug, Default)]
struct UpstreamSlot {
    requests: u32,
    errors: u32,
    latencies: Latencies,
}

/// A latency histogram with eight buckets per doubling from 1 ms (each bucket's bounds are
/// 9 % apart), kept sparse: most slots see a handful of distinct latencies.
#[derive(Debug, Default, Clone)]
struct Latencies {
    buckets: BTreeMap<u16, u32>,
}

impl Recent {
    /// Counts a call that ended with `outcome` (its metric label) after `duration`.
    pub fn record_call(
        &mut self,
        now: Duration,
        function: &'static str,
        outcome: &'static str,
        duration: Duration,
    ) {
        let slot = self.slot(now);
        *slot.calls.entry((function, outcome)).or_default() += 1;
        slot.durations.entry(function).or_default().record(duration);
    }

    /// Counts one attempt of a request to an outside service.
    pub fn record_request(
        &mut self,
        now: Duration,
        upstream: Upstream,
        error: bool,
        duration: Duration,
    ) {
        let slot = self.slot(now);
        let upstream = match upstream {
            Upstream::Misp => &mut slot.misp,
            Upstream::Urlscan => &mut slot.urlscan,
        };
        upstream.requests += 1;
        upstream.errors += u32::from(error);
        upstream.latencies.record(duration);
    }

    /// The last minute (six slots, the current one included).
    pub fn last_minute(&self, now: Duration) -> WindowSummary {
        self.window(now, SLOTS_PER_MINUTE)
    }

    /// The last hour.
    pub fn last_hour(&self, now: Duration) -> WindowSummary {
        self.window(now, SLOTS_PER_HOUR)
    }

    /// Each function's calls and latency percentiles in the last hour, by name.
    pub fn functions_last_hour(&self, now: Duration) -> Vec<FunctionSummary> {
        let mut calls: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut latencies: BTreeMap<&'static str, Latencies> = BTreeMap::new();
        for slot in self.slots_within(now, SLOTS_PER_HOUR) {
            for ((function, _), count) in &slot.calls {
                *calls.entry(function).or_default() += u64::from(*count);
            }
            for (function, slot_latencies) in &slot.durations {
                latencies.entry(function).or_default().add(slot_latencies);
            }
        }
        calls
            .into_iter()
            .map(|(function, calls)| {
                let latencies = latencies.get(function);
                FunctionSummary {
                    function: function.to_string(),
                    calls,
                    p50_ms: latencies.and_then(|latencies| latencies.percentile(0.50)),
                    p95_ms: latencies.and_then(|latencies| latencies.percentile(0.95)),
                }
            })
            .collect()
    }

    fn window(&self, now: Duration, slots: u64) -> WindowSummary {
        let mut calls = BTreeMap::new();
        let mut misp = UpstreamSlot::default();
        let mut urlscan = UpstreamSlot::default();
        for slot in self.slots_within(now, slots) {
            for ((_, outcome), count) in &slot.calls {
                *calls.entry(outcome.to_string()).or_default() += u64::from(*count);
            }
            misp.add(&slot.misp);
            urlscan.add(&slot.urlscan);
        }
        WindowSummary {
            calls,
            misp: misp.summary(),
            urlscan: urlscan.summary(),
        }
    }

    fn slots_within(&self, now: Duration, slots: u64) -> impl Iterator<Item = &Slot> {
        let current = slot_index(now);
        let first = current.saturating_sub(slots - 1);
        self.slots
            .iter()
            .filter(move |slot| slot.index >= first && slot.index <= current)
    }

    /// The slot for `now`, created if need be; slots older than an hour are dropped.
    fn slot(&mut self, now: Duration) -> &mut Slot {
        let index = slot_index(now);
        let oldest_kept = index.saturating_sub(SLOTS_PER_HOUR - 1);
        while self
            .slots
            .front()
            .is_some_and(|slot| slot.index < oldest_kept)
        {
            self.slots.pop_front();
        }
        if self.slots.back().is_none_or(|slot| slot.index < index) {
            self.slots.push_back(Slot {
                index,
                calls: HashMap::new(),
                durations: HashMap::new(),
                misp: UpstreamSlot::default(),
                urlscan: UpstreamSlot::default(),
            });
        }
        // Calls are recorded as they end, so `now` never goes back by more than a moment;
        // one that does lands in the newest slot.
        let last = self.slots.len() - 1;
        &mut self.slots[last]
    }
}

impl UpstreamSlot {
    fn add(&mut self, other: &UpstreamSlot) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies.add(&other.latencies);
    }

    fn summary(&self) -> UpstreamSummary {
        UpstreamSummary {
            requests: u64::from(self.requests),
            errors: u64::from(self.errors),
            error_rate: if self.requests == 0 {
                0.0
            } else {
                f64::from(self.errors) / f64::from(self.requests)
            },
            p50_ms: self.latencies.percentile(0.50),
            p95_ms: self.latencies.percentile(0.95),
        }
    }
}

/// Buckets per doubling of the latency.
const BUCKETS_PER_DOUBLING: f64 = 8.0;

impl Latencies {
    fn record(&mut self, duration: Duration) {
        let millis = duration.as_secs_f64() * 1000.0;
        let bucket = if millis <= 1.0 {
            0
        } else {
            // Bucket b holds latencies in (2^((b-1)/8), 2^(b/8)] ms; capped at about 18 h.
            (millis.log2() * BUCKETS_PER_DOUBLING).ceil().min(2048.0) as u16
        };
        *self.buckets.entry(bucket).or_default() += 1;
    }

    fn add(&mut self, other: &Latencies) {
        for (bucket, count) in &other.buckets {
            *self.buckets.entry(*bucket).or_default() += count;
        }
    }

    /// The upper bound of the bucket holding the `quantile`th latency, in milliseconds and
    /// rounded to a tenth: at most 9 % above the true value.
    fn percentile(&self, quantile: f64) -> Option<f64> {
        let total: u64 = self.buckets.values().map(|count| u64::from(*count)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((quantile * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (bucket, count) in &self.buckets {
            seen += u64::from(*count);
            if seen >= rank {
                let bound = 2f64.powf(f64::from(*bucket) / BUCKETS_PER_DOUBLING);
                return Some((bound * 10.0).round() / 10.0);
            }
        }
        None
    }
}

fn slot_index(now: Duration) -> u64 {
    now.as_secs() / SLOT.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs
            .iter()
            .map(|(outcome, count)| (outcome.to_string(), *count))
            .collect()
    }

    #[test]
    fn the_last_minute_and_hour_count_calls_by_outcome() {
        let mut recent = Recent::default();
        recent.record_call(secs(5), "f", "success", Duration::from_millis(10));
        recent.record_call(secs(3000), "f", "failure", Duration::from_millis(10));
        recent.record_call(secs(3590), "g", "success", Duration::from_millis(10));
        recent.record_call(secs(3599), "g", "success", Duration::from_millis(10));
        let now = secs(3599);
        let minute = recent.last_minute(now);
        assert_eq!(minute.calls, counts(&[("success", 2)]));
        let hour = recent.last_hour(now);
        assert_eq!(hour.calls, counts(&[("success", 3), ("failure", 1)]));
        // Nearly an hour later only the newest slot is left in the window.
        let later = secs(7189);
        assert_eq!(recent.last_hour(later).calls, counts(&[("success", 2)]));
    }

    #[test]
    fn slots_older_than_an_hour_are_dropped_as_new_ones_come() {
        let mut recent = Recent::default();
        for second in (0..7200).step_by(10) {
            recent.record_call(secs(second), "f", "success", Duration::from_millis(1));
        }
        assert_eq!(recent.slots.len(), SLOTS_PER_HOUR as usize);
    }

    #[test]
    fn percentiles_are_within_a_bucket_of_the_truth() {
        let mut recent = Recent::default();
        for millis in 1..=100 {
            recent.record_call(secs(1), "f", "success", Duration::from_millis(millis));
        }
        let functions = recent.functions_last_hour(secs(1));
        assert_eq!(functions.len(), 1);
        let summary = &functions[0];
        assert_eq!(summary.calls, 100);
        let p50 = summary.p50_ms.expect("a p50");
        let p95 = summary.p95_ms.expect("a p95");
        assert!((50.0..=50.0 * 1.1).contains(&p50), "p50 {p50}");
        assert!((95.0..=95.0 * 1.1).contains(&p95), "p95 {p95}");
    }

    #[test]
    fn upstream_error_rates_and_latencies_add_up_per_service() {
        let mut recent = Recent::default();
        recent.record_request(secs(1), Upstream::Misp, false, Duration::from_millis(40));
        recent.record_request(secs(2), Upstream::Misp, true, Duration::from_millis(40));
        recent.record_request(secs(2), Upstream::Misp, false, Duration::from_millis(40));
        recent.record_request(secs(2), Upstream::Misp, false, Duration::from_millis(40));
        recent.record_request(secs(2), Upstream::Urlscan, false, Duration::from_millis(5));
        let minute = recent.last_minute(secs(2));
        assert_eq!(minute.misp.requests, 4);
        assert_eq!(minute.misp.errors, 1);
        assert!((minute.misp.error_rate - 0.25).abs() < 1e-9);
        let p50 = minute.misp.p50_ms.expect("a p50");
        assert!((40.0..44.0).contains(&p50), "{p50}");
        assert_eq!(minute.urlscan.requests, 1);
        assert_eq!(recent.last_minute(secs(2)).calls.len(), 0);
        assert_eq!(Recent::default().last_hour(secs(0)).misp.p95_ms, None);
    }
}
