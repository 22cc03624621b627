//! The HTTP front: one axum router for the UI (server-rendered Leptos pages, their server
//! functions, the WebAssembly bundle and static assets), Vigil's own `/metrics`, and the
//! `/-/healthy` and `/-/ready` probes.
//!
//! [`router`] builds it from a [`WebState`]. Every request is counted and timed by route pattern
//! in [`Telemetry`]; responses are compressed; hashed bundle files are cached for a year,
//! other static files for an hour.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use app::dashboard::Dashboard;
use app::model::{
    Backend, DashboardMeta, DashboardSummary, DataSource, QuerySeries, QueryTable, SharedBackend, StatusInfo,
    TargetInfo,
};
use axum::body::Body;
use axum::extract::{FromRef, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{file_and_error_handler_with_context, generate_route_list, LeptosRoutes};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::PromDuration;
use crate::scrape::manager::{Health, TargetStatus};
use crate::scrape::target::Target;
use crate::telemetry::Telemetry;

/// Shared state of all handlers.
#[derive(Clone, FromRef)]
pub struct WebState {
    pub leptos_options: LeptosOptions,
    pub telemetry: Telemetry,
    pub readiness: Readiness,
    pub backend: SharedBackend,
    pub services: Arc<crate::Services>,
}

/// Whether Vigil is ready to serve queries; `/-/ready` reports it. Start-up work (later: WAL
/// replay) runs while it is false.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Leptos options for a binary built by cargo-leptos: names and paths were fixed at compile
/// time. `LEPTOS_SITE_ROOT` at run time overrides where the site files are.
pub fn leptos_options(listen: std::net::SocketAddr) -> LeptosOptions {
    let site_root = resolve_site_root(
        std::env::var("LEPTOS_SITE_ROOT").ok(),
        option_env!("LEPTOS_SITE_ROOT").unwrap_or("target/site"),
        std::env::current_exe().ok(),
    );
    LeptosOptions::builder()
        .output_name(option_env!("LEPTOS_OUTPUT_NAME").unwrap_or("vigil"))
        .site_root(site_root.display().to_string())
        .site_pkg_dir(option_env!("LEPTOS_SITE_PKG_DIR").unwrap_or("pkg"))
        .site_addr(listen)
        .hash_files(option_env!("LEPTOS_HASH_FILES") == Some("true"))
        .hash_file(std::sync::Arc::<str>::from(option_env!("LEPTOS_HASH_FILE_NAME").unwrap_or("hash.txt")))
        .build()
}

/// The site directory: an explicit override wins; otherwise the compiled-in (relative) path,
/// tried from the working directory and then beside the executable's `target/<profile>/`, so
/// `target/debug/vigil` works from any directory.
fn resolve_site_root(explicit: Option<String>, compiled: &str, exe: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = explicit {
        return PathBuf::from(dir);
    }
    let compiled = PathBuf::from(compiled);
    if compiled.is_absolute() || compiled.is_dir() {
        return compiled;
    }
    // target/<profile>/vigil → target/site when compiled is "target/site".
    let beside_exe = exe.as_deref().and_then(Path::parent).and_then(Path::parent).and_then(|target| {
        let name = compiled.file_name()?;
        Some(target.join(name))
    });
    match beside_exe {
        Some(dir) if dir.is_dir() => dir,
        _ => compiled,
    }
}

/// The UI's view of the server.
pub struct UiBackend(pub Arc<crate::Services>);

fn pairs(labels: &crate::tsdb::labels::Labels) -> Vec<(String, String)> {
    labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

impl UiBackend {
    fn db(&self) -> Result<&Arc<crate::tsdb::db::Db>, String> {
        self.0.db.get().ok_or_else(|| "storage is not ready yet".to_string())
    }

    /// Matcher sets of an optional series selector (all series when absent).
    fn matcher_sets(selector: Option<&str>) -> Result<Vec<Vec<crate::tsdb::index::Matcher>>, String> {
        match selector {
            Some(s) => crate::api::parse_selector(s).map_err(|e| e.to_string()),
            None => Ok(vec![Vec::new()]),
        }
    }
}

impl DataSource for UiBackend {
    fn range_query(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<QuerySeries>, String> {
        let db = self.db()?;
        let result =
            self.0.engine.range(db.as_ref(), expr, start_ms, end_ms, step_ms).map_err(|e| e.to_string())?;
        Ok(result.value.into_iter().map(|s| (pairs(&s.labels), s.points)).collect())
    }

    fn instant_query_at(&self, expr: &str, time_ms: i64) -> Result<Vec<QuerySeries>, String> {
        use crate::promql::Value;
        let db = self.db()?;
        let result = self.0.engine.instant(db.as_ref(), expr, time_ms).map_err(|e| e.to_string())?;
        Ok(match result.value {
            Value::Scalar(t, v) => vec![(Vec::new(), vec![(t, v)])],
            Value::String(..) => Vec::new(),
            Value::Vector(samples) => {
                samples.into_iter().map(|s| (pairs(&s.labels), vec![(s.t, s.v)])).collect()
            }
            Value::Matrix(series) => series.into_iter().map(|s| (pairs(&s.labels), s.points)).collect(),
        })
    }

    fn label_values(
        &self,
        label: &str,
        selector: Option<&str>,
        _start: i64,
        _end: i64,
    ) -> Result<Vec<String>, String> {
        let db = self.db()?;
        let mut out = Vec::new();
        for set in Self::matcher_sets(selector)? {
            out.extend(db.label_values(label, &set));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn label_names(&self, selector: Option<&str>, _start: i64, _end: i64) -> Result<Vec<String>, String> {
        let db = self.db()?;
        let mut out = Vec::new();
        for set in Self::matcher_sets(selector)? {
            out.extend(db.label_names(&set));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn for_datasource(&self, reference: &serde_json::Value) -> Option<Box<dyn DataSource + '_>> {
        crate::datasources::External::find(&self.0, reference).map(|e| Box::new(e) as Box<dyn DataSource>)
    }

    fn scrape_interval_ms(&self) -> i64 {
        // Grafana's rule: the Vigil datasource's `jsonData.timeInterval`, when provisioned, is
        // the scrape interval `$__interval` and `$__rate_interval` build on.
        let provisioned = self
            .0
            .datasources()
            .into_iter()
            .find(|d| d.builtin)
            .and_then(|d| d.time_interval)
            .and_then(|t| app::dashboard::timerange::parse_duration(&t))
            .filter(|&ms| ms > 0);
        if let Some(ms) = provisioned {
            return ms;
        }
        let config = self.0.config.read();
        let shortest = config.scrape_configs.iter().map(|c| c.interval(&config.global)).min();
        shortest.unwrap_or(config.global.scrape_interval.0).as_millis() as i64
    }
}

impl Backend for UiBackend {
    fn dashboards(&self, query: &str, tags: &[String]) -> Vec<DashboardSummary> {
        let Some(store) = self.0.dashboards.get() else { return Vec::new() };
        store
            .search(query, tags)
            .into_iter()
            .map(|e| DashboardSummary {
                url: e.url(),
                uid: e.dashboard.uid.clone(),
                title: e.dashboard.title.clone(),
                tags: e.dashboard.tags.clone(),
                provisioned: e.meta.provisioned.clone(),
            })
            .collect()
    }

    fn dashboard(&self, uid: &str) -> Option<(Dashboard, DashboardMeta)> {
        let e = self.0.dashboards.get()?.get(uid)?;
        let meta = DashboardMeta {
            url: e.url(),
            slug: e.slug(),
            can_save: !e.read_only(),
            provisioned: e.meta.provisioned.clone(),
        };
        Some((e.dashboard, meta))
    }

    fn storage_stats(&self) -> app::model::StorageStats {
        let mut out = app::model::StorageStats {
            provisioning_problems: self.0.provisioning_problems(),
            ..Default::default()
        };
        if let Some(db) = self.0.db.get() {
            let stats = db.index_stats(10);
            out.head_series = stats.num_series;
            out.label_pairs = stats.num_label_pairs;
            out.head_range = db.head().time_range();
            out.disk_bytes = db.disk_bytes();
            out.top_metrics = stats
                .series_count_by_metric_name
                .iter()
                .map(|s| (s.name.clone(), s.count as usize))
                .collect();
        }
        out
    }

    fn check_query(&self, expr: &str) -> Result<(), String> {
        if expr.trim().is_empty() {
            return Ok(());
        }
        promql_parser::parser::parse(expr).map(|_| ()).map_err(|e| e.to_string())
    }

    fn import_dashboard(&self, json: &str, overwrite: bool) -> Result<(String, Vec<String>), String> {
        let store = self.0.dashboards.get().ok_or("dashboards are not loaded yet")?;
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
        // Grafana's import API wraps the dashboard; a bare dashboard is accepted too.
        let dashboard = match value.get("dashboard") {
            Some(d) if d.is_object() => d.clone(),
            _ => value,
        };
        let known = self.0.known_datasources();
        let imported = crate::dashboards::import::normalize(dashboard, &[], &known)
            .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
        let saved = store.import(imported.dashboard, overwrite, "imported").map_err(|e| e.to_string())?;
        Ok((saved.url, imported.notes))
    }

    fn save_dashboard(&self, dashboard: Dashboard, message: &str, overwrite: bool) -> Result<i64, String> {
        let store = self.0.dashboards.get().ok_or("dashboards are not loaded yet")?;
        store.save(dashboard, overwrite, message).map(|s| s.version).map_err(|e| e.to_string())
    }
    fn status(&self) -> StatusInfo {
        self.0.status()
    }

    fn instant_query(&self, expr: &str) -> Result<QueryTable, String> {
        use crate::promql::Value;
        let db = self.0.db.get().ok_or("storage is not ready yet")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let result = self.0.engine.instant(db.as_ref(), expr, now).map_err(|e| e.to_string())?;
        let fmt = crate::api::format_value;
        let (result_type, rows) = match result.value {
            Value::Scalar(_, v) => ("scalar", vec![(String::new(), fmt(v))]),
            Value::String(_, s) => ("string", vec![(String::new(), s)]),
            Value::Vector(samples) => {
                ("vector", samples.into_iter().map(|s| (s.labels.to_string(), fmt(s.v))).collect())
            }
            Value::Matrix(series) => (
                "matrix",
                series
                    .into_iter()
                    .map(|s| {
                        let points: Vec<String> = s
                            .points
                            .iter()
                            .map(|&(t, v)| format!("{} @{}", fmt(v), t as f64 / 1000.0))
                            .collect();
                        (s.labels.to_string(), points.join("\n"))
                    })
                    .collect(),
            ),
        };
        Ok(QueryTable { result_type: result_type.to_string(), time_ms: now, rows, warnings: result.warnings })
    }

    fn targets(&self) -> Vec<TargetInfo> {
        let info = |t: &Target, s: Option<&TargetStatus>| TargetInfo {
            job: t.job.clone(),
            url: t.url.clone(),
            scrape_interval: PromDuration(t.interval).to_string(),
            scrape_timeout: PromDuration(t.timeout).to_string(),
            health: s.map_or(Health::Unknown, |s| s.health).as_str().to_string(),
            last_error: s.and_then(|s| s.last_error.clone()),
            labels: t.labels.to_string(),
            last_scrape_ms: s.map_or(0, |s| s.last_scrape_ms),
            last_duration_ms: s.map_or(0.0, |s| s.last_duration.as_secs_f64() * 1000.0),
        };
        match self.0.scrape.get() {
            Some(manager) => manager.targets().iter().map(|(t, s)| info(t, Some(s))).collect(),
            // Before storage has opened nothing is scraped yet: Prometheus's initial state.
            None => self
                .0
                .targets_for(&self.0.config.read())
                .map(|ts| ts.active.iter().map(|t| info(t, None)).collect())
                .unwrap_or_default(),
        }
    }
}

pub fn router(state: WebState) -> Router {
    let routes = generate_route_list(app::App);
    let backend = state.backend.clone();
    let context = move || provide_context(backend.clone());
    let options = state.leptos_options.clone();
    let pkg_dir = Path::new(&*options.site_root).join(&*options.site_pkg_dir);
    // Hashed names change with content, so the browser may keep them forever; unhashed names
    // must be revalidated (cheap: ServeDir answers If-Modified-Since with 304).
    let pkg_cache = if options.hash_files { "public, max-age=31536000, immutable" } else { "no-cache" };
    let pkg = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static(pkg_cache)))
        // Static and cached for good: worth the default (denser) level, unlike the pages the
        // router's fastest-level layer compresses (it leaves these, already encoded, alone).
        .layer(CompressionLayer::new())
        .service(ServeDir::new(pkg_dir).precompressed_br().precompressed_gzip());
    let pkg_route = format!("/{}", options.site_pkg_dir);

    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/-/quit", post(quit).put(quit))
        .merge(crate::api::router())
        .merge(crate::dashboards::api::router())
        .merge(crate::embed::router())
        .merge(crate::datasources::router())
        .merge(crate::live::router())
        .merge(crate::render::router())
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = options.clone();
            move || app::shell(options.clone())
        })
        .nest_service(&pkg_route, pkg)
        .fallback(file_and_error_handler_with_context::<WebState, _>(context, app::shell))
        .layer(middleware::from_fn(static_cache_headers))
        .layer(middleware::from_fn_with_state(state.services.clone(), crate::auth::frame_headers))
        .layer(middleware::from_fn_with_state(state.services.clone(), crate::auth::guard))
        .layer(middleware::from_fn_with_state(state.telemetry.clone(), track_requests))
        // The fastest level: pages and API answers are made per request, and a dashboard's
        // page carries its panels' data (megabytes for a big one, mostly base64 floats that
        // hardly compress), where the default levels spent more time compressing (0.6 s of
        // a 0.95 s response in the release build) than the smaller body saves on any link
        // faster than a few MB/s. zstd, chosen first when the browser accepts it, made that
        // page 15 % smaller on the wire than brotli at their fastest levels, in the same time.
        // The site's static files are compressed densely above.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .with_state(state)
}

async fn metrics(State(telemetry): State<Telemetry>) -> Response {
    match telemetry.encode() {
        Ok(body) => {
            ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
                .into_response()
        }
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics failed: {e}\n")).into_response()
        }
    }
}

/// `POST /-/reload`: re-reads the configuration file (with `--web.enable-lifecycle`).
async fn reload(State(services): State<Arc<crate::Services>>) -> Response {
    if !services.enable_lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n").into_response();
    }
    let s = services.clone();
    match tokio::task::spawn_blocking(move || s.reload()).await {
        Ok(Ok(())) => (StatusCode::OK, "").into_response(),
        Ok(Err(e)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")).into_response()
        }
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")).into_response()
        }
    }
}

