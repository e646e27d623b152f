//! The container credentials endpoint (docs/containers.md): `GET /v1/container/<profile>` with
//! `Authorization: <token>` on `container_listen` (loopback), answering the JSON of
//! [`rolecall_proto::output::ContainerCredentials`]; the token routes behind
//! `POST/DELETE /v1/container/tokens` on the socket; and the optional IMDSv2 emulation.
//!
//! This module owns serving only. Credentials come through [`CredentialProvider`], which the
//! daemon implements with its broker (same cache and single-flight path as
//! `credential_process`): non-interactive, never waiting for a login — when one is needed the
//! provider starts it and answers an error at once, because SDKs give this endpoint 1–2 s.
//!
//! Wiring (in `app.rs`): build a [`TokenStore`] with [`TokenStore::load`] over the vault, a
//! [`ContainerState`], bind `container_listen`, and spawn [`serve_container`]; the socket
//! router calls [`ContainerState::mint_token`] / [`ContainerState::revoke_tokens`] and
//! [`ContainerState::token_status`] for `status`.
//!
//! The same listener also answers `GET /v1/credentials`, the EKS Pod Identity–style route
//! ([`pod_identity`]), where the token alone selects the profile.

mod digest;
pub mod guard;
mod handler;
pub mod imds;
pub mod peer;
pub mod pod_identity;
mod replies;
pub mod scoped;
pub mod tokens;

use crate::credentials::RoleCredentials;
use rolecall_proto::api::{
    ContainerTokenStatus, ErrorBody, ErrorCode, MintTokenReply, MintTokenRequest, OkReply,
    RenewTokenReply, RenewTokenRequest, RevokeTokenRequest,
};
use rolecall_proto::timefmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

pub use crate::httpd::Limits;
pub use tokens::{NewToken, Revoke, StoredToken, TokenStore, TokenVault};

/// The ECS link-local address that `rolecall container setup` forwards to the listener.
pub const ECS_LINK_LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2));

/// The path prefix of the credentials route.
pub const ROUTE_PREFIX: &str = "/v1/container/";

/// The vault entry holding the token hashes.
pub const VAULT_KEY: &str = "container/tokens";

/// How often tokens bound to a process (`rolecall exec`) are checked for a dead process.
const REAP_INTERVAL: Duration = Duration::from_secs(2);

/// What a profile looks like to the server: enough to mint a token and fill the variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    pub region: Option<String>,
    /// Permission set name (identity-center) or role ARN (entra-*), as configured.
    pub role: String,
    /// The source the profile signs in through (its logout revokes the profile's tokens).
    pub source: String,
}

/// Where the endpoint gets credentials. The daemon implements it with its broker.
#[async_trait::async_trait]
pub trait CredentialProvider: Send + Sync + 'static {
    /// Credentials for `profile`, non-interactively: from the cache, or one (shared) upstream
    /// fetch; when a login is needed, start it (if allowed) and answer the error at once.
    async fn credentials(&self, profile: &str) -> Result<RoleCredentials, ErrorBody>;

    /// The profile's configuration, `None` when no such profile exists.
    fn profile(&self, profile: &str) -> Option<ProfileInfo>;

    /// A value that changes whenever the credentials [`CredentialProvider::credentials`] would
    /// answer may have changed (a fetch, a refresh, a logout, a reload). While it holds, the
    /// endpoint reuses the reply it rendered within the same second instead of asking again.
    /// `None` (the default): ask every time.
    fn generation(&self) -> Option<u64> {
        None
    }

    /// Records credentials the endpoint handed out to `caller` (the daemon's audit log;
    /// nothing by default): `record` is the hand-out's record but for the caller and the token.
    fn audit(
        &self,
        record: &Arc<crate::audit::Template>,
        caller: crate::audit::TcpCaller,
        token: Option<Arc<rolecall_proto::audit::TokenRef>>,
    ) {
        let _ = (record, caller, token);
    }

    /// Credentials for `profile` narrowed by `scope` (a scoped session's token), as
    /// non-interactively as [`CredentialProvider::credentials`].
    async fn scoped_credentials(
        &self,
        profile: &str,
        scope: &rolecall_proto::scope::SessionScope,
    ) -> Result<RoleCredentials, ErrorBody> {
        let _ = scope;
        Err(ErrorBody::new(
            ErrorCode::Unsupported,
            format!("profile '{profile}': this endpoint cannot serve scoped sessions"),
        ))
    }
}

