//! Desktop notifications: what the daemon tells the user without being asked.
//!
//! Three events (docs/refresh.md, *Notifications*): a known end coming up ("`legacy` ends in 15
//! minutes"), the first failed silent renewal ("sign-in needed for `corp`"), and a login the user
//! did not start in a terminal ("signed in"). This module owns the wording, the once-per-event
//! rule, the rate limit and the on/off switch; the sending sits behind [`Sender`] so that unit
//! tests count notifications and the daemon uses the desktop's notification server ([`desktop`]).

pub mod desktop;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// At most this many notifications per [`RATE_WINDOW`]; the rest are dropped (and logged).
pub const RATE_LIMIT: usize = 5;
pub const RATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// One notification, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub summary: String,
    pub body: String,
    /// The source whose login a "Sign in" action starts, where the server supports actions.
    pub login_action: Option<String>,
}

/// Shows notifications. Never blocks for long and never fails loudly: a desktop without a
/// notification server is normal (servers, containers, SSH sessions).
pub trait Sender: Send + Sync + 'static {
    fn send(&self, note: &Note);
}

/// What happened, with what makes the event unique (so that it is told once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `name` (a profile, or a source's session) ends at `end` and only a login renews it.
    EndsSoon {
        name: String,
        source: String,
        end: i64,
        now: i64,
    },
    /// A silent renewal of `source` failed for want of a login; `epoch` counts the times the
    /// source was signed in, so that each lost session is told once.
    SignInNeeded { source: String, epoch: u64 },
    /// A login the user did not start in a terminal succeeded; `at` tells logins apart.
    SignedIn { source: String, at: i64 },
}

impl Event {
    fn key(&self) -> String {
        match self {
            Event::EndsSoon { name, end, .. } => format!("ends:{name}:{end}"),
            Event::SignInNeeded { source, epoch } => format!("signin:{source}:{epoch}"),
            Event::SignedIn { source, at } => format!("signedin:{source}:{at}"),
        }
    }

    /// The words shown.
    pub fn note(&self) -> Note {
        match self {
            Event::EndsSoon {
                name,
                source,
                end,
                now,
            } => {
                let mins = ((end - now).max(0) + 59) / 60;
                let when = if mins == 1 {
                    "1 minute".to_string()
                } else {
                    format!("{mins} minutes")
                };
                Note {
                    summary: format!("{name} ends in {when}"),
                    body: format!("Only a new sign-in renews it: rolecall login {source}"),
                    login_action: Some(source.clone()),
                }
            }
            Event::SignInNeeded { source, .. } => Note {
                summary: format!("sign-in needed for {source}"),
                body: format!(
                    "The session could not be renewed silently. Run: rolecall login {source}"
                ),
                login_action: Some(source.clone()),
            },
            Event::SignedIn { source, .. } => Note {
                summary: "signed in".to_string(),
                body: format!("rolecall signed in to {source}"),
                login_action: None,
            },
        }
    }
}

struct Memory {
    told: HashSet<String>,
    recent: VecDeque<Instant>,
}

/// The notification policy in front of a [`Sender`].
pub struct Notifications {
    sender: Arc<dyn Sender>,
    enabled: AtomicBool,
    memory: Mutex<Memory>,
}

impl Notifications {
    pub fn new(sender: Arc<dyn Sender>) -> Arc<Self> {
        Arc::new(Self {
            sender,
            enabled: AtomicBool::new(true),
            memory: Mutex::new(Memory {
                told: HashSet::new(),
                recent: VecDeque::new(),
            }),
        })
    }

    /// `notifications = false` in the config turns every notification off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Tells the user about `event`, unless notifications are off, it was told already, or too
    /// many were shown lately. Whether it was sent.
    pub fn tell(&self, event: Event) -> bool {
        if !self.enabled.load(Ordering::Relaxed) {
            return false;
        }
        let key = event.key();
        {
            let mut m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            if m.told.contains(&key) {
                return false;
            }
            let now = crate::clock::monotonic();
            while m
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
            {
                m.recent.pop_front();
            }
            // Marked as told even when rate-limited: a late repeat of an old event is noise.
            m.told.insert(key);
            if m.recent.len() >= RATE_LIMIT {
                tracing::info!(?event, "notification dropped (rate limit)");
                return false;
            }
            m.recent.push_back(now);
        }
        let note = event.note();
        tracing::info!(summary = %note.summary, "notification");
        self.sender.send(&note);
        true
    }
}

#[cfg(test)]
mod tests;
