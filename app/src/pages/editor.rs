//! The panel editor (`editPanel=<id>` on a dashboard's address): title, type, queries with
//! legend formats, unit, decimals, min/max, thresholds and grid position, with a live preview;
//! PromQL syntax errors are shown at their position while typing, before anything runs. Panels
//! can be added, duplicated and deleted; saving asks for a message and refuses a stale version
//! with the conflict explained. Leaving with unsaved changes asks first.

use leptos::lazy;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::chart::PanelData;
use crate::dashboard::url::Query;
use crate::dashboard::{Dashboard, GridPos, Panel, Target, ThresholdStep, ThresholdsConfig};
use crate::model::PanelResult;

/// Checks PromQL syntax; `None` when it parses, else `line:column: message` and a caret line.
#[server(output = crate::wire::Json)]
pub async fn check_promql(expr: String) -> Result<Option<String>, ServerFnError> {
    let backend = crate::model::backend()?;
    Ok(backend.check_query(&expr).err().map(|msg| locate_error(&expr, &msg)))
}

/// Where a PromQL syntax error is: the parser names some positions itself (`at position N`,
/// `char N`); for unbalanced brackets, the bracket left open or closed too often; for an
/// unexpected end, the end. Returns a byte offset.
pub fn error_offset(expr: &str, message: &str) -> Option<usize> {
    let lower = message.to_ascii_lowercase();
    for marker in ["at position ", "at char ", "position ", "char "] {
        if let Some(i) = lower.find(marker) {
            let digits: String = lower[i + marker.len()..].chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse::<usize>() {
                return Some(n.min(expr.len()));
            }
        }
    }
    let mut stack: Vec<(char, usize)> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in expr.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push((c, i)),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match stack.pop() {
                    Some((o, _)) if o == open => {}
                    _ => return Some(i),
                }
            }
            '#' => break,
            _ => {}
        }
    }
    if let Some((_, i)) = stack.last() {
        return Some(*i);
    }
    if quote.is_some() || lower.contains("end of input") || lower.contains("unexpected eof") {
        return Some(expr.len());
    }
    None
}

/// `line:column: message`, the offending line and a caret under the position (when known).
pub fn locate_error(expr: &str, message: &str) -> String {
    let Some(offset) = error_offset(expr, message) else { return message.to_string() };
    let before = &expr[..offset.min(expr.len())];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    let line = expr[line_start..].lines().next().unwrap_or("");
    format!("{line_no}:{col}: {message}\n{line}\n{}^", " ".repeat(col - 1))
}

/// Runs an edited (unsaved) panel for the dashboard's range and variables.
#[server(output = crate::wire::Json)]
pub async fn preview_panel(
    uid: String,
    search: String,
    panel_json: String,
) -> Result<PanelResult, ServerFnError> {
    use crate::dashboard::load;
    let backend = crate::model::backend()?;
    let (dashboard, _) =
        backend.dashboard(&uid).ok_or_else(|| ServerFnError::new(format!("Dashboard {uid:?} not found")))?;
    let panel: Panel =
        serde_json::from_str(&panel_json).map_err(|e| ServerFnError::new(format!("panel: {e}")))?;
    let q = Query::parse(&search);
    let now = crate::time::now_ms();
    let range = load::resolve_range(&dashboard, q.get("from"), q.get("to"), now);
    let source: &dyn crate::model::DataSource = backend.as_ref();
    Ok(load::load_panel(source, &dashboard, &panel, range, &q.variables()))
}

/// Saves the whole dashboard JSON with a message; the new version, or why not (e.g. a conflict).
#[server(output = crate::wire::Json)]
pub async fn save_dashboard(json: String, message: String) -> Result<i64, ServerFnError> {
    let backend = crate::model::backend()?;
    let dashboard =
        crate::dashboard::parse_dashboard(&json).map_err(|e| ServerFnError::new(e.to_string()))?;
    backend.save_dashboard(dashboard, &message, false).map_err(ServerFnError::new)
}

const PANEL_TYPES: &[&str] = &["timeseries", "stat", "gauge", "bargauge", "table", "heatmap", "text"];
const UNITS: &[&str] = &[
    "short",
    "none",
    "percent",
    "percentunit",
    "bytes",
    "decbytes",
    "bits",
    "bps",
    "Bps",
    "s",
    "ms",
    "µs",
    "ns",
    "reqps",
    "ops",
    "hertz",
    "celsius",
];

