//! Opening a URL in the user's browser (identity-center and entra-oidc logins), and deciding
//! whether this machine has one at all (docs/design.md, *Browsers and the device flow*).
//!
//! `$BROWSER` follows the xdg convention: a colon-separated list of commands, tried in order;
//! in each, `%s` is replaced by the URL, else the URL is appended. Commands run without a shell
//! (split on whitespace), so a URL can never be interpreted by one. Without `$BROWSER`, the
//! platform's opener runs. The child is spawned and reaped in the background: opening a browser
//! never blocks the daemon.

use crate::endpoints::{env_var, EnvSnapshot};
use std::process::Stdio;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no browser command could be started ({0})")]
    NoCommand(String),
    /// The URL would send the user (and what they type) over plain http to a remote host.
    #[error("{0}")]
    Insecure(String),
}

/// Opens URLs for the user, injected into the daemon so that a test can see what would open.
pub trait Browser: Send + Sync + 'static {
    fn open(&self, url: &str, env: &EnvSnapshot) -> Result<(), OpenError>;
}

/// The user's browser, through [`open_url`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemBrowser;

impl Browser for SystemBrowser {
    fn open(&self, url: &str, env: &EnvSnapshot) -> Result<(), OpenError> {
        open_url(url, env)
    }
}

/// Whether a browser counts as available: `$BROWSER` is set, or there is a display (X11 or
/// Wayland on Unix; always on macOS and Windows) and the session is not over SSH.
pub fn browser_available(env: &EnvSnapshot) -> bool {
    if env_var(env, "BROWSER").is_some() {
        return true;
    }
    let over_ssh = env_var(env, "SSH_CONNECTION").is_some() || env_var(env, "SSH_TTY").is_some();
    if over_ssh {
        return false;
    }
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    env_var(env, "DISPLAY").is_some() || env_var(env, "WAYLAND_DISPLAY").is_some()
}

/// The command lines that would be tried, in order, for `url`.
pub fn commands_for(url: &str, env: &EnvSnapshot) -> Vec<Vec<String>> {
    if let Some(list) = env_var(env, "BROWSER") {
        return list
            .split(':')
            .filter_map(|cmd| {
                let mut argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
                if argv.is_empty() {
                    return None;
                }
                if argv.iter().any(|a| a.contains("%s")) {
                    for a in argv.iter_mut() {
                        *a = a.replace("%s", url);
                    }
                } else {
                    argv.push(url.to_string());
                }
                Some(argv)
            })
            .collect();
    }
    let platform: &[&[&str]] = if cfg!(target_os = "macos") {
        &[&["open"]]
    } else if cfg!(target_os = "windows") {
        // `start`'s first quoted argument is a window title: give it an empty one.
        &[&["cmd", "/c", "start", ""]]
    } else {
        &[&["xdg-open"]]
    };
    platform
        .iter()
        .map(|p| {
            let mut v: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            v.push(url.to_string());
            v
        })
        .collect()
}

/// Opens `url` with the first command that starts. Returns once it has started; the process is
/// reaped in the background and a failure exit is logged. Needs a tokio runtime.
pub fn open_url(url: &str, env: &EnvSnapshot) -> Result<(), OpenError> {
    // Sign-in and device-code pages come from upstream replies and the config: never open a
    // plain-http page of a remote host, where the user would type their password or code.
    crate::endpoints::check_transport_str(url, "the sign-in page").map_err(OpenError::Insecure)?;
    let mut tried = Vec::new();
    for argv in commands_for(url, env) {
        let mut cmd = crate::spawn::command(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(false);
        match cmd.spawn() {
            Ok(mut child) => {
                let program = argv[0].clone();
                tokio::spawn(async move {
                    match child.wait().await {
                        Ok(s) if s.success() => {}
                        Ok(s) => tracing::warn!(%program, status = %s, "browser command failed"),
                        Err(e) => tracing::warn!(%program, error = %e, "browser command lost"),
                    }
                });
                tracing::info!(program = %argv[0], "opened the sign-in page in a browser");
                return Ok(());
            }
            Err(e) => tried.push(format!("{}: {e}", argv[0])),
        }
    }
    Err(OpenError::NoCommand(if tried.is_empty() {
        "none configured".into()
    } else {
        tried.join("; ")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSnapshot {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn availability_rules() {
        assert!(browser_available(&env(&[("BROWSER", "firefox")])));
        assert!(browser_available(&env(&[
            ("BROWSER", "firefox"),
            ("SSH_TTY", "/dev/pts/1")
        ])));
        if cfg!(any(target_os = "macos", target_os = "windows")) {
            assert!(browser_available(&env(&[])));
        } else {
            assert!(!browser_available(&env(&[])));
            assert!(browser_available(&env(&[("DISPLAY", ":0")])));
            assert!(browser_available(&env(&[("WAYLAND_DISPLAY", "wayland-0")])));
            assert!(!browser_available(&env(&[("DISPLAY", "")])));
        }
        assert!(!browser_available(&env(&[
            ("DISPLAY", ":0"),
            ("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
        ])));
        assert!(!browser_available(&env(&[
            ("WAYLAND_DISPLAY", "w"),
            ("SSH_TTY", "/dev/pts/0")
        ])));
    }

    #[test]
    fn browser_variable_is_a_colon_list_with_placeholder() {
        let u = "http://127.0.0.1:1/authorize?a=1&b=2";
        let e = env(&[("BROWSER", "firefox --new-window %s:  :w3m")]);
        assert_eq!(
            commands_for(u, &e),
            vec![
                vec!["firefox".to_string(), "--new-window".into(), u.into()],
                vec!["w3m".to_string(), u.into()],
            ]
        );
    }

    #[test]
    fn platform_opener_when_unset() {
        let c = commands_for("http://x", &env(&[]));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last().unwrap(), "http://x");
    }

    #[tokio::test]
    async fn falls_through_to_a_command_that_starts_and_passes_url_verbatim() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let script = tmp.path().join("browser.sh");
        std::fs::write(
            &script,
            format!("#!/bin/sh\nprintf '%s' \"$1\" > {}\n", out.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A URL with shell metacharacters: no shell may see it.
        let url = "http://127.0.0.1:9/cb?x=$(touch /tmp/pwned)&y=`id`;z";
        let e = env(&[(
            "BROWSER",
            &format!("/nonexistent/browser:{}", script.display()),
        )]);
        open_url(url, &e).unwrap();
        let deadline = crate::clock::monotonic() + std::time::Duration::from_secs(5);
        loop {
            if let Ok(s) = std::fs::read_to_string(&out) {
                if !s.is_empty() {
                    assert_eq!(s, url);
                    break;
                }
            }
            assert!(crate::clock::monotonic() < deadline, "browser never ran");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_plain_http_page_of_a_remote_host_is_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let e = env(&[("BROWSER", &format!("touch {}", marker.display()))]);
        let err = open_url("http://login.attacker.example/device", &e).unwrap_err();
        assert!(matches!(err, OpenError::Insecure(_)), "{err}");
        assert!(err.to_string().contains("plain http"), "{err}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!marker.exists(), "the browser ran");
        // Loopback http (the sandbox, a local IdP) still opens.
        open_url("http://127.0.0.1:9/device", &e).unwrap();
    }

    #[tokio::test]
    async fn nothing_starts_is_an_error() {
        let e = env(&[("BROWSER", "/nonexistent/a:/nonexistent/b %s")]);
        let err = open_url("https://x", &e).unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent/a") && err.contains("/nonexistent/b"),
            "{err}"
        );
    }
}
