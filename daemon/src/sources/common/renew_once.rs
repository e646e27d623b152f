//! One renewal of a session's token for a crowd of concurrent callers.
//!
//! Both OAuth sources (identity-center, entra-oidc) keep an access token with a refresh token
//! that their IdP may rotate: two concurrent renewals with the same refresh token would make
//! the second fail and end the session. So renewals run one at a time, and a caller that waited
//! for another's renewal takes its fresh token instead of renewing again.

use crate::clock::Clock;
use std::future::Future;
use std::sync::Arc;

/// A token renewed by another caller while this one waited is used if it has this much left
/// (seconds), even when its whole life is under the renewal margin.
pub const JUST_RENEWED_MIN_LEFT: i64 = 30;

/// What [`RenewOnce`] needs to know of a stored token.
pub trait Expiring {
    /// When the token ends (epoch seconds).
    fn expires_at(&self) -> i64;
    /// Whether `other` is this very token (a renewal gives a new one).
    fn same_token(&self, other: &Self) -> bool;
}

/// Serialises renewals of one source's token.
pub struct RenewOnce {
    lock: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
    /// Renew when the token has less than this left (seconds).
    renew_ahead: i64,
}

impl std::fmt::Debug for RenewOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenewOnce")
            .field("renew_ahead", &self.renew_ahead)
            .finish_non_exhaustive()
    }
}

impl RenewOnce {
    pub fn new(clock: Arc<dyn Clock>, renew_ahead: i64) -> Self {
        RenewOnce {
            lock: tokio::sync::Mutex::new(()),
            clock,
            renew_ahead,
        }
    }

    /// A usable token: the stored one (`load`) while it has more than the renewal margin left
    /// and `force` is off; else, one caller at a time, `renew` of the stored one — unless
    /// another caller renewed it while this one waited, whose token is then used as is.
    pub async fn token<T, E, L, R, Fut>(&self, force: bool, load: L, renew: R) -> Result<T, E>
    where
        T: Expiring,
        L: Fn() -> Result<T, E>,
        R: FnOnce(T) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let t = load()?;
        if !force && t.expires_at() - self.renew_ahead > self.clock.now() {
            return Ok(t);
        }
        let _guard = self.lock.lock().await;
        let t2 = load()?;
        if !t2.same_token(&t) && t2.expires_at() - JUST_RENEWED_MIN_LEFT > self.clock.now() {
            return Ok(t2);
        }
        renew(t2).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TokioClock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    const T0: i64 = 1_800_000_000;

    #[derive(Debug, Clone, PartialEq)]
    struct Tok {
        value: String,
        expires_at: i64,
    }

    impl Expiring for Tok {
        fn expires_at(&self) -> i64 {
            self.expires_at
        }
        fn same_token(&self, other: &Self) -> bool {
            self.value == other.value
        }
    }

    struct Store {
        renew: RenewOnce,
        stored: Mutex<Tok>,
        renewals: AtomicUsize,
    }

    impl Store {
        fn new(expires_at: i64) -> Arc<Store> {
            let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(T0));
            Arc::new(Store {
                renew: RenewOnce::new(clock, 300),
                stored: Mutex::new(Tok {
                    value: "old".into(),
                    expires_at,
                }),
                renewals: AtomicUsize::new(0),
            })
        }

        async fn get(&self, force: bool) -> Result<Tok, String> {
            self.renew
                .token(
                    force,
                    || Ok(self.stored.lock().unwrap().clone()),
                    |_old| async {
                        let n = self.renewals.fetch_add(1, Ordering::SeqCst) + 1;
                        // The IdP takes its time: the other callers pile up meanwhile.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        let t = Tok {
                            value: format!("new-{n}"),
                            expires_at: T0 + 3600,
                        };
                        *self.stored.lock().unwrap() = t.clone();
                        Ok(t)
                    },
                )
                .await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_renewal_serves_a_crowd_of_callers() {
        let store = Store::new(T0 + 60);
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let s = Arc::clone(&store);
                tokio::spawn(async move { s.get(false).await })
            })
            .collect();
        for c in callers {
            assert_eq!(c.await.unwrap().unwrap().value, "new-1");
        }
        assert_eq!(store.renewals.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_token_is_not_renewed_unless_forced() {
        let store = Store::new(T0 + 3600);
        assert_eq!(store.get(false).await.unwrap().value, "old");
        assert_eq!(store.renewals.load(Ordering::SeqCst), 0);
        assert_eq!(store.get(true).await.unwrap().value, "new-1");
        assert_eq!(store.renewals.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_session_is_the_loaders_error() {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(T0));
        let renew = RenewOnce::new(clock, 300);
        let r: Result<Tok, String> = renew
            .token(false, || Err("no session".to_string()), |t| async { Ok(t) })
            .await;
        assert_eq!(r.unwrap_err(), "no session");
    }
}
