//! The daemon as a library: [`run`] serves the socket API, the container endpoint (and IMDS)
//! and keeps credentials fresh until it is told to stop, on listeners the caller bound, with
//! the clock, environment, secret store, browser and sources the caller gives it.
//!
//! `rolecalld` (the binary) only parses its arguments, sets the umask, takes the
//! single-instance lock, daemonizes and builds the runtime before it calls [`run`]; the
//! in-process lifecycle test calls it the same way with a fake source.

mod servers;
mod store;

use crate::app::{App, AppParts, BrokerProvider, SourceFactory};
use crate::broker::{Broker, Clock, RetryPolicy, SnapshotWriter, SystemClock};
use crate::config::{ConfigError, LoadedConfig};
use crate::endpoints::EnvSnapshot;
use crate::login::{LoginCoordinator, LoginSettings};
use crate::opener::{Browser, SystemBrowser};
use crate::serve::container::CredentialProvider;
use crate::serve::socket;
use crate::shutdown::Shutdown;
use crate::vault::SecretStore;
use crate::{config_watch, notify, refresh};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the daemon listens. The socket is bound by the caller (its path, permissions and any
/// socket activation are the binary's business); TCP endpoints not given are bound from the
/// config (`container_listen`, `imds.listen`).
pub struct Listeners {
    pub socket: std::os::unix::net::UnixListener,
    /// The socket's path, as `status` shows it.
    pub socket_path: PathBuf,
    /// The socket file is removed when the daemon stops (not one systemd passed and keeps).
    pub remove_socket: bool,
    pub container: Option<std::net::TcpListener>,
    pub imds: Option<std::net::TcpListener>,
}

/// The configuration the daemon runs with, and where its files live.
pub struct RunConfig {
    /// The config file, read again on reload.
    pub path: PathBuf,
    /// The outcome of the first load (done before the runtime exists, so that the starter
    /// sees an error on its terminal).
    pub initial: Result<LoadedConfig, ConfigError>,
    /// Where the secret store, the container tokens and the audit log live.
    pub state_dir: PathBuf,
    /// Where the prompt snapshot is written (`None`: no snapshot).
    pub snapshot: Option<PathBuf>,
    /// Reload the config on SIGHUP (the binary; an in-process test leaves the signal alone).
    pub reload_on_hangup: bool,
    /// The refresh scheduler's tunables (tests shorten them).
    pub refresh: refresh::Settings,
}

/// The secret store the sources and the container tokens use.
pub enum Secrets {
    /// Open the kind the config names in the state dir, retrying while the keyring does not
    /// answer.
    FromConfig,
    /// This store, already open.
    Store(Arc<SecretStore>),
}

/// What the daemon gets from the world, injected so that a test controls it.
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    /// The environment at start: endpoint overrides, `$BROWSER`, display, SSH.
    pub env: Arc<EnvSnapshot>,
    pub secrets: Secrets,
    pub browser: Arc<dyn Browser>,
    /// How a `[sources.*]` entry becomes a source (`None`: the real sources over the store).
    pub sources: Option<SourceFactory>,
    /// Where notifications go (`None`: the desktop, with a "Sign in" action).
    pub notifier: Option<Arc<dyn notify::Sender>>,
}

impl Deps {
    /// The real world: the system clock, this process's environment, the store the config
    /// names, the user's browser, the real sources and desktop notifications.
    pub fn system() -> Self {
        Deps {
            clock: Arc::new(SystemClock),
            env: Arc::new(crate::endpoints::env_snapshot()),
            secrets: Secrets::FromConfig,
            browser: Arc::new(SystemBrowser),
            sources: None,
            notifier: None,
        }
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot use the socket: {0}")]
    Socket(std::io::Error),
}

/// How long a stopping daemon waits for each background task.
const TASK_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the daemon until `shutdown` resolves or a client asks it to stop over the socket;
/// returns once every server and background task has ended (replies in flight finish first).
pub async fn run(
    listeners: Listeners,
    config: RunConfig,
    deps: Deps,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    listeners
        .socket
        .set_nonblocking(true)
        .map_err(RunError::Socket)?;
    let socket_listener =
        tokio::net::UnixListener::from_std(listeners.socket).map_err(RunError::Socket)?;
    let start_cfg = config
        .initial
        .as_ref()
        .map(|l| l.config.clone())
        .unwrap_or_default();
    let stores = store::open(&deps, &start_cfg, &config.state_dir);
    let broker = Broker::new(
        LoginCoordinator::new(LoginSettings::default()),
        Arc::clone(&deps.clock),
        RetryPolicy::default(),
        config.snapshot.clone().map(SnapshotWriter::new),
    );
    let stop = Shutdown::new();
    let app = App::new(AppParts {
        broker: Arc::clone(&broker),
        factory: stores.factory,
        env: Arc::clone(&deps.env),
        browser: Arc::clone(&deps.browser),
        config_path: config.path,
        socket_path: listeners.socket_path.clone(),
        started_at: deps.clock.now(),
        shutdown: stop.clone(),
    });
    let _ = app.apply(config.initial);
    broker.write_snapshot();
    let audit = servers::start_audit(&start_cfg, &config.state_dir);
    if let Some(a) = &audit {
        app.set_audit(a.clone());
    }

    let mut background = Vec::new();
    if config.reload_on_hangup {
        background.push(tokio::spawn(servers::reload_on_hangup(Arc::clone(&app))));
    }
    if let Some(p) = stores.pending {
        background.push(tokio::spawn(store::retry(Arc::clone(&app), p)));
    }
    background.push(tokio::spawn(config_watch::run(
        Arc::clone(&app),
        config_watch::POLL,
    )));
    let provider: Arc<dyn CredentialProvider> =
        Arc::new(BrokerProvider(Arc::clone(&broker), audit.clone()));
    let container = servers::start_container(
        &app,
        &start_cfg,
        listeners.container,
        stores.store,
        Arc::clone(&provider),
    )
    .await;
    background.extend(container);
    background.extend(servers::start_imds(&app, &start_cfg, listeners.imds, provider).await);
    background.push(servers::start_refresh(
        &app,
        &broker,
        deps.notifier,
        config.refresh,
    ));
    tracing::info!("serving");
    let control: Arc<dyn socket::Control> = Arc::clone(&app) as _;
    let served = socket::serve(socket_listener, control);
    tokio::pin!(served);
    tokio::select! {
        () = &mut served => {}
        () = shutdown => {
            stop.request();
            served.await;
        }
    }
    stop.request();
    // Nothing listens any more: leave nothing a client could mistake for a live daemon.
    if listeners.remove_socket {
        let _ = std::fs::remove_file(&listeners.socket_path);
    }
    for h in background {
        if tokio::time::timeout(TASK_STOP_TIMEOUT, h).await.is_err() {
            tracing::warn!("a background task did not stop within {TASK_STOP_TIMEOUT:?}");
        }
    }
    if let Some(a) = audit {
        if !a.wait_written(TASK_STOP_TIMEOUT) {
            tracing::warn!("audit records still queued at exit were lost");
        }
    }
    Ok(())
}
