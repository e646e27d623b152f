//! Who is at the other end of a request, for the audit record.
//!
//! Socket clients: `SO_PEERCRED` gives the uid and pid of the process that connected — the
//! `rolecall` CLI. Its executable is `/proc/<pid>/exe`, and since the CLI is only a messenger,
//! its parent (`/proc/<pid>/stat` field 4, `/proc/<ppid>/exe`) is recorded too: that is the
//! real client (`aws`, python, a shell running `rolecall exec`). These are read while the
//! request is answered, before a short-lived caller exits and its pid can be reused.
//!
//! TCP clients (container endpoint, IMDS): the address, and for loopback peers the uid that
//! owns the client socket, as the listener found it when it admitted the connection (looked
//! up once per connection, not per request): [`super::TcpCaller`].

use rolecall_proto::audit::Caller;

/// The caller on the Unix socket with the kernel's credentials `uid` and `pid`.
pub fn socket(uid: u32, pid: Option<i32>) -> Caller {
    let pid = pid.and_then(|p| u32::try_from(p).ok()).filter(|p| *p > 0);
    let ppid = pid.and_then(parent_of).filter(|p| *p > 0);
    Caller {
        uid: Some(uid),
        pid,
        exe: pid.and_then(exe_of),
        ppid,
        parent_exe: ppid.and_then(exe_of),
        addr: None,
    }
}

fn exe_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Field 4 of `/proc/<pid>/stat`; the command name (field 2) may hold spaces and parentheses,
/// so the fields are counted after its last `)`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ppid(&stat)
}

fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_after_the_command_name() {
        assert_eq!(parse_ppid("42 (a) b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parse_ppid("42 (plain) R 1 2 3"), Some(1));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn our_own_process_is_named() {
        let c = socket(5, Some(std::process::id() as i32));
        assert_eq!(c.uid, Some(5));
        assert_eq!(c.pid, Some(std::process::id()));
        let exe = std::env::current_exe().unwrap();
        assert_eq!(c.exe.as_deref(), exe.to_str());
        // SAFETY: getppid has no preconditions.
        assert_eq!(c.ppid, Some(unsafe { libc::getppid() } as u32));
        assert!(c.parent_exe.is_some());
        assert_eq!(socket(5, None).pid, None);
    }
}
