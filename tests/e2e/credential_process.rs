//! `rolecall credential-process` as AWS clients run it (stdin not a terminal), black-box: the
//! built `rolecall` + `rolecalld` against the sandbox process, in an isolated installation.

use rolecall_tests::{
    assert_no_secrets, find_token_shape, is_utc_seconds_timestamp, BrowserMode, Fault, IcProfile,
    Installation, Sandbox, World, WorldOptions,
};
use std::time::Duration;

const KEY_ORDER: [&str; 6] = [
    "Version",
    "AccessKeyId",
    "SecretAccessKey",
    "SessionToken",
    "Expiration",
    "AccountId",
];

/// The output is exactly the one JSON line of docs/design.md (*Serving credentials*), keys in
/// order.
fn assert_spec_json(stdout: &str, account: &str) -> serde_json::Value {
    assert!(stdout.ends_with('\n'), "one line: {stdout:?}");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    let line = stdout.trim_end();
    let mut last = 0;
    for k in KEY_ORDER {
        let pos = line
            .find(&format!("\"{k}\":"))
            .unwrap_or_else(|| panic!("{k} missing"));
        assert!(
            pos >= last,
            "{k} out of order in the credential_process JSON"
        );
        last = pos;
    }
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
    assert_eq!(v.as_object().unwrap().len(), 6, "exactly the six members");
    assert_eq!(v["Version"], 1);
    assert!(v["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert!(!v["SecretAccessKey"].as_str().unwrap().is_empty());
    assert!(!v["SessionToken"].as_str().unwrap().is_empty());
    let exp = v["Expiration"].as_str().unwrap();
    assert!(is_utc_seconds_timestamp(exp), "Expiration {exp:?}");
    assert_eq!(v["AccountId"], account);
    v
}

#[test]
fn signed_in_profile_prints_the_spec_json() {
    let w = World::new();
    w.login();
    let run = w.credential_process("dev-admin");
    run.assert_success();
    assert!(run.stderr.is_empty(), "nothing on stderr: {}", run.stderr);
    assert_spec_json(&run.stdout, "111111111111");
    let run = w.credential_process("staging-power");
    run.assert_success();
    assert_spec_json(&run.stdout, "222222222222");
    // Warm cache: the same credentials again, no second upstream call.
    let before = w.sandbox.count("sso:GetRoleCredentials");
    let again = w.credential_process("staging-power");
    again.assert_success();
    assert_eq!(again.stdout, run.stdout);
    assert_eq!(w.sandbox.count("sso:GetRoleCredentials"), before);
}

#[test]
fn not_signed_in_without_auto_login_fails_with_the_login_hint() {
    let w = World::with(WorldOptions {
        browser: BrowserMode::Hold,
        daemon_extra: "auto_login = false".into(),
        ..Default::default()
    });
    let run = w.credential_process("dev-admin");
    let line = run.assert_one_line_failure();
    assert!(line.starts_with("rolecall: "), "{line}");
    assert!(line.contains("rolecall login corp"), "{line}");
    assert!(line.contains("'corp'"), "{line}");
    assert_eq!(w.inst.browser_launches(), 0, "auto_login is off");
}

#[test]
fn not_signed_in_with_auto_login_fails_at_once_and_starts_one_login() {
    let w = World::with(WorldOptions {
        browser: BrowserMode::Hold,
        ..Default::default()
    });
    for _ in 0..3 {
        let run = w.credential_process("dev-admin");
        let line = run.assert_one_line_failure();
        assert!(line.contains("rolecall login corp"), "{line}");
        assert!(
            run.elapsed < Duration::from_secs(5),
            "a non-interactive caller must not wait for the login ({:?})",
            run.elapsed
        );
    }
    assert!(
        rolecall_tests::wait_until(Duration::from_secs(10), || w.inst.browser_launches() >= 1),
        "the daemon opened no browser"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(w.inst.browser_launches(), 1, "one login for all callers");
}

#[test]
fn unknown_profile_is_one_line() {
    let w = World::new();
    let run = w.credential_process("no-such-profile");
    let line = run.assert_one_line_failure();
    assert!(line.contains("no-such-profile"), "{line}");
}

#[test]
fn malformed_config_is_reported_with_file_line_and_column() {
    let inst = Installation::new();
    inst.write_config("[daemon]\nrefresh_ahead = \"20m\"\n\n[profiles.x\nsource = \"corp\"\n");
    let run = inst
        .rolecall(["credential-process", "x"])
        .timeout(Duration::from_secs(30))
        .run();
    let line = run.assert_one_line_failure();
    assert!(line.contains("config.toml:4:"), "{line}");
}

#[test]
fn semantic_config_error_names_the_key_position() {
    let inst = Installation::new();
    // A profile that names a source that does not exist.
    inst.write_config(
        "[profiles.x]\nsource = \"nope\"\naccount = \"111111111111\"\nrole = \"DeveloperAdmin\"\n",
    );
    let run = inst
        .rolecall(["credential-process", "x"])
        .timeout(Duration::from_secs(30))
        .run();
    let line = run.assert_one_line_failure();
    assert!(line.contains("config.toml:"), "{line}");
    assert!(line.contains("nope"), "{line}");
}

#[test]
fn sandbox_down_is_a_clear_error() {
    let mut w = World::new();
    w.login();
    w.sandbox.stop();
    let run = w.credential_process("dev-admin");
    let line = run.assert_one_line_failure();
    assert!(line.starts_with("rolecall: "), "{line}");
    assert!(
        run.elapsed < Duration::from_secs(30),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn throttling_is_retried() {
    let w = World::new();
    w.login();
    w.sandbox.reset_counts();
    w.sandbox
        .fault("sso:GetRoleCredentials", Fault::Throttle, 2);
    let run = w.credential_process("dev-admin");
    run.assert_success();
    assert_spec_json(&run.stdout, "111111111111");
    assert!(w.sandbox.count("sso:GetRoleCredentials") >= 3, "retried");
}

#[test]
fn persistent_server_errors_become_a_clear_error_then_recover() {
    let w = World::new();
    w.login();
    w.sandbox
        .fault("sso:GetRoleCredentials", Fault::Status(500), 1000);
    let run = w.credential_process("dev-admin");
    let line = run.assert_one_line_failure();
    assert!(line.starts_with("rolecall: "), "{line}");
    assert!(
        run.elapsed < Duration::from_secs(30),
        "took {:?}",
        run.elapsed
    );
    assert!(
        w.sandbox.count("sso:GetRoleCredentials") >= 2,
        "a 500 is retried before giving up"
    );
    w.sandbox.clear_faults();
    // The failure was not cached: the next call succeeds.
    assert!(rolecall_tests::wait_until(Duration::from_secs(20), || {
        w.credential_process("dev-admin").success()
    }));
}

#[test]
fn daemon_restart_needs_no_new_login() {
    let w = World::new();
    w.login();
    w.credential_process("dev-admin").assert_success();
    let launches = w.inst.browser_launches();
    let creates = w.sandbox.count("ssooidc:CreateToken");
    assert_eq!(w.inst.daemon_pids().len(), 1);
    w.inst.stop_daemon();
    assert!(w.inst.daemon_pids().is_empty(), "the daemon stopped");
    // A profile never fetched before: needs the stored session, not a new login.
    let run = w.credential_process("staging-power");
    run.assert_success();
    assert_spec_json(&run.stdout, "222222222222");
    assert_eq!(w.inst.browser_launches(), launches, "no new browser login");
    assert_eq!(
        w.sandbox.count("ssooidc:RegisterClient"),
        1,
        "the client registration was kept"
    );
    assert!(w.sandbox.count("ssooidc:CreateToken") <= creates + 1);
}

#[test]
fn no_secret_reaches_logs_files_or_error_text() {
    let mut w = World::with(WorldOptions {
        profiles: vec![
            IcProfile::new("dev-admin", "111111111111", "DeveloperAdmin"),
            IcProfile::new("prod-ro", "333333333333", "DeveloperReadOnly"),
            // Not assigned to the user: the portal refuses it.
            IcProfile::new("prod-admin", "333333333333", "DeveloperAdmin"),
            IcProfile::new("dev-ro", "111111111111", "DeveloperReadOnly"),
        ],
        ..Default::default()
    });
    // The most verbose the daemon can be told to be, by either variable: at trace the AWS SDK
    // and the HTTP stacks would print request and response bodies (tokens, client secrets,
    // role credentials); the daemon clamps them and never reads RUST_LOG.
    w.inst.set_env("RUST_LOG", "trace");
    w.inst.set_env("ROLECALL_LOG", "trace");
    w.login();
    let mut outputs = String::new();
    let mut secrets = Vec::new();
    for p in ["dev-admin", "prod-ro"] {
        let run = w.credential_process(p);
        run.assert_success();
        let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
        secrets.push(v["SecretAccessKey"].as_str().unwrap().to_string());
        secrets.push(v["SessionToken"].as_str().unwrap().to_string());
        outputs.push_str(&run.stderr);
    }
    let denied = w.credential_process("prod-admin");
    denied.assert_one_line_failure();
    outputs.push_str(&denied.stdout);
    outputs.push_str(&denied.stderr);
    w.sandbox
        .fault("sso:GetRoleCredentials", Fault::Status(500), 1000);
    let failed = w.credential_process("dev-ro");
    failed.assert_one_line_failure();
    outputs.push_str(&failed.stderr);
    let status = w.inst.rolecall(["status", "--json"]).run();
    outputs.push_str(&status.stdout);
    outputs.push_str(&status.stderr);
    // Whatever else the sandbox's admin API lists as secret (it keeps secrets to itself today).
    secrets.extend(w.sandbox.issued_secrets());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets("CLI error text and status", &outputs, &secrets);
    let log = w.inst.daemon_log();
    assert!(!log.is_empty(), "the daemon wrote a log");
    assert_no_secrets("the daemon log", &log, &secrets);
    assert_eq!(find_token_shape(&log), None, "a token in the daemon log");
    assert_eq!(find_token_shape(&outputs), None, "a token in CLI output");
    w.inst.stop_daemon();
    // Every file of the installation: the secret store is encrypted, the snapshot and logs
    // carry no secret.
    for (path, bytes) in w.inst.all_files() {
        let text = String::from_utf8_lossy(&bytes);
        assert_no_secrets(&path.display().to_string(), &text, &secrets);
        assert_eq!(
            find_token_shape(&text),
            None,
            "a token in {}",
            path.display()
        );
    }
    w.sandbox.stop();
}

#[test]
fn sandbox_binary_prints_its_url_first() {
    let sb = Sandbox::start_manual();
    assert!(sb.url().starts_with("http://127.0.0.1:"));
}
