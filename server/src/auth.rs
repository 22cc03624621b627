//! Who may do what over HTTP: viewers read, editors also write. One axum middleware ([`guard`])
//! sits in front of every route and decides from the request alone, with the `vigil.auth` and
//! `vigil.web.embedding` settings in force (so a reload applies them).
//!
//! A request is a *write* ([`is_write`]) when its method changes things, except the POSTs that
//! only read: PromQL queries, and the UI's server functions unless their name starts with a verb
//! that changes things (`save_`, `import_`, `delete_`, …). Writes are refused with 403 when
//! the browser says they come from another site (`Sec-Fetch-Site`, `Origin`), whatever the
//! credentials, so a page elsewhere cannot make a signed-in browser change Vigil. Then an editor
//! is needed: a configured bearer token (API clients), or basic auth checked against an argon2
//! hash ([`check_credentials`]; browsers, which ask for it on the 401's `WWW-Authenticate`); with no editor configured, writes are open only when Vigil listens on
//! loopback, which keeps local use as it was. Reads need nothing while `anonymous` is on; when it
//! is off they need an editor too, or an embed token scoped to the dashboard being read.
//!
//! [`frame_headers`] adds the embedding policy to HTML pages: `frame-ancestors` with the allowed
//! origins, and `X-Frame-Options: SAMEORIGIN` when there are none.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use parking_lot::Mutex;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::{AuthConfig, EmbeddingConfig};
use crate::embed::EmbedScope;
use crate::Services;

/// POST endpoints that only read.
const READ_POSTS: &[&str] = &[
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/labels",
    "/api/v1/series",
    "/api/v1/query_exemplars",
    "/api/v1/format_query",
    "/api/v1/parse_query",
];

/// How the UI's server functions that change things are named (Leptos posts every server
/// function to `/api/<name><hash>`): the others only read, like `load_dashboard` or `explore`.
const WRITE_SERVER_FN_VERBS: &[&str] =
    &["save_", "import_", "delete_", "create_", "update_", "remove_", "set_", "restore_", "star_"];

/// The name of the server function a path calls, if it is one.
fn server_fn_name(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/")?;
    let name = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    let is_fn = name.len() < rest.len()
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    is_fn.then_some(name)
}

/// The server functions an embedded page calls.
const EMBED_SERVER_FNS: &[&str] = &["load_dashboard", "load_panel"];

/// Paths any client may read even when `anonymous` is off: probes, Vigil's own scrape, assets.
fn is_public(path: &str) -> bool {
    matches!(path, "/-/healthy" | "/-/ready" | "/metrics" | "/favicon.ico")
        || path.starts_with("/pkg/")
        || path.starts_with("/assets/")
}

/// Whether a request changes something (see the module doc).
pub fn is_write(method: &Method, path: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    if *method == Method::POST {
        if READ_POSTS.contains(&path) {
            return false;
        }
        // Queries sent through to an external datasource read, as the same queries here do.
        if let Some(rest) = path.strip_prefix("/api/datasources/proxy/uid/") {
            if let Some((_, api)) = rest.split_once('/') {
                if READ_POSTS.contains(&format!("/{api}").as_str()) {
                    return false;
                }
            }
        }
        if let Some(name) = server_fn_name(path) {
            return WRITE_SERVER_FN_VERBS.iter().any(|v| name.starts_with(v));
        }
    }
    true
}

/// Why a request is cross-site, if the browser says it is. `Sec-Fetch-Site` is the browser's
/// own verdict and wins; `Origin` is compared with the host asked for (`X-Forwarded-Host`
/// behind a proxy) only for browsers that do not send it.
pub fn cross_site(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return match site {
            "same-origin" | "none" => None,
            other => Some(format!("Sec-Fetch-Site: {other}")),
        };
    }
    let origin = text("origin")?;
    let host = text("x-forwarded-host").or_else(|| text("host")).unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, h)| h.trim_end_matches('/')).unwrap_or("");
    if origin == "null" || !origin_host.eq_ignore_ascii_case(host) {
        return Some(format!("Origin {origin} is not this server ({host})"));
    }
    None
}

/// What the request's `Authorization` header proves.
#[derive(Clone, Debug, PartialEq)]
pub enum Credentials {
    None,
    /// An editor; the user name, or `token` for a bearer token.
    Editor(String),
    /// Credentials were sent and are wrong.
    Invalid,
}

