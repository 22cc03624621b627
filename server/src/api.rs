//! The Prometheus HTTP API (`/api/v1/...`), in Prometheus's JSON shapes, so that Grafana,
//! scripts and people who know Prometheus use Vigil unchanged.
//!
//! Every answer is the envelope `{"status": "success", "data": …}` or
//! `{"status": "error", "errorType": …, "error": …}` ([`ApiError`] maps Vigil's errors to
//! Prometheus's types and HTTP codes). Parameters come from the query string or, for POST, a
//! form body, as in Prometheus; repeated `match[]` parameters are series selectors parsed with
//! promql-parser ([`parse_selector`]). Metadata endpoints (`labels`, `label/<name>/values`,
//! `series`, `status/*`, `targets`) read the TSDB and the scrape manager; `write` is the remote
//! write 1.0 receiver (snappy-compressed protobuf). Until storage has opened, data endpoints
//! answer 503 `unavailable`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::promql::{self, ErrorKind as PromqlErrorKind, PromqlError, QueryOptions};
use crate::scrape::manager::Health;
use crate::tsdb::db::Db;
use crate::tsdb::index::{MatchOp, Matcher};
use crate::tsdb::labels::{Labels, METRIC_NAME};
use crate::web::WebState;
use crate::Services;

mod encode;

/// An API failure, with Prometheus's `errorType`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadData(String),
    #[error("{0}")]
    Execution(String),
    #[error("{0}")]
    Internal(String),
    #[error("storage is not ready yet (replaying the write-ahead log)")]
    Unavailable,
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Canceled(String),
    #[error("admin APIs disabled")]
    AdminDisabled,
}

