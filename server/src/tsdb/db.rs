//! The database as the rest of Vigil sees it: one data directory, opened once.
//!
//! [`Db::open`] takes an exclusive lock on `<dir>/lock` (a second process gets a clear error
//! instead of two writers corrupting each other), opens every persisted [`Block`] in the
//! directory (deleting unfinished `*.tmp` writes), replays `<dir>/wal` into a fresh [`Head`] —
//! refusing samples that blocks already hold — and then hands the head the WAL as its commit
//! log, so from then on every batch is logged before it becomes visible. Damage found in the WAL
//! is cut and counted, never fatal; a block that cannot be opened is reported and left on disk
//! untouched, never deleted.
//!
//! [`Db::select`] merges the blocks and the head: blocks cover disjoint, older time ranges (the
//! head refuses samples before its lower bound), so a series' chunks are the blocks' chunks in
//! time order followed by the head's. [`Db::maintain`] runs periodically: once the head spans
//! more than 1.5 block ranges, its oldest whole range is written into a block, dropped from the
//! head, and the WAL is checkpointed past it; then blocks are merged into longer ones as
//! [`compact`](super::compact) plans; then blocks beyond the retention time or size are deleted,
//! oldest first. A block that a merged block names as its parent is deleted at open: the merge
//! was interrupted after its result was in place.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::block::{dir_size, new_block_id, Block, BlockError, BlockMeta, BlockWriter, Compaction};
use super::chunk::{Chunk, ChunkEncoder, TARGET_SAMPLES_PER_CHUNK};
use super::compact::{self, CompactError, CompactOptions, Span};
use super::head::{Appender, Head, HeadLog, HeadOptions, LogError, SeriesSamples};
use super::index::{IndexStats, Matcher, SeriesRef};
use super::labels::Labels;
use super::wal::{Record, RefSample, ReplayReport, Wal, WalError, WalOptions};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create data directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open lock file {}: {source}", path.display())]
    LockFile { path: PathBuf, source: std::io::Error },
    #[error("data directory {} is in use by another process (lock file {} is held)", dir.display(), dir.join("lock").display())]
    Locked { dir: PathBuf },
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("cannot list data directory {}: {source}", path.display())]
    ListDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Compact(#[from] CompactError),
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub head: HeadOptions,
    pub wal: WalOptions,
    /// Blocks whose newest sample is older than this, measured from the newest data, are deleted.
    pub retention_ms: Option<i64>,
    /// Oldest blocks are deleted while blocks and WAL together exceed this many bytes.
    pub retention_bytes: Option<u64>,
    /// Merging blocks into longer ones (ranges from `head.block_range_ms` up).
    pub compaction: CompactOptions,
}

/// Prometheus's default retention: 15 days.
pub const DEFAULT_RETENTION_MS: i64 = 15 * 24 * 3600 * 1000;

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            head: HeadOptions::default(),
            wal: WalOptions::default(),
            retention_ms: Some(DEFAULT_RETENTION_MS),
            retention_bytes: None,
            compaction: CompactOptions::default(),
        }
    }
}

/// Counters of maintenance work, for `vigil_tsdb_*` metrics.
#[derive(Debug, Default)]
pub struct DbCounters {
    pub head_compactions: AtomicU64,
    /// Failed head persists and failed block merges.
    pub compaction_failures: AtomicU64,
    /// Groups of blocks merged into one.
    pub block_compactions: AtomicU64,
    pub blocks_removed_by_retention: AtomicU64,
}

/// What one [`Db::maintain`] call did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintainReport {
    pub blocks_written: Vec<String>,
    /// Blocks written by merging others, in the order merged.
    pub blocks_compacted: Vec<String>,
    pub blocks_removed: Vec<String>,
}

/// What one [`Db::snapshot`] call wrote.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SnapshotReport {
    /// Ids of the persisted blocks linked into the snapshot, oldest first.
    pub blocks_linked: Vec<String>,
    /// The block written from the head; `None` when the head held no samples (or was skipped).
    pub head_block: Option<BlockMeta>,
}

