//! Server side of the dashboard page: resolves template variables (options from the data
//! source, selection from the URL or the saved dashboard, chained in list order) and runs every
//! panel's queries for the range, producing one [`DashboardView`] for the whole page.

use regex::Regex;

use super::timerange::{parse_duration, parse_time, Edge};
use super::vars::{builtins, legend, Scope, Selection, Target};
use super::{Dashboard, Panel, Variable, GRID_COLUMNS};
use crate::chart::{choose_step, PanelData, Series};
use crate::model::{DashboardMeta, DashboardView, DataSource, PanelResult, VariableState};

/// The page width the server assumes when it picks steps: panels' query resolution follows
/// their share of it (Grafana's maxDataPoints defaults to the panel's pixel width).
pub const NOMINAL_PAGE_WIDTH_PX: i64 = 1600;

/// The value Grafana uses in URLs and saved selections for "All".
pub const ALL: &str = "$__all";

/// The dashboard's range in ms: `from`/`to` from the URL, else the dashboard's own.
pub fn resolve_range(d: &Dashboard, from: Option<&str>, to: Option<&str>, now_ms: i64) -> (i64, i64) {
    let from_s = from.filter(|s| !s.is_empty()).unwrap_or(&d.time.from);
    let to_s = to.filter(|s| !s.is_empty()).unwrap_or(&d.time.to);
    let to_ms = parse_time(to_s, now_ms, Edge::To).unwrap_or(now_ms);
    let from_ms = parse_time(from_s, now_ms, Edge::From).unwrap_or(to_ms - 6 * 3_600_000);
    if from_ms < to_ms {
        (from_ms, to_ms)
    } else {
        (to_ms - 3_600_000, to_ms)
    }
}

/// Builds the view of `dashboard` for the range and the URL's `var-<name>` selections.
pub fn load_view(
    ds: &dyn DataSource,
    dashboard: Dashboard,
    meta: DashboardMeta,
    (from_ms, to_ms): (i64, i64),
    url_vars: &[(String, Vec<String>)],
) -> DashboardView {
    let scrape_ms = ds.scrape_interval_ms().max(1);
    let (scope, variables) = resolve_scope(ds, &dashboard, from_ms, to_ms, url_vars);
    let panels: Vec<&Panel> = dashboard.all_panels().filter(|p| !p.is_row()).collect();
    let panels = map_in_parallel(&panels, |p| run_panel(ds, p, &scope, from_ms, to_ms, scrape_ms));
    DashboardView { dashboard, meta, variables, panels, from_ms, to_ms, ..DashboardView::default() }
}

/// `f` over `items`, in order, on as many threads as there are cores: a dashboard's panels are
/// independent queries and the page waits for the last of them, so a 20-panel page need not
/// take 20 queries' time on one core.
pub(crate) fn map_in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    // The browser (wasm32) has no threads; it never loads a whole dashboard itself anyway.
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
        if threads > 1 {
            // Each thread takes the next unclaimed item, so one slow panel does not hold back
            // a fixed share of the others.
            let next = AtomicUsize::new(0);
            let work = || {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    done.push((i, f(item)));
                }
                done
            };
            let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
            std::thread::scope(|s| {
                let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
                let mut finished = vec![work()];
                for h in helpers {
                    // A panic in a panel's query is a bug: re-raised here as it would have been
                    // without the threads.
                    finished.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                }
                for (i, r) in finished.into_iter().flatten() {
                    slots[i] = Some(r);
                }
            });
            return slots.into_iter().flatten().collect();
        }
    }
    items.iter().map(f).collect()
}

/// Runs one panel (as the editor has it, perhaps unsaved) against the dashboard's variables.
pub fn load_panel(
    ds: &dyn DataSource,
    dashboard: &Dashboard,
    panel: &Panel,
    (from_ms, to_ms): (i64, i64),
    url_vars: &[(String, Vec<String>)],
) -> PanelResult {
    let scrape_ms = ds.scrape_interval_ms().max(1);
    let (scope, _) = resolve_scope(ds, dashboard, from_ms, to_ms, url_vars);
    run_panel(ds, panel, &scope, from_ms, to_ms, scrape_ms)
}

