//! `rolecall daemon start|stop|status|reload|logs`.
//!
//! `stop` and `status` talk to whatever daemon runs, whatever its protocol number (an old one
//! must still be stoppable); `logs` reads the log file directly, so it works while the daemon is
//! down — which is when it is needed most.

use crate::autostart;
use crate::cli::{DaemonArgs, DaemonCommand};
use crate::client::{Client, ClientError};
use rolecall_proto::api::{OkReply, Status, VersionReply};
use rolecall_proto::paths;
use rolecall_proto::request::Request;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// Exit code of `daemon status` when no daemon runs (as LSB init scripts and systemctl do).
pub const NOT_RUNNING: i32 = 3;

pub fn run(a: &DaemonArgs) -> anyhow::Result<i32> {
    match &a.command {
        DaemonCommand::Start => start(),
        DaemonCommand::Stop => stop(),
        DaemonCommand::Status => status(),
        DaemonCommand::Reload => reload(),
        DaemonCommand::Logs { follow, lines } => logs(&paths::log_path(), *follow, *lines),
    }
}

fn start() -> anyhow::Result<i32> {
    let socket = paths::socket_path();
    let (_, started) = autostart::ensure_running_report(&socket)?;
    // Through a checking client: a daemon of another protocol number is replaced here.
    let client = Client::connect_to(socket, true)?;
    let v: VersionReply = client.send(&Request::Version)?;
    if started {
        println!("Started rolecalld (pid {}, version {})", v.pid, v.version);
    } else {
        println!(
            "rolecalld is already running (pid {}, version {})",
            v.pid, v.version
        );
    }
    Ok(0)
}

fn stop() -> anyhow::Result<i32> {
    let client = match Client::connect_existing() {
        Ok(c) => c,
        Err(e) if e.is_daemon_down() => {
            println!("rolecalld is not running");
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    client.set_read_timeout(Some(Duration::from_secs(5)));
    let pid = client
        .send::<VersionReply>(&Request::Version)
        .ok()
        .map(|v| v.pid)
        .or_else(pid_from_file);
    // The reported pid is only shown; `stop` signals nothing but the verified listener.
    let verified = autostart::stop(client.socket_path())?;
    match verified.or(pid) {
        Some(p) => println!("Stopped rolecalld (pid {p})"),
        None => println!("Stopped rolecalld"),
    }
    Ok(0)
}

/// `POST /v1/reload` on a running daemon (starting one would read the config anyway).
fn reload() -> anyhow::Result<i32> {
    let client = match Client::connect_existing() {
        Ok(c) => c,
        Err(ClientError::DaemonDown { .. }) => {
            println!("rolecalld is not running; it reads the config when it starts");
            return Ok(NOT_RUNNING);
        }
        Err(e) => return Err(e.into()),
    };
    client.set_read_timeout(Some(Duration::from_secs(10)));
    let s: Status = client.send(&Request::Status)?;
    // A config error comes back as one located line (file:line:column: what); it exits 1.
    client.send::<OkReply>(&Request::Reload)?;
    println!("rolecalld reloaded {}", s.daemon.config);
    Ok(0)
}

fn pid_from_file() -> Option<u32> {
    std::fs::read_to_string(paths::pid_path())
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn status() -> anyhow::Result<i32> {
    let client = match Client::connect_existing() {
        Ok(c) => c,
        Err(ClientError::DaemonDown { socket }) => {
            println!("rolecalld is not running (socket {})", socket.display());
            return Ok(NOT_RUNNING);
        }
        Err(e) => return Err(e.into()),
    };
    client.set_read_timeout(Some(Duration::from_secs(5)));
    let s: Status = client.send(&Request::Status)?;
    let d = &s.daemon;
    let now = crate::clock::system_now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut out = format!(
        "rolecalld is running\n  version   {} (protocol {}{})\n  pid       {}\n  uptime    {}\n  socket    {}\n  config    {}\n  log       {}\n",
        d.version,
        d.protocol,
        if d.protocol == rolecall_proto::PROTOCOL_VERSION {
            ""
        } else {
            "; this rolecall speaks another: run rolecall daemon stop"
        },
        d.pid,
        human_duration(now.saturating_sub(d.started_at).max(0) as u64),
        d.socket,
        d.config,
        paths::log_path().display(),
    );
    if let Some(l) = &d.container_listen {
        out.push_str(&format!("  container http://{l}\n"));
    }
    if let Some(e) = &d.config_error {
        out.push_str(&format!(
            "  config error (the last good config is in use): {e}\n"
        ));
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(0)
}

/// `3h 05m`, `4m 10s`, `12s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

fn logs(path: &Path, follow: bool, lines: usize) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow => {
            eprintln!("rolecall: waiting for {} to appear…", path.display());
            wait_for_file(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!(
                "rolecalld has not written {} yet — run: rolecall daemon start",
                path.display()
            )
        }
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let mut pos = write_tail(&mut file, lines, &mut out)?;
    if !follow {
        return Ok(0);
    }
    let mut inode = file.metadata()?.ino();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        // Rotation (a new file at the path) or truncation: start again from the top.
        match std::fs::metadata(path) {
            Ok(m) if m.ino() != inode || m.len() < pos => {
                if let Ok(f) = File::open(path) {
                    file = f;
                    inode = m.ino();
                    pos = 0;
                }
            }
            _ => {}
        }
        file.seek(SeekFrom::Start(pos))?;
        let mut buf = Vec::new();
        let n = file.read_to_end(&mut buf)?;
        if n > 0 {
            out.write_all(&buf)?;
            out.flush()?;
            pos += n as u64;
        }
    }
}

fn wait_for_file(path: &Path) -> File {
    loop {
        if let Ok(f) = File::open(path) {
            return f;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Writes the last `lines` lines of `file` and returns the offset reached (its end).
fn write_tail(file: &mut File, lines: usize, out: &mut impl Write) -> anyhow::Result<u64> {
    let len = file.metadata()?.len();
    // Read backwards in blocks until enough newlines are seen: logs can be large.
    let mut start = len;
    let mut tail: Vec<u8> = Vec::new();
    let want = lines + 1;
    while start > 0 && tail.iter().filter(|&&b| b == b'\n').count() < want {
        let block = start.min(64 * 1024);
        start -= block;
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = vec![0; block as usize];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
    }
    let text_end = if tail.last() == Some(&b'\n') {
        tail.len() - 1
    } else {
        tail.len()
    };
    let mut cut = 0;
    let mut seen = 0;
    for (i, &b) in tail[..text_end].iter().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == lines {
                cut = i + 1;
                break;
            }
        }
    }
    if lines > 0 {
        out.write_all(&tail[cut..])?;
    }
    out.flush()?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_prints_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let body: String = (1..=200_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &body).unwrap();
        let mut out = Vec::new();
        let end = write_tail(&mut File::open(&p).unwrap(), 3, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "line 199998\nline 199999\nline 200000\n"
        );
        assert_eq!(end, body.len() as u64);

        std::fs::write(&p, "a\nb").unwrap();
        let mut out = Vec::new();
        write_tail(&mut File::open(&p).unwrap(), 5, &mut out).unwrap();
        assert_eq!(out, b"a\nb");
        let mut out = Vec::new();
        write_tail(&mut File::open(&p).unwrap(), 0, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(12), "12s");
        assert_eq!(human_duration(250), "4m 10s");
        assert_eq!(human_duration(3 * 3600 + 300), "3h 05m");
        assert_eq!(human_duration(2 * 86_400 + 3600), "2d 1h");
    }
}
