//! The dashboard page, `/d/:uid/:slug`: header with time and refresh pickers, the variables bar,
//! and the panel grid. Everything the page shows follows its address (`from`, `to`, `refresh`,
//! `var-<name>`, `viewPanel`), read through [`Query`]; every control rewrites the address, so the
//! address bar is always a working share link, and the pickers are plain links and forms that
//! work before the WebAssembly arrives.
//!
//! One server function, [`load_dashboard`], answers the dashboard, its resolved variables and
//! every panel's data in one round trip. The server paints each chart's first frame as SVG into
//! the HTML ([`crate::chart::render_svg`]); once hydrated, the browser draws the same data on a
//! canvas with the same code, and adds hover tooltips, a crosshair shared between panels, and
//! drag-to-zoom.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_navigate, use_params_map};

use crate::chart::{self, ChartOptions, PanelKind, Theme};
use crate::dashboard::timerange::{describe_range, format_absolute, QUICK_RANGES, REFRESH_INTERVALS};
use crate::dashboard::url::Query;
use crate::dashboard::{markdown, Panel, GRID_COLUMNS, GRID_ROW_PX};
use crate::model::{DashboardView, PanelResult, VariableState};

/// Loads a dashboard with its variables and all panel data for the page's query string.
#[server]
pub async fn load_dashboard(uid: String, search: String) -> Result<DashboardView, ServerFnError> {
    use crate::dashboard::load;
    let backend = crate::model::backend()?;
    let (dashboard, meta) =
        backend.dashboard(&uid).ok_or_else(|| ServerFnError::new(format!("Dashboard {uid:?} not found")))?;
    let q = Query::parse(&search);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let range = load::resolve_range(&dashboard, q.get("from"), q.get("to"), now);
    let source: &dyn crate::model::DataSource = backend.as_ref();
    Ok(load::load_view(source, dashboard, meta, range, &q.variables()))
}

/// The hovered time, shared by the panels of a dashboard with a shared crosshair.
#[derive(Clone, Copy)]
struct SharedHover(RwSignal<Option<i64>>);

fn theme_of(q: &Query) -> Theme {
    match q.get("theme") {
        Some("dark") => Theme::Dark,
        Some("light") => Theme::Light,
        _ => current_theme(),
    }
}

#[cfg(feature = "hydrate")]
fn current_theme() -> Theme {
    let dark = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
        .and_then(|e| e.get_attribute("data-theme"))
        .is_some_and(|t| t == "dark");
    if dark {
        Theme::Dark
    } else {
        Theme::Light
    }
}

