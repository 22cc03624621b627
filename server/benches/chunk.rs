//! Chunk encoding: bytes per sample on realistic scraped data, then encode and decode speed.
//!
//! The data is a simulated 2 h of scraping (480 samples per series at 15 s, cut into chunks of
//! 120) of the series in a real Prometheus exposition (by default
//! `shared/conformance/exposition/alltypes.237mfs.prom.txt`, a Prometheus 3.1 self-scrape with
//! 1 857 series; `VIGIL_EXPOSITION=path` picks another). Each series starts at its exposed value
//! and moves as its type says:
//!
//! - counters (`# TYPE counter`, `_total`, `_count`) grow by Poisson increments whose mean is the
//!   exposed value divided by the process's uptime (from `process_start_time_seconds` and
//!   `prometheus_tsdb_head_max_time`, else 7 days), times a per-scrape load factor U(0.8, 1.2)
//!   shared by the whole target, in units of the value's last decimal place;
//! - histograms: the family's count increment is spread over the buckets multinomially with the
//!   exposed bucket proportions (so `_bucket`s stay cumulative); `_sum` adds increment × mean ×
//!   U(0.8, 1.2): in its own decimals when the exposed sum is a short decimal (byte sizes, the Go
//!   runtime's nanosecond totals), else as whole-nanosecond observations added one by one (at
//!   most 64 per scrape) in binary floating point, as client libraries do, which leaves no
//!   short decimal;
//! - summary quantiles move by a factor e^N(0, 0.1) (kept to whole nanoseconds) when their
//!   family saw observations in that scrape;
//! - gauges that look like configuration or are 0 stay constant; timestamp gauges advance 15 s
//!   (± 1 % in their last unit); the rest random-walk, moving in 60 % of scrapes by up to 0.2 %
//!   of their value in units of their last decimal place.
//!
//! Scrape timestamps are shared by a target's series and lag a 15 s grid by a jitter modelled
//! on the exposition's own `prometheus_target_interval_length_seconds` quantiles (92 % of
//! scrapes within 1.5 ms, 6 % 1.5–8 ms, 2 % 8–40 ms late); it also reports no jitter and a
//! uniform ±5 ms. Eight targets with different seeds are simulated.
//!
//! Run: `cargo bench -p vigil --bench chunk` (the report prints first; criterion's name filter
//! after `--` selects timings, e.g. `-- decode`; `VIGIL_CHUNK_REPORT=0` skips the report).

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vigil::tsdb::chunk::{Chunk, ChunkEncoder, Encoding, ValueCoding, ValueSource, TARGET_SAMPLES_PER_CHUNK};

const SAMPLES_PER_SERIES: usize = 480;
const INTERVAL_MS: i64 = 15_000;
const TARGETS: u64 = 8;
const DEFAULT_UPTIME_S: f64 = 7.0 * 86_400.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Counter,
    Bucket,
    FloatSum,
    Quantile,
    Gauge,
    Constant,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter (_total, _count)",
            Kind::Bucket => "histogram _bucket",
            Kind::FloatSum => "histogram/summary _sum",
            Kind::Quantile => "summary quantile",
            Kind::Gauge => "gauge (walk, timestamp)",
            Kind::Constant => "gauge (constant)",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Jitter {
    Measured,
    Uniform5,
    None,
}

impl Jitter {
    fn name(self) -> &'static str {
        match self {
            Jitter::Measured => "jitter as measured (92% <1.5 ms, 6% <8 ms, 2% <40 ms late)",
            Jitter::Uniform5 => "jitter uniform ±5 ms",
            Jitter::None => "no jitter (aligned timestamps)",
        }
    }

    fn sample(self, rng: &mut StdRng) -> i64 {
        match self {
            Jitter::None => 0,
            Jitter::Uniform5 => rng.random_range(-5..=5),
            Jitter::Measured => {
                let r: f64 = rng.random();
                let ms = if r < 0.92 {
                    rng.random_range(0.0..1.5)
                } else if r < 0.98 {
                    rng.random_range(1.5..8.0)
                } else {
                    rng.random_range(8.0..40.0)
                };
                ms as i64
            }
        }
    }
}

