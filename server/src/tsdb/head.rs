//! The head: the in-memory, appendable part of the TSDB that holds the most recent samples.
//!
//! Series are [`MemSeries`], each behind its own mutex, with sealed [`Chunk`]s and one open
//! [`ChunkEncoder`]. They are found two ways through a fixed array of lock stripes (as
//! Prometheus's `stripeSeries`): by label hash (with collisions resolved by comparing the full
//! label set) when appending, and by [`SeriesRef`] when a query resolves index postings or a
//! scrape appends by ref. Refs are handed out in increasing order and never reused while the
//! process lives. The inverted index ([`MemIndex`]) sits behind one reader-writer lock that is
//! only written when a series is created, so steady-state appends never touch a global lock; only
//! the commit log (the WAL, through [`HeadLog`]) is shared by all appenders.
//!
//! Memory per series is what the head is sized by, so the per-series structures are kept small
//! (measured in BENCHMARKS.md, "Head"): the hash map holds one series per label hash inline and
//! keeps the rare second series with the same hash in a side list; both maps hash with a cheap
//! function (label hashes are already xxHash64); sealed chunks sit in an exactly sized boxed
//! slice; the out-of-order buffer is a pointer that stays null unless used; and the newest
//! in-order timestamp is read from the chunks instead of being stored again.
//!
//! Appends go through an [`Appender`]: samples are collected, then [`Appender::commit`] locks
//! every series of the batch in ref order (no deadlock between concurrent batches; a scrape
//! appends in the same order every time, so the batch is usually sorted already and is only
//! checked), validates each sample against the series' newest timestamp (out-of-order samples
//! outside the configured window are rejected and counted; an identical re-sent sample is
//! ignored), writes the batch to the log, and only then applies it. A failed log write therefore
//! applies nothing: a batch commits all or nothing. Samples older than the newest but inside the
//! out-of-order window go to a small sorted per-series buffer that queries merge with the chunks.
//! The open chunk is cut when it is full or when a sample falls into the next block range (see
//! [`HeadOptions::block_range_ms`]), so a block takes whole chunks. The open chunk is written in
//! the appendable XOR encoding, 4–5 times the size of the packed one a sealed chunk gets; with
//! [`HeadOptions::repack_every`] set, the part of the chunk written so far is packed every so many
//! samples (the last sealed chunk then is that packed first part, merged into the full chunk when
//! it is cut), trading append CPU for memory (both measured in BENCHMARKS.md, "Head").

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard, RwLock};

use super::chunk::{Chunk, ChunkEncoder, TARGET_SAMPLES_PER_CHUNK};
use super::index::{IndexStats, Matcher, MemIndex, SeriesRef};
use super::labels::{fmix64, Labels, PassThrough};
use super::wal::RefSample;

/// Where committed batches are made durable before they become visible; the WAL in production.
pub trait HeadLog: Send + Sync {
    /// Records new series before any samples that reference them.
    fn log_series(&self, series: &[(SeriesRef, &Labels)]) -> Result<(), LogError>;
    fn log_samples(&self, samples: &[RefSample]) -> Result<(), LogError>;
}

/// A commit-log failure, kept as text plus its source so the head stays independent of the WAL.
pub type LogError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("unknown series ref {0}")]
    UnknownSeries(SeriesRef),
    #[error("writing the batch to the write-ahead log failed, nothing was stored: {0}")]
    Log(#[source] LogError),
}

/// Two hours, as Prometheus.
pub const DEFAULT_BLOCK_RANGE_MS: i64 = 2 * 3600 * 1000;

#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// How far behind a series' newest sample an older sample is still accepted, in ms.
    pub out_of_order_window_ms: i64,
    /// Samples per chunk before it is sealed.
    pub samples_per_chunk: usize,
    /// Lock stripes; a power of two.
    pub stripes: usize,
    /// Chunks are cut at multiples of this (ms), so a block of this range takes whole chunks.
    pub block_range_ms: i64,
    /// Once the open chunk holds this many samples, and the chunk is not full yet, they are
    /// packed together with the part of the chunk packed before, so that at most this many
    /// samples sit in the open encoding (several times larger than the packed one). 0 packs only
    /// when the chunk is cut.
    pub repack_every: usize,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            out_of_order_window_ms: 0,
            samples_per_chunk: TARGET_SAMPLES_PER_CHUNK,
            stripes: 1024,
            block_range_ms: DEFAULT_BLOCK_RANGE_MS,
            repack_every: 0,
        }
    }
}

/// What one commit did. Rejected samples are reported, not errors: as in a Prometheus scrape,
/// the rest of the batch is stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    pub appended: usize,
    pub out_of_order: usize,
    /// A different value for a timestamp the series already has.
    pub duplicate_timestamp: usize,
    /// Identical samples sent again (ignored, as Prometheus does).
    pub identical: usize,
    /// Older than the head's lower bound: that time range is already persisted in a block.
    pub out_of_bounds: usize,
}

/// Sizes of the head's sample data, from [`Head::chunk_stats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChunkStats {
    pub series: usize,
    pub sealed_chunks: usize,
    pub sealed_samples: usize,
    /// Encoded bytes of the sealed chunks.
    pub sealed_bytes: usize,
    pub open_samples: usize,
    /// Encoded bytes of the open chunks, header included, spare buffer capacity not.
    pub open_bytes: usize,
    pub out_of_order_samples: usize,
}

/// Counters for `vigil_tsdb_*` metrics.
#[derive(Debug, Default)]
pub struct HeadCounters {
    pub samples_appended: AtomicU64,
    pub out_of_order_rejected: AtomicU64,
    pub duplicate_rejected: AtomicU64,
    pub out_of_bounds_rejected: AtomicU64,
    pub series_created: AtomicU64,
    pub series_removed: AtomicU64,
}

/// One series in the head.
pub struct MemSeries {
    pub series_ref: SeriesRef,
    pub labels: Labels,
    data: Mutex<SeriesData>,
}

