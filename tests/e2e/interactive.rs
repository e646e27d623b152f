//! A caller on a terminal (the `aws` CLI in a shell) waits for the sign-in the daemon starts and
//! then prints credentials. The terminal is a real pty made by `script(1)`.

use rolecall_tests::{bin_path, World};
use std::time::Duration;

/// Quotes for `sh -c`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn a_caller_on_a_terminal_waits_for_the_login_then_prints_credentials() {
    let w = World::new();
    assert_eq!(w.inst.browser_launches(), 0);
    let inner = format!(
        "{} credential-process dev-admin",
        sh_quote(&bin_path("rolecall").display().to_string())
    );
    // -q quiet, -e child's exit code, -c command; the typescript goes nowhere.
    let run = w
        .inst
        .command("script")
        .args(["-qec", &inner, "/dev/null"])
        .timeout(Duration::from_secs(90))
        .run();
    run.assert_success();
    // On a pty stdout and stderr arrive together: find the JSON line.
    let json_line = run
        .stdout
        .lines()
        .map(|l| l.trim_matches(|c: char| c == '\r' || c.is_whitespace()))
        .find(|l| l.starts_with("{\"Version\":1"))
        .unwrap_or_else(|| panic!("no credentials on the terminal: {:?}", run.stdout));
    let v: serde_json::Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(v["AccountId"], "111111111111");
    assert_eq!(w.inst.browser_launches(), 1, "one browser login");
    assert_eq!(w.sandbox.count("ssooidc:CreateToken"), 1);
}
