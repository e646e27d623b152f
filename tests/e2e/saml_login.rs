//! entra-saml black-box: the built `rolecall` + `rolecalld` with Debian's Chromium (headless)
//! against the sandbox process. `rolecall login legacy` captures the SAML POST; both roles of
//! the assertion work through `credential_process` and boto3; after a daemon restart the
//! credentials come back from the secret store with no new sign-in; a bad `--paste` is one clear line; the assertion
//! reaches no file and no log.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_tests::{venv_bin, Installation, Sandbox, REGION};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const TENANT: &str = "contoso.onmicrosoft.com";
const ADMIN: &str = "arn:aws:iam::333333333333:role/EntraAdmin";
const RO: &str = "arn:aws:iam::333333333333:role/EntraReadOnly";

fn setup(sb: &Sandbox) -> Installation {
    assert!(Path::new(CHROMIUM).exists(), "needs {CHROMIUM}");
    let inst = Installation::new();
    let md = sb
        .request(
            "GET",
            &format!("/{TENANT}/federationmetadata/2007-06/federationmetadata.xml"),
            None,
        )
        .unwrap();
    assert_eq!(md.status, 200);
    let md_path = inst.root().join("entra-federation-metadata.xml");
    std::fs::write(&md_path, &md.body).unwrap();
    let url = sb.url();
    inst.write_config(&format!(
        "[daemon]\nsecret_store = \"file\"\nnotifications = false\ncontainer_listen = \"127.0.0.1:{port}\"\n\n\
         [sources.legacy]\nkind = \"entra-saml\"\ntenant = \"{TENANT}\"\napp_identifier = \"https://signin.aws.amazon.com/saml#1\"\n\
         idp_metadata = \"{md}\"\nbrowser = \"{CHROMIUM}\"\nbrowser_mode = \"headless\"\nauthority = \"{url}\"\nendpoint_url = \"{url}\"\nregion = \"{REGION}\"\n\n\
         [profiles.legacy-admin]\nsource = \"legacy\"\nrole = \"{ADMIN}\"\nregion = \"{REGION}\"\n\n\
         [profiles.legacy-ro]\nsource = \"legacy\"\nrole = \"{RO}\"\nregion = \"{REGION}\"\nduration = \"2h\"\n",
        port = rolecall_tests::free_port(),
        md = md_path.display(),
    ));
    let mut aws = String::new();
    for p in ["legacy-admin", "legacy-ro"] {
        aws.push_str(&format!(
            "[profile {p}]\ncredential_process = {}\nregion = {REGION}\n\n",
            Installation::credential_process_line(p)
        ));
    }
    inst.write_aws_config(&aws);
    inst
}

fn credential_process(inst: &Installation, profile: &str) -> serde_json::Value {
    let run = inst
        .rolecall(["credential-process", profile])
        .timeout(Duration::from_secs(60))
        .run();
    run.assert_success();
    serde_json::from_str(run.stdout.trim()).expect("credential_process JSON")
}

/// boto3 through `~/.aws/config` (credential_process), STS at the sandbox.
fn boto3_caller(inst: &Installation, sb: &Sandbox, profile: &str) -> String {
    let run = inst
        .command(venv_bin("python"))
        .args([
            "-c",
            "import boto3,sys; print(boto3.Session(profile_name=sys.argv[1]).client('sts').get_caller_identity()['Arn'])",
            profile,
        ])
        .env("AWS_ENDPOINT_URL_STS", sb.url())
        .timeout(Duration::from_secs(60))
        .run();
    run.assert_success();
    run.stdout.trim().to_string()
}

/// Whether `status` shows credentials cached for both profiles.
fn both_cached(inst: &Installation) -> bool {
    let run = inst.rolecall(["status", "--json"]).run();
    run.assert_success();
    let st: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    st["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source"] == "legacy" && !p["expires"].is_null())
        .count()
        == 2
}

