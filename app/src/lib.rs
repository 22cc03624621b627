#![recursion_limit = "256"]
//! Vigil's web UI, rendered on the server and hydrated in the browser.
//!
//! [`shell`] is the HTML document the server sends; [`App`] is the router with one page per
//! navigation entry (see [`pages`]). Types that cross the wire between the server functions and
//! the browser live in [`model`], so both halves agree on them by construction. The crate builds
//! twice: with `ssr` it is linked into the `vigil` binary, with `hydrate` it becomes the
//! WebAssembly module whose [`hydrate`] entry point attaches to the server-rendered DOM.

pub mod chart;
pub mod dashboard;
pub mod model;
pub mod pages;
pub mod theme;
pub mod time;
pub mod wire;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Outlet, ParentRoute, Route, Router, Routes, A},
    path, Lazy, SsrMode,
};

/// Sets the theme before first paint so a dark-theme user never sees a light flash; the
/// [`theme::ThemeToggle`] component keeps it in sync afterwards.
const THEME_BOOT_SCRIPT: &str = "try{var t=localStorage.getItem('vigil.theme');\
if(t!=='dark'&&t!=='light'){t=matchMedia('(prefers-color-scheme: dark)').matches?'dark':'light'}\
document.documentElement.dataset.theme=t}catch(e){}";

/// The whole HTML document; the server renders it for every page request.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" data-theme="light">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <script>{THEME_BOOT_SCRIPT}</script>
                <AutoReload options=options.clone() />
                <HashedStylesheet options=options.clone() id="vigil" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The application: navigation shell around the routed pages.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(theme::DarkTheme(RwSignal::new(false)));
    view! {
        <Title formatter=|page: String| {
            if page.is_empty() { "Vigil".to_string() } else { format!("{page} · Vigil") }
        } />
        <Router>
            <Routes fallback=|| view! { <Layout><pages::NotFound /></Layout> }>
                // Embeds: one panel alone, filling the frame, without the navigation.
                <Route path=path!("/d-solo/:uid/:slug") view=pages::dashboard::SoloPage ssr=SsrMode::Async />
                <Route path=path!("/d-solo/:uid") view=pages::dashboard::SoloPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=|| view! { <Layout><Outlet /></Layout> }>
                    <Route path=path!("/") view={Lazy::<pages::DashboardsRoute>::new()} />
                    <Route path=path!("/dashboards") view={Lazy::<pages::DashboardsRoute>::new()} />
                    <Route path=path!("/d/:uid/:slug") view=pages::dashboard::DashboardPage ssr=SsrMode::Async />
                    <Route path=path!("/d/:uid") view=pages::dashboard::DashboardPage ssr=SsrMode::Async />
                    <Route path=path!("/dashboard/import") view={Lazy::<pages::ImportRoute>::new()} />
                    <Route path=path!("/explore") view={Lazy::<pages::ExploreRoute>::new()} />
                    <Route path=path!("/targets") view={Lazy::<pages::TargetsRoute>::new()} />
                    <Route path=path!("/status") view={Lazy::<pages::StatusRoute>::new()} />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The navigation bar around every page but embeds.
#[component]
fn Layout(children: Children) -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand" href="/">"Vigil"</a>
            <nav class="nav" aria-label="Main">
                <A href="/dashboards">"Dashboards"</A>
                <A href="/explore">"Explore"</A>
                <A href="/targets">"Targets"</A>
                <A href="/status">"Status"</A>
            </nav>
            <theme::ThemeToggle />
        </header>
        <main class="content">{children()}</main>
    }
}

/// Entry point of the WebAssembly module: attaches the reactive system to the server's HTML.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Some(body) = document.body() else { return };
    // Asynchronous: a lazily loaded page (see [`pages`]) hydrates once its part has arrived, and
    // the panel editor's part is fetched first when the page opens with it.
    // (wasm-bindgen's own spawn: leptos's executor is set up inside hydrate_from_async.)
    let opens_editor =
        document.location().and_then(|l| l.search().ok()).is_some_and(|s| s.contains("editPanel="));
    wasm_bindgen_futures::spawn_local(async move {
        if opens_editor {
            pages::editor::load_panel_editor().await;
        }
        leptos::mount::hydrate_from_async(body, App).await.forget();
        // Lets browser tests (and curious users) tell a live page from server HTML alone.
        if let Some(root) = document.document_element() {
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });
}
