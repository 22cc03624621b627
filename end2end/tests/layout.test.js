// The dashboard's edit mode in a real browser: on a copy of the built-in Vigil dashboard, a panel
// is dragged by its header to another place and another is resized by its corner, with real
// mouse events; the layout snaps to the 24-column grid, pushes what it lands on down, is saved
// with a message (a new version) and is what the API and the page show after a reload; the
// arrow keys move a focused panel and Shift+arrows resize it. Panels
// show a spinner while their queries run again, and a broken query's error text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startVigil, launchBrowser, artifactPath, watchErrors, hydrated, firstScrape, textPanel } from './harness.js';

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

async function stored(uid) {
  const r = await fetch(`${vigil.base}/api/dashboards/uid/${uid}`);
  assert.equal(r.status, 200);
  return (await r.json()).dashboard;
}

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

const pos = (d, id) => {
  const { x, y, w, h } = d.panels.find((p) => p.id === id).gridPos;
  return { x, y, w, h };
};

/** The grid's geometry on screen: its box and one column's and one row's pitch (gap included). */
async function grid(page) {
  return page.$eval('.dash-grid', (g) => {
    const r = g.getBoundingClientRect();
    const gap = parseFloat(getComputedStyle(g).columnGap);
    const row = parseFloat(getComputedStyle(g).gridAutoRows);
    return { left: r.left, top: r.top, gap, col: (r.width + gap) / 24, row: row + gap };
  });
}

/** Each panel's box on screen, turned back into grid cells. */
async function onScreen(page) {
  const g = await grid(page);
  const boxes = await page.$$eval('section.panel', (ps) => ps.map((p) => {
    const r = p.getBoundingClientRect();
    return { id: Number(p.dataset.panelId), left: r.left, top: r.top, width: r.width, height: r.height };
  }));
  return Object.fromEntries(boxes.map((b) => [b.id, {
    x: Math.round((b.left - g.left) / g.col),
    y: Math.round((b.top - g.top) / g.row),
    w: Math.round((b.width + g.gap) / g.col),
    h: Math.round((b.height + g.gap) / g.row),
  }]));
}

/** Presses the mouse at (x, y), moves it by (dx, dy) in steps, and releases it. */
async function drag(page, x, y, dx, dy) {
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + dx / 2, y + dy / 2, { steps: 4 });
  await page.mouse.move(x + dx, y + dy, { steps: 4 });
  await page.mouse.up();
}

