//! The entra-oidc source end to end, black-box: the built `rolecall` + `rolecalld` against the
//! sandbox process (Entra v2 endpoints and STS `AssumeRoleWithWebIdentity`, which verifies the
//! ID token's signature, issuer, audience and expiry), and boto3 through credential_process.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_tests::{
    assert_no_secrets, venv_bin, wait_until, BrowserMode, Installation, Sandbox, SandboxOptions,
    REGION,
};
use serde_json::{json, Value};
use std::io::Read;
use std::time::Duration;

const PUBLIC_APP: &str = "11111111-1111-4111-8111-111111111111";
const CONFIDENTIAL_APP: &str = "22222222-2222-4222-8222-222222222222";
const TENANT: &str = "9c0ffee0-1234-4cde-8f00-c0ffee000001";
const ROLE: &str = "arn:aws:iam::444444444444:role/EntraOidcDeveloper";
const ALICE: &str = "alice@contoso.onmicrosoft.com";

struct Rig {
    sandbox: Sandbox,
    inst: Installation,
}

/// An installation with one entra-oidc source `headless` on the sandbox, and a profile
/// `oidc-dev` in rolecall's config and in `~/.aws/config` with credential_process.
fn rig(auto_approve: bool, browser: Option<BrowserMode>, source_extra: &str) -> Rig {
    let sandbox = Sandbox::start(SandboxOptions {
        auto_approve,
        ..Default::default()
    })
    .expect("start the sandbox");
    let mut inst = Installation::new();
    match browser {
        Some(mode) => {
            inst.use_browser(mode);
        }
        None => {
            inst.remove_env("BROWSER");
        }
    }
    let url = sandbox.url();
    let mut cfg = format!(
        "[daemon]\nsecret_store = \"file\"\nnotifications = false\ncontainer_listen = \"127.0.0.1:{}\"\n\n\
         [sources.headless]\nkind = \"entra-oidc\"\ntenant = \"{TENANT}\"\nclient_id = \"{PUBLIC_APP}\"\n\
         authority = \"{url}\"\nendpoint_url = \"{url}\"\nregion = \"{REGION}\"\n{source_extra}\n\n",
        rolecall_tests::free_port()
    );
    let p = "oidc-dev";
    cfg.push_str(&format!(
        "[profiles.{p}]\nsource = \"headless\"\nrole = \"{ROLE}\"\nregion = \"{REGION}\"\n\n"
    ));
    let aws = format!(
        "[profile {p}]\ncredential_process = {}\nregion = {REGION}\n\n",
        Installation::credential_process_line(p)
    );
    inst.write_config(&cfg);
    inst.write_aws_config(&aws);
    Rig { sandbox, inst }
}

impl Rig {
    fn credential_process(&self, profile: &str) -> rolecall_tests::Run {
        self.inst
            .rolecall(["credential-process", profile])
            .timeout(Duration::from_secs(60))
            .run()
    }

    fn pending_entra_device_codes(&self) -> Vec<String> {
        self.sandbox.pending()["pending"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|p| p["kind"] == "entra:device")
            .filter_map(|p| p["user_code"].as_str().map(str::to_string))
            .collect()
    }

    /// `rolecall login headless --no-browser`, approving the device code the user would type
    /// through the sandbox admin API. Returns the login's stderr.
    fn device_login(&self) -> String {
        let mut child = self
            .inst
            .rolecall(["login", "headless", "--no-browser"])
            .spawn()
            .expect("spawn rolecall login");
        assert!(
            wait_until(Duration::from_secs(30), || !self
                .pending_entra_device_codes()
                .is_empty()),
            "no Entra device code reached the sandbox"
        );
        let codes = self.pending_entra_device_codes();
        assert_eq!(codes.len(), 1, "{codes:?}");
        self.sandbox.admin(
            "POST",
            "/_sandbox/approve",
            Some(json!({ "user_code": codes[0], "kind": "entra:device" })),
        );
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(40),
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
            stderr.contains(&codes[0]),
            "the user is shown the code: {stderr}"
        );
        stderr
    }

    /// boto3 `sts.get_caller_identity()` with the AWS profile (credential_process), against the
    /// sandbox's STS, which recognises only credentials it issued.
    fn boto3_caller_arn(&self, profile: &str) -> String {
        let script = "import boto3,sys\n\
             s = boto3.Session(profile_name=sys.argv[1])\n\
             print(s.client('sts', endpoint_url=sys.argv[2]).get_caller_identity()['Arn'])\n";
        let run = self
            .inst
            .command(venv_bin("python"))
            .args(["-c", script, profile, self.sandbox.url()])
            .timeout(Duration::from_secs(90))
            .run();
        run.assert_success();
        run.stdout.trim().to_string()
    }
}

fn spec_json(run: &rolecall_tests::Run) -> Value {
    run.assert_success();
    let v: Value = serde_json::from_str(run.stdout.trim()).expect("credential_process JSON");
    assert_eq!(v["Version"], 1);
    assert_eq!(v["AccountId"], "444444444444");
    v
}

