//! Prometheus's own PromQL test scripts (`promql/promqltest/testdata/*.test`), run against
//! `vigil::promql` over a real `Db`.
//!
//! The scripts live in the shared folder next to the project (`../shared/conformance/promql`,
//! format summarised in its `DSL.md`). This runner implements the script language: `load`
//! (values expanded as `0+10x10`, `_`, `stale`), `clear`, `eval instant` / `eval range` with
//! expected series, scalars and strings, `expect fail` (with `msg:` / `regex:`), `expect
//! ordered`, `expect range vector`, and `expect warn|info|no_warn|no_info` lines. Like the Go
//! runner, every successful instant eval is re-run as a range query from t-1m to t+1m and the
//! point at t must match too, and (unless the expression calls a function that depends on the
//! evaluation time) the same expression with `@ t` on every selector and subquery must give the
//! same answer at -10t, 0, t/5, t and 10t (-1 s, 0, 1 s when t = 0). The Go runner prints that
//! expression and parses it again; this one changes the parsed expression.
//!
//! Every eval is a case that passes, fails or is skipped. A case is skipped, with its reason, only
//! when it needs something Vigil deliberately lacks:
//! - `native histograms`: the expected output holds a `{{…}}` histogram, or the query selects a
//!   series loaded with histogram samples (`{{…}}` values, or the native histograms with custom
//!   buckets that `load_with_nhcb` makes of classic ones);
//! - `parser cannot read`: promql-parser rejects an expression that uses syntax Prometheus has
//!   only behind feature flags (duration expressions, `anchored` / `smoothed` range selectors,
//!   `info()` data-label matchers);
//! - `start timestamps`: the query selects a series loaded with start timestamps (`@st` lines) or
//!   calls `start_timestamp()`.
//!
//! Everything else that does not pass is failed, with a one-line reason. The run prints one line
//! per file, every failure, and a closing line `promqltest: N passed, M failed, K skipped`.
//! `tests/promql.ratchet` lists the cases (`file:line` of the eval) that passed when it was last
//! written: the run fails if one of them does not pass now, and names it. `PROMQL_RATCHET=update`
//! rewrites the list. Without the shared folder the test fails under CI (`CI=true`) and is skipped
//! with a message elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use promql_parser::label::Matcher;
use promql_parser::parser::{self, AtModifier, Expr, VectorSelector};
use promql_parser::util::{walk_expr, ExprVisitor};
use vigil::promql::{Engine, EngineOptions, QueryOptions, QueryResult, Value};
use vigil::tsdb::db::{Db, DbOptions};
use vigil::tsdb::labels::Labels;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance/promql");
const RATCHET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/promql.ratchet");
const STALE: u64 = 0x7ff0_0000_0000_0002;

fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(SHARED);
    if dir.is_dir() {
        return Some(dir.to_path_buf());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is missing: CI must run the PromQL conformance suite", dir.display());
    }
    eprintln!("SKIPPED the PromQL conformance suite: {} is missing", dir.display());
    None
}

/// Prometheus's `model.ParseDuration`: `1h30m`, `5m`, `0`, units y w d h m s ms.
fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let mut total = 0i64;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!("bad duration {s:?}"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| format!("bad duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(format!("bad duration unit in {s:?}")),
        };
        total += n * ms;
    }
    Ok(total)
}

/// Reads a double- or back-quoted string at the start of `s`; returns it and the rest.
fn take_quoted(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let Some((_, q)) = chars.next() else { return Err("expected string".into()) };
    if q != '"' && q != '`' && q != '\'' {
        return Err(format!("expected string at {s:?}"));
    }
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in chars {
        if q == '`' {
            if c == '`' {
                return Ok((out, &s[i + 1..]));
            }
            out.push(c);
            continue;
        }
        if escaped {
            match c {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == q {
            return Ok((out, &s[i + c.len_utf8()..]));
        } else {
            out.push(c);
        }
    }
    Err(format!("unterminated string in {s:?}"))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses a series literal (`name{a="b"}`, `{__name__="x"}`, `{"utf8.name", a="b"}`) at the start
/// of `s`; returns its labels and the rest of the line.
fn parse_series(s: &str) -> Result<(Labels, &str), String> {
    let s = s.trim_start();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let name_len = s.chars().take_while(|&c| is_name_char(c)).map(char::len_utf8).sum::<usize>();
    if name_len > 0 {
        pairs.push(("__name__".into(), s[..name_len].to_string()));
    }
    let mut rest = &s[name_len..];
    if let Some(r) = rest.strip_prefix('{') {
        rest = r.trim_start();
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let (label, r) = if rest.starts_with('"') {
                let (n, r) = take_quoted(rest)?;
                (n, r.trim_start())
            } else {
                let l = rest.chars().take_while(|&c| is_name_char(c)).map(char::len_utf8).sum::<usize>();
                if l == 0 {
                    return Err(format!("bad label in {s:?}"));
                }
                (rest[..l].to_string(), rest[l..].trim_start())
            };
            if let Some(r2) = r.strip_prefix('=') {
                let (v, r3) = take_quoted(r2.trim_start())?;
                pairs.push((label, v));
                rest = r3.trim_start();
            } else {
                // A bare quoted string is the metric name.
                pairs.push(("__name__".into(), label));
                rest = r;
            }
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            }
        }
    } else if name_len == 0 {
        return Err(format!("bad series {s:?}"));
    }
    let labels = Labels::new(pairs).map_err(|e| e.to_string())?;
    Ok((labels, rest))
}

/// A value slot of a series description.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Value(f64),
    Omitted,
    Histogram,
}

