//! The byte layout of one WAL record and of its two payloads, shared by the writer, replay and
//! checkpoints. Nothing here touches a file: encoders append to a `Vec<u8>`, decoders read a
//! slice whose checksum the caller has already verified.
//!
//! ```text
//! record   = type:u8 | length:u32 LE | crc:u32 LE | payload[length]
//!            crc = crc32c(type | length | payload); type 0 is never written, so zeroed disk
//!            reads as damage rather than as an empty record.
//! series   = ( ref:uvarint | n:u32 LE | ( len:uvarint name | len:uvarint value ){n} )*
//! samples  = base_ref:uvarint | base_t:varint | ( dref:varint | dt:varint | v:u64 LE )*
//!            dref = ref - base_ref and dt = t - base_t, both wrapping, so every i64 and u64
//!            round-trips; v is f64::to_bits, keeping NaN payloads such as the stale marker.
//! ```
//!
//! Those are the first format's payloads (types 1 and 2), still read from older data dirs and
//! written with compression off. By default the writer uses types 3 (the series payload
//! compressed with snappy) and 4 (delta-coded samples), laid out under "Compressed records"
//! below.
//!
//! Entry lists carry no count: they run to the end of the payload, which the header bounds.
//! The label count is a fixed-width u32 so labels can be streamed from any iterator and the
//! count patched in afterwards.

/// Size of the record header: type, payload length, crc.
pub(crate) const HEADER_LEN: usize = 9;

/// Payloads above this are refused on write and read as damage on replay, so a garbage length
/// field can never make replay allocate gigabytes.
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;

/// Record type byte. New kinds (tombstones, exemplars) take the next free numbers; replay skips
/// checksummed records of a type it does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordType {
    /// Series entries, uncompressed: written when snappy would not make them smaller, or
    /// when compression is off.
    Series = 1,
    /// The first samples format, about 11 bytes per sample: written only when compression is
    /// off, read from data dirs of older Vigils.
    Samples = 2,
    /// A [`RecordType::Series`] payload compressed with snappy (raw format, no framing).
    SeriesSnappy = 3,
    /// Column-encoded samples whose values refer to earlier records of the same file.
    SamplesDelta = 4,
}

impl RecordType {
    pub(crate) fn from_byte(b: u8) -> Option<RecordType> {
        match b {
            1 => Some(RecordType::Series),
            2 => Some(RecordType::Samples),
            3 => Some(RecordType::SeriesSnappy),
            4 => Some(RecordType::SamplesDelta),
            _ => None,
        }
    }
}

/// One sample as the WAL stores it: the series is named by the reference the head gave it in an
/// earlier Series record.
#[derive(Clone, Copy, Debug)]
pub struct RefSample {
    pub series: u64,
    pub t: i64,
    pub v: f64,
}

impl PartialEq for RefSample {
    /// Bit equality, so NaN payloads and -0.0 compare as the WAL must preserve them.
    fn eq(&self, other: &Self) -> bool {
        self.series == other.series && self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

impl Eq for RefSample {}

/// One series definition read back from the WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefSeries {
    pub series: u64,
    pub labels: Vec<(String, String)>,
}

/// Why a checksummed payload could not be decoded. Only a writer bug (or a crc collision) gets
/// here, and replay treats it like any other damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    Truncated,
    VarintOverflow,
    InvalidUtf8,
    /// The snappy stream of a compressed record is malformed or inflates past the limit.
    Snappy,
    /// A samples record claims more samples than its bytes can hold, or its runs of ref or
    /// timestamp deltas do not add up to the sample count.
    BadCount,
    /// A value's control byte names no encoding.
    BadValueControl,
}

impl DecodeError {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            DecodeError::Truncated => "payload ends inside an entry",
            DecodeError::VarintOverflow => "varint longer than 10 bytes",
            DecodeError::InvalidUtf8 => "label is not UTF-8",
            DecodeError::Snappy => "malformed snappy payload",
            DecodeError::BadCount => "sample count does not match the payload",
            DecodeError::BadValueControl => "unknown value encoding",
        }
    }
}

/// Starts a record in `buf` (cleared): room for the header, filled in by [`finish`].
pub(crate) fn begin(buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0; HEADER_LEN]);
}

/// Writes the header of the record begun with [`begin`]. Fails only if the payload is too big.
pub(crate) fn finish(buf: &mut [u8], typ: RecordType) -> Result<(), usize> {
    let payload_len = buf.len() - HEADER_LEN;
    if payload_len > MAX_PAYLOAD {
        return Err(payload_len);
    }
    buf[0] = typ as u8;
    buf[1..5].copy_from_slice(&(payload_len as u32).to_le_bytes());
    let crc = checksum(&buf[..5], &buf[HEADER_LEN..]);
    buf[5..9].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The crc of a record: over the type and length bytes, then the payload.
pub(crate) fn checksum(type_and_len: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(type_and_len), payload)
}

/// A parsed header; the payload is not yet verified.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub typ: u8,
    pub len: usize,
    pub crc: u32,
}

pub(crate) fn parse_header(h: &[u8; HEADER_LEN]) -> Header {
    Header {
        typ: h[0],
        len: u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize,
        crc: u32::from_le_bytes([h[5], h[6], h[7], h[8]]),
    }
}

