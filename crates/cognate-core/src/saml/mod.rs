//! SAML 2.0 web browser SSO as Cognito's service provider does it: the IdP's metadata (entity
//! ID, signing certificates, SingleSignOnService), the AuthnRequest sent with the HTTP-Redirect
//! binding, and the verification of the Response posted back (HTTP-POST binding).
//!
//! A Response is accepted only when an XML signature by a certificate of the IdP's metadata
//! (RSA-SHA256, SHA-256 digests, exclusive canonicalization) covers the one Assertion read,
//! and its status, destination, recipient, InResponseTo, audience, issuer and validity window
//! are this sign-in's. Not supported: encrypted assertions, RSA-SHA1 and other algorithms,
//! inclusive canonicalization, IdP-initiated responses (no InResponseTo).

pub mod c14n;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use roxmltree::{Document, Node};
use serde_json::{Map, Value};

const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const EXC_C14N_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// The clock skew allowed between the IdP and this server.
const SKEW_MS: i64 = 60 * 1000;

/// Cognito's service provider entity ID for a user pool: the Audience an IdP must address.
pub fn sp_entity_id(pool_id: &str) -> String {
    format!("urn:amazon:cognito:sp:{pool_id}")
}

/// What the SP needs of an IdP's metadata.
#[derive(Clone, Debug)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// The HTTP-Redirect SingleSignOnService's Location.
    pub sso_url: String,
    /// DER certificates of the signing KeyDescriptors (or of those with no `use`).
    pub signing_certs: Vec<Vec<u8>>,
}

fn is(node: &Node, namespace: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(namespace) && node.tag_name().name() == name
}

fn child<'a, 'i>(node: Node<'a, 'i>, namespace: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is(c, namespace, name))
}

/// All the text in an element, comments left out: what it says, as its canonical form signs
/// it (reading only the first text node would let a comment truncate a signed NameID).
fn text_of(node: Node) -> String {
    node.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect::<String>().trim().to_owned()
}

fn base64_of(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

/// Parsed without DTDs: roxmltree refuses a DOCTYPE (and so any entity declaration) unless
/// told otherwise.
fn parse(xml: &str) -> Result<Document<'_>, String> {
    Document::parse(xml).map_err(|e| format!("The XML could not be read ({e})."))
}

/// The IdP's metadata: its first EntityDescriptor with an IDPSSODescriptor.
pub fn parse_metadata(xml: &str) -> Result<IdpMetadata, String> {
    let doc = parse(xml)?;
    let entity = doc
        .descendants()
        .find(|n| is(n, METADATA, "EntityDescriptor") && child(*n, METADATA, "IDPSSODescriptor").is_some())
        .ok_or("The SAML metadata has no IDPSSODescriptor.")?;
    let entity_id = entity.attribute("entityID").ok_or("The SAML metadata has no entityID.")?.to_owned();
    let idp = child(entity, METADATA, "IDPSSODescriptor").ok_or("The SAML metadata has no IDPSSODescriptor.")?;
    let sso_url = idp
        .children()
        .find(|n| is(n, METADATA, "SingleSignOnService") && n.attribute("Binding") == Some(REDIRECT_BINDING))
        .and_then(|n| n.attribute("Location"))
        .ok_or("The SAML metadata has no HTTP-Redirect SingleSignOnService.")?
        .to_owned();
    let mut signing_certs = Vec::new();
    for key in idp.children().filter(|n| is(n, METADATA, "KeyDescriptor")) {
        if !matches!(key.attribute("use"), None | Some("signing")) {
            continue;
        }
        for cert in key.descendants().filter(|n| is(n, DSIG, "X509Certificate")) {
            signing_certs.push(base64_of(&text_of(cert)).ok_or("A certificate of the SAML metadata is not base64.")?);
        }
    }
    if signing_certs.is_empty() {
        return Err("The SAML metadata has no signing certificate.".into());
    }
    Ok(IdpMetadata { entity_id, sso_url, signing_certs })
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;").replace('>', "&gt;")
}

