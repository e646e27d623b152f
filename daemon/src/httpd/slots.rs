//! The open connections of one listener, oldest first, and the eviction rule: a new connection
//! on a full listener takes the slot of the oldest connection that has no request in progress.
//! A connection whose request bytes have arrived but are not read yet (its task has not run: a
//! loaded machine) is not idle either: the kernel's count of unread bytes (FIONREAD) keeps it.
//!
//! The tracker also keeps every connection's clocks (see [`super::sweeper`]): a connection's
//! own task arms no timer and polls nothing but hyper's connection; what it shares with the
//! listener is one [`ConnState`] of counters and an attention flag.

use futures::task::AtomicWaker;
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a connection's task is asked to do ([`ConnState::attention`] bits).
pub(crate) mod ask {
    /// Finish the request in progress (if any), then close: idle timeout, a stop.
    pub const FINISH: u8 = 1;
    /// Evicted: close at once when no request is in progress, else as [`FINISH`].
    pub const EVICTED: u8 = 2;
    /// Close at once: the head was not sent in time, the connection's time or its grace is up.
    pub const CLOSE: u8 = 4;
}

/// What a connection and its listener share. Written on the request path with plain atomic
/// stores and adds only; the listener's sweeper reads it.
#[derive(Default)]
pub(crate) struct ConnState {
    /// Requests being answered.
    pub busy: AtomicUsize,
    /// Requests dispatched so far (the sweeper sees from it that a request came and went
    /// between two of its looks).
    pub served: AtomicU64,
    /// When request bytes last arrived, in milliseconds since the tracker's epoch.
    pub last_read_ms: AtomicU64,
    /// [`ask`] bits not yet acted on.
    pub attention: AtomicU8,
    /// The connection's task, woken when `attention` changes.
    pub waker: AtomicWaker,
}

impl ConnState {
    /// Asks the connection's task to act on `what` (an [`ask`] bit).
    pub(crate) fn raise(&self, what: u8) {
        self.attention.fetch_or(what, Ordering::AcqRel);
        self.waker.wake();
    }
}

/// The tracker's record of one connection.
pub(crate) struct Slot {
    pub conn: Arc<ConnState>,
    /// The connection's socket, to look for unread request bytes. It stays open while the
    /// slot exists: the connection task releases the slot before it drops the stream.
    fd: Option<RawFd>,
    pub opened: Instant,
    /// The sweeper's memory: `served` and whether a request was in progress at its last look,
    /// and since when (by its clock) the connection has been waiting for a request head with
    /// none dispatched.
    pub seen_served: u64,
    pub seen_busy: bool,
    pub waiting_since: Instant,
    /// When the connection was asked to finish (its drain deadline runs from here).
    pub closing_since: Option<Instant>,
}

impl Slot {
    fn idle(&self) -> bool {
        self.conn.busy.load(Ordering::Acquire) == 0 && !self.fd.is_some_and(has_unread_input)
    }
}

/// Whether bytes wait in the socket's receive queue (a request this process has not read yet).
pub(crate) fn has_unread_input(fd: RawFd) -> bool {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int; `fd` is an open socket (see `Slot::fd`).
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    r == 0 && n > 0
}

/// A connection's place in the tracker.
pub(crate) struct Admitted {
    pub id: u64,
    pub conn: Arc<ConnState>,
}

/// The connections: those counted against the cap, and those evicted while a request was in
/// progress (no longer counted, still given their grace by the sweeper).
#[derive(Default)]
pub(crate) struct Slots {
    pub open: BTreeMap<u64, Slot>,
    pub evicted: BTreeMap<u64, Slot>,
}

/// Open connections, oldest first.
pub(crate) struct Tracker {
    /// What `last_read_ms` counts from.
    pub epoch: Instant,
    next_id: AtomicU64,
    slots: Mutex<Slots>,
    /// Rung when a connection arrives at an empty tracker (the sweeper sleeps until then).
    pub arrived: Notify,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            epoch: crate::clock::monotonic(),
            next_id: AtomicU64::new(0),
            slots: Mutex::default(),
            arrived: Notify::new(),
        }
    }
}

