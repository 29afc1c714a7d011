//! The `misp_add_sighting` function: records a sighting, a false positive or an expiration
//! of a value (on every attribute that has it) or of one attribute, with a source and a time.

use std::time::{SystemTime, UNIX_EPOCH};

use fn_misp::attribute::AttributeRef;
use fn_misp::{APP, DESTINATION, MISP_ATTRIBUTE_ID, MISP_ATTRIBUTE_UUID, MISP_SIGHTING};
use serde_json::{Value, json};
use soar_core::misp::{Method, MispClient, MispError};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputError,
    InputField, InputType, Inputs, SelectValue,
};

/// Adds a sighting (`POST /sightings/add`, or `/sightings/add/{id|uuid}` for one attribute)
/// and returns MISP's `{"Sighting": …}`.
#[derive(Debug, Clone, Copy)]
pub struct MispAddSighting;

/// `__function/misp_sighting_type`: MISP's three kinds of sighting.
pub static MISP_SIGHTING_TYPE: InputField = InputField::select(
    "misp_sighting_type",
    "09164140-3db4-45ef-9337-cb8884d2935c",
    &[
        SelectValue::new("Sighting", 5101, "d5191b71-84e6-479c-a1aa-018c8d326fe5").as_default(),
        SelectValue::new("False positive", 5102, "bd052852-108e-4e93-b8c9-b673a9be7569"),
        SelectValue::new("Expiration", 5103, "72fad757-f4c1-4f49-8e6a-ba2f9a724bbf"),
    ],
)
.tooltip("Sighting (the default), False positive, or Expiration (replaces your organisation's earlier expiration of the attribute)");

/// `__function/misp_sighting_source`: where the value was seen.
pub static MISP_SIGHTING_SOURCE: InputField = InputField::text(
    "misp_sighting_source",
    "895ecab9-2b0f-4593-9e8d-abb8d1751930",
)
.tooltip("Where it was seen; IBM QRadar SOAR when empty");

/// `__function/misp_sighting_time`: when the value was seen.
pub static MISP_SIGHTING_TIME: InputField = InputField::new(
    "misp_sighting_time",
    InputType::Datetimepicker,
    "94d5b3a1-0717-4dfd-a765-8da8673e52f3",
)
.tooltip("When it was seen; now when empty");

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_add_sighting",
    display_name: "MISP Add Sighting",
    description: "Records a sighting, a false positive or an expiration in MISP: of a value (misp_sighting, on every attribute the API key's user can see with that value) or of one attribute (misp_attribute_id or misp_attribute_uuid, which win over the value), with a source (IBM QRadar SOAR by default) and a time (now by default, to the second). Sightings add up, so a request retried after a lost answer is sent again only when MISP has no sighting of the same type, source and second on that value or attribute.",
    destination: DESTINATION,
    uuid: "a4cc4419-9dda-4df1-9cd8-f88728e68faf",
    app: &APP,
    inputs: &[
        MISP_SIGHTING,
        MISP_ATTRIBUTE_ID,
        MISP_ATTRIBUTE_UUID,
        MISP_SIGHTING_TYPE,
        MISP_SIGHTING_SOURCE,
        MISP_SIGHTING_TIME,
    ],
};

soar_core::register_function!(MispAddSighting);

/// The source when none is given, as fn_misp 3.0.2's create_sighting sent it.
pub const DEFAULT_SOURCE: &str = "IBM QRadar SOAR";

/// The request the inputs describe, checked before MISP is called.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SightingRequest {
    target: Target,
    kind: SightingKind,
    source: String,
    /// Epoch seconds.
    timestamp: i64,
}

/// What is sighted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Every attribute with this value (value1 or value2 of a composite).
    Value(String),
    /// One attribute: [`AttributeRef::Id`] or [`AttributeRef::Uuid`].
    Attribute(AttributeRef),
}

/// MISP's sighting types, `0`, `1` and `2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SightingKind {
    Sighting,
    FalsePositive,
    Expiration,
}

