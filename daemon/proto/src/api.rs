//! The socket API: HTTP/1.1 + JSON over the daemon's Unix socket. Every reply carries the
//! [`crate::HEADER_VERSION`] and [`crate::HEADER_PROTOCOL`] headers.
//!
//! | method | path | body | reply |
//! |---|---|---|---|
//! | GET | `/v1/version` | | [`VersionReply`] |
//! | GET | `/v1/credentials/{profile}?wait=S&interactive=B` | | [`crate::output::ProcessCredentials`] |
//! | POST | `/v1/login/{source}` | [`LoginRequest`] | [`LoginState`] |
//! | GET | `/v1/login/{source}?wait=S` | | [`LoginState`] (long-poll until done or S seconds) |
//! | POST | `/v1/logout` | [`LogoutRequest`] | [`OkReply`] |
//! | GET | `/v1/status` | | [`Status`] |
//! | POST | `/v1/reload` | | [`OkReply`] |
//! | POST | `/v1/shutdown` | | [`OkReply`] |
//! | POST | `/v1/container/tokens` | [`MintTokenRequest`] | [`MintTokenReply`] |
//! | DELETE | `/v1/container/tokens` | [`RevokeTokenRequest`] | [`OkReply`] |
//! | POST | `/v1/container/tokens/renew` | [`RenewTokenRequest`] | [`RenewTokenReply`] |
//! | GET | `/v1/whoami/{profile}` | | [`CallerIdentity`] (STS GetCallerIdentity with the profile's keys) |
//! | GET | `/v1/sources/{source}/roles` | | [`AvailableRoles`] |
//!
//! Failures answer with a non-2xx status and an [`ErrorReply`].

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionReply {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OkReply {
    pub ok: bool,
}

/// What went wrong, in one line a user can act on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorReply {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// One line, no trailing period, never containing a secret.
    pub message: String,
    /// The command that fixes it, when there is one (`rolecall login corp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The line a CLI prints on stderr: `message — run: hint`.
    pub fn one_line(&self) -> String {
        match &self.hint {
            Some(h) => format!("{} — run: {}", self.message, h),
            None => self.message.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The source has no usable session; a login is needed (and may have been started).
    NotSignedIn,
    /// A login is running; the caller did not wait for it.
    LoginPending,
    /// The last login was cancelled or timed out recently; no new browser window for a while.
    LoginBackoff,
    LoginFailed,
    UnknownProfile,
    UnknownSource,
    BadRequest,
    ConfigInvalid,
    /// The upstream (Identity Center, Entra, STS) failed after retries.
    Upstream,
    /// The upstream refused the role (no assignment, not allowed).
    AccessDenied,
    Unauthorized,
    Forbidden,
    NotFound,
    Internal,
    Unsupported,
}

impl ErrorCode {
    /// The HTTP status the daemon answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotSignedIn | ErrorCode::LoginPending | ErrorCode::LoginBackoff => 503,
            ErrorCode::LoginFailed | ErrorCode::Upstream => 502,
            ErrorCode::UnknownProfile | ErrorCode::UnknownSource | ErrorCode::NotFound => 404,
            ErrorCode::BadRequest | ErrorCode::ConfigInvalid => 400,
            ErrorCode::AccessDenied | ErrorCode::Forbidden => 403,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Internal => 500,
            ErrorCode::Unsupported => 501,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginRequest {
    /// Use the device flow and print the URL and code instead of opening a browser.
    #[serde(default)]
    pub no_browser: bool,
    /// Start a new login even when the source has a valid session.
    #[serde(default)]
    pub force: bool,
    /// entra-saml `--paste`: a base64 SAMLResponse read from the user's stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml_response: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LoginPhase {
    /// No login running and none needed.
    Idle,
    /// Waiting for the user (browser or device code).
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginState {
    pub source: String,
    pub phase: LoginPhase,
    /// `pkce`, `device`, `browser-capture` or `paste`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_code: Option<String>,
    /// Whether the daemon opened a browser for this login.
    #[serde(default)]
    pub browser_opened: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// When the session obtained by the login ends, if known (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expires: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogoutRequest {
    /// Only this source; all sources when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MintTokenRequest {
    pub profile: String,
    /// Revoked automatically when this process exits (`rolecall exec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_pid: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MintTokenReply {
    pub id: String,
    pub token: String,
    pub profile: String,
    /// `http://127.0.0.1:9911/v1/container/<profile>`
    pub full_uri: String,
    /// `/v1/container/<profile>`, for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
    pub relative_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Epoch seconds after which the token is refused (absent: it lives as long as the process
    /// it is bound to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// Extends every token of `profile` that has a lifetime by a full lifetime from now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RenewTokenRequest {
    pub profile: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RenewTokenReply {
    pub renewed: usize,
    /// The new end of the renewed tokens (epoch seconds).
    pub expires: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevokeTokenRequest {
    /// Revoke the token with this id, or every token of `profile`, or all when both are absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

/// `GET /v1/status`: everything `rolecall status` shows. Field names are stable for scripts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub daemon: DaemonStatus,
    pub sources: Vec<SourceStatus>,
    pub profiles: Vec<ProfileStatus>,
    #[serde(default)]
    pub container_tokens: Vec<ContainerTokenStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DaemonStatus {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
    pub started_at: i64,
    pub socket: String,
    pub config: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
    /// The config file does not exist: the daemon runs with no sources and no profiles.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub config_missing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceStatus {
    pub name: String,
    pub kind: String,
    pub signed_in: bool,
    /// When the current session (access token, SAML session) ends, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expires: Option<i64>,
    pub login_in_progress: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Roles the source offers that no profile uses (entra-saml: from the last assertion).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unconfigured_roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProfileStatus {
    pub name: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Expiry of the cached credentials, epoch seconds; absent when none are cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default)]
    pub warm: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerTokenStatus {
    pub id: String,
    pub profile: String,
    pub created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_pid: Option<u32>,
    /// Epoch seconds; absent for tokens bound to a process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// `GET /v1/sources/{source}/roles`: every account × role the source offers (identity-center:
/// ListAccounts × ListAccountRoles; entra-saml: the Role values of the last assertion).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AvailableRoles {
    pub source: String,
    pub roles: Vec<AvailableRole>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AvailableRole {
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// Permission set name (identity-center) or role ARN (entra-*).
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}
