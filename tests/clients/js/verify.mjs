// aws-jwt-verify: verify a pool's ID and access tokens the way a Node
// backend does, with JwtRsaVerifier (CognitoJwtVerifier hard-codes the
// https://cognito-idp.<region>.amazonaws.com issuer, so it cannot be used).
//
// Parameters:
//   discoveryUrl    {issuer}/.well-known/openid-configuration: read first; its
//                   issuer and jwks_uri are reported and used
//   issuer          the expected `iss`
//   clientId        the app client id (ID token `aud`, access token `client_id`)
//   idToken, accessToken
//
// The library fetches JWKS with Node's `https` module only, so it refuses an
// http:// jwks_uri. The script first lets it fetch; if that fails, it fetches
// the JWKS itself and hands it over with cacheJwks. `jwksVia` says which
// happened ("jwksUri" or "cacheJwks") and `jwksUriError` why.
//
// Besides the two good tokens, the script checks that the verifier rejects a
// token with a flipped signature byte, an ID token where an access token is
// expected (and the reverse), and the wrong audience.

import { JwtRsaVerifier } from 'aws-jwt-verify';
import { decodeJwt, describeError, run, step } from './lib.mjs';

function flipSignature(token) {
  const [h, p, s] = token.split('.');
  const sig = Buffer.from(s, 'base64url');
  sig[Math.floor(sig.length / 2)] ^= 0x01;
  return `${h}.${p}.${sig.toString('base64url')}`;
}

async function rejects(verifier, token) {
  try {
    const payload = await verifier.verify(token);
    return { rejected: false, payload };
  } catch (err) {
    return { rejected: true, error: err.name, message: err.message };
  }
}

run(async (params) => {
  const result = {};
  let { issuer } = params;
  let jwksUri = params.jwksUri;

  if (params.discoveryUrl) {
    step('GET openid-configuration');
    const response = await fetch(params.discoveryUrl);
    if (response.status !== 200) {
      throw new Error(`GET ${params.discoveryUrl} answered ${response.status}: ${await response.text()}`);
    }
    const discovery = await response.json();
    result.discovery = discovery;
    jwksUri = discovery.jwks_uri;
    issuer = issuer ?? discovery.issuer;
  }
  if (!jwksUri) {
    throw new Error('no jwksUri (give jwksUri or discoveryUrl)');
  }

  const { clientId } = params;
  const idVerifier = JwtRsaVerifier.create({
    issuer,
    audience: clientId,
    jwksUri,
    customJwtCheck: ({ payload }) => {
      if (payload.token_use !== 'id') {
        throw new Error(`token_use is ${JSON.stringify(payload.token_use)}, expected "id"`);
      }
    },
  });
  const accessVerifier = JwtRsaVerifier.create({
    issuer,
    audience: null,
    jwksUri,
    customJwtCheck: ({ payload }) => {
      if (payload.token_use !== 'access') {
        throw new Error(`token_use is ${JSON.stringify(payload.token_use)}, expected "access"`);
      }
      if (payload.client_id !== clientId) {
        throw new Error(`client_id is ${JSON.stringify(payload.client_id)}, expected ${JSON.stringify(clientId)}`);
      }
    },
  });

  let jwks = null;
  step('verify ID token (library fetches the JWKS)');
  try {
    result.idPayload = await idVerifier.verify(params.idToken);
    result.jwksVia = 'jwksUri';
  } catch (err) {
    // Only a failure to fetch the JWKS is worked around; a bad token fails.
    const fetchFailed =
      err.name === 'FetchError' || err.name === 'NonRetryableFetchError' || /protocol/i.test(err.message);
    if (!fetchFailed) {
      throw err;
    }
    result.jwksUriError = describeError(err).message;
    step('fetch the JWKS and cacheJwks');
    const response = await fetch(jwksUri);
    if (response.status !== 200) {
      throw new Error(`GET ${jwksUri} answered ${response.status}: ${await response.text()}`);
    }
    jwks = await response.json();
    idVerifier.cacheJwks(jwks);
    accessVerifier.cacheJwks(jwks);
    result.jwksVia = 'cacheJwks';
    step('verify ID token');
    result.idPayload = await idVerifier.verify(params.idToken);
  }
  result.idHeader = decodeJwt(params.idToken).header;

  step('verify access token');
  result.accessPayload = await accessVerifier.verify(params.accessToken);
  result.accessHeader = decodeJwt(params.accessToken).header;

  step('negative checks');
  const wrongAudience = JwtRsaVerifier.create({ issuer, audience: `${clientId}x`, jwksUri });
  if (jwks) {
    wrongAudience.cacheJwks(jwks);
  }
  result.negative = {
    flippedIdSignature: await rejects(idVerifier, flipSignature(params.idToken)),
    flippedAccessSignature: await rejects(accessVerifier, flipSignature(params.accessToken)),
    idTokenAsAccess: await rejects(accessVerifier, params.idToken),
    accessTokenAsId: await rejects(idVerifier, params.accessToken),
    wrongAudience: await rejects(wrongAudience, params.idToken),
  };
  return result;
});
