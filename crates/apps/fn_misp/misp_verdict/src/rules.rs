//! The verdict rules of `[fn_misp]`, read once into [`VerdictRules`]: tag-name patterns for
//! each verdict, the threat levels that decide, the false-positive sighting threshold and
//! the warninglists that count as known-good infrastructure.

use std::sync::{Arc, Mutex};

use soar_core::config::{AppConfig, ConfigError, Section};

/// Tags that make a value malicious.
pub const MALICIOUS_TAGS: &str = "verdict_malicious_tags";
/// Tags that make a value suspicious.
pub const SUSPICIOUS_TAGS: &str = "verdict_suspicious_tags";
/// Tags that make a value benign.
pub const BENIGN_TAGS: &str = "verdict_benign_tags";
/// Threat levels of a related event that make a value malicious.
pub const THREAT_LEVELS_MALICIOUS: &str = "verdict_threat_levels_malicious";
/// Threat levels of a related event that make a value suspicious.
pub const THREAT_LEVELS_SUSPICIOUS: &str = "verdict_threat_levels_suspicious";
/// False-positive sightings that make a value benign (0: never).
pub const FALSE_POSITIVE_SIGHTINGS: &str = "verdict_false_positive_sightings";
/// Names of the warninglists whose entries are benign.
pub const BENIGN_WARNINGLISTS: &str = "verdict_benign_warninglists";
/// Whether to ask `warninglists/checkValue` when the search cannot tell.
pub const CHECK_WARNINGLISTS: &str = "verdict_check_warninglists";

/// Every verdict key; any other `verdict_*` key in `[fn_misp]` is a mistake.
pub const KEYS: [&str; 8] = [
    MALICIOUS_TAGS,
    SUSPICIOUS_TAGS,
    BENIGN_TAGS,
    THREAT_LEVELS_MALICIOUS,
    THREAT_LEVELS_SUSPICIOUS,
    FALSE_POSITIVE_SIGHTINGS,
    BENIGN_WARNINGLISTS,
    CHECK_WARNINGLISTS,
];

/// Statements that a value is bad: taxonomies made to say so, and galaxies of malware
/// families (a value tagged with one is part of that malware).
pub const DEFAULT_MALICIOUS_TAGS: &str = concat!(
    r#"ioc:artifact-state="malicious", binary-class:type="malicious", "#,
    r#"passivetotal:class="malicious", malware_classification:malware-category=*, "#,
    r#"adversary:infrastructure-status="own-and-operated", "#,
    "misp-galaxy:malpedia=*, misp-galaxy:mitre-malware=*, misp-galaxy:ransomware=*, ",
    "misp-galaxy:botnet=*, misp-galaxy:rat=*, misp-galaxy:banker=*, misp-galaxy:stealer=*, ",
    "misp-galaxy:backdoor=*, misp-galaxy:exploit-kit=*"
);

/// Context that ties a value to an attack without saying the value itself is bad:
/// attribution, techniques, dual-use tools, kill-chain phases, compromised infrastructure.
pub const DEFAULT_SUSPICIOUS_TAGS: &str = concat!(
    r#"passivetotal:class="suspicious", adversary:infrastructure-status="compromised", "#,
    "misp-galaxy:threat-actor=*, misp-galaxy:mitre-intrusion-set=*, ",
    "misp-galaxy:mitre-*attack-pattern=*, misp-galaxy:tool=*, misp-galaxy:mitre-tool=*, ",
    "kill-chain:*"
);

/// Statements that a value is harmless or a known false positive.
pub const DEFAULT_BENIGN_TAGS: &str = concat!(
    r#"ioc:artifact-state="not-malicious", binary-class:type="good", "#,
    r#"passivetotal:class="non-malicious", false-positive:confirmed, "#,
    r#"false-positive:confirmed="true""#
);

