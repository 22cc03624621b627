//! The dashboard page, `/d/:uid/:slug`: header with time and refresh pickers, the variables bar,
//! and the panel grid. Everything the page shows follows its address (`from`, `to`, `refresh`,
//! `var-<name>`, `viewPanel`), read through [`Query`]; every control rewrites the address, so the
//! address bar is always a working share link, and the pickers are plain links and forms that
//! work before the WebAssembly arrives.
//!
//! One server function, [`load_dashboard`], answers the dashboard, its resolved variables and
//! every panel's data in one round trip. The server paints each chart's first frame as SVG into
//! the HTML ([`crate::chart::render_svg`]) and leaves the charts' points out of the page (each
//! series travels as its legend figures only); once hydrated, the browser fetches the points,
//! draws the same data on a canvas with the same code, and adds hover tooltips, a crosshair
//! shared between panels, and drag-to-zoom. Later loads in the browser (another range, a
//! refresh) take the points in the one answer.
//!
//! While the queries run again each panel shows a spinner in its header (and dims); a failed
//! query shows its error text on its panel. "Edit layout" lets panels be moved by their header
//! and resized by their corner on the 24-column grid ([`crate::dashboard::grid`]), then saved
//! like the panel editor saves.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_navigate, use_params_map};

use crate::chart::{self, ChartOptions, PanelData, PanelKind, Theme};
use crate::dashboard::timerange::{describe_range, format_absolute, QUICK_RANGES, REFRESH_INTERVALS};
use crate::dashboard::url::Query;
use crate::dashboard::{grid, markdown, Dashboard, GridPos, Panel, GRID_COLUMNS, GRID_ROW_PX};
use crate::model::{DashboardView, PanelResult, VariableState};

/// The size the server draws first frames at (the browser scales them to the panel).
#[cfg(feature = "ssr")]
const FRAME_W: u32 = 640;
#[cfg(feature = "ssr")]
const FRAME_H: u32 = 240;

/// A chart's first frame as the page carries it: SVG at the frame size, lines as path data.
#[cfg(feature = "ssr")]
fn first_frame(kind: PanelKind, data: &PanelData, opts: &ChartOptions) -> Option<String> {
    chart::render_svg(kind, data, opts, FRAME_W, FRAME_H).ok().map(|svg| chart::compact_polylines(&svg))
}

/// First frames the server drew ahead of rendering the page, by panel id.
#[derive(Clone)]
struct FirstFrames(std::sync::Arc<Vec<(i64, String)>>);

/// Loads a dashboard with its variables and all panel data for the page's query string.
/// With `hold_back`, charts' points stay on the server side of the answer
/// ([`DashboardView::hold_back_points`]): the server's first render of a page draws them as SVG
/// and the browser fetches them once hydrated, so the page does not carry every point twice.
/// That fetch passes the answer's `resume` token and gets the points the server kept for it.
#[server(output = crate::wire::Json)]
pub async fn load_dashboard(
    uid: String,
    search: String,
    hold_back: bool,
    resume: Option<u64>,
) -> Result<DashboardView, ServerFnError> {
    use crate::dashboard::load;
    let backend = crate::model::backend()?;
    let (dashboard, meta) =
        backend.dashboard(&uid).ok_or_else(|| ServerFnError::new(format!("Dashboard {uid:?} not found")))?;
    let mut q = Query::parse(&search);
    // A signed embed link's request: only its dashboard, only its panel, its variables fixed.
    let grant: Option<crate::model::EmbedGrant> =
        leptos_axum::extract::<axum::Extension<crate::model::EmbedGrant>>().await.ok().map(|e| e.0);
    if let Some(g) = &grant {
        g.apply(&uid, &mut q).map_err(ServerFnError::new)?;
    }
    // Only the same dashboard, address and embed scope take what was kept.
    let scope = (uid.clone(), q.to_search(), grant.as_ref().and_then(|g| g.panel_id));
    if let Some(view) = resume.and_then(|token| kept::take(token, &scope)) {
        return Ok(view);
    }
    let now = crate::time::now_ms();
    let range = load::resolve_range(&dashboard, q.get("from"), q.get("to"), now);
    let source: &dyn crate::model::DataSource = backend.as_ref();
    let mut view = load::load_view(source, dashboard, meta, range, &q.variables());
    if let Some(only) = grant.and_then(|g| g.panel_id) {
        view.panels.retain(|p| p.id == only);
        view.dashboard.panels.retain(|p| p.id == only || p.panels.iter().any(|c| c.id == only));
    }
    if hold_back {
        let held = view.hold_back_points();
        // The first frames of the held-back charts, drawn on every core now rather than one
        // after another while the page renders.
        let theme = theme_of(&q);
        let frames = load::map_in_parallel(&held, |(id, data)| {
            let panel = view.dashboard.panel(*id)?;
            let kind = PanelKind::from_grafana(panel.effective_kind())?;
            Some((*id, first_frame(kind, data, &chart_options(panel, theme))?))
        });
        view.resume = Some(kept::keep(scope, view.clone(), held));
        view.first_frames = frames.into_iter().flatten().collect();
    }
    Ok(view)
}

/// Points held back from a page, kept on the server for that page's own fetch right after it
/// loads, under a random token the page carries: the queries behind its first frames do not
/// run twice, and the canvases show exactly what the frames did. An entry goes when taken,
/// after [`kept::KEEP`], or when [`kept::MAX`] newer ones are kept (a page that never asks
/// costs its memory for seconds, not longer).
#[cfg(feature = "ssr")]
mod kept {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use crate::chart::PanelData;
    use crate::model::DashboardView;

    pub const KEEP: Duration = Duration::from_secs(15);
    pub const MAX: usize = 4;

    /// Dashboard uid, address (after an embed grant's rules) and the grant's panel.
    pub type Scope = (String, String, Option<i64>);

    struct Entry {
        token: u64,
        at: Instant,
        scope: Scope,
        view: DashboardView,
        held: Vec<(i64, PanelData)>,
    }

    static ENTRIES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

    pub fn keep(scope: Scope, view: DashboardView, held: Vec<(i64, PanelData)>) -> u64 {
        // RandomState is seeded from the OS: tokens cannot be guessed from one another.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(scope.0.as_bytes());
        h.write(scope.1.as_bytes());
        let token = h.finish();
        // A poisoned lock only means nothing is kept: the page's fetch runs the queries.
        if let Ok(mut entries) = ENTRIES.lock() {
            entries.retain(|e| e.at.elapsed() < KEEP);
            if entries.len() >= MAX {
                entries.remove(0);
            }
            entries.push(Entry { token, at: Instant::now(), scope, view, held });
        }
        token
    }

    pub fn take(token: u64, scope: &Scope) -> Option<DashboardView> {
        let mut entries = ENTRIES.lock().ok()?;
        let i =
            entries.iter().position(|e| e.token == token && &e.scope == scope && e.at.elapsed() < KEEP)?;
        let e = entries.remove(i);
        let mut view = e.view;
        view.restore_points(e.held);
        view.resume = None;
        Some(view)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::chart::Series;
        use crate::model::PanelResult;

        #[test]
        fn kept_points_go_to_their_token_and_scope_once() {
            let data = PanelData {
                series: vec![Series { name: "a".into(), points: vec![(1, 1.0), (2, 2.0), (3, 3.0)] }],
                ..PanelData::default()
            };
            let light = DashboardView {
                panels: vec![PanelResult { id: 7, data: data.held_back(), ..PanelResult::default() }],
                ..DashboardView::default()
            };
            let scope: Scope = ("kept-test".into(), "?from=now-1h".into(), None);
            let token = keep(scope.clone(), light, vec![(7, data.clone())]);
            let other: Scope = ("kept-test".into(), "?from=now-2h".into(), None);
            assert!(take(token, &other).is_none(), "another address");
            assert!(take(token.wrapping_add(1), &scope).is_none(), "another token");
            let view = take(token, &scope).expect("kept");
            assert_eq!(view.panels[0].data, data);
            assert_eq!(view.resume, None);
            assert!(take(token, &scope).is_none(), "taken once");
        }
    }
}