#[test]
fn browser_login_both_roles_then_headless_renewal_without_sign_in() {
    let sb = Sandbox::start_auto_approve();
    let inst = setup(&sb);
    inst.start_daemon();
    let run = inst
        .rolecall(["login", "legacy"])
        .timeout(Duration::from_secs(90))
        .run();
    run.assert_success();
    assert_eq!(sb.count("entra:Saml"), 1);
    // The login redeems both profiles from its one assertion, before any client asks.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !both_cached(&inst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the login did not redeem both profiles"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // One redemption can be two calls (the role refuses the assertion's session length and
    // rolecall retries with an hour); clients then cause none.
    let redeemed = sb.count("sts:AssumeRoleWithSAML");
    assert!(redeemed >= 2, "{redeemed}");

    let admin = credential_process(&inst, "legacy-admin");
    let ro = credential_process(&inst, "legacy-ro");
    assert_eq!(admin["AccountId"], "333333333333");
    assert_ne!(admin["AccessKeyId"], ro["AccessKeyId"]);
    assert_eq!(
        sb.count("entra:Saml"),
        1,
        "both profiles from one assertion"
    );
    assert_eq!(
        sb.count("sts:AssumeRoleWithSAML"),
        redeemed,
        "served what the login redeemed"
    );
    let a = boto3_caller(&inst, &sb, "legacy-admin");
    assert!(a.contains(":assumed-role/EntraAdmin/alice@"), "{a}");
    let r = boto3_caller(&inst, &sb, "legacy-ro");
    assert!(r.contains(":assumed-role/EntraReadOnly/alice@"), "{r}");

    // The Role values of the assertion (kept in memory, not secret) feed populate.
    let run = inst
        .rolecall(["populate", "legacy", "--dry-run"])
        .timeout(Duration::from_secs(30))
        .run();
    run.assert_success();
    for role in [ADMIN, RO] {
        assert!(
            run.stdout.contains(&format!("+role = \"{role}\"")),
            "{}",
            run.stdout
        );
    }
    assert!(
        run.stdout
            .contains("+principal = \"arn:aws:iam::333333333333:saml-provider/EntraID\""),
        "{}",
        run.stdout
    );

    // Nothing of the assertion anywhere on disk or in the logs.
    let secrets: Vec<String> = sb.issued_secrets();
    for (path, bytes) in inst.all_files() {
        let text = String::from_utf8_lossy(&bytes);
        if path
            .components()
            .any(|c| c.as_os_str() == "browser-profiles")
        {
            continue; // Chromium's own profile (cookies, cache) — the browser's business.
        }
        for needle in [
            "SAMLResponse",
            "PHNhbWxwOlJlc3BvbnNl",
            "<samlp:Response",
            "SignatureValue",
        ] {
            assert!(!text.contains(needle), "{} holds {needle}", path.display());
        }
        rolecall_tests::assert_no_secrets(
            &path.display().to_string(),
            &text,
            &secrets.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }

    // Restart: nothing in memory. With approvals off, a sign-in that needed the user would
    // hang; the credentials come back from the secret store (role credentials only a
    // browser can renew are persisted), so no capture and no STS call. The headless IsPassive
    // renewal itself is exercised with real Chromium in daemon/tests/saml_source.rs.
    inst.stop_daemon();
    sb.admin(
        "POST",
        "/_sandbox/auto-approve",
        Some(json!({"enabled": false})),
    );
    inst.start_daemon();
    let again = credential_process(&inst, "legacy-ro");
    assert_eq!(again["AccessKeyId"], ro["AccessKeyId"]);
    assert_eq!(sb.count("entra:Saml"), 1);
    assert_eq!(sb.count("sts:AssumeRoleWithSAML"), redeemed);
    assert_eq!(sb.pending()["pending"].as_array().unwrap().len(), 0);
    let r = boto3_caller(&inst, &sb, "legacy-admin");
    assert!(r.contains("EntraAdmin"), "{r}");
}

#[test]
fn a_bad_paste_is_one_clear_line_and_nothing_is_kept() {
    let sb = Sandbox::start_manual();
    let inst = setup(&sb);
    inst.start_daemon();
    let run = inst
        .rolecall(["login", "legacy", "--paste"])
        .stdin("definitely not a SAML response")
        .run();
    let line = run.assert_one_line_failure();
    assert!(line.starts_with("rolecall: "), "{line}");
    assert!(
        !line.contains("definitely"),
        "the input is not echoed: {line}"
    );
    // Still not signed in: credential_process fails without opening a sign-in (auto_login
    // would start a browser capture; the sandbox holds it, so bound the wait).
    let run = inst.rolecall(["status", "--json"]).run();
    run.assert_success();
    let st: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let src = st["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "legacy")
        .cloned()
        .unwrap();
    assert_eq!(src["kind"], "entra-saml", "{src}");
    assert_eq!(src["signed_in"], false, "{src}");
    assert_eq!(sb.count("sts:AssumeRoleWithSAML"), 0);
}
