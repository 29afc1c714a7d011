//! The `[fn_misp]` section, validated once into a [`MispConfig`] the client can trust.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{AppConfig, ConfigError, Section};
pub(crate) use crate::config::{proxy_setting as proxy, url_without_password as without_password};
pub use crate::secret::Secret;

/// How the server certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateCheck {
    /// Against the system roots.
    System,
    /// Against the CA bundle at this path only.
    CaFile(PathBuf),
    /// Not at all (`verify_cert = false`); logged as a warning.
    Off,
}

/// The validated `[fn_misp]` section.
#[derive(Clone)]
pub struct MispConfig {
    pub url: reqwest::Url,
    pub key: Secret,
    pub certificate_check: CertificateCheck,
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    /// How long one request may wait for its answer.
    pub timeout: Duration,
    pub retries: u32,
    /// The most time one call may spend on MISP, from the moment its function starts, all
    /// its requests, retries and back-offs included (`call_timeout`).
    pub call_timeout: Duration,
    /// The most events `misp_search_attribute` asks for.
    pub search_limit: u32,
}

/// The section fn_misp's settings live in.
pub const SECTION: &str = "fn_misp";
/// The value `misp_key` has in the app.config template.
pub const KEY_PLACEHOLDER: &str = "<your key>";
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
pub const DEFAULT_RETRIES: u64 = 3;
/// Without `call_timeout`, a call gets `timeout` plus this: one request that waits its whole
/// timeout, then a few seconds for a retry of a request that failed fast.
pub const DEFAULT_CALL_TIMEOUT_MARGIN_SECONDS: u64 = 5;
/// The longest `call_timeout` accepted: two hours.
pub const MAX_CALL_TIMEOUT_SECONDS: u64 = 7200;
pub const DEFAULT_SEARCH_LIMIT: u64 = 100;

impl std::fmt::Debug for MispConfig {
    // Proxy URLs and the MISP URL may carry a password; the key is a `Secret` already.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MispConfig")
            .field("url", &without_password(self.url.as_str()))
            .field("key", &self.key)
            .field("certificate_check", &self.certificate_check)
            .field(
                "http_proxy",
                &self.http_proxy.as_deref().map(without_password),
            )
            .field(
                "https_proxy",
                &self.https_proxy.as_deref().map(without_password),
            )
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("call_timeout", &self.call_timeout)
            .field("search_limit", &self.search_limit)
            .finish()
    }
}

impl MispConfig {
    /// Validates `[fn_misp]` (with `[integrations]` for proxies and timeout).
    pub fn from_app_config(config: &AppConfig) -> Result<MispConfig, ConfigError> {
        let section = config.require_section(SECTION)?;
        let integrations = config.section("integrations");
        let url = misp_url(section)?;
        let key = section.required("misp_key", Some(KEY_PLACEHOLDER))?;
        if !(key.len() == 40 && key.bytes().all(|byte| byte.is_ascii_alphanumeric())) {
            // MISP only accepts 40 letters and digits, but a test setup may use anything.
            tracing::warn!(
                section = SECTION,
                key = "misp_key",
                "misp_key is not 40 letters and digits; MISP will likely refuse it"
            );
        }
        let certificate_check = certificate_check(section)?;
        let http_proxy = proxy(section, integrations, "http_proxy")?;
        let https_proxy = proxy(section, integrations, "https_proxy")?;
        let timeout = match (section.get("timeout"), integrations) {
            (None, Some(integrations)) => {
                integrations.u64_in("timeout", 1..=3600, DEFAULT_TIMEOUT_SECONDS)?
            }
            _ => section.u64_in("timeout", 1..=3600, DEFAULT_TIMEOUT_SECONDS)?,
        };
        let retries = section.u64_in("retries", 0..=10, DEFAULT_RETRIES)?;
        let call_timeout = call_timeout(section, timeout)?;
        let search_limit = section.u64_in("search_limit", 1..=10_000, DEFAULT_SEARCH_LIMIT)?;
        Ok(MispConfig {
            url,
            key: Secret::new(key),
            certificate_check,
            http_proxy,
            https_proxy,
            timeout: Duration::from_secs(timeout),
            // Both are bounded by the ranges above, so they fit.
            retries: u32::try_from(retries).unwrap_or(u32::MAX),
            call_timeout: Duration::from_secs(call_timeout),
            search_limit: u32::try_from(search_limit).unwrap_or(u32::MAX),
        })
    }
}

