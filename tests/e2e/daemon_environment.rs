//! The daemon's environment and logs (docs/security.md, "The daemon's environment and
//! endpoints" and "Logs"): an autostarted daemon keeps only an allow-list of the starting
//! shell's variables; endpoint overrides from the environment must be loopback and are logged;
//! `RUST_LOG` is never read.

use rolecall_tests::Installation;
use std::time::Duration;

const CONFIG: &str = "[daemon]\nsecret_store = \"file\"\nnotifications = false\n\n\
     [sources.corp]\nkind = \"identity-center\"\nstart_url = \"https://d-9067c2e5f7.awsapps.com/start\"\nregion = \"eu-west-1\"\n\n\
     [profiles.dev]\nsource = \"corp\"\naccount = \"111111111111\"\nrole = \"Dev\"\n";

fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|kv| !kv.is_empty())
        .map(|kv| String::from_utf8_lossy(kv).into_owned())
        .collect()
}

#[test]
fn the_autostarted_daemon_keeps_only_allow_listed_variables() {
    let mut inst = Installation::new();
    inst.write_config(CONFIG);
    // What one shell's session may carry that must not steer the daemon for its whole life.
    for (k, v) in [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ("AWS_ENDPOINT_URL_SSO_OIDC", "http://127.0.0.1:4566"),
        ("AWS_PROFILE", "localstack"),
        ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
        ("HTTPS_PROXY", "http://127.0.0.1:3128"),
        ("https_proxy", "http://127.0.0.1:3128"),
        ("RUST_LOG", "trace"),
        ("ROLECALL_LOG", "info"),
        ("LC_TIME", "C"),
    ] {
        inst.set_env(k, v);
    }
    inst.rolecall(["daemon", "start"])
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
    let pids = inst.daemon_pids();
    assert_eq!(pids.len(), 1, "one autostarted daemon");
    let env = environ(pids[0]);
    let names: Vec<&str> = env.iter().filter_map(|kv| kv.split('=').next()).collect();
    for gone in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SSO_OIDC",
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "SSL_CERT_FILE",
        "HTTPS_PROXY",
        "https_proxy",
        "RUST_LOG",
        "NO_COLOR",
    ] {
        assert!(
            !names.contains(&gone),
            "{gone} reached the daemon: {names:?}"
        );
    }
    for kept in [
        "HOME",
        "PATH",
        "LANG",
        "LC_TIME",
        "XDG_RUNTIME_DIR",
        "ROLECALL_CONFIG",
        "ROLECALL_RUNTIME_DIR",
        "ROLECALL_LOG",
    ] {
        assert!(names.contains(&kept), "{kept} was dropped: {names:?}");
    }
    inst.stop_daemon();
}

#[test]
fn environment_endpoints_must_be_loopback_and_rust_log_is_ignored() {
    let mut inst = Installation::new();
    inst.write_config(CONFIG);
    inst.remove_env("ROLECALL_LOG")
        .set_env("RUST_LOG", "trace")
        .set_env("AWS_ENDPOINT_URL_SSO_OIDC", "http://127.0.0.1:9")
        .set_env("AWS_ENDPOINT_URL_SSO", "https://portal.attacker.example");
    // In the foreground, with this environment as it is (as a service manager could pass it).
    inst.start_daemon();
    let run = inst
        .rolecall(["credential-process", "dev"])
        .env("ROLECALL_NO_AUTOSTART", "1")
        .timeout(Duration::from_secs(30))
        .run();
    let line = run.assert_one_line_failure();
    assert!(
        line.contains("AWS_ENDPOINT_URL_SSO") && line.contains("not a loopback address"),
        "{line}"
    );
    let log = inst.daemon_log();
    assert!(
        log.contains("using an endpoint override from the environment")
            && log.contains("AWS_ENDPOINT_URL_SSO_OIDC"),
        "the loopback override is logged loudly: {log}"
    );
    assert!(
        !log.contains(" DEBUG ") && !log.contains(" TRACE "),
        "RUST_LOG raised the daemon's log level: {log}"
    );
    inst.stop_daemon();
}
