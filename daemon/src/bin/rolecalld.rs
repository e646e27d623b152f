//! rolecalld: the per-user daemon. `rolecalld [--foreground] [--config PATH]`.
//!
//! Start-up order matters: umask first; then everything that can fail with a message the
//! starter should see (runtime dir, single-instance lock, socket, config) while stderr is still
//! the caller's; then daemonize — before any thread exists, so before the tokio runtime; then
//! logging, the secret store, the sources, and serving. No network before serving.

use clap::Parser;
use rolecall_daemon::broker::SnapshotWriter;
use rolecall_daemon::serve::socket;
use rolecall_daemon::{config, logging, Deps, Listeners, RunConfig};
use rolecall_proto::paths;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Why the daemon did not start (or stopped with an error); the text is the one line the
/// starter sees after `rolecalld: `.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Listen(#[from] socket::ListenError),
    #[error("cannot open the pid file {}: {source}", path.display())]
    PidFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rolecalld is already running (pid {pid})")]
    AlreadyRunning { pid: String },
    #[error("cannot lock the pid file {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: nix::errno::Errno,
    },
    #[error("cannot write the pid file: {0}")]
    WritePid(std::io::Error),
    #[error("{what} failed: {source}")]
    Detach {
        what: &'static str,
        source: nix::errno::Errno,
    },
    #[error("cannot open /dev/null: {0}")]
    DevNull(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Run(#[from] rolecall_daemon::RunError),
}

#[derive(Debug, Parser)]
#[command(
    name = "rolecalld",
    version,
    about = "The rolecall daemon: signs in through Entra and serves AWS role credentials"
)]
struct Args {
    /// Stay in the foreground and log to stderr too (for systemd, launchd and debugging).
    #[arg(long)]
    foreground: bool,
    /// The config file (default: ROLECALL_CONFIG, else the platform config dir).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Every file the daemon creates (socket, snapshot, log, store) is private to the user.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    forbid_core_dumps();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("rolecalld: {msg}");
            tracing::error!("{msg}");
            ExitCode::FAILURE
        }
    }
}

/// The daemon holds refresh tokens, the store key and role credentials in memory: a core dump
/// (or another process of the same user attaching with ptrace, or reading /proc/<pid>/mem)
/// would write them out. RLIMIT_CORE 0 stops dumps; on Linux, PR_SET_DUMPABLE 0 also makes
/// /proc/<pid> root-owned and refuses same-uid ptrace. Both before anything secret is loaded.
/// Failures are ignored: they leave the process as hardened as the platform allows.
fn forbid_core_dumps() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads a valid rlimit; prctl with PR_SET_DUMPABLE takes plain integers.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Takes the single-instance lock: an exclusive `flock` on the pid file, held for the
/// daemon's life (the descriptor survives the fork).
fn lock_pid_file(path: &Path) -> Result<nix::fcntl::Flock<File>, StartError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| StartError::PidFile {
            path: path.into(),
            source,
        })?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Err(StartError::AlreadyRunning {
                pid: pid
                    .trim()
                    .parse::<u32>()
                    .map_or("unknown".into(), |p| p.to_string()),
            })
        }
        Err((_, source)) => Err(StartError::Lock {
            path: path.into(),
            source,
        }),
    }
}

fn write_pid(lock: &mut nix::fcntl::Flock<File>) -> std::io::Result<()> {
    let file: &mut File = lock;
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()
}

/// Detaches from the starting terminal and session: fork, setsid, fork again, `/` as the
/// working directory, stdio on /dev/null. Must run while the process has one thread.
fn daemonize() -> Result<(), StartError> {
    use nix::unistd::{fork, setsid, ForkResult};
    // SAFETY: no other thread exists yet (no runtime, no logging thread); the children only
    // continue single-threaded start-up.
    let detach = |what| move |source| StartError::Detach { what, source };
    match unsafe { fork() }.map_err(detach("fork"))? {
        ForkResult::Parent { .. } => {
            // SAFETY: _exit ends the process without running destructors that belong to the child.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Child => {}
    }
    setsid().map_err(detach("setsid"))?;
    // SAFETY: as above.
    match unsafe { fork() }.map_err(detach("fork"))? {
        ForkResult::Parent { .. } => unsafe { libc::_exit(0) },
        ForkResult::Child => {}
    }
    let _ = std::env::set_current_dir("/");
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(StartError::DevNull)?;
    use std::os::fd::AsRawFd;
    for fd in 0..=2 {
        nix::unistd::dup2(devnull.as_raw_fd(), fd).map_err(detach("dup2"))?;
    }
    Ok(())
}

fn run(args: Args) -> Result<(), StartError> {
    let config_path = args.config.clone().unwrap_or_else(paths::config_file);
    // Reloads happen after daemonizing changed the working directory to `/`.
    let config_path = std::path::absolute(&config_path).unwrap_or(config_path);
    let runtime_dir = paths::runtime_dir();
    let activated = socket::activated_listener()?;
    socket::prepare_runtime_dir(&runtime_dir)?;
    let mut pid_lock = lock_pid_file(&paths::pid_path())?;
    let socket_path = paths::socket_path();
    let (listener, owns_socket) = match activated {
        Some(l) => (l, false),
        None => (socket::bind(&socket_path)?, true),
    };
    let initial = config::load(&config_path);
    if let Err(e) = &initial {
        // The daemon still starts (status shows the error); the starter sees it now.
        eprintln!("rolecalld: {e}");
    }
    if !args.foreground {
        daemonize()?;
    }
    if owns_socket {
        // The kernel gives clients the credentials of the process that called listen(): that
        // was the starter before the double fork. Listen again so that they name this process,
        // which `rolecall daemon stop` then verifies before it ever signals it.
        socket::claim_peer_credentials(&listener)?;
    }
    write_pid(&mut pid_lock).map_err(StartError::WritePid)?;
    if let Err(e) = logging::init(&paths::log_path(), args.foreground) {
        eprintln!(
            "rolecalld: cannot open the log {}: {e}",
            paths::log_path().display()
        );
    }
    tracing::info!(
        version = rolecall_proto::VERSION,
        pid = std::process::id(),
        socket = %socket_path.display(),
        activated = !owns_socket,
        "rolecalld starting"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let listeners = Listeners {
        socket: listener,
        socket_path: socket_path.clone(),
        remove_socket: owns_socket,
        container: None,
        imds: None,
    };
    let config = RunConfig {
        path: config_path,
        initial,
        state_dir: paths::state_dir(),
        snapshot: Some(paths::snapshot_path()),
        reload_on_hangup: true,
        refresh: Default::default(),
    };
    let result = runtime.block_on(async {
        rolecall_daemon::run(listeners, config, Deps::system(), stop_signal()).await
    });
    // Stop every task first (a background refresh could otherwise write the snapshot again
    // after it was removed), then leave nothing a client could mistake for a live daemon.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    SnapshotWriter::new(paths::snapshot_path()).remove();
    let _ = std::fs::remove_file(paths::pid_path());
    drop(pid_lock);
    tracing::info!("rolecalld stopped");
    Ok(result?)
}

/// Resolves on SIGTERM or SIGINT (SIGHUP, a reload, is the library's).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
}
