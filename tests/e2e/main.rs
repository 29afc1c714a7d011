//! End-to-end tests: `soar-runner` started as a user would, against a real ActiveMQ over
//! TLS, `soar-sim` (SOAR's REST API and its function messages) and `misp-sim`.

mod support;
