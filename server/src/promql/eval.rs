//! The evaluator: walks a parsed expression and computes it at every step of a query at once.
//!
//! Every node evaluates to a [`Val`] over the query's [`Steps`] (one step for an instant query):
//! a scalar is one value per step, an instant vector is a list of [`StepSeries`] holding an
//! optional value per step. Working on all steps together is what lets a selector read each
//! series from storage once — a vector selector does one `select` covering every step's lookback
//! window, a range function slides a window over each series' samples ([`Windows`]) — instead of
//! querying storage per step. Operators and aggregations then combine series step by step.
//!
//! Metric names are dropped late, as in Prometheus 3 with delayed name removal: functions and
//! operators that would drop `__name__` only set [`StepSeries::drop_name`], and the name goes
//! when the result is returned, so `label_replace` or `last_over_time` on top still see it.
//! Limits (samples held, timeout, cancellation) are checked as the walk goes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as ParserMatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use super::{
    aggregate, binary, functions, EngineOptions, Matrix, PromqlError, QueryOptions, QueryResult, Queryable,
    RawSeries, Sample, Series, Value,
};
use crate::tsdb::index::{MatchOp, Matcher};
use crate::tsdb::labels::{Labels, METRIC_NAME};

/// Bits of Prometheus's staleness marker, a NaN no computation produces.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The evaluation times of a node: `start`, `start + step`, … `end`.
#[derive(Debug, Clone, Copy)]
pub struct Steps {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Steps {
    pub fn len(&self) -> usize {
        ((self.end - self.start) / self.step + 1) as usize
    }

    /// Never true: a query has at least one step.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn t(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

/// An instant-vector series over all steps.
#[derive(Debug, Clone)]
pub struct StepSeries {
    pub labels: Labels,
    /// `__name__` is to be removed from the result (delayed name removal).
    pub drop_name: bool,
    pub vals: Vec<Option<f64>>,
}

impl StepSeries {
    /// The labels this series will have in the result.
    pub fn out_labels(&self) -> Labels {
        if self.drop_name {
            drop_name_labels(&self.labels)
        } else {
            self.labels.clone()
        }
    }
}

/// A range-vector series: samples with their own timestamps.
#[derive(Debug, Clone)]
pub struct RangeSeries {
    pub labels: Labels,
    pub drop_name: bool,
    pub points: Vec<(i64, f64)>,
}

/// What an expression evaluates to over the steps of its evaluation.
#[derive(Debug)]
pub enum Val {
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<StepSeries>),
    /// A range vector; only at a single evaluation time (instant query of `foo[5m]`).
    Matrix(Vec<RangeSeries>),
}

/// The samples a range selector or subquery provides, with the window end for every step; the
/// window of step `i` is `(ends[i] - range, ends[i]]`.
pub struct Windows {
    series: Vec<WindowSeries>,
    pub range: i64,
    pub ends: Vec<i64>,
}

/// One series of [`Windows`]: a stored series (decoded when visited) or a subquery's points.
pub struct WindowSeries {
    pub labels: Labels,
    pub drop_name: bool,
    source: WindowSource,
}

enum WindowSource {
    Stored(RawSeries),
    Points(Vec<(i64, f64)>),
}

impl WindowSeries {
    /// The samples: a subquery's points, or a stored series decoded into `buf` without its
    /// staleness markers.
    fn points<'b>(&'b self, buf: &'b mut Vec<(i64, f64)>) -> &'b [(i64, f64)] {
        match &self.source {
            WindowSource::Points(p) => p,
            WindowSource::Stored(raw) => {
                raw.read_into(buf);
                buf.retain(|p| !is_stale(p.1));
                buf
            }
        }
    }

    /// Decoded on each visit (and so counted against the sample limit then), unlike a
    /// subquery's points, which were counted when computed.
    fn is_stored(&self) -> bool {
        matches!(self.source, WindowSource::Stored(_))
    }
}

impl Windows {
    /// `f(series, points, scratch)` for every series with samples, in order, spread over the
    /// cores for large selections (each thread decoding into its own buffer, with its own
    /// `scratch`). Stored series lose their staleness markers, as in [`Windows::each_series`].
    pub fn map_series<R: Send, S: Default>(
        &self,
        ev: &Evaluator,
        f: impl Fn(&WindowSeries, &[(i64, f64)], &mut S) -> R + Sync,
    ) -> EvalResult<Vec<R>> {
        let limits = ev.limits();
        par_map_parts(&self.series, |part| {
            let (mut buf, mut scratch) = (Vec::new(), S::default());
            let mut out = Vec::with_capacity(part.len());
            for (k, series) in part.iter().enumerate() {
                if k % 64 == 0 {
                    limits.check()?;
                }
                let points = series.points(&mut buf);
                if series.is_stored() {
                    limits.fits(points.len())?;
                }
                if !points.is_empty() {
                    out.push(f(series, points, &mut scratch));
                }
            }
            Ok(out)
        })
    }

