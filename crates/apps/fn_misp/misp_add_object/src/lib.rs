//! The `misp_add_object` function: adds a MISP object (`file`, `url`, `domain-ip`,
//! `ip-port`, `email` or any template MISP has) to an event, from a JSON map of object
//! relation to value. The template's requirements and relations are checked before MISP is
//! asked, and the object's UUID comes from the call, so a repeated call adds it once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fn_misp::event::EventRef;
use fn_misp::{APP, DESTINATION, MISP_COMMENT, MISP_EVENT_ID, MISP_EVENT_UUID};
use serde_json::{Map, Value, json};
use soar_core::misp::{Method, MispClient, MispError, Repeat};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputError,
    InputField, Inputs,
};

/// Adds an object (`POST /objects/add/{event}/{template id}`) and returns MISP's
/// `{"Object": …}` with its attributes.
#[derive(Debug, Clone, Copy)]
pub struct MispAddObject;

/// The templates most playbooks need; any other template MISP has is accepted too.
pub const COMMON_TEMPLATES: &[&str] = &["file", "url", "domain-ip", "ip-port", "email"];

/// `__function/misp_object_template`: the object template's name.
pub static MISP_OBJECT_TEMPLATE: InputField = InputField::text(
    "misp_object_template",
    "fd75d005-afea-4f06-b9bb-fbb3a507bd81",
)
.required()
.tooltip("The MISP object template's name, such as file, url, domain-ip, ip-port or email");

/// `__function/misp_object_attributes`: the object's attributes as a JSON map.
pub static MISP_OBJECT_ATTRIBUTES: InputField =
    InputField::textarea("misp_object_attributes", "4b8fe364-98ab-4d90-87a8-4e2aa4362012")
        .required()
        .tooltip(
            "A JSON object mapping each object relation to a value or a list of values, such as {\"url\": \"https://example.com/x\", \"host\": \"example.com\"}",
        );

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_add_object",
    display_name: "MISP Add Object",
    description: "Adds a MISP object (file, url, domain-ip, ip-port, email, or any template MISP has) to an event from a JSON map of object relation to value. The template's required attributes are checked first. Run again for the same SOAR call, it answers with the object it added instead of adding another.",
    destination: DESTINATION,
    uuid: "58c1f80d-b47b-4f26-a2af-d4128d9c6c8e",
    app: &APP,
    inputs: &[
        MISP_EVENT_ID,
        MISP_EVENT_UUID,
        MISP_OBJECT_TEMPLATE,
        MISP_OBJECT_ATTRIBUTES,
        MISP_COMMENT,
    ],
};

soar_core::register_function!(MispAddObject);

/// An object template as MISP describes it: its relations and requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub uuid: String,
    pub version: String,
    pub required: Vec<String>,
    pub required_one_of: Vec<String>,
    pub elements: Vec<Element>,
}

/// One relation of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub relation: String,
    pub attribute_type: String,
    pub multiple: bool,
}

/// One attribute of the object to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAttribute {
    pub relation: String,
    pub attribute_type: String,
    pub value: String,
}

/// The inputs, read and checked before MISP is called.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    event: EventRef,
    template: String,
    /// Relation and value, in the order given (a list gives one entry per value).
    attributes: Vec<(String, String)>,
    comment: Option<String>,
}

