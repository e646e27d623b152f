//! `rolecall demo` end to end: the real sandbox, the real daemon, and the CLI, as a user runs it.
//! Needs `rolecall-sandbox` and `rolecalld` built beside `rolecall`
//! (`cargo build -p rolecall-sandbox -p rolecall-daemon` with the same target dir).

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

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

/// The lines under the demo heading `== <title>` (up to the next heading); panics when the
/// section is missing, so a step the demo left out fails here.
fn section<'a>(out: &'a str, title: &str) -> &'a str {
    let start = out
        .find(&format!("\n== {title}\n"))
        .unwrap_or_else(|| panic!("no section '{title}' in:\n{out}"))
        + title.len()
        + 5;
    let rest = &out[start..];
    &rest[..rest.find("\n== ").unwrap_or(rest.len())]
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

    let s = section(
        &out,
        "A sandbox stands in for Entra ID, IAM Identity Center and STS",
    );
    assert!(s.contains("sandbox at http://127.0.0.1:"), "{s}");
    let s = section(&out, "Configuration");
    assert!(s.contains("profile dev-admin"), "{s}");
    assert!(
        s.contains("credential_process = rolecall credential-process"),
        "{s}"
    );
    let s = section(&out, "Start the daemon");
    assert!(s.contains("Started rolecalld (pid "), "{s}");
    let s = section(
        &out,
        "Sign in (the sandbox's robot browser approves the browser step)",
    );
    assert!(s.contains("Signed in to 'corp'"), "{s}");

    // credential_process output is shown with the secret parts masked.
    let s = section(&out, "What every AWS SDK runs: credential_process");
    let line = s
        .lines()
        .find(|l| l.trim_start().starts_with("{\"Version\":1,"))
        .expect("the credentials line");
    assert!(line.contains("\"AccountId\":\"111111111111\""));
    assert!(
        line.contains("\"SecretAccessKey\":\"") && line.contains("(40 chars)"),
        "{line}"
    );
    // STS, called by the daemon with the AWS SDK, names the permission set's role.
    let s = section(
        &out,
        "A real AWS SDK call with those credentials: STS GetCallerIdentity",
    );
    assert!(s.contains("Account 111111111111"), "{s}");
    assert!(s.contains("AWSReservedSSO_DeveloperAdmin_"), "{s}");
    // The aws CLI is the machine's: either its answer or a line saying why there is none.
    let s = section(&out, "The aws CLI, through credential_process");
    assert!(
        s.contains("\"Account\": \"111111111111\"") || s.contains("(no `aws` on PATH: skipped)"),
        "{s}"
    );
    let s = section(&out, "Status");
    assert!(s.contains("$ rolecall status"), "{s}");
    assert!(s.contains("container endpoint  http://127.0.0.1:"), "{s}");
    let corp = s
        .lines()
        .find(|l| l.trim_start().starts_with("corp "))
        .unwrap_or_else(|| panic!("no source row: {s}"));
    assert!(
        corp.contains("identity-center") && corp.contains(" yes "),
        "{corp}"
    );
    let dev = s
        .lines()
        .find(|l| l.trim_start().starts_with("dev-admin "))
        .unwrap_or_else(|| panic!("no profile row: {s}"));
    assert!(
        // Four-hour credentials fetched a moment ago: "in 3h59m", or "in 4h00m" within the
        // first second.
        dev.contains("(111111111111)") && (dev.contains(" in 3h5") || dev.contains(" in 4h00m")),
        "{dev}"
    );
    // The container endpoint served credentials to the token `rolecall container` printed.
    let s = section(
        &out,
        "Containers and long-running programs: the container credentials endpoint",
    );
    assert!(
        s.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:"),
        "{s}"
    );
    assert!(
        s.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN=rct_") && s.contains("(47 chars)"),
        "the token is shown masked: {s}"
    );
    assert!(
        s.lines()
            .any(|l| l.trim_start().starts_with("GET http://127.0.0.1:")
                && l.contains("/v1/container/dev-admin → ASIA")),
        "{s}"
    );
    let s = section(&out, "The prompt segment");
    assert!(
        s.lines().any(|l| {
            let l = l.trim();
            l.starts_with("dev-admin@dev 3h5") || l == "dev-admin@dev 4h00m"
        }),
        "the prompt names profile, account and time left: {s}"
    );
    let s = section(&out, "The daemon");
    assert!(s.contains("rolecalld is running"), "{s}");
    assert!(out.contains("\nDemo ran in "), "{out}");

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
    // The scoped session the instructions show: the chained role again, read-only.
    assert!(
        out.contains("rolecall exec --read-only deploy -- aws s3 mb"),
        "{out}"
    );
    let scoped = rolecall()
        .args(["exec", "--read-only", "--static", "deploy", "--", "env"])
        .output()
        .unwrap();
    assert!(scoped.status.success(), "{}", text(&scoped.stderr));
    let key = |o: &str| {
        o.lines()
            .find_map(|l| l.strip_prefix("AWS_ACCESS_KEY_ID="))
            .map(str::to_string)
    };
    let scoped_key = key(&text(&scoped.stdout)).expect("scoped keys");
    assert!(
        !text(&chained.stdout).contains(&scoped_key),
        "other keys than the profile's"
    );

    let stop = rolecall().args(["daemon", "stop"]).output().unwrap();
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    // SAFETY: a plain signal to the sandbox this test asked the demo to keep.
    unsafe { libc::kill(sandbox_pid as libc::pid_t, libc::SIGKILL) };
    std::fs::remove_dir_all(&root).unwrap();
}
