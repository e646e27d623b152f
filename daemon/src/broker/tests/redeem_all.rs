//! A login of a source whose login product redeems every profile (entra-saml) fetches them
//! all once; `status` lists the roles no profile uses.

use super::*;

/// Adds a second profile of `corp`.
fn add_ops_profile(s: &Setup) {
    let mut reg = (*s.broker.registry()).clone();
    reg.config.profiles.insert(
        "ops".into(),
        ProfileConfig {
            source: "corp".into(),
            account: Some("222222222222".into()),
            account_name: None,
            role: "Ops".into(),
            principal: None,
            region: None,
            warm: false,
            duration: None,
            ..Default::default()
        },
    );
    s.broker.set_registry(reg);
}

async fn explicit_login(s: &Setup) {
    let src: Arc<dyn Source> = s.source.clone();
    s.broker
        .logins()
        .request(src, LoginOptions::default(), Trigger::Explicit, true)
        .await
        .unwrap();
    let st = s
        .broker
        .logins()
        .wait("corp", Duration::from_secs(30))
        .await;
    assert_eq!(st.phase, LoginPhase::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_login_of_a_redeem_all_source_fetches_each_of_its_profiles_once() {
    let s = setup();
    add_ops_profile(&s);
    s.source.redeem_all.store(true, Ordering::SeqCst);
    s.source.signed_in.store(false, Ordering::SeqCst);
    explicit_login(&s).await;
    // In the background, after the login answered.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.source.fetches(), 2);
    let dev = get(&s.broker, QUIET).await.unwrap();
    let ops = s.broker.credentials("ops", QUIET).await.unwrap();
    assert_ne!(dev.access_key_id, ops.access_key_id);
    assert_eq!(s.source.fetches(), 2, "both served from the cache");
}

#[tokio::test(start_paused = true)]
async fn a_login_of_another_source_fetches_nothing_by_itself() {
    let s = setup();
    add_ops_profile(&s);
    s.source.signed_in.store(false, Ordering::SeqCst);
    explicit_login(&s).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.source.fetches(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_auto_login_caller_of_a_redeem_all_source_gets_the_redeemed_credentials() {
    let s = setup();
    add_ops_profile(&s);
    s.source.redeem_all.store(true, Ordering::SeqCst);
    s.source.signed_in.store(false, Ordering::SeqCst);
    let creds = get(&s.broker, TTY).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The failed first fetch, then one per profile: the caller joined or reused the warm-up's.
    assert_eq!(s.source.fetches(), 3);
    assert_eq!(
        get(&s.broker, QUIET).await.unwrap().access_key_id,
        creds.access_key_id
    );
}

#[tokio::test(start_paused = true)]
async fn status_lists_the_roles_no_profile_uses() {
    let s = setup();
    add_ops_profile(&s);
    let other = "arn:aws:iam::333333333333:role/Other";
    *s.source.roles.lock().unwrap() = vec!["Dev".into(), other.into(), "Ops".into(), other.into()];
    let st = s.broker.source_statuses().await;
    assert_eq!(st[0].name, "corp");
    assert_eq!(st[0].unconfigured_roles, vec![other.to_string()]);
    s.source.roles.lock().unwrap().clear();
    assert!(s.broker.source_statuses().await[0]
        .unconfigured_roles
        .is_empty());
}
