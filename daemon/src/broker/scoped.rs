//! Scoped sessions (docs/scoped-sessions.md): credentials of a profile narrowed by session
//! policies, for one child process (`rolecall exec --read-only` / `--policy FILE`) or for
//! every client of a profile that declares `session_policy` / `managed_session_policies`.
//!
//! A scoped session is an STS `AssumeRole` with `Policy` / `PolicyArns` (its permissions are
//! the role's within the session policies) and a `SourceIdentity` naming the tool:
//!
//! - a chained profile (`via`): its `role_arn`, assumed with the parent's credentials, as the
//!   chain itself does (the same trust, one hop);
//! - any other profile: its own role, assumed with its own credentials. The role's trust
//!   policy must name the role itself (AWS stopped trusting a role's own sessions implicitly
//!   in 2023). Identity Center roles (`AWSReservedSSO_*`) trust only Identity Center and their
//!   trust policy cannot be edited: those profiles are refused with a hint to chain a role.
//!
//! Sessions are cached per (profile, its chain, policy hash, source identity), fetched once for
//! all concurrent callers, retried like any fetch, served while fresh by the rule every cached
//! credential follows (renewed with `refresh_ahead` left: one-hour sessions, as AWS caps role
//! chaining), and forgotten at a logout of their source or a config reload.

use super::cache::{CacheKey, Cached};
use super::errors::{fetch_error_body, parent_failed};
use super::{lock, Broker, CredentialRequest, Outcome, Registry, EXPIRY_MARGIN_SECS};
use crate::config::{ProfileConfig, SourceConfig};
use crate::sources::{RoleCredentials, SourceError};
use rolecall_proto::api::{ErrorBody, ErrorCode};
use rolecall_proto::scope::SessionScope;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The broker's scoped sessions: cached and in flight, by key.
#[derive(Default)]
pub struct ScopedSessions {
    cache: Mutex<HashMap<String, (String, Cached)>>,
    inflight: Mutex<HashMap<String, watch::Receiver<Option<Outcome>>>>,
    /// When each session was last asked for (epoch seconds): only sessions in use are renewed
    /// ahead in the background.
    used: Mutex<HashMap<String, i64>>,
    /// The fetch (its time) each session's renewal is planned for: one renewal per fetch.
    renewals: Mutex<HashMap<String, i64>>,
}

impl ScopedSessions {
    /// Drops the sessions of `source` (all when `None`): after its logout they must not be
    /// served.
    pub fn forget(&self, source: Option<&str>) {
        lock(&self.cache).retain(|_, (s, _)| source.is_some_and(|x| x != s));
        let cache = lock(&self.cache);
        lock(&self.used).retain(|k, _| cache.contains_key(k));
        lock(&self.renewals).retain(|k, _| cache.contains_key(k));
    }
}

/// Access key id → (policy hash, expiration) of every scoped session fetched, so that the audit
/// log names the policy hash of scoped credentials whichever interface hands them out. Process
/// wide because the audit record is built from the credentials alone; entries go with expiry.
static POLICY_HASHES: Mutex<Option<HashMap<String, (String, i64)>>> = Mutex::new(None);

fn remember(access_key_id: &str, hash: &str, expiration: i64, now: i64) {
    let mut map = lock(&POLICY_HASHES);
    let map = map.get_or_insert_with(HashMap::new);
    map.retain(|_, (_, exp)| *exp > now);
    map.insert(access_key_id.to_string(), (hash.to_string(), expiration));
}

/// The policy hash of scoped credentials, `None` for any other credentials.
pub fn policy_hash_of(access_key_id: &str) -> Option<String> {
    lock(&POLICY_HASHES)
        .as_ref()
        .and_then(|m| m.get(access_key_id))
        .map(|(h, _)| h.clone())
}

/// The scope a profile declares for all its credentials, if any.
pub fn profile_scope(pc: &ProfileConfig) -> Option<SessionScope> {
    (pc.session_policy.is_some() || !pc.managed_session_policies.is_empty()).then(|| SessionScope {
        policy: pc.session_policy.clone(),
        policy_arns: pc.managed_session_policies.clone(),
        source_identity: None,
    })
}