#[soar_core::async_trait]
impl Function for MispAddSighting {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let request = sighting_request(inputs, now_epoch_seconds())?;
        let client = fn_misp::connect(context)?;
        context.progress(format!(
            "Adding {} of {} (source {})",
            request.kind.with_article(),
            request.target.describe(),
            request.source
        ));
        let reference;
        let segments: Vec<&str> = match &request.target {
            Target::Value(_) => vec!["sightings", "add"],
            Target::Attribute(attribute) => {
                reference = attribute_reference(attribute);
                vec!["sightings", "add", reference.as_str()]
            }
        };
        let request_ref = &request;
        let check = move || async move { find_sighting(client, request_ref).await };
        let answer = match client
            .change_checked(Method::POST, &segments, Some(&request.body()), check)
            .await
        {
            Ok(answer) => answer,
            // MISP's HTTP-200 "Could not add the Sighting. Reason: …", or a 4xx envelope.
            Err(rejected @ MispError::Rejected { .. }) => {
                let output = fn_misp::rejection_as_failure(rejected)?;
                context.progress(format!(
                    "MISP did not add the {}: {}",
                    request.kind.label().to_lowercase(),
                    output.reason.as_deref().unwrap_or("no reason given")
                ));
                return Ok(with_request(output, &request));
            }
            Err(MispError::Forbidden {
                status, message, ..
            }) => {
                return Err(FunctionError::integration(format!(
                    "MISP refused the sighting (HTTP {status}): {message} (adding sightings needs a role with the sighting permission, perm_sighting)"
                )));
            }
            Err(other) => return Err(other.into()),
        };
        if answer
            .get("Sighting")
            .is_none_or(|found| !found.is_object())
        {
            return Err(MispError::InvalidResponse {
                path: format!("/{}", segments.join("/")),
                problem: "the answer has no Sighting object".to_string(),
            }
            .into());
        }
        context.progress(format!("{} added", request.kind.label()));
        Ok(with_request(FunctionOutput::success(answer), &request))
    }
}

impl SightingRequest {
    /// The body of `sightings/add`; type and time as text, as MISP's document has them (MISP
    /// replaces an earlier expiration only for the text "2").
    fn body(&self) -> Value {
        let mut body = json!({
            "type": self.kind.code(),
            "source": self.source,
            "timestamp": self.timestamp.to_string(),
        });
        if let Target::Value(value) = &self.target {
            body["value"] = json!(value);
        }
        body
    }

    /// Whether a sighting row (MISP's `Sighting` object, with the sighted `value`) is this
    /// request's sighting.
    fn is_sighted_by(&self, row: &Value) -> bool {
        let text = |name: &str| match row.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => String::new(),
        };
        let same_value = match &self.target {
            Target::Value(value) => {
                let sighted = text("value");
                sighted == *value || sighted.split('|').any(|part| part == value)
            }
            // Asked for by attribute already.
            Target::Attribute(_) => true,
        };
        same_value
            && text("type") == self.kind.code()
            && text("source") == self.source
            && text("date_sighting") == self.timestamp.to_string()
    }
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Value(value) => value.clone(),
            Target::Attribute(attribute) => attribute.describe(),
        }
    }
}

impl SightingKind {
    fn from_label(label: &str) -> Option<SightingKind> {
        match MISP_SIGHTING_TYPE.value_by_label(label)?.label {
            "Sighting" => Some(SightingKind::Sighting),
            "False positive" => Some(SightingKind::FalsePositive),
            "Expiration" => Some(SightingKind::Expiration),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            SightingKind::Sighting => "0",
            SightingKind::FalsePositive => "1",
            SightingKind::Expiration => "2",
        }
    }

    /// `a sighting`, `a false positive`, `an expiration`, for progress messages.
    fn with_article(self) -> &'static str {
        match self {
            SightingKind::Sighting => "a sighting",
            SightingKind::FalsePositive => "a false positive",
            SightingKind::Expiration => "an expiration",
        }
    }

    fn label(self) -> &'static str {
        match self {
            SightingKind::Sighting => "Sighting",
            SightingKind::FalsePositive => "False positive",
            SightingKind::Expiration => "Expiration",
        }
    }
}

