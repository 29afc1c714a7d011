//! `cargo xtask package`: the App Host zip of each app against what resilient-sdk's
//! `package` writes (its own generated `app.json`, its export changes, its loader), and the
//! payload samples against a fresh run of each function.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use xtask::package::samples::{self, ORIGINAL_FUNCTIONS, schema_of};
use xtask::package::{
    self, ImageRef, Json, KeyOrder, PackageSources, TAGGED_KINDS, app_uuid, zip_file_names,
};
use xtask::sources::AppSources;
use xtask::{App, CUSTOMIZATIONS_DIR, export, registered_apps, workspace_root};

mod support;

fn apps() -> Vec<App> {
    let apps = registered_apps().unwrap_or_else(|error| panic!("the registry: {error:#}"));
    for name in ["fn_misp", "fn_urlscanio"] {
        assert!(
            apps.iter().any(|app| app.name == name),
            "{name} is registered"
        );
    }
    apps
}

fn app(name: &str) -> App {
    apps()
        .into_iter()
        .find(|app| app.name == name)
        .unwrap_or_else(|| panic!("no app {name}"))
}

/// A small file standing in for the static soar-runner, which takes minutes to build.
fn stand_in_binary(dir: &Path) -> PathBuf {
    let path = dir.join("soar-runner");
    std::fs::write(&path, b"\x7fELF stand-in for soar-runner\n")
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    path
}

/// Packages `app` into a fresh directory; returns the directory (kept alive) and the zip.
fn package(app: &App, image: &ImageRef) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("a temporary dir: {error}"));
    let binary = stand_in_binary(dir.path());
    let zip = package::write_package(
        &workspace_root(),
        app,
        package::DEFAULT_REPOSITORY,
        image,
        &binary,
        &dir.path().join("dist"),
    )
    .unwrap_or_else(|error| panic!("packaging {}: {error:#}", app.name));
    (dir, zip)
}

/// Every file of a zip, by name, in the zip's order.
fn unzip(path: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(path)
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()));
    let mut archive = zip::ZipArchive::new(file)
        .unwrap_or_else(|error| panic!("{} is not a zip: {error}", path.display()));
    (0..archive.len())
        .map(|index| {
            let mut entry = archive
                .by_index(index)
                .unwrap_or_else(|error| panic!("entry {index}: {error}"));
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .unwrap_or_else(|error| panic!("reading {}: {error}", entry.name()));
            (entry.name().to_string(), bytes)
        })
        .collect()
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    files
        .iter()
        .find(|(found, _)| found == name)
        .map(|(_, bytes)| bytes.as_slice())
        .unwrap_or_else(|| panic!("no {name} in the zip"))
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_else(|error| panic!("not UTF-8: {error}"))
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|error| panic!("not JSON: {error}"))
}

/// The `(path, type)` of every value in `value`; an array contributes its items under `[]`.
fn shape(value: &Value, path: &str, into: &mut BTreeMap<String, &'static str>) {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(items) => {
            for item in items {
                shape(item, &format!("{path}[]"), into);
            }
            "array"
        }
        Value::Object(map) => {
            for (key, item) in map {
                shape(item, &format!("{path}.{key}"), into);
            }
            "object"
        }
    };
    into.insert(path.to_string(), kind);
}

/// The tar entries of a `.tar.gz`: name, mode and bytes.
fn untar(bytes: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive
        .entries()
        .unwrap_or_else(|error| panic!("not a tar.gz: {error}"))
        .map(|entry| {
            let mut entry = entry.unwrap_or_else(|error| panic!("a tar entry: {error}"));
            let name = entry
                .path()
                .unwrap_or_else(|error| panic!("a tar path: {error}"))
                .display()
                .to_string();
            let mode = entry.header().mode().unwrap_or_default();
            let mut content = Vec::new();
            entry
                .read_to_end(&mut content)
                .unwrap_or_else(|error| panic!("reading {name}: {error}"));
            (name, mode, content)
        })
        .collect()
}

