//! JSON written the way Python's `json.dumps` writes it, which is how resilient-sdk writes
//! `app.json`, `export.res` and the payload samples: `", "` and `": "` separators,
//! `ensure_ascii`, Python's float notation, and objects either in their own order or with
//! `sort_keys`.

use std::fmt::Write as _;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// A JSON value whose objects keep their keys in the order they were read or built, as a
/// Python `dict` does (`serde_json::Value` sorts them in this workspace).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// How keys are ordered when writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    /// As stored: Python's default.
    AsIs,
    /// `sort_keys=True`, at every depth.
    Sorted,
}

impl Json {
    /// Parses JSON text, keeping each object's key order.
    pub fn parse(text: &str) -> serde_json::Result<Json> {
        serde_json::from_str(text)
    }

    pub fn string(text: impl Into<String>) -> Json {
        Json::String(text.into())
    }

    /// An object from `(key, value)` pairs, in that order.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Object(
            pairs
                .into_iter()
                .map(|(key, value)| (key.into(), value))
                .collect(),
        )
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(pairs) => pairs
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// Sets `key` of an object, in place when present, else at the end. No-op on a non-object.
    pub fn insert(&mut self, key: &str, value: Json) {
        if let Json::Object(pairs) = self {
            match pairs.iter_mut().find(|(name, _)| name == key) {
                Some((_, slot)) => *slot = value,
                None => pairs.push((key.to_string(), value)),
            }
        }
    }

    /// `json.dumps(value)`, or with `sort_keys=True`: one line.
    pub fn to_python(&self, order: KeyOrder) -> String {
        let mut out = String::new();
        self.write(&mut out, order, None, 0);
        out
    }

    /// `json.dumps(value, indent=2)`, as resilient-sdk writes a payload sample file.
    pub fn to_python_indented(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, KeyOrder::AsIs, Some(2), 0);
        out
    }

    /// The same value as a `serde_json::Value` (whose objects are sorted).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(flag) => Value::Bool(*flag),
            Json::Number(number) => Value::Number(number.clone()),
            Json::String(text) => Value::String(text.clone()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_value()))
                    .collect(),
            ),
        }
    }

    fn write(&self, out: &mut String, order: KeyOrder, indent: Option<usize>, depth: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(true) => out.push_str("true"),
            Json::Bool(false) => out.push_str("false"),
            Json::Number(number) => out.push_str(&python_number(number)),
            Json::String(text) => write_string(out, text),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    separator(out, index, indent, depth + 1);
                    item.write(out, order, indent, depth + 1);
                }
                close(out, indent, depth);
                out.push(']');
            }
            Json::Object(pairs) if pairs.is_empty() => out.push_str("{}"),
            Json::Object(pairs) => {
                let mut pairs: Vec<&(String, Json)> = pairs.iter().collect();
                if order == KeyOrder::Sorted {
                    // Rust orders strings by UTF-8 bytes, which is Python's code point order.
                    pairs.sort_by(|left, right| left.0.cmp(&right.0));
                }
                out.push('{');
                for (index, (key, value)) in pairs.into_iter().enumerate() {
                    separator(out, index, indent, depth + 1);
                    write_string(out, key);
                    out.push_str(": ");
                    value.write(out, order, indent, depth + 1);
                }
                close(out, indent, depth);
                out.push('}');
            }
        }
    }
}

