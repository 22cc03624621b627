//! WAL size and throughput.
//!
//! First a report: WAL bytes per sample, compressed records (the default) against the first
//! record format (`WalOptions::compress = false`), on two scrape loads written as a scraper
//! writes them (one Series record per target on its first scrape, one Samples record per
//! scrape, targets interleaved):
//!
//! - **bench targets**: what `make bench` scrapes, modelled on `shared/peers/bench-targets.py`:
//!   50 targets × 2 000 series every 5 s for 3 min; per target 930 integer counters growing at
//!   U(0.01, 50)/s (mod 10^9), 930 one-decimal gauges that jump every 5 s, 10 histograms of
//!   12 buckets + `_sum` (3 decimals) + `_count`;
//! - **exposition**: the 1 857 series of `shared/conformance/exposition/alltypes.237mfs.prom.txt`
//!   (a Prometheus self-scrape) from 8 targets every 15 s for 2 h, each starting at its exposed
//!   value: counters (`_total`, `_count`, `_bucket`, `# TYPE counter`) grow by Poisson
//!   increments in units of their last printed decimal with the mean their value implies over
//!   10 days of uptime; `_sum`s that are no short decimal grow in binary floating point; zero
//!   or config-like gauges stay constant; other gauges move in 60 % of scrapes by up to 0.2 % in
//!   units of their last decimal; summary quantiles jitter by ±10 %. Scrape timestamps lag the
//!   15 s grid by 0–1.5 ms (92 %), 1.5–8 ms (6 %) or 8–40 ms (2 %).
//!
//! It also shows what snappy would take off each format's Samples payloads (Prometheus
//! compresses its WAL records with snappy). `WAL_BENCH_REPORT=0` skips the report.
//!
//! Then criterion: logging a bench-targets scrape (2 000 samples) under the `Never` and
//! default `Interval` fsync policies in both formats, a bare `pwrite(2)` of the same bytes for
//! comparison, and replay of 1 000 000 samples in both formats. Files go to Cargo's target tmp
//! dir, on the same disk as the build.
//!
//! Run with `cargo bench -p vigil --bench wal`; numbers are in BENCHMARKS.md, section "WAL".

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vigil::tsdb::wal::{FsyncPolicy, Record, RefSample, Wal, WalOptions};

const BATCH: usize = 2000;

/// One `bench-targets.py` target: series `(labels, kind)` in exposition order.
struct BenchTarget {
    counters: Vec<f64>,
    histograms: Vec<(f64, Vec<f64>)>,
    labels: Vec<Vec<(String, String)>>,
}

const LES: [&str; 12] =
    ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"];

impl BenchTarget {
    fn new(idx: usize) -> BenchTarget {
        let mut rng = StdRng::seed_from_u64(idx as u64);
        let n_rest = BATCH - 10 * (LES.len() + 2);
        let n_cnt = n_rest / 2;
        let counters = (0..n_cnt).map(|_| rng.random_range(0.01..50.0)).collect();
        let histograms = (0..10)
            .map(|_| {
                let rate = rng.random_range(1.0..100.0);
                let mut fr: Vec<f64> = (0..LES.len() - 1).map(|_| rng.random()).collect();
                fr.sort_by(f64::total_cmp);
                fr.push(1.0);
                (rate, fr)
            })
            .collect();
        let base = |name: &str| {
            vec![
                ("__name__".to_string(), name.to_string()),
                ("instance".to_string(), format!("127.0.0.1:{}", 19000 + idx)),
                ("job".to_string(), "bench".to_string()),
            ]
        };
        let with = |mut l: Vec<(String, String)>, extra: [(&str, String); 2]| {
            l.extend(extra.into_iter().map(|(n, v)| (n.to_string(), v)));
            l.sort();
            l
        };
        let mut labels = Vec::new();
        for i in 0..n_cnt {
            let extra = [("path", format!("/api/v{}/r{i}", i % 7)), ("code", format!("{}", 200 + i % 5))];
            labels.push(with(base("bench_requests_total"), extra));
        }
        for i in 0..n_rest - n_cnt {
            labels.push(with(
                base("bench_level"),
                [("shard", format!("{}", i % 16)), ("key", format!("k{i}"))],
            ));
        }
        for h in 0..10 {
            for le in LES {
                let extra = [("op", format!("op{h}")), ("le", le.to_string())];
                labels.push(with(base("bench_latency_seconds_bucket"), extra));
            }
            for suffix in ["sum", "count"] {
                let mut l = base(&format!("bench_latency_seconds_{suffix}"));
                l.push(("op".to_string(), format!("op{h}")));
                l.sort();
                labels.push(l);
            }
        }
        BenchTarget { counters, histograms, labels }
    }

