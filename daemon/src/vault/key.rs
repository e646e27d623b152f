//! The store's 32-byte key: one entry in the OS keyring, or a 0600 key file beside the store.
//!
//! The keyring entry is named after the state dir, so that two installations (a test's temporary
//! one and the user's, say) never share or overwrite each other's key.

use super::{file, VaultError, KEY_FILE};
use crate::config::SecretStoreKind;
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

pub(super) fn load_or_create(
    dir: &Path,
    kind: SecretStoreKind,
) -> Result<(Zeroizing<[u8; 32]>, KeySource), VaultError> {
    match kind {
        SecretStoreKind::File => Ok((from_file(dir)?, KeySource::File)),
        SecretStoreKind::Keyring => match from_keyring(dir)? {
            Some(k) => Ok((k, KeySource::Keyring)),
            None => Ok((from_file(dir)?, KeySource::FileFallback)),
        },
    }
}

fn fresh_key() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(k.as_mut());
    k
}

fn keyring_user(dir: &Path) -> String {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("secret-store-key {}", abs.display())
}

/// The key from the keyring, created on first use. `Ok(None)`: no keyring service exists on
/// this machine (no D-Bus session bus, no Secret Service provider), so the caller falls back to
/// the key file. A keyring that exists but refuses access is an error: falling back then would
/// seal new secrets under another key and orphan the ones already stored.
fn from_keyring(dir: &Path) -> Result<Option<Zeroizing<[u8; 32]>>, VaultError> {
    use keyring::Error as K;
    let unavailable = |why: String| {
        tracing::warn!(
            reason = %why,
            "no OS keyring service available; keeping the secret store's key in a 0600 file in the state dir instead (set secret_store = \"file\" to silence this)"
        );
        Ok(None)
    };
    let entry = match keyring::Entry::new(KEYRING_SERVICE, &keyring_user(dir)) {
        Ok(e) => e,
        Err(e) => return unavailable(describe(&e)),
    };
    match entry.get_secret() {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            if bytes.len() == 32 {
                let mut k = Zeroizing::new([0u8; 32]);
                k.copy_from_slice(&bytes);
                return Ok(Some(k));
            }
            // Not ours or damaged: a store sealed under it could not be read anyway.
            tracing::error!(
                len = bytes.len(),
                "the keyring entry for rolecall's key has the wrong length; replacing it (stored secrets are lost)"
            );
        }
        Err(K::NoEntry) => {}
        Err(K::NoStorageAccess(e)) => return Err(VaultError::KeyringLocked(e.to_string())),
        Err(K::PlatformFailure(e)) => return unavailable(e.to_string()),
        Err(K::NoDefaultStore) => return unavailable("no default credential store".into()),
        Err(e) => return Err(VaultError::KeyringLocked(describe(&e))),
    }
    let key = fresh_key();
    match entry.set_secret(key.as_ref()) {
        Ok(()) => Ok(Some(key)),
        Err(K::NoStorageAccess(e)) => Err(VaultError::KeyringLocked(e.to_string())),
        Err(K::PlatformFailure(e)) => unavailable(e.to_string()),
        Err(e) => Err(VaultError::KeyringLocked(describe(&e))),
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

fn from_file(dir: &Path) -> Result<Zeroizing<[u8; 32]>, VaultError> {
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
