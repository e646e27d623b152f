//! Reading the few JWT claims rolecall needs (`exp`, `aud`, the user's name) and turning the
//! user's name into an STS `RoleSessionName`.
//!
//! The payload is decoded without checking the signature on purpose: STS verifies the token
//! against the IAM OIDC provider's keys, and rolecall only uses these claims to schedule renewal,
//! to name the session and to refuse Graph tokens early with a clear message.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

/// Microsoft Graph's application id: the audience of Graph access tokens.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The claims of one token that rolecall looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Epoch seconds.
    pub exp: Option<i64>,
    pub aud: Vec<String>,
    pub iss: Option<String>,
    /// `upn`, else `preferred_username`, else `unique_name`, else `email`.
    pub user: Option<String>,
}

/// Why a token's claims cannot be read. The message never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the token is not a JWT (expected three dot-separated parts)")]
    NotJwt,
    #[error("the token's payload is not base64url")]
    NotBase64,
    #[error("the token's payload is not a JSON object")]
    NotJson,
}

/// Decodes the payload of a compact JWS. The error never contains the token.
pub fn decode(token: &str) -> Result<Claims, ClaimsError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClaimsError::NotJwt);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| ClaimsError::NotBase64)?;
    let map: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| ClaimsError::NotJson)?;
    let s = |k: &str| {
        map.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let aud = match map.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Claims {
        exp: map.get("exp").and_then(Value::as_i64),
        aud,
        iss: s("iss"),
        user: s("upn")
            .or_else(|| s("preferred_username"))
            .or_else(|| s("unique_name"))
            .or_else(|| s("email")),
    })
}

/// Whether an audience is Microsoft Graph (whose tokens STS must never be given: they are
/// not meant for AWS, and an IAM OIDC provider trusting them would trust every Graph token).
pub fn is_graph_audience(aud: &str) -> bool {
    let a = aud.trim_end_matches('/').to_ascii_lowercase();
    a == GRAPH_APP_ID
        || a == "https://graph.microsoft.com"
        || a.starts_with("https://graph.microsoft.com/")
}

/// Whether a scope string asks for Microsoft Graph: a bare permission (`User.Read`), or a
/// Graph resource prefix. The OIDC scopes do not count.
pub fn scope_is_graph(scope: &str) -> bool {
    scope
        .split_whitespace()
        .filter(|s| !matches!(*s, "openid" | "profile" | "email" | "offline_access"))
        .any(|s| {
            let l = s.to_ascii_lowercase();
            !s.contains('/')
                || l.starts_with("https://graph.microsoft.com/")
                || l.starts_with(GRAPH_APP_ID)
        })
}

/// STS accepts `RoleSessionName` of 2–64 characters of `[\w+=,.@-]`.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// `template` with `{upn}` replaced by `upn`, made acceptable to STS: other characters become
/// `-`, the result is cut to 64 characters, and one that ends up shorter than 2 is padded.
pub fn session_name(template: &str, upn: &str) -> String {
    let raw = template.replace("{upn}", upn);
    let mut name: String = raw
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .take(64)
        .collect();
    if name.chars().count() < 2 {
        name = format!("rolecall-{name}").chars().take(64).collect();
        name = name.trim_end_matches('-').to_string();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload.as_bytes())
        )
    }

    #[test]
    fn reads_exp_aud_and_the_user() {
        let c = decode(&jwt(
            r#"{"exp":1700000000,"aud":"abc","iss":"https://x/v2.0","preferred_username":"p@x","upn":"u@x"}"#,
        ))
        .unwrap();
        assert_eq!(c.exp, Some(1_700_000_000));
        assert_eq!(c.aud, vec!["abc".to_string()]);
        assert_eq!(c.user.as_deref(), Some("u@x"));
        let c = decode(&jwt(r#"{"aud":["a","b"],"preferred_username":"p@x"}"#)).unwrap();
        assert_eq!(c.aud.len(), 2);
        assert_eq!(c.user.as_deref(), Some("p@x"));
        assert_eq!(c.exp, None);
    }

    #[test]
    fn malformed_tokens_are_errors_without_the_token() {
        for t in ["", "a.b", "a.!!!.c", &jwt("[1]"), "a.b.c.d"] {
            let e = decode(t).unwrap_err().to_string();
            assert!(!t.is_empty() && !e.contains(t) || t.is_empty(), "{e}");
        }
    }

    #[test]
    fn graph_is_recognised() {
        assert!(is_graph_audience(GRAPH_APP_ID));
        assert!(is_graph_audience("https://graph.microsoft.com"));
        assert!(is_graph_audience("https://graph.microsoft.com/"));
        assert!(!is_graph_audience("api://rolecall-aws"));
        assert!(scope_is_graph("User.Read"));
        assert!(scope_is_graph("https://graph.microsoft.com/.default"));
        assert!(scope_is_graph(
            "00000003-0000-0000-c000-000000000000/.default"
        ));
        assert!(!scope_is_graph("api://rolecall-aws/.default"));
        assert!(!scope_is_graph("openid offline_access api://x/.default"));
    }

    #[test]
    fn session_names_follow_sts_rules() {
        assert_eq!(
            session_name("{upn}", "alice@contoso.com"),
            "alice@contoso.com"
        );
        assert_eq!(
            session_name("ci-{upn}", "Jürgen Müller@x.de"),
            "ci-J-rgen-M-ller@x.de"
        );
        let long = "a".repeat(100);
        assert_eq!(session_name("{upn}", &long).len(), 64);
        assert_eq!(session_name("{upn}", "x"), "rolecall-x");
        assert_eq!(session_name("{upn}", ""), "rolecall");
        for n in [session_name("{upn}", "ä"), session_name("a b/c", "")] {
            assert!((2..=64).contains(&n.len()) && n.chars().all(allowed), "{n}");
        }
    }
}
