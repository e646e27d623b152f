//! Entra's federation metadata (`idp_metadata`): the IdP's signing certificates.

use super::xml;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::path::Path;

const NS_METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";

/// The DER signing certificates of the IdP descriptor (KeyDescriptors with `use="signing"` or
/// no `use`). An error names the file and what is wrong, never its content.
pub fn signing_certs_from_file(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let doc = std::fs::read_to_string(path)
        .map_err(|e| format!("idp_metadata {}: cannot read it: {e}", path.display()))?;
    signing_certs(&doc).map_err(|e| format!("idp_metadata {}: {e}", path.display()))
}

pub fn signing_certs(doc: &str) -> Result<Vec<Vec<u8>>, String> {
    let root = xml::parse(doc)?;
    if !root.is(NS_METADATA, "EntityDescriptor") {
        return Err("not SAML metadata (no md:EntityDescriptor root)".into());
    }
    let mut descriptors = Vec::new();
    root.descendants(NS_METADATA, "IDPSSODescriptor", &mut descriptors);
    let mut certs = Vec::new();
    for d in descriptors {
        for kd in d.children_named(NS_METADATA, "KeyDescriptor") {
            if kd.attr("use").is_some_and(|u| u != "signing") {
                continue;
            }
            let mut found = Vec::new();
            kd.descendants(super::NS_DSIG, "X509Certificate", &mut found);
            for c in found {
                let compact: String = c.text.split_whitespace().collect();
                let der = STANDARD
                    .decode(compact)
                    .map_err(|_| "an X509Certificate is not base64".to_string())?;
                if !certs.contains(&der) {
                    certs.push(der);
                }
            }
        }
    }
    if certs.is_empty() {
        return Err("no IdP signing certificate in it".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_signing_certs_only() {
        let doc = r#"<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x">
<IDPSSODescriptor><KeyDescriptor use="encryption"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>AAAA</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>AQID
BA==</X509Certificate></X509Data></KeyInfo></KeyDescriptor></IDPSSODescriptor></EntityDescriptor>"#;
        assert_eq!(signing_certs(doc).unwrap(), vec![vec![1, 2, 3, 4]]);
        assert!(signing_certs("<a/>")
            .unwrap_err()
            .contains("EntityDescriptor"));
        let none = r#"<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"/>"#;
        assert!(signing_certs(none).unwrap_err().contains("no IdP signing"));
    }
}
