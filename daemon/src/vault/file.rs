//! The store file: format, sealing, and the atomic private write.
//!
//! Format (version 2): `b"RCVAULT"` + version byte + key-kind byte + 12-byte nonce +
//! ChaCha20-Poly1305 ciphertext of the JSON map. The 9 header bytes are the AEAD's associated
//! data, so a changed version, magic or key kind fails authentication like any other tampering.
//! The key-kind byte records which key sealed the store (`K` keyring, `F` key file, `f` key
//! file as a fallback from the keyring): it is readable without the key, so the daemon knows
//! which key it needs before it looks for one, and never mistakes "keyring unreachable right
//! now" for "no keyring". Version 1 (no kind byte) is still read.

use super::{KeySource, VaultError};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const MAGIC: &[u8; 7] = b"RCVAULT";
const VERSION: u8 = 2;
const HEADER_LEN: usize = 9;
const V1_HEADER_LEN: usize = 8;
const NONCE_LEN: usize = 12;
/// How many set-aside (`*.corrupt-*`) store files are kept; older ones are removed.
pub(super) const KEEP_CORRUPT: usize = 3;

fn kind_byte(kind: KeySource) -> u8 {
    match kind {
        KeySource::Keyring => b'K',
        KeySource::File => b'F',
        KeySource::FileFallback => b'f',
    }
}

fn kind_from_byte(b: u8) -> Option<KeySource> {
    match b {
        b'K' => Some(KeySource::Keyring),
        b'F' => Some(KeySource::File),
        b'f' => Some(KeySource::FileFallback),
        _ => None,
    }
}

fn header(kind: KeySource) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..7].copy_from_slice(MAGIC);
    h[7] = VERSION;
    h[8] = kind_byte(kind);
    h
}

