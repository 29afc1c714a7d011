//! `cargo xtask image`: the app's container image, built without a container daemon.
//!
//! One layer holds the static `soar-runner` (also reachable as `resilient-circuits`, the
//! name App Host's commands use), the build machine's CA certificates, user and group 1001
//! and the directories App Host mounts or writes. The image is written twice: as an OCI
//! image layout directory (what `skopeo copy oci:…` pushes, keeping the manifest digest) and
//! as a `docker load`-able archive. The types come from `oci-spec`, the layer from `tar` and
//! `flate2`, the digests from `ring`; every timestamp is the epoch and every JSON document
//! has sorted keys, so the same binary gives the same manifest digest.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, anyhow, bail};
use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, Platform, PlatformBuilder,
    RootFsBuilder,
};
use serde::Serialize;

/// The registry namespace App Host requires: images are `ibmresilient/<app>:<version>`.
pub const NAMESPACE: &str = "ibmresilient";

/// The user and group the app runs as, as in IBM's base image.
pub const APP_UID: u64 = 1001;

/// The runner in the image, and the second name IBM's entrypoint and App Host call it by.
pub const RUNNER_PATH: &str = "/usr/local/bin/soar-runner";
pub const RESILIENT_CIRCUITS_PATH: &str = "/usr/local/bin/resilient-circuits";

/// Where `cargo xtask image` writes, relative to the workspace root (beside the app zips).
pub const DIST_DIR: &str = "dist";

/// Where the CA bundle is read from on the build machine and placed in the image.
pub const CA_CERTIFICATES_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

/// `resilient-circuits run`, as IBM's entrypoint starts apps; the command stays separate
/// from the entrypoint so that `<runtime> run IMAGE selftest` works too.
pub const ENTRYPOINT: &[&str] = &[RESILIENT_CIRCUITS_PATH];
pub const CMD: &[&str] = &["run"];

/// The environment IBM's base image sets, plus the CA bundle's place for rustls.
pub const ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin"),
    ("APP_HOST_CONTAINER", "1"),
    ("APP_CONFIG_FILE", "/etc/rescircuits/app.config"),
    ("APP_LOG_DIR", "/var/log/rescircuits"),
    ("SSL_CERT_FILE", CA_CERTIFICATES_PATH),
];

/// The directories App Host mounts or the app writes, owned by [`APP_UID`]: the config,
/// files added in the UI, the log, and protected secrets (which the runner deletes after
/// reading, so it must own their directory).
pub const APP_DIRECTORIES: &[(&str, u32)] = &[
    ("etc/rescircuits", 0o775),
    ("etc/secrets", 0o770),
    ("var/log/rescircuits", 0o775),
    ("var/rescircuits", 0o775),
];

/// Every timestamp in the image (layer entries, config, history): the epoch, so the digest
/// depends on the contents only.
pub const CREATED: &str = "1970-01-01T00:00:00Z";

/// An image written by [`build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// `ibmresilient/<app>:<version>`.
    pub reference: String,
    /// The image manifest's digest, `sha256:<hex>`: what `--image-digest` pins and what a
    /// registry reports after `skopeo copy` from [`BuiltImage::oci_layout_dir`].
    pub manifest_digest: String,
    /// The image config's digest (the image id `docker images` shows).
    pub config_digest: String,
    /// The OCI image layout directory.
    pub oci_layout_dir: PathBuf,
    /// The `docker load`-able archive (docker-archive format; `podman load` reads it too).
    pub docker_archive: PathBuf,
    /// What a registry stores and a pull downloads: the gzip layer, config and manifest, bytes.
    pub compressed_size: u64,
    /// The layer unpacked, bytes.
    pub uncompressed_size: u64,
}

/// Builds the image `ibmresilient/<app>:<version>` from `binary` (the static `soar-runner`)
/// into `out_dir`: `image-<app>-<version>.oci/` and `image-<app>-<version>.docker.tar`.
pub fn build(app: &str, version: &str, binary: &Path, out_dir: &Path) -> Result<BuiltImage> {
    let runner = fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
    check_static_x86_64(&runner)
        .with_context(|| format!("{} cannot run in the image", binary.display()))?;
    let ca_certificates = fs::read(CA_CERTIFICATES_PATH).with_context(|| {
        format!("cannot read the CA certificates at {CA_CERTIFICATES_PATH} (Debian package ca-certificates)")
    })?;
    let image = assemble(app, version, &runner, &ca_certificates)?;
    fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let oci_layout_dir = out_dir.join(format!("image-{app}-{version}.oci"));
    let docker_archive = out_dir.join(format!("image-{app}-{version}.docker.tar"));
    write_oci_layout(&image, &oci_layout_dir)?;
    write_docker_archive(&image, &docker_archive)?;
    Ok(BuiltImage {
        reference: image.reference.clone(),
        manifest_digest: image.manifest.digest.clone(),
        config_digest: image.config.digest.clone(),
        oci_layout_dir,
        docker_archive,
        compressed_size: image.compressed_size(),
        uncompressed_size: image.uncompressed_layer_size,
    })
}

