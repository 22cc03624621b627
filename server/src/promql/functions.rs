//! PromQL's function library over float samples.
//!
//! [`call`] dispatches by name. Range-vector functions (`rate`, `*_over_time`, `deriv`, …) get
//! their argument as [`Windows`] and compute one value per step from the samples in that step's
//! window; instant-vector functions map or filter the argument's values step by step; a few
//! (`time`, `pi`, `scalar`, `start`, …) produce scalars. The numeric kernels follow Prometheus's
//! `functions.go` — extrapolation in `rate`, compensated sums, its quantile interpolation and
//! classic-bucket `histogram_quantile` — because tests compare results to 1e-6. Functions this
//! engine does not implement fail with [`PromqlError::Unsupported`] rather than return something.

use std::collections::HashMap;
use std::collections::VecDeque;

use promql_parser::parser::{Call, Expr};
use regex::Regex;

use super::eval::{unparen, EvalResult, Evaluator, StepSeries, Steps, Val};
use super::PromqlError;
use crate::tsdb::labels::{Labels, METRIC_NAME};

pub fn call(ev: &mut Evaluator, c: &Call, s: &Steps) -> EvalResult<Val> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
    let n = s.len();
    let arg = |i: usize| -> EvalResult<&Expr> {
        args.get(i)
            .copied()
            .ok_or_else(|| PromqlError::BadData(format!("missing argument {} of {name}", i + 1)))
    };
    match name {
        "time" => Ok(Val::Scalar((0..n).map(|i| s.t(i) as f64 / 1000.0).collect())),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
        "start" => Ok(Val::Scalar(vec![ev.qstart as f64 / 1000.0; n])),
        "end" => Ok(Val::Scalar(vec![ev.qend as f64 / 1000.0; n])),
        "range" => Ok(Val::Scalar(vec![(ev.qend - ev.qstart) as f64 / 1000.0; n])),
        "step" => Ok(Val::Scalar(vec![ev.qstep as f64 / 1000.0; n])),
        "min_of" | "max_of" => {
            let a = ev.eval_scalar(arg(0)?, s)?;
            let b = ev.eval_scalar(arg(1)?, s)?;
            let f = if name == "min_of" { go_min } else { go_max };
            Ok(Val::Scalar(a.into_iter().zip(b).map(|(x, y)| f(x, y)).collect()))
        }
        "vector" => {
            let v = ev.eval_scalar(arg(0)?, s)?;
            Ok(Val::Vector(vec![StepSeries {
                labels: Labels::empty(),
                drop_name: false,
                vals: v.into_iter().map(Some).collect(),
            }]))
        }
        "scalar" => {
            let v = ev.eval_vector(arg(0)?, s)?;
            Ok(Val::Scalar(
                (0..n)
                    .map(|i| {
                        let mut present = v.iter().filter_map(|ser| ser.vals[i]);
                        match (present.next(), present.next()) {
                            (Some(x), None) => x,
                            _ => f64::NAN,
                        }
                    })
                    .collect(),
            ))
        }
        "abs" => map_values(ev, arg(0)?, s, f64::abs),
        "ceil" => map_values(ev, arg(0)?, s, f64::ceil),
        "floor" => map_values(ev, arg(0)?, s, f64::floor),
        "exp" => map_values(ev, arg(0)?, s, f64::exp),
        "sqrt" => map_values(ev, arg(0)?, s, f64::sqrt),
        "ln" => map_values(ev, arg(0)?, s, f64::ln),
        "log2" => map_values(ev, arg(0)?, s, f64::log2),
        "log10" => map_values(ev, arg(0)?, s, f64::log10),
        "sin" => map_values(ev, arg(0)?, s, f64::sin),
        "cos" => map_values(ev, arg(0)?, s, f64::cos),
        "tan" => map_values(ev, arg(0)?, s, f64::tan),
        "asin" => map_values(ev, arg(0)?, s, f64::asin),
        "acos" => map_values(ev, arg(0)?, s, f64::acos),
        "atan" => map_values(ev, arg(0)?, s, f64::atan),
        "sinh" => map_values(ev, arg(0)?, s, f64::sinh),
        "cosh" => map_values(ev, arg(0)?, s, f64::cosh),
        "tanh" => map_values(ev, arg(0)?, s, f64::tanh),
        "asinh" => map_values(ev, arg(0)?, s, f64::asinh),
        "acosh" => map_values(ev, arg(0)?, s, f64::acosh),
        "atanh" => map_values(ev, arg(0)?, s, f64::atanh),
        "deg" => map_values(ev, arg(0)?, s, |v| v * 180.0 / std::f64::consts::PI),
        "rad" => map_values(ev, arg(0)?, s, |v| v * std::f64::consts::PI / 180.0),
        "sgn" => map_values(ev, arg(0)?, s, |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        "round" => {
            let to = match args.get(1) {
                Some(e) => ev.eval_scalar(e, s)?,
                None => vec![1.0; n],
            };
            map_values_at(ev, arg(0)?, s, |i, v| {
                let inv = 1.0 / to[i];
                Some((v * inv + 0.5).floor() / inv)
            })
        }
        "clamp" => {
            let lo = ev.eval_scalar(arg(1)?, s)?;
            let hi = ev.eval_scalar(arg(2)?, s)?;
            map_values_at(ev, arg(0)?, s, |i, v| {
                if hi[i] < lo[i] {
                    None
                } else {
                    Some(go_max(lo[i], go_min(hi[i], v)))
                }
            })
        }
        "clamp_min" => {
            let lo = ev.eval_scalar(arg(1)?, s)?;
            map_values_at(ev, arg(0)?, s, |i, v| Some(go_max(lo[i], v)))
        }
        "clamp_max" => {
            let hi = ev.eval_scalar(arg(1)?, s)?;
            map_values_at(ev, arg(0)?, s, |i, v| Some(go_min(hi[i], v)))
        }
        "timestamp" => {
            let a = arg(0)?;
            let mut v = match unparen(a) {
                Expr::VectorSelector(vs) => ev.vector_selector(vs, s, true)?,
                _ => {
                    let mut v = ev.eval_vector(a, s)?;
                    for series in &mut v {
                        for (i, x) in series.vals.iter_mut().enumerate() {
                            if x.is_some() {
                                *x = Some(s.t(i) as f64 / 1000.0);
                            }
                        }
                    }
                    v
                }
            };
            v.iter_mut().for_each(|x| x.drop_name = true);
            Ok(Val::Vector(v))
        }
        "minute" | "hour" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "month"
        | "year" => {
            let f = date_part(name);
            match args.first() {
                Some(e) => map_values(ev, e, s, f),
                None => Ok(Val::Vector(vec![StepSeries {
                    labels: Labels::empty(),
                    drop_name: false,
                    vals: (0..n).map(|i| Some(f(s.t(i) as f64 / 1000.0))).collect(),
                }])),
            }
        }
        "sort" | "sort_desc" => {
            if n > 1 {
                ev.warn("sort is ineffective for range queries since results are always ordered by labels");
            }
            let mut v = ev.eval_vector(arg(0)?, s)?;
            if n == 1 {
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    let (x, y) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                        _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    }
                });
            }
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            if n > 1 {
                ev.warn("sort is ineffective for range queries since results are always ordered by labels");
            }
            let mut v = ev.eval_vector(arg(0)?, s)?;
            let mut names = Vec::new();
            for a in &args[1..] {
                names.push(string_arg(a)?);
            }
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                let mut ord = std::cmp::Ordering::Equal;
                for l in &names {
                    let (x, y) = (a.labels.get(l).unwrap_or(""), b.labels.get(l).unwrap_or(""));
                    if x != y {
                        ord = natural_cmp(x, y);
                        break;
                    }
                }
                if ord == std::cmp::Ordering::Equal {
                    ord = a.labels.cmp(&b.labels);
                }
                if desc {
                    ord.reverse()
                } else {
                    ord
                }
            });
            Ok(Val::Vector(v))
        }
        "label_replace" => {
            let v = ev.eval_vector(arg(0)?, s)?;
            let dst = string_arg(arg(1)?)?;
            let repl = string_arg(arg(2)?)?;
            let src = string_arg(arg(3)?)?;
            let re_src = string_arg(arg(4)?)?;
            let re = Regex::new(&format!("^(?s:{re_src})$")).map_err(|e| {
                PromqlError::Execution(format!("invalid regular expression in label_replace(): {e}"))
            })?;
            if dst.is_empty() {
                return Err(PromqlError::Execution(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            let mut out = Vec::with_capacity(v.len());
            for mut series in v {
                let value = series.labels.get(&src).unwrap_or("").to_string();
                if let Some(caps) = re.captures(&value) {
                    let mut res = String::new();
                    caps.expand(&repl, &mut res);
                    series.labels =
                        series.labels.with(&dst, &res).map_err(|e| PromqlError::Execution(e.to_string()))?;
                    if dst == METRIC_NAME {
                        series.drop_name = false;
                    }
                }
                out.push(series);
            }
            Ok(Val::Vector(merge_same_labels(out)?))
        }
        "label_join" => {
            let v = ev.eval_vector(arg(0)?, s)?;
            let dst = string_arg(arg(1)?)?;
            let sep = string_arg(arg(2)?)?;
            let mut srcs = Vec::new();
            for a in &args[3..] {
                srcs.push(string_arg(a)?);
            }
            if dst.is_empty() {
                return Err(PromqlError::Execution(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            let mut out = Vec::with_capacity(v.len());
            for mut series in v {
                let joined: Vec<&str> = srcs.iter().map(|l| series.labels.get(l).unwrap_or("")).collect();
                let joined = joined.join(&sep);
                series.labels =
                    series.labels.with(&dst, &joined).map_err(|e| PromqlError::Execution(e.to_string()))?;
                if dst == METRIC_NAME {
                    series.drop_name = false;
                }
                out.push(series);
            }
            Ok(Val::Vector(merge_same_labels(out)?))
        }
        "absent" => {
            let v = ev.eval_vector(arg(0)?, s)?;
            let labels = absent_labels(arg(0)?);
            let vals: Vec<Option<f64>> = (0..n)
                .map(|i| if v.iter().any(|x| x.vals[i].is_some()) { None } else { Some(1.0) })
                .collect();
            Ok(absent_result(labels, vals))
        }
        "absent_over_time" => {
            let w = ev.windows(arg(0)?, s)?;
            let mut present = vec![false; n];
            w.each_series(ev, |_, _, points| {
                w.for_each_window(points, |i, _| {
                    present[i] = true;
                    Ok(())
                })
            })?;
            let labels = absent_labels(arg(0)?);
            Ok(absent_result(labels, present.into_iter().map(|p| if p { None } else { Some(1.0) }).collect()))
        }
        "info" => super::info::info(ev, &args, s),
        "histogram_fraction" => histogram_fraction(ev, &args, s),
        "histogram_quantiles" => histogram_quantiles(ev, &args, s),
        "histogram_quantile" => histogram_quantile(ev, arg(0)?, arg(1)?, s),
        // Native-histogram functions ignore float samples, so over float data they return nothing.
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar" => {
            ev.eval_vector(arg(0)?, s)?;
            Ok(Val::Vector(Vec::new()))
        }
        "rate"
        | "increase"
        | "delta"
        | "irate"
        | "idelta"
        | "deriv"
        | "resets"
        | "changes"
        | "avg_over_time"
        | "min_over_time"
        | "max_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "last_over_time"
        | "first_over_time"
        | "present_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "mad_over_time"
        | "ts_of_first_over_time"
        | "ts_of_last_over_time"
        | "ts_of_max_over_time"
        | "ts_of_min_over_time" => range_function(ev, name, arg(0)?, s, &[]),
        "quantile_over_time" => {
            let q = ev.eval_scalar(arg(0)?, s)?;
            range_function(ev, name, arg(1)?, s, &[q])
        }
        "predict_linear" => {
            let d = ev.eval_scalar(arg(1)?, s)?;
            range_function(ev, name, arg(0)?, s, &[d])
        }
        "double_exponential_smoothing" | "holt_winters" => {
            let sf = ev.eval_scalar(arg(1)?, s)?;
            let tf = ev.eval_scalar(arg(2)?, s)?;
            range_function(ev, "double_exponential_smoothing", arg(0)?, s, &[sf, tf])
        }
        other => Err(PromqlError::Unsupported(format!("function {other}()"))),
    }
}

fn string_arg(e: &Expr) -> EvalResult<String> {
    match unparen(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(PromqlError::BadData("expected a string literal argument".into())),
    }
}

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn map_values(ev: &mut Evaluator, e: &Expr, s: &Steps, f: impl Fn(f64) -> f64) -> EvalResult<Val> {
    map_values_at(ev, e, s, |_, v| Some(f(v)))
}

/// Applies `f(step, value)` to every value, dropping the metric name; `None` removes the sample.
fn map_values_at(
    ev: &mut Evaluator,
    e: &Expr,
    s: &Steps,
    f: impl Fn(usize, f64) -> Option<f64>,
) -> EvalResult<Val> {
    let mut v = ev.eval_vector(e, s)?;
    for series in &mut v {
        series.drop_name = true;
        for (i, x) in series.vals.iter_mut().enumerate() {
            if let Some(val) = *x {
                *x = f(i, val);
            }
        }
    }
    v.retain(|x| x.vals.iter().any(Option::is_some));
    Ok(Val::Vector(v))
}

/// Series that end up with equal labels (after `label_replace`, say) are one series; two values
/// at the same step are Prometheus's duplicate-labelset error.
fn merge_same_labels(v: Vec<StepSeries>) -> EvalResult<Vec<StepSeries>> {
    let mut index: HashMap<(Labels, bool), usize> = HashMap::new();
    let mut out: Vec<StepSeries> = Vec::with_capacity(v.len());
    for series in v {
        match index.get(&(series.labels.clone(), series.drop_name)) {
            Some(&i) => {
                for (slot, x) in out[i].vals.iter_mut().zip(series.vals) {
                    if x.is_some() {
                        if slot.is_some() {
                            return Err(super::eval::same_labelset());
                        }
                        *slot = x;
                    }
                }
            }
            None => {
                index.insert((series.labels.clone(), series.drop_name), out.len());
                out.push(series);
            }
        }
    }
    Ok(out)
}

/// The labels `absent` reports: the equality matchers of a plain selector argument, except the
/// metric name; a label matched more than once is left out.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut b = Labels::empty().builder();
    let mut seen: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && !seen.contains(&m.name.as_str()) {
            let _ = b.set(&m.name, &m.value);
            seen.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

fn absent_result(labels: Labels, vals: Vec<Option<f64>>) -> Val {
    if vals.iter().all(Option::is_none) {
        return Val::Vector(Vec::new());
    }
    Val::Vector(vec![StepSeries { labels, drop_name: false, vals }])
}

/// Kahan-Neumaier summation step: returns the new sum and compensation.
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Prometheus's `quantile`: linear interpolation between closest ranks, NaN sorting first.
pub fn quantile(q: f64, vals: &mut [f64]) -> f64 {
    if vals.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    vals.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = vals.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    vals[lower as usize] * (1.0 - weight) + vals[upper as usize] * weight
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Evaluates a function over a range-vector argument, one value per step from the window.
fn range_function(
    ev: &mut Evaluator,
    name: &str,
    arg: &Expr,
    s: &Steps,
    params: &[Vec<f64>],
) -> EvalResult<Val> {
    let w = ev.windows(arg, s)?;
    let keeps_name = matches!(name, "last_over_time" | "first_over_time");
    let counter_fn = matches!(name, "rate" | "increase");
    if name == "double_exponential_smoothing" {
        for (&sf, &tf) in params[0].iter().zip(&params[1]) {
            if sf <= 0.0 || sf >= 1.0 {
                return Err(PromqlError::Execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                )));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return Err(PromqlError::Execution(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                )));
            }
        }
    }
    if name == "quantile_over_time" {
        if let Some(q) = params[0].iter().find(|q| !(0.0..=1.0).contains(*q)) {
            ev.warn(format!("quantile value should be between 0 and 1, got {}", format_float(*q)));
        }
    }
    // Per series: its result, and whether it is a "counter" whose name says otherwise (an info
    // annotation, added afterwards since worker threads cannot touch the evaluator).
    let sliding_extreme = matches!(name, "max_over_time" | "min_over_time");
    let results = w.map_series(ev, |series, points, scratch: &mut (Vec<usize>, VecDeque<usize>)| {
        let (resets, deque) = scratch;
        let odd_counter = counter_fn
            && series.labels.metric_name().is_some_and(|metric| {
                !["_total", "_sum", "_count", "_bucket"].iter().any(|suf| metric.ends_with(suf))
            });
        let mut vals = vec![None; s.len()];
        let mut any = false;
        if counter_fn {
            // Counter resets found once per series, not once per window: windows overlap, and
            // most series never reset.
            resets.clear();
            resets.extend((1..points.len()).filter(|&j| points[j].1 < points[j - 1].1));
            w.for_each_window_at(points, |i, lo, win| {
                let end = w.ends[i];
                let hi = lo + win.len();
                let inside =
                    &resets[resets.partition_point(|&j| j <= lo)..resets.partition_point(|&j| j < hi)];
                let v = extrapolated_rate(
                    win,
                    inside.iter().map(|&j| points[j - 1].1),
                    end - w.range,
                    end,
                    w.range,
                    true,
                    name == "rate",
                );
                any |= v.is_some();
                vals[i] = v;
                Ok(())
            })?;
        } else if sliding_extreme {
            // A monotonic deque of candidate indices: each sample enters and leaves once, instead
            // of every window rescanning its samples (a [24h] window at a 1-minute step reads each
            // sample 1,440 times). NaNs never win, and among equal values the earliest does, as
            // in the scan of `window_value`.
            let want_max = name == "max_over_time";
            let beats = |a: f64, b: f64| if want_max { a > b } else { a < b };
            deque.clear();
            let mut next = 0usize;
            w.for_each_window_at(points, |i, lo, win| {
                let hi = lo + win.len();
                while next < hi {
                    let v = points[next].1;
                    if !v.is_nan() {
                        while deque.back().is_some_and(|&b| beats(v, points[b].1)) {
                            deque.pop_back();
                        }
                        deque.push_back(next);
                    }
                    next += 1;
                }
                while deque.front().is_some_and(|&f| f < lo) {
                    deque.pop_front();
                }
                vals[i] = Some(deque.front().map_or(f64::NAN, |&f| points[f].1));
                any = true;
                Ok(())
            })?;
        } else {
            w.for_each_window(points, |i, win| {
                let end = w.ends[i];
                let v = window_value(name, win, end - w.range, end, w.range, s.t(i), params, i);
                any |= v.is_some();
                vals[i] = v;
                Ok(())
            })?;
        }
        let out = any.then(|| StepSeries {
            labels: series.labels.clone(),
            drop_name: if keeps_name { series.drop_name } else { true },
            vals,
        });
        Ok::<_, PromqlError>((out, odd_counter.then(|| series.labels.clone())))
    })?;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        let (series, odd) = r?;
        if let Some(labels) = odd {
            if let Some(metric) = labels.metric_name() {
                ev.info(format!(
                    "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric:?}"
                ));
            }
        }
        out.extend(series);
    }
    Ok(Val::Vector(out))
}

#[allow(clippy::too_many_arguments)]
fn window_value(
    name: &str,
    win: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range: i64,
    t: i64,
    params: &[Vec<f64>],
    i: usize,
) -> Option<f64> {
    let first = win.first()?;
    let last = win.last()?;
    let values = || win.iter().map(|p| p.1);
    match name {
        "rate" => extrapolated_rate(win, counter_resets(win), range_start, range_end, range, true, true),
        "increase" => extrapolated_rate(win, counter_resets(win), range_start, range_end, range, true, false),
        "delta" => extrapolated_rate(win, std::iter::empty(), range_start, range_end, range, false, false),
        "irate" | "idelta" => {
            if win.len() < 2 {
                return None;
            }
            let (prev, lastp) = (win[win.len() - 2], *last);
            let dt = lastp.0 - prev.0;
            if dt == 0 {
                return None;
            }
            if name == "irate" {
                let v = if lastp.1 < prev.1 { lastp.1 } else { lastp.1 - prev.1 };
                Some(v / (dt as f64 / 1000.0))
            } else {
                Some(lastp.1 - prev.1)
            }
        }
        "deriv" => {
            if win.len() < 2 {
                return None;
            }
            Some(linear_regression(win, first.0).0)
        }
        "predict_linear" => {
            if win.len() < 2 {
                return None;
            }
            let (slope, intercept) = linear_regression(win, t);
            Some(slope * params[0][i] + intercept)
        }
        "double_exponential_smoothing" => {
            if win.len() < 2 {
                return None;
            }
            let (sf, tf) = (params[0][i], params[1][i]);
            let (mut s0, mut s1) = (0.0, win[0].1);
            let mut b = win[1].1 - win[0].1;
            for (j, p) in win.iter().enumerate().skip(1) {
                let x = sf * p.1;
                if j > 1 {
                    b = tf * (s1 - s0) + (1.0 - tf) * b;
                }
                let y = (1.0 - sf) * (s1 + b);
                s0 = s1;
                s1 = x + y;
            }
            Some(s1)
        }
        "resets" => Some(win.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64),
        "changes" => {
            Some(win.windows(2).filter(|w| w[1].1 != w[0].1 && !(w[1].1.is_nan() && w[0].1.is_nan())).count()
                as f64)
        }
        "sum_over_time" => {
            let (mut sum, mut c) = (0.0, 0.0);
            for v in values() {
                (sum, c) = kahan_inc(v, sum, c);
            }
            Some(sum + c)
        }
        "avg_over_time" => Some(super::aggregate::avg(&values().collect::<Vec<_>>())),
        "count_over_time" => Some(win.len() as f64),
        "present_over_time" => Some(1.0),
        "last_over_time" => Some(last.1),
        "first_over_time" => Some(first.1),
        "ts_of_last_over_time" => Some(last.0 as f64 / 1000.0),
        "ts_of_first_over_time" => Some(first.0 as f64 / 1000.0),
        "min_over_time" | "max_over_time" | "ts_of_min_over_time" | "ts_of_max_over_time" => {
            let want_max = name.contains("max");
            let ts_of = name.starts_with("ts_of");
            let mut best = *first;
            for &p in &win[1..] {
                let better = if want_max { p.1 > best.1 } else { p.1 < best.1 };
                let tie = ts_of && p.1 == best.1;
                if better || best.1.is_nan() || tie {
                    best = p;
                }
            }
            Some(if ts_of { best.0 as f64 / 1000.0 } else { best.1 })
        }
        "stddev_over_time" => Some(super::aggregate::variance(&values().collect::<Vec<_>>()).sqrt()),
        "stdvar_over_time" => Some(super::aggregate::variance(&values().collect::<Vec<_>>())),
        "quantile_over_time" => Some(quantile(params[0][i], &mut values().collect::<Vec<_>>())),
        "mad_over_time" => {
            let mut v: Vec<f64> = values().collect();
            if v.iter().any(|x| x.is_nan()) {
                return Some(f64::NAN);
            }
            let median = quantile(0.5, &mut v);
            let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
            Some(quantile(0.5, &mut dev))
        }
        _ => None,
    }
}

/// `rate`, `increase` and `delta`: the change over the window, corrected for counter resets and
/// extrapolated towards the window's edges as Prometheus does.
/// The value before each counter reset in `win`, in order.
fn counter_resets(win: &[(i64, f64)]) -> impl Iterator<Item = f64> + '_ {
    win.windows(2).filter(|w| w[1].1 < w[0].1).map(|w| w[0].1)
}

