//! Starting the browser: a dedicated profile directory (locked: one browser per profile at a
//! time), `--remote-debugging-pipe` with commands on the child's fd 3 and events on its fd 4,
//! and the flags that keep a capture quiet and local.

use super::BrowserError;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How the browser shows itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    Window,
    Headless,
}

/// A started browser: the process, the parent's ends of the pipe, the profile lock.
pub struct Launched {
    pub child: tokio::process::Child,
    /// Where we write commands (the child's fd 3).
    pub commands: File,
    /// Where we read answers and events (the child's fd 4).
    pub events: File,
    /// Held until the capture ends.
    pub _lock: ProfileLock,
}

/// An exclusive `flock` on `<profile>/rolecall.lock`, released when the descriptor closes.
pub struct ProfileLock {
    _file: File,
}

impl ProfileLock {
    pub fn acquire(profile: &Path) -> Result<ProfileLock, BrowserError> {
        std::fs::create_dir_all(profile).map_err(|e| BrowserError::Start {
            path: profile.display().to_string(),
            reason: format!("cannot create the profile directory: {e}"),
        })?;
        restrict(profile);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(profile.join("rolecall.lock"))
            .map_err(|e| BrowserError::Start {
                path: profile.display().to_string(),
                reason: format!("cannot open the profile lock: {e}"),
            })?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(BrowserError::ProfileBusy(profile.display().to_string()));
        }
        Ok(ProfileLock { _file: f })
    }
}

/// The browser profile holds Entra's session cookies: owner-only.
fn restrict(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

/// The command line (without the executable).
pub fn args(profile: &Path, display: Display, as_root: bool) -> Vec<String> {
    let mut a = vec![
        format!("--user-data-dir={}", profile.display()),
        "--remote-debugging-pipe".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
    ];
    if display == Display::Headless {
        a.push("--headless=new".into());
    }
    // Chromium refuses to run as root with its sandbox; only then is it turned off.
    if as_root {
        a.push("--no-sandbox".into());
    }
    a.push("about:blank".into());
    a
}

fn pipe() -> Result<(OwnedFd, OwnedFd), std::io::Error> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// Starts `exe` with the profile locked and the debugging pipe on fds 3 and 4.
pub fn launch(exe: &Path, profile: PathBuf, display: Display) -> Result<Launched, BrowserError> {
    let lock = ProfileLock::acquire(&profile)?;
    let start_err = |reason: String| BrowserError::Start {
        path: exe.display().to_string(),
        reason,
    };
    // (child reads, we write) and (we read, child writes); all CLOEXEC so no other child
    // inherits them.
    let (cmd_r, cmd_w) = pipe().map_err(|e| start_err(e.to_string()))?;
    let (evt_r, evt_w) = pipe().map_err(|e| start_err(e.to_string()))?;
    let as_root = nix::unistd::geteuid().is_root();
    let mut cmd = crate::spawn::command(exe);
    cmd.args(args(&profile, display, as_root))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let (child_in, child_out) = (cmd_r.as_raw_fd(), evt_w.as_raw_fd());
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. The two ends
    // are first moved above fd 10 so that placing one on 3 cannot clobber the other; dup2 leaves
    // the copies without CLOEXEC, so exactly fds 3 and 4 reach the browser.
    unsafe {
        cmd.pre_exec(move || {
            let a = libc::fcntl(child_in, libc::F_DUPFD_CLOEXEC, 10);
            let b = libc::fcntl(child_out, libc::F_DUPFD_CLOEXEC, 10);
            if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| start_err(e.to_string()))?;
    // The child's ends are closed here so that EOF on `events` means the browser is gone.
    drop(cmd_r);
    drop(evt_w);
    Ok(Launched {
        child,
        commands: File::from(cmd_w),
        events: File::from(evt_r),
        _lock: lock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let a = args(Path::new("/s/p"), Display::Headless, false);
        assert!(a.contains(&"--remote-debugging-pipe".to_string()));
        assert!(a.contains(&"--headless=new".to_string()));
        assert!(!a.contains(&"--no-sandbox".to_string()));
        assert!(!a.iter().any(|x| x.starts_with("--remote-debugging-port")));
        let a = args(Path::new("/s/p"), Display::Window, true);
        assert!(!a.contains(&"--headless=new".to_string()));
        assert!(a.contains(&"--no-sandbox".to_string()));
        assert!(a.contains(&"--user-data-dir=/s/p".to_string()));
    }

    #[test]
    fn one_lock_per_profile() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("prof");
        let first = ProfileLock::acquire(&p).unwrap();
        assert!(matches!(
            ProfileLock::acquire(&p),
            Err(BrowserError::ProfileBusy(_))
        ));
        drop(first);
        ProfileLock::acquire(&p).unwrap();
    }
}