struct SeriesData {
    open: ChunkEncoder,
    /// Sealed chunks as their bytes alone, 16 bytes each instead of the 40 of a [`Chunk`] (which
    /// caches its header fields): a query or truncation re-reads the header, which costs far
    /// less than decoding the samples it is about to do anyway. Exactly sized: a series cuts a
    /// chunk every 30 minutes, so reallocating on each cut costs nothing measurable, while a
    /// `Vec` would keep up to half its capacity spare.
    sealed: Box<[Arc<[u8]>]>,
    /// Bits of the newest in-order value, to tell an identical re-sent sample from a conflicting
    /// one without decoding the chunk.
    last_bits: u64,
    /// Out-of-order samples, sorted by time; allocated only when used, and boxed so that the
    /// nearly all series that never get one pay 8 bytes for it rather than 24.
    ooo: Option<Box<OooSamples>>,
    /// Samples in the last sealed chunk when that is the packed first part of the chunk still
    /// being written (see [`HeadOptions::repack_every`]), else 0.
    partial: u16,
    /// Set once the series record is in the log, so it is logged exactly once.
    logged: bool,
    /// Set (under the lock) when truncation drops the series from the head; a commit that still
    /// holds it re-resolves the series by labels instead of writing into a detached series.
    removed: bool,
}

impl SeriesData {
    fn new(logged: bool) -> SeriesData {
        SeriesData {
            open: ChunkEncoder::new(),
            sealed: Box::default(),
            last_bits: 0,
            ooo: None,
            partial: 0,
            logged,
            removed: false,
        }
    }

    /// Newest in-order timestamp, `i64::MIN` when there is none. The open chunk is empty only
    /// before the first sample or after truncation emptied it, and sealed chunks are never empty.
    #[inline]
    fn last_t(&self) -> i64 {
        match self.open.max_time() {
            Some(t) => t,
            None => self.sealed.last().and_then(chunk).map_or(i64::MIN, |c| c.max_time()),
        }
    }

    fn ooo(&self) -> &[(i64, f64)] {
        self.ooo.as_deref().map_or(&[], |o| o.0.as_slice())
    }

    /// Seals the open chunk, merged with its packed first part if there is one.
    fn finish_chunk(&mut self) {
        let open = std::mem::take(&mut self.open);
        let done = self.merge_partial(open);
        if self.partial > 0 {
            if let Some(last) = self.sealed.last_mut() {
                *last = Arc::from(done.as_bytes());
                self.partial = 0;
                return;
            }
        }
        self.partial = 0;
        self.push_sealed(done);
    }

    /// Packs the open chunk into the chunk's first part, leaving the open chunk empty.
    fn repack(&mut self) {
        let open = std::mem::take(&mut self.open);
        let done = self.merge_partial(open);
        let n = u16::try_from(done.len()).unwrap_or(u16::MAX);
        match self.sealed.last_mut() {
            Some(last) if self.partial > 0 => *last = Arc::from(done.as_bytes()),
            _ => self.push_sealed(done),
        }
        self.partial = n;
    }

    fn merge_partial(&self, open: ChunkEncoder) -> Chunk {
        let Some(first) = self.sealed.last().filter(|_| self.partial > 0).and_then(chunk) else {
            return open.seal();
        };
        let mut all = ChunkEncoder::new();
        for (t, v) in first.iter().chain(open.iter()) {
            all.append(t, v);
        }
        all.seal()
    }

    fn push_sealed(&mut self, chunk: Chunk) {
        let mut all = std::mem::take(&mut self.sealed).into_vec();
        all.reserve_exact(1);
        all.push(Arc::from(chunk.as_bytes()));
        self.sealed = all.into_boxed_slice();
    }
}

struct OooSamples(Vec<(i64, f64)>);

/// Reads back a sealed chunk the head stored. The bytes came from [`ChunkEncoder::seal`], so
/// they always parse; were the chunk module ever to disagree with itself, leaving the chunk out
/// is all that is left to do.
fn chunk(bytes: &Arc<[u8]>) -> Option<Chunk> {
    let parsed = Chunk::from_bytes(bytes.clone());
    debug_assert!(parsed.is_ok(), "head chunk does not parse: {parsed:?}");
    parsed.ok()
}

/// Mixes a series ref: refs are consecutive and every stripe sees every 1024th one, so their
/// low bits alone would pile into a few buckets. SipHash (std's default) costs several times
/// more per lookup, and a lookup per sample is on the append path.
#[derive(Default)]
struct RefHasher(u64);

impl Hasher for RefHasher {
    fn finish(&self) -> u64 {
        fmix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type ByHash = HashMap<u64, Arc<MemSeries>, PassThrough>;
type ByRef = HashMap<SeriesRef, Arc<MemSeries>, BuildHasherDefault<RefHasher>>;

#[derive(Default)]
struct Stripe {
    /// The first series created with a given label hash.
    by_hash: ByHash,
    /// Series whose label hash equals that of a series in `by_hash`: with a 64-bit hash,
    /// practically never, so a list searched linearly.
    collisions: Vec<(u64, Arc<MemSeries>)>,
    by_ref: ByRef,
}

impl Stripe {
    fn find(&self, hash: u64, labels: &Labels) -> Option<&Arc<MemSeries>> {
        let first = self.by_hash.get(&hash)?;
        if first.labels == *labels {
            return Some(first);
        }
        self.collisions.iter().find(|(h, s)| *h == hash && s.labels == *labels).map(|(_, s)| s)
    }

    fn insert_hash(&mut self, hash: u64, series: Arc<MemSeries>) {
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(series);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.collisions.push((hash, series)),
        }
    }

    fn remove_hash(&mut self, hash: u64, r: SeriesRef) {
        if self.by_hash.get(&hash).is_some_and(|s| s.series_ref == r) {
            self.by_hash.remove(&hash);
            // Promote a colliding series so lookups keep finding it through the map.
            if let Some(i) = self.collisions.iter().position(|(h, _)| *h == hash) {
                let (_, s) = self.collisions.swap_remove(i);
                self.by_hash.insert(hash, s);
            }
        } else {
            self.collisions.retain(|(h, s)| !(*h == hash && s.series_ref == r));
        }
        if self.collisions.is_empty() {
            self.collisions = Vec::new();
        }
    }
}

pub struct Head {
    stripes: Box<[RwLock<Stripe>]>,
    mask: u64,
    index: RwLock<MemIndex>,
    next_ref: AtomicU64,
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// Samples before this are refused: their time range is already in a block.
    min_valid_time: AtomicI64,
    /// The out-of-order window in force (starts as the option; a config reload may change it).
    ooo_window_ms: AtomicI64,
    opts: HeadOptions,
    log: Option<Box<dyn HeadLog>>,
    /// Size of the last committed batch, so the next appender starts with room for as many
    /// samples instead of growing its buffer ten times over for a large scrape.
    batch_hint: AtomicUsize,
    pub counters: HeadCounters,
    /// Called after every successful commit (see [`Head::set_commit_hook`]).
    commit_hook: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Head {
    pub fn new(opts: HeadOptions, log: Option<Box<dyn HeadLog>>) -> Head {
        let n = opts.stripes.max(1).next_power_of_two();
        Head {
            stripes: (0..n).map(|_| RwLock::new(Stripe::default())).collect(),
            mask: (n - 1) as u64,
            index: RwLock::new(MemIndex::new()),
            next_ref: AtomicU64::new(1),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(i64::MIN),
            ooo_window_ms: AtomicI64::new(opts.out_of_order_window_ms),
            opts,
            log,
            batch_hint: AtomicUsize::new(0),
            counters: HeadCounters::default(),
            commit_hook: std::sync::OnceLock::new(),
        }
    }

    /// Installs a function called after every successful commit, on the committing thread, so
    /// readers can follow new data without polling. It must be quick and must not append. Only
    /// the first hook is kept; returns whether this one was installed.
    pub fn set_commit_hook(&self, hook: Box<dyn Fn() + Send + Sync>) -> bool {
        self.commit_hook.set(hook).is_ok()
    }

    pub fn appender(&self) -> Appender<'_> {
        // Capped so that one huge batch (a WAL replay record) does not set every scrape's size.
        let hint = self.batch_hint.load(Ordering::Relaxed).min(1 << 16);
        Appender { head: self, pending: Vec::with_capacity(hint) }
    }

