//! A call's budget for MISP: a deadline set when its function starts, which shortens each
//! request's timeout and stops retries that could not start before it.

use std::time::Duration;

use tokio::time::Instant;

/// The time one call may spend on MISP (`[fn_misp] call_timeout`), and when it runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallBudget {
    total: Duration,
    deadline: Instant,
}

/// How long one request may wait for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestLimit {
    pub(crate) timeout: Duration,
    /// The budget, not `timeout`, set the limit: a timeout then means the budget ran out.
    pub(crate) cut_by_budget: bool,
}

impl CallBudget {
    pub(crate) fn starting_at(start: Instant, total: Duration) -> CallBudget {
        CallBudget {
            total,
            deadline: start + total,
        }
    }

    pub(crate) fn total(&self) -> Duration {
        self.total
    }

    /// The limit of a request sent at `now`: `timeout`, or what is left when that is less;
    /// `None` when nothing is left, and so the request must not be sent.
    pub(crate) fn request_limit(&self, timeout: Duration, now: Instant) -> Option<RequestLimit> {
        let left = self.deadline.saturating_duration_since(now);
        if left.is_zero() {
            return None;
        }
        Some(RequestLimit {
            timeout: timeout.min(left),
            cut_by_budget: left < timeout,
        })
    }

    /// Whether a retry that waits `delay` from `now` would still start before the deadline.
    pub(crate) fn allows_retry_after(&self, delay: Duration, now: Instant) -> bool {
        now + delay < self.deadline
    }
}

impl RequestLimit {
    /// A request of a call without a budget.
    pub(crate) fn unbudgeted(timeout: Duration) -> RequestLimit {
        RequestLimit {
            timeout,
            cut_by_budget: false,
        }
    }
}

/// A duration as people write it in messages: "35 s", "0.8 s".
pub(crate) fn seconds_text(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} s", (duration.as_secs_f64() * 1000.0).round() / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_request_gets_its_whole_timeout_while_the_budget_has_more_left() {
        let start = Instant::now();
        let budget = CallBudget::starting_at(start, 35 * SECOND);
        assert_eq!(
            budget.request_limit(30 * SECOND, start),
            Some(RequestLimit {
                timeout: 30 * SECOND,
                cut_by_budget: false
            })
        );
        // Exactly the timeout left: the timeout is still the request's own.
        assert_eq!(
            budget.request_limit(30 * SECOND, start + 5 * SECOND),
            Some(RequestLimit {
                timeout: 30 * SECOND,
                cut_by_budget: false
            })
        );
    }

    #[test]
    fn a_request_late_in_the_call_gets_only_what_is_left() {
        let start = Instant::now();
        let budget = CallBudget::starting_at(start, 35 * SECOND);
        assert_eq!(
            budget.request_limit(30 * SECOND, start + 30 * SECOND + SECOND / 2),
            Some(RequestLimit {
                timeout: 4 * SECOND + SECOND / 2,
                cut_by_budget: true
            })
        );
    }

    #[test]
    fn no_request_is_sent_once_the_budget_is_spent() {
        let start = Instant::now();
        let budget = CallBudget::starting_at(start, 35 * SECOND);
        assert_eq!(budget.request_limit(30 * SECOND, start + 35 * SECOND), None);
        assert_eq!(budget.request_limit(30 * SECOND, start + 90 * SECOND), None);
    }

    #[test]
    fn a_retry_starts_only_if_its_back_off_ends_before_the_deadline() {
        let start = Instant::now();
        let budget = CallBudget::starting_at(start, 35 * SECOND);
        let after_a_timeout = start + 30 * SECOND;
        assert!(budget.allows_retry_after(SECOND / 2, after_a_timeout));
        assert!(budget.allows_retry_after(4 * SECOND, after_a_timeout));
        assert!(!budget.allows_retry_after(5 * SECOND, after_a_timeout));
        assert!(!budget.allows_retry_after(10 * SECOND, after_a_timeout));
        assert!(!budget.allows_retry_after(Duration::ZERO, start + 35 * SECOND));
    }

    #[test]
    fn seconds_read_as_people_write_them() {
        assert_eq!(seconds_text(35 * SECOND), "35 s");
        assert_eq!(seconds_text(Duration::from_millis(800)), "0.8 s");
        assert_eq!(seconds_text(Duration::from_millis(1250)), "1.25 s");
    }
}
