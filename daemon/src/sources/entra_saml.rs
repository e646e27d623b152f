//! The `entra-saml` source: Entra enterprise app → IAM roles through `AssumeRoleWithSAML`.
//!
//! A login captures, in a real Chromium-family browser driven over its debugging pipe
//! (`crate::browser`), the SAML POST Entra makes to the AWS sign-in endpoint (or takes a pasted
//! response), checks it (`crate::saml::response`), and keeps it in memory only — zeroized,
//! never written — until its NotOnOrAfter, so that every profile of the source can be redeemed
//! from that one assertion. After that, credentials come from a silent capture: the same browser
//! profile, headless, `IsPassive="true"`, relying on Entra's persisted session; when Entra needs
//! the user, the answer is [`SourceError::NeedsLogin`].
//!
//! Role credentials from `AssumeRoleWithSAML` can only be fetched again through the browser, so
//! each role's last ones are kept in the encrypted secret store (`stored`), with the last
//! assertion's SessionNotOnOrAfter: after a restart they are served while fresh, before any
//! headless capture, and while still valid when the user is needed. A logout drops them.

mod capture;
pub mod config;
mod held;
mod redeem;
mod stored;
mod sts;

use super::{
    LoginOptions, LoginProgress, RoleCredentials, SessionState, Source, SourceContext, SourceError,
};
use crate::clock::Clock;
use crate::config::{EntraSamlConfig, ProfileConfig};
use crate::endpoints::{self, EnvSnapshot, Service};
use crate::saml::{metadata, SamlResponse};
use crate::vault::SecretStore;
use capture::{expand_home, login_error};
use held::{check_error, State};
use rolecall_proto::api::AvailableRole;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use sts::duration_seconds;

/// Entra's public authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// A marker (no secret in it) that a browser sign-in succeeded with this profile directory:
/// silent renewals are worth trying.
const SIGNED_IN_MARKER: &str = "rolecall-signed-in";
/// Stored credentials with more than this left are served without a capture. It is above the
/// broker's default `refresh_ahead` (20 min) plus the scheduler's largest lead (5 min): the
/// scheduler's refresh of credentials served this way then gets new ones, not the same again.
const STORED_FRESH_SECS: i64 = 30 * 60;
/// Stored credentials with more than this left still beat "sign in again" when no silent
/// capture works.
const STORED_VALID_SECS: i64 = 60;

/// Bounds of a capture; tests shorten them.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// An interactive sign-in.
    pub login: Duration,
    /// A background (IsPassive) renewal.
    pub silent: Duration,
    /// The browser's first answer on its debugging pipe.
    pub pipe: Duration,
    /// Clock skew tolerated on the assertion's time conditions.
    pub skew: Duration,
}

pub struct EntraSaml {
    name: String,
    cfg: EntraSamlConfig,
    authority: String,
    region: String,
    sts_endpoint: Option<String>,
    certs: Option<Vec<Vec<u8>>>,
    env: Arc<EnvSnapshot>,
    vault: Arc<SecretStore>,
    profile_dir: PathBuf,
    timeouts: Timeouts,
    state: Mutex<State>,
    /// One capture at a time (the browser profile allows one browser).
    capturing: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EntraSaml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraSaml")
            .field("name", &self.name)
            .field("tenant", &self.cfg.tenant)
            .field("app_identifier", &self.cfg.app_identifier)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EntraSaml {
    pub fn new(
        name: &str,
        cfg: &EntraSamlConfig,
        ctx: &SourceContext,
    ) -> Result<Self, SourceError> {
        let bad = |m: String| SourceError::Config(format!("source '{name}': {m}"));
        if cfg.app_identifier.trim().is_empty() {
            return Err(bad("app_identifier is empty".into()));
        }
        let sts_endpoint =
            endpoints::resolve(Service::Sts, cfg.endpoint_url.as_deref(), &ctx.env).map_err(bad)?;
        let certs = match &cfg.idp_metadata {
            Some(p) => {
                Some(metadata::signing_certs_from_file(&expand_home(p, &ctx.env)).map_err(bad)?)
            }
            None => None,
        };
        Ok(EntraSaml {
            name: name.to_string(),
            cfg: cfg.clone(),
            authority: cfg
                .authority
                .clone()
                .unwrap_or_else(|| DEFAULT_AUTHORITY.into())
                .trim_end_matches('/')
                .to_string(),
            region: cfg.region.clone().unwrap_or_else(|| "us-east-1".into()),
            sts_endpoint,
            certs,
            env: Arc::clone(&ctx.env),
            vault: Arc::clone(&ctx.vault),
            profile_dir: ctx.state_dir.join("browser-profiles").join(name),
            timeouts: Timeouts {
                login: ctx.login_timeout,
                // Inside the broker's 20 s bound on one fetch, STS call included.
                silent: Duration::from_secs(15),
                pipe: Duration::from_secs(5),
                skew: Duration::from_secs(120),
            },
            state: Mutex::new(State::default()),
            capturing: tokio::sync::Mutex::new(()),
            clock: ctx.clock.clone(),
        })
    }

    /// Replaces the capture bounds (tests).
    pub fn with_timeouts(mut self, t: Timeouts) -> Self {
        self.timeouts = t;
        self
    }

    /// The browser profile directory of this source.
    pub fn profile_dir(&self) -> &std::path::Path {
        &self.profile_dir
    }
}

#[async_trait::async_trait]
impl Source for EntraSaml {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "entra-saml"
    }