/// `cargo xtask image [--app APP] [--binary FILE]`: builds the static runner (unless
/// `--binary` names one) and each app's image (or APP's) into `dist/`.
pub fn command(arguments: &[String]) -> Result<ExitCode> {
    const USAGE: &str = "usage: cargo xtask image [--app APP] [--binary FILE]";
    let mut only_app = None;
    let mut binary = None;
    let mut rest = arguments.iter();
    while let Some(argument) = rest.next() {
        match argument.as_str() {
            "--app" => only_app = Some(rest.next().context(USAGE)?.clone()),
            "--binary" => binary = Some(PathBuf::from(rest.next().context(USAGE)?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => bail!("unknown argument {argument:?}\n{USAGE}"),
        }
    }
    let root = crate::workspace_root();
    let apps: Vec<crate::App> = crate::registered_apps()?
        .into_iter()
        .filter(|app| only_app.as_deref().is_none_or(|name| name == app.name))
        .collect();
    if apps.is_empty() {
        let known: Vec<&str> = crate::registered_apps()?
            .iter()
            .map(|app| app.name)
            .collect();
        bail!(
            "no app named {:?}; the apps are {}",
            only_app.unwrap_or_default(),
            known.join(", ")
        );
    }
    let binary = match binary {
        Some(binary) => binary,
        None => build_static_runner(&root)?,
    };
    for app in apps {
        let image = build(app.name, app.info.version, &binary, &root.join(DIST_DIR))?;
        println!(
            "{}\n  manifest digest {}\n  compressed {} bytes ({:.1} MiB), unpacked {} bytes\n  \
             OCI layout {}\n  docker archive {}",
            image.reference,
            image.manifest_digest,
            image.compressed_size,
            image.compressed_size as f64 / (1024.0 * 1024.0),
            image.uncompressed_size,
            relative(&root, &image.oci_layout_dir).display(),
            relative(&root, &image.docker_archive).display(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `scripts/build-static` (cargo caches it) and returns the static binary's path.
pub fn build_static_runner(root: &Path) -> Result<PathBuf> {
    let output = Command::new("bash")
        .arg(root.join("scripts/build-static"))
        .current_dir(root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run scripts/build-static")?;
    if !output.status.success() {
        bail!("scripts/build-static failed ({})", output.status);
    }
    let printed = String::from_utf8_lossy(&output.stdout);
    let path = printed
        .lines()
        .last()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .ok_or_else(|| anyhow!("scripts/build-static printed no path"))?;
    Ok(root.join(path))
}

fn relative<'a>(root: &Path, path: &'a Path) -> &'a Path {
    path.strip_prefix(root).unwrap_or(path)
}

/// The image in memory: its three blobs and what the archives need around them.
#[derive(Debug)]
struct Image {
    reference: String,
    version: String,
    layer: Blob,
    config: Blob,
    manifest: Blob,
    uncompressed_layer_size: u64,
}

/// A content-addressed blob.
#[derive(Debug)]
struct Blob {
    /// `sha256:<hex>`.
    digest: String,
    bytes: Vec<u8>,
}

/// One file system entry of the layer.
#[derive(Debug)]
struct LayerEntry {
    /// Relative to the root, without a leading `/`.
    path: String,
    kind: EntryKind,
    mode: u32,
    uid: u64,
}

#[derive(Debug)]
enum EntryKind {
    Directory,
    File(Vec<u8>),
    Symlink(&'static str),
}

impl Image {
    fn compressed_size(&self) -> u64 {
        [&self.layer, &self.config, &self.manifest]
            .iter()
            .map(|blob| blob.bytes.len() as u64)
            .sum()
    }

    fn blobs(&self) -> [&Blob; 3] {
        [&self.layer, &self.config, &self.manifest]
    }
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        Blob {
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }

    fn descriptor(&self, media_type: MediaType) -> Result<Descriptor> {
        let digest: oci_spec::image::Digest = self
            .digest
            .parse()
            .map_err(|error| anyhow!("digest {}: {error}", self.digest))?;
        Ok(Descriptor::new(media_type, self.bytes.len() as u64, digest))
    }
}

impl LayerEntry {
    fn directory(path: &str, mode: u32, uid: u64) -> LayerEntry {
        LayerEntry {
            path: path.to_string(),
            kind: EntryKind::Directory,
            mode,
            uid,
        }
    }

    fn file(path: &str, mode: u32, contents: Vec<u8>) -> LayerEntry {
        LayerEntry {
            path: path.to_string(),
            kind: EntryKind::File(contents),
            mode,
            uid: 0,
        }
    }
}

fn assemble(app: &str, version: &str, runner: &[u8], ca_certificates: &[u8]) -> Result<Image> {
    let entries = layer_entries(runner, ca_certificates);
    let tar = layer_tar(&entries).context("cannot write the image layer")?;
    let diff_id = sha256_digest(&tar);
    let uncompressed_layer_size = tar.len() as u64;
    let layer = Blob::new(gzip(&tar).context("cannot compress the image layer")?);

    let reference = format!("{NAMESPACE}/{app}:{version}");
    let config = Blob::new(canonical_json(&image_configuration(
        app, version, &diff_id,
    )?)?);
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor(MediaType::ImageConfig)?)
        .layers(vec![layer.descriptor(MediaType::ImageLayerGzip)?])
        .build()?;
    let manifest = Blob::new(canonical_json(&manifest)?);
    Ok(Image {
        reference,
        version: version.to_string(),
        layer,
        config,
        manifest,
        uncompressed_layer_size,
    })
}

fn layer_entries(runner: &[u8], ca_certificates: &[u8]) -> Vec<LayerEntry> {
    let root = |path: &str| LayerEntry::directory(path, 0o755, 0);
    let app_directory = |path: &str, mode: u32| LayerEntry::directory(path, mode, APP_UID);
    let runner_name = RUNNER_PATH.rsplit('/').next().unwrap_or(RUNNER_PATH);
    let mut entries = vec![
        root("etc"),
        LayerEntry::file("etc/group", 0o644, b"root:x:0:\nappuser:x:1001:\n".to_vec()),
        // Static glibc (2.34 and later) has the files and dns sources built in; the file
        // makes /etc/hosts win over DNS, as on a usual Linux host.
        LayerEntry::file(
            "etc/nsswitch.conf",
            0o644,
            b"passwd: files\ngroup: files\nhosts: files dns\n".to_vec(),
        ),
        LayerEntry::file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/sbin/nologin\nappuser:x:1001:1001:appuser:/nonexistent:/sbin/nologin\n"
                .to_vec(),
        ),
        root("etc/ssl"),
        root("etc/ssl/certs"),
        LayerEntry::file(
            CA_CERTIFICATES_PATH.trim_start_matches('/'),
            0o644,
            ca_certificates.to_vec(),
        ),
        LayerEntry::directory("tmp", 0o1777, 0),
        root("usr"),
        root("usr/local"),
        root("usr/local/bin"),
        LayerEntry {
            path: RESILIENT_CIRCUITS_PATH.trim_start_matches('/').to_string(),
            kind: EntryKind::Symlink(runner_name),
            mode: 0o777,
            uid: 0,
        },
        LayerEntry::file(RUNNER_PATH.trim_start_matches('/'), 0o755, runner.to_vec()),
        root("var"),
        root("var/log"),
    ];
    entries.extend(
        APP_DIRECTORIES
            .iter()
            .map(|(path, mode)| app_directory(path, *mode)),
    );
    // Parents before children, then name order: the same tar for the same inputs.
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries
}

fn layer_tar(entries: &[LayerEntry]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.uid);
        header.set_mtime(0);
        let data: &[u8] = match &entry.kind {
            EntryKind::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_path(format!("{}/", entry.path))?;
                &[]
            }
            EntryKind::File(contents) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_path(&entry.path)?;
                contents
            }
            EntryKind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_path(&entry.path)?;
                header.set_link_name(target)?;
                &[]
            }
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data)?;
    }
    builder.into_inner()
}

