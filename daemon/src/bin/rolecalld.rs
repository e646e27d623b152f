//! rolecalld: the per-user daemon. `rolecalld [--foreground] [--config PATH]`.
//!
//! Start-up order matters: umask first; then everything that can fail with a message the
//! starter should see (runtime dir, single-instance lock, socket, config) while stderr is still
//! the caller's; then daemonize — before any thread exists, so before the tokio runtime; then
//! logging, the secret store, the sources, and serving. No network before serving.

use clap::Parser;
use rolecall_daemon::app::{self, App, AppParts, BrokerProvider, SourceFactory};
use rolecall_daemon::broker::{Broker, RetryPolicy, SnapshotWriter, SystemClock};
use rolecall_daemon::config::{self, SecretStoreKind};
use rolecall_daemon::login::{LoginCoordinator, LoginSettings};
use rolecall_daemon::serve::container::{self, ContainerState, CredentialProvider, TokenStore};
use rolecall_daemon::serve::socket;
use rolecall_daemon::sources::{self, SourceContext, SourceError};
use rolecall_daemon::{endpoints, logging, notify, refresh, vault};
use rolecall_proto::paths;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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

/// Takes the single-instance lock: an exclusive `flock` on the pid file, held for the
/// daemon's life (the descriptor survives the fork).
fn lock_pid_file(path: &Path) -> Result<nix::fcntl::Flock<File>, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open the pid file {}: {e}", path.display()))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Err(format!(
                "rolecalld is already running (pid {})",
                pid.trim()
                    .parse::<u32>()
                    .map_or("unknown".into(), |p| p.to_string())
            ))
        }
        Err((_, e)) => Err(format!("cannot lock the pid file {}: {e}", path.display())),
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
fn daemonize() -> Result<(), String> {
    use nix::unistd::{fork, setsid, ForkResult};
    // SAFETY: no other thread exists yet (no runtime, no logging thread); the children only
    // continue single-threaded start-up.
    match unsafe { fork() }.map_err(|e| format!("fork failed: {e}"))? {
        ForkResult::Parent { .. } => {
            // SAFETY: _exit ends the process without running destructors that belong to the child.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Child => {}
    }
    setsid().map_err(|e| format!("setsid failed: {e}"))?;
    // SAFETY: as above.
    match unsafe { fork() }.map_err(|e| format!("fork failed: {e}"))? {
        ForkResult::Parent { .. } => unsafe { libc::_exit(0) },
        ForkResult::Child => {}
    }
    let _ = std::env::set_current_dir("/");
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("cannot open /dev/null: {e}"))?;
    use std::os::fd::AsRawFd;
    for fd in 0..=2 {
        nix::unistd::dup2(devnull.as_raw_fd(), fd).map_err(|e| format!("dup2 failed: {e}"))?;
    }
    Ok(())
}

fn run(args: Args) -> Result<(), String> {
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
    write_pid(&mut pid_lock).map_err(|e| format!("cannot write the pid file: {e}"))?;
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
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(serve(config_path, initial, listener, socket_path.clone()));
    // Stop every task first (a background refresh could otherwise write the snapshot again
    // after it was removed), then leave nothing a client could mistake for a live daemon.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    if owns_socket {
        let _ = std::fs::remove_file(&socket_path);
    }
    SnapshotWriter::new(paths::snapshot_path()).remove();
    let _ = std::fs::remove_file(paths::pid_path());
    drop(pid_lock);
    tracing::info!("rolecalld stopped");
    result
}

/// The sources' factory: the real sources over the secret store, or, when the store cannot be
/// opened, an explanation for every source.
fn source_factory(
    store_kind: SecretStoreKind,
    env: Arc<endpoints::EnvSnapshot>,
) -> (SourceFactory, Option<Arc<vault::SecretStore>>) {
    let state_dir = paths::state_dir();
    match vault::SecretStore::open(&state_dir, store_kind) {
        Ok(store) => {
            let ctx = SourceContext::new(Arc::clone(&store), env, state_dir);
            let factory: SourceFactory = Arc::new(move |name, cfg| sources::build(name, cfg, &ctx));
            (factory, Some(store))
        }
        Err(e) => {
            tracing::error!(error = %e, "the secret store cannot be opened; sources are unavailable");
            let msg = e.to_string();
            let factory: SourceFactory =
                Arc::new(move |_name, _cfg| Err(SourceError::Config(msg.clone())));
            (factory, None)
        }
    }
}

