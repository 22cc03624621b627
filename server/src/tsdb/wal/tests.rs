use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

/// A replayed record, owned so tests can keep it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Owned {
    Series(Vec<RefSeries>),
    Samples(Vec<RefSample>),
}

fn opts(segment_size: u64, fsync: FsyncPolicy) -> WalOptions {
    WalOptions { segment_size, fsync, compress: true }
}

pub(super) fn open(dir: &Path, o: WalOptions) -> (Wal, Vec<Owned>, ReplayReport) {
    let mut got = Vec::new();
    let (wal, report) = Wal::open(dir, o, |r| {
        got.push(match r {
            Record::Series(s) => Owned::Series(s),
            Record::Samples(s) => Owned::Samples(s.to_vec()),
        })
    })
    .unwrap();
    (wal, got, report)
}

pub(super) fn replay(dir: &Path) -> (Vec<Owned>, ReplayReport) {
    let (wal, got, report) = open(dir, opts(DEFAULT_SEGMENT_SIZE, FsyncPolicy::Never));
    drop(wal);
    (got, report)
}

pub(super) fn log(wal: &Wal, rec: &Owned) {
    match rec {
        Owned::Series(s) => wal
            .log_series(s.iter().map(|s| (s.series, s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())))))
            .unwrap(),
        Owned::Samples(s) => wal.log_samples(s).unwrap(),
    }
}

pub(super) fn batch(i: u64, n: u64) -> Owned {
    Owned::Samples(
        (0..n)
            .map(|j| RefSample { series: i * 10 + j, t: 1_000 * i as i64 + j as i64, v: (i * j) as f64 })
            .collect(),
    )
}

pub(super) fn series(i: u64) -> Owned {
    Owned::Series(vec![RefSeries {
        series: i,
        labels: vec![("__name__".into(), "up".into()), ("job".into(), format!("job-{i}"))],
    }])
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| parse_number(n).is_some()))
        .collect();
    v.sort();
    v
}

/// Writes `records` into a fresh WAL and returns the segment path and each record's end offset.
fn written(dir: &Path, records: &[Owned]) -> (PathBuf, Vec<u64>) {
    let (wal, _, _) = open(dir, opts(DEFAULT_SEGMENT_SIZE, FsyncPolicy::Never));
    let mut ends = Vec::new();
    for r in records {
        log(&wal, r);
        ends.push(wal.writer.lock().len);
    }
    let path = wal.writer.lock().path.clone();
    drop(wal);
    (path, ends)
}

fn five_records() -> Vec<Owned> {
    vec![series(1), batch(1, 3), series(2), batch(2, 4), batch(3, 5)]
}

/// Damages a WAL of five records with `damage`, then checks the reopened WAL keeps exactly
/// the first `kept` records, reports `kind` at the right offset, and is clean on the next open.
fn check_damage(damage: impl FnOnce(&Path, &[u64]), kept: usize, kind: CorruptionKind) {
    let tmp = tempfile::tempdir().unwrap();
    let records = five_records();
    let (path, ends) = written(tmp.path(), &records);
    damage(&path, &ends);
    let damaged_len = fs::metadata(&path).unwrap().len();

    let (got, report) = replay(tmp.path());
    assert_eq!(got, records[..kept]);
    assert_eq!(report.corruptions.len(), 1, "{report:?}");
    let c = &report.corruptions[0];
    let cut_at = if kept == 0 { 0 } else { ends[kept - 1] };
    assert_eq!(c.path, path);
    assert_eq!(c.kind, kind);
    assert_eq!(c.offset, cut_at);
    assert_eq!(c.bytes_dropped, damaged_len - cut_at);
    assert_eq!(fs::metadata(&path).unwrap().len(), cut_at);

    let (again, report) = replay(tmp.path());
    assert_eq!(again, records[..kept]);
    assert!(report.corruptions.is_empty());
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    fs::OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}

