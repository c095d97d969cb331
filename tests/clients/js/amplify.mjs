// Amplify JS v6 (aws-amplify) in Node against a Cognito-compatible endpoint.
//
// Parameters:
//   endpoint        "http://127.0.0.1:PORT" (Auth.Cognito.userPoolEndpoint)
//   userPoolId, clientId, username, password
//   authFlowType    "USER_SRP_AUTH" (default: Amplify's default) or
//                   "USER_PASSWORD_AUTH"
//   newPassword     answer to CONFIRM_SIGN_IN_WITH_NEW_PASSWORD_REQUIRED
//   getUser         call fetchUserAttributes (GetUser)
//   refresh         call fetchAuthSession({forceRefresh: true})
//                   (Amplify >= 6.15 refreshes with GetTokensFromRefreshToken)
//   signOut         "local" (signOut(): RevokeToken) or "global"
//                   (signOut({global: true}): GlobalSignOut)
//   expectFailure   signIn must fail: report the error with ok: true
//
// When signIn ends in a step other than DONE (CONFIRM_SIGN_UP, ...), the
// result has isSignedIn: false, finalStep and nextStep, and no tokens.
//
// Node has no localStorage: the tokens live in an in-memory key-value
// storage given to the token provider (and read back from it to report the
// refresh token, which fetchAuthSession does not expose).

import { Amplify } from 'aws-amplify';
import {
  confirmSignIn,
  fetchAuthSession,
  fetchUserAttributes,
  getCurrentUser,
  signIn,
  signOut,
} from 'aws-amplify/auth';
import { cognitoUserPoolsTokenProvider } from 'aws-amplify/auth/cognito';
import { MemoryStorage, describeError, run, step } from './lib.mjs';

run(async (params) => {
  const storage = new MemoryStorage();
  Amplify.configure({
    Auth: {
      Cognito: {
        userPoolId: params.userPoolId,
        userPoolClientId: params.clientId,
        userPoolEndpoint: params.endpoint,
      },
    },
  });
  // After configure, which installs its own (localStorage-or-memory) storage.
  cognitoUserPoolsTokenProvider.setKeyValueStorage(storage);
  const result = {};

  let output;
  try {
    step(`signIn ${params.authFlowType ?? '(default)'}`);
    output = await signIn({
      username: params.username,
      password: params.password,
      options: params.authFlowType ? { authFlowType: params.authFlowType } : undefined,
    });
    result.signInStep = output.nextStep.signInStep;
    if (output.nextStep.signInStep === 'CONFIRM_SIGN_IN_WITH_NEW_PASSWORD_REQUIRED') {
      result.missingAttributes = output.nextStep.missingAttributes ?? [];
      if (!params.newPassword) {
        throw new Error('CONFIRM_SIGN_IN_WITH_NEW_PASSWORD_REQUIRED but no newPassword was given');
      }
      step('confirmSignIn (new password)');
      output = await confirmSignIn({ challengeResponse: params.newPassword });
    }
  } catch (err) {
    if (params.expectFailure) {
      return { ...result, failure: describeError(err) };
    }
    throw err;
  }
  if (params.expectFailure) {
    throw new Error(`signIn was expected to fail but answered ${JSON.stringify(output)}`);
  }
  result.isSignedIn = output.isSignedIn;
  result.finalStep = output.nextStep.signInStep;
  if (!output.isSignedIn) {
    // Another step is due (CONFIRM_SIGN_UP, MFA, ...): report it, no tokens.
    result.nextStep = output.nextStep;
    return result;
  }

  step('getCurrentUser');
  const current = await getCurrentUser();
  result.currentUser = { username: current.username, userId: current.userId };

  step('fetchAuthSession');
  const session = await fetchAuthSession();
  if (!session.tokens) {
    throw new Error('fetchAuthSession returned no tokens');
  }
  result.tokens = {
    idToken: session.tokens.idToken?.toString(),
    accessToken: session.tokens.accessToken.toString(),
    refreshToken: storage.find('.refreshToken'),
  };

  if (params.getUser) {
    step('fetchUserAttributes');
    result.attributes = await fetchUserAttributes();
  }

  if (params.refresh) {
    step('fetchAuthSession forceRefresh');
    const refreshed = await fetchAuthSession({ forceRefresh: true });
    if (!refreshed.tokens) {
      throw new Error('fetchAuthSession({forceRefresh: true}) returned no tokens');
    }
    result.refreshed = {
      idToken: refreshed.tokens.idToken?.toString(),
      accessToken: refreshed.tokens.accessToken.toString(),
      refreshToken: storage.find('.refreshToken'),
    };
  }

  if (params.signOut === 'local' || params.signOut === 'global') {
    const global = params.signOut === 'global';
    step(global ? 'signOut global (GlobalSignOut)' : 'signOut (RevokeToken)');
    // Amplify swallows a failed RevokeToken / GlobalSignOut (it only logs at
    // debug level): `calls` shows what the server answered, and the test
    // checks the server side anyway.
    await signOut({ global });
    result.signedOut = true;
    result.tokensLeft = storage.find('.accessToken');
  }
  return result;
});
