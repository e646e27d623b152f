//! Signing in to Identity Center: the client registration of each flow, the PKCE flow with a
//! loopback redirect, and the device authorization flow.

use super::records::{registration_key, token_key, Flow, Registration, Token};
use super::{
    authorize, errors, start_url, IdentityCenter, CALLBACK_PATH, GRANT_AUTH_CODE, GRANT_DEVICE,
    GRANT_REFRESH, REGISTERED_REDIRECT_URI, REGISTRATION_RENEW_AHEAD, SCOPE,
};
use crate::config::FlowKind;
use crate::opener;
use crate::sources::common::device_poll::{DevicePoll, Poll};
use crate::sources::signin;
use crate::sources::signin::callback::CallbackError;
use crate::sources::{LoginOptions, LoginProgress, SourceError};
use std::time::Duration;
use zeroize::Zeroizing;

impl IdentityCenter {
    pub(super) async fn start_url(&self) -> Result<String, SourceError> {
        let r = self
            .resolved_start
            .get_or_try_init(|| async {
                let r = start_url::resolve(&self.cfg.start_url).await?;
                if r != self.cfg.start_url {
                    tracing::info!(source = %self.name, from = %self.cfg.start_url, to = %r, "start URL resolved through its redirect");
                }
                Ok::<_, start_url::StartUrlError>(r)
            })
            .await
            .map_err(|e| SourceError::Upstream {
                message: format!("{}: {e}", self.name),
                retryable: true,
            })?;
        Ok(r.clone())
    }

    /// The flow's registration, registering (again) when absent, for another start URL or
    /// region, or within a day of its expiry.
    pub(super) async fn registration(
        &self,
        flow: Flow,
        start_url: &str,
    ) -> Result<Registration, SourceError> {
        let key = registration_key(&self.name, flow);
        if let Some(r) = self.vault.get::<Registration>(&key) {
            if r.start_url == start_url
                && r.region == self.cfg.region
                && r.expires_at - REGISTRATION_RENEW_AHEAD > self.clock.now()
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

    pub(super) fn choose_flow(&self, opts: &LoginOptions) -> Flow {
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

    pub(super) fn save_token(
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
            expires_at: self.clock.now() + i64::from(out.expires_in().max(0)),
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

    pub(super) async fn login_pkce(
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

    pub(super) async fn login_device(
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

        let code_life = Duration::from_secs(u64::try_from(auth.expires_in()).unwrap_or(0).max(1));
        let out = DevicePoll {
            source: &self.name,
            interval: Duration::from_secs(u64::try_from(auth.interval()).unwrap_or(0)),
            bound: code_life.min(self.login_timeout),
            denied: "sign-in was denied",
            clock: self.clock.as_ref(),
        }
        .run(|| async {
            let res = self
                .oidc
                .create_token()
                .client_id(&reg.client_id)
                .client_secret(&reg.client_secret)
                .grant_type(GRANT_DEVICE)
                .device_code(device_code.as_str())
                .send()
                .await;
            let f = match res {
                Ok(out) => return Poll::Approved(out),
                Err(e) => errors::read(&e),
            };
            if f.is("AuthorizationPendingException") {
                Poll::Pending
            } else if f.is("SlowDownException") {
                Poll::SlowDown
            } else if f.is("ExpiredTokenException") {
                Poll::Expired
            } else if f.is("AccessDeniedException") {
                Poll::Denied
            } else if f.retryable {
                Poll::Transient(f.message)
            } else {
                Poll::Failed(self.upstream("CreateToken", &f))
            }
        })
        .await?;
        self.save_token(&out, Flow::Device, reg, None)
    }
}
