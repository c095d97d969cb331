// Amplify JS v6 (aws-amplify) with an identity pool, in Node, against a
// Cognito-compatible endpoint: guest credentials, then signed-in credentials.
//
// Parameters:
//   endpoint        "http://127.0.0.1:PORT" (both Auth.Cognito.userPoolEndpoint
//                   and Auth.Cognito.identityPoolEndpoint)
//   userPoolId, clientId, identityPoolId, username, password
//
// Steps: fetchAuthSession() as a guest (GetId without Logins,
// GetCredentialsForIdentity), signIn (Amplify's default, SRP),
// fetchAuthSession() signed in (GetCredentialsForIdentity of the guest identity
// with the ID token as a login: Amplify keeps the guest identity id it stored
// and sends it with the login), fetchUserAttributes (GetUser).
//
// Result: guest {identityId, credentials}, signedIn {identityId, credentials,
// idToken}, attributes. Credentials are {accessKeyId, secretAccessKey,
// sessionToken, expiration (epoch seconds)}.
//
// Pointing Amplify at the server: Amplify v6 has a config knob for each
// service, `Auth.Cognito.userPoolEndpoint` (cognito-idp) and
// `Auth.Cognito.identityPoolEndpoint` (cognito-identity): both end up in
// `createCognito{UserPool,IdentityPool}EndpointResolver({endpointOverride})`
// (@aws-amplify/auth, providers/cognito/factories), which uses the override
// instead of `https://cognito-identity.<region>.amazonaws.com`. Nothing is
// intercepted. Guests need `allowGuestAccess: true`, without which
// fetchAuthSession returns no identity for a signed-out user.
//
// Amplify names the login after the ID token's issuer without its scheme
// (`127.0.0.1:PORT/<userPoolId>`, formLoginsMap in
// providers/cognito/credentialsProvider/utils), not
// `cognito-idp.<region>.amazonaws.com/<userPoolId>`.

import { Amplify } from 'aws-amplify';
import { fetchAuthSession, fetchUserAttributes, signIn } from 'aws-amplify/auth';
import { cognitoUserPoolsTokenProvider } from 'aws-amplify/auth/cognito';
import { MemoryStorage, run, step } from './lib.mjs';

function credentialsOf(session, what) {
  const c = session.credentials;
  if (!session.identityId || !c) {
    throw new Error(`fetchAuthSession (${what}) returned no identityId or credentials: ${JSON.stringify(session)}`);
  }
  return {
    identityId: session.identityId,
    credentials: {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      expiration: c.expiration instanceof Date ? Math.floor(c.expiration.getTime() / 1000) : c.expiration,
    },
  };
}

run(async (params) => {
  Amplify.configure({
    Auth: {
      Cognito: {
        userPoolId: params.userPoolId,
        userPoolClientId: params.clientId,
        identityPoolId: params.identityPoolId,
        userPoolEndpoint: params.endpoint,
        identityPoolEndpoint: params.endpoint,
        allowGuestAccess: true,
      },
    },
  });
  // After configure, which installs its own (localStorage-or-memory) storage.
  cognitoUserPoolsTokenProvider.setKeyValueStorage(new MemoryStorage());
  const result = {};

  step('fetchAuthSession (guest)');
  const guest = await fetchAuthSession();
  if (guest.tokens) {
    throw new Error('a guest session has tokens');
  }
  result.guest = credentialsOf(guest, 'guest');

  step('signIn');
  const output = await signIn({ username: params.username, password: params.password });
  if (!output.isSignedIn) {
    throw new Error(`signIn did not finish: ${JSON.stringify(output.nextStep)}`);
  }

  step('fetchAuthSession (signed in)');
  const signedIn = await fetchAuthSession();
  if (!signedIn.tokens?.idToken) {
    throw new Error('fetchAuthSession after signIn returned no ID token');
  }
  result.signedIn = {
    ...credentialsOf(signedIn, 'signed in'),
    idToken: signedIn.tokens.idToken.toString(),
  };

  step('fetchUserAttributes');
  result.attributes = await fetchUserAttributes();
  return result;
});
