//! The refresh scheduler over a simulated working day (tokio's paused clock): the real broker,
//! login coordinator and scheduler, and a counting source whose credentials live an hour.
//!
//! Figures are printed (run with `--nocapture` to see them): refreshes, upstream calls, the
//! least remaining lifetime any client was served, client calls that had to wait.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use rolecall_daemon::broker::clock::TokioClock;
use rolecall_daemon::broker::{Broker, Clock, CredentialRequest, Registry, RetryPolicy};
use rolecall_daemon::config::{Config, ProfileConfig};
use rolecall_daemon::login::{LoginCoordinator, LoginSettings};
use rolecall_daemon::notify::{Note, Notifications, Sender};
use rolecall_daemon::refresh::{Scheduler, Settings};
use rolecall_daemon::sources::{
    LoginOptions, LoginProgress, RoleCredentials, SessionState, Source, SourceError,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

const START: i64 = 1_800_000_000;

/// Hands out credentials living `lifetime` seconds; while `down`, answers a retryable 503.
struct Upstream {
    clock: Arc<dyn Clock>,
    lifetime: i64,
    delay: Duration,
    down: AtomicBool,
    calls: AtomicUsize,
    failed_calls: AtomicUsize,
    inflight: AtomicUsize,
    max_inflight: AtomicUsize,
    /// Upstream calls per 10-second bucket (burstiness).
    buckets: Mutex<BTreeMap<i64, usize>>,
}

impl Upstream {
    fn new(clock: Arc<dyn Clock>, lifetime: i64) -> Arc<Self> {
        Arc::new(Self {
            clock,
            lifetime,
            delay: Duration::from_millis(300),
            down: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            failed_calls: AtomicUsize::new(0),
            inflight: AtomicUsize::new(0),
            max_inflight: AtomicUsize::new(0),
            buckets: Mutex::new(BTreeMap::new()),
        })
    }
}

#[async_trait::async_trait]
impl Source for Upstream {
    fn name(&self) -> &str {
        "corp"
    }
    fn kind(&self) -> &'static str {
        "identity-center"
    }
    async fn session_state(&self) -> SessionState {
        SessionState::SignedIn { expires: None }
    }
    async fn login(&self, _: LoginOptions, _: &LoginProgress) -> Result<(), SourceError> {
        Ok(())
    }
    async fn logout(&self) -> Result<(), SourceError> {
        Ok(())
    }
    async fn credentials(&self, profile: &ProfileConfig) -> Result<RoleCredentials, SourceError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        *self
            .buckets
            .lock()
            .unwrap()
            .entry(self.clock.now() / 10)
            .or_default() += 1;
        let now_in = self.inflight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_inflight.fetch_max(now_in, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inflight.fetch_sub(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            self.failed_calls.fetch_add(1, Ordering::SeqCst);
            return Err(SourceError::Upstream {
                message: "GetRoleCredentials: 503 Service Unavailable".into(),
                retryable: true,
            });
        }
        Ok(RoleCredentials {
            access_key_id: format!("ASIADAY{n:08}"),
            secret_access_key: Zeroizing::new(format!("secret-{n}")),
            session_token: Zeroizing::new(format!("token-{n}")),
            expiration: self.clock.now() + self.lifetime,
            account_id: profile.account.clone().unwrap_or_default(),
            role_arn: format!("arn:aws:iam::111122223333:role/{}", profile.role),
        })
    }
}

#[derive(Default)]
struct Counting(Mutex<Vec<Note>>);
impl Sender for Counting {
    fn send(&self, note: &Note) {
        self.0.lock().unwrap().push(note.clone());
    }
}

fn profile(name: usize, warm: bool) -> ProfileConfig {
    ProfileConfig {
        source: "corp".into(),
        account: Some("111122223333".into()),
        account_name: None,
        role: format!("Role{name}"),
        principal: None,
        region: None,
        warm,
        duration: None,
        ..Default::default()
    }
}

struct World {
    broker: Arc<Broker>,
    upstream: Arc<Upstream>,
    scheduler: Arc<Scheduler>,
    clock: Arc<dyn Clock>,
    _stop: tokio::sync::watch::Sender<bool>,
}

