//! Patched frame-of-reference ("PFOR") packing of a sequence of i64 with exceptions.
//!
//! Most values `x` are written as `x − r` in a fixed width of `w` bits; the few that fall
//! outside `[r, r + 2ʷ)` (a late scrape, a counter reset, a missed sample) are exceptions written
//! separately with their index, so one outlier does not widen every slot. `r` and `w` are chosen
//! per block by exact bit cost.
//!
//! Block layout (byte aligned):
//!
//! ```text
//! varint   r            zigzag LEB128
//! u8       w | x << 7   slot width w, 0..=64; x = 1 if there are exceptions
//! uvarint  e            only if x: number of exceptions, 1..=count
//! u8       we           only if x: exception width, 0..=64
//! bits     e × (index: wi bits, zigzag(x): we bits)   wi = bits needed for count−1; indexes ascend
//! bits     (count − e) × (x − r: w bits)              the non-exceptions in order
//! pad      zero bits to the next byte
//! ```
//!
//! `count` is not stored: the chunk header implies it.

use super::bits::{bit_len, read_uvarint, read_varint, uvarint_len, zigzag, BitCursor, BitWriter};

/// The chosen parameters of one block and its exact size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    r: i64,
    w: u32,
    exceptions: u32,
    we: u32,
    /// Whole block, header included, in bytes.
    pub(super) bytes: usize,
}

fn header_len(r: i64, exceptions: u32) -> usize {
    let exc = if exceptions > 0 { uvarint_len(u64::from(exceptions)) + 1 } else { 0 };
    uvarint_len(zigzag(r)) + 1 + exc
}

/// Below this many bits of spread, exceptions cannot pay for their index and the minimum is
/// the only reference worth trying, which spares finding quantiles.
const NARROW_BITS: u32 = 3;

fn index_width(count: usize) -> u32 {
    bit_len(count.saturating_sub(1) as u64)
}

/// Finds the cheapest `(r, w)` for `xs`. `scratch` is reused between calls to avoid allocating.
pub(super) fn plan(xs: &[i64], scratch: &mut Vec<i64>) -> Plan {
    let count = xs.len();
    let wi = index_width(count);
    let mut best = Plan { r: 0, w: 64, exceptions: 0, we: 0, bytes: usize::MAX };
    let (Some(&min), Some(&max)) = (xs.iter().min(), xs.iter().max()) else {
        return Plan { bytes: header_len(0, 0), ..best };
    };
    // References below the minimum never help; a few low quantiles let low outliers (a counter
    // reset, an early scrape) or a thin low tail become exceptions instead of widening every
    // slot. Each selection leaves the smaller values in front, so the next looks only there.
    try_reference(xs, min, wi, &mut best);
    if bit_len(max.wrapping_sub(min) as u64) > NARROW_BITS {
        scratch.clear();
        scratch.extend_from_slice(xs);
        let mut tried = [min; 5];
        let mut upto = count;
        for (slot, q) in [(1, 2), (2, 4), (3, 8), (4, 32)] {
            let k = count / q;
            if k == 0 || k >= upto {
                continue;
            }
            let Some(part) = scratch.get_mut(..upto) else { break };
            let r = *part.select_nth_unstable(k).1;
            upto = k;
            if !tried[..slot].contains(&r) {
                tried[slot] = r;
                try_reference(xs, r, wi, &mut best);
            }
        }
    }
    best
}

