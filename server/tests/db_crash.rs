//! Crash test of the whole TSDB (head + WAL + blocks) in real processes, as the issue asks:
//! a child appends batches through `Db` as fast as it can, printing `ack N` after each commit
//! returns; the parent SIGKILLs it at a random moment, reopens the data directory and checks that
//! every acknowledged sample is there, bit for bit. Twenty rounds on one directory, so later
//! rounds also replay what earlier ones left (torn tails included) and persist blocks.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::Rng;
use vigil::tsdb::db::{Db, DbOptions};
use vigil::tsdb::head::HeadOptions;
use vigil::tsdb::index::Matcher;
use vigil::tsdb::labels::Labels;
use vigil::tsdb::wal::{FsyncPolicy, WalOptions};

const CHILD: &str = "VIGIL_DB_CRASH_CHILD";
const SERIES: usize = 200;
const STEP: i64 = 15_000;
const STALE: u64 = 0x7ff0_0000_0000_0002;

fn opts() -> DbOptions {
    DbOptions {
        // Short blocks so that maintenance writes blocks during the test.
        head: HeadOptions { block_range_ms: 60 * STEP, ..HeadOptions::default() },
        wal: WalOptions { segment_size: 1 << 20, fsync: FsyncPolicy::Never },
        retention_ms: None,
        retention_bytes: None,
    }
}

fn labels(i: usize) -> Labels {
    Labels::new([("__name__", "crash".to_string()), ("i", i.to_string())]).unwrap()
}

/// Value of series `i` in batch `seq`: deterministic, with stale markers and odd floats.
fn value(seq: u64, i: usize) -> f64 {
    match (seq as usize + i) % 13 {
        0 => f64::from_bits(STALE),
        1 => -0.0,
        2 => f64::NEG_INFINITY,
        _ => (seq as f64) * 1.5 + i as f64 / 7.0,
    }
}

/// Child: resumes after the last batch on disk and appends until killed.
#[test]
fn child_appends_through_db_until_killed() {
    let Some(dir) = std::env::var_os(CHILD) else { return };
    let db = Db::open(std::path::Path::new(&dir), opts()).unwrap();
    let start = db.head().time_range().map_or(0, |(_, max)| max / STEP + 1) as u64;
    let mut out = std::io::stdout().lock();
    for seq in start.. {
        let mut app = db.appender();
        for i in 0..SERIES {
            app.append(&labels(i), seq as i64 * STEP, value(seq, i));
        }
        app.commit().unwrap();
        writeln!(out, "ack {seq}").unwrap();
        out.flush().unwrap();
        if seq % 50 == 0 {
            db.maintain().unwrap();
        }
    }
}

#[test]
fn sigkill_keeps_every_acknowledged_sample() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut acked: Option<u64> = None;
    for round in 0..20 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_appends_through_db_until_killed", "--nocapture", "--test-threads=1"])
            .env(CHILD, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("ack ").and_then(|n| n.parse::<u64>().ok()) {
                    let _ = tx.send(n);
                }
            }
        });
        // Wait for the first acknowledgement of this round, then kill at a random moment.
        let deadline = Instant::now() + Duration::from_secs(30);
        let first = loop {
            if let Ok(n) = rx.recv_timeout(Duration::from_millis(50)) {
                break n;
            }
            assert!(Instant::now() < deadline, "round {round}: child never acknowledged a batch");
        };
        acked = Some(acked.map_or(first, |a| a.max(first)));
        std::thread::sleep(Duration::from_millis(rng.random_range(20..300)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(n) = rx.try_recv() {
            acked = Some(acked.map_or(n, |a| a.max(n)));
        }

        let last = acked.unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        let sel = db.select(&[Matcher::equal("__name__", "crash")], 0, i64::MAX).unwrap();
        assert_eq!(sel.len(), SERIES, "round {round}");
        for s in &sel {
            let i: usize = s.labels.get("i").unwrap().parse().unwrap();
            let got = s.samples();
            // Every batch up to the last acknowledged one, in order, bit for bit; a batch
            // committed but not yet acknowledged when the kill came may follow.
            assert!(
                got.len() as u64 > last,
                "round {round}: series {i} has {} samples, acked {last}",
                got.len()
            );
            for (seq, (t, v)) in got.iter().enumerate().take(last as usize + 1) {
                assert_eq!(*t, seq as i64 * STEP, "round {round}, series {i}");
                assert_eq!(
                    v.to_bits(),
                    value(seq as u64, i).to_bits(),
                    "round {round}, series {i}, batch {seq}"
                );
            }
        }
        drop(db);
    }
}
