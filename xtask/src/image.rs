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
    build_from(app, version, &runner, &ca_certificates, out_dir)
}

/// [`build`] from the runner's and the CA bundle's bytes.
fn build_from(
    app: &str,
    version: &str,
    runner: &[u8],
    ca_certificates: &[u8],
    out_dir: &Path,
) -> Result<BuiltImage> {
    let image = assemble(app, version, runner, ca_certificates)?;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use super::*;

    /// An ELF header for x86_64 with no program headers: static as far as the check goes.
    fn fake_static_runner() -> Vec<u8> {
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        elf[18..20].copy_from_slice(&62u16.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf.extend_from_slice(b"the rest of the runner");
        elf
    }

    const FAKE_CA: &[u8] = b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n";

    fn fake_image() -> Image {
        assemble("fn_misp", "1.2.3", &fake_static_runner(), FAKE_CA)
            .unwrap_or_else(|error| panic!("{error:#}"))
    }

    fn json(blob: &Blob) -> serde_json::Value {
        serde_json::from_slice(&blob.bytes).expect("the blob is JSON")
    }

    /// (path, kind, mode, uid, gid, link target or contents) of every layer entry, in order.
    fn layer_listing(layer: &Blob) -> Vec<(String, char, u32, u64, u64, Vec<u8>)> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer.bytes[..]));
        let mut listing = Vec::new();
        for entry in archive.entries().expect("a tar") {
            let mut entry = entry.expect("a tar entry");
            let header = entry.header().clone();
            let kind = match header.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Regular => 'f',
                tar::EntryType::Symlink => 'l',
                other => panic!("unexpected entry type {other:?}"),
            };
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).expect("entry contents");
            if let Ok(Some(target)) = header.link_name() {
                contents = target.to_string_lossy().as_bytes().to_vec();
            }
            assert_eq!(header.mtime().ok(), Some(0), "mtime of {:?}", header.path());
            listing.push((
                header
                    .path()
                    .expect("a path")
                    .to_string_lossy()
                    .into_owned(),
                kind,
                header.mode().expect("a mode"),
                header.uid().expect("a uid"),
                header.gid().expect("a gid"),
                contents,
            ));
        }
        listing
    }

    #[test]
    fn the_layer_holds_the_runner_its_second_name_certificates_users_and_app_directories_only() {
        let image = fake_image();
        let listing = layer_listing(&image.layer);
        let summary: Vec<(&str, char, u32, u64, u64)> = listing
            .iter()
            .map(|(path, kind, mode, uid, gid, _)| {
                (path.trim_end_matches('/'), *kind, *mode, *uid, *gid)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("etc", 'd', 0o755, 0, 0),
                ("etc/group", 'f', 0o644, 0, 0),
                ("etc/nsswitch.conf", 'f', 0o644, 0, 0),
                ("etc/passwd", 'f', 0o644, 0, 0),
                ("etc/rescircuits", 'd', 0o775, 1001, 1001),
                ("etc/secrets", 'd', 0o770, 1001, 1001),
                ("etc/ssl", 'd', 0o755, 0, 0),
                ("etc/ssl/certs", 'd', 0o755, 0, 0),
                ("etc/ssl/certs/ca-certificates.crt", 'f', 0o644, 0, 0),
                ("tmp", 'd', 0o1777, 0, 0),
                ("usr", 'd', 0o755, 0, 0),
                ("usr/local", 'd', 0o755, 0, 0),
                ("usr/local/bin", 'd', 0o755, 0, 0),
                ("usr/local/bin/resilient-circuits", 'l', 0o777, 0, 0),
                ("usr/local/bin/soar-runner", 'f', 0o755, 0, 0),
                ("var", 'd', 0o755, 0, 0),
                ("var/log", 'd', 0o755, 0, 0),
                ("var/log/rescircuits", 'd', 0o775, 1001, 1001),
                ("var/rescircuits", 'd', 0o775, 1001, 1001),
            ],
            "no shell, no libraries: the image is the runner and what it reads"
        );
        let contents = |wanted: &str| {
            listing
                .iter()
                .find(|(path, ..)| path == wanted)
                .map(|(.., contents)| contents.clone())
                .unwrap_or_else(|| panic!("{wanted} is in the layer"))
        };
        assert_eq!(contents("usr/local/bin/soar-runner"), fake_static_runner());
        assert_eq!(contents("usr/local/bin/resilient-circuits"), b"soar-runner");
        assert_eq!(contents("etc/ssl/certs/ca-certificates.crt"), FAKE_CA);
        let passwd = String::from_utf8(contents("etc/passwd")).expect("text");
        assert!(
            passwd
                .lines()
                .any(|line| line.starts_with("appuser:x:1001:1001:")),
            "{passwd}"
        );
        let group = String::from_utf8(contents("etc/group")).expect("text");
        assert!(
            group.lines().any(|line| line == "appuser:x:1001:"),
            "{group}"
        );
        assert_eq!(image.uncompressed_layer_size, {
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&image.layer.bytes[..])
                .read_to_end(&mut tar)
                .expect("gzip");
            tar.len() as u64
        });
    }

    #[test]
    fn the_config_runs_resilient_circuits_as_1001_with_app_hosts_environment() {
        let image = fake_image();
        let config = json(&image.config);
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["created"], CREATED);
        let run = &config["config"];
        assert_eq!(run["User"], "1001");
        assert_eq!(
            run["Entrypoint"],
            serde_json::json!(["/usr/local/bin/resilient-circuits"])
        );
        assert_eq!(run["Cmd"], serde_json::json!(["run"]));
        let env: Vec<&str> = run["Env"]
            .as_array()
            .expect("Env is a list")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        for wanted in [
            "APP_HOST_CONTAINER=1",
            "APP_CONFIG_FILE=/etc/rescircuits/app.config",
            "APP_LOG_DIR=/var/log/rescircuits",
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            "PATH=/usr/local/bin",
        ] {
            assert!(env.contains(&wanted), "{wanted} in {env:?}");
        }
        assert_eq!(run["Labels"]["org.opencontainers.image.version"], "1.2.3");
        assert_eq!(image.reference, "ibmresilient/fn_misp:1.2.3");

        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&image.layer.bytes[..])
            .read_to_end(&mut tar)
            .expect("gzip");
        assert_eq!(
            config["rootfs"],
            serde_json::json!({"type": "layers", "diff_ids": [sha256_digest(&tar)]}),
            "the diff id is the digest of the unpacked layer"
        );
    }

    #[test]
    fn the_manifest_names_the_config_and_the_gzip_layer_by_digest_and_size() {
        let image = fake_image();
        let manifest = json(&image.manifest);
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            manifest["config"],
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": image.config.digest,
                "size": image.config.bytes.len(),
            })
        );
        assert_eq!(
            manifest["layers"],
            serde_json::json!([{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": image.layer.digest,
                "size": image.layer.bytes.len(),
            }])
        );
        assert_eq!(image.manifest.digest, sha256_digest(&image.manifest.bytes));
        assert_eq!(
            image.compressed_size(),
            (image.layer.bytes.len() + image.config.bytes.len() + image.manifest.bytes.len())
                as u64
        );
    }

    /// The labels are a hash map in oci-spec; two maps in one process hash differently, so
    /// an unsorted serialisation would show here.
    #[test]
    fn the_same_inputs_give_the_same_manifest_digest() {
        let digests: Vec<String> = (0..16).map(|_| fake_image().manifest.digest).collect();
        assert!(
            digests.iter().all(|digest| *digest == digests[0]),
            "{digests:?}"
        );
        let other = assemble("fn_misp", "1.2.4", &fake_static_runner(), FAKE_CA).expect("an image");
        assert_ne!(
            other.manifest.digest, digests[0],
            "the version is in the config"
        );
    }

    #[test]
    fn build_writes_an_oci_layout_and_a_docker_archive_that_agree() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let built = build_from(
            "fn_misp",
            "1.2.3",
            &fake_static_runner(),
            FAKE_CA,
            dir.path(),
        )
        .unwrap_or_else(|error| panic!("{error:#}"));
        assert_eq!(built.reference, "ibmresilient/fn_misp:1.2.3");
        assert_eq!(
            built.oci_layout_dir,
            dir.path().join("image-fn_misp-1.2.3.oci")
        );

        let layout = &built.oci_layout_dir;
        let read_json = |path: &Path| -> serde_json::Value {
            serde_json::from_slice(&fs::read(path).expect("the file exists")).expect("JSON")
        };
        assert_eq!(
            read_json(&layout.join("oci-layout")),
            serde_json::json!({"imageLayoutVersion": "1.0.0"})
        );
        let index = read_json(&layout.join("index.json"));
        let entry = &index["manifests"][0];
        assert_eq!(entry["digest"], built.manifest_digest.as_str());
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            "1.2.3"
        );
        assert_eq!(
            entry["platform"],
            serde_json::json!({"architecture": "amd64", "os": "linux"})
        );
        let blob = |digest: &str| {
            let bytes = fs::read(
                layout
                    .join("blobs/sha256")
                    .join(digest.trim_start_matches("sha256:")),
            )
            .unwrap_or_else(|error| panic!("blob {digest}: {error}"));
            assert_eq!(sha256_digest(&bytes), digest, "a blob's name is its digest");
            bytes
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(&built.manifest_digest)).expect("JSON");
        let config_digest = manifest["config"]["digest"].as_str().expect("a digest");
        assert_eq!(config_digest, built.config_digest);
        blob(config_digest);
        let layer_digest = manifest["layers"][0]["digest"].as_str().expect("a digest");
        blob(layer_digest);
        let blob_sizes: u64 = fs::read_dir(layout.join("blobs/sha256"))
            .expect("the blobs")
            .map(|entry| entry.expect("an entry").metadata().expect("metadata").len())
            .sum();
        assert_eq!(blob_sizes, built.compressed_size);

        let mut archive = tar::Archive::new(fs::File::open(&built.docker_archive).expect("tar"));
        let mut files = BTreeMap::new();
        for entry in archive.entries().expect("a tar") {
            let mut entry = entry.expect("an entry");
            let path = entry.path().expect("a path").to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("contents");
            files.insert(path, bytes);
        }
        let docker_manifest: serde_json::Value =
            serde_json::from_slice(&files["manifest.json"]).expect("JSON");
        let hex = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        assert_eq!(
            docker_manifest,
            serde_json::json!([{
                "Config": hex(config_digest),
                "RepoTags": ["ibmresilient/fn_misp:1.2.3"],
                "Layers": [hex(layer_digest)],
            }])
        );
        assert_eq!(files[&hex(layer_digest)], blob(layer_digest));
        assert_eq!(files[&hex(config_digest)], blob(config_digest));

        let again = build_from(
            "fn_misp",
            "1.2.3",
            &fake_static_runner(),
            FAKE_CA,
            dir.path(),
        )
        .expect("a second build");
        assert_eq!(again.manifest_digest, built.manifest_digest);
        assert_eq!(
            fs::read_dir(layout.join("blobs/sha256"))
                .expect("blobs")
                .count(),
            3,
            "a rebuild leaves no stale blob"
        );
    }

    #[test]
    fn only_a_static_x86_64_executable_goes_in() {
        assert!(check_static_x86_64(&fake_static_runner()).is_ok());
        let message = |bytes: &[u8]| {
            check_static_x86_64(bytes)
                .map(|()| "accepted".to_string())
                .unwrap_or_else(|error| error.to_string())
        };
        assert_eq!(
            message(b"#!/bin/sh\n"),
            "not a 64-bit little-endian ELF executable"
        );
        let mut arm = fake_static_runner();
        arm[18..20].copy_from_slice(&183u16.to_le_bytes());
        assert_eq!(message(&arm), "not an x86_64 executable");
        // One program header, of type PT_INTERP: what a dynamically linked executable has.
        let mut dynamic = fake_static_runner();
        dynamic.truncate(64);
        dynamic[56..58].copy_from_slice(&1u16.to_le_bytes());
        dynamic.extend_from_slice(&3u32.to_le_bytes());
        dynamic.extend_from_slice(&[0; 52]);
        assert!(
            message(&dynamic).starts_with("dynamically linked"),
            "{}",
            message(&dynamic)
        );
        let mut truncated = fake_static_runner();
        truncated.truncate(64);
        truncated[56..58].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(message(&truncated), "truncated ELF header");
    }
}
