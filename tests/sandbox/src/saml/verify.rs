//! Reads a SAML Response the way AWS STS does before it trusts anything in it: the signature
//! must verify against the SAML provider's certificate, and the assertion used must be the
//! very element that signature covers (signature-wrapping safe). Claims (time, audience,
//! recipient, roles) are then checked by the STS emulation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::xml::{self, Element};
use super::{NS_ASSERTION, NS_PROTOCOL};

/// The facts STS uses from a verified assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub issuer: String,
    pub name_id: String,
    pub name_id_format: Option<String>,
    /// `SubjectConfirmationData` of the bearer confirmation(s).
    pub recipients: Vec<String>,
    pub confirmation_not_on_or_after: Option<OffsetDateTime>,
    pub not_before: Option<OffsetDateTime>,
    pub not_on_or_after: Option<OffsetDateTime>,
    pub audiences: Vec<String>,
    pub roles: Vec<String>,
    pub session_name: Option<String>,
    pub session_duration: Option<String>,
    pub source_identity: Option<String>,
    pub session_not_on_or_after: Option<OffsetDateTime>,
}

/// Why a response was refused before its claims were looked at. All map to STS's
/// `InvalidIdentityToken`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("Invalid SAML response: {0}")]
    Malformed(String),
    #[error("The SAML response status is not Success")]
    NotSuccess,
    #[error("Encrypted SAML assertions are not supported by this emulator")]
    Encrypted,
    #[error("Response signature invalid")]
    BadSignature,
    #[error("The SAML response must contain exactly one assertion")]
    AssertionCount,
    #[error("The signed element is not the assertion of this response")]
    Wrapped,
}

fn time_attr(el: &Element, name: &str) -> Result<Option<OffsetDateTime>, Refusal> {
    el.attr(name)
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map_err(|_| Refusal::Malformed(format!("{name} is not an xs:dateTime")))
        })
        .transpose()
}

/// Decodes and verifies a base64 `SAMLResponse` against `trusted_cert_der`.
pub fn verify_response(
    saml_response_b64: &str,
    trusted_cert_der: &[u8],
) -> Result<VerifiedAssertion, Refusal> {
    let compact: String = saml_response_b64.split_whitespace().collect();
    let bytes = STANDARD
        .decode(compact)
        .map_err(|_| Refusal::Malformed("not base64".into()))?;
    let doc = String::from_utf8(bytes).map_err(|_| Refusal::Malformed("not UTF-8".into()))?;
    let root = xml::parse(&doc).map_err(Refusal::Malformed)?;
    if !root.is(NS_PROTOCOL, "Response") {
        return Err(Refusal::Malformed(
            "root element is not samlp:Response".into(),
        ));
    }
    let status_ok = root
        .child(NS_PROTOCOL, "Status")
        .and_then(|s| s.child(NS_PROTOCOL, "StatusCode"))
        .and_then(|c| c.attr("Value"))
        == Some("urn:oasis:names:tc:SAML:2.0:status:Success");
    if !status_ok {
        return Err(Refusal::NotSuccess);
    }
    if root.child(NS_ASSERTION, "EncryptedAssertion").is_some() {
        return Err(Refusal::Encrypted);
    }
    // Exactly one assertion anywhere, and it is a direct child of the Response: an extra
    // assertion hidden elsewhere is how signature-wrapping attacks smuggle claims.
    let mut all = Vec::new();
    root.descendants(NS_ASSERTION, "Assertion", &mut all);
    let direct: Vec<&Element> = root.children_named(NS_ASSERTION, "Assertion").collect();
    if all.len() != 1 || direct.len() != 1 {
        return Err(if all.len() > 1 {
            Refusal::Wrapped
        } else {
            Refusal::AssertionCount
        });
    }
    let positional_id = direct[0].attr("ID").unwrap_or_default().to_string();

    let reduced = {
        let _guard = super::XMLSEC_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
            &doc,
            &[CertificateDer::from(trusted_cert_der.to_vec())],
            ReduceMode::ValidateAndMarkNoAncestors,
            Some(&[AllowedSignatureAlgorithm::RsaSha256]),
        )
        .map_err(|_| Refusal::BadSignature)?
    };
    let signed = xml::parse(&reduced).map_err(|_| Refusal::BadSignature)?;
    // Whatever was signed (the assertion, or the whole response), the assertion we read must be
    // the signed one and sit where the response says its assertion is.
    let assertion = if signed.is(NS_ASSERTION, "Assertion") {
        signed
    } else if signed.is(NS_PROTOCOL, "Response") {
        signed
            .child(NS_ASSERTION, "Assertion")
            .cloned()
            .ok_or(Refusal::Wrapped)?
    } else {
        return Err(Refusal::Wrapped);
    };
    if assertion.attr("ID") != Some(positional_id.as_str()) {
        return Err(Refusal::Wrapped);
    }
    read_assertion(&assertion)
}

