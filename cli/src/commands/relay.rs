//! `rolecall relay --listen A --to B`: a tiny, byte-exact TCP forwarder — the Docker Desktop
//! relay that sits at 169.254.170.2:80 and passes connections to rolecalld on the host.
//!
//! Two threads per connection copy bytes each way and pass half-closes on; nothing is parsed,
//! so the daemon still sees (and checks) the client's own request. Connections beyond
//! [`MAX_CONNECTIONS`] are closed at once rather than exhausting threads.

use crate::cli::RelayArgs;
use anyhow::Context as _;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
        std::thread::spawn(move || {
            if let Err(e) = relay(client, &to) {
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

fn relay(client: TcpStream, to: &str) -> io::Result<()> {
    let upstream = TcpStream::connect_timeout(&resolve(to)?, CONNECT_TIMEOUT)?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (c2, u2) = (client.try_clone()?, upstream.try_clone()?);
    let back = std::thread::spawn(move || pipe(u2, c2));
    let fwd = pipe(client, upstream);
    let back = back.join().unwrap_or(Ok(()));
    fwd.and(back)
}

/// Copies `from` to `to` until EOF, then half-closes `to` so the peer sees the end too.
fn pipe(mut from: TcpStream, mut to: TcpStream) -> io::Result<()> {
    let r = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
    r.map(|_| ())
}