    /// Calls `f(ev, series, points)` for every series with samples, one series at a time. Stored
    /// series are decoded into one reused buffer without their staleness markers, so only one
    /// series' samples are in memory at once.
    pub fn each_series(
        &self,
        ev: &mut Evaluator,
        mut f: impl FnMut(&mut Evaluator, &WindowSeries, &[(i64, f64)]) -> EvalResult<()>,
    ) -> EvalResult<()> {
        let mut buf = Vec::new();
        for series in &self.series {
            ev.check()?;
            let points = series.points(&mut buf);
            if series.is_stored() {
                ev.hold_briefly(points.len())?;
            }
            if !points.is_empty() {
                f(ev, series, points)?;
            }
        }
        Ok(())
    }

    /// Calls `f(step, window)` for every step whose window holds samples of `points`. Window ends
    /// never decrease, so two cursors walk the points once.
    pub fn for_each_window(
        &self,
        points: &[(i64, f64)],
        mut f: impl FnMut(usize, &[(i64, f64)]) -> Result<(), PromqlError>,
    ) -> Result<(), PromqlError> {
        self.for_each_window_at(points, |i, _, win| f(i, win))
    }

    /// [`Windows::for_each_window`], also passing where the window starts in `points`.
    pub fn for_each_window_at(
        &self,
        points: &[(i64, f64)],
        mut f: impl FnMut(usize, usize, &[(i64, f64)]) -> Result<(), PromqlError>,
    ) -> Result<(), PromqlError> {
        let (mut lo, mut hi) = (0usize, 0usize);
        for (i, &end) in self.ends.iter().enumerate() {
            let start = end - self.range;
            while lo < points.len() && points[lo].0 <= start {
                lo += 1;
            }
            hi = hi.max(lo);
            while hi < points.len() && points[hi].0 <= end {
                hi += 1;
            }
            if hi > lo {
                f(i, lo, &points[lo..hi])?;
            }
        }
        Ok(())
    }
}

pub struct Evaluator<'a> {
    q: &'a dyn Queryable,
    /// The query's own start and end, which `@ start()` and `@ end()` refer to.
    pub qstart: i64,
    pub qend: i64,
    pub qstep: i64,
    lookback: i64,
    sub_step: i64,
    max_samples: usize,
    samples: usize,
    deadline: Instant,
    cancel: Option<Arc<AtomicBool>>,
    warnings: Vec<String>,
    infos: Vec<String>,
}

pub type EvalResult<T> = Result<T, PromqlError>;

/// What a worker thread needs of the evaluator's limits: the deadline, the cancel flag, and the
/// sample budget left when the parallel part started.
#[derive(Clone)]
pub struct Limits {
    deadline: Instant,
    cancel: Option<Arc<AtomicBool>>,
    budget: usize,
}

fn check_deadline(deadline: Instant, cancel: &Option<Arc<AtomicBool>>) -> EvalResult<()> {
    if cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(PromqlError::Canceled);
    }
    if Instant::now() >= deadline {
        return Err(PromqlError::Timeout);
    }
    Ok(())
}

impl Limits {
    pub fn check(&self) -> EvalResult<()> {
        check_deadline(self.deadline, &self.cancel)
    }

    /// Fails if `n` samples do not fit in what was left of `--query.max-samples`.
    pub fn fits(&self, n: usize) -> EvalResult<()> {
        if n > self.budget {
            return Err(PromqlError::TooManySamples);
        }
        Ok(())
    }
}

/// Below this many series a selector or range function runs on the calling thread: starting
/// threads (tens of µs) would cost more than it saves.
const PARALLEL_MIN_SERIES: usize = 512;

fn worker_threads() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8))
}

