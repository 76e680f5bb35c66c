// An app behind Caddy and clerk_auth, node:http only.
//
// It trusts the identity headers Caddy sets and answers them as JSON:
//
//   node examples/node/server.js --port 8000
//
// It listens on 127.0.0.1 only. The headers are trustworthy only because
// nothing but Caddy can reach the app: clerk_auth deletes every client copy
// of them (and their X_User_Id look-alikes) before setting them.
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

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  const who = identity(req.headers);
  // Behind clerk_auth (without `optional`) every request is signed in;
  // refusing requests without X-User-Id still guards against a Caddyfile
  // that forgets the directive.
  if (who.user_id === null) {
    reply(res, 401, { error: 'not signed in' });
  } else {
    reply(res, 200, who);
  }
});

const { values } = parseArgs({ options: { port: { type: 'string', default: '8000' } } });
server.listen(Number(values.port), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

// Ctrl-C or a service manager: stop accepting, let requests finish, exit 0.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