/// Basic-auth checks already done, so browsers (which send the password with every request) do
/// not pay argon2's deliberate cost each time: hashes of (user, password, stored hash).
static VERIFIED: Mutex<Option<HashSet<[u8; 32]>>> = Mutex::new(None);

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the `Authorization` header against the configured editors. Blocking: argon2 runs here.
pub fn check_credentials(headers: &HeaderMap, auth: &AuthConfig) -> Credentials {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Credentials::None;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        let ok = auth.editor_tokens.iter().any(|t| constant_time_eq(t.0.as_bytes(), rest.as_bytes()));
        return if ok { Credentials::Editor("token".into()) } else { Credentials::Invalid };
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Credentials::Invalid;
    }
    let Some((user, password)) = STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())))
    else {
        return Credentials::Invalid;
    };
    let Some(u) = auth.users.iter().find(|u| u.name == user) else { return Credentials::Invalid };
    let digest: [u8; 32] = {
        let mut h = Sha256::new();
        for part in [user.as_bytes(), password.as_bytes(), u.password_hash.0.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.finalize().into()
    };
    if VERIFIED.lock().as_ref().is_some_and(|s| s.contains(&digest)) {
        return Credentials::Editor(user);
    }
    use argon2::PasswordVerifier;
    let ok = argon2::PasswordHash::new(&u.password_hash.0)
        .is_ok_and(|hash| argon2::Argon2::default().verify_password(password.as_bytes(), &hash).is_ok());
    if !ok {
        return Credentials::Invalid;
    }
    let mut verified = VERIFIED.lock();
    let set = verified.get_or_insert_with(HashSet::new);
    if set.len() > 1024 {
        set.clear();
    }
    set.insert(digest);
    Credentials::Editor(user)
}

fn refuse(status: StatusCode, text: String) -> Response {
    let mut resp = (status, Json(json!({ "status": "error", "message": text }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Vigil\""));
    }
    resp
}

/// The embed token a read carries: `?token=` or the `X-Vigil-Embed-Token` header.
fn embed_token(req: &Request) -> Option<String> {
    if let Some(t) = req.headers().get("x-vigil-embed-token").and_then(|v| v.to_str().ok()) {
        return Some(t.to_string());
    }
    let q = req.uri().query()?;
    form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned())
}

/// Whether an embed scope covers this read: the one panel's page and image (`/d-solo`,
/// `/render/d-solo`, with its `panelId`), the whole dashboard's page and JSON for a token that is
/// not limited to a panel, and the server function that loads a dashboard page (which must hold
/// the uid it is asked for to the scope it finds in the request's extensions). Nothing else: no
/// free PromQL, no other dashboard, no other panel.
fn scope_covers(scope: &EmbedScope, path: &str, query: Option<&str>) -> bool {
    let first = |rest: &str| rest.split('/').next().unwrap_or_default().to_string();
    if let Some(rest) = path.strip_prefix("/d-solo/").or_else(|| path.strip_prefix("/render/d-solo/")) {
        let panel = query.and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "panelId")
                .and_then(|(_, v)| v.parse::<i64>().ok())
        });
        return scope.allows(&first(rest), panel);
    }
    if let Some(rest) = path.strip_prefix("/d/").or_else(|| path.strip_prefix("/api/dashboards/uid/")) {
        return scope.allows(&first(rest), None) && !path.ends_with("/export");
    }
    // The live stream checks each subscription against the scope it finds in the extensions.
    if path == "/api/live/ws" {
        return true;
    }
    server_fn_name(path).is_some_and(|name| EMBED_SERVER_FNS.contains(&name))
}

