//! Broker and login-coordinator tests on tokio's paused clock with a scripted source.

use super::clock::{Clock, TokioClock};
use super::fake::{FakeSource, LoginOutcome};
use super::*;
use crate::config::{IdentityCenterConfig, SourceConfig};
use crate::login::{LoginCoordinator, LoginSettings, Trigger};
use crate::sources::LoginOptions;
use rolecall_proto::api::{ErrorCode, LoginPhase};
use std::sync::atomic::Ordering;
use std::time::Duration;

const T0: i64 = 1_800_000_000;

struct Setup {
    broker: Arc<Broker>,
    source: Arc<FakeSource>,
}

fn setup() -> Setup {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(T0));
    let source = FakeSource::new("corp", Arc::clone(&clock));
    let logins = LoginCoordinator::new(LoginSettings::default());
    let broker = Broker::new(logins, clock, RetryPolicy::default(), None);
    let mut config = Config::default();
    config.sources.insert(
        "corp".into(),
        SourceConfig::IdentityCenter(IdentityCenterConfig {
            start_url: "https://d-1234567890.awsapps.com/start".into(),
            region: "eu-west-1".into(),
            flow: None,
            endpoint_url: None,
            share_aws_cli_cache: false,
            sso_session: None,
        }),
    );
    config.profiles.insert(
        "dev".into(),
        ProfileConfig {
            source: "corp".into(),
            account: Some("111111111111".into()),
            account_name: None,
            role: "Dev".into(),
            principal: None,
            region: None,
            warm: false,
            duration: None,
            ..Default::default()
        },
    );
    let mut sources: BTreeMap<String, Arc<dyn Source>> = BTreeMap::new();
    sources.insert("corp".into(), source.clone());
    broker.set_registry(Registry {
        config,
        sources,
        ..Registry::default()
    });
    Setup { broker, source }
}

const QUIET: CredentialRequest = CredentialRequest {
    interactive: false,
    wait: None,
};
const TTY: CredentialRequest = CredentialRequest {
    interactive: true,
    wait: None,
};

async fn get(b: &Arc<Broker>, req: CredentialRequest) -> Result<RoleCredentials, ErrorBody> {
    b.credentials("dev", req).await
}

