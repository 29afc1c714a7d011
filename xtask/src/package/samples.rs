//! Payload samples: each function's `output_json_example.json` and `output_json_schema.json`
//! (resilient-sdk's `payload_samples/<function>/`), which `package` puts into the export as
//! `output_json_example` and `output_json_schema`, so that SOAR's playbook editor can offer
//! the result's fields.
//!
//! The original six fn_misp functions keep the original's samples. Every other function's
//! samples come from a real call through `soar_core` against misp-sim or urlscan-sim
//! ([`generate`], `cargo xtask package --write-samples`); the schema is made from the
//! example by the rule resilient-sdk's `codegen --gather-results` uses ([`schema_of`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use soar_core::config::AppConfig;
use soar_core::misp::{MispClient, MispConfig};
use soar_core::{
    FunctionContext, Inputs, Metrics, ProgressSink, Registry, SoarRest, async_trait, result_payload,
};
use tokio_util::sync::CancellationToken;

use super::pyjson::Json;

/// The folder of an app's samples, under `customizations/<app>/`.
pub const PAYLOAD_SAMPLES_DIR: &str = "payload_samples";
pub const EXAMPLE_FILE: &str = "output_json_example.json";
pub const SCHEMA_FILE: &str = "output_json_schema.json";

/// The `$schema` resilient-sdk writes at the top of a generated schema.
pub const SCHEMA_URI: &str = "http://json-schema.org/draft-06/schema";

/// The functions whose samples are the original fn_misp 3.0.2's, never regenerated.
pub const ORIGINAL_FUNCTIONS: &[&str] = &[
    "misp_create_attribute",
    "misp_create_event",
    "misp_create_sighting",
    "misp_create_tag",
    "misp_search_attribute",
    "misp_sighting_list",
];

/// One function's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadSample {
    pub example: Json,
    pub schema: Json,
}

/// The folder of one function's samples, relative to the workspace root.
pub fn sample_dir(app: &str, function: &str) -> PathBuf {
    Path::new(crate::CUSTOMIZATIONS_DIR)
        .join(app)
        .join(PAYLOAD_SAMPLES_DIR)
        .join(function)
}

/// Reads the samples of `function`; `None` when either file is missing, as resilient-sdk
/// skips such a function.
pub fn load_sample(root: &Path, app: &str, function: &str) -> Result<Option<PayloadSample>> {
    let dir = root.join(sample_dir(app, function));
    let (example_path, schema_path) = (dir.join(EXAMPLE_FILE), dir.join(SCHEMA_FILE));
    if !example_path.is_file() || !schema_path.is_file() {
        return Ok(None);
    }
    let read = |path: &Path| -> Result<Json> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Json::parse(&text).with_context(|| format!("{} is not JSON", path.display()))
    };
    Ok(Some(PayloadSample {
        example: read(&example_path)?,
        schema: read(&schema_path)?,
    }))
}

/// The JSON schema of `example` as resilient-sdk makes it with genson: `$schema` first, no
/// `required`, a `null` accepting anything (`{}`), an empty array without `items`, mixed
/// scalar types as a sorted `type` list, mixed kinds as `anyOf`.
pub fn schema_of(example: &Json) -> Json {
    let mut schema = vec![("$schema".to_string(), Json::string(SCHEMA_URI))];
    if let Json::Object(pairs) = Node::of(example).to_schema() {
        schema.extend(pairs);
    }
    Json::Object(schema)
}

