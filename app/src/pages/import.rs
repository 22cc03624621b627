//! `/dashboard/import`: paste or upload dashboard JSON — Vigil's own or Grafana's export format —
//! and import it. Problems are reported by JSON path; an existing uid is only replaced when the
//! user ticks "overwrite".

use leptos::prelude::*;
use leptos_meta::Title;

#[server(output = crate::wire::Json)]
pub async fn import_dashboard(
    json: String,
    overwrite: Option<String>,
) -> Result<(String, Vec<String>), ServerFnError> {
    let backend = crate::model::backend()?;
    backend.import_dashboard(&json, overwrite.is_some()).map_err(ServerFnError::new)
}

#[component]
pub fn ImportPage() -> impl IntoView {
    let action = ServerAction::<ImportDashboard>::new();
    let result = action.value();
    let text = RwSignal::new(String::new());
    let on_file = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let file = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                .and_then(|input| input.files())
                .and_then(|files| files.get(0));
            if let Some(file) = file {
                leptos::task::spawn_local(async move {
                    if let Ok(v) = wasm_bindgen_futures::JsFuture::from(file.text()).await {
                        text.set(v.as_string().unwrap_or_default());
                    }
                });
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    view! {
        <Title text="Import dashboard" />
        <h1>"Import dashboard"</h1>
        <p class="muted">"Paste dashboard JSON (Vigil's, or Grafana's export with its "<code>"${DS_PROMETHEUS}"</code>" inputs) or upload a file."</p>
        <ActionForm action attr:class="query-form" attr:id="import-form">
            <input type="file" accept=".json,application/json" on:change=on_file id="import-file" />
            <textarea name="json" id="import-json" rows="16" spellcheck="false" prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                placeholder="{\"title\": \"My dashboard\", \"panels\": []}"></textarea>
            <label><input type="checkbox" name="overwrite" value="on" />" Overwrite a dashboard with the same uid"</label>
            <button type="submit" class="primary">"Import"</button>
        </ActionForm>
        {move || match result.get() {
            None => ().into_any(),
            Some(Ok((url, notes))) => view! {
                <p id="import-done">"Imported: "<a href=url.clone()>{url.clone()}</a></p>
                {notes.into_iter().map(|n| view! { <p class="warning">{n}</p> }).collect_view()}
            }.into_any(),
            Some(Err(e)) => view! { <pre class="error" id="import-error">{crate::pages::error_text(&e)}</pre> }.into_any(),
        }}
    }
}
