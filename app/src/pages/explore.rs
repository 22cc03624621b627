//! Explore: Prometheus's expression browser, with the query in the address (`expr`, `tab`,
//! `range`, `step`), so every result is a link. The Table tab evaluates the expression now;
//! the Graph tab runs a range query and draws it with the dashboards' chart code. Syntax errors
//! are shown at their line and column. Metric names (and, after `{`, the metric's label names)
//! are suggested while typing. The form is a plain GET form, so it works before hydration; after
//! hydration it navigates in place.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_location;

use crate::chart::PanelData;
use crate::dashboard::url::Query;
use crate::model::QueryTable;

/// The Graph tab's range choices.
const RANGES: &[&str] = &["5m", "15m", "1h", "3h", "6h", "12h", "1d", "2d", "7d"];

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExploreResult {
    pub table: Option<QueryTable>,
    pub graph: Option<PanelData>,
    pub error: Option<String>,
    pub step_ms: i64,
}

/// Runs the page's query string: the table or the graph.
#[server(output = crate::wire::Json)]
pub async fn explore(search: String) -> Result<ExploreResult, ServerFnError> {
    let backend = crate::model::backend()?;
    let q = Query::parse(&search);
    let expr = q.get("expr").unwrap_or_default().trim().to_string();
    if expr.is_empty() {
        return Ok(ExploreResult::default());
    }
    if let Err(msg) = backend.check_query(&expr) {
        return Ok(ExploreResult {
            error: Some(super::editor::locate_error(&expr, &msg)),
            ..Default::default()
        });
    }
    if q.get("tab") != Some("graph") {
        return Ok(match backend.instant_query(&expr) {
            Ok(t) => ExploreResult { table: Some(t), ..Default::default() },
            Err(e) => ExploreResult { error: Some(e), ..Default::default() },
        });
    }
    let now = crate::time::now_ms();
    let range = q.get("range").and_then(crate::dashboard::timerange::parse_duration).unwrap_or(3_600_000);
    let start = now - range;
    let step = q
        .get("step")
        .and_then(crate::dashboard::timerange::parse_duration)
        .filter(|&s| s > 0)
        .unwrap_or_else(|| crate::chart::choose_step(range, 1200, None, backend.scrape_interval_ms().max(1)));
    match backend.range_query(&expr, start, now, step) {
        Ok(series) => {
            let series = series
                .into_iter()
                .map(|(labels, points)| crate::chart::Series {
                    name: crate::dashboard::load::series_text(&labels),
                    points: points.into_iter().filter(|p| p.1.is_finite()).collect(),
                })
                .collect();
            Ok(ExploreResult {
                graph: Some(PanelData {
                    series,
                    start_ms: start,
                    end_ms: now,
                    step_ms: step,
                    ..PanelData::default()
                }),
                step_ms: step,
                ..Default::default()
            })
        }
        Err(e) => Ok(ExploreResult { error: Some(e), ..Default::default() }),
    }
}

/// Metric names for suggestions, or with `metric` non-empty, that metric's label names.
#[server(output = crate::wire::Json)]
pub async fn suggestions(metric: String) -> Result<Vec<String>, ServerFnError> {
    let backend = crate::model::backend()?;
    let now = crate::time::now_ms();
    let from = now - 3_600_000;
    let found = if metric.is_empty() {
        backend.label_values("__name__", None, from, now)
    } else {
        backend.label_names(Some(&metric), from, now)
    };
    found.map_err(ServerFnError::new)
}

/// What the user is typing at the end of the text: a metric name prefix, or (after `name{`) a
/// label name prefix of that metric.
pub fn completion_context(text: &str) -> Option<(Option<String>, String)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let prefix_start = text.rfind(|c: char| !is_ident(c)).map_or(0, |i| i + 1);
    let prefix = &text[prefix_start..];
    let before = &text[..prefix_start];
    // Inside an open `{…` whose metric name precedes it: label names.
    if let Some(open) = before.rfind('{') {
        if !before[open..].contains('}') {
            let head = &before[..open];
            let start = head.rfind(|c: char| !is_ident(c)).map_or(0, |i| i + 1);
            let metric = &head[start..];
            let after_sep = before[open + 1..].trim_end();
            if after_sep.is_empty() || after_sep.ends_with(',') {
                return Some((Some(metric.to_string()), prefix.to_string()));
            }
            return None;
        }
    }
    if prefix.is_empty() || prefix.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((None, prefix.to_string()))
}

