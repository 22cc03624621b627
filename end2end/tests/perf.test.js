// Measures (does not assert) how long a heavy dashboard takes to paint in Chromium: 20 panels,
// each over 7 days of 50 series, from navigation start to every panel on screen (the server's
// SVG frame or the canvas, whichever came first) and to every canvas drawn (after hydration and
// the fetch of the points). BENCHMARKS.md quotes the numbers this prints; the machine is shared,
// so they are measurements, not pass/fail lines.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startVigil, launchBrowser, watchErrors } from './harness.js';
import { remoteWrite } from './remotewrite.js';

const SERIES = 50;
const PANELS = 20;
const DAYS = 7;
const STEP_MS = 5 * 60_000;

let vigil;
let browser;
before(async () => {
  vigil = await startVigil();
  browser = await launchBrowser();
  const end = Date.now();
  const start = end - DAYS * 86_400_000;
  const times = [];
  for (let t = start; t <= end; t += STEP_MS) times.push(t);
  // One request per 10 series, in time order per series.
  for (let s0 = 0; s0 < SERIES; s0 += 10) {
    const series = [];
    for (let s = s0; s < s0 + 10; s++) {
      series.push({
        labels: { __name__: 'perf_metric', instance: `host-${s}`, job: 'perf' },
        samples: times.map((t, i) => [t, 100 + s * 5 + 20 * Math.sin(i / 30 + s)]),
      });
    }
    await remoteWrite(vigil.base, series);
  }
  const panels = [];
  for (let i = 0; i < PANELS; i++) {
    panels.push({ id: i + 1, type: 'timeseries', title: `Panel ${i + 1}`,
      gridPos: { x: (i % 2) * 12, y: Math.floor(i / 2) * 8, w: 12, h: 8 },
      targets: [{ refId: 'A', expr: `perf_metric * ${i + 1}`, legendFormat: '{{instance}}' }] });
  }
  const r = await fetch(`${vigil.base}/api/dashboards/db`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ dashboard: { uid: 'perf', title: 'Perf', time: { from: 'now-7d', to: 'now' }, panels } }),
  });
  assert.equal(r.status, 200);
});
after(async () => {
  await browser?.close();
  await vigil?.stop();
});

test('20 panels × 50 series × 7 days: navigation to every panel painted', async () => {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1600, height: 1000 });
  const errors = watchErrors(page);
  // Every panel shows its data once it holds the server's SVG frame or its drawn canvas: the
  // frame after the one in which that became true is when all of them are on screen.
  await page.addInitScript((want) => {
    const probe = () => {
      const panels = [...document.querySelectorAll('section.panel')];
      const shown = panels.filter((p) => p.querySelector('.svg-frame svg, canvas[data-drawn="true"]'));
      if (panels.length >= want && shown.length === panels.length) {
        requestAnimationFrame(() => { window.__vigilAllShownAt = performance.now(); });
      } else {
        requestAnimationFrame(probe);
      }
    };
    requestAnimationFrame(probe);
  }, PANELS);
  const runs = [];
  for (let run = 0; run < 3; run++) {
    await page.goto(`${vigil.base}/d/perf/perf`);
    await page.waitForFunction((n) => document.querySelectorAll('canvas[data-drawn="true"]').length >= n, PANELS, { timeout: 60_000, polling: 'raf' });
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const drawn = Math.max(...[...document.querySelectorAll('canvas[data-drawn="true"]')].map((c) => Number(c.dataset.drawnAt)));
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      return {
        shownMs: Math.round(window.__vigilAllShownAt ?? NaN),
        fcpMs: Math.round(fcp ? fcp.startTime : NaN),
        paintedMs: Math.round(drawn - performance.timeOrigin),
        htmlBytes: nav.transferSize,
        bodyBytes: nav.decodedBodySize,
        responseEndMs: Math.round(nav.responseEnd),
        domContentLoadedMs: Math.round(nav.domContentLoadedEventEnd),
      };
    });
    runs.push(t);
  }
  const series = await page.evaluate(() => [...document.querySelectorAll('section.panel')].map((p) => Number(p.dataset.series)));
  assert.deepEqual(series, Array(PANELS).fill(SERIES));
  const median = [...runs].sort((a, b) => a.paintedMs - b.paintedMs)[1];
  const shown = runs.map((r) => r.shownMs).sort((a, b) => a - b);
  console.log(`perf: ${PANELS} panels × ${SERIES} series × ${DAYS} d: every panel on screen (server frame or canvas) ${shown[1]} ms after navigation start (median of 3: ${runs.map((r) => r.shownMs).join(', ')}; first contentful paint ${runs.map((r) => r.fcpMs).join(', ')} ms)`);
  console.log(`perf: ${PANELS} panels × ${SERIES} series × ${DAYS} d: every canvas drawn ${median.paintedMs} ms after navigation start (median of 3: ${runs.map((r) => r.paintedMs).join(', ')}); HTML ${median.bodyBytes} bytes (${median.htmlBytes} on the wire), response end ${median.responseEndMs} ms, DOMContentLoaded ${median.domContentLoadedMs} ms`);
  assert.deepEqual(errors, []);
  await page.close();
});
