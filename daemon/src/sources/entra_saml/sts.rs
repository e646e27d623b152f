//! `AssumeRoleWithSAML`: one call per profile, DurationSeconds chosen from the profile, the
//! assertion's SessionDuration and SessionNotOnOrAfter, and one retry at 3600 s when the role's
//! MaxSessionDuration is lower than asked. Errors never carry the assertion.

use crate::saml::SamlResponse;
use crate::sources::{RoleCredentials, SourceError};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

/// STS's bounds on DurationSeconds.
const MIN_DURATION: i64 = 900;
const MAX_DURATION: i64 = 43_200;
/// What an unconfigured profile asks for when the assertion says nothing (STS's own default).
const DEFAULT_DURATION: i64 = 3600;

/// The DurationSeconds to ask for: the smallest of the profile's `duration`, SessionDuration
/// and the time left until SessionNotOnOrAfter, within STS's 900..=43200.
pub fn duration_seconds(
    profile: Option<i64>,
    session_duration: Option<u64>,
    session_not_on_or_after: Option<i64>,
    now: i64,
) -> i64 {
    let mut d = profile
        .or(session_duration.map(|s| s as i64))
        .unwrap_or(DEFAULT_DURATION);
    if let Some(s) = session_duration {
        d = d.min(s as i64);
    }
    if let Some(end) = session_not_on_or_after {
        d = d.min(end - now);
    }
    d.clamp(MIN_DURATION, MAX_DURATION)
}

/// Why a redemption failed.
#[derive(Debug)]
pub enum Refusal {
    /// STS would not accept this assertion (`InvalidIdentityToken`). For an assertion that was
    /// already redeemed once, that is STS refusing a second use: a fresh one may work.
    Assertion(SourceError),
    Other(SourceError),
}

impl Refusal {
    pub fn into_error(self) -> SourceError {
        match self {
            Refusal::Assertion(e) | Refusal::Other(e) => e,
        }
    }
}

/// Redeems the assertion for `role_arn`.
pub async fn assume(
    client: &aws_sdk_sts::Client,
    role_arn: &str,
    principal_arn: &str,
    response: &SamlResponse,
    duration: i64,
) -> Result<RoleCredentials, Refusal> {
    match call(client, role_arn, principal_arn, response, duration).await {
        Err(Failure::MaxSessionDuration) if duration > DEFAULT_DURATION => {
            tracing::info!(
                role_arn,
                "DurationSeconds above the role's maximum; retrying with 3600"
            );
            call(client, role_arn, principal_arn, response, DEFAULT_DURATION)
                .await
                .map_err(|f| f.into_refusal(role_arn))
        }
        r => r.map_err(|f| f.into_refusal(role_arn)),
    }
}

enum Failure {
    MaxSessionDuration,
    InvalidAssertion(SourceError),
    Error(SourceError),
}

impl Failure {
    fn into_refusal(self, role_arn: &str) -> Refusal {
        match self {
            Failure::MaxSessionDuration => Refusal::Other(SourceError::AccessDenied(format!(
                "STS refused {role_arn}: the requested duration exceeds the role's MaxSessionDuration"
            ))),
            Failure::InvalidAssertion(e) => Refusal::Assertion(e),
            Failure::Error(e) => Refusal::Other(e),
        }
    }
}

async fn call(
    client: &aws_sdk_sts::Client,
    role_arn: &str,
    principal_arn: &str,
    response: &SamlResponse,
    duration: i64,
) -> Result<RoleCredentials, Failure> {
    let out = client
        .assume_role_with_saml()
        .role_arn(role_arn)
        .principal_arn(principal_arn)
        .saml_assertion(response.expose())
        .duration_seconds(duration as i32)
        .send()
        .await
        .map_err(|e| classify(&e, role_arn))?;
    let c = out.credentials().ok_or_else(|| {
        Failure::Error(SourceError::Upstream {
            message: "STS answered AssumeRoleWithSAML without credentials".into(),
            retryable: false,
        })
    })?;
    Ok(RoleCredentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: zeroize::Zeroizing::new(c.secret_access_key().to_string()),
        session_token: zeroize::Zeroizing::new(c.session_token().to_string()),
        expiration: c.expiration().secs(),
        account_id: role_arn.split(':').nth(4).unwrap_or_default().to_string(),
        role_arn: role_arn.to_string(),
    })
}

fn classify<E, R>(e: &SdkError<E, R>, role_arn: &str) -> Failure
where
    E: ProvideErrorMetadata,
    R: std::fmt::Debug,
{
    let se = match e {
        SdkError::ServiceError(se) => se,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            return Failure::Error(SourceError::Upstream {
                message: "STS AssumeRoleWithSAML: cannot reach STS or no answer in time".into(),
                retryable: true,
            })
        }
        _ => {
            return Failure::Error(SourceError::Internal(
                "STS AssumeRoleWithSAML could not be sent".into(),
            ))
        }
    };
    let err = se.err();
    let code = err.code().unwrap_or("Unknown");
    // STS messages name roles and providers, never the assertion.
    let msg: String = err
        .message()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    if code == "ValidationError" && msg.contains("MaxSessionDuration") {
        return Failure::MaxSessionDuration;
    }
    let text = format!("STS refused {role_arn}: {code}: {msg}");
    if code == "InvalidIdentityToken" {
        return Failure::InvalidAssertion(SourceError::AccessDenied(text));
    }
    Failure::Error(match code {
        "Throttling"
        | "ThrottlingException"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "RequestLimitExceeded" => SourceError::Upstream {
            message: text,
            retryable: true,
        },
        // The assertion ran out between capture and use: a fresh capture fixes it.
        "ExpiredTokenException" => SourceError::NeedsLogin(text),
        _ => SourceError::AccessDenied(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_is_the_smallest_bound() {
        let now = 1_000_000;
        assert_eq!(duration_seconds(None, None, None, now), 3600);
        assert_eq!(duration_seconds(None, Some(14400), None, now), 14400);
        assert_eq!(duration_seconds(Some(7200), Some(14400), None, now), 7200);
        assert_eq!(duration_seconds(Some(28800), Some(14400), None, now), 14400);
        assert_eq!(
            duration_seconds(Some(28800), Some(14400), Some(now + 5000), now),
            5000
        );
        // Within STS's bounds (STS itself caps at SessionNotOnOrAfter).
        assert_eq!(duration_seconds(Some(60), None, None, now), 900);
        assert_eq!(duration_seconds(Some(100_000), None, None, now), 43_200);
    }
}
