//! Browser-step logins waiting for a decision (the user's approval at the IdP).
//!
//! Every emulated login that needs "the user" registers here: Identity Center device codes and
//! `/authorize` requests, Entra device codes, `/authorize` requests and SAML requests. With
//! auto-approve a visit approves at once; otherwise tests decide through the admin API.

use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Decision {
    Pending,
    Approved { user: String },
    Denied,
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingLogin {
    /// Opaque id for the admin API.
    pub id: String,
    /// `ssooidc:device`, `ssooidc:authorize`, `entra:device`, `entra:authorize`, `entra:saml`.
    pub kind: String,
    pub client_id: String,
    /// The code a user would type (device flows).
    pub user_code: Option<String>,
    /// Whether the browser visited the verification/authorize URL.
    pub visited: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(flatten)]
    pub decision: Decision,
}

/// Selects pending logins for approve/deny.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub id: Option<String>,
    pub user_code: Option<String>,
    pub kind: Option<String>,
    /// Every pending login (of `kind` if given).
    pub all: bool,
}

#[derive(Debug, Default)]
pub struct PendingLogins {
    items: Mutex<Vec<PendingLogin>>,
    changed: Notify,
}

impl PendingLogins {
    /// Registers a login and returns its id.
    pub fn register(
        &self,
        kind: &str,
        client_id: &str,
        user_code: Option<String>,
        now: OffsetDateTime,
    ) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.items.lock().expect("pending lock").push(PendingLogin {
            id: id.clone(),
            kind: kind.to_string(),
            client_id: client_id.to_string(),
            user_code,
            visited: false,
            created: now,
            decision: Decision::Pending,
        });
        id
    }

    pub fn get(&self, id: &str) -> Option<PendingLogin> {
        self.items
            .lock()
            .expect("pending lock")
            .iter()
            .find(|p| p.id == id)
            .cloned()
    }

    pub fn find_by_user_code(&self, code: &str) -> Option<PendingLogin> {
        let norm = normalize_code(code);
        self.items
            .lock()
            .expect("pending lock")
            .iter()
            .find(|p| p.user_code.as_deref().map(normalize_code) == Some(norm.clone()))
            .cloned()
    }

    pub fn decision(&self, id: &str) -> Option<Decision> {
        self.get(id).map(|p| p.decision)
    }

    pub fn mark_visited(&self, id: &str) {
        if let Some(p) = self
            .items
            .lock()
            .expect("pending lock")
            .iter_mut()
            .find(|p| p.id == id)
        {
            p.visited = true;
        }
    }

    /// Lists every login (all states), oldest first.
    pub fn list(&self) -> Vec<PendingLogin> {
        self.items.lock().expect("pending lock").clone()
    }

    /// Decides every still-pending login matching `sel`; returns how many.
    pub fn decide(&self, sel: &Selector, decision: Decision) -> usize {
        let mut n = 0;
        {
            let mut items = self.items.lock().expect("pending lock");
            for p in items.iter_mut() {
                if p.decision != Decision::Pending {
                    continue;
                }
                if let Some(k) = &sel.kind {
                    if &p.kind != k {
                        continue;
                    }
                }
                let hit = sel.all
                    || sel.id.as_deref() == Some(p.id.as_str())
                    || match (&sel.user_code, &p.user_code) {
                        (Some(a), Some(b)) => normalize_code(a) == normalize_code(b),
                        _ => false,
                    };
                if hit {
                    p.decision = decision.clone();
                    n += 1;
                }
            }
        }
        if n > 0 {
            self.changed.notify_waiters();
        }
        n
    }

    /// Decides one login by id (used by auto-approve).
    pub fn decide_id(&self, id: &str, decision: Decision) -> bool {
        let sel = Selector {
            id: Some(id.to_string()),
            ..Selector::default()
        };
        self.decide(&sel, decision) == 1
    }

    /// Forgets a login (once it is redeemed or expired).
    pub fn remove(&self, id: &str) {
        self.items
            .lock()
            .expect("pending lock")
            .retain(|p| p.id != id);
    }

    /// Waits until login `id` is decided, up to `timeout`; returns the last known decision.
    pub async fn wait_decided(&self, id: &str, timeout: Duration) -> Option<Decision> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.decision(id) {
                Some(Decision::Pending) => {}
                other => return other,
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.decision(id);
            }
        }
    }
}

fn normalize_code(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn approve_wakes_waiter() {
        let p = std::sync::Arc::new(PendingLogins::default());
        let id = p.register(
            "ssooidc:device",
            "c1",
            Some("ABCD-EFGH".into()),
            OffsetDateTime::now_utc(),
        );
        let p2 = p.clone();
        let id2 = id.clone();
        let waiter =
            tokio::spawn(async move { p2.wait_decided(&id2, Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sel = Selector {
            user_code: Some("abcdefgh".into()),
            ..Default::default()
        };
        assert_eq!(p.decide(&sel, Decision::Approved { user: "u".into() }), 1);
        assert_eq!(
            waiter.await.unwrap(),
            Some(Decision::Approved { user: "u".into() })
        );
        // Already decided: not decided again.
        assert_eq!(p.decide(&sel, Decision::Denied), 0);
    }

    #[tokio::test]
    async fn wait_times_out_pending() {
        let p = PendingLogins::default();
        let id = p.register("entra:saml", "app", None, OffsetDateTime::now_utc());
        assert_eq!(
            p.wait_decided(&id, Duration::from_millis(10)).await,
            Some(Decision::Pending)
        );
        assert_eq!(
            p.wait_decided("nope", Duration::from_millis(10)).await,
            None
        );
    }
}