#[cfg(not(feature = "hydrate"))]
fn current_theme() -> Theme {
    Theme::Light
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let params = use_params_map();
    let location = use_location();
    let uid = move || params.read().get("uid").unwrap_or_default();
    let search = move || location.search.get();
    let view = Resource::new(move || (uid(), search()), |(uid, search)| load_dashboard(uid, search));
    let hover = SharedHover(RwSignal::new(None));
    provide_context(hover);
    view! {
        <Suspense fallback=|| view! { <p class="muted loading">"Loading dashboard…"</p> }>
            {move || Suspend::new(async move {
                match view.await {
                    Ok(v) => {
                        let q = Query::parse(&search());
                        view! { <DashboardBody view=v query=q path=location.pathname.get_untracked() refetch=move || view.refetch() /> }.into_any()
                    }
                    Err(e) => view! {
                        <Title text="Dashboard" />
                        <h1>"Dashboard"</h1>
                        <p class="error" id="dashboard-error">{crate::pages::error_text(&e)}</p>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn DashboardBody(
    view: DashboardView,
    query: Query,
    path: String,
    refetch: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let d = &view.dashboard;
    let title = d.title.clone();
    let refresh = query.get("refresh").map(str::to_string).or_else(|| d.refresh.clone()).unwrap_or_default();
    let view_panel = query.get("viewPanel").and_then(|s| s.parse::<i64>().ok());
    let theme = theme_of(&query);
    let shared = d.graph_tooltip >= 1;
    let tags = d.tags.clone();
    let placed = layout(&view, view_panel);
    let panels = placed
        .into_iter()
        .map(|item| match item {
            Placed::Row { panel, y, collapsed } => {
                let href = path.clone() + &query.with("viewPanel", None).to_search();
                view! {
                    <div class="dash-row" style=format!("grid-column: 1 / span {GRID_COLUMNS}; grid-row: {} / span 1", y + 1)>
                        <a href=href class="row-title" title=if collapsed { "Collapsed row" } else { "Row" }>
                            {if collapsed { "▸ " } else { "▾ " }}{panel.title.clone()}
                        </a>
                    </div>
                }
                .into_any()
            }
            Placed::Panel { panel, result, x, y, w, h } => {
                let style = format!("grid-column: {} / span {w}; grid-row: {} / span {h}", x + 1, y + 1);
                let view_href = path.clone() + &query.with("viewPanel", Some(&panel.id.to_string())).to_search();
                view! {
                    <PanelBox panel result style theme shared view_href />
                }
                .into_any()
            }
        })
        .collect_view();
    let back = view_panel.map(|_| path.clone() + &query.with("viewPanel", None).to_search());
    view! {
        <Title text=title.clone() />
        <div class="dash-header">
            <h1 id="dashboard-title">{title}</h1>
            <span class="tags">{tags.into_iter().map(|t| view! { <span class="tag">{t}</span> }).collect_view()}</span>
            <div class="dash-controls">
                <TimePicker query=query.clone() path=path.clone() from_ms=view.from_ms to_ms=view.to_ms />
                <RefreshPicker query=query.clone() path=path.clone() refresh=refresh.clone() refetch=refetch.clone() />
            </div>
        </div>
        {back.map(|href| view! { <p><a href=href id="back-to-dashboard">"← Back to the dashboard"</a></p> })}
        <VariablesBar variables=view.variables.clone() query=query.clone() path=path.clone() />
        <div class="dash-grid" class:single=view_panel.is_some() style=format!("grid-auto-rows: {GRID_ROW_PX}px")>
            {panels}
        </div>
        <AutoRefresh refresh refetch />
    }
    .into_any()
}

/// Re-runs the page's queries every `refresh` (Grafana's auto-refresh), in the browser only.
#[component]
fn AutoRefresh(refresh: String, refetch: impl Fn() + Clone + Send + Sync + 'static) -> impl IntoView {
    let ms = crate::dashboard::timerange::parse_duration(&refresh).filter(|&ms| ms >= 1000);
    #[cfg(feature = "hydrate")]
    {
        if let Some(ms) = ms {
            if let Ok(handle) = set_interval_with_handle(refetch, std::time::Duration::from_millis(ms as u64))
            {
                on_cleanup(move || handle.clear());
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ms, refetch);
}

enum Placed {
    Row { panel: Panel, y: i64, collapsed: bool },
    Panel { panel: Panel, result: PanelResult, x: i64, y: i64, w: i64, h: i64 },
}

/// Grid positions for the page: rows and the panels they show. Collapsed rows hide their
/// panels; with `viewPanel` only that panel is shown, filling the page.
fn layout(view: &DashboardView, view_panel: Option<i64>) -> Vec<Placed> {
    let result_of = |id: i64| view.panels.iter().find(|r| r.id == id).cloned().unwrap_or_default();
    if let Some(id) = view_panel {
        return view
            .dashboard
            .panel(id)
            .filter(|p| !p.is_row())
            .map(|p| {
                vec![Placed::Panel {
                    panel: p.clone(),
                    result: result_of(id),
                    x: 0,
                    y: 0,
                    w: GRID_COLUMNS,
                    h: 24,
                }]
            })
            .unwrap_or_default();
    }
    let mut out = Vec::new();
    for p in &view.dashboard.panels {
        if p.is_row() {
            out.push(Placed::Row {
                panel: p.clone(),
                y: p.grid_pos.y,
                collapsed: p.collapsed.unwrap_or(false),
            });
        } else {
            let g = p.grid_pos;
            out.push(Placed::Panel {
                panel: p.clone(),
                result: result_of(p.id),
                x: g.x.clamp(0, GRID_COLUMNS - 1),
                y: g.y.max(0),
                w: g.w.clamp(1, GRID_COLUMNS),
                h: g.h.max(1),
            });
        }
    }
    out
}

/// The drawing options a panel's JSON asks for (Grafana's field config and options).
pub fn chart_options(panel: &Panel, theme: Theme) -> ChartOptions {
    let d = &panel.field_config.defaults;
    let custom = d.extra.get("custom");
    let num = |v: Option<&serde_json::Value>, key: &str| v.and_then(|c| c.get(key)).and_then(|x| x.as_f64());
    let thresholds = d.thresholds.as_ref().map(|t| {
        let base = t
            .steps
            .iter()
            .find(|s| s.value.is_none())
            .map(|s| s.color.clone())
            .unwrap_or_else(|| "green".into());
        chart::Thresholds {
            base_color: base,
            steps: t.steps.iter().filter_map(|s| s.value.map(|v| (v, s.color.clone()))).collect(),
        }
    });
    let options = &panel.options;
    let calc = options
        .get("reduceOptions")
        .and_then(|r| r.get("calcs"))
        .and_then(|c| c.get(0))
        .and_then(|c| c.as_str())
        .map(chart::Calc::from_grafana)
        .unwrap_or_default();
    ChartOptions {
        unit: d.unit.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| "short".into()),
        decimals: d.decimals,
        min: d.min,
        max: d.max,
        thresholds,
        theme,
        draw_style: match custom.and_then(|c| c.get("drawStyle")).and_then(|s| s.as_str()) {
            Some("bars") => chart::DrawStyle::Bars,
            Some("points") => chart::DrawStyle::Points,
            _ => chart::DrawStyle::Line,
        },
        fill_opacity: num(custom, "fillOpacity").unwrap_or(0.0),
        line_width: num(custom, "lineWidth").unwrap_or(1.0),
        // The page draws the legend as HTML below the chart.
        show_legend: false,
        calc,
        color_mode: match options.get("colorMode").and_then(|s| s.as_str()) {
            Some("background") => chart::ColorMode::Background,
            Some("none") => chart::ColorMode::None,
            _ => chart::ColorMode::Value,
        },
        sparkline: options.get("graphMode").and_then(|s| s.as_str()) != Some("none"),
        ..ChartOptions::default()
    }
}

#[component]
fn PanelBox(
    panel: Panel,
    result: PanelResult,
    style: String,
    theme: Theme,
    shared: bool,
    view_href: String,
) -> impl IntoView {
    let kind = panel.effective_kind().to_string();
    let title = if result.title.is_empty() { panel.title.clone() } else { result.title.clone() };
    let description = panel.description.clone();
    let error = result.error.clone();
    let id = panel.id;
    let body = match (kind.as_str(), PanelKind::from_grafana(&kind)) {
        ("text", _) => {
            let html = markdown::render(&panel.text_content());
            view! { <div class="panel-text" inner_html=html></div> }.into_any()
        }
        ("table", _) => view! { <TablePanel result=result.clone() panel=panel.clone() /> }.into_any(),
        (_, Some(chart_kind)) => {
            let opts = chart_options(&panel, theme);
            view! { <ChartPanel kind=chart_kind result=result.clone() opts shared /> }.into_any()
        }
        (other, None) => view! {
            <div class="panel-unsupported">{format!("Panel type {other:?} is not supported")}</div>
        }
        .into_any(),
    };
    view! {
        <section class="panel" style=style data-panel-id=id.to_string() data-panel-type=kind.clone()>
            <header class="panel-header">
                <h2 class="panel-title" title=description>{title}</h2>
                <a class="panel-link" href=view_href title="View this panel alone">"View"</a>
            </header>
            {error.map(|e| view! { <div class="panel-error" role="alert">{e}</div> })}
            <div class="panel-body">{body}</div>
        </section>
    }
}

/// Legend rows: colour, name and min/max/mean/last in the panel's unit.
fn legend_rows(result: &PanelResult, opts: &ChartOptions) -> Vec<(String, String, [String; 4])> {
    let f = |v: Option<f64>| {
        v.map(|v| chart::units::format_value(v, &opts.unit, opts.decimals)).unwrap_or_else(|| "-".into())
    };
    result
        .data
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let st = chart::legend_stats(&s.points);
            (
                chart::series_color(i).to_string(),
                s.name.clone(),
                [f(st.min), f(st.max), f(st.mean), f(st.last)],
            )
        })
        .collect()
}

#[component]
fn ChartPanel(kind: PanelKind, result: PanelResult, opts: ChartOptions, shared: bool) -> impl IntoView {
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();
    let frame_ref = NodeRef::<leptos::html::Div>::new();
    // The server's first frame; the browser keeps it through hydration and replaces it with
    // the canvas drawing, so the string is only computed on the server.
    #[cfg(feature = "ssr")]
    let svg = chart::render_svg(kind, &result.data, &opts, 640, 240).unwrap_or_default();
    #[cfg(not(feature = "ssr"))]
    let svg = String::new();
    let legend = if kind == PanelKind::TimeSeries { legend_rows(&result, &opts) } else { Vec::new() };
    let tooltip = RwSignal::new(None::<(f64, Vec<String>)>);
    let drag = RwSignal::new(None::<(f64, f64)>);
    let hover = use_context::<SharedHover>().map(|h| h.0);
    let geometry = StoredValue::new(None::<chart::PlotGeometry>);
    let data = StoredValue::new(result.data.clone());
    let draw_opts = StoredValue::new(opts.clone());

    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let Some(canvas) = canvas_ref.get() else { return };
        let drawn = data.with_value(|d| draw_opts.with_value(|o| chart::draw_on_canvas(&canvas, kind, d, o)));
        match drawn {
            Ok(geo) => {
                geometry.set_value(Some(geo));
                if let Some(frame) = frame_ref.get() {
                    frame.set_inner_html("");
                }
                let _ = canvas.set_attribute("data-drawn", "true");
            }
            Err(e) => leptos::logging::warn!("panel drawing failed: {e}"),
        }
    });

    let crosshair_x = move || {
        if !shared {
            return None;
        }
        let t = hover.and_then(|h| h.get())?;
        let geo = geometry.get_value()?;
        let x = geo.x_of(t);
        (x >= geo.left && x <= geo.left + geo.width).then_some(x)
    };
    let on_move = move |ev: leptos::ev::MouseEvent| {
        let Some(geo) = geometry.get_value() else { return };
        let (x, y) = (f64::from(ev.offset_x()), f64::from(ev.offset_y()));
        if !geo.contains(x, y) {
            tooltip.set(None);
            if let Some(h) = hover {
                h.set(None);
            }
            return;
        }
        let t = geo.time_at(x);
        if let Some(h) = hover {
            h.set(Some(t));
        }
        if let Some((x0, _)) = drag.get_untracked() {
            drag.set(Some((x0, x)));
        }
        let lines = data.with_value(|d| {
            let mut lines = vec![crate::time::format_utc(t)];
            for (s, v) in d.series.iter().zip(chart::values_at(d, t)) {
                if let Some((_, v)) = v {
                    lines.push(format!(
                        "{}: {}",
                        s.name,
                        draw_opts.with_value(|o| chart::units::format_value(v, &o.unit, o.decimals))
                    ));
                }
            }
            lines
        });
        tooltip.set(Some((x, lines)));
    };
    let on_leave = move |_| {
        tooltip.set(None);
        drag.set(None);
        if let Some(h) = hover {
            h.set(None);
        }
    };
    let on_down = move |ev: leptos::ev::MouseEvent| {
        if kind == PanelKind::TimeSeries {
            let x = f64::from(ev.offset_x());
            drag.set(Some((x, x)));
        }
    };
    let on_up = move |ev: leptos::ev::MouseEvent| {
        let Some((x0, _)) = drag.get_untracked() else { return };
        drag.set(None);
        let x1 = f64::from(ev.offset_x());
        let Some(geo) = geometry.get_value() else { return };
        if (x1 - x0).abs() < 5.0 {
            return;
        }
        let (a, b) = (geo.time_at(x0.min(x1)), geo.time_at(x0.max(x1)));
        let location = use_location();
        let q = Query::parse(&location.search.get_untracked())
            .with("from", Some(&a.to_string()))
            .with("to", Some(&b.to_string()));
        use_navigate()(
            &format!("{}{}", location.pathname.get_untracked(), q.to_search()),
            Default::default(),
        );
    };

    view! {
        <div class="chart" class:timeseries=kind == PanelKind::TimeSeries>
            <div class="plot">
                <div class="svg-frame" node_ref=frame_ref inner_html=svg></div>
                <canvas node_ref=canvas_ref on:mousemove=on_move on:mouseleave=on_leave on:mousedown=on_down on:mouseup=on_up></canvas>
                {move || crosshair_x().map(|x| view! { <div class="crosshair" style=format!("left:{x}px")></div> })}
                {move || drag.get().filter(|(a, b)| (a - b).abs() > 1.0).map(|(a, b)| view! {
                    <div class="zoom-select" style=format!("left:{}px;width:{}px", a.min(b), (a - b).abs())></div>
                })}
                {move || tooltip.get().map(|(x, lines)| view! {
                    <div class="tooltip" style=format!("left:{}px", x + 12.0)>
                        {lines.into_iter().map(|l| view! { <div>{l}</div> }).collect_view()}
                    </div>
                })}
            </div>
            {(!legend.is_empty()).then(|| view! {
                <table class="legend">
                    <thead><tr><th></th><th>"Min"</th><th>"Max"</th><th>"Mean"</th><th>"Last"</th></tr></thead>
                    <tbody>
                        {legend.into_iter().map(|(color, name, stats)| view! {
                            <tr>
                                <td class="legend-name"><span class="swatch" style=format!("background:{color}")></span>{name}</td>
                                {stats.into_iter().map(|s| view! { <td>{s}</td> }).collect_view()}
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </div>
    }
}

/// `table` panels: one row per series, its labels as columns, the last value, sortable by any
/// column (click a header).
#[component]
fn TablePanel(result: PanelResult, panel: Panel) -> impl IntoView {
    let opts = chart_options(&panel, Theme::Light);
    let mut columns: Vec<String> = Vec::new();
    for labels in &result.labels {
        for (n, _) in labels {
            if !columns.contains(n) {
                columns.push(n.clone());
            }
        }
    }
    columns.sort_by_key(|c| (c != "__name__", c.clone()));
    let rows: Vec<(Vec<String>, f64)> = result
        .labels
        .iter()
        .zip(&result.data.series)
        .map(|(labels, s)| {
            let cells = columns
                .iter()
                .map(|c| labels.iter().find(|(n, _)| n == c).map(|(_, v)| v.clone()).unwrap_or_default())
                .collect();
            (cells, s.points.last().map_or(f64::NAN, |p| p.1))
        })
        .collect();
    let sort = RwSignal::new(None::<(usize, bool)>);
    let ncols = columns.len();
    let sorted = move || {
        let mut r = rows.clone();
        if let Some((col, desc)) = sort.get() {
            r.sort_by(|a, b| {
                let ord = if col == ncols {
                    a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal)
                } else {
                    a.0[col].cmp(&b.0[col])
                };
                if desc {
                    ord.reverse()
                } else {
                    ord
                }
            });
        }
        r
    };
    let header = columns
        .iter()
        .cloned()
        .chain(std::iter::once("Value".to_string()))
        .enumerate()
        .map(|(i, name)| {
            let click = move |_| sort.update(|s| *s = Some((i, matches!(*s, Some((c, false)) if c == i))));
            view! { <th on:click=click class="sortable">{name}</th> }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="grid panel-table">
                <thead><tr>{header}</tr></thead>
                <tbody>
                    {move || sorted().into_iter().map(|(cells, v)| {
                        let value = chart::units::format_value(v, &opts.unit, opts.decimals);
                        view! {
                            <tr>
                                {cells.into_iter().map(|c| view! { <td>{c}</td> }).collect_view()}
                                <td class="value">{value}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn TimePicker(query: Query, path: String, from_ms: i64, to_ms: i64) -> impl IntoView {
    let from = query.get("from").unwrap_or("").to_string();
    let to = query.get("to").unwrap_or("").to_string();
    let label = if from.is_empty() {
        "Dashboard default range".to_string()
    } else {
        describe_range(&from, if to.is_empty() { "now" } else { &to })
    };
    let link =
        |f: String, t: String| path.clone() + &query.with("from", Some(&f)).with("to", Some(&t)).to_search();
    let span = (to_ms - from_ms).max(1000);
    let zoom_out = link((from_ms - span / 2).to_string(), (to_ms + span / 2).to_string());
    let left = link((from_ms - span / 2).to_string(), (to_ms - span / 2).to_string());
    let right = link((from_ms + span / 2).to_string(), (to_ms + span / 2).to_string());
    let quick = QUICK_RANGES
        .iter()
        .map(|(f, text)| {
            let href = link(f.to_string(), "now".to_string());
            view! { <li><a href=href data-range=*f>{*text}</a></li> }
        })
        .collect_view();
    let hidden = query
        .0
        .iter()
        .filter(|(k, _)| k != "from" && k != "to")
        .map(|(k, v)| view! { <input type="hidden" name=k.clone() value=v.clone() /> })
        .collect_view();
    let abs = |ms: i64| format_absolute(ms).replace(' ', "T");
    view! {
        <a class="button" href=left title="Shift the range back" id="shift-left">"◀"</a>
        <details class="picker" id="time-picker">
            <summary id="time-range-label">{label}</summary>
            <div class="picker-menu">
                <form method="get" action=path.clone() class="absolute-range">
                    {hidden}
                    <label>"From (UTC) "<input type="datetime-local" step="1" name="from" value=abs(from_ms) /></label>
                    <label>"To (UTC) "<input type="datetime-local" step="1" name="to" value=abs(to_ms) /></label>
                    <button type="submit" class="primary">"Apply time range"</button>
                </form>
                <ul class="quick-ranges">{quick}</ul>
            </div>
        </details>
        <a class="button" href=right title="Shift the range forward" id="shift-right">"▶"</a>
        <a class="button" href=zoom_out title="Zoom out (twice the range)" id="zoom-out">"Zoom out"</a>
    }
    .into_any()
}

#[component]
fn RefreshPicker(
    query: Query,
    path: String,
    refresh: String,
    refetch: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let options = REFRESH_INTERVALS
        .iter()
        .map(|r| {
            let href =
                path.clone() + &query.with("refresh", if r.is_empty() { None } else { Some(r) }).to_search();
            let text = if r.is_empty() { "Off".to_string() } else { r.to_string() };
            view! { <li><a href=href class:active=refresh == *r>{text}</a></li> }
        })
        .collect_view();
    let label = if refresh.is_empty() { "Auto-refresh off".to_string() } else { format!("Every {refresh}") };
    view! {
        <button class="button" id="refresh-now" title="Run the queries again" on:click=move |_| refetch()>"Refresh"</button>
        <details class="picker" id="refresh-picker">
            <summary>{label}</summary>
            <ul class="picker-menu">{options}</ul>
        </details>
    }
    .into_any()
}

#[component]
fn VariablesBar(variables: Vec<VariableState>, query: Query, path: String) -> impl IntoView {
    let visible: Vec<VariableState> = variables.into_iter().filter(|v| v.hide < 2).collect();
    if visible.is_empty() {
        return ().into_any();
    }
    let hidden = query
        .0
        .iter()
        .filter(|(k, _)| !k.starts_with("var-"))
        .map(|(k, v)| view! { <input type="hidden" name=k.clone() value=v.clone() /> })
        .collect_view();
    let fields = visible
        .into_iter()
        .map(|v| {
            let name = format!("var-{}", v.name);
            let label = (v.hide == 0).then(|| v.label.clone());
            let error = v.error.clone();
            let control = if v.kind == "textbox" {
                let value = v.selected.first().cloned().unwrap_or_default();
                view! { <input type="text" name=name.clone() value=value /> }.into_any()
            } else {
                let selected = v.selected.clone();
                let on_change = {
                    let query = query.clone();
                    let path = path.clone();
                    let name = name.clone();
                    move |ev: leptos::ev::Event| {
                        let values = selected_values(&ev);
                        let mut q = query.clone();
                        q.set(&name, &values);
                        use_navigate()(&format!("{path}{}", q.to_search()), Default::default());
                    }
                };
                view! {
                    <select name=name.clone() multiple=v.multi on:change=on_change data-variable=v.name.clone()>
                        {v.options.iter().map(|(text, value)| view! {
                            <option value=value.clone() selected=selected.contains(value)>{text.clone()}</option>
                        }).collect_view()}
                    </select>
                }
                .into_any()
            };
            view! {
                <label class="variable">
                    {label.map(|l| view! { <span class="variable-label">{l}</span> })}
                    {control}
                    {error.map(|e| view! { <span class="error">{e}</span> })}
                </label>
            }
        })
        .collect_view();
    view! {
        <form method="get" action=path.clone() class="variables" id="variables">
            {hidden}
            {fields}
            <button type="submit">"Apply"</button>
        </form>
    }
    .into_any()
}

/// The chosen options of the `<select>` that fired `ev`.
fn selected_values(ev: &leptos::ev::Event) -> Vec<String> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Some(select) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok()) else {
            return Vec::new();
        };
        let opts = select.selected_options();
        (0..opts.length())
            .filter_map(|i| opts.item(i))
            .filter_map(|e| e.dyn_into::<web_sys::HtmlOptionElement>().ok())
            .map(|o| o.value())
            .collect()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ev;
        Vec::new()
    }
}
