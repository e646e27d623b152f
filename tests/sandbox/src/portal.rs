//! The IAM Identity Center portal API (`sso`, rest-json): GetRoleCredentials, ListAccounts,
//! ListAccountRoles and Logout, authorized by the OIDC access token in
//! `x-amz-sso_bearer_token`, plus a stand-in `/start` page for the start URL.
//!
//! Shapes follow botocore's `sso/2019-06-10` model: query members `role_name`, `account_id`,
//! `max_result` (1..100), `next_token`; `expiration` in epoch milliseconds.

use crate::http::{self, HandlerResult, Req, Resp};
use crate::issued::IssueRequest;
use crate::oidc::{self, TokenProblem};
use crate::Sandbox;
use ::http::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;

/// Page size when the caller gives no `max_result`.
pub const DEFAULT_PAGE: usize = 20;

fn error(status: StatusCode, etype: &str, message: &str) -> Resp {
    http::aws_json_error(status, etype, json!({"message": message}))
}

fn unauthorized(p: TokenProblem) -> Resp {
    let msg = match p {
        TokenProblem::Unknown => "Session token not found or invalid",
        TokenProblem::Expired => "Session token has expired",
        TokenProblem::Revoked => "Session token has been revoked",
    };
    error(StatusCode::UNAUTHORIZED, "UnauthorizedException", msg)
}

fn invalid(msg: &str) -> Resp {
    error(StatusCode::BAD_REQUEST, "InvalidRequestException", msg)
}

fn forbidden() -> Resp {
    error(StatusCode::FORBIDDEN, "ForbiddenException", "No access")
}

pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    match (req.method(), req.path()) {
        (&Method::GET, "/federation/credentials") => get_role_credentials(sb, req).await,
        (&Method::GET, "/assignment/accounts") => list_accounts(sb, req).await,
        (&Method::GET, "/assignment/roles") => list_account_roles(sb, req).await,
        (&Method::POST, "/logout") => logout(sb, req).await,
        (&Method::GET, "/start" | "/start/") => Ok(http::html(
            StatusCode::OK,
            "<!doctype html><html><head><title>AWS access portal (sandbox)</title></head>\
             <body><h1>AWS access portal (rolecall sandbox)</h1></body></html>\n",
        )),
        _ => Ok(http::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
        )),
    }
}

/// The signed-in user behind the bearer token, or the UnauthorizedException reply.
fn bearer_user(sb: &Sandbox, req: &Req) -> Result<String, Resp> {
    let Some(token) = req
        .header("x-amz-sso_bearer_token")
        .filter(|t| !t.is_empty())
    else {
        return Err(unauthorized(TokenProblem::Unknown));
    };
    let grant = sb
        .state::<oidc::State>()
        .check_access(token, sb.clock.now_unix())
        .map_err(unauthorized)?;
    // A token from a registration with scopes but without sso:account:access cannot call the
    // portal; legacy registrations (no scopes) can.
    if !grant.scopes.is_empty() && !grant.scopes.iter().any(|s| s == oidc::SCOPE_ACCOUNT_ACCESS) {
        return Err(unauthorized(TokenProblem::Unknown));
    }
    Ok(grant.user)
}

fn account_param(q: &std::collections::HashMap<String, String>) -> Result<String, Resp> {
    match q.get("account_id") {
        Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => Ok(a.clone()),
        Some(_) => Err(invalid("account_id must be a 12-digit account id")),
        None => Err(invalid("account_id is required")),
    }
}

/// The stable `AWSReservedSSO_<set>_<16 hex>` role name Identity Center creates per account.
pub fn reserved_role_name(account: &str, permission_set: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{account}/{permission_set}").as_bytes());
    format!("AWSReservedSSO_{permission_set}_{}", hex::encode(&h[..8]))
}

