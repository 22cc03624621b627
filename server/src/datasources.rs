//! Grafana's datasource API over the provisioned datasources: `GET /api/datasources`,
//! `GET /api/datasources/uid/{uid}`, and the query proxy
//! `/api/datasources/proxy/uid/{uid}/api/v1/…`, which sends PromQL reads (query, query_range,
//! series, labels, label values, metadata, buildinfo) on to an external Prometheus-compatible
//! server and returns its answer unchanged, so a dashboard can draw from another Prometheus.
//!
//! Vigil's own TSDB is always listed (uid `vigil`, the default unless a provisioned datasource
//! says otherwise); proxying to it redirects to the same path here, so a query never makes a
//! network round trip to itself. Only the read endpoints pass: the proxy cannot be used to reach
//! a datasource's admin API or any other URL.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::dashboards::import::{VIGIL_DATASOURCE_TYPE, VIGIL_DATASOURCE_UID};
use crate::provisioning::Datasource;
use crate::web::WebState;
use crate::Services;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/datasources", get(list))
        .route("/api/datasources/uid/{uid}", get(one))
        .route("/api/datasources/proxy/uid/{uid}/{*path}", get(proxy).post(proxy))
}

/// Every datasource a dashboard can name, Vigil's own first.
pub fn all(services: &Services) -> Vec<Datasource> {
    let mut list = services.datasources();
    let has_default = list.iter().any(|d| d.is_default);
    if !list.iter().any(|d| d.builtin) {
        list.insert(
            0,
            Datasource {
                name: "Vigil".into(),
                uid: VIGIL_DATASOURCE_UID.into(),
                kind: VIGIL_DATASOURCE_TYPE.into(),
                url: String::new(),
                access: "proxy".into(),
                is_default: !has_default,
                time_interval: None,
                http_method: Some("POST".into()),
                basic_auth: None,
                builtin: true,
            },
        );
    }
    list
}

/// Grafana's JSON for one datasource (`id` is its position: Vigil keeps no numeric ids).
fn grafana_json(i: usize, d: &Datasource) -> Value {
    json!({
        "id": i + 1,
        "uid": d.uid,
        "orgId": 1,
        "name": d.name,
        "type": d.kind,
        "typeName": "Prometheus",
        "access": d.access,
        "url": d.url,
        "isDefault": d.is_default,
        "basicAuth": d.basic_auth.is_some(),
        "readOnly": true,
        "jsonData": {"timeInterval": d.time_interval, "httpMethod": d.http_method},
    })
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({ "message": text.into() }))).into_response()
}

async fn list(State(services): State<Arc<Services>>) -> Response {
    let out: Vec<Value> = all(&services).iter().enumerate().map(|(i, d)| grafana_json(i, d)).collect();
    Json(out).into_response()
}

async fn one(State(services): State<Arc<Services>>, Path(uid): Path<String>) -> Response {
    match all(&services).iter().enumerate().find(|(_, d)| d.uid == uid) {
        Some((i, d)) => Json(grafana_json(i, d)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Data source not found"),
    }
}

/// The read endpoints of the Prometheus HTTP API the proxy passes on.
pub fn proxied_path_allowed(path: &str) -> bool {
    matches!(
        path,
        "api/v1/query"
            | "api/v1/query_range"
            | "api/v1/series"
            | "api/v1/labels"
            | "api/v1/metadata"
            | "api/v1/status/buildinfo"
    ) || path
        .strip_prefix("api/v1/label/")
        .and_then(|r| r.strip_suffix("/values"))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                // Long enough for a heavy range query, as Vigil's own --query.timeout default.
                .timeout(Duration::from_secs(120))
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

async fn proxy(
    State(services): State<Arc<Services>>,
    Path((uid, path)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !proxied_path_allowed(&path) {
        return message(
            StatusCode::FORBIDDEN,
            format!("the datasource proxy passes PromQL reads only (api/v1/query, query_range, series, labels, …), not {path:?}"),
        );
    }
    let Some(ds) = all(&services).into_iter().find(|d| d.uid == uid) else {
        return message(StatusCode::NOT_FOUND, format!("datasource {uid:?} not found"));
    };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    if ds.builtin {
        // 307 keeps the method and body: the same request, answered by this server.
        return Redirect::temporary(&format!("/{path}{query}")).into_response();
    }
    if ds.url.is_empty() {
        return message(StatusCode::BAD_GATEWAY, format!("datasource {:?} has no url", ds.name));
    }
    let client = match client() {
        Ok(c) => c,
        Err(e) => return message(StatusCode::INTERNAL_SERVER_ERROR, format!("HTTP client: {e}")),
    };
    let url = format!("{}/{path}{query}", ds.url);
    let mut req = if method == Method::POST { client.post(&url).body(body) } else { client.get(&url) };
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    if let Some((user, password)) = &ds.basic_auth {
        req = req.basic_auth(user, Some(&password.0));
    }
    match req.send().await {
        Ok(resp) => {
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
            match resp.bytes().await {
                Ok(bytes) => {
                    let mut out = (status, bytes).into_response();
                    if let Some(ct) = content_type {
                        out.headers_mut().insert(header::CONTENT_TYPE, ct);
                    }
                    out
                }
                Err(e) => message(StatusCode::BAD_GATEWAY, format!("datasource {:?}: {e}", ds.name)),
            }
        }
        // The URL may carry credentials: name the datasource, not the URL.
        Err(e) => message(
            StatusCode::BAD_GATEWAY,
            format!("datasource {:?} did not answer: {}", ds.name, e.without_url()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_pass() {
        for ok in ["api/v1/query", "api/v1/query_range", "api/v1/label/job/values", "api/v1/series"] {
            assert!(proxied_path_allowed(ok), "{ok}");
        }
        for no in [
            "api/v1/admin/tsdb/snapshot",
            "api/v1/write",
            "-/quit",
            "api/v1/label//values",
            "api/v1/label/a/b/values",
            "../etc/passwd",
            "api/v1/query/../admin",
        ] {
            assert!(!proxied_path_allowed(no), "{no}");
        }
    }
}