/// One line of the exposition.
struct Line {
    /// `name{labels}` as exposed.
    series: String,
    name: String,
    /// Labels without `le` / `quantile`: identifies the histogram or summary a line belongs to.
    group: String,
    value: f64,
    kind: Kind,
}

/// Smallest k ≤ 9 with `value` = m / 10^k exactly, the decimals an exporter printed.
fn decimals(v: f64) -> Option<u32> {
    (0..=9).find(|&k| {
        let p = 10f64.powi(k as i32);
        ((v * p).round() / p).to_bits() == v.to_bits()
    })
}

fn looks_constant(name: &str) -> bool {
    const HINTS: [&str; 22] = [
        "info",
        "limit",
        "max_",
        "_max",
        "capacity",
        "gomaxprocs",
        "start_time",
        "gogc",
        "enabled",
        "successful",
        "ready",
        "clean_start",
        "interval",
        "starting_size",
        "_rules",
        "discovered",
        "last_reload",
        "mtime",
        "retention",
        "min_time",
        "lowest_timestamp",
        "blocks_loaded",
    ];
    HINTS.iter().any(|h| name.contains(h))
}

fn parse(text: &str) -> (Vec<Line>, f64) {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut lines = Vec::new();
    for raw in text.lines() {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(n), Some(t)) = (it.next(), it.next()) {
                types.insert(n.to_string(), t.to_string());
            }
            continue;
        }
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let (series, rest) = match raw.rfind('}') {
            Some(end) => (&raw[..=end], &raw[end + 1..]),
            None => match raw.split_once(' ') {
                Some((s, r)) => (s, r),
                None => continue,
            },
        };
        let Some(value) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let group_labels: Vec<&str> = labels
            .trim_end_matches('}')
            .split(',')
            .filter(|l| !l.starts_with("le=") && !l.starts_with("quantile="))
            .collect();
        let base = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| types.contains_key(*b)))
            .unwrap_or(name);
        let family = types.get(base).or_else(|| types.get(name)).map(String::as_str).unwrap_or("untyped");
        let kind = match family {
            "histogram" | "summary" if name.ends_with("_bucket") => Kind::Bucket,
            "histogram" | "summary" if name.ends_with("_sum") => Kind::FloatSum,
            "histogram" | "summary" if name.ends_with("_count") => Kind::Counter,
            "summary" => Kind::Quantile,
            "counter" => Kind::Counter,
            _ if name.ends_with("_total") => Kind::Counter,
            _ if value == 0.0 || looks_constant(name) => Kind::Constant,
            _ => Kind::Gauge,
        };
        lines.push(Line {
            series: series.to_string(),
            name: name.to_string(),
            group: format!("{base}{{{}}}", group_labels.join(",")),
            value,
            kind,
        });
    }
    let get = |n: &str| lines.iter().find(|l| l.name == n).map(|l| l.value);
    let uptime = match (get("process_start_time_seconds"), get("prometheus_tsdb_head_max_time")) {
        (Some(start), Some(now_ms)) if now_ms / 1e3 > start => now_ms / 1e3 - start,
        _ => DEFAULT_UPTIME_S,
    };
    (lines, uptime)
}

fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn poisson(rng: &mut StdRng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda < 30.0 {
        let limit = (-lambda).exp();
        let mut p: f64 = rng.random();
        let mut k = 0;
        while p > limit {
            p *= rng.random::<f64>();
            k += 1;
        }
        return k;
    }
    (lambda + lambda.sqrt() * normal(rng)).round().max(0.0) as u64
}

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    let nf = n as f64;
    if n <= 50 {
        (0..n).filter(|_| rng.random::<f64>() < p).count() as u64
    } else if nf * p < 20.0 {
        poisson(rng, nf * p).min(n)
    } else if nf * (1.0 - p) < 20.0 {
        n - poisson(rng, nf * (1.0 - p)).min(n)
    } else {
        (nf * p + (nf * p * (1.0 - p)).sqrt() * normal(rng)).round().clamp(0.0, nf) as u64
    }
}

