//! Provisioning from files, in Grafana's formats: `<provisioning.dir>/dashboards/*.yaml` name
//! dashboard providers (folders of dashboard JSON files) and `<provisioning.dir>/datasources/*.yaml`
//! name datasources. A missing directory is no error; a broken file is logged and listed in
//! [`Provisioning::problems`] (the Status page shows them) while every other file still loads.
//!
//! [`Provisioning::load`] reads the YAML once (again on reload); [`Provisioning::sync_dashboards`]
//! is called every second and rescans each provider's folder when its `updateIntervalSeconds`
//! are up, putting new and changed files (by mtime and size) into the [`DashboardStore`] as
//! provisioned dashboards and taking out those whose file is gone. Dashboard files go through
//! [`import::normalize`], so a Grafana export with `${DS_PROMETHEUS}` placeholders provisions as
//! it is. Datasources are only parsed and kept ([`Datasource`]): Vigil's own TSDB is always there,
//! and Prometheus-compatible ones elsewhere can be queried through the datasource proxy.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::dashboards::import::{self, KnownDatasource, VIGIL_DATASOURCE_UID};
use crate::dashboards::DashboardStore;

/// A provisioned datasource, as the UI and the proxy use it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Datasource {
    pub name: String,
    pub uid: String,
    /// The plugin type: `prometheus` (the only one Vigil queries).
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub access: String,
    pub is_default: bool,
    /// `jsonData.timeInterval`: the scrape interval behind it, the floor of `$__rate_interval`.
    pub time_interval: Option<String>,
    /// `jsonData.httpMethod` (`POST` or `GET`) for queries sent to it.
    pub http_method: Option<String>,
    #[serde(skip)]
    pub basic_auth: Option<(String, Secret)>,
    /// `true` when this entry is Vigil itself (uid `vigil`): queries never leave the process.
    pub builtin: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DatasourcesFile {
    #[serde(default)]
    api_version: Option<i64>,
    #[serde(default)]
    datasources: Vec<DatasourceEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DatasourceEntry {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    url: String,
    #[serde(default)]
    access: Option<String>,
    #[serde(default)]
    is_default: bool,
    #[serde(default)]
    basic_auth: bool,
    #[serde(default)]
    basic_auth_user: Option<String>,
    #[serde(default)]
    json_data: Option<Value>,
    #[serde(default)]
    secure_json_data: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProvidersFile {
    #[serde(default)]
    api_version: Option<i64>,
    #[serde(default)]
    providers: Vec<ProviderEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderEntry {
    name: String,
    #[serde(rename = "type", default = "file_type")]
    kind: String,
    #[serde(default)]
    folder: String,
    #[serde(default)]
    disable_deletion: bool,
    #[serde(default)]
    allow_ui_updates: bool,
    #[serde(default)]
    update_interval_seconds: Option<i64>,
    options: ProviderOptions,
}

#[derive(Debug, Deserialize)]
struct ProviderOptions {
    path: PathBuf,
}

fn file_type() -> String {
    "file".to_string()
}

/// A dashboard provider: a folder of JSON files and what the UI may do to them.
#[derive(Clone, Debug, PartialEq)]
pub struct Provider {
    pub name: String,
    pub folder: String,
    /// Absolute, or relative to the working directory: the YAML's own directory already applied.
    pub path: PathBuf,
    pub allow_ui_updates: bool,
    pub disable_deletion: bool,
    pub update_interval: Duration,
}

impl Provider {
    /// What the store records as the dashboards' source, shown in the UI and in errors.
    pub fn source_name(&self) -> String {
        format!("provider {}", self.name)
    }
}

/// What a provider's folder held at the last scan: file → (mtime, size, uid provisioned).
#[derive(Default)]
struct Scan {
    files: BTreeMap<PathBuf, (SystemTime, u64, Option<String>)>,
    problems: BTreeMap<PathBuf, String>,
    folder_problem: Option<String>,
    next: Option<Instant>,
}

struct ProviderState {
    provider: Provider,
    scan: Scan,
}

#[derive(Default)]
struct State {
    datasources: Vec<Datasource>,
    providers: Vec<ProviderState>,
    /// Problems of the YAML files themselves, by file.
    config_problems: Vec<String>,
}

/// The provisioning directory's state; see the module doc.
pub struct Provisioning {
    dir: PathBuf,
    state: Mutex<State>,
}

/// Replaces `${NAME}` with the environment variable's value, as Grafana does in these files.
fn expand_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if after[..end].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                out.push_str(&std::env::var(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

fn first_line(text: &str) -> String {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text).trim().to_string()
}

/// Parses one datasources file; `Err` for a file that cannot be used at all.
fn parse_datasources(text: &str, problems: &mut Vec<String>, file: &Path) -> Result<Vec<Datasource>, String> {
    let parsed: DatasourcesFile = if text.trim().is_empty() {
        DatasourcesFile { api_version: Some(1), datasources: Vec::new() }
    } else {
        serde_saphyr::from_str(&expand_env(text)).map_err(|e| first_line(&e.to_string()))?
    };
    if parsed.api_version.is_some_and(|v| v != 1) {
        return Err(format!("apiVersion {:?} is not supported (use 1)", parsed.api_version));
    }
    let mut out = Vec::new();
    for (i, d) in parsed.datasources.into_iter().enumerate() {
        if d.kind != "prometheus" {
            problems.push(format!(
                "{}: datasources[{i}] {:?}: type {:?} is not supported; Vigil queries prometheus datasources",
                file.display(),
                d.name,
                d.kind
            ));
            continue;
        }
        let json = d.json_data.unwrap_or(Value::Null);
        let text_of = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_string);
        let uid = d.uid.filter(|u| !u.is_empty()).unwrap_or_else(|| stable_uid(&["datasource", &d.name]));
        let password = d.secure_json_data.as_ref().and_then(|s| s.get("basicAuthPassword")).cloned();
        out.push(Datasource {
            builtin: uid == VIGIL_DATASOURCE_UID,
            name: d.name,
            uid,
            kind: d.kind,
            url: d.url.trim_end_matches('/').to_string(),
            access: d.access.unwrap_or_else(|| "proxy".into()),
            is_default: d.is_default,
            time_interval: text_of("timeInterval"),
            http_method: text_of("httpMethod"),
            basic_auth: match (d.basic_auth, d.basic_auth_user) {
                (true, Some(user)) => Some((user, Secret(password.unwrap_or_default()))),
                _ => None,
            },
        });
    }
    Ok(out)
}

/// Parses one dashboard providers file; relative paths are resolved against `base`.
fn parse_providers(
    text: &str,
    base: &Path,
    problems: &mut Vec<String>,
    file: &Path,
) -> Result<Vec<Provider>, String> {
    let parsed: ProvidersFile = if text.trim().is_empty() {
        ProvidersFile { api_version: Some(1), providers: Vec::new() }
    } else {
        serde_saphyr::from_str(&expand_env(text)).map_err(|e| first_line(&e.to_string()))?
    };
    if parsed.api_version.is_some_and(|v| v != 1) {
        return Err(format!("apiVersion {:?} is not supported (use 1)", parsed.api_version));
    }
    let mut out = Vec::new();
    for (i, p) in parsed.providers.into_iter().enumerate() {
        if p.kind != "file" {
            problems.push(format!(
                "{}: providers[{i}] {:?}: type {:?} is not supported (use file)",
                file.display(),
                p.name,
                p.kind
            ));
            continue;
        }
        let path = if p.options.path.is_relative() { base.join(&p.options.path) } else { p.options.path };
        // Grafana's default is 10 s; less than a second would only burn CPU.
        let secs = p.update_interval_seconds.unwrap_or(10).max(1) as u64;
        out.push(Provider {
            name: p.name,
            folder: p.folder,
            path,
            allow_ui_updates: p.allow_ui_updates,
            disable_deletion: p.disable_deletion,
            update_interval: Duration::from_secs(secs),
        });
    }
    Ok(out)
}

/// A uid that stays the same for the same inputs (dashboards without one, datasources without
/// one): 16 hex digits of SHA-256.
fn stable_uid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Dashboard JSON files under `dir`, in subfolders too (Grafana walks the whole tree).
fn json_files(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), std::io::Error> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            if depth < 8 {
                json_files(&path, out, depth + 1)?;
            }
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

impl Provisioning {
    /// Reads `dir/datasources/*.yaml` and `dir/dashboards/*.yaml`; see the module doc.
    pub fn load(dir: &Path) -> Provisioning {
        let p = Provisioning { dir: dir.to_path_buf(), state: Mutex::new(State::default()) };
        p.reload_config();
        p
    }

    /// An empty provisioning (no directory), for tests and tools.
    pub fn none() -> Provisioning {
        Provisioning { dir: PathBuf::new(), state: Mutex::new(State::default()) }
    }

    /// Re-reads the YAML files. Providers whose settings are unchanged keep their scan (their
    /// dashboards are not re-provisioned); dashboards of providers that are gone are taken out
    /// at the next [`Provisioning::sync_dashboards`].
    pub fn reload_config(&self) {
        let mut problems = Vec::new();
        let mut datasources = Vec::new();
        let mut providers = Vec::new();
        if !self.dir.as_os_str().is_empty() {
            for (sub, is_ds) in [("datasources", true), ("dashboards", false)] {
                let dir = self.dir.join(sub);
                if !dir.is_dir() {
                    continue;
                }
                let files = match yaml_files(&dir) {
                    Ok(f) => f,
                    Err(e) => {
                        problems.push(format!("{}: {e}", dir.display()));
                        continue;
                    }
                };
                for file in files {
                    let text = match std::fs::read_to_string(&file) {
                        Ok(t) => t,
                        Err(e) => {
                            problems.push(format!("{}: {e}", file.display()));
                            continue;
                        }
                    };
                    let base = file.parent().unwrap_or(Path::new("."));
                    let result = if is_ds {
                        parse_datasources(&text, &mut problems, &file).map(|d| datasources.extend(d))
                    } else {
                        parse_providers(&text, base, &mut problems, &file).map(|p| providers.extend(p))
                    };
                    if let Err(e) = result {
                        problems.push(format!("{}: {e}", file.display()));
                    }
                }
            }
        }
        let mut seen = HashSet::new();
        datasources.retain(|d: &Datasource| {
            let fresh = seen.insert(d.uid.clone());
            if !fresh {
                problems.push(format!(
                    "datasource uid {:?} ({}) is defined twice; the first is used",
                    d.uid, d.name
                ));
            }
            fresh
        });
        if datasources.iter().filter(|d| d.is_default).count() > 1 {
            problems.push("more than one datasource has isDefault: true; the first is the default".into());
        }
        let mut names = HashSet::new();
        providers.retain(|p: &Provider| {
            let fresh = names.insert(p.name.clone());
            if !fresh {
                problems.push(format!("dashboard provider {:?} is defined twice; the first is used", p.name));
            }
            fresh
        });
        for p in &problems {
            tracing::warn!(problem = %p, "provisioning file problem");
        }
        let mut state = self.state.lock();
        let mut old: Vec<ProviderState> = std::mem::take(&mut state.providers);
        state.providers = providers
            .into_iter()
            .map(|provider| match old.iter().position(|o| o.provider == provider) {
                Some(i) => old.swap_remove(i),
                None => ProviderState { provider, scan: Scan::default() },
            })
            .collect();
        // Providers that went away: their dashboards are forgotten by the next sync, through a
        // provider with no folder that owns them.
        for gone in old {
            let uids: Vec<String> = gone.scan.files.values().filter_map(|(_, _, u)| u.clone()).collect();
            if !uids.is_empty() {
                state.providers.push(ProviderState {
                    provider: Provider { path: PathBuf::new(), ..gone.provider },
                    scan: Scan { files: gone.scan.files, ..Scan::default() },
                });
            }
        }
        state.datasources = datasources;
        state.config_problems = problems;
    }

    /// Rescans the providers that are due (all of them with `force`), updating `store`.
    pub fn sync_dashboards(&self, store: &DashboardStore, force: bool) {
        let now = Instant::now();
        let known = self.known_datasources();
        let mut state = self.state.lock();
        state.providers.retain_mut(|ps| {
            if !force && ps.scan.next.is_some_and(|n| n > now) {
                return true;
            }
            ps.scan.next = Some(now + ps.provider.update_interval);
            scan_provider(&ps.provider, &mut ps.scan, store, &known);
            // A removed provider stays only until its dashboards are out.
            !ps.provider.path.as_os_str().is_empty() || !ps.scan.files.is_empty()
        });
    }

    /// Everything wrong with the provisioning files, one line each, for the Status page.
    pub fn problems(&self) -> Vec<String> {
        let state = self.state.lock();
        let mut out = state.config_problems.clone();
        for ps in &state.providers {
            if let Some(p) = &ps.scan.folder_problem {
                out.push(format!("dashboard provider {:?}: {p}", ps.provider.name));
            }
            for (file, p) in &ps.scan.problems {
                out.push(format!("{}: {p}", file.display()));
            }
        }
        out
    }

    pub fn datasources(&self) -> Vec<Datasource> {
        self.state.lock().datasources.clone()
    }

    pub fn providers(&self) -> Vec<Provider> {
        self.state.lock().providers.iter().map(|p| p.provider.clone()).collect()
    }

    /// The external Prometheus datasources, for import's reference resolution.
    pub fn known_datasources(&self) -> Vec<KnownDatasource> {
        self.state
            .lock()
            .datasources
            .iter()
            .filter(|d| !d.builtin)
            .map(|d| KnownDatasource { uid: d.uid.clone(), name: d.name.clone(), kind: d.kind.clone() })
            .collect()
    }
}

fn scan_provider(p: &Provider, scan: &mut Scan, store: &DashboardStore, known: &[KnownDatasource]) {
    let mut files = Vec::new();
    scan.folder_problem = None;
    if !p.path.as_os_str().is_empty() {
        if let Err(e) = json_files(&p.path, &mut files, 0) {
            // An unreadable folder keeps what was provisioned from it: a transient error (an
            // unmounted volume) must not empty the dashboards list.
            let problem = format!("cannot read folder {}: {e}", p.path.display());
            if scan.folder_problem.as_ref() != Some(&problem) {
                tracing::warn!(provider = %p.name, problem = %problem, "dashboard provider");
            }
            scan.folder_problem = Some(problem);
            return;
        }
    }
    let present: HashSet<&PathBuf> = files.iter().collect();
    let removed: Vec<PathBuf> = scan.files.keys().filter(|f| !present.contains(f)).cloned().collect();
    for f in removed {
        if let Some((_, _, Some(uid))) = scan.files.remove(&f) {
            tracing::info!(provider = %p.name, file = %f.display(), uid = %uid, "provisioned dashboard file removed");
            store.unprovision(&uid, &p.source_name());
        }
        scan.problems.remove(&f);
    }
    for file in files {
        let meta = std::fs::metadata(&file);
        let stamp = meta
            .as_ref()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
            .unwrap_or((SystemTime::UNIX_EPOCH, 0));
        if let Some((t, len, _)) = scan.files.get(&file) {
            if (*t, *len) == stamp {
                continue;
            }
        }
        let previous = scan.files.get(&file).and_then(|(_, _, u)| u.clone());
        match load_dashboard_file(&file, known) {
            Ok(mut d) => {
                scan.problems.remove(&file);
                if d.uid.is_empty() {
                    let rel = file.strip_prefix(&p.path).unwrap_or(&file).to_string_lossy().into_owned();
                    d.uid = stable_uid(&["dashboard", &p.name, &rel]);
                }
                let clash = scan
                    .files
                    .iter()
                    .any(|(other, (_, _, u))| *other != file && u.as_deref() == Some(d.uid.as_str()));
                if clash {
                    let problem = format!("uid {:?} is used by another file of this provider", d.uid);
                    tracing::warn!(file = %file.display(), problem = %problem, "dashboard not provisioned");
                    scan.problems.insert(file.clone(), problem);
                    scan.files.insert(file, (stamp.0, stamp.1, None));
                    continue;
                }
                if let Some(old) = previous.filter(|old| *old != d.uid) {
                    store.unprovision(&old, &p.source_name());
                }
                let uid = d.uid.clone();
                store.provision(d, &p.source_name(), p.allow_ui_updates, !p.disable_deletion);
                scan.files.insert(file, (stamp.0, stamp.1, Some(uid)));
            }
            Err(problem) => {
                // A broken edit keeps the last good version on screen, as a bad config does.
                tracing::warn!(file = %file.display(), problem = %problem, "dashboard file not provisioned");
                scan.problems.insert(file.clone(), problem);
                scan.files.insert(file, (stamp.0, stamp.1, previous));
            }
        }
    }
}

fn load_dashboard_file(file: &Path, known: &[KnownDatasource]) -> Result<app::dashboard::Dashboard, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let mut value: Value = serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))?;
    // A file saved from Grafana's HTTP API wraps the dashboard beside its `meta`.
    if value.get("meta").is_some() && value.get("dashboard").is_some_and(Value::is_object) {
        value = value["dashboard"].take();
    }
    let imported = import::normalize(value, &[], known)
        .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
    let d = imported.dashboard;
    if !d.uid.is_empty() && !app::dashboard::valid_uid(&d.uid) {
        return Err(format!("invalid uid {:?}: use 1 to 40 letters, digits, '-' or '_'", d.uid));
    }
    Ok(d)
}

#[cfg(test)]
mod tests;
