//! When cached credentials are served and when they are refetched early.

use super::*;

#[tokio::test(start_paused = true)]
async fn sessions_a_little_longer_than_refresh_ahead_keep_more_than_it() {
    let s = setup();
    // 21-minute role sessions, refresh_ahead 20 m (the default).
    *s.source.lifetime.lock().unwrap() = 21 * 60;
    get(&s.broker, QUIET).await.unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    get(&s.broker, QUIET).await.unwrap();
    assert_eq!(s.source.fetches(), 1, "20.5 minutes left: served as cached");
    // 19 min 50 s left, the last fetch 70 s ago: fetched again, more than 20 minutes served.
    tokio::time::advance(Duration::from_secs(40)).await;
    let c = get(&s.broker, QUIET).await.unwrap();
    assert_eq!(s.source.fetches(), 2);
    assert!(c.expiration - s.broker.clock().now() > 20 * 60);
    // Refetches are bounded: 20.5-minute sessions fall under 20 minutes after 30 s, but the
    // next fetch waits until a minute after the last one.
    *s.source.lifetime.lock().unwrap() = 20 * 60 + 30;
    tokio::time::advance(Duration::from_secs(60)).await;
    get(&s.broker, QUIET).await.unwrap();
    assert_eq!(s.source.fetches(), 3);
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(10)).await;
        get(&s.broker, QUIET).await.unwrap();
    }
    assert_eq!(s.source.fetches(), 3, "no second fetch within a minute");
    tokio::time::advance(Duration::from_secs(10)).await;
    let c = get(&s.broker, QUIET).await.unwrap();
    assert_eq!(s.source.fetches(), 4);
    assert!(c.expiration - s.broker.clock().now() > 20 * 60);
}

#[tokio::test(start_paused = true)]
async fn a_refetch_that_brings_nothing_new_stops_early_refetching() {
    let s = setup();
    *s.source.lifetime.lock().unwrap() = 21 * 60;
    let first = get(&s.broker, QUIET).await.unwrap();
    tokio::time::advance(Duration::from_secs(70)).await;
    // The upstream gives no more than what is cached (its session ends then).
    *s.source.lifetime.lock().unwrap() = 21 * 60 - 70;
    let second = get(&s.broker, QUIET).await.unwrap();
    assert_eq!(s.source.fetches(), 2);
    assert_eq!(second.expiration, first.expiration);
    // From now on served down to half the lifetime, without a fetch per call.
    for _ in 0..30 {
        tokio::time::advance(Duration::from_secs(10)).await;
        get(&s.broker, QUIET).await.unwrap();
    }
    assert_eq!(s.source.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn fifteen_minute_sessions_stay_on_the_half_lifetime_rule() {
    let s = setup();
    *s.source.lifetime.lock().unwrap() = 15 * 60;
    get(&s.broker, QUIET).await.unwrap();
    // A 15-minute session can never have 20 minutes left: no refetch every minute for it.
    for _ in 0..7 {
        tokio::time::advance(Duration::from_secs(60)).await;
        get(&s.broker, QUIET).await.unwrap();
    }
    assert_eq!(s.source.fetches(), 1);
    tokio::time::advance(Duration::from_secs(60)).await;
    get(&s.broker, QUIET).await.unwrap();
    assert_eq!(
        s.source.fetches(),
        2,
        "refetched under half its lifetime (7.5 m)"
    );
}

/// Properties of the serving threshold, over every combination of the numbers.
mod threshold_properties {
    use super::*;
    use proptest::prelude::*;
    use zeroize::Zeroizing;

    fn cached(expiration: i64, lifetime: i64, grew: bool) -> Cached {
        Cached {
            creds: RoleCredentials {
                access_key_id: "ASIAPROP".into(),
                secret_access_key: Zeroizing::new("secret".into()),
                session_token: Zeroizing::new("token".into()),
                expiration,
                account_id: "111111111111".into(),
                role_arn: "arn:aws:iam::111111111111:role/Prop".into(),
            },
            lifetime,
            grew,
        }
    }

    proptest! {
        /// Whatever the config and the upstream say, credentials with EXPIRY_MARGIN_SECS or less
        /// left are never served (the broker serves only with more than the threshold left).
        #[test]
        fn never_serves_within_the_expiry_margin(
            refresh_ahead in -100i64..50_000,
            lifetime in 0i64..100_000,
            renewable: bool,
        ) {
            prop_assert!(fresh_threshold(refresh_ahead, lifetime, renewable) >= EXPIRY_MARGIN_SECS);
        }

        /// When the upstream gives more than refresh_ahead and a refetch may bring more, the
        /// threshold is refresh_ahead: never below it (and never more eager than asked).
        #[test]
        fn refresh_ahead_is_kept_when_the_upstream_can_give_it(
            refresh_ahead in EXPIRY_MARGIN_SECS..50_000,
            extra in 1i64..50_000,
        ) {
            let lifetime = refresh_ahead + extra;
            prop_assert_eq!(fresh_threshold(refresh_ahead, lifetime, true), refresh_ahead);
            // Otherwise: never above refresh_ahead, never more than half the lifetime above the margin.
            let t = fresh_threshold(refresh_ahead, lifetime, false);
            prop_assert!(t <= refresh_ahead && t <= (lifetime / 2).max(EXPIRY_MARGIN_SECS));
        }

        /// A cached entry is renewable (threshold = refresh_ahead) only once MIN_REFETCH_SECS have
        /// passed since its fetch, and only if that fetch brought something new.
        #[test]
        fn cached_threshold_waits_for_the_refetch_interval(
            refresh_ahead in EXPIRY_MARGIN_SECS..7_200,
            lifetime in 1i64..50_000,
            grew: bool,
            since_fetch in 0i64..50_000,
        ) {
            let expiration = T0 + lifetime;
            let c = cached(expiration, lifetime, grew);
            let now = T0 + since_fetch;
            let t = c.threshold(refresh_ahead, now);
            prop_assert!(t >= EXPIRY_MARGIN_SECS);
            if grew && since_fetch >= MIN_REFETCH_SECS && lifetime > refresh_ahead {
                prop_assert_eq!(t, refresh_ahead);
            } else {
                prop_assert_eq!(t, refresh_ahead.min(lifetime / 2).max(EXPIRY_MARGIN_SECS));
            }
        }
    }
}
