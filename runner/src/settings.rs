//! The validated `[resilient]` section: how to reach SOAR's REST API and its broker, and
//! how the runner behaves. Defaults follow resilient-circuits (soar_protocol §1.2).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use soar_core::config::{AppConfig, ConfigError, Section};
use soar_core::secret::Secret;

/// How the runner proves who it is to SOAR.
#[derive(Debug, Clone)]
pub enum Credentials {
    ApiKey {
        id: String,
        secret: Secret,
    },
    /// The legacy fallback; resilient-circuits warns about it too.
    Password {
        email: String,
        password: Secret,
    },
}

/// How a server certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    System,
    CaFile(PathBuf),
    Off,
}

/// `[resilient]`, validated.
#[derive(Debug, Clone)]
pub struct ResilientSettings {
    pub host: String,
    pub port: u16,
    pub resource_prefix: String,
    pub org: String,
    pub credentials: Credentials,
    pub rest_verify: Verify,
    /// May hold the proxy password.
    pub proxy: Option<Secret>,
    pub rest_timeout: Duration,
    pub request_max_retries: u32,
    pub stomp_host: String,
    pub stomp_port: u16,
    /// `false` allows a plain local broker, for tests and the demo.
    pub stomp_tls: bool,
    pub stomp_verify: Verify,
    pub stomp_timeout: Duration,
    /// The heart-beat interval asked of the broker; the connection counts as dead after
    /// twice this without a byte.
    pub stomp_heartbeat: Duration,
    pub num_workers: usize,
    pub prefetch: usize,
    /// After this many messages taken on one broker connection, a fresh connection replaces
    /// it (the old one finishes its calls first); 0 never. ActiveMQ keeps every message a
    /// connection ACKed in a transaction until that connection closes.
    pub max_calls_per_connection: u64,
    pub shutdown_timeout: Duration,
    pub max_message_size: usize,
    pub max_result_size: usize,
    /// How many answered messages are remembered (for an hour) so that a redelivery is
    /// never run twice.
    pub message_record_size: usize,
    pub selftest_timeout: Duration,
    /// Where the operator's HTTP listener (metrics, health, status) listens; off when `None`.
    pub metrics_listen: Option<SocketAddr>,
    pub loglevel: Option<String>,
    pub logdir: Option<PathBuf>,
    pub logfile: String,
}

const MIB: u64 = 1024 * 1024;

impl ResilientSettings {
    pub fn from_app_config(config: &AppConfig) -> Result<ResilientSettings, ConfigError> {
        let section = config.require_section("resilient")?;
        let host = section
            .required("host", Some("localhost_or_ip_of_soar"))?
            .to_string();
        let credentials = credentials(section)?;
        let rest_verify = verify(section, "cafile", Verify::System)?;
        let stomp_verify = match section.get("stomp_cafile") {
            Some(_) => verify(section, "stomp_cafile", Verify::System)?,
            None => rest_verify.clone(),
        };
        let num_workers = section.u64_in("num_workers", 1..=2000, 25)? as usize;
        let prefetch =
            section.u64_in("stomp_prefetch_limit", 1..=2000, num_workers as u64)? as usize;
        let app_host = std::env::var_os("APP_HOST_CONTAINER").is_some();
        let logdir = section
            .get("logdir")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("APP_LOG_DIR").map(PathBuf::from))
            .or_else(|| app_host.then(|| PathBuf::from("/var/log/rescircuits")));
        Ok(ResilientSettings {
            port: port(section, "port", 443)?,
            resource_prefix: section
                .get("resource_prefix")
                .map(|prefix| format!("/{}", prefix.trim_matches('/')))
                .unwrap_or_default(),
            org: section
                .required("org", Some("name_of_your_org"))?
                .to_string(),
            credentials,
            rest_verify,
            proxy: proxy(section)?,
            rest_timeout: seconds(section, "rest_timeout", 1..=3600, 30)?,
            request_max_retries: section.u64_in("request_max_retries", 0..=100, 5)? as u32,
            stomp_host: section.get("stomp_host").unwrap_or(&host).to_string(),
            stomp_port: port(section, "stomp_port", 65001)?,
            stomp_tls: section.bool_or("stomp_tls", true)?,
            stomp_verify,
            stomp_timeout: seconds(section, "stomp_timeout", 1..=3600, 60)?,
            stomp_heartbeat: Duration::from_millis(section.u64_in(
                "stomp_heartbeat_ms",
                1000..=600_000,
                15_000,
            )?),
            num_workers,
            prefetch,
            max_calls_per_connection: section.u64_in(
                "stomp_max_calls_per_connection",
                0..=1_000_000_000,
                5_000,
            )?,
            shutdown_timeout: seconds(section, "shutdown_timeout", 0..=3600, 30)?,
            max_message_size: (section.u64_in("max_message_size_mb", 1..=1024, 10)? * MIB) as usize,
            max_result_size: (section.u64_in("max_result_size_mb", 1..=1024, 10)? * MIB) as usize,
            message_record_size: section.u64_in("message_record_size", 100..=1_000_000, 100_000)?
                as usize,
            selftest_timeout: seconds(section, "selftest_timeout", 1..=600, 10)?,
            metrics_listen: metrics_listen(section)?,
            loglevel: section.get("loglevel").map(str::to_string),
            logdir,
            logfile: section.get("logfile").unwrap_or("app.log").to_string(),
            host,
        })
    }

    /// `https://host:port/prefix`, without a trailing slash.
    pub fn rest_base_url(&self) -> String {
        format!(
            "https://{}:{}{}",
            self.host, self.port, self.resource_prefix
        )
    }

    /// The STOMP login and passcode: the API key, or the legacy email and password.
    pub fn stomp_login(&self) -> (&str, &str) {
        match &self.credentials {
            Credentials::ApiKey { id, secret } => (id, secret.expose()),
            Credentials::Password { email, password } => (email, password.expose()),
        }
    }
}

