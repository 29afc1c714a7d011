//! The `[urlscanio]` section, validated once into a config that cannot be wrong.

use std::time::Duration;

use soar_core::config::{
    AppConfig, ConfigError, Section, proxy_setting as proxy,
    url_without_password as without_password,
};

/// The `app.config` section this function reads.
pub const SECTION: &str = "urlscanio";

/// The original app's text when the key is missing, kept word for word.
pub const MISSING_KEY_MESSAGE: &str =
    "No API key found - please add urlscanio_api_key under a [urlscanio] in app.config";

/// The key's value in the original app's config template.
pub const KEY_PLACEHOLDER: &str = "xxx";

pub const DEFAULT_REPORT_URL: &str = "https://urlscan.io/api/v1";
pub const DEFAULT_SCREENSHOT_URL: &str = "https://urlscan.io/screenshots";
/// The original's code default (its template shows a commented-out 300).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 600;
/// The original polled every 10 s without a setting for it.
pub const DEFAULT_POLL_INTERVAL_SECONDS: u64 = 10;

/// A urlscan.io API key: soar-core's `Secret`, which `Debug` and `Display` never show.
pub use soar_core::secret::Secret as ApiKey;

/// The validated `[urlscanio]` section.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlscanConfig {
    pub api_key: ApiKey,
    /// The API base, without a trailing slash: `https://urlscan.io/api/v1`.
    pub report_url: String,
    /// Where screenshots live, without a trailing slash: `https://urlscan.io/screenshots`.
    pub screenshot_url: String,
    /// How long to wait for a scan to finish, from submission on.
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
}

impl std::fmt::Debug for UrlscanConfig {
    // Proxy URLs may carry a password; the key is an `ApiKey` already.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UrlscanConfig")
            .field("api_key", &self.api_key)
            .field("report_url", &self.report_url)
            .field("screenshot_url", &self.screenshot_url)
            .field("timeout", &self.timeout)
            .field("poll_interval", &self.poll_interval)
            .field(
                "http_proxy",
                &self.http_proxy.as_deref().map(without_password),
            )
            .field(
                "https_proxy",
                &self.https_proxy.as_deref().map(without_password),
            )
            .finish()
    }
}

/// Why `[urlscanio]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlscanConfigError {
    /// No section, or no key in it: the original's own message.
    #[error("{MISSING_KEY_MESSAGE}")]
    MissingKey,
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

impl UrlscanConfig {
    /// Validates `[urlscanio]`, taking proxies from `[integrations]` when the section has none.
    pub fn from_app_config(config: &AppConfig) -> Result<UrlscanConfig, UrlscanConfigError> {
        let Some(section) = config.section(SECTION) else {
            return Err(UrlscanConfigError::MissingKey);
        };
        if section.get("urlscanio_api_key").is_none() {
            return Err(UrlscanConfigError::MissingKey);
        }
        let api_key = section.required("urlscanio_api_key", Some(KEY_PLACEHOLDER))?;
        if reqwest::header::HeaderValue::from_str(api_key).is_err() {
            // Not echoing the value: it is the key.
            return Err(section
                .invalid(
                    "urlscanio_api_key",
                    "contains characters that cannot go in an HTTP header",
                )
                .into());
        }
        let integrations = config.section("integrations");
        Ok(UrlscanConfig {
            api_key: ApiKey::new(api_key),
            report_url: base_url(section, "urlscanio_report_url", DEFAULT_REPORT_URL)?,
            screenshot_url: base_url(section, "urlscanio_screenshot_url", DEFAULT_SCREENSHOT_URL)?,
            timeout: Duration::from_secs(section.u64_in(
                "timeout",
                1..=86_400,
                DEFAULT_TIMEOUT_SECONDS,
            )?),
            poll_interval: Duration::from_secs(section.u64_in(
                "poll_interval",
                1..=3_600,
                DEFAULT_POLL_INTERVAL_SECONDS,
            )?),
            http_proxy: proxy(section, integrations, "http_proxy")?,
            https_proxy: proxy(section, integrations, "https_proxy")?,
        })
    }
}

