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

/// A provisioned external Prometheus-compatible datasource as a dashboard [`DataSource`]: the
/// page's panel queries go to it over HTTP.
pub struct External {
    ds: Datasource,
}

impl External {
    /// The external datasource a panel's reference names (by uid, or by name for a string).
    pub fn find(services: &Services, reference: &Value) -> Option<External> {
        let wanted = match reference {
            Value::String(s) => s.clone(),
            Value::Object(o) => o.get("uid").and_then(Value::as_str)?.to_string(),
            _ => return None,
        };
        let ds = all(services).into_iter().find(|d| !d.builtin && (d.uid == wanted || d.name == wanted))?;
        Some(External { ds })
    }

    fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, String> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            query.append_pair(k, v);
        }
        let url = format!("{}/{path}?{}", self.ds.url.trim_end_matches('/'), query.finish());
        let name = self.ds.name.clone();
        let auth = self.ds.basic_auth.clone();
        let fetch = async move {
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(120))
                .build()
                .map_err(|e| e.to_string())?;
            let mut req = client.get(&url);
            if let Some((user, password)) = &auth {
                req = req.basic_auth(user, Some(&password.0));
            }
            let resp = req
                .send()
                .await
                .map_err(|e| format!("datasource {name:?} did not answer: {}", e.without_url()))?;
            let bytes =
                resp.bytes().await.map_err(|e| format!("datasource {name:?}: {}", e.without_url()))?;
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("datasource {name:?} answered with invalid JSON: {e}"))?;
            if body["status"] == "success" {
                Ok(body["data"].clone())
            } else {
                Err(format!("datasource {name:?}: {}", body["error"].as_str().unwrap_or("query failed")))
            }
        };
        // The dashboard code calling this is synchronous and may itself run inside a runtime of
        // either flavour, so the request gets a thread and a small runtime of its own.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("cannot start a runtime for the datasource query: {e}"))?;
                    runtime.block_on(fetch)
                })
                .join()
                .unwrap_or_else(|_| Err("the datasource query panicked".to_string()))
        })
    }
}

fn labels_of(metric: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = metric
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn point(v: &Value) -> Option<(i64, f64)> {
    let t = v.get(0)?.as_f64()?;
    let x: f64 = v.get(1)?.as_str()?.parse().ok()?;
    Some(((t * 1000.0).round() as i64, x))
}

impl app::model::DataSource for External {
    fn range_query(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<app::model::QuerySeries>, String> {
        let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
        let data = self.get(
            "api/v1/query_range",
            &[
                ("query", expr.to_string()),
                ("start", secs(start_ms)),
                ("end", secs(end_ms)),
                ("step", secs(step_ms)),
            ],
        )?;
        Ok(data["result"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .map(|s| {
                        let points = s["values"]
                            .as_array()
                            .map(|v| v.iter().filter_map(point).collect())
                            .unwrap_or_default();
                        (labels_of(&s["metric"]), points)
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn instant_query_at(&self, expr: &str, time_ms: i64) -> Result<Vec<app::model::QuerySeries>, String> {
        let data = self.get(
            "api/v1/query",
            &[("query", expr.to_string()), ("time", format!("{:.3}", time_ms as f64 / 1000.0))],
        )?;
        Ok(match data["resultType"].as_str() {
            Some("scalar") => point(&data["result"]).map(|p| vec![(Vec::new(), vec![p])]).unwrap_or_default(),
            Some("vector") => data["result"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|s| Some((labels_of(&s["metric"]), vec![point(&s["value"])?])))
                        .collect()
                })
                .unwrap_or_default(),
            Some("matrix") => data["result"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .map(|s| {
                            let points = s["values"]
                                .as_array()
                                .map(|v| v.iter().filter_map(point).collect())
                                .unwrap_or_default();
                            (labels_of(&s["metric"]), points)
                        })
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        })
    }

    fn label_values(
        &self,
        label: &str,
        selector: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, String> {
        let mut params = vec![("start", (start_ms / 1000).to_string()), ("end", (end_ms / 1000).to_string())];
        if let Some(s) = selector {
            params.push(("match[]", s.to_string()));
        }
        let data = self.get(&format!("api/v1/label/{label}/values"), &params)?;
        Ok(data
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default())
    }

    fn label_names(&self, selector: Option<&str>, start_ms: i64, end_ms: i64) -> Result<Vec<String>, String> {
        let mut params = vec![("start", (start_ms / 1000).to_string()), ("end", (end_ms / 1000).to_string())];
        if let Some(s) = selector {
            params.push(("match[]", s.to_string()));
        }
        let data = self.get("api/v1/labels", &params)?;
        Ok(data
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default())
    }

    fn scrape_interval_ms(&self) -> i64 {
        self.ds.time_interval.as_deref().and_then(app::dashboard::timerange::parse_duration).unwrap_or(15_000)
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
