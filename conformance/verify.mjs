// Runs Clerk's official verifyToken (@clerk/backend, pinned in package.json)
// over a token corpus, for the differential test in ../conformance_test.go.
//
// Usage: node verify.mjs <corpus.json>   (or the corpus on stdin)
//
// Corpus: {"pem", "authorizedParties", "clockSkewInMs", "now" (unix ms),
//          "issuer" and "audience" (optional: verifyToken checks iss and
//          aud only when given them), "tokens": [{"id", "token"}]}
// Output: one JSON array on stdout, [{"id", "ok", "reason", "sub"}], in
// corpus order. reason is the TokenVerificationError reason on failure, or
// "exception:<name>" when the SDK throws something that is not one (e.g. a
// TypeError on a header that is JSON null). sub is the verified payload's
// sub, so the Go side can compare identities and not only decisions.
import { readFileSync } from 'node:fs';
import { verifyToken } from '@clerk/backend';

const corpus = JSON.parse(readFileSync(process.argv[2] ?? 0, 'utf8'));
if (typeof corpus.now !== 'number' || !Array.isArray(corpus.tokens)) {
  throw new Error('corpus needs a numeric "now" and a "tokens" array');
}

// verifyJwt reads the clock through Date.now() (new Date(Date.now()) in its
// exp/nbf/iat assertions), so pinning Date.now pins every time check to the
// same instant the Go verifier uses.
Date.now = () => corpus.now;

const results = [];
for (const { id, token } of corpus.tokens) {
  try {
    const payload = await verifyToken(token, {
      jwtKey: corpus.pem,
      authorizedParties: corpus.authorizedParties,
      clockSkewInMs: corpus.clockSkewInMs,
      issuer: corpus.issuer,
      audience: corpus.audience,
    });
    results.push({ id, ok: true, reason: '', sub: typeof payload?.sub === 'string' ? payload.sub : null });
  } catch (err) {
    const reason = typeof err?.reason === 'string' ? err.reason : `exception:${err?.name ?? typeof err}`;
    results.push({ id, ok: false, reason, sub: null });
  }
}
process.stdout.write(JSON.stringify(results) + '\n');
