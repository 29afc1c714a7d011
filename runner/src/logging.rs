//! Installs the tracing subscriber: human-readable or JSON, to stderr and, when a log
//! directory is configured, to `app.log` there. The level can change later (a reloaded
//! `app.config`) through [`LogControl`].

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A level by the name Python's logging gives it, as resilient-circuits' `--loglevel` and
/// `[resilient] loglevel` take it; any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLevel {
    directive: &'static str,
}

/// Level names and what each shows. `NOTSET` on Python's root logger shows everything;
/// `TRACE`, finer than `DEBUG`, is this runner's own (resilient-circuits has no such level).
const LEVEL_NAMES: &[(&str, &str)] = &[
    ("CRITICAL", "error"),
    ("FATAL", "error"),
    ("ERROR", "error"),
    ("WARNING", "warn"),
    ("WARN", "warn"),
    ("INFO", "info"),
    ("DEBUG", "debug"),
    ("NOTSET", "trace"),
    ("TRACE", "trace"),
];

impl LogLevel {
    /// Reads a level name; the error lists the names taken.
    pub fn parse(name: &str) -> Result<LogLevel, String> {
        let wanted = name.trim().to_ascii_uppercase();
        LEVEL_NAMES
            .iter()
            .find(|(level, _)| *level == wanted)
            .map(|(_, directive)| LogLevel { directive })
            .ok_or_else(|| {
                let names: Vec<&str> = LEVEL_NAMES.iter().map(|(level, _)| *level).collect();
                format!(
                    "'{name}' is no log level; use one of {} (any case)",
                    names.join(", ")
                )
            })
    }

    /// The `tracing` filter directive: `debug`.
    pub fn directive(self) -> &'static str {
        self.directive
    }
}

/// Changes the level of the installed subscriber.
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    source: LevelSource,
}

/// What set the level at start-up: a `--loglevel` or `RUST_LOG` keeps winning over
/// `[resilient] loglevel`, also in a reloaded config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LevelSource {
    Flag,
    Environment,
    Config,
}

impl LogControl {
    /// Applies `[resilient] loglevel` from a reloaded config, unless `--loglevel` or
    /// `RUST_LOG` set the level.
    pub fn config_changed(&self, configured: Option<&str>) {
        let overridden_by = match self.source {
            LevelSource::Flag => Some("--loglevel"),
            LevelSource::Environment => Some("RUST_LOG"),
            LevelSource::Config => None,
        };
        if let Some(overridden_by) = overridden_by {
            tracing::info!(
                "{overridden_by} sets the log level, so [resilient] loglevel is not applied"
            );
            return;
        }
        let (filter, problem) = config_filter(configured);
        let description = filter.to_string();
        match self.handle.reload(filter) {
            Ok(()) => tracing::info!(level = %description, "log level applied"),
            Err(error) => tracing::warn!(
                %error,
                "cannot change the log level; it applies at the next restart"
            ),
        }
        if let Some(problem) = problem {
            tracing::warn!("{problem}");
        }
    }
}

/// Installs the subscriber. The level: `flag` (`--loglevel`), else `RUST_LOG`, else
/// `configured` (`[resilient] loglevel`: a level name, or `tracing` directives when it holds
/// a `=`), else `info`.
pub fn init(
    format: LogFormat,
    flag: Option<LogLevel>,
    configured: Option<&str>,
    logdir: Option<&Path>,
    logfile: &str,
) -> LogControl {
    let mut problem = None;
    let (filter, source) = match (flag, EnvFilter::try_from_default_env()) {
        (Some(level), _) => (EnvFilter::new(level.directive()), LevelSource::Flag),
        (None, Ok(filter)) => (filter, LevelSource::Environment),
        (None, Err(_)) => {
            let (filter, complaint) = config_filter(configured);
            problem = complaint;
            (filter, LevelSource::Config)
        }
    };
    let (filter, handle) = reload::Layer::new(filter);
    let file = logdir.and_then(|dir| {
        std::fs::create_dir_all(dir).ok()?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(logfile))
            .ok()
    });
    // Colours only for a person at a terminal: a log file, the journal or a pipe would keep
    // the escape codes as text. The file shares the formatter with stderr, so it rules.
    let ansi =
        file.is_none() && std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let layer = tracing_subscriber::fmt::layer().with_ansi(ansi);
    let output = match (format, file) {
        (LogFormat::Text, None) => layer.with_writer(std::io::stderr).boxed(),
        (LogFormat::Json, None) => layer.json().with_writer(std::io::stderr).boxed(),
        (LogFormat::Text, Some(file)) => layer
            .with_writer(std::io::stderr.and(Mutex::new(file)))
            .boxed(),
        (LogFormat::Json, Some(file)) => layer
            .json()
            .with_writer(std::io::stderr.and(Mutex::new(file)))
            .boxed(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init();
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
    LogControl { handle, source }
}

/// The filter `[resilient] loglevel` asks for, and a complaint when it names no level
/// (then `info`, as resilient-circuits does).
fn config_filter(configured: Option<&str>) -> (EnvFilter, Option<String>) {
    let Some(value) = configured.map(str::trim).filter(|value| !value.is_empty()) else {
        return (EnvFilter::new("info"), None);
    };
    if let Ok(level) = LogLevel::parse(value) {
        return (EnvFilter::new(level.directive()), None);
    }
    if value.contains('=')
        && let Ok(filter) = EnvFilter::try_new(value.to_lowercase())
    {
        return (filter, None);
    }
    let complaint = LogLevel::parse(value)
        .err()
        .map(|problem| format!("[resilient] loglevel: {problem}; logging at INFO"));
    (EnvFilter::new("info"), complaint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_are_pythons_in_any_case() {
        let directive = |name: &str| LogLevel::parse(name).map(LogLevel::directive);
        assert_eq!(directive("DEBUG"), Ok("debug"));
        assert_eq!(directive("debug"), Ok("debug"));
        assert_eq!(directive("Warning"), Ok("warn"));
        assert_eq!(directive("WARN"), Ok("warn"));
        assert_eq!(directive("critical"), Ok("error"));
        assert_eq!(directive("NOTSET"), Ok("trace"));
        assert_eq!(directive("trace"), Ok("trace"));
        let error = LogLevel::parse("LOUD").expect_err("LOUD is no level");
        assert!(error.contains("'LOUD' is no log level"), "{error}");
        assert!(
            error.contains("DEBUG"),
            "the error lists the names: {error}"
        );
    }

    #[test]
    fn a_config_level_that_names_no_level_logs_at_info_with_a_complaint() {
        let (filter, problem) = config_filter(Some("WARNING"));
        assert_eq!(filter.to_string(), "warn");
        assert_eq!(problem, None);
        let (filter, problem) = config_filter(Some("loud"));
        assert_eq!(filter.to_string(), "info");
        assert!(problem.is_some_and(|problem| problem.contains("'loud' is no log level")));
        let (filter, problem) = config_filter(Some("info,fn_misp=debug"));
        assert_eq!(filter.to_string(), "fn_misp=debug,info");
        assert_eq!(problem, None);
        assert_eq!(config_filter(None).0.to_string(), "info");
    }
}
