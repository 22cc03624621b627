use super::*;
use proptest::prelude::*;

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn encode(samples: &[(i64, f64)]) -> ChunkEncoder {
    let mut e = ChunkEncoder::new();
    for &(t, v) in samples {
        e.append(t, v);
    }
    e
}

fn bits(samples: impl IntoIterator<Item = (i64, f64)>) -> Vec<(i64, u64)> {
    samples.into_iter().map(|(t, v)| (t, v.to_bits())).collect()
}

/// Every way of reading the samples back must give them bit for bit.
fn check_round_trip(samples: &[(i64, f64)]) -> Chunk {
    let want = bits(samples.iter().copied());
    let enc = encode(samples);
    assert_eq!(enc.len(), samples.len());
    assert_eq!(bits(enc.iter()), want, "open chunk");
    assert_eq!(enc.min_time(), samples.first().map(|s| s.0));
    assert_eq!(enc.max_time(), samples.last().map(|s| s.0));

    let xor = enc.clone().seal_xor();
    assert_eq!(xor.as_bytes().len(), enc.byte_len());
    assert_eq!(bits(xor.iter()), want, "sealed XOR");
    let sealed = enc.seal();
    assert!(sealed.as_bytes().len() <= xor.as_bytes().len());
    for chunk in [&xor, &sealed] {
        assert_eq!(chunk.len(), samples.len());
        if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
            assert_eq!((chunk.min_time(), chunk.max_time()), (first.0, last.0));
        }
        let back = Chunk::from_bytes(chunk.as_bytes()).expect("own bytes parse");
        assert_eq!(&back, chunk);
        assert_eq!(bits(back.iter()), want, "{:?} from bytes", chunk.encoding());
        assert_eq!(back.validate(), Ok(()));
    }
    sealed
}

fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::from_bits(STALE_NAN)),
        Just(f64::from_bits(0x7ff8_0000_0000_0001)),
        Just(f64::from_bits(0xfff0_0000_0000_0abc)),
        Just(-0.0),
        Just(0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::from_bits(1)),
        Just(f64::MIN_POSITIVE / 3.0),
        Just(f64::MAX),
        Just(f64::MIN),
        (-1_000_000i64..1_000_000, 0i32..7).prop_map(|(m, k)| m as f64 / 10f64.powi(k)),
    ]
}

/// Values of one series: arbitrary, a decimal random walk sprinkled with specials, or a counter.
fn values(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        proptest::collection::vec(any_value(), n),
        (0i64..1_000_000_000, 0i32..10, proptest::collection::vec((-500i64..500, 0u8..40, any_value()), n))
            .prop_map(|(start, k, steps)| {
                let mut m = start;
                steps
                    .into_iter()
                    .map(|(step, pick, special)| {
                        m += step;
                        if pick == 0 {
                            special
                        } else {
                            m as f64 / 10f64.powi(k)
                        }
                    })
                    .collect()
            }),
        // A float sum of whole-nanosecond observations: near-decimal, with specials.
        (any::<u32>(), proptest::collection::vec((0u64..10_000_000, 0u8..30, any_value()), n)).prop_map(
            |(start, incs)| {
                let mut s = f64::from(start) / 1e3;
                incs.into_iter()
                    .map(|(ns, pick, special)| {
                        s += ns as f64 / 1e9;
                        if pick == 0 {
                            special
                        } else {
                            s
                        }
                    })
                    .collect()
            }
        ),
        (any::<u32>(), proptest::collection::vec(0u64..1000, n)).prop_map(|(start, incs)| {
            let mut c = f64::from(start);
            incs.into_iter()
                .map(|i| {
                    c += i as f64;
                    c
                })
                .collect()
        }),
    ]
}

/// Strictly increasing timestamps: arbitrary i64 (extremes included), or a jittered grid with
/// occasional gaps.
fn timestamps() -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        (proptest::collection::vec(any::<i64>(), 0..300), any::<bool>(), any::<bool>()).prop_map(
            |(mut ts, lo, hi)| {
                if lo {
                    ts.push(i64::MIN);
                }
                if hi {
                    ts.push(i64::MAX);
                }
                ts.sort_unstable();
                ts.dedup();
                ts
            }
        ),
        (
            -(1i64 << 50)..(1i64 << 50),
            1i64..100_000,
            proptest::collection::vec((-30i64..30, 0u8..50), 1..300)
        )
            .prop_map(|(start, step, jitter)| {
                let mut t = start;
                let mut ts = Vec::with_capacity(jitter.len());
                for (i, (j, gap)) in jitter.into_iter().enumerate() {
                    t += step * if gap == 0 { 5 } else { 1 };
                    ts.push(t + j.clamp(-(step - 1) / 2, (step - 1) / 2) + i as i64 % 2);
                }
                ts.sort_unstable();
                ts.dedup();
                ts
            }),
    ]
}

