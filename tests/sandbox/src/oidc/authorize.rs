//! `GET /authorize`: the browser step of the authorization code flow with PKCE, and the rule
//! for matching a requested redirect URI against the registered ones.

use super::register::is_loopback_host;
use super::state::{AuthCode, State};
use super::{page, GRANT_CODE};
use crate::http::{self, HandlerResult, Req, Resp};
use crate::pending::Decision;
use crate::Sandbox;
use ::http::StatusCode;
use std::sync::Arc;
use std::time::Duration;

/// Whether `requested` matches a registered redirect URI: exactly, or — for a registered
/// loopback URI without a port — the same scheme, host and path on any port (as AWS and
/// RFC 8252 section 7.3 allow for native apps).
pub fn redirect_matches(registered: &[String], requested: &str) -> bool {
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
            && is_loopback_host(&reg)
            && reg.port().is_none()
            && reg.host() == req.host()
            && reg.path() == req.path()
            && req.query().is_none()
    })
}

/// The browser step of the PKCE flow. It holds the request until the login is decided
/// (auto-approve decides at once), then redirects to the client's loopback callback.
pub(super) async fn authorize(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("ssooidc:Authorize").await?;
    let q = req.query();
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let client_id = get("client_id");
    let redirect_uri = get("redirect_uri");
    let now = sb.clock.now_unix();
    let st = sb.state::<State>();
    let client = st.lock().clients.get(client_id).cloned();
    let Some(client) = client else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Unknown client_id.",
        ));
    };
    if now >= client.expires_at {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The client registration has expired.",
        ));
    }
    // Never redirect to an unregistered URI (RFC 6749 section 4.1.2.1): show an error page instead.
    if redirect_uri.is_empty() || !redirect_matches(&client.redirect_uris, redirect_uri) {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "redirect_uri does not match a registered redirect URI.",
        ));
    }
    let state = q.get("state").cloned();
    let back = |params: &[(&str, &str)]| -> Resp {
        let mut u = url::Url::parse(redirect_uri).expect("checked above");
        {
            let mut qp = u.query_pairs_mut();
            for (k, v) in params {
                qp.append_pair(k, v);
            }
            if let Some(s) = &state {
                qp.append_pair("state", s);
            }
        }
        http::redirect(u.as_str())
    };
    if get("response_type") != "code" {
        return Ok(back(&[("error", "unsupported_response_type")]));
    }
    if !client.allows(GRANT_CODE) {
        return Ok(back(&[("error", "unauthorized_client")]));
    }
    let challenge = get("code_challenge");
    if get("code_challenge_method") != "S256" || challenge.len() != 43 {
        return Ok(back(&[
            ("error", "invalid_request"),
            (
                "error_description",
                "code_challenge with code_challenge_method=S256 is required",
            ),
        ]));
    }
    let scopes: Vec<String> = get("scopes")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if scopes.iter().any(|s| !client.scopes.contains(s)) {
        return Ok(back(&[("error", "invalid_scope")]));
    }
    let pid = sb
        .pending
        .register("ssooidc:authorize", &client.client_id, None, sb.clock.now());
    sb.pending.mark_visited(&pid);
    if sb.auto_approve() {
        let user = sb.dir().default_user().upn.clone();
        sb.pending.decide_id(&pid, Decision::Approved { user });
    }
    let wait = Duration::from_secs(sb.lifetimes().authorize_request_secs);
    let decision = sb.pending.wait_decided(&pid, wait).await;
    sb.pending.remove(&pid);
    match decision {
        Some(Decision::Approved { user }) => {
            let code = http::random_token(32);
            st.lock().codes.insert(
                code.clone(),
                AuthCode {
                    client_id: client.client_id.clone(),
                    redirect_uri: redirect_uri.to_string(),
                    challenge: challenge.to_string(),
                    scopes: if scopes.is_empty() {
                        client.scopes.clone()
                    } else {
                        scopes
                    },
                    user,
                    expires_at: sb.clock.now_unix() + sb.lifetimes().auth_code_secs as i64,
                },
            );
            Ok(back(&[("code", &code)]))
        }
        Some(Decision::Denied) => Ok(back(&[
            ("error", "access_denied"),
            ("error_description", "The user denied the request"),
        ])),
        _ => Ok(page(
            StatusCode::REQUEST_TIMEOUT,
            "Sign-in timed out",
            "Nobody approved this sign-in request in time.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirect_any_port() {
        let reg = vec!["http://127.0.0.1/oauth/callback".to_string()];
        assert!(redirect_matches(
            &reg,
            "http://127.0.0.1:5123/oauth/callback"
        ));
        assert!(redirect_matches(&reg, "http://127.0.0.1/oauth/callback"));
        assert!(!redirect_matches(&reg, "http://127.0.0.1:5123/other"));
        assert!(!redirect_matches(
            &reg,
            "http://evil.example:5123/oauth/callback"
        ));
        assert!(!redirect_matches(
            &reg,
            "http://localhost:5123/oauth/callback"
        ));
        assert!(!redirect_matches(
            &reg,
            "https://127.0.0.1:5123/oauth/callback"
        ));
        let fixed = vec!["http://127.0.0.1:8080/cb".to_string()];
        assert!(!redirect_matches(&fixed, "http://127.0.0.1:8081/cb"));
    }
}
