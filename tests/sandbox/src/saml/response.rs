//! Builds the SAML Response Entra posts to AWS for the "AWS Single-Account Access" app, and
//! signs its assertion (enveloped RSA-SHA256 signature, exclusive c14n) through xmlsec.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use quick_xml::escape::escape;
use samael::crypto::{CryptoProvider, XmlSec};
use time::OffsetDateTime;

use crate::keys::KeyPair;

/// The AWS sign-in endpoint: Destination and Recipient of every response, as Entra sets them
/// from the app's reply URL.
pub const AWS_SIGNIN: &str = "https://signin.aws.amazon.com/saml";

pub const ATTR_ROLE: &str = "https://aws.amazon.com/SAML/Attributes/Role";
pub const ATTR_SESSION_NAME: &str = "https://aws.amazon.com/SAML/Attributes/RoleSessionName";
pub const ATTR_SESSION_DURATION: &str = "https://aws.amazon.com/SAML/Attributes/SessionDuration";

/// How the assertion is signed (negative tests ask for the other two).
#[derive(Debug, Clone, Copy)]
pub enum Signing<'k> {
    With(&'k KeyPair),
    Unsigned,
}

/// Everything that goes into one successful response.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    pub tenant_id: &'a str,
    pub in_response_to: Option<&'a str>,
    /// The app identifier (Audience), e.g. `https://signin.aws.amazon.com/saml#1`.
    pub audience: &'a str,
    /// Destination and Recipient (the app's reply URL).
    pub recipient: &'a str,
    pub upn: &'a str,
    pub object_id: &'a str,
    pub display_name: &'a str,
    /// `role-arn,principal-arn` values of the Role attribute.
    pub roles: Vec<String>,
    pub session_duration_secs: u64,
    pub now: OffsetDateTime,
    pub validity_secs: u64,
}

/// SAML's dateTime, as Entra writes it (UTC, milliseconds).
pub fn saml_time(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(fmt)
        .expect("UTC timestamps format")
}

fn new_id() -> String {
    // Entra's IDs are "_" + a GUID; an NCName must not start with a digit.
    format!("_{}", uuid::Uuid::new_v4())
}

/// The `ds:Signature` template xmlsec fills in (digest and signature values, certificate).
fn signature_template(reference_id: &str, key: &KeyPair) -> String {
    format!(
        concat!(
            r#"<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo>"#,
            r#"<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>"#,
            r##"<Reference URI="#{id}"><Transforms>"##,
            r#"<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></Transforms>"#,
            r#"<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"#,
            r#"<DigestValue></DigestValue></Reference></SignedInfo><SignatureValue></SignatureValue>"#,
            r#"<KeyInfo><X509Data><X509Certificate>{cert}</X509Certificate></X509Data></KeyInfo></Signature>"#
        ),
        id = reference_id,
        cert = key.cert_b64()
    )
}