/// A series' generator state: an integer `m` in units of 10^-k, or a binary float.
struct Series {
    kind: Kind,
    group: usize,
    k: u32,
    m: i64,
    f: f64,
    /// A `_sum` accumulated in binary floating point (its exposed value is no short decimal).
    float: bool,
    /// Per-scrape mean increment in units (counters), walk step (gauges), or bucket share.
    rate: f64,
    timestamp_like: bool,
    /// A histogram's or summary's `_count`: grows by the family's increment.
    family_count: bool,
}

impl Series {
    fn value(&self) -> f64 {
        if self.float {
            self.f
        } else {
            self.m as f64 / 10f64.powi(self.k as i32)
        }
    }
}

struct Group {
    /// Per-scrape mean count increment.
    rate: f64,
    /// Mean observed value (sum / count), for `_sum`.
    mean: f64,
    /// Bucket series in exposition order and their share of observations.
    buckets: Vec<(usize, f64)>,
    increment: u64,
}

/// Generates `SAMPLES_PER_SERIES` samples of every series of one target.
fn simulate(lines: &[Line], uptime: f64, jitter: Jitter, seed: u64) -> (Vec<i64>, Vec<(Kind, Vec<f64>)>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let scrapes_per_uptime = uptime * 1000.0 / INTERVAL_MS as f64;
    let start = 1_738_944_000_000 + rng.random_range(0..INTERVAL_MS);
    let ts: Vec<i64> =
        (0..SAMPLES_PER_SERIES as i64).map(|i| start + i * INTERVAL_MS + jitter.sample(&mut rng)).collect();

    let mut group_ids: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut series: Vec<Series> = Vec::with_capacity(lines.len());
    for l in lines {
        let gid = *group_ids.entry(l.group.as_str()).or_insert_with(|| {
            groups.push(Group { rate: 0.0, mean: 0.0, buckets: Vec::new(), increment: 0 });
            groups.len() - 1
        });
        let float = l.kind == Kind::FloatSum && decimals(l.value).is_none();
        let k = decimals(l.value).unwrap_or(9);
        let unit = 10f64.powi(-(k as i32));
        let m = (l.value / unit).round() as i64;
        let timestamp_like =
            l.kind == Kind::Gauge && (l.name.contains("timestamp") || l.name.ends_with("_time"));
        let rate = match l.kind {
            Kind::Counter => l.value / scrapes_per_uptime / unit,
            Kind::Gauge if timestamp_like => {
                let ms = l.value > 1e11;
                (if ms { 15_000.0 } else { 15.0 }) / unit
            }
            Kind::Gauge => (l.value.abs() * 0.002 / unit).round().max(1.0),
            _ => 0.0,
        };
        let family_count = l.kind == Kind::Counter && l.name.ends_with("_count");
        if family_count {
            groups[gid].rate = l.value / scrapes_per_uptime;
        }
        series.push(Series {
            kind: l.kind,
            group: gid,
            k,
            m,
            f: l.value,
            float,
            rate,
            timestamp_like,
            family_count,
        });
    }
    // Bucket shares from the cumulative counts, and each family's mean observation.
    for (gid, g) in groups.iter_mut().enumerate() {
        let mut prev = 0.0;
        let members: Vec<usize> = (0..series.len()).filter(|&s| series[s].group == gid).collect();
        let count = members.iter().map(|&s| &lines[s]).find(|l| l.name.ends_with("_count")).map(|l| l.value);
        let sum = members.iter().map(|&s| &lines[s]).find(|l| l.name.ends_with("_sum")).map(|l| l.value);
        if let (Some(c), Some(s)) = (count, sum) {
            g.mean = if c > 0.0 { s / c } else { 0.0 };
        }
        for &s in &members {
            if series[s].kind == Kind::Bucket {
                let cum = lines[s].value;
                let share =
                    if let Some(c) = count.filter(|&c| c > 0.0) { (cum - prev).max(0.0) / c } else { 0.0 };
                prev = cum;
                g.buckets.push((s, share));
            }
        }
    }

    let mut out: Vec<(Kind, Vec<f64>)> =
        series.iter().map(|s| (s.kind, Vec::with_capacity(SAMPLES_PER_SERIES))).collect();
    for _ in 0..SAMPLES_PER_SERIES {
        let load: f64 = rng.random_range(0.8..1.2);
        for g in groups.iter_mut() {
            g.increment = poisson(&mut rng, g.rate * load);
            // Multinomial split of the increment, accumulated into the cumulative buckets.
            let mut left = g.increment;
            let mut mass = 1.0;
            let mut cum = 0;
            for &(s, share) in &g.buckets {
                let x = if mass > 0.0 { binomial(&mut rng, left, (share / mass).min(1.0)) } else { 0 };
                left -= x;
                mass -= share;
                cum += x;
                series[s].m += cum as i64;
            }
        }
        for s in series.iter_mut() {
            let g = &groups[s.group];
            match s.kind {
                Kind::Counter if s.family_count => s.m += g.increment as i64 * 10i64.pow(s.k),
                Kind::Counter => s.m += poisson(&mut rng, s.rate * load) as i64,
                Kind::FloatSum if g.increment > 0 => {
                    let inc = g.increment as f64 * g.mean * rng.random_range(0.8..1.2);
                    if s.float {
                        // Observations are whole nanoseconds, added one by one in binary floating
                        // point (in at most 64 parts, to bound the simulation's time).
                        let parts = g.increment.min(64);
                        for _ in 0..parts {
                            s.f += (inc / parts as f64 * rng.random_range(0.5..1.5) * 1e9).round() / 1e9;
                        }
                    } else {
                        s.m += (inc * 10f64.powi(s.k as i32)).round() as i64;
                    }
                }
                Kind::Quantile if g.increment > 0 => {
                    s.m = ((s.m as f64) * (0.1 * normal(&mut rng)).exp()).round().max(1.0) as i64;
                }
                Kind::Gauge if s.timestamp_like => {
                    let j = (s.rate / 100.0).round() as i64;
                    s.m += s.rate as i64 + rng.random_range(-j..=j);
                }
                Kind::Gauge if rng.random::<f64>() < 0.6 => {
                    let step = s.rate as i64;
                    s.m += rng.random_range(-step..=step);
                    if s.m < 0 {
                        s.m = -s.m;
                    }
                }
                _ => {}
            }
        }
        for (s, (_, vs)) in series.iter().zip(out.iter_mut()) {
            vs.push(s.value());
        }
    }
    (ts, out)
}

