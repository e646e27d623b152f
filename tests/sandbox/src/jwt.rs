//! RS256 JWTs as Entra issues them (ID tokens v2.0, access tokens v1.0) and their
//! verification for the STS emulation. Time checks are left to the caller, which owns the
//! sandbox clock (it may be shifted by tests).

use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Map, Value};

use crate::keys::{self, KeyPair};

/// Issuer of Entra v2.0 ID tokens for a tenant id. The real form, not the sandbox's address:
/// IAM OIDC providers are registered with exactly this string.
pub fn v2_issuer(tenant_id: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant_id}/v2.0")
}

/// Issuer of Entra v1.0 access tokens (the default for `api://…` resources).
pub fn v1_issuer(tenant_id: &str) -> String {
    format!("https://sts.windows.net/{tenant_id}/")
}

/// Signs `claims` with `key` (RS256, `kid` and `typ` headers as Entra sets them).
pub fn sign(claims: &Map<String, Value>, key: &KeyPair) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    header.typ = Some("JWT".into());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("RS256 signing cannot fail")
}

/// Why a token was refused; the text is safe to show (it never quotes the token).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("token signing algorithm {0} is not supported")]
    Algorithm(String),
    #[error("no key with the token's kid is published by the issuer")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
}

/// Verifies the signature of `token` against the sandbox's published Entra keys and returns
/// its claims. Only RS256 with a `kid` the JWKS lists is accepted.
pub fn verify(token: &str) -> Result<Map<String, Value>, JwtError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(JwtError::Algorithm(format!("{:?}", header.alg)));
    }
    let published = keys::token_key();
    if header.kid.as_deref() != Some(published.kid.as_str()) {
        return Err(JwtError::UnknownKey);
    }
    let mut validation = Validation::new(Algorithm::RS256);
    // Claims are checked by the STS emulation against the sandbox clock and the directory.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    match jsonwebtoken::decode::<Map<String, Value>>(token, &published.decoding, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => Err(JwtError::BadSignature),
            _ => Err(JwtError::Malformed),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> Map<String, Value> {
        json!({"iss": v2_issuer("t"), "aud": "c", "exp": 2_000_000_000u64})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn round_trip() {
        let t = sign(&claims(), keys::token_key());
        let c = verify(&t).unwrap();
        assert_eq!(c["aud"], "c");
        let h = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(h.kid.as_deref(), Some(keys::token_key().kid.as_str()));
    }

    #[test]
    fn rogue_key_refused() {
        let t = sign(&claims(), keys::rogue_key());
        assert_eq!(verify(&t), Err(JwtError::UnknownKey));
    }

    #[test]
    fn rogue_signature_under_trusted_kid_refused() {
        // Same kid as the real key, signature by another key.
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(keys::token_key().kid.clone());
        let t = jsonwebtoken::encode(&header, &claims(), &keys::rogue_key().encoding).unwrap();
        assert_eq!(verify(&t), Err(JwtError::BadSignature));
    }

    #[test]
    fn tampered_payload_refused() {
        let t = sign(&claims(), keys::token_key());
        let mut parts: Vec<&str> = t.split('.').collect();
        let other = sign(
            &json!({"aud": "evil"}).as_object().cloned().unwrap(),
            keys::token_key(),
        );
        parts[1] = other.split('.').nth(1).unwrap();
        assert_eq!(verify(&parts.join(".")), Err(JwtError::BadSignature));
        assert_eq!(verify("abc"), Err(JwtError::Malformed));
    }
}
