//! A full disk: the write fails with a clear error, the old store file stays intact, and
//! memory keeps the old value. Uses a tiny tmpfs, so it needs root (CI runs as root); elsewhere
//! it says it was skipped.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;
use rig::skip;

use rolecall_daemon::config::SecretStoreKind;
use rolecall_daemon::vault::SecretStore;
use std::process::Command;

struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_keeps_the_old_store() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        skip("cannot mount a tmpfs here (needs root)");
        return;
    }
    let _m = Mount(mnt.clone());
    let s = SecretStore::open(&mnt, SecretStoreKind::File).unwrap();
    s.put("token", &"old-value").unwrap();
    let before = std::fs::read(s.path()).unwrap();
    // Fill the rest of the filesystem.
    let filler = vec![0u8; 4096];
    let mut f = std::fs::File::create(mnt.join("filler")).unwrap();
    use std::io::Write;
    while f.write_all(&filler).is_ok() {}
    drop(f);

    let big = "x".repeat(32 * 1024);
    let e = s.put("token", &big).unwrap_err().to_string();
    assert!(e.starts_with("secret store: cannot "), "{e}");
    assert!(e.contains("secrets.bin"), "{e}");
    assert!(!e.contains("xxxx"), "no content in the error: {e}");
    assert_eq!(s.get::<String>("token").as_deref(), Some("old-value"));
    assert_eq!(std::fs::read(s.path()).unwrap(), before, "old file intact");
    let leftovers: Vec<_> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(s);
    let s = SecretStore::open(&mnt, SecretStoreKind::File).unwrap();
    assert_eq!(s.get::<String>("token").as_deref(), Some("old-value"));
}