/// Appends one series entry to a record begun with [`begin`].
pub(crate) fn encode_series_entry<'a, L>(buf: &mut Vec<u8>, series: u64, labels: L)
where
    L: IntoIterator<Item = (&'a str, &'a str)>,
{
    put_uvarint(buf, series);
    let count_at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    let mut n: u32 = 0;
    for (name, value) in labels {
        put_uvarint(buf, name.len() as u64);
        buf.extend_from_slice(name.as_bytes());
        put_uvarint(buf, value.len() as u64);
        buf.extend_from_slice(value.as_bytes());
        n = n.wrapping_add(1);
    }
    buf[count_at..count_at + 4].copy_from_slice(&n.to_le_bytes());
}

/// Appends a payload in the old [`RecordType::Samples`] format to a record begun with
/// [`begin`]: for [`super::WalOptions::compress`] off, which older Vigils can read.
pub(crate) fn encode_samples(buf: &mut Vec<u8>, samples: &[RefSample]) {
    let Some(first) = samples.first() else { return };
    buf.reserve(20 + samples.len() * MAX_SAMPLE_LEN);
    put_uvarint(buf, first.series);
    put_varint(buf, first.t);
    // Samples are assembled in a stack block and appended a block at a time: one capacity
    // check and one memcpy per 64 samples instead of one per byte. This loop is most of the
    // CPU cost of an append.
    let mut block = [0u8; BLOCK_SAMPLES * MAX_SAMPLE_LEN];
    for chunk in samples.chunks(BLOCK_SAMPLES) {
        let mut n = 0;
        for s in chunk {
            n = put_varint_at(&mut block, n, s.series.wrapping_sub(first.series) as i64);
            n = put_varint_at(&mut block, n, s.t.wrapping_sub(first.t));
            block[n..n + 8].copy_from_slice(&s.v.to_bits().to_le_bytes());
            n += 8;
        }
        buf.extend_from_slice(&block[..n]);
    }
}

const BLOCK_SAMPLES: usize = 64;
/// Two 10-byte varints and the value.
const MAX_SAMPLE_LEN: usize = 28;

/// Writes a zigzag varint at `block[at..]`; returns the end.
#[inline]
fn put_varint_at(block: &mut [u8], mut at: usize, x: i64) -> usize {
    let mut u = ((x << 1) ^ (x >> 63)) as u64;
    while u >= 0x80 {
        block[at] = (u as u8) | 0x80;
        u >>= 7;
        at += 1;
    }
    block[at] = u as u8;
    at + 1
}

/// Decodes a series payload, appending to `out`.
pub(crate) fn decode_series(mut p: &[u8], out: &mut Vec<RefSeries>) -> Result<(), DecodeError> {
    while !p.is_empty() {
        let series = get_uvarint(&mut p)?;
        let (n, rest) = p.split_first_chunk::<4>().ok_or(DecodeError::Truncated)?;
        p = rest;
        let n = u32::from_le_bytes(*n);
        // Each label needs at least two length bytes, which bounds a lying count.
        let mut labels = Vec::with_capacity((n as usize).min(p.len() / 2));
        for _ in 0..n {
            let name = get_str(&mut p)?;
            let value = get_str(&mut p)?;
            labels.push((name, value));
        }
        out.push(RefSeries { series, labels });
    }
    Ok(())
}

