//! The credential broker, between what serves credentials and the sources that fetch them.
//!
//! It owns the in-memory credential cache (keyed by source, account and role), makes many
//! concurrent requests for one key cause a single upstream fetch, retries retryable upstream
//! failures briefly, keeps serving still-valid credentials while the upstream fails, never serves
//! expired ones, starts logins through the [`LoginCoordinator`] when a source needs one, and
//! keeps the per-profile and per-source state that `status` and the prompt snapshot show.

use crate::config::{Config, DaemonConfig, ProfileConfig, SourceConfig};
use crate::login::{LoginCoordinator, Trigger};
use crate::sources::{LoginOptions, RoleCredentials, SessionState, Source, SourceError};
use rolecall_proto::api::{
    ErrorBody, ErrorCode, LoginPhase, LoginState, ProfileStatus, SourceStatus,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

mod chain;
pub mod clock;
pub mod snapshot;
pub mod whoami;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use clock::{Clock, SystemClock};
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

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    source: String,
    account: String,
    role: String,
}

#[derive(Clone)]
struct Cached {
    creds: RoleCredentials,
    /// Lifetime the upstream gave at fetch time, in seconds.
    lifetime: i64,
    /// Whether that fetch gave more than was cached before it. A refetch that brought nothing
    /// new (credentials only a browser renews, a session end that caps them) says the upstream
    /// cannot give more now: no more early refetches for them.
    grew: bool,
}

impl Cached {
    fn fetched_at(&self) -> i64 {
        self.creds.expiration - self.lifetime
    }

    /// Whether an early refetch (left under `refresh_ahead`) may bring more: the upstream gave
    /// more than `refresh_ahead` last time, that fetch brought something new, and the last one
    /// was at least [`MIN_REFETCH_SECS`] ago.
    fn renewable_at(&self, now: i64) -> bool {
        self.grew && now - self.fetched_at() >= MIN_REFETCH_SECS
    }