#[soar_core::async_trait]
impl Function for MispAddObject {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let request = read_request(inputs)?;
        let client = fn_misp::connect(context)?;
        context.progress(format!(
            "Reading MISP's object template {}",
            request.template
        ));
        let template = template(client, &request.template).await?;
        let attributes = check_attributes(&template, &request.attributes)?;
        let uuid = fn_misp::once::call_uuid(context.origin(), DEFINITION.name, inputs)
            .unwrap_or_else(uuid::Uuid::new_v4)
            .to_string();
        context.progress(format!(
            "Adding a {} object with {} to {}",
            template.name,
            plural(attributes.len(), "attribute"),
            request.event.describe()
        ));
        let body = object_body(&template, &attributes, request.comment.as_deref(), &uuid);
        let event = request.event.segment();
        let segments = ["objects", "add", event.as_str(), template.id.as_str()];
        let read_back = || async {
            fn_misp::once::absent_as_none(
                client
                    .request(Method::GET, &["objects", "view", &uuid], None, Repeat::Safe)
                    .await,
            )
            .map(|view| view.map(as_add_answer))
        };
        match fn_misp::once::create_once(client, &segments, &body, read_back).await {
            Ok(answer) => {
                let id = answer["Object"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                context.progress(format!("Object {id} has been added"));
                Ok(FunctionOutput::success(answer))
            }
            Err(MispError::NotFound { message, .. }) if message == "Invalid event." => {
                Err(request.event.not_found())
            }
            Err(error) => fn_misp::rejection_as_failure(error),
        }
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn read_request(inputs: &Inputs) -> Result<Request, FunctionError> {
    let event = EventRef::from_inputs(inputs)?;
    let template = inputs
        .required_text(MISP_OBJECT_TEMPLATE.name)?
        .trim()
        .to_lowercase();
    if template.is_empty() {
        return Err(InputError::Missing {
            field: MISP_OBJECT_TEMPLATE.name.to_string(),
        }
        .into());
    }
    let text = inputs.required_text(MISP_OBJECT_ATTRIBUTES.name)?;
    let attributes = parse_attributes(&text)?;
    let comment = inputs
        .text(MISP_COMMENT.name)?
        .map(|comment| comment.trim().to_string())
        .filter(|comment| !comment.is_empty());
    Ok(Request {
        event,
        template,
        attributes,
        comment,
    })
}

fn invalid(value: &str, problem: impl Into<String>) -> FunctionError {
    let mut shown: String = value.chars().take(60).collect();
    if value.chars().count() > 60 {
        shown.push_str("...");
    }
    InputError::Invalid {
        field: MISP_OBJECT_ATTRIBUTES.name.to_string(),
        value: format!("{shown:?}"),
        problem: problem.into(),
    }
    .into()
}

/// The JSON map of relation to value (or list of values) as relation/value pairs.
pub fn parse_attributes(text: &str) -> Result<Vec<(String, String)>, FunctionError> {
    let parsed: Value = serde_json::from_str(text.trim()).map_err(|error| {
        invalid(
            text,
            format!("not a JSON object of object relation to value: {error}"),
        )
    })?;
    let Value::Object(map) = parsed else {
        return Err(invalid(
            text,
            "not a JSON object of object relation to value",
        ));
    };
    let mut pairs = Vec::new();
    for (relation, value) in &map {
        let relation = relation.trim();
        let values: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for value in values {
            let text = match value {
                Value::String(text) => text.trim().to_string(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                other => {
                    return Err(invalid(
                        text,
                        format!(
                            "the value of '{relation}' must be text, a number or a list of them, not {}",
                            fn_misp::python_type_name(other)
                        ),
                    ));
                }
            };
            if !text.is_empty() {
                pairs.push((relation.to_string(), text));
            }
        }
    }
    if pairs.is_empty() {
        return Err(invalid(text, "holds no attribute with a value"));
    }
    Ok(pairs)
}

/// The attributes checked against the template: every relation known, each required one
/// present, one of `requiredOneOf` present, and a relation given twice only where the
/// template allows several.
pub fn check_attributes(
    template: &Template,
    attributes: &[(String, String)],
) -> Result<Vec<ObjectAttribute>, FunctionError> {
    let mut checked = Vec::new();
    let mut unknown: Vec<&str> = Vec::new();
    for (relation, value) in attributes {
        match template
            .elements
            .iter()
            .find(|element| element.relation == *relation)
        {
            Some(element) => checked.push(ObjectAttribute {
                relation: relation.clone(),
                attribute_type: element.attribute_type.clone(),
                value: value.clone(),
            }),
            None if !unknown.contains(&relation.as_str()) => unknown.push(relation),
            None => {}
        }
    }
    if !unknown.is_empty() {
        let relations: Vec<&str> = template
            .elements
            .iter()
            .map(|element| element.relation.as_str())
            .collect();
        return Err(invalid_for(format!(
            "{} {} not a relation of the {} template; its relations: {}",
            quoted(&unknown),
            if unknown.len() == 1 { "is" } else { "are" },
            template.name,
            relations.join(", ")
        )));
    }
    let given = |relation: &str| {
        checked
            .iter()
            .any(|attribute| attribute.relation == relation)
    };
    let missing: Vec<&str> = template
        .required
        .iter()
        .map(String::as_str)
        .filter(|relation| !given(relation))
        .collect();
    if !missing.is_empty() {
        return Err(invalid_for(format!(
            "the {} template requires {}, which {} missing",
            template.name,
            quoted(&missing),
            if missing.len() == 1 { "is" } else { "are" }
        )));
    }
    if !template.required_one_of.is_empty()
        && !template
            .required_one_of
            .iter()
            .any(|relation| given(relation))
    {
        return Err(invalid_for(format!(
            "the {} template requires at least one of: {}",
            template.name,
            template.required_one_of.join(", ")
        )));
    }
    for element in template.elements.iter().filter(|element| !element.multiple) {
        let count = checked
            .iter()
            .filter(|attribute| attribute.relation == element.relation)
            .count();
        if count > 1 {
            return Err(invalid_for(format!(
                "'{}' is given {count} times; the {} template allows one",
                element.relation, template.name
            )));
        }
    }
    Ok(checked)
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A problem of the attributes against the template, naming the input.
fn invalid_for(problem: String) -> FunctionError {
    FunctionError::integration(format!(
        "input '{}': {problem}",
        MISP_OBJECT_ATTRIBUTES.name
    ))
}

/// The body of `objects/add`: the object's fields and its attributes, as the API document
/// describes them (the controller takes the object bare or wrapped in `Object`).
fn object_body(
    template: &Template,
    attributes: &[ObjectAttribute],
    comment: Option<&str>,
    uuid: &str,
) -> Value {
    let mut object = Map::new();
    object.insert("name".to_string(), json!(template.name));
    object.insert("template_uuid".to_string(), json!(template.uuid));
    object.insert("template_version".to_string(), json!(template.version));
    object.insert("uuid".to_string(), json!(uuid));
    if let Some(comment) = comment {
        object.insert("comment".to_string(), json!(comment));
    }
    let rows: Vec<Value> = attributes
        .iter()
        .map(|attribute| {
            json!({
                "object_relation": attribute.relation,
                "type": attribute.attribute_type,
                "value": attribute.value,
            })
        })
        .collect();
    object.insert("Attribute".to_string(), Value::Array(rows));
    Value::Object(object)
}

/// `objects/view`'s `{"Object": …}` in the shape `objects/add` answers with: no `Event`,
/// no references, no lists nested in the attributes.
fn as_add_answer(view: Value) -> Value {
    let mut object = view.get("Object").cloned().unwrap_or(view);
    if let Value::Object(fields) = &mut object {
        fields.remove("Event");
        fields.remove("ObjectReference");
        if let Some(Value::Array(rows)) = fields.get_mut("Attribute") {
            for row in rows.iter_mut().filter_map(Value::as_object_mut) {
                for nested in ["Tag", "Galaxy", "ShadowAttribute", "Sighting"] {
                    row.remove(nested);
                }
            }
        }
    }
    json!({"Object": object})
}

/// Templates read from MISP, per MISP URL and name, for the life of the process.
type TemplateCache = Mutex<HashMap<(String, String), Arc<Template>>>;

fn cache() -> &'static TemplateCache {
    static CACHE: std::sync::OnceLock<TemplateCache> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The template named `name`: `objectTemplates/index` to find its id (the newest active
/// version), then `objectTemplates/view/{id}` for its relations; cached per process.
async fn template(client: &MispClient, name: &str) -> Result<Arc<Template>, FunctionError> {
    let key = (client.config().url.to_string(), name.to_string());
    if let Some(found) = cache()
        .lock()
        .ok()
        .and_then(|cache| cache.get(&key).cloned())
    {
        return Ok(found);
    }
    let index = client
        .request(
            Method::GET,
            &["objectTemplates", "index"],
            None,
            Repeat::Safe,
        )
        .await?;
    let id = match template_id(&index, name) {
        Ok(id) => id,
        Err(known) => {
            return Err(InputError::Invalid {
                field: MISP_OBJECT_TEMPLATE.name.to_string(),
                value: format!("{name:?}"),
                problem: unknown_template(name, &known),
            }
            .into());
        }
    };
    let view = client
        .request(
            Method::GET,
            &["objectTemplates", "view", &id],
            None,
            Repeat::Safe,
        )
        .await?;
    let template = Arc::new(
        parse_template(&view).ok_or_else(|| MispError::InvalidResponse {
            path: format!("/objectTemplates/view/{id}"),
            problem: "no ObjectTemplate with its ObjectTemplateElement list".to_string(),
        })?,
    );
    if let Ok(mut cache) = cache().lock() {
        cache.insert(key, template.clone());
    }
    Ok(template)
}

/// The id of the newest active template named `name` in `objectTemplates/index`'s answer,
/// or the names MISP has.
pub fn template_id(index: &Value, name: &str) -> Result<String, Vec<String>> {
    let rows = index.as_array().map_or(&[][..], Vec::as_slice);
    let mut best: Option<(u64, String)> = None;
    let mut names = Vec::new();
    for row in rows {
        let template = row.get("ObjectTemplate").unwrap_or(row);
        let Some(row_name) = template.get("name").and_then(Value::as_str) else {
            continue;
        };
        if template.get("active").is_some_and(|active| active == false) {
            continue;
        }
        if !names.iter().any(|known| known == row_name) {
            names.push(row_name.to_string());
        }
        if !row_name.eq_ignore_ascii_case(name) {
            continue;
        }
        let version = number(template.get("version")).unwrap_or(0);
        let Some(id) = template.get("id").map(text) else {
            continue;
        };
        if best.as_ref().is_none_or(|(known, _)| version > *known) {
            best = Some((version, id));
        }
    }
    best.map(|(_, id)| id).ok_or(names)
}

fn unknown_template(name: &str, known: &[String]) -> String {
    let mut closest: Vec<(f64, &String)> = known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    closest.sort_by(|a, b| b.0.total_cmp(&a.0));
    let common: Vec<&str> = COMMON_TEMPLATES
        .iter()
        .copied()
        .filter(|common| known.iter().any(|name| name == common))
        .collect();
    let mut message = "MISP has no object template of that name".to_string();
    if !closest.is_empty() {
        let names: Vec<&str> = closest
            .iter()
            .take(3)
            .map(|(_, name)| name.as_str())
            .collect();
        message.push_str(&format!("; closest: {}", names.join(", ")));
    }
    if !common.is_empty() {
        message.push_str(&format!("; common ones: {}", common.join(", ")));
    }
    message
}

/// `objectTemplates/view/{id}`'s answer as a [`Template`].
pub fn parse_template(view: &Value) -> Option<Template> {
    let template = view.get("ObjectTemplate")?;
    let elements = view
        .get("ObjectTemplateElement")
        .or_else(|| template.get("ObjectTemplateElement"))?
        .as_array()?
        .iter()
        .filter_map(|element| {
            Some(Element {
                relation: element.get("object_relation")?.as_str()?.to_string(),
                attribute_type: element.get("type")?.as_str()?.to_string(),
                multiple: element.get("multiple").is_some_and(is_true),
            })
        })
        .collect();
    let requirements = template.get("requirements");
    let listed = |name: &str| -> Vec<String> {
        requirements
            .and_then(|requirements| requirements.get(name))
            .and_then(Value::as_array)
            .map(|items| items.iter().map(text).collect())
            .unwrap_or_default()
    };
    Some(Template {
        id: text(template.get("id")?),
        name: template.get("name")?.as_str()?.to_string(),
        uuid: template.get("uuid").map(text).unwrap_or_default(),
        version: template.get("version").map(text).unwrap_or_default(),
        required: listed("required"),
        required_one_of: listed("requiredOneOf"),
        elements,
    })
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

fn is_true(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_i64() == Some(1),
        Value::String(text) => text == "1" || text == "true",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url_template() -> Template {
        let element = |relation: &str, attribute_type: &str, multiple: bool| Element {
            relation: relation.to_string(),
            attribute_type: attribute_type.to_string(),
            multiple,
        };
        Template {
            id: "2".into(),
            name: "url".into(),
            uuid: "60efb77b-40b5-4c46-871b-ed1ed999fce5".into(),
            version: "10".into(),
            required: vec![],
            required_one_of: vec!["url".into(), "resource_path".into()],
            elements: vec![
                element("url", "url", false),
                element("host", "hostname", false),
                element("ip", "ip-dst", true),
                element("resource_path", "text", true),
            ],
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(relation, value)| (relation.to_string(), value.to_string()))
            .collect()
    }

    /// Relations come out by name (serde_json's maps are ordered), values of a list in order.
    #[test]
    fn a_map_with_values_and_lists_becomes_pairs() {
        let parsed = parse_attributes(
            r#"{"url": "https://bad.example/x", "ip": ["192.0.2.1", "192.0.2.2"], "port": 443, "empty": ""}"#,
        )
        .expect("a valid map");
        assert_eq!(
            parsed,
            pairs(&[
                ("ip", "192.0.2.1"),
                ("ip", "192.0.2.2"),
                ("port", "443"),
                ("url", "https://bad.example/x"),
            ])
        );
    }

    #[test]
    fn anything_but_a_map_is_refused_naming_the_field() {
        for text in ["[1, 2]", "not json", "{}", r#"{"url": {"nested": 1}}"#] {
            let error = parse_attributes(text).expect_err(text).to_string();
            assert!(
                error.starts_with("input 'misp_object_attributes' is "),
                "{error}"
            );
        }
        let nested = parse_attributes(r#"{"url": {"nested": 1}}"#)
            .expect_err("nested")
            .to_string();
        assert!(
            nested.contains("the value of 'url' must be text"),
            "{nested}"
        );
    }

    #[test]
    fn relations_get_the_templates_types() {
        let checked = check_attributes(
            &url_template(),
            &pairs(&[("url", "https://bad.example/x"), ("host", "bad.example")]),
        )
        .expect("a valid url object");
        assert_eq!(checked[1].attribute_type, "hostname");
    }

    #[test]
    fn an_unknown_relation_is_refused_naming_the_templates_relations() {
        let error = check_attributes(
            &url_template(),
            &pairs(&[("url", "https://x.example/"), ("hostname", "x.example")]),
        )
        .expect_err("hostname is not a relation of url")
        .to_string();
        assert_eq!(
            error,
            "input 'misp_object_attributes': 'hostname' is not a relation of the url template; its relations: url, host, ip, resource_path"
        );
    }

    #[test]
    fn missing_requirements_are_named() {
        let error = check_attributes(&url_template(), &pairs(&[("host", "x.example")]))
            .expect_err("url or resource_path is needed")
            .to_string();
        assert!(
            error.ends_with("the url template requires at least one of: url, resource_path"),
            "{error}"
        );
        let mut strict = url_template();
        strict.required = vec!["host".into()];
        let error = check_attributes(&strict, &pairs(&[("url", "https://x.example/")]))
            .expect_err("host is required")
            .to_string();
        assert!(
            error.ends_with("the url template requires 'host', which is missing"),
            "{error}"
        );
    }

    #[test]
    fn a_single_relation_given_twice_is_refused() {
        let error = check_attributes(
            &url_template(),
            &pairs(&[("url", "https://a.example/"), ("url", "https://b.example/")]),
        )
        .expect_err("url is not multiple")
        .to_string();
        assert!(
            error.ends_with("'url' is given 2 times; the url template allows one"),
            "{error}"
        );
    }

    #[test]
    fn the_newest_active_template_is_picked_and_unknown_names_listed() {
        let index = json!([
            {"ObjectTemplate": {"id": "3", "name": "url", "version": "9", "active": true}},
            {"ObjectTemplate": {"id": "7", "name": "url", "version": "10", "active": true}},
            {"ObjectTemplate": {"id": "8", "name": "url", "version": "11", "active": false}},
            {"ObjectTemplate": {"id": "1", "name": "file", "version": "25", "active": true}},
        ]);
        assert_eq!(template_id(&index, "url"), Ok("7".to_string()));
        let known = template_id(&index, "urls").expect_err("no such template");
        assert_eq!(
            unknown_template("urls", &known),
            "MISP has no object template of that name; closest: url; common ones: file, url"
        );
    }

    #[test]
    fn a_template_view_is_read() {
        let view = json!({
            "ObjectTemplate": {"id": "4", "name": "ip-port", "uuid": "u", "version": "10",
                "requirements": {"requiredOneOf": ["ip", "dst-port"]}},
            "ObjectTemplateElement": [
                {"object_relation": "ip", "type": "ip-dst", "multiple": true},
                {"object_relation": "protocol", "type": "text", "multiple": false}
            ]
        });
        let template = parse_template(&view).expect("a template");
        assert_eq!(template.required_one_of, ["ip", "dst-port"]);
        assert!(template.elements[0].multiple);
        assert!(!template.elements[1].multiple);
    }

    #[test]
    fn the_body_carries_the_template_and_the_uuid() {
        let template = url_template();
        let attributes =
            check_attributes(&template, &pairs(&[("url", "https://x.example/")])).expect("valid");
        let body = object_body(&template, &attributes, Some("from SOAR"), "u-1");
        assert_eq!(
            body,
            json!({"name": "url", "template_uuid": "60efb77b-40b5-4c46-871b-ed1ed999fce5",
                "template_version": "10", "uuid": "u-1", "comment": "from SOAR",
                "Attribute": [{"object_relation": "url", "type": "url", "value": "https://x.example/"}]})
        );
    }

    proptest! {
        #[test]
        fn every_value_of_a_map_of_lists_is_kept(values in proptest::collection::vec("[a-z0-9.]{1,12}", 1..6)) {
            let text = json!({"ip": values}).to_string();
            let parsed = parse_attributes(&text).expect("a valid map");
            prop_assert_eq!(parsed.len(), values.len());
        }
    }
}
