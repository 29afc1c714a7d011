//! The `misp_create_attribute` function: adds an artifact's value to a MISP event.

use fn_misp::{APP, DESTINATION, MISP_ATTRIBUTE_TYPE, MISP_ATTRIBUTE_VALUE, MISP_EVENT_ID};
use soar_core::misp::NewAttribute;
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputError,
    Inputs,
};

/// Adds an attribute to an event (`POST /attributes/add/{event uuid}`) and returns MISP's
/// `{"Attribute": …}`; a value MISP refuses is a failed result carrying MISP's `errors`.
#[derive(Debug, Clone, Copy)]
pub struct MispCreateAttribute;

/// The definition of the original fn_misp 3.0.2 export.
pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_create_attribute",
    display_name: "MISP Create Attribute",
    description: "Create a MISP attribute from an incident artifact",
    destination: DESTINATION,
    uuid: "f5c4aae2-135e-41ac-8bbc-082b00677ecb",
    app: &APP,
    inputs: &[MISP_EVENT_ID, MISP_ATTRIBUTE_VALUE, MISP_ATTRIBUTE_TYPE],
};

soar_core::register_function!(MispCreateAttribute);

/// The attribute types MISP knows: `types` of MISP's describeTypes, one per line.
pub const MISP_TYPES: &str = include_str!("../data/misp_types.txt");

/// SOAR artifact types people put where a MISP type belongs, with the MISP types the
/// original's example scripts mapped them to.
const SOAR_ARTIFACT_TYPES: &[(&str, &[&str])] = &[
    ("DNS Name", &["hostname", "domain"]),
    ("Email Attachment", &["email-attachment"]),
    ("Email Body", &["email-body"]),
    ("Email Recipient", &["email-dst"]),
    ("Email Sender", &["email-src"]),
    ("Email Subject", &["email-subject"]),
    ("File Name", &["filename"]),
    ("IP Address", &["ip-dst", "ip-src"]),
    ("MAC Address", &["mac-address"]),
    ("Malware MD5 Hash", &["md5"]),
    ("Malware SHA-1 Hash", &["sha1"]),
    ("Malware SHA-256 Hash", &["sha256"]),
    ("Port", &["port"]),
    ("Threat CVE ID", &["vulnerability"]),
    ("URI Path", &["uri"]),
    ("URL", &["url"]),
];

/// How many close types an unknown type's error suggests.
const SUGGESTIONS: usize = 3;

/// How alike (Jaro-Winkler) a type must be to the input to be suggested.
const SUGGESTION_THRESHOLD: f64 = 0.75;

#[soar_core::async_trait]
impl Function for MispCreateAttribute {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let event_id = fn_misp::required_event_id(inputs)?;
        let attribute = new_attribute(inputs)?;
        let client = fn_misp::connect(context)?;
        context.progress(format!(
            "Creating new misp attribute {} {}",
            attribute.attribute_type, attribute.value
        ));
        let event_uuid = fn_misp::event_uuid(client, event_id).await?;
        match client.add_attribute(&event_uuid, &attribute).await {
            Ok(created) => {
                context.progress("Attribute has been created");
                Ok(FunctionOutput::success(created))
            }
            // A duplicate or malformed value is an answer, not a crash: playbooks read
            // `content.errors.value` to tell the analyst why.
            Err(error) => fn_misp::rejection_as_failure(error),
        }
    }
}

/// The attribute the inputs describe; the type must be one MISP knows.
fn new_attribute(inputs: &Inputs) -> Result<NewAttribute, FunctionError> {
    let value = inputs.required_text(MISP_ATTRIBUTE_VALUE.name)?;
    // Stray spaces from a script or a copy and paste are not part of any MISP type.
    let attribute_type = inputs
        .required_text(MISP_ATTRIBUTE_TYPE.name)?
        .trim()
        .to_string();
    if !is_misp_type(&attribute_type) {
        return Err(unknown_type(&attribute_type).into());
    }
    Ok(NewAttribute {
        attribute_type,
        value,
    })
}

fn is_misp_type(candidate: &str) -> bool {
    MISP_TYPES.lines().any(|known| known == candidate)
}

fn unknown_type(attribute_type: &str) -> InputError {
    let closest = closest_types(attribute_type);
    let problem = if closest.is_empty() {
        "not a MISP attribute type".to_string()
    } else {
        format!("not a MISP attribute type; closest: {}", closest.join(", "))
    };
    InputError::Invalid {
        field: MISP_ATTRIBUTE_TYPE.name.to_string(),
        value: format!("{attribute_type:?}"),
        problem,
    }
}

