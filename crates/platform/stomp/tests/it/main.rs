//! Connection-level tests of soar-stomp: scripted fake brokers on loopback, and real ActiveMQ.

mod activemq;
mod fake_broker;

use std::time::Duration;

use soar_stomp::{ConnectOptions, TlsOptions};

/// Options as the runner would pass them, pointing at 127.0.0.1:`port`.
fn options(port: u16, heart_beat: (u64, u64), tls: Option<TlsOptions>) -> ConnectOptions {
    ConnectOptions {
        host: "127.0.0.1".into(),
        port,
        tls,
        login: "api-key-id".into(),
        passcode: "api-key-secret".into(),
        vhost: "localhost".into(),
        heart_beat,
        connect_timeout: Duration::from_secs(10),
        max_frame_size: 32 * 1024 * 1024,
    }
}

/// Fails the test instead of hanging when `future` does not finish within ten seconds.
async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(10), future).await {
        Ok(output) => output,
        Err(_) => panic!("{what} did not finish within 10 s"),
    }
}
