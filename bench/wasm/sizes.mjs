// Sizes of the release WebAssembly: the main module (what every page needs before it hydrates)
// and each lazily loaded part with the shared chunks it pulls in, raw and gzip -9.
// Usage: node bench/wasm/sizes.mjs [site/pkg dir]   (default target/site/pkg)
// Build first: cargo leptos build --release --split (see BENCHMARKS.md for the site root used).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dir = process.argv[2] || 'target/site/pkg';
const files = readdirSync(dir);
// cargo-leptos keeps older hashed builds next to the new ones: take the newest of each name.
const newest = (re) => files.filter((f) => re.test(f))
  .map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs })).sort((a, b) => b.t - a.t)[0]?.f;
const size = (f) => {
  const bytes = readFileSync(join(dir, f));
  return { raw: bytes.length, gz: gzipSync(bytes, { level: 9 }).length };
};
const kb = (n) => (n / 1000).toFixed(1);

const main = newest(/^vigil\.[^.]+\.wasm$|^vigil(_bg)?\.wasm$/);
if (!main) throw new Error(`no vigil wasm in ${dir}`);
const manifestFile = newest(/^__wasm_split_manifest.*\.json$/);
const manifest = manifestFile ? JSON.parse(readFileSync(join(dir, manifestFile), 'utf8')) : {};
const m = size(main);
console.log('| part | raw kB | gzip kB | with its shared chunks, gzip kB |');
console.log('|---|---|---|---|');
console.log(`| main module (${main}) | ${kb(m.raw)} | **${kb(m.gz)}** | |`);
for (const [name, deps] of Object.entries(manifest).sort()) {
  const sizes = deps.map((d) => size(`${d}.wasm`));
  const o = sizes[deps.findIndex((d) => d.startsWith('split_'))];
  const all = sizes.reduce((a, s) => a + s.gz, 0);
  console.log(`| ${name.replace(/^_+/, '').replace(/_\d+$/, '')} | ${kb(o.raw)} | ${kb(o.gz)} | ${kb(all)} |`);
}
