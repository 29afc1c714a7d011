//! App Host's protected secrets: in an App Host container, `$NAME` in `app.config` is first
//! looked up in the file `/etc/secrets/NAME`, a compact JWE (`"alg":"dir"`, `"enc":"A256GCM"`)
//! encrypted with the symmetric JWK in `/etc/secrets/.jwk/key.jwk`, as resilient does it.
//!
//! Outside App Host (`APP_HOST_CONTAINER` not `1`, `true`, `yes` or `on`) nothing here is
//! read. `SOAR_SECRETS_DIR` names another directory than `/etc/secrets` (for tests, or a
//! container that mounts the secrets elsewhere).
//!
//! Errors name the file and the problem, never a decrypted value.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead;

use crate::secret::Secret;

/// The variable App Host sets in its containers.
pub const APP_HOST_VAR: &str = "APP_HOST_CONTAINER";
/// Names the secrets directory when it is not [`DEFAULT_SECRETS_DIR`].
pub const SECRETS_DIR_VAR: &str = "SOAR_SECRETS_DIR";
/// Where App Host mounts the secrets.
pub const DEFAULT_SECRETS_DIR: &str = "/etc/secrets";
/// The key, relative to the secrets directory.
const KEY_FILE: &str = ".jwk/key.jwk";

/// Whether this process runs in App Host: `APP_HOST_CONTAINER` is `1`, `true`, `yes` or `on`
/// in any case, the values resilient accepts.
pub fn in_app_host() -> bool {
    std::env::var(APP_HOST_VAR).is_ok_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// Where protected secrets are looked up, if anywhere.
#[derive(Debug, Clone)]
pub struct ProtectedSecrets {
    dir: Option<PathBuf>,
    /// The key's bytes or the problem with it, read at the first secret that needs it.
    key: std::sync::OnceLock<Result<Vec<u8>, String>>,
    /// Every secret as read by [`ProtectedSecrets::held`]: lookups answer from here and no
    /// longer read the directory (which is deleted once `app.config` is read).
    held: Option<std::collections::BTreeMap<String, Result<Secret, String>>>,
}

impl ProtectedSecrets {
    /// The secrets directory of App Host (or `SOAR_SECRETS_DIR`) when in App Host; none
    /// otherwise.
    pub fn from_process() -> ProtectedSecrets {
        if !in_app_host() {
            return ProtectedSecrets::none();
        }
        let dir = std::env::var_os(SECRETS_DIR_VAR)
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SECRETS_DIR));
        ProtectedSecrets::at(dir)
    }

    /// Secrets in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> ProtectedSecrets {
        ProtectedSecrets {
            dir: Some(dir.into()),
            key: std::sync::OnceLock::new(),
            held: None,
        }
    }

    /// No protected secrets: every `$NAME` is an environment variable.
    pub fn none() -> ProtectedSecrets {
        ProtectedSecrets {
            dir: None,
            key: std::sync::OnceLock::new(),
            held: None,
        }
    }

    /// The directory looked in, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The secret `name`: `None` when there is no file for it (or no directory at all), else
    /// the decrypted text or the problem, naming the file.
    pub fn lookup(&self, name: &str) -> Option<Result<String, String>> {
        if let Some(held) = &self.held {
            return held.get(name).map(|found| {
                found
                    .as_ref()
                    .map(|secret| secret.expose().to_string())
                    .map_err(String::clone)
            });
        }
        let dir = self.dir.as_deref()?;
        // A name is a variable name (checked by the caller), so it cannot leave the directory.
        let path = dir.join(name);
        if !path.is_file() {
            return None;
        }
        let key = self.key.get_or_init(|| read_key(&dir.join(KEY_FILE)));
        Some(read_secret(&path, key.as_deref()))
    }

    /// These secrets read into memory now, each decrypted or with its problem, so that a
    /// config read again later (a reload of `app.config` while serving) still finds them
    /// after the directory is deleted. Hidden files (the key's `.jwk`) are not secrets.
    pub fn held(&self) -> ProtectedSecrets {
        let mut held = std::collections::BTreeMap::new();
        if let Some(dir) = self.dir.as_deref() {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !entry.path().is_file() {
                    continue;
                }
                if let Some(found) = self.lookup(&name) {
                    held.insert(name, found.map(Secret::new));
                }
            }
        }
        ProtectedSecrets {
            dir: self.dir.clone(),
            key: std::sync::OnceLock::new(),
            held: Some(held),
        }
    }

    /// Deletes the secrets, as resilient does once `app.config` has been read, so that
    /// nothing else in the container can read them later. Returns whether there were any.
    /// Everything inside the directory goes; the directory itself too where its parent
    /// allows (App Host mounts it, and `/etc` is not the app's), as resilient ignores that.
    pub fn remove_dir(&self) -> std::io::Result<bool> {
        let Some(dir) = self.dir.as_deref().filter(|dir| dir.is_dir()) else {
            return Ok(false);
        };
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        let _ = std::fs::remove_dir(dir);
        Ok(true)
    }
}

