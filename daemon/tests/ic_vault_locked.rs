//! A locked keyring (docs/design.md, *Errors and bad input*): the daemon gets a clear error naming
//! the way out, never a hang, and the store file is left as it was. gnome-keyring on a private
//! D-Bus session bus: the key is stored while the login keyring is unlocked, then the keyring
//! daemon restarts locked. Its own test binary, because the keyring crate picks its store once per
//! process.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;
use rig::{skip, wait_until, Kid};

use rolecall_daemon::config::SecretStoreKind;
use rolecall_daemon::vault::{KeySource, SecretStore, STORE_FILE};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn name_owned(address: &str, owned: bool) -> impl FnMut() -> bool + '_ {
    move || rig::keyring::secrets_owned(address) == owned
}

fn keyring_daemon(address: &str, home: &Path, unlock: Option<&[u8]>) -> Kid {
    let mut c = Command::new("gnome-keyring-daemon");
    c.arg("--foreground").arg("--components=secrets");
    if unlock.is_some() {
        c.arg("--unlock");
    }
    let mut child = c
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(pw) = unlock {
        stdin.write_all(pw).unwrap();
    }
    drop(stdin);
    Kid(child)
}

/// How long the keyring pieces may take to come up or go.
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn locked_keyring_is_a_clear_error_and_nothing_is_lost() {
    for tool in ["dbus-daemon", "gnome-keyring-daemon", "dbus-send"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !found {
            skip(&format!(
                "{tool} is not installed (tests/setup-system.sh installs it)"
            ));
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("run")).unwrap();
    let bus_path = tmp.path().join("bus");
    let address = format!("unix:path={}", bus_path.display());
    let _bus = Kid(Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--nopidfile"])
        .arg(format!("--address={address}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap());
    wait_until("the bus socket", WAIT, || bus_path.exists());
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);

    let state = tmp.path().join("state");
    {
        let gk = keyring_daemon(&address, &home, Some(b"pw"));
        wait_until("the secret service", WAIT, name_owned(&address, true));
        let s = SecretStore::open(&state, SecretStoreKind::Keyring).unwrap();
        assert_eq!(s.key_source(), KeySource::Keyring);
        s.put("ic/corp/token", &"kept").unwrap();
        drop(gk);
        wait_until(
            "the secret service to leave",
            WAIT,
            name_owned(&address, false),
        );
    }
    let before = std::fs::read(state.join(STORE_FILE)).unwrap();

    // The same keyring, now locked (no --unlock), and nobody to answer the unlock prompt.
    let _gk = keyring_daemon(&address, &home, None);
    wait_until("the secret service", WAIT, name_owned(&address, true));
    let (tx, rx) = std::sync::mpsc::channel();
    let st = state.clone();
    std::thread::spawn(move || {
        let _ = tx.send(SecretStore::open(&st, SecretStoreKind::Keyring).map(|_| ()));
    });
    let res = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("opening the store must not hang on a locked keyring");
    let err = res
        .expect_err("a locked keyring cannot give the key")
        .to_string();
    eprintln!("locked keyring error: {err}");
    assert!(err.contains("keyring"), "{err}");
    assert!(
        err.contains("secret_store = \"file\""),
        "names the way out: {err}"
    );
    assert_eq!(
        std::fs::read(state.join(STORE_FILE)).unwrap(),
        before,
        "store file untouched"
    );
    assert!(
        !state.join("secrets.key").exists(),
        "no silent switch to a new key"
    );
}
