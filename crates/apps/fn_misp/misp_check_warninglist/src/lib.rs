//! The `misp_check_warninglist` function: which of MISP's enabled warninglists each of
//! several values is on (known benign or commonly seen values: public DNS resolvers, cloud
//! ranges, top domains), in one `warninglists/checkValue` request.

use fn_misp::indicators::{self, ListedValue};
use fn_misp::warninglists::{self, WarninglistHit};
use fn_misp::{APP, DESTINATION, MISP_VALUES};
use serde_json::{Value, json};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputError,
    Inputs,
};

/// Checks values against MISP's warninglists (`POST /warninglists/checkValue`).
#[derive(Debug, Clone, Copy)]
pub struct MispCheckWarninglist;

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_check_warninglist",
    display_name: "MISP Check Warninglist",
    description: "Check one or many values against MISP's enabled warninglists (known benign or common values such as public DNS resolvers, cloud ranges and top domains) in one request. misp_values takes one value per line (defanged forms such as 1.2.3[.]4 are read as the real ones) or a JSON list. content.results lists each value in the input's order with on_warninglist and the lists it is on (id, name, the matched entry); content.summary is one line.",
    destination: DESTINATION,
    uuid: "58ac81f7-97aa-47b5-b8ef-0e330f8faadb",
    app: &APP,
    inputs: &[MISP_VALUES],
};

soar_core::register_function!(MispCheckWarninglist);

#[soar_core::async_trait]
impl Function for MispCheckWarninglist {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let values = values_to_check(inputs)?;
        let client = fn_misp::connect(context)?;
        context.progress(format!(
            "Checking {} against MISP's warninglists",
            count_text(values.len(), "value", "values")
        ));
        let answer = warninglists::check_values(client, &values).await?;
        let hits = warninglists::hits_by_value(&answer);
        let results: Vec<Value> = values
            .iter()
            .map(|value| result_for(value, hits.get(value.as_str())))
            .collect();
        let summary = summary(&values, &hits);
        context.progress(summary.clone());
        Ok(FunctionOutput::success(answer)
            .with_extra("results", Value::Array(results))
            .with_extra("summary", json!(summary)))
    }
}

/// The values of `misp_values`, refanged, without repeats, in the input's order; an entry
/// that is not a value is an error naming it.
fn values_to_check(inputs: &Inputs) -> Result<Vec<String>, FunctionError> {
    let text = inputs.required_text(MISP_VALUES.name)?;
    let mut values: Vec<String> = Vec::new();
    for listed in indicators::parse_values(&text) {
        match listed {
            ListedValue::Value { value, .. } => {
                if !value.is_empty() && !values.contains(&value) {
                    values.push(value);
                }
            }
            ListedValue::Unreadable { entry, problem } => {
                return Err(InputError::Invalid {
                    field: MISP_VALUES.name.to_string(),
                    value: entry,
                    problem: format!("this entry {problem}"),
                }
                .into());
            }
        }
    }
    if values.is_empty() {
        return Err(InputError::Missing {
            field: MISP_VALUES.name.to_string(),
        }
        .into());
    }
    Ok(values)
}

fn result_for(value: &str, hits: Option<&Vec<WarninglistHit>>) -> Value {
    let lists: Vec<Value> = hits
        .into_iter()
        .flatten()
        .map(WarninglistHit::to_json)
        .collect();
    json!({"value": value, "on_warninglist": !lists.is_empty(), "warninglists": lists})
}

/// `2 of 3 values are on warninglists: 8.8.8.8 (List of known Google DNS), …`, or that
/// none is.
fn summary(
    values: &[String],
    hits: &std::collections::HashMap<String, Vec<WarninglistHit>>,
) -> String {
    let on_lists: Vec<String> = values
        .iter()
        .filter_map(|value| {
            let names: Vec<&str> = hits
                .get(value)?
                .iter()
                .map(|hit| hit.name.as_str())
                .collect();
            Some(format!("{value} ({})", names.join(", ")))
        })
        .collect();
    if on_lists.is_empty() {
        return match values.len() {
            1 => format!("{} is on no MISP warninglist", values[0]),
            count => format!("None of the {count} values is on a MISP warninglist"),
        };
    }
    if values.len() == 1 {
        return format!("{} is on a MISP warninglist", on_lists[0]);
    }
    format!(
        "{} of {} values are on MISP warninglists: {}",
        on_lists.len(),
        values.len(),
        on_lists.join("; ")
    )
}

fn count_text(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(inputs: Value) -> Result<Vec<String>, String> {
        let inputs = Inputs::from_value(inputs).expect("test inputs are an object");
        values_to_check(&inputs).map_err(|error| error.to_string())
    }

    #[test]
    fn values_are_read_from_lines_or_json_refanged_and_without_repeats() {
        assert_eq!(
            values(json!({"misp_values": "8.8.8[.]8\n\nexample[.]com\n8.8.8.8\n"})),
            Ok(vec!["8.8.8.8".to_string(), "example.com".to_string()])
        );
        assert_eq!(
            values(
                json!({"misp_values": {"format": "text", "content": "[\"1.1.1.1\", {\"value\": \"x.example\"}]"}})
            ),
            Ok(vec!["1.1.1.1".to_string(), "x.example".to_string()])
        );
    }

    #[test]
    fn no_values_or_a_bad_entry_names_the_field() {
        assert_eq!(
            values(json!({})),
            Err("input 'misp_values' is required but was not given".into())
        );
        assert_eq!(
            values(json!({"misp_values": "\n# only a comment\n"})),
            Err("input 'misp_values' is required but was not given".into())
        );
        assert_eq!(
            values(json!({"misp_values": "[1.5]"})),
            Err("input 'misp_values' is 1.5, this entry is neither a text value nor a {value, type} object".into())
        );
    }

    #[test]
    fn the_summary_names_the_values_on_lists() {
        let hit = |name: &str| WarninglistHit {
            id: "1".into(),
            name: name.into(),
            matched: None,
        };
        let values = vec!["8.8.8.8".to_string(), "x.example".to_string()];
        let mut hits = std::collections::HashMap::new();
        assert_eq!(
            summary(&values, &hits),
            "None of the 2 values is on a MISP warninglist"
        );
        assert_eq!(
            summary(&values[..1], &hits),
            "8.8.8.8 is on no MISP warninglist"
        );
        hits.insert(
            "8.8.8.8".to_string(),
            vec![hit("Google DNS"), hit("Public DNS")],
        );
        assert_eq!(
            summary(&values, &hits),
            "1 of 2 values are on MISP warninglists: 8.8.8.8 (Google DNS, Public DNS)"
        );
        assert_eq!(
            summary(&values[..1], &hits),
            "8.8.8.8 (Google DNS, Public DNS) is on a MISP warninglist"
        );
        assert_eq!(
            result_for("8.8.8.8", hits.get("8.8.8.8"))["on_warninglist"],
            json!(true)
        );
        assert_eq!(
            result_for("x.example", None),
            json!({"value": "x.example", "on_warninglist": false, "warninglists": []})
        );
    }
}
