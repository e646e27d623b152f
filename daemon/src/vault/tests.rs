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
    assert!(
        raw.starts_with(b"RCVAULT\x02F"),
        "header records the key file"
    );
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
    assert_ne!(first[9..21], second[9..21], "nonce reused");
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
    bad[7] = 3;
    assert!(file::unseal(&key, &bad).unwrap_err().contains("version 3"));
    let mut bad = raw.clone();
    bad[8] = b'K';
    assert!(
        file::unseal(&key, &bad).is_err(),
        "the key-kind byte is authenticated"
    );
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

#[test]
fn version_1_stores_are_still_read_and_rewritten_as_version_2() {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
    let tmp = tempfile::tempdir().unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    let key = s.key.clone();
    drop(s);
    // A store as version 1 wrote it: 8-byte header, no key kind.
    let head = *b"RCVAULT\x01";
    let nonce = [7u8; 12];
    let ct = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: br#"{"a":"v1-value"}"#,
                aad: &head,
            },
        )
        .unwrap();
    let mut raw = head.to_vec();
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&ct);
    std::fs::write(tmp.path().join(STORE_FILE), &raw).unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<String>("a").as_deref(), Some("v1-value"));
    s.put("b", &1).unwrap();
    assert!(std::fs::read(s.path())
        .unwrap()
        .starts_with(b"RCVAULT\x02F"));
}

#[test]
fn only_the_newest_set_aside_stores_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    for epoch in [100, 200, 300, 400, 500] {
        std::fs::write(
            tmp.path().join(format!("{STORE_FILE}.corrupt-{epoch}")),
            b"x",
        )
        .unwrap();
    }
    std::fs::write(tmp.path().join(format!("{STORE_FILE}.corrupt-500-1")), b"x").unwrap();
    std::fs::write(tmp.path().join("unrelated.corrupt-1"), b"x").unwrap();
    let s = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    drop(s);
    let mut left: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".corrupt-"))
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "secrets.bin.corrupt-400",
            "secrets.bin.corrupt-500",
            "secrets.bin.corrupt-500-1",
            "unrelated.corrupt-1"
        ]
    );
}

#[test]
fn dropped_entries_have_their_strings_wiped() {
    let mut v = serde_json::json!({
        "refresh_token": "rt-SECRET",
        "nested": [{"client_secret": "cs-SECRET"}, 3, null],
    });
    wipe(&mut v);
    let text = v.to_string();
    assert!(!text.contains("SECRET"), "{text}");
    assert_eq!(
        text,
        r#"{"nested":[{"client_secret":""},3,null],"refresh_token":""}"#
    );
}
