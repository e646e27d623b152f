//! The AWS Sign-In OAuth token endpoint that `aws login` sessions refresh through
//! (`CreateOAuth2Token`, `POST /v1/token`, rest-json: the body is the `tokenInput` document and
//! the answer the `tokenOutput` document), with DPoP (RFC 9449) enforced as the service does:
//!
//! - the `DPoP` header is a JWT with `typ` `dpop+jwt`, `alg` `ES256` and the P-256 public key
//!   as `jwk`, signed by that key;
//! - its claims `htm` and `htu` name this request (`POST`, this endpoint's URL), `iat` is within
//!   a minute of now, and `jti` was never seen before;
//! - the refresh token was issued to that key (its JWK thumbprint), and is used once: the
//!   answer carries a new one.
//!
//! `aws login` itself (authorization code + PKCE in a browser) is not emulated: tests start a
//! session with `POST /_sandbox/signin/sessions {"sub": ARN, "jwk": {...}}`, which answers what
//! the code exchange would.

use crate::http::{self, HandlerResult, Req};
use crate::issued::IssueRequest;
use crate::Sandbox;
use ::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use http::Resp;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// How long the credentials of a refresh live (the service's 15 minutes).
pub const CREDENTIALS_SECS: i64 = 900;
/// How far `iat` may be from now.
const IAT_WINDOW_SECS: i64 = 60;

#[derive(Debug, Default)]
pub struct State {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// refresh token → the session it continues.
    sessions: HashMap<String, Session>,
    /// Every `jti` accepted so far.
    seen_jti: HashSet<String>,
    /// Refreshes answered (for tests).
    refreshed: u64,
}

#[derive(Debug, Clone)]
struct Session {
    sub: String,
    account_id: String,
    /// RFC 7638 thumbprint of the key the session is bound to.
    jkt: String,
}

fn refuse(status: StatusCode, kind: &str, error: &str, message: &str) -> Resp {
    http::aws_json_error(status, kind, json!({"error": error, "message": message}))
}

/// RFC 7638 thumbprint of a P-256 JWK.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let (x, y) = (jwk.get("x")?.as_str()?, jwk.get("y")?.as_str()?);
    if jwk.get("kty")?.as_str()? != "EC" || jwk.get("crv")?.as_str()? != "P-256" {
        return None;
    }
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    use sha2::Digest;
    Some(B64URL.encode(sha2::Sha256::digest(canonical.as_bytes())))
}

/// `POST /_sandbox/signin/sessions`: a signed-in `aws login` session bound to `jwk`.
pub fn start_session(sb: &Arc<Sandbox>, body: &Value) -> Result<Value, String> {
    let sub = body
        .get("sub")
        .and_then(Value::as_str)
        .ok_or("sub (the principal ARN) is required")?;
    let account_id = sub.split(':').nth(4).unwrap_or_default().to_string();
    if account_id.len() != 12 {
        return Err(format!("sub {sub:?} is not an ARN with an account id"));
    }
    let jkt = body
        .get("jwk")
        .and_then(thumbprint)
        .ok_or("jwk must be a P-256 public key {kty, crv, x, y}")?;
    let st = sb.state::<State>();
    let refresh = format!("rt-{}", http::random_token(32));
    st.inner.lock().expect("signin lock").sessions.insert(
        refresh.clone(),
        Session {
            sub: sub.to_string(),
            account_id,
            jkt,
        },
    );
    let mut out = token_output(
        sb,
        &st.inner.lock().expect("signin lock").sessions[&refresh],
        refresh.clone(),
    );
    out["idToken"] = json!(id_token(sub));
    Ok(out)
}

fn id_token(sub: &str) -> String {
    let header = B64URL.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = B64URL.encode(json!({"sub": sub}).to_string());
    format!("{header}.{claims}.")
}

fn token_output(sb: &Arc<Sandbox>, s: &Session, refresh: String) -> Value {
    let expiration = sb.clock.now() + time::Duration::seconds(CREDENTIALS_SECS);
    let name = s.sub.rsplit('/').next().unwrap_or("user");
    let cred = sb.issued.issue(IssueRequest {
        account_id: &s.account_id,
        role_name: name,
        session_name: "aws-login",
        expiration,
        issued_by: "signin:CreateOAuth2Token",
    });
    json!({
        "accessToken": {
            "accessKeyId": cred.access_key_id,
            "secretAccessKey": cred.secret_access_key,
            "sessionToken": cred.session_token,
        },
        "tokenType": "aws_sigv4",
        "expiresIn": CREDENTIALS_SECS,
        "refreshToken": refresh,
    })
}

/// `GET /_sandbox/signin/sessions`: how many refreshes were answered.
pub fn stats(sb: &Arc<Sandbox>) -> Value {
    let st = sb.state::<State>();
    let inner = st.inner.lock().expect("signin lock");
    json!({"refreshed": inner.refreshed, "sessions": inner.sessions.len()})
}

