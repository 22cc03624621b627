//! Crash test of the whole TSDB (head + WAL + blocks) in real processes, as the issue asks:
//! a child appends batches through `Db` as fast as it can, printing `ack N` after each commit
//! returns; the parent SIGKILLs it at a random moment, reopens the data directory and checks that
//! every acknowledged sample is there, bit for bit. Twenty rounds on one directory, so later
//! rounds also replay what earlier ones left (torn tails included), persist blocks and merge them
//! (so some kills land in the middle of a merge). A second test fills the "disk" (a file-size
//! limit) and checks that appends fail cleanly while queries keep working and nothing
//! acknowledged is lost.

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
        wal: WalOptions { segment_size: 1 << 20, fsync: FsyncPolicy::Never, ..WalOptions::default() },
        retention_ms: None,
        retention_bytes: None,
        ..DbOptions::default()
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
    if std::env::var_os(FULL_CHILD).is_some() {
        return;
    }
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
    if std::env::var_os(CHILD).is_some() || std::env::var_os(FULL_CHILD).is_some() {
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
    // The kills also landed in block merges: the blocks were merged at least once (a few
    // hundred batches make four 15 min blocks; twenty rounds append thousands).
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(db.blocks().iter().any(|b| b.meta().compaction.level >= 2), "{:?}", db.blocks());
}

const FULL_CHILD: &str = "VIGIL_DB_FULL_CHILD";

/// Child of [`a_full_disk_fails_appends_but_loses_nothing`]: appends under a file-size limit
/// (the way a full disk looks to a writer) and reports what happened.
#[test]
fn child_fills_the_disk() {
    let Some(dir) = std::env::var_os(FULL_CHILD) else { return };
    let db = Db::open(std::path::Path::new(&dir), opts()).unwrap();
    // SAFETY: plain libc calls on this child process only; ignoring SIGXFSZ makes an over-limit
    // write fail with EFBIG instead of killing the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = 64 * 1024;
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let mut out = std::io::stdout().lock();
    let mut seq = 0u64;
    let err = loop {
        let mut app = db.appender();
        for i in 0..SERIES {
            app.append(&labels(i), seq as i64 * STEP, value(seq, i));
        }
        match app.commit() {
            Ok(_) => writeln!(out, "ack {seq}").unwrap(),
            Err(e) => break e.to_string(),
        }
        seq += 1;
    };
    writeln!(out, "error {err}").unwrap();
    // Queries keep working on everything stored before the failure.
    let sel = db.select(&[Matcher::equal("__name__", "crash")], 0, i64::MAX).unwrap();
    let min = sel.iter().map(|s| s.samples().len()).min().unwrap_or(0);
    writeln!(out, "queryable {min}").unwrap();
    out.flush().unwrap();
}

#[test]
fn a_full_disk_fails_appends_but_loses_nothing() {
    if std::env::var_os(FULL_CHILD).is_some() || std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_fills_the_disk", "--nocapture", "--test-threads=1"])
        .env(FULL_CHILD, dir.path())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let acked = text.lines().filter_map(|l| l.strip_prefix("ack ")?.parse::<u64>().ok()).max().unwrap();
    let err = text.lines().find_map(|l| l.strip_prefix("error ")).unwrap_or_default();
    assert!(err.contains("write-ahead log") && err.contains("File too large"), "{err}");
    let queryable: u64 = text.lines().find_map(|l| l.strip_prefix("queryable ")?.parse().ok()).unwrap();
    assert_eq!(queryable, acked + 1, "the failed batch applied nothing and queries still see the rest");

    // After "freeing space" (a new process without the limit), everything acknowledged is there.
    let db = Db::open(dir.path(), opts()).unwrap();
    let sel = db.select(&[Matcher::equal("__name__", "crash")], 0, i64::MAX).unwrap();
    assert_eq!(sel.len(), SERIES);
    for s in &sel {
        let i: usize = s.labels.get("i").unwrap().parse().unwrap();
        let got = s.samples();
        assert_eq!(got.len() as u64, acked + 1, "series {i}");
        for (seq, (t, v)) in got.iter().enumerate() {
            assert_eq!((*t, v.to_bits()), (seq as i64 * STEP, value(seq as u64, i).to_bits()));
        }
    }
    // And appends work again.
    let mut app = db.appender();
    app.append(&labels(0), (acked as i64 + 1) * STEP, 1.0);
    assert_eq!(app.commit().unwrap().appended, 1);
}
