// The server-rendered shell, Vigil's own /metrics, the probes and static asset headers: plain
// HTTP, no browser, so they hold before any script runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startVigil } from './harness.js';
import { parseExposition } from './promtext.js';

let vigil;
before(async () => { vigil = await startVigil(); });
after(async () => { await vigil?.stop(); });

test('SSR page holds the app shell before any script runs', async () => {
  const res = await fetch(`${vigil.base}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/html/);
  const html = await res.text();
  for (const [href, label] of [['/dashboards', 'Dashboards'], ['/explore', 'Explore'], ['/targets', 'Targets'], ['/status', 'Status']]) {
    // Leptos leaves <!> hydration markers inside elements.
    assert.match(html, new RegExp(`<a href="${href}"[^>]*>${label}(<!>)?</a>`), `nav link to ${href}`);
  }
  assert.match(html, /<button[^>]*class="theme-toggle"/);
  assert.match(html, /<link rel="modulepreload" href="\/pkg\/vigil[.\w-]*\.js"/);
});

test('every page renders on the server; unknown paths are 404 with the shell', async () => {
  for (const path of ['/dashboards', '/explore', '/targets', '/status']) {
    const res = await fetch(`${vigil.base}${path}`);
    assert.equal(res.status, 200, path);
  }
  const res = await fetch(`${vigil.base}/no/such/page`);
  assert.equal(res.status, 404);
  assert.match(await res.text(), /Page not found/);
});

test('status and targets pages are filled by server functions during SSR', async () => {
  const status = await (await fetch(`${vigil.base}/status`)).text();
  assert.ok(status.includes(vigil.dataDir), 'status page names the storage path');
  assert.match(status, /--web\.listen-address/);
  const targets = await (await fetch(`${vigil.base}/targets`)).text();
  const port = new URL(vigil.base).port;
  assert.ok(targets.includes(`http://127.0.0.1:${port}/metrics`), 'built-in config scrapes Vigil itself');
});

test('/metrics parses as Prometheus text and has process and HTTP metrics', async () => {
  await fetch(`${vigil.base}/-/healthy`);
  const res = await fetch(`${vigil.base}/metrics`);
  assert.equal(res.status, 200);
  const { families, samples } = parseExposition(await res.text());
  const names = new Set(samples.map((s) => s.name));
  for (const n of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_open_fds',
    'process_max_fds', 'process_start_time_seconds', 'vigil_build_info', 'vigil_http_requests_total',
    'vigil_http_request_duration_seconds_bucket']) {
    assert.ok(names.has(n), `missing ${n}`);
  }
  assert.equal(families.get('vigil_http_requests').type, 'counter');
  const healthy = samples.find((s) => s.name === 'vigil_http_requests_total' && s.labels.handler === '/-/healthy');
  assert.equal(healthy?.labels.code, '200');
  assert.ok(samples.find((s) => s.name === 'process_resident_memory_bytes').value > 1e6);
});

test('health and readiness probes', async () => {
  for (const path of ['/-/healthy', '/-/ready']) {
    const res = await fetch(`${vigil.base}${path}`);
    assert.equal(res.status, 200, path);
  }
});

test('bundle files are compressed and cached; html is compressed', async () => {
  const html = await (await fetch(`${vigil.base}/`)).text();
  const wasm = /href="(\/pkg\/[^"]+\.wasm)"/.exec(html)?.[1];
  assert.ok(wasm, 'page preloads a wasm file');
  const res = await fetch(`${vigil.base}${wasm}`, { headers: { 'accept-encoding': 'br, gzip' } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-encoding') ?? '', /br|gzip/);
  assert.match(res.headers.get('cache-control') ?? '', /max-age=31536000, immutable/);
  const css = /href="(\/pkg\/[^"]+\.css)"/.exec(html)?.[1];
  assert.equal((await fetch(`${vigil.base}${css}`)).status, 200, 'stylesheet is served');
  const icon = await fetch(`${vigil.base}/favicon.svg`);
  assert.equal(icon.status, 200);
  assert.match(icon.headers.get('cache-control') ?? '', /max-age=3600/);
  const page = await fetch(`${vigil.base}/status`, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(page.headers.get('content-encoding'), 'gzip');
});