async fn serve(
    config_path: PathBuf,
    initial: Result<config::LoadedConfig, config::ConfigError>,
    listener: std::os::unix::net::UnixListener,
    socket_path: PathBuf,
) -> Result<(), String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot use the socket: {e}"))?;
    let listener = tokio::net::UnixListener::from_std(listener)
        .map_err(|e| format!("cannot use the socket: {e}"))?;
    let env = Arc::new(endpoints::env_snapshot());
    let start_cfg = initial
        .as_ref()
        .map(|l| l.config.clone())
        .unwrap_or_default();
    let store_kind = start_cfg.daemon.secret_store;
    let (factory, store) = source_factory(store_kind, Arc::clone(&env));
    let broker = Broker::new(
        LoginCoordinator::new(LoginSettings::default()),
        Arc::new(SystemClock),
        RetryPolicy::default(),
        Some(SnapshotWriter::new(paths::snapshot_path())),
    );
    let app = App::new(AppParts {
        broker: Arc::clone(&broker),
        factory,
        env,
        config_path,
        socket_path,
        started_at: rolecall_proto::timefmt::now_epoch(),
    });
    let _ = app.apply(initial);
    broker.write_snapshot();

    let mut background = Vec::new();
    background.push(tokio::spawn(handle_signals(Arc::clone(&app))));
    let provider: Arc<dyn CredentialProvider> = Arc::new(BrokerProvider(Arc::clone(&broker)));
    if let Some(h) = start_container(&app, &start_cfg, store, Arc::clone(&provider)).await {
        background.push(h);
    }
    if let Some(h) = start_imds(&app, &start_cfg, provider).await {
        background.push(h);
    }
    background.push(start_refresh(&app, &broker));
    tracing::info!("serving");
    socket::serve(listener, Arc::clone(&app)).await;
    app.request_shutdown();
    for h in background {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), h).await;
    }
    Ok(())
}

/// The refresh scheduler, with desktop notifications whose "Sign in" action starts a login.
fn start_refresh(app: &Arc<App>, broker: &Arc<Broker>) -> tokio::task::JoinHandle<()> {
    let desktop = notify::desktop::Desktop::new();
    desktop.set_login_action(refresh::login_action(broker));
    let notes = notify::Notifications::new(Arc::new(desktop));
    let scheduler =
        refresh::Scheduler::new(Arc::clone(broker), notes, refresh::Settings::default());
    tokio::spawn(scheduler.run(app.shutdown_signal()))
}

/// SIGTERM and SIGINT stop the daemon; SIGHUP reloads the config.
async fn handle_signals(app: Arc<App>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let mut stop = app.shutdown_signal();
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); app.request_shutdown(); }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); app.request_shutdown(); }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the config");
                let _ = app.reload();
            }
            _ = app::stopped(&mut stop) => return,
        }
    }
}

async fn start_container(
    app: &Arc<App>,
    cfg: &config::Config,
    store: Option<Arc<vault::SecretStore>>,
    provider: Arc<dyn CredentialProvider>,
) -> Option<tokio::task::JoinHandle<()>> {
    let tokens = match store {
        Some(store) => match TokenStore::load(store) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "container tokens cannot be loaded; starting with none");
                TokenStore::in_memory()
            }
        },
        None => TokenStore::in_memory(),
    };
    let listen = cfg.daemon.container_listen.clone();
    let tcp = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%listen, error = %e, "the container credentials endpoint cannot listen");
            return None;
        }
    };
    let state = Arc::new(
        ContainerState::new(Arc::new(tokens), provider, &listen)
            .with_token_ttl(cfg.daemon.container_token_ttl),
    );
    app.set_container(Arc::clone(&state));
    let stop_app = Arc::clone(app);
    Some(tokio::spawn(container::serve_container(
        tcp,
        state,
        async move { stop_app.shutdown_requested().await },
    )))
}

async fn start_imds(
    app: &Arc<App>,
    cfg: &config::Config,
    provider: Arc<dyn CredentialProvider>,
) -> Option<tokio::task::JoinHandle<()>> {
    let imds = cfg.daemon.imds.as_ref()?;
    let state = container::imds::ImdsState::new(provider, &imds.profile)?;
    let tcp = match tokio::net::TcpListener::bind(&imds.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %imds.listen, error = %e, "the IMDS endpoint cannot listen");
            return None;
        }
    };
    let stop_app = Arc::clone(app);
    Some(tokio::spawn(container::imds::serve_imds(
        tcp,
        Arc::new(state),
        async move { stop_app.shutdown_requested().await },
    )))
}
