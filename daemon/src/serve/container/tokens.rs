//! Container tokens: minted per profile by `rolecall container` / `rolecall exec`, presented by
//! SDKs in the `Authorization` header, revocable, and kept across daemon restarts.
//!
//! Only a SHA-256 of each token is kept (in memory and in the vault): a leaked secret store does
//! not hand out working tokens. Checking a presented token hashes it, finds the stored
//! entries whose hash starts with the same 8 bytes (an index, see [`index`]), and compares the
//! whole hash in constant time: one compare per request however many tokens exist, and no
//! lock (the index is swapped whole when tokens change).
//!
//! A token minted for containers has a lifetime (`container_token_ttl`, 12 h by default),
//! extended by `rolecall container <profile> --renew`; a token bound to a process
//! (`rolecall exec`) lives as long as that process. Signing out of a source revokes the tokens
//! of its profiles.

use super::digest::sha256;
use arc_swap::ArcSwap;
use base64::Engine as _;
use index::{Entry, Index};
use rand::RngCore as _;
use rolecall_proto::api::ContainerTokenStatus;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

mod index;
mod process;

/// Prefix of every token: lets secret scanners recognise one, and costs nothing.
pub const TOKEN_PREFIX: &str = "rct_";

/// Where tokens survive a restart (the daemon's vault). Synchronous: writes are rare (mint,
/// revoke) and small.
pub trait TokenVault: Send + Sync + 'static {
    fn load(&self) -> Result<Vec<StoredToken>, String>;
    fn save(&self, tokens: &[StoredToken]) -> Result<(), String>;
}

/// A live token a request presented, found in one lookup: which one it was (its id and bound
/// process, for the audit log; never the token) and, for a scoped session's token, the scope it
/// is served under.
#[derive(Debug)]
pub struct Presented {
    pub token: Arc<rolecall_proto::audit::TokenRef>,
    pub scope: Option<rolecall_proto::scope::SessionScope>,
}

impl Presented {
    fn of(e: &index::Entry) -> Self {
        Self {
            token: Arc::clone(&e.token),
            scope: e.stored.scope.clone(),
        }
    }
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

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("could not save container tokens: {0}")]
    Persist(String),
    #[error("could not read saved container tokens: {0}")]
    Load(String),
}

/// The live tokens. Readers (every request of the container endpoint) take no lock: they load
/// the current [`Index`]; writers (mint, renew, revoke, prune: rare) build a new one and swap it
/// in, one writer at a time.
pub struct TokenStore {
    index: ArcSwap<Index>,
    writer: Mutex<()>,
    vault: Option<Arc<dyn TokenVault>>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("tokens", &self.len())
            .finish()
    }
}

impl TokenStore {
    /// A store that lives only in memory (tests, or a daemon without a vault).
    pub fn in_memory() -> Self {
        Self::with(Vec::new(), None)
    }