    fn threshold(&self, refresh_ahead: i64, now: i64) -> i64 {
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
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a profile's credentials are cached. A chained profile's role part names its whole
/// chain and its AssumeRole parameters (see `chain::key_role`).
fn cache_key(reg: &Registry, pc: &ProfileConfig) -> CacheKey {
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

/// A chained profile's parent failed: the caller learns which, with the parent's own reason and
/// hint (`profile 'x' uses 'y', which failed: not signed in to source 'corp'`).
fn parent_failed(profile: &str, parent: &str, e: ErrorBody) -> ErrorBody {
    ErrorBody {
        message: format!(
            "profile '{profile}' uses '{parent}', which failed: {}",
            e.message
        ),
        ..e
    }
}

/// The account a profile's credentials belong to: its `account`, else the role ARN's.
fn profile_account(profile: &ProfileConfig) -> String {
    profile
        .account
        .clone()
        .or_else(|| profile.role.split(':').nth(4).map(str::to_string))
        .unwrap_or_default()
}

fn not_signed_in(source: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::NotSignedIn,
        format!("not signed in to source '{source}'"),
    )
    .with_hint(format!("rolecall login {source}"))
}

/// The error a caller sees for a failed fetch.
pub fn fetch_error_body(source: &str, err: &SourceError) -> ErrorBody {
    match err {
        SourceError::NeedsLogin(_) => not_signed_in(source),
        SourceError::LoginCancelled(m) => ErrorBody::new(
            ErrorCode::LoginFailed,
            format!("sign-in to source '{source}' did not complete: {m}"),
        )
        .with_hint(format!("rolecall login {source}")),
        SourceError::AccessDenied(m) => ErrorBody::new(ErrorCode::AccessDenied, m.clone()),
        SourceError::Upstream { message, .. } => {
            ErrorBody::new(ErrorCode::Upstream, message.clone())
                .with_hint("rolecall status".to_string())
        }
        SourceError::Config(m) => ErrorBody::new(ErrorCode::ConfigInvalid, m.clone()),
        SourceError::Internal(m) => ErrorBody::new(ErrorCode::Internal, m.clone()),
    }
}

/// Two fetches of one profile's credentials are at least this far apart (seconds) when short
/// sessions are refetched early to keep more than `refresh_ahead` left.
pub const MIN_REFETCH_SECS: i64 = 60;

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

/// The roles a source offers that no profile of it uses, in the source's order, once each.
fn unconfigured_roles(config: &Config, source: &str, known: Vec<String>) -> Vec<String> {
    let configured: std::collections::HashSet<&str> = config
        .profiles
        .values()
        .filter(|p| p.source == source)
        .map(|p| p.role.as_str())
        .collect();
    let mut out: Vec<String> = Vec::new();
    for role in known {
        if !configured.contains(role.as_str()) && !out.contains(&role) {
            out.push(role);
        }
    }
    out
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
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

    /// Changes whenever cached credentials are stored, replaced or dropped (a fetch, a
    /// refresh, a logout, a reload): a server may reuse what it rendered from earlier answers
    /// while this value is unchanged.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn cache_changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
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

    /// Credentials for `profile`: cached when they have more than `refresh_ahead` left (or as
    /// much as the upstream gives), else fetched once for all concurrent callers.
    pub async fn credentials(
        self: &Arc<Self>,
        profile: &str,
        req: CredentialRequest,
    ) -> Result<RoleCredentials, ErrorBody> {
        let (pc, source) = self.resolve(profile)?;
        let key = cache_key(&self.registry(), &pc);
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
                .chained_credentials(profile, &parent, &pc, &key, req)
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
            let outcome = self.fetch_shared(&key, profile, &pc, &source, None).await;
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
    async fn chained_credentials(
        self: &Arc<Self>,
        profile: &str,
        parent: &str,
        pc: &ProfileConfig,
        key: &CacheKey,
        req: CredentialRequest,
    ) -> Result<RoleCredentials, ErrorBody> {
        let (_, source) = self.resolve(profile)?;
        let parent_creds = Box::pin(self.credentials(parent, req))
            .await
            .map_err(|e| parent_failed(profile, parent, e))?;
        let outcome = self
            .fetch_shared(key, profile, pc, &source, Some(parent_creds))
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
    async fn parent_for_refresh(
        self: &Arc<Self>,
        profile: &str,
        parent: &str,
    ) -> Result<RoleCredentials, Arc<SourceError>> {
        let reg = self.registry();
        if let Some(ppc) = reg.config.profiles.get(parent) {
            let refresh_ahead = reg.config.daemon.refresh_ahead.as_secs() as i64;
            if let Some(c) =
                self.cached_fresh(&cache_key(&reg, ppc), self.clock.now(), refresh_ahead)
            {
                return Ok(c);
            }
        }
        Box::pin(self.refresh_credentials(parent))
            .await
            .map_err(|e| {
                let msg = format!("profile '{profile}' uses '{parent}', which failed: {e}");
                Arc::new(match &*e {
                    SourceError::NeedsLogin(_) => SourceError::NeedsLogin(msg),
                    SourceError::LoginCancelled(_) => SourceError::LoginCancelled(msg),
                    SourceError::AccessDenied(_) => SourceError::AccessDenied(msg),
                    SourceError::Upstream { retryable, .. } => SourceError::Upstream {
                        message: msg,
                        retryable: *retryable,
                    },
                    SourceError::Config(_) => SourceError::Config(msg),
                    SourceError::Internal(_) => SourceError::Internal(msg),
                })
            })
    }

    fn cached_fresh(
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

    fn cached_valid(&self, key: &CacheKey, now: i64) -> Option<RoleCredentials> {
        let cache = lock(&self.cache);
        let c = cache.get(key)?;
        (c.creds.expiration - now > EXPIRY_MARGIN_SECS).then(|| c.creds.clone())
    }

    /// Expiry of the credentials cached for a profile.
    fn cached_expiry(&self, pc: &ProfileConfig) -> Option<i64> {
        let key = cache_key(&self.registry(), pc);
        lock(&self.cache).get(&key).map(|c| c.creds.expiration)
    }

    /// One upstream fetch per key at a time; later callers join the running one.
    async fn fetch_shared(
        self: &Arc<Self>,
        key: &CacheKey,
        profile: &str,
        pc: &ProfileConfig,
        source: &Arc<dyn Source>,
        parent: Option<RoleCredentials>,
    ) -> Outcome {
        let mut rx = {
            let mut inflight = lock(&self.inflight);
            match inflight.get(key) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(key.clone(), rx.clone());
                    let this = Arc::clone(self);
                    let (key, profile, pc, source) = (
                        key.clone(),
                        profile.to_string(),
                        pc.clone(),
                        Arc::clone(source),
                    );
                    // A task of its own: the fetch completes (and is cached) even when every
                    // caller gave up waiting.
                    tokio::spawn(async move {
                        let outcome = match parent {
                            None => {
                                this.fetch_with_retries(&pc, || source.credentials(&pc))
                                    .await
                            }
                            Some(parent) => {
                                let reg = this.registry();
                                this.fetch_with_retries(&pc, || {
                                    chain::assume(&reg, &profile, &pc, &parent)
                                })
                                .await
                            }
                        };
                        // A chained profile's AssumeRole is not its root source's doing:
                        // its outcome stays off the source's state.
                        let source_name = pc.via.is_none().then_some(pc.source.as_str());
                        this.record(&key, &profile, source_name, &outcome);
                        lock(&this.inflight).remove(&key);
                        let _ = tx.send(Some(outcome));
                    });
                    rx
                }
            }
        };
        let res = rx.wait_for(Option::is_some).await.map(|v| v.clone());
        match res {
            Ok(v) => {
                v.unwrap_or_else(|| Err(Arc::new(SourceError::Internal("fetch vanished".into()))))
            }
            Err(_) => {
                lock(&self.inflight).remove(key);
                Err(Arc::new(SourceError::Internal(
                    "the credential fetch ended abnormally".into(),
                )))
            }
        }
    }

    async fn fetch_with_retries<F, Fut>(&self, pc: &ProfileConfig, mut fetch: F) -> Outcome
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<RoleCredentials, SourceError>>,
    {
        let started = tokio::time::Instant::now();
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            let result = match tokio::time::timeout(self.retry.attempt_timeout, fetch()).await {
                Ok(r) => r,
                Err(_) => Err(SourceError::Upstream {
                    message: format!(
                        "source '{}' did not answer within {}s",
                        pc.source,
                        self.retry.attempt_timeout.as_secs()
                    ),
                    retryable: true,
                }),
            };
            match result {
                Err(SourceError::Upstream {
                    retryable: true,
                    message,
                }) if attempt < self.retry.attempts
                    && started.elapsed() + delay < self.retry.budget =>
                {
                    tracing::debug!(source = %pc.source, attempt, %message, "retrying upstream");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                r => return r.map_err(Arc::new),
            }
        }
    }

    /// Stores a fetch's outcome: the cache, the profile's and the source's state, the snapshot.
    fn record(&self, key: &CacheKey, profile: &str, source: Option<&str>, outcome: &Outcome) {
        let now = self.clock.now();
        match outcome {
            Ok(c) => {
                {
                    let mut cache = lock(&self.cache);
                    let grew = cache
                        .get(key)
                        .is_none_or(|old| c.expiration > old.creds.expiration);
                    cache.insert(
                        key.clone(),
                        Cached {
                            creds: c.clone(),
                            lifetime: c.expiration - now,
                            grew,
                        },
                    );
                }
                self.cache_changed();
                let mut profiles = lock(&self.profiles);
                let p = profiles.entry(profile.to_string()).or_default();
                p.last_refresh = Some(now);
                p.last_error = None;
                p.defer_until = None;
                if let Some(source) = source {
                    let mut sources = lock(&self.sources);
                    let s = sources.entry(source.to_string()).or_default();
                    s.needs_login = false;
                    s.last_error = None;
                }
            }
            Err(e) => {
                tracing::warn!(profile, source, error = %e, "credential fetch failed");
                let msg = first_line(&e.to_string());
                lock(&self.profiles)
                    .entry(profile.to_string())
                    .or_default()
                    .last_error = Some(msg.clone());
                let Some(source) = source else {
                    self.write_snapshot();
                    return;
                };
                let mut sources = lock(&self.sources);
                let s = sources.entry(source.to_string()).or_default();
                if matches!(**e, SourceError::NeedsLogin(_)) {
                    s.needs_login = true;
                }
                s.last_error = Some(msg);
            }
        }
        self.write_snapshot();
    }

    /// A fetch found no session: start (or join) a login when allowed, and wait for it when
    /// the caller is interactive. `Ok` means "signed in now, fetch again".
    async fn await_login(
        &self,
        source_name: &str,
        source: Arc<dyn Source>,
        req: CredentialRequest,
    ) -> Result<(), ErrorBody> {
        let d = self.daemon_config();
        if !d.auto_login {
            return Err(not_signed_in(source_name));
        }
        let mut rx = match self
            .logins
            .start(source, LoginOptions::default(), Trigger::Auto)
        {
            Ok(rx) => rx,
            Err(b) => {
                return Err(ErrorBody::new(
                    ErrorCode::LoginBackoff,
                    format!(
                        "not signed in to source '{source_name}'; the last sign-in was cancelled or failed, so no new one starts by itself for {}s",
                        b.remaining.as_secs().max(1)
                    ),
                )
                .with_hint(format!("rolecall login {source_name}")))
            }
        };
        if !req.interactive {
            return Err(not_signed_in(source_name));
        }
        let wait = req.wait.map_or(d.login_wait, |w| w.min(d.login_wait));
        let done = |st: &LoginState| st.phase != LoginPhase::Pending;
        let res = tokio::time::timeout(wait, rx.wait_for(done))
            .await
            .map(|r| r.map(|st| st.clone()));
        let state = match res {
            Ok(Ok(st)) => st,
            Ok(Err(_)) => rx.borrow().clone(),
            Err(_) => {
                return Err(ErrorBody::new(
                    ErrorCode::LoginPending,
                    format!("sign-in to source '{source_name}' is still waiting for you"),
                )
                .with_hint(format!("rolecall login {source_name}")))
            }
        };
        match state.phase {
            LoginPhase::Succeeded => Ok(()),
            _ => Err(state.error.unwrap_or_else(|| not_signed_in(source_name))),
        }
    }

    fn login_finished(self: &Arc<Self>, st: &LoginState) {
        if st.phase == LoginPhase::Succeeded {
            {
                let mut sources = lock(&self.sources);
                let s = sources.entry(st.source.clone()).or_default();
                s.needs_login = false;
                s.last_error = None;
            }
            self.redeem_all(&st.source);
        } else if let Some(e) = &st.error {
            lock(&self.sources)
                .entry(st.source.clone())
                .or_default()
                .last_error = Some(e.message.clone());
        }
        self.write_snapshot();
    }

    /// After a login of a source whose login product redeems every profile (a SAML assertion
    /// that lives minutes), fetches each of its profiles in the background through the
    /// single-flight path, so that clients find them cached.
    fn redeem_all(self: &Arc<Self>, source_name: &str) {
        let reg = self.registry();
        let Some(source) = reg.sources.get(source_name) else {
            return;
        };
        if !source.redeem_all_after_login() {
            return;
        }
        for (profile, pc) in &reg.config.profiles {
            if pc.source != source_name {
                continue;
            }
            let this = Arc::clone(self);
            let profile = profile.clone();
            tokio::spawn(async move {
                if let Err(e) = this.refresh_now(&profile).await {
                    tracing::debug!(profile, error = %e, "redeeming after login failed");
                }
            });
        }
    }

    /// Forgets the session of one source (or all) and the credentials cached from it.
    pub async fn logout(&self, source: Option<&str>) -> Result<(), ErrorBody> {
        let reg = self.registry();
        let targets: Vec<Arc<dyn Source>> = match source {
            Some(name) => vec![self.source(name)?],
            None => reg.sources.values().cloned().collect(),
        };
        for s in targets {
            s.logout()
                .await
                .map_err(|e| fetch_error_body(s.name(), &e))?;
            lock(&self.cache).retain(|k, _| k.source != s.name());
            self.cache_changed();
            lock(&self.sources)
                .entry(s.name().to_string())
                .or_default()
                .needs_login = true;
            tracing::info!(source = s.name(), "signed out");
        }
        self.write_snapshot();
        Ok(())
    }

    /// Reads every source's session state (cheap, no network) into the flags the prompt
    /// snapshot shows, so that a fresh daemon's snapshot already says who needs a login.
    pub async fn refresh_session_flags(&self) {
        let reg = self.registry();
        for (name, source) in &reg.sources {
            let needs = matches!(source.session_state().await, SessionState::NeedsLogin);
            lock(&self.sources)
                .entry(name.clone())
                .or_default()
                .needs_login = needs;
        }
        self.write_snapshot();
    }

    /// Per-source state for `status`.
    pub async fn source_statuses(&self) -> Vec<SourceStatus> {
        let reg = self.registry();
        let mut out = Vec::new();
        for (name, cfg) in &reg.config.sources {
            let source = reg.sources.get(name);
            let (signed_in, session_expires) = match source {
                Some(s) => match s.session_state().await {
                    SessionState::SignedIn { expires } => (true, expires),
                    SessionState::NeedsLogin => (false, None),
                },
                None => (false, None),
            };
            let rt = lock(&self.sources).get(name).cloned().unwrap_or_default();
            let last_error = reg.broken_sources.get(name).cloned().or(rt.last_error);
            out.push(SourceStatus {
                name: name.clone(),
                kind: SourceConfig::kind_name(cfg).to_string(),
                signed_in,
                session_expires,
                login_in_progress: self.logins.in_progress(name),
                last_error,
                unconfigured_roles: source
                    .map(|s| unconfigured_roles(&reg.config, name, s.known_roles()))
                    .unwrap_or_default(),
            });
        }
        out
    }

    /// Per-profile state for `status`.
    pub fn profile_statuses(&self) -> Vec<ProfileStatus> {
        let reg = self.registry();
        let runtime = lock(&self.profiles).clone();
        reg.config
            .profiles
            .iter()
            .map(|(name, pc)| {
                let rt = runtime.get(name).cloned().unwrap_or_default();
                ProfileStatus {
                    name: name.clone(),
                    source: pc.source.clone(),
                    account: Some(profile_account(pc)).filter(|a| !a.is_empty()),
                    account_name: pc.account_name.clone(),
                    role: pc.role.clone(),
                    region: pc.region.clone(),
                    expires: self.cached_expiry(pc),
                    last_refresh: rt.last_refresh,
                    last_error: rt.last_error,
                    warm: pc.warm,
                }
            })
            .collect()
    }

    /// Expiry and lifetime (epoch seconds, seconds) of the credentials cached for a profile,
    /// and whether their fetch brought something new, for the refresh scheduler.
    pub fn cached_lifetime(&self, profile: &str) -> Option<CachedLife> {
        let pc = self.profile(profile)?;
        let key = cache_key(&self.registry(), &pc);
        lock(&self.cache).get(&key).map(|c| CachedLife {
            expiration: c.creds.expiration,
            lifetime: c.lifetime,
            grew: c.grew,
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
    async fn refresh_credentials(self: &Arc<Self>, profile: &str) -> Outcome {
        let (pc, source) = self
            .resolve(profile)
            .map_err(|e| Arc::new(SourceError::Config(e.message)))?;
        let key = cache_key(&self.registry(), &pc);
        let parent = match pc.via.as_deref() {
            Some(parent) => Some(self.parent_for_refresh(profile, parent).await?),
            None => None,
        };
        self.fetch_shared(&key, profile, &pc, &source, parent).await
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

    fn deferred(&self, profile: &str, now: i64) -> bool {
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

    /// Rewrites the prompt snapshot from the current state.
    pub fn write_snapshot(&self) {
        let Some(writer) = &self.snapshot else {
            return;
        };
        let reg = self.registry();
        let sources = lock(&self.sources).clone();
        let profiles = reg
            .config
            .profiles
            .iter()
            .map(|(name, pc)| {
                let needs_login = sources.get(&pc.source).is_some_and(|s| s.needs_login);
                (
                    name.clone(),
                    rolecall_proto::snapshot::SnapshotProfile {
                        account: Some(profile_account(pc)).filter(|a| !a.is_empty()),
                        account_name: pc.account_name.clone(),
                        role: pc.role.clone(),
                        region: pc.region.clone(),
                        expires: self.cached_expiry(pc),
                        needs_login,
                    },
                )
            })
            .collect();
        let snap = rolecall_proto::snapshot::Snapshot {
            pid: std::process::id(),
            written_at: self.clock.now(),
            profiles,
        };
        if let Err(e) = writer.write(&snap) {
            tracing::warn!(error = %e, "cannot write the status snapshot");
        }
    }
}
