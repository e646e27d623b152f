//! How fetch and login failures read to a caller: one mapping from [`SourceError`] to the wire's
//! [`ErrorBody`].

use crate::sources::SourceError;
use rolecall_proto::api::ErrorBody;

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
    crate::wire_error::not_signed_in(source)
}

/// The error a caller sees for a failed fetch (the one mapping lives in `wire_error`).
pub fn fetch_error_body(source: &str, err: &SourceError) -> ErrorBody {
    crate::wire_error::source_error(source, err, crate::wire_error::Stage::Fetch)
}

pub(super) fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
