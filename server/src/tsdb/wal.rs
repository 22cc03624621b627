//! The write-ahead log of the head block: every series definition and sample batch the head
//! accepts is appended here first, so a restart can rebuild the head by replaying it. It owns
//! one directory (conventionally `<data>/wal`) and knows nothing of labels types, chunks or
//! the index: series arrive as `(ref, label pairs)` and samples as [`RefSample`]s.
//!
//! # On disk
//!
//! ```text
//! wal/00000001            segment files, 8-digit decimal numbers, replayed in numeric order
//! wal/00000002            the highest one is the one being written
//! wal/checkpoint.00000001 optional: live series and recent samples of segments <= 1
//! ```
//!
//! A segment is a plain sequence of records, with no file header and no padding; a record is
//! never split across segments. Byte layout of a record (little-endian):
//!
//! ```text
//! offset 0  type    u8    1 = Series, 2 = Samples (first format), 3 = Series (snappy),
//!                         4 = Samples (delta-coded); 0 is invalid, so zero-filled disk is damage
//! offset 1  length  u32   payload bytes, at most 256 MiB
//! offset 5  crc     u32   crc32c over bytes 0..5 followed by the payload
//! offset 9  payload
//!   1 Series : ( ref uvarint | n u32 | (len uvarint, name, len uvarint, value) * n ) *
//!   2 Samples: base_ref uvarint | base_t zigzag-varint
//!              | ( ref-base_ref zigzag-varint | t-base_t zigzag-varint | f64::to_bits u64 ) *
//!   3 Series : a type-1 payload compressed with snappy (raw format)
//!   4 Samples: flags | count | runs of ref deltas | runs of timestamp deltas | values, each
//!              value coded against the same series' previous value in this file: unchanged
//!              (runs of them share one byte), byte-packed XOR, or a decimal delta
//! ```
//!
//! Types 3 and 4 are what [`Wal`] writes by default, about 3 bytes per sample on a scrape load
//! against 11–13 for types 1 and 2 (see `record.rs` for the exact layout and BENCHMARKS.md for
//! the measurements); [`WalOptions::compress`] off writes 1 and 2, and replay reads all four.
//! A type-4 record depends on the records before it in its file, never on another file: the
//! writer starts every segment with no previous values, and after a failed write it forgets
//! them and flags the next record so the reader forgets them too. Damage therefore still loses
//! only what follows it.
//!
//! Deltas wrap, so every u64 ref and i64 timestamp round-trips, and values are restored to the
//! exact bits, so NaN payloads (the stale marker `0x7ff0000000000002`) and `-0.0` survive. New
//! record kinds (tombstones, exemplars) take new type numbers; replay skips a checksummed record
//! of a type it does not know and counts it, so an older Vigil can read a newer WAL, minus
//! those records (an older Vigil skips types 3 and 4 this way: to go back to one, turn
//! compression off and let the head be persisted first).
//!
//! A checkpoint file has the same record format; it is written as `checkpoint.N.tmp`, fsynced
//! and renamed, so it is either whole or absent.
//!
//! # How the parts fit
//!
//! [`Wal::open`] replays the latest checkpoint and then every later segment through the
//! caller's callback, repairs damage (below), and starts a fresh segment: it never appends to a
//! segment a crash may have torn. [`Wal::log_series`] and [`Wal::log_samples`] encode a record
//! into a buffer, then take the writer [`Mutex`] for one `pwrite(2)` at the segment's end (and
//! the fsync the policy asks for). Series records are encoded outside the lock; delta-coded
//! samples records inside it, since their coding depends on the records written before them
//! (≈ 10 ns per sample, paid back by the smaller write). A single mutex is enough: it keeps
//! records whole and in order. When
//! the segment would grow past [`WalOptions::segment_size`], the writer fsyncs it (unless the
//! policy is `Never`) and starts the next one. Once the head is persisted into a block, the
//! caller trims the log with [`Wal::checkpoint`] (which keeps what is still live) or
//! [`Wal::truncate_before`].
//!
//! # Durability
//!
//! An append is acknowledged when its `pwrite(2)` has returned: the bytes are in the kernel's
//! page cache, so they survive the process being killed (even SIGKILL or a panic). Surviving
//! power loss or a kernel crash needs fsync, governed by [`FsyncPolicy`]: `Always` fsyncs each
//! record before returning; `Interval` (the default) fsyncs when a segment is finished, as
//! Prometheus does, and also when an append or [`Wal::sync_if_due`] finds the interval elapsed,
//! so at most that much acknowledged data is at risk; `Never` leaves it to the kernel. A
//! failed fsync is returned as an error; as with any Linux program, retrying it later does not
//! prove the earlier data reached the disk.
//!
//! The WAL does not lock its directory: the owner of the data directory must make sure only
//! one process opens it.
//!
//! # Damage
//!
//! Replay stops at the first bad record: a header cut short, a length running past the end of
//! the file (or above the limit), a crc mismatch, zero-filled bytes, or a payload that does not
//! decode. That segment is truncated at the bad record's offset and every later segment is
//! deleted, as Prometheus's repair does: records past a hole cannot be trusted to be complete,
//! and since each run starts a new segment, damage normally only ever sits at the tail of the
//! last one. What was cut is logged with `tracing::warn!` and returned in
//! [`ReplayReport::corruptions`] for the `vigil_tsdb_wal_corruptions_total` metric. Damage
//! inside a checkpoint truncates only the checkpoint. Opening fails only for real I/O errors
//! (permissions, a read error), with the path in the message.
//!
//! A failed write (disk full, quota) may leave part of a record on disk. The writer remembers
//! the last good offset and truncates back to it before anything else is written, so a later
//! record never follows a half one.

