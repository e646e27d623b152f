//! The identity-center source against the real sandbox (in-process, on loopback), through the
//! real AWS SDK clients: device and PKCE logins, token renewal, revocation, registrations,
//! GetRoleCredentials, list_roles, logout.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;
use rig::sources::{now, profile, progress};

use rolecall_daemon::config::{FlowKind, IdentityCenterConfig, SecretStoreKind, SourceConfig};
use rolecall_daemon::sources::{
    build, LoginOptions, SessionState, Source, SourceContext, SourceError,
};
use rolecall_daemon::vault::SecretStore;
use rolecall_proto::api::LoginState;
use rolecall_sandbox::pending::{Decision, Selector};
use rolecall_sandbox::{RunningSandbox, SandboxOptions};
use std::sync::Arc;
use std::time::Duration;

const ALICE: &str = "alice@contoso.onmicrosoft.com";

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

    fn token(&self) -> Option<serde_json::Value> {
        self.vault.get("ic/corp/token")
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

/// A source named `corp` pointed at the sandbox through its config `endpoint_url`, with `env`
/// as the daemon's environment snapshot.
fn rig_with(sb: RunningSandbox, flow: Option<FlowKind>, env: &[(&str, String)]) -> Rig {
    let tmp = tempfile::tempdir().unwrap();
    let vault = SecretStore::open(&tmp.path().join("state"), SecretStoreKind::File).unwrap();
    let (start_url, region) = {
        let d = sb.sandbox.dir();
        (
            d.identity_center.start_url.clone(),
            d.identity_center.region.clone(),
        )
    };
    let cfg = SourceConfig::IdentityCenter(IdentityCenterConfig {
        start_url,
        region,
        flow,
        endpoint_url: Some(sb.base_url.clone()),
        share_aws_cli_cache: false,
        sso_session: None,
    });
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut ctx = SourceContext::new(vault.clone(), Arc::new(env), tmp.path().to_path_buf());
    ctx.login_timeout = Duration::from_secs(20);
    let source = build("corp", &cfg, &ctx).unwrap();
    Rig {
        sb,
        vault,
        source,
        _tmp: tmp,
    }
}

/// Runs a device login, approving (or denying) its user code through the sandbox once the
/// source has published it.
async fn device_login(rig: &Rig, decision: Decision) -> (Result<(), SourceError>, LoginState) {
    let (tx, mut rx) = progress("corp");
    let src = rig.source.clone();
    let login = tokio::spawn(async move {
        let r = src
            .login(
                LoginOptions {
                    no_browser: true,
                    saml_response: None,
                },
                &tx,
            )
            .await;
        (r, tx.borrow().clone())
    });
    let code = rig::sources::user_code(&mut rx).await;
    let n = rig.sb.sandbox.pending.decide(
        &Selector {
            user_code: Some(code),
            ..Selector::default()
        },
        decision,
    );
    assert_eq!(n, 1);
    tokio::time::timeout(Duration::from_secs(20), login)
        .await
        .expect("login finished")
        .unwrap()
}

fn approve() -> Decision {
    Decision::Approved { user: ALICE.into() }
}

/// A signed-in rig (device flow, approved).
async fn signed_in(sb: RunningSandbox) -> Rig {
    let rig = rig_with(sb, None, &[]);
    let (r, _) = device_login(&rig, approve()).await;
    r.unwrap();
    rig
}

#[tokio::test]
async fn device_flow_with_approval_then_role_credentials() {
    let rig = rig_with(sandbox(false).await, None, &[]);
    assert_eq!(rig.source.session_state().await, SessionState::NeedsLogin);
    match rig
        .source
        .credentials(&profile("corp", Some("111111111111"), "DeveloperAdmin"))
        .await
    {
        Err(SourceError::NeedsLogin(m)) => assert!(m.contains("'corp'"), "{m}"),
        other => panic!("expected NeedsLogin, got {other:?}"),
    }

    let (r, st) = device_login(&rig, approve()).await;
    r.unwrap();
    assert_eq!(st.flow.as_deref(), Some("device"));
    assert!(st.verification_uri.is_some());
    assert!(st
        .verification_uri_complete
        .as_deref()
        .unwrap()
        .contains(st.user_code.as_deref().unwrap()));
    assert!(!st.browser_opened, "no browser with --no-browser");
    assert!(st.session_expires.unwrap() > now());
    assert!(matches!(
        rig.source.session_state().await,
        SessionState::SignedIn { expires: Some(_) }
    ));
    assert!(rig
        .vault
        .get::<serde_json::Value>("ic/corp/registration/device")
        .is_some());
    assert_eq!(rig.count("ssooidc:RegisterClient"), 1);

    let c = rig
        .source
        .credentials(&profile("corp", Some("111111111111"), "DeveloperAdmin"))
        .await
        .unwrap();
    assert_eq!(c.account_id, "111111111111");
    assert!(!c.access_key_id.is_empty() && !c.secret_access_key.is_empty());
    // DeveloperAdmin's session is 4 h in the seed.
    let left = c.expiration - now();
    assert!((4 * 3600 - 120..=4 * 3600 + 60).contains(&left), "{left}");
    assert!(!format!("{c:?}").contains(c.secret_access_key.as_str()));

    // A second login reuses the registration.
    let (r, _) = device_login(&rig, approve()).await;
    r.unwrap();
    assert_eq!(rig.count("ssooidc:RegisterClient"), 1);
}

#[tokio::test]
async fn device_flow_denied_is_cancelled() {
    let rig = rig_with(sandbox(false).await, Some(FlowKind::Device), &[]);
    let (r, _) = device_login(&rig, Decision::Denied).await;
    match r {
        Err(SourceError::LoginCancelled(m)) => assert!(m.contains("denied"), "{m}"),
        other => panic!("expected LoginCancelled, got {other:?}"),
    }
    assert_eq!(rig.source.session_state().await, SessionState::NeedsLogin);
}

#[tokio::test]
async fn device_code_expiry_fails_the_login_clearly() {
    let sb = sandbox(false).await;
    {
        let mut l = sb.sandbox.lifetimes.write().unwrap();
        l.device_code_secs = 2;
    }
    let rig = rig_with(sb, Some(FlowKind::Device), &[]);
    let (tx, _rx) = progress("corp");
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        rig.source.login(LoginOptions::default(), &tx),
    )
    .await
    .expect("login ends by itself");
    match r {
        Err(SourceError::LoginCancelled(m)) => {
            assert!(m.contains("expired") || m.contains("timed out"), "{m}")
        }
        other => panic!("expected LoginCancelled, got {other:?}"),
    }
}

