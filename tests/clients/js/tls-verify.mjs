// aws-jwt-verify against Cognate served over HTTPS (`cognate serve --tls self-signed`), as a
// Node backend uses it: JwtRsaVerifier with only the issuer and audience, so the library
// derives `{issuer}/.well-known/jwks.json` and fetches it itself (with Node's `https` module,
// which refuses http://). The server's certificate is trusted through NODE_EXTRA_CA_CERTS=ca.pem
// and nothing else: no cacheJwks, no TLS options.
//
// Parameters:
//   baseUrl     https://127.0.0.1:PORT (Cognate's public URL)
//   poolId, clientId, username, password   a user who can sign in with USER_PASSWORD_AUTH
//   expectUntrusted   true: the caller left out NODE_EXTRA_CA_CERTS; the first https call
//                     must then fail on the certificate, and `untrusted` reports how
//
// Result: idPayload (the verified ID token's claims), issuer, discoveryIssuer, negative
// (what the verifier must reject), or `untrusted`.

import { JwtRsaVerifier } from 'aws-jwt-verify';
import { run, step } from './lib.mjs';

async function initiateAuth(baseUrl, clientId, username, password) {
  const response = await fetch(`${baseUrl}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'AWSCognitoIdentityProviderService.InitiateAuth',
    },
    body: JSON.stringify({
      AuthFlow: 'USER_PASSWORD_AUTH',
      ClientId: clientId,
      AuthParameters: { USERNAME: username, PASSWORD: password },
    }),
  });
  const body = await response.json();
  if (response.status !== 200) {
    throw new Error(`InitiateAuth answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return body.AuthenticationResult;
}

async function rejects(verifier, token) {
  try {
    await verifier.verify(token);
    return { rejected: false };
  } catch (err) {
    return { rejected: true, error: err.name, message: err.message };
  }
}

function flipSignature(token) {
  const [h, p, s] = token.split('.');
  const sig = Buffer.from(s, 'base64url');
  sig[Math.floor(sig.length / 2)] ^= 0x01;
  return `${h}.${p}.${sig.toString('base64url')}`;
}

run(async (params) => {
  const { baseUrl, poolId, clientId, username, password } = params;
  const issuer = `${baseUrl}/${poolId}`;

  if (params.expectUntrusted) {
    step('InitiateAuth without the CA');
    try {
      await initiateAuth(baseUrl, clientId, username, password);
    } catch (err) {
      // fetch wraps the TLS error: its cause carries OpenSSL's code.
      return { untrusted: { message: err.message, code: err.cause?.code ?? null } };
    }
    throw new Error('the https call succeeded without NODE_EXTRA_CA_CERTS');
  }

  step('InitiateAuth over https');
  const tokens = await initiateAuth(baseUrl, clientId, username, password);

  step('GET openid-configuration over https');
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();

  step('JwtRsaVerifier.verify (the library fetches the JWKS over https)');
  const verifier = JwtRsaVerifier.create({ issuer, audience: clientId });
  const idPayload = await verifier.verify(tokens.IdToken);

  step('negative checks');
  const otherIssuer = JwtRsaVerifier.create({ issuer: `${baseUrl}/us-east-1_Other0000`, audience: clientId });
  const negative = {
    flippedSignature: await rejects(verifier, flipSignature(tokens.IdToken)),
    otherIssuer: await rejects(otherIssuer, tokens.IdToken),
  };
  return { issuer, discoveryIssuer: discovery.issuer, jwksUri: discovery.jwks_uri, idPayload, negative };
});