/// Level 9 costs about a second more than the default on a 10 MB binary and saves a few
/// hundred kilobytes on every pull. The gzip header's mtime stays 0 (flate2's default).
fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzBuilder::new().write(Vec::new(), Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()
}

fn image_configuration(app: &str, version: &str, diff_id: &str) -> Result<serde_json::Value> {
    let labels = [
        ("org.opencontainers.image.title", app),
        ("org.opencontainers.image.version", version),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value.to_string()))
    .collect::<std::collections::HashMap<_, _>>();
    let config = ConfigBuilder::default()
        .user(APP_UID.to_string())
        .env(
            ENV.iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>(),
        )
        .entrypoint(strings(ENTRYPOINT))
        .cmd(strings(CMD))
        .working_dir("/")
        .labels(labels)
        .build()?;
    let configuration = ImageConfigurationBuilder::default()
        .created(CREATED)
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id.to_string()])
                .build()?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(CREATED)
                .created_by(format!(
                    "cargo xtask image: {RUNNER_PATH}, CA certificates, user 1001"
                ))
                .build()?,
        ])
        .build()?;
    Ok(serde_json::to_value(configuration)?)
}

fn platform() -> Result<Platform> {
    Ok(PlatformBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .build()?)
}

/// `dir/oci-layout`, `dir/index.json` naming the manifest with the version as its tag
/// (`skopeo copy oci:DIR:VERSION …`), and `dir/blobs/sha256/*`.
fn write_oci_layout(image: &Image, dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("cannot create {}", blobs.display()))?;
    for blob in image.blobs() {
        let path = blobs.join(blob.hex());
        fs::write(&path, &blob.bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut manifest = image.manifest.descriptor(MediaType::ImageManifest)?;
    manifest.set_platform(Some(platform()?));
    manifest.set_annotations(Some(
        [(
            "org.opencontainers.image.ref.name".to_string(),
            image.version.clone(),
        )]
        .into_iter()
        .collect(),
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest])
        .build()?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()?;
    for (name, bytes) in [
        ("oci-layout", canonical_json(&layout)?),
        ("index.json", canonical_json(&index)?),
    ] {
        let path = dir.join(name);
        fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Docker's save format: `manifest.json` names the config, the tag and the layers (Docker
/// and Podman both unpack a gzip layer when loading).
fn write_docker_archive(image: &Image, path: &Path) -> Result<()> {
    let blob_path = |blob: &Blob| format!("blobs/sha256/{}", blob.hex());
    let manifest = serde_json::json!([{
        "Config": blob_path(&image.config),
        "RepoTags": [image.reference],
        "Layers": [blob_path(&image.layer)],
    }]);
    let mut entries = vec![
        LayerEntry::directory("blobs", 0o755, 0),
        LayerEntry::directory("blobs/sha256", 0o755, 0),
    ];
    entries.extend(
        [&image.layer, &image.config]
            .into_iter()
            .map(|blob| LayerEntry::file(&blob_path(blob), 0o644, blob.bytes.clone())),
    );
    entries.push(LayerEntry::file(
        "manifest.json",
        0o644,
        canonical_json(&manifest)?,
    ));
    let tar = layer_tar(&entries)
        .with_context(|| format!("cannot write the archive {}", path.display()))?;
    fs::write(path, tar).with_context(|| format!("cannot write {}", path.display()))
}

/// JSON with object keys in order: oci-spec keeps labels and annotations in hash maps,
/// whose order changes from run to run, and the digest must not.
fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>> {
    // serde_json's own map is ordered by key (the workspace does not enable preserve_order).
    let value = serde_json::to_value(value)?;
    Ok(serde_json::to_vec(&value)?)
}

fn sha256_digest(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

/// The image has no dynamic loader and only runs x86_64 (`architecture` says amd64): a
/// dynamically linked or foreign binary would only fail when App Host starts it.
fn check_static_x86_64(elf: &[u8]) -> Result<()> {
    const EM_X86_64: u16 = 62;
    const PT_INTERP: u32 = 3;
    let u16_at = |offset: usize| {
        elf.get(offset..offset + 2)
            .map(|bytes| u16::from_le_bytes([bytes[0], bytes[1]]))
    };
    let u32_at = |offset: usize| {
        elf.get(offset..offset + 4)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u64_at = |offset: usize| {
        elf.get(offset..offset + 8)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // ELF magic, 64-bit class, little-endian.
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        bail!("not a 64-bit little-endian ELF executable");
    }
    if u16_at(18) != Some(EM_X86_64) {
        bail!("not an x86_64 executable");
    }
    let truncated = || anyhow!("truncated ELF header");
    let program_headers = u64_at(32).ok_or_else(truncated)? as usize;
    let entry_size = usize::from(u16_at(54).ok_or_else(truncated)?);
    let count = usize::from(u16_at(56).ok_or_else(truncated)?);
    for index in 0..count {
        let kind = u32_at(program_headers + index * entry_size).ok_or_else(truncated)?;
        if kind == PT_INTERP {
            bail!(
                "dynamically linked (it names an interpreter); build it with scripts/build-static"
            );
        }
    }
    Ok(())
}
