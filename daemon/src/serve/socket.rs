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

use crate::shutdown::stopped;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
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
