//! Block compaction: merging persisted blocks into longer ones, as Prometheus's
//! `LeveledCompactor` does.
//!
//! The head writes one block per block range (2 h by default). Left alone, a 15-day retention
//! would keep 180 of them, each with its own copy of the index and each opened, indexed in memory
//! and visited by every query. Compaction merges them level by level into blocks of 6 h, 18 h,
//! 54 h … ([`CompactOptions::ranges`]: the block range times 3 per level, the largest capped at
//! 10 % of the retention time or 31 days, as Prometheus's `max-block-duration` default).
//!
//! # Plan
//!
//! [`plan`] is Prometheus's: blocks whose time ranges overlap (backfilled or copied in) are merged
//! first, all of them at once. Otherwise the newest block is left out — it was just written from
//! the head, and leaving it gives a full block range in which it can be backed up on its own —
//! and, for each range above the smallest, the blocks are grouped by the aligned window of that
//! range they fall entirely within; the first group of two or more blocks that either spans the
//! whole window or ends before the newest remaining block starts is merged. A group that could
//! still grow is left alone, so blocks are not merged early and then merged again.
//!
//! # Merge
//!
//! [`merge_blocks`] walks the parents' series in label order side by side and writes each label
//! set once, with the chunks of all parents in time order. Chunks are copied byte for byte; only
//! where chunks of one series overlap in time (overlapping blocks) are they decoded, merged and
//! re-encoded. A timestamp present more than once keeps the sample of the newest block (the
//! largest id; ids start with their creation time), so data written later, e.g. a backfill
//! correcting values, wins.
//!
//! # Crash safety
//!
//! The merged block is written like any block ([`BlockWriter`]): into `<id>.tmp/`, fsynced,
//! renamed into place, the directory fsynced. Its `meta.json` lists the parents it replaces
//! (`compaction.parents`). Only then is it swapped into the database's block list in place of the
//! parents, and the parents are deleted (each renamed to `<id>.del.tmp` first, so a crash in the
//! middle of deleting leaves a `*.tmp` directory that the next open removes, never a half-deleted
//! block that looks like a damaged one). A crash:
//! - before the rename leaves a `.tmp` directory, deleted at open; the parents are intact;
//! - after the rename, before the parents are gone, leaves both. At open, every block named as a
//!   parent by another readable block is deleted ([`parents_to_delete`]), as Prometheus does: the
//!   child holds all of its parents' samples (it was fsynced before it was renamed), so nothing
//!   is lost and nothing is served twice. Keeping the parents and deleting the child instead
//!   would redo the merge for nothing.
//!
//! Queries hold `Arc<Block>`s taken from the list before the swap; a deleted parent's files stay
//! mapped until the last of them is dropped, so a query running across a compaction reads either
//! the parents or the child, never both and never neither.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::block::{Block, BlockDesc, BlockError, BlockMeta, BlockWriter, ChunkMeta, Compaction};
use super::chunk::{Chunk, ChunkEncoder, TARGET_SAMPLES_PER_CHUNK};
use super::labels::Labels;

/// 31 days, Prometheus's largest block.
pub const MAX_BLOCK_MS: i64 = 31 * 24 * 3600 * 1000;

/// Leveled compaction settings; part of [`super::db::DbOptions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactOptions {
    /// Number of block ranges, the head's block range included (Prometheus: 10). 1 or 0 turns
    /// compaction off.
    pub levels: usize,
    /// Each range is this many times the previous one (Prometheus: 3).
    pub factor: i64,
    /// Largest block range. `None`: 10 % of the retention time, at most 31 days.
    pub max_block_ms: Option<i64>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions { levels: 10, factor: 3, max_block_ms: None }
    }
}

impl CompactOptions {
    /// The compaction ranges for blocks of `block_range_ms` written from the head: ascending,
    /// starting with `block_range_ms`, none above the largest block range.
    pub fn ranges(&self, block_range_ms: i64, retention_ms: Option<i64>) -> Vec<i64> {
        let base = block_range_ms.max(1);
        let max = self.max_block_ms.unwrap_or_else(|| {
            retention_ms.filter(|&r| r > 0).map_or(MAX_BLOCK_MS, |r| (r / 10).min(MAX_BLOCK_MS))
        });
        let mut out = vec![base];
        let mut r = base;
        // A factor below 2 would never grow the range.
        let factor = self.factor.max(2);
        for _ in 1..self.levels {
            match r.checked_mul(factor) {
                Some(next) if next <= max => {
                    out.push(next);
                    r = next;
                }
                _ => break,
            }
        }
        out
    }
}

/// A block as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub min_time: i64,
    /// Exclusive.
    pub max_time: i64,
    /// An earlier merge of this block failed on damaged data; groups holding it are skipped
    /// (Prometheus's `compaction.failed`) instead of being retried every pass.
    pub failed: bool,
}