mod checkpoint;
mod record;

use std::cell::RefCell;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::ops::RangeInclusive;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use checkpoint::CheckpointStats;
use record::{DecodeError, RecordType, SamplesEncoder, ValueState, HEADER_LEN, MAX_PAYLOAD};
pub use record::{RefSample, RefSeries};

/// Segment size Prometheus uses.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

/// Default interval of [`FsyncPolicy::Interval`].
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_secs(10);

/// When the WAL calls `fdatasync(2)`. Killing the process loses nothing acknowledged under any
/// policy; the policy decides how much a power loss can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before every append returns.
    Always,
    /// When a segment is finished, and when an append or [`Wal::sync_if_due`] finds this much
    /// time passed since the last fsync.
    Interval(Duration),
    /// Never; the kernel writes back when it likes.
    Never,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment is started when the next record would take the current one past this
    /// size. A record larger than this gets a segment of its own.
    pub segment_size: u64,
    pub fsync: FsyncPolicy,
    /// Write compressed records (snappy series, delta-coded samples: about a quarter of the
    /// bytes). Off writes the first record format, which Vigils older than the compressed
    /// format can replay (they skip records of types they do not know, losing them), as
    /// Prometheus's `--storage.tsdb.wal-compression=false` does. Replay reads both either way.
    pub compress: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            fsync: FsyncPolicy::Interval(DEFAULT_FSYNC_INTERVAL),
            compress: true,
        }
    }
}

/// A record handed to the replay callback. Series are owned so the head can keep their labels
/// without copying; samples borrow a buffer reused from record to record.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum Record<'a> {
    Series(Vec<RefSeries>),
    Samples(&'a [RefSample]),
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    #[error("WAL record of {len} bytes is larger than the limit of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    #[error("WAL segment numbers are exhausted in {}", dir.display())]
    SegmentsExhausted { dir: PathBuf },
    #[error("cannot checkpoint through segment {through}: segment {current} is still being written")]
    CheckpointActiveSegment { through: u32, current: u32 },
    #[error("WAL file {} is damaged at offset {offset}: {kind}", path.display())]
    Corrupt { path: PathBuf, offset: u64, kind: CorruptionKind },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io { action, path: path.to_path_buf(), source }
}

