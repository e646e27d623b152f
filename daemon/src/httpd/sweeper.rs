//! One task per listener keeps the clocks of all its connections: the header deadline, the idle
//! timeout, the connection's lifetime and the grace of a closing connection. A connection's
//! own task arms no timer (the request path pays for none: no timer allocated, registered and
//! cancelled per request, nothing but hyper's connection polled on a wake-up); the sweeper
//! looks at every connection a few times per shortest limit and raises an [`ask`] bit on the
//! ones whose time is up.
//!
//! Deadlines fire up to one look late, never early: "waiting for a request head since" is the
//! sweeper's own time of the look that first saw the connection waiting (a request dispatched
//! or in progress since the previous look restarts it).

use super::limits::Limits;
use super::slots::{ask, Slot, Tracker};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the sweeper looks: an eighth of the shortest limit, between 5 ms and 500 ms.
pub(crate) fn period(limits: &Limits) -> Duration {
    let shortest = [
        limits.header_read_timeout,
        limits.idle_timeout,
        limits.drain,
        limits.connection_timeout,
    ]
    .into_iter()
    .min()
    .unwrap_or(Duration::MAX);
    (shortest / 8).clamp(Duration::from_millis(5), Duration::from_millis(500))
}

/// Runs for as long as the listener serves (the caller aborts it); sleeps while there is no
/// connection.
pub(crate) async fn run(tracker: Arc<Tracker>, limits: Limits) {
    let every = period(&limits);
    loop {
        if tracker.len() == 0 {
            tracker.arrived.notified().await;
        }
        tokio::time::sleep(every).await;
        look(&tracker, &limits, crate::clock::monotonic());
    }
}

/// One look at every connection.
pub(crate) fn look(tracker: &Tracker, limits: &Limits, now: Instant) {
    let now_ms = tracker.millis(now);
    let mut guard = tracker.lock();
    let slots = &mut *guard;
    for slot in slots.open.values_mut().chain(slots.evicted.values_mut()) {
        look_at(slot, limits, now, now_ms);
    }
}

fn look_at(slot: &mut Slot, limits: &Limits, now: Instant, now_ms: u64) {
    let conn = &slot.conn;
    let busy = conn.busy.load(Ordering::Acquire) > 0;
    let served = conn.served.load(Ordering::Relaxed);
    if busy || slot.seen_busy || served != slot.seen_served {
        slot.seen_served = served;
        slot.waiting_since = now;
    }
    slot.seen_busy = busy;
    if let Some(since) = slot.closing_since {
        if now.saturating_duration_since(since) >= limits.drain {
            conn.raise(ask::CLOSE); // grace over
        }
        return;
    }
    if now.saturating_duration_since(slot.opened) >= limits.connection_timeout {
        conn.raise(ask::CLOSE);
        return;
    }
    if busy {
        return;
    }
    // Hyper's rule, kept: a connection waiting for a request (a new one, or an idle keep-alive
    // one) must send a whole head within the limit; a slow trickle does not extend it.
    if now.saturating_duration_since(slot.waiting_since) >= limits.header_read_timeout {
        conn.raise(ask::CLOSE);
        return;
    }
    let quiet = now_ms.saturating_sub(conn.last_read_ms.load(Ordering::Relaxed));
    if u128::from(quiet) >= limits.idle_timeout.as_millis() {
        conn.raise(ask::FINISH);
        slot.closing_since = Some(now);
    }
}

/// At a stop: asks every connection to finish the request in progress and close.
pub(crate) fn finish_all(tracker: &Tracker, now: Instant) {
    let mut slots = tracker.lock();
    for slot in slots.open.values_mut() {
        if slot.closing_since.is_none() {
            slot.conn.raise(ask::FINISH);
            slot.closing_since = Some(now);
        }
    }
}

