//! `rolecall login` end to end: the device flow where no browser is available (and with
//! `--no-browser`), and the back-off after a sign-in the user refused.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_tests::{wait_until, BrowserMode, World, WorldOptions};
use serde_json::Value;
use std::io::Read;
use std::time::Duration;

/// Pending device-code logins the sandbox knows, as (id, user_code).
fn pending_device_codes(w: &World) -> Vec<(String, String)> {
    let v = w.sandbox.pending();
    v["pending"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|p| p["kind"] == "ssooidc:device")
        .filter_map(|p| {
            Some((
                p["id"].as_str()?.to_string(),
                p["user_code"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Runs `rolecall login corp [extra]` in the background, approves the device code the user
/// would type, and returns the login's stderr.
fn device_login(w: &World, extra: &[&str]) -> String {
    let mut child = w
        .inst
        .rolecall(["login", "corp"])
        .args(extra)
        .spawn()
        .expect("spawn rolecall login");
    assert!(
        wait_until(Duration::from_secs(20), || !pending_device_codes(w)
            .is_empty()),
        "no device authorization reached the sandbox"
    );
    let codes = pending_device_codes(w);
    assert_eq!(codes.len(), 1, "one device login: {codes:?}");
    let (_, user_code) = &codes[0];
    w.sandbox.admin(
        "POST",
        "/_sandbox/approve",
        Some(serde_json::json!({ "user_code": user_code })),
    );
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "login did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "login failed: {stderr}");
    assert!(
        stderr.contains(user_code.as_str()),
        "the user is shown the code to type: {stderr}"
    );
    stderr
}

#[test]
fn without_a_browser_login_uses_the_device_flow() {
    let mut w = World::with(WorldOptions {
        auto_approve: false,
        ..Default::default()
    });
    // No $BROWSER and no display: nothing can open a browser on this machine.
    w.inst.remove_env("BROWSER");
    let stderr = device_login(&w, &[]);
    assert!(stderr.contains("Signed in to 'corp'"), "{stderr}");
    let run = w.credential_process("dev-admin");
    run.assert_success();
    assert_eq!(run.json()["AccountId"], "111111111111");
    assert_eq!(w.sandbox.count("ssooidc:StartDeviceAuthorization"), 1);
}

#[test]
fn no_browser_flag_uses_the_device_flow_even_with_a_browser() {
    let w = World::with(WorldOptions {
        auto_approve: false,
        browser: BrowserMode::Hold,
        ..Default::default()
    });
    device_login(&w, &["--no-browser"]);
    assert_eq!(w.inst.browser_launches(), 0, "no browser was opened");
    w.credential_process("staging-power").assert_success();
}

#[test]
fn a_refused_sign_in_is_not_retried_by_every_caller() {
    // The robot browser visits the authorize page, which waits for the user's decision.
    let w = World::with(WorldOptions {
        auto_approve: false,
        browser: BrowserMode::Follow,
        ..Default::default()
    });
    let first = w.credential_process("dev-admin");
    first.assert_one_line_failure();
    assert!(
        wait_until(Duration::from_secs(20), || {
            w.sandbox.pending()["pending"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p["kind"] == "ssooidc:authorize"))
        }),
        "the browser reached the authorize page"
    );
    w.sandbox.deny_all();
    // The login ends as failed.
    assert!(
        wait_until(Duration::from_secs(20), || {
            w.inst
                .api("GET", "/v1/login/corp?wait=0", None)
                .ok()
                .and_then(|r| r.json().ok())
                .is_some_and(|v: Value| v["phase"] == "failed")
        }),
        "the refused login is reported as failed"
    );
    let launches = w.inst.browser_launches();
    assert_eq!(launches, 1);
    // Callers during the back-off get an answer, and no new browser window opens.
    for _ in 0..5 {
        let line = w.credential_process("dev-admin").assert_one_line_failure();
        assert!(line.contains("rolecall login corp"), "{line}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        w.inst.browser_launches(),
        launches,
        "no new window in the back-off"
    );
    // An explicit login always starts one.
    w.sandbox.admin(
        "POST",
        "/_sandbox/auto-approve",
        Some(serde_json::json!({"enabled": true})),
    );
    w.login();
    assert_eq!(w.inst.browser_launches(), launches + 1);
    w.credential_process("dev-admin").assert_success();
}
