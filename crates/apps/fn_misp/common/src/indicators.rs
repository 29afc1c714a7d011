//! Values as analysts paste them: a list read from a text block or JSON, defanged forms
//! (`hxxp://`, `1.2.3[.]4`, `user[@]example.com`) turned back into real ones, and the MISP
//! attribute type a value plainly is. Pure functions, shared by the functions that take many
//! values at once.

use std::net::IpAddr;

use serde_json::Value;

/// One value of a list, as read: refanged, with the type the list gave for it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedValue {
    /// A value (refanged and trimmed) and the MISP type given with it.
    Value {
        value: String,
        given_type: Option<String>,
    },
    /// An entry that is not a value: what it was and why it was not taken.
    Unreadable { entry: String, problem: String },
}

/// Reads a list of values: a JSON list of strings or of `{value, type}` objects, or else a
/// text block with one value per line (blank lines and lines starting with `#` skipped).
/// Every value is refanged. The order of the input is kept.
pub fn parse_values(text: &str) -> Vec<ListedValue> {
    let trimmed = text.trim();
    if trimmed.starts_with('[')
        && let Ok(Value::Array(entries)) = serde_json::from_str::<Value>(trimmed)
    {
        return entries.iter().map(listed_from_json).collect();
    }
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| ListedValue::Value {
            value: refang(line),
            given_type: None,
        })
        .collect()
}

/// The real form of a defanged value: `hxxp://`, `hxxps://` (any case) and `fxp://` at the
/// start; `[.]`, `(.)`, `{.}`, `[dot]`, `(dot)`, `[:]`, `[://]`, `[/]`, `[@]`, `(@)`, `[at]`
/// and `(at)` anywhere; surrounding spaces trimmed. A value that was not defanged is returned
/// as it is, and refanging twice changes nothing more.
pub fn refang(value: &str) -> String {
    let mut current = value.trim().to_string();
    // Each pass either shortens the text or fixes the scheme once, so this ends; looping
    // until nothing changes makes `[[.]]` come out as `.`, as refanging twice would.
    loop {
        let next = refang_once(&current);
        if next == current {
            return current;
        }
        current = next;
    }
}

/// The MISP attribute type a value plainly is, or `None` when it is none of the kinds
/// recognised: `ip-dst` (an IPv4 or IPv6 address, or a CIDR block), `ip-dst|port`,
/// `domain|ip`, `url` (with a scheme), `email-src` (MISP's own default for an address in
/// free text), `md5`, `sha1`, `sha256`, `sha512` (by hex length), `filename|md5` and the
/// other `filename|<hash>` pairs, `vulnerability` (a CVE id), `filename` (a name ending in a
/// common file extension), `domain` (two labels, or three under a two-level suffix such as
/// `co.uk`) and `hostname` (more labels).
pub fn detect_type(value: &str) -> Option<&'static str> {
    let value = value.trim();
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return None;
    }
    if let Some((left, right)) = value.split_once('|') {
        return detect_pair(left, right);
    }
    if is_ip_or_cidr(value) {
        return Some("ip-dst");
    }
    if let Some(hash) = hash_type(value) {
        return Some(hash);
    }
    if is_url(value) {
        return Some("url");
    }
    if is_email(value) {
        return Some("email-src");
    }
    if is_cve(value) {
        return Some("vulnerability");
    }
    if is_filename(value) {
        return Some("filename");
    }
    host_type(value)
}

/// `md5`, `sha1`, `sha256` or `sha512` for a hex string of that length.
pub fn hash_type(value: &str) -> Option<&'static str> {
    if !value.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    match value.len() {
        32 => Some("md5"),
        40 => Some("sha1"),
        64 => Some("sha256"),
        128 => Some("sha512"),
        _ => None,
    }
}

/// File extensions that mark a dotted name as a file rather than a host, even where the same
/// letters are a top-level domain (`.zip`, `.mov`): reports name files far more often.
const FILE_EXTENSIONS: &[&str] = &[
    "7z", "apk", "bat", "bin", "cab", "chm", "class", "cmd", "cpl", "dat", "dll", "dmg", "doc",
    "docm", "docx", "elf", "exe", "gz", "hta", "img", "iso", "jar", "js", "jse", "lnk", "mov",
    "msi", "one", "pdf", "ppt", "pptx", "ps1", "py", "rar", "rtf", "scr", "sh", "sys", "tar",
    "tmp", "txt", "vbe", "vbs", "wsf", "xls", "xlsm", "xlsx", "zip",
];