    pub fn series_count(&self) -> usize {
        self.index.read().series_count()
    }

    /// Oldest and newest sample time, or `None` when the head is empty.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (min, max) = (self.min_time.load(Ordering::Acquire), self.max_time.load(Ordering::Acquire));
        (min <= max).then_some((min, max))
    }

    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_time.load(Ordering::Acquire)
    }

    /// Refuses samples before `t` from now on (never moves backwards).
    /// Changes how far behind a series' newest sample older samples are still accepted.
    pub fn set_out_of_order_window(&self, ms: i64) {
        self.ooo_window_ms.store(ms.max(0), Ordering::Relaxed);
    }

    pub fn out_of_order_window(&self) -> i64 {
        self.ooo_window_ms.load(Ordering::Relaxed)
    }

    pub fn set_min_valid_time(&self, t: i64) {
        self.min_valid_time.fetch_max(t, Ordering::AcqRel);
    }

    /// Every series, sorted by labels.
    pub fn series_sorted(&self) -> Vec<Arc<MemSeries>> {
        let refs = self.index.read().all_series().to_vec();
        let mut all: Vec<Arc<MemSeries>> = refs.into_iter().filter_map(|r| self.series_by_ref(r)).collect();
        all.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        all
    }

    /// Drops every sample before `before` (persisted in a block by now) and the series left
    /// without samples. Returns how many series were removed.
    pub fn truncate(&self, before: i64) -> usize {
        self.set_min_valid_time(before);
        let refs = self.index.read().all_series().to_vec();
        let mut removed = Vec::new();
        let mut min_left = i64::MAX;
        for r in refs {
            let Some(series) = self.series_by_ref(r) else { continue };
            let mut d = series.data.lock();
            let ends_before = |b: &Arc<[u8]>| chunk(b).is_none_or(|c| c.max_time() < before);
            if d.partial > 0 && d.sealed.last().is_some_and(ends_before) {
                d.partial = 0;
            }
            if d.sealed.iter().any(ends_before) {
                let kept: Vec<Arc<[u8]>> = d.sealed.iter().filter(|b| !ends_before(b)).cloned().collect();
                d.sealed = kept.into_boxed_slice();
            }
            if let Some(ooo) = d.ooo.as_mut() {
                ooo.0.retain(|&(t, _)| t >= before);
                if ooo.0.is_empty() {
                    d.ooo = None;
                }
            }
            if d.open.max_time().is_some_and(|t| t < before) {
                d.open = ChunkEncoder::new();
            }
            let oldest = [
                d.sealed.first().and_then(chunk).map(|c| c.min_time()),
                d.open.min_time(),
                d.ooo().first().map(|s| s.0),
            ]
            .into_iter()
            .flatten()
            .min();
            match oldest {
                Some(t) => min_left = min_left.min(t),
                None => {
                    d.removed = true;
                    drop(d);
                    removed.push(series);
                }
            }
        }
        for series in &removed {
            let r = series.series_ref;
            let hash = series.labels.stable_hash();
            self.stripes[(hash & self.mask) as usize].write().remove_hash(hash, r);
            self.stripes[(r & self.mask) as usize].write().by_ref.remove(&r);
        }
        self.index.write().remove_batch(removed.iter().map(|s| (s.series_ref, &s.labels)));
        self.min_time.store(min_left, Ordering::Release);
        if min_left == i64::MAX {
            self.max_time.store(i64::MIN, Ordering::Release);
        }
        self.counters.series_removed.fetch_add(removed.len() as u64, Ordering::Relaxed);
        removed.len()
    }

    pub fn series_by_ref(&self, r: SeriesRef) -> Option<Arc<MemSeries>> {
        self.stripes[(r & self.mask) as usize].read().by_ref.get(&r).cloned()
    }

    /// Finds the series with these labels, creating (and indexing) it if new.
    pub fn get_or_create(&self, labels: &Labels) -> Arc<MemSeries> {
        let hash = labels.stable_hash();
        let stripe = &self.stripes[(hash & self.mask) as usize];
        if let Some(s) = stripe.read().find(hash, labels) {
            return s.clone();
        }
        let series = {
            let mut w = stripe.write();
            // Another appender may have created it between our read and write lock.
            if let Some(s) = w.find(hash, labels) {
                return s.clone();
            }
            let r = self.next_ref.fetch_add(1, Ordering::Relaxed);
            let series = Arc::new(MemSeries {
                series_ref: r,
                labels: labels.clone(),
                data: Mutex::new(SeriesData::new(false)),
            });
            w.insert_hash(hash, series.clone());
            series
        };
        let r = series.series_ref;
        self.stripes[(r & self.mask) as usize].write().by_ref.insert(r, series.clone());
        self.index.write().add(r, labels);
        self.counters.series_created.fetch_add(1, Ordering::Relaxed);
        series
    }

    /// Re-creates a series with the ref it had before a restart (WAL replay). Keeps refs stable
    /// across the WAL so later sample records resolve.
    pub fn restore_series(&self, r: SeriesRef, labels: &Labels) -> Arc<MemSeries> {
        let hash = labels.stable_hash();
        let series = {
            let mut w = self.stripes[(hash & self.mask) as usize].write();
            if let Some(s) = w.find(hash, labels) {
                return s.clone();
            }
            let series = Arc::new(MemSeries {
                series_ref: r,
                labels: labels.clone(),
                data: Mutex::new(SeriesData::new(true)),
            });
            w.insert_hash(hash, series.clone());
            series
        };
        self.stripes[(r & self.mask) as usize].write().by_ref.insert(r, series.clone());
        self.index.write().add(r, labels);
        self.next_ref.fetch_max(r + 1, Ordering::Relaxed);
        series
    }

    /// Applies replayed samples without logging them again; out-of-order rules still apply.
    /// Returns what was applied and how many samples named a series the log never defined
    /// (possible only after damage was cut from the log); those are skipped.
    pub fn restore_samples(&self, samples: &[RefSample]) -> (CommitStats, usize) {
        let mut app = self.appender();
        app.pending.reserve(samples.len());
        let mut unknown = 0;
        for s in samples {
            if app.append_ref(s.series, s.t, s.v).is_err() {
                unknown += 1;
            }
        }
        // Without a log, commit cannot fail.
        (app.commit_inner(false).unwrap_or_default(), unknown)
    }

    /// Installs the commit log once replay has rebuilt the head from it.
    pub fn set_log(&mut self, log: Box<dyn HeadLog>) {
        self.log = Some(log);
    }

    /// Series matching all matchers with their samples in `[mint, maxt]`, sorted by labels.
    /// Series without samples in the range are left out.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        let refs = self.index.read().select(matchers);
        let mut out: Vec<SeriesSamples> = refs
            .into_iter()
            .filter_map(|r| self.series_by_ref(r))
            .filter_map(|s| s.snapshot(mint, maxt))
            .collect();
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        self.index.read().label_names(matchers)
    }

    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        self.index.read().label_values(name, matchers)
    }

    pub fn index_stats(&self, top_n: usize) -> IndexStats {
        self.index.read().stats(top_n)
    }

    /// What the head's samples take, counted series by series (takes each series lock briefly).
    pub fn chunk_stats(&self) -> ChunkStats {
        let mut st = ChunkStats::default();
        for r in self.index.read().all_series().to_vec() {
            let Some(series) = self.series_by_ref(r) else { continue };
            let d = series.data.lock();
            st.series += 1;
            st.sealed_chunks += d.sealed.len();
            st.sealed_samples += d.sealed.iter().filter_map(chunk).map(|c| c.len()).sum::<usize>();
            st.sealed_bytes += d.sealed.iter().map(|b| b.len()).sum::<usize>();
            st.open_samples += d.open.len();
            st.open_bytes += if d.open.is_empty() { 0 } else { d.open.byte_len() };
            st.out_of_order_samples += d.ooo().len();
        }
        st
    }

    fn note_time(&self, t: i64) {
        self.min_time.fetch_min(t, Ordering::AcqRel);
        self.max_time.fetch_max(t, Ordering::AcqRel);
    }
}

