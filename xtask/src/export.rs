//! Builds an app's `export.res`, the customization export SOAR imports, from its function
//! definitions and its `customizations/<app>/` sources (soar_protocol §6).
//!
//! The output is deterministic: a fixed export date, ids numbered in order, UUIDs either
//! the original app's or derived (v5) from the object's name, keys sorted.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use soar_core::{FunctionDefinition, InputField};
use uuid::Uuid;

use crate::App;
use crate::sources::{
    AppSources, Condition, IncidentField, MessageDestination, Playbook, Rule, Workflow,
};

/// The `export_date` and every other timestamp of a generated export (2025-01-01T00:00:00Z):
/// an import ignores them, and a clock would make the file change on every run.
pub const EXPORT_DATE_MS: i64 = 1_735_689_600_000;

/// The SOAR version the export claims to come from: the original fn_misp export's, so that
/// every platform that imported the original accepts this one.
pub const SERVER_VERSION: (u32, u32, u32) = (48, 2, 16);

/// The namespace of the v5 UUIDs given to objects the original app did not have. Changing
/// it would make SOAR see every such object as new.
pub const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x5c0a_7e1d_0f2b_4e6a_9d3c_8b1f_2a4e_6d70);

/// The internal incident type every import must carry (soar_protocol §6.9).
pub const INTERNAL_INCIDENT_TYPE_UUID: &str = "bfeec2d4-3770-11e8-ad39-4a0004044aa0";
pub const INTERNAL_INCIDENT_TYPE_NAME: &str = "Customization Packages (internal)";
/// The internal incident field every import must carry.
pub const INTERNAL_FIELD_UUID: &str = "bfeec2d4-3770-11e8-ad39-4a0004044aa1";

/// Who the export says created and last changed each object.
const AUTHOR_EMAIL: &str = "admin@example.com";

/// The export of one app as a JSON value; [`to_export_text`] renders it.
pub fn build_export(app: &App, sources: &AppSources) -> Result<Value> {
    let functions: BTreeMap<&str, &FunctionDefinition> = app
        .functions
        .iter()
        .map(|definition| (definition.name, *definition))
        .collect();
    check_references(app, sources, &functions)?;

    let function_objects = app
        .functions
        .iter()
        .enumerate()
        .map(|(index, definition)| function_object(index, definition, &sources.workflows))
        .collect::<Vec<_>>();

    let mut fields = function_input_fields(app)?;
    let first_incident_field_id = fields.len() + 1;
    fields.extend(
        sources
            .incident_fields
            .iter()
            .enumerate()
            .map(|(index, field)| incident_field(app, first_incident_field_id + index, field)),
    );
    fields.push(internal_incident_field());

    let workflows = sources
        .workflows
        .iter()
        .enumerate()
        .map(|(index, workflow)| workflow_object(app, index, workflow, &functions))
        .collect::<Result<Vec<_>>>()?;
    let rules = sources
        .rules
        .iter()
        .enumerate()
        .map(|(index, rule)| rule_object(app, index, rule))
        .collect::<Vec<_>>();
    let playbooks = sources
        .playbooks
        .iter()
        .enumerate()
        .map(|(index, playbook)| playbook_object(app, index, playbook, &functions))
        .collect::<Result<Vec<_>>>()?;

    let (major, minor, build) = SERVER_VERSION;
    Ok(json!({
        "action_order": [],
        "actions": rules,
        "apps": [],
        "automatic_tasks": [],
        "case_matching_profiles": [],
        "export_date": EXPORT_DATE_MS,
        "export_format_version": 2,
        "export_type": null,
        "fields": fields,
        "functions": function_objects,
        "geos": null,
        "groups": null,
        "id": 1,
        "inbound_destinations": [],
        "inbound_mailboxes": null,
        "incident_artifact_types": [],
        "incident_types": [internal_incident_type()],
        "layouts": [],
        "locale": null,
        "message_destinations": message_destinations(app, sources),
        "notifications": null,
        "overrides": null,
        "phases": [],
        "playbooks": playbooks,
        "regulators": null,
        "roles": [],
        "scripts": [],
        "server_version": {
            "build_number": build,
            "major": major,
            "minor": minor,
            "version": format!("{major}.{minor}.{build}"),
        },
        "tags": [],
        "task_order": [],
        "timeframes": null,
        "types": [],
        "workflows": workflows,
        "workspaces": [],
    }))
}

