//! The one mapping from a source's failure ([`SourceError`]) to the error a client sees on the
//! wire ([`ErrorBody`]): the socket API, the container endpoint and the login state all answer
//! with it, so the same failure reads the same everywhere.

use crate::sources::SourceError;
use rolecall_proto::api::{ErrorBody, ErrorCode};

/// What the caller was doing when the source failed: the same upstream failure means "the
/// credentials could not be fetched" in one case and "the sign-in failed" in the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Fetching role credentials or listing roles with the session the source has.
    Fetch,
    /// Signing in (a login the user or the daemon started).
    Login,
}

/// The one-line error (with the command that fixes it, when there is one) for `err`.
pub fn source_error(source: &str, err: &SourceError, stage: Stage) -> ErrorBody {
    let login_hint = format!("rolecall login {source}");
    match (err, stage) {
        (SourceError::NeedsLogin(_), Stage::Fetch) => not_signed_in(source),
        (SourceError::NeedsLogin(m), Stage::Login) => ErrorBody::new(
            ErrorCode::LoginFailed,
            format!("sign-in to source '{source}' failed: {m}"),
        )
        .with_hint(login_hint),
        (SourceError::LoginCancelled(m), _) => ErrorBody::new(
            ErrorCode::LoginFailed,
            format!("sign-in to source '{source}' did not complete: {m}"),
        )
        .with_hint(login_hint),
        (SourceError::AccessDenied(m), _) => ErrorBody::new(ErrorCode::AccessDenied, m.clone()),
        (SourceError::Upstream { message, .. }, Stage::Fetch) => {
            ErrorBody::new(ErrorCode::Upstream, message.clone()).with_hint("rolecall status")
        }
        (SourceError::Upstream { message, .. }, Stage::Login) => ErrorBody::new(
            ErrorCode::LoginFailed,
            format!("sign-in to source '{source}' failed: {message}"),
        )
        .with_hint(login_hint),
        (SourceError::Config(m), _) => ErrorBody::new(ErrorCode::ConfigInvalid, m.clone()),
        (SourceError::Internal(m), _) => ErrorBody::new(ErrorCode::Internal, m.clone()),
    }
}

/// The source has no usable session.
pub fn not_signed_in(source: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::NotSignedIn,
        format!("not signed in to source '{source}'"),
    )
    .with_hint(format!("rolecall login {source}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_failure_reads_differently_while_signing_in() {
        let err = SourceError::Upstream {
            message: "throttled".into(),
            retryable: true,
        };
        let fetch = source_error("corp", &err, Stage::Fetch);
        assert_eq!(fetch.code, ErrorCode::Upstream);
        assert_eq!(fetch.hint.as_deref(), Some("rolecall status"));
        let login = source_error("corp", &err, Stage::Login);
        assert_eq!(login.code, ErrorCode::LoginFailed);
        assert_eq!(login.message, "sign-in to source 'corp' failed: throttled");
        assert_eq!(login.hint.as_deref(), Some("rolecall login corp"));
    }

    #[test]
    fn a_missing_session_is_not_signed_in_with_the_login_hint() {
        let e = source_error("corp", &SourceError::NeedsLogin("x".into()), Stage::Fetch);
        assert_eq!(e.code, ErrorCode::NotSignedIn);
        assert_eq!(
            e.one_line(),
            "not signed in to source 'corp' — run: rolecall login corp"
        );
    }
}