/// The dashboard's JSON alone, no query run: enough to lay the panels out, each with its
/// spinner, while their data loads on a visit from another page of the app.
#[server(output = crate::wire::Json)]
pub async fn load_layout(uid: String) -> Result<Dashboard, ServerFnError> {
    let backend = crate::model::backend()?;
    backend
        .dashboard(&uid)
        .map(|(d, _)| d)
        .ok_or_else(|| ServerFnError::new(format!("Dashboard {uid:?} not found")))
}

/// What shows while a dashboard loads for the first time on this page (the server renders the
/// first visit whole, so this is a visit from another page of the app): its panels in their
/// places, each with a spinner, as soon as the layout (no queries) has arrived.
#[component]
fn DashboardSkeleton(uid: String, view_panel: Option<i64>) -> impl IntoView {
    let layout = RwSignal::new(None::<Dashboard>);
    // Hydrating, the page already holds the whole answer (the server rendered it): the
    // skeleton is built but never shown, so it asks for nothing.
    #[cfg(feature = "hydrate")]
    if !Owner::current_shared_context().is_some_and(|sc| sc.during_hydration()) {
        leptos::task::spawn_local(async move {
            if let Ok(d) = load_layout(uid).await {
                // The whole answer may have come first and this skeleton be gone.
                let _ = layout.try_set(Some(d));
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = uid;
    move || match layout.get() {
        None => view! { <p class="muted loading">"Loading dashboard…"</p> }.into_any(),
        Some(d) => {
            let title = d.title.clone();
            let items = layout_of(&d, &[], view_panel, &[])
                .into_iter()
                .map(|item| match item {
                    Placed::Row { panel, y, .. } => view! {
                        <div class="dash-row" style=grid_style(GridPos { x: 0, y, w: GRID_COLUMNS, h: 1 })>
                            <span class="row-title">{panel.title}</span>
                        </div>
                    }
                    .into_any(),
                    Placed::Panel { panel, x, y, w, h, .. } => {
                        // A title naming variables waits for their values.
                        let title = if panel.title.contains('$') { String::new() } else { panel.title };
                        view! {
                            <section class="panel skeleton" style=grid_style(GridPos { x, y, w, h })
                                data-panel-id=panel.id.to_string()>
                                <header class="panel-header">
                                    <h2 class="panel-title">{title}</h2>
                                    <span class="panel-loading" role="status" aria-label="Loading" title="Loading…"></span>
                                </header>
                            </section>
                        }
                        .into_any()
                    }
                })
                .collect_view();
            view! {
                <div class="dash-header"><h1>{title}</h1></div>
                <div class="dash-grid" id="dashboard-skeleton" aria-busy="true" class:single=view_panel.is_some()
                    style=format!("grid-auto-rows: {GRID_ROW_PX}px; gap: {GRID_GAP_PX}px")>
                    {items}
                </div>
            }
            .into_any()
        }
    }
}

/// The gap between grid cells, in pixels (set on the grid here, so dragging can count cells).
const GRID_GAP_PX: i64 = 8;

/// The dashboard's edit mode: panels are moved by their header and resized by their
/// bottom-right corner, on a working copy saved with the panel editor's save. It belongs to the
/// page, not to one answer of the dashboard's query, so a reload (another time range, a
/// refresh) keeps the unsaved layout and a drag in progress.
#[derive(Clone, Copy)]
pub struct LayoutEdit {
    /// The dashboard being rearranged; `None` outside edit mode.
    working: RwSignal<Option<Dashboard>>,
    dirty: RwSignal<bool>,
    drag: RwSignal<Option<Drag>>,
    message: RwSignal<String>,
    status: RwSignal<Option<Result<String, String>>>,
    /// Rows opened or closed in the working copy so far (0: the grid is laid out from the
    /// stored dashboard); the grid is laid out again from the working copy when it changes.
    rows: RwSignal<u32>,
    /// The item the last drag moved, so the click that ends dragging a row does not also open
    /// or close it.
    moved: RwSignal<Option<i64>>,
}

/// A move or resize in progress: where the mouse went down, and the layout at that moment
/// (every position is recomputed from it, so a panel pushed aside comes back when the dragged
/// one moves on).
// Only the browser follows the mouse; the server renders the page before any drag.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Clone)]
struct Drag {
    id: i64,
    resize: bool,
    mouse: (f64, f64),
    start: GridPos,
    layout: Vec<grid::Item>,
    /// One column's and one row's pitch in pixels, gap included.
    cell: (f64, f64),
}

impl LayoutEdit {
    fn new() -> Self {
        LayoutEdit {
            working: RwSignal::new(None),
            dirty: RwSignal::new(false),
            drag: RwSignal::new(None),
            message: RwSignal::new(String::new()),
            status: RwSignal::new(None),
            rows: RwSignal::new(0),
            moved: RwSignal::new(None),
        }
    }

    fn editing(&self) -> bool {
        self.working.with(Option::is_some)
    }

    /// The same, for event handlers (outside any reactive tracking).
    fn editing_now(&self) -> bool {
        self.working.with_untracked(Option::is_some)
    }

    fn enter(&self, d: &Dashboard) {
        self.reset_rows();
        self.working.set(Some(d.clone()));
        self.dirty.set(false);
        self.status.set(None);
    }

    fn exit(&self) {
        self.reset_rows();
        self.working.set(None);
        self.drag.set(None);
        self.dirty.set(false);
        self.status.set(None);
        super::editor::set_leave_guard(false);
    }

    /// Back to the stored dashboard's rows; only when needed, since it lays the grid out again.
    fn reset_rows(&self) {
        if self.rows.get_untracked() != 0 {
            self.rows.set(0);
        }
    }

    /// Opens or closes a row of the working copy (saved with the layout, unlike a viewer's
    /// toggle): closing it takes the panels under it inside; unless that click ended a drag.
    fn toggle_row(&self, id: i64) {
        if self.moved.get_untracked() == Some(id) {
            self.moved.set(None);
            return;
        }
        let mut toggled = false;
        self.working.update(|w| toggled = w.as_mut().is_some_and(|d| grid::toggle_row(d, id)));
        if toggled {
            self.dirty.set(true);
            super::editor::set_leave_guard(true);
            self.rows.update(|n| *n += 1);
        }
    }

    /// Ends a drag, noting whether it moved its item.
    // Only the browser follows the pointer (see Drag).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn release(&self) {
        let Some((id, start)) = self.drag.with_untracked(|d| d.as_ref().map(|d| (d.id, d.start))) else {
            return;
        };
        self.moved.set((self.position_now(id) != Some(start)).then_some(id));
        self.drag.set(None);
    }

    /// The same, for event handlers (outside any reactive tracking).
    fn position_now(&self, id: i64) -> Option<GridPos> {
        self.working
            .with_untracked(|w| w.as_ref().and_then(|d| grid::items(d).into_iter().find(|(i, _)| *i == id)))
            .map(|(_, g)| g)
    }

    /// Where the working copy has a top-level panel or row, while editing.
    fn position(&self, id: i64) -> Option<GridPos> {
        self.working.track();
        self.position_now(id)
    }

    /// A press on a panel's (or row's) handle: starts moving or resizing it, in edit mode, with
    /// the main button (or a finger or pen).
    fn grab(&self, id: i64, resize: bool, ev: &leptos::ev::MouseEvent) {
        if !self.editing_now() || ev.button() != 0 {
            return;
        }
        // No text selection, native drag or scrolling while the panel follows the pointer.
        ev.prevent_default();
        self.start(id, resize, (f64::from(ev.client_x()), f64::from(ev.client_y())), grid_cell_px(ev));
    }

    fn start(&self, id: i64, resize: bool, mouse: (f64, f64), cell: (f64, f64)) {
        let Some(layout) = self.working.with_untracked(|w| w.as_ref().map(grid::items)) else { return };
        let Some(start) = layout.iter().find(|(i, _)| *i == id).map(|(_, g)| *g) else { return };
        self.drag.set(Some(Drag { id, resize, mouse, start, layout, cell }));
    }

    /// A keyboard step on a panel or row handle in edit mode: arrow keys move it one cell,
    /// with Shift they resize it; the others make way as for a drag. True if the key was one.
    fn key(&self, id: i64, ev: &leptos::ev::KeyboardEvent) -> bool {
        let (dx, dy) = match ev.key().as_str() {
            "ArrowLeft" => (-1, 0),
            "ArrowRight" => (1, 0),
            "ArrowUp" => (0, -1),
            "ArrowDown" => (0, 1),
            _ => return false,
        };
        if !self.editing_now() {
            return false;
        }
        let Some(layout) = self.working.with_untracked(|w| w.as_ref().map(grid::items)) else { return false };
        let Some(start) = layout.iter().find(|(i, _)| *i == id).map(|(_, g)| *g) else { return false };
        self.set_layout(&grid::place(&layout, id, grid::dragged(start, dx, dy, ev.shift_key())));
        true
    }

    /// Puts `layout` into the working copy if it changes anything, marking the edit unsaved.
    fn set_layout(&self, layout: &[grid::Item]) {
        let changed = self.working.with_untracked(|w| {
            w.as_ref().is_some_and(|w| {
                let now = grid::items(w);
                !layout.iter().all(|item| now.contains(item))
            })
        });
        if changed {
            self.working.update(|w| {
                if let Some(w) = w {
                    grid::apply(w, layout);
                }
            });
            self.dirty.set(true);
            super::editor::set_leave_guard(true);
        }
    }

    /// Follows the mouse: the dragged panel snaps to whole cells, the others make way.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn drag_to(&self, x: f64, y: f64) {
        let Some(layout) = self.drag.with_untracked(|d| {
            d.as_ref().map(|d| {
                let (dx, dy) = grid::cells(x - d.mouse.0, y - d.mouse.1, d.cell.0, d.cell.1);
                grid::place(&d.layout, d.id, grid::dragged(d.start, dx, dy, d.resize))
            })
        }) else {
            return;
        };
        self.set_layout(&layout);
    }
}

/// One column's and one row's pitch of the grid the mouse went down in, gap included.
fn grid_cell_px(ev: &leptos::ev::MouseEvent) -> (f64, f64) {
    let row = (GRID_ROW_PX + GRID_GAP_PX) as f64;
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let width = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest(".dash-grid").ok().flatten())
            .map_or(0.0, |g| f64::from(g.client_width()));
        ((width + GRID_GAP_PX as f64) / GRID_COLUMNS as f64, row)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ev;
        (0.0, row)
    }
}

