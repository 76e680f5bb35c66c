// Real-browser test of clerk_auth's cookie and sign-in redirect flow.
//
// It runs the demo (./cmd/demo: Caddy with Caddyfile.example, the
// DEVELOPMENT-ONLY fake Clerk issuer and its sign-in page, an upstream that
// shows who it sees) on free ports with short-lived tokens, and drives
// headless Chromium through it: no session → sign-in page; sign in → the
// page shows the user the upstream received; token expired → API calls get
// 401, and a page load is renewed through Clerk's handshake with the fake's
// Frontend API; a form on another origin of the same site posts with the
// cookie → refused; sign out → sign-in page. A second demo, whose Frontend
// API hands out expired tokens, shows the redirect-loop guard ending at the
// sign-in page. A third, with tokens that outlive the test, shows "Sign out
// everywhere": the fake Clerk revokes the session by a signed webhook to
// Caddy, and the page refuses the token the browser still holds. Finally
// each demo is stopped as Ctrl-C does, and must exit with status 0.
//
// Each suite starts its own demo and browser through useDemo (harness.mjs).
// Run it with `bash e2e/run.sh`, which installs what it needs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { useDemo } from './harness.mjs';

// clerk_auth's default leeway on exp, which Caddyfile.example keeps.
const leewaySeconds = 5;

// Where the fake Clerk serves its Frontend API handshake endpoint
// (internal/clerktest HandshakePath), and how many handshakes clerk_auth's
// loop guard allows in a row (internal/handshake LoopLimit).
const handshakePath = '/v1/client/handshake';
const loopLimit = 3;

// sleepUntil waits for a moment of the wall clock: the one thing here no
// readiness check can replace, since it is a token's expiry under test.
async function sleepUntil(epochMs) {
  const wait = epochMs - Date.now();
  if (wait > 0) await sleep(wait);
}

function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

// signIn signs in as user_alice through the demo's sign-in page and waits
// until the browser is back at url.
async function signIn(page, demo, url) {
  await page.goto(`${demo.signIn}?redirect_url=${encodeURIComponent(url)}`);
  await Promise.all([
    page.waitForURL(url),
    page.getByRole('button', { name: 'Sign in as user_alice' }).click(),
  ]);
}

async function sessionCookie(context, app) {
  return (await context.cookies(app)).find((c) => c.name === '__session');
}

// waitPastExpiry waits until clerk_auth no longer accepts the browser's
// session token: past its exp and the leeway.
async function waitPastExpiry(context, app) {
  const { exp } = claimsOf((await sessionCookie(context, app)).value);
  await sleepUntil((exp + leewaySeconds + 1) * 1000);
}

// recordNavigations records the URL of every request of page's main frame
// that loads a document, redirects included, until the returned stop().
function recordNavigations(page) {
  const urls = [];
  const onRequest = (req) => {
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) urls.push(new URL(req.url()));
  };
  page.on('request', onRequest);
  urls.stop = () => page.off('request', onRequest);
  return urls;
}

function isSignIn(url, demo) {
  return `${url.origin}${url.pathname}` === demo.signIn;
}

// startFormSite serves, on another 127.0.0.1 port, a page whose form posts
// to action: another origin, but the same site as the demo (a site ignores
// the port), so the browser still attaches a SameSite=Lax cookie.
async function startFormSite(action) {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>another origin</title>
<form method="post" action="${action}"><input name="amount" value="100"><button>Send</button></form>`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  server.origin = `http://127.0.0.1:${server.address().port}`;
  return server;
}

// submitForm presses the page's button and returns the answer to the POST.
async function submitForm(page, action) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url() === action && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Send' }).click(),
  ]);
  return resp;
}