/// Maps `items` in contiguous parts, one per core when there are many, keeping their order.
/// Per-series work (decoding, windows, functions) is independent between series, so a large
/// query uses every core as VictoriaMetrics does, instead of one.
pub fn par_map_parts<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&[T]) -> EvalResult<Vec<R>> + Sync,
) -> EvalResult<Vec<R>> {
    let threads = worker_threads();
    if threads < 2 || items.len() < PARALLEL_MIN_SERIES {
        return f(items);
    }
    let part = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items.chunks(part).map(|p| scope.spawn(move || f(p))).collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            match h.join() {
                Ok(r) => out.extend(r?),
                Err(_) => return Err(PromqlError::Storage("a query worker thread panicked".into())),
            }
        }
        Ok(out)
    })
}

impl<'a> Evaluator<'a> {
    pub fn new(
        q: &'a dyn Queryable,
        opts: &EngineOptions,
        qopts: &QueryOptions,
        start: i64,
        end: i64,
        step: i64,
    ) -> Evaluator<'a> {
        let timeout = qopts.timeout.unwrap_or(opts.timeout);
        Evaluator {
            q,
            qstart: start,
            qend: end,
            qstep: step,
            lookback: qopts.lookback_delta_ms.unwrap_or(opts.lookback_delta_ms),
            sub_step: opts.default_subquery_step_ms.max(1),
            max_samples: opts.max_samples,
            samples: 0,
            deadline: Instant::now() + timeout,
            cancel: qopts.cancel.clone(),
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    }

    pub fn warn(&mut self, msg: impl std::fmt::Display) {
        let s = format!("PromQL warning: {msg}");
        if !self.warnings.contains(&s) {
            self.warnings.push(s);
        }
    }

    pub fn info(&mut self, msg: impl std::fmt::Display) {
        let s = format!("PromQL info: {msg}");
        if !self.infos.contains(&s) {
            self.infos.push(s);
        }
    }

    pub fn finish<T>(self, value: T) -> QueryResult<T> {
        QueryResult { value, warnings: self.warnings, infos: self.infos }
    }

    /// Fails once the deadline has passed or the query was canceled.
    pub fn check(&self) -> EvalResult<()> {
        check_deadline(self.deadline, &self.cancel)
    }

    /// A copy of the limits for worker threads (see [`par_map_parts`]).
    pub fn limits(&self) -> Limits {
        Limits {
            deadline: self.deadline,
            cancel: self.cancel.clone(),
            budget: self.max_samples.saturating_sub(self.samples),
        }
    }

    /// Accounts for `n` more samples held in memory.
    pub fn add_samples(&mut self, n: usize) -> EvalResult<()> {
        self.samples = self.samples.saturating_add(n);
        if self.samples > self.max_samples {
            return Err(PromqlError::TooManySamples);
        }
        Ok(())
    }

    /// Checks that `n` samples fit beside those held, without keeping them: one series' decoded
    /// samples, which live only until its results are computed.
    pub fn hold_briefly(&mut self, n: usize) -> EvalResult<()> {
        self.add_samples(n)?;
        self.samples -= n;
        Ok(())
    }

    pub fn run_instant(&mut self, expr: &Expr) -> EvalResult<Value> {
        let t = self.qstart;
        let steps = Steps { start: t, end: t, step: 1 };
        Ok(match self.eval(expr, &steps)? {
            Val::Scalar(v) => Value::Scalar(t, v.first().copied().unwrap_or(f64::NAN)),
            Val::Str(s) => Value::String(t, s),
            Val::Vector(series) => {
                let mut out = Vec::with_capacity(series.len());
                for s in series {
                    if let Some(Some(v)) = s.vals.first() {
                        out.push(Sample { labels: s.out_labels(), t, v: *v });
                    }
                }
                let mut seen: Vec<&Labels> = out.iter().map(|s| &s.labels).collect();
                seen.sort();
                if seen.windows(2).any(|w| w[0] == w[1]) {
                    return Err(same_labelset());
                }
                Value::Vector(out)
            }
            Val::Matrix(series) => {
                let mut out: Matrix = series
                    .into_iter()
                    .map(|s| Series {
                        labels: if s.drop_name { drop_name_labels(&s.labels) } else { s.labels },
                        points: s.points,
                    })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                if out.windows(2).any(|w| w[0].labels == w[1].labels) {
                    return Err(same_labelset());
                }
                Value::Matrix(out)
            }
        })
    }

