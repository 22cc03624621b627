// Live-stream latency with many viewers: N websocket clients (loopback, bounded in count and
// time) subscribe to one dashboard on a running Vigil; samples are then remote-written one at a
// time and each client's delay from the write to the push carrying the value is recorded.
// Usage: node --experimental-websocket bench/live/viewers.mjs http://127.0.0.1:9090 [viewers=200] [samples=10]
import { remoteWrite } from '../../end2end/tests/remotewrite.js';

const base = process.argv[2] ?? 'http://127.0.0.1:9090';
const viewers = Math.min(Number(process.argv[3] ?? 200), 1000);
const samples = Math.min(Number(process.argv[4] ?? 10), 100);
const wsUrl = base.replace(/^http/, 'ws') + '/api/live/ws';

await remoteWrite(base, [{ labels: { __name__: 'live_bench', job: 'bench' }, samples: [[Date.now(), 0]] }]);
const dash = {
  uid: 'live-bench', title: 'Live bench', time: { from: 'now-5m', to: 'now' },
  panels: [{ id: 1, type: 'timeseries', title: 'probe', interval: '1s', gridPos: { x: 0, y: 0, w: 24, h: 8 },
    targets: [{ refId: 'A', expr: 'live_bench', legendFormat: 'probe' }] }],
};
const saved = await fetch(`${base}/api/dashboards/db`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ dashboard: dash, overwrite: true }),
});
if (!saved.ok) throw new Error(`saving the dashboard: ${saved.status} ${await saved.text()}`);

const waiting = new Map(); // value → { sent, got: [] }
const clients = await Promise.all(Array.from({ length: viewers }, () => new Promise((ok, fail) => {
  const ws = new WebSocket(wsUrl);
  const timer = setTimeout(() => fail(new Error('websocket did not subscribe within 10 s')), 10_000);
  ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', uid: 'live-bench', search: '', since: Date.now() }));
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === 'subscribed') { clearTimeout(timer); ok(ws); return; }
    if (msg.type !== 'points') return;
    const now = Date.now();
    for (const p of msg.panels) for (const s of p.series) for (const [, v] of s.points) {
      const w = waiting.get(v);
      if (w && !w.seen.has(ws)) { w.seen.add(ws); w.got.push(now - w.sent); }
    }
  };
  ws.onerror = () => fail(new Error('websocket error'));
})));

const all = [];
for (let i = 0; i < samples; i++) {
  const value = 1000 + i;
  const w = { sent: Date.now(), got: [], seen: new Set() };
  waiting.set(value, w);
  await remoteWrite(base, [{ labels: { __name__: 'live_bench', job: 'bench' }, samples: [[w.sent, value]] }]);
  const deadline = Date.now() + 5000;
  while (w.got.length < viewers && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  all.push(...w.got);
  if (w.got.length < viewers) console.log(`sample ${i}: only ${w.got.length} of ${viewers} viewers got it within 5 s`);
  await new Promise((r) => setTimeout(r, 1100));
}
for (const ws of clients) ws.close();
all.sort((a, b) => a - b);
const q = (p) => all[Math.min(all.length - 1, Math.floor(p * all.length))];
console.log(`live: ${viewers} viewers × ${samples} samples: append → push median ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${all[all.length - 1]} ms (${all.length} deliveries)`);
process.exit(0);
