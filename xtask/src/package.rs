//! `cargo xtask package`: the App Host package of each app, `dist/app-<app>-<version>.zip`,
//! with what resilient-sdk's `package` puts at the zip's root: `app.json`, the app's
//! `export.res` as the SDK changes it (tags, payload samples) and `<app>-<version>.tar.gz`
//! for an integration server; and, through [`crate::image`], the app's container image.
//!
//! The app's version is `AppInfo::version`, its crate's version, which is the workspace's
//! unless the crate's `Cargo.toml` sets its own: one number in the image tag, the zip, the
//! export and every result's `metrics.package_version`.

mod pyjson;
pub mod samples;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde::Deserialize;
use serde_json::Value;

pub use pyjson::{Json, KeyOrder};
pub use samples::PayloadSample;

use crate::{App, CUSTOMIZATIONS_DIR, export, registered_apps, sources, workspace_root};

/// Where the packages go, relative to the workspace root (git-ignored).
pub const DIST_DIR: &str = "dist";

/// The image repository App Host expects, and resilient-sdk's default.
pub const DEFAULT_REPOSITORY: &str = "ibmresilient";

/// `customizations/<app>/app_host.json`: what resilient-sdk reads from `setup.py`.
pub const METADATA_FILE: &str = "app_host.json";

/// `customizations/<app>/apikey_permissions.txt`, in resilient-sdk's format.
pub const PERMISSIONS_FILE: &str = "apikey_permissions.txt";

/// `customizations/<app>/app.config`: the app's section, as `soar-runner config -c` writes it.
pub const CONFIG_TEMPLATE_FILE: &str = "app.config";

/// The app's logo (200 by 72) and its author's (100 by 100), as resilient-sdk requires.
pub const APP_LOGO: (&str, u32, u32) = ("icons/app_logo.png", 200, 72);
pub const COMPANY_LOGO: (&str, u32, u32) = ("icons/company_logo.png", 100, 100);

/// The permissions every App Host app's API key has; the SDK refuses a list without them.
pub const BASE_PERMISSIONS: &[&str] = &["read_data", "read_function"];

/// The object kinds resilient-sdk tags with the app's name (`SUPPORTED_RES_OBJ_NAMES`).
/// Playbooks are not among them.
pub const TAGGED_KINDS: &[&str] = &[
    "actions",
    "automatic_tasks",
    "fields",
    "functions",
    "incident_artifact_types",
    "incident_types",
    "message_destinations",
    "phases",
    "roles",
    "scripts",
    "types",
    "workflows",
    "workspaces",
];

/// What `cargo xtask package` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub repository: String,
    pub image: ImageChoice,
    /// A ready static `soar-runner`; built with `scripts/build-static` when absent.
    pub binary: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageChoice {
    /// Build the image; name it in `app.json` by tag, or by digest.
    Build { by_digest: bool },
    /// `--no-image`: name it by tag and build nothing.
    Skip,
}

/// `customizations/<app>/app_host.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub display_name: String,
    pub description: String,
    /// Plain text; `app.json` wraps it in a `<div>` as the SDK does.
    pub long_description: String,
    pub author: String,
    /// The author's website; the SDK writes `""` for anything that is not an http(s) URL.
    pub website: String,
}

/// Everything one app's package is made of, read and checked.
#[derive(Debug, Clone)]
pub struct PackageSources {
    pub metadata: Metadata,
    pub permissions: Vec<String>,
    pub config_template: String,
    pub app_logo: Vec<u8>,
    pub company_logo: Vec<u8>,
    /// The export as `cargo xtask customize` generates it.
    pub export: Value,
    pub samples: BTreeMap<String, PayloadSample>,
}

/// The image `app.json` names: `<repository>/<app>:<version>`, or by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Tag,
    /// `sha256:<64 hex>`, the image manifest's digest.
    Digest(String),
}

/// The app's UUID as resilient-sdk derives it: the MD5 of the name, as a UUID's 16 bytes.
pub fn app_uuid(name: &str) -> String {
    let digest: [u8; 16] = Md5::digest(name.as_bytes()).into();
    uuid::Uuid::from_bytes(digest).to_string()
}

/// The `image` of `app.json`, lower-cased as the SDK writes it.
pub fn image_name(repository: &str, app: &str, version: &str, image: &ImageRef) -> Result<String> {
    let name = match image {
        ImageRef::Tag => format!("{repository}/{app}:{version}"),
        ImageRef::Digest(digest) => {
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
            if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                bail!("image digest '{digest}' is not sha256:<64 hex digits>");
            }
            format!("{repository}/{app}@sha256:{hex}")
        }
    };
    Ok(name.to_lowercase())
}

