//! What the sandbox refuses because the real services refuse it, driven by real clients: the
//! AWS SDK for Rust (`aws-sdk-ssooidc`, `aws-sdk-sts`) and, for Entra (no Rust SDK), plain HTTP.
//! A test that signs in must not pass because the sandbox is lenient:
//! - Identity Center knows one instance: another start URL or issuer URL is refused;
//! - SigV4 hashes the body it received and checks the credential scope's region against the
//!   endpoint the request was addressed to;
//! - Entra posts SAML responses only to the app's registered reply URL, and refuses a secret
//!   from a public client.

use aws_credential_types::Credentials;
use aws_sdk_sts::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sts::error::{BoxError, ProvideErrorMetadata};
use aws_smithy_types::body::SdkBody;
use rolecall_sandbox::saml::request::{encode_redirect, encode_redirect_to};
use rolecall_sandbox::{RunningSandbox, SandboxOptions};
use sha2::{Digest, Sha256};

const START_URL: &str = "https://d-9067c2e5f7.awsapps.com/start";
const OTHER_START_URL: &str = "https://d-9067c0ffee.awsapps.com/start";
const TENANT: &str = "contoso.onmicrosoft.com";
const APP_ID: &str = "https://signin.aws.amazon.com/saml#1";
const REPLY_URL: &str = "https://signin.aws.amazon.com/saml";
const PUBLIC: &str = "11111111-1111-4111-8111-111111111111";
const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const RO_ROLE: &str = "arn:aws:iam::333333333333:role/EntraReadOnly";
const PROVIDER: &str = "arn:aws:iam::333333333333:saml-provider/EntraID";

async fn sandbox() -> RunningSandbox {
    rolecall_sandbox::start(SandboxOptions {
        auto_approve: true,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

fn oidc(base: &str) -> aws_sdk_ssooidc::Client {
    let conf = aws_sdk_ssooidc::Config::builder()
        .behavior_version(aws_sdk_ssooidc::config::BehaviorVersion::latest())
        .region(aws_sdk_ssooidc::config::Region::new("eu-west-1"))
        .endpoint_url(base)
        .build();
    aws_sdk_ssooidc::Client::from_conf(conf)
}

#[tokio::test]
async fn identity_center_knows_only_its_own_start_url() {
    let sb = sandbox().await;
    let c = oidc(&sb.base_url);
    let register = |issuer: &'static str| {
        c.register_client()
            .client_name("rolecall-fidelity")
            .client_type("public")
            .scopes("sso:account:access")
            .grant_types(DEVICE)
            .grant_types("refresh_token")
            .issuer_url(issuer)
            .send()
    };
    let e = register(OTHER_START_URL).await.unwrap_err();
    let e = e.into_service_error();
    assert!(e.is_invalid_request_exception(), "{e:?}");

    let reg = register(START_URL).await.expect("RegisterClient");
    let start = |url: &'static str| {
        c.start_device_authorization()
            .client_id(reg.client_id().unwrap())
            .client_secret(reg.client_secret().unwrap())
            .start_url(url)
            .send()
    };
    let e = start(OTHER_START_URL)
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_invalid_request_exception(), "{e:?}");
    // The same portal as users copy it from the address bar is the same instance.
    start("https://d-9067c2e5f7.awsapps.com/start/#/")
        .await
        .expect("the start URL with a trailing '/#/'");
    let dev = start(START_URL).await.expect("StartDeviceAuthorization");
    let url = dev.verification_uri_complete().unwrap();
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
    let tok = c
        .create_token()
        .client_id(reg.client_id().unwrap())
        .client_secret(reg.client_secret().unwrap())
        .grant_type(DEVICE)
        .device_code(dev.device_code().unwrap())
        .send()
        .await
        .expect("CreateToken");
    assert!(tok.access_token().is_some());
    sb.shutdown().await;
}

/// Sets the `Host` header before signing, as if the request were addressed to `host` (the
/// connection still goes to the sandbox).
#[derive(Debug)]
struct AddressedTo(&'static str);

impl Intercept for AddressedTo {
    fn name(&self) -> &'static str {
        "AddressedTo"
    }
    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        ctx.request_mut().headers_mut().insert("host", self.0);
        Ok(())
    }
}

/// Signs the body's hash into `x-amz-content-sha256`, then swaps the body after signing: what a
/// replay with a substituted body looks like.
#[derive(Debug)]
struct SwapBodyAfterSigning;

const SWAPPED: &str = "Action=GetCallerIdentity&Version=2011-06-15&Swapped=1";

impl Intercept for SwapBodyAfterSigning {
    fn name(&self) -> &'static str {
        "SwapBodyAfterSigning"
    }
    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request_mut();
        let body = req.body().bytes().ok_or("streaming body")?.to_vec();
        let hash = hex::encode(Sha256::digest(&body));
        req.headers_mut().insert("x-amz-content-sha256", hash);
        Ok(())
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request_mut();
        *req.body_mut() = SdkBody::from(SWAPPED);
        req.headers_mut()
            .insert("content-length", SWAPPED.len().to_string());
        Ok(())
    }
}

fn sts(base: &str, region: &'static str, creds: Credentials) -> aws_sdk_sts::config::Builder {
    aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(region))
        .endpoint_url(base)
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .credentials_provider(creds)
}

