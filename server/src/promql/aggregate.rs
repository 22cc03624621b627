//! Aggregation operators (`sum`, `avg`, `count`, `topk`, `quantile`, `count_values`, …) with
//! `by`/`without` grouping.
//!
//! Each input series' group is computed once from its labels; every step then folds the values
//! present at that step into one accumulator per group. `topk`, `bottomk`, `limitk` and
//! `limit_ratio` select whole input samples (labels kept) instead of folding, and
//! `count_values` creates one output series per distinct value. Sums use Kahan-Neumaier
//! compensation and averages switch to an incremental mean on overflow, as Prometheus does, so
//! results match it to the last bits that tests compare.

use std::collections::HashMap;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMITK, T_LIMIT_RATIO, T_MAX, T_MIN, T_QUANTILE,
    T_STDDEV, T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::eval::{EvalResult, Evaluator, StepSeries, Steps, Val};
use super::functions::{format_float, kahan_inc, quantile};
use super::PromqlError;
use crate::tsdb::labels::{Labels, METRIC_NAME};

pub fn eval(ev: &mut Evaluator, a: &AggregateExpr, s: &Steps) -> EvalResult<Val> {
    let op = a.op.id();
    let n = s.len();
    let param: Option<Val> = match &a.param {
        Some(p) => Some(ev.eval(p, s)?),
        None => None,
    };
    let input = ev.eval_vector(&a.expr, s)?;
    let groups: Vec<Labels> = input.iter().map(|series| group_labels(series, &a.modifier)).collect();
    let mut group_ids: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels_list: Vec<Labels> = Vec::new();
    let ids: Vec<usize> = groups
        .into_iter()
        .map(|g| {
            let next = group_labels_list.len();
            *group_ids.entry(g.clone()).or_insert_with(|| {
                group_labels_list.push(g);
                next
            })
        })
        .collect();
    let ng = group_labels_list.len();

    match op {
        T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO => {
            let Some(Val::Scalar(p)) = param else {
                return Err(PromqlError::BadData("expected scalar parameter".into()));
            };
            select_samples(ev, op, input, &ids, ng, &p, n)
        }
        T_COUNT_VALUES => {
            let Some(Val::Str(label)) = param else {
                return Err(PromqlError::BadData("expected string parameter for count_values".into()));
            };
            if label.is_empty() || std::str::from_utf8(label.as_bytes()).is_err() {
                return Err(PromqlError::Execution(format!("invalid label name {label:?}")));
            }
            let mut out: Vec<StepSeries> = Vec::new();
            let mut index: HashMap<Labels, usize> = HashMap::new();
            for i in 0..n {
                let mut counts: HashMap<(usize, String), f64> = HashMap::new();
                let mut order: Vec<(usize, String)> = Vec::new();
                for (series, &g) in input.iter().zip(&ids) {
                    if let Some(v) = series.vals[i] {
                        let key = (g, format_float(v));
                        let c = counts.entry(key.clone()).or_insert_with(|| {
                            order.push(key);
                            0.0
                        });
                        *c += 1.0;
                    }
                }
                for key in order {
                    let labels = group_labels_list[key.0]
                        .with(&label, &key.1)
                        .map_err(|e| PromqlError::Execution(e.to_string()))?;
                    let slot = *index.entry(labels.clone()).or_insert_with(|| {
                        out.push(StepSeries { labels, drop_name: false, vals: vec![None; n] });
                        out.len() - 1
                    });
                    out[slot].vals[i] = counts.get(&key).copied();
                }
            }
            Ok(Val::Vector(out))
        }
        T_SUM | T_COUNT | T_GROUP | T_MIN | T_MAX => {
            let mut out = fold_streaming(ev, op, &input, &ids, group_labels_list, n)?;
            out.retain(|s| s.vals.iter().any(Option::is_some));
            Ok(Val::Vector(out))
        }
        _ => {
            let q = match (op, param) {
                (T_QUANTILE, Some(Val::Scalar(p))) => Some(p),
                (T_QUANTILE, _) => {
                    return Err(PromqlError::BadData("expected scalar parameter for quantile".into()))
                }
                _ => None,
            };
            let mut out: Vec<StepSeries> = group_labels_list
                .into_iter()
                .map(|labels| StepSeries { labels, drop_name: false, vals: vec![None; n] })
                .collect();
            // A group whose name survives grouping drops it if any member would.
            for (series, &g) in input.iter().zip(&ids) {
                if series.drop_name && out[g].labels.metric_name().is_some() {
                    out[g].drop_name = true;
                }
            }
            let mut members: Vec<Vec<f64>> = vec![Vec::new(); ng];
            for i in 0..n {
                if i % 64 == 0 {
                    ev.check()?;
                }
                members.iter_mut().for_each(Vec::clear);
                for (series, &g) in input.iter().zip(&ids) {
                    if let Some(v) = series.vals[i] {
                        members[g].push(v);
                    }
                }
                for (g, vals) in members.iter_mut().enumerate() {
                    if vals.is_empty() {
                        continue;
                    }
                    let v = match op {
                        T_SUM => sum(vals),
                        T_AVG => avg(vals),
                        T_COUNT => vals.len() as f64,
                        T_GROUP => 1.0,
                        T_MIN => vals
                            .iter()
                            .copied()
                            .fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
                        T_MAX => vals
                            .iter()
                            .copied()
                            .fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
                        T_STDDEV => variance(vals).sqrt(),
                        T_STDVAR => variance(vals),
                        T_QUANTILE => {
                            let qv = q.as_ref().map(|q| q[i]).unwrap_or(f64::NAN);
                            if !(0.0..=1.0).contains(&qv) {
                                ev.warn(format!(
                                    "quantile value should be between 0 and 1, got {}",
                                    format_float(qv)
                                ));
                            }
                            quantile(qv, vals)
                        }
                        _ => return Err(PromqlError::Unsupported(format!("aggregation {}", a.op))),
                    };
                    out[g].vals[i] = Some(v);
                }
            }
            out.retain(|s| s.vals.iter().any(Option::is_some));
            Ok(Val::Vector(out))
        }
    }
}

