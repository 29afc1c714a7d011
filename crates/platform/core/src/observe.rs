//! A hook through which the runner watches the HTTP requests the clients send (MISP,
//! urlscan.io) without the clients knowing what it does with them: the runner counts them
//! for its metrics and its readiness check.

use std::sync::Arc;
use std::time::Duration;

/// Told of every attempt of an outgoing request once it has finished. Called on the request's
/// task, so an implementation must be quick and must not block.
pub trait RequestObserver: Send + Sync {
    fn attempt_finished(&self, attempt: &FinishedAttempt<'_>);
}

/// The observer a client holds, if anyone watches.
pub type SharedObserver = Arc<dyn RequestObserver>;

/// One finished attempt of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedAttempt<'a> {
    pub service: Service,
    pub method: &'a str,
    /// The endpoint as a path template such as `/events/view`: never an id, a value or
    /// anything else that came from a function's inputs.
    pub endpoint: &'a str,
    pub end: AttemptEnd,
    pub elapsed: Duration,
    /// Whether this attempt repeats one that failed.
    pub retry: bool,
}

/// Which outside service a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Misp,
    Urlscan,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptEnd {
    /// The server answered with this HTTP status (the body may still have been refused).
    Answered(u16),
    /// No connection: refused, unreachable, DNS, TLS, or no connection within the timeout.
    ConnectFailed,
    /// Connected, but no complete answer within the timeout.
    TimedOut,
    /// Any other failure on the way (the connection broke mid-answer, for instance).
    Failed,
}

impl AttemptEnd {
    /// From a reqwest error: whether it happened before a connection existed.
    pub fn from_transport_error(error: &reqwest::Error) -> AttemptEnd {
        if error.is_connect() {
            AttemptEnd::ConnectFailed
        } else if error.is_timeout() {
            AttemptEnd::TimedOut
        } else {
            AttemptEnd::Failed
        }
    }
}

/// MISP's path template for a request's path segments: the controller and the action
/// (`/events/view` for `events/view/12`). MISP's URLs put parameters after those two, so
/// dropping the rest keeps ids and values out; a segment that is not a plain name ends the
/// template early for the same reason.
pub fn misp_endpoint_template(segments: &[&str]) -> String {
    let mut template = String::new();
    for segment in segments.iter().take(2) {
        let plain_name = segment.starts_with(|first: char| first.is_ascii_alphabetic())
            && segment
                .chars()
                .all(|character| character.is_ascii_alphabetic() || character == '_');
        if !plain_name {
            break;
        }
        template.push('/');
        template.push_str(segment);
    }
    if template.is_empty() {
        template.push('/');
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misp_templates_keep_controller_and_action_and_drop_parameters() {
        assert_eq!(
            misp_endpoint_template(&["events", "view", "12"]),
            "/events/view"
        );
        assert_eq!(
            misp_endpoint_template(&["attributes", "restSearch"]),
            "/attributes/restSearch"
        );
        assert_eq!(
            misp_endpoint_template(&["users", "view", "me"]),
            "/users/view"
        );
        // MISP also takes /events/12 for a view: the id never becomes part of the template.
        assert_eq!(misp_endpoint_template(&["events", "12"]), "/events");
        assert_eq!(
            misp_endpoint_template(&["events", "5f2c1e9a-0b1c-4d2e-9f00-0242ac130003"]),
            "/events"
        );
        assert_eq!(misp_endpoint_template(&["198.51.100.7"]), "/");
        assert_eq!(misp_endpoint_template(&[]), "/");
    }
}