fn misp_url(section: &Section) -> Result<reqwest::Url, ConfigError> {
    let raw = section.required("misp_url", None)?;
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        // The README's example is `10.10.10.10:5000`; PyMISP would have failed on it.
        tracing::warn!(
            section = SECTION,
            key = "misp_url",
            "misp_url has no scheme; assuming https://"
        );
        format!("https://{raw}")
    };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|error| section.invalid("misp_url", format!("is not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(section.invalid(
            "misp_url",
            format!("must use http or https, not '{}'", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(section.invalid("misp_url", "has no host"));
    }
    Ok(url)
}

/// `call_timeout` in seconds: at least `timeout` (in seconds), since one request may take
/// that long, and `timeout` plus a margin when unset.
fn call_timeout(section: &Section, timeout: u64) -> Result<u64, ConfigError> {
    let key = "call_timeout";
    let Some(value) = section.get(key) else {
        return Ok(timeout.saturating_add(DEFAULT_CALL_TIMEOUT_MARGIN_SECONDS));
    };
    let number: u64 = value.parse().map_err(|_| {
        section.invalid(
            key,
            format!(
                "must be a whole number of seconds from {timeout} (timeout) to {MAX_CALL_TIMEOUT_SECONDS}, not '{value}'"
            ),
        )
    })?;
    if number < timeout {
        return Err(section.invalid(
            key,
            format!(
                "must be at least timeout ({timeout} s), the time one request may take, not {number}; lower timeout too for calls that give up sooner"
            ),
        ));
    }
    if number > MAX_CALL_TIMEOUT_SECONDS {
        return Err(section.invalid(
            key,
            format!("must be at most {MAX_CALL_TIMEOUT_SECONDS} seconds, not {number}"),
        ));
    }
    Ok(number)
}

fn certificate_check(section: &Section) -> Result<CertificateCheck, ConfigError> {
    let Some(value) = section.get("verify_cert") else {
        // Checking is the safe default; the template sets `verify_cert=true` anyway.
        return Ok(CertificateCheck::System);
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => return Ok(CertificateCheck::System),
        "false" | "0" | "no" | "off" => return Ok(CertificateCheck::Off),
        _ => {}
    }
    let path = PathBuf::from(value);
    if path.is_file() {
        Ok(CertificateCheck::CaFile(path))
    } else {
        Err(section.invalid(
            "verify_cert",
            format!(
                "must be true, false or the path of a CA bundle file; '{value}' is none of these"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MispConfig, ConfigError> {
        let config =
            crate::config::tests::environment_held(|| AppConfig::parse(text, "test.config"))?;
        MispConfig::from_app_config(&config)
    }

    const KEY: &str = "abcdefghijABCDEFGHIJ0123456789abcdefghij";

    #[test]
    fn a_complete_section_gives_the_documented_defaults() {
        let config = parse(&format!(
            "[fn_misp]\nmisp_url=https://misp.example.org/\nmisp_key={KEY}\nverify_cert=true\n"
        ))
        .expect("a valid section");
        assert_eq!(config.url.as_str(), "https://misp.example.org/");
        assert_eq!(config.key.expose(), KEY);
        assert_eq!(config.certificate_check, CertificateCheck::System);
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.retries, 3);
        assert_eq!(config.call_timeout, Duration::from_secs(35));
        assert_eq!(config.search_limit, 100);
        assert_eq!(config.http_proxy, None);
    }

    #[test]
    fn a_url_without_scheme_is_taken_as_https() {
        let config = parse(&format!(
            "[fn_misp]\nmisp_url=10.10.10.10:5000\nmisp_key={KEY}\n"
        ))
        .expect("host:port is accepted");
        assert_eq!(config.url.as_str(), "https://10.10.10.10:5000/");
    }

    #[test]
    fn the_template_key_placeholder_is_refused() {
        let error = parse("[fn_misp]\nmisp_url=http://localhost\nmisp_key=<your key>\n")
            .expect_err("the placeholder is not a key");
        assert!(
            error
                .to_string()
                .contains("[fn_misp] misp_key is still the placeholder '<your key>'"),
            "got: {error}"
        );
    }

    #[test]
    fn a_missing_key_is_an_error_naming_it() {
        let error = parse("[fn_misp]\nmisp_url=http://localhost\n").expect_err("no key");
        assert!(error.to_string().contains("misp_key"), "got: {error}");
    }

    #[test]
    fn verify_cert_false_turns_checking_off_and_a_path_must_exist() {
        let off = parse(&format!(
            "[fn_misp]\nmisp_url=https://m\nmisp_key={KEY}\nverify_cert=False\n"
        ))
        .expect("false is valid");
        assert_eq!(off.certificate_check, CertificateCheck::Off);

        let missing = parse(&format!(
            "[fn_misp]\nmisp_url=https://m\nmisp_key={KEY}\nverify_cert=/no/such/ca.pem\n"
        ))
        .expect_err("a missing CA file is an error");
        assert!(
            missing.to_string().contains("verify_cert"),
            "got: {missing}"
        );

        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        let path = file.path().display().to_string();
        let bundle = parse(&format!(
            "[fn_misp]\nmisp_url=https://m\nmisp_key={KEY}\nverify_cert={path}\n"
        ))
        .expect("an existing file is a CA bundle");
        assert_eq!(
            bundle.certificate_check,
            CertificateCheck::CaFile(PathBuf::from(path))
        );
    }

    #[test]
    fn proxies_and_timeout_fall_back_to_integrations() {
        let config = parse(&format!(
            "[integrations]\nhttps_proxy=http://proxy.example:3128\ntimeout=7\n\
             [fn_misp]\nmisp_url=https://m\nmisp_key={KEY}\nhttp_proxy=http://own:8080\n"
        ))
        .expect("valid");
        assert_eq!(config.http_proxy.as_deref(), Some("http://own:8080"));
        assert_eq!(
            config.https_proxy.as_deref(),
            Some("http://proxy.example:3128")
        );
        assert_eq!(config.timeout, Duration::from_secs(7));
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        let error = parse(&format!(
            "[fn_misp]\nmisp_url=https://m\nmisp_key={KEY}\nretries=99\n"
        ))
        .expect_err("99 retries is too many");
        assert!(error.to_string().contains("retries"), "got: {error}");
    }

    #[test]
    fn call_timeout_defaults_to_timeout_plus_a_margin_and_follows_integrations() {
        let own = parse(&format!(
            "[fn_misp]\nmisp_url=https://m\nmisp_key={KEY}\ntimeout=60\n"
        ))
        .expect("valid");
        assert_eq!(own.call_timeout, Duration::from_secs(65));
        let inherited = parse(&format!(
            "[integrations]\ntimeout=7\n[fn_misp]\nmisp_url=https://m\nmisp_key={KEY}\n"
        ))
        .expect("valid");
        assert_eq!(inherited.call_timeout, Duration::from_secs(12));
        let set = parse(&format!(
            "[fn_misp]\nmisp_url=https://m\nmisp_key={KEY}\ntimeout=10\ncall_timeout=10\n"
        ))
        .expect("call_timeout may equal timeout");
        assert_eq!(set.call_timeout, Duration::from_secs(10));
    }

    #[test]
    fn a_call_timeout_shorter_than_timeout_or_not_a_number_is_refused_naming_the_key() {
        let refused = |extra: &str| {
            parse(&format!(
                "[fn_misp]\nmisp_url=https://m\nmisp_key={KEY}\n{extra}"
            ))
            .map(|config| format!("accepted: {config:?}"))
            .unwrap_or_else(|error| error.to_string())
        };
        assert_eq!(
            refused("timeout=30\ncall_timeout=10\n"),
            "test.config: [fn_misp] call_timeout must be at least timeout (30 s), the time one request may take, not 10; lower timeout too for calls that give up sooner"
        );
        assert_eq!(
            refused("call_timeout=35s\n"),
            "test.config: [fn_misp] call_timeout must be a whole number of seconds from 30 (timeout) to 7200, not '35s'"
        );
        assert_eq!(
            refused("call_timeout=7201\n"),
            "test.config: [fn_misp] call_timeout must be at most 7200 seconds, not 7201"
        );
    }

    #[test]
    fn debug_output_hides_the_key_and_proxy_passwords() {
        let config = parse(&format!(
            "[fn_misp]\nmisp_url=https://m\nmisp_key={KEY}\nhttps_proxy=http://user:hunter2@proxy:3128\n"
        ))
        .expect("valid");
        let shown = format!("{config:?} {}", config.key);
        assert!(!shown.contains(KEY), "key leaked: {shown}");
        assert!(!shown.contains("hunter2"), "proxy password leaked: {shown}");
    }
}