fn parse_number(s: &str) -> Result<f64, String> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => Ok(f64::NAN),
        "stale" => Ok(f64::from_bits(STALE)),
        _ => s.parse::<f64>().map_err(|_| format!("bad number {s:?}")),
    }
}

/// Expands a series description's values: `1 _ stale 0+10x3 1x2 _x2 {{…}}`.
fn parse_values(s: &str) -> Result<Vec<Slot>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            let mut end = rest.find("}}").ok_or("unterminated histogram")? + 2;
            // `{{h0}}+{{d}}xN` / `{{h0}}-{{d}}xN`: skip the increment histogram too.
            if rest[end..].starts_with("+{{") || rest[end..].starts_with("-{{") {
                end += rest[end..].find("}}").ok_or("unterminated histogram")? + 2;
            }
            let mut after = &rest[end..];
            let mut count = 1;
            if let Some(x) = after.strip_prefix('x') {
                let digits = x.chars().take_while(char::is_ascii_digit).count();
                count = x[..digits].parse::<usize>().map_err(|_| format!("bad repeat in {rest:?}"))? + 1;
                after = &x[digits..];
            }
            out.extend(std::iter::repeat_n(Slot::Histogram, count));
            rest = after.trim_start();
            continue;
        }
        let tok_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let tok = &rest[..tok_end];
        rest = rest[tok_end..].trim_start();
        if tok == "_" {
            out.push(Slot::Omitted);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad {tok:?}"))?;
            out.extend(std::iter::repeat_n(Slot::Omitted, n));
            continue;
        }
        // a+bxN, a-bxN, axN
        if let Some(x) = tok.rfind('x') {
            if x > 0 && tok[x + 1..].chars().all(|c| c.is_ascii_digit()) && x + 1 < tok.len() {
                let times: usize = tok[x + 1..].parse().map_err(|_| format!("bad {tok:?}"))?;
                let head = &tok[..x];
                // Find the operator that is not a sign or an exponent sign.
                let bytes = head.as_bytes();
                let mut op_at = None;
                for i in (1..bytes.len()).rev() {
                    if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
                        op_at = Some(i);
                        break;
                    }
                }
                match op_at {
                    Some(i) => {
                        let a = parse_number(&head[..i])?;
                        let b = parse_number(&head[i + 1..])?;
                        let b = if bytes[i] == b'-' { -b } else { b };
                        let mut v = a;
                        for _ in 0..=times {
                            out.push(Slot::Value(v));
                            v += b;
                        }
                    }
                    None => {
                        let a = parse_number(head)?;
                        out.extend(std::iter::repeat_n(Slot::Value(a), times + 1));
                    }
                }
                continue;
            }
        }
        out.push(Slot::Value(parse_number(tok)?));
    }
    Ok(out)
}

