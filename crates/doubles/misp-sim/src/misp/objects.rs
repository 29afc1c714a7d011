//! MISP objects: the object templates (`objectTemplates/index`, `objectTemplates/view`) of
//! five common objects with their relations, types and requirements as misp-objects defines
//! them, and `objects/add/{event}/{template}` with MISP 2.5's checks (attribute validation,
//! the template's conformity, a UUID taken), plus the UUID check every create shares.

use std::sync::LazyLock;

use axum::http::Method;
use serde_json::{Map, Value, json};

use super::{
    DESCRIBE_TYPES, Reply, State, attribute_object, default_category, default_to_ids, error,
    int_like, now, ok, org, save_fail, truthy, value_fits_type, value_text,
};

/// MISP's validation message for a UUID another object of the kind already has.
const UUID_TAKEN: &str = "The UUID provided is not unique";
const UUID_INVALID: &str = "Please provide a valid RFC 4122 UUID";
const NO_OBJECT_PERMISSION: &str = "You don't have permissions to create objects.";

/// One template of the data file: facts from MISP's misp-objects definitions.
#[derive(Debug, serde::Deserialize)]
struct Template {
    name: String,
    uuid: String,
    version: u64,
    meta_category: String,
    description: String,
    requirements: Map<String, Value>,
    elements: Vec<Element>,
}

#[derive(Debug, serde::Deserialize)]
struct Element {
    relation: String,
    #[serde(rename = "type")]
    attribute_type: String,
    multiple: bool,
    ui_priority: u64,
    categories: Vec<String>,
    disable_correlation: bool,
}

static TEMPLATES: LazyLock<Vec<Template>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../data/object_templates.json")).unwrap_or_default()
});

impl State {
    /// The routes of this module; `None` when the request is not one of them.
    pub(super) fn answer_objects(
        &mut self,
        method: &Method,
        segments: &[&str],
        body: &Value,
        path: &str,
    ) -> Option<Reply> {
        let get = *method == Method::GET || *method == Method::HEAD;
        let post = *method == Method::POST;
        let reply = match (segments.first().copied(), segments.get(1).copied()) {
            (Some("objectTemplates"), Some("index")) if get => template_index(),
            (Some("objectTemplates"), Some("view")) if get => template_view(segments.get(2), path),
            (Some("objects"), Some("add")) if post => {
                if !self.permissions.add {
                    error(403, NO_OBJECT_PERMISSION, path)
                } else if !body.is_null() && body.is_string() {
                    error(405, super::INVALID_JSON, path)
                } else {
                    self.add_object(segments.get(2), segments.get(3), body, path)
                }
            }
            (Some("objects"), Some("view")) if get => self.view_object(segments.get(2), path),
            (Some("objectTemplates"), Some("index" | "view"))
            | (Some("objects"), Some("add" | "view")) => error(405, "Method Not Allowed", path),
            _ => return None,
        };
        Some(reply)
    }