fn series() -> impl Strategy<Value = Vec<(i64, f64)>> {
    timestamps().prop_flat_map(|ts| {
        let n = ts.len();
        values(n).prop_map(move |vs| ts.iter().copied().zip(vs).collect())
    })
}

proptest! {
    // 512 cases by default; PROPTEST_CASES still overrides for longer runs.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn round_trips_bit_exactly(samples in series()) {
        check_round_trip(&samples);
    }

    #[test]
    fn open_chunk_reads_every_prefix(samples in series()) {
        let mut e = ChunkEncoder::new();
        for (i, &(t, v)) in samples.iter().enumerate() {
            e.append(t, v);
            prop_assert_eq!(bits(e.iter()), bits(samples[..=i].iter().copied()));
        }
    }

    #[test]
    fn seek_finds_first_sample_at_or_after(samples in series(), probe in any::<i64>(), pick in any::<prop::sample::Index>()) {
        let sealed = encode(&samples).seal();
        let mut targets = vec![probe, i64::MIN, i64::MAX];
        if !samples.is_empty() {
            let t = samples[pick.index(samples.len())].0;
            targets.extend([t, t.saturating_sub(1), t.saturating_add(1)]);
        }
        for target in targets {
            let want: Vec<_> = bits(samples.iter().copied().filter(|s| s.0 >= target));
            let mut it = sealed.iter();
            let first = it.seek(target);
            prop_assert_eq!(first.map(|(t, v)| (t, v.to_bits())), want.first().copied());
            prop_assert_eq!(bits(it), want);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(chunk) = Chunk::from_bytes(bytes) {
            prop_assert!(chunk.iter().count() <= chunk.len());
            let _ = chunk.validate();
        }
    }

    #[test]
    fn garbage_after_a_valid_header_never_panics(
        packed in any::<bool>(),
        n in 1u32..300,
        min in any::<i64>(),
        span in any::<u64>(),
        mode in any::<u8>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = header(if packed { ENC_PACKED } else { ENC_XOR }, n, min, min.wrapping_add(span as i64), 0);
        if packed {
            bytes.push(mode);
        }
        bytes.extend_from_slice(&payload);
        if let Ok(chunk) = Chunk::from_bytes(bytes) {
            prop_assert!(chunk.iter().count() <= chunk.len());
            let _ = chunk.iter().seek(min.wrapping_add(1));
            let _ = chunk.validate();
        }
    }

    #[test]
    fn corrupted_chunks_never_panic(
        samples in series(),
        xor in any::<bool>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let enc = encode(&samples);
        let chunk = if xor { enc.seal_xor() } else { enc.seal() };
        let mut bytes = chunk.as_bytes().to_vec();
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if let Ok(chunk) = Chunk::from_bytes(bytes) {
            let mut it = chunk.iter();
            let mut count = 0;
            for _ in it.by_ref() {
                count += 1;
            }
            prop_assert!(count <= chunk.len());
            let _ = it.seek(0);
            let _ = chunk.validate();
        }
    }
}

#[test]
fn empty_chunk() {
    let e = ChunkEncoder::new();
    assert_eq!((e.len(), e.min_time(), e.max_time()), (0, None, None));
    assert_eq!(e.iter().count(), 0);
    let c = e.seal();
    assert!(c.is_empty());
    assert_eq!(c.as_bytes(), &[ENC_XOR, 0]);
    assert_eq!((c.min_time(), c.max_time()), (i64::MAX, i64::MIN));
    let back = Chunk::from_bytes(c.as_bytes()).expect("empty chunk parses");
    assert_eq!(back.iter().count(), 0);
    assert!(Chunk::from_bytes(vec![ENC_XOR, 0, 0]).is_err());
}

#[test]
fn special_values_survive_every_encoding() {
    let specials =
        [f64::from_bits(STALE_NAN), -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::from_bits(1), f64::NAN, 0.0];
    // A decimal counter with specials patched in, and a chunk made only of specials.
    let mut samples: Vec<(i64, f64)> = (0..120).map(|i| (i * 15_000, f64::from(i as i32) * 0.5)).collect();
    for (k, &v) in specials.iter().enumerate() {
        samples[k * 17].1 = v;
    }
    let sealed = check_round_trip(&samples);
    assert!(matches!(
        sealed.encoding(),
        Encoding::Packed { values: ValueCoding::Delta(ValueSource::Decimal { scale: 1 }), .. }
    ));
    let only: Vec<(i64, f64)> = specials.iter().enumerate().map(|(i, &v)| (i as i64, v)).collect();
    check_round_trip(&only);
}

