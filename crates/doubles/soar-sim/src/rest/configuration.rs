//! The org's customizations as accepted imports leave them (workflows, rules, playbooks,
//! scripts, incident fields and types, ...), and the export document SOAR builds from them
//! (`POST /configurations/exports`, soar_protocol §6).
//!
//! Functions, message destinations and function input fields are held by `routes.rs`, which
//! serves them to the runner at start-up; this module holds every other object kind.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The export lists kept here; each is matched on import by uuid first, then by its API
/// name (the first of the given keys the object has), as SOAR matches existing objects.
const KINDS: &[(&str, &[&str])] = &[
    ("actions", &["name"]),
    ("automatic_tasks", &["programmatic_name", "export_key"]),
    ("fields", &["export_key"]),
    (
        "incident_artifact_types",
        &["programmatic_name", "export_key"],
    ),
    ("incident_types", &["name"]),
    ("layouts", &["export_key", "name"]),
    ("phases", &["export_key", "name"]),
    ("playbooks", &["export_key", "name"]),
    ("scripts", &["export_key", "name"]),
    ("types", &["type_name", "export_key"]),
    ("workflows", &["programmatic_name", "export_key"]),
];

/// Export lists the simulator never fills, present (empty) because SOAR's export has them.
const EMPTY_LISTS: &[&str] = &[
    "action_order",
    "apps",
    "case_matching_profiles",
    "inbound_destinations",
    "overrides",
    "roles",
    "tags",
    "task_order",
    "workspaces",
];

/// Export keys SOAR answers with `null` in an org export.
const NULL_KEYS: &[&str] = &[
    "geos",
    "groups",
    "inbound_mailboxes",
    "industries",
    "notifications",
    "regulators",
    "timeframes",
];

/// The stored objects, per export list.
#[derive(Debug, Default)]
pub(crate) struct Configuration {
    lists: BTreeMap<&'static str, Vec<Value>>,
}

/// What `routes.rs` contributes to an export: the objects it holds itself.
pub(crate) struct HeldElsewhere {
    pub(crate) functions: Vec<Value>,
    pub(crate) message_destinations: Vec<Value>,
    pub(crate) function_fields: Vec<Value>,
}

impl Configuration {
    /// Merges the lists of an accepted import: an object whose uuid or API name is already
    /// stored replaces it and keeps its id; any other is added with a new id from `next_id`.
    pub(crate) fn apply_import(&mut self, definition: &Value, next_id: &mut dyn FnMut() -> u64) {
        for (kind, names) in KINDS {
            let Some(objects) = definition.get(*kind).and_then(Value::as_array) else {
                continue;
            };
            for object in objects {
                // Function inputs are served by routes.rs under /types/__function/fields.
                if *kind == "fields" && is_function_input(object) {
                    continue;
                }
                self.merge(kind, names, object.clone(), next_id);
            }
        }
    }

    /// The org export: every list SOAR's export has, in SOAR's shape. Playbooks are in it
    /// only when asked for, as SOAR leaves them out otherwise.
    pub(crate) fn export(
        &self,
        id: u64,
        with_playbooks: bool,
        held: HeldElsewhere,
        server_version: Value,
    ) -> Value {
        let mut export = serde_json::Map::new();
        for (kind, _) in KINDS {
            let objects = match *kind {
                "playbooks" if !with_playbooks => Vec::new(),
                _ => self.lists.get(kind).cloned().unwrap_or_default(),
            };
            export.insert((*kind).to_string(), Value::Array(objects));
        }
        for key in EMPTY_LISTS {
            export.insert((*key).to_string(), json!([]));
        }
        for key in NULL_KEYS {
            export.insert((*key).to_string(), Value::Null);
        }
        let mut fields = held.function_fields;
        fields.extend(self.lists.get("fields").cloned().unwrap_or_default());
        export.insert("fields".into(), Value::Array(fields));
        export.insert("functions".into(), Value::Array(held.functions));
        export.insert(
            "message_destinations".into(),
            Value::Array(held.message_destinations),
        );
        export.insert("id".into(), json!(id));
        export.insert("export_date".into(), json!(EXPORT_DATE));
        export.insert("export_format_version".into(), json!(2));
        export.insert("export_type".into(), json!("ORG"));
        export.insert("locale".into(), json!("en"));
        export.insert("server_version".into(), server_version);
        Value::Object(export)
    }

    fn merge(
        &mut self,
        kind: &'static str,
        names: &[&str],
        mut object: Value,
        next_id: &mut dyn FnMut() -> u64,
    ) {
        let list = self.lists.entry(kind).or_default();
        let uuid = object
            .get("uuid")
            .and_then(Value::as_str)
            .map(str::to_string);
        let api_name = api_name_of(&object, names);
        let existing = uuid
            .as_deref()
            .and_then(|uuid| {
                list.iter()
                    .position(|stored| stored.get("uuid").and_then(Value::as_str) == Some(uuid))
            })
            .or_else(|| {
                api_name.as_deref().and_then(|name| {
                    list.iter()
                        .position(|stored| api_name_of(stored, names).as_deref() == Some(name))
                })
            });
        let id = match existing {
            Some(index) => list[index]
                .get(id_key(kind))
                .cloned()
                .filter(|id| !id.is_null()),
            None => None,
        }
        .unwrap_or_else(|| json!(next_id()));
        object[id_key(kind)] = id;
        match existing {
            Some(index) => list[index] = object,
            None => list.push(object),
        }
    }
}

/// The date every simulated export carries, so that answers are the same from run to run.
const EXPORT_DATE: u64 = 1_735_689_600_000;

fn is_function_input(field: &Value) -> bool {
    field
        .get("export_key")
        .and_then(Value::as_str)
        .is_some_and(|key| key.starts_with("__function/"))
}

/// Workflows carry their id as `workflow_id`; everything else as `id`.
fn id_key(kind: &str) -> &'static str {
    match kind {
        "workflows" => "workflow_id",
        _ => "id",
    }
}

fn api_name_of(object: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|key| object.get(*key).and_then(Value::as_str))
        .map(str::to_string)
}
