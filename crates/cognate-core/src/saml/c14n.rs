//! Exclusive XML Canonicalization 1.0 (https://www.w3.org/TR/xml-exc-c14n/), with or without
//! comments, of one element's subtree of a parsed document: what an XML signature's digest and
//! SignedInfo are computed over. `exclude` leaves one element out (the enveloped-signature
//! transform removes the Signature element from the subtree it signs).
//!
//! The parser has already done what canonical XML asks of the input: line endings are `\n`,
//! attribute values normalized, character and entity references replaced, CDATA sections
//! turned into text. Namespace declarations are rendered only where visibly utilized (the
//! element's own prefix, its attributes' prefixes, and the InclusiveNamespaces PrefixList),
//! and only when the nearest rendered ancestor did not render the same one.

use std::collections::BTreeMap;

use roxmltree::{Node, NodeId, NodeType};

const XML_NS_PREFIX: &str = "xml";

/// The canonical form of `node`'s subtree.
pub fn canonicalize(node: Node, with_comments: bool, inclusive: &[String], exclude: Option<NodeId>) -> String {
    let mut out = String::new();
    let options = Options { with_comments, inclusive, exclude };
    render(node, &options, &BTreeMap::new(), &mut out);
    out
}

struct Options<'a> {
    with_comments: bool,
    inclusive: &'a [String],
    exclude: Option<NodeId>,
}

/// The prefix of a qualified name as written ("" when it has none).
fn prefix_of(qname: &str) -> &str {
    qname.split_once(':').map_or("", |(prefix, _)| prefix)
}

/// An element's qualified name as written in the document (roxmltree keeps the namespace,
/// not the prefix, so the prefix is read from the start tag's text).
fn element_qname<'a>(node: Node<'_, 'a>) -> &'a str {
    let text = node.document().input_text();
    let start = node.range().start + 1;
    let rest = text.get(start..).unwrap_or("");
    let end = rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/').unwrap_or(rest.len());
    &rest[..end]
}

fn attribute_qname<'a>(node: Node<'_, 'a>, attribute: &roxmltree::Attribute<'_, 'a>) -> &'a str {
    node.document().input_text().get(attribute.range_qname()).unwrap_or("")
}

/// The namespace `prefix` ("" for the default namespace) is bound to at `node`, if any.
fn in_scope<'a>(node: Node<'a, 'a>, prefix: &str) -> Option<&'a str> {
    node.namespaces().find(|ns| ns.name().unwrap_or("") == prefix).map(|ns| ns.uri())
}

fn render(node: Node, options: &Options, rendered: &BTreeMap<String, String>, out: &mut String) {
    match node.node_type() {
        NodeType::Element => render_element(node, options, rendered, out),
        NodeType::Text => escape_text(node.text().unwrap_or(""), out),
        NodeType::Comment if options.with_comments => {
            out.push_str("<!--");
            out.push_str(node.text().unwrap_or(""));
            out.push_str("-->");
        }
        NodeType::PI => {
            if let Some(pi) = node.pi() {
                out.push_str("<?");
                out.push_str(pi.target);
                if let Some(value) = pi.value.filter(|v| !v.is_empty()) {
                    out.push(' ');
                    out.push_str(value);
                }
                out.push_str("?>");
            }
        }
        _ => {}
    }
}

fn render_element(node: Node, options: &Options, rendered: &BTreeMap<String, String>, out: &mut String) {
    if Some(node.id()) == options.exclude {
        return;
    }
    let qname = element_qname(node);
    // The prefixes visibly utilized here: the element's (the default namespace when it has
    // none), its attributes', and the InclusiveNamespaces ones that are in scope.
    let mut utilized: Vec<String> = vec![prefix_of(qname).to_owned()];
    let attributes: Vec<(&str, &str, &str, &str)> = node
        .attributes()
        .map(|a| (a.namespace().unwrap_or(""), a.name(), attribute_qname(node, &a), a.value()))
        .collect();
    for (_, _, attribute, _) in &attributes {
        let prefix = prefix_of(attribute);
        if !prefix.is_empty() && prefix != XML_NS_PREFIX {
            utilized.push(prefix.to_owned());
        }
    }
    for prefix in options.inclusive {
        let prefix = if prefix == "#default" { "" } else { prefix.as_str() };
        if in_scope(node, prefix).is_some() {
            utilized.push(prefix.to_owned());
        }
    }
    let mut declarations: BTreeMap<String, String> = BTreeMap::new();
    for prefix in utilized {
        if prefix == XML_NS_PREFIX {
            continue;
        }
        let uri = in_scope(node, &prefix).unwrap_or("");
        let already = rendered.get(&prefix).map(String::as_str);
        // An unbound default namespace needs `xmlns=""` only to undo a rendered ancestor's.
        let needed = if prefix.is_empty() && uri.is_empty() {
            already.is_some_and(|u| !u.is_empty())
        } else {
            already != Some(uri)
        };
        if needed {
            declarations.insert(prefix, uri.to_owned());
        }
    }
    out.push('<');
    out.push_str(qname);
    // BTreeMap order: the default namespace ("") first, then by prefix, as the spec sorts.
    for (prefix, uri) in &declarations {
        if prefix.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(prefix);
            out.push_str("=\"");
        }
        escape_attribute(uri, out);
        out.push('"');
    }
    // Attributes by namespace URI (none first), then local name.
    let mut sorted = attributes;
    sorted.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (_, _, attribute, value) in sorted {
        out.push(' ');
        out.push_str(attribute);
        out.push_str("=\"");
        escape_attribute(value, out);
        out.push('"');
    }
    out.push('>');
    let mut inner = rendered.clone();
    inner.extend(declarations);
    for child in node.children() {
        render(child, options, &inner, out);
    }
    out.push_str("</");
    out.push_str(qname);
    out.push('>');
}

fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attribute(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str, path_name: &str, with_comments: bool, inclusive: &[&str]) -> String {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let node = doc.descendants().find(|n| n.tag_name().name() == path_name).unwrap();
        let inclusive: Vec<String> = inclusive.iter().map(|s| s.to_string()).collect();
        canonicalize(node, with_comments, &inclusive, None)
    }

    #[test]
    fn renders_only_visibly_utilized_namespaces_once() {
        let xml = r#"<r:root xmlns:r="urn:r" xmlns:a="urn:a" xmlns:u="urn:unused"><a:child a:x="1" b="2"><a:leaf/></a:child></r:root>"#;
        assert_eq!(
            c14n(xml, "child", false, &[]),
            r#"<a:child xmlns:a="urn:a" b="2" a:x="1"><a:leaf></a:leaf></a:child>"#
        );
    }

    #[test]
    fn inclusive_prefixes_are_rendered_when_in_scope() {
        let xml = r#"<r:root xmlns:r="urn:r" xmlns:xs="urn:xs"><r:child/></r:root>"#;
        assert_eq!(
            c14n(xml, "child", false, &["xs", "nope"]),
            r#"<r:child xmlns:r="urn:r" xmlns:xs="urn:xs"></r:child>"#
        );
    }

    #[test]
    fn sorts_attributes_by_namespace_then_name_and_escapes() {
        let xml = "<e xmlns:b=\"urn:b\" xmlns:a=\"urn:z\" z=\"&lt;&amp;&quot;&#9;\" b:y=\"1\" a:y=\"2\" c=\"3\">a&amp;b&lt;c&gt;\r\n</e>";
        assert_eq!(
            c14n(xml, "e", false, &[]),
            "<e xmlns:a=\"urn:z\" xmlns:b=\"urn:b\" c=\"3\" z=\"&lt;&amp;&quot;&#x9;\" b:y=\"1\" a:y=\"2\">a&amp;b&lt;c&gt;\n</e>"
        );
    }

    #[test]
    fn default_namespace_and_its_undeclaration() {
        let xml = r#"<root xmlns="urn:d"><x><y xmlns=""/></x></root>"#;
        assert_eq!(c14n(xml, "x", false, &[]), r#"<x xmlns="urn:d"><y xmlns=""></y></x>"#);
        // An apex in no namespace needs no xmlns="".
        assert_eq!(c14n(r#"<root xmlns="urn:d"><y xmlns=""/></root>"#, "y", false, &[]), "<y></y>");
    }

    #[test]
    fn comments_kept_only_with_comments_and_cdata_is_text() {
        let xml = "<e><!-- note -->x<![CDATA[<&>]]><?pi data?></e>";
        assert_eq!(c14n(xml, "e", false, &[]), "<e>x&lt;&amp;&gt;<?pi data?></e>");
        assert_eq!(c14n(xml, "e", true, &[]), "<e><!-- note -->x&lt;&amp;&gt;<?pi data?></e>");
    }

    #[test]
    fn excludes_the_enveloped_signature() {
        let xml = r#"<a:e xmlns:a="urn:a" xmlns:ds="urn:ds"><ds:Signature><ds:x/></ds:Signature><a:k>v</a:k></a:e>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let signature = doc.descendants().find(|n| n.tag_name().name() == "Signature").unwrap();
        assert_eq!(
            canonicalize(doc.root_element(), false, &[], Some(signature.id())),
            r#"<a:e xmlns:a="urn:a"><a:k>v</a:k></a:e>"#
        );
    }

    #[test]
    fn redeclares_a_prefix_rebound_below() {
        let xml = r#"<p:a xmlns:p="urn:1"><p:b xmlns:p="urn:2"/></p:a>"#;
        assert_eq!(c14n(xml, "a", false, &[]), r#"<p:a xmlns:p="urn:1"><p:b xmlns:p="urn:2"></p:b></p:a>"#);
    }
}
