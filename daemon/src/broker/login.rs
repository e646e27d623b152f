//! What the socket API asks of a source through the broker: start (or join) a login and list
//! the roles a source offers. The servers never hold a source themselves.

use super::Broker;
use crate::login::Trigger;
use crate::sources::LoginOptions;
use crate::wire_error::{self, Stage};
use rolecall_proto::api::{AvailableRoles, ErrorBody, ErrorCode, LoginRequest, LoginState};
use std::time::Duration;

impl Broker {
    /// Starts a login of `source` (or joins the one running) and answers with its state now.
    /// Without `force`, a source that still has a session answers `Succeeded` at once.
    pub async fn login(
        &self,
        source: &str,
        request: LoginRequest,
    ) -> Result<LoginState, ErrorBody> {
        let handle = self.source(source)?;
        // The paste flow is a login of its own: it never joins one running in a browser.
        let force = request.force || request.saml_response.is_some();
        let opts = LoginOptions {
            no_browser: request.no_browser,
            saml_response: request.saml_response,
        };
        match self
            .logins()
            .request(handle, opts, Trigger::Explicit, force)
            .await
        {
            Ok(rx) => Ok(rx.borrow().clone()),
            // Explicit logins ignore the back-off; kept so that a change there stays visible.
            Err(b) => Err(ErrorBody::new(
                ErrorCode::LoginBackoff,
                format!("try again in {}s", b.remaining.as_secs()),
            )),
        }
    }

    /// The state of `source`'s login once the running one ends, after `wait`, or when `stop`
    /// resolves (a stopping daemon answers with the state as it is), whichever is first.
    pub async fn login_state(
        &self,
        source: &str,
        wait: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<LoginState, ErrorBody> {
        self.source(source)?;
        let logins = self.logins();
        Ok(tokio::select! {
            st = logins.wait(source, wait) => st,
            () = stop => logins.state(source),
        })
    }

    /// Every account × role `source` offers (for `rolecall populate`).
    pub async fn list_roles(&self, source: &str) -> Result<AvailableRoles, ErrorBody> {
        let handle = self.source(source)?;
        let roles = handle
            .list_roles()
            .await
            .map_err(|e| wire_error::source_error(source, &e, Stage::Fetch))?;
        Ok(AvailableRoles {
            source: source.to_string(),
            roles,
        })
    }
}