/// Encrypts `plain` under a fresh random nonce, recording `kind` in the header.
pub(super) fn seal(key: &[u8; 32], kind: KeySource, plain: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let head = header(kind);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &head,
            },
        )
        // Encryption fails only for plaintexts beyond 256 GiB.
        .expect("ChaCha20-Poly1305 encryption of a small buffer");
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ct.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// What the header says sealed the store, without the key. `None`: no store file, a version-1
/// file (which did not record it), or a header this version does not know.
pub(super) fn sealed_by(path: &Path) -> Result<Option<KeySource>, VaultError> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(VaultError::Io {
                what: "cannot read",
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    if data.len() < HEADER_LEN || &data[..7] != MAGIC || data[7] != VERSION {
        return Ok(None);
    }
    Ok(kind_from_byte(data[8]))
}

/// Decrypts a sealed buffer; the error says what is wrong with it (never its content).
pub(super) fn unseal(key: &[u8; 32], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    if data.len() < V1_HEADER_LEN + NONCE_LEN + 16 {
        return Err(format!("file too short ({} bytes)", data.len()));
    }
    if &data[..7] != MAGIC {
        return Err("not a rolecall secret store (bad magic)".into());
    }
    let head_len = match data[7] {
        1 => V1_HEADER_LEN,
        VERSION => HEADER_LEN,
        v => {
            return Err(format!(
                "unsupported format version {v} (this rolecall reads 1 and {VERSION})"
            ))
        }
    };
    if data.len() < head_len + NONCE_LEN + 16 {
        return Err(format!("file too short ({} bytes)", data.len()));
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    cipher
        .decrypt(
            Nonce::from_slice(&data[head_len..head_len + NONCE_LEN]),
            Payload {
                msg: &data[head_len + NONCE_LEN..],
                aad: &data[..head_len],
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| "authentication failed (tampered, corrupt, or sealed with another key)".into())
}

pub(super) enum ReadOutcome {
    Missing,
    Entries(BTreeMap<String, serde_json::Value>),
    /// The file exists but cannot be used; the reason.
    Unreadable(String),
}

pub(super) fn read_store(path: &Path, key: &[u8; 32]) -> Result<ReadOutcome, VaultError> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ReadOutcome::Missing),
        Err(e) => {
            return Err(VaultError::Io {
                what: "cannot read",
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let plain = match unseal(key, &data) {
        Ok(p) => p,
        Err(why) => return Ok(ReadOutcome::Unreadable(why)),
    };
    match serde_json::from_slice(&plain) {
        Ok(m) => Ok(ReadOutcome::Entries(m)),
        Err(_) => Ok(ReadOutcome::Unreadable(
            "decrypted content is not a JSON map".into(),
        )),
    }
}

/// Renames an unusable store file to `secrets.bin.corrupt-<epoch>` so that nothing is lost.
pub(super) fn move_aside(path: &Path) -> Result<PathBuf, VaultError> {
    let ts = rolecall_proto::timefmt::now_epoch();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{ts}"));
    let mut aside = path.with_file_name(&name);
    // Two corrupt files in one second: do not overwrite the first.
    let mut n = 1;
    while aside.exists() {
        let mut alt = name.clone();
        alt.push(format!("-{n}"));
        aside = path.with_file_name(alt);
        n += 1;
    }
    fs::rename(path, &aside).map_err(|e| VaultError::Io {
        what: "cannot move aside the unreadable store",
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(aside)
}

/// Removes all but the newest [`KEEP_CORRUPT`] set-aside store files, so that a recurring
/// problem cannot fill the disk with them. Newest by the epoch in the name, then by name.
pub(super) fn prune_corrupt(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{}.corrupt-", super::STORE_FILE);
    let mut aside: Vec<(u64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let rest = name.strip_prefix(&prefix)?;
            let epoch = rest.split('-').next()?.parse().ok()?;
            Some((epoch, name))
        })
        .collect();
    aside.sort();
    let excess = aside.len().saturating_sub(KEEP_CORRUPT);
    for (_, name) in aside.into_iter().take(excess) {
        match fs::remove_file(dir.join(&name)) {
            Ok(()) => tracing::info!(file = %name, "removed an old set-aside secret store"),
            Err(e) => {
                tracing::debug!(file = %name, error = %e, "cannot remove an old set-aside store")
            }
        }
    }
}

/// Removes the temp files of writes that a crash (or `kill -9`) interrupted before their
/// rename: the store file itself is always the old or the new version, never a half. Only at
/// open, when the daemon's single-instance lock rules out a write in progress.
pub(super) fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ours = [super::STORE_FILE, super::KEY_FILE]
            .iter()
            .any(|f| name.starts_with(&format!(".{f}.tmp-")));
        if ours {
            match fs::remove_file(e.path()) {
                Ok(()) => {
                    tracing::info!(file = %name, "removed the temp file of an interrupted write")
                }
                Err(err) => {
                    tracing::debug!(file = %name, error = %err, "cannot remove a stale temp file")
                }
            }
        }
    }
}

/// Creates `dir` (and parents) if needed and makes it 0700.
pub(super) fn ensure_private_dir(dir: &Path) -> Result<(), VaultError> {
    let io = |what, e| VaultError::Io {
        what,
        path: dir.to_path_buf(),
        source: e,
    };
    fs::create_dir_all(dir).map_err(|e| io("cannot create directory", e))?;
    let meta = fs::metadata(dir).map_err(|e| io("cannot read directory", e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io("cannot make directory private (0700)", e))?;
    }
    Ok(())
}

/// Writes `data` to `dir/name` atomically: a 0600 temp file in the same dir, fsync, rename over
/// the target, fsync the dir. On any failure the temp file is removed and the old file is intact.
pub(super) fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), VaultError> {
    let target = dir.join(name);
    let mut suffix = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    let tmp = dir.join(format!(".{name}.tmp-{}", hex::encode(suffix)));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| ("cannot create", e))?;
        f.write_all(data).map_err(|e| ("cannot write", e))?;
        f.sync_all().map_err(|e| ("cannot sync", e))?;
        drop(f);
        fs::rename(&tmp, &target).map_err(|e| ("cannot replace", e))?;
        Ok(())
    })();
    if let Err((what, source)) = result {
        let _ = fs::remove_file(&tmp);
        return Err(VaultError::Io {
            what,
            path: target,
            source,
        });
    }
    // The rename is durable only once the directory entry is synced. The data itself is safe
    // already, so a failure here is logged rather than reported as a failed write.
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not sync the state dir after a write");
    }
    Ok(())
}