/// Runs every function of `apps` that is not one of [`ORIGINAL_FUNCTIONS`] once against
/// fresh simulators and returns the result payload of each, by function name. Fails when a
/// function has no sample call here or its call does not succeed.
pub async fn generate(registry: &Registry, functions: &[&str]) -> Result<BTreeMap<String, Json>> {
    let misp = misp_sim::MispSim::start(misp_sim::SimOptions::default()).await;
    let urlscan = urlscan_sim::UrlscanSim::start(urlscan_sim::SimOptions::default())
        .await
        .map_err(|error| anyhow!("urlscan-sim does not start: {error}"))?;
    let config_text = format!(
        "[fn_misp]\nmisp_url={}\nmisp_key={}\nverify_cert=false\nretries=0\ntimeout=10\n\n\
         [urlscanio]\nurlscanio_api_key=sample\nurlscanio_report_url={}\nurlscanio_screenshot_url={}\npoll_interval=1\n",
        misp.url(),
        misp.key(),
        urlscan.api_url(),
        urlscan.screenshot_url(),
    );
    let config = AppConfig::parse(&config_text, "payload sample app.config")
        .map_err(|error| anyhow!("the sample app.config: {error}"))?;
    let client = MispConfig::from_app_config(&config)
        .map_err(|error| error.to_string())
        .and_then(|misp| MispClient::new(misp).map_err(|error| error.to_string()))
        .map(Arc::new);
    let progress: ProgressSink = Arc::new(|_message: String| {});
    let context = FunctionContext::new(
        progress,
        client,
        Arc::new(config),
        Some(Arc::new(SampleSoar)),
        CancellationToken::new(),
    );

    let wanted: Vec<&str> = functions
        .iter()
        .copied()
        .filter(|name| !ORIGINAL_FUNCTIONS.contains(name))
        .collect();
    let mut payloads = BTreeMap::new();
    // The calls build on each other (an event, its attributes, a tag to remove), so they
    // run in this order; a function added later needs a call here.
    let event_id = misp.seed_event(json!({
        "info": "Phishing campaign seen in SOAR incident 2095",
        "threat_level_id": "2",
        "analysis": "1",
        "distribution": "0",
    }));
    misp.seed_warninglist(json!({
        "name": "List of known Google DNS resolvers", "type": "cidr", "list": ["8.8.8.0/24"],
        "matching_attributes": ["ip-src", "ip-dst"], "category": "known",
    }));
    let event_id: i64 = event_id
        .parse()
        .with_context(|| format!("misp-sim's event id {event_id} is not a number"))?;
    let calls: Vec<(&str, Value)> = vec![
        (
            "misp_add_attributes",
            json!({"misp_event_id": event_id,
                   "misp_values": {"format": "text", "content": "203.0.113.7\nhxxps://login-example[.]net/verify\nlogin-example.net"},
                   "misp_category": {"id": 1, "name": "Network activity"}}),
        ),
        (
            "misp_add_object",
            json!({"misp_event_id": event_id, "misp_object_template": "domain-ip",
                   "misp_object_attributes": {"format": "text", "content": "{\"domain\": \"login-example.net\", \"ip\": \"203.0.113.8\"}"},
                   "misp_comment": "Resolved by the phishing page"}),
        ),
        ("misp_add_sighting", json!({"misp_sighting": "203.0.113.7"})),
        (
            "misp_check_warninglist",
            json!({"misp_values": {"format": "text", "content": "8.8.8.8\n203.0.113.7"}}),
        ),
        (
            "misp_update_attribute",
            json!({"misp_event_id": event_id, "misp_attribute_value": "203.0.113.7",
                   "misp_comment": "Phishing landing page", "misp_to_ids": true}),
        ),
        ("misp_get_event", json!({"misp_event_id": event_id})),
        (
            "misp_search_events",
            json!({"misp_attribute_value": "203.0.113.7"}),
        ),
        (
            "misp_verdict",
            json!({"misp_attribute_value": "203.0.113.7", "misp_artifact_type": "IP Address"}),
        ),
        ("misp_publish_event", json!({"misp_event_id": event_id})),
        (
            "misp_create_tag",
            json!({"misp_tag_type": {"id": 1, "name": "Event"}, "misp_tag_name": "tlp:amber",
                   "misp_event_id": event_id}),
        ),
        (
            "misp_remove_tag",
            json!({"misp_tag_type": {"id": 1, "name": "Event"}, "misp_tag_name": "tlp:amber",
                   "misp_event_id": event_id}),
        ),
        (
            "misp_delete_attribute",
            json!({"misp_event_id": event_id, "misp_attribute_value": "203.0.113.7"}),
        ),
        (
            "urlscanio",
            json!({"urlscanio_url": "https://login-example.net/verify", "urlscanio_public": false,
                   "urlscanio_useragent": "", "urlscanio_referer": "", "incident_id": 2095}),
        ),
    ];
    for (name, given) in calls {
        let function = registry
            .get(name)
            .map_err(|error| anyhow!("sample call of {name}: {error}"))?;
        let inputs = Inputs::from_value(given)
            .map_err(|error| anyhow!("the sample inputs of {name}: {error}"))?;
        let started = std::time::Instant::now();
        let output = function
            .run(&context, &inputs)
            .await
            .map_err(|error| anyhow!("the sample call of {name} failed: {error}"))?;
        if !wanted.contains(&name) {
            continue;
        }
        if !output.success {
            bail!(
                "the sample call of {name} did not succeed: {}",
                output.reason.unwrap_or_default()
            );
        }
        let definition = function.definition();
        let mut metrics = Metrics::now(
            definition.app.package,
            definition.app.version,
            started.elapsed().as_millis() as u64,
        );
        // Not this machine's name in a checked-in file.
        metrics.host = "local".to_string();
        let payload = result_payload(output, inputs.normalized(), metrics);
        payloads.insert(name.to_string(), envelope_order(&payload));
    }
    let missing: Vec<&&str> = wanted
        .iter()
        .filter(|name| !payloads.contains_key(**name))
        .collect();
    if !missing.is_empty() {
        bail!("no sample call for {missing:?}: add one to xtask/src/package/samples.rs `generate`");
    }
    Ok(payloads)
}

