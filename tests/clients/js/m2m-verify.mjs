// aws-jwt-verify on machine-to-machine access tokens (client_credentials): a
// resource server's check that the token is the pool's, an access token of the
// client, and carries the scope the API needs.
//
// Parameters: issuer, jwksUri, clientId, tokens {name: access token}, scopes
// {name: scope the check requires}.
// Result: {name: {verified: true, scope} | {verified: false, error}}.

import { JwtRsaVerifier } from 'aws-jwt-verify';
import { run } from './lib.mjs';

run(async (params) => {
  const jwks = await (await fetch(params.jwksUri)).json();
  const results = {};
  for (const [name, token] of Object.entries(params.tokens)) {
    const verifier = JwtRsaVerifier.create({
      issuer: params.issuer,
      jwksUri: params.jwksUri,
      audience: null,
      scope: params.scopes[name],
      customJwtCheck: ({ payload }) => {
        if (payload.token_use !== 'access') throw new Error(`token_use ${payload.token_use}`);
        if (payload.client_id !== params.clientId) throw new Error(`client_id ${payload.client_id}`);
      },
    });
    verifier.cacheJwks(jwks);
    try {
      const payload = await verifier.verify(token);
      results[name] = { verified: true, scope: payload.scope, sub: payload.sub, username: payload.username ?? null };
    } catch (err) {
      results[name] = { verified: false, error: err.name };
    }
  }
  return results;
});
