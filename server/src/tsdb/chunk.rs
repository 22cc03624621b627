//! Compressed chunks of samples: the open, appendable [`ChunkEncoder`] of a head series and the
//! immutable [`Chunk`] it seals into, which is what gets written to disk. This module owns the
//! byte format of a chunk and nothing else: when to cut a chunk, where chunks live and how they
//! are checksummed on disk belong to the head and the block writer.
//!
//! A sample is `(i64 milliseconds, f64)`. Values round-trip bit for bit (compare with
//! [`f64::to_bits`]): every NaN payload — Prometheus's stale marker `0x7ff0000000000002`
//! included —, −0.0, ±Inf and subnormals. Every i64 timestamp is supported: all timestamp
//! arithmetic wraps modulo 2⁶⁴, which is exact for strictly increasing i64 timestamps, so there
//! is no range to reject. A chunk holds at most [`MAX_SAMPLES_PER_CHUNK`] samples (the limit of
//! Prometheus's chunks too); the head should cut at about [`TARGET_SAMPLES_PER_CHUNK`].
//!
//! An open chunk is written in Gorilla XOR (the layout of Prometheus's `chunkenc/xor.go`, see
//! `chunk/xor.rs`) because that appends in constant time and can be read while it grows. Sealing
//! re-encodes it into the *packed* encoding when that is smaller, which on simulated scrapes of
//! a real exposition it is by about 3×, to 0.7 bytes per sample (BENCHMARKS.md, "Chunk
//! encoding"): timestamps as offsets from a regular grid or as deltas; values as exact decimal
//! integers `m·10⁻ᵏ`, as near-decimals with ulp residuals, or as raw IEEE bits, in deltas or
//! deltas-of-deltas; all bit-packed with outliers as exceptions (see `chunk/packed.rs`, `chunk/pfor.rs`).
//! Iterators decode 32 samples at a time into a buffer on the stack.
//!
//! # Byte format
//!
//! Varints are LEB128 (`uvarint`); signed ones are zigzag-mapped first (`varint`). Bit fields are
//! written most significant bit first. Every chunk starts with:
//!
//! ```text
//! u8       encoding        1 = XOR, 2 = packed
//! uvarint  n               number of samples, 0..=65535
//! varint   min_time        only if n > 0: the first timestamp
//! uvarint  max − min       only if n > 0: last minus first timestamp, modulo 2⁶⁴
//! ```
//!
//! **Encoding 1, XOR** (n > 0): one bit stream to the end of the chunk, zero-padded to a byte.
//! The first value as 64 raw bits; then per further sample the timestamp's delta-of-delta
//! followed by the value's XOR with the previous one, coded as in `chunk/xor.rs`.
//!
//! **Encoding 2, packed** (n > 0):
//!
//! ```text
//! u8       modes           bit 0: timestamps, 0 = delta, 1 = grid
//!                          bits 1-2: values, 0 = XOR, 1 = delta, 2 = delta-of-delta
//!                          bits 3-7: value source, 0..=18 = decimal scale k,
//!                                    30 = near-decimal, 31 = raw bits (0 for XOR)
//! block    timestamps      only if n ≥ 2: PFOR block (see `pfor`) of n−1 values, for i ≥ 1
//!                          delta: tᵢ − tᵢ₋₁
//!                          grid:  tᵢ − (min + i·D), D = round((max − min)/(n − 1))
//! then, for XOR values:
//! bits     values          as in encoding 1 without timestamps, to the end of the chunk
//! or, for integer values mᵢ (decimal: vᵢ = mᵢ / 10ᵏ exactly; near-decimal:
//! bits(vᵢ) = bits(mᵢ / 10ᵏ) + eᵢ modulo 2⁶⁴; raw bits: mᵢ = bits(vᵢ)):
//! u8       k               only for near-decimals: the scale, 0..=18
//! varint   m₀
//! varint   m₁ − m₀         only for delta-of-delta and n ≥ 2
//! varint   e₀              only for near-decimals
//! uvarint  p               only for decimals: values patched in raw, each as
//!   uvarint  index gap     index − previous index − 1 (the first: its index)
//!   u64 LE   raw bits      the value; its mᵢ repeats mᵢ₋₁ so it adds no delta
//! block    deltas          PFOR block of mᵢ − mᵢ₋₁ (n−1 values, i ≥ 1) or of
//!                          (mᵢ − mᵢ₋₁) − (mᵢ₋₁ − mᵢ₋₂) (n−2 values, i ≥ 2), if any
//! block    residuals       only for near-decimals and n ≥ 2: PFOR block of eᵢ − eᵢ₋₁
//! ```
//!
//! Integer chunks must end exactly after their last block. [`Chunk::from_bytes`] checks all of
//! this structure in O(number of patches) without decoding the bit streams; decoding a corrupt
//! stream stops the iteration and sets [`ChunkIter::error`], and [`Chunk::validate`] decodes
//! everything. Nothing here panics on any input. The chunk has no checksum of its own: the
//! block file that stores it carries one (crc32c).