#[test]
fn each_zip_holds_app_json_export_and_the_integration_tarball_at_its_root() {
    for app in apps() {
        let version = app.info.version;
        let (dir, zip) = package(&app, &ImageRef::Tag);
        assert_eq!(
            zip.file_name().and_then(|name| name.to_str()),
            Some(format!("app-{}-{version}.zip", app.name).as_str())
        );
        let files = unzip(&zip);
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            zip_file_names(app.name, version)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            names,
            [
                "app.json".to_string(),
                "export.res".to_string(),
                format!("{}-{version}.tar.gz", app.name)
            ]
        );

        let tarball = untar(file(&files, &format!("{}-{version}.tar.gz", app.name)));
        let top = format!("{}-{version}", app.name);
        let entries: Vec<(String, u32)> = tarball
            .iter()
            .map(|(name, mode, _)| (name.clone(), *mode))
            .collect();
        assert_eq!(
            entries,
            [
                (format!("{top}/soar-runner"), 0o755),
                (format!("{top}/app.config"), 0o644),
                (format!("{top}/README.md"), 0o644),
            ]
        );
        let binary = std::fs::read(dir.path().join("soar-runner")).unwrap_or_default();
        assert_eq!(tarball[0].2, binary, "the binary goes in as given");
        let template = std::fs::read(
            workspace_root()
                .join(CUSTOMIZATIONS_DIR)
                .join(app.name)
                .join("app.config"),
        )
        .unwrap_or_default();
        assert_eq!(
            tarball[1].2, template,
            "the app.config template goes in as it is"
        );
        assert!(
            text(&tarball[2].2).contains("soar-runner config -c"),
            "the README says how to start"
        );

        // Same inputs, same bytes: nothing in the zip depends on the clock.
        let (_again_dir, again) = package(&app, &ImageRef::Tag);
        assert_eq!(
            std::fs::read(&zip).unwrap_or_default(),
            std::fs::read(&again).unwrap_or_default(),
            "{} packaged twice gives the same zip",
            app.name
        );
    }
}

#[test]
fn app_json_has_the_keys_and_types_of_the_sdks_own_generated_app_json() {
    let fixture_path = workspace_root().join("xtask/tests/fixtures/mock_app.json");
    let fixture = json(&std::fs::read(&fixture_path).unwrap_or_default());
    let mut expected = BTreeMap::new();
    shape(&fixture, "", &mut expected);
    assert!(expected.len() > 20, "the fixture was read: {expected:?}");

    for app in apps() {
        let (_dir, zip) = package(&app, &ImageRef::Tag);
        let files = unzip(&zip);
        let bytes = file(&files, "app.json");
        let app_json = json(bytes);
        let mut found = BTreeMap::new();
        shape(&app_json, "", &mut found);
        assert_eq!(
            found, expected,
            "{}'s app.json against the SDK's mock_app.json",
            app.name
        );

        // Written as json.dumps(…, sort_keys=True): one line, sorted, ASCII.
        let written = text(bytes);
        let reparsed = Json::parse(written).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(written, reparsed.to_python(KeyOrder::Sorted));
        assert!(!written.contains('\n') && written.is_ascii());

        let version = app.info.version;
        let uuid = app_uuid(app.name);
        let sources = PackageSources::load(&workspace_root(), &app)
            .unwrap_or_else(|error| panic!("{error:#}"));
        let executable = &app_json["current_installation"]["executables"][0];
        assert_eq!(app_json["name"], app.name);
        assert_eq!(app_json["version"], version);
        assert_eq!(app_json["uuid"], uuid.as_str());
        assert_eq!(
            app_json["tag"],
            json!({"prefix": app.name, "name": app.name, "display_name": app.name, "uuid": uuid})
        );
        assert_eq!(executable["name"], app.name);
        assert_eq!(executable["uuid"], uuid.as_str());
        assert_eq!(
            executable["image"],
            format!("ibmresilient/{}:{version}", app.name)
        );
        assert_eq!(
            executable["config_string"],
            sources.config_template.as_str()
        );
        assert_eq!(
            app_json["minimum_resilient_version"],
            sources.export["server_version"]
        );
        assert_eq!(
            app_json["minimum_resilient_version"]["version"], "48.2.16",
            "the export's server version, as fn_misp 3.0.2's"
        );
        let long = app_json["long_description"]["content"]
            .as_str()
            .unwrap_or_default();
        assert!(
            long.starts_with("<div>") && long.ends_with("</div>"),
            "{long}"
        );
        assert_ne!(
            app_json["display_name"], app.name,
            "the SDK's validate wants a display name"
        );
        for (icon, (_, width, height)) in [
            (&app_json["icon"], package::APP_LOGO),
            (&app_json["author"]["icon"], package::COMPANY_LOGO),
        ] {
            use base64::Engine as _;
            let png = base64::engine::general_purpose::STANDARD
                .decode(icon["data"].as_str().unwrap_or_default())
                .unwrap_or_else(|error| panic!("an icon's data is not base64: {error}"));
            package::check_png(&png, width, height, "icon")
                .unwrap_or_else(|error| panic!("{error:#}"));
            assert_eq!(icon["media_type"], "image/png");
        }
    }
    let permissions = |name: &str| {
        let (_dir, zip) = package(&app(name), &ImageRef::Tag);
        json(file(&unzip(&zip), "app.json"))["current_installation"]["executables"][0]
            ["permission_handles"]
            .clone()
    };
    assert_eq!(
        permissions("fn_misp"),
        json!(["read_data", "read_function"])
    );
    assert_eq!(
        permissions("fn_urlscanio"),
        json!(["read_data", "read_function", "edit_all_incidents_fields"]),
        "urlscanio attaches its screenshot to the incident"
    );
}

