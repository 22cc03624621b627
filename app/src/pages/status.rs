//! The Status page: build, runtime, flags and loaded configuration, as Prometheus's
//! `/status`, `/flags` and `/config` pages show them.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::model::StatusInfo;

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

/// Formats epoch milliseconds as `YYYY-MM-DD HH:MM:SS UTC` without a date library: the same
/// text on server and browser, so hydration never disagrees.
pub fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_795_680_000_123), "2026-11-26 08:00:00 UTC");
        assert_eq!(format_utc(-1000), "1969-12-31 23:59:59 UTC");
    }
}