mod bits;
mod packed;
mod pfor;
mod xor;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::sync::Arc;

use bits::{put_uvarint, read_uvarint, read_varint, uvarint_len, zigzag, BitWriter};
use packed::PackedIter;
use xor::{XorEncoder, XorIter};

/// Samples per chunk at which the head should cut: 120 scrapes, 30 min at 15 s, as Prometheus.
pub const TARGET_SAMPLES_PER_CHUNK: usize = 120;

/// Most samples a chunk can hold; [`ChunkEncoder::try_append`] refuses more.
pub const MAX_SAMPLES_PER_CHUNK: usize = u16::MAX as usize;

const ENC_XOR: u8 = 1;
const ENC_PACKED: u8 = 2;

/// Why bytes are not a chunk, or a sample cannot go into one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk is truncated: {0}")]
    Truncated(&'static str),
    #[error("unknown chunk encoding {0}")]
    UnknownEncoding(u8),
    #[error("chunk claims {0} samples, more than {MAX_SAMPLES_PER_CHUNK}")]
    TooManySamples(u64),
    #[error("chunk is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("sample at {t} ms is not after the chunk's last sample at {last} ms")]
    OutOfOrder { t: i64, last: i64 },
    #[error("chunk already holds {MAX_SAMPLES_PER_CHUNK} samples")]
    Full,
}