/// `sum`, `count`, `group`, `min` and `max`, folded series by series into one accumulator per
/// group and step, instead of step by step across all series: each input series is read once,
/// front to back, and no per-step member list is gathered. Within a group and step the values
/// still arrive in input order, so sums are the same to the bit as [`sum`]'s.
fn fold_streaming(
    ev: &mut Evaluator,
    op: promql_parser::parser::token::TokenId,
    input: &[StepSeries],
    ids: &[usize],
    group_labels_list: Vec<Labels>,
    n: usize,
) -> EvalResult<Vec<StepSeries>> {
    let ng = group_labels_list.len();
    let mut acc = vec![f64::NAN; ng * n];
    let mut comp = vec![0.0; if op == T_SUM { ng * n } else { 0 }];
    let mut seen = vec![false; ng * n];
    let mut drop_name = vec![false; ng];
    for (k, (series, &g)) in input.iter().zip(ids).enumerate() {
        if k % 256 == 0 {
            ev.check()?;
        }
        drop_name[g] |= series.drop_name;
        let base = g * n;
        for (i, v) in series.vals.iter().enumerate() {
            let Some(v) = *v else { continue };
            let j = base + i;
            let first = !seen[j];
            seen[j] = true;
            acc[j] = match op {
                T_SUM => {
                    let (s, c) = kahan_inc(v, if first { 0.0 } else { acc[j] }, comp[j]);
                    comp[j] = c;
                    s
                }
                T_COUNT => {
                    if first {
                        1.0
                    } else {
                        acc[j] + 1.0
                    }
                }
                T_GROUP => 1.0,
                T_MIN => {
                    let m = acc[j];
                    if m.is_nan() || v < m {
                        v
                    } else {
                        m
                    }
                }
                _ => {
                    let m = acc[j];
                    if m.is_nan() || v > m {
                        v
                    } else {
                        m
                    }
                }
            };
        }
    }
    Ok(group_labels_list
        .into_iter()
        .enumerate()
        .map(|(g, labels)| {
            let vals = (0..n)
                .map(|i| {
                    let j = g * n + i;
                    seen[j].then(|| if op == T_SUM { acc[j] + comp[j] } else { acc[j] })
                })
                .collect();
            // A group whose name survives grouping drops it if any member would.
            let drop_name = drop_name[g] && labels.metric_name().is_some();
            StepSeries { labels, drop_name, vals }
        })
        .collect())
}

