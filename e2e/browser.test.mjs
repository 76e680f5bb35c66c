// Real-browser test of clerk_auth's cookie and sign-in redirect flow.
//
// It runs the demo (./cmd/demo: Caddy with Caddyfile.example, the
// DEVELOPMENT-ONLY fake Clerk issuer and its sign-in page, an upstream that
// shows who it sees) on free ports with short-lived tokens, and drives
// headless Chromium through it: no session → sign-in page; sign in → the
// page shows the user the upstream received; token expired → sign-in again;
// a form on another origin of the same site posts with the cookie → refused.
// Finally it stops the demo as Ctrl-C does and expects exit status 0.
//
// Run it with `bash e2e/run.sh`, which installs what it needs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// Tokens minted by the sign-in page live this long, so the test can watch
// one expire.
const tokenLifetimeSeconds = 3;
// clerk_auth's default leeway on exp, which Caddyfile.example keeps.
const leewaySeconds = 5;

const readyLine = 'Ready. Press Ctrl-C to stop.';

// buildDemo builds ./cmd/demo into dir, unless run.sh has (DEMO_BIN). The
// test runs the binary rather than `go run ./cmd/demo`, which is the same
// program, because the go command itself exits 1 when interrupted, hiding
// the demo's own exit status.
async function buildDemo(dir) {
  if (process.env.DEMO_BIN) return process.env.DEMO_BIN;
  const bin = path.join(dir, 'demo');
  await promisify(execFile)('go', ['build', '-o', bin, './cmd/demo'], { cwd: repoRoot, timeout: 600_000 });
  return bin;
}

// startDemo runs the demo from the repository root, where it finds
// Caddyfile.example, and resolves once it has printed that it is ready.
function startDemo(bin) {
  const child = spawn(bin, [
    '-port', '0', '-issuer-port', '0', '-upstream-port', '0',
    '-token-lifetime', `${tokenLifetimeSeconds}s`,
  ], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const demo = { child, stdout: '', stderr: '' };
  demo.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { demo.stderr += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(
      `demo not ready after 60s\n${demo.stdout}\n${demo.stderr}`)), 60_000);
    child.stdout.on('data', (d) => {
      demo.stdout += d;
      if (!demo.stdout.includes(readyLine)) return;
      clearTimeout(timer);
      const printed = (name) => demo.stdout.match(new RegExp(`^  ${name}=(\\S+)$`, 'm'))?.[1];
      demo.app = printed('SITE_ADDRESS');
      demo.signIn = printed('CLERK_SIGN_IN_URL');
      resolve(demo);
    });
    demo.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`demo exited (${code ?? signal}) before it was ready\n${demo.stdout}\n${demo.stderr}`));
    });
  });
}

// stopDemo interrupts the demo as Ctrl-C would and returns how it exited,
// killing it only if it does not stop within 15s.
async function stopDemo(demo) {
  demo.child.kill('SIGINT');
  const timeout = sleep(15_000).then(() => null);
  const exit = await Promise.race([demo.exited, timeout]);
  if (exit === null) {
    demo.child.kill('SIGKILL');
    return { code: null, signal: 'SIGKILL (did not stop within 15s of SIGINT)' };
  }
  return exit;
}

// sleepUntil waits for a moment of the wall clock: the one thing here no
// readiness check can replace, since it is a token's expiry under test.
async function sleepUntil(epochMs) {
  const wait = epochMs - Date.now();
  if (wait > 0) await sleep(wait);
}

function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
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
  let work;
  let demo;
  let context;
  let page;
  let formSite;

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'clerkauth-e2e-'));
    demo = await startDemo(await buildDemo(work));
    assert.ok(demo.app && demo.signIn, `the demo printed no SITE_ADDRESS or CLERK_SIGN_IN_URL:\n${demo.stdout}`);
    // A fresh profile: no cookie from an earlier run.
    context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--disable-quic'],
    });
    page = context.pages()[0] ?? await context.newPage();
  });

  after(async () => {
    formSite?.close();
    await context?.close();
    const exit = demo && await stopDemo(demo);
    if (work) rmSync(work, { recursive: true, force: true });
    if (demo) {
      assert.deepEqual(exit, { code: 0, signal: null }, `the demo did not exit cleanly on SIGINT\n${demo.stderr}`);
      assert.match(demo.stdout, /Stopping\.\n$/);
    }
  });

  it('sends a visitor without a session to the sign-in page', async () => {
    const protectedPage = `${demo.app}/`;
    const resp = await page.goto(protectedPage);
    const landed = new URL(page.url());
    assert.equal(`${landed.origin}${landed.pathname}`, demo.signIn);
    assert.equal(landed.searchParams.get('redirect_url'), protectedPage);
    assert.equal(resp.status(), 200);
    assert.match(await page.textContent('body'), /DEVELOPMENT ONLY/);
  });

  it('after sign-in, the protected page shows the user the upstream received', async () => {
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

  it('once the token has expired (leeway counted), the page sends the browser to sign in again', async () => {
    const session = (await context.cookies(demo.app)).find((c) => c.name === '__session');
    const { exp } = claimsOf(session.value);

    // Past exp but within the leeway: still accepted.
    await sleepUntil((exp + 1) * 1000);
    await page.reload();
    assert.equal(new URL(page.url()).origin, demo.app, 'sent to sign in within the leeway');
    assert.equal(await page.textContent('#user-id'), 'user_alice');

    // Past exp + leeway: clerk_auth rejects the token, and a page load is
    // redirected to sign in rather than shown a 401.
    await sleepUntil((exp + leewaySeconds + 1) * 1000);
    await page.reload();
    const landed = new URL(page.url());
    assert.equal(`${landed.origin}${landed.pathname}`, demo.signIn);
    assert.equal(landed.searchParams.get('redirect_url'), `${demo.app}/admin`);
  });

  it('refuses the session cookie on a form POST from another origin, and accepts it from the app', async () => {
    const action = `${demo.app}/`;
    formSite = await startFormSite(action);

    // The earlier token has expired: sign in again.
    await page.goto(action);
    await Promise.all([
      page.waitForURL(action),
      page.getByRole('button', { name: 'Sign in as user_alice' }).click(),
    ]);
    // The demo's cookie: host-only, Path=/, HttpOnly, SameSite=Lax, as
    // clerk-js sets __session.
    const session = (await context.cookies(demo.app)).find((c) => c.name === '__session');
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
});
