//! Signed embed links: a compact, URL-safe token that lets a page elsewhere show one dashboard
//! (or one panel of it, with some variables fixed) until it expires, without credentials.
//!
//! A token is `v1.<payload>.<signature>`: the payload is compact JSON ([`EmbedScope`]) in
//! unpadded URL-safe base64, the signature HMAC-SHA256 over `v1.<payload>` with a 32-byte server
//! secret. [`EmbedKeys`] keeps that secret in `<data>/embed.key`, created with mode 0600 the first
//! time a token is signed or checked, so links survive restarts and deleting the file revokes
//! every link at once. `POST /api/embed/tokens` ([`router`], editors only — the auth layer
//! enforces it) signs; `Services::verify_embed_token` checks, for the `/d-solo/…?token=` page.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use crate::web::WebState;
use crate::Services;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";
/// Links live at most a year: long enough for a wall display, short enough to age out.
pub const MAX_EXPIRY_SECONDS: i64 = 366 * 24 * 3600;
const DEFAULT_EXPIRY_SECONDS: i64 = 24 * 3600;

/// What a valid token grants: reading this dashboard (only this panel, when set) with these
/// variables fixed, until `expires` (Unix seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbedScope {
    #[serde(rename = "u")]
    pub uid: String,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub panel_id: Option<i64>,
    /// Variables the viewer cannot change: name → selected values.
    #[serde(rename = "v", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, Vec<String>>,
    #[serde(rename = "e")]
    pub expires: i64,
}

impl EmbedScope {
    /// Whether the scope lets the holder read `uid` (and `panel_id`, when the page shows one).
    pub fn allows(&self, uid: &str, panel_id: Option<i64>) -> bool {
        self.uid == uid && (self.panel_id.is_none() || self.panel_id == panel_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("the embed token is malformed (it may have been cut short when copied)")]
    Malformed,
    #[error("the embed token's signature does not match: it was changed, or signed by another server")]
    BadSignature,
    #[error("the embed token expired at {at} (Unix seconds); ask for a new link")]
    Expired { at: i64 },
    #[error("cannot use the embed key file {path}: {source}")]
    Key { path: PathBuf, source: std::io::Error },
}

/// The signing secret, loaded or created on first use.
pub struct EmbedKeys {
    path: PathBuf,
    key: Mutex<Option<[u8; 32]>>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn random_key() -> Result<[u8; 32], std::io::Error> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

fn load_or_create(path: &Path) -> Result<[u8; 32], std::io::Error> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&bytes);
            return Ok(key);
        }
        Ok(bytes) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("expected 32 bytes, found {}; delete it to make a new key", bytes.len()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = random_key()?;
    let tmp = path.with_extension("key.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(&key)?;
    f.sync_all()?;
    // Two first uses racing: the rename makes one key win; both re-read it.
    std::fs::rename(&tmp, path)?;
    let bytes = std::fs::read(path)?;
    let mut out = [0u8; 32];
    if bytes.len() != 32 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "key file changed while written"));
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

impl EmbedKeys {
    /// Keys kept in `path` (normally `<storage.tsdb.path>/embed.key`).
    pub fn new(path: PathBuf) -> EmbedKeys {
        EmbedKeys { path, key: Mutex::new(None) }
    }

    fn key(&self) -> Result<[u8; 32], EmbedError> {
        let mut cached = self.key.lock();
        if let Some(k) = *cached {
            return Ok(k);
        }
        let k = load_or_create(&self.path)
            .map_err(|source| EmbedError::Key { path: self.path.clone(), source })?;
        *cached = Some(k);
        Ok(k)
    }

    fn mac(&self, signed: &str) -> Result<HmacSha256, EmbedError> {
        let key = self.key()?;
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key).map_err(|_| EmbedError::Malformed)?;
        mac.update(signed.as_bytes());
        Ok(mac)
    }

    /// Signs `scope` into a token.
    pub fn sign(&self, scope: &EmbedScope) -> Result<String, EmbedError> {
        let payload = serde_json::to_vec(scope).map_err(|_| EmbedError::Malformed)?;
        let signed = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(payload));
        let tag = self.mac(&signed)?.finalize().into_bytes();
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// Checks a token's signature and expiry at `now` (Unix seconds).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<EmbedScope, EmbedError> {
        let (signed, tag) = token.trim().rsplit_once('.').ok_or(EmbedError::Malformed)?;
        let (version, payload) = signed.split_once('.').ok_or(EmbedError::Malformed)?;
        if version != VERSION {
            return Err(EmbedError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| EmbedError::Malformed)?;
        // verify_slice compares in constant time.
        self.mac(signed)?.verify_slice(&tag).map_err(|_| EmbedError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| EmbedError::Malformed)?;
        let scope: EmbedScope = serde_json::from_slice(&payload).map_err(|_| EmbedError::Malformed)?;
        if scope.expires <= now {
            return Err(EmbedError::Expired { at: scope.expires });
        }
        Ok(scope)
    }

    /// Checks a token now.
    pub fn verify(&self, token: &str) -> Result<EmbedScope, EmbedError> {
        self.verify_at(token, now_secs())
    }
}