fn attribute(name: &str, values: &[String]) -> String {
    let mut s = format!(r#"<Attribute Name="{}">"#, escape(name));
    for v in values {
        s.push_str(&format!(
            "<AttributeValue>{}</AttributeValue>",
            escape(v.as_str())
        ));
    }
    s.push_str("</Attribute>");
    s
}

fn response_open(id: &str, now: &str, recipient: &str, in_response_to: Option<&str>) -> String {
    let irt = in_response_to
        .map(|r| format!(r#" InResponseTo="{}""#, escape(r)))
        .unwrap_or_default();
    format!(
        r#"<samlp:Response ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{}"{irt} xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">"#,
        escape(recipient)
    )
}

/// Builds and signs a successful response. Returns the XML document.
pub fn build_success(g: &Grant<'_>, signing: Signing<'_>) -> Result<String, String> {
    let issuer = crate::jwt::v1_issuer(g.tenant_id);
    let now = saml_time(g.now);
    let not_before = saml_time(g.now - time::Duration::minutes(5));
    let not_after = saml_time(g.now + time::Duration::seconds(g.validity_secs as i64));
    let session_end = saml_time(g.now + time::Duration::seconds(g.session_duration_secs as i64));
    let assertion_id = new_id();
    let irt = g
        .in_response_to
        .map(|r| format!(r#" InResponseTo="{}""#, escape(r)))
        .unwrap_or_default();
    let signature = match signing {
        Signing::With(k) => signature_template(&assertion_id, k),
        Signing::Unsigned => String::new(),
    };
    let attributes = [
        attribute(
            "http://schemas.microsoft.com/identity/claims/tenantid",
            &[g.tenant_id.to_string()],
        ),
        attribute(
            "http://schemas.microsoft.com/identity/claims/objectidentifier",
            &[g.object_id.to_string()],
        ),
        attribute(
            "http://schemas.microsoft.com/identity/claims/displayname",
            &[g.display_name.to_string()],
        ),
        attribute(ATTR_ROLE, &g.roles),
        attribute(ATTR_SESSION_NAME, &[g.upn.to_string()]),
        attribute(
            ATTR_SESSION_DURATION,
            &[g.session_duration_secs.to_string()],
        ),
    ]
    .concat();
    let doc = format!(
        concat!(
            "{open}",
            r#"<Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">{issuer}</Issuer>"#,
            r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
            r#"<Assertion ID="{aid}" IssueInstant="{now}" Version="2.0" xmlns="urn:oasis:names:tc:SAML:2.0:assertion">"#,
            "<Issuer>{issuer}</Issuer>{signature}",
            r#"<Subject><NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">{upn}</NameID>"#,
            r#"<SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
            r#"<SubjectConfirmationData{irt} NotOnOrAfter="{not_after}" Recipient="{recipient}"/>"#,
            "</SubjectConfirmation></Subject>",
            r#"<Conditions NotBefore="{not_before}" NotOnOrAfter="{not_after}">"#,
            "<AudienceRestriction><Audience>{audience}</Audience></AudienceRestriction></Conditions>",
            "<AttributeStatement>{attributes}</AttributeStatement>",
            r#"<AuthnStatement AuthnInstant="{now}" SessionIndex="{aid}" SessionNotOnOrAfter="{session_end}">"#,
            "<AuthnContext><AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</AuthnContextClassRef></AuthnContext>",
            "</AuthnStatement></Assertion></samlp:Response>"
        ),
        open = response_open(&new_id(), &now, g.recipient, g.in_response_to),
        issuer = escape(issuer.as_str()),
        aid = assertion_id,
        now = now,
        signature = signature,
        upn = escape(g.upn),
        irt = irt,
        not_after = not_after,
        recipient = escape(g.recipient),
        not_before = not_before,
        audience = escape(g.audience),
        attributes = attributes,
        session_end = session_end,
    );
    match signing {
        Signing::With(k) => sign(&doc, k),
        Signing::Unsigned => Ok(doc),
    }
}

/// Signs the (single) signature template in `doc` with `key`.
pub fn sign(doc: &str, key: &KeyPair) -> Result<String, String> {
    let _guard = super::XMLSEC_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    XmlSec::sign_xml(doc, &key.private_der).map_err(|e| format!("xmlsec signing failed: {e}"))
}

/// The response Entra sends when `IsPassive="true"` and there is no session: Responder /
/// NoPassive, no assertion.
pub fn build_no_passive(
    tenant_id: &str,
    in_response_to: &str,
    recipient: &str,
    now: OffsetDateTime,
) -> String {
    format!(
        concat!(
            "{open}",
            r#"<Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">{issuer}</Issuer>"#,
            r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder">"#,
            r#"<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:NoPassive"/></samlp:StatusCode>"#,
            "<samlp:StatusMessage>AADSTS50058: A silent sign-in request was sent but no user is signed in.</samlp:StatusMessage>",
            "</samlp:Status></samlp:Response>"
        ),
        open = response_open(&new_id(), &saml_time(now), recipient, Some(in_response_to)),
        issuer = escape(crate::jwt::v1_issuer(tenant_id).as_str()),
    )
}

/// The auto-submitting form Entra answers with (HTTP-POST binding to the reply URL).
pub fn post_form(action: &str, saml_response_xml: &str, relay_state: Option<&str>) -> String {
    let encoded = STANDARD.encode(saml_response_xml.as_bytes());
    let relay = relay_state
        .map(|r| {
            format!(
                r#"<input type="hidden" name="RelayState" value="{}" />"#,
                escape(r)
            )
        })
        .unwrap_or_default();
    format!(
        concat!(
            "<html><head><title>Working...</title></head><body>",
            r#"<form method="POST" name="hiddenform" action="{action}">"#,
            r#"<input type="hidden" name="SAMLResponse" value="{encoded}" />{relay}"#,
            "<noscript><p>Script is disabled. Click Submit to continue.</p>",
            r#"<input type="submit" value="Submit" /></noscript></form>"#,
            r#"<script language="javascript">window.setTimeout('document.forms[0].submit()', 0);</script>"#,
            "</body></html>"
        ),
        action = escape(action),
        encoded = encoded,
        relay = relay,
    )
}
