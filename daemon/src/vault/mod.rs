//! The secret store (docs/design.md, *The daemon and its socket*): OIDC client registrations,
//! refresh tokens, container tokens and anything else that must survive a restart but never sit in
//! a readable file.
//!
//! Everything lives in one encrypted file, `secrets.bin` in the state dir, sealed with
//! ChaCha20-Poly1305 under a 32-byte key. The key is the only thing kept in the OS keyring (one
//! small entry, read once at [`SecretStore::open`]); with `secret_store = "file"`, or when no
//! keyring service answers and no store sealed with a keyring key exists yet, it is kept in a
//! 0600 file `secrets.key` beside it.
//!
//! The store file's header records which key sealed it. A store sealed with the keyring's key
//! is never given up because the keyring does not answer (a Secret Service that is restarting
//! looks exactly like one that does not exist): opening fails with a retryable error and the
//! daemon retries. The store moves between the two kinds of key only in the direction the
//! config names (`secret_store`), and only with both keys in hand, so that nothing is lost.
//!
//! The store is an in-memory map of JSON values, written out whole (atomically) on each change.
//! Its strings are wiped from memory when a map is dropped.

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
    /// The store was sealed with the keyring's key and no keyring service answers now. Not
    /// final: the keyring may be starting or restarting; the daemon retries.
    #[error("secret store: the OS keyring does not answer ({0}) and the store was sealed with the key kept there; rolecall keeps the store and retries until the keyring is back (start or unlock it; nothing is lost)")]
    KeyringUnavailable(String),
    /// The keyring exists but refused access (locked, prompt dismissed).
    #[error("secret store: the OS keyring refused access to rolecall's key ({0}); unlock the keyring and restart the daemon, or set secret_store = \"file\"")]
    KeyringLocked(String),
    /// The key file exists but cannot be used.
    #[error("secret store: key file {path} is unusable: {why}")]
    BadKeyFile { path: PathBuf, why: String },
    #[error("secret store: cannot encode entry '{key}': {why}")]
    Encode { key: String, why: String },
}

impl VaultError {
    /// Whether opening again later may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(self, VaultError::KeyringUnavailable(_))
    }
}

/// The in-memory entries. Dropping a map (the old one after each change, the last one at exit)
/// overwrites every string in it, where refresh tokens, client secrets and container tokens are.
#[derive(Clone, Default)]
struct Entries(BTreeMap<String, serde_json::Value>);

impl Drop for Entries {
    fn drop(&mut self) {
        for v in self.0.values_mut() {
            wipe(v);
        }
    }
}

/// Overwrites every string in `v` (and its keys' values, recursively) with zeros.
fn wipe(v: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(wipe),
        serde_json::Value::Object(o) => o.values_mut().for_each(wipe),
        _ => {}
    }
}

/// The encrypted secret store. Cheap to share (`Arc`); every method is synchronous and quick
/// (one small file write per change).
pub struct SecretStore {
    dir: PathBuf,
    key: Zeroizing<[u8; 32]>,
    key_source: KeySource,
    // The lock is held across the file write so that writes land in the order of changes.
    entries: Mutex<Entries>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.entries.lock().map(|m| m.0.len()).unwrap_or(0);
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
    /// gone for good) is reported, renamed aside to `secrets.bin.corrupt-<epoch>` (the newest
    /// few are kept), and the store starts empty: a daemon must never fail to start because of
    /// it. A key that is merely unreachable (keyring not answering, or locked) is an error
    /// instead, and the file is left as it is.
    pub fn open(state_dir: &Path, kind: SecretStoreKind) -> Result<Arc<SecretStore>, VaultError> {
        file::ensure_private_dir(state_dir)?;
        file::remove_stale_temps(state_dir);
        file::prune_corrupt(state_dir);
        let path = state_dir.join(STORE_FILE);
        let plan = plan(state_dir, &path, kind)?;
        let mut entries = match file::read_store(&path, &plan.read_key)? {
            file::ReadOutcome::Missing => Entries::default(),
            file::ReadOutcome::Entries(m) => Entries(m),
            file::ReadOutcome::Unreadable(why) => {
                let aside = file::move_aside(&path)?;
                file::prune_corrupt(state_dir);
                tracing::error!(
                    file = %path.display(),
                    moved_to = %aside.display(),
                    "secret store could not be decrypted ({why}); it was moved aside and the store starts empty (sign in again)"
                );
                Entries::default()
            }
        };
        let store = SecretStore {
            dir: state_dir.to_path_buf(),
            key: plan.key,
            key_source: plan.source,
            entries: Mutex::new(Entries::default()),
        };
        if plan.reseal && path.exists() {
            // Re-sealed under the new key before the old one is dropped: a failure here leaves
            // the old file, still readable with the old key.
            store.persist(&entries)?;
            tracing::warn!(
                key_source = ?plan.source,
                "moved the secret store to another key, as secret_store in the config asks"
            );
        }
        if plan.reseal && plan.source == KeySource::Keyring {
            key::remove_key_file(state_dir);
        }
        tracing::debug!(dir = %state_dir.display(), key_source = ?plan.source, entries = entries.0.len(), "secret store opened");
        *store.lock() = std::mem::take(&mut entries);
        Ok(Arc::new(store))
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
        let v = map.0.get(key)?;
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
        next.0.insert(key.to_string(), value);
        self.persist(&next)?;
        *map = next;
        Ok(())
    }