/// `time` as xs:dateTime (UTC, milliseconds).
fn instant(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.format(&format).unwrap_or_default()
}

fn parse_instant(text: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The AuthnRequest's ID: an NCName (a letter or `_` first), random.
pub fn new_request_id() -> String {
    format!("_{}", hex::encode(cognate_crypto::ids::random_bytes::<20>()))
}

/// The URL the browser is sent to: the IdP's SingleSignOnService with the AuthnRequest
/// DEFLATEd, base64'd and URL-encoded (HTTP-Redirect binding, unsigned, as Cognito's by
/// default) and the RelayState.
pub fn authn_request_url(
    metadata: &IdpMetadata,
    request_id: &str,
    pool_id: &str,
    acs_url: &str,
    now_ms: i64,
    relay_state: &str,
) -> String {
    let request = format!(
        "<samlp:AuthnRequest xmlns:samlp=\"{PROTOCOL}\" xmlns:saml=\"{ASSERTION}\" ID=\"{}\" Version=\"2.0\" \
         IssueInstant=\"{}\" Destination=\"{}\" AssertionConsumerServiceURL=\"{}\" ProtocolBinding=\"{POST_BINDING}\">\
         <saml:Issuer>{}</saml:Issuer>\
         <samlp:NameIDPolicy AllowCreate=\"true\"/></samlp:AuthnRequest>",
        xml_escape(request_id),
        instant(now_ms),
        xml_escape(&metadata.sso_url),
        xml_escape(acs_url),
        xml_escape(&sp_entity_id(pool_id)),
    );
    let deflated = miniz_oxide::deflate::compress_to_vec(request.as_bytes(), 6);
    let query = crate::aws::form_of(&[("SAMLRequest", &STANDARD.encode(deflated)), ("RelayState", relay_state)]);
    let separator = if metadata.sso_url.contains('?') { '&' } else { '?' };
    format!("{}{separator}{query}", metadata.sso_url)
}

/// What the response must be about.
pub struct Expected<'a> {
    pub acs_url: &'a str,
    pub audience: &'a str,
    pub request_id: &'a str,
    pub metadata: &'a IdpMetadata,
    pub now_ms: i64,
}

/// What a verified assertion says.
#[derive(Debug)]
pub struct Verified {
    /// The NameID.
    pub subject: String,
    /// The attributes by Name (several values joined with commas), as the claims the
    /// provider's AttributeMapping maps.
    pub attributes: Map<String, Value>,
}

/// The posted SAMLResponse (base64), verified. Every refusal says why.
pub fn verify_response(posted: &str, expected: &Expected) -> Result<Verified, String> {
    let bytes = base64_of(posted).ok_or("The SAMLResponse is not base64.")?;
    let xml = String::from_utf8(bytes).map_err(|_| "The SAMLResponse is not UTF-8.")?;
    let doc = parse(&xml)?;
    let response = doc.root_element();
    if !is(&response, PROTOCOL, "Response") {
        return Err("The SAMLResponse is not a SAML 2.0 Response.".into());
    }
    if doc.descendants().any(|n| is(&n, ASSERTION, "EncryptedAssertion")) {
        return Err("Encrypted SAML assertions are not supported.".into());
    }
    // Exactly one Assertion in the whole document, a child of the Response: a second one
    // (signed or not, anywhere) is how signature wrapping smuggles in what is read.
    let assertions: Vec<Node> = doc.descendants().filter(|n| is(n, ASSERTION, "Assertion")).collect();
    let [assertion] = assertions[..] else {
        return Err(format!("The SAML response has {} assertions, not one.", assertions.len()));
    };
    if assertion.parent_element() != Some(response) {
        return Err("The SAML assertion is not the response's own.".into());
    }
    // The signatures of the Response and of the Assertion (their direct children): each
    // present must verify, and at least one must exist. Either covers the assertion read (the
    // Response's covers its only Assertion).
    let mut signed = false;
    for element in [response, assertion] {
        if let Some(signature) = child(element, DSIG, "Signature") {
            verify_signature(&doc, element, signature, &expected.metadata.signing_certs)?;
            signed = true;
        }
    }
    if !signed {
        return Err("The SAML response is not signed.".into());
    }
    check_response(response, assertion, expected)
}

