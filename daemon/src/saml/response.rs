//! Checks on a captured or pasted `SAMLResponse` before anything in it is used.
//!
//! Order: base64 → XML → Status (NoPassive means "the user is needed") → InResponseTo of the
//! request we made → Destination → (encrypted assertions stop here: STS reads them) → exactly one
//! assertion, no duplicate IDs → the signature against the IdP certificates (xmlsec via samael),
//! reading claims only from the element the signature covers → Recipient, time window with skew,
//! Audience = the app identifier → the Role values. Errors are one line and never quote the
//! response.

use super::xml::{self, Element};
use super::{is_aws_signin, NS_ASSERTION, NS_DSIG, NS_PROTOCOL};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec,
};
use std::sync::Mutex;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// libxml2/xmlsec keep global state: one verification at a time.
static XMLSEC_LOCK: Mutex<()> = Mutex::new(());

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const STATUS_NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// What a response must match.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The Audience (`app_identifier`).
    pub app_identifier: &'a str,
    /// The ID of the request we sent; `None` only for `--paste` (unsolicited responses).
    pub in_response_to: Option<&'a str>,
    /// IdP signing certificates (from `idp_metadata`); `None` leaves the signature to STS.
    pub certs: Option<&'a [Vec<u8>]>,
    pub now: OffsetDateTime,
    /// Clock skew tolerated on the time conditions.
    pub skew: time::Duration,
}

/// One `role-arn,principal-arn` value of the Role attribute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RolePair {
    pub role_arn: String,
    pub principal_arn: String,
}

/// What rolecall uses from a checked assertion. Not secret by itself (the response is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAssertion {
    pub id: String,
    pub roles: Vec<RolePair>,
    pub session_duration: Option<u64>,
    pub session_name: Option<String>,
    /// Epoch seconds.
    pub session_not_on_or_after: Option<i64>,
    /// When the assertion can no longer be redeemed (epoch seconds).
    pub not_on_or_after: i64,
}

/// A response that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Assertion(CheckedAssertion),
    /// An EncryptedAssertion: only STS can read it (the profile names role and principal).
    Encrypted,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    #[error("the SAML response is not valid base64")]
    NotBase64,
    #[error("the SAML response is not readable: {0}")]
    Malformed(String),
    #[error("Entra needs the user to sign in (NoPassive)")]
    NoPassive,
    #[error("Entra did not sign in: status {0}")]
    NotSuccess(String),
    #[error("the SAML response answers another request (InResponseTo does not match this login)")]
    InResponseTo,
    #[error("the SAML response's {0} is not an AWS sign-in endpoint (https://signin.aws.amazon.com/saml or a regional/partition form)")]
    NotAwsSignin(&'static str),
    #[error("the SAML response is not signed")]
    Unsigned,
    #[error("the SAML signature does not verify against the idp_metadata signing certificate")]
    BadSignature,
    #[error("the SAML response must hold exactly one assertion")]
    AssertionCount,
    #[error("the SAML response is a signature-wrapping forgery (the signed element is not the assertion read)")]
    Wrapped,
    #[error("the SAML response has duplicate IDs (a signature-wrapping attempt)")]
    DuplicateIds,
    #[error("the SAML assertion is not valid yet (NotBefore is {0}s ahead; check the clock)")]
    NotYetValid(i64),
    #[error("the SAML assertion has expired (NotOnOrAfter passed {0}s ago)")]
    Expired(i64),
    #[error("the SAML assertion's Audience is not the app_identifier {0:?}")]
    Audience(String),
    #[error("the SAML assertion has no Role attribute (https://aws.amazon.com/SAML/Attributes/Role): assign the user a role in the Entra app")]
    NoRoles,
    #[error("the SAML assertion {0} was already used (replay refused)")]
    Replayed(String),
}

impl SamlError {
    /// Errors that mean "Entra needs the user", not "something is wrong".
    pub fn needs_user(&self) -> bool {
        matches!(self, SamlError::NoPassive)
    }
}