    pub fn run_range(&mut self, expr: &Expr) -> EvalResult<Matrix> {
        let steps = Steps { start: self.qstart, end: self.qend, step: self.qstep };
        match self.eval(expr, &steps)? {
            Val::Scalar(v) => Ok(vec![Series {
                labels: Labels::empty(),
                points: v.into_iter().enumerate().map(|(i, v)| (steps.t(i), v)).collect(),
            }]),
            Val::Vector(series) => {
                let mut by_labels: HashMap<Labels, usize> = HashMap::new();
                let mut out: Vec<(Labels, Vec<Option<f64>>)> = Vec::new();
                for s in series {
                    let labels = s.out_labels();
                    match by_labels.get(&labels) {
                        Some(&i) => {
                            // Series that become equal once names are dropped merge if they
                            // never have a value at the same step.
                            let existing = &mut out[i].1;
                            for (slot, v) in existing.iter_mut().zip(s.vals) {
                                if v.is_some() {
                                    if slot.is_some() {
                                        return Err(same_labelset());
                                    }
                                    *slot = v;
                                }
                            }
                        }
                        None => {
                            by_labels.insert(labels.clone(), out.len());
                            out.push((labels, s.vals));
                        }
                    }
                }
                let mut m: Matrix = out
                    .into_iter()
                    .map(|(labels, vals)| Series {
                        labels,
                        points: vals
                            .into_iter()
                            .enumerate()
                            .filter_map(|(i, v)| v.map(|v| (steps.t(i), v)))
                            .collect(),
                    })
                    .filter(|s| !s.points.is_empty())
                    .collect();
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                Ok(m)
            }
            Val::Str(_) => Err(PromqlError::BadData(
                "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
            )),
            Val::Matrix(_) => Err(PromqlError::BadData(
                "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
                    .into(),
            )),
        }
    }

