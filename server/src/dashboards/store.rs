//! The dashboard store: one JSON file per dashboard in a directory, written atomically (temp
//! file, fsync, rename), plus read-only dashboards provisioned in memory. Saves check versions so
//! two editors cannot silently overwrite each other.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use app::dashboard::{dashboard_from_value, slugify, valid_uid, Dashboard, ModelError};
use parking_lot::RwLock;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid dashboard: {0}")]
    Invalid(#[from] ModelError),
    #[error("dashboard not found: {0}")]
    NotFound(String),
    #[error("invalid dashboard uid {0:?}: use 1 to 40 letters, digits, '-' or '_'")]
    BadUid(String),
    #[error("Dashboard title cannot be empty")]
    EmptyTitle,
    #[error(
        "The dashboard has been changed by someone else: you saved version {yours}, the stored one is \
         version {stored}; reload it, or save with overwrite"
    )]
    VersionMismatch { yours: i64, stored: i64 },
    #[error("A dashboard with uid {0:?} already exists; import with \"overwrite\": true to replace it")]
    Exists(String),
    #[error(
        "dashboard {uid:?} is provisioned ({source_name}) and cannot be changed from the UI or API: \
         its provider does not set allowUiUpdates; copy it under a new uid to edit it"
    )]
    ReadOnly { uid: String, source_name: String },
    #[error("cannot write dashboard file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Where a dashboard came from, and what may be done to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub created_ms: i64,
    pub updated_ms: i64,
    /// `Some(name)` for provisioned dashboards: the built-in set or a provisioning provider.
    pub provisioned: Option<String>,
    /// Provisioned dashboards refuse saves unless their provider allows UI updates.
    pub allow_ui_updates: bool,
    pub allow_delete: bool,
    /// The message given with the last save.
    pub message: String,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub dashboard: Dashboard,
    pub meta: Meta,
}

impl Entry {
    pub fn slug(&self) -> String {
        slugify(&self.dashboard.title)
    }

    pub fn url(&self) -> String {
        format!("/d/{}/{}", self.dashboard.uid, self.slug())
    }

    pub fn read_only(&self) -> bool {
        self.meta.provisioned.is_some() && !self.meta.allow_ui_updates
    }
}

/// What a successful save returns (Grafana's `POST /api/dashboards/db` answer).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Saved {
    pub id: i64,
    pub uid: String,
    pub url: String,
    pub slug: String,
    pub status: &'static str,
    pub version: i64,
}

/// A file in the store directory that could not be loaded; the others still are.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadProblem {
    pub path: PathBuf,
    pub error: String,
}

