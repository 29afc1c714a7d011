//! The result payload: SOAR's version 2 envelope around what a function returns.

use serde_json::{Map, Value};

/// What a function returns: the envelope's `success`, `reason` and `content`, plus extra
/// top-level keys (the search function adds `tags`, which 3.0.1 workflows read).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionOutput {
    pub success: bool,
    pub reason: Option<String>,
    pub content: Value,
    pub extra: Map<String, Value>,
}

/// The `metrics` block of the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    pub package: String,
    pub package_version: String,
    pub host: String,
    pub execution_time_ms: u64,
    /// Local time, `%Y-%m-%d %H:%M:%S`, as resilient-lib writes it.
    pub timestamp: String,
}

impl FunctionOutput {
    pub fn success(content: Value) -> FunctionOutput {
        FunctionOutput {
            success: true,
            reason: None,
            content,
            extra: Map::new(),
        }
    }

    /// A completed call whose answer is "no" (no match, a refused value): not an error.
    pub fn failure(reason: impl Into<String>, content: Value) -> FunctionOutput {
        FunctionOutput {
            success: false,
            reason: Some(reason.into()),
            content,
            extra: Map::new(),
        }
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> FunctionOutput {
        self.extra.insert(key.to_string(), value);
        self
    }
}

impl Metrics {
    /// Metrics for a call that took `execution_time_ms`, stamped with the local time now.
    pub fn now(package: &str, package_version: &str, execution_time_ms: u64) -> Metrics {
        Metrics {
            package: package.to_string(),
            package_version: package_version.to_string(),
            host: host_name().to_string(),
            execution_time_ms,
            timestamp: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }
}

/// This machine's name, asked once: it is in every result's metrics.
fn host_name() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| gethostname::gethostname().to_string_lossy().into_owned())
}

/// Builds the version 2 envelope. Extra keys never replace the envelope's own keys.
///
/// Built by moving the parts in: `json!` would copy `content` and the inputs value by value,
/// which for a large search result cost more than the rest of the call.
pub fn result_payload(output: FunctionOutput, normalized_inputs: Value, metrics: Metrics) -> Value {
    let mut metrics_map = Map::new();
    metrics_map.insert("version".into(), Value::from("1.0"));
    metrics_map.insert("package".into(), Value::from(metrics.package));
    metrics_map.insert(
        "package_version".into(),
        Value::from(metrics.package_version),
    );
    metrics_map.insert("host".into(), Value::from(metrics.host));
    metrics_map.insert(
        "execution_time_ms".into(),
        Value::from(metrics.execution_time_ms),
    );
    metrics_map.insert("timestamp".into(), Value::from(metrics.timestamp));
    let mut payload = Map::new();
    payload.insert("version".into(), Value::from(2.0));
    payload.insert("success".into(), Value::from(output.success));
    payload.insert(
        "reason".into(),
        output.reason.map_or(Value::Null, Value::from),
    );
    payload.insert("content".into(), output.content);
    payload.insert("raw".into(), Value::Null);
    payload.insert("inputs".into(), normalized_inputs);
    payload.insert("metrics".into(), Value::Object(metrics_map));
    for (key, value) in output.extra {
        payload.entry(key).or_insert(value);
    }
    Value::Object(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metrics() -> Metrics {
        Metrics {
            package: "fn-misp".into(),
            package_version: "1.0.0".into(),
            host: "host".into(),
            execution_time_ms: 12,
            timestamp: "2026-11-28 10:00:00".into(),
        }
    }

    #[test]
    fn envelope_has_every_version_2_key() {
        let payload = result_payload(
            FunctionOutput::success(json!({"Event": {"id": "1"}})),
            json!({"misp_event_name": "x"}),
            metrics(),
        );
        assert_eq!(
            payload,
            json!({
                "version": 2.0, "success": true, "reason": null,
                "content": {"Event": {"id": "1"}}, "raw": null,
                "inputs": {"misp_event_name": "x"},
                "metrics": {"version": "1.0", "package": "fn-misp", "package_version": "1.0.0",
                            "host": "host", "execution_time_ms": 12, "timestamp": "2026-11-28 10:00:00"}
            })
        );
    }

    #[test]
    fn extra_keys_sit_beside_the_envelope_but_cannot_replace_it() {
        let output = FunctionOutput::failure("no match", json!([]))
            .with_extra("tags", json!(["tlp:white"]))
            .with_extra("success", json!(true));
        let payload = result_payload(output, json!({}), metrics());
        assert_eq!(payload["tags"], json!(["tlp:white"]));
        assert_eq!(payload["success"], json!(false));
        assert_eq!(payload["reason"], json!("no match"));
    }

    #[test]
    fn metrics_timestamp_has_the_resilient_lib_format() {
        let metrics = Metrics::now("fn-misp", "1.0.0", 5);
        assert_eq!(metrics.timestamp.len(), "2026-11-28 10:00:00".len());
        assert_eq!(&metrics.timestamp[4..5], "-");
        assert_eq!(&metrics.timestamp[10..11], " ");
        assert!(!metrics.host.is_empty());
    }
}
