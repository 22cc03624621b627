// Shared set-up for the browser tests: starts the built `vigil` on a free loopback port with a
// temporary data dir, launches Debian's Chromium with a fresh profile, and cleans up after.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '..', '..');
export const artifacts = resolve(here, '..', 'artifacts');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

async function waitReady(base, child, log) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`vigil exited with ${child.exitCode}:\n${log()}`);
    try {
      const r = await fetch(`${base}/-/ready`);
      if (r.status === 200) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`vigil did not become ready within 30 s:\n${log()}`);
}

/** Starts vigil; returns { base, dataDir, stop }. */
export async function startVigil(extraArgs = []) {
  const bin = process.env.VIGIL_BIN ? resolve(process.env.VIGIL_BIN) : join(root, 'target', 'debug', 'vigil');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build it first (make test does)`);
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'vigil-e2e-'));
  let output = '';
  const child = spawn(bin, [
    `--web.listen-address=127.0.0.1:${port}`,
    `--storage.tsdb.path=${join(dataDir, 'data')}`,
    '--log.level=warn',
    ...extraArgs,
  ], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const base = `http://127.0.0.1:${port}`;
  await waitReady(base, child, () => output);
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { base, dataDir, stop, log: () => output };
}

/** Launches Chromium with a fresh profile; returns the persistent context. */
export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'vigil-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
  });
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

export function artifactPath(name) {
  mkdirSync(artifacts, { recursive: true });
  return join(artifacts, name);
}

/** Collects console errors and page errors of a page, so tests can assert there were none. */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return errors;
}

/** Waits until the WebAssembly app has hydrated the page (`attached`: embeds have no height). */
export async function hydrated(page) {
  await page.waitForSelector('html[data-hydrated="true"]', { timeout: 20_000, state: 'attached' });
}

/** Waits until Vigil's self-scrape has stored `up` (the first scrape lands within 15 s). */
export async function firstScrape(base) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await (await fetch(`${base}/api/v1/query?query=up`)).json();
    if (r.data?.result?.length) return;
    if (Date.now() > deadline) throw new Error('no self-scrape within 30 s');
    await new Promise((ok) => setTimeout(ok, 250));
  }
}

/** A text panel for the dashboards tests save: its content is its title. */
export function textPanel(id, title, { x = 0, y = 0, w = 24, h = 4 } = {}) {
  return { id, type: 'text', title, gridPos: { x, y, w, h }, options: { content: title } };
}
