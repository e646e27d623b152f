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

pub mod config;
mod stored;
mod sts;

use super::{
    LoginOptions, LoginProgress, RoleCredentials, SessionState, Source, SourceContext, SourceError,
};
use crate::browser::{self, launch::Display, BrowserError, CaptureRequest};
use crate::config::{BrowserMode, EntraSamlConfig, ProfileConfig};
use crate::endpoints::{self, EnvSnapshot, Service};
use crate::saml::request::AuthnRequest;
use crate::saml::response::{check, Checked, CheckedAssertion, Expectations, RolePair, SamlError};
use crate::saml::{metadata, SamlResponse, SIGNIN_PATTERNS};
use crate::vault::SecretStore;
use rolecall_proto::api::AvailableRole;
use std::collections::HashMap;
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

/// A checked response, held for redemption until it expires.
struct Held {
    response: SamlResponse,
    checked: Checked,
    /// Epoch seconds after which it is not used.
    usable_until: i64,
    /// Which accepted response this is (counts up), to tell a fresh one from the one in use.
    generation: u64,
    /// STS accepted it at least once: a later `InvalidIdentityToken` is a refused second use.
    redeemed: bool,
}

/// A held response handed out for one redemption.
struct Lease {
    response: SamlResponse,
    checked: Checked,
    generation: u64,
    redeemed: bool,
}

#[derive(Default)]
struct State {
    held: Option<Held>,
    /// The Role values of the last assertion (not secret).
    roles: Vec<RolePair>,
    /// Assertion IDs already accepted, with when they stop mattering (replay defence).
    seen: HashMap<String, i64>,
    /// The generation of the last accepted response.
    generation: u64,
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

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
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

    fn display(&self, silent: bool) -> Display {
        if silent {
            return Display::Headless;
        }
        match self.cfg.browser_mode {
            BrowserMode::Window => Display::Window,
            BrowserMode::Headless => Display::Headless,
            BrowserMode::Auto => {
                let has = |v: &str| endpoints::env_var(&self.env, v).is_some();
                if has("DISPLAY") || has("WAYLAND_DISPLAY") || cfg!(target_os = "macos") {
                    Display::Window
                } else {
                    Display::Headless
                }
            }
        }
    }

    /// Opens the SP-initiated login and returns the captured response with the request it
    /// answers.
    async fn capture(&self, silent: bool) -> Result<(SamlResponse, AuthnRequest), BrowserError> {
        let exe = browser::find_browser(
            self.cfg.browser.as_deref(),
            endpoints::env_var(&self.env, "PATH"),
        )?;
        let req = AuthnRequest::new(
            &self.cfg.app_identifier,
            silent,
            time::OffsetDateTime::now_utc(),
        );
        let url = req.redirect_url(&self.authority, &self.cfg.tenant, "rolecall");
        let captured = browser::capture(&CaptureRequest {
            browser: exe,
            profile_dir: self.profile_dir.clone(),
            display: self.display(silent),
            url,
            patterns: SIGNIN_PATTERNS.iter().map(|s| s.to_string()).collect(),
            timeout: if silent {
                self.timeouts.silent
            } else {
                self.timeouts.login
            },
            pipe_timeout: self.timeouts.pipe,
            source: self.name.clone(),
        })
        .await?;
        let field = browser::capture::saml_response_field(&captured.form).ok_or_else(|| {
            BrowserError::Protocol("the captured POST has no SAMLResponse field".into())
        })?;
        Ok((SamlResponse::new(&field), req))
    }

    /// Checks a response and, when it passes, holds it and records its roles. Nothing is kept
    /// from a response that fails.
    fn accept(&self, response: SamlResponse, request_id: Option<&str>) -> Result<(), SamlError> {
        let now_t = time::OffsetDateTime::now_utc();
        let exp = Expectations {
            app_identifier: &self.cfg.app_identifier,
            in_response_to: request_id,
            certs: self.certs.as_deref(),
            now: now_t,
            skew: time::Duration::seconds(self.timeouts.skew.as_secs() as i64),
        };
        let checked = check(response.expose(), &exp)?;
        let now = now_t.unix_timestamp();
        let mut st = lock(&self.state);
        st.seen.retain(|_, until| *until > now);
        let usable_until = match &checked {
            Checked::Assertion(a) => {
                if st.seen.contains_key(&a.id) {
                    return Err(SamlError::Replayed(a.id.clone()));
                }
                // Remembered past its end plus the skew, so a replay is refused while it could
                // still pass the time checks.
                st.seen.insert(
                    a.id.clone(),
                    a.not_on_or_after + self.timeouts.skew.as_secs() as i64,
                );
                st.roles = a.roles.clone();
                if let Some(end) = a.session_not_on_or_after {
                    self.keep(
                        &stored::session_key(&self.name),
                        &stored::StoredSession {
                            session_not_on_or_after: end,
                        },
                    );
                }
                a.not_on_or_after
            }
            // Unreadable here; Entra's assertions live five minutes.
            Checked::Encrypted => now + 240,
        };
        st.generation += 1;
        st.held = Some(Held {
            response,
            checked,
            usable_until,
            generation: st.generation,
            redeemed: false,
        });
        Ok(())
    }

