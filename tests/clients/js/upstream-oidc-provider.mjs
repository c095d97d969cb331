// An OpenID provider for Cognate to federate with: oidc-provider (the certified Node
// implementation) on a loopback port, with one confidential client (Cognate's user pool) and
// one account. Its sign-in and consent pages are a small interaction of its own rather than
// oidc-provider's devInteractions, which accept any login: here only the account's password
// signs in, so a pool user made from this provider proves the provider's sign-in happened.
//
// The client authenticates at the token endpoint with client_secret_post, the only method
// Cognito uses with OIDC providers (it never reads token_endpoint_auth_methods_supported).
// The ID token carries no profile claims (oidc-provider's default conformIdTokenClaims): email
// and name come from the userinfo endpoint, as with most providers.
//
// Every request the provider answers is recorded as {method, path, status}, so that a test can
// tell what its relying party called.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const html = (title, body) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`;

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return Object.fromEntries(new URLSearchParams(body));
}

// Starts the provider on 127.0.0.1:`port`.
// client: {id, secret, redirectUri}; account: {login, password, sub, claims} (claims besides sub).
// Returns {issuer, requests, close()}.
export async function startUpstreamProvider({ port, client, account }) {
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'upstream-rs256', alg: 'RS256', use: 'sig' };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: client.id,
        client_secret: client.secret,
        redirect_uris: [client.redirectUri],
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      if (id !== account.sub) return undefined;
      return { accountId: id, claims: async () => ({ ...account.claims, sub: id }) };
    },
  });
  const requests = [];
  provider.use(async (ctx, next) => {
    await next();
    requests.push({ method: ctx.method, path: ctx.path, status: ctx.status });
  });
  const oidc = provider.callback();

  // GET shows the page of the prompt at hand (login, then consent); POST answers it.
  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const prompt = details.prompt.name;
    const page = (status, title, body) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(html(title, body));
    };
    const loginForm = (error) =>
      `${error ? `<p role="alert">${escape(error)}</p>` : ''}<form method="post">
       <label>Login <input id="login" name="login" autocomplete="username"></label>
       <label>Password <input id="password" name="password" type="password"></label>
       <button type="submit">Sign in</button></form>`;
    if (req.method === 'GET') {
      if (prompt === 'login') return page(200, 'Upstream sign-in', loginForm());
      const client = escape(details.params.client_id);
      return page(200, 'Upstream consent', `<p>${client} asks for ${escape(details.params.scope)}.</p>
        <form method="post"><button id="allow" type="submit">Allow</button></form>`);
    }
    const form = await readForm(req);
    if (prompt === 'login') {
      if (form.login !== account.login || form.password !== account.password) {
        return page(400, 'Upstream sign-in', loginForm('Wrong login or password.'));
      }
      return provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  const server = createServer((req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(req, res).catch((err) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`interaction failed: ${err}`);
      });
      return;
    }
    oidc(req, res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    issuer,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
