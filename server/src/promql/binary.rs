//! Binary operators: arithmetic, comparisons (filtering or with `bool`), `atan2` and the set
//! operators `and`/`or`/`unless`, between scalars and instant vectors.
//!
//! Vector-to-vector operations match series by a signature — the label set restricted by
//! `on(…)` or stripped by `ignoring(…)` (and always without `__name__` unless `on` names it) —
//! computed once per series. Each step then joins the sides like Prometheus's `VectorBinop`: the
//! "one" side (right, or left for `group_right`) must be unique per signature, one-to-one matches
//! must be unique on both sides, and results are written into output series found by their
//! label set, which catches two results with the same labels at one step. `fill`,
//! `fill_left` and `fill_right` supply a value for a side that has no match.

use std::collections::HashMap;

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD, T_MUL, T_NEQ,
    T_POW, T_SUB,
};
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::eval::{same_labelset, EvalResult, Evaluator, StepSeries, Steps, Val};
use super::PromqlError;
use crate::tsdb::labels::{Labels, METRIC_NAME};

pub fn eval(ev: &mut Evaluator, b: &BinaryExpr, s: &Steps) -> EvalResult<Val> {
    let op = b.op.id();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, s)?;
    let rhs = ev.eval(&b.rhs, s)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
            l.into_iter()
                .zip(r)
                .map(|(a, c)| {
                    if is_comparison(op) {
                        if compare(op, a, c) {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        arith(op, a, c)
                    }
                })
                .collect(),
        )),
        (Val::Vector(l), Val::Scalar(r)) => vector_scalar(op, l, &r, false, return_bool),
        (Val::Scalar(l), Val::Vector(r)) => vector_scalar(op, r, &l, true, return_bool),
        (Val::Vector(l), Val::Vector(r)) => {
            let default = BinModifier::default();
            let m = b.modifier.as_ref().unwrap_or(&default);
            match op {
                T_LAND | T_LOR | T_LUNLESS => Ok(Val::Vector(set_op(op, l, r, &m.matching, s))),
                _ => vector_vector(ev, op, l, r, m, s),
            }
        }
        _ => {
            Err(PromqlError::BadData("binary operations are only allowed between scalars and vectors".into()))
        }
    }
}

fn is_comparison(op: u16) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTE | T_GTR | T_LSS | T_LTE)
}

/// Arithmetic drops the metric name; filtering comparisons keep it.
fn drops_name(op: u16, return_bool: bool) -> bool {
    !is_comparison(op) || return_bool
}

pub fn arith(op: u16, l: f64, r: f64) -> f64 {
    match op {
        T_ADD => l + r,
        T_SUB => l - r,
        T_MUL => l * r,
        T_DIV => l / r,
        T_MOD => l % r,
        T_POW => l.powf(r),
        T_ATAN2 => l.atan2(r),
        _ => f64::NAN,
    }
}

pub fn compare(op: u16, l: f64, r: f64) -> bool {
    match op {
        T_EQLC => l == r,
        T_NEQ => l != r,
        T_GTR => l > r,
        T_LSS => l < r,
        T_GTE => l >= r,
        T_LTE => l <= r,
        _ => false,
    }
}

/// Applies `op` between every sample and the step's scalar; `swap` when the scalar is on the left.
fn vector_scalar(
    op: u16,
    mut v: Vec<StepSeries>,
    sc: &[f64],
    swap: bool,
    return_bool: bool,
) -> EvalResult<Val> {
    let cmp = is_comparison(op);
    for series in &mut v {
        for (slot, &x) in series.vals.iter_mut().zip(sc) {
            let Some(val) = *slot else { continue };
            let (l, r) = if swap { (x, val) } else { (val, x) };
            *slot = if cmp {
                let keep = compare(op, l, r);
                if return_bool {
                    Some(if keep { 1.0 } else { 0.0 })
                } else if keep {
                    // The vector's own value survives a filter, whichever side it is on.
                    Some(val)
                } else {
                    None
                }
            } else {
                Some(arith(op, l, r))
            };
        }
        if drops_name(op, return_bool) {
            series.drop_name = true;
        }
    }
    v.retain(|s| s.vals.iter().any(Option::is_some));
    Ok(Val::Vector(v))
}

/// The labels two series are matched by.
fn signature(labels: &Labels, matching: &Option<LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => {
            let names: Vec<&str> = on.labels.iter().map(String::as_str).collect();
            labels.keep_only(&names)
        }
        Some(LabelModifier::Exclude(ign)) => {
            let mut names: Vec<&str> = ign.labels.iter().map(String::as_str).collect();
            names.push(METRIC_NAME);
            labels.without(&names)
        }
        None => labels.without_metric_name(),
    }
}

