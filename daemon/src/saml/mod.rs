//! SAML for the entra-saml source: the SP-initiated `AuthnRequest` (HTTP-Redirect binding), the
//! IdP signing certificates of Entra's federation metadata, and the checks a captured
//! `SAMLResponse` must pass before any of it is used (status, InResponseTo, Destination,
//! Recipient, time window, Audience, signature with wrapping defences, Role values).
//!
//! Nothing here keeps or logs a response: callers hold it in a [`SamlResponse`] (zeroized,
//! redacted Debug) for as long as STS needs it.

pub mod metadata;
pub mod request;
pub mod response;
pub mod xml;

use std::fmt;
use zeroize::Zeroizing;

pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

pub const ATTR_ROLE: &str = "https://aws.amazon.com/SAML/Attributes/Role";
pub const ATTR_SESSION_NAME: &str = "https://aws.amazon.com/SAML/Attributes/RoleSessionName";
pub const ATTR_SESSION_DURATION: &str = "https://aws.amazon.com/SAML/Attributes/SessionDuration";

/// URL patterns (DevTools `Fetch` syntax) of every AWS sign-in endpoint form Entra may post to:
/// global, regional, the encrypted-assertion ACS `…/saml/acs/<id>` (covered by `saml*`),
/// GovCloud and China.
pub const SIGNIN_PATTERNS: &[&str] = &[
    "https://signin.aws.amazon.com/saml*",
    "https://*.signin.aws.amazon.com/saml*",
    "https://signin.amazonaws-us-gov.com/saml*",
    "https://signin.amazonaws.cn/saml*",
];

/// Whether `url` is an AWS sign-in SAML endpoint (the only Recipient STS accepts): global,
/// regional, GovCloud, China, or the `…/saml/acs/<id>` form of any of them; https only.
pub fn is_aws_signin(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path_ok = path == "saml"
        || path.strip_prefix("saml/acs/").is_some_and(|id| {
            !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    let host_ok = matches!(
        host,
        "signin.aws.amazon.com" | "signin.amazonaws-us-gov.com" | "signin.amazonaws.cn"
    ) || host
        .strip_suffix(".signin.aws.amazon.com")
        .is_some_and(is_region);
    path_ok && host_ok
}

/// `eu-west-1`, `us-gov-west-1`: lowercase words and digits, at least three dash-parts.
fn is_region(r: &str) -> bool {
    r.split('-').count() >= 3
        && r.split('-').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// A base64 `SAMLResponse` as captured or pasted: a bearer secret until it expires.
#[derive(Clone)]
pub struct SamlResponse(Zeroizing<String>);

impl SamlResponse {
    /// Whitespace (line breaks of a pasted value) is dropped.
    pub fn new(b64: &str) -> Self {
        SamlResponse(Zeroizing::new(
            b64.chars().filter(|c| !c.is_whitespace()).collect(),
        ))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SamlResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SamlResponse(** redacted, {} chars **)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signin_endpoints() {
        for ok in [
            "https://signin.aws.amazon.com/saml",
            "https://eu-west-1.signin.aws.amazon.com/saml",
            "https://us-gov-west-1.signin.aws.amazon.com/saml",
            "https://signin.amazonaws-us-gov.com/saml",
            "https://signin.amazonaws.cn/saml",
            "https://signin.aws.amazon.com/saml/acs/SAMLSP4ABCDEF",
        ] {
            assert!(is_aws_signin(ok), "{ok}");
        }
        for bad in [
            "http://signin.aws.amazon.com/saml",
            "http://127.0.0.1:8080/saml",
            "https://signin.aws.amazon.com.evil.example/saml",
            "https://evil.example/saml",
            "https://signin.aws.amazon.com/other",
            "https://x.signin.aws.amazon.com/saml",
            "https://a.b.signin.aws.amazon.com/saml",
            "https://signin.aws.amazon.com/saml/acs/",
            "",
        ] {
            assert!(!is_aws_signin(bad), "{bad}");
        }
    }

    #[test]
    fn response_debug_is_redacted() {
        let r = SamlResponse::new("PHNhbWw+c2VjcmV0\nPC9zYW1sPg==");
        assert_eq!(r.expose(), "PHNhbWw+c2VjcmV0PC9zYW1sPg==");
        let d = format!("{r:?}");
        assert!(!d.contains("PHNh") && d.contains("redacted"), "{d}");
    }
}
