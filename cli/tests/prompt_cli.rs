//! `rolecall prompt` as a whole process: the segment from a hand-written snapshot, and the
//! fail-soft cases (no profile, daemon down, stale or corrupt snapshot, unknown profile) that
//! must print nothing, write nothing to stderr and exit 0.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod shell_common;

use shell_common::{stderr, stdout, Install};

fn silent(o: &std::process::Output, why: &str) {
    assert_eq!(o.status.code(), Some(0), "{why}");
    assert_eq!(stdout(o), "", "{why}");
    assert_eq!(stderr(o), "", "{why}");
}

fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn prints_the_segment_for_the_active_profile() {
    let ins = Install::new();
    ins.write_snapshot(std::process::id(), 3 * 3600 + 30, false);
    let o = ins
        .command(shell_common::BIN)
        .args(["prompt"])
        .env("AWS_PROFILE", "dev-admin")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "dev-admin@Dev 3h00m");
    // --profile wins over ROLECALL_PROFILE, which wins over AWS_PROFILE.
    let o = ins
        .command(shell_common::BIN)
        .args([
            "prompt",
            "--profile",
            "prod-ro",
            "--format",
            "{profile}|{account}|{role}",
        ])
        .env("ROLECALL_PROFILE", "dev-admin")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "prod-ro|222222222222|ReadOnly");
    let o = ins
        .command(shell_common::BIN)
        .args(["prompt", "--format", "{profile}"])
        .env("ROLECALL_PROFILE", "prod-ro")
        .env("AWS_PROFILE", "dev-admin")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "prod-ro");
    // ROLECALL_PROMPT_FORMAT is the environment form of --format.
    let o = ins
        .command(shell_common::BIN)
        .args(["prompt"])
        .env("ROLECALL_PROFILE", "dev-admin")
        .env("ROLECALL_PROMPT_FORMAT", "aws:{account_id}")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "aws:111111111111");
}

#[test]
fn a_snapshot_in_a_runtime_dir_others_can_enter_is_ignored() {
    use std::os::unix::fs::PermissionsExt;
    let ins = Install::new();
    ins.write_snapshot(std::process::id(), 3 * 3600 + 30, false);
    let runtime = ins.path().join("runtime");
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = ins
        .command(shell_common::BIN)
        .args(["prompt"])
        .env("AWS_PROFILE", "dev-admin")
        .output()
        .unwrap();
    silent(&o, "a runtime dir with group/other access");
    // A symlink to a private runtime dir is not trusted either.
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = ins.path().join("link");
    std::os::unix::fs::symlink(&runtime, &link).unwrap();
    let o = ins
        .command(shell_common::BIN)
        .args(["prompt"])
        .env("AWS_PROFILE", "dev-admin")
        .env("ROLECALL_RUNTIME_DIR", &link)
        .output()
        .unwrap();
    silent(&o, "a symlinked runtime dir");
}

#[test]
fn colour_and_shell_escapes() {
    let ins = Install::new();
    ins.write_snapshot(std::process::id(), 5 * 60 + 30, false);
    let run = |args: &[&str]| {
        let o = ins
            .command(shell_common::BIN)
            .args(args)
            .env("ROLECALL_PROFILE", "dev-admin")
            .output()
            .unwrap();
        stdout(&o)
    };
    assert_eq!(run(&["prompt"]), "\x1b[33mdev-admin@Dev 5m\x1b[0m");
    assert_eq!(run(&["prompt", "--color", "never"]), "dev-admin@Dev 5m");
    assert_eq!(
        run(&["prompt", "--shell", "bash"]),
        "\x01\x1b[33m\x02dev-admin@Dev 5m\x01\x1b[0m\x02"
    );
    assert_eq!(
        run(&["prompt", "--shell", "zsh"]),
        "%{\x1b[33m%}dev-admin@Dev 5m%{\x1b[0m%}"
    );
    let o = ins
        .command(shell_common::BIN)
        .args(["prompt"])
        .env("ROLECALL_PROFILE", "dev-admin")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "dev-admin@Dev 5m");
    ins.write_snapshot(std::process::id(), 3600, true);
    assert_eq!(
        run(&["prompt"]),
        "\x1b[31mdev-admin@Dev login needed\x1b[0m"
    );
    ins.write_snapshot(std::process::id(), -5, false);
    assert_eq!(run(&["prompt"]), "\x1b[31mdev-admin@Dev expired\x1b[0m");
}

#[test]
fn nothing_to_show_means_silence() {
    let ins = Install::new();
    // No profile active at all.
    ins.write_snapshot(std::process::id(), 3600, false);
    silent(&ins.rolecall(&["prompt"]), "no profile");
    let with_profile = |p: &str| {
        ins.command(shell_common::BIN)
            .arg("prompt")
            .env("AWS_PROFILE", p)
            .output()
            .unwrap()
    };
    silent(&with_profile("not-in-snapshot"), "unknown profile");
    // The daemon is down: its pid no longer exists.
    ins.write_snapshot(dead_pid(), 3600, false);
    silent(&with_profile("dev-admin"), "daemon down");
    // No snapshot at all (daemon never ran).
    std::fs::remove_file(ins.snapshot_path()).unwrap();
    silent(&with_profile("dev-admin"), "no snapshot");
    // Corrupt, truncated, empty, wrong shape, a directory in its place.
    for bad in [
        "",
        "{",
        "{\"pid\":",
        "not json",
        "[1,2]",
        "{\"pid\":\"x\"}",
        "\u{0}\u{1}",
    ] {
        std::fs::write(ins.snapshot_path(), bad).unwrap();
        silent(&with_profile("dev-admin"), bad);
    }
    std::fs::remove_file(ins.snapshot_path()).unwrap();
    std::fs::create_dir(ins.snapshot_path()).unwrap();
    silent(&with_profile("dev-admin"), "a directory");
}

#[test]
fn an_unreadable_runtime_dir_is_silence_too() {
    let ins = Install::new();
    let o = ins
        .command(shell_common::BIN)
        .arg("prompt")
        .env("AWS_PROFILE", "dev-admin")
        .env("ROLECALL_RUNTIME_DIR", "/nonexistent/rolecall")
        .output()
        .unwrap();
    silent(&o, "missing runtime dir");
}

/// A snapshot whose account and role names carry terminal escape sequences (as a hostile or
/// broken upstream could send): the real `rolecall prompt` prints them without the control
/// characters.
#[test]
fn escape_sequences_from_upstream_never_reach_the_terminal() {
    let ins = Install::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let doc = serde_json::json!({
        "pid": std::process::id(),
        "written_at": now,
        "profiles": {
            "dev-admin": {
                "account": "111111111111",
                "account_name": "Dev\u{1b}]0;owned\u{7}\u{1b}[2J",
                "role": "Admin\u{9b}1;1H\r\n",
                "expires": now + 7200,
            }
        }
    });
    std::fs::write(ins.snapshot_path(), doc.to_string()).unwrap();
    let o = ins
        .command(shell_common::BIN)
        .args(["prompt", "--format", "{account} {role}"])
        .env("ROLECALL_PROFILE", "dev-admin")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "Dev]0;owned[2J Admin1;1H");
    assert_eq!(stderr(&o), "");
}
