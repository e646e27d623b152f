//! Who is on the other end of the daemon socket, and whether a pid is our daemon.
//!
//! The CLI hands the daemon SAML assertions (`login --paste`) and takes credentials and the
//! container listener from it, so before it uses a connection it checks that the process
//! serving the socket runs as the same uid (`SO_PEERCRED` on Linux, `getpeereid` elsewhere).
//! And it only ever signals a process it verified to be this user's `rolecalld`: the pid the
//! kernel reports for the socket (never a pid a reply or a file names), owned by our uid, whose
//! executable is `rolecalld`.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// The peer's credentials, as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    /// The process that listens on the socket (Linux only): the daemon, or the service manager
    /// that holds the socket for it (socket activation).
    pub pid: Option<u32>,
}

/// The credentials of the process serving `stream`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_of(stream: &UnixStream) -> io::Result<Peer> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a properly sized ucred.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Peer {
        uid: cred.uid,
        pid: u32::try_from(cred.pid).ok().filter(|p| *p > 0),
    })
}

/// The credentials of the process serving `stream`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn peer_of(stream: &UnixStream) -> io::Result<Peer> {
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: getpeereid writes two integers through valid pointers.
    if unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Peer { uid, pid: None })
}

/// Why a connection must not be used, as one line; `None` when its peer is us.
pub fn refusal(stream: &UnixStream, socket: &std::path::Path) -> Option<String> {
    let me = rolecall_proto::paths::current_uid();
    match peer_of(stream) {
        Ok(p) if p.uid == me => None,
        Ok(p) => Some(format!(
            "refusing the socket {}: it is served by uid {}, not by you (uid {me}); another user may have planted it — stop that process or remove the socket",
            socket.display(),
            p.uid
        )),
        Err(e) => Some(format!(
            "refusing the socket {}: cannot read who serves it: {e}",
            socket.display()
        )),
    }
}

/// Whether `pid` is a `rolecalld` of the current user: the process's real uid is ours and its
/// executable is named `rolecalld` (also after an upgrade replaced the file, when the kernel
/// shows it as `… (deleted)`). A daemon that made itself non-dumpable hides `exe` from its own
/// uid; then its `comm` decides (a process of our own uid could fake that, but code running as
/// the user is out of scope). Without `/proc` nothing can be verified: false.
pub fn is_our_daemon(pid: u32) -> bool {
    if pid == 0 || pid == std::process::id() {
        return false;
    }
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    let Ok(status) = std::fs::read_to_string(proc_dir.join("status")) else {
        return false;
    };
    let real_uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u32>().ok());
    if real_uid != Some(rolecall_proto::paths::current_uid()) {
        return false;
    }
    match std::fs::read_link(proc_dir.join("exe")) {
        Ok(exe) => {
            let exe = exe.to_string_lossy();
            let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
            std::path::Path::new(exe)
                .file_name()
                .is_some_and(|n| n == "rolecalld")
        }
        Err(_) => std::fs::read_to_string(proc_dir.join("comm"))
            .is_ok_and(|c| c.trim_end() == "rolecalld"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn a_socket_of_ours_names_our_uid_and_the_listener_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _l = UnixListener::bind(&path).unwrap();
        let s = UnixStream::connect(&path).unwrap();
        let p = peer_of(&s).unwrap();
        assert_eq!(p.uid, rolecall_proto::paths::current_uid());
        if cfg!(target_os = "linux") {
            assert_eq!(p.pid, Some(std::process::id()));
        }
        assert_eq!(refusal(&s, &path), None);
    }

    #[test]
    fn only_a_rolecalld_of_ours_counts_as_the_daemon() {
        assert!(!is_our_daemon(std::process::id()), "the CLI itself");
        assert!(!is_our_daemon(0));
        assert!(!is_our_daemon(u32::MAX));
        let mut child = crate::spawn::command("sleep").arg("10").spawn().unwrap();
        assert!(
            !is_our_daemon(child.id()),
            "a process of ours that is not rolecalld"
        );
        let _ = child.kill();
        let _ = child.wait();
        // A program named rolecalld of ours counts, also once its file was replaced (upgrade).
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("rolecalld");
        std::fs::copy(
            ["/usr/bin/sleep", "/bin/sleep"]
                .into_iter()
                .find(|p| std::path::Path::new(p).exists())
                .unwrap(),
            &fake,
        )
        .unwrap();
        let mut daemon = crate::spawn::command(&fake).arg("10").spawn().unwrap();
        if cfg!(target_os = "linux") {
            assert!(is_our_daemon(daemon.id()));
            std::fs::remove_file(&fake).unwrap();
            assert!(is_our_daemon(daemon.id()), "after the file was deleted");
        }
        let _ = daemon.kill();
        let _ = daemon.wait();
        if rolecall_proto::paths::current_uid() != 0 {
            // pid 1 belongs to root: not ours.
            assert!(!is_our_daemon(1));
        }
    }
}