pub async fn handle(sb: &Arc<Sandbox>, req: &Req) -> HandlerResult {
    sb.enter("signin:CreateOAuth2Token").await?;
    if req.method() != ::http::Method::POST {
        return Ok(http::not_found());
    }
    let invalid = |m: &str| {
        refuse(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "invalid_request",
            m,
        )
    };
    let Ok(body) = req.json() else {
        return Ok(invalid("the body must be the tokenInput JSON document"));
    };
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if field("grantType") != "refresh_token" {
        return Ok(invalid(
            "grantType must be refresh_token (authorization codes are not emulated)",
        ));
    }
    if field("clientId").is_empty() || field("refreshToken").is_empty() {
        return Ok(invalid("clientId and refreshToken are required"));
    }
    let Some(proof) = req.header("dpop") else {
        return Ok(invalid("a DPoP proof is required"));
    };
    let htu = format!("{}/v1/token", sb.base_url);
    let now = sb.clock.now_unix();
    let jkt = match verify_proof(proof, &htu, now) {
        Ok(p) => p,
        Err(why) => {
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "invalid_dpop_proof",
                &why,
            ))
        }
    };
    let st = sb.state::<State>();
    let mut inner = st.inner.lock().expect("signin lock");
    if !inner.seen_jti.insert(jkt.1.clone()) {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "invalid_dpop_proof",
            "the DPoP proof was already used (jti replayed)",
        ));
    }
    let refresh = field("refreshToken");
    let Some(session) = inner.sessions.get(&refresh).cloned() else {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "AccessDeniedException",
            "TOKEN_EXPIRED",
            "the refresh token is not valid; sign in again",
        ));
    };
    if session.jkt != jkt.0 {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "AccessDeniedException",
            "TOKEN_EXPIRED",
            "the DPoP key is not the key this session is bound to",
        ));
    }
    // Refresh tokens are used once: the answer carries the next one.
    inner.sessions.remove(&refresh);
    let next = format!("rt-{}", http::random_token(32));
    inner.sessions.insert(next.clone(), session.clone());
    inner.refreshed += 1;
    drop(inner);
    Ok(http::json(
        StatusCode::OK,
        &token_output(sb, &session, next),
    ))
}

/// Checks a DPoP proof for `POST htu` at `now`; returns the key's thumbprint and the `jti`.
pub fn verify_proof(proof: &str, htu: &str, now: i64) -> Result<(String, String), String> {
    let parts: Vec<&str> = proof.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err("the DPoP proof is not a JWS (three parts)".into());
    };
    let decode = |part: &str, what: &str| -> Result<Value, String> {
        let bytes = B64URL
            .decode(part)
            .map_err(|_| format!("the DPoP {what} is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| format!("the DPoP {what} is not JSON"))
    };
    let header = decode(h, "header")?;
    let claims = decode(p, "payload")?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err("the DPoP header's typ is not dpop+jwt".into());
    }
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err("the DPoP header's alg is not ES256".into());
    }
    let jwk = header.get("jwk").ok_or("the DPoP header has no jwk")?;
    let jkt = thumbprint(jwk).ok_or("the DPoP jwk is not a P-256 public key")?;
    if jwk.get("d").is_some() {
        return Err("the DPoP jwk carries a private key".into());
    }
    let coord = |k: &str| -> Result<Vec<u8>, String> {
        let c = B64URL
            .decode(jwk[k].as_str().unwrap_or_default())
            .map_err(|_| format!("the DPoP jwk's {k} is not base64url"))?;
        if c.len() != 32 {
            return Err(format!("the DPoP jwk's {k} is not 32 bytes"));
        }
        Ok(c)
    };
    let mut point = vec![4u8];
    point.extend(coord("x")?);
    point.extend(coord("y")?);
    let sig = B64URL
        .decode(s)
        .map_err(|_| "the DPoP signature is not base64url".to_string())?;
    let key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point);
    key.verify(format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|_| "the DPoP proof's signature does not verify with its jwk".to_string())?;
    if claims.get("htm").and_then(Value::as_str) != Some("POST") {
        return Err("the DPoP proof's htm is not POST".into());
    }
    let claimed = claims
        .get("htu")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // RFC 9449 §4.3: compared without query and fragment.
    let bare = claimed.split(['?', '#']).next().unwrap_or_default();
    if bare.trim_end_matches('/') != htu {
        return Err(format!(
            "the DPoP proof's htu {claimed:?} is not this endpoint ({htu})"
        ));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or("the DPoP proof has no iat")?;
    if (iat - now).abs() > IAT_WINDOW_SECS {
        return Err(format!(
            "the DPoP proof's iat is {}s away from now",
            iat - now
        ));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or("the DPoP proof has no jti")?;
    Ok((jkt, jti.to_string()))
}
