//! Exposition parser throughput over the real bodies in `../shared/conformance/exposition`.
//!
//! Two ways of consuming each body: `full` touches every label pair (unescaping into a reused
//! buffer) as a scrape does for series it has not seen; `cache_hit` reads only the series text
//! and value, as a scrape does when the series text is found in the target's cache. The parser's
//! scratch is reused across iterations, as across scrapes. Criterion reports time per body,
//! samples/s (elements) and bytes/s; ns/sample = 1e9 / elements per second.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil::scrape::parse::{Entry, Format, Parser, Scratch, Validation};

const EXPOSITION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance/exposition");

const BODIES: [(&str, Format, Validation); 6] = [
    ("alltypes.237mfs.prom.txt", Format::Text, Validation::Strict),
    ("alltypes.237mfs.nometa.prom.txt", Format::Text, Validation::Strict),
    ("metrics-test.prom", Format::Text, Validation::Strict),
    ("1histogram.om.txt", Format::OpenMetrics, Validation::Strict),
    ("1histogram.om.txt", Format::OpenMetrics, Validation::Syntax),
    // client_golang's example breaks OpenMetrics' histogram rules; Prometheus accepts it.
    ("alltypes.5mfs.om.txt", Format::OpenMetrics, Validation::Syntax),
];

fn full(body: &[u8], format: Format, validation: Validation, scratch: &mut Scratch, buf: &mut String) -> u64 {
    let mut p = Parser::with_scratch(body, format, validation, std::mem::take(scratch));
    let mut acc = 0u64;
    for e in p.by_ref() {
        if let Ok(Entry::Sample(s)) = e {
            for (name, value) in s.labels.iter() {
                acc = acc.wrapping_add(name.len() as u64 + value.unescape_into(buf).len() as u64);
            }
            acc = acc.wrapping_add(s.value.to_bits());
        }
    }
    *scratch = p.into_scratch();
    acc
}

fn cache_hit(body: &[u8], format: Format, validation: Validation, scratch: &mut Scratch) -> u64 {
    let mut p = Parser::with_scratch(body, format, validation, std::mem::take(scratch));
    let mut acc = 0u64;
    for e in p.by_ref() {
        if let Ok(Entry::Sample(s)) = e {
            acc = acc.wrapping_add(black_box(s.series).len() as u64 ^ s.value.to_bits());
        }
    }
    *scratch = p.into_scratch();
    acc
}

fn bench(c: &mut Criterion) {
    if !Path::new(EXPOSITION).is_dir() {
        eprintln!("SKIPPED parse benchmarks: {EXPOSITION} is missing");
        return;
    }
    let mut group = c.benchmark_group("parse");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30);
    for (file, format, validation) in BODIES {
        let body = std::fs::read(Path::new(EXPOSITION).join(file)).expect("exposition body");
        let samples = Parser::with_validation(&body, format, validation)
            .map(|e| e.unwrap_or_else(|e| panic!("{file}: {e}")))
            .filter(|e| matches!(e, Entry::Sample(_)))
            .count();
        group.throughput(Throughput::ElementsAndBytes { elements: samples as u64, bytes: body.len() as u64 });
        let mut scratch = Scratch::default();
        let mut buf = String::new();
        let id = match (format, validation) {
            (Format::Text, _) => file.to_string(),
            (Format::OpenMetrics, Validation::Strict) => format!("{file}/strict"),
            (Format::OpenMetrics, Validation::Syntax) => format!("{file}/syntax"),
        };
        group.bench_function(format!("full/{id}"), |b| {
            b.iter(|| full(black_box(&body), format, validation, &mut scratch, &mut buf))
        });
        group.bench_function(format!("cache_hit/{id}"), |b| {
            b.iter(|| cache_hit(black_box(&body), format, validation, &mut scratch))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
