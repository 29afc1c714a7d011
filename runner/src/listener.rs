//! The operator's HTTP listener (`[resilient] metrics_listen`): `/metrics` for Prometheus,
//! `/healthz` and `/readyz` for Kubernetes' probes, `/status` (JSON) for
//! `soar-runner status`. Plain HTTP/1.1, GET only; it serves until the runner stops.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// The `[resilient]` key that turns the listener on.
pub const KEY: &str = "metrics_listen";

/// The listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("[resilient] {KEY}: cannot listen on {address}: {source}")]
pub struct ListenError {
    address: SocketAddr,
    source: std::io::Error,
}

/// A bound listener, not yet serving: binding first lets start-up fail before anything
/// else happens when the port is taken.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
}

impl Listener {
    pub async fn bind(address: SocketAddr) -> Result<Listener, ListenError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ListenError { address, source })?;
        Ok(Listener { listener })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `stop` is cancelled. Each connection is served on its own task.
    pub async fn serve(self, metrics: Arc<Metrics>, stop: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, for instance: wait rather than spin.
                    tracing::warn!(%error, "the metrics listener cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(answer(&metrics, &request)) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    () = stop.cancelled() => {}
                    result = connection => {
                        if let Err(error) = result {
                            tracing::debug!(%error, "a metrics listener connection failed");
                        }
                    }
                }
            });
        }
    }
}

/// A client has this long to send its request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer to one request.
fn answer(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served\n".to_string(),
        );
    }
    match request.uri().path() {
        "/metrics" => with_type(
            text(StatusCode::OK, metrics.encode()),
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        ),
        "/healthz" => text(StatusCode::OK, "ok\n".to_string()),
        "/readyz" => match metrics.readiness() {
            Ok(()) => text(StatusCode::OK, "ready\n".to_string()),
            Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
        },
        "/status" => match serde_json::to_string(&metrics.status()) {
            Ok(json) => with_type(text(StatusCode::OK, json), "application/json"),
            Err(error) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot write the status: {error}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; served here: /metrics, /healthz, /readyz, /status\n".to_string(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn with_type(
    mut response: Response<Full<Bytes>>,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(address: SocketAddr, path: &str) -> (u16, String, String) {
        soar_core::tls::install_crypto_provider();
        let response = reqwest::get(format!("http://{address}{path}"))
            .await
            .expect("the listener answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (
            status,
            content_type,
            response.text().await.unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn the_listener_serves_metrics_health_readiness_and_status() {
        let metrics = Arc::new(Metrics::new(&["misp_create_event"], 2));
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(listener.serve(metrics.clone(), stop.clone()));

        let (status, content_type, body) = get(address, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        assert!(body.contains("soar_runner_calls_total"), "{body}");
        assert_eq!(get(address, "/healthz").await.0, 200);
        let (status, _, body) = get(address, "/readyz").await;
        assert_eq!(status, 503);
        assert!(body.starts_with("not subscribed"), "{body}");
        assert_eq!(body.lines().count(), 1, "a one-line reason: {body}");
        metrics.broker_up(1);
        assert_eq!(get(address, "/readyz").await.0, 200);
        let (status, content_type, body) = get(address, "/status").await;
        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        let report: crate::metrics::StatusReport = serde_json::from_str(&body).unwrap();
        assert!(report.ready && report.broker.connected);
        assert_eq!(get(address, "/other").await.0, 404);

        stop.cancel();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_port_in_use_is_an_error_naming_the_key_and_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let error = Listener::bind(address).await.unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "[resilient] metrics_listen: cannot listen on {address}: "
            )),
            "{error}"
        );
    }
}
