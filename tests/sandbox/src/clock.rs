//! The sandbox's time source and the configurable lifetimes of everything it issues.
//!
//! Tests move time forward with the admin API (`POST /_sandbox/clock`) instead of sleeping,
//! and shorten lifetimes (`POST /_sandbox/lifetimes`) to exercise expiry in seconds.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// Wall clock plus an offset that only moves forward by admin request.
#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    pub fn now_unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Moves the sandbox clock forward (negative values are refused by the caller).
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }

    pub fn offset_secs(&self) -> i64 {
        self.offset_secs.load(Ordering::Relaxed)
    }
}

/// Lifetimes of issued things, in seconds. `role_credentials_secs = None` means "the permission
/// set's session duration" (portal) or "the requested/role duration" (STS).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Lifetimes {
    pub role_credentials_secs: Option<u64>,
    /// Identity Center OIDC access tokens.
    pub access_token_secs: u64,
    /// Identity Center refresh tokens (the Identity Center session length).
    pub refresh_token_secs: u64,
    /// Device codes (Identity Center and Entra).
    pub device_code_secs: u64,
    /// Minimum polling interval announced with device codes.
    pub device_interval_secs: u64,
    /// Authorization codes from `/authorize` (Identity Center and Entra).
    pub auth_code_secs: u64,
    /// Pending `/authorize` browser requests.
    pub authorize_request_secs: u64,
    /// Identity Center OIDC client registrations (`clientSecretExpiresAt`).
    pub client_registration_secs: u64,
    /// Entra access and ID tokens.
    pub entra_access_token_secs: u64,
    /// Entra refresh tokens.
    pub entra_refresh_token_secs: u64,
    /// Validity window of SAML assertions (Conditions NotBefore..NotOnOrAfter).
    pub saml_assertion_secs: u64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        // Values as the real services announce them by default.
        Lifetimes {
            role_credentials_secs: None,
            access_token_secs: 3600,
            refresh_token_secs: 8 * 3600,
            device_code_secs: 600,
            device_interval_secs: 1,
            auth_code_secs: 300,
            authorize_request_secs: 600,
            client_registration_secs: 90 * 24 * 3600,
            entra_access_token_secs: 3600,
            entra_refresh_token_secs: 90 * 24 * 3600,
            saml_assertion_secs: 300,
        }
    }
}

impl Lifetimes {
    /// Applies a partial JSON object (only the given members change).
    pub fn merge_json(&mut self, patch: &serde_json::Value) -> Result<(), String> {
        let mut current = serde_json::to_value(&*self).map_err(|e| e.to_string())?;
        let (Some(cur), Some(p)) = (current.as_object_mut(), patch.as_object()) else {
            return Err("lifetimes must be a JSON object".into());
        };
        for (k, v) in p {
            if !cur.contains_key(k) {
                return Err(format!("unknown lifetime '{k}'"));
            }
            cur.insert(k.clone(), v.clone());
        }
        let next: Lifetimes = serde_json::from_value(current).map_err(|e| e.to_string())?;
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now() {
        let c = Clock::default();
        let a = c.now_unix();
        c.advance(3600);
        assert!(c.now_unix() >= a + 3600);
    }

    #[test]
    fn merge_partial_and_refuse_unknown() {
        let mut l = Lifetimes::default();
        l.merge_json(&serde_json::json!({"access_token_secs": 5, "role_credentials_secs": 60}))
            .unwrap();
        assert_eq!(l.access_token_secs, 5);
        assert_eq!(l.role_credentials_secs, Some(60));
        assert_eq!(l.refresh_token_secs, 8 * 3600);
        assert!(l.merge_json(&serde_json::json!({"nope": 1})).is_err());
        assert!(l
            .merge_json(&serde_json::json!({"access_token_secs": "x"}))
            .is_err());
    }
}
