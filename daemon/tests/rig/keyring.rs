//! Helpers of the tests against a real Secret Service (gnome-keyring on a private D-Bus).

use std::process::Command;

/// Whether `org.freedesktop.secrets` has an owner on the bus at `address`.
pub fn secrets_owned(address: &str) -> bool {
    Command::new("dbus-send")
        .args([
            &format!("--bus={address}"),
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:org.freedesktop.secrets",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
        .unwrap_or(false)
}
