//! `rolecall status` and `rolecall prompt` against the real rolecalld signed in to the
//! sandbox: the table and the JSON come from `GET /v1/status`, and the prompt reads the
//! snapshot the daemon itself wrote.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod shell_common;

use shell_common::{stderr, stdout, Install, Stack};

const PROFILES: &str = "
[profiles.dev]
source = \"corp\"
account = \"111111111111\"
role = \"DeveloperAdmin\"
";

#[test]
fn status_table_json_and_prompt_from_the_real_daemon() {
    let ins = Install::new();
    let _stack = Stack::start(&ins, None, PROFILES);
    // Credentials for `dev`, so that the snapshot has an expiry for it.
    let o = ins.rolecall(&["credential-process", "dev"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = ins.rolecall(&["status", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: rolecall_proto::api::Status = serde_json::from_slice(&o.stdout).unwrap();
    let corp = s.sources.iter().find(|x| x.name == "corp").unwrap();
    assert!(corp.signed_in);
    let dev = s.profiles.iter().find(|p| p.name == "dev").unwrap();
    assert!(dev.expires.is_some());

    let o = ins.rolecall(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = stdout(&o);
    assert!(t.contains("SOURCES\n"), "{t}");
    assert!(t.contains("identity-center  yes"), "{t}");
    assert!(
        t.lines()
            .any(|l| l.trim_start().starts_with("dev ") && l.contains("DeveloperAdmin")),
        "{t}"
    );
    // Not a terminal: no colour codes.
    assert!(!t.contains('\x1b'), "{t}");

    // The prompt reads the daemon's own snapshot (give it a moment to write it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let seg = loop {
        let o = ins
            .command(shell_common::BIN)
            .args([
                "prompt",
                "--format",
                "{profile}|{account_id}|{role}|{time_left}",
            ])
            .env("ROLECALL_PROFILE", "dev")
            .output()
            .unwrap();
        assert_eq!(stderr(&o), "");
        let s = stdout(&o);
        if s.contains('|') || std::time::Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        seg.starts_with("dev|111111111111|DeveloperAdmin|"),
        "{seg:?}"
    );
    let left = seg.rsplit('|').next().unwrap();
    assert!(left.ends_with('m') && left != "expired", "{seg:?}");
}

#[test]
fn status_without_a_daemon_is_one_line() {
    let ins = Install::new();
    let o = ins.rolecall(&["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("not running"), "{e}");
}
