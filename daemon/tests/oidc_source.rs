//! The entra-oidc source against the real sandbox (in-process, on loopback): Entra v2 device
//! code and PKCE logins over HTTP, the real STS client (aws-sdk-sts) calling the sandbox's
//! AssumeRoleWithWebIdentity, which verifies the token's signature, issuer, audience and expiry.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;
use rig::sources::{now, progress};

use rolecall_daemon::config::{
    EntraOidcConfig, FlowKind, OidcTokenKind, ProfileConfig, SecretStoreKind, SourceConfig,
};
use rolecall_daemon::sources::{
    build, LoginOptions, SessionState, Source, SourceContext, SourceError,
};
use rolecall_daemon::vault::SecretStore;
use rolecall_proto::api::LoginState;
use rolecall_sandbox::entra::EntraState;
use rolecall_sandbox::pending::{Decision, Selector};
use rolecall_sandbox::{RunningSandbox, SandboxOptions};
use std::sync::Arc;
use std::time::Duration;

const ALICE: &str = "alice@contoso.onmicrosoft.com";
const BOB: &str = "bob@contoso.onmicrosoft.com";
const PUBLIC_APP: &str = "11111111-1111-4111-8111-111111111111";
const CONFIDENTIAL_APP: &str = "22222222-2222-4222-8222-222222222222";
const ROLE: &str = "arn:aws:iam::444444444444:role/EntraOidcDeveloper";
const KEY: &str = "oidc/headless/token";

struct Rig {
    sb: RunningSandbox,
    vault: Arc<SecretStore>,
    source: Arc<dyn Source>,
    _tmp: tempfile::TempDir,
}

impl Rig {
    fn count(&self, op: &str) -> u64 {
        self.sb.sandbox.faults.count(op)
    }

    fn stored(&self) -> Option<serde_json::Value> {
        self.vault.get(KEY)
    }
}

async fn sandbox(auto_approve: bool) -> RunningSandbox {
    rolecall_sandbox::start(SandboxOptions {
        auto_approve,
        ..SandboxOptions::default()
    })
    .await
    .unwrap()
}

fn config(sb: &RunningSandbox, client_id: &str) -> EntraOidcConfig {
    EntraOidcConfig {
        tenant: sb.sandbox.dir().tenant.id.clone(),
        client_id: client_id.into(),
        flow: None,
        token: OidcTokenKind::IdToken,
        scope: None,
        role_session_name: None,
        authority: Some(sb.base_url.clone()),
        region: Some("eu-west-1".into()),
        endpoint_url: Some(sb.base_url.clone()),
    }
}

fn rig_cfg(sb: RunningSandbox, cfg: EntraOidcConfig, env: &[(&str, String)]) -> Rig {
    rig_timeout(sb, cfg, env, Duration::from_secs(20))
}

fn rig_timeout(
    sb: RunningSandbox,
    cfg: EntraOidcConfig,
    env: &[(&str, String)],
    login_timeout: Duration,
) -> Rig {
    let tmp = tempfile::tempdir().unwrap();
    let vault = SecretStore::open(&tmp.path().join("state"), SecretStoreKind::File).unwrap();
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut ctx = SourceContext::new(vault.clone(), Arc::new(env), tmp.path().to_path_buf());
    ctx.login_timeout = login_timeout;
    let source = build("headless", &SourceConfig::EntraOidc(cfg), &ctx).unwrap();
    Rig {
        sb,
        vault,
        source,
        _tmp: tmp,
    }
}

fn rig(sb: RunningSandbox) -> Rig {
    let cfg = config(&sb, PUBLIC_APP);
    rig_cfg(sb, cfg, &[])
}

fn profile(role: &str, duration: Option<Duration>) -> ProfileConfig {
    ProfileConfig {
        duration,
        ..rig::sources::profile("headless", None, role)
    }
}

