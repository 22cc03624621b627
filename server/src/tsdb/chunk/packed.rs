//! The sealed-chunk encoding: timestamps and values in separate sections, each in the cheapest of
//! a few codings measured per chunk (see the module doc of [`super`] for the byte layout).
//!
//! Timestamps become a sequence of i64 packed with [`super::pfor`], either as deltas
//! `tᵢ − tᵢ₋₁` or as offsets from a regular grid `tᵢ − (t₀ + i·D)`, where
//! `D = round((max − min) / (n − 1))` comes from the header, so it costs nothing. Scrapes on a
//! ticker land on such a grid with a small per-scrape jitter, which the grid sees once
//! (`jᵢ`) where deltas see it twice (`jᵢ − jᵢ₋₁`).
//!
//! Values, when every value is `m · 10⁻ᵏ` exactly (as parsed from an exposition with a few
//! decimals), become the integers `m` at one common scale `k`; values that are not (a stale
//! marker NaN, ±Inf, −0.0) are patched in raw when they are few. Otherwise, values near
//! decimals (a histogram's `_sum` of whole-nanosecond observations added in binary floating
//! point) become `m = round(v · 10ᵏ)` plus a residual `bits(v) − bits(m / 10ᵏ)` of a few ulps,
//! packed as deltas; or else the raw IEEE bit patterns serve as the integers. The integers are
//! packed as deltas (counters, random walks) or deltas-of-deltas (steady rates). Gorilla XOR of
//! the values remains the fallback when it is smaller.

use super::bits::{read_uvarint, read_varint, uvarint_len, zigzag, BitCount, BitCursor, BitWriter};
use super::pfor;
use super::xor::{XorValueDecoder, XorValueEncoder, XorValues};
use super::{TimestampCoding, ValueCoding, ValueSource, BATCH};

/// Largest decimal scale tried: 10¹⁸ is still exact in f64, and nanosecond-resolution seconds
/// need 9.
pub(super) const MAX_SCALE: u8 = 18;
const RAW_BITS: u8 = 31;
const NEAR_DECIMAL: u8 = 30;

const POW10: [f64; MAX_SCALE as usize + 1] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18];

/// `m` with `m / 10ᵏ == v` bit for bit, using the very division the decoder performs.
#[inline]
fn decimal(v: f64, k: u8) -> Option<i64> {
    let p = POW10[usize::from(k.min(MAX_SCALE))];
    let s = v * p;
    // Also rejects NaN and ±Inf; the bound keeps the cast to i64 exact.
    if s.is_nan() || s.abs() >= 9.0e18 {
        return None;
    }
    let m = s.round() as i64;
    ((m as f64 / p).to_bits() == v.to_bits()).then_some(m)
}

/// Values that are not decimals but may be patched in: at most this many per chunk, because each
/// costs 9+ bytes and beyond a few the XOR or raw-bits codings win anyway.
fn patch_limit(n: usize) -> usize {
    n / 16 + 1
}

