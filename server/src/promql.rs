//! Vigil's PromQL engine: parses a query with `promql-parser` and evaluates it over the TSDB with
//! Prometheus 3 semantics (float samples only; native histograms are not supported yet).
//!
//! [`Engine`] is the entry point: [`Engine::instant`] evaluates at one time, [`Engine::range`]
//! at every step of a range. Both read data through [`Queryable`] (implemented for
//! [`Db`](crate::tsdb::db::Db)), so the engine knows nothing of HTTP or of where samples live.
//! Results are [`Value`]s plus the warnings and infos Prometheus would attach as annotations.
//! Every failure is a [`PromqlError`] whose [`ErrorKind`] maps onto the Prometheus HTTP API's
//! error types (`bad_data`, `execution`, `timeout`, `canceled`, `internal`).
//!
//! Evaluation itself lives in submodules: [`eval`] walks the AST, evaluating every node at all
//! steps of the query at once (as Prometheus's range evaluation does), so each selected series is
//! read from storage and decoded once and range functions slide windows over its samples;
//! [`functions`] holds the function library, [`info`] the `info()` join with info metrics,
//! [`aggregate`] the aggregation operators and [`binary`] the operators with their vector matching.

pub mod aggregate;
pub mod binary;
pub mod eval;
pub mod functions;
pub mod info;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::Expr;

use crate::tsdb::db::Db;
use crate::tsdb::head::SeriesSamples;
use crate::tsdb::index::Matcher;
use crate::tsdb::labels::Labels;

/// Prometheus's defaults: 5 minutes lookback, 1 minute subquery step, 50 million samples, 2
/// minutes timeout.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back a selector looks for the latest sample, in ms.
    pub lookback_delta_ms: i64,
    /// Step of subqueries written without one (`foo[5m:]`), in ms.
    pub default_subquery_step_ms: i64,
    /// Most samples a query may hold in memory at once (`query.max-samples`).
    pub max_samples: usize,
    /// Longest a query may run; checked cooperatively during evaluation.
    pub timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            default_subquery_step_ms: 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Per-query overrides of the engine options and a cancellation flag.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub lookback_delta_ms: Option<i64>,
    pub timeout: Option<Duration>,
    /// Set to `true` (from any thread) to abandon the query with [`ErrorKind::Canceled`].
    pub cancel: Option<Arc<AtomicBool>>,
}

/// One series as storage returns it: its labels, and its samples in time order (staleness markers
/// included), decoded only when read.
///
/// Selecting does not decode: a query over 10,000 series × 24 h would otherwise hold every sample
/// at once (16 bytes each, close to a gigabyte) before computing anything. The evaluator reads one
/// series at a time into a reused buffer ([`RawSeries::read_into`]) and keeps only its results.
pub struct RawSeries {
    pub labels: Labels,
    samples: SeriesSamples,
}

impl RawSeries {
    /// Replaces `buf`'s contents with the samples.
    pub fn read_into(&self, buf: &mut Vec<(i64, f64)>) {
        self.samples.read_into(buf);
    }
}

/// A storage failure, kept opaque so any store can implement [`Queryable`].
pub type StorageError = Box<dyn std::error::Error + Send + Sync>;

/// Where the engine reads samples from.
pub trait Queryable {
    /// Series matching every matcher with their samples in `[mint, maxt]` (ms, inclusive).
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<RawSeries>, StorageError>;
}

impl Queryable for Db {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<RawSeries>, StorageError> {
        let series = Db::select(self, matchers, mint, maxt)?;
        Ok(series.into_iter().map(|s| RawSeries { labels: s.labels.clone(), samples: s }).collect())
    }
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// One series of a range vector or range-query result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// A range-query result: series sorted by labels.
pub type Matrix = Vec<Series>;

/// The result of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(i64, f64),
    String(i64, String),
    Vector(Vec<Sample>),
    Matrix(Matrix),
}