/// The signed checks once the signature holds.
fn check_response(response: Node, assertion: Node, expected: &Expected) -> Result<Verified, String> {
    let status = child(response, PROTOCOL, "Status")
        .and_then(|s| child(s, PROTOCOL, "StatusCode"))
        .and_then(|c| c.attribute("Value"));
    if status != Some(SUCCESS) {
        return Err(format!("The identity provider did not sign the user in (status {}).", status.unwrap_or("none")));
    }
    if response.attribute("Destination").is_some_and(|d| d != expected.acs_url) {
        return Err("The SAML response is for another destination.".into());
    }
    match response.attribute("InResponseTo") {
        None => return Err("IdP-initiated SAML sign-in (a response to no request) is not supported.".into()),
        Some(id) if id != expected.request_id => return Err("The SAML response answers another request.".into()),
        Some(_) => {}
    }
    let entity = expected.metadata.entity_id.as_str();
    if child(response, ASSERTION, "Issuer").is_some_and(|i| text_of(i) != entity) {
        return Err("The SAML response is from another issuer.".into());
    }
    if child(assertion, ASSERTION, "Issuer").map(text_of).as_deref() != Some(entity) {
        return Err("The SAML assertion is from another issuer.".into());
    }
    let now = expected.now_ms;
    let conditions = child(assertion, ASSERTION, "Conditions").ok_or("The SAML assertion has no Conditions.")?;
    check_window(conditions, now, "The SAML assertion")?;
    let audiences: Vec<String> = conditions
        .children()
        .filter(|n| is(n, ASSERTION, "AudienceRestriction"))
        .map(|r| r.children().filter(|n| is(n, ASSERTION, "Audience")).map(text_of).collect::<Vec<_>>())
        .map(|list| list.into_iter().find(|a| a == expected.audience).unwrap_or_default())
        .collect();
    // Every AudienceRestriction must name this pool (each is a condition), and one must exist.
    if audiences.is_empty() || audiences.iter().any(String::is_empty) {
        return Err("The SAML assertion is for another audience.".into());
    }
    let subject = child(assertion, ASSERTION, "Subject").ok_or("The SAML assertion has no Subject.")?;
    let name_id = child(subject, ASSERTION, "NameID").map(text_of).filter(|n| !n.is_empty());
    let name_id = name_id.ok_or("The SAML assertion has no NameID.")?;
    // A bearer confirmation for this ACS, this request, still valid.
    let confirmed = subject
        .children()
        .filter(|n| is(n, ASSERTION, "SubjectConfirmation") && n.attribute("Method") == Some(BEARER))
        .filter_map(|c| child(c, ASSERTION, "SubjectConfirmationData"))
        .any(|data| {
            data.attribute("Recipient") == Some(expected.acs_url)
                && data.attribute("InResponseTo").is_none_or(|id| id == expected.request_id)
                && data.attribute("NotOnOrAfter").is_some()
                && check_window(data, now, "").is_ok()
        });
    if !confirmed {
        return Err(
            "The SAML assertion's subject is not confirmed for this sign-in (recipient, request or time).".into()
        );
    }
    let mut attributes = Map::new();
    for statement in assertion.children().filter(|n| is(n, ASSERTION, "AttributeStatement")) {
        for attribute in statement.children().filter(|n| is(n, ASSERTION, "Attribute")) {
            let Some(name) = attribute.attribute("Name") else { continue };
            let values: Vec<String> =
                attribute.children().filter(|n| is(n, ASSERTION, "AttributeValue")).map(text_of).collect();
            attributes.insert(name.to_owned(), Value::String(values.join(",")));
        }
    }
    Ok(Verified { subject: name_id, attributes })
}

