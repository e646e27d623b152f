//! How fetch and login failures read to a caller: one mapping from [`SourceError`] to the wire's
//! [`ErrorBody`].

use crate::sources::SourceError;
use rolecall_proto::api::{ErrorBody, ErrorCode};

/// A chained profile's parent failed: the caller learns which, with the parent's own reason and
/// hint (`profile 'x' uses 'y', which failed: not signed in to source 'corp'`).
pub(super) fn parent_failed(profile: &str, parent: &str, e: ErrorBody) -> ErrorBody {
    ErrorBody {
        message: format!(
            "profile '{profile}' uses '{parent}', which failed: {}",
            e.message
        ),
        ..e
    }
}

pub(super) fn not_signed_in(source: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::NotSignedIn,
        format!("not signed in to source '{source}'"),
    )
    .with_hint(format!("rolecall login {source}"))
}

/// The error a caller sees for a failed fetch.
pub fn fetch_error_body(source: &str, err: &SourceError) -> ErrorBody {
    match err {
        SourceError::NeedsLogin(_) => not_signed_in(source),
        SourceError::LoginCancelled(m) => ErrorBody::new(
            ErrorCode::LoginFailed,
            format!("sign-in to source '{source}' did not complete: {m}"),
        )
        .with_hint(format!("rolecall login {source}")),
        SourceError::AccessDenied(m) => ErrorBody::new(ErrorCode::AccessDenied, m.clone()),
        SourceError::Upstream { message, .. } => {
            ErrorBody::new(ErrorCode::Upstream, message.clone())
                .with_hint("rolecall status".to_string())
        }
        SourceError::Config(m) => ErrorBody::new(ErrorCode::ConfigInvalid, m.clone()),
        SourceError::Internal(m) => ErrorBody::new(ErrorCode::Internal, m.clone()),
    }
}

pub(super) fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
