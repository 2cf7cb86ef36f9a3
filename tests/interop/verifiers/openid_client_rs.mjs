// A resource server's calls to the portal written with panva's `openid-client`, independent of the
// portal's code: RFC 8414 discovery, RFC 7662 introspection and RFC 7009 revocation.
//
// Usage: node openid_client_rs.mjs
// It reads one JSON request per line on stdin and answers one JSON line on stdout for each:
//   {"op": "discover", "as": NAME, "issuer": URL, "clientId": ID, "credential": KEY}
//       reads <issuer>/.well-known/oauth-authorization-server (openid-client checks that the
//       document names exactly that issuer) and keeps a configuration NAME that authenticates
//       with `Authorization: Bearer KEY` (the portal's API token of the account);
//       answers {"ok": true, "metadata": {...}}
//   {"op": "introspect", "as": NAME, "token": T}  answers {"ok": true, "answer": {...}}
//   {"op": "revoke", "as": NAME, "token": T}      answers {"ok": true}
// A failure answers {"ok": false, "code": ..., "error": ..., "scheme": ..., "status": ..., "message": ...}
// (`error` is the OAuth error the portal answered in its body or in its WWW-Authenticate
// challenge; `scheme` is that challenge's scheme).
// Plain http is allowed (`allowInsecureRequests`): the portal under test listens on loopback.

import { createInterface } from 'node:readline';
import * as client from 'openid-client';

const configurations = new Map();

function bearer(credential) {
  // The portal authenticates resource servers by their API token as a bearer credential, which
  // is not one of the registered client authentication methods: a custom one, as the library allows.
  return (_as, _client, _body, headers) => {
    headers.set('authorization', `Bearer ${credential}`);
  };
}

async function discover(request) {
  const configuration = await client.discovery(
    new URL(request.issuer),
    request.clientId,
    undefined,
    bearer(request.credential),
    { algorithm: 'oauth2', execute: [client.allowInsecureRequests] },
  );
  configurations.set(request.as, configuration);
  return { ok: true, metadata: configuration.serverMetadata() };
}

function configuration(name) {
  const found = configurations.get(name);
  if (!found) throw new Error(`no configuration named ${name}: discover first`);
  return found;
}

async function handle(request) {
  try {
    if (request.op === 'discover') return await discover(request);
    if (request.op === 'introspect') {
      const answer = await client.tokenIntrospection(configuration(request.as), request.token);
      return { ok: true, answer };
    }
    if (request.op === 'revoke') {
      await client.tokenRevocation(configuration(request.as), request.token);
      return { ok: true };
    }
    return { ok: false, code: 'UNKNOWN_OP', message: `unknown op ${request.op}` };
  } catch (error) {
    return {
      ok: false,
      code: error.code ?? error.name,
      // An OAuth error from the body, or from the WWW-Authenticate challenge of a 401/403.
      error: error.error ?? error.cause?.[0]?.parameters?.error,
      scheme: error.cause?.[0]?.scheme,
      status: error.status,
      message: String(error.message ?? error),
    };
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim()) process.stdout.write(`${JSON.stringify(await handle(JSON.parse(line)))}\n`);
}
