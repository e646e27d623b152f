//! Starting `rolecalld` on demand, and replacing a daemon left over from an older install.
//!
//! Many processes may find the daemon down at once (a burst of `credential_process` calls from
//! a test runner or Terraform). They serialise on an `flock` of `paths::start_lock_path()`: the
//! holder re-checks the socket, starts ONE daemon and waits for its socket; the others keep
//! probing the socket and find it answering. The daemon itself also refuses to run twice.

mod lock;
mod spawn;

use crate::client::{self, is_not_listening, ClientError};
use lock::StartLock;
use rolecall_proto::request::Request;
use rolecall_proto::{paths, HEADER_PROTOCOL, PROTOCOL_VERSION};
use spawn::{open_start_err, spawn_detached, START_ERR_NAME};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a freshly started daemon may take to open its socket.
const SOCKET_WAIT: Duration = Duration::from_secs(5);
/// How long a caller waits for another caller that holds the start-up lock.
const LOCK_WAIT: Duration = Duration::from_secs(15);
/// How long an old daemon may take to exit after `POST /v1/shutdown`.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// The daemon binary: beside our own executable (an install or `target/debug`), else `$PATH`.
pub fn find_daemon() -> Result<PathBuf, ClientError> {
    find_sibling("rolecalld").ok_or_else(|| {
        ClientError::StartFailed(
            "rolecalld was found neither beside rolecall nor on PATH".to_string(),
        )
    })
}

/// A program installed beside the running `rolecall`, else on `$PATH`.
pub fn find_sibling(name: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        let p = dir.join(name);
        if is_executable(&p) {
            return Some(p);
        }
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Returns a connection to the daemon, starting it when nothing listens on `socket`.
pub fn ensure_running(socket: &Path) -> Result<UnixStream, ClientError> {
    ensure_running_report(socket).map(|(s, _)| s)
}

/// Like [`ensure_running`], and says whether this process is the one that started it (of a
/// burst of callers, exactly one is).
pub fn ensure_running_report(socket: &Path) -> Result<(UnixStream, bool), ClientError> {
    let lock = StartLock::open(&paths::start_lock_path())?;
    let deadline = crate::clock::monotonic() + LOCK_WAIT;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(s) = probe(socket)? {
            return Ok((s, false));
        }
        if let Some(_held) = lock.try_lock()? {
            // Re-check under the lock: another caller may have just finished starting it.
            if let Some(s) = probe(socket)? {
                return Ok((s, false));
            }
            return start_and_wait(socket).map(|s| (s, true));
        }
        if crate::clock::monotonic() >= deadline {
            return Err(ClientError::StartFailed(format!(
                "another rolecall held {} for {}s",
                paths::start_lock_path().display(),
                LOCK_WAIT.as_secs()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// Stops a daemon that answered with another protocol number, and starts ours. Runs under the
/// start-up lock so that a burst of callers replaces it once.
pub fn replace_incompatible(socket: &Path) -> Result<(), ClientError> {
    let lock = StartLock::open(&paths::start_lock_path())?;
    let _held = lock.lock(LOCK_WAIT)?;
    if let Some(s) = probe(socket)? {
        let reply = client::exchange(s, &Request::Version, None)?;
        let same = reply
            .header(HEADER_PROTOCOL)
            .and_then(|p| p.parse::<u32>().ok())
            == Some(PROTOCOL_VERSION);
        if same {
            return Ok(()); // another caller replaced it already
        }
        // The pid the reply names is not used: only the kernel's word for who serves the
        // socket, verified, is ever signalled (see `stop`).
        stop(socket)?;
    }
    start_and_wait(socket).map(drop)
}

/// Asks the daemon on `socket` to shut down and waits until it is gone (socket closed and,
/// when its pid is verified, the process exited), falling back to SIGTERM. Returns that pid.
///
/// The only pid ever signalled is the one the kernel reports for the socket's listener
/// (`SO_PEERCRED`), and only when it is verified to be this user's `rolecalld` — never a pid
/// from a reply or a file, which whoever serves the socket controls. A daemon whose socket a
/// service manager holds (socket activation) has no verifiable pid: it gets the shutdown
/// request only, and the service manager its stop.
pub fn stop(socket: &Path) -> Result<Option<u32>, ClientError> {
    let (asked, pid) = match probe(socket)? {
        Some(s) => {
            let pid = client::peer::peer_of(&s)
                .ok()
                .and_then(|p| p.pid)
                .filter(|&p| client::peer::is_our_daemon(p));
            (client::exchange(s, &Request::Shutdown, None).is_ok(), pid)
        }
        None => return Ok(None),
    };
    if !asked {
        if let Some(pid) = pid {
            terminate(pid);
        }
    }
    let deadline = crate::clock::monotonic() + EXIT_WAIT;
    let mut termed = !asked;
    loop {
        let socket_gone = probe(socket)?.is_none();
        let process_gone = pid.is_none_or(|p| !alive(p));
        if socket_gone && process_gone {
            return Ok(pid);
        }
        if crate::clock::monotonic() >= deadline {
            if let (false, Some(p)) = (termed, pid) {
                // It did not honour the shutdown request in time: ask the kernel way, once.
                terminate(p);
                termed = true;
                continue;
            }
            return Err(ClientError::StartFailed(format!(
                "the running rolecalld{} did not stop within {}s",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                EXIT_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn terminate(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A connection when something of ours listens, `None` when the socket is absent or stale;
/// an error when the runtime dir or the listener is not the user's own.
fn probe(socket: &Path) -> Result<Option<UnixStream>, ClientError> {
    match client::trusted_connect(socket) {
        Ok(s) => Ok(Some(s)),
        Err(ClientError::Connect { error, .. }) if is_not_listening(&error) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Starts `rolecalld` detached and waits for its socket. The caller holds the start-up lock.
fn start_and_wait(socket: &Path) -> Result<UnixStream, ClientError> {
    let bin = find_daemon()?;
    // The daemon reports start-up failures on stderr before it detaches: keep them in a file
    // (a pipe could break the daemon's later writes once we stop reading it).
    let err_path = paths::runtime_dir().join(START_ERR_NAME);
    let err_file = open_start_err(&err_path).ok();
    let mut child = spawn_detached(&bin, err_file)?;
    let deadline = crate::clock::monotonic() + SOCKET_WAIT;
    let mut pause = Duration::from_millis(1);
    let mut exited_ok = false;
    loop {
        if let Some(s) = probe(socket)? {
            return Ok(s);
        }
        if !exited_ok {
            match child.try_wait() {
                Ok(Some(st)) if st.success() => exited_ok = true, // it daemonized
                Ok(Some(st)) => {
                    let why = std::fs::read_to_string(&err_path)
                        .ok()
                        .and_then(|t| {
                            t.lines()
                                .rev()
                                .find(|l| !l.trim().is_empty())
                                .map(|l| l.trim_start_matches("rolecalld: ").to_string())
                        })
                        .unwrap_or_else(|| format!("it exited ({st}); see: rolecall daemon logs"));
                    return Err(ClientError::StartFailed(why));
                }
                Ok(None) | Err(_) => {}
            }
        }
        if crate::clock::monotonic() >= deadline {
            return Err(ClientError::StartFailed(format!(
                "{} did not open {} within {}s; see: rolecall daemon logs",
                bin.display(),
                socket.display(),
                SOCKET_WAIT.as_secs()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
