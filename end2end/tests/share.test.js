// Sharing in a real browser: a share link with a locked range reopens the same view, export →
// import round-trips, a Grafana-format dashboard (rows, templated instance, graph/singlestat)
// imports through the UI and renders, and a panel renders alone at /d-solo for iframes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startVigil, launchBrowser, artifactPath, watchErrors, root, hydrated, firstScrape } from './harness.js';

let vigil;
let browser;
before(async () => {
  vigil = await startVigil();
  browser = await launchBrowser();
  await firstScrape(vigil.base);
});
after(async () => {
  await browser?.close();
  await vigil?.stop();
});


test('a share link with a locked time range reopens the same view', async () => {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/d/vigil/vigil?from=now-15m&to=now`);
  await hydrated(page);
  await page.click('#share-menu summary');
  await page.check('#share-lock');
  await page.selectOption('#share-theme', 'dark');
  const link = await page.inputValue('#share-link');
  const url = new URL(link);
  assert.equal(url.origin, vigil.base);
  const from = Number(url.searchParams.get('from'));
  const to = Number(url.searchParams.get('to'));
  assert.ok(to - from === 15 * 60_000, `locked range ${from}..${to}`);
  assert.equal(url.searchParams.get('theme'), 'dark');
  const embed = await page.inputValue('#share-embed');
  assert.match(embed, /^<iframe src="http:\/\/127\.0\.0\.1:\d+\/d-solo\/vigil\/vigil\?[^"]*panelId=\d+/);
  const other = await browser.context.newPage();
  await other.goto(link);
  await hydrated(other);
  const label = await other.textContent('#time-range-label');
  assert.ok(label.includes(' to '), label);
  const fromInput = await other.inputValue('input[name="from"]');
  assert.equal(fromInput, new Date(from).toISOString().slice(0, 19));
  await other.close();
  assert.deepEqual(errors, []);
  await page.close();
});

test('export then import gives back the same dashboard', async () => {
  const exported = await (await fetch(`${vigil.base}/api/dashboards/uid/vigil/export`)).json();
  assert.equal(exported.id, undefined, 'export drops the store id');
  const copy = { ...exported, uid: 'vigil-copy', title: 'Vigil copy' };
  const page = await browser.context.newPage();
  await page.goto(`${vigil.base}/dashboard/import`);
  await hydrated(page);
  await page.fill('#import-json', JSON.stringify(copy));
  await page.click('#import-form button[type="submit"]');
  await page.waitForSelector('#import-done');
  const back = await (await fetch(`${vigil.base}/api/dashboards/uid/vigil-copy/export`)).json();
  const strip = (d) => { const { uid, title, version, id, ...rest } = d; return rest; };
  assert.deepEqual(strip(back), strip(copy));
  // Importing the same uid again without overwrite is refused with a clear message.
  await page.click('#import-form button[type="submit"]');
  await page.waitForSelector('#import-error');
  assert.match(await page.textContent('#import-error'), /already exists|overwrite/i);
  await page.close();
});

test('a Grafana classic dashboard imports through the UI and renders', async () => {
  const grafana = readFileSync(join(root, 'server/tests/fixtures/grafana/node-exporter-classic.json'), 'utf8');
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/dashboard/import`);
  await hydrated(page);
  await page.setInputFiles('#import-file', { name: 'grafana.json', mimeType: 'application/json', buffer: Buffer.from(grafana) });
  await page.waitForFunction(() => document.querySelector('#import-json').value.length > 100);
  await page.click('#import-form button[type="submit"]');
  await page.waitForSelector('#import-done a');
  await page.click('#import-done a');
  await page.waitForSelector('#dashboard-title');
  await page.waitForFunction(() => document.querySelectorAll('canvas[data-drawn="true"]').length > 0);
  assert.ok(await page.locator('select[data-variable="instance"]').count() === 1, 'templated instance variable');
  const unsupported = await page.locator('.panel-unsupported').allTextContents();
  assert.deepEqual(unsupported, []);
  await page.screenshot({ path: artifactPath('grafana-import.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('/d-solo renders one panel alone, filling the frame', async () => {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.setViewportSize({ width: 600, height: 300 });
  await page.goto(`${vigil.base}/d-solo/vigil/vigil?panelId=4&from=now-15m&to=now&theme=dark`);
  await hydrated(page);
  await page.waitForSelector('.solo canvas[data-drawn="true"]');
  assert.equal(await page.locator('header.topbar').count(), 0);
  assert.equal(await page.locator('.solo section.panel').count(), 1);
  const box = await page.locator('.solo section.panel').boundingBox();
  assert.ok(box.width > 560 && box.height > 260, JSON.stringify(box));
  await page.screenshot({ path: artifactPath('solo-panel.png') });
  assert.deepEqual(errors, []);
  await page.close();
});