impl ApiError {
    fn kind(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::BadData(_) => ("bad_data", StatusCode::BAD_REQUEST),
            ApiError::Execution(_) => ("execution", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
            ApiError::Unavailable => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Timeout(_) => ("timeout", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Canceled(_) => ("canceled", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::AdminDisabled => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (kind, code) = self.kind();
        (code, axum::Json(json!({"status": "error", "errorType": kind, "error": self.to_string()})))
            .into_response()
    }
}

fn success(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

/// A query's answer, its `data` already encoded (see [`encode`]).
fn success_encoded(data: &[u8], warnings: &[String], infos: &[String]) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], encode::envelope(data, warnings, infos)).into_response()
}

impl From<PromqlError> for ApiError {
    fn from(e: PromqlError) -> ApiError {
        let msg = e.to_string();
        match e.kind() {
            PromqlErrorKind::BadData => ApiError::BadData(msg),
            PromqlErrorKind::Execution => ApiError::Execution(msg),
            PromqlErrorKind::Timeout => ApiError::Timeout(msg),
            PromqlErrorKind::Canceled => ApiError::Canceled(msg),
            PromqlErrorKind::Internal => ApiError::Internal(msg),
        }
    }
}

/// Prometheus's sample value text: shortest round-trip decimal, no exponent, and `NaN`,
/// `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// A duration parameter: Prometheus duration (`5m`) or seconds (`30`, `0.5`).
fn parse_duration_param(key: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = s.parse::<f64>() {
        if (0.0..9.2e15).contains(&secs) {
            return Ok((secs * 1000.0).round() as i64);
        }
    } else if let Ok(d) = s.parse::<crate::config::PromDuration>() {
        return Ok(d.0.as_millis() as i64);
    }
    Err(ApiError::BadData(format!("invalid parameter \"{key}\": cannot parse {s:?} to a valid duration")))
}

fn query_options(p: &Params) -> Result<QueryOptions, ApiError> {
    let mut o = QueryOptions::default();
    if let Some(t) = p.get("timeout").filter(|s| !s.is_empty()) {
        o.timeout = Some(std::time::Duration::from_millis(parse_duration_param("timeout", t)? as u64));
    }
    if let Some(l) = p.get("lookback_delta").filter(|s| !s.is_empty()) {
        o.lookback_delta_ms = Some(parse_duration_param("lookback_delta", l)?);
    }
    Ok(o)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn query_expr(p: &Params) -> Result<String, ApiError> {
    match p.get("query") {
        Some(q) if !q.is_empty() => Ok(q.to_string()),
        _ => Err(ApiError::BadData("invalid parameter \"query\": empty query".to_string())),
    }
}

/// Runs an evaluation off the async threads, within `--query.max-concurrency`.
async fn evaluate<T: Send + 'static>(
    services: &Arc<Services>,
    run: impl FnOnce(&promql::Engine, &Db) -> Result<T, PromqlError> + Send + 'static,
) -> Result<T, ApiError> {
    let db = db(services)?.clone();
    let _slot = services.query_slots.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let s = services.clone();
    let result = tokio::task::spawn_blocking(move || run(&s.engine, db.as_ref()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(result)
}

async fn query(
    State(services): State<Arc<Services>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, q, &headers, &body);
    let expr = query_expr(&p)?;
    let t = p.time("time", now_ms())?;
    let opts = query_options(&p)?;
    // Encoding a large answer takes as long as computing it: off the async threads too.
    let (data, result) = evaluate(&services, move |engine, db| {
        let r = engine.instant_with(db, &expr, t, &opts)?;
        Ok((encode::value_data(&r.value), r))
    })
    .await?;
    Ok(success_encoded(&data, &result.warnings, &result.infos))
}

/// Prometheus refuses range queries with more points per series than this.
const MAX_POINTS: i64 = 11_000;

async fn query_range(
    State(services): State<Arc<Services>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, q, &headers, &body);
    let expr = query_expr(&p)?;
    let need = |key: &str| -> Result<&str, ApiError> {
        p.get(key)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::BadData(format!("invalid parameter \"{key}\": missing")))
    };
    let start = parse_time(need("start")?)
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"start\": {e}")))?;
    let end =
        parse_time(need("end")?).map_err(|e| ApiError::BadData(format!("invalid parameter \"end\": {e}")))?;
    if end < start {
        return Err(ApiError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    let step = parse_duration_param("step", need("step")?)?;
    if step <= 0 {
        return Err(ApiError::BadData(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    let opts = query_options(&p)?;
    let (data, result) = evaluate(&services, move |engine, db| {
        let r = engine.range_with(db, &expr, start, end, step, &opts)?;
        Ok((encode::matrix(&r.value), r))
    })
    .await?;
    Ok(success_encoded(&data, &result.warnings, &result.infos))
}

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/targets/metadata", get(targets_metadata))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/status/config", get(config))
        .route("/api/v1/status/flags", get(flags))
        .route("/api/v1/status/runtimeinfo", get(runtimeinfo))
        .route("/api/v1/status/tsdb", get(tsdb_status))
        .route("/api/v1/write", post(remote_write))
        .route("/api/v1/admin/tsdb/snapshot", post(snapshot).put(snapshot))
}

/// Query-string and form parameters, in order, repeated keys kept.
struct Params(Vec<(String, String)>);

impl Params {
    fn from_request(method: &Method, query: Option<String>, headers: &HeaderMap, body: &[u8]) -> Params {
        let mut all: Vec<(String, String)> = query
            .as_deref()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if method == Method::POST && is_form {
            all.extend(form_urlencoded::parse(body).into_owned());
        }
        Params(all)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn time(&self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => {
                parse_time(v).map_err(|e| ApiError::BadData(format!("invalid parameter \"{key}\": {e}")))
            }
        }
    }

    /// Every `match[]` selector as a list of matcher sets (a selector with `or` gives several).
    fn selectors(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        let mut out = Vec::new();
        for s in self.all("match[]") {
            out.extend(parse_selector(s)?);
        }
        Ok(out)
    }
}

fn db(services: &Services) -> Result<&Arc<Db>, ApiError> {
    services.db.get().ok_or(ApiError::Unavailable)
}

/// Parses a series selector (`up{job="x"}`, `{__name__=~"a.*"}`) into matcher sets; a selector
/// using `or` yields one set per alternative.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, ApiError> {
    use promql_parser::label::MatchOp as P;
    use promql_parser::parser::Expr;
    let bad = |why: String| ApiError::BadData(format!("invalid parameter \"match[]\": {why}"));
    let expr = promql_parser::parser::parse(s).map_err(bad)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(bad(format!("{s:?} is not a series selector")));
    };
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, ApiError> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        for m in ms {
            let op = match m.op {
                P::Equal => MatchOp::Equal,
                P::NotEqual => MatchOp::NotEqual,
                P::Re(_) => MatchOp::Regex,
                P::NotRe(_) => MatchOp::NotRegex,
            };
            out.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| bad(e.to_string()))?);
        }
        if let Some(name) = &vs.name {
            if !out.iter().any(|m| m.name() == METRIC_NAME) {
                out.push(Matcher::equal(METRIC_NAME, name.clone()));
            }
        }
        // Prometheus refuses selectors that would match every series.
        if out.iter().all(|m| m.matches("")) {
            return Err(bad("match[] must contain at least one non-empty matcher".to_string()));
        }
        Ok(out)
    };
    let mut sets = vec![convert(&vs.matchers.matchers)?];
    for alt in &vs.matchers.or_matchers {
        sets.push(convert(alt)?);
    }
    Ok(sets)
}