/// A `$BROWSER` that plays the user's browser: it follows the sandbox's `/authorize` redirect
/// to the daemon's loopback callback. curl is a real HTTP client; no shell is involved.
fn curl_browser() -> (&'static str, String) {
    ("BROWSER", "curl -sSfL --max-time 20 -o /dev/null %s".into())
}

#[tokio::test]
async fn pkce_flow_through_a_browser_command() {
    // $BROWSER set and no flow configured: PKCE is chosen by itself.
    let rig = rig_with(sandbox(true).await, None, &[curl_browser()]);
    let (tx, _rx) = progress("corp");
    rig.source
        .login(LoginOptions::default(), &tx)
        .await
        .unwrap();
    let st = tx.borrow().clone();
    assert_eq!(st.flow.as_deref(), Some("pkce"));
    assert!(st.browser_opened);
    let url = url::Url::parse(st.verification_uri.as_deref().unwrap()).unwrap();
    assert_eq!(
        format!("{}{}", url.origin().ascii_serialization(), url.path()),
        format!("{}/authorize", rig.sb.base_url)
    );
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scopes"], "sso:account:access");
    assert!(q["redirect_uri"].starts_with("http://127.0.0.1:"));
    assert!(q["redirect_uri"].ends_with("/oauth/callback"));
    assert!(q["state"].len() >= 32 && q["code_challenge"].len() == 43);
    assert!(rig
        .vault
        .get::<serde_json::Value>("ic/corp/registration/pkce")
        .is_some());
    assert!(rig
        .vault
        .get::<serde_json::Value>("ic/corp/registration/device")
        .is_none());

    let c = rig
        .source
        .credentials(&profile("corp", Some("222222222222"), "DeveloperPowerUser"))
        .await
        .unwrap();
    assert_eq!(c.account_id, "222222222222");
}