/// Parses `80:red, 90:dark-red` (the editor's threshold syntax) into steps after a base colour.
pub fn parse_thresholds(base: &str, steps: &str) -> Result<ThresholdsConfig, String> {
    let mut out = vec![ThresholdStep { color: base.trim().to_string(), value: None, ..Default::default() }];
    for part in steps.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (v, c) = part.split_once(':').ok_or_else(|| format!("threshold {part:?}: write value:colour"))?;
        let value: f64 =
            v.trim().parse().map_err(|_| format!("threshold {part:?}: {v:?} is not a number"))?;
        out.push(ThresholdStep { color: c.trim().to_string(), value: Some(value), ..Default::default() });
    }
    Ok(ThresholdsConfig { mode: "absolute".into(), steps: out, ..Default::default() })
}

fn thresholds_text(t: &Option<ThresholdsConfig>) -> (String, String) {
    match t {
        Some(t) => (
            t.steps
                .iter()
                .find(|s| s.value.is_none())
                .map(|s| s.color.clone())
                .unwrap_or_else(|| "green".into()),
            t.steps
                .iter()
                .filter_map(|s| s.value.map(|v| format!("{v}:{}", s.color)))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        None => ("green".into(), String::new()),
    }
}

/// A new panel below every other one.
pub fn new_panel(d: &Dashboard) -> Panel {
    let id = d.all_panels().map(|p| p.id).max().unwrap_or(0) + 1;
    let y = d.panels.iter().map(|p| p.grid_pos.y + p.grid_pos.h).max().unwrap_or(0);
    Panel {
        id,
        kind: "timeseries".into(),
        title: "New panel".into(),
        grid_pos: GridPos { x: 0, y, w: 12, h: 8 },
        targets: vec![Target { ref_id: "A".into(), ..Default::default() }],
        ..Default::default()
    }
}

fn replace_panel(d: &mut Dashboard, panel: Panel) {
    for p in d.panels.iter_mut() {
        if p.id == panel.id {
            *p = panel;
            return;
        }
        for c in p.panels.iter_mut() {
            if c.id == panel.id {
                *c = panel;
                return;
            }
        }
    }
    d.panels.push(panel);
}

fn remove_panel(d: &mut Dashboard, id: i64) {
    d.panels.retain(|p| p.id != id);
    for p in d.panels.iter_mut() {
        p.panels.retain(|c| c.id != id);
    }
}

/// Asks the browser to confirm leaving the page while there are unsaved changes (or stops).
pub(crate) fn set_leave_guard(on: bool) {
    #[cfg(feature = "hydrate")]
    if let Some(w) = web_sys::window() {
        if on {
            let handler = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::BeforeUnloadEvent)>::new(
                |ev: web_sys::BeforeUnloadEvent| {
                    ev.prevent_default();
                    ev.set_return_value("You have unsaved changes.");
                },
            );
            use wasm_bindgen::JsCast;
            w.set_onbeforeunload(Some(handler.as_ref().unchecked_ref()));
            handler.forget();
        } else {
            w.set_onbeforeunload(None);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = on;
}

/// Asks the user (a browser `confirm`); yes where there is no browser to ask.
pub(crate) fn confirm(question: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window().and_then(|w| w.confirm_with_message(question).ok()).unwrap_or(true)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = question;
        true
    }
}

/// What the panel editor opens with.
pub struct EditorArgs {
    pub dashboard: Dashboard,
    pub panel: Panel,
    /// The panel's current answer, for the preview until the queries run again.
    pub initial: PanelResult,
    pub query: Query,
    pub path: String,
    pub can_save: bool,
}

/// [`PanelEditor`] in its own part of the WebAssembly, fetched when an editor is first opened:
/// most visits to a dashboard never edit a panel, so they do not download the editor.
#[lazy]
pub fn panel_editor(args: EditorArgs) -> AnyView {
    view! { <PanelEditor args /> }.into_any()
}

/// Fetches [`panel_editor`]'s part of the WebAssembly, once. Awaited before hydrating a page that
/// opens with the editor: a lazily loaded view hydrates only if its code is already there.
#[cfg(feature = "hydrate")]
pub async fn load_panel_editor() {
    // The function `#[lazy]` generates for this; `leptos::lazy_preload!` calls it the same way.
    __preload_panel_editor().await;
}

#[component]
fn PanelEditor(args: EditorArgs) -> impl IntoView {
    let EditorArgs { dashboard, panel, initial, query, path, can_save } = args;
    let uid = dashboard.uid.clone();
    let working = RwSignal::new(dashboard);
    let edited = RwSignal::new(panel);
    let dirty = RwSignal::new(false);
    let preview = RwSignal::new(initial);
    let previewing = RwSignal::new(false);
    let status = RwSignal::new(None::<Result<String, String>>);
    let syntax = RwSignal::new(Vec::<Option<String>>::new());
    let message = RwSignal::new(String::new());
    let search = query.with("editPanel", None).to_search();
    let back_href = path.clone() + &search;

    let touch = move |f: &dyn Fn(&mut Panel)| {
        edited.update(|p| f(p));
        dirty.set(true);
        set_leave_guard(true);
    };

    let run_preview = {
        let uid = uid.clone();
        let search = search.clone();
        move || {
            let (uid, search) = (uid.clone(), search.clone());
            let json = serde_json::to_string(&edited.get_untracked()).unwrap_or_default();
            previewing.set(true);
            leptos::task::spawn_local(async move {
                match preview_panel(uid, search, json).await {
                    Ok(r) => preview.set(r),
                    Err(e) => status.set(Some(Err(crate::pages::error_text(&e)))),
                }
                previewing.set(false);
            });
        }
    };

    let check = move |i: usize, expr: String| {
        leptos::task::spawn_local(async move {
            let err = check_promql(expr).await.ok().flatten();
            syntax.update(|s| {
                if s.len() <= i {
                    s.resize(i + 1, None);
                }
                s[i] = err;
            });
        });
    };

    let save = move |_| {
        let mut d = working.get_untracked();
        replace_panel(&mut d, edited.get_untracked());
        let json = serde_json::to_string(&d).unwrap_or_default();
        let msg = message.get_untracked();
        leptos::task::spawn_local(async move {
            match save_dashboard(json, msg).await {
                Ok(version) => {
                    working.update(|w| {
                        *w = d;
                        w.version = version;
                    });
                    dirty.set(false);
                    set_leave_guard(false);
                    status.set(Some(Ok(format!("Saved as version {version}."))));
                }
                Err(e) => status.set(Some(Err(crate::pages::error_text(&e)))),
            }
        });
    };

    let navigate_to = move |href: String| {
        set_leave_guard(false);
        use_navigate()(&href, Default::default());
    };
    let back = {
        let back_href = back_href.clone();
        move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            if !dirty.get_untracked() || confirm("Leave the editor? Your unsaved changes will be lost.") {
                navigate_to(back_href.clone());
            }
        }
    };
    // The copy lives in the working dashboard until saved; the editor switches to it.
    let duplicate = {
        move |_| {
            let mut copy = edited.get_untracked();
            let fresh = new_panel(&working.get_untracked());
            copy.id = fresh.id;
            copy.grid_pos.y = fresh.grid_pos.y;
            copy.title = format!("{} (copy)", copy.title);
            working.update(|w| replace_panel(w, copy.clone()));
            edited.set(copy.clone());
            dirty.set(true);
            set_leave_guard(true);
        }
    };
    let delete = move |_| {
        let id = edited.get_untracked().id;
        working.update(|w| remove_panel(w, id));
        dirty.set(true);
        set_leave_guard(true);
        status.set(Some(Ok("Panel removed; save to keep the change.".into())));
    };

    let field = move |get: fn(&Panel) -> String, set: fn(&mut Panel, String)| {
        (
            move || get(&edited.get()),
            move |ev: leptos::ev::Event| {
                let v = event_target_value(&ev);
                touch(&|p| set(p, v.clone()));
            },
        )
    };
    let (title_v, title_set) = field(|p| p.title.clone(), |p, v| p.title = v);
    let (desc_v, desc_set) = field(|p| p.description.clone(), |p, v| p.description = v);
    let (unit_v, unit_set) = field(
        |p| p.field_config.defaults.unit.clone().unwrap_or_default(),
        |p, v| p.field_config.defaults.unit = Some(v).filter(|s| !s.is_empty()),
    );
    let (dec_v, dec_set) = field(
        |p| p.field_config.defaults.decimals.map(|d| d.to_string()).unwrap_or_default(),
        |p, v| p.field_config.defaults.decimals = v.trim().parse().ok(),
    );
    let (min_v, min_set) = field(
        |p| p.field_config.defaults.min.map(|d| d.to_string()).unwrap_or_default(),
        |p, v| p.field_config.defaults.min = v.trim().parse().ok(),
    );
    let (max_v, max_set) = field(
        |p| p.field_config.defaults.max.map(|d| d.to_string()).unwrap_or_default(),
        |p, v| p.field_config.defaults.max = v.trim().parse().ok(),
    );
    let thresholds_error = RwSignal::new(None::<String>);
    let th_base = RwSignal::new(thresholds_text(&edited.get_untracked().field_config.defaults.thresholds).0);
    let th_steps = RwSignal::new(thresholds_text(&edited.get_untracked().field_config.defaults.thresholds).1);
    let apply_thresholds = move || match parse_thresholds(&th_base.get_untracked(), &th_steps.get_untracked())
    {
        Ok(t) => {
            thresholds_error.set(None);
            touch(&|p| p.field_config.defaults.thresholds = Some(t.clone()));
        }
        Err(e) => thresholds_error.set(Some(e)),
    };
    let grid = move |get: fn(&GridPos) -> i64, set: fn(&mut GridPos, i64)| {
        (
            move || get(&edited.get().grid_pos).to_string(),
            move |ev: leptos::ev::Event| {
                if let Ok(n) = event_target_value(&ev).trim().parse::<i64>() {
                    touch(&|p| set(&mut p.grid_pos, n));
                }
            },
        )
    };
    let (gx, gx_set) = grid(|g| g.x, |g, n| g.x = n.clamp(0, 23));
    let (gy, gy_set) = grid(|g| g.y, |g, n| g.y = n.max(0));
    let (gw, gw_set) = grid(|g| g.w, |g, n| g.w = n.clamp(1, 24));
    let (gh, gh_set) = grid(|g| g.h, |g, n| g.h = n.clamp(1, 100));

    let preview_data = move || preview.get().data;
    let preview_signal = RwSignal::new(PanelData::default());
    Effect::new(move |_| preview_signal.set(preview_data()));
    let preview_panel_view = move || {
        let p = edited.get();
        let r = preview.get();
        let theme = crate::chart::Theme::Light;
        view! { <super::dashboard::PanelPreview panel=p result=r data=preview_signal theme loading=previewing /> }
    };
    let run_for_button = run_preview.clone();
    let run_for_blur = run_preview.clone();

    view! {
        <div class="editor" id="panel-editor">
            <div class="editor-bar">
                <a href=back_href on:click=back id="editor-back">"← Back to the dashboard"</a>
                <span class="muted">{move || if dirty.get() { "Unsaved changes" } else { "" }}</span>
                <button type="button" id="editor-run" on:click=move |_| run_for_button()>"Run queries"</button>
                <button type="button" id="editor-duplicate" on:click=duplicate>"Duplicate"</button>
                <button type="button" id="editor-delete" on:click=delete>"Delete panel"</button>
                <input type="text" id="save-message" placeholder="What changed?" prop:value=move || message.get()
                    on:input=move |ev| message.set(event_target_value(&ev)) />
                <button type="button" class="primary" id="editor-save" on:click=save disabled=!can_save
                    title=if can_save { "Save the dashboard" } else { "This dashboard is provisioned read-only" }>"Save"</button>
            </div>
            {move || status.get().map(|s| match s {
                Ok(m) => view! { <p class="ok" id="editor-status">{m}</p> }.into_any(),
                Err(e) => view! { <p class="error" id="editor-status">{e}</p> }.into_any(),
            })}
            <div class="editor-preview">{preview_panel_view}</div>
            <div class="editor-form">
                <section class="editor-queries">
                    <h2>"Queries"</h2>
                    {move || edited.get().targets.into_iter().enumerate().map(|(i, t)| {
                        let run_for_blur = run_for_blur.clone();
                        view! {
                            <div class="editor-query">
                                <label>{format!("{} ", if t.ref_id.is_empty() { "Query".to_string() } else { t.ref_id.clone() })}
                                    <textarea class="promql" rows="2" spellcheck="false" data-query=i.to_string()
                                        prop:value=t.expr.clone()
                                        on:input=move |ev| {
                                            let v = event_target_value(&ev);
                                            check(i, v.clone());
                                            touch(&|p| if let Some(t) = p.targets.get_mut(i) { t.expr = v.clone() });
                                        }
                                        on:blur=move |_| run_for_blur()></textarea>
                                </label>
                                {move || syntax.get().get(i).cloned().flatten().map(|e| view! {
                                    <p class="error syntax-error" data-query=i.to_string()>{e}</p>
                                })}
                                <label>"Legend "
                                    <input type="text" prop:value=t.legend_format.clone() placeholder="{{instance}}"
                                        on:change=move |ev| {
                                            let v = event_target_value(&ev);
                                            touch(&|p| if let Some(t) = p.targets.get_mut(i) { t.legend_format = v.clone() });
                                        } />
                                </label>
                                <label><input type="checkbox" prop:checked=t.instant
                                    on:change=move |ev| {
                                        let v = event_target_checked(&ev);
                                        touch(&|p| if let Some(t) = p.targets.get_mut(i) { t.instant = v });
                                    } />" Instant"</label>
                                <button type="button" on:click=move |_| touch(&|p| { if i < p.targets.len() { p.targets.remove(i); } })>"Remove"</button>
                            </div>
                        }
                    }).collect_view()}
                    <button type="button" id="add-query" on:click=move |_| touch(&|p| {
                        let letter = (b'A' + (p.targets.len() % 26) as u8) as char;
                        p.targets.push(Target { ref_id: letter.to_string(), ..Default::default() });
                    })>"Add query"</button>
                </section>
                <section class="editor-options">
                    <h2>"Panel"</h2>
                    <label>"Title"<input type="text" id="edit-title" prop:value=title_v on:input=title_set /></label>
                    <label>"Description"<input type="text" prop:value=desc_v on:input=desc_set /></label>
                    <label>"Type"
                        <select id="edit-type" on:change=move |ev| { let v = event_target_value(&ev); touch(&|p| p.kind = v.clone()) }>
                            {PANEL_TYPES.iter().map(|t| view! {
                                <option value=*t selected=move || edited.get().effective_kind() == *t>{*t}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Unit"<input type="text" list="units" prop:value=unit_v on:change=unit_set /></label>
                    <datalist id="units">{UNITS.iter().map(|u| view! { <option value=*u></option> }).collect_view()}</datalist>
                    <label>"Decimals"<input type="number" min="0" max="10" prop:value=dec_v on:change=dec_set /></label>
                    <label>"Min"<input type="text" prop:value=min_v on:change=min_set /></label>
                    <label>"Max"<input type="text" prop:value=max_v on:change=max_set /></label>
                    <label>"Threshold base colour"<input type="text" prop:value=move || th_base.get()
                        on:change=move |ev| { th_base.set(event_target_value(&ev)); apply_thresholds() } /></label>
                    <label>"Thresholds (value:colour, …)"<input type="text" placeholder="80:red, 90:dark-red" prop:value=move || th_steps.get()
                        on:change=move |ev| { th_steps.set(event_target_value(&ev)); apply_thresholds() } /></label>
                    {move || thresholds_error.get().map(|e| view! { <p class="error">{e}</p> })}
                    <h2>"Position"</h2>
                    <div class="editor-grid">
                        <label>"x"<input type="number" prop:value=gx on:change=gx_set /></label>
                        <label>"y"<input type="number" prop:value=gy on:change=gy_set /></label>
                        <label>"width"<input type="number" prop:value=gw on:change=gw_set /></label>
                        <label>"height"<input type="number" prop:value=gh on:change=gh_set /></label>
                    </div>
                </section>
            </div>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_located() {
        assert_eq!(
            locate_error("sum(rate(up[5m])", "unclosed left parenthesis"),
            "1:4: unclosed left parenthesis\nsum(rate(up[5m])\n   ^"
        );
        assert_eq!(error_offset("up{a=\"(\"}}", "x"), Some(9));
        assert_eq!(error_offset("rate(x[5m]", "unexpected end of input"), Some(4));
        assert_eq!(error_offset("up +", "unexpected end of input"), Some(4));
        assert_eq!(error_offset("a\nb)", "x"), Some(3));
        assert_eq!(
            locate_error("a\nb)", "unexpected right parenthesis"),
            "2:2: unexpected right parenthesis\nb)\n ^"
        );
        assert_eq!(error_offset("foo bar", "unexpected identifier at position 4"), Some(4));
        assert_eq!(locate_error("ok", "no position"), "no position");
    }

    #[test]
    fn thresholds_round_trip_through_the_text_form() {
        let t = parse_thresholds("green", "80:red, 90.5:dark-red").unwrap();
        assert_eq!(t.steps.len(), 3);
        assert_eq!(t.steps[2].value, Some(90.5));
        assert_eq!(thresholds_text(&Some(t)), ("green".to_string(), "80:red, 90.5:dark-red".to_string()));
        assert!(parse_thresholds("green", "80 red").unwrap_err().contains("value:colour"));
        assert!(parse_thresholds("green", "x:red").unwrap_err().contains("not a number"));
    }

    #[test]
    fn panels_are_added_below_and_removed() {
        let mut d = crate::dashboard::parse_dashboard(
            r#"{"title":"t","panels":[{"id":1,"gridPos":{"x":0,"y":0,"w":12,"h":8}},{"id":2,"type":"row","panels":[{"id":5}]}]}"#,
        )
        .unwrap();
        let p = new_panel(&d);
        assert_eq!((p.id, p.grid_pos.y), (6, 8));
        replace_panel(&mut d, p);
        assert_eq!(d.panels.len(), 3);
        remove_panel(&mut d, 5);
        assert!(d.panel(5).is_none());
    }
}