fn sighting_request(inputs: &Inputs, now: i64) -> Result<SightingRequest, FunctionError> {
    let names_attribute = inputs.integer(MISP_ATTRIBUTE_ID.name)?.is_some()
        || inputs.text(MISP_ATTRIBUTE_UUID.name)?.is_some();
    let target = if names_attribute {
        Target::Attribute(AttributeRef::from_inputs(inputs)?)
    } else {
        match inputs.text(MISP_SIGHTING.name)? {
            Some(value) => Target::Value(value),
            None => {
                return Err(InputError::Missing {
                    field: format!(
                        "{}' or '{}' or '{}",
                        MISP_SIGHTING.name, MISP_ATTRIBUTE_ID.name, MISP_ATTRIBUTE_UUID.name
                    ),
                }
                .into());
            }
        }
    };
    let kind = match inputs.select(MISP_SIGHTING_TYPE.name)? {
        None => SightingKind::Sighting,
        Some(label) => SightingKind::from_label(&label).ok_or_else(|| InputError::Invalid {
            field: MISP_SIGHTING_TYPE.name.to_string(),
            value: format!("{label:?}"),
            problem: "must be Sighting, False positive or Expiration".to_string(),
        })?,
    };
    let source = inputs
        .text(MISP_SIGHTING_SOURCE.name)?
        .map(|source| source.trim().to_string())
        .filter(|source| !source.is_empty())
        .unwrap_or_else(|| DEFAULT_SOURCE.to_string());
    let timestamp = match inputs.epoch_millis(MISP_SIGHTING_TIME.name)? {
        Some(millis) => millis.div_euclid(1000),
        None => now,
    };
    Ok(SightingRequest {
        target,
        kind,
        source,
        timestamp,
    })
}

/// The path segment `sightings/add/{id|uuid}` takes.
fn attribute_reference(attribute: &AttributeRef) -> String {
    match attribute {
        AttributeRef::Id(id) => id.to_string(),
        AttributeRef::Uuid(uuid) => uuid.clone(),
        // `sighting_request` names attributes by id or UUID only.
        AttributeRef::ValueInEvent { value, .. } => value.clone(),
    }
}

/// The retry check: this request's sighting (same type, source and second, on the attribute or
/// on an attribute with the value) found with `sightings/restSearch`.
async fn find_sighting(
    client: &MispClient,
    request: &SightingRequest,
) -> Result<Option<Value>, MispError> {
    let mut query = json!({
        "type": request.kind.code(),
        "source": request.source,
        "from": request.timestamp,
        "to": request.timestamp,
    });
    let segments: &[&str] = match &request.target {
        Target::Value(_) => &["sightings", "restSearch"],
        Target::Attribute(attribute) => {
            match attribute {
                // MISP takes only a JSON number here.
                AttributeRef::Id(id) => query["id"] = json!(id),
                other => query["uuid"] = json!(attribute_reference(other)),
            }
            &["sightings", "restSearch", "attribute"]
        }
    };
    let found = client
        .request(
            Method::POST,
            segments,
            Some(&query),
            soar_core::misp::Repeat::Safe,
        )
        .await?;
    Ok(found
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row.get("Sighting"))
        .find(|row| request.is_sighted_by(row))
        .map(|row| json!({"Sighting": row})))
}

fn with_request(output: FunctionOutput, request: &SightingRequest) -> FunctionOutput {
    output
        .with_extra("sighting_type", json!(request.kind.label()))
        .with_extra("source", json!(request.source))
        .with_extra("timestamp", json!(request.timestamp))
}

