//! Crash tests of the write-ahead log in real processes.
//!
//! Each parent test re-executes this test binary with an environment variable that turns one of
//! the `child_*` tests into a worker (run normally, those return at once). The worker appends to
//! a WAL and prints `ack N` after each `log_samples` for batch N returns. Batch contents are a
//! pure function of N, so the parent can check the replayed WAL bit for bit.
//!
//! SIGKILL loses nothing `write(2)` has accepted (it is in the page cache), so "acknowledged"
//! means "written to the OS"; surviving power loss is the fsync policy's business and is not
//! tested here.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::Rng;
use vigil::tsdb::wal::{FsyncPolicy, Record, RefSample, RefSeries, ReplayReport, Wal, WalError, WalOptions};

const KILL_CHILD: &str = "VIGIL_WAL_CRASH_CHILD";
const FULL_CHILD: &str = "VIGIL_WAL_FULL_CHILD";
const SERIES: u64 = 1000;
const STALE: u64 = 0x7ff0_0000_0000_0002;

/// Batch `seq`: mostly 10 to 209 samples, every 16th one 2,000 or more so that its record spans
/// several pages and a kill can tear it; with stale markers, NaN payloads, -0.0, infinities and
/// extreme timestamps. (Small batches keep the test fast: the child's per-batch syscalls bound
/// how much data the parent must replay.)
fn batch(seq: u64) -> Vec<RefSample> {
    let n = if seq.is_multiple_of(16) { 2000 + seq % 1000 } else { 10 + (seq * 7919) % 200 };
    (0..n)
        .map(|i| {
            let h = (seq << 32 | i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let v = match i % 11 {
                0 => f64::from_bits(STALE),
                1 => -0.0,
                2 => f64::INFINITY,
                3 => f64::from_bits(0xfff8_0000_0000_0000 | (h >> 20)),
                _ => f64::from_bits(h),
            };
            let t = match i % 97 {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => 1_700_000_000_000 + (seq * 15_000) as i64 + i as i64,
            };
            RefSample { series: (seq * 31 + i) % SERIES, t, v }
        })
        .collect()
}

fn series_defs() -> Vec<RefSeries> {
    (0..SERIES)
        .map(|r| RefSeries {
            series: r,
            labels: vec![("__name__".into(), "crash_test".into()), ("n".into(), r.to_string())],
        })
        .collect()
}

fn log_series_defs(wal: &Wal) -> Result<(), WalError> {
    let defs = series_defs();
    wal.log_series(defs.iter().map(|s| (s.series, s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())))))
}

fn ack(line: &str) {
    let mut out = std::io::stdout().lock();
    // Unwrap: a closed pipe means the parent is gone, and this process should end too.
    out.write_all(line.as_bytes()).unwrap();
    out.write_all(b"\n").unwrap();
    out.flush().unwrap();
}

/// Child of [`sigkill_keeps_every_acknowledged_batch`]: appends until killed.
#[test]
fn child_appends_until_killed() {
    let Some(dir) = std::env::var_os(KILL_CHILD) else { return };
    let opts = WalOptions { segment_size: 1 << 20, fsync: FsyncPolicy::Never, ..WalOptions::default() };
    let (wal, _) = Wal::open(Path::new(&dir), opts, |_| {}).unwrap();
    log_series_defs(&wal).unwrap();
    ack("series");
    for seq in 0.. {
        wal.log_samples(&batch(seq)).unwrap();
        ack(&format!("ack {seq}"));
    }
}

struct Replayed {
    series: Vec<Vec<RefSeries>>,
    batches: Vec<Vec<RefSample>>,
    report: ReplayReport,
}

fn replay(dir: &Path) -> Replayed {
    let mut series = Vec::new();
    let mut batches = Vec::new();
    let opts = WalOptions { fsync: FsyncPolicy::Never, ..WalOptions::default() };
    let (wal, report) = Wal::open(dir, opts, |r| match r {
        Record::Series(s) => series.push(s),
        Record::Samples(s) => batches.push(s.to_vec()),
        _ => panic!("unexpected record kind"),
    })
    .unwrap();
    drop(wal);
    Replayed { series, batches, report }
}

fn last_segment(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.pop().unwrap()
}

/// Reads the child's `ack` lines; reports the first one, returns the highest batch acknowledged.
fn read_acks(child: &mut Child, started: mpsc::Sender<()>) -> std::thread::JoinHandle<Option<u64>> {
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut highest = None;
        let mut started = Some(started);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(seq) = line.strip_prefix("ack ") {
                highest = Some(seq.parse::<u64>().unwrap());
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
            }
        }
        highest
    })
}

