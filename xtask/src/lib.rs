//! The generators behind `cargo xtask`: each app's SOAR customization export and the
//! function reference, built from the registered function definitions and the sources in
//! `customizations/<app>/`. A library, so that a plain `#[test]` can tell a stale file.

pub mod docs;
pub mod export;
pub mod image;
pub mod package;
pub mod sources;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use soar_core::{AppInfo, FunctionDefinition, Registry};

// Links every function crate, so that its `register_function!` is collected.
use soar_apps as _;

/// Where the sources and exports of each app live, relative to the workspace root.
pub const CUSTOMIZATIONS_DIR: &str = "customizations";

/// The function reference, relative to the workspace root.
pub const FUNCTIONS_DOC: &str = "docs/functions.md";

/// One app (SOAR package) and its functions in API-name order.
#[derive(Debug, Clone)]
pub struct App {
    pub name: &'static str,
    pub info: &'static AppInfo,
    pub functions: Vec<&'static FunctionDefinition>,
}

/// A file `cargo xtask` writes, with the text it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Relative to the workspace root.
    pub path: PathBuf,
    pub text: String,
}

/// Which generated files a command covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outputs {
    /// The exports and the function reference.
    All,
    /// Only `docs/functions.md`.
    Docs,
}

/// The workspace root: xtask lives one level below it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The functions linked into this process, grouped by app, apps in name order.
pub fn registered_apps() -> Result<Vec<App>> {
    let registry = Registry::from_inventory().map_err(|error| anyhow!(error))?;
    Ok(group_by_app(
        registry.functions().map(|function| function.definition()),
    ))
}

/// Groups definitions by `definition.app.name`, keeping API-name order within an app.
pub fn group_by_app(
    definitions: impl IntoIterator<Item = &'static FunctionDefinition>,
) -> Vec<App> {
    let mut apps: BTreeMap<&'static str, App> = BTreeMap::new();
    for definition in definitions {
        apps.entry(definition.app.name)
            .or_insert_with(|| App {
                name: definition.app.name,
                info: definition.app,
                functions: Vec::new(),
            })
            .functions
            .push(definition);
    }
    let mut apps: Vec<App> = apps.into_values().collect();
    for app in &mut apps {
        app.functions.sort_by_key(|definition| definition.name);
    }
    apps
}

/// The path of an app's export, relative to the workspace root.
pub fn export_path(app: &str) -> PathBuf {
    Path::new(CUSTOMIZATIONS_DIR).join(app).join("export.res")
}

/// Every file the command should write, with its text, for the apps given.
pub fn generated_files(root: &Path, apps: &[App], outputs: Outputs) -> Result<Vec<GeneratedFile>> {
    let mut files = Vec::new();
    if outputs == Outputs::All {
        for app in apps {
            let sources = sources::AppSources::load(&root.join(CUSTOMIZATIONS_DIR).join(app.name))
                .with_context(|| {
                    format!(
                        "cannot read the customization sources of app '{}'",
                        app.name
                    )
                })?;
            let export = export::build_export(app, &sources)
                .with_context(|| format!("cannot build the export of app '{}'", app.name))?;
            files.push(GeneratedFile {
                path: export_path(app.name),
                text: export::to_export_text(&export)?,
            });
        }
    }
    files.push(GeneratedFile {
        path: PathBuf::from(FUNCTIONS_DOC),
        text: docs::functions_markdown(root, apps)?,
    });
    Ok(files)
}

/// The generated files whose checked-in text differs from what they should be.
pub fn stale_files(root: &Path, files: &[GeneratedFile]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|file| {
            std::fs::read_to_string(root.join(&file.path))
                .ok()
                .as_deref()
                != Some(file.text.as_str())
        })
        .map(|file| file.path.clone())
        .collect()
}

/// Writes the files that changed; returns their paths.
pub fn write_files(root: &Path, files: &[GeneratedFile]) -> Result<Vec<PathBuf>> {
    let stale = stale_files(root, files);
    for file in files.iter().filter(|file| stale.contains(&file.path)) {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, &file.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in exports and docs are what the generator makes from today's code; run
    /// `cargo xtask customize` when this fails.
    #[test]
    fn checked_in_generated_files_are_up_to_date() {
        let root = workspace_root();
        let apps = registered_apps().unwrap_or_else(|error| panic!("{error:#}"));
        let files =
            generated_files(&root, &apps, Outputs::All).unwrap_or_else(|error| panic!("{error:#}"));
        let stale = stale_files(&root, &files);
        assert!(
            stale.is_empty(),
            "stale generated files (run `cargo xtask customize`): {}",
            stale
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
