//! The `misp_verdict` function: malicious, suspicious, benign or unknown for an artifact's
//! value, with a score, the evidence that decided it and a one-line summary, from one MISP
//! search (and a warninglist lookup only when the search cannot tell and it could matter).

pub mod decide;
pub mod evidence;
pub mod rules;
pub mod types;

use fn_misp::{APP, DESTINATION, MISP_ATTRIBUTE_VALUE};
use serde_json::{Value, json};
use soar_core::config::AppConfig;
use soar_core::misp::{Method, MispClient, Repeat};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputError,
    InputField, Inputs,
};

use decide::Decision;
use evidence::{Evidence, WarninglistCheck};
use types::TypeChoice;

/// Gives a verdict on a value: `POST /attributes/restSearch` with the value (and the MISP
/// types of its artifact type), asking for event context and tags, sightings, warninglist
/// hits and decay scores in the same answer; then, only when needed,
/// `POST /warninglists/checkValue`.
#[derive(Debug, Clone, Copy)]
pub struct MispVerdict;

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_verdict",
    display_name: "MISP Verdict",
    description: "Get MISP's verdict on an artifact value: malicious, suspicious, benign or unknown, a score from 0 to 100, and the evidence that decided it (tags on the attributes and their events, threat levels, sightings and false-positive sightings, warninglists, decay scores), by the rules of [fn_misp] verdict_* in app.config. content.summary is one line to write into the artifact's description or a note.",
    destination: DESTINATION,
    uuid: "964c294b-83dc-4f3a-a7ee-471bd623f825",
    app: &APP,
    inputs: &[MISP_ATTRIBUTE_VALUE, MISP_ARTIFACT_TYPE],
};

/// `__function/misp_artifact_type`: the SOAR artifact type of the value, which picks the
/// MISP types searched.
pub static MISP_ARTIFACT_TYPE: InputField =
    InputField::text("misp_artifact_type", "565d2170-eb73-4368-b877-8c3b9f0ed7e5").tooltip(
        "The artifact's type (artifact.type, e.g. IP Address, DNS Name, URL, Malware MD5 Hash) or a MISP type; empty searches every type",
    );

soar_core::register_function!(MispVerdict);

#[soar_core::async_trait]
impl Function for MispVerdict {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    fn check_config(&self, config: &AppConfig) -> Result<(), String> {
        rules::rules_for(config)
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let value = required_value(inputs)?;
        let artifact_type = inputs.text(MISP_ARTIFACT_TYPE.name)?;
        let choice = TypeChoice::from_artifact_type(artifact_type.as_deref());
        let rules = rules::rules_for(context.config())
            .map_err(|error| FunctionError::Config(error.to_string()))?;
        let client = fn_misp::connect(context)?;
        let types = choice.filter();
        context.progress(match (&choice, &types) {
            (TypeChoice::Any { unknown: Some(given) }, _) => format!(
                "Searching MISP for {value} as any type ('{given}' is not an artifact type this function maps to MISP types)"
            ),
            (_, Some(types)) => format!("Searching MISP for {value} as {}", types.join(", ")),
            (_, None) => format!("Searching MISP for {value} as any type"),
        });
        let limit = client.config().search_limit;
        let answer = client
            .search_attributes(search_query(&value, types.as_deref(), limit))
            .await?;
        let mut evidence = Evidence::from_search(&answer, &value, limit as usize);
        context.progress(found_text(&evidence));
        if decide::needs_warninglist_lookup(&evidence, &rules) {
            context.progress(format!("Looking {value} up in MISP's warninglists"));
            evidence.warninglists = check_warninglists(client, &value).await;
            if let WarninglistCheck::Failed(reason) = &evidence.warninglists {
                context.progress(format!(
                    "MISP's warninglists could not be checked, so they do not count: {reason}"
                ));
            }
        }
        let decision: Decision = decide::decide(&evidence, &rules);
        context.progress(format!(
            "Verdict: {} (score {})",
            decision.verdict.as_str(),
            decision.score
        ));
        let content = decide::content(&value, types, &evidence, &rules, &decision);
        Ok(FunctionOutput::success(content))
    }
}