    /// The values exposed at `t` seconds, as the Python script prints them.
    fn values(&self, t: f64) -> Vec<f64> {
        let tb = (t / 5.0) as u64;
        let mut v: Vec<f64> = self.counters.iter().map(|r| ((r * t) as u64 % 1_000_000_000) as f64).collect();
        let n_gauge = BATCH - 140 - self.counters.len();
        v.extend((0..n_gauge as u64).map(|i| ((i * 7919 + tb * 104_729) % 100_000) as f64 / 10.0));
        for (rate, fr) in &self.histograms {
            let total = (rate * t) as u64 % 1_000_000_000;
            v.extend(fr.iter().map(|f| (total as f64 * f) as u64 as f64));
            // `f"{x:.3f}"` read back.
            let sum: f64 = format!("{:.3}", total as f64 * 0.137).parse().unwrap_or(0.0);
            v.push(sum);
            v.push(total as f64);
        }
        v
    }
}

/// A scrape's worth of samples of a bench target: consecutive refs, one timestamp.
fn bench_scrape(target: &BenchTarget, first_ref: u64, t_ms: i64) -> Vec<RefSample> {
    target
        .values(t_ms as f64 / 1000.0)
        .into_iter()
        .enumerate()
        .map(|(i, v)| RefSample { series: first_ref + i as u64, t: t_ms, v })
        .collect()
}

/// The scrapes the throughput benchmarks cycle through: one target, 64 scrapes 5 s apart.
fn scrape(seq: u64) -> Vec<RefSample> {
    thread_local! {
        static TARGET: BenchTarget = BenchTarget::new(0);
    }
    TARGET.with(|t| bench_scrape(t, 10_000, 1_700_000_000_000 + seq as i64 * 5_000))
}

type LabelPairs = Vec<(String, String)>;

/// A scrape load: per target its series labels and, per scrape, its samples.
struct Load {
    name: &'static str,
    /// `labels[target][i]` is series `first_ref(target) + i`.
    labels: Vec<Vec<LabelPairs>>,
    scrapes: usize,
    sample: Box<dyn FnMut(usize, usize) -> Vec<RefSample>>,
}

fn bench_targets_load() -> Load {
    const TARGETS: usize = 50;
    let targets: Vec<BenchTarget> = (0..TARGETS).map(BenchTarget::new).collect();
    let labels = targets.iter().map(|t| t.labels.clone()).collect();
    Load {
        name: "bench targets: 50 x 2 000 series, 5 s, 3 min",
        labels,
        scrapes: 36,
        sample: Box::new(move |target, seq| {
            // Targets are scraped spread over the interval, at whole milliseconds.
            let t = 1_700_000_000_000 + seq as i64 * 5_000 + target as i64 * 97;
            bench_scrape(&targets[target], 1 + (target * BATCH) as u64, t)
        }),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    FloatSum,
    Quantile,
    Constant,
    Gauge,
}

/// Smallest k ≤ 9 with `value` = m / 10^k exactly, the decimals an exporter printed.
fn decimals(v: f64) -> Option<i32> {
    (0..=9).find(|&k| {
        let p = 10f64.powi(k);
        ((v * p).round() / p).to_bits() == v.to_bits()
    })
}

fn poisson(rng: &mut StdRng, lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 0.0;
    }
    if lambda < 30.0 {
        let limit = (-lambda).exp();
        let mut p: f64 = rng.random();
        let mut k = 0.0;
        while p > limit {
            p *= rng.random::<f64>();
            k += 1.0;
        }
        return k;
    }
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * rng.random::<f64>()).cos();
    (lambda + lambda.sqrt() * normal).round().max(0.0)
}