/// The file text: keys sorted, two-space indent, a final newline.
pub fn to_export_text(export: &Value) -> Result<String> {
    let mut text = serde_json::to_string_pretty(&sorted(export)).context("cannot render JSON")?;
    text.push('\n');
    Ok(text)
}

/// A v5 UUID for an object the original app had no UUID for, from the app, the kind of
/// object and its name, so that it is the same on every run and on every machine.
pub fn stable_uuid(app: &str, kind: &str, name: &str) -> String {
    Uuid::new_v5(&UUID_NAMESPACE, format!("{app}/{kind}/{name}").as_bytes()).to_string()
}

/// `value` with every object's keys in sorted order, whatever map type serde_json was
/// built with (`preserve_order` keeps insertion order, so insert sorted).
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|key| (key.clone(), sorted(&map[key])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// JSON placed as text inside a BPMN element: XML's three special characters escaped.
pub fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `playbook_<uuid with underscores>`, the playbook's process id and field type handle.
pub fn playbook_handle(uuid: &str) -> String {
    format!("playbook_{}", uuid.replace('-', "_"))
}

fn check_references(
    app: &App,
    sources: &AppSources,
    functions: &BTreeMap<&str, &FunctionDefinition>,
) -> Result<()> {
    let known = || functions.keys().copied().collect::<Vec<_>>().join(", ");
    for workflow in &sources.workflows {
        if !functions.contains_key(workflow.manifest.function.as_str()) {
            bail!(
                "workflow '{}' calls '{}', which is not a function of app '{}' (its functions: {})",
                workflow.manifest.programmatic_name,
                workflow.manifest.function,
                app.name,
                known()
            );
        }
    }
    for playbook in &sources.playbooks {
        if !functions.contains_key(playbook.manifest.function.as_str()) {
            bail!(
                "playbook '{}' calls '{}', which is not a function of app '{}' (its functions: {})",
                playbook.manifest.name,
                playbook.manifest.function,
                app.name,
                known()
            );
        }
    }
    for rule in &sources.rules {
        for workflow in &rule.workflows {
            if !sources
                .workflows
                .iter()
                .any(|known| &known.manifest.programmatic_name == workflow)
            {
                bail!(
                    "rule '{}' starts workflow '{workflow}', which app '{}' does not define",
                    rule.name,
                    app.name
                );
            }
        }
    }
    Ok(())
}

fn author() -> Value {
    json!({"display_name": "Admin", "id": 1, "name": AUTHOR_EMAIL, "type": "user"})
}

fn function_object(index: usize, definition: &FunctionDefinition, workflows: &[Workflow]) -> Value {
    let view_items: Vec<Value> = definition
        .inputs
        .iter()
        .map(|input| {
            json!({
                "content": input.uuid,
                "element": "field_uuid",
                "field_type": "__function",
                "show_if": null,
                "show_link_header": false,
                "step_label": null,
            })
        })
        .collect();
    // SOAR lists the workflows that use a function by name.
    let mut using: Vec<(&str, usize, &Workflow)> = workflows
        .iter()
        .enumerate()
        .filter(|(_, workflow)| workflow.manifest.function == definition.name)
        .map(|(workflow_index, workflow)| {
            (workflow.manifest.name.as_str(), workflow_index, workflow)
        })
        .collect();
    using.sort_by_key(|(name, _, _)| *name);
    let workflow_references: Vec<Value> = using
        .into_iter()
        .map(|(_, workflow_index, workflow)| {
            json!({
                "actions": [],
                "description": null,
                "name": workflow.manifest.name,
                "object_type": workflow.manifest.object_type.soar_name(),
                "programmatic_name": workflow.manifest.programmatic_name,
                "tags": [],
                "uuid": null,
                "workflow_id": workflow_index + 1,
            })
        })
        .collect();
    json!({
        "created_date": EXPORT_DATE_MS,
        "description": {"content": definition.description, "format": "text"},
        "destination_handle": definition.destination,
        "display_name": definition.display_name,
        "export_key": definition.name,
        "id": index + 1,
        "last_modified_by": author(),
        "last_modified_time": EXPORT_DATE_MS,
        "name": definition.name,
        "output_description": {"content": null, "format": "text"},
        "tags": [],
        "uuid": definition.uuid,
        "version": 1,
        "view_items": view_items,
        "workflows": workflow_references,
    })
}

/// The `__function/*` fields, each once even when several functions share it, in name
/// order. Two functions that define the same name differently are an error.
fn function_input_fields(app: &App) -> Result<Vec<Value>> {
    let mut by_name: BTreeMap<&str, (&InputField, &str)> = BTreeMap::new();
    for definition in &app.functions {
        for input in definition.inputs {
            match by_name.get(input.name) {
                Some((existing, first_function)) if *existing != input => bail!(
                    "input field '{}' is defined differently by '{first_function}' and '{}'; SOAR has one field per name",
                    input.name,
                    definition.name
                ),
                Some(_) => {}
                None => {
                    by_name.insert(input.name, (input, definition.name));
                }
            }
        }
    }
    let mut uuids: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, (input, _)) in &by_name {
        if let Some(other) = uuids.insert(input.uuid, name) {
            bail!(
                "input fields '{other}' and '{name}' have the same uuid {}",
                input.uuid
            );
        }
    }
    Ok(by_name
        .values()
        .enumerate()
        .map(|(index, (input, _))| function_input_field(index + 1, input))
        .collect())
}

