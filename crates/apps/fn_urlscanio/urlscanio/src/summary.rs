//! The short `summary` beside the full report, so a playbook needs no digging.
//!
//! urlscan.io warns that properties may be missing from a report; every field here is
//! `null` (or an empty list, or 0 for the counts) when the report does not have it.

use serde_json::{Value, json};

/// `verdicts.overall` (malicious, score, categories, brands), the final page (URL, IP,
/// country, server), the number of requests and of domains contacted, and the result page.
pub fn summarize(report: &Value, result_page: Option<&str>) -> Value {
    let overall = &report["verdicts"]["overall"];
    let page = &report["page"];
    json!({
        "malicious": overall.get("malicious").and_then(Value::as_bool),
        "score": overall.get("score").filter(|score| score.is_number()),
        "categories": names(&overall["categories"]),
        "brands": names(&overall["brands"]),
        "final_url": text(&page["url"]),
        "ip": text(&page["ip"]),
        "country": text(&page["country"]),
        "server": text(&page["server"]),
        "requests": count(&report["data"]["requests"]),
        "domains": count(&report["lists"]["domains"]),
        "result_page": result_page,
    })
}

/// A list of names: urlscan gives plain strings in `overall` and objects with `name` or
/// `key` in the per-engine verdicts; both are accepted.
fn names(list: &Value) -> Vec<String> {
    let Some(items) = list.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::String(name) => Some(name.clone()),
            Value::Object(object) => object
                .get("name")
                .or_else(|| object.get("key"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        })
        .collect()
}

fn text(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|text| !text.is_empty())
        .map(str::to_string)
}

fn count(list: &Value) -> usize {
    list.as_array().map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malicious_report_is_summarised() {
        let report = json!({
            "page": {"url": "https://login.example/", "ip": "192.0.2.7", "country": "NL", "server": "nginx"},
            "lists": {"domains": ["login.example", "cdn.example", "fonts.example"]},
            "data": {"requests": [{}, {}, {}, {}]},
            "verdicts": {"overall": {"score": 100, "malicious": true,
                                     "categories": ["phishing"],
                                     "brands": ["paypal", {"key": "acme", "name": "Acme Bank"}]}},
        });
        assert_eq!(
            summarize(&report, Some("https://urlscan.example/result/u/")),
            json!({
                "malicious": true, "score": 100, "categories": ["phishing"],
                "brands": ["paypal", "Acme Bank"], "final_url": "https://login.example/",
                "ip": "192.0.2.7", "country": "NL", "server": "nginx",
                "requests": 4, "domains": 3, "result_page": "https://urlscan.example/result/u/",
            })
        );
    }

    #[test]
    fn missing_properties_become_null_or_zero() {
        assert_eq!(
            summarize(&json!({}), None),
            json!({
                "malicious": null, "score": null, "categories": [], "brands": [],
                "final_url": null, "ip": null, "country": null, "server": null,
                "requests": 0, "domains": 0, "result_page": null,
            })
        );
    }
}