/// Sizes the best block with reference `r`, keeping it in `best` if smaller.
fn try_reference(xs: &[i64], r: i64, wi: u32, best: &mut Plan) {
    let count = xs.len();
    // Per slot width b: how many values need exactly b bits, and the widest zigzag among them
    // (the exception width if they become exceptions).
    let mut cnt = [0u32; 65];
    let mut zz = [0u32; 65];
    let mut below = 0u32;
    let mut below_zz = 0u32;
    let mut top = 0usize;
    for &x in xs {
        let zbits = bit_len(zigzag(x));
        if x < r {
            below += 1;
            below_zz = below_zz.max(zbits);
        } else {
            let b = bit_len(x.wrapping_sub(r) as u64) as usize;
            cnt[b] += 1;
            zz[b] = zz[b].max(zbits);
            top = top.max(b);
        }
    }
    // Widths above the widest value only cost more, so the sweep starts there.
    let r_len = uvarint_len(zigzag(r)) + 1;
    let mut exceptions = below;
    let mut we = below_zz;
    for w in (0..=top).rev() {
        let exc = exceptions as usize;
        let bits = (count - exc) * w + exc * (wi + we) as usize;
        let exc_header = if exc > 0 { uvarint_len(exc as u64) + 1 } else { 0 };
        let bytes = r_len + exc_header + bits.div_ceil(8);
        if bytes < best.bytes {
            *best = Plan { r, w: w as u32, exceptions, we: if exc > 0 { we } else { 0 }, bytes };
        }
        exceptions += cnt[w];
        we = we.max(zz[w]);
    }
}

#[inline]
fn is_exception(x: i64, r: i64, w: u32) -> bool {
    x < r || (w < 64 && (x.wrapping_sub(r) as u64) >> w != 0)
}

/// Appends the block for `xs` as planned by [`plan`].
pub(super) fn write(xs: &[i64], p: &Plan, out: &mut BitWriter) {
    out.push_varint(p.r);
    out.push_byte(p.w as u8 | u8::from(p.exceptions > 0) << 7);
    if p.exceptions > 0 {
        out.push_uvarint(u64::from(p.exceptions));
        out.push_byte(p.we as u8);
        let wi = index_width(xs.len());
        for (i, &x) in xs.iter().enumerate() {
            if is_exception(x, p.r, p.w) {
                out.write(i as u64, wi);
                out.write(zigzag(x), p.we);
            }
        }
    }
    for &x in xs {
        if !is_exception(x, p.r, p.w) {
            out.write(x.wrapping_sub(p.r) as u64, p.w);
        }
    }
    out.align();
}

/// Streams the values of one block. Validated on construction to lie within the data, so reads
/// never run past it; malformed exception indexes are reported by [`Reader::next`].
#[derive(Clone, Debug)]
pub(super) struct Reader<'a> {
    slots: BitCursor<'a>,
    exc: BitCursor<'a>,
    r: i64,
    w: u32,
    we: u32,
    wi: u32,
    exc_left: u32,
    next_exc: usize,
    i: usize,
    count: usize,
}