describe('clerk_auth in a browser', () => {
  const suite = useDemo();

  it('sends a visitor without a session to the sign-in page', async () => {
    const { demo, page } = suite;
    const protectedPage = `${demo.app}/`;
    const resp = await page.goto(protectedPage);
    const landed = new URL(page.url());
    assert.equal(`${landed.origin}${landed.pathname}`, demo.signIn);
    assert.equal(landed.searchParams.get('redirect_url'), protectedPage);
    assert.equal(resp.status(), 200);
    assert.match(await page.textContent('body'), /DEVELOPMENT ONLY/);
  });

  it('after sign-in, the protected page shows the user the upstream received', async () => {
    const { demo, context, page } = suite;
    await Promise.all([
      page.waitForURL(`${demo.app}/`),
      page.getByRole('button', { name: 'Sign in as user_alice' }).click(),
    ]);
    assert.equal(await page.textContent('#user-id'), 'user_alice');

    // The sign-in page, on the issuer's port, set the cookie for the app's
    // host: cookies are per host, not per port.
    const cookies = await context.cookies(demo.app);
    const session = cookies.find((c) => c.name === '__session');
    assert.ok(session, `no __session cookie for ${demo.app}: ${JSON.stringify(cookies)}`);
    assert.equal(session.domain, new URL(demo.app).hostname);
    assert.equal(claimsOf(session.value).sub, 'user_alice');

    // user_alice has the admin role, which /admin requires.
    const admin = await page.goto(`${demo.app}/admin`);
    assert.equal(admin.status(), 200);
    assert.equal(await page.textContent('#user-id'), 'user_alice');
  });

  it('counts the leeway: a token past exp is accepted within it, and API calls get 401 after it', async () => {
    const { demo, context, page } = suite;
    const session = await sessionCookie(context, demo.app);
    const { exp } = claimsOf(session.value);

    // Past exp but within the leeway: still accepted.
    await sleepUntil((exp + 1) * 1000);
    await page.reload();
    assert.equal(new URL(page.url()).origin, demo.app, 'sent to sign in within the leeway');
    assert.equal(await page.textContent('#user-id'), 'user_alice');

    // Past exp + leeway: clerk_auth rejects the token. An API call (a
    // fetch, not a page load) gets the 401 and never a handshake.
    await sleepUntil((exp + leewaySeconds + 1) * 1000);
    const api = await page.evaluate(async () => {
      const r = await fetch('/admin', { headers: { Accept: 'application/json' } });
      return { status: r.status, body: await r.json() };
    });
    assert.deepEqual(api, { status: 401, body: { error: 'token-expired' } });
  });

  it('after the token has expired, a page load renews it through the handshake: no sign-in page, and the upstream sees the user', async () => {
    const { demo, context, page } = suite;
    const app = `${demo.app}/`;
    await signIn(page, demo, app);
    const before = await sessionCookie(context, demo.app);
    await waitPastExpiry(context, demo.app);

    const hops = recordNavigations(page);
    const resp = await page.goto(app);
    hops.stop();
    assert.equal(page.url(), app);
    assert.equal(resp.status(), 200);
    assert.equal(await page.textContent('#user-id'), 'user_alice');
    assert.ok(!hops.some((u) => isSignIn(u, demo)), `went to sign in: ${hops.join(' → ')}`);
    // Once through the fake's Frontend API, and back with the nonce.
    const handshakes = hops.filter((u) => u.origin === new URL(demo.signIn).origin && u.pathname === handshakePath);
    assert.equal(handshakes.length, 1, `handshakes: ${hops.join(' → ')}`);
    assert.ok(hops.some((u) => u.searchParams.has('__clerk_handshake_nonce')), `no return leg: ${hops.join(' → ')}`);

    // A fresh token of the same session.
    const after = await sessionCookie(context, demo.app);
    assert.notEqual(after.value, before.value);
    assert.ok(claimsOf(after.value).exp > claimsOf(before.value).exp);
    assert.equal(claimsOf(after.value).sid, claimsOf(before.value).sid);
    assert.equal(claimsOf(after.value).sub, 'user_alice');
  });

  it('refuses the session cookie on a form POST from another origin, and accepts it from the app', async (t) => {
    const { demo, context, page } = suite;
    const action = `${demo.app}/`;
    const formSite = await startFormSite(action);
    t.after(() => formSite.close());

    // A token minted just now, so that the posts below happen well
    // within its lifetime.
    await signIn(page, demo, action);
    // The demo's cookie: host-only, Path=/, HttpOnly, SameSite=Lax, as
    // clerk-js sets __session.
    const session = await sessionCookie(context, demo.app);
    assert.equal(session.sameSite, 'Lax');

    // The same form on the app's own origin: accepted.
    await page.evaluate((html) => { document.body.innerHTML = html; },
      `<form method="post" action="/"><input name="amount" value="100"><button>Send</button></form>`);
    const own = await submitForm(page, action);
    assert.equal(own.status(), 200);
    assert.equal((await own.request().allHeaders()).origin, demo.app);
    assert.equal(await page.textContent('#user-id'), 'user_alice');

    // Another origin: SameSite=Lax sends the cookie (same site), and
    // clerk_auth refuses it.
    await page.goto(`${formSite.origin}/`);
    const other = await submitForm(page, action);
    const sent = await other.request().allHeaders();
    assert.match(sent.cookie ?? '', /__session=/, 'the browser did not send the cookie: nothing was tested');
    assert.equal(sent.origin, formSite.origin);
    assert.equal(sent['sec-fetch-site'], 'same-site');
    assert.equal(other.status(), 401);
    assert.deepEqual(await other.json(), { error: 'cross-site-cookie' });
  });

  it('after sign-out (__client_uat=0), the next page load goes to sign in', async () => {
    const { demo, context, page } = suite;
    const app = `${demo.app}/`;
    await signIn(page, demo, app);

    // The sign-in page's Sign out button ends the fake's client session,
    // clears __session and sets __client_uat=0, and goes back to the app,
    // which sends the browser to sign in.
    await page.goto(`${demo.signIn}?redirect_url=${encodeURIComponent(app)}`);
    await Promise.all([
      page.waitForURL((u) => isSignIn(u, demo) && u.searchParams.get('redirect_url') === app),
      page.getByRole('button', { name: 'Sign out', exact: true }).click(),
    ]);
    const cookies = await context.cookies(demo.app);
    assert.equal(cookies.find((c) => c.name === '__client_uat')?.value, '0');
    assert.equal(cookies.find((c) => c.name === '__session'), undefined);

    // The next page load: straight to sign in, with no handshake.
    const hops = recordNavigations(page);
    await page.goto(app);
    hops.stop();
    const landed = new URL(page.url());
    assert.ok(isSignIn(landed, demo), `landed on ${landed}`);
    assert.equal(landed.searchParams.get('redirect_url'), app);
    assert.ok(!hops.some((u) => u.pathname === handshakePath), `handshake after sign-out: ${hops.join(' → ')}`);
  });
});

