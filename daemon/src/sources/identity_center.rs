//! The `identity-center` source (docs/design.md, *identity-center*): Entra is the external IdP of
//! IAM Identity Center; rolecall signs in to Identity Center's OIDC service and gets role
//! credentials from the SSO portal.
//!
//! - Client registration per flow (`RegisterClient`), kept in the vault and renewed a day
//!   before `clientSecretExpiresAt`.
//! - Login: the PKCE authorization-code flow with a loopback redirect (default where a browser
//!   is available), or the device authorization flow.
//! - The session (access + refresh token) lives in the vault; the access token is renewed with
//!   the refresh token when it has under 5 minutes left, one renewal at a time.
//! - Credentials from `GetRoleCredentials`; roles from `ListAccounts` × `ListAccountRoles`.
//! - Without a session of its own, a usable token of the same start URL and region in the AWS
//!   CLI's SSO cache is taken (a user signed in with `aws sso login` needs no browser); with
//!   `share_aws_cli_cache`, every token it gets is written back there (docs/interop.md).

mod authorize;
mod aws_cli_cache;
pub mod config;
pub(crate) mod errors;
mod login;
mod portal;
mod records;
mod session;
pub mod start_url;

use self::errors::Failure;
use self::records::{registration_key, token_key, Flow, Registration};
use super::common::renew_once::RenewOnce;
use super::common::SourceContext;
use super::{LoginOptions, LoginProgress, RoleCredentials, SessionState, Source, SourceError};
use crate::clock::Clock;
use crate::config::{IdentityCenterConfig, ProfileConfig};
use crate::endpoints::{self, EnvSnapshot, Service};
use crate::vault::SecretStore;
use rolecall_proto::api::AvailableRole;
use std::sync::Arc;
use std::time::Duration;

/// The one scope rolecall asks for; with it, CreateToken also returns a refresh token.
pub const SCOPE: &str = "sso:account:access";
/// The redirect URI registered for PKCE: no port, so that any loopback port is accepted.
pub const REGISTERED_REDIRECT_URI: &str = "http://127.0.0.1/oauth/callback";
pub const CALLBACK_PATH: &str = "/oauth/callback";
const GRANT_AUTH_CODE: &str = "authorization_code";
const GRANT_REFRESH: &str = "refresh_token";
const GRANT_DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Renew a registration this long before its secret expires.
const REGISTRATION_RENEW_AHEAD: i64 = 24 * 3600;
/// Renew the access token when it has less than this left.
const TOKEN_RENEW_AHEAD: i64 = 5 * 60;
/// Parallel `ListAccountRoles` calls.
const LIST_CONCURRENCY: usize = 8;
/// How many refused cache-token fingerprints are remembered.
const REFUSED_KEEP: usize = 16;

pub struct IdentityCenter {
    name: String,
    cfg: IdentityCenterConfig,
    vault: Arc<SecretStore>,
    env: Arc<EnvSnapshot>,
    hostname: String,
    login_timeout: Duration,
    /// Where the browser goes for `/authorize` (the resolved OIDC endpoint).
    oidc_base: String,
    oidc: aws_sdk_ssooidc::Client,
    sso: aws_sdk_sso::Client,
    /// The start URL after its custom-domain redirect, once known.
    resolved_start: tokio::sync::OnceCell<String>,
    /// One token renewal at a time: with refresh-token rotation, two concurrent renewals with
    /// the same refresh token would make the second fail and end the session.
    renewal: RenewOnce,
    clock: Arc<dyn Clock>,
    /// `$HOME/.aws/sso/cache`, when HOME is known.
    aws_cache_dir: Option<std::path::PathBuf>,
    /// The shared session's file name there: SHA-1 of `sso_session` (default: the source name).
    aws_cache_file: String,
}

impl std::fmt::Debug for IdentityCenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityCenter")
            .field("name", &self.name)
            .field("start_url", &self.cfg.start_url)
            .field("region", &self.cfg.region)
            .finish_non_exhaustive()
    }
}

