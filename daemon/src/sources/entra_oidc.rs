//! The `entra-oidc` source (docs/entra-oidc.md): an Entra app registration trusted by an IAM OIDC
//! identity provider.
//!
//! - Login: the authorization-code flow with PKCE and a loopback redirect (default where a
//!   browser is available), or the device authorization grant (RFC 8628), against
//!   `{authority}/{tenant}/oauth2/v2.0/{authorize,devicecode,token}`, with `openid profile
//!   offline_access` so that a refresh token comes back.
//! - The token STS receives: the v2 ID token (issuer `{authority}/{tenant}/v2.0`, audience =
//!   `client_id`), or with `token = "access_token"` the access token of a custom API
//!   (`scope = "api://…/.default"`). Microsoft Graph access tokens are refused.
//! - The session (that token, its expiry, the refresh token) lives in the vault under
//!   `oidc/<source>/token`; the token is renewed with the refresh token (rotated: the new one is
//!   kept) when it has under 5 minutes left, one renewal at a time, until Entra refuses the
//!   refresh token (`invalid_grant`): then the session is dropped and a login is needed. The
//!   refresh scheduler calls `renew_session` every minute, so the renewal happens ahead of any
//!   client; `session_end` is known only for a session without a refresh token.
//! - Credentials: STS `AssumeRoleWithWebIdentity` (unsigned), `RoleSessionName` from the
//!   user's UPN (or the configured `role_session_name`, `{upn}` replaced), `DurationSeconds`
//!   from the profile's `duration`, retried once with 3600 when the role allows less.

mod claims;
mod entra;
mod records;
mod sts;

use self::entra::{Entra, Failure, TokenResponse};
use self::records::{now, token_key, Binding, Session};
use super::common::SourceContext;
use super::signin;
use super::{LoginOptions, LoginProgress, RoleCredentials, SessionState, Source, SourceError};
use crate::config::{EntraOidcConfig, FlowKind, OidcTokenKind, ProfileConfig};
use crate::endpoints::{self, EnvSnapshot, Service};
use crate::opener;
use crate::sources::signin::callback::CallbackError;
use crate::vault::SecretStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use self::claims::{is_graph_audience, scope_is_graph, session_name};

pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
pub const CALLBACK_PATH: &str = "/oauth/callback";
/// The scopes every login asks for: the ID token, the user's name in it, a refresh token.
const BASE_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];
/// STS region when neither the source nor the profile names one.
const DEFAULT_REGION: &str = "us-east-1";
/// Renew the web identity token when it has less than this left.
const TOKEN_RENEW_AHEAD: i64 = 5 * 60;
/// A token renewed by another caller while this one waited is used if it has this much left.
const JUST_RENEWED_MIN_LEFT: i64 = 30;
/// Fallback device-code polling interval and lifetime when Entra does not say.
const DEFAULT_INTERVAL: u64 = 5;
const DEFAULT_DEVICE_CODE_LIFE: u64 = 900;
/// RFC 8628 section 3.5: on `slow_down`, poll 5 s less often from then on.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Fallback role session length when the role refuses the requested one.
const FALLBACK_DURATION: i32 = 3600;

pub struct EntraOidc {
    name: String,
    cfg: EntraOidcConfig,
    vault: Arc<SecretStore>,
    env: Arc<EnvSnapshot>,
    hostname: String,
    login_timeout: Duration,
    entra: Entra,
    /// The settings a stored session must match to be used.
    binding: Binding,
    /// The space-separated scope sent with every grant.
    scope: String,
    sts_endpoint: Option<String>,
    /// One STS client per region (profiles of one source may name different regions).
    sts: Mutex<HashMap<String, aws_sdk_sts::Client>>,
    /// One renewal at a time: Entra rotates refresh tokens, so two concurrent renewals with the
    /// same one would race for the stored session.
    renew_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for EntraOidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraOidc")
            .field("name", &self.name)
            .field("tenant", &self.cfg.tenant)
            .field("client_id", &self.cfg.client_id)
            .finish_non_exhaustive()
    }
}

