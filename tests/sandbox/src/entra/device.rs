//! The device authorization grant (RFC 8628) as Entra runs it: `/devicecode`, the
//! verification page (`/oauth2/deviceauth`), and the polling side of `/token`.

use ::http::StatusCode;
use serde_json::{json, Value};

use super::state::{DeviceGrant, EntraState};
use super::Failure;
use crate::http::{self, Req, Resp};
use crate::pending::{Decision, Selector};
use crate::Sandbox;

/// Entra's user codes: 9 characters without look-alikes.
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

pub fn device_code(sb: &Sandbox, req: &Req, tenant_segment: &str) -> Resp {
    let form = req.form();
    let Some(client_id) = form.get("client_id").filter(|c| !c.is_empty()) else {
        return Failure::missing("client_id").reply();
    };
    let Some(scope) = form.get("scope").filter(|s| !s.trim().is_empty()) else {
        return Failure::missing("scope").reply();
    };
    let dir = sb.dir();
    if dir.entra_app(client_id).is_none() {
        return unknown_app(client_id, &dir.tenant.domain).reply();
    }
    if let Err(f) = super::tokens::resource_of(&dir, scope) {
        return f.reply();
    }
    drop(dir);
    let now = sb.clock.now();
    let lt = sb.lifetimes();
    let user_code = http::random_from(USER_CODE_ALPHABET, 9);
    let device_code = format!("DAQABIQEAAAD{}", http::random_token(96));
    let pending_id = sb
        .pending
        .register("entra:device", client_id, Some(user_code.clone()), now);
    sb.state::<EntraState>().lock().devices.insert(
        device_code.clone(),
        DeviceGrant {
            client_id: client_id.clone(),
            scope: scope.clone(),
            pending_id,
            expires: now + time::Duration::seconds(lt.device_code_secs as i64),
            interval_secs: lt.device_interval_secs,
            last_poll: None,
        },
    );
    let verification_uri = format!("{}/{tenant_segment}/oauth2/deviceauth", sb.base_url);
    http::json(
        StatusCode::OK,
        &json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": verification_uri,
            "expires_in": lt.device_code_secs,
            "interval": lt.device_interval_secs,
            "message": format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
        }),
    )
}

pub fn unknown_app(client_id: &str, tenant: &str) -> Failure {
    Failure::bad(
        "unauthorized_client",
        700016,
        &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."),
    )
}

/// `GET /{tenant}/oauth2/deviceauth?otc=CODE`: the page where the user types the code. A visit
/// with a code marks the login visited; with auto-approve it approves it for the default user.
pub fn verification_page(sb: &Sandbox, req: &Req) -> Resp {
    let q = req.query();
    let code = q.get("otc").or_else(|| q.get("code")).cloned();
    let Some(code) = code else {
        // A browser that opens the bare verification URI (a daemon's $BROWSER in the demo)
        // stands for a user typing the code shown to them: with auto-approve, approve the
        // device logins waiting for that.
        if sb.auto_approve() {
            let user = sb.dir().default_user().upn.clone();
            let sel = Selector {
                kind: Some("entra:device".into()),
                all: true,
                ..Selector::default()
            };
            if sb.pending.decide(&sel, Decision::Approved { user }) > 0 {
                return http::html(
                    StatusCode::OK,
                    "<html><head><title>Sign in</title></head><body><p>You have signed in to the application on your device. You may now close this window.</p></body></html>",
                );
            }
        }
        return http::html(
            StatusCode::OK,
            "<html><head><title>Enter code</title></head><body><form method=\"GET\"><p>Enter the code displayed on your app or device.</p><input name=\"otc\" /><input type=\"submit\" value=\"Next\" /></form></body></html>",
        );
    };
    let Some(p) = sb.pending.find_by_user_code(&code) else {
        return http::html(
            StatusCode::BAD_REQUEST,
            "<html><body><p>AADSTS70018: The code you entered is not valid. Check the code and try again.</p></body></html>",
        );
    };
    sb.pending.mark_visited(&p.id);
    if sb.auto_approve() && p.decision == Decision::Pending {
        let user = sb.dir().default_user().upn.clone();
        sb.pending.decide_id(&p.id, Decision::Approved { user });
    }
    let shown = match sb.pending.decision(&p.id) {
        Some(Decision::Approved { .. }) => "You have signed in to the application on your device. You may now close this window.",
        Some(Decision::Denied) => "You declined to sign in to the application on your device. You may now close this window.",
        _ => "Waiting for approval (sandbox: approve through the admin API).",
    };
    http::html(
        StatusCode::OK,
        format!("<html><head><title>Sign in</title></head><body><p>{shown}</p></body></html>"),
    )
}

/// The `device_code` grant of `/token`: pending, slow_down, declined, expired, or tokens.
pub fn redeem(
    sb: &Sandbox,
    form: &std::collections::HashMap<String, String>,
    client_id: &str,
) -> Result<Value, Failure> {
    let Some(code) = form.get("device_code").filter(|c| !c.is_empty()) else {
        return Err(Failure::missing("device_code"));
    };
    let now = sb.clock.now();
    let state = sb.state::<EntraState>();
    let grant = {
        let mut g = state.lock();
        let Some(d) = g.devices.get_mut(code) else {
            return Err(Failure::bad(
                "bad_verification_code",
                70000,
                "The provided value for the input parameter 'device_code' is not valid.",
            ));
        };
        if d.client_id != client_id {
            return Err(Failure::bad(
                "invalid_grant",
                70000,
                "The provided authorization grant was issued to another client.",
            ));
        }
        if now >= d.expires {
            return Err(Failure::bad(
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            ));
        }
        // RFC 8628 section 3.5: a client polling faster than the interval is told to slow down. A
        // little tolerance keeps timer jitter of a well-behaved poller from tripping it.
        let too_soon = d.last_poll.is_some_and(|last| {
            (now - last).whole_milliseconds() < (d.interval_secs as i128 * 1000) - 250
        });
        d.last_poll = Some(now);
        if too_soon {
            return Err(Failure::bad(
                "slow_down",
                70016,
                "OAuth 2.0 device flow error. The client is polling too fast; increase the polling interval.",
            ));
        }
        d.clone()
    };
    match sb.pending.decision(&grant.pending_id) {
        Some(Decision::Approved { user }) => {
            state.lock().devices.remove(code);
            sb.pending.remove(&grant.pending_id);
            let dir = sb.dir();
            let user = dir
                .user(&user)
                .cloned()
                .unwrap_or_else(|| dir.default_user().clone());
            let lt = sb.lifetimes();
            super::tokens::mint(
                &super::tokens::Mint {
                    dir: &dir,
                    user: &user,
                    client_id,
                    scope: &grant.scope,
                    nonce: None,
                    now,
                    token_secs: lt.entra_access_token_secs,
                    refresh_secs: lt.entra_refresh_token_secs,
                },
                &state,
            )
        }
        Some(Decision::Denied) => {
            state.lock().devices.remove(code);
            Err(Failure::bad(
                "authorization_declined",
                70000,
                "The user declined the authentication request.",
            ))
        }
        _ => Err(Failure::bad(
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )),
    }
}
