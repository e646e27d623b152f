//! The one test rig of the daemon's integration tests: the skip convention, private temporary
//! directories, the `rolecalld` binary started on a temporary runtime dir, a tiny HTTP client
//! of its socket, child processes that are always reaped, and polling with a deadline.
//!
//! Each test file compiles this module on its own and uses part of it, so unused parts are
//! expected here (hence the allow below); everything in it is used by some test file.
#![allow(dead_code)]

pub mod keyring;
mod skip;
pub mod sources;

#[allow(unused_imports)] // not every test file skips
pub use skip::skip;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A config with one identity-center source that is never reached (a closed loopback port)
/// and one profile of it, the file store and an ephemeral container port.
pub const GOOD_CONFIG: &str = r#"[daemon]
container_listen = "127.0.0.1:0"
secret_store = "file"

[sources.corp]
kind = "identity-center"
start_url = "http://127.0.0.1:9/start"
region = "eu-west-1"

[profiles.dev]
source = "corp"
account = "111111111111"
role = "Dev"
"#;

/// The `rolecalld` under test: the one in `ROLECALL_BIN_DIR` (the suite's), else cargo's.
pub fn rolecalld_bin() -> PathBuf {
    match std::env::var_os("ROLECALL_BIN_DIR") {
        Some(d) => PathBuf::from(d).join("rolecalld"),
        None => PathBuf::from(env!("CARGO_BIN_EXE_rolecalld")),
    }
}

/// A temporary directory as private as a runtime or state dir must be (tempfile makes 0755).
pub fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Polls `f` every 20 ms until it holds; fails the test naming `what` after `within`.
pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed and reaped when the test ends, however it ends.
pub struct Kid(pub Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A reply of the socket API.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request on a fresh connection (`Connection: close`), the raw reply parsed.
pub fn request_raw(socket: &Path, raw: &[u8]) -> Reply {
    let mut s = UnixStream::connect(socket).expect("connect to the daemon socket");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(raw).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP reply: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// One request with an optional JSON body.
pub fn request(socket: &Path, method: &str, path: &str, body: Option<&str>) -> Reply {
    let body = body.unwrap_or("");
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: rolecalld\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request_raw(socket, raw.as_bytes())
}

/// [`request`] from async code (on the blocking pool).
pub async fn request_async(socket: &Path, method: &str, path: &str) -> Reply {
    let (socket, method, path) = (socket.to_path_buf(), method.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || request(&socket, &method, &path, None))
        .await
        .unwrap()
}

/// A `rolecalld` process on a temporary runtime dir, state dir, config and HOME. Killed (or, if
/// it daemonized, asked to stop over its socket) when dropped.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

impl Daemon {
    pub fn runtime(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    pub fn socket(&self) -> PathBuf {
        self.runtime().join("rolecalld.sock")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The command that starts it, isolated from the caller's environment: no browser, no
    /// display, no endpoint overrides, no socket activation.
    pub fn command(&self) -> Command {
        let mut c = Command::new(rolecalld_bin());
        c.env("ROLECALL_RUNTIME_DIR", self.runtime())
            .env("ROLECALL_STATE_DIR", self.state())
            .env("ROLECALL_CONFIG", self.config())
            .env("HOME", self.dir.path())
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("BROWSER")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_STS")
            .stdin(Stdio::null());
        c
    }

    /// A private temp dir with `config` (none when `None`), nothing started.
    pub fn prepare(config: Option<&str>) -> Self {
        let dir = private_dir();
        if let Some(c) = config {
            std::fs::write(dir.path().join("config.toml"), c).unwrap();
        }
        Daemon { dir, child: None }
    }

    /// Prepared and started in the foreground, serving.
    pub fn start(config: Option<&str>) -> Self {
        let mut d = Self::prepare(config);
        d.spawn_foreground();
        d
    }

    pub fn spawn_foreground(&mut self) {
        let child = self
            .command()
            .arg("--foreground")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rolecalld");
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn wait_ready(&self) {
        let socket = self.socket();
        wait_until("rolecalld to serve", Duration::from_secs(10), || {
            UnixStream::connect(&socket).is_ok()
        });
    }

    pub fn get(&self, path: &str) -> Reply {
        request(&self.socket(), "GET", path, None)
    }

    pub fn post(&self, path: &str, body: Option<&str>) -> Reply {
        request(&self.socket(), "POST", path, body)
    }

    /// Waits for the daemon process to exit; its stderr and status.
    pub fn wait_exit(&mut self, within: Duration) -> Output {
        let mut child = self.child.take().expect("a running daemon");
        let deadline = Instant::now() + within;
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("rolecalld did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A daemonized instance is not our child: stop it through its socket.
        if UnixStream::connect(self.socket()).is_ok() {
            let _ = request(&self.socket(), "POST", "/v1/shutdown", None);
        }
    }
}
