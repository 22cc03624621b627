//! Grafana's dashboard HTTP API over the [`DashboardStore`]: `GET /api/dashboards/uid/{uid}`,
//! `POST /api/dashboards/db`, `DELETE /api/dashboards/uid/{uid}`, `POST /api/dashboards/import`
//! (through [`super::import::normalize`]) and `GET /api/search`, with Grafana's request and
//! answer shapes and status codes, so existing tooling works unchanged; plus
//! `GET /api/dashboards/uid/{uid}/export`, the JSON without the store's `id` (Grafana's UI does
//! this in the browser; `?externally=true` gives its "export for sharing externally" shape).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::import::ImportInput;
use super::store::{Entry, StoreError};
use super::DashboardStore;
use crate::web::WebState;
use crate::Services;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/dashboards/uid/{uid}", get(get_dashboard).delete(delete_dashboard))
        .route("/api/dashboards/uid/{uid}/export", get(export_dashboard))
        .route("/api/dashboards/db", post(save_dashboard))
        .route("/api/dashboards/import", post(import_dashboard))
        .route("/api/search", get(search))
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({ "message": text.into() }))).into_response()
}

// The error is the handler's finished answer, returned once per request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn store(services: &Services) -> Result<&Arc<DashboardStore>, Response> {
    services
        .dashboards
        .get()
        .ok_or_else(|| message(StatusCode::SERVICE_UNAVAILABLE, "dashboards are not loaded yet"))
}

fn rfc3339(ms: i64) -> String {
    app::time::format_utc(ms)
}

/// The `meta` object Grafana returns beside a dashboard.
pub fn meta_json(e: &Entry) -> Value {
    json!({
        "type": "db",
        "slug": e.slug(),
        "url": e.url(),
        "version": e.dashboard.version,
        "canSave": !e.read_only(),
        "canEdit": !e.read_only(),
        "canAdmin": false,
        "canStar": false,
        "canDelete": e.meta.provisioned.is_none() || e.meta.allow_delete,
        "created": rfc3339(e.meta.created_ms),
        "updated": rfc3339(e.meta.updated_ms),
        "provisioned": e.meta.provisioned.is_some(),
        "provisionedExternalId": e.meta.provisioned.clone().unwrap_or_default(),
        "folderId": 0,
        "folderUid": "",
        "folderTitle": "General",
        "isFolder": false,
    })
}

async fn get_dashboard(State(services): State<Arc<Services>>, Path(uid): Path<String>) -> Response {
    let store = match store(&services) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match store.get(&uid) {
        Some(e) => Json(json!({ "dashboard": e.dashboard, "meta": meta_json(&e) })).into_response(),
        None => message(StatusCode::NOT_FOUND, "Dashboard not found"),
    }
}

async fn export_dashboard(
    State(services): State<Arc<Services>>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let store = match store(&services) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let externally = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "externally" && v != "false"))
        .unwrap_or(false);
    match store.get(&uid) {
        Some(e) => Json(super::import::export(&e.dashboard, externally)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Dashboard not found"),
    }
}

/// `POST /api/dashboards/import`: `{dashboard, overwrite, inputs, folderUid}`. Vigil has no
/// folders, so `folderUid` is accepted and ignored.
async fn import_dashboard(State(services): State<Arc<Services>>, body: Bytes) -> Response {
    let store = match store(&services) {
        Ok(s) => s.clone(),
        Err(r) => return r,
    };
    let (mut req, dashboard, overwrite) = match dashboard_request(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let inputs: Vec<ImportInput> = match req.remove("inputs") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => match serde_json::from_value(v) {
            Ok(i) => i,
            Err(e) => return message(StatusCode::BAD_REQUEST, format!("inputs: {e}")),
        },
    };
    let known = services.known_datasources();
    let imported = match super::import::normalize(dashboard, &inputs, &known) {
        Ok(i) => i,
        Err(problems) => {
            let first = problems.first().map(ToString::to_string).unwrap_or_default();
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "message": format!("invalid dashboard: {first}"),
                    "problems": problems,
                })),
            )
                .into_response();
        }
    };
    let title = imported.dashboard.title.clone();
    let notes = imported.notes;
    match tokio::task::spawn_blocking(move || store.import(imported.dashboard, overwrite, "imported")).await {
        Ok(Ok(saved)) => Json(json!({
            "uid": saved.uid,
            "pluginId": "",
            "title": title,
            "imported": true,
            "importedUri": format!("db/{}", saved.slug),
            "importedUrl": saved.url,
            "slug": saved.slug,
            "dashboardId": saved.id,
            "folderId": 0,
            "folderUid": "",
            "importedRevision": 1,
            "revision": 1,
            "description": "",
            "path": "",
            "removed": false,
            "status": "success",
            "version": saved.version,
            "notes": notes,
        }))
        .into_response(),
        Ok(Err(e)) => store_error(e),
        Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, format!("importing failed: {e}")),
    }
}