/// Runs a device login (`--no-browser`), deciding its user code through the sandbox once the
/// source has published it.
async fn device_login(rig: &Rig, decision: Decision) -> (Result<(), SourceError>, LoginState) {
    let (tx, mut rx) = progress("headless");
    let src = rig.source.clone();
    let login = tokio::spawn(async move {
        let opts = LoginOptions {
            no_browser: true,
            saml_response: None,
        };
        let r = src.login(opts, &tx).await;
        (r, tx.borrow().clone())
    });
    let code = rig::sources::user_code(&mut rx).await;
    let sel = Selector {
        user_code: Some(code),
        ..Selector::default()
    };
    assert_eq!(rig.sb.sandbox.pending.decide(&sel, decision), 1);
    tokio::time::timeout(Duration::from_secs(20), login)
        .await
        .expect("login finished")
        .unwrap()
}

fn approve(user: &str) -> Decision {
    Decision::Approved { user: user.into() }
}

/// The sandbox's record of the credentials STS issued for `akid`.
fn issued_arn(rig: &Rig, akid: &str) -> String {
    rig.sb
        .sandbox
        .issued
        .get(akid)
        .expect("issued by the sandbox")
        .arn
}

#[tokio::test]
async fn device_flow_then_role_credentials_named_after_the_user() {
    let rig = rig(sandbox(false).await);
    assert_eq!(rig.source.session_state().await, SessionState::NeedsLogin);
    match rig.source.credentials(&profile(ROLE, None)).await {
        Err(SourceError::NeedsLogin(m)) => assert!(m.contains("'headless'"), "{m}"),
        other => panic!("expected NeedsLogin, got {other:?}"),
    }

    let (r, st) = device_login(&rig, approve(BOB)).await;
    r.unwrap();
    assert_eq!(st.flow.as_deref(), Some("device"));
    let uri = st.verification_uri.unwrap();
    assert!(uri.ends_with("/oauth2/deviceauth"), "{uri}");
    assert_eq!(st.user_code.unwrap().len(), 9);
    assert!(!st.browser_opened);
    assert!(st.session_expires.unwrap() > now());
    assert!(matches!(
        rig.source.session_state().await,
        SessionState::SignedIn { expires: Some(_) }
    ));
    let stored = rig.stored().unwrap();
    assert!(stored["refresh_token"].is_string());
    assert_eq!(stored["user"], BOB);

    let tokens = rig.count("entra:Token");
    let c = rig.source.credentials(&profile(ROLE, None)).await.unwrap();
    // The ID token is fresh: no renewal before the STS call.
    assert_eq!(rig.count("entra:Token"), tokens);
    assert_eq!(c.account_id, "444444444444");
    assert_eq!(c.role_arn, ROLE);
    assert!(c.access_key_id.starts_with("ASIA"));
    assert!(!format!("{c:?}").contains(c.secret_access_key.as_str()));
    // Default RoleSessionName: the UPN from the ID token.
    assert_eq!(
        issued_arn(&rig, &c.access_key_id),
        format!("arn:aws:sts::444444444444:assumed-role/EntraOidcDeveloper/{BOB}")
    );
    let left = c.expiration - now();
    assert!((3600 - 120..=3600 + 60).contains(&left), "{left}");
    assert_eq!(rig.count("sts:AssumeRoleWithWebIdentity"), 1);
}

#[tokio::test]
async fn pkce_through_a_browser_command() {
    let sb = sandbox(true).await;
    let cfg = config(&sb, PUBLIC_APP);
    // $BROWSER set and no flow configured: PKCE by itself. curl plays the browser: it follows
    // Entra's redirect to the loopback callback.
    let browser = (
        "BROWSER",
        "curl -sSfL --max-time 20 -o /dev/null %s".to_string(),
    );
    let rig = rig_cfg(sb, cfg, &[browser]);
    let (tx, _rx) = progress("headless");
    rig.source
        .login(LoginOptions::default(), &tx)
        .await
        .unwrap();
    let st = tx.borrow().clone();
    assert_eq!(st.flow.as_deref(), Some("pkce"));
    assert!(st.browser_opened);
    let url = url::Url::parse(st.verification_uri.as_deref().unwrap()).unwrap();
    let tenant = rig.sb.sandbox.dir().tenant.id.clone();
    assert_eq!(
        format!("{}{}", url.origin().ascii_serialization(), url.path()),
        format!("{}/{tenant}/oauth2/v2.0/authorize", rig.sb.base_url)
    );
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], PUBLIC_APP);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    for s in ["openid", "profile", "offline_access"] {
        assert!(scopes.contains(&s), "{scopes:?}");
    }
    assert!(q["redirect_uri"].starts_with("http://127.0.0.1:"));
    assert!(q["redirect_uri"].ends_with("/oauth/callback"));
    assert_eq!(rig.count("entra:DeviceCode"), 0);
    assert_eq!(rig.stored().unwrap()["flow"], "pkce");

    let c = rig.source.credentials(&profile(ROLE, None)).await.unwrap();
    assert!(issued_arn(&rig, &c.access_key_id).ends_with(&format!("/{ALICE}")));
}