/// What opening the database found, for logs and metrics.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    pub replay: ReplayReport,
    /// Series records whose labels were invalid (empty or duplicate names); skipped.
    pub invalid_series: u64,
    /// Samples naming a series no record defined (only after damage was cut); skipped.
    pub orphan_samples: u64,
    /// Block directories that could not be opened (left on disk), with the reason.
    pub unreadable_blocks: Vec<String>,
    /// Replayed samples older than the newest block: already persisted, skipped.
    pub replayed_out_of_bounds: u64,
}

pub struct Db {
    dir: PathBuf,
    opts: DbOptions,
    head: Head,
    wal: Arc<Wal>,
    /// Sorted by time; replaced wholesale (copy-on-write) so queries clone the list cheaply.
    blocks: RwLock<Arc<Vec<Arc<Block>>>>,
    /// One maintenance pass at a time.
    maintenance: Mutex<()>,
    /// Blocks a merge failed on because their data is damaged; not merged again while the
    /// process lives (so a bad block costs one failure, not one per pass).
    compaction_failed: Mutex<HashSet<String>>,
    pub counters: DbCounters,
    report: OpenReport,
    // Held for the life of the Db: the OS releases the flock when the file closes.
    _lock: File,
}

struct WalLog(Arc<Wal>);

impl HeadLog for WalLog {
    fn log_series(&self, series: &[(SeriesRef, &Labels)]) -> Result<(), LogError> {
        Ok(self.0.log_series(series.iter().map(|(r, l)| (*r, l.iter())))?)
    }

    fn log_samples(&self, samples: &[RefSample]) -> Result<(), LogError> {
        Ok(self.0.log_samples(samples)?)
    }
}

