//! The login coordinator: at most one interactive login per source at a time, however many
//! callers (explicit `rolecall login`, credential requests that need one) ask for it.
//!
//! Each source has one live [`LoginState`] in a `watch` channel: a caller joins a running login
//! by subscribing, `GET /v1/login/{source}?wait=S` long-polls it, and the source itself publishes
//! its progress (verification URL, user code) into it. After an automatic login that failed
//! (cancelled, timed out), no new automatic login starts for a back-off period that doubles up to
//! a cap; an explicit `rolecall login` always starts one.

use crate::sources::{LoginOptions, SessionState, Source, SourceError};
use rolecall_proto::api::{LoginPhase, LoginState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Who asked for a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `rolecall login`: ignores the back-off.
    Explicit,
    /// A credential request that found no session (`auto_login`).
    Auto,
    /// The user picked "Sign in" on a desktop notification: like `Explicit`, it ignores the
    /// back-off, but no terminal shows its outcome.
    Notification,
}

/// Tunables, injected so that tests can shorten them.
#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// First back-off after a failed automatic login; doubles with each failure.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// A login that has not finished by then counts as timed out.
    pub timeout: Duration,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_secs(120),
            backoff_cap: Duration::from_secs(30 * 60),
            timeout: Duration::from_secs(15 * 60),
        }
    }
}

/// An automatic login was refused because a recent one failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InBackoff {
    pub remaining: Duration,
}

/// Called with the final state of every login (success or failure).
pub type LoginObserver = Arc<dyn Fn(&LoginState) + Send + Sync>;

/// Called with a finished login's final state and who asked for it (notifications).
pub type FinishHook = Arc<dyn Fn(&LoginState, Trigger) + Send + Sync>;

struct PerSource {
    tx: watch::Sender<LoginState>,
    running: bool,
    failures: u32,
    backoff_until: Option<Instant>,
}

pub struct LoginCoordinator {
    settings: LoginSettings,
    inner: Mutex<HashMap<String, PerSource>>,
    observer: Mutex<Option<LoginObserver>>,
    finish_hooks: Mutex<Vec<FinishHook>>,
}

/// The state of a source with no login running (the start of every login's progress).
pub fn idle(source: &str) -> LoginState {
    LoginState {
        source: source.to_string(),
        phase: LoginPhase::Idle,
        flow: None,
        verification_uri: None,
        verification_uri_complete: None,
        user_code: None,
        browser_opened: false,
        error: None,
        session_expires: None,
    }
}

