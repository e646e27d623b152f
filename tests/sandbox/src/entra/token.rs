//! `POST /{tenant}/oauth2/v2.0/token`: client checks, then the device code, authorization code
//! and refresh token grants.

use std::collections::HashMap;

use ::http::StatusCode;
use serde_json::Value;

use super::state::EntraState;
use super::Failure;
use crate::http::{self, Req, Resp};
use crate::Sandbox;

pub fn token(sb: &Sandbox, req: &Req) -> Resp {
    match grant(sb, &req.form()) {
        Ok(body) => {
            let mut r = http::json(StatusCode::OK, &body);
            r.headers_mut().insert(
                ::http::header::CACHE_CONTROL,
                ::http::HeaderValue::from_static("no-store, no-cache"),
            );
            r
        }
        Err(f) => f.reply(),
    }
}

fn grant(sb: &Sandbox, form: &HashMap<String, String>) -> Result<Value, Failure> {
    let client_id = form
        .get("client_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Failure::missing("client_id"))?;
    let grant_type = form
        .get("grant_type")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Failure::missing("grant_type"))?;
    {
        let dir = sb.dir();
        let app = dir
            .entra_app(client_id)
            .ok_or_else(|| super::device::unknown_app(client_id, &dir.tenant.domain))?;
        // Without "Allow public client flows" the app is confidential: it must authenticate,
        // and the sandbox holds no client secrets, so it never can.
        if !app.allow_public_client {
            return Err(Failure {
                status: StatusCode::UNAUTHORIZED,
                error: "invalid_client",
                aadsts: 7000218,
                description: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into(),
            });
        }
        // A public client cannot keep a secret, so Entra refuses one that presents any.
        let presented = |k: &str| form.get(k).is_some_and(|v| !v.is_empty());
        if presented("client_secret") || presented("client_assertion") {
            return Err(Failure {
                status: StatusCode::UNAUTHORIZED,
                error: "invalid_client",
                aadsts: 700025,
                description: "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.".into(),
            });
        }
    }
    match grant_type.as_str() {
        "urn:ietf:params:oauth:grant-type:device_code" => {
            super::device::redeem(sb, form, client_id)
        }
        "authorization_code" => super::authorize::redeem(sb, form, client_id),
        "refresh_token" => refresh(sb, form, client_id),
        other => Err(Failure::bad(
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn refresh(
    sb: &Sandbox,
    form: &HashMap<String, String>,
    client_id: &str,
) -> Result<Value, Failure> {
    let rt = form
        .get("refresh_token")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Failure::missing("refresh_token"))?;
    let now = sb.clock.now();
    let state = sb.state::<EntraState>();
    let g = state.lock().refresh.get(rt).cloned().ok_or_else(|| {
        Failure::bad(
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        )
    })?;
    if g.client_id != client_id {
        return Err(Failure::bad(
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed.",
        ));
    }
    if g.revoked {
        return Err(Failure::bad(
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
        ));
    }
    if now >= g.expires {
        return Err(Failure::bad(
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. The token was issued on a date and was inactive for the configured lifetime.",
        ));
    }
    // A narrower scope may be asked for; without one the original grant's scope applies.
    let scope = form
        .get("scope")
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .unwrap_or(g.scope.clone());
    let dir = sb.dir();
    let user = dir.user(&g.user).cloned().ok_or_else(|| {
        Failure::bad(
            "invalid_grant",
            50034,
            "The user account does not exist in the directory.",
        )
    })?;
    // Refresh tokens rotate: every redemption returns a new one, even when the narrower scope
    // leaves out offline_access (the client already holds a refresh token).
    let scope = if scope.split_whitespace().any(|s| s == "offline_access") {
        scope
    } else {
        format!("{scope} offline_access")
    };
    let lt = sb.lifetimes();
    super::tokens::mint(
        &super::tokens::Mint {
            dir: &dir,
            user: &user,
            client_id,
            scope: &scope,
            nonce: None,
            now,
            token_secs: lt.entra_access_token_secs,
            refresh_secs: lt.entra_refresh_token_secs,
        },
        &state,
    )
}
