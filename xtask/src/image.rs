//! `cargo xtask image`: the app's container image, built without a container daemon.
//!
//! Writes an OCI image layout directory and a `docker load`-able archive holding only the
//! static `soar-runner`, CA certificates, user and group 1001 and the directories App Host
//! mounts or writes.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// An image written by [`build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// `ibmresilient/<app>:<version>`.
    pub reference: String,
    /// The image manifest's digest, `sha256:<hex>`.
    pub manifest_digest: String,
    /// The OCI image layout directory.
    pub oci_layout_dir: PathBuf,
    /// The `docker load`-able archive (docker-archive format).
    pub docker_archive: PathBuf,
    /// What a registry stores: the gzip-compressed layer, the config and the manifest, bytes.
    pub compressed_size: u64,
}

/// Builds the image `ibmresilient/<app>:<version>` from `binary` into `out_dir`.
pub fn build(app: &str, version: &str, binary: &Path, out_dir: &Path) -> Result<BuiltImage> {
    let _ = (app, version, binary, out_dir);
    bail!("not yet implemented")
}
