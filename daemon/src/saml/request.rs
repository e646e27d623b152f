//! The SP-initiated `AuthnRequest` rolecall sends to Entra (HTTP-Redirect binding): a fresh ID
//! per login, Issuer = the app identifier, no AssertionConsumerServiceURL (Entra then answers to
//! the app's configured reply URL, the AWS sign-in endpoint), `IsPassive` for silent renewals.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use quick_xml::escape::escape;
use std::io::Write;
use time::OffsetDateTime;

/// A tenant (domain or GUID) as one path segment: everything but unreserved characters encoded.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// One request: its ID is what the response's InResponseTo must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnRequest {
    pub id: String,
    pub issue_instant: String,
    pub issuer: String,
    pub is_passive: bool,
}

impl AuthnRequest {
    pub fn new(issuer: &str, is_passive: bool, now: OffsetDateTime) -> Self {
        AuthnRequest {
            // An NCName may not start with a digit.
            id: format!("id{}", uuid::Uuid::new_v4().simple()),
            issue_instant: saml_instant(now),
            issuer: issuer.to_string(),
            is_passive,
        }
    }

    pub fn to_xml(&self) -> String {
        format!(
            concat!(
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
                r#"ID="{}" Version="2.0" IssueInstant="{}" IsPassive="{}">"#,
                r#"<Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">{}</Issuer>"#,
                "</samlp:AuthnRequest>"
            ),
            escape(self.id.as_str()),
            escape(self.issue_instant.as_str()),
            self.is_passive,
            escape(self.issuer.as_str())
        )
    }

    /// `{authority}/{tenant}/saml2?SAMLRequest=…&RelayState=…`: raw DEFLATE, base64, URL-encoded.
    pub fn redirect_url(&self, authority: &str, tenant: &str, relay_state: &str) -> String {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(self.to_xml().as_bytes())
            .expect("writing to memory");
        let deflated = enc.finish().expect("deflating in memory");
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLRequest", &STANDARD.encode(deflated))
            .append_pair("RelayState", relay_state)
            .finish();
        let tenant: String =
            percent_encoding::utf8_percent_encode(tenant, PATH_SEGMENT).to_string();
        format!("{}/{tenant}/saml2?{query}", authority.trim_end_matches('/'))
    }
}

/// SAML's xs:dateTime in UTC with whole seconds.
pub fn saml_instant(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(f)
        .expect("UTC times format")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn redirect_url_round_trips() {
        let now = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let r = AuthnRequest::new("https://signin.aws.amazon.com/saml#1", true, now);
        let other = AuthnRequest::new("https://signin.aws.amazon.com/saml#1", true, now);
        assert_ne!(r.id, other.id, "IDs are fresh");
        let url = r.redirect_url("http://127.0.0.1:9/", "contoso.onmicrosoft.com", "rc");
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.path(), "/contoso.onmicrosoft.com/saml2");
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["RelayState"], "rc");
        let raw = STANDARD.decode(&q["SAMLRequest"]).unwrap();
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(&raw[..])
            .read_to_string(&mut xml)
            .unwrap();
        let root = crate::saml::xml::parse(&xml).unwrap();
        assert!(root.is(crate::saml::NS_PROTOCOL, "AuthnRequest"));
        assert_eq!(root.attr("ID"), Some(r.id.as_str()));
        assert_eq!(root.attr("IsPassive"), Some("true"));
        assert_eq!(root.attr("IssueInstant"), Some("2026-01-02T03:04:05Z"));
        assert_eq!(root.attr("AssertionConsumerServiceURL"), None);
        assert_eq!(
            root.child(crate::saml::NS_ASSERTION, "Issuer")
                .unwrap()
                .text,
            "https://signin.aws.amazon.com/saml#1"
        );
    }
}