/// When the grace is over for the listener: closes what is left at once.
pub(crate) fn close_all(tracker: &Tracker) {
    let slots = tracker.lock();
    for slot in slots.open.values().chain(slots.evicted.values()) {
        slot.conn.raise(ask::CLOSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            drain: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(600),
            ..Limits::default()
        }
    }

    fn asked(t: &Tracker, id: u64) -> u8 {
        let slots = t.lock();
        let slot = slots.open.get(&id).or_else(|| slots.evicted.get(&id));
        slot.unwrap().conn.attention.swap(0, Ordering::SeqCst)
    }

    #[test]
    fn the_period_follows_the_shortest_limit() {
        assert_eq!(period(&limits()), Duration::from_millis(250));
        let short = Limits {
            header_read_timeout: Duration::from_millis(80),
            ..limits()
        };
        assert_eq!(period(&short), Duration::from_millis(10));
        let none = Limits {
            header_read_timeout: Duration::MAX,
            idle_timeout: Duration::MAX,
            drain: Duration::MAX,
            connection_timeout: Duration::MAX,
            ..limits()
        };
        assert_eq!(period(&none), Duration::from_millis(500));
    }

    #[test]
    fn a_connection_that_sends_no_whole_head_in_time_is_closed() {
        let (t, l) = (Tracker::default(), limits());
        let c = t.admit(8, None).unwrap();
        let start = t.epoch;
        look(&t, &l, start + Duration::from_millis(4900));
        assert_eq!(asked(&t, c.id), 0);
        // Bytes trickling in do not extend the deadline.
        c.conn.last_read_ms.store(4_950, Ordering::Relaxed);
        look(&t, &l, start + Duration::from_millis(5_050));
        assert_eq!(asked(&t, c.id), ask::CLOSE);
    }

    #[test]
    fn a_request_restarts_the_head_deadline_and_a_busy_connection_is_left_alone() {
        let (t, l) = (Tracker::default(), limits());
        let c = t.admit(8, None).unwrap();
        let start = t.epoch;
        // A request came and went between two looks: the wait restarts at the look.
        c.conn.served.fetch_add(1, Ordering::Relaxed);
        look(&t, &l, start + Duration::from_secs(4));
        look(&t, &l, start + Duration::from_secs(8));
        assert_eq!(asked(&t, c.id), 0);
        // A request in progress for a long time (a sign-in wait on the socket) is not cut.
        c.conn.busy.fetch_add(1, Ordering::Relaxed);
        look(&t, &l, start + Duration::from_secs(100));
        assert_eq!(asked(&t, c.id), 0);
        // Its reply done: the wait for the next head starts at the first look that sees it.
        c.conn.busy.fetch_sub(1, Ordering::Relaxed);
        c.conn.last_read_ms.store(100_000, Ordering::Relaxed);
        look(&t, &l, start + Duration::from_millis(100_250));
        look(&t, &l, start + Duration::from_millis(105_000));
        assert_eq!(asked(&t, c.id), 0);
        look(&t, &l, start + Duration::from_millis(105_250));
        assert_eq!(asked(&t, c.id), ask::CLOSE);
    }

    #[test]
    fn a_quiet_connection_finishes_and_is_closed_when_its_grace_is_over() {
        let l = Limits {
            header_read_timeout: Duration::MAX,
            ..limits()
        };
        let t = Tracker::default();
        let c = t.admit(8, None).unwrap();
        let start = t.epoch;
        c.conn.last_read_ms.store(1_000, Ordering::Relaxed);
        look(&t, &l, start + Duration::from_millis(30_999));
        assert_eq!(asked(&t, c.id), 0);
        look(&t, &l, start + Duration::from_millis(31_000));
        assert_eq!(asked(&t, c.id), ask::FINISH);
        look(&t, &l, start + Duration::from_millis(32_999));
        assert_eq!(asked(&t, c.id), 0);
        look(&t, &l, start + Duration::from_millis(33_000));
        assert_eq!(asked(&t, c.id), ask::CLOSE);
    }

    #[test]
    fn an_evicted_busy_connection_gets_its_grace_then_is_closed() {
        let (t, l) = (Tracker::default(), limits());
        let a = t.admit(1, None).unwrap();
        // Evicted while idle, then a request started before its task saw the bell.
        let _b = t.admit(1, None).unwrap();
        a.conn.busy.fetch_add(1, Ordering::Relaxed);
        assert_eq!(asked(&t, a.id), ask::EVICTED);
        look(&t, &l, t.epoch + Duration::from_millis(1_999));
        assert_eq!(asked(&t, a.id), 0);
        look(&t, &l, t.epoch + Duration::from_millis(2_050));
        assert_eq!(asked(&t, a.id), ask::CLOSE);
    }

    #[test]
    fn a_connection_past_its_lifetime_is_closed_even_when_busy() {
        let (t, l) = (Tracker::default(), limits());
        let c = t.admit(8, None).unwrap();
        c.conn.busy.fetch_add(1, Ordering::Relaxed);
        look(&t, &l, t.epoch + Duration::from_secs(599));
        assert_eq!(asked(&t, c.id), 0);
        look(&t, &l, t.epoch + Duration::from_millis(600_050));
        assert_eq!(asked(&t, c.id), ask::CLOSE);
    }

    #[test]
    fn a_stop_asks_every_open_connection_to_finish() {
        let (t, l) = (Tracker::default(), limits());
        let a = t.admit(8, None).unwrap();
        let b = t.admit(8, None).unwrap();
        b.conn.busy.fetch_add(1, Ordering::Relaxed);
        finish_all(&t, t.epoch + Duration::from_secs(1));
        assert_eq!(asked(&t, a.id), ask::FINISH);
        assert_eq!(asked(&t, b.id), ask::FINISH);
        look(&t, &l, t.epoch + Duration::from_secs(3));
        assert_eq!(asked(&t, b.id), ask::CLOSE);
    }
}