/// The source identity a profile's chain sets (the nearest `source_identity`): AWS keeps it
/// for every later session and refuses another one, so a scoped session passes the same.
fn chain_source_identity(reg: &Registry, pc: &ProfileConfig) -> Option<String> {
    let mut at = pc;
    for _ in 0..=reg.config.profiles.len() {
        if let Some(si) = &at.source_identity {
            return Some(si.clone());
        }
        at = reg.config.profiles.get(at.via.as_deref()?)?;
    }
    None
}

/// `rolecall-<profile>-<8 hex of the policy hash>`, within RoleSessionName's 64 characters.
fn session_name(profile: &str, hash: &str) -> String {
    let short = hash.trim_start_matches("sha256:");
    let short = &short[..short.len().min(8)];
    let mut head = format!("rolecall-{profile}");
    head.truncate(64 - 1 - short.len());
    format!("{head}-{short}")
}

/// What a scoped session is assumed from.
struct Base {
    role_arn: String,
    signer: RoleCredentials,
    /// The chained profile's own AssumeRole parameters (its trust policy may require them).
    chained: bool,
}

impl Broker {
    /// Credentials of `profile` narrowed by `scope`: from the cache while fresh, else one
    /// AssumeRole for all concurrent callers.
    pub async fn scoped_credentials(
        self: &Arc<Self>,
        profile: &str,
        scope: &SessionScope,
        req: CredentialRequest,
    ) -> Result<RoleCredentials, ErrorBody> {
        self.scoped_session(profile, scope, req, true).await
    }