fn exposition_load() -> Option<Load> {
    const TARGETS: usize = 8;
    const UPTIME_SCRAPES: f64 = 10.0 * 86_400.0 / 15.0;
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance/exposition/alltypes.237mfs.prom.txt");
    let text = std::fs::read_to_string(path).ok()?;
    let mut types: HashMap<&str, &str> = HashMap::new();
    let mut series: Vec<(LabelPairs, Kind, f64)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(n), Some(t)) = (it.next(), it.next()) {
                types.insert(n, t);
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (text, value) = match line.rfind('}') {
            Some(end) => (&line[..=end], &line[end + 1..]),
            None => line.split_once(' ')?,
        };
        let Some(value) = value.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let (name, rest) = text.split_once('{').unwrap_or((text, ""));
        let mut labels = vec![("__name__".to_string(), name.to_string())];
        for pair in rest.trim_end_matches('}').split("\",").filter(|p| !p.is_empty()) {
            if let Some((n, v)) = pair.split_once('=') {
                labels.push((n.trim_start_matches(',').to_string(), v.trim_matches('"').to_string()));
            }
        }
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s).and_then(|b| types.get(b)))
            .or_else(|| types.get(name))
            .copied()
            .unwrap_or("untyped");
        let config_like = ["info", "limit", "max", "config", "start_time", "version", "build", "capacity"]
            .iter()
            .any(|h| name.contains(h));
        let kind = match family {
            _ if name.ends_with("_sum") && decimals(value).is_none() => Kind::FloatSum,
            "summary" if !name.ends_with("_sum") && !name.ends_with("_count") => Kind::Quantile,
            "counter" | "histogram" | "summary" => Kind::Counter,
            _ if name.ends_with("_total") => Kind::Counter,
            _ if value == 0.0 || config_like => Kind::Constant,
            _ => Kind::Gauge,
        };
        series.push((labels, kind, value));
    }
    let labels = (0..TARGETS)
        .map(|t| {
            series
                .iter()
                .map(|(l, _, _)| {
                    let mut l = l.clone();
                    l.push(("instance".to_string(), format!("10.0.0.{t}:9090")));
                    l.push(("job".to_string(), "prometheus".to_string()));
                    l.sort();
                    l
                })
                .collect()
        })
        .collect();
    let n = series.len();
    // Per target: each series' value and decimals; advanced one scrape per call.
    let mut state: Vec<Vec<(f64, i32)>> = (0..TARGETS)
        .map(|_| series.iter().map(|(_, _, v)| (*v, decimals(*v).unwrap_or(0))).collect())
        .collect();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    Some(Load {
        name: "exposition: 8 x 1 857 series, 15 s, 2 h",
        labels,
        scrapes: 480,
        sample: Box::new(move |target, seq| {
            let jitter = match rng.random_range(0..100) {
                0..92 => rng.random_range(0..2),
                92..98 => rng.random_range(2..8),
                _ => rng.random_range(8..40),
            };
            let t = 1_738_944_000_000 + seq as i64 * 15_000 + target as i64 * 1_871 + jitter;
            let first_ref = 1 + (target * n) as u64;
            let mut out = Vec::with_capacity(n);
            for (i, ((_, kind, exposed), (v, k))) in series.iter().zip(state[target].iter_mut()).enumerate() {
                let unit = 10f64.powi(-*k);
                if seq > 0 {
                    match kind {
                        Kind::Counter => {
                            let units = poisson(&mut rng, exposed / unit / UPTIME_SCRAPES);
                            *v = ((*v / unit).round() + units) / 10f64.powi(*k) * 1.0;
                            *v = (*v * 10f64.powi(*k)).round() / 10f64.powi(*k);
                        }
                        Kind::FloatSum => *v += poisson(&mut rng, 3.0) * rng.random_range(0.0..0.01),
                        Kind::Quantile => *v = exposed * rng.random_range(0.9..1.1),
                        Kind::Constant => {}
                        Kind::Gauge => {
                            if rng.random_bool(0.6) {
                                let step = (v.abs() * 0.002 / unit).max(1.0);
                                let units = rng.random_range(-step..=step).round();
                                let p = 10f64.powi(*k);
                                *v = ((*v * p).round() + units) / p;
                            }
                        }
                    }
                }
                out.push(RefSample { series: first_ref + i as u64, t, v: *v });
            }
            out
        }),
    })
}

/// Sizes of one format's records, from the segment files.
#[derive(Default)]
struct Sizes {
    series_bytes: u64,
    samples_bytes: u64,
    /// Samples payloads compressed with snappy, plus their headers.
    samples_snappy_bytes: u64,
    /// Samples records of scrapes after the first of each target.
    steady_bytes: u64,
    steady_samples: u64,
    wall: Duration,
}

