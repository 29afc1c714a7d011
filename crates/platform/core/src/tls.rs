//! One place that picks the TLS crypto provider, so no two providers can ever race.

use std::sync::Once;

/// Installs `ring` as the process-wide rustls provider. Safe to call any number of times.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Another caller (a test harness, say) may have installed one first; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
