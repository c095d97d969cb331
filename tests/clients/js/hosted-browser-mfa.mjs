// The hosted pages' other steps in a real browser (Debian's Chromium, driven by
// playwright-core), in a pool that requires TOTP MFA: a user created with a temporary
// password sets a new one and then sets up an authenticator app from the page's key (a wrong
// code first); the code is exchanged; logout clears the session; the next sign-in asks for the
// app's code; a forgotten password is reset with the code from the outbox.
//
// Parameters: endpoint, poolId, clientId, callback (http://localhost:PORT/...: the script
// serves it), signedOut (the registered logout URL, on the same port), chromium, username,
// temporary, password, reset (the password after the reset), screenshots (a directory or null).
// Result: pages (titles in order), setup {qrWidth, wrong}, exchanged {username, token_use},
// loggedOut (where /logout went), afterLogout (the page an authorize shows then), mfaCode
// (signed in with the app's code: the callback's state), reset {notice, next}.

import { createServer } from 'node:http';
import * as client from 'openid-client';
import { chromium } from 'playwright-core';
import { run, step, totp } from './lib.mjs';

run(async (params) => {
  const origin = new URL(params.callback).origin;
  const config = new client.Configuration(
    {
      issuer: `${params.endpoint}/${params.poolId}`,
      authorization_endpoint: `${params.endpoint}/oauth2/authorize`,
      token_endpoint: `${params.endpoint}/oauth2/token`,
    },
    params.clientId,
    undefined,
    client.None(),
  );
  client.allowInsecureRequests(config);
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const authorizeUrl = (state) =>
    client.buildAuthorizationUrl(config, {
      redirect_uri: params.callback,
      scope: 'openid email',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state,
    }).href;
  const relyingParty = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(req.url.startsWith('/signed-out') ? '<!doctype html><title>Signed out</title>' : '<!doctype html><title>Signed in</title>');
  });
  await new Promise((resolve) => relyingParty.listen(Number(new URL(params.callback).port), '127.0.0.1', resolve));
  const browser = await chromium.launch({ executablePath: params.chromium, headless: true });
  const out = { pages: [] };
  const shot = async (page, name) => {
    out.pages.push(await page.title());
    if (params.screenshots) await page.screenshot({ path: `${params.screenshots}/${name}.png` });
  };
  const submit = (page) => page.click('button[type=submit]');
  try {
    const page = await browser.newPage();
    await page.goto(authorizeUrl('first'));
    await shot(page, 'sign-in-with-providers');

    step('the temporary password, then a new one');
    await page.fill('#username', params.username);
    await page.fill('#password', params.temporary);
    await submit(page);
    await shot(page, 'new-password');
    await page.fill('#answer', params.password);
    await submit(page);

    step('MFA_SETUP: the key from the page into the "app"');
    await shot(page, 'mfa-setup');
    out.setup = { qrWidth: await page.$eval('img.qr', (img) => img.naturalWidth) };
    const secret = (await page.textContent('#secret')).trim();
    const now = Date.now() / 1000;
    const wrong = String((Number(totp(secret, now)) + 1) % 1000000).padStart(6, '0');
    await page.fill('#answer', wrong);
    await submit(page);
    out.setup.wrong = await page.textContent('[role=alert]');
    await page.fill('#answer', totp(secret, now));
    await Promise.all([page.waitForURL(`${params.callback}**`), submit(page)]);
    out.pages.push(await page.title());
    const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: verifier,
      expectedState: 'first',
    });
    const access = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
    out.exchanged = { username: access.username, token_use: access.token_use };

    step('logout, then an authorize shows the form again');
    const logout = `${params.endpoint}/logout?client_id=${params.clientId}&logout_uri=${encodeURIComponent(params.signedOut)}`;
    await Promise.all([page.waitForURL(`${params.signedOut}**`), page.goto(logout)]);
    out.loggedOut = page.url();
    await page.goto(authorizeUrl('second'));
    out.afterLogout = await page.title();

    step('SOFTWARE_TOKEN_MFA: the next code of the app');
    await page.fill('#username', params.username);
    await page.fill('#password', params.password);
    await submit(page);
    await shot(page, 'mfa-code');
    await page.fill('#answer', totp(secret, now + 30));
    await Promise.all([page.waitForURL(`${params.callback}**`), submit(page)]);
    out.mfaCode = new URL(page.url()).searchParams.get('state');

    step('forgot password: the code from the outbox and a new password');
    const fresh = await (await browser.newContext()).newPage();
    await fresh.goto(authorizeUrl('third'));
    await fresh.click('text=Forgot your password?');
    await fresh.fill('#username', params.username);
    await shot(fresh, 'forgot-password');
    await submit(fresh);
    await shot(fresh, 'reset-password');
    const outbox = await (
      await fetch(`${params.endpoint}/_cognate/outbox?pool=${params.poolId}&user=${params.username}`)
    ).json();
    await fresh.fill('#code', outbox.messages.at(-1).code);
    await fresh.fill('#password', params.reset);
    await submit(fresh);
    out.reset = { notice: await fresh.textContent('[role=status]') };
    await fresh.fill('#username', params.username);
    await fresh.fill('#password', params.reset);
    await submit(fresh);
    out.reset.next = await fresh.title();
  } finally {
    await browser.close();
    relyingParty.close();
  }
  return out;
});