/// Parses an API time: RFC 3339 or Unix seconds (with fraction). Returns milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let ms = (secs * 1000.0).round();
        if ms.abs() > 9.2e18 {
            return Err(format!("cannot parse {s:?} to a valid timestamp: out of range"));
        }
        return Ok(ms as i64);
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{digits:0<3}");
        frac_ms = padded.get(..3)?.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    let days = app::time::days_from_civil(y, mo as u32, d as u32);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + frac_ms)
}

/// Formats epoch milliseconds as RFC 3339 in UTC with milliseconds, as Go prints them.
pub fn rfc3339(ms: i64) -> String {
    let (y, m, d, h, mi, s, milli) = app::time::split_utc(ms);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

fn labels_json(l: &Labels) -> Value {
    Value::Object(l.iter().map(|(n, v)| (n.to_string(), Value::String(v.to_string()))).collect())
}

async fn labels(
    State(services): State<Arc<Services>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, q, &headers, &body);
    let db = db(&services)?;
    let sets = p.selectors()?;
    let mut names: Vec<String> = if sets.is_empty() {
        db.label_names(&[])
    } else {
        sets.iter().flat_map(|m| db.label_names(m)).collect()
    };
    names.sort_unstable();
    names.dedup();
    Ok(success(json!(names)))
}

async fn label_values(
    State(services): State<Arc<Services>>,
    Path(name): Path<String>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, q, &headers, &[]);
    let db = db(&services)?;
    let sets = p.selectors()?;
    let mut values: Vec<String> = if sets.is_empty() {
        db.label_values(&name, &[])
    } else {
        sets.iter().flat_map(|m| db.label_values(&name, m)).collect()
    };
    values.sort_unstable();
    values.dedup();
    Ok(success(json!(values)))
}

async fn series(
    State(services): State<Arc<Services>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&method, q, &headers, &body);
    let sets = p.selectors()?;
    if sets.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".to_string()));
    }
    let start = p.time("start", i64::MIN)?;
    let end = p.time("end", i64::MAX)?;
    if end < start {
        return Err(ApiError::BadData("end timestamp must not be before start time".to_string()));
    }
    let db = db(&services)?.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<Labels>, ApiError> {
        let mut all = Vec::new();
        for m in &sets {
            let sel = db.select(m, start, end).map_err(|e| ApiError::Execution(e.to_string()))?;
            all.extend(sel.into_iter().map(|s| s.labels));
        }
        all.sort();
        all.dedup();
        Ok(all)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(success(Value::Array(found.iter().map(labels_json).collect())))
}