async fn get_role_credentials(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("sso:GetRoleCredentials").await?;
    let user = match bearer_user(sb, req) {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let q = req.query();
    let account = match account_param(&q) {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let Some(role) = q.get("role_name").filter(|r| !r.is_empty()) else {
        return Ok(invalid("role_name is required"));
    };
    let duration = {
        let dir = sb.dir();
        let Some(ps) = dir
            .roles_of(&user, &account)
            .into_iter()
            .find(|p| &p.name == role)
        else {
            return Ok(forbidden());
        };
        ps.session_duration_secs
    };
    let secs = sb.lifetimes().role_credentials_secs.unwrap_or(duration);
    let cred = sb.issued.issue(IssueRequest {
        account_id: &account,
        role_name: &reserved_role_name(&account, role),
        session_name: &user,
        expiration: sb.clock.now() + time::Duration::seconds(secs as i64),
        issued_by: "sso:GetRoleCredentials",
    });
    let millis = cred.expiration.unix_timestamp() * 1000;
    Ok(http::json(
        StatusCode::OK,
        &json!({"roleCredentials": {
            "accessKeyId": cred.access_key_id,
            "secretAccessKey": cred.secret_access_key,
            "sessionToken": cred.session_token,
            "expiration": millis,
        }}),
    ))
}

/// Reads `max_result` / `next_token`; the token is an opaque offset bound to the listing.
fn paging(
    q: &std::collections::HashMap<String, String>,
    scope: &str,
) -> Result<(usize, usize), Resp> {
    let size = match q.get("max_result") {
        None => DEFAULT_PAGE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err(invalid("max_result must be between 1 and 100")),
        },
    };
    let offset = match q.get("next_token") {
        None => 0,
        Some(t) => decode_token(t, scope).ok_or_else(|| invalid("Invalid next token"))?,
    };
    Ok((size, offset))
}

fn encode_token(offset: usize, scope: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{offset}|{scope}"))
}

fn decode_token(t: &str, scope: &str) -> Option<usize> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (off, sc) = s.split_once('|')?;
    (sc == scope).then(|| off.parse().ok()).flatten()
}

fn page_of<T: Clone>(
    items: &[T],
    size: usize,
    offset: usize,
    scope: &str,
) -> (Vec<T>, Option<String>) {
    let end = (offset + size).min(items.len());
    let slice = items
        .get(offset.min(items.len())..end)
        .unwrap_or(&[])
        .to_vec();
    let next = (end < items.len()).then(|| encode_token(end, scope));
    (slice, next)
}

async fn list_accounts(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("sso:ListAccounts").await?;
    let user = match bearer_user(sb, req) {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let q = req.query();
    let scope = format!("accounts/{user}");
    let (size, offset) = match paging(&q, &scope) {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let all: Vec<serde_json::Value> = sb
        .dir()
        .accounts_of(&user)
        .into_iter()
        .map(|a| {
            let mut v = json!({"accountId": a.id, "accountName": a.name});
            if let Some(e) = &a.email {
                v["emailAddress"] = json!(e);
            }
            v
        })
        .collect();
    let (page, next) = page_of(&all, size, offset, &scope);
    let mut reply = json!({"accountList": page});
    if let Some(n) = next {
        reply["nextToken"] = json!(n);
    }
    Ok(http::json(StatusCode::OK, &reply))
}

async fn list_account_roles(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("sso:ListAccountRoles").await?;
    let user = match bearer_user(sb, req) {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let q = req.query();
    let account = match account_param(&q) {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let scope = format!("roles/{user}/{account}");
    let (size, offset) = match paging(&q, &scope) {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let all: Vec<serde_json::Value> = {
        let dir = sb.dir();
        if dir.account(&account).is_none() {
            return Ok(error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                "Account not found",
            ));
        }
        let roles = dir.roles_of(&user, &account);
        if roles.is_empty() {
            return Ok(forbidden());
        }
        roles
            .into_iter()
            .map(|p| json!({"roleName": p.name, "accountId": account}))
            .collect()
    };
    let (page, next) = page_of(&all, size, offset, &scope);
    let mut reply = json!({"roleList": page});
    if let Some(n) = next {
        reply["nextToken"] = json!(n);
    }
    Ok(http::json(StatusCode::OK, &reply))
}

async fn logout(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("sso:Logout").await?;
    if let Err(r) = bearer_user(sb, req) {
        return Ok(r);
    }
    let token = req.header("x-amz-sso_bearer_token").unwrap_or_default();
    sb.state::<oidc::State>().logout(token);
    Ok(http::empty(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_listing() {
        let t = encode_token(20, "accounts/a");
        assert_eq!(decode_token(&t, "accounts/a"), Some(20));
        assert_eq!(decode_token(&t, "accounts/b"), None);
        assert_eq!(decode_token("garbage!", "accounts/a"), None);
    }

    #[test]
    fn pages_cover_everything_once() {
        let items: Vec<u32> = (0..45).collect();
        let (p1, n1) = page_of(&items, 20, 0, "s");
        let (p2, n2) = page_of(&items, 20, decode_token(&n1.unwrap(), "s").unwrap(), "s");
        let (p3, n3) = page_of(&items, 20, decode_token(&n2.unwrap(), "s").unwrap(), "s");
        assert_eq!((p1.len(), p2.len(), p3.len()), (20, 20, 5));
        assert!(n3.is_none());
    }

    #[test]
    fn reserved_role_name_is_stable() {
        let a = reserved_role_name("111111111111", "DeveloperAdmin");
        assert_eq!(a, reserved_role_name("111111111111", "DeveloperAdmin"));
        assert!(
            a.starts_with("AWSReservedSSO_DeveloperAdmin_")
                && a.len() == "AWSReservedSSO_DeveloperAdmin_".len() + 16
        );
    }
}
