//! The AWS CLI's `aws login` cache: `<dir>/<sha256(login_session)>.json`, one JSON document:
//!
//! ```json
//! {"accessToken": {"accessKeyId", "secretAccessKey", "sessionToken", "accountId",
//!                  "expiresAt": "2026-12-04T10:15:00Z"},
//!  "tokenType": "aws_sigv4", "clientId": "arn:aws:signin:::devtools/same-device",
//!  "refreshToken", "idToken", "dpopKey": "-----BEGIN EC PRIVATE KEY-----…",
//!  "signInRegion" (newer CLIs)}
//! ```
//!
//! The file holds live credentials, a refresh token and the private key they are bound to: it
//! is read only when it is the user's own and private (0600), and rewritten the way botocore
//! does — a new file beside it, renamed over it — with the fields rolecall does not know kept.

use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The cache directory: the configured one, else `AWS_LOGIN_CACHE_DIRECTORY`, else
/// `~/.aws/login/cache`.
pub fn dir(configured: Option<&Path>, env: &crate::endpoints::EnvSnapshot) -> PathBuf {
    let home = || env.get("HOME").cloned().unwrap_or_default();
    let expand = |p: &str| match p.strip_prefix("~/") {
        Some(rest) => Path::new(&home()).join(rest),
        None => PathBuf::from(p),
    };
    if let Some(p) = configured {
        return expand(&p.to_string_lossy());
    }
    match crate::endpoints::env_var(env, "AWS_LOGIN_CACHE_DIRECTORY") {
        Some(p) => expand(p),
        None => Path::new(&home()).join(".aws/login/cache"),
    }
}

/// `<dir>/<sha256 hex of login_session>.json`.
pub fn file(dir: &Path, login_session: &str) -> PathBuf {
    use sha2::Digest;
    let key = hex(&sha2::Sha256::digest(login_session.as_bytes()));
    dir.join(format!("{key}.json"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Why a cache file cannot be used; `Missing` means no `aws login` session (yet).
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    Missing,
    Refused(String),
}

/// Reads the document, refusing a file another user owns or others can read.
pub fn read(path: &Path) -> Result<Value, ReadError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => {
            return Err(ReadError::Refused(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.file_type().is_file() {
        return Err(ReadError::Refused(format!(
            "refused: {} is not a regular file",
            path.display()
        )));
    }
    if meta.uid() != me {
        return Err(ReadError::Refused(format!(
            "refused: {} is owned by uid {}, not by you (uid {me})",
            path.display(),
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ReadError::Refused(format!(
            "refused: {} holds a refresh token and its key but is open to group or others (mode {mode:04o}); fix: chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    let text = std::fs::read(path)
        .map_err(|e| ReadError::Refused(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&text)
        .map_err(|_| ReadError::Refused(format!("{} is not a JSON document", path.display())))
}

/// A new 0600 file beside the cache file, made before Sign-In is asked: a refresh uses the
/// refresh token up, so a refresh whose answer could not be written back would end the session
/// for rolecall and the AWS CLI alike. Dropped without `commit`, it is removed.
pub struct Pending {
    file: Option<std::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
}

impl Pending {
    pub fn create(path: &Path) -> std::io::Result<Pending> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let nonce: u64 = rand::random();
        let tmp = dir.join(format!(".rolecall-{}-{nonce:x}.tmp", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        Ok(Pending {
            file: Some(file),
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Writes the document and renames it over the cache file.
    pub fn commit(mut self, doc: &Value) -> std::io::Result<()> {
        let mut f = self.file.take().ok_or(std::io::ErrorKind::Other)?;
        f.write_all(serde_json::to_string(doc)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&self.tmp, &self.path)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // After a commit the temporary name is gone already; otherwise it is removed.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Writes the document: a new 0600 file in the same directory, renamed over the old one.
pub fn write(path: &Path, doc: &Value) -> std::io::Result<()> {
    Pending::create(path)?.commit(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_file_name_is_the_sha256_of_the_session() {
        let f = file(Path::new("/c"), "arn:aws:iam::0123456789012:user/Admin");
        assert_eq!(f.parent(), Some(Path::new("/c")));
        let name = f.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 64 + 5);
        assert!(name.ends_with(".json"));
    }

    #[test]
    fn the_directory_follows_the_cli() {
        let env: crate::endpoints::EnvSnapshot = [("HOME".to_string(), "/h".to_string())]
            .into_iter()
            .collect();
        assert_eq!(dir(None, &env), PathBuf::from("/h/.aws/login/cache"));
        let mut env2 = env.clone();
        env2.insert("AWS_LOGIN_CACHE_DIRECTORY".into(), "~/x".into());
        assert_eq!(dir(None, &env2), PathBuf::from("/h/x"));
        assert_eq!(dir(Some(Path::new("/y")), &env2), PathBuf::from("/y"));
    }

    #[test]
    fn a_readable_file_is_refused_and_a_written_one_is_private() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.json");
        assert_eq!(read(&p), Err(ReadError::Missing));
        write(&p, &serde_json::json!({"refreshToken": "r", "other": 1})).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read(&p).unwrap()["other"], 1);
        // A pending write that is not committed leaves nothing behind.
        drop(Pending::create(&p).unwrap());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        match read(&p) {
            Err(ReadError::Refused(m)) => {
                assert!(m.contains("0644") && m.contains("chmod 600"), "{m}");
                assert!(!m.contains('\n'));
            }
            other => panic!("{other:?}"),
        }
    }
}
