//! Changing attributes and sightings: `attributes/view`, `attributes/edit`, `attributes/delete`
//! (soft and hard), `sightings/restSearch`, and the `deleted` filter that keeps soft-deleted
//! attributes out of views and searches unless a request asks for them. Statuses and texts are
//! MISP 2.5's (`AttributesController`, `MispAttribute`, `Sighting`).

use axum::http::Method;
use serde_json::{Map, Value, json};

use super::{
    ACL_FAILED, BAD_ATTRIBUTE_DISTRIBUTION, BAD_CATEGORY, BAD_VALUE, DESCRIBE_TYPES,
    DUPLICATE_ATTRIBUTE, EMPTY_VALUE, INVALID_JSON, ORG_UUID, Reply, ReplyBody, State,
    category_allows, error, int_like, now, ok, result_headers, save_fail, string_list, truthy,
    unwrap_object, value_fits_type, value_text,
};
use crate::ORG_NAME;

/// Which attributes a request shows by their `deleted` flag: restSearch's `deleted` filter is
/// 0 or absent for live ones, 1 for deleted ones only, `[0, 1]` for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeletedFilter {
    Live,
    DeletedOnly,
    Both,
}

/// `validCategory`'s message, which MISP cuts short itself.
const UNKNOWN_CATEGORY: &str =
    "Options : Payload delivery, Antivirus detection, Payload installation, Files dropped ...";
const BAD_SEEN: &str = "Invalid ISO 8601 format";
const LAST_BEFORE_FIRST: &str = "Last seen value should be greater than first seen value";
const BAD_SHARING_GROUP: &str = "Invalid Sharing Group or not authorised.";
/// The fields `attributes/edit` takes from a request (MISP's `EDITABLE_FIELDS` that an API
/// caller sets; the rest are the server's).
const EDITABLE: [&str; 9] = [
    "category",
    "type",
    "value",
    "to_ids",
    "comment",
    "distribution",
    "disable_correlation",
    "first_seen",
    "last_seen",
];

impl DeletedFilter {
    pub(super) fn from_filters(filters: &Map<String, Value>) -> DeletedFilter {
        let wanted: Vec<String> = filters.get("deleted").map(string_list).unwrap_or_default();
        let live = wanted.is_empty() || wanted.iter().any(|flag| is_false_flag(flag));
        let deleted = wanted.iter().any(|flag| is_true_flag(flag));
        match (live, deleted) {
            (true, true) => DeletedFilter::Both,
            (false, true) => DeletedFilter::DeletedOnly,
            _ => DeletedFilter::Live,
        }
    }

    pub(super) fn shows(self, attribute: &Value) -> bool {
        match self {
            DeletedFilter::Live => !is_deleted(attribute),
            DeletedFilter::DeletedOnly => is_deleted(attribute),
            DeletedFilter::Both => true,
        }
    }
}

pub(super) fn is_deleted(attribute: &Value) -> bool {
    attribute.get("deleted").is_some_and(truthy)
}

impl State {
    /// Answers the endpoints of this module; `None` leaves the request to the other routes.
    pub(super) fn answer_attributes_change(
        &mut self,
        method: &Method,
        segments: &[&str],
        body: &Value,
        path: &str,
    ) -> Option<Reply> {
        let reference = segments.get(2).copied();
        let not_json = body.is_string();
        let permissions = self.permissions;
        let reply = match (segments.first().copied(), segments.get(1).copied()) {
            (Some("attributes"), Some("view")) => match *method {
                Method::GET | Method::HEAD | Method::POST => self.view_attribute(reference, path),
                _ => error(405, "Method Not Allowed", path),
            },
            (Some("attributes"), Some("edit")) => match *method {
                Method::POST | Method::PUT if !permissions.add => error(403, ACL_FAILED, path),
                Method::POST | Method::PUT if not_json => error(405, INVALID_JSON, path),
                Method::POST | Method::PUT => self.edit_attribute(reference, body, path),
                _ => error(405, "Method Not Allowed", path),
            },
            (Some("attributes"), Some("delete")) => match *method {
                _ if !permissions.add => error(403, ACL_FAILED, path),
                Method::POST | Method::DELETE => {
                    // `/1`, the named `/hard:1`, or `{"hard": 1}` in the body.
                    let hard = segments
                        .get(3)
                        .is_some_and(|flag| matches!(*flag, "1" | "hard:1" | "hard:true"))
                        || body.get("hard").is_some_and(truthy);
                    self.delete_attribute(reference, hard, path)
                }
                _ => error(
                    405,
                    "This function is only accessible via POST requests.",
                    path,
                ),
            },
            (Some("sightings"), Some("restSearch")) => match *method {
                Method::POST if not_json => error(405, INVALID_JSON, path),
                Method::POST => self.search_sightings(reference, body, path),
                _ => error(
                    400,
                    "Restsearch queries using GET and no parameters are not allowed. If you have passed parameters via a JSON body, make sure you use POST requests.",
                    path,
                ),
            },
            _ => return None,
        };
        Some(reply)
    }

