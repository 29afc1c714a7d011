//! The generated fn_misp export against the original app's (`tests/fixtures/fn_misp/export.res`),
//! the fn_urlscanio export against what the original app shipped, and both against
//! resilient-sdk's own loader: what SOAR and the SDK know the apps by must not move.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use xtask::sources::AppSources;
use xtask::{App, CUSTOMIZATIONS_DIR, export, registered_apps, workspace_root};

mod support;

fn registered_app(name: &str) -> App {
    let apps = registered_apps().unwrap_or_else(|error| panic!("the registry: {error:#}"));
    apps.into_iter()
        .find(|app| app.name == name)
        .unwrap_or_else(|| panic!("no {name} function is registered"))
}

/// The export of app `name`, built from today's code and sources.
fn generated_for(name: &str) -> Value {
    let app = registered_app(name);
    let sources = AppSources::load(&workspace_root().join(CUSTOMIZATIONS_DIR).join(name))
        .unwrap_or_else(|error| panic!("the {name} sources: {error:#}"));
    export::build_export(&app, &sources)
        .unwrap_or_else(|error| panic!("the {name} export: {error:#}"))
}

fn generated() -> Value {
    generated_for("fn_misp")
}

fn reference() -> Value {
    let path = workspace_root().join("tests/fixtures/fn_misp/export.res");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

fn list<'a>(export: &'a Value, key: &str) -> &'a [Value] {
    export[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("the export's '{key}' is not a list"))
}

/// The objects of list `key`, by the value of `name_key`.
fn by_name<'a>(export: &'a Value, key: &str, name_key: &str) -> BTreeMap<String, &'a Value> {
    list(export, key)
        .iter()
        .map(|object| {
            (
                object[name_key].as_str().unwrap_or_default().to_string(),
                object,
            )
        })
        .collect()
}

/// The uuid the export gives the function `name`.
fn function_uuid(export: &Value, name: &str) -> String {
    by_name(export, "functions", "name")[name]["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `object` with only `keys`, for comparing the parts that matter.
fn pick(object: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|key| (key.to_string(), object[*key].clone()))
            .collect(),
    )
}

/// The fn_misp functions beyond the original six, in name order.
const NEW_FUNCTIONS: &[&str] = &[
    "misp_add_attributes",
    "misp_add_object",
    "misp_add_sighting",
    "misp_check_warninglist",
    "misp_delete_attribute",
    "misp_get_event",
    "misp_publish_event",
    "misp_remove_tag",
    "misp_search_events",
    "misp_update_attribute",
    "misp_verdict",
];

