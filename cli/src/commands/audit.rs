//! `rolecall audit [--since 1h] [--profile p] [--interface i] [--json]`: the daemon's audit
//! log (docs/audit.md), read straight from the files in the state dir — it can be read while
//! no daemon runs, and reading it needs no socket round trip per line.
//!
//! The files are trusted only when they are what the daemon writes: the state dir and the files
//! ours and writable by no one else, no symlinks. Lines this version cannot read are counted
//! and reported, never silently skipped.

use crate::cli::{AuditArgs, AuditInterface};
use anyhow::bail;
use rolecall_proto::audit::{file_path, Caller, Handout, Record, TokenRef};
use rolecall_proto::{paths, timefmt};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Rotated files looked for at most (the daemon keeps at most 100).
const MAX_FILES: u32 = 100;

pub fn run(a: &AuditArgs) -> anyhow::Result<i32> {
    let now = timefmt::now_epoch();
    let since = match &a.since {
        Some(s) => Some(parse_since(s, now).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let dir = paths::state_dir();
    check_dir(&dir)?;
    let filter = Filter {
        since,
        profile: a.profile.clone(),
        interface: a.interface.map(interface_name),
    };
    let mut out = std::io::stdout().lock();
    let mut rows = Vec::new();
    let mut unreadable = 0usize;
    // Oldest file first, so the output is in time order.
    for n in (0..=MAX_FILES).rev() {
        let path = file_path(&dir, n);
        let Some(file) = open_trusted(&path)? else {
            continue;
        };
        for line in BufReader::new(file).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let Ok(rec) = serde_json::from_str::<Record>(&line) else {
                unreadable += 1;
                continue;
            };
            if !filter.keeps(&rec) {
                continue;
            }
            if a.json {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            } else {
                rows.push(row(&rec));
            }
        }
    }
    if !a.json {
        if rows.is_empty() {
            eprintln!(
                "rolecall: no matching audit records in {}",
                file_path(&dir, 0).display()
            );
        } else {
            out.write_all(render(&rows).as_bytes())?;
        }
    }
    out.flush()?;
    if unreadable > 0 {
        eprintln!(
            "rolecall: {unreadable} audit lines could not be read (written by another version?)"
        );
    }
    Ok(0)
}

struct Filter {
    since: Option<i64>,
    profile: Option<String>,
    interface: Option<&'static str>,
}

impl Filter {
    /// "Dropped" notes are kept whatever the profile or interface: the lost records may have
    /// been of that profile.
    fn keeps(&self, rec: &Record) -> bool {
        if let Some(since) = self.since {
            match timefmt::parse_rfc3339(rec.time()) {
                Some(t) if t >= since => {}
                _ => return false,
            }
        }
        let Record::Credentials(h) = rec else {
            return true;
        };
        self.profile.as_deref().is_none_or(|p| p == h.profile)
            && self.interface.is_none_or(|i| i == h.interface.as_str())
    }
}

fn interface_name(i: AuditInterface) -> &'static str {
    use rolecall_proto::audit::Interface as I;
    match i {
        AuditInterface::CredentialProcess => I::CredentialProcess,
        AuditInterface::Exec => I::Exec,
        AuditInterface::Env => I::Env,
        AuditInterface::Socket => I::Socket,
        AuditInterface::Container => I::Container,
        AuditInterface::Imds => I::Imds,
    }
    .as_str()
}

/// `--since`: a duration back from `now` (`90s`, `30m`, `1h30m`, `2d`) or an RFC 3339 time.
fn parse_since(s: &str, now: i64) -> Result<i64, String> {
    if let Some(t) = timefmt::parse_rfc3339(s) {
        return Ok(t);
    }
    let bad = || {
        format!("--since {s:?} is neither a duration like 30m, 1h or 2d nor a time like 2026-12-04T10:00:00Z")
    };
    let (mut total, mut num, mut any) = (0i64, String::new(), false);
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: i64 = num.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(bad());
    }
    Ok(now.saturating_sub(total))
}

fn me() -> u32 {
    paths::current_uid()
}

/// The state dir must be ours and writable by no one else (it is where the daemon keeps its
/// secrets; a planted one could hold forged records).
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("cannot inspect the state dir {}: {e}", dir.display()),
    };
    if !meta.is_dir() || meta.uid() != me() || meta.mode() & 0o022 != 0 {
        bail!(
            "the state dir {} is not a private directory of yours; refusing to read the audit log from it",
            dir.display()
        );
    }
    Ok(())
}

