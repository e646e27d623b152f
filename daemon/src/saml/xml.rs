//! A small namespace-aware element tree over `quick-xml`, enough to read SAML documents.
//!
//! DOCTYPE declarations are refused (no entity expansion, no external references), and the
//! tree depth and size are bounded before anything else looks at the document.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// A SAML response is never legitimately larger than this.
pub const MAX_DOCUMENT: usize = 512 * 1024;
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI, when bound.
    pub ns: Option<String>,
    pub local: String,
    /// Attributes by local name (namespace declarations left out).
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Concatenated direct text content.
    pub text: String,
}

impl Element {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, local))
    }

    /// Every element below this one (not itself) with that name, document order.
    pub fn descendants<'a>(&'a self, ns: &str, local: &str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.is(ns, local) {
                out.push(c);
            }
            c.descendants(ns, local, out);
        }
    }

    /// This element and every descendant, document order.
    pub fn walk<'a>(&'a self, out: &mut Vec<&'a Element>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }

    pub fn trimmed_text(&self) -> &str {
        self.text.trim()
    }
}

/// Parses a document into its root element. Errors are short and never quote the document.
pub fn parse(doc: &str) -> Result<Element, String> {
    if doc.len() > MAX_DOCUMENT {
        return Err("the document is too large".into());
    }
    let mut reader = NsReader::from_str(doc);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (ns, ev) = match reader.read_resolved_event() {
            Ok(event) => event,
            Err(e) => {
                return Err(format!(
                    "not well-formed XML ({} near byte {})",
                    what_is_wrong(&e),
                    reader.error_position()
                ))
            }
        };
        let ns = match ns {
            ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(_) => {
                return Err("an XML namespace prefix is not declared".into())
            }
        };
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                if root.is_some() {
                    return Err("content after the root element".into());
                }
                let mut attrs = Vec::new();
                for a in s.attributes() {
                    let a = a.map_err(|_| "a malformed XML attribute".to_string())?;
                    let key = a.key;
                    if key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let name = String::from_utf8_lossy(key.local_name().as_ref()).into_owned();
                    let value = a
                        .unescape_value()
                        .map_err(|_| "a malformed XML attribute value".to_string())?
                        .into_owned();
                    attrs.push((name, value));
                }
                let el = Element {
                    ns,
                    local: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    attrs,
                    children: Vec::new(),
                    text: String::new(),
                };
                if matches!(ev, Event::Empty(_)) {
                    close(el, &mut stack, &mut root);
                } else {
                    if stack.len() >= MAX_DEPTH {
                        return Err("the XML is nested too deeply".into());
                    }
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced XML")?;
                close(el, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let s = t
                    .unescape()
                    .map_err(|_| "a malformed XML text node".to_string())?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err("text outside the root element".into()),
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::DocType(_) => return Err("XML with a DOCTYPE is refused".into()),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("the XML ends early".into());
    }
    root.ok_or_else(|| "no XML element".into())
}

fn close(el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

/// What kind of error, in words that never come from the document: quick-xml's own messages
/// quote tag, attribute and entity names, which a tampered document fills with its content.
fn what_is_wrong(e: &quick_xml::Error) -> String {
    use quick_xml::Error as E;
    match e {
        // A fixed set of messages about the grammar, without document text.
        E::Syntax(s) => s.to_string(),
        E::IllFormed(_) => "mismatched or unexpected tags".into(),
        E::InvalidAttr(_) => "a malformed attribute".into(),
        E::Escape(_) => "an unknown character or entity reference".into(),
        E::Encoding(_) => "text that is not valid in its encoding".into(),
        E::Namespace(_) => "a namespace error".into(),
        E::Io(_) => "a read error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespaces_attributes_and_text() {
        let r = parse(r#"<?xml version="1.0"?><p:R xmlns:p="urn:p" ID="x"><A xmlns="urn:a" k="v&amp;w">t&lt;1</A><p:B/></p:R>"#).unwrap();
        assert!(r.is("urn:p", "R"));
        assert_eq!(r.attr("ID"), Some("x"));
        let a = r.child("urn:a", "A").unwrap();
        assert_eq!((a.attr("k"), a.text.as_str()), (Some("v&w"), "t<1"));
        assert!(r.child("urn:p", "B").is_some());
    }

    #[test]
    fn refuses_doctype_garbage_and_two_roots() {
        assert!(parse(r#"<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>"#)
            .unwrap_err()
            .contains("DOCTYPE"));
        assert!(parse("not xml at all").is_err());
        assert!(parse("<a></b>").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("<a><b>").is_err());
        assert!(parse("<x:a/>").is_err());
    }

    /// Found by fuzzing: quick-xml's messages quote tag names, which an altered document fills
    /// with its own content (here a secret and a line break from a base64 signature value).
    #[test]
    fn errors_never_quote_the_document() {
        for doc in [
            "<Attribute>v</AttSECRETdt2/6Wg9o\nSjdMBrPn4OWwv>",
            "<a></SECRET>",
            "</SECRET>",
            "<a><SECRET>",
            "<a SECRET=x SECRET=y/>",
            "<a>&SECRET;</a>",
            "<a SECRET></a>",
        ] {
            let e = parse(doc).unwrap_err();
            assert!(!e.contains("SECRET") && !e.contains('\n'), "{doc:?}: {e:?}");
        }
    }
}