/// Writes the example and the schema of each payload under `customizations/<app>/`;
/// returns the paths written.
pub fn write_samples(
    root: &Path,
    app_of: &BTreeMap<String, String>,
    payloads: &BTreeMap<String, Json>,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (function, example) in payloads {
        let app = app_of
            .get(function)
            .ok_or_else(|| anyhow!("function {function} belongs to no app"))?;
        let dir = root.join(sample_dir(app, function));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for (file, json) in [
            (EXAMPLE_FILE, example.clone()),
            (SCHEMA_FILE, schema_of(example)),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, json.to_python_indented())
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The result payload with its top-level keys in the order resilient-lib builds them
/// (`serde_json::Value` sorts them); nested objects stay sorted.
fn envelope_order(payload: &Value) -> Json {
    const ORDER: &[&str] = &[
        "version", "success", "reason", "content", "raw", "inputs", "metrics",
    ];
    let Json::Object(mut pairs) = Json::from(payload) else {
        return Json::from(payload);
    };
    pairs.sort_by_key(|(key, _)| {
        ORDER
            .iter()
            .position(|name| name == key)
            .unwrap_or(ORDER.len())
    });
    let Some(Json::Object(metrics)) = pairs
        .iter_mut()
        .find(|(key, _)| key == "metrics")
        .map(|(_, value)| value)
    else {
        return Json::Object(pairs);
    };
    const METRICS: &[&str] = &[
        "version",
        "package",
        "package_version",
        "host",
        "execution_time_ms",
        "timestamp",
    ];
    metrics.sort_by_key(|(key, _)| METRICS.iter().position(|name| name == key));
    Json::Object(pairs)
}

/// SOAR for the urlscanio sample: accepts the screenshot as SOAR's attachment endpoint does.
struct SampleSoar;

#[async_trait]
impl SoarRest for SampleSoar {
    async fn upload_incident_attachment(
        &self,
        incident_id: i64,
        file_name: &str,
        content_type: &str,
        content: Vec<u8>,
    ) -> Result<Value, String> {
        Ok(json!({"id": 1, "inc_id": incident_id, "name": file_name,
                  "content_type": content_type, "size": content.len()}))
    }
}

/// genson's schema node: the kinds of value seen at one place, in the order first seen.
#[derive(Debug, Default)]
struct Node {
    kinds: Vec<Kind>,
}

#[derive(Debug)]
enum Kind {
    Null,
    Boolean,
    /// `true` once a float was seen: genson's `number`, else `integer`.
    Number {
        float: bool,
    },
    String,
    Array(Box<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    fn of(value: &Json) -> Node {
        let mut node = Node::default();
        node.add(value);
        node
    }

    fn add(&mut self, value: &Json) {
        match value {
            Json::Null => {
                if !self.kinds.iter().any(|kind| matches!(kind, Kind::Null)) {
                    self.kinds.push(Kind::Null);
                }
            }
            Json::Bool(_) => {
                if !self.kinds.iter().any(|kind| matches!(kind, Kind::Boolean)) {
                    self.kinds.push(Kind::Boolean);
                }
            }
            Json::Number(number) => {
                let is_float = number.is_f64();
                match self
                    .kinds
                    .iter_mut()
                    .find(|kind| matches!(kind, Kind::Number { .. }))
                {
                    Some(Kind::Number { float }) => *float |= is_float,
                    _ => self.kinds.push(Kind::Number { float: is_float }),
                }
            }
            Json::String(_) => {
                if !self.kinds.iter().any(|kind| matches!(kind, Kind::String)) {
                    self.kinds.push(Kind::String);
                }
            }
            Json::Array(items) => {
                let position = match self
                    .kinds
                    .iter()
                    .position(|kind| matches!(kind, Kind::Array(_)))
                {
                    Some(position) => position,
                    None => {
                        self.kinds.push(Kind::Array(Box::default()));
                        self.kinds.len() - 1
                    }
                };
                if let Kind::Array(node) = &mut self.kinds[position] {
                    for item in items {
                        node.add(item);
                    }
                }
            }
            Json::Object(pairs) => {
                let position = match self
                    .kinds
                    .iter()
                    .position(|kind| matches!(kind, Kind::Object(_)))
                {
                    Some(position) => position,
                    None => {
                        self.kinds.push(Kind::Object(Vec::new()));
                        self.kinds.len() - 1
                    }
                };
                if let Kind::Object(properties) = &mut self.kinds[position] {
                    for (key, value) in pairs {
                        match properties.iter_mut().find(|(name, _)| name == key) {
                            Some((_, node)) => node.add(value),
                            None => properties.push((key.clone(), Node::of(value))),
                        }
                    }
                }
            }
        }
    }

    /// resilient-sdk's `CustomSchemaNode.to_schema`.
    fn to_schema(&self) -> Json {
        let mut types: Vec<&str> = Vec::new();
        let mut schemas: Vec<Json> = Vec::new();
        for kind in &self.kinds {
            let schema = kind.to_schema();
            match &schema {
                Json::Object(pairs) if pairs.len() == 1 && pairs[0].0 == "type" => {
                    if let Json::String(name) = &pairs[0].1 {
                        types.push(type_name(name));
                    }
                }
                _ => schemas.push(schema),
            }
        }
        if types.len() == 1 && types[0] == "null" {
            // A value seen only as null accepts anything.
            return Json::Object(Vec::new());
        }
        if !types.is_empty() {
            types.sort_unstable();
            types.dedup();
            let type_value = match types.as_slice() {
                [only] => Json::string(*only),
                many => Json::Array(many.iter().map(|name| Json::string(*name)).collect()),
            };
            schemas.insert(0, Json::object([("type", type_value)]));
        }
        match schemas.len() {
            0 => Json::Object(Vec::new()),
            1 => schemas.remove(0),
            _ => Json::object([("anyOf", Json::Array(schemas))]),
        }
    }
}

impl Kind {
    fn to_schema(&self) -> Json {
        let type_only = |name: &str| Json::object([("type", Json::string(name))]);
        match self {
            Kind::Null => type_only("null"),
            Kind::Boolean => type_only("boolean"),
            Kind::Number { float: true } => type_only("number"),
            Kind::Number { float: false } => type_only("integer"),
            Kind::String => type_only("string"),
            Kind::Array(items) if items.kinds.is_empty() => type_only("array"),
            Kind::Array(items) => Json::object([
                ("type", Json::string("array")),
                ("items", items.to_schema()),
            ]),
            Kind::Object(properties) if properties.is_empty() => type_only("object"),
            Kind::Object(properties) => Json::object([
                ("type", Json::string("object")),
                (
                    "properties",
                    Json::Object(
                        properties
                            .iter()
                            .map(|(key, node)| (key.clone(), node.to_schema()))
                            .collect(),
                    ),
                ),
            ]),
        }
    }
}

fn type_name(name: &str) -> &'static str {
    match name {
        "null" => "null",
        "boolean" => "boolean",
        "number" => "number",
        "integer" => "integer",
        "string" => "string",
        "array" => "array",
        _ => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Json {
        Json::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn schema_rule_matches_resilient_sdks_genson() {
        // The expected text is what resilient-sdk 51.0.9.1's CustomSchemaBuilder, with
        // main_genson_builder_overwrites, printed for the same object.
        let example = parse(
            r#"{"a": [], "b": [1, 2.5], "c": [{"x": 1}, {"y": null}], "d": null, "e": [1, "a"],
                "f": {}, "g": [null, "s"], "h": [{"x": 1}, "str"]}"#,
        );
        assert_eq!(
            schema_of(&example).to_python(super::super::pyjson::KeyOrder::AsIs),
            r#"{"$schema": "http://json-schema.org/draft-06/schema", "type": "object", "properties": {"a": {"type": "array"}, "b": {"type": "array", "items": {"type": "number"}}, "c": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {}}}}, "d": {}, "e": {"type": "array", "items": {"type": ["integer", "string"]}}, "f": {"type": "object"}, "g": {"type": "array", "items": {"type": ["null", "string"]}}, "h": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"x": {"type": "integer"}}}]}}}}"#
        );
    }
}
