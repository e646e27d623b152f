//! `TestCommand`: a process run with an installation's environment, with a time limit, stdin
//! bytes and the captured result.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct TestCommand {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

/// What a finished command did.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// A readable form of the command line, for failure messages.
    pub line: String,
}

impl TestCommand {
    pub(crate) fn new(cmd: Command) -> Self {
        Self {
            cmd,
            stdin: None,
            timeout: Duration::from_secs(60),
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(k);
        self
    }

    pub fn current_dir(mut self, d: impl AsRef<std::path::Path>) -> Self {
        self.cmd.current_dir(d);
        self
    }

    /// Bytes for stdin (else stdin is /dev/null: not a terminal, as SDKs run credential_process).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The underlying command, for callers that need to spawn it themselves.
    pub fn into_command(self) -> Command {
        self.cmd
    }

    pub fn spawn(mut self) -> std::io::Result<Child> {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn()?;
        if let Some(bytes) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("piped stdin");
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        Ok(child)
    }

    /// Runs to completion; panics when the time limit passes (after killing the process).
    pub fn run(self) -> Run {
        let line = format!("{:?}", self.cmd);
        let timeout = self.timeout;
        let start = Instant::now();
        let mut child = self.spawn().unwrap_or_else(|e| panic!("spawn {line}: {e}"));
        let pid = child.id();
        // Reading stdout/stderr on threads lets `wait` see the exit even for large outputs.
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let out_t = std::thread::spawn(move || read_all(out));
        let err_t = std::thread::spawn(move || read_all(err));
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > timeout {
                crate::kill_child(&mut child);
                panic!("timed out after {timeout:?} (pid {pid}): {line}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = start.elapsed();
        Run {
            status,
            stdout: out_t.join().unwrap_or_default(),
            stderr: err_t.join().unwrap_or_default(),
            elapsed,
            line,
        }
    }
}

fn read_all(mut r: impl std::io::Read) -> String {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with the command's output unless it exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "expected success: {}\nstatus: {}\nstdout: {}\nstderr: {}",
            self.line,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless it exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "expected exit {code}: {}\nstdout: {}\nstderr: {}",
            self.line,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The rolecall failure contract: exit 1, nothing on stdout, exactly one line on stderr.
    /// Returns that line.
    #[track_caller]
    pub fn assert_one_line_failure(&self) -> String {
        self.assert_code(1);
        assert!(
            self.stdout.is_empty(),
            "stdout must be empty on failure, got {:?}",
            self.stdout
        );
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "stderr must be one line, got {:?}",
            self.stderr
        );
        lines[0].to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout of {} is not JSON ({e}): {:?}\nstderr: {}",
                self.line, self.stdout, self.stderr
            )
        })
    }
}

/// Runs the commands all at once (released together by a barrier) and returns their results
/// in order. Each `Run::elapsed` is measured from the common start.
pub fn run_concurrently(cmds: Vec<TestCommand>) -> Vec<Run> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(cmds.len()));
    let handles: Vec<_> = cmds
        .into_iter()
        .map(|c| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                c.run()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a concurrent command panicked"))
        .collect()
}

/// Whether `s` is an RFC 3339 UTC timestamp with seconds precision: `2026-11-22T10:00:00Z`.
pub fn is_utc_seconds_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Panics when any of `secrets` (non-empty ones) appears in `text`, naming where.
#[track_caller]
pub fn assert_no_secrets(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !text.contains(s),
            "{what} contains a secret (…{}…)",
            &s[..4]
        );
    }
}

/// Finds something shaped like an Identity Center token the sandbox issues: an access token
/// (`aoa…`), a refresh token (`aor…`) — base64url runs of 100+ characters after the prefix, as
/// the real service's are — or a client secret (a JWT-like `eyJraWQiOiJzYW5kYm94In0.…`). Tests
/// cannot learn the daemon's tokens (its store is encrypted), so they look for their shapes.
pub fn find_token_shape(text: &str) -> Option<&'static str> {
    if text.contains("eyJraWQiOiJzYW5kYm94In0.") {
        return Some("an OIDC client secret");
    }
    let b = text.as_bytes();
    let is_tok = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    for (prefix, what) in [
        (&b"aoa"[..], "an access token"),
        (&b"aor"[..], "a refresh token"),
    ] {
        let mut i = 0;
        while let Some(pos) = b[i..].windows(3).position(|w| w == prefix) {
            let start = i + pos;
            let run = b[start + 3..].iter().take_while(|c| is_tok(**c)).count();
            let boundary = start == 0 || !is_tok(b[start - 1]);
            if boundary && run >= 100 {
                return Some(what);
            }
            i = start + 3;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shapes_are_found_and_ordinary_text_is_not() {
        let tok = "Ab-_9".repeat(30);
        assert_eq!(
            find_token_shape(&format!("bearer=aoa{tok} end")),
            Some("an access token")
        );
        assert_eq!(
            find_token_shape(&format!("\"aor{tok}\"")),
            Some("a refresh token")
        );
        assert!(find_token_shape("secret eyJraWQiOiJzYW5kYm94In0.abc").is_some());
        // Words that happen to contain the prefixes, and short runs, are not tokens.
        assert_eq!(find_token_shape("kaoa aorta aoa123 favorite"), None);
        assert_eq!(find_token_shape(&format!("xaoa{tok}")), None);
    }

    #[test]
    fn utc_seconds_timestamps() {
        assert!(is_utc_seconds_timestamp("2026-11-22T10:00:00Z"));
        assert!(!is_utc_seconds_timestamp("2026-11-22T10:00:00.000Z"));
        assert!(!is_utc_seconds_timestamp("2026-11-22T10:00:00+00:00"));
        assert!(!is_utc_seconds_timestamp("2026-11-22 10:00:00Z"));
    }
}
