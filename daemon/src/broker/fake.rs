//! A scripted `Source` for the broker's and the login coordinator's unit tests, and (with the
//! `test-util` feature) for the in-process lifecycle test.

use super::clock::Clock;
use crate::config::ProfileConfig;
use crate::sources::{
    LoginOptions, LoginProgress, RoleCredentials, SessionState, Source, SourceError,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Succeed,
    Cancel,
}

pub struct FakeSource {
    pub name: String,
    pub clock: Arc<dyn Clock>,
    pub signed_in: AtomicBool,
    pub fetches: AtomicUsize,
    pub logins: AtomicUsize,
    /// Lifetime of the credentials it hands out, seconds.
    pub lifetime: Mutex<i64>,
    pub fetch_delay: Duration,
    pub login_delay: Duration,
    pub login_outcome: Mutex<LoginOutcome>,
    /// Errors returned by the next fetches, before any success.
    pub script: Mutex<VecDeque<SourceError>>,
    /// What `redeem_all_after_login` answers.
    pub redeem_all: AtomicBool,
    /// What `known_roles` answers.
    pub roles: Mutex<Vec<String>>,
}

impl FakeSource {
    pub fn new(name: &str, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            clock,
            signed_in: AtomicBool::new(true),
            fetches: AtomicUsize::new(0),
            logins: AtomicUsize::new(0),
            lifetime: Mutex::new(3600),
            fetch_delay: Duration::from_millis(100),
            login_delay: Duration::from_secs(5),
            login_outcome: Mutex::new(LoginOutcome::Succeed),
            script: Mutex::new(VecDeque::new()),
            redeem_all: AtomicBool::new(false),
            roles: Mutex::new(Vec::new()),
        })
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }

    pub fn push_error(&self, e: SourceError) {
        self.script.lock().unwrap().push_back(e);
    }
}

#[async_trait::async_trait]
impl Source for FakeSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "identity-center"
    }

    fn redeem_all_after_login(&self) -> bool {
        self.redeem_all.load(Ordering::SeqCst)
    }

    fn known_roles(&self) -> Vec<String> {
        self.roles.lock().unwrap().clone()
    }

    async fn session_state(&self) -> SessionState {
        if self.signed_in.load(Ordering::SeqCst) {
            SessionState::SignedIn { expires: None }
        } else {
            SessionState::NeedsLogin
        }
    }

    async fn login(
        &self,
        _opts: LoginOptions,
        progress: &LoginProgress,
    ) -> Result<(), SourceError> {
        self.logins.fetch_add(1, Ordering::SeqCst);
        progress.send_modify(|s| {
            s.flow = Some("device".into());
            s.user_code = Some("ABCD-EFGH".into());
        });
        tokio::time::sleep(self.login_delay).await;
        let outcome = *self.login_outcome.lock().unwrap();
        match outcome {
            LoginOutcome::Succeed => {
                self.signed_in.store(true, Ordering::SeqCst);
                Ok(())
            }
            LoginOutcome::Cancel => Err(SourceError::LoginCancelled("the user cancelled".into())),
        }
    }

    async fn logout(&self) -> Result<(), SourceError> {
        self.signed_in.store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn credentials(&self, profile: &ProfileConfig) -> Result<RoleCredentials, SourceError> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.fetch_delay).await;
        if let Some(e) = self.script.lock().unwrap().pop_front() {
            return Err(e);
        }
        if !self.signed_in.load(Ordering::SeqCst) {
            return Err(SourceError::NeedsLogin("no token".into()));
        }
        let lifetime = *self.lifetime.lock().unwrap();
        Ok(RoleCredentials {
            access_key_id: format!("ASIAFAKE{n:04}"),
            secret_access_key: Zeroizing::new(format!("secret-{n}-wJalrXUtnFEMI")),
            session_token: Zeroizing::new(format!("token-{n}-FwoGZXIvYXdzE")),
            expiration: self.clock.now() + lifetime,
            account_id: profile.account.clone().unwrap_or_default(),
            role_arn: format!(
                "arn:aws:iam::{}:role/{}",
                profile.account.clone().unwrap_or_default(),
                profile.role
            ),
        })
    }
}