    /// MISP's problem with a given attribute `uuid`: not a UUID, or one an attribute (of an
    /// event or an object) already has.
    pub(super) fn attribute_uuid_problem(&self, uuid: Option<&Value>) -> Option<&'static str> {
        let uuid = value_text(uuid?);
        if uuid::Uuid::parse_str(&uuid).is_err() {
            return Some(UUID_INVALID);
        }
        let taken = self
            .events
            .iter()
            .flat_map(all_attributes)
            .any(|attribute| same_uuid(attribute, &uuid));
        taken.then_some(UUID_TAKEN)
    }

    /// `objects/view/{id|uuid}`: the object with its attributes and a stub of its event.
    fn view_object(&self, reference: Option<&&str>, path: &str) -> Reply {
        let reference = reference.copied().unwrap_or("");
        let found = self.events.iter().find_map(|event| {
            objects(event)
                .iter()
                .find(|object| {
                    !object.get("deleted").is_some_and(truthy)
                        && (object.get("id").map(value_text).as_deref() == Some(reference)
                            || same_uuid(object, reference))
                })
                .map(|object| (event, object))
        });
        let Some((event, object)) = found else {
            return error(404, "Invalid object.", path);
        };
        let mut view = object.clone();
        if let Value::Object(fields) = &mut view {
            fields.remove("ObjectReference");
            fields.insert("Event".to_string(), super::event_stub(event));
        }
        ok(json!({"Object": view}))
    }

    fn add_object(
        &mut self,
        event: Option<&&str>,
        template: Option<&&str>,
        body: &Value,
        path: &str,
    ) -> Reply {
        let template_index = match template {
            Some(reference) if uuid::Uuid::parse_str(reference).is_ok() => {
                match TEMPLATES.iter().position(|known| known.uuid == **reference) {
                    Some(index) => Some(index),
                    None => return error(404, "Invalid template.", path),
                }
            }
            Some(reference) => reference
                .parse::<usize>()
                .ok()
                .filter(|id| (1..=TEMPLATES.len()).contains(id))
                .map(|id| id - 1),
            None => None,
        };
        let Some(event_index) = event.and_then(|reference| self.event_index(reference)) else {
            return error(404, "Invalid event.", path);
        };
        let fail_url = format!(
            "/objects/add/{}/{}",
            event.copied().unwrap_or(""),
            template.copied().unwrap_or("")
        );
        let Some(template_index) = template_index else {
            return object_fail(&fail_url, "No valid template found to edit the object.");
        };
        let template = &TEMPLATES[template_index];
        let mut request = super::unwrap_object(body.clone(), &["request"]);
        if request.get("Object").is_none() {
            request = json!({"Object": request});
        }
        let mut object = request["Object"].as_object().cloned().unwrap_or_default();
        let attributes = match request.get("Attribute").or_else(|| object.get("Attribute")) {
            Some(Value::Array(attributes)) => attributes.clone(),
            _ => Vec::new(),
        };
        object.remove("Attribute");
        if attributes.is_empty() {
            return object_fail(
                &fail_url,
                "Could not save the object as no attributes were set.",
            );
        }
        for attribute in &attributes {
            let problems = attribute_problems(attribute);
            if !problems.is_empty() {
                let relation = attribute
                    .get("object_relation")
                    .map(value_text)
                    .unwrap_or_else(|| "No object_relation".to_string());
                return object_fail(
                    &fail_url,
                    &format!(
                        "Could not save object as at least one attribute has failed validation ({relation}). {}",
                        Value::Object(problems)
                    ),
                );
            }
        }
        if let Some(problem) = conformity_problem(template, &attributes) {
            return object_fail(&fail_url, &problem);
        }
        if let Some(uuid) = object.get("uuid") {
            let uuid = value_text(uuid);
            let problem = if uuid::Uuid::parse_str(&uuid).is_err() {
                Some(UUID_INVALID)
            } else if self
                .events
                .iter()
                .flat_map(|event| objects(event).iter())
                .any(|existing| same_uuid(existing, &uuid))
            {
                Some(UUID_TAKEN)
            } else {
                None
            };
            if let Some(problem) = problem {
                return object_fail(
                    "/Objects/add",
                    &format!("Object could not be saved.\nuuid: {problem}"),
                );
            }
        }
        for attribute in &attributes {
            if let Some(problem) = self.attribute_uuid_problem(attribute.get("uuid")) {
                return object_fail(
                    "/Objects/add",
                    &format!("Object could not be saved.\nuuid: {problem}"),
                );
            }
        }
        let stored = self.store_object(event_index, template, &object, &attributes);
        ok(json!({"Object": stored}))
    }

    fn store_object(
        &mut self,
        event_index: usize,
        template: &Template,
        object: &Map<String, Value>,
        attributes: &[Value],
    ) -> Value {
        let object_id = self
            .events
            .iter()
            .flat_map(|event| objects(event).iter())
            .filter_map(|existing| existing.get("id").and_then(int_like))
            .max()
            .unwrap_or(0)
            + 1;
        let event_id = self.events[event_index]
            .get("id")
            .and_then(int_like)
            .unwrap_or(0) as u64;
        let distribution = object
            .get("distribution")
            .map(value_text)
            .unwrap_or_else(|| "5".to_string());
        let mut stored_attributes = Vec::new();
        for attribute in attributes {
            let relation = attribute
                .get("object_relation")
                .map(value_text)
                .unwrap_or_default();
            let element = template
                .elements
                .iter()
                .find(|element| element.relation == relation);
            let attribute_type = attribute
                .get("type")
                .map(value_text)
                .or_else(|| element.map(|element| element.attribute_type.clone()))
                .unwrap_or_default();
            let category = attribute
                .get("category")
                .map(value_text)
                .or_else(|| element.and_then(|element| element.categories.first().cloned()))
                .unwrap_or_else(|| default_category(&attribute_type));
            let to_ids = attribute
                .get("to_ids")
                .map(truthy)
                .unwrap_or_else(|| default_to_ids(&attribute_type));
            let id = self.next_attribute_id;
            self.next_attribute_id += 1;
            let value = attribute.get("value").map(value_text).unwrap_or_default();
            let mut row = attribute_object(
                id,
                event_id,
                &attribute_type,
                &category,
                value.trim(),
                to_ids,
                &attribute
                    .get("distribution")
                    .map(value_text)
                    .unwrap_or_else(|| "5".to_string()),
                &attribute.get("comment").map(value_text).unwrap_or_default(),
            );
            row["object_id"] = json!(object_id.to_string());
            row["object_relation"] = json!(relation);
            row["disable_correlation"] = json!(
                attribute
                    .get("disable_correlation")
                    .map(truthy)
                    .unwrap_or_else(|| element.is_some_and(|element| element.disable_correlation))
            );
            if let Some(uuid) = attribute.get("uuid") {
                row["uuid"] = json!(value_text(uuid).to_lowercase());
            }
            stored_attributes.push(row);
        }
        let stored = json!({
            "id": object_id.to_string(),
            "name": template.name,
            "meta-category": template.meta_category,
            "description": template.description,
            "template_uuid": template.uuid,
            "template_version": template.version.to_string(),
            "event_id": event_id.to_string(),
            "uuid": object
                .get("uuid")
                .map(|uuid| value_text(uuid).to_lowercase())
                .unwrap_or_else(super::new_uuid),
            "timestamp": now().to_string(),
            "distribution": distribution,
            "sharing_group_id": "0",
            "comment": object.get("comment").map(value_text).unwrap_or_default(),
            "deleted": false,
            "first_seen": null,
            "last_seen": null,
            "ObjectReference": [],
            "Attribute": stored_attributes,
        });
        let event = &mut self.events[event_index];
        match event.get_mut("Object").and_then(Value::as_array_mut) {
            Some(list) => list.push(stored.clone()),
            None => event["Object"] = json!([stored.clone()]),
        }
        let count = all_attributes(event).count();
        event["attribute_count"] = json!(count.to_string());
        event["published"] = json!(false);
        event["timestamp"] = json!(now().to_string());
        // The add answer is the object row with its attributes, without the references.
        let mut answer = stored;
        if let Value::Object(fields) = &mut answer {
            fields.remove("ObjectReference");
            if let Some(Value::Array(rows)) = fields.get_mut("Attribute") {
                for row in rows {
                    if let Value::Object(row) = row {
                        for nested in ["Galaxy", "ShadowAttribute", "Tag"] {
                            row.remove(nested);
                        }
                    }
                }
            }
        }
        answer
    }
}

