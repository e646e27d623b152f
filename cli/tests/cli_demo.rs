//! `rolecall demo` end to end: the real sandbox, the real daemon, and the CLI, as a user runs it.
//! Needs `rolecall-sandbox` and `rolecalld` built beside `rolecall`
//! (`cargo build -p rolecall-sandbox -p rolecall-daemon` with the same target dir).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn demo_cmd(tmp: &Path, args: &[&str]) -> Command {
    let rolecall = PathBuf::from(env!("CARGO_BIN_EXE_rolecall"));
    for bin in ["rolecalld", "rolecall-sandbox"] {
        assert!(
            rolecall.with_file_name(bin).is_file(),
            "{bin} is missing beside rolecall — run: cargo build -p rolecall-daemon -p rolecall-sandbox"
        );
    }
    let mut c = Command::new(rolecall);
    c.arg("demo")
        .args(args)
        // The demo's directory goes under TMPDIR: this test checks it is removed.
        .env("TMPDIR", tmp)
        .stdin(Stdio::null());
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn the_demo_runs_the_product_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let o: Output = demo_cmd(tmp.path(), &[]).output().unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "the demo takes seconds"
    );
    assert!(out.contains("Signed in to 'corp'"), "{out}");
    // credential_process output is shown with the secret parts masked.
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("{\"Version\":1,"))
        .expect("the credentials line");
    assert!(line.contains("\"AccountId\":\"111111111111\""));
    assert!(
        line.contains("\"SecretAccessKey\":\"") && line.contains("(40 chars)"),
        "{line}"
    );
    // STS, called by the daemon with the AWS SDK, names the permission set's role.
    assert!(out.contains("Account 111111111111"));
    assert!(out.contains("AWSReservedSSO_DeveloperAdmin_"), "{out}");
    assert!(out.contains("rolecalld is running"));
    // Nothing left: the temporary installation is gone, and so are its processes.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("rolecall-demo-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let pid: u32 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("pid       "))
        .expect("daemon pid in the output")
        .trim()
        .parse()
        .unwrap();
    assert!(!pid_alive(pid), "rolecalld {pid} still runs");
}

#[test]
fn demo_keep_prints_working_instructions() {
    let tmp = tempfile::tempdir().unwrap();
    let o = demo_cmd(tmp.path(), &["--keep"]).output().unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    let exports: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .filter(|(k, _)| k != "PATH")
        .collect();
    assert!(exports.iter().any(|(k, _)| k == "ROLECALL_RUNTIME_DIR"));
    let sandbox_pid: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("kill "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the sandbox's pid")
        .parse()
        .unwrap();
    let root = out
        .lines()
        .find_map(|l| l.strip_prefix("rm -rf "))
        .expect("the directory to remove")
        .trim_matches('\'')
        .to_string();

    let rolecall = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rolecall"));
        c.env_remove("ROLECALL_NO_AUTOSTART")
            .envs(exports.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        c
    };
    // By hand, as the instructions say: another profile, signed in by the demo's login.
    let creds = rolecall()
        .args(["credential-process", "dev-read"])
        .output()
        .unwrap();
    assert!(creds.status.success(), "{}", text(&creds.stderr));
    assert!(text(&creds.stdout).contains("\"AccountId\":\"111111111111\""));
    // The chained profile: AssumeRole with dev-admin's credentials, in another account.
    let chained = rolecall()
        .args(["credential-process", "deploy"])
        .output()
        .unwrap();
    assert!(chained.status.success(), "{}", text(&chained.stderr));
    assert!(text(&chained.stdout).contains("\"AccountId\":\"222222222222\""));

    let stop = rolecall().args(["daemon", "stop"]).output().unwrap();
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    // SAFETY: a plain signal to the sandbox this test asked the demo to keep.
    unsafe { libc::kill(sandbox_pid as libc::pid_t, libc::SIGKILL) };
    std::fs::remove_dir_all(&root).unwrap();
}