/// Prometheus's `almost.Equal(a, b, 1e-6)` with staleness markers equal only to themselves.
fn almost_equal(a: f64, b: f64) -> bool {
    const MIN_NORMAL: f64 = 2.2250738585072014e-308;
    if a.to_bits() == STALE || b.to_bits() == STALE {
        return a.to_bits() == b.to_bits();
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < 1e-6 * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < 1e-6
}

#[derive(Default, Debug)]
struct Expect {
    fail: bool,
    fail_msg: Option<String>,
    fail_regex: Option<String>,
    ordered: bool,
    warn: Vec<Option<String>>,
    warn_regex: Vec<String>,
    no_warn: bool,
    info: Vec<Option<String>>,
    info_regex: Vec<String>,
    no_info: bool,
    range_vector: Option<(i64, i64, i64)>,
    string: Option<String>,
    scalar: Option<f64>,
    series: Vec<(Labels, Vec<Slot>)>,
    histogram: bool,
}

struct Eval {
    line: usize,
    text: String,
    instant: Option<i64>,
    range: Option<(i64, i64, i64)>,
    expr: String,
    expect: Expect,
}

fn parse_expect_line(e: &mut Expect, l: &str) -> Result<bool, String> {
    let Some(rest) = l.strip_prefix("expect ") else { return Ok(false) };
    let rest = rest.trim();
    let (kind, arg) = match rest.find(' ') {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let (msg, regex) = if let Some(m) = arg.strip_prefix("msg:") {
        (Some(m.trim().to_string()), None)
    } else if let Some(r) = arg.strip_prefix("regex:") {
        (None, Some(r.trim().to_string()))
    } else {
        (None, None)
    };
    match kind {
        "fail" => {
            e.fail = true;
            e.fail_msg = msg;
            e.fail_regex = regex;
        }
        "ordered" => e.ordered = true,
        "warn" => match regex {
            Some(r) => e.warn_regex.push(r),
            None => e.warn.push(msg),
        },
        "info" => match regex {
            Some(r) => e.info_regex.push(r),
            None => e.info.push(msg),
        },
        "no_warn" => e.no_warn = true,
        "no_info" => e.no_info = true,
        "string" => e.string = Some(take_quoted(arg)?.0),
        "range" => {
            // range vector from <s> to <e> step <st>
            let w: Vec<&str> = arg.split_whitespace().collect();
            if w.len() != 7 || w[0] != "vector" || w[1] != "from" || w[3] != "to" || w[5] != "step" {
                return Err(format!("bad expect range line {l:?}"));
            }
            e.range_vector = Some((parse_duration(w[2])?, parse_duration(w[4])?, parse_duration(w[6])?));
        }
        other => return Err(format!("unknown expectation {other:?}")),
    }
    Ok(true)
}

enum Cmd {
    Clear,
    Load { interval: i64, nhcb: bool, lines: Vec<String> },
    Eval(Box<Eval>),
}

fn parse_script(text: &str) -> Result<Vec<Cmd>, String> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| if l.trim().starts_with('#') { String::new() } else { l.trim().to_string() })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let first = l.split_whitespace().next().unwrap_or("").to_lowercase();
        let mut block = Vec::new();
        let start_line = i + 1;
        i += 1;
        while first != "clear" && i < lines.len() && !lines[i].is_empty() {
            block.push(lines[i].clone());
            i += 1;
        }
        if first == "clear" {
            cmds.push(Cmd::Clear);
        } else if first.starts_with("load") {
            let interval = parse_duration(l.split_whitespace().nth(1).ok_or("load without interval")?)?;
            cmds.push(Cmd::Load { interval, nhcb: first == "load_with_nhcb", lines: block });
        } else if first.starts_with("eval") {
            cmds.push(Cmd::Eval(Box::new(parse_eval(l, &block, start_line)?)));
        } else {
            return Err(format!("line {start_line}: unknown command {l:?}"));
        }
    }
    Ok(cmds)
}

fn parse_eval(l: &str, block: &[String], line: usize) -> Result<Eval, String> {
    let mut expect = Expect::default();
    let (head, rest) = l.split_once(char::is_whitespace).ok_or("bad eval")?;
    match head {
        "eval" => {}
        "eval_fail" => expect.fail = true,
        "eval_ordered" => expect.ordered = true,
        "eval_warn" => expect.warn.push(None),
        "eval_info" => expect.info.push(None),
        other => return Err(format!("unknown command {other}")),
    }
    let rest = rest.trim();
    let (mut instant, mut range, expr);
    if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim();
        let r = r.strip_prefix("at").ok_or("eval instant without at")?.trim();
        let (t, e) = r.split_once(char::is_whitespace).ok_or("eval instant without expression")?;
        instant = Some(parse_duration(t)?);
        range = None;
        expr = e.trim().to_string();
    } else if let Some(r) = rest.strip_prefix("range") {
        let w: Vec<&str> = r.trim().splitn(7, char::is_whitespace).collect();
        if w.len() < 7 || w[0] != "from" || w[2] != "to" || w[4] != "step" {
            return Err(format!("bad eval range {l:?}"));
        }
        range = Some((parse_duration(w[1])?, parse_duration(w[3])?, parse_duration(w[5])?));
        instant = None;
        expr = w[6].trim().to_string();
    } else {
        return Err(format!("bad eval {l:?}"));
    }
    for b in block {
        if b.contains("{{") {
            expect.histogram = true;
        }
        if parse_expect_line(&mut expect, b)? {
            continue;
        }
        if b.starts_with("expected_fail_message") || b.starts_with("expected_fail_regexp") {
            let (k, v) = b.split_once(char::is_whitespace).unwrap_or((b, ""));
            if k == "expected_fail_message" {
                expect.fail_msg = Some(v.trim().to_string());
            } else {
                expect.fail_regex = Some(v.trim().to_string());
            }
            continue;
        }
        if let Ok(v) = parse_scalar(b) {
            expect.scalar = Some(v);
            continue;
        }
        let (labels, values) = parse_series(b)?;
        expect.series.push((labels, parse_values(values)?));
    }
    if let Some((_, end, _)) = expect.range_vector {
        instant = Some(end);
    }
    if range.is_some() && instant.is_some() {
        range = None;
    }
    Ok(Eval { line, text: l.to_string(), instant, range, expr, expect })
}

