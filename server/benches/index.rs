//! Benchmarks of the head's inverted index: `select` over 100 000 series with the matcher shapes
//! PromQL queries produce, `label_values`, and building the index. Before timing, it prints the
//! heap bytes per series of the index and of the label sets, counted by a wrapping allocator.
//!
//! The series model a fleet: 100 instances × 200 metrics × 5 series (`code`), refs assigned per
//! instance as a scrape would; every tenth metric also carries a unique `series_id`.
//!
//! Run: `cargo bench -p vigil --bench index`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use criterion::{criterion_group, BatchSize, Criterion};
use vigil::tsdb::index::{MatchOp, Matcher, MemIndex, SeriesRef};
use vigil::tsdb::labels::Labels;

/// Counts the bytes glibc really hands out (usable size plus its 8-byte header), so memory per
/// series is measured, not estimated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

fn block_size(ptr: *mut u8) -> isize {
    // SAFETY: `ptr` was just returned by, or is about to be given back to, the system allocator.
    (unsafe { libc::malloc_usable_size(ptr.cast()) } + 8) as isize
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(block_size(p), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(block_size(ptr), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const INSTANCES: u64 = 100;
const METRICS: u64 = 200;
const CODES: [&str; 5] = ["200", "301", "404", "500", "503"];

fn fleet() -> Vec<(SeriesRef, Labels)> {
    let mut out = Vec::new();
    for inst in 0..INSTANCES {
        let instance = format!("10.0.{}.{}:9100", inst / 50, inst % 50);
        let job = format!("job-{}", inst % 5);
        for metric in 0..METRICS {
            let name = format!("metric_{metric:03}");
            for (k, code) in CODES.iter().enumerate() {
                let r = (inst * METRICS + metric) * CODES.len() as u64 + k as u64;
                let id = r.to_string();
                let mut pairs =
                    vec![("__name__", name.as_str()), ("job", &job), ("instance", &instance), ("code", code)];
                if metric % 10 == 0 {
                    pairs.push(("series_id", &id));
                }
                if let Ok(labels) = Labels::new(pairs) {
                    out.push((r, labels));
                }
            }
        }
    }
    out
}

fn build(series: &[(SeriesRef, Labels)]) -> MemIndex {
    let mut ix = MemIndex::new();
    for (r, l) in series {
        ix.add(*r, l);
    }
    ix
}

fn report_memory(series: &[(SeriesRef, Labels)], labels_measured: isize) {
    let n = series.len() as f64;
    let labels: usize = series.iter().map(|(_, l)| l.heap_bytes()).sum();
    let before = LIVE.load(Ordering::Relaxed);
    let mut ix = build(series);
    let grown = LIVE.load(Ordering::Relaxed) - before;
    let grown_estimate = ix.memory_bytes();
    ix.shrink_to_fit();
    let shrunk = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "{} series: index {:.1} B/series measured after adds ({:.1} estimated by memory_bytes), \
         {:.1} after shrink_to_fit ({:.1} estimated); labels {:.1} B/series measured ({:.1} by heap_bytes)",
        series.len(),
        grown as f64 / n,
        grown_estimate as f64 / n,
        shrunk as f64 / n,
        ix.memory_bytes() as f64 / n,
        labels_measured as f64 / n,
        labels as f64 / n,
    );
}

fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
    match Matcher::new(op, name, value) {
        Ok(m) => m,
        Err(e) => panic!("bench matcher: {e}"),
    }
}

fn benches_index(c: &mut Criterion) {
    use MatchOp::{Equal, NotEqual, NotRegex, Regex};
    let before = LIVE.load(Ordering::Relaxed);
    let series = fleet();
    let vec_bytes = series.capacity() * std::mem::size_of::<(SeriesRef, Labels)>();
    report_memory(&series, LIVE.load(Ordering::Relaxed) - before - vec_bytes as isize);
    let ix = build(&series);
    let shapes: Vec<(&str, Vec<Matcher>)> = vec![
        ("name", vec![m("__name__", Equal, "metric_042")]),
        ("name_job", vec![m("__name__", Equal, "metric_042"), m("job", Equal, "job-1")]),
        ("name_instance_regex", vec![m("__name__", Equal, "metric_042"), m("instance", Regex, "10.0.1.1.*")]),
        ("name_prefix", vec![m("__name__", Regex, "metric_04.*")]),
        ("name_code_regex", vec![m("__name__", Equal, "metric_042"), m("code", Regex, "2..|5..")]),
        ("job_not_code", vec![m("job", Equal, "job-1"), m("code", NotEqual, "200")]),
        ("job_set_not_instance", vec![m("job", Regex, "job-1|job-2"), m("instance", NotRegex, "10.0.0.*")]),
        ("id_suffix_regex_scan", vec![m("series_id", Regex, ".*77")]),
        ("name_id_absent", vec![m("__name__", Equal, "metric_042"), m("series_id", Equal, "")]),
        ("only_empty_matching", vec![m("series_id", Equal, "")]),
        ("all_nonempty_name", vec![m("__name__", Regex, ".+")]),
    ];
    let mut group = c.benchmark_group("select_100k");
    for (label, ms) in &shapes {
        let hits = ix.select(ms).len();
        group.bench_function(format!("{label} ({hits} hits)"), |b| {
            b.iter(|| black_box(ix.select(black_box(ms))))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("labels_100k");
    let by_name = [m("__name__", Equal, "metric_042")];
    group.bench_function("label_values(instance, name)", |b| {
        b.iter(|| black_box(ix.label_values(black_box("instance"), &by_name)))
    });
    group.bench_function("label_values(series_id)", |b| {
        b.iter(|| black_box(ix.label_values("series_id", &[])))
    });
    group.bench_function("label_names(name)", |b| b.iter(|| black_box(ix.label_names(&by_name))));
    group.finish();

    let mut group = c.benchmark_group("build_100k");
    group.sample_size(10);
    group.bench_function("add 100k series", |b| {
        b.iter_batched(|| (), |_| build(&series), BatchSize::PerIteration)
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches_index
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