    fn held_usable(&self) -> Option<Lease> {
        let st = lock(&self.state);
        let h = st.held.as_ref()?;
        // A margin for the STS round trip.
        (h.usable_until - now() > 10).then(|| Lease {
            response: h.response.clone(),
            checked: h.checked.clone(),
            generation: h.generation,
            redeemed: h.redeemed,
        })
    }

    /// After STS accepted the response of `generation`.
    fn mark_redeemed(&self, generation: u64) {
        if let Some(h) = lock(&self.state).held.as_mut() {
            if h.generation == generation {
                h.redeemed = true;
            }
        }
    }

    /// The response to redeem for `profile`: the held one, else (after a restart) the stored
    /// credentials while fresh (`Err` of the inner result), else a silent capture's. When the
    /// user is needed, stored credentials that are still valid serve meanwhile.
    async fn current_assertion(
        &self,
        profile: &ProfileConfig,
    ) -> Result<Result<Lease, RoleCredentials>, SourceError> {
        if let Some(l) = self.held_usable() {
            return Ok(Ok(l));
        }
        // After a restart: the stored credentials, while fresh, cost no browser.
        if let Some(c) = self.stored_for(profile, STORED_FRESH_SECS) {
            return Ok(Err(c));
        }
        let _one = self.capturing.lock().await;
        // Another caller may have renewed while this one waited.
        if let Some(l) = self.held_usable() {
            return Ok(Ok(l));
        }
        if let Err(e) = self.silent_capture().await {
            // The user is needed, but what is stored still works meanwhile.
            if let (SourceError::NeedsLogin(_), Some(c)) =
                (&e, self.stored_for(profile, STORED_VALID_SECS))
            {
                tracing::info!(source = %self.name, role = %profile.role, error = %e, "serving the stored credentials; only a sign-in renews them");
                return Ok(Err(c));
            }
            return Err(e);
        }
        self.held_usable().map(Ok).ok_or_else(|| {
            SourceError::NeedsLogin(
                "the silent sign-in's assertion expired at once (check the clock)".into(),
            )
        })
    }

    /// Forgets the response of `generation` (STS will not take it again).
    fn drop_held(&self, generation: u64) {
        let mut st = lock(&self.state);
        if st.held.as_ref().is_some_and(|h| h.generation == generation) {
            st.held = None;
        }
    }

    /// Writes a store entry; a failure costs only a capture after a restart, so it is logged.
    fn keep<T: serde::Serialize>(&self, key: &str, v: &T) {
        if let Err(e) = self.vault.put(key, v) {
            tracing::warn!(source = %self.name, error = %e, "could not keep SAML session data in the secret store");
        }
    }

    /// The stored credentials for the profile's role with more than `min_left` seconds left.
    fn stored_for(&self, profile: &ProfileConfig, min_left: i64) -> Option<RoleCredentials> {
        let c: stored::StoredCreds = self
            .vault
            .get(&stored::creds_key(&self.name, &profile.role))?;
        let principal_ok = profile
            .principal
            .as_deref()
            .is_none_or(|p| p == c.principal);
        (principal_ok && c.expiration - now() > min_left).then(|| c.to_credentials())
    }

    fn mark_signed_in(&self) {
        let _ = std::fs::write(self.profile_dir.join(SIGNED_IN_MARKER), b"");
    }

    fn has_browser_session(&self) -> bool {
        self.profile_dir.join(SIGNED_IN_MARKER).exists()
    }

    /// A background renewal: headless, IsPassive. Anything but a good response means the user
    /// is needed.
    async fn silent_capture(&self) -> Result<(), SourceError> {
        if !self.has_browser_session() {
            return Err(SourceError::NeedsLogin(format!(
                "not signed in to source '{}'",
                self.name
            )));
        }
        let (response, req) = self.capture(true).await.map_err(|e| {
            SourceError::NeedsLogin(format!("silent sign-in through the browser failed: {e}"))
        })?;
        self.accept(response, Some(&req.id)).map_err(|e| {
            if e.needs_user() {
                SourceError::NeedsLogin(
                    "Entra needs you to sign in again (no session for a silent sign-in)".into(),
                )
            } else {
                SourceError::NeedsLogin(format!(
                    "the silent sign-in's SAML response was refused: {e}"
                ))
            }
        })
    }

