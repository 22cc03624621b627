//! The dashboard list, also Vigil's home page: search by title and filter by tag. The search
//! is a plain GET form (`?query=&tag=`), so it works before hydration and the list is linkable.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

use crate::dashboard::url::Query;
use crate::model::DashboardSummary;

/// The dashboards matching the page's query string (`query`, repeated `tag`).
#[server(output = crate::wire::Json)]
pub async fn list_dashboards(search: String) -> Result<Vec<DashboardSummary>, ServerFnError> {
    let backend = crate::model::backend()?;
    let q = Query::parse(&search);
    Ok(backend.dashboards(q.get("query").unwrap_or_default(), &q.all("tag")))
}

#[component]
pub fn DashboardsPage() -> impl IntoView {
    let location = use_location();
    let params = move || {
        let q = Query::parse(&location.search.get());
        (q.get("query").unwrap_or_default().to_string(), q.all("tag"))
    };
    let list = Resource::new(move || location.search.get(), list_dashboards);
    let path = move || location.pathname.get();
    view! {
        <Title text="Dashboards" />
        <h1>"Dashboards"</h1>
        <form method="get" class="search" action=path>
            <input type="search" name="query" placeholder="Search dashboards by title"
                value=move || params().0 aria-label="Search dashboards" />
            {move || params().1.into_iter().map(|t| view! { <input type="hidden" name="tag" value=t /> }).collect_view()}
            <button type="submit">"Search"</button>
        </form>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(items) if items.is_empty() => view! {
                        <p class="muted" id="no-dashboards">"No dashboards match."</p>
                    }.into_any(),
                    Ok(items) => view! { <DashboardList items /> }.into_any(),
                    Err(e) => view! { <p class="error">{crate::pages::error_text(&e)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn DashboardList(items: Vec<DashboardSummary>) -> impl IntoView {
    view! {
        <ul class="dashboard-list" id="dashboard-list">
            {items.into_iter().map(|d| {
                let tags = d.tags.into_iter().map(|t| {
                    let href = format!("/dashboards{}", Query(vec![("tag".into(), t.clone())]).to_search());
                    view! { <a class="tag" href=href>{t}</a> }
                }).collect_view();
                view! {
                    <li>
                        <a class="dashboard-link" href=d.url>{d.title}</a>
                        {d.provisioned.map(|p| view! { <span class="muted provisioned">{format!("provisioned ({p})")}</span> })}
                        <span class="tags">{tags}</span>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}