/// What made replay stop at a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorruptionKind {
    /// Fewer bytes than a record header were left.
    TruncatedHeader,
    /// The header promises more payload than the file holds.
    TruncatedRecord { length: u64 },
    /// The length field is above the 256 MiB record limit: garbage, not a record.
    BadLength { length: u64 },
    /// The header is all zero bytes, as file systems leave after a crash.
    Zeroed,
    /// The crc does not match the header and payload.
    BadChecksum,
    /// A checksummed record of type 0, which no writer produces.
    BadType(u8),
    /// A checksummed payload that does not decode.
    Undecodable(&'static str),
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptionKind::TruncatedHeader => write!(f, "truncated record header"),
            CorruptionKind::TruncatedRecord { length } => {
                write!(f, "record of {length} bytes runs past the end of the file")
            }
            CorruptionKind::BadLength { length } => write!(f, "record length {length} is above the limit"),
            CorruptionKind::Zeroed => write!(f, "zero-filled bytes"),
            CorruptionKind::BadChecksum => write!(f, "checksum mismatch"),
            CorruptionKind::BadType(t) => write!(f, "invalid record type {t}"),
            CorruptionKind::Undecodable(why) => write!(f, "undecodable record: {why}"),
        }
    }
}

/// One place where replay found damage and what it cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// The damaged file (a segment or a checkpoint).
    pub path: PathBuf,
    /// Offset of the first bad record; the file was truncated here.
    pub offset: u64,
    pub kind: CorruptionKind,
    /// Bytes removed: the rest of the damaged file plus every deleted later segment.
    pub bytes_dropped: u64,
    /// Later segments deleted because they followed the damage.
    pub segments_dropped: Vec<u32>,
}

/// What [`Wal::open`] replayed and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// The checkpoint replayed first, if any.
    pub checkpoint: Option<u32>,
    /// Segments read (after the checkpoint).
    pub segments: u32,
    pub records: u64,
    pub series: u64,
    pub samples: u64,
    pub bytes: u64,
    /// Checksummed records of a type this version does not know, skipped.
    pub unknown_records: u64,
    /// Damage found and cut; empty after a clean shutdown or a plain kill between records.
    pub corruptions: Vec<Corruption>,
}

/// Counters of the writer since open, for Vigil's own metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    pub records: u64,
    pub bytes: u64,
    pub fsyncs: u64,
    pub write_errors: u64,
    pub segments_created: u64,
}

/// An open write-ahead log. Appends take `&self`; share it with `Arc` between scrape tasks.
/// Appends block on `write(2)` (and fsync under `Always`), like any file I/O.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    writer: Mutex<Writer>,
    /// Serializes checkpoints and truncations, which list and delete files; appends never
    /// wait for it.
    maintenance: Mutex<()>,
}

struct Writer {
    file: File,
    path: PathBuf,
    segment: u32,
    /// Oldest segment still on disk.
    first: u32,
    /// End of the last whole record: where the next one goes.
    len: u64,
    /// A failed write may have left bytes past `len`; they are cut before the next write.
    torn: bool,
    unsynced: bool,
    last_sync: Instant,
    stats: WalStats,
    /// Samples records are encoded under the writer lock, because their values refer to the
    /// records before them in this segment: the encoder's state must follow the file's order.
    samples: SamplesEncoder,
    /// The samples record being encoded, reused.
    buf: Vec<u8>,
}

/// The per-thread encode buffer is dropped rather than kept once a record made it this big.
const KEEP_BUFFER: usize = 4 << 20;