fn read_assertion(a: &Element) -> Result<VerifiedAssertion, Refusal> {
    let issuer = a
        .child(NS_ASSERTION, "Issuer")
        .map(|i| i.trimmed_text().to_string())
        .ok_or_else(|| Refusal::Malformed("assertion has no Issuer".into()))?;
    let subject = a
        .child(NS_ASSERTION, "Subject")
        .ok_or_else(|| Refusal::Malformed("assertion has no Subject".into()))?;
    let name_id_el = subject
        .child(NS_ASSERTION, "NameID")
        .ok_or_else(|| Refusal::Malformed("assertion has no NameID".into()))?;
    let mut recipients = Vec::new();
    let mut confirmation_not_on_or_after = None;
    for sc in subject.children_named(NS_ASSERTION, "SubjectConfirmation") {
        if sc.attr("Method") != Some("urn:oasis:names:tc:SAML:2.0:cm:bearer") {
            continue;
        }
        if let Some(d) = sc.child(NS_ASSERTION, "SubjectConfirmationData") {
            if let Some(r) = d.attr("Recipient") {
                recipients.push(r.to_string());
            }
            confirmation_not_on_or_after = time_attr(d, "NotOnOrAfter")?;
        }
    }
    let (mut not_before, mut not_on_or_after, mut audiences) = (None, None, Vec::new());
    if let Some(c) = a.child(NS_ASSERTION, "Conditions") {
        not_before = time_attr(c, "NotBefore")?;
        not_on_or_after = time_attr(c, "NotOnOrAfter")?;
        for ar in c.children_named(NS_ASSERTION, "AudienceRestriction") {
            for au in ar.children_named(NS_ASSERTION, "Audience") {
                audiences.push(au.trimmed_text().to_string());
            }
        }
    }
    let mut attrs: Vec<(String, Vec<String>)> = Vec::new();
    for st in a.children_named(NS_ASSERTION, "AttributeStatement") {
        for at in st.children_named(NS_ASSERTION, "Attribute") {
            let values = at
                .children_named(NS_ASSERTION, "AttributeValue")
                .map(|v| v.trimmed_text().to_string())
                .collect();
            attrs.push((at.attr("Name").unwrap_or_default().to_string(), values));
        }
    }
    let first = |name: &str| {
        attrs
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.first().cloned())
    };
    let roles = attrs
        .iter()
        .filter(|(n, _)| n == super::ATTR_ROLE)
        .flat_map(|(_, v)| v.iter().cloned())
        .collect();
    let session_not_on_or_after = match a.child(NS_ASSERTION, "AuthnStatement") {
        Some(s) => time_attr(s, "SessionNotOnOrAfter")?,
        None => None,
    };
    Ok(VerifiedAssertion {
        issuer,
        name_id: name_id_el.trimmed_text().to_string(),
        name_id_format: name_id_el.attr("Format").map(str::to_string),
        recipients,
        confirmation_not_on_or_after,
        not_before,
        not_on_or_after,
        audiences,
        roles,
        session_name: first(super::ATTR_SESSION_NAME),
        session_duration: first(super::ATTR_SESSION_DURATION),
        source_identity: first("https://aws.amazon.com/SAML/Attributes/SourceIdentity"),
        session_not_on_or_after,
    })
}