impl MemSeries {
    /// Copies out what a query needs so the series lock is held only briefly: sealed chunks are
    /// shared (reference-counted), the open chunk is sealed into a private copy.
    pub(crate) fn snapshot(&self, mint: i64, maxt: i64) -> Option<SeriesSamples> {
        let d = self.data.lock();
        let overlaps = |lo: i64, hi: i64| lo <= maxt && hi >= mint;
        // Headers are read after the lock is released; cloning every handle is cheap.
        let sealed: Vec<Arc<[u8]>> = d.sealed.to_vec();
        let open = match (d.open.min_time(), d.open.max_time()) {
            // A copy of at most one chunk's bytes; the query then reads without the lock.
            (Some(lo), Some(hi)) if overlaps(lo, hi) => Some(d.open.clone().seal_xor()),
            _ => None,
        };
        let ooo: Vec<(i64, f64)> = d.ooo().iter().copied().filter(|&(t, _)| t >= mint && t <= maxt).collect();
        drop(d);
        let chunks: Vec<Chunk> = sealed
            .iter()
            .filter_map(chunk)
            .filter(|c| !c.is_empty() && overlaps(c.min_time(), c.max_time()))
            .chain(open)
            .collect();
        if chunks.is_empty() && ooo.is_empty() {
            return None;
        }
        Some(SeriesSamples {
            series_ref: self.series_ref,
            labels: self.labels.clone(),
            chunks,
            ooo,
            mint,
            maxt,
        })
    }
}

/// One selected series: its labels and an iterator source over its samples in the range.
pub struct SeriesSamples {
    /// The head's ref; 0 for a series found only in blocks.
    pub series_ref: SeriesRef,
    pub labels: Labels,
    chunks: Vec<Chunk>,
    ooo: Vec<(i64, f64)>,
    mint: i64,
    maxt: i64,
}

impl SeriesSamples {
    /// A series read from blocks only.
    pub fn from_chunks(labels: Labels, chunks: Vec<Chunk>, mint: i64, maxt: i64) -> SeriesSamples {
        SeriesSamples { series_ref: 0, labels, chunks, ooo: Vec::new(), mint, maxt }
    }

    /// Puts older chunks (from blocks, which end before the head begins) in front.
    pub fn prepend_chunks(&mut self, mut older: Vec<Chunk>) {
        older.append(&mut self.chunks);
        self.chunks = older;
    }

    /// Samples in `[mint, maxt]`, in time order; in-order and out-of-order samples merged.
    pub fn iter(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        let (mint, maxt) = (self.mint, self.maxt);
        let in_order = self
            .chunks
            .iter()
            .flat_map(|c| c.iter())
            .skip_while(move |&(t, _)| t < mint)
            .take_while(move |&(t, _)| t <= maxt);
        MergeByTime { a: in_order.peekable(), b: self.ooo.iter().copied().peekable() }
    }

