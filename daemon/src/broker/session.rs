//! Sessions as the broker sees them: logins started for callers that need one (and waited for
//! when they may), what a finished login changes, logouts, and the "needs login" flags.

use super::errors::{fetch_error_body, not_signed_in};
use super::{lock, Broker, CredentialRequest};
use crate::login::Trigger;
use crate::sources::{LoginOptions, SessionState, Source};
use rolecall_proto::api::{ErrorBody, ErrorCode, LoginPhase, LoginState};
use std::sync::Arc;

impl Broker {
    /// A fetch found no session: start (or join) a login when allowed, and wait for it when
    /// the caller is interactive. `Ok` means "signed in now, fetch again".
    pub(super) async fn await_login(
        &self,
        source_name: &str,
        source: Arc<dyn Source>,
        req: CredentialRequest,
    ) -> Result<(), ErrorBody> {
        let d = self.daemon_config();
        if !d.auto_login {
            return Err(not_signed_in(source_name));
        }
        let mut rx = match self
            .logins
            .start(source, LoginOptions::default(), Trigger::Auto)
        {
            Ok(rx) => rx,
            Err(b) => {
                return Err(ErrorBody::new(
                    ErrorCode::LoginBackoff,
                    format!(
                        "not signed in to source '{source_name}'; the last sign-in was cancelled or failed, so no new one starts by itself for {}s",
                        b.remaining.as_secs().max(1)
                    ),
                )
                .with_hint(format!("rolecall login {source_name}")))
            }
        };
        if !req.interactive {
            return Err(not_signed_in(source_name));
        }
        let wait = req.wait.map_or(d.login_wait, |w| w.min(d.login_wait));
        let done = |st: &LoginState| st.phase != LoginPhase::Pending;
        let res = tokio::time::timeout(wait, rx.wait_for(done))
            .await
            .map(|r| r.map(|st| st.clone()));
        let state = match res {
            Ok(Ok(st)) => st,
            Ok(Err(_)) => rx.borrow().clone(),
            Err(_) => {
                return Err(ErrorBody::new(
                    ErrorCode::LoginPending,
                    format!("sign-in to source '{source_name}' is still waiting for you"),
                )
                .with_hint(format!("rolecall login {source_name}")))
            }
        };
        match state.phase {
            LoginPhase::Succeeded => Ok(()),
            _ => Err(state.error.unwrap_or_else(|| not_signed_in(source_name))),
        }
    }

    pub(super) fn login_finished(self: &Arc<Self>, st: &LoginState) {
        if st.phase == LoginPhase::Succeeded {
            {
                let mut sources = lock(&self.sources);
                let s = sources.entry(st.source.clone()).or_default();
                s.needs_login = false;
                s.last_error = None;
            }
            self.redeem_all(&st.source);
        } else if let Some(e) = &st.error {
            lock(&self.sources)
                .entry(st.source.clone())
                .or_default()
                .last_error = Some(e.message.clone());
        }
        self.write_snapshot();
    }

    /// After a login of a source whose login product redeems every profile (a SAML assertion
    /// that lives minutes), fetches each of its profiles in the background through the
    /// single-flight path, so that clients find them cached.
    pub(super) fn redeem_all(self: &Arc<Self>, source_name: &str) {
        let reg = self.registry();
        let Some(source) = reg.sources.get(source_name) else {
            return;
        };
        if !source.redeem_all_after_login() {
            return;
        }
        for (profile, pc) in &reg.config.profiles {
            if pc.source != source_name {
                continue;
            }
            let this = Arc::clone(self);
            let profile = profile.clone();
            tokio::spawn(async move {
                if let Err(e) = this.refresh_now(&profile).await {
                    tracing::debug!(profile, error = %e, "redeeming after login failed");
                }
            });
        }
    }

    /// Forgets the session of one source (or all) and the credentials cached from it.
    pub async fn logout(&self, source: Option<&str>) -> Result<(), ErrorBody> {
        let reg = self.registry();
        let targets: Vec<Arc<dyn Source>> = match source {
            Some(name) => vec![self.source(name)?],
            None => reg.sources.values().cloned().collect(),
        };
        for s in targets {
            s.logout()
                .await
                .map_err(|e| fetch_error_body(s.name(), &e))?;
            lock(&self.cache).retain(|k, _| k.source != s.name());
            self.cache_changed();
            self.scoped.forget(Some(s.name()));
            lock(&self.sources)
                .entry(s.name().to_string())
                .or_default()
                .needs_login = true;
            tracing::info!(source = s.name(), "signed out");
        }
        self.write_snapshot();
        Ok(())
    }

    /// Reads every source's session state (cheap, no network) into the flags the prompt
    /// snapshot shows, so that a fresh daemon's snapshot already says who needs a login.
    pub async fn refresh_session_flags(&self) {
        let reg = self.registry();
        for (name, source) in &reg.sources {
            let needs = matches!(source.session_state().await, SessionState::NeedsLogin);
            lock(&self.sources)
                .entry(name.clone())
                .or_default()
                .needs_login = needs;
        }
        self.write_snapshot();
    }
}
