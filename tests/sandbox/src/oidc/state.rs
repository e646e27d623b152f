//! Identity Center OIDC's mutable state: client registrations, device codes, authorization
//! codes, access and refresh tokens, and what the portal and the admin API ask of them.

use super::{GRANT_DEVICE, GRANT_REFRESH};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

/// A client registration. Debug redacts the secret.
#[derive(Clone)]
pub struct Client {
    pub client_id: String,
    pub(super) secret: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub issuer_url: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("grant_types", &self.grant_types)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Client {
    /// Whether this registration may use `grant` (legacy registrations without grant types
    /// are device-flow clients).
    pub(super) fn allows(&self, grant: &str) -> bool {
        if self.grant_types.is_empty() {
            return grant == GRANT_DEVICE;
        }
        self.grant_types.iter().any(|g| g == grant)
    }

    pub(super) fn issues_refresh_tokens(&self) -> bool {
        !self.scopes.is_empty() && (self.grant_types.is_empty() || self.allows(GRANT_REFRESH))
    }
}

#[derive(Debug, Clone)]
pub(super) struct Device {
    pub(super) client_id: String,
    pub(super) pending_id: String,
    pub(super) expires_at: i64,
    pub(super) interval: u64,
    pub(super) last_poll: Option<Instant>,
}

#[derive(Debug, Clone)]
pub(super) struct AuthCode {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) challenge: String,
    pub(super) scopes: Vec<String>,
    pub(super) user: String,
    pub(super) expires_at: i64,
}

/// What an access or refresh token stands for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Grant {
    pub user: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub session_id: String,
    pub expires_at: i64,
    pub revoked: bool,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) clients: HashMap<String, Client>,
    pub(super) devices: HashMap<String, Device>,
    pub(super) codes: HashMap<String, AuthCode>,
    pub(super) access: HashMap<String, Grant>,
    pub(super) refresh: HashMap<String, Grant>,
}

/// Identity Center OIDC state (`sb.state::<oidc::State>()`).
#[derive(Default)]
pub struct State {
    inner: Mutex<Inner>,
}

/// Why a bearer token was refused by the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Expired,
    Revoked,
}

impl State {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("oidc lock")
    }

    /// Checks a portal bearer token.
    pub fn check_access(&self, token: &str, now: i64) -> Result<Grant, TokenProblem> {
        let inner = self.lock();
        let g = inner.access.get(token).ok_or(TokenProblem::Unknown)?;
        if g.revoked {
            return Err(TokenProblem::Revoked);
        }
        if now >= g.expires_at {
            return Err(TokenProblem::Expired);
        }
        Ok(g.clone())
    }

    /// Ends the Identity Center session of an access token (portal Logout): its access and
    /// refresh tokens stop working.
    pub fn logout(&self, token: &str) -> bool {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(session) = inner.access.get(token).map(|g| g.session_id.clone()) else {
            return false;
        };
        for g in inner.access.values_mut().chain(inner.refresh.values_mut()) {
            if g.session_id == session {
                g.revoked = true;
            }
        }
        true
    }

    /// Makes matching access tokens expired now; returns how many.
    pub fn expire_access(
        &self,
        user: Option<&str>,
        client: Option<&str>,
        token: Option<&str>,
        now: i64,
    ) -> usize {
        let mut inner = self.lock();
        let mut n = 0;
        for (t, g) in inner.access.iter_mut() {
            if matches(g, user, client) && token.is_none_or(|x| x == t) && g.expires_at > now {
                g.expires_at = now;
                n += 1;
            }
        }
        n
    }

    /// Revokes matching refresh tokens; returns how many.
    pub fn revoke_refresh(&self, user: Option<&str>, client: Option<&str>) -> usize {
        let mut inner = self.lock();
        let mut n = 0;
        for g in inner.refresh.values_mut() {
            if matches(g, user, client) && !g.revoked {
                g.revoked = true;
                n += 1;
            }
        }
        n
    }

    /// Makes a client registration expired now.
    pub fn expire_client(&self, client_id: &str, now: i64) -> bool {
        match self.lock().clients.get_mut(client_id) {
            Some(c) => {
                c.expires_at = now;
                true
            }
            None => false,
        }
    }

    /// A summary for the admin API (no secrets, no tokens).
    pub fn summary(&self) -> Value {
        let inner = self.lock();
        let clients: Vec<Value> = inner
            .clients
            .values()
            .map(|c| {
                json!({"clientId": c.client_id, "clientName": c.name, "scopes": c.scopes,
                       "grantTypes": c.grant_types, "clientSecretExpiresAt": c.expires_at})
            })
            .collect();
        let sessions = |m: &HashMap<String, Grant>| -> Vec<Value> {
            m.values()
                .map(|g| {
                    json!({"user": g.user, "clientId": g.client_id, "sessionId": g.session_id,
                               "expiresAt": g.expires_at, "revoked": g.revoked})
                })
                .collect()
        };
        json!({"clients": clients, "accessTokens": sessions(&inner.access),
               "refreshTokens": sessions(&inner.refresh)})
    }
}

fn matches(g: &Grant, user: Option<&str>, client: Option<&str>) -> bool {
    user.is_none_or(|u| g.user.eq_ignore_ascii_case(u)) && client.is_none_or(|c| g.client_id == c)
}
