//! Another local user against the CLI's runtime dir (docs/security.md, "Local users and the
//! runtime directory"). Each test plants what an attacker could, as uid `nobody` — a runtime
//! dir created first, a socket served by their process, a symlink, a fake daemon that reports
//! a pid of its choosing — and shows that the CLI refuses with one line and sends nothing.
//!
//! Planting as another uid needs root (CI runs as root); elsewhere the tests report a skip.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_tests::{kill_child, Installation};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NOBODY: u32 = 65534;

/// The skip protocol of `tests/run`: one line in `$ROLECALL_SKIP_LOG`, `SKIP:` on stderr.
fn skip(test: &str, reason: &str) {
    if let Some(log) = std::env::var_os("ROLECALL_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
    eprintln!("SKIP: {reason}");
}

fn need_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(test, "planting files and sockets as another uid needs root");
    false
}

/// A fake rolecalld served by `uid` (tests/e2e/fake_rolecalld.py); killed on drop.
struct Fake {
    child: Child,
    log: PathBuf,
}

impl Fake {
    fn start(socket: &Path, uid: u32, extra: &[&str]) -> Fake {
        let log = socket.with_extension(format!("requests-{}", std::process::id()));
        let log = std::env::temp_dir().join(log.file_name().unwrap());
        let _ = std::fs::remove_file(&log);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/fake_rolecalld.py");
        let python = ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .unwrap();
        let mut child = Command::new(python)
            .arg(&script)
            .arg("--socket")
            .arg(socket)
            .arg("--uid")
            .arg(uid.to_string())
            .arg("--log")
            .arg(&log)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 for the fake daemon");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the fake daemon did not start");
        Fake { child, log }
    }

    /// The request lines it received.
    fn requests(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        let _ = std::fs::remove_file(&self.log);
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// An installation whose runtime dir is `dir` (not created), with a config naming `dev`.
fn installation_with_runtime(dir: &Path) -> Installation {
    let mut inst = Installation::new();
    inst.set_env("ROLECALL_RUNTIME_DIR", dir);
    inst.write_config(
        "[daemon]\nsecret_store = \"file\"\nnotifications = false\n\n\
         [sources.corp]\nkind = \"identity-center\"\nstart_url = \"https://d-9067c2e5f7.awsapps.com/start\"\nregion = \"eu-west-1\"\n\n\
         [profiles.dev]\nsource = \"corp\"\naccount = \"111111111111\"\nrole = \"Dev\"\n",
    );
    inst
}

#[test]
fn a_runtime_dir_created_first_by_another_user_is_refused() {
    if !need_root("a_runtime_dir_created_first_by_another_user_is_refused") {
        return;
    }
    let shared = tempfile::Builder::new().prefix("rcs").tempdir().unwrap();
    chmod(shared.path(), 0o1777);
    let planted = shared.path().join("rolecall-0");
    let fake = Fake::start(
        &planted.join("rolecalld.sock"),
        NOBODY,
        &["--make-dir", "--dir-mode", "755"],
    );
    let inst = installation_with_runtime(&planted);
    for (args, autostart) in [
        (&["credential-process", "dev"][..], false),
        (&["credential-process", "dev"][..], true),
        (&["daemon", "status"][..], false),
        (&["daemon", "stop"][..], false),
        (&["login", "corp", "--paste"][..], true),
    ] {
        let mut cmd = inst.rolecall(args).stdin("PHNhbWxwOlJlc3BvbnNlLz4=\n");
        if !autostart {
            cmd = cmd.env("ROLECALL_NO_AUTOSTART", "1");
        }
        let run = cmd.timeout(Duration::from_secs(30)).run();
        let line = run.assert_one_line_failure();
        assert!(
            line.contains("belongs to uid 65534") && line.contains("refusing"),
            "{args:?}: {line}"
        );
    }
    assert_eq!(fake.requests(), "", "a request reached the planted daemon");
    assert!(
        !planted.join("rolecalld.start.err").exists() && !planted.join("start.lock").exists(),
        "the CLI wrote into the planted dir"
    );
}

#[test]
fn a_socket_served_by_another_uid_is_refused() {
    if !need_root("a_socket_served_by_another_uid_is_refused") {
        return;
    }
    // Our own private runtime dir; only the listener is another user's.
    let inst = Installation::new();
    let fake = Fake::start(&inst.socket_path(), NOBODY, &[]);
    for args in [
        &["credential-process", "dev"][..],
        &["daemon", "status"][..],
        &["daemon", "start"][..],
    ] {
        let run = inst.rolecall(args).timeout(Duration::from_secs(30)).run();
        let line = run.assert_one_line_failure();
        assert!(
            line.contains("served by uid 65534") && line.contains("refusing"),
            "{args:?}: {line}"
        );
    }
    assert_eq!(fake.requests(), "", "a request reached the fake daemon");
}

#[test]
fn without_xdg_runtime_dir_the_runtime_dir_is_in_the_state_dir_not_in_tmp() {
    if !need_root("without_xdg_runtime_dir_the_runtime_dir_is_in_the_state_dir_not_in_tmp") {
        return;
    }
    // A shared sticky temp dir where another user made `rolecall-<uid>` first.
    let shared = tempfile::Builder::new().prefix("rct").tempdir().unwrap();
    chmod(shared.path(), 0o1777);
    let planted = shared.path().join("rolecall-0");
    let fake = Fake::start(
        &planted.join("rolecalld.sock"),
        NOBODY,
        &["--make-dir", "--dir-mode", "700"],
    );
    let mut inst = Installation::new();
    inst.remove_env("ROLECALL_RUNTIME_DIR")
        .remove_env("XDG_RUNTIME_DIR")
        .set_env("TMPDIR", shared.path());
    let run = inst
        .rolecall(["credential-process", "dev"])
        .env("ROLECALL_NO_AUTOSTART", "1")
        .run();
    let line = run.assert_one_line_failure();
    assert!(line.contains("rolecalld is not running"), "{line}");
    let status = inst
        .rolecall(["daemon", "status"])
        .env("ROLECALL_NO_AUTOSTART", "1")
        .run();
    status.assert_code(3);
    let expected = inst.state_dir.join("run/rolecalld.sock");
    assert!(
        status.stdout.contains(&expected.display().to_string()),
        "{}",
        status.stdout
    );
    assert_eq!(fake.requests(), "", "the CLI used the planted temp dir");
}

#[test]
fn a_planted_start_err_symlink_is_never_followed() {
    if !need_root("a_planted_start_err_symlink_is_never_followed") {
        return;
    }
    let shared = tempfile::Builder::new().prefix("rcl").tempdir().unwrap();
    chmod(shared.path(), 0o755);
    let victim = shared.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    // The attacker's runtime dir (no daemon in it) with a symlink where the CLI keeps the
    // daemon's start-up errors: the first autostart would truncate the victim file.
    let planted = shared.path().join("run");
    std::fs::create_dir(&planted).unwrap();
    chmod(&planted, 0o777);
    let link = planted.join("rolecalld.start.err");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
    std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    let inst = installation_with_runtime(&planted);
    let run = inst
        .rolecall(["credential-process", "dev"])
        .timeout(Duration::from_secs(30))
        .run();
    let line = run.assert_one_line_failure();
    assert!(line.contains("belongs to uid 65534"), "{line}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn a_protocol_mismatch_never_signals_a_pid_the_daemon_reports() {
    if !need_root("a_protocol_mismatch_never_signals_a_pid_the_daemon_reports") {
        return;
    }
    // A process of ours that is not the daemon: what a fake daemon would name as its pid.
    let mut bystander = Command::new("sleep").arg("120").spawn().unwrap();
    let inst = Installation::new();
    // Served as our own uid (the uid check passes): only the pid verification stands.
    let fake = Fake::start(
        &inst.socket_path(),
        0,
        &["--protocol", "999", "--pid", &bystander.id().to_string()],
    );
    for (args, autostart) in [
        (&["credential-process", "dev"][..], true),
        (&["daemon", "stop"][..], false),
    ] {
        let mut cmd = inst.rolecall(args).timeout(Duration::from_secs(30));
        if !autostart {
            cmd = cmd.env("ROLECALL_NO_AUTOSTART", "1");
        }
        let run = cmd.run();
        let line = run.assert_one_line_failure();
        assert!(line.contains("did not stop"), "{args:?}: {line}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "{args:?}: the CLI signalled the pid the fake daemon reported"
        );
    }
    assert!(
        fake.requests().contains("POST /v1/shutdown"),
        "{}",
        fake.requests()
    );
    let _ = bystander.kill();
    let _ = bystander.wait();
}

/// The pid `SO_PEERCRED` reports for `socket`'s listener.
fn listener_pid(socket: &Path) -> u32 {
    use std::os::fd::AsRawFd;
    let s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into a properly sized ucred.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0);
    cred.pid as u32
}

#[test]
fn the_socket_of_an_autostarted_daemon_names_the_daemon_itself() {
    // `rolecall daemon stop` signals only the pid the kernel reports for the socket: after the
    // daemon's double fork that must still be the daemon, not its vanished starter.
    let inst = Installation::new();
    inst.rolecall(["daemon", "start"])
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
    let pids = inst.daemon_pids();
    assert_eq!(pids.len(), 1);
    assert_eq!(listener_pid(&inst.socket_path()), pids[0]);
    inst.rolecall(["daemon", "stop"])
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
    assert!(inst.daemon_pids().is_empty());
}