async fn targets(State(services): State<Arc<Services>>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_request(&Method::GET, q, &HeaderMap::new(), &[]);
    let state = p.get("state").unwrap_or("any");
    let pool = p.get("scrapePool");
    let manager = services.scrape.get().ok_or(ApiError::Unavailable)?;
    let active: Vec<Value> = manager
        .targets()
        .into_iter()
        .filter(|(t, _)| pool.is_none_or(|p| p == t.job))
        .map(|(t, s)| {
            json!({
                "discoveredLabels": labels_json(&t.discovered),
                "labels": labels_json(&t.labels),
                "scrapePool": t.job,
                "scrapeUrl": t.url,
                "globalUrl": t.url,
                "lastError": s.last_error.unwrap_or_default(),
                "lastScrape": if s.last_scrape_ms == 0 { "0001-01-01T00:00:00Z".to_string() } else { rfc3339(s.last_scrape_ms) },
                "lastScrapeDuration": s.last_duration.as_secs_f64(),
                "health": match s.health { Health::Unknown => "unknown", Health::Up => "up", Health::Down => "down" },
                "scrapeInterval": crate::config::PromDuration(t.interval).to_string(),
                "scrapeTimeout": crate::config::PromDuration(t.timeout).to_string(),
            })
        })
        .collect();
    let dropped: Vec<Value> = manager
        .dropped()
        .into_iter()
        .filter(|(job, _)| pool.is_none_or(|p| p == job))
        .map(|(_, l)| json!({"discoveredLabels": labels_json(&l)}))
        .collect();
    let data = match state {
        "active" => json!({"activeTargets": active}),
        "dropped" => json!({"droppedTargets": dropped}),
        _ => json!({"activeTargets": active, "droppedTargets": dropped}),
    };
    Ok(success(data))
}

fn limit_param(p: &Params, key: &str) -> Result<Option<usize>, ApiError> {
    match p.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 0 => Ok(None),
            Ok(n) => Ok(Some(n as usize)),
            Err(_) => Err(ApiError::BadData(format!("invalid parameter \"{key}\": {v:?} is not a number"))),
        },
    }
}

/// `GET /api/v1/metadata`: metric metadata from every target's latest scrape, distinct entries
/// per metric.
async fn metadata(
    State(services): State<Arc<Services>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&Method::GET, q, &HeaderMap::new(), &[]);
    let limit = limit_param(&p, "limit")?;
    let per_metric = limit_param(&p, "limit_per_metric")?;
    let only = p.get("metric").filter(|m| !m.is_empty());
    let manager = services.scrape.get().ok_or(ApiError::Unavailable)?;
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (_, status) in manager.targets() {
        for (name, m) in status.metadata.iter() {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let entry = json!({"type": m.kind, "help": m.help, "unit": m.unit});
            let list = out.entry(name.clone()).or_default();
            if !list.contains(&entry) && per_metric.is_none_or(|n| list.len() < n) {
                list.push(entry);
            }
        }
    }
    if let Some(n) = limit {
        out = out.into_iter().take(n).collect();
    }
    Ok(success(json!(out)))
}

/// `GET /api/v1/targets/metadata`: metadata per target, filtered by `match_target` (a label
/// selector on target labels) and `metric`.
async fn targets_metadata(
    State(services): State<Arc<Services>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&Method::GET, q, &HeaderMap::new(), &[]);
    let limit = limit_param(&p, "limit")?;
    let only = p.get("metric").filter(|m| !m.is_empty());
    let selector = match p.get("match_target").filter(|m| !m.is_empty()) {
        Some(s) => Some(parse_selector(s)?),
        None => None,
    };
    let manager = services.scrape.get().ok_or(ApiError::Unavailable)?;
    let mut out = Vec::new();
    for (target, status) in manager.targets() {
        let wanted = selector
            .as_ref()
            .is_none_or(|sets| sets.iter().any(|ms| ms.iter().all(|m| m.matches_labels(&target.labels))));
        if !wanted {
            continue;
        }
        for (name, m) in status.metadata.iter() {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            out.push(json!({
                "target": labels_json(&target.labels),
                "metric": name,
                "type": m.kind,
                "help": m.help,
                "unit": m.unit,
            }));
        }
    }
    if let Some(n) = limit {
        out.truncate(n);
    }
    Ok(success(Value::Array(out)))
}

async fn buildinfo(State(services): State<Arc<Services>>) -> Response {
    let s = services.status();
    success(json!({
        "version": s.version,
        "revision": s.revision,
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": s.rustc,
    }))
}