fn chunks_of(ts: &[i64], vs: &[f64]) -> Vec<ChunkEncoder> {
    ts.chunks(TARGET_SAMPLES_PER_CHUNK)
        .zip(vs.chunks(TARGET_SAMPLES_PER_CHUNK))
        .map(|(tc, vc)| {
            let mut e = ChunkEncoder::new();
            for (&t, &v) in tc.iter().zip(vc) {
                e.append(t, v);
            }
            e
        })
        .collect()
}

fn same(chunk: &Chunk, ts: &[i64], vs: &[f64]) -> bool {
    chunk.iter().map(|(t, v)| (t, v.to_bits())).eq(ts.iter().copied().zip(vs.iter().map(|v| v.to_bits())))
}

#[derive(Default)]
struct Tally {
    series: usize,
    samples: usize,
    xor: usize,
    sealed: usize,
}

fn load_exposition() -> Option<(Vec<Line>, f64, String)> {
    let path = std::env::var("VIGIL_EXPOSITION").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance/exposition/alltypes.237mfs.prom.txt")
            .to_string()
    });
    let text = std::fs::read_to_string(&path).ok()?;
    let (lines, uptime) = parse(&text);
    Some((lines, uptime, path))
}

fn report() {
    let Some((lines, uptime, path)) = load_exposition() else {
        println!("chunk report skipped: exposition not found (set VIGIL_EXPOSITION)");
        return;
    };
    println!("Chunk encoding on {} series of {path}", lines.len());
    println!(
        "uptime {:.0} s; {TARGETS} targets × {SAMPLES_PER_SERIES} samples at {} s, chunks of {TARGET_SAMPLES_PER_CHUNK}",
        uptime,
        INTERVAL_MS / 1000
    );
    for jitter in [Jitter::Measured, Jitter::Uniform5, Jitter::None] {
        let mut kinds: BTreeMap<Kind, Tally> = BTreeMap::new();
        let mut encodings: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut deltas: Vec<i64> = Vec::new();
        let mut mismatches = 0;
        let mut per_series = vec![0usize; lines.len()];
        for target in 0..TARGETS {
            let (ts, series) = simulate(&lines, uptime, jitter, 0x5eed + target);
            deltas.extend(ts.windows(2).map(|w| w[1] - w[0] - INTERVAL_MS));
            for (si, (kind, vs)) in series.iter().enumerate() {
                let tally = kinds.entry(*kind).or_default();
                tally.series += 1;
                tally.samples += vs.len();
                for (i, enc) in chunks_of(&ts, vs).into_iter().enumerate() {
                    let range = i * TARGET_SAMPLES_PER_CHUNK..(i * TARGET_SAMPLES_PER_CHUNK + enc.len());
                    let xor = enc.clone().seal_xor();
                    let sealed = enc.seal();
                    if !same(&sealed, &ts[range.clone()], &vs[range.clone()])
                        || !same(&xor, &ts[range.clone()], &vs[range])
                    {
                        mismatches += 1;
                    }
                    tally.xor += xor.as_bytes().len();
                    tally.sealed += sealed.as_bytes().len();
                    per_series[si] += sealed.as_bytes().len();
                    let e = encodings.entry(coding_name(sealed.encoding())).or_default();
                    e.0 += 1;
                    e.1 += sealed.as_bytes().len();
                }
            }
        }
        deltas.sort_unstable();
        let q = |p: f64| deltas[((deltas.len() - 1) as f64 * p) as usize];
        println!();
        println!("== {} ==", jitter.name());
        println!(
            "interval − 15 s, ms: q01 {} q05 {} q50 {} q90 {} q99 {} (exposition: −17.4 −2.4 0.0 +0.8 +17.6)",
            q(0.01),
            q(0.05),
            q(0.5),
            q(0.9),
            q(0.99)
        );
        println!("| series kind | series | XOR B/sample | chosen B/sample | XOR / chosen |");
        println!("|---|---:|---:|---:|---:|");
        let mut total = Tally::default();
        for (kind, t) in &kinds {
            println!(
                "| {} | {} | {:.3} | {:.3} | {:.1}× |",
                kind.name(),
                t.series,
                t.xor as f64 / t.samples as f64,
                t.sealed as f64 / t.samples as f64,
                t.xor as f64 / t.sealed as f64
            );
            total.series += t.series;
            total.samples += t.samples;
            total.xor += t.xor;
            total.sealed += t.sealed;
        }
        println!(
            "| **all** | {} | {:.3} | {:.3} | {:.1}× |",
            total.series,
            total.xor as f64 / total.samples as f64,
            total.sealed as f64 / total.samples as f64,
            total.xor as f64 / total.sealed as f64
        );
        println!("chosen encodings (chunks, mean bytes):");
        let mut encs: Vec<_> = encodings.into_iter().collect();
        encs.sort_by_key(|e| std::cmp::Reverse(e.1 .0));
        for (name, (count, bytes)) in encs {
            println!("  {count:6} × {:6.1} B  {name}", bytes as f64 / count as f64);
        }
        let mut top: Vec<usize> = (0..lines.len()).collect();
        top.sort_by_key(|&i| std::cmp::Reverse(per_series[i]));
        println!("largest series (chosen B/sample):");
        for &i in top.iter().take(8) {
            let bps = per_series[i] as f64 / (TARGETS as usize * SAMPLES_PER_SERIES) as f64;
            println!("  {bps:6.2}  {:?}  {}", lines[i].kind, lines[i].series);
        }
        if mismatches > 0 {
            println!("ROUND-TRIP MISMATCHES: {mismatches}");
        }
    }
    println!();
}

