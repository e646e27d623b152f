//! Starting `rolecalld` on demand, and replacing a daemon left over from an older install.
//!
//! Many processes may find the daemon down at once (a burst of `credential_process` calls from
//! a test runner or Terraform). They serialise on an `flock` of `paths::start_lock_path()`: the
//! holder re-checks the socket, starts ONE daemon and waits for its socket; the others keep
//! probing the socket and find it answering. The daemon itself also refuses to run twice.

use crate::client::{self, is_not_listening, ClientError};
use rolecall_proto::request::Request;
use rolecall_proto::{paths, HEADER_PROTOCOL, PROTOCOL_VERSION};
use std::fs::{DirBuilder, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    let deadline = Instant::now() + LOCK_WAIT;
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
        if Instant::now() >= deadline {
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
    let deadline = Instant::now() + EXIT_WAIT;
    let mut termed = !asked;
    loop {
        let socket_gone = probe(socket)?.is_none();
        let process_gone = pid.is_none_or(|p| !alive(p));
        if socket_gone && process_gone {
            return Ok(pid);
        }
        if Instant::now() >= deadline {
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
    let deadline = Instant::now() + SOCKET_WAIT;
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
        if Instant::now() >= deadline {
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

/// The file (in the runtime dir) that keeps the daemon's start-up errors.
const START_ERR_NAME: &str = "rolecalld.start.err";

/// Opens a fresh `rolecalld.start.err`: whatever is at the path is removed first (a stale file
/// of an earlier start; removing a symlink removes the link, never its target), then the file
/// is created with `O_EXCL|O_NOFOLLOW`, so that nothing planted there can redirect the write
/// (and its truncation) to another file.
fn open_start_err(path: &Path) -> std::io::Result<File> {
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
fn spawn_detached(bin: &Path, stderr: Option<File>) -> Result<Child, ClientError> {
    let mut cmd = Command::new(bin);
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

/// The start-up lock file, created 0600 in a 0700 runtime dir (the daemon refuses a runtime dir
/// others can read, so we create it the way it wants).
struct StartLock {
    file: File,
}

/// Held lock; released when dropped.
struct Held<'a>(&'a File);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SAFETY: the fd is valid for the lifetime of the borrowed File.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl StartLock {
    fn open(path: &Path) -> Result<StartLock, ClientError> {
        if let Some(dir) = path.parent() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    ClientError::StartFailed(format!("cannot create {}: {e}", dir.display()))
                })?;
            // An existing directory is taken as it is by `create`: check it before opening
            // anything in it.
            if let rolecall_proto::trust::DirState::Untrusted(why) =
                rolecall_proto::trust::runtime_dir_state(dir)
            {
                return Err(ClientError::Refused(why));
            }
        }
        // std opens with O_CLOEXEC, so the daemon we spawn never inherits (and holds) the lock.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                ClientError::StartFailed(format!("cannot open {}: {e}", path.display()))
            })?;
        Ok(StartLock { file })
    }

    fn try_lock(&self) -> Result<Option<Held<'_>>, ClientError> {
        // SAFETY: flock on a valid fd.
        let r = unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(Some(Held(&self.file)));
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(None),
            _ => Err(ClientError::StartFailed(format!(
                "cannot lock {}: {e}",
                paths::start_lock_path().display()
            ))),
        }
    }

    fn lock(&self, wait: Duration) -> Result<Held<'_>, ClientError> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(h) = self.try_lock()? {
                return Ok(h);
            }
            if Instant::now() >= deadline {
                return Err(ClientError::StartFailed(format!(
                    "another rolecall held {} for {}s",
                    paths::start_lock_path().display(),
                    wait.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_lock_is_exclusive_between_open_files_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/start.lock");
        let a = StartLock::open(&path).unwrap();
        let b = StartLock::open(&path).unwrap();
        let held = a.try_lock().unwrap().expect("first lock");
        assert!(
            b.try_lock().unwrap().is_none(),
            "second holder while the first holds it"
        );
        assert!(b.lock(Duration::from_millis(50)).is_err());
        drop(held);
        assert!(b.try_lock().unwrap().is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

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

    #[test]
    fn one_of_many_threads_takes_the_lock_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/start.lock");
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let max = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (path, inside, max) = (path.clone(), inside.clone(), max.clone());
                std::thread::spawn(move || {
                    let l = StartLock::open(&path).unwrap();
                    let _h = l.lock(Duration::from_secs(10)).unwrap();
                    let now = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    max.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(max.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
