//! A captured or pasted `SAMLResponse`: the XML reader, the metadata reader and every check of
//! `saml::response::check`, with and without signature verification (xmlsec via samael).
//!
//! Input: one mode byte, then the response document (the target base64-encodes it, as the
//! browser capture hands it over; fuzzing the XML rather than its base64 keeps mutations
//! meaningful). Mode bit 0: verify against the sandbox's Entra SAML certificate. Mode bit 1:
//! expect `InResponseTo` = [`REQUEST_ID`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rolecall_daemon::saml::response::{self, Checked, Expectations};
use rolecall_daemon::saml::{metadata, xml};
use std::sync::OnceLock;
use time::OffsetDateTime;

/// The Audience the seeds are issued for.
pub const APP: &str = "https://signin.aws.amazon.com/saml#fuzz";
/// The AuthnRequest ID the seeds answer.
pub const REQUEST_ID: &str = "_fuzzrequest0001";
/// The fixed "now" of every check (2026-01-01T00:00:00Z), so corpus inputs replay the same.
pub const NOW: i64 = 1_767_225_600;

/// The sandbox's Entra SAML signing certificate (DER): what the signed seeds verify against.
fn certs() -> &'static [Vec<u8>] {
    static CERTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CERTS.get_or_init(|| {
        let pem = include_str!("../../sandbox/keys/entra-saml.crt.pem");
        let b64: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        vec![STANDARD
            .decode(b64)
            .expect("the sandbox certificate is base64")]
    })
}

pub fn run(data: &[u8]) {
    let _ = checked(data);
}

/// Runs the checks on the input and the properties on their outcome, which it returns
/// (`None`: not UTF-8 text).
pub fn checked(data: &[u8]) -> Option<Result<Checked, response::SamlError>> {
    let (&mode, doc) = data.split_first()?;
    let doc = std::str::from_utf8(doc).ok()?;
    // The tree readers on their own: anything is parsed or refused, never a panic.
    let _ = xml::parse(doc);
    let _ = metadata::signing_certs(doc);

    let now = OffsetDateTime::from_unix_timestamp(NOW).expect("NOW is a valid time");
    let exp = Expectations {
        app_identifier: APP,
        in_response_to: (mode & 2 != 0).then_some(REQUEST_ID),
        certs: (mode & 1 != 0).then(certs),
        now,
        skew: time::Duration::minutes(2),
    };
    let outcome = response::check(&STANDARD.encode(doc), &exp);
    match &outcome {
        Ok(Checked::Encrypted) => {}
        Ok(Checked::Assertion(a)) => {
            // What the source uses: at least one role pair, each a role and its provider,
            // sorted and without duplicates; redeemable now.
            assert!(!a.roles.is_empty(), "an accepted assertion without roles");
            assert!(
                a.roles.windows(2).all(|w| w[0] < w[1]),
                "roles not deduplicated"
            );
            for r in &a.roles {
                let again = response::role_pair(&format!("{},{}", r.role_arn, r.principal_arn));
                assert_eq!(again.as_ref(), Some(r), "role pair does not read back");
            }
            assert!(
                a.not_on_or_after > NOW - 120,
                "accepted an assertion that expired at {}",
                a.not_on_or_after
            );
        }
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "a multi-line error: {line:?}");
        }
    }
    Some(outcome)
}