pub struct DashboardStore {
    dir: PathBuf,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    by_uid: BTreeMap<String, Entry>,
    next_id: i64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// A fresh 9-character uid, like Grafana's short uids.
fn new_uid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default();
    let mut x = nanos
        ^ COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (u64::from(std::process::id()) << 32);
    let mut out = String::with_capacity(9);
    for _ in 0..9 {
        // splitmix64 step: cheap, well mixed, no dependency.
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.push(ALPHABET[(z % ALPHABET.len() as u64) as usize] as char);
    }
    out
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), std::io::Error> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
        // The rename is durable only once the directory entry is.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl DashboardStore {
    /// Opens (creating) the directory and loads every `*.json` in it. Files that cannot be read or
    /// parsed are returned as problems and left untouched on disk.
    pub fn open(dir: &Path) -> Result<(DashboardStore, Vec<LoadProblem>), StoreError> {
        let io = |source| StoreError::Io { path: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut inner = Inner { by_uid: BTreeMap::new(), next_id: 1 };
        let mut problems = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        files.sort();
        for path in files {
            let loaded = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| app::dashboard::parse_dashboard(&text).map_err(|e| e.to_string()));
            let problem = |error: String| LoadProblem { path: path.clone(), error };
            match loaded {
                Ok(d) if !valid_uid(&d.uid) => problems.push(problem(format!("invalid uid {:?}", d.uid))),
                Ok(d) if inner.by_uid.contains_key(&d.uid) => {
                    problems.push(problem(format!("uid {:?} is used by another file", d.uid)))
                }
                Ok(mut d) => {
                    let mtime = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or_default();
                    let id = match d.id {
                        Some(id) if id > 0 => id,
                        _ => inner.next_id,
                    };
                    d.id = Some(id);
                    inner.next_id = inner.next_id.max(id + 1);
                    let meta = Meta {
                        created_ms: mtime,
                        updated_ms: mtime,
                        provisioned: None,
                        allow_ui_updates: true,
                        allow_delete: true,
                        message: String::new(),
                    };
                    inner.by_uid.insert(d.uid.clone(), Entry { dashboard: d, meta });
                }
                Err(e) => problems.push(problem(e)),
            }
        }
        for p in &problems {
            tracing::warn!(file = %p.path.display(), error = %p.error, "dashboard file not loaded");
        }
        Ok((DashboardStore { dir: dir.to_path_buf(), inner: RwLock::new(inner) }, problems))
    }

    /// Adds or replaces a provisioned dashboard (kept in memory; its source is the file or the
    /// binary it came from). A stored dashboard with the same uid is shadowed, as in Grafana.
    pub fn provision(
        &self,
        mut dashboard: Dashboard,
        source_name: &str,
        allow_ui_updates: bool,
        allow_delete: bool,
    ) {
        let mut inner = self.inner.write();
        let id = match inner.by_uid.get(&dashboard.uid) {
            Some(e) => e.dashboard.id.unwrap_or_default(),
            None => {
                inner.next_id += 1;
                inner.next_id - 1
            }
        };
        dashboard.id = Some(id);
        if dashboard.version == 0 {
            dashboard.version = 1;
        }
        let now = now_ms();
        let meta = Meta {
            created_ms: now,
            updated_ms: now,
            provisioned: Some(source_name.to_string()),
            allow_ui_updates,
            allow_delete,
            message: String::new(),
        };
        inner.by_uid.insert(dashboard.uid.clone(), Entry { dashboard, meta });
    }

    /// Takes out a dashboard provisioned by `source_name` (its file is gone). A dashboard saved
    /// under the same uid in the store directory (an edit allowed by `allowUiUpdates`) is what
    /// remains, as after a restart.
    pub fn unprovision(&self, uid: &str, source_name: &str) {
        let mut inner = self.inner.write();
        let ours = inner.by_uid.get(uid).is_some_and(|e| e.meta.provisioned.as_deref() == Some(source_name));
        if !ours {
            return;
        }
        let Some(old) = inner.by_uid.remove(uid) else { return };
        let path = self.dir.join(format!("{uid}.json"));
        let stored =
            std::fs::read_to_string(&path).ok().and_then(|t| app::dashboard::parse_dashboard(&t).ok());
        if let Some(mut d) = stored.filter(|d| d.uid == uid) {
            d.id = old.dashboard.id;
            let meta = Meta {
                created_ms: old.meta.created_ms,
                updated_ms: old.meta.updated_ms,
                provisioned: None,
                allow_ui_updates: true,
                allow_delete: true,
                message: String::new(),
            };
            inner.by_uid.insert(uid.to_string(), Entry { dashboard: d, meta });
        }
    }

    pub fn get(&self, uid: &str) -> Option<Entry> {
        self.inner.read().by_uid.get(uid).cloned()
    }

    /// Dashboards whose title contains `query` (case-insensitive) and that carry every tag in
    /// `tags`, sorted by title.
    pub fn search(&self, query: &str, tags: &[String]) -> Vec<Entry> {
        let q = query.to_lowercase();
        let inner = self.inner.read();
        let mut found: Vec<Entry> = inner
            .by_uid
            .values()
            .filter(|e| q.is_empty() || e.dashboard.title.to_lowercase().contains(&q))
            .filter(|e| tags.iter().all(|t| e.dashboard.tags.contains(t)))
            .cloned()
            .collect();
        found.sort_by_key(|e| e.dashboard.title.to_lowercase());
        found
    }

    /// Saves a dashboard (Grafana's semantics): without a uid it is new; with one, its `version`
    /// must equal the stored version unless `overwrite`. The stored version goes up by one.
    pub fn save(&self, dashboard: Dashboard, overwrite: bool, message: &str) -> Result<Saved, StoreError> {
        self.save_checked(dashboard, overwrite, message, false)
    }

    /// Saves an imported dashboard (Grafana's import semantics): a dashboard with the same uid is
    /// replaced only with `overwrite`, whatever the versions say.
    pub fn import(&self, dashboard: Dashboard, overwrite: bool, message: &str) -> Result<Saved, StoreError> {
        self.save_checked(dashboard, overwrite, message, true)
    }

    fn save_checked(
        &self,
        mut dashboard: Dashboard,
        overwrite: bool,
        message: &str,
        refuse_existing: bool,
    ) -> Result<Saved, StoreError> {
        if dashboard.title.trim().is_empty() {
            return Err(StoreError::EmptyTitle);
        }
        if dashboard.uid.is_empty() {
            dashboard.uid = new_uid();
        }
        if !valid_uid(&dashboard.uid) {
            return Err(StoreError::BadUid(dashboard.uid));
        }
        let mut inner = self.inner.write();
        let now = now_ms();
        let (id, version, created) = match inner.by_uid.get(&dashboard.uid) {
            Some(old) => {
                if let Some(source_name) = &old.meta.provisioned {
                    if !old.meta.allow_ui_updates {
                        return Err(StoreError::ReadOnly {
                            uid: dashboard.uid.clone(),
                            source_name: source_name.clone(),
                        });
                    }
                }
                if refuse_existing && !overwrite {
                    return Err(StoreError::Exists(dashboard.uid.clone()));
                }
                if !overwrite && dashboard.version != old.dashboard.version {
                    return Err(StoreError::VersionMismatch {
                        yours: dashboard.version,
                        stored: old.dashboard.version,
                    });
                }
                (old.dashboard.id.unwrap_or_default(), old.dashboard.version + 1, old.meta.created_ms)
            }
            None => {
                inner.next_id += 1;
                (inner.next_id - 1, 1, now)
            }
        };
        dashboard.id = Some(id);
        dashboard.version = version;
        let bytes = serde_json::to_vec_pretty(&dashboard)
            .map_err(|e| StoreError::Invalid(ModelError { path: String::new(), message: e.to_string() }))?;
        let file = format!("{}.json", dashboard.uid);
        // The file is replaced before memory is: a failed write (a full disk) leaves both the old
        // file and the served dashboard as they were.
        write_atomically(&self.dir, &file, &bytes)
            .map_err(|source| StoreError::Io { path: self.dir.join(&file), source })?;
        // A provisioned dashboard saved with its provider's leave stays under the provider's rules.
        let (provisioned, allow_delete) = match inner.by_uid.get(&dashboard.uid) {
            Some(e) => (e.meta.provisioned.clone(), e.meta.allow_delete),
            None => (None, true),
        };
        let meta = Meta {
            created_ms: created,
            updated_ms: now,
            provisioned,
            allow_ui_updates: true,
            allow_delete,
            message: message.to_string(),
        };
        let entry = Entry { dashboard, meta };
        let saved = Saved {
            id,
            uid: entry.dashboard.uid.clone(),
            url: entry.url(),
            slug: entry.slug(),
            status: "success",
            version,
        };
        inner.by_uid.insert(saved.uid.clone(), entry);
        Ok(saved)
    }

    /// Parses and saves JSON text in one step (the import path).
    pub fn save_json(
        &self,
        value: serde_json::Value,
        overwrite: bool,
        message: &str,
    ) -> Result<Saved, StoreError> {
        let dashboard = dashboard_from_value(value)?;
        self.save(dashboard, overwrite, message)
    }

    /// Deletes a stored dashboard and its file; returns its title.
    pub fn delete(&self, uid: &str) -> Result<Entry, StoreError> {
        let mut inner = self.inner.write();
        let entry = inner.by_uid.get(uid).ok_or_else(|| StoreError::NotFound(uid.to_string()))?;
        if let Some(source_name) = &entry.meta.provisioned {
            if !entry.meta.allow_delete {
                return Err(StoreError::ReadOnly { uid: uid.to_string(), source_name: source_name.clone() });
            }
        }
        let path = self.dir.join(format!("{uid}.json"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Io { path, source }),
        }
        inner.by_uid.remove(uid).ok_or_else(|| StoreError::NotFound(uid.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dash(uid: &str, title: &str, version: i64) -> Dashboard {
        dashboard_from_value(
            json!({"uid": uid, "title": title, "version": version, "tags": ["a"], "custom": 1}),
        )
        .unwrap()
    }

    #[test]
    fn save_reload_and_versions() {
        let dir = tempfile::tempdir().unwrap();
        let (store, problems) = DashboardStore::open(dir.path()).unwrap();
        assert!(problems.is_empty());
        let s = store.save(dash("one", "First one", 0), false, "init").unwrap();
        assert_eq!((s.uid.as_str(), s.version, s.url.as_str()), ("one", 1, "/d/one/first-one"));
        // A stale version is refused; the stored one stays.
        let err = store.save(dash("one", "Changed", 0), false, "").unwrap_err();
        assert!(matches!(err, StoreError::VersionMismatch { yours: 0, stored: 1 }), "{err}");
        let s = store.save(dash("one", "Changed", 1), false, "").unwrap();
        assert_eq!(s.version, 2);
        let s = store.save(dash("one", "Forced", 0), true, "").unwrap();
        assert_eq!(s.version, 3);
        // New uid generated when absent.
        let s2 = store.save(dash("", "Second", 0), false, "").unwrap();
        assert_eq!(s2.uid.len(), 9);
        assert_ne!(s2.id, s.id);
        drop(store);
        let (store, problems) = DashboardStore::open(dir.path()).unwrap();
        assert!(problems.is_empty());
        let e = store.get("one").unwrap();
        assert_eq!(e.dashboard.title, "Forced");
        assert_eq!(e.dashboard.version, 3);
        assert_eq!(e.dashboard.extra.get("custom"), Some(&json!(1)));
        assert_eq!(store.search("", &[]).len(), 2);
        assert_eq!(store.search("sec", &[]).len(), 1);
        assert_eq!(store.search("", &["a".into()]).len(), 2);
        assert_eq!(store.search("", &["b".into()]).len(), 0);
        store.delete("one").unwrap();
        assert!(store.get("one").is_none());
        assert!(!dir.path().join("one.json").exists());
        assert!(matches!(store.delete("one"), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn bad_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = DashboardStore::open(dir.path()).unwrap();
        assert!(matches!(store.save(dash("x", " ", 0), false, ""), Err(StoreError::EmptyTitle)));
        assert!(matches!(store.save(dash("../x", "T", 0), false, ""), Err(StoreError::BadUid(_))));
        let err = store
            .save_json(json!({"title": "T", "panels": [{"gridPos": {"w": "1"}}]}), false, "")
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid dashboard: panels[0].gridPos.w: expected integer, found string");
    }

    #[test]
    fn broken_files_are_reported_and_the_rest_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.json"), r#"{"uid":"good","title":"Good"}"#).unwrap();
        std::fs::write(dir.path().join("bad.json"), r#"{"uid":"bad","title":"#).unwrap();
        std::fs::write(dir.path().join("typed.json"), r#"{"uid":"t","title":"T","panels":{}}"#).unwrap();
        let (store, problems) = DashboardStore::open(dir.path()).unwrap();
        assert!(store.get("good").is_some());
        assert_eq!(problems.len(), 2);
        assert!(problems.iter().any(|p| p.error.contains("panels: expected array, found object")));
        // Nothing was rewritten or removed.
        assert!(dir.path().join("bad.json").exists());
    }

    #[test]
    fn provisioned_dashboards_are_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = DashboardStore::open(dir.path()).unwrap();
        store.provision(dash("vigil", "Vigil", 0), "built-in", false, false);
        let err = store.save(dash("vigil", "Mine", 1), true, "").unwrap_err();
        assert!(err.to_string().contains("provisioned (built-in)"), "{err}");
        assert!(matches!(store.delete("vigil"), Err(StoreError::ReadOnly { .. })));
        assert!(store.get("vigil").unwrap().read_only());
        store.provision(dash("open", "Open", 0), "files", true, true);
        assert_eq!(store.save(dash("open", "Open 2", 1), false, "").unwrap().version, 2);
    }

    #[test]
    fn failed_write_keeps_the_old_dashboard() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = DashboardStore::open(dir.path()).unwrap();
        store.save(dash("k", "Kept", 0), false, "").unwrap();
        // A directory where the temp file must go makes the write fail, like a full disk would.
        std::fs::create_dir(dir.path().join(".k.json.tmp")).unwrap();
        assert!(matches!(store.save(dash("k", "Lost", 1), false, ""), Err(StoreError::Io { .. })));
        assert_eq!(store.get("k").unwrap().dashboard.title, "Kept");
        let text = std::fs::read_to_string(dir.path().join("k.json")).unwrap();
        assert!(text.contains("Kept"));
    }
}
