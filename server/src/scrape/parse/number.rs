//! Sample values and timestamps, parsed bit-exactly as Prometheus does.
//!
//! Both formats accept the numbers Go's `strconv.ParseFloat` accepts once Prometheus has ruled
//! out `p`, `P` and `_` (so no hex floats or digit separators): an optional sign, decimal digits
//! with an optional point and exponent, `Inf`/`Infinity` in any case with an optional sign, and
//! `NaN` in any case without one. That is also the OpenMetrics ABNF `number`. A finite number
//! too large for f64 is an error, as in Go. Every NaN becomes Prometheus's "normal" NaN
//! ([`NORMAL_NAN_BITS`]) so that it can never be mistaken for the stale marker.
//!
//! Most exposed values are short decimals; those take a fast path that is exact by
//! construction (Clinger: an integer mantissa below 2^53 times or divided by a power of ten up to
//! 10^22, both exactly representable, with one correctly rounded IEEE operation). Everything else
//! goes to the standard library's correctly rounded parser, so results match Go's bit for bit.

/// Bit pattern of the NaN every parsed NaN is turned into (Prometheus's `value.NormalNaN`).
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NumError {
    /// Not a number in the accepted grammar.
    Syntax,
    /// A finite number beyond f64's range (or a timestamp beyond i64's).
    Range,
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
    1e19, 1e20, 1e21, 1e22,
];

/// A sample or exemplar value: decimal, infinity or NaN.
#[inline]
pub(super) fn parse_value(tok: &[u8]) -> Result<f64, NumError> {
    parse(tok, true)
}

/// An OpenMetrics timestamp (seconds): decimal only, no infinity or NaN.
#[inline]
pub(super) fn parse_real(tok: &[u8]) -> Result<f64, NumError> {
    parse(tok, false)
}

/// OpenMetrics seconds to Prometheus milliseconds, truncating toward zero like Prometheus's
/// `int64(ts * 1000)`; values beyond i64 saturate.
#[inline]
pub(super) fn seconds_to_ms(s: f64) -> i64 {
    (s * 1000.0) as i64
}

/// A text-format timestamp: decimal digits only (Prometheus's lexer has no sign here), as i64
/// milliseconds.
pub(super) fn parse_ms(tok: &[u8]) -> Result<i64, NumError> {
    if tok.is_empty() {
        return Err(NumError::Syntax);
    }
    let mut v: i64 = 0;
    for &c in tok {
        if !c.is_ascii_digit() {
            return Err(NumError::Syntax);
        }
        v = v.checked_mul(10).and_then(|v| v.checked_add(i64::from(c - b'0'))).ok_or(NumError::Range)?;
    }
    Ok(v)
}

fn parse(tok: &[u8], specials: bool) -> Result<f64, NumError> {
    let (neg, start) = match tok.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let rest = tok.get(start..).unwrap_or_default();
    match rest.first() {
        Some(c) if c.is_ascii_digit() || *c == b'.' => decimal(tok, rest, neg),
        _ if specials => special(rest, start > 0, neg),
        _ => Err(NumError::Syntax),
    }
}

