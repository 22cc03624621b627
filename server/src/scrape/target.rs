//! Scrape targets: what the configuration says to scrape, as Prometheus derives it.
//!
//! For every address of a job's `static_configs`, [`targets_from_config`] builds the discovered
//! labels (`__address__`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`,
//! `__scrape_timeout__`, `job` and the group's labels) and from them the target's own labels:
//! every label not starting with `__`, plus `instance` defaulting to `__address__`. Relabeling
//! will slot in between the two. A target is identified by its labels and URL
//! ([`Target::key`]), which also spreads scrapes over the interval.

use std::sync::Arc;
use std::time::Duration;

use super::client::ClientOptions;
use super::relabel::{compile_all, relabel, RelabelConfig};
use crate::config::{Config, PromDuration, ScrapeLimits};
use crate::discovery::Discovered;
use crate::tsdb::labels::Labels;

/// One endpoint to scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub job: String,
    pub url: String,
    /// The labels every series of this target gets (job, instance, static labels).
    pub labels: Labels,
    /// The labels before relabeling, as `/api/v1/targets` shows them.
    pub discovered: Labels,
    pub interval: Duration,
    pub timeout: Duration,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    /// Applied to every scraped series before it is stored (already validated).
    pub metric_relabel: Vec<RelabelConfig>,
    /// The job's HTTP client settings, shared by its targets.
    pub client: Arc<ClientOptions>,
    pub limits: ScrapeLimits,
}

