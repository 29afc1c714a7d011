//! The container image `cargo xtask image` builds, run as App Host runs it: under podman
//! (host network, user 1001, `resilient-circuits run` with the config mounted at
//! `/etc/rescircuits/app.config`), and unpacked into a directory and run from there as
//! user 1001, which works where containers cannot run.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use xtask::image::BuiltImage;

use super::support::{Harness, Runner, RunnerOptions, repo_root};
use super::{WAIT, completed_results, expect_completed, invoke_many, wait_until};

/// The fn_misp image, built once per test run from the static runner (cargo caches it).
fn built_image() -> &'static BuiltImage {
    static IMAGE: OnceLock<BuiltImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let root = repo_root();
        let binary = xtask::image::build_static_runner(&root)
            .unwrap_or_else(|error| panic!("building the static runner: {error:#}"));
        let apps = xtask::registered_apps().unwrap_or_else(|error| panic!("{error:#}"));
        let app = apps
            .iter()
            .find(|app| app.name == "fn_misp")
            .expect("fn_misp is registered");
        let out_dir = image_dir();
        xtask::image::build(app.name, app.info.version, &binary, &out_dir)
            .unwrap_or_else(|error| panic!("building the image: {error:#}"))
    })
}

/// `<target>/e2e-image/<pid>`, one per test process (they may run at once); the directories
/// of processes that have ended are removed.
fn image_dir() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary has a path");
    let parent = test_binary
        .ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps")
        .join("e2e-image");
    if let Ok(entries) = std::fs::read_dir(&parent) {
        for entry in entries.flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    parent.join(std::process::id().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_podman_the_image_serves_a_call_passes_selftest_and_drains_on_stop() {
    let image = built_image();
    let podman = match Podman::ready(image) {
        Ok(podman) => podman,
        Err(why) => {
            println!(
                "skipped: {why}; the_unpacked_image_serves_a_call_as_user_1001 runs the image's \
                 binary without a container"
            );
            return;
        }
    };
    let harness = Harness::start().await;
    let options = RunnerOptions {
        num_workers: 4,
        ..RunnerOptions::default()
    };
    let config = harness.write_config("image", &options);
    // MISP by a name only the container's /etc/hosts knows; SOAR and the broker by
    // `localhost`: a static glibc must resolve both.
    // No cafile: SOAR's and the broker's CAs are trusted through the image's bundle
    // (SSL_CERT_FILE), replaced here by one holding them, as a customer's CA would be.
    let text = std::fs::read_to_string(&config).expect("the config");
    let misp_url = harness.misp.url().to_string();
    assert!(misp_url.contains("127.0.0.1"), "{misp_url}");
    let text: String = text
        .replace(&misp_url, &misp_url.replace("127.0.0.1", "misp-sim.test"))
        .lines()
        .filter(|line| !line.starts_with("cafile=") && !line.starts_with("stomp_cafile="))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&config, text).expect("rewrite the config");
    let bundle = harness.dir.path().join("ca-bundle.pem");
    let read = |path: &Path| std::fs::read_to_string(path).expect("a CA certificate");
    std::fs::write(
        &bundle,
        read(&harness.dir.path().join("soar-ca.pem")) + &read(&harness.broker.ca),
    )
    .expect("write the CA bundle");

    let name = format!("soar-e2e-image-{}", harness.org_id);
    let container = podman.run_detached(
        &name,
        &[
            "--network=host".to_string(),
            "--add-host=misp-sim.test:127.0.0.1".to_string(),
            volume(&bundle, Path::new(xtask::image::CA_CERTIFICATES_PATH)),
            volume(&config, Path::new("/etc/rescircuits/app.config")),
            podman.image_id.clone(),
        ],
    );
    container.wait_for_log("has started successfully", WAIT);

    let (_, replies) = harness.search_once("203.0.113.9").await;
    completed_results(&replies);
    assert!(
        harness.misp.request_count() > 0,
        "the call reached MISP by its name in /etc/hosts"
    );

    // App Host's "Test Configuration": the selftest, by the name IBM's image answers to.
    let selftest = podman.output(&["exec", &name, "resilient-circuits", "selftest"]);
    assert!(
        selftest.status.success(),
        "selftest in the container: {selftest:?}"
    );

    harness.misp.set_latency(Duration::from_millis(1500));
    let driver = harness.driver().await;
    let before = harness.misp.request_count();
    let ids = invoke_many(
        &driver,
        "fn_misp",
        "misp_create_event",
        3,
        |index| json!({ "misp_event_name": format!("image drain {index}") }),
    )
    .await;
    wait_until(WAIT, || harness.misp.request_count() >= before + 3).await;
    let stop = podman.output(&["stop", "--time", "30", &name]);
    assert!(stop.status.success(), "podman stop: {stop:?}");
    let exit_code = podman.output(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(
        String::from_utf8_lossy(&exit_code.stdout).trim(),
        "0",
        "the runner exits 0 after draining; its log:\n{}",
        container.log()
    );
    expect_completed(&driver, &ids, Duration::from_secs(5)).await;
    assert_eq!(
        harness.misp.events().len(),
        3,
        "the calls in flight at `podman stop` finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unpacked_image_serves_a_call_as_user_1001() {
    let image = built_image();
    let rootfs = tempfile::tempdir().expect("a temporary directory");
    open_to_everyone(rootfs.path());
    let is_root = is_root();
    let config_json = unpack(&image.oci_layout_dir, rootfs.path(), is_root);
    let root = rootfs.path();
    assert_eq!(
        std::fs::read_link(root.join("usr/local/bin/resilient-circuits")).ok(),
        Some(PathBuf::from("soar-runner"))
    );
    assert!(!root.join("bin").exists(), "no shell in the image");
    if is_root {
        let log_dir = std::fs::metadata(root.join("var/log/rescircuits")).expect("the log dir");
        assert_eq!((log_dir.uid(), log_dir.gid()), (1001, 1001));
    } else {
        println!("not root: the runner runs as this user, not as 1001");
    }

    let harness = Harness::start().await;
    let config = harness.write_config("unpacked", &RunnerOptions::default());
    open_to_everyone(harness.dir.path());
    // The image's environment, with its paths moved under the unpacked root.
    let env: Vec<(String, String)> = config_json["config"]["Env"]
        .as_array()
        .expect("the image sets Env")
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| {
            let value = match name {
                "APP_CONFIG_FILE" => config.display().to_string(),
                "APP_LOG_DIR" | "SSL_CERT_FILE" | "PATH" => root
                    .join(value.trim_start_matches('/'))
                    .display()
                    .to_string(),
                _ => value.to_string(),
            };
            (name.to_string(), value)
        })
        .collect();
    let entrypoint = root.join(
        config_json["config"]["Entrypoint"][0]
            .as_str()
            .expect("an entrypoint")
            .trim_start_matches('/'),
    );
    let command = |args: &[&str], stderr: Stdio| {
        let mut command = Command::new(&entrypoint);
        command
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(name, value)| (name, value)))
            .current_dir(root)
            .stdout(Stdio::piped())
            .stderr(stderr);
        if is_root {
            command.uid(1001).gid(1001);
        }
        command
    };

    let log_path = harness.dir.path().join("unpacked.log");
    let log = std::fs::File::create(&log_path).expect("the log file");
    let mut runner = Runner::watch(
        command(&["run"], Stdio::from(log))
            .spawn()
            .expect("the runner starts"),
        log_path,
    );
    runner.wait_for_log("has started successfully", WAIT);
    let (_, replies) = harness.search_once("198.51.100.7").await;
    completed_results(&replies);
    if is_root {
        let written = std::fs::metadata(root.join("var/log/rescircuits/app.log"))
            .expect("the runner writes app.log into the image's log directory");
        assert_eq!(written.uid(), 1001, "the runner ran as user 1001");
    }

    let selftest = command(&["selftest"], Stdio::piped())
        .output()
        .expect("selftest runs");
    assert!(selftest.status.success(), "selftest: {selftest:?}");

    runner.terminate();
    let status = runner.wait_exit(WAIT);
    assert!(status.success(), "{status:?}; log:\n{}", runner.log());
}

