//! Login sources: each turns "a profile" into "credentials + expiry", behind one trait.
//!
//! A source knows how to sign in (interactively, through a browser or a device code), whether it
//! still has a session that can fetch credentials silently, and how to fetch role credentials
//! with that session. It does not know how credentials are cached or served.

use crate::config::ProfileConfig;
use rolecall_proto::api::{AvailableRole, LoginState};
use std::fmt;
use tokio::sync::watch;

pub use crate::credentials::RoleCredentials;

/// Whether a source can fetch credentials without the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// A session (access token, refresh token, browser session) exists; `expires` is when the
    /// current access token or SAML session ends, when known (epoch seconds).
    SignedIn { expires: Option<i64> },
    /// Only an interactive login can go on.
    NeedsLogin,
}

/// How an interactive login should run.
#[derive(Clone, Default)]
pub struct LoginOptions {
    /// Device flow / print the URL instead of opening a browser.
    pub no_browser: bool,
    /// entra-saml `--paste`: a base64 SAMLResponse read from stdin.
    pub saml_response: Option<String>,
}

impl fmt::Debug for LoginOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A pasted response is a bearer assertion: only whether there is one.
        f.debug_struct("LoginOptions")
            .field("no_browser", &self.no_browser)
            .field(
                "saml_response",
                &self.saml_response.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No silent way on: the user must sign in. The message says why (e.g. "refresh token revoked").
    #[error("{0}")]
    NeedsLogin(String),
    /// The user (or Entra) declined, cancelled, or the login timed out.
    #[error("{0}")]
    LoginCancelled(String),
    /// Upstream refused the role or account.
    #[error("{0}")]
    AccessDenied(String),
    /// Upstream failure; `retryable` for throttling, 5xx, timeouts and dropped connections.
    #[error("{message}")]
    Upstream { message: String, retryable: bool },
    /// The source or profile configuration cannot work.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Internal(String),
}

impl SourceError {
    /// The same kind of failure, told with another message (a chained profile's parent failed).
    pub fn with_message(&self, message: String) -> SourceError {
        match self {
            SourceError::NeedsLogin(_) => SourceError::NeedsLogin(message),
            SourceError::LoginCancelled(_) => SourceError::LoginCancelled(message),
            SourceError::AccessDenied(_) => SourceError::AccessDenied(message),
            SourceError::Upstream { retryable, .. } => SourceError::Upstream {
                message,
                retryable: *retryable,
            },
            SourceError::Config(_) => SourceError::Config(message),
            SourceError::Internal(_) => SourceError::Internal(message),
        }
    }
}

/// The login's live state (URL, user code, phase), published for `rolecall login` to show.
pub type LoginProgress = watch::Sender<LoginState>;

#[async_trait::async_trait]
pub trait Source: Send + Sync + 'static {
    /// The source's name in the config (`corp`).
    fn name(&self) -> &str;

    /// `identity-center`, `entra-saml` or `entra-oidc`.
    fn kind(&self) -> &'static str;

    /// Whether a silent fetch can work now. Cheap: no network.
    async fn session_state(&self) -> SessionState;

    /// Runs an interactive login to completion (or failure), publishing progress. The caller
    /// guarantees at most one login per source at a time.
    async fn login(&self, opts: LoginOptions, progress: &LoginProgress) -> Result<(), SourceError>;

    /// Forgets the session (tokens, cached registrations stay unless invalid).
    async fn logout(&self) -> Result<(), SourceError>;

    /// Fetches fresh role credentials for the profile silently (renewing the session's access
    /// token with its refresh token first if needed). Never opens a browser: answers
    /// [`SourceError::NeedsLogin`] instead.
    async fn credentials(&self, profile: &ProfileConfig) -> Result<RoleCredentials, SourceError>;

    /// Keeps the session alive ahead of time, called periodically by the refresh scheduler:
    /// renews an access token with its refresh token when it is close to its end. Does nothing
    /// (and no network) when nothing is due. [`SourceError::NeedsLogin`] when the session is
    /// over.
    async fn renew_session(&self) -> Result<(), SourceError> {
        Ok(())
    }

    /// When silent fetching ends for good, if known ahead (epoch seconds): a SAML
    /// `SessionNotOnOrAfter`, a client registration's expiry. After it only an interactive
    /// login goes on; the scheduler notifies the user before it.
    async fn session_end(&self) -> Option<i64> {
        None
    }

    /// Whether a successful login should fetch credentials for every profile of this source at
    /// once: true where the login's product (a SAML assertion) redeems each profile cheaply and
    /// lives only minutes. False where a source can have hundreds of profiles.
    fn redeem_all_after_login(&self) -> bool {
        false
    }

    /// The role ARNs the source last learnt it offers, from memory only (no network), for
    /// `status` to show the ones no profile uses. Empty when unknown.
    fn known_roles(&self) -> Vec<String> {
        Vec::new()
    }

    /// Every account × role this source offers (for `rolecall populate` and `status`).
    async fn list_roles(&self) -> Result<Vec<AvailableRole>, SourceError> {
        Err(SourceError::Config(format!(
            "source '{}' ({}) cannot list its roles",
            self.name(),
            self.kind()
        )))
    }
}

pub mod aws_login;
pub mod common;
pub mod entra_oidc;
pub mod entra_saml;
pub mod identity_center;
pub(crate) mod signin;
pub(crate) mod transport;
pub use common::{build, SourceContext};

#[cfg(test)]
mod tests {
    use super::LoginOptions;

    #[test]
    fn login_options_debug_hides_a_pasted_response() {
        let opts = LoginOptions {
            no_browser: false,
            saml_response: Some("PHNhbWxwOlJlc3BvbnNlIHNlY3JldA==".into()),
        };
        let text = format!("{opts:?}");
        assert!(!text.contains("PHNhbWxw"), "{text}");
        assert!(
            text.contains("saml_response: Some(\"** redacted **\")"),
            "{text}"
        );
        let none = format!("{:?}", LoginOptions::default());
        assert!(none.contains("saml_response: None"), "{none}");
    }
}
