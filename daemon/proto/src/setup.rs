//! `rolecall setup`'s question to the daemon: would this source work? (`POST /v1/setup/check`)
//!
//! The daemon answers because it owns endpoint resolution (`endpoint_url`, the
//! `AWS_ENDPOINT_URL*` variables it was started with) and the HTTPS client: the check talks to
//! the same endpoints the source will.

use serde::{Deserialize, Serialize};

/// One source, written as its config table (`[sources.NAME]` with its keys), exactly as
/// setup is about to write it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SetupCheckRequest {
    pub source_toml: String,
}

/// What was confirmed, one line each (`start URL … is an IAM Identity Center portal`).
/// A failed check is an error reply with one line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SetupCheckReply {
    pub confirmed: Vec<String>,
}

/// The route.
pub const ROUTE: &str = "/v1/setup/check";
