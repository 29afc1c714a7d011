//! `soar-runner clone`: copies workflows, playbooks, functions, rules, message destinations
//! and scripts inside SOAR under new names, as `resilient-sdk clone` does: it exports the
//! org's customizations, gives each copy a new name, uuid and API name, and imports the
//! copies back through the configuration import endpoints, as `customize` does.
//!
//! Beyond the SDK, copies made in one run point at each other: a copied rule launches the
//! copied workflow, a copied function sends to the copied destination, and a copied workflow
//! or playbook calls the copied function or script.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};
use soar_core::config::AppConfig;

use crate::customize::OrgRest;
use crate::settings::ResilientSettings;
use crate::soar_rest::SoarClient;

/// The command line, as resilient-sdk's `clone` takes it: each type flag takes the
/// original's name and the new name, or with `--prefix` any number of originals.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  soar-runner clone --workflow example_misp_search_attribute misp_search_attack\n  soar-runner clone --function misp_search_attribute misp_search_attribute_v2\n  soar-runner clone --rule \"Example: MISP Search Attribute\" \"MISP Search Attack\"\n  soar-runner clone --prefix v2 --workflow example_misp_create_event example_misp_create_tag_on_event"
)]
pub struct CloneArgs {
    /// Workflows, by API (programmatic) name.
    #[arg(short = 'w', long = "workflow", num_args = 1.., value_name = "NAME")]
    pub workflow: Vec<String>,
    /// Playbooks, by API name.
    #[arg(long = "playbook", visible_alias = "pb", num_args = 1.., value_name = "NAME")]
    pub playbook: Vec<String>,
    /// Functions, by API name.
    #[arg(short = 'f', long = "function", num_args = 1.., value_name = "NAME")]
    pub function: Vec<String>,
    /// Rules, by display name (quote names with spaces).
    #[arg(short = 'r', long = "rule", num_args = 1.., value_name = "NAME")]
    pub rule: Vec<String>,
    /// Message destinations, by API (programmatic) name.
    #[arg(
        short = 'm',
        long = "messagedestination",
        visible_alias = "message_destination",
        alias = "message-destination",
        num_args = 1..,
        value_name = "NAME"
    )]
    pub message_destination: Vec<String>,
    /// Scripts, by name.
    #[arg(short = 's', long = "script", num_args = 1.., value_name = "NAME")]
    pub script: Vec<String>,
    /// Copy every named object as PREFIX_<name>; the type flags then take originals only.
    #[arg(long = "prefix", visible_alias = "pre", value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// The object type of the copied workflows, rules, scripts and playbooks (incident, task,
    /// artifact, ...).
    #[arg(long = "changetype", visible_alias = "type", value_name = "TYPE")]
    pub changetype: Option<String>,
    /// Copy playbooks as drafts, so that their activation type can be changed.
    #[arg(long = "draft-playbook", alias = "draft")]
    pub draft_playbook: bool,
}

/// The kinds of object `clone` copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Workflow,
    Playbook,
    Function,
    Rule,
    MessageDestination,
    Script,
}

/// One object to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneOf {
    pub kind: Kind,
    pub original: String,
    pub new_name: String,
}

/// What to copy and how, checked: every type flag had a usable number of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneRequest {
    pub copies: Vec<CloneOf>,
    pub changetype: Option<String>,
    pub draft_playbook: bool,
}

/// The import `clone` sends, and what it must do once SOAR accepted it.
#[derive(Debug, Clone)]
pub struct ClonePlan {
    /// The configuration import: the copies, plus the internal incident type and field
    /// every import needs.
    pub import: Value,
    /// Each copied message destination's new name, with the original's readers (API keys
    /// and users), which SOAR ignores in an import and `clone` adds afterwards.
    pub destination_readers: Vec<(String, Vec<Value>, Vec<Value>)>,
}

