//! `soar-runner customize [-y]`: imports each app's generated export into SOAR the way
//! `resilient-circuits customize` does (soar_protocol §5.6), then lets the API key read
//! each imported message destination's queue.
//!
//! The exports are embedded at build time from `customizations/<app>/export.res`, which
//! `cargo xtask customize` generates, so the binary imports exactly the functions it serves.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};
use soar_core::Registry;
use soar_core::config::AppConfig;

use crate::settings::ResilientSettings;
use crate::soar_rest::{RestError, SoarClient};

/// One app's export, as generated.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedExport {
    /// The app (`AppInfo::name`) the export belongs to.
    pub app: &'static str,
    pub json: &'static str,
}

/// Every app's export. An app whose functions are registered must be listed here; the
/// test `every_registered_app_has_an_embedded_export` checks it. Only the apps this binary
/// serves are imported, so a function SOAR learns about always has a runner.
pub const EXPORTS: &[EmbeddedExport] = &[
    EmbeddedExport {
        app: "fn_misp",
        json: include_str!("../../customizations/fn_misp/export.res"),
    },
    EmbeddedExport {
        app: "fn_urlscanio",
        json: include_str!("../../customizations/fn_urlscanio/export.res"),
    },
];

/// The SOAR calls `customize` needs: the org-relative REST calls and who the caller is.
/// A trait so that the import logic can be tested without a SOAR.
#[async_trait::async_trait]
pub trait OrgRest: Send + Sync {
    /// `path` is relative to `/rest/orgs/{org}`.
    async fn org_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RestError>;
    /// The API key's handle, when the runner logs in with an API key.
    fn api_key_handle(&self) -> Option<i64>;
    /// The user's id, when it logs in with email and password.
    fn user_id(&self) -> Option<i64>;
}

/// How one import ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Accepted; the message destinations the caller was added to.
    Accepted { granted: Vec<String> },
    /// The person at the prompt said no; SOAR was told `REJECTED`.
    Declined,
}