/// The coding without the decimal scale, which varies per series and would scatter the counts.
fn coding_name(e: Encoding) -> String {
    match e {
        Encoding::Xor => "XOR chunk".to_string(),
        Encoding::Packed { timestamps, values } => {
            let v = match values {
                ValueCoding::Xor => "XOR".to_string(),
                ValueCoding::Delta(src) => format!("delta of {}", source_name(src)),
                ValueCoding::DeltaOfDelta(src) => format!("delta-of-delta of {}", source_name(src)),
            };
            format!("packed: {timestamps:?} timestamps, values {v}")
        }
    }
}

fn source_name(s: ValueSource) -> &'static str {
    match s {
        ValueSource::Decimal { .. } => "decimals",
        ValueSource::NearDecimal { .. } => "near-decimals + ulp residuals",
        ValueSource::Bits => "raw bits",
    }
}

/// One chunk's worth of raw samples.
type RawChunk = (Vec<i64>, Vec<f64>);

/// The chunks of one target with measured jitter: the mix the timings run on.
fn workload() -> Option<(Vec<RawChunk>, usize)> {
    let (lines, uptime, _) = load_exposition()?;
    let (ts, series) = simulate(&lines, uptime, Jitter::Measured, 0x5eed);
    let mut chunks = Vec::new();
    let mut samples = 0;
    for (_, vs) in &series {
        for (tc, vc) in ts.chunks(TARGET_SAMPLES_PER_CHUNK).zip(vs.chunks(TARGET_SAMPLES_PER_CHUNK)) {
            samples += tc.len();
            chunks.push((tc.to_vec(), vc.to_vec()));
        }
    }
    Some((chunks, samples))
}