/// Why a clone cannot be made; each names the object and what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CloneError {
    #[error(
        "nothing to clone: name objects with --workflow, --playbook, --function, --rule, --messagedestination or --script"
    )]
    NothingToClone,
    #[error(
        "--{flag} takes the original's name and the new name (2 names), got {count}; use --prefix to clone several"
    )]
    WrongNameCount { flag: &'static str, count: usize },
    #[error("--prefix needs a non-empty prefix")]
    EmptyPrefix,
    #[error("the new name of a {kind} cannot be empty")]
    EmptyNewName { kind: &'static str },
    #[error("{kind} '{name}' is not in SOAR; its {kind}s: {available}")]
    Missing {
        kind: &'static str,
        name: String,
        available: String,
    },
    #[error("a {kind} named '{name}' already exists in SOAR; choose another name")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("'{name}' is given as the new name of two {kind}s")]
    SameNewNameTwice { kind: &'static str, name: String },
    #[error("SOAR's export has no '{0}' list, so it cannot be read as an export")]
    NotAnExport(&'static str),
    #[error("playbooks can be cloned only from SOAR 44.0 on; this SOAR is version {version}")]
    PlaybooksUnsupported { version: String },
}

/// The `clone` command: connects to SOAR, exports, copies, imports.
pub async fn run(config_file: Option<&Path>, args: &CloneArgs) -> Result<ExitCode> {
    let request = CloneRequest::from_args(args)?;
    let config = AppConfig::load(config_file)?;
    crate::config_loaded(&config);
    let settings = ResilientSettings::from_app_config(&config)?;
    let client = SoarClient::connect(&settings)
        .await
        .context("cannot connect to SOAR")?;
    let mut stdout = std::io::stdout();
    clone_in_soar(
        &client,
        client.server_version.as_deref(),
        &request,
        &mut stdout,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Exports the org, plans the copies, imports them and gives copied message destinations
/// the original's readers. Nothing is imported when any copy cannot be made.
pub async fn clone_in_soar(
    rest: &dyn OrgRest,
    server_version: Option<&str>,
    request: &CloneRequest,
    out: &mut dyn Write,
) -> Result<()> {
    let playbooks_supported = server_version.is_none_or(supports_playbooks);
    if !playbooks_supported && request.copies.iter().any(|c| c.kind == Kind::Playbook) {
        return Err(CloneError::PlaybooksUnsupported {
            version: server_version.unwrap_or("unknown").to_string(),
        }
        .into());
    }
    let asked = json!({
        "layouts": true,
        "actions": true,
        "phases_and_tasks": true,
        "playbooks": playbooks_supported,
    });
    let export = rest
        .org_call(Method::POST, "/configurations/exports", Some(asked))
        .await
        .context("SOAR did not export the org's customizations")?;
    let plan = plan(&export, request)?;
    if request.draft_playbook {
        writeln!(
            out,
            "note: playbooks copied as drafts; check that each behaves as expected before enabling it"
        )?;
    }

    let mut import = rest
        .org_call(
            Method::POST,
            "/configurations/imports",
            Some(plan.import.clone()),
        )
        .await
        .context("SOAR refused the import of the copies")?;
    let messages = crate::customize::import_messages(&import);
    for message in &messages {
        writeln!(out, "{message}")?;
    }
    let status = import.get("status").and_then(Value::as_str).unwrap_or("");
    let import_id = import.get("id").and_then(Value::as_i64);
    let Some(import_id) = import_id.filter(|_| status == "PENDING") else {
        bail!(
            "SOAR refused the import of the copies: status '{status}'{}",
            match messages.is_empty() {
                true => String::new(),
                false => format!(": {}", messages.join("; ")),
            }
        );
    };
    import["status"] = json!("ACCEPTED");
    rest.org_call(
        Method::PUT,
        &format!("/configurations/imports/{import_id}"),
        Some(import),
    )
    .await
    .context("SOAR did not confirm the import of the copies")?;
    for copy in &request.copies {
        writeln!(
            out,
            "cloned {} '{}' as '{}'",
            copy.kind.label(),
            copy.original,
            copy.new_name
        )?;
    }
    add_destination_readers(rest, &plan.destination_readers)
        .await
        .context("the copies were imported, but the copied message destinations kept no readers")?;
    Ok(())
}

/// Builds the import that creates the copies, from an org export. Fails, naming the
/// object, when an original is missing or a new name is taken.
pub fn plan(export: &Value, request: &CloneRequest) -> Result<ClonePlan, CloneError> {
    if request.copies.is_empty() {
        return Err(CloneError::NothingToClone);
    }
    let mut taken: BTreeSet<(Kind, &str)> = BTreeSet::new();
    for copy in &request.copies {
        if !taken.insert((copy.kind, copy.new_name.as_str())) {
            return Err(CloneError::SameNewNameTwice {
                kind: copy.kind.label(),
                name: copy.new_name.clone(),
            });
        }
    }

    // Find every original and check every new name before changing anything.
    let mut originals = Vec::new();
    for copy in &request.copies {
        let kind = copy.kind;
        let list = export
            .get(kind.list())
            .and_then(Value::as_array)
            .ok_or(CloneError::NotAnExport(kind.list()))?;
        let named = |name: &str| {
            list.iter()
                .find(|object| kind.api_name(object).map(str::trim) == Some(name.trim()))
        };
        if named(&copy.new_name).is_some() {
            return Err(CloneError::AlreadyExists {
                kind: kind.label(),
                name: copy.new_name.clone(),
            });
        }
        let Some(original) = named(&copy.original) else {
            let available: Vec<&str> = list.iter().filter_map(|o| kind.api_name(o)).collect();
            return Err(CloneError::Missing {
                kind: kind.label(),
                name: copy.original.clone(),
                available: match available.is_empty() {
                    true => "none".to_string(),
                    false => available.join(", "),
                },
            });
        };
        originals.push((copy, original.clone()));
    }

    // The names and uuids each copy replaces, so that copies can point at each other.
    let renames = Renames::new(&originals);
    let mut import = minified(export);
    let mut destination_readers = Vec::new();
    for (copy, original) in originals {
        let copied = match copy.kind {
            Kind::Workflow => copy_workflow(original, copy, request, &renames),
            Kind::Playbook => copy_playbook(original, copy, request, &renames),
            Kind::Function => copy_function(original, copy, &renames),
            Kind::Rule => copy_rule(original, copy, request, &renames),
            Kind::MessageDestination => {
                let readers = |key: &str| {
                    original
                        .get(key)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                };
                destination_readers.push((
                    copy.new_name.clone(),
                    readers("api_keys"),
                    readers("users"),
                ));
                copy_destination(original, copy)
            }
            Kind::Script => copy_script(original, copy, request),
        };
        let copied = copied_with_uuid(copied, &renames, copy);
        if let Some(list) = import
            .get_mut(copy.kind.list())
            .and_then(Value::as_array_mut)
        {
            list.push(copied);
        }
    }
    strip_personal_data_and_tags(&mut import);
    Ok(ClonePlan {
        import,
        destination_readers,
    })
}

impl CloneRequest {
    /// Pairs each type flag's names, or prefixes them; refuses a flag with the wrong count.
    pub fn from_args(args: &CloneArgs) -> Result<CloneRequest, CloneError> {
        let flags: [(Kind, &Vec<String>); 6] = [
            (Kind::Workflow, &args.workflow),
            (Kind::Playbook, &args.playbook),
            (Kind::Function, &args.function),
            (Kind::Rule, &args.rule),
            (Kind::MessageDestination, &args.message_destination),
            (Kind::Script, &args.script),
        ];
        let mut copies = Vec::new();
        for (kind, names) in flags {
            if names.is_empty() {
                continue;
            }
            match &args.prefix {
                Some(prefix) if prefix.trim().is_empty() => return Err(CloneError::EmptyPrefix),
                Some(prefix) => copies.extend(names.iter().map(|original| CloneOf {
                    kind,
                    original: original.clone(),
                    new_name: format!("{prefix}_{original}"),
                })),
                None => match names.as_slice() {
                    [original, new_name] => {
                        if new_name.trim().is_empty() {
                            return Err(CloneError::EmptyNewName { kind: kind.label() });
                        }
                        copies.push(CloneOf {
                            kind,
                            original: original.clone(),
                            new_name: new_name.clone(),
                        });
                    }
                    _ => {
                        return Err(CloneError::WrongNameCount {
                            flag: kind.flag(),
                            count: names.len(),
                        });
                    }
                },
            }
        }
        if copies.is_empty() {
            return Err(CloneError::NothingToClone);
        }
        Ok(CloneRequest {
            copies,
            changetype: args.changetype.clone(),
            draft_playbook: args.draft_playbook,
        })
    }
}

impl Kind {
    /// The list of the export the objects are in.
    pub fn list(self) -> &'static str {
        match self {
            Kind::Workflow => "workflows",
            Kind::Playbook => "playbooks",
            Kind::Function => "functions",
            Kind::Rule => "actions",
            Kind::MessageDestination => "message_destinations",
            Kind::Script => "scripts",
        }
    }

    /// The name the command line identifies an object by (resilient-sdk's `ResilientObjMap`).
    pub fn api_name(self, object: &Value) -> Option<&str> {
        let key = match self {
            Kind::Workflow | Kind::MessageDestination => "programmatic_name",
            Kind::Rule => "name",
            Kind::Playbook | Kind::Function | Kind::Script => "export_key",
        };
        object.get(key).and_then(Value::as_str)
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Workflow => "workflow",
            Kind::Playbook => "playbook",
            Kind::Function => "function",
            Kind::Rule => "rule",
            Kind::MessageDestination => "message destination",
            Kind::Script => "script",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Kind::MessageDestination => "messagedestination",
            other => other.label(),
        }
    }
}

/// The uuid of the internal incident type every import carries (resilient-sdk's
/// `DEFAULT_INCIDENT_TYPE_UUID`).
const INTERNAL_INCIDENT_TYPE_UUID: &str = "bfeec2d4-3770-11e8-ad39-4a0004044aa0";
/// The uuid of the internal incident field every import carries.
const INTERNAL_FIELD_UUID: &str = "bfeec2d4-3770-11e8-ad39-4a0004044aa1";

/// Old name → new name and old uuid → new uuid of everything copied in one run.
struct Renames {
    names: BTreeMap<(Kind, String), String>,
    uuids: BTreeMap<String, String>,
    /// The new uuid of each copy, by (kind, new name).
    new_uuids: BTreeMap<(Kind, String), String>,
}

impl Renames {
    fn new(originals: &[(&CloneOf, Value)]) -> Renames {
        let mut renames = Renames {
            names: BTreeMap::new(),
            uuids: BTreeMap::new(),
            new_uuids: BTreeMap::new(),
        };
        for (copy, original) in originals {
            let new_uuid = uuid::Uuid::new_v4().to_string();
            if let Some(old_uuid) = original.get("uuid").and_then(Value::as_str) {
                renames.uuids.insert(old_uuid.to_string(), new_uuid.clone());
            }
            if let Some(name) = copy.kind.api_name(original) {
                renames
                    .names
                    .insert((copy.kind, name.to_string()), copy.new_name.clone());
            }
            renames
                .new_uuids
                .insert((copy.kind, copy.new_name.clone()), new_uuid);
        }
        renames
    }

    fn name(&self, kind: Kind, old: &str) -> Option<&str> {
        self.names.get(&(kind, old.to_string())).map(String::as_str)
    }

    /// Points a BPMN document's `uuid="…"` references at the copies made in this run.
    fn rewrite_uuids(&self, xml: &str) -> String {
        let mut xml = xml.to_string();
        for (old, new) in &self.uuids {
            xml = xml.replace(&format!("uuid=\"{old}\""), &format!("uuid=\"{new}\""));
        }
        xml
    }
}

/// The uuid, API name and name every copy gets (resilient-sdk's common attributes).
fn renamed(mut object: Value, copy: &CloneOf) -> Value {
    object["export_key"] = json!(copy.new_name);
    object["name"] = json!(copy.new_name);
    object
}

/// Sets the copy's uuid, the one `Renames` chose so that references to it agree.
fn copied_with_uuid(mut object: Value, renames: &Renames, copy: &CloneOf) -> Value {
    if let Some(uuid) = renames.new_uuids.get(&(copy.kind, copy.new_name.clone())) {
        object["uuid"] = json!(uuid);
    }
    object
}

fn copy_workflow(
    original: Value,
    copy: &CloneOf,
    request: &CloneRequest,
    renames: &Renames,
) -> Value {
    let old_name = original
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let xml = original
        .pointer("/content/xml")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // The process element names the workflow by its API name (id) and its name.
    let xml = xml.replace(
        &format!("id=\"{}\"", xml_attribute(&copy.original)),
        &format!("id=\"{}\"", xml_attribute(&copy.new_name)),
    );
    let xml = match old_name.is_empty() {
        true => xml,
        false => xml.replace(
            &format!("name=\"{}\"", xml_attribute(&old_name)),
            &format!("name=\"{}\"", xml_attribute(&copy.new_name)),
        ),
    };
    let xml = renames.rewrite_uuids(&xml);
    let mut workflow = renamed(original, copy);
    workflow["programmatic_name"] = json!(copy.new_name);
    let mut content = workflow
        .get("content")
        .cloned()
        .unwrap_or_else(|| json!({}));
    content["xml"] = json!(xml);
    content["workflow_id"] = json!(copy.new_name);
    workflow["content"] = content;
    if let Some(object_type) = &request.changetype {
        workflow["object_type"] = json!(object_type);
    }
    workflow
}

fn copy_function(original: Value, copy: &CloneOf, renames: &Renames) -> Value {
    let mut function = renamed(original, copy);
    function["display_name"] = json!(copy.new_name);
    if let Some(new) = function
        .get("destination_handle")
        .and_then(Value::as_str)
        .and_then(|old| renames.name(Kind::MessageDestination, old))
    {
        function["destination_handle"] = json!(new);
    }
    // The workflows listed as using a function: only copied workflows call the copy.
    let workflows: Vec<Value> = function
        .get("workflows")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|workflow| {
            let old = workflow.get("programmatic_name").and_then(Value::as_str)?;
            let new = renames.name(Kind::Workflow, old)?;
            let mut workflow = workflow.clone();
            workflow["programmatic_name"] = json!(new);
            workflow["name"] = json!(new);
            Some(workflow)
        })
        .collect();
    if function.get("workflows").is_some() {
        function["workflows"] = Value::Array(workflows);
    }
    function
}

fn copy_rule(original: Value, copy: &CloneOf, request: &CloneRequest, renames: &Renames) -> Value {
    let mut rule = renamed(original, copy);
    for (key, kind) in [
        ("workflows", Kind::Workflow),
        ("message_destinations", Kind::MessageDestination),
    ] {
        if let Some(names) = rule.get_mut(key).and_then(Value::as_array_mut) {
            for name in names.iter_mut() {
                if let Some(new) = name.as_str().and_then(|old| renames.name(kind, old)) {
                    *name = json!(new);
                }
            }
        }
    }
    if let Some(object_type) = &request.changetype {
        rule["object_type"] = json!(object_type);
    }
    rule
}

fn copy_destination(original: Value, copy: &CloneOf) -> Value {
    let mut destination = renamed(original, copy);
    destination["programmatic_name"] = json!(copy.new_name);
    destination
}

fn copy_script(original: Value, copy: &CloneOf, request: &CloneRequest) -> Value {
    let mut script = renamed(original, copy);
    if let Some(object_type) = &request.changetype {
        script["object_type"] = json!(object_type);
    }
    script
}

/// A playbook copy: its own uuid and the type handle, activation fields, local scripts and
/// tag derived from it, disabled (or a draft) at version 0, as resilient-sdk makes it.
fn copy_playbook(
    original: Value,
    copy: &CloneOf,
    request: &CloneRequest,
    renames: &Renames,
) -> Value {
    let new_name = copy.new_name.as_str();
    let playbook_uuid = renames
        .new_uuids
        .get(&(Kind::Playbook, copy.new_name.clone()))
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let type_handle = format!("playbook_{}", playbook_uuid.replace('-', "_"));
    let mut playbook = original;
    let mut xml = playbook
        .pointer("/content/xml")
        .and_then(Value::as_str)
        .map(|xml| renames.rewrite_uuids(xml))
        .unwrap_or_default();

    if let Some(scripts) = playbook
        .get_mut("local_scripts")
        .and_then(Value::as_array_mut)
    {
        for script in scripts.iter_mut() {
            let script_uuid = uuid::Uuid::new_v4().to_string();
            if let Some(old) = script.get("uuid").and_then(Value::as_str) {
                xml = xml.replace(
                    &format!("uuid=\"{old}\""),
                    &format!("uuid=\"{script_uuid}\""),
                );
            }
            let programmatic = script
                .get("programmatic_name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            script["programmatic_name"] = json!(format!("{new_name}_{programmatic}"));
            script["playbook_handle"] = json!(new_name);
            script["uuid"] = json!(script_uuid);
            if let Some(object_type) = &request.changetype {
                script["object_type"] = json!(object_type);
            }
            remove_key(script, "id");
        }
    }

    let mut field_uuids = BTreeMap::new();
    if let Some(fields_type) = playbook.get_mut("fields_type").filter(|t| t.is_object()) {
        fields_type["display_name"] = json!(new_name);
        fields_type["type_name"] = json!(type_handle);
        fields_type["export_key"] = json!(type_handle);
        fields_type["uuid"] = json!(uuid::Uuid::new_v4().to_string());
        if let Some(fields) = fields_type.get_mut("fields").and_then(Value::as_object_mut) {
            for (field_name, field) in fields.iter_mut() {
                let field_uuid = uuid::Uuid::new_v4().to_string();
                if let Some(old) = field.get("uuid").and_then(Value::as_str) {
                    field_uuids.insert(old.to_string(), field_uuid.clone());
                }
                field["export_key"] = json!(format!("{type_handle}/{field_name}"));
                field["uuid"] = json!(field_uuid);
                remove_key(field, "id");
            }
        }
    }
    // The activation form's items name the activation fields by uuid.
    for settings in ["manual_settings", "subplaybook_settings"] {
        let items = playbook
            .get_mut(settings)
            .and_then(|settings| settings.get_mut("view_items"))
            .and_then(Value::as_array_mut);
        for item in items.into_iter().flatten() {
            let new_uuid = item
                .get("content")
                .and_then(Value::as_str)
                .and_then(|old| field_uuids.get(old))
                .cloned();
            if let Some(new_uuid) = new_uuid {
                item["content"] = json!(new_uuid);
                item["field_type"] = json!(type_handle);
            }
        }
    }
    if let Some(tag) = playbook.get_mut("tag").filter(|tag| tag.is_object()) {
        let tag_name = format!("playbook_{playbook_uuid}");
        tag["name"] = json!(tag_name);
        tag["display_name"] = json!(tag_name);
        tag["uuid"] = json!(uuid::Uuid::new_v4().to_string());
    }

    playbook["export_key"] = json!(new_name);
    playbook["name"] = json!(new_name);
    playbook["display_name"] = json!(new_name);
    playbook["field_type_handle"] = json!(type_handle);
    playbook["status"] = json!("disabled");
    playbook["version"] = json!(0);
    playbook["content"] = json!({"content_version": 0, "xml": xml});
    if let Some(object_type) = &request.changetype {
        playbook["object_type"] = json!(object_type);
    }
    if request.draft_playbook {
        playbook["activation_type"] = Value::Null;
        playbook["activation_details"] = json!({});
        playbook["status"] = json!("draft");
    }
    remove_key(&mut playbook, "id");
    playbook
}

/// The export reduced to what an import of copies carries: its identity and server
/// version, empty lists for the copies to go in, and the internal incident type and field
/// every import needs (resilient-sdk's `minify_export`).
fn minified(export: &Value) -> Value {
    const KEPT: [&str; 4] = [
        "export_date",
        "export_format_version",
        "id",
        "server_version",
    ];
    let mut import = serde_json::Map::new();
    for (key, value) in export.as_object().into_iter().flatten() {
        let reduced = match value {
            _ if KEPT.contains(&key.as_str()) => value.clone(),
            _ if key == "overrides" => Value::Null,
            Value::Array(_) => json!([]),
            Value::Object(_) => json!({}),
            _ => Value::Null,
        };
        import.insert(key.clone(), reduced);
    }
    for kind in [
        Kind::Workflow,
        Kind::Playbook,
        Kind::Function,
        Kind::Rule,
        Kind::MessageDestination,
        Kind::Script,
    ] {
        import.insert(kind.list().to_string(), json!([]));
    }
    import.insert(
        "incident_types".into(),
        json!([{
            "create_date": 0,
            "update_date": 0,
            "uuid": INTERNAL_INCIDENT_TYPE_UUID,
            "description": "Customization Packages (internal)",
            "export_key": "Customization Packages (internal)",
            "name": "Customization Packages (internal)",
            "enabled": false,
            "system": false,
            "parent_id": null,
            "hidden": false,
            "id": 0,
        }]),
    );
    import.insert(
        "fields".into(),
        json!([{
            "export_key": "incident/internal_customizations_field",
            "id": 0,
            "input_type": "text",
            "internal": true,
            "name": "internal_customizations_field",
            "read_only": true,
            "text": "Customizations Field (internal)",
            "type_id": 0,
            "uuid": INTERNAL_FIELD_UUID,
        }]),
    );
    Value::Object(import)
}

/// Drops `creator` and `creator_id` (who made the original is not the copy's business) and
/// every `tags` list (tag ids are instance-specific), at any depth.
fn strip_personal_data_and_tags(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, child| {
                key != "creator" && key != "creator_id" && !(key == "tags" && child.is_array())
            });
            map.values_mut().for_each(strip_personal_data_and_tags);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_personal_data_and_tags),
        _ => {}
    }
}