#[test]
fn extreme_timestamps_round_trip() {
    check_round_trip(&[(i64::MIN, 1.0), (i64::MAX, 2.0)]);
    check_round_trip(&[(i64::MIN, 1.0), (-1, 2.0), (0, 3.0), (i64::MAX, 4.0)]);
    check_round_trip(&[(i64::MAX - 2, 1.0), (i64::MAX - 1, 1.0), (i64::MAX, 1.0)]);
    check_round_trip(&[(-5, 1.0)]);
}

#[test]
fn out_of_order_and_full_are_refused() {
    let mut e = ChunkEncoder::new();
    e.append(10, 1.0);
    assert_eq!(e.try_append(10, 2.0), Err(ChunkError::OutOfOrder { t: 10, last: 10 }));
    assert_eq!(e.try_append(9, 2.0), Err(ChunkError::OutOfOrder { t: 9, last: 10 }));
    let mut e = ChunkEncoder::new();
    for t in 0..MAX_SAMPLES_PER_CHUNK as i64 {
        e.append(t, 0.0);
    }
    assert!(e.is_full());
    assert_eq!(e.try_append(i64::MAX, 0.0), Err(ChunkError::Full));
    let c = e.seal();
    assert_eq!(c.len(), MAX_SAMPLES_PER_CHUNK);
    assert_eq!(Chunk::from_bytes(c.as_bytes()).map(|c| c.iter().count()), Ok(MAX_SAMPLES_PER_CHUNK));
}

#[test]
fn header_errors() {
    assert_eq!(Chunk::from_bytes(Vec::new()), Err(ChunkError::Truncated("no encoding byte")));
    assert_eq!(Chunk::from_bytes(vec![9, 0]), Err(ChunkError::UnknownEncoding(9)));
    assert_eq!(Chunk::from_bytes(vec![ENC_XOR, 0x80, 0x80, 0x04]), Err(ChunkError::TooManySamples(0x10000)));
    assert!(matches!(Chunk::from_bytes(vec![ENC_XOR, 1, 0]), Err(ChunkError::Truncated(_))));
}

#[test]
fn scraped_series_pick_compact_codings() {
    // A counter scraped every 15 s with ±2 ms of jitter: grid timestamps, integer deltas.
    let mut counter = Vec::new();
    let mut c = 1_000_000.0;
    for i in 0..120i64 {
        c += (i * 7 % 13) as f64;
        counter.push((1_700_000_000_000 + i * 15_000 + (i * 7 % 5) - 2, c));
    }
    let sealed = check_round_trip(&counter);
    assert!(matches!(
        sealed.encoding(),
        Encoding::Packed {
            timestamps: TimestampCoding::Grid,
            values: ValueCoding::Delta(ValueSource::Decimal { scale: 0 })
        }
    ));
    // 3 bits of jitter and 4 of increment per sample, plus headers.
    assert!(sealed.as_bytes().len() < 120 * 7 / 8 + 30, "{} bytes", sealed.as_bytes().len());

    // A constant series on an exact grid costs only its headers.
    let constant: Vec<(i64, f64)> = (0..120).map(|i| (i * 15_000, 42.5)).collect();
    let sealed = check_round_trip(&constant);
    assert!(sealed.as_bytes().len() <= 16, "{} bytes", sealed.as_bytes().len());

    // A sum of whole-nanosecond durations accumulated in binary is no exact decimal, but near
    // one: integers of nanoseconds plus residuals of a few ulps.
    let mut s = 12506.67007997419;
    let sum: Vec<(i64, f64)> = (0..120)
        .map(|i| {
            for j in 0..(i % 7 + 1) {
                s += (135_819 + 1_000 * j) as f64 / 1e9;
            }
            (i * 15_000, s)
        })
        .collect();
    let sealed = check_round_trip(&sum);
    assert!(matches!(
        sealed.encoding(),
        Encoding::Packed { values: ValueCoding::Delta(ValueSource::NearDecimal { scale: 9 }), .. }
    ));
    let xor_len = encode(&sum).byte_len();
    // ~20 bits of nanosecond increments and ~3 of residual per sample, against ~40 for XOR.
    assert!(sealed.as_bytes().len() * 5 < xor_len * 3, "{} vs XOR {xor_len}", sealed.as_bytes().len());
}

#[test]
fn iterator_reports_corruption() {
    let samples: Vec<(i64, f64)> = (0..50).map(|i| (i * 1000, i as f64 * 1.5)).collect();
    let chunk = encode(&samples).seal_xor();
    // Lie about the last timestamp: the stream still decodes but must not end where claimed.
    let mut bytes = header(ENC_XOR, 50, 0, 49_001, 0);
    let h = parse_header(chunk.as_bytes()).map(|h| h.payload).unwrap_or(0);
    bytes.extend_from_slice(&chunk.as_bytes()[h..]);
    let bad = Chunk::from_bytes(bytes).expect("structure is fine");
    let mut it = bad.iter();
    assert_eq!(it.by_ref().count(), 49);
    assert!(it.error().is_some());
    assert!(bad.validate().is_err());
}