    /// [`Self::scoped_credentials`]; `asked` says a client asked (a renewal does not count as
    /// use).
    async fn scoped_session(
        self: &Arc<Self>,
        profile: &str,
        scope: &SessionScope,
        req: CredentialRequest,
        asked: bool,
    ) -> Result<RoleCredentials, ErrorBody> {
        scope
            .check()
            .map_err(|e| ErrorBody::new(ErrorCode::BadRequest, e))?;
        let (pc, _) = self.resolve(profile)?;
        let reg = self.registry();
        if let Some(own) = profile_scope(&pc) {
            if own.policy_hash() != scope.policy_hash() {
                return Err(ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!("profile '{profile}' already has a session policy ({}); another one would replace it, not narrow it further (AWS does not carry session policies into a new session)", own.policy_hash()),
                )
                .with_hint("rolecall exec --policy FILE <a profile without session_policy> -- …"));
            }
        }
        let base = self.scoped_base(&reg, profile, &pc, req).await?;
        let hash = scope.policy_hash();
        let source_identity =
            chain_source_identity(&reg, &pc).or_else(|| scope.source_identity.clone());
        let key = format!(
            "{:?}|{hash}|si={source_identity:?}",
            CacheKey::of(&reg, &pc)
        );
        let now = self.clock.now();
        if asked {
            lock(&self.scoped.used).insert(key.clone(), now);
        }
        let refresh_ahead = reg.config.daemon.refresh_ahead.as_secs() as i64;
        if let Some((_, c)) = lock(&self.scoped.cache).get(&key) {
            if c.creds.expiration - now > c.threshold(refresh_ahead, now) {
                return Ok(c.creds.clone());
            }
        }
        let scope = SessionScope {
            source_identity,
            ..scope.clone()
        };
        let outcome = self
            .fetch_scoped(&key, profile, &pc, base, scope.clone())
            .await;
        if outcome.is_ok() {
            self.renew_ahead(&key, profile, &scope);
        }
        let now = self.clock.now();
        match outcome {
            Ok(c) if c.expiration - now > EXPIRY_MARGIN_SECS => Ok(c),
            Ok(_) => Err(ErrorBody::new(
                ErrorCode::Upstream,
                format!("profile '{profile}': the scoped session's credentials are already expired (check the clock)"),
            )),
            Err(err) => {
                let cached = lock(&self.scoped.cache).get(&key).map(|(_, c)| c.clone());
                if let Some(c) = cached.filter(|c| c.creds.expiration - now > EXPIRY_MARGIN_SECS) {
                    tracing::warn!(profile, error = %err, "serving a cached scoped session while AssumeRole fails");
                    return Ok(c.creds);
                }
                Err(fetch_error_body(&pc.source, &err))
            }
        }
    }

    /// Renews a scoped session in use before it gets stale, as the refresh scheduler does for
    /// profiles: wakes when the cached session reaches its freshness threshold and, if a
    /// client asked for it since its fetch started, assumes the role again (never signing
    /// in). A session nobody asked for since is left to be fetched on demand.
    fn renew_ahead(self: &Arc<Self>, key: &str, profile: &str, scope: &SessionScope) {
        let Some((_, cached)) = lock(&self.scoped.cache).get(key).cloned() else {
            return;
        };
        let refresh_ahead = self.registry().config.daemon.refresh_ahead.as_secs() as i64;
        let fetched = cached.fetched_at();
        if lock(&self.scoped.renewals).insert(key.to_string(), fetched) == Some(fetched) {
            return; // planned already by another caller of the same fetch
        }
        let wake = cached.creds.expiration - cached.threshold(refresh_ahead, self.clock.now());
        let (weak, key, profile, scope) = (
            Arc::downgrade(self),
            key.to_string(),
            profile.to_string(),
            scope.clone(),
        );
        tokio::spawn(async move {
            let Some(this) = weak.upgrade() else { return };
            let wait = (wake - this.clock.now()).max(1) as u64 + 1;
            drop(this);
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            let Some(this) = weak.upgrade() else { return };
            // The client whose request caused the fetch counts (it asked in the same second).
            let used_since = lock(&this.scoped.used)
                .get(&key)
                .is_some_and(|t| *t >= fetched);
            let still_cached = lock(&this.scoped.cache)
                .get(&key)
                .is_some_and(|(_, c)| c.fetched_at() == fetched);
            if used_since && still_cached {
                tracing::debug!(profile, "renewing a scoped session ahead");
                if let Err(e) = this
                    .scoped_session(&profile, &scope, CredentialRequest::default(), false)
                    .await
                {
                    tracing::warn!(profile, error = %e.message, "renewing a scoped session failed");
                }
            }
        });
    }

    /// The role to assume and the credentials to sign with (see the module documentation).
    async fn scoped_base(
        self: &Arc<Self>,
        reg: &Registry,
        profile: &str,
        pc: &ProfileConfig,
        req: CredentialRequest,
    ) -> Result<Base, ErrorBody> {
        if let (Some(parent), Some(role_arn)) = (pc.via.as_deref(), pc.role_arn.as_deref()) {
            let signer = Box::pin(self.credentials(parent, req))
                .await
                .map_err(|e| parent_failed(profile, parent, e))?;
            return Ok(Base {
                role_arn: role_arn.to_string(),
                signer,
                chained: true,
            });
        }
        if let Some(SourceConfig::IdentityCenter(_)) = reg.config.sources.get(&pc.source) {
            return Err(ErrorBody::new(
                ErrorCode::Unsupported,
                format!("profile '{profile}' is an identity-center profile: its AWSReservedSSO_* role trusts only IAM Identity Center, so it cannot be assumed again with a session policy"),
            )
            .with_hint(format!("chain a role from it (a profile with via = \"{profile}\") and scope that profile")));
        }
        let signer = Box::pin(self.unscoped_credentials(profile, req)).await?;
        Ok(Base {
            role_arn: pc.role.clone(),
            signer,
            chained: false,
        })
    }

    /// One AssumeRole per key at a time; later callers join the running one. The fetch runs
    /// in a task of its own, so that it completes (and is cached) when every caller gave up.
    async fn fetch_scoped(
        self: &Arc<Self>,
        key: &str,
        profile: &str,
        pc: &ProfileConfig,
        base: Base,
        scope: SessionScope,
    ) -> Outcome {
        let mut rx = {
            let mut inflight = lock(&self.scoped.inflight);
            match inflight.get(key) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(key.to_string(), rx.clone());
                    let this = Arc::clone(self);
                    let (key, profile, pc) = (key.to_string(), profile.to_string(), pc.clone());
                    tokio::spawn(async move {
                        let reg = this.registry();
                        let outcome = this
                            .fetch_with_retries(&pc, || assume(&reg, &profile, &pc, &base, &scope))
                            .await;
                        let now = this.clock.now();
                        if let Ok(c) = &outcome {
                            let hash = scope.policy_hash();
                            remember(&c.access_key_id, &hash, c.expiration, now);
                            let mut cache = lock(&this.scoped.cache);
                            cache.retain(|_, (_, old)| old.creds.expiration > now);
                            let grew = cache
                                .get(&key)
                                .is_none_or(|(_, old)| c.expiration > old.creds.expiration);
                            cache.insert(
                                key.clone(),
                                (
                                    pc.source.clone(),
                                    Cached {
                                        creds: c.clone(),
                                        lifetime: c.expiration - now,
                                        grew,
                                    },
                                ),
                            );
                            tracing::info!(profile, policy = %hash, source_identity = ?scope.source_identity, "scoped session assumed");
                        } else if let Err(e) = &outcome {
                            tracing::warn!(profile, error = %e, "scoped session failed");
                        }
                        lock(&this.scoped.inflight).remove(&key);
                        let _ = tx.send(Some(outcome));
                    });
                    rx
                }
            }
        };
        let res = rx.wait_for(Option::is_some).await.map(|v| v.clone());
        match res {
            Ok(v) => v.unwrap_or_else(|| {
                Err(Arc::new(SourceError::Internal(
                    "the scoped session fetch vanished".into(),
                )))
            }),
            Err(_) => {
                lock(&self.scoped.inflight).remove(key);
                Err(Arc::new(SourceError::Internal(
                    "the scoped session fetch ended abnormally".into(),
                )))
            }
        }
    }
}

