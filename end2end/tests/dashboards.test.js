// Dashboards in a real browser, with Vigil scraping itself: the built-in dashboard paints every
// panel, the time range and variables live in the URL, drag-to-zoom narrows the range, query
// errors show on their panel, and hostile dashboard JSON runs no script.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startVigil, launchBrowser, artifactPath, watchErrors, hydrated, firstScrape } from './harness.js';

let vigil;
let browser;
before(async () => {
  vigil = await startVigil();
  browser = await launchBrowser();
  // The panels below need the first self-scrape's samples.
  await firstScrape(vigil.base);
});
after(async () => {
  await browser?.close();
  await vigil?.stop();
});


async function save(dashboard) {
  const r = await fetch(`${vigil.base}/api/dashboards/db`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ dashboard, overwrite: true }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return JSON.parse(text);
}

/** Non-transparent pixels of every drawn canvas on the page. */
async function paintedPixels(page) {
  return page.$$eval('canvas[data-drawn="true"]', (canvases) => canvases.map((c) => {
    const ctx = c.getContext('2d');
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n++;
    return n;
  }));
}

test('the built-in Vigil dashboard paints every panel, first as SVG, then on canvas', async () => {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  const t0 = Date.now();
  const url = `${vigil.base}/d/vigil/vigil?from=now-5m&to=now`;
  const html = await (await fetch(url)).text();
  const resp = await page.goto(url);
  assert.equal(resp.status(), 200);
  const panels = (html.match(/<section [^>]*class="panel"/g) || []).length;
  assert.ok(panels >= 10, `server HTML has ${panels} panels`);
  assert.ok((html.match(/<svg /g) || []).length >= panels, 'each chart panel has a server-drawn SVG frame');
  await hydrated(page);
  await page.waitForFunction((n) => document.querySelectorAll('canvas[data-drawn="true"]').length >= n, panels, { timeout: 20_000 });
  const paintMs = Date.now() - t0;
  const pixels = await paintedPixels(page);
  assert.equal(pixels.length, panels);
  for (const [i, n] of pixels.entries()) assert.ok(n > 500, `canvas ${i} has only ${n} painted pixels`);
  const timing = await page.evaluate(() => performance.getEntriesByType('navigation')[0]?.toJSON());
  console.log(`Vigil dashboard: ${panels} panels painted ${paintMs} ms after navigation start (DOMContentLoaded ${Math.round(timing?.domContentLoadedEventEnd ?? -1)} ms)`);
  await page.screenshot({ path: artifactPath('dashboard-vigil.png') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('the time picker and drag-to-zoom change the URL and the data', async () => {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/d/vigil/vigil`);
  await hydrated(page);
  await page.click('#time-picker summary');
  await page.click('a[data-range="now-15m"]');
  await page.waitForURL(/from=now-15m/);
  await page.waitForFunction(() => document.querySelector('#time-range-label')?.textContent === 'Last 15 minutes');
  // Drag across the middle of the first time series panel's plot.
  const canvas = page.locator('section[data-panel-type="timeseries"] canvas[data-drawn="true"]').first();
  await canvas.waitFor();
  const box = await canvas.boundingBox();
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.4);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.4, { steps: 5 });
  await page.mouse.up();
  await page.waitForURL(/from=\d+&to=\d+/);
  const url = new URL(page.url());
  const from = Number(url.searchParams.get('from'));
  const to = Number(url.searchParams.get('to'));
  assert.ok(to > from && to - from < 15 * 60_000, `zoomed range ${from}..${to}`);
  await page.waitForFunction(() => document.querySelectorAll('canvas[data-drawn="true"]').length > 0);
  await page.screenshot({ path: artifactPath('dashboard-zoomed.png') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('picking a variable value rewrites the URL and the panel queries', async () => {
  await save({
    uid: 'e2e-vars', title: 'E2E variables', version: 0,
    templating: { list: [{ type: 'custom', name: 'job', query: 'vigil,nothing', current: { value: 'vigil' } }] },
    panels: [{ id: 1, type: 'timeseries', title: 'up of $job', gridPos: { x: 0, y: 0, w: 24, h: 8 },
      targets: [{ refId: 'A', expr: 'up{job="$job"}', legendFormat: 'job={{job}}' }] }],
  });
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/d/e2e-vars/e2e-variables?from=now-5m`);
  await hydrated(page);
  assert.equal(await page.textContent('.panel-title'), 'up of vigil');
  await page.waitForSelector('.legend-name', { state: 'attached' });
  assert.equal((await page.textContent('.legend-name')).trim(), 'job=vigil');
  await page.selectOption('select[data-variable="job"]', 'nothing');
  await page.waitForURL(/var-job=nothing/);
  await page.waitForFunction(() => document.querySelector('.panel-title')?.textContent === 'up of nothing');
  assert.equal(await page.locator('.legend-name').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a broken query shows its error on its panel; other panels still draw', async () => {
  await save({
    uid: 'e2e-errors', title: 'E2E errors', version: 0,
    panels: [
      { id: 1, type: 'timeseries', title: 'broken', gridPos: { x: 0, y: 0, w: 12, h: 8 }, targets: [{ refId: 'A', expr: 'sum(rate(up[5m])' }] },
      { id: 2, type: 'timeseries', title: 'fine', gridPos: { x: 12, y: 0, w: 12, h: 8 }, targets: [{ refId: 'A', expr: 'up' }] },
      { id: 3, type: 'piechart', title: 'unsupported', gridPos: { x: 0, y: 8, w: 12, h: 4 } },
    ],
  });
  const page = await browser.context.newPage();
  await page.goto(`${vigil.base}/d/e2e-errors/e2e-errors`);
  await hydrated(page);
  const err = await page.textContent('section[data-panel-id="1"] .panel-error');
  assert.match(err, /^A: .*(unclosed|parenthes|unexpected)/i, err);
  await page.waitForSelector('section[data-panel-id="2"] canvas[data-drawn="true"]');
  assert.equal(await page.textContent('section[data-panel-id="3"] .panel-unsupported'), 'Panel type "piechart" is not supported');
  await page.screenshot({ path: artifactPath('dashboard-errors.png') });
  await page.close();
});

test('hostile dashboard JSON runs no script', async () => {
  const evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
  await save({
    uid: 'e2e-hostile', title: `Hostile ${evil}`, version: 0, tags: [evil],
    templating: { list: [{ type: 'custom', name: 'v', label: evil, query: `a,${evil.replace(/,/g, '')}` }] },
    panels: [
      { id: 1, type: 'text', title: evil, description: evil, gridPos: { x: 0, y: 0, w: 12, h: 8 },
        options: { content: `# Hi\n${evil}\n[link](javascript:window.__pwned=3)` } },
      { id: 2, type: 'timeseries', title: 'legend', gridPos: { x: 12, y: 0, w: 12, h: 8 },
        targets: [{ refId: 'A', expr: 'up', legendFormat: evil }] },
    ],
  });
  const page = await browser.context.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await page.goto(`${vigil.base}/d/e2e-hostile/hostile`);
  await hydrated(page);
  await page.waitForTimeout(500);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(dialogs, []);
  assert.equal(await page.locator('.panel-text img, .panel-text script, .panel-title img, .legend img').count(), 0);
  assert.match(await page.textContent('.panel-text'), /<img src=x onerror=/);
  assert.equal(await page.locator('.panel-text a').count(), 0, 'javascript: links are not links');
  await page.screenshot({ path: artifactPath('dashboard-hostile.png') });
  await page.close();
});

test('the dashboard list searches by title and filters by tag', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${vigil.base}/dashboards`);
  await hydrated(page);
  const titles = await page.$$eval('.dashboard-link', (as) => as.map((a) => a.textContent));
  assert.ok(titles.includes('Vigil') && titles.includes('Node'), titles.join());
  await page.fill('input[name="query"]', 'nod');
  await page.press('input[name="query"]', 'Enter');
  await page.waitForURL(/query=nod/);
  await page.waitForFunction(() => document.querySelectorAll('.dashboard-link').length === 1);
  await page.click('.dashboard-link');
  await page.waitForURL(/\/d\/node\/node/);
  await page.waitForSelector('#dashboard-title');
  await page.close();
});

test('live: a panel updates over the websocket with auto-refresh off, the moment a sample lands', async () => {
  const { remoteWrite } = await import('./remotewrite.js');
  await remoteWrite(vigil.base, [{ labels: { __name__: 'live_probe', job: 'e2e' }, samples: [[Date.now(), 1]] }]);
  await save({
    uid: 'e2e-live', title: 'E2E live', version: 0, time: { from: 'now-5m', to: 'now' },
    panels: [{ id: 1, type: 'timeseries', title: 'probe', gridPos: { x: 0, y: 0, w: 24, h: 8 }, interval: '1s',
      targets: [{ refId: 'A', expr: 'live_probe', legendFormat: 'probe' }] }],
  });
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/d/e2e-live/e2e-live`);
  await hydrated(page);
  await page.waitForSelector('canvas[data-drawn="true"]');
  // Give the websocket a moment to subscribe, then append values and time each one's arrival
  // on the canvas (the legend's Last column follows the drawn data).
  await page.waitForTimeout(1000);
  const latencies = [];
  for (let i = 0; i < 5; i++) {
    const value = 100 + i;
    const sent = Date.now();
    await remoteWrite(vigil.base, [{ labels: { __name__: 'live_probe', job: 'e2e' }, samples: [[sent, value]] }]);
    const handle = await page.waitForFunction((v) => {
      const cells = [...document.querySelectorAll('.legend-row:not(.legend-head) > span:not(.legend-name)')].map((td) => td.textContent.trim());
      if (!cells.includes(String(v))) return null;
      return Number(document.querySelector('canvas[data-drawn="true"]').getAttribute('data-drawn-at'));
    }, value, { timeout: 10_000, polling: 'raf' });
    latencies.push((await handle.jsonValue()) - sent);
    await page.waitForTimeout(1100);
  }
  latencies.sort((a, b) => a - b);
  console.log(`live: append → canvas latency, 1 viewer, ms: ${latencies.join(', ')} (median ${latencies[2]})`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the panel editor shows syntax errors at their position, saves with a message, and the change is kept', async () => {
  await save({
    uid: 'e2e-edit', title: 'E2E edit', version: 0,
    panels: [{ id: 1, type: 'timeseries', title: 'before', gridPos: { x: 0, y: 0, w: 12, h: 8 },
      targets: [{ refId: 'A', expr: 'up' }] }],
  });
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/d/e2e-edit/e2e-edit?editPanel=1`);
  await hydrated(page);
  await page.fill('textarea.promql', 'sum(rate(up[5m])');
  await page.waitForSelector('.syntax-error');
  const syntax = await page.textContent('.syntax-error');
  assert.match(syntax, /^1:4: unclosed left parenthesis/, `the error names a position: ${syntax}`);
  await page.fill('textarea.promql', 'sum(up)');
  await page.waitForFunction(() => !document.querySelector('.syntax-error'));
  await page.fill('#edit-title', 'after');
  await page.fill('#save-message', 'renamed');
  await page.click('#editor-save');
  await page.waitForFunction(() => document.querySelector('#editor-status')?.textContent.startsWith('Saved as version 2'));
  const stored = await (await fetch(`${vigil.base}/api/dashboards/uid/e2e-edit`)).json();
  assert.equal(stored.dashboard.panels[0].title, 'after');
  assert.equal(stored.dashboard.panels[0].targets[0].expr, 'sum(up)');
  await page.goto(`${vigil.base}/d/e2e-edit/e2e-edit`);
  await hydrated(page);
  assert.equal(await page.textContent('section[data-panel-id="1"] .panel-title'), 'after');
  // Opened from the dashboard in the browser, the editor's own part of the wasm loads on the way.
  await page.evaluate(() => { window.sameDocument = true; });
  await page.hover('section[data-panel-id="1"] .panel-header');
  await page.click('section[data-panel-id="1"] a.panel-edit');
  await page.waitForSelector('#panel-editor textarea.promql');
  assert.match(page.url(), /editPanel=1/);
  assert.equal(await page.inputValue('#edit-title'), 'after');
  assert.equal(await page.evaluate(() => window.sameDocument), true, 'opened without loading a new page');
  // A stale editor's save is refused with the conflict explained.
  const stale = await browser.context.newPage();
  await stale.goto(`${vigil.base}/d/e2e-edit/e2e-edit?editPanel=1`);
  await hydrated(stale);
  await save({ ...stored.dashboard, title: 'changed elsewhere' });
  await stale.fill('#edit-title', 'mine');
  await stale.click('#editor-save');
  await stale.waitForFunction(() => /changed by someone else/.test(document.querySelector('#editor-status')?.textContent ?? ''));
  await page.screenshot({ path: artifactPath('panel-editor.png') });
  assert.deepEqual(errors, []);
  await stale.close();
  await page.close();
});

test('rows open and close, moving the panels below them', async () => {
  await save({
    uid: 'e2e-rows', title: 'E2E rows', version: 0,
    panels: [
      { id: 1, type: 'text', title: 'top', gridPos: { x: 0, y: 0, w: 24, h: 3 }, options: { content: 'top' } },
      { id: 2, type: 'row', title: 'Closed row', collapsed: true, gridPos: { x: 0, y: 3, w: 24, h: 1 },
        panels: [{ id: 3, type: 'text', title: 'inside closed', gridPos: { x: 0, y: 4, w: 24, h: 4 }, options: { content: 'hidden' } }] },
      { id: 4, type: 'row', title: 'Open row', collapsed: false, gridPos: { x: 0, y: 4, w: 24, h: 1 } },
      { id: 5, type: 'text', title: 'inside open', gridPos: { x: 0, y: 5, w: 24, h: 4 }, options: { content: 'shown' } },
    ],
  });
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/d/e2e-rows/e2e-rows`);
  await hydrated(page);
  const ids = () => page.$$eval('section.panel', (ps) => ps.map((p) => p.dataset.panelId));
  assert.deepEqual(await ids(), ['1', '5']);
  await page.click('button[data-row-id="2"]');
  await page.waitForFunction(() => document.querySelectorAll('section.panel').length === 3);
  assert.deepEqual((await ids()).sort(), ['1', '3', '5']);
  await page.click('button[data-row-id="4"]');
  await page.waitForFunction(() => document.querySelectorAll('section.panel').length === 2);
  assert.deepEqual((await ids()).sort(), ['1', '3']);
  assert.deepEqual(errors, []);
  await page.close();
});
