//! The secret store's key in a real Secret Service: a private D-Bus session bus with
//! gnome-keyring on it (no user's keyring is touched). Its own test binary, because the keyring
//! crate picks its store once per process.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;
use rig::{skip, wait_until};

use rolecall_daemon::config::SecretStoreKind;
use rolecall_daemon::vault::{KeySource, SecretStore, KEY_FILE, STORE_FILE};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills (and reaps) the child processes this test started, whatever happens.
struct Kids(Vec<Child>);
impl Drop for Kids {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How long the keyring pieces may take to come up or go.
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn key_lives_in_the_secret_service_and_survives_a_restart() {
    for tool in ["dbus-daemon", "gnome-keyring-daemon", "dbus-send"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            skip(&format!(
                "{tool} is not installed (tests/setup-system.sh installs it)"
            ));
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let runtime = tmp.path().join("run");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&runtime).unwrap();
    let bus_path = tmp.path().join("bus");
    let address = format!("unix:path={}", bus_path.display());
    let mut kids = Kids(Vec::new());
    kids.0.push(
        Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the bus socket", WAIT, || bus_path.exists());
    let mut gk = Command::new("gnome-keyring-daemon")
        .args(["--foreground", "--unlock", "--components=secrets"])
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The login keyring's password, then EOF.
    gk.stdin
        .take()
        .unwrap()
        .write_all(b"test-password")
        .unwrap();
    kids.0.push(gk);
    wait_until("org.freedesktop.secrets on the bus", WAIT, || {
        rig::keyring::secrets_owned(&address)
    });
    // Only this test binary's own process environment: the keyring crate reads it.
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);

    let state = tmp.path().join("state");
    let s = SecretStore::open(&state, SecretStoreKind::Keyring).unwrap();
    assert_eq!(s.key_source(), KeySource::Keyring);
    s.put("ic/corp/token", &"refresh-SECRET").unwrap();
    drop(s);
    assert!(state.join(STORE_FILE).exists());
    assert!(
        !state.join(KEY_FILE).exists(),
        "no key file when the keyring works"
    );

    // A restart reads the same key back from the keyring.
    let s = SecretStore::open(&state, SecretStoreKind::Keyring).unwrap();
    assert_eq!(s.key_source(), KeySource::Keyring);
    assert_eq!(
        s.get::<String>("ic/corp/token").as_deref(),
        Some("refresh-SECRET")
    );

    // Another state dir gets its own key: its store cannot be read with this one's.
    let other = tmp.path().join("other");
    let o = SecretStore::open(&other, SecretStoreKind::Keyring).unwrap();
    o.put("x", &1).unwrap();
    drop(o);
    std::fs::copy(other.join(STORE_FILE), state.join(STORE_FILE)).unwrap();
    drop(s);
    let s = SecretStore::open(&state, SecretStoreKind::Keyring).unwrap();
    assert_eq!(s.get::<u32>("x"), None, "sealed under another key");
}
