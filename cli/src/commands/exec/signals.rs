//! Runs a child while passing SIGINT, SIGTERM and SIGHUP on to it.
//!
//! Signals the kernel generated for the terminal's foreground process group (Ctrl-C, a closed
//! terminal) already reach the child, which shares our process group: forwarding those too
//! would deliver them twice. Only signals sent to this process alone (`kill <pid>`, a
//! supervisor) are forwarded — told apart by `si_code`, which is positive for kernel-generated
//! signals and zero or negative for `kill`/`sigqueue`/`tkill`.

use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};

const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let child = CHILD.load(Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let code = if info.is_null() {
        0
    } else {
        unsafe { (*info).si_code }
    };
    if child > 0 && code <= 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(child, sig);
        }
    }
}

fn sigset(sigs: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset uses it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Spawns `cmd` and waits for it, forwarding signals meanwhile.
pub fn run_forwarding(cmd: &mut Command) -> std::io::Result<ExitStatus> {
    let set = sigset(&FORWARDED);
    // Block the signals across spawn + handler installation so none is lost or hits a child
    // pid not yet known. The child must not inherit the mask (a blocked SIGTERM would never
    // end it): it unblocks them between fork and exec.
    // SAFETY: pthread_sigmask is async-signal-safe, as pre_exec requires; `set` is a copy.
    unsafe {
        use std::os::unix::process::CommandExt as _;
        cmd.pre_exec(move || {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let spawned = cmd.spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            // SAFETY: as above.
            unsafe {
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            }
            return Err(e);
        }
    };
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    for sig in FORWARDED {
        // SAFETY: installs an async-signal-safe handler with a zeroed, then filled, sigaction.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    // SAFETY: as above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    let status = loop {
        match child.wait() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    CHILD.store(0, Ordering::SeqCst);
    status
}
