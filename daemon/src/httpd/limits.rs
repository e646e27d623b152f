//! The limits of one HTTP listener (see [`super`] for what the loop does with them).

use std::time::Duration;

/// What a full listener does with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Evict the oldest connection with no request in progress (and no unread request bytes);
    /// refuse the newcomer only when every slot is serving a request. For listeners anyone on
    /// the machine can reach: idle sockets cannot lock the real clients out.
    EvictIdle,
    /// Stop accepting until a connection ends; newcomers wait in the kernel's accept queue.
    /// For the Unix socket, which only its own user can reach.
    Wait,
}

/// Limits of one listener. `Duration::MAX` means "no limit" for the timeouts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections kept at most; see [`WhenFull`] for what happens beyond.
    pub max_connections: usize,
    /// Request line + headers, in bytes (larger: 431 and the connection closes).
    pub max_header_bytes: usize,
    /// A client must send its whole request head within this time of connecting or of its
    /// previous reply (so an idle keep-alive connection is closed after it too: hyper's rule,
    /// kept when the deadline moved to the listener's sweeper).
    pub header_read_timeout: Duration,
    /// A connection with no traffic (and no request in progress) for this long is closed.
    pub idle_timeout: Duration,
    /// A reply not ready in this time becomes the handler's timeout reply (the credential
    /// handlers never wait for a login; this only bounds a hung upstream).
    pub request_timeout: Duration,
    /// What a full listener does.
    pub when_full: WhenFull,
    /// Headers per request at most (`None`: hyper's default, 100).
    pub max_headers: Option<usize>,
    /// Whether a connection may carry more than one request.
    pub keep_alive: bool,
    /// A connection is closed after this long whatever it is doing (`Duration::MAX`: never).
    pub connection_timeout: Duration,
    /// At a stop (or an eviction of a busy connection): how long the reply being written may
    /// take to finish.
    pub drain: Duration,
}

impl Default for Limits {
    /// The loopback credential listeners' limits (container endpoint, IMDS).
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_header_bytes: 8 * 1024,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            when_full: WhenFull::EvictIdle,
            max_headers: Some(32),
            keep_alive: true,
            connection_timeout: Duration::MAX,
            drain: Duration::from_secs(2),
        }
    }
}
