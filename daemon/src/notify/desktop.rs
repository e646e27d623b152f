//! The desktop's notification server (freedesktop Notifications over the D-Bus session bus on
//! Linux), through `notify-rust`.
//!
//! Sending runs on a thread of its own: the D-Bus calls block, and a notification with a
//! "Sign in" action waits on its thread until the user acts on it or it closes. No bus or no
//! server is normal: that is logged once at debug and the daemon carries on.

use super::{Note, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Called with the source name when the user picks a notification's "Sign in" action.
pub type LoginAction = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Desktop {
    app_name: String,
    logged_failure: Arc<AtomicBool>,
    /// Whether the server supports actions, asked once.
    actions: Arc<OnceLock<bool>>,
    on_login: Arc<Mutex<Option<LoginAction>>>,
}

impl Default for Desktop {
    fn default() -> Self {
        Self::new()
    }
}

impl Desktop {
    pub fn new() -> Self {
        Self {
            app_name: "rolecall".into(),
            logged_failure: Arc::new(AtomicBool::new(false)),
            actions: Arc::new(OnceLock::new()),
            on_login: Arc::new(Mutex::new(None)),
        }
    }

    /// What the "Sign in" action does.
    pub fn set_login_action(&self, action: LoginAction) {
        *self.on_login.lock().unwrap_or_else(|e| e.into_inner()) = Some(action);
    }
}

impl Sender for Desktop {
    fn send(&self, note: &Note) {
        let note = note.clone();
        let app_name = self.app_name.clone();
        let logged = Arc::clone(&self.logged_failure);
        let actions = Arc::clone(&self.actions);
        let on_login = self
            .on_login
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || show(&app_name, &note, &logged, &actions, on_login));
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "cannot start the notification thread");
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
fn show(
    app_name: &str,
    note: &Note,
    logged: &AtomicBool,
    actions: &OnceLock<bool>,
    on_login: Option<LoginAction>,
) {
    let with_action = note.login_action.is_some()
        && on_login.is_some()
        && *actions.get_or_init(|| {
            notify_rust::get_capabilities()
                .map(|caps| caps.iter().any(|c| c == "actions"))
                .unwrap_or(false)
        });
    let mut n = notify_rust::Notification::new();
    n.appname(app_name).summary(&note.summary).body(&note.body);
    if with_action {
        n.action("login", "Sign in");
    }
    match n.show() {
        Ok(handle) => {
            if let (true, Some(source), Some(cb)) = (with_action, &note.login_action, on_login) {
                handle.wait_for_action(|action| {
                    if action == "login" {
                        tracing::info!(source = %source, "sign-in started from a notification");
                        cb(source);
                    }
                });
            }
        }
        Err(e) => {
            // No session bus or no notification server: expected on servers; say it once.
            if !logged.swap(true, Ordering::Relaxed) {
                tracing::debug!(error = %e, "no desktop notification server; notifications are not shown");
            }
        }
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn show(
    app_name: &str,
    note: &Note,
    logged: &AtomicBool,
    _actions: &OnceLock<bool>,
    _on_login: Option<LoginAction>,
) {
    let mut n = notify_rust::Notification::new();
    n.appname(app_name).summary(&note.summary).body(&note.body);
    if let Err(e) = n.show() {
        if !logged.swap(true, Ordering::Relaxed) {
            tracing::debug!(error = %e, "desktop notifications are not available");
        }
    }
}
