//! Block compaction: time to merge three 2 h blocks of 10 000 series into one 6 h block, and the
//! bytes per sample before and after.
//!
//! Run: `cargo bench -p vigil --bench compact` (`COMPACT_BENCH_SERIES=n` for another series
//! count, `COMPACT_BENCH_RUNS=n` for more runs). Not criterion: one merge writes ~60 MB and
//! fsyncs it, so a handful of timed runs and their median say what there is to say.
//!
//! The blocks hold 480 samples per series (15 s scrapes, timestamps ±5 ms around the grid), a
//! third integer counters, a third two-decimal gauge walks, a third constants — the head bench's
//! mix. Two cases: the usual one (adjacent blocks, chunks copied as they are) and three blocks
//! that all cover the same 2 h with the same timestamps (a backfill of identical data: every
//! chunk decoded, deduplicated and re-encoded).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use vigil::tsdb::block::{Block, BlockWriter, Compaction};
use vigil::tsdb::chunk::{Chunk, ChunkEncoder, TARGET_SAMPLES_PER_CHUNK};
use vigil::tsdb::compact::merge_blocks;
use vigil::tsdb::labels::Labels;

const H: i64 = 3_600_000;
const STEP: i64 = 15_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn labels(i: usize) -> Labels {
    let kind = ["counter_total", "gauge", "constant"][i % 3];
    Labels::new([
        ("__name__", format!("bench_{kind}")),
        ("instance", format!("host-{}.example.org:9100", i / 100)),
        ("job", "node".to_string()),
        ("series", format!("{i:06}")),
    ])
    .expect("valid labels")
}

/// One series' samples in `[mint, maxt)`, continuing from `state` (counter or gauge level).
fn samples(rng: &mut impl Rng, i: usize, mint: i64, maxt: i64, state: &mut f64) -> Vec<(i64, f64)> {
    (mint..maxt)
        .step_by(STEP as usize)
        .map(|t| {
            let t = t + rng.random_range(-5..=5);
            match i % 3 {
                0 => *state += f64::from(rng.random_range(0..40u32)),
                1 => *state = ((*state + rng.random_range(-1.0..1.0)) * 100.0).round() / 100.0,
                _ => *state = 42.0,
            }
            (t, *state)
        })
        .collect()
}

fn encode(samples: &[(i64, f64)]) -> Vec<Chunk> {
    samples
        .chunks(TARGET_SAMPLES_PER_CHUNK)
        .map(|part| {
            let mut e = ChunkEncoder::new();
            for &(t, v) in part {
                e.append(t, v);
            }
            e.seal()
        })
        .collect()
}

/// Writes three 2 h blocks; `overlapping` puts all three over the same 2 h with the same data.
fn write_parents(dir: &Path, series: usize, overlapping: bool) -> Vec<Arc<Block>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut state: BTreeMap<usize, f64> = BTreeMap::new();
    let sorted: BTreeMap<Labels, usize> = (0..series).map(|i| (labels(i), i)).collect();
    let mut first: Option<Vec<Vec<Chunk>>> = None;
    let mut out = Vec::new();
    for k in 0..3i64 {
        let (mint, maxt) = if overlapping { (0, 2 * H) } else { (k * 2 * H, (k + 1) * 2 * H) };
        let id = format!("p{k}");
        let mut w = BlockWriter::create(dir, &id).unwrap_or_else(|e| panic!("{e}"));
        let mut all = Vec::with_capacity(series);
        for (j, (l, &i)) in sorted.iter().enumerate() {
            let chunks = match &first {
                Some(f) if overlapping => f[j].clone(),
                _ => {
                    let s = state.entry(i).or_insert(1000.0);
                    encode(&samples(&mut rng, i, mint, maxt, s))
                }
            };
            w.add_series(l, &chunks).unwrap_or_else(|e| panic!("{e}"));
            all.push(chunks);
        }
        first.get_or_insert(all);
        w.finish(mint, maxt, Compaction { level: 1, sources: vec![id.clone()], parents: vec![] })
            .unwrap_or_else(|e| panic!("{e}"));
        out.push(Arc::new(Block::open(&dir.join(&id)).unwrap_or_else(|e| panic!("{e}"))));
    }
    out
}

fn file_len(dir: &Path, name: &str) -> u64 {
    std::fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or_default()
}

fn run(series: usize, runs: usize, overlapping: bool) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let parents = write_parents(dir.path(), series, overlapping);
    let in_samples: u64 = parents.iter().map(|b| b.meta().stats.num_samples).sum();
    let in_chunks: u64 = parents.iter().map(|b| file_len(b.dir(), "chunks")).sum();
    let in_index: u64 = parents.iter().map(|b| file_len(b.dir(), "index")).sum();
    let mut times: Vec<Duration> = Vec::new();
    let mut last = None;
    for r in 0..runs {
        let id = format!("c{r}");
        let start = Instant::now();
        let meta = merge_blocks(dir.path(), &id, &parents).unwrap_or_else(|e| panic!("{e}"));
        times.push(start.elapsed());
        if let Some(prev) = last.replace(id) {
            let _ = std::fs::remove_dir_all(dir.path().join(prev));
        }
        assert!(meta.stats.num_series as usize == series);
    }
    times.sort();
    let Some(id) = last else { return };
    let child = Block::open(&dir.path().join(&id)).unwrap_or_else(|e| panic!("{e}"));
    let out_samples = child.meta().stats.num_samples;
    let out_chunks = file_len(child.dir(), "chunks");
    let out_index = file_len(child.dir(), "index");
    let median = times[times.len() / 2];
    println!(
        "{} 3 × 2 h → 1 block, {series} series: merge median {:.0} ms (min {:.0}, max {:.0}, {runs} runs), \
         {:.1} M samples/s in",
        if overlapping { "overlapping" } else { "adjacent" },
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        in_samples as f64 / median.as_secs_f64() / 1e6,
    );
    println!(
        "  parents: {in_samples} samples, chunks {:.3} B/sample, index {in_index} B in all",
        in_chunks as f64 / in_samples as f64
    );
    println!(
        "  merged:  {out_samples} samples, chunks {:.3} B/sample, index {out_index} B",
        out_chunks as f64 / out_samples as f64
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let series = env("COMPACT_BENCH_SERIES", if quick { 100 } else { 10_000 });
    let runs = env("COMPACT_BENCH_RUNS", if quick { 1 } else { 5 });
    run(series, runs, false);
    run(series, runs, true);
}