thread_local! {
    static ENCODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn with_encode_buf<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    ENCODE_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let r = f(&mut buf);
            if buf.capacity() > KEEP_BUFFER {
                *buf = Vec::new();
            }
            r
        }
        // Only reachable if a caller's label iterator logs to a WAL itself.
        Err(_) => f(&mut Vec::new()),
    })
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`: replays the latest checkpoint and every
    /// later segment in order through `on_record`, cuts any damage (see the module doc), and
    /// starts a new segment for appends.
    pub fn open<F>(dir: &Path, opts: WalOptions, mut on_record: F) -> Result<(Wal, ReplayReport), WalError>
    where
        F: FnMut(Record<'_>),
    {
        fs::create_dir_all(dir).map_err(io_error("cannot create WAL directory", dir))?;
        let listing = Listing::read(dir)?;
        for tmp in &listing.temporary {
            fs::remove_file(tmp).map_err(io_error("cannot remove unfinished WAL checkpoint", tmp))?;
        }
        let mut report = ReplayReport::default();
        let mut reader = Reader::default();

        let checkpoint = listing.checkpoints.last().map(|(n, _)| *n);
        if let Some((n, path)) = listing.checkpoints.last() {
            report.checkpoint = Some(*n);
            if let Some(damage) = reader.read_file(path, &mut on_record, &mut report)? {
                let c = cut(path, damage, &[])?;
                report.corruptions.push(c);
            }
        }
        // Older checkpoints and segments a checkpoint covers are left over from a checkpoint
        // interrupted between its rename and its clean-up.
        for (_, path) in listing.checkpoints.iter().rev().skip(1) {
            fs::remove_file(path).map_err(io_error("cannot remove old WAL checkpoint", path))?;
        }
        let mut segments = Vec::with_capacity(listing.segments.len());
        for (n, path) in listing.segments {
            if checkpoint.is_some_and(|c| n <= c) {
                fs::remove_file(&path).map_err(io_error("cannot remove checkpointed WAL segment", &path))?;
            } else {
                segments.push((n, path));
            }
        }

        for i in 0..segments.len() {
            if i > 0 && segments[i].0 != segments[i - 1].0 + 1 {
                tracing::warn!(
                    after = segments[i - 1].0,
                    next = segments[i].0,
                    dir = %dir.display(),
                    "WAL segments are not consecutive; replaying what is there"
                );
            }
            report.segments += 1;
            if let Some(damage) = reader.read_file(&segments[i].1, &mut on_record, &mut report)? {
                let c = cut(&segments[i].1, damage, &segments[i + 1..])?;
                report.corruptions.push(c);
                segments.truncate(i + 1);
                break;
            }
        }

        let last = segments.last().map(|(n, _)| *n).or(checkpoint).unwrap_or(0);
        let next =
            last.checked_add(1).ok_or_else(|| WalError::SegmentsExhausted { dir: dir.to_path_buf() })?;
        let first = segments.first().map_or(next, |(n, _)| *n);
        let sync_dir = opts.fsync != FsyncPolicy::Never;
        let (file, path) = create_segment(dir, next, sync_dir)?;
        let writer = Writer {
            file,
            path,
            segment: next,
            first,
            len: 0,
            torn: false,
            unsynced: false,
            last_sync: Instant::now(),
            samples: SamplesEncoder::default(),
            buf: Vec::new(),
            stats: WalStats { segments_created: 1, ..WalStats::default() },
        };
        let wal =
            Wal { dir: dir.to_path_buf(), opts, writer: Mutex::new(writer), maintenance: Mutex::new(()) };
        Ok((wal, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one Series record defining each `(ref, labels)`. Nothing is written for an
    /// empty input.
    pub fn log_series<'a, S, L>(&self, series: S) -> Result<(), WalError>
    where
        S: IntoIterator<Item = (u64, L)>,
        L: IntoIterator<Item = (&'a str, &'a str)>,
    {
        with_encode_buf(|buf| {
            record::begin(buf);
            for (series, labels) in series {
                record::encode_series_entry(buf, series, labels);
            }
            if buf.len() == HEADER_LEN {
                return Ok(());
            }
            if !self.opts.compress {
                return self.append(buf, RecordType::Series);
            }
            // A scrape's new series share label names and most values (job, instance, metric
            // name prefixes), which snappy folds to a third or less.
            let mut packed = Vec::new();
            record::begin(&mut packed);
            let mut body = Vec::new();
            match record::compress_series(&buf[HEADER_LEN..], &mut body) {
                Some(typ) => {
                    packed.extend_from_slice(&body);
                    self.append(&mut packed, typ)
                }
                None => self.append(buf, RecordType::Series),
            }
        })
    }

    /// Appends one Samples record. Nothing is written for an empty slice.
    pub fn log_samples(&self, samples: &[RefSample]) -> Result<(), WalError> {
        if samples.is_empty() {
            return Ok(());
        }
        if !self.opts.compress {
            // Self-contained records: encoded outside the lock.
            return with_encode_buf(|buf| {
                record::begin(buf);
                record::encode_samples(buf, samples);
                self.append(buf, RecordType::Samples)
            });
        }
        self.writer.lock().append_samples(samples, &self.dir, &self.opts)
    }

    fn append(&self, buf: &mut [u8], typ: RecordType) -> Result<(), WalError> {
        record::finish(buf, typ).map_err(|len| WalError::RecordTooLarge { len, max: MAX_PAYLOAD })?;
        self.writer.lock().append(buf, &self.dir, &self.opts)
    }

    /// fsyncs the current segment if anything was written since the last fsync.
    pub fn sync(&self) -> Result<(), WalError> {
        self.writer.lock().sync()
    }

    /// Under [`FsyncPolicy::Interval`], fsyncs if the interval has passed with unsynced data;
    /// returns whether it did. For a ticker, so an idle WAL is synced too.
    pub fn sync_if_due(&self) -> Result<bool, WalError> {
        let FsyncPolicy::Interval(every) = self.opts.fsync else { return Ok(false) };
        let mut w = self.writer.lock();
        if w.unsynced && w.last_sync.elapsed() >= every {
            w.sync()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The segments on disk: oldest to the one being written.
    pub fn segments(&self) -> RangeInclusive<u32> {
        let w = self.writer.lock();
        w.first..=w.segment
    }

    /// Makes sure everything logged so far sits in segments a checkpoint or truncation can
    /// take: starts a new segment unless the current one is still empty. Returns the number of
    /// the segment now being written.
    pub fn roll(&self) -> Result<u32, WalError> {
        let mut w = self.writer.lock();
        if w.len > 0 {
            w.roll(&self.dir, &self.opts)?;
        }
        Ok(w.segment)
    }

    /// Deletes the segments numbered below `segment` (never the one being written), once the
    /// head data they hold is persisted elsewhere. Returns how many were deleted. Series
    /// definitions in them are lost: use [`Wal::checkpoint`] when later samples still need
    /// them.
    pub fn truncate_before(&self, segment: u32) -> Result<u32, WalError> {
        let _one_at_a_time = self.maintenance.lock();
        self.remove_segments_before(segment)
    }

    /// Deletes segments below `segment` and the one being written. The writer lock is held
    /// only to read and update the bounds, not while deleting.
    fn remove_segments_before(&self, segment: u32) -> Result<u32, WalError> {
        let limit = segment.min(self.writer.lock().segment);
        let mut removed = 0;
        for (n, path) in Listing::read(&self.dir)?.segments {
            if n < limit {
                fs::remove_file(&path).map_err(io_error("cannot remove WAL segment", &path))?;
                removed += 1;
            }
        }
        let mut w = self.writer.lock();
        w.first = w.first.max(limit);
        Ok(removed)
    }

    pub fn stats(&self) -> WalStats {
        self.writer.lock().stats
    }

    /// fsyncs (unless the policy is `Never`) and closes the WAL.
    pub fn close(self) -> Result<(), WalError> {
        if self.opts.fsync != FsyncPolicy::Never {
            self.writer.lock().sync()?;
        }
        Ok(())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if self.opts.fsync != FsyncPolicy::Never {
            if let Err(e) = self.writer.get_mut().sync() {
                tracing::warn!("{e}");
            }
        }
    }
}

impl Writer {
    fn append_samples(
        &mut self,
        samples: &[RefSample],
        dir: &Path,
        opts: &WalOptions,
    ) -> Result<(), WalError> {
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.encode_and_append(&mut buf, samples, dir, opts);
        if result.is_err() {
            // The encoder took these values as the series' previous ones, but the file may
            // not hold them: start over, and tell the reader to as well.
            self.samples.forget(true);
        }
        if buf.capacity() > KEEP_BUFFER {
            buf = Vec::new();
        }
        self.buf = buf;
        result
    }

    fn encode_and_append(
        &mut self,
        buf: &mut Vec<u8>,
        samples: &[RefSample],
        dir: &Path,
        opts: &WalOptions,
    ) -> Result<(), WalError> {
        record::begin(buf);
        self.samples.encode(buf, samples);
        if self.needs_roll(buf.len(), opts) {
            // The record was encoded against this segment's values; a new segment starts with
            // none, so it is encoded again (once per segment).
            self.roll(dir, opts)?;
            record::begin(buf);
            self.samples.encode(buf, samples);
        }
        record::finish(buf, RecordType::SamplesDelta)
            .map_err(|len| WalError::RecordTooLarge { len, max: MAX_PAYLOAD })?;
        self.append(buf, dir, opts)
    }

    fn needs_roll(&self, record_len: usize, opts: &WalOptions) -> bool {
        self.len > 0 && self.len + record_len as u64 > opts.segment_size
    }

    fn append(&mut self, rec: &[u8], dir: &Path, opts: &WalOptions) -> Result<(), WalError> {
        if self.torn {
            self.cut_torn()?;
        }
        if self.needs_roll(rec.len(), opts) {
            self.roll(dir, opts)?;
        }
        if let Err(source) = self.file.write_all_at(rec, self.len) {
            self.stats.write_errors += 1;
            self.torn = true;
            // Best effort now, so a crash right after leaves no half record; retried before
            // the next write if it fails.
            let _ = self.cut_torn();
            return Err(WalError::Io { action: "cannot write WAL segment", path: self.path.clone(), source });
        }
        self.len += rec.len() as u64;
        self.unsynced = true;
        self.stats.records += 1;
        self.stats.bytes += rec.len() as u64;
        match opts.fsync {
            FsyncPolicy::Always => self.sync(),
            FsyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync(),
            _ => Ok(()),
        }
    }

    fn cut_torn(&mut self) -> Result<(), WalError> {
        self.file.set_len(self.len).map_err(io_error("cannot truncate WAL segment", &self.path))?;
        self.torn = false;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), WalError> {
        if !self.unsynced {
            return Ok(());
        }
        self.file.sync_data().map_err(io_error("cannot fsync WAL segment", &self.path))?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        self.stats.fsyncs += 1;
        Ok(())
    }

    fn roll(&mut self, dir: &Path, opts: &WalOptions) -> Result<(), WalError> {
        let sync = opts.fsync != FsyncPolicy::Never;
        if sync {
            self.sync()?;
        }
        let next = self
            .segment
            .checked_add(1)
            .ok_or_else(|| WalError::SegmentsExhausted { dir: dir.to_path_buf() })?;
        let (file, path) = create_segment(dir, next, sync)?;
        self.file = file;
        self.path = path;
        self.segment = next;
        self.len = 0;
        self.torn = false;
        self.unsynced = false;
        self.samples.forget(false);
        self.stats.segments_created += 1;
        Ok(())
    }
}

pub(crate) fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:08}"))
}

fn create_segment(dir: &Path, n: u32, sync_dir: bool) -> Result<(File, PathBuf), WalError> {
    let path = segment_path(dir, n);
    // create_new: a leftover file of that number would mean two writers or a bug, and
    // appending after its contents would be wrong either way.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_error("cannot create WAL segment", &path))?;
    if sync_dir {
        sync_dir_of(dir)?;
    }
    Ok((file, path))
}

/// Makes a created, renamed or deleted entry of `dir` survive power loss.
fn sync_dir_of(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("cannot fsync WAL directory", dir))
}

/// The files of a WAL directory, sorted by number.
struct Listing {
    segments: Vec<(u32, PathBuf)>,
    checkpoints: Vec<(u32, PathBuf)>,
    temporary: Vec<PathBuf>,
}

const CHECKPOINT_PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";

fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Listing {
    fn read(dir: &Path) -> Result<Listing, WalError> {
        let mut listing = Listing { segments: Vec::new(), checkpoints: Vec::new(), temporary: Vec::new() };
        let entries = fs::read_dir(dir).map_err(io_error("cannot read WAL directory", dir))?;
        for entry in entries {
            let entry = entry.map_err(io_error("cannot read WAL directory", dir))?;
            let name = entry.file_name();
            // Names that are not ours (editor backups, lost+found) are left alone.
            let Some(name) = name.to_str() else { continue };
            if let Some(n) = parse_number(name) {
                listing.segments.push((n, entry.path()));
            } else if name.starts_with(CHECKPOINT_PREFIX) && name.ends_with(TMP_SUFFIX) {
                listing.temporary.push(entry.path());
            } else if let Some(n) = name.strip_prefix(CHECKPOINT_PREFIX).and_then(parse_number) {
                listing.checkpoints.push((n, entry.path()));
            }
        }
        listing.segments.sort_unstable_by_key(|(n, _)| *n);
        listing.checkpoints.sort_unstable_by_key(|(n, _)| *n);
        Ok(listing)
    }
}

/// Where and why a file stopped being readable, and its length then.
#[derive(Clone, Copy, Debug)]
struct Damage {
    offset: u64,
    kind: CorruptionKind,
    file_len: u64,
}

/// Truncates `path` at the damage and deletes `later` segments; reports and logs what went.
fn cut(path: &Path, damage: Damage, later: &[(u32, PathBuf)]) -> Result<Corruption, WalError> {
    let file =
        OpenOptions::new().write(true).open(path).map_err(io_error("cannot open damaged WAL file", path))?;
    file.set_len(damage.offset).map_err(io_error("cannot truncate damaged WAL file", path))?;
    file.sync_all().map_err(io_error("cannot fsync repaired WAL file", path))?;
    let mut bytes_dropped = damage.file_len - damage.offset;
    let mut segments_dropped = Vec::with_capacity(later.len());
    for (n, later_path) in later {
        let len = fs::metadata(later_path).map_err(io_error("cannot stat WAL segment", later_path))?.len();
        fs::remove_file(later_path).map_err(io_error("cannot remove WAL segment", later_path))?;
        bytes_dropped += len;
        segments_dropped.push(*n);
    }
    if let Some(dir) = path.parent() {
        sync_dir_of(dir)?;
    }
    tracing::warn!(
        file = %path.display(),
        offset = damage.offset,
        kind = %damage.kind,
        bytes_dropped,
        segments_dropped = ?segments_dropped,
        "WAL damaged: cut at the first bad record"
    );
    Ok(Corruption {
        path: path.to_path_buf(),
        offset: damage.offset,
        kind: damage.kind,
        bytes_dropped,
        segments_dropped,
    })
}

/// Replay buffers, reused across records and files.
#[derive(Default)]
struct Reader {
    payload: Vec<u8>,
    /// A compressed payload inflated.
    inflated: Vec<u8>,
    samples: Vec<RefSample>,
    /// Previous values of the file being read, for [`RecordType::SamplesDelta`].
    values: ValueState,
}

/// Replay reads through this much buffer; large payloads bypass it.
const READ_BUFFER: usize = 1 << 20;

impl Reader {
    /// Reads every record of one file into `on_record`, stopping at the first damage.
    fn read_file(
        &mut self,
        path: &Path,
        on_record: &mut dyn FnMut(Record<'_>),
        report: &mut ReplayReport,
    ) -> Result<Option<Damage>, WalError> {
        let file = File::open(path).map_err(io_error("cannot open WAL file", path))?;
        let file_len = file.metadata().map_err(io_error("cannot stat WAL file", path))?.len();
        let mut r = BufReader::with_capacity(READ_BUFFER, file);
        let mut offset = 0u64;
        // Every file is encoded from an empty state (see record.rs).
        self.values.clear();
        let damage = |offset, kind| Ok(Some(Damage { offset, kind, file_len }));
        loop {
            let left = file_len - offset;
            if left == 0 {
                return Ok(None);
            }
            if left < HEADER_LEN as u64 {
                return damage(offset, CorruptionKind::TruncatedHeader);
            }
            let mut h = [0u8; HEADER_LEN];
            if !read_exact(&mut r, &mut h, path)? {
                return damage(offset, CorruptionKind::TruncatedHeader);
            }
            if h == [0; HEADER_LEN] {
                return damage(offset, CorruptionKind::Zeroed);
            }
            let header = record::parse_header(&h);
            let length = header.len as u64;
            if header.len > MAX_PAYLOAD {
                return damage(offset, CorruptionKind::BadLength { length });
            }
            if length > left - HEADER_LEN as u64 {
                return damage(offset, CorruptionKind::TruncatedRecord { length });
            }
            // read_to_end fills the buffer without zeroing it first.
            self.payload.clear();
            let read = (&mut r).take(length).read_to_end(&mut self.payload);
            read.map_err(io_error("cannot read WAL file", path))?;
            if self.payload.len() != header.len {
                return damage(offset, CorruptionKind::TruncatedRecord { length });
            }
            if record::checksum(&h[..5], &self.payload) != header.crc {
                return damage(offset, CorruptionKind::BadChecksum);
            }
            match self.deliver(header.typ, on_record, report) {
                Ok(()) => {}
                Err(kind) => return damage(offset, kind),
            }
            offset += HEADER_LEN as u64 + length;
            report.records += 1;
            report.bytes += HEADER_LEN as u64 + length;
        }
    }

    fn deliver(
        &mut self,
        typ: u8,
        on_record: &mut dyn FnMut(Record<'_>),
        report: &mut ReplayReport,
    ) -> Result<(), CorruptionKind> {
        let undecodable = |e: DecodeError| CorruptionKind::Undecodable(e.describe());
        match RecordType::from_byte(typ) {
            Some(RecordType::Series) => {
                let mut series = Vec::new();
                record::decode_series(&self.payload, &mut series).map_err(undecodable)?;
                report.series += series.len() as u64;
                on_record(Record::Series(series));
            }
            Some(RecordType::SeriesSnappy) => {
                record::decompress_series(&self.payload, &mut self.inflated).map_err(undecodable)?;
                let mut series = Vec::new();
                record::decode_series(&self.inflated, &mut series).map_err(undecodable)?;
                report.series += series.len() as u64;
                on_record(Record::Series(series));
            }
            Some(RecordType::Samples) => {
                record::decode_samples(&self.payload, &mut self.samples).map_err(undecodable)?;
                report.samples += self.samples.len() as u64;
                on_record(Record::Samples(&self.samples));
            }
            Some(RecordType::SamplesDelta) => {
                record::decode_samples_delta(&self.payload, &mut self.values, &mut self.samples)
                    .map_err(undecodable)?;
                report.samples += self.samples.len() as u64;
                on_record(Record::Samples(&self.samples));
            }
            None if typ == 0 => return Err(CorruptionKind::BadType(typ)),
            None => {
                if report.unknown_records == 0 {
                    tracing::warn!(record_type = typ, "skipping WAL records of an unknown type");
                }
                report.unknown_records += 1;
            }
        }
        Ok(())
    }
}

/// `read_exact` that reports a short file as `false` rather than an error: the file shrank
/// under us, which is damage, not an I/O failure.
fn read_exact(r: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<bool, WalError> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(source) => Err(WalError::Io { action: "cannot read WAL file", path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests;