fn function_input_field(id: usize, input: &InputField) -> Value {
    let values: Vec<Value> = input
        .values
        .iter()
        .map(|value| {
            json!({
                "default": value.default,
                "enabled": true,
                "hidden": false,
                "label": value.label,
                "properties": null,
                "uuid": value.uuid,
                "value": value.value,
            })
        })
        .collect();
    let mut field = json!({
        "allow_default_value": false,
        "blank_option": false,
        "calculated": false,
        "changeable": true,
        "chosen": false,
        "default_chosen_by_server": false,
        "deprecated": false,
        "export_key": format!("__function/{}", input.name),
        "hide_notification": false,
        "id": id,
        "input_type": input.input_type.soar_name(),
        "internal": false,
        "is_tracked": false,
        "name": input.name,
        "operation_perms": {},
        "operations": [],
        "placeholder": input.placeholder,
        "prefix": null,
        "read_only": false,
        "rich_text": false,
        "tags": [],
        "templates": [],
        "text": input.name,
        "tooltip": input.tooltip,
        "type_id": 11,
        "uuid": input.uuid,
        "values": values,
    });
    // SOAR leaves `required` out for optional fields rather than writing null.
    if input.required {
        field["required"] = json!("always");
    }
    field
}

fn incident_field(app: &App, id: usize, field: &IncidentField) -> Value {
    let uuid = field
        .uuid
        .clone()
        .unwrap_or_else(|| stable_uuid(app.name, "incident_field", &field.name));
    json!({
        "allow_default_value": false,
        "blank_option": false,
        "calculated": false,
        "changeable": true,
        "chosen": false,
        "default_chosen_by_server": false,
        "deprecated": false,
        "export_key": format!("incident/{}", field.name),
        "hide_notification": false,
        "id": id,
        "input_type": field.input_type,
        "internal": false,
        "is_tracked": false,
        "name": field.name,
        "operation_perms": {},
        "operations": [],
        "placeholder": field.placeholder,
        "prefix": "properties",
        "read_only": false,
        "rich_text": false,
        "tags": [],
        "templates": [],
        "text": field.text,
        "tooltip": field.tooltip,
        "type_id": 0,
        "uuid": uuid,
        "values": [],
    })
}

fn internal_incident_field() -> Value {
    json!({
        "export_key": "incident/internal_customizations_field",
        "id": 0,
        "input_type": "text",
        "internal": true,
        "name": "internal_customizations_field",
        "read_only": true,
        "text": "Customizations Field (internal)",
        "type_id": 0,
        "uuid": INTERNAL_FIELD_UUID,
    })
}