fn special(rest: &[u8], signed: bool, neg: bool) -> Result<f64, NumError> {
    if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        return Ok(if neg { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if !signed && rest.eq_ignore_ascii_case(b"nan") {
        return Ok(f64::from_bits(NORMAL_NAN_BITS));
    }
    Err(NumError::Syntax)
}

/// `digits [. digits] [e [sign] digits]` with at least one mantissa digit; `tok` is the whole
/// token (with sign) for the slow path, `b` the part after the sign.
fn decimal(tok: &[u8], b: &[u8], neg: bool) -> Result<f64, NumError> {
    let mut i = 0;
    let mut mant: u64 = 0;
    let mut sig = 0u32;
    let mut exp10: i64 = 0;
    let mut digits = false;
    // More significant digits than fit exactly in the u64 mantissa: leave it to the slow path.
    let mut lossy = false;
    while i < b.len() && b[i].is_ascii_digit() {
        let d = u64::from(b[i] - b'0');
        digits = true;
        if mant != 0 || d != 0 {
            if sig < 19 {
                mant = mant * 10 + d;
                sig += 1;
            } else {
                lossy = true;
            }
        }
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            let d = u64::from(b[i] - b'0');
            digits = true;
            if mant != 0 || d != 0 {
                if sig < 19 {
                    mant = mant * 10 + d;
                    sig += 1;
                    exp10 -= 1;
                } else {
                    lossy = true;
                }
            } else {
                exp10 -= 1;
            }
            i += 1;
        }
    }
    if !digits {
        return Err(NumError::Syntax);
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let eneg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let estart = i;
        let mut e: i64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            // Saturating: any exponent this large already means 0 or out of range.
            e = (e * 10 + i64::from(b[i] - b'0')).min(1_000_000);
            i += 1;
        }
        if i == estart {
            return Err(NumError::Syntax);
        }
        exp10 += if eneg { -e } else { e };
    }
    if i != b.len() {
        return Err(NumError::Syntax);
    }
    if !lossy {
        if mant == 0 {
            return Ok(if neg { -0.0 } else { 0.0 });
        }
        if mant <= 1 << 53 && (-22..=22).contains(&exp10) {
            let m = mant as f64;
            let v = if exp10 >= 0 { m * POW10[exp10 as usize] } else { m / POW10[(-exp10) as usize] };
            return Ok(if neg { -v } else { v });
        }
    }
    let s = std::str::from_utf8(tok).map_err(|_| NumError::Syntax)?;
    let v: f64 = s.parse().map_err(|_| NumError::Syntax)?;
    if v.is_infinite() {
        return Err(NumError::Range);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Result<f64, NumError> {
        parse_value(s.as_bytes())
    }

    #[test]
    fn accepts_go_float_forms() {
        assert_eq!(v("1"), Ok(1.0));
        assert_eq!(v("-1.5"), Ok(-1.5));
        assert_eq!(v("+.5"), Ok(0.5));
        assert_eq!(v("5."), Ok(5.0));
        assert_eq!(v("1.e2"), Ok(100.0));
        assert_eq!(v("1e+06"), Ok(1e6));
        assert_eq!(v("1E-3"), Ok(1e-3));
        assert_eq!(v("0000000000000000000000000000000000000000001.2e-1"), Ok(0.12));
        assert_eq!(v("9223372036854775808"), Ok(9223372036854775808.0));
        assert_eq!(v("+Inf"), Ok(f64::INFINITY));
        assert_eq!(v("-infinity"), Ok(f64::NEG_INFINITY));
        assert_eq!(v("INF"), Ok(f64::INFINITY));
        assert_eq!(v("NaN").map(f64::to_bits), Ok(NORMAL_NAN_BITS));
        assert_eq!(v("nan").map(f64::to_bits), Ok(NORMAL_NAN_BITS));
        assert_eq!(v("-0").map(f64::to_bits), Ok((-0.0f64).to_bits()));
        assert_eq!(v("1e-400"), Ok(0.0));
        assert_eq!(v("0e999999999999"), Ok(0.0));
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        for bad in [
            "", "+", "-", ".", "e5", "1e", "1e+", "0x1", "0X1", "0x1p-3", "0x1P-3", "0b1", "0o1", "1_2",
            "1.1.1", "+nan", "-NaN", "Infinit", "in", "1 ", " 1", "1\t", "a", "--1", "1e5.5", "∞",
        ] {
            assert_eq!(v(bad), Err(NumError::Syntax), "{bad:?}");
        }
        assert_eq!(v("1e400"), Err(NumError::Range));
        assert_eq!(v("-1e309"), Err(NumError::Range));
        assert_eq!(parse_real(b"Inf"), Err(NumError::Syntax));
        assert_eq!(parse_real(b"NaN"), Err(NumError::Syntax));
        assert_eq!(parse_real(b"-1.5e3"), Ok(-1500.0));
    }

    #[test]
    fn text_timestamps() {
        assert_eq!(parse_ms(b"1395066363000"), Ok(1395066363000));
        assert_eq!(parse_ms(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_ms(b"9223372036854775808"), Err(NumError::Range));
        assert_eq!(parse_ms(b"-1"), Err(NumError::Syntax));
        assert_eq!(parse_ms(b"1.5"), Err(NumError::Syntax));
    }

    #[test]
    fn seconds_truncate_like_prometheus() {
        assert_eq!(seconds_to_ms(1.5e3), 1_500_000);
        assert_eq!(seconds_to_ms(1.1), 1100);
        assert_eq!(seconds_to_ms(-1.0001), -1000);
        assert_eq!(seconds_to_ms(1.2345678901234568e19), i64::MAX);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        // The fast path must agree bit for bit with the correctly rounded standard parser.
        #[test]
        fn matches_std_for_any_rendering(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            for s in [format!("{x}"), format!("{x:e}"), format!("{x:.3}"), format!("{x:.17e}")] {
                let want: f64 = s.parse().unwrap();
                prop_assert_eq!(v(&s).map(f64::to_bits), Ok(want.to_bits()), "{}", s);
            }
        }

        #[test]
        fn matches_std_for_short_decimals(int in 0u64..10_000_000_000, frac in 0u32..1_000_000, e in -30i32..30) {
            let s = format!("{int}.{frac:06}e{e}");
            let want: f64 = s.parse().unwrap();
            prop_assert_eq!(v(&s).map(f64::to_bits), Ok(want.to_bits()), "{}", s);
        }
    }
}