/// The common decimal scale of `vs`, filling `ms` with the integers (a patched value repeats the
/// previous integer so it adds nothing to the deltas) and `patches` with (index, raw bits).
fn to_decimals(vs: &[u64], ms: &mut Vec<i64>, patches: &mut Vec<(u32, u64)>) -> Option<u8> {
    let limit = patch_limit(vs.len());
    let mut k = 0u8;
    // Integers are computed at the scale known so far; a later value needing more decimals
    // forces a second pass at the final scale (rare: the first value usually shows them all).
    let mut rescale = false;
    let mut prev: Option<i64> = None;
    ms.clear();
    patches.clear();
    for (i, &bits) in vs.iter().enumerate() {
        let v = f64::from_bits(bits);
        let obviously_not = !v.is_finite() || (v == 0.0 && v.is_sign_negative());
        let found = if obviously_not {
            None
        } else if let Some(m) = decimal(v, k) {
            Some(m)
        } else {
            (k + 1..=MAX_SCALE).find_map(|s| decimal(v, s).map(|m| (s, m))).map(|(s, m)| {
                rescale |= prev.is_some();
                k = s;
                m
            })
        };
        match found {
            Some(m) => {
                ms.push(m);
                prev = Some(m);
            }
            None => {
                patches.push((i as u32, bits));
                if patches.len() > limit {
                    return None;
                }
                ms.push(prev.unwrap_or(0));
            }
        }
    }
    if rescale {
        ms.clear();
        patches.clear();
        prev = None;
        for (i, &bits) in vs.iter().enumerate() {
            match decimal(f64::from_bits(bits), k) {
                Some(m) => {
                    ms.push(m);
                    prev = Some(m);
                }
                None => {
                    patches.push((i as u32, bits));
                    ms.push(prev.unwrap_or(0));
                }
            }
        }
    }
    if patches.len() > limit || patches.len() == vs.len() {
        return None;
    }
    // Leading patched values copy the first real integer, again so they cost no delta.
    let lead = patches.iter().enumerate().take_while(|(j, p)| p.0 as usize == *j).count();
    if let Some(&m) = ms.get(lead) {
        ms[..lead].fill(m);
    }
    Some(k)
}

fn patches_len(patches: &[(u32, u64)]) -> usize {
    let mut prev: Option<u32> = None;
    let mut len = uvarint_len(patches.len() as u64);
    for &(i, _) in patches {
        len += uvarint_len(u64::from(patch_gap(prev, i))) + 8;
        prev = Some(i);
    }
    len
}

fn patch_gap(prev: Option<u32>, i: u32) -> u32 {
    match prev {
        Some(p) => i - p - 1,
        None => i,
    }
}

/// Reusable buffers for sealing, so that sealing many chunks allocates only their output.
#[derive(Clone, Debug, Default)]
pub(super) struct Scratch {
    ts_delta: Vec<i64>,
    ts_grid: Vec<i64>,
    ms: Vec<i64>,
    vd: Vec<i64>,
    vdd: Vec<i64>,
    sort: Vec<i64>,
    patches: Vec<(u32, u64)>,
    es: Vec<i64>,
    ed: Vec<i64>,
    ed_plan: Option<pfor::Plan>,
}

/// Max − min, exactly.
fn spread(xs: &[i64]) -> i128 {
    let (min, max) = xs.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    i128::from(max) - i128::from(min)
}

/// `D` of the grid coding, derived from the header's first and last timestamps.
pub(super) fn grid_step(min: i64, max: i64, n: u32) -> i64 {
    let m = u64::from(n.saturating_sub(1).max(1));
    let span = max.wrapping_sub(min) as u64;
    let (q, rem) = (span / m, span % m);
    q.wrapping_add(u64::from(2 * rem >= m)) as i64
}

fn deltas(ms: &[i64], out: &mut Vec<i64>) {
    out.clear();
    out.extend(ms.windows(2).map(|w| w[1].wrapping_sub(w[0])));
}

fn grid_offsets(ts: &[i64], step: i64, out: &mut Vec<i64>) {
    out.clear();
    let mut g = ts.first().copied().unwrap_or(0);
    for &t in ts.iter().skip(1) {
        g = g.wrapping_add(step);
        out.push(t.wrapping_sub(g));
    }
}