    fn redeem_all_after_login(&self) -> bool {
        // The assertion lives minutes: redeem every profile while it is held.
        true
    }

    fn known_roles(&self) -> Vec<String> {
        lock(&self.state)
            .roles
            .iter()
            .map(|r| r.role_arn.clone())
            .collect()
    }

    async fn session_state(&self) -> SessionState {
        if self.held_usable().is_some() || self.has_browser_session() {
            SessionState::SignedIn { expires: None }
        } else {
            SessionState::NeedsLogin
        }
    }

    async fn login(&self, opts: LoginOptions, progress: &LoginProgress) -> Result<(), SourceError> {
        if let Some(pasted) = opts.saml_response {
            progress.send_modify(|st| st.flow = Some("paste".into()));
            // An unsolicited response (started from My Apps) answers no request of ours: every
            // check but InResponseTo.
            return self
                .accept(SamlResponse::new(&pasted), None)
                .map_err(check_error);
        }
        if opts.no_browser {
            return Err(SourceError::Config(format!(
                "source '{}' (entra-saml) signs in through a browser it drives; without one use: rolecall login {} --paste",
                self.name, self.name
            )));
        }
        progress.send_modify(|st| st.flow = Some("browser-capture".into()));
        let _one = self.capturing.lock().await;
        progress.send_modify(|st| st.browser_opened = true);
        let (response, req) = self.capture(false).await.map_err(login_error)?;
        self.accept(response, Some(&req.id)).map_err(check_error)?;
        self.mark_signed_in();
        Ok(())
    }

    async fn session_end(&self) -> Option<i64> {
        if self.has_browser_session() {
            // A silent capture renews until the session Entra declared ends.
            return self
                .vault
                .get::<stored::StoredSession>(&stored::session_key(&self.name))
                .map(|s| s.session_not_on_or_after);
        }
        // No browser session (a pasted response): what was redeemed is all there is, and only
        // a browser (or another paste) renews it.
        let held = lock(&self.state)
            .held
            .as_ref()
            .map(|h| h.usable_until)
            .filter(|u| *u > self.clock.now());
        stored::all_creds(&self.vault, &self.name)
            .iter()
            .map(|c| c.expiration)
            .chain(held)
            .max()
    }

    async fn logout(&self) -> Result<(), SourceError> {
        {
            let mut st = lock(&self.state);
            st.held = None;
        }
        self.vault
            .remove_prefix(&stored::prefix(&self.name))
            .map_err(|e| SourceError::Internal(format!("{}: {e}", self.name)))?;
        let _one = self.capturing.lock().await;
        // The browser profile holds Entra's session cookies: forgetting the session is removing it.
        match std::fs::remove_dir_all(&self.profile_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SourceError::Internal(format!(
                "cannot remove the browser profile {}: {e}",
                self.profile_dir.display()
            ))),
        }
    }

    async fn credentials(&self, profile: &ProfileConfig) -> Result<RoleCredentials, SourceError> {
        self.role_credentials(profile).await
    }

    async fn list_roles(&self) -> Result<Vec<AvailableRole>, SourceError> {
        let st = lock(&self.state);
        if st.roles.is_empty() {
            return Err(SourceError::NeedsLogin(format!(
                "source '{}' knows its roles after a sign-in: rolecall login {}",
                self.name, self.name
            )));
        }
        Ok(st
            .roles
            .iter()
            .map(|r| AvailableRole {
                account_id: r.role_arn.split(':').nth(4).unwrap_or_default().to_string(),
                account_name: None,
                role: r.role_arn.clone(),
                principal: Some(r.principal_arn.clone()),
            })
            .collect())
    }
}
