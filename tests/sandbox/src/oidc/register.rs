//! `RegisterClient`: a public client registration, with the scope, grant type and redirect
//! URI rules of the real service.

use super::state::{Client, State};
use super::{body_object, fail, is_instance_url, opt_str, req_str, str_list, OidcError};
use super::{GRANT_CODE, GRANT_DEVICE, GRANT_REFRESH, SCOPE_ACCOUNT_ACCESS};
use crate::http::{self, HandlerResult, Req, Resp};
use crate::Sandbox;
use ::http::StatusCode;
use serde_json::json;
use std::sync::Arc;

fn known_scope(s: &str) -> bool {
    s == SCOPE_ACCOUNT_ACCESS
        || s == "openid"
        || s.starts_with("sso:")
        || s.starts_with("sso-portal:")
        || s.starts_with("codewhisperer:")
}

/// Loopback `http` redirect URIs (any host else is refused), or `https` ones.
fn valid_redirect_uri(s: &str) -> bool {
    match url::Url::parse(s) {
        Ok(u) if u.scheme() == "https" => u.host().is_some(),
        Ok(u) if u.scheme() == "http" => is_loopback_host(&u),
        _ => false,
    }
}

pub(super) fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

pub(super) async fn register_client(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("ssooidc:RegisterClient").await?;
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return Ok(r),
    };
    let parsed = (|| -> Result<_, Resp> {
        Ok((
            req_str(&m, "clientName")?,
            req_str(&m, "clientType")?,
            str_list(&m, "scopes")?,
            str_list(&m, "grantTypes")?,
            str_list(&m, "redirectUris")?,
            opt_str(&m, "issuerUrl")?,
        ))
    })();
    let (name, ctype, scopes, grant_types, redirect_uris, issuer_url) = match parsed {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    if ctype != "public" {
        return fail(
            OidcError::InvalidClientMetadata,
            "clientType must be 'public'",
        );
    }
    if let Some(bad) = scopes.iter().find(|s| !known_scope(s)) {
        return fail(OidcError::InvalidScope, &format!("unknown scope '{bad}'"));
    }
    if let Some(bad) = grant_types
        .iter()
        .find(|g| ![GRANT_DEVICE, GRANT_CODE, GRANT_REFRESH].contains(&g.as_str()))
    {
        return fail(
            OidcError::UnsupportedGrantType,
            &format!("unsupported grant type '{bad}'"),
        );
    }
    if let Some(bad) = redirect_uris.iter().find(|u| !valid_redirect_uri(u)) {
        return fail(
            OidcError::InvalidRedirectUri,
            &format!("invalid redirect URI '{bad}'"),
        );
    }
    if grant_types.iter().any(|g| g == GRANT_CODE) && redirect_uris.is_empty() {
        return fail(
            OidcError::InvalidRedirectUri,
            "redirectUris are required for the authorization_code grant",
        );
    }
    if let Some(u) = &issuer_url {
        if url::Url::parse(u).is_err() {
            return fail(OidcError::InvalidRequest, "issuerUrl is not a URL");
        }
        if !is_instance_url(sb, u) {
            return fail(
                OidcError::InvalidRequest,
                "issuerUrl is not the issuer URL of an IAM Identity Center instance in this Region",
            );
        }
    }
    let now = sb.clock.now_unix();
    let lifetime = sb.lifetimes().client_registration_secs as i64;
    let client = Client {
        client_id: http::random_token(16),
        secret: format!("eyJraWQiOiJzYW5kYm94In0.{}", http::random_token(180)),
        name,
        scopes,
        grant_types,
        redirect_uris,
        issuer_url,
        issued_at: now,
        expires_at: now + lifetime,
    };
    let reply = json!({
        "clientId": client.client_id,
        "clientSecret": client.secret,
        "clientIdIssuedAt": client.issued_at,
        "clientSecretExpiresAt": client.expires_at,
        "authorizationEndpoint": format!("{}/authorize", sb.base_url),
        "tokenEndpoint": format!("{}/token", sb.base_url),
    });
    sb.state::<State>()
        .lock()
        .clients
        .insert(client.client_id.clone(), client);
    Ok(http::json(StatusCode::OK, &reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_registration_rules() {
        assert!(valid_redirect_uri("http://127.0.0.1/oauth/callback"));
        assert!(valid_redirect_uri("https://app.example/cb"));
        assert!(!valid_redirect_uri("http://app.example/cb"));
        assert!(!valid_redirect_uri("not a url"));
    }
}
