//! The one HTTP/1.1 serving loop of the daemon: the socket API, the container endpoint (with
//! its Pod Identity route), IMDS and the sign-in callback all run [`serve`] with their own
//! [`Handler`] and [`Limits`]. It is neutral ground: the servers in `serve/` and the sign-in
//! flows in `sources/` both use it, neither knows the other.
//!
//! What every listener gets from it: a connection cap ([`WhenFull`]: evict the oldest idle
//! connection, or wait), a header-size limit (hyper answers 431 and closes), a header read
//! timeout, an idle timeout, a per-request timeout, a per-connection admission check (the
//! peer-uid check: once per connection, at its first request, so sockets that never send a
//! request cost no lookup), and a graceful stop that lets replies being written finish within
//! [`Limits::drain`].
//!
//! No connection arms a timer of its own: one sweeper task per listener ([`sweeper`]) keeps
//! every connection's deadlines and raises a flag on those whose time is up, so a request
//! wakes only its own connection's task, and that task polls only hyper's connection.
//!
//! The cap does not simply refuse new connections when full: that would let anyone who opens
//! a few hundred idle sockets lock the SDKs out. Instead, a new connection evicts the oldest
//! connection that has no request in progress (idle keep-alive, or headers still trickling in,
//! see [`slots`]), and is refused only when every slot is busy serving a request. Good clients
//! send their request right after connecting, so they keep being served while idle sockets
//! churn.

mod io;
mod limits;
mod slots;
mod sweeper;

pub use io::{Listener, PeerCred, TcpPeer};
pub use limits::{Limits, WhenFull};

use bytes::Bytes;
use futures::FutureExt as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use io::ActivityIo;
use slots::{ask, BusyGuard, ConnState, Tracker};
use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Every reply is a complete body in memory.
pub type Reply = Response<Full<Bytes>>;

/// Why a peer was refused (one line for the refusal's body; not secret).
pub type Refusal = &'static str;

/// What a listener answers.
pub trait Handler: Send + Sync + 'static {
    /// What the listener knows of the client ([`Listener::Peer`]).
    type Peer: Copy + Send + Sync + 'static;

    /// Answers one request. The request body is the handler's to read (or not).
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: Self::Peer,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>>;

    /// Whether the client may be served at all, checked once per connection before its first
    /// request is answered; what it answers is what [`Handler::handle`] then gets (a handler
    /// may note what it found out, e.g. the client's uid). A refused connection answers
    /// [`Handler::refused_reply`] and closes.
    fn admit(&self, peer: Self::Peer) -> Result<Self::Peer, Refusal> {
        Ok(peer)
    }

    /// The reply to a request on a refused connection (a 403).
    fn refused_reply(&self, why: Refusal) -> Reply;

    /// The reply when [`Limits::request_timeout`] runs out.
    fn timeout_reply(&self) -> Reply;
}

/// Serves `handler` on `listener` until `shutdown` completes, then stops accepting and lets
/// open connections finish the reply they are writing (bounded by [`Limits::drain`]).
pub async fn serve<L, H, F>(listener: L, limits: Limits, handler: Arc<H>, shutdown: F)
where
    L: Listener,
    H: Handler<Peer = L::Peer>,
    F: Future<Output = ()> + Send,
{
    let tracker = Arc::new(Tracker::default());
    let sweeper = tokio::spawn(sweeper::run(tracker.clone(), limits.clone()));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    // No timer for hyper: the header deadline is the sweeper's (see `sweeper`).
    builder
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_header_size(limits.max_header_bytes)
        .keep_alive(limits.keep_alive)
        .half_close(false);
    if let Some(n) = limits.max_headers {
        builder.max_headers(n);
    }
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = match limits.when_full {
            WhenFull::Wait => tokio::select! {
                _ = &mut shutdown => break,
                p = Arc::clone(&permits).acquire_owned() => match p {
                    Ok(p) => Some(p),
                    Err(_) => break,
                },
            },
            WhenFull::EvictIdle => None,
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE/ENFILE under a connection flood: back off instead of spinning, and
                    // keep the listener.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let max = match limits.when_full {
            WhenFull::EvictIdle => limits.max_connections,
            WhenFull::Wait => usize::MAX,
        };
        let Some(slot) = tracker.admit(max, Some(stream.as_raw_fd())) else {
            // Every slot is serving a request: close this one at once.
            drop(stream);
            continue;
        };
        let conn = Connection {
            handler: handler.clone(),
            builder: builder.clone(),
            request_timeout: limits.request_timeout,
            epoch: tracker.epoch,
        };
        let tracker = tracker.clone();
        tokio::spawn(async move {
            let _permit = permit;
            conn.run(stream, peer, &slot.conn).await;
            tracker.release(slot.id);
        });
    }
    drop(listener);
    sweeper::finish_all(&tracker, crate::clock::monotonic());
    // Let connections finish the reply they are writing (the sweeper closes each one when its
    // grace is over).
    let deadline = crate::clock::monotonic() + limits.drain + Duration::from_millis(200);
    while tracker.len() > 0 && crate::clock::monotonic() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sweeper::close_all(&tracker);
    sweeper.abort();
}

