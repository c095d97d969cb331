// The hosted sign-in page in a real browser (Debian's Chromium, driven by playwright-core),
// with openid-client as the relying party: discovery, an authorization URL with PKCE, state
// and nonce, the user signing in on the page, the code exchanged and checked (ID token
// signature, issuer, audience, nonce), userInfo, a refresh.
//
// Parameters: endpoint, poolId, issuer, clientId, callback (http://localhost:PORT/...: the
// script serves it),
// chromium (its executable), username, password, screenshots (a directory, or null: where to
// save the pages as PNG).
// Result: spa (oidc-client-ts's user after signinRedirect and signinRedirectCallback in a
// page of its own), pages (titles seen), look (the submit button's computed background colour and the
// logo's width: the pool's UI customization applied), claims (of the ID token), scope, userInfo, refreshed,
// wrongPassword (the page's error), signedUp (the claims of a user who signed up on the page
// and confirmed with the code from the outbox), confirmedNotice, again (a second
// authorization, signed in by the session cookie without the form), calls.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import * as client from 'openid-client';
import { chromium } from 'playwright-core';
import { run, step } from './lib.mjs';

const oidcClientTs = createRequire(import.meta.url)
  .resolve('oidc-client-ts')
  .replace(/dist\/.*$/, 'dist/browser/oidc-client-ts.min.js');