/// NotBefore / NotOnOrAfter of `node`, with the skew.
fn check_window(node: Node, now: i64, what: &str) -> Result<(), String> {
    let bound = |name: &str| -> Result<Option<i64>, String> {
        node.attribute(name).map(|t| parse_instant(t).ok_or(format!("{what} has an unreadable {name}."))).transpose()
    };
    if bound("NotBefore")?.is_some_and(|at| now + SKEW_MS < at) {
        return Err(format!("{what} is not valid yet."));
    }
    if bound("NotOnOrAfter")?.is_some_and(|at| now - SKEW_MS >= at) {
        return Err(format!("{what} has expired."));
    }
    Ok(())
}

/// The XML signature `signature` of `element`: its one Reference must be `#` + the element's
/// ID (unique in the document), its digest the element's canonical form's, and SignedInfo
/// signed by one of `certs` (a KeyInfo certificate is only accepted when it is one of them).
fn verify_signature(doc: &Document, element: Node, signature: Node, certs: &[Vec<u8>]) -> Result<(), String> {
    let bad = |why: &str| format!("The SAML signature is not valid: {why}.");
    let id = element.attribute("ID").ok_or_else(|| bad("the signed element has no ID"))?;
    let same_id = doc.descendants().filter(|n| n.attributes().any(|a| a.name() == "ID" && a.value() == id)).count();
    if same_id != 1 {
        return Err(bad("the signed element's ID is not unique"));
    }
    let signed_info = child(signature, DSIG, "SignedInfo").ok_or_else(|| bad("no SignedInfo"))?;
    let (c14n_comments, c14n_prefixes) = c14n_method(child(signed_info, DSIG, "CanonicalizationMethod"))
        .ok_or_else(|| bad("unsupported canonicalization"))?;
    let method = child(signed_info, DSIG, "SignatureMethod").and_then(|m| m.attribute("Algorithm"));
    if method != Some(RSA_SHA256) {
        return Err(bad(&format!("signature method {} (only RSA-SHA256 is accepted)", method.unwrap_or("none"))));
    }
    let references: Vec<Node> = signed_info.children().filter(|n| is(n, DSIG, "Reference")).collect();
    let [reference] = references[..] else {
        return Err(bad("not exactly one Reference"));
    };
    if reference.attribute("URI") != Some(&format!("#{id}")) {
        return Err(bad("the Reference is not to the signed element"));
    }
    let mut enveloped = false;
    let mut transform_c14n = None;
    if let Some(transforms) = child(reference, DSIG, "Transforms") {
        for transform in transforms.children().filter(|n| n.is_element()) {
            if !is(&transform, DSIG, "Transform") {
                return Err(bad("unexpected element in Transforms"));
            }
            match transform.attribute("Algorithm") {
                Some(ENVELOPED) => enveloped = true,
                _ => transform_c14n = Some(c14n_method(Some(transform)).ok_or_else(|| bad("unsupported transform"))?),
            }
        }
    }
    // Exclusive c14n is required (XMLDSig's default would be inclusive c14n, not supported).
    // A same-document `#id` reference drops comments before any transform, so the digest is
    // always of the form without them.
    let (_, prefixes) = transform_c14n.ok_or_else(|| bad("no exclusive canonicalization transform"))?;
    let digest_method = child(reference, DSIG, "DigestMethod").and_then(|m| m.attribute("Algorithm"));
    if digest_method != Some(SHA256) {
        return Err(bad("the digest is not SHA-256"));
    }
    let digest_value = child(reference, DSIG, "DigestValue")
        .and_then(|d| base64_of(&text_of(d)))
        .ok_or_else(|| bad("no DigestValue"))?;
    let canonical = c14n::canonicalize(element, false, &prefixes, enveloped.then_some(signature.id()));
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    if !cognate_crypto::ct::eq(digest.as_ref(), &digest_value) {
        return Err(bad("the signed content was changed (digest mismatch)"));
    }
    let signature_value = child(signature, DSIG, "SignatureValue")
        .and_then(|v| base64_of(&text_of(v)))
        .ok_or_else(|| bad("no SignatureValue"))?;
    // A certificate in KeyInfo is only a hint: it must be one of the metadata's.
    for embedded in signature.descendants().filter(|n| is(n, DSIG, "X509Certificate")) {
        let der = base64_of(&text_of(embedded)).ok_or_else(|| bad("unreadable KeyInfo certificate"))?;
        if !certs.contains(&der) {
            return Err(bad("signed with a certificate that is not the identity provider's"));
        }
    }
    let signed_text = c14n::canonicalize(signed_info, c14n_comments, &c14n_prefixes, None);
    let verified = certs.iter().any(|cert| {
        rsa_public_key(cert).is_some_and(|key| {
            aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, key)
                .verify(signed_text.as_bytes(), &signature_value)
                .is_ok()
        })
    });
    if !verified {
        return Err(bad("not signed by the identity provider's key"));
    }
    Ok(())
}