/// Public suffixes of two labels, under which a domain has three labels.
const TWO_LABEL_SUFFIXES: &[&str] = &[
    "ac.uk", "co.jp", "co.kr", "co.nz", "co.uk", "co.za", "com.au", "com.br", "com.cn", "com.mx",
    "com.tr", "gov.uk", "net.au", "org.au", "org.uk",
];

fn listed_from_json(entry: &Value) -> ListedValue {
    match entry {
        Value::String(value) => ListedValue::Value {
            value: refang(value),
            given_type: None,
        },
        Value::Object(fields) => {
            let Some(Value::String(value)) = fields.get("value") else {
                return ListedValue::Unreadable {
                    entry: entry.to_string(),
                    problem: "has no text 'value'".to_string(),
                };
            };
            let given_type = match fields.get("type") {
                None | Some(Value::Null) => None,
                Some(Value::String(given)) if given.trim().is_empty() => None,
                Some(Value::String(given)) => Some(given.trim().to_string()),
                Some(_) => {
                    return ListedValue::Unreadable {
                        entry: entry.to_string(),
                        problem: "its 'type' is not text".to_string(),
                    };
                }
            };
            ListedValue::Value {
                value: refang(value),
                given_type,
            }
        }
        other => ListedValue::Unreadable {
            entry: other.to_string(),
            problem: "is neither a text value nor a {value, type} object".to_string(),
        },
    }
}

/// Brackets around a dot, colon, slash or at sign, and their spelled-out forms.
const DEFANGED: &[(&str, &str)] = &[
    ("[.]", "."),
    ("(.)", "."),
    ("{.}", "."),
    ("[dot]", "."),
    ("(dot)", "."),
    ("{dot}", "."),
    ("[://]", "://"),
    ("[:]", ":"),
    ("[/]", "/"),
    ("[@]", "@"),
    ("(@)", "@"),
    ("{@}", "@"),
    ("[at]", "@"),
    ("(at)", "@"),
];

fn refang_once(value: &str) -> String {
    let mut text = value.to_string();
    for (defanged, real) in DEFANGED {
        if text.contains(defanged) {
            text = text.replace(defanged, real);
        }
        let upper = defanged.to_uppercase();
        if upper != *defanged && text.contains(&upper) {
            text = text.replace(&upper, real);
        }
    }
    for (defanged, real) in [
        ("hxxps://", "https://"),
        ("hxxp://", "http://"),
        ("fxp://", "ftp://"),
    ] {
        if text.len() >= defanged.len()
            && text.is_char_boundary(defanged.len())
            && text[..defanged.len()].eq_ignore_ascii_case(defanged)
        {
            text = format!("{real}{}", &text[defanged.len()..]);
            break;
        }
    }
    text
}

fn detect_pair(left: &str, right: &str) -> Option<&'static str> {
    if left.is_empty() || right.is_empty() || right.contains('|') {
        return None;
    }
    if let Some(hash) = hash_type(right) {
        return Some(match hash {
            "md5" => "filename|md5",
            "sha1" => "filename|sha1",
            "sha256" => "filename|sha256",
            _ => "filename|sha512",
        });
    }
    if left.parse::<IpAddr>().is_ok() && right.parse::<u16>().is_ok() {
        return Some("ip-dst|port");
    }
    if right.parse::<IpAddr>().is_ok() && host_type(left).is_some() {
        return Some("domain|ip");
    }
    None
}

fn is_ip_or_cidr(value: &str) -> bool {
    match value.split_once('/') {
        None => value.parse::<IpAddr>().is_ok(),
        Some((address, prefix)) => {
            let Ok(address) = address.parse::<IpAddr>() else {
                return false;
            };
            let Ok(prefix) = prefix.parse::<u8>() else {
                return false;
            };
            let most = if address.is_ipv4() { 32 } else { 128 };
            prefix <= most && prefix.to_string().len() == prefix_digits(value)
        }
    }
}

/// The number of digits after the `/` (so `1.2.3.4/024` is not a CIDR block).
fn prefix_digits(value: &str) -> usize {
    value.rsplit('/').next().map_or(0, str::len)
}

