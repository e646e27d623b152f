//! SP-initiated `AuthnRequest`s in the HTTP-Redirect binding: base64, raw DEFLATE, XML.

use std::io::Read;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use flate2::read::DeflateDecoder;

use super::xml;
use super::{NS_ASSERTION, NS_PROTOCOL};

/// An inflated request is never legitimately this large; a bigger one is refused before parsing.
const MAX_INFLATED: u64 = 64 * 1024;

/// What the IdP needs from an `AuthnRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnRequest {
    pub id: String,
    pub issue_instant: String,
    pub issuer: String,
    pub is_passive: bool,
    pub force_authn: bool,
    pub acs_url: Option<String>,
}

/// Decodes the `SAMLRequest` query value (already URL-decoded) of the Redirect binding.
pub fn decode_redirect(saml_request: &str) -> Result<AuthnRequest, String> {
    let compact: String = saml_request.split_whitespace().collect();
    let raw = STANDARD
        .decode(compact)
        .map_err(|_| "SAMLRequest is not valid base64".to_string())?;
    let mut inflated = String::new();
    DeflateDecoder::new(&raw[..])
        .take(MAX_INFLATED + 1)
        .read_to_string(&mut inflated)
        .map_err(|_| "SAMLRequest is not raw-DEFLATE-compressed UTF-8 XML".to_string())?;
    if inflated.len() as u64 > MAX_INFLATED {
        return Err("SAMLRequest is too large".into());
    }
    parse_xml(&inflated)
}

/// Parses an `AuthnRequest` document.
pub fn parse_xml(doc: &str) -> Result<AuthnRequest, String> {
    let root = xml::parse(doc)?;
    if !root.is(NS_PROTOCOL, "AuthnRequest") {
        return Err("the SAML message is not an AuthnRequest".into());
    }
    let id = root
        .attr("ID")
        .filter(|s| !s.is_empty())
        .ok_or("AuthnRequest has no ID")?
        .to_string();
    let issue_instant = root
        .attr("IssueInstant")
        .ok_or("AuthnRequest has no IssueInstant")?
        .to_string();
    if root.attr("Version") != Some("2.0") {
        return Err("AuthnRequest Version must be 2.0".into());
    }
    let issuer = root
        .child(NS_ASSERTION, "Issuer")
        .map(|i| i.trimmed_text().to_string())
        .filter(|s| !s.is_empty())
        .ok_or("AuthnRequest has no Issuer")?;
    Ok(AuthnRequest {
        id,
        issue_instant,
        issuer,
        is_passive: root.attr("IsPassive") == Some("true"),
        force_authn: root.attr("ForceAuthn") == Some("true"),
        acs_url: root.attr("AssertionConsumerServiceURL").map(str::to_string),
    })
}

/// Encodes an `AuthnRequest` for the Redirect binding (tests and clients of the sandbox).
pub fn encode_redirect(id: &str, issuer: &str, is_passive: bool, issue_instant: &str) -> String {
    encode(id, issuer, is_passive, None, issue_instant)
}

/// Like [`encode_redirect`], naming where the response should go
/// (`AssertionConsumerServiceURL`), if anywhere.
pub fn encode_redirect_to(
    id: &str,
    issuer: &str,
    acs: Option<&str>,
    issue_instant: &str,
) -> String {
    encode(id, issuer, false, acs, issue_instant)
}

fn encode(
    id: &str,
    issuer: &str,
    is_passive: bool,
    acs: Option<&str>,
    issue_instant: &str,
) -> String {
    use std::io::Write;
    let acs = acs
        .map(|a| {
            format!(
                r#" AssertionConsumerServiceURL="{}""#,
                quick_xml::escape::escape(a)
            )
        })
        .unwrap_or_default();
    let doc = format!(
        r#"<samlp:AuthnRequest xmlns="urn:oasis:names:tc:SAML:2.0:metadata" ID="{}" Version="2.0" IssueInstant="{}" IsPassive="{}"{acs} xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">{}</Issuer></samlp:AuthnRequest>"#,
        quick_xml::escape::escape(id),
        quick_xml::escape::escape(issue_instant),
        is_passive,
        quick_xml::escape::escape(issuer)
    );
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(doc.as_bytes()).expect("in-memory write");
    STANDARD.encode(enc.finish().expect("in-memory deflate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let enc = encode_redirect(
            "id-1",
            "https://signin.aws.amazon.com/saml#1",
            true,
            "2026-01-01T00:00:00Z",
        );
        let r = decode_redirect(&enc).unwrap();
        assert_eq!(r.id, "id-1");
        assert_eq!(r.issuer, "https://signin.aws.amazon.com/saml#1");
        assert!(r.is_passive);
        assert_eq!(r.acs_url, None);
        let to = encode_redirect_to("id-2", "x", Some("https://a.example/saml"), "t");
        assert_eq!(
            decode_redirect(&to).unwrap().acs_url.as_deref(),
            Some("https://a.example/saml")
        );
    }

    #[test]
    fn refuses_bad_input() {
        assert!(decode_redirect("%%%").is_err());
        assert!(decode_redirect(&STANDARD.encode(b"not deflate at all")).is_err());
        let other = {
            use std::io::Write;
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b"<foo/>").unwrap();
            STANDARD.encode(e.finish().unwrap())
        };
        assert!(decode_redirect(&other)
            .unwrap_err()
            .contains("not an AuthnRequest"));
    }

    #[test]
    fn refuses_deflate_bomb() {
        use std::io::Write;
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b'a'; 10 * 1024 * 1024]).unwrap();
        let enc = STANDARD.encode(e.finish().unwrap());
        assert_eq!(
            decode_redirect(&enc).unwrap_err(),
            "SAMLRequest is too large"
        );
    }
}