test('panels are moved and resized in edit mode, saved, and kept after a reload', async () => {
  // A copy of the built-in (read-only) Vigil dashboard, as "Save as" would make.
  const copy = { ...(await stored('vigil')), uid: 'e2e-layout', title: 'E2E layout', version: 0 };
  delete copy.id;
  await save(copy);
  const before = await stored('e2e-layout');
  // Layout of the copy: three stats (w 8, h 4) on top, then two columns of graphs (w 12, h 8).
  assert.deepEqual(pos(before, 1), { x: 0, y: 0, w: 8, h: 4 });
  assert.deepEqual(pos(before, 3), { x: 16, y: 0, w: 8, h: 4 });
  assert.deepEqual(pos(before, 4), { x: 0, y: 4, w: 12, h: 8 });

  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  await page.goto(`${vigil.base}/d/e2e-layout/e2e-layout?from=now-15m&to=now`);
  await hydrated(page);
  // View mode has no drag handles; edit mode adds them (and hides the panel links).
  assert.equal(await page.locator('.resize-handle').count(), 0);
  await page.click('#dashboard-edit');
  await page.waitForSelector('#layout-bar');
  assert.equal(await page.locator('.resize-handle').count(), before.panels.length);
  assert.equal(await page.locator('.dash-grid .panel-link').count(), 0);

  // Move panel 1 by its title 16 columns right, onto panel 3, which goes below it.
  const g = await grid(page);
  const header = await page.locator('section[data-panel-id="1"] .panel-header').boundingBox();
  await drag(page, header.x + 40, header.y + header.height / 2, 16 * g.col, 0);
  await page.waitForFunction(() => document.querySelector('#layout-dirty')?.textContent === 'Unsaved changes');
  let screen = await onScreen(page);
  assert.deepEqual(screen[1], { x: 16, y: 0, w: 8, h: 4 });
  assert.deepEqual(screen[3], { x: 16, y: 4, w: 8, h: 4 });

  // Resize panel 4 by its corner: 4 columns narrower, 2 rows taller. Narrower, it floats up
  // into the place panel 1 left; panel 6 below it stays right under it.
  const corner = await page.locator('section[data-panel-id="4"] .resize-handle').boundingBox();
  await drag(page, corner.x + corner.width / 2, corner.y + corner.height / 2, -4 * g.col, 2 * g.row);
  screen = await onScreen(page);
  assert.deepEqual(screen[4], { x: 0, y: 0, w: 8, h: 10 });
  assert.deepEqual(screen[6], { x: 0, y: 10, w: 12, h: 8 });
  // The resized graph is drawn again at its new size, not stretched.
  await page.waitForFunction(() => {
    const c = document.querySelector('section[data-panel-id="4"] canvas[data-drawn="true"]');
    const r = devicePixelRatio;
    return c && Math.abs(c.width - c.clientWidth * r) <= 1 && Math.abs(c.height - c.clientHeight * r) <= 1;
  }, null, { timeout: 5000 });
  await page.screenshot({ path: artifactPath('layout-editing.png') });

  // Save with a message: a new version, and the stored gridPos is what the page showed.
  await page.fill('#layout-message', 'moved a stat, resized the ingest graph');
  await page.click('#layout-save');
  await page.waitForFunction(() => document.querySelector('#layout-status')?.textContent === 'Saved as version 2.');
  assert.equal(await page.textContent('#layout-dirty'), '');
  const after = await stored('e2e-layout');
  assert.equal(after.version, 2);
  for (const p of after.panels) assert.deepEqual(pos(after, p.id), screen[p.id], `panel ${p.id}`);
  // Nothing else of the dashboard changed (the panels are listed top to bottom now).
  const byId = (d) => Object.fromEntries(d.panels.map(({ gridPos, ...rest }) => [rest.id, rest]));
  assert.deepEqual(byId(after), byId(before));
  const order = after.panels.map((p) => p.gridPos.y * 24 + p.gridPos.x);
  assert.deepEqual(order, [...order].sort((a, b) => a - b), 'panels listed top to bottom, left to right');
  // Untouched panels were only pushed down or floated up, never moved sideways or resized.
  for (const p of before.panels.filter((p) => p.id !== 1 && p.id !== 4)) {
    const [a, b] = [pos(before, p.id), pos(after, p.id)];
    assert.deepEqual([b.x, b.w, b.h], [a.x, a.w, a.h], `panel ${p.id}`);
  }
  // No two panels overlap.
  const rects = after.panels.map((p) => p.gridPos);
  for (const [i, a] of rects.entries()) {
    for (const b of rects.slice(i + 1)) {
      assert.ok(a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y, `${JSON.stringify(a)} overlaps ${JSON.stringify(b)}`);
    }
  }

  await page.click('#layout-done');
  await page.waitForSelector('#layout-bar', { state: 'detached' });
  assert.deepEqual(dialogs, [], 'no unsaved changes: leaving edit mode does not ask');
  await page.reload();
  await hydrated(page);
  screen = await onScreen(page);
  for (const p of after.panels) assert.deepEqual(screen[p.id], pos(after, p.id), `panel ${p.id} after reload`);
  await page.screenshot({ path: artifactPath('layout-saved.png') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('leaving edit mode with unsaved changes asks first, and discarding restores the layout', async () => {
  const page = await browser.context.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  await page.goto(`${vigil.base}/d/e2e-layout/e2e-layout`);
  await hydrated(page);
  const saved = await onScreen(page);
  await page.click('#dashboard-edit');
  const g = await grid(page);
  const header = await page.locator('section[data-panel-id="2"] .panel-header').boundingBox();
  await drag(page, header.x + 40, header.y + header.height / 2, -8 * g.col, 0);
  await page.waitForFunction(() => document.querySelector('#layout-dirty')?.textContent === 'Unsaved changes');
  assert.deepEqual((await onScreen(page))[2], { x: 0, y: 0, w: 8, h: 4 });
  await page.click('#layout-done');
  await page.waitForSelector('#layout-bar', { state: 'detached' });
  assert.equal(dialogs.length, 1);
  assert.match(dialogs[0], /unsaved layout changes/);
  assert.deepEqual(await onScreen(page), saved);
  assert.equal((await stored('e2e-layout')).version, 2);
  await page.close();
});

test('in edit mode a focused panel moves with the arrow keys and resizes with Shift', async () => {
  const page = await browser.context.newPage();
  page.on('dialog', (d) => d.accept());
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/d/e2e-layout/e2e-layout`);
  await hydrated(page);
  const saved = await onScreen(page);
  const header = 'section[data-panel-id="2"] .panel-header';
  // Outside edit mode the header is not a handle: keys do nothing.
  assert.equal(await page.getAttribute(header, 'tabindex'), null);
  await page.click('#dashboard-edit');
  await page.waitForSelector('#layout-bar');
  await page.focus(header);
  const start = saved[2];
  const dx = start.x > 0 ? -1 : 1;
  await page.keyboard.press(dx < 0 ? 'ArrowLeft' : 'ArrowRight');
  await page.waitForFunction(() => document.querySelector('#layout-dirty')?.textContent === 'Unsaved changes');
  const moved = (await onScreen(page))[2];
  assert.deepEqual({ x: moved.x, w: moved.w, h: moved.h }, { x: start.x + dx, w: start.w, h: start.h });
  const height = (await page.locator('section[data-panel-id="2"]').boundingBox()).height;
  await page.keyboard.press('Shift+ArrowDown');
  await page.waitForFunction((h) => {
    const p = document.querySelector('section[data-panel-id="2"]');
    return p && p.getBoundingClientRect().height > h;
  }, height);
  assert.deepEqual((await onScreen(page))[2].h, start.h + 1);
  // The page did not scroll with the arrow keys: they were taken by the panel.
  assert.equal(await page.evaluate(() => window.scrollY), 0);
  await page.click('#layout-done');
  await page.waitForSelector('#layout-bar', { state: 'detached' });
  assert.deepEqual(await onScreen(page), saved);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a row is moved by its title like a panel, and the panels it passes join it', async () => {
  await save({
    uid: 'e2e-layout-rows', title: 'E2E layout rows', version: 0,
    panels: [
      { id: 1, type: 'text', title: 'above', gridPos: { x: 0, y: 0, w: 24, h: 4 }, options: { content: 'above' } },
      { id: 2, type: 'row', title: 'Row', collapsed: false, gridPos: { x: 0, y: 4, w: 24, h: 1 } },
      { id: 3, type: 'text', title: 'inside', gridPos: { x: 0, y: 5, w: 24, h: 4 }, options: { content: 'inside' } },
    ],
  });
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/d/e2e-layout-rows/e2e-layout-rows`);
  await hydrated(page);
  await page.click('#dashboard-edit');
  const g = await grid(page);
  const row = await page.locator('.dash-row').boundingBox();
  await drag(page, row.x + row.width / 2, row.y + row.height / 2, 0, -4 * g.row);
  await page.waitForFunction(() => document.querySelector('#layout-dirty')?.textContent === 'Unsaved changes');
  await page.click('#layout-save');
  await page.waitForFunction(() => document.querySelector('#layout-status')?.textContent === 'Saved as version 2.');
  const d = await stored('e2e-layout-rows');
  assert.deepEqual(d.panels.map((p) => [p.id, p.gridPos.y]), [[2, 0], [1, 1], [3, 5]]);
  // Closing the row now hides both panels.
  await page.click('#layout-done');
  await page.click('button[data-row-id="2"]');
  await page.waitForFunction(() => document.querySelectorAll('section.panel').length === 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('in edit mode a closed row opens, takes a panel moved under it, and closes over it; saved so', async () => {
  await save({
    uid: 'e2e-layout-closed', title: 'E2E layout closed row', version: 0,
    panels: [
      textPanel(1, 'outside'),
      { id: 2, type: 'row', title: 'Closed', collapsed: true, gridPos: { x: 0, y: 4, w: 24, h: 1 },
        panels: [textPanel(3, 'inside', { y: 5 })] },
    ],
  });
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/d/e2e-layout-closed/e2e-layout-closed`);
  await hydrated(page);
  await page.click('#dashboard-edit');
  await page.waitForSelector('#layout-bar');
  // Open the row: its panel comes out under it, and the change is unsaved.
  await page.click('button[data-row-id="2"]');
  await page.waitForSelector('section[data-panel-id="3"]');
  assert.equal(await page.getAttribute('button[data-row-id="2"]', 'aria-expanded'), 'true');
  await page.waitForFunction(() => document.querySelector('#layout-dirty')?.textContent === 'Unsaved changes');
  // One step down puts the top panel under the row's title: it now belongs to the row.
  await page.focus('section[data-panel-id="1"] .panel-header');
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction(() => {
    const row = document.querySelector('.dash-row').getBoundingClientRect();
    const panel = document.querySelector('section[data-panel-id="1"]').getBoundingClientRect();
    return panel.top > row.top;
  });
  // Closed again, the row holds both panels.
  await page.click('button[data-row-id="2"]');
  await page.waitForFunction(() => document.querySelectorAll('section.panel').length === 0);
  await page.click('#layout-save');
  await page.waitForFunction(() => document.querySelector('#layout-status')?.textContent === 'Saved as version 2.');
  const d = await stored('e2e-layout-closed');
  assert.deepEqual(d.panels.map((p) => p.id), [2]);
  assert.equal(d.panels[0].collapsed, true);
  assert.deepEqual(d.panels[0].panels.map((p) => [p.id, p.gridPos.y]), [[1, 1], [3, 5]]);
  // Out of edit mode, a viewer opens the row and sees both.
  await page.click('#layout-done');
  await page.waitForSelector('#layout-bar', { state: 'detached' });
  await page.click('button[data-row-id="2"]');
  await page.waitForFunction(() => document.querySelectorAll('section.panel').length === 2);
  // A row opened in edit mode and then discarded is closed again, as stored.
  await page.reload();
  await hydrated(page);
  page.on('dialog', (dialog) => dialog.accept());
  await page.click('#dashboard-edit');
  await page.click('button[data-row-id="2"]');
  await page.waitForFunction(() => document.querySelectorAll('section.panel').length === 2);
  await page.click('#layout-done');
  await page.waitForSelector('#layout-bar', { state: 'detached' });
  await page.waitForFunction(() => document.querySelectorAll('section.panel').length === 0);
  assert.equal(await page.getAttribute('button[data-row-id="2"]', 'aria-expanded'), 'false');
  assert.equal((await stored('e2e-layout-closed')).version, 2);
  assert.deepEqual(errors, []);
  await page.close();
});

test('panels show a spinner while their queries run (first visit and reloads), and a broken query its error', async () => {
  await save({
    uid: 'e2e-states', title: 'E2E states', version: 0,
    panels: [
      { id: 1, type: 'timeseries', title: 'broken', gridPos: { x: 0, y: 0, w: 12, h: 8 }, targets: [{ refId: 'A', expr: 'sum(rate(up[5m])' }] },
      { id: 2, type: 'timeseries', title: 'fine', gridPos: { x: 12, y: 0, w: 12, h: 8 }, targets: [{ refId: 'A', expr: 'up' }] },
    ],
  });
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  const layoutRequests = [];
  page.on('request', (r) => { if (r.url().includes('/api/load_layout')) layoutRequests.push(r.url()); });
  await page.goto(`${vigil.base}/d/e2e-states/e2e-states`);
  await hydrated(page);
  await page.waitForSelector('section[data-panel-id="2"] canvas[data-drawn="true"]');
  // The server rendered this visit whole: the loading skeleton asks for nothing.
  assert.deepEqual(layoutRequests, []);
  const err = await page.textContent('section[data-panel-id="1"] .panel-error');
  assert.match(err, /^A: .*(unclosed|parenthes|unexpected)/i, err);
  assert.ok(await page.$eval('section[data-panel-id="1"]', (s) => s.classList.contains('has-error')));
  await page.waitForSelector('section[data-panel-id="2"] canvas[data-drawn="true"]');
  assert.equal(await page.locator('.panel-loading').count(), 0);
  // Hold the dashboard's next answer back so the loading state can be seen.
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route('**/api/load_dashboard*', async (route) => { await held; await route.continue(); });
  await page.click('#refresh-now');
  await page.waitForFunction(() => document.querySelectorAll('section.panel .panel-header .panel-loading').length === 2);
  assert.equal(await page.getAttribute('.dashboard-page', 'aria-busy'), 'true');
  await page.screenshot({ path: artifactPath('panel-states-loading.png') });
  release();
  await page.waitForFunction(() => document.querySelectorAll('.panel-loading').length === 0);
  assert.match(await page.textContent('section[data-panel-id="1"] .panel-error'), /^A: /);
  await page.screenshot({ path: artifactPath('panel-states.png') });

  // A first visit from another page of the app: the panels are laid out with their spinners
  // before their data arrives.
  let releaseFirst;
  const heldFirst = new Promise((r) => { releaseFirst = r; });
  await page.unroute('**/api/load_dashboard*');
  await page.route('**/api/load_dashboard*', async (route) => { await heldFirst; await route.continue(); });
  await page.goto(`${vigil.base}/dashboards?query=E2E%20states`);
  await hydrated(page);
  await page.click('.dashboard-link');
  await page.waitForSelector('#dashboard-skeleton');
  assert.equal(layoutRequests.length, 1, 'a visit from another page fetches the layout');
  await page.waitForFunction(() => document.querySelectorAll('section.panel .panel-loading').length === 2);
  assert.deepEqual(await page.$$eval('section.panel .panel-title', (ts) => ts.map((t) => t.textContent)), ['broken', 'fine']);
  await page.screenshot({ path: artifactPath('panel-states-first-load.png') });
  releaseFirst();
  await page.waitForSelector('section[data-panel-id="1"] .panel-error');
  await page.waitForSelector('section[data-panel-id="2"] canvas[data-drawn="true"]');
  assert.equal(await page.locator('#dashboard-skeleton, .panel-loading').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});
