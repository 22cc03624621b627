//! Bit streams (most significant bit first, like Prometheus's `bstream`) and LEB128 varints.
//!
//! Reading never fails and never panics: bits past the end of the data read as zero, and the
//! decoders compare the cursor with the end they expect to notice truncated input.

/// Appends bits to a byte vector. The last byte may be partly filled; its unused low bits are 0,
/// so the vector is always a valid prefix of the final stream and can be read while it grows.
#[derive(Clone, Debug, Default)]
pub(super) struct BitWriter {
    buf: Vec<u8>,
    /// Unused low bits of the last byte (0 when the vector is empty or its last byte is full).
    free: u32,
}

impl BitWriter {
    /// Continues after the bytes already in `buf`, starting a fresh byte.
    pub(super) fn from_vec(buf: Vec<u8>) -> Self {
        BitWriter { buf, free: 0 }
    }

    pub(super) fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bits written so far, counted from the start of the vector.
    pub(super) fn bit_len(&self) -> usize {
        self.buf.len() * 8 - self.free as usize
    }

    /// Writes the low `n` bits of `v` (n ≤ 64); higher bits of `v` are ignored.
    // A byte at a time: most fields are a few bits, for which this measured faster than
    // assembling whole bytes and copying them.
    #[inline]
    pub(super) fn write(&mut self, v: u64, n: u32) {
        let mut n = n.min(64);
        while n > 0 {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            let bits = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= bits << (self.free - take);
            }
            self.free -= take;
            n -= take;
        }
    }

    #[inline]
    pub(super) fn write_bit(&mut self, bit: bool) {
        self.write(u64::from(bit), 1);
    }

    /// Pads the current byte with zero bits so that byte-level data can follow.
    pub(super) fn align(&mut self) {
        self.free = 0;
    }

    /// Appends a byte-aligned byte (aligning first).
    pub(super) fn push_byte(&mut self, b: u8) {
        self.align();
        self.buf.push(b);
    }

    pub(super) fn push_uvarint(&mut self, v: u64) {
        self.align();
        put_uvarint(&mut self.buf, v);
    }

    pub(super) fn push_varint(&mut self, v: i64) {
        self.push_uvarint(zigzag(v));
    }

    pub(super) fn extend(&mut self, bytes: &[u8]) {
        self.align();
        self.buf.extend_from_slice(bytes);
    }
}

/// Where encoders put bits: a [`BitWriter`], or a [`BitCount`] to size an encoding without
/// writing it.
pub(super) trait BitSink {
    fn write(&mut self, v: u64, n: u32);
}

impl BitSink for BitWriter {
    #[inline]
    fn write(&mut self, v: u64, n: u32) {
        BitWriter::write(self, v, n)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BitCount(pub(super) usize);

impl BitSink for BitCount {
    #[inline]
    fn write(&mut self, _v: u64, n: u32) {
        self.0 += n.min(64) as usize;
    }
}

/// Eight bytes big-endian at `byte`, zero-padded past the end of `data`.
#[inline(always)]
fn load_be(data: &[u8], byte: usize) -> u64 {
    if let Some(chunk) = data.get(byte..byte.saturating_add(8)) {
        if let Ok(arr) = <[u8; 8]>::try_from(chunk) {
            return u64::from_be_bytes(arr);
        }
    }
    let mut arr = [0u8; 8];
    if let Some(rest) = data.get(byte..) {
        for (dst, src) in arr.iter_mut().zip(rest) {
            *dst = *src;
        }
    }
    u64::from_be_bytes(arr)
}

/// Reads `n` bits (n ≤ 64) starting at bit `pos` of `data`; bits past the end read as zero.
#[inline(always)]
pub(super) fn read_bits(data: &[u8], pos: usize, n: u32) -> u64 {
    if n == 0 {
        return 0;
    }
    let n = n.min(64);
    let byte = pos >> 3;
    let shift = (pos & 7) as u32;
    let mut v = load_be(data, byte) << shift;
    if n + shift > 64 {
        // shift > 0 here because n ≤ 64.
        let next = data.get(byte.saturating_add(8)).copied().unwrap_or(0);
        v |= u64::from(next) >> (8 - shift);
    }
    v >> (64 - n)
}

/// A read position in a bit stream that ends at bit `end`.
#[derive(Clone, Debug)]
pub(super) struct BitCursor<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> BitCursor<'a> {
    pub(super) fn new(data: &'a [u8], pos: usize, end: usize) -> Self {
        BitCursor { data, pos, end }
    }

    #[inline(always)]
    pub(super) fn read(&mut self, n: u32) -> u64 {
        let v = read_bits(self.data, self.pos, n);
        self.pos = self.pos.saturating_add(n as usize);
        v
    }

    /// Reads `out.len()` fields of `w` bits (1 ≤ w ≤ 64), each added to `base`. The loop for
    /// widths up to 56, where one 8-byte load always holds the whole field, is the hot path of
    /// decoding packed chunks.
    #[inline]
    pub(super) fn unpack(&mut self, w: u32, base: i64, out: &mut [i64]) {
        let data = self.data;
        let mut pos = self.pos;
        if (1..=56).contains(&w) {
            let drop = 64 - w;
            for o in out.iter_mut() {
                let word = load_be(data, pos >> 3) << (pos & 7);
                *o = base.wrapping_add((word >> drop) as i64);
                pos = pos.wrapping_add(w as usize);
            }
        } else {
            for o in out.iter_mut() {
                *o = base.wrapping_add(read_bits(data, pos, w) as i64);
                pos = pos.wrapping_add(w as usize);
            }
        }
        self.pos = pos;
    }

    /// The next `n` bits without consuming them.
    #[inline(always)]
    pub(super) fn peek(&self, n: u32) -> u64 {
        read_bits(self.data, self.pos, n)
    }

    #[inline(always)]
    pub(super) fn skip(&mut self, n: u32) {
        self.pos = self.pos.saturating_add(n as usize);
    }

    /// True once a read went past the end: everything read since is made-up zeros.
    #[inline(always)]
    pub(super) fn overrun(&self) -> bool {
        self.pos > self.end
    }
}

#[inline]
pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(super) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Number of bits needed to write `v` (0 for 0).
#[inline]
pub(super) fn bit_len(v: u64) -> u32 {
    64 - v.leading_zeros()
}

pub(super) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(super) fn uvarint_len(v: u64) -> usize {
    (bit_len(v).max(1) as usize).div_ceil(7)
}

/// Reads a LEB128 varint at `*pos`, advancing it. `None` if truncated or longer than 64 bits.
pub(super) fn read_uvarint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *data.get(*pos)?;
        *pos += 1;
        let low = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return None;
        }
        v |= low << (7 * i);
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