fn now_epoch_seconds() -> i64 {
    // A clock before 1970 is not worth failing a sighting over.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_709_288_430;

    fn request(value: Value) -> Result<SightingRequest, String> {
        let inputs = Inputs::from_value(value).expect("test inputs are an object");
        sighting_request(&inputs, NOW).map_err(|error| error.to_string())
    }

    #[test]
    fn a_value_is_sighted_now_from_soar_unless_told_otherwise() {
        let read = request(json!({"misp_sighting": "203.0.113.9"})).expect("valid inputs");
        assert_eq!(
            read,
            SightingRequest {
                target: Target::Value("203.0.113.9".into()),
                kind: SightingKind::Sighting,
                source: "IBM QRadar SOAR".into(),
                timestamp: NOW,
            }
        );
        assert_eq!(
            read.body(),
            json!({"value": "203.0.113.9", "type": "0", "source": "IBM QRadar SOAR", "timestamp": "1709288430"})
        );
    }

    #[test]
    fn type_source_and_time_are_taken_from_the_inputs() {
        let read = request(json!({
            "misp_attribute_uuid": "5e0f2d2a-1c4b-4f6e-9a0b-0c1d2e3f4a5b",
            "misp_sighting": "ignored when an attribute is named",
            "misp_sighting_type": {"id": 5102, "name": "False positive"},
            "misp_sighting_source": "  EDR  ",
            "misp_sighting_time": 1_700_000_000_999_i64,
        }))
        .expect("valid inputs");
        assert_eq!(
            read.target,
            Target::Attribute(AttributeRef::Uuid(
                "5e0f2d2a-1c4b-4f6e-9a0b-0c1d2e3f4a5b".into()
            ))
        );
        assert_eq!(
            read.body(),
            json!({"type": "1", "source": "EDR", "timestamp": "1700000000"})
        );
        let expiration =
            request(json!({"misp_attribute_id": 40, "misp_sighting_type": "expiration"}))
                .expect("labels ignore case");
        assert_eq!(expiration.kind, SightingKind::Expiration);
        assert_eq!(expiration.body()["type"], "2");
    }

    #[test]
    fn bad_inputs_name_their_field() {
        assert_eq!(
            request(json!({"misp_sighting": ""})),
            Err("input 'misp_sighting' or 'misp_attribute_id' or 'misp_attribute_uuid' is required but was not given".into())
        );
        assert_eq!(
            request(json!({"misp_sighting": "x", "misp_sighting_type": {"id": 9, "name": "Rumour"}})),
            Err("input 'misp_sighting_type' is \"Rumour\", must be Sighting, False positive or Expiration".into())
        );
        assert_eq!(
            request(json!({"misp_attribute_uuid": "40"})),
            Err("input 'misp_attribute_uuid' is 40, is not a UUID".into())
        );
        assert_eq!(
            request(json!({"misp_attribute_id": 0})),
            Err("input 'misp_attribute_id' is 0, must be a MISP attribute ID (1 or more)".into())
        );
    }

    #[test]
    fn a_sighting_row_is_ours_when_type_source_time_and_value_match() {
        let ours = request(
            json!({"misp_sighting": "evil.example", "misp_sighting_type": "False positive"}),
        )
        .expect("valid inputs");
        let row = |value: &str, kind: &str, source: &str, date: i64| json!({"value": value, "type": kind, "source": source, "date_sighting": date.to_string()});
        assert!(ours.is_sighted_by(&row("evil.example", "1", DEFAULT_SOURCE, NOW)));
        assert!(ours.is_sighted_by(&row("evil.example|203.0.113.9", "1", DEFAULT_SOURCE, NOW)));
        assert!(!ours.is_sighted_by(&row("evil.example", "0", DEFAULT_SOURCE, NOW)));
        assert!(!ours.is_sighted_by(&row("evil.example", "1", "EDR", NOW)));
        assert!(!ours.is_sighted_by(&row("evil.example", "1", DEFAULT_SOURCE, NOW + 1)));
        assert!(!ours.is_sighted_by(&row("good.example", "1", DEFAULT_SOURCE, NOW)));
    }

    #[test]
    fn the_select_has_one_value_per_misp_type() {
        let labels: Vec<&str> = MISP_SIGHTING_TYPE
            .values
            .iter()
            .map(|value| value.label)
            .collect();
        assert_eq!(labels, ["Sighting", "False positive", "Expiration"]);
        for label in labels {
            let kind = SightingKind::from_label(label).expect("every label has a kind");
            assert_eq!(kind.label(), label);
        }
        assert!(MISP_SIGHTING_TYPE.values[0].default);
    }
}
