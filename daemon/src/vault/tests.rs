use super::*;
use std::os::unix::fs::PermissionsExt;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Tok {
    refresh_token: String,
    n: u32,
}

fn tok(s: &str) -> Tok {
    Tok {
        refresh_token: s.into(),
        n: 7,
    }
}

#[test]
fn round_trip_survives_reopen_and_files_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let s = SecretStore::open(&dir, SecretStoreKind::File).unwrap();
    assert_eq!(s.key_source(), KeySource::File);
    assert_eq!(s.get::<Tok>("a"), None);
    s.put("a", &tok("rt-SECRET-aaaa")).unwrap();
    s.put("b", &tok("rt-bbbb")).unwrap();
    s.remove("b").unwrap();
    s.remove("never-there").unwrap();
    assert_eq!(s.get::<Tok>("a"), Some(tok("rt-SECRET-aaaa")));
    drop(s);

    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(STORE_FILE)), 0o600);
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    let raw = std::fs::read(dir.join(STORE_FILE)).unwrap();
    assert!(raw.starts_with(b"RCVAULT\x01"));
    assert!(
        !raw.windows(6).any(|w| w == b"SECRET"),
        "plaintext in the store file"
    );

    let s = SecretStore::open(&dir, SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<Tok>("a"), Some(tok("rt-SECRET-aaaa")));
    assert_eq!(s.get::<Tok>("b"), None);
    assert_eq!(s.keys(), vec!["a".to_string()]);
    // No temp files left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
}

#[test]
fn every_write_uses_a_fresh_nonce() {
    let tmp = tempfile::tempdir().unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    s.put("a", &1).unwrap();
    let first = std::fs::read(s.path()).unwrap();
    s.put("a", &1).unwrap();
    let second = std::fs::read(s.path()).unwrap();
    assert_eq!(first.len(), second.len());
    assert_ne!(first[8..20], second[8..20], "nonce reused");
    assert_ne!(first, second);
}

#[test]
fn tampered_file_is_moved_aside_and_store_starts_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    s.put("a", &tok("x")).unwrap();
    let path = s.path();
    drop(s);
    let mut raw = std::fs::read(&path).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x01;
    std::fs::write(&path, &raw).unwrap();

    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<Tok>("a"), None);
    assert!(s.keys().is_empty());
    let aside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("secrets.bin.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "corrupt file kept for inspection");
    assert_eq!(std::fs::read(tmp.path().join(&aside[0])).unwrap(), raw);
    // And the store works again.
    s.put("a", &tok("y")).unwrap();
    drop(s);
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<Tok>("a"), Some(tok("y")));
}

#[test]
fn header_change_fails_authentication() {
    let tmp = tempfile::tempdir().unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    s.put("a", &1).unwrap();
    let raw = std::fs::read(s.path()).unwrap();
    let key = s.key.clone();
    let mut bad = raw.clone();
    bad[7] = 2;
    assert!(file::unseal(&key, &bad).unwrap_err().contains("version 2"));
    let mut bad = raw.clone();
    bad[0] = b'X';
    assert!(file::unseal(&key, &bad).unwrap_err().contains("magic"));
    assert!(file::unseal(&key, &raw[..10])
        .unwrap_err()
        .contains("short"));
    assert!(file::unseal(&key, &raw).is_ok());
}

#[test]
fn lost_key_means_empty_store_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    s.put("a", &1).unwrap();
    drop(s);
    std::fs::remove_file(tmp.path().join(KEY_FILE)).unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<u32>("a"), None);
}

#[test]
fn bad_key_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join(KEY_FILE), b"short").unwrap();
    let e = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("secrets.key") && msg.contains("32 bytes"),
        "{msg}"
    );
}

#[test]
fn unwritable_location_is_an_error_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let s = SecretStore::open(&dir, SecretStoreKind::File).unwrap();
    s.put("a", &tok("old")).unwrap();
    // Take the directory away and put a plain file in its place: every write must fail
    // (this works even as root, where permission bits do not stop writes).
    let moved = tmp.path().join("moved");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::write(&dir, b"not a dir").unwrap();
    let e = s.put("a", &tok("new")).unwrap_err();
    assert!(e.to_string().contains("secret store: cannot create"), "{e}");
    assert!(s.remove("a").is_err());
    assert_eq!(s.get::<Tok>("a"), Some(tok("old")), "memory unchanged");
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&moved, &dir).unwrap();
    drop(s);
    let s = SecretStore::open(&dir, SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<Tok>("a"), Some(tok("old")), "file unchanged");
}

#[test]
fn wrong_shape_reads_as_absent_and_debug_redacts() {
    let tmp = tempfile::tempdir().unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    s.put("a", &tok("rt-SECRET")).unwrap();
    assert_eq!(s.get::<Vec<u8>>("a"), None);
    let dbg = format!("{s:?}");
    assert!(!dbg.contains("SECRET") && dbg.contains("redacted"), "{dbg}");
}

#[test]
fn remove_prefix_drops_only_matching_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    s.put("ic/corp/token", &1).unwrap();
    s.put("ic/corp/registration/pkce", &2).unwrap();
    s.put("ic/other/token", &3).unwrap();
    s.remove_prefix("ic/corp/").unwrap();
    assert_eq!(s.keys(), vec!["ic/other/token".to_string()]);
}

#[test]
fn widened_key_file_is_narrowed() {
    let tmp = tempfile::tempdir().unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    s.put("a", &1).unwrap();
    drop(s);
    let kf = tmp.path().join(KEY_FILE);
    std::fs::set_permissions(&kf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<u32>("a"), Some(1));
    assert_eq!(mode(&kf), 0o600);
}
