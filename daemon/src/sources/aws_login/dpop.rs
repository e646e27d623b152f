//! DPoP proofs (RFC 9449) as the AWS CLI sends them to Sign-In: a JWS with header
//! `{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","x","y","crv":"P-256"}}` and claims
//! `{"htm":"POST","htu":<the token URL>,"iat":<now>,"jti":<uuid4>}`, signed with the session's
//! P-256 key (the cache's `dpopKey`, SEC1 "EC PRIVATE KEY" PEM).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

pub struct DpopKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl DpopKey {
    /// Reads a SEC1 PEM (`-----BEGIN EC PRIVATE KEY-----`) P-256 key with its public key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        let der = zeroize::Zeroizing::new(
            STANDARD
                .decode(body)
                .map_err(|_| "the cached dpopKey is not PEM".to_string())?,
        );
        let (scalar, point) = sec1_parts(&der)
            .ok_or("the cached dpopKey is not a P-256 EC PRIVATE KEY with its public key")?;
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            scalar,
            point,
            &rng,
        )
        .map_err(|_| "the cached dpopKey is not a valid P-256 key".to_string())?;
        Ok(DpopKey { pair, rng })
    }

    /// The proof for `POST htu` at `iat`.
    pub fn proof(&self, htu: &str, iat: i64) -> Result<String, String> {
        let point = self.pair.public_key().as_ref();
        let (x, y) = (&point[1..33], &point[33..65]);
        let header = serde_json::json!({
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": {"kty": "EC", "x": B64URL.encode(x), "y": B64URL.encode(y), "crv": "P-256"},
        });
        let claims = serde_json::json!({
            "htm": "POST",
            "htu": htu,
            "iat": iat,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| "cannot sign the DPoP proof".to_string())?;
        Ok(format!("{input}.{}", B64URL.encode(sig.as_ref())))
    }
}

/// The private scalar and the uncompressed public point of a SEC1 `ECPrivateKey`:
/// `SEQUENCE { INTEGER 1, OCTET STRING d, [0] params OPTIONAL, [1] BIT STRING Q OPTIONAL }`.
fn sec1_parts(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, seq, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, version, rest) = tlv(seq)?;
    if tag != 0x02 || version != [1] {
        return None;
    }
    let (tag, scalar, mut rest) = tlv(rest)?;
    if tag != 0x04 || scalar.len() != 32 {
        return None;
    }
    while !rest.is_empty() {
        let (tag, value, next) = tlv(rest)?;
        if tag == 0xa1 {
            let (tag, bits, _) = tlv(value)?;
            // A BIT STRING: one byte of unused bits (0), then 0x04 || X || Y.
            if tag == 0x03 && bits.len() == 66 && bits[0] == 0 && bits[1] == 4 {
                return Some((scalar, &bits[1..]));
            }
            return None;
        }
        rest = next;
    }
    None
}

/// One DER tag-length-value: (tag, value, what follows).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)? as usize;
    let (len, start) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 2 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = start.checked_add(len)?;
    Some((tag, b.get(start..end)?, b.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh key in the AWS CLI's format: ring makes PKCS#8, whose private key is the SEC1
    /// `ECPrivateKey` the CLI writes as `EC PRIVATE KEY`.
    fn cli_pem() -> String {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let (_, outer, _) = tlv(pkcs8.as_ref()).unwrap();
        let (_, _version, rest) = tlv(outer).unwrap();
        let (_, _algorithm, rest) = tlv(rest).unwrap();
        let (tag, sec1, _) = tlv(rest).unwrap();
        assert_eq!(tag, 0x04);
        let b64 = STANDARD.encode(sec1);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn a_proof_verifies_with_the_key_in_its_header() {
        let key = DpopKey::from_pem(&cli_pem()).unwrap();
        let proof = key
            .proof(
                "https://us-east-1.signin.aws.amazon.com/v1/token",
                1_800_000_000,
            )
            .unwrap();
        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["crv"], "P-256");
        assert!(
            header["jwk"].get("d").is_none(),
            "no private key in the header"
        );
        assert_eq!(claims["htm"], "POST");
        assert_eq!(
            claims["htu"],
            "https://us-east-1.signin.aws.amazon.com/v1/token"
        );
        assert_eq!(claims["iat"], 1_800_000_000);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
        let mut point = vec![4u8];
        point.extend(B64URL.decode(header["jwk"]["x"].as_str().unwrap()).unwrap());
        point.extend(B64URL.decode(header["jwk"]["y"].as_str().unwrap()).unwrap());
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            point,
        );
        let input = format!("{}.{}", parts[0], parts[1]);
        let sig = B64URL.decode(parts[2]).unwrap();
        public.verify(input.as_bytes(), &sig).unwrap();
        assert!(public.verify(b"something else", &sig).is_err());
        // A second proof has its own jti.
        let again = key.proof("https://x/v1/token", 1).unwrap();
        assert_ne!(again.split('.').nth(1), Some(parts[1]));
    }

    #[test]
    fn garbage_is_refused_with_one_line() {
        for bad in [
            "",
            "-----BEGIN EC PRIVATE KEY-----\nnot base64!\n-----END EC PRIVATE KEY-----",
            "-----BEGIN EC PRIVATE KEY-----\nMAMCAQE=\n-----END EC PRIVATE KEY-----",
        ] {
            let e = DpopKey::from_pem(bad).err().unwrap();
            assert!(e.contains("dpopKey") && !e.contains('\n'), "{e}");
        }
    }
}
