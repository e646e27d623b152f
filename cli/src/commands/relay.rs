//! `rolecall relay --listen A --to B`: a tiny, byte-exact TCP forwarder — the Docker Desktop
//! relay that sits at 169.254.170.2:80 and passes connections to rolecalld on the host.
//!
//! Two threads per connection copy bytes each way and pass half-closes on; nothing is parsed,
//! so the daemon still sees (and checks) the client's own request. Connections beyond
//! [`MAX_CONNECTIONS`] are closed at once rather than exhausting threads, and a connection with
//! no traffic either way for `--idle-timeout` (60 s by default) is closed, so that idle or
//! half-open sockets cannot hold every slot.

use crate::cli::RelayArgs;
use anyhow::Context as _;
use std::io;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_CONNECTIONS: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub fn run(a: &RelayArgs) -> anyhow::Result<i32> {
    let listener =
        TcpListener::bind(&a.listen).with_context(|| format!("cannot listen on {}", a.listen))?;
    // Resolved per connection: `host.docker.internal` may change while the relay runs.
    let to = a.to.clone();
    resolve(&to).with_context(|| format!("cannot resolve {to}"))?;
    eprintln!(
        "rolecall relay: {} -> {to}",
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| a.listen.clone())
    );
    let open = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let client = match conn {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: back off, keep listening.
                eprintln!("rolecall relay: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            drop(client);
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let open = open.clone();
        let to = to.clone();
        let idle = a.idle_timeout;
        std::thread::spawn(move || {
            if let Err(e) = relay(client, &to, idle) {
                eprintln!("rolecall relay: {e}");
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(0)
}

fn resolve(to: &str) -> io::Result<SocketAddr> {
    to.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
}

fn relay(client: TcpStream, to: &str, idle: Duration) -> io::Result<()> {
    let upstream = TcpStream::connect_timeout(&resolve(to)?, CONNECT_TIMEOUT)?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let (c2, u2) = (client.try_clone()?, upstream.try_clone()?);
    let back = {
        let activity = activity.clone();
        std::thread::spawn(move || pipe(u2, c2, idle, &activity))
    };
    let fwd = pipe(client, upstream, idle, &activity);
    let back = back.join().unwrap_or(Ok(()));
    fwd.and(back)
}

/// When bytes last moved in either direction: a connection is idle only when both are.
struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: crate::clock::monotonic(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Copies `from` to `to` until EOF, then half-closes `to` so the peer sees the end too. When
/// neither direction has moved a byte for `idle`, closes both sockets outright (which also
/// ends the other direction's copy).
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    idle: Duration,
    activity: &Activity,
) -> io::Result<()> {
    // Wake up a few times per idle period to look at the other direction's activity.
    from.set_read_timeout(Some((idle / 4).max(Duration::from_millis(50))))?;
    // A peer that stops reading cannot hold the copy either.
    to.set_write_timeout(Some(idle))?;
    let mut buf = [0u8; 16 * 1024];
    let r = loop {
        match from.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                activity.touch();
                if let Err(e) = to.write_all(&buf[..n]) {
                    break Err(e);
                }
                activity.touch();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if activity.quiet_for() >= idle {
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    break Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
    r
}
