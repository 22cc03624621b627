//! Query results written straight into JSON bytes, in Prometheus's shapes.
//!
//! A range query can answer with millions of points. Building a `serde_json::Value` tree for them
//! cost an allocation or three per point (the `[t, "v"]` array, the value string, the tree node)
//! and took most of the time of large queries, so results are written here into one buffer: label
//! strings go through serde_json's escaping, numbers are formatted in place. The output is
//! byte-for-byte what the `Value` tree serialized to (the tests below hold the two together).

use std::io::Write;

use crate::promql::{Matrix, Sample, Value};
use crate::tsdb::labels::Labels;

/// The `{"status":"success","data":…}` envelope around `data`, with warnings and infos when there
/// are any (Prometheus leaves the keys out otherwise).
pub fn envelope(data: &[u8], warnings: &[String], infos: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    out.extend_from_slice(br#"{"data":"#);
    out.extend_from_slice(data);
    // Keys in serde_json's (sorted) order, as the other responses print them.
    if !infos.is_empty() {
        out.extend_from_slice(br#","infos":"#);
        string_list(&mut out, infos);
    }
    out.extend_from_slice(br#","status":"success""#);
    if !warnings.is_empty() {
        out.extend_from_slice(br#","warnings":"#);
        string_list(&mut out, warnings);
    }
    out.push(b'}');
    out
}

fn string_list(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, s);
    }
    out.push(b']');
}

/// A JSON string literal. serde_json's escaping, so control characters and quotes come out as in
/// every other response.
fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail, and a &str always serializes.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Timestamps go out as seconds with millisecond precision, a JSON number: an integer when whole,
/// else serde_json's shortest decimal of `ms as f64 / 1000.0`.
pub fn timestamp(out: &mut Vec<u8>, ms: i64) {
    if ms % 1000 == 0 {
        out.extend_from_slice(itoa::Buffer::new().format(ms / 1000).as_bytes());
    } else {
        let _ = serde_json::to_writer(&mut *out, &(ms as f64 / 1000.0));
    }
}

/// Prometheus's sample value text as a JSON string: shortest round-trip decimal without exponent
/// (Go's `FormatFloat(v, 'f', -1, 64)`, which Rust's `Display` matches), and `NaN`, `+Inf`, `-Inf`.
pub fn value(out: &mut Vec<u8>, v: f64) {
    out.push(b'"');
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else {
        plain_decimal(out, v);
    }
    out.push(b'"');
}

/// The shortest round-trip decimal of a finite `v` without exponent, as Rust's `Display` and Go's
/// `FormatFloat(v, 'f', -1, 64)` print it (in an exact tie between two shortest decimals the
/// printers may pick different ones; both parse back to `v`). zmij finds the digits several times faster than
/// `Display`, which was a third of the time of large answers; its exponent form (`1e300`,
/// `1.5e-7`) and `.0` suffix are rewritten here.
fn plain_decimal(out: &mut Vec<u8>, v: f64) {
    let mut buf = zmij::Buffer::new();
    let s = buf.format_finite(v);
    let Some(e) = s.find('e') else {
        out.extend_from_slice(s.strip_suffix(".0").unwrap_or(s).as_bytes());
        return;
    };
    let (mantissa, exp) = (&s[..e], &s[e + 1..]);
    let Ok(exp) = exp.parse::<i32>() else {
        // Not zmij's documented output; Display is slower but always right.
        let _ = write!(out, "{v}");
        return;
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    // Where the decimal point goes, counted in digits from the first one.
    let point = int.len() as i32 + exp;
    if negative {
        out.push(b'-');
    }
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-point) as usize, b'0');
        out.extend_from_slice(&digits);
    } else if point as usize >= digits.len() {
        out.extend_from_slice(&digits);
        out.resize(out.len() + point as usize - digits.len(), b'0');
    } else {
        let (a, b) = digits.split_at(point as usize);
        out.extend_from_slice(a);
        out.push(b'.');
        out.extend_from_slice(b);
    }
}