#[test]
fn device_flow_then_credential_process_and_boto3_see_the_role() {
    let r = rig(false, None, "");
    let stderr = r.device_login();
    assert!(stderr.contains("/oauth2/deviceauth"), "{stderr}");
    let v = spec_json(&r.credential_process("oidc-dev"));
    assert_eq!(
        r.boto3_caller_arn("oidc-dev"),
        format!("arn:aws:sts::444444444444:assumed-role/EntraOidcDeveloper/{ALICE}")
    );
    assert_eq!(r.sandbox.count("entra:DeviceCode"), 1);
    assert_eq!(r.sandbox.count("entra:Authorize"), 0);
    // Nothing secret in the daemon's log or in any file outside the vault.
    let secrets = [
        v["SecretAccessKey"].as_str().unwrap(),
        v["SessionToken"].as_str().unwrap(),
    ];
    assert_no_secrets("daemon log", &r.inst.daemon_log(), &secrets);
    let log = r.inst.daemon_log();
    assert!(!log.contains("eyJ"), "no JWT in the daemon log");
}

#[test]
fn pkce_with_the_robot_browser() {
    let r = rig(true, Some(BrowserMode::Follow), "");
    let run = r
        .inst
        .rolecall(["login", "headless"])
        .timeout(Duration::from_secs(60))
        .run();
    run.assert_success();
    assert_eq!(r.inst.browser_launches(), 1);
    let url = &r.inst.browser_urls()[0];
    assert!(
        url.starts_with(&format!(
            "{}/{TENANT}/oauth2/v2.0/authorize?",
            r.sandbox.url()
        )),
        "{url}"
    );
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert_eq!(r.sandbox.count("entra:DeviceCode"), 0);
    spec_json(&r.credential_process("oidc-dev"));
    assert!(r
        .boto3_caller_arn("oidc-dev")
        .ends_with(&format!("/{ALICE}")));
}

#[test]
fn expired_id_token_is_renewed_silently_without_a_new_device_code() {
    let r = rig(false, None, "");
    // ID tokens that live 3 s.
    r.sandbox.lifetimes(json!({ "entra_access_token_secs": 3 }));
    r.device_login();
    spec_json(&r.credential_process("oidc-dev"));
    let tokens = r.sandbox.count("entra:Token");
    std::thread::sleep(Duration::from_secs(4));
    // The stored ID token is now past its exp: STS would refuse it. A daemon restarted now has
    // no cached credentials, only the vault's session: its fetch needs a new ID token, which
    // the refresh token gets without the user.
    r.inst.stop_daemon();
    let run = r.credential_process("oidc-dev");
    spec_json(&run);
    assert!(
        r.sandbox.count("entra:Token") > tokens,
        "the refresh grant ran"
    );
    assert_eq!(r.sandbox.count("entra:DeviceCode"), 1, "no new device code");
    assert!(r.pending_entra_device_codes().is_empty());
    assert_eq!(r.sandbox.count("sts:AssumeRoleWithWebIdentity"), 2);
}

#[test]
fn revoked_refresh_token_needs_a_login() {
    let r = rig(false, None, "");
    r.sandbox.lifetimes(json!({ "entra_access_token_secs": 3 }));
    r.device_login();
    r.sandbox
        .admin("POST", "/_sandbox/entra/revoke", Some(json!({})));
    std::thread::sleep(Duration::from_secs(4));
    let run = r.credential_process("oidc-dev");
    let line = run.assert_one_line_failure();
    assert!(line.contains("rolecall login headless"), "{line}");
    assert_eq!(r.sandbox.count("sts:AssumeRoleWithWebIdentity"), 0);
}

#[test]
fn public_client_flows_off_is_one_clear_line() {
    let r = rig(
        true,
        None,
        &format!("flow = \"device\"\n[sources.confidential]\nkind = \"entra-oidc\"\ntenant = \"{TENANT}\"\nclient_id = \"{CONFIDENTIAL_APP}\"\nflow = \"device\""),
    );
    // The second source needs the same authority and endpoint: append them.
    let cfg = std::fs::read_to_string(&r.inst.config).unwrap().replace(
        &format!("client_id = \"{CONFIDENTIAL_APP}\"\n"),
        &format!(
            "client_id = \"{CONFIDENTIAL_APP}\"\nauthority = \"{0}\"\nendpoint_url = \"{0}\"\n",
            r.sandbox.url()
        ),
    );
    r.inst.write_config(&cfg);
    let run = r
        .inst
        .rolecall(["login", "confidential", "--no-browser"])
        .timeout(Duration::from_secs(60))
        .run();
    // The device code is shown first (Entra answers 7000218 only when the code is redeemed);
    // the failure is the last line.
    assert_eq!(run.code(), Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let line = run.stderr.lines().last().unwrap_or_default().to_string();
    assert!(line.contains("AADSTS7000218"), "{line}");
    assert!(line.contains("Allow public client flows"), "{line}");
}
