//! What callers ask for: a profile's credentials (from the cache while fresh, else one shared
//! fetch, with a login when the source needs one and the caller may wait), chained profiles
//! through their parent, and the refresh scheduler's forced refetches.

use super::cache::CacheKey;
use super::errors::{fetch_error_body, parent_failed};
use super::{lock, Broker, CredentialRequest, Outcome, EXPIRY_MARGIN_SECS};
use crate::config::ProfileConfig;
use crate::sources::{RoleCredentials, SessionState, SourceError};
use rolecall_proto::api::{ErrorBody, ErrorCode};
use std::sync::Arc;

impl Broker {
    /// Credentials for `profile`, narrowed by its session policies when it declares some
    /// (`scoped`).
    pub async fn credentials(
        self: &Arc<Self>,
        profile: &str,
        req: CredentialRequest,
    ) -> Result<RoleCredentials, ErrorBody> {
        match self
            .profile(profile)
            .as_ref()
            .and_then(super::scoped::profile_scope)
        {
            Some(scope) => self.scoped_credentials(profile, &scope, req).await,
            None => self.unscoped_credentials(profile, req).await,
        }
    }

    /// Credentials for `profile`: cached when they have more than `refresh_ahead` left (or as
    /// much as the upstream gives), else fetched once for all concurrent callers.
    pub(super) async fn unscoped_credentials(
        self: &Arc<Self>,
        profile: &str,
        req: CredentialRequest,
    ) -> Result<RoleCredentials, ErrorBody> {
        let (pc, source) = self.resolve(profile)?;
        let key = CacheKey::of(&self.registry(), &pc);
        let now = self.clock.now();
        lock(&self.profiles)
            .entry(profile.to_string())
            .or_default()
            .last_used = Some(now);
        let refresh_ahead = self.daemon_config().refresh_ahead.as_secs() as i64;
        if let Some(c) = self.cached_fresh(&key, now, refresh_ahead) {
            return Ok(c);
        }
        if self.deferred(profile, now) {
            if let Some(c) = self.cached_valid(&key, now) {
                return Ok(c);
            }
        }
        if let Some(parent) = pc.via.clone() {
            return self
                .chained_credentials(profile, &parent, &pc, &key, refresh_ahead, req)
                .await;
        }
        let mut login_done = false;
        let mut refetched_after_login = false;
        loop {
            // After a login that redeemed every profile of the source, this one may be cached.
            if login_done {
                if let Some(c) = self.cached_fresh(&key, self.clock.now(), refresh_ahead) {
                    return Ok(c);
                }
            }
            let outcome = self
                .fetch_shared(&key, profile, &pc, &source, None, Some(refresh_ahead))
                .await;
            let now = self.clock.now();
            let err = match outcome {
                Ok(c) if c.expiration - now > EXPIRY_MARGIN_SECS => return Ok(c),
                Ok(_) => Arc::new(SourceError::Upstream {
                    message: format!(
                        "source '{}' returned credentials that are already expired (check the clock)",
                        pc.source
                    ),
                    retryable: false,
                }),
                Err(e) => e,
            };
            // Still-valid credentials beat an error.
            if let Some(c) = self.cached_valid(&key, now) {
                tracing::warn!(profile, error = %err, "serving cached credentials while the upstream fails");
                return Ok(c);
            }
            match &*err {
                SourceError::NeedsLogin(_) if !login_done => {
                    self.await_login(&pc.source, source.clone(), req).await?;
                    login_done = true;
                }
                // A fetch that started before the login finished may still say "needs login":
                // with a session now, one more fetch (never another login).
                SourceError::NeedsLogin(_) if login_done && !refetched_after_login => {
                    if source.session_state().await == SessionState::NeedsLogin {
                        return Err(fetch_error_body(&pc.source, &err));
                    }
                    refetched_after_login = true;
                }
                e => return Err(fetch_error_body(&pc.source, e)),
            }
        }
    }

