//! The sandbox's Identity Center OIDC and portal emulation, driven by the real AWS SDK for Rust
//! (`aws-sdk-ssooidc`, `aws-sdk-sso`) with `endpoint_url` pointed at it: if the SDK accepts the
//! replies and maps every error to its typed variant, the wire format is right.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssooidc::config::retry::RetryConfig;
use aws_sdk_ssooidc::config::timeout::TimeoutConfig;
use aws_sdk_ssooidc::config::{BehaviorVersion, Region};
use base64::Engine;
use rolecall_sandbox::directory::{Directory, DEFAULT_SEED};
use rolecall_sandbox::{RunningSandbox, SandboxOptions};
use serde_json::{json, Value};
use sha2::Digest;
use std::time::{Duration, Instant};

const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const START_URL: &str = "https://d-9067c2e5f7.awsapps.com/start";
const ALICE: &str = "alice@contoso.onmicrosoft.com";

async fn sandbox(auto_approve: bool) -> RunningSandbox {
    sandbox_with(auto_approve, None).await
}

async fn sandbox_with(auto_approve: bool, directory: Option<Directory>) -> RunningSandbox {
    rolecall_sandbox::start(SandboxOptions {
        auto_approve,
        directory,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

fn retry() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(5))
}

fn oidc(base: &str) -> aws_sdk_ssooidc::Client {
    let conf = aws_sdk_ssooidc::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(base)
        .retry_config(retry())
        .build();
    aws_sdk_ssooidc::Client::from_conf(conf)
}

fn sso(base: &str) -> aws_sdk_sso::Client {
    sso_with(base, retry(), TimeoutConfig::disabled())
}

fn sso_with(base: &str, retry: RetryConfig, timeouts: TimeoutConfig) -> aws_sdk_sso::Client {
    let conf = aws_sdk_sso::Config::builder()
        .behavior_version(aws_sdk_sso::config::BehaviorVersion::latest())
        .region(aws_sdk_sso::config::Region::new("eu-west-1"))
        .endpoint_url(base)
        .retry_config(retry)
        .timeout_config(timeouts)
        .build();
    aws_sdk_sso::Client::from_conf(conf)
}

async fn admin(base: &str, method: &str, path: &str, body: Value) -> Value {
    let c = reqwest::Client::new();
    let url = format!("{base}/_sandbox{path}");
    let rb = match method {
        "GET" => c.get(url),
        "DELETE" => c.delete(url).json(&body),
        _ => c.post(url).json(&body),
    };
    let r = rb.send().await.expect("admin call");
    let status = r.status();
    let v: Value = r.json().await.expect("admin JSON");
    assert!(status.is_success(), "admin {method} {path}: {status} {v}");
    v
}

struct Registration {
    id: String,
    secret: String,
}

async fn register_device_client(c: &aws_sdk_ssooidc::Client) -> Registration {
    let r = c
        .register_client()
        .client_name("rolecall-test")
        .client_type("public")
        .scopes("sso:account:access")
        .grant_types(DEVICE)
        .grant_types("refresh_token")
        .issuer_url(START_URL)
        .send()
        .await
        .expect("RegisterClient");
    Registration {
        id: r.client_id().unwrap().to_string(),
        secret: r.client_secret().unwrap().to_string(),
    }
}

async fn register_pkce_client(c: &aws_sdk_ssooidc::Client) -> Registration {
    let r = c
        .register_client()
        .client_name("rolecall-test-pkce")
        .client_type("public")
        .scopes("sso:account:access")
        .grant_types("authorization_code")
        .grant_types("refresh_token")
        .redirect_uris("http://127.0.0.1/oauth/callback")
        .issuer_url(START_URL)
        .send()
        .await
        .expect("RegisterClient");
    Registration {
        id: r.client_id().unwrap().to_string(),
        secret: r.client_secret().unwrap().to_string(),
    }
}

/// Device flow up to the tokens, approving through the admin API.
async fn device_login(
    base: &str,
    c: &aws_sdk_ssooidc::Client,
    reg: &Registration,
) -> (String, Option<String>) {
    let dev = c
        .start_device_authorization()
        .client_id(&reg.id)
        .client_secret(&reg.secret)
        .start_url(START_URL)
        .send()
        .await
        .expect("StartDeviceAuthorization");
    admin(
        base,
        "POST",
        "/approve",
        json!({"user_code": dev.user_code().unwrap()}),
    )
    .await;
    let t = c
        .create_token()
        .client_id(&reg.id)
        .client_secret(&reg.secret)
        .grant_type(DEVICE)
        .device_code(dev.device_code().unwrap())
        .send()
        .await
        .expect("CreateToken after approval");
    (
        t.access_token().unwrap().to_string(),
        t.refresh_token().map(str::to_string),
    )
}

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn authorize_url(base: &str, client_id: &str, redirect: &str, verifier: &str) -> String {
    let mut u = url::Url::parse(&format!("{base}/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "st-123")
        .append_pair("code_challenge", &challenge(verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("scopes", "sso:account:access");
    u.to_string()
}

fn location_params(r: &reqwest::Response) -> (url::Url, std::collections::HashMap<String, String>) {
    assert_eq!(r.status(), 302, "expected a redirect");
    let loc = r.headers()["location"].to_str().unwrap();
    let u = url::Url::parse(loc).unwrap();
    let q = u.query_pairs().into_owned().collect();
    (u, q)
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-more-entropy";

#[tokio::test]
async fn register_client_wire_format() {
    let sb = sandbox(false).await;
    let c = oidc(&sb.base_url);
    let r = c
        .register_client()
        .client_name("x")
        .client_type("public")
        .scopes("sso:account:access")
        .send()
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((r.client_id_issued_at() - now).abs() < 5);
    assert!((r.client_secret_expires_at() - (now + 90 * 86400)).abs() < 5);
    assert_eq!(
        r.authorization_endpoint(),
        Some(format!("{}/authorize", sb.base_url).as_str())
    );

    let e = c
        .register_client()
        .client_name("x")
        .client_type("public")
        .scopes("bogus:scope")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_scope_exception(),
        "{e:?}"
    );
    let e = c
        .register_client()
        .client_name("x")
        .client_type("public")
        .grant_types("authorization_code")
        .redirect_uris("http://evil.example/cb")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_invalid_redirect_uri_exception(),
        "{e:?}"
    );
    let e = c
        .register_client()
        .client_name("x")
        .client_type("public")
        .grant_types("password")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_unsupported_grant_type_exception(),
        "{e:?}"
    );
}

#[tokio::test]
async fn device_flow_pending_slow_down_approve_and_portal() {
    let sb = sandbox(false).await;
    let base = &sb.base_url;
    let c = oidc(base);
    let reg = register_device_client(&c).await;
    // A long interval so that "too fast" holds even on a loaded machine.
    admin(
        base,
        "POST",
        "/lifetimes",
        json!({"device_interval_secs": 5}),
    )
    .await;
    let dev = c
        .start_device_authorization()
        .client_id(&reg.id)
        .client_secret(&reg.secret)
        .start_url(START_URL)
        .send()
        .await
        .unwrap();
    assert_eq!(dev.expires_in(), 600);
    assert_eq!(dev.interval(), 5);
    let user_code = dev.user_code().unwrap().to_string();
    assert!(dev
        .verification_uri_complete()
        .unwrap()
        .ends_with(&user_code));
    let poll = || {
        c.create_token()
            .client_id(&reg.id)
            .client_secret(&reg.secret)
            .grant_type(DEVICE)
            .device_code(dev.device_code().unwrap())
            .send()
    };
    let e = poll().await.unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_authorization_pending_exception(),
        "{e:?}"
    );
    // Polling again at once is faster than the announced interval.
    let e = poll().await.unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_slow_down_exception(),
        "{e:?}"
    );

    // The pending login is listed, and a browser visit without auto-approve leaves it pending.
    let pending = admin(base, "GET", "/pending", json!({})).await;
    assert_eq!(pending["pending"][0]["user_code"], user_code.as_str());
    let page = reqwest::get(dev.verification_uri_complete().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Waiting for approval"));
    assert_eq!(
        admin(base, "GET", "/pending", json!({})).await["pending"][0]["state"],
        "pending"
    );

    admin(base, "POST", "/approve", json!({"user_code": user_code})).await;
    let t = poll().await.unwrap();
    assert_eq!(t.token_type(), Some("Bearer"));
    assert_eq!(t.expires_in(), 3600);
    let access = t.access_token().unwrap().to_string();
    assert!(
        t.refresh_token().is_some(),
        "sso:account:access scope gives a refresh token"
    );
    // A device code is single-use.
    let e = poll().await.unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_grant_exception(),
        "{e:?}"
    );

    // The portal accepts the token.
    let p = sso(base);
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let creds = p
        .get_role_credentials()
        .access_token(&access)
        .account_id("111111111111")
        .role_name("DeveloperAdmin")
        .send()
        .await
        .unwrap();
    let rc = creds.role_credentials().unwrap();
    assert!(rc.access_key_id().unwrap().starts_with("ASIA"));
    // Epoch milliseconds, the permission set's 4 hours.
    let exp_secs = rc.expiration() / 1000;
    assert!(
        (exp_secs - (before + 4 * 3600)).abs() < 5,
        "expiration {}",
        rc.expiration()
    );
    let issued = admin(base, "GET", "/issued", json!({})).await;
    let arn = issued["credentials"][0]["arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_DeveloperAdmin_")
            && arn.ends_with(&format!("/{ALICE}")),
        "{arn}"
    );
    let counts = admin(base, "GET", "/counts", json!({})).await;
    assert_eq!(counts["sso:GetRoleCredentials"], 1);
    assert_eq!(counts["ssooidc:CreateToken"], 4);
}

