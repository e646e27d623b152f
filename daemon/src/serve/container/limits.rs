//! The loopback HTTP server loop shared by the container endpoint and IMDS: hyper HTTP/1 with
//! small request limits, a header read timeout, an idle timeout, and a connection cap.
//!
//! The cap does not simply refuse new connections when full: that would let anyone who opens
//! a few hundred idle sockets lock the SDKs out. Instead, a new connection evicts the oldest
//! connection that has no request in progress (idle keep-alive, or headers still trickling in),
//! and is refused only when every slot is busy serving a request. Good clients send their
//! request right after connecting, so they keep being served while idle sockets churn.
//! A connection whose request bytes have arrived but are not read yet (its task has not run:
//! a loaded machine) is not idle either: the kernel's count of unread bytes (FIONREAD) keeps it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// Limits of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections kept at most; see the module docs for what happens beyond.
    pub max_connections: usize,
    /// Request line + headers, in bytes (larger: 431 and the connection closes).
    pub max_header_bytes: usize,
    /// A client must send its whole request head within this time.
    pub header_read_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// A reply not ready in this time becomes an error (the handlers never wait for a login,
    /// this only bounds a hung upstream).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_header_bytes: 8 * 1024,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The client's address, attached to every request (for the audit log).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// What a listener answers. `local` is the address the connection arrived on (for the Host
/// check); the request body is never read.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        req: Request<Incoming>,
        local: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send + '_>>;

    /// The reply when `request_timeout` runs out.
    fn timeout_reply(&self) -> Response<Full<Bytes>>;

    /// Whether the client at `peer` may be served at all (checked once per connection, before
    /// any request; see [`super::peer`]). Refused connections answer [`Handler::refused_reply`]
    /// to their request and close.
    fn admit_peer(&self, peer: SocketAddr, local: SocketAddr) -> Result<(), super::peer::Refusal> {
        let _ = (peer, local);
        Ok(())
    }

    /// The reply to a request on a connection whose peer was refused (a 403).
    fn refused_reply(&self, why: super::peer::Refusal) -> Response<Full<Bytes>>;
}

struct Slot {
    busy: Arc<AtomicUsize>,
    evict: Arc<Notify>,
    /// The connection's socket, to look for unread request bytes. It stays open while the
    /// slot exists: the connection task releases the slot before it drops the stream.
    fd: Option<RawFd>,
}

impl Slot {
    fn idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0 && !self.fd.is_some_and(has_unread_input)
    }
}

/// Whether bytes wait in the socket's receive queue (a request this process has not read yet).
fn has_unread_input(fd: RawFd) -> bool {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int; `fd` is an open socket (see `Slot::fd`).
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    r == 0 && n > 0
}

/// Open connections, oldest first. Also used by the browser-login callback listener.
#[derive(Default)]
pub(crate) struct Tracker {
    next_id: AtomicU64,
    slots: Mutex<BTreeMap<u64, Slot>>,
}

