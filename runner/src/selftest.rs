//! `soar-runner selftest`: checks the config, SOAR REST, the broker and each app, prints
//! a readable report and returns resilient-circuits' exit codes (soar_protocol §5.5):
//! 20–25 REST, 30–33 STOMP, 1 an app failed, 0 all good.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use soar_core::Registry;
use soar_core::config::AppConfig;
use soar_core::misp::{MispClient, MispConfig};

use crate::service::{self, ServiceConfig};
use crate::settings::ResilientSettings;
use crate::soar_rest::SoarClient;

/// The permissions each fn_misp function needs from the MISP role.
const MISP_PERMISSIONS: &[(&str, &str)] = &[
    ("perm_add", "misp_create_event, misp_create_attribute"),
    ("perm_sighting", "misp_create_sighting"),
    ("perm_tagger", "misp_create_tag"),
];

pub async fn run(config_path: Option<&Path>, registry: Registry) -> u8 {
    println!("soar-runner selftest");
    let config = match AppConfig::load(config_path) {
        Ok(config) => config,
        Err(error) => return report_fail("config", &error.to_string(), 1),
    };
    crate::config_loaded(&config);
    let settings = match ResilientSettings::from_app_config(&config) {
        Ok(settings) => settings,
        Err(error) => return report_fail("config", &error.to_string(), 1),
    };
    report_ok("config", config.origin());
    let function_config_problems = registry.config_problems(&config);
    for (function, problem) in &function_config_problems {
        report_fail(&format!("config of {function}"), problem, 1);
    }

    let soar = match SoarClient::connect(&settings).await {
        Ok(soar) => soar,
        Err(error) => return report_fail("SOAR REST", &error.to_string(), error.exit_code() as u8),
    };
    report_ok(
        "SOAR REST",
        &format!(
            "{} as org '{}' ({}), SOAR v{}",
            settings.rest_base_url(),
            soar.org_name,
            soar.org_id,
            soar.server_version.as_deref().unwrap_or("unknown")
        ),
    );

    let mut destinations = Vec::new();
    for function in registry.functions() {
        match soar.function_destination(function.definition().name).await {
            Ok(Some(destination)) => destinations.push(destination),
            Ok(None) => println!(
                "  warning: SOAR does not know {}; run `soar-runner customize`",
                function.definition().name
            ),
            Err(error) => return report_fail("SOAR REST", &error.to_string(), 31),
        }
    }
    destinations.sort();
    destinations.dedup();
    if destinations.is_empty() {
        destinations = registry
            .destinations()
            .into_iter()
            .map(str::to_string)
            .collect();
    }
    let service_config = ServiceConfig {
        settings: settings.clone(),
        org_id: soar.org_id,
        destinations,
    };
    let wait = settings.selftest_timeout.min(Duration::from_secs(2));
    match tokio::time::timeout(
        settings.selftest_timeout,
        service::probe(&service_config, wait),
    )
    .await
    {
        Ok(Ok(queues)) => report_ok("STOMP", &format!("subscribed to {}", queues.join(", "))),
        Ok(Err(error)) => {
            let text = error.to_string();
            let code = if text.contains("is not authorized to read from queue") {
                32
            } else {
                30
            };
            return report_fail("STOMP", &text, code);
        }
        Err(_) => {
            return report_fail(
                "STOMP",
                &format!(
                    "no subscription within {} s",
                    settings.selftest_timeout.as_secs()
                ),
                33,
            );
        }
    }

    let mut failed = false;
    for app in apps(&registry) {
        match app.as_str() {
            "fn_misp" => match misp_selftest(&config).await {
                Ok(detail) => report_ok("fn_misp", &detail),
                Err(reason) => {
                    report_fail("fn_misp", &reason, 1);
                    failed = true;
                }
            },
            other => println!("  {other}: unimplemented (no selftest for this app)"),
        }
    }
    if failed || !function_config_problems.is_empty() {
        return 1;
    }
    println!("selftest passed");
    0
}

fn apps(registry: &Registry) -> Vec<String> {
    let mut apps: Vec<String> = registry
        .functions()
        .map(|function| function.definition().app.name.to_string())
        .collect();
    apps.sort();
    apps.dedup();
    apps
}

/// `GET /servers/getVersion` and `/users/view/me`; names the role permissions a function
/// needs that the key lacks.
async fn misp_selftest(config: &AppConfig) -> Result<String, String> {
    let misp_config = MispConfig::from_app_config(config).map_err(|error| error.to_string())?;
    let url = misp_config.url.to_string();
    let client = MispClient::new(misp_config).map_err(|error| error.to_string())?;
    let version = client
        .get_version()
        .await
        .map_err(|error| error.to_string())?;
    let me = client.get_me().await.map_err(|error| error.to_string())?;
    let role = me.get("Role").cloned().unwrap_or(Value::Null);
    let missing: Vec<String> = MISP_PERMISSIONS
        .iter()
        .filter(|(permission, _)| !permission_granted(role.get(*permission)))
        .map(|(permission, functions)| format!("{permission} (needed by {functions})"))
        .collect();
    let version = version
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    if !missing.is_empty() {
        return Err(format!(
            "MISP {version} at {url} answers, but the key's role lacks: {}",
            missing.join(", ")
        ));
    }
    let email = me
        .pointer("/User/email")
        .and_then(Value::as_str)
        .unwrap_or("the key's user");
    Ok(format!(
        "MISP {version} at {url}, as {email}, with every permission the functions need"
    ))
}

fn permission_granted(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::Number(number)) => number.as_i64() == Some(1),
        Some(Value::String(text)) => text == "1" || text.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn report_ok(check: &str, detail: &str) {
    println!("  {check}: ok - {detail}");
}

fn report_fail(check: &str, reason: &str, code: u8) -> u8 {
    println!("  {check}: FAILED - {reason}");
    println!("selftest failed (exit code {code})");
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn permissions_read_misp_booleans_in_every_form() {
        assert!(permission_granted(Some(&json!(true))));
        assert!(permission_granted(Some(&json!(1))));
        assert!(permission_granted(Some(&json!("1"))));
        assert!(!permission_granted(Some(&json!(false))));
        assert!(!permission_granted(Some(&json!("0"))));
        assert!(!permission_granted(None));
    }
}
