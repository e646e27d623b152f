//! Entra's SAML side: reading SP-initiated `AuthnRequest`s, building and signing the Response
//! for the "AWS Single-Account Access" app, the federation metadata, and the verification STS
//! applies to a posted assertion. HTTP handling lives in `crate::entra`; policy in `crate::sts`.

pub mod request;
pub mod response;
pub mod verify;
pub mod xml;

use std::sync::Mutex;

use quick_xml::escape::escape;

pub use response::{ATTR_ROLE, ATTR_SESSION_DURATION, ATTR_SESSION_NAME, AWS_SIGNIN};

pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// libxml2/xmlsec keep global state; one signing or verification at a time keeps them sane
/// under the multi-threaded runtime (each takes well under a millisecond of CPU per call).
pub(crate) static XMLSEC_LOCK: Mutex<()> = Mutex::new(());

/// Entra's federation metadata for a tenant: entity id = the v1 issuer, the signing certificate
/// and the SSO endpoints at `sso_location`.
pub fn federation_metadata(tenant_id: &str, sso_location: &str, cert_b64: &str) -> String {
    let issuer = crate::jwt::v1_issuer(tenant_id);
    let loc = escape(sso_location);
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<EntityDescriptor ID="_{tid}" entityID="{issuer}" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">"#,
            r#"<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            r#"<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data>"#,
            "<X509Certificate>{cert}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>",
            r#"<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{loc}"/>"#,
            r#"<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{loc}"/>"#,
            r#"<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{loc}"/>"#,
            "</IDPSSODescriptor></EntityDescriptor>"
        ),
        tid = escape(tenant_id),
        issuer = escape(issuer.as_str()),
        cert = cert_b64,
        loc = loc,
    )
}

/// A classic signature-wrapping forgery for negative tests: the signed assertion is moved into
/// `samlp:Extensions` and a modified copy (new ID, `evil_role` as its only role) takes its
/// place. Returns `None` if `signed_response` has no assertion.
pub fn wrapping_forgery(signed_response: &str, evil_role: &str) -> Option<String> {
    let start = signed_response.find("<Assertion ")?;
    let end = signed_response.find("</Assertion>")? + "</Assertion>".len();
    let original = &signed_response[start..end];
    let id_start = original.find("ID=\"")? + 4;
    let id_end = id_start + original[id_start..].find('"')?;
    let mut evil = format!("{}_evil{}", &original[..id_start], &original[id_end..]);
    let role_start = evil.find(ATTR_ROLE)?;
    let values_start = role_start + evil[role_start..].find('>')? + 1;
    let values_end = values_start + evil[values_start..].find("</Attribute>")?;
    evil.replace_range(
        values_start..values_end,
        &format!("<AttributeValue>{}</AttributeValue>", escape(evil_role)),
    );
    let status = signed_response.find("<samlp:Status>")?;
    Some(format!(
        "{}<samlp:Extensions>{}</samlp:Extensions>{}{}{}",
        &signed_response[..status],
        original,
        &signed_response[status..start],
        evil,
        &signed_response[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::response::{build_no_passive, build_success, Grant, Signing};
    use super::verify::{verify_response, Refusal};
    use super::*;
    use crate::keys;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use time::OffsetDateTime;

    fn grant(now: OffsetDateTime) -> Grant<'static> {
        Grant {
            tenant_id: "11111111-2222-3333-4444-555555555555",
            in_response_to: Some("req-1"),
            audience: "https://signin.aws.amazon.com/saml#1",
            recipient: AWS_SIGNIN,
            upn: "alice@contoso.example",
            object_id: "oid-1",
            display_name: "Alice <A&B>",
            roles: vec![
                "arn:aws:iam::111111111111:role/A,arn:aws:iam::111111111111:saml-provider/EntraID"
                    .into(),
                "arn:aws:iam::111111111111:saml-provider/EntraID,arn:aws:iam::111111111111:role/B"
                    .into(),
            ],
            session_duration_secs: 3600,
            now,
            validity_secs: 300,
        }
    }

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn signed_response_verifies_and_reads_back() {
        let now = OffsetDateTime::now_utc();
        let xml = build_success(&grant(now), Signing::With(keys::saml_key())).unwrap();
        assert!(
            xml.contains("<SignatureValue>") && !xml.contains("<SignatureValue></SignatureValue>")
        );
        let a = verify_response(&b64(&xml), &keys::saml_key().cert_der).unwrap();
        assert_eq!(
            a.issuer,
            "https://sts.windows.net/11111111-2222-3333-4444-555555555555/"
        );
        assert_eq!(a.recipients, vec![AWS_SIGNIN.to_string()]);
        assert_eq!(
            a.audiences,
            vec!["https://signin.aws.amazon.com/saml#1".to_string()]
        );
        assert_eq!(a.roles.len(), 2);
        assert_eq!(a.session_name.as_deref(), Some("alice@contoso.example"));
        assert_eq!(a.session_duration.as_deref(), Some("3600"));
        assert_eq!(a.name_id, "alice@contoso.example");
        let nooa = a.not_on_or_after.unwrap();
        assert!((nooa - now).whole_seconds() >= 299 && (nooa - now).whole_seconds() <= 300);
    }

    #[test]
    fn unsigned_rogue_and_tampered_refused() {
        let now = OffsetDateTime::now_utc();
        let cert = &keys::saml_key().cert_der;
        let unsigned = build_success(&grant(now), Signing::Unsigned).unwrap();
        assert_eq!(
            verify_response(&b64(&unsigned), cert),
            Err(Refusal::BadSignature)
        );
        let rogue = build_success(&grant(now), Signing::With(keys::rogue_key())).unwrap();
        assert_eq!(
            verify_response(&b64(&rogue), cert),
            Err(Refusal::BadSignature)
        );
        let good = build_success(&grant(now), Signing::With(keys::saml_key())).unwrap();
        let tampered = good.replace("role/B", "role/C");
        assert_eq!(
            verify_response(&b64(&tampered), cert),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn wrapping_refused() {
        let now = OffsetDateTime::now_utc();
        let good = build_success(&grant(now), Signing::With(keys::saml_key())).unwrap();
        let forged = wrapping_forgery(&good, "arn:aws:iam::111111111111:role/Evil,x").unwrap();
        assert_eq!(
            verify_response(&b64(&forged), &keys::saml_key().cert_der),
            Err(Refusal::Wrapped)
        );
    }

    #[test]
    fn no_passive_is_not_success() {
        let xml = build_no_passive("t", "req", AWS_SIGNIN, OffsetDateTime::now_utc());
        assert!(xml.contains("NoPassive"));
        assert_eq!(
            verify_response(&b64(&xml), &keys::saml_key().cert_der),
            Err(Refusal::NotSuccess)
        );
    }

    #[test]
    fn metadata_carries_cert() {
        let m = federation_metadata(
            "tid",
            "http://127.0.0.1:1/tid/saml2",
            &keys::saml_key().cert_b64(),
        );
        let root = xml::parse(&m).unwrap();
        let mut certs = Vec::new();
        root.descendants(
            "http://www.w3.org/2000/09/xmldsig#",
            "X509Certificate",
            &mut certs,
        );
        assert_eq!(certs[0].text, keys::saml_key().cert_b64());
    }
}
