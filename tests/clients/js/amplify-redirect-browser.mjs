// Amplify v6's signInWithRedirect in a real browser (Debian's Chromium, driven by
// playwright-core): a single-page app (amplify-redirect-page.mjs, bundled here with esbuild
// into a temporary directory) sends the browser to the pool's hosted sign-in page, the user
// signs in there, Amplify exchanges the code on its callback page and reads the session; then
// signOut() goes through the domain's /logout back to the app's sign-out URL.
//
// Amplify always builds `https://{domain}/...` URLs, so the pool's domain is served by Cognate
// over HTTPS (`--tls self-signed`). The browser trusts exactly that server's local CA: Chromium
// accepts certificate errors only for chains holding a key of --ignore-certificate-errors-spki-list,
// which gets the SPKI hash of the CA in ca.pem (the certificate names localhost and 127.0.0.1,
// not the domain's PREFIX.auth.localhost).
//
// Parameters: domain (PREFIX.auth.localhost:PORT), userPoolId, clientId, origin (the app's,
// http://localhost:PORT: served here), caFile, chromium, username, password.
// Result: before (the state before signing in), authorize ({origin, params} of the request to
// /oauth2/authorize), loginPage (its title), signedIn (the state on the callback page),
// callbackUrl (where the callback page ended up), events (auth Hub events there),
// signOutHops (the navigations of signOut, as origin + path), after (the state on the
// sign-out page), signInAgain (the title of the page a new signInWithRedirect reaches).

import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { run, step } from './lib.mjs';

run(async (params) => {
  step('bundle the page (esbuild)');
  const dir = mkdtempSync(join(tmpdir(), 'cognate-amplify-page-'));
  let bundle;
  try {
    const outfile = join(dir, 'page.js');
    await build({
      entryPoints: [new URL('./amplify-redirect-page.mjs', import.meta.url).pathname],
      bundle: true,
      format: 'iife',
      platform: 'browser',
      target: 'es2020',
      outfile,
      logLevel: 'error',
    });
    bundle = readFileSync(outfile);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  step('the app');
  const config = JSON.stringify({
    userPoolId: params.userPoolId,
    userPoolClientId: params.clientId,
    domain: params.domain,
    origin: params.origin,
  });
  const titles = { '/': 'App', '/callback': 'Callback', '/signed-out': 'Signed out' };
  const app = createServer((req, res) => {
    const path = new URL(req.url, params.origin).pathname;
    if (path === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(bundle);
      return;
    }
    res.writeHead(titles[path] ? 200 : 404, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>${titles[path] ?? 'Not found'}</title>
      <script>window.cognateConfig = ${config};</script><script src="/page.js"></script>
      <button id="sign-in" onclick="cognate.signIn()">Sign in</button>
      <button id="sign-out" onclick="cognate.signOut()">Sign out</button>`);
  });
  await new Promise((resolve) => app.listen(Number(new URL(params.origin).port), '127.0.0.1', resolve));

  const ca = new X509Certificate(readFileSync(params.caFile));
  const caSpki = createHash('sha256').update(ca.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  const browser = await chromium.launch({
    executablePath: params.chromium,
    headless: true,
    args: [`--ignore-certificate-errors-spki-list=${caSpki}`],
  });
  const domainOrigin = `https://${params.domain}`;
  const out = {};
  try {
    const page = await browser.newPage();
    let hops = [];
    page.on('request', (request) => {
      if (request.isNavigationRequest() && request.frame() === page.mainFrame()) hops.push(new URL(request.url()));
    });
    const state = () => page.evaluate(() => window.cognate.state());

    step('not signed in yet');
    await page.goto(`${params.origin}/`);
    out.before = await state();

    step('signInWithRedirect: the hosted sign-in page');
    await Promise.all([page.waitForURL(`${domainOrigin}/login**`), page.click('#sign-in')]);
    const authorize = hops.find((url) => url.pathname === '/oauth2/authorize');
    out.authorize = authorize && { origin: authorize.origin, params: Object.fromEntries(authorize.searchParams) };
    out.loginPage = await page.title();

    step('sign in on the hosted page; Amplify completes the flow on its callback page');
    await page.fill('#username', params.username);
    await page.fill('#password', params.password);
    await Promise.all([page.waitForURL(`${params.origin}/callback**`), page.click('button[type=submit]')]);
    out.signedIn = await state();
    out.callbackUrl = page.url();
    out.events = await page.evaluate(() => window.cognate.events);

    step('signOut: through the domain /logout to the sign-out URL');
    hops = [];
    await Promise.all([page.waitForURL(`${params.origin}/signed-out**`), page.click('#sign-out')]);
    out.signOutHops = hops.map((url) => `${url.origin}${url.pathname}`);
    out.after = await state();

    step('the hosted session is gone: a new sign-in shows the form');
    await Promise.all([page.waitForURL(`${domainOrigin}/login**`), page.click('#sign-in')]);
    out.signInAgain = await page.title();
  } finally {
    await browser.close();
    app.close();
  }
  return out;
});
