//! What entra-saml keeps in the secret store so that a restart costs no browser: each role's
//! last STS credentials (they can only be fetched again through a browser sign-in) and the last
//! assertion's `SessionNotOnOrAfter`. The assertion itself is never stored.
//!
//! Keys, all under `saml/<source>/` (so a logout drops them with one prefix):
//! - `saml/<source>/creds/<role ARN>`: [`StoredCreds`]
//! - `saml/<source>/session`: [`StoredSession`]

use crate::sources::RoleCredentials;
use crate::vault::SecretStore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Every key of the source starts with this.
pub(super) fn prefix(source: &str) -> String {
    format!("saml/{source}/")
}

pub(super) fn creds_key(source: &str, role_arn: &str) -> String {
    format!("saml/{source}/creds/{role_arn}")
}

pub(super) fn session_key(source: &str) -> String {
    format!("saml/{source}/session")
}

/// One role's STS credentials, as redeemed from an assertion.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct StoredCreds {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    /// Epoch seconds.
    pub expiration: i64,
    account_id: String,
    pub role_arn: String,
    /// The SAML provider the role was assumed with: a profile naming another one does not get
    /// these.
    pub principal: String,
}

impl std::fmt::Debug for StoredCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCreds")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &"** redacted **")
            .field("expiration", &self.expiration)
            .field("role_arn", &self.role_arn)
            .field("principal", &self.principal)
            .finish()
    }
}

impl StoredCreds {
    pub fn new(c: &RoleCredentials, principal: &str) -> Self {
        StoredCreds {
            access_key_id: c.access_key_id.clone(),
            secret_access_key: c.secret_access_key.to_string(),
            session_token: c.session_token.to_string(),
            expiration: c.expiration,
            account_id: c.account_id.clone(),
            role_arn: c.role_arn.clone(),
            principal: principal.to_string(),
        }
    }

    pub fn to_credentials(&self) -> RoleCredentials {
        RoleCredentials {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: Zeroizing::new(self.secret_access_key.clone()),
            session_token: Zeroizing::new(self.session_token.clone()),
            expiration: self.expiration,
            account_id: self.account_id.clone(),
            role_arn: self.role_arn.clone(),
        }
    }
}

impl Drop for StoredCreds {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

/// The last assertion's session end, as Entra declared it (no secret in it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredSession {
    pub session_not_on_or_after: i64,
}

/// Every stored role credential of the source.
pub(super) fn all_creds(vault: &SecretStore, source: &str) -> Vec<StoredCreds> {
    let p = format!("{}creds/", prefix(source));
    vault
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(&p))
        .filter_map(|k| vault.get::<StoredCreds>(&k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_round_trip_keeps_everything() {
        let c = RoleCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Zeroizing::new("sekrit-key".into()),
            session_token: Zeroizing::new("sekrit-token".into()),
            expiration: 1_800_000_000,
            account_id: "333333333333".into(),
            role_arn: "arn:aws:iam::333333333333:role/EntraAdmin".into(),
        };
        let s = StoredCreds::new(&c, "arn:aws:iam::333333333333:saml-provider/EntraID");
        let text = format!("{s:?}");
        assert!(!text.contains("sekrit"), "{text}");
        let back = s.to_credentials();
        assert_eq!(back.secret_access_key.as_str(), "sekrit-key");
        assert_eq!(back.session_token.as_str(), "sekrit-token");
        assert_eq!(
            (back.expiration, back.account_id.as_str()),
            (1_800_000_000, "333333333333")
        );
        assert_eq!(
            creds_key("legacy", &c.role_arn),
            "saml/legacy/creds/arn:aws:iam::333333333333:role/EntraAdmin"
        );
        assert!(creds_key("legacy", "x").starts_with(&prefix("legacy")));
        assert!(!creds_key("legacy", "x").starts_with(&prefix("leg")));
    }
}