    /// All samples, collected.
    pub fn samples(&self) -> Vec<(i64, f64)> {
        let mut v = Vec::new();
        self.read_into(&mut v);
        v
    }

    /// Replaces `buf`'s contents with the samples of [`SeriesSamples::iter`], decoding whole
    /// batches at a time and skipping chunks outside the range (what queries spend most of their
    /// time on).
    pub fn read_into(&self, buf: &mut Vec<(i64, f64)>) {
        buf.clear();
        if self.chunks.windows(2).any(|w| w[1].min_time() <= w[0].max_time()) {
            self.read_overlapping_into(buf);
            return;
        }
        if !self.ooo.is_empty() {
            buf.extend(self.iter());
            return;
        }
        for c in &self.chunks {
            if c.max_time() < self.mint {
                continue;
            }
            if c.min_time() > self.maxt || c.iter().read_range_into(self.mint, self.maxt, buf) {
                break;
            }
        }
    }

    /// Chunks that overlap in time: blocks not merged yet (a block copied into the data dir, or
    /// a merge that failed) beside each other or the head. Everything in range is read and put in
    /// time order; of equal timestamps the later chunk wins (chunks come oldest block first, the
    /// head last, as compaction's newest-block-wins rule has it), and chunk data wins over
    /// out-of-order samples, as in [`MergeByTime`].
    fn read_overlapping_into(&self, buf: &mut Vec<(i64, f64)>) {
        buf.extend(self.ooo.iter().copied().filter(|&(t, _)| t >= self.mint && t <= self.maxt));
        for c in &self.chunks {
            if c.max_time() >= self.mint && c.min_time() <= self.maxt {
                c.iter().read_range_into(self.mint, self.maxt, buf);
            }
        }
        buf.sort_by_key(|&(t, _)| t);
        // Keep the last of each run of equal timestamps (the stable sort kept their order).
        let mut w = 0;
        for r in 0..buf.len() {
            if r + 1 < buf.len() && buf[r + 1].0 == buf[r].0 {
                continue;
            }
            buf[w] = buf[r];
            w += 1;
        }
        buf.truncate(w);
    }
}

/// Merges two time-ordered streams; on equal timestamps the first (in-order data) wins.
struct MergeByTime<A: Iterator<Item = (i64, f64)>, B: Iterator<Item = (i64, f64)>> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<A: Iterator<Item = (i64, f64)>, B: Iterator<Item = (i64, f64)>> Iterator for MergeByTime<A, B> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        match (self.a.peek(), self.b.peek()) {
            (Some(&(ta, _)), Some(&(tb, _))) => {
                if tb < ta {
                    self.b.next()
                } else {
                    if tb == ta {
                        self.b.next();
                    }
                    self.a.next()
                }
            }
            (Some(_), None) => self.a.next(),
            (None, Some(_)) => self.b.next(),
            (None, None) => None,
        }
    }
}

/// Collects one batch; see the module documentation for commit semantics.
pub struct Appender<'h> {
    head: &'h Head,
    pending: Vec<(Arc<MemSeries>, i64, f64)>,
}

/// What the apply pass does with a sample; the decide pass has already counted it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Append,
    OutOfOrderKeep,
    /// Refused (out of order, duplicate, identical or out of bounds).
    Skip,
    /// The series was truncated away after this appender resolved it.
    Removed,
}

/// Answers "are these two timestamps in the same block range?" without an integer division per
/// sample (tens of cycles each), remembering the last range seen: a batch's samples nearly all
/// fall into one.
struct SameBlock {
    range: i64,
    /// A known block range `[lo, hi)`; empty until the first division.
    lo: i64,
    hi: i64,
}

impl SameBlock {
    fn new(range: i64) -> SameBlock {
        SameBlock { range: range.max(1), lo: 0, hi: 0 }
    }

    #[inline]
    fn same(&mut self, a: i64, b: i64) -> bool {
        if self.lo <= a && a < self.hi && self.lo <= b && b < self.hi {
            return true;
        }
        let (ka, kb) = (a.div_euclid(self.range), b.div_euclid(self.range));
        // Near i64::MIN the block's start does not fit; keep the cache empty then.
        if let Some(lo) = kb.checked_mul(self.range) {
            self.lo = lo;
            self.hi = lo.saturating_add(self.range);
        }
        ka == kb
    }
}

