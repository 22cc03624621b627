//! `info(v, {selector})`: adds the data labels of info series (`target_info` by default) to the
//! series of `v` they share `instance` and `job` with, step by step, as Prometheus 3 does with
//! its metric-join strategy.
//!
//! Info series are read over the time range of the first selector in `v` (its `@` and offset
//! shift it), then evaluated at every step with the usual lookback. When several series of one
//! info metric match a base series at a step, the one with the newest sample wins; two equally
//! new ones are an error, as are two info metrics disagreeing on a label's value.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use promql_parser::parser::{AtModifier, Expr, Offset};

use super::eval::{
    convert_matcher, is_stale, offset_ms, same_labelset, unparen, EvalResult, Evaluator, StepSeries, Steps,
    Val,
};
use super::PromqlError;
use crate::tsdb::index::{MatchOp, Matcher};
use crate::tsdb::labels::{Labels, METRIC_NAME};

const TARGET_INFO: &str = "target_info";
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The key an info series and a base series must share: the info metric's name and the
/// identifying labels present.
type Signature = (String, Vec<(String, String)>);

fn signature(name: &str, labels: &Labels) -> Signature {
    let ids = IDENTIFYING
        .iter()
        .filter_map(|l| labels.get(l).filter(|v| !v.is_empty()).map(|v| (l.to_string(), v.to_string())))
        .collect();
    (name.to_string(), ids)
}

pub fn info(ev: &mut Evaluator, args: &[&Expr], s: &Steps) -> EvalResult<Val> {
    let Some(&base_expr) = args.first() else {
        return Err(PromqlError::BadData("missing argument 1 of info".into()));
    };
    let base = ev.eval_vector(base_expr, s)?;

    let mut selector: Vec<Matcher> = Vec::new();
    if let Some(sel) = args.get(1) {
        let Expr::VectorSelector(vs) = unparen(sel) else {
            return Err(PromqlError::BadData(
                "expected label selector as the second argument of info()".into(),
            ));
        };
        if let Some(name) = &vs.name {
            selector.push(Matcher::equal(METRIC_NAME, name.clone()));
        }
        for m in &vs.matchers.matchers {
            selector.push(convert_matcher(m)?);
        }
    }
    let name_matchers: Vec<Matcher> = if args.len() > 1 {
        selector.iter().filter(|m| m.name() == METRIC_NAME).cloned().collect()
    } else {
        vec![Matcher::equal(METRIC_NAME, TARGET_INFO)]
    };
    let positive = name_matchers.iter().any(|m| matches!(m.op(), MatchOp::Equal | MatchOp::Regex));
    // A base series that is itself one of the selected info metrics is passed through; negative
    // name matchers alone select nothing to ignore.
    let ignored: Vec<bool> = base
        .iter()
        .map(|b| {
            let name = b.labels.metric_name().unwrap_or("");
            positive && name_matchers.iter().all(|m| m.matches(name))
        })
        .collect();
    let mut data_matchers: BTreeMap<String, Vec<Matcher>> = BTreeMap::new();
    for m in selector.iter().filter(|m| m.name() != METRIC_NAME) {
        data_matchers.entry(m.name().to_string()).or_default().push(m.clone());
    }

    let infos = fetch_info_series(ev, base_expr, s, &base, &ignored, &selector, positive)?;
    let info_names: BTreeSet<String> =
        infos.iter().filter_map(|i| i.labels.metric_name().map(str::to_string)).collect();
    let info_sigs: Vec<Signature> =
        infos.iter().map(|i| signature(i.labels.metric_name().unwrap_or(""), &i.labels)).collect();
    let base_sigs: Vec<Vec<Signature>> =
        base.iter().map(|b| info_names.iter().map(|n| signature(n, &b.labels)).collect()).collect();
    let all_match_empty = data_matchers.values().flatten().all(Matcher::matches_empty);

    let n = s.len();
    let mut out: Vec<StepSeries> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for i in 0..n {
        ev.check()?;
        // The newest info sample per signature at this step.
        let mut right: HashMap<&Signature, (usize, f64)> = HashMap::new();
        for (j, inf) in infos.iter().enumerate() {
            let Some(t) = inf.vals[i] else { continue };
            match right.get(&info_sigs[j]) {
                Some(&(k, et)) if et == t => {
                    return Err(PromqlError::Execution(format!(
                        "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                        infos[k].labels, et as i64, inf.labels, t as i64
                    )));
                }
                Some(&(_, et)) if et > t => {}
                _ => {
                    right.insert(&info_sigs[j], (j, t));
                }
            }
        }
        for (b, bs) in base.iter().enumerate() {
            let Some(v) = bs.vals[i] else { continue };
            let labels = if ignored[b] {
                bs.labels.clone()
            } else {
                let mut added: BTreeMap<&str, &str> = BTreeMap::new();
                let mut matched = false;
                for sig in &base_sigs[b] {
                    let Some(&(j, _)) = right.get(sig) else { continue };
                    for (name, value) in infos[j].labels.iter() {
                        if name == METRIC_NAME
                            || (!data_matchers.is_empty() && !data_matchers.contains_key(name))
                        {
                            continue;
                        }
                        if added.get(name).is_some_and(|have| !have.is_empty() && *have != value) {
                            return Err(PromqlError::Execution(format!("conflicting label: {name}")));
                        }
                        if bs.labels.contains(name) {
                            continue;
                        }
                        added.insert(name, value);
                    }
                    matched = true;
                }
                if !matched && !all_match_empty {
                    continue;
                }
                let mut lb = bs.labels.builder();
                for (name, value) in added {
                    lb.set(name, value).map_err(|e| PromqlError::Execution(e.to_string()))?;
                }
                lb.build()
            };
            let k = match index.get(&labels) {
                Some(&k) => k,
                None => {
                    index.insert(labels.clone(), out.len());
                    out.push(StepSeries { labels, drop_name: bs.drop_name, vals: vec![None; n] });
                    out.len() - 1
                }
            };
            if out[k].vals[i].is_some() {
                return Err(same_labelset());
            }
            out[k].vals[i] = Some(v);
        }
    }
    Ok(Val::Vector(out))
}