/// The known types most like `attribute_type`, best first: the MISP types of a SOAR artifact
/// type, then the most alike by spelling. Case is ignored because MISP types are all lower
/// case and `IP-DST` plainly means `ip-dst`.
fn closest_types(attribute_type: &str) -> Vec<&'static str> {
    let wanted = attribute_type.trim().to_lowercase();
    let from_artifact_type = SOAR_ARTIFACT_TYPES
        .iter()
        .filter(|(artifact_type, _)| artifact_type.eq_ignore_ascii_case(&wanted))
        .flat_map(|(_, misp_types)| misp_types.iter().copied());
    let mut scored: Vec<(f64, &'static str)> = MISP_TYPES
        .lines()
        .map(|known| (strsim::jaro_winkler(&wanted, known), known))
        .filter(|(score, _)| *score >= SUGGESTION_THRESHOLD)
        .collect();
    scored.sort_by(|left, right| right.0.total_cmp(&left.0).then(left.1.cmp(right.1)));
    let mut closest: Vec<&'static str> = Vec::with_capacity(SUGGESTIONS);
    for known in from_artifact_type.chain(scored.into_iter().map(|(_, known)| known)) {
        if closest.len() == SUGGESTIONS {
            break;
        }
        if !closest.contains(&known) {
            closest.push(known);
        }
    }
    closest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn inputs(value: Value) -> Inputs {
        Inputs::from_value(value).expect("test inputs are an object")
    }

    #[test]
    fn type_list_is_describe_types() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../../tests/fixtures/misp/describeTypes.json"
        );
        let text = std::fs::read_to_string(path).expect("the describeTypes fixture is readable");
        let describe: Value = serde_json::from_str(&text).expect("describeTypes is JSON");
        let expected: Vec<&str> = describe["result"]["types"]
            .as_array()
            .expect("describeTypes has result.types")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let ours: Vec<&str> = MISP_TYPES.lines().collect();
        assert_eq!(
            ours, expected,
            "data/misp_types.txt must list describeTypes' types"
        );
    }

    #[test]
    fn the_original_test_types_are_accepted() {
        for attribute_type in [
            "filename",
            "text",
            "ip-dst",
            "hostname",
            "md5",
            "named pipe",
        ] {
            let attribute = new_attribute(&inputs(json!({
                "misp_attribute_value": "sample text",
                "misp_attribute_type": attribute_type,
            })))
            .unwrap_or_else(|error| panic!("{attribute_type} should be accepted: {error}"));
            assert_eq!(attribute.attribute_type, attribute_type);
            assert_eq!(attribute.value, "sample text");
        }
    }

    #[test]
    fn unknown_type_suggests_the_closest_types() {
        let error = new_attribute(&inputs(json!({
            "misp_attribute_value": "1.1.1.1",
            "misp_attribute_type": "ip_dst",
        })))
        .expect_err("ip_dst is not a MISP type");
        let message = error.to_string();
        assert!(
            message.starts_with(
                "input 'misp_attribute_type' is \"ip_dst\", not a MISP attribute type; closest: ip-dst"
            ),
            "unexpected message: {message}"
        );
    }

    #[test]
    fn upper_case_type_suggests_the_lower_case_one_first() {
        assert_eq!(closest_types("SHA256").first(), Some(&"sha256"));
        assert_eq!(closest_types("Hostname").first(), Some(&"hostname"));
    }

    #[test]
    fn a_soar_artifact_type_suggests_the_misp_types_it_maps_to() {
        assert_eq!(closest_types("IP Address")[..2], ["ip-dst", "ip-src"]);
        assert_eq!(closest_types("dns name")[..2], ["hostname", "domain"]);
        assert_eq!(
            closest_types("Threat CVE ID").first(),
            Some(&"vulnerability")
        );
        for (artifact_type, misp_types) in SOAR_ARTIFACT_TYPES {
            for misp_type in *misp_types {
                assert!(
                    is_misp_type(misp_type),
                    "{artifact_type} maps to {misp_type}, which MISP does not have"
                );
            }
        }
    }

    #[test]
    fn surrounding_spaces_are_ignored() {
        let attribute = new_attribute(&inputs(json!({
            "misp_attribute_value": "https://example.org/",
            "misp_attribute_type": " url ",
        })))
        .expect("' url ' is url");
        assert_eq!(attribute.attribute_type, "url");
    }

    #[test]
    fn nonsense_type_suggests_nothing() {
        assert_eq!(
            unknown_type("zzzzzzzzzzzzqqqq").to_string(),
            "input 'misp_attribute_type' is \"zzzzzzzzzzzzqqqq\", not a MISP attribute type"
        );
    }

    #[test]
    fn value_and_type_are_required() {
        let error = new_attribute(&inputs(json!({"misp_attribute_type": "md5"})))
            .expect_err("value is required");
        assert_eq!(
            error.to_string(),
            "input 'misp_attribute_value' is required but was not given"
        );
        let error = new_attribute(&inputs(json!({"misp_attribute_value": "x"})))
            .expect_err("type is required");
        assert_eq!(
            error.to_string(),
            "input 'misp_attribute_type' is required but was not given"
        );
    }
}
