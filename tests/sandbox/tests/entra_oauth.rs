//! The sandbox's Entra OAuth endpoints over real HTTP (reqwest; there is no Rust Entra SDK):
//! the device flow's errors in Entra's JSON shape, the confidential-app refusal
//! (AADSTS7000218), refresh rotation and revocation, the PKCE authorization code flow, and the
//! discovery document and JWKS that verify the tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rolecall_sandbox::{RunningSandbox, SandboxOptions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TENANT: &str = "contoso.onmicrosoft.com";
const TENANT_ID: &str = "9c0ffee0-1234-4cde-8f00-c0ffee000001";
const PUBLIC: &str = "11111111-1111-4111-8111-111111111111";
const CONFIDENTIAL: &str = "22222222-2222-4222-8222-222222222222";
const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn sandbox(auto_approve: bool) -> RunningSandbox {
    rolecall_sandbox::start(SandboxOptions {
        auto_approve,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

async fn admin(base: &str, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/_sandbox{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "admin {path}: {}", r.status());
    r.json().await.unwrap()
}

async fn post(base: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/{TENANT}/oauth2/v2.0/{path}"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn device_code(base: &str, client: &str, scope: &str) -> Value {
    let (s, v) = post(
        base,
        "devicecode",
        &[("client_id", client), ("scope", scope)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn poll(base: &str, client: &str, code: &str) -> (u16, Value) {
    post(
        base,
        "token",
        &[
            ("grant_type", DEVICE),
            ("client_id", client),
            ("device_code", code),
        ],
    )
    .await
}

/// Entra's error document: error, "AADSTSnnnn: …" description, error_codes, ids, timestamp.
fn assert_entra_error(v: &Value, error: &str, aadsts: u64) {
    assert_eq!(v["error"], error, "{v}");
    let d = v["error_description"].as_str().unwrap();
    assert!(d.starts_with(&format!("AADSTS{aadsts}: ")), "{d}");
    assert_eq!(v["error_codes"], json!([aadsts]));
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(v[k].is_string(), "{k} in {v}");
    }
}

#[tokio::test]
async fn device_flow_errors_in_entra_shape() {
    let sb = sandbox(false).await;
    let base = &sb.base_url;
    let dc = device_code(base, PUBLIC, "openid offline_access").await;
    for k in ["user_code", "device_code", "verification_uri", "message"] {
        assert!(dc[k].is_string(), "{k}");
    }
    assert!(dc["expires_in"].is_u64() && dc["interval"].is_u64());
    let code = dc["device_code"].as_str().unwrap();

    let (s, v) = poll(base, PUBLIC, code).await;
    assert_eq!(s, 400);
    assert_entra_error(&v, "authorization_pending", 70016);
    // Polling again at once, inside the 1 s interval: slow down.
    let (s, v) = poll(base, PUBLIC, code).await;
    assert_eq!(s, 400);
    assert_entra_error(&v, "slow_down", 70016);

    let (s, v) = poll(base, PUBLIC, "not-a-device-code").await;
    assert_eq!(s, 400);
    assert_entra_error(&v, "bad_verification_code", 70000);

    admin(base, "/deny", json!({"user_code": dc["user_code"]})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, v) = poll(base, PUBLIC, code).await;
    assert_entra_error(&v, "authorization_declined", 70000);

    let dc = device_code(base, PUBLIC, "openid").await;
    admin(base, "/clock", json!({"advance_secs": 601})).await;
    let (_, v) = poll(base, PUBLIC, dc["device_code"].as_str().unwrap()).await;
    assert_entra_error(&v, "expired_token", 70020);
    sb.shutdown().await;
}

#[tokio::test]
async fn confidential_app_needs_a_secret() {
    let sb = sandbox(false).await;
    let base = &sb.base_url;
    let dc = device_code(base, CONFIDENTIAL, "openid").await;
    admin(base, "/approve", json!({"user_code": dc["user_code"]})).await;
    let (s, v) = poll(base, CONFIDENTIAL, dc["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 401);
    assert_entra_error(&v, "invalid_client", 7000218);
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("'client_assertion' or 'client_secret'"));
    let (s, v) = post(
        base,
        "devicecode",
        &[("client_id", "nope"), ("scope", "openid")],
    )
    .await;
    assert_eq!(s, 400);
    assert_entra_error(&v, "unauthorized_client", 700016);
    sb.shutdown().await;
}

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn tokens_verify_with_discovery_and_refresh_rotates_until_revoked() {
    let sb = sandbox(false).await;
    let base = &sb.base_url;
    let dc = device_code(base, PUBLIC, "openid profile offline_access").await;
    admin(base, "/approve", json!({"user_code": dc["user_code"]})).await;
    let (s, t) = poll(base, PUBLIC, dc["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert!(t["expires_in"].is_u64() && t["ext_expires_in"].is_u64());

    // The ID token verifies with the key the discovery document's jwks_uri publishes.
    let conf: Value = reqwest::get(format!(
        "{base}/{TENANT}/v2.0/.well-known/openid-configuration"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let issuer = format!("https://login.microsoftonline.com/{TENANT_ID}/v2.0");
    assert_eq!(conf["issuer"], issuer.as_str());
    let jwks: Value = reqwest::get(conf["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = t["id_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(id_token).unwrap().kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[PUBLIC]);
    v.set_issuer(&[issuer.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &v)
        .unwrap()
        .claims;
    for k in [
        "sub",
        "oid",
        "tid",
        "upn",
        "preferred_username",
        "name",
        "iat",
        "nbf",
        "exp",
    ] {
        assert!(!claims[k].is_null(), "{k}");
    }
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["tid"], TENANT_ID);

    // Refresh: a new refresh token each time; a v1 access token for the app's API.
    let rt1 = t["refresh_token"].as_str().unwrap().to_string();
    let (s, r) = post(
        base,
        "token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC),
            ("refresh_token", &rt1),
            ("scope", "api://rolecall-aws/.default offline_access"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let rt2 = r["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    let at = jwt_claims(r["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], "api://rolecall-aws");
    assert_eq!(at["iss"], format!("https://sts.windows.net/{TENANT_ID}/"));
    assert_eq!(at["ver"], "1.0");

    admin(
        base,
        "/entra/revoke",
        json!({"user": "alice@contoso.onmicrosoft.com"}),
    )
    .await;
    let (s, e) = post(
        base,
        "token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC),
            ("refresh_token", &rt2),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_entra_error(&e, "invalid_grant", 50173);
    sb.shutdown().await;
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    let u = uuid::Uuid::new_v4();
    b[..16].copy_from_slice(u.as_bytes());
    b[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    b
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    let sb = sandbox(true).await;
    let base = &sb.base_url;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = "http://127.0.0.1:49152/oauth/callback";
    let authorize = |challenge: &str, redirect: &str| {
        reqwest::Url::parse_with_params(
            &format!("{base}/{TENANT}/oauth2/v2.0/authorize"),
            &[
                ("client_id", PUBLIC),
                ("response_type", "code"),
                ("redirect_uri", redirect),
                ("scope", "openid offline_access"),
                ("state", "st-1"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .unwrap()
    };
    let get_code = |url: reqwest::Url| {
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            assert_eq!(r.status(), 302);
            let loc = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
            let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
            assert_eq!(q["state"], "st-1");
            (loc, q.get("code").cloned())
        }
    };
    let (verifier, challenge) = pkce();
    let (loc, code) = get_code(authorize(&challenge, redirect)).await;
    assert!(loc.as_str().starts_with(redirect));
    let code = code.unwrap();
    let redeem = |code: String, verifier: String, redirect: &'static str| async move {
        post(
            base,
            "token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", PUBLIC),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
            ],
        )
        .await
    };
    // Wrong verifier first: refused, and the code stays unredeemed.
    let (s, e) = redeem(
        code.clone(),
        "wrong-verifier-wrong-verifier-wrong-verifier-x".into(),
        redirect,
    )
    .await;
    assert_eq!(s, 400);
    assert_entra_error(&e, "invalid_grant", 501481);
    let (s, e) = redeem(
        code.clone(),
        verifier.clone(),
        "http://127.0.0.1:49153/oauth/callback",
    )
    .await;
    assert_eq!(s, 400);
    assert_entra_error(&e, "invalid_grant", 70000);
    let (s, t) = redeem(code.clone(), verifier.clone(), redirect).await;
    assert_eq!(s, 200, "{t}");
    assert!(t["id_token"].is_string() && t["refresh_token"].is_string());
    let (_, e) = redeem(code, verifier, redirect).await;
    assert_entra_error(&e, "invalid_grant", 54005);

    // An unregistered redirect URI gets an error page, never a redirect.
    let (_, challenge) = pkce();
    let r = client
        .get(authorize(&challenge, "http://evil.example/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS50011"));

    // Denied: back to the app with error=access_denied.
    admin(base, "/auto-approve", json!({"enabled": false})).await;
    let url = authorize(&challenge, redirect);
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.get(url).send().await.unwrap() }
    });
    let mut denied = 0;
    for _ in 0..100 {
        let r = reqwest::Client::new()
            .post(format!("{base}/_sandbox/deny"))
            .json(&json!({"kind": "entra:authorize", "all": true}))
            .send()
            .await
            .unwrap();
        denied = r.json::<Value>().await.unwrap()["denied"]
            .as_u64()
            .unwrap_or(0);
        if denied == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(denied, 1);
    let r = held.await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.contains("error=access_denied") && loc.contains("state=st-1"),
        "{loc}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn saml_metadata_and_unknown_tenant() {
    let sb = sandbox(false).await;
    let base = &sb.base_url;
    for q in ["", "?appid=00000000-0000-0000-0000-000000000001"] {
        let r = reqwest::get(format!(
            "{base}/{TENANT_ID}/federationmetadata/2007-06/federationmetadata.xml{q}"
        ))
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let x = r.text().await.unwrap();
        assert!(x.contains(r#"<KeyDescriptor use="signing">"#));
        assert!(x.contains(&rolecall_sandbox::keys::saml_key().cert_b64()));
        assert!(x.contains(&format!(
            r#"entityID="https://sts.windows.net/{TENANT_ID}/""#
        )));
    }
    let r = reqwest::Client::new()
        .post(format!("{base}/fabrikam.example/oauth2/v2.0/devicecode"))
        .form(&[("client_id", PUBLIC), ("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_entra_error(&v, "invalid_request", 90002);
    sb.shutdown().await;
}

#[tokio::test]
async fn auto_approve_on_visiting_the_verification_page() {
    let sb = sandbox(true).await;
    let base = &sb.base_url;
    let dc = device_code(base, PUBLIC, "openid").await;
    let code = dc["device_code"].as_str().unwrap();
    let (_, v) = poll(base, PUBLIC, code).await;
    assert_entra_error(&v, "authorization_pending", 70016);
    // The bare verification URI, as a daemon's $BROWSER opens it (Entra has no
    // verification_uri_complete): the user "types the code" and signs in.
    let page = reqwest::get(dc["verification_uri"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("You have signed in"));
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let (s, t) = poll(base, PUBLIC, code).await;
    assert_eq!(s, 200, "{t}");
    assert!(t["id_token"].is_string() && t.get("refresh_token").is_none());
    sb.shutdown().await;
}