/// An http(s) URL from the section (or `default`), without its trailing slash.
fn base_url(section: &Section, key: &str, default: &str) -> Result<String, ConfigError> {
    let value = section.get(key).unwrap_or(default);
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Ok(value.trim_end_matches('/').to_string())
        }
        Ok(_) => Err(section.invalid(key, format!("must be an http or https URL, not '{value}'"))),
        Err(error) => Err(section.invalid(key, format!("is not a URL ('{value}'): {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0a1b2c3d-urlscan-test-key-9f8e7d6c";

    fn parse(text: &str) -> Result<UrlscanConfig, String> {
        let config = AppConfig::parse(text, "test.config").map_err(|e| e.to_string())?;
        UrlscanConfig::from_app_config(&config).map_err(|e| e.to_string())
    }

    #[test]
    fn only_the_key_is_needed_and_the_rest_has_the_originals_defaults() {
        let config = parse(&format!("[urlscanio]\nurlscanio_api_key={KEY}\n")).unwrap();
        assert_eq!(config.api_key.expose(), KEY);
        assert_eq!(config.report_url, "https://urlscan.io/api/v1");
        assert_eq!(config.screenshot_url, "https://urlscan.io/screenshots");
        assert_eq!(config.timeout, Duration::from_secs(600));
        assert_eq!(config.poll_interval, Duration::from_secs(10));
        assert_eq!(config.http_proxy, None);
        assert_eq!(config.https_proxy, None);
    }

    #[test]
    fn a_missing_key_or_section_gives_the_originals_message() {
        let expected = Err(MISSING_KEY_MESSAGE.to_string());
        assert_eq!(parse("[fn_misp]\nmisp_key=x\n"), expected);
        assert_eq!(parse("[urlscanio]\nurlscanio_api_key=\n"), expected);
        assert_eq!(parse("[urlscanio]\ntimeout=60\n"), expected);
    }

    #[test]
    fn the_template_placeholder_is_refused() {
        assert_eq!(
            parse("[urlscanio]\nurlscanio_api_key = xxx\n"),
            Err(
                "test.config: [urlscanio] urlscanio_api_key is still the placeholder 'xxx'"
                    .to_string()
            )
        );
    }

    #[test]
    fn urls_lose_their_trailing_slash_and_must_be_http() {
        let config = parse(&format!(
            "[urlscanio]\nurlscanio_api_key={KEY}\nurlscanio_report_url=http://127.0.0.1:9/api/v1/\n\
             urlscanio_screenshot_url=http://127.0.0.1:9/shots/\ntimeout=30\npoll_interval=2\n"
        ))
        .unwrap();
        assert_eq!(config.report_url, "http://127.0.0.1:9/api/v1");
        assert_eq!(config.screenshot_url, "http://127.0.0.1:9/shots");
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.poll_interval, Duration::from_secs(2));

        let error = parse(&format!(
            "[urlscanio]\nurlscanio_api_key={KEY}\nurlscanio_report_url=ftp://urlscan.example/\n"
        ))
        .unwrap_err();
        assert_eq!(
            error,
            "test.config: [urlscanio] urlscanio_report_url must be an http or https URL, not 'ftp://urlscan.example/'"
        );
    }

    #[test]
    fn a_zero_poll_interval_is_refused() {
        let error = parse(&format!(
            "[urlscanio]\nurlscanio_api_key={KEY}\npoll_interval=0\n"
        ))
        .unwrap_err();
        assert_eq!(
            error,
            "test.config: [urlscanio] poll_interval must be from 1 to 3600, not 0"
        );
    }

    #[test]
    fn proxies_fall_back_to_integrations() {
        let config = parse(&format!(
            "[integrations]\nhttps_proxy=http://user:pw@proxy.example:3128\nhttp_proxy=http://shared:8080\n\
             [urlscanio]\nurlscanio_api_key={KEY}\nhttp_proxy=http://own:8080\n"
        ))
        .unwrap();
        assert_eq!(config.http_proxy.as_deref(), Some("http://own:8080"));
        assert_eq!(
            config.https_proxy.as_deref(),
            Some("http://user:pw@proxy.example:3128")
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains(":pw@"), "a proxy password leaked: {debug}");
        assert!(!debug.contains(KEY), "the key leaked into Debug: {debug}");
        assert!(debug.contains("Secret(<redacted>)"), "{debug}");
    }

    #[test]
    fn a_key_that_cannot_be_a_header_is_refused_without_echoing_it() {
        let error = parse("[urlscanio]\nurlscanio_api_key=abc\u{7f}def\n").unwrap_err();
        assert_eq!(
            error,
            "test.config: [urlscanio] urlscanio_api_key contains characters that cannot go in an HTTP header"
        );
    }
}