    /// Removes `key` (absent is fine) and writes the store out.
    pub fn remove(&self, key: &str) -> Result<(), VaultError> {
        let mut map = self.lock();
        if !map.0.contains_key(key) {
            return Ok(());
        }
        let mut next = map.clone();
        if let Some(mut v) = next.0.remove(key) {
            wipe(&mut v);
        }
        self.persist(&next)?;
        *map = next;
        Ok(())
    }

    /// Removes every key that starts with `prefix` (e.g. all of one source's entries).
    pub fn remove_prefix(&self, prefix: &str) -> Result<(), VaultError> {
        let mut map = self.lock();
        let mut next = map.clone();
        next.0.retain(|k, v| {
            let keep = !k.starts_with(prefix);
            if !keep {
                wipe(v);
            }
            keep
        });
        if next.0.len() == map.0.len() {
            return Ok(());
        }
        self.persist(&next)?;
        *map = next;
        Ok(())
    }

    /// The keys present (never the values): for status and tests.
    pub fn keys(&self) -> Vec<String> {
        self.lock().0.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the map half-changed (changes are swapped
        // in whole), so a poisoned lock is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, map: &Entries) -> Result<(), VaultError> {
        let plain = Zeroizing::new(serde_json::to_vec(&map.0).map_err(|e| VaultError::Encode {
            key: "*".into(),
            why: e.to_string(),
        })?);
        let sealed = file::seal(&self.key, self.key_source, &plain);
        file::write_atomic(&self.dir, STORE_FILE, &sealed)
    }
}

/// Which key to read the store with, which to keep it under, and whether it moves.
struct Plan {
    read_key: Zeroizing<[u8; 32]>,
    key: Zeroizing<[u8; 32]>,
    source: KeySource,
    /// The store is re-sealed under `key` (another kind than the one that sealed it).
    reseal: bool,
}

impl Plan {
    fn keep(key: Zeroizing<[u8; 32]>, source: KeySource) -> Self {
        Plan {
            read_key: key.clone(),
            key,
            source,
            reseal: false,
        }
    }
}

/// Decides the keys from what sealed the store (its header) and what the config asks for.
fn plan(dir: &Path, path: &Path, kind: SecretStoreKind) -> Result<Plan, VaultError> {
    use key::Keyring;
    let sealed = match file::sealed_by(path)? {
        Some(s) => Some(s),
        // A version-1 store did not record its key: it was the key file if there is one.
        None if path.exists() => Some(if dir.join(KEY_FILE).exists() {
            KeySource::FileFallback
        } else {
            KeySource::Keyring
        }),
        None => None,
    };
    let file_source = match kind {
        SecretStoreKind::File => KeySource::File,
        SecretStoreKind::Keyring => KeySource::FileFallback,
    };
    Ok(match (kind, sealed) {
        (SecretStoreKind::File, None | Some(KeySource::File | KeySource::FileFallback)) => {
            Plan::keep(key::file_key(dir)?, KeySource::File)
        }
        // Asked for explicitly: out of the keyring, into the key file.
        (SecretStoreKind::File, Some(KeySource::Keyring)) => match key::keyring_get(dir)? {
            Keyring::Found(old) => Plan {
                read_key: old,
                key: key::file_key(dir)?,
                source: KeySource::File,
                reseal: true,
            },
            // The keyring answered and the key is gone: the store is unreadable for good.
            Keyring::Missing => Plan::keep(key::file_key(dir)?, KeySource::File),
            Keyring::Unreachable(why) => return Err(VaultError::KeyringUnavailable(why)),
        },
        (SecretStoreKind::Keyring, Some(KeySource::Keyring)) => match key::keyring_get(dir)? {
            Keyring::Found(k) => Plan::keep(k, KeySource::Keyring),
            Keyring::Missing => match key::keyring_create(dir)? {
                Keyring::Found(k) => Plan::keep(k, KeySource::Keyring),
                _ => {
                    return Err(VaultError::KeyringUnavailable(
                        "cannot store a new key".into(),
                    ))
                }
            },
            // Never a fallback here: that would set the store aside and lose every session.
            Keyring::Unreachable(why) => return Err(VaultError::KeyringUnavailable(why)),
        },
        (SecretStoreKind::Keyring, None) => match key::keyring_get_or_create(dir)? {
            Keyring::Found(k) => Plan::keep(k, KeySource::Keyring),
            // No store yet, so nothing to lose: the key file serves until a keyring answers.
            _ => {
                tracing::warn!("no OS keyring answers; keeping the secret store's key in a 0600 file in the state dir instead (set secret_store = \"file\" to silence this)");
                Plan::keep(key::file_key(dir)?, file_source)
            }
        },
        // Sealed with the key file while the config asks for the keyring: moves in once a
        // keyring answers (both keys in hand), else stays on the key file.
        (SecretStoreKind::Keyring, Some(KeySource::File | KeySource::FileFallback)) => {
            let old = key::file_key(dir)?;
            match key::keyring_get_or_create(dir)? {
                Keyring::Found(k) => Plan {
                    read_key: old,
                    key: k,
                    source: KeySource::Keyring,
                    reseal: true,
                },
                _ => Plan::keep(old, file_source),
            }
        }
    })
}

#[cfg(test)]
mod tests;