impl Db {
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, DbError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| DbError::CreateDir { path: dir.to_path_buf(), source })?;
        let lock = lock_dir(dir)?;
        let mut report = OpenReport::default();
        let blocks = open_blocks(dir, &mut report)?;
        let mut head = Head::new(opts.head.clone(), None);
        if let Some(last) = blocks.last() {
            head.set_min_valid_time(last.meta().max_time);
        }
        let (wal, replay) = Wal::open(&dir.join("wal"), opts.wal.clone(), |record| match record {
            Record::Series(series) => {
                for s in series {
                    match Labels::new(s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
                        Ok(labels) if !labels.is_empty() => {
                            head.restore_series(s.series, &labels);
                        }
                        _ => report.invalid_series += 1,
                    }
                }
            }
            Record::Samples(samples) => {
                let (stats, orphans) = head.restore_samples(samples);
                report.orphan_samples += orphans as u64;
                report.replayed_out_of_bounds += stats.out_of_bounds as u64;
            }
        })?;
        report.replay = replay;
        if report.invalid_series > 0 || report.orphan_samples > 0 {
            tracing::warn!(
                invalid_series = report.invalid_series,
                orphan_samples = report.orphan_samples,
                "WAL replay skipped records it could not apply"
            );
        }
        let wal = Arc::new(wal);
        head.set_log(Box::new(WalLog(wal.clone())));
        Ok(Db {
            dir: dir.to_path_buf(),
            opts,
            head,
            wal,
            blocks: RwLock::new(Arc::new(blocks)),
            maintenance: Mutex::new(()),
            compaction_failed: Mutex::new(HashSet::new()),
            counters: DbCounters::default(),
            report,
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    pub fn appender(&self) -> Appender<'_> {
        self.head.appender()
    }

    /// The persisted blocks, oldest first.
    pub fn blocks(&self) -> Arc<Vec<Arc<Block>>> {
        self.blocks.read().clone()
    }

    /// Series matching all matchers with samples in `[mint, maxt]`, sorted by labels, from the
    /// blocks and the head. Fails only when a block's data is damaged.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<SeriesSamples>, DbError> {
        let blocks = self.blocks();
        let mut from_blocks: BTreeMap<Labels, Vec<Chunk>> = BTreeMap::new();
        for b in blocks.iter() {
            for s in b.select(matchers, mint, maxt)? {
                from_blocks.entry(s.labels).or_default().extend(s.chunks);
            }
        }
        let head = self.head.select(matchers, mint, maxt);
        if from_blocks.is_empty() {
            return Ok(head);
        }
        let mut out = Vec::with_capacity(head.len() + from_blocks.len());
        for mut h in head {
            if let Some(older) = from_blocks.remove(&h.labels) {
                h.prepend_chunks(older);
            }
            out.push(h);
        }
        out.extend(from_blocks.into_iter().map(|(l, c)| SeriesSamples::from_chunks(l, c, mint, maxt)));
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let mut all = self.head.label_names(matchers);
        for b in self.blocks().iter() {
            all.extend(b.label_names(matchers));
        }
        all.sort_unstable();
        all.dedup();
        all
    }

    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let mut all = self.head.label_values(name, matchers);
        for b in self.blocks().iter() {
            all.extend(b.label_values(name, matchers));
        }
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Bytes on disk: blocks plus WAL.
    pub fn disk_bytes(&self) -> u64 {
        self.blocks().iter().map(|b| b.size_bytes()).sum::<u64>() + dir_size(self.wal.dir())
    }

    /// Persists old head data into blocks and applies retention. Safe to call at any time;
    /// errors leave all data in place (the head keeps what could not be written).
    pub fn maintain(&self) -> Result<MaintainReport, DbError> {
        let _one = self.maintenance.lock();
        let mut report = MaintainReport::default();
        let range = self.opts.head.block_range_ms.max(1);
        while let Some((hmin, hmax)) = self.head.time_range() {
            if hmax.saturating_sub(hmin) <= range / 2 * 3 {
                break;
            }
            let wmin = hmin.div_euclid(range) * range;
            let wmax = wmin.saturating_add(range);
            match self.persist_head_range(wmin, wmax) {
                Ok(Some(id)) => report.blocks_written.push(id),
                Ok(None) => {}
                Err(e) => {
                    self.counters.compaction_failures.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
            self.head.truncate(wmax);
            self.counters.head_compactions.fetch_add(1, Ordering::Relaxed);
            let next = self.wal.roll()?;
            if next > 1 {
                let head = &self.head;
                self.wal.checkpoint(next - 1, |r| head.series_by_ref(r).is_some(), wmax)?;
            }
        }
        // Retention runs even when a merge failed, so a damaged block or a full disk cannot stop
        // old data from being deleted; the merge error is reported afterwards.
        let compacted = self.compact_blocks(&mut report);
        report.blocks_removed = self.apply_retention()?;
        compacted?;
        Ok(report)
    }

    /// Merges blocks as [`compact::plan`] says until there is nothing left to merge.
    fn compact_blocks(&self, report: &mut MaintainReport) -> Result<(), DbError> {
        let ranges = self.opts.compaction.ranges(self.opts.head.block_range_ms, self.opts.retention_ms);
        if ranges.len() < 2 {
            return Ok(());
        }
        loop {
            let blocks = self.blocks();
            let spans: Vec<Span> = {
                let failed = self.compaction_failed.lock();
                blocks
                    .iter()
                    .map(|b| Span {
                        min_time: b.meta().min_time,
                        max_time: b.meta().max_time,
                        failed: failed.contains(&b.meta().ulid),
                    })
                    .collect()
            };
            let group = compact::plan(&spans, &ranges);
            if group.is_empty() {
                return Ok(());
            }
            let parents: Vec<Arc<Block>> = group.iter().filter_map(|&i| blocks.get(i).cloned()).collect();
            match self.compact_group(&parents) {
                Ok(id) => {
                    self.counters.block_compactions.fetch_add(1, Ordering::Relaxed);
                    report.blocks_compacted.push(id);
                }
                Err(e) => {
                    self.counters.compaction_failures.fetch_add(1, Ordering::Relaxed);
                    if let DbError::Compact(CompactError::Source { block, .. }) = &e {
                        self.compaction_failed.lock().insert(block.clone());
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Merges `parents` into one new block, swaps it into the block list in their place and
    /// deletes them. On error the parents stay as they were and nothing new is left on disk.
    /// Crate-only: outside [`Db::maintain`] (which holds the maintenance lock) two merges of the
    /// same blocks could race.
    pub(crate) fn compact_group(&self, parents: &[Arc<Block>]) -> Result<String, DbError> {
        let mut id = new_block_id();
        // Ids made in this process never repeat; a leftover from another process might.
        while self.dir.join(&id).exists() || self.dir.join(format!("{id}.tmp")).exists() {
            id = new_block_id();
        }
        let dest = self.dir.join(&id);
        let meta = match compact::merge_blocks(&self.dir, &id, parents) {
            Ok(meta) => meta,
            Err(e) => {
                let _ = std::fs::remove_dir_all(self.dir.join(format!("{id}.tmp")));
                return Err(e.into());
            }
        };
        let child = match Block::open(&dest) {
            Ok(b) => Arc::new(b),
            Err(e) => {
                // Not served yet, so it can go; left in place it would have its parents deleted
                // at the next open although it cannot be read.
                if let Err(rm) = compact::delete_block_dir(&dest) {
                    tracing::error!(error = %rm, "cannot remove a merged block that does not open");
                }
                return Err(e.into());
            }
        };
        {
            let mut list = self.blocks.write();
            let mut kept: Vec<Arc<Block>> =
                list.iter().filter(|b| !parents.iter().any(|p| Arc::ptr_eq(p, b))).cloned().collect();
            kept.push(child);
            kept.sort_by_key(|b| b.meta().min_time);
            *list = Arc::new(kept);
        }
        for p in parents {
            // Queries still holding a parent keep reading its mappings after the unlink. A parent
            // that cannot be deleted now is deleted at the next open, as the child names it.
            if let Err(e) = compact::delete_block_dir(p.dir()) {
                tracing::warn!(error = %e, "cannot delete a merged block's parent; it goes at the next open");
            }
        }
        tracing::info!(
            block = %id,
            mint = meta.min_time,
            maxt = meta.max_time,
            level = meta.compaction.level,
            parents = ?meta.compaction.parents.iter().map(|p| &p.ulid).collect::<Vec<_>>(),
            "merged blocks"
        );
        Ok(id)
    }

    /// Writes the head's samples in `[wmin, wmax)` into a new block. `None` if there were none.
    fn persist_head_range(&self, wmin: i64, wmax: i64) -> Result<Option<String>, DbError> {
        // From here on nothing new can land in the range being written.
        self.head.set_min_valid_time(wmax);
        let id = new_block_id();
        if self.write_head_block(&self.dir, &id, wmin, wmax)?.is_none() {
            return Ok(None);
        }
        let block = Arc::new(Block::open(&self.dir.join(&id))?);
        let mut blocks = self.blocks.write();
        let mut list: Vec<Arc<Block>> = blocks.as_ref().clone();
        list.push(block);
        list.sort_by_key(|b| b.meta().min_time);
        *blocks = Arc::new(list);
        tracing::info!(block = %id, mint = wmin, maxt = wmax, "persisted head range into a block");
        Ok(Some(id))
    }

    /// Writes the head's samples in `[wmin, wmax)` as block `id` under `parent`, re-encoded into
    /// sealed chunks. The head is not changed. `None` (and nothing on disk) if there were none.
    fn write_head_block(
        &self,
        parent: &Path,
        id: &str,
        wmin: i64,
        wmax: i64,
    ) -> Result<Option<BlockMeta>, DbError> {
        let mut writer = BlockWriter::create(parent, id)?;
        let mut any = false;
        for series in self.head.series_sorted() {
            let Some(snap) = series.snapshot(wmin, wmax - 1) else { continue };
            let mut chunks = Vec::new();
            let mut enc = ChunkEncoder::new();
            for (t, v) in snap.iter() {
                if enc.len() >= TARGET_SAMPLES_PER_CHUNK {
                    chunks.push(std::mem::take(&mut enc).seal());
                }
                enc.append(t, v);
            }
            if !enc.is_empty() {
                chunks.push(enc.seal());
            }
            any |= !chunks.is_empty();
            writer.add_series(&series.labels, &chunks)?;
        }
        if !any {
            drop(writer);
            let _ = std::fs::remove_dir_all(parent.join(format!("{id}.tmp")));
            return Ok(None);
        }
        let meta = writer.finish(
            wmin,
            wmax,
            Compaction { level: 1, sources: vec![id.to_string()], parents: vec![] },
        )?;
        Ok(Some(meta))
    }

    /// Writes a copy of the database into `dir`, a new directory, as Prometheus's snapshot API
    /// does: every persisted block hard-linked (copied where a link fails), and with `with_head`
    /// the head's samples written as one more block, so `dir` is a data directory that
    /// [`Db::open`] reads without a WAL. The database itself is not changed and keeps taking
    /// samples; those that arrive while the snapshot is written may or may not be in it.
    pub fn snapshot(&self, dir: &Path, with_head: bool) -> Result<SnapshotReport, DbError> {
        // No head truncation or retention while blocks are linked and the head is read.
        let _one = self.maintenance.lock();
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| DbError::CreateDir { path: parent.to_path_buf(), source })?;
        }
        std::fs::create_dir(dir).map_err(|source| DbError::CreateDir { path: dir.to_path_buf(), source })?;
        let mut report = SnapshotReport::default();
        for b in self.blocks().iter() {
            let id = &b.meta().ulid;
            link_block(b.dir(), &dir.join(id))?;
            report.blocks_linked.push(id.clone());
        }
        if with_head {
            if let Some((hmin, hmax)) = self.head.time_range() {
                report.head_block =
                    self.write_head_block(dir, &new_block_id(), hmin, hmax.saturating_add(1))?;
            }
        }
        super::block::sync_dir(dir);
        tracing::info!(
            dir = %dir.display(),
            blocks = report.blocks_linked.len(),
            head_samples = report.head_block.as_ref().map_or(0, |m| m.stats.num_samples),
            "wrote a snapshot of the database"
        );
        Ok(report)
    }

    /// Deletes blocks past the retention time (relative to the newest data) or size.
    fn apply_retention(&self) -> Result<Vec<String>, DbError> {
        let blocks = self.blocks();
        let newest = blocks
            .iter()
            .map(|b| b.meta().max_time)
            .chain(self.head.time_range().map(|(_, max)| max))
            .max()
            .unwrap_or(i64::MIN);
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        if let Some(keep) = self.opts.retention_ms {
            let cutoff = newest.saturating_sub(keep);
            doomed.extend(blocks.iter().filter(|b| b.meta().max_time <= cutoff).cloned());
        }
        if let Some(limit) = self.opts.retention_bytes {
            let mut total = self.disk_bytes();
            for b in blocks.iter() {
                if total <= limit {
                    break;
                }
                total = total.saturating_sub(b.size_bytes());
                if !doomed.iter().any(|d| Arc::ptr_eq(d, b)) {
                    doomed.push(b.clone());
                }
            }
        }
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        {
            let mut list = self.blocks.write();
            let kept: Vec<Arc<Block>> =
                list.iter().filter(|b| !doomed.iter().any(|d| Arc::ptr_eq(d, b))).cloned().collect();
            *list = Arc::new(kept);
        }
        let mut removed = Vec::new();
        for b in doomed {
            // Queries still holding the block keep reading their mappings after the unlink.
            compact::delete_block_dir(b.dir())?;
            removed.push(b.meta().ulid.clone());
            self.counters.blocks_removed_by_retention.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(blocks = ?removed, "deleted blocks past retention");
        Ok(removed)
    }

    pub fn index_stats(&self, top_n: usize) -> IndexStats {
        self.head.index_stats(top_n)
    }
}

/// Opens every block directory, oldest first; deletes unfinished `*.tmp` writes.
fn open_blocks(dir: &Path, report: &mut OpenReport) -> Result<Vec<Arc<Block>>, DbError> {
    let list_err = |source| DbError::ListDir { path: dir.to_path_buf(), source };
    let mut blocks = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !path.is_dir() || name == "wal" {
            continue;
        }
        if name.ends_with(".tmp") {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(dir = %path.display(), error = %e, "cannot remove unfinished block");
            }
            continue;
        }
        if !path.join("meta.json").exists() {
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(e) => {
                tracing::error!(error = %e, "skipping a block that cannot be opened; it stays on disk");
                report.unreadable_blocks.push(e.to_string());
            }
        }
    }
    // A merged block renamed into place before its parents were deleted: the parents' samples
    // are all in it, so the parents go (as in Prometheus) and each sample is served once.
    let metas: Vec<&BlockMeta> = blocks.iter().map(|b| b.meta()).collect();
    let replaced = compact::parents_to_delete(&metas);
    if !replaced.is_empty() {
        let mut kept = Vec::with_capacity(blocks.len());
        for (i, b) in blocks.into_iter().enumerate() {
            if !replaced.contains(&i) {
                kept.push(b);
                continue;
            }
            tracing::info!(block = %b.meta().ulid, "deleting a block already merged into another");
            let dir = b.dir().to_path_buf();
            drop(b);
            // Not serving it is what matters; what stays on disk is retried at the next open.
            if let Err(e) = compact::delete_block_dir(&dir) {
                tracing::warn!(error = %e, "cannot delete a block already merged into another");
            }
        }
        blocks = kept;
    }
    blocks.sort_by_key(|b| b.meta().min_time);
    Ok(blocks)
}

/// Makes `to` a copy of the block directory `from`: its files hard-linked (blocks are never
/// modified in place, so a link is a copy), or copied where linking fails.
fn link_block(from: &Path, to: &Path) -> Result<(), DbError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| DbError::Block(BlockError::Io { action, path, source })
    };
    std::fs::create_dir(to).map_err(io("cannot create snapshot block directory", to))?;
    for entry in std::fs::read_dir(from).map_err(io("cannot list block", from))? {
        let entry = entry.map_err(io("cannot list block", from))?;
        let src = entry.path();
        if !src.is_file() {
            continue;
        }
        let dst = to.join(entry.file_name());
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(io("cannot copy block file", &src))?;
        }
    }
    Ok(())
}

