// The page script of a single-page app using Amplify v6's hosted sign-in, bundled for the
// browser by amplify-redirect-browser.mjs (esbuild) at test time. Its settings come from
// `window.cognateConfig` (set by the page): userPoolId, userPoolClientId, domain, origin.
//
// Amplify handles the return to the callback page itself (its OAuth listener exchanges the
// code when the page configures it); `window.cognate` lets the test drive the rest:
// signIn() (signInWithRedirect), signOut(), state() (getCurrentUser and fetchAuthSession, or
// the error they throw), and events (the auth Hub events seen on this page).

import { Amplify } from 'aws-amplify';
import { fetchAuthSession, getCurrentUser, signInWithRedirect, signOut } from 'aws-amplify/auth';
import { Hub } from 'aws-amplify/utils';

const { userPoolId, userPoolClientId, domain, origin } = window.cognateConfig;
const events = [];
Hub.listen('auth', ({ payload }) => {
  events.push(payload.data?.error ? `${payload.event}: ${payload.data.error.message}` : payload.event);
});

Amplify.configure({
  Auth: {
    Cognito: {
      userPoolId,
      userPoolClientId,
      loginWith: {
        oauth: {
          domain,
          scopes: ['openid', 'email'],
          redirectSignIn: [`${origin}/callback`],
          redirectSignOut: [`${origin}/signed-out`],
          responseType: 'code',
        },
      },
    },
  },
});

window.cognate = {
  events,
  signIn: () => signInWithRedirect(),
  signOut: () => signOut(),
  async state() {
    try {
      const user = await getCurrentUser();
      const { tokens } = await fetchAuthSession();
      return {
        user: { username: user.username, userId: user.userId },
        id: tokens?.idToken?.payload ?? null,
        access: tokens?.accessToken?.payload ?? null,
      };
    } catch (err) {
      return { error: err.name };
    }
  },
};
