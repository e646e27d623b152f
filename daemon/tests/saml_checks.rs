//! The checks on a SAML response, against responses Entra's emulation signs (the sandbox's
//! builder and keys, xmlsec): good ones pass and read back, every bad variant is refused with
//! its own clear message.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rolecall_daemon::saml::response::{check, Checked, Expectations, RolePair, SamlError};
use rolecall_sandbox::keys;
use rolecall_sandbox::saml::response::{build_no_passive, build_success, Grant, Signing};
use rolecall_sandbox::saml::{federation_metadata, wrapping_forgery};
use time::OffsetDateTime;

const APP: &str = "https://signin.aws.amazon.com/saml#1";
const SIGNIN: &str = "https://signin.aws.amazon.com/saml";
const ADMIN: &str = "arn:aws:iam::333333333333:role/EntraAdmin";
const RO: &str = "arn:aws:iam::333333333333:role/EntraReadOnly";
const IDP: &str = "arn:aws:iam::333333333333:saml-provider/EntraID";

fn grant(now: OffsetDateTime) -> Grant<'static> {
    Grant {
        tenant_id: "9c0ffee0-1234-4cde-8f00-c0ffee000001",
        in_response_to: Some("idREQ1"),
        audience: APP,
        recipient: SIGNIN,
        upn: "alice@contoso.onmicrosoft.com",
        object_id: "oid",
        display_name: "Alice",
        // Both orders, as Entra admins write them.
        roles: vec![format!("{ADMIN},{IDP}"), format!("{IDP},{RO}")],
        session_duration_secs: 14400,
        now,
        validity_secs: 300,
    }
}

fn certs() -> Vec<Vec<u8>> {
    let md = federation_metadata(
        "9c0ffee0-1234-4cde-8f00-c0ffee000001",
        "http://127.0.0.1:1/x/saml2",
        &keys::saml_key().cert_b64(),
    );
    rolecall_daemon::saml::metadata::signing_certs(&md).unwrap()
}

fn run(xml: &str, irt: Option<&str>, certs: Option<&[Vec<u8>]>) -> Result<Checked, SamlError> {
    check(
        &STANDARD.encode(xml),
        &Expectations {
            app_identifier: APP,
            in_response_to: irt,
            certs,
            now: OffsetDateTime::now_utc(),
            skew: time::Duration::minutes(2),
        },
    )
}

fn signed(g: &Grant<'_>) -> String {
    build_success(g, Signing::With(keys::saml_key())).unwrap()
}

#[test]
fn a_good_response_reads_back() {
    let now = OffsetDateTime::now_utc();
    let c = certs();
    let Checked::Assertion(a) = run(&signed(&grant(now)), Some("idREQ1"), Some(&c)).unwrap() else {
        panic!("expected a readable assertion")
    };
    assert_eq!(
        a.roles,
        vec![
            RolePair {
                role_arn: ADMIN.into(),
                principal_arn: IDP.into()
            },
            RolePair {
                role_arn: RO.into(),
                principal_arn: IDP.into()
            }
        ]
    );
    assert_eq!(a.session_duration, Some(14400));
    assert_eq!(
        a.session_name.as_deref(),
        Some("alice@contoso.onmicrosoft.com")
    );
    assert!((a.not_on_or_after - now.unix_timestamp() - 300).abs() <= 1);
    assert!(a.session_not_on_or_after.unwrap() > now.unix_timestamp() + 14000);
    // Without idp_metadata the signature is left to STS; the rest is still checked.
    assert!(matches!(
        run(&signed(&grant(now)), Some("idREQ1"), None),
        Ok(Checked::Assertion(_))
    ));
    // --paste: an unsolicited response passes without InResponseTo.
    assert!(run(&signed(&grant(now)), None, Some(&c)).is_ok());
}

#[test]
fn signature_problems_are_refused() {
    let now = OffsetDateTime::now_utc();
    let c = certs();
    let unsigned = build_success(&grant(now), Signing::Unsigned).unwrap();
    assert_eq!(run(&unsigned, None, Some(&c)), Err(SamlError::Unsigned));
    assert_eq!(run(&unsigned, None, None), Err(SamlError::Unsigned));
    let rogue = build_success(&grant(now), Signing::With(keys::rogue_key())).unwrap();
    assert_eq!(run(&rogue, None, Some(&c)), Err(SamlError::BadSignature));
    let tampered = signed(&grant(now)).replace("role/EntraReadOnly", "role/EntraAdmin2");
    assert_eq!(run(&tampered, None, Some(&c)), Err(SamlError::BadSignature));
    let forged = wrapping_forgery(
        &signed(&grant(now)),
        &format!("arn:aws:iam::333333333333:role/Evil,{IDP}"),
    )
    .unwrap();
    let e = run(&forged, None, Some(&c)).unwrap_err();
    assert_eq!(e, SamlError::Wrapped, "{e}");
    // The same forgery with the copy keeping the signed ID: duplicate IDs.
    let good = signed(&grant(now));
    let start = good.find("<Assertion ").unwrap();
    let end = good.find("</Assertion>").unwrap() + "</Assertion>".len();
    let original = &good[start..end];
    let status = good.find("<samlp:Status>").unwrap();
    let dup = format!(
        "{}<samlp:Extensions>{}</samlp:Extensions>{}",
        &good[..status],
        original,
        &good[status..]
    );
    assert_eq!(run(&dup, None, Some(&c)), Err(SamlError::DuplicateIds));
}