/// The permissions of an `apikey_permissions.txt`: one a line, `#` lines and blank lines
/// skipped, each `[_a-zA-Z]*`, the base pair required (resilient-sdk's rules).
pub fn parse_permissions(text: &str, origin: &str) -> Result<Vec<String>> {
    let permissions: Vec<String> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .map(|line| line.trim().to_string())
        .collect();
    if let Some(bad) = permissions.iter().find(|permission| {
        !permission
            .bytes()
            .all(|b| b == b'_' || b.is_ascii_alphabetic())
    }) {
        bail!("{origin}: '{bad}' is not a permission name");
    }
    for base in BASE_PERMISSIONS {
        if !permissions.iter().any(|permission| permission == base) {
            bail!("{origin} lacks the base permission {base}");
        }
    }
    Ok(permissions)
}

/// Fails unless `bytes` are a PNG of `width` by `height`, read from its IHDR as the SDK does.
pub fn check_png(bytes: &[u8], width: u32, height: u32, what: &str) -> Result<()> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        bail!("{what} is not a PNG");
    }
    let read =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (found_width, found_height) = (read(16), read(20));
    if (found_width, found_height) != (width, height) {
        bail!("{what} is {found_width}x{found_height}; App Host wants {width}x{height}");
    }
    Ok(())
}

impl PackageSources {
    /// Reads `customizations/<app>/` and generates the app's export.
    pub fn load(root: &Path, app: &App) -> Result<PackageSources> {
        let dir = root.join(CUSTOMIZATIONS_DIR).join(app.name);
        let read_text = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .with_context(|| format!("cannot read {}", dir.join(name).display()))
        };
        let metadata: Metadata = serde_json::from_str(&read_text(METADATA_FILE)?)
            .with_context(|| format!("{} is not valid", dir.join(METADATA_FILE).display()))?;
        let permissions = parse_permissions(
            &read_text(PERMISSIONS_FILE)?,
            &dir.join(PERMISSIONS_FILE).display().to_string(),
        )?;
        let config_template = read_text(CONFIG_TEMPLATE_FILE)?;
        let mut logos = Vec::new();
        for (name, width, height) in [APP_LOGO, COMPANY_LOGO] {
            let path = dir.join(name);
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            check_png(&bytes, width, height, &path.display().to_string())?;
            logos.push(bytes);
        }
        let company_logo = logos.pop().unwrap_or_default();
        let app_logo = logos.pop().unwrap_or_default();
        let app_sources = sources::AppSources::load(&dir).with_context(|| {
            format!(
                "cannot read the customization sources of app '{}'",
                app.name
            )
        })?;
        let export = export::build_export(app, &app_sources)
            .with_context(|| format!("cannot build the export of app '{}'", app.name))?;
        let mut samples = BTreeMap::new();
        let mut missing = Vec::new();
        for function in &app.functions {
            match samples::load_sample(root, app.name, function.name)? {
                Some(sample) => {
                    samples.insert(function.name.to_string(), sample);
                }
                None => missing.push(function.name),
            }
        }
        if !missing.is_empty() {
            bail!(
                "no payload samples for {} under {}: run `cargo xtask package --write-samples`",
                missing.join(", "),
                dir.join(samples::PAYLOAD_SAMPLES_DIR).display()
            );
        }
        Ok(PackageSources {
            metadata,
            permissions,
            config_template,
            app_logo,
            company_logo,
            export,
            samples,
        })
    }
}

