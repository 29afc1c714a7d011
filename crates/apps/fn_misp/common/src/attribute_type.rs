//! MISP's attribute types (`types` of its describeTypes) and the check of a type an input
//! names: one MISP does not know is an error suggesting the closest ones.

use soar_core::InputError;

use crate::MISP_ATTRIBUTE_TYPE;

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

/// `text` trimmed (stray spaces from a script or a copy and paste are not part of any type),
/// when it is a type MISP knows; else the error for `misp_attribute_type`, with suggestions.
pub fn checked(text: &str) -> Result<String, InputError> {
    let attribute_type = text.trim();
    if is_misp_type(attribute_type) {
        Ok(attribute_type.to_string())
    } else {
        Err(unknown_type(attribute_type))
    }
}

pub fn is_misp_type(candidate: &str) -> bool {
    MISP_TYPES.lines().any(|known| known == candidate)
}

pub fn unknown_type(attribute_type: &str) -> InputError {
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
pub fn closest_types(attribute_type: &str) -> Vec<&'static str> {
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
    use serde_json::Value;

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
    fn nonsense_type_suggests_nothing() {
        assert_eq!(
            unknown_type("zzzzzzzzzzzzqqqq").to_string(),
            "input 'misp_attribute_type' is \"zzzzzzzzzzzzqqqq\", not a MISP attribute type"
        );
    }

    #[test]
    fn a_known_type_is_trimmed_and_an_unknown_one_named() {
        assert_eq!(checked(" ip-dst ").ok().as_deref(), Some("ip-dst"));
        assert_eq!(
            checked("ip_dst").expect_err("not a type").to_string(),
            "input 'misp_attribute_type' is \"ip_dst\", not a MISP attribute type; closest: ip-dst, ip-dst|port"
        );
    }
}
