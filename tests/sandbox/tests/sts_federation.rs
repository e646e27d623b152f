//! The sandbox's Entra SAML/OIDC and STS emulation driven by the real AWS SDK for Rust
//! (`aws-sdk-sts` with `endpoint_url`): the SAML response is taken from the sandbox's own
//! `/saml2` page (this test plays the browser), ID tokens come from the Entra device flow, and
//! every refusal must reach the SDK as its typed error.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use aws_credential_types::Credentials;
use aws_sdk_sts::config::{BehaviorVersion, Region};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rolecall_sandbox::saml::request::encode_redirect;
use rolecall_sandbox::{jwt, keys, RunningSandbox, SandboxOptions};
use serde_json::{json, Value};

const TENANT: &str = "contoso.onmicrosoft.com";
const TENANT_ID: &str = "9c0ffee0-1234-4cde-8f00-c0ffee000001";
const APP_ID: &str = "https://signin.aws.amazon.com/saml#1";
const PROVIDER: &str = "arn:aws:iam::333333333333:saml-provider/EntraID";
const ADMIN_ROLE: &str = "arn:aws:iam::333333333333:role/EntraAdmin";
const RO_ROLE: &str = "arn:aws:iam::333333333333:role/EntraReadOnly";
const OIDC_ROLE: &str = "arn:aws:iam::444444444444:role/EntraOidcDeveloper";
const CLIENT: &str = "11111111-1111-4111-8111-111111111111";
const ALICE: &str = "alice@contoso.onmicrosoft.com";

async fn sandbox(auto_approve: bool) -> RunningSandbox {
    rolecall_sandbox::start(SandboxOptions {
        auto_approve,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

fn sts(base: &str, creds: Option<Credentials>) -> aws_sdk_sts::Client {
    let mut b = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(base)
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled());
    if let Some(c) = creds {
        b = b.credentials_provider(c);
    }
    aws_sdk_sts::Client::from_conf(b.build())
}

async fn admin(base: &str, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/_sandbox{path}"))
        .json(&body)
        .send()
        .await
        .expect("admin call");
    assert!(r.status().is_success(), "admin {path}: {}", r.status());
    r.json().await.expect("admin JSON")
}

/// Plays the browser: SP-initiated request to `/saml2`, returns the auto-posting page.
async fn saml_page(base: &str) -> String {
    let req = encode_redirect("id-rust-1", APP_ID, false, "2026-01-01T00:00:00Z");
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/{TENANT}/saml2"),
        &[("SAMLRequest", req.as_str()), ("RelayState", "rs")],
    )
    .unwrap();
    let page = reqwest::get(url).await.unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

/// The SAMLResponse the page would post.
async fn saml_response(base: &str) -> String {
    form_value(&saml_page(base).await, "SAMLResponse")
}

fn form_value(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker).expect("form field") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_string()
}

fn creds_of(c: &aws_sdk_sts::types::Credentials) -> Credentials {
    Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "sandbox",
    )
}

async fn assume_saml(
    base: &str,
    role: &str,
    assertion: &str,
    duration: Option<i32>,
) -> Result<
    aws_sdk_sts::operation::assume_role_with_saml::AssumeRoleWithSamlOutput,
    SdkError<aws_sdk_sts::operation::assume_role_with_saml::AssumeRoleWithSAMLError>,
> {
    sts(base, None)
        .assume_role_with_saml()
        .role_arn(role)
        .principal_arn(PROVIDER)
        .saml_assertion(assertion)
        .set_duration_seconds(duration)
        .send()
        .await
}

async fn caller_arn(base: &str, creds: Credentials) -> String {
    let out = sts(base, Some(creds))
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    out.arn().unwrap().to_string()
}

