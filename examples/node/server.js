// An app behind Caddy and clerk_auth that answers the caller's identity as
// JSON.
//
// By default it trusts the identity headers Caddy sets, with node:http only:
//
//   node examples/node/server.js --port 8000
//
// The headers are trustworthy only because nothing but Caddy can reach the
// app: clerk_auth deletes every client copy of them (and their X_User_Id
// look-alikes) before setting them.
//
// With --jwks-url it instead verifies the identity assertion that
// clerk_auth's identity_assertion signs, and ignores those headers (needs
// `npm ci --prefix examples/node` for jose):
//
//   node examples/node/server.js \
//     --jwks-url http://127.0.0.1:8080/.well-known/clerk-identity/jwks.json \
//     --audience https://app.internal --issuer http://127.0.0.1:8080
//
// It listens on 127.0.0.1 only.
'use strict';

const http = require('node:http');
const { parseArgs } = require('node:util');

// JSON field -> the header Caddy's forward_header line sets (node lowercases
// header names).
const IDENTITY_HEADERS = {
  user_id: 'x-user-id',
  session_id: 'x-session-id',
  org_id: 'x-org-id',
  org_role: 'x-org-role',
};

// The caller's identity; null where the token has no such claim.
function identity(headers) {
  const found = {};
  for (const [field, name] of Object.entries(IDENTITY_HEADERS)) {
    found[field] = headers[name] || null;
  }
  const roles = headers['x-user-roles'];
  // A list placeholder percent-encodes '%' and ',' (and a few more) inside
  // each element, so a role named "viewer,admin" stays one.
  found.roles = roles ? roles.split(',').map(decodeURIComponent) : [];
  return found;
}

// The key set could not be had. An outage, not a bad assertion: the app
// answers 503 with Retry-After, never 401, so that a client retries
// instead of signing the user out.
class KeysUnavailable extends Error {
  constructor(cause) {
    super('identity assertion keys unavailable', { cause });
  }
}

// Checks clerk_auth's identity assertions against the key set Caddy
// publishes. The returned function answers the caller's identity, or
// throws an Error whose message is for the client (KeysUnavailable: answer
// 503).
async function assertionVerifier({ jwksUrl, audience, issuer, header }) {
  if (!audience || !issuer) {
    // Without them an assertion meant for another app, or made by another
    // gateway, would pass.
    throw new Error('--jwks-url needs --audience and --issuer');
  }
  const { createRemoteJWKSet, jwtVerify, errors } = await import('jose');
  // Fetched on first use, so the app may start before Caddy; kept for 5
  // minutes, and fetched again when a token names an unknown kid, at most
  // every 30 s (jose's cooldownDuration, counted from the last fetch): a
  // flood of made-up kids costs Caddy one fetch. Caddy publishes a key
  // hours before it signs with it.
  const remote = createRemoteJWKSet(new URL(jwksUrl), { cacheMaxAge: 5 * 60 * 1000 });
  // Anything but an unknown kid failing here is about the key set, not the
  // token: Caddy down or unreachable, a timeout, an answer other than 200,
  // or a body that is no key set.
  const keys = async (protectedHeader, token) => {
    try {
      return await remote(protectedHeader, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) throw err;
      throw new KeysUnavailable(err);
    }
  };
  const name = header.toLowerCase();
  return async (headers) => {
    const token = headers[name];
    if (!token) throw new Error('not signed in');
    let claims;
    try {
      // ES256 only: "none", HS256 keyed with the public key, or any other
      // alg the token names is refused before any check.
      ({ payload: claims } = await jwtVerify(token, keys, {
        algorithms: ['ES256'],
        audience,
        issuer,
        clockTolerance: 5,
        requiredClaims: ['exp', 'iat', 'sub'],
      }));
    } catch (err) {
      if (err instanceof KeysUnavailable) {
        console.error(`identity assertion not checked: ${err.cause.code || err.cause.name}: ${err.cause.message}`);
        throw err;
      }
      // The details are for the log only, never the token itself.
      console.error(`identity assertion refused: ${err.code || err.name}: ${err.message}`);
      throw new Error('invalid identity assertion');
    }
    const str = (v) => (typeof v === 'string' && v !== '' ? v : null);
    return {
      user_id: claims.sub,
      session_id: str(claims.sid),
      org_id: str(claims.org_id),
      org_role: str(claims.org_role),
      roles: Array.isArray(claims.roles) ? claims.roles.filter((r) => typeof r === 'string') : [],
    };
  };
}

function reply(res, status, body, headers = {}) {
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

// Behind clerk_auth (without `optional`) every request is signed in;
// refusing the others still guards against a Caddyfile that forgets the
// directive, or a client that reaches the app directly.
function whoami(verify) {
  return async (req, res) => {
    if (verify) {
      try {
        reply(res, 200, await verify(req.headers));
      } catch (err) {
        if (err instanceof KeysUnavailable) {
          // An outage, not a sign-out: the client should retry shortly.
          reply(res, 503, { error: err.message }, { 'Retry-After': '5' });
        } else {
          reply(res, 401, { error: err.message });
        }
      }
      return;
    }
    const who = identity(req.headers);
    if (who.user_id === null) {
      reply(res, 401, { error: 'not signed in' });
    } else {
      reply(res, 200, who);
    }
  };
}

async function main() {
  const env = process.env;
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8000' },
      // Unset: trust the identity headers.
      'jwks-url': { type: 'string', default: env.IDENTITY_JWKS_URL },
      audience: { type: 'string', default: env.IDENTITY_AUDIENCE },
      issuer: { type: 'string', default: env.IDENTITY_ISSUER },
      header: { type: 'string', default: env.IDENTITY_HEADER || 'X-Clerk-Identity' },
    },
  });
  const jwksUrl = values['jwks-url'];
  const verify = jwksUrl ? await assertionVerifier({ jwksUrl, ...values }) : null;
  const server = http.createServer(whoami(verify));
  server.listen(Number(values.port), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
  // Ctrl-C or a service manager: stop accepting, let requests finish, exit 0.
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => server.close(() => process.exit(0)));
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
