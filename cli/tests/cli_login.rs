//! `rolecall login` / `logout` against the real sandbox and daemon (built beside `rolecall`:
//! `cargo build -p rolecall-daemon -p rolecall-sandbox`): the device flow shows the URL and code
//! and ends with "Signed in" once someone approves; `--paste` argument errors come before
//! anything starts.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct World {
    dir: tempfile::TempDir,
    sandbox: Child,
    base_url: String,
}

fn bin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_rolecall")).with_file_name(name);
    assert!(
        p.is_file(),
        "{} is missing — run: cargo build -p rolecall-daemon -p rolecall-sandbox",
        p.display()
    );
    p
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut sandbox = Command::new(bin("rolecall-sandbox"))
            .args(["--auto-approve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(sandbox.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base_url = line.trim().to_string();
        assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url:?}");
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "[daemon]\nsecret_store = \"file\"\nnotifications = false\ncontainer_listen = \"127.0.0.1:0\"\n\n\
                 [sources.corp]\nkind = \"identity-center\"\nstart_url = \"https://d-9067c2e5f7.awsapps.com/start\"\n\
                 region = \"eu-west-1\"\nendpoint_url = \"{base_url}\"\n\n\
                 [profiles.dev-admin]\nsource = \"corp\"\naccount = \"111111111111\"\nrole = \"DeveloperAdmin\"\n"
            ),
        )
        .unwrap();
        World {
            dir,
            sandbox,
            base_url,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rolecall"));
        let d = self.dir.path();
        c.args(args)
            .env_remove("ROLECALL_NO_AUTOSTART")
            .env_remove("BROWSER")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("HOME", d)
            .env("ROLECALL_CONFIG", d.join("config.toml"))
            .env("ROLECALL_STATE_DIR", d.join("state"))
            .env("ROLECALL_RUNTIME_DIR", d.join("run"))
            .stdin(Stdio::null());
        c
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.cmd(&["daemon", "stop"]).output();
        let _ = self.sandbox.kill();
        let _ = self.sandbox.wait();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Reads the child's stderr until `pred` matches the text so far, or the deadline passes.
fn read_until(err: &mut impl Read, pred: impl Fn(&str) -> bool, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut all = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        let n = err.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        if pred(&text(&all)) {
            break;
        }
    }
    text(&all)
}

#[test]
fn device_login_shows_the_code_and_ends_signed_in_once_approved() {
    let w = World::new();
    let mut login = w
        .cmd(&["login", "--no-browser"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = login.stderr.take().unwrap();
    let shown = read_until(
        &mut err,
        |t| t.contains("user_code="),
        Duration::from_secs(20),
    );
    assert!(shown.contains("To sign in to 'corp', open "), "{shown}");
    assert!(shown.contains("and enter the code: "), "{shown}");
    assert!(
        !shown.contains('█'),
        "no QR code when stderr is not a terminal"
    );
    let complete = shown
        .split_whitespace()
        .find(|w| w.contains("user_code="))
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    assert!(complete.starts_with(&w.base_url), "{complete}");

    // The user opens the page (the sandbox approves it by itself).
    let browse = Command::new(bin("rolecall-sandbox"))
        .args(["browse", &complete])
        .output()
        .unwrap();
    assert!(browse.status.success(), "{}", text(&browse.stderr));

    let rest = read_until(&mut err, |_| false, Duration::from_secs(30));
    let status = login.wait().unwrap();
    assert!(status.success(), "{shown}{rest}");
    assert!(rest.contains("Signed in to 'corp'"), "{rest}");

    // Signed in: credentials flow, and logout ends it.
    let creds = w
        .cmd(&["credential-process", "dev-admin"])
        .output()
        .unwrap();
    assert!(creds.status.success(), "{}", text(&creds.stderr));
    let out: Output = w.cmd(&["logout", "corp"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "Signed out of 'corp'\n");
    let creds = w
        .cmd(&["credential-process", "dev-admin"])
        .output()
        .unwrap();
    assert_eq!(creds.status.code(), Some(1));
    assert!(creds.stdout.is_empty());
    assert!(
        text(&creds.stderr).contains("rolecall login corp"),
        "{}",
        text(&creds.stderr)
    );
}

#[test]
fn login_to_an_unknown_source_fails_in_one_line() {
    let w = World::new();
    let o = w.cmd(&["login", "nope"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.starts_with("rolecall: ") && e.contains("nope"), "{e}");
}

#[test]
fn paste_mistakes_are_reported_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rolecall"))
            .args(args)
            .env("ROLECALL_RUNTIME_DIR", dir.path().join("run"))
            .env("ROLECALL_NO_AUTOSTART", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        // The CLI may refuse before reading stdin (that is the point of some cases): a
        // broken pipe here is expected, not a failure.
        let _ = c.stdin.take().unwrap().write_all(stdin.as_bytes());
        c.wait_with_output().unwrap()
    };
    let o = run(&["login", "--paste"], "PHNhbWw+");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("--paste needs the source"));
    let o = run(&["login", "legacy", "--paste"], "not base64 <xml>");
    assert!(
        text(&o.stderr).contains("not base64"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["login", "legacy", "--paste"], "  \n");
    assert!(text(&o.stderr).contains("no SAMLResponse on stdin"));
    // A well-formed paste gets as far as the (absent) daemon.
    let o = run(
        &["login", "legacy", "--paste"],
        "SAMLResponse=PHNhbWw%2B%3D\n",
    );
    assert!(
        text(&o.stderr).contains("rolecalld is not running"),
        "{}",
        text(&o.stderr)
    );
    assert!(!Path::new(&dir.path().join("run/rolecalld.sock")).exists());
}
