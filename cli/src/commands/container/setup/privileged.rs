//! Running the setup's commands as root: through sudo unless we are root, shown the way they
//! run, with sbin directories searched the way sudo's secure_path would.

use anyhow::Context as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `name` on PATH (and, when the command will run through sudo, in the sbin directories of
/// sudo's secure_path, which a user's PATH often lacks).
pub(super) fn find_program(name: &str, root: bool) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if !root {
        dirs.extend(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt as _;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The command as printed: through sudo unless already root.
pub(super) fn shell_line(cmd: &[String], root: bool) -> String {
    let line = cmd
        .iter()
        .map(|w| {
            if w == "!" {
                "'!'".to_string()
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    if root {
        line
    } else {
        format!("sudo {line}")
    }
}

pub(super) fn command(cmd: &[String], root: bool) -> Command {
    let mut c = if root {
        crate::spawn::command(&cmd[0])
    } else {
        let mut c = crate::spawn::command("sudo");
        c.arg(&cmd[0]);
        c
    };
    c.args(&cmd[1..]);
    c
}

pub(super) fn run_status(cmd: &[String], stdin: Option<&str>, root: bool) -> anyhow::Result<bool> {
    let mut c = command(cmd, root);
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c
        .spawn()
        .with_context(|| format!("cannot run {}", if root { &cmd[0] } else { "sudo" }))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A tool that exits early closes its end: its exit status tells what went wrong.
        let _ = pipe.write_all(text.as_bytes());
    }
    Ok(child.wait()?.success())
}

pub(super) fn run_quiet(cmd: &[String], root: bool) -> anyhow::Result<bool> {
    let st = command(cmd, root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", if root { &cmd[0] } else { "sudo" }))?;
    Ok(st.success())
}
