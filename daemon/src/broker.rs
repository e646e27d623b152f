//! The credential broker, between what serves credentials and the sources that fetch them.
//!
//! It owns the in-memory credential cache (keyed by source, account and role), makes many
//! concurrent requests for one key cause a single upstream fetch, retries retryable upstream
//! failures briefly, keeps serving still-valid credentials while the upstream fails, never serves
//! expired ones, starts logins through the [`LoginCoordinator`] when a source needs one, and
//! keeps the per-profile and per-source state that `status` and the prompt snapshot show.

use crate::config::{Config, DaemonConfig, ProfileConfig};
use crate::login::LoginCoordinator;
use crate::sources::{RoleCredentials, Source, SourceError};
use rolecall_proto::api::{ErrorBody, ErrorCode, LoginState};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

mod cache;
mod chain;
mod credentials;
mod errors;
mod flight;
mod login;
pub mod scoped;
mod session;
pub mod snapshot;
mod status;
pub mod whoami;

#[cfg(any(test, feature = "test-util"))]
pub mod fake;
#[cfg(test)]
mod tests;

/// The daemon's clock (`crate::clock`), also reachable as `broker::clock`.
pub use crate::clock::{self, Clock, SystemClock};
pub use cache::{fresh_threshold, CachedLife, MIN_REFETCH_SECS};
use cache::{CacheKey, Cached};
pub use errors::fetch_error_body;
pub use snapshot::SnapshotWriter;

/// Credentials with this little left count as expired: a client needs time to use them.
pub const EXPIRY_MARGIN_SECS: i64 = 30;

/// What the broker works from: the config and one source per `[sources.*]` entry.
#[derive(Clone, Default)]
pub struct Registry {
    pub config: Config,
    pub sources: BTreeMap<String, Arc<dyn Source>>,
    /// Sources whose construction failed, with why.
    pub broken_sources: BTreeMap<String, String>,
    /// The config file could not be used (shown instead of "unknown profile").
    pub config_error: Option<String>,
    /// The daemon's environment at start, for the STS endpoint of chained profiles.
    pub env: Arc<crate::endpoints::EnvSnapshot>,
}

/// How a caller wants its credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialRequest {
    /// The caller's stdin is a terminal: it may wait for a login.
    pub interactive: bool,
    /// At most this long for a login (capped by `login_wait`).
    pub wait: Option<Duration>,
}

/// Bounded retries of retryable upstream failures, so that callers get an answer quickly.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    /// No new attempt starts after this much time.
    pub budget: Duration,
    /// One upstream call that takes longer counts as a retryable failure.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            first_delay: Duration::from_millis(250),
            budget: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(20),
        }
    }
}

type Outcome = Result<RoleCredentials, Arc<SourceError>>;

#[derive(Debug, Clone, Default)]
struct ProfileRuntime {
    last_refresh: Option<i64>,
    last_error: Option<String>,
    last_used: Option<i64>,
    /// The refresh scheduler is backing off this profile's upstream until then: clients are
    /// served still-valid credentials without a fetch of their own.
    defer_until: Option<i64>,
}

#[derive(Debug, Clone, Default)]
struct SourceRuntime {
    needs_login: bool,
    last_error: Option<String>,
}