pub(super) fn read_varint(data: &[u8], pos: &mut usize) -> Option<i64> {
    read_uvarint(data, pos).map(unzigzag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bits_round_trip(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..200)) {
            let mut w = BitWriter::default();
            for &(v, n) in &fields {
                w.write(v, n);
            }
            let total: usize = fields.iter().map(|f| f.1 as usize).sum();
            prop_assert_eq!(w.bit_len(), total);
            let bytes = w.into_vec();
            let mut c = BitCursor::new(&bytes, 0, total);
            for &(v, n) in &fields {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(c.read(n), v & mask);
            }
            prop_assert!(!c.overrun());
        }

        #[test]
        fn unpack_matches_read(lead in 0u32..8, w in 1u32..=64, vs in proptest::collection::vec(any::<u64>(), 0..40), base in any::<i64>()) {
            let mut wr = BitWriter::default();
            wr.write(0, lead);
            for &v in &vs {
                wr.write(v, w);
            }
            let bits = wr.bit_len();
            let bytes = wr.into_vec();
            let mut c = BitCursor::new(&bytes, lead as usize, bits);
            let mut out = vec![0i64; vs.len()];
            c.unpack(w, base, &mut out);
            let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
            for (o, v) in out.iter().zip(&vs) {
                prop_assert_eq!(*o, base.wrapping_add((v & mask) as i64));
            }
            prop_assert!(!c.overrun());
        }

        #[test]
        fn varint_round_trip(vs in proptest::collection::vec(any::<i64>(), 0..50)) {
            let mut buf = Vec::new();
            for &v in &vs {
                put_uvarint(&mut buf, zigzag(v));
            }
            let mut pos = 0;
            for &v in &vs {
                prop_assert_eq!(read_varint(&buf, &mut pos), Some(v));
            }
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn uvarint_len_matches(v in any::<u64>()) {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, v);
            prop_assert_eq!(buf.len(), uvarint_len(v));
        }
    }

    #[test]
    fn reads_past_end_are_zero_and_flagged() {
        let data = [0xffu8];
        let mut c = BitCursor::new(&data, 0, 8);
        assert_eq!(c.read(4), 0xf);
        assert_eq!(c.read(8), 0xf0);
        assert!(c.overrun());
        assert_eq!(read_bits(&data, usize::MAX - 3, 64), 0);
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let data = [0xffu8; 11];
        assert_eq!(read_uvarint(&data, &mut 0), None);
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_uvarint(&max, &mut 0), Some(u64::MAX));
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(read_uvarint(&too_big, &mut 0), None);
    }
}