/// The `customize` command: loads `[resilient]`, connects, and imports the export of every
/// app `registry` serves, asking before each unless `assume_yes`. The exit status is
/// non-zero when an import failed or was refused.
pub async fn run(
    config_file: Option<&Path>,
    registry: &Registry,
    assume_yes: bool,
) -> Result<ExitCode> {
    let exports = exports_for(registry)?;
    let config = AppConfig::load(config_file)?;
    crate::config_loaded(&config);
    let settings = ResilientSettings::from_app_config(&config)?;
    let client = SoarClient::connect(&settings)
        .await
        .context("cannot connect to SOAR")?;
    let stdin = std::io::stdin();
    let mut confirm = |question: &str| -> Result<bool> {
        if assume_yes {
            return Ok(true);
        }
        print!("{question} [y/N] ");
        std::io::stdout()
            .flush()
            .context("cannot write to stdout")?;
        let mut answer = String::new();
        // No input (a closed stdin) counts as "no": an unattended run must pass -y.
        stdin
            .lock()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        Ok(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    };
    let mut stdout = std::io::stdout();
    let mut failed = false;
    for export in exports {
        match import_export(&client, export, &mut confirm, &mut stdout).await {
            Ok(ImportOutcome::Accepted { .. }) => {}
            Ok(ImportOutcome::Declined) => {
                writeln!(stdout, "{}: import declined", export.app)?;
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Imports one export: strip `tags`, POST it, show SOAR's messages, confirm, PUT
/// `ACCEPTED`, then grant the caller each of the export's message destinations.
pub async fn import_export(
    rest: &dyn OrgRest,
    export: &EmbeddedExport,
    confirm: &mut dyn FnMut(&str) -> Result<bool>,
    out: &mut dyn Write,
) -> Result<ImportOutcome> {
    let app = export.app;
    let mut definition: Value = serde_json::from_str(export.json)
        .with_context(|| format!("the embedded export of {app} is not JSON"))?;
    // resilient-circuits drops tags before importing: tag ids are instance-specific.
    strip_tags(&mut definition);
    let destinations = destination_names(&definition);

    let mut import = rest
        .org_call(Method::POST, "/configurations/imports", Some(definition))
        .await
        .with_context(|| format!("SOAR refused the import of {app}"))?;
    for message in import_messages(&import) {
        writeln!(out, "{app}: {message}")?;
    }
    let status = import.get("status").and_then(Value::as_str).unwrap_or("");
    let Some(import_id) = import.get("id").and_then(Value::as_i64) else {
        bail!("SOAR did not start the import of {app} (status '{status}', no import id)");
    };
    if status != "PENDING" {
        bail!("SOAR refused the import of {app}: status '{status}'");
    }

    let accepted = confirm(&format!(
        "Import the customizations of {app} ({}) into SOAR?",
        summary(export)
    ))?;
    import["status"] = json!(if accepted { "ACCEPTED" } else { "REJECTED" });
    rest.org_call(
        Method::PUT,
        &format!("/configurations/imports/{import_id}"),
        Some(import),
    )
    .await
    .with_context(|| format!("SOAR did not confirm the import of {app}"))?;
    if !accepted {
        return Ok(ImportOutcome::Declined);
    }
    writeln!(out, "{app}: imported")?;

    let granted = grant_destinations(rest, &destinations)
        .await
        .with_context(|| {
            format!("{app} was imported, but its message destinations were not granted")
        })?;
    for name in &granted {
        writeln!(
            out,
            "{app}: message destination {name} can now be read by this API key"
        )?;
    }
    Ok(ImportOutcome::Accepted { granted })
}

/// The exports of the apps `registry` serves; an app without one is an error, since SOAR
/// would then never learn about its functions.
pub fn exports_for(registry: &Registry) -> Result<Vec<&'static EmbeddedExport>> {
    let mut apps: Vec<&str> = registry
        .functions()
        .map(|function| function.definition().app.name)
        .collect();
    apps.sort_unstable();
    apps.dedup();
    apps.into_iter()
        .map(|app| {
            EXPORTS
                .iter()
                .find(|export| export.app == app)
                .with_context(|| format!("no export is embedded for app '{app}'; add customizations/{app}/export.res to EXPORTS"))
        })
        .collect()
}

#[async_trait::async_trait]
impl OrgRest for SoarClient {
    async fn org_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RestError> {
        SoarClient::org_call(self, method, path, body).await
    }

    fn api_key_handle(&self) -> Option<i64> {
        self.api_key_handle
    }

    fn user_id(&self) -> Option<i64> {
        self.user_id
    }
}

/// Removes every `tags` list, at any depth.
fn strip_tags(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, child| !(key == "tags" && child.is_array()));
            map.values_mut().for_each(strip_tags);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_tags),
        _ => {}
    }
}

fn destination_names(export: &Value) -> Vec<String> {
    export
        .get("message_destinations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|destination| destination.get("programmatic_name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// SOAR's messages about the import, such as objects it will update, as "TYPE: text".
pub(crate) fn import_messages(import: &Value) -> Vec<String> {
    import
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|message| {
            let kind = message
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("INFO");
            let text = message.get("text").and_then(Value::as_str).unwrap_or("");
            format!("{kind}: {text}")
        })
        .collect()
}

/// "6 functions, 7 playbooks", for the confirmation question.
fn summary(export: &EmbeddedExport) -> String {
    let value: Value = serde_json::from_str(export.json).unwrap_or(Value::Null);
    let count = |key: &str| value.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    let mut parts = Vec::new();
    for (key, label) in [
        ("functions", "functions"),
        ("workflows", "workflows"),
        ("actions", "rules"),
        ("playbooks", "playbooks"),
    ] {
        let n = count(key);
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    parts.join(", ")
}

/// Adds the API key (or, logged in with a password, the user) to each destination's
/// readers, as resilient-circuits does after an import; without this the runner cannot
/// subscribe to the queue. Destinations that already list it are left alone.
async fn grant_destinations(rest: &dyn OrgRest, names: &[String]) -> Result<Vec<String>> {
    let (member_key, member) = match (rest.api_key_handle(), rest.user_id()) {
        (Some(handle), _) => ("api_keys", handle),
        (None, Some(user)) => ("users", user),
        (None, None) => bail!("SOAR did not say which API key or user this is"),
    };
    let listing = rest
        .org_call(Method::GET, "/message_destinations", None)
        .await?;
    let entities = listing
        .get("entities")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut granted = Vec::new();
    for name in names {
        let Some(id) = entities
            .iter()
            .find(|entity| entity.get("programmatic_name").and_then(Value::as_str) == Some(name))
            .and_then(|entity| entity.get("id").and_then(Value::as_i64))
        else {
            bail!("SOAR has no message destination '{name}' after the import");
        };
        let path = format!("/message_destinations/{id}");
        let mut destination = rest.org_call(Method::GET, &path, None).await?;
        let members = destination
            .get(member_key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if members
            .iter()
            .any(|existing| existing.as_i64() == Some(member))
        {
            continue;
        }
        let mut members = members;
        members.push(json!(member));
        destination[member_key] = Value::Array(members);
        rest.org_call(Method::PUT, &path, Some(destination)).await?;
        granted.push(name.clone());
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;

    /// One expected call and its answer: a body, or an HTTP error status.
    type Step = (Method, &'static str, Result<Value, u16>);

    /// A scripted SOAR: answers each expected call in order and fails loudly on any other.
    struct ScriptedSoar {
        script: Mutex<VecDeque<Step>>,
        calls: Mutex<Vec<(Method, String, Option<Value>)>>,
        api_key_handle: Option<i64>,
    }

    impl ScriptedSoar {
        fn new(script: Vec<Step>) -> ScriptedSoar {
            ScriptedSoar {
                script: Mutex::new(script.into()),
                calls: Mutex::new(Vec::new()),
                api_key_handle: Some(7),
            }
        }

        fn calls(&self) -> Vec<(Method, String, Option<Value>)> {
            self.calls
                .lock()
                .map(|calls| calls.clone())
                .unwrap_or_default()
        }

        fn assert_script_done(&self) {
            let left = self.script.lock().map(|script| script.len()).unwrap_or(0);
            assert_eq!(
                left,
                0,
                "expected calls were not made; made: {:?}",
                self.calls()
            );
        }
    }

    #[async_trait::async_trait]
    impl OrgRest for ScriptedSoar {
        async fn org_call(
            &self,
            method: Method,
            path: &str,
            body: Option<Value>,
        ) -> Result<Value, RestError> {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push((method.clone(), path.to_string(), body));
            }
            let next = self
                .script
                .lock()
                .ok()
                .and_then(|mut script| script.pop_front());
            match next {
                Some((expected_method, expected_path, answer)) => {
                    assert_eq!(
                        (&method, path),
                        (&expected_method, expected_path),
                        "unexpected SOAR call"
                    );
                    answer.map_err(|status| RestError::Status {
                        method: method.to_string(),
                        path: path.to_string(),
                        status,
                        body: "{\"success\":false,\"message\":\"Import failed validation\"}".into(),
                    })
                }
                None => panic!("unexpected SOAR call {method} {path}: the script is done"),
            }
        }

        fn api_key_handle(&self) -> Option<i64> {
            self.api_key_handle
        }

        fn user_id(&self) -> Option<i64> {
            Some(99)
        }
    }

    fn fn_misp_export() -> &'static EmbeddedExport {
        EXPORTS
            .iter()
            .find(|export| export.app == "fn_misp")
            .unwrap_or_else(|| panic!("the fn_misp export is not embedded"))
    }

    fn pending() -> Value {
        json!({"id": 31, "status": "PENDING", "messages": [
            {"type": "INFO", "text": "Function 'misp_create_event' will be updated"}
        ]})
    }

    async fn import(
        soar: &ScriptedSoar,
        answer: bool,
    ) -> (Result<ImportOutcome>, String, Vec<String>) {
        let mut asked = Vec::new();
        let mut confirm = |question: &str| -> Result<bool> {
            asked.push(question.to_string());
            Ok(answer)
        };
        let mut out = Vec::new();
        let outcome = import_export(soar, fn_misp_export(), &mut confirm, &mut out).await;
        (outcome, String::from_utf8_lossy(&out).into_owned(), asked)
    }

    #[tokio::test]
    async fn an_accepted_import_grants_the_api_key_its_destination() {
        let soar = ScriptedSoar::new(vec![
            (Method::POST, "/configurations/imports", Ok(pending())),
            (
                Method::PUT,
                "/configurations/imports/31",
                Ok(json!({"id": 31, "status": "ACCEPTED"})),
            ),
            (
                Method::GET,
                "/message_destinations",
                Ok(json!({"entities": [
                    {"id": 3, "programmatic_name": "other"},
                    {"id": 4, "programmatic_name": "fn_misp"}
                ]})),
            ),
            (
                Method::GET,
                "/message_destinations/4",
                Ok(json!({"id": 4, "programmatic_name": "fn_misp", "api_keys": [2], "users": []})),
            ),
            (Method::PUT, "/message_destinations/4", Ok(json!({}))),
        ]);
        let (outcome, out, asked) = import(&soar, true).await;
        assert_eq!(
            outcome.ok(),
            Some(ImportOutcome::Accepted {
                granted: vec!["fn_misp".into()]
            })
        );
        soar.assert_script_done();
        assert!(
            out.contains("fn_misp: INFO: Function 'misp_create_event' will be updated"),
            "{out}"
        );
        assert_eq!(asked.len(), 1, "asked once: {asked:?}");
        assert!(asked[0].contains("17 functions"), "{asked:?}");

        let calls = soar.calls();
        let posted = calls[0].2.clone().unwrap_or_default();
        assert_eq!(posted["export_format_version"], 2);
        assert!(posted.get("tags").is_none(), "top-level tags are stripped");
        assert!(
            posted["functions"][0].get("tags").is_none(),
            "nested tags are stripped"
        );
        let accepted = calls[1].2.clone().unwrap_or_default();
        assert_eq!(accepted["status"], "ACCEPTED");
        assert_eq!(
            accepted["id"], 31,
            "the import is confirmed with SOAR's own object"
        );
        let destination = calls[4].2.clone().unwrap_or_default();
        assert_eq!(
            destination["api_keys"],
            json!([2, 7]),
            "the key's handle is added, others kept"
        );
    }

    #[tokio::test]
    async fn a_refused_import_is_an_error_with_soars_message() {
        let soar = ScriptedSoar::new(vec![(Method::POST, "/configurations/imports", Err(400))]);
        let (outcome, _, asked) = import(&soar, true).await;
        let error = format!(
            "{:#}",
            outcome.err().unwrap_or_else(|| anyhow::anyhow!("no error"))
        );
        assert!(
            error.contains("SOAR refused the import of fn_misp"),
            "{error}"
        );
        assert!(error.contains("Import failed validation"), "{error}");
        assert!(asked.is_empty(), "nothing to confirm");
        soar.assert_script_done();
    }

    #[tokio::test]
    async fn an_import_that_is_not_pending_is_not_confirmed() {
        let soar = ScriptedSoar::new(vec![(
            Method::POST,
            "/configurations/imports",
            Ok(
                json!({"id": 31, "status": "FAILED", "messages": [{"type": "ERROR", "text": "Field misp_event_id conflicts"}]}),
            ),
        )]);
        let (outcome, out, asked) = import(&soar, true).await;
        let error = format!(
            "{:#}",
            outcome.err().unwrap_or_else(|| anyhow::anyhow!("no error"))
        );
        assert!(error.contains("status 'FAILED'"), "{error}");
        assert!(
            out.contains("ERROR: Field misp_event_id conflicts"),
            "SOAR's messages are shown: {out}"
        );
        assert!(asked.is_empty());
        soar.assert_script_done();
    }

    #[tokio::test]
    async fn a_declined_import_is_rejected_and_grants_nothing() {
        let soar = ScriptedSoar::new(vec![
            (Method::POST, "/configurations/imports", Ok(pending())),
            (Method::PUT, "/configurations/imports/31", Ok(json!({}))),
        ]);
        let (outcome, _, _) = import(&soar, false).await;
        assert_eq!(outcome.ok(), Some(ImportOutcome::Declined));
        assert_eq!(
            soar.calls()[1].2.clone().unwrap_or_default()["status"],
            "REJECTED"
        );
        soar.assert_script_done();
    }

    #[tokio::test]
    async fn a_destination_that_already_lists_the_key_is_left_alone() {
        let soar = ScriptedSoar::new(vec![
            (Method::POST, "/configurations/imports", Ok(pending())),
            (Method::PUT, "/configurations/imports/31", Ok(json!({}))),
            (
                Method::GET,
                "/message_destinations",
                Ok(json!({"entities": [{"id": 4, "programmatic_name": "fn_misp"}]})),
            ),
            (
                Method::GET,
                "/message_destinations/4",
                Ok(json!({"id": 4, "api_keys": [7]})),
            ),
        ]);
        let (outcome, _, _) = import(&soar, true).await;
        assert_eq!(
            outcome.ok(),
            Some(ImportOutcome::Accepted { granted: vec![] })
        );
        soar.assert_script_done();
    }

    #[test]
    fn every_registered_app_has_an_embedded_export() {
        let registry = soar_core::Registry::from_inventory()
            .unwrap_or_else(|error| panic!("the registry: {error}"));
        let exports = exports_for(&registry).unwrap_or_else(|error| panic!("{error:#}"));
        assert!(
            exports.iter().any(|export| export.app == "fn_misp"),
            "fn_misp is served"
        );
        for export in exports {
            let value: Value = serde_json::from_str(export.json)
                .unwrap_or_else(|error| panic!("the {} export is not JSON: {error}", export.app));
            assert_eq!(value["export_format_version"], 2, "{}", export.app);
            let functions: Vec<&str> = value["functions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["name"].as_str())
                .collect();
            let served = registry
                .functions()
                .map(|f| f.definition())
                .filter(|d| d.app.name == export.app);
            for function in served {
                assert!(
                    functions.contains(&function.name),
                    "{} is missing from the {} export",
                    function.name,
                    export.app
                );
            }
        }
        for export in EXPORTS {
            let parsed: Result<Value, _> = serde_json::from_str(export.json);
            assert!(parsed.is_ok(), "the embedded {} export is JSON", export.app);
        }
    }
}
