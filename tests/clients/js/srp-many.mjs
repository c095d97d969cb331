// amazon-cognito-identity-js: many SRP sign-ins in one process, to catch the
// values whose encoding differs from the common case (Cognito pads A, B, S,
// the salt and the verifier's x with a leading 00 byte when their high bit is
// set, and drops leading zeros otherwise: a server that disagrees fails only
// for some users or some sign-ins).
//
// Parameters:
//   endpoint, userPoolId, clientId
//   users     [{username, password}]
//   rounds    sign-ins per user (default 1)
//
// Result: attempts, failures [{username, round, error}].

import cognito from 'amazon-cognito-identity-js';
import { MemoryStorage, describeError, run, step } from './lib.mjs';

const { AuthenticationDetails, CognitoUser, CognitoUserPool } = cognito;

function signIn(pool, username, password) {
  const storage = new MemoryStorage();
  const user = new CognitoUser({ Username: username, Pool: pool, Storage: storage });
  const details = new AuthenticationDetails({ Username: username, Password: password });
  return new Promise((resolve, reject) => {
    user.authenticateUser(details, {
      onSuccess: resolve,
      onFailure: reject,
      newPasswordRequired: () => reject(new Error('unexpected NEW_PASSWORD_REQUIRED')),
    });
  });
}

run(async (params) => {
  const pool = new CognitoUserPool({
    UserPoolId: params.userPoolId,
    ClientId: params.clientId,
    endpoint: params.endpoint,
    Storage: new MemoryStorage(),
  });
  const failures = [];
  let attempts = 0;
  step(`${params.users.length} users x ${params.rounds ?? 1} rounds`);
  for (let round = 0; round < (params.rounds ?? 1); round += 1) {
    for (const { username, password } of params.users) {
      attempts += 1;
      try {
        await signIn(pool, username, password);
      } catch (err) {
        const { code, message } = describeError(err);
        failures.push({ username, round, code, message });
      }
    }
  }
  return { attempts, failures };
});
