//! One module per page of the navigation, plus the not-found page.

pub mod dashboard;
pub mod dashboards;
pub mod editor;
pub mod explore;
pub mod import;
pub mod status;
pub mod targets;

use leptos::prelude::*;
use leptos_meta::Title;

/// Shown for any path no route matches; the server also answers it with 404.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found" />
        <h1>"Page not found"</h1>
        <p>"Nothing lives at this address. Pick a page from the navigation above."</p>
    }
}

/// Server errors arrive wrapped ("error running server function: …"); show the message itself.
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(msg) => msg.clone(),
        other => other.to_string(),
    }
}
