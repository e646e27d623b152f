//! AWS Signature Version 4 verification (the `Authorization: AWS4-HMAC-SHA256 …` header form
//! that the SDKs send): canonical request, string to sign, HMAC-SHA256 key derivation, and a
//! constant-time comparison of the signature.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, PrimitiveDateTime};

type HmacSha256 = Hmac<Sha256>;

/// How far a request's `X-Amz-Date` may be from the server's clock (AWS allows 15 minutes).
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// The parts of an HTTP request that SigV4 covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The request path as received (already percent-encoded once).
    pub path: &'a str,
    /// The raw query string, without `?` (may be empty).
    pub query: &'a str,
    /// Header names (any case) and values as received.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The fields of a parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

/// A SigV4 failure, mapped by the caller to AWS's error codes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigV4Error {
    /// No Authorization header at all (AWS: `MissingAuthenticationToken`).
    #[error("Request is missing Authentication Token")]
    Missing,
    /// A malformed header (AWS: `IncompleteSignature`).
    #[error("{0}")]
    Incomplete(String),
    /// The signature does not match (AWS: `SignatureDoesNotMatch`).
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    Mismatch,
    /// The request time is too far from now (AWS: `SignatureDoesNotMatch`, "Signature expired").
    #[error("Signature expired: {request} is now earlier than {earliest} ({now} - 15 min.)")]
    Skewed {
        request: String,
        earliest: String,
        now: String,
    },
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses the Authorization header of `req` without checking the signature, so the caller can
/// look up the secret for the access key id.
pub fn parse_authorization(
    req: &SignedRequest<'_>,
) -> Result<(Credential, Vec<String>, String), SigV4Error> {
    let auth = header(req.headers, "authorization").ok_or(SigV4Error::Missing)?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        SigV4Error::Incomplete("Unsupported Authorization Type: expected AWS4-HMAC-SHA256".into())
    })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let incomplete = |what: &str| {
        SigV4Error::Incomplete(format!(
            "Authorization header requires '{what}' parameter. Authorization=AWS4-HMAC-SHA256"
        ))
    };
    let credential = credential.ok_or_else(|| incomplete("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("Signature"))?;
    let fields: Vec<&str> = credential.split('/').collect();
    if fields.len() != 5 || fields[4] != "aws4_request" || fields.iter().any(|f| f.is_empty()) {
        return Err(SigV4Error::Incomplete(
            "Credential should be scoped to a valid region and service, like 'AKID/YYYYMMDD/region/service/aws4_request'."
                .into(),
        ));
    }
    let cred = Credential {
        access_key_id: fields[0].to_string(),
        date: fields[1].to_string(),
        region: fields[2].to_string(),
        service: fields[3].to_string(),
    };
    let names = signed_headers
        .split(';')
        .map(|s| s.to_ascii_lowercase())
        .collect::<Vec<_>>();
    Ok((cred, names, signature.to_string()))
}

/// RFC 3986 encoding as SigV4 wants it: everything but unreserved characters, uppercase hex.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the request is signed for S3 (its credential scope's service), whose canonical
/// request differs: the path is used as sent, and the payload hash is the
/// `x-amz-content-sha256` header (which the S3 emulation checks against the body first).
fn signed_for_s3(req: &SignedRequest<'_>) -> bool {
    header(req.headers, "authorization").is_some_and(|a| a.contains("/s3/aws4_request"))
}

/// Builds the canonical request (SigV4 task 1). Non-S3 services encode the path a second time.
pub fn canonical_request(req: &SignedRequest<'_>, signed_headers: &[String]) -> String {
    let path = if req.path.is_empty() { "/" } else { req.path };
    let s3 = signed_for_s3(req);
    let canonical_uri = if s3 {
        path.to_string()
    } else {
        uri_encode(path, true)
    };
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| canonical_header_value(v))
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    // The verifier hashes the body it received. An `x-amz-content-sha256` header is only a signed
    // header like any other: trusting its value would let a replayed request carry another body.
    let payload_hash = match header(req.headers, "x-amz-content-sha256") {
        Some(declared) if s3 => declared.to_string(),
        _ => hex::encode(Sha256::digest(req.body)),
    };
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri,
        canonical_query(req.query),
        headers,
        signed_headers.join(";"),
        payload_hash
    )
}

