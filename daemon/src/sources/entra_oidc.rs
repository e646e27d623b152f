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
pub mod config;
mod credentials;
mod entra;
mod login;
mod records;
mod session;
mod sts;

use self::entra::{Entra, Failure};
use self::records::{token_key, Binding};
use super::common::renew_once::RenewOnce;
use super::common::SourceContext;
use super::{LoginOptions, LoginProgress, RoleCredentials, SessionState, Source, SourceError};
use crate::clock::Clock;
use crate::config::{EntraOidcConfig, OidcTokenKind, ProfileConfig};
use crate::endpoints::{self, EnvSnapshot, Service};
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
/// Fallback device-code polling interval and lifetime when Entra does not say.
const DEFAULT_INTERVAL: u64 = 5;
const DEFAULT_DEVICE_CODE_LIFE: u64 = 900;
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
    renewal: RenewOnce,
    clock: Arc<dyn Clock>,
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
        let entra = Entra::new(&authority, tenant).map_err(|e| bad(e.to_string()))?;
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
            renewal: RenewOnce::new(ctx.clock.clone(), TOKEN_RENEW_AHEAD),
            clock: ctx.clock.clone(),
        })
    }

    fn client_id(&self) -> &str {
        &self.binding.client_id
    }

    fn vault_err(&self, e: crate::vault::VaultError) -> SourceError {
        SourceError::Internal(format!("{}: {e}", self.name))
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
            Some(s) if s.expires_at > self.clock.now() => SessionState::SignedIn {
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
        self.role_credentials(profile).await
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
