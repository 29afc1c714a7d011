//! `app.config`: found where resilient-circuits looks, read through figment, `$NAME`
//! secrets substituted, and every error naming the file, section and key.
//!
//! The file is INI as Python's `configparser` reads it with `interpolation=None`: `[section]`
//! headers, `key = value` or `key: value`, whole-line `#`/`;` comments (a `#` or `;` inside a
//! value is kept), indented continuation lines, a UTF-8 BOM skipped, and the keys of
//! `[DEFAULT]` inherited by every section. Keys are lower-cased like Python does; section
//! names are lower-cased as well so that environment overrides can name them.
//!
//! An environment variable `SOAR__<SECTION>__<KEY>` (any case) replaces or adds a key; its
//! value is taken literally. A value from the file that is `$NAME`, or that contains
//! `${NAME}`, is resilient-circuits' protected secret `NAME`: in App Host the decrypted file
//! `/etc/secrets/NAME` ([`crate::protected`]), else (or when that file is missing or cannot
//! be decrypted) the environment variable `NAME`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use configparser::ini::{Ini, IniDefault};
use figment::providers::Env;
use figment::value::magic::Tagged;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use crate::protected::ProtectedSecrets;

/// The prefix of the environment variables that override keys: `SOAR__<SECTION>__<KEY>`.
pub const ENV_OVERRIDE_PREFIX: &str = "SOAR__";

/// The environment variable that names the config file, as in resilient-circuits.
pub const APP_CONFIG_FILE_VAR: &str = "APP_CONFIG_FILE";

/// The whole `app.config`, every section with its keys lower-cased, values substituted.
#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    origin: String,
    path: Option<PathBuf>,
    sections: BTreeMap<String, Section>,
    notices: Vec<String>,
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