/// Interns signatures so steps compare small integers.
fn signature_ids(
    l: &[StepSeries],
    r: &[StepSeries],
    matching: &Option<LabelModifier>,
) -> (Vec<usize>, Vec<usize>, Vec<Labels>) {
    let mut ids: HashMap<Labels, usize> = HashMap::new();
    let mut sigs = Vec::new();
    let mut id_of = |labels: &Labels| {
        let sig = signature(labels, matching);
        let next = ids.len();
        *ids.entry(sig.clone()).or_insert_with(|| {
            sigs.push(sig);
            next
        })
    };
    let lids = l.iter().map(|s| id_of(&s.labels)).collect();
    let rids = r.iter().map(|s| id_of(&s.labels)).collect();
    (lids, rids, sigs)
}

fn set_op(
    op: u16,
    l: Vec<StepSeries>,
    r: Vec<StepSeries>,
    matching: &Option<LabelModifier>,
    s: &Steps,
) -> Vec<StepSeries> {
    let (lids, rids, sigs) = signature_ids(&l, &r, matching);
    let n = s.len();
    // Per signature, whether some series of that side has a value at each step.
    let mut r_has = vec![vec![false; n]; sigs.len()];
    for (series, &id) in r.iter().zip(&rids) {
        for (i, v) in series.vals.iter().enumerate() {
            if v.is_some() {
                r_has[id][i] = true;
            }
        }
    }
    match op {
        T_LAND | T_LUNLESS => {
            let want = op == T_LAND;
            let mut out = l;
            for (series, &id) in out.iter_mut().zip(&lids) {
                for (i, v) in series.vals.iter_mut().enumerate() {
                    if v.is_some() && r_has[id][i] != want {
                        *v = None;
                    }
                }
            }
            out.retain(|s| s.vals.iter().any(Option::is_some));
            out
        }
        _ => {
            let mut l_has = vec![vec![false; n]; sigs.len()];
            for (series, &id) in l.iter().zip(&lids) {
                for (i, v) in series.vals.iter().enumerate() {
                    if v.is_some() {
                        l_has[id][i] = true;
                    }
                }
            }
            let mut out = l;
            for (mut series, &id) in r.into_iter().zip(&rids) {
                for (i, v) in series.vals.iter_mut().enumerate() {
                    if l_has[id][i] {
                        *v = None;
                    }
                }
                if series.vals.iter().any(Option::is_some) {
                    out.push(series);
                }
            }
            out
        }
    }
}