fn flip(path: &Path, at: u64) {
    let mut data = fs::read(path).unwrap();
    data[at as usize] ^= 0x40;
    fs::write(path, data).unwrap();
}

#[test]
fn records_round_trip_across_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let records = five_records();
    written(tmp.path(), &records);
    let (wal, got, report) = open(tmp.path(), WalOptions::default());
    assert_eq!(got, records);
    assert_eq!(report.records, 5);
    assert_eq!(report.series, 2);
    assert_eq!(report.samples, 12);
    assert_eq!(report.segments, 1);
    assert!(report.corruptions.is_empty());
    // A fresh segment for this run; the old one is never appended to.
    assert_eq!(wal.segments(), 1..=2);
    log(&wal, &batch(9, 2));
    drop(wal);
    let (got, report) = replay(tmp.path());
    assert_eq!(got.len(), 6);
    assert_eq!(got[5], batch(9, 2));
    assert_eq!(report.segments, 2);
}

#[test]
fn empty_inputs_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(tmp.path(), WalOptions::default());
    wal.log_samples(&[]).unwrap();
    wal.log_series(std::iter::empty::<(u64, [(&str, &str); 0])>()).unwrap();
    assert_eq!(wal.stats().records, 0);
    drop(wal);
    assert_eq!(replay(tmp.path()).0, vec![]);
}

#[test]
fn segments_roll_at_the_size_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(tmp.path(), opts(150, FsyncPolicy::Interval(Duration::from_secs(3600))));
    let records: Vec<Owned> = (0..40).map(|i| batch(i, 10)).collect();
    for r in &records {
        log(&wal, r);
    }
    let range = wal.segments();
    assert_eq!(*range.start(), 1);
    assert!(*range.end() >= 4, "{range:?}");
    // Each finished segment was fsynced when it was rolled, and nothing else was.
    assert_eq!(wal.stats().fsyncs, u64::from(range.end() - 1));
    drop(wal);
    for f in segment_files(tmp.path()) {
        assert!(fs::metadata(&f).unwrap().len() <= 150, "{f:?}");
    }
    assert_eq!(replay(tmp.path()).0, records);

    // A record larger than a segment gets one of its own.
    let (wal, _, _) = open(tmp.path(), opts(100, FsyncPolicy::Never));
    let before = *wal.segments().end();
    log(&wal, &batch(1, 100));
    log(&wal, &batch(2, 100));
    assert_eq!(*wal.segments().end(), before + 1);
}

#[test]
fn fsync_policies() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(&tmp.path().join("a"), opts(DEFAULT_SEGMENT_SIZE, FsyncPolicy::Always));
    for i in 0..3 {
        log(&wal, &batch(i, 2));
    }
    assert_eq!(wal.stats().fsyncs, 3);

    let (wal, _, _) = open(&tmp.path().join("b"), opts(DEFAULT_SEGMENT_SIZE, FsyncPolicy::Never));
    for i in 0..3 {
        log(&wal, &batch(i, 2));
    }
    wal.sync_if_due().unwrap();
    assert_eq!(wal.stats().fsyncs, 0);
    wal.sync().unwrap();
    assert_eq!(wal.stats().fsyncs, 1);

    let (wal, _, _) =
        open(&tmp.path().join("c"), opts(DEFAULT_SEGMENT_SIZE, FsyncPolicy::Interval(Duration::ZERO)));
    log(&wal, &batch(0, 2));
    assert_eq!(wal.stats().fsyncs, 1);
    assert!(!wal.sync_if_due().unwrap(), "nothing unsynced");

    let hour = Duration::from_secs(3600);
    let (wal, _, _) = open(&tmp.path().join("d"), opts(DEFAULT_SEGMENT_SIZE, FsyncPolicy::Interval(hour)));
    log(&wal, &batch(0, 2));
    assert!(!wal.sync_if_due().unwrap());
    assert_eq!(wal.stats().fsyncs, 0);
    wal.writer.lock().last_sync -= hour;
    assert!(wal.sync_if_due().unwrap());
    assert_eq!(wal.stats().fsyncs, 1);
    wal.close().unwrap();
}