/// The selection expansion sees: "All" becomes every option (or the custom all value).
fn selection_of(var: &Variable, state: &VariableState) -> Selection {
    let all = state.selected.iter().any(|v| v == ALL);
    let values = if all {
        state.options.iter().filter(|(_, v)| v != ALL).map(|(_, v)| v.clone()).collect()
    } else {
        state.selected.clone()
    };
    Selection {
        name: var.name.clone(),
        values,
        multi: var.multi || var.include_all,
        all_value: if all { var.all_value.clone().filter(|s| !s.is_empty()) } else { None },
    }
}

fn resolve_variable(
    ds: &dyn DataSource,
    var: &Variable,
    scope: &Scope,
    url_vars: &[(String, Vec<String>)],
    from_ms: i64,
    to_ms: i64,
) -> VariableState {
    let mut error = None;
    let raw_query = scope.interpolate(&var.query_text(), Target::Query);
    let mut values: Vec<(String, String)> = match var.kind.as_str() {
        "custom" | "interval" => split_custom(&raw_query),
        "constant" | "textbox" => vec![(raw_query.clone(), raw_query.clone())],
        "query" | "" => match query_variable(ds, &raw_query, from_ms, to_ms) {
            Ok(v) => v.into_iter().map(|s| (s.clone(), s)).collect(),
            Err(e) => {
                error = Some(e);
                Vec::new()
            }
        },
        other => {
            error = Some(format!("variable type {other:?} is not supported"));
            Vec::new()
        }
    };
    if !var.regex.is_empty() && var.kind == "query" {
        match compile_grafana_regex(&var.regex) {
            Ok(re) => values = apply_regex(&re, values),
            Err(e) => error = Some(format!("invalid regex {:?}: {e}", var.regex)),
        }
    }
    if var.kind == "query" {
        values.sort_by(|a, b| natural_cmp(&a.0, &b.0));
        values.dedup();
    }
    let mut options = Vec::with_capacity(values.len() + 1);
    if var.include_all {
        options.push(("All".to_string(), ALL.to_string()));
    }
    options.extend(values);
    let known = |v: &String| var.kind == "textbox" || options.iter().any(|(_, o)| o == v);
    let from_url = url_vars.iter().find(|(n, _)| *n == var.name).map(|(_, v)| v.clone());
    let mut selected: Vec<String> = match from_url {
        // URL values are kept even when unknown: a share link must reproduce the view.
        Some(v) if !v.is_empty() => {
            v.iter().map(|s| if s == "All" || s == ALL { ALL.to_string() } else { s.clone() }).collect()
        }
        _ => var.current_values().into_iter().filter(|v| known(v)).collect(),
    };
    if !var.multi && selected.len() > 1 {
        selected.truncate(1);
    }
    if selected.is_empty() {
        if let Some((_, first)) = options.first() {
            selected.push(first.clone());
        } else if var.kind == "textbox" {
            selected.push(raw_query);
        }
    }
    VariableState {
        name: var.name.clone(),
        label: var.label.clone().filter(|l| !l.is_empty()).unwrap_or_else(|| var.name.clone()),
        kind: if var.kind.is_empty() { "query".into() } else { var.kind.clone() },
        multi: var.multi,
        include_all: var.include_all,
        hide: if var.kind == "constant" { 2 } else { var.hide },
        options,
        selected,
        error,
    }
}

