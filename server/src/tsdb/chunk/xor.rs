//! Gorilla XOR coding with the bit layout of Prometheus's `chunkenc/xor.go`.
//!
//! Open chunks are always written this way because it is a pure append-only stream: each sample
//! costs a few dozen nanoseconds and the bytes written so far can be read at any time. Sealing
//! may re-encode into [`super::packed`]; a sealed chunk keeps this layout only when nothing else
//! is smaller.
//!
//! Timestamps: the first is in the chunk header; then each sample writes the delta-of-delta
//! `dod = (tᵢ − tᵢ₋₁) − (tᵢ₋₁ − tᵢ₋₂)` (the delta before the second sample counts as 0) as `0`
//! (dod = 0), `10` + 14 bits, `110` + 17 bits, `1110` + 20 bits, or `1111` + 64 bits, two's
//! complement, where an n-bit field holds −(2ⁿ⁻¹−1) ..= 2ⁿ⁻¹. All arithmetic wraps modulo 2⁶⁴, so
//! every pair of i64 timestamps round-trips.
//!
//! Values: the first as 64 raw bits; then `x = bits(vᵢ) ^ bits(vᵢ₋₁)` as `0` (x = 0), `10` +
//! the meaningful bits within the previous leading/trailing-zero window, or `11` + 5 bits of
//! leading zeros (capped at 31) + 6 bits of meaningful-bit count (64 written as 0) + the bits.

use super::bits::{BitCursor, BitSink, BitWriter};
use super::BATCH;

/// Marks "no window yet" in [`XorValueEncoder`], as Prometheus does with 0xff.
const NO_WINDOW: u8 = 0xff;

#[derive(Clone, Debug)]
pub(super) struct XorValueEncoder {
    prev: u64,
    leading: u8,
    trailing: u8,
    started: bool,
}

impl Default for XorValueEncoder {
    fn default() -> Self {
        XorValueEncoder { prev: 0, leading: NO_WINDOW, trailing: 0, started: false }
    }
}