/// Decodes a samples payload into `out` (cleared first).
pub(crate) fn decode_samples(mut p: &[u8], out: &mut Vec<RefSample>) -> Result<(), DecodeError> {
    out.clear();
    if p.is_empty() {
        return Ok(());
    }
    let base_ref = get_uvarint(&mut p)?;
    let base_t = get_varint(&mut p)?;
    // A sample takes at least 10 bytes.
    out.reserve(p.len() / 10);
    while !p.is_empty() {
        let dref = get_varint(&mut p)?;
        let dt = get_varint(&mut p)?;
        let (v, rest) = p.split_first_chunk::<8>().ok_or(DecodeError::Truncated)?;
        p = rest;
        out.push(RefSample {
            series: base_ref.wrapping_add(dref as u64),
            t: base_t.wrapping_add(dt),
            v: f64::from_bits(u64::from_le_bytes(*v)),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Compressed records.
//
// ```text
// series-snappy = snappy_raw(series payload)
// samples-delta = flags:u8 | n:uvarint | first_ref:uvarint | ref_runs | first_t:varint | t_runs
//                 | value{n}
//   flags    bit 0 RESET: forget every series' previous value before decoding this record
//   runs     = ( delta:varint | repeat:uvarint )* : `delta` repeated `repeat + 1` times, for
//              samples 1..n; deltas are to the previous sample's ref (or t), wrapping, so a
//              scrape's consecutive refs are one run and its shared timestamp another
//   value    = control:u8 | data
//     control 0b0sss_llll  XOR with the series' previous value: `l` (≤ 8) bytes LE, shifted left
//                          by `s` bytes (the XOR's trailing zero bytes); l = 0: the same value
//     control 0b1000_kkkk  decimal: v = m / 10^k (k ≤ 9) with m = prev_m + varint, where prev_m
//                          is the previous value as a multiple of 10^-k if it is exactly one, else 0
//     control 0b11rr_rrrr  this sample and the next r + 1 keep their previous values (a run of
//                          constants or idle counters); no data
// ```
//
// "Previous value" is the value of the same ref in the last sample before this one in the same
// file (0 bits if none): replay walks a file from its start, so the decoder rebuilds exactly the
// state the encoder had. Every file starts with no previous values, so a segment or checkpoint
// is decoded on its own; a failed write makes the writer forget its state and set RESET on the
// next record, because the file then lacks a record the writer's state had seen.
// ---------------------------------------------------------------------------------------------

/// Flag of a [`RecordType::SamplesDelta`] record: the decoder forgets previous values first.
const FLAG_RESET: u8 = 1;

/// Largest decimal exponent tried: nanoseconds in seconds, the finest that exporters print.
const MAX_DECIMALS: usize = 9;

const POW10: [f64; MAX_DECIMALS + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Integers up to this are exact in an f64; decimals are only used below it.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Control byte, one value, and its longest data (a 10-byte varint).
const MAX_VALUE_LEN: usize = 11;

/// Refs below this keep their previous value in a plain vector indexed by ref (the head hands
/// out refs from 1 upwards, so this is 8 bytes per series); larger ones go to a hash map.
const DENSE_REFS: u64 = 1 << 21;

/// The previous value (as bits) of every ref seen in the current file. Writer and reader keep
/// one each and must agree bit for bit; a ref never seen reads as 0.
#[derive(Default)]
pub(crate) struct ValueState {
    dense: Vec<u64>,
    sparse: std::collections::HashMap<u64, u64>,
}

impl ValueState {
    #[inline]
    fn get(&self, series: u64) -> u64 {
        if series < DENSE_REFS {
            self.dense.get(series as usize).copied().unwrap_or(0)
        } else {
            self.sparse.get(&series).copied().unwrap_or(0)
        }
    }

    #[inline]
    fn set(&mut self, series: u64, bits: u64) {
        if series < DENSE_REFS {
            let i = series as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, 0);
            }
            self.dense[i] = bits;
        } else {
            self.sparse.insert(series, bits);
        }
    }

    /// Forgets every value; keeps the vector's memory, which the next file will need again.
    pub(crate) fn clear(&mut self) {
        self.dense.fill(0);
        self.sparse.clear();
    }
}

/// Writes [`RecordType::SamplesDelta`] payloads; its state must follow the file written.
#[derive(Default)]
pub(crate) struct SamplesEncoder {
    values: ValueState,
    /// Per dense ref, 1 + the decimals of its last decimal-coded value (0: none). Only a
    /// speed hint: the format does not depend on it, so it survives [`Self::forget`].
    hints: Vec<u8>,
    /// Set when the state was forgotten mid-file: the next record tells the reader to do so too.
    reset: bool,
}

impl SamplesEncoder {
    /// Forgets all previous values, for a new file or after a record that may not have reached
    /// the file. `mid_file`: the reader cannot know, so the next record carries RESET.
    pub(crate) fn forget(&mut self, mid_file: bool) {
        self.values.clear();
        self.reset = mid_file;
    }

    /// Appends the payload of `samples` (not empty) to a record begun with [`begin`], and
    /// takes their values as the series' previous ones.
    pub(crate) fn encode(&mut self, buf: &mut Vec<u8>, samples: &[RefSample]) {
        let Some(first) = samples.first() else { return };
        buf.push(if self.reset { FLAG_RESET } else { 0 });
        self.reset = false;
        put_uvarint(buf, samples.len() as u64);
        put_uvarint(buf, first.series);
        put_runs(buf, samples.windows(2).map(|w| w[1].series.wrapping_sub(w[0].series) as i64));
        put_varint(buf, first.t);
        put_runs(buf, samples.windows(2).map(|w| w[1].t.wrapping_sub(w[0].t)));
        // Values are assembled in a stack block and appended 64 at a time: one capacity check
        // and one memcpy per block instead of one per byte.
        let mut block = [0u8; BLOCK_VALUES * MAX_VALUE_LEN];
        // Unchanged values not yet written: they go out as one run.
        let mut same = 0usize;
        for chunk in samples.chunks(BLOCK_VALUES) {
            let mut n = 0;
            for s in chunk {
                let bits = s.v.to_bits();
                let prev = self.values.get(s.series);
                if prev == bits {
                    same += 1;
                    if same == MAX_SAME_RUN {
                        n = put_same_at(&mut block, n, same);
                        same = 0;
                    }
                    continue;
                }
                if same > 0 {
                    n = put_same_at(&mut block, n, same);
                    same = 0;
                }
                let hint = self.hint(s.series);
                let (end, k) = put_value_at(&mut block, n, prev, bits, hint);
                n = end;
                self.values.set(s.series, bits);
                self.set_hint(s.series, k);
            }
            buf.extend_from_slice(&block[..n]);
        }
        if same > 0 {
            let n = put_same_at(&mut block, 0, same);
            buf.extend_from_slice(&block[..n]);
        }
    }

    /// The decimals the series' last decimal-coded value had, tried first for the next one:
    /// a series keeps its decimals, and the scan from 0 costs a division per step.
    #[inline]
    fn hint(&self, series: u64) -> Option<usize> {
        let h = *self.hints.get(usize::try_from(series).ok()?)?;
        (h != 0).then(|| usize::from(h - 1))
    }

    #[inline]
    fn set_hint(&mut self, series: u64, k: Option<usize>) {
        let Some(k) = k else { return };
        if series < DENSE_REFS {
            let i = series as usize;
            if i >= self.hints.len() {
                self.hints.resize(i + 1, 0);
            }
            self.hints[i] = k as u8 + 1;
        }
    }
}

/// A run of 2..=65 unchanged values is one control byte `0xc0 + (run - 2)`; one is `0x00`.
const MAX_SAME_RUN: usize = 65;
const SAME_RUN: u8 = 0xc0;

#[inline]
fn put_same_at(block: &mut [u8], at: usize, run: usize) -> usize {
    block[at] = if run == 1 { 0 } else { SAME_RUN + (run - 2) as u8 };
    at + 1
}

const BLOCK_VALUES: usize = 64;

/// Writes `delta` as runs of equal values; see the layout above.
fn put_runs(buf: &mut Vec<u8>, deltas: impl Iterator<Item = i64>) {
    let mut run: Option<(i64, u64)> = None;
    for d in deltas {
        run = match run {
            Some((cur, repeat)) if cur == d => Some((cur, repeat + 1)),
            Some((cur, repeat)) => {
                put_varint(buf, cur);
                put_uvarint(buf, repeat);
                Some((d, 0))
            }
            None => Some((d, 0)),
        };
    }
    if let Some((cur, repeat)) = run {
        put_varint(buf, cur);
        put_uvarint(buf, repeat);
    }
}

/// `bits` as a multiple of 10^-k, if it is exactly one whose integer fits an f64 exactly.
#[inline]
fn decimal(bits: u64, k: usize) -> Option<i64> {
    if k == 0 {
        return integer(bits);
    }
    let scaled = f64::from_bits(bits) * POW10[k];
    // NaN is not in the range either.
    if !(-EXACT_INT..EXACT_INT).contains(&scaled) {
        return None;
    }
    let m = nearest(scaled);
    ((m as f64 / POW10[k]).to_bits() == bits).then_some(m)
}

/// The integer nearest to `x` (|x| < 2^53), ties away from zero. Not `f64::round`: without
/// SSE4.1 that is a libm call, which made it most of the encoding's cost. Near 2^53 the
/// addition can round the wrong way; callers verify the result, and decoder and encoder use
/// this same function, so such a miss only means the value is coded another way.
#[inline]
fn nearest(x: f64) -> i64 {
    (x + 0.5f64.copysign(x)) as i64
}

/// `bits` as an integer, if it is one within the exact range: `decimal(bits, 0)` without the
/// division by 1.
#[inline]
fn integer(bits: u64) -> Option<i64> {
    let v = f64::from_bits(bits);
    if !(-EXACT_INT..EXACT_INT).contains(&v) {
        return None;
    }
    let m = v as i64;
    ((m as f64).to_bits() == bits).then_some(m)
}

/// The fewest decimals `bits` is exact in, and its multiple of 10^-k then.
#[inline]
fn find_decimal(bits: u64) -> Option<(usize, i64)> {
    if let Some(m) = integer(bits) {
        return Some((0, m));
    }
    let v = f64::from_bits(bits);
    for (k, p) in POW10.iter().enumerate().skip(1) {
        let scaled = v * p;
        // Larger k only scale further past the exact range; NaN and ±Inf stop here too.
        if !(-EXACT_INT..EXACT_INT).contains(&scaled) {
            return None;
        }
        let m = nearest(scaled);
        if (m as f64 / p).to_bits() == bits {
            return Some((k, m));
        }
    }
    None
}

/// What the decimal coding takes as the previous value: its multiple of 10^-k, or 0.
#[inline]
fn prev_decimal(prev: u64, k: usize) -> i64 {
    decimal(prev, k).unwrap_or(0)
}

#[inline]
fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

#[inline]
fn uvarint_len(x: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
}

/// Writes one changed value at `block[at..]`, the shorter of the XOR and the decimal coding,
/// trying the decimals `hint` first; returns the end and the decimals if it was a decimal.
#[inline]
fn put_value_at(
    block: &mut [u8],
    at: usize,
    prev: u64,
    bits: u64,
    hint: Option<usize>,
) -> (usize, Option<usize>) {
    let x = prev ^ bits;
    let shift = x.trailing_zeros() as usize / 8;
    let len = 8 - x.leading_zeros() as usize / 8 - shift;
    // A decimal takes a control byte and at least one more, so it can only win above two.
    if len > 1 {
        let found = match hint.and_then(|k| decimal(bits, k).map(|m| (k, m))) {
            Some(hit) => Some(hit),
            None => find_decimal(bits),
        };
        if let Some((k, m)) = found {
            let d = zigzag(m.wrapping_sub(prev_decimal(prev, k)));
            if uvarint_len(d) < len {
                block[at] = 0x80 | k as u8;
                let mut at = at + 1;
                let mut u = d;
                while u >= 0x80 {
                    block[at] = (u as u8) | 0x80;
                    u >>= 7;
                    at += 1;
                }
                block[at] = u as u8;
                return (at + 1, Some(k));
            }
        }
    }
    block[at] = ((shift as u8) << 4) | len as u8;
    let bytes = (x >> (8 * shift)).to_le_bytes();
    block[at + 1..at + 1 + len].copy_from_slice(&bytes[..len]);
    (at + 1 + len, None)
}

/// Reads runs of deltas into `n` slots through `apply(i, delta)` for samples 1..=n.
fn get_runs(p: &mut &[u8], n: usize, mut apply: impl FnMut(usize, i64)) -> Result<(), DecodeError> {
    let mut i = 1;
    while i < n {
        let d = get_varint(p)?;
        let repeat = get_uvarint(p)?;
        let end = usize::try_from(repeat)
            .ok()
            .and_then(|r| i.checked_add(r))
            .filter(|&last| last < n)
            .ok_or(DecodeError::BadCount)?;
        for j in i..=end {
            apply(j, d);
        }
        i = end + 1;
    }
    Ok(())
}

/// Decodes a [`RecordType::SamplesDelta`] payload into `out` (cleared first), reading and
/// updating the previous values in `state`.
pub(crate) fn decode_samples_delta(
    mut p: &[u8],
    state: &mut ValueState,
    out: &mut Vec<RefSample>,
) -> Result<(), DecodeError> {
    out.clear();
    let (&flags, rest) = p.split_first().ok_or(DecodeError::Truncated)?;
    p = rest;
    if flags & FLAG_RESET != 0 {
        state.clear();
    }
    let n = get_uvarint(&mut p)?;
    // A control byte stands for at most a run of unchanged values, which bounds a lying count.
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= p.len().saturating_mul(MAX_SAME_RUN))
        .ok_or(DecodeError::BadCount)?;
    if n == 0 {
        return Ok(());
    }
    let first_ref = get_uvarint(&mut p)?;
    out.resize(n, RefSample { series: first_ref, t: 0, v: 0.0 });
    let mut prev = first_ref;
    get_runs(&mut p, n, |i, d| {
        prev = prev.wrapping_add(d as u64);
        out[i].series = prev;
    })?;
    let first_t = get_varint(&mut p)?;
    out[0].t = first_t;
    let mut prev = first_t;
    get_runs(&mut p, n, |i, d| {
        prev = prev.wrapping_add(d);
        out[i].t = prev;
    })?;
    // Samples left in the current run of unchanged values.
    let mut same = 0usize;
    for s in out.iter_mut() {
        let prev = state.get(s.series);
        if same > 0 {
            same -= 1;
            s.v = f64::from_bits(prev);
            continue;
        }
        let (&c, rest) = p.split_first().ok_or(DecodeError::Truncated)?;
        p = rest;
        if c >= SAME_RUN {
            // This sample and the next ones keep their previous values.
            same = usize::from(c - SAME_RUN) + 1;
            s.v = f64::from_bits(prev);
            continue;
        }
        let bits = if c & 0x80 == 0 {
            let len = usize::from(c & 0x0f);
            let shift = usize::from(c >> 4);
            if len + shift > 8 {
                return Err(DecodeError::BadValueControl);
            }
            let data = take(&mut p, len)?;
            let mut bytes = [0u8; 8];
            bytes[..len].copy_from_slice(data);
            // len + shift ≤ 8, so the shift is below 64 whenever len > 0.
            let x = if len == 0 { 0 } else { u64::from_le_bytes(bytes) << (8 * shift) };
            prev ^ x
        } else {
            let k = usize::from(c & 0x7f);
            if k > MAX_DECIMALS {
                return Err(DecodeError::BadValueControl);
            }
            let d = get_varint(&mut p)?;
            let m = prev_decimal(prev, k).wrapping_add(d);
            // Division by 1 is exact: skipping it changes no bit.
            if k == 0 { m as f64 } else { m as f64 / POW10[k] }.to_bits()
        };
        s.v = f64::from_bits(bits);
        state.set(s.series, bits);
    }
    if !p.is_empty() || same > 0 {
        return Err(DecodeError::BadCount);
    }
    Ok(())
}

/// Compresses a [`RecordType::Series`] payload (`raw`) into `out` (cleared first) if snappy
/// makes it smaller; returns the record type `out` holds, or `None` when `raw` should be
/// written as it is.
pub(crate) fn compress_series(raw: &[u8], out: &mut Vec<u8>) -> Option<RecordType> {
    out.clear();
    out.resize(snap::raw::max_compress_len(raw.len()), 0);
    // Fails only for inputs above 4 GiB, far past the record limit: then store it raw.
    let n = snap::raw::Encoder::new().compress(raw, out).ok()?;
    out.truncate(n);
    (n < raw.len()).then_some(RecordType::SeriesSnappy)
}

/// Inflates a [`RecordType::SeriesSnappy`] payload into `out` (cleared first).
pub(crate) fn decompress_series(p: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let len = snap::raw::decompress_len(p).map_err(|_| DecodeError::Snappy)?;
    if len > MAX_PAYLOAD {
        return Err(DecodeError::Snappy);
    }
    out.clear();
    out.resize(len, 0);
    let n = snap::raw::Decoder::new().decompress(p, out).map_err(|_| DecodeError::Snappy)?;
    out.truncate(n);
    Ok(())
}

fn take<'a>(p: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if p.len() < n {
        return Err(DecodeError::Truncated);
    }
    let (head, tail) = p.split_at(n);
    *p = tail;
    Ok(head)
}