    /// `attributes/view/{id|uuid}`: MISP answers an unknown or deleted attribute with 405.
    fn view_attribute(&self, reference: Option<&str>, path: &str) -> Reply {
        let reference = match checked_reference(reference, path) {
            Ok(reference) => reference,
            Err(reply) => return reply,
        };
        match self.live_attribute(reference) {
            Some((event, attribute)) => ok(
                json!({"Attribute": attribute_answer(&self.events[event]["Attribute"][attribute])}),
            ),
            None => error(405, "Invalid attribute", path),
        }
    }

    fn edit_attribute(&mut self, reference: Option<&str>, body: &Value, path: &str) -> Reply {
        const URL: &str = "/attributes/edit";
        let reference = match checked_reference(reference, path) {
            Ok(reference) => reference,
            Err(reply) => return reply,
        };
        let Some((event_index, attribute_index)) = self.live_attribute(reference) else {
            return error(404, "Invalid attribute", path);
        };
        let request = match unwrap_object(body.clone(), &["Attribute"]) {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
        if request
            .get("distribution")
            .is_some_and(|distribution| value_text(distribution) == "4")
        {
            // The simulator has no sharing groups.
            return error(403, BAD_SHARING_GROUP, path);
        }
        let existing = self.events[event_index]["Attribute"][attribute_index].clone();
        let mut updated = existing.clone();
        for field in EDITABLE {
            if let Some(value) = request.get(field) {
                updated[field] = value.clone();
            }
        }
        let problems = self.edit_problems(event_index, &existing, &mut updated);
        if !problems.is_empty() {
            return save_fail("Could not edit Attribute", URL, Value::Object(problems));
        }
        updated["to_ids"] = json!(truthy(&updated["to_ids"]));
        updated["disable_correlation"] = json!(truthy(&updated["disable_correlation"]));
        updated["distribution"] = json!(value_text(&updated["distribution"]));
        updated["comment"] = json!(value_text(&updated["comment"]));
        let timestamp = now().to_string();
        updated["timestamp"] = json!(timestamp);
        let event = &mut self.events[event_index];
        event["Attribute"][attribute_index] = updated.clone();
        event["published"] = json!(false);
        event["timestamp"] = json!(timestamp);
        ok(json!({"Attribute": attribute_answer(&updated)}))
    }

    /// MISP's validation of an edited attribute, field by field; normalises the seen times
    /// in `updated` to MISP's ISO 8601 form as it goes.
    fn edit_problems(
        &self,
        event_index: usize,
        existing: &Value,
        updated: &mut Value,
    ) -> Map<String, Value> {
        let mut problems = Map::new();
        let category = value_text(&updated["category"]);
        let attribute_type = value_text(&updated["type"]);
        let known_category = DESCRIBE_TYPES["result"]["category_type_mappings"]
            .get(&category)
            .is_some();
        if !known_category {
            problems.insert("category".to_string(), json!([UNKNOWN_CATEGORY]));
        }
        if !category_allows(&category, &attribute_type) {
            problems.insert("type".to_string(), json!([BAD_CATEGORY]));
        }
        let value = value_text(&updated["value"]);
        if value != value_text(&existing["value"]) {
            if value.trim().is_empty() {
                problems.insert("value".to_string(), json!([EMPTY_VALUE]));
            } else if !value_fits_type(&attribute_type, value.trim()) {
                problems.insert("value".to_string(), json!([BAD_VALUE]));
            } else if self.has_twin(event_index, existing, &category, &attribute_type, &value) {
                problems.insert("value".to_string(), json!([DUPLICATE_ATTRIBUTE]));
            }
        }
        let distribution = value_text(&updated["distribution"]);
        if !["0", "1", "2", "3", "4", "5"].contains(&distribution.as_str()) {
            problems.insert(
                "distribution".to_string(),
                json!([BAD_ATTRIBUTE_DISTRIBUTION]),
            );
        }
        let mut seen = |field: &str| -> Option<chrono::DateTime<chrono::Utc>> {
            match parse_seen(&updated[field]) {
                Ok(instant) => {
                    updated[field] =
                        instant.map_or(Value::Null, |instant| json!(iso_micro(instant)));
                    instant
                }
                Err(()) => {
                    problems.insert(field.to_string(), json!([BAD_SEEN]));
                    None
                }
            }
        };
        let first_seen = seen("first_seen");
        let last_seen = seen("last_seen");
        if let (Some(first), Some(last)) = (first_seen, last_seen)
            && first > last
        {
            problems.insert("last_seen".to_string(), json!([LAST_BEFORE_FIRST]));
        }
        problems
    }

    /// Whether another live attribute of the event has this category, type and value.
    fn has_twin(
        &self,
        event_index: usize,
        existing: &Value,
        category: &str,
        attribute_type: &str,
        value: &str,
    ) -> bool {
        self.events[event_index]["Attribute"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|other| {
                other.get("id") != existing.get("id")
                    && !is_deleted(other)
                    && value_text(&other["category"]) == category
                    && value_text(&other["type"]) == attribute_type
                    && value_text(&other["value"]) == value.trim()
            })
    }

    /// `attributes/delete/{id|uuid}[/1]`: a soft delete marks the attribute deleted (a second
    /// soft delete finds nothing: 404); a hard delete removes it, soft-deleted or not.
    fn delete_attribute(&mut self, reference: Option<&str>, hard: bool, path: &str) -> Reply {
        let reference = match checked_reference(reference, path) {
            Ok(reference) => reference,
            Err(reply) => return reply,
        };
        let found = if hard {
            self.attribute_position(reference)
        } else {
            self.live_attribute(reference)
        };
        let Some((event_index, attribute_index)) = found else {
            return error(404, "Invalid attribute", path);
        };
        let timestamp = now().to_string();
        let event = &mut self.events[event_index];
        if hard {
            let removed = match event["Attribute"].as_array_mut() {
                Some(attributes) => attributes.remove(attribute_index),
                None => Value::Null,
            };
            let attribute_id = removed.get("id").map(value_text);
            self.sightings
                .retain(|sighting| sighting.get("attribute_id").map(value_text) != attribute_id);
        } else {
            let attribute = &mut event["Attribute"][attribute_index];
            attribute["deleted"] = json!(true);
            attribute["timestamp"] = json!(timestamp);
        }
        let event = &mut self.events[event_index];
        let live = event["Attribute"].as_array().map_or(0, |attributes| {
            attributes.iter().filter(|a| !is_deleted(a)).count()
        });
        event["attribute_count"] = json!(live.to_string());
        event["published"] = json!(false);
        event["timestamp"] = json!(timestamp);
        ok(json!({"message": "Attribute deleted."}))
    }

    /// `sightings/restSearch[/{context}]`: sightings by attribute or event (id or UUID), type,
    /// source and time (`from`/`to`, `last`, else the last 30 days), each with the sighted
    /// attribute's value, wrapped in `{"response": …}`.
    fn search_sightings(&self, context: Option<&str>, body: &Value, path: &str) -> Reply {
        let filters = match unwrap_object(body.clone(), &["request"]) {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
        let context = filters
            .get("context")
            .map(value_text)
            .or_else(|| context.map(str::to_string))
            .unwrap_or_default();
        if !["", "event", "attribute"].contains(&context.as_str()) {
            return error(400, &format!("Invalid context {context}."), path);
        }
        let id = filters.get("id").filter(|id| !id.is_null());
        let uuid = filters
            .get("uuid")
            .map(value_text)
            .filter(|uuid| !uuid.is_empty());
        if !context.is_empty() && id.is_none() && uuid.is_none() {
            return error(
                400,
                "An ID or UUID must be provided if the context is set.",
                path,
            );
        }
        let ids = match id {
            None => None,
            Some(id) => {
                let list = match id {
                    Value::Array(items) => items.clone(),
                    other => vec![other.clone()],
                };
                // MISP takes only JSON integers here.
                if let Some(bad) = list.iter().find(|id| !id.is_i64()) {
                    return error(
                        400,
                        &format!("Invalid ID `{}` provided.", value_text(bad)),
                        path,
                    );
                }
                Some(list.iter().map(value_text).collect::<Vec<_>>())
            }
        };
        let (from, to) = match (filters.get("from"), filters.get("to"), filters.get("last")) {
            (Some(from), Some(to), _) => {
                let (from, to) = (resolve_time(from), resolve_time(to));
                (from.min(to), Some(from.max(to)))
            }
            (_, _, Some(last)) => (resolve_time(last), None),
            _ => (now() - 30 * 86_400, None),
        };
        let wanted_type = filters.get("type").map(string_list);
        let wanted_source = filters.get("source").map(value_text);
        let include_attribute = filters.get("includeAttribute").is_some_and(truthy);
        let include_event = filters.get("includeEvent").is_some_and(truthy);
        let include_uuid = filters.get("includeUuid").is_some_and(truthy);
        let mut found = Vec::new();
        for sighting in &self.sightings {
            let text = |name: &str| sighting.get(name).map(value_text).unwrap_or_default();
            let date = sighting
                .get("date_sighting")
                .and_then(int_like)
                .unwrap_or(0);
            if date < from || to.is_some_and(|to| date > to) {
                continue;
            }
            if wanted_type
                .as_ref()
                .is_some_and(|types| !types.contains(&text("type")))
            {
                continue;
            }
            if wanted_source
                .as_ref()
                .is_some_and(|source| *source != text("source"))
            {
                continue;
            }
            let Some((event, attribute)) = self.attribute_position(&text("attribute_id")) else {
                continue;
            };
            let event = &self.events[event];
            let attribute = &event["Attribute"][attribute];
            let owner_id = match context.as_str() {
                "attribute" => text("attribute_id"),
                _ => text("event_id"),
            };
            if ids.as_ref().is_some_and(|ids| !ids.contains(&owner_id)) {
                continue;
            }
            let owner_uuid = match context.as_str() {
                "attribute" => value_text(&attribute["uuid"]),
                _ => value_text(&event["uuid"]),
            };
            if !context.is_empty()
                && uuid
                    .as_ref()
                    .is_some_and(|uuid| !uuid.eq_ignore_ascii_case(&owner_uuid))
            {
                continue;
            }
            let mut row = sighting.clone();
            row["value"] = attribute["value"].clone();
            if include_uuid {
                row["attribute_uuid"] = attribute["uuid"].clone();
                row["event_uuid"] = event["uuid"].clone();
            }
            if include_attribute {
                row["Attribute"] = json!({
                    "id": attribute["id"], "value": attribute["value"], "uuid": attribute["uuid"],
                    "type": attribute["type"], "category": attribute["category"],
                    "to_ids": attribute["to_ids"],
                });
            }
            if include_event {
                row["Event"] = json!({
                    "id": event["id"], "uuid": event["uuid"], "orgc_id": event["orgc_id"],
                    "org_id": event["org_id"], "info": event["info"],
                    "Orgc": {"name": ORG_NAME},
                });
            }
            row["Organisation"] = json!({"id": "1", "uuid": ORG_UUID, "name": ORG_NAME});
            found.push(json!({"Sighting": row}));
        }
        let count = found.len();
        Reply {
            status: 200,
            headers: result_headers(count),
            body: ReplyBody::Json(json!({"response": found})),
        }
    }

    /// The attribute `reference` (a numeric id or a UUID) names, deleted or not.
    fn attribute_position(&self, reference: &str) -> Option<(usize, usize)> {
        self.events
            .iter()
            .enumerate()
            .find_map(|(event_index, event)| {
                event
                    .get("Attribute")
                    .and_then(Value::as_array)?
                    .iter()
                    .position(|attribute| {
                        attribute.get("id").map(value_text).as_deref() == Some(reference)
                            || attribute
                                .get("uuid")
                                .and_then(Value::as_str)
                                .is_some_and(|uuid| uuid.eq_ignore_ascii_case(reference))
                    })
                    .map(|attribute_index| (event_index, attribute_index))
            })
    }

    fn live_attribute(&self, reference: &str) -> Option<(usize, usize)> {
        self.attribute_position(reference)
            .filter(|(event, attribute)| !is_deleted(&self.events[*event]["Attribute"][*attribute]))
    }
}

impl crate::MispSim {
    /// An attribute as stored, by id or UUID, soft-deleted ones included (with `deleted:
    /// true`); `None` once hard-deleted.
    pub fn attribute(&self, reference: &str) -> Option<Value> {
        let state = self.shared.lock();
        state
            .attribute_position(reference)
            .map(|(event, attribute)| {
                attribute_answer(&state.events[event]["Attribute"][attribute])
            })
    }

    /// Every sighting row, in the order they were added.
    pub fn sightings(&self) -> Vec<Value> {
        self.shared.lock().sightings.clone()
    }
}

/// The attribute as `attributes/view` and `attributes/edit` answer with it: no nested lists
/// other than its tags, and no `Tag` when it has none.
fn attribute_answer(attribute: &Value) -> Value {
    let mut answer = attribute.clone();
    if let Value::Object(fields) = &mut answer {
        for nested in [
            "Galaxy",
            "ShadowAttribute",
            "Sighting",
            "Event",
            "value1",
            "value2",
        ] {
            fields.remove(nested);
        }
        if fields
            .get("Tag")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            fields.remove("Tag");
        }
    }
    answer
}

/// MISP takes a numeric id or a UUID in the path; anything else is a 404 of its own.
fn checked_reference<'a>(reference: Option<&'a str>, path: &str) -> Result<&'a str, Reply> {
    match reference {
        Some(reference)
            if reference.bytes().all(|byte| byte.is_ascii_digit()) && !reference.is_empty() =>
        {
            Ok(reference)
        }
        Some(reference) if uuid::Uuid::parse_str(reference).is_ok() => Ok(reference),
        _ => Err(error(404, "Invalid attribute ID.", path)),
    }
}