/// Writes the packed payload (everything after the common header) for `n ≥ 1` samples and
/// says which codings it chose.
pub(super) fn encode(
    ts: &[i64],
    vs: &[u64],
    s: &mut Scratch,
    out: &mut BitWriter,
) -> (TimestampCoding, ValueCoding) {
    let n = ts.len();
    let (min, max) = (ts.first().copied().unwrap_or(0), ts.last().copied().unwrap_or(0));

    let step = grid_step(min, max, n as u32);
    deltas(ts, &mut s.ts_delta);
    grid_offsets(ts, step, &mut s.ts_grid);
    let (grid, ts_plan) = if n >= 2 {
        let d = pfor::plan(&s.ts_delta, &mut s.sort);
        let g = pfor::plan(&s.ts_grid, &mut s.sort);
        if g.bytes < d.bytes {
            (true, Some(g))
        } else {
            (false, Some(d))
        }
    } else {
        (false, None)
    };

    // Values: exact decimals when they exist (nearly always on scraped data); otherwise the
    // better of near-decimals with ulp residuals and raw bits.
    // `int_plan` leaves the deltas of `s.ms` in the scratch for writing, so the plan kept is
    // always the one made last, of the integers kept.
    let (src, ip) = match to_decimals(vs, &mut s.ms, &mut s.patches) {
        Some(k) => {
            let ip = int_plan(s);
            let exact = patches_len(&s.patches) + ip.bytes();
            // At a fine scale almost any double is an exact decimal (17 digits suffice), and
            // then the integers carry binary rounding noise; a coarser near-decimal may do better.
            match (exact > NOISY_BYTES_PER_SAMPLE * n).then(|| near_scale(vs)).flatten().filter(|&kn| kn < k)
            {
                Some(kn) => {
                    let extra = fill_near(vs, kn, s);
                    let near = int_plan(s);
                    if extra + near.bytes() < exact {
                        s.patches.clear();
                        (Src::Near(kn), near)
                    } else {
                        to_decimals(vs, &mut s.ms, &mut s.patches);
                        (Src::Exact(k), int_plan(s))
                    }
                }
                None => (Src::Exact(k), ip),
            }
        }
        None => {
            s.patches.clear();
            let near = near_scale(vs).map(|k| {
                let extra = fill_near(vs, k, s);
                (k, extra + int_plan(s).bytes())
            });
            s.ms.clear();
            s.ms.extend(vs.iter().map(|&b| b as i64));
            let raw = int_plan(s);
            match near {
                Some((k, bytes)) if bytes < raw.bytes() => {
                    fill_near(vs, k, s);
                    (Src::Near(k), int_plan(s))
                }
                _ => (Src::Raw, raw),
            }
        }
    };
    let extra = match src {
        Src::Exact(_) => patches_len(&s.patches),
        Src::Near(_) => near_extra(s),
        Src::Raw => 0,
    };
    let int_bytes = extra + ip.bytes();

    let mut xor_bits = BitCount::default();
    let mut enc = XorValueEncoder::default();
    for &v in vs {
        enc.encode(v, &mut xor_bits);
    }
    let use_xor = xor_bits.0.div_ceil(8) < int_bytes;

    let source = match src {
        Src::Exact(k) => k,
        Src::Near(_) => NEAR_DECIMAL,
        Src::Raw => RAW_BITS,
    };
    let transform: u8 = match (use_xor, ip.dod) {
        (true, _) => 0,
        (false, false) => 1,
        (false, true) => 2,
    };
    out.push_byte(u8::from(grid) | transform << 1 | if use_xor { 0 } else { source << 3 });

    if let Some(plan) = ts_plan {
        pfor::write(if grid { &s.ts_grid } else { &s.ts_delta }, &plan, out);
    }
    let tsc = if grid { TimestampCoding::Grid } else { TimestampCoding::Delta };
    if use_xor {
        let mut enc = XorValueEncoder::default();
        for &v in vs {
            enc.encode(v, out);
        }
        out.align();
        return (tsc, ValueCoding::Xor);
    }

    if let Src::Near(k) = src {
        out.push_byte(k);
    }
    out.push_varint(s.ms.first().copied().unwrap_or(0));
    if ip.dod && n >= 2 {
        out.push_varint(s.vd.first().copied().unwrap_or(0));
    }
    if let Src::Near(_) = src {
        out.push_varint(s.es.first().copied().unwrap_or(0));
    }
    if let Src::Exact(_) = src {
        out.push_uvarint(s.patches.len() as u64);
        let mut prev = None;
        for &(i, bits) in &s.patches {
            out.push_uvarint(u64::from(patch_gap(prev, i)));
            out.extend(&bits.to_le_bytes());
            prev = Some(i);
        }
    }
    let (seq, plan) = if ip.dod { (&s.vdd, ip.dod_plan) } else { (&s.vd, ip.delta_plan) };
    if let Some(plan) = plan {
        pfor::write(seq, &plan, out);
    }
    if let (Src::Near(_), Some(plan)) = (src, s.ed_plan) {
        pfor::write(&s.ed, &plan, out);
    }
    let vsrc = match src {
        Src::Exact(k) => ValueSource::Decimal { scale: k },
        Src::Near(k) => ValueSource::NearDecimal { scale: k },
        Src::Raw => ValueSource::Bits,
    };
    (tsc, if ip.dod { ValueCoding::DeltaOfDelta(vsrc) } else { ValueCoding::Delta(vsrc) })
}

