//! Black-box tests of autostart and `rolecall daemon …` against the real `rolecalld`, which must
//! be built beside `rolecall` (`cargo build -p rolecall-daemon`), in an isolated installation.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Install {
    dir: tempfile::TempDir,
}

impl Install {
    fn new() -> Install {
        let rolecall = PathBuf::from(env!("CARGO_BIN_EXE_rolecall"));
        let daemon = rolecall.with_file_name("rolecalld");
        assert!(
            daemon.is_file(),
            "{} is missing — run: cargo build -p rolecall-daemon (with the same target dir)",
            daemon.display()
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[daemon]\nsecret_store = \"file\"\nnotifications = false\ncontainer_listen = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        Install { dir }
    }

    fn runtime(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rolecall"));
        c.args(args)
            .env_remove("ROLECALL_NO_AUTOSTART")
            .env("HOME", self.dir.path().join("home"))
            .env("ROLECALL_CONFIG", self.dir.path().join("config.toml"))
            .env("ROLECALL_STATE_DIR", self.dir.path().join("state"))
            .env("ROLECALL_RUNTIME_DIR", self.runtime())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        let _ = self.run(&["daemon", "stop"]);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn socket_answers(p: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(p).is_ok()
}

#[test]
fn a_burst_of_fifty_callers_starts_exactly_one_daemon() {
    let inst = Install::new();
    let children: Vec<_> = (0..50)
        .map(|_| {
            inst.cmd(&["daemon", "start"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let started: Vec<_> = outputs
        .iter()
        .filter(|o| text(&o.stdout).starts_with("Started rolecalld"))
        .collect();
    assert_eq!(started.len(), 1, "exactly one caller started the daemon");
    // Everybody talks to the same daemon.
    let pid_of = |o: &Output| {
        let t = text(&o.stdout);
        t.split("(pid ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_string()
    };
    let first = pid_of(&outputs[0]);
    assert!(outputs.iter().all(|o| pid_of(o) == first));

    let st = inst.run(&["daemon", "status"]);
    assert!(st.status.success());
    let s = text(&st.stdout);
    assert!(s.contains(&format!("pid       {first}")), "{s}");
    assert!(s.contains(&format!("protocol {}", rolecall_proto::PROTOCOL_VERSION)));

    let stop = inst.run(&["daemon", "stop"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    assert!(text(&stop.stdout).starts_with("Stopped rolecalld"));
    assert!(!socket_answers(&inst.runtime().join("rolecalld.sock")));
    let st = inst.run(&["daemon", "status"]);
    assert_eq!(st.status.code(), Some(3));
}

#[test]
fn credential_process_autostarts_and_reports_the_daemons_error_in_one_line() {
    let inst = Install::new();
    let t = Instant::now();
    let o = inst.run(&["credential-process", "no-such-profile"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("rolecall: "), "{err}");
    assert!(err.contains("no-such-profile"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // It was started (and left running) by that call.
    assert!(socket_answers(&inst.runtime().join("rolecalld.sock")));
    let logs = inst.run(&["daemon", "logs", "-n", "5"]);
    assert!(logs.status.success(), "{}", text(&logs.stderr));
}

#[test]
fn a_stale_socket_file_does_not_stop_autostart() {
    let inst = Install::new();
    std::fs::create_dir_all(inst.runtime()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(inst.runtime(), std::fs::Permissions::from_mode(0o700)).unwrap();
    // A socket file nobody listens on, as a crashed daemon leaves behind.
    drop(std::os::unix::net::UnixListener::bind(inst.runtime().join("rolecalld.sock")).unwrap());
    let o = inst.run(&["daemon", "start"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("Started rolecalld"));
}

/// An "old" daemon: answers everything with protocol 0 until asked to shut down, then removes
/// its socket as rolecalld does. Returns the request lines it saw.
fn old_daemon(socket: PathBuf) -> std::thread::JoinHandle<Vec<String>> {
    use std::io::{Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            if req.is_empty() {
                continue; // a probe: connect and close
            }
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let body = if line.starts_with("POST /v1/shutdown") {
                r#"{"ok":true}"#
            } else {
                "{}"
            };
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nx-rolecall-protocol: 0\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            let done = line.starts_with("POST /v1/shutdown");
            seen.push(line);
            if done {
                std::fs::remove_file(&socket).unwrap();
                break;
            }
        }
        seen
    })
}

#[test]
fn a_daemon_of_another_protocol_is_replaced_once_and_the_request_retried() {
    let inst = Install::new();
    std::fs::create_dir_all(inst.runtime()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(inst.runtime(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let old = old_daemon(inst.runtime().join("rolecalld.sock"));
    let o = inst.run(&["credential-process", "no-such-profile"]);
    let seen = old.join().unwrap();
    assert_eq!(
        seen[0],
        "GET /v1/credentials/no-such-profile?interactive=0&via=credential_process HTTP/1.1"
    );
    assert!(
        seen.iter().any(|l| l == "POST /v1/shutdown HTTP/1.1"),
        "{seen:?}"
    );
    // The answer comes from the new daemon: its own error about the profile, not the old `{}`.
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = text(&o.stderr);
    assert!(err.contains("no-such-profile"), "{err}");
    let st = inst.run(&["daemon", "status"]);
    assert!(
        text(&st.stdout).contains(&format!("protocol {}", rolecall_proto::PROTOCOL_VERSION)),
        "{}",
        text(&st.stdout)
    );
}

#[test]
fn two_hundred_concurrent_credential_process_calls_share_one_autostarted_daemon() {
    let inst = Install::new();
    let children: Vec<_> = (0..200)
        .map(|_| {
            inst.cmd(&["credential-process", "nope"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let first = text(&outputs[0].stderr);
    assert!(first.contains("nope"), "{first}");
    for o in &outputs {
        // Every caller got the daemon's own answer, none a start-up failure.
        assert_eq!(o.status.code(), Some(1));
        assert!(o.stdout.is_empty());
        assert_eq!(text(&o.stderr), first);
    }
    let st = inst.run(&["daemon", "status"]);
    assert!(st.status.success());
    // A second rolecalld would have refused to run next to the first and said so on the
    // stderr that the starter keeps in the runtime dir.
    let start_err =
        std::fs::read_to_string(inst.runtime().join("rolecalld.start.err")).unwrap_or_default();
    assert!(!start_err.contains("already running"), "{start_err}");
}