async fn config(State(services): State<Arc<Services>>) -> Response {
    success(json!({"yaml": services.status().config_yaml}))
}

async fn flags(State(services): State<Arc<Services>>) -> Response {
    let status = services.status();
    let map: BTreeMap<&str, &str> = status.flags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    success(json!(map))
}

async fn runtimeinfo(State(services): State<Arc<Services>>) -> Response {
    let corruptions = services.db.get().map_or(0, |db| db.open_report().replay.corruptions.len());
    let status = services.status();
    let retention = status.flags.iter().find(|(k, _)| k == "storage.tsdb.retention.time");
    success(json!({
        "startTime": rfc3339(status.start_time_ms),
        "CWD": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
        "reloadConfigSuccess": services.telemetry.config_reload_ok.get() == 1,
        "lastConfigTime": rfc3339(services.last_reload_ms()),
        "corruptionCount": corruptions,
        "storageRetention": retention.map(|(_, v)| v.as_str()).unwrap_or_default(),
    }))
}

async fn tsdb_status(
    State(services): State<Arc<Services>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_request(&Method::GET, q, &HeaderMap::new(), &[]);
    let limit = match p.get("limit") {
        None => 10,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| ApiError::BadData("limit must be a positive number".to_string()))?,
    };
    let db = db(&services)?;
    let stats = db.index_stats(limit);
    let (min, max) = db.head().time_range().unwrap_or((i64::MAX, i64::MIN));
    let list = |v: &[crate::tsdb::index::Stat]| -> Value {
        Value::Array(v.iter().map(|s| json!({"name": s.name, "value": s.count})).collect())
    };
    Ok(success(json!({
        "headStats": {
            "numSeries": stats.num_series,
            "numLabelPairs": stats.num_label_pairs,
            "chunkCount": 0,
            "minTime": min,
            "maxTime": max,
        },
        "seriesCountByMetricName": list(&stats.series_count_by_metric_name),
        "labelValueCountByLabelName": list(&stats.label_value_count_by_label_name),
        "memoryInBytesByLabelName": list(&stats.memory_in_bytes_by_label_name),
        "seriesCountByLabelValuePair": list(&stats.series_count_by_label_value_pair),
    })))
}

/// Remote write 1.0 messages (prometheus/prompb), declared by hand instead of generated: four
/// small messages do not justify a protoc build step.
pub mod prompb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// Decodes a remote-write body: snappy block format around a protobuf `WriteRequest`.
fn decode_write(body: &[u8]) -> Result<prompb::WriteRequest, ApiError> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| ApiError::BadData(format!("snappy decode of the remote write body failed: {e}")))?;
    prost::Message::decode(raw.as_slice())
        .map_err(|e| ApiError::BadData(format!("protobuf decode of the remote write body failed: {e}")))
}