fn parse_scalar(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if s.contains(char::is_whitespace) {
        return Err("not a scalar".into());
    }
    if let Some(h) = s.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).map(|v| v as f64).map_err(|e| e.to_string());
    }
    match s {
        "Inf" | "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|e| e.to_string()),
    }
}

struct Store {
    _dir: tempfile::TempDir,
    db: Db,
    /// Series loaded with native histogram samples, which Vigil cannot store.
    histograms: BTreeSet<Labels>,
    /// Series loaded with start timestamps (`@st` lines), which Vigil does not keep.
    start_timestamps: BTreeSet<Labels>,
}

fn new_store() -> Store {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions::default()).expect("open db");
    Store { _dir: dir, db, histograms: BTreeSet::new(), start_timestamps: BTreeSet::new() }
}

/// The native histogram with custom buckets that `load_with_nhcb` makes of a classic histogram
/// series (`X_bucket{le=…}`, `X_count`, `X_sum` → `X` without `le`), if `labels` is one.
fn nhcb_series(labels: &Labels) -> Option<Labels> {
    let name = labels.metric_name()?;
    let base = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s))?;
    labels.without(&["le"]).with("__name__", base).ok()
}

fn load(store: &mut Store, interval: i64, nhcb: bool, lines: &[String]) -> Result<(), String> {
    // Within one load, a later line for the same series replaces an earlier one.
    let mut series: BTreeMap<Labels, Vec<Slot>> = BTreeMap::new();
    let mut errors = Vec::new();
    for l in lines {
        let parsed = parse_series(l).and_then(|(labels, rest)| {
            if rest.starts_with("@st") {
                store.start_timestamps.insert(labels);
                return Ok(None);
            }
            Ok(Some((labels, parse_values(rest)?)))
        });
        match parsed {
            Ok(Some((labels, values))) => {
                series.insert(labels, values);
            }
            Ok(None) => {}
            // A line this runner cannot read is left out; evals over it fail on their own.
            Err(e) => errors.push(e),
        }
    }
    for (labels, slots) in &series {
        if slots.contains(&Slot::Histogram) {
            store.histograms.insert(labels.clone());
        }
        if let Some(h) = nhcb.then(|| nhcb_series(labels)).flatten() {
            store.histograms.insert(h);
        }
    }
    let mut app = store.db.appender();
    for (labels, slots) in &series {
        for (i, slot) in slots.iter().enumerate() {
            if let Slot::Value(v) = slot {
                app.append(labels, i as i64 * interval, *v);
            }
        }
    }
    app.commit().map_err(|e| e.to_string())?;
    match errors.first() {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    }
}

fn fmt_val(v: f64) -> String {
    if v.to_bits() == STALE {
        "stale".into()
    } else {
        format!("{v}")
    }
}

fn check_annotations(e: &Expect, res_w: &[String], res_i: &[String]) -> Result<(), String> {
    fn check(
        kind: &str,
        want: &[Option<String>],
        regexes: &[String],
        none: bool,
        got: &[String],
    ) -> Result<(), String> {
        if none && !got.is_empty() {
            return Err(format!("expected no {kind} annotations, got {got:?}"));
        }
        if want.is_empty() && regexes.is_empty() {
            return Ok(());
        }
        if got.is_empty() {
            return Err(format!("expected {kind} annotations, got none"));
        }
        let res: Vec<regex::Regex> = regexes.iter().filter_map(|r| regex::Regex::new(r).ok()).collect();
        let msgs: Vec<&String> = want.iter().flatten().collect();
        let only_bare = msgs.is_empty() && res.is_empty();
        if !only_bare {
            for g in got {
                if !msgs.contains(&g) && !res.iter().any(|r| r.is_match(g)) {
                    return Err(format!("unexpected {kind} annotation {g:?}"));
                }
            }
            for m in &msgs {
                if !got.iter().any(|g| g == *m) {
                    return Err(format!("missing {kind} annotation {m:?}, got {got:?}"));
                }
            }
            for r in &res {
                if !got.iter().any(|g| r.is_match(g)) {
                    return Err(format!("no {kind} annotation matches {r}, got {got:?}"));
                }
            }
        }
        Ok(())
    }
    check("warn", &e.warn, &e.warn_regex, e.no_warn, res_w)?;
    check("info", &e.info, &e.info_regex, e.no_info, res_i)
}