fn world(profiles: usize, lifetime: i64) -> World {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(START));
    let upstream = Upstream::new(Arc::clone(&clock), lifetime);
    let broker = Broker::new(
        LoginCoordinator::new(LoginSettings::default()),
        Arc::clone(&clock),
        RetryPolicy::default(),
        None,
    );
    let mut config = Config::default();
    for i in 0..profiles {
        // Half are warm (kept fresh before first use), half only once used.
        config
            .profiles
            .insert(format!("p{i:03}"), profile(i, i % 2 == 0));
    }
    let mut sources: BTreeMap<String, Arc<dyn Source>> = BTreeMap::new();
    sources.insert("corp".into(), upstream.clone());
    broker.set_registry(Registry {
        config,
        sources,
        broken_sources: BTreeMap::new(),
        config_error: None,
        ..Registry::default()
    });
    let notes = Notifications::new(Arc::new(Counting::default()));
    let scheduler = Scheduler::new(Arc::clone(&broker), notes, Settings::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(Arc::clone(&scheduler).run(stop_rx));
    World {
        broker,
        upstream,
        scheduler,
        clock,
        _stop: stop_tx,
    }
}

#[derive(Debug, Default)]
struct Served {
    calls: usize,
    min_left: i64,
    expired: usize,
    errors: usize,
    /// Calls answered only after an upstream fetch (the client waited).
    waited: usize,
}