/// A first_seen or last_seen as MISP reads it: empty or null for none, else a date and time
/// (RFC 3339, or without a zone for UTC, or a bare date).
fn parse_seen(value: &Value) -> Result<Option<chrono::DateTime<chrono::Utc>>, ()> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(text) if text.trim().is_empty() => return Ok(None),
        Value::String(text) => text.trim(),
        _ => return Err(()),
    };
    if let Ok(instant) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Some(instant.with_timezone(&chrono::Utc)));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(Some(naive.and_utc()));
        }
    }
    match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => Ok(date.and_hms_opt(0, 0, 0).map(|naive| naive.and_utc())),
        Err(_) => Err(()),
    }
}

/// MISP's rendering of a seen time: UTC with microseconds and the offset.
fn iso_micro(instant: chrono::DateTime<chrono::Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// A restSearch time: epoch seconds, or a delta back from now (`30d`, `12h`, `5m`, `10s`).
fn resolve_time(value: &Value) -> i64 {
    if let Some(seconds) = int_like(value) {
        return seconds;
    }
    let text = value_text(value);
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let factor = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return 0,
    };
    number
        .parse::<i64>()
        .map_or(0, |count| now() - count * factor)
}

fn is_true_flag(flag: &str) -> bool {
    matches!(flag.trim(), "1" | "true" | "True" | "only")
}