#[derive(Clone, Copy, Debug)]
enum Src {
    Exact(u8),
    Near(u8),
    Raw,
}

/// The integer codings of `ms` (delta and, when it may pay, delta-of-delta), sized.
struct IntPlan {
    dod: bool,
    delta_bytes: usize,
    dod_bytes: usize,
    delta_plan: Option<pfor::Plan>,
    dod_plan: Option<pfor::Plan>,
}

impl IntPlan {
    fn bytes(&self) -> usize {
        self.delta_bytes.min(self.dod_bytes)
    }
}

/// Plans `s.ms`, leaving its deltas in `s.vd` and deltas-of-deltas in `s.vdd`.
fn int_plan(s: &mut Scratch) -> IntPlan {
    let n = s.ms.len();
    let fixed = uvarint_len(zigzag(s.ms.first().copied().unwrap_or(0)));
    deltas(&s.ms, &mut s.vd);
    deltas(&s.vd, &mut s.vdd);
    let d1 = s.vd.first().copied().unwrap_or(0);
    let delta_plan = (!s.vd.is_empty()).then(|| pfor::plan(&s.vd, &mut s.sort));
    // Deltas-of-deltas only pay when they spread less than the deltas (a steady rate); planning
    // them otherwise would cost sealing time for nothing.
    let dod_plan =
        (!s.vdd.is_empty() && spread(&s.vdd) < spread(&s.vd)).then(|| pfor::plan(&s.vdd, &mut s.sort));
    let delta_bytes = fixed + delta_plan.map_or(0, |p| p.bytes);
    let dod_bytes = match dod_plan {
        Some(p) => fixed + uvarint_len(zigzag(d1)) + p.bytes,
        None if n == 2 => fixed + uvarint_len(zigzag(d1)),
        None => usize::MAX,
    };
    IntPlan { dod: dod_bytes < delta_bytes, delta_bytes, dod_bytes, delta_plan, dod_plan }
}

/// Above this many bytes per sample, exact decimals are suspected of carrying binary noise.
const NOISY_BYTES_PER_SAMPLE: usize = 2;

/// Largest |value| for near-decimals: beyond 2⁵³ the integers stop being exact in f64 and the
/// residuals grow with them.
const NEAR_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Values probed to pick the scale of near-decimals.
const NEAR_PROBE: usize = 16;