/// Decodes a base64 response document.
pub fn decode(b64: &str) -> Result<String, SamlError> {
    let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(SamlError::NotBase64);
    }
    let bytes = STANDARD.decode(compact).map_err(|_| SamlError::NotBase64)?;
    if bytes.len() > xml::MAX_DOCUMENT {
        return Err(SamlError::Malformed("it is too large".into()));
    }
    String::from_utf8(bytes).map_err(|_| SamlError::Malformed("it is not UTF-8 text".into()))
}

/// Runs every check on a base64 `SAMLResponse`.
pub fn check(b64: &str, exp: &Expectations<'_>) -> Result<Checked, SamlError> {
    let doc = decode(b64)?;
    let root = xml::parse(&doc).map_err(SamlError::Malformed)?;
    if !root.is(NS_PROTOCOL, "Response") {
        return Err(SamlError::Malformed(
            "the root is not samlp:Response".into(),
        ));
    }
    check_status(&root)?;
    if let Some(want) = exp.in_response_to {
        if root.attr("InResponseTo") != Some(want) {
            return Err(SamlError::InResponseTo);
        }
    }
    match root.attr("Destination") {
        Some(d) if is_aws_signin(d) => {}
        _ => return Err(SamlError::NotAwsSignin("Destination")),
    }
    let mut all = Vec::new();
    root.walk(&mut all);
    let mut ids: Vec<&str> = all
        .iter()
        .filter_map(|e| e.attr("ID").or_else(|| e.attr("Id")))
        .collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(SamlError::DuplicateIds);
    }
    let mut encrypted = Vec::new();
    root.descendants(NS_ASSERTION, "EncryptedAssertion", &mut encrypted);
    let mut assertions = Vec::new();
    root.descendants(NS_ASSERTION, "Assertion", &mut assertions);
    if !encrypted.is_empty() {
        if encrypted.len() == 1 && assertions.is_empty() {
            return Ok(Checked::Encrypted);
        }
        return Err(SamlError::AssertionCount);
    }
    let direct: Vec<&Element> = root.children_named(NS_ASSERTION, "Assertion").collect();
    if assertions.len() > 1 {
        return Err(SamlError::Wrapped);
    }
    if assertions.len() != 1 || direct.len() != 1 {
        return Err(SamlError::AssertionCount);
    }
    let positional = direct[0];
    let positional_id = positional
        .attr("ID")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| SamlError::Malformed("the assertion has no ID".into()))?;
    let mut sigs = Vec::new();
    root.walk(&mut sigs);
    if !sigs.iter().any(|e| e.is(NS_DSIG, "Signature")) {
        return Err(SamlError::Unsigned);
    }

    let assertion = match exp.certs {
        Some(certs) => signed_assertion(&doc, certs, positional_id)?,
        None => positional.clone(),
    };
    read_assertion(&assertion, exp).map(Checked::Assertion)
}

fn check_status(root: &Element) -> Result<(), SamlError> {
    let top = root
        .child(NS_PROTOCOL, "Status")
        .and_then(|s| s.child(NS_PROTOCOL, "StatusCode"))
        .ok_or_else(|| SamlError::Malformed("it has no Status".into()))?;
    let value = top.attr("Value").unwrap_or_default();
    if value == STATUS_SUCCESS {
        return Ok(());
    }
    let sub = top
        .child(NS_PROTOCOL, "StatusCode")
        .and_then(|c| c.attr("Value"));
    if sub == Some(STATUS_NO_PASSIVE) {
        return Err(SamlError::NoPassive);
    }
    let short = |v: &str| v.rsplit(':').next().unwrap_or_default().to_string();
    Err(SamlError::NotSuccess(match sub {
        Some(s) => format!("{}/{}", short(value), short(s)),
        None => short(value),
    }))
}