/// The access middleware; see the module doc.
pub async fn guard(State(services): State<Arc<Services>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let write = is_write(req.method(), &path);
    let config = services.config.read().clone();
    let auth = &config.vigil.auth;
    if write {
        if let Some(why) = cross_site(req.headers()) {
            return refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "cross-site requests cannot change Vigil ({why}); use Vigil's own pages or an API client"
                ),
            );
        }
    }
    if !write {
        // A signed embed link: its scope travels with the request for the page to enforce.
        if let Some(token) = embed_token(&req) {
            match services.verify_embed_token(&token) {
                Ok(scope) if scope_covers(&scope, &path, req.uri().query()) => {
                    // The UI crate cannot name `EmbedScope`; it reads the same grant as its own type.
                    req.extensions_mut().insert(app::model::EmbedGrant {
                        uid: scope.uid.clone(),
                        panel_id: scope.panel_id,
                        vars: scope.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    });
                    req.extensions_mut().insert(scope);
                    return next.run(req).await;
                }
                Ok(_) if !auth.anonymous => {
                    return refuse(StatusCode::FORBIDDEN, "this embed token is for another dashboard".into())
                }
                Err(e) if !auth.anonymous => return refuse(StatusCode::UNAUTHORIZED, e.to_string()),
                // Anonymous viewers may read anyway; the page reports a bad token itself.
                _ => {}
            }
        }
        if auth.anonymous || is_public(&path) {
            return next.run(req).await;
        }
    }
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().get(..6).is_some_and(|p| p.eq_ignore_ascii_case("basic ")));
    let checked = if basic {
        // argon2 takes tens of milliseconds on purpose: keep it off the async threads.
        let (headers, config) = (req.headers().clone(), config.clone());
        tokio::task::spawn_blocking(move || check_credentials(&headers, &config.vigil.auth))
            .await
            .unwrap_or(Credentials::Invalid)
    } else {
        check_credentials(req.headers(), auth)
    };
    match checked {
        Credentials::Editor(_) => next.run(req).await,
        Credentials::Invalid => refuse(
            StatusCode::UNAUTHORIZED,
            "invalid credentials: the bearer token or user name and password are not an editor's".into(),
        ),
        // Remote write is ingestion, like a scrape: without editors it stays open, as Prometheus's
        // receiver is; with editors, senders give a token (remote_write's `authorization`).
        Credentials::None
            if write
                && !auth.has_editors()
                && (services.listen_address.ip().is_loopback() || path == "/api/v1/write") =>
        {
            next.run(req).await
        }
        Credentials::None if !write => refuse(
            StatusCode::UNAUTHORIZED,
            "this Vigil does not allow anonymous viewers (vigil.auth.anonymous: false): sign in as an \
             editor, or use a signed embed link"
                .into(),
        ),
        Credentials::None => {
            let how = if auth.has_editors() {
                "send Authorization: Bearer <one of vigil.auth.editor_tokens>, or basic auth as one of \
                 vigil.auth.users"
            } else {
                "no editors are configured and Vigil does not listen on loopback: add \
                 vigil.auth.editor_tokens or vigil.auth.users to the configuration"
            };
            refuse(StatusCode::UNAUTHORIZED, format!("{} {path} needs an editor: {how}", req.method()))
        }
    }
}

/// The `Content-Security-Policy` value (and whether `X-Frame-Options` goes with it) for pages.
pub fn frame_policy(embedding: &EmbeddingConfig) -> (String, bool) {
    if embedding.allowed_origins.is_empty() {
        ("frame-ancestors 'self'".to_string(), true)
    } else {
        (format!("frame-ancestors 'self' {}", embedding.allowed_origins.join(" ")), false)
    }
}