#[test]
fn claim_problems_are_refused() {
    let now = OffsetDateTime::now_utc();
    let c = certs();
    let c = Some(c.as_slice());
    let mut g = grant(now - time::Duration::minutes(10));
    assert!(matches!(
        run(&signed(&g), None, c),
        Err(SamlError::Expired(s)) if s >= 299
    ));
    g = grant(now + time::Duration::minutes(20));
    assert!(matches!(
        run(&signed(&g), None, c),
        Err(SamlError::NotYetValid(_))
    ));
    // Inside the skew: fine.
    g = grant(now - time::Duration::seconds(300 + 60));
    assert!(run(&signed(&g), None, c).is_ok());

    assert_eq!(
        run(&signed(&grant(now)), Some("idOTHER"), c),
        Err(SamlError::InResponseTo)
    );
    g = grant(now);
    g.recipient = "http://127.0.0.1:8080/saml";
    assert_eq!(
        run(&signed(&g), None, c),
        Err(SamlError::NotAwsSignin("Destination"))
    );
    // A regional Destination is an AWS sign-in endpoint too (the Response is unsigned here,
    // the assertion is).
    let regional = signed(&grant(now)).replacen(
        &format!("Destination=\"{SIGNIN}\""),
        "Destination=\"https://eu-west-1.signin.aws.amazon.com/saml\"",
        1,
    );
    assert!(run(&regional, None, c).is_ok());
    let mut g = grant(now);
    g.recipient = "https://signin.aws.amazon.com.evil.example/saml";
    assert_eq!(
        run(&signed(&g), None, c),
        Err(SamlError::NotAwsSignin("Destination"))
    );
    g = grant(now);
    g.audience = "https://signin.aws.amazon.com/saml#2";
    assert_eq!(
        run(&signed(&g), None, c),
        Err(SamlError::Audience(APP.into()))
    );
    g = grant(now);
    g.roles = vec![];
    assert_eq!(run(&signed(&g), None, c), Err(SamlError::NoRoles));
    g.roles = vec!["not-an-arn,either".into()];
    assert_eq!(run(&signed(&g), None, c), Err(SamlError::NoRoles));
}

#[test]
fn recipient_must_be_aws_even_with_a_good_destination() {
    // Build with a loopback recipient, then point the (unsigned) Destination back at AWS: the
    // signed Recipient still names the loopback ACS.
    let now = OffsetDateTime::now_utc();
    let c = certs();
    let mut g = grant(now);
    g.recipient = "http://127.0.0.1:8080/saml";
    let xml = signed(&g).replacen(
        "Destination=\"http://127.0.0.1:8080/saml\"",
        &format!("Destination=\"{SIGNIN}\""),
        1,
    );
    assert_eq!(
        run(&xml, None, Some(&c)),
        Err(SamlError::NotAwsSignin("Recipient"))
    );
}

#[test]
fn no_passive_means_the_user_is_needed() {
    let xml = build_no_passive("t", "idREQ1", SIGNIN, OffsetDateTime::now_utc());
    let e = run(&xml, Some("idREQ1"), None).unwrap_err();
    assert_eq!(e, SamlError::NoPassive);
    assert!(e.needs_user());
}

#[test]
fn errors_never_quote_the_response() {
    let now = OffsetDateTime::now_utc();
    let g = grant(now - time::Duration::minutes(10));
    let xml = signed(&g);
    let b64 = STANDARD.encode(&xml);
    let e = run(&xml, None, None).unwrap_err().to_string();
    assert!(
        !e.contains(&b64[..40]) && !e.contains("SignatureValue") && !e.contains("alice"),
        "{e}"
    );
}

#[test]
fn encrypted_assertions_pass_through_after_the_envelope_checks() {
    let now = time::OffsetDateTime::now_utc();
    let instant = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let doc = |irt: &str, dest: &str, extra: &str| {
        format!(
            concat!(
                r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" Version="2.0" "#,
                r#"IssueInstant="{i}" Destination="{d}" InResponseTo="{irt}">"#,
                r#"<Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">https://sts.windows.net/t/</Issuer>"#,
                r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
                r#"<EncryptedAssertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#"/></EncryptedAssertion>{x}"#,
                "</samlp:Response>"
            ),
            i = instant,
            d = dest,
            irt = irt,
            x = extra
        )
    };
    let acs = "https://signin.aws.amazon.com/saml/acs/SAMLSP4ABCDEF";
    assert_eq!(
        run(&doc("idREQ1", acs, ""), Some("idREQ1"), None),
        Ok(Checked::Encrypted)
    );
    assert_eq!(
        run(&doc("idOTHER", acs, ""), Some("idREQ1"), None),
        Err(SamlError::InResponseTo)
    );
    assert_eq!(
        run(
            &doc("idREQ1", "http://127.0.0.1:1/saml", ""),
            Some("idREQ1"),
            None
        ),
        Err(SamlError::NotAwsSignin("Destination"))
    );
    // An encrypted assertion next to a readable one: refused.
    let extra = r#"<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a"/>"#;
    assert_eq!(
        run(&doc("idREQ1", acs, extra), Some("idREQ1"), None),
        Err(SamlError::AssertionCount)
    );
}
