//! Checked SAML responses held for redemption: accepting a captured response (checked,
//! never replayed), handing it out for one redemption at a time, and the credentials stored
//! from earlier redemptions.

use super::stored;
use super::{lock, EntraSaml, STORED_FRESH_SECS, STORED_VALID_SECS};
use crate::config::ProfileConfig;
use crate::saml::response::{check, Checked, Expectations, RolePair, SamlError};
use crate::saml::SamlResponse;
use crate::sources::{RoleCredentials, SourceError};
use std::collections::HashMap;

/// A checked response, held for redemption until it expires.
pub(super) struct Held {
    pub(super) response: SamlResponse,
    pub(super) checked: Checked,
    /// Epoch seconds after which it is not used.
    pub(super) usable_until: i64,
    /// Which accepted response this is (counts up), to tell a fresh one from the one in use.
    pub(super) generation: u64,
    /// STS accepted it at least once: a later `InvalidIdentityToken` is a refused second use.
    pub(super) redeemed: bool,
}

/// A held response handed out for one redemption.
pub(super) struct Lease {
    pub(super) response: SamlResponse,
    pub(super) checked: Checked,
    pub(super) generation: u64,
    pub(super) redeemed: bool,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) held: Option<Held>,
    /// The Role values of the last assertion (not secret).
    pub(super) roles: Vec<RolePair>,
    /// Assertion IDs already accepted, with when they stop mattering (replay defence).
    pub(super) seen: HashMap<String, i64>,
    /// The generation of the last accepted response.
    pub(super) generation: u64,
}

impl EntraSaml {
    /// Checks a response and, when it passes, holds it and records its roles. Nothing is kept
    /// from a response that fails.
    pub(super) fn accept(
        &self,
        response: SamlResponse,
        request_id: Option<&str>,
    ) -> Result<(), SamlError> {
        let now_t = self.clock.now_utc();
        let exp = Expectations {
            app_identifier: &self.cfg.app_identifier,
            in_response_to: request_id,
            certs: self.certs.as_deref(),
            now: now_t,
            skew: time::Duration::seconds(self.timeouts.skew.as_secs() as i64),
        };
        let checked = check(response.expose(), &exp)?;
        let now = now_t.unix_timestamp();
        let mut st = lock(&self.state);
        st.seen.retain(|_, until| *until > now);
        let usable_until = match &checked {
            Checked::Assertion(a) => {
                if st.seen.contains_key(&a.id) {
                    return Err(SamlError::Replayed(a.id.clone()));
                }
                // Remembered past its end plus the skew, so a replay is refused while it could
                // still pass the time checks.
                st.seen.insert(
                    a.id.clone(),
                    a.not_on_or_after + self.timeouts.skew.as_secs() as i64,
                );
                st.roles = a.roles.clone();
                if let Some(end) = a.session_not_on_or_after {
                    self.keep(
                        &stored::session_key(&self.name),
                        &stored::StoredSession {
                            session_not_on_or_after: end,
                        },
                    );
                }
                a.not_on_or_after
            }
            // Unreadable here; Entra's assertions live five minutes.
            Checked::Encrypted => now + 240,
        };
        st.generation += 1;
        st.held = Some(Held {
            response,
            checked,
            usable_until,
            generation: st.generation,
            redeemed: false,
        });
        Ok(())
    }

    pub(super) fn held_usable(&self) -> Option<Lease> {
        let st = lock(&self.state);
        let h = st.held.as_ref()?;
        // A margin for the STS round trip.
        (h.usable_until - self.clock.now() > 10).then(|| Lease {
            response: h.response.clone(),
            checked: h.checked.clone(),
            generation: h.generation,
            redeemed: h.redeemed,
        })
    }

    /// After STS accepted the response of `generation`.
    pub(super) fn mark_redeemed(&self, generation: u64) {
        if let Some(h) = lock(&self.state).held.as_mut() {
            if h.generation == generation {
                h.redeemed = true;
            }
        }
    }

    /// The response to redeem for `profile`: the held one, else (after a restart) the stored
    /// credentials while fresh (`Err` of the inner result), else a silent capture's. When the
    /// user is needed, stored credentials that are still valid serve meanwhile.
    pub(super) async fn current_assertion(
        &self,
        profile: &ProfileConfig,
    ) -> Result<Result<Lease, RoleCredentials>, SourceError> {
        if let Some(l) = self.held_usable() {
            return Ok(Ok(l));
        }
        // After a restart: the stored credentials, while fresh, cost no browser.
        if let Some(c) = self.stored_for(profile, STORED_FRESH_SECS) {
            return Ok(Err(c));
        }
        let _one = self.capturing.lock().await;
        // Another caller may have renewed while this one waited.
        if let Some(l) = self.held_usable() {
            return Ok(Ok(l));
        }
        if let Err(e) = self.silent_capture().await {
            // The user is needed, but what is stored still works meanwhile.
            if let (SourceError::NeedsLogin(_), Some(c)) =
                (&e, self.stored_for(profile, STORED_VALID_SECS))
            {
                tracing::info!(source = %self.name, role = %profile.role, error = %e, "serving the stored credentials; only a sign-in renews them");
                return Ok(Err(c));
            }
            return Err(e);
        }
        self.held_usable().map(Ok).ok_or_else(|| {
            SourceError::NeedsLogin(
                "the silent sign-in's assertion expired at once (check the clock)".into(),
            )
        })
    }

    /// Forgets the response of `generation` (STS will not take it again).
    pub(super) fn drop_held(&self, generation: u64) {
        let mut st = lock(&self.state);
        if st.held.as_ref().is_some_and(|h| h.generation == generation) {
            st.held = None;
        }
    }

    /// Writes a store entry; a failure costs only a capture after a restart, so it is logged.
    pub(super) fn keep<T: serde::Serialize>(&self, key: &str, v: &T) {
        if let Err(e) = self.vault.put(key, v) {
            tracing::warn!(source = %self.name, error = %e, "could not keep SAML session data in the secret store");
        }
    }

    /// The stored credentials for the profile's role with more than `min_left` seconds left.
    pub(super) fn stored_for(
        &self,
        profile: &ProfileConfig,
        min_left: i64,
    ) -> Option<RoleCredentials> {
        let c: stored::StoredCreds = self
            .vault
            .get(&stored::creds_key(&self.name, &profile.role))?;
        let principal_ok = profile
            .principal
            .as_deref()
            .is_none_or(|p| p == c.principal);
        (principal_ok && c.expiration - self.clock.now() > min_left).then(|| c.to_credentials())
    }
}

pub(super) fn check_error(e: SamlError) -> SourceError {
    if e.needs_user() {
        SourceError::LoginCancelled(e.to_string())
    } else {
        SourceError::AccessDenied(format!("SAML response refused: {e}"))
    }
}
