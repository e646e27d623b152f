//! What an entra-oidc source keeps in the secret store: one record under
//! `oidc/<source>/token` with the Entra refresh token, the token STS receives (the ID token, or
//! the custom API's access token) and its expiry, and the settings it was obtained for (a
//! changed tenant, client, authority, token kind or scope makes it unusable).

use serde::{Deserialize, Serialize};
use std::fmt;

pub fn token_key(source: &str) -> String {
    format!("oidc/{source}/token")
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The token given to STS as `WebIdentityToken`.
    pub web_identity_token: String,
    /// Its `exp` (epoch seconds).
    pub expires_at: i64,
    /// Entra's refresh token (rotated on every use).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// `upn` / `preferred_username` of the signed-in user, for the role session name.
    #[serde(default)]
    pub user: Option<String>,
    /// `pkce` or `device`.
    pub flow: String,
    /// What it was obtained for.
    pub binding: Binding,
}

/// The settings a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    /// `id_token` or `access_token`.
    pub token: String,
    pub scope: String,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("web_identity_token", &"** redacted **")
            .field("expires_at", &self.expires_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "** redacted **"),
            )
            .field("user", &self.user)
            .field("flow", &self.flow)
            .field("binding", &self.binding)
            .finish()
    }
}

impl crate::sources::common::renew_once::Expiring for Session {
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
    fn same_token(&self, other: &Self) -> bool {
        self.web_identity_token == other.web_identity_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_tokens() {
        let s = Session {
            web_identity_token: "eyJ.secret.x".into(),
            expires_at: 1,
            refresh_token: Some("0.Asecret".into()),
            user: Some("alice@x".into()),
            flow: "device".into(),
            binding: Binding {
                authority: "a".into(),
                tenant: "t".into(),
                client_id: "c".into(),
                token: "id_token".into(),
                scope: "openid".into(),
            },
        };
        let d = format!("{s:?}");
        assert!(!d.contains("secret") && d.contains("alice@x"), "{d}");
        assert_eq!(token_key("h"), "oidc/h/token");
    }
}
