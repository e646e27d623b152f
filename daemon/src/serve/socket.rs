//! The socket API server: HTTP/1.1 + JSON over the daemon's Unix socket (docs/design.md,
//! *The daemon and its socket*).
//!
//! This module owns the socket's life: the runtime directory (0700, ours), binding (0600, a
//! stale socket removed only after a failed connect) or taking a socket-activated listener,
//! refusing peers of another uid, request size limits, and a graceful stop that finishes the
//! replies in flight. What each route does lives in [`router`].

mod control;
pub mod router;

pub use control::Control;

use crate::shutdown::stopped;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The kernel's word on who connected (`SO_PEERCRED`), attached to each request for the audit
/// log.
#[derive(Debug, Clone, Copy)]
pub struct SocketPeer {
    pub uid: u32,
    pub pid: Option<i32>,
}

/// Connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 256;
/// Largest request head hyper buffers.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// A client must send its request head within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for replies in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the runtime directory 0700 if needed and refuses one that another user owns, that
/// others can enter or that is a symlink: the socket's safety rests on it (the CLI applies the
/// same check, `rolecall_proto::trust`, before it trusts anything in the directory).
pub fn prepare_runtime_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create the runtime dir {}: {e}", dir.display()))?;
    match rolecall_proto::trust::runtime_dir_state(dir) {
        rolecall_proto::trust::DirState::Private => Ok(()),
        rolecall_proto::trust::DirState::Missing => {
            Err(format!("the runtime dir {} vanished", dir.display()))
        }
        rolecall_proto::trust::DirState::Untrusted(why) => Err(why),
    }
}

/// Binds the socket at `path` (0600). An existing socket file is removed only when nothing
/// answers on it; a live one means another daemon serves there.
pub fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, String> {
    rolecall_proto::trust::check_socket_path(path)?;
    if std::fs::symlink_metadata(path).is_ok() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(format!(
                    "another rolecalld is already serving on {}",
                    path.display()
                ))
            }
            Err(_) => {
                tracing::info!(socket = %path.display(), "removing a stale socket");
                std::fs::remove_file(path).map_err(|e| {
                    format!("cannot remove the stale socket {}: {e}", path.display())
                })?;
            }
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("cannot bind the socket {}: {e}", path.display()))?;
    // The umask (077) already made it 0600; set it explicitly, it is the access control.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict the socket {}: {e}", path.display()))?;
    Ok(listener)
}

/// Calls listen() again on an already listening socket: Linux then records this process's
/// pid and uid as the credentials clients read with `SO_PEERCRED` (the backlog is unchanged).
pub fn claim_peer_credentials(listener: &std::os::unix::net::UnixListener) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    // SAFETY: listen on a valid, owned socket descriptor.
    if unsafe { libc::listen(listener.as_raw_fd(), libc::SOMAXCONN) } != 0 {
        return Err(format!(
            "cannot listen on the socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The socket passed by systemd socket activation (`LISTEN_FDS`/`LISTEN_PID`), if any.
pub fn activated_listener() -> Result<Option<std::os::unix::net::UnixListener>, String> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    fds.take_unix_listener(0)
        .map_err(|e| format!("the socket passed by systemd is not a Unix socket: {e}"))
}

/// Serves the socket API until the app's shutdown is requested, then lets replies in flight
/// finish (bounded by [`DRAIN_TIMEOUT`]).
pub async fn serve(listener: UnixListener, app: Arc<dyn Control>) {
    let mut shutdown = app.shutdown().signal();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    let my_uid = rolecall_proto::paths::current_uid();
    loop {
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Peers of another uid get refusals only (root included: it has its own daemon).
        let cred = stream.peer_cred();
        let peer = cred.as_ref().ok().map(|c| SocketPeer {
            uid: c.uid(),
            pid: c.pid(),
        });
        let peer_ok = match cred {
            Ok(cred) if cred.uid() == my_uid => true,
            Ok(cred) => {
                tracing::warn!(peer_uid = cred.uid(), pid = ?cred.pid(), "refusing a peer of another user");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the peer's credentials; refusing");
                false
            }
        };
        let app = Arc::clone(&app);
        let mut stop = app.shutdown().signal();
        conns.spawn(async move {
            let _permit = permit;
            let svc_app = Arc::clone(&app);
            let service = service_fn(move |mut req: Request<Incoming>| {
                if let Some(p) = peer {
                    req.extensions_mut().insert(p);
                }
                let app = Arc::clone(&svc_app);
                async move {
                    let resp = if peer_ok {
                        router::route(&app, req).await
                    } else {
                        router::forbidden_peer()
                    };
                    Ok::<Response<Full<Bytes>>, Infallible>(resp)
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "socket connection ended with an error");
                    }
                }
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("replies still in flight after {DRAIN_TIMEOUT:?}; closing them");
        conns.abort_all();
    }
}