/// `a,b,c` or `text : value` pairs, Grafana's custom variable syntax (commas escaped as `\,`).
fn split_custom(q: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = q.chars().peekable();
    let mut push = |s: &str| {
        let s = s.trim();
        if s.is_empty() {
            return;
        }
        match s.split_once(" : ") {
            Some((t, v)) => out.push((t.trim().to_string(), v.trim().to_string())),
            None => out.push((s.to_string(), s.to_string())),
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                cur.push(',');
                chars.next();
            }
            ',' => {
                push(&cur);
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    push(&cur);
    out
}

/// Runs a query variable's function: `label_values`, `label_names`, `metrics`, `query_result`.
fn query_variable(ds: &dyn DataSource, q: &str, from_ms: i64, to_ms: i64) -> Result<Vec<String>, String> {
    let q = q.trim();
    let call = |name: &str| -> Option<&str> {
        let rest = q.strip_prefix(name)?.trim_start();
        rest.strip_prefix('(')?.strip_suffix(')').map(str::trim)
    };
    if let Some(args) = call("label_values") {
        // The label is the last argument; everything before the last top-level comma is the
        // selector (which may contain commas inside braces).
        let (selector, label) = match split_last_arg(args) {
            Some((sel, label)) => (Some(sel), label),
            None => (None, args),
        };
        if label.is_empty() {
            return Err("label_values() needs a label name".into());
        }
        return ds.label_values(label, selector, from_ms, to_ms);
    }
    if let Some(args) = call("label_names") {
        return ds.label_names(Some(args).filter(|a| !a.is_empty()), from_ms, to_ms);
    }
    if let Some(args) = call("metrics") {
        let re = Regex::new(args).map_err(|e| format!("metrics(): invalid regex: {e}"))?;
        let names = ds.label_values("__name__", None, from_ms, to_ms)?;
        return Ok(names.into_iter().filter(|n| re.is_match(n)).collect());
    }
    if let Some(args) = call("query_result") {
        let rows = ds.instant_query_at(args, to_ms)?;
        return Ok(rows
            .into_iter()
            .map(|(labels, points)| {
                let (t, v) = points.last().copied().unwrap_or((to_ms, f64::NAN));
                format!("{} {} {}", series_text(&labels), v, t)
            })
            .collect());
    }
    if q.is_empty() {
        return Ok(Vec::new());
    }
    Err(format!(
        "unsupported variable query {q:?}: use label_values(), label_names(), metrics() or query_result()"
    ))
}

fn split_last_arg(args: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut last = None;
    let bytes = args.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'{' | b'(' | b'[' if !in_str => depth += 1,
            b'}' | b')' | b']' if !in_str => depth -= 1,
            b',' if !in_str && depth == 0 => last = Some(i),
            _ => {}
        }
        i += 1;
    }
    last.map(|i| (args[..i].trim(), args[i + 1..].trim()))
}

/// `metric{a="b"}` from a label set (`__name__` first, outside the braces).
pub fn series_text(labels: &[(String, String)]) -> String {
    let name = labels.iter().find(|(n, _)| n == "__name__").map(|(_, v)| v.as_str()).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(n, _)| n != "__name__")
        .map(|(n, v)| format!("{n}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

/// Grafana writes variable regexes as `/pattern/flags`; bare patterns are accepted too.
fn compile_grafana_regex(s: &str) -> Result<Regex, regex::Error> {
    let (pattern, flags) =
        match s.strip_prefix('/').and_then(|r| r.rfind('/').map(|i| (&r[..i], &r[i + 1..]))) {
            Some((p, f)) => (p, f),
            None => (s, ""),
        };
    let prefix = if flags.contains('i') { "(?i)" } else { "" };
    Regex::new(&format!("{prefix}{pattern}"))
}

/// Filters options by the regex; a capture group (or the named groups `text` and `value`)
/// extracts what is shown and used.
fn apply_regex(re: &Regex, values: Vec<(String, String)>) -> Vec<(String, String)> {
    values
        .into_iter()
        .filter_map(|(_, v)| {
            let caps = re.captures(&v)?;
            let value =
                caps.name("value").or_else(|| caps.get(1)).map_or(v.as_str(), |m| m.as_str()).to_string();
            let text = caps.name("text").map_or(value.clone(), |m| m.as_str().to_string());
            Some((text, value))
        })
        .collect()
}

/// Orders `node2` before `node10`, as people expect in pickers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut ai, mut bi) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (ai.peek().copied(), bi.peek().copied()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let mut na = String::new();
                while let Some(c) = ai.peek().copied().filter(char::is_ascii_digit) {
                    na.push(c);
                    ai.next();
                }
                let mut nb = String::new();
                while let Some(c) = bi.peek().copied().filter(char::is_ascii_digit) {
                    nb.push(c);
                    bi.next();
                }
                let ord = na.len().cmp(&nb.len()).then(na.cmp(&nb));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                ai.next();
                bi.next();
            }
        }
    }
}

