//! WAL throughput: logging 2,000-sample records (the size of a large scrape) under the `Never`
//! and default `Interval` fsync policies, a bare `pwrite(2)` of the same bytes for comparison,
//! and replay speed. Files go to Cargo's target tmp dir, on the same disk as the build.
//!
//! Run with `cargo bench -p vigil --bench wal`; numbers are in BENCHMARKS.md, section "WAL".

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil::tsdb::wal::{FsyncPolicy, Record, RefSample, Wal, WalOptions};

const BATCH: usize = 2000;

/// A scrape's worth of samples: consecutive series refs, one timestamp, gauge-like values.
fn scrape(seq: u64) -> Vec<RefSample> {
    (0..BATCH as u64)
        .map(|i| RefSample {
            series: 10_000 + i,
            t: 1_700_000_000_000 + seq as i64 * 15_000,
            v: (seq * 31 + i) as f64 * 0.25,
        })
        .collect()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir")
}

fn log_samples(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_log_samples");
    g.throughput(Throughput::Elements(BATCH as u64));
    let batches: Vec<Vec<RefSample>> = (0..64).map(scrape).collect();
    for (name, fsync) in
        [("never", FsyncPolicy::Never), ("interval_10s", FsyncPolicy::Interval(Duration::from_secs(10)))]
    {
        let dir = tmp();
        let opts = WalOptions { fsync, ..WalOptions::default() };
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
    let dir = tmp();
    let (wal, _) = Wal::open(&dir.path().join("probe"), WalOptions::default(), |_| {}).expect("open");
    wal.log_samples(&batches[0]).expect("log");
    let record_bytes = wal.stats().bytes as usize;
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
    g.finish();
}

fn replay(c: &mut Criterion) {
    const RECORDS: u64 = 500;
    let dir = tmp();
    let wal_dir = dir.path().join("wal");
    let (wal, _) =
        Wal::open(&wal_dir, WalOptions { fsync: FsyncPolicy::Never, ..WalOptions::default() }, |_| {})
            .expect("open");
    for seq in 0..RECORDS {
        wal.log_samples(&scrape(seq)).expect("log");
    }
    let bytes = wal.stats().bytes;
    drop(wal);
    eprintln!("replay input: {RECORDS} records, {} samples, {bytes} bytes", RECORDS * BATCH as u64);

    let mut g = c.benchmark_group("wal_replay");
    g.throughput(Throughput::Elements(RECORDS * BATCH as u64));
    g.sample_size(20);
    g.bench_function("samples", |b| {
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
criterion_main!(benches);
