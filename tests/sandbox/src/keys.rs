//! The sandbox's fixed, emulator-only key material (see `tests/sandbox/keys/README.md`):
//! the Entra token-signing key (JWTs, published as JWKS), the Entra SAML signing certificate
//! (assertions, federation metadata) and a "rogue" key nobody trusts (negative tests).
//!
//! The PEM files are compiled in so that the binary works from any directory (`rolecall demo`).

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};

const TOKEN_KEY: &str = include_str!("../keys/entra-token.key.pem");
const TOKEN_CERT: &str = include_str!("../keys/entra-token.crt.pem");
const SAML_KEY: &str = include_str!("../keys/entra-saml.key.pem");
const SAML_CERT: &str = include_str!("../keys/entra-saml.crt.pem");
const ROGUE_KEY: &str = include_str!("../keys/rogue.key.pem");
const ROGUE_CERT: &str = include_str!("../keys/rogue.crt.pem");

/// One RSA key pair with its self-signed certificate, in every form the sandbox needs.
pub struct KeyPair {
    /// Key id for JWT headers and the JWKS (base64url of the first 20 bytes of the
    /// certificate's SHA-256; Entra uses a 20-byte thumbprint of the same length).
    pub kid: String,
    /// PKCS#1 DER private key, the form xmlsec loads for signing.
    pub private_der: Vec<u8>,
    /// DER certificate (what SAML metadata and `KeyInfo` carry, base64).
    pub cert_der: Vec<u8>,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// Modulus and exponent, base64url without padding (JWK `n`, `e`).
    pub n: String,
    pub e: String,
}

// Key material is never printed: the Debug form names the key only.
impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    fn load(key_pem: &str, cert_pem: &str) -> KeyPair {
        // These PEMs are committed with the crate; failing to parse them is a build defect.
        let key = RsaPrivateKey::from_pkcs8_pem(key_pem).expect("sandbox key PEM is valid PKCS#8");
        let private_der = key
            .to_pkcs1_der()
            .expect("RSA key encodes as PKCS#1")
            .as_bytes()
            .to_vec();
        let cert_der = pem_body(cert_pem);
        let thumb = Sha256::digest(&cert_der);
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        KeyPair {
            kid: URL_SAFE_NO_PAD.encode(&thumb[..20]),
            encoding: EncodingKey::from_rsa_der(&private_der),
            decoding: DecodingKey::from_rsa_components(&n, &e).expect("valid RSA components"),
            private_der,
            cert_der,
            n,
            e,
        }
    }

    /// The certificate as one base64 line (SAML `X509Certificate`, JWK `x5c`).
    pub fn cert_b64(&self) -> String {
        STANDARD.encode(&self.cert_der)
    }
}

/// Decodes the base64 body of a single-block PEM file.
fn pem_body(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    STANDARD.decode(body).expect("sandbox PEM body is base64")
}

/// Signs Entra ID tokens and access tokens.
pub fn token_key() -> &'static KeyPair {
    static K: OnceLock<KeyPair> = OnceLock::new();
    K.get_or_init(|| KeyPair::load(TOKEN_KEY, TOKEN_CERT))
}

/// Signs Entra SAML assertions; the certificate IAM SAML providers trust.
pub fn saml_key() -> &'static KeyPair {
    static K: OnceLock<KeyPair> = OnceLock::new();
    K.get_or_init(|| KeyPair::load(SAML_KEY, SAML_CERT))
}

/// Trusted by nobody: used to produce wrongly signed assertions and tokens.
pub fn rogue_key() -> &'static KeyPair {
    static K: OnceLock<KeyPair> = OnceLock::new();
    K.get_or_init(|| KeyPair::load(ROGUE_KEY, ROGUE_CERT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_load_and_differ() {
        let (t, s, r) = (token_key(), saml_key(), rogue_key());
        assert_ne!(t.kid, s.kid);
        assert_ne!(s.kid, r.kid);
        assert_eq!(t.e, "AQAB");
        assert!(t.n.len() > 300, "2048-bit modulus");
        assert!(!format!("{t:?}").contains(&t.n));
    }
}