fn child_command(test: &str, env: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn sigkill_keeps_every_acknowledged_batch() {
    let mut rng = rand::rng();
    let began = Instant::now();
    let (mut torn_by_kill, mut injected) = (0, 0);
    let mut total_batches = 0;
    for run in 0..20 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("wal");
        let mut child = child_command("child_appends_until_killed", KILL_CHILD, &dir).spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        let acks = read_acks(&mut child, tx);
        // Kill while appending, not while the process is still starting.
        rx.recv_timeout(Duration::from_secs(60)).expect("child never acknowledged a batch");
        std::thread::sleep(Duration::from_millis(rng.random_range(20..=300)));
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = acks.join().unwrap().expect("an acknowledgement was seen");

        // On top of whatever the kill left, model what a crashed file system leaves behind.
        let segment = last_segment(&dir);
        let len = std::fs::metadata(&segment).unwrap().len();
        let junk: Option<Vec<u8>> = match run % 3 {
            1 => Some(vec![0; 4096]),
            2 => Some((0..rng.random_range(1..200)).map(|_| rng.random()).collect()),
            _ => None,
        };
        if let Some(junk) = &junk {
            std::fs::OpenOptions::new().append(true).open(&segment).unwrap().write_all(junk).unwrap();
            injected += 1;
        }

        let got = replay(&dir);
        assert_eq!(got.series, vec![series_defs()], "run {run}");
        assert!(got.batches.len() as u64 > acked, "run {run}: {} batches, ack {acked}", got.batches.len());
        for (seq, b) in got.batches.iter().enumerate() {
            assert!(*b == batch(seq as u64), "run {run}: batch {seq} differs");
        }
        total_batches += got.batches.len();
        match got.report.corruptions.as_slice() {
            [] => assert!(junk.is_none(), "run {run}: injected junk went unnoticed"),
            [c] => {
                assert_eq!(c.path, segment, "run {run}");
                assert!(c.offset <= len, "run {run}: cut at {} past the killed length {len}", c.offset);
                if c.offset < len {
                    torn_by_kill += 1;
                }
                assert!(c.segments_dropped.is_empty());
            }
            more => panic!("run {run}: {more:?}"),
        }
        // The repair sticks: the next open finds a clean WAL with the same content.
        let again = replay(&dir);
        assert!(again.report.corruptions.is_empty(), "run {run}: {:?}", again.report);
        assert_eq!(again.batches.len(), got.batches.len());
    }
    eprintln!(
        "20 kills in {:.1?}: {total_batches} batches replayed, {injected} junk tails cut, \
         {torn_by_kill} records torn by the kill itself",
        began.elapsed()
    );
}

/// Child of [`a_full_disk_fails_appends_without_leaving_half_records`]: appends under a small
/// file-size limit (the kernel fails writes past it as it does on a full disk), then lifts the
/// limit and appends once more.
#[test]
fn child_fills_the_disk() {
    let Some(dir) = std::env::var_os(FULL_CHILD) else { return };
    let dir = Path::new(&dir);
    set_file_size_limit(256 << 10);
    let opts = WalOptions { segment_size: 64 << 20, fsync: FsyncPolicy::Always, ..WalOptions::default() };
    let (wal, _) = Wal::open(dir, opts, |_| {}).unwrap();
    log_series_defs(&wal).unwrap();
    ack("series");
    let mut seq = 0;
    let err = loop {
        match wal.log_samples(&batch(seq)) {
            Ok(()) => ack(&format!("ack {seq}")),
            Err(e) => break e,
        }
        seq += 1;
    };
    let segment = last_segment(dir);
    let msg = err.to_string();
    assert!(msg.contains("cannot write WAL segment"), "{msg}");
    assert!(msg.contains(&*segment.to_string_lossy()), "{msg}");
    assert!(msg.contains("File too large"), "{msg}");
    // The half record the short write left was cut straight away.
    // One segment only (the limit is far below the segment size), so it holds every good byte.
    let good = wal.stats().bytes;
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good, "half record left on disk");
    // Still failing while the disk is full; nothing is acknowledged. Compressed records depend
    // on what was written before (after a failure the writer starts its values over), so the
    // same batch may now take fewer bytes and fit in the room left: retry with one that
    // cannot (2,000 samples of mostly random bits, over 16 KB).
    let too_big = batch(0);
    for _ in 0..3 {
        assert!(wal.log_samples(&too_big).is_err());
    }
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good);
    set_file_size_limit(libc::RLIM_INFINITY);
    wal.log_samples(&batch(seq)).unwrap();
    ack(&format!("ack {seq}"));
    assert_eq!(wal.stats().write_errors, 4);
}

fn set_file_size_limit(bytes: libc::rlim_t) {
    // SAFETY: plain libc calls on this process; ignoring SIGXFSZ makes an over-limit write fail
    // with EFBIG instead of killing the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = bytes.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

#[test]
fn a_full_disk_fails_appends_without_leaving_half_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut child = child_command("child_fills_the_disk", FULL_CHILD, &dir).spawn().unwrap();
    let (tx, _rx) = mpsc::channel();
    let acks = read_acks(&mut child, tx);
    let status = child.wait().unwrap();
    let acked = acks.join().unwrap().expect("an acknowledgement was seen");
    assert!(status.success(), "the child's checks failed: rerun with {FULL_CHILD}=DIR and --nocapture");

    let got = replay(&dir);
    assert!(got.report.corruptions.is_empty(), "{:?}", got.report);
    assert_eq!(got.series, vec![series_defs()]);
    assert_eq!(got.batches.len() as u64, acked + 1);
    for (seq, b) in got.batches.iter().enumerate() {
        assert!(*b == batch(seq as u64), "batch {seq} differs");
    }
}
