//! Polling a device code until the user approves it (RFC 8628, section 3.5), shared by the
//! identity-center and entra-oidc device flows.
//!
//! Each source turns its IdP's answer into a [`Poll`]; the loop here owns the timing:
//! `authorization_pending` polls on at the same interval, `slow_down` adds 5 seconds to it for
//! good, `expired_token` and a refusal end the login, transient failures poll on, and the
//! login gives up once the code's life (bounded by the login timeout) would be over before the
//! next poll.

use super::super::SourceError;
use crate::clock::Clock;
use std::future::Future;
use std::time::Duration;

/// RFC 8628 section 3.5: on `slow_down`, poll 5 s less often from then on.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// One answer of the token endpoint to a device-code grant, as the source read it.
#[derive(Debug)]
pub enum Poll<T> {
    /// The user approved: the token answer.
    Approved(T),
    /// `authorization_pending`: not yet.
    Pending,
    /// `slow_down`: not yet, and poll less often.
    SlowDown,
    /// `expired_token`: the code is over.
    Expired,
    /// `access_denied` (or the IdP's word for it): the user refused.
    Denied,
    /// A transient failure (throttling, 5xx, a dropped connection): poll on.
    Transient(String),
    /// Anything else ends the login with this error.
    Failed(SourceError),
}

/// How to poll one device code.
pub struct DevicePoll<'a> {
    /// The source's name, for messages and logs.
    pub source: &'a str,
    /// The interval the IdP asked for (at least 1 s).
    pub interval: Duration,
    /// The code's life, bounded by the login timeout.
    pub bound: Duration,
    /// What a [`Poll::Denied`] tells the user, after the source's name.
    pub denied: &'a str,
    pub clock: &'a dyn Clock,
}

impl DevicePoll<'_> {
    /// Polls with `poll` until the code is approved (its answer), refused, expired or timed out.
    pub async fn run<T, F, Fut>(self, mut poll: F) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Poll<T>>,
    {
        let name = self.source;
        let mut interval = self.interval.max(Duration::from_secs(1));
        let deadline = self.clock.instant() + self.bound;
        loop {
            tokio::time::sleep(interval).await;
            match poll().await {
                Poll::Approved(t) => return Ok(t),
                Poll::Pending => {}
                Poll::SlowDown => interval += SLOW_DOWN_STEP,
                Poll::Expired => {
                    return Err(SourceError::LoginCancelled(format!(
                    "{name}: the device code expired before it was approved; run the login again"
                )))
                }
                Poll::Denied => {
                    return Err(SourceError::LoginCancelled(format!(
                        "{name}: {}",
                        self.denied
                    )))
                }
                Poll::Transient(error) => {
                    tracing::debug!(source = %name, %error, "device code poll failed; polling on");
                }
                Poll::Failed(e) => return Err(e),
            }
            if self.clock.instant() + interval > deadline {
                return Err(SourceError::LoginCancelled(format!(
                    "{name}: sign-in timed out: the device code was not approved within {}s",
                    self.bound.as_secs()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TokioClock;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Polls with scripted answers (then `Pending` for ever), recording when each poll came.
    async fn run(
        interval: u64,
        bound: u64,
        script: Vec<Poll<&'static str>>,
    ) -> (Result<&'static str, SourceError>, Vec<u64>) {
        let clock = TokioClock::starting_at(0);
        let start = clock.instant();
        let script = Mutex::new(VecDeque::from(script));
        let times = Mutex::new(Vec::new());
        let r = DevicePoll {
            source: "corp",
            interval: Duration::from_secs(interval),
            bound: Duration::from_secs(bound),
            denied: "sign-in was denied",
            clock: &clock,
        }
        .run(|| {
            times
                .lock()
                .unwrap()
                .push((clock.instant() - start).as_secs());
            let next = script.lock().unwrap().pop_front().unwrap_or(Poll::Pending);
            async move { next }
        })
        .await;
        (r, times.into_inner().unwrap())
    }

    fn cancelled(r: Result<&str, SourceError>) -> String {
        match r {
            Err(SourceError::LoginCancelled(m)) => m,
            other => panic!("expected a cancelled login, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_down_adds_five_seconds_for_good() {
        let script = vec![
            Poll::Pending,
            Poll::SlowDown,
            Poll::Pending,
            Poll::SlowDown,
            Poll::Transient("503".into()),
            Poll::Approved("token"),
        ];
        let (r, times) = run(2, 600, script).await;
        assert_eq!(r.unwrap(), "token");
        // 2 s, then 7 s after the first slow_down, 12 s after the second.
        assert_eq!(times, vec![2, 4, 11, 18, 30, 42]);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_the_code_would_be_over_before_the_next_poll() {
        let (r, times) = run(5, 20, vec![]).await;
        assert_eq!(times, vec![5, 10, 15, 20]);
        let m = cancelled(r);
        assert_eq!(
            m,
            "corp: sign-in timed out: the device code was not approved within 20s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expired_and_denied_codes_end_the_login() {
        let (r, times) = run(1, 600, vec![Poll::Pending, Poll::Expired]).await;
        assert_eq!(times, vec![1, 2]);
        assert_eq!(
            cancelled(r),
            "corp: the device code expired before it was approved; run the login again"
        );
        let (r, _) = run(1, 600, vec![Poll::Denied]).await;
        assert_eq!(cancelled(r), "corp: sign-in was denied");
        let (r, _) = run(
            1,
            600,
            vec![Poll::Failed(SourceError::Config("bad".into()))],
        )
        .await;
        assert!(matches!(r, Err(SourceError::Config(m)) if m == "bad"));
    }
}