fn point(out: &mut Vec<u8>, t: i64, v: f64) {
    out.push(b'[');
    timestamp(out, t);
    out.push(b',');
    value(out, v);
    out.push(b']');
}

/// A label set as an object; `Labels` are sorted by name, as serde_json's map printed them.
pub fn labels(out: &mut Vec<u8>, l: &Labels) {
    out.push(b'{');
    for (i, (n, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, n);
        out.push(b':');
        string(out, v);
    }
    out.push(b'}');
}

pub fn matrix(m: &Matrix) -> Vec<u8> {
    // ~30 bytes a point ("[1795685400,\"0.123\"],") plus the labels: one allocation for most answers.
    let points: usize = m.iter().map(|s| s.points.len()).sum();
    let out = Vec::with_capacity(64 + points * 30 + m.len() * 128);
    result_list(out, m, "matrix", |out, s| {
        labels(out, &s.labels);
        out.extend_from_slice(br#","values":["#);
        for (j, &(t, v)) in s.points.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            point(out, t, v);
        }
        out.push(b']');
    })
}

fn vector(samples: &[Sample]) -> Vec<u8> {
    let out = Vec::with_capacity(64 + samples.len() * 160);
    result_list(out, samples, "vector", |out, s| {
        labels(out, &s.labels);
        out.extend_from_slice(br#","value":"#);
        point(out, s.t, s.v);
    })
}

/// `{"result":[{"metric":…},…],"resultType":"<kind>"}`: `item` writes what follows `"metric":` in
/// each element (the labels, then the values).
fn result_list<T>(mut out: Vec<u8>, items: &[T], kind: &str, item: impl Fn(&mut Vec<u8>, &T)) -> Vec<u8> {
    out.extend_from_slice(br#"{"result":["#);
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"metric":"#);
        item(&mut out, it);
        out.push(b'}');
    }
    out.extend_from_slice(br#"],"resultType":""#);
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(br#""}"#);
    out
}

/// The `data` of an instant query's answer.
pub fn value_data(v: &Value) -> Vec<u8> {
    match v {
        Value::Scalar(t, v) => {
            let mut out = br#"{"result":"#.to_vec();
            point(&mut out, *t, *v);
            out.extend_from_slice(br#","resultType":"scalar"}"#);
            out
        }
        Value::String(t, s) => {
            let mut out = br#"{"result":["#.to_vec();
            timestamp(&mut out, *t);
            out.push(b',');
            string(&mut out, s);
            out.extend_from_slice(br#"],"resultType":"string"}"#);
            out
        }
        Value::Vector(samples) => vector(samples),
        Value::Matrix(m) => matrix(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::Series;
    use serde_json::{json, Value as Json};

    // The serde_json tree the API used to build; the fast writer must print the same bytes.
    fn ts_json(ms: i64) -> Json {
        if ms % 1000 == 0 {
            json!(ms / 1000)
        } else {
            json!(ms as f64 / 1000.0)
        }
    }

    use crate::api::format_value as value_text;

    fn labels_tree(l: &Labels) -> Json {
        Json::Object(l.iter().map(|(n, v)| (n.to_string(), Json::String(v.to_string()))).collect())
    }

    fn tree(v: &Value) -> Json {
        let point = |t: i64, v: f64| json!([ts_json(t), value_text(v)]);
        match v {
            Value::Scalar(t, v) => json!({"resultType": "scalar", "result": point(*t, *v)}),
            Value::String(t, s) => json!({"resultType": "string", "result": [ts_json(*t), s]}),
            Value::Vector(s) => json!({"resultType": "vector", "result": s.iter().map(|s| json!({
                "metric": labels_tree(&s.labels), "value": point(s.t, s.v)})).collect::<Vec<_>>()}),
            Value::Matrix(m) => json!({"resultType": "matrix", "result": m.iter().map(|s| json!({
                "metric": labels_tree(&s.labels),
                "values": s.points.iter().map(|&(t, v)| point(t, v)).collect::<Vec<_>>()})).collect::<Vec<_>>()}),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn same_bytes_as_the_value_tree() {
        let odd = [
            0.0,
            -0.0,
            1.5,
            -2.25,
            0.1 + 0.2,
            1e300,
            1e-300,
            5e-324,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7ff0_0000_0000_0002),
            123_456_789.123_456_79,
        ];
        let times = [0, 1000, 1_795_685_400_000, 1_795_685_400_123, 1_795_685_400_100, -1500, -3000, 7, 999];
        let l1 = labels(&[("__name__", "up"), ("job", "a\"b\\c\n\u{1}"), ("x", "ünï€ode")]);
        let l2 = labels(&[("le", "+Inf")]);
        let series = vec![
            Series {
                labels: l1.clone(),
                points: times.iter().zip(odd.iter()).map(|(&t, &v)| (t, v)).collect(),
            },
            Series { labels: Labels::empty(), points: vec![] },
            Series { labels: l2.clone(), points: odd.iter().map(|&v| (1_000, v)).collect() },
        ];
        let vec_samples: Vec<Sample> = odd
            .iter()
            .zip(times.iter())
            .map(|(&v, &t)| Sample { labels: l1.clone(), t, v })
            .chain(std::iter::once(Sample { labels: Labels::empty(), t: 5, v: 1.0 }))
            .collect();
        let cases = vec![
            Value::Matrix(series),
            Value::Matrix(vec![]),
            Value::Vector(vec_samples),
            Value::Vector(vec![]),
            Value::Scalar(1_795_685_400_123, 0.5),
            Value::Scalar(0, f64::NAN),
            Value::String(12_345, "a \"quoted\" \t string".into()),
        ];
        for v in &cases {
            let fast = value_data(v);
            let slow = serde_json::to_vec(&tree(v)).unwrap();
            assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&slow));
        }
    }

    #[test]
    fn plain_decimal_prints_what_display_prints() {
        // Same text as Display, except that where two shortest decimals are equally near (an
        // exact tie, e.g. 667082108456853.25 as ".2" or ".3") either is right: both parse back to
        // the same bits, which is all a client sees.
        let digits = |s: &str| s.trim_start_matches('-').replace('.', "").trim_start_matches('0').len();
        let check = |v: f64| {
            let mut out = Vec::new();
            plain_decimal(&mut out, v);
            let ours = String::from_utf8(out).unwrap();
            let display = format!("{v}");
            if ours != display {
                assert_eq!(ours.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{ours} vs {display}");
                assert_eq!(digits(&ours), digits(&display), "{ours} vs {display}");
                assert_eq!(ours.len(), display.len(), "{ours} vs {display}");
            }
        };
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e15,
            1e16,
            1e17,
            1e21,
            1e22,
            1e-5,
            1e-6,
            1e-7,
            123.456,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.5e300,
            -2.5e-300,
            9007199254740993.0,
            0.3,
        ] {
            check(v);
        }
        // Random bit patterns cover every exponent; a cheap LCG keeps the test deterministic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let v = f64::from_bits(x);
            if v.is_finite() {
                check(v);
            }
            // Values like scraped data: few decimals, moderate magnitudes.
            check((x >> 40) as f64 / 100.0);
            check((x >> 20) as f64 * 1e-9);
        }
    }

    #[test]
    fn envelope_matches_serde() {
        let data = value_data(&Value::Scalar(1000, 2.0));
        for (w, i) in [(vec![], vec![]), (vec!["w \"1\"".to_string()], vec![]), (vec![], vec!["i".into()])] {
            let fast = envelope(&data, &w, &i);
            let mut body =
                json!({"status": "success", "data": serde_json::from_slice::<Json>(&data).unwrap()});
            if !w.is_empty() {
                body["warnings"] = json!(w);
            }
            if !i.is_empty() {
                body["infos"] = json!(i);
            }
            assert_eq!(String::from_utf8(fast).unwrap(), serde_json::to_string(&body).unwrap());
        }
    }
}
