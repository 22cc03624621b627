//! Persistent blocks: immutable directories holding every series and chunk of one time range.
//!
//! The head is cut into a block every block range (2 h by default); compaction later merges
//! blocks into longer ones. A block is written into `<id>.tmp/` and renamed into place, so it is
//! either whole or absent; a directory still named `.tmp` at start-up is an unfinished write and
//! is deleted.
//!
//! # On disk
//!
//! ```text
//! <data>/<id>/meta.json   id, minTime, maxTime (ms, maxTime exclusive as in Prometheus),
//!                         stats {numSeries, numChunks, numSamples},
//!                         compaction {level, sources, parents (blocks merged into it)}
//! <data>/<id>/chunks      chunk entries: uvarint len | chunk bytes (see `chunk`) | crc32c u32 LE
//! <data>/<id>/index       "VIGILIX1"
//!                         symbols: uvarint count | (uvarint len | utf-8 bytes)*, sorted
//!                         series, sorted by labels, each:
//!                           uvarint nlabels | (uvarint name sym | uvarint value sym)*
//!                           uvarint nchunks | (varint mint | uvarint maxt-mint | uvarint offset)*
//!                         u64 LE symbols offset | u64 LE series offset | u64 LE series count
//!                         u32 LE crc32c of everything before it
//! ```
//!
//! A series is named inside the block by the offset of its entry in the index file. Both files
//! are memory-mapped: opening reads the symbols and walks the series entries once to build an
//! in-memory inverted index ([`MemIndex`], series refs = entry offsets), so matchers have exactly
//! the head's semantics; chunk bytes are only touched by queries that need them. The index is
//! checksummed as a whole at open; each chunk carries its own crc, checked when it is read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::chunk::Chunk;
use super::index::{Matcher, MemIndex};
use super::labels::Labels;

const INDEX_MAGIC: &[u8; 8] = b"VIGILIX1";
const TOC_LEN: usize = 8 + 8 + 8 + 4;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("{action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("block {} is corrupt: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BlockError + 'a {
    move |source| BlockError::Io { action, path: path.to_path_buf(), source }
}

/// `meta.json`, in the shape of Prometheus's block meta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    pub min_time: i64,
    /// Exclusive.
    pub max_time: i64,
    pub stats: BlockStats,
    pub compaction: Compaction,
    pub version: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    pub num_series: u64,
    pub num_chunks: u64,
    pub num_samples: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Compaction {
    pub level: u32,
    pub sources: Vec<String>,
    /// The blocks merged into this one (none for a block written from the head). Kept so that a
    /// crash after the merged block is renamed into place but before its parents are deleted is
    /// recognised at the next open: the parents are then deleted (see `compact`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
}

/// A block named by id and time range, as Prometheus's `compaction.parents` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    pub ulid: String,
    pub min_time: i64,
    pub max_time: i64,
}

/// A new block id: creation time in ms, then a per-process sequence number and a random part,
/// in hex, so ids sort by age and two blocks made in the same millisecond (a flush followed by
/// a merge) never share a directory name.
pub fn new_block_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded from the OS once per thread and differs between processes, which
    // keeps two processes writing into copies of one data dir apart.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(ms);
    h.write_u32(seq);
    h.write_u32(std::process::id());
    let rnd = (h.finish() & 0xffff) as u32;
    format!("{ms:016x}{:04x}{rnd:04x}", seq & 0xffff)
}

/// Writes one block from series given in label order, each with its chunks in time order.
pub struct BlockWriter {
    tmp: PathBuf,
    dest: PathBuf,
    chunks: BufWriter<File>,
    chunks_len: u64,
    series: Vec<(Labels, Vec<ChunkMeta>)>,
    stats: BlockStats,
    last: Option<Labels>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    pub min_time: i64,
    pub max_time: i64,
    pub offset: u64,
}