fn store_error(e: StoreError) -> Response {
    match &e {
        StoreError::Invalid(_) | StoreError::BadUid(_) | StoreError::EmptyTitle => {
            message(StatusCode::BAD_REQUEST, e.to_string())
        }
        StoreError::NotFound(_) => message(StatusCode::NOT_FOUND, "Dashboard not found"),
        StoreError::VersionMismatch { .. } => (
            StatusCode::PRECONDITION_FAILED,
            Json(json!({ "status": "version-mismatch", "message": e.to_string() })),
        )
            .into_response(),
        StoreError::Exists(_) => (
            StatusCode::PRECONDITION_FAILED,
            Json(json!({ "status": "name-exists", "message": e.to_string() })),
        )
            .into_response(),
        StoreError::ReadOnly { .. } => message(StatusCode::BAD_REQUEST, e.to_string()),
        StoreError::Io { .. } => {
            tracing::error!(error = %e, "saving a dashboard failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

/// Parses a JSON request body, naming the position of a syntax error.
#[allow(clippy::result_large_err)]
pub fn parse_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(message(StatusCode::BAD_REQUEST, "the request body must be a JSON object")),
        Err(e) => Err(message(StatusCode::BAD_REQUEST, format!("invalid JSON in request body: {e}"))),
    }
}

/// The body of a save or an import: the request object, its `dashboard` and `overwrite`.
#[allow(clippy::result_large_err)]
fn dashboard_request(body: &[u8]) -> Result<(serde_json::Map<String, Value>, Value, bool), Response> {
    let mut req = parse_body(body)?;
    let dashboard = match req.remove("dashboard") {
        Some(d @ Value::Object(_)) => d,
        Some(_) => return Err(message(StatusCode::BAD_REQUEST, "dashboard: expected object")),
        None => return Err(message(StatusCode::BAD_REQUEST, "the request has no \"dashboard\" field")),
    };
    let overwrite = req.get("overwrite").and_then(Value::as_bool).unwrap_or(false);
    Ok((req, dashboard, overwrite))
}

async fn save_dashboard(State(services): State<Arc<Services>>, body: Bytes) -> Response {
    let store = match store(&services) {
        Ok(s) => s.clone(),
        Err(r) => return r,
    };
    let (req, dashboard, overwrite) = match dashboard_request(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let msg = req.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
    // File writes and fsyncs are blocking work.
    match tokio::task::spawn_blocking(move || store.save_json(dashboard, overwrite, &msg)).await {
        Ok(Ok(saved)) => Json(saved).into_response(),
        Ok(Err(e)) => store_error(e),
        Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, format!("saving failed: {e}")),
    }
}

async fn delete_dashboard(State(services): State<Arc<Services>>, Path(uid): Path<String>) -> Response {
    let store = match store(&services) {
        Ok(s) => s.clone(),
        Err(r) => return r,
    };
    match tokio::task::spawn_blocking(move || store.delete(&uid)).await {
        Ok(Ok(e)) => Json(json!({
            "title": e.dashboard.title,
            "message": format!("Dashboard {} deleted", e.dashboard.title),
            "id": e.dashboard.id,
        }))
        .into_response(),
        Ok(Err(e)) => store_error(e),
        Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, format!("deleting failed: {e}")),
    }
}

/// One hit of `GET /api/search`, Grafana's shape.
pub fn search_hit(e: &Entry) -> Value {
    json!({
        "id": e.dashboard.id,
        "uid": e.dashboard.uid,
        "title": e.dashboard.title,
        "uri": format!("db/{}", e.slug()),
        "url": e.url(),
        "slug": e.slug(),
        "type": "dash-db",
        "tags": e.dashboard.tags,
        "isStarred": false,
    })
}

async fn search(State(services): State<Arc<Services>>, RawQuery(query): RawQuery) -> Response {
    let store = match store(&services) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let pairs: Vec<(String, String)> =
        query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let text = pairs.iter().find(|(k, _)| k == "query").map(|(_, v)| v.as_str()).unwrap_or_default();
    let tags: Vec<String> = pairs.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.clone()).collect();
    let hits: Vec<Value> = store.search(text, &tags).iter().map(search_hit).collect();
    Json(hits).into_response()
}