impl IdentityCenter {
    pub fn new(
        name: &str,
        cfg: &IdentityCenterConfig,
        ctx: &SourceContext,
    ) -> Result<IdentityCenter, SourceError> {
        let bad = |what: String| SourceError::Config(format!("source '{name}': {what}"));
        match url::Url::parse(&cfg.start_url) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            _ => {
                return Err(bad(format!(
                    "start_url {:?} is not an http(s) URL",
                    cfg.start_url
                )))
            }
        }
        if cfg.region.trim().is_empty() {
            return Err(bad("region is empty".into()));
        }
        let ep = cfg.endpoint_url.as_deref();
        let oidc_ep = endpoints::resolve(Service::SsoOidc, ep, &ctx.env).map_err(bad)?;
        let sso_ep = endpoints::resolve(Service::Sso, ep, &ctx.env).map_err(bad)?;
        let oidc_base = oidc_ep
            .clone()
            .unwrap_or_else(|| Service::SsoOidc.default_endpoint(&cfg.region));
        Ok(IdentityCenter {
            name: name.to_string(),
            cfg: cfg.clone(),
            vault: ctx.vault.clone(),
            env: ctx.env.clone(),
            hostname: ctx.hostname.clone(),
            login_timeout: ctx.login_timeout,
            oidc_base,
            oidc: endpoints::ssooidc_client(&cfg.region, oidc_ep.as_deref()),
            sso: endpoints::sso_client(&cfg.region, sso_ep.as_deref()),
            resolved_start: tokio::sync::OnceCell::new(),
            renewal: RenewOnce::new(ctx.clock.clone(), TOKEN_RENEW_AHEAD),
            clock: ctx.clock.clone(),
            aws_cache_dir: aws_cli_cache::cache_dir(endpoints::env_var(&ctx.env, "HOME")),
            aws_cache_file: aws_cli_cache::file_name(cfg.sso_session.as_deref().unwrap_or(name)),
        })
    }

    fn upstream(&self, what: &str, f: &Failure) -> SourceError {
        SourceError::Upstream {
            message: format!(
                "{} ({}): {what} failed: {}",
                self.name,
                self.kind(),
                f.message
            ),
            retryable: f.retryable,
        }
    }

    fn vault_err(&self, e: crate::vault::VaultError) -> SourceError {
        SourceError::Internal(format!("{}: {e}", self.name))
    }
}

#[async_trait::async_trait]
impl Source for IdentityCenter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "identity-center"
    }

    async fn session_state(&self) -> SessionState {
        let Some(t) = self.stored_token() else {
            return SessionState::NeedsLogin;
        };
        if t.expires_at > self.clock.now() {
            return SessionState::SignedIn {
                expires: Some(t.expires_at),
            };
        }
        let reg_ok = self
            .vault
            .get::<Registration>(&registration_key(&self.name, t.flow))
            .is_some_and(|r| r.client_id == t.client_id && r.expires_at > self.clock.now());
        if t.refresh_token.is_some() && reg_ok {
            // Expired access token, live refresh token: renewable without the user, end unknown.
            SessionState::SignedIn { expires: None }
        } else {
            SessionState::NeedsLogin
        }
    }

    async fn renew_session(&self) -> Result<(), SourceError> {
        // Nothing stored: nothing to keep alive (a login is the user's call, not the scheduler's;
        // a session in the AWS CLI's cache is taken when a profile is used, not before).
        if self.vault_token().is_none() {
            return Ok(());
        }
        // Renews only inside the token's renewal margin; otherwise no network.
        self.access_token(false).await.map(|_| ())
    }

    async fn session_end(&self) -> Option<i64> {
        let t = self.stored_token()?;
        if t.refresh_token.is_none() {
            // No refresh token: the access token's end is the session's.
            return Some(t.expires_at);
        }
        // The refresh token is bound to its client registration, which only a login renews.
        self.vault
            .get::<Registration>(&registration_key(&self.name, t.flow))
            .filter(|r| r.client_id == t.client_id)
            .map(|r| r.expires_at)
    }

    async fn login(&self, opts: LoginOptions, progress: &LoginProgress) -> Result<(), SourceError> {
        let flow = self.choose_flow(&opts);
        progress.send_modify(|st| st.flow = Some(flow.as_str().into()));
        let start_url = self.start_url().await?;
        let reg = self.registration(flow, &start_url).await?;
        let token = match flow {
            Flow::Pkce => self.login_pkce(&reg, progress).await?,
            Flow::Device => self.login_device(&reg, &start_url, &opts, progress).await?,
            Flow::AwsCli => {
                return Err(SourceError::Internal(format!(
                    "{}: the AWS CLI cache is no login flow",
                    self.name
                )))
            }
        };
        tracing::info!(source = %self.name, flow = flow.as_str(), "signed in to Identity Center");
        progress.send_modify(|st| st.session_expires = Some(token.expires_at));
        Ok(())
    }

    async fn logout(&self) -> Result<(), SourceError> {
        if let Some(t) = self.vault_token() {
            // Ends the portal session too; the local session is dropped whatever it answers.
            if let Err(e) = self.sso.logout().access_token(&t.access_token).send().await {
                let f = errors::read(&e);
                tracing::info!(source = %self.name, error = %f.message, "portal logout failed; forgetting the session anyway");
            }
            // Not taken from the AWS CLI cache again; the shared copy goes too.
            self.refuse(&t.access_token);
            if let (true, Some(dir)) = (self.cfg.share_aws_cli_cache, &self.aws_cache_dir) {
                aws_cli_cache::remove_if_holds(dir, &self.aws_cache_file, &t.access_token);
            }
        }
        self.vault
            .remove(&token_key(&self.name))
            .map_err(|e| self.vault_err(e))
    }

    async fn credentials(&self, profile: &ProfileConfig) -> Result<RoleCredentials, SourceError> {
        self.role_credentials(profile).await
    }

    async fn list_roles(&self) -> Result<Vec<AvailableRole>, SourceError> {
        self.all_roles().await
    }
}
