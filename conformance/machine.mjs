// Runs Clerk's official authenticateRequest (@clerk/backend, pinned in
// package.json) over JWT machine-token shapes, for the differential test in
// ../machine_conformance_test.go.
//
// Usage: node machine.mjs <shapes.json>   (or the shapes on stdin)
//
// Input: {"now" (unix ms), "pem", "secretKey", "publishableKey",
//         "authorizedParties", "audience" (optional: [] or absent = none),
//         "shapes": [{"id", "token", "acceptsToken": [TokenType, ...]}]}
// acceptsToken holds Clerk's TokenType strings (session_token, api_key,
// m2m_token, oauth_token). One entry is passed as that string, the way a
// route taking one class is written (acceptsToken: 'm2m_token'); more are
// passed as the array, which takes Clerk's "any of these" path.
// Every shape is sent as `Authorization: Bearer <token>`.
//
// Output: one JSON array on stdout, [{"id", "status", "reason", "tokenType",
// "subject", "tokenId", "scopes", "clientId", "exception"}], in input order.
// status is Clerk's AuthStatus and tokenType the RequestState's. For a
// signed-in state, the rest come from state.toAuth(): subject is the auth
// object's userId, machineId or subject, whichever it has; a machine
// token's id (its jti), scopes (as Clerk has them, which for an M2M JWT
// can be its aud as is) and OAuth client id are there, null for session
// tokens. exception is the error's name and message when
// authenticateRequest throws.
//
// No network: every key is the PEM (jwtKey), no Backend API client is
// given, and fetch is replaced before the SDK loads (it binds fetch when
// imported) by one that throws, so any attempt fails the run.
import { readFileSync } from 'node:fs';

const input = JSON.parse(readFileSync(process.argv[2] ?? 0, 'utf8'));
if (typeof input.now !== 'number' || !Array.isArray(input.shapes)) {
  throw new Error('input needs a numeric "now" and a "shapes" array');
}

let fetches = 0;
globalThis.fetch = async (url) => {
  fetches++;
  throw new Error(`machine.mjs: network call attempted (${String(url).split('?')[0]})`);
};
// Every time check (verifyJwt, the machine token's expired flag) reads
// Date.now().
Date.now = () => input.now;
// Clerk logs with console.log/warn: keep stdout for the results.
for (const name of ['log', 'info', 'warn', 'debug']) {
  console[name] = (...args) => console.error(...args);
}

const { createAuthenticateRequest } = await import('@clerk/backend/internal');
const { authenticateRequest } = createAuthenticateRequest({
  options: {
    secretKey: input.secretKey,
    publishableKey: input.publishableKey,
    jwtKey: input.pem,
    audience: input.audience?.length ? input.audience : '',
  },
  apiClient: undefined,
});

const results = [];
for (const shape of input.shapes) {
  const out = { id: shape.id, status: '', reason: '', tokenType: '', subject: null, tokenId: null, scopes: null, clientId: null, exception: '' };
  try {
    const accepts = shape.acceptsToken.length === 1 ? shape.acceptsToken[0] : shape.acceptsToken;
    const headers = new Headers({ authorization: `Bearer ${shape.token}` });
    // authorizedParties and acceptsToken are per-request options:
    // createAuthenticateRequest drops build-time options it does not list
    // in its defaults.
    const state = await authenticateRequest(new Request('https://app.example.com/api', { headers }), {
      authorizedParties: input.authorizedParties,
      acceptsToken: accepts,
    });
    out.status = state.status;
    out.reason = state.reason ?? '';
    out.tokenType = state.tokenType ?? '';
    if (state.status === 'signed-in') {
      const auth = state.toAuth();
      out.subject = auth?.userId ?? auth?.machineId ?? auth?.subject ?? null;
      if (state.tokenType !== 'session_token') {
        out.tokenId = auth?.id ?? null;
        out.scopes = auth?.scopes ?? null;
        out.clientId = auth?.clientId ?? null;
      }
    }
  } catch (err) {
    out.exception = `${err?.name ?? typeof err}: ${err?.message ?? ''}`;
  }
  results.push(out);
}
if (fetches > 0) {
  throw new Error(`machine.mjs: ${fetches} network call(s) attempted; every JWT form must verify with the PEM`);
}
process.stdout.write(JSON.stringify(results) + '\n');