/// CPU time of the calling thread: unlike wall time it does not count the time other processes
/// on a shared machine hold the core, so the throughput below stays comparable under load.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Million samples per CPU second of `f`, which handles `samples` samples: the best of 7 runs
/// of at least 0.2 s each.
fn cpu_throughput(samples: usize, mut f: impl FnMut() -> i64) -> f64 {
    let mut best = f64::MAX;
    let mut sink = 0i64;
    for _ in 0..7 {
        let start = thread_cpu_time();
        let mut runs = 0u32;
        while thread_cpu_time() - start < Duration::from_millis(200) {
            sink ^= black_box(f());
            runs += 1;
        }
        best = best.min((thread_cpu_time() - start).as_secs_f64() / f64::from(runs.max(1)));
    }
    black_box(sink);
    samples as f64 / best / 1e6
}

fn append_all(raw: &[RawChunk]) -> Vec<ChunkEncoder> {
    raw.iter()
        .map(|(ts, vs)| {
            let mut e = ChunkEncoder::new();
            for (&t, &v) in ts.iter().zip(vs) {
                e.append(t, v);
            }
            e
        })
        .collect()
}

fn decode_all<'a>(iters: impl Iterator<Item = vigil::tsdb::chunk::ChunkIter<'a>>) -> i64 {
    iters.fold(0i64, |acc, it| it.fold(acc, |a, (t, v)| a.wrapping_add(t ^ v.to_bits() as i64)))
}

