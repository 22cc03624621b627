//! Head benchmarks: append throughput in scrape-sized batches, and resident memory per series.
//!
//! Run: `cargo bench -p vigil --bench head`. Before criterion runs, it prints the heap bytes per
//! series of a head holding 2 h of 15 s samples (480 per series) of a realistic mix — counters
//! with integer increments, gauges with two decimals, constants — and again 15 min later (540,
//! mid-chunk), measured by a counting global allocator, so the figures are exact for this process
//! and independent of machine noise. They are broken down into label sets, the index (its own
//! estimate), encoded chunk bytes, and the rest: per-series structures, lookup maps, chunk
//! metadata and spare buffer capacity.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use vigil::tsdb::db::{Db, DbOptions};
use vigil::tsdb::head::{Head, HeadOptions};
use vigil::tsdb::index::{Matcher, MemIndex};
use vigil::tsdb::labels::Labels;
use vigil::tsdb::wal::{FsyncPolicy, WalOptions};

struct Counting;

/// Bytes requested, as `Layout`s say.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Bytes glibc's malloc actually hands out for those requests (8-byte header, 16-byte steps,
/// 32 bytes minimum): closer to what the process's resident memory grows by.
static LIVE_MALLOC: AtomicUsize = AtomicUsize::new(0);

fn malloc_size(n: usize) -> usize {
    ((n + 8 + 15) & !15).max(32)
}

// SAFETY: forwards to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        LIVE_MALLOC.fetch_add(malloc_size(l.size()), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        LIVE_MALLOC.fetch_sub(malloc_size(l.size()), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        LIVE_MALLOC.fetch_add(malloc_size(new), Ordering::Relaxed);
        LIVE_MALLOC.fetch_sub(malloc_size(l.size()), Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy)]
struct Live {
    requested: usize,
    malloc: usize,
}

fn live() -> Live {
    Live { requested: LIVE.load(Ordering::Relaxed), malloc: LIVE_MALLOC.load(Ordering::Relaxed) }
}

impl std::ops::Sub for Live {
    type Output = Live;
    fn sub(self, o: Live) -> Live {
        Live { requested: self.requested - o.requested, malloc: self.malloc - o.malloc }
    }
}

const SERIES: usize = 2_000;
const STEP_MS: i64 = 15_000;

/// Label sets shaped like a scrape of an application: ~40 metric names, a few labels each.
fn series_labels(n: usize, job: &str) -> Vec<Labels> {
    (0..n)
        .map(|i| {
            Labels::new([
                ("__name__", format!("app_metric_{}_total", i % 40)),
                ("job", job.to_string()),
                ("instance", "10.0.0.7:8080".to_string()),
                ("handler", format!("/api/v1/endpoint/{}", i / 40)),
                ("code", ["200", "404", "500"][i % 3].to_string()),
            ])
            .expect("valid labels")
        })
        .collect()
}

/// Next value of series `i`: a third counters, a third two-decimal gauges, a third constant.
fn next_value(i: usize, prev: f64, rng: &mut impl Rng) -> f64 {
    match i % 3 {
        0 => prev + f64::from(rng.random_range(0..20u32)),
        1 => ((prev * 100.0).round() + f64::from(rng.random_range(-50..=50i32))) / 100.0,
        _ => prev,
    }
}

/// The head's defaults, with `HEAD_BENCH_REPACK=n` setting [`HeadOptions::repack_every`].
fn head_options() -> HeadOptions {
    let repack_every = std::env::var("HEAD_BENCH_REPACK").ok().and_then(|v| v.parse().ok());
    HeadOptions {
        repack_every: repack_every.unwrap_or(HeadOptions::default().repack_every),
        ..HeadOptions::default()
    }
}