impl BlockWriter {
    pub fn create(data_dir: &Path, id: &str) -> Result<BlockWriter, BlockError> {
        let dest = data_dir.join(id);
        let tmp = data_dir.join(format!("{id}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err("cannot remove stale", &tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_err("cannot create block directory", &tmp))?;
        let path = tmp.join("chunks");
        let file = File::create(&path).map_err(io_err("cannot create", &path))?;
        Ok(BlockWriter {
            tmp,
            dest,
            chunks: BufWriter::with_capacity(1 << 20, file),
            chunks_len: 0,
            series: Vec::new(),
            stats: BlockStats::default(),
            last: None,
        })
    }

    /// Adds a series. Series must come in strictly increasing label order and chunks in time
    /// order; empty series are skipped.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[Chunk]) -> Result<(), BlockError> {
        if chunks.iter().all(Chunk::is_empty) {
            return Ok(());
        }
        if self.last.as_ref().is_some_and(|l| l >= labels) {
            return Err(BlockError::Corrupt {
                path: self.tmp.clone(),
                what: format!("series {labels} added out of order"),
            });
        }
        let path = self.tmp.join("chunks");
        let mut metas = Vec::with_capacity(chunks.len());
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            let bytes = c.as_bytes();
            let mut head = Vec::with_capacity(10);
            put_uvarint(&mut head, bytes.len() as u64);
            let crc = crc32c::crc32c(bytes);
            self.chunks.write_all(&head).map_err(io_err("cannot write", &path))?;
            self.chunks.write_all(bytes).map_err(io_err("cannot write", &path))?;
            self.chunks.write_all(&crc.to_le_bytes()).map_err(io_err("cannot write", &path))?;
            metas.push(ChunkMeta { min_time: c.min_time(), max_time: c.max_time(), offset: self.chunks_len });
            self.chunks_len += (head.len() + bytes.len() + 4) as u64;
            self.stats.num_chunks += 1;
            self.stats.num_samples += c.len() as u64;
        }
        self.stats.num_series += 1;
        self.last = Some(labels.clone());
        self.series.push((labels.clone(), metas));
        Ok(())
    }

    /// Writes the index and meta, fsyncs, and renames the block into place.
    pub fn finish(
        mut self,
        min_time: i64,
        max_time: i64,
        compaction: Compaction,
    ) -> Result<BlockMeta, BlockError> {
        let chunks_path = self.tmp.join("chunks");
        self.chunks.flush().map_err(io_err("cannot write", &chunks_path))?;
        self.chunks.get_ref().sync_all().map_err(io_err("cannot fsync", &chunks_path))?;

        let mut symbols: Vec<&str> =
            self.series.iter().flat_map(|(l, _)| l.iter().flat_map(|(n, v)| [n, v])).collect();
        symbols.sort_unstable();
        symbols.dedup();
        let sym_ids: HashMap<&str, u64> = symbols.iter().enumerate().map(|(i, s)| (*s, i as u64)).collect();

        let mut idx = Vec::with_capacity(64 + self.series.len() * 64);
        idx.extend_from_slice(INDEX_MAGIC);
        let symbols_off = idx.len() as u64;
        put_uvarint(&mut idx, symbols.len() as u64);
        for s in &symbols {
            put_uvarint(&mut idx, s.len() as u64);
            idx.extend_from_slice(s.as_bytes());
        }
        let series_off = idx.len() as u64;
        for (labels, metas) in &self.series {
            put_uvarint(&mut idx, labels.len() as u64);
            for (n, v) in labels.iter() {
                put_uvarint(&mut idx, sym_ids.get(n).copied().unwrap_or_default());
                put_uvarint(&mut idx, sym_ids.get(v).copied().unwrap_or_default());
            }
            put_uvarint(&mut idx, metas.len() as u64);
            for m in metas {
                put_varint(&mut idx, m.min_time);
                put_uvarint(&mut idx, m.max_time.wrapping_sub(m.min_time) as u64);
                put_uvarint(&mut idx, m.offset);
            }
        }
        idx.extend_from_slice(&symbols_off.to_le_bytes());
        idx.extend_from_slice(&series_off.to_le_bytes());
        idx.extend_from_slice(&(self.series.len() as u64).to_le_bytes());
        let crc = crc32c::crc32c(&idx);
        idx.extend_from_slice(&crc.to_le_bytes());
        write_synced(&self.tmp.join("index"), &idx)?;

        let id = self.dest.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let meta = BlockMeta { ulid: id, min_time, max_time, stats: self.stats, compaction, version: 1 };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| BlockError::Corrupt {
            path: self.tmp.clone(),
            what: format!("cannot encode meta.json: {e}"),
        })?;
        write_synced(&self.tmp.join("meta.json"), &json)?;
        fs::rename(&self.tmp, &self.dest).map_err(io_err("cannot rename block into place", &self.dest))?;
        if let Some(parent) = self.dest.parent() {
            sync_dir(parent);
        }
        Ok(meta)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BlockError> {
    let mut f = File::create(path).map_err(io_err("cannot create", path))?;
    f.write_all(bytes).map_err(io_err("cannot write", path))?;
    f.sync_all().map_err(io_err("cannot fsync", path))
}

/// Makes a rename durable. A failure here only weakens durability on power loss, so it is
/// logged rather than failing the write.
pub(crate) fn sync_dir(dir: &Path) {
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot fsync directory");
    }
}

