//! `app.config`: found where resilient-circuits looks, read through figment, `$NAME`
//! secrets substituted, and every error naming the file, section and key.
//!
//! STUB: the public surface is fixed; the bodies are being written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole `app.config`, every section with its keys lower-cased, values substituted.
#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    origin: String,
    sections: BTreeMap<String, Section>,
}

/// One `[section]` of `app.config`.
#[derive(Clone, PartialEq)]
pub struct Section {
    origin: String,
    name: String,
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for Section {
    // Values may be secrets: only the keys are shown.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Section")
            .field("name", &self.name)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A config problem, naming the file, the section and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no app.config found; looked in: {}", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound { searched: Vec<PathBuf> },
    #[error("{origin}: cannot read: {message}")]
    Read { origin: String, message: String },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: the section [{section}] is missing")]
    MissingSection { origin: String, section: String },
    #[error("{origin}: [{section}] {key} {problem}")]
    Invalid {
        origin: String,
        section: String,
        key: String,
        problem: String,
    },
}

impl AppConfig {
    /// Finds `app.config`: `explicit`, then `$APP_CONFIG_FILE`, then `./app.config`, then
    /// `~/.resilient/app.config`.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
        let _ = explicit;
        todo!()
    }

    pub fn load(explicit: Option<&Path>) -> Result<AppConfig, ConfigError> {
        let _ = explicit;
        todo!()
    }

    /// Parses INI text; `origin` names it in errors. Environment overrides and `$NAME`
    /// substitution are applied.
    pub fn parse(text: &str, origin: &str) -> Result<AppConfig, ConfigError> {
        let _ = (text, origin);
        todo!()
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.get(name)
    }

    pub fn require_section(&self, name: &str) -> Result<&Section, ConfigError> {
        self.section(name)
            .ok_or_else(|| ConfigError::MissingSection {
                origin: self.origin.clone(),
                section: name.to_string(),
            })
    }

    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }
}

impl Section {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key`, trimmed; an empty value counts as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        let _ = key;
        todo!()
    }

    /// A required value that must not still be `placeholder` (the template's text).
    pub fn required(&self, key: &str, placeholder: Option<&str>) -> Result<&str, ConfigError> {
        let _ = (key, placeholder);
        todo!()
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let _ = (key, default);
        todo!()
    }

    /// A whole number within `range`, or `default` when absent.
    pub fn u64_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        let _ = (key, range, default);
        todo!()
    }

    /// An error about `key` in this section.
    pub fn invalid(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            section: self.name.clone(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }
}