/// How a chunk's bytes are encoded, for statistics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Xor,
    Packed { timestamps: TimestampCoding, values: ValueCoding },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampCoding {
    /// `tᵢ − tᵢ₋₁`.
    Delta,
    /// `tᵢ − (t₀ + i·D)`.
    Grid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueCoding {
    Xor,
    Delta(ValueSource),
    DeltaOfDelta(ValueSource),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueSource {
    /// Values are `m / 10^scale` exactly, a few raw exceptions aside.
    Decimal { scale: u8 },
    /// Values are `m / 10^scale` corrected by a residual in ulps.
    NearDecimal { scale: u8 },
    /// The IEEE bit patterns taken as integers.
    Bits,
}

fn header(encoding: u8, n: u32, min: i64, max: i64, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.push(encoding);
    put_uvarint(&mut out, u64::from(n));
    if n > 0 {
        put_uvarint(&mut out, zigzag(min));
        put_uvarint(&mut out, max.wrapping_sub(min) as u64);
    }
    out
}

fn header_len(n: u32, min: i64, max: i64) -> usize {
    let times = if n > 0 { uvarint_len(zigzag(min)) + uvarint_len(max.wrapping_sub(min) as u64) } else { 0 };
    1 + uvarint_len(u64::from(n)) + times
}

/// The open chunk of a series: samples are appended in time order and can be read at any time.
#[derive(Clone, Debug, Default)]
pub struct ChunkEncoder {
    xor: XorEncoder,
}

impl ChunkEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a sample. The caller guarantees that `t` is after the last sample and that the
    /// chunk is not full (the head cuts long before); [`ChunkEncoder::try_append`] checks both.
    /// A sample breaking that promise is dropped (and asserts in debug builds) rather than
    /// corrupting the chunk.
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) {
        let res = self.try_append(t, v);
        debug_assert!(res.is_ok(), "ChunkEncoder::append: {res:?}");
    }

    /// Appends a sample if `t` is after the last one and the chunk has room.
    #[inline]
    pub fn try_append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        let n = self.xor.len();
        if n > 0 && t <= self.xor.last_time() {
            return Err(ChunkError::OutOfOrder { t, last: self.xor.last_time() });
        }
        if n as usize >= MAX_SAMPLES_PER_CHUNK {
            return Err(ChunkError::Full);
        }
        self.xor.append(t, v);
        Ok(())
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.xor.len() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.xor.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.len() >= MAX_SAMPLES_PER_CHUNK
    }

    pub fn min_time(&self) -> Option<i64> {
        (!self.is_empty()).then(|| self.xor.first_time())
    }

    pub fn max_time(&self) -> Option<i64> {
        (!self.is_empty()).then(|| self.xor.last_time())
    }

    /// Size in bytes of the chunk as it stands (the XOR encoding, header included).
    pub fn byte_len(&self) -> usize {
        let n = self.xor.len();
        header_len(n, self.xor.first_time(), self.xor.last_time()) + self.xor.payload().len()
    }

    /// Reads the samples appended so far, decoding in place.
    pub fn iter(&self) -> ChunkIter<'_> {
        let n = self.xor.len();
        let inner = if n == 0 {
            Inner::Done
        } else {
            Inner::Xor(XorIter::new(
                self.xor.payload(),
                self.xor.payload_bits(),
                n,
                self.xor.first_time(),
                self.xor.last_time(),
            ))
        };
        ChunkIter::new(inner, self.max_time().unwrap_or(i64::MIN))
    }

    /// Finishes the chunk in whichever encoding is smallest for its samples.
    pub fn seal(self) -> Chunk {
        let n = self.xor.len();
        if n == 0 {
            return self.seal_xor();
        }
        thread_local! {
            static SCRATCH: RefCell<SealScratch> = RefCell::new(SealScratch::default());
        }
        let packed = SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.encode_packed(&mut s),
            Err(_) => self.encode_packed(&mut SealScratch::default()),
        });
        match packed {
            Some(chunk) if chunk.bytes.len() <= self.byte_len() => chunk,
            _ => self.seal_xor(),
        }
    }

    /// Finishes the chunk in the XOR encoding, as written while open (Prometheus's layout).
    pub fn seal_xor(self) -> Chunk {
        let n = self.xor.len();
        let (min, max) = (self.xor.first_time(), self.xor.last_time());
        let mut bytes = header(ENC_XOR, n, min, max, self.byte_len());
        bytes.extend_from_slice(self.xor.payload());
        let (min_time, max_time) = if n == 0 { (i64::MAX, i64::MIN) } else { (min, max) };
        Chunk { bytes: bytes.into(), n, min_time, max_time, encoding: Encoding::Xor }
    }

    fn encode_packed(&self, s: &mut SealScratch) -> Option<Chunk> {
        let n = self.xor.len();
        let (min, max) = (self.xor.first_time(), self.xor.last_time());
        s.ts.clear();
        s.vs.clear();
        let mut it = XorIter::new(self.xor.payload(), self.xor.payload_bits(), n, min, max);
        while let Some(sample) = it.next_sample() {
            let (t, v) = sample.ok()?;
            s.ts.push(t);
            s.vs.push(v);
        }
        let mut out = BitWriter::from_vec(header(ENC_PACKED, n, min, max, self.byte_len()));
        let (timestamps, values) = packed::encode(&s.ts, &s.vs, &mut s.packed, &mut out);
        let bytes: Arc<[u8]> = out.into_vec().into();
        Some(Chunk {
            bytes,
            n,
            min_time: min,
            max_time: max,
            encoding: Encoding::Packed { timestamps, values },
        })
    }
}

#[derive(Default)]
struct SealScratch {
    ts: Vec<i64>,
    vs: Vec<u64>,
    packed: packed::Scratch,
}

/// A sealed chunk: immutable bytes, cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    bytes: Arc<[u8]>,
    n: u32,
    min_time: i64,
    max_time: i64,
    encoding: Encoding,
}

struct Header {
    encoding: u8,
    n: u32,
    min: i64,
    max: i64,
    payload: usize,
}

