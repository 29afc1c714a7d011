//! Installs the tracing subscriber: human-readable or JSON, to stderr and, when a log
//! directory is configured, to `app.log` there.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `RUST_LOG` wins over `loglevel` from `app.config`, which wins over `info`.
pub fn init(format: LogFormat, loglevel: Option<&str>, logdir: Option<&Path>, logfile: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(loglevel.unwrap_or("info").to_lowercase()))
        .unwrap_or_else(|_| EnvFilter::new("info"));
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let result = match (format, file) {
        (LogFormat::Text, None) => builder.with_writer(std::io::stderr).try_init(),
        (LogFormat::Json, None) => builder.json().with_writer(std::io::stderr).try_init(),
        (LogFormat::Text, Some(file)) => builder
            .with_writer(std::io::stderr.and(Mutex::new(file)))
            .try_init(),
        (LogFormat::Json, Some(file)) => builder
            .json()
            .with_writer(std::io::stderr.and(Mutex::new(file)))
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
