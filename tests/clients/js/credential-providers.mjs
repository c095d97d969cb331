// @aws-sdk/credential-providers' fromCognitoIdentityPool (AWS SDK for
// JavaScript v3) against a Cognito-compatible endpoint, and the credentials
// it gets used by an SDK v3 client the server verifies.
//
// Parameters:
//   endpoint        "http://127.0.0.1:PORT" (clientConfig.endpoint of the
//                   provider's CognitoIdentityClient, and endpoint of the
//                   client the credentials sign for)
//   identityPoolId
//   provider, idToken   a login for the signed-in run ({[provider]: idToken})
//
// For a guest (no logins) and for the login, a CognitoIdentityClient whose
// `credentials` is fromCognitoIdentityPool({identityPoolId, logins?,
// clientConfig: {region, endpoint}}) sends DescribeIdentityPool: the provider
// calls GetId and GetCredentialsForIdentity (unsigned), the client signs with
// the temporary credentials and their session token, and the server answers
// AccessDeniedException (an identity may not administer pools), which shows the
// signature and the token were accepted. Then the same call with the session
// token altered, and left out, each with static credentials.
//
// Result: guest and login, each {identityId, credentials {accessKeyId,
// secretAccessKey, sessionToken, expiration (epoch seconds)}, signed,
// alteredToken and noToken (each {code, status, message})}. `calls` lists the
// DescribeIdentityPool calls (signed, with a session token, HTTP status); the
// provider's own GetId and GetCredentialsForIdentity go through the client it
// builds from clientConfig, which the script does not see.

import { CognitoIdentityClient, DescribeIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import { fromCognitoIdentityPool } from '@aws-sdk/credential-providers';
import { recordSdkCalls, run, step } from './lib.mjs';

const REGION = 'us-east-1';

// The error of a call that must fail, as {code, status, message}.
async function refusal(client, identityPoolId, what) {
  try {
    const out = await client.send(new DescribeIdentityPoolCommand({ IdentityPoolId: identityPoolId }));
    throw new Error(`${what}: DescribeIdentityPool succeeded: ${JSON.stringify(out)}`);
  } catch (err) {
    if (!err.$metadata) {
      throw err;
    }
    return { code: err.name, status: err.$metadata.httpStatusCode, message: err.message };
  }
}

function altered(token) {
  const chars = [...token];
  const at = Math.floor(chars.length / 2);
  chars[at] = chars[at] === 'A' ? 'B' : 'A';
  return chars.join('');
}

async function exercise(params, logins, what) {
  const provider = fromCognitoIdentityPool({
    identityPoolId: params.identityPoolId,
    logins,
    clientConfig: { region: REGION, endpoint: params.endpoint },
  });
  const client = recordSdkCalls(
    new CognitoIdentityClient({ region: REGION, endpoint: params.endpoint, credentials: provider }),
  );
  step(`${what}: DescribeIdentityPool signed with fromCognitoIdentityPool`);
  const signed = await refusal(client, params.identityPoolId, what);
  // The client memoizes what the provider returned: these signed the call.
  const c = await client.config.credentials();
  const credentials = {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    expiration: c.expiration instanceof Date ? Math.floor(c.expiration.getTime() / 1000) : c.expiration,
  };
  if (!c.identityId || !c.accessKeyId || !c.secretAccessKey || !c.sessionToken) {
    throw new Error(`${what}: the provider returned incomplete credentials: ${JSON.stringify(c)}`);
  }

  const withToken = (sessionToken) =>
    recordSdkCalls(
      new CognitoIdentityClient({
        region: REGION,
        endpoint: params.endpoint,
        credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken },
      }),
    );
  step(`${what}: DescribeIdentityPool with the session token altered`);
  const alteredToken = await refusal(withToken(altered(c.sessionToken)), params.identityPoolId, what);
  step(`${what}: DescribeIdentityPool without the session token`);
  const noToken = await refusal(withToken(undefined), params.identityPoolId, what);
  return { identityId: c.identityId, credentials, signed, alteredToken, noToken };
}

run(async (params) => {
  const guest = await exercise(params, undefined, 'guest');
  const login = await exercise(params, { [params.provider]: params.idToken }, 'login');
  return { guest, login };
});