/// Throughput in thread CPU time, printed with the report.
fn cpu_report() {
    let Some((raw, samples)) = workload() else {
        return;
    };
    let encoders = append_all(&raw);
    let sealed: Vec<Chunk> = encoders.iter().map(|e| e.clone().seal()).collect();
    let xor: Vec<Chunk> = encoders.iter().map(|e| e.clone().seal_xor()).collect();
    println!("Throughput on one target's chunks ({samples} samples), M samples per CPU second, best of 7:");
    let append = cpu_throughput(samples, || append_all(&raw).len() as i64);
    let seal = cpu_throughput(samples, || {
        append_all(&raw).into_iter().map(|e| e.seal().as_bytes().len() as i64).sum()
    });
    let d_sealed = cpu_throughput(samples, || decode_all(sealed.iter().map(Chunk::iter)));
    let d_xor = cpu_throughput(samples, || decode_all(xor.iter().map(Chunk::iter)));
    let d_open = cpu_throughput(samples, || decode_all(encoders.iter().map(ChunkEncoder::iter)));
    println!("| operation | M samples/s |");
    println!("|---|---:|");
    println!("| append (open XOR chunk) | {append:.1} |");
    println!("| append + seal | {seal:.1} |");
    println!("| decode sealed (chosen encodings) | {d_sealed:.1} |");
    println!("| decode sealed XOR | {d_xor:.1} |");
    println!("| decode open chunk | {d_open:.1} |");
    println!();
}

fn timings(c: &mut Criterion) {
    let Some((raw, samples)) = workload() else {
        return;
    };
    let encoders: Vec<ChunkEncoder> = raw.iter().map(|(ts, vs)| chunks_of(ts, vs).remove(0)).collect();
    let sealed: Vec<Chunk> = encoders.iter().map(|e| e.clone().seal()).collect();
    let xor: Vec<Chunk> = encoders.iter().map(|e| e.clone().seal_xor()).collect();

    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Elements(samples as u64));
    g.bench_function("encode/append", |b| {
        b.iter(|| {
            for (ts, vs) in &raw {
                let mut e = ChunkEncoder::new();
                for (&t, &v) in ts.iter().zip(vs) {
                    e.append(t, v);
                }
                black_box(&e);
            }
        })
    });
    g.bench_function("encode/append+seal", |b| {
        b.iter(|| {
            for (ts, vs) in &raw {
                let mut e = ChunkEncoder::new();
                for (&t, &v) in ts.iter().zip(vs) {
                    e.append(t, v);
                }
                black_box(e.seal());
            }
        })
    });
    let sum = |it: &mut dyn Iterator<Item = (i64, f64)>| it.fold((0i64, 0f64), |a, s| (a.0 ^ s.0, a.1 + s.1));
    g.bench_function("decode/sealed", |b| {
        b.iter(|| sealed.iter().map(|c| sum(&mut c.iter())).fold(0i64, |a, s| a ^ s.0 ^ s.1.to_bits() as i64))
    });
    g.bench_function("decode/xor", |b| {
        b.iter(|| xor.iter().map(|c| sum(&mut c.iter())).fold(0i64, |a, s| a ^ s.0 ^ s.1.to_bits() as i64))
    });
    g.bench_function("decode/open", |b| {
        b.iter(|| {
            encoders.iter().map(|c| sum(&mut c.iter())).fold(0i64, |a, s| a ^ s.0 ^ s.1.to_bits() as i64)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = timings
}

fn main() {
    // Profiling one timing is easier without the report's work around it.
    if std::env::var_os("VIGIL_CHUNK_REPORT").is_none_or(|v| v != "0") {
        report();
        cpu_report();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