pub const DEFAULT_THREAT_LEVELS_MALICIOUS: &str = "High";
pub const DEFAULT_THREAT_LEVELS_SUSPICIOUS: &str = "Medium";
pub const DEFAULT_FALSE_POSITIVE_SIGHTINGS: u64 = 1;
pub const DEFAULT_BENIGN_WARNINGLISTS: &str = "*";

/// The word that empties a list (an empty value means "the default", as for every key).
pub const NONE: &str = "none";

/// MISP's threat levels by id: 1 High, 2 Medium, 3 Low, 4 Undefined.
pub const THREAT_LEVEL_NAMES: [&str; 4] = ["High", "Medium", "Low", "Undefined"];

/// The validated rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictRules {
    pub malicious_tags: Vec<NamePattern>,
    pub suspicious_tags: Vec<NamePattern>,
    pub benign_tags: Vec<NamePattern>,
    /// Threat level ids (1 to 4).
    pub malicious_threat_levels: Vec<u8>,
    pub suspicious_threat_levels: Vec<u8>,
    /// 0 turns the rule off.
    pub false_positive_sightings: u64,
    pub benign_warninglists: Vec<NamePattern>,
    pub check_warninglists: bool,
}

/// A tag or warninglist name with `*` standing for any run of characters, compared without
/// regard to case or double quotes (`passivetotal:class=malicious` is
/// `passivetotal:class="malicious"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    /// As written in `app.config`.
    written: String,
    /// The pieces between the stars, normalised.
    pieces: Vec<String>,
}

/// The verdict a tag's name calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TagVerdict {
    Malicious,
    Suspicious,
    Benign,
}

impl VerdictRules {
    /// Reads the `verdict_*` keys of `[fn_misp]` (the defaults where a key is absent or
    /// empty, and all of them without the section). An unknown `verdict_*` key or a value
    /// that does not parse is an error naming the key.
    pub fn from_section(section: Option<&Section>) -> Result<VerdictRules, ConfigError> {
        let Some(section) = section else {
            return Ok(VerdictRules::defaults());
        };
        if let Some(unknown) = section
            .keys()
            .find(|key| key.starts_with("verdict_") && !KEYS.contains(key))
        {
            return Err(section.invalid(
                unknown,
                format!("is not a verdict setting; known: {}", KEYS.join(", ")),
            ));
        }
        let patterns = |key: &str, default: &str| {
            let written = section.get(key).unwrap_or(default);
            parse_patterns(written).map_err(|problem| section.invalid(key, problem))
        };
        let levels = |key: &str, default: &str| {
            let written = section.get(key).unwrap_or(default);
            parse_threat_levels(written).map_err(|problem| section.invalid(key, problem))
        };
        Ok(VerdictRules {
            malicious_tags: patterns(MALICIOUS_TAGS, DEFAULT_MALICIOUS_TAGS)?,
            suspicious_tags: patterns(SUSPICIOUS_TAGS, DEFAULT_SUSPICIOUS_TAGS)?,
            benign_tags: patterns(BENIGN_TAGS, DEFAULT_BENIGN_TAGS)?,
            malicious_threat_levels: levels(
                THREAT_LEVELS_MALICIOUS,
                DEFAULT_THREAT_LEVELS_MALICIOUS,
            )?,
            suspicious_threat_levels: levels(
                THREAT_LEVELS_SUSPICIOUS,
                DEFAULT_THREAT_LEVELS_SUSPICIOUS,
            )?,
            false_positive_sightings: section.u64_in(
                FALSE_POSITIVE_SIGHTINGS,
                0..=1_000_000,
                DEFAULT_FALSE_POSITIVE_SIGHTINGS,
            )?,
            benign_warninglists: patterns(BENIGN_WARNINGLISTS, DEFAULT_BENIGN_WARNINGLISTS)?,
            check_warninglists: section.bool_or(CHECK_WARNINGLISTS, true)?,
        })
    }

