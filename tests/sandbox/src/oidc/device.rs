//! The device authorization grant: `StartDeviceAuthorization`, the verification page
//! `/device`, and redeeming a device code at `CreateToken`.

use super::state::{Client, Device, State};
use super::token::{authenticate, Redeemed};
use super::{body_object, fail, is_instance_url, page, req_str, OidcError, GRANT_DEVICE};
use crate::http::{self, HandlerResult, Req, Resp};
use crate::pending::Decision;
use crate::Sandbox;
use ::http::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) async fn start_device(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("ssooidc:StartDeviceAuthorization").await?;
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return Ok(r),
    };
    let parsed = (|| -> Result<_, Resp> {
        Ok((
            req_str(&m, "clientId")?,
            req_str(&m, "clientSecret")?,
            req_str(&m, "startUrl")?,
        ))
    })();
    let (client_id, secret, start_url) = match parsed {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let now = sb.clock.now_unix();
    let st = sb.state::<State>();
    let client = match authenticate(&st, &client_id, &secret, now) {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if !client.allows(GRANT_DEVICE) {
        return fail(
            OidcError::UnauthorizedClient,
            "client is not registered for the device code grant",
        );
    }
    if !matches!(url::Url::parse(&start_url), Ok(u) if u.scheme() == "https" || u.scheme() == "http")
    {
        return fail(OidcError::InvalidRequest, "startUrl is not a URL");
    }
    if !is_instance_url(sb, &start_url) {
        return fail(
            OidcError::InvalidRequest,
            "startUrl is not the start URL of an IAM Identity Center instance in this Region",
        );
    }
    let lt = sb.lifetimes();
    let user_code = format!(
        "{}-{}",
        http::random_from(b"BCDFGHJKLMNPQRSTVWXZ", 4),
        http::random_from(b"BCDFGHJKLMNPQRSTVWXZ", 4)
    );
    let device_code = http::random_token(48);
    let pending_id = sb.pending.register(
        "ssooidc:device",
        &client_id,
        Some(user_code.clone()),
        sb.clock.now(),
    );
    st.lock().devices.insert(
        device_code.clone(),
        Device {
            client_id,
            pending_id,
            expires_at: now + lt.device_code_secs as i64,
            interval: lt.device_interval_secs,
            last_poll: None,
        },
    );
    let verification_uri = format!("{}/device", sb.base_url);
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": verification_uri,
            "verificationUriComplete": format!("{verification_uri}?user_code={user_code}"),
            "expiresIn": lt.device_code_secs,
            "interval": lt.device_interval_secs,
        }),
    ))
}

pub(super) fn redeem_device(
    sb: &Sandbox,
    st: &State,
    client: &Client,
    code: &str,
    now: i64,
) -> Redeemed {
    let mut inner = st.lock();
    let Some(dev) = inner.devices.get_mut(code) else {
        return Err(OidcError::InvalidGrant.reply("Invalid device code provided"));
    };
    if dev.client_id != client.client_id {
        return Err(OidcError::InvalidGrant.reply("Device code was issued to another client"));
    }
    if now >= dev.expires_at {
        let pid = dev.pending_id.clone();
        inner.devices.remove(code);
        sb.pending.remove(&pid);
        return Err(OidcError::ExpiredToken.reply("Device code has expired"));
    }
    let polled_at = Instant::now();
    let too_fast = dev.interval > 0
        && dev.last_poll.is_some_and(|t| {
            polled_at.duration_since(t) + Duration::from_millis(100)
                < Duration::from_secs(dev.interval)
        });
    dev.last_poll = Some(polled_at);
    match sb.pending.decision(&dev.pending_id) {
        Some(Decision::Approved { user }) => {
            let pid = dev.pending_id.clone();
            inner.devices.remove(code);
            sb.pending.remove(&pid);
            Ok((user, client.scopes.clone(), None))
        }
        Some(Decision::Denied) => {
            let pid = dev.pending_id.clone();
            inner.devices.remove(code);
            sb.pending.remove(&pid);
            Err(OidcError::AccessDenied.reply("The user denied the authorization request"))
        }
        _ if too_fast => Err(OidcError::SlowDown.reply("Client is polling too fast")),
        _ => Err(OidcError::AuthorizationPending.reply("Authorization is pending")),
    }
}

/// The verification URI. Visiting it with a user code marks the device login as visited and,
/// with auto-approve, approves it; otherwise it stays pending for the admin API.
pub(super) async fn device_page(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("ssooidc:DevicePage").await?;
    let q = req.query();
    let Some(code) = q.get("user_code").filter(|c| !c.is_empty()) else {
        return Ok(page(
            StatusCode::OK,
            "Authorize request",
            "Enter the code shown by your application (add ?user_code=...).",
        ));
    };
    let Some(p) = sb
        .pending
        .find_by_user_code(code)
        .filter(|p| p.kind == "ssooidc:device")
    else {
        return Ok(page(
            StatusCode::NOT_FOUND,
            "Invalid code",
            "This code is not valid or has expired.",
        ));
    };
    sb.pending.mark_visited(&p.id);
    let decided = match p.decision {
        Decision::Pending if sb.auto_approve() => {
            let user = sb.dir().default_user().upn.clone();
            sb.pending.decide_id(&p.id, Decision::Approved { user });
            Some(true)
        }
        Decision::Pending => None,
        Decision::Approved { .. } => Some(true),
        Decision::Denied => Some(false),
    };
    Ok(match decided {
        Some(true) => page(
            StatusCode::OK,
            "Request approved",
            "You can close this window.",
        ),
        Some(false) => page(StatusCode::OK, "Request denied", "The request was denied."),
        None => page(
            StatusCode::OK,
            "Waiting for approval",
            "This request is waiting for approval.",
        ),
    })
}
