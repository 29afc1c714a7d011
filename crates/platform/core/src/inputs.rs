//! Function inputs as SOAR sends them, with typed getters whose errors name the field.
//!
//! SOAR's forms: text is a string; textarea is `{"format": …, "content": …}`; select is
//! `{"id": …, "name": …}`; multiselect is a list of those; numbers are JSON numbers;
//! booleans; dates are epoch milliseconds; `null` means unset.

use serde_json::{Map, Value};

/// The `inputs` object of a function message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    values: Map<String, Value>,
}

/// An input that is missing or has the wrong shape; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("input '{field}' is required but was not given")]
    Missing { field: String },
    #[error("input '{field}' must be {expected}, got {got}")]
    WrongType {
        field: String,
        expected: &'static str,
        got: String,
    },
    #[error("input '{field}' is {value}, {problem}")]
    Invalid {
        field: String,
        value: String,
        problem: String,
    },
    #[error("the function's inputs must be a JSON object, got {got}")]
    NotAnObject { got: String },
}

impl Inputs {
    /// Wraps the `inputs` value of a message; `null` or a missing object means no inputs.
    pub fn from_value(value: Value) -> Result<Inputs, InputError> {
        match value {
            Value::Object(values) => Ok(Inputs { values }),
            Value::Null => Ok(Inputs::default()),
            other => Err(InputError::NotAnObject {
                got: describe(&other),
            }),
        }
    }

    pub fn from_map(values: Map<String, Value>) -> Inputs {
        Inputs { values }
    }

    pub fn raw(&self, field: &str) -> Option<&Value> {
        self.values.get(field).filter(|value| !value.is_null())
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.values
    }

    /// A text or textarea input; an empty string counts as unset, as in resilient-lib.
    pub fn text(&self, field: &str) -> Result<Option<String>, InputError> {
        let Some(value) = self.raw(field) else {
            return Ok(None);
        };
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Object(object) => match object.get("content") {
                Some(Value::String(content)) => content.clone(),
                Some(Value::Null) | None => return Ok(None),
                Some(_) => return Err(wrong_type(field, "text", value)),
            },
            _ => return Err(wrong_type(field, "text", value)),
        };
        Ok(if text.is_empty() { None } else { Some(text) })
    }

    pub fn required_text(&self, field: &str) -> Result<String, InputError> {
        self.text(field)?.ok_or_else(|| missing(field))
    }

    /// A whole-number input. A float with no fractional part is accepted; anything else is not.
    pub fn integer(&self, field: &str) -> Result<Option<i64>, InputError> {
        let Some(value) = self.raw(field) else {
            return Ok(None);
        };
        match value {
            Value::Number(number) => {
                if let Some(integer) = number.as_i64() {
                    return Ok(Some(integer));
                }
                match number.as_f64() {
                    Some(float) if float.fract() == 0.0 && float.abs() < 9.0e15 => {
                        Ok(Some(float as i64))
                    }
                    _ => Err(wrong_type(field, "a whole number", value)),
                }
            }
            _ => Err(wrong_type(field, "a number", value)),
        }
    }

    pub fn required_integer(&self, field: &str) -> Result<i64, InputError> {
        self.integer(field)?.ok_or_else(|| missing(field))
    }

    /// A whole-number input that must lie in `range`; the error lists what is allowed.
    pub fn integer_in(
        &self,
        field: &str,
        range: std::ops::RangeInclusive<i64>,
        meaning: &str,
    ) -> Result<Option<i64>, InputError> {
        let Some(integer) = self.integer(field)? else {
            return Ok(None);
        };
        if range.contains(&integer) {
            return Ok(Some(integer));
        }
        Err(InputError::Invalid {
            field: field.to_string(),
            value: integer.to_string(),
            problem: format!(
                "must be from {} to {} ({meaning})",
                range.start(),
                range.end()
            ),
        })
    }

    pub fn boolean(&self, field: &str) -> Result<Option<bool>, InputError> {
        let Some(value) = self.raw(field) else {
            return Ok(None);
        };
        match value {
            Value::Bool(flag) => Ok(Some(*flag)),
            _ => Err(wrong_type(field, "true or false", value)),
        }
    }

    /// A select input's label (`{"id": 3963, "name": "Event"}` gives `Event`); a plain string
    /// is taken as the label.
    pub fn select(&self, field: &str) -> Result<Option<String>, InputError> {
        let Some(value) = self.raw(field) else {
            return Ok(None);
        };
        match select_label(value) {
            Some(label) => Ok(Some(label)),
            None => Err(wrong_type(
                field,
                "a select value {\"id\", \"name\"}",
                value,
            )),
        }
    }

    pub fn required_select(&self, field: &str) -> Result<String, InputError> {
        self.select(field)?.ok_or_else(|| missing(field))
    }

    /// A multiselect input's labels.
    pub fn multiselect(&self, field: &str) -> Result<Vec<String>, InputError> {
        let Some(value) = self.raw(field) else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = value else {
            return Err(wrong_type(field, "a list of select values", value));
        };
        items
            .iter()
            .map(|item| {
                select_label(item)
                    .ok_or_else(|| wrong_type(field, "a list of select values", value))
            })
            .collect()
    }

    /// A datepicker or datetimepicker input, in epoch milliseconds.
    pub fn epoch_millis(&self, field: &str) -> Result<Option<i64>, InputError> {
        self.integer(field)
    }

    /// The inputs the way `@app_function` normalises them for the result payload: selects
    /// become their label, textareas their content, multiselects a list of labels.
    pub fn normalized(&self) -> Value {
        let normalized = self
            .values
            .iter()
            .map(|(name, value)| (name.clone(), normalize(value)))
            .collect();
        Value::Object(normalized)
    }
}

fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(name)) = object.get("name") {
                return Value::String(name.clone());
            }
            if let Some(content) = object.get("content") {
                return content.clone();
            }
            value.clone()
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn select_label(value: &Value) -> Option<String> {
    match value {
        Value::String(label) => Some(label.clone()),
        Value::Object(object) => match object.get("name") {
            Some(Value::String(label)) => Some(label.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn missing(field: &str) -> InputError {
    InputError::Missing {
        field: field.to_string(),
    }
}

fn wrong_type(field: &str, expected: &'static str, got: &Value) -> InputError {
    InputError::WrongType {
        field: field.to_string(),
        expected,
        got: describe(got),
    }
}

/// A short rendering of a value for an error message: the JSON text, cut to 80 characters.
pub fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 80 {
        return text;
    }
    let cut: String = text.chars().take(77).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs(value: Value) -> Inputs {
        Inputs::from_value(value).expect("test inputs are an object")
    }

    #[test]
    fn text_accepts_strings_and_textarea_objects() {
        let inputs = inputs(json!({
            "plain": "1.2.3.4",
            "area": {"format": "text", "content": "hello"},
            "empty": "",
            "unset": null,
        }));
        assert_eq!(inputs.text("plain").unwrap().as_deref(), Some("1.2.3.4"));
        assert_eq!(inputs.text("area").unwrap().as_deref(), Some("hello"));
        assert_eq!(inputs.text("empty").unwrap(), None);
        assert_eq!(inputs.text("unset").unwrap(), None);
        assert_eq!(inputs.text("absent").unwrap(), None);
    }

    #[test]
    fn required_text_names_the_missing_field() {
        let error = inputs(json!({}))
            .required_text("misp_event_name")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "input 'misp_event_name' is required but was not given"
        );
    }

    #[test]
    fn integer_error_names_field_and_value() {
        let error = inputs(json!({"misp_event_id": "abc"}))
            .integer("misp_event_id")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "input 'misp_event_id' must be a number, got \"abc\""
        );
    }

    #[test]
    fn integer_accepts_whole_floats_but_not_fractions() {
        let inputs = inputs(json!({"a": 5, "b": 5.0, "c": 5.5}));
        assert_eq!(inputs.integer("a").unwrap(), Some(5));
        assert_eq!(inputs.integer("b").unwrap(), Some(5));
        assert_eq!(
            inputs.integer("c").unwrap_err().to_string(),
            "input 'c' must be a whole number, got 5.5"
        );
    }

    #[test]
    fn integer_in_rejects_out_of_range_with_the_allowed_range() {
        let error = inputs(json!({"misp_threat_level": 7}))
            .integer_in(
                "misp_threat_level",
                1..=4,
                "1 high, 2 medium, 3 low, 4 undefined",
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "input 'misp_threat_level' is 7, must be from 1 to 4 (1 high, 2 medium, 3 low, 4 undefined)"
        );
    }

    #[test]
    fn select_takes_the_label() {
        let inputs = inputs(json!({
            "object": {"id": 3963, "name": "Event"},
            "label": "Attribute",
            "bad": 12,
        }));
        assert_eq!(inputs.select("object").unwrap().as_deref(), Some("Event"));
        assert_eq!(
            inputs.select("label").unwrap().as_deref(),
            Some("Attribute")
        );
        assert!(matches!(
            inputs.select("bad"),
            Err(InputError::WrongType { .. })
        ));
    }

    #[test]
    fn multiselect_takes_every_label() {
        let inputs = inputs(json!({"tags": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}));
        assert_eq!(inputs.multiselect("tags").unwrap(), vec!["a", "b"]);
        assert!(inputs.multiselect("absent").unwrap().is_empty());
    }

    #[test]
    fn boolean_rejects_strings() {
        let inputs = inputs(json!({"public": true, "wrong": "yes"}));
        assert_eq!(inputs.boolean("public").unwrap(), Some(true));
        assert_eq!(
            inputs.boolean("wrong").unwrap_err().to_string(),
            "input 'wrong' must be true or false, got \"yes\""
        );
    }

    #[test]
    fn non_object_inputs_are_refused() {
        let error = Inputs::from_value(json!([1, 2])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the function's inputs must be a JSON object, got [1,2]"
        );
        assert_eq!(Inputs::from_value(Value::Null).unwrap(), Inputs::default());
    }

    #[test]
    fn normalized_flattens_selects_and_textareas() {
        let inputs = inputs(json!({
            "misp_tag_type": {"id": 3963, "name": "Event"},
            "notes": {"format": "html", "content": "<p>x</p>"},
            "many": [{"id": 1, "name": "a"}],
            "misp_event_id": 42,
        }));
        assert_eq!(
            inputs.normalized(),
            json!({"misp_tag_type": "Event", "notes": "<p>x</p>", "many": ["a"], "misp_event_id": 42})
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(200);
        let described = describe(&Value::String(long));
        assert_eq!(described.chars().count(), 80);
        assert!(described.ends_with("..."));
    }
}