#[tokio::test]
async fn access_token_near_expiry_is_renewed_with_the_refresh_token() {
    let sb = sandbox(false).await;
    sb.sandbox.lifetimes.write().unwrap().access_token_secs = 120;
    let rig = signed_in(sb).await;
    let before = rig.token().unwrap();
    let creates = rig.count("ssooidc:CreateToken");
    // Under 5 minutes left: renewed before the portal call.
    rig.source
        .credentials(&profile("corp", Some("111111111111"), "DeveloperReadOnly"))
        .await
        .unwrap();
    assert_eq!(rig.count("ssooidc:CreateToken"), creates + 1);
    let after = rig.token().unwrap();
    assert_ne!(before["access_token"], after["access_token"]);
    assert!(after["refresh_token"].is_string());
}

#[tokio::test]
async fn concurrent_callers_share_one_renewal() {
    let sb = sandbox(false).await;
    sb.sandbox.lifetimes.write().unwrap().access_token_secs = 120;
    let rig = signed_in(sb).await;
    let creates = rig.count("ssooidc:CreateToken");
    let p = profile("corp", Some("111111111111"), "DeveloperReadOnly");
    let calls: Vec<_> = (0..6).map(|_| rig.source.credentials(&p)).collect();
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    // Tokens from the sandbox live 120 s, so even a fresh one is "near expiry"; still, the
    // callers that waited for the first renewal use its result instead of renewing again.
    assert_eq!(rig.count("ssooidc:CreateToken"), creates + 1);
}

#[tokio::test]
async fn portal_refusing_the_token_triggers_one_renewal() {
    let rig = signed_in(sandbox(false).await).await;
    let creates = rig.count("ssooidc:CreateToken");
    // The sandbox's clock passes the access token's end (the refresh token lives on); the
    // daemon's own clock still thinks the token is good, so the portal is what says no.
    rig.sb.sandbox.clock.advance(3600 + 60);
    let c = rig
        .source
        .credentials(&profile("corp", Some("111111111111"), "DeveloperAdmin"))
        .await
        .unwrap();
    assert_eq!(c.account_id, "111111111111");
    assert_eq!(rig.count("ssooidc:CreateToken"), creates + 1);
}

#[tokio::test]
async fn expired_refresh_token_means_needs_login() {
    let rig = signed_in(sandbox(false).await).await;
    // Past the refresh token's life (8 h): the renewal is refused.
    rig.sb.sandbox.clock.advance(9 * 3600);
    match rig
        .source
        .credentials(&profile("corp", Some("111111111111"), "DeveloperAdmin"))
        .await
    {
        Err(SourceError::NeedsLogin(m)) => {
            assert!(m.contains("refresh token revoked or expired"), "{m}")
        }
        other => panic!("expected NeedsLogin, got {other:?}"),
    }
    assert!(rig.token().is_none(), "dead session dropped");
    assert_eq!(rig.source.session_state().await, SessionState::NeedsLogin);
    // The registration survives: the next login needs no RegisterClient.
    assert!(rig
        .vault
        .get::<serde_json::Value>("ic/corp/registration/device")
        .is_some());
}