#[test]
fn the_app_uuid_is_the_md5_of_the_name_as_the_sdk_makes_it() {
    let fixture = json(
        &std::fs::read(workspace_root().join("xtask/tests/fixtures/mock_app.json"))
            .unwrap_or_default(),
    );
    assert_eq!(
        app_uuid(fixture["name"].as_str().unwrap_or_default()),
        fixture["uuid"].as_str().unwrap_or_default(),
        "the SDK's own app.json"
    );
    assert_eq!(app_uuid("fn_misp"), "0206b431-5d45-0dc1-ac64-cf89efdd4544");
}

#[test]
fn image_digest_names_the_image_by_digest() {
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let (_dir, zip) = package(&app("fn_misp"), &ImageRef::Digest(digest.clone()));
    let app_json = json(file(&unzip(&zip), "app.json"));
    assert_eq!(
        app_json["current_installation"]["executables"][0]["image"],
        format!("ibmresilient/fn_misp@{digest}")
    );
}

#[test]
fn the_zips_export_is_tagged_and_carries_each_functions_payload_samples() {
    for app in apps() {
        let (_dir, zip) = package(&app, &ImageRef::Tag);
        let files = unzip(&zip);
        let written = text(file(&files, "export.res"));
        assert!(!written.contains('\n'), "one line, as json.dumps writes it");
        let reparsed = Json::parse(written).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(written, reparsed.to_python(KeyOrder::Sorted), "sort_keys");
        let packaged = json(written.as_bytes());
        let tag = json!([{"tag_handle": app.name, "value": null}]);

        let sources = PackageSources::load(&workspace_root(), &app)
            .unwrap_or_else(|error| panic!("{error:#}"));
        let mut tagged = 0;
        for kind in TAGGED_KINDS {
            for object in packaged[*kind].as_array().into_iter().flatten() {
                assert_eq!(object["tags"], tag, "{kind} {}", object["name"]);
                tagged += 1;
            }
        }
        assert!(
            tagged > app.functions.len(),
            "functions, fields, destinations and more"
        );
        assert!(
            packaged["incident_types"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|kind| kind["uuid"] != export::INTERNAL_INCIDENT_TYPE_UUID),
            "the internal incident type codegen adds is taken out, as the SDK does"
        );
        for playbook in packaged["playbooks"].as_array().into_iter().flatten() {
            assert_ne!(playbook["tags"], tag, "playbooks are not tagged");
        }
        let functions = packaged["functions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(functions.len(), app.functions.len());
        let mut listed_workflows = 0;
        for function in &functions {
            let name = function["name"].as_str().unwrap_or_default();
            for workflow in function["workflows"].as_array().into_iter().flatten() {
                assert_eq!(
                    workflow["tags"], tag,
                    "{name}'s workflow {}",
                    workflow["name"]
                );
                listed_workflows += 1;
            }
            let sample = &sources.samples[name];
            for (key, expected) in [
                ("output_json_schema", &sample.schema),
                ("output_json_example", &sample.example),
            ] {
                let embedded = function[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}'s {key} is a JSON-encoded string"));
                assert_eq!(
                    embedded,
                    expected.to_python(KeyOrder::AsIs),
                    "{name}'s {key}: the file's JSON, in its own key order"
                );
            }
        }
        if app.name == "fn_misp" {
            assert!(
                listed_workflows >= 7,
                "the 3.0.1 workflows are listed and tagged"
            );
        }
    }
}

#[test]
fn resilient_sdk_loads_the_export_from_each_zip() {
    let Some(python) = support::resilient_sdk_python("the zip") else {
        return;
    };
    let root = workspace_root();
    for app in apps() {
        let (dir, zip) = package(&app, &ImageRef::Tag);
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
        let expected_path = dir.path().join("expected.json");
        std::fs::write(&expected_path, expected.to_string())
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", expected_path.display()));
        // The SDK's read_local_exportfile opens the zip itself and reads its one `.res` file.
        let output = Command::new(&python)
            .arg(root.join("xtask/tests/sdk_load_export.py"))
            .arg(&zip)
            .arg(&expected_path)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
        assert!(
            output.status.success(),
            "resilient-sdk could not load the export in {}:\n{}",
            zip.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        // Python itself agrees that both files are json.dumps(…, sort_keys=True) to the byte.
        let rewritten = Command::new(&python)
            .arg("-c")
            .arg(
                "import json, sys, zipfile\n\
                 archive = zipfile.ZipFile(sys.argv[1])\n\
                 for name in ('app.json', 'export.res'):\n\
                 \x20   text = archive.read(name).decode('ascii')\n\
                 \x20   assert json.dumps(json.loads(text), sort_keys=True) == text, name\n",
            )
            .arg(&zip)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
        assert!(
            rewritten.status.success(),
            "Python writes {} differently:\n{}",
            zip.display(),
            String::from_utf8_lossy(&rewritten.stderr)
        );
        let summary = json(&output.stdout);
        assert_eq!(
            summary["functions"].as_array().map(Vec::len),
            Some(app.functions.len()),
            "every function of {}: {summary}",
            app.name
        );
        assert_eq!(
            summary["playbooks"].as_array().map(Vec::len),
            Some(sources.playbooks.len()),
            "every playbook of {}: {summary}",
            app.name
        );
    }
}

#[test]
fn payload_samples_are_what_a_run_against_the_simulators_gives() {
    let root = workspace_root();
    let apps = apps();
    let registry = soar_core::Registry::from_inventory().unwrap_or_else(|error| panic!("{error}"));
    let functions: Vec<&str> = apps
        .iter()
        .flat_map(|app| app.functions.iter().map(|function| function.name))
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|error| panic!("tokio: {error}"));
    let fresh = runtime
        .block_on(samples::generate(&registry, &functions))
        .unwrap_or_else(|error| panic!("the sample calls: {error:#}"));
    for app in &apps {
        for function in &app.functions {
            let name = function.name;
            let dir = root.join(samples::sample_dir(app.name, name));
            let read = |file: &str| {
                std::fs::read_to_string(dir.join(file)).unwrap_or_else(|error| {
                    panic!(
                        "{}/{file}: {error} (run `cargo xtask package --write-samples`)",
                        dir.display()
                    )
                })
            };
            let (example_text, schema_text) =
                (read(samples::EXAMPLE_FILE), read(samples::SCHEMA_FILE));
            let example =
                Json::parse(&example_text).unwrap_or_else(|error| panic!("{name}: {error}"));
            // Every schema is the SDK's rule applied to its example, written as the SDK
            // writes it (json.dumps, indent=2): the original three byte for byte too.
            assert_eq!(
                schema_text,
                schema_of(&example).to_python_indented(),
                "{name}'s schema is not the one its example gives"
            );
            if ORIGINAL_FUNCTIONS.contains(&name) {
                assert!(
                    !fresh.contains_key(name),
                    "{name} keeps the original's samples"
                );
                continue;
            }
            assert_eq!(
                example_text,
                example.to_python_indented(),
                "{name}: as the SDK writes it"
            );
            let fresh_example = fresh
                .get(name)
                .unwrap_or_else(|| panic!("no sample call of {name}"));
            assert_eq!(
                schema_of(fresh_example).to_python_indented(),
                schema_text,
                "{name}'s result has changed shape: run `cargo xtask package --write-samples`"
            );
            assert_eq!(
                fresh_example.get("success"),
                Some(&Json::Bool(true)),
                "{name}"
            );
        }
    }
}

#[test]
fn packaging_uses_the_binary_scripts_build_static_makes() {
    let root = workspace_root();
    let script = std::fs::read_to_string(root.join("scripts/build-static"))
        .unwrap_or_else(|error| panic!("scripts/build-static: {error}"));
    assert!(
        script.contains("target=x86_64-unknown-linux-gnu")
            && script.contains("echo \"${CARGO_TARGET_DIR:-target}/$target/dist/soar-runner\""),
        "scripts/build-static prints the path xtask::package::static_binary_path expects"
    );
    let path = package::static_binary_path(&root);
    assert!(
        path.ends_with("x86_64-unknown-linux-gnu/dist/soar-runner"),
        "{}",
        path.display()
    );
    if !path.is_file() {
        eprintln!(
            "skipped: packaging the real binary ({} is not built; scripts/build-static takes minutes)",
            path.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("a temporary dir: {error}"));
    let app = app("fn_misp");
    let zip = package::write_package(
        &root,
        &app,
        "ibmresilient",
        &ImageRef::Tag,
        &path,
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error:#}"));
    let files = unzip(&zip);
    let tarball = untar(file(
        &files,
        &format!("fn_misp-{}.tar.gz", app.info.version),
    ));
    assert_eq!(
        tarball[0].2,
        std::fs::read(&path).unwrap_or_default(),
        "the static soar-runner goes into the tarball"
    );
}
