//! IAM Identity Center OIDC (`sso-oidc`, rest-json): RegisterClient, StartDeviceAuthorization,
//! CreateToken (device code, authorization code with PKCE S256, refresh token), and the browser
//! pages `/authorize` (PKCE) and `/device` (verification URI).
//!
//! Member names, HTTP statuses and error types follow botocore's `sso-oidc/2019-06-10` model.
//! Errors carry `x-amzn-errortype` (what SDKs read) and the OAuth `error` body.
//!
//! The sandbox holds one Identity Center instance, named by the directory's start URL:
//! `StartDeviceAuthorization` refuses any other `startUrl` and `RegisterClient` any other
//! `issuerUrl` with `InvalidRequestException`, as AWS answers an unknown start URL.

mod authorize;
mod device;
mod register;
pub mod state;
mod token;

use crate::http::{self, HandlerResult, Req, Resp};
use crate::Sandbox;
use ::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

pub use authorize::redirect_matches;
pub use state::{Client, Grant, State, TokenProblem};
pub use token::s256;

pub const GRANT_DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const GRANT_CODE: &str = "authorization_code";
pub const GRANT_REFRESH: &str = "refresh_token";
/// The scope that lets a token call the SSO portal (and makes refresh tokens come back).
pub const SCOPE_ACCOUNT_ACCESS: &str = "sso:account:access";

/// The modelled OIDC errors: (HTTP status, `x-amzn-errortype`, OAuth `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcError {
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    InvalidGrant,
    AccessDenied,
    InvalidClient,
    InvalidRequest,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidClientMetadata,
    InvalidRedirectUri,
    InternalServer,
}

impl OidcError {
    fn parts(self) -> (StatusCode, &'static str, &'static str) {
        use OidcError::*;
        let bad = StatusCode::BAD_REQUEST;
        match self {
            AuthorizationPending => (
                bad,
                "AuthorizationPendingException",
                "authorization_pending",
            ),
            SlowDown => (bad, "SlowDownException", "slow_down"),
            ExpiredToken => (bad, "ExpiredTokenException", "expired_token"),
            InvalidGrant => (bad, "InvalidGrantException", "invalid_grant"),
            AccessDenied => (bad, "AccessDeniedException", "access_denied"),
            InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "InvalidClientException",
                "invalid_client",
            ),
            InvalidRequest => (bad, "InvalidRequestException", "invalid_request"),
            UnauthorizedClient => (bad, "UnauthorizedClientException", "unauthorized_client"),
            UnsupportedGrantType => (
                bad,
                "UnsupportedGrantTypeException",
                "unsupported_grant_type",
            ),
            InvalidScope => (bad, "InvalidScopeException", "invalid_scope"),
            InvalidClientMetadata => (
                bad,
                "InvalidClientMetadataException",
                "invalid_client_metadata",
            ),
            InvalidRedirectUri => (bad, "InvalidRedirectUriException", "invalid_redirect_uri"),
            InternalServer => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "server_error",
            ),
        }
    }

    pub fn reply(self, description: &str) -> Resp {
        let (status, etype, code) = self.parts();
        http::aws_json_error(
            status,
            etype,
            json!({"error": code, "error_description": description}),
        )
    }
}

/// Whether `url` names the directory's Identity Center instance (see [`same_start_url`]).
fn is_instance_url(sb: &Sandbox, url: &str) -> bool {
    same_start_url(&sb.dir().identity_center.start_url, url)
}

/// Whether two start URLs name the same portal, compared the way users copy them: scheme, host,
/// port and path must be equal; a trailing `/` and a fragment (`…/start#/` from the address
/// bar) do not count.
pub fn same_start_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let mut u = url::Url::parse(s).ok()?;
        u.set_fragment(None);
        let path = u.path().trim_end_matches('/').to_string();
        u.set_path(&path);
        Some(u)
    };
    matches!((norm(a), norm(b)), (Some(x), Some(y)) if x == y)
}

fn fail(e: OidcError, description: &str) -> HandlerResult {
    Ok(e.reply(description))
}

pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    match (req.method(), req.path()) {
        (&Method::POST, "/client/register") => register::register_client(sb, req).await,
        (&Method::POST, "/device_authorization") => device::start_device(sb, req).await,
        (&Method::POST, "/token") => token::create_token(sb, req).await,
        (&Method::GET, "/authorize") => authorize::authorize(sb, req).await,
        (&Method::GET, "/device") => device::device_page(sb, req).await,
        _ => Ok(http::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
        )),
    }
}

/// Reads the JSON body as an object; `Err` is the InvalidRequestException reply.
fn body_object(req: &Req) -> Result<serde_json::Map<String, Value>, Resp> {
    match req.json() {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(OidcError::InvalidRequest.reply("request body must be a JSON object")),
        Err(e) => Err(OidcError::InvalidRequest.reply(&e)),
    }
}

fn opt_str(m: &serde_json::Map<String, Value>, k: &str) -> Result<Option<String>, Resp> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(OidcError::InvalidRequest.reply(&format!("{k} must be a string"))),
    }
}

fn req_str(m: &serde_json::Map<String, Value>, k: &str) -> Result<String, Resp> {
    match opt_str(m, k)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(OidcError::InvalidRequest.reply(&format!("{k} is required"))),
    }
}

fn str_list(m: &serde_json::Map<String, Value>, k: &str) -> Result<Vec<String>, Resp> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    OidcError::InvalidRequest.reply(&format!("{k} must be a list of strings"))
                })
            })
            .collect(),
        Some(_) => Err(OidcError::InvalidRequest.reply(&format!("{k} must be a list of strings"))),
    }
}

fn page(status: StatusCode, title: &str, msg: &str) -> Resp {
    http::html(
        status,
        format!(
            "<!doctype html><html><head><title>{t}</title></head><body><h1>{t}</h1><p>{m}</p></body></html>\n",
            t = http::escape_xml(title),
            m = http::escape_xml(msg)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::same_start_url;

    #[test]
    fn start_urls_compare_as_users_write_them() {
        let ours = "https://d-9067c2e5f7.awsapps.com/start";
        for same in [
            ours,
            "https://d-9067c2e5f7.awsapps.com/start/",
            "https://d-9067c2e5f7.awsapps.com/start#/",
            "https://D-9067C2E5F7.awsapps.com/start",
        ] {
            assert!(same_start_url(ours, same), "{same}");
        }
        for other in [
            "https://d-9067c0ffee.awsapps.com/start",
            "http://d-9067c2e5f7.awsapps.com/start",
            "https://d-9067c2e5f7.awsapps.com/portal",
            "https://d-9067c2e5f7.awsapps.com/start?x=1",
            "d-9067c2e5f7.awsapps.com/start",
        ] {
            assert!(!same_start_url(ours, other), "{other}");
        }
    }
}
