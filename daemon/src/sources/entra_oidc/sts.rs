//! STS `AssumeRoleWithWebIdentity` for an entra-oidc source: the call (unsigned; the token is
//! the proof) and what its failures mean for the user.

use crate::sources::transport::transport;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
use zeroize::Zeroizing;

/// The call's outcome, reduced to what decisions need. `message` never holds a token.
#[derive(Debug, Clone)]
pub struct StsFailure {
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
}

impl StsFailure {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    pub fn exceeds_max_session(&self) -> bool {
        self.is("ValidationError") && self.message.contains("MaxSessionDuration")
    }
}

pub struct Assumed {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Zeroizing<String>,
    /// Epoch seconds.
    pub expiration: i64,
}

pub async fn assume(
    client: &aws_sdk_sts::Client,
    role_arn: &str,
    session_name: &str,
    token: &str,
    duration_secs: Option<i32>,
) -> Result<Assumed, StsFailure> {
    let out = client
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .web_identity_token(token)
        .set_duration_seconds(duration_secs)
        .send()
        .await
        .map_err(|e| read(&e))?;
    let Some(c) = out.credentials() else {
        return Err(StsFailure {
            code: None,
            message: "AssumeRoleWithWebIdentity answered without credentials".into(),
            retryable: true,
        });
    };
    Ok(Assumed {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: Zeroizing::new(c.secret_access_key().to_string()),
        session_token: Zeroizing::new(c.session_token().to_string()),
        expiration: c.expiration().secs(),
    })
}

fn read<R>(e: &SdkError<AssumeRoleWithWebIdentityError, R>) -> StsFailure {
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().map(str::to_string);
            let message = err
                .message()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let retryable = matches!(
                code.as_deref(),
                Some(
                    "Throttling"
                        | "ThrottlingException"
                        | "IDPCommunicationError"
                        | "InternalFailure"
                        | "ServiceUnavailable"
                )
            );
            StsFailure {
                code,
                message,
                retryable,
            }
        }
        _ => {
            let t = transport(e);
            StsFailure {
                code: None,
                message: t.message.into(),
                retryable: t.retryable,
            }
        }
    }
}
