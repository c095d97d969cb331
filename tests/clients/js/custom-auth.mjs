// CUSTOM_AUTH with the pool's quiz functions (tests/lambda: define-auth-challenge,
// create_auth_challenge, verify-auth-challenge), through the two JavaScript clients:
// - amazon-cognito-identity-js: initiateAuth (no password: a wrong answer, then the right
//   one) and authenticateUser with the CUSTOM_AUTH flow type (SRP first, then the question);
// - Amplify v6: signIn with CUSTOM_WITHOUT_SRP and CUSTOM_WITH_SRP, then confirmSignIn.
//
// Parameters: endpoint, userPoolId, clientId, username, password, answer (the right one).
// Result: identityJs {question, afterWrong, username}, identityJsSrp {question, username},
// amplify {step, question, done, username}, amplifySrp {step, done}.

import { Amplify } from 'aws-amplify';
import { confirmSignIn, getCurrentUser, signIn, signOut } from 'aws-amplify/auth';
import { cognitoUserPoolsTokenProvider } from 'aws-amplify/auth/cognito';
import cognito from 'amazon-cognito-identity-js';
import { MemoryStorage, decodeJwt, run, step } from './lib.mjs';

const { AuthenticationDetails, CognitoUser, CognitoUserPool } = cognito;

function identityJsSignIn(params, withPassword) {
  const pool = new CognitoUserPool({
    UserPoolId: params.userPoolId,
    ClientId: params.clientId,
    endpoint: params.endpoint,
    Storage: new MemoryStorage(),
  });
  const user = new CognitoUser({ Username: params.username, Pool: pool, Storage: new MemoryStorage() });
  user.setAuthenticationFlowType('CUSTOM_AUTH');
  const details = new AuthenticationDetails({
    Username: params.username,
    Password: withPassword ? params.password : undefined,
  });
  const out = {};
  return new Promise((resolve, reject) => {
    let answers = withPassword ? [params.answer] : ['wrong', params.answer];
    const callbacks = {
      onSuccess: (session) => {
        out.username = decodeJwt(session.getAccessToken().getJwtToken()).payload.username;
        resolve(out);
      },
      onFailure: reject,
      customChallenge: (challengeParameters) => {
        if (out.question === undefined) out.question = challengeParameters.question;
        else out.afterWrong = challengeParameters.question;
        const [next, ...rest] = answers;
        answers = rest;
        user.sendCustomChallengeAnswer(next, callbacks);
      },
    };
    if (withPassword) user.authenticateUser(details, callbacks);
    else user.initiateAuth(details, callbacks);
  });
}

async function amplifySignIn(params, authFlowType) {
  const out = {};
  const first = await signIn({
    username: params.username,
    password: authFlowType === 'CUSTOM_WITH_SRP' ? params.password : undefined,
    options: { authFlowType },
  });
  out.step = first.nextStep.signInStep;
  out.question = first.nextStep.additionalInfo?.question;
  const done = await confirmSignIn({ challengeResponse: params.answer });
  out.done = done.nextStep.signInStep;
  out.username = (await getCurrentUser()).username;
  await signOut();
  return out;
}

run(async (params) => {
  const result = {};
  step('amazon-cognito-identity-js: initiateAuth with CUSTOM_AUTH');
  result.identityJs = await identityJsSignIn(params, false);
  step('amazon-cognito-identity-js: authenticateUser with CUSTOM_AUTH (SRP first)');
  result.identityJsSrp = await identityJsSignIn(params, true);

  Amplify.configure({
    Auth: { Cognito: { userPoolId: params.userPoolId, userPoolClientId: params.clientId, userPoolEndpoint: params.endpoint } },
  });
  cognitoUserPoolsTokenProvider.setKeyValueStorage(new MemoryStorage());
  step('Amplify signIn CUSTOM_WITHOUT_SRP');
  result.amplify = await amplifySignIn(params, 'CUSTOM_WITHOUT_SRP');
  step('Amplify signIn CUSTOM_WITH_SRP');
  result.amplifySrp = await amplifySignIn(params, 'CUSTOM_WITH_SRP');
  return result;
});