#[tokio::test]
async fn device_flow_denied_expired_and_client_errors() {
    let sb = sandbox(false).await;
    let base = &sb.base_url;
    let c = oidc(base);
    let reg = register_device_client(&c).await;
    let start = || {
        c.start_device_authorization()
            .client_id(&reg.id)
            .client_secret(&reg.secret)
            .start_url(START_URL)
            .send()
    };
    let token = |code: String| {
        c.create_token()
            .client_id(&reg.id)
            .client_secret(&reg.secret)
            .grant_type(DEVICE)
            .device_code(code)
            .send()
    };

    // Denied by the user.
    let dev = start().await.unwrap();
    admin(
        base,
        "POST",
        "/deny",
        json!({"user_code": dev.user_code().unwrap()}),
    )
    .await;
    let e = token(dev.device_code().unwrap().into()).await.unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_access_denied_exception(),
        "{e:?}"
    );

    // Expired device code (the sandbox clock moves past expiresIn).
    let dev = start().await.unwrap();
    admin(base, "POST", "/clock", json!({"advance_secs": 601})).await;
    let e = token(dev.device_code().unwrap().into()).await.unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_expired_token_exception(),
        "{e:?}"
    );

    // Unknown device code.
    let e = token("not-a-device-code".into()).await.unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_grant_exception(),
        "{e:?}"
    );

    // Missing deviceCode.
    let e = c
        .create_token()
        .client_id(&reg.id)
        .client_secret(&reg.secret)
        .grant_type(DEVICE)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_request_exception(),
        "{e:?}"
    );

    // Wrong secret.
    let e = c
        .create_token()
        .client_id(&reg.id)
        .client_secret("wrong")
        .grant_type(DEVICE)
        .device_code("x")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_client_exception(),
        "{e:?}"
    );

    // Unsupported grant type, and a grant this client did not register.
    let e = c
        .create_token()
        .client_id(&reg.id)
        .client_secret(&reg.secret)
        .grant_type("password")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_unsupported_grant_type_exception(),
        "{e:?}"
    );
    let e = c
        .create_token()
        .client_id(&reg.id)
        .client_secret(&reg.secret)
        .grant_type("authorization_code")
        .code("x")
        .code_verifier(VERIFIER)
        .redirect_uri("http://127.0.0.1:1/oauth/callback")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_unauthorized_client_exception(),
        "{e:?}"
    );

    // A scope that was not registered.
    let e = c
        .create_token()
        .client_id(&reg.id)
        .client_secret(&reg.secret)
        .grant_type(DEVICE)
        .device_code("x")
        .scope("openid")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_scope_exception(),
        "{e:?}"
    );

    // The registration expires at clientSecretExpiresAt.
    admin(base, "POST", "/clock", json!({"advance_secs": 90 * 86400})).await;
    let e = start().await.unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_client_exception(),
        "{e:?}"
    );
}