fn get_str(p: &mut &[u8]) -> Result<String, DecodeError> {
    let len = get_uvarint(p)?;
    let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
    let bytes = take(p, len)?;
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::InvalidUtf8)
}

pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        buf.push((x as u8) | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, x: i64) {
    put_uvarint(buf, ((x << 1) ^ (x >> 63)) as u64);
}

#[inline]
pub(crate) fn get_uvarint(p: &mut &[u8]) -> Result<u64, DecodeError> {
    // Deltas within a scrape are mostly one byte.
    if let Some((&b, rest)) = p.split_first() {
        if b < 0x80 {
            *p = rest;
            return Ok(u64::from(b));
        }
    }
    // A plain index loop: iterator adapters here cost a lot in unoptimized test builds.
    let mut x: u64 = 0;
    let mut i = 0;
    while i < p.len() && i < 10 {
        let b = p[i];
        // The tenth byte may only contribute the top bit of a u64.
        if i == 9 && b > 1 {
            return Err(DecodeError::VarintOverflow);
        }
        x |= u64::from(b & 0x7f) << (7 * i);
        i += 1;
        if b < 0x80 {
            *p = &p[i..];
            return Ok(x);
        }
    }
    if i == 10 {
        Err(DecodeError::VarintOverflow)
    } else {
        Err(DecodeError::Truncated)
    }
}

