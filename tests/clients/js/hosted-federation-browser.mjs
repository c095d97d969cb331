// Signing in to a user pool through an OpenID Connect identity provider in a real browser
// (Debian's Chromium, driven by playwright-core): the provider is oidc-provider
// (upstream-oidc-provider.mjs), started here; the browser starts at the pool's prefix domain
// (`/oauth2/authorize?identity_provider=...`), signs in and consents at the provider, comes
// back through the domain's /oauth2/idpresponse and lands on the app's callback with a code,
// which is exchanged (PKCE) at Cognate's token endpoint. Then a second authorization in the
// same browser, which the provider's session answers without its pages.
//
// Parameters: endpoint (Cognate's public URL), domainUrl (http://PREFIX.auth.localhost:PORT),
// provider (its name in the pool), upstreamPort, upstreamClient {id, secret}, account {login,
// password, sub, claims}, clientId (the app client, public), callback (http://localhost:PORT/...:
// served here), chromium.
// Result: hops (every navigation of the first sign-in as "where/path": where is domain, public,
// upstream or app), pages (titles seen at the provider), wrongPassword (its error),
// idpResponseParams (what the provider sent back), exchange (HTTP status), idClaims,
// accessClaims, userInfo (Cognate's, with the access token), again ({hops, username}: the second
// sign-in), upstreamRequests (what Cognate and the browser asked the provider: method, path,
// status).

import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';
import { decodeJwt, run, step } from './lib.mjs';
import { startUpstreamProvider } from './upstream-oidc-provider.mjs';

run(async (params) => {
  step('the provider (oidc-provider)');
  const upstream = await startUpstreamProvider({
    port: params.upstreamPort,
    client: { ...params.upstreamClient, redirectUri: `${params.domainUrl}/oauth2/idpresponse` },
    account: params.account,
  });
  const app = new URL(params.callback);
  const relyingParty = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>Signed in</title>');
  });
  await new Promise((resolve) => relyingParty.listen(Number(app.port), '127.0.0.1', resolve));
  const places = [
    ['domain', new URL(params.domainUrl).origin],
    ['public', new URL(params.endpoint).origin],
    ['upstream', upstream.issuer],
    ['app', app.origin],
  ];
  const where = (url) => {
    const u = new URL(url);
    const place = places.find(([, origin]) => origin === u.origin);
    // The provider's interaction ids differ each time.
    return `${place ? place[0] : u.origin}${u.pathname.replace(/\/(interaction|auth)\/[\w-]+$/, '/$1/:uid')}`;
  };

  // An authorization at the pool's domain, straight to the provider; its PKCE verifier.
  const authorization = (state) => {
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL(`${params.domainUrl}/oauth2/authorize`);
    for (const [key, value] of Object.entries({
      identity_provider: params.provider,
      client_id: params.clientId,
      response_type: 'code',
      scope: 'openid email profile',
      redirect_uri: params.callback,
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    })) {
      url.searchParams.set(key, value);
    }
    return { url: url.href, verifier };
  };
  const exchange = async (callbackUrl, verifier) => {
    const code = new URL(callbackUrl).searchParams.get('code');
    if (!code) throw new Error(`no code at the callback: ${callbackUrl}`);
    const response = await fetch(`${params.endpoint}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: params.clientId,
        code,
        redirect_uri: params.callback,
        code_verifier: verifier,
      }),
    });
    return { status: response.status, body: await response.json() };
  };

  // The title of the page at hand, which must be `title`: else what the page says (an error
  // page of the provider or of Cognate) fails the script at once.
  const expectTitle = async (page, title) => {
    await page.waitForLoadState();
    const seen = await page.title();
    if (seen !== title) throw new Error(`expected the page "${title}", got "${seen}" at ${page.url()}: ${await page.textContent('body')}`);
    return seen;
  };

  const browser = await chromium.launch({ executablePath: params.chromium, headless: true });
  const out = { pages: [] };
  try {
    const page = await browser.newPage();
    let hops = [];
    page.on('request', (request) => {
      if (request.isNavigationRequest() && request.frame() === page.mainFrame()) hops.push(request.url());
    });

    step('the pool domain sends the browser to the provider');
    const first = authorization('fed-1');
    await page.goto(first.url);
    out.pages.push(await expectTitle(page, 'Upstream sign-in'));

    step('a wrong password at the provider');
    await page.fill('#login', params.account.login);
    await page.fill('#password', 'not-the-password');
    await page.click('button[type=submit]');
    out.wrongPassword = await page.textContent('[role=alert]');

    step('sign in and consent at the provider');
    await page.fill('#login', params.account.login);
    await page.fill('#password', params.account.password);
    await page.click('button[type=submit]');
    out.pages.push(await expectTitle(page, 'Upstream consent'));
    await Promise.all([page.waitForURL(`${app.origin}/**`), page.click('#allow')]);
    out.hops = hops.map(where);
    const idpResponse = hops.find((url) => where(url) === 'domain/oauth2/idpresponse');
    out.idpResponseParams = idpResponse ? [...new URL(idpResponse).searchParams.keys()].sort() : null;
    const callbackUrl = new URL(page.url());
    out.state = callbackUrl.searchParams.get('state');

    step('the code exchange at Cognate');
    const tokens = await exchange(callbackUrl.href, first.verifier);
    out.exchange = tokens.status;
    if (tokens.status !== 200) throw new Error(`the token endpoint answered ${tokens.status}: ${JSON.stringify(tokens.body)}`);
    out.idClaims = decodeJwt(tokens.body.id_token).payload;
    out.accessClaims = decodeJwt(tokens.body.access_token).payload;
    const info = await fetch(`${params.endpoint}/oauth2/userInfo`, {
      headers: { authorization: `Bearer ${tokens.body.access_token}` },
    });
    out.userInfo = await info.json();

    step('a second sign-in: the provider remembers the browser');
    hops = [];
    const second = authorization('fed-2');
    await Promise.all([page.waitForURL(`${app.origin}/**`), page.goto(second.url)]);
    const again = await exchange(page.url(), second.verifier);
    out.again = {
      hops: hops.map(where),
      username: again.status === 200 ? decodeJwt(again.body.id_token).payload['cognito:username'] : again,
    };
  } finally {
    await browser.close();
    relyingParty.close();
    await upstream.close();
  }
  out.upstreamRequests = upstream.requests;
  return out;
});