/// `POST /-/quit`: graceful shutdown (with `--web.enable-lifecycle`).
async fn quit(State(services): State<Arc<crate::Services>>) -> Response {
    if !services.enable_lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n").into_response();
    }
    services.quit.notify_one();
    (StatusCode::OK, "Requesting termination... Goodbye!\n").into_response()
}

async fn healthy() -> &'static str {
    "Vigil is Healthy.\n"
}

async fn ready(State(readiness): State<Readiness>) -> Response {
    if readiness.is_ready() {
        "Vigil is Ready.\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

/// Files from `public/` reach the browser through the fallback; ServeDir marks them with
/// Last-Modified, which no dynamic response carries.
async fn static_cache_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    if headers.contains_key(header::LAST_MODIFIED) && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    }
    resp
}

async fn track_requests(State(telemetry): State<Telemetry>, req: Request<Body>, next: Next) -> Response {
    let handler =
        route_label(req.extensions().get::<MatchedPath>().map(MatchedPath::as_str), req.uri().path());
    let start = Instant::now();
    let resp = next.run(req).await;
    telemetry.observe_request(&handler, resp.status().as_u16(), start.elapsed().as_secs_f64());
    resp
}

/// The `handler` label: the route pattern, so that arbitrary URLs cannot create series.
fn route_label(matched: Option<&str>, path: &str) -> String {
    match matched {
        Some(p) if p.starts_with("/pkg") => "/pkg".to_string(),
        Some(p) => p.to_string(),
        None if path.starts_with("/pkg/") => "/pkg".to_string(),
        None => "other".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_are_bounded() {
        assert_eq!(route_label(Some("/metrics"), "/metrics"), "/metrics");
        assert_eq!(route_label(Some("/pkg/{*rest}"), "/pkg/vigil.1234.wasm"), "/pkg");
        assert_eq!(route_label(None, "/some/random/path"), "other");
    }

    #[test]
    fn site_root_prefers_override_then_exe_relative() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(&site).unwrap();
        let exe = dir.path().join("debug").join("vigil");
        assert_eq!(
            resolve_site_root(Some("/x".into()), "target/site", Some(exe.clone())),
            PathBuf::from("/x")
        );
        assert_eq!(resolve_site_root(None, "no/such/site", Some(exe)), site);
        assert_eq!(resolve_site_root(None, "no/such/site", None), PathBuf::from("no/such/site"));
    }
}
