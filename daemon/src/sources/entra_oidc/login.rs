//! Signing in to Entra: the authorization-code flow with PKCE and a loopback redirect, or the
//! device authorization grant.

use super::entra::Failure;
use super::records::Session;
use super::{EntraOidc, CALLBACK_PATH, DEFAULT_DEVICE_CODE_LIFE, DEFAULT_INTERVAL};
use crate::config::FlowKind;
use crate::opener;
use crate::sources::common::device_poll::{DevicePoll, Poll};
use crate::sources::signin;
use crate::sources::signin::callback::CallbackError;
use crate::sources::{LoginOptions, LoginProgress, SourceError};
use std::time::Duration;

impl EntraOidc {
    pub(super) fn choose_flow(&self, opts: &LoginOptions) -> &'static str {
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

    pub(super) async fn login_pkce(
        &self,
        progress: &LoginProgress,
    ) -> Result<Session, SourceError> {
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

    pub(super) async fn login_device(
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
        let code_life =
            Duration::from_secs(dc.expires_in.unwrap_or(DEFAULT_DEVICE_CODE_LIFE).max(1));
        let resp = DevicePoll {
            source: &self.name,
            interval: Duration::from_secs(dc.interval.unwrap_or(DEFAULT_INTERVAL)),
            bound: code_life.min(self.login_timeout),
            denied: "sign-in was declined on the device code page",
            clock: self.clock.as_ref(),
        }
        .run(|| async {
            let f = match self
                .entra
                .redeem_device_code(self.client_id(), &dc.device_code)
                .await
            {
                Ok(resp) => return Poll::Approved(resp),
                Err(f) => f,
            };
            match f.error() {
                Some("authorization_pending") => Poll::Pending,
                Some("slow_down") => Poll::SlowDown,
                Some("authorization_declined") | Some("access_denied") => Poll::Denied,
                Some("expired_token") => Poll::Expired,
                Some("bad_verification_code") => Poll::Failed(SourceError::LoginCancelled(format!(
                    "{}: Entra no longer knows the device code (bad_verification_code); run the login again",
                    self.name
                ))),
                _ if f.retryable() => Poll::Transient(f.to_string()),
                _ => Poll::Failed(self.entra_error("polling the device code", &f, "device")),
            }
        })
        .await?;
        self.save(resp, "device", None)
    }
}
