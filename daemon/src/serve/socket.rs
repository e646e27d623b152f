//! The socket API server: HTTP/1.1 + JSON over the daemon's Unix socket (docs/design.md,
//! *The daemon and its socket*).
//!
//! This module owns the socket's life: the runtime directory (0700, ours), binding (0600, a
//! stale socket removed only after a failed connect) or taking a socket-activated listener,
//! refusing peers of another uid, request size limits, and a graceful stop that finishes the
//! replies in flight. What each route does lives in [`router`].

pub mod router;

use crate::app::App;
use crate::httpd::{Handler, Limits, Refusal, Reply, WhenFull};
use hyper::body::Incoming;
use hyper::Request;
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;

/// The kernel's word on who connected (`SO_PEERCRED`), attached to each request for the audit
/// log.
pub use crate::httpd::PeerCred as SocketPeer;

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

/// The socket's limits: only its own user can connect, so a full socket makes newcomers wait
/// (in the accept queue) rather than evicting anyone; long polls (a login) may take minutes.
fn limits() -> Limits {
    Limits {
        max_connections: MAX_CONNECTIONS,
        max_header_bytes: MAX_HEAD_BYTES,
        header_read_timeout: HEADER_TIMEOUT,
        idle_timeout: Duration::MAX,
        request_timeout: Duration::MAX,
        when_full: WhenFull::Wait,
        max_headers: None,
        keep_alive: true,
        connection_timeout: Duration::MAX,
        drain: DRAIN_TIMEOUT,
    }
}

/// Serves the socket API until the app's shutdown is requested, then lets replies in flight
/// finish (bounded by [`DRAIN_TIMEOUT`]).
pub async fn serve(listener: UnixListener, app: Arc<App>) {
    let mut shutdown = app.shutdown_signal();
    let stop = async move { crate::app::stopped(&mut shutdown).await };
    crate::httpd::serve(listener, limits(), Arc::new(SocketHandler { app }), stop).await;
}

struct SocketHandler {
    app: Arc<App>,
}

impl Handler for SocketHandler {
    type Peer = Option<SocketPeer>;

    fn handle(
        &self,
        mut req: Request<Incoming>,
        peer: Option<SocketPeer>,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
        if let Some(p) = peer {
            req.extensions_mut().insert(p);
        }
        Box::pin(router::route(&self.app, req))
    }

    /// Peers of another uid get refusals only (root included: it has its own daemon).
    fn admit(&self, peer: Option<SocketPeer>) -> Result<Option<SocketPeer>, Refusal> {
        match peer {
            Some(p) if p.uid == rolecall_proto::paths::current_uid() => Ok(peer),
            Some(p) => {
                tracing::warn!(peer_uid = p.uid, pid = ?p.pid, "refusing a peer of another user");
                Err("another user")
            }
            None => Err("unknown peer"),
        }
    }

    fn refused_reply(&self, _why: Refusal) -> Reply {
        router::forbidden_peer()
    }

    fn timeout_reply(&self) -> Reply {
        // Not reached: the socket sets no request timeout.
        router::error(rolecall_proto::api::ErrorBody::new(
            rolecall_proto::api::ErrorCode::Internal,
            "the request timed out",
        ))
    }
}