#[tokio::test]
async fn pkce_flow_with_admin_approval_and_refresh() {
    let sb = sandbox(false).await;
    let base = sb.base_url.clone();
    let c = oidc(&base);
    let reg = register_pkce_client(&c).await;
    let redirect = "http://127.0.0.1:49152/oauth/callback";
    let url = authorize_url(&base, &reg.id, redirect, VERIFIER);
    // The browser visit is held until the login is approved.
    let visit = tokio::spawn(async move { no_redirects().get(url).send().await.unwrap() });
    let id = loop {
        let p = admin(&base, "GET", "/pending", json!({})).await;
        if let Some(item) = p["pending"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == "ssooidc:authorize")
        {
            break item["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    admin(
        &base,
        "POST",
        "/approve",
        json!({"id": id, "user": "bob@contoso.onmicrosoft.com"}),
    )
    .await;
    let r = visit.await.unwrap();
    let (loc, q) = location_params(&r);
    assert_eq!(
        (loc.host_str(), loc.port(), loc.path()),
        (Some("127.0.0.1"), Some(49152), "/oauth/callback")
    );
    assert_eq!(q["state"], "st-123");
    let code = q["code"].clone();

    let redeem = |code: String, verifier: &'static str, redirect: &'static str| {
        c.create_token()
            .client_id(&reg.id)
            .client_secret(&reg.secret)
            .grant_type("authorization_code")
            .code(code)
            .code_verifier(verifier)
            .redirect_uri(redirect)
            .send()
    };
    let t = redeem(
        code.clone(),
        VERIFIER,
        "http://127.0.0.1:49152/oauth/callback",
    )
    .await
    .unwrap();
    let access = t.access_token().unwrap().to_string();
    let refresh = t.refresh_token().unwrap().to_string();
    // Single-use code.
    let e = redeem(code, VERIFIER, "http://127.0.0.1:49152/oauth/callback")
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_grant_exception(),
        "{e:?}"
    );

    // The token belongs to bob: only his assignments.
    let p = sso(&sb.base_url);
    let accounts = p
        .list_accounts()
        .access_token(&access)
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = accounts
        .account_list()
        .iter()
        .map(|a| a.account_id().unwrap())
        .collect();
    assert_eq!(ids, vec!["111111111111"]);

    // refresh_token grant gives a working access token.
    let t2 = c
        .create_token()
        .client_id(&reg.id)
        .client_secret(&reg.secret)
        .grant_type("refresh_token")
        .refresh_token(&refresh)
        .send()
        .await
        .unwrap();
    let access2 = t2.access_token().unwrap().to_string();
    assert_ne!(access2, access);
    p.list_accounts()
        .access_token(&access2)
        .send()
        .await
        .unwrap();

    // Revoked refresh tokens are refused.
    let n = admin(
        &sb.base_url,
        "POST",
        "/revoke-refresh-tokens",
        json!({"user": "bob@contoso.onmicrosoft.com"}),
    )
    .await;
    assert!(n["revoked"].as_u64().unwrap() >= 1);
    let e = c
        .create_token()
        .client_id(&reg.id)
        .client_secret(&reg.secret)
        .grant_type("refresh_token")
        .refresh_token(&refresh)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_grant_exception(),
        "{e:?}"
    );
}