/// Compares an instant vector result with the expected series (one value each).
fn compare_vector(e: &Expect, got: &[(Labels, f64)], ordered: bool) -> Result<(), String> {
    if e.scalar.is_some() {
        return Err(format!("expected scalar {:?}, got vector {got:?}", e.scalar));
    }
    let want: Vec<(Labels, f64)> = e
        .series
        .iter()
        .map(|(l, v)| {
            let x = v.iter().find_map(|s| if let Slot::Value(x) = s { Some(*x) } else { None });
            (l.clone(), x.unwrap_or(f64::NAN))
        })
        .collect();
    if want.len() != got.len() {
        return Err(format!("expected {} samples, got {}: {}", want.len(), got.len(), show(got)));
    }
    for (i, (l, v)) in got.iter().enumerate() {
        let Some(pos) = want.iter().position(|(wl, _)| wl == l) else {
            return Err(format!("unexpected series {l} {}", fmt_val(*v)));
        };
        if ordered && pos != i {
            return Err(format!("series {l} at position {i}, expected at {pos}"));
        }
        if !almost_equal(want[pos].1, *v) {
            return Err(format!("series {l}: expected {}, got {}", fmt_val(want[pos].1), fmt_val(*v)));
        }
    }
    Ok(())
}

fn show(got: &[(Labels, f64)]) -> String {
    got.iter().map(|(l, v)| format!("{l} {}", fmt_val(*v))).collect::<Vec<_>>().join(", ")
}

/// Compares a matrix with expected series whose value i is at `start + i*step`.
fn compare_matrix(
    e: &Expect,
    got: &[(Labels, Vec<(i64, f64)>)],
    start: i64,
    step: i64,
) -> Result<(), String> {
    if e.scalar.is_some() {
        return Err("expected scalar, got matrix".into());
    }
    for w in got.windows(2) {
        if w[0].0 >= w[1].0 {
            return Err(format!("matrix not sorted by labels: {} before {}", w[0].0, w[1].0));
        }
    }
    if got.len() != e.series.len() {
        let names: Vec<String> = got.iter().map(|(l, _)| l.to_string()).collect();
        return Err(format!("expected {} series, got {}: {names:?}", e.series.len(), got.len()));
    }
    for (l, points) in got {
        let Some((_, slots)) = e.series.iter().find(|(wl, _)| wl == l) else {
            return Err(format!("unexpected series {l}"));
        };
        let want: Vec<(i64, f64)> = slots
            .iter()
            .enumerate()
            .filter_map(
                |(i, s)| if let Slot::Value(v) = s { Some((start + i as i64 * step, *v)) } else { None },
            )
            .collect();
        if want.len() != points.len() {
            return Err(format!(
                "series {l}: expected {} points {want:?}, got {} {points:?}",
                want.len(),
                points.len()
            ));
        }
        for (w, g) in want.iter().zip(points) {
            if w.0 != g.0 || !almost_equal(w.1, g.1) {
                return Err(format!("series {l}: expected {want:?}, got {points:?}"));
            }
        }
    }
    Ok(())
}

fn check_error(e: &Expect, err: &str) -> Result<(), String> {
    if !e.fail {
        return Err(format!("unexpected error: {err}"));
    }
    if let Some(m) = &e.fail_msg {
        if m != err {
            return Err(format!("expected error {m:?}, got {err:?}"));
        }
    }
    if let Some(r) = &e.fail_regex {
        let re = regex::Regex::new(r).map_err(|x| x.to_string())?;
        if !re.is_match(err) {
            return Err(format!("error {err:?} does not match {r:?}"));
        }
    }
    Ok(())
}

const SKIP_HISTOGRAMS: &str = "native histograms";
const SKIP_PARSER: &str = "parser cannot read";
const SKIP_START_TIMESTAMPS: &str = "start timestamps";

/// The vector selectors of an expression (also those inside matrix selectors and subqueries) and
/// the functions it calls.
#[derive(Default)]
struct Parts {
    selectors: Vec<VectorSelector>,
    calls: Vec<String>,
}

impl ExprVisitor for Parts {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        match expr {
            Expr::VectorSelector(vs) => self.selectors.push(vs.clone()),
            Expr::MatrixSelector(ms) => self.selectors.push(ms.vs.clone()),
            Expr::Call(c) => self.calls.push(c.func.name.to_string()),
            _ => {}
        }
        Ok(true)
    }
}

/// Whether the selector selects a series with these labels.
fn selects(vs: &VectorSelector, labels: &Labels) -> bool {
    if vs.name.as_deref().is_some_and(|n| labels.metric_name() != Some(n)) {
        return false;
    }
    let ok = |m: &Matcher| m.is_match(labels.get(&m.name).unwrap_or(""));
    let m = &vs.matchers;
    m.matchers.iter().all(ok) && (m.or_matchers.is_empty() || m.or_matchers.iter().any(|g| g.iter().all(ok)))
}

