//! Tests of the parser as a whole; the number grammar has its own in `number.rs`. The
//! OpenMetrics conformance suite runs as the integration test `openmetrics_conformance`.

use proptest::prelude::*;

use super::*;

fn parse(body: &str, format: Format) -> Result<Vec<Entry<'_>>, ParseError> {
    Parser::new(body.as_bytes(), format).collect()
}

fn samples(body: &str, format: Format) -> Vec<Sample<'_>> {
    parse(body, format)
        .unwrap_or_else(|e| panic!("{body:?}: {e}"))
        .into_iter()
        .filter_map(|e| match e {
            Entry::Sample(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn err(body: &str, format: Format) -> ParseError {
    match parse(body, format) {
        Ok(e) => panic!("expected an error for {body:?}, got {e:?}"),
        Err(e) => e,
    }
}

fn pairs(l: LabelsText<'_>) -> Vec<(String, String)> {
    l.iter().map(|(n, v)| (n.to_string(), v.unescape().into_owned())).collect()
}

const TEXT: Format = Format::Text;
const OM: Format = Format::OpenMetrics;

#[test]
fn content_type_picks_the_format() {
    for ct in [
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "application/openmetrics-text",
        "Application/OpenMetrics-Text ;version=0.0.1",
    ] {
        assert_eq!(Format::from_content_type(ct), OM, "{ct}");
    }
    for ct in ["text/plain; version=0.0.4; charset=utf-8", "text/plain", "", "garbage;;", "application/json"]
    {
        assert_eq!(Format::from_content_type(ct), TEXT, "{ct}");
    }
}

#[test]
fn text_sample_parts() {
    let body = "# HELP http_requests_total The total number of HTTP requests.\n\
                # TYPE http_requests_total counter\n\
                http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
                \n\
                # A normal comment.\n\
                metric_without_timestamp_and_labels 12.47\n";
    let e = parse(body, TEXT).unwrap();
    assert_eq!(e.len(), 5);
    match e[0] {
        Entry::Help { name, text } => {
            assert_eq!(name, "http_requests_total");
            assert_eq!(text, "The total number of HTTP requests.");
        }
        ref other => panic!("{other:?}"),
    }
    assert!(matches!(e[1], Entry::Type { name: "http_requests_total", kind: MetricType::Counter }));
    let Entry::Sample(s) = e[2] else { panic!("{:?}", e[2]) };
    assert_eq!(s.name, "http_requests_total");
    assert_eq!(s.series, "http_requests_total{method=\"post\",code=\"200\"}");
    assert_eq!(s.labels.as_str(), "{method=\"post\",code=\"200\"}");
    assert_eq!(pairs(s.labels), [("method".into(), "post".into()), ("code".into(), "200".into())]);
    assert_eq!(s.value, 1027.0);
    assert_eq!(s.timestamp_ms, Some(1395066363000));
    assert!(s.exemplar.is_none() && !s.created);
    let Entry::Sample(s) = e[4] else { panic!("{:?}", e[4]) };
    assert_eq!(s.series, "metric_without_timestamp_and_labels");
    assert!(s.labels.is_empty() && s.labels.as_str().is_empty());
    assert_eq!(s.timestamp_ms, None);
}

#[test]
fn text_blanks_and_commas_as_prometheus() {
    let s = samples(" \t a { x = \"1\" ,\ty=\"2\", } \t 3 \t 42 \t\n b{}4\nc 5 6", TEXT);
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].series, "a { x = \"1\" ,\ty=\"2\", }");
    assert_eq!(s[0].labels.as_str(), "{ x = \"1\" ,\ty=\"2\", }");
    assert_eq!(pairs(s[0].labels), [("x".into(), "1".into()), ("y".into(), "2".into())]);
    assert_eq!((s[0].value, s[0].timestamp_ms), (3.0, Some(42)));
    assert_eq!((s[1].series, s[1].value), ("b{}", 4.0));
    assert!(s[1].labels.is_empty());
    assert_eq!(s[2].timestamp_ms, Some(6), "a last line without newline keeps its timestamp");
}

#[test]
fn text_comments_and_metadata_forms() {
    let e =
        parse("#comment\n# EOF\n# HELPER x\n# HELP\n# TYPE\n#\n# HELP a\n# HELP b x \\\\ \\n \\\" y\n", TEXT)
            .unwrap();
    assert_eq!(e.len(), 2);
    let Entry::Help { name: "a", text } = e[0] else { panic!("{:?}", e[0]) };
    assert_eq!(text.raw(), "");
    let Entry::Help { name: "b", text } = e[1] else { panic!("{:?}", e[1]) };
    assert_eq!(text.unescape(), "x \\ \n \\\" y", "text HELP keeps \\\" as written");
    let e = parse("# TYPE a untyped\n# TYPE b summary\n# TYPE c histogram\n# TYPE d gauge\n", TEXT).unwrap();
    let kinds: Vec<_> = e
        .iter()
        .map(|e| match e {
            Entry::Type { kind, .. } => *kind,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, [MetricType::Unknown, MetricType::Summary, MetricType::Histogram, MetricType::Gauge]);
    assert!(err("# TYPE a info\n", TEXT).message.contains("invalid metric type \"info\""));
    assert!(err("# TYPE a  counter\n", TEXT).message.contains("invalid metric type \" counter\""));
    assert!(err("# HELP \n", TEXT).message.contains("expected metric name after HELP"));
    assert_eq!(err("# HELP a-b x\n", TEXT).kind, ErrorKind::Metadata);
}

#[test]
fn text_errors_name_line_and_column() {
    let e = err("a 1\nb 2\nup{job\"x\"} 1\n", TEXT);
    assert_eq!((e.line, e.column), (3, 7));
    assert_eq!(e.to_string(), "line 3 column 7: expected '=' after label name \"job\", found '\"'");
    let e = err("a{b=\"ü\",b=\"2\"} 1\n", TEXT);
    assert_eq!((e.line, e.column, e.message.as_str()), (1, 9, "duplicate label name \"b\""));
    let cases = [
        ("a{__name__=\"x\"} 1", "reserved"),
        ("a{b=\"1\"", "expected ',' or '}'"),
        ("a{b=\"1\n\"} 1", "not closed"),
        ("a{b=\"1\\\n\"} 1", "not closed"),
        ("a{,} 1", "expected label name"),
        ("a{b=\"1\",,} 1", "expected label name"),
        ("a{\"b\"=\"1\"} 1", "quoted UTF-8 names are not supported"),
        ("{\"a\"} 1", "metric names inside braces"),
        ("a", "expected value"),
        ("a{} ", "expected value"),
        ("a+1", "expected a blank or '{'"),
        ("a 1x", "invalid value \"1x\""),
        ("a 1e999", "out of range"),
        ("a 1 -5", "expected timestamp"),
        ("a 1 1.5", "expected end of line after timestamp"),
        ("a 1 99999999999999999999", "timestamp \"99999999999999999999\" is out of range"),
        ("a 1 2 3", "expected end of line after timestamp"),
        ("a 1 # {x=\"y\"} 1", "expected timestamp"),
        ("5a 1", "expected metric name"),
    ];
    for (body, want) in cases {
        let e = err(body, TEXT);
        assert!(e.message.contains(want), "{body:?}: {e}");
        assert!(e.line == 1 || body.contains('\n'), "{body:?}: {e}");
    }
}

#[test]
fn label_values_unescape_lazily() {
    let body = "a{p=\"plain\",q=\"x\\\"y\\\\z\\nw\",u=\"\\z\",e=\"\"} 1\n";
    let s = samples(body, TEXT)[0];
    let l: Vec<_> = s.labels.iter().collect();
    assert!(!l[0].1.has_escapes());
    assert!(matches!(l[0].1.unescape(), std::borrow::Cow::Borrowed("plain")));
    assert_eq!(l[1].1.raw(), "x\\\"y\\\\z\\nw");
    assert_eq!(l[1].1.unescape(), "x\"y\\z\nw");
    assert_eq!(l[1].1, "x\"y\\z\nw");
    assert!(l[1].1 != "x\"y\\z\nw!" && l[1].1 != "x\"y");
    assert_eq!(l[1].1.unescaped_chars(), 7);
    assert_eq!(l[2].1.unescape(), "\\z", "unknown escapes stay as written");
    assert_eq!(l[3].1, "");
    let mut scratch = String::new();
    assert_eq!(l[1].1.unescape_into(&mut scratch), "x\"y\\z\nw");
    assert_eq!(l[0].1.unescape_into(&mut scratch), "plain");
    assert_eq!(s.labels.get("u").map(|v| v.raw()), Some("\\z"));
    assert!(s.labels.get("nope").is_none());
}

#[test]
fn nan_and_infinities() {
    let s = samples("a NaN\nb +Inf\nc -Inf\nd nan\ne -0\n", TEXT);
    assert_eq!(s[0].value.to_bits(), NORMAL_NAN_BITS);
    assert_eq!(s[1].value, f64::INFINITY);
    assert_eq!(s[2].value, f64::NEG_INFINITY);
    assert_eq!(s[3].value.to_bits(), NORMAL_NAN_BITS);
    assert_eq!(s[4].value.to_bits(), (-0.0f64).to_bits());
}

#[test]
fn utf8_is_checked_where_text_is_used() {
    let mut body = b"# bad \xff comment\na{b=\"\xc3\xa9\"} 1\n".to_vec();
    let e: Vec<_> = Parser::new(&body, TEXT).collect::<Result<_, _>>().unwrap();
    assert_eq!(e.len(), 1, "text comments are not checked, as in Prometheus");
    body.extend_from_slice(b"c{d=\"x\xffy\"} 2\n");
    let e = Parser::new(&body, TEXT).collect::<Result<Vec<_>, _>>().unwrap_err();
    assert_eq!((e.kind, e.line, e.column), (ErrorKind::Utf8, 3, 7));
    let e = Parser::new(b"# HELP a \xfe\n# EOF\n", OM).collect::<Result<Vec<_>, _>>().unwrap_err();
    assert_eq!((e.kind, e.line, e.column), (ErrorKind::Utf8, 1, 10));
}

#[test]
fn openmetrics_sample_parts() {
    let body = "# TYPE foo counter\n\
                # UNIT foo_seconds seconds\n\
                # HELP foo Some \\\"help\\\"\\n\\\\.\n\
                foo_total{a=\"b\"} 17.0 1520879607.789 # {trace_id=\"oHg5SJYRHA0\"} 9.8 1520879607.789\n\
                foo_created{a=\"b\"} 1520430000.123 1520879607.789\n\
                # TYPE bar gauge\n\
                bar_created 1 1.5e3\n\
                # EOF\n";
    // The UNIT line names another family, so only syntax holds here.
    let e: Vec<_> =
        Parser::with_validation(body.as_bytes(), OM, Validation::Syntax).collect::<Result<_, _>>().unwrap();
    assert_eq!(e.len(), 7);
    assert!(matches!(e[1], Entry::Unit { name: "foo_seconds", unit: "seconds" }));
    let Entry::Help { text, .. } = e[2] else { panic!("{:?}", e[2]) };
    assert_eq!(text.unescape(), "Some \"help\"\n\\.");
    let Entry::Sample(s) = e[3] else { panic!("{:?}", e[3]) };
    assert_eq!(s.timestamp_ms, Some((1520879607.789f64 * 1000.0) as i64));
    let x = s.exemplar.unwrap();
    assert_eq!(pairs(x.labels), [("trace_id".into(), "oHg5SJYRHA0".into())]);
    assert_eq!((x.value, x.timestamp_ms), (9.8, Some((1520879607.789f64 * 1000.0) as i64)));
    assert!(!s.created);
    let Entry::Sample(s) = e[4] else { panic!("{:?}", e[4]) };
    assert!(s.created && s.exemplar.is_none());
    let Entry::Sample(s) = e[6] else { panic!("{:?}", e[6]) };
    assert!(!s.created, "a gauge's _created is an ordinary sample");
    assert_eq!(s.timestamp_ms, Some(1_500_000));
}

#[test]
fn openmetrics_strict_flags_created_and_groups_reordered_labels() {
    let body = "# TYPE a summary\n\
                a{x=\"1\",y=\"2\",quantile=\"0.5\"} 1\n\
                a{quantile=\"0.9\",y=\"2\",x=\"1\"} 2\n\
                a_sum{y=\"2\",x=\"1\"} 3\n\
                a_count{x=\"1\",y=\"2\"} 4\n\
                a_created{x=\"1\",y=\"2\"} 5\n\
                a_count{x=\"2\",y=\"2\"} 4\n\
                # EOF\n";
    let s = samples(body, OM);
    assert_eq!(s.iter().filter(|s| s.created).count(), 1);
    assert!(s[4].created);
    // The same metric coming back after another, spelled differently, is caught.
    let e = err("a{x=\"1\",y=\"2\"} 1\na{x=\"2\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 1\n# EOF\n", OM);
    assert_eq!((e.line, e.kind), (3, ErrorKind::Semantics), "{e}");
    let e = err("a{x=\"\\q\"} 1\na{x=\"2\"} 1\na{x=\"\\\\q\"} 1\n# EOF\n", OM);
    assert!(e.message.contains("not grouped together"), "{e}");
}

#[test]
fn openmetrics_strict_rules_beyond_the_suite() {
    let cases = [
        ("# TYPE a counter\na_total 1\n# TYPE a_total gauge\n# EOF\n", "clashes"),
        ("a 1\nb 1\na 2\n# EOF\n", "clashes"),
        ("# TYPE a_s stateset\n# UNIT a_s s\n# EOF\n", "must not have a unit"),
        ("# TYPE a counter\n# UNIT a s\n# EOF\n", "not a suffix"),
        ("# TYPE a histogram\na_bucket{le=\"1\"} 1\na_bucket{le=\"1\"} 1\na_bucket{le=\"+Inf\"} 1\n# EOF\n", "not above"),
        ("# TYPE a histogram\na_bucket{le=\"+Inf\"} 1.5\n# EOF\n", "not an integer"),
        ("# TYPE a histogram\na_bucket{le=\"Inf\"} 1\n# EOF\n", "not canonical"),
        ("# TYPE a histogram\na_bucket{le=\"NaN\"} 1\n# EOF\n", "le=\"NaN\""),
        ("# TYPE a histogram\na_bucket{le=\"+Inf\"} 1 # {} 2\na_count 1 # {} 1\n# EOF\n", "exemplars are allowed"),
        ("# TYPE a gauge\na 1 1\na 1 0.5\n# EOF\n", "goes backwards"),
        ("# TYPE a info\na_info{v=\"1\"} 1 2\na_info{v=\"2\"} 1 1\n# EOF\nx", "text after"),
        ("a 1\n# EOF\n\n", "text after"),
        ("a 1\n", "missing \"# EOF\""),
        ("a 1", "not ended by a newline"),
        ("", "missing"),
        ("a\t1\n# EOF\n", "expected ' '"),
        ("a{b=\"1\"}  1\n# EOF\n", "expected value"),
        ("a 1 1  # {} 1\n# EOF\n", "expected '#'"),
        ("a{b=\"1\" } 1\n# EOF\n", "expected ','"),
        ("a{ b=\"1\"} 1\n# EOF\n", "expected label name"),
        ("a 1\r\n# EOF\n", "invalid value"),
        ("# TYPE a counter\na_total 1 # {a=\"1\",a=\"2\"} 1\n# EOF\n", "duplicate exemplar label name"),
    ];
    for (body, want) in cases {
        let e = err(body, OM);
        assert!(e.message.contains(want), "{body:?}: {e}");
    }
    // Values the suite does not exercise but the ABNF allows.
    let s = samples("a 1E3 -1.5e-3\nb inf\nc -Infinity\nd .5\n# EOF", OM);
    assert_eq!(s[0].timestamp_ms, Some(-1));
    assert_eq!((s[1].value, s[2].value, s[3].value), (f64::INFINITY, f64::NEG_INFINITY, 0.5));
}

#[test]
fn syntax_validation_accepts_semantic_violations_only() {
    let body =
        "# TYPE a histogram\na_bucket{le=\"-1\"} 1\na_bucket{le=\"+Inf\"} 2\na_sum -3\na_count 2\n# EOF\n";
    assert!(parse(body, OM).is_err());
    let p = Parser::with_validation(body.as_bytes(), OM, Validation::Syntax);
    assert_eq!(p.collect::<Result<Vec<_>, _>>().unwrap().len(), 5);
    let p = Parser::with_validation(b"a  1\n# EOF\n", OM, Validation::Syntax);
    assert!(p.collect::<Result<Vec<_>, _>>().is_err());
}

#[test]
fn stops_after_the_first_error() {
    let mut p = Parser::new(b"a 1\nb{ 2\nc 3\n", TEXT);
    assert!(matches!(p.next(), Some(Ok(Entry::Sample(_)))));
    assert!(matches!(p.next(), Some(Err(_))));
    assert!(p.next().is_none() && p.next().is_none());
}

#[test]
fn scratch_is_reusable_across_scrapes() {
    let body = "# TYPE a histogram\na_bucket{x=\"1\",le=\"1\"} 1\na_bucket{x=\"1\",le=\"+Inf\"} 1\n\
                a_bucket{x=\"2\",le=\"+Inf\"} 1\n# EOF\n";
    let mut scratch = Scratch::default();
    for _ in 0..3 {
        let mut p = Parser::with_scratch(body.as_bytes(), OM, Validation::Strict, scratch);
        let n = p.by_ref().collect::<Result<Vec<_>, _>>().unwrap().len();
        assert_eq!(n, 4);
        scratch = p.into_scratch();
    }
    // A failed parse leaves state behind that the next one must not see.
    let mut p =
        Parser::with_scratch(b"# TYPE a counter\na_total 1\na_total{b=\"", OM, Validation::Strict, scratch);
    assert!(p.by_ref().any(|e| e.is_err()));
    let p = Parser::with_scratch(
        b"# TYPE a counter\na_total 1\n# EOF\n",
        OM,
        Validation::Strict,
        p.into_scratch(),
    );
    assert_eq!(p.collect::<Result<Vec<_>, _>>().unwrap().len(), 2);
}

// --- properties ---

/// Label values drawn to exercise escaping: quotes, backslashes, newlines, `#`, braces, UTF-8.
fn label_value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just('#'),
            Just('}'),
            Just(' '),
            Just('é'),
            Just('☃'),
            prop::char::range('a', 'z'),
        ],
        0..12,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[derive(Debug, Clone)]
struct Series {
    labels: Vec<(String, String)>,
    value: f64,
}

fn series() -> impl Strategy<Value = Series> {
    let labels = prop::collection::btree_map("[a-z_][a-z0-9_]{0,6}", label_value(), 0..5)
        .prop_map(|m| m.into_iter().filter(|(k, _)| k != "le" && k != "quantile").collect());
    let value = prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64 / 1000.0)
    ];
    (labels, value).prop_map(|(labels, value)| Series { labels, value })
}

