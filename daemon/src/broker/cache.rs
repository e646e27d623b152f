//! The in-memory credential cache: its key, what an entry remembers of its fetch, and when an
//! entry is fresh enough to serve without a fetch.

use super::{chain, lock, Broker, Registry, EXPIRY_MARGIN_SECS};
use crate::config::ProfileConfig;
use crate::sources::RoleCredentials;

/// Two fetches of one profile's credentials are at least this far apart (seconds) when short
/// sessions are refetched early to keep more than `refresh_ahead` left.
pub const MIN_REFETCH_SECS: i64 = 60;

/// Where a profile's credentials are cached: its source, account and role.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct CacheKey {
    pub(super) source: String,
    pub(super) account: String,
    pub(super) role: String,
}

impl CacheKey {
    /// The key of a profile. A chained profile's role part names its whole chain and its
    /// AssumeRole parameters (see `chain::key_role`).
    pub(super) fn of(reg: &Registry, pc: &ProfileConfig) -> CacheKey {
        CacheKey {
            source: pc.source.clone(),
            account: profile_account(pc),
            role: if pc.via.is_some() {
                chain::key_role(reg, pc)
            } else {
                pc.role.clone()
            },
        }
    }
}

/// The account a profile's credentials belong to: its `account`, else the role ARN's.
pub(super) fn profile_account(profile: &ProfileConfig) -> String {
    profile
        .account
        .clone()
        .or_else(|| profile.role.split(':').nth(4).map(str::to_string))
        .unwrap_or_default()
}

#[derive(Clone)]
pub(super) struct Cached {
    pub(super) creds: RoleCredentials,
    /// Lifetime the upstream gave at fetch time, in seconds.
    pub(super) lifetime: i64,
    /// Whether that fetch gave more than was cached before it. A refetch that brought nothing
    /// new (credentials only a browser renews, a session end that caps them) says the upstream
    /// cannot give more now: no more early refetches for them.
    pub(super) grew: bool,
}

impl Cached {
    pub(super) fn fetched_at(&self) -> i64 {
        self.creds.expiration - self.lifetime
    }

    /// Whether an early refetch (left under `refresh_ahead`) may bring more: the upstream gave
    /// more than `refresh_ahead` last time, that fetch brought something new, and the last one
    /// was at least [`MIN_REFETCH_SECS`] ago.
    pub(super) fn renewable_at(&self, now: i64) -> bool {
        self.grew && now - self.fetched_at() >= MIN_REFETCH_SECS
    }

    pub(super) fn threshold(&self, refresh_ahead: i64, now: i64) -> i64 {
        fresh_threshold(refresh_ahead, self.lifetime, self.renewable_at(now))
    }
}

/// The view of a cached entry the refresh scheduler plans with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedLife {
    pub expiration: i64,
    pub lifetime: i64,
    pub grew: bool,
}

impl CachedLife {
    pub fn fetched_at(&self) -> i64 {
        self.expiration - self.lifetime
    }
}

/// Cached credentials with more than this left (seconds) are served as they are; with less,
/// they are fetched again.
///
/// Clients are promised more than `refresh_ahead` whenever the upstream can give it: when its
/// sessions last longer than `refresh_ahead` and an early refetch may bring more (`renewable`:
/// the last fetch brought something new and was at least [`MIN_REFETCH_SECS`] ago), the
/// threshold is `refresh_ahead` itself, so 21-minute sessions are refetched with 20 left rather
/// than served down to half their lifetime. A session that can never have `refresh_ahead` left
/// (15 minutes, say), or one that cannot be refetched now, is served while it has half its
/// lifetime, rather than refetched on every call.
pub fn fresh_threshold(refresh_ahead: i64, lifetime: i64, renewable: bool) -> i64 {
    let threshold = if renewable && lifetime > refresh_ahead {
        refresh_ahead
    } else {
        refresh_ahead.min(lifetime / 2)
    };
    threshold.max(EXPIRY_MARGIN_SECS)
}

impl Broker {
    pub(super) fn cached_fresh(
        &self,
        key: &CacheKey,
        now: i64,
        refresh_ahead: i64,
    ) -> Option<RoleCredentials> {
        let cache = lock(&self.cache);
        let c = cache.get(key)?;
        let left = c.creds.expiration - now;
        (left > c.threshold(refresh_ahead, now)).then(|| c.creds.clone())
    }

    pub(super) fn cached_valid(&self, key: &CacheKey, now: i64) -> Option<RoleCredentials> {
        let cache = lock(&self.cache);
        let c = cache.get(key)?;
        (c.creds.expiration - now > EXPIRY_MARGIN_SECS).then(|| c.creds.clone())
    }

    /// Expiry of the credentials cached for a profile.
    pub(super) fn cached_expiry(&self, pc: &ProfileConfig) -> Option<i64> {
        let key = CacheKey::of(&self.registry(), pc);
        lock(&self.cache).get(&key).map(|c| c.creds.expiration)
    }

    /// Expiry and lifetime (epoch seconds, seconds) of the credentials cached for a profile,
    /// and whether their fetch brought something new, for the refresh scheduler.
    pub fn cached_lifetime(&self, profile: &str) -> Option<CachedLife> {
        let pc = self.profile(profile)?;
        let key = CacheKey::of(&self.registry(), &pc);
        lock(&self.cache).get(&key).map(|c| CachedLife {
            expiration: c.creds.expiration,
            lifetime: c.lifetime,
            grew: c.grew,
        })
    }
}