/// One accepted connection's share of the listener.
struct Connection<H> {
    handler: Arc<H>,
    builder: Arc<hyper::server::conn::http1::Builder>,
    request_timeout: Duration,
    epoch: tokio::time::Instant,
}

impl<H: Handler> Connection<H> {
    /// Serves the connection until it ends or the listener asks it to close (`state`'s
    /// attention bits, raised by the sweeper, an eviction or a stop).
    async fn run<S>(self, stream: S, peer: H::Peer, state: &Arc<ConnState>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(ActivityIo {
            inner: stream,
            epoch: self.epoch,
            conn: state.clone(),
        });
        // Checked at the first request (the client's socket surely exists then), once per
        // connection.
        let verdict: Arc<OnceLock<Result<H::Peer, Refusal>>> = Arc::default();
        let (handler, shared) = (self.handler.clone(), state.clone());
        let request_timeout = self.request_timeout;
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let handler = handler.clone();
            let guard = BusyGuard::new(shared.clone());
            let verdict = verdict.clone();
            async move {
                let _guard = guard;
                let admitted = *verdict.get_or_init(|| {
                    let r = handler.admit(peer);
                    if let Err(why) = r {
                        tracing::warn!(why, "connection refused");
                    }
                    r
                });
                let peer = match admitted {
                    Ok(p) => p,
                    Err(why) => {
                        drop(req);
                        let mut r = handler.refused_reply(why);
                        r.headers_mut().insert(
                            http::header::CONNECTION,
                            http::HeaderValue::from_static("close"),
                        );
                        return Ok::<_, std::convert::Infallible>(r);
                    }
                };
                let mut reply = handler.handle(req, peer);
                // Most replies are ready at once: only the others pay for a timer.
                if let Some(r) = (&mut reply).now_or_never() {
                    return Ok(r);
                }
                Ok(match tokio::time::timeout(request_timeout, reply).await {
                    Ok(r) => r,
                    Err(_) => handler.timeout_reply(),
                })
            }
        });
        let conn = self.builder.serve_connection(io, service);
        tokio::pin!(conn);
        let mut finishing = false;
        std::future::poll_fn(|cx| {
            state.waker.register(cx.waker());
            if state.attention.load(Ordering::Acquire) != 0 {
                let asked = state.attention.swap(0, Ordering::AcqRel);
                if asked & ask::CLOSE != 0 {
                    return Poll::Ready(()); // dropped with the connection, unanswered
                }
                // Evicted while no request was in progress: close at once, so that a flood of
                // idle sockets cannot pile up file descriptors in a grace period. (A request
                // that started since the eviction was decided finishes first.)
                if asked & ask::EVICTED != 0 && state.busy.load(Ordering::Acquire) == 0 {
                    return Poll::Ready(());
                }
                if !finishing {
                    conn.as_mut().graceful_shutdown();
                    finishing = true;
                }
            }
            conn.as_mut().poll(cx).map(|r| {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            })
        })
        .await;
    }
}
