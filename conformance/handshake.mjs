// Runs Clerk's official authenticateRequest (@clerk/backend, pinned in
// package.json) over request shapes, for the handshake differential test in
// ../handshake_conformance_test.go.
//
// Usage: node handshake.mjs <shapes.json>   (or the shapes on stdin)
//
// Input: {"now" (unix ms), "pem", "secretKey", "authorizedParties",
//         "instances": {"<name>": {"publishableKey", "proxyUrl"}},
//         "shapes": [{"id", "instance", "url", "method", "headers": [[name, value]]}]}
// Output: one JSON array on stdout, [{"id", "status", "reason", "location",
// "setCookie", "exception"}], in input order. status is Clerk's AuthStatus
// (signed-in, signed-out, handshake); exception is the error's name and
// message when authenticateRequest throws.
//
// No network: the session key is the PEM (jwtKey), and no Backend API client
// is given, so refresh through __refresh reports missing-api-client.
import { readFileSync } from 'node:fs';
import { createAuthenticateRequest } from '@clerk/backend/internal';

const input = JSON.parse(readFileSync(process.argv[2] ?? 0, 'utf8'));
if (typeof input.now !== 'number' || !Array.isArray(input.shapes)) {
  throw new Error('input needs a numeric "now" and a "shapes" array');
}

// Every time check (verifyJwt, usesSuffixedCookies) reads Date.now().
Date.now = () => input.now;
// Clerk logs (loop guard, azp warning) with console.log/warn: keep stdout
// for the results.
for (const name of ['log', 'info', 'warn', 'debug']) {
  console[name] = (...args) => console.error(...args);
}

const authenticators = {};
for (const [name, inst] of Object.entries(input.instances)) {
  authenticators[name] = createAuthenticateRequest({
    options: {
      secretKey: input.secretKey,
      publishableKey: inst.publishableKey,
      jwtKey: input.pem,
      proxyUrl: inst.proxyUrl || '',
    },
    apiClient: undefined,
  }).authenticateRequest;
}

const results = [];
for (const shape of input.shapes) {
  const out = { id: shape.id, status: '', reason: '', location: '', setCookie: '', exception: '' };
  try {
    const headers = new Headers();
    for (const [name, value] of shape.headers) {
      headers.append(name, value);
    }
    // authorizedParties is a per-request option: createAuthenticateRequest
    // drops build-time options it does not list in its defaults.
    const state = await authenticators[shape.instance](new Request(shape.url, { method: shape.method, headers }), {
      authorizedParties: input.authorizedParties,
    });
    out.status = state.status;
    out.reason = state.reason ?? '';
    out.location = state.headers.get('location') ?? '';
    out.setCookie = state.headers.get('set-cookie') ?? '';
  } catch (err) {
    out.exception = `${err?.name ?? typeof err}: ${err?.message ?? ''}`;
  }
  results.push(out);
}
process.stdout.write(JSON.stringify(results) + '\n');
