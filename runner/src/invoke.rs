//! `soar-runner invoke`: runs one function against the configured MISP, without SOAR.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Map, Value};
use soar_core::{FunctionDefinition, InputType};
use tokio_util::sync::CancellationToken;

use crate::dispatch::{self, Call, Environment, Outcome};

/// Turns `name=value` pairs into SOAR-shaped inputs, using each field's type.
pub fn inputs_from_pairs(
    definition: &FunctionDefinition,
    pairs: &[String],
    mut inputs: Map<String, Value>,
) -> anyhow::Result<Map<String, Value>> {
    for pair in pairs {
        let Some((name, text)) = pair.split_once('=') else {
            bail!("'{pair}' is not name=value");
        };
        let Some(field) = definition.input(name) else {
            let known: Vec<_> = definition.inputs.iter().map(|field| field.name).collect();
            bail!(
                "{} has no input '{name}'; its inputs: {}",
                definition.name,
                known.join(", ")
            );
        };
        let value = match field.input_type {
            InputType::Text => Value::String(text.to_string()),
            InputType::Textarea => serde_json::json!({"format": "text", "content": text}),
            InputType::Number | InputType::Datepicker | InputType::Datetimepicker => {
                match text.parse::<i64>() {
                    Ok(number) => Value::from(number),
                    Err(_) => match text.parse::<f64>() {
                        Ok(number) => Value::from(number),
                        // Passed through so the function reports the wrong type itself.
                        Err(_) => Value::String(text.to_string()),
                    },
                }
            }
            InputType::Boolean => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Value::Bool(true),
                "false" | "no" | "0" => Value::Bool(false),
                _ => bail!("input '{name}' is a boolean: use true or false, not '{text}'"),
            },
            InputType::Select => select_value(definition, name, text)?,
            InputType::Multiselect => Value::Array(
                text.split(',')
                    .map(|label| select_value(definition, name, label.trim()))
                    .collect::<anyhow::Result<_>>()?,
            ),
        };
        inputs.insert(name.to_string(), value);
    }
    Ok(inputs)
}

fn select_value(definition: &FunctionDefinition, name: &str, label: &str) -> anyhow::Result<Value> {
    let field = definition.input(name).context("field vanished")?;
    let Some(value) = field.value_by_label(label) else {
        let labels: Vec<_> = field.values.iter().map(|value| value.label).collect();
        bail!(
            "input '{name}' takes one of: {} (got '{label}')",
            labels.join(", ")
        );
    };
    Ok(serde_json::json!({"id": value.value, "name": value.label}))
}

/// Reads `--inputs-json` (a file, or `-` for stdin) into an object.
pub fn read_inputs_json(source: Option<&Path>) -> anyhow::Result<Map<String, Value>> {
    let Some(source) = source else {
        return Ok(Map::new());
    };
    let text = if source == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading inputs from stdin")?;
        text
    } else {
        std::fs::read_to_string(source)
            .with_context(|| format!("reading inputs from {}", source.display()))?
    };
    match serde_json::from_str(&text).context("the inputs JSON does not parse")? {
        Value::Object(map) => Ok(map),
        _ => bail!("the inputs JSON must be an object of input name to value"),
    }
}

/// Runs the call, printing progress to stderr; returns the outcome.
pub async fn run(environment: &Environment, function: &str, inputs: Map<String, Value>) -> Outcome {
    let call = Call {
        function: function.to_string(),
        inputs: Value::Object(inputs),
        workflow_instance_id: None,
        playbook_instance_id: None,
    };
    let progress = Arc::new(|message: String| eprintln!("progress: {message}"));
    let origin = soar_core::CallOrigin::default();
    dispatch::execute(
        environment,
        call,
        origin,
        progress,
        CancellationToken::new(),
    )
    .await
}