fn memory_per_series() {
    let series = 10_000;
    let per = |bytes: usize| bytes as f64 / series as f64;
    let start = live();
    // Built inside the measurement: the head keeps a reference to each set, and in a real
    // process the scrape cache holds the other one, so the head is charged for them.
    let labels = series_labels(series, "memory");
    let labels_bytes = (live() - start).requested;
    // The head's index is private; an identical one built aside gives its exact size.
    let index_bytes = {
        let before = live();
        let mut index = MemIndex::new();
        for (r, l) in (1..).zip(&labels) {
            index.add(r, l);
        }
        let bytes = (live() - before).requested;
        drop(index);
        bytes
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let head = Head::new(head_options(), None);
    let mut values = vec![100.0; series];
    let mut s = 0;
    for report_at in [480, 540] {
        while s < report_at {
            let mut app = head.appender();
            for (i, l) in labels.iter().enumerate() {
                values[i] = next_value(i, values[i], &mut rng);
                let jitter = rng.random_range(-5..=5);
                app.append(l, s as i64 * STEP_MS + jitter, values[i]);
            }
            app.commit().expect("no log, cannot fail");
            s += 1;
        }
        let used = live() - start;
        let c = head.chunk_stats();
        let rest = used.requested.saturating_sub(labels_bytes + index_bytes + c.sealed_bytes + c.open_bytes);
        println!(
            "head memory: {series} series x {report_at} samples: {:.0} bytes/series, {:.2} bytes/sample \
             (heap, labels included; {:.0} bytes/series as glibc malloc blocks)",
            per(used.requested),
            used.requested as f64 / (series * report_at) as f64,
            per(used.malloc),
        );
        println!(
            "  labels {:.0} | index {:.0} | sealed chunks {:.0} ({:.1} chunks, {:.2} B/sample) | \
             open chunk {:.0} ({:.0} samples, {:.2} B/sample) | rest {:.0} (series structs, maps, \
             chunk metadata, spare capacity)",
            per(labels_bytes),
            per(index_bytes),
            per(c.sealed_bytes),
            c.sealed_chunks as f64 / series as f64,
            c.sealed_bytes as f64 / c.sealed_samples.max(1) as f64,
            per(c.open_bytes),
            c.open_samples as f64 / series as f64,
            c.open_bytes as f64 / c.open_samples.max(1) as f64,
            per(rest),
        );
    }
    black_box(head);
}

/// What the append benchmarks time: wall-clock by default; with `HEAD_BENCH_CLOCK=cpu`, the
/// thread's CPU time (user + system), which leaves out the time other processes on a shared
/// machine take the core away and so compares builds more steadily.
#[derive(Clone, Copy)]
enum Clock {
    Wall,
    ThreadCpu,
}

impl Clock {
    fn from_env() -> Clock {
        match std::env::var("HEAD_BENCH_CLOCK").as_deref() {
            Ok("cpu") => Clock::ThreadCpu,
            _ => Clock::Wall,
        }
    }

    fn now(self) -> Duration {
        match self {
            Clock::Wall => {
                static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
                EPOCH.get_or_init(Instant::now).elapsed()
            }
            Clock::ThreadCpu => {
                let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
                // SAFETY: clock_gettime only writes the timespec we pass, which outlives the call.
                let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
                assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
                Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
            }
        }
    }

    fn since(self, start: Duration) -> Duration {
        self.now().saturating_sub(start)
    }
}

fn append(c: &mut Criterion) {
    let clock = Clock::from_env();
    let mut g = c.benchmark_group("head_append");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.measurement_time(Duration::from_secs(5));
    let labels = series_labels(SERIES, "bench");

    g.bench_function("batch_2000_no_wal", |b| {
        let head = Head::new(head_options(), None);
        let mut t = 0i64;
        b.iter_custom(|iters| {
            let start = clock.now();
            for _ in 0..iters {
                t += STEP_MS;
                let mut app = head.appender();
                for (i, l) in labels.iter().enumerate() {
                    app.append(l, t, (t / 1000) as f64 + i as f64);
                }
                black_box(app.commit().expect("no log"));
            }
            clock.since(start)
        });
    });

    // `_uncompressed`: the WAL in its first record format, for comparison.
    for (name, compress) in
        [("batch_2000_by_ref_wal_no_fsync", true), ("batch_2000_by_ref_wal_uncompressed_no_fsync", false)]
    {
        g.bench_function(name, |b| {
            let dir = tempfile::tempdir().expect("temp dir");
            let opts = DbOptions {
                head: head_options(),
                wal: WalOptions { fsync: FsyncPolicy::Never, compress, ..WalOptions::default() },
                ..DbOptions::default()
            };
            let db = Db::open(dir.path(), opts).expect("open db");
            let mut app = db.appender();
            let refs: Vec<u64> = labels.iter().map(|l| app.append(l, 0, 0.0)).collect();
            app.commit().expect("commit");
            let mut t = 0i64;
            b.iter_custom(|iters| {
                let start = clock.now();
                for _ in 0..iters {
                    t += STEP_MS;
                    let mut app = db.appender();
                    for (i, r) in refs.iter().enumerate() {
                        app.append_ref(*r, t, (t / 1000) as f64 + i as f64).expect("known ref");
                    }
                    black_box(app.commit().expect("commit"));
                }
                clock.since(start)
            });
        });
    }
    g.finish();

    // Queries copy a snapshot of each series out of the head; this is what that costs.
    let mut g = c.benchmark_group("head_select");
    g.throughput(Throughput::Elements(SERIES as u64));
    let head = Head::new(HeadOptions::default(), None);
    for s in 0..480i64 {
        let mut app = head.appender();
        for (i, l) in labels.iter().enumerate() {
            app.append(l, s * STEP_MS, (s / 4) as f64 + i as f64);
        }
        app.commit().expect("no log");
    }
    let all = [Matcher::equal("job", "bench")];
    g.bench_function("2000_series_2h_snapshot", |b| b.iter(|| black_box(head.select(&all, 0, i64::MAX))));
    g.bench_function("2000_series_2h_snapshot_and_decode", |b| {
        b.iter(|| {
            let sel = head.select(&all, 0, i64::MAX);
            black_box(sel.iter().map(|s| s.iter().count()).sum::<usize>())
        })
    });
    g.finish();
}

criterion_group!(benches, append);

fn main() {
    // Profiling runs (`--profile-time`) and repeated comparisons want the append loop alone.
    if !std::env::args().any(|a| a == "--profile-time") && std::env::var_os("HEAD_BENCH_NO_MEMORY").is_none()
    {
        memory_per_series();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