fn write_load(load: &mut Load, compress: bool) -> Sizes {
    let dir = tmp();
    let opts = WalOptions { fsync: FsyncPolicy::Never, compress, ..WalOptions::default() };
    let (wal, _) = Wal::open(dir.path(), opts, |_| {}).expect("open");
    let mut sizes = Sizes::default();
    let targets = load.labels.len();
    let mut spent = Duration::ZERO;
    for seq in 0..load.scrapes {
        for target in 0..targets {
            let samples = (load.sample)(target, seq);
            let start = Instant::now();
            if seq == 0 {
                let first = samples[0].series;
                let labels = &load.labels[target];
                wal.log_series(
                    labels
                        .iter()
                        .enumerate()
                        .map(|(i, l)| (first + i as u64, l.iter().map(|(n, v)| (n.as_str(), v.as_str())))),
                )
                .expect("log series");
            }
            let before = wal.stats().bytes;
            wal.log_samples(&samples).expect("log samples");
            spent += start.elapsed();
            if seq > 0 {
                sizes.steady_bytes += wal.stats().bytes - before;
                sizes.steady_samples += samples.len() as u64;
            }
        }
    }
    sizes.wall = spent;
    drop(wal);
    let mut files: Vec<_> =
        std::fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").path()).collect();
    files.sort();
    for f in files {
        let data = std::fs::read(&f).expect("read segment");
        let mut at = 0;
        while at + 9 <= data.len() {
            let typ = data[at];
            let len = u32::from_le_bytes([data[at + 1], data[at + 2], data[at + 3], data[at + 4]]) as usize;
            let payload = &data[at + 9..at + 9 + len];
            if typ == 1 || typ == 3 {
                sizes.series_bytes += 9 + len as u64;
            } else {
                sizes.samples_bytes += 9 + len as u64;
                let packed = snap::raw::Encoder::new().compress_vec(payload).expect("snappy");
                sizes.samples_snappy_bytes += 9 + packed.len().min(len) as u64;
            }
            at += 9 + len;
        }
    }
    sizes
}