/// The feature-flagged syntax of Prometheus that an expression promql-parser rejects uses, if any.
fn experimental_syntax(expr: &str) -> Option<&'static str> {
    let has = |re: &str| regex::Regex::new(re).is_ok_and(|r| r.is_match(expr));
    if has(r"\b(anchored|smoothed)\b") {
        Some("anchored/smoothed range selectors")
    } else if has(
        r"(?i)\b(step|range)\(\)|\b(min_of|max_of)\(|\[[^\]]*[-+*/%^()][^\]]*\]|offset\s*[-+]?\s*\(",
    ) {
        Some("duration expressions")
    } else if has(r"\binfo\(") {
        Some("info() data-label matchers")
    } else if has(r"[<>]/") {
        Some("histogram trim operators")
    } else {
        None
    }
}

/// Why a case is skipped (see the module comment), or `None` when it must be run.
fn skip_reason(ev: &Eval, store: &Store) -> Option<(&'static str, String)> {
    if ev.expect.histogram {
        return Some((SKIP_HISTOGRAMS, "expects a native histogram".into()));
    }
    let parts = match parser::parse(&ev.expr) {
        Ok(expr) => {
            let mut parts = Parts::default();
            let _ = walk_expr(&mut parts, &expr);
            parts
        }
        Err(msg) => {
            let feature = experimental_syntax(&ev.expr)?;
            // Without an AST, metric names are the identifiers of the text.
            let idents = regex::Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*").ok()?;
            if idents
                .find_iter(&ev.expr)
                .any(|m| store.histograms.iter().any(|h| h.metric_name() == Some(m.as_str())))
            {
                return Some((SKIP_HISTOGRAMS, format!("selects native histograms; {feature}")));
            }
            return Some((SKIP_PARSER, format!("{feature}: {}", msg.lines().next().unwrap_or(""))));
        }
    };
    for vs in &parts.selectors {
        if let Some(h) = store.histograms.iter().find(|h| selects(vs, h)) {
            return Some((SKIP_HISTOGRAMS, format!("selects native histogram series {h}")));
        }
    }
    if parts.calls.iter().any(|c| c == "start_timestamp") {
        return Some((SKIP_START_TIMESTAMPS, "calls start_timestamp()".into()));
    }
    for vs in &parts.selectors {
        if let Some(l) = store.start_timestamps.iter().find(|l| selects(vs, l)) {
            return Some((SKIP_START_TIMESTAMPS, format!("selects {l}, which has start timestamps")));
        }
    }
    None
}

fn run_eval(engine: &Engine, db: &Db, ev: &Eval) -> Result<(), String> {
    let e = &ev.expect;
    if let Some((start, end, step)) = ev.range {
        return match engine.range(db, &ev.expr, start, end, step) {
            Err(err) => check_error(e, &err.to_string()),
            Ok(_) if e.fail => Err("expected an error, query succeeded".into()),
            Ok(QueryResult { value, warnings, infos }) => {
                check_annotations(e, &warnings, &infos)?;
                let got: Vec<(Labels, Vec<(i64, f64)>)> =
                    value.into_iter().map(|s| (s.labels, s.points)).collect();
                compare_matrix(e, &got, start, step)
            }
        };
    }
    let t = ev.instant.ok_or("eval without time")?;
    let expr = match vigil::promql::parse(&ev.expr) {
        Err(err) => return check_error(e, &err.to_string()),
        Ok(expr) => expr,
    };
    check_instant(engine, db, ev, &expr, t)?;
    // The Go runner's second check: unless the expression calls a function whose result depends
    // on the evaluation time itself, the same expression with `@ t` on every selector and
    // subquery gives the same answer at other evaluation times.
    let mut parts = Parts::default();
    let _ = walk_expr(&mut parts, &expr);
    if parts.calls.iter().any(|c| AT_UNSAFE_FUNCTIONS.contains(&c.as_str())) {
        return Ok(());
    }
    let mut pinned = expr.clone();
    set_at(&mut pinned, at_modifier(t));
    let times = if t == 0 { vec![-1000, 0, 1000] } else { vec![-10 * t, 0, t / 5, t, 10 * t] };
    for t2 in times {
        check_instant(engine, db, ev, &pinned, t2).map_err(|err| {
            format!("with @ {}s on every selector, evaluated at {t2}ms: {err}", t as f64 / 1000.0)
        })?;
    }
    Ok(())
}

/// Functions whose result depends on the evaluation time even when their arguments do not
/// (Prometheus's `AtModifierUnsafeFunctions`, plus the duration functions): the Go runner does
/// not re-run expressions calling them with `@` attached.
const AT_UNSAFE_FUNCTIONS: [&str; 15] = [
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "end",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "range",
    "start",
    "step",
    "time",
    "timestamp",
];

fn at_modifier(t_ms: i64) -> AtModifier {
    let d = Duration::from_millis(t_ms.unsigned_abs());
    AtModifier::At(if t_ms >= 0 { UNIX_EPOCH + d } else { UNIX_EPOCH - d })
}