/// The endpoint's shared state.
pub struct ContainerState {
    tokens: Arc<TokenStore>,
    provider: Arc<dyn CredentialProvider>,
    limits: Limits,
    /// The configured listen address, replaced by the bound one once serving (port 0 in tests).
    listen: RwLock<String>,
    /// Lifetime of the tokens `rolecall container` mints, in seconds (`container_token_ttl`).
    token_ttl: AtomicU64,
}

impl std::fmt::Debug for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerState")
            .field("tokens", &self.tokens)
            .field("listen", &self.listen_addr())
            .finish_non_exhaustive()
    }
}

impl ContainerState {
    pub fn new(
        tokens: Arc<TokenStore>,
        provider: Arc<dyn CredentialProvider>,
        container_listen: &str,
    ) -> Self {
        Self {
            tokens,
            provider,
            limits: Limits::default(),
            listen: RwLock::new(container_listen.to_string()),
            token_ttl: AtomicU64::new(crate::config::DEFAULT_CONTAINER_TOKEN_TTL.as_secs()),
        }
    }

    pub fn with_token_ttl(self, ttl: Duration) -> Self {
        self.set_token_ttl(ttl);
        self
    }

    /// Applies `container_token_ttl` (at start and on reload; tokens minted before keep theirs).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.token_ttl
            .store(ttl.as_secs().max(1), Ordering::Relaxed);
    }

    fn token_ttl_secs(&self) -> i64 {
        i64::try_from(self.token_ttl.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn tokens(&self) -> &Arc<TokenStore> {
        &self.tokens
    }

    /// `ip:port` the endpoint is reached on.
    pub fn listen_addr(&self) -> String {
        self.listen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `POST /v1/container/tokens`.
    pub fn mint_token(&self, req: &MintTokenRequest) -> Result<MintTokenReply, ErrorBody> {
        self.mint_token_scoped(req, None)
    }

    /// A token served only credentials narrowed by `scope` (when given; see `scoped`).
    fn mint_token_scoped(
        &self,
        req: &MintTokenRequest,
        scope: Option<rolecall_proto::scope::SessionScope>,
    ) -> Result<MintTokenReply, ErrorBody> {
        let Some(info) = self.provider.profile(&req.profile) else {
            return Err(ErrorBody::new(
                ErrorCode::UnknownProfile,
                format!("no profile named '{}' in the config", req.profile),
            )
            .with_hint("rolecall status"));
        };
        let now = timefmt::now_epoch();
        // A token bound to a process dies with it; every other one has a lifetime.
        let expires = match req.bound_pid {
            Some(_) => None,
            None => Some(now.saturating_add(self.token_ttl_secs())),
        };
        let minted = self
            .tokens
            .mint_token(
                &NewToken {
                    profile: &req.profile,
                    source: Some(&info.source),
                    bound_pid: req.bound_pid,
                    expires,
                    scope,
                },
                now,
            )
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
        tracing::info!(id = %minted.id, profile = %minted.profile, bound_pid = ?req.bound_pid, ?expires, "container token minted");
        let relative_uri = relative_uri(&req.profile);
        Ok(MintTokenReply {
            id: minted.id,
            token: minted.token.to_string(),
            profile: minted.profile,
            full_uri: format!("http://{}{}", self.listen_addr(), relative_uri),
            relative_uri,
            region: info.region,
            expires: minted.expires,
        })
    }

    /// `POST /v1/container/tokens/renew`: a full lifetime from now for the profile's tokens.
    pub fn renew_tokens(&self, req: &RenewTokenRequest) -> Result<RenewTokenReply, ErrorBody> {
        if self.provider.profile(&req.profile).is_none() {
            return Err(ErrorBody::new(
                ErrorCode::UnknownProfile,
                format!("no profile named '{}' in the config", req.profile),
            )
            .with_hint("rolecall status"));
        }
        let now = timefmt::now_epoch();
        let expires = now.saturating_add(self.token_ttl_secs());
        let renewed = self
            .tokens
            .renew(&req.profile, now, expires)
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
        if renewed == 0 {
            return Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!(
                    "profile '{}' has no live container token to renew",
                    req.profile
                ),
            )
            .with_hint(format!("rolecall container {}", req.profile)));
        }
        tracing::info!(profile = %req.profile, renewed, expires, "container tokens renewed");
        Ok(RenewTokenReply { renewed, expires })
    }

    /// After a logout: revokes the tokens minted under `source` (every token when `None`, a
    /// logout of all sources). `profiles` names the profiles of that source now, for tokens
    /// saved before tokens recorded their source.
    pub fn revoke_source(&self, source: Option<&str>, profiles: Vec<String>) -> usize {
        let which = match source {
            Some(s) => Revoke::Source {
                source: s.to_string(),
                profiles,
            },
            None => Revoke::All,
        };
        match self.tokens.revoke(&which) {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(?source, revoked = n, "container tokens revoked at logout");
                }
                n
            }
            Err(e) => {
                tracing::error!(?source, error = %e, "container tokens could not be revoked at logout");
                0
            }
        }
    }

    /// `DELETE /v1/container/tokens`: by id, by profile, or all.
    pub fn revoke_tokens(&self, req: &RevokeTokenRequest) -> Result<OkReply, ErrorBody> {
        let which = match (&req.id, &req.profile) {
            (Some(id), _) => Revoke::Id(id.clone()),
            (None, Some(p)) => Revoke::Profile(p.clone()),
            (None, None) => Revoke::All,
        };
        let n = self
            .tokens
            .revoke(&which)
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
        if n == 0 {
            if let Revoke::Id(id) = &which {
                return Err(ErrorBody::new(
                    ErrorCode::NotFound,
                    format!("no container token with id '{id}'"),
                ));
            }
        }
        tracing::info!(?which, revoked = n, "container tokens revoked");
        Ok(OkReply { ok: true })
    }

    /// The tokens `rolecall status` lists.
    pub fn token_status(&self) -> Vec<ContainerTokenStatus> {
        self.tokens.list()
    }
}

