//! The dark/light theme switch. The choice lives in `localStorage` under `vigil.theme` and on
//! `<html data-theme>`; the shell's boot script applies it before paint, this component changes it.

use leptos::prelude::*;

const STORAGE_KEY: &str = "vigil.theme";

/// Whether the dark theme is on, shared through context so canvases redraw in the new colours.
#[derive(Clone, Copy)]
pub struct DarkTheme(pub RwSignal<bool>);

/// A button that flips between the dark and light theme and remembers the choice.
#[component]
pub fn ThemeToggle() -> impl IntoView {
    // The server cannot know the stored choice; the browser corrects it right after hydration.
    let shared = use_context::<DarkTheme>().map(|d| d.0).unwrap_or_else(|| RwSignal::new(false));
    let (dark, set_dark) = (shared.read_only(), shared.write_only());
    Effect::new(move |_| set_dark.set(current_is_dark()));
    let toggle = move |_| {
        let next = !dark.get_untracked();
        apply(next);
        set_dark.set(next);
    };
    view! {
        <button
            class="theme-toggle"
            type="button"
            aria-pressed=move || if dark.get() { "true" } else { "false" }
            title=move || if dark.get() { "Switch to light theme" } else { "Switch to dark theme" }
            on:click=toggle
        >
            {move || if dark.get() { "☾ Dark" } else { "☀ Light" }}
        </button>
    }
}

#[cfg(feature = "hydrate")]
fn current_is_dark() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
        .and_then(|e| e.get_attribute("data-theme"))
        .is_some_and(|t| t == "dark")
}

#[cfg(not(feature = "hydrate"))]
fn current_is_dark() -> bool {
    false
}

#[cfg(feature = "hydrate")]
fn apply(dark: bool) {
    let name = if dark { "dark" } else { "light" };
    let Some(window) = web_sys::window() else { return };
    if let Some(root) = window.document().and_then(|d| d.document_element()) {
        // Failing to set an attribute only loses the visual change; nothing to report.
        let _ = root.set_attribute("data-theme", name);
    }
    // Private browsing can refuse storage; the theme then lasts for this page only.
    if let Ok(Some(storage)) = window.local_storage() {
        let _ = storage.set_item(STORAGE_KEY, name);
    }
}

#[cfg(not(feature = "hydrate"))]
fn apply(_dark: bool) {
    let _ = STORAGE_KEY;
}
