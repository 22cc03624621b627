// Where the heavy dashboard's page time goes on the server: starts Vigil (the binary in
// VIGIL_BIN, else target/debug/vigil; LEPTOS_SITE_ROOT as usual), writes the perf test's data
// (50 series x 7 days of 5-minute samples, 20 panels of `perf_metric * i`) and fetches
// /d/perf/perf with each content encoding, printing time to first byte and to the end, the
// body's bytes and how many of them are the SVG first frames and the hydration data.
// Usage (from the repository root): node bench/dashboard/html.mjs
import { startVigil } from '../../end2end/tests/harness.js';
import { remoteWrite } from '../../end2end/tests/remotewrite.js';

const SERIES = 50;
const PANELS = 20;
const DAYS = 7;
const STEP_MS = 300_000;

const vigil = await startVigil();
try {
  const end = Date.now();
  const times = [];
  for (let t = end - DAYS * 86_400_000; t <= end; t += STEP_MS) times.push(t);
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
  await fetch(`${vigil.base}/api/dashboards/db`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ dashboard: { uid: 'perf', title: 'Perf', time: { from: 'now-7d', to: 'now' }, panels } }),
  });
  for (const enc of ['identity', 'br', 'gzip', 'identity', 'br', 'gzip']) {
    const t0 = performance.now();
    const r = await fetch(`${vigil.base}/d/perf/perf`, { headers: { 'accept-encoding': enc } });
    const reader = r.body.getReader();
    let first = null;
    const chunks = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      first ??= performance.now() - t0;
      chunks.push(value);
    }
    const html = Buffer.concat(chunks).toString();
    const sum = (re) => [...html.matchAll(re)].reduce((a, m) => a + m[0].length, 0);
    console.log(`${enc.padEnd(8)} first byte ${first.toFixed(0)} ms, end ${(performance.now() - t0).toFixed(0)} ms; `
      + `${html.length} bytes: SVG ${sum(/<svg[\s\S]*?<\/svg>/g)}, scripts ${sum(/<script[\s\S]*?<\/script>/g)}`);
  }
} finally {
  await vigil.stop();
}
