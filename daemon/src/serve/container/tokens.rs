//! Container tokens: minted per profile by `rolecall container` / `rolecall exec`, presented by
//! SDKs in the `Authorization` header, revocable, and kept across daemon restarts.
//!
//! Only a SHA-256 of each token is kept (in memory and in the vault): a leaked secret store does
//! not hand out working tokens. Checking a presented token hashes it and compares it, in
//! constant time, against every stored hash, so that a missing, wrong, revoked or other-profile
//! token costs the same time as a right one.
//!
//! A token minted for containers has a lifetime (`container_token_ttl`, 12 h by default),
//! extended by `rolecall container <profile> --renew`; a token bound to a process
//! (`rolecall exec`) lives as long as that process. Signing out of a source revokes the tokens
//! of its profiles.

use base64::Engine as _;
use rand::RngCore as _;
use rolecall_proto::api::ContainerTokenStatus;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::sync::{Arc, RwLock};
use subtle::{Choice, ConstantTimeEq as _};
use zeroize::Zeroizing;

/// Prefix of every token: lets secret scanners recognise one, and costs nothing.
pub const TOKEN_PREFIX: &str = "rct_";

/// Where tokens survive a restart (the daemon's vault). Synchronous: writes are rare (mint,
/// revoke) and small.
pub trait TokenVault: Send + Sync + 'static {
    fn load(&self) -> Result<Vec<StoredToken>, String>;
    fn save(&self, tokens: &[StoredToken]) -> Result<(), String>;
}

/// One token as persisted: its hash, never the token itself.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredToken {
    pub id: String,
    pub profile: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// Epoch seconds.
    pub created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_pid: Option<u32>,
    /// The bound process's start time (Linux: /proc/<pid>/stat field 22), so that a reused pid
    /// does not keep a token alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_start: Option<u64>,
    /// Epoch seconds after which the token is refused; `None` only for tokens bound to a
    /// process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// The source of the profile when minted (a logout of it revokes the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A token of a scoped session (`rolecall exec --read-only`): it is served only credentials
    /// narrowed by this scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<rolecall_proto::scope::SessionScope>,
}

/// What a saved token without a lifetime (made before tokens had one) is given.
pub const LEGACY_TTL_SECS: i64 = 12 * 3600;

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("id", &self.id)
            .field("profile", &self.profile)
            .field("created", &self.created)
            .field("bound_pid", &self.bound_pid)
            .field("expires", &self.expires)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A freshly minted token: the only time the secret exists in the daemon.
pub struct Minted {
    pub id: String,
    pub token: Zeroizing<String>,
    pub profile: String,
    pub expires: Option<i64>,
}

/// What a new token is scoped to.
#[derive(Debug, Clone, Default)]
pub struct NewToken<'a> {
    pub profile: &'a str,
    /// The profile's source, for revocation at its logout.
    pub source: Option<&'a str>,
    /// Revoked when this process is gone (then no lifetime is needed).
    pub bound_pid: Option<u32>,
    /// Epoch seconds after which the token is refused.
    pub expires: Option<i64>,
    /// Only credentials narrowed by this scope are served to the token.
    pub scope: Option<rolecall_proto::scope::SessionScope>,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("id", &self.id)
            .field("token", &"** redacted **")
            .field("profile", &self.profile)
            .field("expires", &self.expires)
            .finish()
    }
}

/// Which tokens to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoke {
    Id(String),
    Profile(String),
    /// Tokens minted under this source, or (for tokens saved without one) of these profiles.
    Source {
        source: String,
        profiles: Vec<String>,
    },
    All,
}

impl Revoke {
    fn selects(&self, t: &StoredToken) -> bool {
        match self {
            Revoke::Id(id) => &t.id == id,
            Revoke::Profile(p) => &t.profile == p,
            Revoke::Source { source, profiles } => match &t.source {
                Some(s) => s == source,
                None => profiles.contains(&t.profile),
            },
            Revoke::All => true,
        }
    }
}

#[derive(Clone)]
struct Entry {
    stored: StoredToken,
    hash: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("could not save container tokens: {0}")]
    Persist(String),
    #[error("could not read saved container tokens: {0}")]
    Load(String),
}

pub struct TokenStore {
    entries: RwLock<Vec<Entry>>,
    vault: Option<Arc<dyn TokenVault>>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("tokens", &self.read().len())
            .finish()
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

impl TokenStore {
    /// A store that lives only in memory (tests, or a daemon without a vault).
    pub fn in_memory() -> Self {
        Self {
            entries: RwLock::new(Vec::new()),
            vault: None,
        }
    }

