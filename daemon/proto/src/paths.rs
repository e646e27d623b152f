//! Where rolecall keeps its files. Every path can be overridden by an environment variable so
//! that tests (and unusual setups) can isolate a whole installation in a temporary directory.
//!
//! - config: `ROLECALL_CONFIG`, else the platform config dir (`$XDG_CONFIG_HOME/rolecall/config.toml`)
//! - state (secret store, logs, browser profiles): `ROLECALL_STATE_DIR`, else the platform state dir
//! - runtime (socket, status snapshot, locks): `ROLECALL_RUNTIME_DIR`, else
//!   `$XDG_RUNTIME_DIR/rolecall`, else `run` in the state dir — never a shared temp dir, where
//!   another local user could create the directory first (see docs/security.md)

use std::path::{Path, PathBuf};

pub const SOCKET_NAME: &str = "rolecalld.sock";
pub const SNAPSHOT_NAME: &str = "status.json";
pub const START_LOCK_NAME: &str = "start.lock";
pub const PID_NAME: &str = "rolecalld.pid";
pub const LOG_NAME: &str = "rolecalld.log";
/// Directory (in the runtime dir) of the per-profile prompt entries (`snapshot::PromptEntry`).
pub const PROMPT_DIR_NAME: &str = "prompt";
/// The runtime dir inside the state dir when there is no `XDG_RUNTIME_DIR`.
pub const RUNTIME_FALLBACK_NAME: &str = "run";

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "rolecall")
}

/// The configuration file.
pub fn config_file() -> PathBuf {
    if let Some(p) = env_path("ROLECALL_CONFIG") {
        return p;
    }
    match project_dirs() {
        Some(d) => d.config_dir().join("config.toml"),
        None => PathBuf::from(".rolecall/config.toml"),
    }
}

/// The state directory: the encrypted secret store, its key file (file mode), logs and the
/// dedicated browser profiles.
pub fn state_dir() -> PathBuf {
    if let Some(p) = env_path("ROLECALL_STATE_DIR") {
        return p;
    }
    match project_dirs() {
        Some(d) => d
            .state_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| d.data_local_dir().to_path_buf()),
        None => PathBuf::from(".rolecall/state"),
    }
}

/// The runtime directory that holds the socket and the status snapshot.
pub fn runtime_dir() -> PathBuf {
    if let Some(p) = env_path("ROLECALL_RUNTIME_DIR") {
        return p;
    }
    if let Some(p) = env_path("XDG_RUNTIME_DIR") {
        return p.join("rolecall");
    }
    // No XDG runtime dir (macOS, cron, su/sudo, some SSH sessions, containers): a directory in
    // the user's own state dir. Not `/tmp/rolecall-<uid>`: any local user can create that name
    // first and then serve a fake daemon or plant symlinks in it.
    state_dir().join(RUNTIME_FALLBACK_NAME)
}

pub fn socket_path() -> PathBuf {
    runtime_dir().join(SOCKET_NAME)
}

pub fn snapshot_path() -> PathBuf {
    runtime_dir().join(SNAPSHOT_NAME)
}

/// The file holding `profile`'s prompt entry, under `runtime` (see [`prompt_entry_name`]).
pub fn prompt_entry_path(runtime: &Path, profile: &str) -> PathBuf {
    let mut p = runtime.join(PROMPT_DIR_NAME);
    p.push(prompt_entry_name(profile));
    p
}

/// A profile name as a file name: ASCII letters, digits, `-`, `_` and (not first) `.` as they
/// are, every other byte as `%XX`. So no name can be `.`, `..`, hidden, or contain `/`, and
/// distinct profiles get distinct files. (Over-long results fail to be written; the prompt then
/// falls back to the snapshot.)
pub fn prompt_entry_name(profile: &str) -> String {
    let mut out = String::with_capacity(profile.len());
    for (i, b) in profile.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn start_lock_path() -> PathBuf {
    runtime_dir().join(START_LOCK_NAME)
}

pub fn pid_path() -> PathBuf {
    runtime_dir().join(PID_NAME)
}

pub fn log_path() -> PathBuf {
    state_dir().join(LOG_NAME)
}

pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_entry_names_are_plain_distinct_file_names() {
        assert_eq!(prompt_entry_name("dev-admin"), "dev-admin");
        assert_eq!(
            prompt_entry_name("generated-0150.GeneratedSet02"),
            "generated-0150.GeneratedSet02"
        );
        assert_eq!(prompt_entry_name("a/b"), "a%2Fb");
        assert_eq!(prompt_entry_name(".."), "%2E.");
        assert_eq!(prompt_entry_name(".hidden"), "%2Ehidden");
        assert_eq!(prompt_entry_name("a%2Fb"), "a%252Fb");
        assert_eq!(prompt_entry_name("é"), "%C3%A9");
        assert_eq!(
            prompt_entry_path(Path::new("/run/rc"), "p q"),
            Path::new("/run/rc/prompt/p%20q")
        );
    }
}
