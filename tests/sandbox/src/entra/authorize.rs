//! The authorization code flow with PKCE: `GET /authorize` (the browser step, held until the
//! login is decided) and the `authorization_code` grant of `/token`.

use std::collections::HashMap;
use std::time::Duration;

use ::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::state::{CodeGrant, EntraState};
use super::Failure;
use crate::http::{self, Req, Resp};
use crate::pending::Decision;
use crate::Sandbox;

/// Constant-time equality (the PKCE comparison must not leak a prefix length).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_loopback_host(h: &str) -> bool {
    matches!(h, "localhost" | "127.0.0.1" | "[::1]")
}

/// Whether `requested` matches a registered redirect URI: exact, or, for registered loopback
/// `http` URIs, any port with the same path (RFC 8252 section 7.3, as Entra allows).
pub fn redirect_allowed(registered: &[String], requested: &str) -> bool {
    let Ok(req) = url::Url::parse(requested) else {
        return false;
    };
    registered.iter().any(|r| {
        if r == requested {
            return true;
        }
        let Ok(reg) = url::Url::parse(r) else {
            return false;
        };
        reg.scheme() == "http"
            && req.scheme() == "http"
            && reg.host_str().is_some_and(is_loopback_host)
            && reg.host_str() == req.host_str()
            && reg.path().trim_end_matches('/') == req.path().trim_end_matches('/')
    })
}

fn error_page(status: StatusCode, text: &str) -> Resp {
    http::html(
        status,
        format!(
            "<html><head><title>Sign in to your account</title></head><body><p>{}</p></body></html>",
            http::escape_xml(text)
        ),
    )
}

fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Resp {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "invalid redirect_uri"),
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    http::redirect(url.as_str())
}

pub async fn authorize(sb: &Sandbox, req: &Req) -> Resp {
    let q = req.query();
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "AADSTS900144: The request body must contain the following parameter: 'redirect_uri'.",
        );
    };
    let login_hint = get("login_hint").map(str::to_string);
    {
        let dir = sb.dir();
        let Some(app) = dir.entra_app(client_id) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                &super::device::unknown_app(client_id, &dir.tenant.domain).description,
            );
        };
        // A redirect URI that is not registered gets an error page, never a redirect.
        if !redirect_allowed(&app.redirect_uris, redirect_uri) {
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!("AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."),
            );
        }
    }
    let state_param = get("state").unwrap_or("");
    let fail = |error: &str, desc: &str| {
        let mut p = vec![("error", error), ("error_description", desc)];
        if !state_param.is_empty() {
            p.push(("state", state_param));
        }
        redirect_with(redirect_uri, &p)
    };
    if get("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "AADSTS700054: response_type 'code' is expected.",
        );
    }
    let Some(scope) = get("scope") else {
        return fail(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        );
    };
    if let Err(f) = super::tokens::resource_of(&sb.dir(), scope) {
        return fail(f.error, &format!("AADSTS{}: {}", f.aadsts, f.description));
    }
    let challenge = get("code_challenge").map(str::to_string);
    if challenge.is_some() && get("code_challenge_method") != Some("S256") {
        return fail(
            "invalid_request",
            "AADSTS501491: Invalid code_challenge_method: only S256 is accepted.",
        );
    }

    let now = sb.clock.now();
    let pid = sb.pending.register("entra:authorize", client_id, None, now);
    sb.pending.mark_visited(&pid);
    if sb.auto_approve() {
        let dir = sb.dir();
        let user = login_hint
            .as_deref()
            .and_then(|h| dir.user(h))
            .unwrap_or_else(|| dir.default_user())
            .upn
            .clone();
        drop(dir);
        sb.pending.decide_id(&pid, Decision::Approved { user });
    }
    let wait = Duration::from_secs(sb.lifetimes().authorize_request_secs);
    let decision = sb.pending.wait_decided(&pid, wait).await;
    sb.pending.remove(&pid);
    match decision {
        Some(Decision::Approved { user }) => {
            let code = format!("1.A{}", http::random_token(96));
            sb.state::<EntraState>().lock().codes.insert(
                code.clone(),
                CodeGrant {
                    client_id: client_id.to_string(),
                    redirect_uri: redirect_uri.to_string(),
                    scope: scope.to_string(),
                    code_challenge: challenge,
                    nonce: get("nonce").map(str::to_string),
                    user,
                    expires: sb.clock.now()
                        + time::Duration::seconds(sb.lifetimes().auth_code_secs as i64),
                    redeemed: false,
                },
            );
            let session_state = uuid::Uuid::new_v4().to_string();
            let mut p = vec![("code", code.as_str())];
            if !state_param.is_empty() {
                p.push(("state", state_param));
            }
            p.push(("session_state", session_state.as_str()));
            redirect_with(redirect_uri, &p)
        }
        Some(Decision::Denied) => fail(
            "access_denied",
            "AADSTS65004: User declined to consent to access the app.",
        ),
        _ => error_page(
            StatusCode::REQUEST_TIMEOUT,
            "AADSTS50058: The sign-in was not completed in time.",
        ),
    }
}

/// The `authorization_code` grant: one use, same client and redirect URI, PKCE S256.
pub fn redeem(
    sb: &Sandbox,
    form: &HashMap<String, String>,
    client_id: &str,
) -> Result<Value, Failure> {
    let code = form
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Failure::missing("code"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Failure::missing("redirect_uri"))?;
    let now = sb.clock.now();
    let state = sb.state::<EntraState>();
    let grant = {
        let mut g = state.lock();
        let c = g.codes.get_mut(code).ok_or_else(|| {
            Failure::bad(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        })?;
        if c.redeemed {
            return Err(Failure::bad("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."));
        }
        if now >= c.expires {
            return Err(Failure::bad("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."));
        }
        if c.client_id != client_id {
            return Err(Failure::bad(
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed.",
            ));
        }
        if c.redirect_uri != *redirect_uri {
            return Err(Failure::bad(
                "invalid_grant",
                70000,
                "The redirect_uri does not match the one used in the authorization request.",
            ));
        }
        if let Some(challenge) = &c.code_challenge {
            let verifier = form
                .get("code_verifier")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Failure::missing("code_verifier"))?;
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if !ct_eq(computed.as_bytes(), challenge.as_bytes()) {
                return Err(Failure::bad("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."));
            }
        }
        c.redeemed = true;
        c.clone()
    };
    let dir = sb.dir();
    let user = dir
        .user(&grant.user)
        .cloned()
        .unwrap_or_else(|| dir.default_user().clone());
    let lt = sb.lifetimes();
    super::tokens::mint(
        &super::tokens::Mint {
            dir: &dir,
            user: &user,
            client_id,
            scope: &grant.scope,
            nonce: grant.nonce.as_deref(),
            now,
            token_secs: lt.entra_access_token_secs,
            refresh_secs: lt.entra_refresh_token_secs,
        },
        &state,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_any_port_same_path() {
        let reg = vec![
            "http://localhost".to_string(),
            "http://127.0.0.1/oauth/callback".to_string(),
        ];
        assert!(redirect_allowed(&reg, "http://localhost:5123"));
        assert!(redirect_allowed(&reg, "http://localhost:5123/"));
        assert!(redirect_allowed(
            &reg,
            "http://127.0.0.1:40000/oauth/callback"
        ));
        assert!(!redirect_allowed(&reg, "http://127.0.0.1:40000/other"));
        assert!(!redirect_allowed(&reg, "http://evil.example:80/"));
        assert!(!redirect_allowed(&reg, "https://localhost:5123"));
        assert!(!redirect_allowed(&reg, "http://localhost.evil.example/"));
    }
}