    /// Loads the tokens saved in the vault. Entries whose hash does not parse are dropped (they
    /// could never match).
    pub fn load(vault: Arc<dyn TokenVault>) -> Result<Self, TokenError> {
        let stored = vault.load().map_err(TokenError::Load)?;
        let entries = stored
            .into_iter()
            .filter_map(|mut s| {
                let bytes = hex::decode(&s.sha256).ok()?;
                let hash: [u8; 32] = bytes.try_into().ok()?;
                if s.expires.is_none() && s.bound_pid.is_none() {
                    // Saved before tokens had a lifetime: give it the default one from its
                    // creation rather than forever.
                    s.expires = Some(s.created.saturating_add(LEGACY_TTL_SECS));
                }
                Some(Entry { stored: s, hash })
            })
            .collect();
        Ok(Self {
            entries: RwLock::new(entries),
            vault: Some(vault),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Entry>> {
        // A panic while holding the lock cannot leave the Vec half-updated (every mutation
        // is a single push/retain), so a poisoned lock is still safe to use.
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Entry>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, entries: &[Entry]) -> Result<(), TokenError> {
        match &self.vault {
            Some(v) => {
                let list: Vec<StoredToken> = entries.iter().map(|e| e.stored.clone()).collect();
                v.save(&list).map_err(TokenError::Persist)
            }
            None => Ok(()),
        }
    }

    /// Mints a 256-bit random token scoped to `profile` (and, optionally, to a process), with
    /// no lifetime (tests and process-bound tokens; see [`TokenStore::mint_token`]).
    pub fn mint(
        &self,
        profile: &str,
        bound_pid: Option<u32>,
        now: i64,
    ) -> Result<Minted, TokenError> {
        self.mint_token(
            &NewToken {
                profile,
                bound_pid,
                ..NewToken::default()
            },
            now,
        )
    }

    /// Mints a 256-bit random token as `new` says. Expired tokens are dropped on the way.
    pub fn mint_token(&self, new: &NewToken<'_>, now: i64) -> Result<Minted, TokenError> {
        let (profile, bound_pid) = (new.profile, new.bound_pid);
        let mut raw = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(raw.as_mut());
        let token = Zeroizing::new(format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref())
        ));
        let mut idb = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut idb);
        let hash = sha256(token.as_bytes());
        let stored = StoredToken {
            id: hex::encode(idb),
            profile: profile.to_string(),
            sha256: hex::encode(hash),
            created: now,
            bound_pid,
            bound_start: bound_pid.and_then(process_start_time),
            expires: new.expires,
            source: new.source.map(str::to_string),
            scope: new.scope.clone(),
        };
        let mut entries = self.write();
        entries.retain(|e| live(&e.stored, now));
        entries.push(Entry {
            stored: stored.clone(),
            hash,
        });
        if let Err(e) = self.persist(&entries) {
            // A token that would silently vanish at the next restart is worse than none.
            entries.retain(|e| e.stored.id != stored.id);
            return Err(e);
        }
        Ok(Minted {
            id: stored.id,
            token,
            profile: stored.profile,
            expires: stored.expires,
        })
    }

    /// The scope a token (by id) was minted with: `None` for a token of the profile's own
    /// credentials.
    pub fn scope_of(&self, id: &str) -> Option<rolecall_proto::scope::SessionScope> {
        self.read()
            .iter()
            .find(|e| e.stored.id == id)
            .and_then(|e| e.stored.scope.clone())
    }

    /// Whether `presented` is a live token for `profile` at `now`. Runs in time that depends
    /// only on the number of stored tokens, not on which (if any) matched.
    pub fn verify(&self, profile: &str, presented: Option<&[u8]>, now: i64) -> bool {
        let hash = sha256(presented.unwrap_or_default());
        let entries = self.read();
        let mut ok = Choice::from(0u8);
        for e in entries.iter() {
            let same_token = hash.ct_eq(&e.hash);
            let same_profile = e.stored.profile.as_bytes().ct_eq(profile.as_bytes());
            ok |= same_token & same_profile & Choice::from(live(&e.stored, now) as u8);
        }
        bool::from(ok & Choice::from(presented.is_some() as u8))
    }

    /// The profile a live `presented` token was minted for, `None` for a missing, wrong,
    /// expired or revoked one: what the Pod Identity route (`/v1/credentials`, whose URL names
    /// no profile) serves. Like [`TokenStore::verify`], every stored hash is compared, in
    /// constant time, whichever matches.
    pub fn profile_of(&self, presented: Option<&[u8]>, now: i64) -> Option<String> {
        use subtle::ConditionallySelectable as _;
        let presented = presented?;
        let hash = sha256(presented);
        let entries = self.read();
        let mut found = Choice::from(0u8);
        let mut index = 0u64;
        for (i, e) in entries.iter().enumerate() {
            let hit = hash.ct_eq(&e.hash) & Choice::from(live(&e.stored, now) as u8);
            index = u64::conditional_select(&index, &(i as u64), hit);
            found |= hit;
        }
        let i = usize::try_from(index).ok()?;
        bool::from(found).then(|| entries[i].stored.profile.clone())
    }