pub fn router() -> Router<WebState> {
    Router::new().route("/api/embed/tokens", post(create_token))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    uid: String,
    #[serde(default)]
    panel_id: Option<i64>,
    #[serde(default)]
    vars: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    expires_in_seconds: Option<i64>,
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({ "message": text.into() }))).into_response()
}

/// `POST /api/embed/tokens` `{uid, panelId?, vars?, expiresInSeconds?}` → `{token, url, expiresAt}`.
async fn create_token(State(services): State<Arc<Services>>, body: Bytes) -> Response {
    let req: TokenRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return message(StatusCode::BAD_REQUEST, format!("invalid request: {e}")),
    };
    let expires_in = req.expires_in_seconds.unwrap_or(DEFAULT_EXPIRY_SECONDS);
    if !(1..=MAX_EXPIRY_SECONDS).contains(&expires_in) {
        return message(
            StatusCode::BAD_REQUEST,
            format!("expiresInSeconds must be between 1 and {MAX_EXPIRY_SECONDS}"),
        );
    }
    let Some(entry) = services.dashboards.get().and_then(|s| s.get(&req.uid)) else {
        return message(StatusCode::NOT_FOUND, format!("Dashboard {:?} not found", req.uid));
    };
    if let Some(id) = req.panel_id {
        if entry.dashboard.panel(id).is_none_or(|p| p.is_row()) {
            return message(StatusCode::NOT_FOUND, format!("dashboard {:?} has no panel {id}", req.uid));
        }
    }
    let scope = EmbedScope {
        uid: req.uid,
        panel_id: req.panel_id,
        vars: req.vars,
        expires: now_secs().saturating_add(expires_in),
    };
    let token = match services.embed.sign(&scope) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot sign an embed token");
            return message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    };
    Json(json!({ "token": token, "url": embed_url(&entry, &scope, &token), "expiresAt": scope.expires }))
        .into_response()
}

/// The page a token is for: one panel (`/d-solo/…?panelId=`) or the dashboard in kiosk mode,
/// with the fixed variables in the address as the page reads them.
fn embed_url(entry: &crate::dashboards::Entry, scope: &EmbedScope, token: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    let path = match scope.panel_id {
        Some(id) => {
            q.append_pair("panelId", &id.to_string());
            format!("/d-solo/{}/{}", scope.uid, entry.slug())
        }
        None => {
            q.append_pair("kiosk", "");
            entry.url()
        }
    };
    for (name, values) in &scope.vars {
        for v in values {
            q.append_pair(&format!("var-{name}"), v);
        }
    }
    q.append_pair("token", token);
    format!("{path}?{}", q.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(expires: i64) -> EmbedScope {
        EmbedScope {
            uid: "node".into(),
            panel_id: Some(3),
            vars: BTreeMap::from([("instance".into(), vec!["a:9100".into()])]),
            expires,
        }
    }

    #[test]
    fn sign_verify_expiry_and_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let keys = EmbedKeys::new(dir.path().join("embed.key"));
        let token = keys.sign(&scope(1_000)).unwrap();
        assert!(token.starts_with("v1."));
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{token}");
        assert!(token.len() < 160, "compact: {token}");
        assert_eq!(keys.verify_at(&token, 999).unwrap(), scope(1_000));
        assert!(matches!(keys.verify_at(&token, 1_000), Err(EmbedError::Expired { at: 1_000 })));

        // A payload changed to another dashboard or a later expiry fails the signature.
        let (_, sig) = token.rsplit_once('.').unwrap();
        let other = serde_json::to_vec(&EmbedScope { uid: "secret".into(), ..scope(1_000) }).unwrap();
        let forged = format!("v1.{}.{sig}", URL_SAFE_NO_PAD.encode(other));
        assert!(matches!(keys.verify_at(&forged, 0), Err(EmbedError::BadSignature)));
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(matches!(keys.verify_at(&flipped, 0), Err(EmbedError::BadSignature | EmbedError::Malformed)));
        for junk in ["", "v1", "v1.abc", "v2.e30.AAAA", "v1.!!.AAAA"] {
            assert!(keys.verify_at(junk, 0).is_err(), "{junk}");
        }

        // The key persists (same tokens valid after a restart) with owner-only permissions.
        let again = EmbedKeys::new(dir.path().join("embed.key"));
        assert_eq!(again.verify_at(&token, 0).unwrap().uid, "node");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("embed.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another server's key does not verify it.
        let other_dir = tempfile::tempdir().unwrap();
        let stranger = EmbedKeys::new(other_dir.path().join("embed.key"));
        assert!(matches!(stranger.verify_at(&token, 0), Err(EmbedError::BadSignature)));
        // Errors say what to do.
        assert!(EmbedError::Expired { at: 5 }.to_string().contains("new link"));
    }

    #[test]
    fn scope_allows_only_its_dashboard_and_panel() {
        let s = scope(10);
        assert!(s.allows("node", Some(3)));
        assert!(!s.allows("node", Some(4)));
        assert!(!s.allows("node", None));
        assert!(!s.allows("other", Some(3)));
        let whole = EmbedScope { panel_id: None, ..scope(10) };
        assert!(whole.allows("node", Some(4)) && whole.allows("node", None));
    }

    #[test]
    fn broken_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("embed.key"), b"short").unwrap();
        let keys = EmbedKeys::new(dir.path().join("embed.key"));
        let err = keys.sign(&scope(1)).unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }
}