impl Span {
    pub fn new(min_time: i64, max_time: i64) -> Span {
        Span { min_time, max_time, failed: false }
    }
}

/// Which blocks to merge next, as indices into `blocks` (which must be sorted by `min_time`);
/// empty when there is nothing to do. See the module documentation.
pub fn plan(blocks: &[Span], ranges: &[i64]) -> Vec<usize> {
    let overlapping = overlapping(blocks);
    if !overlapping.is_empty() {
        return overlapping;
    }
    let Some((_newest, rest)) = blocks.split_last() else { return Vec::new() };
    select_leveled(rest, ranges)
}

/// The first run of blocks that overlap in time, all of them; empty if none do or one of them
/// is marked failed.
fn overlapping(blocks: &[Span]) -> Vec<usize> {
    let Some(first) = blocks.first() else { return Vec::new() };
    let mut out: Vec<usize> = Vec::new();
    let mut global_max = first.max_time;
    for (i, b) in blocks.iter().enumerate().skip(1) {
        if b.min_time < global_max {
            if out.is_empty() {
                out.push(i - 1);
            }
            out.push(i);
        } else if !out.is_empty() {
            break;
        }
        global_max = global_max.max(b.max_time);
    }
    if out.iter().any(|&i| blocks[i].failed) {
        return Vec::new();
    }
    out
}

fn select_leveled(blocks: &[Span], ranges: &[i64]) -> Vec<usize> {
    let Some(last) = blocks.last() else { return Vec::new() };
    let high_time = last.min_time;
    for &range in ranges.iter().skip(1) {
        for group in split_by_range(blocks, range) {
            if group.len() < 2 || group.iter().any(|&i| blocks[i].failed) {
                continue;
            }
            let (mint, maxt) = (blocks[group[0]].min_time, blocks[group[group.len() - 1]].max_time);
            // Whole window filled (gaps allowed), or no newer block can join it any more.
            if maxt - mint == range || maxt <= high_time {
                return group;
            }
        }
    }
    Vec::new()
}

/// Groups consecutive blocks by the aligned window of `range` each lies entirely within; blocks
/// that straddle a window boundary (unaligned, or already longer than `range`) join no group.
fn split_by_range(blocks: &[Span], range: i64) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let t0 = blocks[i].min_time.div_euclid(range) * range;
        let end = t0.saturating_add(range);
        if blocks[i].max_time > end {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < blocks.len() && blocks[i].max_time <= end {
            group.push(i);
            i += 1;
        }
        out.push(group);
    }
    out
}

/// Why a merge failed: damaged data in a parent (which the caller may mark failed) or a failure
/// to write the new block (worth retrying, e.g. after disk space is freed).
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("cannot merge block {block}: {source}")]
    Source { block: String, source: BlockError },
    #[error("cannot write merged block: {0}")]
    Write(#[from] BlockError),
}

/// Merges `parents` into a new block `id` in `data_dir` and returns its meta. The parents are not
/// touched. On error nothing is left in place but possibly `<id>.tmp/`, which the caller removes
/// (or the next open does).
pub fn merge_blocks(data_dir: &Path, id: &str, parents: &[Arc<Block>]) -> Result<BlockMeta, CompactError> {
    // Rank = age order by id, so that on equal timestamps the newest block's sample wins.
    let mut by_age: Vec<&Arc<Block>> = parents.iter().collect();
    by_age.sort_by(|a, b| a.meta().ulid.cmp(&b.meta().ulid));

    let mut writer = BlockWriter::create(data_dir, id)?;
    let mut cursors = Vec::with_capacity(by_age.len());
    for b in &by_age {
        let mut it = b.all_series();
        let head = next_series(&mut it, b)?;
        cursors.push(Cursor { iter: Box::new(it), head });
    }
    // Few parents (3 for a leveled merge), so a linear scan for the smallest label set beats a
    // heap.
    while let Some(labels) = cursors.iter().filter_map(|c| c.head.as_ref().map(|(l, _)| l)).min().cloned() {
        let mut chunks: Vec<(usize, Chunk)> = Vec::new();
        for (rank, c) in cursors.iter_mut().enumerate() {
            if c.head.as_ref().is_none_or(|(l, _)| *l != labels) {
                continue;
            }
            let block = by_age[rank];
            if let Some((_, metas)) = c.head.take() {
                for m in &metas {
                    chunks.push((rank, block.chunk(m).map_err(|e| source_err(block, e))?));
                }
            }
            c.head = next_series(&mut c.iter, block)?;
        }
        let merged = merge_chunks(chunks).map_err(|(rank, what)| {
            let block = by_age[rank];
            source_err(block, BlockError::Corrupt { path: block.dir().join("chunks"), what })
        })?;
        writer.add_series(&labels, &merged)?;
    }
    let min_time = parents.iter().map(|b| b.meta().min_time).min().unwrap_or_default();
    let max_time = parents.iter().map(|b| b.meta().max_time).max().unwrap_or_default();
    let sources: BTreeSet<String> =
        parents.iter().flat_map(|b| b.meta().compaction.sources.iter().cloned()).collect();
    let compaction = Compaction {
        level: parents.iter().map(|b| b.meta().compaction.level).max().unwrap_or_default() + 1,
        sources: sources.into_iter().collect(),
        parents: by_age
            .iter()
            .map(|b| BlockDesc {
                ulid: b.meta().ulid.clone(),
                min_time: b.meta().min_time,
                max_time: b.meta().max_time,
            })
            .collect(),
    };
    Ok(writer.finish(min_time, max_time, compaction)?)
}

