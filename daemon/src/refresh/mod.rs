//! The refresh scheduler: keeps credentials fresh before anyone asks.
//!
//! Every profile used within `recent_window`, and every `warm` profile, is refreshed before its
//! remaining life drops under the broker's serving threshold (`refresh_ahead`, or half a short
//! lifetime), at a jittered moment so that many profiles do not refresh in one burst, at most
//! [`Settings::per_source`] at a time per source. Refreshes go through the broker's
//! single-flight path, so a client asking meanwhile joins the same fetch. Failures back off
//! exponentially with jitter and a cap ([`timing::backoff`]); the broker keeps serving
//! still-valid credentials and never expired ones. Each source's session (access token renewed
//! with its refresh token) is kept alive through [`Source::renew_session`], and the user is told
//! when a session is lost or a known end comes near ([`crate::notify`]).

pub mod timing;

use crate::broker::Broker;
use crate::login::Trigger;
use crate::notify::{desktop::LoginAction, Event, Notifications};
use crate::sources::{LoginOptions, SessionState, Source, SourceError};
use rolecall_proto::api::LoginPhase;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};

/// Tunables (tests shorten them).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The longest sleep between two passes (new profiles are noticed within it).
    pub tick: Duration,
    /// First back-off after a failed refresh; doubles with each failure.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// After a failure that only a login fixes, the profile waits this long (or until the
    /// source is signed in again).
    pub needs_login_pause: Duration,
    /// How often each source's session is offered a renewal.
    pub session_check: Duration,
    /// Concurrent refreshes per source.
    pub per_source: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(30),
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(300),
            needs_login_pause: Duration::from_secs(300),
            session_check: Duration::from_secs(60),
            per_source: 4,
        }
    }
}

/// Counters, for tests and the log.
#[derive(Debug, Default)]
pub struct Stats {
    pub refreshes: AtomicU64,
    pub refresh_failures: AtomicU64,
    pub renewals: AtomicU64,
    pub renewal_failures: AtomicU64,
}

#[derive(Debug, Default)]
struct ProfileSched {
    running: bool,
    failures: u32,
    /// No new attempt before this (epoch seconds): the back-off.
    retry_at: i64,
    /// The expiry a refresh is planned for, and when.
    planned: Option<(i64, i64)>,
}

#[derive(Debug, Default)]
struct SourceSched {
    signed_in: bool,
    /// Times this source was seen signed in (one "sign-in needed" per lost session).
    epoch: u64,
    renewing: bool,
    next_renew: i64,
    failures: u32,
}

#[derive(Default)]
struct State {
    profiles: HashMap<String, ProfileSched>,
    sources: HashMap<String, SourceSched>,
    semaphores: HashMap<String, Arc<Semaphore>>,
}

pub struct Scheduler {
    broker: Arc<Broker>,
    notes: Arc<Notifications>,
    settings: Settings,
    state: Mutex<State>,
    wake: Notify,
    stats: Stats,
}

impl Scheduler {
    /// A scheduler over `broker`; it also tells the user about logins it did not start in a
    /// terminal (a hook on the login coordinator).
    pub fn new(broker: Arc<Broker>, notes: Arc<Notifications>, settings: Settings) -> Arc<Self> {
        let this = Arc::new(Self {
            broker,
            notes,
            settings,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            stats: Stats::default(),
        });
        let weak = Arc::downgrade(&this);
        this.broker
            .logins()
            .add_finish_hook(Arc::new(move |st, trigger| {
                let Some(s) = weak.upgrade() else { return };
                if st.phase == LoginPhase::Succeeded {
                    // A login started in a terminal shows its outcome there already.
                    if trigger != Trigger::Explicit {
                        s.notes.tell(Event::SignedIn {
                            source: st.source.clone(),
                            at: s.broker.clock().now(),
                        });
                    }
                    // Profiles waiting for this login may go on at once.
                    let mut state = s.lock();
                    let src_profiles = s.profiles_of(&st.source);
                    for p in src_profiles {
                        if let Some(ps) = state.profiles.get_mut(&p) {
                            ps.retry_at = 0;
                            ps.failures = 0;
                        }
                    }
                    drop(state);
                    s.wake.notify_one();
                }
            }));
        this
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn profiles_of(&self, source: &str) -> Vec<String> {
        self.broker
            .registry()
            .config
            .profiles
            .iter()
            .filter(|(_, p)| p.source == source)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Runs until `stop` says so.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        tracing::debug!("refresh scheduler started");
        loop {
            let sleep = self.pass().await;
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
                _ = crate::shutdown::stopped(&mut stop) => break,
            }
        }
        tracing::debug!("refresh scheduler stopped");
    }