/// Attaches `at` to every vector selector, matrix selector and subquery without one, leaving
/// everything inside a subquery alone (as the Go runner does).
fn set_at(expr: &mut Expr, at: AtModifier) {
    match expr {
        Expr::VectorSelector(vs) => {
            vs.at.get_or_insert(at);
        }
        Expr::MatrixSelector(ms) => {
            ms.vs.at.get_or_insert(at);
        }
        Expr::Subquery(sq) => {
            sq.at.get_or_insert(at);
        }
        Expr::Aggregate(a) => {
            set_at(&mut a.expr, at.clone());
            if let Some(p) = a.param.as_mut() {
                set_at(p, at);
            }
        }
        Expr::Unary(u) => set_at(&mut u.expr, at),
        Expr::Binary(b) => {
            set_at(&mut b.lhs, at.clone());
            set_at(&mut b.rhs, at);
        }
        Expr::Paren(p) => set_at(&mut p.expr, at),
        Expr::Call(c) => {
            for a in c.args.args.iter_mut() {
                set_at(a, at.clone());
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Runs an instant query of `expr` at `t` and checks it against the eval's expectations, then (as
/// the Go runner does) runs it as a range query from t-1m to t+1m and checks the point at t.
fn check_instant(engine: &Engine, db: &Db, ev: &Eval, expr: &Expr, t: i64) -> Result<(), String> {
    let e = &ev.expect;
    let res = match engine.instant_expr(db, expr, t, &QueryOptions::default()) {
        Err(err) => return check_error(e, &err.to_string()),
        Ok(_) if e.fail => return Err("expected an error, query succeeded".into()),
        Ok(r) => r,
    };
    check_annotations(e, &res.warnings, &res.infos)?;
    let scalar_result = matches!(res.value, Value::Scalar(..));
    match &res.value {
        Value::Scalar(_, v) => {
            let Some(want) = e.scalar else {
                return Err(format!("expected {} series, got scalar {v}", e.series.len()));
            };
            if !almost_equal(want, *v) {
                return Err(format!("expected scalar {want}, got {v}"));
            }
        }
        Value::String(_, s) => {
            if e.string.as_deref() != Some(s.as_str()) {
                return Err(format!("expected {:?}, got string {s:?}", e.string));
            }
            return Ok(());
        }
        Value::Vector(v) => {
            if e.range_vector.is_some() {
                return Err("expected a range vector, got an instant vector".into());
            }
            let got: Vec<(Labels, f64)> = v.iter().map(|s| (s.labels.clone(), s.v)).collect();
            compare_vector(e, &got, e.ordered)?;
        }
        Value::Matrix(m) => {
            let Some((start, _, step)) = e.range_vector else {
                return Err("got a range vector without `expect range vector`".into());
            };
            let got: Vec<(Labels, Vec<(i64, f64)>)> =
                m.iter().map(|s| (s.labels.clone(), s.points.clone())).collect();
            return compare_matrix(e, &got, start, step);
        }
    }
    if e.string.is_some() || e.range_vector.is_some() {
        return Ok(());
    }
    let re = regex::Regex::new(r"(start|end|range|step)\(\)").map_err(|x| x.to_string())?;
    if re.is_match(&ev.expr) {
        return Ok(());
    }
    // The Go runner's extra check: the same expression as a range query around t.
    let m = engine
        .range_expr(db, expr, t - 60_000, t + 60_000, 60_000, &QueryOptions::default())
        .map_err(|err| format!("range query around t failed: {err}"))?
        .value;
    if e.ordered {
        return Ok(());
    }
    let at_t: Vec<(Labels, f64)> = m
        .iter()
        .filter_map(|s| s.points.iter().find(|p| p.0 == t).map(|p| (s.labels.clone(), p.1)))
        .collect();
    if scalar_result {
        let v = at_t.first().map(|x| x.1).unwrap_or(f64::NAN);
        let want = e.scalar.unwrap_or(f64::NAN);
        if !almost_equal(want, v) {
            return Err(format!("range query around t: expected scalar {want}, got {v}"));
        }
        return Ok(());
    }
    compare_vector(e, &at_t, false).map_err(|x| format!("range query around t: {x}"))
}

#[derive(Default)]
struct FileResult {
    passed: Vec<String>,
    failed: Vec<String>,
    skipped: BTreeMap<&'static str, usize>,
}

/// Squeezes a message onto one line of at most 300 characters.
fn one_line(msg: &str) -> String {
    let line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

fn run_file(path: &Path, name: &str) -> FileResult {
    let verbose = std::env::var("PROMQL_VERBOSE").is_ok();
    let mut r = FileResult::default();
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            r.failed.push(format!("{name}: cannot read: {e}"));
            return r;
        }
    };
    let cmds = match parse_script(&text) {
        Ok(c) => c,
        Err(e) => {
            r.failed.push(format!("{name}: script error: {e}"));
            return r;
        }
    };
    // promqltest.NewTestEngine's settings: 5 m lookback, 1 m default subquery step, 10,000 samples.
    let opts = EngineOptions { max_samples: 10_000, ..EngineOptions::default() };
    let engine = Engine::new(opts);
    let mut store = new_store();
    let mut load_error: Option<String> = None;
    for cmd in cmds {
        match cmd {
            Cmd::Clear => {
                store = new_store();
                load_error = None;
            }
            Cmd::Load { interval, nhcb, lines } => {
                if let Err(e) = load(&mut store, interval, nhcb, &lines) {
                    load_error = Some(e);
                }
            }
            Cmd::Eval(ev) => {
                let id = format!("{name}:{}", ev.line);
                if let Some((reason, detail)) = skip_reason(&ev, &store) {
                    *r.skipped.entry(reason).or_default() += 1;
                    if verbose {
                        println!("    SKIP {id}: {}: {reason} ({detail})", ev.text);
                    }
                    continue;
                }
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_eval(&engine, &store.db, &ev)
                }))
                .unwrap_or_else(|_| Err("panicked".into()));
                match outcome {
                    Ok(()) => r.passed.push(id),
                    Err(msg) => {
                        let msg = match &load_error {
                            Some(l) => format!("{msg} (a load line could not be read: {l})"),
                            None => msg,
                        };
                        r.failed.push(format!("{id}: {}: {}", ev.text, one_line(&msg)));
                    }
                }
            }
        }
    }
    r
}

