//! With `secret_store = "keyring"` and no keyring service (no session bus), the store falls
//! back to a 0600 key file, and keeps working across restarts. Its own test binary, because the
//! keyring crate picks its store once per process.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_daemon::config::SecretStoreKind;
use rolecall_daemon::vault::{KeySource, SecretStore, KEY_FILE};
use std::os::unix::fs::PermissionsExt;

#[test]
fn no_session_bus_falls_back_to_a_private_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    // A bus address where no bus listens.
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}", tmp.path().join("no-bus").display()),
    );
    let state = tmp.path().join("state");
    let s = SecretStore::open(&state, SecretStoreKind::Keyring).unwrap();
    assert_eq!(s.key_source(), KeySource::FileFallback);
    s.put("k", &"v").unwrap();
    drop(s);
    let mode = std::fs::metadata(state.join(KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let s = SecretStore::open(&state, SecretStoreKind::Keyring).unwrap();
    assert_eq!(s.get::<String>("k").as_deref(), Some("v"));
}