    /// One look at every profile kept fresh: starts what is due, answers how long to sleep.
    pub async fn pass(self: &Arc<Self>) -> Duration {
        let reg = self.broker.registry();
        let d = reg.config.daemon.clone();
        self.notes.set_enabled(d.notifications);
        let now = self.broker.clock().now();
        let refresh_ahead = d.refresh_ahead.as_secs() as i64;
        let notify_ahead = d.notify_ahead.as_secs() as i64;
        let recent = d.recent_window.as_secs() as i64;

        let mut active: BTreeSet<String> = self
            .broker
            .recently_used(now - recent)
            .into_iter()
            .collect();
        active.extend(
            reg.config
                .profiles
                .iter()
                .filter(|(_, p)| p.warm)
                .map(|(n, _)| n.clone()),
        );
        let mut by_source: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in active {
            if let Some(pc) = reg.config.profiles.get(&p) {
                by_source.entry(pc.source.clone()).or_default().push(p);
            }
        }

        let mut next = now + self.settings.tick.as_secs().max(1) as i64;
        for (sname, profiles) in by_source {
            let Some(source) = reg.sources.get(&sname).cloned() else {
                continue;
            };
            let signed_in = matches!(source.session_state().await, SessionState::SignedIn { .. });
            self.observe_session(&sname, signed_in);

            if signed_in {
                self.maybe_renew(&sname, &source, now);
                if let Some(end) = source.session_end().await.filter(|e| *e > now) {
                    if end - now <= notify_ahead {
                        self.notes.tell(Event::EndsSoon {
                            name: sname.clone(),
                            source: sname.clone(),
                            end,
                            now,
                        });
                    } else {
                        next = next.min(end - notify_ahead);
                    }
                }
            }

            for p in profiles {
                let cached = self.broker.cached_lifetime(&p);
                if !signed_in {
                    // Nothing silent will work: no upstream calls. Tell when what is cached
                    // runs out, since only a login renews it.
                    if let Some(exp) = cached.map(|c| c.expiration).filter(|e| *e > now) {
                        if exp - now <= notify_ahead {
                            self.notes.tell(Event::EndsSoon {
                                name: p.clone(),
                                source: sname.clone(),
                                end: exp,
                                now,
                            });
                        } else {
                            next = next.min(exp - notify_ahead);
                        }
                    }
                    continue;
                }
                let start = {
                    let mut st = self.lock();
                    let ps = st.profiles.entry(p.clone()).or_default();
                    if ps.running {
                        continue;
                    }
                    let due = match cached {
                        None => now,
                        Some(c) => match ps.planned {
                            Some((planned_exp, at)) if planned_exp == c.expiration => at,
                            _ => {
                                let at = timing::due_at(c, refresh_ahead, rand::random::<f64>());
                                ps.planned = Some((c.expiration, at));
                                at
                            }
                        },
                    };
                    let at = due.max(ps.retry_at);
                    if now >= at {
                        ps.running = true;
                        true
                    } else {
                        next = next.min(at);
                        false
                    }
                };
                if start {
                    let this = Arc::clone(self);
                    let source_name = sname.clone();
                    tokio::spawn(async move { this.refresh(p, source_name).await });
                }
            }
        }
        Duration::from_secs((next - now).max(1) as u64)
    }

    /// Notes whether a source is signed in; a session seen lost is told once.
    fn observe_session(&self, source: &str, signed_in: bool) {
        let lost_epoch = {
            let mut st = self.lock();
            let ss = st.sources.entry(source.to_string()).or_default();
            let was = ss.signed_in;
            ss.signed_in = signed_in;
            if signed_in && !was {
                ss.epoch += 1;
            }
            (was && !signed_in).then_some(ss.epoch)
        };
        if let Some(epoch) = lost_epoch {
            self.notes.tell(Event::SignInNeeded {
                source: source.to_string(),
                epoch,
            });
        }
    }

    /// A failure that only a login fixes, in a refresh or a renewal.
    fn lost_session(&self, source: &str) {
        let epoch = {
            let mut st = self.lock();
            let ss = st.sources.entry(source.to_string()).or_default();
            let e = ss.epoch;
            ss.signed_in = false;
            e
        };
        // Only a session that existed can be "lost"; a never-signed-in source is not news.
        if epoch > 0 {
            self.notes.tell(Event::SignInNeeded {
                source: source.to_string(),
                epoch,
            });
        }
    }