/// Role credentials from the sandbox's SAML flow (this test plays the browser).
async fn role_credentials(base: &str) -> Credentials {
    let req = encode_redirect("id-fidelity-1", APP_ID, false, "2026-01-01T00:00:00Z");
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/{TENANT}/saml2"),
        &[("SAMLRequest", req.as_str())],
    )
    .unwrap();
    let page = reqwest::get(url).await.unwrap().text().await.unwrap();
    let marker = r#"name="SAMLResponse" value=""#;
    let start = page.find(marker).expect("SAMLResponse field") + marker.len();
    let assertion = &page[start..start + page[start..].find('"').unwrap()];
    let anon = Credentials::new("AKIDUNUSED", "unused", None, None, "none");
    let out = aws_sdk_sts::Client::from_conf(sts(base, "eu-west-1", anon).build())
        .assume_role_with_saml()
        .role_arn(RO_ROLE)
        .principal_arn(PROVIDER)
        .saml_assertion(assertion)
        .send()
        .await
        .expect("AssumeRoleWithSAML");
    let c = out.credentials().unwrap();
    Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "sandbox",
    )
}

/// GetCallerIdentity's outcome: `Ok(())` or the error code.
async fn caller(conf: aws_sdk_sts::config::Builder) -> Result<(), String> {
    match aws_sdk_sts::Client::from_conf(conf.build())
        .get_caller_identity()
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = e.into_service_error();
            Err(format!(
                "{}: {}",
                e.code().unwrap_or("?"),
                e.message().unwrap_or("")
            ))
        }
    }
}

#[tokio::test]
async fn sigv4_scope_region_must_match_the_endpoint() {
    let sb = sandbox().await;
    let base = &sb.base_url;
    let creds = role_credentials(base).await;
    // The sandbox's own address names no region: any region the client is configured for.
    for region in ["eu-west-1", "us-east-1", "ap-southeast-2"] {
        caller(sts(base, region, creds.clone())).await.unwrap();
    }
    let e = caller(sts(base, "moon-base-1", creds.clone()))
        .await
        .unwrap_err();
    assert!(
        e.starts_with("SignatureDoesNotMatch: Credential should be scoped to a valid region"),
        "{e}"
    );
    // Addressed to the global endpoint: us-east-1 only.
    let global =
        |region| sts(base, region, creds.clone()).interceptor(AddressedTo("sts.amazonaws.com"));
    caller(global("us-east-1")).await.unwrap();
    let e = caller(global("eu-west-1")).await.unwrap_err();
    assert!(e.contains("not 'eu-west-1'"), "{e}");
    // Addressed to a regional endpoint: that region only.
    let regional = |region| {
        sts(base, region, creds.clone()).interceptor(AddressedTo("sts.eu-west-1.amazonaws.com"))
    };
    caller(regional("eu-west-1")).await.unwrap();
    let e = caller(regional("us-east-1")).await.unwrap_err();
    assert!(e.contains("not 'us-east-1'"), "{e}");
    sb.shutdown().await;
}

#[tokio::test]
async fn sigv4_hashes_the_body_it_received() {
    let sb = sandbox().await;
    let base = &sb.base_url;
    let creds = role_credentials(base).await;
    let e = caller(sts(base, "eu-west-1", creds.clone()).interceptor(SwapBodyAfterSigning))
        .await
        .unwrap_err();
    assert!(e.starts_with("SignatureDoesNotMatch"), "{e}");
    sb.shutdown().await;
}

#[tokio::test]
async fn saml_acs_url_must_be_a_registered_reply_url() {
    let sb = sandbox().await;
    let base = &sb.base_url;
    let ask = |acs: Option<&str>| {
        let req = encode_redirect_to("id-acs-1", APP_ID, acs, "2026-01-01T00:00:00Z");
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/{TENANT}/saml2"),
            &[("SAMLRequest", req.as_str())],
        )
        .unwrap();
        reqwest::get(url)
    };
    let r = ask(Some("https://evil.example/saml")).await.unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("AADSTS50011"), "{page}");
    assert!(!page.contains("SAMLResponse"), "{page}");
    for ok in [Some(REPLY_URL), None] {
        let r = ask(ok).await.unwrap();
        assert_eq!(r.status(), 200, "{ok:?}");
        let page = r.text().await.unwrap();
        assert!(page.contains(&format!(r#"action="{REPLY_URL}""#)), "{page}");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn public_client_must_not_present_a_secret() {
    let sb = sandbox().await;
    let base = &sb.base_url;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{base}/{TENANT}/oauth2/v2.0/{path}");
    let dc: serde_json::Value = http
        .post(url("devicecode"))
        .form(&[("client_id", PUBLIC), ("scope", "openid offline_access")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = dc["device_code"].as_str().unwrap();
    // The user enters the code (auto-approve signs them in).
    let verify = format!(
        "{}?otc={}",
        dc["verification_uri"].as_str().unwrap(),
        dc["user_code"].as_str().unwrap()
    );
    assert_eq!(reqwest::get(verify).await.unwrap().status(), 200);
    for (k, v) in [("client_secret", "s3cret"), ("client_assertion", "eyJ.x.y")] {
        let r = http
            .post(url("token"))
            .form(&[
                ("client_id", PUBLIC),
                ("grant_type", DEVICE),
                ("device_code", code),
                (k, v),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{k}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{body}");
        assert_eq!(body["error_codes"][0], 700025, "{body}");
    }
    // Without the secret the same device code still redeems: the refusal consumed nothing.
    let r = http
        .post(url("token"))
        .form(&[
            ("client_id", PUBLIC),
            ("grant_type", DEVICE),
            ("device_code", code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sb.shutdown().await;
}
