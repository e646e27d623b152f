//! `rolecall service install|uninstall|status`: runs rolecalld under the platform's service
//! manager — a systemd user unit with socket activation on Linux, a launchd agent on macOS —
//! instead of the CLI's on-demand start. Idempotent; every step it takes is printed; other
//! platforms (and Linux without a reachable `systemctl --user`) are refused with the reason.

mod launchd;
mod systemd;
mod units;

use crate::autostart;
use crate::cli::{ServiceArgs, ServiceCommand};
use crate::client::Client;
use anyhow::{bail, Context};
use rolecall_proto::api::VersionReply;
use rolecall_proto::request::Request;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Exit code of `service status` when the service is not installed or not enabled (as
/// `rolecall daemon status` and `systemctl status` do for "not running").
pub const NOT_INSTALLED: i32 = 3;

pub fn run(a: &ServiceArgs) -> anyhow::Result<i32> {
    let os = std::env::consts::OS;
    match os {
        "linux" => {
            let sd = systemd::Systemd::new()?;
            match a.command {
                ServiceCommand::Install => sd.install(),
                ServiceCommand::Uninstall => sd.uninstall(),
                ServiceCommand::Status => sd.status(),
            }
        }
        "macos" => {
            let ld = launchd::Launchd::new()?;
            match a.command {
                ServiceCommand::Install => ld.install(),
                ServiceCommand::Uninstall => ld.uninstall(),
                ServiceCommand::Status => ld.status(),
            }
        }
        other => bail!(
            "rolecall service supports systemd (Linux) and launchd (macOS), not {other}; without it the CLI starts rolecalld on demand (or run: rolecall daemon start)"
        ),
    }
}

/// The rolecalld a service should start: the one beside this `rolecall` (else on `$PATH`),
/// with symlinks resolved so that the unit keeps working when a link moves.
fn daemon_path() -> anyhow::Result<PathBuf> {
    let found = autostart::find_daemon()?;
    std::fs::canonicalize(&found)
        .with_context(|| format!("cannot resolve the path of {}", found.display()))
}

fn home_dir() -> anyhow::Result<PathBuf> {
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h)),
        None => bail!("HOME is not set: cannot find where user services live"),
    }
}

fn tilde(p: &Path) -> String {
    match home_dir()
        .ok()
        .and_then(|h| p.strip_prefix(&h).ok().map(Path::to_path_buf))
    {
        Some(rest) => format!("~/{}", rest.display()),
        None => p.display().to_string(),
    }
}

/// What writing a file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Created,
    Updated,
    Unchanged,
}

/// Writes `text` to `path` unless it already holds exactly that: a temporary file beside it,
/// then a rename, so a unit is never seen half-written.
fn write_if_changed(path: &Path, text: &str) -> anyhow::Result<Written> {
    let before = std::fs::read_to_string(path).ok();
    if before.as_deref() == Some(text) {
        return Ok(Written::Unchanged);
    }
    let dir = path.parent().context("a unit path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.rolecall-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(if before.is_some() {
        Written::Updated
    } else {
        Written::Created
    })
}

fn report_write(path: &Path, w: Written) {
    match w {
        Written::Created => println!("Wrote {}", tilde(path)),
        Written::Updated => println!("Updated {}", tilde(path)),
        Written::Unchanged => println!("{} is up to date", tilde(path)),
    }
}

/// Removes a file; whether there was one.
fn remove_if_present(path: &Path) -> anyhow::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// The outcome of a service-manager command: its exit status and the first line it printed
/// on stderr (for error messages).
struct Ran {
    ok: bool,
    stdout: String,
    first_err: String,
}

fn run_tool(program: &str, args: &[&str]) -> anyhow::Result<Ran> {
    let out = crate::spawn::command(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    Ok(Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        first_err: stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_string(),
    })
}

/// Runs a step that must succeed, and says so.
fn step(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let r = run_tool(program, args)?;
    let shown = format!("{program} {}", args.join(" "));
    if !r.ok {
        bail!("`{shown}` failed: {}", r.first_err);
    }
    println!("Ran: {shown}");
    Ok(())
}

/// A rolecalld that answers on the socket right now (its pid), whoever started it.
fn running_daemon() -> Option<u32> {
    let client = Client::connect_existing().ok()?;
    client.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    client
        .send::<VersionReply>(&Request::Version)
        .ok()
        .map(|v| v.pid)
}

/// Stops a daemon that the CLI started on demand, so that the service manager's copy can take
/// the single-instance lock; it comes back through the service on the next request.
fn stop_stray_daemon() -> anyhow::Result<()> {
    if let Some(pid) = running_daemon() {
        autostart::stop(&rolecall_proto::paths::socket_path())
            .context("cannot stop the rolecalld that is running outside the service manager")?;
        println!(
            "Stopped the rolecalld started on demand (pid {pid}); the service runs it from now on"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_is_idempotent_and_says_what_it_did() {
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("systemd/user/rolecalld.service");
        assert_eq!(write_if_changed(&unit, "a\n").unwrap(), Written::Created);
        assert_eq!(write_if_changed(&unit, "a\n").unwrap(), Written::Unchanged);
        assert_eq!(write_if_changed(&unit, "b\n").unwrap(), Written::Updated);
        assert_eq!(std::fs::read_to_string(&unit).unwrap(), "b\n");
        let mode = std::fs::metadata(&unit).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(unit.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("rolecalld.service")]);
        assert!(remove_if_present(&unit).unwrap());
        assert!(!remove_if_present(&unit).unwrap());
    }
}
