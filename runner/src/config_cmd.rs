//! `soar-runner config -c|-u [FILE]`: writes an `app.config` with `[resilient]` and the
//! section of every registered app, like `resilient-circuits config` (soar_protocol §5.6).
//!
//! `-c` creates a new file and never overwrites one. `-u` appends only the sections the file
//! lacks and leaves every existing line as it was, values and comments included.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use soar_core::Registry;
use soar_core::config::APP_CONFIG_FILE_VAR;

/// What the command does with the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigMode {
    /// `-c`: write a new file.
    Create,
    /// `-u`: add the missing sections to an existing file.
    Update,
}

/// The `[resilient]` template: resilient-circuits' keys, with what each is for.
pub const RESILIENT_SECTION: &str = "\
[resilient]
# The SOAR host name or address, and the REST port
host=localhost_or_ip_of_soar
port=443
# The org to serve: its name, UUID or cloud account
org=name_of_your_org

# Log in with an API key (recommended) ...
api_key_id=xxx
api_key_secret=xxx
# ... or, the legacy way, with a user's email and password
#email=user@example.com
#password=xxx

# TLS: a CA bundle to check SOAR's certificate with, or false to not check it at all
#cafile=false

# The STOMP broker SOAR sends function messages through: host defaults to host above
#stomp_host=localhost_or_ip_of_soar
#stomp_port=65001
#stomp_timeout=60

# How many function messages run at once (1 to 2000); resilient-circuits' default is 25
num_workers=25

# Where to log: directory, file name and level (DEBUG, INFO, WARNING, ERROR)
logdir=~/.resilient/logs/
logfile=app.log
loglevel=INFO

# An HTTPS proxy for the REST API
#proxy_host=
#proxy_port=
#proxy_user=
#proxy_password=

# REST retries of each request that is safe to repeat
#request_max_retries=5
# Seconds to wait for a self-test of each app
#selftest_timeout=10
";

/// Each app's section template, by app name (`AppInfo::name`), from
/// `customizations/<app>/app.config`. The section is the template's own header, which need
/// not be the app name: fn_urlscanio reads `[urlscanio]`. An app whose functions are
/// registered must be listed; the test `every_registered_app_has_a_section_template`
/// checks it.
pub const APP_SECTIONS: &[(&str, &str)] = &[
    (
        "fn_misp",
        include_str!("../../customizations/fn_misp/app.config"),
    ),
    (
        "fn_urlscanio",
        include_str!("../../customizations/fn_urlscanio/app.config"),
    ),
];

/// The `config` command. `file` defaults to `$APP_CONFIG_FILE`, then
/// `~/.resilient/app.config`, where resilient-circuits puts it.
pub async fn run(mode: ConfigMode, file: Option<&Path>) -> Result<ExitCode> {
    let registry = Registry::from_inventory().context("registering the functions")?;
    let path = match file {
        Some(path) => path.to_path_buf(),
        None => default_path()?,
    };
    let added = write_config(mode, &path, &app_names(&registry))?;
    match (mode, added.is_empty()) {
        (ConfigMode::Create, _) => println!(
            "created {} with sections {}",
            path.display(),
            added.join(", ")
        ),
        (ConfigMode::Update, true) => println!("{} already has every section", path.display()),
        (ConfigMode::Update, false) => {
            println!("added sections {} to {}", added.join(", "), path.display())
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates or updates `path` with `[resilient]` and the sections of `apps`; returns the
/// section names written.
pub fn write_config(mode: ConfigMode, path: &Path, apps: &[&str]) -> Result<Vec<String>> {
    let wanted = wanted_sections(apps)?;
    match mode {
        ConfigMode::Create => {
            let text = wanted
                .iter()
                .map(|(_, text)| text.trim_end().to_string())
                .collect::<Vec<_>>()
                .join("\n\n")
                + "\n";
            create_private_file(path, &text)?;
            Ok(wanted
                .into_iter()
                .map(|(name, _)| name.to_string())
                .collect())
        }
        ConfigMode::Update => {
            let existing = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    bail!("{} does not exist; create it with -c", path.display())
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot read {}", path.display()));
                }
            };
            let present = section_names(&existing);
            let missing: Vec<(String, &str)> = wanted
                .into_iter()
                .filter(|(name, _)| !present.iter().any(|have| have.eq_ignore_ascii_case(name)))
                .collect();
            if missing.is_empty() {
                return Ok(Vec::new());
            }
            let mut addition = String::new();
            if !existing.is_empty() && !existing.ends_with('\n') {
                addition.push('\n');
            }
            for (_, text) in &missing {
                addition.push('\n');
                addition.push_str(text.trim_end());
                addition.push('\n');
            }
            // Appending never rewrites what is there, so a crash cannot lose the user's values.
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {} to append", path.display()))?;
            file.write_all(addition.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(missing.into_iter().map(|(name, _)| name).collect())
        }
    }
}

fn app_names(registry: &Registry) -> Vec<&'static str> {
    let mut apps: Vec<&'static str> = registry
        .functions()
        .map(|function| function.definition().app.name)
        .collect();
    apps.sort_unstable();
    apps.dedup();
    apps
}

/// `[resilient]` first, then each app's section, in the order given; each with its name.
fn wanted_sections(apps: &[&str]) -> Result<Vec<(String, &'static str)>> {
    let mut sections = vec![("resilient".to_string(), RESILIENT_SECTION)];
    for app in apps {
        let Some((_, text)) = APP_SECTIONS.iter().find(|(name, _)| name == app) else {
            bail!(
                "no app.config template for app '{app}'; add customizations/{app}/app.config to APP_SECTIONS"
            );
        };
        let Some(section) = section_names(text).into_iter().next() else {
            bail!("the app.config template of app '{app}' has no [section] header");
        };
        sections.push((section, text));
    }
    Ok(sections)
}

/// The `[section]` headers of an INI text, in order.
fn section_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            line.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .map(|name| name.trim().to_string())
        })
        .collect()
}

