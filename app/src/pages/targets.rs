//! The Targets page: every scrape target of the loaded configuration, grouped by job, with its
//! health and last error.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::model::TargetInfo;
use crate::time::format_utc;

#[server(output = crate::wire::Json)]
pub async fn load_targets() -> Result<Vec<TargetInfo>, ServerFnError> {
    Ok(crate::model::backend()?.targets())
}

#[component]
pub fn TargetsPage() -> impl IntoView {
    let targets = Resource::new(|| (), |_| load_targets());
    let location = leptos_router::hooks::use_location();
    let health =
        move || crate::dashboard::url::Query::parse(&location.search.get()).get("health").map(str::to_string);
    view! {
        <Title text="Targets" />
        <h1>"Targets"</h1>
        <Suspense fallback=|| view! { <p class="muted">"Loading targets…"</p> }>
            {move || Suspend::new(async move {
                match targets.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="muted">"The configuration defines no scrape targets."</p>
                    }.into_any(),
                    Ok(list) => {
                        let filter = health();
                        let counts = |h: &str| list.iter().filter(|t| t.health == h).count();
                        let links = [("All", None, list.len()), ("Up", Some("up"), counts("up")), ("Down", Some("down"), counts("down")), ("Unknown", Some("unknown"), counts("unknown"))];
                        let nav = links.into_iter().map(|(label, h, n)| {
                            let href = match h { Some(h) => format!("/targets?health={h}"), None => "/targets".to_string() };
                            let active = filter.as_deref() == h;
                            view! { <a href=href class:active=active data-health=h.unwrap_or("all")>{format!("{label} ({n})")}</a> }
                        }).collect_view();
                        let list: Vec<TargetInfo> = list.into_iter().filter(|t| filter.as_deref().is_none_or(|h| t.health == h)).collect();
                        view! { <nav class="tabs" id="health-filter">{nav}</nav><TargetTable list /> }.into_any()
                    }
                    Err(e) => view! { <p class="error">"Could not load targets: " {e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn TargetTable(list: Vec<TargetInfo>) -> impl IntoView {
    view! {
        <table class="grid" id="targets">
            <thead>
                <tr><th>"Job"</th><th>"Endpoint"</th><th>"State"</th><th>"Labels"</th><th>"Last scrape"</th><th>"Duration"</th><th>"Interval"</th><th>"Error"</th></tr>
            </thead>
            <tbody>
                {list.into_iter().map(|t| {
                    let class = format!("health health-{}", t.health);
                    let last_scrape = if t.last_scrape_ms == 0 { "never".to_string() } else { format_utc(t.last_scrape_ms) };
                    let duration = if t.last_scrape_ms == 0 { String::new() } else { format!("{:.1} ms", t.last_duration_ms) };
                    view! {
                        <tr>
                            <td>{t.job}</td>
                            <td><a href=t.url.clone()>{t.url.clone()}</a></td>
                            <td><span class=class>{t.health.to_uppercase()}</span></td>
                            <td class="series">{t.labels}</td>
                            <td class="timestamp" data-ms=t.last_scrape_ms>{last_scrape}</td>
                            <td>{duration}</td>
                            <td title=format!("timeout {}", t.scrape_timeout)>{t.scrape_interval}</td>
                            <td class="error">{t.last_error.unwrap_or_default()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