fn credentials(section: &Section) -> Result<Credentials, ConfigError> {
    match (section.get("api_key_id"), section.get("api_key_secret")) {
        (Some(id), Some(secret)) => {
            if section.get("email").is_some() {
                tracing::warn!("[resilient] has both an API key and an email; the API key is used");
            }
            Ok(Credentials::ApiKey {
                id: id.to_string(),
                secret: Secret::new(secret),
            })
        }
        (Some(_), None) => Err(section.invalid("api_key_secret", "is missing (api_key_id is set)")),
        (None, Some(_)) => Err(section.invalid("api_key_id", "is missing (api_key_secret is set)")),
        (None, None) => match (section.get("email"), section.get("password")) {
            (Some(email), Some(password)) => {
                tracing::warn!("[resilient] uses email and password; SOAR recommends an API key");
                Ok(Credentials::Password {
                    email: email.to_string(),
                    password: Secret::new(password),
                })
            }
            (Some(_), None) => Err(section.invalid("password", "is missing (email is set)")),
            _ => Err(section.invalid(
                "api_key_id",
                "is missing: set api_key_id and api_key_secret (or the legacy email and password)",
            )),
        },
    }
}

fn verify(section: &Section, key: &str, default: Verify) -> Result<Verify, ConfigError> {
    let Some(value) = section.get(key) else {
        return Ok(default);
    };
    match value.to_ascii_lowercase().as_str() {
        "false" | "no" | "off" | "0" => Ok(Verify::Off),
        "true" | "yes" | "on" | "1" => Ok(Verify::System),
        _ => {
            let path = PathBuf::from(value);
            if !path.is_file() {
                return Err(section.invalid(key, format!("names '{value}', which is not a file")));
            }
            Ok(Verify::CaFile(path))
        }
    }
}

fn proxy(section: &Section) -> Result<Option<Secret>, ConfigError> {
    let Some(host) = section.get("proxy_host") else {
        return Ok(None);
    };
    let port = section.u64_in("proxy_port", 1..=65535, 3128)?;
    let auth = match (section.get("proxy_user"), section.get("proxy_password")) {
        (Some(user), Some(password)) => format!("{user}:{password}@"),
        (Some(user), None) => format!("{user}@"),
        _ => String::new(),
    };
    let host = host
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    Ok(Some(Secret::new(format!("http://{auth}{host}:{port}"))))
}

/// `[resilient] metrics_listen`: a port alone listens on loopback (127.0.0.1); an address
/// with a port (`0.0.0.0:9102`, `[::1]:9102`, `localhost:9102`) listens there.
pub fn metrics_listen(section: &Section) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(value) = section.get("metrics_listen") else {
        return Ok(None);
    };
    let value = value.trim();
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let address = if let Ok(port) = value.parse::<u16>() {
        Some(SocketAddr::new(loopback, port))
    } else if let Ok(address) = value.parse::<SocketAddr>() {
        Some(address)
    } else {
        value
            .strip_prefix("localhost:")
            .and_then(|port| port.parse::<u16>().ok())
            .map(|port| SocketAddr::new(loopback, port))
    };
    match address {
        Some(address) if address.port() != 0 => Ok(Some(address)),
        _ => Err(section.invalid(
            "metrics_listen",
            format!(
                "is '{value}'; expected a port (9102, on loopback) or an IP address with a port (0.0.0.0:9102)"
            ),
        )),
    }
}

