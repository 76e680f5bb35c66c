// The setup every browser suite shares: the demo (./cmd/demo) on free ports
// and a headless Chromium with a fresh profile, started before a suite's
// tests and stopped after them, the demo as Ctrl-C does.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// Tokens minted by the sign-in page live this long unless a suite passes
// its own -token-lifetime: short, so a test can watch one expire.
const tokenLifetimeSeconds = 3;

const readyLine = 'Ready. Press Ctrl-C to stop.';

// useDemo registers, in the enclosing describe, a before hook that starts
// the demo with args (after the defaults, so they win) and a browser, and an
// after hook that closes both and asserts the demo exited with status 0.
// The returned object holds demo, context and page once the before hook has
// run, so tests read them inside their bodies.
export function useDemo(...args) {
  const suite = {};
  let work;

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'clerkauth-e2e-'));
    suite.demo = await startDemo(await buildDemo(work), ...args);
    assert.ok(suite.demo.app && suite.demo.signIn,
      `the demo printed no SITE_ADDRESS or CLERK_SIGN_IN_URL:\n${suite.demo.stdout}`);
    Object.assign(suite, await launchBrowser(path.join(work, 'profile')));
  });

  after(async () => {
    const { demo, context } = suite;
    await context?.close();
    const exit = demo && await stopDemo(demo);
    if (work) rmSync(work, { recursive: true, force: true });
    if (demo) {
      assert.deepEqual(exit, { code: 0, signal: null }, `the demo did not exit cleanly on SIGINT\n${demo.stderr}`);
      assert.match(demo.stdout, /Stopping\.\n$/);
    }
  });

  return suite;
}

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
function startDemo(bin, ...args) {
  const child = spawn(bin, [
    '-port', '0', '-issuer-port', '0', '-upstream-port', '0',
    '-token-lifetime', `${tokenLifetimeSeconds}s`, ...args,
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
// killing it only if it does not stop within 15s. The deadline is cleared
// once the demo exits: a pending timer would hold the test process open
// for the rest of the 15s.
async function stopDemo(demo) {
  demo.child.kill('SIGINT');
  let timer;
  const deadline = new Promise((resolve) => { timer = setTimeout(resolve, 15_000, null); });
  const exit = await Promise.race([demo.exited, deadline]);
  clearTimeout(timer);
  if (exit === null) {
    demo.child.kill('SIGKILL');
    return { code: null, signal: 'SIGKILL (did not stop within 15s of SIGINT)' };
  }
  return exit;
}

// launchBrowser starts headless Chromium with a fresh profile in dir: no
// cookie from an earlier run or from another suite's demo, which shares the
// host.
async function launchBrowser(dir) {
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-quic'],
  });
  return { context, page: context.pages()[0] ?? await context.newPage() };
}