type SeriesEntry = (Labels, Vec<ChunkMeta>);

struct Cursor<'a> {
    iter: Box<dyn Iterator<Item = Result<SeriesEntry, BlockError>> + 'a>,
    head: Option<SeriesEntry>,
}

fn next_series(
    it: &mut impl Iterator<Item = Result<SeriesEntry, BlockError>>,
    block: &Block,
) -> Result<Option<SeriesEntry>, CompactError> {
    it.next().transpose().map_err(|e| source_err(block, e))
}

fn source_err(block: &Block, source: BlockError) -> CompactError {
    CompactError::Source { block: block.meta().ulid.clone(), source }
}

/// One series' chunks from all parents, `(rank, chunk)`, into time order. Runs of chunks that
/// overlap in time are decoded and re-encoded with duplicate timestamps removed (highest rank
/// wins); all other chunks are kept as they are. On a damaged chunk, its rank and what is wrong.
fn merge_chunks(mut chunks: Vec<(usize, Chunk)>) -> Result<Vec<Chunk>, (usize, String)> {
    chunks.retain(|(_, c)| !c.is_empty());
    chunks.sort_by_key(|(rank, c)| (c.min_time(), *rank));
    let mut out = Vec::with_capacity(chunks.len());
    let mut i = 0;
    while i < chunks.len() {
        let mut run_max = chunks[i].1.max_time();
        let mut j = i + 1;
        while j < chunks.len() && chunks[j].1.min_time() <= run_max {
            run_max = run_max.max(chunks[j].1.max_time());
            j += 1;
        }
        if j == i + 1 {
            out.push(chunks[i].1.clone());
        } else {
            reencode(&chunks[i..j], &mut out)?;
        }
        i = j;
    }
    Ok(out)
}

fn reencode(run: &[(usize, Chunk)], out: &mut Vec<Chunk>) -> Result<(), (usize, String)> {
    let mut samples: Vec<(i64, usize, f64)> = Vec::with_capacity(run.iter().map(|(_, c)| c.len()).sum());
    for (rank, c) in run {
        let mut it = c.iter();
        samples.extend(it.by_ref().map(|(t, v)| (t, *rank, v)));
        if let Some(e) = it.error() {
            return Err((*rank, e.to_string()));
        }
    }
    // Stable: equal (t, rank) keep their order, so the first of a block's own duplicates stays.
    samples.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    samples.dedup_by_key(|s| s.0);
    let mut enc = ChunkEncoder::new();
    for (t, _, v) in samples {
        if enc.len() >= TARGET_SAMPLES_PER_CHUNK {
            out.push(std::mem::take(&mut enc).seal());
        }
        enc.append(t, v);
    }
    if !enc.is_empty() {
        out.push(enc.seal());
    }
    Ok(())
}

/// Blocks that another block in `metas` names as a parent: a merge finished writing their
/// replacement but was interrupted before deleting them. Returned as indices into `metas`.
pub fn parents_to_delete(metas: &[&BlockMeta]) -> Vec<usize> {
    let replaced: BTreeSet<&str> =
        metas.iter().flat_map(|m| m.compaction.parents.iter().map(|p| p.ulid.as_str())).collect();
    metas.iter().enumerate().filter(|(_, m)| replaced.contains(m.ulid.as_str())).map(|(i, _)| i).collect()
}