/// Prometheus's `extrapolatedRate`. `reset_prevs` are the values before the counter resets in the
/// window, in order: they are added to the raw increase in that order, as Prometheus's loop does,
/// so the result is the same to the bit.
fn extrapolated_rate(
    win: &[(i64, f64)],
    reset_prevs: impl Iterator<Item = f64>,
    range_start: i64,
    range_end: i64,
    range: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if win.len() < 2 {
        return None;
    }
    let (first, last) = (win[0], win[win.len() - 1]);
    let mut result = last.1 - first.1;
    for prev in reset_prevs {
        result += prev;
    }
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg_between = sampled / (win.len() - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    if is_counter {
        // A counter cannot go below zero: extrapolate no further back than where it would be 0.
        let mut to_zero = to_start;
        if result > 0.0 && first.1 >= 0.0 {
            to_zero = sampled * (first.1 / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// Least-squares slope and intercept (at `intercept_t`) of the samples, seconds on the x axis.
fn linear_regression(win: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = win[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in win.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn date_part(name: &str) -> fn(f64) -> f64 {
    fn split(v: f64) -> (i64, i64) {
        let secs = v as i64;
        (secs.div_euclid(86_400), secs.rem_euclid(86_400))
    }
    match name {
        "minute" => |v| (split(v).1 / 60 % 60) as f64,
        "hour" => |v| (split(v).1 / 3600) as f64,
        "day_of_month" => |v| civil_from_days(split(v).0).2 as f64,
        "day_of_week" => |v| (split(v).0 + 4).rem_euclid(7) as f64,
        "day_of_year" => |v| {
            let (y, m, d) = civil_from_days(split(v).0);
            const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
            let leap = i64::from(m > 2 && is_leap(y));
            (CUM[(m - 1) as usize] + d + leap) as f64
        },
        "days_in_month" => |v| {
            let (y, m, _) = civil_from_days(split(v).0);
            (match m {
                2 if is_leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            }) as f64
        },
        "month" => |v| civil_from_days(split(v).0).1 as f64,
        _ => |v| civil_from_days(split(v).0).0 as f64,
    }
}

/// Natural order of label values: runs of digits compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let lx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ly = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (nx, ny) = (&x[..lx], &y[..ly]);
                let tx = trim_zeros(nx);
                let ty = trim_zeros(ny);
                let ord = tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                x = &x[lx..];
                y = &y[ly..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let z = s.iter().take_while(|&&c| c == b'0').count();
    &s[z..]
}

/// Classic-histogram series grouped by their labels without `le`: each group's labels and its
/// buckets as (upper bound, index into `v`). Series without a readable `le` are warned about and
/// left out.
fn bucket_groups(ev: &mut Evaluator, v: &[StepSeries]) -> Vec<(Labels, Vec<(f64, usize)>)> {
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut members: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
    for (j, series) in v.iter().enumerate() {
        let le = series.labels.get("le");
        let bound = le.and_then(parse_go_float);
        let Some(bound) = bound else {
            let name = series.labels.metric_name().unwrap_or("");
            ev.warn(format!(
                "bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                le.unwrap_or(""),
                name
            ));
            continue;
        };
        let key = series.labels.without(&["le"]);
        let g = *groups.entry(key.clone()).or_insert_with(|| {
            members.push((key, Vec::new()));
            members.len() - 1
        });
        members[g].1.push((bound, j));
    }
    members
}

/// The (bound, count) pairs of one group's buckets present at step `i`.
fn buckets_at(v: &[StepSeries], buckets: &[(f64, usize)], i: usize) -> Vec<(f64, f64)> {
    buckets.iter().filter_map(|&(b, j)| v[j].vals[i].map(|c| (b, c))).collect()
}

fn warn_bad_quantiles(ev: &mut Evaluator, q: &[f64]) {
    if let Some(bad) = q.iter().find(|q| !(0.0..=1.0).contains(*q)) {
        ev.warn(format!("quantile value should be between 0 and 1, got {}", format_float(*bad)));
    }
}

/// One group's quantile per step, with Prometheus's info when buckets had to be made monotonic.
fn group_quantiles(
    ev: &mut Evaluator,
    v: &[StepSeries],
    labels: &Labels,
    buckets: &[(f64, usize)],
    q: &[f64],
) -> Vec<Option<f64>> {
    let mut vals = vec![None; q.len()];
    for (i, slot) in vals.iter_mut().enumerate() {
        let mut bs = buckets_at(v, buckets, i);
        if bs.is_empty() {
            continue;
        }
        let (value, forced) = bucket_quantile(q[i], &mut bs);
        if forced {
            ev.info(format!(
                "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                labels.metric_name().unwrap_or("")
            ));
        }
        *slot = Some(value);
    }
    vals
}

/// `histogram_quantile` over classic histograms: series grouped by their labels without `le`,
/// each group's buckets sorted and made monotonic, the quantile interpolated linearly inside the
/// bucket holding its rank.
fn histogram_quantile(ev: &mut Evaluator, q_expr: &Expr, v_expr: &Expr, s: &Steps) -> EvalResult<Val> {
    let q = ev.eval_scalar(q_expr, s)?;
    let v = ev.eval_vector(v_expr, s)?;
    warn_bad_quantiles(ev, &q);
    let mut out = Vec::new();
    for (labels, buckets) in bucket_groups(ev, &v) {
        let vals = group_quantiles(ev, &v, &labels, &buckets, &q);
        if vals.iter().any(Option::is_some) {
            out.push(StepSeries { labels, drop_name: true, vals });
        }
    }
    Ok(Val::Vector(out))
}

/// `histogram_quantiles(v, "label", q1, q2, …)`: one `histogram_quantile` per quantile, told
/// apart by `label` set to the quantile.
fn histogram_quantiles(ev: &mut Evaluator, args: &[&Expr], s: &Steps) -> EvalResult<Val> {
    let (Some(v_expr), Some(label_expr)) = (args.first(), args.get(1)) else {
        return Err(PromqlError::BadData("histogram_quantiles() needs at least 3 arguments".into()));
    };
    let label = string_arg(label_expr)?;
    let v = ev.eval_vector(v_expr, s)?;
    let groups = bucket_groups(ev, &v);
    let n = s.len();
    let mut out: Vec<StepSeries> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for q_expr in &args[2..] {
        let q = ev.eval_scalar(q_expr, s)?;
        warn_bad_quantiles(ev, &q);
        for (labels, buckets) in &groups {
            let vals = group_quantiles(ev, &v, labels, buckets, &q);
            for (i, val) in vals.into_iter().enumerate() {
                let Some(val) = val else { continue };
                // The quantile of each step names its series.
                let labels = labels
                    .with(&label, &quantile_label(q[i]))
                    .map_err(|e| PromqlError::Execution(e.to_string()))?;
                let k = *index.entry(super::eval::drop_name_labels(&labels)).or_insert_with(|| {
                    out.push(StepSeries { labels, drop_name: true, vals: vec![None; n] });
                    out.len() - 1
                });
                if out[k].vals[i].replace(val).is_some() {
                    return Err(super::eval::same_labelset());
                }
            }
        }
    }
    Ok(Val::Vector(out))
}

/// Prometheus spells whole quantiles with a decimal (`"1.0"`) in the label it adds.
fn quantile_label(q: f64) -> String {
    if q.is_finite() && q.fract() == 0.0 && q.abs() < 1e15 {
        format!("{q:.1}")
    } else {
        format_float(q)
    }
}

/// `histogram_fraction(lower, upper, v)` over classic histograms: the share of observations
/// between the bounds, interpolating linearly inside buckets.
fn histogram_fraction(ev: &mut Evaluator, args: &[&Expr], s: &Steps) -> EvalResult<Val> {
    let (Some(lo_expr), Some(hi_expr), Some(v_expr)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(PromqlError::BadData("histogram_fraction() needs 3 arguments".into()));
    };
    let lower = ev.eval_scalar(lo_expr, s)?;
    let upper = ev.eval_scalar(hi_expr, s)?;
    let v = ev.eval_vector(v_expr, s)?;
    let mut out = Vec::new();
    for (labels, buckets) in bucket_groups(ev, &v) {
        let vals: Vec<Option<f64>> = (0..s.len())
            .map(|i| {
                let mut bs = buckets_at(&v, &buckets, i);
                (!bs.is_empty()).then(|| bucket_fraction(lower[i], upper[i], &mut bs))
            })
            .collect();
        if vals.iter().any(Option::is_some) {
            out.push(StepSeries { labels, drop_name: true, vals });
        }
    }
    Ok(Val::Vector(out))
}

/// Sorts buckets and merges buckets with equal bounds (e.g. `le="1"` and `le="1.0"`). `None`
/// without a `+Inf` bucket.
fn coalesce_buckets(buckets: &mut [(f64, f64)]) -> Option<Vec<(f64, f64)>> {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return None;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(b, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == b => last.1 += c,
            _ => merged.push((b, c)),
        }
    }
    Some(merged)
}

/// Coalesced buckets with counts made monotonic, ignoring differences that are floating-point
/// noise; also whether a real decrease had to be removed.
fn monotonic_buckets(buckets: &mut [(f64, f64)]) -> Option<(Vec<(f64, f64)>, bool)> {
    let mut merged = coalesce_buckets(buckets)?;
    let mut forced = false;
    let mut prev = merged[0].1;
    for b in merged.iter_mut().skip(1) {
        let cur = b.1;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, 1e-12) {
            b.1 = prev;
            continue;
        }
        if cur < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    Some((merged, forced))
}

/// The fraction of a classic histogram's observations in `[lower, upper]`, as Prometheus's
/// `BucketFraction`: the ranks of both bounds are found by linear interpolation inside their
/// buckets, a first bucket with a positive bound starting at 0. Inside a bucket with an infinite
/// side the observations sit at its finite bound. Counts are not made monotonic here.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    let Some(merged) = coalesce_buckets(buckets) else { return f64::NAN };
    let count = merged[merged.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, None, None);
    let mut lb = if merged[0].0 > 0.0 { 0.0 } else { f64::NEG_INFINITY };
    for (i, &(ub, cum)) in merged.iter().enumerate() {
        if i > 0 {
            lb = merged[i - 1].0;
        }
        let interpolate = |v: f64| {
            if lb == f64::NEG_INFINITY {
                cum
            } else {
                rank + (cum - rank) * (v - lb) / (ub - lb)
            }
        };
        if lower_rank.is_none() && lb >= lower {
            lower_rank = Some(rank);
        }
        if upper_rank.is_none() && lb >= upper {
            upper_rank = Some(rank);
        }
        if lower_rank.is_none() && lb < lower && ub > lower {
            lower_rank = Some(interpolate(lower));
        }
        if upper_rank.is_none() && lb < upper && ub > upper {
            upper_rank = Some(interpolate(upper));
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        rank = cum;
    }
    let clamp = |r: Option<f64>| match r {
        Some(r) if r <= count || r.is_nan() => r,
        _ => count,
    };
    (clamp(upper_rank) - clamp(lower_rank)) / count
}

/// Go's `strconv.ParseFloat` for bucket bounds (Rust's parser accepts the same spellings of
/// infinities and NaN, case-insensitively).
fn parse_go_float(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|_| !s.is_empty())
}

/// Returns the quantile and whether bucket counts had to be forced monotonic.
fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some((merged, forced)) = monotonic_buckets(buckets) else { return (f64::NAN, false) };
    if merged.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = merged[..merged.len() - 1].partition_point(|x| x.1 < rank);
    if b == merged.len() - 1 {
        return (merged[merged.len() - 2].0, forced);
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return (merged[0].0, forced);
    }
    let mut start = 0.0;
    let end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Prometheus's `almost.Equal`.
pub fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = 2.2250738585072014e-308;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_fraction_keeps_decreasing_counts_as_prometheus_does() {
        // A fix for monotonicity would give 0.5; Prometheus interpolates the decrease as is.
        let mut b = vec![(2.0, 3.0), (1.0, 5.0), (f64::INFINITY, 10.0)];
        assert!((bucket_fraction(0.0, 1.5, &mut b) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn bucket_fraction_puts_observations_at_the_finite_side_of_infinite_buckets() {
        let mut b = vec![(-1.0, 2.0), (f64::INFINITY, 4.0)];
        assert_eq!(bucket_fraction(-5.0, 0.0, &mut b), 0.0);
        assert_eq!(bucket_fraction(f64::NEG_INFINITY, 0.0, &mut b), 0.5);
        assert_eq!(bucket_fraction(-1.0, f64::INFINITY, &mut b), 0.5);
    }

    #[test]
    fn bucket_fraction_is_nan_without_inf_bucket_or_observations() {
        assert!(bucket_fraction(0.0, 1.0, &mut [(1.0, 1.0)]).is_nan());
        assert!(bucket_fraction(0.0, 1.0, &mut [(1.0, 0.0), (f64::INFINITY, 0.0)]).is_nan());
        assert!(bucket_fraction(f64::NAN, 1.0, &mut [(1.0, 1.0), (f64::INFINITY, 2.0)]).is_nan());
    }

    #[test]
    fn quantile_labels_spell_whole_numbers_with_a_decimal() {
        assert_eq!(quantile_label(0.0), "0.0");
        assert_eq!(quantile_label(1.0), "1.0");
        assert_eq!(quantile_label(0.25), "0.25");
        assert_eq!(quantile_label(-0.1), "-0.1");
        assert_eq!(quantile_label(f64::NAN), "NaN");
    }
}
