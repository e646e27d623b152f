//! The entra-saml source end to end against the sandbox (in-process, loopback) with Debian's
//! real Chromium, headless, driven over its debugging pipe: the browser capture, both roles of
//! the assertion through the real STS client, silent IsPassive renewal with the persisted Entra
//! session, and every failure mode leaving nothing behind.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;
use rig::sources::{now, profile, progress};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rolecall_daemon::config::{BrowserMode, EntraSamlConfig, SecretStoreKind};
use rolecall_daemon::sources::entra_saml::{EntraSaml, Timeouts};
use rolecall_daemon::sources::{
    LoginOptions, RoleCredentials, SessionState, Source, SourceContext, SourceError,
};
use rolecall_daemon::vault::SecretStore;
use rolecall_sandbox::{RunningSandbox, SandboxOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const TENANT: &str = "contoso.onmicrosoft.com";
const APP: &str = "https://signin.aws.amazon.com/saml#1";
const ADMIN: &str = "arn:aws:iam::333333333333:role/EntraAdmin";
const RO: &str = "arn:aws:iam::333333333333:role/EntraReadOnly";
const IDP: &str = "arn:aws:iam::333333333333:saml-provider/EntraID";

struct Rig {
    sb: RunningSandbox,
    tmp: tempfile::TempDir,
    metadata: PathBuf,
}

async fn rig(auto_approve: bool) -> Rig {
    assert!(
        Path::new(CHROMIUM).exists(),
        "these tests need Debian's chromium at {CHROMIUM}"
    );
    let sb = rolecall_sandbox::start(SandboxOptions {
        auto_approve,
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let md = reqwest::get(format!(
        "{}/{TENANT}/federationmetadata/2007-06/federationmetadata.xml",
        sb.base_url
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let metadata = tmp.path().join("entra-federation-metadata.xml");
    std::fs::write(&metadata, md).unwrap();
    Rig { sb, tmp, metadata }
}

impl Rig {
    fn count(&self, op: &str) -> u64 {
        self.sb.sandbox.faults.count(op)
    }

    /// A fresh source (no memory of earlier ones) on the same state dir.
    fn source_with(&self, browser: &str, t: Timeouts) -> EntraSaml {
        let cfg = EntraSamlConfig {
            tenant: TENANT.into(),
            app_identifier: APP.into(),
            idp_metadata: Some(self.metadata.clone()),
            browser: Some(browser.into()),
            browser_mode: BrowserMode::Headless,
            authority: Some(self.sb.base_url.clone()),
            region: Some("eu-west-1".into()),
            endpoint_url: Some(self.sb.base_url.clone()),
        };
        let state = self.tmp.path().join("state");
        let vault = SecretStore::open(&state, SecretStoreKind::File).unwrap();
        let env = [(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_default(),
        )]
        .into_iter()
        .collect();
        let ctx = SourceContext::new(vault, Arc::new(env), state);
        EntraSaml::new("legacy", &cfg, &ctx)
            .unwrap()
            .with_timeouts(t)
    }

    fn source(&self) -> EntraSaml {
        self.source_with(CHROMIUM, timeouts(60))
    }

    async fn admin(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        reqwest::Client::new()
            .post(format!("{}/_sandbox/{path}", self.sb.base_url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn timeouts(login_secs: u64) -> Timeouts {
    Timeouts {
        login: Duration::from_secs(login_secs),
        silent: Duration::from_secs(20),
        pipe: Duration::from_secs(5),
        skew: Duration::from_secs(120),
    }
}

async fn login(s: &EntraSaml) -> Result<(), SourceError> {
    s.login(LoginOptions::default(), &progress("legacy").0)
        .await
}

async fn paste(s: &EntraSaml, b64: &str) -> Result<(), SourceError> {
    let opts = LoginOptions {
        saml_response: Some(b64.into()),
        ..LoginOptions::default()
    };
    s.login(opts, &progress("legacy").0).await
}

/// Who STS says the credentials are (the real SDK client, signed with them).
async fn caller_arn(sb: &RunningSandbox, c: &RoleCredentials) -> String {
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.to_string(),
        Some(c.session_token.to_string()),
        None,
        "test",
    );
    let client = rolecall_daemon::endpoints::sts_client(
        "eu-west-1",
        Some(&sb.base_url),
        Some(aws_credential_types::provider::SharedCredentialsProvider::new(creds)),
    );
    client
        .get_caller_identity()
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

fn assert_nothing_kept(s: &EntraSaml) {
    assert!(!s.profile_dir().join("rolecall-signed-in").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_both_roles_then_silent_renewal_then_session_gone() {
    let r = rig(true).await;
    let s = r.source();
    assert_eq!(s.session_state().await, SessionState::NeedsLogin);
    let tx = progress("legacy").0;
    let started = Instant::now();
    s.login(LoginOptions::default(), &tx).await.unwrap();
    eprintln!("browser capture took {:?}", started.elapsed());
    assert_eq!(tx.borrow().flow.as_deref(), Some("browser-capture"));
    assert!(tx.borrow().browser_opened);
    assert_eq!(r.count("entra:Saml"), 1);
    let roles = s.list_roles().await.unwrap();
    let arns: Vec<&str> = roles.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(arns, vec![ADMIN, RO]);
    assert!(roles.iter().all(|r| r.principal.as_deref() == Some(IDP)));

    // Both roles from the one assertion. EntraAdmin's MaxSessionDuration (1h) is below the
    // assertion's SessionDuration (4h): one refusal, one retry at 3600.
    let admin = s
        .credentials(&profile("legacy", None, ADMIN))
        .await
        .unwrap();
    let ro = s.credentials(&profile("legacy", None, RO)).await.unwrap();
    assert_eq!(r.count("entra:Saml"), 1, "one capture serves every profile");
    assert_eq!(r.count("sts:AssumeRoleWithSAML"), 3);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (admin.expiration - now - 3600).abs() < 30,
        "{}",
        admin.expiration - now
    );
    assert!(ro.expiration - now > 3600);
    assert!(caller_arn(&r.sb, &admin)
        .await
        .contains(":assumed-role/EntraAdmin/alice@"));
    assert!(caller_arn(&r.sb, &ro)
        .await
        .contains(":assumed-role/EntraReadOnly/alice@"));
    assert_eq!(admin.account_id, "333333333333");

    // A daemon restart (nothing in memory) once the stored credentials are gone (as when they
    // have expired): the renewal runs headless with IsPassive and the browser profile's Entra
    // session; with approvals off, a sign-in needing the user would hang pending — none is
    // registered.
    r.sb.sandbox.set_auto_approve(false);
    vault_of(&r).remove_prefix("saml/legacy/creds/").unwrap();
    let s2 = r.source();
    assert!(matches!(
        s2.session_state().await,
        SessionState::SignedIn { .. }
    ));
    // Both profiles at once: one headless capture serves them.
    let (p_ro, p_admin) = (profile("legacy", None, RO), profile("legacy", None, ADMIN));
    let started = Instant::now();
    let (again, admin2) = tokio::join!(s2.credentials(&p_ro), s2.credentials(&p_admin));
    eprintln!(
        "silent renewal (headless capture + 2 STS calls) took {:?}",
        started.elapsed()
    );
    let (again, admin2) = (again.unwrap(), admin2.unwrap());
    assert_ne!(again.access_key_id, ro.access_key_id);
    assert_ne!(admin2.access_key_id, admin.access_key_id);
    assert_eq!(r.count("entra:Saml"), 2);
    assert!(r.sb.sandbox.pending.list().is_empty());

    // Entra revokes the sessions. The stored credentials still work and are served; once
    // they are gone the silent attempt gets NoPassive → the user is needed.
    r.admin("entra/revoke", serde_json::json!({})).await;
    let s3 = r.source();
    let kept = s3.credentials(&profile("legacy", None, RO)).await.unwrap();
    assert_eq!(kept.access_key_id, again.access_key_id);
    assert_eq!(r.count("entra:Saml"), 2);
    vault_of(&r).remove_prefix("saml/legacy/creds/").unwrap();
    let s3 = r.source();
    let e = s3
        .credentials(&profile("legacy", None, RO))
        .await
        .unwrap_err();
    assert!(matches!(e, SourceError::NeedsLogin(_)), "{e:?}");
    assert!(e.to_string().contains("sign in again"), "{e}");
    assert!(r.sb.sandbox.pending.list().is_empty());

    // Logout forgets the browser profile (and with it Entra's cookies).
    s3.logout().await.unwrap();
    assert!(!s3.profile_dir().exists());
    assert_eq!(s3.session_state().await, SessionState::NeedsLogin);
}

/// An STS that takes each assertion once (the sandbox's single-use switch): the first role is
/// redeemed from the login's assertion, every other one from a fresh silent capture of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_refusing_a_second_use_gets_a_fresh_silent_capture_per_role() {
    let r = rig(true).await;
    let on = r
        .admin("sts/saml-single-use", serde_json::json!({"enabled": true}))
        .await;
    assert_eq!(on["saml_single_use"], true);
    let s = r.source();
    login(&s).await.unwrap();
    assert_eq!(r.count("entra:Saml"), 1);

    let admin = s
        .credentials(&profile("legacy", None, ADMIN))
        .await
        .unwrap();
    assert_eq!(
        r.count("entra:Saml"),
        1,
        "the first role uses the login's assertion"
    );
    let ro = s.credentials(&profile("legacy", None, RO)).await.unwrap();
    assert_eq!(
        r.count("entra:Saml"),
        2,
        "one fresh capture for the second role"
    );
    assert!(caller_arn(&r.sb, &admin)
        .await
        .contains(":assumed-role/EntraAdmin/alice@"));
    assert!(caller_arn(&r.sb, &ro)
        .await
        .contains(":assumed-role/EntraReadOnly/alice@"));
    // Asked again while the fresh assertion is held: used once already, so another capture.
    let ro2 = s.credentials(&profile("legacy", None, RO)).await.unwrap();
    assert_ne!(ro2.access_key_id, ro.access_key_id);
    assert_eq!(r.count("entra:Saml"), 3);
    assert!(
        r.sb.sandbox.pending.list().is_empty(),
        "all silent, no user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_that_never_completes_times_out() {
    let r = rig(false).await;
    let s = r.source_with(CHROMIUM, timeouts(4));
    let started = Instant::now();
    let e = login(&s).await.unwrap_err();
    assert!(matches!(e, SourceError::LoginCancelled(_)), "{e:?}");
    assert!(e.to_string().contains("did not complete within 4s"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_nothing_kept(&s);
    assert!(s.list_roles().await.is_err());
    // The browser is gone and the profile free again: the next login can run.
    r.sb.sandbox.set_auto_approve(true);
    login(&s).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_misaddressed_captures_are_refused_and_nothing_kept() {
    let r = rig(true).await;
    for (opts, want) in [
        (serde_json::json!({"signing": "rogue"}), "does not verify"),
        (serde_json::json!({"signing": "unsigned"}), "not signed"),
        (
            serde_json::json!({"audience": "https://signin.aws.amazon.com/saml#9"}),
            "Audience",
        ),
    ] {
        r.admin("entra/saml", opts).await;
        let s = r.source();
        let e = login(&s).await.unwrap_err();
        assert!(matches!(e, SourceError::AccessDenied(_)), "{e:?}");
        assert!(e.to_string().contains(want), "{e}");
        assert_nothing_kept(&s);
        assert!(s.list_roles().await.is_err());
        assert_eq!(s.session_state().await, SessionState::NeedsLogin);
    }
    assert_eq!(r.count("sts:AssumeRoleWithSAML"), 0);
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_missing_dead_pipe_or_exiting_are_clear_errors() {
    let r = rig(false).await;
    let s = r.source_with("/nonexistent/chromium", timeouts(30));
    let opts = LoginOptions {
        no_browser: true,
        ..LoginOptions::default()
    };
    let e = s.login(opts, &progress("legacy").0).await.unwrap_err();
    assert!(matches!(e, SourceError::Config(_)), "{e:?}");
    assert!(
        e.to_string().contains("rolecall login legacy --paste"),
        "{e}"
    );
    let e = login(&s).await.unwrap_err().to_string();
    assert!(
        e.contains("`browser`") && e.contains("/nonexistent/chromium"),
        "{e}"
    );

    // A browser that never answers on its pipe (a managed browser with remote debugging
    // forbidden behaves so): detected within the pipe bound, with the --paste way out.
    let dead = script(r.tmp.path(), "mute-browser", "exec sleep 60");
    let mut t = timeouts(30);
    t.pipe = Duration::from_secs(2);
    let s = r.source_with(&dead, t);
    let started = Instant::now();
    let e = login(&s).await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        e.contains("debugging pipe") && e.contains("rolecall login legacy --paste"),
        "{e}"
    );

    // The real browser, killed while the sign-in page waits for the user.
    let dies = script(
        r.tmp.path(),
        "dying-browser",
        &format!("{CHROMIUM} \"$@\" &\nsleep 3\nkill -9 $!\nexit 0"),
    );
    let s = r.source_with(&dies, timeouts(60));
    let started = Instant::now();
    let e = login(&s).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(e.to_string().contains("browser exited"), "{e}");
    assert_nothing_kept(&s);
}

fn signed_response(roles: Vec<String>) -> String {
    use rolecall_sandbox::saml::response::{build_success, Grant, Signing};
    let xml = build_success(
        &Grant {
            tenant_id: "9c0ffee0-1234-4cde-8f00-c0ffee000001",
            in_response_to: None,
            audience: APP,
            recipient: "https://signin.aws.amazon.com/saml",
            upn: "alice@contoso.onmicrosoft.com",
            object_id: "a11ce000-0000-4000-8000-000000000001",
            display_name: "Alice Example",
            roles,
            session_duration_secs: 14400,
            now: time::OffsetDateTime::now_utc(),
            validity_secs: 300,
        },
        Signing::With(rolecall_sandbox::keys::saml_key()),
    )
    .unwrap();
    STANDARD.encode(xml)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paste_checks_everything_but_in_response_to_and_refuses_replays() {
    let r = rig(false).await;
    let s = r.source();
    let e = paste(&s, "this is not a SAML response").await.unwrap_err();
    assert!(e.to_string().contains("not valid base64"), "{e}");
    assert!(s.list_roles().await.is_err());

    let b64 = signed_response(vec![format!("{IDP},{RO}")]);
    // Line-wrapped as people paste it.
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    paste(&s, &wrapped).await.unwrap();
    let c = s.credentials(&profile("legacy", None, RO)).await.unwrap();
    assert!(caller_arn(&r.sb, &c).await.contains("EntraReadOnly"));
    let e = s
        .credentials(&profile("legacy", None, ADMIN))
        .await
        .unwrap_err();
    assert!(
        matches!(e, SourceError::AccessDenied(_)) && e.to_string().contains("does not grant"),
        "{e}"
    );

    let e = paste(&s, &b64).await.unwrap_err();
    assert!(e.to_string().contains("already used"), "{e}");
    assert_eq!(r.count("entra:Saml"), 0, "no browser for --paste");
}

/// moto's STS accepts what AWS accepts in shape: a single-role assertion (role ARN first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_server_redeems_a_single_role_assertion() {
    let moto = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/.venv/bin/moto_server");
    assert!(moto.exists(), "{}", moto.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/moto-api/")).await.is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = EntraSamlConfig {
        tenant: TENANT.into(),
        app_identifier: APP.into(),
        idp_metadata: None,
        browser: None,
        browser_mode: BrowserMode::Headless,
        authority: None,
        region: Some("us-east-1".into()),
        endpoint_url: Some(base.clone()),
    };
    let vault = SecretStore::open(tmp.path(), SecretStoreKind::File).unwrap();
    let ctx = SourceContext::new(vault, Arc::new(Default::default()), tmp.path().into());
    let s = EntraSaml::new("legacy", &cfg, &ctx).unwrap();
    let role = "arn:aws:iam::123456789012:role/MotoRole";
    let idp = "arn:aws:iam::123456789012:saml-provider/EntraID";
    paste(&s, &signed_response(vec![format!("{role},{idp}")]))
        .await
        .unwrap();
    let mut p = profile("legacy", None, role);
    p.duration = Some(Duration::from_secs(1800));
    let c = s.credentials(&p).await.unwrap();
    assert!(c.access_key_id.starts_with("ASIA"), "{}", c.access_key_id);
    assert_eq!(c.account_id, "123456789012");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // moto ends the session at the assertion's SessionDuration (it ignores DurationSeconds).
    let left = c.expiration - now;
    assert!(left > 900 && left <= 14400 + 60, "{left}");
    let _ = child.kill().await;
}

/// An EncryptedAssertion cannot be read here: it goes to STS as it is, for the profile's own
/// role + principal (and without a principal the profile is a clear config error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_assertions_are_passed_to_sts_as_they_are() {
    let r = rig(false).await;
    let s = r.source();
    let doc = concat!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" Version="2.0" "#,
        r#"IssueInstant="2026-01-01T00:00:00Z" Destination="https://signin.aws.amazon.com/saml/acs/SAMLSP4ABCDEF">"#,
        r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
        r#"<EncryptedAssertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#"/></EncryptedAssertion>"#,
        "</samlp:Response>"
    );
    paste(&s, &STANDARD.encode(doc)).await.unwrap();
    let e = s
        .credentials(&profile("legacy", None, RO))
        .await
        .unwrap_err();
    assert!(
        matches!(e, SourceError::Config(_)) && e.to_string().contains("principal"),
        "{e}"
    );
    assert_eq!(r.count("sts:AssumeRoleWithSAML"), 0);
    let mut p = profile("legacy", None, RO);
    p.principal = Some(IDP.into());
    // The sandbox's STS does not decrypt: its refusal proves the assertion reached it as is.
    let e = s.credentials(&p).await.unwrap_err();
    assert!(e.to_string().contains("Encrypted SAML assertions"), "{e}");
    assert_eq!(r.count("sts:AssumeRoleWithSAML"), 1);
}

/// The secret store of the rig's state dir, as a restarted daemon opens it.
fn vault_of(r: &Rig) -> Arc<SecretStore> {
    SecretStore::open(&r.tmp.path().join("state"), SecretStoreKind::File).unwrap()
}

/// Credentials from a pasted response can only be renewed by another sign-in: they are kept in
/// the secret store, served after a restart with no STS call, still served (while valid) once
/// they are too short for refresh-ahead, announced as the session's end, and dropped on logout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_credentials_survive_a_restart_and_go_on_logout() {
    let r = rig(false).await;
    let s = r.source();
    let b64 = signed_response(vec![format!("{IDP},{RO}"), format!("{IDP},{ADMIN}")]);
    paste(&s, &b64).await.unwrap();
    let ro = s.credentials(&profile("legacy", None, RO)).await.unwrap();
    let sts_calls = r.count("sts:AssumeRoleWithSAML");
    assert_eq!(s.session_end().await, Some(ro.expiration));

    // What the store holds: one entry per role and the session's end; never the assertion.
    let v = vault_of(&r);
    let mut keys = v.keys();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("saml/legacy/creds/{RO}"),
            "saml/legacy/session".into()
        ]
    );
    for k in &keys {
        let text = serde_json::to_string(&v.get::<serde_json::Value>(k).unwrap()).unwrap();
        assert!(
            !text.contains(&b64[..40]) && !text.contains("Assertion"),
            "{text}"
        );
    }
    let snooa: serde_json::Value = v.get("saml/legacy/session").unwrap();
    let end = snooa["session_not_on_or_after"].as_i64().unwrap();
    assert!((end - now() - 14400).abs() < 60, "{}", end - now());

    // A restart: nothing in memory, no browser session. The stored credentials are served.
    let s2 = r.source();
    assert_eq!(s2.session_state().await, SessionState::NeedsLogin);
    let again = s2.credentials(&profile("legacy", None, RO)).await.unwrap();
    assert_eq!(again.access_key_id, ro.access_key_id);
    assert_eq!(
        again.secret_access_key.as_str(),
        ro.secret_access_key.as_str()
    );
    assert_eq!(again.expiration, ro.expiration);
    assert!(caller_arn(&r.sb, &again).await.contains("EntraReadOnly"));
    assert_eq!(r.count("sts:AssumeRoleWithSAML"), sts_calls, "no STS call");
    assert_eq!(s2.session_end().await, Some(ro.expiration));
    // A profile naming another SAML provider does not get them.
    let mut other = profile("legacy", None, RO);
    other.principal = Some("arn:aws:iam::333333333333:saml-provider/Other".into());
    assert!(matches!(
        s2.credentials(&other).await.unwrap_err(),
        SourceError::NeedsLogin(_)
    ));

    // 15-minute credentials: too short to be served ahead of a capture, but with no capture
    // possible they are still served after a restart rather than "sign in again".
    r.sb.sandbox
        .lifetimes
        .write()
        .unwrap()
        .role_credentials_secs = Some(900);
    let b64 = signed_response(vec![format!("{IDP},{ADMIN}")]);
    paste(&s2, &b64).await.unwrap();
    let admin = s2
        .credentials(&profile("legacy", None, ADMIN))
        .await
        .unwrap();
    assert!((admin.expiration - now() - 900).abs() < 30);
    let sts_calls = r.count("sts:AssumeRoleWithSAML");
    let s3 = r.source();
    let again = s3
        .credentials(&profile("legacy", None, ADMIN))
        .await
        .unwrap();
    assert_eq!(again.access_key_id, admin.access_key_id);
    assert_eq!(r.count("sts:AssumeRoleWithSAML"), sts_calls);
    // The latest end of what is stored.
    assert_eq!(s3.session_end().await, Some(ro.expiration));
    assert_eq!(r.count("entra:Saml"), 0, "no browser at any point");

    // Logout drops everything of the source's from the store.
    s3.logout().await.unwrap();
    assert!(vault_of(&r).keys().is_empty(), "{:?}", vault_of(&r).keys());
    let s4 = r.source();
    assert!(matches!(
        s4.credentials(&profile("legacy", None, RO))
            .await
            .unwrap_err(),
        SourceError::NeedsLogin(_)
    ));
    assert_eq!(s4.session_end().await, None);
}

/// After a browser sign-in, a restart serves every profile from the store: no capture (the
/// sandbox counts SAML sign-ins), no STS call. The session's end is the assertion's
/// SessionNotOnOrAfter, for the notifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_a_browser_sign_in_needs_no_capture() {
    let r = rig(true).await;
    let s = r.source();
    assert_eq!(s.session_end().await, None);
    login(&s).await.unwrap();
    let admin = s
        .credentials(&profile("legacy", None, ADMIN))
        .await
        .unwrap();
    let ro = s.credentials(&profile("legacy", None, RO)).await.unwrap();
    let (captures, sts_calls) = (r.count("entra:Saml"), r.count("sts:AssumeRoleWithSAML"));
    assert_eq!(captures, 1);
    let end = s.session_end().await.unwrap();
    assert!((end - now() - 14400).abs() < 60, "{}", end - now());

    // A restart, with sign-ins needing the user left pending: nothing may reach the browser.
    r.sb.sandbox.set_auto_approve(false);
    let s2 = r.source();
    let (p_admin, p_ro) = (profile("legacy", None, ADMIN), profile("legacy", None, RO));
    let (a2, r2) = tokio::join!(s2.credentials(&p_admin), s2.credentials(&p_ro));
    let (a2, r2) = (a2.unwrap(), r2.unwrap());
    assert_eq!(a2.access_key_id, admin.access_key_id);
    assert_eq!(r2.access_key_id, ro.access_key_id);
    assert_eq!(
        r.count("entra:Saml"),
        captures,
        "no capture after the restart"
    );
    assert_eq!(r.count("sts:AssumeRoleWithSAML"), sts_calls, "no STS call");
    assert!(r.sb.sandbox.pending.list().is_empty());
    assert_eq!(s2.session_end().await, Some(end));
    s2.logout().await.unwrap();
    assert!(vault_of(&r).keys().is_empty());
}