/// `POST /api/v1/write`. 204 when every sample was stored; 400 (no retry) for a malformed
/// request or for samples the TSDB refused (out of order, duplicate, out of bounds) — the
/// accepted rest of the request is stored, as one batch; 5xx only for Vigil's own failures.
async fn remote_write(State(services): State<Arc<Services>>, body: Bytes) -> Result<Response, ApiError> {
    let req = decode_write(&body)?;
    let db = db(&services)?.clone();
    let stats = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let mut app = db.appender();
        for ts in &req.timeseries {
            let labels = Labels::new(ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
                .map_err(|e| ApiError::BadData(format!("invalid series labels: {e}")))?;
            if labels.metric_name().is_none() {
                return Err(ApiError::BadData(format!("series {labels} has no metric name")));
            }
            for s in &ts.samples {
                app.append(&labels, s.timestamp, s.value);
            }
        }
        app.commit().map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let refused = stats.out_of_order + stats.duplicate_timestamp + stats.out_of_bounds;
    if refused > 0 {
        return Err(ApiError::BadData(format!(
            "{refused} samples refused ({} out of order, {} duplicate timestamps with a different value, {} older than the head); {} stored",
            stats.out_of_order, stats.duplicate_timestamp, stats.out_of_bounds, stats.appended
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Go's `strconv.ParseBool`, which Prometheus uses for flags in query parameters.
fn parse_bool(key: &str, s: &str) -> Result<bool, ApiError> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ApiError::BadData(format!("unable to parse boolean '{key}' argument: {s:?}"))),
    }
}

/// The name of a new snapshot, as Prometheus makes it: UTC time and a random tail,
/// e.g. `20261126T121314Z-0123456789abcdef`.
fn snapshot_name(ms: i64) -> String {
    let (y, m, d, h, mi, s, _) = app::time::split_utc(ms);
    let id = crate::tsdb::block::new_block_id();
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z-{}", &id[id.len().saturating_sub(16)..])
}

/// `POST`/`PUT /api/v1/admin/tsdb/snapshot[?skip_head=true]` (with `--web.enable-admin-api`):
/// writes every block and, unless `skip_head`, the head as one more block into
/// `<storage.tsdb.path>/snapshots/<name>`, a directory Vigil can be started on. Answers
/// `{"name": <name>}` as Prometheus does.
async fn snapshot(
    State(services): State<Arc<Services>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !services.enable_admin_api {
        return Err(ApiError::AdminDisabled);
    }
    let p = Params::from_request(&method, q, &headers, &body);
    let skip_head = match p.get("skip_head") {
        None | Some("") => false,
        Some(v) => parse_bool("skip_head", v)?,
    };
    let db = db(&services)?.clone();
    let name = snapshot_name(now_ms());
    let dir = db.dir().join("snapshots").join(&name);
    tokio::task::spawn_blocking(move || db.snapshot(&dir, !skip_head))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("create snapshot: {e}")))?;
    Ok(success(json!({ "name": name })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_like_prometheus() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2026-11-26T08:00:00Z"), Ok(1_795_680_000_000));
        assert_eq!(parse_time("2026-11-26T09:00:00.5+01:00"), Ok(1_795_680_000_500));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
        assert_eq!(rfc3339(1_795_680_000_123), "2026-11-26T08:00:00.123Z");
        assert_eq!(parse_time(&rfc3339(-1)).unwrap(), -1);
    }

    #[test]
    fn values_format_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(-0.0), "-0");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        let ts = |ms| {
            let mut out = Vec::new();
            encode::timestamp(&mut out, ms);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(ts(1_700_000_000_500), "1700000000.5");
        assert_eq!(ts(1_700_000_000_000), "1700000000");
    }

    #[test]
    fn selectors_become_matcher_sets() {
        let sets = parse_selector(r#"up{job=~"a|b", instance!=""}"#).unwrap();
        assert_eq!(sets.len(), 1);
        let names: Vec<String> = sets[0].iter().map(|m| m.to_string()).collect();
        assert!(names.contains(&r#"__name__="up""#.to_string()), "{names:?}");
        assert!(names.contains(&r#"job=~"a|b""#.to_string()), "{names:?}");
        assert!(parse_selector(r#"{job=""}"#).is_err(), "matches everything");
        assert!(parse_selector("rate(up[5m])").is_err());
        assert!(parse_selector("up{").is_err());
    }

    #[test]
    fn snapshot_names_and_flags_parse_like_prometheus() {
        let name = snapshot_name(1_795_680_000_123);
        assert!(name.starts_with("20261126T080000Z-"), "{name}");
        assert_eq!(name.len(), "20261126T080000Z-".len() + 16);
        assert!(parse_bool("skip_head", "true").unwrap());
        assert!(!parse_bool("skip_head", "0").unwrap());
        assert!(parse_bool("skip_head", "yes").is_err());
    }

    #[test]
    fn remote_write_bodies_decode() {
        let req = prompb::WriteRequest {
            timeseries: vec![prompb::TimeSeries {
                labels: vec![prompb::Label { name: "__name__".into(), value: "x".into() }],
                samples: vec![prompb::Sample { value: 1.5, timestamp: 1000 }],
            }],
        };
        let raw = prost::Message::encode_to_vec(&req);
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        assert_eq!(decode_write(&body).unwrap(), req);
        assert!(decode_write(b"garbage").is_err());
    }
}