#[test]
fn truncated_header_is_cut() {
    check_damage(|p, _| append_bytes(p, &[2, 50, 0, 0]), 5, CorruptionKind::TruncatedHeader);
}

#[test]
fn truncated_payload_is_cut() {
    check_damage(
        |p, ends| {
            let f = fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(ends[4] - 3).unwrap();
        },
        4,
        CorruptionKind::TruncatedRecord { length: ends_len(4) },
    );
}

/// Payload length of record `i` of [`five_records`].
fn ends_len(i: usize) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    let (_, ends) = written(tmp.path(), &five_records());
    let start = if i == 0 { 0 } else { ends[i - 1] };
    ends[i] - start - HEADER_LEN as u64
}

#[test]
fn flipped_payload_byte_cuts_from_that_record() {
    check_damage(|p, ends| flip(p, ends[2] + HEADER_LEN as u64 + 3), 3, CorruptionKind::BadChecksum);
}

#[test]
fn flipped_crc_cuts_from_that_record() {
    check_damage(|p, ends| flip(p, ends[0] + 6), 1, CorruptionKind::BadChecksum);
}

#[test]
fn flipped_first_byte_cuts_everything() {
    check_damage(|p, _| flip(p, 1), 0, CorruptionKind::BadChecksum);
}

#[test]
fn garbage_appended_is_cut() {
    check_damage(
        |p, _| append_bytes(p, b"\x07this is no record at all, just bytes a crash left behind"),
        5,
        CorruptionKind::BadLength { length: u64::from(u32::from_le_bytes(*b"this")) },
    );
}

#[test]
fn garbage_length_is_cut() {
    check_damage(
        |p, _| append_bytes(p, &[2, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5]),
        5,
        CorruptionKind::BadLength { length: 0x7fff_ffff },
    );
    check_damage(
        |p, _| append_bytes(p, &[2, 0xff, 0xff, 0, 0, 1, 2, 3, 4, 5]),
        5,
        CorruptionKind::TruncatedRecord { length: 0xffff },
    );
}

#[test]
fn zero_filled_tail_is_cut() {
    check_damage(|p, _| append_bytes(p, &[0; 4096]), 5, CorruptionKind::Zeroed);
    // Garbage whose length fits in the file: only the checksum can tell.
    check_damage(
        |p, _| append_bytes(p, &[2, 3, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]),
        5,
        CorruptionKind::BadChecksum,
    );
    check_damage(|p, _| append_bytes(p, &[0; 5]), 5, CorruptionKind::TruncatedHeader);
}

#[test]
fn zeroed_middle_cuts_from_there() {
    check_damage(
        |p, ends| {
            let f = fs::OpenOptions::new().write(true).open(p).unwrap();
            f.write_all_at(&[0; 64], ends[1]).unwrap();
        },
        2,
        CorruptionKind::Zeroed,
    );
}

#[test]
fn damage_in_an_earlier_segment_drops_the_later_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(tmp.path(), opts(60, FsyncPolicy::Never));
    let records: Vec<Owned> = (0..30).map(|i| batch(i, 5)).collect();
    for r in &records {
        log(&wal, r);
    }
    drop(wal);
    let files = segment_files(tmp.path());
    assert!(files.len() >= 4);
    let damaged = &files[1];
    let in_first = replay_file_count(&files[0]);
    flip(damaged, 0);
    let later_bytes: u64 = files[2..].iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    let damaged_len = fs::metadata(damaged).unwrap().len();

    let (got, report) = replay(tmp.path());
    assert_eq!(got, records[..in_first]);
    let c = &report.corruptions[0];
    assert_eq!(c.offset, 0);
    assert_eq!(c.bytes_dropped, damaged_len + later_bytes);
    assert_eq!(c.segments_dropped, (3..=files.len() as u32).collect::<Vec<_>>());
    // Segments 1 and 2 (now empty) are left, plus the segment the replay's open started.
    assert_eq!(segment_files(tmp.path()).len(), 3);
}