fn render_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:?}")
    }
}

fn render(name: &str, s: &Series) -> String {
    let mut line = name.to_string();
    if !s.labels.is_empty() {
        let l: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        line.push_str(&format!("{{{}}}", l.join(",")));
    }
    line.push(' ');
    line.push_str(&render_value(s.value));
    line
}

fn same_value(a: f64, b: f64) -> bool {
    if b.is_nan() {
        a.to_bits() == NORMAL_NAN_BITS
    } else {
        a.to_bits() == b.to_bits()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn text_round_trip(all in prop::collection::vec(series(), 1..20), ts in 0i64..i64::MAX) {
        let mut body = String::from("# HELP m doc\n# TYPE m gauge\n");
        for s in &all {
            body.push_str(&render("m", s));
            body.push_str(&format!(" {ts}\n"));
        }
        let got = samples(&body, TEXT);
        prop_assert_eq!(got.len(), all.len());
        for (g, want) in got.iter().zip(&all) {
            prop_assert_eq!(&pairs(g.labels), &want.labels);
            prop_assert!(same_value(g.value, want.value), "{} vs {}", g.value, want.value);
            prop_assert_eq!(g.timestamp_ms, Some(ts));
            let line = render("m", want);
            prop_assert_eq!(g.series, line.rsplit_once(' ').unwrap().0);
        }
    }

    #[test]
    fn openmetrics_round_trip(all in prop::collection::vec(series(), 1..20)) {
        let mut body = String::from("# TYPE m gauge\n# HELP m doc\n");
        let mut seen = std::collections::BTreeSet::new();
        let mut kept = Vec::new();
        for s in all {
            if seen.insert(s.labels.clone()) {
                body.push_str(&render("m", &s));
                body.push('\n');
                kept.push(s);
            }
        }
        body.push_str("# EOF\n");
        let got = samples(&body, OM);
        prop_assert_eq!(got.len(), kept.len());
        for (g, want) in got.iter().zip(&kept) {
            prop_assert_eq!(&pairs(g.labels), &want.labels);
            prop_assert!(same_value(g.value, want.value));
        }
    }

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
        for (format, validation) in [(TEXT, Validation::Strict), (OM, Validation::Strict), (OM, Validation::Syntax)] {
            check_any(&body, format, validation)?;
        }
    }

    #[test]
    fn mutated_bodies_never_panic(
        which in 0usize..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..6),
    ) {
        let mut body = VALID[which].as_bytes().to_vec();
        for (at, op, byte) in edits {
            let i = at.index(body.len() + 1);
            match op {
                0 => body.insert(i, byte),
                1 if i < body.len() => { body.remove(i); }
                _ if i < body.len() => body[i] = byte,
                _ => {}
            }
        }
        for (format, validation) in [(TEXT, Validation::Strict), (OM, Validation::Strict), (OM, Validation::Syntax)] {
            check_any(&body, format, validation)?;
        }
    }
}

const VALID: [&str; 3] = [
    "# HELP a x\n# TYPE a counter\na_total{b=\"c\\\"d\",e=\"\"} 1 2\na_created 3\n# EOF\n",
    "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1 # {t=\"x\"} 0.4 1.5\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 1\n# EOF\n",
    "# TYPE s summary\n# UNIT s_seconds seconds\ns{quantile=\"0.5\"} NaN\ns_sum 1\ns_count 1\n# TYPE st stateset\nst{st=\"a\"} 1\n# EOF",
];

/// Whatever the input, the walk ends, and an error points inside the body.
fn check_any(body: &[u8], format: Format, validation: Validation) -> Result<(), TestCaseError> {
    let lines = 1 + body.iter().filter(|&&c| c == b'\n').count();
    let mut n = 0;
    for e in Parser::with_validation(body, format, validation) {
        n += 1;
        prop_assert!(n <= body.len() + 1);
        if let Err(e) = e {
            prop_assert!(e.line >= 1 && e.line <= lines && e.column >= 1, "{:?}", e);
            prop_assert!(!e.message.is_empty());
        }
    }
    Ok(())
}