run(async (params) => {
  step('discovery');
  const config = await client.discovery(new URL(params.issuer), params.clientId, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: params.callback,
    scope: 'openid email profile',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  });

  step('the browser');
  // The relying party, on the port of the registered callback URLs: the callback page, and a
  // single-page app using oidc-client-ts (its browser build, from node_modules).
  const origin = new URL(params.callback).origin;
  const spaSettings = JSON.stringify({
    authority: params.issuer,
    client_id: params.clientId,
    redirect_uri: `${origin}/spa-callback`,
    scope: 'openid email',
    response_type: 'code',
  });
  const pages = {
    '/oidc-client-ts.js': ['text/javascript', readFileSync(oidcClientTs)],
    '/spa': [
      'text/html',
      `<!doctype html><title>SPA</title><script src="/oidc-client-ts.js"></script>
       <button id="go">Sign in</button>
       <script>const manager = new oidc.UserManager(${spaSettings});
       document.getElementById('go').onclick = () => manager.signinRedirect();</script>`,
    ],
    '/spa-callback': [
      'text/html',
      `<!doctype html><title>SPA callback</title><script src="/oidc-client-ts.js"></script>
       <pre id="result"></pre>
       <script>new oidc.UserManager(${spaSettings}).signinRedirectCallback().then(
         (user) => { document.getElementById('result').textContent = JSON.stringify(
           { sub: user.profile.sub, email: user.profile.email, scope: user.scope, expired: user.expired }); },
         (err) => { document.getElementById('result').textContent = JSON.stringify({ error: String(err) }); });
       </script>`,
    ],
  };
  const relyingParty = createServer((req, res) => {
    const [type, body] = pages[new URL(req.url, origin).pathname] ?? ['text/html', '<!doctype html><title>Signed in</title>'];
    res.writeHead(200, { 'content-type': type });
    res.end(body);
  });
  await new Promise((resolve) => relyingParty.listen(Number(new URL(params.callback).port), '127.0.0.1', resolve));
  const browser = await chromium.launch({ executablePath: params.chromium, headless: true });
  const out = { pages: [] };
  try {
    const page = await browser.newPage();
    await page.goto(authorizationUrl.href);
    out.pages.push(await page.title());
    out.look = {
      button: await page.$eval('.submitButton-customizable', (b) => getComputedStyle(b).backgroundColor),
      logoWidth: await page.$eval('.logo-customizable', (img) => img.naturalWidth),
    };
    if (params.screenshots) await page.screenshot({ path: `${params.screenshots}/sign-in.png` });

    step('a wrong password');
    await page.fill('#username', params.username);
    await page.fill('#password', 'Not-the-password-1');
    await page.click('button[type=submit]');
    out.wrongPassword = await page.textContent('[role=alert]');
    if (params.screenshots) await page.screenshot({ path: `${params.screenshots}/sign-in-error.png` });

    step('sign in');
    await page.fill('#username', params.username);
    await page.fill('#password', params.password);
    await Promise.all([page.waitForURL(`${params.callback}**`), page.click('button[type=submit]')]);
    out.pages.push(await page.title());
    const callbackUrl = new URL(page.url());

    step('the code exchange (openid-client)');
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    out.claims = { sub: claims.sub, aud: claims.aud, nonce: claims.nonce, email: claims.email, iss: claims.iss };
    out.scope = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url')).scope;

    step('userInfo (openid-client)');
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    out.userInfo = { sub: info.sub, email: info.email, username: info.username };

    step('refresh (openid-client)');
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    out.refreshed = { idToken: Boolean(refreshed.id_token), sub: refreshed.claims()?.sub };

    step('sign up, confirm with the code from the outbox, sign in (a new browser)');
    const context = await browser.newContext();
    const fresh = await context.newPage();
    const signUpUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: params.callback,
      scope: 'openid email',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'signed-up',
    });
    await fresh.goto(signUpUrl.href);
    await fresh.click('text=Sign up');
    out.pages.push(await fresh.title());
    await fresh.fill('#username', 'bob');
    await fresh.fill('#email', 'bob@example.com');
    await fresh.fill('#password', params.password);
    if (params.screenshots) await fresh.screenshot({ path: `${params.screenshots}/sign-up.png` });
    await fresh.click('button[type=submit]');
    out.pages.push(await fresh.title());
    if (params.screenshots) await fresh.screenshot({ path: `${params.screenshots}/confirm.png` });
    const outbox = await (await fetch(`${params.endpoint}/_cognate/outbox?pool=${params.poolId}&user=bob`)).json();
    if (!outbox.messages.length) {
      throw new Error(`no code in the outbox for bob; the page said: ${await fresh.textContent('main')}`);
    }
    await fresh.fill('#code', outbox.messages.at(-1).code);
    await fresh.click('button[type=submit]');
    out.pages.push(await fresh.title());
    out.confirmedNotice = await fresh.textContent('[role=status]');
    await fresh.fill('#username', 'bob');
    await fresh.fill('#password', params.password);
    await Promise.all([fresh.waitForURL(`${params.callback}**`), fresh.click('button[type=submit]')]);
    const bobTokens = await client.authorizationCodeGrant(config, new URL(fresh.url()), {
      pkceCodeVerifier: verifier,
      expectedState: 'signed-up',
    });
    out.signedUp = { username: bobTokens.claims()['cognito:username'], email: bobTokens.claims().email };

    step('oidc-client-ts in a single-page app');
    const spa = await (await browser.newContext()).newPage();
    await spa.goto(`${origin}/spa`);
    await Promise.all([spa.waitForURL(`${params.issuer.split('/').slice(0, 3).join('/')}/login**`), spa.click('#go')]);
    await spa.fill('#username', params.username);
    await spa.fill('#password', params.password);
    await Promise.all([spa.waitForURL(`${origin}/spa-callback**`), spa.click('button[type=submit]')]);
    await spa.waitForFunction(() => document.getElementById('result').textContent.length > 0);
    out.spa = JSON.parse(await spa.textContent('#result'));

    step('a second authorization: the session cookie signs in');
    const again = client.buildAuthorizationUrl(config, {
      redirect_uri: params.callback,
      scope: 'openid',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'second',
    });
    await Promise.all([page.waitForURL(`${params.callback}**`), page.goto(again.href)]);
    out.again = new URL(page.url()).searchParams.get('state');
  } finally {
    await browser.close();
    relyingParty.close();
  }
  return out;
});
