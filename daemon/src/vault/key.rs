//! The store's 32-byte key: one entry in the OS keyring, or a 0600 key file beside the store.
//!
//! Which of the two sealed the store is recorded in the store file's header (see `file`), and
//! `SecretStore::open` decides from it which key to look for: the functions here only fetch.
//!
//! The keyring entry is named after the state dir, so that two installations (a test's temporary
//! one and the user's, say) never share or overwrite each other's key.

use super::{file, VaultError, KEY_FILE};
use rand::RngCore;
use std::path::Path;
use zeroize::Zeroizing;

const KEYRING_SERVICE: &str = "rolecall";

/// Where the store's key is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The OS keyring (macOS Keychain, Windows Credential Manager, Secret Service).
    Keyring,
    /// `secrets.key`, because `secret_store = "file"`.
    File,
    /// `secrets.key`, because the keyring was asked for but no keyring service exists here.
    FileFallback,
}

/// What the keyring said about rolecall's key.
pub(super) enum Keyring {
    Found(Zeroizing<[u8; 32]>),
    /// The keyring answered: there is no (usable) entry.
    Missing,
    /// No keyring service answered (no session bus, no Secret Service provider, or one that
    /// failed just now). Cannot tell "none on this machine" from "not reachable right now".
    Unreachable(String),
}

impl Keyring {
    /// Unreachable also logs why, once per call site that cares.
    fn unreachable(why: String) -> Result<Self, VaultError> {
        tracing::warn!(reason = %why, "the OS keyring is not reachable");
        Ok(Keyring::Unreachable(why))
    }
}

pub(super) fn fresh_key() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(k.as_mut());
    k
}

fn keyring_user(dir: &Path) -> String {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("secret-store-key {}", abs.display())
}

/// The keyring entry for `dir`'s key. With the Secret Service, over a fresh connection each
/// time: the keyring crate's own default store connects once per process, and after the
/// Secret Service restarts (or if it was not up at that moment) it would fail for the rest of
/// the daemon's life, which would turn a short outage into one that only a restart ends.
#[cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
fn entry(dir: &Path) -> Result<keyring_core::Entry, String> {
    use keyring_core::api::CredentialStoreApi as _;
    let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| describe(&e))?;
    store
        .build(KEYRING_SERVICE, &keyring_user(dir), None)
        .map_err(|e| describe(&e))
}

#[cfg(not(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
)))]
fn entry(dir: &Path) -> Result<keyring::Entry, String> {
    keyring::Entry::new(KEYRING_SERVICE, &keyring_user(dir)).map_err(|e| describe(&e))
}

/// Reads the key from the keyring (never creates one). A keyring that exists but refuses
/// access (locked, prompt dismissed) is an error.
pub(super) fn keyring_get(dir: &Path) -> Result<Keyring, VaultError> {
    use keyring::Error as K;
    let entry = match entry(dir) {
        Ok(e) => e,
        Err(why) => return Keyring::unreachable(why),
    };
    match entry.get_secret() {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            if bytes.len() == 32 {
                let mut k = Zeroizing::new([0u8; 32]);
                k.copy_from_slice(&bytes);
                return Ok(Keyring::Found(k));
            }
            // Not ours or damaged: a store sealed under it could not be read anyway.
            tracing::error!(
                len = bytes.len(),
                "the keyring entry for rolecall's key has the wrong length; it will be replaced"
            );
            Ok(Keyring::Missing)
        }
        Err(K::NoEntry) => Ok(Keyring::Missing),
        Err(K::NoStorageAccess(e)) => Err(VaultError::KeyringLocked(e.to_string())),
        Err(K::PlatformFailure(e)) => Keyring::unreachable(e.to_string()),
        Err(K::NoDefaultStore) => Keyring::unreachable("no default credential store".into()),
        Err(e) => Err(VaultError::KeyringLocked(describe(&e))),
    }
}

/// Stores a fresh key in the keyring. `Found` with the new key, or `Unreachable`.
pub(super) fn keyring_create(dir: &Path) -> Result<Keyring, VaultError> {
    use keyring::Error as K;
    let entry = match entry(dir) {
        Ok(e) => e,
        Err(why) => return Keyring::unreachable(why),
    };
    let key = fresh_key();
    match entry.set_secret(key.as_ref()) {
        Ok(()) => Ok(Keyring::Found(key)),
        Err(K::NoStorageAccess(e)) => Err(VaultError::KeyringLocked(e.to_string())),
        Err(K::PlatformFailure(e)) => Keyring::unreachable(e.to_string()),
        Err(K::NoDefaultStore) => Keyring::unreachable("no default credential store".into()),
        Err(e) => Err(VaultError::KeyringLocked(describe(&e))),
    }
}

/// The key from the keyring, created when the keyring has none.
pub(super) fn keyring_get_or_create(dir: &Path) -> Result<Keyring, VaultError> {
    match keyring_get(dir)? {
        Keyring::Missing => keyring_create(dir),
        other => Ok(other),
    }
}

/// A keyring error in words, never with the data some variants carry.
fn describe(e: &keyring::Error) -> String {
    use keyring::Error as K;
    match e {
        K::PlatformFailure(p) | K::NoStorageAccess(p) => p.to_string(),
        K::NoEntry => "no entry".into(),
        K::BadEncoding(_) | K::BadDataFormat(..) => "entry has an unexpected format".into(),
        K::NoDefaultStore => "no default credential store".into(),
        other => {
            let s = other.to_string();
            s.lines().next().unwrap_or("keyring error").to_string()
        }
    }
}

/// The key from `secrets.key`, created (0600) when the file does not exist.
pub(super) fn file_key(dir: &Path) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            if bytes.len() != 32 {
                return Err(VaultError::BadKeyFile {
                    path,
                    why: format!("expected 32 bytes, found {}", bytes.len()),
                });
            }
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o077 != 0 {
                // Someone widened it; narrow it again rather than refuse to start.
                tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "key file was readable by others; resetting it to 0600");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                    |e| VaultError::Io {
                        what: "cannot make private (0600)",
                        path: path.clone(),
                        source: e,
                    },
                )?;
            }
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(&bytes);
            Ok(k)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = fresh_key();
            file::write_atomic(dir, KEY_FILE, key.as_ref())?;
            Ok(key)
        }
        Err(e) => Err(VaultError::Io {
            what: "cannot read",
            path,
            source: e,
        }),
    }
}

/// Removes `secrets.key` once the store no longer needs it (moved into the keyring).
pub(super) fn remove_key_file(dir: &Path) {
    let path = dir.join(KEY_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            tracing::info!(file = %path.display(), "removed the key file the store no longer uses")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot remove the old key file")
        }
    }
}
