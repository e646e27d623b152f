//! The SHA-256 of a presented token, and the comparison of two such hashes: the container
//! tokens and the IMDS session tokens are both kept as hashes only.

use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq as _};

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Whether two hashes are equal, in constant time: the words' differences are or-ed together
/// and only the result is tested. (`subtle`'s slice comparison does the same a byte at a time
/// behind an optimisation barrier each, ~15 times the instructions; this runs on every request.)
pub(crate) fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> Choice {
    let mut diff = 0u64;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        diff |= word(x) ^ word(y);
    }
    diff.ct_eq(&0)
}

/// Eight bytes as a word (kept in memory only, so in the machine's byte order).
pub(crate) fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_ne_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_equal_only_when_every_byte_is() {
        let a = sha256(b"token");
        assert!(bool::from(same_hash(&a, &a)));
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!bool::from(same_hash(&a, &b)), "byte {i} bit {bit}");
            }
        }
    }
}