fn remove_key(object: &mut Value, key: &str) {
    if let Some(map) = object.as_object_mut() {
        map.remove(key);
    }
}

/// A value as it appears inside a double-quoted XML attribute.
fn xml_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Playbooks came with SOAR 44.0; the version is `major.minor...`.
fn supports_playbooks(version: &str) -> bool {
    version
        .split('.')
        .next()
        .and_then(|major| major.trim().parse::<u32>().ok())
        .is_none_or(|major| major >= 44)
}

/// Gives each copied destination the API keys and users of its original: SOAR ignores
/// them in an import, and without them nothing may read the copy's queue.
async fn add_destination_readers(
    rest: &dyn OrgRest,
    readers: &[(String, Vec<Value>, Vec<Value>)],
) -> Result<()> {
    if readers.is_empty() {
        return Ok(());
    }
    let listing = rest
        .org_call(Method::GET, "/message_destinations", None)
        .await?;
    let entities = listing
        .get("entities")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (name, api_keys, users) in readers {
        let Some(id) = entities
            .iter()
            .find(|entity| entity.get("programmatic_name").and_then(Value::as_str) == Some(name))
            .and_then(|entity| entity.get("id").and_then(Value::as_i64))
        else {
            bail!("SOAR has no message destination '{name}' after the import");
        };
        let path = format!("/message_destinations/{id}");
        let mut destination = rest.org_call(Method::GET, &path, None).await?;
        for (key, wanted) in [("api_keys", api_keys), ("users", users)] {
            let mut members = destination
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for member in wanted {
                if !members.contains(member) {
                    members.push(member.clone());
                }
            }
            destination[key] = Value::Array(members);
        }
        rest.org_call(Method::PUT, &path, Some(destination)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use clap::Parser;

    use super::*;
    use crate::soar_rest::RestError;

    /// The generated fn_misp export, read as an org export: it has workflows, rules,
    /// functions, a destination and playbooks, like an org that ran `customize`.
    fn fn_misp_export() -> Value {
        let export = crate::customize::EXPORTS
            .iter()
            .find(|export| export.app == "fn_misp")
            .unwrap_or_else(|| panic!("the fn_misp export is not embedded"));
        serde_json::from_str(export.json).unwrap_or_else(|error| panic!("export.res: {error}"))
    }

    #[derive(Debug, Parser)]
    struct Line {
        #[command(flatten)]
        args: CloneArgs,
    }

    fn request(line: &[&str]) -> Result<CloneRequest, CloneError> {
        let mut argv = vec!["clone"];
        argv.extend_from_slice(line);
        let parsed = Line::try_parse_from(argv).unwrap_or_else(|error| panic!("{error}"));
        CloneRequest::from_args(&parsed.args)
    }

    fn planned(line: &[&str]) -> ClonePlan {
        let request = request(line).unwrap_or_else(|error| panic!("{error}"));
        plan(&fn_misp_export(), &request).unwrap_or_else(|error| panic!("{error}"))
    }

    fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
        list.as_array()
            .and_then(|all| all.iter().find(|o| o[key] == json!(name)))
            .unwrap_or_else(|| panic!("no {key} '{name}' in {list}"))
    }

    fn is_v4_uuid(value: &Value) -> bool {
        value
            .as_str()
            .and_then(|text| uuid::Uuid::parse_str(text).ok())
            .is_some_and(|uuid| uuid.get_version_num() == 4)
    }

    #[test]
    fn a_cloned_workflow_gets_a_new_name_uuid_and_process_id() {
        let export = fn_misp_export();
        let original = find(
            &export["workflows"],
            "programmatic_name",
            "example_misp_search_attribute",
        );
        let plan = planned(&[
            "--workflow",
            "example_misp_search_attribute",
            "misp_search_attack",
        ]);
        let workflows = plan.import["workflows"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(workflows.len(), 1, "only the copy is imported");
        let copy = &workflows[0];
        for key in ["programmatic_name", "export_key", "name"] {
            assert_eq!(copy[key], json!("misp_search_attack"), "{key}");
        }
        assert_eq!(copy["content"]["workflow_id"], json!("misp_search_attack"));
        assert!(is_v4_uuid(&copy["uuid"]), "a fresh uuid: {}", copy["uuid"]);
        assert_ne!(copy["uuid"], original["uuid"]);
        let xml = copy["content"]["xml"].as_str().unwrap_or_default();
        assert!(
            xml.contains(
                r#"<process id="misp_search_attack" isExecutable="true" name="misp_search_attack">"#
            ),
            "the process names the copy: {xml}"
        );
        assert!(!xml.contains("example_misp_search_attribute"), "{xml}");
        assert!(
            xml.contains(r#"uuid="c248bc7c-b60f-4d36-9a2e-294ee78a5981""#),
            "the function was not cloned, so the copy still calls the original"
        );
        assert_eq!(copy["object_type"], original["object_type"]);

        for list in [
            "functions",
            "actions",
            "playbooks",
            "message_destinations",
            "scripts",
        ] {
            assert_eq!(plan.import[list], json!([]), "{list} hold no copies");
        }
        assert_eq!(plan.import["server_version"], export["server_version"]);
        assert_eq!(plan.import["export_format_version"], json!(2));
        assert_eq!(
            plan.import["incident_types"][0]["uuid"],
            json!(INTERNAL_INCIDENT_TYPE_UUID)
        );
        assert_eq!(
            plan.import["fields"],
            json!([{
                "export_key": "incident/internal_customizations_field",
                "id": 0, "input_type": "text", "internal": true,
                "name": "internal_customizations_field", "read_only": true,
                "text": "Customizations Field (internal)", "type_id": 0,
                "uuid": INTERNAL_FIELD_UUID,
            }])
        );
        assert!(
            !plan.import.to_string().contains("\"tags\":["),
            "tag lists are dropped"
        );
        assert!(plan.destination_readers.is_empty());
    }

    #[test]
    fn copies_made_together_point_at_each_other() {
        let export = fn_misp_export();
        let original_function = find(&export["functions"], "name", "misp_search_attribute");
        let plan = planned(&[
            "--prefix",
            "v2",
            "--workflow",
            "example_misp_search_attribute",
            "--rule",
            "Example: MISP Search Attribute",
            "--function",
            "misp_search_attribute",
            "--message_destination",
            "fn_misp",
        ]);
        let import = &plan.import;
        let rule = find(
            &import["actions"],
            "name",
            "v2_Example: MISP Search Attribute",
        );
        assert_eq!(
            rule["export_key"],
            json!("v2_Example: MISP Search Attribute")
        );
        assert_eq!(
            rule["workflows"],
            json!(["v2_example_misp_search_attribute"]),
            "the copied rule launches the copied workflow"
        );
        assert!(is_v4_uuid(&rule["uuid"]));

        let function = find(&import["functions"], "name", "v2_misp_search_attribute");
        assert_eq!(function["display_name"], json!("v2_misp_search_attribute"));
        assert_eq!(function["export_key"], json!("v2_misp_search_attribute"));
        assert_eq!(function["destination_handle"], json!("v2_fn_misp"));
        assert_ne!(function["uuid"], original_function["uuid"]);
        assert_eq!(
            function["workflows"][0]["programmatic_name"],
            json!("v2_example_misp_search_attribute")
        );
        assert_eq!(
            function["view_items"], original_function["view_items"],
            "same inputs"
        );

        let workflow = find(
            &import["workflows"],
            "programmatic_name",
            "v2_example_misp_search_attribute",
        );
        let xml = workflow["content"]["xml"].as_str().unwrap_or_default();
        let new_function_uuid = function["uuid"].as_str().unwrap_or_default();
        assert!(
            xml.contains(&format!(
                r#"<resilient:function uuid="{new_function_uuid}">"#
            )),
            "the copied workflow calls the copied function: {xml}"
        );

        let destination = find(
            &import["message_destinations"],
            "programmatic_name",
            "v2_fn_misp",
        );
        assert_eq!(destination["name"], json!("v2_fn_misp"));
        assert_eq!(destination["export_key"], json!("v2_fn_misp"));
        assert_eq!(plan.destination_readers.len(), 1);
        assert_eq!(plan.destination_readers[0].0, "v2_fn_misp");
    }

    #[test]
    fn a_function_cloned_alone_keeps_its_destination_and_lists_no_workflow() {
        let plan = planned(&["-f", "misp_search_attribute", "misp_search_attribute_v2"]);
        let function = &plan.import["functions"][0];
        assert_eq!(function["name"], json!("misp_search_attribute_v2"));
        assert_eq!(function["destination_handle"], json!("fn_misp"));
        assert_eq!(
            function["workflows"],
            json!([]),
            "no workflow calls the copy yet"
        );
        assert!(function.get("creator").is_none());
    }

    #[test]
    fn a_cloned_playbook_gets_its_own_type_handle_scripts_and_tag() {
        let export = fn_misp_export();
        let original = find(&export["playbooks"], "export_key", "misp_search_attribute");
        let plan = planned(&[
            "--playbook",
            "misp_search_attribute",
            "misp_search_attribute_copy",
            "--changetype",
            "incident",
        ]);
        let copy = &plan.import["playbooks"][0];
        let uuid = copy["uuid"].as_str().unwrap_or_default().to_string();
        assert!(is_v4_uuid(&copy["uuid"]));
        assert_ne!(copy["uuid"], original["uuid"]);
        for key in ["export_key", "name", "display_name"] {
            assert_eq!(copy[key], json!("misp_search_attribute_copy"), "{key}");
        }
        let handle = format!("playbook_{}", uuid.replace('-', "_"));
        assert_eq!(copy["field_type_handle"], json!(handle));
        assert_eq!(copy["fields_type"]["type_name"], json!(handle));
        assert_eq!(copy["fields_type"]["export_key"], json!(handle));
        assert_eq!(
            copy["fields_type"]["display_name"],
            json!("misp_search_attribute_copy")
        );
        assert_ne!(copy["fields_type"]["uuid"], original["fields_type"]["uuid"]);
        assert_eq!(copy["status"], json!("disabled"));
        assert_eq!(copy["version"], json!(0));
        assert_eq!(copy["object_type"], json!("incident"));
        assert!(copy.get("id").is_none());
        assert_eq!(copy["tag"]["name"], json!(format!("playbook_{uuid}")));

        let script = &copy["local_scripts"][0];
        let old_script = &original["local_scripts"][0];
        assert_eq!(
            script["programmatic_name"],
            json!("misp_search_attribute_copy_misp_search_attribute_post_process")
        );
        assert_eq!(
            script["playbook_handle"],
            json!("misp_search_attribute_copy")
        );
        assert_eq!(script["object_type"], json!("incident"));
        assert!(script.get("id").is_none());
        let xml = copy["content"]["xml"].as_str().unwrap_or_default();
        let new_script = script["uuid"].as_str().unwrap_or_default();
        let old_script = old_script["uuid"].as_str().unwrap_or_default();
        assert!(xml.contains(&format!(r#"uuid="{new_script}""#)), "{xml}");
        assert!(!xml.contains(old_script), "the XML calls the copied script");
        assert_eq!(copy["content"]["content_version"], json!(0));

        let draft = planned(&[
            "--playbook",
            "misp_search_attribute",
            "misp_search_attribute_draft",
            "--draft-playbook",
        ]);
        let draft = &draft.import["playbooks"][0];
        assert_eq!(draft["status"], json!("draft"));
        assert_eq!(draft["activation_type"], Value::Null);
        assert_eq!(draft["activation_details"], json!({}));
        assert_eq!(
            draft["object_type"], original["object_type"],
            "no --changetype"
        );
    }

    #[test]
    fn changetype_changes_a_copied_workflow_and_rule() {
        let plan = planned(&[
            "-w",
            "example_misp_search_attribute",
            "misp_search_on_incident",
            "-r",
            "Example: MISP Search Attribute",
            "MISP search on incident",
            "--changetype",
            "incident",
        ]);
        assert_eq!(
            plan.import["workflows"][0]["object_type"],
            json!("incident")
        );
        assert_eq!(plan.import["actions"][0]["object_type"], json!("incident"));
        assert_eq!(
            plan.import["actions"][0]["workflows"],
            json!(["misp_search_on_incident"])
        );
    }

    #[test]
    fn clone_refuses_a_missing_original_a_taken_name_and_bad_counts() {
        let export = fn_misp_export();
        let refused = |line: &[&str]| match request(line) {
            Ok(request) => plan(&export, &request).err(),
            Err(error) => Some(error),
        };

        let missing = refused(&["--workflow", "no_such_workflow", "new_one"]);
        let Some(CloneError::Missing {
            kind,
            name,
            available,
        }) = &missing
        else {
            panic!("expected a missing workflow, got {missing:?}");
        };
        assert_eq!((*kind, name.as_str()), ("workflow", "no_such_workflow"));
        assert!(
            available.contains("example_misp_search_attribute"),
            "{available}"
        );
        let message = missing.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("workflow 'no_such_workflow' is not in SOAR"),
            "{message}"
        );

        assert_eq!(
            refused(&[
                "--workflow",
                "example_misp_search_attribute",
                "example_misp_create_event"
            ]),
            Some(CloneError::AlreadyExists {
                kind: "workflow",
                name: "example_misp_create_event".into()
            })
        );
        assert_eq!(
            refused(&["--function", "misp_create_event", "misp_search_attribute"]),
            Some(CloneError::AlreadyExists {
                kind: "function",
                name: "misp_search_attribute".into()
            })
        );
        assert_eq!(
            refused(&["--prefix", "example", "--workflow", "misp_create_event"]),
            Some(CloneError::AlreadyExists {
                kind: "workflow",
                name: "example_misp_create_event".into()
            }),
            "the prefixed name is taken"
        );
        assert!(
            matches!(
                refused(&["--prefix", "v2", "--function", "misp_nothing"]),
                Some(CloneError::Missing { kind: "function", ref name, .. }) if name == "misp_nothing"
            ),
            "a missing original with --prefix"
        );
        assert_eq!(
            refused(&["--workflow", "example_misp_search_attribute"]),
            Some(CloneError::WrongNameCount {
                flag: "workflow",
                count: 1
            })
        );
        assert_eq!(
            refused(&["-m", "a", "b", "c"]),
            Some(CloneError::WrongNameCount {
                flag: "messagedestination",
                count: 3
            })
        );
        assert_eq!(refused(&[]), Some(CloneError::NothingToClone));
        assert_eq!(
            refused(&["--prefix", "v2"]),
            Some(CloneError::NothingToClone)
        );
        assert_eq!(
            refused(&["--prefix", " ", "-w", "example_misp_search_attribute"]),
            Some(CloneError::EmptyPrefix)
        );
        assert_eq!(
            refused(&[
                "-w",
                "example_misp_search_attribute",
                "x",
                "-r",
                "Example: MISP Search Attribute",
                "x",
            ]),
            None,
            "a rule and a workflow may share a new name"
        );
    }

    #[test]
    fn the_message_destination_flag_has_the_sdk_and_underscore_spellings() {
        for flag in [
            "--messagedestination",
            "--message_destination",
            "--message-destination",
            "-m",
        ] {
            let request =
                request(&[flag, "fn_misp", "fn_misp_2"]).unwrap_or_else(|e| panic!("{flag}: {e}"));
            assert_eq!(request.copies[0].kind, Kind::MessageDestination, "{flag}");
        }
    }

    #[test]
    fn playbooks_need_soar_44() {
        assert!(supports_playbooks("51.0.9.0"));
        assert!(supports_playbooks("44.0"));
        assert!(!supports_playbooks("43.1.49"));
    }

    /// A SOAR holding one org export: answers the export, import and destination calls
    /// `clone` makes, records them, and fails loudly on any other.
    struct FakeSoar {
        export: Value,
        import_status: &'static str,
        destination: Mutex<Value>,
        calls: Mutex<Vec<(Method, String, Option<Value>)>>,
    }

    impl FakeSoar {
        fn new(import_status: &'static str) -> FakeSoar {
            FakeSoar {
                export: fn_misp_export(),
                import_status,
                destination: Mutex::new(json!({
                    "id": 42, "programmatic_name": "v2_fn_misp", "api_keys": [], "users": [3]
                })),
                calls: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<(Method, String, Option<Value>)> {
            self.calls.lock().map(|c| c.clone()).unwrap_or_default()
        }

        fn lines(&self) -> Vec<String> {
            self.calls()
                .into_iter()
                .map(|(method, path, _)| format!("{method} {path}"))
                .collect()
        }
    }

    #[async_trait::async_trait]
    impl OrgRest for FakeSoar {
        async fn org_call(
            &self,
            method: Method,
            path: &str,
            body: Option<Value>,
        ) -> Result<Value, RestError> {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push((method.clone(), path.to_string(), body.clone()));
            }
            let destination = || {
                self.destination
                    .lock()
                    .map(|d| d.clone())
                    .unwrap_or_default()
            };
            Ok(match (method.as_str(), path) {
                ("POST", "/configurations/exports") => self.export.clone(),
                ("POST", "/configurations/imports") => json!({
                    "id": 9, "status": self.import_status,
                    "messages": [{"type": "ERROR", "text": "the field misp_x conflicts"}],
                }),
                ("PUT", "/configurations/imports/9") => body.unwrap_or_default(),
                ("GET", "/message_destinations") => json!({"entities": [destination()]}),
                ("GET", "/message_destinations/42") => destination(),
                ("PUT", "/message_destinations/42") => {
                    if let (Ok(mut stored), Some(body)) = (self.destination.lock(), body) {
                        *stored = body;
                    }
                    destination()
                }
                _ => panic!("unexpected SOAR call {method} {path}"),
            })
        }

        fn api_key_handle(&self) -> Option<i64> {
            Some(7)
        }

        fn user_id(&self) -> Option<i64> {
            None
        }
    }

    #[tokio::test]
    async fn clone_exports_imports_accepts_and_gives_the_copied_destination_its_readers() {
        let mut soar = FakeSoar::new("PENDING");
        soar.export["message_destinations"][0]["api_keys"] = json!([7]);
        soar.export["message_destinations"][0]["users"] = json!([3, 5]);
        let request =
            request(&["--prefix", "v2", "-m", "fn_misp"]).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        clone_in_soar(&soar, Some("51.0.9.0"), &request, &mut out)
            .await
            .unwrap_or_else(|error| panic!("{error:#}"));
        assert_eq!(
            soar.lines(),
            [
                "POST /configurations/exports",
                "POST /configurations/imports",
                "PUT /configurations/imports/9",
                "GET /message_destinations",
                "GET /message_destinations/42",
                "PUT /message_destinations/42",
            ]
        );
        let calls = soar.calls();
        assert_eq!(
            calls[0].2,
            Some(
                json!({"layouts": true, "actions": true, "phases_and_tasks": true, "playbooks": true})
            )
        );
        assert_eq!(
            calls[2].2.as_ref().map(|b| b["status"].clone()),
            Some(json!("ACCEPTED"))
        );
        let granted = calls[5].2.clone().unwrap_or_default();
        assert_eq!(granted["api_keys"], json!([7]));
        assert_eq!(granted["users"], json!([3, 5]), "kept 3, added 5");
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.contains("cloned message destination 'fn_misp' as 'v2_fn_misp'"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn nothing_is_imported_when_a_copy_cannot_be_made_or_soar_refuses() {
        let soar = FakeSoar::new("PENDING");
        let taken = request(&[
            "-w",
            "example_misp_search_attribute",
            "example_misp_create_event",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let error = clone_in_soar(&soar, Some("51.0.9.0"), &taken, &mut Vec::new())
            .await
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            error.contains("a workflow named 'example_misp_create_event' already exists"),
            "{error}"
        );
        assert_eq!(soar.lines(), ["POST /configurations/exports"], "no import");

        let old = FakeSoar::new("PENDING");
        let playbook = request(&["--playbook", "misp_search_attribute", "copy"])
            .unwrap_or_else(|e| panic!("{e}"));
        let error = clone_in_soar(&old, Some("43.1.49"), &playbook, &mut Vec::new())
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("from SOAR 44.0 on"), "{error}");
        assert!(old.calls().is_empty());

        let refusing = FakeSoar::new("FAILED");
        let workflow = request(&["-w", "example_misp_search_attribute", "misp_search_attack"])
            .unwrap_or_else(|e| panic!("{e}"));
        let error = clone_in_soar(&refusing, Some("51.0.9.0"), &workflow, &mut Vec::new())
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("status 'FAILED'"), "{error}");
        assert!(
            error.contains("the field misp_x conflicts"),
            "SOAR's reason: {error}"
        );
        assert_eq!(
            refusing.lines(),
            [
                "POST /configurations/exports",
                "POST /configurations/imports"
            ],
            "a refused import is not confirmed"
        );
    }
}
