//! The socket API server: HTTP/1.1 + JSON over the daemon's Unix socket (docs/design.md,
//! *The daemon and its socket*).
//!
//! This module owns the socket's life: the runtime directory (0700, ours), binding (0600, a
//! stale socket removed only after a failed connect) or taking a socket-activated listener,
//! refusing peers of another uid, request size limits, and a graceful stop that finishes the
//! replies in flight. What each route does lives in [`router`].

mod control;
mod listen;
pub mod router;

pub use control::Control;
pub use listen::{
    activated_listener, bind, claim_peer_credentials, prepare_runtime_dir, ListenError,
};

use crate::httpd::{Handler, Limits, Refusal, Reply, WhenFull};
use crate::shutdown::stopped;
use hyper::body::Incoming;
use hyper::Request;
use std::future::Future;
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
pub async fn serve(listener: UnixListener, app: Arc<dyn Control>) {
    let mut shutdown = app.shutdown().signal();
    let stop = async move { stopped(&mut shutdown).await };
    crate::httpd::serve(listener, limits(), Arc::new(SocketHandler { app }), stop).await;
}

struct SocketHandler {
    app: Arc<dyn Control>,
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
