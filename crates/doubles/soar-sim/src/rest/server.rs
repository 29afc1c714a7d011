//! The accept loop (plain or TLS) that serves the axum router one HTTP/1.1 connection per
//! task, and the throw-away CA and server certificate for HTTPS.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Request;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use super::routes::{self, Shared};

/// The CA a test trusts and the acceptor that presents a certificate signed by it.
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    pub(crate) acceptor: TlsAcceptor,
}

pub(crate) async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let router = axum::Router::new()
        .fallback(routes::handle)
        .with_state(shared);
    // Connections live in the set so that aborting this task (dropping the sim) ends them.
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
                // Running out of descriptors is transient; do not spin on it.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let Some(acceptor) = tls else {
                return serve_connection(stream, router).await;
            };
            // A client that never finishes the handshake must not hold a task forever.
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            if let Ok(Ok(stream)) = handshake.await {
                serve_connection(stream, router).await;
            }
        });
    }
}

async fn serve_connection<Io>(io: Io, router: axum::Router)
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let mut router = router.clone();
        async move { router.call(request).await }
    });
    // A client that hangs up mid-request is its own problem; nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

impl TlsMaterial {
    pub(crate) fn generate() -> Result<TlsMaterial, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

        let describe = |error: rcgen::Error| error.to_string();
        let ca_key = KeyPair::generate().map_err(describe)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(describe)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "soar-sim test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_certificate = ca.self_signed(&ca_key).map_err(describe)?;

        let server_key = KeyPair::generate().map_err(describe)?;
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let mut server = CertificateParams::new(names).map_err(describe)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server_certificate = server
            .signed_by(&server_key, &ca_certificate, &ca_key)
            .map_err(describe)?;

        let chain = vec![
            server_certificate.der().clone(),
            ca_certificate.der().clone(),
        ];
        let private_key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der()),
        );
        // Naming the provider keeps the sim independent of any process-wide default.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)
            .map_err(|error| error.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsMaterial {
            ca_pem: ca_certificate.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}
