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
    Series = 1,
    Samples = 2,
}

impl RecordType {
    pub(crate) fn from_byte(b: u8) -> Option<RecordType> {
        match b {
            1 => Some(RecordType::Series),
            2 => Some(RecordType::Samples),
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
}

impl DecodeError {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            DecodeError::Truncated => "payload ends inside an entry",
            DecodeError::VarintOverflow => "varint longer than 10 bytes",
            DecodeError::InvalidUtf8 => "label is not UTF-8",
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

/// Appends a samples payload to a record begun with [`begin`].
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

    proptest! {
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