/// The warning for `path`, a file that may hold secrets, when its group or others can read it.
///
/// Unix only; elsewhere, and when the file cannot be inspected, it says nothing.
pub fn warn_if_world_readable(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;

        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        if mode & 0o044 == 0 {
            return None;
        }
        Some(format!(
            "{}: readable by other users (mode {mode:03o}) although it may hold secrets; consider chmod 600",
            path.display()
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl AppConfig {
    /// Finds `app.config`: `explicit`, then `$APP_CONFIG_FILE`, then `./app.config`, then
    /// `~/.resilient/app.config`.
    ///
    /// A file named by `explicit` or `$APP_CONFIG_FILE` must exist: falling through to another
    /// file would silently run with the wrong settings.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
        if let Some(path) = explicit {
            return existing_file(path, "given with --config");
        }
        // An empty value counts as unset, as in resilient's `os.environ.get(...)` test.
        if let Some(path) = std::env::var_os(APP_CONFIG_FILE_VAR).filter(|value| !value.is_empty())
        {
            return existing_file(Path::new(&path), "named by $APP_CONFIG_FILE");
        }
        let mut searched = Vec::new();
        searched.push(match std::env::current_dir() {
            Ok(directory) => directory.join("app.config"),
            Err(_) => PathBuf::from("app.config"),
        });
        if let Some(home) = std::env::home_dir() {
            searched.push(home.join(".resilient").join("app.config"));
        }
        match searched.iter().find(|candidate| candidate.is_file()) {
            Some(found) => Ok(found.clone()),
            None => Err(ConfigError::NotFound { searched }),
        }
    }

    /// Locates, reads and parses `app.config`, and warns if other users can read it.
    pub fn load(explicit: Option<&Path>) -> Result<AppConfig, ConfigError> {
        Self::load_with(explicit, &ProtectedSecrets::from_process())
    }

    /// [`AppConfig::load`] with the protected secrets looked up in `secrets`.
    pub fn load_with(
        explicit: Option<&Path>,
        secrets: &ProtectedSecrets,
    ) -> Result<AppConfig, ConfigError> {
        let path = Self::locate(explicit)?;
        let origin = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|error| ConfigError::Read {
            origin: origin.clone(),
            message: describe_io_error(&error),
        })?;
        let text = String::from_utf8(bytes).map_err(|error| ConfigError::Read {
            origin: origin.clone(),
            message: format!(
                "not valid UTF-8 (after byte {})",
                error.utf8_error().valid_up_to()
            ),
        })?;
        let mut config = Self::parse_with(&text, &origin, secrets)?;
        // In App Host the platform writes and mounts the file; its mode is not the user's.
        if !crate::protected::in_app_host() {
            config.notices.extend(warn_if_world_readable(&path));
        }
        config.path = Some(path);
        Ok(config)
    }

    /// Parses INI text; `origin` names it in errors. Environment overrides and `$NAME`
    /// substitution are applied, with App Host's protected secrets when in App Host.
    pub fn parse(text: &str, origin: &str) -> Result<AppConfig, ConfigError> {
        Self::parse_with(text, origin, &ProtectedSecrets::from_process())
    }

    /// [`AppConfig::parse`] with the protected secrets looked up in `secrets`.
    pub fn parse_with(
        text: &str,
        origin: &str,
        secrets: &ProtectedSecrets,
    ) -> Result<AppConfig, ConfigError> {
        let mut notices = Vec::new();
        let from_file = parse_ini(text, origin)?;
        let overrides = EnvOverrides::from_process(origin)?;
        let figment = Figment::from(IniProvider {
            sections: &from_file,
        })
        .merge(overrides);
        let merged: BTreeMap<String, BTreeMap<String, Tagged<String>>> =
            figment.extract().map_err(|error| ConfigError::Parse {
                origin: origin.to_string(),
                // figment's own message can quote a value, which may be a secret.
                message: format!(
                    "cannot merge the environment overrides at '{}'",
                    error.path.join(".")
                ),
            })?;

        let mut sections = BTreeMap::new();
        for (name, keys) in merged {
            let mut values = BTreeMap::new();
            for (key, tagged) in keys {
                // Only values written in the file are indirections; an override already came
                // from the environment, which also makes it the way to give a literal `$…`.
                let written_in_file = figment
                    .get_metadata(tagged.tag())
                    .is_some_and(|metadata| metadata.name == INI_PROVIDER_NAME);
                let value = tagged.into_inner();
                let value = match written_in_file {
                    true => {
                        let mut lookup = Lookup {
                            secrets,
                            notices: &mut notices,
                            place: format!("{origin}: [{name}] {key}"),
                        };
                        substitute_secrets(&value, &mut lookup).map_err(|problem| {
                            ConfigError::Invalid {
                                origin: origin.to_string(),
                                section: name.clone(),
                                key: key.clone(),
                                problem,
                            }
                        })?
                    }
                    false => value,
                };
                values.insert(key, value);
            }
            let section = Section {
                origin: origin.to_string(),
                name: name.clone(),
                values,
            };
            sections.insert(name, section);
        }
        Ok(AppConfig {
            origin: origin.to_string(),
            path: None,
            sections,
            notices,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Warnings found while loading, for the caller to log once logging is set up: a file
    /// others can read, a protected secret that fell back to the environment.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The file this was loaded from; `None` when it was parsed from text.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
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

    /// Every key of the section (lower-cased), in order, empty values included.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The value of `key`, trimmed; an empty value counts as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        let value = match self.values.get(key) {
            Some(value) => value,
            None => self.values.get(&key.to_lowercase())?,
        };
        let value = value.trim();
        (!value.is_empty()).then_some(value)
    }

    /// A required value that must not still be `placeholder` (the template's text).
    pub fn required(&self, key: &str, placeholder: Option<&str>) -> Result<&str, ConfigError> {
        let Some(value) = self.get(key) else {
            return Err(self.invalid(key, "is missing"));
        };
        if let Some(placeholder) = placeholder.map(str::trim)
            && value == placeholder
        {
            return Err(self.invalid(key, format!("is still the placeholder '{placeholder}'")));
        }
        Ok(value)
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        // The words Python's `ConfigParser.getboolean` accepts.
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.invalid(
                key,
                format!("must be true or false (or yes/no, on/off, 1/0), not '{value}'"),
            )),
        }
    }

    /// A whole number within `range`, or `default` when absent.
    pub fn u64_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        let (low, high) = (range.start(), range.end());
        let number: u64 = value.parse().map_err(|_| {
            self.invalid(
                key,
                format!("must be a whole number from {low} to {high}, not '{value}'"),
            )
        })?;
        if !range.contains(&number) {
            return Err(self.invalid(key, format!("must be from {low} to {high}, not {number}")));
        }
        Ok(number)
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

/// The figment metadata name of values read from the file.
const INI_PROVIDER_NAME: &str = "app.config file";

/// Where configparser puts keys that come before any header; Python refuses those, and no
/// header can spell this name.
const NO_SECTION: &str = "\u{0}no section";

/// Python's name for the section whose keys every other section inherits.
const DEFAULT_SECTION: &str = "DEFAULT";

type RawSections = BTreeMap<String, BTreeMap<String, String>>;

/// Values read from the file, already parsed, offered to figment.
struct IniProvider<'a> {
    sections: &'a RawSections,
}

impl Provider for IniProvider<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named(INI_PROVIDER_NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict: Dict = self
            .sections
            .iter()
            .map(|(name, values)| (name.clone(), Value::from(values.clone())))
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}

/// `SOAR__<SECTION>__<KEY>` variables, found by figment's `Env` and kept as strings.
///
/// `Env` itself would parse `0123` as a number and `[a]` as an array; a config value must
/// stay exactly the text that was given.
struct EnvOverrides {
    env: Env,
    values: RawSections,
}

impl EnvOverrides {
    fn from_process(origin: &str) -> Result<EnvOverrides, ConfigError> {
        let env = Env::prefixed(ENV_OVERRIDE_PREFIX).split("__");
        let mut values = RawSections::new();
        for (path, value) in env.iter() {
            let mut parts = path.as_str().split('.');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(section), Some(key), None) => {
                    values
                        .entry(section.to_string())
                        .or_default()
                        .insert(key.to_string(), value);
                }
                _ => {
                    let variable = format!(
                        "{ENV_OVERRIDE_PREFIX}{}",
                        path.as_str().replace('.', "__").to_ascii_uppercase()
                    );
                    return Err(ConfigError::Parse {
                        origin: origin.to_string(),
                        message: format!(
                            "the environment variable {variable} is not of the form {ENV_OVERRIDE_PREFIX}<SECTION>__<KEY>"
                        ),
                    });
                }
            }
        }
        Ok(EnvOverrides { env, values })
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        self.env.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict: Dict = self
            .values
            .iter()
            .map(|(name, values)| (name.clone(), Value::from(values.clone())))
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}