/// The step for a panel: Grafana's `$__interval` from its width, its `maxDataPoints` and its
/// minimum interval (`interval` on the panel or target, else the scrape interval).
pub fn panel_step(p: &Panel, from_ms: i64, to_ms: i64, scrape_ms: i64) -> i64 {
    let width = (p.grid_pos.w.clamp(1, GRID_COLUMNS) * NOMINAL_PAGE_WIDTH_PX / GRID_COLUMNS) as u32;
    let min = p
        .interval
        .as_deref()
        .or_else(|| p.targets.iter().find_map(|t| t.interval.as_deref()))
        .map(|s| s.trim_start_matches('>'))
        .and_then(parse_duration)
        .unwrap_or(scrape_ms);
    choose_step(to_ms - from_ms, width, p.max_data_points, min)
}

/// A panel's queries after variable expansion, ready to run (also incrementally, by the live
/// stream).
#[derive(Clone, Debug, PartialEq)]
pub struct PanelPlan {
    pub id: i64,
    pub title: String,
    pub step_ms: i64,
    pub queries: Vec<PlannedQuery>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedQuery {
    pub ref_id: String,
    pub expr: String,
    /// The legend format with variables expanded; `{{label}}` is filled per series.
    pub legend: String,
    pub instant: bool,
}

/// Plans one panel: its step (`$__interval`) and its visible queries with variables expanded.
pub fn plan_panel(p: &Panel, scope: &Scope, from_ms: i64, to_ms: i64, scrape_ms: i64) -> PanelPlan {
    let step = panel_step(p, from_ms, to_ms, scrape_ms);
    let mut panel_scope = scope.clone();
    panel_scope.builtins = builtins(from_ms, to_ms, step, scrape_ms);
    let kind = p.effective_kind();
    let queries = if matches!(kind, "text" | "row") {
        Vec::new()
    } else {
        p.targets
            .iter()
            .filter(|t| !t.hide && !t.expr.trim().is_empty())
            .map(|t| PlannedQuery {
                ref_id: if t.ref_id.is_empty() { "query".into() } else { t.ref_id.clone() },
                expr: panel_scope.interpolate(&t.expr, Target::Query),
                legend: panel_scope.interpolate(&t.legend_format, Target::Text),
                instant: t.instant
                    || (kind == "table" && !t.extra.get("range").and_then(|v| v.as_bool()).unwrap_or(false)),
            })
            .collect()
    };
    PanelPlan { id: p.id, title: panel_scope.interpolate(&p.title, Target::Text), step_ms: step, queries }
}

/// Plans every panel of a dashboard for a range and the URL's variable selections.
pub fn plan_dashboard(
    ds: &dyn DataSource,
    dashboard: &Dashboard,
    (from_ms, to_ms): (i64, i64),
    url_vars: &[(String, Vec<String>)],
) -> Vec<PanelPlan> {
    let scope = resolve_scope(ds, dashboard, from_ms, to_ms, url_vars).0;
    let scrape_ms = ds.scrape_interval_ms().max(1);
    dashboard
        .all_panels()
        .filter(|p| !p.is_row())
        .map(|p| plan_panel(p, &scope, from_ms, to_ms, scrape_ms))
        .collect()
}

fn resolve_scope(
    ds: &dyn DataSource,
    dashboard: &Dashboard,
    from_ms: i64,
    to_ms: i64,
    url_vars: &[(String, Vec<String>)],
) -> (Scope, Vec<VariableState>) {
    let scrape_ms = ds.scrape_interval_ms().max(1);
    let mut scope =
        Scope { selections: Vec::new(), builtins: builtins(from_ms, to_ms, scrape_ms, scrape_ms) };
    let mut variables = Vec::new();
    for var in &dashboard.templating.list {
        let state = resolve_variable(ds, var, &scope, url_vars, from_ms, to_ms);
        scope.selections.push(selection_of(var, &state));
        variables.push(state);
    }
    (scope, variables)
}

/// The series name a legend format gives a label set.
pub fn series_name(legend_format: &str, labels: &[(String, String)]) -> String {
    match legend_format.trim() {
        "" | "__auto" => series_text(labels),
        f => legend(f, labels),
    }
}

fn run_panel(
    ds: &dyn DataSource,
    p: &Panel,
    scope: &Scope,
    from_ms: i64,
    to_ms: i64,
    scrape_ms: i64,
) -> PanelResult {
    // The panel's datasource (or, without one, its first query's) may be an external one.
    let reference = if p.datasource.is_null() {
        p.targets.iter().map(|t| &t.datasource).find(|d| !d.is_null()).cloned().unwrap_or_default()
    } else {
        p.datasource.clone()
    };
    let external = if reference.is_null() { None } else { ds.for_datasource(&reference) };
    let ds: &dyn DataSource = external.as_deref().unwrap_or(ds);
    let plan = plan_panel(p, scope, from_ms, to_ms, scrape_ms);
    let step = plan.step_ms;
    // Grafana aligns range queries to the step so successive refreshes hit the same points; the
    // end rounds up so the newest samples are always inside the range.
    let start = from_ms.div_euclid(step) * step;
    let end = (to_ms + step - 1).div_euclid(step) * step;
    let mut result = PanelResult {
        id: p.id,
        title: plan.title.clone(),
        data: PanelData { start_ms: from_ms, end_ms: to_ms, step_ms: step, ..PanelData::default() },
        ..PanelResult::default()
    };
    for q in &plan.queries {
        let answer = if q.instant {
            ds.instant_query_at(&q.expr, to_ms)
        } else {
            ds.range_query(&q.expr, start, end, step)
        };
        match answer {
            Ok(series) => {
                for (labels, points) in series {
                    push_series(&mut result, &q.legend, labels, points);
                }
            }
            Err(e) => {
                if result.error.is_none() {
                    result.error = Some(format!("{}: {e}", q.ref_id));
                }
            }
        }
    }
    result
}

fn push_series(
    result: &mut PanelResult,
    legend_format: &str,
    labels: Vec<(String, String)>,
    points: Vec<(i64, f64)>,
) {
    let name = series_name(legend_format, &labels);
    // Non-finite values are gaps when drawn, and JSON cannot carry them.
    let points = points.into_iter().filter(|(_, v)| v.is_finite()).collect();
    result.data.series.push(Series { name, points });
    result.labels.push(labels);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::dashboard_from_value;
    use crate::model::QuerySeries;
    use serde_json::json;
    use std::sync::Mutex;

    #[test]
    fn panels_run_in_parallel_come_back_in_order() {
        let items: Vec<u64> = (0..37).collect();
        let out = map_in_parallel(&items, |&i| {
            // Uneven work, so threads finish out of order.
            std::thread::sleep(std::time::Duration::from_millis((i * 7) % 5));
            i * 10
        });
        assert_eq!(out, items.iter().map(|i| i * 10).collect::<Vec<_>>());
        assert!(map_in_parallel(&[] as &[u64], |&i| i).is_empty());
    }

    /// A data source over fixed series, recording the queries it was asked.
    struct Fake {
        asked: Mutex<Vec<String>>,
    }

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    impl DataSource for Fake {
        fn range_query(
            &self,
            expr: &str,
            start: i64,
            end: i64,
            step: i64,
        ) -> Result<Vec<QuerySeries>, String> {
            self.asked.lock().unwrap().push(format!("range {expr} {start} {end} {step}"));
            if expr.contains("bad") {
                return Err("parse error at char 4: unexpected end".into());
            }
            Ok(vec![(l(&[("__name__", "up"), ("instance", "a")]), vec![(start, 1.0), (end, f64::NAN)])])
        }
        fn instant_query_at(&self, expr: &str, t: i64) -> Result<Vec<QuerySeries>, String> {
            self.asked.lock().unwrap().push(format!("instant {expr} {t}"));
            Ok(vec![(l(&[("job", "x")]), vec![(t, 2.5)])])
        }
        fn label_values(
            &self,
            label: &str,
            sel: Option<&str>,
            _: i64,
            _: i64,
        ) -> Result<Vec<String>, String> {
            self.asked.lock().unwrap().push(format!("values {label} {sel:?}"));
            Ok(match label {
                "job" => vec!["node".into(), "api".into()],
                "instance" => vec!["host10:9100".into(), "host2:9100".into(), "other".into()],
                _ => vec![],
            })
        }
        fn label_names(&self, _: Option<&str>, _: i64, _: i64) -> Result<Vec<String>, String> {
            Ok(vec!["job".into()])
        }
        fn scrape_interval_ms(&self) -> i64 {
            15_000
        }
    }

    fn dash() -> Dashboard {
        dashboard_from_value(json!({
            "title": "T",
            "templating": {"list": [
                {"type": "query", "name": "job", "query": "label_values(job)", "current": {"value": "node"}},
                {"type": "query", "name": "instance", "query": {"query": "label_values(up{job=\"$job\"}, instance)"},
                 "regex": "/(host.*):.*/", "multi": true, "includeAll": true},
                {"type": "custom", "name": "q", "query": "0.5,p90 : 0.9,0.99"}
            ]},
            "panels": [
                {"id": 1, "type": "timeseries", "title": "Up of $job", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
                 "targets": [{"refId": "A", "expr": "up{job=\"$job\",instance=~\"$instance\"}", "legendFormat": "{{instance}} q=$q"}]},
                {"id": 2, "type": "row", "title": "r", "collapsed": true, "panels": [
                    {"id": 3, "type": "table", "title": "t", "targets": [{"refId": "A", "expr": "sum(up)"}]}]},
                {"id": 4, "type": "stat", "title": "bad", "targets": [{"refId": "B", "expr": "bad("}]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn variables_chain_and_panels_query() {
        let ds = Fake { asked: Mutex::new(Vec::new()) };
        let view = load_view(&ds, dash(), DashboardMeta::default(), (3_600_000, 7_200_000), &[]);
        let asked = ds.asked.lock().unwrap().clone();
        assert!(asked.contains(&"values instance Some(\"up{job=\\\"node\\\"}\")".to_string()), "{asked:?}");
        let inst = &view.variables[1];
        assert_eq!(inst.options[0], ("All".to_string(), ALL.to_string()));
        assert_eq!(inst.options[1..], [("host2".into(), "host2".into()), ("host10".into(), "host10".into())]);
        assert_eq!(inst.selected, vec![ALL]);
        assert_eq!(view.variables[2].options[1], ("p90".to_string(), "0.9".to_string()));
        let p1 = &view.panels[0];
        assert_eq!(p1.title, "Up of node");
        // 1 h over 800 px → 4.5 s, rounded up to the scrape interval floor of 15 s.
        assert_eq!(p1.data.step_ms, 15_000);
        assert!(
            asked.iter().any(|q| q
                .starts_with("range up{job=\"node\",instance=~\"(host2|host10)\"} 3600000 7200000 15000")),
            "{asked:?}"
        );
        assert_eq!(p1.data.series[0].name, "a q=0.5");
        assert_eq!(p1.data.series[0].points.len(), 1, "NaN dropped");
        // The collapsed row's table runs as an instant query at the end of the range.
        assert_eq!(view.panels[1].id, 3);
        assert!(asked.contains(&"instant sum(up) 7200000".to_string()));
        assert_eq!(view.panels[2].error.as_deref(), Some("B: parse error at char 4: unexpected end"));
    }

    #[test]
    fn url_selection_wins_and_ranges_resolve() {
        let ds = Fake { asked: Mutex::new(Vec::new()) };
        let url =
            vec![("job".to_string(), vec!["api".to_string()]), ("instance".into(), vec!["host2".into()])];
        let view = load_view(&ds, dash(), DashboardMeta::default(), (0, 3_600_000), &url);
        assert_eq!(view.variables[0].selected, vec!["api"]);
        assert_eq!(view.variables[1].selected, vec!["host2"]);
        assert_eq!(view.panels[0].title, "Up of api");
        let d = dash();
        assert_eq!(resolve_range(&d, Some("now-1h"), Some("now"), 10_000_000), (6_400_000, 10_000_000));
        assert_eq!(resolve_range(&d, None, None, 30_000_000), (30_000_000 - 21_600_000, 30_000_000));
        assert_eq!(resolve_range(&d, Some("5000"), Some("1000"), 30_000_000), (1000 - 3_600_000, 1000));
    }

    #[test]
    fn helpers() {
        assert_eq!(split_last_arg("up{a=\"x,y\"}, instance"), Some(("up{a=\"x,y\"}", "instance")));
        assert_eq!(split_last_arg("instance"), None);
        assert_eq!(
            split_custom("a, b\\,c , d : e"),
            vec![("a".into(), "a".into()), ("b,c".into(), "b,c".into()), ("d".into(), "e".into())]
        );
        assert_eq!(series_text(&l(&[("__name__", "up"), ("job", "a\"b")])), "up{job=\"a\\\"b\"}");
        assert_eq!(natural_cmp("node2", "node10"), std::cmp::Ordering::Less);
    }
}
