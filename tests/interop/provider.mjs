// An independent OpenID provider for the interoperability tests: panva's oidc-provider (OpenID
// Certified), configured from one JSON file given as the only argument:
//
//   {
//     "port": 41234,                       // where to listen (127.0.0.1)
//     "issuer": "http://127.0.0.1:41234",  // the `iss` of everything it signs
//     "keys_file": "/tmp/.../jwks.json",   // its private signing keys (a JWK set)
//     "fresh_keys": true,                  // true: make new keys and write them to keys_file
//     "key_algs": ["RS256"],               // one signing key per algorithm, the first signs ID tokens
//     "accounts_file": "/tmp/.../accounts.json",
//     "clients": [ { ...oidc-provider client metadata... } ],
//     "resource_servers": { "<resource indicator>": { "scope": "...", "access_token_ttl": 600,
//                                                      "jwt_alg": "RS256" } },
//     "pkce_required": true,               // every authorization request must carry PKCE (S256)
//     "id_token_claims": false             // true: scope claims also go into the ID token
//   }
//
// Accounts are read from accounts_file on every lookup, so a test changes a person's groups (or
// password) between two logins by rewriting the file:
//   { "<account id>": { "password": "...", "claims": { "preferred_username": ..., "groups": [...] } } }
//
// The login and consent pages are the provider's own interactions (below): the password is
// checked against the accounts file, consent grants the scopes and claims asked for.
// When it serves, it prints one line "READY <issuer>" on stdout.

import { readFileSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

async function signingKeys() {
  // A restart without fresh keys keeps the same keys: the relying party sees no rotation.
  if (!config.fresh_keys) {
    return JSON.parse(readFileSync(config.keys_file, 'utf8'));
  }
  const keys = [];
  for (const alg of config.key_algs ?? ['RS256']) {
    const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
    const jwk = await jose.exportJWK(privateKey);
    jwk.kid = `${alg.toLowerCase()}-${randomUUID()}`;
    jwk.alg = alg;
    jwk.use = 'sig';
    keys.push(jwk);
  }
  const jwks = { keys };
  writeFileSync(config.keys_file, JSON.stringify(jwks));
  return jwks;
}

function readAccounts() {
  return JSON.parse(readFileSync(config.accounts_file, 'utf8'));
}

async function findAccount(ctx, accountId) {
  const record = readAccounts()[accountId];
  if (!record) return undefined;
  return {
    accountId,
    // Read again when the claims are asked for: the file may have changed since the login.
    async claims() {
      const current = readAccounts()[accountId] ?? record;
      return { ...current.claims, sub: accountId };
    },
  };
}

function resourceServerInfo(ctx, indicator) {
  const server = (config.resource_servers ?? {})[indicator];
  if (!server) throw new errors.InvalidTarget();
  return {
    scope: server.scope ?? '',
    audience: server.audience ?? indicator,
    accessTokenTTL: server.access_token_ttl ?? 600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: server.jwt_alg ?? (config.key_algs ?? ['RS256'])[0] } },
  };
}

const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

function loginPage(uid, clientId, error) {
  return page('Sign in to the test identity provider', `
<p>Client: <code>${escapeHtml(clientId)}</code></p>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label for="login">Username</label> <input id="login" name="login" autocomplete="username" autofocus>
  <label for="password">Password</label> <input id="password" name="password" type="password">
  <button type="submit">Sign in</button>
</form>`);
}

function consentPage(uid, clientId, details) {
  const scopes = [...(details.missingOIDCScope ?? [])];
  return page('Allow access', `
<p><code>${escapeHtml(clientId)}</code> asks for: <span id="scopes">${escapeHtml(scopes.join(' '))}</span></p>
<form method="post" action="/interaction/${escapeHtml(uid)}/confirm"><button type="submit">Allow</button></form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button type="submit">Deny</button></form>`);
}

async function formBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function grantConsent(provider, details) {
  const { prompt, grantId, session, params } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scope] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scope.join(' '));
  }
  return grant.save();
}

// The interaction routes: /interaction/:uid (GET: the page the prompt needs), and POST
// .../login, .../confirm, .../abort.
function interactions(provider) {
  return async (ctx, next) => {
    const match = ctx.path.match(/^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/);
    if (!match) return next();
    const [, uid, action] = match;
    ctx.set('Cache-Control', 'no-store');
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
    const clientId = details.params.client_id;
    if (!action && ctx.method === 'GET') {
      ctx.type = 'html';
      ctx.body = details.prompt.name === 'login'
        ? loginPage(uid, clientId)
        : consentPage(uid, clientId, details.prompt.details);
      return undefined;
    }
    if (ctx.method !== 'POST') ctx.throw(405);
    if (action === 'login') {
      const form = await formBody(ctx.req);
      const record = readAccounts()[form.get('login')];
      if (!record || record.password !== form.get('password')) {
        ctx.type = 'html';
        ctx.body = loginPage(uid, clientId, 'Invalid username or password.');
        return undefined;
      }
      const result = { login: { accountId: form.get('login') } };
      await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    } else if (action === 'confirm') {
      const result = { consent: { grantId: await grantConsent(provider, details) } };
      await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
    } else {
      const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
      await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    }
    return undefined;
  };
}

const provider = new Provider(config.issuer, {
  jwks: await signingKeys(),
  findAccount,
  clients: config.clients ?? [],
  cookies: { keys: [randomUUID()] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  conformIdTokenClaims: !config.id_token_claims,
  pkce: { required: () => config.pkce_required ?? true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf,
      getResourceServerInfo: async (ctx, indicator) => resourceServerInfo(ctx, indicator),
      useGrantedResource: async () => false,
    },
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Identity provider error', `<pre id="error">${escapeHtml(JSON.stringify(out))}</pre>`);
  },
});
provider.use(interactions(provider));

provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`READY ${config.issuer}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