/// `app.json`, with every key resilient-sdk writes and the same JSON types.
pub fn app_json(app: &str, version: &str, image: &str, sources: &PackageSources) -> Json {
    let uuid = app_uuid(app);
    let base64 =
        |bytes: &[u8]| Json::string(base64::engine::general_purpose::STANDARD.encode(bytes));
    let icon = |bytes: &[u8]| {
        Json::object([
            ("data", base64(bytes)),
            ("media_type", Json::string("image/png")),
        ])
    };
    let metadata = &sources.metadata;
    let website =
        if metadata.website.starts_with("https://") || metadata.website.starts_with("http://") {
            metadata.website.clone()
        } else {
            String::new()
        };
    Json::object([
        (
            "author",
            Json::object([
                ("name", Json::string(&metadata.author)),
                ("website", Json::string(website)),
                ("icon", icon(&sources.company_logo)),
            ]),
        ),
        (
            "description",
            Json::object([
                ("content", Json::string(&metadata.description)),
                ("format", Json::string("text")),
            ]),
        ),
        ("display_name", Json::string(&metadata.display_name)),
        ("icon", icon(&sources.app_logo)),
        (
            "long_description",
            Json::object([
                (
                    "content",
                    Json::string(format!("<div>{}</div>", metadata.long_description)),
                ),
                ("format", Json::string("html")),
            ]),
        ),
        (
            "minimum_resilient_version",
            Json::from(&sources.export["server_version"]),
        ),
        ("name", Json::string(app)),
        (
            "tag",
            Json::object([
                ("prefix", Json::string(app)),
                ("name", Json::string(app)),
                ("display_name", Json::string(app)),
                ("uuid", Json::string(&uuid)),
            ]),
        ),
        ("uuid", Json::string(&uuid)),
        ("version", Json::string(version)),
        (
            "current_installation",
            Json::object([(
                "executables",
                Json::Array(vec![Json::object([
                    ("name", Json::string(app)),
                    ("image", Json::string(image)),
                    ("config_string", Json::string(&sources.config_template)),
                    (
                        "permission_handles",
                        Json::Array(sources.permissions.iter().map(Json::string).collect()),
                    ),
                    ("uuid", Json::string(&uuid)),
                ])]),
            )]),
        ),
    ])
}

/// The export as resilient-sdk puts it in the zip: without the internal incident type
/// codegen adds, each object of [`TAGGED_KINDS`] (and each workflow a function lists)
/// tagged with the app, and each function's payload samples as JSON-encoded strings.
pub fn packaged_export(
    export: &Value,
    app: &str,
    samples: &BTreeMap<String, PayloadSample>,
) -> Result<Json> {
    let mut export = export.clone();
    if let Some(Value::Array(types)) = export.get_mut("incident_types") {
        types.retain(|kind| kind["uuid"] != export::INTERNAL_INCIDENT_TYPE_UUID);
    }
    let tag = serde_json::json!([{"tag_handle": app, "value": null}]);
    for kind in TAGGED_KINDS {
        let Some(Value::Array(objects)) = export.get_mut(*kind) else {
            continue;
        };
        for object in objects.iter_mut() {
            let Value::Object(object) = object else {
                bail!("an object of '{kind}' in the export is not a JSON object");
            };
            object.insert("tags".into(), tag.clone());
            if *kind == "functions"
                && let Some(Value::Array(workflows)) = object.get_mut("workflows")
            {
                for workflow in workflows.iter_mut().filter_map(Value::as_object_mut) {
                    workflow.insert("tags".into(), tag.clone());
                }
            }
        }
    }
    let mut export = Json::from(&export);
    if let Some(Json::Array(functions)) = export_functions(&mut export) {
        for function in functions.iter_mut() {
            let name = match function.get("name") {
                Some(Json::String(name)) => name.clone(),
                _ => bail!("a function in the export has no name"),
            };
            let sample = samples
                .get(&name)
                .ok_or_else(|| anyhow!("no payload samples for function {name}"))?;
            function.insert(
                "output_json_schema",
                Json::string(sample.schema.to_python(KeyOrder::AsIs)),
            );
            function.insert(
                "output_json_example",
                Json::string(sample.example.to_python(KeyOrder::AsIs)),
            );
        }
    }
    Ok(export)
}

fn export_functions(export: &mut Json) -> Option<&mut Json> {
    match export {
        Json::Object(pairs) => pairs
            .iter_mut()
            .find(|(key, _)| key == "functions")
            .map(|(_, value)| value),
        _ => None,
    }
}