/// The AssumeRole of a scoped session, through the STS endpoint the profile's source uses.
async fn assume(
    reg: &Registry,
    profile: &str,
    pc: &ProfileConfig,
    base: &Base,
    scope: &SessionScope,
) -> Result<RoleCredentials, SourceError> {
    let client = super::chain::sts_client_as(reg, pc, &base.signer, "rolecall-scoped")?;
    let hash = scope.policy_hash();
    // No `PolicyArns` parameter at all without managed policies.
    let policy_arns = (!scope.policy_arns.is_empty()).then(|| {
        scope
            .policy_arns
            .iter()
            .map(|arn| {
                aws_sdk_sts::types::PolicyDescriptorType::builder()
                    .arn(arn)
                    .build()
            })
            .collect()
    });
    let mut call = client
        .assume_role()
        .role_arn(&base.role_arn)
        .role_session_name(session_name(profile, &hash))
        // Every base is a role session: AWS caps what it assumes at one hour.
        .duration_seconds(super::chain::requested_duration(pc) as i32)
        .set_policy(scope.policy.clone())
        .set_policy_arns(policy_arns)
        .set_source_identity(scope.source_identity.clone());
    if base.chained {
        call = call
            .set_external_id(pc.external_id.clone())
            .set_tags(super::chain::session_tags(profile, pc)?);
    }
    let out = call
        .send()
        .await
        .map_err(|e| super::chain::failure(profile, &base.role_arn, &e))?;
    super::chain::assumed_credentials(&out, profile, &base.role_arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_carry_the_policy_hash_within_the_model() {
        assert_eq!(
            session_name("deploy", "sha256:0123456789abcdef"),
            "rolecall-deploy-01234567"
        );
        let long = session_name(&"x".repeat(80), "sha256:0123456789abcdef");
        assert_eq!(long.len(), 64);
        assert!(long.ends_with("-01234567"));
    }

    #[test]
    fn hashes_are_remembered_until_expiry() {
        remember("ASIASCOPEDTEST1", "sha256:aa", 2000, 1000);
        assert_eq!(
            policy_hash_of("ASIASCOPEDTEST1").as_deref(),
            Some("sha256:aa")
        );
        remember("ASIASCOPEDTEST2", "sha256:bb", 4000, 3000);
        assert_eq!(
            policy_hash_of("ASIASCOPEDTEST1"),
            None,
            "expired entries go"
        );
        assert_eq!(policy_hash_of("ASIANOTSCOPED"), None);
    }
}
