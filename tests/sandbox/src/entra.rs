//! Microsoft Entra ID emulation for one tenant (addressed by id or verified domain):
//! OAuth 2.0 v2 endpoints (device code, token, authorize with PKCE), OpenID discovery and
//! JWKS, SAML SSO (HTTP-Redirect in, HTTP-POST form out) and federation metadata.
//!
//! Note for sbxa (admin API): `admin(sb, req, rest)` serves the Entra switches. Please route
//! `/_sandbox/entra/<rest…>` to it, with `rest` = the path segments after `entra`:
//! - `POST /_sandbox/entra/revoke` `{"user": "<upn>"}` (or `{}` for everyone): revokes refresh
//!   tokens and browser sessions, like Graph's `revokeSignInSessions`.
//! - `GET|POST /_sandbox/entra/saml` `{"signing": "trusted|unsigned|rogue", "validity_secs": N,
//!   "recipient": "...", "audience": "..."}`: how SAML responses are made (POST `{}` resets).
//! - `GET /_sandbox/entra/sessions`: how many browser sessions exist.

mod authorize;
mod device;
mod saml_sso;
pub mod state;
mod token;
pub mod tokens;

use std::sync::Arc;

use ::http::{Method, StatusCode};
use serde_json::json;

use crate::http::{self, HandlerResult, Req, Resp};
use crate::{jwt, keys, Sandbox};

pub use state::{EntraState, SamlOptions, SamlSigning};

/// An Entra OAuth error: HTTP status, `error`, AADSTS code and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub error: &'static str,
    pub aadsts: u32,
    pub description: String,
}

impl Failure {
    /// A 400 error (the status Entra uses for almost every OAuth error).
    pub fn bad(error: &'static str, aadsts: u32, description: &str) -> Failure {
        Failure {
            status: StatusCode::BAD_REQUEST,
            error,
            aadsts,
            description: description.to_string(),
        }
    }

    pub fn missing(param: &str) -> Failure {
        Failure::bad(
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{param}'."),
        )
    }

    pub fn reply(&self) -> Resp {
        crate::faults::entra_error(self.status, self.error, self.aadsts, &self.description)
    }
}

/// The tenant id a URL's tenant segment names, or the Entra error for an unknown tenant.
fn tenant_id(sb: &Sandbox, segment: &str) -> Result<String, Failure> {
    let dir = sb.dir();
    if dir.is_tenant(segment) || matches!(segment, "common" | "organizations") {
        Ok(dir.tenant.id.clone())
    } else {
        Err(Failure::bad(
            "invalid_request",
            90002,
            &format!("Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        ))
    }
}

pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    let segs: Vec<String> = req.segments().iter().map(|s| s.to_string()).collect();
    let tid = match tenant_id(sb, &segs[0]) {
        Ok(t) => t,
        Err(f) => return Ok(f.reply()),
    };
    let rest: Vec<&str> = segs[1..].iter().map(String::as_str).collect();
    let method = req.method().clone();
    match (method, rest.as_slice()) {
        (Method::POST, ["oauth2", "v2.0", "devicecode"]) => {
            sb.enter("entra:DeviceCode").await?;
            Ok(device::device_code(sb, req, &segs[0]))
        }
        (Method::GET, ["oauth2", "deviceauth"]) => {
            sb.enter("entra:DeviceAuth").await?;
            Ok(device::verification_page(sb, req))
        }
        (Method::POST, ["oauth2", "v2.0", "token"]) => {
            sb.enter("entra:Token").await?;
            Ok(token::token(sb, req))
        }
        (Method::GET, ["oauth2", "v2.0", "authorize"]) => {
            sb.enter("entra:Authorize").await?;
            Ok(authorize::authorize(sb, req).await)
        }
        (Method::GET, ["v2.0", ".well-known", "openid-configuration"]) => {
            sb.enter("entra:OpenIdConfiguration").await?;
            Ok(openid_configuration(sb, &segs[0], &tid))
        }
        (Method::GET, ["discovery", "v2.0", "keys"]) | (Method::GET, ["discovery", "keys"]) => {
            sb.enter("entra:Keys").await?;
            Ok(jwks(&tid))
        }
        (Method::GET, ["saml2"]) => {
            sb.enter("entra:Saml").await?;
            Ok(saml_sso::sso(sb, req, &tid).await)
        }
        (Method::GET, ["federationmetadata", "2007-06", "federationmetadata.xml"]) => {
            sb.enter("entra:FederationMetadata").await?;
            Ok(saml_sso::metadata(sb, &tid))
        }
        _ => Ok(http::not_found()),
    }
}

fn openid_configuration(sb: &Sandbox, segment: &str, tid: &str) -> Resp {
    let base = format!("{}/{}", sb.base_url, segment);
    http::json(
        StatusCode::OK,
        &json!({
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{}/{tid}/discovery/v2.0/keys", sb.base_url),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": jwt::v2_issuer(tid),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
                "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": format!("{base}/kerberos"),
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net"
        }),
    )
}

fn jwks(tid: &str) -> Resp {
    let k = keys::token_key();
    http::json(
        StatusCode::OK,
        &json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": k.kid,
            "n": k.n,
            "e": k.e,
            "x5c": [k.cert_b64()],
            "issuer": jwt::v2_issuer(tid),
        }]}),
    )
}

/// The Entra switches of the admin API (see the module docs).
pub async fn admin(sb: &Arc<Sandbox>, req: &Req, rest: &[&str]) -> HandlerResult {
    let state = sb.state::<EntraState>();
    let body = match req.json() {
        Ok(v) => v,
        Err(e) => return Ok(http::json(StatusCode::BAD_REQUEST, &json!({"error": e}))),
    };
    match (req.method().clone(), rest) {
        (Method::POST, ["revoke"]) => {
            let user = body.get("user").and_then(|u| u.as_str());
            let n = state.revoke(user);
            Ok(http::json(
                StatusCode::OK,
                &json!({"revoked_refresh_tokens": n}),
            ))
        }
        (Method::GET, ["saml"]) => Ok(http::json(StatusCode::OK, &state.lock().saml)),
        (Method::POST, ["saml"]) => match serde_json::from_value::<SamlOptions>(body) {
            Ok(o) => {
                state.lock().saml = o.clone();
                Ok(http::json(StatusCode::OK, &o))
            }
            Err(e) => Ok(http::json(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!("bad SAML options: {e}")}),
            )),
        },
        (Method::GET, ["sessions"]) => Ok(http::json(
            StatusCode::OK,
            &json!({"sessions": state.lock().sessions.len()}),
        )),
        _ => Ok(http::not_found()),
    }
}