fn internal_incident_type() -> Value {
    json!({
        "create_date": EXPORT_DATE_MS,
        "description": INTERNAL_INCIDENT_TYPE_NAME,
        "enabled": false,
        "export_key": INTERNAL_INCIDENT_TYPE_NAME,
        "hidden": false,
        "id": 0,
        "name": INTERNAL_INCIDENT_TYPE_NAME,
        "parent_id": null,
        "system": false,
        "update_date": EXPORT_DATE_MS,
        "uuid": INTERNAL_INCIDENT_TYPE_UUID,
    })
}

/// The app's message destinations: those its manifest describes, plus one for each
/// destination its functions name that the manifest does not, so the import never has a
/// function without its queue.
fn message_destinations(app: &App, sources: &AppSources) -> Vec<Value> {
    let mut destinations: Vec<MessageDestination> = sources.message_destinations.clone();
    let mut named: Vec<&str> = app
        .functions
        .iter()
        .map(|function| function.destination)
        .collect();
    named.sort_unstable();
    named.dedup();
    for destination in named {
        if !destinations
            .iter()
            .any(|known| known.programmatic_name == destination)
        {
            destinations.push(MessageDestination {
                programmatic_name: destination.to_string(),
                name: destination.to_string(),
                destination_type: 0,
                expect_ack: true,
                uuid: None,
            });
        }
    }
    destinations
        .iter()
        .map(|destination| {
            let uuid = destination.uuid.clone().unwrap_or_else(|| {
                stable_uuid(
                    app.name,
                    "message_destination",
                    &destination.programmatic_name,
                )
            });
            json!({
                "api_keys": [],
                "destination_type": destination.destination_type,
                "expect_ack": destination.expect_ack,
                "export_key": destination.programmatic_name,
                "name": destination.name,
                "programmatic_name": destination.programmatic_name,
                "tags": [],
                "users": [],
                "uuid": uuid,
            })
        })
        .collect()
}

fn workflow_object(
    app: &App,
    index: usize,
    workflow: &Workflow,
    functions: &BTreeMap<&str, &FunctionDefinition>,
) -> Result<Value> {
    let manifest = &workflow.manifest;
    let mut config = json!({
        "inputs": {},
        "pre_processing_script": workflow.pre_processing_script,
        "pre_processing_script_language": "python3",
        "result_name": manifest.result_name,
    });
    if let Some(post) = &workflow.post_processing_script {
        config["post_processing_script"] = json!(post);
        config["post_processing_script_language"] = json!("python3");
    }
    let what = format!("workflow '{}'", manifest.programmatic_name);
    let xml = fill_bpmn(
        &what,
        &workflow.bpmn,
        function_uuid(functions, &manifest.function)?,
        &config,
        &[],
    )?;
    let uuid = manifest
        .uuid
        .clone()
        .unwrap_or_else(|| stable_uuid(app.name, "workflow", &manifest.programmatic_name));
    Ok(json!({
        "actions": [],
        "content": {
            "version": 1,
            "workflow_id": manifest.programmatic_name,
            "xml": xml,
        },
        "content_version": 1,
        "description": manifest.description,
        "export_key": manifest.programmatic_name,
        "last_modified_by": AUTHOR_EMAIL,
        "last_modified_time": EXPORT_DATE_MS,
        "name": manifest.name,
        "object_type": manifest.object_type.soar_name(),
        "programmatic_name": manifest.programmatic_name,
        "tags": [],
        "uuid": uuid,
        "workflow_id": index + 1,
    }))
}

fn rule_object(app: &App, index: usize, rule: &Rule) -> Value {
    let uuid = rule
        .uuid
        .clone()
        .unwrap_or_else(|| stable_uuid(app.name, "rule", &rule.name));
    json!({
        "automations": [],
        "conditions": rule.conditions.iter().map(condition).collect::<Vec<_>>(),
        "enabled": true,
        "export_key": rule.name,
        "id": index + 1,
        "logic_type": "all",
        "message_destinations": [],
        "name": rule.name,
        "object_type": rule.object_type.soar_name(),
        "tags": [],
        "timeout_seconds": 86400,
        // 1 is a manual rule: a menu item.
        "type": 1,
        "uuid": uuid,
        "view_items": [],
        "workflows": rule.workflows,
    })
}