#[tokio::test]
async fn registration_near_expiry_is_renewed_at_login() {
    let sb = sandbox(false).await;
    // Registrations that live 12 h are always within a day of expiry: every login renews.
    sb.sandbox
        .lifetimes
        .write()
        .unwrap()
        .client_registration_secs = 12 * 3600;
    let rig = signed_in(sb).await;
    let first: serde_json::Value = rig.vault.get("ic/corp/registration/device").unwrap();
    assert_eq!(rig.count("ssooidc:RegisterClient"), 1);
    let (r, _) = device_login(&rig, approve()).await;
    r.unwrap();
    assert_eq!(rig.count("ssooidc:RegisterClient"), 2);
    let second: serde_json::Value = rig.vault.get("ic/corp/registration/device").unwrap();
    assert_ne!(first["client_id"], second["client_id"]);
    // The token names the registration that issued it, so renewal uses the right client.
    let t: serde_json::Value = rig.token().unwrap();
    assert_eq!(t["client_id"], second["client_id"]);
}

#[tokio::test]
async fn unassigned_role_is_access_denied() {
    let rig = signed_in(sandbox(false).await).await;
    match rig
        .source
        .credentials(&profile("corp", Some("333333333333"), "DeveloperAdmin"))
        .await
    {
        Err(SourceError::AccessDenied(m)) => {
            assert!(
                m.contains("DeveloperAdmin") && m.contains("333333333333"),
                "{m}"
            )
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    // The session is untouched.
    assert!(rig.token().is_some());
}

#[tokio::test]
async fn throttling_beyond_retries_is_a_retryable_upstream_error() {
    let rig = signed_in(sandbox(false).await).await;
    rig.sb
        .sandbox
        .faults
        .add(rolecall_sandbox::faults::FaultSpec {
            operation: "sso:GetRoleCredentials".into(),
            kind: rolecall_sandbox::faults::FaultKind::Throttle,
            status: None,
            latency_ms: None,
            count: Some(10),
        })
        .unwrap();
    let before = rig.count("sso:GetRoleCredentials");
    match rig
        .source
        .credentials(&profile("corp", Some("111111111111"), "DeveloperAdmin"))
        .await
    {
        Err(SourceError::Upstream { retryable, .. }) => assert!(retryable),
        other => panic!("expected Upstream, got {other:?}"),
    }
    // The SDK's standard retry: 3 attempts.
    assert_eq!(rig.count("sso:GetRoleCredentials"), before + 3);
    rig.sb.sandbox.faults.clear();
    rig.source
        .credentials(&profile("corp", Some("111111111111"), "DeveloperAdmin"))
        .await
        .unwrap();
}

#[tokio::test]
async fn list_roles_pages_through_every_account() {
    // Enough accounts for the portal to page.
    let dir = rolecall_sandbox::directory::Directory::from_toml(&format!(
        "{}\n[generate]\naccounts = 45\npermission_sets = 2\n",
        rolecall_sandbox::directory::DEFAULT_SEED
    ))
    .unwrap();
    let expected: usize = dir
        .accounts_of(ALICE)
        .iter()
        .map(|a| dir.roles_of(ALICE, &a.id).len())
        .sum();
    let sb = rolecall_sandbox::start(SandboxOptions {
        directory: Some(dir),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let rig = signed_in(sb).await;
    let roles = rig.source.list_roles().await.unwrap();
    assert_eq!(roles.len(), expected);
    assert!(roles.iter().any(|r| r.account_id == "111111111111"
        && r.role == "DeveloperAdmin"
        && r.account_name.as_deref() == Some("dev")));
    let mut sorted = roles.clone();
    sorted.sort_by(|a, b| (&a.account_id, &a.role).cmp(&(&b.account_id, &b.role)));
    assert_eq!(roles, sorted);
    assert!(
        rig.count("sso:ListAccounts") > 1,
        "expected several pages of accounts"
    );
}

#[tokio::test]
async fn logout_ends_the_portal_session_and_keeps_the_registration() {
    let rig = signed_in(sandbox(false).await).await;
    rig.source.logout().await.unwrap();
    assert_eq!(rig.count("sso:Logout"), 1);
    assert!(rig.token().is_none());
    assert!(rig
        .vault
        .get::<serde_json::Value>("ic/corp/registration/device")
        .is_some());
    assert_eq!(rig.source.session_state().await, SessionState::NeedsLogin);
    assert!(matches!(
        rig.source
            .credentials(&profile("corp", Some("111111111111"), "DeveloperAdmin"))
            .await,
        Err(SourceError::NeedsLogin(_))
    ));
}

#[tokio::test]
async fn session_survives_a_restart_through_the_vault() {
    let rig = signed_in(sandbox(false).await).await;
    let dir = rig._tmp.path().join("state");
    // A new store and source over the same state dir: a daemon restart.
    let vault = SecretStore::open(&dir, SecretStoreKind::File).unwrap();
    let ctx = SourceContext::new(
        vault,
        Arc::new(Default::default()),
        rig._tmp.path().to_path_buf(),
    );
    let (start_url, region) = {
        let d = rig.sb.sandbox.dir();
        (
            d.identity_center.start_url.clone(),
            d.identity_center.region.clone(),
        )
    };
    let cfg = SourceConfig::IdentityCenter(IdentityCenterConfig {
        start_url,
        region,
        flow: None,
        endpoint_url: Some(rig.sb.base_url.clone()),
        share_aws_cli_cache: false,
        sso_session: None,
    });
    let again = build("corp", &cfg, &ctx).unwrap();
    assert!(matches!(
        again.session_state().await,
        SessionState::SignedIn { .. }
    ));
    again
        .credentials(&profile("corp", Some("111111111111"), "DeveloperAdmin"))
        .await
        .unwrap();
}

/// Everything rolecall-daemon logs in this test binary, at every level.
fn captured_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static BUF: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let w = buf.clone();
        let make = move || LogWriter(w.clone());
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("rolecall_daemon=trace"))
            .with_writer(make)
            .with_ansi(false)
            .init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);
impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let logs = captured_logs();
    let sb = sandbox(true).await;
    sb.sandbox.lifetimes.write().unwrap().access_token_secs = 120;
    let rig = rig_with(sb, None, &[curl_browser()]);
    let (tx, _rx) = progress("corp");
    rig.source
        .login(LoginOptions::default(), &tx)
        .await
        .unwrap();
    let first = rig.token().unwrap();
    // A renewal, role credentials, then a revoked session and a logout: every path that logs.
    let c = rig
        .source
        .credentials(&profile("corp", Some("111111111111"), "DeveloperAdmin"))
        .await
        .unwrap();
    let renewed = rig.token().unwrap();
    let reg: serde_json::Value = rig.vault.get("ic/corp/registration/pkce").unwrap();
    rig.source.logout().await.unwrap();
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(
        text.contains("signed in to Identity Center"),
        "logging is captured"
    );
    let secrets = [
        first["access_token"].as_str().unwrap(),
        first["refresh_token"].as_str().unwrap(),
        renewed["access_token"].as_str().unwrap(),
        reg["client_secret"].as_str().unwrap(),
        c.secret_access_key.as_str(),
        c.session_token.as_str(),
    ];
    for s in secrets {
        assert!(s.len() >= 8);
        assert!(!text.contains(s), "a secret reached the logs");
    }
}

#[tokio::test]
async fn revoked_refresh_token_means_needs_login() {
    let sb = sandbox(false).await;
    sb.sandbox.lifetimes.write().unwrap().access_token_secs = 120;
    let rig = signed_in(sb).await;
    let n = rig
        .sb
        .sandbox
        .state::<rolecall_sandbox::oidc::State>()
        .revoke_refresh(None, None);
    assert_eq!(n, 1);
    // The access token has under 5 minutes left, so the renewal is tried, and refused.
    match rig
        .source
        .credentials(&profile("corp", Some("111111111111"), "DeveloperAdmin"))
        .await
    {
        Err(SourceError::NeedsLogin(m)) => {
            assert!(m.contains("refresh token revoked or expired"), "{m}")
        }
        other => panic!("expected NeedsLogin, got {other:?}"),
    }
    assert!(rig.token().is_none());
    assert_eq!(rig.source.session_state().await, SessionState::NeedsLogin);
}

#[tokio::test]
async fn pkce_denied_in_the_browser_is_cancelled() {
    let sb = sandbox(false).await;
    let rig = rig_with(sb, Some(FlowKind::Pkce), &[curl_browser()]);
    let (tx, mut rx) = progress("corp");
    let src = rig.source.clone();
    let login = tokio::spawn(async move { src.login(LoginOptions::default(), &tx).await });
    // Wait until the browser has reached the sandbox's sign-in step, then refuse it there.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = rig.sb.sandbox.pending.decide(
            &Selector {
                kind: Some("ssooidc:authorize".into()),
                all: true,
                ..Selector::default()
            },
            Decision::Denied,
        );
        if n == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "browser never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match tokio::time::timeout(Duration::from_secs(20), login)
        .await
        .unwrap()
        .unwrap()
    {
        Err(SourceError::LoginCancelled(m)) => assert!(m.contains("refused"), "{m}"),
        other => panic!("expected LoginCancelled, got {other:?}"),
    }
    assert!(rx.borrow_and_update().browser_opened);
    assert!(rig.token().is_none());
}