/// Deletes a block directory so that a crash part-way leaves a `*.tmp` directory (removed at the
/// next open) rather than a half-deleted block that would look damaged.
pub(crate) fn delete_block_dir(dir: &Path) -> Result<(), BlockError> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let doomed = dir.with_file_name(format!("{name}.del.tmp"));
    std::fs::rename(dir, &doomed).map_err(|source| BlockError::Io {
        action: "cannot rename block for deletion",
        path: dir.to_path_buf(),
        source,
    })?;
    if let Some(parent) = dir.parent() {
        super::block::sync_dir(parent);
    }
    std::fs::remove_dir_all(&doomed).map_err(|source| BlockError::Io {
        action: "cannot delete block",
        path: doomed.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::db::{Db, DbOptions};
    use crate::tsdb::head::HeadOptions;
    use crate::tsdb::index::Matcher;
    use std::collections::BTreeMap;
    use std::sync::atomic::Ordering;

    const H: i64 = 3_600_000;
    const STALE: u64 = 0x7ff0_0000_0000_0002;

    fn spans(ranges: &[(i64, i64)]) -> Vec<Span> {
        ranges.iter().map(|&(a, b)| Span::new(a * H, b * H)).collect()
    }

    const LEVELS: [i64; 4] = [2 * H, 6 * H, 18 * H, 54 * H];

    #[test]
    fn ranges_grow_by_three_and_stop_at_a_tenth_of_retention_or_31_days() {
        let o = CompactOptions::default();
        // 15 days of retention: at most 36 h, so 54 h is left out.
        assert_eq!(o.ranges(2 * H, Some(15 * 24 * H)), vec![2 * H, 6 * H, 18 * H]);
        // No time retention: up to 31 days (2 h · 3⁵ = 486 h = 20.25 d; · 3 again is beyond).
        assert_eq!(o.ranges(2 * H, None), (0..6).map(|i| 2 * H * 3i64.pow(i)).collect::<Vec<_>>());
        assert_eq!(o.ranges(2 * H, Some(3650 * 24 * H)).last(), Some(&(486 * H)));
        assert_eq!(
            CompactOptions { max_block_ms: Some(6 * H), ..o.clone() }.ranges(2 * H, None),
            vec![2 * H, 6 * H]
        );
        assert_eq!(CompactOptions { levels: 1, ..o.clone() }.ranges(2 * H, None), vec![2 * H]);
        // Retention shorter than ten block ranges: the head's blocks are never merged.
        assert_eq!(o.ranges(2 * H, Some(12 * H)), vec![2 * H]);
    }

    #[test]
    fn plan_merges_a_full_window_but_never_the_newest_block() {
        // Three 2 h blocks fill [0, 6h), but the third is the newest: wait for the next one.
        assert!(plan(&spans(&[(0, 2), (2, 4), (4, 6)]), &LEVELS).is_empty());
        assert_eq!(plan(&spans(&[(0, 2), (2, 4), (4, 6), (6, 8)]), &LEVELS), vec![0, 1, 2]);
        // A window with a gap is merged once a newer block exists after it.
        assert_eq!(plan(&spans(&[(0, 2), (4, 6), (6, 8), (8, 10)]), &LEVELS), vec![0, 1]);
        // The newest window, not yet full and no newer block beyond it: left to grow.
        assert!(plan(&spans(&[(6, 8), (8, 10)]), &LEVELS).is_empty());
        assert!(plan(&spans(&[(0, 6), (6, 8), (8, 10)]), &LEVELS).is_empty());
        // Three 6 h blocks fill an 18 h window once a newer block exists.
        assert_eq!(plan(&spans(&[(0, 6), (6, 12), (12, 18), (18, 20)]), &LEVELS), vec![0, 1, 2]);
        // Smaller ranges go first: the 6 h group is picked before an 18 h one.
        assert_eq!(
            plan(&spans(&[(0, 6), (6, 12), (12, 14), (14, 16), (16, 18), (18, 20)]), &LEVELS),
            vec![2, 3, 4]
        );
        // A lone block in its window is nothing to merge.
        assert!(plan(&spans(&[(0, 2), (6, 8), (12, 14)]), &LEVELS).is_empty());
        assert!(plan(&[], &LEVELS).is_empty());
        assert!(plan(&spans(&[(0, 2)]), &LEVELS).is_empty());
        // Only the head's range: compaction is off.
        assert!(plan(&spans(&[(0, 2), (2, 4), (4, 6), (6, 8)]), &LEVELS[..1]).is_empty());
    }

    #[test]
    fn plan_skips_unaligned_blocks_and_failed_groups() {
        // A block straddling a 6 h boundary joins no 6 h group; at 18 h it does.
        let s = spans(&[(4, 8), (8, 10), (10, 12), (12, 14)]);
        assert!(plan(&s, &LEVELS).is_empty());
        let s = spans(&[(4, 8), (8, 10), (10, 12), (12, 14), (14, 16)]);
        assert_eq!(plan(&s, &LEVELS), vec![1, 2]);
        // An unaligned block (a snapshot's head block) still joins the window it lies within.
        let unaligned = [
            Span::new(H + 17, 2 * H),
            Span::new(2 * H, 4 * H),
            Span::new(6 * H, 8 * H),
            Span::new(8 * H, 10 * H),
        ];
        assert_eq!(plan(&unaligned, &LEVELS), vec![0, 1]);
        let mut s = spans(&[(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14)]);
        s[1].failed = true;
        assert_eq!(plan(&s, &LEVELS), vec![3, 4, 5]);
    }

    #[test]
    fn plan_merges_overlapping_blocks_first() {
        assert_eq!(plan(&spans(&[(0, 2), (1, 3)]), &LEVELS), vec![0, 1]);
        // Every block of the first overlapping run, even the newest, and nothing after it.
        assert_eq!(plan(&spans(&[(0, 2), (2, 4), (3, 5), (4, 8), (8, 10), (9, 11)]), &LEVELS), vec![1, 2, 3]);
        // A block inside another counts as overlapping.
        assert_eq!(plan(&spans(&[(0, 6), (2, 4), (6, 8)]), &LEVELS), vec![0, 1]);
        // Touching ranges (max is exclusive) do not overlap.
        assert!(plan(&spans(&[(0, 2), (2, 4)]), &LEVELS).is_empty());
    }

    fn series_labels(i: usize) -> Labels {
        Labels::new([("__name__", "m".to_string()), ("i", i.to_string())]).unwrap()
    }

    fn value(t: i64, i: usize) -> f64 {
        match (t / 15_000 + i as i64) % 17 {
            0 => f64::from_bits(STALE),
            1 => -0.0,
            2 => f64::INFINITY,
            3 => f64::from_bits(0x7ff8_0000_0000_1234),
            k => (t as f64) * 0.001 + k as f64 / 3.0,
        }
    }

    fn encode(samples: &[(i64, f64)]) -> Vec<Chunk> {
        samples
            .chunks(TARGET_SAMPLES_PER_CHUNK)
            .map(|part| {
                let mut e = ChunkEncoder::new();
                for &(t, v) in part {
                    e.append(t, v);
                }
                e.seal()
            })
            .collect()
    }

    /// Writes block `id` holding `series` (label → samples) over `[mint, maxt)`.
    fn write_block(
        dir: &Path,
        id: &str,
        mint: i64,
        maxt: i64,
        series: &BTreeMap<Labels, Vec<(i64, f64)>>,
    ) -> Arc<Block> {
        let mut w = BlockWriter::create(dir, id).unwrap();
        for (l, s) in series {
            w.add_series(l, &encode(s)).unwrap();
        }
        w.finish(mint, maxt, Compaction { level: 1, sources: vec![id.to_string()], parents: vec![] })
            .unwrap();
        Arc::new(Block::open(&dir.join(id)).unwrap())
    }

    fn read_all(b: &Block) -> BTreeMap<Labels, Vec<(i64, u64)>> {
        b.select(&[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| {
                (s.labels, s.chunks.iter().flat_map(|c| c.iter()).map(|(t, v)| (t, v.to_bits())).collect())
            })
            .collect()
    }

    fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
        s.iter().map(|&(t, v)| (t, v.to_bits())).collect()
    }

    /// Series `i` of the three 2 h blocks: 0–2 everywhere, 3 only in the first and last, 4 only
    /// in the middle one, 5 with a short tail chunk.
    type Samples = BTreeMap<Labels, Vec<(i64, f64)>>;

    fn three_blocks(dir: &Path) -> (Vec<Arc<Block>>, Samples) {
        let mut want: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        let mut blocks = Vec::new();
        for k in 0..3i64 {
            let (mint, maxt) = (k * 2 * H, (k + 1) * 2 * H);
            let mut series = BTreeMap::new();
            for i in 0..6usize {
                let present = match i {
                    3 => k != 1,
                    4 => k == 1,
                    _ => true,
                };
                if !present {
                    continue;
                }
                let end = if i == 5 { maxt - 7 * 60_000 } else { maxt };
                let s: Vec<(i64, f64)> =
                    (mint..end).step_by(15_000).map(|t| (t + i as i64, value(t, i))).collect();
                want.entry(series_labels(i)).or_default().extend_from_slice(&s);
                series.insert(series_labels(i), s);
            }
            blocks.push(write_block(dir, &format!("a{k}"), mint, maxt, &series));
        }
        (blocks, want)
    }

    #[test]
    fn three_2h_blocks_merge_into_one_6h_block_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let (blocks, want) = three_blocks(dir.path());
        // Given in any order; the result is the same.
        let parents = vec![blocks[2].clone(), blocks[0].clone(), blocks[1].clone()];
        let meta = merge_blocks(dir.path(), "c", &parents).unwrap();
        assert_eq!((meta.min_time, meta.max_time), (0, 6 * H));
        assert_eq!(meta.compaction.level, 2);
        assert_eq!(meta.compaction.sources, vec!["a0", "a1", "a2"]);
        let parent_ids: Vec<&str> = meta.compaction.parents.iter().map(|p| p.ulid.as_str()).collect();
        assert_eq!(parent_ids, vec!["a0", "a1", "a2"]);
        assert_eq!(
            meta.compaction.parents[1],
            BlockDesc { ulid: "a1".into(), min_time: 2 * H, max_time: 4 * H }
        );
        let child = Block::open(&dir.path().join("c")).unwrap();
        let got = read_all(&child);
        assert_eq!(got.len(), 6);
        for (l, s) in &want {
            assert_eq!(got.get(l), Some(&bits(s)), "{l}");
        }
        // Nothing overlapped, so every chunk was copied as it was.
        let sum = |f: fn(&BlockMeta) -> u64| blocks.iter().map(|b| f(b.meta())).sum::<u64>();
        assert_eq!(meta.stats.num_chunks, sum(|m| m.stats.num_chunks));
        assert_eq!(meta.stats.num_samples, sum(|m| m.stats.num_samples));
        assert_eq!(meta.stats.num_series, 6);
        let chunk_bytes = |b: &Block| std::fs::metadata(b.dir().join("chunks")).unwrap().len();
        assert_eq!(chunk_bytes(&child), blocks.iter().map(|b| chunk_bytes(b)).sum::<u64>());
        // The meta round-trips with its parents; a meta without them (older blocks) still reads.
        assert_eq!(child.meta(), &meta);
        let json = std::fs::read_to_string(blocks[0].dir().join("meta.json")).unwrap();
        assert!(!json.contains("parents"), "{json}");
    }

    #[test]
    fn overlapping_blocks_merge_with_the_newest_sample_winning() {
        let dir = tempfile::tempdir().unwrap();
        let l = |i| series_labels(i);
        // Older block: [0, 2h) every 15 s. Newer one: [1h, 3h) every 15 s on the same grid, other
        // values, plus samples in between; and a series of its own.
        let old: Vec<(i64, f64)> = (0..2 * H).step_by(15_000).map(|t| (t, value(t, 0))).collect();
        let new: Vec<(i64, f64)> = (H..3 * H)
            .step_by(7_500)
            .map(|t| (t, if t % 15_000 == 0 { f64::from_bits(STALE) } else { t as f64 }))
            .collect();
        let only_new: Vec<(i64, f64)> = (H..2 * H).step_by(60_000).map(|t| (t, 1.0)).collect();
        let b1 = write_block(dir.path(), "b1", 0, 2 * H, &BTreeMap::from([(l(0), old.clone())]));
        let b2 = write_block(
            dir.path(),
            "b2",
            H,
            3 * H,
            &BTreeMap::from([(l(0), new.clone()), (l(1), only_new.clone())]),
        );
        let spans: Vec<Span> =
            [&b1, &b2].iter().map(|b| Span::new(b.meta().min_time, b.meta().max_time)).collect();
        assert_eq!(plan(&spans, &LEVELS), vec![0, 1]);
        let meta = merge_blocks(dir.path(), "c", &[b2.clone(), b1.clone()]).unwrap();
        assert_eq!((meta.min_time, meta.max_time), (0, 3 * H));
        let mut want: BTreeMap<i64, f64> = old.iter().copied().collect();
        want.extend(new.iter().copied());
        let want: Vec<(i64, f64)> = want.into_iter().collect();
        let got = read_all(&Block::open(&dir.path().join("c")).unwrap());
        assert_eq!(got[&l(0)], bits(&want));
        assert_eq!(got[&l(1)], bits(&only_new));
        assert_eq!(meta.stats.num_samples as usize, want.len() + only_new.len());
        // Chunks outside the overlap are copied; the overlap is re-encoded into full chunks.
        let child = Block::open(&dir.path().join("c")).unwrap();
        let s = child.select(&[Matcher::equal("i", "0")], i64::MIN, i64::MAX).unwrap();
        assert!(s[0].chunks.windows(2).all(|w| w[0].max_time() < w[1].min_time()));
    }

    #[test]
    fn merge_of_a_damaged_parent_names_it_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (blocks, _) = three_blocks(dir.path());
        let path = blocks[1].dir().join("chunks");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40] ^= 0x10;
        // A new file (the block's map keeps the old one), as a bad disk would present it.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let damaged =
            vec![blocks[0].clone(), Arc::new(Block::open(blocks[1].dir()).unwrap()), blocks[2].clone()];
        match merge_blocks(dir.path(), "c", &damaged) {
            Err(CompactError::Source { block, .. }) => assert_eq!(block, "a1"),
            other => panic!("{other:?}"),
        }
        assert!(!dir.path().join("c").exists());
    }

    fn db_opts(retention_ms: Option<i64>, max_block_ms: Option<i64>) -> DbOptions {
        DbOptions {
            head: HeadOptions { block_range_ms: H, ..HeadOptions::default() },
            retention_ms,
            compaction: CompactOptions { max_block_ms, ..CompactOptions::default() },
            ..DbOptions::default()
        }
    }

    fn append_hours(db: &Db, from: i64, to: i64, series: usize) {
        for t in (from..to).step_by(30_000) {
            let mut app = db.appender();
            for i in 0..series {
                app.append(&series_labels(i), t, value(t, i));
            }
            app.commit().unwrap();
            if t % H == 0 {
                db.maintain().unwrap();
            }
        }
        db.maintain().unwrap();
    }

    fn select_all(db: &Db) -> BTreeMap<Labels, Vec<(i64, u64)>> {
        db.select(&[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| {
                let v = s.samples().iter().map(|&(t, v)| (t, v.to_bits())).collect();
                (s.labels, v)
            })
            .collect()
    }

    fn block_dirs_on_disk(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().join("meta.json").exists())
            .count()
    }

    #[test]
    fn maintain_merges_blocks_and_queries_see_every_sample_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), db_opts(None, None)).unwrap();
        let end = 14 * H;
        append_hours(&db, 0, end, 4);
        let blocks = db.blocks();
        // 1 h blocks, merged into 3 h and 9 h ones: far fewer blocks than hours persisted.
        assert!(db.counters.block_compactions.load(Ordering::Relaxed) >= 4);
        assert!(blocks.iter().any(|b| b.meta().compaction.level == 3), "{blocks:?}");
        assert!(blocks.len() <= 5, "{blocks:?}");
        assert!(blocks.windows(2).all(|w| w[0].meta().max_time <= w[1].meta().min_time));
        assert_eq!(block_dirs_on_disk(dir.path()), blocks.len());
        let on_disk: u64 = blocks.iter().map(|b| crate::tsdb::block::dir_size(b.dir())).sum();
        assert_eq!(db.disk_bytes(), on_disk + crate::tsdb::block::dir_size(&dir.path().join("wal")));
        let want: BTreeMap<Labels, Vec<(i64, u64)>> = (0..4)
            .map(|i| {
                (series_labels(i), (0..end).step_by(30_000).map(|t| (t, value(t, i).to_bits())).collect())
            })
            .collect();
        assert_eq!(select_all(&db), want);
        drop(db);
        let db = Db::open(dir.path(), db_opts(None, None)).unwrap();
        assert!(db.open_report().unreadable_blocks.is_empty());
        assert_eq!(select_all(&db), want);
    }

    #[test]
    fn queries_holding_blocks_keep_reading_while_they_are_merged_away() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DbOptions {
            compaction: CompactOptions { levels: 1, ..CompactOptions::default() },
            ..db_opts(None, None)
        };
        let db = Db::open(dir.path(), opts).unwrap();
        append_hours(&db, 0, 5 * H, 3);
        let held = db.blocks();
        assert!(held.len() >= 3);
        let before: Vec<_> = held.iter().map(|b| read_all(b)).collect();
        let id = db.compact_group(&held[..3]).unwrap();
        assert!(held[..3].iter().all(|b| !b.dir().exists()));
        let after: Vec<_> = held.iter().map(|b| read_all(b)).collect();
        assert_eq!(before, after);
        let child = db.blocks().iter().find(|b| b.meta().ulid == id).cloned().unwrap();
        assert_eq!(child.meta().compaction.parents.len(), 3);
        assert_eq!(db.blocks().len(), held.len() - 2);
    }

    #[test]
    fn reopen_after_a_crash_between_rename_and_parent_deletion_serves_each_sample_once() {
        let dir = tempfile::tempdir().unwrap();
        let (blocks, want) = three_blocks(dir.path());
        let want: BTreeMap<Labels, Vec<(i64, u64)>> =
            want.iter().map(|(l, s)| (l.clone(), bits(s))).collect();
        // The merged block renamed into place, the parents not yet deleted — and a leftover from
        // a parent whose deletion had begun, and an unfinished write.
        merge_blocks(dir.path(), "c1", &blocks).unwrap();
        drop(blocks);
        std::fs::create_dir(dir.path().join("a9.del.tmp")).unwrap();
        std::fs::create_dir(dir.path().join("c2.tmp")).unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let ids: Vec<String> = db.blocks().iter().map(|b| b.meta().ulid.clone()).collect();
        assert_eq!(ids, vec!["c1".to_string()]);
        assert!(db.open_report().unreadable_blocks.is_empty());
        assert_eq!(select_all(&db), want);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('a') && !n.ends_with(".tmp")), "{names:?}");
        drop(db);

        // The same with one parent already gone.
        let dir = tempfile::tempdir().unwrap();
        let (blocks, _) = three_blocks(dir.path());
        merge_blocks(dir.path(), "c1", &blocks).unwrap();
        std::fs::remove_dir_all(blocks[0].dir()).unwrap();
        drop(blocks);
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        assert_eq!(db.blocks().len(), 1);
        assert_eq!(select_all(&db), want);
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_parents_serving() {
        let dir = tempfile::tempdir().unwrap();
        let (blocks, want) = three_blocks(dir.path());
        merge_blocks(dir.path(), "c1", &blocks).unwrap();
        drop(blocks);
        // As if the rename had not happened: the merged block is still the temporary directory.
        std::fs::rename(dir.path().join("c1"), dir.path().join("c1.tmp")).unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        assert_eq!(db.blocks().len(), 3);
        assert!(!dir.path().join("c1.tmp").exists());
        let want: BTreeMap<Labels, Vec<(i64, u64)>> =
            want.iter().map(|(l, s)| (l.clone(), bits(s))).collect();
        assert_eq!(select_all(&db), want);
    }

    #[test]
    fn retention_still_deletes_old_data_after_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let keep = 8 * H;
        let db = Db::open(dir.path(), db_opts(Some(keep), Some(3 * H))).unwrap();
        let end = 30 * H;
        append_hours(&db, 0, end, 2);
        assert!(db.counters.block_compactions.load(Ordering::Relaxed) > 0);
        assert!(db.counters.blocks_removed_by_retention.load(Ordering::Relaxed) > 0);
        let blocks = db.blocks();
        let newest = end - 30_000;
        assert!(blocks.iter().all(|b| b.meta().max_time > newest - keep), "{blocks:?}");
        assert!(blocks.iter().all(|b| b.meta().max_time - b.meta().min_time <= 3 * H));
        assert_eq!(block_dirs_on_disk(dir.path()), blocks.len());
        // Whatever is kept is whole, from the first kept block on.
        let first = blocks[0].meta().min_time;
        assert!(first >= newest - keep - 3 * H);
        let got = select_all(&db);
        for (l, s) in &got {
            let i: usize = l.get("i").unwrap().parse().unwrap();
            let want: Vec<(i64, u64)> =
                (first..end).step_by(30_000).map(|t| (t, value(t, i).to_bits())).collect();
            assert_eq!(s, &want);
        }
    }

    #[test]
    fn a_damaged_block_fails_its_merge_once_and_is_then_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let off = CompactOptions { levels: 1, ..CompactOptions::default() };
        {
            let db = Db::open(dir.path(), DbOptions { compaction: off, ..db_opts(None, None) }).unwrap();
            append_hours(&db, 0, 5 * H + 30 * 60_000, 2);
            assert_eq!(db.blocks().len(), 4);
        }
        // Damage a chunk of the second block (the index is fine, so the block still opens).
        let mut ids: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("meta.json").exists())
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        let chunks = dir.path().join(&ids[1]).join("chunks");
        let mut bytes = std::fs::read(&chunks).unwrap();
        bytes[20] ^= 0x40;
        std::fs::write(&chunks, &bytes).unwrap();

        // Retention of 3 h from the newest sample (5.5 h): the first two blocks are past it.
        let db = Db::open(dir.path(), db_opts(Some(3 * H), Some(3 * H))).unwrap();
        let err = db.maintain().unwrap_err().to_string();
        assert!(err.contains(&ids[1]) && err.contains("checksum mismatch"), "{err}");
        assert_eq!(db.counters.compaction_failures.load(Ordering::Relaxed), 1);
        // Retention ran all the same; nothing half-written is left; the other parents are as
        // they were.
        assert_eq!(db.counters.blocks_removed_by_retention.load(Ordering::Relaxed), 2);
        let left: Vec<String> = db.blocks().iter().map(|b| b.meta().ulid.clone()).collect();
        assert_eq!(left, ids[2..].to_vec());
        assert_eq!(block_dirs_on_disk(dir.path()), 2);
        let names = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path());
        assert!(names.into_iter().all(|p| !p.to_string_lossy().ends_with(".tmp")));
        drop(db);

        // Without retention the damaged block stays; its group fails once, then is skipped.
        let dir2 = tempfile::tempdir().unwrap();
        let (blocks, _) = three_blocks(dir2.path());
        write_block(
            dir2.path(),
            "a3",
            6 * H,
            8 * H,
            &BTreeMap::from([(series_labels(0), vec![(6 * H, 1.0)])]),
        );
        let chunks = blocks[0].dir().join("chunks");
        drop(blocks);
        let mut bytes = std::fs::read(&chunks).unwrap();
        bytes[20] ^= 0x40;
        std::fs::write(&chunks, &bytes).unwrap();
        let opts = DbOptions { head: HeadOptions::default(), ..db_opts(None, None) };
        let db = Db::open(dir2.path(), opts).unwrap();
        assert!(db.maintain().is_err());
        let report = db.maintain().unwrap();
        assert!(report.blocks_compacted.is_empty());
        assert_eq!(db.counters.compaction_failures.load(Ordering::Relaxed), 1);
        assert_eq!(db.blocks().len(), 4);
    }

    #[test]
    fn parents_named_by_another_block_are_the_ones_deleted() {
        let meta = |id: &str, parents: &[&str]| BlockMeta {
            ulid: id.into(),
            min_time: 0,
            max_time: 1,
            stats: Default::default(),
            compaction: Compaction {
                level: 1,
                sources: vec![],
                parents: parents
                    .iter()
                    .map(|p| BlockDesc { ulid: p.to_string(), ..Default::default() })
                    .collect(),
            },
            version: 1,
        };
        let (a, b, c, d) = (meta("a", &[]), meta("b", &[]), meta("c", &["a", "b", "x"]), meta("d", &[]));
        assert_eq!(parents_to_delete(&[&a, &b, &c, &d]), vec![0, 1]);
        assert!(parents_to_delete(&[&a, &d]).is_empty());
    }
}