/// An open, immutable block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index_map: Mmap,
    chunks_map: Mmap,
    /// (offset, len) of each symbol in `index_map`.
    symbols: Vec<(u32, u32)>,
    postings: MemIndex,
    size_bytes: u64,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block").field("dir", &self.dir).field("meta", &self.meta).finish_non_exhaustive()
    }
}

/// One series of a block as a query sees it.
pub struct BlockSeries {
    pub labels: Labels,
    pub chunks: Vec<Chunk>,
}

impl Block {
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let corrupt = |what: String| BlockError::Corrupt { path: dir.to_path_buf(), what };
        let meta_path = dir.join("meta.json");
        let meta_bytes = fs::read(&meta_path).map_err(io_err("cannot read", &meta_path))?;
        let meta: BlockMeta =
            serde_json::from_slice(&meta_bytes).map_err(|e| corrupt(format!("meta.json: {e}")))?;
        let index_map = map_file(&dir.join("index"))?;
        let chunks_map = map_file(&dir.join("chunks"))?;
        let idx: &[u8] = &index_map;
        if idx.len() < INDEX_MAGIC.len() + TOC_LEN || &idx[..INDEX_MAGIC.len()] != INDEX_MAGIC {
            return Err(corrupt("index: bad magic or too short".into()));
        }
        let body_len = idx.len() - 4;
        let want_crc = u32::from_le_bytes(idx[body_len..].try_into().unwrap_or_default());
        if crc32c::crc32c(&idx[..body_len]) != want_crc {
            return Err(corrupt("index: checksum mismatch".into()));
        }
        let toc = &idx[body_len - 24..body_len];
        let symbols_off = u64::from_le_bytes(toc[0..8].try_into().unwrap_or_default()) as usize;
        let series_off = u64::from_le_bytes(toc[8..16].try_into().unwrap_or_default()) as usize;
        let series_count = u64::from_le_bytes(toc[16..24].try_into().unwrap_or_default());
        let series_end = body_len - 24;
        if symbols_off > series_off || series_off > series_end {
            return Err(corrupt("index: table of contents out of range".into()));
        }

        let mut r = Reader { buf: &idx[..series_off], pos: symbols_off };
        let n = r.uvarint().ok_or_else(|| corrupt("index: symbol count".into()))?;
        let mut symbols = Vec::with_capacity(n.min(1 << 24) as usize);
        for _ in 0..n {
            let len = r.uvarint().ok_or_else(|| corrupt("index: symbol length".into()))? as usize;
            let start = r.pos;
            let bytes = r.take(len).ok_or_else(|| corrupt("index: symbol runs past its section".into()))?;
            std::str::from_utf8(bytes).map_err(|_| corrupt("index: symbol is not UTF-8".into()))?;
            symbols.push((start as u32, len as u32));
        }

        let mut block = Block {
            dir: dir.to_path_buf(),
            meta,
            index_map,
            chunks_map,
            symbols,
            postings: MemIndex::new(),
            size_bytes: 0,
        };
        let mut postings = MemIndex::new();
        let mut pos = series_off;
        for _ in 0..series_count {
            if pos >= series_end {
                return Err(corrupt("index: fewer series than announced".into()));
            }
            let (labels, _, next) = block.read_series(pos, series_end, false)?;
            postings.add(pos as u64, &labels);
            pos = next;
        }
        block.postings = postings;
        block.size_bytes = dir_size(dir);
        Ok(block)
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn symbol(&self, id: u64) -> Option<&str> {
        let &(off, len) = self.symbols.get(usize::try_from(id).ok()?)?;
        std::str::from_utf8(self.index_map.get(off as usize..(off + len) as usize)?).ok()
    }