/// Verifies the signature(s) and returns the signed assertion, which must be the one at the
/// response's assertion position: samael hands back only what xmlsec verified, and we read from
/// that copy, never from the original tree.
fn signed_assertion(
    doc: &str,
    certs: &[Vec<u8>],
    positional_id: &str,
) -> Result<Element, SamlError> {
    let certs: Vec<CertificateDer> = certs.iter().cloned().map(CertificateDer::from).collect();
    let reduced = {
        let _guard = XMLSEC_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
            doc,
            &certs,
            ReduceMode::ValidateAndMarkNoAncestors,
            Some(&[
                AllowedSignatureAlgorithm::RsaSha256,
                AllowedSignatureAlgorithm::RsaSha512,
            ]),
        )
        .map_err(|_| SamlError::BadSignature)?
    };
    let signed = xml::parse(&reduced).map_err(|_| SamlError::BadSignature)?;
    let assertion = if signed.is(NS_ASSERTION, "Assertion") {
        signed
    } else if signed.is(NS_PROTOCOL, "Response") {
        let inner: Vec<&Element> = signed.children_named(NS_ASSERTION, "Assertion").collect();
        match inner.as_slice() {
            [one] => (*one).clone(),
            _ => return Err(SamlError::Wrapped),
        }
    } else {
        return Err(SamlError::Wrapped);
    };
    if assertion.attr("ID") != Some(positional_id) {
        return Err(SamlError::Wrapped);
    }
    Ok(assertion)
}

fn time_attr(el: &Element, name: &str) -> Result<Option<OffsetDateTime>, SamlError> {
    el.attr(name)
        .map(|v| {
            OffsetDateTime::parse(v.trim(), &Rfc3339)
                .map_err(|_| SamlError::Malformed(format!("{name} is not a dateTime")))
        })
        .transpose()
}

fn read_assertion(a: &Element, exp: &Expectations<'_>) -> Result<CheckedAssertion, SamlError> {
    let id = a.attr("ID").unwrap_or_default().to_string();
    let subject = a
        .child(NS_ASSERTION, "Subject")
        .ok_or_else(|| SamlError::Malformed("the assertion has no Subject".into()))?;
    // A bearer confirmation addressed to AWS, answering our request when we made one.
    let mut ends: Vec<OffsetDateTime> = Vec::new();
    let mut recipient_ok = false;
    for sc in subject.children_named(NS_ASSERTION, "SubjectConfirmation") {
        if sc.attr("Method") != Some(BEARER) {
            continue;
        }
        let Some(d) = sc.child(NS_ASSERTION, "SubjectConfirmationData") else {
            continue;
        };
        if !d.attr("Recipient").is_some_and(is_aws_signin) {
            continue;
        }
        if let (Some(want), Some(got)) = (exp.in_response_to, d.attr("InResponseTo")) {
            if want != got {
                return Err(SamlError::InResponseTo);
            }
        }
        recipient_ok = true;
        ends.extend(time_attr(d, "NotOnOrAfter")?);
    }
    if !recipient_ok {
        return Err(SamlError::NotAwsSignin("Recipient"));
    }
    let conditions = a
        .child(NS_ASSERTION, "Conditions")
        .ok_or_else(|| SamlError::Malformed("the assertion has no Conditions".into()))?;
    if let Some(nb) = time_attr(conditions, "NotBefore")? {
        let ahead = (nb - exp.now).whole_seconds();
        if nb > exp.now + exp.skew {
            return Err(SamlError::NotYetValid(ahead));
        }
    }
    ends.extend(time_attr(conditions, "NotOnOrAfter")?);
    let end = ends
        .iter()
        .min()
        .copied()
        .ok_or_else(|| SamlError::Malformed("the assertion has no NotOnOrAfter".into()))?;
    if exp.now - exp.skew >= end {
        return Err(SamlError::Expired((exp.now - end).whole_seconds()));
    }
    let mut audiences = Vec::new();
    for ar in conditions.children_named(NS_ASSERTION, "AudienceRestriction") {
        audiences.extend(
            ar.children_named(NS_ASSERTION, "Audience")
                .map(|au| au.trimmed_text()),
        );
    }
    if !audiences.contains(&exp.app_identifier) {
        return Err(SamlError::Audience(exp.app_identifier.to_string()));
    }

    let mut role_values = Vec::new();
    let mut session_name = None;
    let mut session_duration = None;
    for st in a.children_named(NS_ASSERTION, "AttributeStatement") {
        for at in st.children_named(NS_ASSERTION, "Attribute") {
            let values = at
                .children_named(NS_ASSERTION, "AttributeValue")
                .map(|v| v.trimmed_text().to_string());
            match at.attr("Name").unwrap_or_default() {
                super::ATTR_ROLE => role_values.extend(values),
                super::ATTR_SESSION_NAME => {
                    session_name = session_name.or(values.into_iter().next())
                }
                super::ATTR_SESSION_DURATION => {
                    session_duration = session_duration.or(values
                        .into_iter()
                        .next()
                        .and_then(|v| v.parse::<u64>().ok()))
                }
                _ => {}
            }
        }
    }
    let mut roles: Vec<RolePair> = role_values.iter().filter_map(|v| role_pair(v)).collect();
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(SamlError::NoRoles);
    }
    let session_not_on_or_after = match a.child(NS_ASSERTION, "AuthnStatement") {
        Some(s) => time_attr(s, "SessionNotOnOrAfter")?.map(|t| t.unix_timestamp()),
        None => None,
    };
    Ok(CheckedAssertion {
        id,
        roles,
        session_duration,
        session_name,
        session_not_on_or_after,
        not_on_or_after: end.unix_timestamp(),
    })
}

