//! `app.config` text as the runner reads it: the INI parser with `$NAME` substitution and
//! environment overrides, then the `[fn_misp]` and `[urlscanio]` validation. Nothing may
//! panic, and no validated config shows its key in `Debug` or in an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soar_core::config::AppConfig;
use soar_core::misp::MispConfig;
use urlscanio::config::UrlscanConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = AppConfig::parse(text, "fuzz.config") else {
        return;
    };
    let _ = format!("{config:?}");
    match MispConfig::from_app_config(&config) {
        Ok(misp) => {
            let key = misp.key.expose();
            let shown = format!("{misp:?}");
            // Only a key written once in the whole text can be told from the other fields
            // (URLs, proxies), which are shown on purpose; the URL's host is lower-cased.
            let distinct = key.len() >= 12
                && key.bytes().all(|byte| byte.is_ascii_alphanumeric())
                && text.to_lowercase().matches(&key.to_lowercase()).count() == 1;
            if distinct {
                assert!(!shown.contains(key), "the MISP key shows in {shown}");
            }
        }
        Err(error) => {
            let _ = format!("{error} {error:?}");
        }
    }
    if let Ok(urlscan) = UrlscanConfig::from_app_config(&config) {
        let _ = format!("{urlscan:?}");
    }
});
