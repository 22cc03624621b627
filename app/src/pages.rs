//! One module per page of the navigation, plus the not-found page.
//!
//! Every page but the dashboard is a lazy route: its code is split out of the main WebAssembly
//! module (`cargo leptos build --split`) and fetched when the page is first opened, so a dashboard
//! viewer downloads only what dashboards need. A page the server rendered has its part fetched
//! (and preloaded from the HTML) before it hydrates.

pub mod dashboard;
pub mod dashboards;
pub mod editor;
pub mod explore;
pub mod import;
pub mod status;
pub mod targets;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

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

/// A page loaded with its own part of the WebAssembly; it has no data of its own to start
/// loading alongside (each page's resources start once it renders).
macro_rules! lazy_page {
    ($(#[$doc:meta])* $route:ident => $page:path) => {
        $(#[$doc])*
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }
            fn view(_this: Self) -> AnyView {
                view! { <$page /> }.into_any()
            }
        }
    };
}

lazy_page!(
    /// The dashboard list page.
    DashboardsRoute => dashboards::DashboardsPage
);

lazy_page!(
    /// The dashboard import page.
    ImportRoute => import::ImportPage
);

lazy_page!(
    /// The Explore page.
    ExploreRoute => explore::ExplorePage
);

lazy_page!(
    /// The Targets page.
    TargetsRoute => targets::TargetsPage
);

lazy_page!(
    /// The Status page.
    StatusRoute => status::StatusPage
);