    /// The rules without any `verdict_*` key.
    pub fn defaults() -> VerdictRules {
        // The defaults are constants that a test parses; should one ever fail to, no rule
        // beats a panic in the middle of a call.
        let patterns = |written: &str| parse_patterns(written).unwrap_or_default();
        let levels = |written: &str| parse_threat_levels(written).unwrap_or_default();
        VerdictRules {
            malicious_tags: patterns(DEFAULT_MALICIOUS_TAGS),
            suspicious_tags: patterns(DEFAULT_SUSPICIOUS_TAGS),
            benign_tags: patterns(DEFAULT_BENIGN_TAGS),
            malicious_threat_levels: levels(DEFAULT_THREAT_LEVELS_MALICIOUS),
            suspicious_threat_levels: levels(DEFAULT_THREAT_LEVELS_SUSPICIOUS),
            false_positive_sightings: DEFAULT_FALSE_POSITIVE_SIGHTINGS,
            benign_warninglists: patterns(DEFAULT_BENIGN_WARNINGLISTS),
            check_warninglists: true,
        }
    }

    /// The verdict a tag calls for; a tag matching several lists takes the worst.
    pub fn tag_verdict(&self, tag: &str) -> Option<TagVerdict> {
        let matches = |patterns: &[NamePattern]| patterns.iter().any(|p| p.matches(tag));
        if matches(&self.malicious_tags) {
            Some(TagVerdict::Malicious)
        } else if matches(&self.suspicious_tags) {
            Some(TagVerdict::Suspicious)
        } else if matches(&self.benign_tags) {
            Some(TagVerdict::Benign)
        } else {
            None
        }
    }

    /// Whether a hit on the warninglist named `name` makes a value benign.
    pub fn is_benign_warninglist(&self, name: &str) -> bool {
        self.benign_warninglists
            .iter()
            .any(|pattern| pattern.matches(name))
    }

    /// The verdict a related event's threat level calls for; malicious wins when a level is
    /// in both lists.
    pub fn threat_level_verdict(&self, threat_level_id: u8) -> Option<TagVerdict> {
        if self.malicious_threat_levels.contains(&threat_level_id) {
            Some(TagVerdict::Malicious)
        } else if self.suspicious_threat_levels.contains(&threat_level_id) {
            Some(TagVerdict::Suspicious)
        } else {
            None
        }
    }
}

/// The rules of `config`, parsed once for as long as `[fn_misp]` stays the same (the runner
/// reads `app.config` once; tests use several).
pub fn rules_for(config: &AppConfig) -> Result<Arc<VerdictRules>, ConfigError> {
    static PARSED: Mutex<Option<(Option<Section>, Arc<VerdictRules>)>> = Mutex::new(None);
    let section = config.section(fn_misp::DESTINATION);
    let mut parsed = PARSED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((known, rules)) = parsed.as_ref()
        && known.as_ref() == section
    {
        return Ok(Arc::clone(rules));
    }
    let rules = Arc::new(VerdictRules::from_section(section)?);
    *parsed = Some((section.cloned(), Arc::clone(&rules)));
    Ok(rules)
}

impl NamePattern {
    /// One pattern, already cut at the commas and trimmed.
    pub fn parse(written: &str) -> Result<NamePattern, String> {
        if written.is_empty() {
            return Err("has an empty pattern (two commas in a row, or one at an end)".into());
        }
        if written.chars().any(char::is_control) {
            return Err(format!("pattern {written:?} holds a control character"));
        }
        if !written.matches('"').count().is_multiple_of(2) {
            return Err(format!(
                "pattern '{written}' has an unbalanced '\"' (tag values are written \"value\")"
            ));
        }
        Ok(NamePattern {
            written: written.to_string(),
            pieces: normalise(written).split('*').map(str::to_string).collect(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Whether `name` fits the pattern: each piece in order, the first at the start and the
    /// last at the end.
    pub fn matches(&self, name: &str) -> bool {
        let name = normalise(name);
        let Some((first, rest)) = self.pieces.split_first() else {
            return false;
        };
        let Some(mut remaining) = name.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            // No star: the whole name.
            return remaining.is_empty();
        };
        for piece in middle {
            match remaining.find(piece.as_str()) {
                Some(at) => remaining = &remaining[at + piece.len()..],
                None => return false,
            }
        }
        remaining.ends_with(last.as_str())
    }
}

impl TagVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            TagVerdict::Malicious => "malicious",
            TagVerdict::Suspicious => "suspicious",
            TagVerdict::Benign => "benign",
        }
    }
}