/// The AWS CLI (or a tool sharing its cache) renewed the same session: when rolecall's token
/// needs renewing, the newer one in `~/.aws/sso/cache` is taken instead of another renewal.
#[tokio::test]
async fn a_newer_token_in_the_aws_cli_cache_is_taken_instead_of_renewing() {
    let sb = sandbox(false).await;
    sb.sandbox.lifetimes.write().unwrap().access_token_secs = 120;
    let (start_url, region) = {
        let d = sb.sandbox.dir();
        (
            d.identity_center.start_url.clone(),
            d.identity_center.region.clone(),
        )
    };
    let home = tempfile::tempdir().unwrap();
    let rig = rig_with(sb, None, &[("HOME", home.path().display().to_string())]);
    device_login(&rig, approve()).await.0.unwrap();
    let mine = rig.token().unwrap();
    let reg: serde_json::Value = rig.vault.get("ic/corp/registration/device").unwrap();

    // Another tool renews the session with the same registration (longer tokens by now) and
    // caches the result the way botocore does.
    rig.sb.sandbox.lifetimes.write().unwrap().access_token_secs = 3600;
    let oidc = rolecall_daemon::endpoints::ssooidc_client(&region, Some(&rig.sb.base_url));
    let out = oidc
        .create_token()
        .client_id(reg["client_id"].as_str().unwrap())
        .client_secret(reg["client_secret"].as_str().unwrap())
        .grant_type("refresh_token")
        .refresh_token(mine["refresh_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let theirs = out.access_token().unwrap().to_string();
    let dir = home.path().join(".aws/sso/cache");
    std::fs::create_dir_all(&dir).unwrap();
    let file = serde_json::json!({
        "startUrl": start_url,
        "region": region,
        "accessToken": theirs,
        "expiresAt": rolecall_proto::timefmt::rfc3339(now() + 3600),
        "refreshToken": out.refresh_token().unwrap(),
        "clientId": reg["client_id"],
        "clientSecret": reg["client_secret"],
        "registrationExpiresAt": rolecall_proto::timefmt::rfc3339(reg["expires_at"].as_i64().unwrap()),
    });
    std::fs::write(
        dir.join("0ad374308c5a4e22f723adf10145eafad7c4031c.json"),
        file.to_string(),
    )
    .unwrap();

    let creates = rig.count("ssooidc:CreateToken");
    rig.source
        .credentials(&profile("corp", Some("111111111111"), "DeveloperReadOnly"))
        .await
        .unwrap();
    assert_eq!(
        rig.count("ssooidc:CreateToken"),
        creates,
        "taken, not renewed"
    );
    assert_eq!(rig.token().unwrap()["access_token"], theirs.as_str());
}