fn lock_dir(dir: &Path) -> Result<File, DbError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| DbError::LockFile { path: path.clone(), source })?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; it only reads the fd and flags.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return Err(if err.kind() == std::io::ErrorKind::WouldBlock {
                DbError::Locked { dir: dir.to_path_buf() }
            } else {
                DbError::LockFile { path, source: err }
            });
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: u64 = 0x7ff0_0000_0000_0002;

    fn labels(name: &str, i: usize) -> Labels {
        Labels::new([("__name__", name.to_string()), ("i", i.to_string())]).unwrap()
    }

    #[test]
    fn samples_survive_reopen_bit_exactly() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path(), DbOptions::default()).unwrap();
            for t in 0..300i64 {
                let mut app = db.appender();
                for i in 0..20 {
                    let v = if t == 299 { f64::from_bits(STALE) } else { t as f64 * 0.1 + i as f64 };
                    app.append(&labels("m", i), t * 1000, v);
                }
                app.commit().unwrap();
            }
        }
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        assert_eq!(db.open_report().replay.corruptions, vec![]);
        let sel = db.select(&[Matcher::equal("__name__", "m")], 0, i64::MAX).unwrap();
        assert_eq!(sel.len(), 20);
        for s in &sel {
            let i: usize = s.labels.get("i").unwrap().parse().unwrap();
            let got = s.samples();
            assert_eq!(got.len(), 300);
            for (t, (gt, gv)) in got.iter().enumerate() {
                assert_eq!(*gt, t as i64 * 1000);
                let want = if t == 299 { f64::from_bits(STALE) } else { t as f64 * 0.1 + i as f64 };
                assert_eq!(gv.to_bits(), want.to_bits());
            }
        }
        // New series after reopen get fresh refs that do not collide with replayed ones.
        let mut app = db.appender();
        let r = app.append(&labels("other", 0), 1, 1.0);
        app.commit().unwrap();
        assert!(sel.iter().all(|s| s.series_ref != r));
    }

    #[test]
    fn head_is_persisted_into_blocks_and_queries_span_both() {
        let dir = tempfile::tempdir().unwrap();
        let hour = 3_600_000i64;
        let opts = || DbOptions {
            head: HeadOptions { block_range_ms: hour, ..HeadOptions::default() },
            retention_ms: Some(4 * hour),
            ..DbOptions::default()
        };
        let value = |t: i64, i: usize| (t / 15_000) as f64 + i as f64 * 1000.0;
        let end = 7 * hour;
        {
            let db = Db::open(dir.path(), opts()).unwrap();
            for t in (0..end).step_by(15_000) {
                let mut app = db.appender();
                for i in 0..5 {
                    app.append(&labels("m", i), t, value(t, i));
                }
                app.commit().unwrap();
                if t % hour == 0 {
                    db.maintain().unwrap();
                }
            }
            db.maintain().unwrap();
            // Head keeps at most 1.5 ranges; everything older is in blocks; retention keeps 4 h.
            let (hmin, _) = db.head().time_range().unwrap();
            assert!(hmin >= end - 2 * hour, "head starts at {hmin}");
            let blocks = db.blocks();
            assert!(!blocks.is_empty());
            assert!(blocks.iter().all(|b| b.meta().max_time > end - 15_000 - 4 * hour));
        }
        // Reopen: blocks load, the WAL replays only what the head still held.
        let db = Db::open(dir.path(), opts()).unwrap();
        assert!(db.open_report().unreadable_blocks.is_empty());
        let first_kept = db.blocks()[0].meta().min_time;
        let sel = db.select(&[Matcher::equal("__name__", "m")], 0, i64::MAX).unwrap();
        assert_eq!(sel.len(), 5);
        for s in &sel {
            let i: usize = s.labels.get("i").unwrap().parse().unwrap();
            let got = s.samples();
            let want: Vec<(i64, f64)> = (first_kept..end).step_by(15_000).map(|t| (t, value(t, i))).collect();
            assert_eq!(got.len(), want.len());
            assert!(got.iter().zip(&want).all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits()));
        }
        // A sample in a persisted range is refused rather than overlapping a block.
        let mut app = db.appender();
        app.append(&labels("m", 0), first_kept + 1, 1.0);
        assert_eq!(app.commit().unwrap().out_of_bounds, 1);
    }

    #[test]
    fn snapshot_copies_blocks_and_head_and_leaves_the_db_alone() {
        let dir = tempfile::tempdir().unwrap();
        let hour = 3_600_000i64;
        let opts = DbOptions {
            head: HeadOptions { block_range_ms: hour, ..HeadOptions::default() },
            retention_ms: None,
            ..DbOptions::default()
        };
        let data = dir.path().join("data");
        let db = Db::open(&data, opts.clone()).unwrap();
        for t in (0..4 * hour).step_by(15_000) {
            let mut app = db.appender();
            for i in 0..3 {
                app.append(&labels("m", i), t + 17, (t / 15_000) as f64 * 0.25 + i as f64);
            }
            app.commit().unwrap();
        }
        db.maintain().unwrap();
        let blocks = db.blocks();
        assert!(!blocks.is_empty());
        let all = [Matcher::equal("__name__", "m")];
        let before = db.select(&all, i64::MIN, i64::MAX).unwrap();
        let (head_range, min_valid) = (db.head().time_range(), db.head().min_valid_time());

        let snap_dir = data.join("snapshots").join("one");
        let report = db.snapshot(&snap_dir, true).unwrap();
        let linked: Vec<String> = blocks.iter().map(|b| b.meta().ulid.clone()).collect();
        assert_eq!(report.blocks_linked, linked);
        let head_meta = report.head_block.clone().unwrap();
        let (hmin, hmax) = head_range.unwrap();
        assert_eq!((head_meta.min_time, head_meta.max_time), (hmin, hmax + 1));
        assert_eq!(head_meta.stats.num_series, 3);
        let in_head =
            before.iter().map(|s| s.samples().iter().filter(|(t, _)| *t >= hmin).count()).sum::<usize>();
        assert_eq!(head_meta.stats.num_samples, in_head as u64);
        // The database is as it was: same head, same bounds, same blocks, and still appendable.
        assert_eq!(db.head().time_range(), head_range);
        assert_eq!(db.head().min_valid_time(), min_valid);
        assert_eq!(db.blocks().len(), blocks.len());
        let mut app = db.appender();
        app.append(&labels("m", 0), hmax + 15_000, 1.0);
        assert_eq!(app.commit().unwrap().appended, 1);
        // Reopening the database ignores the snapshots folder.
        assert!(db.open_report().unreadable_blocks.is_empty());

        // The snapshot is a data directory holding exactly what the database held.
        let snap = Db::open(&snap_dir, opts).unwrap();
        assert_eq!(snap.blocks().len(), blocks.len() + 1);
        let got = snap.select(&all, i64::MIN, i64::MAX).unwrap();
        assert_eq!(got.len(), before.len());
        for (g, w) in got.iter().zip(&before) {
            assert_eq!(g.labels, w.labels);
            let (g, w) = (g.samples(), w.samples());
            assert_eq!(g.len(), w.len());
            assert!(g.iter().zip(&w).all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits()));
        }
        // Without the head only the blocks are linked; an existing directory is refused.
        let report = db.snapshot(&data.join("snapshots").join("two"), false).unwrap();
        assert_eq!((report.blocks_linked.len(), report.head_block), (blocks.len(), None));
        assert!(db.snapshot(&snap_dir, true).is_err());
    }

    #[test]
    fn size_retention_deletes_oldest_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let hour = 3_600_000i64;
        let db = Db::open(
            dir.path(),
            DbOptions {
                head: HeadOptions { block_range_ms: hour, ..HeadOptions::default() },
                retention_ms: None,
                retention_bytes: Some(1),
                ..DbOptions::default()
            },
        )
        .unwrap();
        for t in (0..5 * hour).step_by(60_000) {
            let mut app = db.appender();
            app.append(&labels("m", 0), t, 1.0);
            app.commit().unwrap();
        }
        let report = db.maintain().unwrap();
        assert!(!report.blocks_written.is_empty());
        // Merging ran first (three 1 h blocks into one 3 h block), then retention removed all.
        assert_eq!(report.blocks_compacted.len(), 1);
        assert_eq!(report.blocks_removed.len() + 2, report.blocks_written.len());
        assert!(db.blocks().is_empty());
        assert_eq!(
            db.counters.blocks_removed_by_retention.load(Ordering::Relaxed),
            report.blocks_removed.len() as u64
        );
    }

    #[test]
    fn second_open_of_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let err = Db::open(dir.path(), DbOptions::default()).err().unwrap();
        assert!(matches!(err, DbError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("in use by another process"));
    }

    #[test]
    fn torn_wal_tail_keeps_everything_before_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path(), DbOptions::default()).unwrap();
            for t in 0..10 {
                let mut app = db.appender();
                app.append(&labels("m", 0), t, t as f64);
                app.commit().unwrap();
            }
        }
        // Cut the last record short, as a crash in the middle of a write would.
        let seg = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().chars().all(|c| c.is_ascii_digit()))
            .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
            .max()
            .unwrap();
        let len = std::fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        assert_eq!(db.open_report().replay.corruptions.len(), 1);
        let got = db.select(&[Matcher::equal("__name__", "m")], 0, i64::MAX).unwrap()[0].samples();
        assert_eq!(got, (0..9).map(|t| (t, t as f64)).collect::<Vec<_>>());
    }
}