#[test]
fn functions_match_the_original() {
    let generated = generated();
    let reference = reference();
    let generated_functions = by_name(&generated, "functions", "name");
    let reference_functions = by_name(&reference, "functions", "name");
    let added: Vec<&str> = generated_functions
        .keys()
        .filter(|name| !reference_functions.contains_key(*name))
        .map(String::as_str)
        .collect();
    let missing: Vec<&String> = reference_functions
        .keys()
        .filter(|name| !generated_functions.contains_key(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "original functions missing: {missing:?}"
    );
    assert!(
        added.iter().all(|name| NEW_FUNCTIONS.contains(name)),
        "the functions beyond the original six: {added:?}"
    );
    let original_uuids: Vec<&Value> = reference_functions.values().map(|f| &f["uuid"]).collect();
    for name in &added {
        assert!(
            !original_uuids.contains(&&generated_functions[*name]["uuid"]),
            "new function {name} reuses an original UUID"
        );
    }
    let keys = [
        "name",
        "export_key",
        "display_name",
        "description",
        "destination_handle",
        "uuid",
        "view_items",
        "output_description",
    ];
    for (name, original) in &reference_functions {
        assert_eq!(
            pick(generated_functions[name], &keys),
            pick(original, &keys),
            "function {name}"
        );
        // The workflows a function lists are matched by name, not by the instance's ids.
        let workflow_keys = ["name", "programmatic_name", "object_type"];
        let workflows = |function: &Value| -> Vec<Value> {
            function["workflows"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|w| pick(w, &workflow_keys))
                .collect()
        };
        assert_eq!(
            workflows(generated_functions[name]),
            workflows(original),
            "the workflows function {name} lists"
        );
    }
}

#[test]
fn input_fields_match_the_original() {
    let generated = generated();
    let reference = reference();
    let generated_fields = by_name(&generated, "fields", "export_key");
    let reference_fields = by_name(&reference, "fields", "export_key");
    let missing: Vec<&String> = reference_fields
        .keys()
        .filter(|key| !generated_fields.contains_key(*key))
        .collect();
    assert!(
        missing.is_empty(),
        "every original field (function inputs, misp_event_id, the internal field) is kept: {missing:?}"
    );
    let original_uuids: Vec<&Value> = reference_fields.values().map(|f| &f["uuid"]).collect();
    for (key, field) in &generated_fields {
        if !reference_fields.contains_key(key) {
            assert!(
                key.starts_with("__function/"),
                "only function inputs are added, not {key}"
            );
            assert!(
                !original_uuids.contains(&&field["uuid"]),
                "new field {key} reuses an original UUID"
            );
        }
    }
    for (key, original) in reference_fields
        .iter()
        .filter(|(key, _)| key.starts_with("__function/"))
    {
        let field = generated_fields[key];
        let keys = [
            "name",
            "text",
            "input_type",
            "tooltip",
            "placeholder",
            "required",
            "type_id",
            "prefix",
            "uuid",
            "templates",
            "read_only",
            "internal",
        ];
        assert_eq!(pick(field, &keys), pick(original, &keys), "field {key}");
        let value_keys = ["label", "value", "default", "enabled", "hidden", "uuid"];
        let values = |field: &Value| -> Vec<Value> {
            field["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| pick(v, &value_keys))
                .collect()
        };
        assert_eq!(
            values(field),
            values(original),
            "the select values of {key}"
        );
    }
}

#[test]
fn message_destination_and_incident_field_match_the_original() {
    let generated = generated();
    let reference = reference();
    let destination_keys = [
        "programmatic_name",
        "name",
        "export_key",
        "uuid",
        "destination_type",
        "expect_ack",
    ];
    let destinations = |export: &Value| -> Vec<Value> {
        list(export, "message_destinations")
            .iter()
            .map(|d| pick(d, &destination_keys))
            .collect()
    };
    assert_eq!(destinations(&generated), destinations(&reference));

    let without_id = |field: &Value| {
        let mut field = field.clone();
        if let Some(object) = field.as_object_mut() {
            object.remove("id");
        }
        field
    };
    for key in [
        "incident/misp_event_id",
        "incident/internal_customizations_field",
    ] {
        assert_eq!(
            without_id(by_name(&generated, "fields", "export_key")[key]),
            without_id(by_name(&reference, "fields", "export_key")[key]),
            "field {key}"
        );
    }
}

#[test]
fn the_original_playbooks_keep_their_names_conditions_scripts_and_bpmn() {
    let generated = generated();
    let reference = reference();
    let generated_playbooks = by_name(&generated, "playbooks", "name");
    let keys = [
        "name",
        "display_name",
        "description",
        "object_type",
        "uuid",
        "activation_type",
        "status",
        "type",
        "manual_settings",
        "deployment_id",
        "export_key",
    ];
    let script_keys = [
        "name",
        "uuid",
        "language",
        "object_type",
        "programmatic_name",
        "playbook_handle",
        "script_text",
    ];
    let reference_playbooks = by_name(&reference, "playbooks", "name");
    assert_eq!(
        reference_playbooks.len(),
        5,
        "the reference has the five 2023 playbooks"
    );
    for (name, original) in reference_playbooks {
        let playbook = generated_playbooks
            .get(&name)
            .unwrap_or_else(|| panic!("playbook {name} is missing from the generated export"));
        assert_eq!(
            pick(playbook, &keys),
            pick(original, &keys),
            "playbook {name}"
        );
        let scripts = |playbook: &Value| -> Vec<Value> {
            playbook["local_scripts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| pick(s, &script_keys))
                .collect()
        };
        assert_eq!(
            scripts(playbook),
            scripts(original),
            "the local scripts of playbook {name}"
        );
        // The BPMN, input script included, comes out byte for byte as SOAR exported it.
        assert_eq!(
            playbook["content"]["xml"], original["content"]["xml"],
            "the BPMN of playbook {name}"
        );
        assert_eq!(
            pick(&playbook["fields_type"], &["uuid", "type_name"]),
            pick(&original["fields_type"], &["uuid", "type_name"])
        );
        assert_eq!(
            playbook["tag"]["uuid"], original["tag"]["uuid"],
            "the tag of playbook {name}"
        );
    }
}

/// Each function beyond the original six comes with an example playbook that calls it.
#[test]
fn every_new_function_has_an_example_playbook() {
    let generated = generated();
    let function_uuids = by_name(&generated, "functions", "name");
    let playbooks = list(&generated, "playbooks");
    for name in NEW_FUNCTIONS {
        let Some(function) = function_uuids.get(*name) else {
            continue;
        };
        let uuid = function["uuid"].as_str().unwrap_or_default();
        let calling = playbooks
            .iter()
            .filter(|playbook| {
                playbook["content"]["xml"]
                    .as_str()
                    .is_some_and(|xml| xml.contains(&format!("resilient:function uuid=\"{uuid}\"")))
            })
            .count();
        assert!(calling >= 1, "no example playbook calls {name}");
    }
}

#[test]
fn the_tag_playbooks_of_3_0_2_are_added() {
    let generated = generated();
    let playbooks = by_name(&generated, "playbooks", "name");
    for name in [
        "misp_create_attribute",
        "misp_create_event",
        "misp_create_sighting",
        "misp_create_tag_on_attribute",
        "misp_create_tag_on_event",
        "misp_search_attribute",
        "misp_sighting_list",
    ] {
        assert!(
            playbooks.contains_key(name),
            "{name}, one of the seven playbooks of customize.py's codegen_reload_data"
        );
    }
    let tag_function_uuid =
        by_name(&generated, "functions", "name")["misp_create_tag"]["uuid"].clone();
    for (name, object_type, display_name, tag_type, conditions) in [
        (
            "misp_create_tag_on_event",
            "incident",
            "MISP: Create Tag on Event - Example (PB)",
            "Event",
            json!([{"evaluation_id": null, "field_name": "incident.properties.misp_event_id", "method": "has_a_value", "type": null, "value": null}]),
        ),
        (
            "misp_create_tag_on_attribute",
            "artifact",
            "MISP: Create Tag on Attribute - Example (PB)",
            "Attribute",
            json!([]),
        ),
    ] {
        let playbook = playbooks[name];
        assert_eq!(playbook["object_type"], object_type, "{name}");
        assert_eq!(playbook["display_name"], display_name, "{name}");
        assert_eq!(
            playbook["manual_settings"]["activation_conditions"]["conditions"], conditions,
            "{name}"
        );
        let xml = playbook["content"]["xml"].as_str().unwrap_or_default();
        assert!(
            xml.contains(&format!(
                "<resilient:function uuid=\"{}\">",
                tag_function_uuid.as_str().unwrap_or_default()
            )),
            "{name} calls misp_create_tag"
        );
        assert!(
            xml.contains(r#"\"result_name\":\"tags\""#) || xml.contains(r#""result_name":"tags""#),
            "{name} names its result 'tags'"
        );
        assert!(
            xml.contains(&format!(r#"inputs.misp_tag_type = \"{tag_type}\""#)),
            "{name} tags the {tag_type}"
        );
        let script = playbook["local_scripts"][0]["script_text"]
            .as_str()
            .unwrap_or_default();
        assert!(
            script.contains("playbook.functions.results.tags"),
            "{name}'s post script reads its result"
        );
    }
}

#[test]
fn the_3_0_1_workflows_and_their_menu_rules_are_present() {
    let generated = generated();
    let functions = by_name(&generated, "functions", "name");
    let workflows = by_name(&generated, "workflows", "programmatic_name");
    let rules = by_name(&generated, "actions", "name");
    for (rule, object_type, workflow, function) in [
        (
            "Example: Create MISP Event",
            "incident",
            "example_misp_create_event",
            "misp_create_event",
        ),
        (
            "Example: MISP Sighting List",
            "incident",
            "example_misp_sighting_list",
            "misp_sighting_list",
        ),
        (
            "Example: Create MISP Sighting",
            "artifact",
            "example_misp_create_sighting",
            "misp_create_sighting",
        ),
        (
            "Example: Create MISP Attribute",
            "artifact",
            "example_misp_create_attribute",
            "misp_create_attribute",
        ),
        (
            "Example: MISP Search Attribute",
            "artifact",
            "example_misp_search_attribute",
            "misp_search_attribute",
        ),
        (
            "Example: MISP Create Tag on Attribute",
            "artifact",
            "example_misp_create_tag_on_attribute",
            "misp_create_tag",
        ),
        (
            "Example: MISP Create Tag on Event",
            "incident",
            "example_misp_create_tag_on_event",
            "misp_create_tag",
        ),
    ] {
        let rule_object = rules
            .get(rule)
            .unwrap_or_else(|| panic!("rule '{rule}' is missing"));
        assert_eq!(rule_object["type"], 1, "'{rule}' is a menu item");
        assert_eq!(rule_object["object_type"], object_type, "'{rule}'");
        assert_eq!(rule_object["workflows"], json!([workflow]), "'{rule}'");
        let workflow_object = workflows
            .get(workflow)
            .unwrap_or_else(|| panic!("workflow {workflow} is missing"));
        assert_eq!(workflow_object["object_type"], object_type, "{workflow}");
        let xml = workflow_object["content"]["xml"]
            .as_str()
            .unwrap_or_default();
        let uuid = functions[function]["uuid"].as_str().unwrap_or_default();
        assert!(
            xml.contains(&format!("<resilient:function uuid=\"{uuid}\">")),
            "{workflow} calls {function}"
        );
        assert!(
            xml.contains(&format!("<process id=\"{workflow}\"")),
            "{workflow}'s process id is its programmatic name"
        );
    }
    let attribute_xml = workflows["example_misp_create_attribute"]["content"]["xml"]
        .as_str()
        .unwrap_or_default();
    for (artifact_type, misp_type) in [
        ("DNS Name", "hostname"),
        ("IP Address", "ip-dst"),
        ("Threat CVE ID", "vulnerability"),
        ("Malware SHA-256 Hash", "sha256"),
    ] {
        assert!(
            attribute_xml.contains(&format!(r#"\"{artifact_type}\": \"{misp_type}\""#)),
            "the create-attribute map sends {artifact_type} as {misp_type}"
        );
    }
    assert!(
        attribute_xml.contains("helper.fail("),
        "an unmapped artifact type fails the workflow"
    );
}

#[test]
fn the_export_has_what_an_import_needs() {
    let generated = generated();
    let reference = reference();
    let keys = |export: &Value| -> Vec<String> {
        export
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(
        keys(&generated),
        keys(&reference),
        "the original's top-level keys"
    );
    assert_eq!(generated["export_format_version"], 2);
    assert_eq!(generated["server_version"], reference["server_version"]);
    let internal_type = |export: &Value| {
        pick(
            &export["incident_types"][0],
            &["name", "uuid", "enabled", "id"],
        )
    };
    assert_eq!(internal_type(&generated), internal_type(&reference));
    // Deterministic: built twice, rendered the same, with keys sorted as the text shows.
    let first = export::to_export_text(&generated).unwrap_or_default();
    assert_eq!(
        first,
        export::to_export_text(&self::generated()).unwrap_or_default()
    );
    assert!(
        first.starts_with("{\n  \"action_order\": [],\n  \"actions\": ["),
        "sorted keys, two-space indent"
    );
}

/// The function's input names in the order its view lists them (the definition's order).
const URLSCANIO_INPUTS: [&str; 5] = [
    "urlscanio_url",
    "urlscanio_public",
    "urlscanio_useragent",
    "urlscanio_referer",
    "incident_id",
];

/// The original app's menu item and playbook are offered on these artifact types.
fn url_artifact_condition() -> Value {
    json!({"evaluation_id": null, "field_name": "artifact.type", "method": "in", "type": null, "value": ["URL", "URL Referer"]})
}

/// The JSON of the one function step of a workflow or playbook BPMN, unescaped.
fn function_step_config(xml: &str, function_uuid: &str) -> Value {
    let open = format!("<resilient:function uuid=\"{function_uuid}\">");
    let start = xml
        .find(&open)
        .map(|at| at + open.len())
        .unwrap_or_else(|| panic!("no step calling {function_uuid} in {xml}"));
    let end = xml[start..]
        .find("</resilient:function>")
        .map(|length| start + length)
        .unwrap_or_else(|| panic!("the step calling {function_uuid} is not closed"));
    let text = xml[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("the step's config is not JSON ({error}): {text}"))
}

#[test]
fn urlscanio_export_has_the_function_its_five_inputs_and_the_original_urlscanio_destination() {
    let generated = generated_for("fn_urlscanio");
    let functions = by_name(&generated, "functions", "name");
    assert_eq!(
        functions.keys().map(String::as_str).collect::<Vec<_>>(),
        ["urlscanio"],
        "fn_urlscanio has one function"
    );
    let function = functions["urlscanio"];
    assert_eq!(
        pick(
            function,
            &["display_name", "description", "destination_handle"]
        ),
        json!({
            "display_name": "Scan with urlscan.io",
            "description": {"content": "Analyze a URL with urlscan.io", "format": "text"},
            "destination_handle": "urlscanio",
        })
    );

    let fields = by_name(&generated, "fields", "export_key");
    for (name, input_type, required) in [
        ("urlscanio_url", "text", json!("always")),
        ("urlscanio_public", "boolean", Value::Null),
        ("urlscanio_useragent", "text", Value::Null),
        ("urlscanio_referer", "text", Value::Null),
        ("incident_id", "number", json!("always")),
    ] {
        let key = format!("__function/{name}");
        let field = fields
            .get(&key)
            .unwrap_or_else(|| panic!("input field {key} is missing"));
        assert_eq!(
            pick(field, &["name", "input_type", "required", "type_id"]),
            json!({"name": name, "input_type": input_type, "required": required, "type_id": 11}),
            "field {key}"
        );
    }
    assert_eq!(
        fields.len(),
        URLSCANIO_INPUTS.len() + 1,
        "the five inputs and the internal field, nothing else: {:?}",
        fields.keys().collect::<Vec<_>>()
    );
    // The function's form shows its inputs by field uuid, in the definition's order.
    let name_of_uuid: BTreeMap<&str, &str> = fields
        .values()
        .filter_map(|field| Some((field["uuid"].as_str()?, field["name"].as_str()?)))
        .collect();
    let shown: Vec<&str> = function["view_items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let uuid = item["content"].as_str().unwrap_or_default();
            name_of_uuid.get(uuid).copied().unwrap_or(uuid)
        })
        .collect();
    assert_eq!(shown, URLSCANIO_INPUTS, "the function's view items");

    let destinations: Vec<Value> = list(&generated, "message_destinations")
        .iter()
        .map(|destination| {
            pick(
                destination,
                &[
                    "programmatic_name",
                    "name",
                    "export_key",
                    "destination_type",
                    "expect_ack",
                    "uuid",
                ],
            )
        })
        .collect();
    assert_eq!(
        destinations,
        [json!({
            "programmatic_name": "urlscanio",
            "name": "urlscan.io",
            "export_key": "urlscanio",
            "destination_type": 0,
            "expect_ack": true,
            // The original app's destination, so an import matches what SOAR already has.
            "uuid": "9c4e0143-d84b-4fd2-be43-e52eeb1e1e08",
        })],
        "one queue destination, the original's urlscanio"
    );
}

#[test]
fn urlscanio_example_workflow_scans_the_artifact_privately_and_notes_the_verdict() {
    let generated = generated_for("fn_urlscanio");
    let function_uuid = function_uuid(&generated, "urlscanio");
    let workflows = by_name(&generated, "workflows", "programmatic_name");
    assert_eq!(
        workflows.keys().map(String::as_str).collect::<Vec<_>>(),
        ["example_urlscanio"],
        "the original's one example workflow"
    );
    let workflow = workflows["example_urlscanio"];
    assert_eq!(
        pick(workflow, &["name", "object_type", "export_key", "uuid"]),
        json!({
            "name": "Example: urlscan.io",
            "object_type": "artifact",
            "export_key": "example_urlscanio",
            "uuid": "21b841bb-f3f3-41b7-92a1-c44f027d14a1",
        }),
        "the original's workflow name and uuid"
    );
    let xml = workflow["content"]["xml"].as_str().unwrap_or_default();
    assert!(
        xml.contains("<process id=\"example_urlscanio\""),
        "the process id is the programmatic name"
    );
    let config = function_step_config(xml, &function_uuid);
    assert_eq!(
        config["result_name"], "urlscanio",
        "the original's result name"
    );
    let pre = config["pre_processing_script"].as_str().unwrap_or_default();
    for line in [
        "inputs.urlscanio_url = artifact.value",
        "inputs.incident_id = incident.id",
        "inputs.urlscanio_public = False",
    ] {
        assert!(
            pre.lines().any(|script_line| script_line == line),
            "the pre-processing script has the line `{line}`: {pre}"
        );
    }
    assert!(
        !pre.contains("#:"),
        "reader notes are not sent to SOAR: {pre}"
    );
    let post = config["post_processing_script"]
        .as_str()
        .unwrap_or_default();
    for part in [
        "incident.addNote(",
        "content.get(\"report_url\")",
        "summary.get(\"malicious\")",
        "summary.get(\"score\")",
        "results.reason",
    ] {
        assert!(
            post.contains(part),
            "the post-processing script uses {part}: {post}"
        );
    }
    // SOAR lists the workflows that use a function on the function itself.
    let listed: Vec<&str> = by_name(&generated, "functions", "name")["urlscanio"]["workflows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|reference| reference["programmatic_name"].as_str())
        .collect();
    assert_eq!(
        listed,
        ["example_urlscanio"],
        "the workflows urlscanio lists"
    );
}

#[test]
fn urlscanio_rule_is_a_menu_item_on_url_artifacts_that_starts_the_workflow() {
    let generated = generated_for("fn_urlscanio");
    let rules = by_name(&generated, "actions", "name");
    assert_eq!(
        rules.keys().map(String::as_str).collect::<Vec<_>>(),
        ["Example: urlscan.io"],
        "the original's one rule"
    );
    assert_eq!(
        pick(
            rules["Example: urlscan.io"],
            &[
                "type",
                "object_type",
                "workflows",
                "conditions",
                "logic_type",
                "uuid"
            ]
        ),
        json!({
            "type": 1,
            "object_type": "artifact",
            "workflows": ["example_urlscanio"],
            "conditions": [url_artifact_condition()],
            "logic_type": "all",
            "uuid": "bbb9072a-263c-4316-8da3-da885c04f814",
        }),
        "a menu item on URL artifacts, with the original's uuid"
    );
}

#[test]
fn urlscanio_playbook_is_offered_on_url_artifacts_and_calls_the_function() {
    let generated = generated_for("fn_urlscanio");
    let function_uuid = function_uuid(&generated, "urlscanio");
    let playbooks = by_name(&generated, "playbooks", "name");
    assert_eq!(
        playbooks.keys().map(String::as_str).collect::<Vec<_>>(),
        ["example_urlscanio"],
        "the original's playbook, by its API name"
    );
    let playbook = playbooks["example_urlscanio"];
    let uuid = export::stable_uuid("fn_urlscanio", "playbook", "example_urlscanio");
    assert_eq!(
        pick(
            playbook,
            &[
                "object_type",
                "activation_type",
                "status",
                "uuid",
                "manual_settings"
            ]
        ),
        json!({
            "object_type": "artifact",
            "activation_type": "manual",
            "status": "enabled",
            "uuid": uuid,
            "manual_settings": {
                "activation_conditions": {"conditions": [url_artifact_condition()], "logic_type": "all"},
                "view_items": [],
            },
        }),
        "a manual playbook on URL artifacts"
    );
    let xml = playbook["content"]["xml"].as_str().unwrap_or_default();
    assert!(
        xml.contains(&format!(
            "<process id=\"{}\"",
            export::playbook_handle(&uuid)
        )),
        "the process id is the playbook handle"
    );
    let config = function_step_config(xml, &function_uuid);
    assert_eq!(config["result_name"], "urlscanio");
    let pre = config["pre_processing_script"].as_str().unwrap_or_default();
    for line in [
        "inputs.urlscanio_url = artifact.value",
        "inputs.incident_id = incident.id",
        "inputs.urlscanio_public = False",
    ] {
        assert!(
            pre.lines().any(|script_line| script_line == line),
            "the input script has the line `{line}`: {pre}"
        );
    }
    let scripts = playbook["local_scripts"].as_array().map(Vec::as_slice);
    let script = match scripts {
        Some([script]) => script,
        other => panic!("expected one local script, got {other:?}"),
    };
    assert!(
        xml.contains(&format!(
            "<resilient:script uuid=\"{}\"/>",
            script["uuid"].as_str().unwrap_or_default()
        )),
        "the BPMN's script step runs the local script"
    );
    let text = script["script_text"].as_str().unwrap_or_default();
    for part in [
        "playbook.functions.results.urlscanio",
        "incident.addNote(",
        "content.get(\"report_url\")",
        "summary.get(\"malicious\")",
    ] {
        assert!(text.contains(part), "the post script uses {part}: {text}");
    }
}

#[test]
fn resilient_sdk_loads_every_function_field_workflow_and_playbook() {
    let Some(python) = support::resilient_sdk_python("the export") else {
        return;
    };
    let root = workspace_root();

    let apps = registered_apps().unwrap_or_else(|error| panic!("the registry: {error:#}"));
    for name in ["fn_misp", "fn_urlscanio"] {
        assert!(
            apps.iter().any(|app| app.name == name),
            "{name} is registered"
        );
    }
    for app in &apps {
        let summary = load_with_resilient_sdk(&python, &root, app);
        assert_eq!(
            summary["functions"].as_array().map(Vec::len),
            Some(app.functions.len()),
            "every function of {}: {summary}",
            app.name
        );
        if app.name == "fn_misp" {
            let manifest = AppSources::load(&root.join(CUSTOMIZATIONS_DIR).join(app.name))
                .unwrap_or_else(|error| panic!("the fn_misp sources: {error:#}"));
            assert_eq!(
                summary["playbooks"].as_array().map(Vec::len),
                Some(manifest.playbooks.len()),
                "every playbook of the manifest: {summary}"
            );
            assert_eq!(
                summary["workflows"].as_array().map(Vec::len),
                Some(7),
                "{summary}"
            );
            assert!(
                summary["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| f == "incident/misp_event_id"),
                "{summary}"
            );
        }
        if app.name == "fn_urlscanio" {
            assert_eq!(
                pick(
                    &summary,
                    &["message_destinations", "workflows", "rules", "playbooks"]
                ),
                json!({
                    "message_destinations": ["urlscanio"],
                    "workflows": ["example_urlscanio"],
                    "rules": ["Example: urlscan.io"],
                    "playbooks": ["example_urlscanio"],
                }),
                "{summary}"
            );
        }
    }
}

/// Runs `sdk_load_export.py` on the checked-in export of `app` (what `soar-runner
/// customize` embeds) and returns its summary; panics with the SDK's complaint.
fn load_with_resilient_sdk(python: &Path, root: &Path, app: &App) -> Value {
    let sources = AppSources::load(&root.join(CUSTOMIZATIONS_DIR).join(app.name))
        .unwrap_or_else(|error| panic!("the {} sources: {error:#}", app.name));
    let mut destinations: Vec<&str> = app.functions.iter().map(|f| f.destination).collect();
    destinations.sort_unstable();
    destinations.dedup();
    let expected = json!({
        "functions": app.functions.iter().map(|f| (f.name.to_string(), json!(f.inputs.iter().map(|i| i.name).collect::<Vec<_>>()))).collect::<serde_json::Map<_, _>>(),
        "incident_fields": sources.incident_fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
        "message_destinations": destinations,
        "workflows": sources.workflows.iter().map(|w| (w.manifest.programmatic_name.clone(), json!(w.manifest.function))).collect::<serde_json::Map<_, _>>(),
        "rules": sources.rules.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        "playbooks": sources.playbooks.iter().map(|p| (p.manifest.name.clone(), json!(p.manifest.function))).collect::<serde_json::Map<_, _>>(),
    });
    let scratch =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sdk-expected-{}.json", app.name));
    std::fs::write(&scratch, expected.to_string())
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", scratch.display()));
    let output = Command::new(python)
        .arg(root.join("xtask/tests/sdk_load_export.py"))
        .arg(root.join(xtask::export_path(app.name)))
        .arg(&scratch)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
    assert!(
        output.status.success(),
        "resilient-sdk could not load the {} export:\n{}",
        app.name,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "the loader's summary is not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