#[tokio::test]
async fn expiring_id_token_is_renewed_silently_with_a_rotated_refresh_token() {
    let sb = sandbox(false).await;
    // Tokens that live 2 minutes: under the 5-minute renewal margin from the start.
    sb.sandbox
        .lifetimes
        .write()
        .unwrap()
        .entra_access_token_secs = 120;
    let rig = rig(sb);
    device_login(&rig, approve(ALICE)).await.0.unwrap();
    let before = rig.stored().unwrap();
    let (codes, tokens) = (rig.count("entra:DeviceCode"), rig.count("entra:Token"));

    rig.source.credentials(&profile(ROLE, None)).await.unwrap();
    let after = rig.stored().unwrap();
    assert_eq!(rig.count("entra:Token"), tokens + 1, "one refresh");
    assert_eq!(rig.count("entra:DeviceCode"), codes, "no new device code");
    assert_ne!(before["web_identity_token"], after["web_identity_token"]);
    // Entra rotates refresh tokens: the new one is kept.
    assert_ne!(before["refresh_token"], after["refresh_token"]);

    // Concurrent callers share one renewal at a time and all succeed.
    let p = profile(ROLE, None);
    let calls: Vec<_> = (0..5).map(|_| rig.source.credentials(&p)).collect();
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(rig.count("entra:DeviceCode"), codes);
}

#[tokio::test]
async fn token_expired_in_stss_eyes_is_renewed_once() {
    let rig = rig(sandbox(false).await);
    device_login(&rig, approve(ALICE)).await.0.unwrap();
    let tokens = rig.count("entra:Token");
    // Two hours later for STS (the sandbox clock): the stored ID token is expired there although
    // this machine's clock says otherwise.
    rig.sb.sandbox.clock.advance(7200);
    let c = rig.source.credentials(&profile(ROLE, None)).await.unwrap();
    assert_eq!(c.account_id, "444444444444");
    assert_eq!(rig.count("entra:Token"), tokens + 1);
    assert_eq!(rig.count("sts:AssumeRoleWithWebIdentity"), 2);
    assert_eq!(rig.count("entra:DeviceCode"), 1);
}

#[tokio::test]
async fn revoked_refresh_token_means_needs_login_and_nothing_kept() {
    let sb = sandbox(false).await;
    sb.sandbox
        .lifetimes
        .write()
        .unwrap()
        .entra_access_token_secs = 120;
    let rig = rig(sb);
    device_login(&rig, approve(ALICE)).await.0.unwrap();
    let n = rig.sb.sandbox.state::<EntraState>().revoke(Some(ALICE));
    assert!(n >= 1);
    match rig.source.credentials(&profile(ROLE, None)).await {
        Err(SourceError::NeedsLogin(m)) => {
            assert!(m.contains("'headless'") && m.contains("revoked"), "{m}")
        }
        other => panic!("expected NeedsLogin, got {other:?}"),
    }
    assert!(rig.stored().is_none());
    assert_eq!(rig.source.session_state().await, SessionState::NeedsLogin);
    assert_eq!(rig.count("sts:AssumeRoleWithWebIdentity"), 0);
}