fn is_url(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once("://") else {
        return false;
    };
    let scheme_ok = !scheme.is_empty()
        && scheme.starts_with(|first: char| first.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|letter| letter.is_ascii_alphanumeric() || "+-.".contains(letter));
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default();
    scheme_ok && !host.is_empty()
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    !local.is_empty() && !local.contains('@') && host_type(domain).is_some()
}

fn is_cve(value: &str) -> bool {
    let mut parts = value.split('-');
    let (Some(cve), Some(year), Some(number), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    cve.eq_ignore_ascii_case("cve")
        && year.len() == 4
        && year.bytes().all(|byte| byte.is_ascii_digit())
        && number.len() >= 4
        && number.bytes().all(|byte| byte.is_ascii_digit())
}

fn is_filename(value: &str) -> bool {
    let Some((stem, extension)) = value.rsplit_once('.') else {
        return false;
    };
    !stem.is_empty()
        && !value.contains(['/', '\\', ':', '@'])
        && FILE_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str())
}

/// `domain` or `hostname` for a dotted name whose labels are letters, digits, hyphens (and
/// underscores, seen in real hostnames), ending in an alphabetic or `xn--` top-level domain.
fn host_type(value: &str) -> Option<&'static str> {
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.len() > 253 {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return None;
    }
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|letter| letter.is_ascii_alphanumeric() || letter == '-' || letter == '_')
    };
    if !labels.iter().all(label_ok) {
        return None;
    }
    let top = labels[labels.len() - 1];
    let top_ok = (top.len() >= 2 && top.chars().all(|letter| letter.is_ascii_alphabetic()))
        || (top.len() > 4 && top.to_ascii_lowercase().starts_with("xn--"));
    if !top_ok {
        return None;
    }
    let suffix = labels[labels.len() - 2..].join(".").to_ascii_lowercase();
    let domain_labels = if TWO_LABEL_SUFFIXES.contains(&suffix.as_str()) {
        3
    } else {
        2
    };
    match labels.len().cmp(&domain_labels) {
        std::cmp::Ordering::Less => None,
        std::cmp::Ordering::Equal => Some("domain"),
        std::cmp::Ordering::Greater => Some("hostname"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute_type::is_misp_type;
    use proptest::prelude::*;

    fn value(text: &str) -> ListedValue {
        ListedValue::Value {
            value: text.to_string(),
            given_type: None,
        }
    }

    #[test]
    fn defanged_forms_from_reports_are_refanged() {
        for (defanged, real) in [
            ("hxxp://evil[.]example/path", "http://evil.example/path"),
            ("hXXps://evil(.)example[/]a", "https://evil.example/a"),
            ("1.2.3[.]4", "1.2.3.4"),
            ("10[.]0[.]0[.]1", "10.0.0.1"),
            ("user[@]example[dot]com", "user@example.com"),
            ("user(at)example(dot)com", "user@example.com"),
            ("hxxp[://]evil.example", "http://evil.example"),
            ("2001:db8[:]1", "2001:db8:1"),
            ("  evil[.]example  ", "evil.example"),
            ("fxp://files[.]example", "ftp://files.example"),
            ("evil[DOT]example", "evil.example"),
            ("[[.]]", "."),
            ("plain.example", "plain.example"),
        ] {
            assert_eq!(refang(defanged), real, "refang({defanged:?})");
        }
    }

    #[test]
    fn types_are_detected_as_misp_would_store_them() {
        for (text, expected) in [
            ("1.2.3.4", Some("ip-dst")),
            ("2001:db8::1", Some("ip-dst")),
            ("10.0.0.0/8", Some("ip-dst")),
            ("10.0.0.0/33", None),
            ("1.2.3.4|443", Some("ip-dst|port")),
            ("evil.example|1.2.3.4", Some("domain|ip")),
            ("example.com", Some("domain")),
            ("example.co.uk", Some("domain")),
            ("www.example.co.uk", Some("hostname")),
            ("mail.evil.example", Some("hostname")),
            ("http://evil.example/a?b=c", Some("url")),
            ("user@example.com", Some("email-src")),
            ("d41d8cd98f00b204e9800998ecf8427e", Some("md5")),
            ("da39a3ee5e6b4b0d3255bfef95601890afd80709", Some("sha1")),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                Some("sha256"),
            ),
            (
                "invoice.exe|d41d8cd98f00b204e9800998ecf8427e",
                Some("filename|md5"),
            ),
            ("CVE-2021-44228", Some("vulnerability")),
            ("invoice.pdf", Some("filename")),
            ("not a value", None),
            ("localhost", None),
            ("1.2.3.4.5", None),
            ("", None),
        ] {
            assert_eq!(detect_type(text), expected, "detect_type({text:?})");
        }
    }

    #[test]
    fn every_detected_type_is_a_misp_type() {
        for detected in [
            "ip-dst",
            "ip-dst|port",
            "domain|ip",
            "url",
            "email-src",
            "md5",
            "sha1",
            "sha256",
            "sha512",
            "filename|md5",
            "filename|sha1",
            "filename|sha256",
            "filename|sha512",
            "vulnerability",
            "filename",
            "domain",
            "hostname",
        ] {
            assert!(is_misp_type(detected), "{detected} is not in describeTypes");
        }
    }

    #[test]
    fn a_text_block_is_one_value_per_line() {
        assert_eq!(
            parse_values("# from the report\n1.2.3[.]4\n\n  hxxp://evil[.]example  \n"),
            vec![value("1.2.3.4"), value("http://evil.example")]
        );
    }

    #[test]
    fn a_json_list_holds_strings_or_value_type_objects() {
        assert_eq!(
            parse_values(
                r#"["1.2.3[.]4", {"value": "abc", "type": "text"}, {"value": "x.example", "type": ""}, 7, {"type": "md5"}]"#
            ),
            vec![
                value("1.2.3.4"),
                ListedValue::Value {
                    value: "abc".into(),
                    given_type: Some("text".into())
                },
                value("x.example"),
                ListedValue::Unreadable {
                    entry: "7".into(),
                    problem: "is neither a text value nor a {value, type} object".into()
                },
                ListedValue::Unreadable {
                    entry: r#"{"type":"md5"}"#.into(),
                    problem: "has no text 'value'".into()
                },
            ]
        );
    }

    #[test]
    fn a_line_starting_with_a_bracket_that_is_not_json_is_a_line() {
        assert_eq!(parse_values("[.]example.com"), vec![value(".example.com")]);
    }

    fn defang(value: &str) -> String {
        let text = value.replace('.', "[.]").replace('@', "[@]");
        match text.split_once("://") {
            Some(("http", rest)) => format!("hxxp://{rest}"),
            Some(("https", rest)) => format!("hxxps://{rest}"),
            _ => text,
        }
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9]{0,10}"
    }

    fn domain() -> impl Strategy<Value = String> {
        (label(), "[a-z]{2,6}").prop_map(|(name, top)| format!("{name}.{top}"))
    }

    proptest! {
        #[test]
        fn refang_is_idempotent(text in "\\PC{0,40}") {
            let once = refang(&text);
            prop_assert_eq!(refang(&once), once);
        }

        #[test]
        fn refang_of_a_defanged_value_gives_the_value(
            ip in any::<std::net::Ipv4Addr>(),
            host in domain(),
            user in label(),
            path in "[a-z0-9/]{0,12}",
            https in any::<bool>(),
        ) {
            let scheme = if https { "https" } else { "http" };
            for real in [
                ip.to_string(),
                host.clone(),
                format!("{user}@{host}"),
                format!("{scheme}://{host}/{path}"),
            ] {
                prop_assert_eq!(refang(&defang(&real)), real);
            }
        }

        #[test]
        fn generated_values_get_their_type(
            ip in any::<std::net::Ipv4Addr>(),
            ipv6 in any::<std::net::Ipv6Addr>(),
            hash in "[0-9a-f]{64}",
            host in domain(),
            sub in label(),
        ) {
            prop_assume!(!FILE_EXTENSIONS.contains(&host.rsplit('.').next().unwrap_or_default()));
            prop_assert_eq!(detect_type(&ip.to_string()), Some("ip-dst"));
            prop_assert_eq!(detect_type(&ipv6.to_string()), Some("ip-dst"));
            prop_assert_eq!(detect_type(&hash), Some("sha256"));
            prop_assert_eq!(detect_type(&host), Some("domain"));
            prop_assert_eq!(detect_type(&format!("{sub}.{host}")), Some("hostname"));
        }

        #[test]
        fn detection_never_panics_and_names_misp_types(text in "\\PC{0,60}") {
            if let Some(detected) = detect_type(&text) {
                prop_assert!(is_misp_type(detected));
            }
        }
    }
}