fn grid_style(g: GridPos) -> String {
    format!("grid-column: {} / span {}; grid-row: {} / span {}", g.x + 1, g.w, g.y + 1, g.h)
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
    // Only the server's render of the page holds points back (it draws them as SVG); the
    // browser's own loads (another range, a refresh) take everything in one answer.
    let view = Resource::new(
        move || (uid(), search()),
        |(uid, search)| {
            let hold_back = cfg!(feature = "ssr") && Query::parse(&search).get("editPanel").is_none();
            load_dashboard(uid, search, hold_back, None)
        },
    );
    let hover = SharedHover(RwSignal::new(None));
    provide_context(hover);
    // A Transition keeps the current panels on screen while a new range, variable or refresh
    // loads; they dim until the answer arrives instead of the page blanking.
    let pending = RwSignal::new(false);
    let edit = LayoutEdit::new();
    // Another dashboard: the edit mode and its unsaved layout belonged to the previous one.
    Effect::new(move |prev: Option<String>| {
        let now = uid();
        if prev.is_some_and(|p| p != now) {
            edit.exit();
        }
        now
    });
    // Leaving for another page of the app drops unsaved edits (the router cannot be held
    // back); the browser's leave prompt must not outlive them.
    on_cleanup(|| super::editor::set_leave_guard(false));
    // A drag goes on wherever the pointer goes, so it is followed on the window.
    #[cfg(feature = "hydrate")]
    {
        let moved = window_event_listener(leptos::ev::pointermove, move |ev| {
            edit.drag_to(f64::from(ev.client_x()), f64::from(ev.client_y()))
        });
        let release = move || edit.release();
        let released = window_event_listener(leptos::ev::pointerup, move |_| release());
        // A touch the browser takes over (to scroll) ends the drag where it stands.
        let cancelled = window_event_listener(leptos::ev::pointercancel, move |_| release());
        on_cleanup(move || {
            moved.remove();
            released.remove();
            cancelled.remove();
        });
    }
    view! {
        <div class="dashboard-page" class:pending=move || pending.get() aria-busy=move || pending.get().to_string()>
            <Transition fallback=move || {
                let view_panel = Query::parse(&search()).get("viewPanel").and_then(|s| s.parse().ok());
                view! { <DashboardSkeleton uid=uid() view_panel /> }
            } set_pending=pending>
                {move || Suspend::new(async move {
                    match view.await {
                        Ok(v) => {
                            let q = Query::parse(&search());
                            view! { <DashboardBody view=v query=q path=location.pathname.get_untracked() refetch=move || view.refetch() loading=pending edit /> }.into_any()
                        }
                        Err(e) => view! {
                            <Title text="Dashboard" />
                            <h1>"Dashboard"</h1>
                            <p class="error" id="dashboard-error">{crate::pages::error_text(&e)}</p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

/// `/d-solo/:uid/:slug?panelId=…`: one panel alone, filling the frame, for `<iframe>` embeds;
/// live like the dashboard, themed by `theme=light|dark`.
#[component]
pub fn SoloPage() -> impl IntoView {
    let params = use_params_map();
    let location = use_location();
    let uid = move || params.read().get("uid").unwrap_or_default();
    let search = move || location.search.get();
    let view =
        Resource::new(move || (uid(), search()), |(uid, search)| load_dashboard(uid, search, false, None));
    provide_context(SharedHover(RwSignal::new(None)));
    view! {
        <Suspense fallback=|| view! { <p class="muted loading">"Loading panel…"</p> }>
            {move || Suspend::new(async move {
                let q = Query::parse(&search());
                let theme = q.get("theme").unwrap_or("light").to_string();
                let body = match view.await {
                    Ok(v) => {
                        let id = q.get("panelId").and_then(|s| s.parse::<i64>().ok());
                        match id.and_then(|id| v.dashboard.panel(id).cloned()).filter(|p| !p.is_row()) {
                            Some(panel) => {
                                let result = v.panels.iter().find(|r| r.id == panel.id).cloned().unwrap_or_default();
                                let data = RwSignal::new(result.data.clone());
                                let signals = vec![(panel.id, data)];
                                let uid = v.dashboard.uid.clone();
                                let live = q.get("to").is_none_or(|t| t.starts_with("now"));
                                let theme = theme_of(&q);
                                view! {
                                    <Title text=v.dashboard.title.clone() />
                                    <PanelBox panel result data style=String::new() theme shared=false view_href=v.meta.url.clone() />
                                    {live.then(|| view! { <LiveStream uid search=q.to_search() since=v.to_ms signals connected=RwSignal::new(false) /> })}
                                }
                                .into_any()
                            }
                            None => view! { <p class="error" id="solo-error">"No panel with that panelId in this dashboard."</p> }.into_any(),
                        }
                    }
                    Err(e) => view! { <p class="error" id="solo-error">{crate::pages::error_text(&e)}</p> }.into_any(),
                };
                view! { <div class="solo" data-theme=theme>{body}</div> }
            })}
        </Suspense>
    }
}

#[component]
fn DashboardBody(
    mut view: DashboardView,
    query: Query,
    path: String,
    refetch: impl Fn() + Clone + Send + Sync + 'static,
    /// True while the dashboard's queries run again (each panel shows a spinner).
    loading: RwSignal<bool>,
    edit: LayoutEdit,
) -> impl IntoView {
    let d = &view.dashboard;
    let title = d.title.clone();
    let refresh = query.get("refresh").map(str::to_string).or_else(|| d.refresh.clone()).unwrap_or_default();
    let view_panel = query.get("viewPanel").and_then(|s| s.parse::<i64>().ok());
    let theme = theme_of(&query);
    let shared = d.graph_tooltip >= 1;
    let tags = d.tags.clone();
    // Rows the viewer opened or closed on this page (their stored state stays as saved).
    let toggled = RwSignal::new(Vec::<i64>::new());
    // Each panel's data is a signal so the live stream can append to it and the canvas redraws.
    // Where the points were held back, both sides start from the legend figures (the server has
    // drawn the first frames already) and the browser fetches the points below.
    let signals: Vec<(i64, RwSignal<PanelData>)> =
        view.panels.iter().map(|r| (r.id, RwSignal::new(r.data.clone()))).collect();
    provide_context(FirstFrames(std::sync::Arc::new(std::mem::take(&mut view.first_frames))));
    // The points the page came without, fetched once it is hydrated; the live stream starts
    // from their end (before, it would have nothing to append to).
    let held = view.panels.iter().any(|r| r.data.is_held_back());
    let points_from = RwSignal::new((!held).then_some(view.to_ms));
    #[cfg(feature = "hydrate")]
    if held {
        let (uid, search, signals, resume) = (d.uid.clone(), query.to_search(), signals.clone(), view.resume);
        leptos::task::spawn_local(async move {
            match load_dashboard(uid, search, false, resume).await {
                Ok(full) => {
                    for r in full.panels {
                        if let Some((_, sig)) = signals.iter().find(|(id, _)| *id == r.id) {
                            sig.set(r.data);
                        }
                    }
                    points_from.set(Some(full.to_ms));
                }
                Err(e) => leptos::logging::warn!("panel points unavailable: {e}"),
            }
        });
    }
    let signal_of = {
        let signals = signals.clone();
        move |id: i64| {
            signals
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, s)| *s)
                .unwrap_or_else(|| RwSignal::new(PanelData::default()))
        }
    };
    // Live only makes sense while the range ends at "now".
    let live = query.get("to").is_none_or(|t| t.starts_with("now")) && d.time.to.starts_with("now")
        || query.get("to").is_some_and(|t| t.starts_with("now"));
    let live = live && refresh != "off";
    let connected = RwSignal::new(false);
    let uid = d.uid.clone();
    let layout_view = view.clone();
    let (path_for_grid, query_for_grid) = (path.clone(), query.clone());
    let panels = move || {
        let path = path_for_grid.clone();
        let query = query_for_grid.clone();
        let viewer_toggled = toggled.get();
        // Rows opened or closed in edit mode change what is on the grid: then it follows the
        // working copy.
        let edited = (edit.rows.get() > 0).then(|| edit.working.with_untracked(Clone::clone)).flatten();
        match &edited {
            Some(d) => layout_of(d, &layout_view.panels, view_panel, &[]),
            None => layout_of(&layout_view.dashboard, &layout_view.panels, view_panel, &viewer_toggled),
        }
        .into_iter()
        .map(|item| match item {
            Placed::Row { panel, y, collapsed } => {
                let id = panel.id;
                // In edit mode the row opens or closes in the working copy, and is saved so.
                let toggle = move |_| if edit.editing_now() { edit.toggle_row(id) } else { toggled.update(|t| if let Some(i) = t.iter().position(|x| *x == id) { t.remove(i); } else { t.push(id); }) };
                let placed = GridPos { x: 0, y, w: GRID_COLUMNS, h: 1 };
                let style = move || grid_style(edit.position(id).filter(|_| view_panel.is_none()).unwrap_or(placed));
                view! {
                    <div class="dash-row" style=style on:pointerdown=move |ev: leptos::ev::PointerEvent| edit.grab(id, false, &ev)
                        on:keydown=move |ev: leptos::ev::KeyboardEvent| if edit.key(id, &ev) { ev.prevent_default() }>
                        <button type="button" class="row-title" data-row-id=id.to_string() aria-expanded=(!collapsed).to_string() on:click=toggle>
                            {if collapsed { "▸ " } else { "▾ " }}{panel.title.clone()}
                        </button>
                    </div>
                }
                .into_any()
            }
            Placed::Panel { panel, result, x, y, w, h } => {
                let style = grid_style(GridPos { x, y, w, h });
                let view_href = path.clone() + &query.with("viewPanel", Some(&panel.id.to_string())).to_search();
                let data = signal_of(panel.id);
                let edit = view_panel.is_none().then_some(edit);
                view! {
                    <PanelBox panel result data style theme shared view_href loading=Some(loading) edit />
                }
                .into_any()
            }
        })
        .collect_view()
    };
    if let Some(edit) = query.get("editPanel") {
        let panel = match edit.parse::<i64>().ok().and_then(|id| view.dashboard.panel(id).cloned()) {
            Some(p) => p,
            None => super::editor::new_panel(&view.dashboard),
        };
        let initial = view.panels.iter().find(|r| r.id == panel.id).cloned().unwrap_or_default();
        // A page that opens with the editor has its part of the WebAssembly fetched before it
        // hydrates (crate::hydrate), so this is ready at once there; after a navigation in the
        // browser it waits inside the page's Suspense.
        let editor = Suspend::new(super::editor::panel_editor(super::editor::EditorArgs {
            dashboard: view.dashboard.clone(),
            panel,
            initial,
            query: query.clone(),
            path: path.clone(),
            can_save: view.meta.can_save,
        }));
        return view! {
            <Title text=format!("Edit · {}", view.dashboard.title) />
            <h1 id="dashboard-title">{view.dashboard.title.clone()}</h1>
            {editor}
        }
        .into_any();
    }
    let back = view_panel.map(|_| path.clone() + &query.with("viewPanel", None).to_search());
    let editing = move || edit.editing();
    let stored = view.dashboard.clone();
    let enter = move |_| {
        toggled.set(Vec::new());
        edit.enter(&stored);
    };
    let add_href = path.clone() + &query.with("editPanel", Some("new")).to_search();
    let can_save = view.meta.can_save;
    let refetch_after_save = refetch.clone();
    view! {
        <Title text=title.clone() />
        <div class="dash-header">
            <h1 id="dashboard-title">{title}</h1>
            <span class="tags">{tags.into_iter().map(|t| view! { <span class="tag">{t}</span> }).collect_view()}</span>
            <div class="dash-controls">
                <TimePicker query=query.clone() path=path.clone() from_ms=view.from_ms to_ms=view.to_ms />
                <RefreshPicker query=query.clone() path=path.clone() refresh=refresh.clone() refetch=refetch.clone() />
                <ShareMenu view=view.clone() query=query.clone() path=path.clone() />
                // While the layout is edited the panel editor is out of reach: it starts from the
                // stored dashboard and would drop the unsaved layout.
                <Show when=move || !editing()>
                    <a class="button" id="add-panel" href=add_href.clone()>"Add panel"</a>
                    {view_panel.is_none().then(|| view! {
                        <button type="button" id="dashboard-edit" title="Move and resize panels" on:click=enter.clone()>"Edit layout"</button>
                    })}
                </Show>
            </div>
        </div>
        <Show when=editing>
            {let refetch: std::sync::Arc<dyn Fn() + Send + Sync> = std::sync::Arc::new(refetch_after_save.clone());
             Suspend::new(layout_bar(edit, can_save, refetch))}
        </Show>
        {back.map(|href| view! { <p><a href=href id="back-to-dashboard">"← Back to the dashboard"</a></p> })}
        <VariablesBar variables=view.variables.clone() query=query.clone() path=path.clone() />
        <div class="dash-grid" class:single=view_panel.is_some() class:editing=editing
            class:dragging=move || edit.drag.with(Option::is_some)
            style=format!("grid-auto-rows: {GRID_ROW_PX}px; gap: {GRID_GAP_PX}px")>
            {panels}
        </div>
        {let live_search = query.to_search(); move || live.then_some(points_from.get()).flatten().map(|since| {
            let (uid, search, signals) = (uid.clone(), live_search.clone(), signals.clone());
            view! { <LiveStream uid search since signals connected /> }
        })}
        // Polling is the fallback while the live stream is not connected (or not wanted).
        // Paused too while the layout is edited: the panels stay still under the mouse.
        <AutoRefresh refresh=if live && refresh.is_empty() { "30s".to_string() } else { refresh } refetch
            paused=move || connected.get_untracked() || edit.editing_now() />
    }
    .into_any()
}

/// [`LayoutBar`] in its own part of the WebAssembly: fetched when edit mode is first entered.
#[leptos::lazy]
fn layout_bar(edit: LayoutEdit, can_save: bool, refetch: std::sync::Arc<dyn Fn() + Send + Sync>) -> AnyView {
    view! { <LayoutBar edit can_save refetch=move || refetch() /> }.into_any()
}

/// The edit mode's bar: what to do, whether there are unsaved changes, the save message, Save
/// (the panel editor's save: the whole dashboard, its version checked and incremented) and
/// leaving edit mode (asking first when there are unsaved changes).
#[component]
fn LayoutBar(
    edit: LayoutEdit,
    can_save: bool,
    refetch: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let save = move |_| {
        let Some(d) = edit.working.get_untracked() else { return };
        let json = match serde_json::to_string(&d) {
            Ok(j) => j,
            Err(e) => return edit.status.set(Some(Err(format!("Could not write the dashboard: {e}")))),
        };
        let msg = edit.message.get_untracked();
        let refetch = refetch.clone();
        leptos::task::spawn_local(async move {
            match super::editor::save_dashboard(json, msg).await {
                Ok(version) => {
                    edit.working.update(|w| {
                        if let Some(w) = w {
                            w.version = version;
                        }
                    });
                    edit.dirty.set(false);
                    edit.message.set(String::new());
                    super::editor::set_leave_guard(false);
                    edit.status.set(Some(Ok(format!("Saved as version {version}."))));
                    // The page's copy of the dashboard (used by the panel editor) follows.
                    refetch();
                }
                Err(e) => edit.status.set(Some(Err(crate::pages::error_text(&e)))),
            }
        });
    };
    let done = move |_| {
        if !edit.dirty.get_untracked()
            || super::editor::confirm("Leave edit mode? Your unsaved layout changes will be lost.")
        {
            edit.exit();
        }
    };
    view! {
        <div class="editor-bar layout-bar" id="layout-bar">
            <span>"Drag a panel by its title to move it, by its corner to resize it."</span>
            <span class="muted" id="layout-dirty">{move || if edit.dirty.get() { "Unsaved changes" } else { "" }}</span>
            <input type="text" id="layout-message" placeholder="What changed?" prop:value=move || edit.message.get()
                on:input=move |ev| edit.message.set(event_target_value(&ev)) />
            <button type="button" class="primary" id="layout-save" on:click=save disabled=!can_save
                title=if can_save { "Save the dashboard" } else { "This dashboard is provisioned read-only" }>"Save"</button>
            <button type="button" id="layout-done" on:click=done>"Exit edit mode"</button>
        </div>
        {move || edit.status.get().map(|s| match s {
            Ok(m) => view! { <p class="ok" id="layout-status">{m}</p> }.into_any(),
            Err(e) => view! { <p class="error" id="layout-status">{e}</p> }.into_any(),
        })}
    }
}

/// The Share menu: a link to the dashboard or one panel, with the range relative or locked to
/// absolute times, the current variable values and an optional theme; the `<iframe>` code for
/// embedding a panel; and the dashboard's JSON for export.
#[component]
fn ShareMenu(view: DashboardView, query: Query, path: String) -> impl IntoView {
    // The menu's contents (and their code, a part of the WebAssembly of their own) come when it
    // is first opened; a closed menu shows nothing but its summary.
    let opened = RwSignal::new(false);
    view! {
        <details class="picker" id="share-menu" on:toggle=move |_| opened.set(true)>
            <summary>"Share"</summary>
            <Show when=move || opened.get()>
                {Suspend::new(share_menu_body(view.clone(), query.clone(), path.clone()))}
            </Show>
        </details>
    }
}

/// [`ShareMenuBody`] in its own part of the WebAssembly.
#[leptos::lazy]
fn share_menu_body(view: DashboardView, query: Query, path: String) -> AnyView {
    view! { <ShareMenuBody view query path /> }.into_any()
}

#[component]
fn ShareMenuBody(view: DashboardView, query: Query, path: String) -> impl IntoView {
    let lock = RwSignal::new(false);
    let theme = RwSignal::new(String::new());
    let panel = RwSignal::new(None::<i64>);
    let origin = RwSignal::new(String::new());
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(o) = web_sys::window().and_then(|w| w.location().origin().ok()) {
            origin.set(o);
        }
    });
    let uid = view.dashboard.uid.clone();
    let slug = view.meta.slug.clone();
    let (from_ms, to_ms) = (view.from_ms, view.to_ms);
    let mut base = query.with("viewPanel", None);
    for v in &view.variables {
        let key = format!("var-{}", v.name);
        if base.get(&key).is_none() && v.kind != "constant" {
            base.set(&key, &v.selected);
        }
    }
    let shared_query = move || {
        let mut q = base.clone();
        if lock.get() {
            q = q.with("from", Some(&from_ms.to_string())).with("to", Some(&to_ms.to_string()));
        }
        let t = theme.get();
        q.with("theme", if t.is_empty() { None } else { Some(&t) })
    };
    let link = {
        let shared_query = shared_query.clone();
        let path = path.clone();
        move || {
            let q = shared_query();
            let q = match panel.get() {
                Some(id) => q.with("viewPanel", Some(&id.to_string())),
                None => q,
            };
            format!("{}{}{}", origin.get(), path, q.to_search())
        }
    };
    let embed = {
        let uid = uid.clone();
        move || {
            let id = panel.get().or_else(|| view.panels.first().map(|p| p.id)).unwrap_or(1);
            let q = shared_query().with("panelId", Some(&id.to_string()));
            format!(
                "<iframe src=\"{}/d-solo/{}/{}{}\" width=\"600\" height=\"300\" frameborder=\"0\"></iframe>",
                origin.get(),
                uid,
                slug,
                q.to_search().replace('&', "&amp;")
            )
        }
    };
    let panels: Vec<(i64, String)> = view
        .dashboard
        .all_panels()
        .filter(|p| !p.is_row())
        .map(|p| (p.id, if p.title.is_empty() { format!("Panel {}", p.id) } else { p.title.clone() }))
        .collect();
    let copy = |text: String| {
        #[cfg(feature = "hydrate")]
        if let Some(w) = web_sys::window() {
            let _ = w.navigator().clipboard().write_text(&text);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = text;
    };
    let link_for_copy = link.clone();
    let embed_for_copy = embed.clone();
    view! {
            <div class="picker-menu share-menu">
                <label><input type="checkbox" id="share-lock" prop:checked=move || lock.get()
                    on:change=move |ev| lock.set(event_target_checked(&ev)) />" Lock time range"</label>
                <label>"Theme "
                    <select id="share-theme" on:change=move |ev| theme.set(event_target_value(&ev))>
                        <option value="">"Current"</option>
                        <option value="light">"Light"</option>
                        <option value="dark">"Dark"</option>
                    </select>
                </label>
                <label>"Panel "
                    <select id="share-panel" on:change=move |ev| panel.set(event_target_value(&ev).parse().ok())>
                        <option value="">"Whole dashboard"</option>
                        {panels.into_iter().map(|(id, title)| view! { <option value=id.to_string()>{title}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Link"<input type="text" readonly id="share-link" prop:value=link /></label>
                <button type="button" on:click=move |_| copy(link_for_copy())>"Copy link"</button>
                <label>"Embed"<textarea readonly id="share-embed" rows="3" prop:value=embed></textarea></label>
                <button type="button" on:click=move |_| copy(embed_for_copy())>"Copy embed code"</button>
                <a class="button" id="export-json" href=format!("/api/dashboards/uid/{uid}/export") download=format!("{uid}.json")>"Export JSON"</a>
            </div>
    }
    .into_any()
}

/// Keeps a websocket to `/api/live/ws` open while the page shows, and appends the points the
/// server pushes to the panels' data; reconnects with backoff when the connection drops.
#[component]
fn LiveStream(
    uid: String,
    search: String,
    since: i64,
    signals: Vec<(i64, RwSignal<PanelData>)>,
    /// True while subscribed; the polling fallback pauses meanwhile.
    connected: RwSignal<bool>,
) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        leptos::task::spawn_local(start_live(uid, search, since, signals, connected, alive.clone()));
        on_cleanup(move || alive.store(false, std::sync::atomic::Ordering::Relaxed));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (uid, search, since, signals, connected);
}

/// Merges pushed points into a panel's data: a series' points from the first pushed time on
/// are replaced, new series are added, and a range ending at "now" slides forward, dropping
/// what falls off its start.
pub fn merge_points(data: &mut PanelData, pushed: Vec<(String, Vec<(i64, f64)>)>) {
    let mut newest = data.end_ms;
    for (name, points) in pushed {
        let Some(first) = points.first().map(|p| p.0) else { continue };
        newest = newest.max(points.last().map_or(first, |p| p.0));
        match data.series.iter_mut().find(|s| s.name == name) {
            Some(s) => {
                s.points.retain(|p| p.0 < first);
                s.points.extend(points);
            }
            None => data.series.push(chart::Series { name, points }),
        }
    }
    if newest > data.end_ms {
        let shift = newest - data.end_ms;
        data.start_ms += shift;
        data.end_ms = newest;
        let start = data.start_ms;
        for s in &mut data.series {
            s.points.retain(|p| p.0 >= start);
        }
    }
}

/// Opens the live stream; in its own part of the WebAssembly, which arrives while the page
/// fetches its points (the stream starts after them).
#[cfg(feature = "hydrate")]
#[leptos::lazy]
fn start_live(
    uid: String,
    search: String,
    since: i64,
    signals: Vec<(i64, RwSignal<PanelData>)>,
    connected: RwSignal<bool>,
    alive: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    live::connect(uid, search, since, signals, connected, 0, alive);
}

#[cfg(feature = "hydrate")]
mod live {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    #[derive(serde::Deserialize)]
    struct LiveMessage {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        panels: Vec<PanelUpdate>,
        #[serde(default)]
        message: String,
    }

    #[derive(serde::Deserialize)]
    struct PanelUpdate {
        id: i64,
        #[serde(default)]
        series: Vec<SeriesUpdate>,
    }

    #[derive(serde::Deserialize)]
    struct SeriesUpdate {
        name: String,
        points: Vec<(i64, f64)>,
    }

    pub fn connect(
        uid: String,
        search: String,
        since: i64,
        signals: Vec<(i64, RwSignal<PanelData>)>,
        connected: RwSignal<bool>,
        attempt: u32,
        alive: Arc<AtomicBool>,
    ) {
        let Some(window) = web_sys::window() else { return };
        let location = window.location();
        let scheme = if location.protocol().is_ok_and(|p| p == "https:") { "wss" } else { "ws" };
        let Ok(host) = location.host() else { return };
        // An embed link's token travels on: without anonymous viewers it is the only way in.
        let token = Query::parse(&location.search().unwrap_or_default()).get("token").map(str::to_string);
        let url = match token {
            Some(t) => format!("{scheme}://{host}/api/live/ws?token={}", crate::dashboard::url::encode(&t)),
            None => format!("{scheme}://{host}/api/live/ws"),
        };
        let Ok(ws) = web_sys::WebSocket::new(&url) else { return };
        let subscribe =
            serde_json::json!({"type": "subscribe", "uid": uid, "search": search, "since": since})
                .to_string();
        let opened = ws.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || {
            let _ = opened.send_with_str(&subscribe);
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        on_open.forget();
        let targets = signals.clone();
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                let Some(text) = ev.data().as_string() else { return };
                let Ok(update) = serde_json::from_str::<LiveMessage>(&text) else { return };
                match update.kind.as_str() {
                    "points" => {
                        for p in update.panels {
                            if let Some((_, sig)) = targets.iter().find(|(id, _)| *id == p.id) {
                                let pushed = p.series.into_iter().map(|s| (s.name, s.points)).collect();
                                sig.update(|d| merge_points(d, pushed));
                            }
                        }
                    }
                    "subscribed" => connected.set(true),
                    "error" => {
                        connected.set(false);
                        leptos::logging::warn!("live updates unavailable: {}", update.message)
                    }
                    _ => {}
                }
            });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let retry = {
            let alive = alive.clone();
            let ws = ws.clone();
            move || {
                ws.set_onclose(None);
                connected.set(false);
                if !alive.load(Ordering::Relaxed) {
                    return;
                }
                // Back off 1 s, 2 s, 4 s … up to 30 s between attempts.
                let delay = (1000u64 << attempt.min(5)).min(30_000);
                let (uid, search, signals, alive) =
                    (uid.clone(), search.clone(), signals.clone(), alive.clone());
                set_timeout(
                    move || connect(uid, search, since, signals, connected, attempt + 1, alive),
                    std::time::Duration::from_millis(delay),
                );
            }
        };
        let on_close = Closure::<dyn FnMut()>::new(retry);
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        on_close.forget();
        let closer = ws.clone();
        let watch = alive.clone();
        // Closes the socket when the page goes away (the component's cleanup clears `alive`).
        let check = Closure::<dyn FnMut()>::new(move || {
            if !watch.load(Ordering::Relaxed) {
                closer.set_onclose(None);
                let _ = closer.close();
            }
        });
        let _ = window
            .set_interval_with_callback_and_timeout_and_arguments_0(check.as_ref().unchecked_ref(), 1000);
        check.forget();
    }
}

/// Re-runs the page's queries every `refresh` (Grafana's auto-refresh), in the browser only.
#[component]
fn AutoRefresh(
    refresh: String,
    refetch: impl Fn() + Clone + Send + Sync + 'static,
    /// While true (the live stream is connected, or the layout is being edited), ticks do
    /// nothing: pushes keep the page fresh.
    paused: impl Fn() -> bool + Send + Sync + 'static,
) -> impl IntoView {
    let ms = crate::dashboard::timerange::parse_duration(&refresh).filter(|&ms| ms >= 1000);
    #[cfg(feature = "hydrate")]
    {
        if let Some(ms) = ms {
            let tick = move || {
                if !paused() {
                    refetch()
                }
            };
            if let Ok(handle) = set_interval_with_handle(tick, std::time::Duration::from_millis(ms as u64)) {
                on_cleanup(move || handle.clear());
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ms, refetch, paused);
}

enum Placed {
    Row { panel: Panel, y: i64, collapsed: bool },
    Panel { panel: Panel, result: PanelResult, x: i64, y: i64, w: i64, h: i64 },
}

/// Grid positions for the page: rows and the panels they show. Collapsed rows hide their
/// panels; with `viewPanel` only that panel is shown, filling the page.
fn layout_of(
    dashboard: &Dashboard,
    results: &[PanelResult],
    view_panel: Option<i64>,
    toggled: &[i64],
) -> Vec<Placed> {
    let result_of = |id: i64| results.iter().find(|r| r.id == id).cloned().unwrap_or_default();
    if let Some(id) = view_panel {
        return dashboard
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
    let place = |p: &Panel, y: i64| {
        let g = p.grid_pos;
        Placed::Panel {
            panel: p.clone(),
            result: result_of(p.id),
            x: g.x.clamp(0, GRID_COLUMNS - 1),
            y: y.max(0),
            w: g.w.clamp(1, GRID_COLUMNS),
            h: g.h.max(1),
        }
    };
    let panels = &dashboard.panels;
    // Rows the viewer opened or closed move everything below them up or down by their
    // panels' height, as in Grafana.
    let mut shift = 0i64;
    let mut i = 0;
    while i < panels.len() {
        let p = &panels[i];
        if !p.is_row() {
            out.push(place(p, p.grid_pos.y + shift));
            i += 1;
            continue;
        }
        let stored_collapsed = p.collapsed.unwrap_or(false);
        let collapsed = stored_collapsed != toggled.contains(&p.id);
        let row_y = p.grid_pos.y + shift;
        out.push(Placed::Row { panel: p.clone(), y: row_y, collapsed });
        let (children, next): (&[Panel], usize) = if stored_collapsed {
            (&p.panels, i + 1)
        } else {
            let end = grid::open_row_end(panels, i);
            (&panels[i + 1..end], end)
        };
        let (top, extent) = grid::span(children);
        match (stored_collapsed, collapsed) {
            (false, false) => children.iter().for_each(|c| out.push(place(c, c.grid_pos.y + shift))),
            (false, true) => shift -= extent,
            (true, false) => {
                children.iter().for_each(|c| out.push(place(c, row_y + 1 + c.grid_pos.y - top)));
                shift += extent;
            }
            (true, true) => {}
        }
        i = next;
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
    data: RwSignal<PanelData>,
    /// The panel's place on the grid (CSS), unless the edit mode has moved it.
    style: String,
    theme: Theme,
    shared: bool,
    view_href: String,
    /// True while the panel's query runs (again): a spinner shows in the header.
    #[prop(optional_no_strip)]
    loading: Option<RwSignal<bool>>,
    /// The dashboard's edit mode, on the dashboard's grid (not in the editor or an embed).
    #[prop(optional_no_strip)]
    edit: Option<LayoutEdit>,
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
            let frame = use_context::<FirstFrames>()
                .and_then(|f| f.0.iter().find(|(i, _)| *i == id).map(|(_, svg)| svg.clone()));
            view! { <ChartPanel kind=chart_kind data opts shared edit=edit.map(|e| (e, id)) frame /> }
                .into_any()
        }
        (other, None) => view! {
            <div class="panel-unsupported">{format!("Panel type {other:?} is not supported")}</div>
        }
        .into_any(),
    };
    let editing = move || edit.is_some_and(|e| e.editing());
    let loading = move || loading.is_some_and(|l| l.get());
    let style = move || edit.and_then(|e| e.position(id)).map_or_else(|| style.clone(), grid_style);
    let dragged = move || edit.is_some_and(|e| e.drag.with(|d| d.as_ref().is_some_and(|d| d.id == id)));
    // Grabbing the header moves the panel, grabbing the corner resizes it (edit mode only).
    let grab = move |resize: bool| {
        move |ev: leptos::ev::PointerEvent| {
            if let Some(e) = edit {
                e.grab(id, resize, &ev)
            }
        }
    };
    let view_link = view_href.clone();
    let edit_link = view_href.replace("viewPanel=", "editPanel=");
    let has_error = error.is_some();
    view! {
        <section class="panel" class:has-error=has_error class:dragged=dragged style=style
            data-panel-id=id.to_string() data-panel-type=kind.clone()
            data-series=move || data.with(PanelData::series_with_points)
            data-current-series=move || data.with(current_series)>
            <header class="panel-header" class:drag-handle=editing on:pointerdown=grab(false)
                tabindex=move || editing().then_some("0")
                title=move || editing().then_some("Drag to move, or arrow keys; Shift+arrow keys resize")
                on:keydown=move |ev: leptos::ev::KeyboardEvent| if edit.is_some_and(|e| e.key(id, &ev)) { ev.prevent_default() }>
                <h2 class="panel-title" title=description>{title}</h2>
                <Show when=move || !editing()>
                    <a class="panel-link" href=view_link.clone() title="View this panel alone">"View"</a>
                    <a class="panel-link panel-edit" href=edit_link.clone() title="Edit this panel">"Edit"</a>
                </Show>
                {move || loading().then(|| view! {
                    <span class="panel-loading" role="status" aria-label="Loading" title="Loading…"></span>
                })}
            </header>
            {error.map(|e| view! { <div class="panel-error" role="alert">{e}</div> })}
            <div class="panel-body">{body}</div>
            {move || editing().then(|| view! {
                <div class="resize-handle" title="Drag to resize" on:pointerdown=grab(true)></div>
            })}
        </section>
    }
}

/// Series with a point in the last two steps of the range: what is "up now" on a panel (tests
/// and the curious read it from the panel's `data-current-series`).
pub fn current_series(d: &PanelData) -> usize {
    let recent = d.end_ms - 2 * d.step_ms.max(1);
    d.last_times().into_iter().filter(|t| t.is_some_and(|t| t >= recent)).count()
}

/// The editor's preview: the panel as it will look, drawn from the preview's data.
#[component]
pub fn PanelPreview(
    panel: Panel,
    result: PanelResult,
    data: RwSignal<PanelData>,
    theme: Theme,
    /// True while the preview's query runs.
    #[prop(optional)]
    loading: Option<RwSignal<bool>>,
) -> impl IntoView {
    view! {
        <div class="editor-panel">
            <PanelBox panel result data style=String::new() theme shared=false view_href=String::new() loading />
        </div>
    }
}

/// Legend rows: colour, name and min/max/mean/last in the panel's unit.
fn legend_rows(data: &PanelData, opts: &ChartOptions) -> Vec<(String, String, [String; 4])> {
    let f = |v: Option<f64>| {
        v.map(|v| chart::units::format_value(v, &opts.unit, opts.decimals)).unwrap_or_else(|| "-".into())
    };
    data.series
        .iter()
        .zip(data.legend_stats())
        .enumerate()
        .map(|(i, (s, st))| {
            (
                chart::series_color(i).to_string(),
                s.name.clone(),
                [f(st.min), f(st.max), f(st.mean), f(st.last)],
            )
        })
        .collect()
}

#[component]
fn ChartPanel(
    kind: PanelKind,
    data: RwSignal<PanelData>,
    opts: ChartOptions,
    shared: bool,
    /// The edit mode and this panel's id: a resized panel's canvas is drawn again at its new size.
    #[prop(optional_no_strip)]
    edit: Option<(LayoutEdit, i64)>,
    /// The server's first frame, when drawn ahead of the page's render.
    #[prop(optional_no_strip)]
    frame: Option<String>,
) -> impl IntoView {
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();
    let frame_ref = NodeRef::<leptos::html::Div>::new();
    // The server's first frame; the browser keeps it through hydration and replaces it with
    // the canvas drawing, so the string is only computed on the server.
    #[cfg(feature = "ssr")]
    let svg =
        frame.unwrap_or_else(|| data.with_untracked(|d| first_frame(kind, d, &opts)).unwrap_or_default());
    #[cfg(not(feature = "ssr"))]
    let svg = {
        let _ = frame;
        String::new()
    };
    let legend_opts = opts.clone();
    let legend = move || {
        if kind == PanelKind::TimeSeries {
            data.with(|d| legend_rows(d, &legend_opts))
        } else {
            Vec::new()
        }
    };
    let tooltip = RwSignal::new(None::<(f64, Vec<String>)>);
    let drag = RwSignal::new(None::<(f64, f64)>);
    let hover = use_context::<SharedHover>().map(|h| h.0);
    let geometry = StoredValue::new(None::<chart::PlotGeometry>);
    let draw_opts = StoredValue::new(opts.clone());

    // Redraws when this panel's size changes (moving it, or others, needs no new drawing), on
    // the next frame: the new size is only on the page once this turn's DOM updates are done.
    #[cfg(feature = "hydrate")]
    let resized = Trigger::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |prev: Option<Option<(i64, i64)>>| {
        let now = edit.and_then(|(e, id)| e.position(id)).map(|g| (g.w, g.h));
        if prev.is_some_and(|p| p != now) {
            request_animation_frame(move || resized.notify());
        }
        now
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = edit;
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        resized.track();
        let Some(canvas) = canvas_ref.get() else { return };
        // Until the held-back points arrive the server's frame stands.
        if data.with(PanelData::is_held_back) {
            return;
        }
        // Follow the theme switch unless the address fixes a theme (embeds, shared links).
        let forced = Query::parse(&use_location().search.get_untracked()).get("theme").is_some();
        let dark = use_context::<crate::theme::DarkTheme>().map(|t| t.0.get());
        let drawn = data.with(|d| {
            draw_opts.with_value(|o| match dark.filter(|_| !forced) {
                Some(dark) => {
                    let mut o = o.clone();
                    o.theme = if dark { Theme::Dark } else { Theme::Light };
                    chart::draw_on_canvas(&canvas, kind, d, &o)
                }
                None => chart::draw_on_canvas(&canvas, kind, d, o),
            })
        });
        match drawn {
            Ok(geo) => {
                geometry.set_value(Some(geo));
                if let Some(frame) = frame_ref.get_untracked() {
                    frame.set_inner_html("");
                }
                let _ = canvas.set_attribute("data-drawn", "true");
                // For tests and curious users: when the canvas last changed and the newest
                // sample time it shows.
                let newest = data
                    .with_untracked(|d| d.series.iter().filter_map(|s| s.points.last()).map(|p| p.0).max());
                let _ = canvas.set_attribute("data-drawn-at", &js_sys::Date::now().to_string());
                let _ = canvas.set_attribute("data-newest", &newest.unwrap_or_default().to_string());
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
        let lines = data.with_untracked(|d| {
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
            {move || { let rows = legend(); (!rows.is_empty()).then(|| view! {
                // Rows of a grid rather than a table: each row lays itself out alone, and rows
                // scrolled out of the legend skip layout and paint (content-visibility in the
                // stylesheet). As a table, 20 legends of 50 series took ~150 ms of the browser's
                // first render of a 20-panel page; few attributes, as there are many rows.
                <div class="legend" aria-label="Legend">
                    <div class="legend-row legend-head"><span></span><span>"Min"</span><span>"Max"</span><span>"Mean"</span><span>"Last"</span></div>
                    {rows.into_iter().map(|(color, name, stats)| view! {
                        <div class="legend-row">
                            <span class="legend-name"><span class="swatch" style=format!("background:{color}")></span>{name}</span>
                            {stats.into_iter().map(|s| view! { <span>{s}</span> }).collect_view()}
                        </div>
                    }).collect_view()}
                </div>
            })}}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_points_replace_the_open_step_and_slide_the_window() {
        let mut d = PanelData {
            series: vec![chart::Series { name: "a".into(), points: vec![(0, 1.0), (10, 2.0), (20, 3.0)] }],
            start_ms: 0,
            end_ms: 20,
            step_ms: 10,
            ..PanelData::default()
        };
        merge_points(&mut d, vec![("a".into(), vec![(20, 3.5), (30, 4.0)]), ("b".into(), vec![(30, 9.0)])]);
        assert_eq!(d.series[0].points, vec![(10, 2.0), (20, 3.5), (30, 4.0)]);
        assert_eq!(d.series[1].points, vec![(30, 9.0)]);
        assert_eq!((d.start_ms, d.end_ms), (10, 30));
        // Nothing newer: nothing moves.
        merge_points(&mut d, vec![("a".into(), vec![])]);
        assert_eq!((d.start_ms, d.end_ms), (10, 30));
    }
}