impl<'a> Reader<'a> {
    /// Parses the block of `count` values at `*pos`, advancing `*pos` past it.
    pub(super) fn parse(data: &'a [u8], pos: &mut usize, count: usize) -> Result<Self, &'static str> {
        let r = read_varint(data, pos).ok_or("truncated block reference")?;
        let wx = *data.get(*pos).ok_or("truncated block width")?;
        *pos += 1;
        let w = u32::from(wx & 0x7f);
        if w > 64 {
            return Err("slot width over 64");
        }
        let (exceptions, we) = if wx & 0x80 != 0 {
            let e = read_uvarint(data, pos).ok_or("truncated exception count")?;
            if e == 0 || e > count as u64 {
                return Err("exception count out of range");
            }
            let we = u32::from(*data.get(*pos).ok_or("truncated exception width")?);
            *pos += 1;
            (e as u32, we)
        } else {
            (0, 0)
        };
        if we > 64 {
            return Err("exception width over 64");
        }
        let wi = index_width(count);
        let exc_bits = u64::from(exceptions) * u64::from(wi + we);
        let slot_bits = (count as u64 - u64::from(exceptions)) * u64::from(w);
        let total_bytes = (exc_bits + slot_bits).div_ceil(8);
        let start = *pos;
        let end = (start as u64).saturating_add(total_bytes);
        if end > data.len() as u64 {
            return Err("block runs past the end of the chunk");
        }
        *pos = end as usize;
        let block = data.get(start..*pos).ok_or("block runs past the end of the chunk")?;
        let total_bits = block.len() * 8;
        let mut exc = BitCursor::new(block, 0, total_bits);
        let slots = BitCursor::new(block, exc_bits as usize, total_bits);
        let next_exc = if exceptions > 0 { exc.read(wi) as usize } else { usize::MAX };
        if exceptions > 0 && next_exc >= count {
            return Err("exception index out of range");
        }
        Ok(Reader { slots, exc, r, w, we, wi, exc_left: exceptions, next_exc, i: 0, count })
    }

    /// Decodes the next `out.len()` values; `None` once exception indexes turn out not to
    /// ascend.
    #[inline]
    pub(super) fn fill(&mut self, out: &mut [i64]) -> Option<()> {
        let mut j = 0;
        while j < out.len() {
            if self.i == self.next_exc {
                out[j] = self.next()?;
                j += 1;
                continue;
            }
            // A run of slots up to the next exception, in a tight loop.
            let run = (out.len() - j).min(self.next_exc - self.i);
            let end = j + run;
            if let Some(dst) = out.get_mut(j..end) {
                if self.w == 0 {
                    dst.fill(self.r);
                } else {
                    self.slots.unpack(self.w, self.r, dst);
                }
            }
            self.i += run;
            j = end;
        }
        Some(())
    }

    /// The next value; `None` once exception indexes turn out not to ascend.
    #[inline(always)]
    pub(super) fn next(&mut self) -> Option<i64> {
        let x = if self.i == self.next_exc {
            let u = self.exc.read(self.we);
            let x = super::bits::unzigzag(u);
            self.exc_left -= 1;
            if self.exc_left > 0 {
                let idx = self.exc.read(self.wi) as usize;
                if idx <= self.i || idx >= self.count {
                    return None;
                }
                self.next_exc = idx;
            } else {
                self.next_exc = usize::MAX;
            }
            x
        } else {
            self.r.wrapping_add(self.slots.read(self.w) as i64)
        };
        self.i += 1;
        Some(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(xs: &[i64]) -> Plan {
        let mut scratch = Vec::new();
        let p = plan(xs, &mut scratch);
        let mut w = BitWriter::default();
        write(xs, &p, &mut w);
        let bytes = w.into_vec();
        assert_eq!(bytes.len(), p.bytes, "planned size must be the written size");
        let mut pos = 0;
        let mut r = Reader::parse(&bytes, &mut pos, xs.len()).expect("valid block");
        assert_eq!(pos, bytes.len());
        for &x in xs {
            assert_eq!(r.next(), Some(x));
        }
        p
    }

    proptest! {
        #[test]
        fn any_values_round_trip(xs in proptest::collection::vec(any::<i64>(), 0..300)) {
            round_trip(&xs);
        }

        #[test]
        fn jittered_values_round_trip(
            base in any::<i64>(),
            xs in proptest::collection::vec(-3i64..3, 1..200),
            outliers in proptest::collection::vec((0usize..200, any::<i64>()), 0..5),
        ) {
            let mut xs: Vec<i64> = xs.iter().map(|x| base.wrapping_add(*x)).collect();
            for (i, v) in outliers {
                let len = xs.len();
                xs[i % len] = v;
            }
            round_trip(&xs);
        }
    }

    #[test]
    fn constant_block_has_no_bits() {
        let p = round_trip(&[15000; 119]);
        assert_eq!((p.w, p.exceptions), (0, 0));
        // varint 15000 (3 bytes) and the width.
        assert_eq!(p.bytes, 4);
    }

    #[test]
    fn low_outlier_does_not_widen_slots() {
        // A counter reset: one huge negative delta among small increments.
        let mut xs: Vec<i64> = (0..119).map(|i| 1000 + i % 11).collect();
        xs[60] = -5_000_000;
        let p = round_trip(&xs);
        assert_eq!((p.r, p.w, p.exceptions), (1000, 4, 1));
    }

    #[test]
    fn outliers_become_exceptions() {
        let mut xs = vec![15000i64; 119];
        for (i, x) in xs.iter_mut().enumerate() {
            *x += (i % 2) as i64;
        }
        xs[50] = 30001;
        xs[90] = -5;
        let p = round_trip(&xs);
        assert_eq!((p.w, p.exceptions), (1, 2));
    }
}