#[tokio::test]
async fn declined_device_code_is_cancelled_and_nothing_stored() {
    let rig = rig(sandbox(false).await);
    let (r, _) = device_login(&rig, Decision::Denied).await;
    match r {
        Err(SourceError::LoginCancelled(m)) => assert!(m.contains("declined"), "{m}"),
        other => panic!("expected LoginCancelled, got {other:?}"),
    }
    assert!(rig.stored().is_none());
    assert_eq!(rig.source.session_state().await, SessionState::NeedsLogin);
}

#[tokio::test]
async fn expired_device_code_fails_clearly() {
    let sb = sandbox(false).await;
    sb.sandbox.lifetimes.write().unwrap().device_code_secs = 2;
    let mut cfg = config(&sb, PUBLIC_APP);
    cfg.flow = Some(FlowKind::Device);
    let rig = rig_cfg(sb, cfg, &[]);
    let (tx, _rx) = progress("headless");
    // The sandbox's device code lives 2 s; its clock jumps past that while the source polls.
    let clock = rig.sb.sandbox.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        clock.clock.advance(600);
    });
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        rig.source.login(LoginOptions::default(), &tx),
    )
    .await
    .expect("login ends by itself");
    match r {
        Err(SourceError::LoginCancelled(m)) => assert!(m.contains("expired"), "{m}"),
        other => panic!("expected LoginCancelled, got {other:?}"),
    }
    assert!(rig.stored().is_none());
}