fn is_false_flag(flag: &str) -> bool {
    matches!(flag.trim(), "0" | "false" | "False")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deleted_filter_reads_misps_forms() {
        let filter = |value: Value| {
            let filters = json!({"deleted": value});
            DeletedFilter::from_filters(filters.as_object().expect("an object"))
        };
        assert_eq!(
            DeletedFilter::from_filters(&Map::new()),
            DeletedFilter::Live
        );
        assert_eq!(filter(json!(0)), DeletedFilter::Live);
        assert_eq!(filter(json!(false)), DeletedFilter::Live);
        assert_eq!(filter(json!(1)), DeletedFilter::DeletedOnly);
        assert_eq!(filter(json!("only")), DeletedFilter::DeletedOnly);
        assert_eq!(filter(json!([0, 1])), DeletedFilter::Both);
        assert_eq!(filter(json!(["0", "1"])), DeletedFilter::Both);
        let deleted = json!({"deleted": true});
        let live = json!({"deleted": false});
        assert!(DeletedFilter::Live.shows(&live) && !DeletedFilter::Live.shows(&deleted));
        assert!(DeletedFilter::DeletedOnly.shows(&deleted));
        assert!(DeletedFilter::Both.shows(&live) && DeletedFilter::Both.shows(&deleted));
    }

    #[test]
    fn seen_times_are_read_like_misp_and_written_with_microseconds() {
        let read = |text: &str| parse_seen(&json!(text)).map(|instant| instant.map(iso_micro));
        assert_eq!(
            read("2024-03-01T10:20:30.123456+02:00"),
            Ok(Some("2024-03-01T08:20:30.123456+00:00".to_string()))
        );
        assert_eq!(
            read("2024-03-01"),
            Ok(Some("2024-03-01T00:00:00.000000+00:00".to_string()))
        );
        assert_eq!(read(""), Ok(None));
        assert_eq!(parse_seen(&Value::Null), Ok(None));
        assert_eq!(read("yesterday-ish"), Err(()));
    }

    #[test]
    fn references_are_ids_or_uuids() {
        assert_eq!(checked_reference(Some("12"), "/p").ok(), Some("12"));
        let uuid = "5e0f2d2a-1c4b-4f6e-9a0b-0c1d2e3f4a5b";
        assert_eq!(checked_reference(Some(uuid), "/p").ok(), Some(uuid));
        assert!(checked_reference(Some("twelve"), "/p").is_err());
        assert!(checked_reference(None, "/p").is_err());
    }

    #[test]
    fn restsearch_times_are_epochs_or_deltas() {
        assert_eq!(resolve_time(&json!(1_700_000_000)), 1_700_000_000);
        assert_eq!(resolve_time(&json!("1700000000")), 1_700_000_000);
        let day_ago = resolve_time(&json!("1d"));
        assert!((now() - 86_400 - day_ago).abs() <= 1, "{day_ago}");
        assert_eq!(resolve_time(&json!("soon")), 0);
    }
}