    /// A chained profile: the parent's credentials through the broker (cached, refreshed, and
    /// signed in like any client's), then one AssumeRole for all concurrent callers.
    pub(super) async fn chained_credentials(
        self: &Arc<Self>,
        profile: &str,
        parent: &str,
        pc: &ProfileConfig,
        key: &CacheKey,
        refresh_ahead: i64,
        req: CredentialRequest,
    ) -> Result<RoleCredentials, ErrorBody> {
        let (_, source) = self.resolve(profile)?;
        let parent_creds = Box::pin(self.credentials(parent, req))
            .await
            .map_err(|e| parent_failed(profile, parent, e))?;
        // The parent's fetch may have let another caller's AssumeRole run and finish meanwhile:
        // `refresh_ahead` lets the flight step take what it cached.
        let outcome = self
            .fetch_shared(
                key,
                profile,
                pc,
                &source,
                Some(parent_creds),
                Some(refresh_ahead),
            )
            .await;
        let now = self.clock.now();
        match outcome {
            Ok(c) if c.expiration - now > EXPIRY_MARGIN_SECS => Ok(c),
            Ok(_) => Err(ErrorBody::new(
                ErrorCode::Upstream,
                format!("profile '{profile}': AssumeRole returned credentials that are already expired (check the clock)"),
            )),
            Err(err) => {
                if let Some(c) = self.cached_valid(key, now) {
                    tracing::warn!(profile, error = %err, "serving cached credentials while AssumeRole fails");
                    return Ok(c);
                }
                Err(fetch_error_body(&pc.source, &err))
            }
        }
    }

    /// The parent's credentials for a refresh of a chained profile: cached ones while fresh,
    /// else fetched without a login.
    pub(super) async fn parent_for_refresh(
        self: &Arc<Self>,
        profile: &str,
        parent: &str,
    ) -> Result<RoleCredentials, Arc<SourceError>> {
        let reg = self.registry();
        if let Some(ppc) = reg.config.profiles.get(parent) {
            let refresh_ahead = reg.config.daemon.refresh_ahead.as_secs() as i64;
            if let Some(c) =
                self.cached_fresh(&CacheKey::of(&reg, ppc), self.clock.now(), refresh_ahead)
            {
                return Ok(c);
            }
        }
        Box::pin(self.refresh_credentials(parent))
            .await
            .map_err(|e| {
                let msg = format!("profile '{profile}' uses '{parent}', which failed: {e}");
                Arc::new(e.with_message(msg))
            })
    }

    /// Fetches a profile's credentials now, whatever the cache holds, through the clients'
    /// single-flight path (a client arriving meanwhile joins this fetch, and this one joins a
    /// client's). Never starts a login. The new credentials' expiry on success.
    pub async fn refresh_now(self: &Arc<Self>, profile: &str) -> Result<i64, Arc<SourceError>> {
        self.refresh_credentials(profile)
            .await
            .map(|c| c.expiration)
    }

    /// [`Self::refresh_now`], answering the credentials. A chained profile's parent is taken
    /// from the cache while fresh, else refreshed the same way first.
    pub(super) async fn refresh_credentials(self: &Arc<Self>, profile: &str) -> Outcome {
        let (pc, source) = self
            .resolve(profile)
            .map_err(|e| Arc::new(SourceError::Config(e.message)))?;
        let key = CacheKey::of(&self.registry(), &pc);
        let parent = match pc.via.as_deref() {
            Some(parent) => Some(self.parent_for_refresh(profile, parent).await?),
            None => None,
        };
        self.fetch_shared(&key, profile, &pc, &source, parent, None)
            .await
    }

    /// The refresh scheduler backs off a failing upstream: until `until` (epoch seconds), or
    /// `None` to stop, clients of `profile` holding still-valid credentials get them without
    /// a fetch (which would only wait for the same failure and add to the load).
    pub fn defer_fetches(&self, profile: &str, until: Option<i64>) {
        lock(&self.profiles)
            .entry(profile.to_string())
            .or_default()
            .defer_until = until;
    }

    pub(super) fn deferred(&self, profile: &str, now: i64) -> bool {
        lock(&self.profiles)
            .get(profile)
            .and_then(|p| p.defer_until)
            .is_some_and(|t| now < t)
    }

    /// Profiles used since `since` (epoch seconds), for the refresh scheduler.
    pub fn recently_used(&self, since: i64) -> Vec<String> {
        lock(&self.profiles)
            .iter()
            .filter(|(_, p)| p.last_used.is_some_and(|t| t >= since))
            .map(|(n, _)| n.clone())
            .collect()
    }
}