/// Every profile's client asks every `every` (staggered), for `hours`.
async fn clients(w: &World, profiles: usize, every: u64, hours: u64) -> Served {
    let served = Arc::new(Mutex::new(Served {
        min_left: i64::MAX,
        ..Served::default()
    }));
    let mut tasks = Vec::new();
    for i in 0..profiles {
        let (broker, clock, served) = (
            Arc::clone(&w.broker),
            Arc::clone(&w.clock),
            Arc::clone(&served),
        );
        tasks.push(tokio::spawn(async move {
            let name = format!("p{i:03}");
            // Staggered starts, like people opening terminals through the morning.
            tokio::time::sleep(Duration::from_secs((i as u64 * 37) % 900)).await;
            let end = tokio::time::Instant::now() + Duration::from_secs(hours * 3600);
            while tokio::time::Instant::now() < end {
                let t0 = tokio::time::Instant::now();
                let r = broker
                    .credentials(&name, CredentialRequest::default())
                    .await;
                let waited = t0.elapsed() > Duration::ZERO;
                let now = clock.now();
                {
                    let mut s = served.lock().unwrap();
                    s.calls += 1;
                    match r {
                        Ok(c) => {
                            let left = c.expiration - now;
                            s.min_left = s.min_left.min(left);
                            if left <= 0 {
                                s.expired += 1;
                            }
                            if waited {
                                s.waited += 1;
                            }
                        }
                        Err(_) => s.errors += 1,
                    }
                }
                tokio::time::sleep(Duration::from_secs(every)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(served).unwrap().into_inner().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_working_day_never_serves_less_than_refresh_ahead() {
    const PROFILES: usize = 120;
    let w = world(PROFILES, 3600);
    let s = clients(&w, PROFILES, 15, 10).await;
    let st = w.scheduler.stats();
    let refreshes = st.refreshes.load(Ordering::Relaxed);
    let calls = w.upstream.calls.load(Ordering::SeqCst);
    // After the cold start (everything fetched at once in the first minutes).
    let burst = w
        .upstream
        .buckets
        .lock()
        .unwrap()
        .range((START + 3600) / 10..)
        .map(|(_, n)| *n)
        .max();
    println!(
        "simulated 10 h, {PROFILES} profiles (1 h credentials, refresh_ahead 20m): client calls {}, \
         scheduler refreshes {refreshes}, upstream calls {calls}, min remaining served {} s, \
         expired served {}, errors {}, client calls that waited for a fetch {}, \
         max upstream calls in one 10 s window {burst:?}, max concurrent upstream calls {}",
        s.calls,
        s.min_left,
        s.expired,
        s.errors,
        s.waited,
        w.upstream.max_inflight.load(Ordering::SeqCst)
    );
    assert!(s.calls > 200_000, "{s:?}");
    assert!(
        refreshes > 1_000,
        "thousands of refresh cycles, got {refreshes}"
    );
    assert!(
        s.min_left > 20 * 60,
        "served {} s < refresh_ahead",
        s.min_left
    );
    assert_eq!((s.expired, s.errors), (0, 0));
    // Only the first call of a profile that was not warm can find nothing cached.
    // (+1: the first warm profile's client starts at 0 s, joining the scheduler's first fetch.)
    assert!(s.waited <= PROFILES / 2 + 1, "{s:?}");
    // One upstream call per refresh (plus the cold first fetches): no double fetches.
    assert!(
        calls as u64 <= refreshes + PROFILES as u64,
        "{calls} vs {refreshes}"
    );
    // Jitter: the refreshes do not come in one burst (120 profiles).
    assert!(burst.unwrap() <= 16, "burst of {burst:?}");
    // Bounded concurrency: the scheduler's 4 per source plus cold client fetches at most.
    assert!(w.upstream.max_inflight.load(Ordering::SeqCst) <= 4 + PROFILES / 2);
}

#[tokio::test(start_paused = true)]
async fn an_outage_serves_valid_credentials_backs_off_and_recovers() {
    const PROFILES: usize = 4;
    let w = world(PROFILES, 3600);
    let upstream = Arc::clone(&w.upstream);
    let clock = Arc::clone(&w.clock);
    // Outage from 1 h to 2 h 30: longer than the credentials' remaining life at its start.
    let outage = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        upstream.down.store(true, Ordering::SeqCst);
        let before = upstream.calls.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(90 * 60)).await;
        upstream.down.store(false, Ordering::SeqCst);
        (before, upstream.calls.load(Ordering::SeqCst), clock.now())
    });
    let broker = Arc::clone(&w.broker);
    let clock = Arc::clone(&w.clock);
    // One client per profile, every minute, for 4 hours.
    let probe = tokio::spawn(async move {
        let mut log = Vec::new();
        for _ in 0..240 {
            for i in 0..PROFILES {
                let r = broker
                    .credentials(&format!("p{i:03}"), CredentialRequest::default())
                    .await;
                log.push((clock.now(), r.map(|c| c.expiration).map_err(|e| e.message)));
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        log
    });
    let (before, after, recovered_at) = outage.await.unwrap();
    let log = probe.await.unwrap();
    let outage_calls = after - before;
    let mut ok_during = 0;
    let mut err_during = 0;
    let mut first_ok_after = None;
    for (t, r) in &log {
        match r {
            Ok(exp) => {
                assert!(*exp - t > 30, "expired credentials served at {t}");
                if (START + 3600..recovered_at).contains(t) {
                    ok_during += 1;
                }
                if *t >= recovered_at && first_ok_after.is_none() {
                    first_ok_after = Some(*t - recovered_at);
                }
            }
            Err(m) => {
                assert!(
                    (START + 3600..recovered_at + 60).contains(t),
                    "error outside the outage at {t}: {m}"
                );
                assert!(m.contains("503"), "{m}");
                err_during += 1;
            }
        }
    }
    let failures = w.scheduler.stats().refresh_failures.load(Ordering::Relaxed);
    println!(
        "90-minute outage, {PROFILES} profiles (1 h credentials), a client per profile every minute: \
         valid answers during the outage {ok_during}, clear errors once nothing valid was left {err_during}, \
         upstream calls during the outage {outage_calls} (scheduler refresh failures {failures}), \
         first valid answer {first_ok_after:?} s after recovery"
    );
    assert!(ok_during > 0 && err_during > 0);
    // Backed off: far fewer calls than one per profile per client call and retry.
    assert!(outage_calls < 90 * PROFILES * 3, "{outage_calls}");
    // Recovered on its own within the back-off cap (5 minutes) plus a tick.
    assert!(
        first_ok_after.is_some_and(|s| s <= 6 * 60),
        "{first_ok_after:?}"
    );
    let last = log.last().unwrap();
    assert!(last.1.is_ok());
}