/// The scale at which `vs` are best approximated by decimals, judged on a prefix: at the
/// resolution the values were measured in (whole nanoseconds summed in binary floating point,
/// say) the integers step by the measurements and the residuals stay a few ulps, where a coarser
/// scale moves those bits into the residuals and a finer one into the integers.
fn near_scale(vs: &[u64]) -> Option<u8> {
    let finite = || vs.iter().map(|&b| f64::from_bits(b)).filter(|v| v.is_finite());
    let max_abs = finite().fold(0.0f64, |a, v| a.max(v.abs()));
    let mut probe = [0f64; NEAR_PROBE];
    let mut len = 0;
    for (slot, v) in probe.iter_mut().zip(finite()) {
        *slot = v;
        len += 1;
    }
    if len < 2 {
        return None;
    }
    let mut best: Option<(u32, u8)> = None;
    for k in 0..=MAX_SCALE {
        let p = POW10[usize::from(k)];
        if max_abs * p >= NEAR_LIMIT {
            break;
        }
        let mut prev: Option<(i64, i64)> = None;
        let (mut dm, mut de) = ((i128::MAX, i128::MIN), (i128::MAX, i128::MIN));
        for &v in &probe[..len] {
            let m = (v * p).round() as i64;
            let e = (v.to_bits() as i64).wrapping_sub((m as f64 / p).to_bits() as i64);
            if let Some((pm, pe)) = prev {
                let (a, b) = (i128::from(m) - i128::from(pm), i128::from(e) - i128::from(pe));
                dm = (dm.0.min(a), dm.1.max(a));
                de = (de.0.min(b), de.1.max(b));
            }
            prev = Some((m, e));
        }
        let bits = |r: (i128, i128)| 128 - ((r.1 - r.0) as u128).leading_zeros();
        let cost = bits(dm) + bits(de);
        if best.is_none_or(|(c, _)| cost < c) {
            best = Some((cost, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Fills `s.ms` with the near-decimal integers of `vs` at scale `k` and `s.es` with the residuals
/// that make them exact; returns the bytes those residuals and the scale byte cost.
fn fill_near(vs: &[u64], k: u8, s: &mut Scratch) -> usize {
    let p = POW10[usize::from(k.min(MAX_SCALE))];
    s.ms.clear();
    s.es.clear();
    let mut prev: Option<i64> = None;
    for &b in vs {
        let v = f64::from_bits(b);
        let m = if v.is_finite() && (v * p).abs() < NEAR_LIMIT {
            (v * p).round() as i64
        } else {
            // NaN, ±Inf: repeat the integer so the residual alone carries the value.
            prev.unwrap_or(0)
        };
        prev = Some(m);
        s.ms.push(m);
        s.es.push((b as i64).wrapping_sub((m as f64 / p).to_bits() as i64));
    }
    near_extra(s)
}

/// Bytes of the scale, the first residual and the residual block, planning the block.
fn near_extra(s: &mut Scratch) -> usize {
    deltas(&s.es, &mut s.ed);
    s.ed_plan = (!s.ed.is_empty()).then(|| pfor::plan(&s.ed, &mut s.sort));
    1 + uvarint_len(zigzag(s.es.first().copied().unwrap_or(0))) + s.ed_plan.map_or(0, |p| p.bytes)
}

/// Non-decimal values of a decimal chunk, read lazily; validated when the iterator is built.
#[derive(Clone, Debug)]
struct Patches<'a> {
    data: &'a [u8],
    pos: usize,
    left: u32,
    next: u32,
}

impl Patches<'_> {
    #[inline]
    fn take(&mut self) -> u64 {
        let mut raw = [0u8; 8];
        if let Some(b) = self.data.get(self.pos..self.pos + 8) {
            raw.copy_from_slice(b);
        }
        self.pos += 8;
        self.left = self.left.saturating_sub(1);
        self.next = if self.left > 0 {
            let gap = read_uvarint(self.data, &mut self.pos).unwrap_or(0) as u32;
            self.next.saturating_add(gap).saturating_add(1)
        } else {
            u32::MAX
        };
        u64::from_le_bytes(raw)
    }
}

// Boxing the larger variant would allocate per iteration; the iterator is on the stack anyway.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Values<'a> {
    Xor(XorValues<'a>),
    Int {
        deltas: Option<pfor::Reader<'a>>,
        dod: bool,
        /// The integer before the next one to decode (m₀ before the first: its delta is 0).
        m: i64,
        /// The last delta (delta-of-delta only).
        d: i64,
        /// m₁ − m₀, stored outside the block (delta-of-delta only).
        d1: i64,
        /// 10ᵏ for decimals; `None` for raw bits.
        divisor: Option<f64>,
        patches: Patches<'a>,
        /// Near-decimals only: the ulp corrections.
        residual: Option<Residual<'a>>,
    },
}

#[derive(Clone, Debug)]
struct Residual<'a> {
    deltas: Option<pfor::Reader<'a>>,
    /// The residual before the next one to decode.
    e: i64,
}

#[derive(Clone, Debug)]
pub(super) struct PackedIter<'a> {
    n: u32,
    /// Samples decoded into batches so far.
    i: u32,
    max: i64,
    /// The timestamp before the next one to decode; with the grid, the grid point before it.
    t: i64,
    grid: bool,
    step: i64,
    ts: Option<pfor::Reader<'a>>,
    values: Values<'a>,
}

impl<'a> PackedIter<'a> {
    /// Parses the sections of a packed payload starting at `pos`; checks that they fit the data
    /// exactly (except a trailing XOR section, whose length only decoding tells).
    pub(super) fn new(
        data: &'a [u8],
        mut pos: usize,
        n: u32,
        min: i64,
        max: i64,
    ) -> Result<(Self, TimestampCoding, ValueCoding), &'static str> {
        let mode = *data.get(pos).ok_or("missing packed modes")?;
        pos += 1;
        let grid = mode & 1 == 1;
        let transform = (mode >> 1) & 3;
        let source = mode >> 3;
        let ts = if n >= 2 { Some(pfor::Reader::parse(data, &mut pos, n as usize - 1)?) } else { None };
        let tsc = if grid { TimestampCoding::Grid } else { TimestampCoding::Delta };
        let (values, vc) = match transform {
            0 => {
                if source != 0 {
                    return Err("XOR values with a value source");
                }
                let rest = data.get(pos..).unwrap_or(&[]);
                // 64 bits for the first value, at least one for each further one.
                let min_bits = 64 + (n as usize).saturating_sub(1);
                if rest.len() * 8 < min_bits {
                    return Err("XOR values too short");
                }
                let c = BitCursor::new(rest, 0, rest.len() * 8);
                (Values::Xor(XorValues { c, dec: XorValueDecoder::default() }), ValueCoding::Xor)
            }
            1 | 2 => {
                let dod = transform == 2;
                let (divisor, near) = match source {
                    k if k <= MAX_SCALE => (Some(POW10[usize::from(k)]), None),
                    NEAR_DECIMAL => {
                        let k = *data.get(pos).ok_or("truncated scale")?;
                        pos += 1;
                        if k > MAX_SCALE {
                            return Err("scale over 18");
                        }
                        (Some(POW10[usize::from(k)]), Some(k))
                    }
                    RAW_BITS => (None, None),
                    _ => return Err("unknown value source"),
                };
                let m0 = read_varint(data, &mut pos).ok_or("truncated first value")?;
                let d1 = if dod && n >= 2 {
                    read_varint(data, &mut pos).ok_or("truncated first delta")?
                } else {
                    0
                };
                let e0 = if near.is_some() {
                    read_varint(data, &mut pos).ok_or("truncated first residual")?
                } else {
                    0
                };
                let mut patches = Patches { data, pos, left: 0, next: u32::MAX };
                if divisor.is_some() && near.is_none() {
                    let count = read_uvarint(data, &mut pos).ok_or("truncated patch count")?;
                    if count > u64::from(n) {
                        return Err("more patches than samples");
                    }
                    let mut prev: Option<u64> = None;
                    let mut first = u32::MAX;
                    let mut first_pos = pos;
                    for j in 0..count {
                        let gap = read_uvarint(data, &mut pos).ok_or("truncated patch index")?;
                        let idx = match prev {
                            Some(p) => p.saturating_add(gap).saturating_add(1),
                            None => gap,
                        };
                        if idx >= u64::from(n) {
                            return Err("patch index out of range");
                        }
                        if j == 0 {
                            first = idx as u32;
                            first_pos = pos;
                        }
                        prev = Some(idx);
                        if data.len().saturating_sub(pos) < 8 {
                            return Err("truncated patch value");
                        }
                        pos += 8;
                    }
                    patches = Patches { data, pos: first_pos, left: count as u32, next: first };
                }
                let count = (n as usize).saturating_sub(if dod { 2 } else { 1 });
                let deltas = if count > 0 { Some(pfor::Reader::parse(data, &mut pos, count)?) } else { None };
                let residual = match near {
                    Some(_) if n >= 2 => Some(Residual {
                        deltas: Some(pfor::Reader::parse(data, &mut pos, n as usize - 1)?),
                        e: e0,
                    }),
                    Some(_) => Some(Residual { deltas: None, e: e0 }),
                    None => None,
                };
                if pos != data.len() {
                    return Err("trailing bytes after the values");
                }
                let src = match (near, divisor) {
                    (Some(k), _) => ValueSource::NearDecimal { scale: k },
                    (None, Some(_)) => ValueSource::Decimal { scale: source },
                    (None, None) => ValueSource::Bits,
                };
                let vc = if dod { ValueCoding::DeltaOfDelta(src) } else { ValueCoding::Delta(src) };
                (Values::Int { deltas, dod, m: m0, d: 0, d1, divisor, patches, residual }, vc)
            }
            _ => return Err("unknown value transform"),
        };
        let step = grid_step(min, max, n);
        // The first sample decodes like the others, from an offset of 0 after this start.
        let t = if grid { min.wrapping_sub(step) } else { min };
        let it = PackedIter { n, i: 0, max, t, grid, step, ts, values };
        Ok((it, tsc, vc))
    }

    pub(super) fn remaining(&self) -> u32 {
        self.n - self.i
    }

    /// Decodes the next samples into `batch_t` and `batch_v`, each stream in a tight loop, which
    /// is much faster than interleaving the streams sample by sample. Returns how many (0 at the
    /// end), or `Err` on malformed streams.
    pub(super) fn fill(
        &mut self,
        batch_t: &mut [i64; BATCH],
        batch_v: &mut [f64; BATCH],
    ) -> Result<usize, ()> {
        let first = self.i as usize;
        let k = (self.n as usize - first).min(BATCH);
        if k == 0 {
            return Ok(0);
        }
        let mut xs = [0i64; BATCH];

        // Timestamps: offsets (grid) or deltas, the first sample's being 0 by construction.
        let skip = usize::from(first == 0);
        if let Some(r) = self.ts.as_mut() {
            r.fill(&mut xs[skip..k]).ok_or(())?;
        }
        let mut t = self.t;
        if self.grid {
            let step = self.step;
            for (out, &x) in batch_t[..k].iter_mut().zip(&xs[..k]) {
                t = t.wrapping_add(step);
                *out = t.wrapping_add(x);
            }
        } else {
            for (out, &x) in batch_t[..k].iter_mut().zip(&xs[..k]) {
                t = t.wrapping_add(x);
                *out = t;
            }
        }
        self.t = t;

        match &mut self.values {
            Values::Xor(x) => {
                for out in &mut batch_v[..k] {
                    *out = f64::from_bits(x.next_value().ok_or(())?);
                }
            }
            Values::Int { deltas, dod, m, d, d1, divisor, patches, residual } => {
                // The first value's delta is 0; with deltas-of-deltas the second's comes from
                // the header, so the block starts one sample later.
                let mut ys = [0i64; BATCH];
                let header: usize = if *dod { 2 } else { 1 };
                let skip = header.saturating_sub(first).min(k);
                if *dod && first <= 1 && k > 1 - first {
                    ys[1 - first] = *d1;
                }
                if let Some(r) = deltas.as_mut() {
                    r.fill(&mut ys[skip..k]).ok_or(())?;
                }
                let mut acc = *m;
                if *dod {
                    let mut dd = *d;
                    for y in &mut ys[..k] {
                        dd = dd.wrapping_add(*y);
                        acc = acc.wrapping_add(dd);
                        *y = acc;
                    }
                    *d = dd;
                } else {
                    for y in &mut ys[..k] {
                        acc = acc.wrapping_add(*y);
                        *y = acc;
                    }
                }
                *m = acc;
                match divisor {
                    Some(p) => {
                        let p = *p;
                        // Dividing by 1 changes nothing, and integers are the common case.
                        if p == 1.0 {
                            for (out, &y) in batch_v[..k].iter_mut().zip(&ys[..k]) {
                                *out = y as f64;
                            }
                        } else {
                            for (out, &y) in batch_v[..k].iter_mut().zip(&ys[..k]) {
                                *out = y as f64 / p;
                            }
                        }
                        let end = (first + k) as u32;
                        while patches.next < end {
                            let at = patches.next.wrapping_sub(first as u32) as usize;
                            let raw = f64::from_bits(patches.take());
                            if let Some(out) = batch_v.get_mut(at) {
                                *out = raw;
                            }
                        }
                    }
                    None => {
                        for (out, &y) in batch_v[..k].iter_mut().zip(&ys[..k]) {
                            *out = f64::from_bits(y as u64);
                        }
                    }
                }
                if let Some(res) = residual {
                    let mut es = [0i64; BATCH];
                    let skip = usize::from(first == 0);
                    if let Some(r) = res.deltas.as_mut() {
                        r.fill(&mut es[skip..k]).ok_or(())?;
                    }
                    let mut e = res.e;
                    for (out, &x) in batch_v[..k].iter_mut().zip(&es[..k]) {
                        e = e.wrapping_add(x);
                        *out = f64::from_bits(out.to_bits().wrapping_add(e as u64));
                    }
                    res.e = e;
                }
            }
        }

        self.i += k as u32;
        if self.i == self.n && batch_t[k - 1] != self.max {
            return Err(());
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_recognised() {
        assert_eq!(decimal(12.75, 2), Some(1275));
        assert_eq!(decimal(0.1, 1), Some(1));
        assert_eq!(decimal(0.1, 0), None);
        assert_eq!(decimal(7.6238e-05, 9), Some(76238));
        assert_eq!(decimal(f64::NAN, 0), None);
        assert_eq!(decimal(f64::INFINITY, 3), None);
        assert_eq!(decimal(-0.0, 0), None);
        assert_eq!(decimal(5.937322571024e12, 0), Some(5_937_322_571_024));
    }

    #[test]
    fn common_scale_and_patches() {
        let mut vs: Vec<u64> = [f64::NAN, 1.5, 1.25, f64::from_bits(0x7ff0000000000002), 2.0]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        vs.resize(16, 2f64.to_bits());
        let (mut ms, mut patches) = (Vec::new(), Vec::new());
        assert_eq!(to_decimals(&vs, &mut ms, &mut patches), Some(2));
        assert_eq!(ms[..5], [150, 150, 125, 125, 200]);
        assert_eq!(patches, vec![(0, vs[0]), (3, vs[3])]);
        // One misfit more than the limit (16/16 + 1) and decimals are given up.
        vs[6] = f64::NAN.to_bits();
        assert_eq!(to_decimals(&vs, &mut ms, &mut patches), None);
    }

    #[test]
    fn grid_step_rounds_and_never_panics() {
        assert_eq!(grid_step(0, 15000 * 119 + 59, 120), 15000);
        assert_eq!(grid_step(0, 15000 * 119 + 60, 120), 15001);
        assert_eq!(grid_step(i64::MIN, i64::MAX, 2), -1);
        assert_eq!(grid_step(5, 5, 1), 0);
    }
}
