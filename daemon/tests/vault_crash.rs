//! The secret store after a crash: a write interrupted before its rename leaves a temp file
//! beside an intact store; the next open removes it and reads the store as it was. A torn
//! (truncated) store file is reported, set aside and never crashes the daemon.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_daemon::config::SecretStoreKind;
use rolecall_daemon::vault::{SecretStore, STORE_FILE};
use std::os::unix::fs::PermissionsExt;

#[test]
fn interrupted_write_leaves_the_old_store_and_its_temp_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let s = SecretStore::open(&dir, SecretStoreKind::File).unwrap();
    s.put("ic/corp/token", &"v1").unwrap();
    drop(s);
    // What a kill -9 between write and rename leaves: a half-written temp file.
    let temp = dir.join(format!(".{STORE_FILE}.tmp-0a1b2c3d4e5f"));
    std::fs::write(&temp, b"RCVAULT\x01 half").unwrap();
    let unrelated = dir.join(".other.tmp-keep");
    std::fs::write(&unrelated, b"x").unwrap();

    let s = SecretStore::open(&dir, SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<String>("ic/corp/token").as_deref(), Some("v1"));
    assert!(!temp.exists(), "the stale temp file is removed");
    assert!(
        unrelated.exists(),
        "only the store's own temp files are touched"
    );
    let mode = std::fs::metadata(dir.join(STORE_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn torn_store_file_is_set_aside_and_the_store_starts_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let s = SecretStore::open(&dir, SecretStoreKind::File).unwrap();
    s.put("ic/corp/token", &"v1").unwrap();
    drop(s);
    let path = dir.join(STORE_FILE);
    let data = std::fs::read(&path).unwrap();
    std::fs::write(&path, &data[..data.len() / 2]).unwrap();

    let s = SecretStore::open(&dir, SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<String>("ic/corp/token"), None);
    let aside: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{STORE_FILE}.corrupt-")))
        .collect();
    assert_eq!(aside.len(), 1, "set aside, not deleted");
    // And the store works again.
    s.put("k", &1u8).unwrap();
    drop(s);
    let s = SecretStore::open(&dir, SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<u8>("k"), Some(1));
}