impl XorValueEncoder {
    #[inline]
    pub(super) fn encode(&mut self, v: u64, w: &mut impl BitSink) {
        if !self.started {
            self.started = true;
            self.prev = v;
            w.write(v, 64);
            return;
        }
        let x = v ^ self.prev;
        self.prev = v;
        if x == 0 {
            w.write(0, 1);
            return;
        }
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            w.write(0b10, 2);
            w.write(x >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            let sig = 64 - u32::from(leading) - u32::from(trailing);
            w.write(0b11, 2);
            w.write(u64::from(leading), 5);
            // A 6-bit field cannot hold 64; 0 stands for it since 0 meaningful bits never occur.
            w.write(u64::from(sig & 63), 6);
            w.write(x >> trailing, sig);
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct XorValueDecoder {
    prev: u64,
    leading: u32,
    trailing: u32,
    started: bool,
}

impl XorValueDecoder {
    /// The next value's bits, or `None` if the stream is malformed.
    #[inline(always)]
    pub(super) fn decode(&mut self, c: &mut BitCursor<'_>) -> Option<u64> {
        if !self.started {
            self.started = true;
            self.prev = c.read(64);
            return Some(self.prev);
        }
        let ctrl = c.peek(2);
        if ctrl < 0b10 {
            c.skip(1);
            return Some(self.prev);
        }
        c.skip(2);
        if ctrl == 0b11 {
            let leading = c.read(5) as u32;
            let mut sig = c.read(6) as u32;
            if sig == 0 {
                sig = 64;
            }
            if leading + sig > 64 {
                return None;
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig;
        }
        let sig = 64 - self.leading - self.trailing;
        let bits = c.read(sig);
        // `sig` ≥ 1 so the shift is < 64; a '10' before any window reads 64 bits with trailing 0.
        self.prev ^= bits << self.trailing;
        Some(self.prev)
    }
}

/// Writes a timestamp delta-of-delta with Prometheus's buckets.
#[inline]
fn write_dod(w: &mut BitWriter, dod: i64) {
    const fn fits(x: i64, nbits: u32) -> bool {
        -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
    }
    if dod == 0 {
        w.write_bit(false);
    } else if fits(dod, 14) {
        w.write(0b10, 2);
        w.write(dod as u64, 14);
    } else if fits(dod, 17) {
        w.write(0b110, 3);
        w.write(dod as u64, 17);
    } else if fits(dod, 20) {
        w.write(0b1110, 4);
        w.write(dod as u64, 20);
    } else {
        w.write(0b1111, 4);
        w.write(dod as u64, 64);
    }
}

#[inline(always)]
fn read_dod(c: &mut BitCursor<'_>) -> i64 {
    let prefix = c.peek(4);
    let nbits = match prefix {
        0b0000..=0b0111 => {
            c.skip(1);
            return 0;
        }
        0b1000..=0b1011 => {
            c.skip(2);
            14
        }
        0b1100..=0b1101 => {
            c.skip(3);
            17
        }
        0b1110 => {
            c.skip(4);
            20
        }
        _ => {
            c.skip(4);
            return c.read(64) as i64;
        }
    };
    let bits = c.read(nbits) as i64;
    // Values above 2ⁿ⁻¹ are negative (Prometheus's convention that +2ⁿ⁻¹ is representable).
    if bits > 1i64 << (nbits - 1) {
        bits - (1i64 << nbits)
    } else {
        bits
    }
}

/// The open-chunk encoder: timestamps and values interleaved, sample by sample.
#[derive(Clone, Debug, Default)]
pub(super) struct XorEncoder {
    w: BitWriter,
    n: u32,
    t_first: i64,
    t_last: i64,
    delta: i64,
    values: XorValueEncoder,
}

impl XorEncoder {
    #[inline]
    pub(super) fn append(&mut self, t: i64, v: f64) {
        if self.n == 0 {
            self.t_first = t;
        } else {
            let delta = t.wrapping_sub(self.t_last);
            write_dod(&mut self.w, delta.wrapping_sub(self.delta));
            self.delta = delta;
        }
        self.t_last = t;
        self.values.encode(v.to_bits(), &mut self.w);
        self.n += 1;
    }

    pub(super) fn len(&self) -> u32 {
        self.n
    }

    pub(super) fn first_time(&self) -> i64 {
        self.t_first
    }

    pub(super) fn last_time(&self) -> i64 {
        self.t_last
    }

    /// The payload written so far (the last byte may be partly filled).
    pub(super) fn payload(&self) -> &[u8] {
        self.w.bytes()
    }

    pub(super) fn payload_bits(&self) -> usize {
        self.w.bit_len()
    }
}

/// Decodes an XOR payload of `n` samples whose first timestamp is `t_first`.
#[derive(Clone, Debug)]
pub(super) struct XorIter<'a> {
    c: BitCursor<'a>,
    remaining: u32,
    started: bool,
    t: i64,
    /// The header's last timestamp: the stream must end there, a cheap check against corruption.
    t_last: i64,
    delta: i64,
    values: XorValueDecoder,
    /// A malformed sample was met after others of the same batch.
    failed: bool,
}

impl<'a> XorIter<'a> {
    /// Decodes `n` samples from `payload`, which holds `payload_bits` bits of stream and whose
    /// first and last timestamps, from the chunk header, are `t_first` and `t_last`.
    pub(super) fn new(payload: &'a [u8], payload_bits: usize, n: u32, t_first: i64, t_last: i64) -> Self {
        XorIter {
            c: BitCursor::new(payload, 0, payload_bits),
            remaining: n,
            t_last,
            started: false,
            t: t_first,
            delta: 0,
            values: XorValueDecoder::default(),
            failed: false,
        }
    }

    pub(super) fn remaining(&self) -> u32 {
        self.remaining
    }

    /// The next sample as (t, value bits); `Err` if the payload is malformed or truncated.
    #[inline(always)]
    pub(super) fn next_sample(&mut self) -> Option<Result<(i64, u64), ()>> {
        if self.remaining == 0 {
            return None;
        }
        if self.started {
            let dod = read_dod(&mut self.c);
            self.delta = self.delta.wrapping_add(dod);
            self.t = self.t.wrapping_add(self.delta);
        }
        self.started = true;
        let v = self.values.decode(&mut self.c);
        match v {
            Some(v) if !self.c.overrun() && (self.remaining > 1 || self.t == self.t_last) => {
                self.remaining -= 1;
                Some(Ok((self.t, v)))
            }
            _ => {
                self.remaining = 0;
                Some(Err(()))
            }
        }
    }
}

impl XorIter<'_> {
    /// Decodes up to a batch of samples; 0 at the end, `Err` on malformed data.
    /// Samples before a malformed one are still returned; the error comes with the next call.
    pub(super) fn fill(
        &mut self,
        batch_t: &mut [i64; BATCH],
        batch_v: &mut [f64; BATCH],
    ) -> Result<usize, ()> {
        if self.failed {
            return Err(());
        }
        let mut k = 0;
        for (t, v) in batch_t.iter_mut().zip(batch_v.iter_mut()) {
            match self.next_sample() {
                Some(Ok((ts, bits))) => {
                    *t = ts;
                    *v = f64::from_bits(bits);
                    k += 1;
                }
                Some(Err(())) if k == 0 => return Err(()),
                Some(Err(())) => {
                    self.failed = true;
                    break;
                }
                None => break,
            }
        }
        Ok(k)
    }
}

/// Decodes a values-only XOR stream (used inside packed chunks).
#[derive(Clone, Debug)]
pub(super) struct XorValues<'a> {
    pub(super) c: BitCursor<'a>,
    pub(super) dec: XorValueDecoder,
}

impl XorValues<'_> {
    #[inline(always)]
    pub(super) fn next_value(&mut self) -> Option<u64> {
        let v = self.dec.decode(&mut self.c)?;
        if self.c.overrun() {
            None
        } else {
            Some(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn dod_round_trip(dods in proptest::collection::vec(any::<i64>(), 1..100), small in -70000i64..70000) {
            let mut w = BitWriter::default();
            for &d in &dods {
                write_dod(&mut w, d);
            }
            write_dod(&mut w, small);
            let bits = w.bit_len();
            let bytes = w.into_vec();
            let mut c = BitCursor::new(&bytes, 0, bits);
            for &d in &dods {
                prop_assert_eq!(read_dod(&mut c), d);
            }
            prop_assert_eq!(read_dod(&mut c), small);
            prop_assert!(!c.overrun());
        }
    }

    #[test]
    fn bucket_edges_round_trip() {
        let edges = [
            0,
            1,
            -1,
            8191,
            8192,
            -8191,
            -8192,
            8193,
            65536,
            -65535,
            -65536,
            65537,
            524288,
            -524287,
            -524288,
            524289,
            i64::MIN,
            i64::MAX,
        ];
        let mut w = BitWriter::default();
        for &d in &edges {
            write_dod(&mut w, d);
        }
        let bits = w.bit_len();
        let bytes = w.into_vec();
        let mut c = BitCursor::new(&bytes, 0, bits);
        for &d in &edges {
            assert_eq!(read_dod(&mut c), d);
        }
    }
}