fn vector_vector(
    ev: &mut Evaluator,
    op: u16,
    l: Vec<StepSeries>,
    r: Vec<StepSeries>,
    m: &BinModifier,
    s: &Steps,
) -> EvalResult<Val> {
    let n = s.len();
    let return_bool = m.return_bool;
    let (card_many_right, include): (bool, Vec<&str>) = match &m.card {
        VectorMatchCardinality::OneToMany(ls) => (true, ls.labels.iter().map(String::as_str).collect()),
        VectorMatchCardinality::ManyToOne(ls) => (false, ls.labels.iter().map(String::as_str).collect()),
        _ => (false, Vec::new()),
    };
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany);
    // Work as many-to-one: `many` is matched against the unique `one` side.
    let (many, one, swapped) = if card_many_right { (r, l, true) } else { (l, r, false) };
    let (mids, oids, sigs) = signature_ids(&many, &one, &m.matching);
    // Prometheus swaps the operands for group_right but not the fill values: `fill_left` always
    // stands in for a missing "many" side.
    let (fill_many, fill_one) = (m.fill_values.lhs, m.fill_values.rhs);

    let mut out: Vec<StepSeries> = Vec::new();
    let mut out_index: HashMap<Labels, usize> = HashMap::new();
    let mut pair_slot: HashMap<(usize, usize), usize> = HashMap::new();
    let mut one_at: Vec<Option<usize>> = vec![None; sigs.len()];
    let mut many_matched: Vec<bool> = vec![false; sigs.len()];
    let mut matched_sigs: HashMap<usize, Vec<Labels>> = HashMap::new();
    let empty = Labels::empty();
    const NONE: usize = usize::MAX;

    for i in 0..n {
        if i % 64 == 0 {
            ev.check()?;
        }
        one_at.iter_mut().for_each(|x| *x = None);
        many_matched.iter_mut().for_each(|x| *x = false);
        matched_sigs.clear();
        for (j, series) in one.iter().enumerate() {
            if series.vals[i].is_none() {
                continue;
            }
            let id = oids[j];
            if let Some(prev) = one_at[id] {
                let side = if swapped { "left" } else { "right" };
                return Err(PromqlError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    sigs[id], series.out_labels(), one[prev].out_labels()
                )));
            }
            one_at[id] = Some(j);
        }
        let mut emit =
            |ev_out: &mut Vec<StepSeries>, mi: usize, oj: usize, mv: f64, ov: f64| -> EvalResult<()> {
                let (lv, rv) = if swapped { (ov, mv) } else { (mv, ov) };
                let (value, keep) =
                    if is_comparison(op) { (lv, compare(op, lv, rv)) } else { (arith(op, lv, rv), true) };
                let value = if return_bool {
                    if keep {
                        1.0
                    } else {
                        0.0
                    }
                } else if !keep {
                    return Ok(());
                } else {
                    value
                };
                let slot = match pair_slot.get(&(mi, oj)) {
                    Some(&slot) => slot,
                    None => {
                        let (labels, base_drop) = match (mi, oj) {
                            // A filled-in "many" side: the result has just the matching labels.
                            (NONE, o) => (sigs[oids[o]].clone(), false),
                            (mm, NONE) => (
                                result_labels(&many[mm].labels, &empty, m, &include, one_to_one),
                                many[mm].drop_name,
                            ),
                            (mm, o) => (
                                result_labels(&many[mm].labels, &one[o].labels, m, &include, one_to_one),
                                many[mm].drop_name,
                            ),
                        };
                        let drop = base_drop || drops_name(op, return_bool);
                        let slot = match out_index.get(&labels) {
                            Some(&x) => x,
                            None => {
                                out_index.insert(labels.clone(), ev_out.len());
                                ev_out.push(StepSeries { labels, drop_name: drop, vals: vec![None; n] });
                                ev_out.len() - 1
                            }
                        };
                        pair_slot.insert((mi, oj), slot);
                        slot
                    }
                };
                let cell = &mut ev_out[slot].vals[i];
                if cell.is_some() {
                    return Err(same_labelset());
                }
                *cell = Some(value);
                Ok(())
            };
        for (mi, series) in many.iter().enumerate() {
            let Some(mv) = series.vals[i] else { continue };
            let id = mids[mi];
            let Some(oj) = one_at[id] else {
                if let Some(f) = fill_one {
                    emit(&mut out, mi, NONE, mv, f)?;
                }
                continue;
            };
            if one_to_one {
                if many_matched[id] {
                    return Err(PromqlError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
            } else {
                let metric = result_labels(&series.labels, &one[oj].labels, m, &include, false);
                let seen = matched_sigs.entry(id).or_default();
                if seen.contains(&metric) {
                    return Err(PromqlError::Execution(
                        "multiple matches for matching labels: grouping labels must ensure unique results"
                            .into(),
                    ));
                }
                seen.push(metric);
            }
            many_matched[id] = true;
            let ov = one[oj].vals[i].unwrap_or(f64::NAN);
            emit(&mut out, mi, oj, mv, ov)?;
        }
        if let Some(f) = fill_many {
            for (id, oj) in one_at.iter().enumerate() {
                if let Some(oj) = *oj {
                    if !many_matched[id] {
                        let ov = one[oj].vals[i].unwrap_or(f64::NAN);
                        emit(&mut out, NONE, oj, f, ov)?;
                    }
                }
            }
        }
    }
    out.retain(|s| s.vals.iter().any(Option::is_some));
    Ok(Val::Vector(out))
}

/// Labels of a result sample: the "many" side's, cut down to the matching labels for one-to-one
/// `on`, without the `ignoring` labels for one-to-one `ignoring`, plus the `group_x` labels
/// copied from the "one" side.
fn result_labels(many: &Labels, one: &Labels, m: &BinModifier, include: &[&str], one_to_one: bool) -> Labels {
    let mut b = many.builder();
    if one_to_one {
        match &m.matching {
            Some(LabelModifier::Include(on)) => {
                let names: Vec<&str> = on.labels.iter().map(String::as_str).collect();
                b.keep(&names);
            }
            Some(LabelModifier::Exclude(ign)) => {
                for n in &ign.labels {
                    b.del(n);
                }
            }
            None => {}
        }
    }
    for name in include {
        match one.get(name) {
            Some(v) => {
                // Names were validated by the parser, so setting cannot fail on an empty name.
                let _ = b.set(name, v);
            }
            None => {
                b.del(name);
            }
        }
    }
    b.build()
}