#[component]
pub fn ExplorePage() -> impl IntoView {
    let location = use_location();
    let search = move || location.search.get();
    let result = Resource::new(search, explore);
    let query = move || Query::parse(&search());
    let text = RwSignal::new(String::new());
    // The textarea follows the address's expression (back/forward, shared links), but switching
    // tabs does not undo what was typed.
    let url_expr = Memo::new(move |_| query().get("expr").unwrap_or_default().to_string());
    Effect::new(move |_| text.set(url_expr.get()));
    let names = RwSignal::new(Vec::<String>::new());
    let labels = RwSignal::new((String::new(), Vec::<String>::new()));
    let context = move || completion_context(&text.get());
    let shown = move || -> Vec<String> {
        match context() {
            Some((None, prefix)) => {
                names.get().into_iter().filter(|n| n.starts_with(&prefix) && *n != prefix).take(12).collect()
            }
            Some((Some(metric), prefix)) => {
                let (for_metric, list) = labels.get();
                if for_metric != metric {
                    leptos::task::spawn_local(async move {
                        if let Ok(list) = suggestions(metric.clone()).await {
                            labels.set((metric, list));
                        }
                    });
                    return Vec::new();
                }
                list.into_iter().filter(|n| n.starts_with(&prefix) && n != "__name__").take(12).collect()
            }
            None => Vec::new(),
        }
    };
    // Refreshed on every focus (new metrics appear as targets are scraped), and while typing
    // until the first list arrives.
    let fetch_names = move || {
        leptos::task::spawn_local(async move {
            if let Ok(list) = suggestions(String::new()).await {
                names.set(list);
            }
        });
    };
    let load_names = move |_| fetch_names();
    let accept = move |word: String| {
        text.update(|t| {
            let keep = t.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':').len();
            t.truncate(keep);
            t.push_str(&word);
        });
    };
    let tab = move || query().get("tab").unwrap_or("table").to_string();
    let range = move || query().get("range").unwrap_or("1h").to_string();
    let tab_href = move |t: &'static str| {
        let q = query().with("tab", Some(t)).with("expr", Some(&text.get()));
        format!("/explore{}", q.to_search())
    };
    view! {
        <Title text="Explore" />
        <h1>"Explore"</h1>
        <Form method="GET" action="/explore" attr:class="query-form">
            <label for="expr" class="muted">"PromQL expression"</label>
            <textarea id="expr" name="expr" rows="3" spellcheck="false" autocomplete="off"
                placeholder="rate(vigil_http_requests_total[5m])"
                prop:value=move || text.get()
                on:focus=load_names
                on:input=move |ev| {
                    text.set(event_target_value(&ev));
                    if names.get_untracked().is_empty() {
                        fetch_names();
                    }
                }></textarea>
            <ul class="suggestions" id="suggestions">
                {move || shown().into_iter().map(|s| {
                    let word = s.clone();
                    view! { <li><button type="button" class="suggestion" on:click=move |_| accept(word.clone())>{s}</button></li> }
                }).collect_view()}
            </ul>
            <input type="hidden" name="tab" prop:value=tab />
            <div class="explore-controls">
                <label>"Range "
                    <select name="range">
                        {RANGES.iter().map(|r| view! { <option value=*r selected=move || range() == *r>{*r}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Step "<input type="text" name="step" size="6" placeholder="auto"
                    prop:value=move || query().get("step").unwrap_or_default().to_string() /></label>
                <button type="submit" class="primary">"Run query"</button>
            </div>
        </Form>
        <nav class="tabs">
            <a href=move || tab_href("table") class:active=move || tab() != "graph" id="tab-table">"Table"</a>
            <a href=move || tab_href("graph") class:active=move || tab() == "graph" id="tab-graph">"Graph"</a>
        </nav>
        <div id="query-result">
            <Suspense fallback=|| view! { <p class="muted">"Running…"</p> }>
                {move || Suspend::new(async move {
                    match result.await {
                        Err(e) => view! { <pre class="error" id="query-error">{crate::pages::error_text(&e)}</pre> }.into_any(),
                        Ok(r) => match (r.error, r.table, r.graph) {
                            (Some(e), _, _) => view! { <pre class="error" id="query-error">{e}</pre> }.into_any(),
                            (None, Some(table), _) => view! { <ResultTable table /> }.into_any(),
                            (None, None, Some(data)) => view! { <ResultGraph data /> }.into_any(),
                            _ => view! {
                                <p class="muted">"Results of the expression appear here: as a table evaluated now, or as a graph over the range."</p>
                            }.into_any(),
                        },
                    }
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn ResultGraph(data: PanelData) -> impl IntoView {
    let count = data.series.len();
    let signal = RwSignal::new(data);
    let result = crate::model::PanelResult { id: 0, title: "Graph".into(), ..Default::default() };
    let panel =
        crate::dashboard::Panel { kind: "timeseries".into(), title: String::new(), ..Default::default() };
    view! {
        <p class="muted">{format!("{count} series")}</p>
        <div class="explore-graph" id="query-graph">
            <super::dashboard::PanelPreview panel result data=signal theme=crate::chart::Theme::Light />
        </div>
    }
}

#[component]
fn ResultTable(table: QueryTable) -> impl IntoView {
    let count = table.rows.len();
    view! {
        <p class="muted">{format!("{} result{} · {}", count, if count == 1 { "" } else { "s" }, table.result_type)}</p>
        {table.warnings.into_iter().map(|w| view! { <p class="warning">{w}</p> }).collect_view()}
        <table class="grid" id="query-table">
            <thead><tr><th>"Series"</th><th>"Value"</th></tr></thead>
            <tbody>
                {table.rows.into_iter().map(|(series, value)| view! {
                    <tr><td class="series">{series}</td><td class="value">{value}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_contexts() {
        assert_eq!(completion_context("rate(vigil_ht"), Some((None, "vigil_ht".into())));
        assert_eq!(completion_context("up{"), Some((Some("up".into()), String::new())));
        assert_eq!(completion_context("up{job=\"x\", ins"), Some((Some("up".into()), "ins".into())));
        assert_eq!(completion_context("up{job=\"x"), None);
        assert_eq!(completion_context("up{job=\"x\"} + 1"), None);
        assert_eq!(completion_context(""), None);
    }
}