#[tokio::test]
async fn pkce_refuses_wrong_verifier_redirect_and_host() {
    let sb = sandbox(true).await;
    let base = &sb.base_url;
    let c = oidc(base);
    let reg = register_pkce_client(&c).await;
    let http = no_redirects();
    let get_code = |redirect: &str| {
        let url = authorize_url(base, &reg.id, redirect, VERIFIER);
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            location_params(&r).1["code"].clone()
        }
    };
    let token = |code: String, verifier: &'static str, redirect: &'static str| {
        c.create_token()
            .client_id(&reg.id)
            .client_secret(&reg.secret)
            .grant_type("authorization_code")
            .code(code)
            .code_verifier(verifier)
            .redirect_uri(redirect)
            .send()
    };
    // Wrong verifier.
    let code = get_code("http://127.0.0.1:50001/oauth/callback").await;
    let e = token(
        code,
        "another-verifier-that-is-long-enough-to-be-valid-xyz",
        "http://127.0.0.1:50001/oauth/callback",
    )
    .await
    .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_grant_exception(),
        "{e:?}"
    );
    // Redirect URI differs from the authorize request's.
    let code = get_code("http://127.0.0.1:50001/oauth/callback").await;
    let e = token(code, VERIFIER, "http://127.0.0.1:50002/oauth/callback")
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_grant_exception(),
        "{e:?}"
    );
    // Expired code.
    let code = get_code("http://127.0.0.1:50001/oauth/callback").await;
    admin(base, "POST", "/clock", json!({"advance_secs": 301})).await;
    let e = token(code, VERIFIER, "http://127.0.0.1:50001/oauth/callback")
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_grant_exception(),
        "{e:?}"
    );

    // A non-loopback host, or another path, never gets a redirect.
    for bad in [
        "http://evil.example:50001/oauth/callback",
        "http://127.0.0.1:50001/elsewhere",
    ] {
        let r = http
            .get(authorize_url(base, &reg.id, bad, VERIFIER))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.headers().get("location").is_none());
    }
    // A denied login redirects with error=access_denied.
    admin(base, "POST", "/auto-approve", json!({"enabled": false})).await;
    let url = authorize_url(
        base,
        &reg.id,
        "http://127.0.0.1:50003/oauth/callback",
        VERIFIER,
    );
    let visit = tokio::spawn(async move { no_redirects().get(url).send().await.unwrap() });
    loop {
        let n = reqwest::Client::new()
            .post(format!("{base}/_sandbox/deny"))
            .json(&json!({"all": true, "kind": "ssooidc:authorize"}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        if n["denied"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, q) = location_params(&visit.await.unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
}

#[tokio::test]
async fn portal_errors_are_typed() {
    let sb = sandbox(false).await;
    let base = &sb.base_url;
    let c = oidc(base);
    let reg = register_device_client(&c).await;
    let (access, _) = device_login(base, &c, &reg).await;
    let p = sso(base);
    let grc = |token: &str, account: &str, role: &str| {
        p.get_role_credentials()
            .access_token(token)
            .account_id(account)
            .role_name(role)
            .send()
    };
    let e = grc("bogus-token", "111111111111", "DeveloperAdmin")
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_unauthorized_exception(),
        "{e:?}"
    );
    // Unassigned role: 403 ForbiddenException (not in the model, so the SDK reports its code).
    let e = grc(&access, "333333333333", "DeveloperAdmin")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ForbiddenException"), "{e:?}");
    let e = grc(&access, "12345", "DeveloperAdmin").await.unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_request_exception(),
        "{e:?}"
    );
    let e = p
        .list_account_roles()
        .access_token(&access)
        .account_id("999999999999")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_resource_not_found_exception(),
        "{e:?}"
    );

    // Expired access token.
    let n = admin(
        base,
        "POST",
        "/expire-access-tokens",
        json!({"user": ALICE}),
    )
    .await;
    assert_eq!(n["expired"], 1);
    let e = grc(&access, "111111111111", "DeveloperAdmin")
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_unauthorized_exception(),
        "{e:?}"
    );

    // Logout ends the session.
    let (access, refresh) = device_login(base, &c, &reg).await;
    grc(&access, "111111111111", "DeveloperAdmin")
        .await
        .unwrap();
    p.logout().access_token(&access).send().await.unwrap();
    let e = grc(&access, "111111111111", "DeveloperAdmin")
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_unauthorized_exception(),
        "{e:?}"
    );
    let e = c
        .create_token()
        .client_id(&reg.id)
        .client_secret(&reg.secret)
        .grant_type("refresh_token")
        .refresh_token(refresh.unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_grant_exception(),
        "{e:?}"
    );

    // Role credentials lifetime override.
    let (access, _) = device_login(base, &c, &reg).await;
    admin(
        base,
        "POST",
        "/lifetimes",
        json!({"role_credentials_secs": 120}),
    )
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let r = grc(&access, "222222222222", "DeveloperPowerUser")
        .await
        .unwrap();
    let exp = r.role_credentials().unwrap().expiration() / 1000;
    assert!((exp - (now + 120)).abs() < 5);
}