fn playbook_object(
    app: &App,
    index: usize,
    playbook: &Playbook,
    functions: &BTreeMap<&str, &FunctionDefinition>,
) -> Result<Value> {
    let manifest = &playbook.manifest;
    let name = manifest.name.as_str();
    let object_type = manifest.object_type.soar_name();
    let uuid = manifest
        .uuid
        .clone()
        .unwrap_or_else(|| stable_uuid(app.name, "playbook", name));
    let handle = playbook_handle(&uuid);
    let post_script_uuid = manifest.post_script_uuid.clone().unwrap_or_else(|| {
        stable_uuid(app.name, "playbook_script", &format!("{name}/post process"))
    });
    let config = json!({
        "inputs": {},
        "pre_processing_script": playbook.pre_processing_script,
        "pre_processing_script_language": "python3",
        "result_name": manifest.result_name,
    });
    let what = format!("playbook '{name}'");
    let xml = fill_bpmn(
        &what,
        &playbook.bpmn,
        function_uuid(functions, &manifest.function)?,
        &config,
        &[
            ("process_id", &handle),
            ("post_script_uuid", &post_script_uuid),
        ],
    )?;
    let local_scripts: Vec<Value> = match &playbook.post_processing_script {
        Some(script) => vec![json!({
            "actions": [],
            "created_date": EXPORT_DATE_MS,
            "description": "",
            "enabled": false,
            "export_key": "post process",
            "id": index + 1,
            "language": "python3",
            "last_modified_by": AUTHOR_EMAIL,
            "last_modified_time": EXPORT_DATE_MS,
            "name": "post process",
            "object_type": object_type,
            "playbook_handle": name,
            "programmatic_name": format!("{name}_post_process"),
            "script_text": script,
            "tags": [],
            "uuid": post_script_uuid,
        })],
        None => Vec::new(),
    };
    let fields_type_uuid = manifest
        .fields_type_uuid
        .clone()
        .unwrap_or_else(|| stable_uuid(app.name, "playbook_fields_type", name));
    let tag_uuid = manifest
        .tag_uuid
        .clone()
        .unwrap_or_else(|| stable_uuid(app.name, "playbook_tag", name));
    Ok(json!({
        "activation_type": "manual",
        "content": {"content_version": manifest.content_version, "xml": xml},
        "create_date": EXPORT_DATE_MS,
        "creator_principal": author(),
        "deployment_id": handle,
        "description": {"content": manifest.description, "format": "text"},
        "display_name": manifest.display_name,
        "export_key": name,
        "field_type_handle": handle,
        "fields_type": {
            "actions": [],
            "display_name": manifest.display_name,
            "export_key": handle,
            "fields": {},
            "for_actions": false,
            "for_custom_fields": false,
            "for_notifications": false,
            "for_workflows": false,
            "id": null,
            "parent_types": ["__playbook"],
            "properties": {"can_create": false, "can_destroy": false, "for_who": []},
            "scripts": [],
            "tags": [],
            "type_id": 28,
            "type_name": handle,
            "uuid": fields_type_uuid,
        },
        "has_logical_errors": false,
        "id": index + 1,
        "is_deleted": false,
        "is_locked": false,
        "last_modified_principal": author(),
        "last_modified_time": EXPORT_DATE_MS,
        "local_scripts": local_scripts,
        "manual_settings": {
            "activation_conditions": {
                "conditions": manifest.activation_conditions.iter().map(condition).collect::<Vec<_>>(),
                "logic_type": "all",
            },
            "view_items": [],
        },
        "name": name,
        "object_type": object_type,
        "status": "enabled",
        "tag": {
            "display_name": format!("Playbook_{uuid}"),
            "id": index + 1,
            "name": handle,
            "type": "playbook",
            "uuid": tag_uuid,
        },
        "tags": [],
        "type": "default",
        "uuid": uuid,
        "version": manifest.version,
    }))
}

fn condition(condition: &Condition) -> Value {
    json!({
        "evaluation_id": null,
        "field_name": condition.field_name,
        "method": condition.method,
        "type": null,
        "value": condition.value,
    })
}

