//! The token store: minting, verification, persistence, revocation, expiry.
use super::*;
use std::sync::Mutex;

#[derive(Default)]
struct MemVault {
    saved: Mutex<Vec<StoredToken>>,
    fail: std::sync::atomic::AtomicBool,
}

impl TokenVault for MemVault {
    fn load(&self) -> Result<Vec<StoredToken>, String> {
        Ok(self.saved.lock().unwrap().clone())
    }
    fn save(&self, tokens: &[StoredToken]) -> Result<(), String> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("disk full".into());
        }
        *self.saved.lock().unwrap() = tokens.to_vec();
        Ok(())
    }
}

#[test]
fn tokens_are_256_bit_url_safe_and_scoped_to_their_profile() {
    let s = TokenStore::in_memory();
    let m = s.mint("dev", None, 1).unwrap();
    let body = m.token.strip_prefix(TOKEN_PREFIX).unwrap();
    assert_eq!(body.len(), 43);
    assert!(body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert!(s.verify("dev", Some(m.token.as_bytes()), 1));
    assert!(!s.verify("prod", Some(m.token.as_bytes()), 1));
    assert!(!s.verify("dev", None, 1));
    assert!(!s.verify("dev", Some(b""), 1));
    assert!(!s.verify("dev", Some(&m.token.as_bytes()[..20]), 1));
    let other = s.mint("dev", None, 1).unwrap();
    assert_ne!(*other.token, *m.token);
    assert_ne!(other.id, m.id);
}

#[test]
fn only_hashes_are_persisted_and_they_survive_a_reload() {
    let vault = Arc::new(MemVault::default());
    let s = TokenStore::load(vault.clone()).unwrap();
    let m = s.mint("dev", None, 7).unwrap();
    let saved = vault.saved.lock().unwrap().clone();
    assert_eq!(saved.len(), 1);
    let json = serde_json::to_string(&saved).unwrap();
    assert!(!json.contains(m.token.as_str()));
    assert!(!json.contains(&m.token[TOKEN_PREFIX.len()..]));
    assert!(!format!("{saved:?}").contains(&saved[0].sha256));

    let again = TokenStore::load(vault.clone()).unwrap();
    assert!(again.verify("dev", Some(m.token.as_bytes()), 1));
    assert_eq!(again.list()[0].created, 7);
}

#[test]
fn a_token_that_cannot_be_saved_is_not_handed_out() {
    let vault = Arc::new(MemVault::default());
    let s = TokenStore::load(vault.clone()).unwrap();
    vault.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(
        s.mint("dev", None, 1),
        Err(TokenError::Persist(_))
    ));
    assert!(s.is_empty());
}

#[test]
fn revoke_by_id_profile_and_all() {
    let vault = Arc::new(MemVault::default());
    let s = TokenStore::load(vault.clone()).unwrap();
    let a = s.mint("dev", None, 1).unwrap();
    let b = s.mint("dev", None, 1).unwrap();
    let c = s.mint("prod", None, 1).unwrap();
    assert_eq!(s.revoke(&Revoke::Id(a.id.clone())).unwrap(), 1);
    assert!(!s.verify("dev", Some(a.token.as_bytes()), 1));
    assert!(s.verify("dev", Some(b.token.as_bytes()), 1));
    assert_eq!(s.revoke(&Revoke::Profile("dev".into())).unwrap(), 1);
    assert!(!s.verify("dev", Some(b.token.as_bytes()), 1));
    assert!(s.verify("prod", Some(c.token.as_bytes()), 1));
    assert_eq!(s.revoke(&Revoke::All).unwrap(), 1);
    assert!(s.is_empty());
    assert!(vault.saved.lock().unwrap().is_empty());
}