#[tokio::test]
async fn listing_pages_through_a_big_directory() {
    let seed = format!("{DEFAULT_SEED}\n[generate]\naccounts = 300\npermission_sets = 3\n");
    let sb = sandbox_with(false, Some(Directory::from_toml(&seed).unwrap())).await;
    let base = &sb.base_url;
    let c = oidc(base);
    let reg = register_device_client(&c).await;
    let (access, _) = device_login(base, &c, &reg).await;
    let p = sso(base);
    let mut pages = p
        .list_accounts()
        .access_token(&access)
        .max_results(50)
        .into_paginator()
        .items()
        .send();
    let mut ids = Vec::new();
    while let Some(a) = pages.next().await {
        ids.push(a.unwrap().account_id().unwrap().to_string());
    }
    assert_eq!(ids.len(), 303);
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 303);
    let counts = admin(base, "GET", "/counts", json!({})).await;
    assert_eq!(counts["sso:ListAccounts"], 7);

    let mut roles = p
        .list_account_roles()
        .access_token(&access)
        .account_id("500000000007")
        .max_results(1)
        .into_paginator()
        .items()
        .send();
    let mut names = Vec::new();
    while let Some(r) = roles.next().await {
        names.push(r.unwrap().role_name().unwrap().to_string());
    }
    assert_eq!(
        names,
        vec!["GeneratedSet01", "GeneratedSet02", "GeneratedSet03"]
    );

    let e = p
        .list_accounts()
        .access_token(&access)
        .next_token("forged")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_invalid_request_exception(),
        "{e:?}"
    );
}

