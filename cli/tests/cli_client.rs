//! Black-box tests of the `rolecall` binary's socket client against a fake daemon: a Unix socket
//! served by this test, answering with canned HTTP replies (Content-Length, chunked, errors,
//! garbage), in an isolated runtime dir.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;

const CREDS: &str = r#"{"Version":1,"AccessKeyId":"ASIAFAKE","SecretAccessKey":"sekrit","SessionToken":"tok","Expiration":"2026-11-22T10:00:00Z","AccountId":"111111111111"}"#;

/// Serves one connection per canned reply; returns the requests it saw.
fn fake_daemon(runtime: &Path, replies: Vec<Vec<u8>>) -> JoinHandle<Vec<String>> {
    std::fs::create_dir_all(runtime).unwrap();
    // The CLI trusts only a runtime dir private to the user (as the daemon makes it).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let listener = UnixListener::bind(runtime.join("rolecalld.sock")).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for reply in replies {
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            seen.push(String::from_utf8_lossy(&req).into_owned());
            let _ = conn.write_all(&reply);
        }
        seen
    })
}

fn rolecall(runtime: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rolecall"))
        .args(args)
        .env("ROLECALL_RUNTIME_DIR", runtime)
        .env("ROLECALL_STATE_DIR", runtime.join("state"))
        .env("ROLECALL_CONFIG", runtime.join("config.toml"))
        .env("ROLECALL_NO_AUTOSTART", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok_reply(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-rolecall-version: 0.1.0\r\nx-rolecall-protocol: {}\r\ncontent-length: {}\r\n\r\n{body}",
        rolecall_proto::PROTOCOL_VERSION,
        body.len()
    )
    .into_bytes()
}

fn chunked_reply(status: &str, body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nx-rolecall-protocol: {}\r\ntransfer-encoding: chunked\r\n\r\n",
        rolecall_proto::PROTOCOL_VERSION
    );
    for piece in body.as_bytes().chunks(7) {
        out.push_str(&format!("{:x}\r\n", piece.len()));
        out.push_str(std::str::from_utf8(piece).unwrap());
        out.push_str("\r\n");
    }
    out.push_str("0\r\n\r\n");
    out.into_bytes()
}

fn stderr_line(o: &Output) -> String {
    let e = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(e.lines().count(), 1, "exactly one stderr line: {e:?}");
    e.trim_end().to_string()
}

#[test]
fn credential_process_prints_exactly_the_json_from_a_content_length_reply() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let server = fake_daemon(&run, vec![ok_reply(CREDS)]);
    let o = rolecall(&run, &["credential-process", "dev admin"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8(o.stdout).unwrap(), format!("{CREDS}\n"));
    assert!(o.stderr.is_empty());
    let seen = server.join().unwrap();
    // stdin is not a terminal here: a non-interactive request, with the name percent-encoded.
    assert!(
        seen[0].starts_with(
            "GET /v1/credentials/dev%20admin?interactive=0&via=credential_process HTTP/1.1\r\n"
        ),
        "{seen:?}"
    );
    assert!(seen[0].contains("\r\nHost: localhost\r\n"));
}

#[test]
fn credential_process_reads_a_chunked_reply() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let server = fake_daemon(&run, vec![chunked_reply("200 OK", CREDS)]);
    let o = rolecall(&run, &["credential-process", "dev"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8(o.stdout).unwrap(), format!("{CREDS}\n"));
    server.join().unwrap();
}

#[test]
fn credential_process_error_reply_is_one_line_with_the_hint_and_no_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let body = r#"{"error":{"code":"not_signed_in","message":"not signed in to source 'corp'","hint":"rolecall login corp"}}"#;
    let server = fake_daemon(&run, vec![chunked_reply("503 Service Unavailable", body)]);
    let o = rolecall(&run, &["credential-process", "dev"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(
        stderr_line(&o),
        "rolecall: not signed in to source 'corp' — run: rolecall login corp"
    );
    server.join().unwrap();
}

#[test]
fn malformed_replies_give_a_clear_error() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"garbage\r\n\r\n".to_vec(), "not an HTTP/1.x status line"),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n{\"Version\":1".to_vec(),
            "ended early",
        ),
        (
            ok_reply(r#"{"not":"credentials"}"#),
            "not the expected JSON",
        ),
        (
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 4\r\n\r\noops".to_vec(),
            "status 502 without an error body",
        ),
        (Vec::new(), "ended early"),
    ];
    for (reply, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let server = fake_daemon(&run, vec![reply]);
        let o = rolecall(&run, &["credential-process", "dev"]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert!(o.stdout.is_empty());
        let line = stderr_line(&o);
        assert!(
            line.starts_with("rolecall: unexpected reply from rolecalld: "),
            "{line}"
        );
        assert!(line.contains(expect), "{line} should mention {expect}");
        server.join().unwrap();
    }
}

