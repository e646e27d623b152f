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
mod errors;
mod records;
mod start_url;

use self::errors::Failure;
use self::records::{now, refused_key, registration_key, token_key, Flow, Registration, Token};
use super::common::SourceContext;
use super::signin;
use super::{LoginOptions, LoginProgress, RoleCredentials, SessionState, Source, SourceError};
use crate::config::{FlowKind, IdentityCenterConfig, ProfileConfig};
use crate::endpoints::{self, EnvSnapshot, Service};
use crate::opener;
use crate::sources::signin::callback::CallbackError;
use crate::vault::SecretStore;
use futures::stream::{self, StreamExt, TryStreamExt};
use rolecall_proto::api::AvailableRole;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

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
/// A token renewed by another caller while this one waited is used if it has this much left.
const JUST_RENEWED_MIN_LEFT: i64 = 30;
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
    renew_lock: tokio::sync::Mutex<()>,
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
            renew_lock: tokio::sync::Mutex::new(()),
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

    async fn start_url(&self) -> Result<String, SourceError> {
        let r = self
            .resolved_start
            .get_or_try_init(|| async {
                let r = start_url::resolve(&self.cfg.start_url).await?;
                if r != self.cfg.start_url {
                    tracing::info!(source = %self.name, from = %self.cfg.start_url, to = %r, "start URL resolved through its redirect");
                }
                Ok::<_, String>(r)
            })
            .await
            .map_err(|e| SourceError::Upstream {
                message: format!("{}: {e}", self.name),
                retryable: true,
            })?;
        Ok(r.clone())
    }

    /// The stored session, if it belongs to the configured start URL and region.
    fn vault_token(&self) -> Option<Token> {
        let t: Token = self.vault.get(&token_key(&self.name))?;
        (t.start_url == self.cfg.start_url && t.region == self.cfg.region).then_some(t)
    }

    /// The stored session, or else one taken from the AWS CLI's SSO cache.
    fn stored_token(&self) -> Option<Token> {
        self.vault_token()
            .or_else(|| self.import_from_cache(i64::MIN))
    }

    /// Ends the stored session; its access token is never taken from the AWS CLI cache again.
    fn drop_token(&self) {
        if let Some(t) = self.vault.get::<Token>(&token_key(&self.name)) {
            self.refuse(&t.access_token);
        }
        if let Err(e) = self.vault.remove(&token_key(&self.name)) {
            tracing::warn!(source = %self.name, error = %e, "could not remove the session from the secret store");
        }
    }

    fn refuse(&self, access_token: &str) {
        let key = refused_key(&self.name);
        let mut list: Vec<String> = self.vault.get(&key).unwrap_or_default();
        let fp = aws_cli_cache::fingerprint(access_token);
        if !list.contains(&fp) {
            list.push(fp);
            let excess = list.len().saturating_sub(REFUSED_KEEP);
            list.drain(..excess);
            if let Err(e) = self.vault.put(&key, &list) {
                tracing::warn!(source = %self.name, error = %e, "could not record an ended session");
            }
        }
    }

    /// Takes the best usable token of this start URL and region from the AWS CLI's SSO cache,
    /// if one lasts longer than `better_than`, into the secret store (with the registration
    /// cached alongside it, which its renewal needs).
    fn import_from_cache(&self, better_than: i64) -> Option<Token> {
        let dir = self.aws_cache_dir.as_deref()?;
        let refused: Vec<String> = self.vault.get(&refused_key(&self.name)).unwrap_or_default();
        let now = now();
        let found = aws_cli_cache::find(
            dir,
            &aws_cli_cache::Wanted {
                start_url: &self.cfg.start_url,
                region: &self.cfg.region,
                preferred: &self.aws_cache_file,
                refused: &refused,
                now,
                better_than,
            },
        )?;
        let c = &found.token;
        let reg = match (&c.client_id, &c.client_secret, c.registration_expires_at) {
            (Some(id), Some(secret), Some(exp)) if c.refreshable(now) => Some(Registration {
                client_id: id.clone(),
                client_secret: secret.to_string(),
                issued_at: 0,
                expires_at: exp,
                start_url: self.cfg.start_url.clone(),
                region: self.cfg.region.clone(),
            }),
            _ => None,
        };
        let token = Token {
            access_token: c.access_token.to_string(),
            expires_at: c.expires_at,
            refresh_token: reg
                .as_ref()
                .and(c.refresh_token.as_ref())
                .map(|r| r.to_string()),
            flow: Flow::AwsCli,
            client_id: c.client_id.clone().unwrap_or_default(),
            start_url: self.cfg.start_url.clone(),
            region: self.cfg.region.clone(),
        };
        if let Some(reg) = &reg {
            if let Err(e) = self
                .vault
                .put(&registration_key(&self.name, Flow::AwsCli), reg)
            {
                tracing::warn!(source = %self.name, error = %e, "could not store the AWS CLI's registration");
                return None;
            }
        }
        if let Err(e) = self.vault.put(&token_key(&self.name), &token) {
            tracing::warn!(source = %self.name, error = %e, "could not store the AWS CLI's session");
            return None;
        }
        tracing::info!(source = %self.name, file = %found.path.display(), renewable = token.refresh_token.is_some(), "took the session from the AWS CLI's SSO cache");
        if found.path.file_name().and_then(|n| n.to_str()) != Some(self.aws_cache_file.as_str()) {
            if let Some(reg) = &reg {
                self.share(&token, reg);
            }
        }
        Some(token)
    }

    /// With `share_aws_cli_cache`, writes the session to the AWS CLI's cache as the shared
    /// sso-session's token, so `aws` and the SDKs use (and renew) the same one.
    fn share(&self, t: &Token, reg: &Registration) {
        if !self.cfg.share_aws_cli_cache {
            return;
        }
        let Some(dir) = self.aws_cache_dir.as_deref() else {
            tracing::warn!(source = %self.name, "HOME is not set: cannot share the session with the AWS CLI");
            return;
        };
        let c = aws_cli_cache::CachedToken {
            start_url: self.cfg.start_url.clone(),
            region: self.cfg.region.clone(),
            access_token: Zeroizing::new(t.access_token.clone()),
            expires_at: t.expires_at,
            refresh_token: t.refresh_token.clone().map(Zeroizing::new),
            client_id: Some(reg.client_id.clone()),
            client_secret: Some(Zeroizing::new(reg.client_secret.clone())),
            registration_expires_at: Some(reg.expires_at),
        };
        match aws_cli_cache::write(dir, &self.aws_cache_file, &c) {
            Ok(()) => {
                tracing::debug!(source = %self.name, file = %dir.join(&self.aws_cache_file).display(), "session written to the AWS CLI's SSO cache")
            }
            Err(e) => {
                tracing::warn!(source = %self.name, dir = %dir.display(), error = %e, "could not write the session to the AWS CLI's SSO cache")
            }
        }
    }

    /// The flow's registration, registering (again) when absent, for another start URL or
    /// region, or within a day of its expiry.
    async fn registration(&self, flow: Flow, start_url: &str) -> Result<Registration, SourceError> {
        let key = registration_key(&self.name, flow);
        if let Some(r) = self.vault.get::<Registration>(&key) {
            if r.start_url == start_url
                && r.region == self.cfg.region
                && r.expires_at - REGISTRATION_RENEW_AHEAD > now()
            {
                return Ok(r);
            }
            tracing::info!(source = %self.name, flow = flow.as_str(), "client registration expires soon or no longer matches; registering again");
        }
        let mut req = self
            .oidc
            .register_client()
            .client_name(format!("rolecall-{}", self.hostname))
            .client_type("public")
            .scopes(SCOPE)
            .grant_types(GRANT_REFRESH);
        req = match flow {
            Flow::Pkce => req
                .grant_types(GRANT_AUTH_CODE)
                .redirect_uris(REGISTERED_REDIRECT_URI)
                .issuer_url(start_url),
            // Sessions from the AWS CLI cache come with their registration; never registered here.
            Flow::Device | Flow::AwsCli => req.grant_types(GRANT_DEVICE),
        };
        let out = req
            .send()
            .await
            .map_err(|e| self.upstream("RegisterClient", &errors::read(&e)))?;
        let (Some(id), Some(secret)) = (out.client_id(), out.client_secret()) else {
            return Err(SourceError::Upstream {
                message: format!(
                    "{}: RegisterClient answered without a client id or secret",
                    self.name
                ),
                retryable: false,
            });
        };
        let reg = Registration {
            client_id: id.to_string(),
            client_secret: secret.to_string(),
            issued_at: out.client_id_issued_at(),
            expires_at: out.client_secret_expires_at(),
            start_url: start_url.to_string(),
            region: self.cfg.region.clone(),
        };
        self.vault.put(&key, &reg).map_err(|e| self.vault_err(e))?;
        Ok(reg)
    }

    fn choose_flow(&self, opts: &LoginOptions) -> Flow {
        if opts.no_browser {
            return Flow::Device;
        }
        match self.cfg.flow {
            Some(FlowKind::Pkce) => Flow::Pkce,
            Some(FlowKind::Device) => Flow::Device,
            None if opener::browser_available(&self.env) => Flow::Pkce,
            None => Flow::Device,
        }
    }

    fn save_token(
        &self,
        out: &aws_sdk_ssooidc::operation::create_token::CreateTokenOutput,
        flow: Flow,
        reg: &Registration,
        previous_refresh: Option<String>,
    ) -> Result<Token, SourceError> {
        let Some(access) = out.access_token() else {
            return Err(SourceError::Upstream {
                message: format!(
                    "{}: CreateToken answered without an access token",
                    self.name
                ),
                retryable: false,
            });
        };
        let t = Token {
            access_token: access.to_string(),
            expires_at: now() + i64::from(out.expires_in().max(0)),
            // Without rotation, the old refresh token stays valid.
            refresh_token: out.refresh_token().map(str::to_string).or(previous_refresh),
            flow,
            client_id: reg.client_id.clone(),
            start_url: self.cfg.start_url.clone(),
            region: self.cfg.region.clone(),
        };
        self.vault
            .put(&token_key(&self.name), &t)
            .map_err(|e| self.vault_err(e))?;
        self.share(&t, reg);
        Ok(t)
    }

    async fn login_pkce(
        &self,
        reg: &Registration,
        progress: &LoginProgress,
    ) -> Result<Token, SourceError> {
        let server = signin::bind_callback(&self.name, CALLBACK_PATH).await?;
        let redirect_uri = server.redirect_uri();
        let pkce = signin::Pkce::new();
        let state = signin::new_state();
        let url = authorize::authorize_url(
            &self.oidc_base,
            &reg.client_id,
            &redirect_uri,
            &state,
            &pkce.challenge,
            SCOPE,
        )
        .map_err(|e| SourceError::Config(format!("{}: {e}", self.name)))?;
        signin::show_and_open(&self.name, &url, &self.env, progress);

        let answer = server.wait(&state, self.login_timeout).await;
        let params = match answer {
            Ok(p) => p,
            Err(CallbackError::Denied { error, description }) => {
                return Err(SourceError::LoginCancelled(format!(
                    "{}: sign-in was refused in the browser: {error}{}",
                    self.name,
                    description.map(|d| format!(" ({d})")).unwrap_or_default()
                )))
            }
            Err(CallbackError::TimedOut(d)) => {
                return Err(SourceError::LoginCancelled(format!(
                    "{}: sign-in timed out after {}s without an answer from the browser",
                    self.name,
                    d.as_secs()
                )))
            }
            Err(e) => return Err(SourceError::Internal(format!("{}: {e}", self.name))),
        };
        let out = self
            .oidc
            .create_token()
            .client_id(&reg.client_id)
            .client_secret(&reg.client_secret)
            .grant_type(GRANT_AUTH_CODE)
            .code(params.code.as_str())
            .code_verifier(pkce.verifier.as_str())
            .redirect_uri(&redirect_uri)
            .send()
            .await
            .map_err(|e| {
                let f = errors::read(&e);
                if f.is("AccessDeniedException") {
                    SourceError::LoginCancelled(format!("{}: sign-in was denied", self.name))
                } else if f.is("InvalidGrantException") {
                    SourceError::LoginCancelled(format!(
                        "{}: the authorization code was refused ({}); sign in again",
                        self.name, f.message
                    ))
                } else {
                    self.upstream("CreateToken", &f)
                }
            })?;
        self.save_token(&out, Flow::Pkce, reg, None)
    }

    async fn login_device(
        &self,
        reg: &Registration,
        start_url: &str,
        opts: &LoginOptions,
        progress: &LoginProgress,
    ) -> Result<Token, SourceError> {
        let auth = self
            .oidc
            .start_device_authorization()
            .client_id(&reg.client_id)
            .client_secret(&reg.client_secret)
            .start_url(start_url)
            .send()
            .await
            .map_err(|e| self.upstream("StartDeviceAuthorization", &errors::read(&e)))?;
        let Some(device_code) = auth.device_code().map(|s| Zeroizing::new(s.to_string())) else {
            return Err(SourceError::Upstream {
                message: format!(
                    "{}: StartDeviceAuthorization answered without a device code",
                    self.name
                ),
                retryable: false,
            });
        };
        let uri = auth.verification_uri().map(str::to_string);
        let complete = auth.verification_uri_complete().map(str::to_string);
        signin::check_device_pages(&self.name, &[uri.as_deref(), complete.as_deref()])?;
        progress.send_modify(|st| {
            st.flow = Some("device".into());
            st.verification_uri = uri.clone();
            st.verification_uri_complete = complete.clone();
            st.user_code = auth.user_code().map(str::to_string);
        });
        signin::open_device_page(
            &self.name,
            complete.as_deref().or(uri.as_deref()),
            opts.no_browser,
            &self.env,
            progress,
        );

        let mut interval = Duration::from_secs(u64::try_from(auth.interval()).unwrap_or(0).max(1));
        let code_life = Duration::from_secs(u64::try_from(auth.expires_in()).unwrap_or(0).max(1));
        let deadline = tokio::time::Instant::now() + code_life.min(self.login_timeout);
        loop {
            tokio::time::sleep(interval).await;
            let res = self
                .oidc
                .create_token()
                .client_id(&reg.client_id)
                .client_secret(&reg.client_secret)
                .grant_type(GRANT_DEVICE)
                .device_code(device_code.as_str())
                .send()
                .await;
            match res {
                Ok(out) => return self.save_token(&out, Flow::Device, reg, None),
                Err(e) => {
                    let f = errors::read(&e);
                    if f.is("AuthorizationPendingException") {
                    } else if f.is("SlowDownException") {
                        interval += Duration::from_secs(5);
                    } else if f.is("ExpiredTokenException") {
                        return Err(SourceError::LoginCancelled(format!(
                            "{}: the device code expired before it was approved; run the login again",
                            self.name
                        )));
                    } else if f.is("AccessDeniedException") {
                        return Err(SourceError::LoginCancelled(format!(
                            "{}: sign-in was denied",
                            self.name
                        )));
                    } else if f.retryable {
                        tracing::debug!(source = %self.name, error = %f.message, "device code poll failed; polling on");
                    } else {
                        return Err(self.upstream("CreateToken", &f));
                    }
                }
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Err(SourceError::LoginCancelled(format!(
                    "{}: sign-in timed out: the device code was not approved within {}s",
                    self.name,
                    code_life.min(self.login_timeout).as_secs()
                )));
            }
        }
    }

    /// A usable access token: the stored one, renewed with the refresh token when it has less
    /// than 5 minutes left (or always, with `force`, after the portal refused it).
    async fn access_token(&self, force: bool) -> Result<Token, SourceError> {
        let needs_login = |why: &str| {
            SourceError::NeedsLogin(format!("not signed in to source '{}' ({why})", self.name))
        };
        let Some(t) = self.stored_token() else {
            return Err(needs_login("no session"));
        };
        if !force && t.expires_at - TOKEN_RENEW_AHEAD > now() {
            return Ok(t);
        }
        let _guard = self.renew_lock.lock().await;
        // Another caller may have renewed it while this one waited: a token that fresh is
        // used as is, even when its whole life is under the renewal margin (one renewal for a
        // crowd of callers, not one each).
        let Some(t2) = self.stored_token() else {
            return Err(needs_login("no session"));
        };
        if t2.access_token != t.access_token && t2.expires_at - JUST_RENEWED_MIN_LEFT > now() {
            return Ok(t2);
        }
        // The AWS CLI (or a tool sharing its cache) may have renewed the same session: its
        // newer token is taken rather than renewing (and, with rotation, its refresh token is
        // the one still valid).
        // A forced renewal (the portal refused the token) takes any newer token that is still
        // valid; otherwise one that needs no renewal itself.
        let wanted_left = if force {
            JUST_RENEWED_MIN_LEFT
        } else {
            TOKEN_RENEW_AHEAD
        };
        let t = match self.import_from_cache(t2.expires_at) {
            Some(n) if n.expires_at - wanted_left > now() => return Ok(n),
            Some(n) => n,
            None => t2,
        };
        let Some(refresh) = t.refresh_token.clone() else {
            return if !force && t.expires_at > now() {
                Ok(t)
            } else {
                Err(needs_login("the session has ended and cannot be renewed"))
            };
        };
        let reg: Option<Registration> = self.vault.get(&registration_key(&self.name, t.flow));
        let Some(reg) = reg.filter(|r| r.client_id == t.client_id && r.expires_at > now()) else {
            self.drop_token();
            return Err(needs_login("the client registration expired"));
        };
        let res = self
            .oidc
            .create_token()
            .client_id(&reg.client_id)
            .client_secret(&reg.client_secret)
            .grant_type(GRANT_REFRESH)
            .refresh_token(&refresh)
            .send()
            .await;
        match res {
            Ok(out) => {
                tracing::debug!(source = %self.name, "access token renewed");
                self.save_token(&out, t.flow, &reg, Some(refresh))
            }
            Err(e) => {
                let f = errors::read(&e);
                let revoked = f.is("InvalidGrantException")
                    || f.is("ExpiredTokenException")
                    || f.is("InvalidClientException")
                    || f.is("UnauthorizedClientException")
                    || f.is("AccessDeniedException");
                if revoked {
                    tracing::info!(source = %self.name, reason = %f.message, "refresh token refused; the session is over");
                    self.drop_token();
                    Err(SourceError::NeedsLogin(format!(
                        "not signed in to source '{}' (refresh token revoked or expired)",
                        self.name
                    )))
                } else if !force && t.expires_at > now() {
                    // Still valid for a few minutes: serve with it and renew next time.
                    tracing::warn!(source = %self.name, error = %f.message, "access token renewal failed; using the current one");
                    Ok(t)
                } else {
                    Err(self.upstream("CreateToken (refresh)", &f))
                }
            }
        }
    }

    async fn get_role_credentials(
        &self,
        token: &Token,
        account: &str,
        role: &str,
    ) -> Result<aws_sdk_sso::operation::get_role_credentials::GetRoleCredentialsOutput, Failure>
    {
        self.sso
            .get_role_credentials()
            .access_token(&token.access_token)
            .account_id(account)
            .role_name(role)
            .send()
            .await
            .map_err(|e| errors::read(&e))
    }

    async fn list_account_roles(
        &self,
        token: &Token,
        account_id: String,
        account_name: Option<String>,
    ) -> Result<Vec<AvailableRole>, SourceError> {
        let mut roles = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .sso
                .list_account_roles()
                .access_token(&token.access_token)
                .account_id(&account_id)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| self.portal_error("ListAccountRoles", &errors::read(&e)))?;
            for r in out.role_list() {
                if let Some(name) = r.role_name() {
                    roles.push(AvailableRole {
                        account_id: account_id.clone(),
                        account_name: account_name.clone(),
                        role: name.to_string(),
                        principal: None,
                    });
                }
            }
            match out.next_token() {
                Some(n) if !n.is_empty() => next = Some(n.to_string()),
                _ => break,
            }
        }
        Ok(roles)
    }

    fn portal_error(&self, what: &str, f: &Failure) -> SourceError {
        if f.is("UnauthorizedException") {
            SourceError::NeedsLogin(format!(
                "not signed in to source '{}' (the portal refused the session)",
                self.name
            ))
        } else {
            self.upstream(what, f)
        }
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
        if t.expires_at > now() {
            return SessionState::SignedIn {
                expires: Some(t.expires_at),
            };
        }
        let reg_ok = self
            .vault
            .get::<Registration>(&registration_key(&self.name, t.flow))
            .is_some_and(|r| r.client_id == t.client_id && r.expires_at > now());
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
        let Some(account) = profile.account.as_deref().filter(|a| !a.is_empty()) else {
            return Err(SourceError::Config(format!(
                "a profile of identity-center source '{}' needs `account`",
                self.name
            )));
        };
        let role = profile.role.as_str();
        let mut token = self.access_token(false).await?;
        let mut renewed = false;
        let out = loop {
            match self.get_role_credentials(&token, account, role).await {
                Ok(out) => break out,
                Err(f) if f.is("UnauthorizedException") && !renewed => {
                    // The portal ended the session before the token's own expiry (sign-out
                    // elsewhere, admin action): one renewal, then give up.
                    renewed = true;
                    token = self.access_token(true).await?;
                }
                Err(f) if f.is("UnauthorizedException") => {
                    self.drop_token();
                    return Err(SourceError::NeedsLogin(format!(
                        "not signed in to source '{}' (Identity Center ended the session)",
                        self.name
                    )));
                }
                Err(f) if f.is("ForbiddenException") || f.status == Some(403) => {
                    return Err(SourceError::AccessDenied(format!(
                        "no assignment of {role} in {account} for source '{}'",
                        self.name
                    )))
                }
                Err(f) if f.is("ResourceNotFoundException") => {
                    return Err(SourceError::AccessDenied(format!(
                        "no permission set {role} in account {account} (source '{}')",
                        self.name
                    )))
                }
                Err(f) => return Err(self.upstream("GetRoleCredentials", &f)),
            }
        };
        let Some(rc) = out.role_credentials() else {
            return Err(SourceError::Upstream {
                message: format!(
                    "{}: GetRoleCredentials answered without credentials",
                    self.name
                ),
                retryable: true,
            });
        };
        let (Some(akid), Some(secret), Some(session)) = (
            rc.access_key_id(),
            rc.secret_access_key(),
            rc.session_token(),
        ) else {
            return Err(SourceError::Upstream {
                message: format!(
                    "{}: GetRoleCredentials answered incomplete credentials",
                    self.name
                ),
                retryable: true,
            });
        };
        Ok(RoleCredentials {
            access_key_id: akid.to_string(),
            secret_access_key: Zeroizing::new(secret.to_string()),
            session_token: Zeroizing::new(session.to_string()),
            // The portal answers in epoch milliseconds.
            expiration: rc.expiration().div_euclid(1000),
            account_id: account.to_string(),
            // The real role is `AWSReservedSSO_<permission set>_<random suffix>` under
            // `aws-reserved/sso.amazonaws.com/`; the portal does not say the suffix, and a guessed
            // ARN would be wrong. Left empty: whoever needs it (the container endpoint's RoleArn)
            // asks STS GetCallerIdentity with these credentials.
            role_arn: String::new(),
        })
    }

    async fn list_roles(&self) -> Result<Vec<AvailableRole>, SourceError> {
        let token = self.access_token(false).await?;
        let mut accounts = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .sso
                .list_accounts()
                .access_token(&token.access_token)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| self.portal_error("ListAccounts", &errors::read(&e)))?;
            for a in out.account_list() {
                if let Some(id) = a.account_id() {
                    accounts.push((id.to_string(), a.account_name().map(str::to_string)));
                }
            }
            match out.next_token() {
                Some(n) if !n.is_empty() => next = Some(n.to_string()),
                _ => break,
            }
        }
        let token = &token;
        let mut roles: Vec<AvailableRole> = stream::iter(accounts)
            .map(|(id, name)| self.list_account_roles(token, id, name))
            .buffer_unordered(LIST_CONCURRENCY)
            .try_concat()
            .await?;
        roles.sort_by(|a, b| (&a.account_id, &a.role).cmp(&(&b.account_id, &b.role)));
        Ok(roles)
    }
}