fn function_uuid<'a>(
    functions: &BTreeMap<&str, &'a FunctionDefinition>,
    name: &str,
) -> Result<&'a str> {
    functions
        .get(name)
        .map(|definition| definition.uuid)
        .with_context(|| format!("no function named '{name}'"))
}

/// Puts the function step's JSON and the placeholders' values into a BPMN source, after
/// checking that its function element names `function_uuid`, the function it should call.
fn fill_bpmn(
    what: &str,
    bpmn: &str,
    function_uuid: &str,
    config: &Value,
    placeholders: &[(&str, &str)],
) -> Result<String> {
    let referenced: Vec<&str> = bpmn
        .match_indices("<resilient:function uuid=\"")
        .filter_map(|(start, marker)| {
            let rest = &bpmn[start + marker.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect();
    if referenced != [function_uuid] {
        bail!(
            "{what}: its BPMN must have one function step, calling {function_uuid}; it calls {referenced:?}"
        );
    }
    let config_text = serde_json::to_string(&sorted(config)).context("cannot render JSON")?;
    let mut xml = bpmn.replace("{{function_config}}", &xml_text(&config_text));
    for (name, value) in placeholders {
        xml = xml.replace(&format!("{{{{{name}}}}}"), value);
    }
    // The config is in place, and the scripts inside it may hold braces of their own, so
    // look for leftovers in the template only.
    let mut template_rest = bpmn.replace("{{function_config}}", "");
    for (name, _) in placeholders {
        template_rest = template_rest.replace(&format!("{{{{{name}}}}}"), "");
    }
    if let Some(start) = template_rest.find("{{") {
        let end = template_rest[start..]
            .find("}}")
            .map_or(template_rest.len(), |end| start + end + 2);
        bail!(
            "{what}: its BPMN has the unknown placeholder {}",
            &template_rest[start..end]
        );
    }
    Ok(xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_uuids_depend_only_on_app_kind_and_name() {
        let first = stable_uuid("fn_misp", "playbook", "misp_create_tag_on_event");
        assert_eq!(
            first,
            stable_uuid("fn_misp", "playbook", "misp_create_tag_on_event")
        );
        assert_ne!(
            first,
            stable_uuid("fn_misp", "playbook", "misp_create_tag_on_attribute")
        );
        assert_ne!(
            first,
            stable_uuid("fn_misp", "workflow", "misp_create_tag_on_event")
        );
        assert_eq!(
            Uuid::parse_str(&first)
                .map(|uuid| uuid.get_version_num())
                .ok(),
            Some(5)
        );
    }

    #[test]
    fn sorted_orders_keys_at_every_depth() {
        let value = json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": null}});
        let text = serde_json::to_string(&sorted(&value)).unwrap_or_default();
        assert_eq!(text, r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#);
    }

    #[test]
    fn fill_bpmn_checks_the_function_and_every_placeholder() {
        let bpmn = r#"<?xml?><process id="{{process_id}}"><resilient:function uuid="f-1">{{function_config}}</resilient:function></process>"#;
        let config =
            json!({"result_name": "r", "pre_processing_script": "if a < b & c > d: x = {}"});
        let xml = fill_bpmn("test", bpmn, "f-1", &config, &[("process_id", "p_1")])
            .unwrap_or_else(|error| panic!("expected a filled BPMN, got {error:#}"));
        assert_eq!(
            xml,
            r#"<?xml?><process id="p_1"><resilient:function uuid="f-1">{"pre_processing_script":"if a &lt; b &amp; c &gt; d: x = {}","result_name":"r"}</resilient:function></process>"#
        );

        let wrong_function = fill_bpmn("test", bpmn, "f-2", &config, &[("process_id", "p")]);
        assert!(
            matches!(&wrong_function, Err(error) if error.to_string().contains("calling f-2")),
            "expected a wrong-function error, got {wrong_function:?}"
        );

        let unknown = fill_bpmn("test", bpmn, "f-1", &config, &[]);
        assert!(
            matches!(&unknown, Err(error) if error.to_string().contains("unknown placeholder {{process_id}}")),
            "expected an unknown-placeholder error, got {unknown:?}"
        );
    }
}
