//! `rolecall demo [--keep]`: the whole product on this machine, with no cloud account.
//!
//! It starts `rolecall-sandbox` (the emulator of Identity Center, Entra and STS) on a loopback
//! port, builds an isolated installation in a temporary directory (HOME, config, state, runtime
//! dir, `~/.aws/config`, and `$BROWSER` = the sandbox's robot browser), starts `rolecalld` there,
//! and runs what a user would run — each as a real subprocess of this same binary, so that a
//! command not built yet simply does not show. Without `--keep`, everything is stopped and the
//! directory removed at the end, also on error or Ctrl-C.

mod env;
mod steps;

use crate::autostart::{find_daemon, find_sibling};
use crate::cli::DemoArgs;
use anyhow::{bail, Context};
use env::DemoEnv;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether Ctrl-C (or SIGTERM) arrived; every wait of the demo checks it.
pub(super) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub(super) fn check_interrupted() -> anyhow::Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

pub fn run(a: &DemoArgs) -> anyhow::Result<i32> {
    let sandbox_bin = find_sibling("rolecall-sandbox").context(
        "rolecall-sandbox was found neither beside rolecall nor on PATH — run: cargo build -p rolecall-sandbox",
    )?;
    let daemon_bin = find_daemon().map_err(|_| {
        anyhow::anyhow!(
            "rolecalld was found neither beside rolecall nor on PATH — run: cargo build -p rolecall-daemon"
        )
    })?;
    let me = std::env::current_exe().context("cannot find the rolecall executable")?;

    // Ctrl-C reaches the whole foreground process group: the subprocess of the current step
    // stops, and the demo cleans up instead of leaving a sandbox and a daemon behind.
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let handler = on_signal as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t;
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }

    let mut demo = DemoEnv::create(me, sandbox_bin, daemon_bin)?;
    let outcome = steps::run_all(&mut demo);
    match (&outcome, a.keep) {
        (Ok(()), true) => {
            demo.keep();
            steps::print_keep_instructions(&demo);
        }
        _ => {
            demo.teardown();
            if outcome.is_ok() {
                steps::heading("Done");
                println!("Stopped the sandbox and rolecalld and removed the demo directory.");
                println!("Run `rolecall demo --keep` to try it by hand.");
            }
        }
    }
    outcome.map(|()| 0)
}