/// `<app>-<version>.tar.gz` for an integration server: under `<app>-<version>/`, the static
/// `soar-runner`, the app's `app.config` section and a README. Fixed owners and times, so
/// the same inputs give the same bytes.
pub fn integration_tarball(
    app: &str,
    version: &str,
    binary: &[u8],
    config_template: &str,
) -> Result<Vec<u8>> {
    let top = format!("{app}-{version}");
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut archive = tar::Builder::new(encoder);
    let readme = integration_readme(app, version);
    for (name, mode, bytes) in [
        ("soar-runner", 0o755, binary),
        ("app.config", 0o644, config_template.as_bytes()),
        ("README.md", 0o644, readme.as_bytes()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(FILE_TIME_SECONDS);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(&mut header, format!("{top}/{name}"), bytes)
            .with_context(|| format!("cannot add {name} to the tarball"))?;
    }
    let encoder = archive.into_inner().context("cannot finish the tarball")?;
    encoder.finish().context("cannot compress the tarball")
}

/// The zip's file names, in the order written.
pub fn zip_file_names(app: &str, version: &str) -> [String; 3] {
    [
        "app.json".to_string(),
        "export.res".to_string(),
        format!("{app}-{version}.tar.gz"),
    ]
}

/// Writes `<out_dir>/app-<app>-<version>.zip` and returns its path.
pub fn write_package(
    root: &Path,
    app: &App,
    repository: &str,
    image: &ImageRef,
    binary: &Path,
    out_dir: &Path,
) -> Result<PathBuf> {
    let version = app.info.version;
    let sources = PackageSources::load(root, app)?;
    let image = image_name(repository, app.name, version, image)?;
    let app_json = app_json(app.name, version, &image, &sources).to_python(KeyOrder::Sorted);
    let export =
        packaged_export(&sources.export, app.name, &sources.samples)?.to_python(KeyOrder::Sorted);
    let binary_bytes = std::fs::read(binary)
        .with_context(|| format!("cannot read the soar-runner binary {}", binary.display()))?;
    let tarball = integration_tarball(app.name, version, &binary_bytes, &sources.config_template)?;

    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let path = out_dir.join(format!("app-{}-{version}.zip", app.name));
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let time = zip::DateTime::from_date_and_time(2025, 1, 1, 0, 0, 0)
        .map_err(|error| anyhow!("the zip's file time: {error}"))?;
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(time)
        .unix_permissions(0o644);
    let [json_name, export_name, tarball_name] = zip_file_names(app.name, version);
    for (name, bytes) in [
        (json_name, app_json.as_bytes()),
        (export_name, export.as_bytes()),
        (tarball_name, tarball.as_slice()),
    ] {
        zip.start_file(name.as_str(), options)
            .with_context(|| format!("cannot add {name} to {}", path.display()))?;
        zip.write_all(bytes)
            .with_context(|| format!("cannot write {name} into {}", path.display()))?;
    }
    zip.finish()
        .with_context(|| format!("cannot finish {}", path.display()))?;
    Ok(path)
}

/// Where `scripts/build-static` leaves the binary (it prints the same path).
pub fn static_binary_path(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    root.join(target)
        .join("x86_64-unknown-linux-gnu")
        .join("dist")
        .join("soar-runner")
}

/// `cargo xtask package …`; `arguments` follow `package`.
pub fn run(arguments: &[String]) -> Result<ExitCode> {
    let root = workspace_root();
    let apps = registered_apps()?;
    if arguments == ["--write-samples"] {
        return write_samples(&root, &apps);
    }
    let options = parse_options(arguments)?;
    let binary = match &options.binary {
        Some(path) => path.clone(),
        None => {
            println!("building the static soar-runner (scripts/build-static; a few minutes)");
            crate::image::build_static_runner(&root)?
        }
    };
    let out_dir = root.join(DIST_DIR);
    for app in &apps {
        let version = app.info.version;
        let image = match options.image {
            ImageChoice::Skip => ImageRef::Tag,
            ImageChoice::Build { by_digest } => {
                let built = crate::image::build(app.name, version, &binary, &out_dir)
                    .with_context(|| format!("cannot build the image of {}", app.name))?;
                println!(
                    "built image {} ({}), {} compressed",
                    built.reference, built.manifest_digest, built.compressed_size
                );
                match by_digest {
                    true => ImageRef::Digest(built.manifest_digest),
                    false => ImageRef::Tag,
                }
            }
        };
        let path = write_package(&root, app, &options.repository, &image, &binary, &out_dir)?;
        println!(
            "wrote {}",
            path.strip_prefix(&root).unwrap_or(&path).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `[--image-digest] [--repository-name NAME] [--no-image] [--binary PATH]`.
pub fn parse_options(arguments: &[String]) -> Result<Options> {
    let mut options = Options {
        repository: DEFAULT_REPOSITORY.to_string(),
        image: ImageChoice::Build { by_digest: false },
        binary: None,
    };
    let (mut by_digest, mut no_image) = (false, false);
    let mut arguments = arguments.iter();
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--image-digest" => by_digest = true,
            "--no-image" => no_image = true,
            "--repository-name" => {
                let name = arguments
                    .next()
                    .ok_or_else(|| anyhow!("--repository-name needs a NAME"))?;
                if name.is_empty() || name.contains(char::is_whitespace) {
                    bail!("--repository-name '{name}' is not a repository name");
                }
                options.repository = name.clone();
            }
            "--binary" => {
                let path = arguments
                    .next()
                    .ok_or_else(|| anyhow!("--binary needs a PATH"))?;
                options.binary = Some(PathBuf::from(path));
            }
            other => bail!("unknown package option '{other}'"),
        }
    }
    options.image = match (no_image, by_digest) {
        (true, true) => bail!("--image-digest needs the image: drop --no-image"),
        (true, false) => ImageChoice::Skip,
        (false, by_digest) => ImageChoice::Build { by_digest },
    };
    Ok(options)
}

/// The tarball's and the zip's file time: 2025-01-01T00:00:00Z, the export's date.
const FILE_TIME_SECONDS: u64 = (export::EXPORT_DATE_MS / 1000) as u64;

fn write_samples(root: &Path, apps: &[App]) -> Result<ExitCode> {
    let registry = soar_core::Registry::from_inventory().map_err(|error| anyhow!(error))?;
    let functions: Vec<&str> = apps
        .iter()
        .flat_map(|app| app.functions.iter().map(|function| function.name))
        .collect();
    let app_of: BTreeMap<String, String> = apps
        .iter()
        .flat_map(|app| {
            app.functions
                .iter()
                .map(|function| (function.name.to_string(), app.name.to_string()))
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().context("cannot start tokio")?;
    let payloads = runtime.block_on(samples::generate(&registry, &functions))?;
    for path in samples::write_samples(root, &app_of, &payloads)? {
        println!(
            "wrote {}",
            path.strip_prefix(root).unwrap_or(&path).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn integration_readme(app: &str, version: &str) -> String {
    format!(
        "# {app} {version} for an integration server\n\
         \n\
         `soar-runner` is one static x86_64 Linux executable: it needs no Python and no\n\
         resilient-circuits, and serves every app it was built with, {app} among them.\n\
         \n\
         ```sh\n\
         install -m 0755 soar-runner /usr/local/bin/soar-runner\n\
         soar-runner config -c          # writes ~/.resilient/app.config: [resilient] and each app's section\n\
         # edit it: SOAR host, org and API key; the [{app}] section's settings (app.config here shows them)\n\
         soar-runner customize -y       # imports the functions, workflows and playbooks into SOAR\n\
         soar-runner run\n\
         ```\n\
         \n\
         On App Host the zip this file came in is installed as it is; this tarball is not used there.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_the_md5_of_the_name_as_resilient_sdk_makes_it() {
        // fn_main_mock_integration's UUID is the one in resilient-sdk's mock_app.json.
        assert_eq!(
            app_uuid("fn_main_mock_integration"),
            "6952efe2-4c78-c18c-2779-9f2402ddb574"
        );
        assert_eq!(app_uuid("fn_misp"), "0206b431-5d45-0dc1-ac64-cf89efdd4544");
    }

    #[test]
    fn image_names_by_tag_and_by_digest() {
        let hex = "AB".repeat(32);
        assert_eq!(
            image_name("ibmresilient", "fn_misp", "0.1.0", &ImageRef::Tag).ok(),
            Some("ibmresilient/fn_misp:0.1.0".to_string())
        );
        assert_eq!(
            image_name(
                "MyOrg",
                "fn_misp",
                "0.1.0",
                &ImageRef::Digest(format!("sha256:{hex}"))
            )
            .ok(),
            Some(format!("myorg/fn_misp@sha256:{}", hex.to_lowercase()))
        );
        assert!(image_name("r", "a", "1", &ImageRef::Digest("sha256:12".into())).is_err());
    }

    #[test]
    fn permissions_follow_the_sdks_rules() {
        let text =
            "# comment\nread_data\n\n  read_function \n#edit_data\nedit_all_incidents_fields\n";
        assert_eq!(
            parse_permissions(text, "t").ok(),
            Some(vec![
                "read_data".to_string(),
                "read_function".to_string(),
                "edit_all_incidents_fields".to_string()
            ])
        );
        assert!(
            parse_permissions("read_data\n", "t").is_err(),
            "read_function is required"
        );
        assert!(parse_permissions("read_data\nread_function\nbad-name\n", "t").is_err());
    }

    #[test]
    fn options_parse_and_refuse_a_digest_without_an_image() {
        let parse = |words: &[&str]| {
            parse_options(
                &words
                    .iter()
                    .map(|word| word.to_string())
                    .collect::<Vec<_>>(),
            )
        };
        let options = parse(&["--image-digest", "--repository-name", "acme"])
            .unwrap_or_else(|error| panic!("{error:#}"));
        assert_eq!(options.image, ImageChoice::Build { by_digest: true });
        assert_eq!(options.repository, "acme");
        assert_eq!(
            parse(&["--no-image"]).map(|options| options.image).ok(),
            Some(ImageChoice::Skip)
        );
        assert!(parse(&["--no-image", "--image-digest"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
