// amazon-cognito-identity-js against a Cognito-compatible endpoint.
//
// Parameters:
//   endpoint        "http://127.0.0.1:PORT/"
//   userPoolId, clientId, username, password
//   flow            "USER_SRP_AUTH" (default) or "USER_PASSWORD_AUTH"
//   newPassword     answer to a NEW_PASSWORD_REQUIRED challenge (required
//                   when the user must change the password)
//   newAttributes   attributes sent with the new password ({name: value})
//   getUser         call getUserAttributes (GetUser) after signing in
//   refresh         call refreshSession (InitiateAuth REFRESH_TOKEN_AUTH)
//   signOut         "revoke" (signOut: RevokeToken) or "global"
//                   (globalSignOut: GlobalSignOut)
//   expectFailure   sign-in must fail: report the error with ok: true
//   rememberDevice  (devices) after signing in, remember the device the
//                   library confirmed (ConfirmDevice, from NewDeviceMetadata)
//                   with setDeviceStatusRemembered, then sign in again with a
//                   new CognitoUser on the same storage: the library sends
//                   DEVICE_KEY and answers DEVICE_SRP_AUTH and
//                   DEVICE_PASSWORD_VERIFIER
//
// Result: tokens {idToken, accessToken, refreshToken}, challenge
// {userAttributes, requiredAttributes} when NEW_PASSWORD_REQUIRED was
// answered, attributes, refreshed tokens, signedOut.

import cognito from 'amazon-cognito-identity-js';
import { MemoryStorage, calls, describeError, run, step } from './lib.mjs';

const { AuthenticationDetails, CognitoUser, CognitoUserPool } = cognito;

function sessionTokens(session) {
  return {
    idToken: session.getIdToken().getJwtToken(),
    accessToken: session.getAccessToken().getJwtToken(),
    refreshToken: session.getRefreshToken().getToken(),
    valid: session.isValid(),
  };
}

function signIn(user, params, result) {
  const details = new AuthenticationDetails({ Username: params.username, Password: params.password });
  return new Promise((resolve, reject) => {
    const callbacks = {
      onSuccess: (session) => resolve(session),
      onFailure: (err) => reject(err),
      newPasswordRequired: (userAttributes, requiredAttributes) => {
        step('newPasswordRequired');
        result.challenge = { userAttributes, requiredAttributes };
        if (!params.newPassword) {
          reject(new Error('NEW_PASSWORD_REQUIRED but no newPassword was given'));
          return;
        }
        step('completeNewPasswordChallenge');
        user.completeNewPasswordChallenge(params.newPassword, params.newAttributes ?? {}, callbacks);
      },
      mfaRequired: () => reject(new Error('unexpected SMS_MFA challenge')),
      totpRequired: () => reject(new Error('unexpected SOFTWARE_TOKEN_MFA challenge')),
      mfaSetup: () => reject(new Error('unexpected MFA_SETUP challenge')),
      selectMFAType: () => reject(new Error('unexpected SELECT_MFA_TYPE challenge')),
      customChallenge: () => reject(new Error('unexpected CUSTOM_CHALLENGE')),
    };
    step(`authenticateUser ${user.getAuthenticationFlowType()}`);
    user.authenticateUser(details, callbacks);
  });
}

function callback(fn) {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

run(async (params) => {
  const storage = new MemoryStorage();
  const pool = new CognitoUserPool({
    UserPoolId: params.userPoolId,
    ClientId: params.clientId,
    endpoint: params.endpoint,
    Storage: storage,
  });
  const user = new CognitoUser({ Username: params.username, Pool: pool, Storage: storage });
  if (params.flow && params.flow !== 'USER_SRP_AUTH') {
    user.setAuthenticationFlowType(params.flow);
  }
  const result = {};

  let session;
  try {
    session = await signIn(user, params, result);
  } catch (err) {
    if (params.expectFailure) {
      return { ...result, failure: describeError(err) };
    }
    throw err;
  }
  if (params.expectFailure) {
    throw new Error('sign-in succeeded but was expected to fail');
  }
  result.tokens = sessionTokens(session);

  if (params.getUser) {
    step('getUserAttributes');
    const attributes = await callback((cb) => user.getUserAttributes(cb));
    result.attributes = Object.fromEntries(attributes.map((a) => [a.getName(), a.getValue()]));
  }

  if (params.refresh) {
    step('refreshSession');
    const refreshed = await callback((cb) => user.refreshSession(session.getRefreshToken(), cb));
    result.refreshed = sessionTokens(refreshed);
  }

  if (params.rememberDevice) {
    result.deviceKey = user.deviceKey ?? null;
    if (!user.deviceKey) {
      throw new Error('the library confirmed no device (no NewDeviceMetadata in the AuthenticationResult?)');
    }
    step('setDeviceStatusRemembered');
    await new Promise((resolve, reject) =>
      user.setDeviceStatusRemembered({ onSuccess: resolve, onFailure: reject }),
    );
    const firstCalls = calls.length;
    const again = new CognitoUser({ Username: params.username, Pool: pool, Storage: storage });
    const secondSession = await signIn(again, params, {});
    result.second = {
      tokens: sessionTokens(secondSession),
      calls: calls.slice(firstCalls).map((c) => c.target),
    };
  }

  if (params.signOut === 'revoke') {
    step('signOut (RevokeToken)');
    await new Promise((resolve, reject) => user.signOut((err) => (err ? reject(err) : resolve())));
    result.signedOut = true;
  } else if (params.signOut === 'global') {
    step('globalSignOut');
    await new Promise((resolve, reject) =>
      user.globalSignOut({ onSuccess: resolve, onFailure: reject }),
    );
    result.signedOut = true;
  }
  return result;
});
