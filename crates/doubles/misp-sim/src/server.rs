//! The accept loop (plain or TLS), one HTTP/1.1 connection per task, and the axum handler
//! that applies the test knobs before handing a request to the MISP model.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use crate::misp::{Reply, ReplyBody};
use crate::{ForcedBody, RecordedRequest, Shared};

/// The CA the tests trust and the acceptor presenting a leaf certificate signed by it.
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    pub(crate) acceptor: TlsAcceptor,
}

/// Lets a handler close its own connection without answering.
#[derive(Clone)]
struct ConnectionKill(Arc<Notify>);

pub(crate) async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let router = axum::Router::new().fallback(handle).with_state(shared);
    // Connection tasks live in the set so that aborting the server task ends them too.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                // As a production server does: with Nagle on, a reply written in two parts
                // waits for the client's delayed ACK (about 40 ms on Linux).
                let _ = stream.set_nodelay(true);
                stream
            }
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        serve_connection(stream, router).await;
                    }
                }
                None => serve_connection(stream, router).await,
            }
        });
    }
}

impl TlsMaterial {
    pub(crate) fn generate() -> Result<TlsMaterial, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let text = |error: rcgen::Error| error.to_string();
        let ca_key = KeyPair::generate().map_err(text)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(text)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "misp-sim test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(text)?;
        let leaf_key = KeyPair::generate().map_err(text)?;
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .map_err(text)?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .map_err(text)?;

        let chain = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
        let private_key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        );
        // misp-sim must not depend on soar-core, so it names its provider explicitly
        // instead of relying on a process-wide default.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)
            .map_err(|error| error.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsMaterial {
            ca_pem: ca_cert.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

async fn serve_connection<Io>(io: Io, router: axum::Router)
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let service_kill = Arc::clone(&kill);
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        request
            .extensions_mut()
            .insert(ConnectionKill(Arc::clone(&service_kill)));
        let mut router = router.clone();
        async move { router.call(request).await }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::select! {
        _ = connection => {}
        // Dropping the connection future closes the socket mid-request.
        _ = kill.notified() => {}
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<ConnectionKill>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = crate::InFlight::start(&shared);
    let recorded = RecordedRequest {
        sequence: 0,
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: parse_body(&body),
        status: None,
        known_endpoint: true,
    };

    enum Knob {
        Drop,
        Lose,
        Hang,
        ApplyAndHang,
        Forced(crate::ForcedResponse),
        None,
    }
    // Recorded on arrival, so that a request the client gives up on still shows.
    let (knob, latency, sequence) = {
        let mut state = shared.lock();
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        state.requests.push(RecordedRequest {
            sequence,
            ..recorded.clone()
        });
        let knob = if state.drops > 0 {
            state.drops -= 1;
            Knob::Drop
        } else if state.losses > 0 {
            state.losses -= 1;
            Knob::Lose
        } else if state.applied_hangs > 0 {
            state.applied_hangs -= 1;
            Knob::ApplyAndHang
        } else if state.hangs > 0 {
            state.hangs -= 1;
            Knob::Hang
        } else if let Some(forced) = state.forced.pop_front() {
            Knob::Forced(forced)
        } else {
            Knob::None
        };
        (knob, state.latency, sequence)
    };

    match knob {
        Knob::Drop => {
            kill.0.notify_one();
            std::future::pending::<()>().await;
            unreachable_response()
        }
        Knob::Hang => {
            std::future::pending::<()>().await;
            unreachable_response()
        }
        Knob::ApplyAndHang => {
            {
                let mut state = shared.lock();
                let (reply, known) =
                    state.answer(&shared.key, &method, &uri, &headers, &body, &recorded.body);
                state.finish(sequence, reply.status, known);
            }
            std::future::pending::<()>().await;
            unreachable_response()
        }
        Knob::Lose => {
            // MISP acts on the request; the answer is lost on the way back.
            {
                let mut state = shared.lock();
                let (reply, known) =
                    state.answer(&shared.key, &method, &uri, &headers, &body, &recorded.body);
                state.finish(sequence, reply.status, known);
            }
            kill.0.notify_one();
            std::future::pending::<()>().await;
            unreachable_response()
        }
        Knob::Forced(forced) => {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            shared.lock().finish(sequence, forced.status, true);
            let body = match forced.body {
                ForcedBody::Json(value) => ReplyBody::Json(value),
                ForcedBody::Text { content_type, text } => ReplyBody::Text { content_type, text },
            };
            into_response(Reply {
                status: forced.status,
                headers: forced.headers,
                body,
            })
        }
        Knob::None => {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let reply = {
                let mut state = shared.lock();
                let (reply, known) =
                    state.answer(&shared.key, &method, &uri, &headers, &body, &recorded.body);
                state.finish(sequence, reply.status, known);
                reply
            };
            into_response(reply)
        }
    }
}

fn parse_body(body: &Bytes) -> serde_json::Value {
    if body.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn into_response(reply: Reply) -> Response {
    let (content_type, bytes) = match reply.body {
        ReplyBody::Json(value) => (
            "application/json; charset=UTF-8".to_string(),
            serde_json::to_vec(&value).unwrap_or_default(),
        ),
        ReplyBody::Text { content_type, text } => (content_type, text.into_bytes()),
        ReplyBody::Empty => (String::new(), Vec::new()),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type)
        && !content_type.is_empty()
    {
        response_headers.insert(axum::http::header::CONTENT_TYPE, value);
    }
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response_headers.append(name, value);
        }
    }
    response
}

fn unreachable_response() -> Response {
    // Only reached if `pending` ever resolved, which it does not.
    Response::new(Body::empty())
}