/// A result with the annotations Prometheus would return beside it, as rendered text
/// (`PromQL warning: …` / `PromQL info: …`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult<T> {
    pub value: T,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// The Prometheus API error type a [`PromqlError`] maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `bad_data`: the query does not parse or is invalid.
    BadData,
    /// `execution`: the query is valid but cannot be evaluated (too many samples, bad matching…).
    Execution,
    /// `timeout`.
    Timeout,
    /// `canceled`.
    Canceled,
    /// `internal`: storage failed.
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PromqlError {
    /// The query text does not parse; the message names the position when known.
    #[error("{0}")]
    Parse(String),
    /// The query parses but is not valid for this request (e.g. a range vector in a range query).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed with Prometheus's message.
    #[error("{0}")]
    Execution(String),
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    #[error("query timed out in query execution")]
    Timeout,
    #[error("query was canceled in query execution")]
    Canceled,
    /// A feature of PromQL this engine does not implement yet.
    #[error("not supported by Vigil yet: {0}")]
    Unsupported(String),
    #[error("storage error: {0}")]
    Storage(String),
}

impl PromqlError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PromqlError::Parse(_) | PromqlError::BadData(_) => ErrorKind::BadData,
            PromqlError::Execution(_) | PromqlError::TooManySamples | PromqlError::Unsupported(_) => {
                ErrorKind::Execution
            }
            PromqlError::Timeout => ErrorKind::Timeout,
            PromqlError::Canceled => ErrorKind::Canceled,
            PromqlError::Storage(_) => ErrorKind::Internal,
        }
    }
}

/// Parses a query, turning promql-parser's messages into [`PromqlError::Parse`] with a position.
pub fn parse(query: &str) -> Result<Expr, PromqlError> {
    let query = byte_escapes_as_chars(query)?;
    promql_parser::parser::parse(&query).map_err(|msg| PromqlError::Parse(locate_parse_error(&query, msg)))
}

/// In Go (so in Prometheus) `\xHH` and octal `\OOO` escapes in a string literal are bytes: `"\xc3\xbf"`
/// is `ÿ`, and `"\xff"` is not valid UTF-8. promql-parser reads each as the character of that code
/// point instead (`Ã¿`, `ÿ`). This rewrites every run of such escapes of bytes ≥ 0x80 into the `\U`
/// escapes of the characters they encode, and rejects a run that is not valid UTF-8: Vigil's
/// strings, and label names and values in Prometheus 3, are UTF-8, so such a literal could only
/// name a label or value that cannot exist.
fn byte_escapes_as_chars(query: &str) -> Result<std::borrow::Cow<'_, str>, PromqlError> {
    let chars: Vec<(usize, char)> = query.char_indices().collect();
    let byte_escape = |i: usize| -> Option<u8> {
        let digits = |from: usize, radix: u32| -> Option<u32> {
            let a = chars.get(from)?.1.to_digit(radix)?;
            let b = chars.get(from + 1)?.1.to_digit(radix)?;
            Some(a * radix + b)
        };
        match chars.get(i + 1)?.1 {
            'x' => u8::try_from(digits(i + 2, 16)?).ok(),
            c @ '0'..='7' => u8::try_from(c.to_digit(8)? * 64 + digits(i + 2, 8)?).ok(),
            _ => None,
        }
    };
    let mut out: Option<String> = None;
    let mut copied = 0; // byte offset in `query` up to which `out` holds the query
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        match quote {
            None => {
                if c == '"' || c == '\'' || c == '`' {
                    quote = Some(c);
                } else if c == '#' {
                    // A comment runs to the end of the line.
                    while i + 1 < chars.len() && chars[i + 1].1 != '\n' {
                        i += 1;
                    }
                }
                i += 1;
            }
            Some(q) if c == q => {
                quote = None;
                i += 1;
            }
            Some('`') => i += 1,
            Some(_) if c != '\\' => i += 1,
            Some(_) => {
                let mut bytes = Vec::new();
                let mut j = i;
                while chars.get(j).is_some_and(|x| x.1 == '\\') {
                    match byte_escape(j) {
                        Some(b) if b >= 0x80 => bytes.push(b),
                        _ => break,
                    }
                    j += 4; // `\xHH` or `\OOO`
                }
                if bytes.is_empty() {
                    i += 2; // an escape promql-parser reads as Go does
                    continue;
                }
                let Ok(text) = String::from_utf8(bytes) else {
                    let (line, col) = line_col(query, i);
                    return Err(PromqlError::Parse(format!(
                        "{line}:{col}: parse error: string escapes are not valid UTF-8 (at line {line}, column {col})"
                    )));
                };
                let o = out.get_or_insert_with(String::new);
                o.push_str(&query[copied..at]);
                for ch in text.chars() {
                    o.push_str(&format!("\\U{:08x}", u32::from(ch)));
                }
                copied = chars.get(j).map_or(query.len(), |x| x.0);
                i = j;
            }
        }
    }
    Ok(match out {
        Some(mut o) => {
            o.push_str(&query[copied..]);
            std::borrow::Cow::Owned(o)
        }
        None => std::borrow::Cow::Borrowed(query),
    })
}

