// The UI in a real browser: it hydrates, the theme toggle works and is remembered, and every
// page renders without script errors. Screenshots go to end2end/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startVigil, launchBrowser, artifactPath, watchErrors, firstScrape } from './harness.js';

let vigil;
let browser;
before(async () => {
  vigil = await startVigil();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await vigil?.stop();
});

async function hydrated(page) {
  await page.waitForSelector('html[data-hydrated="true"]', { timeout: 20_000 });
}

test('the page hydrates and the theme toggle changes state on click', async () => {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/`);
  await hydrated(page);
  const html = page.locator('html');
  const toggle = page.locator('button.theme-toggle');
  const before = await html.getAttribute('data-theme');
  await toggle.click();
  const flipped = before === 'dark' ? 'light' : 'dark';
  await page.waitForFunction((t) => document.documentElement.dataset.theme === t, flipped);
  assert.equal(await toggle.getAttribute('aria-pressed'), flipped === 'dark' ? 'true' : 'false');
  assert.equal(await page.evaluate(() => localStorage.getItem('vigil.theme')), flipped);
  await page.screenshot({ path: artifactPath(`home-${flipped}.png`) });

  // The choice survives a reload and is applied before hydration (by the boot script).
  await page.reload({ waitUntil: 'domcontentloaded' });
  assert.equal(await html.getAttribute('data-theme'), flipped);
  await hydrated(page);
  assert.equal(await toggle.getAttribute('aria-pressed'), flipped === 'dark' ? 'true' : 'false');

  // And flips back.
  await toggle.click();
  await page.waitForFunction((t) => document.documentElement.dataset.theme === t, before);
  assert.deepEqual(errors, []);
  await page.close();
});

test('client-side navigation reaches every page without errors', async () => {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/`);
  await hydrated(page);
  for (const [label, heading] of [['Explore', 'Explore'], ['Targets', 'Targets'], ['Status', 'Status'], ['Dashboards', 'Dashboards']]) {
    await page.click(`nav >> text=${label}`);
    await page.waitForFunction((h) => document.querySelector('main h1')?.textContent === h, heading);
    assert.equal(await page.locator('nav a[aria-current="page"]').textContent(), label);
    if (label === 'Status') await page.waitForSelector('#runtime-info');
    if (label === 'Targets') await page.waitForSelector('#targets');
    await page.screenshot({ path: artifactPath(`${label.toLowerCase()}.png`), fullPage: true });
  }
  // Navigation happened in the client: the document was never reloaded.
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test('Explore runs a PromQL query after hydration and shows errors by name', async () => {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/explore`);
  await hydrated(page);
  await page.fill('#expr', '1 + 1');
  await page.click('button:has-text("Run query")');
  await page.waitForSelector('#query-table td.value');
  assert.equal((await page.textContent('#query-table td.value')).trim(), '2');
  // The query ran in place: no navigation happened.
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), 1);
  await page.screenshot({ path: artifactPath('explore-result.png') });

  await page.fill('#expr', 'vigil_build_info or vector(1)');
  await page.click('button:has-text("Run query")');
  await page.waitForFunction(() => document.querySelectorAll('#query-table tbody tr').length >= 1);

  await page.fill('#expr', 'sum(');
  await page.click('button:has-text("Run query")');
  await page.waitForSelector('#query-error');
  // Syntax errors name their line and column.
  assert.match(await page.textContent('#query-error'), /^1:4: /);
  assert.match(page.url(), /expr=sum%28/);

  // The Graph tab draws a range query; suggestions complete metric names (once scraped).
  await firstScrape(vigil.base);
  await page.fill('#expr', 'vigil_build_');
  await page.waitForSelector('button.suggestion:has-text("vigil_build_info")');
  await page.click('button.suggestion:has-text("vigil_build_info")');
  assert.equal(await page.inputValue('#expr'), 'vigil_build_info');
  await page.click('#tab-graph');
  await page.waitForURL(/tab=graph/);
  await page.click('button:has-text("Run query")');
  await page.waitForSelector('#query-graph canvas[data-drawn="true"]');
  await page.screenshot({ path: artifactPath('explore-graph.png') });
  // A failed query is an answer, not a script error.
  assert.deepEqual(errors.filter((e) => !e.includes('500')), []);
  await page.close();
});

test('Status shows storage statistics and Targets filters by health', async () => {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${vigil.base}/status`);
  await hydrated(page);
  await page.waitForSelector('#tsdb-stats');
  const deadline = Date.now() + 30_000;
  // The first self-scrape fills the top-metrics table.
  while ((await page.locator('#top-metrics tbody tr').count()) === 0) {
    assert.ok(Date.now() < deadline, 'no metrics on the Status page after 30 s');
    await page.waitForTimeout(1000);
    await page.reload();
    await hydrated(page);
  }
  await page.goto(`${vigil.base}/targets`);
  await hydrated(page);
  await page.click('#health-filter a[data-health="down"]');
  await page.waitForURL(/health=down/);
  await page.waitForFunction(() => document.querySelectorAll('#targets tbody tr').length === 0);
  await page.click('#health-filter a[data-health="all"]');
  await page.waitForFunction(() => document.querySelectorAll('#targets tbody tr').length === 1);
  assert.deepEqual(errors, []);
  await page.close();
});
