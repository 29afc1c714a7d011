//! The hand-written half of an app's customizations: `customizations/<app>/app.json` and the
//! BPMN and Python files it points at, read into types the export generator can trust.
//!
//! File names follow the manifest's names, so the manifest never repeats a path:
//! `workflows/<programmatic_name>.{bpmn,pre.py,post.py}` and
//! `playbooks/<name>.{bpmn,pre.py,post.py}`; a missing `post.py` means no post-processing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

/// The manifest's file name inside `customizations/<app>/`.
pub const MANIFEST_FILE: &str = "app.json";

/// Lines at the top of a script that start with this are notes for readers of the source
/// and are not part of the script SOAR runs.
pub const SOURCE_NOTE_PREFIX: &str = "#:";

/// Everything an app's export needs besides its function definitions.
#[derive(Debug, Clone)]
pub struct AppSources {
    pub directory: PathBuf,
    pub message_destinations: Vec<MessageDestination>,
    pub incident_fields: Vec<IncidentField>,
    pub workflows: Vec<Workflow>,
    pub rules: Vec<Rule>,
    pub playbooks: Vec<Playbook>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageDestination {
    pub programmatic_name: String,
    pub name: String,
    /// 0 is a queue, 1 a topic.
    #[serde(default)]
    pub destination_type: u8,
    #[serde(default = "always")]
    pub expect_ack: bool,
    pub uuid: Option<String>,
}

/// A custom incident field (`incident/<name>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentField {
    pub name: String,
    /// The label SOAR shows.
    pub text: String,
    pub input_type: String,
    #[serde(default)]
    pub tooltip: String,
    #[serde(default)]
    pub placeholder: String,
    pub uuid: Option<String>,
}

/// The object a workflow, rule or playbook runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    Incident,
    Artifact,
}

/// A 3.0.1-style workflow: one function step with pre- and post-processing scripts.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub manifest: WorkflowManifest,
    /// The BPMN, comments and layout whitespace removed, placeholders still in.
    pub bpmn: String,
    pub pre_processing_script: String,
    pub post_processing_script: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowManifest {
    pub programmatic_name: String,
    pub name: String,
    pub object_type: ObjectType,
    pub description: String,
    /// The API name of the function its step calls.
    pub function: String,
    #[serde(default)]
    pub result_name: String,
    pub uuid: Option<String>,
}

/// A menu-item rule that starts workflows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub object_type: ObjectType,
    /// All must hold (`logic_type` "all") for the menu item to be offered; none means it
    /// is offered on every object of its type.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Programmatic names of the workflows it starts.
    pub workflows: Vec<String>,
    pub uuid: Option<String>,
}

/// A 3.0.2-style manual playbook: a function step, then a local "post process" script.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub manifest: PlaybookManifest,
    pub bpmn: String,
    pub pre_processing_script: String,
    pub post_processing_script: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookManifest {
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub object_type: ObjectType,
    pub function: String,
    pub result_name: String,
    /// All must hold (`logic_type` "all") for the playbook to be offered.
    pub activation_conditions: Vec<Condition>,
    pub uuid: Option<String>,
    pub fields_type_uuid: Option<String>,
    pub tag_uuid: Option<String>,
    pub post_script_uuid: Option<String>,
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default = "one")]
    pub content_version: u32,
}

/// A test on a field of the object, as in a rule's conditions or a playbook's activation
/// conditions: `artifact.type` `in` `["URL"]`, `incident.properties.x` `has_a_value`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field_name: String,
    pub method: String,
    #[serde(default)]
    pub value: Value,
}

