//! A small namespace-aware element tree over quick-xml, enough to read SAML messages.
//! Document type declarations are refused (no entity tricks reach the emulator).

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// One element: namespace URI, local name, attributes (local name → unescaped value), children
/// and its own text content.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// Direct children with this namespace and local name.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every descendant (not self) with this namespace and local name, document order.
    pub fn descendants<'a>(&'a self, ns: &str, name: &str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.is(ns, name) {
                out.push(c);
            }
            c.descendants(ns, name, out);
        }
    }

    pub fn trimmed_text(&self) -> &str {
        self.text.trim()
    }
}

/// Parses `xml` into its root element.
pub fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("malformed XML: {e}"))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err("malformed XML: content after the root element".into());
                }
                let ns = match ns {
                    ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                    ResolveResult::Unbound => String::new(),
                    ResolveResult::Unknown(p) => {
                        return Err(format!(
                            "malformed XML: unknown namespace prefix {}",
                            String::from_utf8_lossy(&p)
                        ))
                    }
                };
                let mut el = Element {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| format!("malformed XML attribute: {e}"))?;
                    let key = a.key;
                    if key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let value = a
                        .unescape_value()
                        .map_err(|e| format!("malformed XML attribute: {e}"))?
                        .into_owned();
                    el.attrs.push((
                        String::from_utf8_lossy(key.local_name().as_ref()).into_owned(),
                        value,
                    ));
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(el);
                } else {
                    attach(&mut stack, &mut root, el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("malformed XML: unbalanced end tag")?;
                attach(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t
                        .unescape()
                        .map_err(|e| format!("malformed XML text: {e}"))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::DocType(_) => return Err("XML document type declarations are refused".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("malformed XML: unclosed element".into());
    }
    root.ok_or_else(|| "malformed XML: no root element".into())
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_text() {
        let x = r#"<p:a xmlns:p="urn:x" xmlns="urn:y" k="v&amp;w"><b>t&lt;</b><p:c/></p:a>"#;
        let r = parse(x).unwrap();
        assert!(r.is("urn:x", "a"));
        assert_eq!(r.attr("k"), Some("v&w"));
        assert_eq!(r.child("urn:y", "b").unwrap().text, "t<");
        assert!(r.child("urn:x", "c").is_some());
    }

    #[test]
    fn refuses_doctype_and_garbage() {
        assert!(parse(r#"<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>"#).is_err());
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a/><b/>").is_err());
    }
}
