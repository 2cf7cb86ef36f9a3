// A resource server's token check written with panva's `jose`, independent of the portal's code:
// it verifies the portal's access tokens against the keys the portal publishes.
//
// Usage: node jose_verify.mjs <portal base URL>
// At start it reads the portal's RFC 8414 metadata (jwks_uri, the signing algorithms it names) and
// its JWKS once, and takes the allowed algorithms from the keys' own `alg` members (each must also
// be named in the metadata). It then reads one JSON request per line on stdin:
//   {"token": "...", "issuer": "...", "audience": "...", "typ": "at+jwt"}
// and answers one JSON line on stdout for each:
//   {"ok": true, "header": {...}, "payload": {...}, "jwksFetches": n}
//   {"ok": false, "code": "ERR_...", "message": "...", "jwksFetches": n}
// One remote key set (`createRemoteJWKSet`) lives as long as the process: its cache and its
// refetch on an unknown `kid` behave as in a long-running resource server. `jwksFetches` counts
// how many times that set fetched the JWKS.
// The first line written is {"ready": true, "algorithms": [...], "metadata": {...}} or
// {"ready": false, "message": "..."} when the portal's metadata or keys are not usable.

import { createInterface } from 'node:readline';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';

const portal = process.argv[2];
let jwksFetches = 0;

function write(answer) {
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}

async function getJson(url) {
  const response = await fetch(url, { redirect: 'manual', headers: { accept: 'application/json' } });
  if (response.status !== 200) {
    throw new Error(`${url} answered HTTP ${response.status}`);
  }
  return response.json();
}

// The algorithms a verifier allows come from the published keys, never from a token: every key
// must name its `alg` and be a signing key (`use: sig`), and the metadata must name that `alg`.
function algorithmsOf(jwks, metadata) {
  const named = new Set(metadata.access_token_signing_alg_values_supported ?? []);
  const algorithms = new Set();
  for (const key of jwks.keys ?? []) {
    if (typeof key.kid !== 'string' || !key.kid) throw new Error('a published key has no kid');
    if (typeof key.alg !== 'string') throw new Error(`key ${key.kid} names no alg`);
    if (key.use !== 'sig') throw new Error(`key ${key.kid} is not a signing key (use=${key.use})`);
    if (!named.has(key.alg)) throw new Error(`key ${key.kid} signs with ${key.alg}, which the metadata does not name`);
    algorithms.add(key.alg);
  }
  if (algorithms.size === 0) throw new Error('the JWKS holds no key');
  return [...algorithms].sort();
}

async function start() {
  const metadata = await getJson(new URL('/.well-known/oauth-authorization-server', portal));
  const algorithms = algorithmsOf(await getJson(metadata.jwks_uri), metadata);
  const keySet = createRemoteJWKSet(new URL(metadata.jwks_uri), {
    cooldownDuration: Number(process.env.JWKS_COOLDOWN_MS ?? 30000),
    [customFetch]: (...args) => {
      jwksFetches += 1;
      return fetch(...args);
    },
  });
  return { metadata, algorithms, keySet };
}

async function verify({ keySet, algorithms }, request) {
  try {
    const { payload, protectedHeader } = await jwtVerify(request.token, keySet, {
      issuer: request.issuer,
      audience: request.audience,
      typ: request.typ ?? 'at+jwt',
      algorithms,
      requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub', 'jti', 'client_id'],
    });
    return { ok: true, header: protectedHeader, payload, jwksFetches };
  } catch (error) {
    return { ok: false, code: error.code ?? error.name, message: error.message, jwksFetches };
  }
}

let verifier;
try {
  verifier = await start();
  write({ ready: true, algorithms: verifier.algorithms, metadata: verifier.metadata });
} catch (error) {
  write({ ready: false, message: String(error.message ?? error) });
  process.exit(1);
}
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim()) write(await verify(verifier, JSON.parse(line)));
}
