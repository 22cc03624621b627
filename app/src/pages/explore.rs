//! Explore: ad-hoc PromQL queries over Vigil's storage, evaluated at the current time and shown
//! as a table. The form works before hydration too (a plain POST to the server function), so the
//! page is usable from the first byte; after hydration it runs in place.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::model::QueryTable;

/// Runs an instant query now.
#[server]
pub async fn run_query(expr: String) -> Result<QueryTable, ServerFnError> {
    let backend = crate::model::backend()?;
    backend.instant_query(&expr).map_err(ServerFnError::new)
}

#[component]
pub fn ExplorePage() -> impl IntoView {
    let run = ServerAction::<RunQuery>::new();
    let result = run.value();
    view! {
        <Title text="Explore" />
        <h1>"Explore"</h1>
        <ActionForm action=run attr:class="query-form">
            <label for="expr" class="muted">"PromQL expression"</label>
            <textarea id="expr" name="expr" rows="3" spellcheck="false"
                placeholder="rate(vigil_http_requests_total[5m])"></textarea>
            <button type="submit" class="primary">"Run query"</button>
        </ActionForm>
        <div id="query-result">
            {move || match result.get() {
                None => view! {
                    <p class="muted">"Results of the expression, evaluated now, appear here."</p>
                }.into_any(),
                Some(Err(e)) => view! { <p class="error" id="query-error">{crate::pages::error_text(&e)}</p> }.into_any(),
                Some(Ok(table)) => view! { <ResultTable table /> }.into_any(),
            }}
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
