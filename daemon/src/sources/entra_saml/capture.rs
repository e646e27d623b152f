//! Capturing a SAML response from Entra in a browser: interactively for a login, silently
//! (IsPassive, with the browser's remembered session) for renewals.

use super::{EntraSaml, SIGNED_IN_MARKER};
use crate::browser::{self, launch::Display, BrowserError, CaptureRequest};
use crate::config::BrowserMode;
use crate::endpoints::{self, EnvSnapshot};
use crate::saml::request::AuthnRequest;
use crate::saml::{SamlResponse, SIGNIN_PATTERNS};
use crate::sources::SourceError;
use std::path::PathBuf;

impl EntraSaml {
    pub(super) fn display(&self, silent: bool) -> Display {
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
    pub(super) async fn capture(
        &self,
        silent: bool,
    ) -> Result<(SamlResponse, AuthnRequest), BrowserError> {
        let exe = browser::find_browser(
            self.cfg.browser.as_deref(),
            endpoints::env_var(&self.env, "PATH"),
        )?;
        let req = AuthnRequest::new(&self.cfg.app_identifier, silent, self.clock.now_utc());
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

    pub(super) fn mark_signed_in(&self) {
        let _ = std::fs::write(self.profile_dir.join(SIGNED_IN_MARKER), b"");
    }

    pub(super) fn has_browser_session(&self) -> bool {
        self.profile_dir.join(SIGNED_IN_MARKER).exists()
    }

    /// A background renewal: headless, IsPassive. Anything but a good response means the user
    /// is needed.
    pub(super) async fn silent_capture(&self) -> Result<(), SourceError> {
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
}

/// `~/…` in `idp_metadata`, against the daemon's HOME.
pub(super) fn expand_home(p: &std::path::Path, env: &EnvSnapshot) -> PathBuf {
    match (p.strip_prefix("~"), endpoints::env_var(env, "HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

pub(super) fn login_error(e: BrowserError) -> SourceError {
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