fn replay_file_count(path: &Path) -> usize {
    let mut n = 0;
    let mut report = ReplayReport::default();
    Reader::default().read_file(path, &mut |_| n += 1, &mut report).unwrap();
    n
}

#[test]
fn unknown_record_types_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = written(tmp.path(), &[batch(1, 2)]);
    let mut rec = Vec::new();
    record::begin(&mut rec);
    rec.extend_from_slice(b"a tombstone from the future");
    record::finish(&mut rec, RecordType::Samples).unwrap();
    rec[0] = 9;
    let crc = record::checksum(&rec[..5], &rec[HEADER_LEN..]);
    rec[5..9].copy_from_slice(&crc.to_le_bytes());
    append_bytes(&path, &rec);
    let (wal, _, _) = open(tmp.path(), WalOptions::default());
    log(&wal, &batch(2, 2));
    drop(wal);
    let (got, report) = replay(tmp.path());
    assert_eq!(got, vec![batch(1, 2), batch(2, 2)]);
    assert_eq!(report.unknown_records, 1);
    assert!(report.corruptions.is_empty());
}

#[test]
fn a_checksummed_type_zero_or_undecodable_record_is_damage() {
    for (typ, payload, kind) in [
        (0u8, &b"x"[..], CorruptionKind::BadType(0)),
        (
            RecordType::Samples as u8,
            &[0x80u8][..],
            CorruptionKind::Undecodable("payload ends inside an entry"),
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (path, ends) = written(tmp.path(), &[batch(1, 2)]);
        let mut rec = Vec::new();
        record::begin(&mut rec);
        rec.extend_from_slice(payload);
        record::finish(&mut rec, RecordType::Samples).unwrap();
        rec[0] = typ;
        let crc = record::checksum(&rec[..5], &rec[HEADER_LEN..]);
        rec[5..9].copy_from_slice(&crc.to_le_bytes());
        append_bytes(&path, &rec);
        let (got, report) = replay(tmp.path());
        assert_eq!(got, vec![batch(1, 2)]);
        assert_eq!(report.corruptions[0].kind, kind);
        assert_eq!(report.corruptions[0].offset, ends[0]);
    }
}

#[test]
fn an_unusable_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    fs::write(&file, b"").unwrap();
    let dir = file.join("wal");
    let err = Wal::open(&dir, WalOptions::default(), |_| {}).err().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("cannot create WAL directory"), "{msg}");
    assert!(msg.contains(&*dir.to_string_lossy()), "{msg}");
    assert!(matches!(err, WalError::Io { .. }));
}

#[test]
fn an_unreadable_segment_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    // A directory where a segment should be: opening it for reading works, reading fails.
    fs::create_dir(tmp.path().join("00000001")).unwrap();
    let err = Wal::open(tmp.path(), WalOptions::default(), |_| {}).err().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("00000001"), "{msg}");
}

#[test]
fn truncate_before_deletes_old_segments_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(tmp.path(), opts(40, FsyncPolicy::Never));
    for i in 0..20 {
        log(&wal, &batch(i, 5));
    }
    let range = wal.segments();
    let last = *range.end();
    assert!(last >= 5);
    assert_eq!(wal.truncate_before(3).unwrap(), 2);
    assert_eq!(wal.segments(), 3..=last);
    // Never the segment being written.
    assert_eq!(wal.truncate_before(u32::MAX).unwrap(), last - 3);
    assert_eq!(wal.segments(), last..=last);
    log(&wal, &batch(99, 1));
    drop(wal);
    let (got, _) = replay(tmp.path());
    assert_eq!(got.last(), Some(&batch(99, 1)));
}