fn default_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(APP_CONFIG_FILE_VAR).filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::home_dir()
        .context("no home directory to put .resilient/app.config in; name a FILE")?;
    Ok(home.join(".resilient").join("app.config"))
}

/// Creates `path` (and its directory), readable by its owner only: it will hold secrets.
fn create_private_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} already exists; use -u to add the missing sections",
                path.display()
            )
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot create {}", path.display()));
        }
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use soar_core::config::AppConfig;

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|error| panic!("no temp dir: {error}"))
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
    }

    #[test]
    fn create_writes_resilient_and_each_app_section() {
        let dir = scratch();
        let path = dir.path().join("sub/app.config");
        let written = write_config(ConfigMode::Create, &path, &["fn_misp", "fn_urlscanio"])
            .unwrap_or_else(|error| panic!("{error:#}"));
        assert_eq!(written, vec!["resilient", "fn_misp", "urlscanio"]);
        let text = read(&path);
        assert_eq!(
            section_names(&text),
            vec!["resilient", "fn_misp", "urlscanio"]
        );
        // The original fn_misp template, then the new keys with their comments.
        assert!(
            text.contains("[fn_misp]\nmisp_url=http://localhost\nmisp_key=<your key>\n"),
            "{text}"
        );
        for key in [
            "#timeout=",
            "#retries=",
            "#search_limit=",
            "mitre_tag=misp-galaxy:mitre-attack-pattern",
        ] {
            assert!(text.contains(key), "{key} is in the [fn_misp] template");
        }
        for key in [
            "urlscanio_api_key=",
            "urlscanio_report_url=",
            "urlscanio_screenshot_url=",
            "#timeout=",
        ] {
            assert!(text.contains(key), "{key} is in the [urlscanio] template");
        }
        // The runner refuses the template's placeholders, and reads it once they are filled in.
        let config = AppConfig::parse(&text, "written").unwrap_or_else(|error| panic!("{error}"));
        let untouched = crate::settings::ResilientSettings::from_app_config(&config);
        let error = untouched
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(error.contains("host is still the placeholder"), "{error}");
        let filled = text
            .replace("host=localhost_or_ip_of_soar", "host=soar.example.com")
            .replace("org=name_of_your_org", "org=Test Org");
        let config = AppConfig::parse(&filled, "filled").unwrap_or_else(|error| panic!("{error}"));
        let settings = crate::settings::ResilientSettings::from_app_config(&config);
        assert!(
            settings.is_ok(),
            "a filled-in template is valid: {settings:?}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(
                mode, 0o600,
                "only the owner can read a file that will hold secrets"
            );
        }
    }

    #[test]
    fn commented_defaults_are_the_ones_the_code_uses() {
        let section = |app: &str| {
            APP_SECTIONS
                .iter()
                .find(|(name, _)| *name == app)
                .map(|(_, text)| *text)
                .unwrap_or_default()
        };
        let misp = section("fn_misp");
        for line in [
            format!("#timeout={}", soar_core::misp::DEFAULT_TIMEOUT_SECONDS),
            format!("#retries={}", soar_core::misp::DEFAULT_RETRIES),
            format!(
                "#call_timeout={}",
                soar_core::misp::DEFAULT_TIMEOUT_SECONDS
                    + soar_core::misp::DEFAULT_CALL_TIMEOUT_MARGIN_SECONDS
            ),
            format!("#search_limit={}", soar_core::misp::DEFAULT_SEARCH_LIMIT),
        ] {
            assert!(misp.lines().any(|l| l == line), "[fn_misp] shows {line}");
        }
        let urlscan = section("fn_urlscanio");
        for line in [
            format!("#timeout={}", urlscanio::config::DEFAULT_TIMEOUT_SECONDS),
            format!("urlscanio_api_key={}", urlscanio::config::KEY_PLACEHOLDER),
            format!(
                "urlscanio_report_url={}",
                urlscanio::config::DEFAULT_REPORT_URL
            ),
            format!(
                "urlscanio_screenshot_url={}",
                urlscanio::config::DEFAULT_SCREENSHOT_URL
            ),
        ] {
            assert!(
                urlscan.lines().any(|l| l == line),
                "[urlscanio] shows {line}"
            );
        }
    }

    #[test]
    fn create_never_overwrites() {
        let dir = scratch();
        let path = dir.path().join("app.config");
        std::fs::write(&path, "[resilient]\nhost=mine\n").unwrap_or_else(|error| panic!("{error}"));
        let error = write_config(ConfigMode::Create, &path, &["fn_misp"])
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("already exists; use -u")),
            "{error:?}"
        );
        assert_eq!(read(&path), "[resilient]\nhost=mine\n");
    }

    #[test]
    fn update_adds_only_missing_sections_and_keeps_every_value() {
        let dir = scratch();
        let path = dir.path().join("app.config");
        let mine = "[Resilient]\nhost=soar.internal\n# my comment\n\n[fn_misp]\nmisp_url=https://misp.internal\nmisp_key=$MISP_KEY";
        std::fs::write(&path, mine).unwrap_or_else(|error| panic!("{error}"));
        let added = write_config(ConfigMode::Update, &path, &["fn_misp", "fn_urlscanio"])
            .unwrap_or_else(|error| panic!("{error:#}"));
        assert_eq!(
            added,
            vec!["urlscanio"],
            "section names match regardless of case"
        );
        let text = read(&path);
        assert!(
            text.starts_with(&format!("{mine}\n")),
            "the existing text is kept as it was:\n{text}"
        );
        assert_eq!(
            section_names(&text),
            vec!["Resilient", "fn_misp", "urlscanio"]
        );

        let again = write_config(ConfigMode::Update, &path, &["fn_misp", "fn_urlscanio"])
            .unwrap_or_else(|error| panic!("{error:#}"));
        assert!(again.is_empty(), "a second update adds nothing");
        assert_eq!(read(&path), text);
    }

    #[test]
    fn update_of_a_missing_file_says_to_create_it() {
        let dir = scratch();
        let error = write_config(
            ConfigMode::Update,
            &dir.path().join("none.config"),
            &["fn_misp"],
        )
        .err()
        .map(|e| format!("{e:#}"));
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("create it with -c")),
            "{error:?}"
        );
    }

    #[test]
    fn every_registered_app_has_a_section_template() {
        let registry = Registry::from_inventory().unwrap_or_else(|error| panic!("{error}"));
        let apps = app_names(&registry);
        assert!(!apps.is_empty(), "the function crates are linked");
        let sections = wanted_sections(&apps).unwrap_or_else(|error| panic!("{error:#}"));
        assert_eq!(
            sections.len(),
            apps.len() + 1,
            "[resilient] and one per app"
        );
        let all: Vec<&str> = APP_SECTIONS.iter().map(|(app, _)| *app).collect();
        let names: Vec<String> = wanted_sections(&all)
            .unwrap_or_else(|error| panic!("{error:#}"))
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            vec!["resilient", "fn_misp", "urlscanio"],
            "fn_urlscanio keeps the original's [urlscanio]"
        );
    }
}