impl From<&Value> for Json {
    fn from(value: &Value) -> Json {
        match value {
            Value::Null => Json::Null,
            Value::Bool(flag) => Json::Bool(*flag),
            Value::Number(number) => Json::Number(number.clone()),
            Value::String(text) => Json::String(text.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), Json::from(value)))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Json, E> {
        Ok(Json::Bool(flag))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Json, E> {
        Ok(Json::Number(number.into()))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Json, E> {
        Ok(Json::Number(number.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<Json, E> {
        Number::from_f64(number)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, text: &str) -> Result<Json, E> {
        Ok(Json::String(text.to_string()))
    }

    fn visit_string<E>(self, text: String) -> Result<Json, E> {
        Ok(Json::String(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut pairs: Vec<(String, Json)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            // A repeated key keeps its first place and its last value, as in a Python dict.
            match pairs.iter_mut().find(|(name, _)| *name == key) {
                Some((_, slot)) => *slot = value,
                None => pairs.push((key, value)),
            }
        }
        Ok(Json::Object(pairs))
    }
}

fn separator(out: &mut String, index: usize, indent: Option<usize>, depth: usize) {
    match indent {
        // With an indent Python's item separator is "," (no trailing space).
        Some(width) => {
            if index > 0 {
                out.push(',');
            }
            out.push('\n');
            out.push_str(&" ".repeat(width * depth));
        }
        None => {
            if index > 0 {
                out.push_str(", ");
            }
        }
    }
}

fn close(out: &mut String, indent: Option<usize>, depth: usize) {
    if let Some(width) = indent {
        out.push('\n');
        out.push_str(&" ".repeat(width * depth));
    }
}

/// A string as `ensure_ascii` writes it: every character outside space..`~` escaped, those
/// beyond the Basic Multilingual Plane as a surrogate pair.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(character),
            other => {
                let mut units = [0u16; 2];
                for unit in other.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// An integer as is; a float as Python's `repr`: the shortest digits that read back, fixed
/// notation for exponents -4 to 15, else `1e+16` style.
fn python_number(number: &Number) -> String {
    let Some(float) = number.as_f64().filter(|_| number.is_f64()) else {
        return number.to_string();
    };
    if !float.is_finite() {
        // Unreachable through serde_json, which cannot hold these; Python's spelling anyway.
        return if float.is_nan() {
            "NaN".into()
        } else if float > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let scientific = format!("{float:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .map(|(mantissa, exponent)| (mantissa, exponent.parse::<i32>().unwrap_or(0)))
        .unwrap_or((scientific.as_str(), 0));
    if (-4..16).contains(&exponent) {
        let fixed = format!("{float}");
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python(text: &str, order: KeyOrder) -> String {
        Json::parse(text)
            .unwrap_or_else(|error| panic!("{text}: {error}"))
            .to_python(order)
    }

    #[test]
    fn writes_what_python_json_dumps_writes() {
        // Each expected text is what CPython 3.11's json.dumps printed for the same value.
        assert_eq!(
            python(
                r#"{"b": [1, 2.0, null, true], "a": {"y": "x", "x": {}}}"#,
                KeyOrder::AsIs
            ),
            r#"{"b": [1, 2.0, null, true], "a": {"y": "x", "x": {}}}"#
        );
        assert_eq!(
            python(r#"{"b": 1, "a": {"y": [], "x": 1}}"#, KeyOrder::Sorted),
            r#"{"a": {"x": 1, "y": []}, "b": 1}"#
        );
        assert_eq!(
            python(r#""é ✓ 😀 \u0001 \u007f \" \\ / \n""#, KeyOrder::AsIs),
            r#""\u00e9 \u2713 \ud83d\ude00 \u0001 \u007f \" \\ / \n""#
        );
        assert_eq!(
            python(
                "[1e16, 1.5e-5, 0.0001, 123456789012345.6, -0.5, 1e300]",
                KeyOrder::AsIs
            ),
            "[1e+16, 1.5e-05, 0.0001, 123456789012345.6, -0.5, 1e+300]"
        );
    }

    #[test]
    fn indented_output_has_no_trailing_spaces_after_commas() {
        let value = Json::parse(r#"{"a": [1, {"b": null}], "c": {}}"#)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            value.to_python_indented(),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {}\n}"
        );
    }

    #[test]
    fn parsing_keeps_key_order() {
        let value = Json::parse(r#"{"z": 1, "a": 2, "m": 3}"#).unwrap_or_else(|e| panic!("{e}"));
        let Json::Object(pairs) = value else {
            panic!("an object")
        };
        let keys: Vec<&str> = pairs.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }
}
