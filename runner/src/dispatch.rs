//! One function message, from its body to its final reply: parse, route by
//! `function.name`, run (a panic included), and build SOAR's reply bodies.

use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use serde_json::json;
use soar_core::config::AppConfig;
use soar_core::misp::MispClient;
use soar_core::{
    CallOrigin, FunctionContext, Inputs, Metrics, ProgressSink, Registry, SoarRest, result_payload,
};
use tokio_util::sync::CancellationToken;

/// What every function call shares: the registry, the config, the MISP client.
#[derive(Clone)]
pub struct Environment {
    pub registry: Registry,
    pub config: Arc<AppConfig>,
    pub misp: Result<Arc<MispClient>, String>,
    pub soar: Option<Arc<dyn SoarRest>>,
    pub max_result_size: usize,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Environment")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The result payload (the `results` of the final reply) as JSON text, serialized once:
    /// its size is checked on that text and the final reply is built around it.
    Completed(String),
    /// The text of a `message_type 1` reply.
    Failed(String),
}

// The body parser lives in soar-core so that the fuzz targets can reach it.
pub use soar_core::message::{Call, parse_call};

/// Runs one call to completion. Never panics: a panicking function becomes a failure.
pub async fn execute(
    environment: &Environment,
    call: Call,
    origin: CallOrigin,
    progress: ProgressSink,
    cancel: CancellationToken,
) -> Outcome {
    let function = match environment.registry.get(&call.function) {
        Ok(function) => function,
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    let inputs = match Inputs::from_value(call.inputs) {
        Ok(inputs) => inputs,
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    let context = FunctionContext::new(
        progress,
        environment.misp.clone(),
        environment.config.clone(),
        environment.soar.clone(),
        cancel.clone(),
    )
    .with_origin(origin);
    let definition = function.definition();
    let started = Instant::now();
    let run = std::panic::AssertUnwindSafe(function.run(&context, &inputs)).catch_unwind();
    let result = tokio::select! {
        result = run => result,
        () = cancel.cancelled() => return Outcome::Failed(soar_core::FunctionError::Cancelled.to_string()),
    };
    let output = match result {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => return Outcome::Failed(error.to_string()),
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no detail".to_string());
            tracing::error!(function = definition.name, detail, "function panicked");
            return Outcome::Failed(format!(
                "{} failed unexpectedly (an internal error in the integration, not in SOAR or MISP): {detail}",
                definition.name
            ));
        }
    };
    let metrics = Metrics::now(
        definition.app.package,
        definition.app.version,
        started.elapsed().as_millis() as u64,
    );
    let payload = result_payload(output, inputs.normalized(), metrics).to_string();
    let size = payload.len();
    if size > environment.max_result_size {
        return Outcome::Failed(format!(
            "{}'s result is {size} bytes, more than the {} bytes allowed ([resilient] max_result_size_mb); narrow the request",
            definition.name, environment.max_result_size
        ));
    }
    Outcome::Completed(payload)
}

/// `{"message_type": 0, "message": …, "complete": false}`.
pub fn progress_body(text: &str) -> String {
    let text = if text.is_empty() { "(No status)" } else { text };
    json!({"message_type": 0, "message": text, "complete": false}).to_string()
}

/// The final reply for an outcome.
pub fn final_body(outcome: &Outcome) -> String {
    match outcome {
        // The same keys as resilient-circuits' reply; `results` is already JSON text.
        Outcome::Completed(results) => format!(
            r#"{{"message_type":0,"message":"Completed","complete":true,"results":{results}}}"#
        ),
        Outcome::Failed(text) => {
            json!({"message_type": 1, "message": text, "complete": true}).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn parse_call_reads_function_name_and_inputs() {
        let body =
            br#"{"function": {"name": "misp_create_event"}, "inputs": {"misp_event_name": "x"},
            "workflow_instance": {"workflow_instance_id": 80}}"#;
        let call = parse_call(body).unwrap();
        assert_eq!(call.function, "misp_create_event");
        assert_eq!(call.inputs, json!({"misp_event_name": "x"}));
        assert_eq!(call.workflow_instance_id, Some(80));
        assert_eq!(call.playbook_instance_id, None);
        let from_playbook = parse_call(
            br#"{"function": {"name": "f"}, "inputs": {}, "workflow_instance": null,
                "playbook_instance": {"playbook_instance_id": 31}}"#,
        )
        .unwrap();
        assert_eq!(from_playbook.playbook_instance_id, Some(31));
        assert_eq!(from_playbook.workflow_instance_id, None);
    }

    #[test]
    fn parse_call_explains_bad_bodies() {
        assert!(
            parse_call(b"{not json")
                .unwrap_err()
                .starts_with("the message body is not valid JSON")
        );
        assert_eq!(
            parse_call(b"[1]").unwrap_err(),
            "the message body is not a JSON object"
        );
        assert!(
            parse_call(br#"{"inputs": {}}"#)
                .unwrap_err()
                .contains("function.name is missing")
        );
        assert!(parse_call(&[0xff, 0xfe]).unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn reply_bodies_have_soar_shapes() {
        let progress: Value =
            serde_json::from_str(&progress_body("Setting up connection to MISP")).unwrap();
        assert_eq!(
            progress,
            json!({"message_type": 0, "message": "Setting up connection to MISP", "complete": false})
        );
        let empty: Value = serde_json::from_str(&progress_body("")).unwrap();
        assert_eq!(empty["message"], "(No status)");
        let done: Value = serde_json::from_str(&final_body(&Outcome::Completed(
            r#"{"success":true}"#.into(),
        )))
        .unwrap();
        assert_eq!(
            done,
            json!({"message_type": 0, "message": "Completed", "complete": true, "results": {"success": true}})
        );
        let failed: Value =
            serde_json::from_str(&final_body(&Outcome::Failed("bad".into()))).unwrap();
        assert_eq!(
            failed,
            json!({"message_type": 1, "message": "bad", "complete": true})
        );
    }
}
