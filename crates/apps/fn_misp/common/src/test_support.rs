//! Test helpers for the fn_misp function crates (feature `test_support`): the comparison with
//! the original's `export.res`, a progress recorder and a function context for a MISP URL.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use soar_core::config::AppConfig;
use soar_core::misp::{MispClient, MispConfig};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, Inputs,
    ProgressSink,
};
use tokio_util::sync::CancellationToken;

/// The original fn_misp 3.0.2 customization export.
pub const EXPORT_RES_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../../tests/fixtures/fn_misp/export.res"
);

/// Records progress messages in the order a function sends them.
#[derive(Debug, Clone, Default)]
pub struct ProgressLog {
    messages: Arc<Mutex<Vec<String>>>,
}

impl ProgressLog {
    pub fn new() -> ProgressLog {
        ProgressLog::default()
    }

    /// A sink for [`FunctionContext::new`] that appends to this log.
    pub fn sink(&self) -> ProgressSink {
        let messages = Arc::clone(&self.messages);
        Arc::new(move |message: String| match messages.lock() {
            Ok(mut messages) => messages.push(message),
            Err(poisoned) => poisoned.into_inner().push(message),
        })
    }

    pub fn messages(&self) -> Vec<String> {
        match self.messages.lock() {
            Ok(messages) => messages.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The original's `export.res`, parsed.
pub fn export_res() -> Value {
    let text = std::fs::read_to_string(EXPORT_RES_PATH)
        .unwrap_or_else(|error| panic!("cannot read {EXPORT_RES_PATH}: {error}"));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{EXPORT_RES_PATH} is not JSON: {error}"))
}

/// Panics listing every way `definition` differs from the original's export: names, display
/// name, description, destination, uuid, view_items order and each input field with its type,
/// required flag, tooltip, placeholder, select values and UUIDs.
pub fn assert_matches_export(definition: &FunctionDefinition) {
    let problems = export_differences(definition, &export_res());
    assert!(
        problems.is_empty(),
        "{} differs from the original export.res:\n  {}",
        definition.name,
        problems.join("\n  ")
    );
}

/// The differences between `definition` and the function of the same name in `export`.
pub fn export_differences(definition: &FunctionDefinition, export: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(function) = export["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|function| function["name"] == definition.name)
    else {
        return vec![format!(
            "export.res has no function named {}",
            definition.name
        )];
    };
    let mut check = |what: &str, ours: &str, theirs: &Value| {
        if theirs.as_str() != Some(ours) {
            problems.push(format!("{what}: ours {ours:?}, original {theirs}"));
        }
    };
    check("export_key", definition.name, &function["export_key"]);
    check(
        "display_name",
        definition.display_name,
        &function["display_name"],
    );
    check(
        "description",
        definition.description,
        &function["description"]["content"],
    );
    check(
        "destination_handle",
        definition.destination,
        &function["destination_handle"],
    );
    check("uuid", definition.uuid, &function["uuid"]);

    let view_items: Vec<&str> = function["view_items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["content"].as_str())
        .collect();
    let our_items: Vec<&str> = definition.inputs.iter().map(|input| input.uuid).collect();
    if view_items != our_items {
        problems.push(format!(
            "view_items: ours {our_items:?}, original {view_items:?}"
        ));
    }

    for input in definition.inputs {
        let export_key = format!("__function/{}", input.name);
        let Some(field) = export["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|field| field["export_key"] == export_key.as_str())
        else {
            problems.push(format!("export.res has no field {export_key}"));
            continue;
        };
        let mut check = |what: &str, ours: &str, theirs: &Value| {
            if theirs.as_str() != Some(ours) {
                problems.push(format!(
                    "{export_key} {what}: ours {ours:?}, original {theirs}"
                ));
            }
        };
        check("name", input.name, &field["name"]);
        check(
            "input_type",
            input.input_type.soar_name(),
            &field["input_type"],
        );
        check("tooltip", input.tooltip, &field["tooltip"]);
        check("placeholder", input.placeholder, &field["placeholder"]);
        check("uuid", input.uuid, &field["uuid"]);
        let required = field["required"] == "always";
        if input.required != required {
            problems.push(format!(
                "{export_key} required: ours {}, original {}",
                input.required, field["required"]
            ));
        }
        let theirs: Vec<(String, i64, bool, String)> = field["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|value| {
                (
                    value["label"].as_str().unwrap_or_default().to_string(),
                    value["value"].as_i64().unwrap_or_default(),
                    value["default"].as_bool().unwrap_or_default(),
                    value["uuid"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let ours: Vec<(String, i64, bool, String)> = input
            .values
            .iter()
            .map(|value| {
                (
                    value.label.to_string(),
                    value.value,
                    value.default,
                    value.uuid.to_string(),
                )
            })
            .collect();
        if ours != theirs {
            problems.push(format!(
                "{export_key} values: ours {ours:?}, original {theirs:?}"
            ));
        }
    }
    problems
}

/// Inputs from a JSON object literal.
pub fn inputs(value: Value) -> Inputs {
    Inputs::from_value(value).unwrap_or_else(|error| panic!("test inputs: {error}"))
}

/// An `app.config` `[fn_misp]` section for a test MISP at `url`: no retries and a short
/// timeout, so that a failure shows at once. `extra` lines (`search_limit=2`) are appended.
pub fn fn_misp_section(url: &str, key: &str, extra: &str) -> String {
    format!(
        "[fn_misp]\nmisp_url={url}\nmisp_key={key}\nverify_cert=false\nretries=0\ntimeout=10\n{extra}\n"
    )
}

/// A context built from `app.config` text as the runner builds it, recording progress into
/// `log`. A config the client refuses leaves the context without MISP, as in the runner.
pub fn context_from_config(text: &str, log: &ProgressLog) -> FunctionContext {
    let config = AppConfig::parse(text, "test app.config")
        .unwrap_or_else(|error| panic!("test app.config does not parse: {error}"));
    let misp = MispConfig::from_app_config(&config)
        .map_err(|error| error.to_string())
        .and_then(|misp| MispClient::new(misp).map_err(|error| error.to_string()))
        .map(Arc::new);
    FunctionContext::new(
        log.sink(),
        misp,
        Arc::new(config),
        None,
        CancellationToken::new(),
    )
}

/// A context whose MISP client talks to `url` with `key`, recording progress into `log`.
pub fn context(url: &str, key: &str, log: &ProgressLog) -> FunctionContext {
    context_from_config(&fn_misp_section(url, key, ""), log)
}

/// Runs `function` once against the MISP at `url`, allowing it `retries` retries of a
/// request; returns its result and the progress it sent.
pub async fn run_function(
    function: &dyn Function,
    url: &str,
    key: &str,
    retries: u32,
    given: Value,
) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let config = format!(
        "[fn_misp]\nmisp_url={url}\nmisp_key={key}\nverify_cert=false\nretries={retries}\ntimeout=10\n"
    );
    let context = context_from_config(&config, &log);
    let result = function.run(&context, &inputs(given)).await;
    (result, log.messages())
}

/// The progress messages a successful run sends: the connection step, then `steps`.
pub fn progress(steps: &[&str]) -> Vec<String> {
    std::iter::once(crate::SETTING_UP_CONNECTION)
        .chain(steps.iter().copied())
        .map(str::to_string)
        .collect()
}
