//! PKCE (RFC 7636, S256) verifier/challenge pairs and the unguessable `state` of the
//! authorization-code flow.

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
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

pub fn new_state() -> String {
    random_b64(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_s256_of_the_verifier() {
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
