//! Summary statistics for the benchmark: latency percentiles within a run, and the median
//! and spread of a figure over repeated runs.

use serde_json::{Value, json};

/// The median of a figure over repeated runs, with the smallest and largest run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

/// Latency percentiles of one run, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latencies {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// The nearest-rank percentile `p` (0–100) of `sorted` (ascending); `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank: the smallest value with at least p % of the values at or below it.
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// p50, p95, p99 and max of `values` in any order; `None` when empty.
pub fn latencies(values: &[f64]) -> Option<Latencies> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    Some(Latencies {
        p50: percentile(&sorted, 50.0)?,
        p95: percentile(&sorted, 95.0)?,
        p99: percentile(&sorted, 99.0)?,
        max: *sorted.last()?,
    })
}

/// The median (the mean of the middle two for an even count), min and max of `values`;
/// `None` when there is no finite value.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let count = sorted.len();
    let median = match count {
        0 => return None,
        _ if count % 2 == 1 => sorted[count / 2],
        _ => (sorted[count / 2 - 1] + sorted[count / 2]) / 2.0,
    };
    Some(Spread {
        median,
        min: sorted[0],
        max: sorted[count - 1],
        runs: count,
    })
}

impl Spread {
    /// `{"median", "min", "max", "runs"}`, rounded for reading.
    pub fn to_json(self) -> Value {
        json!({
            "median": round(self.median),
            "min": round(self.min),
            "max": round(self.max),
            "runs": self.runs,
        })
    }

    /// `median (min–max)`, or just the median for a single run.
    pub fn display(self) -> String {
        if self.runs <= 1 || self.min == self.max {
            return format_figure(self.median);
        }
        format!(
            "{} ({}–{})",
            format_figure(self.median),
            format_figure(self.min),
            format_figure(self.max)
        )
    }
}

/// Three significant digits at most, and no more than one decimal above 100.
pub fn format_figure(value: f64) -> String {
    let magnitude = value.abs();
    match magnitude {
        m if m >= 100.0 => format!("{value:.0}"),
        m if m >= 10.0 => format!("{value:.1}"),
        m if m >= 1.0 => format!("{value:.2}"),
        _ => format!("{value:.3}"),
    }
}

/// Rounds to 3 decimals so that results.json stays readable.
pub fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_pick_values_that_occur() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let found = latencies(&values).expect("values are not empty");
        assert_eq!(
            found,
            Latencies {
                p50: 50.0,
                p95: 95.0,
                p99: 99.0,
                max: 100.0
            }
        );
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn latencies_ignore_input_order() {
        let found = latencies(&[3.0, 1.0, 2.0]).expect("values are not empty");
        assert_eq!(found.p50, 2.0);
        assert_eq!(found.max, 3.0);
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let found = spread(&[4.0, 1.0, 3.0, 2.0]).expect("values are not empty");
        assert_eq!(
            found,
            Spread {
                median: 2.5,
                min: 1.0,
                max: 4.0,
                runs: 4
            }
        );
        assert_eq!(spread(&[f64::NAN]), None);
    }

    #[test]
    fn a_spread_displays_its_range_only_when_there_is_one() {
        let single = spread(&[1234.4]).expect("one value");
        assert_eq!(single.display(), "1234");
        let several = spread(&[9.87, 10.5, 11.0]).expect("three values");
        assert_eq!(several.display(), "10.5 (9.87–11.0)");
    }
}
