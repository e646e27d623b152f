//! The secret store (docs/design.md, *The daemon and its socket*): OIDC client registrations,
//! refresh tokens, container tokens and anything else that must survive a restart but never sit in
//! a readable file.
//!
//! Everything lives in one encrypted file, `secrets.bin` in the state dir, sealed with
//! ChaCha20-Poly1305 under a 32-byte key. The key is the only thing kept in the OS keyring (one
//! small entry, read once at [`SecretStore::open`]); with `secret_store = "file"`, or when no
//! keyring service exists on this machine, it is kept in a 0600 file `secrets.key` beside it.
//!
//! The store is an in-memory map of JSON values, written out whole (atomically) on each change.

mod file;
mod key;

use crate::config::SecretStoreKind;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

pub use key::KeySource;

/// The encrypted store's file name in the state dir.
pub const STORE_FILE: &str = "secrets.bin";
/// The key file's name (file mode and keyring fallback).
pub const KEY_FILE: &str = "secrets.key";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The state dir or the store file could not be created, read or written (full disk,
    /// read-only dir). The message names the path; nothing already stored was changed.
    #[error("secret store: {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The keyring exists but refused access (locked, prompt dismissed).
    #[error("secret store: the OS keyring refused access to rolecall's key ({0}); unlock the keyring and restart the daemon, or set secret_store = \"file\"")]
    KeyringLocked(String),
    /// The key file exists but cannot be used.
    #[error("secret store: key file {path} is unusable: {why}")]
    BadKeyFile { path: PathBuf, why: String },
    #[error("secret store: cannot encode entry '{key}': {why}")]
    Encode { key: String, why: String },
}

/// The encrypted secret store. Cheap to share (`Arc`); every method is synchronous and quick
/// (one small file write per change).
pub struct SecretStore {
    dir: PathBuf,
    key: Zeroizing<[u8; 32]>,
    key_source: KeySource,
    // The lock is held across the file write so that writes land in the order of changes.
    entries: Mutex<BTreeMap<String, serde_json::Value>>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.entries.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("SecretStore")
            .field("dir", &self.dir)
            .field("key", &"** redacted **")
            .field("key_source", &self.key_source)
            .field("entries", &n)
            .finish()
    }
}

impl SecretStore {
    /// Opens (or creates) the store in `state_dir`, reading its key once.
    ///
    /// A store file that cannot be decrypted (tampered, corrupt, or sealed under a key that is
    /// gone) is reported, renamed aside to `secrets.bin.corrupt-<epoch>`, and the store starts
    /// empty: a daemon must never fail to start because of it.
    pub fn open(state_dir: &Path, kind: SecretStoreKind) -> Result<Arc<SecretStore>, VaultError> {
        file::ensure_private_dir(state_dir)?;
        file::remove_stale_temps(state_dir);
        let (key, key_source) = key::load_or_create(state_dir, kind)?;
        let path = state_dir.join(STORE_FILE);
        let entries = match file::read_store(&path, &key)? {
            file::ReadOutcome::Missing => BTreeMap::new(),
            file::ReadOutcome::Entries(m) => m,
            file::ReadOutcome::Unreadable(why) => {
                let aside = file::move_aside(&path)?;
                tracing::error!(
                    file = %path.display(),
                    moved_to = %aside.display(),
                    "secret store could not be decrypted ({why}); it was moved aside and the store starts empty (sign in again)"
                );
                BTreeMap::new()
            }
        };
        tracing::debug!(dir = %state_dir.display(), key_source = ?key_source, entries = entries.len(), "secret store opened");
        Ok(Arc::new(SecretStore {
            dir: state_dir.to_path_buf(),
            key,
            key_source,
            entries: Mutex::new(entries),
        }))
    }

    /// Where the key came from (keyring, or the key file and why).
    pub fn key_source(&self) -> KeySource {
        self.key_source
    }

    /// The store file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(STORE_FILE)
    }

    /// The value under `key`, if present and of the expected shape. A value of another shape
    /// (written by an older version, say) reads as absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let map = self.lock();
        let v = map.get(key)?;
        match serde_json::from_value(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(entry = key, error = %e, "secret store entry has an unexpected shape; ignoring it");
                None
            }
        }
    }

    /// Stores `v` under `key` and writes the store out. On failure nothing changes, in memory
    /// or on disk.
    pub fn put<T: Serialize>(&self, key: &str, v: &T) -> Result<(), VaultError> {
        let value = serde_json::to_value(v).map_err(|e| VaultError::Encode {
            key: key.to_string(),
            why: e.to_string(),
        })?;
        let mut map = self.lock();
        let mut next = map.clone();
        next.insert(key.to_string(), value);
        self.persist(&next)?;
        *map = next;
        Ok(())
    }

    /// Removes `key` (absent is fine) and writes the store out.
    pub fn remove(&self, key: &str) -> Result<(), VaultError> {
        let mut map = self.lock();
        if !map.contains_key(key) {
            return Ok(());
        }
        let mut next = map.clone();
        next.remove(key);
        self.persist(&next)?;
        *map = next;
        Ok(())
    }

    /// Removes every key that starts with `prefix` (e.g. all of one source's entries).
    pub fn remove_prefix(&self, prefix: &str) -> Result<(), VaultError> {
        let mut map = self.lock();
        let mut next = map.clone();
        next.retain(|k, _| !k.starts_with(prefix));
        if next.len() == map.len() {
            return Ok(());
        }
        self.persist(&next)?;
        *map = next;
        Ok(())
    }

    /// The keys present (never the values): for status and tests.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, serde_json::Value>> {
        // A panic while holding the lock cannot leave the map half-changed (changes are swapped
        // in whole), so a poisoned lock is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, map: &BTreeMap<String, serde_json::Value>) -> Result<(), VaultError> {
        let plain = Zeroizing::new(serde_json::to_vec(map).map_err(|e| VaultError::Encode {
            key: "*".into(),
            why: e.to_string(),
        })?);
        let sealed = file::seal(&self.key, &plain);
        file::write_atomic(&self.dir, STORE_FILE, &sealed)
    }
}

#[cfg(test)]
mod tests;
