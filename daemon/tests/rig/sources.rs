//! Helpers of the in-process tests of the login sources: a login's progress channel, waiting
//! for a device code, a profile of a source, the time.

use rolecall_daemon::config::ProfileConfig;
use rolecall_proto::api::{LoginPhase, LoginState};
use std::time::Duration;
use tokio::sync::watch;

/// The channel a source publishes its login's progress on, starting as a pending login.
pub fn progress(source: &str) -> (watch::Sender<LoginState>, watch::Receiver<LoginState>) {
    watch::channel(LoginState {
        phase: LoginPhase::Pending,
        ..rolecall_daemon::login::idle(source)
    })
}

/// The device code the login publishes, within 10 s.
pub async fn user_code(rx: &mut watch::Receiver<LoginState>) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(c) = rx.borrow_and_update().user_code.clone() {
                return c;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("user code published")
}

/// A profile of `source` for `role` (in `account`, where the source needs one).
pub fn profile(source: &str, account: Option<&str>, role: &str) -> ProfileConfig {
    ProfileConfig {
        source: source.into(),
        account: account.map(str::to_string),
        role: role.into(),
        ..Default::default()
    }
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    rolecall_proto::timefmt::now_epoch()
}