impl Target {
    /// A stable identity: the same labels and URL give the same key in every process.
    pub fn key(&self) -> u64 {
        let mut h = self.labels.stable_hash();
        for b in self.url.bytes() {
            // FNV-1a step folded into the label hash.
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
}

/// Why a target could not be built.
#[derive(Debug, thiserror::Error)]
#[error("job {job:?}, target {address:?}: {message}")]
pub struct TargetError {
    pub job: String,
    pub address: String,
    pub message: String,
}

/// What discovery and relabeling produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetSet {
    pub active: Vec<Target>,
    /// Discovered label sets that `relabel_configs` dropped, with their job.
    pub dropped: Vec<(String, Labels)>,
}

/// The targets to scrape: static groups plus `discovered` ones (by job name). Targets that
/// `relabel_configs` drop are listed apart.
pub fn targets_from_config(config: &Config, discovered: &Discovered) -> Result<TargetSet, TargetError> {
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    for sc in &config.scrape_configs {
        let interval = sc.interval(&config.global);
        let timeout = sc.timeout(&config.global);
        let client = Arc::new(ClientOptions::of(sc));
        let limits = sc.limits(&config.global);
        let rules = compile_all(&sc.relabel_configs).map_err(|message| TargetError {
            job: sc.job_name.clone(),
            address: String::new(),
            message,
        })?;
        let groups = sc
            .static_configs
            .iter()
            .map(|s| (&s.targets, &s.labels))
            .chain(discovered.get(&sc.job_name).into_iter().flatten().map(|g| (&g.targets, &g.labels)));
        for (targets, group_labels) in groups {
            for address in targets {
                let err = |message: String| TargetError {
                    job: sc.job_name.clone(),
                    address: address.clone(),
                    message,
                };
                let mut discovered: Vec<(String, String)> = vec![
                    ("__address__".into(), address.clone()),
                    ("__scheme__".into(), sc.scheme.clone()),
                    ("__metrics_path__".into(), sc.metrics_path.clone()),
                    ("__scrape_interval__".into(), PromDuration(interval).to_string()),
                    ("__scrape_timeout__".into(), PromDuration(timeout).to_string()),
                    ("job".into(), sc.job_name.clone()),
                ];
                for (name, values) in &sc.params {
                    if let Some(first) = values.first() {
                        discovered.push((format!("__param_{name}"), first.clone()));
                    }
                }
                for (k, v) in group_labels {
                    discovered.retain(|(n, _)| n != k);
                    discovered.push((k.clone(), v.clone()));
                }
                let discovered = Labels::new(discovered).map_err(|e| err(e.to_string()))?;
                let Some(relabeled) = relabel(&discovered, &rules) else {
                    dropped.push((sc.job_name.clone(), discovered));
                    continue;
                };
                let Some(addr) = relabeled.get("__address__").map(str::to_string) else {
                    return Err(err("no __address__ label after relabeling".to_string()));
                };
                let scheme = relabeled.get("__scheme__").unwrap_or("http").to_string();
                let path = relabeled.get("__metrics_path__").unwrap_or("/metrics").to_string();
                // Query parameters: the configured ones, each overridden by a `__param_<name>`.
                let mut params: Vec<(String, String)> = Vec::new();
                for (name, values) in &sc.params {
                    match relabeled.get(&format!("__param_{name}")) {
                        Some(v) => params.push((name.clone(), v.to_string())),
                        None => params.extend(values.iter().map(|v| (name.clone(), v.clone()))),
                    }
                }
                for (n, v) in relabeled.iter() {
                    if let Some(name) = n.strip_prefix("__param_") {
                        if !sc.params.contains_key(name) {
                            params.push((name.to_string(), v.to_string()));
                        }
                    }
                }
                let mut builder = relabeled.builder();
                if builder.get("instance").is_none() {
                    builder.set("instance", &addr).map_err(|e| err(e.to_string()))?;
                }
                let internal: Vec<String> = relabeled
                    .iter()
                    .map(|(n, _)| n)
                    .filter(|n| n.starts_with("__"))
                    .map(String::from)
                    .collect();
                for n in &internal {
                    builder.del(n);
                }
                let mut url = format!("{scheme}://{addr}{path}");
                if !params.is_empty() {
                    let query =
                        form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
                    url.push(if path.contains('?') { '&' } else { '?' });
                    url.push_str(&query);
                }
                out.push(Target {
                    job: sc.job_name.clone(),
                    url,
                    labels: builder.build(),
                    discovered,
                    interval,
                    timeout,
                    honor_labels: sc.honor_labels,
                    honor_timestamps: sc.honor_timestamps,
                    metric_relabel: sc.metric_relabel_configs.clone(),
                    client: client.clone(),
                    limits,
                });
            }
        }
    }
    Ok(TargetSet { active: out, dropped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn static_targets_get_job_instance_and_group_labels() {
        let c = Config::parse(
            "global: {scrape_interval: 10s}\nscrape_configs:\n  - job_name: api\n    metrics_path: /actuator/prometheus\n    static_configs:\n      - targets: ['api:8080', 'api2:8080']\n        labels: {env: prod}\n",
            Path::new("t.yml"),
        )
        .unwrap();
        let ts = targets_from_config(&c, &Discovered::new()).unwrap().active;
        assert_eq!(ts.len(), 2);
        let t = &ts[0];
        assert_eq!(t.url, "http://api:8080/actuator/prometheus");
        assert_eq!(t.labels.to_string(), r#"{env="prod", instance="api:8080", job="api"}"#);
        assert_eq!(t.discovered.get("__scrape_interval__"), Some("10s"));
        assert_eq!(t.interval, Duration::from_secs(10));
        assert_ne!(t.key(), ts[1].key());
    }

    #[test]
    fn relabel_configs_rewrite_and_drop_targets() {
        let c = Config::parse(
            "scrape_configs:\n  - job_name: a\n    params: {module: [http_2xx]}\n    static_configs:\n      - targets: ['web-1:80', 'db-1:5432']\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: 'db-.*'\n        action: drop\n      - source_labels: [__address__]\n        regex: '([^:]+):.*'\n        target_label: host\n      - source_labels: [__address__]\n        target_label: __param_target\n      - target_label: __address__\n        replacement: 'prober:9115'\n",
            Path::new("t.yml"),
        )
        .unwrap();
        let ts = targets_from_config(&c, &Discovered::new()).unwrap().active;
        assert_eq!(ts.len(), 1, "db-1 dropped");
        let set = targets_from_config(&c, &Discovered::new()).unwrap();
        assert_eq!(set.dropped[0].1.get("__address__"), Some("db-1:5432"));
        assert_eq!(ts[0].url, "http://prober:9115/metrics?module=http_2xx&target=web-1%3A80");
        assert_eq!(ts[0].labels.to_string(), r#"{host="web-1", instance="prober:9115", job="a"}"#);
        assert_eq!(ts[0].discovered.get("__address__"), Some("web-1:80"));
    }

    #[test]
    fn group_label_may_override_instance() {
        let c = Config::parse(
            "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['h:1']\n        labels: {instance: nice-name}\n",
            Path::new("t.yml"),
        )
        .unwrap();
        let ts = targets_from_config(&c, &Discovered::new()).unwrap().active;
        assert_eq!(ts[0].labels.get("instance"), Some("nice-name"));
        assert_eq!(ts[0].url, "http://h:1/metrics");
    }
}