#[test]
fn roll_starts_a_new_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(tmp.path(), WalOptions::default());
    log(&wal, &batch(1, 1));
    assert_eq!(wal.roll().unwrap(), 2);
    // Nothing logged since: no new, empty segment.
    assert_eq!(wal.roll().unwrap(), 2);
    log(&wal, &batch(2, 1));
    assert_eq!(wal.segments(), 1..=2);
    drop(wal);
    assert_eq!(replay(tmp.path()).0, vec![batch(1, 1), batch(2, 1)]);
}

#[test]
fn concurrent_appends_stay_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(tmp.path(), opts(64 << 10, FsyncPolicy::Never));
    let wal = Arc::new(wal);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..200 {
                    log(&wal, &batch(t * 1000 + i, 1 + i % 50));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(wal);
    let (got, report) = replay(tmp.path());
    assert!(report.corruptions.is_empty());
    let mut seen: Vec<u64> = got
        .iter()
        .map(|r| match r {
            Owned::Samples(s) => {
                let i = s[0].series / 10;
                assert_eq!(r, &batch(i, 1 + (i % 1000) % 50));
                i
            }
            Owned::Series(_) => unreachable!(),
        })
        .collect();
    seen.sort_unstable();
    let expected: Vec<u64> = (0..4).flat_map(|t| (0..200).map(move |i| t * 1000 + i)).collect();
    assert_eq!(seen, expected);
}

fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::from_bits(0x7ff0_0000_0000_0002)),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (0xfff0_0000_0000_0001u64..=u64::MAX).prop_map(f64::from_bits),
    ]
}

fn any_record() -> impl Strategy<Value = Owned> {
    let sample = (
        prop_oneof![any::<u64>(), 0u64..1000],
        prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), 1_700_000_000_000i64..1_700_000_100_000],
        any_value(),
    )
        .prop_map(|(series, t, v)| RefSample { series, t, v });
    let one_series = (any::<u64>(), proptest::collection::vec(("[a-z_]{1,10}", "\\PC{0,20}"), 0..6))
        .prop_map(|(series, labels)| RefSeries { series, labels });
    prop_oneof![
        proptest::collection::vec(sample, 1..100).prop_map(Owned::Samples),
        proptest::collection::vec(one_series, 1..10).prop_map(Owned::Series),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_records_round_trip_through_segments(
        records in proptest::collection::vec(any_record(), 0..40),
        segment_size in 200u64..5000,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(tmp.path(), opts(segment_size, FsyncPolicy::Never));
        for r in &records {
            log(&wal, r);
        }
        drop(wal);
        let (got, report) = replay(tmp.path());
        prop_assert!(report.corruptions.is_empty());
        prop_assert_eq!(got, records);
    }

    #[test]
    fn any_cut_keeps_every_whole_record_before_it(
        records in proptest::collection::vec(any_record(), 1..12),
        cut_frac in 0.0f64..1.0,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let (path, ends) = written(tmp.path(), &records);
        let cut = (cut_frac * *ends.last().unwrap() as f64) as u64;
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
        let whole = ends.iter().take_while(|&&e| e <= cut).count();
        let (got, report) = replay(tmp.path());
        prop_assert_eq!(&got[..], &records[..whole]);
        let torn = whole == 0 && cut > 0 || whole > 0 && ends[whole - 1] != cut;
        prop_assert_eq!(report.corruptions.len(), usize::from(torn));
    }
}

/// The type byte of every record of a segment.
fn record_types(path: &Path) -> Vec<u8> {
    let data = fs::read(path).unwrap();
    let mut types = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let h = record::parse_header(data[at..at + HEADER_LEN].try_into().unwrap());
        types.push(h.typ);
        at += HEADER_LEN + h.len;
    }
    types
}

/// A scrape-like batch: consecutive refs, one timestamp, counters and one-decimal gauges.
fn scrape(seq: u64) -> Owned {
    Owned::Samples(
        (0..300u64)
            .map(|i| RefSample {
                series: 1 + i,
                t: 1_700_000_000_000 + seq as i64 * 15_000,
                v: if i % 2 == 0 { (i * 1000 + seq * i) as f64 } else { ((i + seq) % 1000) as f64 / 10.0 },
            })
            .collect(),
    )
}