fn existing_file(path: &Path, how: &str) -> Result<PathBuf, ConfigError> {
    let origin = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(path.to_path_buf()),
        Ok(_) => Err(ConfigError::Read {
            origin,
            message: format!("not a file ({how})"),
        }),
        Err(error) => Err(ConfigError::Read {
            origin,
            message: format!("{} ({how})", describe_io_error(&error)),
        }),
    }
}

fn describe_io_error(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "does not exist".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => lower_first(&error.to_string()),
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Parses the file the way Python's `ConfigParser(interpolation=None)` does.
fn parse_ini(text: &str, origin: &str) -> Result<RawSections, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut options = IniDefault::default();
    options.default_section = NO_SECTION.to_string();
    options.comment_symbols = vec!['#', ';'];
    options.delimiters = vec!['=', ':'];
    // Section names are compared in `DEFAULT` detection before being lower-cased here.
    options.case_sensitive = true;
    options.multiline = true;
    // Python keeps `#` and `;` inside values; passwords contain them.
    options.enable_inline_comments = false;
    let mut ini = Ini::new_from_defaults(options);
    let parsed = ini
        .read(text.to_string())
        .map_err(|message| ConfigError::Parse {
            origin: origin.to_string(),
            message: lower_first(&message),
        })?;

    let mut defaults = BTreeMap::new();
    let mut sections = RawSections::new();
    for (name, keys) in parsed {
        if name == NO_SECTION {
            let mut keys: Vec<_> = keys.into_keys().collect();
            keys.sort();
            return Err(ConfigError::Parse {
                origin: origin.to_string(),
                message: format!("keys before the first [section]: {}", keys.join(", ")),
            });
        }
        let section = name.to_lowercase();
        let mut values = BTreeMap::new();
        for (key, value) in keys {
            let key = key.to_lowercase();
            let invalid = |problem: &str| ConfigError::Invalid {
                origin: origin.to_string(),
                section: section.clone(),
                key: key.clone(),
                problem: problem.to_string(),
            };
            let Some(value) = value else {
                return Err(invalid("has no value (expected 'key = value')"));
            };
            // configparser joins continuation lines with the platform's line ending.
            let value = value.replace("\r\n", "\n");
            if values.insert(key.clone(), value).is_some() {
                return Err(invalid("is given twice (keys are not case-sensitive)"));
            }
        }
        if name == DEFAULT_SECTION {
            defaults = values;
            continue;
        }
        if sections.insert(section.clone(), values).is_some() {
            return Err(ConfigError::Parse {
                origin: origin.to_string(),
                message: format!(
                    "the section [{section}] is given twice (section names are not case-sensitive)"
                ),
            });
        }
    }
    for values in sections.values_mut() {
        for (key, value) in &defaults {
            values.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Ok(sections)
}

/// Where `$NAME` values come from while one key is substituted.
struct Lookup<'a> {
    secrets: &'a ProtectedSecrets,
    notices: &'a mut Vec<String>,
    /// `file: [section] key`, for notices.
    place: String,
}

/// Applies resilient's protected-secret rule to a value written in the file: `${NAME}`
/// anywhere, or a whole value `$NAME`, is the protected secret `NAME`. Any other `$` is
/// literal. The error is the problem, to be put after the section and key.
fn substitute_secrets(value: &str, lookup: &mut Lookup<'_>) -> Result<String, String> {
    let trimmed = value.trim();
    // resilient looks `^NAME` and `^{NAME}` up in a PAM plugin (a keyring by default).
    let pam_name = trimmed
        .strip_prefix('^')
        .filter(|name| is_variable_name(name));
    if pam_name.is_some() || value.contains("^{") {
        return Err(
            "uses the PAM secret syntax (^NAME), which is not supported; use $NAME to read an environment variable instead"
                .to_string(),
        );
    }
    if value.contains("${") {
        let mut substituted = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            substituted.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err("has '${' without a closing '}'".to_string());
            };
            substituted.push_str(&protected_secret(&after[..end], lookup)?);
            rest = &after[end + 1..];
        }
        substituted.push_str(rest);
        return Ok(substituted);
    }
    match trimmed.strip_prefix('$') {
        Some(name) if is_variable_name(name) => protected_secret(name, lookup),
        _ => Ok(value.to_string()),
    }
}

/// The protected secret `name`: App Host's file for it when there is one and it decrypts,
/// else the environment variable, as resilient falls back to it.
fn protected_secret(name: &str, lookup: &mut Lookup<'_>) -> Result<String, String> {
    if !is_variable_name(name) {
        return environment_secret(name);
    }
    match lookup.secrets.lookup(name) {
        Some(Ok(value)) => Ok(value),
        Some(Err(problem)) => match environment_secret(name) {
            Ok(value) => {
                lookup.notices.push(format!(
                    "{}: the protected secret {problem}; the environment variable {name} is used instead",
                    lookup.place
                ));
                Ok(value)
            }
            Err(_) => Err(format!(
                "refers to the protected secret {name}, but {problem}, and the environment variable {name} is not set"
            )),
        },
        None => environment_secret(name).map_err(|problem| match lookup.secrets.dir() {
            Some(dir) => format!("{problem}, and {} has no file for it", dir.display()),
            None => problem,
        }),
    }
}