    /// Decodes the series entry at `pos`: its labels, its chunk metas (if asked) and where the
    /// next entry starts.
    fn read_series(
        &self,
        pos: usize,
        end: usize,
        metas: bool,
    ) -> Result<(Labels, Vec<ChunkMeta>, usize), BlockError> {
        let corrupt =
            |what: &str| BlockError::Corrupt { path: self.dir.clone(), what: format!("index: {what}") };
        let mut r = Reader { buf: self.index_map.get(..end).unwrap_or_default(), pos };
        let n = r.uvarint().ok_or_else(|| corrupt("series label count"))?;
        let mut pairs = Vec::with_capacity(n.min(256) as usize);
        for _ in 0..n {
            let name =
                r.uvarint().and_then(|id| self.symbol(id)).ok_or_else(|| corrupt("label name symbol"))?;
            let value =
                r.uvarint().and_then(|id| self.symbol(id)).ok_or_else(|| corrupt("label value symbol"))?;
            pairs.push((name, value));
        }
        let labels = Labels::new(pairs).map_err(|e| corrupt(&format!("series labels: {e}")))?;
        let nchunks = r.uvarint().ok_or_else(|| corrupt("chunk count"))?;
        let mut out = Vec::new();
        for _ in 0..nchunks {
            let min_time = r.varint().ok_or_else(|| corrupt("chunk min time"))?;
            let span = r.uvarint().ok_or_else(|| corrupt("chunk time span"))?;
            let offset = r.uvarint().ok_or_else(|| corrupt("chunk offset"))?;
            if metas {
                out.push(ChunkMeta { min_time, max_time: min_time.wrapping_add(span as i64), offset });
            }
        }
        Ok((labels, out, r.pos))
    }

    fn read_chunk(&self, offset: u64) -> Result<Chunk, BlockError> {
        let corrupt = |what: String| BlockError::Corrupt { path: self.dir.join("chunks"), what };
        let mut r = Reader { buf: &self.chunks_map, pos: usize::try_from(offset).unwrap_or(usize::MAX) };
        let len = r.uvarint().ok_or_else(|| corrupt(format!("chunk at {offset}: bad length")))? as usize;
        let bytes = r.take(len).ok_or_else(|| corrupt(format!("chunk at {offset}: runs past the file")))?;
        let crc = r.take(4).ok_or_else(|| corrupt(format!("chunk at {offset}: checksum missing")))?;
        if crc32c::crc32c(bytes).to_le_bytes() != crc {
            return Err(corrupt(format!("chunk at {offset}: checksum mismatch")));
        }
        Chunk::from_bytes(bytes.to_vec()).map_err(|e| corrupt(format!("chunk at {offset}: {e}")))
    }

    /// Series matching all matchers with chunks overlapping `[mint, maxt]`, in label order.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<BlockSeries>, BlockError> {
        if self.meta.max_time <= mint || self.meta.min_time > maxt {
            return Ok(Vec::new());
        }
        let end = self.index_map.len() - 4 - 24;
        let mut out = Vec::new();
        for r in self.postings.select(matchers) {
            let (labels, metas, _) = self.read_series(r as usize, end, true)?;
            let chunks = metas
                .iter()
                .filter(|m| m.min_time <= maxt && m.max_time >= mint)
                .map(|m| self.read_chunk(m.offset))
                .collect::<Result<Vec<_>, _>>()?;
            if !chunks.is_empty() {
                out.push(BlockSeries { labels, chunks });
            }
        }
        // Entries are written in label order and refs are their offsets, so this is sorted.
        Ok(out)
    }

    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        self.postings.label_names(matchers)
    }

    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        self.postings.label_values(name, matchers)
    }
}

/// Compaction's view of a block: all of it, series by series, without going through matchers.
impl Block {
    /// Every series with its chunk metas, in label order.
    pub(crate) fn all_series(
        &self,
    ) -> impl Iterator<Item = Result<(Labels, Vec<ChunkMeta>), BlockError>> + '_ {
        let end = self.index_map.len() - 4 - 24;
        // Refs are entry offsets, ascending, and entries are written in label order.
        self.postings
            .all_series()
            .iter()
            .map(move |&r| self.read_series(r as usize, end, true).map(|(labels, metas, _)| (labels, metas)))
    }

    /// The chunk a meta from [`Block::all_series`] points to, its checksum checked.
    pub(crate) fn chunk(&self, meta: &ChunkMeta) -> Result<Chunk, BlockError> {
        self.read_chunk(meta.offset)
    }
}

fn map_file(path: &Path) -> Result<Mmap, BlockError> {
    let f = File::open(path).map_err(io_err("cannot open", path))?;
    // SAFETY: block files are immutable once renamed into place; Vigil never writes them again
    // and deletes a block only after dropping every reader of it.
    unsafe { Mmap::map(&f) }.map_err(io_err("cannot map", path))
}