#[test]
fn old_format_segments_still_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let old = WalOptions { compress: false, ..opts(DEFAULT_SEGMENT_SIZE, FsyncPolicy::Never) };
    let first = [series(1), scrape(0), scrape(1), batch(4, 3)];
    let (wal, _, _) = open(tmp.path(), old.clone());
    for r in &first {
        log(&wal, r);
    }
    drop(wal);
    assert_eq!(
        record_types(&segment_path(tmp.path(), 1)),
        vec![RecordType::Series as u8, 2, 2, 2],
        "compress off writes the first format"
    );
    // A new Vigil opens it and appends compressed records after it.
    let (wal, got, report) = open(tmp.path(), opts(DEFAULT_SEGMENT_SIZE, FsyncPolicy::Never));
    assert_eq!(got, first);
    assert!(report.corruptions.is_empty());
    let second = [series(2), scrape(2), scrape(3)];
    for r in &second {
        log(&wal, r);
    }
    drop(wal);
    let types = record_types(&segment_path(tmp.path(), 2));
    assert_eq!(types[1..], [RecordType::SamplesDelta as u8; 2]);
    let (got, _) = replay(tmp.path());
    assert_eq!(got, first.iter().chain(&second).cloned().collect::<Vec<_>>());
    let old_bytes = fs::metadata(segment_path(tmp.path(), 1)).unwrap().len();
    let new_bytes = fs::metadata(segment_path(tmp.path(), 2)).unwrap().len();
    assert!(new_bytes * 2 < old_bytes, "{new_bytes} vs {old_bytes}");
    // Checkpoints write the format the options ask for, and read both.
    let (wal, _, _) = open(tmp.path(), old);
    let through = wal.roll().unwrap() - 1;
    wal.checkpoint(through, |_| true, i64::MIN).unwrap();
    drop(wal);
    let cp = checkpoint::checkpoint_path(tmp.path(), through);
    assert!(record_types(&cp).iter().all(|&t| t == 1 || t == 2));
    assert_eq!(replay(tmp.path()).0, first.iter().chain(&second).cloned().collect::<Vec<_>>());
}

#[test]
fn a_failed_write_resets_the_value_state_on_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(tmp.path(), opts(DEFAULT_SEGMENT_SIZE, FsyncPolicy::Never));
    log(&wal, &scrape(0));
    let path = segment_path(tmp.path(), 1);
    // Swap in a read-only handle: the next write fails, as on a full disk.
    let writable = std::mem::replace(&mut wal.writer.lock().file, File::open(&path).unwrap());
    let Owned::Samples(lost) = scrape(1) else { unreachable!() };
    assert!(wal.log_samples(&lost).is_err());
    assert_eq!(wal.stats().write_errors, 1);
    wal.writer.lock().file = writable;
    // The encoder saw scrape 1's values, the file does not hold them.
    log(&wal, &scrape(2));
    log(&wal, &scrape(3));
    drop(wal);
    let (got, report) = replay(tmp.path());
    assert!(report.corruptions.is_empty());
    assert_eq!(got, vec![scrape(0), scrape(2), scrape(3)]);
}

#[test]
fn values_refer_back_across_records_but_not_across_segments() {
    let tmp = tempfile::tempdir().unwrap();
    // Two scrapes per segment or so.
    let (wal, _, _) = open(tmp.path(), opts(2500, FsyncPolicy::Never));
    let records: Vec<Owned> = (0..12).map(scrape).collect();
    for r in &records {
        log(&wal, r);
    }
    drop(wal);
    let files = segment_files(tmp.path());
    assert!(files.len() >= 4, "{files:?}");
    // Any segment replays on its own once the ones before it are gone.
    fs::remove_file(&files[0]).unwrap();
    let (got, report) = replay(tmp.path());
    assert!(report.corruptions.is_empty());
    let in_first = records.len() - got.len();
    assert_eq!(got, records[in_first..]);
}