    fn with(entries: Vec<Entry>, vault: Option<Arc<dyn TokenVault>>) -> Self {
        Self {
            index: ArcSwap::from_pointee(Index::new(entries)),
            writer: Mutex::new(()),
            vault,
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
                Some(Entry::new(s, hash))
            })
            .collect();
        Ok(Self::with(entries, Some(vault)))
    }

    /// Changes the token list: `change` edits a copy and answers what to report; the copy is
    /// saved (when `changed` says it differs) and then becomes the live index. Nothing changes
    /// when saving fails.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<Entry>) -> T,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T, TokenError> {
        // A panic in a writer cannot leave the index half-updated (it is swapped whole), so a
        // poisoned lock is still safe to use.
        let _one_writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut entries = self.index.load().entries.clone();
        let out = change(&mut entries);
        if changed(&out) {
            if let Some(v) = &self.vault {
                let list: Vec<StoredToken> = entries.iter().map(|e| e.stored.clone()).collect();
                v.save(&list).map_err(TokenError::Persist)?;
            }
            self.index.store(Arc::new(Index::new(entries)));
        }
        Ok(out)
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

    /// Mints a 256-bit random token as `new` says. Expired tokens are dropped on the way. A
    /// token that cannot be saved is not handed out: one that would silently vanish at the
    /// next restart is worse than none.
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
            bound_start: bound_pid.and_then(process::start_time),
            expires: new.expires,
            source: new.source.map(str::to_string),
            scope: new.scope.clone(),
        };
        let entry = Entry::new(stored.clone(), hash);
        self.update(
            |entries| {
                entries.retain(|e| live(&e.stored, now));
                entries.push(entry);
            },
            |_| true,
        )?;
        Ok(Minted {
            id: stored.id,
            token,
            profile: stored.profile,
            expires: stored.expires,
        })
    }

    /// Whether `presented` is a live token for `profile` at `now`.
    pub fn verify(&self, profile: &str, presented: Option<&[u8]>, now: i64) -> bool {
        self.verified(profile, presented, now).is_some()
    }

    /// The profile a live `presented` token was minted for, `None` for a missing, wrong,
    /// expired or revoked one: what the Pod Identity route (`/v1/credentials`, whose URL names
    /// no profile) serves.
    pub fn profile_of(&self, presented: Option<&[u8]>, now: i64) -> Option<String> {
        self.identify(presented, now).map(|(profile, _)| profile)
    }

    /// [`TokenStore::profile_of`] with what the token is (for the audit log and the scope).
    pub fn identify(&self, presented: Option<&[u8]>, now: i64) -> Option<(String, Presented)> {
        let index = self.index.load();
        let e = index.find(&sha256(presented?), None, now)?;
        Some((e.stored.profile.clone(), Presented::of(e)))
    }

    /// Which live token for `profile` `presented` is; `None` for a missing, wrong, revoked,
    /// expired or other-profile one, all alike.
    pub fn verified(&self, profile: &str, presented: Option<&[u8]>, now: i64) -> Option<Presented> {
        let index = self.index.load();
        let e = index.find(&sha256(presented?), Some(profile), now)?;
        Some(Presented::of(e))
    }

    /// Gives every live token of `profile` that has a lifetime the new end `expires`; answers
    /// how many were renewed.
    pub fn renew(&self, profile: &str, now: i64, expires: i64) -> Result<usize, TokenError> {
        self.update(
            |entries| {
                let mut n = 0;
                for e in entries.iter_mut() {
                    if e.stored.profile == profile
                        && e.stored.expires.is_some()
                        && live(&e.stored, now)
                    {
                        e.stored.expires = Some(expires);
                        n += 1;
                    }
                }
                n
            },
            |n| *n > 0,
        )
    }

    /// Drops expired tokens; answers their ids.
    pub fn prune_expired(&self, now: i64) -> Result<Vec<String>, TokenError> {
        if self
            .index
            .load()
            .entries
            .iter()
            .all(|e| live(&e.stored, now))
        {
            return Ok(Vec::new());
        }
        self.remove_where(|e| !live(e, now))
    }

    /// Removes the selected tokens; answers how many went.
    pub fn revoke(&self, which: &Revoke) -> Result<usize, TokenError> {
        Ok(self.remove_where(|e| which.selects(e))?.len())
    }

    /// Revokes tokens bound to processes that are gone (or whose pid now names another
    /// process). Answers the ids revoked.
    pub fn reap_dead(&self) -> Result<Vec<String>, TokenError> {
        let dead = |e: &StoredToken| match e.bound_pid {
            Some(pid) => !process::alive(pid, e.bound_start),
            None => false,
        };
        if !self.index.load().entries.iter().any(|e| dead(&e.stored)) {
            return Ok(Vec::new());
        }
        self.remove_where(dead)
    }

    /// Removes the tokens `gone` selects; answers their ids.
    fn remove_where(&self, gone: impl Fn(&StoredToken) -> bool) -> Result<Vec<String>, TokenError> {
        self.update(
            |entries| {
                let ids = entries
                    .iter()
                    .filter(|e| gone(&e.stored))
                    .map(|e| e.stored.id.clone())
                    .collect::<Vec<_>>();
                entries.retain(|e| !gone(&e.stored));
                ids
            },
            |ids| !ids.is_empty(),
        )
    }

    /// What `rolecall status` shows: ids, profiles, creation, binding. Never the hashes.
    pub fn list(&self) -> Vec<ContainerTokenStatus> {
        self.index
            .load()
            .entries
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
        self.index.load().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether the token is within its lifetime (one without a lifetime is bound to a process).
fn live(t: &StoredToken, now: i64) -> bool {
    t.expires.is_none_or(|end| now < end)
}

#[cfg(test)]
mod tests;