#[tokio::test]
async fn saml_both_roles_then_caller_identity() {
    let sb = sandbox(true).await;
    let base = &sb.base_url;
    let page = saml_page(base).await;
    // Entra posts to the app's reply URL, AWS's sign-in endpoint, with the RelayState.
    assert!(page.contains(r#"action="https://signin.aws.amazon.com/saml""#));
    assert_eq!(form_value(&page, "RelayState"), "rs");
    let assertion = form_value(&page, "SAMLResponse");
    for (role, name) in [(ADMIN_ROLE, "EntraAdmin"), (RO_ROLE, "EntraReadOnly")] {
        let out = assume_saml(base, role, &assertion, Some(900))
            .await
            .unwrap();
        let c = out.credentials().unwrap();
        assert!(c.access_key_id().starts_with("ASIA"));
        let expected = format!("arn:aws:sts::333333333333:assumed-role/{name}/{ALICE}");
        assert_eq!(out.assumed_role_user().unwrap().arn(), expected);
        assert!(out
            .assumed_role_user()
            .unwrap()
            .assumed_role_id()
            .starts_with("AROA"));
        assert_eq!(out.subject(), Some(ALICE));
        assert_eq!(out.subject_type(), Some("persistent"));
        assert_eq!(out.audience(), Some("https://signin.aws.amazon.com/saml"));
        assert_eq!(
            out.issuer(),
            Some(format!("https://sts.windows.net/{TENANT_ID}/").as_str())
        );
        let left = c.expiration().secs() - time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((850..=905).contains(&left), "900 s session, got {left}");
        assert_eq!(caller_arn(base, creds_of(c)).await, expected);
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn saml_session_and_no_passive() {
    let sb = sandbox(false).await;
    let base = sb.base_url.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |passive: bool| {
        reqwest::Url::parse_with_params(
            &format!("{base}/{TENANT}/saml2"),
            &[(
                "SAMLRequest",
                encode_redirect("id-p", APP_ID, passive, "2026-01-01T00:00:00Z"),
            )],
        )
        .unwrap()
    };
    // Passive without a session: Responder/NoPassive posted to AWS, which STS refuses.
    let html = client
        .get(url(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let xml =
        String::from_utf8(STANDARD.decode(form_value(&html, "SAMLResponse")).unwrap()).unwrap();
    assert!(xml.contains("urn:oasis:names:tc:SAML:2.0:status:NoPassive"));
    // Interactive: held until the admin API approves; the answer sets the session cookie.
    let pending = tokio::spawn({
        let (c, u) = (client.clone(), url(false));
        async move { c.get(u).send().await.unwrap() }
    });
    let mut approved = false;
    for _ in 0..100 {
        let r = reqwest::Client::new()
            .post(format!("{base}/_sandbox/approve"))
            .json(&json!({"kind": "entra:saml", "all": true}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        if v["approved"].as_u64() == Some(1) {
            approved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(approved);
    let resp = pending.await.unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("ESTSAUTHPERSISTENT=") && cookie.contains("HttpOnly"));
    assert!(cookie.contains("Max-Age="), "persistent: {cookie}");
    let first = form_value(&resp.text().await.unwrap(), "SAMLResponse");
    assume_saml(&base, ADMIN_ROLE, &first, None).await.unwrap();
    // Second passive request with the cookie: answered at once, no approval.
    let cookie_pair = cookie.split(';').next().unwrap().to_string();
    let html = client
        .get(url(true))
        .header("cookie", cookie_pair)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let again = form_value(&html, "SAMLResponse");
    assume_saml(&base, RO_ROLE, &again, None).await.unwrap();
    sb.shutdown().await;
}

fn code_of<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

#[tokio::test]
async fn saml_refusals_are_typed_sdk_errors() {
    let sb = sandbox(true).await;
    let base = &sb.base_url;

    // Unsigned, and signed by a key the provider does not trust.
    for signing in ["unsigned", "rogue"] {
        admin(base, "/entra/saml", json!({"signing": signing})).await;
        let a = saml_response(base).await;
        let e = assume_saml(base, ADMIN_ROLE, &a, None)
            .await
            .unwrap_err()
            .into_service_error();
        assert!(e.is_invalid_identity_token_exception(), "{signing}: {e:?}");
    }
    // Addressed to a loopback ACS: a valid signature does not make it redeemable.
    admin(
        base,
        "/entra/saml",
        json!({"recipient": "http://127.0.0.1:8400/saml"}),
    )
    .await;
    let a = saml_response(base).await;
    let e = assume_saml(base, ADMIN_ROLE, &a, None)
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_invalid_identity_token_exception(), "{e:?}");
    // Wrong audience.
    admin(
        base,
        "/entra/saml",
        json!({"audience": "urn:amazon:webservices:other"}),
    )
    .await;
    let a = saml_response(base).await;
    let e = assume_saml(base, ADMIN_ROLE, &a, None)
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_invalid_identity_token_exception(), "{e:?}");
    admin(base, "/entra/saml", json!({})).await;

    // Signature wrapping: the signed assertion is moved aside and a forged one takes its place.
    let good = saml_response(base).await;
    let xml = String::from_utf8(STANDARD.decode(&good).unwrap()).unwrap();
    let evil_role = format!("arn:aws:iam::333333333333:role/Evil,{PROVIDER}");
    let forged = rolecall_sandbox::saml::wrapping_forgery(&xml, &evil_role).unwrap();
    let e = assume_saml(base, ADMIN_ROLE, &STANDARD.encode(forged), None)
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_invalid_identity_token_exception(), "{e:?}");

    // A role that is not in the assertion, and a duration beyond the role's maximum.
    let e = assume_saml(
        base,
        "arn:aws:iam::333333333333:role/NotInAssertion",
        &good,
        None,
    )
    .await
    .unwrap_err()
    .into_service_error();
    assert_eq!(code_of(&e), "AccessDenied");
    let e = assume_saml(base, ADMIN_ROLE, &good, Some(7200))
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code_of(&e), "ValidationError");
    assert!(e.message().unwrap().contains("MaxSessionDuration"));

    // A session policy that is not a policy document.
    let e = sts(base, None)
        .assume_role_with_saml()
        .role_arn(ADMIN_ROLE)
        .principal_arn(PROVIDER)
        .saml_assertion(&good)
        .policy("{not json")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_malformed_policy_document_exception(), "{e:?}");

    // Expired: the 5-minute window (plus skew) has passed.
    admin(base, "/clock", json!({"advance_secs": 400})).await;
    let e = assume_saml(base, ADMIN_ROLE, &good, None)
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_expired_token_exception(), "{e:?}");
    sb.shutdown().await;
}

/// Runs the Entra device flow with an admin approval; returns the token response.
async fn device_tokens(base: &str, scope: &str) -> Value {
    let c = reqwest::Client::new();
    let dc: Value = c
        .post(format!("{base}/{TENANT}/oauth2/v2.0/devicecode"))
        .form(&[("client_id", CLIENT), ("scope", scope)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    admin(base, "/approve", json!({"user_code": dc["user_code"]})).await;
    let r = c
        .post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", CLIENT),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn assume_web(
    base: &str,
    token: &str,
) -> Result<
    aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput,
    SdkError<aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError>,
> {
    sts(base, None)
        .assume_role_with_web_identity()
        .role_arn(OIDC_ROLE)
        .role_session_name(ALICE)
        .web_identity_token(token)
        .send()
        .await
}

#[tokio::test]
async fn web_identity_with_entra_tokens() {
    let sb = sandbox(false).await;
    let base = &sb.base_url;
    let t = device_tokens(base, "openid profile offline_access").await;
    let id_token = t["id_token"].as_str().unwrap();
    let out = assume_web(base, id_token).await.unwrap();
    assert_eq!(out.audience(), Some(CLIENT));
    assert_eq!(
        out.provider(),
        Some(format!("login.microsoftonline.com/{TENANT_ID}/v2.0").as_str())
    );
    assert!(!out.subject_from_web_identity_token().unwrap().is_empty());
    let expected = format!("arn:aws:sts::444444444444:assumed-role/EntraOidcDeveloper/{ALICE}");
    assert_eq!(out.assumed_role_user().unwrap().arn(), expected);
    let c = creds_of(out.credentials().unwrap());
    assert_eq!(caller_arn(base, c).await, expected);

    // A v1 access token for the app's own API is accepted (second IAM OIDC provider)...
    let api = device_tokens(base, "api://rolecall-aws/.default").await;
    let out = assume_web(base, api["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(out.audience(), Some("api://rolecall-aws"));
    // ...a Microsoft Graph access token is not.
    let e = assume_web(base, t["access_token"].as_str().unwrap())
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_invalid_identity_token_exception(), "{e:?}");
    sb.shutdown().await;
}

fn forged_token(claims: Value, key: &keys::KeyPair) -> String {
    jwt::sign(claims.as_object().unwrap(), key)
}

#[tokio::test]
async fn web_identity_refusals_are_typed_sdk_errors() {
    let sb = sandbox(false).await;
    let base = &sb.base_url;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |iss: &str, aud: &str, exp: i64| json!({"iss": iss, "aud": aud, "sub": "s", "iat": now, "nbf": now, "exp": exp});
    let issuer = jwt::v2_issuer(TENANT_ID);
    let cases = [
        (
            "other issuer",
            forged_token(
                claims(
                    "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0",
                    CLIENT,
                    now + 600,
                ),
                keys::token_key(),
            ),
        ),
        (
            "wrong audience",
            forged_token(
                claims(&issuer, "someone-else", now + 600),
                keys::token_key(),
            ),
        ),
        (
            "untrusted key",
            forged_token(claims(&issuer, CLIENT, now + 600), keys::rogue_key()),
        ),
        ("not a JWT", "not-a-jwt".to_string()),
    ];
    for (what, token) in cases {
        let e = assume_web(base, &token)
            .await
            .unwrap_err()
            .into_service_error();
        assert!(e.is_invalid_identity_token_exception(), "{what}: {e:?}");
    }
    let expired = forged_token(claims(&issuer, CLIENT, now - 3600), keys::token_key());
    let e = assume_web(base, &expired)
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_expired_token_exception(), "{e:?}");
    // A bad session name is a validation error.
    let ok = forged_token(claims(&issuer, CLIENT, now + 600), keys::token_key());
    let e = sts(base, None)
        .assume_role_with_web_identity()
        .role_arn(OIDC_ROLE)
        .role_session_name("has space")
        .web_identity_token(ok)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code_of(&e), "ValidationError");
    sb.shutdown().await;
}

#[tokio::test]
async fn caller_identity_refusals_and_throttling() {
    let sb = sandbox(true).await;
    let base = &sb.base_url;
    let a = saml_response(base).await;
    let out = assume_saml(base, RO_ROLE, &a, None).await.unwrap();
    let c = out.credentials().unwrap();

    let unknown = Credentials::new(
        "ASIAUNKNOWNUNKNOWN00",
        "x".repeat(40),
        Some("t".into()),
        None,
        "t",
    );
    let e = sts(base, Some(unknown))
        .get_caller_identity()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code_of(&e), "InvalidClientTokenId");

    let wrong_secret = Credentials::new(
        c.access_key_id(),
        "y".repeat(40),
        Some(c.session_token().to_string()),
        None,
        "t",
    );
    let e = sts(base, Some(wrong_secret))
        .get_caller_identity()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code_of(&e), "SignatureDoesNotMatch");

    admin(
        base,
        "/faults",
        json!({"operation": "sts:GetCallerIdentity", "kind": "throttle", "count": 1}),
    )
    .await;
    let e = sts(base, Some(creds_of(c)))
        .get_caller_identity()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code_of(&e), "Throttling");

    // Past the credentials' expiration: shorten their lifetime, then move the sandbox clock.
    admin(base, "/lifetimes", json!({"role_credentials_secs": 60})).await;
    let short = assume_saml(base, RO_ROLE, &a, None).await.unwrap();
    let sc = creds_of(short.credentials().unwrap());
    assert!(caller_arn(base, sc.clone()).await.ends_with(ALICE));
    // Hours later on the sandbox clock: the SDK still signs with the wall clock, and the
    // expiry is what is reported, not a skewed signature.
    admin(base, "/clock", json!({"advance_secs": 7200})).await;
    let e = sts(base, Some(sc))
        .get_caller_identity()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code_of(&e), "ExpiredToken");
    sb.shutdown().await;
}
