//! Entra's SAML endpoints: `GET /{tenant}/saml2` (SP-initiated, HTTP-Redirect binding in,
//! auto-submitting HTTP-POST form to the app's reply URL out) with the `ESTSAUTHPERSISTENT` browser
//! session, and the federation metadata.

use std::time::Duration;

use ::http::{header, HeaderValue, StatusCode};

use super::state::{EntraState, SamlSigning};
use crate::http::{self, Req, Resp};
use crate::pending::Decision;
use crate::saml::request::{decode_redirect, AuthnRequest};
use crate::saml::response::{build_no_passive, build_success, post_form, Grant, Signing};
use crate::{keys, Sandbox};

/// Entra's "stay signed in" cookie: persistent, so the session outlives the browser process
/// (a dedicated browser profile keeps it between background renewals).
pub const SESSION_COOKIE: &str = "ESTSAUTHPERSISTENT";
/// Entra's per-browser-session cookie, also accepted.
const SESSION_COOKIE_TRANSIENT: &str = "ESTSAUTH";

fn error_page(status: StatusCode, text: &str) -> Resp {
    http::html(
        status,
        format!(
            "<html><head><title>Sign in to your account</title></head><body><p>{}</p></body></html>",
            http::escape_xml(text)
        ),
    )
}

fn session_of(req: &Req, state: &EntraState) -> Option<String> {
    let cookies = req.header("cookie")?;
    let value = cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == SESSION_COOKIE || k == SESSION_COOKIE_TRANSIENT).then(|| v.to_string())
    })?;
    state.lock().sessions.get(&value).cloned()
}

pub async fn sso(sb: &Sandbox, req: &Req, tid: &str) -> Resp {
    let q = req.query();
    let Some(raw) = q.get("SAMLRequest").filter(|s| !s.is_empty()) else {
        return error_page(StatusCode::BAD_REQUEST, "AADSTS750054: SAMLRequest or SAMLResponse must be present as query string parameters in HTTP request for SAML Redirect binding.");
    };
    let relay = q.get("RelayState").cloned();
    let authn = match decode_redirect(raw) {
        Ok(a) => a,
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!("AADSTS7500529: The SAML request could not be read: {e}."),
            )
        }
    };
    let (identifier, reply_url, tenant_domain) = {
        let dir = sb.dir();
        match &dir.saml_app {
            Some(app) => (
                app.identifier.clone(),
                app.reply_url.clone(),
                dir.tenant.domain.clone(),
            ),
            None => (String::new(), String::new(), dir.tenant.domain.clone()),
        }
    };
    if identifier.is_empty() || authn.issuer != identifier {
        return error_page(
            StatusCode::BAD_REQUEST,
            &format!("AADSTS700016: Application with identifier '{}' was not found in the directory '{tenant_domain}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", authn.issuer),
        );
    }
    // An AuthnRequest may name where the response goes; Entra posts only to a reply URL
    // registered for the app, and refuses the request otherwise (never posting elsewhere).
    if authn.acs_url.as_ref().is_some_and(|acs| *acs != reply_url) {
        return error_page(
            StatusCode::BAD_REQUEST,
            &format!("AADSTS50011: The reply URL specified in the request does not match the reply URLs configured for the application: '{identifier}'. Make sure the reply URL sent in the request matches one added to your application in the Azure portal."),
        );
    }
    let state = sb.state::<EntraState>();
    let opts = state.lock().saml.clone();
    let recipient = opts.recipient.clone().unwrap_or(reply_url);
    let existing = if authn.force_authn {
        None
    } else {
        session_of(req, &state)
    };
    if let Some(user) = existing {
        return success(sb, &authn, tid, &user, &recipient, relay.as_deref(), None);
    }
    if authn.is_passive {
        let xml = build_no_passive(tid, &authn.id, &recipient, sb.clock.now());
        return http::html(
            StatusCode::OK,
            post_form(&recipient, &xml, relay.as_deref()),
        );
    }
    let now = sb.clock.now();
    let pid = sb.pending.register("entra:saml", &identifier, None, now);
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
            let cookie = http::random_token(48);
            state.lock().sessions.insert(cookie.clone(), user.clone());
            success(
                sb,
                &authn,
                tid,
                &user,
                &recipient,
                relay.as_deref(),
                Some(&cookie),
            )
        }
        Some(Decision::Denied) => error_page(
            StatusCode::FORBIDDEN,
            "AADSTS50105: The signed in user is not assigned to a role for the application.",
        ),
        _ => error_page(
            StatusCode::REQUEST_TIMEOUT,
            "AADSTS50058: The sign-in was not completed in time.",
        ),
    }
}

fn success(
    sb: &Sandbox,
    authn: &AuthnRequest,
    tid: &str,
    upn: &str,
    recipient: &str,
    relay: Option<&str>,
    set_cookie: Option<&str>,
) -> Resp {
    let state = sb.state::<EntraState>();
    let opts = state.lock().saml.clone();
    let dir = sb.dir();
    let Some(app) = dir.saml_app.clone() else {
        return error_page(StatusCode::BAD_REQUEST, "no SAML app is configured");
    };
    let user = dir
        .user(upn)
        .cloned()
        .unwrap_or_else(|| dir.default_user().clone());
    let roles: Vec<String> = dir
        .saml_roles_of(&user.upn)
        .iter()
        .map(|r| format!("{},{}", r.role, r.principal))
        .collect();
    drop(dir);
    let audience = opts.audience.clone().unwrap_or(app.identifier.clone());
    let grant = Grant {
        tenant_id: tid,
        in_response_to: Some(&authn.id),
        audience: &audience,
        recipient,
        upn: &user.upn,
        object_id: &user.oid,
        display_name: &user.display_name,
        roles,
        session_duration_secs: app.session_duration_secs,
        now: sb.clock.now(),
        validity_secs: opts
            .validity_secs
            .unwrap_or(sb.lifetimes().saml_assertion_secs),
    };
    let signing = match opts.signing {
        SamlSigning::Trusted => Signing::With(keys::saml_key()),
        SamlSigning::Rogue => Signing::With(keys::rogue_key()),
        SamlSigning::Unsigned => Signing::Unsigned,
    };
    let xml = match build_success(&grant, signing) {
        Ok(x) => x,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let mut r = http::html(StatusCode::OK, post_form(recipient, &xml, relay));
    if let Some(c) = set_cookie {
        let max_age = sb.lifetimes().entra_refresh_token_secs;
        let cookie =
            format!("{SESSION_COOKIE}={c}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

pub fn metadata(sb: &Sandbox, tid: &str) -> Resp {
    let location = format!("{}/{tid}/saml2", sb.base_url);
    let body = crate::saml::federation_metadata(tid, &location, &keys::saml_key().cert_b64());
    let mut r = http::xml(StatusCode::OK, body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/samlmetadata+xml"),
    );
    r
}