    fn semaphore(&self, source: &str) -> Arc<Semaphore> {
        let per = self.settings.per_source.max(1);
        Arc::clone(
            self.lock()
                .semaphores
                .entry(source.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(per))),
        )
    }

    async fn refresh(self: Arc<Self>, profile: String, source: String) {
        let sem = self.semaphore(&source);
        let permit = sem.acquire_owned().await;
        let res = self.broker.refresh_now(&profile).await;
        drop(permit);
        let now = self.broker.clock().now();
        let lifetime = self.broker.cached_lifetime(&profile).map(|c| c.lifetime);
        let mut needs_login = false;
        {
            let mut st = self.lock();
            let ps = st.profiles.entry(profile.clone()).or_default();
            ps.running = false;
            match &res {
                Ok(expiry) => {
                    self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
                    ps.failures = 0;
                    ps.retry_at = 0;
                    tracing::debug!(profile, left = expiry - now, "refreshed ahead");
                }
                Err(e) => {
                    self.stats.refresh_failures.fetch_add(1, Ordering::Relaxed);
                    ps.failures = ps.failures.saturating_add(1);
                    let wait = match &**e {
                        SourceError::NeedsLogin(_) => {
                            needs_login = true;
                            self.settings.needs_login_pause
                        }
                        SourceError::Upstream {
                            retryable: true, ..
                        } => timing::backoff(
                            ps.failures,
                            self.settings.backoff_base,
                            self.settings.backoff_cap,
                            lifetime,
                        ),
                        // Refusals and config errors do not fix themselves quickly.
                        _ => self.settings.backoff_cap,
                    };
                    ps.retry_at = now + wait.as_secs_f64().ceil() as i64;
                    self.broker.defer_fetches(&profile, Some(ps.retry_at));
                    tracing::info!(
                        profile,
                        error = %e,
                        failures = ps.failures,
                        retry_in_s = wait.as_secs(),
                        "refresh ahead failed; backing off"
                    );
                }
            }
        }
        if needs_login {
            self.lost_session(&source);
        }
        self.wake.notify_one();
    }

    /// Offers the source's session a renewal, at most every `session_check`.
    fn maybe_renew(self: &Arc<Self>, name: &str, source: &Arc<dyn Source>, now: i64) {
        {
            let mut st = self.lock();
            let ss = st.sources.entry(name.to_string()).or_default();
            if ss.renewing || now < ss.next_renew {
                return;
            }
            ss.renewing = true;
        }
        let this = Arc::clone(self);
        let (name, source) = (name.to_string(), Arc::clone(source));
        tokio::spawn(async move {
            let res = source.renew_session().await;
            let now = this.broker.clock().now();
            let lost = {
                let mut st = this.lock();
                let ss = st.sources.entry(name.clone()).or_default();
                ss.renewing = false;
                match &res {
                    Ok(()) => {
                        this.stats.renewals.fetch_add(1, Ordering::Relaxed);
                        ss.failures = 0;
                        ss.next_renew = now + this.settings.session_check.as_secs() as i64;
                        false
                    }
                    Err(e) => {
                        this.stats.renewal_failures.fetch_add(1, Ordering::Relaxed);
                        ss.failures = ss.failures.saturating_add(1);
                        let wait = timing::backoff(
                            ss.failures,
                            this.settings.backoff_base,
                            this.settings.backoff_cap,
                            None,
                        )
                        .max(this.settings.session_check);
                        ss.next_renew = now + wait.as_secs() as i64;
                        tracing::info!(source = %name, error = %e, "session renewal failed");
                        matches!(e, SourceError::NeedsLogin(_))
                    }
                }
            };
            if lost {
                this.lost_session(&name);
            }
        });
    }
}

/// What a notification's "Sign in" action does: starts the source's login, as if the user had
/// run `rolecall login <source>` (the login's browser or device code is the user's next step).
pub fn login_action(broker: &Arc<Broker>) -> LoginAction {
    let weak = Arc::downgrade(broker);
    let handle = tokio::runtime::Handle::current();
    Arc::new(move |source: &str| {
        let Some(broker) = weak.upgrade() else { return };
        let source = source.to_string();
        handle.spawn(async move {
            match broker.source(&source) {
                Ok(s) => {
                    let _ = broker
                        .logins()
                        .start(s, LoginOptions::default(), Trigger::Notification);
                }
                Err(e) => tracing::warn!(source, error = %e.message, "cannot sign in from the notification"),
            }
        });
    })
}
