//! Single-flight fetching: one upstream fetch per cache key at a time (later callers join the
//! running one), bounded retries of retryable failures, and recording each outcome in the
//! cache and in the profile's and source's state.

use super::cache::{CacheKey, Cached};
use super::errors::first_line;
use super::{chain, lock, Broker, Outcome};
use crate::config::ProfileConfig;
use crate::sources::{RoleCredentials, Source, SourceError};
use std::sync::Arc;
use tokio::sync::watch;

impl Broker {
    /// One upstream fetch per key at a time; later callers join the running one.
    ///
    /// `reuse_fresh` (refresh-ahead seconds): the caller found the cache stale earlier and has
    /// waited since (for a parent's credentials, or merely for its thread): when no fetch is
    /// running, credentials that one cached meanwhile are taken instead of fetching again.
    /// Checked under the flight lock; a flight caches before it leaves that map, so a caller
    /// either joins the flight or sees what it cached. `None` for forced refetches.
    pub(super) async fn fetch_shared(
        self: &Arc<Self>,
        key: &CacheKey,
        profile: &str,
        pc: &ProfileConfig,
        source: &Arc<dyn Source>,
        parent: Option<RoleCredentials>,
        reuse_fresh: Option<i64>,
    ) -> Outcome {
        let mut rx = {
            let mut inflight = lock(&self.inflight);
            match inflight.get(key) {
                Some(rx) => rx.clone(),
                None => {
                    if let Some(ahead) = reuse_fresh {
                        if let Some(c) = self.cached_fresh(key, self.clock.now(), ahead) {
                            return Ok(c);
                        }
                    }
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

    pub(super) async fn fetch_with_retries<F, Fut>(
        &self,
        pc: &ProfileConfig,
        mut fetch: F,
    ) -> Outcome
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<RoleCredentials, SourceError>>,
    {
        let started = crate::clock::monotonic();
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
    pub(super) fn record(
        &self,
        key: &CacheKey,
        profile: &str,
        source: Option<&str>,
        outcome: &Outcome,
    ) {
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
}