/// `openid profile offline_access` plus the configured scope, without repeats.
fn full_scope(extra: Option<&str>) -> String {
    let mut v: Vec<&str> = BASE_SCOPES.to_vec();
    for s in extra.unwrap_or("").split_whitespace() {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v.join(" ")
}

fn token_kind_name(k: OidcTokenKind) -> &'static str {
    match k {
        OidcTokenKind::IdToken => "id_token",
        OidcTokenKind::AccessToken => "access_token",
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<path/name>` → the account id.
fn role_account(arn: &str) -> Option<&str> {
    let mut p = arn.splitn(6, ':');
    let (Some("arn"), Some(part), Some("iam"), Some(""), Some(acct), Some(res)) =
        (p.next(), p.next(), p.next(), p.next(), p.next(), p.next())
    else {
        return None;
    };
    let ok = !part.is_empty()
        && acct.len() == 12
        && acct.bytes().all(|b| b.is_ascii_digit())
        && res.strip_prefix("role/").is_some_and(|n| !n.is_empty());
    ok.then_some(acct)
}

impl EntraOidc {
    pub fn new(
        name: &str,
        cfg: &EntraOidcConfig,
        ctx: &SourceContext,
    ) -> Result<EntraOidc, SourceError> {
        let bad = |what: String| SourceError::Config(format!("source '{name}': {what}"));
        let tenant = cfg.tenant.trim();
        if tenant.is_empty() || tenant.contains(['/', '?', '#', ' ']) {
            return Err(bad(format!(
                "tenant {:?} is not a tenant id or domain",
                cfg.tenant
            )));
        }
        if cfg.client_id.trim().is_empty() {
            return Err(bad("client_id is empty".into()));
        }
        let authority = cfg
            .authority
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .unwrap_or(DEFAULT_AUTHORITY)
            .trim_end_matches('/')
            .to_string();
        match url::Url::parse(&authority) {
            Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => {}
            _ => {
                return Err(bad(format!(
                    "authority {authority:?} is not an http(s) URL (like \"{DEFAULT_AUTHORITY}\")"
                )))
            }
        }
        let extra = cfg
            .scope
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if cfg.token == OidcTokenKind::AccessToken {
            let Some(s) = extra else {
                return Err(bad(
                    "token = \"access_token\" needs scope = \"api://<App ID URI>/.default\" (the custom API whose tokens the IAM OIDC provider trusts)".into(),
                ));
            };
            if scope_is_graph(s) {
                return Err(bad(format!(
                    "scope {s:?} asks for a Microsoft Graph access token, which AWS cannot use: expose an API on the app registration and set scope = \"api://<App ID URI>/.default\", or use token = \"id_token\""
                )));
            }
        }
        if let Some(t) = cfg.role_session_name.as_deref() {
            if t.trim().is_empty() {
                return Err(bad("role_session_name is empty".into()));
            }
        }
        let sts_endpoint =
            endpoints::resolve(Service::Sts, cfg.endpoint_url.as_deref(), &ctx.env).map_err(bad)?;
        let entra = Entra::new(&authority, tenant).map_err(bad)?;
        let scope = full_scope(extra);
        Ok(EntraOidc {
            name: name.to_string(),
            binding: Binding {
                authority,
                tenant: tenant.to_string(),
                client_id: cfg.client_id.trim().to_string(),
                token: token_kind_name(cfg.token).to_string(),
                scope: scope.clone(),
            },
            cfg: cfg.clone(),
            vault: ctx.vault.clone(),
            env: ctx.env.clone(),
            hostname: ctx.hostname.clone(),
            login_timeout: ctx.login_timeout,
            entra,
            scope,
            sts_endpoint,
            sts: Mutex::new(HashMap::new()),
            renew_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn client_id(&self) -> &str {
        &self.binding.client_id
    }

    fn vault_err(&self, e: crate::vault::VaultError) -> SourceError {
        SourceError::Internal(format!("{}: {e}", self.name))
    }

    fn sts_client(&self, region: &str) -> aws_sdk_sts::Client {
        let mut m = self.sts.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(region.to_string())
            .or_insert_with(|| endpoints::sts_client(region, self.sts_endpoint.as_deref(), None))
            .clone()
    }

    fn stored(&self) -> Option<Session> {
        let s: Session = self.vault.get(&token_key(&self.name))?;
        (s.binding == self.binding).then_some(s)
    }

    fn drop_session(&self) {
        if let Err(e) = self.vault.remove(&token_key(&self.name)) {
            tracing::warn!(source = %self.name, error = %e, "could not remove the session from the secret store");
        }
    }

    /// An Entra failure as the user should read it. `during` names the step.
    fn entra_error(&self, during: &str, f: &Failure, flow: &str) -> SourceError {
        if f.aadsts() == Some(7_000_218) {
            let how = if flow == "device" {
                "enable 'Allow public client flows' on the app registration (Authentication → Advanced settings), or use flow = \"pkce\""
            } else {
                "enable 'Allow public client flows' on the app registration and register the redirect URI http://127.0.0.1/oauth/callback under 'Mobile and desktop applications' (not 'Web'), or use flow = \"device\""
            };
            return SourceError::Config(format!(
                "source '{}': Entra treats app {} as a confidential client (AADSTS7000218: it asks for a client secret, which rolecall does not use): {how}",
                self.name,
                self.client_id()
            ));
        }
        if f.error() == Some("invalid_client") || f.error() == Some("unauthorized_client") {
            return SourceError::Config(format!(
                "source '{}': Entra refused client_id {} ({f}); check tenant and client_id",
                self.name,
                self.client_id()
            ));
        }
        if matches!(f.error(), Some("invalid_scope" | "invalid_resource")) {
            return SourceError::Config(format!(
                "source '{}': Entra refused the scope {:?} ({f})",
                self.name, self.scope
            ));
        }
        SourceError::Upstream {
            message: format!("{} (entra-oidc): {during} failed: {f}", self.name),
            retryable: f.retryable(),
        }
    }

    /// Turns a token answer into the stored session (checked, saved). `previous` supplies the
    /// refresh token and user when the answer leaves them out.
    fn save(
        &self,
        resp: TokenResponse,
        flow: &str,
        previous: Option<&Session>,
    ) -> Result<Session, SourceError> {
        let kind = self.cfg.token;
        let token = match kind {
            OidcTokenKind::IdToken => resp.id_token.clone(),
            OidcTokenKind::AccessToken => resp.access_token.clone(),
        };
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(SourceError::Upstream {
                message: format!(
                    "{}: Entra answered without {} (scope {:?})",
                    self.name,
                    match kind {
                        OidcTokenKind::IdToken => "an ID token",
                        OidcTokenKind::AccessToken => "an access token",
                    },
                    self.scope
                ),
                retryable: false,
            });
        };
        let c = claims::decode(&token).map_err(|e| SourceError::Upstream {
            message: format!("{}: Entra's {}: {e}", self.name, token_kind_name(kind)),
            retryable: false,
        })?;
        if let Some(a) = c.aud.iter().find(|a| is_graph_audience(a)) {
            return Err(SourceError::Config(format!(
                "source '{}': Entra issued a Microsoft Graph token (aud {a}), which AWS cannot use: set scope = \"api://<App ID URI>/.default\" of an API exposed by the app registration, or use token = \"id_token\"",
                self.name
            )));
        }
        // The ID token names the user even when the access token is the one used.
        let user = c
            .user
            .clone()
            .or_else(|| {
                resp.id_token
                    .as_deref()
                    .and_then(|t| claims::decode(t).ok())
                    .and_then(|c| c.user)
            })
            .or_else(|| previous.and_then(|p| p.user.clone()));
        let expires_at = c
            .exp
            .or_else(|| resp.expires_in_secs().map(|s| now() + s))
            .unwrap_or_else(|| now() + 3600);
        let s = Session {
            web_identity_token: token,
            expires_at,
            // Entra rotates refresh tokens; without a new one the old one stays valid.
            refresh_token: resp
                .refresh_token
                .clone()
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            user,
            flow: flow.to_string(),
            binding: self.binding.clone(),
        };
        self.vault
            .put(&token_key(&self.name), &s)
            .map_err(|e| self.vault_err(e))?;
        Ok(s)
    }

    fn choose_flow(&self, opts: &LoginOptions) -> &'static str {
        if opts.no_browser {
            return "device";
        }
        match self.cfg.flow {
            Some(FlowKind::Pkce) => "pkce",
            Some(FlowKind::Device) => "device",
            None if opener::browser_available(&self.env) => "pkce",
            None => "device",
        }
    }

    async fn login_pkce(&self, progress: &LoginProgress) -> Result<Session, SourceError> {
        let server = signin::bind_callback(&self.name, CALLBACK_PATH).await?;
        let redirect_uri = server.redirect_uri();
        let pkce = signin::Pkce::new();
        let state = signin::new_state();
        let url = self
            .entra
            .authorize_url(
                self.client_id(),
                &redirect_uri,
                &self.scope,
                &state,
                &pkce.challenge,
            )
            .map_err(|e| SourceError::Config(format!("source '{}': {e}", self.name)))?;
        signin::show_and_open(&self.name, &url, &self.env, progress);
        let params = match server.wait(&state, self.login_timeout).await {
            Ok(p) => p,
            Err(CallbackError::Denied { error, description }) => {
                let d = description
                    .as_deref()
                    .and_then(|d| d.lines().next())
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                if d.contains("AADSTS7000218") {
                    return Err(self.entra_error(
                        "authorize",
                        &Failure::OAuth {
                            status: 400,
                            error,
                            aadsts: Some(7_000_218),
                            description: String::new(),
                        },
                        "pkce",
                    ));
                }
                return Err(SourceError::LoginCancelled(format!(
                    "{}: sign-in was refused in the browser: {error}{d}",
                    self.name
                )));
            }
            Err(CallbackError::TimedOut(d)) => {
                return Err(SourceError::LoginCancelled(format!(
                    "{}: sign-in timed out after {}s without a valid answer from the browser",
                    self.name,
                    d.as_secs()
                )))
            }
            Err(e) => return Err(SourceError::Internal(format!("{}: {e}", self.name))),
        };
        let resp = self
            .entra
            .redeem_code(
                self.client_id(),
                &params.code,
                &redirect_uri,
                &pkce.verifier,
                &self.scope,
            )
            .await
            .map_err(|f| match f.error() {
                Some("invalid_grant") if f.aadsts() != Some(7_000_218) => {
                    SourceError::LoginCancelled(format!(
                        "{}: Entra refused the authorization code ({f}); sign in again",
                        self.name
                    ))
                }
                _ => self.entra_error("redeeming the authorization code", &f, "pkce"),
            })?;
        self.save(resp, "pkce", None)
    }

    async fn login_device(
        &self,
        opts: &LoginOptions,
        progress: &LoginProgress,
    ) -> Result<Session, SourceError> {
        let dc = self
            .entra
            .device_code(self.client_id(), &self.scope)
            .await
            .map_err(|f| self.entra_error("requesting a device code", &f, "device"))?;
        signin::check_device_pages(&self.name, &[Some(&dc.verification_uri)])?;
        progress.send_modify(|st| {
            st.flow = Some("device".into());
            st.verification_uri = Some(dc.verification_uri.clone());
            st.user_code = Some(dc.user_code.clone());
        });
        signin::open_device_page(
            &self.name,
            Some(&dc.verification_uri),
            opts.no_browser,
            &self.env,
            progress,
        );
        let mut interval = Duration::from_secs(dc.interval.unwrap_or(DEFAULT_INTERVAL).max(1));
        let code_life =
            Duration::from_secs(dc.expires_in.unwrap_or(DEFAULT_DEVICE_CODE_LIFE).max(1));
        let bound = code_life.min(self.login_timeout);
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            tokio::time::sleep(interval).await;
            match self
                .entra
                .redeem_device_code(self.client_id(), &dc.device_code)
                .await
            {
                Ok(resp) => return self.save(resp, "device", None),
                Err(f) => match f.error() {
                    Some("authorization_pending") => {}
                    Some("slow_down") => interval += SLOW_DOWN_STEP,
                    Some("authorization_declined") | Some("access_denied") => {
                        return Err(SourceError::LoginCancelled(format!(
                            "{}: sign-in was declined on the device code page",
                            self.name
                        )))
                    }
                    Some("expired_token") => {
                        return Err(SourceError::LoginCancelled(format!(
                            "{}: the device code expired before it was approved; run the login again",
                            self.name
                        )))
                    }
                    Some("bad_verification_code") => {
                        return Err(SourceError::LoginCancelled(format!(
                            "{}: Entra no longer knows the device code (bad_verification_code); run the login again",
                            self.name
                        )))
                    }
                    _ if f.retryable() => {
                        tracing::debug!(source = %self.name, error = %f, "device code poll failed; polling on");
                    }
                    _ => return Err(self.entra_error("polling the device code", &f, "device")),
                },
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Err(SourceError::LoginCancelled(format!(
                    "{}: sign-in timed out: the device code was not approved within {}s",
                    self.name,
                    bound.as_secs()
                )));
            }
        }
    }

    /// A usable web identity token: the stored one, renewed with the refresh token when it has
    /// less than 5 minutes left (or always, with `force`, after STS called it expired).
    async fn web_token(&self, force: bool) -> Result<Session, SourceError> {
        let needs_login = |why: &str| {
            SourceError::NeedsLogin(format!("not signed in to source '{}' ({why})", self.name))
        };
        let Some(t) = self.stored() else {
            return Err(needs_login("no session"));
        };
        if !force && t.expires_at - TOKEN_RENEW_AHEAD > now() {
            return Ok(t);
        }
        let _guard = self.renew_lock.lock().await;
        let Some(t2) = self.stored() else {
            return Err(needs_login("no session"));
        };
        // Renewed by another caller while this one waited: one renewal serves the crowd.
        if t2.web_identity_token != t.web_identity_token
            && t2.expires_at - JUST_RENEWED_MIN_LEFT > now()
        {
            return Ok(t2);
        }
        let t = t2;
        let Some(refresh) = t.refresh_token.clone() else {
            return if !force && t.expires_at > now() {
                Ok(t)
            } else {
                self.drop_session();
                Err(needs_login(
                    "the token expired and there is no refresh token",
                ))
            };
        };
        match self
            .entra
            .refresh(self.client_id(), &refresh, &self.scope)
            .await
        {
            Ok(resp) => {
                tracing::debug!(source = %self.name, "web identity token renewed with the refresh token");
                self.save(resp, &t.flow.clone(), Some(&t))
            }
            Err(f)
                if matches!(
                    f.error(),
                    Some(
                        "invalid_grant"
                            | "interaction_required"
                            | "invalid_client"
                            | "unauthorized_client"
                    )
                ) =>
            {
                tracing::info!(source = %self.name, reason = %f, "Entra refused the refresh token; the session is over");
                self.drop_session();
                let why = match f.aadsts() {
                    Some(50_173) => "Entra revoked the session",
                    Some(700_082) => "the Entra session expired",
                    Some(7_000_218) => "the app registration no longer allows public client flows",
                    _ => "Entra refused the refresh token",
                };
                Err(needs_login(why))
            }
            Err(f) if !force && f.retryable() && t.expires_at > now() => {
                tracing::warn!(source = %self.name, error = %f, "token renewal failed; using the current token");
                Ok(t)
            }
            Err(f) => Err(self.entra_error("renewing the token", &f, &t.flow)),
        }
    }

    fn role_session_name(&self, s: &Session) -> String {
        let upn = s
            .user
            .clone()
            .unwrap_or_else(|| format!("rolecall-{}", self.hostname));
        session_name(
            self.cfg.role_session_name.as_deref().unwrap_or("{upn}"),
            &upn,
        )
    }
}

#[async_trait::async_trait]
impl Source for EntraOidc {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "entra-oidc"
    }

    async fn session_state(&self) -> SessionState {
        match self.stored() {
            Some(s) if s.expires_at > now() => SessionState::SignedIn {
                expires: Some(s.expires_at),
            },
            // Expired token, refresh token at hand: renewable without the user, end unknown.
            Some(s) if s.refresh_token.is_some() => SessionState::SignedIn { expires: None },
            _ => SessionState::NeedsLogin,
        }
    }

    async fn renew_session(&self) -> Result<(), SourceError> {
        // Nothing stored: nothing to keep alive (a login is the user's call, not the scheduler's).
        if self.stored().is_none() {
            return Ok(());
        }
        // Renews only inside the token's 5-minute margin; otherwise no network. Keeping the
        // refresh token in use is also what keeps Entra's inactivity window from closing.
        self.web_token(false).await.map(|_| ())
    }

    async fn session_end(&self) -> Option<i64> {
        // With a refresh token the end is Entra's to decide (policy, revocation) and unknown
        // ahead; without one the stored token's expiry ends the session.
        self.stored()
            .filter(|s| s.refresh_token.is_none())
            .map(|s| s.expires_at)
    }

    async fn login(&self, opts: LoginOptions, progress: &LoginProgress) -> Result<(), SourceError> {
        let flow = self.choose_flow(&opts);
        progress.send_modify(|st| st.flow = Some(flow.into()));
        let s = match flow {
            "pkce" => self.login_pkce(progress).await?,
            _ => self.login_device(&opts, progress).await?,
        };
        tracing::info!(source = %self.name, flow, "signed in to Entra");
        progress.send_modify(|st| st.session_expires = Some(s.expires_at));
        Ok(())
    }

    async fn logout(&self) -> Result<(), SourceError> {
        // Entra has no revocation endpoint for public clients: forgetting the refresh token is
        // what ends rolecall's use of the session.
        self.vault
            .remove(&token_key(&self.name))
            .map_err(|e| self.vault_err(e))
    }

    async fn credentials(&self, profile: &ProfileConfig) -> Result<RoleCredentials, SourceError> {
        let role = profile.role.trim();
        let Some(account) = role_account(role) else {
            return Err(SourceError::Config(format!(
                "a profile of entra-oidc source '{}' needs `role` = a role ARN (like \"arn:aws:iam::111111111111:role/Name\"), not {role:?}",
                self.name
            )));
        };
        if let Some(a) = profile.account.as_deref().filter(|a| !a.is_empty()) {
            if a != account {
                return Err(SourceError::Config(format!(
                    "profile of source '{}': account {a} does not match the role ARN's account {account}",
                    self.name
                )));
            }
        }
        let region = self
            .cfg
            .region
            .as_deref()
            .or(profile.region.as_deref())
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_REGION)
            .to_string();
        let client = self.sts_client(&region);
        let mut duration = profile
            .duration
            .map(|d| i32::try_from(d.as_secs().clamp(900, 43_200)).unwrap_or(FALLBACK_DURATION));
        let mut session = self.web_token(false).await?;
        let mut renewed = false;
        let mut shortened = false;
        let out = loop {
            let name = self.role_session_name(&session);
            match sts::assume(&client, role, &name, &session.web_identity_token, duration).await {
                Ok(out) => break out,
                Err(f) if f.exceeds_max_session() && !shortened && duration != Some(FALLBACK_DURATION) => {
                    tracing::info!(source = %self.name, role, "the role allows less than the requested duration; asking for 1 hour");
                    shortened = true;
                    duration = Some(FALLBACK_DURATION);
                }
                Err(f) if f.is("ExpiredTokenException") && !renewed => {
                    // STS's clock says the token is over before ours does: renew once.
                    renewed = true;
                    session = self.web_token(true).await?;
                }
                Err(f) if f.is("ExpiredTokenException") => {
                    return Err(SourceError::Upstream {
                        message: format!(
                            "{}: STS says the freshly renewed token is expired ({}); check this machine's clock",
                            self.name, f.message
                        ),
                        retryable: true,
                    })
                }
                Err(f) if f.is("InvalidIdentityToken") => {
                    let c = claims::decode(&session.web_identity_token).ok();
                    let iss = c.as_ref().and_then(|c| c.iss.clone()).unwrap_or_default();
                    let aud = c.map(|c| c.aud.join(",")).unwrap_or_default();
                    return Err(SourceError::Config(format!(
                        "source '{}': STS refused the {} ({}): account {account} needs an IAM OIDC provider with issuer {iss} and audience {aud} that {role} trusts",
                        self.name,
                        token_kind_name(self.cfg.token).replace('_', " "),
                        f.message
                    )));
                }
                Err(f) if f.is("AccessDenied") => {
                    return Err(SourceError::AccessDenied(format!(
                        "{role} does not let source '{}' assume it with web identity ({})",
                        self.name, f.message
                    )))
                }
                Err(f) => {
                    return Err(SourceError::Upstream {
                        message: format!(
                            "{} (entra-oidc): AssumeRoleWithWebIdentity failed: {}{}",
                            self.name,
                            f.code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default(),
                            f.message
                        ),
                        retryable: f.retryable,
                    })
                }
            }
        };
        Ok(RoleCredentials {
            access_key_id: out.access_key_id,
            secret_access_key: out.secret_access_key,
            session_token: out.session_token,
            expiration: out.expiration,
            account_id: account.to_string(),
            role_arn: role.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_always_include_openid_and_offline_access() {
        assert_eq!(full_scope(None), "openid profile offline_access");
        assert_eq!(
            full_scope(Some("offline_access api://x/.default")),
            "openid profile offline_access api://x/.default"
        );
    }

    #[test]
    fn role_arns() {
        assert_eq!(
            role_account("arn:aws:iam::444444444444:role/EntraOidcDeveloper"),
            Some("444444444444")
        );
        assert_eq!(
            role_account("arn:aws-cn:iam::444444444444:role/path/x"),
            Some("444444444444")
        );
        for bad in [
            "EntraOidcDeveloper",
            "arn:aws:iam::4444:role/x",
            "arn:aws:iam::444444444444:user/x",
            "arn:aws:iam::444444444444:role/",
            "arn:aws:sts::444444444444:role/x",
        ] {
            assert_eq!(role_account(bad), None, "{bad}");
        }
    }
}
