//! `CreateToken`: client authentication, then the authorization code and refresh token grants
//! (the device code grant lives in `device`); mints access and refresh tokens.

use super::state::{Client, Grant, State};
use super::{body_object, fail, req_str, str_list, OidcError};
use super::{GRANT_CODE, GRANT_DEVICE, GRANT_REFRESH};
use crate::http::{self, HandlerResult, Req, Resp};
use crate::Sandbox;
use ::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

/// Looks up and authenticates a client (id + secret, not expired).
pub(super) fn authenticate(
    st: &State,
    client_id: &str,
    secret: &str,
    now: i64,
) -> Result<Client, Resp> {
    let inner = st.lock();
    let Some(c) = inner.clients.get(client_id) else {
        return Err(OidcError::InvalidClient.reply("Invalid client"));
    };
    let same: bool = subtle::ConstantTimeEq::ct_eq(c.secret.as_bytes(), secret.as_bytes()).into();
    if !same {
        return Err(OidcError::InvalidClient.reply("Invalid client secret"));
    }
    if now >= c.expires_at {
        return Err(OidcError::InvalidClient.reply("Client registration has expired"));
    }
    Ok(c.clone())
}

pub(super) async fn create_token(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("ssooidc:CreateToken").await?;
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return Ok(r),
    };
    let parsed = (|| -> Result<_, Resp> {
        Ok((
            req_str(&m, "clientId")?,
            req_str(&m, "clientSecret")?,
            req_str(&m, "grantType")?,
            str_list(&m, "scope")?,
        ))
    })();
    let (client_id, secret, grant, scope) = match parsed {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let now = sb.clock.now_unix();
    let st = sb.state::<State>();
    let client = match authenticate(&st, &client_id, &secret, now) {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if ![GRANT_DEVICE, GRANT_CODE, GRANT_REFRESH].contains(&grant.as_str()) {
        return fail(
            OidcError::UnsupportedGrantType,
            &format!("unsupported grant type '{grant}'"),
        );
    }
    if !client.allows(&grant) {
        return fail(
            OidcError::UnauthorizedClient,
            &format!("client is not registered for '{grant}'"),
        );
    }
    if let Some(bad) = scope.iter().find(|s| !client.scopes.contains(s)) {
        return fail(
            OidcError::InvalidScope,
            &format!("scope '{bad}' was not registered"),
        );
    }
    let lt = sb.lifetimes();
    let issued = match grant.as_str() {
        GRANT_DEVICE => {
            let code = match req_str(&m, "deviceCode") {
                Ok(c) => c,
                Err(r) => return Ok(r),
            };
            super::device::redeem_device(sb, &st, &client, &code, now)
        }
        GRANT_CODE => {
            let fields = (|| -> Result<_, Resp> {
                Ok((
                    req_str(&m, "code")?,
                    req_str(&m, "codeVerifier")?,
                    req_str(&m, "redirectUri")?,
                ))
            })();
            match fields {
                Ok((code, verifier, redirect)) => {
                    redeem_code(&st, &client, &code, &verifier, &redirect, now)
                }
                Err(r) => return Ok(r),
            }
        }
        _ => {
            let rt = match req_str(&m, "refreshToken") {
                Ok(c) => c,
                Err(r) => return Ok(r),
            };
            redeem_refresh(&st, &client, &rt, now)
        }
    };
    let (user, scopes, session) = match issued {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let scopes = if scope.is_empty() { scopes } else { scope };
    let mut inner = st.lock();
    // A new login opens a session; a refresh stays within its session's end.
    let (session_id, session_end) = match session {
        Some(s) => s,
        None => (
            uuid::Uuid::new_v4().to_string(),
            now + lt.refresh_token_secs as i64,
        ),
    };
    let access_token = format!("aoa{}", http::random_token(120));
    let expires_at = (now + lt.access_token_secs as i64).min(session_end.max(now + 1));
    inner.access.insert(
        access_token.clone(),
        Grant {
            user: user.clone(),
            client_id: client.client_id.clone(),
            scopes: scopes.clone(),
            session_id: session_id.clone(),
            expires_at,
            revoked: false,
        },
    );
    let mut reply = json!({
        "accessToken": access_token,
        "tokenType": "Bearer",
        "expiresIn": expires_at - now,
    });
    if client.issues_refresh_tokens() {
        let refresh_token = format!("aor{}", http::random_token(200));
        inner.refresh.insert(
            refresh_token.clone(),
            Grant {
                user,
                client_id: client.client_id.clone(),
                scopes,
                session_id,
                expires_at: session_end,
                revoked: false,
            },
        );
        reply["refreshToken"] = Value::String(refresh_token);
    }
    Ok(http::json(StatusCode::OK, &reply))
}

pub(super) type Redeemed = Result<(String, Vec<String>, Option<(String, i64)>), Resp>;
/// PKCE S256: base64url(SHA-256(verifier)) without padding.
pub fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn redeem_code(
    st: &State,
    client: &Client,
    code: &str,
    verifier: &str,
    redirect: &str,
    now: i64,
) -> Redeemed {
    let mut inner = st.lock();
    // A code is single-use: it goes whatever the outcome.
    let Some(ac) = inner.codes.remove(code) else {
        return Err(OidcError::InvalidGrant.reply("Invalid authorization code"));
    };
    if ac.client_id != client.client_id {
        return Err(
            OidcError::InvalidGrant.reply("Authorization code was issued to another client")
        );
    }
    if now >= ac.expires_at {
        return Err(OidcError::InvalidGrant.reply("Authorization code has expired"));
    }
    if ac.redirect_uri != redirect {
        return Err(
            OidcError::InvalidGrant.reply("redirectUri does not match the authorization request")
        );
    }
    if !(43..=128).contains(&verifier.len()) {
        return Err(OidcError::InvalidRequest.reply("codeVerifier must be 43 to 128 characters"));
    }
    let ok: bool =
        subtle::ConstantTimeEq::ct_eq(s256(verifier).as_bytes(), ac.challenge.as_bytes()).into();
    if !ok {
        return Err(OidcError::InvalidGrant.reply("codeVerifier does not match the code challenge"));
    }
    Ok((ac.user, ac.scopes, None))
}

fn redeem_refresh(st: &State, client: &Client, token: &str, now: i64) -> Redeemed {
    let inner = st.lock();
    let Some(g) = inner.refresh.get(token) else {
        return Err(OidcError::InvalidGrant.reply("Invalid refresh token provided"));
    };
    if g.client_id != client.client_id {
        return Err(OidcError::InvalidGrant.reply("Refresh token was issued to another client"));
    }
    if g.revoked {
        return Err(OidcError::InvalidGrant.reply("Refresh token has been revoked"));
    }
    if now >= g.expires_at {
        return Err(OidcError::ExpiredToken.reply("Refresh token has expired"));
    }
    Ok((
        g.user.clone(),
        g.scopes.clone(),
        Some((g.session_id.clone(), g.expires_at)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_rfc7636_vector() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