impl Tracker {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection, evicting the oldest idle one when `max` are open. `None`:
    /// every slot is serving a request, refuse this one.
    pub(crate) fn admit(&self, max: usize, fd: Option<RawFd>) -> Option<Admitted> {
        let now = crate::clock::monotonic();
        let mut slots = self.lock();
        if slots.open.len() >= max {
            let victim = slots
                .open
                .iter()
                .find(|(_, s)| s.idle())
                .map(|(id, _)| *id)?;
            if let Some(mut s) = slots.open.remove(&victim) {
                s.conn.raise(ask::EVICTED);
                // Closes at once unless a request started meanwhile; then it gets its grace.
                s.closing_since = Some(now);
                slots.evicted.insert(victim, s);
            }
        }
        let was_empty = slots.open.is_empty() && slots.evicted.is_empty();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(ConnState {
            last_read_ms: AtomicU64::new(self.millis(now)),
            ..ConnState::default()
        });
        slots.open.insert(
            id,
            Slot {
                conn: conn.clone(),
                fd,
                opened: now,
                seen_served: 0,
                seen_busy: false,
                waiting_since: now,
                closing_since: None,
            },
        );
        drop(slots);
        if was_empty {
            self.arrived.notify_one();
        }
        Some(Admitted { id, conn })
    }

    pub(crate) fn release(&self, id: u64) {
        let mut slots = self.lock();
        if slots.open.remove(&id).is_none() {
            slots.evicted.remove(&id);
        }
    }

    /// Connections not yet closed, evicted ones included.
    pub(crate) fn len(&self) -> usize {
        let slots = self.lock();
        slots.open.len() + slots.evicted.len()
    }

    /// Milliseconds from the epoch to `t`.
    pub(crate) fn millis(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }
}

/// Counts the connection's in-flight requests for the eviction rule and the timeouts.
pub(crate) struct BusyGuard(Arc<ConnState>);

impl BusyGuard {
    pub(crate) fn new(conn: Arc<ConnState>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        conn.served.fetch_add(1, Ordering::Relaxed);
        Self(conn)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    #[test]
    fn a_full_tracker_evicts_the_oldest_idle_connection() {
        let t = Tracker::default();
        let a = t.admit(2, None).unwrap();
        let b = t.admit(2, None).unwrap();
        a.conn.busy.fetch_add(1, Ordering::SeqCst);
        // a is serving a request, b is idle: b goes.
        let c = t.admit(2, None).unwrap();
        let slots = t.lock();
        assert!(slots.open.contains_key(&a.id) && slots.open.contains_key(&c.id));
        assert!(!slots.open.contains_key(&b.id));
        // b was told to close, and is kept (outside the cap) until its task has closed it.
        assert!(slots.evicted.contains_key(&b.id));
        drop(slots);
        assert_eq!(b.conn.attention.load(Ordering::SeqCst), ask::EVICTED);
        assert_eq!(a.conn.attention.load(Ordering::SeqCst), 0);
        assert_eq!(t.len(), 3);
        t.release(b.id);
        assert_eq!(t.len(), 2);
        // Both remaining are busy: a newcomer is refused.
        c.conn.busy.fetch_add(1, Ordering::SeqCst);
        assert!(t.admit(2, None).is_none());
        t.release(a.id);
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
        let w = t.admit(2, Some(waiting.as_raw_fd())).unwrap();
        let q = t.admit(2, Some(quiet.as_raw_fd())).unwrap();
        // Full: the newcomer evicts the quiet connection, not the older one with a request.
        let n = t.admit(2, None).unwrap();
        let slots = t.lock();
        assert!(slots.open.contains_key(&w.id) && slots.open.contains_key(&n.id));
        assert!(!slots.open.contains_key(&q.id));
    }
}
