//! The daemon's servers and background tasks besides the socket API: the audit log, the
//! container endpoint, IMDS, the refresh scheduler and the SIGHUP reload.

use crate::app::App;
use crate::audit::{AuditLog, Limits};
use crate::broker::Broker;
use crate::config::Config;
use crate::serve::container::{self, ContainerState, CredentialProvider, TokenStore};
use crate::shutdown::stopped;
use crate::vault::SecretStore;
use crate::{notify, refresh};
use std::path::Path;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The audit log in the state dir; without it credentials are still served (the daemon log
/// says why there is none).
pub(super) fn start_audit(cfg: &Config, state_dir: &Path) -> Option<AuditLog> {
    let limits = Limits::new(cfg.daemon.audit_max_size, cfg.daemon.audit_files);
    match AuditLog::start(state_dir.to_path_buf(), limits) {
        Ok(log) => Some(log),
        Err(e) => {
            tracing::error!(error = %e, "no audit log: credential hand-outs are not recorded");
            None
        }
    }
}

/// The refresh scheduler, with notifications (on the desktop, a "Sign in" action starts a
/// login).
pub(super) fn start_refresh(
    app: &Arc<App>,
    broker: &Arc<Broker>,
    notifier: Option<Arc<dyn notify::Sender>>,
    settings: refresh::Settings,
) -> JoinHandle<()> {
    let sender = notifier.unwrap_or_else(|| {
        let desktop = notify::desktop::Desktop::new();
        desktop.set_login_action(refresh::login_action(broker));
        Arc::new(desktop)
    });
    let notes = notify::Notifications::new(sender);
    let scheduler = refresh::Scheduler::new(Arc::clone(broker), notes, settings);
    tokio::spawn(scheduler.run(app.shutdown().signal()))
}

/// SIGHUP reloads the config.
pub(super) async fn reload_on_hangup(app: Arc<App>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler");
        return;
    };
    let mut stop = app.shutdown().signal();
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the config");
                let _ = app.reload();
            }
            _ = stopped(&mut stop) => return,
        }
    }
}

/// A listener given by the caller, or one bound at `addr`.
async fn listener(
    given: Option<std::net::TcpListener>,
    addr: &str,
) -> std::io::Result<tokio::net::TcpListener> {
    match given {
        Some(l) => {
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)
        }
        None => tokio::net::TcpListener::bind(addr).await,
    }
}

pub(super) async fn start_container(
    app: &Arc<App>,
    cfg: &Config,
    given: Option<std::net::TcpListener>,
    store: Option<Arc<SecretStore>>,
    provider: Arc<dyn CredentialProvider>,
) -> Option<JoinHandle<()>> {
    let tokens = match store {
        Some(store) => TokenStore::load(store).unwrap_or_else(|e| {
            tracing::error!(error = %e, "container tokens cannot be loaded; starting with none");
            TokenStore::in_memory()
        }),
        None => TokenStore::in_memory(),
    };
    let given_listener = given.is_some();
    let tcp = match listener(given, &cfg.daemon.container_listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %cfg.daemon.container_listen, error = %e, "the container credentials endpoint cannot listen");
            return None;
        }
    };
    // Clients are told the address the caller bound, when it bound one (a test's port 0).
    let listen = match tcp.local_addr() {
        Ok(a) if given_listener => a.to_string(),
        _ => cfg.daemon.container_listen.clone(),
    };
    let state = Arc::new(
        ContainerState::new(Arc::new(tokens), provider, &listen)
            .with_token_ttl(cfg.daemon.container_token_ttl),
    );
    app.set_container(Arc::clone(&state));
    let stop = app.shutdown().clone();
    Some(tokio::spawn(container::serve_container(
        tcp,
        state,
        async move { stop.requested().await },
    )))
}

pub(super) async fn start_imds(
    app: &Arc<App>,
    cfg: &Config,
    given: Option<std::net::TcpListener>,
    provider: Arc<dyn CredentialProvider>,
) -> Option<JoinHandle<()>> {
    let imds = cfg.daemon.imds.as_ref()?;
    let state = container::imds::ImdsState::new(provider, &imds.profile)?;
    let tcp = match listener(given, &imds.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %imds.listen, error = %e, "the IMDS endpoint cannot listen");
            return None;
        }
    };
    let stop = app.shutdown().clone();
    Some(tokio::spawn(container::imds::serve_imds(
        tcp,
        Arc::new(state),
        async move { stop.requested().await },
    )))
}