fn parse_header(bytes: &[u8]) -> Result<Header, ChunkError> {
    let encoding = *bytes.first().ok_or(ChunkError::Truncated("no encoding byte"))?;
    if encoding != ENC_XOR && encoding != ENC_PACKED {
        return Err(ChunkError::UnknownEncoding(encoding));
    }
    let mut pos = 1;
    let n = read_uvarint(bytes, &mut pos).ok_or(ChunkError::Truncated("sample count"))?;
    if n > MAX_SAMPLES_PER_CHUNK as u64 {
        return Err(ChunkError::TooManySamples(n));
    }
    let n = n as u32;
    let (min, max) = if n > 0 {
        let min = read_varint(bytes, &mut pos).ok_or(ChunkError::Truncated("min time"))?;
        let span = read_uvarint(bytes, &mut pos).ok_or(ChunkError::Truncated("max time"))?;
        (min, min.wrapping_add(span as i64))
    } else {
        (i64::MAX, i64::MIN)
    };
    Ok(Header { encoding, n, min, max, payload: pos })
}

impl Chunk {
    /// Takes a chunk's bytes (as read back from disk), checking its header and structure. The
    /// bit streams themselves are checked while iterating, or by [`Chunk::validate`].
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Result<Chunk, ChunkError> {
        let bytes: Arc<[u8]> = bytes.into();
        let h = parse_header(&bytes)?;
        let payload = bytes.get(h.payload..).unwrap_or(&[]);
        let encoding = if h.n == 0 {
            if !payload.is_empty() {
                return Err(ChunkError::Corrupt("bytes after an empty chunk"));
            }
            Encoding::Xor
        } else if h.encoding == ENC_XOR {
            // 64 bits for the first value and at least 2 bits for each further sample.
            if (payload.len() as u64) * 8 < 64 + 2 * (u64::from(h.n) - 1) {
                return Err(ChunkError::Truncated("XOR payload shorter than its samples"));
            }
            Encoding::Xor
        } else {
            let (_, timestamps, values) =
                PackedIter::new(&bytes, h.payload, h.n, h.min, h.max).map_err(ChunkError::Corrupt)?;
            Encoding::Packed { timestamps, values }
        };
        Ok(Chunk { n: h.n, min_time: h.min, max_time: h.max, encoding, bytes })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Timestamp of the first sample (`i64::MAX` for an empty chunk, so that `[min, max]` is an
    /// empty interval that overlaps nothing).
    pub fn min_time(&self) -> i64 {
        self.min_time
    }

    /// Timestamp of the last sample (`i64::MIN` for an empty chunk).
    pub fn max_time(&self) -> i64 {
        self.max_time
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    pub fn iter(&self) -> ChunkIter<'_> {
        let inner = if self.n == 0 {
            Inner::Done
        } else {
            let h = match parse_header(&self.bytes) {
                Ok(h) => h,
                Err(_) => return ChunkIter::corrupt(),
            };
            match h.encoding {
                ENC_XOR => {
                    let payload = self.bytes.get(h.payload..).unwrap_or(&[]);
                    Inner::Xor(XorIter::new(payload, payload.len() * 8, h.n, h.min, h.max))
                }
                _ => match PackedIter::new(&self.bytes, h.payload, h.n, h.min, h.max) {
                    Ok((it, _, _)) => Inner::Packed(it),
                    Err(_) => return ChunkIter::corrupt(),
                },
            }
        };
        ChunkIter::new(inner, self.max_time)
    }

    /// Decodes every sample, checking that there are `len()` of them, in strictly increasing
    /// time order, ending at `max_time()`.
    pub fn validate(&self) -> Result<(), ChunkError> {
        let mut it = self.iter();
        let mut count = 0usize;
        let mut last: Option<i64> = None;
        for (t, _) in it.by_ref() {
            if let Some(last) = last.filter(|&l| t <= l) {
                return Err(ChunkError::OutOfOrder { t, last });
            }
            last = Some(t);
            count += 1;
        }
        if let Some(e) = it.error() {
            return Err(e);
        }
        if count != self.len() {
            return Err(ChunkError::Corrupt("fewer samples than the header says"));
        }
        Ok(())
    }
}

// The packed iterator is the big variant, but an iterator lives on the stack for one chunk's
// scan and boxing it would allocate per scan.
#[allow(clippy::large_enum_variant)]
enum Inner<'a> {
    Done,
    Xor(XorIter<'a>),
    Packed(PackedIter<'a>),
}

/// Samples decoded at a time: each of a chunk's streams is decoded in a tight loop over a batch,
/// and `next()` only reads the batch.
const BATCH: usize = 32;

/// Iterates a chunk's samples in time order, decoding in place without allocating.
///
/// On corrupt data the iteration stops early and [`ChunkIter::error`] says so.
pub struct ChunkIter<'a> {
    inner: Inner<'a>,
    batch_t: [i64; BATCH],
    batch_v: [f64; BATCH],
    pos: usize,
    len: usize,
    max_time: i64,
    corrupt: bool,
}

impl<'a> ChunkIter<'a> {
    fn new(inner: Inner<'a>, max_time: i64) -> Self {
        ChunkIter {
            inner,
            batch_t: [0; BATCH],
            batch_v: [0.0; BATCH],
            pos: 0,
            len: 0,
            max_time,
            corrupt: false,
        }
    }

    fn corrupt() -> Self {
        let mut it = Self::new(Inner::Done, i64::MIN);
        it.corrupt = true;
        it
    }

    /// Decodes the next batch; false at the end or on corrupt data.
    #[inline(never)]
    fn refill(&mut self) -> bool {
        let res = match &mut self.inner {
            Inner::Done => Ok(0),
            Inner::Xor(it) => it.fill(&mut self.batch_t, &mut self.batch_v),
            Inner::Packed(it) => it.fill(&mut self.batch_t, &mut self.batch_v),
        };
        self.pos = 0;
        match res {
            Ok(k) => {
                self.len = k;
                k > 0
            }
            Err(()) => {
                self.len = 0;
                self.corrupt = true;
                self.inner = Inner::Done;
                false
            }
        }
    }

    /// Appends the remaining samples with `mint <= t <= maxt` to `buf`, a decoded batch at a time
    /// (a query reads whole series this way, without an iterator call per sample). Returns `true`
    /// once it has seen a sample after `maxt`, so the caller can stop reading later chunks.
    pub fn read_range_into(&mut self, mint: i64, maxt: i64, buf: &mut Vec<(i64, f64)>) -> bool {
        loop {
            if self.pos == self.len && !self.refill() {
                return false;
            }
            let (ts, vs) = (&self.batch_t[self.pos..self.len], &self.batch_v[self.pos..self.len]);
            self.pos = self.len;
            if ts.last().is_some_and(|&t| t < mint) {
                continue;
            }
            for (&t, &v) in ts.iter().zip(vs) {
                if t > maxt {
                    return true;
                }
                if t >= mint {
                    buf.push((t, v));
                }
            }
        }
    }

    /// Skips to the first sample at or after `t` and returns it without consuming it: the next
    /// call to `next()` yields it again. `None` if there is no such sample.
    pub fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        if t > self.max_time {
            self.inner = Inner::Done;
            self.pos = self.len;
            return None;
        }
        loop {
            if self.pos == self.len && !self.refill() {
                return None;
            }
            let (bt, bv) = (self.batch_t.get(self.pos..self.len)?, self.batch_v.get(self.pos..self.len)?);
            match bt.iter().position(|&s| s >= t) {
                Some(j) => {
                    self.pos += j;
                    return Some((bt[j], bv[j]));
                }
                None => self.pos = self.len,
            }
        }
    }

    /// Set once the iteration stopped because the chunk's bytes are malformed.
    pub fn error(&self) -> Option<ChunkError> {
        self.corrupt.then_some(ChunkError::Corrupt("malformed bit stream"))
    }

    fn remaining(&self) -> usize {
        let rest = match &self.inner {
            Inner::Done => 0,
            Inner::Xor(it) => it.remaining(),
            Inner::Packed(it) => it.remaining(),
        };
        rest as usize + (self.len - self.pos)
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if self.pos == self.len && !self.refill() {
            return None;
        }
        let j = self.pos;
        self.pos += 1;
        Some((*self.batch_t.get(j)?, *self.batch_v.get(j)?))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Corrupt data may end the iteration early, hence no exact lower bound.
        (0, Some(self.remaining()))
    }
}
