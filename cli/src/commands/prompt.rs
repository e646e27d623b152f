//! `rolecall prompt`: the prompt segment (active profile, account, time left).
//!
//! This runs on every prompt, so it reads one small file — the daemon's per-profile entry, else
//! its status snapshot — and nothing else: no config parse, no socket round trip, no network.
//! It fails soft: whenever there is nothing trustworthy to show (no active profile, daemon down,
//! snapshot stale, corrupt or without the profile) it prints nothing and exits 0, so a prompt
//! never breaks.

mod render;
mod snapshot;

use crate::cli::{ColorChoice, PromptArgs};
use rolecall_proto::snapshot::SnapshotProfile;
use std::io::Write;

use render::{render, Segment};

/// The format used when neither `--format` nor `ROLECALL_PROMPT_FORMAT` is given. `[...]` is a
/// group that disappears when any placeholder inside it is empty.
pub const DEFAULT_FORMAT: &str = "{profile}[@{account}][ {time_left}]";

/// Refuse to read a snapshot larger than this: the daemon writes a few hundred bytes per
/// profile, so anything bigger is not ours and not worth the prompt's time.
const MAX_SNAPSHOT_BYTES: u64 = 8 * 1024 * 1024;
/// The same for one profile's entry file.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;

pub fn run(a: &PromptArgs) -> anyhow::Result<i32> {
    let Some(profile) = active_profile(a.profile.as_deref()) else {
        return Ok(0);
    };
    let Some(p) = lookup(&profile) else {
        return Ok(0);
    };
    let now = rolecall_proto::timefmt::now_epoch();
    let seg = Segment::new(&profile, &p, now);
    let color = match a.color {
        ColorChoice::Never => false,
        ColorChoice::Always => true,
        // NO_COLOR (no-color.org) is honoured only in auto mode: `--color always` wins.
        ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let out = render(
        a.format.as_deref().unwrap_or(DEFAULT_FORMAT),
        &seg,
        color,
        matches!(a.color, ColorChoice::Always),
        a.shell,
    );
    if !out.is_empty() {
        // A closed stdout (the prompt went away) is not an error worth reporting.
        let _ = std::io::stdout().lock().write_all(out.as_bytes());
    }
    Ok(0)
}

/// The profile's snapshot line, when a live daemon wrote it. The daemon's per-profile entry
/// file is the shortcut; it counts only while the snapshot exists (the daemon removes that at
/// shutdown, not the entries) and its writer is alive. Otherwise the snapshot decides, exactly
/// as without entries (an older daemon, a profile without an entry, a restart in progress).
fn lookup(profile: &str) -> Option<SnapshotProfile> {
    let runtime = rolecall_proto::paths::runtime_dir();
    // One lstat: files in a runtime dir that is not private to us could be anyone's (a fake
    // snapshot showing a wrong account): show nothing rather than them.
    if rolecall_proto::trust::runtime_dir_state(&runtime)
        != rolecall_proto::trust::DirState::Private
    {
        return None;
    }
    let snapshot_path = runtime.join(rolecall_proto::paths::SNAPSHOT_NAME);
    std::fs::symlink_metadata(&snapshot_path).ok()?;
    let entry_path = rolecall_proto::paths::prompt_entry_path(&runtime, profile);
    if let Some(found) = snapshot::read_entry(&entry_path, MAX_ENTRY_BYTES) {
        if snapshot::daemon_alive(found.pid) {
            return found.profile;
        }
    }
    let found = snapshot::read_profile(&snapshot_path, profile, MAX_SNAPSHOT_BYTES)?;
    if !snapshot::daemon_alive(found.pid) {
        return None;
    }
    found.profile
}

/// `--profile`, else `ROLECALL_PROFILE`, else `AWS_PROFILE`; empty values count as unset.
fn active_profile(flag: Option<&str>) -> Option<String> {
    if let Some(p) = flag.filter(|p| !p.is_empty()) {
        return Some(p.to_owned());
    }
    ["ROLECALL_PROFILE", "AWS_PROFILE"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|p| !p.is_empty())
}