/// Adds the embedding policy to HTML responses (API answers are not framed).
pub async fn frame_headers(State(services): State<Arc<Services>>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if !html {
        return resp;
    }
    let (csp, deny_others) = frame_policy(&services.config.read().vigil.web.embedding);
    // The origins were checked at load to hold only URL characters.
    if let Ok(v) = HeaderValue::from_str(&csp) {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    if deny_others {
        resp.headers_mut().insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    } else {
        resp.headers_mut().remove(header::X_FRAME_OPTIONS);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, UserConfig};

    #[test]
    fn writes_and_reads() {
        assert!(!is_write(&Method::GET, "/api/dashboards/uid/x"));
        assert!(!is_write(&Method::POST, "/api/v1/query_range"));
        assert!(!is_write(&Method::POST, "/api/load_dashboard1234567"));
        assert!(!is_write(&Method::POST, "/api/datasources/proxy/uid/ext/api/v1/query_range"));
        assert!(is_write(&Method::POST, "/api/datasources/proxy/uid/ext/api/v1/admin/tsdb/snapshot"));
        assert!(!is_write(&Method::POST, "/api/explore987"));
        assert!(!is_write(&Method::POST, "/api/check_promql42"));
        assert!(is_write(&Method::POST, "/api/save_dashboard123"));
        assert!(is_write(&Method::POST, "/api/import_dashboard123"));
        assert!(is_write(&Method::POST, "/api/delete_dashboard9"));
        assert!(is_write(&Method::POST, "/api/something/else"));
        assert!(is_write(&Method::POST, "/api/no_hash"));
        assert!(is_write(&Method::POST, "/api/dashboards/db"));
        assert!(is_write(&Method::POST, "/api/dashboards/import"));
        assert!(is_write(&Method::DELETE, "/api/dashboards/uid/x"));
        assert!(is_write(&Method::POST, "/-/reload"));
        assert!(is_write(&Method::PUT, "/-/quit"));
        assert!(is_write(&Method::POST, "/api/v1/admin/tsdb/snapshot"));
        assert!(is_write(&Method::POST, "/api/embed/tokens"));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        assert_eq!(cross_site(&headers(&[("host", "vigil:9090")])), None);
        assert_eq!(cross_site(&headers(&[("sec-fetch-site", "same-origin")])), None);
        assert_eq!(cross_site(&headers(&[("sec-fetch-site", "none")])), None);
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])).is_some());
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])).is_some());
        assert_eq!(cross_site(&headers(&[("host", "vigil:9090"), ("origin", "http://vigil:9090")])), None);
        assert!(cross_site(&headers(&[("host", "vigil:9090"), ("origin", "https://evil.example")])).is_some());
        assert!(cross_site(&headers(&[("host", "vigil:9090"), ("origin", "null")])).is_some());
        // Behind a proxy that rewrites Host: the browser's verdict, or the forwarded host.
        let proxied = [("host", "127.0.0.1:9090"), ("origin", "https://vigil.example")];
        assert!(cross_site(&headers(&proxied)).is_some());
        assert_eq!(cross_site(&headers(&[proxied[0], proxied[1], ("sec-fetch-site", "same-origin")])), None);
        assert_eq!(
            cross_site(&headers(&[proxied[0], proxied[1], ("x-forwarded-host", "vigil.example")])),
            None
        );
    }

    #[test]
    fn tokens_and_argon2_passwords() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let hash = argon2::Argon2::default().hash_password(b"hunter2hunter2", &salt).unwrap().to_string();
        let auth = AuthConfig {
            anonymous: true,
            editor_tokens: vec![Secret("0123456789abcdef-token".into())],
            users: vec![UserConfig { name: "ann".into(), password_hash: Secret(hash) }],
        };
        let basic = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        let check = |v: &str| check_credentials(&headers(&[("authorization", v)]), &auth);
        assert_eq!(check_credentials(&HeaderMap::new(), &auth), Credentials::None);
        assert_eq!(check("Bearer 0123456789abcdef-token"), Credentials::Editor("token".into()));
        assert_eq!(check("bearer 0123456789abcdef-token"), Credentials::Editor("token".into()));
        assert_eq!(check("Bearer 0123456789abcdef-toke"), Credentials::Invalid);
        assert_eq!(check(&basic("ann", "hunter2hunter2")), Credentials::Editor("ann".into()));
        // Cached the second time, and a wrong password is still wrong.
        assert_eq!(check(&basic("ann", "hunter2hunter2")), Credentials::Editor("ann".into()));
        assert_eq!(check(&basic("ann", "hunter3hunter3")), Credentials::Invalid);
        assert_eq!(check(&basic("bob", "hunter2hunter2")), Credentials::Invalid);
        assert_eq!(check("Basic !!!"), Credentials::Invalid);
        assert_eq!(check("Digest x"), Credentials::Invalid);
    }

    #[test]
    fn frame_policy_follows_allowed_origins() {
        assert_eq!(frame_policy(&EmbeddingConfig::default()), ("frame-ancestors 'self'".into(), true));
        let e = EmbeddingConfig {
            allowed_origins: vec!["https://wiki.example.com".into(), "https://*.corp".into()],
        };
        assert_eq!(
            frame_policy(&e),
            ("frame-ancestors 'self' https://wiki.example.com https://*.corp".into(), false)
        );
    }

    #[test]
    fn embed_scope_covers_its_dashboard_only() {
        let s =
            EmbedScope { uid: "a".into(), panel_id: Some(1), vars: Default::default(), expires: i64::MAX };
        let covers = |path: &str, q: Option<&str>| scope_covers(&s, path, q);
        assert!(covers("/d-solo/a/slug", Some("panelId=1&token=x")));
        assert!(covers("/render/d-solo/a", Some("panelId=1")));
        assert!(!covers("/d-solo/a/slug", Some("panelId=2")));
        assert!(!covers("/d-solo/a/slug", None));
        assert!(!covers("/d-solo/b/slug", Some("panelId=1")));
        // A panel's token does not open the whole dashboard.
        assert!(!covers("/d/a", None));
        assert!(!covers("/api/dashboards/uid/a", None));
        assert!(covers("/api/load_dashboard123", None));
        assert!(!covers("/api/v1/query", None));
        assert!(!covers("/api/dashboards/db", None));
        assert!(!covers("/explore", None));
        let whole = EmbedScope { panel_id: None, ..s.clone() };
        assert!(scope_covers(&whole, "/d/a/slug", None));
        assert!(scope_covers(&whole, "/api/dashboards/uid/a", None));
        assert!(scope_covers(&whole, "/d-solo/a", Some("panelId=7")));
        assert!(!scope_covers(&whole, "/api/dashboards/uid/a/export", None));
        assert!(!scope_covers(&whole, "/api/dashboards/uid/b", None));
    }
}
