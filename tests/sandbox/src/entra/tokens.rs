//! Mints Entra token responses: v2.0 ID tokens, v1.0 access tokens for `api://…` resources
//! (Graph tokens for everything else) and opaque refresh tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::state::{EntraState, RefreshGrant};
use super::Failure;
use crate::directory::{Directory, User};
use crate::{http, jwt, keys};

/// Microsoft Graph's application id: the audience of Graph access tokens.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The resource a scope list asks for: an exposed API's App ID URI, or Graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Api(String),
    Graph,
}

/// Works out the resource of `scope` (space separated), as Entra does: one resource per request.
pub fn resource_of(dir: &Directory, scope: &str) -> Result<Resource, Failure> {
    let mut found: Option<Resource> = None;
    for s in scope.split_whitespace() {
        if OIDC_SCOPES.contains(&s) {
            continue;
        }
        let r = match s.rsplit_once('/') {
            Some((res, _)) if res.starts_with("api://") => {
                if !dir
                    .entra_apps
                    .iter()
                    .any(|a| a.app_id_uri.as_deref() == Some(res))
                {
                    return Err(Failure::bad(
                        "invalid_resource",
                        500011,
                        &format!(
                            "The resource principal named {res} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                            dir.tenant.domain
                        ),
                    ));
                }
                Resource::Api(res.to_string())
            }
            _ => Resource::Graph,
        };
        match &found {
            Some(prev) if *prev != r => {
                return Err(Failure::bad(
                    "invalid_scope",
                    28000,
                    "Provided value for the input parameter scope is not valid because it contains more than one resource.",
                ))
            }
            _ => found = Some(r),
        }
    }
    Ok(found.unwrap_or(Resource::Graph))
}

/// Pairwise subject per app, as Entra derives `sub` (stable, opaque).
fn pairwise_sub(oid: &str, client_id: &str) -> String {
    let h = Sha256::digest(format!("{oid}|{client_id}").as_bytes());
    URL_SAFE_NO_PAD.encode(&h[..32])[..43].to_string()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Everything needed to mint one token response.
pub struct Mint<'a> {
    pub dir: &'a Directory,
    pub user: &'a User,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub now: OffsetDateTime,
    pub token_secs: u64,
    pub refresh_secs: u64,
}

/// Builds the success JSON of the token endpoint and records the refresh token.
pub fn mint(m: &Mint<'_>, state: &EntraState) -> Result<Value, Failure> {
    let tid = m.dir.tenant.id.as_str();
    let resource = resource_of(m.dir, m.scope)?;
    let iat = m.now.unix_timestamp();
    let exp = iat + m.token_secs as i64;
    let scopes: Vec<&str> = m.scope.split_whitespace().collect();
    let resource_scopes: Vec<String> = scopes
        .iter()
        .filter(|s| !OIDC_SCOPES.contains(s))
        .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
        .collect();
    let (aud, scp) = match &resource {
        Resource::Api(uri) => (uri.clone(), resource_scopes.join(" ")),
        Resource::Graph => {
            let scp = if resource_scopes.is_empty() {
                "User.Read".to_string()
            } else {
                resource_scopes.join(" ")
            };
            (GRAPH_APP_ID.to_string(), scp)
        }
    };
    let access = obj(json!({
        "aud": aud,
        "iss": jwt::v1_issuer(tid),
        "iat": iat, "nbf": iat, "exp": exp,
        "acr": "1",
        "amr": ["pwd"],
        "appid": m.client_id,
        "appidacr": "0",
        "name": m.user.display_name,
        "oid": m.user.oid,
        "scp": scp,
        "sub": pairwise_sub(&m.user.oid, m.client_id),
        "tid": tid,
        "unique_name": m.user.upn,
        "upn": m.user.upn,
        "uti": http::random_token(16),
        "ver": "1.0",
    }));
    let mut body = json!({
        "token_type": "Bearer",
        "scope": m.scope,
        "expires_in": m.token_secs,
        "ext_expires_in": m.token_secs,
        "access_token": jwt::sign(&access, keys::token_key()),
    });
    if scopes.contains(&"openid") {
        let mut id = obj(json!({
            "aud": m.client_id,
            "iss": jwt::v2_issuer(tid),
            "iat": iat, "nbf": iat, "exp": exp,
            "sub": pairwise_sub(&m.user.oid, m.client_id),
            "oid": m.user.oid,
            "tid": tid,
            "upn": m.user.upn,
            "preferred_username": m.user.upn,
            "name": m.user.display_name,
            "uti": http::random_token(16),
            "ver": "2.0",
        }));
        if let Some(n) = m.nonce {
            id.insert("nonce".into(), Value::String(n.to_string()));
        }
        body["id_token"] = Value::String(jwt::sign(&id, keys::token_key()));
    }
    if scopes.contains(&"offline_access") {
        let rt = format!("0.A{}", http::random_token(96));
        state.lock().refresh.insert(
            rt.clone(),
            RefreshGrant {
                client_id: m.client_id.to_string(),
                scope: m.scope.to_string(),
                user: m.user.upn.clone(),
                expires: m.now + time::Duration::seconds(m.refresh_secs as i64),
                revoked: false,
            },
        );
        body["refresh_token"] = Value::String(rt);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources() {
        let d = Directory::default();
        assert_eq!(
            resource_of(&d, "openid offline_access api://rolecall-aws/.default").unwrap(),
            Resource::Api("api://rolecall-aws".into())
        );
        assert_eq!(resource_of(&d, "openid profile").unwrap(), Resource::Graph);
        assert_eq!(resource_of(&d, "User.Read").unwrap(), Resource::Graph);
        assert_eq!(resource_of(&d, "api://nope/x").unwrap_err().aadsts, 500011);
        assert_eq!(
            resource_of(&d, "User.Read api://rolecall-aws/x")
                .unwrap_err()
                .aadsts,
            28000
        );
    }

    #[test]
    fn id_and_access_tokens() {
        let d = Directory::default();
        let st = EntraState::default();
        let u = d.default_user().clone();
        let cid = d.entra_apps[0].client_id.clone();
        let m = Mint {
            dir: &d,
            user: &u,
            client_id: &cid,
            scope: "openid profile offline_access api://rolecall-aws/.default",
            nonce: Some("n1"),
            now: OffsetDateTime::now_utc(),
            token_secs: 3600,
            refresh_secs: 86400,
        };
        let b = mint(&m, &st).unwrap();
        let id = jwt::verify(b["id_token"].as_str().unwrap()).unwrap();
        assert_eq!(id["aud"], cid.as_str());
        assert_eq!(id["iss"], jwt::v2_issuer(&d.tenant.id).as_str());
        assert_eq!(id["ver"], "2.0");
        assert_eq!(id["nonce"], "n1");
        let at = jwt::verify(b["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(at["aud"], "api://rolecall-aws");
        assert_eq!(at["iss"], jwt::v1_issuer(&d.tenant.id).as_str());
        assert_eq!(at["ver"], "1.0");
        assert!(b["refresh_token"].as_str().unwrap().starts_with("0.A"));
        assert_eq!(st.lock().refresh.len(), 1);
        assert_eq!(st.revoke(Some(&u.upn)), 1);
    }
}