fn report() {
    let mut loads = vec![bench_targets_load()];
    loads.extend(exposition_load());
    for mut load in loads {
        let series: usize = load.labels.iter().map(Vec::len).sum();
        let mut samples = 0u64;
        for target in 0..load.labels.len() {
            samples += (load.sample)(target, 0).len() as u64 * load.scrapes as u64;
        }
        println!("WAL bytes on {} ({samples} samples, {series} series)", load.name);
        println!(
            "| format | total B/sample | Samples records B/sample | steady scrape B/sample | + snappy B/sample | Series B/series | log µs/scrape |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (name, compress) in [("first (uncompressed)", false), ("compressed (default)", true)] {
            let s = write_load(&mut load, compress);
            let per = |b: u64| b as f64 / samples as f64;
            println!(
                "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} |",
                per(s.series_bytes + s.samples_bytes),
                per(s.samples_bytes),
                s.steady_bytes as f64 / s.steady_samples.max(1) as f64,
                per(s.samples_snappy_bytes),
                s.series_bytes as f64 / series as f64,
                s.wall.as_secs_f64() * 1e6 / (load.scrapes * load.labels.len()) as f64,
            );
        }
        println!();
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir")
}

fn log_samples(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_log_samples");
    g.throughput(Throughput::Elements(BATCH as u64));
    let batches: Vec<Vec<RefSample>> = (0..64).map(scrape).collect();
    for (name, fsync, compress) in [
        ("never", FsyncPolicy::Never, true),
        ("interval_10s", FsyncPolicy::Interval(Duration::from_secs(10)), true),
        ("uncompressed_never", FsyncPolicy::Never, false),
        ("uncompressed_interval_10s", FsyncPolicy::Interval(Duration::from_secs(10)), false),
    ] {
        let dir = tmp();
        let opts = WalOptions { fsync, compress, ..WalOptions::default() };
        let (wal, _) = Wal::open(dir.path(), opts, |_| {}).expect("open");
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut start = Instant::now();
                for n in 0..iters {
                    wal.log_samples(&batches[n as usize % batches.len()]).expect("log");
                    // Keep the disk footprint bounded, off the clock: deleting a segment once
                    // per head compaction is not part of an append's cost.
                    if n % 4096 == 4095 {
                        spent += start.elapsed();
                        let last = *wal.segments().end();
                        wal.truncate_before(last).expect("truncate");
                        start = Instant::now();
                    }
                }
                spent + start.elapsed()
            })
        });
    }

    // The syscall alone: the same bytes per write, the same file pattern (a new file every
    // 128 MiB, old ones deleted off the clock every 4096 writes), so the difference to the
    // runs above is what the WAL itself costs: encoding, crc, lock.
    // The compressed size is the mean over the cycle (the first scrape, with no previous
    // values, is larger).
    let dir = tmp();
    for compress in [true, false] {
        let opts = WalOptions { compress, ..WalOptions::default() };
        let (wal, _) = Wal::open(&dir.path().join(format!("probe{compress}")), opts, |_| {}).expect("open");
        for b in &batches {
            wal.log_samples(b).expect("log");
        }
        let record_bytes = (wal.stats().bytes / batches.len() as u64) as usize;
        drop(wal);
        let buf = vec![0x5a_u8; record_bytes];
        g.bench_function(format!("pwrite_only_{record_bytes}_bytes"), |b| {
            b.iter_custom(|iters| {
                let mut files = 0u32;
                let raw = |n: u32| dir.path().join(format!("raw{n}"));
                let mut file = File::create(raw(files)).expect("create");
                let mut off = 0u64;
                let mut spent = Duration::ZERO;
                let mut start = Instant::now();
                for n in 0..iters {
                    if off + buf.len() as u64 > 128 << 20 {
                        files += 1;
                        file = File::create(raw(files)).expect("create");
                        off = 0;
                    }
                    file.write_all_at(&buf, off).expect("write");
                    off += buf.len() as u64;
                    if n % 4096 == 4095 {
                        spent += start.elapsed();
                        for old in 0..files {
                            let _ = std::fs::remove_file(raw(old));
                        }
                        start = Instant::now();
                    }
                }
                spent += start.elapsed();
                for old in 0..=files {
                    let _ = std::fs::remove_file(raw(old));
                }
                spent
            })
        });
    }
    g.finish();
}

fn replay(c: &mut Criterion) {
    const RECORDS: u64 = 500;
    let mut g = c.benchmark_group("wal_replay");
    g.throughput(Throughput::Elements(RECORDS * BATCH as u64));
    g.sample_size(20);
    let dir = tmp();
    for (name, compress) in [("samples", true), ("samples_uncompressed", false)] {
        let wal_dir = dir.path().join(name);
        let opts = WalOptions { fsync: FsyncPolicy::Never, compress, ..WalOptions::default() };
        let (wal, _) = Wal::open(&wal_dir, opts, |_| {}).expect("open");
        for seq in 0..RECORDS {
            wal.log_samples(&scrape(seq)).expect("log");
        }
        let bytes = wal.stats().bytes;
        drop(wal);
        eprintln!(
            "replay input ({name}): {RECORDS} records, {} samples, {bytes} bytes",
            RECORDS * BATCH as u64
        );
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let (samples, last) = replay_once(&wal_dir);
                    spent += start.elapsed();
                    assert_eq!(samples, RECORDS * BATCH as u64);
                    // Each open starts an empty segment; remove it so every pass reads the same.
                    std::fs::remove_file(wal_dir.join(format!("{last:08}"))).expect("remove");
                }
                spent
            })
        });
    }
    g.finish();
}

fn replay_once(dir: &Path) -> (u64, u32) {
    let mut samples = 0u64;
    let mut checksum = 0u64;
    let opts = WalOptions { fsync: FsyncPolicy::Never, ..WalOptions::default() };
    let (wal, _) = Wal::open(dir, opts, |r| {
        if let Record::Samples(s) = r {
            samples += s.len() as u64;
            checksum = checksum.wrapping_add(s[s.len() - 1].v.to_bits());
        }
    })
    .expect("replay");
    std::hint::black_box(checksum);
    (samples, *wal.segments().end())
}

criterion_group!(benches, log_samples, replay);

fn main() {
    if std::env::var("WAL_BENCH_REPORT").as_deref() != Ok("0")
        && !std::env::args().any(|a| a == "--profile-time")
    {
        report();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
