//! Spawning `rolecalld` detached, with an allow-listed environment and its start-up errors in
//! a file no one else can redirect.

use crate::client::ClientError;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};

/// The file (in the runtime dir) that keeps the daemon's start-up errors.
pub(super) const START_ERR_NAME: &str = "rolecalld.start.err";

/// Opens a fresh `rolecalld.start.err`: whatever is at the path is removed first (a stale file
/// of an earlier start; removing a symlink removes the link, never its target), then the file
/// is created with `O_EXCL|O_NOFOLLOW`, so that nothing planted there can redirect the write
/// (and its truncation) to another file.
pub(super) fn open_start_err(path: &Path) -> std::io::Result<File> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(std::io::Error::other(format!(
                "{} is a directory",
                path.display()
            )))
        }
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Spawns the daemon in its own session with stdin/stdout on /dev/null, so that it outlives this
/// process and a Ctrl-C in the terminal never reaches it.
pub(super) fn spawn_detached(bin: &Path, stderr: Option<File>) -> Result<Child, ClientError> {
    let mut cmd = crate::spawn::command(bin);
    cmd.env_clear()
        .envs(daemon_env(std::env::vars_os()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.map_or_else(Stdio::null, Stdio::from));
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| ClientError::StartFailed(format!("cannot run {}: {e}", bin.display())))
}

/// Variables the autostarted daemon keeps from the shell that happened to start it.
const DAEMON_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "PATH",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    // The browser: where and how to open it (sign-in pages, the SAML capture window).
    "BROWSER",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "DBUS_SESSION_BUS_ADDRESS",
    "SSH_CONNECTION",
    "SSH_TTY",
];
/// Prefixes of the variables it keeps too: locale, XDG dirs, rolecall's own settings.
const DAEMON_ENV_PREFIXES: &[&str] = &["LC_", "XDG_", "ROLECALL_"];

/// The environment of an autostarted daemon: an allow-list, the way a service manager would
/// start it. The daemon outlives the shell and serves every later request, so nothing of one
/// shell's session may steer it: `AWS_ENDPOINT_URL*` (a LocalStack shell would receive every
/// later refresh token and assertion), `SSL_CERT_FILE`, proxy variables, `RUST_LOG`,
/// `LD_PRELOAD` and the like are dropped. Endpoint overrides belong in the config file.
fn daemon_env(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    vars.filter(|(k, _)| {
        k.to_str().is_some_and(|k| {
            DAEMON_ENV.contains(&k) || DAEMON_ENV_PREFIXES.iter().any(|p| k.starts_with(p))
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_err_never_follows_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let err = dir.path().join(START_ERR_NAME);
        std::os::unix::fs::symlink(&victim, &err).unwrap();
        let mut f = open_start_err(&err).unwrap();
        std::io::Write::write_all(&mut f, b"rolecalld: boom\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&err).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&err).unwrap(), "rolecalld: boom\n");
        // A stale file of an earlier start is replaced, not appended to.
        let mut f = open_start_err(&err).unwrap();
        std::io::Write::write_all(&mut f, b"second\n").unwrap();
        assert_eq!(std::fs::read_to_string(&err).unwrap(), "second\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&err).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn the_daemon_gets_an_allow_listed_environment() {
        let vars = [
            ("HOME", "/home/u"),
            ("PATH", "/usr/bin"),
            ("LC_TIME", "C"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
            ("ROLECALL_CONFIG", "/c"),
            ("DISPLAY", ":0"),
            ("BROWSER", "firefox"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("AWS_ENDPOINT_URL_STS", "https://evil.example"),
            ("AWS_PROFILE", "x"),
            ("SSL_CERT_FILE", "/tmp/ca.pem"),
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("https_proxy", "http://proxy:3128"),
            ("RUST_LOG", "trace"),
            ("LD_PRELOAD", "/tmp/x.so"),
        ];
        let kept: Vec<String> = daemon_env(vars.iter().map(|(k, v)| (k.into(), v.into())))
            .into_iter()
            .map(|(k, _)| k.into_string().unwrap())
            .collect();
        assert_eq!(
            kept,
            [
                "HOME",
                "PATH",
                "LC_TIME",
                "XDG_RUNTIME_DIR",
                "ROLECALL_CONFIG",
                "DISPLAY",
                "BROWSER"
            ]
        );
    }
}