/// `misp_attribute_value`, trimmed; it must hold something.
fn required_value(inputs: &Inputs) -> Result<String, FunctionError> {
    let field = MISP_ATTRIBUTE_VALUE.name;
    let value = inputs.required_text(field)?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(InputError::Missing {
            field: field.to_string(),
        }
        .into());
    }
    Ok(trimmed.to_string())
}

/// The one search a verdict needs. `includeContext` brings each attribute's event (threat
/// level, title, date, creator, its tags); `includeEventTags` adds the event's tags to the
/// attribute's own, marked `inherited`, which tells the two apart; `includeSightings` the
/// sighting rows (type, date); `includeWarninglistHits` the lists a `to_ids` attribute is
/// on; `includeDecayScore` the score of each enabled decaying model for its type.
/// `includeCorrelations` is not asked: every attribute with the value is in the answer
/// already, and correlations would cost MISP a query per attribute. Capped at
/// `search_limit`.
pub fn search_query(value: &str, types: Option<&[String]>, limit: u32) -> Value {
    let mut query = json!({
        "value": value,
        "limit": limit,
        "includeContext": true,
        "includeEventTags": true,
        "includeSightings": true,
        "includeWarninglistHits": true,
        "includeDecayScore": true,
    });
    if let Some(types) = types {
        query["type"] = json!(types);
    }
    query
}

/// `warninglists/checkValue` for one value; a failure is kept as such rather than failing
/// the verdict, whose main evidence is already in.
async fn check_warninglists(client: &MispClient, value: &str) -> WarninglistCheck {
    match client
        .request(
            Method::POST,
            &["warninglists", "checkValue"],
            Some(&json!([value])),
            Repeat::Safe,
        )
        .await
    {
        Ok(answer) => WarninglistCheck::ByCheckValue(evidence::check_value_hits(&answer)),
        Err(error) => WarninglistCheck::Failed(error.to_string()),
    }
}

fn found_text(evidence: &Evidence) -> String {
    let attributes = evidence.attributes.len();
    let events = evidence.events.len();
    match attributes {
        0 => "MISP has no attribute with this value".to_string(),
        _ => format!(
            "MISP has {attributes} {} with this value in {events} {}{}",
            if attributes == 1 {
                "attribute"
            } else {
                "attributes"
            },
            if events == 1 { "event" } else { "events" },
            if evidence.truncated {
                " (search_limit reached)"
            } else {
                ""
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(value: Value) -> Inputs {
        Inputs::from_value(value).expect("test inputs are an object")
    }

    #[test]
    fn the_value_is_required_and_trimmed() {
        assert_eq!(
            required_value(&inputs(json!({"misp_attribute_value": " 1.2.3.4\n"}))).ok(),
            Some("1.2.3.4".to_string())
        );
        for missing in [
            json!({}),
            json!({"misp_attribute_value": ""}),
            json!({"misp_attribute_value": "  "}),
        ] {
            assert_eq!(
                required_value(&inputs(missing))
                    .expect_err("no value")
                    .to_string(),
                "input 'misp_attribute_value' is required but was not given"
            );
        }
        assert!(required_value(&inputs(json!({"misp_attribute_value": 5}))).is_err());
    }

    #[test]
    fn the_search_asks_for_every_piece_of_evidence_at_once() {
        let types = vec!["ip-dst".to_string(), "ip-src".to_string()];
        assert_eq!(
            search_query("1.2.3.4", Some(&types), 100),
            json!({
                "value": "1.2.3.4", "type": ["ip-dst", "ip-src"], "limit": 100,
                "includeContext": true, "includeEventTags": true, "includeSightings": true,
                "includeWarninglistHits": true, "includeDecayScore": true,
            })
        );
        assert!(search_query("x", None, 5).get("type").is_none());
    }

    #[test]
    fn the_new_field_has_its_own_uuid() {
        assert_eq!(DEFINITION.inputs.len(), 2);
        assert_ne!(MISP_ARTIFACT_TYPE.uuid, MISP_ATTRIBUTE_VALUE.uuid);
        assert_ne!(MISP_ARTIFACT_TYPE.uuid, DEFINITION.uuid);
    }
}