/// A comma-separated list of patterns (line breaks count as commas), or `none`.
pub fn parse_patterns(written: &str) -> Result<Vec<NamePattern>, String> {
    if written.trim().eq_ignore_ascii_case(NONE) {
        return Ok(Vec::new());
    }
    written
        .split([',', '\n'])
        .map(|piece| NamePattern::parse(piece.trim()))
        .collect()
}

/// A comma-separated list of threat levels, by id (1 to 4) or name (High, Medium, Low,
/// Undefined), or `none`.
pub fn parse_threat_levels(written: &str) -> Result<Vec<u8>, String> {
    if written.trim().eq_ignore_ascii_case(NONE) {
        return Ok(Vec::new());
    }
    let mut levels = Vec::new();
    for piece in written.split(',').map(str::trim) {
        let level = match piece.parse::<u8>() {
            Ok(id @ 1..=4) => id,
            _ => THREAT_LEVEL_NAMES
                .iter()
                .position(|name| name.eq_ignore_ascii_case(piece))
                .and_then(|index| u8::try_from(index + 1).ok())
                .ok_or_else(|| {
                    format!(
                        "has '{piece}', not a threat level (1 High, 2 Medium, 3 Low, 4 Undefined, or none)"
                    )
                })?,
        };
        if !levels.contains(&level) {
            levels.push(level);
        }
    }
    Ok(levels)
}

/// The name of threat level `id` (1 to 4).
pub fn threat_level_name(id: u8) -> Option<&'static str> {
    THREAT_LEVEL_NAMES
        .get(usize::from(id).checked_sub(1)?)
        .copied()
}