/// `role-arn,principal-arn` in either order (Entra admins write both).
pub fn role_pair(v: &str) -> Option<RolePair> {
    let (a, b) = v.split_once(',')?;
    let (a, b) = (a.trim(), b.trim());
    let kind = |s: &str| {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        (parts.len() == 6 && parts[0] == "arn" && parts[2] == "iam")
            .then(|| parts[5].split('/').next().unwrap_or_default().to_string())
    };
    match (kind(a)?.as_str(), kind(b)?.as_str()) {
        ("role", "saml-provider") => Some(RolePair {
            role_arn: a.into(),
            principal_arn: b.into(),
        }),
        ("saml-provider", "role") => Some(RolePair {
            role_arn: b.into(),
            principal_arn: a.into(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_pairs_either_order() {
        let r = "arn:aws:iam::1:role/A";
        let p = "arn:aws:iam::1:saml-provider/E";
        let want = RolePair {
            role_arn: r.into(),
            principal_arn: p.into(),
        };
        assert_eq!(role_pair(&format!("{r},{p}")), Some(want.clone()));
        assert_eq!(role_pair(&format!("{p}, {r}")), Some(want));
        assert_eq!(role_pair(r), None);
        assert_eq!(role_pair(&format!("{r},{r}")), None);
        assert_eq!(role_pair("a,b"), None);
    }

    #[test]
    fn garbage_is_refused_without_echo() {
        let exp = Expectations {
            app_identifier: "x",
            in_response_to: None,
            certs: None,
            now: crate::clock::Clock::now_utc(&crate::clock::SystemClock),
            skew: time::Duration::minutes(2),
        };
        assert_eq!(check("%%% not base64", &exp), Err(SamlError::NotBase64));
        assert_eq!(check("", &exp), Err(SamlError::NotBase64));
        let e = check(&STANDARD.encode("secretgarbage<"), &exp).unwrap_err();
        assert!(!e.to_string().contains("secretgarbage"), "{e}");
        let e = check(&STANDARD.encode("<foo/>"), &exp).unwrap_err();
        assert!(e.to_string().contains("samlp:Response"), "{e}");
    }
}
