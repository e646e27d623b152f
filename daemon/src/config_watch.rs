//! Config changes apply without a restart: the daemon polls its config file and reloads when it
//! changed (docs/daemon.md, *Configuration*).
//!
//! Polled by path, not watched by inode: editors save by writing a new file and renaming it
//! over the old one, and a config may be a symlink into a dotfiles repository — `stat` of the
//! path sees all of these. One `stat` a second costs nothing; no notify dependency.

use crate::app::App;
use crate::shutdown::stopped;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often the file is looked at.
pub const POLL: Duration = Duration::from_secs(1);
/// A change is applied once the file held still this long (a save in progress is not read).
const SETTLE: Duration = Duration::from_millis(200);

/// What identifies one version of the file: a rename changes the inode, an in-place write the
/// size or times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
    })
}

/// Reloads the config whenever its file changes, until shutdown. A file that disappears is not
/// applied (an editor between its rename steps; a deleted config is applied by an explicit
/// `rolecall daemon reload`); a broken edit keeps the last good config and shows its error in
/// `status` until the file is fixed.
pub async fn run(app: Arc<App>, poll: Duration) {
    let path = app.config_path().to_path_buf();
    let mut last = stamp(&path);
    let mut stop = app.shutdown().signal();
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        let now = stamp(&path);
        if now == last {
            continue;
        }
        let Some(seen) = now else {
            tracing::info!(path = %path.display(), "the config file is gone; keeping the config in use");
            last = None;
            continue;
        };
        tokio::time::sleep(SETTLE).await;
        if stamp(&path) != Some(seen) {
            // Still being written: the next tick looks again.
            continue;
        }
        last = Some(seen);
        tracing::info!(path = %path.display(), "the config file changed; reloading");
        // The outcome (and any error, located) is logged and kept for `status` by the reload.
        let _ = app.reload();
    }
}