impl crate::MispSim {
    /// The objects of every event, `{"Object": …}` each with its attributes, in event order.
    pub fn objects(&self) -> Vec<Value> {
        let state = self.shared.lock();
        state
            .events
            .iter()
            .flat_map(|event| objects(event).iter())
            .map(|object| json!({"Object": object}))
            .collect()
    }
}

fn objects(event: &Value) -> &[Value] {
    event
        .get("Object")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The event's own attributes and its objects' attributes.
fn all_attributes(event: &Value) -> impl Iterator<Item = &Value> {
    let own = event
        .get("Attribute")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let in_objects = objects(event)
        .iter()
        .filter_map(|object| object.get("Attribute").and_then(Value::as_array))
        .flatten();
    own.chain(in_objects)
}

fn same_uuid(item: &Value, uuid: &str) -> bool {
    item.get("uuid")
        .and_then(Value::as_str)
        .is_some_and(|known| known.eq_ignore_ascii_case(uuid))
}

fn object_fail(url: &str, message: &str) -> Reply {
    let mut reply = save_fail("Could not add Object", url, json!(message));
    if let super::ReplyBody::Json(body) = &mut reply.body
        && let Some(id) = url.strip_prefix("/objects/add/")
    {
        body["id"] = json!(id);
    }
    reply
}

/// The Attribute model's checks MISP runs on each object attribute before saving.
fn attribute_problems(attribute: &Value) -> Map<String, Value> {
    let mut problems = Map::new();
    let attribute_type = attribute.get("type").map(value_text).unwrap_or_default();
    let known_type = DESCRIBE_TYPES["result"]["types"]
        .as_array()
        .is_some_and(|types| {
            types
                .iter()
                .any(|known| known.as_str() == Some(&attribute_type))
        });
    if !known_type {
        problems.insert(
            "type".to_string(),
            json!(["Options depend on the selected category."]),
        );
    }
    let value = attribute.get("value").map(value_text).unwrap_or_default();
    if value.trim().is_empty() {
        problems.insert(
            "value".to_string(),
            json!(["Value provided consists purely of control characters and is therefore considered to be empty."]),
        );
    } else if known_type && !value_fits_type(&attribute_type, value.trim()) {
        problems.insert(
            "value".to_string(),
            json!(["Value not in the right type/format. Please double check the value or select type \"other\"."]),
        );
    }
    problems
}

/// `ObjectTemplate::checkTemplateConformity`: required relations, one of `requiredOneOf`,
/// and no relation twice unless the template allows it.
fn conformity_problem(template: &Template, attributes: &[Value]) -> Option<String> {
    let relations: Vec<String> = attributes
        .iter()
        .map(|attribute| {
            attribute
                .get("object_relation")
                .map(value_text)
                .unwrap_or_default()
        })
        .collect();
    let listed = |name: &str| -> Vec<String> {
        template
            .requirements
            .get(name)
            .and_then(Value::as_array)
            .map(|items| items.iter().map(value_text).collect())
            .unwrap_or_default()
    };
    for required in listed("required") {
        if !relations.contains(&required) {
            return Some(format!(
                "Could not save the object as a required attribute is not set ({required})"
            ));
        }
    }
    let one_of = listed("requiredOneOf");
    if !one_of.is_empty() && !one_of.iter().any(|name| relations.contains(name)) {
        return Some(format!(
            "Could not save the object as it requires at least one of the following attributes to be set: {}",
            one_of.join(", ")
        ));
    }
    for element in &template.elements {
        if !element.multiple
            && relations
                .iter()
                .filter(|relation| **relation == element.relation)
                .count()
                > 1
        {
            return Some("Could not save the object as a unique relationship within the object was assigned to more than one attribute. This is only allowed if the multiple flag is set in the object template.".to_string());
        }
    }
    None
}

fn template_row(id: usize, template: &Template) -> Value {
    json!({
        "id": id.to_string(),
        "user_id": "1",
        "org_id": "1",
        "uuid": template.uuid,
        "name": template.name,
        "meta-category": template.meta_category,
        "description": template.description,
        "version": template.version.to_string(),
        "requirements": template.requirements,
        "fixed": true,
        "active": true,
    })
}

fn template_index() -> Reply {
    let rows: Vec<Value> = TEMPLATES
        .iter()
        .enumerate()
        .map(|(index, template)| {
            json!({"ObjectTemplate": template_row(index + 1, template), "Organisation": organisation()})
        })
        .collect();
    ok(Value::Array(rows))
}

fn template_view(reference: Option<&&str>, path: &str) -> Reply {
    let reference = reference.copied().unwrap_or("");
    let index = if uuid::Uuid::parse_str(reference).is_ok() {
        match TEMPLATES
            .iter()
            .position(|template| template.uuid == reference)
        {
            Some(index) => index,
            None => return error(404, "Invalid object template", path),
        }
    } else {
        match reference.parse::<usize>() {
            Ok(id) if (1..=TEMPLATES.len()).contains(&id) => id - 1,
            Ok(_) => return error(404, "Invalid object template", path),
            Err(_) => return error(404, "Invalid object template id.", path),
        }
    };
    let template = &TEMPLATES[index];
    let template_id = index + 1;
    let elements: Vec<Value> = template
        .elements
        .iter()
        .enumerate()
        .map(|(position, element)| {
            json!({
                "id": (template_id * 1000 + position + 1).to_string(),
                "object_template_id": template_id.to_string(),
                "object_relation": element.relation,
                "type": element.attribute_type,
                "ui-priority": element.ui_priority.to_string(),
                "categories": element.categories,
                "sane_default": [],
                "values_list": [],
                "description": "",
                "disable_correlation": element.disable_correlation,
                "multiple": element.multiple,
            })
        })
        .collect();
    ok(json!({
        "ObjectTemplate": template_row(template_id, template),
        "Organisation": organisation(),
        "ObjectTemplateElement": elements,
    }))
}

fn organisation() -> Value {
    let org = org();
    json!({"id": org["id"], "name": org["name"], "uuid": org["uuid"]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with_event() -> State {
        let mut state = State::new();
        state.seed_event(json!({"id": "1", "info": "one"}));
        state
    }

    fn add(state: &mut State, template: &str, body: Value) -> Reply {
        state.add_object(Some(&"1"), Some(&template), &body, "/objects/add/1/x")
    }

    fn body_of(reply: &Reply) -> Value {
        match &reply.body {
            super::super::ReplyBody::Json(value) => value.clone(),
            _ => Value::Null,
        }
    }

    #[test]
    fn the_five_templates_are_served_with_their_relations() {
        let index = body_of(&template_index());
        let names: Vec<&str> = index
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|row| row["ObjectTemplate"]["name"].as_str())
            .collect();
        assert_eq!(names, ["file", "url", "domain-ip", "ip-port", "email"]);
        let url = body_of(&template_view(Some(&"2"), "/objectTemplates/view/2"));
        assert_eq!(
            url["ObjectTemplate"]["requirements"]["requiredOneOf"],
            json!(["url", "resource_path"])
        );
        assert!(
            url["ObjectTemplateElement"]
                .as_array()
                .expect("elements")
                .iter()
                .any(|element| element["object_relation"] == "url" && element["type"] == "url")
        );
        let missing = template_view(Some(&"99"), "/objectTemplates/view/99");
        assert_eq!(missing.status, 404);
    }

    #[test]
    fn an_object_is_added_with_its_attributes() {
        let mut state = state_with_event();
        let reply = add(
            &mut state,
            "2",
            json!({"uuid": "0d5c8d6e-2b1f-4c41-9a55-3f1d2a6b7c80", "Attribute": [
                {"object_relation": "url", "type": "url", "value": "https://bad.example/x"},
                {"object_relation": "host", "type": "hostname", "value": "bad.example"}
            ]}),
        );
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let object = body_of(&reply)["Object"].clone();
        assert_eq!(object["name"], "url");
        assert_eq!(object["uuid"], "0d5c8d6e-2b1f-4c41-9a55-3f1d2a6b7c80");
        assert_eq!(object["Attribute"][0]["object_relation"], "url");
        assert_eq!(object["Attribute"][0]["object_id"], object["id"]);
        assert_eq!(object["Attribute"][1]["category"], "Network activity");

        let again = add(
            &mut state,
            "2",
            json!({"uuid": "0d5c8d6e-2b1f-4c41-9a55-3f1d2a6b7c80", "Attribute": [
                {"object_relation": "url", "type": "url", "value": "https://bad.example/x"}
            ]}),
        );
        assert_eq!(again.status, 403);
        assert_eq!(
            body_of(&again)["errors"],
            "Object could not be saved.\nuuid: The UUID provided is not unique"
        );
    }

    #[test]
    fn an_object_is_viewed_by_id_or_uuid() {
        let mut state = state_with_event();
        let uuid = "9a0e6c1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
        add(
            &mut state,
            "4",
            json!({"uuid": uuid, "Attribute": [{"object_relation": "ip", "type": "ip-dst", "value": "192.0.2.1"}]}),
        );
        let by_uuid = body_of(&state.view_object(Some(&uuid), "/objects/view/x"));
        assert_eq!(by_uuid["Object"]["name"], "ip-port");
        assert_eq!(by_uuid["Object"]["Event"]["id"], "1");
        let by_id = body_of(&state.view_object(Some(&"1"), "/objects/view/1"));
        assert_eq!(by_id["Object"]["uuid"], uuid);
        assert_eq!(state.view_object(Some(&"7"), "/objects/view/7").status, 404);
    }

    #[test]
    fn the_templates_requirements_are_checked() {
        let mut state = state_with_event();
        let reply = add(
            &mut state,
            "2",
            json!({"Attribute": [{"object_relation": "host", "type": "hostname", "value": "a.example"}]}),
        );
        assert_eq!(reply.status, 403);
        assert_eq!(
            body_of(&reply)["errors"],
            "Could not save the object as it requires at least one of the following attributes to be set: url, resource_path"
        );
        let twice = add(
            &mut state,
            "2",
            json!({"Attribute": [
                {"object_relation": "url", "type": "url", "value": "https://a.example/"},
                {"object_relation": "url", "type": "url", "value": "https://b.example/"}
            ]}),
        );
        assert!(
            body_of(&twice)["errors"]
                .as_str()
                .is_some_and(|text| text.contains("unique relationship"))
        );
        let empty = add(&mut state, "2", json!({"Attribute": []}));
        assert_eq!(
            body_of(&empty)["errors"],
            "Could not save the object as no attributes were set."
        );
    }

    #[test]
    fn unknown_events_and_templates_are_refused() {
        let mut state = state_with_event();
        let reply = state.add_object(Some(&"9"), Some(&"2"), &json!({}), "/objects/add/9/2");
        assert_eq!(reply.status, 404);
        let reply = add(
            &mut state,
            "00000000-0000-4000-8000-000000000000",
            json!({"Attribute": []}),
        );
        assert_eq!(reply.status, 404);
    }

    #[test]
    fn attributes_add_refuses_a_taken_uuid_as_misp_does() {
        let mut state = state_with_event();
        let uuid = "7d1c3b5a-2e4f-4a6b-8c9d-0e1f2a3b4c5d";
        let body = json!({"type": "domain", "value": "a.example", "uuid": uuid});
        let first = state.add_attributes("1", &body, "/attributes/add/1");
        assert_eq!(first.status, 200);
        assert_eq!(body_of(&first)["Attribute"]["uuid"], uuid);
        let other_value = json!({"type": "domain", "value": "b.example", "uuid": uuid});
        let again = state.add_attributes("1", &other_value, "/attributes/add/1");
        assert_eq!(again.status, 403);
        assert_eq!(body_of(&again)["errors"], json!({"uuid": [UUID_TAKEN]}));
    }

    #[test]
    fn a_taken_attribute_uuid_is_found_in_objects_too() {
        let mut state = state_with_event();
        let uuid = "5b8f7c1e-1111-4222-8333-444455556666";
        add(
            &mut state,
            "4",
            json!({"Attribute": [{"object_relation": "ip", "type": "ip-dst", "value": "192.0.2.1", "uuid": uuid}]}),
        );
        assert_eq!(
            state.attribute_uuid_problem(Some(&json!(uuid))),
            Some(UUID_TAKEN)
        );
        assert_eq!(
            state.attribute_uuid_problem(Some(&json!("nope"))),
            Some(UUID_INVALID)
        );
        assert_eq!(state.attribute_uuid_problem(None), None);
    }
}
