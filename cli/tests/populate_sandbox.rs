//! `rolecall populate` end to end: the real rolecalld, signed in to the sandbox's Identity
//! Center (seeded with 300 generated accounts × 3 permission sets besides its default
//! directory), lists every account × role, and the CLI writes the config and the block.
//!
//! Needs `rolecalld` and `rolecall-sandbox` built beside `rolecall`
//! (`cargo build -p rolecall-daemon -p rolecall-sandbox --bins`).

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod shell_common;

use shell_common::{stderr, stdout, Install, Stack, BIN};
use std::process::Command;
use std::time::Instant;

fn counts(url: &str) -> serde_json::Value {
    let o = Command::new("curl")
        .args(["-fsS", &format!("{url}/_sandbox/counts")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v.get("counts").cloned().unwrap_or(v)
}

#[test]
fn populate_300_accounts_by_3_sets_from_the_sandbox() {
    let ins = Install::new();
    let stack = Stack::start(&ins, Some((300, 3)), "");
    let url = stack.url.clone();
    let aws = ins.path().join("home/.aws/config");
    std::fs::create_dir_all(aws.parent().unwrap()).unwrap();
    let mine = "# mine\n[default]\nregion = us-east-1\n";
    std::fs::write(&aws, mine).unwrap();

    let before = counts(&url);
    let t0 = Instant::now();
    let o = ins.rolecall(&["populate", "corp"]);
    let wall = t0.elapsed();
    assert!(o.status.success(), "populate: {}", stderr(&o));
    let after = counts(&url);
    let delta = |k: &str| {
        after.get(k).and_then(|v| v.as_u64()).unwrap_or(0)
            - before.get(k).and_then(|v| v.as_u64()).unwrap_or(0)
    };
    eprintln!(
        "populate: {wall:?}; ListAccounts {} calls, ListAccountRoles {} calls",
        delta("sso:ListAccounts"),
        delta("sso:ListAccountRoles")
    );
    // One ListAccountRoles per account at least (paged), and the listing itself was paged.
    assert!(delta("sso:ListAccountRoles") >= 300, "{after}");
    assert!(delta("sso:ListAccounts") >= 1, "{after}");

    let text = std::fs::read_to_string(&aws).unwrap();
    assert!(
        text.starts_with(&format!("{mine}\n# BEGIN rolecall\n")),
        "{text}"
    );
    let block_profiles = text.matches("\n[profile ").count();
    assert!(block_profiles >= 900, "{block_profiles}");
    assert!(text.contains("[profile generated-0300.GeneratedSet03]\n"));
    assert!(!text.contains("sso_"));
    let cfg = std::fs::read_to_string(ins.path().join("config.toml")).unwrap();
    assert_eq!(cfg.matches("[profiles.").count(), block_profiles);

    // Idempotent against the real listing too.
    let o = ins.rolecall(&["populate", "corp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to change"), "{}", stdout(&o));
    assert_eq!(std::fs::read_to_string(&aws).unwrap(), text);

    // A generated profile works through credential_process with the real daemon.
    let o = ins
        .command(BIN)
        .args(["credential-process", "generated-0042.GeneratedSet01"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let creds: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(creds["AccountId"], "500000000041");
}