    pub fn eval(&mut self, expr: &Expr, s: &Steps) -> EvalResult<Val> {
        self.check()?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; s.len()])),
            Expr::StringLiteral(st) => Ok(Val::Str(st.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, s),
            Expr::Unary(u) => match self.eval(&u.expr, s)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(mut vs) => {
                    for series in &mut vs {
                        series.drop_name = true;
                        for v in series.vals.iter_mut().flatten() {
                            *v = -*v;
                        }
                    }
                    Ok(Val::Vector(vs))
                }
                _ => Err(PromqlError::BadData(
                    "unary expression only allowed on expressions of type scalar or instant vector".into(),
                )),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.vector_selector(vs, s, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                if s.len() != 1 {
                    return Err(PromqlError::BadData(
                        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
                            .into(),
                    ));
                }
                let w = self.windows(expr, s)?;
                let mut out = Vec::new();
                w.each_series(self, |ev, series, all| {
                    let mut points = Vec::new();
                    w.for_each_window(all, |_, win| {
                        points.extend_from_slice(win);
                        Ok(())
                    })?;
                    if !points.is_empty() {
                        ev.add_samples(points.len())?;
                        out.push(RangeSeries {
                            labels: series.labels.clone(),
                            drop_name: series.drop_name,
                            points,
                        });
                    }
                    Ok(())
                })?;
                Ok(Val::Matrix(out))
            }
            Expr::Call(c) => functions::call(self, c, s),
            Expr::Aggregate(a) => aggregate::eval(self, a, s),
            Expr::Binary(b) => binary::eval(self, b, s),
            Expr::Extension(_) => Err(PromqlError::Unsupported("extension expressions".into())),
        }
    }

    /// Evaluates an expression that must be an instant vector.
    pub fn eval_vector(&mut self, expr: &Expr, s: &Steps) -> EvalResult<Vec<StepSeries>> {
        match self.eval(expr, s)? {
            Val::Vector(v) => Ok(v),
            other => Err(PromqlError::BadData(format!(
                "expected type instant vector, got {}",
                val_type_name(&other)
            ))),
        }
    }

    /// Evaluates an expression that must be a scalar: one value per step.
    pub fn eval_scalar(&mut self, expr: &Expr, s: &Steps) -> EvalResult<Vec<f64>> {
        match self.eval(expr, s)? {
            Val::Scalar(v) => Ok(v),
            other => {
                Err(PromqlError::BadData(format!("expected type scalar, got {}", val_type_name(&other))))
            }
        }
    }

    /// The time a selector with modifier `at` looks at when evaluated at `t`.
    pub fn at_time(&self, at: &Option<AtModifier>, t: i64) -> i64 {
        match at {
            None => t,
            Some(AtModifier::Start) => self.qstart,
            Some(AtModifier::End) => self.qend,
            Some(AtModifier::At(st)) => system_time_ms(*st),
        }
    }

    /// An instant vector selector at every step: the newest sample in the lookback window
    /// `(t - lookback, t]`, unless it is a staleness marker. With `timestamps`, the value is the
    /// sample's timestamp in seconds instead (for `timestamp()`).
    pub fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        s: &Steps,
        timestamps: bool,
    ) -> EvalResult<Vec<StepSeries>> {
        let off = offset_ms(&vs.offset);
        let times: Vec<i64> = (0..s.len()).map(|i| self.at_time(&vs.at, s.t(i)) - off).collect();
        let (Some(&lo), Some(&hi)) = (times.iter().min(), times.iter().max()) else {
            return Ok(Vec::new());
        };
        let raw = self.select(vs, lo - self.lookback + 1, hi)?;
        let (limits, lookback) = (self.limits(), self.lookback);
        let out = par_map_parts(&raw, |part| {
            let mut out = Vec::with_capacity(part.len());
            // Like Prometheus, only what the steps keep counts against the limit: the decoded
            // buffer is one series long and reused.
            let mut buf = Vec::new();
            for (k, series) in part.iter().enumerate() {
                if k % 64 == 0 {
                    limits.check()?;
                }
                series.read_into(&mut buf);
                let mut vals = vec![None; times.len()];
                let mut any = false;
                let pts = &buf;
                let mut idx = 0usize;
                let mut prev_t = i64::MIN;
                for (i, &t) in times.iter().enumerate() {
                    if t < prev_t {
                        idx = 0;
                    }
                    prev_t = t;
                    while idx < pts.len() && pts[idx].0 <= t {
                        idx += 1;
                    }
                    if idx == 0 {
                        continue;
                    }
                    let (st, sv) = pts[idx - 1];
                    if st > t - lookback && !is_stale(sv) {
                        vals[i] = Some(if timestamps { st as f64 / 1000.0 } else { sv });
                        any = true;
                    }
                }
                if any {
                    out.push(StepSeries { labels: series.labels.clone(), drop_name: false, vals });
                }
            }
            Ok(out)
        })?;
        let held = out.iter().map(|s| s.vals.iter().filter(|v| v.is_some()).count()).sum();
        self.add_samples(held)?;
        Ok(out)
    }

    pub fn lookback(&self) -> i64 {
        self.lookback
    }

    /// Reads the series matching `matchers` with samples in `[mint, maxt]`, for selections that do
    /// not come from a selector in the query (the info series of `info()`).
    pub fn select_matchers(
        &mut self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> EvalResult<Vec<RawSeries>> {
        let out = self.q.select(matchers, mint, maxt).map_err(|e| PromqlError::Storage(e.to_string()))?;
        self.check()?;
        Ok(out)
    }

    /// Reads the series of a selector with samples in `[mint, maxt]`.
    pub fn select(&mut self, vs: &VectorSelector, mint: i64, maxt: i64) -> EvalResult<Vec<RawSeries>> {
        let mut groups: Vec<Vec<Matcher>> = Vec::new();
        let mut base = Vec::new();
        if let Some(name) = &vs.name {
            base.push(Matcher::equal(METRIC_NAME, name.clone()));
        }
        let mut first = base.clone();
        for m in &vs.matchers.matchers {
            first.push(convert_matcher(m)?);
        }
        groups.push(first);
        for alt in &vs.matchers.or_matchers {
            let mut g = base.clone();
            for m in alt {
                g.push(convert_matcher(m)?);
            }
            groups.push(g);
        }
        let mut out: Vec<RawSeries> = Vec::new();
        for g in &groups {
            if g.is_empty() && groups.len() == 1 {
                return Err(PromqlError::BadData(
                    "vector selector must contain at least one non-empty matcher".into(),
                ));
            }
            let got = self.q.select(g, mint, maxt).map_err(|e| PromqlError::Storage(e.to_string()))?;
            out.extend(got);
        }
        if groups.len() > 1 {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            out.dedup_by(|a, b| a.labels == b.labels);
        }
        self.check()?;
        Ok(out)
    }

    /// The samples behind a range selector or subquery argument, and every step's window.
    pub fn windows(&mut self, expr: &Expr, s: &Steps) -> EvalResult<Windows> {
        match expr {
            Expr::Paren(p) => self.windows(&p.expr, s),
            Expr::MatrixSelector(ms) => {
                let range = duration_ms(&ms.range);
                let off = offset_ms(&ms.vs.offset);
                let ends: Vec<i64> = (0..s.len()).map(|i| self.at_time(&ms.vs.at, s.t(i)) - off).collect();
                let (Some(&lo), Some(&hi)) = (ends.iter().min(), ends.iter().max()) else {
                    return Ok(Windows { series: Vec::new(), range, ends });
                };
                let raw = self.select(&ms.vs, lo - range + 1, hi)?;
                let series = raw
                    .into_iter()
                    .map(|r| WindowSeries {
                        labels: r.labels.clone(),
                        drop_name: false,
                        source: WindowSource::Stored(r),
                    })
                    .collect();
                Ok(Windows { series, range, ends })
            }
            Expr::Subquery(sq) => {
                let range = duration_ms(&sq.range);
                let off = offset_ms(&sq.offset);
                let step = sq.step.as_ref().map(duration_ms).unwrap_or(self.sub_step);
                if step <= 0 {
                    return Err(PromqlError::BadData("subquery step must be positive".into()));
                }
                let ends: Vec<i64> = (0..s.len()).map(|i| self.at_time(&sq.at, s.t(i)) - off).collect();
                let (Some(&lo), Some(&hi)) = (ends.iter().min(), ends.iter().max()) else {
                    return Ok(Windows { series: Vec::new(), range, ends });
                };
                // Inner steps are aligned to multiples of the step, starting after lo - range.
                let first = lo - range;
                let mut start = step * first.div_euclid(step);
                if start <= first {
                    start += step;
                }
                if start > hi {
                    return Ok(Windows { series: Vec::new(), range, ends });
                }
                let inner = Steps { start, end: hi, step };
                let series: Vec<WindowSeries> = match self.eval(&sq.expr, &inner)? {
                    Val::Vector(v) => v
                        .into_iter()
                        .map(|ss| WindowSeries {
                            labels: ss.labels,
                            drop_name: ss.drop_name,
                            source: WindowSource::Points(
                                ss.vals
                                    .into_iter()
                                    .enumerate()
                                    .filter_map(|(i, v)| v.map(|v| (inner.t(i), v)))
                                    .collect(),
                            ),
                        })
                        .filter(|r| !matches!(&r.source, WindowSource::Points(p) if p.is_empty()))
                        .collect(),
                    Val::Scalar(v) => vec![WindowSeries {
                        labels: Labels::empty(),
                        drop_name: false,
                        source: WindowSource::Points(
                            v.into_iter().enumerate().map(|(i, v)| (inner.t(i), v)).collect(),
                        ),
                    }],
                    other => {
                        return Err(PromqlError::BadData(format!(
                            "subquery is only allowed on instant vector, got {}",
                            val_type_name(&other)
                        )))
                    }
                };
                let held = series
                    .iter()
                    .map(|r| match &r.source {
                        WindowSource::Points(p) => p.len(),
                        WindowSource::Stored(_) => 0,
                    })
                    .sum();
                self.add_samples(held)?;
                Ok(Windows { series, range, ends })
            }
            _ => Err(PromqlError::BadData("expected a range vector selector or a subquery".into())),
        }
    }
}

