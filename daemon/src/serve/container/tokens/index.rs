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
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use subtle::{Choice, ConstantTimeEq as _};

#[derive(Clone)]
pub(super) struct Entry {
    pub stored: StoredToken,
    pub hash: [u8; 32],
}

impl Entry {
    pub fn token_ref(&self) -> rolecall_proto::audit::TokenRef {
        rolecall_proto::audit::TokenRef {
            id: self.stored.id.clone(),
            bound_pid: self.stored.bound_pid,
        }
    }
}

pub(super) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn prefix(hash: &[u8; 32]) -> u64 {
    let mut p = [0u8; 8];
    p.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(p)
}

pub(super) struct Index {
    pub entries: Vec<Entry>,
    by_prefix: HashMap<u64, Vec<usize>>,
}

impl Index {
    pub fn new(entries: Vec<Entry>) -> Self {
        let mut by_prefix: HashMap<u64, Vec<usize>> = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            by_prefix.entry(prefix(&e.hash)).or_default().push(i);
        }
        Self { entries, by_prefix }
    }

    /// The live entry whose hash is `hash` (and, when given, whose profile is `profile`).
    pub fn find(&self, hash: &[u8; 32], profile: Option<&str>, now: i64) -> Option<&Entry> {
        let candidates = self.by_prefix.get(&prefix(hash))?;
        candidates.iter().map(|&i| &self.entries[i]).find(|e| {
            let same_profile = match profile {
                Some(p) => e.stored.profile.as_bytes().ct_eq(p.as_bytes()),
                None => Choice::from(1),
            };
            bool::from(
                hash.ct_eq(&e.hash) & same_profile & Choice::from(live(&e.stored, now) as u8),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, profile: &str, hash: [u8; 32]) -> Entry {
        Entry {
            stored: StoredToken {
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
        }
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