pub(crate) fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or_default()
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i64> {
        let u = self.uvarint()?;
        Some((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
}

fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_in_one_millisecond_differ_and_sort_by_creation() {
        let ids: Vec<String> = (0..1000).map(|_| new_block_id()).collect();
        assert!(ids.iter().all(|id| id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())));
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "ids repeat");
        // The sequence sorts ids from one process even when the clock did not move.
        assert!(ids.windows(2).all(|w| w[0] < w[1] || &w[0][16..20] == "ffff"));
    }
    use crate::tsdb::chunk::ChunkEncoder;
    use crate::tsdb::index::MatchOp;

    fn chunk(ts: impl Iterator<Item = i64>, f: impl Fn(i64) -> f64) -> Chunk {
        let mut e = ChunkEncoder::new();
        for t in ts {
            e.append(t, f(t));
        }
        e.seal()
    }

    fn write_block(dir: &Path) -> BlockMeta {
        let mut w = BlockWriter::create(dir, "b1").unwrap();
        let mut series: Vec<(Labels, Vec<Chunk>)> = (0..50)
            .map(|i| {
                let l = Labels::new([
                    ("__name__", "m"),
                    ("i", &i.to_string()),
                    ("odd", if i % 2 == 1 { "y" } else { "" }),
                ])
                .unwrap();
                let c1 = chunk((0..120).map(|k| k * 15_000), move |t| (t / 1000 + i) as f64);
                let c2 = chunk((120..200).map(|k| k * 15_000), |_| f64::from_bits(0x7ff0_0000_0000_0002));
                (l, vec![c1, c2])
            })
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        for (l, c) in &series {
            w.add_series(l, c).unwrap();
        }
        w.finish(0, 200 * 15_000, Compaction { level: 1, sources: vec!["b1".into()], parents: vec![] })
            .unwrap()
    }

    #[test]
    fn write_open_select_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let meta = write_block(dir.path());
        assert_eq!(meta.stats, BlockStats { num_series: 50, num_chunks: 100, num_samples: 50 * 200 });
        assert!(!dir.path().join("b1.tmp").exists());
        let b = Block::open(&dir.path().join("b1")).unwrap();
        assert_eq!(b.meta(), &meta);

        let odd = b.select(&[Matcher::new(MatchOp::Equal, "odd", "y").unwrap()], 0, i64::MAX).unwrap();
        assert_eq!(odd.len(), 25);
        assert!(odd.windows(2).all(|w| w[0].labels < w[1].labels));
        let s = &odd[0];
        let i: i64 = s.labels.get("i").unwrap().parse().unwrap();
        let samples: Vec<(i64, f64)> = s.chunks.iter().flat_map(|c| c.iter()).collect();
        assert_eq!(samples.len(), 200);
        assert_eq!(samples[3], (45_000, (45 + i) as f64));
        assert_eq!(samples[150].1.to_bits(), 0x7ff0_0000_0000_0002);

        // Only the chunks overlapping the range are read.
        let late = b.select(&[Matcher::equal("__name__", "m")], 150 * 15_000, i64::MAX).unwrap();
        assert!(late.iter().all(|s| s.chunks.len() == 1));
        assert_eq!(b.label_values("odd", &[]), vec!["y".to_string()]);
        assert!(b.select(&[Matcher::equal("__name__", "m")], 200 * 15_000, i64::MAX).unwrap().is_empty());
    }

    #[test]
    fn corrupt_index_and_chunk_are_reported_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        write_block(dir.path());
        let bdir = dir.path().join("b1");
        let mut idx = fs::read(bdir.join("index")).unwrap();
        idx[20] ^= 0xff;
        fs::write(bdir.join("index"), &idx).unwrap();
        let err = Block::open(&bdir).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        idx[20] ^= 0xff;
        fs::write(bdir.join("index"), &idx).unwrap();

        let mut chunks = fs::read(bdir.join("chunks")).unwrap();
        chunks[5] ^= 0x01;
        fs::write(bdir.join("chunks"), &chunks).unwrap();
        let b = Block::open(&bdir).unwrap();
        let err = b.select(&[Matcher::equal("__name__", "m")], 0, i64::MAX).err().unwrap().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn out_of_order_series_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::create(dir.path(), "b").unwrap();
        let c = chunk(0..3, |t| t as f64);
        w.add_series(&Labels::new([("a", "2")]).unwrap(), std::slice::from_ref(&c)).unwrap();
        assert!(w.add_series(&Labels::new([("a", "1")]).unwrap(), &[c]).is_err());
    }
}
