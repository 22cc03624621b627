//! The dashboard list, also Vigil's home page.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn DashboardsPage() -> impl IntoView {
    view! {
        <Title text="Dashboards" />
        <h1>"Dashboards"</h1>
        <p class="muted" id="no-dashboards">"No dashboards are stored yet."</p>
    }
}