#[cfg(test)]
mod http_tests {
    use serde_json::{Value, json};

    use crate::{MispSim, RolePermissions, SimOptions};

    async fn send(
        sim: &MispSim,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", sim.url()))
            .header("Authorization", sim.key())
            .header("Accept", "application/json")
            .header("Content-Type", "application/json");
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.expect("the sim answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(sim: &MispSim, path: &str) -> (u16, Value) {
        send(sim, reqwest::Method::GET, path, None).await
    }

    async fn post(sim: &MispSim, path: &str, body: Value) -> (u16, Value) {
        send(sim, reqwest::Method::POST, path, Some(body)).await
    }

    fn envelope(message: &str, url: &str) -> Value {
        json!({"name": message, "message": message, "url": url})
    }

    /// Event 5 (published) with attribute 40 (ip-dst, tagged) and 41 (domain).
    async fn sim_with_attributes() -> (MispSim, String) {
        let sim = MispSim::start(SimOptions::default()).await;
        sim.seed_event(json!({"id": "5", "info": "five", "published": true, "Attribute": [
            {"id": "40", "type": "ip-dst", "category": "Network activity", "value": "203.0.113.9",
             "Tag": [{"name": "tlp:amber"}]},
            {"id": "41", "type": "domain", "category": "Network activity", "value": "example.org"},
        ]}));
        let uuid = sim
            .attribute("40")
            .and_then(|attribute| attribute["uuid"].as_str().map(str::to_string))
            .expect("attribute 40 has a uuid");
        (sim, uuid)
    }

    #[tokio::test]
    async fn view_answers_the_attribute_or_misps_405() {
        let (sim, uuid) = sim_with_attributes().await;
        let (status, body) = get(&sim, "/attributes/view/40").await;
        assert_eq!(status, 200, "{body}");
        let attribute = &body["Attribute"];
        assert_eq!(attribute["value"], "203.0.113.9");
        assert_eq!(attribute["Tag"][0]["name"], "tlp:amber");
        for absent in ["Galaxy", "ShadowAttribute", "Sighting", "value1"] {
            assert!(attribute.get(absent).is_none(), "{absent} in {attribute}");
        }
        let (status, body) = get(&sim, &format!("/attributes/view/{uuid}")).await;
        assert_eq!(
            (status, body["Attribute"]["id"].clone()),
            (200, json!("40"))
        );
        let (_, untagged) = get(&sim, "/attributes/view/41").await;
        assert!(untagged["Attribute"].get("Tag").is_none(), "{untagged}");

        let (status, body) = get(&sim, "/attributes/view/999").await;
        assert_eq!(
            (status, body),
            (405, envelope("Invalid attribute", "/attributes/view/999"))
        );
        let (status, body) = get(&sim, "/attributes/view/forty").await;
        assert_eq!(
            (status, body),
            (
                404,
                envelope("Invalid attribute ID.", "/attributes/view/forty")
            )
        );
        assert!(sim.unexpected_requests().is_empty());
    }

    #[tokio::test]
    async fn edit_changes_the_fields_given_and_unpublishes_the_event() {
        let (sim, uuid) = sim_with_attributes().await;
        let (status, body) = post(
            &sim,
            "/attributes/edit/40",
            json!({"to_ids": false, "comment": "benign", "category": "External analysis",
                   "distribution": "5", "first_seen": "2024-03-01T10:20:30.5+02:00"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let attribute = &body["Attribute"];
        assert_eq!(attribute["to_ids"], false);
        assert_eq!(attribute["comment"], "benign");
        assert_eq!(attribute["category"], "External analysis");
        assert_eq!(attribute["distribution"], "5");
        assert_eq!(attribute["first_seen"], "2024-03-01T08:20:30.500000+00:00");
        assert_eq!(attribute["value"], "203.0.113.9", "unchanged fields stay");
        assert_eq!(attribute["Tag"][0]["name"], "tlp:amber");
        assert_eq!(sim.events()[0]["Event"]["published"], false);

        // MISP's own wrapper, by UUID, with PUT.
        let (status, body) = send(
            &sim,
            reqwest::Method::PUT,
            &format!("/attributes/edit/{uuid}"),
            Some(json!({"Attribute": {"last_seen": "2024-03-02"}})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["Attribute"]["last_seen"],
            "2024-03-02T00:00:00.000000+00:00"
        );
    }

    #[tokio::test]
    async fn edit_refuses_like_misp() {
        let (sim, _) = sim_with_attributes().await;
        let (status, body) = post(
            &sim,
            "/attributes/edit/40",
            json!({"category": "Payload type"}),
        )
        .await;
        assert_eq!(status, 403);
        assert_eq!(
            body,
            json!({"saved": false, "name": "Could not edit Attribute",
                   "message": "Could not edit Attribute", "url": "/attributes/edit",
                   "errors": {"type": ["Options depend on the selected category."]}})
        );
        let (status, body) = post(
            &sim,
            "/attributes/edit/40",
            json!({"first_seen": "2024-03-02", "last_seen": "2024-03-01"}),
        )
        .await;
        assert_eq!(status, 403);
        assert_eq!(
            body["errors"],
            json!({"last_seen": ["Last seen value should be greater than first seen value"]})
        );
        let (status, body) = post(&sim, "/attributes/edit/40", json!({"distribution": 9})).await;
        assert_eq!(
            (status, body["errors"]["distribution"][0].is_string()),
            (403, true)
        );
        let (status, body) = post(
            &sim,
            "/attributes/edit/40",
            json!({"value": "example.org", "type": "domain"}),
        )
        .await;
        assert_eq!(
            (status, body["errors"].clone()),
            (
                403,
                json!({"value": ["A similar attribute already exists for this event."]})
            )
        );
        let (status, body) = post(&sim, "/attributes/edit/999", json!({"comment": "x"})).await;
        assert_eq!(
            (status, body),
            (404, envelope("Invalid attribute", "/attributes/edit/999"))
        );
        assert_eq!(
            sim.attribute("40").expect("still there")["category"],
            "Network activity",
            "nothing was saved"
        );
        sim.set_permissions(RolePermissions::read_only());
        let (status, _) = post(&sim, "/attributes/edit/40", json!({"comment": "x"})).await;
        assert_eq!(status, 403);
    }

    #[tokio::test]
    async fn soft_delete_hides_the_attribute_and_hard_delete_removes_it() {
        let (sim, uuid) = sim_with_attributes().await;
        let (status, body) = post(&sim, "/attributes/delete/40", Value::Null).await;
        assert_eq!(
            (status, body),
            (200, json!({"message": "Attribute deleted."}))
        );
        assert_eq!(sim.attribute("40").expect("kept")["deleted"], true);
        assert_eq!(get(&sim, "/attributes/view/40").await.0, 405);
        let event = &sim.events()[0]["Event"];
        assert_eq!(event["Attribute"].as_array().map(Vec::len), Some(1));
        assert_eq!(event["published"], false);
        let (_, found) = post(&sim, "/attributes/restSearch", json!({"uuid": uuid})).await;
        assert_eq!(found, json!({"response": {"Attribute": []}}));
        let (_, found) = post(
            &sim,
            "/attributes/restSearch",
            json!({"uuid": uuid, "deleted": [0, 1]}),
        )
        .await;
        assert_eq!(found["response"]["Attribute"][0]["deleted"], true);

        // A second soft delete finds nothing; a hard one removes the soft-deleted attribute.
        let (status, body) = post(&sim, "/attributes/delete/40", Value::Null).await;
        assert_eq!(
            (status, body),
            (404, envelope("Invalid attribute", "/attributes/delete/40"))
        );
        let (status, _) = post(&sim, &format!("/attributes/delete/{uuid}/1"), Value::Null).await;
        assert_eq!(status, 200);
        assert_eq!(sim.attribute("40"), None);
        let (status, _) = post(&sim, "/attributes/delete/40/1", Value::Null).await;
        assert_eq!(status, 404);
        let (status, body) = get(&sim, "/attributes/delete/41").await;
        assert_eq!(
            (status, body["message"].clone()),
            (
                405,
                json!("This function is only accessible via POST requests.")
            )
        );
    }

    #[tokio::test]
    async fn sightings_are_added_by_path_and_searched_by_attribute_type_source_and_time() {
        let (sim, uuid) = sim_with_attributes().await;
        let (status, body) = post(
            &sim,
            "/sightings/add/40",
            json!({"type": "1", "source": "SOAR", "timestamp": "1700000000"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["Sighting"]["attribute_id"], "40");
        assert_eq!(body["Sighting"]["type"], "1");
        let (_, body) = post(
            &sim,
            &format!("/sightings/add/{uuid}"),
            json!({"type": "2", "source": "SOAR", "timestamp": 1_700_000_100}),
        )
        .await;
        assert_eq!(body["Sighting"]["type"], "2");
        // A later expiration replaces the org's earlier one on that attribute.
        post(
            &sim,
            "/sightings/add/40",
            json!({"type": "2", "source": "SOAR", "timestamp": 1_700_000_200}),
        )
        .await;
        let types: Vec<Value> = sim
            .sightings()
            .iter()
            .map(|row| row["type"].clone())
            .collect();
        assert_eq!(types, vec![json!("1"), json!("2")]);
        // The path names the attribute; a value in the body does not add more.
        post(
            &sim,
            "/sightings/add/41",
            json!({"value": "203.0.113.9", "timestamp": 1_700_000_300}),
        )
        .await;
        assert_eq!(sim.sightings()[2]["attribute_id"], "41");
        let (status, body) = post(&sim, "/sightings/add/999", json!({"type": "0"})).await;
        assert_eq!(
            (status, body),
            (
                200,
                json!({"message": "Could not add the Sighting. Reason: No valid attributes found that match the criteria."})
            )
        );

        let (status, body) = post(
            &sim,
            "/sightings/restSearch/attribute",
            json!({"id": 40, "type": "1", "source": "SOAR", "from": 1_700_000_000, "to": 1_700_000_000}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let rows = body["response"].as_array().expect("a list");
        assert_eq!(rows.len(), 1, "{body}");
        assert_eq!(rows[0]["Sighting"]["value"], "203.0.113.9");
        assert_eq!(rows[0]["Sighting"]["date_sighting"], "1700000000");
        let (_, body) = post(
            &sim,
            "/sightings/restSearch/attribute",
            json!({"uuid": uuid, "from": 1_700_000_000, "to": 1_700_000_300}),
        )
        .await;
        assert_eq!(body["response"].as_array().map(Vec::len), Some(2));
        let (_, body) = post(
            &sim,
            "/sightings/restSearch",
            json!({"source": "SOAR", "type": "1", "from": 1_699_999_999, "to": 1_700_000_001}),
        )
        .await;
        assert_eq!(body["response"].as_array().map(Vec::len), Some(1));
        // The default window is the last 30 days.
        let (_, body) = post(&sim, "/sightings/restSearch", json!({"source": "SOAR"})).await;
        assert_eq!(body, json!({"response": []}));
        let (status, body) =
            post(&sim, "/sightings/restSearch/attribute", json!({"id": "40"})).await;
        assert_eq!(
            (status, body["message"].clone()),
            (400, json!("Invalid ID `40` provided."))
        );
        let (status, _) = post(&sim, "/sightings/restSearch/attribute", json!({})).await;
        assert_eq!(status, 400);
        assert!(sim.unexpected_requests().is_empty());
    }
}
