//! What an identity-center source keeps in the secret store, and under which keys.
//!
//! - `ic/<source>/registration/<flow>`: the OIDC client registration of one flow (`pkce` or
//!   `device`), kept until shortly before `clientSecretExpiresAt`.
//! - `ic/<source>/token`: the access token, its expiry, the refresh token and which
//!   registration issued them (a refresh must use the same client).
//! - `ic/<source>/refused-cache-tokens`: SHA-256 fingerprints of ended sessions' access
//!   tokens, never taken from the AWS CLI's cache again.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The two login flows, each with its own client registration (as the AWS CLI v2 does), and
/// sessions taken from the AWS CLI's SSO cache, renewed with the registration cached with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    Pkce,
    Device,
    #[serde(rename = "aws-cli")]
    AwsCli,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Pkce => "pkce",
            Flow::Device => "device",
            Flow::AwsCli => "aws-cli",
        }
    }
}

pub fn registration_key(source: &str, flow: Flow) -> String {
    format!("ic/{source}/registration/{}", flow.as_str())
}

pub fn token_key(source: &str) -> String {
    format!("ic/{source}/token")
}

/// Fingerprints of access tokens whose session ended here (logout, revoked): the AWS CLI's
/// cache may still hold them, and they must not be taken from it again.
pub fn refused_key(source: &str) -> String {
    format!("ic/{source}/refused-cache-tokens")
}

/// A RegisterClient answer.
#[derive(Clone, Serialize, Deserialize)]
pub struct Registration {
    pub client_id: String,
    pub client_secret: String,
    /// Epoch seconds.
    pub issued_at: i64,
    /// `clientSecretExpiresAt`, epoch seconds.
    pub expires_at: i64,
    /// The (resolved) start URL and region it was registered for: a changed config means a
    /// new registration.
    pub start_url: String,
    pub region: String,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field("client_secret", &"** redacted **")
            .field("expires_at", &self.expires_at)
            .field("start_url", &self.start_url)
            .finish()
    }
}

/// The Identity Center session: what CreateToken answered.
#[derive(Clone, Serialize, Deserialize)]
pub struct Token {
    pub access_token: String,
    /// Epoch seconds.
    pub expires_at: i64,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Which registration issued it.
    pub flow: Flow,
    pub client_id: String,
    /// The configured start URL and region it belongs to.
    pub start_url: String,
    pub region: String,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"** redacted **")
            .field("expires_at", &self.expires_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "** redacted **"),
            )
            .field("flow", &self.flow)
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl crate::sources::common::renew_once::Expiring for Token {
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
    fn same_token(&self, other: &Self) -> bool {
        self.access_token == other.access_token
    }
}
