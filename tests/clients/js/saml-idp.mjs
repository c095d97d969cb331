// A SAML 2.0 identity provider for crates/cognate-e2e/tests/hosted_saml.rs, with samlify's
// IdP side signing the responses. One command per run (JSON on stdin, JSON on the last line
// of stdout):
//   {"command": "keys"}: a new RSA key and self-signed certificate (PEM; made by the openssl
//     command line, as node:crypto cannot issue certificates).
//   {"command": "metadata", "idp": {entityID, ssoUrl, key, cert}}: the IdP's metadata XML.
//   {"command": "respond", "idp": {...}, "location": <where Cognate sent the browser>,
//    "user": {nameID, attributes: {name: value}}, "override": {...}}: the AuthnRequest read
//     from the Location (HTTP-Redirect binding: base64 of raw DEFLATE) and a signed
//     SAMLResponse for it, with the RelayState to post back. `override` replaces values of
//     the response (audience, inResponseTo, notOnOrAfter, notBefore, recipient, destination),
//     chooses what is signed (signAssertion, default true; signMessage: the Response) and
//     tampers with it after signing (replace, wrap: see tamper).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import * as samlify from 'samlify';

// samlify validates messages it parses against the SAML schema; this IdP parses none (it
// reads the AuthnRequest itself), so no validator is needed.
samlify.setSchemaValidator({ validate: async () => 'skipped' });

// samlify logs notes on standard output, where the result must be the last line.
const print = console.log;
console.log = (...args) => console.error(...args);
console.warn = (...args) => console.error(...args);

const input = JSON.parse(readFileSync(0, 'utf8'));
const { binding } = samlify.Constants.namespace;
const escape = (s) =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function keys() {
  const dir = mkdtempSync(join(tmpdir(), 'saml-idp-'));
  try {
    const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
        '-subj', '/CN=saml-idp.test', '-keyout', key, '-out', cert], { stdio: 'pipe' });
    } catch (error) {
      throw new Error(`the openssl command line makes the IdP's certificate (apt-get install openssl): ${error.message}`);
    }
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function identityProvider({ entityID, ssoUrl, key, cert }) {
  return samlify.IdentityProvider({
    entityID,
    privateKey: key,
    signingCert: cert,
    requestSignatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    singleSignOnService: [{ Binding: binding.redirect, Location: ssoUrl }],
    nameIDFormat: ['urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress'],
  });
}

function readRequest(location) {
  const url = new URL(location);
  const xml = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest'), 'base64')).toString('utf8');
  const attr = (name) => (xml.match(new RegExp(`\\s${name}="([^"]*)"`)) || [])[1];
  const issuer = (xml.match(/<saml:Issuer>([^<]*)<\/saml:Issuer>/) || [])[1];
  return {
    xml, id: attr('ID'), acs: attr('AssertionConsumerServiceURL'), destination: attr('Destination'), issuer,
    relayState: url.searchParams.get('RelayState'),
  };
}

async function respond({ idp: settings, location, user, override = {} }) {
  const request = readRequest(location);
  const idp = identityProvider(settings);
  const sp = samlify.ServiceProvider({
    entityID: override.audience ?? request.issuer,
    assertionConsumerService: [{ Binding: binding.post, Location: request.acs }],
    wantAssertionsSigned: override.signAssertion ?? true,
    wantMessageSigned: Boolean(override.signMessage),
  });
  const now = new Date();
  const later = new Date(now.getTime() + 5 * 60 * 1000).toISOString();
  const attributes = Object.entries(user.attributes || {}).map(([name, value]) =>
    `<saml:Attribute Name="${escape(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">` +
    `<saml:AttributeValue xsi:type="xs:string">${escape(value)}</saml:AttributeValue></saml:Attribute>`).join('');
  const values = {
    ID: `_${crypto.randomUUID()}`,
    AssertionID: `_${crypto.randomUUID()}`,
    Destination: override.destination ?? request.acs,
    Audience: override.audience ?? request.issuer,
    SubjectRecipient: override.recipient ?? request.acs,
    Issuer: settings.entityID,
    IssueInstant: now.toISOString(),
    StatusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success',
    ConditionsNotBefore: override.notBefore ?? now.toISOString(),
    ConditionsNotOnOrAfter: override.notOnOrAfter ?? later,
    SubjectConfirmationDataNotOnOrAfter: override.notOnOrAfter ?? later,
    NameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    NameID: escape(user.nameID),
    InResponseTo: override.inResponseTo ?? request.id,
    AuthnStatement: `<saml:AuthnStatement AuthnInstant="${now.toISOString()}"><saml:AuthnContext>` +
      '<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef>' +
      '</saml:AuthnContext></saml:AuthnStatement>',
    AttributeStatement: attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '',
  };
  const { context } = await idp.createLoginResponse(sp, { extract: { request: { id: request.id } } }, 'post', {}, {
    customTagReplacement: (template) => ({
      id: values.ID,
      context: template.replace(/\{(\w+)\}/g, (tag, name) => values[name] ?? tag),
    }),
  });
  return { SAMLResponse: tamper(context, override), RelayState: request.relayState, request };
}

// After signing: `replace` ([from, to] pairs) changes the signed XML; `wrap` puts a second,
// unsigned Assertion (another NameID, no signature) before the signed one, as signature
// wrapping attacks do.
function tamper(context, { replace = [], wrap = false }) {
  let xml = Buffer.from(context, 'base64').toString('utf8');
  for (const [from, to] of replace) {
    if (!xml.includes(from)) throw new Error(`nothing to replace: ${from}`);
    xml = xml.split(from).join(to);
  }
  if (wrap) {
    const start = xml.indexOf('<saml:Assertion');
    const end = xml.indexOf('</saml:Assertion>') + '</saml:Assertion>'.length;
    const evil = xml.slice(start, end)
      .replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '')
      .replace(/ID="[^"]*"/, 'ID="_evil"')
      .replace(/(<saml:NameID[^>]*>)[^<]*/, '$1mallory@example.com');
    xml = xml.slice(0, start) + evil + xml.slice(start);
  }
  return Buffer.from(xml, 'utf8').toString('base64');
}

let output;
switch (input.command) {
  case 'keys':
    output = keys();
    break;
  case 'metadata':
    output = { metadata: identityProvider(input.idp).getMetadata() };
    break;
  case 'respond':
    output = await respond(input);
    break;
  default:
    throw new Error(`unknown command ${input.command}`);
}
print(JSON.stringify({ ok: true, ...output }));