    /// As [`TokenStore::verify`], answering which token matched (its id and bound process, for
    /// the audit log; never the token). Every stored token is compared in constant time.
    pub fn verified(
        &self,
        profile: &str,
        presented: Option<&[u8]>,
        now: i64,
    ) -> Option<rolecall_proto::audit::TokenRef> {
        let presented = presented?;
        let hash = sha256(presented);
        let entries = self.read();
        let mut found = None;
        for e in entries.iter() {
            let same_token = hash.ct_eq(&e.hash);
            let same_profile = e.stored.profile.as_bytes().ct_eq(profile.as_bytes());
            if bool::from(same_token & same_profile & Choice::from(live(&e.stored, now) as u8)) {
                found = Some(rolecall_proto::audit::TokenRef {
                    id: e.stored.id.clone(),
                    bound_pid: e.stored.bound_pid,
                });
            }
        }
        found
    }

    /// Gives every live token of `profile` that has a lifetime the new end `expires`; answers
    /// how many were renewed.
    pub fn renew(&self, profile: &str, now: i64, expires: i64) -> Result<usize, TokenError> {
        let mut entries = self.write();
        let mut next: Vec<Entry> = entries.clone();
        let mut n = 0;
        for e in next.iter_mut() {
            if e.stored.profile == profile && e.stored.expires.is_some() && live(&e.stored, now) {
                e.stored.expires = Some(expires);
                n += 1;
            }
        }
        if n > 0 {
            self.persist(&next)?;
            *entries = next;
        }
        Ok(n)
    }

    /// Drops expired tokens; answers their ids.
    pub fn prune_expired(&self, now: i64) -> Result<Vec<String>, TokenError> {
        let mut entries = self.write();
        let gone: Vec<String> = entries
            .iter()
            .filter(|e| !live(&e.stored, now))
            .map(|e| e.stored.id.clone())
            .collect();
        if !gone.is_empty() {
            let kept: Vec<Entry> = entries
                .iter()
                .filter(|e| live(&e.stored, now))
                .cloned()
                .collect();
            self.persist(&kept)?;
            *entries = kept;
        }
        Ok(gone)
    }

    /// Removes the selected tokens; answers how many went.
    pub fn revoke(&self, which: &Revoke) -> Result<usize, TokenError> {
        let mut entries = self.write();
        let before = entries.len();
        let kept: Vec<Entry> = entries
            .iter()
            .filter(|e| !which.selects(&e.stored))
            .cloned()
            .collect();
        let removed = before - kept.len();
        if removed > 0 {
            self.persist(&kept)?;
            *entries = kept;
        }
        Ok(removed)
    }

    /// Revokes tokens bound to processes that are gone (or whose pid now names another
    /// process). Answers the ids revoked.
    pub fn reap_dead(&self) -> Result<Vec<String>, TokenError> {
        let dead: Vec<String> = self
            .read()
            .iter()
            .filter(|e| match e.stored.bound_pid {
                Some(pid) => !process_alive(pid, e.stored.bound_start),
                None => false,
            })
            .map(|e| e.stored.id.clone())
            .collect();
        if dead.is_empty() {
            return Ok(dead);
        }
        let mut entries = self.write();
        let kept: Vec<Entry> = entries
            .iter()
            .filter(|e| !dead.contains(&e.stored.id))
            .cloned()
            .collect();
        self.persist(&kept)?;
        *entries = kept;
        Ok(dead)
    }

    /// What `rolecall status` shows: ids, profiles, creation, binding. Never the hashes.
    pub fn list(&self) -> Vec<ContainerTokenStatus> {
        self.read()
            .iter()
            .map(|e| ContainerTokenStatus {
                id: e.stored.id.clone(),
                profile: e.stored.profile.clone(),
                created: e.stored.created,
                bound_pid: e.stored.bound_pid,
                expires: e.stored.expires,
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether the token is within its lifetime (one without a lifetime is bound to a process).
fn live(t: &StoredToken, now: i64) -> bool {
    t.expires.is_none_or(|end| now < end)
}

/// Whether `pid` still runs and is the process the token was bound to.
fn process_alive(pid: u32, start: Option<u64>) -> bool {
    let Ok(pid_t) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence and permission; no signal is sent.
    let r = unsafe { libc::kill(pid_t, 0) };
    if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    match (start, process_start_time(pid)) {
        (Some(want), Some(now)) => want == now,
        // No start time recorded (or not on Linux): existence is all we can check.
        _ => true,
    }
}

/// The process's start time in clock ticks since boot (Linux), to tell a reused pid apart.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts with field 3 (state); starttime is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
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
        let start = process_start_time(me).expect("linux /proc");
        assert!(process_alive(me, Some(start)));
        assert!(!process_alive(me, Some(start + 1)));
    }

    #[test]
    fn tokens_expire_renew_and_old_saved_ones_get_a_lifetime() {
        let vault = Arc::new(MemVault::default());
        let s = TokenStore::load(vault.clone()).unwrap();
        let new = |expires| NewToken {
            profile: "dev",
            source: Some("corp"),
            bound_pid: None,
            expires,
            scope: None,
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
                    bound_pid: None,
                    expires: Some(1_000),
                    scope: None,
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
}