describe('clerk_auth in a browser, when the Frontend API keeps handing out expired tokens', () => {
  const suite = useDemo('-handshake-fault', 'expired-sessions');

  it('ends at the sign-in page after the loop guard, never in an endless loop', async () => {
    const { demo, context, page } = suite;
    const app = `${demo.app}/`;
    await signIn(page, demo, app);
    await waitPastExpiry(context, demo.app);

    const hops = recordNavigations(page);
    await page.goto(app);
    hops.stop();
    const landed = new URL(page.url());
    assert.ok(isSignIn(landed, demo), `landed on ${landed} after ${hops.join(' → ')}`);
    assert.equal(landed.searchParams.get('redirect_url'), app);
    // Each handshake: the app → the Frontend API → the app with a nonce →
    // the clean URL, whose expired token starts the next one; the guard
    // stops the loop after loopLimit, and the browser goes to sign in.
    const handshakes = hops.filter((u) => u.pathname === handshakePath);
    assert.equal(handshakes.length, loopLimit, `handshakes: ${hops.join(' → ')}`);
    assert.equal(hops.length, 3 * loopLimit + 2, `navigations: ${hops.join(' → ')}`);
  });
});

describe('clerk_auth in a browser, when the session is revoked in Clerk', () => {
  // Tokens that outlive the test: the refusal must come from the
  // revocation, not from expiry.
  const suite = useDemo('-token-lifetime', '10m');

  it('Sign out everywhere: the fake Clerk sends session.revoked to Caddy, and the page refuses the token the browser still holds', async (t) => {
    const { demo, context, page } = suite;
    const app = `${demo.app}/`;
    await signIn(page, demo, app);
    assert.equal(await page.textContent('#user-id'), 'user_alice');
    const token = (await sessionCookie(context, demo.app)).value;

    await page.goto(`${demo.signIn}?redirect_url=${encodeURIComponent(app)}`);
    const hops = recordNavigations(page);
    const clicked = Date.now();
    // The revocation goes back to the page, which sends the browser to
    // sign in: the app is among the hops, and the last one is sign-in.
    await Promise.all([
      page.waitForURL((u) => isSignIn(u, demo) && hops.some((h) => h.href === app), { timeout: 5_000 }),
      page.getByRole('button', { name: 'Sign out everywhere' }).click(),
    ]);
    hops.stop();
    t.diagnostic(`the page refused ${Date.now() - clicked} ms after the click`);
    assert.equal(new URL(page.url()).searchParams.get('redirect_url'), app);

    // The browser still holds the same, unexpired token: only the
    // revocation refuses it. An API call says why.
    const after = await sessionCookie(context, demo.app);
    assert.equal(after?.value, token, 'Sign out everywhere changed __session: nothing was tested');
    assert.ok(claimsOf(token).exp * 1000 > Date.now() + 60_000);
    const api = await context.request.get(app, { headers: { Accept: 'application/json' } });
    assert.equal(api.status(), 401);
    assert.deepEqual(await api.json(), { error: 'session-revoked' });

    // Signing in again starts a new session, which the page accepts.
    await signIn(page, demo, app);
    assert.equal(await page.textContent('#user-id'), 'user_alice');
  });
});