/// Opens one audit file without following a symlink; `None` when it does not exist. A file
/// that is not ours, or that others can write, is refused.
fn open_trusted(path: &Path) -> anyhow::Result<Option<File>> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!(
            "cannot open the audit log {}: {e} (a symlink is refused)",
            path.display()
        ),
    };
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != me() || meta.mode() & 0o022 != 0 {
        bail!(
            "the audit log {} is not a regular file of yours that only you can write; refusing to read it",
            path.display()
        );
    }
    Ok(Some(file))
}

const HEADER: [&str; 5] = ["TIME", "INTERFACE", "PROFILE", "ACCESS KEY", "CALLER"];

fn row(rec: &Record) -> [String; 5] {
    match rec {
        Record::Credentials(h) => [
            h.time.clone(),
            h.interface.as_str().to_string(),
            h.profile.clone(),
            h.access_key_id.clone(),
            describe(h),
        ],
        Record::Dropped { time, count } => [
            time.clone(),
            "-".into(),
            "-".into(),
            "-".into(),
            format!("{count} records dropped (the writer could not keep up)"),
        ],
    }
}

fn base(exe: &str) -> &str {
    exe.rsplit('/').next().unwrap_or(exe)
}

/// One readable phrase for the caller: `python3.11[1234] via rolecall[1240] uid 1000`, or
/// `127.0.0.1:40112 uid 1000 token 3f2a… (bound to pid 77)`.
fn describe(h: &Handout) -> String {
    let c: &Caller = &h.caller;
    let mut parts = Vec::new();
    let proc_name = |exe: &Option<String>, pid: Option<u32>| match (exe, pid) {
        (Some(e), Some(p)) => Some(format!("{}[{p}]", base(e))),
        (None, Some(p)) => Some(format!("pid {p}")),
        _ => None,
    };
    if let Some(addr) = &c.addr {
        parts.push(addr.clone());
    }
    match (proc_name(&c.parent_exe, c.ppid), proc_name(&c.exe, c.pid)) {
        (Some(parent), Some(child)) => parts.push(format!("{parent} via {child}")),
        (None, Some(child)) => parts.push(child),
        _ => {}
    }
    if let Some(uid) = c.uid {
        parts.push(format!("uid {uid}"));
    }
    if let Some(TokenRef { id, bound_pid }) = &h.token {
        parts.push(format!("token {id}"));
        if let Some(p) = bound_pid {
            parts.push(format!("(bound to pid {p})"));
        }
    }
    if let Some(hash) = &h.session_policy {
        parts.push(format!("scoped {hash}"));
    }
    if let Some(n) = h.count.filter(|n| *n > 1) {
        parts.push(format!("x{n}"));
    }
    if parts.is_empty() {
        "unknown".into()
    } else {
        parts.join(" ")
    }
}

fn render(rows: &[[String; 5]]) -> String {
    let mut widths = HEADER.map(str::len);
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 4 {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(HEADER);
    for r in rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]].map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        assert_eq!(parse_since("90s", 1000), Ok(910));
        assert_eq!(parse_since("1h30m", 10_000), Ok(10_000 - 5400));
        assert_eq!(parse_since("2d", 200_000), Ok(200_000 - 172_800));
        assert_eq!(
            parse_since("2026-12-04T10:00:00Z", 0),
            Ok(timefmt::parse_rfc3339("2026-12-04T10:00:00Z").unwrap())
        );
        for bad in ["", "1", "h", "1y", "yesterday", "-1h"] {
            let e = parse_since(bad, 0).unwrap_err();
            assert!(e.contains("neither a duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn callers_read_as_a_phrase() {
        let mut h = Handout {
            time: "t".into(),
            interface: rolecall_proto::audit::Interface::CredentialProcess,
            profile: "p".into(),
            role: None,
            role_arn: None,
            account_id: String::new(),
            access_key_id: String::new(),
            expiration: String::new(),
            caller: Caller {
                uid: Some(1000),
                pid: Some(12),
                exe: Some("/usr/bin/rolecall".into()),
                ppid: Some(11),
                parent_exe: Some("/usr/bin/python3.11".into()),
                addr: None,
            },
            token: None,
            session_policy: None,
            count: None,
        };
        assert_eq!(describe(&h), "python3.11[11] via rolecall[12] uid 1000");
        h.caller = Caller {
            uid: Some(1000),
            addr: Some("127.0.0.1:4000".into()),
            ..Caller::default()
        };
        h.token = Some(TokenRef {
            id: "ab12".into(),
            bound_pid: Some(7),
        });
        assert_eq!(
            describe(&h),
            "127.0.0.1:4000 uid 1000 token ab12 (bound to pid 7)"
        );
        h.count = Some(40);
        assert_eq!(
            describe(&h),
            "127.0.0.1:4000 uid 1000 token ab12 (bound to pid 7) x40"
        );
    }
}
