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
//! The cap does not simply refuse new connections when full: that would let anyone who opens
//! a few hundred idle sockets lock the SDKs out. Instead, a new connection evicts the oldest
//! connection that has no request in progress (idle keep-alive, or headers still trickling in,
//! see [`slots`]), and is refused only when every slot is busy serving a request. Good clients
//! send their request right after connecting, so they keep being served while idle sockets
//! churn.

mod io;
mod limits;
mod slots;

pub use io::{Listener, PeerCred, TcpPeer};
pub use limits::{Limits, WhenFull};

use bytes::Bytes;
use futures::FutureExt as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use io::ActivityIo;
use slots::{BusyGuard, Tracker};
use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

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

/// `now + d`, or a far future when that does not fit (`Duration::MAX` means "never").
fn after(d: Duration) -> tokio::time::Instant {
    let now = crate::clock::monotonic();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
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
            limits: limits.clone(),
            stop: stop_rx.clone(),
        };
        let tracker = tracker.clone();
        tokio::spawn(async move {
            let _permit = permit;
            conn.run(stream, peer, &slot).await;
            tracker.release(slot.id);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Let connections finish the reply they are writing.
    let deadline = crate::clock::monotonic() + limits.drain + Duration::from_millis(200);
    while tracker.len() > 0 && crate::clock::monotonic() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One accepted connection's share of the listener.
struct Connection<H> {
    handler: Arc<H>,
    builder: Arc<hyper::server::conn::http1::Builder>,
    limits: Limits,
    stop: watch::Receiver<bool>,
}

impl<H: Handler> Connection<H> {
    async fn run<S>(mut self, stream: S, peer: H::Peer, slot: &slots::Admitted)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let epoch = crate::clock::monotonic();
        let last = Arc::new(AtomicU64::new(0));
        let io = TokioIo::new(ActivityIo {
            inner: stream,
            epoch,
            last: last.clone(),
        });
        // Checked at the first request (the client's socket surely exists then), once per
        // connection.
        let verdict: Arc<OnceLock<Result<H::Peer, Refusal>>> = Arc::default();
        let (handler, busy) = (self.handler.clone(), slot.busy.clone());
        let request_timeout = self.limits.request_timeout;
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let handler = handler.clone();
            let guard = BusyGuard::new(busy.clone());
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
        let idle_ms = u64::try_from(self.limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let hard_end = after(self.limits.connection_timeout);
        let mut closing: Option<tokio::time::Instant> = None;
        loop {
            let tick = match closing {
                Some(deadline) => deadline,
                None => after(self.limits.idle_timeout / 4).min(hard_end),
            };
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                // Evicted while no request was in progress: close at once, so that a flood of
                // idle sockets cannot pile up file descriptors in a grace period. (A request
                // that started since the eviction was decided finishes first.)
                _ = slot.evict.notified(), if closing.is_none() => {
                    if slot.busy.load(Ordering::Acquire) == 0 {
                        break;
                    }
                    conn.as_mut().graceful_shutdown();
                    closing = Some(after(self.limits.drain));
                }
                _ = self.stop.changed(), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(after(self.limits.drain));
                }
                _ = tokio::time::sleep_until(tick) => {
                    if closing.is_some() || crate::clock::monotonic() >= hard_end {
                        break; // grace over, or the connection's time is up: drop it
                    }
                    let quiet = (epoch.elapsed().as_millis() as u64)
                        .saturating_sub(last.load(Ordering::Relaxed));
                    if quiet >= idle_ms && slot.busy.load(Ordering::Acquire) == 0 {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(after(self.limits.drain));
                    }
                }
            }
        }
    }
}
