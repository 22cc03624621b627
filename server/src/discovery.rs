//! Service discovery: where scrape targets come from besides `static_configs`.
//!
//! A mechanism turns its configuration into [`TargetGroup`]s — addresses plus labels, including
//! `__meta_*` labels that relabeling can use. [`FileSd`] implements Prometheus's `file_sd_configs`:
//! JSON or YAML files (globs in the file name allowed) listing `{targets, labels}` groups,
//! re-read when their modification time changes and at least every `refresh_interval`. A file
//! that cannot be read or parsed keeps the groups it last had, so a half-written file never
//! drops targets; the error is logged and returned in [`FileSd::errors`].
//! [`dns`] implements `dns_sd_configs`, whose lookups are asynchronous and so run on their own
//! schedule; [`merge`] joins its cached groups with the files'. [`docker`] implements
//! `docker_sd_configs` the same way: containers listed by a Docker daemon on their own schedule.
//! [`crate::scrape::target::targets_from_config`] merges the groups with the static ones.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::Config;

pub use crate::config::FileSdConfig;

pub mod dns;
pub mod docker;

/// Adds `more`'s groups to `into`, job by job.
pub fn merge(into: &mut Discovered, more: Discovered) {
    for (job, groups) in more {
        into.entry(job).or_default().extend(groups);
    }
}

/// Addresses with common labels, as every discovery mechanism produces them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Prometheus's default `refresh_interval` for file discovery.
pub const DEFAULT_FILE_REFRESH: Duration = Duration::from_secs(300);

/// Groups found per job, by discovery mechanism.
pub type Discovered = HashMap<String, Vec<TargetGroup>>;

#[derive(Debug, Default)]
struct FileState {
    modified: Option<SystemTime>,
    read_at: Option<Instant>,
    groups: Vec<TargetGroup>,
}

/// File-based discovery for every job of a configuration, with its per-file cache.
#[derive(Debug, Default)]
pub struct FileSd {
    files: HashMap<PathBuf, FileState>,
    errors: Vec<String>,
}

impl FileSd {
    /// Errors of the last [`FileSd::refresh`], one line each.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Re-reads changed or due files and returns every job's groups. Each group gets
    /// `__meta_filepath`.
    pub fn refresh(&mut self, config: &Config) -> Discovered {
        self.errors.clear();
        let mut out = Discovered::new();
        let mut seen = Vec::new();
        for sc in &config.scrape_configs {
            for fc in &sc.file_sd_configs {
                let every = fc.refresh_interval.map_or(DEFAULT_FILE_REFRESH, |d| d.0);
                for pattern in &fc.files {
                    for path in expand_glob(pattern) {
                        let groups = self.read_if_due(&path, every);
                        seen.push(path.clone());
                        let filepath = path.display().to_string();
                        out.entry(sc.job_name.clone()).or_default().extend(groups.into_iter().map(
                            |mut g| {
                                g.labels
                                    .entry("__meta_filepath".to_string())
                                    .or_insert_with(|| filepath.clone());
                                g
                            },
                        ));
                    }
                }
            }
        }
        self.files.retain(|p, _| seen.contains(p));
        out
    }

    fn read_if_due(&mut self, path: &Path, every: Duration) -> Vec<TargetGroup> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let state = self.files.entry(path.to_path_buf()).or_default();
        let due = state.read_at.is_none_or(|at| at.elapsed() >= every) || state.modified != modified;
        if due {
            match read_groups(path) {
                Ok(groups) => state.groups = groups,
                Err(e) => {
                    tracing::warn!(error = %e, "file discovery: keeping the last good targets");
                    self.errors.push(e);
                }
            }
            state.modified = modified;
            state.read_at = Some(Instant::now());
        }
        state.groups.clone()
    }
}

/// Reads one file of groups: JSON for `.json`, YAML for `.yml`/`.yaml`.
pub fn read_groups(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    let groups: Vec<TargetGroup> = match ext {
        "json" => serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))?,
        "yml" | "yaml" => {
            if text.trim().is_empty() {
                Vec::new()
            } else {
                serde_saphyr::from_str(&text).map_err(|e| {
                    let first = e.to_string().lines().next().unwrap_or_default().to_string();
                    format!("cannot parse {}: {first}", path.display())
                })?
            }
        }
        _ => {
            return Err(format!("{}: file discovery reads only .json, .yml and .yaml files", path.display()))
        }
    };
    for g in &groups {
        if let Some(t) = g.targets.iter().find(|t| t.is_empty() || t.contains('/')) {
            return Err(format!("{}: target {t:?} is not a host:port address", path.display()));
        }
    }
    Ok(groups)
}

/// Expands `*` and `?` in the last path component, as Prometheus (`filepath.Glob`) allows.
fn expand_glob(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![path.to_path_buf()];
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_str().is_some_and(|n| glob_match(name.as_bytes(), n.as_bytes())))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_match(&p[1..], s) || (!s.is_empty() && glob_match(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob_match(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob_match(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.json", b"a.json"));
        assert!(glob_match(b"node-?.yml", b"node-1.yml"));
        assert!(!glob_match(b"*.json", b"a.yml"));
        assert!(glob_match(b"*", b""));
    }

    #[test]
    fn reads_json_and_yaml_keeps_last_good_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.yml");
        std::fs::write(&a, r#"[{"targets": ["10.0.0.1:9100"], "labels": {"env": "prod"}}]"#).unwrap();
        std::fs::write(&b, "- targets: ['10.0.0.2:9100', '10.0.0.3:9100']\n").unwrap();
        let config = Config::parse(
            &format!(
                "scrape_configs:\n  - job_name: node\n    file_sd_configs:\n      - files: ['{}/*.json', '{}']\n",
                dir.path().display(),
                b.display()
            ),
            Path::new("t.yml"),
        )
        .unwrap();
        let mut sd = FileSd::default();
        let found = sd.refresh(&config);
        let groups = &found["node"];
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].labels["env"], "prod");
        assert_eq!(groups[0].labels["__meta_filepath"], a.display().to_string());
        assert_eq!(groups[1].targets.len(), 2);

        // A broken rewrite keeps the previous groups and reports the error.
        std::fs::write(&a, "[{\"targets\": [").unwrap();
        filetime_bump(&a);
        let found = sd.refresh(&config);
        assert_eq!(found["node"].len(), 2);
        assert_eq!(sd.errors().len(), 1, "{:?}", sd.errors());
        assert!(sd.errors()[0].contains("a.json"));
    }

    /// Makes sure the modification time differs from the previous write's.
    fn filetime_bump(p: &Path) {
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
    }
}