/// The info series that may match the non-ignored base series, each valued at every step with
/// the timestamp of its newest sample in the lookback window.
fn fetch_info_series(
    ev: &mut Evaluator,
    base_expr: &Expr,
    s: &Steps,
    base: &[StepSeries],
    ignored: &[bool],
    selector: &[Matcher],
    positive: bool,
) -> EvalResult<Vec<StepSeries>> {
    let mut id_values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (b, bs) in base.iter().enumerate() {
        if ignored[b] {
            continue;
        }
        for l in IDENTIFYING {
            if let Some(v) = bs.labels.get(l).filter(|v| !v.is_empty()) {
                id_values.entry(l).or_default().insert(v);
            }
        }
    }
    if id_values.is_empty() {
        return Ok(Vec::new());
    }
    let mut matchers = Vec::new();
    for (name, values) in &id_values {
        let re = values.iter().map(|v| regex::escape(v)).collect::<Vec<_>>().join("|");
        matchers.push(
            Matcher::new(MatchOp::Regex, *name, re).map_err(|e| PromqlError::Execution(e.to_string()))?,
        );
    }
    matchers.extend(selector.iter().cloned());
    let named = selector.iter().any(|m| m.name() == METRIC_NAME);
    if !named {
        matchers.push(Matcher::equal(METRIC_NAME, TARGET_INFO));
    } else if !positive {
        // Only negative name matchers: Prometheus still joins with info metrics only, not with
        // every other series sharing `instance` and `job`.
        matchers.push(
            Matcher::new(MatchOp::Regex, METRIC_NAME, ".+_info")
                .map_err(|e| PromqlError::Execution(e.to_string()))?,
        );
    }

    let (at, offset) = first_selector_modifiers(base_expr);
    let (mut start, mut end) = (s.start, s.end);
    if let Some(at) = at {
        let t = ev.at_time(&Some(at), s.start);
        (start, end) = (t, t);
    }
    let lookback = ev.lookback();
    let mint = start - (lookback - 1) - offset;
    let maxt = end - offset;
    let raw = ev.select_matchers(&matchers, mint, maxt)?;
    let mut out = Vec::with_capacity(raw.len());
    let mut held = 0;
    let mut buf = Vec::new();
    for series in raw {
        series.read_into(&mut buf);
        let pts = &buf;
        let mut vals = vec![None; s.len()];
        let mut idx = 0;
        let mut any = false;
        for (i, slot) in vals.iter_mut().enumerate() {
            let t = s.t(i);
            while idx < pts.len() && pts[idx].0 <= t {
                idx += 1;
            }
            if idx == 0 {
                continue;
            }
            let (st, sv) = pts[idx - 1];
            if st > t - lookback && !is_stale(sv) {
                *slot = Some(st as f64);
                any = true;
                held += 1;
            }
        }
        if any {
            out.push(StepSeries { labels: series.labels, drop_name: false, vals });
        }
    }
    ev.add_samples(held)?;
    Ok(out)
}

/// The `@` modifier and offset (ms) of the first vector selector in `e`, depth first.
fn first_selector_modifiers(e: &Expr) -> (Option<AtModifier>, i64) {
    fn walk(e: &Expr) -> Option<(Option<AtModifier>, Option<Offset>)> {
        match e {
            Expr::VectorSelector(vs) => Some((vs.at.clone(), vs.offset.clone())),
            Expr::MatrixSelector(ms) => Some((ms.vs.at.clone(), ms.vs.offset.clone())),
            Expr::Paren(p) => walk(&p.expr),
            Expr::Unary(u) => walk(&u.expr),
            Expr::Subquery(sq) => walk(&sq.expr),
            Expr::Binary(b) => walk(&b.lhs).or_else(|| walk(&b.rhs)),
            Expr::Aggregate(a) => walk(&a.expr).or_else(|| a.param.as_deref().and_then(walk)),
            Expr::Call(c) => c.args.args.iter().find_map(|a| walk(a)),
            _ => None,
        }
    }
    match walk(e) {
        Some((at, off)) => (at, offset_ms(&off)),
        None => (None, 0),
    }
}
