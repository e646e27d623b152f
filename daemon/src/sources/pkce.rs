//! PKCE (RFC 7636, S256) verifier/challenge pairs and the unguessable `state` of the
//! authorization-code flow, shared by the identity-center and entra-oidc sources.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A code verifier (secret until redeemed) and its S256 challenge.
pub struct Pkce {
    pub verifier: Zeroizing<String>,
    pub challenge: String,
}

fn random_b64(n: usize) -> String {
    let mut b = Zeroizing::new(vec![0u8; n]);
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(&*b)
}

impl Pkce {
    pub fn new() -> Pkce {
        // 64 random bytes: 86 characters, within RFC 7636's 43..=128.
        let verifier = Zeroizing::new(random_b64(64));
        let challenge = challenge_of(&verifier);
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// The S256 challenge of a verifier.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh unguessable `state`.
pub fn new_state() -> String {
    random_b64(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_an_independent_implementation() {
        // Expected value computed with Python's hashlib + base64.urlsafe_b64encode.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mJ92K9q3JZ4mM-PyM4y4h3RuXOuI4gk"),
            "DzCh9NP_QONmK6LjPuhUdcYMPQ77soemhdACo7Da8C0"
        );
    }

    #[test]
    fn challenge_is_s256_of_a_fresh_verifier() {
        let p = Pkce::new();
        assert_eq!(p.verifier.len(), 86);
        assert_eq!(
            p.challenge,
            URL_SAFE_NO_PAD.encode(Sha256::digest(p.verifier.as_bytes()))
        );
        assert_ne!(Pkce::new().verifier, p.verifier);
        assert_ne!(new_state(), new_state());
    }
}