fn port(section: &Section, key: &str, default: u16) -> Result<u16, ConfigError> {
    Ok(section.u64_in(key, 1..=65535, u64::from(default))? as u16)
}

fn seconds(
    section: &Section,
    key: &str,
    range: std::ops::RangeInclusive<u64>,
    default: u64,
) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(section.u64_in(key, range, default)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Result<ResilientSettings, ConfigError> {
        let text = format!(
            "[resilient]\nhost=soar.example.com\norg=Test Org\napi_key_id=id1\napi_key_secret=s3cret-value\n{extra}"
        );
        ResilientSettings::from_app_config(&AppConfig::parse(&text, "app.config")?)
    }

    #[test]
    fn defaults_follow_resilient_circuits() {
        let settings = settings("").unwrap();
        assert_eq!(settings.port, 443);
        assert_eq!(settings.stomp_host, "soar.example.com");
        assert_eq!(settings.stomp_port, 65001);
        assert!(settings.stomp_tls);
        assert_eq!(settings.num_workers, 25);
        assert_eq!(settings.prefetch, 25);
        assert_eq!(settings.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(settings.rest_verify, Verify::System);
        assert_eq!(settings.rest_base_url(), "https://soar.example.com:443");
        assert_eq!(settings.max_message_size, 10 * 1024 * 1024);
        assert_eq!(settings.message_record_size, 100_000);
        assert_eq!(settings.max_calls_per_connection, 5_000);
    }

    #[test]
    fn connections_are_replaced_after_the_configured_calls_or_never() {
        assert_eq!(
            settings("stomp_max_calls_per_connection=0")
                .unwrap()
                .max_calls_per_connection,
            0
        );
        let error = settings("stomp_max_calls_per_connection=many").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("[resilient] stomp_max_calls_per_connection"),
            "{error}"
        );
    }

    #[test]
    fn num_workers_is_checked_against_the_original_range() {
        let error = settings("num_workers=2001").unwrap_err();
        assert!(
            error.to_string().contains("[resilient] num_workers"),
            "{error}"
        );
        assert_eq!(settings("num_workers=5").unwrap().prefetch, 5);
    }

    #[test]
    fn cafile_false_turns_verification_off_and_stomp_follows_it() {
        let settings = settings("cafile=false").unwrap();
        assert_eq!(settings.rest_verify, Verify::Off);
        assert_eq!(settings.stomp_verify, Verify::Off);
    }

    #[test]
    fn a_cafile_that_does_not_exist_is_named() {
        let error = settings("cafile=/nonexistent/ca.pem").unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn missing_secret_is_an_error_that_does_not_show_the_id() {
        let text = "[resilient]\nhost=h\norg=o\napi_key_id=id1\n";
        let error =
            ResilientSettings::from_app_config(&AppConfig::parse(text, "app.config").unwrap())
                .unwrap_err();
        assert!(
            error.to_string().contains("api_key_secret is missing"),
            "{error}"
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let settings = settings("").unwrap();
        assert!(!format!("{settings:?}").contains("s3cret-value"));
    }

    #[test]
    fn metrics_listen_is_off_by_default_and_a_bare_port_means_loopback() {
        assert_eq!(settings("").unwrap().metrics_listen, None);
        let listen =
            |value: &str| settings(&format!("metrics_listen={value}")).map(|s| s.metrics_listen);
        assert_eq!(
            listen("9102").unwrap(),
            Some("127.0.0.1:9102".parse().unwrap())
        );
        assert_eq!(
            listen("0.0.0.0:9102").unwrap(),
            Some("0.0.0.0:9102".parse().unwrap())
        );
        assert_eq!(
            listen("[::1]:9102").unwrap(),
            Some("[::1]:9102".parse().unwrap())
        );
        assert_eq!(
            listen("localhost:9102").unwrap(),
            Some("127.0.0.1:9102".parse().unwrap())
        );
        for bad in ["0", "70000", "metrics.example.com:9102", "127.0.0.1"] {
            let error = listen(bad).unwrap_err().to_string();
            assert!(
                error.contains("[resilient] metrics_listen"),
                "{bad}: {error}"
            );
            assert!(error.contains(bad), "{bad}: {error}");
        }
    }

    #[test]
    fn resource_prefix_is_normalised() {
        let settings = settings("resource_prefix=api/respond/").unwrap();
        assert_eq!(
            settings.rest_base_url(),
            "https://soar.example.com:443/api/respond"
        );
    }
}