#[tokio::test(start_paused = true)]
async fn two_hundred_concurrent_requests_cause_one_fetch() {
    let s = setup();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let b = Arc::clone(&s.broker);
            tokio::spawn(async move { get(&b, QUIET).await })
        })
        .collect();
    let mut keys = std::collections::HashSet::new();
    for t in tasks {
        keys.insert(t.await.unwrap().unwrap().access_key_id);
    }
    assert_eq!(s.source.fetches(), 1);
    assert_eq!(keys.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_missed_a_finished_flight_takes_what_it_cached() {
    let s = setup();
    let first = get(&s.broker, QUIET).await.unwrap();
    // A caller that found the cache stale just before that fetch finished (it was waiting for
    // a chained profile's parent, or for its thread) reaches the single flight only now.
    let (pc, source) = s.broker.resolve("dev").unwrap();
    let key = CacheKey::of(&s.broker.registry(), &pc);
    let ahead = s.broker.daemon_config().refresh_ahead.as_secs() as i64;
    let late = s
        .broker
        .fetch_shared(&key, "dev", &pc, &source, None, Some(ahead))
        .await
        .unwrap();
    assert_eq!(late.access_key_id, first.access_key_id);
    assert_eq!(s.source.fetches(), 1);
    // A forced refetch does fetch.
    let forced = s
        .broker
        .fetch_shared(&key, "dev", &pc, &source, None, None)
        .await
        .unwrap();
    assert_ne!(forced.access_key_id, first.access_key_id);
    assert_eq!(s.source.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn cached_until_refresh_ahead_then_refetched() {
    let s = setup();
    let first = get(&s.broker, QUIET).await.unwrap();
    tokio::time::advance(Duration::from_secs(39 * 60)).await;
    assert_eq!(
        get(&s.broker, QUIET).await.unwrap().access_key_id,
        first.access_key_id
    );
    assert_eq!(s.source.fetches(), 1);
    // 60m lifetime - 41m = 19m left, under refresh_ahead (20m): fetch new ones.
    tokio::time::advance(Duration::from_secs(2 * 60)).await;
    let second = get(&s.broker, QUIET).await.unwrap();
    assert_ne!(second.access_key_id, first.access_key_id);
    assert_eq!(s.source.fetches(), 2);
    assert!(second.expiration - s.broker.clock().now() > 20 * 60);
}

#[tokio::test(start_paused = true)]
async fn short_sessions_are_served_without_refetching_each_call() {
    let s = setup();
    *s.source.lifetime.lock().unwrap() = 15 * 60;
    get(&s.broker, QUIET).await.unwrap();
    get(&s.broker, QUIET).await.unwrap();
    assert_eq!(s.source.fetches(), 1);
    tokio::time::advance(Duration::from_secs(8 * 60)).await;
    get(&s.broker, QUIET).await.unwrap();
    assert_eq!(s.source.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn valid_cache_served_while_upstream_fails_but_never_expired() {
    let s = setup();
    let first = get(&s.broker, QUIET).await.unwrap();
    tokio::time::advance(Duration::from_secs(50 * 60)).await;
    s.source.push_error(SourceError::Upstream {
        message: "portal down".into(),
        retryable: false,
    });
    let served = get(&s.broker, QUIET).await.unwrap();
    assert_eq!(served.access_key_id, first.access_key_id);
    // 15 s before expiry: inside the margin, so an error rather than dying credentials.
    tokio::time::advance(Duration::from_secs(9 * 60 + 45)).await;
    s.source.push_error(SourceError::Upstream {
        message: "portal down".into(),
        retryable: false,
    });
    let err = get(&s.broker, QUIET).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Upstream);
    assert_eq!(err.message, "portal down");
    let status = s.broker.profile_statuses();
    assert_eq!(status[0].last_error.as_deref(), Some("portal down"));
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_briefly() {
    let s = setup();
    for _ in 0..2 {
        s.source.push_error(SourceError::Upstream {
            message: "throttled".into(),
            retryable: true,
        });
    }
    let started = crate::clock::monotonic();
    get(&s.broker, QUIET).await.unwrap();
    assert_eq!(s.source.fetches(), 3);
    assert!(started.elapsed() < Duration::from_secs(2));
    // Four failures in a row exceed the three attempts.
    for _ in 0..4 {
        s.source.push_error(SourceError::Upstream {
            message: "throttled".into(),
            retryable: true,
        });
    }
    tokio::time::advance(Duration::from_secs(3600)).await;
    let err = get(&s.broker, QUIET).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Upstream);
    assert_eq!(s.source.fetches(), 6);
}

#[tokio::test(start_paused = true)]
async fn quiet_caller_gets_not_signed_in_at_once_and_a_login_starts() {
    let s = setup();
    s.source.signed_in.store(false, Ordering::SeqCst);
    let started = crate::clock::monotonic();
    let err = get(&s.broker, QUIET).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(err.code, ErrorCode::NotSignedIn);
    assert_eq!(err.message, "not signed in to source 'corp'");
    assert_eq!(err.hint.as_deref(), Some("rolecall login corp"));
    assert!(s.broker.logins().in_progress("corp"));
    // The login goes on without the caller; the next call succeeds.
    let st = s
        .broker
        .logins()
        .wait("corp", Duration::from_secs(30))
        .await;
    assert_eq!(st.phase, LoginPhase::Succeeded);
    get(&s.broker, QUIET).await.unwrap();
    assert_eq!(s.source.logins(), 1);
}

#[tokio::test(start_paused = true)]
async fn many_waiting_callers_share_one_login() {
    let s = setup();
    s.source.signed_in.store(false, Ordering::SeqCst);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let b = Arc::clone(&s.broker);
            // Half interactive (they wait), half not (they fail at once).
            let req = if i % 2 == 0 { TTY } else { QUIET };
            tokio::spawn(async move { get(&b, req).await })
        })
        .collect();
    let mut ok = 0;
    let mut not_signed_in = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code, ErrorCode::NotSignedIn);
                not_signed_in += 1;
            }
        }
    }
    assert_eq!((ok, not_signed_in), (25, 25));
    assert_eq!(s.source.logins(), 1);
    // One fetch found no session, one after the login served all waiting callers.
    assert_eq!(s.source.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn interactive_caller_waits_at_most_login_wait() {
    let s = setup();
    s.source.signed_in.store(false, Ordering::SeqCst);
    let req = CredentialRequest {
        interactive: true,
        wait: Some(Duration::from_secs(2)),
    };
    let err = get(&s.broker, req).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::LoginPending);
    assert_eq!(s.source.logins(), 1);
}