#[tokio::test]
async fn injected_faults_reach_the_sdk() {
    let sb = sandbox(false).await;
    let base = &sb.base_url;
    let c = oidc(base);
    let reg = register_device_client(&c).await;
    let (access, _) = device_login(base, &c, &reg).await;
    let p = sso(base);
    let grc = || {
        p.get_role_credentials()
            .access_token(&access)
            .account_id("111111111111")
            .role_name("DeveloperReadOnly")
            .send()
    };
    let fault = |spec: Value| admin(base, "POST", "/faults", spec);
    let count = || async {
        admin(base, "GET", "/counts", json!({})).await["sso:GetRoleCredentials"]
            .as_u64()
            .unwrap_or(0)
    };

    // One 500: the SDK retries and succeeds.
    admin(base, "POST", "/counts/reset", json!({})).await;
    fault(json!({"operation": "sso:GetRoleCredentials", "kind": "status", "status": 500})).await;
    grc().await.unwrap();
    assert_eq!(count().await, 2);
    // More 500s than attempts: the SDK gives up with the 500.
    admin(base, "POST", "/counts/reset", json!({})).await;
    fault(
        json!({"operation": "sso:GetRoleCredentials", "kind": "status", "status": 500, "count": 5}),
    )
    .await;
    let e = grc().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert_eq!(count().await, 3);
    admin(base, "DELETE", "/faults", json!({})).await;

    // Throttling: TooManyRequestsException after the retries.
    fault(json!({"operation": "sso:GetRoleCredentials", "kind": "throttle", "count": 5})).await;
    let e = grc().await.unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_too_many_requests_exception(),
        "{e:?}"
    );
    admin(base, "DELETE", "/faults", json!({})).await;
    // The OIDC service throttles with its SlowDownException.
    fault(json!({"operation": "ssooidc:RegisterClient", "kind": "throttle"})).await;
    let e = c
        .register_client()
        .client_name("x")
        .client_type("public")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_slow_down_exception(),
        "{e:?}"
    );

    // Latency: the call takes at least that long, and a short attempt timeout trips.
    fault(json!({"operation": "sso:GetRoleCredentials", "kind": "latency", "latency_ms": 400}))
        .await;
    let t0 = Instant::now();
    grc().await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(400));
    fault(json!({"operation": "sso:GetRoleCredentials", "kind": "latency", "latency_ms": 2000}))
        .await;
    let impatient = sso_with(
        base,
        RetryConfig::disabled(),
        TimeoutConfig::builder()
            .operation_timeout(Duration::from_millis(200))
            .build(),
    );
    let e = impatient
        .get_role_credentials()
        .access_token(&access)
        .account_id("111111111111")
        .role_name("DeveloperReadOnly")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(e, SdkError::TimeoutError(_)), "{e:?}");

    // Dropped connections: a dispatch (IO) failure once retries are used up.
    admin(base, "DELETE", "/faults", json!({})).await;
    admin(base, "POST", "/counts/reset", json!({})).await;
    fault(json!({"operation": "sso:GetRoleCredentials", "kind": "drop", "count": 3})).await;
    let e = grc().await.unwrap_err();
    match &e {
        SdkError::DispatchFailure(d) => assert!(d.is_io() || d.is_other(), "{d:?}"),
        other => panic!("expected a dispatch failure, got {other:?}"),
    }
    assert_eq!(count().await, 3);
    // And one dropped connection is retried transparently.
    fault(json!({"operation": "sso:GetRoleCredentials", "kind": "drop"})).await;
    grc().await.unwrap();

    // A bad fault spec is refused with a reason.
    let r = reqwest::Client::new()
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({"operation": "GetRoleCredentials", "kind": "drop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
