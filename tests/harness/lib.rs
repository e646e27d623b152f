//! The black-box test harness: the built binaries (`$ROLECALL_BIN_DIR`), an isolated
//! installation per test ([`Installation`]: temp HOME, config, state, runtime and AWS files,
//! the daemon, a counting `$BROWSER`), the sandbox process and its admin API ([`Sandbox`]),
//! a `TestCommand`-style runner ([`TestCommand`]) and a small HTTP client ([`http`]).
//!
//! Everything a test starts is killed when its handle drops.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

pub mod command;
pub mod http;
pub mod install;
pub mod sandbox;
// The suite's skip convention (shared with daemon/tests: one file, included by path).
#[path = "../../daemon/tests/rig/skip.rs"]
mod skip_convention;
pub mod world;

pub use command::{
    assert_no_secrets, find_token_shape, is_utc_seconds_timestamp, run_concurrently, Run,
    TestCommand,
};
pub use install::{BrowserMode, IcProfile, Installation, REGION, START_URL};
pub use sandbox::{Fault, Sandbox, SandboxOptions};
pub use skip_convention::skip;
pub use world::{default_profiles, World, WorldOptions};

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// Where the built binaries are: `$ROLECALL_BIN_DIR`, else `$CARGO_TARGET_DIR/debug`, else the
/// workspace's `target/debug`. `tests/run` builds them first (`cargo build --workspace --bins`).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ROLECALL_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("debug");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug")
}

/// The path of a built binary; panics with how to build it when it is missing.
pub fn bin_path(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: build the binaries first (cargo build --workspace --bins) or set ROLECALL_BIN_DIR",
        p.display()
    );
    // Absolute: credential_process lines and $BROWSER scripts hold it.
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// Sends a signal to one process this test started.
pub fn kill_pid(pid: u32, signal: libc::c_int) {
    if pid == 0 {
        return;
    }
    // SAFETY: kill has no memory preconditions; a stale pid only yields ESRCH.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// SIGTERM, a short grace period, then SIGKILL; reaps the child.
pub fn kill_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    kill_pid(child.id(), libc::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Polls `f` until it returns true or `limit` passes; returns whether it did.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Python in the test venv (`tests/.venv`), where boto3 and awscli live.
pub fn venv_bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(name)
}