pub struct Broker {
    registry: RwLock<Arc<Registry>>,
    cache: Mutex<HashMap<CacheKey, Cached>>,
    /// Bumped whenever the cache changes: servers that keep a rendered reply reuse it only
    /// while this holds (see [`Broker::generation`]).
    generation: std::sync::atomic::AtomicU64,
    inflight: Mutex<HashMap<CacheKey, watch::Receiver<Option<Outcome>>>>,
    profiles: Mutex<BTreeMap<String, ProfileRuntime>>,
    sources: Mutex<BTreeMap<String, SourceRuntime>>,
    logins: Arc<LoginCoordinator>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    snapshot: Option<SnapshotWriter>,
    scoped: scoped::ScopedSessions,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Broker {
    pub fn new(
        logins: Arc<LoginCoordinator>,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
        snapshot: Option<SnapshotWriter>,
    ) -> Arc<Self> {
        let broker = Arc::new(Self {
            registry: RwLock::new(Arc::new(Registry::default())),
            cache: Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
            inflight: Mutex::new(HashMap::new()),
            profiles: Mutex::new(BTreeMap::new()),
            sources: Mutex::new(BTreeMap::new()),
            logins: Arc::clone(&logins),
            clock,
            retry,
            snapshot,
            scoped: scoped::ScopedSessions::default(),
        });
        // A finished login changes what `status` and the prompt show.
        let weak = Arc::downgrade(&broker);
        logins.set_observer(Arc::new(move |st: &LoginState| {
            if let Some(b) = weak.upgrade() {
                b.login_finished(st);
            }
        }));
        broker
    }

    pub fn logins(&self) -> &Arc<LoginCoordinator> {
        &self.logins
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Changes whenever cached credentials are stored, replaced or dropped (a fetch, a
    /// refresh, a logout, a reload): a server may reuse what it rendered from earlier answers
    /// while this value is unchanged.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(super) fn cache_changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Installs a new registry (after a config load). Cached credentials of sources whose
    /// config changed or disappeared are dropped.
    pub fn set_registry(&self, registry: Registry) {
        let old = self.registry();
        {
            let mut cache = lock(&self.cache);
            cache.retain(|k, _| {
                old.config.sources.contains_key(&k.source)
                    && old.config.sources.get(&k.source) == registry.config.sources.get(&k.source)
            });
        }
        self.cache_changed();
        lock(&self.profiles).retain(|name, _| registry.config.profiles.contains_key(name));
        lock(&self.sources).retain(|name, _| registry.config.sources.contains_key(name));
        self.scoped.forget(None);
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(registry);
        self.write_snapshot();
    }

    fn daemon_config(&self) -> DaemonConfig {
        self.registry().config.daemon.clone()
    }

    /// Looks a profile up, or explains why it cannot be used.
    fn resolve(&self, profile: &str) -> Result<(ProfileConfig, Arc<dyn Source>), ErrorBody> {
        let reg = self.registry();
        let Some(pc) = reg.config.profiles.get(profile) else {
            if let Some(e) = &reg.config_error {
                return Err(ErrorBody::new(
                    ErrorCode::ConfigInvalid,
                    format!("unknown profile '{profile}' (the config file has an error: {e})"),
                ));
            }
            return Err(ErrorBody::new(
                ErrorCode::UnknownProfile,
                format!("unknown profile '{profile}'"),
            )
            .with_hint("rolecall status".to_string()));
        };
        match reg.sources.get(&pc.source) {
            Some(s) => Ok((pc.clone(), Arc::clone(s))),
            None => {
                let why = reg
                    .broken_sources
                    .get(&pc.source)
                    .cloned()
                    .unwrap_or_else(|| "it is not configured".into());
                Err(ErrorBody::new(
                    ErrorCode::ConfigInvalid,
                    format!(
                        "source '{}' of profile '{profile}' cannot be used: {why}",
                        pc.source
                    ),
                ))
            }
        }
    }

    /// The source named `name`, if configured and usable.
    pub fn source(&self, name: &str) -> Result<Arc<dyn Source>, ErrorBody> {
        let reg = self.registry();
        if let Some(s) = reg.sources.get(name) {
            return Ok(Arc::clone(s));
        }
        if let Some(why) = reg.broken_sources.get(name) {
            return Err(ErrorBody::new(
                ErrorCode::ConfigInvalid,
                format!("source '{name}' cannot be used: {why}"),
            ));
        }
        Err(
            ErrorBody::new(ErrorCode::UnknownSource, format!("unknown source '{name}'"))
                .with_hint("rolecall status".to_string()),
        )
    }

    /// The profile's configuration (for whoami and the container endpoint).
    pub fn profile(&self, name: &str) -> Option<ProfileConfig> {
        self.registry().config.profiles.get(name).cloned()
    }
}