/// Whether `s` has the shape of an AWS region name: a two-letter area, one or more words, a
/// number (`us-east-1`, `ap-southeast-2`, `us-gov-west-1`, `eu-isoe-west-1`, `cn-north-1`).
pub fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].len() <= 2
        && !parts[parts.len() - 1].is_empty()
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Derives the signing key: HMAC chain over date, region, service and "aws4_request".
pub fn signing_key(secret: &str, cred: &Credential) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), cred.date.as_bytes());
    let k_region = hmac(&k_date, cred.region.as_bytes());
    let k_service = hmac(&k_region, cred.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

fn amz(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(fmt).unwrap_or_default()
}

/// Verifies `req`'s signature with `secret` (the secret of `cred.access_key_id`) at `now`.
pub fn verify(
    req: &SignedRequest<'_>,
    cred: &Credential,
    signed_headers: &[String],
    signature: &str,
    secret: &str,
    now: OffsetDateTime,
) -> Result<(), SigV4Error> {
    let amz_date = header(req.headers, "x-amz-date").ok_or_else(|| {
        SigV4Error::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        )
    })?;
    let when = parse_amz_date(amz_date)
        .ok_or_else(|| SigV4Error::Incomplete(format!("Invalid X-Amz-Date {amz_date}")))?;
    if !amz_date.starts_with(&cred.date) {
        return Err(SigV4Error::Mismatch);
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let skew = (when - now).whole_seconds();
    if skew.abs() > MAX_SKEW_SECONDS {
        return Err(SigV4Error::Skewed {
            request: amz_date.to_string(),
            earliest: amz(now - time::Duration::seconds(MAX_SKEW_SECONDS)),
            now: amz(now),
        });
    }
    let creq = canonical_request(req, signed_headers);
    let scope = format!(
        "{}/{}/{}/aws4_request",
        cred.date, cred.region, cred.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(creq.as_bytes()))
    );
    let expected = hex::encode(hmac(&signing_key(secret, cred), string_to_sign.as_bytes()));
    let given = signature.to_ascii_lowercase();
    // Constant-time comparison: the verifier must not leak how many leading bytes matched.
    let mut mac = HmacSha256::new_from_slice(b"compare").expect("any key");
    mac.update(expected.as_bytes());
    let expected_tag = mac.finalize().into_bytes();
    let mut mac = HmacSha256::new_from_slice(b"compare").expect("any key");
    mac.update(given.as_bytes());
    if mac.verify_slice(&expected_tag).is_ok() {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of AWS's SigV4 documentation ("GET /?Action=ListUsers&Version=2010-05-08"
    // to IAM, access key AKIDEXAMPLE).
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn example_headers(sig: &str) -> Vec<(String, String)> {
        vec![
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ),
            ("Host".into(), "iam.amazonaws.com".into()),
            ("X-Amz-Date".into(), "20150830T123600Z".into()),
            (
                "Authorization".into(),
                format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={sig}"),
            ),
        ]
    }

    const EXAMPLE_SIG: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    fn now() -> OffsetDateTime {
        parse_amz_date("20150830T123700Z").unwrap()
    }

    fn check(
        headers: &[(String, String)],
        query: &str,
        at: OffsetDateTime,
    ) -> Result<(), SigV4Error> {
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query,
            headers,
            body: b"",
        };
        let (cred, names, sig) = parse_authorization(&req)?;
        verify(&req, &cred, &names, &sig, SECRET, at)
    }

    #[test]
    fn aws_documented_example_verifies() {
        let h = example_headers(EXAMPLE_SIG);
        check(&h, "Action=ListUsers&Version=2010-05-08", now()).unwrap();
    }

    #[test]
    fn any_change_breaks_it() {
        let h = example_headers(EXAMPLE_SIG);
        assert_eq!(
            check(&h, "Action=ListUsers&Version=2010-05-09", now()),
            Err(SigV4Error::Mismatch)
        );
        let h = example_headers(&EXAMPLE_SIG.replace('5', "6"));
        assert_eq!(
            check(&h, "Action=ListUsers&Version=2010-05-08", now()),
            Err(SigV4Error::Mismatch)
        );
    }

    #[test]
    fn skew_and_malformed() {
        let h = example_headers(EXAMPLE_SIG);
        let later = now() + time::Duration::minutes(20);
        assert!(matches!(
            check(&h, "Action=ListUsers&Version=2010-05-08", later),
            Err(SigV4Error::Skewed { .. })
        ));
        let h: Vec<(String, String)> = vec![(
            "Authorization".into(),
            "AWS4-HMAC-SHA256 Credential=x".into(),
        )];
        assert!(matches!(
            check(&h, "", now()),
            Err(SigV4Error::Incomplete(_))
        ));
        assert_eq!(check(&[], "", now()), Err(SigV4Error::Missing));
    }

    #[test]
    fn the_body_is_hashed_not_the_header_trusted() {
        // Sign a body with its hash in `x-amz-content-sha256`, then swap the body: the header
        // still names the old hash, the signature still matches it, the request must fail.
        let signed_body = b"Action=GetCallerIdentity&Version=2011-06-15";
        let mut headers = vec![
            ("Host".to_string(), "127.0.0.1:4566".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
            (
                "X-Amz-Content-Sha256".to_string(),
                hex::encode(Sha256::digest(signed_body)),
            ),
        ];
        let names: Vec<String> = ["host", "x-amz-content-sha256", "x-amz-date"]
            .map(String::from)
            .to_vec();
        let cred = Credential {
            access_key_id: "AKIDEXAMPLE".into(),
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "sts".into(),
        };
        let req = |body: &'static [u8], headers: &[(String, String)]| {
            let creq = canonical_request(
                &SignedRequest {
                    method: "POST",
                    path: "/",
                    query: "",
                    headers,
                    body,
                },
                &names,
            );
            let sts = format!(
                "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/sts/aws4_request\n{}",
                hex::encode(Sha256::digest(creq.as_bytes()))
            );
            hex::encode(hmac(&signing_key(SECRET, &cred), sts.as_bytes()))
        };
        let sig = req(signed_body, &headers);
        headers.push(("Authorization".into(), format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}")));
        let verify_body = |body: &[u8]| {
            let r = SignedRequest {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body,
            };
            let (c, n, s) = parse_authorization(&r).unwrap();
            verify(&r, &c, &n, &s, SECRET, now())
        };
        verify_body(signed_body).unwrap();
        assert_eq!(
            verify_body(b"Action=GetCallerIdentity&Version=2011-06-15&Tampered=1"),
            Err(SigV4Error::Mismatch)
        );
    }

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "eu-west-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "cn-north-1",
            "eu-isoe-west-1",
            "us-isob-east-1",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "",
            "global",
            "moon-base-1",
            "eu-west",
            "EU-WEST-1",
            "eu-west-1a",
            "eu--1",
            "eu-west-123",
            "eu_west_1",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn query_is_sorted_and_encoded() {
        assert_eq!(canonical_query("b=2&a=1&a=0&c=x y"), "a=0&a=1&b=2&c=x%20y");
    }
}
