//! The Status page: build, runtime, flags and loaded configuration, as Prometheus's
//! `/status`, `/flags` and `/config` pages show them.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::model::{StatusInfo, StorageStats};
use crate::time::format_utc;

/// Reads the server's status for the page.
#[server(output = crate::wire::Json)]
pub async fn load_status() -> Result<(StatusInfo, StorageStats), ServerFnError> {
    let backend = crate::model::backend()?;
    Ok((backend.status(), backend.storage_stats()))
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
                    Ok((info, stats)) => view! { <StorageTables stats /><StatusTables info /> }.into_any(),
                    Err(e) => view! { <p class="error">"Could not load status: " {e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn StorageTables(stats: StorageStats) -> impl IntoView {
    let range = match stats.head_range {
        Some((a, b)) => format!("{} to {}", format_utc(a), format_utc(b)),
        None => "empty".to_string(),
    };
    let problems = stats.provisioning_problems;
    view! {
        {(!problems.is_empty()).then(|| view! {
            <section class="card" id="provisioning-problems">
                <h2>"Provisioning problems"</h2>
                <ul>{problems.into_iter().map(|p| view! { <li class="error">{p}</li> }).collect_view()}</ul>
            </section>
        })}
        <section class="card">
            <h2>"Storage"</h2>
            <table class="kv" id="tsdb-stats">
                <tbody>
                    <tr><th>"Head series"</th><td>{stats.head_series}</td></tr>
                    <tr><th>"Label pairs"</th><td>{stats.label_pairs}</td></tr>
                    <tr><th>"Head time range"</th><td>{range}</td></tr>
                    <tr><th>"Bytes on disk"</th><td>{crate::chart::units::format_value(stats.disk_bytes as f64, "bytes", None)}</td></tr>
                </tbody>
            </table>
            <h2>"Top metrics by series"</h2>
            <table class="grid" id="top-metrics">
                <thead><tr><th>"Metric"</th><th>"Series"</th></tr></thead>
                <tbody>
                    {stats.top_metrics.into_iter().map(|(name, n)| view! {
                        <tr><td class="series">{name}</td><td>{n}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
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
