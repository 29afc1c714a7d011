//! Which MISP attribute types a SOAR artifact type is searched as.

/// SOAR artifact types with the MISP types a value of that kind is stored as, composite
/// types included (MISP's value search matches either half of `ip-dst|port`,
/// `filename|md5` and the like).
const ARTIFACT_TYPES: &[(&str, &[&str])] = &[
    (
        "DNS Name",
        &["domain", "hostname", "domain|ip", "hostname|port"],
    ),
    ("Email Attachment", &["email-attachment", "filename"]),
    ("Email Body", &["email-body"]),
    (
        "Email Recipient",
        &["email-dst", "email", "email-src", "target-email"],
    ),
    (
        "Email Sender",
        &["email-src", "email", "email-dst", "whois-registrant-email"],
    ),
    ("Email Subject", &["email-subject"]),
    (
        "File Name",
        &[
            "filename",
            "filename|md5",
            "filename|sha1",
            "filename|sha256",
            "email-attachment",
        ],
    ),
    ("File Path", &["filename"]),
    (
        "IP Address",
        &[
            "ip-dst",
            "ip-src",
            "ip-dst|port",
            "ip-src|port",
            "domain|ip",
        ],
    ),
    ("MAC Address", &["mac-address"]),
    (
        "Malware MD5 Hash",
        &["md5", "filename|md5", "malware-sample"],
    ),
    ("Malware SHA-1 Hash", &["sha1", "filename|sha1"]),
    ("Malware SHA-256 Hash", &["sha256", "filename|sha256"]),
    ("Malware Sample Fuzzy Hash", &["ssdeep", "filename|ssdeep"]),
    ("Mutex", &["mutex"]),
    ("Network CIDR Range", &["ip-dst", "ip-src"]),
    ("Port", &["port"]),
    ("Registry Key", &["regkey", "regkey|value"]),
    (
        "Service",
        &["windows-service-name", "windows-service-displayname"],
    ),
    ("System Name", &["hostname", "domain"]),
    ("Threat CVE ID", &["vulnerability"]),
    ("URI Path", &["uri"]),
    ("URL", &["url"]),
    ("User Agent", &["user-agent"]),
];

/// What to search for a value, from the optional `misp_artifact_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeChoice {
    /// These MISP types only.
    Types(Vec<&'static str>),
    /// One MISP type, named as such in the input.
    MispType(String),
    /// Every type: no artifact type given, or one this table does not know (kept to say so).
    Any { unknown: Option<String> },
}

impl TypeChoice {
    /// Reads the artifact type: a SOAR artifact type (case and spaces ignored), or a MISP
    /// type; anything else searches every type rather than failing the verdict.
    pub fn from_artifact_type(artifact_type: Option<&str>) -> TypeChoice {
        let Some(given) = artifact_type
            .map(str::trim)
            .filter(|given| !given.is_empty())
        else {
            return TypeChoice::Any { unknown: None };
        };
        let wanted = squeeze(given);
        if let Some((_, types)) = ARTIFACT_TYPES
            .iter()
            .find(|(name, _)| squeeze(name) == wanted)
        {
            return TypeChoice::Types(types.to_vec());
        }
        if fn_misp::attribute_type::is_misp_type(given) {
            return TypeChoice::MispType(given.to_string());
        }
        TypeChoice::Any {
            unknown: Some(given.to_string()),
        }
    }

    /// The `type` filter of the search: `None` searches every type.
    pub fn filter(&self) -> Option<Vec<String>> {
        match self {
            TypeChoice::Types(types) => Some(types.iter().map(|kind| kind.to_string()).collect()),
            TypeChoice::MispType(kind) => Some(vec![kind.clone()]),
            TypeChoice::Any { .. } => None,
        }
    }
}

/// Lower case without spaces, hyphens or underscores: `Malware SHA-1 Hash` and
/// `malware sha1 hash` are the same artifact type.
fn squeeze(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soar_artifact_types_pick_their_misp_types_composites_included() {
        assert_eq!(
            TypeChoice::from_artifact_type(Some("IP Address")),
            TypeChoice::Types(vec![
                "ip-dst",
                "ip-src",
                "ip-dst|port",
                "ip-src|port",
                "domain|ip"
            ])
        );
        assert_eq!(
            TypeChoice::from_artifact_type(Some(" malware sha1 hash ")),
            TypeChoice::Types(vec!["sha1", "filename|sha1"])
        );
        assert_eq!(
            TypeChoice::from_artifact_type(Some("URL")).filter(),
            Some(vec!["url".to_string()])
        );
    }

    #[test]
    fn a_misp_type_is_searched_as_given() {
        assert_eq!(
            TypeChoice::from_artifact_type(Some("ip-dst|port")),
            TypeChoice::MispType("ip-dst|port".into())
        );
    }

    #[test]
    fn no_type_or_an_unknown_one_searches_every_type() {
        assert_eq!(
            TypeChoice::from_artifact_type(None),
            TypeChoice::Any { unknown: None }
        );
        assert_eq!(
            TypeChoice::from_artifact_type(Some("  ")),
            TypeChoice::Any { unknown: None }
        );
        let unknown = TypeChoice::from_artifact_type(Some("Password"));
        assert_eq!(
            unknown,
            TypeChoice::Any {
                unknown: Some("Password".into())
            }
        );
        assert_eq!(unknown.filter(), None);
    }

    #[test]
    fn every_mapped_type_is_one_misp_knows() {
        for (artifact_type, misp_types) in ARTIFACT_TYPES {
            for misp_type in *misp_types {
                assert!(
                    fn_misp::attribute_type::is_misp_type(misp_type),
                    "{artifact_type} maps to {misp_type}, which MISP does not have"
                );
            }
        }
    }
}