/// Lower case, double quotes dropped, outer spaces trimmed.
fn normalise(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| *c != '"')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(lines: &str) -> AppConfig {
        AppConfig::parse(
            &format!("[fn_misp]\nmisp_url=https://misp.example\n{lines}\n"),
            "test app.config",
        )
        .expect("test config parses")
    }

    fn rules(lines: &str) -> Result<VerdictRules, String> {
        VerdictRules::from_section(config(lines).section("fn_misp")).map_err(|e| e.to_string())
    }

    fn pattern(written: &str) -> NamePattern {
        NamePattern::parse(written).expect("a valid pattern")
    }

    #[test]
    fn the_defaults_parse_and_are_what_no_key_gives() {
        for default in [
            DEFAULT_MALICIOUS_TAGS,
            DEFAULT_SUSPICIOUS_TAGS,
            DEFAULT_BENIGN_TAGS,
            DEFAULT_BENIGN_WARNINGLISTS,
        ] {
            let parsed = parse_patterns(default).expect("the default parses");
            assert!(!parsed.is_empty());
        }
        assert_eq!(rules(""), Ok(VerdictRules::defaults()));
        assert_eq!(
            VerdictRules::from_section(None).ok(),
            Some(VerdictRules::defaults())
        );
        let defaults = VerdictRules::defaults();
        assert_eq!(defaults.malicious_threat_levels, vec![1]);
        assert_eq!(defaults.suspicious_threat_levels, vec![2]);
        assert_eq!(defaults.false_positive_sightings, 1);
        assert!(defaults.check_warninglists);
    }

    #[test]
    fn default_tags_sort_common_taxonomies_and_galaxies() {
        let rules = VerdictRules::defaults();
        let verdict = |tag: &str| rules.tag_verdict(tag);
        assert_eq!(
            verdict(r#"malware_classification:malware-category="Ransomware""#),
            Some(TagVerdict::Malicious)
        );
        assert_eq!(
            verdict(r#"misp-galaxy:malpedia="Emotet""#),
            Some(TagVerdict::Malicious)
        );
        assert_eq!(
            verdict("passivetotal:class=malicious"),
            Some(TagVerdict::Malicious)
        );
        assert_eq!(
            verdict(r#"misp-galaxy:threat-actor="Sofacy""#),
            Some(TagVerdict::Suspicious)
        );
        assert_eq!(
            verdict(r#"misp-galaxy:mitre-attack-pattern="Phishing - T1566""#),
            Some(TagVerdict::Suspicious)
        );
        assert_eq!(
            verdict(
                r#"misp-galaxy:mitre-enterprise-attack-attack-pattern="Spearphishing Link - T1192""#
            ),
            Some(TagVerdict::Suspicious)
        );
        assert_eq!(
            verdict("passivetotal:class=suspicious"),
            Some(TagVerdict::Suspicious)
        );
        assert_eq!(
            verdict(r#"ioc:artifact-state="not-malicious""#),
            Some(TagVerdict::Benign)
        );
        assert_eq!(
            verdict("false-positive:confirmed"),
            Some(TagVerdict::Benign)
        );
        // Sharing and confidence markings say nothing about the value.
        for neutral in [
            "tlp:red",
            "tlp:white",
            "PAP:RED",
            r#"false-positive:risk="low""#,
            r#"false-positive:risk="high""#,
            r#"misp:confidence-level="completely-confident""#,
            "Phishing",
        ] {
            assert_eq!(verdict(neutral), None, "{neutral}");
        }
    }

    #[test]
    fn patterns_match_with_stars_any_case_and_optional_quotes() {
        assert!(pattern("tlp:red").matches("TLP:RED"));
        assert!(!pattern("tlp:red").matches("tlp:red2"));
        assert!(
            pattern("misp-galaxy:threat-actor=*").matches(r#"misp-galaxy:threat-actor="APT 28""#)
        );
        assert!(!pattern("misp-galaxy:threat-actor=*").matches("misp-galaxy:tool=\"x\""));
        assert!(
            pattern(r#"passivetotal:class="malicious""#).matches("passivetotal:class=malicious")
        );
        assert!(pattern("*:malicious").matches("binary:malicious"));
        assert!(pattern("a*b*c").matches("aXbYc"));
        assert!(pattern("a*b*c").matches("abc"));
        assert!(!pattern("a*b*c").matches("acb"));
        assert!(pattern("*").matches(""));
        assert!(
            pattern("List of known * resolvers").matches("List of known IPv4 public DNS resolvers")
        );
    }

    #[test]
    fn none_empties_a_list_and_an_empty_value_keeps_the_default() {
        let rules = rules("verdict_suspicious_tags = none\nverdict_threat_levels_malicious=NONE\nverdict_benign_tags =")
            .expect("valid");
        assert!(rules.suspicious_tags.is_empty());
        assert!(rules.malicious_threat_levels.is_empty());
        assert_eq!(rules.benign_tags, VerdictRules::defaults().benign_tags);
    }

    #[test]
    fn settings_are_read_with_names_or_ids() {
        let rules = rules(concat!(
            "verdict_malicious_tags = tlp:red, custom:bad=*\n",
            "verdict_threat_levels_malicious = 1, medium\n",
            "verdict_threat_levels_suspicious = Low\n",
            "verdict_false_positive_sightings = 0\n",
            "verdict_benign_warninglists = List of known * resolvers\n",
            "verdict_check_warninglists = false\n",
        ))
        .expect("valid");
        let written: Vec<&str> = rules
            .malicious_tags
            .iter()
            .map(NamePattern::as_str)
            .collect();
        assert_eq!(written, vec!["tlp:red", "custom:bad=*"]);
        assert_eq!(rules.malicious_threat_levels, vec![1, 2]);
        assert_eq!(rules.suspicious_threat_levels, vec![3]);
        assert_eq!(rules.false_positive_sightings, 0);
        assert!(rules.is_benign_warninglist("List of known IPv6 public DNS resolvers"));
        assert!(!rules.is_benign_warninglist("Top 1000 websites"));
        assert!(!rules.check_warninglists);
        assert_eq!(rules.threat_level_verdict(2), Some(TagVerdict::Malicious));
        assert_eq!(rules.threat_level_verdict(3), Some(TagVerdict::Suspicious));
        assert_eq!(rules.threat_level_verdict(4), None);
    }

    #[test]
    fn an_unknown_verdict_key_is_named_with_the_known_ones() {
        let error = rules("verdict_malicous_tags = tlp:red").expect_err("a typo");
        assert!(
            error.starts_with(
                "test app.config: [fn_misp] verdict_malicous_tags is not a verdict setting; known: verdict_malicious_tags, "
            ),
            "{error}"
        );
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        assert_eq!(
            rules("verdict_suspicious_tags = a,,b").expect_err("empty pattern"),
            "test app.config: [fn_misp] verdict_suspicious_tags has an empty pattern (two commas in a row, or one at an end)"
        );
        assert_eq!(
            rules(r#"verdict_malicious_tags = misp-galaxy:threat-actor="APT*"#).expect_err("quote"),
            r#"test app.config: [fn_misp] verdict_malicious_tags pattern 'misp-galaxy:threat-actor="APT*' has an unbalanced '"' (tag values are written "value")"#
        );
        assert_eq!(
            rules("verdict_threat_levels_malicious = 1, severe").expect_err("level"),
            "test app.config: [fn_misp] verdict_threat_levels_malicious has 'severe', not a threat level (1 High, 2 Medium, 3 Low, 4 Undefined, or none)"
        );
        assert_eq!(
            rules("verdict_false_positive_sightings = some").expect_err("number"),
            "test app.config: [fn_misp] verdict_false_positive_sightings must be a whole number from 0 to 1000000, not 'some'"
        );
        assert!(
            rules("verdict_check_warninglists = maybe")
                .expect_err("bool")
                .contains("verdict_check_warninglists must be true or false")
        );
    }

    #[test]
    fn rules_are_parsed_once_per_section() {
        let first = config("verdict_malicious_tags = one:*");
        let again = config("verdict_malicious_tags = one:*");
        let other = config("verdict_malicious_tags = two:*");
        let a = rules_for(&first).expect("valid");
        let b = rules_for(&again).expect("valid");
        assert!(Arc::ptr_eq(&a, &b), "the same section is not parsed again");
        let c = rules_for(&other).expect("valid");
        assert_eq!(c.malicious_tags[0].as_str(), "two:*");
        assert!(rules_for(&config("verdict_x = 1")).is_err());
    }

    #[test]
    fn threat_level_names_follow_misps_ids() {
        assert_eq!(threat_level_name(1), Some("High"));
        assert_eq!(threat_level_name(4), Some("Undefined"));
        assert_eq!(threat_level_name(0), None);
        assert_eq!(threat_level_name(5), None);
    }

    proptest! {
        #[test]
        fn a_name_matches_itself_and_a_star_after_any_prefix(name in "[a-zA-Z0-9:=\" -]{0,30}", cut in 0usize..30) {
            prop_assume!(name.matches('"').count().is_multiple_of(2) && !name.trim().is_empty());
            let own = NamePattern::parse(name.trim()).expect("a quote-balanced name is a pattern");
            prop_assert!(own.matches(&name));
            let prefix: String = name.trim().chars().take(cut).collect();
            prop_assume!(prefix.matches('"').count().is_multiple_of(2));
            let starred = NamePattern::parse(&format!("{prefix}*")).expect("prefix pattern");
            prop_assert!(starred.matches(&name));
        }

        #[test]
        fn parsing_never_panics(written in "\\PC{0,60}") {
            let _ = parse_patterns(&written);
            let _ = parse_threat_levels(&written);
        }
    }
}