#[tokio::test(start_paused = true)]
async fn cancelled_login_backs_off_doubling_and_explicit_login_still_starts() {
    let s = setup();
    s.source.signed_in.store(false, Ordering::SeqCst);
    *s.source.login_outcome.lock().unwrap() = LoginOutcome::Cancel;
    let err = get(&s.broker, TTY).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::LoginFailed, "{err:?}");
    assert_eq!(s.source.logins(), 1);
    // Within the back-off: no new login, a clear error.
    let err = get(&s.broker, TTY).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::LoginBackoff);
    assert_eq!(err.hint.as_deref(), Some("rolecall login corp"));
    assert_eq!(s.source.logins(), 1);
    // After 2 minutes a new automatic login may start; it is cancelled too.
    tokio::time::advance(Duration::from_secs(121)).await;
    let err = get(&s.broker, TTY).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::LoginFailed);
    assert_eq!(s.source.logins(), 2);
    // Now the back-off is 4 minutes.
    tokio::time::advance(Duration::from_secs(200)).await;
    assert_eq!(
        get(&s.broker, QUIET).await.unwrap_err().code,
        ErrorCode::LoginBackoff
    );
    assert_eq!(s.source.logins(), 2);
    // An explicit login ignores the back-off.
    *s.source.login_outcome.lock().unwrap() = LoginOutcome::Succeed;
    let src: Arc<dyn Source> = s.source.clone();
    let mut rx = s
        .broker
        .logins()
        .request(src, LoginOptions::default(), Trigger::Explicit, false)
        .await
        .unwrap();
    let st = rx
        .wait_for(|st| st.phase != LoginPhase::Pending)
        .await
        .unwrap()
        .clone();
    assert_eq!(st.phase, LoginPhase::Succeeded);
    assert_eq!(s.source.logins(), 3);
    assert!(s.broker.logins().backoff_remaining("corp").is_none());
    get(&s.broker, QUIET).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn login_with_a_valid_session_succeeds_at_once_unless_forced() {
    let s = setup();
    let src: Arc<dyn Source> = s.source.clone();
    let logins = s.broker.logins();
    let rx = logins
        .request(
            src.clone(),
            LoginOptions::default(),
            Trigger::Explicit,
            false,
        )
        .await
        .unwrap();
    assert_eq!(rx.borrow().phase, LoginPhase::Succeeded);
    assert_eq!(s.source.logins(), 0);
    let rx = logins
        .request(
            src.clone(),
            LoginOptions::default(),
            Trigger::Explicit,
            true,
        )
        .await
        .unwrap();
    assert_eq!(rx.borrow().phase, LoginPhase::Pending);
    // A second request joins the running login; the long-poll sees the source's progress.
    let _rx2 = logins
        .request(src, LoginOptions::default(), Trigger::Explicit, true)
        .await
        .unwrap();
    tokio::task::yield_now().await;
    assert_eq!(logins.state("corp").user_code.as_deref(), Some("ABCD-EFGH"));
    let st = logins.wait("corp", Duration::from_secs(30)).await;
    assert_eq!(st.phase, LoginPhase::Succeeded);
    assert_eq!(s.source.logins(), 1);
}

#[tokio::test(start_paused = true)]
async fn unknown_profile_and_logout() {
    let s = setup();
    let err = s.broker.credentials("nope", QUIET).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownProfile);
    assert_eq!(err.message, "unknown profile 'nope'");
    get(&s.broker, QUIET).await.unwrap();
    s.broker.logout(Some("corp")).await.unwrap();
    // The cache of that source is gone with its session.
    assert_eq!(
        get(&s.broker, QUIET).await.unwrap_err().code,
        ErrorCode::NotSignedIn
    );
}

#[tokio::test(start_paused = true)]
async fn snapshot_written_atomically_with_expiry_and_needs_login() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("status.json");
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(T0));
    let s = setup();
    let broker = Broker::new(
        LoginCoordinator::new(LoginSettings::default()),
        clock,
        RetryPolicy::default(),
        Some(SnapshotWriter::new(path.clone())),
    );
    broker.set_registry((*s.broker.registry()).clone());
    let c = broker.credentials("dev", QUIET).await.unwrap();
    let snap: rolecall_proto::snapshot::Snapshot =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(snap.profiles["dev"].expires, Some(c.expiration));
    assert!(!snap.profiles["dev"].needs_login);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(c.secret_access_key.as_str()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_needs_login_after_a_login_refetches_without_a_second_login() {
    let s = setup();
    s.source.signed_in.store(false, Ordering::SeqCst);
    let b = Arc::clone(&s.broker);
    let caller = tokio::spawn(async move { get(&b, TTY).await });
    while s.source.logins() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The first fetch after the login still answers "needs login" (it raced the login).
    s.source
        .push_error(SourceError::NeedsLogin("stale token read".into()));
    let creds = caller.await.unwrap().unwrap();
    assert!(creds.access_key_id.starts_with("ASIAFAKE"));
    assert_eq!(s.source.logins(), 1);
    assert_eq!(s.source.fetches(), 3);
}

/// Sources whose login redeems every profile, and the roles no profile uses.
mod redeem_all;
/// Refetching ahead of expiry: when the cache serves, when it refetches.
mod threshold;
