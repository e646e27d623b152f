//! The live tokens as readers see them: a list, and an index from the first 8 bytes of each
//! token's SHA-256 to its entries.
//!
//! A presented token is hashed, its candidates are found by that prefix (almost always none or
//! one), and each candidate's whole hash is compared in constant time. The lookup's timing
//! depends only on the presented token's *hash*: learning whether some stored hash shares its
//! first 8 bytes with the hash of a guess tells nothing about a stored token (that would take
//! a SHA-256 preimage), so a wrong, revoked or other-profile token still gets the same answer
//! as a missing one, and the time no longer grows with the number of tokens.

use super::{live, StoredToken};
use rolecall_proto::audit::TokenRef;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use subtle::Choice;

use super::super::digest::{same_hash, word};

#[derive(Clone)]
pub(super) struct Entry {
    pub stored: StoredToken,
    pub hash: [u8; 32],
    /// What the audit log says of the token (its id and bound process, which never change),
    /// made once: a request takes a reference count, not a copy of the id.
    pub token: Arc<TokenRef>,
}

impl Entry {
    pub fn new(stored: StoredToken, hash: [u8; 32]) -> Self {
        let token = Arc::new(TokenRef {
            id: stored.id.clone(),
            bound_pid: stored.bound_pid,
        });
        Self {
            stored,
            hash,
            token,
        }
    }
}

fn prefix(hash: &[u8; 32]) -> u64 {
    word(&hash[..8])
}

pub(super) struct Index {
    pub entries: Vec<Entry>,
    /// The keys are SHA-256 bytes, uniform already: a multiply (Fx) spreads them as well as
    /// SipHash would.
    by_prefix: FxHashMap<u64, Vec<usize>>,
}

impl Index {
    pub fn new(entries: Vec<Entry>) -> Self {
        let mut by_prefix: FxHashMap<u64, Vec<usize>> =
            FxHashMap::with_capacity_and_hasher(entries.len(), Default::default());
        for (i, e) in entries.iter().enumerate() {
            by_prefix.entry(prefix(&e.hash)).or_default().push(i);
        }
        Self { entries, by_prefix }
    }

    /// The live entry whose hash is `hash` (and, when given, whose profile is `profile`).
    pub fn find(&self, hash: &[u8; 32], profile: Option<&str>, now: i64) -> Option<&Entry> {
        let candidates = self.by_prefix.get(&prefix(hash))?;
        candidates.iter().map(|&i| &self.entries[i]).find(|e| {
            // Profile names are no secret (the request's path names one): compared plainly.
            let same_profile = Choice::from(profile.is_none_or(|p| e.stored.profile == p) as u8);
            bool::from(
                same_hash(hash, &e.hash) & same_profile & Choice::from(live(&e.stored, now) as u8),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, profile: &str, hash: [u8; 32]) -> Entry {
        Entry::new(
            StoredToken {
                id: id.into(),
                profile: profile.into(),
                sha256: String::new(),
                created: 0,
                bound_pid: None,
                bound_start: None,
                expires: Some(100),
                source: None,
                scope: None,
            },
            hash,
        )
    }

    #[test]
    fn entries_sharing_a_prefix_are_told_apart_by_the_whole_hash() {
        let mut a = [7u8; 32];
        let mut b = [7u8; 32];
        a[31] = 1;
        b[31] = 2;
        let index = Index::new(vec![entry("a", "dev", a), entry("b", "prod", b)]);
        assert_eq!(index.find(&a, Some("dev"), 1).unwrap().stored.id, "a");
        assert_eq!(index.find(&b, None, 1).unwrap().stored.id, "b");
        // Right hash, other profile; right prefix, wrong rest; expired.
        assert!(index.find(&a, Some("prod"), 1).is_none());
        let mut c = a;
        c[31] = 3;
        assert!(index.find(&c, None, 1).is_none());
        assert!(index.find(&a, Some("dev"), 100).is_none());
    }
}
