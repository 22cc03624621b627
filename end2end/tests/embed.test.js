// Embedding in a real browser: a page on another loopback origin frames a panel through a signed
// embed link, with anonymous viewers off and no login; a page on an origin the policy does not
// allow is refused by the browser; the link grants nothing beyond its panel.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startVigil, launchBrowser, artifactPath } from './harness.js';

const TOKEN = 'e2e-editor-token-0123456789';
let vigil;
let browser;
const hosts = [];
let embedUrl;

function host(html) {
  return new Promise((ok) => {
    const srv = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(html());
    });
    srv.listen(0, '127.0.0.1', () => {
      hosts.push(srv);
      ok(`http://127.0.0.1:${srv.address().port}`);
    });
  });
}

let allowed;
let refused;
before(async () => {
  const page = () => `<!doctype html><h1>Wiki</h1><iframe id="f" src="${vigil.base}${embedUrl}" width="600" height="300"></iframe>`;
  allowed = await host(page);
  refused = await host(page);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-embed-'));
  const config = join(dir, 'vigil.yml');
  writeFileSync(config, `scrape_configs: []
vigil:
  auth:
    anonymous: false
    editor_tokens: ["${TOKEN}"]
  web:
    embedding:
      allowed_origins: ["${allowed}"]
`);
  vigil = await startVigil([`--config.file=${config}`]);
  browser = await launchBrowser();
  const auth = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
  const saved = await fetch(`${vigil.base}/api/dashboards/db`, {
    method: 'POST', headers: auth,
    body: JSON.stringify({ dashboard: { uid: 'emb', title: 'Embedded', panels: [
      { id: 1, type: 'timeseries', title: 'one', gridPos: { x: 0, y: 0, w: 12, h: 8 }, targets: [{ refId: 'A', expr: 'vector(1)' }] },
      { id: 2, type: 'stat', title: 'secret', gridPos: { x: 12, y: 0, w: 12, h: 8 }, targets: [{ refId: 'A', expr: 'vector(42)' }] },
    ] } }),
  });
  assert.equal(saved.status, 200, await saved.text());
  const t = await fetch(`${vigil.base}/api/embed/tokens`, {
    method: 'POST', headers: auth, body: JSON.stringify({ uid: 'emb', panelId: 1, expiresInSeconds: 3600 }),
  });
  const body = await t.json();
  assert.equal(t.status, 200, JSON.stringify(body));
  embedUrl = body.url;
});
after(async () => {
  await browser?.close();
  await vigil?.stop();
  for (const h of hosts) h.close();
});

test('a signed embed link renders its panel in an iframe on an allowed origin, without login', async () => {
  const page = await browser.context.newPage();
  await page.goto(allowed);
  const frame = page.frameLocator('#f');
  await frame.locator('.solo canvas[data-drawn="true"]').waitFor({ timeout: 20_000 });
  assert.equal(await frame.locator('.solo .panel-title').textContent(), 'one');
  await page.screenshot({ path: artifactPath('embed-allowed.png') });
  await page.close();
});

test('an origin the policy does not allow cannot frame the panel', async () => {
  const page = await browser.context.newPage();
  await page.goto(refused);
  await page.waitForTimeout(2000);
  assert.equal(await page.frameLocator('#f').locator('.solo').count(), 0);
  await page.screenshot({ path: artifactPath('embed-refused.png') });
  await page.close();
});

test('the link grants nothing beyond its panel', async () => {
  const token = new URL(embedUrl, vigil.base).searchParams.get('token');
  const other = await fetch(`${vigil.base}/d-solo/emb/embedded?panelId=2&token=${token}`);
  assert.equal(other.status, 403);
  const whole = await fetch(`${vigil.base}/d/emb/embedded?token=${token}`);
  assert.equal(whole.status, 403);
  const query = await fetch(`${vigil.base}/api/v1/query?query=vector(42)&token=${token}`);
  assert.ok(query.status === 401 || query.status === 403, `free PromQL: ${query.status}`);
  const noToken = await fetch(`${vigil.base}/d-solo/emb/embedded?panelId=1`);
  assert.equal(noToken.status, 401);
});