fn environment_secret(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("has an empty '${}'".to_string());
    }
    match std::env::var(name) {
        Ok(value) => Ok(value),
        Err(std::env::VarError::NotPresent) => Err(format!(
            "refers to the environment variable {name}, which is not set"
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "refers to the environment variable {name}, which is not valid UTF-8"
        )),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A proxy URL from `key` in `section`, else in `[integrations]` (resilient-lib's fall-back),
/// checked to parse and not to be a template placeholder; errors name the section that held it.
pub fn proxy_setting(
    section: &Section,
    integrations: Option<&Section>,
    key: &str,
) -> Result<Option<String>, ConfigError> {
    let (owner, value) = match (section.get(key), integrations) {
        (Some(value), _) => (section, value),
        (None, Some(integrations)) => match integrations.get(key) {
            Some(value) => (integrations, value),
            None => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    if value.starts_with('<') && value.ends_with('>') {
        return Err(owner.invalid(key, format!("is still the placeholder '{value}'")));
    }
    reqwest::Proxy::all(value).map_err(|error| {
        owner.invalid(
            key,
            format!(
                "is not a proxy URL ({}): {error}",
                url_without_password(value)
            ),
        )
    })?;
    Ok(Some(value.to_string()))
}

/// The URL with any password replaced, for logs and `Debug`.
pub fn url_without_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use figment::Jail;

    const SAMPLE: &str = include_str!("../../../../tests/fixtures/fn_misp/app.config.sample");

    /// Runs `test` with the environment and working directory restored afterwards; every test
    /// that reads the environment goes through here so that they do not race.
    #[allow(
        clippy::result_large_err,
        reason = "figment::Jail fixes the closure's error type"
    )]
    fn jailed(test: impl FnOnce(&mut Jail)) {
        Jail::expect_with(|jail| {
            test(jail);
            Ok(())
        });
    }

    /// Runs `read` while no other test of this crate can change the environment: parsing a
    /// config reads every `SOAR__` variable, and the override tests set some.
    pub(crate) fn environment_held<T>(read: impl FnOnce() -> T) -> T {
        let mut result = None;
        jailed(|_| result = Some(read()));
        result.expect("the closure ran")
    }

    fn parsed(text: &str) -> AppConfig {
        match AppConfig::parse(text, "test.config") {
            Ok(config) => config,
            Err(error) => panic!("expected the text to parse, got: {error}"),
        }
    }

    fn parse_error(text: &str) -> String {
        match AppConfig::parse(text, "test.config") {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn value(config: &AppConfig, section: &str, key: &str) -> Option<String> {
        config
            .section(section)
            .and_then(|section| section.get(key))
            .map(str::to_string)
    }

    /// A result with the error as its `Display` text, for comparing whole messages.
    fn shown<T>(result: Result<T, ConfigError>) -> Result<T, String> {
        result.map_err(|error| error.to_string())
    }

    fn section(values: &[(&str, &str)]) -> Section {
        Section {
            origin: "test.config".to_string(),
            name: "fn_misp".to_string(),
            values: values
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_fn_misp_sample_parses_unchanged() {
        jailed(|_| {
            let config = parsed(SAMPLE);
            let fn_misp = config.require_section("fn_misp").expect("[fn_misp]");
            assert_eq!(fn_misp.get("misp_url"), Some("http://localhost"));
            assert_eq!(fn_misp.bool_or("verify_cert", false).ok(), Some(true));
            assert_eq!(
                fn_misp.get("mitre_tag"),
                Some("misp-galaxy:mitre-attack-pattern")
            );
            assert_eq!(
                fn_misp.get("http_proxy"),
                None,
                "commented out in the sample"
            );
            let error = fn_misp.required("misp_key", Some("<your key>"));
            assert_eq!(
                error.map_err(|error| error.to_string()),
                Err("test.config: [fn_misp] misp_key is still the placeholder '<your key>'".into())
            );
        });
    }

    #[test]
    fn python_configparser_syntax_is_understood() {
        jailed(|_| {
            let text = "\u{feff}[Resilient]\r\n\
                        Host: soar.example.com\r\n\
                        ; a comment\r\n\
                        # another comment\r\n\
                        port = 443\r\n\
                        password = ab;cd#ef\r\n\
                        url = https://x.example/a?b=c\r\n\
                        list = first\r\n\
                        \x20   second\r\n\
                        \r\n\
                        \x20   third\r\n\
                        empty =\r\n\
                        [integrations]\r\n\
                        timeout=30\r\n";
            let config = parsed(text);
            assert_eq!(
                config.section_names().collect::<Vec<_>>(),
                vec!["integrations", "resilient"]
            );
            assert_eq!(
                value(&config, "resilient", "host").as_deref(),
                Some("soar.example.com")
            );
            assert_eq!(
                value(&config, "resilient", "HOST").as_deref(),
                Some("soar.example.com")
            );
            assert_eq!(value(&config, "resilient", "port").as_deref(), Some("443"));
            assert_eq!(
                value(&config, "resilient", "password").as_deref(),
                Some("ab;cd#ef"),
                "Python keeps inline ; and # in values"
            );
            assert_eq!(
                value(&config, "resilient", "url").as_deref(),
                Some("https://x.example/a?b=c")
            );
            assert_eq!(
                value(&config, "resilient", "list").as_deref(),
                Some("first\nsecond\n\nthird")
            );
            assert_eq!(value(&config, "resilient", "empty"), None);
            assert_eq!(
                value(&config, "integrations", "timeout").as_deref(),
                Some("30")
            );
        });
    }

    #[test]
    fn default_section_keys_are_inherited_but_not_listed() {
        jailed(|_| {
            let config = parsed("[DEFAULT]\ntimeout = 30\nproxy = p\n[a]\ntimeout = 5\n[b]\n");
            assert_eq!(config.section_names().collect::<Vec<_>>(), vec!["a", "b"]);
            assert_eq!(value(&config, "a", "timeout").as_deref(), Some("5"));
            assert_eq!(value(&config, "a", "proxy").as_deref(), Some("p"));
            assert_eq!(value(&config, "b", "timeout").as_deref(), Some("30"));
        });
    }

    #[test]
    fn syntax_errors_name_the_file_and_the_place() {
        jailed(|_| {
            assert_eq!(
                parse_error("host = x\n[resilient]\n"),
                "test.config: keys before the first [section]: host"
            );
            assert_eq!(
                parse_error("[resilient]\nhost\n"),
                "test.config: [resilient] host has no value (expected 'key = value')"
            );
            assert_eq!(
                parse_error("[resilient]\nHost = a\nhost = b\n"),
                "test.config: [resilient] host is given twice (keys are not case-sensitive)"
            );
            assert_eq!(
                parse_error("[A]\nx = 1\n[a]\ny = 2\n"),
                "test.config: the section [a] is given twice (section names are not case-sensitive)"
            );
            let unclosed = parse_error("[resilient\nhost = x\n");
            assert!(
                unclosed.starts_with("test.config: line 1"),
                "expected the line number, got {unclosed}"
            );
        });
    }

    #[test]
    fn environment_variables_override_and_add_keys() {
        jailed(|jail| {
            jail.set_env("SOAR__FN_MISP__MISP_KEY", "from-env");
            jail.set_env("soar__resilient__host", "lower.example");
            jail.set_env("SOAR__URLSCANIO__TIMEOUT", "0030");
            let config = parsed("[fn_misp]\nmisp_key = <your key>\nmisp_url = http://m\n");
            assert_eq!(
                value(&config, "fn_misp", "misp_key").as_deref(),
                Some("from-env")
            );
            assert_eq!(
                value(&config, "fn_misp", "misp_url").as_deref(),
                Some("http://m")
            );
            assert_eq!(
                value(&config, "resilient", "host").as_deref(),
                Some("lower.example"),
                "a lower-case variable name works and adds the section"
            );
            assert_eq!(
                value(&config, "urlscanio", "timeout").as_deref(),
                Some("0030"),
                "values stay text, not numbers"
            );
        });
    }

    #[test]
    fn an_override_without_section_and_key_is_an_error() {
        jailed(|jail| {
            jail.set_env("SOAR__HOST", "x");
            assert_eq!(
                parse_error("[resilient]\n"),
                "test.config: the environment variable SOAR__HOST is not of the form SOAR__<SECTION>__<KEY>"
            );
        });
    }

    #[test]
    fn dollar_values_come_from_the_environment() {
        jailed(|jail| {
            jail.set_env("MISP_KEY_FOR_TEST", "s3cret");
            jail.set_env("TABLE", "events");
            let config = parsed(
                "[fn_misp]\n\
                 plain = $MISP_KEY_FOR_TEST\n\
                 braced = ${MISP_KEY_FOR_TEST}\n\
                 embedded = from ${TABLE} where ${TABLE}\n\
                 trailing = ab$\n\
                 middle = a$b\n\
                 not_a_name = $ecr3t!\n\
                 lone = $\n",
            );
            let get = |key| value(&config, "fn_misp", key);
            assert_eq!(get("plain").as_deref(), Some("s3cret"));
            assert_eq!(get("braced").as_deref(), Some("s3cret"));
            assert_eq!(get("embedded").as_deref(), Some("from events where events"));
            assert_eq!(get("trailing").as_deref(), Some("ab$"));
            assert_eq!(get("middle").as_deref(), Some("a$b"));
            assert_eq!(get("not_a_name").as_deref(), Some("$ecr3t!"));
            assert_eq!(get("lone").as_deref(), Some("$"));
        });
    }

    #[test]
    fn an_unset_dollar_variable_is_an_error_naming_section_key_and_variable() {
        jailed(|_| {
            assert_eq!(
                parse_error("[fn_misp]\nmisp_key = $UNSET_FOR_TEST\n"),
                "test.config: [fn_misp] misp_key refers to the environment variable UNSET_FOR_TEST, which is not set"
            );
            assert_eq!(
                parse_error("[resilient]\npassword = x${UNSET_FOR_TEST}\n"),
                "test.config: [resilient] password refers to the environment variable UNSET_FOR_TEST, which is not set"
            );
            assert_eq!(
                parse_error("[resilient]\npassword = ${UNCLOSED\n"),
                "test.config: [resilient] password has '${' without a closing '}'"
            );
        });
    }

    /// The App Host fixtures: tokens made with jwcrypto, the library resilient uses.
    fn app_host_secrets() -> ProtectedSecrets {
        ProtectedSecrets::at(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/app_host_secrets"),
        )
    }

    #[test]
    fn app_host_secrets_are_decrypted_and_an_unusable_one_falls_back_to_the_environment() {
        jailed(|jail| {
            jail.set_env("WRONG_KEY", "from the environment");
            jail.set_env("ONLY_IN_ENV", "env value");
            let text = "[fn_misp]\n\
                        misp_key = $MISP_KEY\n\
                        embedded = user:${API_SECRET}@host\n\
                        fallback = $WRONG_KEY\n\
                        env_only = $ONLY_IN_ENV\n";
            let config = AppConfig::parse_with(text, "test.config", &app_host_secrets())
                .unwrap_or_else(|error| panic!("{error}"));
            let get = |key| value(&config, "fn_misp", key);
            assert_eq!(
                get("misp_key").as_deref(),
                Some("Fixture0MispKey0Not0Real0000000000000000")
            );
            assert_eq!(
                get("embedded").as_deref(),
                Some("user:p@ss w0rd;with#special=chars&ünïcode@host")
            );
            assert_eq!(get("fallback").as_deref(), Some("from the environment"));
            assert_eq!(get("env_only").as_deref(), Some("env value"));
            let [notice] = config.notices() else {
                panic!("one notice expected: {:?}", config.notices());
            };
            assert!(
                notice.starts_with("test.config: [fn_misp] fallback: the protected secret ")
                    && notice.contains("WRONG_KEY does not decrypt with the key in .jwk/key.jwk")
                    && notice.ends_with("the environment variable WRONG_KEY is used instead"),
                "{notice}"
            );
            assert!(!notice.contains("from the environment"), "{notice}");
        });
    }

    #[test]
    fn app_host_secrets_that_are_missing_or_unusable_without_a_fallback_are_errors() {
        jailed(|_| {
            let error = |text: &str| {
                AppConfig::parse_with(text, "test.config", &app_host_secrets())
                    .unwrap_err()
                    .to_string()
            };
            let wrong = error("[fn_misp]\nmisp_key = $WRONG_KEY\n");
            assert!(
                wrong.starts_with(
                    "test.config: [fn_misp] misp_key refers to the protected secret WRONG_KEY, but "
                ) && wrong.contains("WRONG_KEY does not decrypt")
                    && wrong.ends_with("and the environment variable WRONG_KEY is not set"),
                "{wrong}"
            );
            let empty = error("[fn_misp]\nmisp_key = $EMPTY\n");
            assert!(empty.contains("EMPTY is empty"), "{empty}");
            let absent = error("[fn_misp]\nmisp_key = ${ABSENT}\n");
            assert!(
                absent.starts_with("test.config: [fn_misp] misp_key refers to the environment variable ABSENT, which is not set, and ")
                    && absent.ends_with("app_host_secrets has no file for it"),
                "{absent}"
            );
        });
    }

    #[test]
    fn app_host_is_read_from_app_host_container_and_soar_secrets_dir() {
        let fixtures = app_host_secrets().dir().unwrap().to_path_buf();
        jailed(|jail| {
            jail.set_env("SOAR_SECRETS_DIR", fixtures.display());
            let text = "[fn_misp]\nmisp_key = $MISP_KEY\n";
            for (app_host, decrypted) in [
                ("1", true),
                ("Yes", true),
                ("on", true),
                ("0", false),
                ("", false),
            ] {
                jail.set_env("APP_HOST_CONTAINER", app_host);
                jail.set_env("MISP_KEY", "environment");
                let config = parsed(text);
                let expected = if decrypted {
                    "Fixture0MispKey0Not0Real0000000000000000"
                } else {
                    "environment"
                };
                assert_eq!(
                    value(&config, "fn_misp", "misp_key").as_deref(),
                    Some(expected),
                    "APP_HOST_CONTAINER={app_host:?}"
                );
            }
        });
    }

    #[test]
    fn override_values_are_literal_and_rescue_an_unset_reference() {
        jailed(|jail| {
            jail.set_env("SOAR__RESILIENT__PASSWORD", "$LITERAL");
            jail.set_env("SOAR__FN_MISP__MISP_KEY", "k");
            let config = parsed("[fn_misp]\nmisp_key = $UNSET_FOR_TEST\n");
            assert_eq!(
                value(&config, "resilient", "password").as_deref(),
                Some("$LITERAL")
            );
            assert_eq!(value(&config, "fn_misp", "misp_key").as_deref(), Some("k"));
        });
    }

    #[test]
    fn pam_secrets_are_refused_naming_the_key() {
        jailed(|_| {
            let expected = "test.config: [resilient] api_key_secret uses the PAM secret syntax (^NAME), which is not supported; use $NAME to read an environment variable instead";
            assert_eq!(
                parse_error("[resilient]\napi_key_secret = ^MY_SECRET\n"),
                expected
            );
            assert_eq!(
                parse_error("[resilient]\napi_key_secret = ^{MY_SECRET}\n"),
                expected
            );
            let config = parsed("[resilient]\npassword = ^not a name\n");
            assert_eq!(
                value(&config, "resilient", "password").as_deref(),
                Some("^not a name")
            );
        });
    }

    #[test]
    fn get_trims_and_treats_empty_as_absent() {
        let fn_misp = section(&[("url", "  http://m  "), ("blank", "   ")]);
        assert_eq!(fn_misp.get("url"), Some("http://m"));
        assert_eq!(fn_misp.get("blank"), None);
        assert_eq!(fn_misp.get("absent"), None);
    }

    #[test]
    fn required_names_the_key_but_never_the_value() {
        let fn_misp = section(&[("misp_key", "<your key>"), ("blank", ""), ("good", "v")]);
        let message = shown::<&str>;
        assert_eq!(
            message(fn_misp.required("good", Some("<your key>"))),
            Ok("v")
        );
        assert_eq!(
            message(fn_misp.required("absent", None)),
            Err("test.config: [fn_misp] absent is missing".into())
        );
        assert_eq!(
            message(fn_misp.required("blank", Some("<x>"))),
            Err("test.config: [fn_misp] blank is missing".into())
        );
        assert_eq!(
            message(fn_misp.required("misp_key", Some("<your key>"))),
            Err("test.config: [fn_misp] misp_key is still the placeholder '<your key>'".into())
        );
        assert_eq!(
            message(fn_misp.required("misp_key", None)),
            Ok("<your key>")
        );
    }

    #[test]
    fn bool_or_accepts_python_words_and_names_a_bad_value() {
        let words = [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("Yes", true),
            ("on", true),
            ("false", false),
            ("0", false),
            ("no", false),
            ("OFF", false),
        ];
        for (word, expected) in words {
            let result = section(&[("verify_cert", word)]).bool_or("verify_cert", !expected);
            assert_eq!(
                result.ok(),
                Some(expected),
                "'{word}' should read as {expected}"
            );
        }
        assert_eq!(section(&[]).bool_or("verify_cert", true).ok(), Some(true));
        assert_eq!(
            section(&[("verify_cert", " ")])
                .bool_or("verify_cert", false)
                .ok(),
            Some(false)
        );
        let error = section(&[("verify_cert", "maybe")]).bool_or("verify_cert", true);
        assert_eq!(
            error.map_err(|error| error.to_string()),
            Err("test.config: [fn_misp] verify_cert must be true or false (or yes/no, on/off, 1/0), not 'maybe'".into())
        );
    }

    #[test]
    fn u64_in_checks_the_range_and_names_it() {
        let workers = |text: &str| {
            section(&[("num_workers", text)])
                .u64_in("num_workers", 1..=2000, 25)
                .map_err(|error| error.to_string())
        };
        assert_eq!(workers("50"), Ok(50));
        assert_eq!(workers("2000"), Ok(2000));
        assert_eq!(workers(""), Ok(25));
        assert_eq!(
            workers("0"),
            Err("test.config: [fn_misp] num_workers must be from 1 to 2000, not 0".into())
        );
        assert_eq!(
            workers("many"),
            Err("test.config: [fn_misp] num_workers must be a whole number from 1 to 2000, not 'many'".into())
        );
        assert_eq!(
            workers("-1"),
            Err("test.config: [fn_misp] num_workers must be a whole number from 1 to 2000, not '-1'".into())
        );
    }

    #[test]
    fn a_missing_section_is_named() {
        jailed(|_| {
            let config = parsed("[resilient]\nhost = x\n");
            assert_eq!(
                config
                    .require_section("fn_misp")
                    .map(Section::name)
                    .map_err(|e| e.to_string()),
                Err("test.config: the section [fn_misp] is missing".into())
            );
        });
    }

    #[test]
    fn debug_output_never_shows_values() {
        jailed(|jail| {
            jail.set_env("SECRET_FOR_DEBUG_TEST", "hunter2-from-env");
            let config = parsed(
                "[resilient]\napi_key_secret = hunter2\npassword = $SECRET_FOR_DEBUG_TEST\n",
            );
            let debug = format!("{config:?}");
            assert!(debug.contains("api_key_secret"), "keys are shown: {debug}");
            assert!(
                !debug.contains("hunter2"),
                "a value leaked into Debug: {debug}"
            );
        });
    }

    #[test]
    fn locate_prefers_the_explicit_path_and_refuses_a_missing_one() {
        jailed(|jail| {
            jail.clear_env();
            let home = jail.directory().to_path_buf();
            jail.set_env("HOME", home.display());
            jail.create_file("given.config", "[resilient]\n")
                .expect("create");
            jail.create_file("app.config", "[resilient]\n")
                .expect("create");
            let given = jail.directory().join("given.config");
            assert_eq!(AppConfig::locate(Some(&given)).ok(), Some(given));

            let missing = jail.directory().join("missing.config");
            let error = AppConfig::locate(Some(&missing)).map_err(|error| error.to_string());
            assert_eq!(
                error,
                Err(format!(
                    "{}: cannot read: does not exist (given with --config)",
                    missing.display()
                ))
            );
            let directory = jail.directory().to_path_buf();
            let error = AppConfig::locate(Some(&directory)).map_err(|error| error.to_string());
            assert_eq!(
                error,
                Err(format!(
                    "{}: cannot read: not a file (given with --config)",
                    directory.display()
                ))
            );
        });
    }

    #[test]
    fn locate_uses_app_config_file_and_refuses_a_missing_one() {
        jailed(|jail| {
            jail.clear_env();
            let home = jail.directory().to_path_buf();
            jail.set_env("HOME", home.display());
            jail.create_file("app.config", "[resilient]\n")
                .expect("create");
            jail.create_file("named.config", "[resilient]\n")
                .expect("create");
            let named = jail.directory().join("named.config");
            jail.set_env(APP_CONFIG_FILE_VAR, named.display());
            assert_eq!(AppConfig::locate(None).ok(), Some(named));

            jail.set_env(APP_CONFIG_FILE_VAR, "/nonexistent/app.config");
            assert_eq!(
                AppConfig::locate(None).map_err(|error| error.to_string()),
                Err("/nonexistent/app.config: cannot read: does not exist (named by $APP_CONFIG_FILE)".into())
            );

            jail.set_env(APP_CONFIG_FILE_VAR, "");
            let local = AppConfig::locate(None).expect("an empty $APP_CONFIG_FILE counts as unset");
            assert!(
                local.ends_with("app.config"),
                "expected ./app.config, got {}",
                local.display()
            );
        });
    }

    #[test]
    fn locate_falls_back_to_the_current_directory_then_home() {
        jailed(|jail| {
            jail.clear_env();
            let home = jail.directory().join("home");
            let work = jail.directory().join("work");
            std::fs::create_dir_all(home.join(".resilient")).expect("create home");
            std::fs::create_dir_all(&work).expect("create work");
            jail.set_env("HOME", home.display());
            jail.change_dir(&work).expect("change directory");
            let cwd = std::env::current_dir().expect("current directory");

            let error = AppConfig::locate(None).map_err(|error| error.to_string());
            assert_eq!(
                error,
                Err(format!(
                    "no app.config found; looked in: {}, {}",
                    cwd.join("app.config").display(),
                    home.join(".resilient/app.config").display()
                ))
            );

            let in_home = home.join(".resilient/app.config");
            std::fs::write(&in_home, "[resilient]\n").expect("write");
            assert_eq!(AppConfig::locate(None).ok(), Some(in_home));

            std::fs::write(work.join("app.config"), "[resilient]\n").expect("write");
            assert_eq!(AppConfig::locate(None).ok(), Some(cwd.join("app.config")));
        });
    }

    #[test]
    fn load_reads_the_file_and_remembers_it() {
        jailed(|jail| {
            jail.clear_env();
            jail.create_file("app.config", SAMPLE).expect("create");
            let path = jail.directory().join("app.config");
            let config = AppConfig::load(Some(&path)).expect("load");
            assert_eq!(config.path(), Some(path.as_path()));
            assert_eq!(config.origin(), path.display().to_string());
            let error = config
                .require_section("fn_misp")
                .and_then(|fn_misp| {
                    fn_misp
                        .required("misp_key", Some("<your key>"))
                        .map(str::len)
                })
                .map_err(|error| error.to_string());
            assert_eq!(
                error,
                Err(format!(
                    "{}: [fn_misp] misp_key is still the placeholder '<your key>'",
                    path.display()
                ))
            );
            assert_eq!(
                AppConfig::parse("[a]\n", "t")
                    .map(|c| c.path().is_none())
                    .ok(),
                Some(true)
            );
        });
    }

    #[test]
    fn load_refuses_a_file_that_is_not_utf8() {
        jailed(|jail| {
            jail.clear_env();
            let path = jail.directory().join("app.config");
            std::fs::write(&path, b"[a]\nx = \xff\n").expect("write");
            assert_eq!(
                AppConfig::load(Some(&path)).map_err(|error| error.to_string()),
                Err(format!(
                    "{}: cannot read: not valid UTF-8 (after byte 8)",
                    path.display()
                ))
            );
        });
    }

    #[cfg(unix)]
    #[test]
    fn a_config_readable_by_others_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;

        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("app.config");
        std::fs::write(&path, "[resilient]\n").expect("write");
        let set_mode = |mode| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };

        set_mode(0o600);
        assert_eq!(warn_if_world_readable(&path), None);
        set_mode(0o640);
        let warning = warn_if_world_readable(&path).expect("a group-readable file is warned about");
        assert!(
            warning.contains("mode 640"),
            "expected the mode in: {warning}"
        );
        set_mode(0o644);
        assert!(warn_if_world_readable(&path).is_some());
        // Loading hands the warning to the caller, who logs it once logging is set up.
        // Loading reads the environment, so it runs in the jail: another test's SOAR__ variable
        // would otherwise leak into this load (it did, once, in CI).
        environment_held(|| {
            let loaded = AppConfig::load(Some(&path)).expect("loads");
            assert_eq!(loaded.notices().len(), 1, "{:?}", loaded.notices());
            assert!(loaded.notices()[0].contains("mode 644"));
            set_mode(0o600);
            assert!(
                AppConfig::load(Some(&path))
                    .expect("loads")
                    .notices()
                    .is_empty()
            );
        });
        // In App Host the platform mounts the file with its own mode: no warning.
        set_mode(0o644);
        jailed(|jail| {
            jail.set_env("APP_HOST_CONTAINER", "1");
            jail.set_env(
                "SOAR_SECRETS_DIR",
                directory.path().join("no-secrets").display(),
            );
            let loaded = AppConfig::load(Some(&path)).expect("loads");
            assert!(loaded.notices().is_empty(), "{:?}", loaded.notices());
        });
        assert_eq!(
            warn_if_world_readable(&directory.path().join("absent")),
            None
        );
    }
}
