//! Builds the rustls client configuration: a CA file, the system roots, or no verification.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::connection::TlsOptions;

/// A rustls config for `options` and the server name to send and check, or why not.
pub(crate) fn client_config(
    options: &TlsOptions,
) -> Result<(Arc<ClientConfig>, ServerName<'static>), String> {
    // An explicit provider, so the process-wide default (or its absence) does not matter.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_name = ServerName::try_from(options.server_name.clone())
        .map_err(|error| format!("invalid server name {:?}: {error}", options.server_name))?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("no usable tls versions: {error}"))?;
    let config = if !options.verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateVerification {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    } else {
        let roots = match &options.ca_file {
            Some(path) => roots_from_ca_file(path)?,
            None => system_roots()?,
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok((Arc::new(config), server_name))
}

fn roots_from_ca_file(path: &Path) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("cannot read ca file {}: {error}", path.display()))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "ca file {} contains no usable certificate",
            path.display()
        ));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "no system root certificates found ({}); set a ca file",
            errors.join("; ")
        ));
    }
    Ok(roots)
}

/// Accepts any certificate, for `verify: false`. Handshake signatures are still checked so the
/// peer at least holds the key of the certificate it presents.
#[derive(Debug)]
struct NoCertificateVerification {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoCertificateVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
