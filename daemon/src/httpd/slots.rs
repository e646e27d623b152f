//! The open connections of one listener, oldest first, and the eviction rule: a new connection
//! on a full listener takes the slot of the oldest connection that has no request in progress.
//! A connection whose request bytes have arrived but are not read yet (its task has not run: a
//! loaded machine) is not idle either: the kernel's count of unread bytes (FIONREAD) keeps it.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

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
pub(crate) fn has_unread_input(fd: RawFd) -> bool {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int; `fd` is an open socket (see `Slot::fd`).
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    r == 0 && n > 0
}

/// A connection's place: its in-flight request count and the bell that evicts it.
pub(crate) struct Admitted {
    pub id: u64,
    pub busy: Arc<AtomicUsize>,
    pub evict: Arc<Notify>,
}

/// Open connections, oldest first.
#[derive(Default)]
pub(crate) struct Tracker {
    next_id: AtomicU64,
    slots: Mutex<BTreeMap<u64, Slot>>,
}

impl Tracker {
    /// Registers a new connection, evicting the oldest idle one when `max` are open. `None`:
    /// every slot is serving a request, refuse this one.
    pub(crate) fn admit(&self, max: usize, fd: Option<RawFd>) -> Option<Admitted> {
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
        Some(Admitted { id, busy, evict })
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
        a.busy.fetch_add(1, Ordering::SeqCst);
        // a is serving a request, b is idle: b goes.
        let c = t.admit(2, None).unwrap();
        assert_eq!(t.len(), 2);
        let slots = t.slots.lock().unwrap();
        assert!(slots.contains_key(&a.id) && slots.contains_key(&c.id));
        assert!(!slots.contains_key(&b.id));
        drop(slots);
        // b was told to close (a stored permit: notified() completes at once).
        futures::executor::block_on(b.evict.notified());
        // Both remaining are busy: a newcomer is refused.
        c.busy.fetch_add(1, Ordering::SeqCst);
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
        let slots = t.slots.lock().unwrap();
        assert!(slots.contains_key(&w.id) && slots.contains_key(&n.id));
        assert!(!slots.contains_key(&q.id));
    }
}