impl AppSources {
    /// Reads `directory` (`customizations/<app>`). An app without a manifest has no sources:
    /// its export then holds only its functions and their message destination.
    pub fn load(directory: &Path) -> Result<AppSources> {
        let manifest_path = directory.join(MANIFEST_FILE);
        let manifest: Manifest = if manifest_path.exists() {
            serde_json::from_str(&read(&manifest_path)?)
                .with_context(|| format!("{} is not a valid manifest", manifest_path.display()))?
        } else {
            Manifest::default()
        };
        let workflows = manifest
            .workflows
            .into_iter()
            .map(|workflow| {
                let base = directory
                    .join("workflows")
                    .join(&workflow.programmatic_name);
                Ok(Workflow {
                    bpmn: read_bpmn(&base.with_extension("bpmn"))?,
                    pre_processing_script: read_script(&with_suffix(&base, ".pre.py"))?,
                    post_processing_script: read_optional_script(&with_suffix(&base, ".post.py"))?,
                    manifest: workflow,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let playbooks = manifest
            .playbooks
            .into_iter()
            .map(|playbook| {
                let base = directory.join("playbooks").join(&playbook.name);
                Ok(Playbook {
                    bpmn: read_bpmn(&base.with_extension("bpmn"))?,
                    pre_processing_script: read_script(&with_suffix(&base, ".pre.py"))?,
                    post_processing_script: read_optional_script(&with_suffix(&base, ".post.py"))?,
                    manifest: playbook,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AppSources {
            directory: directory.to_path_buf(),
            message_destinations: manifest.message_destinations,
            incident_fields: manifest.incident_fields,
            workflows,
            rules: manifest.rules,
            playbooks,
        })
    }
}

impl ObjectType {
    pub fn soar_name(self) -> &'static str {
        match self {
            ObjectType::Incident => "incident",
            ObjectType::Artifact => "artifact",
        }
    }
}

/// A script as SOAR runs it: the leading `#:` note lines and the file's final newline
/// removed, so that the text equals what the platform stores.
pub fn script_text(file_text: &str) -> String {
    let mut lines = file_text.split_inclusive('\n').peekable();
    while lines
        .next_if(|line| line.starts_with(SOURCE_NOTE_PREFIX))
        .is_some()
    {}
    let script: String = lines.collect();
    match script.strip_suffix('\n') {
        Some(without_newline) => without_newline.to_string(),
        None => script,
    }
}

/// BPMN as SOAR stores it: one line, no comments. Whitespace is removed only where it
/// separates two tags, so text content (scripts, documentation) is kept as written.
pub fn minify_bpmn(xml: &str) -> String {
    let mut without_comments = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        without_comments.push_str(&rest[..start]);
        match rest[start..].find("-->") {
            Some(end) => rest = &rest[start + end + 3..],
            // An unterminated comment swallows the rest, as an XML parser would refuse it.
            None => rest = "",
        }
    }
    without_comments.push_str(rest);

    let mut minified = String::with_capacity(without_comments.len());
    let mut pieces = without_comments.split('<');
    if let Some(first) = pieces.next() {
        minified.push_str(first.trim());
    }
    for piece in pieces {
        minified.push('<');
        // `piece` is "tag attributes>text": text made only of whitespace is layout.
        match piece.split_once('>') {
            Some((tag, text)) if text.trim().is_empty() => {
                minified.push_str(tag);
                minified.push('>');
            }
            _ => minified.push_str(piece),
        }
    }
    minified
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    message_destinations: Vec<MessageDestination>,
    #[serde(default)]
    incident_fields: Vec<IncidentField>,
    #[serde(default)]
    workflows: Vec<WorkflowManifest>,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    playbooks: Vec<PlaybookManifest>,
}

fn always() -> bool {
    true
}

fn one() -> u32 {
    1
}

fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut path = base.as_os_str().to_owned();
    path.push(suffix);
    PathBuf::from(path)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_bpmn(path: &Path) -> Result<String> {
    let xml = minify_bpmn(&read(path)?);
    if !xml.starts_with("<?xml") {
        bail!("{} does not start with an XML declaration", path.display());
    }
    Ok(xml)
}

fn read_script(path: &Path) -> Result<String> {
    Ok(script_text(&read(path)?))
}

fn read_optional_script(path: &Path) -> Result<Option<String>> {
    if path.exists() {
        read_script(path).map(Some)
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_text_drops_only_the_leading_notes_and_the_final_newline() {
        let file = "#: a note\n#: another\n# a real comment\nx = 1\n\n";
        assert_eq!(script_text(file), "# a real comment\nx = 1\n");
        assert_eq!(script_text("x = 1"), "x = 1");
        assert_eq!(
            script_text("x = 1\n#: not a header\n"),
            "x = 1\n#: not a header"
        );
    }

    #[test]
    fn minify_keeps_text_and_drops_layout_and_comments() {
        let pretty = "<?xml version=\"1.0\"?>\n<!-- note -->\n<a>\n  <b x=\"1\"/>\n  <c>  text with  spaces </c>\n  <d> </d>\n</a>\n";
        assert_eq!(
            minify_bpmn(pretty),
            "<?xml version=\"1.0\"?><a><b x=\"1\"/><c>  text with  spaces </c><d></d></a>"
        );
    }
}
