//! Notices that `app.config` changed while `run` serves. The file is read by path every
//! `interval` and compared by content, so a swapped symlink (App Host mounts `app.config`
//! from a Kubernetes ConfigMap, which it replaces that way) is seen and a `touch` is not.
//!
//! A change is taken once the file reads the same twice in a row, so a file caught half
//! written is not judged; then `check` decides whether the new content can be served. A
//! content that fails the check is reported once, not at every poll.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Watches one file by path.
pub struct ConfigWatcher {
    path: PathBuf,
    interval: Duration,
    /// The content last taken or refused; `None` when the file could not be read.
    seen: Option<Vec<u8>>,
}

/// How often `app.config` is read: a reload starts within about two of these.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

impl ConfigWatcher {
    /// Watches `path`, whose content now is the one being served.
    pub fn new(path: PathBuf, interval: Duration) -> ConfigWatcher {
        let seen = std::fs::read(&path).ok();
        ConfigWatcher {
            path,
            interval,
            seen,
        }
    }

    /// Waits until the file holds new content that `check` accepts, and returns what
    /// `check` made of it. A refusal is handed to `refused` (with the check's reason) and
    /// the watch goes on; so does a file that cannot be read, reported the same way.
    pub async fn next_change<T, E: std::fmt::Display>(
        &mut self,
        mut check: impl FnMut(&Path) -> Result<T, E>,
        mut refused: impl FnMut(&str),
    ) -> T {
        loop {
            tokio::time::sleep(self.interval).await;
            let now = std::fs::read(&self.path);
            let now = match now {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    if self.seen.is_some() {
                        refused(&format!("cannot read {}: {error}", self.path.display()));
                    }
                    self.seen = None;
                    continue;
                }
            };
            if now == self.seen {
                continue;
            }
            // Settled: the same content one interval later.
            tokio::time::sleep(self.interval).await;
            if std::fs::read(&self.path).ok() != now {
                continue;
            }
            self.seen = now;
            match check(&self.path) {
                Ok(accepted) => return accepted,
                Err(reason) => refused(&reason.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(20);

    fn accept_text(path: &Path) -> Result<String, String> {
        let text = std::fs::read_to_string(path).map_err(|error| error.to_string())?;
        match text.starts_with("bad") {
            true => Err(format!("refused: {text}")),
            false => Ok(text),
        }
    }

    #[tokio::test]
    async fn a_touch_is_no_change_and_new_content_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.config");
        std::fs::write(&path, "one").unwrap();
        let mut watcher = ConfigWatcher::new(path.clone(), TICK);
        // Rewriting the same content: no change within a few polls.
        std::fs::write(&path, "one").unwrap();
        let waited = tokio::time::timeout(
            TICK * 6,
            watcher.next_change(accept_text, |reason| panic!("refused {reason}")),
        )
        .await;
        assert!(waited.is_err(), "the same content is no change: {waited:?}");
        std::fs::write(&path, "two").unwrap();
        let changed = tokio::time::timeout(
            Duration::from_secs(5),
            watcher.next_change(accept_text, |reason| panic!("refused {reason}")),
        )
        .await;
        assert_eq!(changed.as_deref(), Ok("two"));
    }

    #[tokio::test]
    async fn a_refused_content_is_reported_once_and_the_next_good_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.config");
        std::fs::write(&path, "one").unwrap();
        let mut watcher = ConfigWatcher::new(path.clone(), TICK);
        std::fs::write(&path, "bad one").unwrap();
        let mut reasons = Vec::new();
        let waited = tokio::time::timeout(
            TICK * 10,
            watcher.next_change(accept_text, |reason| reasons.push(reason.to_string())),
        )
        .await;
        assert!(waited.is_err());
        assert_eq!(reasons, ["refused: bad one"], "reported once, not per poll");
        std::fs::write(&path, "three").unwrap();
        let changed = tokio::time::timeout(
            Duration::from_secs(5),
            watcher.next_change(accept_text, |reason| panic!("refused {reason}")),
        )
        .await;
        assert_eq!(changed.as_deref(), Ok("three"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_swapped_symlink_is_a_change() {
        // Kubernetes' atomic writer: the file is a link through `..data`, repointed at once.
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first");
        let second = dir.path().join("second");
        std::fs::create_dir(&first).unwrap();
        std::fs::create_dir(&second).unwrap();
        std::fs::write(first.join("app.config"), "one").unwrap();
        std::fs::write(second.join("app.config"), "two").unwrap();
        let data = dir.path().join("..data");
        std::os::unix::fs::symlink(&first, &data).unwrap();
        let path = dir.path().join("app.config");
        std::os::unix::fs::symlink(data.join("app.config"), &path).unwrap();
        let mut watcher = ConfigWatcher::new(path.clone(), TICK);
        let swap = dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&second, &swap).unwrap();
        std::fs::rename(&swap, &data).unwrap();
        let changed = tokio::time::timeout(
            Duration::from_secs(5),
            watcher.next_change(accept_text, |reason| panic!("refused {reason}")),
        )
        .await;
        assert_eq!(changed.as_deref(), Ok("two"));
    }
}
