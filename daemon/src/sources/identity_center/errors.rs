//! Reading AWS SDK errors of the Identity Center APIs: the modelled error code (also for codes
//! the model does not list, like the portal's `ForbiddenException`), the HTTP status, and
//! whether the failure is worth retrying later.

use crate::sources::transport::transport;
use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};

/// An SDK failure reduced to what decisions need. `message` never carries a token.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: Option<String>,
    pub status: Option<u16>,
    pub message: String,
    /// Throttling, 5xx, timeouts, dropped connections.
    pub retryable: bool,
}

impl Failure {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

pub fn read<E, R>(e: &SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: HasStatus,
{
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let http = se.raw().status_code();
            let status = Some(http);
            let code = err.code().map(str::to_string);
            let retryable = matches!(
                code.as_deref(),
                Some("TooManyRequestsException" | "ThrottlingException" | "SlowDownException")
            ) || http >= 500
                || http == 429;
            let message = match (code.as_deref(), err.message()) {
                (Some(c), Some(m)) if !m.is_empty() => format!("{c}: {m}"),
                (Some(c), _) => c.to_string(),
                (None, _) => format!("HTTP {}", http),
            };
            Failure {
                code,
                status,
                message,
                retryable,
            }
        }
        other => {
            let t = transport(other);
            Failure {
                code: None,
                // An unreadable reply still had a status worth showing.
                status: match other {
                    SdkError::ResponseError(r) => Some(r.raw().status_code()),
                    _ => None,
                },
                message: t.message.into(),
                retryable: t.retryable,
            }
        }
    }
}

/// The raw HTTP response type of the SDK, reduced to its status.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}
