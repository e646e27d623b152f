//! The running daemon cannot leave its secrets in a core dump, and other processes of the same
//! user cannot read its memory: RLIMIT_CORE is 0 and (Linux) the process is not dumpable, which
//! makes its /proc entries root-owned. Checked from outside on a real `rolecalld`: as root the
//! daemon runs as uid 65534 (setpriv), so that "root-owned /proc entry" means something.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;
use rig::{rolecalld_bin, Kid};

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

#[test]
#[cfg(target_os = "linux")]
fn daemon_is_not_dumpable_and_has_no_core_limit() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[daemon]\ncontainer_listen = \"127.0.0.1:0\"\nsecret_store = \"file\"\n",
    )
    .unwrap();
    let mut cmd = if root {
        // The daemon's own files must belong to the uid it runs as.
        for p in [dir.to_path_buf(), dir.join("config.toml")] {
            std::os::unix::fs::chown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(rolecalld_bin());
        c
    } else {
        Command::new(rolecalld_bin())
    };
    let runtime = dir.join("run");
    let child = cmd
        .arg("--foreground")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("ROLECALL_RUNTIME_DIR", &runtime)
        .env("ROLECALL_STATE_DIR", dir.join("state"))
        .env("ROLECALL_CONFIG", dir.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rolecalld");
    let kid = Kid(child);
    let pid = kid.0.id();
    let deadline = Instant::now() + Duration::from_secs(15);
    while UnixStream::connect(runtime.join("rolecalld.sock")).is_err() {
        assert!(Instant::now() < deadline, "rolecalld did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }

    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("a core limit line");
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(
        &fields[4..6],
        ["0", "0"],
        "soft and hard core limits: {core}"
    );

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("Uid line");
    assert_ne!(
        uid, 0,
        "the daemon must run as a non-root uid for this check"
    );
    let owner = std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap()
        .uid();
    assert_eq!(
        owner, 0,
        "a non-dumpable process's /proc entries belong to root (daemon uid {uid})"
    );
}
