// The container-monitoring scenario end to end: `vigil demo` brings up image-gallery, iotd and
// three access-log replicas; the "Image gallery" dashboard shows data on every panel within 30 s,
// the access-log panel shows three instances, and stopping one replica takes it to two.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startVigil, launchBrowser, artifactPath, watchErrors, root } from './harness.js';

let vigil;
let browser;
before(async () => {
  vigil = await startVigil(['demo']);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await vigil?.stop();
});

async function panelStats(page) {
  return page.$$eval('section.panel', (panels) => panels.map((p) => ({
    id: p.dataset.panelId,
    type: p.dataset.panelType,
    title: p.querySelector('.panel-title')?.textContent,
    series: Number(p.dataset.series),
    current: Number(p.dataset.currentSeries),
    drawn: !!p.querySelector('canvas[data-drawn="true"]'),
  })));
}

test('every Image gallery panel shows data within 30 s, and a stopped replica leaves the panel', async () => {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  const t0 = Date.now();
  let stats = [];
  for (;;) {
    await page.goto(`${vigil.base}/d/image-gallery`);
    await page.waitForSelector('html[data-hydrated="true"]', { timeout: 20_000 });
    await page.waitForFunction(() => [...document.querySelectorAll('section.panel')].every((p) => p.querySelector('canvas[data-drawn="true"]')));
    stats = await panelStats(page);
    // Every panel has data, and the three replicas have each been scraped often enough for a rate.
    const accessNow = stats.find((s) => s.title === 'Access-log lines per instance');
    if (stats.length && stats.every((s) => s.series > 0) && accessNow?.current === 3) break;
    assert.ok(Date.now() - t0 < 30_000, `not all panels have data after 30 s: ${JSON.stringify(stats)}`);
    await page.waitForTimeout(2000);
  }
  console.log(`demo: all ${stats.length} panels had data ${Date.now() - t0} ms after start of the test`);
  const access = stats.find((s) => s.title === 'Access-log lines per instance');
  assert.equal(access.current, 3, JSON.stringify(access));
  await page.screenshot({ path: artifactPath('demo-image-gallery.png'), fullPage: true });
  // The README shows this picture; `make test` refreshes it.
  await page.screenshot({ path: join(root, 'end2end', 'screenshots', 'image-gallery.png'), fullPage: true });

  // Stop one access-log replica through its control endpoint.
  const sd = JSON.parse(readFileSync(join(vigil.dataDir, 'data', 'demo', 'access-log.json'), 'utf8'));
  const target = sd.flatMap((g) => g.targets)[0];
  const stopped = await fetch(`http://${target}/-/stop`, { method: 'POST' });
  assert.ok(stopped.ok, `stopping ${target}: ${stopped.status}`);
  const tStop = Date.now();
  // The target is down at the next scrape (5 s); the per-instance rate line ends once its
  // $__rate_interval window (20 s) no longer holds two of the replica's samples, as in Prometheus.
  await page.waitForFunction(() => {
    const p = [...document.querySelectorAll('section.panel')].find((s) => s.querySelector('.panel-title')?.textContent === 'Access-log lines per instance');
    return p && p.dataset.currentSeries === '2';
  }, null, { timeout: 60_000 });
  console.log(`demo: the stopped replica left the access-log panel ${Date.now() - tStop} ms after it stopped`);
  const up = await (await fetch(`${vigil.base}/api/v1/query?query=sum(up{job="access-log"})`)).json();
  assert.equal(up.data.result[0].value[1], '2');
  await page.screenshot({ path: artifactPath('demo-replica-stopped.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});
