//! The Status page: build, runtime, flags and loaded configuration, as Prometheus's
//! `/status`, `/flags` and `/config` pages show them.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::model::StatusInfo;
use crate::time::format_utc;

/// Reads the server's status for the page.
#[server]
pub async fn load_status() -> Result<StatusInfo, ServerFnError> {
    Ok(crate::model::backend()?.status())
}

#[component]
pub fn StatusPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| load_status());
    view! {
        <Title text="Status" />
        <h1>"Status"</h1>
        <Suspense fallback=|| view! { <p class="muted">"Loading status…"</p> }>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(info) => view! { <StatusTables info /> }.into_any(),
                    Err(e) => view! { <p class="error">"Could not load status: " {e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn StatusTables(info: StatusInfo) -> impl IntoView {
    let config_source = info.config_file.clone().unwrap_or_else(|| "built-in default".to_string());
    view! {
        <section class="card">
            <h2>"Build and runtime"</h2>
            <table class="kv" id="runtime-info">
                <tbody>
                    <tr><th>"Version"</th><td>{info.version.clone()}</td></tr>
                    <tr><th>"Revision"</th><td>{info.revision.clone()}</td></tr>
                    <tr><th>"Compiler"</th><td>{info.rustc.clone()}</td></tr>
                    <tr><th>"Start time"</th><td class="timestamp" data-ms=info.start_time_ms>{format_utc(info.start_time_ms)}</td></tr>
                    <tr><th>"Storage path"</th><td>{info.storage_path.clone()}</td></tr>
                    <tr><th>"Listen address"</th><td>{info.listen_address.clone()}</td></tr>
                    <tr><th>"Configuration"</th><td>{config_source}</td></tr>
                </tbody>
            </table>
        </section>
        <section class="card">
            <h2>"Command-line flags"</h2>
            <table class="kv" id="flags">
                <tbody>
                    {info.flags.into_iter().map(|(name, value)| view! {
                        <tr><th>{format!("--{name}")}</th><td>{value}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section class="card">
            <h2>"Configuration"</h2>
            <pre class="config">{info.config_yaml}</pre>
        </section>
    }
}
