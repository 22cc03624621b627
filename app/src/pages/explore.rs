//! Explore: ad-hoc PromQL queries over Vigil's storage.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ExplorePage() -> impl IntoView {
    view! {
        <Title text="Explore" />
        <h1>"Explore"</h1>
        <p class="muted">
            "Explore will run PromQL queries against Vigil's storage once the query engine lands; "
            "until then Vigil's own metrics are at " <a href="/metrics">"/metrics"</a> "."
        </p>
    }
}
