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

    mod properties {
        use super::*;
        use crate::broker::EXPIRY_MARGIN_SECS;
        use proptest::prelude::*;

        proptest! {
            /// The scheduler refreshes before the broker would stop serving the credentials
            /// (at least one second ahead), except where it waits MIN_REFETCH_SECS after a fetch
            /// to keep refresh_ahead; and it never plans an early refetch sooner than that.
            #[test]
            fn due_before_the_serving_threshold(
                refresh_ahead in EXPIRY_MARGIN_SECS..7_200,
                lifetime in 1i64..50_000,
                grew: bool,
                jitter in 0.0f64..1.0,
            ) {
                let expiration = 1_800_000_000 + lifetime;
                let c = life(expiration, lifetime, grew);
                let due = due_at(c, refresh_ahead, jitter);
                let serving_until = expiration - fresh_threshold(refresh_ahead, lifetime, grew);
                let lead = serving_until - due;
                if grew && lifetime > refresh_ahead {
                    prop_assert!(due >= c.fetched_at() + MIN_REFETCH_SECS);
                    prop_assert!(lead >= 1 || due == c.fetched_at() + MIN_REFETCH_SECS);
                } else {
                    prop_assert!(lead >= 1, "due {} serving until {}", due, serving_until);
                }
                prop_assert!(lead <= lead_window(lifetime).max(1));
            }

            /// Back-off lies within [1 s, cap] for any failure count and lifetime.
            #[test]
            fn backoff_within_one_second_and_the_cap(
                failures in 0u32..100,
                base_s in 1u64..120,
                cap_s in 1u64..3_600,
                lifetime in proptest::option::of(-10i64..100_000),
            ) {
                let cap = Duration::from_secs(cap_s);
                let d = backoff(failures, Duration::from_secs(base_s), cap, lifetime);
                prop_assert!(d >= Duration::from_secs(1), "{:?}", d);
                prop_assert!(d <= cap.max(Duration::from_secs(1)), "{:?} > {:?}", d, cap);
            }
        }
    }
}