#[inline]
pub(crate) fn get_varint(p: &mut &[u8]) -> Result<i64, DecodeError> {
    let u = get_uvarint(p)?;
    Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip_samples(samples: &[RefSample]) -> Vec<RefSample> {
        let mut buf = Vec::new();
        begin(&mut buf);
        encode_samples(&mut buf, samples);
        finish(&mut buf, RecordType::Samples).unwrap();
        let h = parse_header(buf[..HEADER_LEN].try_into().unwrap());
        assert_eq!(h.typ, RecordType::Samples as u8);
        assert_eq!(h.len, buf.len() - HEADER_LEN);
        assert_eq!(h.crc, checksum(&buf[..5], &buf[HEADER_LEN..]));
        let mut out = Vec::new();
        decode_samples(&buf[HEADER_LEN..], &mut out).unwrap();
        out
    }

    /// Encodes `records` in order with one encoder and decodes them with one state, as a
    /// segment is written and replayed.
    fn roundtrip_delta(records: &[Vec<RefSample>]) -> Vec<Vec<RefSample>> {
        let mut enc = SamplesEncoder::default();
        let mut state = ValueState::default();
        records
            .iter()
            .map(|samples| {
                let mut buf = Vec::new();
                enc.encode(&mut buf, samples);
                let mut out = Vec::new();
                decode_samples_delta(&buf, &mut state, &mut out).unwrap();
                out
            })
            .collect()
    }

    const STALE: u64 = 0x7ff0_0000_0000_0002;

    #[test]
    fn delta_records_keep_special_values_bit_exactly() {
        let specials = [
            f64::from_bits(STALE),
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::from_bits(0xfff8_0000_0000_0001),
            f64::MIN_POSITIVE,
            f64::MAX,
            -f64::MAX,
            5e-324,
            0.1,
            -12.5,
            9_007_199_254_740_993.0,
            1e300,
        ];
        // Every special after every other one in the same series, so each is coded against
        // each as the previous value, in both codings.
        let mut records = Vec::new();
        for (i, &a) in specials.iter().enumerate() {
            let samples: Vec<RefSample> = specials
                .iter()
                .enumerate()
                .flat_map(|(j, &b)| {
                    let series = (i * specials.len() + j) as u64;
                    [RefSample { series, t: 1, v: a }, RefSample { series, t: 2, v: b }]
                })
                .collect();
            records.push(samples);
        }
        assert_eq!(roundtrip_delta(&records), records);
    }

    #[test]
    fn delta_records_take_extreme_refs_and_timestamps() {
        let records = vec![
            vec![
                RefSample { series: u64::MAX, t: i64::MIN, v: 1.0 },
                RefSample { series: 0, t: i64::MAX, v: 2.0 },
                RefSample { series: 5, t: 0, v: 3.0 },
                RefSample { series: 3, t: -1, v: 4.0 },
                RefSample { series: 3, t: -1, v: 4.0 },
                RefSample { series: DENSE_REFS, t: 1 << 62, v: -0.0 },
                RefSample { series: DENSE_REFS - 1, t: -(1 << 62), v: f64::from_bits(STALE) },
            ],
            vec![
                RefSample { series: 3, t: 7, v: 4.5 },
                RefSample { series: u64::MAX, t: 7, v: 1.0 },
                RefSample { series: DENSE_REFS, t: 7, v: 0.0 },
            ],
        ];
        assert_eq!(roundtrip_delta(&records), records);
    }

    #[test]
    fn a_scrape_costs_a_few_bytes_per_sample() {
        // Consecutive refs, one timestamp, counters moving by small integers, one-decimal
        // gauges, constants: what a scrape looks like after the first one.
        let scrape = |seq: u64| -> Vec<RefSample> {
            (0..2000u64)
                .map(|i| RefSample {
                    series: 100 + i,
                    t: 1_700_000_000_000 + seq as i64 * 15_000,
                    v: match i % 3 {
                        0 => (1_000_000 * i + seq * (i % 50)) as f64,
                        1 => ((i * 7919 + seq * 104_729) % 100_000) as f64 / 10.0,
                        _ => 42.0,
                    },
                })
                .collect()
        };
        let mut enc = SamplesEncoder::default();
        let mut buf = Vec::new();
        enc.encode(&mut buf, &scrape(0));
        buf.clear();
        enc.encode(&mut buf, &scrape(1));
        // Counters ~2-3 bytes, gauges ~3-4, constants 1.
        assert!(buf.len() < 2000 * 3, "{} bytes", buf.len());
    }

    #[test]
    fn long_runs_of_unchanged_values() {
        for n in [1usize, 2, 64, 65, 66, 130, 131, 1000] {
            let constant = |t| (0..n as u64).map(|i| RefSample { series: i, t, v: 0.5 }).collect::<Vec<_>>();
            let mut changed = constant(2);
            changed[n / 2].v = 7.0;
            let records = vec![constant(1), constant(2), changed, constant(3)];
            assert_eq!(roundtrip_delta(&records), records);
            let mut enc = SamplesEncoder::default();
            let mut buf = Vec::new();
            enc.encode(&mut buf, &constant(1));
            buf.clear();
            enc.encode(&mut buf, &constant(2));
            // At most 12 bytes of header (flags, count, ref and time runs), then one control
            // byte per 65 values.
            assert!(buf.len() <= 12 + n.div_ceil(65), "{n}: {} bytes", buf.len());
        }
    }

    #[test]
    fn reset_makes_the_reader_forget_too() {
        let a = vec![RefSample { series: 1, t: 1, v: 10.0 }, RefSample { series: 2, t: 1, v: 0.5 }];
        let lost = vec![RefSample { series: 1, t: 2, v: 11.0 }];
        let b = vec![RefSample { series: 1, t: 3, v: 12.0 }, RefSample { series: 2, t: 3, v: 0.5 }];
        let mut enc = SamplesEncoder::default();
        let mut state = ValueState::default();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        enc.encode(&mut buf, &a);
        decode_samples_delta(&buf, &mut state, &mut out).unwrap();
        assert_eq!(out, a);
        // Encoded, never written: the writer forgets, as after a failed write.
        enc.encode(&mut Vec::new(), &lost);
        enc.forget(true);
        buf.clear();
        enc.encode(&mut buf, &b);
        assert_eq!(buf[0] & FLAG_RESET, FLAG_RESET);
        decode_samples_delta(&buf, &mut state, &mut out).unwrap();
        assert_eq!(out, b);
    }

    #[test]
    fn damaged_delta_payloads_are_rejected() {
        let mut state = ValueState::default();
        let mut out = Vec::new();
        let mut dec = |p: &[u8]| decode_samples_delta(p, &mut state, &mut out);
        assert_eq!(dec(&[]), Err(DecodeError::Truncated));
        // 1000 samples claimed in 4 bytes.
        assert_eq!(dec(&[0, 0xe8, 0x07, 1, 1, 0, 0]), Err(DecodeError::BadCount));
        // Two samples whose ref run claims three more.
        assert_eq!(dec(&[0, 2, 1, 2, 3, 0, 0, 0, 0, 0]), Err(DecodeError::BadCount));
        // One sample: ref 1, t 0, XOR control with 9 bytes.
        assert_eq!(dec(&[0, 1, 1, 0, 0x09]), Err(DecodeError::BadValueControl));
        assert_eq!(dec(&[0, 1, 1, 0, 0x8a, 0]), Err(DecodeError::BadValueControl));
        assert_eq!(dec(&[0, 1, 1, 0, 0x02, 1]), Err(DecodeError::Truncated));
        // A byte left over.
        assert_eq!(dec(&[0, 1, 1, 0, 0x00, 0]), Err(DecodeError::BadCount));
        assert_eq!(dec(&[0, 1, 1, 0, 0x00]), Ok(()));
        // A run of two unchanged values in a record of one sample.
        assert_eq!(dec(&[0, 1, 1, 0, 0xc0]), Err(DecodeError::BadCount));
        assert_eq!(dec(&[0, 2, 1, 1, 0, 0, 0, 0, 0xc0]), Ok(()));
    }

    #[test]
    fn series_compress_and_a_bad_snappy_stream_is_rejected() {
        let mut raw = Vec::new();
        for i in 0..50u64 {
            let instance = format!("10.0.0.1:{}", 9100 + i);
            encode_series_entry(
                &mut raw,
                i,
                [("__name__", "node_cpu_seconds_total"), ("instance", instance.as_str()), ("job", "node")],
            );
        }
        let mut packed = Vec::new();
        assert_eq!(compress_series(&raw, &mut packed), Some(RecordType::SeriesSnappy));
        assert!(packed.len() < raw.len() / 2, "{} of {}", packed.len(), raw.len());
        let mut inflated = Vec::new();
        decompress_series(&packed, &mut inflated).unwrap();
        assert_eq!(inflated, raw);
        // Incompressible input stays raw.
        assert_eq!(compress_series(&[1, 2, 3], &mut packed), None);
        assert_eq!(
            decompress_series(&[0xff, 0xff, 0xff, 0xff, 0x7f], &mut inflated),
            Err(DecodeError::Snappy)
        );
        assert_eq!(decompress_series(&[10, 0], &mut inflated), Err(DecodeError::Snappy));
    }

    #[test]
    fn varints_cover_the_extremes() {
        for x in [0u64, 1, 127, 128, 16383, 16384, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, x);
            let mut p = &buf[..];
            assert_eq!(get_uvarint(&mut p), Ok(x));
            assert!(p.is_empty());
        }
        for x in [0i64, -1, 1, i64::MIN, i64::MAX, i64::MIN + 1, -64, 64] {
            let mut buf = Vec::new();
            put_varint(&mut buf, x);
            let mut p = &buf[..];
            assert_eq!(get_varint(&mut p), Ok(x));
        }
        assert_eq!(get_uvarint(&mut &[0x80u8, 0x80][..]), Err(DecodeError::Truncated));
        assert_eq!(get_uvarint(&mut &[0xffu8; 11][..]), Err(DecodeError::VarintOverflow));
        assert_eq!(
            get_uvarint(&mut &[0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02][..]),
            Err(DecodeError::VarintOverflow)
        );
    }

    #[test]
    fn special_values_survive_bit_exactly() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let values = [stale, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, f64::MIN_POSITIVE, 1.5];
        let samples: Vec<RefSample> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| RefSample {
                series: u64::MAX - i as u64,
                t: if i % 2 == 0 { i64::MIN } else { i64::MAX },
                v,
            })
            .collect();
        assert_eq!(roundtrip_samples(&samples), samples);
        assert_eq!(roundtrip_samples(&[]), Vec::<RefSample>::new());
    }

    #[test]
    fn a_series_payload_with_a_lying_count_is_rejected() {
        let mut buf = Vec::new();
        encode_series_entry(&mut buf, 7, [("a", "b")]);
        buf[1] = 200; // claim 200 labels
        assert_eq!(decode_series(&buf, &mut Vec::new()), Err(DecodeError::Truncated));
        let mut buf = Vec::new();
        encode_series_entry(&mut buf, 7, [("a", "b")]);
        let name_at = buf.len() - 3;
        buf[name_at] = 0xff;
        assert_eq!(decode_series(&buf, &mut Vec::new()), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn an_oversized_payload_is_refused() {
        let mut buf = vec![0; HEADER_LEN + MAX_PAYLOAD + 1];
        assert_eq!(finish(&mut buf, RecordType::Samples), Err(MAX_PAYLOAD + 1));
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::from_bits(0x7ff0_0000_0000_0002)),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (0x7ff0_0000_0000_0001u64..=0x7fff_ffff_ffff_ffff).prop_map(f64::from_bits),
            any::<f64>(),
        ]
    }

    fn any_i64() -> impl Strategy<Value = i64> {
        prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), -1000i64..1000]
    }

    prop_compose! {
        fn any_sample()(series in prop_oneof![any::<u64>(), 0u64..100], t in any_i64(), v in any_f64()) -> RefSample {
            RefSample { series, t, v }
        }
    }

    /// Values that move like scraped ones, so both codings and their switches get exercised.
    fn scrape_like_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any_f64(),
            (-1_000_000i64..1_000_000, 0i32..10).prop_map(|(m, k)| m as f64 / 10f64.powi(k)),
            (0u64..1 << 53).prop_map(|m| m as f64),
            Just(0.0),
            // Few distinct values, so runs of unchanged ones of every length occur.
            (0u8..3).prop_map(f64::from),
            (0u8..3).prop_map(f64::from),
        ]
    }

    prop_compose! {
        fn delta_sample()(series in prop_oneof![any::<u64>(), 0u64..20, DENSE_REFS - 5..DENSE_REFS + 5],
                          t in any_i64(), v in scrape_like_f64()) -> RefSample {
            // (A run of 200 unchanged values needs a long record: see `long_runs_of_unchanged_values`.)
            RefSample { series, t, v }
        }
    }

    proptest! {
        #[test]
        fn delta_records_roundtrip(records in proptest::collection::vec(
            proptest::collection::vec(delta_sample(), 1..100), 0..10)) {
            prop_assert_eq!(roundtrip_delta(&records), records);
        }

        #[test]
        fn samples_roundtrip(samples in proptest::collection::vec(any_sample(), 0..200)) {
            prop_assert_eq!(roundtrip_samples(&samples), samples);
        }

        #[test]
        fn series_roundtrip(series in proptest::collection::vec(
            (any::<u64>(), proptest::collection::vec((".{0,12}", ".{0,40}"), 0..8)), 0..20)) {
            let mut buf = Vec::new();
            for (r, labels) in &series {
                encode_series_entry(&mut buf, *r, labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            }
            let mut out = Vec::new();
            decode_series(&buf, &mut out).unwrap();
            let expected: Vec<RefSeries> =
                series.into_iter().map(|(series, labels)| RefSeries { series, labels }).collect();
            prop_assert_eq!(out, expected);
        }
    }
}
