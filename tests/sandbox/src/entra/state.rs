//! Entra's mutable state in the sandbox: device codes, authorization codes, refresh tokens,
//! browser sessions (the `ESTSAUTHPERSISTENT` cookie) and the SAML test switches.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;

/// A device code handed out by `/devicecode`.
#[derive(Debug, Clone)]
pub struct DeviceGrant {
    pub client_id: String,
    pub scope: String,
    pub pending_id: String,
    pub expires: OffsetDateTime,
    pub interval_secs: u64,
    pub last_poll: Option<OffsetDateTime>,
}

/// An authorization code from `/authorize`, redeemable once.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub user: String,
    pub expires: OffsetDateTime,
    pub redeemed: bool,
}

/// A refresh token (Entra keeps used ones valid until they expire or are revoked).
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub scope: String,
    pub user: String,
    pub expires: OffsetDateTime,
    pub revoked: bool,
}

/// How SAML responses are produced; tests flip these through the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamlOptions {
    /// `trusted` (default), `unsigned`, or `rogue` (signed by a key nobody trusts).
    pub signing: SamlSigning,
    /// Overrides the assertion validity (Conditions window), seconds.
    pub validity_secs: Option<u64>,
    /// Overrides Destination/Recipient (e.g. a loopback ACS, which STS must refuse).
    pub recipient: Option<String>,
    /// Overrides the Audience.
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamlSigning {
    #[default]
    Trusted,
    Unsigned,
    Rogue,
}

/// Maps keyed by codes, tokens and cookies: no Debug, so none of them can reach a log.
#[derive(Default)]
pub struct Inner {
    pub devices: HashMap<String, DeviceGrant>,
    pub codes: HashMap<String, CodeGrant>,
    pub refresh: HashMap<String, RefreshGrant>,
    /// Session cookie value (`ESTSAUTHPERSISTENT`) → UPN.
    pub sessions: HashMap<String, String>,
    pub saml: SamlOptions,
}

/// The typed state slot (`sb.state::<EntraState>()`).
#[derive(Default)]
pub struct EntraState {
    inner: Mutex<Inner>,
}

// Counts only: the keys are device codes, authorization codes, refresh tokens and cookies.
impl std::fmt::Debug for EntraState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.lock();
        f.debug_struct("EntraState")
            .field("devices", &g.devices.len())
            .field("codes", &g.codes.len())
            .field("refresh_tokens", &g.refresh.len())
            .field("sessions", &g.sessions.len())
            .field("saml", &g.saml)
            .finish()
    }
}

impl EntraState {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Revokes every refresh token and browser session of `user` (all users if `None`), as
    /// Graph's `revokeSignInSessions` does. Returns how many refresh tokens were revoked.
    pub fn revoke(&self, user: Option<&str>) -> usize {
        let mut g = self.lock();
        let matches = |u: &str| user.is_none_or(|x| x.eq_ignore_ascii_case(u));
        let mut n = 0;
        for r in g.refresh.values_mut() {
            if matches(&r.user) && !r.revoked {
                r.revoked = true;
                n += 1;
            }
        }
        g.sessions.retain(|_, u| !matches(u));
        n
    }
}