impl LoginCoordinator {
    pub fn new(settings: LoginSettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            inner: Mutex::new(HashMap::new()),
            observer: Mutex::new(None),
            finish_hooks: Mutex::new(Vec::new()),
        })
    }

    pub fn set_observer(&self, observer: LoginObserver) {
        *self.observer.lock().unwrap_or_else(|e| e.into_inner()) = Some(observer);
    }

    /// Adds a hook run after every login ends (besides the observer).
    pub fn add_finish_hook(&self, hook: FinishHook) {
        self.finish_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    fn with_source<R>(&self, source: &str, f: impl FnOnce(&mut PerSource) -> R) -> R {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(source.to_string()).or_insert_with(|| PerSource {
            tx: watch::channel(idle(source)).0,
            running: false,
            failures: 0,
            backoff_until: None,
        });
        f(entry)
    }

    /// Whether a login for `source` is running now.
    pub fn in_progress(&self, source: &str) -> bool {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.get(source).is_some_and(|s| s.running)
    }

    /// The source's current (or last) login state.
    pub fn state(&self, source: &str) -> LoginState {
        self.with_source(source, |s| s.tx.borrow().clone())
    }

    /// The remaining back-off for automatic logins of `source`, if any.
    pub fn backoff_remaining(&self, source: &str) -> Option<Duration> {
        let now = crate::clock::monotonic();
        self.with_source(source, |s| {
            s.backoff_until
                .filter(|until| *until > now)
                .map(|until| until - now)
        })
    }

    /// Long-poll: the state once the running login ends, or after `wait`, whichever is first.
    pub async fn wait(&self, source: &str, wait: Duration) -> LoginState {
        let mut rx = self.with_source(source, |s| s.tx.subscribe());
        let done = |st: &LoginState| st.phase != LoginPhase::Pending;
        let res = tokio::time::timeout(wait, rx.wait_for(done))
            .await
            .map(|r| r.map(|st| st.clone()));
        match res {
            Ok(Ok(st)) => st,
            _ => rx.borrow().clone(),
        }
    }

    /// Starts a login of `source`, or joins the one running. An explicit request without
    /// `force` for a source that still has a session answers `Succeeded` at once.
    pub async fn request(
        self: &Arc<Self>,
        source: Arc<dyn Source>,
        opts: LoginOptions,
        trigger: Trigger,
        force: bool,
    ) -> Result<watch::Receiver<LoginState>, InBackoff> {
        let name = source.name().to_string();
        if !force && !self.in_progress(&name) && opts.saml_response.is_none() {
            if let SessionState::SignedIn { expires } = source.session_state().await {
                let mut st = idle(&name);
                st.phase = LoginPhase::Succeeded;
                st.session_expires = expires;
                // Answered on a channel of its own: the shared state stays as it is, and a
                // closed channel still shows its last value.
                return Ok(watch::channel(st).1);
            }
        }
        self.start(source, opts, trigger)
    }

    /// Starts a login unless one is running (then joins it) or, for automatic logins, the
    /// source is in back-off.
    pub fn start(
        self: &Arc<Self>,
        source: Arc<dyn Source>,
        opts: LoginOptions,
        trigger: Trigger,
    ) -> Result<watch::Receiver<LoginState>, InBackoff> {
        let name = source.name().to_string();
        let now = crate::clock::monotonic();
        let tx = self.with_source(&name, |s| {
            if s.running {
                return Ok(None);
            }
            if trigger == Trigger::Auto {
                if let Some(until) = s.backoff_until.filter(|u| *u > now) {
                    return Err(InBackoff {
                        remaining: until - now,
                    });
                }
            }
            s.running = true;
            let mut st = idle(&name);
            st.phase = LoginPhase::Pending;
            st.flow = if opts.saml_response.is_some() {
                Some("paste".into())
            } else {
                None
            };
            s.tx.send_replace(st);
            Ok(Some(s.tx.clone()))
        })?;
        let rx = self.with_source(&name, |s| s.tx.subscribe());
        if let Some(tx) = tx {
            tracing::info!(source = %name, ?trigger, "login started");
            let this = Arc::clone(self);
            tokio::spawn(async move { this.run(source, opts, tx, trigger).await });
        }
        Ok(rx)
    }

    async fn run(
        self: Arc<Self>,
        source: Arc<dyn Source>,
        opts: LoginOptions,
        tx: watch::Sender<LoginState>,
        trigger: Trigger,
    ) {
        let name = source.name().to_string();
        let result =
            match tokio::time::timeout(self.settings.timeout, source.login(opts, &tx)).await {
                Ok(r) => r,
                Err(_) => Err(SourceError::LoginCancelled(format!(
                    "timed out after {}s",
                    self.settings.timeout.as_secs()
                ))),
            };
        let expires = match (&result, source.session_state().await) {
            (Ok(()), SessionState::SignedIn { expires }) => expires,
            _ => None,
        };
        let final_state = self.with_source(&name, |s| {
            s.running = false;
            let mut st = s.tx.borrow().clone();
            st.source = name.clone();
            match &result {
                Ok(()) => {
                    s.failures = 0;
                    s.backoff_until = None;
                    st.phase = LoginPhase::Succeeded;
                    st.error = None;
                    st.session_expires = expires;
                }
                Err(e) => {
                    s.failures = s.failures.saturating_add(1);
                    let factor = 1u32 << (s.failures - 1).min(16);
                    let backoff = self
                        .settings
                        .backoff_base
                        .saturating_mul(factor)
                        .min(self.settings.backoff_cap);
                    s.backoff_until = Some(crate::clock::monotonic() + backoff);
                    st.phase = LoginPhase::Failed;
                    st.error = Some(crate::wire_error::source_error(
                        &name,
                        e,
                        crate::wire_error::Stage::Login,
                    ));
                }
            }
            s.tx.send_replace(st.clone());
            st
        });
        match &result {
            Ok(()) => tracing::info!(source = %name, "login succeeded"),
            Err(e) => tracing::warn!(source = %name, error = %e, "login failed"),
        }
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(observer) = observer {
            observer(&final_state);
        }
        let hooks = self
            .finish_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for hook in hooks {
            hook(&final_state, trigger);
        }
    }
}
