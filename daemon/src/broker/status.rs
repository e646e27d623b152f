//! What `status` and the prompt snapshot show: per-source and per-profile state.

use super::cache::profile_account;
use super::{lock, Broker};
use crate::config::{Config, SourceConfig};
use crate::sources::SessionState;
use rolecall_proto::api::{ProfileStatus, SourceStatus};

/// The roles a source offers that no profile of it uses, in the source's order, once each.
pub(super) fn unconfigured_roles(config: &Config, source: &str, known: Vec<String>) -> Vec<String> {
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

impl Broker {
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
