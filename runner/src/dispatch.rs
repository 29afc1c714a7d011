//! One function message, from its body to its final reply: parse, route by
//! `function.name`, run (a panic included), and build SOAR's reply bodies.

use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use serde_json::json;
use soar_core::config::AppConfig;
use soar_core::misp::MispClient;
use soar_core::observe::SharedObserver;
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
    /// Told of the requests functions' own HTTP clients send (the metrics, when on).
    pub request_observer: Option<SharedObserver>,
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
    /// Why, and the text of the `message_type 1` reply.
    Failed(Failure, String),
}

/// Why a call failed, as the metrics count it and the log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The function ran and failed: MISP refused, a config problem, cancelled...
    Function,
    /// The inputs were not what the function takes.
    Input,
    /// The message named a function not served here.
    UnknownFunction,
    /// The body was not a function message (not JSON, no `function.name`, no `reply-to`).
    Malformed,
    /// The message or the result was larger than `max_message_size_mb` or
    /// `max_result_size_mb` allow.
    Oversized,
    /// The function panicked: a bug in the integration.
    Panic,
}

/// Every outcome's label, in the order a person reads them.
pub const OUTCOME_LABELS: [&str; 7] = [
    "success",
    "failure",
    "input_error",
    "unknown_function",
    "malformed",
    "oversized",
    "panic",
];

impl Outcome {
    /// The outcome's label in the metrics and the log.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Completed(_) => "success",
            Outcome::Failed(failure, _) => failure.label(),
        }
    }
}

impl Failure {
    pub fn label(self) -> &'static str {
        match self {
            Failure::Function => "failure",
            Failure::Input => "input_error",
            Failure::UnknownFunction => "unknown_function",
            Failure::Malformed => "malformed",
            Failure::Oversized => "oversized",
            Failure::Panic => "panic",
        }
    }
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
        Err(error) => return Outcome::Failed(Failure::UnknownFunction, error.to_string()),
    };
    let inputs = match Inputs::from_value(call.inputs) {
        Ok(inputs) => inputs,
        Err(error) => return Outcome::Failed(Failure::Input, error.to_string()),
    };
    let context = FunctionContext::new(
        progress,
        environment.misp.clone(),
        environment.config.clone(),
        environment.soar.clone(),
        cancel.clone(),
    )
    .with_origin(origin)
    .with_request_observer(environment.request_observer.clone());
    let definition = function.definition();
    let started = Instant::now();
    let run = std::panic::AssertUnwindSafe(async {
        #[cfg(debug_assertions)]
        panic_when_a_test_asks(definition.name);
        function.run(&context, &inputs).await
    })
    .catch_unwind();
    let result = tokio::select! {
        result = run => result,
        () = cancel.cancelled() => {
            return Outcome::Failed(Failure::Function, soar_core::FunctionError::Cancelled.to_string());
        }
    };
    let output = match result {
        Ok(Ok(output)) => output,
        Ok(Err(error @ soar_core::FunctionError::Input(_))) => {
            return Outcome::Failed(Failure::Input, error.to_string());
        }
        Ok(Err(error)) => return Outcome::Failed(Failure::Function, error.to_string()),
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no detail".to_string());
            tracing::error!(function = definition.name, detail, "function panicked");
            return Outcome::Failed(
                Failure::Panic,
                format!(
                    "{} failed unexpectedly (an internal error in the integration, not in SOAR or MISP): {detail}",
                    definition.name
                ),
            );
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
        return Outcome::Failed(
            Failure::Oversized,
            format!(
                "{}'s result is {size} bytes, more than the {} bytes allowed ([resilient] max_result_size_mb); narrow the request",
                definition.name, environment.max_result_size
            ),
        );
    }
    Outcome::Completed(payload)
}

/// Debug builds only: the end-to-end tests make a call panic by naming its function in
/// `SOAR_RUNNER_TEST_PANIC`, as no shipped function panics on purpose. Release builds
/// (and so `scripts/build-static` and the benchmark) have no such knob.
#[cfg(debug_assertions)]
fn panic_when_a_test_asks(function: &str) {
    if std::env::var_os("SOAR_RUNNER_TEST_PANIC").is_some_and(|name| name == function) {
        panic!("SOAR_RUNNER_TEST_PANIC names {function}");
    }
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
        Outcome::Failed(_, text) => {
            json!({"message_type": 1, "message": text, "complete": true}).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use soar_core::{AppInfo, Function, FunctionDefinition, FunctionError, FunctionOutput};

    static APP: AppInfo = AppInfo {
        name: "test_app",
        package: "test-app",
        version: "1.0.0",
    };

    /// A function that does what its `do` input says.
    struct Obedient;

    static OBEDIENT: FunctionDefinition = FunctionDefinition {
        name: "obedient",
        display_name: "Obedient",
        description: "",
        destination: "test",
        uuid: "00000000-0000-0000-0000-000000000000",
        app: &APP,
        inputs: &[],
    };

    #[async_trait::async_trait]
    impl Function for Obedient {
        fn definition(&self) -> &'static FunctionDefinition {
            &OBEDIENT
        }

        async fn run(
            &self,
            _context: &FunctionContext,
            inputs: &Inputs,
        ) -> Result<FunctionOutput, FunctionError> {
            match inputs.required_text("do")?.as_str() {
                "fail" => Err(FunctionError::integration("it failed")),
                "panic" => panic!("asked to panic"),
                "grow" => Ok(FunctionOutput::success(json!("x".repeat(2000)))),
                _ => Ok(FunctionOutput::success(json!({"done": true}))),
            }
        }
    }

    fn environment() -> Environment {
        Environment {
            registry: Registry::from_functions([&Obedient as &dyn Function]).unwrap(),
            config: Arc::new(AppConfig::parse("", "app.config").unwrap()),
            misp: Err("no MISP here".to_string()),
            soar: None,
            max_result_size: 1000,
            request_observer: None,
        }
    }

    async fn outcome_label(function: &str, inputs: Value) -> &'static str {
        let call = Call {
            function: function.to_string(),
            inputs,
            workflow_instance_id: None,
            playbook_instance_id: None,
        };
        let progress: ProgressSink = Arc::new(|_| {});
        let outcome = execute(
            &environment(),
            call,
            CallOrigin::default(),
            progress,
            CancellationToken::new(),
        )
        .await;
        let label = outcome.label();
        assert!(OUTCOME_LABELS.contains(&label), "{label} is listed");
        label
    }

    #[tokio::test]
    async fn each_way_a_call_ends_has_its_own_outcome() {
        assert_eq!(
            outcome_label("obedient", json!({"do": "work"})).await,
            "success"
        );
        assert_eq!(
            outcome_label("obedient", json!({"do": "fail"})).await,
            "failure"
        );
        assert_eq!(outcome_label("obedient", json!({})).await, "input_error");
        assert_eq!(outcome_label("obedient", json!([1])).await, "input_error");
        assert_eq!(outcome_label("nobody", json!({})).await, "unknown_function");
        assert_eq!(
            outcome_label("obedient", json!({"do": "panic"})).await,
            "panic"
        );
        assert_eq!(
            outcome_label("obedient", json!({"do": "grow"})).await,
            "oversized"
        );
    }

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
        let failed: Value = serde_json::from_str(&final_body(&Outcome::Failed(
            Failure::Function,
            "bad".into(),
        )))
        .unwrap();
        assert_eq!(
            failed,
            json!({"message_type": 1, "message": "bad", "complete": true})
        );
    }
}
