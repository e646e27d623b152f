//! What the loop accepts connections from ([`Listener`]: loopback TCP and the Unix socket),
//! what it knows of the client ([`TcpPeer`], [`PeerCred`]), and the stream wrapper that
//! records when bytes last moved (for the idle timeout).

use super::slots::ConnState;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The client of a TCP connection: its address, the address it reached, and (once the handler
/// has looked, see [`super::Handler::admit`]) the local user that owns its socket.
#[derive(Debug, Clone, Copy)]
pub struct TcpPeer {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The uid owning the client's socket, for loopback clients whose handler checked it.
    pub uid: Option<u32>,
}

/// The kernel's word on who connected to the Unix socket (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy)]
pub struct PeerCred {
    pub uid: u32,
    pub pid: Option<i32>,
}

/// A listening socket the loop serves.
pub trait Listener: Send + 'static {
    type Io: AsyncRead + AsyncWrite + AsRawFd + Unpin + Send + 'static;
    /// What is known of the client at accept time.
    type Peer: Copy + Send + Sync + 'static;

    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Io, Self::Peer)>> + Send;
}

impl Listener for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    type Peer = TcpPeer;

    async fn accept(&self) -> std::io::Result<(Self::Io, TcpPeer)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        let local = stream.local_addr()?;
        let _ = stream.set_nodelay(true);
        Ok((
            stream,
            TcpPeer {
                peer,
                local,
                uid: None,
            },
        ))
    }
}

impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    /// `None` when the kernel would not say (the handler refuses such a peer).
    type Peer = Option<PeerCred>;

    async fn accept(&self) -> std::io::Result<(Self::Io, Option<PeerCred>)> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        let cred = match stream.peer_cred() {
            Ok(c) => Some(PeerCred {
                uid: c.uid(),
                pid: c.pid(),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the peer's credentials");
                None
            }
        };
        Ok((stream, cred))
    }
}

/// A stream that records when request bytes last arrived (milliseconds since `epoch`), for the
/// idle timeout. Writes are not counted: a reply is written right after its request was read,
/// and a request being answered keeps its connection busy (never idle) whatever the clock
/// says; one clock read per request instead of two.
pub(crate) struct ActivityIo<S> {
    pub inner: S,
    /// The listener's epoch ([`super::slots::Tracker::epoch`]).
    pub epoch: Instant,
    pub conn: Arc<ConnState>,
}

impl<S> ActivityIo<S> {
    fn touch(&self) {
        self.conn
            .last_read_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ActivityIo<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for ActivityIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
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
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