/// An exclusive canonicalization method element: with comments or not, and its
/// InclusiveNamespaces PrefixList. None for any other algorithm.
fn c14n_method(method: Option<Node>) -> Option<(bool, Vec<String>)> {
    let method = method?;
    let comments = match method.attribute("Algorithm")? {
        EXC_C14N => false,
        EXC_C14N_COMMENTS => true,
        _ => return None,
    };
    let prefixes = method
        .children()
        .find(|n| is(n, EXC_C14N, "InclusiveNamespaces"))
        .and_then(|n| n.attribute("PrefixList"))
        .map(|list| list.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    Some((comments, prefixes))
}

/// A DER element at the start of `input`: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count].iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

/// The RSAPublicKey (PKCS#1) inside a certificate's SubjectPublicKeyInfo: Certificate ->
/// tbsCertificate -> [version], serial, signature, issuer, validity, subject, SPKI ->
/// BIT STRING. The certificate itself is trusted as the metadata's, not checked as a chain
/// (its dates are not checked either, as SAML SPs do for metadata certificates).
fn rsa_public_key(cert: &[u8]) -> Option<&[u8]> {
    let (0x30, certificate, _) = der(cert)? else { return None };
    let (0x30, mut tbs, _) = der(certificate)? else { return None };
    if tbs.first() == Some(&0xa0) {
        tbs = der(tbs)?.2;
    }
    for _ in 0..5 {
        tbs = der(tbs)?.2;
    }
    let (0x30, spki, _) = der(tbs)? else { return None };
    let (0x30, _algorithm, rest) = der(spki)? else { return None };
    let (0x03, bits, _) = der(rest)? else { return None };
    // The BIT STRING's first byte counts unused bits: 0 for a key.
    match bits.split_first() {
        Some((0, key)) => Some(key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! Against a response samlify's IdP signed (tests/clients/js/saml-idp.mjs, kept in
    //! testdata/ with its metadata), read at a fixed instant so that it stays valid.
    use super::*;

    const METADATA: &str = include_str!("testdata/idp-metadata.xml");
    const RESPONSE: &str = include_str!("testdata/response.xml");
    const ACS: &str = "https://sp.example.test/saml2/idpresponse";
    const AUDIENCE: &str = "urn:amazon:cognito:sp:us-east-1_test";

    fn verify_at(xml: &str, request_id: &str, now: &str) -> Result<Verified, String> {
        let metadata = parse_metadata(METADATA).unwrap();
        let now_ms = parse_instant(now).unwrap();
        let expected = Expected { acs_url: ACS, audience: AUDIENCE, request_id, metadata: &metadata, now_ms };
        verify_response(&STANDARD.encode(xml), &expected)
    }

    fn verify(xml: &str) -> Result<Verified, String> {
        verify_at(xml, "_request1", "2026-12-05T03:12:00Z")
    }

    #[test]
    fn reads_the_metadata() {
        let metadata = parse_metadata(METADATA).unwrap();
        assert_eq!(metadata.entity_id, "https://idp.example.test/saml");
        assert_eq!(metadata.sso_url, "https://idp.example.test/sso");
        assert_eq!(metadata.signing_certs.len(), 1);
        assert!(rsa_public_key(&metadata.signing_certs[0]).is_some());
    }

    #[test]
    fn accepts_the_signed_response() {
        let verified = verify(RESPONSE).unwrap();
        assert_eq!(verified.subject, "eve@example.com");
        assert_eq!(verified.attributes["given_name"], "Eve");
    }

    #[test]
    fn a_comment_cannot_truncate_the_signed_name_id() {
        // Comments are not signed (exclusive c14n without comments): the NameID read must be
        // all of its text, not the part before the comment.
        let xml = RESPONSE.replacen("eve@example.com</saml:NameID>", "eve@example<!---->.com</saml:NameID>", 1);
        assert_ne!(xml, RESPONSE);
        assert_eq!(verify(&xml).unwrap().subject, "eve@example.com");
    }

    #[test]
    fn refuses_changes_and_weaker_algorithms() {
        let changed = RESPONSE.replacen(">Eve<", ">Mallory<", 1);
        assert!(verify(&changed).unwrap_err().contains("digest mismatch"));
        let sha1 = RESPONSE.replace(RSA_SHA256, "http://www.w3.org/2000/09/xmldsig#rsa-sha1");
        assert!(verify(&sha1).unwrap_err().contains("only RSA-SHA256"));
        let doctype = format!("<!DOCTYPE r [<!ENTITY e \"x\">]>{RESPONSE}");
        assert!(verify(&doctype).unwrap_err().contains("could not be read"));
    }

    #[test]
    fn refuses_a_second_element_with_the_signed_id() {
        let id = RESPONSE.split("<saml:Assertion").nth(1).and_then(|a| a.split("ID=\"").nth(1)).unwrap();
        let id = id.split('"').next().unwrap();
        let xml = RESPONSE.replacen("<samlp:Status>", &format!("<samlp:Extensions ID=\"{id}\"/><samlp:Status>"), 1);
        assert!(verify(&xml).unwrap_err().contains("not unique"));
    }

    #[test]
    fn refuses_the_wrong_request_time_or_signature_absence() {
        assert!(verify_at(RESPONSE, "_other", "2026-12-05T03:12:00Z").unwrap_err().contains("another request"));
        assert!(verify_at(RESPONSE, "_request1", "2026-12-05T04:00:00Z").unwrap_err().contains("expired"));
        assert!(verify_at(RESPONSE, "_request1", "2026-12-05T03:00:00Z").unwrap_err().contains("not valid yet"));
        let start = RESPONSE.find("<ds:Signature").unwrap();
        let end = RESPONSE.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        let unsigned = format!("{}{}", &RESPONSE[..start], &RESPONSE[end..]);
        assert!(verify(&unsigned).unwrap_err().contains("not signed"));
    }

    #[test]
    fn the_authn_request_inflates_to_the_request() {
        let metadata = parse_metadata(METADATA).unwrap();
        let url = authn_request_url(&metadata, "_abc", "us-east-1_test", ACS, 0, "relay");
        let query = url.strip_prefix("https://idp.example.test/sso?SAMLRequest=").unwrap();
        let encoded = query.split('&').next().unwrap().replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
        let inflated = miniz_oxide::inflate::decompress_to_vec(&STANDARD.decode(encoded).unwrap()).unwrap();
        let request = String::from_utf8(inflated).unwrap();
        assert!(request.contains("ID=\"_abc\""), "{request}");
        assert!(request.contains(&format!("AssertionConsumerServiceURL=\"{ACS}\"")), "{request}");
        assert!(request.contains("<saml:Issuer>urn:amazon:cognito:sp:us-east-1_test</saml:Issuer>"), "{request}");
        assert!(url.ends_with("&RelayState=relay"), "{url}");
    }
}