/// promql-parser's lexer errors name a position, its grammar errors ("invalid promql query") do
/// not. Until the failing token can be found, such errors point at the end of the query, the
/// place the parser reached; that is only exact for truncated queries.
fn locate_parse_error(query: &str, msg: String) -> String {
    if msg.contains("line") && msg.contains("column") {
        return msg;
    }
    let column = query.chars().count().max(1);
    let (line, col) = line_col(query, column.saturating_sub(1));
    format!("1:{col}: parse error: {msg} (at line {line}, column {col})")
}

fn line_col(query: &str, char_index: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in query.chars().enumerate() {
        if i == char_index {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Evaluates PromQL queries; cheap to share between threads.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Engine {
        Engine { opts }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at `t_ms`.
    pub fn instant(
        &self,
        q: &dyn Queryable,
        query: &str,
        t_ms: i64,
    ) -> Result<QueryResult<Value>, PromqlError> {
        self.instant_with(q, query, t_ms, &QueryOptions::default())
    }

    pub fn instant_with(
        &self,
        q: &dyn Queryable,
        query: &str,
        t_ms: i64,
        qopts: &QueryOptions,
    ) -> Result<QueryResult<Value>, PromqlError> {
        let expr = parse(query)?;
        self.instant_expr(q, &expr, t_ms, qopts)
    }

    /// Evaluates an already parsed expression at `t_ms`.
    pub fn instant_expr(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        t_ms: i64,
        qopts: &QueryOptions,
    ) -> Result<QueryResult<Value>, PromqlError> {
        let mut ev = eval::Evaluator::new(q, &self.opts, qopts, t_ms, t_ms, 0);
        let value = ev.run_instant(expr)?;
        Ok(ev.finish(value))
    }

    /// Evaluates `query` at `start_ms`, `start_ms + step_ms`, … up to `end_ms`.
    pub fn range(
        &self,
        q: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult<Matrix>, PromqlError> {
        self.range_with(q, query, start_ms, end_ms, step_ms, &QueryOptions::default())
    }

    pub fn range_with(
        &self,
        q: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        qopts: &QueryOptions,
    ) -> Result<QueryResult<Matrix>, PromqlError> {
        let expr = parse(query)?;
        self.range_expr(q, &expr, start_ms, end_ms, step_ms, qopts)
    }

    pub fn range_expr(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        qopts: &QueryOptions,
    ) -> Result<QueryResult<Matrix>, PromqlError> {
        if step_ms <= 0 {
            return Err(PromqlError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .into(),
            ));
        }
        if end_ms < start_ms {
            return Err(PromqlError::BadData("end timestamp must not be before start time".into()));
        }
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            other => {
                return Err(PromqlError::BadData(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    type_name(other)
                )))
            }
        }
        let mut ev = eval::Evaluator::new(q, &self.opts, qopts, start_ms, end_ms, step_ms);
        let value = ev.run_range(expr)?;
        Ok(ev.finish(value))
    }
}

/// Prometheus's names of value types, as its messages use them.
pub(crate) fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::db::DbOptions;

    #[test]
    fn byte_escapes_are_utf8_bytes_as_in_go() {
        let string_arg = |q: &str| match parse(q) {
            Ok(Expr::Call(c)) => match c.args.args.get(1).map(|a| a.as_ref()) {
                Some(Expr::StringLiteral(s)) => s.val.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(string_arg(r#"label_join(x, "\xc3\xbf", "")"#), "ÿ");
        assert_eq!(string_arg(r#"label_join(x, "a\303\277b\x41\n", "")"#), "aÿbA\n");
        assert_eq!(string_arg(r#"label_join(x, 'ÿ\\xff', "")"#), "ÿ\\xff");
        assert_eq!(string_arg(r#"label_join(x, `\xff`, "")"#), "\\xff");
        for q in [r#"label_replace(x, "\xff", "", "src", "(.*)")"#, r#"x{a="\xc3"}"#] {
            match parse(q) {
                Err(PromqlError::Parse(msg)) => assert!(msg.contains("not valid UTF-8"), "{msg}"),
                other => panic!("{q}: {other:?}"),
            }
        }
        assert!(parse("x # \"\\xff\n + 1").is_ok());
    }

    /// 10 series `x{i="…"}` with 100 samples 15 s apart from t = 0.
    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let mut app = db.appender();
        for i in 0..10 {
            let labels = Labels::new([("__name__", "x".to_string()), ("i", i.to_string())]).unwrap();
            for k in 0..100 {
                app.append(&labels, k * 15_000, k as f64);
            }
        }
        app.commit().unwrap();
        (dir, db)
    }

    fn engine(max_samples: usize) -> Engine {
        Engine::new(EngineOptions { max_samples, ..EngineOptions::default() })
    }

    #[test]
    fn sliding_max_and_min_over_time_match_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let mut app = db.appender();
        let labels = Labels::new([("__name__", "y")]).unwrap();
        // Irregular values with NaNs, ties and both zeros; a gap of 2 minutes in the middle.
        let mut x: u64 = 7;
        let mut samples = Vec::new();
        for k in 0..400i64 {
            if (150..158).contains(&k) {
                continue;
            }
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let v = match x >> 60 {
                0 => f64::NAN,
                1 => 0.0,
                2 => -0.0,
                _ => ((x >> 40) % 50) as f64,
            };
            samples.push((k * 15_000, v));
            app.append(&labels, k * 15_000, v);
        }
        app.commit().unwrap();
        let engine = Engine::new(EngineOptions::default());
        for (f, want_max) in [("max_over_time", true), ("min_over_time", false)] {
            let got = engine.range(&db, &format!("{f}(y[2m])"), 0, 6_000_000, 20_000).unwrap().value;
            let got: Vec<(i64, u64)> = got[0].points.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            let mut want = Vec::new();
            for t in (0..=6_000_000).step_by(20_000) {
                let win: Vec<f64> =
                    samples.iter().filter(|&&(st, _)| st > t - 120_000 && st <= t).map(|&(_, v)| v).collect();
                let Some(&first) = win.first() else { continue };
                let mut best = first;
                for &v in &win[1..] {
                    if (if want_max { v > best } else { v < best }) || best.is_nan() {
                        best = v;
                    }
                }
                want.push((t, best.to_bits()));
            }
            assert_eq!(got, want, "{f}");
        }
    }

    #[test]
    fn max_samples_counts_what_a_query_holds() {
        let (_dir, db) = db();
        // A range vector of 10 × 100 samples.
        let end = 99 * 15_000;
        assert!(matches!(engine(500).instant(&db, "x[1h]", end), Err(PromqlError::TooManySamples)));
        let ok = engine(1_000).instant(&db, "x[1h]", end).unwrap();
        assert!(
            matches!(ok.value, Value::Matrix(m) if m.len() == 10 && m.iter().all(|s| s.points.len() == 100))
        );
        // A range query's output: 10 series × 100 steps.
        assert!(matches!(engine(500).range(&db, "x", 0, end, 15_000), Err(PromqlError::TooManySamples)));
        assert_eq!(engine(1_000).range(&db, "x", 0, end, 15_000).unwrap().value.len(), 10);
        // One series decoded at a time: a sum over windows holds little beyond its output.
        let r = engine(300).range(&db, "sum(rate(x[5m]))", 0, end, 15_000).unwrap();
        assert_eq!(r.value.len(), 1);
        assert_eq!(PromqlError::TooManySamples.kind(), ErrorKind::Execution);
    }
}