#[test]
fn daemon_down_without_autostart_fails_with_the_start_hint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = rolecall(&run, &["credential-process", "dev"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(
        stderr_line(&o),
        "rolecall: rolecalld is not running — run: rolecall daemon start"
    );
    // A stale socket file (nobody listening) counts as down too, not as a strange error.
    std::fs::create_dir_all(&run).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    drop(UnixListener::bind(run.join("rolecalld.sock")).unwrap());
    let o = rolecall(&run, &["--no-autostart", "credential-process", "dev"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr_line(&o),
        "rolecall: rolecalld is not running — run: rolecall daemon start"
    );
}

#[test]
fn a_runtime_dir_others_can_enter_is_refused_before_anything_is_sent() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let server = fake_daemon(&run, vec![ok_reply(CREDS)]);
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = rolecall(&run, &["credential-process", "dev"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty(), "credentials from an untrusted dir");
    let line = stderr_line(&o);
    assert!(
        line.contains("is accessible by other users (mode 755)") && line.contains("chmod 700"),
        "{line}"
    );
    // Unblock the fake (it waits for one connection) and show it saw no request.
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let o = rolecall(&run, &["credential-process", "dev"]);
    assert!(o.status.success());
    assert_eq!(server.join().unwrap().len(), 1);
}

#[test]
fn a_socket_path_too_long_for_sun_path_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r".repeat(120));
    std::fs::create_dir_all(&run).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    for args in [&["credential-process", "dev"][..], &["daemon", "start"][..]] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rolecall"));
        c.args(args)
            .env("ROLECALL_RUNTIME_DIR", &run)
            .env("ROLECALL_STATE_DIR", dir.path().join("state"))
            .env("ROLECALL_CONFIG", dir.path().join("config.toml"))
            .stdin(Stdio::null());
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let line = stderr_line(&o);
        assert!(
            line.contains("longer than the") && line.contains("set ROLECALL_RUNTIME_DIR"),
            "{args:?}: {line}"
        );
    }
}

#[test]
fn an_older_daemon_is_refused_without_autostart() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let reply = format!(
        "HTTP/1.1 200 OK\r\nx-rolecall-protocol: 0\r\ncontent-length: {}\r\n\r\n{CREDS}",
        CREDS.len()
    );
    let server = fake_daemon(&run, vec![reply.into_bytes()]);
    let o = rolecall(&run, &["credential-process", "dev"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stdout.is_empty(),
        "credentials from an incompatible daemon are not printed"
    );
    assert!(stderr_line(&o).contains("rolecalld speaks protocol 0"));
    server.join().unwrap();
}

#[test]
fn daemon_status_when_down_and_names_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = rolecall(&run, &["daemon", "status"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("rolecalld is not running"));

    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("config.toml"),
        "[sources.corp]\nkind = \"identity-center\"\n[profiles.b]\nsource = \"corp\"\n[profiles.a]\nsource = \"corp\"\n",
    )
    .unwrap();
    let o = rolecall(&run, &["names", "profiles"]);
    assert_eq!(String::from_utf8(o.stdout).unwrap(), "a\nb\n");
    let o = rolecall(&run, &["names", "sources"]);
    assert_eq!(String::from_utf8(o.stdout).unwrap(), "corp\n");
    std::fs::write(run.join("config.toml"), "[profiles\n").unwrap();
    let o = rolecall(&run, &["names", "profiles"]);
    assert!(o.status.success() && o.stdout.is_empty() && o.stderr.is_empty());
}