#[tokio::test]
async fn public_client_flows_off_is_explained() {
    let sb = sandbox(true).await;
    let mut cfg = config(&sb, CONFIDENTIAL_APP);
    cfg.flow = Some(FlowKind::Device);
    let rig = rig_cfg(sb, cfg, &[]);
    let (tx, _rx) = progress("headless");
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        rig.source.login(LoginOptions::default(), &tx),
    )
    .await
    .expect("login ends by itself");
    match r {
        Err(SourceError::Config(m)) => {
            assert!(m.contains("AADSTS7000218"), "{m}");
            assert!(m.contains("Allow public client flows"), "{m}");
            assert!(m.contains("flow = \"pkce\""), "{m}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(rig.stored().is_none());
}

#[tokio::test]
async fn wrong_state_on_the_callback_is_refused_and_nothing_stored() {
    let sb = sandbox(false).await;
    let mut cfg = config(&sb, PUBLIC_APP);
    cfg.flow = Some(FlowKind::Pkce);
    // A browser command that does nothing: the test plays a forged redirect instead.
    let r = rig_timeout(
        sb,
        cfg,
        &[("BROWSER", "true".into())],
        Duration::from_secs(3),
    );
    let (tx, mut rx) = progress("headless");
    let src = r.source.clone();
    let login = tokio::spawn(async move { src.login(LoginOptions::default(), &tx).await });
    let url = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(u) = rx.borrow_and_update().verification_uri.clone() {
                return u;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    let q: std::collections::HashMap<_, _> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let forged = format!("{}?code=forged-code&state=not-the-state", q["redirect_uri"]);
    let resp = reqwest::get(&forged).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("state"));
    match login.await.unwrap() {
        Err(SourceError::LoginCancelled(m)) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("expected LoginCancelled, got {other:?}"),
    }
    assert!(r.stored().is_none());
    // The forged code never reached Entra.
    assert_eq!(r.count("entra:Token"), 0);
}

#[tokio::test]
async fn custom_api_access_token_goes_to_sts() {
    let sb = sandbox(false).await;
    let mut cfg = config(&sb, PUBLIC_APP);
    cfg.token = OidcTokenKind::AccessToken;
    cfg.scope = Some("api://rolecall-aws/.default".into());
    cfg.role_session_name = Some("ci-{upn}".into());
    let rig = rig_cfg(sb, cfg, &[]);
    device_login(&rig, approve(ALICE)).await.0.unwrap();
    let c = rig.source.credentials(&profile(ROLE, None)).await.unwrap();
    // STS only accepts it through the sts.windows.net provider (v1 issuer, App ID URI audience).
    assert_eq!(
        issued_arn(&rig, &c.access_key_id),
        format!("arn:aws:sts::444444444444:assumed-role/EntraOidcDeveloper/ci-{ALICE}")
    );
}

#[tokio::test]
async fn duration_beyond_the_role_maximum_falls_back_to_an_hour() {
    let rig = rig(sandbox(false).await);
    device_login(&rig, approve(ALICE)).await.0.unwrap();
    let c = rig
        .source
        .credentials(&profile(ROLE, Some(Duration::from_secs(4 * 3600))))
        .await
        .unwrap();
    let left = c.expiration - now();
    assert!((3600 - 120..=3600 + 60).contains(&left), "{left}");
    assert_eq!(rig.count("sts:AssumeRoleWithWebIdentity"), 2);
}

#[tokio::test]
async fn refusals_are_clear() {
    let rig = rig(sandbox(false).await);
    device_login(&rig, approve(ALICE)).await.0.unwrap();
    // Not a role ARN.
    match rig
        .source
        .credentials(&profile("EntraOidcDeveloper", None))
        .await
    {
        Err(SourceError::Config(m)) => assert!(m.contains("role ARN"), "{m}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    // A role that does not trust the provider.
    match rig
        .source
        .credentials(&profile("arn:aws:iam::333333333333:role/EntraAdmin", None))
        .await
    {
        Err(SourceError::Config(m) | SourceError::AccessDenied(m)) => {
            assert!(m.contains("EntraAdmin") || m.contains("provider"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn logout_drops_the_tokens() {
    let rig = rig(sandbox(false).await);
    device_login(&rig, approve(ALICE)).await.0.unwrap();
    assert!(rig.stored().is_some());
    rig.source.logout().await.unwrap();
    assert!(rig.stored().is_none());
    assert_eq!(rig.source.session_state().await, SessionState::NeedsLogin);
    assert!(matches!(
        rig.source.credentials(&profile(ROLE, None)).await,
        Err(SourceError::NeedsLogin(_))
    ));
}

#[tokio::test]
async fn renew_session_renews_ahead_only_when_due() {
    let sb = sandbox(false).await;
    let rig = rig(sb);
    // Nothing stored: nothing to renew, and no network.
    rig.source.renew_session().await.unwrap();
    assert_eq!(rig.count("entra:Token"), 0);
    device_login(&rig, approve(ALICE)).await.0.unwrap();
    let tokens = rig.count("entra:Token");
    // A fresh 1-hour token: no renewal is due, nothing goes over the network.
    rig.source.renew_session().await.unwrap();
    assert_eq!(rig.count("entra:Token"), tokens);
    // A refresh token is at hand: the end is not known ahead.
    assert_eq!(rig.source.session_end().await, None);

    // Tokens that live 2 minutes (under the 5-minute margin from the start): the renewal
    // happens without any client asking for credentials.
    let sb = sandbox(false).await;
    sb.sandbox
        .lifetimes
        .write()
        .unwrap()
        .entra_access_token_secs = 120;
    let rig = self::rig(sb);
    device_login(&rig, approve(ALICE)).await.0.unwrap();
    let tokens = rig.count("entra:Token");
    let before = rig.stored().unwrap();
    rig.source.renew_session().await.unwrap();
    let after = rig.stored().unwrap();
    assert_eq!(rig.count("entra:Token"), tokens + 1, "one refresh");
    assert_ne!(before["web_identity_token"], after["web_identity_token"]);
    assert_ne!(before["refresh_token"], after["refresh_token"]);
    assert_eq!(rig.count("sts:AssumeRoleWithWebIdentity"), 0);
}

#[tokio::test]
async fn renew_session_after_revocation_needs_login() {
    let sb = sandbox(false).await;
    sb.sandbox
        .lifetimes
        .write()
        .unwrap()
        .entra_access_token_secs = 120;
    let rig = rig(sb);
    device_login(&rig, approve(ALICE)).await.0.unwrap();
    assert!(rig.sb.sandbox.state::<EntraState>().revoke(Some(ALICE)) > 0);
    let e = rig.source.renew_session().await.unwrap_err();
    assert!(matches!(e, SourceError::NeedsLogin(_)), "{e}");
    assert!(rig.stored().is_none());
    assert_eq!(rig.source.session_end().await, None);
    // Logged out: the scheduler's next call is a no-op.
    rig.source.renew_session().await.unwrap();
}
