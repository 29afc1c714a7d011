//! `warninglists/checkValue` for many values at once: one request, and MISP's answer read
//! back per value.

use std::collections::HashMap;

use serde_json::{Value, json};
use soar_core::misp::{Method, MispClient, MispError, Repeat};

/// One warninglist a value is on, as MISP names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarninglistHit {
    pub id: String,
    pub name: String,
    /// The list's entry that matched (MISP 2.4.150 and later say it).
    pub matched: Option<String>,
}

/// Asks MISP which enabled warninglists each of `values` is on, in one request; MISP's
/// answer as it came (`{value: [{id, name, matched}]}`, or `[]` when no value is on a list).
pub async fn check_values(client: &MispClient, values: &[String]) -> Result<Value, MispError> {
    client
        .request(
            Method::POST,
            &["warninglists", "checkValue"],
            Some(&json!(values)),
            Repeat::Safe,
        )
        .await
}

/// The lists each value of a checkValue answer is on; values on no list are absent.
pub fn hits_by_value(answer: &Value) -> HashMap<String, Vec<WarninglistHit>> {
    let Value::Object(by_value) = answer else {
        return HashMap::new();
    };
    by_value
        .iter()
        .filter_map(|(value, hits)| {
            let hits: Vec<WarninglistHit> = hits
                .as_array()?
                .iter()
                .map(|hit| WarninglistHit {
                    id: text(hit.get("id")),
                    name: text(hit.get("name")),
                    matched: hit
                        .get("matched")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
                .collect();
            (!hits.is_empty()).then(|| (value.clone(), hits))
        })
        .collect()
}

impl WarninglistHit {
    /// `{id, name, matched}` for a result.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "matched": self.matched})
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_read_per_value_and_empty_answers_mean_no_hits() {
        let answer = json!({
            "8.8.8.8": [{"id": "3", "name": "List of known Google DNS", "matched": "8.8.8.8/32"}],
            "1.1.1.1": [{"id": 4, "name": "Cloudflare"}],
            "x.example": [],
        });
        let hits = hits_by_value(&answer);
        assert_eq!(hits.len(), 2);
        assert_eq!(
            hits["8.8.8.8"],
            [WarninglistHit {
                id: "3".into(),
                name: "List of known Google DNS".into(),
                matched: Some("8.8.8.8/32".into())
            }]
        );
        assert_eq!(hits["1.1.1.1"][0].id, "4");
        assert_eq!(hits["1.1.1.1"][0].matched, None);
        assert!(hits_by_value(&json!([])).is_empty());
    }
}