#[test]
fn tokens_bound_to_a_gone_process_are_reaped() {
    let s = TokenStore::in_memory();
    let mut child = crate::spawn::std_command("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let bound = s.mint("dev", Some(child.id()), 1).unwrap();
    let mine = s.mint("dev", Some(std::process::id()), 1).unwrap();
    let free = s.mint("dev", None, 1).unwrap();
    assert!(s.reap_dead().unwrap().is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(s.reap_dead().unwrap(), vec![bound.id.clone()]);
    assert!(!s.verify("dev", Some(bound.token.as_bytes()), 1));
    assert!(s.verify("dev", Some(mine.token.as_bytes()), 1));
    assert!(s.verify("dev", Some(free.token.as_bytes()), 1));
}

#[test]
fn a_reused_pid_does_not_keep_a_token_alive() {
    let me = std::process::id();
    let start = process::start_time(me).expect("linux /proc");
    assert!(process::alive(me, Some(start)));
    assert!(!process::alive(me, Some(start + 1)));
}

#[test]
fn tokens_expire_renew_and_old_saved_ones_get_a_lifetime() {
    let vault = Arc::new(MemVault::default());
    let s = TokenStore::load(vault.clone()).unwrap();
    let new = |expires| NewToken {
        profile: "dev",
        source: Some("corp"),
        scope: None,
        bound_pid: None,
        expires,
    };
    let m = s.mint_token(&new(Some(100)), 10).unwrap();
    assert!(s.verify("dev", Some(m.token.as_bytes()), 99));
    assert!(!s.verify("dev", Some(m.token.as_bytes()), 100));
    assert_eq!(s.renew("dev", 50, 500).unwrap(), 1);
    assert!(s.verify("dev", Some(m.token.as_bytes()), 499));
    // An expired token is not renewed back to life, and goes at the next prune.
    assert_eq!(s.renew("dev", 600, 900).unwrap(), 0);
    assert_eq!(s.prune_expired(600).unwrap(), vec![m.id.clone()]);
    assert!(vault.saved.lock().unwrap().is_empty());

    // A token saved without a lifetime gets the default one from its creation.
    let mut old = StoredToken {
        id: "old".into(),
        profile: "dev".into(),
        sha256: hex::encode(sha256(b"rct_old")),
        created: 1_000,
        bound_pid: None,
        bound_start: None,
        expires: None,
        source: None,
        scope: None,
    };
    vault.save(std::slice::from_ref(&old)).unwrap();
    let again = TokenStore::load(vault.clone()).unwrap();
    assert!(again.verify("dev", Some(b"rct_old"), 1_000 + LEGACY_TTL_SECS - 1));
    assert!(!again.verify("dev", Some(b"rct_old"), 1_000 + LEGACY_TTL_SECS));
    old.bound_pid = Some(1);
    assert!(live(&old, i64::MAX));
}

#[test]
fn revoking_a_source_takes_its_tokens_only() {
    let s = TokenStore::in_memory();
    let mk = |profile, source| {
        s.mint_token(
            &NewToken {
                profile,
                source,
                scope: None,
                bound_pid: None,
                expires: Some(1_000),
            },
            1,
        )
        .unwrap()
    };
    let a = mk("dev", Some("corp"));
    let b = mk("prod", Some("other"));
    let c = mk("legacy-dev", None);
    let which = Revoke::Source {
        source: "corp".into(),
        profiles: vec!["legacy-dev".into()],
    };
    assert_eq!(s.revoke(&which).unwrap(), 2);
    assert!(!s.verify("dev", Some(a.token.as_bytes()), 2));
    assert!(!s.verify("legacy-dev", Some(c.token.as_bytes()), 2));
    assert!(s.verify("prod", Some(b.token.as_bytes()), 2));
}

#[test]
fn a_token_names_its_own_profile_while_live_and_only_then() {
    let s = TokenStore::in_memory();
    let mk = |profile| {
        s.mint_token(
            &NewToken {
                profile,
                expires: Some(100),
                ..NewToken::default()
            },
            1,
        )
        .unwrap()
    };
    let dev = mk("dev");
    let prod = mk("prod");
    let of = |t: &str, now| s.profile_of(Some(t.as_bytes()), now);
    assert_eq!(of(&dev.token, 2).as_deref(), Some("dev"));
    assert_eq!(of(&prod.token, 2).as_deref(), Some("prod"));
    assert_eq!(of("rct_wrong", 2), None);
    assert_eq!(of("", 2), None);
    assert_eq!(s.profile_of(None, 2), None);
    // Expired, then revoked: no profile.
    assert_eq!(of(&dev.token, 100), None);
    s.revoke(&Revoke::Id(prod.id.clone())).unwrap();
    assert_eq!(of(&prod.token, 2), None);
}

#[test]
fn debug_output_redacts() {
    let s = TokenStore::in_memory();
    let m = s.mint("dev", None, 1).unwrap();
    assert!(!format!("{m:?}").contains(m.token.as_str()));
}
