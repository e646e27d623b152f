//! When to refresh and how long to back off: pure functions of the numbers, so they are tested
//! on their own.

use crate::broker::{fresh_threshold, CachedLife, MIN_REFETCH_SECS};
use rand::Rng;
use std::time::Duration;

/// How far ahead of the broker's serving threshold a refresh is planned: a random share of
/// this window, so that many profiles fetched together do not refresh in one burst. A tenth of
/// the lifetime, at most 5 minutes.
pub fn lead_window(lifetime: i64) -> i64 {
    (lifetime / 10).clamp(1, 300)
}

/// The epoch second at which cached credentials are refreshed: before the broker would stop
/// serving them (`refresh_ahead`, or half a short lifetime that cannot reach it), by a lead
/// between half and all of [`lead_window`]. Sessions refetched early to keep `refresh_ahead`
/// are due no sooner than [`MIN_REFETCH_SECS`] after their fetch (one barely longer than
/// `refresh_ahead` would be due at once, every time).
/// `jitter` is in `[0, 1)`.
pub fn due_at(cached: CachedLife, refresh_ahead: i64, jitter: f64) -> i64 {
    let CachedLife {
        expiration,
        lifetime,
        grew,
    } = cached;
    let window = lead_window(lifetime);
    let lead = window / 2 + ((window - window / 2) as f64 * jitter.clamp(0.0, 1.0)) as i64;
    let due = expiration - fresh_threshold(refresh_ahead, lifetime, grew) - lead.max(1);
    if grew && lifetime > refresh_ahead {
        due.max(cached.fetched_at() + MIN_REFETCH_SECS)
    } else {
        due
    }
}

/// Exponential back-off with jitter: `base · 2^(failures-1)`, capped, then scaled by a random
/// factor in `[0.5, 1)` so that sources failing together do not retry together. The cap
/// shrinks with short lifetimes (a quarter of it), so that recovery comes in time to matter.
pub fn backoff(failures: u32, base: Duration, cap: Duration, lifetime: Option<i64>) -> Duration {
    let cap = match lifetime {
        Some(l) if l > 0 => cap.min(Duration::from_secs((l as u64 / 4).max(base.as_secs()))),
        _ => cap,
    };
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let d = exp.min(cap);
    d.mul_f64(rand::thread_rng().gen_range(0.5..1.0))
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(expiration: i64, lifetime: i64, grew: bool) -> CachedLife {
        CachedLife {
            expiration,
            lifetime,
            grew,
        }
    }

    #[test]
    fn due_before_the_serving_threshold_with_spread() {
        // 1 h credentials, refresh_ahead 20 m: due between 25 m and 22.5 m... before expiry.
        let exp = 10_000;
        let early = due_at(life(exp, 3600, true), 1200, 0.999);
        let late = due_at(life(exp, 3600, true), 1200, 0.0);
        assert_eq!(late, exp - 1200 - 150);
        assert!(early <= exp - 1200 - 299, "{early}");
        // Short sessions that never reach refresh_ahead: half the lifetime is the threshold.
        assert_eq!(due_at(life(exp, 120, true), 1200, 0.0), exp - 60 - 6);
    }

    #[test]
    fn sessions_a_little_longer_than_refresh_ahead_are_refetched_a_minute_apart() {
        // 21-minute credentials, refresh_ahead 20 m: due one minute after their fetch.
        let exp = 100_000;
        let fetched = exp - 21 * 60;
        assert_eq!(
            due_at(life(exp, 21 * 60, true), 1200, 0.5),
            fetched + MIN_REFETCH_SECS
        );
        // A refetch that brought nothing new: back to half the lifetime.
        assert_eq!(
            due_at(life(exp, 21 * 60, false), 1200, 0.0),
            exp - 21 * 30 - 63
        );
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Duration::from_secs(2);
        let cap = Duration::from_secs(300);
        for _ in 0..50 {
            let d1 = backoff(1, b, cap, None);
            assert!(d1 >= Duration::from_secs(1) && d1 < b);
            let d10 = backoff(10, b, cap, Some(3600));
            assert!(d10 >= cap / 2 && d10 < cap, "{d10:?}");
            // 2-minute credentials: never more than 30 s between attempts.
            assert!(backoff(10, b, cap, Some(120)) < Duration::from_secs(30));
        }
    }
}