/// The labels of the group a series falls in.
fn group_labels(series: &StepSeries, modifier: &Option<LabelModifier>) -> Labels {
    // Groups are formed before delayed name removal, so `by (__name__)` still sees names that
    // are to be dropped (and such groups later collide, as in Prometheus).
    let labels = &series.labels;
    match modifier {
        None => Labels::empty(),
        Some(LabelModifier::Include(by)) => {
            let names: Vec<&str> = by.labels.iter().map(String::as_str).collect();
            labels.keep_only(&names)
        }
        Some(LabelModifier::Exclude(without)) => {
            let mut names: Vec<&str> = without.labels.iter().map(String::as_str).collect();
            names.push(METRIC_NAME);
            labels.without(&names)
        }
    }
}

pub fn sum(vals: &[f64]) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for &v in vals {
        (s, c) = kahan_inc(v, s, c);
    }
    s + c
}

/// Prometheus's mean: a compensated sum divided at the end, falling back to an incremental mean
/// once the sum would overflow.
pub fn avg(vals: &[f64]) -> f64 {
    let Some(&first) = vals.first() else { return f64::NAN };
    let (mut sum, mut c) = (first, 0.0);
    let mut mean = 0.0;
    let mut incremental = false;
    let mut count = 1.0;
    for (i, &v) in vals.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(v, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// Population variance by Welford's method with compensated sums.
pub fn variance(vals: &[f64]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &v in vals {
        count += 1.0;
        let delta = v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

/// `topk`, `bottomk`, `limitk` and `limit_ratio`: keeps whole input samples per group and step.
fn select_samples(
    ev: &mut Evaluator,
    op: u16,
    mut input: Vec<StepSeries>,
    ids: &[usize],
    ng: usize,
    param: &[f64],
    n: usize,
) -> EvalResult<Val> {
    let mut keep: Vec<Vec<Option<f64>>> = vec![vec![None; n]; input.len()];
    // Output order for an instant query: groups by first appearance, each group's samples in
    // rank order.
    let mut order: Vec<usize> = Vec::new();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); ng];
    #[allow(clippy::needless_range_loop)] // `i` indexes every series' values, not just `keep`.
    for i in 0..n {
        let p = param.get(i).copied().unwrap_or(f64::NAN);
        if p.is_nan() {
            return Err(PromqlError::Execution(
                if op == T_LIMIT_RATIO { "Ratio value is NaN" } else { "Parameter value is NaN" }.into(),
            ));
        }
        members.iter_mut().for_each(Vec::clear);
        let mut group_order: Vec<usize> = Vec::new();
        for (j, series) in input.iter().enumerate() {
            if series.vals[i].is_some() {
                if members[ids[j]].is_empty() {
                    group_order.push(ids[j]);
                }
                members[ids[j]].push(j);
            }
        }
        let ratio = if op == T_LIMIT_RATIO {
            let r = if p > 1.0 {
                ev.warn(format!(
                    "ratio value should be between -1 and 1, got {}, capping to 1",
                    format_float(p)
                ));
                1.0
            } else if p < -1.0 {
                ev.warn(format!(
                    "ratio value should be between -1 and 1, got {}, capping to -1",
                    format_float(p)
                ));
                -1.0
            } else {
                p
            };
            Some(r)
        } else {
            if p.abs() >= 9.223_372_036_854_776e18 {
                return Err(PromqlError::Execution(format!(
                    "Scalar value {} overflows int64",
                    format_float(p)
                )));
            }
            None
        };
        for g in group_order {
            let mut m = std::mem::take(&mut members[g]);
            let value = |j: usize| input[j].vals[i].unwrap_or(f64::NAN);
            match op {
                T_TOPK | T_BOTTOMK => {
                    let k = (p as i64).max(0) as usize;
                    // Which samples are kept: Prometheus's heap, so that ties resolve as there.
                    m = heap_select(&m, k, value, op == T_TOPK);
                    // NaN ranks below every number in topk and above every number in bottomk.
                    m.sort_by(|&x, &y| {
                        let (a, b) = (value(x), value(y));
                        if op == T_TOPK {
                            cmp_nan_low(b, a)
                        } else {
                            cmp_nan_high(a, b)
                        }
                    });
                    m.truncate(k);
                }
                T_LIMITK => {
                    let k = (p as i64).max(0) as usize;
                    m.truncate(k);
                }
                _ => {
                    let r = ratio.unwrap_or(0.0);
                    m.retain(|&j| {
                        let offset = input[j].labels.stable_hash() as f64 / u64::MAX as f64;
                        (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r)
                    });
                }
            }
            for &j in &m {
                keep[j][i] = input[j].vals[i];
                if n == 1 {
                    order.push(j);
                }
            }
            members[g] = m;
        }
    }
    let mut out = Vec::new();
    if n == 1 {
        for j in order {
            let mut s = input[j].clone();
            s.vals = std::mem::take(&mut keep[j]);
            out.push(s);
        }
    } else {
        for (j, series) in input.iter_mut().enumerate() {
            if keep[j].iter().any(Option::is_some) {
                series.vals = std::mem::take(&mut keep[j]);
                out.push(series.clone());
            }
        }
    }
    Ok(Val::Vector(out))
}

/// Orders numbers ascending with NaN below all of them.
fn cmp_nan_low(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// The members `topk` (`top`) or `bottomk` keeps of a group, given in input order, chosen as
/// Prometheus chooses them: a binary heap (Go's `container/heap`) of at most `k` samples with the
/// lowest-ranked at the root, where a new sample replaces the root only when it ranks strictly
/// higher. Among equal values this keeps exactly what Prometheus keeps (which is not always the
/// first ones in input order). The result is in heap order.
fn heap_select(members: &[usize], k: usize, value: impl Fn(usize) -> f64, top: bool) -> Vec<usize> {
    // Go's Less of vectorByValueHeap (topk) and vectorByReverseValueHeap (bottomk).
    let less = |a: f64, b: f64| a.is_nan() || if top { a < b } else { a > b };
    let mut h: Vec<usize> = Vec::with_capacity(k.min(members.len()));
    if k == 0 {
        return h;
    }
    for &j in members {
        let v = value(j);
        if h.len() < k {
            // heap.Push: append, then up.
            h.push(j);
            let mut c = h.len() - 1;
            while c > 0 {
                let parent = (c - 1) / 2;
                if !less(value(h[c]), value(h[parent])) {
                    break;
                }
                h.swap(c, parent);
                c = parent;
            }
            continue;
        }
        let root = value(h[0]);
        let ranks_higher = if top { root < v } else { root > v };
        if ranks_higher || (root.is_nan() && !v.is_nan()) {
            h[0] = j;
            // heap.Fix(h, 0): down from the root (up from the root is a no-op).
            let mut i = 0;
            loop {
                let left = 2 * i + 1;
                if left >= h.len() {
                    break;
                }
                let mut c = left;
                if left + 1 < h.len() && less(value(h[left + 1]), value(h[left])) {
                    c = left + 1;
                }
                if !less(value(h[c]), value(h[i])) {
                    break;
                }
                h.swap(i, c);
                i = c;
            }
        }
    }
    h
}

/// Orders numbers ascending with NaN above all of them.
fn cmp_nan_high(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

#[cfg(test)]
mod tests {
    use super::heap_select;

    fn select(values: &[f64], k: usize, top: bool) -> Vec<usize> {
        let members: Vec<usize> = (0..values.len()).collect();
        let mut kept = heap_select(&members, k, |j| values[j], top);
        kept.sort_unstable();
        kept
    }

    #[test]
    fn ties_resolve_as_in_prometheus() {
        // Go's heap keeps series 1 and 3 here, a stable sort would keep 3 and 0.
        assert_eq!(select(&[1.0, 1.0, 1.0, 2.0], 2, true), vec![1, 3]);
        assert_eq!(select(&[2.0, 2.0, 2.0, 1.0], 2, false), vec![1, 3]);
        // A later equal value never replaces an earlier one.
        assert_eq!(select(&[5.0, 3.0, 5.0, 3.0], 2, true), vec![0, 2]);
        assert_eq!(select(&[3.0, 3.0, 3.0], 1, true), vec![0]);
    }

    #[test]
    fn nan_ranks_lowest_and_k_bounds() {
        assert_eq!(select(&[f64::NAN, 5.0], 1, true), vec![1]);
        assert_eq!(select(&[f64::NAN, 5.0], 1, false), vec![1]);
        assert_eq!(select(&[1.0, 2.0, 3.0], 0, true), Vec::<usize>::new());
        assert_eq!(select(&[1.0, 2.0, 3.0], 10, true), vec![0, 1, 2]);
        assert_eq!(select(&[4.0, 9.0, 1.0, 7.0, 3.0], 3, true), vec![0, 1, 3]);
        assert_eq!(select(&[4.0, 9.0, 1.0, 7.0, 3.0], 3, false), vec![0, 2, 4]);
    }
}
