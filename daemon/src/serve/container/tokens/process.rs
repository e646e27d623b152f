//! Whether the process a token is bound to still runs (and is the same process).

/// Whether `pid` still runs and is the process the token was bound to.
pub(super) fn alive(pid: u32, start: Option<u64>) -> bool {
    let Ok(pid_t) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence and permission; no signal is sent.
    let r = unsafe { libc::kill(pid_t, 0) };
    if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    match (start, start_time(pid)) {
        (Some(want), Some(now)) => want == now,
        // No start time recorded (or not on Linux): existence is all we can check.
        _ => true,
    }
}

/// The process's start time in clock ticks since boot (Linux), to tell a reused pid apart.
pub(super) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts with field 3 (state); starttime is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}