fn format_skipped(skipped: &BTreeMap<&'static str, usize>) -> String {
    let mut by_count: Vec<(&&str, &usize)> = skipped.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    by_count.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// The case ids listed in the ratchet file (the first word of each non-comment line).
fn read_ratchet() -> Vec<String> {
    let text = fs::read_to_string(RATCHET).expect("read ratchet");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn write_ratchet(passed: &[String]) {
    let mut out = String::from(
        "# Cases of Prometheus's PromQL test scripts (file:line of the eval) that pass. The conformance\n\
         # test fails if one of them does not pass; `PROMQL_RATCHET=update` rewrites this list.\n",
    );
    for id in passed {
        out.push_str(id);
        out.push('\n');
    }
    fs::write(RATCHET, out).expect("write ratchet");
}

#[test]
fn promql_conformance() {
    let Some(dir) = std::env::var("PROMQL_DIR").ok().map(PathBuf::from).or_else(shared_dir) else { return };
    let only = std::env::var("PROMQL_FILE").ok();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("read conformance dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .filter(|p| only.as_ref().is_none_or(|o| p.file_stem().is_some_and(|s| s.to_string_lossy() == *o)))
        .collect();
    files.sort();
    let mut passed: Vec<String> = Vec::new();
    let mut failed = 0;
    let mut skipped: BTreeMap<&'static str, usize> = BTreeMap::new();
    for f in &files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let r = run_file(f, &name);
        let n_skipped: usize = r.skipped.values().sum();
        let why = if n_skipped > 0 { format!(" ({})", format_skipped(&r.skipped)) } else { String::new() };
        println!("  {name}: {} passed, {} failed, {n_skipped} skipped{why}", r.passed.len(), r.failed.len());
        for msg in &r.failed {
            println!("    FAIL {msg}");
        }
        passed.extend(r.passed);
        failed += r.failed.len();
        for (k, n) in r.skipped {
            *skipped.entry(k).or_default() += n;
        }
    }
    let n_skipped: usize = skipped.values().sum();
    println!("skipped: {}", format_skipped(&skipped));
    println!("promqltest: {} passed, {failed} failed, {n_skipped} skipped", passed.len());
    if only.is_some() {
        return;
    }
    assert!(files.len() >= 20, "only {} test files found in {}", files.len(), dir.display());
    if std::env::var("PROMQL_RATCHET").is_ok_and(|v| v == "update") {
        write_ratchet(&passed);
        println!("wrote {} passing cases to {RATCHET}", passed.len());
        return;
    }
    let ratchet = read_ratchet();
    let now: BTreeSet<&String> = passed.iter().collect();
    let before: BTreeSet<&String> = ratchet.iter().collect();
    let lost: Vec<&String> = ratchet.iter().filter(|id| !now.contains(id)).collect();
    let gained = passed.iter().filter(|id| !before.contains(id)).count();
    if gained > 0 {
        println!(
            "{gained} cases pass that {RATCHET} does not list: rerun with PROMQL_RATCHET=update to record them"
        );
    }
    assert!(
        lost.is_empty(),
        "{} cases that passed before ({RATCHET}) do not pass now: {}",
        lost.len(),
        lost.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    );
}