impl Tracker {
    /// Registers a new connection, evicting the oldest idle one when full. `None`: every slot
    /// is serving a request, refuse this one.
    pub(crate) fn admit(
        &self,
        max: usize,
        fd: Option<RawFd>,
    ) -> Option<(u64, Arc<AtomicUsize>, Arc<Notify>)> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= max {
            let victim = slots.iter().find(|(_, s)| s.idle()).map(|(id, _)| *id)?;
            if let Some(s) = slots.remove(&victim) {
                s.evict.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(AtomicUsize::new(0));
        let evict = Arc::new(Notify::new());
        slots.insert(
            id,
            Slot {
                busy: busy.clone(),
                evict: evict.clone(),
                fd,
            },
        );
        Some((id, busy, evict))
    }

    pub(crate) fn release(&self, id: u64) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Counts the connection's in-flight requests for the eviction rule.
pub(crate) struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    pub(crate) fn new(busy: Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        Self(busy)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A stream that records when bytes last moved, for the idle timeout.
struct ActivityIo {
    inner: TcpStream,
    epoch: Instant,
    last: Arc<AtomicU64>,
}

impl ActivityIo {
    fn touch(&self) {
        self.last
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for ActivityIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for ActivityIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// How long a closing connection may take to finish the reply it is writing.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Serves `handler` on `listener` until `shutdown` completes, then stops accepting and lets
/// open connections finish their current reply (bounded).
pub async fn serve<H, F>(listener: TcpListener, limits: Limits, handler: Arc<H>, shutdown: F)
where
    H: Handler + ?Sized,
    F: Future<Output = ()> + Send,
{
    let tracker = Arc::new(Tracker::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_header_size(limits.max_header_bytes)
        .max_headers(32)
        .keep_alive(true)
        .half_close(false);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE/ENFILE under a connection flood: back off instead of spinning, and
                    // keep the listener.
                    tracing::warn!(error = %e, "container endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some((id, busy, evict)) =
            tracker.admit(limits.max_connections, Some(stream.as_raw_fd()))
        else {
            // Every slot is serving a request: close this one at once.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(_) => {
                tracker.release(id);
                continue;
            }
        };
        let epoch = crate::clock::monotonic();
        let last = Arc::new(AtomicU64::new(0));
        let io = TokioIo::new(ActivityIo {
            inner: stream,
            epoch,
            last: last.clone(),
        });
        let handler = handler.clone();
        let builder = builder.clone();
        let tracker = tracker.clone();
        let mut stop_rx = stop_rx.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            // Checked at the first request (the client's socket surely exists then), once per
            // connection; sockets that never send a request cost no lookup.
            let verdict: Arc<std::sync::OnceLock<Option<super::peer::Refusal>>> = Arc::default();
            let svc_busy = busy.clone();
            let request_timeout = limits.request_timeout;
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                let handler = handler.clone();
                let guard = BusyGuard::new(svc_busy.clone());
                let verdict = verdict.clone();
                async move {
                    let _guard = guard;
                    let refused = *verdict.get_or_init(|| {
                        let r = handler.admit_peer(peer, local).err();
                        if let Some(why) = r {
                            tracing::warn!(%peer, why, "connection refused");
                        }
                        r
                    });
                    if let Some(why) = refused {
                        drop(req);
                        let mut r = handler.refused_reply(why);
                        r.headers_mut().insert(
                            http::header::CONNECTION,
                            http::HeaderValue::from_static("close"),
                        );
                        return Ok::<_, std::convert::Infallible>(r);
                    }
                    let reply =
                        match tokio::time::timeout(request_timeout, handler.handle(req, local))
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => handler.timeout_reply(),
                        };
                    Ok::<_, std::convert::Infallible>(reply)
                }
            });
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            let idle_ms = limits.idle_timeout.as_millis() as u64;
            let mut closing: Option<tokio::time::Instant> = None;
            loop {
                let tick = match closing {
                    Some(deadline) => deadline,
                    None => crate::clock::monotonic() + limits.idle_timeout / 4,
                };
                tokio::select! {
                    _ = conn.as_mut() => break,
                    // Evicted while no request was in progress: close at once, so that a
                    // flood of idle sockets cannot pile up file descriptors in a grace period.
                    // (A request that started since the eviction was decided finishes first.)
                    _ = evict.notified(), if closing.is_none() => {
                        if busy.load(Ordering::Acquire) == 0 {
                            break;
                        }
                        conn.as_mut().graceful_shutdown();
                        closing = Some(crate::clock::monotonic() + CLOSE_GRACE);
                    }
                    _ = stop_rx.changed(), if closing.is_none() => {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(crate::clock::monotonic() + CLOSE_GRACE);
                    }
                    _ = tokio::time::sleep_until(tick) => {
                        if closing.is_some() {
                            break; // grace over: drop the connection
                        }
                        let quiet = (epoch.elapsed().as_millis() as u64)
                            .saturating_sub(last.load(Ordering::Relaxed));
                        if quiet >= idle_ms && busy.load(Ordering::Acquire) == 0 {
                            conn.as_mut().graceful_shutdown();
                            closing = Some(crate::clock::monotonic() + CLOSE_GRACE);
                        }
                    }
                }
            }
            tracker.release(id);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Let connections finish the reply they are writing.
    let deadline = crate::clock::monotonic() + CLOSE_GRACE + Duration::from_millis(200);
    while tracker.len() > 0 && crate::clock::monotonic() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_tracker_evicts_the_oldest_idle_connection() {
        let t = Tracker::default();
        let (a, a_busy, _a_evict) = t.admit(2, None).unwrap();
        let (b, _b_busy, b_evict) = t.admit(2, None).unwrap();
        a_busy.fetch_add(1, Ordering::SeqCst);
        // a is serving a request, b is idle: b goes.
        let (c, c_busy, _) = t.admit(2, None).unwrap();
        assert_eq!(t.len(), 2);
        let slots = t.slots.lock().unwrap();
        assert!(slots.contains_key(&a) && slots.contains_key(&c) && !slots.contains_key(&b));
        drop(slots);
        // b was told to close (a stored permit: notified() completes at once).
        futures::executor::block_on(b_evict.notified());
        // Both remaining are busy: a newcomer is refused.
        c_busy.fetch_add(1, Ordering::SeqCst);
        assert!(t.admit(2, None).is_none());
        t.release(a);
        assert!(t.admit(2, None).is_some());
    }

    #[test]
    fn a_connection_with_unread_request_bytes_is_not_evicted() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sent = std::net::TcpStream::connect(addr).unwrap();
        let (waiting, _) = listener.accept().unwrap();
        let _quiet_client = std::net::TcpStream::connect(addr).unwrap();
        let (quiet, _) = listener.accept().unwrap();
        // The oldest connection has its request in the socket, not read yet.
        std::io::Write::write_all(&mut sent, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let deadline = crate::clock::monotonic() + Duration::from_secs(5);
        while !has_unread_input(waiting.as_raw_fd()) {
            assert!(
                crate::clock::monotonic() < deadline,
                "the bytes never arrived"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = Tracker::default();
        let (w, ..) = t.admit(2, Some(waiting.as_raw_fd())).unwrap();
        let (q, ..) = t.admit(2, Some(quiet.as_raw_fd())).unwrap();
        // Full: the newcomer evicts the quiet connection, not the older one with a request.
        let (n, ..) = t.admit(2, None).unwrap();
        let slots = t.slots.lock().unwrap();
        assert!(slots.contains_key(&w) && slots.contains_key(&n) && !slots.contains_key(&q));
    }
}