impl<'h> Appender<'h> {
    /// Queues a sample for the series with these labels (created if new); returns its ref so
    /// callers (the scrape cache) can use [`Appender::append_ref`] next time.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> SeriesRef {
        let series = self.head.get_or_create(labels);
        let r = series.series_ref;
        self.pending.push((series, t, v));
        r
    }

    /// [`Appender::append`], returning the series itself for [`Appender::append_series`].
    pub fn append_new(&mut self, labels: &Labels, t: i64, v: f64) -> Arc<MemSeries> {
        let series = self.head.get_or_create(labels);
        self.pending.push((series.clone(), t, v));
        series
    }

    /// Queues a sample for a series the caller already holds (the scrape cache keeps them): no
    /// lookup by ref, no stripe lock. A series the head has dropped meanwhile is re-created
    /// from its labels at commit, like one dropped between `append_ref` and commit.
    pub fn append_series(&mut self, series: &Arc<MemSeries>, t: i64, v: f64) {
        self.pending.push((series.clone(), t, v));
    }

    /// Queues a sample for a series known by ref.
    pub fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        let series = self.head.series_by_ref(r).ok_or(AppendError::UnknownSeries(r))?;
        self.pending.push((series, t, v));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn commit(self) -> Result<CommitStats, AppendError> {
        let head = self.head;
        let result = self.commit_inner(true);
        if result.is_ok() {
            if let Some(hook) = head.commit_hook.get() {
                hook();
            }
        }
        result
    }

    fn commit_inner(mut self, log: bool) -> Result<CommitStats, AppendError> {
        let head = self.head;
        head.batch_hint.store(self.pending.len(), Ordering::Relaxed);
        // Ref order makes the lock order global; the sort is stable so a series' samples keep
        // their arrival order. A scrape appends in the same order every time, so usually the
        // batch is sorted already and the check is all it costs.
        if !self.pending.is_sorted_by_key(|(s, _, _)| s.series_ref) {
            self.pending.sort_by_key(|(s, _, _)| s.series_ref);
        }
        let pending = &self.pending;
        let mut guards: Vec<(&MemSeries, MutexGuard<'_, SeriesData>)> = Vec::with_capacity(pending.len());
        for (s, _, _) in pending {
            if guards.last().is_none_or(|(g, _)| g.series_ref != s.series_ref) {
                guards.push((s, s.data.lock()));
            }
        }

        // Decide every sample first, tracking the newest timestamp each series would reach, and
        // gather what goes to the log.
        let logging = log && head.log.is_some();
        let mut stats = CommitStats::default();
        let mut verdicts: Vec<Verdict> = Vec::with_capacity(pending.len());
        let mut to_log: Vec<RefSample> = Vec::with_capacity(if logging { pending.len() } else { 0 });
        // Read after taking the series locks: truncation sets it before it snapshots any series.
        let min_valid = head.min_valid_time();
        let window = head.out_of_order_window();
        let mut gi = 0;
        let mut group_start = 0;
        let (mut last_t, mut last_bits) =
            guards.first().map_or((i64::MIN, 0), |(_, d)| (d.last_t(), d.last_bits));
        for (i, (s, t, v)) in pending.iter().enumerate() {
            let (t, v) = (*t, *v);
            if guards[gi].0.series_ref != s.series_ref {
                gi += 1;
                group_start = i;
                let d = &guards[gi].1;
                (last_t, last_bits) = (d.last_t(), d.last_bits);
            }
            let d = &guards[gi].1;
            let verdict = if d.removed {
                Verdict::Removed
            } else if t < min_valid {
                stats.out_of_bounds += 1;
                Verdict::Skip
            } else if t > last_t {
                (last_t, last_bits) = (t, v.to_bits());
                stats.appended += 1;
                Verdict::Append
            } else if t == last_t {
                if v.to_bits() == last_bits {
                    stats.identical += 1;
                } else {
                    stats.duplicate_timestamp += 1;
                }
                Verdict::Skip
            } else if last_t.saturating_sub(t) <= window {
                let stored = d.ooo().binary_search_by_key(&t, |&(ot, _)| ot).is_ok();
                // The same timestamp twice out of order in one batch: only the first is kept.
                let earlier = || {
                    pending[group_start..i]
                        .iter()
                        .zip(&verdicts[group_start..i])
                        .any(|((_, ot, _), vd)| *vd == Verdict::OutOfOrderKeep && *ot == t)
                };
                if stored || earlier() {
                    stats.duplicate_timestamp += 1;
                    Verdict::Skip
                } else {
                    stats.appended += 1;
                    Verdict::OutOfOrderKeep
                }
            } else {
                stats.out_of_order += 1;
                Verdict::Skip
            };
            if logging && matches!(verdict, Verdict::Append | Verdict::OutOfOrderKeep) {
                to_log.push(RefSample { series: s.series_ref, t, v });
            }
            verdicts.push(verdict);
        }

        if logging {
            if let Some(wal) = &head.log {
                let new: Vec<(SeriesRef, &Labels)> = guards
                    .iter()
                    .filter(|(_, d)| !d.removed && !d.logged)
                    .map(|(s, _)| (s.series_ref, &s.labels))
                    .collect();
                if !new.is_empty() {
                    wal.log_series(&new).map_err(AppendError::Log)?;
                    for (_, d) in &mut guards {
                        d.logged = true;
                    }
                }
                if !to_log.is_empty() {
                    wal.log_samples(&to_log).map_err(AppendError::Log)?;
                }
            }
        }

        // Apply.
        let per_chunk = head.opts.samples_per_chunk.max(1);
        let repack = head.opts.repack_every;
        let mut block = SameBlock::new(head.opts.block_range_ms);
        let mut retry: Vec<(Labels, i64, f64)> = Vec::new();
        let mut gi = 0;
        let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
        for ((s, t, v), verdict) in pending.iter().zip(&verdicts) {
            let (t, v) = (*t, *v);
            if guards[gi].0.series_ref != s.series_ref {
                gi += 1;
            }
            let d = &mut guards[gi].1;
            match verdict {
                Verdict::Append => {
                    let in_chunk = d.open.len() + usize::from(d.partial);
                    let start = match d.open.min_time() {
                        None if d.partial > 0 => d.sealed.last().and_then(chunk).map(|c| c.min_time()),
                        start => start,
                    };
                    if in_chunk >= per_chunk || start.is_some_and(|m| !block.same(m, t)) {
                        d.finish_chunk();
                    }
                    d.open.append(t, v);
                    d.last_bits = v.to_bits();
                    if repack > 0
                        && d.open.len() >= repack
                        && d.open.len() + usize::from(d.partial) < per_chunk
                    {
                        d.repack();
                    }
                }
                Verdict::OutOfOrderKeep => {
                    let ooo = &mut d.ooo.get_or_insert_with(|| Box::new(OooSamples(Vec::new()))).0;
                    let pos = ooo.partition_point(|&(ot, _)| ot < t);
                    ooo.insert(pos, (t, v));
                }
                Verdict::Removed => {
                    retry.push((s.labels.clone(), t, v));
                    continue;
                }
                Verdict::Skip => continue,
            }
            min_t = min_t.min(t);
            max_t = max_t.max(t);
        }
        drop(guards);
        if min_t <= max_t {
            head.note_time(min_t);
            head.note_time(max_t);
        }
        let c = &head.counters;
        c.samples_appended.fetch_add(stats.appended as u64, Ordering::Relaxed);
        c.out_of_order_rejected.fetch_add(stats.out_of_order as u64, Ordering::Relaxed);
        c.duplicate_rejected.fetch_add(stats.duplicate_timestamp as u64, Ordering::Relaxed);
        c.out_of_bounds_rejected.fetch_add(stats.out_of_bounds as u64, Ordering::Relaxed);
        if !retry.is_empty() {
            let mut again = head.appender();
            for (labels, t, v) in &retry {
                again.append(labels, *t, *v);
            }
            let more = again.commit_inner(log)?;
            stats.appended += more.appended;
            stats.out_of_order += more.out_of_order;
            stats.duplicate_timestamp += more.duplicate_timestamp;
            stats.identical += more.identical;
            stats.out_of_bounds += more.out_of_bounds;
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::tsdb::index::MatchOp;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).unwrap()
    }

    fn sealed(samples: impl Iterator<Item = (i64, f64)>) -> Chunk {
        let mut e = ChunkEncoder::new();
        for (t, v) in samples {
            e.append(t, v);
        }
        e.seal()
    }

    #[test]
    fn overlapping_chunks_read_in_time_order_with_the_later_chunk_winning() {
        // An unmerged older block [0, 100], a newer one [50, 150], then the head [140, 200].
        let older = sealed((0..=100).step_by(10).map(|t| (t, 1.0)));
        let newer = sealed((50..=150).step_by(10).map(|t| (t, 2.0)));
        let head = sealed((140..=200).step_by(10).map(|t| (t, 3.0)));
        let s = SeriesSamples::from_chunks(labels(&[("a", "b")]), vec![older, newer, head], 20, 190);
        let mut buf = Vec::new();
        s.read_into(&mut buf);
        let want: Vec<(i64, f64)> = (20..=190)
            .step_by(10)
            .map(|t| {
                (
                    t,
                    if t >= 140 {
                        3.0
                    } else if t >= 50 {
                        2.0
                    } else {
                        1.0
                    },
                )
            })
            .collect();
        assert_eq!(buf, want);
        // Chunks in order and apart take the fast path, with the same answer shape.
        let apart = SeriesSamples::from_chunks(
            labels(&[("a", "b")]),
            vec![
                sealed((0..50).step_by(10).map(|t| (t, 1.0))),
                sealed((50..100).step_by(10).map(|t| (t, 2.0))),
            ],
            10,
            60,
        );
        apart.read_into(&mut buf);
        assert_eq!(buf, vec![(10, 1.0), (20, 1.0), (30, 1.0), (40, 1.0), (50, 2.0), (60, 2.0)]);
    }

    const STALE: u64 = 0x7ff0_0000_0000_0002;

    #[test]
    fn append_select_round_trip_across_chunks() {
        let head = Head::new(HeadOptions { samples_per_chunk: 7, ..Default::default() }, None);
        let a = labels(&[("__name__", "up"), ("job", "a")]);
        let b = labels(&[("__name__", "up"), ("job", "b")]);
        for i in 0..50 {
            let mut app = head.appender();
            app.append(&a, i * 15_000, i as f64);
            app.append(&b, i * 15_000, f64::from_bits(STALE));
            assert_eq!(app.commit().unwrap().appended, 2);
        }
        let sel = head.select(&[Matcher::equal("__name__", "up")], 15_000 * 10, 15_000 * 20);
        assert_eq!(sel.len(), 2);
        assert_eq!(sel[0].labels, a);
        let got = sel[0].samples();
        assert_eq!(got.len(), 11);
        assert_eq!(got[0], (150_000, 10.0));
        assert!(sel[1].samples().iter().all(|(_, v)| v.to_bits() == STALE));
        assert_eq!(head.time_range(), Some((0, 49 * 15_000)));
        let none = head.select(&[Matcher::new(MatchOp::Equal, "job", "c").unwrap()], 0, i64::MAX);
        assert!(none.is_empty());
    }

    #[test]
    fn out_of_order_rejected_unless_in_window() {
        let head = Head::new(HeadOptions::default(), None);
        let s = labels(&[("__name__", "x")]);
        let mut app = head.appender();
        app.append(&s, 10_000, 1.0);
        app.append(&s, 5_000, 2.0);
        app.append(&s, 10_000, 1.0);
        app.append(&s, 10_000, 3.0);
        let st = app.commit().unwrap();
        assert_eq!(
            st,
            CommitStats {
                appended: 1,
                out_of_order: 1,
                duplicate_timestamp: 1,
                identical: 1,
                out_of_bounds: 0
            }
        );

        let head = Head::new(HeadOptions { out_of_order_window_ms: 60_000, ..Default::default() }, None);
        let mut app = head.appender();
        app.append(&s, 100_000, 1.0);
        app.append(&s, 50_000, 2.0);
        app.append(&s, 10_000, 3.0);
        app.append(&s, 70_000, 4.0);
        assert_eq!(app.commit().unwrap().out_of_order, 1);
        let got = head.select(&[Matcher::equal("__name__", "x")], 0, i64::MAX)[0].samples();
        assert_eq!(got, vec![(50_000, 2.0), (70_000, 4.0), (100_000, 1.0)]);
    }

    #[test]
    fn truncate_drops_old_data_and_empty_series() {
        let head = Head::new(HeadOptions { block_range_ms: 1000, ..Default::default() }, None);
        let a = labels(&[("__name__", "a")]);
        let b = labels(&[("__name__", "b")]);
        for t in (0..3000).step_by(100) {
            let mut app = head.appender();
            app.append(&a, t, t as f64);
            if t < 1000 {
                app.append(&b, t, 1.0);
            }
            app.commit().unwrap();
        }
        // A commit holding `b` from before the truncation must not write into the removed series.
        let mut late = head.appender();
        late.append(&b, 2950, 7.0);
        assert_eq!(head.truncate(1000), 1);
        assert_eq!(late.commit().unwrap().appended, 1);
        let got_b = head.select(&[Matcher::equal("__name__", "b")], 0, i64::MAX);
        assert_eq!(got_b[0].samples(), vec![(2950, 7.0)]);

        // Chunks were cut at the block boundary, so exactly the samples from 1000 on remain.
        let got = head.select(&[Matcher::equal("__name__", "a")], 0, i64::MAX)[0].samples();
        assert_eq!(got.first(), Some(&(1000, 1000.0)));
        assert_eq!(got.len(), 20);
        assert_eq!(head.time_range(), Some((1000, 2950)));

        let mut app = head.appender();
        app.append(&a, 500, 1.0);
        assert_eq!(app.commit().unwrap().out_of_bounds, 1);
    }

    struct FailingLog;
    impl HeadLog for FailingLog {
        fn log_series(&self, _: &[(SeriesRef, &Labels)]) -> Result<(), LogError> {
            Ok(())
        }
        fn log_samples(&self, _: &[RefSample]) -> Result<(), LogError> {
            Err("disk full".into())
        }
    }

    #[test]
    fn failed_log_write_applies_nothing() {
        let head = Head::new(HeadOptions::default(), Some(Box::new(FailingLog)));
        let s = labels(&[("__name__", "x")]);
        let mut app = head.appender();
        app.append(&s, 1, 1.0);
        let err = app.commit().unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(head.select(&[Matcher::equal("__name__", "x")], 0, i64::MAX).is_empty());
        assert_eq!(head.time_range(), None);
    }

    #[test]
    fn concurrent_appenders_and_queries() {
        let head = Arc::new(Head::new(HeadOptions::default(), None));
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let head = head.clone();
                std::thread::spawn(move || {
                    let series: Vec<Labels> = (0..100)
                        .map(|i| labels(&[("__name__", "m"), ("w", &w.to_string()), ("i", &i.to_string())]))
                        .collect();
                    for t in 0..200 {
                        let mut app = head.appender();
                        for s in &series {
                            app.append(s, t, t as f64);
                        }
                        app.commit().unwrap();
                        if t % 50 == 0 {
                            let _ = head.select(&[Matcher::equal("__name__", "m")], 0, t);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let sel = head.select(&[Matcher::equal("__name__", "m")], 0, i64::MAX);
        assert_eq!(sel.len(), 400);
        assert!(sel.iter().all(|s| s.samples().len() == 200));
        assert!(sel.windows(2).all(|w| w[0].labels < w[1].labels));
    }

    /// The head's rules, written as plainly as possible, for the randomized comparison below.
    #[derive(Default)]
    struct ModelSeries {
        in_order: BTreeMap<i64, u64>,
        ooo: BTreeMap<i64, u64>,
    }

    impl ModelSeries {
        fn apply(&mut self, t: i64, v: f64, window: i64, min_valid: i64, st: &mut CommitStats) {
            let last = self.in_order.last_key_value().map(|(&t, &b)| (t, b));
            let last_t = last.map_or(i64::MIN, |l| l.0);
            if t < min_valid {
                st.out_of_bounds += 1;
            } else if t > last_t {
                self.in_order.insert(t, v.to_bits());
                st.appended += 1;
            } else if t == last_t {
                if last.is_some_and(|l| l.1 == v.to_bits()) {
                    st.identical += 1;
                } else {
                    st.duplicate_timestamp += 1;
                }
            } else if last_t - t <= window {
                if let std::collections::btree_map::Entry::Vacant(e) = self.ooo.entry(t) {
                    e.insert(v.to_bits());
                    st.appended += 1;
                } else {
                    st.duplicate_timestamp += 1;
                }
            } else {
                st.out_of_order += 1;
            }
        }

        /// What a query returns: in-order samples win over out-of-order ones at the same time.
        fn samples(&self) -> Vec<(i64, u64)> {
            let mut all = self.ooo.clone();
            all.extend(self.in_order.iter().map(|(&t, &b)| (t, b)));
            all.into_iter().collect()
        }
    }

    #[derive(Default)]
    struct RecordingLog {
        samples: Mutex<Vec<RefSample>>,
    }

    impl HeadLog for Arc<RecordingLog> {
        fn log_series(&self, _: &[(SeriesRef, &Labels)]) -> Result<(), LogError> {
            Ok(())
        }
        fn log_samples(&self, samples: &[RefSample]) -> Result<(), LogError> {
            self.samples.lock().extend_from_slice(samples);
            Ok(())
        }
    }

    #[test]
    fn random_batches_match_a_simple_model() {
        use rand::{Rng, SeedableRng};
        for seed in 0..150u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let window = [0, 40, 1_000][rng.random_range(0..3)];
            let block = 100;
            let opts = HeadOptions {
                out_of_order_window_ms: window,
                samples_per_chunk: rng.random_range(1..8),
                stripes: 4,
                block_range_ms: block,
                repack_every: rng.random_range(0..4),
            };
            let log = Arc::new(RecordingLog::default());
            let head = Head::new(opts, Some(Box::new(log.clone())));
            let names: Vec<Labels> =
                (0..4).map(|i| labels(&[("__name__", "m"), ("i", &i.to_string())])).collect();
            let mut model: Vec<ModelSeries> = (0..names.len()).map(|_| ModelSeries::default()).collect();
            let (mut now, mut min_valid) = (0i64, i64::MIN);
            for step in 0..60 {
                now += rng.random_range(0..30);
                let mut app = head.appender();
                let mut want = CommitStats::default();
                for _ in 0..rng.random_range(0..12) {
                    let i = rng.random_range(0..names.len());
                    let t = match rng.random_range(0..10) {
                        // Behind the newest sample: out of order, in or outside the window.
                        0..=1 => now - rng.random_range(0..120),
                        // A timestamp the series already has, often with the same value.
                        2 => model[i].samples().last().map_or(now, |s| s.0),
                        _ => now + rng.random_range(0..5),
                    };
                    let v = f64::from(rng.random_range(0..3u8));
                    app.append(&names[i], t, v);
                    model[i].apply(t, v, window, min_valid, &mut want);
                }
                let logged_before = log.samples.lock().len();
                let got = app.commit().unwrap();
                assert_eq!(got, want, "seed {seed} step {step}");
                assert_eq!(
                    log.samples.lock().len() - logged_before,
                    want.appended,
                    "seed {seed} step {step}"
                );
                if rng.random_range(0..15) == 0 {
                    let before = (now - 150).div_euclid(block) * block;
                    head.truncate(before);
                    min_valid = min_valid.max(before);
                    for m in &mut model {
                        m.in_order.retain(|&t, _| t >= min_valid);
                        m.ooo.retain(|&t, _| t >= min_valid);
                        if m.in_order.is_empty() {
                            // The head drops the series; appending again starts it afresh.
                            m.ooo.clear();
                        }
                    }
                }
                for (l, m) in names.iter().zip(&model) {
                    let sel = head.select(&[Matcher::equal("i", l.get("i").unwrap())], i64::MIN, i64::MAX);
                    let got: Vec<(i64, u64)> = sel
                        .first()
                        .map(|s| s.iter().map(|(t, v)| (t, v.to_bits())).collect())
                        .unwrap_or_default();
                    assert_eq!(got, m.samples(), "seed {seed} step {step} series {l:?}");
                }
            }
        }
    }
}