    fn sts_client(&self) -> aws_sdk_sts::Client {
        endpoints::sts_client(&self.region, self.sts_endpoint.as_deref(), None)
    }

    async fn redeem(
        &self,
        profile: &ProfileConfig,
        response: &SamlResponse,
        checked: &Checked,
    ) -> Result<RoleCredentials, sts::Refusal> {
        let (principal, sd, snooa) = match checked {
            Checked::Assertion(a) => (
                principal_for(profile, a).map_err(sts::Refusal::Other)?,
                a.session_duration,
                a.session_not_on_or_after,
            ),
            Checked::Encrypted => (
                profile.principal.clone().ok_or_else(|| {
                    sts::Refusal::Other(SourceError::Config(format!(
                        "source '{}' sends an encrypted assertion: profiles need `principal` (the SAML provider ARN) as well as `role`",
                        self.name
                    )))
                })?,
                None,
                None,
            ),
        };
        let duration = duration_seconds(
            profile.duration.map(|d| d.as_secs() as i64),
            sd,
            snooa,
            now(),
        );
        let creds = sts::assume(
            &self.sts_client(),
            &profile.role,
            &principal,
            response,
            duration,
        )
        .await?;
        // Only a browser gets these again: kept for a restart.
        self.keep(
            &stored::creds_key(&self.name, &profile.role),
            &stored::StoredCreds::new(&creds, &principal),
        );
        Ok(creds)
    }
}

/// The principal for the profile's role: the configured one (when the assertion offers that
/// pair), else the one the assertion pairs with the role.
fn principal_for(profile: &ProfileConfig, a: &CheckedAssertion) -> Result<String, SourceError> {
    let pairs: Vec<&RolePair> = a
        .roles
        .iter()
        .filter(|p| p.role_arn == profile.role)
        .collect();
    let chosen = match &profile.principal {
        Some(p) => pairs.iter().find(|r| &r.principal_arn == p),
        None => pairs.first(),
    };
    match chosen {
        Some(r) => Ok(r.principal_arn.clone()),
        None => Err(SourceError::AccessDenied(format!(
            "the SAML assertion does not grant {} (it grants: {})",
            profile.role,
            a.roles
                .iter()
                .map(|r| r.role_arn.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `~/…` in `idp_metadata`, against the daemon's HOME.
fn expand_home(p: &std::path::Path, env: &EnvSnapshot) -> PathBuf {
    match (p.strip_prefix("~"), endpoints::env_var(env, "HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

fn login_error(e: BrowserError) -> SourceError {
    match e {
        BrowserError::NotFound(_) | BrowserError::DeadPipe { .. } => {
            SourceError::Config(e.to_string())
        }
        BrowserError::Timeout(_) | BrowserError::WindowClosed | BrowserError::Exited => {
            SourceError::LoginCancelled(e.to_string())
        }
        other => SourceError::Internal(other.to_string()),
    }
}

fn check_error(e: SamlError) -> SourceError {
    if e.needs_user() {
        SourceError::LoginCancelled(e.to_string())
    } else {
        SourceError::AccessDenied(format!("SAML response refused: {e}"))
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
            .filter(|u| *u > now());
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
        let lease = match self.current_assertion(profile).await? {
            Ok(l) => l,
            Err(stored) => return Ok(stored),
        };
        match self.redeem(profile, &lease.response, &lease.checked).await {
            Ok(c) => {
                self.mark_redeemed(lease.generation);
                Ok(c)
            }
            // STS refuses a second use of an assertion it accepted before: each remaining role
            // gets a fresh silent capture of its own.
            Err(sts::Refusal::Assertion(e)) if lease.redeemed => {
                tracing::info!(source = %self.name, role = %profile.role, error = %e, "STS refused a second use of the SAML assertion; capturing a fresh one for this role");
                self.drop_held(lease.generation);
                let _one = self.capturing.lock().await;
                // A fresh response another caller captured meanwhile serves if still unused.
                let fresh = match self.held_usable() {
                    Some(l) if !l.redeemed => l,
                    _ => {
                        self.silent_capture().await?;
                        self.held_usable().ok_or_else(|| {
                            SourceError::NeedsLogin(
                                "the silent sign-in's assertion expired at once (check the clock)"
                                    .into(),
                            )
                        })?
                    }
                };
                let c = self
                    .redeem(profile, &fresh.response, &fresh.checked)
                    .await
                    .map_err(sts::Refusal::into_error)?;
                self.mark_redeemed(fresh.generation);
                Ok(c)
            }
            Err(e) => Err(e.into_error()),
        }
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