/// `/v1/container/<profile>`, the profile percent-encoded as one path segment.
pub fn relative_uri(profile: &str) -> String {
    format!(
        "{ROUTE_PREFIX}{}",
        percent_encoding::utf8_percent_encode(profile, PATH_SEGMENT)
    )
}

/// Everything but unreserved characters is escaped in a profile's path segment.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The token vault is the daemon's secret store, under [`VAULT_KEY`].
impl TokenVault for crate::vault::SecretStore {
    fn load(&self) -> Result<Vec<StoredToken>, String> {
        Ok(self.get::<Vec<StoredToken>>(VAULT_KEY).unwrap_or_default())
    }

    fn save(&self, tokens: &[StoredToken]) -> Result<(), String> {
        self.put(VAULT_KEY, &tokens).map_err(|e| e.to_string())
    }
}

/// Serves the endpoint on `listener` until `shutdown` completes. Also reaps tokens bound to
/// processes that are gone. The bound address is recorded at once (before the returned future
/// is first polled), so tokens minted right after name the real port.
pub fn serve_container<F>(
    listener: TcpListener,
    state: Arc<ContainerState>,
    shutdown: F,
) -> impl Future<Output = ()> + Send
where
    F: Future<Output = ()> + Send,
{
    if let Ok(addr) = listener.local_addr() {
        *state.listen.write().unwrap_or_else(|e| e.into_inner()) = addr.to_string();
        tracing::info!(%addr, "container credentials endpoint listening");
    }
    async move {
        let reaper = {
            let tokens = state.tokens.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(REAP_INTERVAL);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    match tokens.prune_expired(timefmt::now_epoch()) {
                        Ok(ids) if !ids.is_empty() => {
                            tracing::info!(?ids, "dropped expired container tokens")
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "could not drop expired container tokens")
                        }
                    }
                    match tokens.reap_dead() {
                        Ok(ids) if !ids.is_empty() => {
                            tracing::info!(?ids, "revoked container tokens of exited processes")
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "could not revoke tokens of exited processes")
                        }
                    }
                }
            })
        };
        let limits = state.limits.clone();
        let handler = Arc::new(handler::ContainerHandler::new(state));
        crate::httpd::serve(listener, limits, handler, shutdown).await;
        reaper.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_uris_escape_profile_names() {
        assert_eq!(relative_uri("dev-admin"), "/v1/container/dev-admin");
        assert_eq!(relative_uri("a b/c"), "/v1/container/a%20b%2Fc");
    }
}