/// The labels without the metric name and the metadata labels that describe it (`__type__`,
/// `__unit__`), as Prometheus drops them together.
pub fn drop_name_labels(labels: &Labels) -> Labels {
    if labels.metric_name().is_none() && !labels.contains("__type__") && !labels.contains("__unit__") {
        return labels.clone();
    }
    labels.without(&[METRIC_NAME, "__type__", "__unit__"])
}

pub fn same_labelset() -> PromqlError {
    PromqlError::Execution("vector cannot contain metrics with the same labelset".into())
}

pub fn val_type_name(v: &Val) -> &'static str {
    match v {
        Val::Scalar(_) => "scalar",
        Val::Str(_) => "string",
        Val::Vector(_) => "instant vector",
        Val::Matrix(_) => "range vector",
    }
}

pub fn convert_matcher(m: &promql_parser::label::Matcher) -> EvalResult<Matcher> {
    let op = match m.op {
        ParserMatchOp::Equal => MatchOp::Equal,
        ParserMatchOp::NotEqual => MatchOp::NotEqual,
        ParserMatchOp::Re(_) => MatchOp::Regex,
        ParserMatchOp::NotRe(_) => MatchOp::NotRegex,
    };
    Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| PromqlError::BadData(e.to_string()))
}

pub fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

pub fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

/// Strips parentheses around an expression.
pub fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}
