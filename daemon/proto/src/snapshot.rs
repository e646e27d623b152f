//! The status snapshot the daemon keeps in the runtime dir (written atomically after every
//! change) so that `rolecall prompt` can draw the prompt segment with one small file read: no
//! socket round trip, no network, no AWS SDK.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Snapshot {
    /// The daemon that wrote it; a snapshot whose writer is gone is ignored.
    pub pid: u32,
    pub written_at: i64,
    #[serde(default)]
    pub profiles: BTreeMap<String, SnapshotProfile>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Expiry of the credentials being served, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// The profile's source needs an interactive sign-in.
    #[serde(default)]
    pub needs_login: bool,
}

/// One profile's line of the snapshot, also kept as its own small file
/// (`paths::prompt_entry_path`) so that the prompt reads a few hundred bytes instead of the
/// whole snapshot (~170 KB after `populate` of 900 profiles). The prompt trusts it only while
/// `status.json` exists and `pid` is alive; otherwise it falls back to the snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PromptEntry {
    /// The daemon that wrote it.
    pub pid: u32,
    pub profile: SnapshotProfile,
}