/// podman from Debian, set up as the recipe that works on this machine type: the `runc`
/// runtime (crun fails on setrlimit and hybrid cgroups), no default ulimits, cgroupfs.
struct Podman {
    _dir: tempfile::TempDir,
    containers_conf: PathBuf,
    /// The loaded image, removed again at the end (unless a container still uses it).
    image_id: String,
}

impl Podman {
    /// Loads the image's docker archive and runs it once; `Err` says why containers cannot
    /// run here.
    fn ready(image: &BuiltImage) -> Result<Podman, String> {
        let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
        let containers_conf = dir.path().join("containers.conf");
        std::fs::write(
            &containers_conf,
            "[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = \"cgroupfs\"\n",
        )
        .map_err(|error| error.to_string())?;
        let podman = Podman {
            _dir: dir,
            containers_conf,
            image_id: image
                .config_digest
                .trim_start_matches("sha256:")
                .to_string(),
        };
        let failed = |what: &str, output: Result<Output, std::io::Error>| match output {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => Err(format!(
                "{what} failed here: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => Err(format!(
                "{what} cannot run ({error}); install podman and runc"
            )),
        };
        failed(
            "podman load",
            podman
                .command()
                .args(["load", "--quiet", "--input"])
                .arg(&image.docker_archive)
                .output(),
        )?;
        failed(
            "podman run",
            podman
                .command()
                .args(["run", "--rm", "--network=host"])
                .arg(&podman.image_id)
                .arg("functions")
                .output(),
        )?;
        Ok(podman)
    }

    fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command
            .env("CONTAINERS_CONF", &self.containers_conf)
            .args(["--runtime", "runc"]);
        command
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("podman {args:?}: {error}"))
    }

    fn run_detached(&self, name: &str, args: &[String]) -> Container<'_> {
        let output = self
            .command()
            .args(["run", "--detach", "--name", name])
            .args(args)
            .output()
            .expect("podman runs");
        assert!(output.status.success(), "podman run: {output:?}");
        Container {
            podman: self,
            name: name.to_string(),
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.command().args(["rmi", &self.image_id]).output();
    }
}

/// A container that is removed when the test ends, however it ends.
struct Container<'a> {
    podman: &'a Podman,
    name: String,
}

impl Container<'_> {
    fn log(&self) -> String {
        let output = self.podman.output(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return;
            }
            let running =
                self.podman
                    .output(&["inspect", "--format", "{{.State.Running}}", &self.name]);
            if String::from_utf8_lossy(&running.stdout).trim() == "false" {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the container never logged '{needle}'; its log:\n{}",
            self.log()
        );
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self
            .podman
            .command()
            .args(["rm", "--force", "--time", "0", &self.name])
            .output();
    }
}

/// Unpacks the image in an OCI layout (index, manifest, layers in order) into `root`, with
/// the layers' owners when `with_owners`; returns the image config.
fn unpack(layout: &Path, root: &Path, with_owners: bool) -> Value {
    let read_json = |path: PathBuf| -> Value {
        let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{path:?}: {error}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|error| panic!("{path:?}: {error}"))
    };
    let blob = |digest: &Value| {
        layout.join("blobs/sha256").join(
            digest
                .as_str()
                .expect("a digest")
                .trim_start_matches("sha256:"),
        )
    };
    let index = read_json(layout.join("index.json"));
    let manifest = read_json(blob(&index["manifests"][0]["digest"]));
    for layer in manifest["layers"].as_array().expect("layers") {
        let file = std::fs::File::open(blob(&layer["digest"])).expect("the layer");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(with_owners);
        archive.unpack(root).expect("the layer unpacks");
    }
    read_json(blob(&manifest["config"]["digest"]))
}

fn volume(host: &Path, container: &Path) -> String {
    format!("--volume={}:{}:ro", host.display(), container.display())
}

/// Temporary directories are 0700; user 1001 has to read the config and CAs in them.
fn open_to_everyone(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the directory");
}

/// Whether this process may switch to user 1001: /proc/self belongs to the effective user.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|metadata| metadata.uid() == 0)
}