fn read_secret(path: &Path, key: Result<&[u8], &String>) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("{} cannot be read: {}", path.display(), io_problem(&error)))?;
    // resilient takes the first line and drops its line ending.
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    let key = key.map_err(String::clone)?;
    decrypt(token, key).map_err(|problem| format!("{} {problem}", path.display()))
}

fn io_problem(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => error.to_string(),
    }
}

/// The bytes of the symmetric key in a JWK file (`"kty":"oct"`, `k` in base64url).
fn read_key(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("the key {shown} cannot be read: {}", io_problem(&error)))?;
    let jwk: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| format!("the key {shown} is not JSON (a JWK was expected)"))?;
    match jwk.get("kty").and_then(serde_json::Value::as_str) {
        Some("oct") => {}
        Some(other) => {
            return Err(format!(
                "the key {shown} has \"kty\":\"{other}\"; only symmetric (\"oct\") keys are supported"
            ));
        }
        None => return Err(format!("the key {shown} has no \"kty\"")),
    }
    let encoded = jwk
        .get("k")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("the key {shown} has no \"k\""))?;
    URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| format!("the key {shown} has a \"k\" that is not base64url"))
}

/// Decrypts a compact JWE with direct AES-GCM encryption. The problem reads after a file name.
fn decrypt(token: &str, key: &[u8]) -> Result<String, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, encrypted_key, iv_b64, ciphertext_b64, tag_b64] = parts[..] else {
        return Err(format!(
            "is not a compact JWE: it has {} parts separated by '.', not 5",
            parts.len()
        ));
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("has a header that is not base64url JSON")?;
    let field = |name: &str| header.get(name).and_then(serde_json::Value::as_str);
    if field("alg") != Some("dir") {
        return Err(format!(
            "uses the key management {:?}; only \"dir\" is supported",
            field("alg").unwrap_or("(none)")
        ));
    }
    if header.get("zip").is_some() {
        return Err("is compressed (\"zip\"), which is not supported".to_string());
    }
    let algorithm = match field("enc") {
        Some("A256GCM") => &aead::AES_256_GCM,
        Some("A128GCM") => &aead::AES_128_GCM,
        other => {
            return Err(format!(
                "uses the content encryption {:?}; only \"A256GCM\" and \"A128GCM\" are supported",
                other.unwrap_or("(none)")
            ));
        }
    };
    if !encrypted_key.is_empty() {
        return Err("has an encrypted key, which \"dir\" does not allow".to_string());
    }
    if key.len() != algorithm.key_len() {
        return Err(format!(
            "needs a {}-byte key for {}, but the key has {} bytes",
            algorithm.key_len(),
            field("enc").unwrap_or_default(),
            key.len()
        ));
    }
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| format!("has {what} that is not base64url"))
    };
    let iv = decode(iv_b64, "an initialisation vector")?;
    let mut sealed = decode(ciphertext_b64, "a ciphertext")?;
    let tag = decode(tag_b64, "an authentication tag")?;
    if tag.len() != aead::MAX_TAG_LEN {
        return Err(format!(
            "has a {}-byte authentication tag, not {}",
            tag.len(),
            aead::MAX_TAG_LEN
        ));
    }
    let nonce = aead::Nonce::try_assume_unique_for_key(&iv)
        .map_err(|_| format!("has a {}-byte initialisation vector, not 12", iv.len()))?;
    sealed.extend_from_slice(&tag);
    let key = aead::UnboundKey::new(algorithm, key)
        .map(aead::LessSafeKey::new)
        .map_err(|_| "cannot be decrypted: the key is unusable".to_string())?;
    // The additional authenticated data is the header exactly as it appears in the token.
    let plain = key
        .open_in_place(nonce, aead::Aad::from(header_b64.as_bytes()), &mut sealed)
        .map_err(|_| {
            format!(
                "does not decrypt with the key in {KEY_FILE} (a different key, or an altered token)"
            )
        })?;
    String::from_utf8(plain.to_vec()).map_err(|_| "does not decrypt to UTF-8 text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens and key made with jwcrypto 1.6.1, the library resilient decrypts with
    /// (`tests/fixtures/app_host_secrets/README.md`).
    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/app_host_secrets")
    }

    fn key() -> Vec<u8> {
        read_key(&fixtures().join(KEY_FILE)).expect("the fixture key reads")
    }

    fn token(name: &str) -> String {
        std::fs::read_to_string(fixtures().join(name))
            .expect("the fixture token reads")
            .trim()
            .to_string()
    }

    #[test]
    fn held_secrets_answer_after_their_directory_is_gone() {
        let copy = tempfile::tempdir().expect("temporary directory");
        let dir = copy.path().join("secrets");
        std::fs::create_dir_all(dir.join(".jwk")).expect("mkdir");
        for name in ["MISP_KEY", "API_SECRET", ".jwk/key.jwk"] {
            std::fs::copy(fixtures().join(name), dir.join(name)).expect("copy");
        }
        let held = ProtectedSecrets::at(&dir).held();
        assert_eq!(held.remove_dir().ok(), Some(true));
        assert_eq!(ProtectedSecrets::at(&dir).lookup("MISP_KEY"), None);
        assert_eq!(
            held.lookup("MISP_KEY"),
            Some(Ok("Fixture0MispKey0Not0Real0000000000000000".to_string()))
        );
        assert!(held.lookup("API_SECRET").is_some_and(|found| found.is_ok()));
        assert_eq!(held.lookup("ABSENT"), None);
        assert_eq!(held.lookup(".jwk"), None, "the key is not a secret");
        let shown = format!("{held:?}");
        assert!(
            !shown.contains("Fixture0MispKey"),
            "Debug shows no secret: {shown}"
        );
    }

    #[test]
    fn tokens_made_by_jwcrypto_decrypt_to_their_values() {
        let secrets = ProtectedSecrets::at(fixtures());
        assert_eq!(
            secrets.lookup("MISP_KEY"),
            Some(Ok("Fixture0MispKey0Not0Real0000000000000000".to_string()))
        );
        assert_eq!(
            secrets.lookup("API_SECRET"),
            Some(Ok("p@ss w0rd;with#special=chars&ünïcode".to_string()))
        );
    }

    #[test]
    fn a_name_without_a_file_or_without_a_directory_is_not_found() {
        assert_eq!(ProtectedSecrets::at(fixtures()).lookup("ABSENT"), None);
        assert_eq!(ProtectedSecrets::none().lookup("MISP_KEY"), None);
    }

    #[test]
    fn a_token_for_another_key_and_an_empty_file_are_problems_naming_the_file() {
        let secrets = ProtectedSecrets::at(fixtures());
        let wrong = secrets
            .lookup("WRONG_KEY")
            .expect("the file exists")
            .unwrap_err();
        assert!(wrong.ends_with("WRONG_KEY does not decrypt with the key in .jwk/key.jwk (a different key, or an altered token)"), "{wrong}");
        let empty = secrets
            .lookup("EMPTY")
            .expect("the file exists")
            .unwrap_err();
        assert!(empty.ends_with("EMPTY is empty"), "{empty}");
    }

    #[test]
    fn any_altered_part_fails_authentication() {
        let token = token("MISP_KEY");
        let parts: Vec<String> = token.split('.').map(str::to_string).collect();
        assert_eq!(decrypt(&parts.join("."), &key()).map(|_| ()), Ok(()));
        // The same header written without jwcrypto's spaces: still valid, but it is
        // authenticated as written, so the token no longer opens.
        let mut respaced = parts.clone();
        respaced[0] = URL_SAFE_NO_PAD.encode(r#"{"alg":"dir","enc":"A256GCM"}"#);
        assert_ne!(respaced[0], parts[0]);
        let problem = decrypt(&respaced.join("."), &key()).unwrap_err();
        assert!(problem.starts_with("does not decrypt"), "{problem}");
        for index in [2, 3, 4] {
            let mut altered = parts.clone();
            // Flip the first character of the part to another base64url character.
            let part = &mut altered[index];
            let first = part.remove(0);
            part.insert(0, if first == 'A' { 'B' } else { 'A' });
            let problem = decrypt(&altered.join("."), &key()).unwrap_err();
            assert!(
                problem.starts_with("does not decrypt"),
                "part {index}: {problem}"
            );
        }
    }

    #[test]
    fn unsupported_or_malformed_tokens_say_what_is_wrong() {
        let key = key();
        let header = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let cases = [
            ("a.b.c".to_string(), "has 3 parts"),
            (
                format!(
                    "{}..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
                    header(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#)
                ),
                "key management \"RSA-OAEP\"",
            ),
            (
                format!(
                    "{}..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
                    header(r#"{"alg":"dir","enc":"A128CBC-HS256"}"#)
                ),
                "content encryption \"A128CBC-HS256\"",
            ),
            (
                format!(
                    "{}..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
                    header(r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#)
                ),
                "compressed",
            ),
            (
                format!(
                    "{}..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
                    header(r#"{"alg":"dir","enc":"A128GCM"}"#)
                ),
                "needs a 16-byte key for A128GCM, but the key has 32 bytes",
            ),
            (
                format!(
                    "{}.AA.AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
                    header(r#"{"alg":"dir","enc":"A256GCM"}"#)
                ),
                "has an encrypted key",
            ),
            (
                format!(
                    "{}..AAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
                    header(r#"{"alg":"dir","enc":"A256GCM"}"#)
                ),
                "3-byte initialisation vector",
            ),
            (
                "!!..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA".to_string(),
                "header that is not base64url JSON",
            ),
        ];
        for (token, expected) in cases {
            let problem = decrypt(&token, &key).unwrap_err();
            assert!(problem.contains(expected), "{token}: {problem}");
        }
    }

    #[test]
    fn keys_that_are_not_symmetric_jwks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.jwk");
        for (text, expected) in [
            ("not json", "is not JSON"),
            (
                r#"{"kty":"RSA","n":"AQAB"}"#,
                "only symmetric (\"oct\") keys",
            ),
            (r#"{"k":"AAAA"}"#, "has no \"kty\""),
            (r#"{"kty":"oct"}"#, "has no \"k\""),
            (r#"{"kty":"oct","k":"***"}"#, "not base64url"),
        ] {
            std::fs::write(&path, text).unwrap();
            let problem = read_key(&path).unwrap_err();
            assert!(problem.contains(expected), "{text}: {problem}");
        }
        let missing = read_key(&dir.path().join("absent.jwk")).unwrap_err();
        assert!(
            missing.ends_with("cannot be read: it does not exist"),
            "{missing}"
        );
    }

    #[test]
    fn remove_dir_deletes_the_secrets_and_says_whether_they_were_there() {
        let dir = tempfile::tempdir().unwrap();
        let secrets_dir = dir.path().join("secrets");
        std::fs::create_dir_all(secrets_dir.join(".jwk")).unwrap();
        std::fs::write(secrets_dir.join("NAME"), "token").unwrap();
        let secrets = ProtectedSecrets::at(&secrets_dir);
        assert!(secrets.remove_dir().unwrap());
        assert!(!secrets_dir.exists());
        assert!(!secrets.remove_dir().unwrap());
        assert!(!ProtectedSecrets::none().remove_dir().unwrap());
    }

    /// App Host mounts the directory in `/etc`, which the app's user cannot write: its
    /// contents go and the directory is left without an error.
    #[cfg(unix)]
    #[test]
    fn remove_dir_empties_a_directory_it_cannot_delete() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("etc");
        let secrets_dir = parent.join("secrets");
        std::fs::create_dir_all(secrets_dir.join(".jwk")).unwrap();
        std::fs::write(secrets_dir.join(".jwk/key.jwk"), "{}").unwrap();
        std::fs::write(secrets_dir.join("NAME"), "token").unwrap();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o555)).unwrap();
        let removed = ProtectedSecrets::at(&secrets_dir).remove_dir();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(removed.unwrap());
        // As root the directory goes too; as anyone else it stays, empty.
        let left: Vec<_> = std::fs::read_dir(&secrets_dir)
            .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
