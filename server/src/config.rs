//! The configuration file: Prometheus's `prometheus.yml` format, read with serde.
//!
//! [`Config::load`] reads and validates a file; [`Config::builtin`] is what Vigil runs with when
//! no file is given (scrape itself every 15 s). Unknown fields are errors, as in Prometheus, so a
//! typo never silently changes behaviour. [`PromDuration`] parses Prometheus's duration syntax
//! (`1h30m`, `15s`, `500ms`); [`ByteSize`] parses `body_size_limit`'s sizes (`10MB`). A
//! [`Secret`] (passwords, tokens) is usable but always written as `<secret>`, so neither the
//! Status page nor a log line ever shows one.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scrape::relabel::{compile_all, RelabelConfig};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot parse config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(default, skip_serializing_if = "StorageConfig::is_default")]
    pub storage: StorageConfig,
    /// Vigil's own settings (who may edit, who may embed), which Prometheus's format has no
    /// place for; see [`VigilConfig`].
    #[serde(default, skip_serializing_if = "VigilConfig::is_default")]
    pub vigil: VigilConfig,
}

/// The `vigil:` section: settings of the dashboard side that Prometheus does not have.
///
/// ```yaml
/// vigil:
///   auth:
///     anonymous: true            # reading dashboards and queries needs no credentials
///     editor_tokens: [s3cret]    # Authorization: Bearer s3cret may save, delete, reload…
///     users: [{name: ann, password_hash: "$argon2id$v=19$…"}]   # or basic auth
///   web:
///     embedding:
///       allowed_origins: [https://wiki.example.com]   # may frame Vigil's pages
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VigilConfig {
    #[serde(default, skip_serializing_if = "AuthConfig::is_default")]
    pub auth: AuthConfig,
    #[serde(default, skip_serializing_if = "VigilWebConfig::is_default")]
    pub web: VigilWebConfig,
}

impl VigilConfig {
    fn is_default(&self) -> bool {
        *self == VigilConfig::default()
    }
}

/// `vigil.auth`: viewers and editors. Editors are whoever presents a configured bearer token or
/// a user's password; with neither configured, writes are open only on a loopback listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Reading (dashboards, queries, pages) needs no credentials.
    #[serde(default = "default_true")]
    pub anonymous: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub editor_tokens: Vec<Secret>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { anonymous: true, editor_tokens: Vec::new(), users: Vec::new() }
    }
}

impl AuthConfig {
    fn is_default(&self) -> bool {
        *self == AuthConfig::default()
    }

    /// Whether any editor credentials are configured.
    pub fn has_editors(&self) -> bool {
        !self.editor_tokens.is_empty() || !self.users.is_empty()
    }
}

/// An editor who signs in with basic auth; the password is stored as an argon2 PHC hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password_hash: Secret,
}

/// `vigil.web`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VigilWebConfig {
    #[serde(default)]
    pub embedding: EmbeddingConfig,
}

impl VigilWebConfig {
    fn is_default(&self) -> bool {
        *self == VigilWebConfig::default()
    }
}

/// `vigil.web.embedding`: other sites whose pages may show Vigil's pages in frames.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// Origins such as `https://wiki.example.com` or `https://*.example.com`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

/// `storage:` section, as in Prometheus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(default)]
    pub tsdb: TsdbConfig,
}

impl StorageConfig {
    fn is_default(&self) -> bool {
        *self == StorageConfig::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsdbConfig {
    /// How far behind a series' newest sample an older one is still accepted (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_order_time_window: Option<PromDuration>,
}

impl Config {
    /// `storage.tsdb.out_of_order_time_window` in milliseconds (0 when unset).
    pub fn out_of_order_window_ms(&self) -> i64 {
        self.storage.tsdb.out_of_order_time_window.map_or(0, |d| d.0.as_millis() as i64)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub scrape_interval: PromDuration,
    pub scrape_timeout: PromDuration,
    pub evaluation_interval: PromDuration,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_labels: BTreeMap<String, String>,
    // Defaults for the scrape configs' limits of the same names. (Not a flattened struct:
    // serde's `flatten` would disable `deny_unknown_fields`.)
    /// Samples per scrape, counted after metric relabeling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<u64>,
    /// Uncompressed body size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<ByteSize>,
    /// Labels per series, `__name__` and the target's labels included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_name_length_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_value_length_limit: Option<u64>,
}

/// Per-scrape limits, as in Prometheus; unset or 0 means no limit. Exceeding one fails the
/// whole scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeLimits {
    pub sample_limit: Option<u64>,
    pub body_size_limit: Option<ByteSize>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
}

impl Default for GlobalConfig {
    // Prometheus's defaults: 1m interval, 10s timeout, 1m evaluation.
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: PromDuration(Duration::from_secs(60)),
            scrape_timeout: PromDuration(Duration::from_secs(10)),
            evaluation_interval: PromDuration(Duration::from_secs(60)),
            external_labels: BTreeMap::new(),
            sample_limit: None,
            body_size_limit: None,
            label_limit: None,
            label_name_length_limit: None,
            label_value_length_limit: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<PromDuration>,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_sd_configs: Vec<DnsSdConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docker_sd_configs: Vec<DockerSdConfig>,
    /// URL query parameters of every scrape request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep the target's own labels on clashes instead of renaming them `exported_*`.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use timestamps the target exposes (default) instead of the scrape time.
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Prometheus's older spelling of `authorization: {credentials: ...}`, still common in
    /// Kubernetes configurations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    /// Older spelling of `authorization: {credentials_file: ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// Accepted for compatibility; Vigil scrapes over HTTP/1.1, which every exporter speaks.
    #[serde(default = "default_true")]
    pub enable_http2: bool,
    /// An HTTP proxy for every scrape of the job, e.g. `http://proxy:3128`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<ProxyUrl>,
    /// Ask targets for gzip-compressed bodies (the default).
    #[serde(default = "default_true")]
    pub enable_compression: bool,
    /// Samples per scrape, counted after metric relabeling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<u64>,
    /// Uncompressed body size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<ByteSize>,
    /// Labels per series, `__name__` and the target's labels included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_name_length_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_value_length_limit: Option<u64>,
}

/// A password or token. Compared and used as is, but serialized and debug-printed as
/// `<secret>`, as Prometheus prints it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

/// A proxy URL; a password in it is written as `<secret>`, as Prometheus writes it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ProxyUrl(pub String);

impl ProxyUrl {
    /// The URL with the password of its user part, if any, replaced by `<secret>`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(start) = url.find("://").map(|i| i + 3) else { return url.clone() };
        let end = url[start..].find('/').map_or(url.len(), |i| start + i);
        match url[start..end].rfind('@').map(|i| start + i) {
            Some(at) => match url[start..at].find(':').map(|i| start + i) {
                Some(colon) => format!("{}<secret>{}", &url[..=colon], &url[at..]),
                None => url.clone(),
            },
            None => url.clone(),
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for ProxyUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// `basic_auth`: a user and a password given inline or read from a file at each scrape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

/// `authorization`: an `Authorization: <type> <credentials>` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default = "default_auth_type", rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
}

fn default_auth_type() -> String {
    "Bearer".to_string()
}

/// `tls_config` for `https` targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificates (PEM) to verify the target with, instead of the system's: inline or in
    /// a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for targets that require one, inline or in files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The name the target's certificate must be valid for, when not the target's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// `TLS10` to `TLS13`; Vigil's TLS speaks 1.2 and 1.3, so lower minimums mean 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

/// A TLS protocol version as Prometheus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "TLS10")]
    Tls10,
    #[serde(rename = "TLS11")]
    Tls11,
    #[serde(rename = "TLS12")]
    Tls12,
    #[serde(rename = "TLS13")]
    Tls13,
}

fn default_true() -> bool {
    true
}

/// `file_sd_configs` entry: files of target groups, read by [`crate::discovery::FileSd`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<PromDuration>,
}

/// `dns_sd_configs` entry: names resolved by [`crate::discovery::dns::DnsSd`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    pub names: Vec<String>,
    #[serde(default, rename = "type")]
    pub record_type: DnsRecordType,
    /// The port of every target; required for all types but SRV, whose records carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<PromDuration>,
}

/// `docker_sd_configs` entry: containers of one Docker Engine, listed by
/// [`crate::discovery::docker::DockerSd`]. The field names and defaults are Prometheus's.
/// The HTTP client settings apply to `http://` and `https://` hosts; as in Prometheus, `unix://`
/// sockets and `tcp://` hosts (plain HTTP) ignore them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSdConfig {
    /// `unix:///var/run/docker.sock`, `tcp://host:2375`, `http://host:2375` or `https://…`.
    pub host: String,
    /// The port of containers that publish no TCP port.
    #[serde(default = "default_docker_port")]
    pub port: u16,
    /// The address of containers in host networking mode.
    #[serde(default = "default_host_networking_host")]
    pub host_networking_host: String,
    /// Only the first network (by name) of a container with several yields targets.
    #[serde(default = "default_true")]
    pub match_first_network: bool,
    /// Docker's container list filters, e.g. `{name: label, values: [prometheus.io/scrape=true]}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<DockerFilter>,
    #[serde(default = "default_docker_refresh")]
    pub refresh_interval: PromDuration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<ProxyUrl>,
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// Accepted for compatibility; the Docker API is asked over HTTP/1.1.
    #[serde(default = "default_true")]
    pub enable_http2: bool,
}

/// One Docker list filter: a name such as `label`, `name`, `network` or `status`, and the
/// values any of which a container must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerFilter {
    pub name: String,
    #[serde(default)]
    pub values: Vec<String>,
}

fn default_docker_port() -> u16 {
    80
}

fn default_host_networking_host() -> String {
    "localhost".to_string()
}

/// Prometheus's default `refresh_interval` for Docker discovery.
pub const DEFAULT_DOCKER_REFRESH: Duration = Duration::from_secs(60);

fn default_docker_refresh() -> PromDuration {
    PromDuration(DEFAULT_DOCKER_REFRESH)
}

/// The record types `dns_sd_configs` may query; written in upper case, read in any case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DnsRecordType {
    #[default]
    Srv,
    A,
    Aaaa,
    Mx,
    Ns,
}

impl DnsRecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsRecordType::Srv => "SRV",
            DnsRecordType::A => "A",
            DnsRecordType::Aaaa => "AAAA",
            DnsRecordType::Mx => "MX",
            DnsRecordType::Ns => "NS",
        }
    }
}

impl Serialize for DnsRecordType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DnsRecordType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        [DnsRecordType::Srv, DnsRecordType::A, DnsRecordType::Aaaa, DnsRecordType::Mx, DnsRecordType::Ns]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(&s))
            .ok_or_else(|| serde::de::Error::custom(format!("invalid DNS-SD records type {s:?}")))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn default_metrics_path() -> String {
    "/metrics".to_string()
}

fn default_scheme() -> String {
    "http".to_string()
}

impl ScrapeConfig {
    /// The limits in force: this job's, else the global ones; 0 means none.
    pub fn limits(&self, global: &GlobalConfig) -> ScrapeLimits {
        let nonzero = |v: Option<u64>| v.filter(|&n| n > 0);
        ScrapeLimits {
            sample_limit: nonzero(self.sample_limit.or(global.sample_limit)),
            body_size_limit: self.body_size_limit.or(global.body_size_limit).filter(|b| b.0 > 0),
            label_limit: nonzero(self.label_limit.or(global.label_limit)),
            label_name_length_limit: nonzero(self.label_name_length_limit.or(global.label_name_length_limit)),
            label_value_length_limit: nonzero(
                self.label_value_length_limit.or(global.label_value_length_limit),
            ),
        }
    }

    /// The interval after the global default is applied.
    pub fn interval(&self, global: &GlobalConfig) -> Duration {
        self.scrape_interval.unwrap_or(global.scrape_interval).0
    }

    /// The timeout after defaults: Prometheus caps the global timeout at the job's interval.
    pub fn timeout(&self, global: &GlobalConfig) -> Duration {
        match self.scrape_timeout {
            Some(t) => t.0,
            None => global.scrape_timeout.0.min(self.interval(global)),
        }
    }
}

impl Config {
    /// The configuration used without `--config.file`: Vigil scrapes its own `/metrics`.
    pub fn builtin(listen: SocketAddr) -> Config {
        Config {
            global: GlobalConfig {
                scrape_interval: PromDuration(Duration::from_secs(15)),
                scrape_timeout: PromDuration(Duration::from_secs(10)),
                evaluation_interval: PromDuration(Duration::from_secs(15)),
                external_labels: BTreeMap::new(),
                ..GlobalConfig::default()
            },
            scrape_configs: vec![ScrapeConfig {
                job_name: "vigil".to_string(),
                scrape_interval: None,
                scrape_timeout: None,
                metrics_path: default_metrics_path(),
                scheme: default_scheme(),
                static_configs: vec![StaticConfig {
                    targets: vec![listen.to_string()],
                    labels: BTreeMap::new(),
                }],
                file_sd_configs: Vec::new(),
                dns_sd_configs: Vec::new(),
                docker_sd_configs: Vec::new(),
                params: BTreeMap::new(),
                honor_labels: false,
                honor_timestamps: true,
                relabel_configs: Vec::new(),
                metric_relabel_configs: Vec::new(),
                basic_auth: None,
                authorization: None,
                tls_config: None,
                follow_redirects: true,
                enable_http2: true,
                enable_compression: true,
                proxy_url: None,
                bearer_token: None,
                bearer_token_file: None,
                sample_limit: None,
                body_size_limit: None,
                label_limit: None,
                label_name_length_limit: None,
                label_value_length_limit: None,
            }],
            storage: StorageConfig::default(),
            vigil: VigilConfig::default(),
        }
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut config = Config::parse(&text, path)?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    /// Makes the credential and certificate file paths relative to `dir` (the configuration
    /// file's directory), as Prometheus does.
    fn resolve_paths(&mut self, dir: &Path) {
        let join = |p: &mut Option<PathBuf>| {
            if let Some(p) = p.as_mut().filter(|p| p.is_relative()) {
                *p = dir.join(&*p);
            }
        };
        for sc in &mut self.scrape_configs {
            if let Some(b) = &mut sc.basic_auth {
                join(&mut b.password_file);
            }
            join(&mut sc.bearer_token_file);
            if let Some(a) = &mut sc.authorization {
                join(&mut a.credentials_file);
            }
            if let Some(t) = &mut sc.tls_config {
                join(&mut t.ca_file);
                join(&mut t.cert_file);
                join(&mut t.key_file);
            }
            for d in &mut sc.docker_sd_configs {
                if let Some(b) = &mut d.basic_auth {
                    join(&mut b.password_file);
                }
                join(&mut d.bearer_token_file);
                if let Some(a) = &mut d.authorization {
                    join(&mut a.credentials_file);
                }
                if let Some(t) = &mut d.tls_config {
                    join(&mut t.ca_file);
                    join(&mut t.cert_file);
                    join(&mut t.key_file);
                }
            }
        }
    }

    /// Parses and validates `text`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // An empty file is a valid, empty configuration in Prometheus.
        let config = if text.trim().is_empty() {
            Config {
                global: GlobalConfig::default(),
                scrape_configs: Vec::new(),
                storage: StorageConfig::default(),
                vigil: VigilConfig::default(),
            }
        } else {
            serde_saphyr::from_str::<Config>(text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: first_line(&e.to_string()),
            })?
        };
        config.validate().map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        validate_vigil(&self.vigil)?;
        let g = &self.global;
        if g.scrape_timeout.0 > g.scrape_interval.0 {
            return Err(format!(
                "global scrape timeout ({}) greater than scrape interval ({})",
                g.scrape_timeout, g.scrape_interval
            ));
        }
        let mut jobs = HashSet::new();
        for sc in &self.scrape_configs {
            if sc.job_name.is_empty() {
                return Err("job_name is empty".to_string());
            }
            if !jobs.insert(sc.job_name.as_str()) {
                return Err(format!("found multiple scrape configs with job name {:?}", sc.job_name));
            }
            if sc.interval(g).is_zero() {
                return Err(format!("job {:?}: scrape_interval must be greater than 0", sc.job_name));
            }
            if sc.timeout(g) > sc.interval(g) {
                return Err(format!("job {:?}: scrape timeout greater than scrape interval", sc.job_name));
            }
            if sc.scheme != "http" && sc.scheme != "https" {
                return Err(format!("job {:?}: unknown scheme {:?}", sc.job_name, sc.scheme));
            }
            compile_all(&sc.relabel_configs)
                .map_err(|e| format!("job {:?}: relabel_configs: {e}", sc.job_name))?;
            compile_all(&sc.metric_relabel_configs)
                .map_err(|e| format!("job {:?}: metric_relabel_configs: {e}", sc.job_name))?;
            for f in sc.file_sd_configs.iter().flat_map(|f| &f.files) {
                let ext = Path::new(f).extension().and_then(|e| e.to_str()).unwrap_or_default();
                if !matches!(ext, "json" | "yml" | "yaml") {
                    return Err(format!(
                        "job {:?}: file_sd_configs file {f:?} must end in .json, .yml or .yaml",
                        sc.job_name
                    ));
                }
            }
            for d in &sc.dns_sd_configs {
                if d.names.is_empty() {
                    return Err(format!("job {:?}: dns_sd_configs must list at least one name", sc.job_name));
                }
                if d.record_type != DnsRecordType::Srv && d.port.is_none_or(|p| p == 0) {
                    return Err(format!(
                        "job {:?}: dns_sd_configs of type {} need a port (only SRV records carry one)",
                        sc.job_name,
                        d.record_type.as_str()
                    ));
                }
            }
            for (i, d) in sc.docker_sd_configs.iter().enumerate() {
                validate_docker_sd(d)
                    .map_err(|e| format!("job {:?}: docker_sd_configs[{i}]: {e}", sc.job_name))?;
            }
            validate_client(&ClientFields::of_scrape(sc))
                .map_err(|e| format!("job {:?}: {e}", sc.job_name))?;
            if !sc.metrics_path.starts_with('/') {
                return Err(format!("job {:?}: metrics_path must start with '/'", sc.job_name));
            }
            for target in sc.static_configs.iter().flat_map(|s| &s.targets) {
                if target.is_empty() || target.contains('/') {
                    return Err(format!(
                        "job {:?}: target {target:?} is not a host:port address",
                        sc.job_name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The configuration as YAML, for the Status page.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// Checks the `vigil:` section: password hashes that argon2 can read, origins that cannot
/// smuggle anything into a Content-Security-Policy header.
fn validate_vigil(v: &VigilConfig) -> Result<(), String> {
    for (i, u) in v.auth.users.iter().enumerate() {
        if u.name.is_empty() || u.name.contains(':') {
            return Err(format!("vigil.auth.users[{i}]: name must be non-empty and without ':'"));
        }
        argon2::PasswordHash::new(&u.password_hash.0).map_err(|e| {
            format!("vigil.auth.users[{i}] ({}): password_hash is not an argon2 PHC string: {e}", u.name)
        })?;
    }
    for (i, t) in v.auth.editor_tokens.iter().enumerate() {
        if t.0.len() < 16 || t.0.chars().any(char::is_whitespace) {
            return Err(format!(
                "vigil.auth.editor_tokens[{i}]: a token needs at least 16 characters and no spaces"
            ));
        }
    }
    for origin in &v.web.embedding.allowed_origins {
        let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
            && origin.split_once("://").is_some_and(|(_, host)| {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'*'))
            });
        if !ok {
            return Err(format!(
                "vigil.web.embedding.allowed_origins: {origin:?} is not an origin like https://wiki.example.com"
            ));
        }
    }
    Ok(())
}

/// The HTTP client settings that scrape configs and `docker_sd_configs` share, borrowed for
/// [`validate_client`].
struct ClientFields<'a> {
    basic_auth: &'a Option<BasicAuth>,
    authorization: &'a Option<Authorization>,
    bearer_token: &'a Option<Secret>,
    bearer_token_file: &'a Option<PathBuf>,
    tls_config: &'a Option<TlsConfig>,
    proxy_url: &'a Option<ProxyUrl>,
}

impl<'a> ClientFields<'a> {
    fn of_scrape(sc: &'a ScrapeConfig) -> Self {
        ClientFields {
            basic_auth: &sc.basic_auth,
            authorization: &sc.authorization,
            bearer_token: &sc.bearer_token,
            bearer_token_file: &sc.bearer_token_file,
            tls_config: &sc.tls_config,
            proxy_url: &sc.proxy_url,
        }
    }

    fn of_docker(d: &'a DockerSdConfig) -> Self {
        ClientFields {
            basic_auth: &d.basic_auth,
            authorization: &d.authorization,
            bearer_token: &d.bearer_token,
            bearer_token_file: &d.bearer_token_file,
            tls_config: &d.tls_config,
            proxy_url: &d.proxy_url,
        }
    }
}

/// Prometheus's checks of a `docker_sd_configs` entry, plus the host forms Vigil can reach.
fn validate_docker_sd(d: &DockerSdConfig) -> Result<(), String> {
    if d.host.is_empty() {
        return Err("host missing".into());
    }
    crate::discovery::docker::DockerHost::parse(&d.host).map_err(|e| e.to_string())?;
    if d.host_networking_host.is_empty() {
        // It becomes the `__address__` of host-networked containers; an empty one would leave
        // them without an address and so invalidate the job's whole target set.
        return Err("host_networking_host must not be empty".into());
    }
    if d.refresh_interval.0.is_zero() {
        return Err("refresh_interval must be greater than 0".into());
    }
    if let Some(f) = d.filters.iter().find(|f| f.name.is_empty()) {
        return Err(format!("a filter needs a name (values {:?})", f.values));
    }
    validate_client(&ClientFields::of_docker(d))
}

/// Prometheus's rules for the HTTP client settings of a scrape config.
fn validate_client(sc: &ClientFields<'_>) -> Result<(), String> {
    if sc.bearer_token.is_some() && sc.bearer_token_file.is_some() {
        return Err("at most one of bearer_token & bearer_token_file must be configured".into());
    }
    let bearer = sc.bearer_token.is_some() || sc.bearer_token_file.is_some();
    if bearer && (sc.basic_auth.is_some() || sc.authorization.is_some()) {
        return Err("at most one of basic_auth, authorization & bearer_token must be configured".into());
    }
    if let Some(b) = &sc.basic_auth {
        if b.password.is_some() && b.password_file.is_some() {
            return Err("at most one of basic_auth password & password_file must be configured".into());
        }
    }
    if let Some(a) = &sc.authorization {
        if sc.basic_auth.is_some() {
            return Err("at most one of basic_auth & authorization must be configured".into());
        }
        if a.credentials.is_some() && a.credentials_file.is_some() {
            return Err(
                "at most one of authorization credentials & credentials_file must be configured".into()
            );
        }
        if a.kind.eq_ignore_ascii_case("basic") {
            return Err(r#"authorization type cannot be set to "basic", use "basic_auth" instead"#.into());
        }
        if a.kind.is_empty() || a.kind.contains(char::is_whitespace) {
            return Err(format!("authorization type {:?} is not a single word", a.kind));
        }
    }
    if let Some(p) = &sc.proxy_url {
        let url = reqwest::Url::parse(&p.0).map_err(|e| format!("proxy_url {}: {e}", p.redacted()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("proxy_url {} must be an http:// or https:// URL", p.redacted()));
        }
    }
    if let Some(t) = &sc.tls_config {
        for (what, inline, file) in [
            ("ca", t.ca.is_some(), t.ca_file.is_some()),
            ("cert", t.cert.is_some(), t.cert_file.is_some()),
            ("key", t.key.is_some(), t.key_file.is_some()),
        ] {
            if inline && file {
                return Err(format!("at most one of tls_config {what} & {what}_file must be configured"));
            }
        }
        if let (Some(min), Some(max)) = (t.min_version, t.max_version) {
            if min > max {
                return Err("tls_config max_version must not be lower than min_version".into());
            }
        }
        if t.max_version.is_some_and(|v| v < TlsVersion::Tls12) {
            return Err(
                "tls_config max_version below TLS12 is not supported (Vigil speaks TLS 1.2 and 1.3)".into()
            );
        }
        let cert = t.cert.is_some() || t.cert_file.is_some();
        let key = t.key.is_some() || t.key_file.is_some();
        if cert != key {
            return Err("tls_config needs both a client certificate and its key (cert/cert_file, key/key_file), or neither".into());
        }
    }
    Ok(())
}

/// The YAML parser follows its one-line message (which already names line and column) with a
/// source snippet; keep the message only, so errors fit one log line.
fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text);
    line.trim().trim_start_matches("error: ").to_string()
}

/// A duration in Prometheus's syntax: one or more `<number><unit>` with units `y w d h m s ms`
/// in decreasing order, e.g. `1h30m`, `15s`, `0s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PromDuration(pub Duration);

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

impl FromStr for PromDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "0" {
            return Ok(PromDuration(Duration::ZERO));
        }
        let invalid = || format!("not a valid duration string: {s:?}");
        let mut rest = s;
        let mut total: u64 = 0;
        let mut last_unit = usize::MAX;
        if rest.is_empty() {
            return Err(invalid());
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let idx = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(invalid)?;
            // Units must appear at most once and from largest to smallest, as in Prometheus.
            if last_unit != usize::MAX && idx <= last_unit {
                return Err(invalid());
            }
            last_unit = idx;
            total = n.checked_mul(UNITS[idx].1).and_then(|v| total.checked_add(v)).ok_or_else(invalid)?;
        }
        Ok(PromDuration(Duration::from_millis(total)))
    }
}

impl fmt::Display for PromDuration {
    /// Formats as Prometheus does: largest units first, zero parts left out, `0s` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in UNITS {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

/// A size in bytes in Prometheus's `body_size_limit` syntax: an integer with an optional unit
/// `B`, `KB`, `MB`, `GB`, `TB` (or `KiB`... ), all powers of 1024 as in Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

const BYTE_UNITS: [(&str, u64); 5] =
    [("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1)];

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("not a valid size: {s:?} (examples: 512KB, 10MB, 1GB)");
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = s[..digits].parse().map_err(|_| invalid())?;
        let unit = s[digits..].trim().to_ascii_uppercase().replace("IB", "B");
        let unit = if unit.len() == 1 && unit != "B" { format!("{unit}B") } else { unit };
        let size = match unit.as_str() {
            "" => 1,
            u => BYTE_UNITS.iter().find(|(name, _)| *name == u).map(|(_, size)| *size).ok_or_else(invalid)?,
        };
        n.checked_mul(size).map(ByteSize).ok_or_else(invalid)
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that divides the size exactly, e.g. `10MB`, `1500B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, size) = BYTE_UNITS
            .iter()
            .find(|(_, size)| self.0 != 0 && self.0.is_multiple_of(*size))
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{unit}", self.0 / size)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for PromDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vigil_section_parses_validates_and_hides_secrets() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$dmlnaWwtdGVzdC1zYWx0IQ$LZ1sNOpWg4BZG8Ws3Vs8SXgHNgTfO3Rt+Ou7iKqzjYM";
        let text = format!(
            "scrape_configs: []\nvigil:\n  auth:\n    anonymous: false\n    editor_tokens: [tok-0123456789abcdef]\n    \
             users: [{{name: ann, password_hash: \"{hash}\"}}]\n  web:\n    embedding:\n      \
             allowed_origins: [https://wiki.example.com]\n"
        );
        let c = Config::parse(&text, Path::new("v.yml")).unwrap();
        assert!(!c.vigil.auth.anonymous && c.vigil.auth.has_editors());
        assert_eq!(c.vigil.web.embedding.allowed_origins, ["https://wiki.example.com"]);
        let yaml = c.to_yaml();
        assert!(!yaml.contains("tok-0123") && !yaml.contains("argon2id"), "{yaml}");
        assert!(yaml.contains("<secret>"), "{yaml}");
        // Defaults: anonymous reads, no editors, nothing printed.
        let c = Config::parse("scrape_configs: []\n", Path::new("v.yml")).unwrap();
        assert!(c.vigil.auth.anonymous && !c.vigil.auth.has_editors());
        assert!(!c.to_yaml().contains("vigil"));
        for bad in [
            "vigil:\n  auth:\n    editor_tokens: [short]\n",
            "vigil:\n  auth:\n    users: [{name: ann, password_hash: plain}]\n",
            "vigil:\n  web:\n    embedding:\n      allowed_origins: [\"https://a.example; script-src *\"]\n",
            "vigil:\n  auth:\n    anonymos: true\n",
        ] {
            assert!(Config::parse(bad, Path::new("v.yml")).is_err(), "{bad}");
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.yml"))
    }

    #[test]
    fn durations_round_trip() {
        for (text, ms) in
            [("15s", 15_000), ("1h30m", 5_400_000), ("500ms", 500), ("1d", 86_400_000), ("0s", 0)]
        {
            let d: PromDuration = text.parse().unwrap();
            assert_eq!(d.0, Duration::from_millis(ms), "{text}");
            assert_eq!(d.to_string(), text);
        }
        for bad in ["", "15", "s", "1m1h", "1s1s", "-1s", "1.5s", "1x"] {
            assert!(bad.parse::<PromDuration>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn prometheus_style_file_parses_with_defaults() {
        let c = parse(
            "global:\n  scrape_interval: 10s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['app:8080']\n        labels: {env: prod}\n  - job_name: api\n    metrics_path: /actuator/prometheus\n    scrape_interval: 5s\n    static_configs:\n      - targets: ['api:8080']\n",
        )
        .unwrap();
        let g = &c.global;
        assert_eq!(c.scrape_configs.len(), 2);
        assert_eq!(c.scrape_configs[0].interval(g), Duration::from_secs(10));
        assert_eq!(c.scrape_configs[0].metrics_path, "/metrics");
        assert_eq!(c.scrape_configs[1].timeout(g), Duration::from_secs(5));
        assert_eq!(c.scrape_configs[0].static_configs[0].labels["env"], "prod");
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse("global:\n  scrape_intervall: 10s\n").unwrap_err().to_string();
        assert!(err.contains("scrape_intervall"), "{err}");
        assert!(err.contains("test.yml"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn invalid_values_are_explained() {
        let err = parse("global:\n  scrape_interval: 10s\n  scrape_timeout: 20s\n").unwrap_err();
        assert!(err.to_string().contains("greater than scrape interval"), "{err}");
        let err = parse("scrape_configs:\n  - job_name: a\n  - job_name: a\n").unwrap_err();
        assert!(err.to_string().contains("multiple scrape configs"), "{err}");
        let err = parse("global:\n  scrape_interval: soon\n").unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
    }

    #[test]
    fn storage_section() {
        let c = parse("storage:\n  tsdb:\n    out_of_order_time_window: 30m\n").unwrap();
        assert_eq!(c.out_of_order_window_ms(), 30 * 60 * 1000);
        assert_eq!(parse("").unwrap().out_of_order_window_ms(), 0);
        assert!(parse("storage:\n  tsdb:\n    retention: 1d\n").is_err());
        assert_eq!(parse(&c.to_yaml()).unwrap(), c);
    }

    #[test]
    fn dns_sd_configs_default_to_srv_and_need_a_port_otherwise() {
        let c = parse(
            "scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - names: [_prometheus._tcp.example.org]\n      - names: [web.example.org]\n        type: a\n        port: 9100\n        refresh_interval: 10s\n",
        )
        .unwrap();
        let d = &c.scrape_configs[0].dns_sd_configs;
        assert_eq!(d[0].record_type, DnsRecordType::Srv);
        assert_eq!((d[1].record_type, d[1].port), (DnsRecordType::A, Some(9100)));
        assert_eq!(parse(&c.to_yaml()).unwrap(), c);
        assert!(c.to_yaml().contains("type: A"), "{}", c.to_yaml());
        let err = parse("scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - names: [x.org]\n        type: MX\n")
            .unwrap_err();
        assert!(err.to_string().contains("need a port"), "{err}");
        let err = parse("scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - names: [x.org]\n        type: TXT\n")
            .unwrap_err();
        assert!(err.to_string().contains("TXT"), "{err}");
    }

    #[test]
    fn docker_sd_configs_take_prometheus_defaults_and_hide_secrets() {
        let c = parse(
            "scrape_configs:\n  - job_name: d\n    docker_sd_configs:\n      - host: unix:///var/run/docker.sock\n      - host: https://docker.example.org:2376\n        port: 9100\n        match_first_network: false\n        filters: [{name: label, values: [a=b]}]\n        basic_auth: {username: u, password: hunter2}\n",
        )
        .unwrap();
        let d = &c.scrape_configs[0].docker_sd_configs;
        assert_eq!((d[0].port, d[0].host_networking_host.as_str()), (80, "localhost"));
        assert!(d[0].match_first_network && d[0].follow_redirects);
        assert_eq!(d[0].refresh_interval.0, DEFAULT_DOCKER_REFRESH);
        assert_eq!((d[1].port, d[1].match_first_network), (9100, false));
        assert_eq!(d[1].filters, [DockerFilter { name: "label".into(), values: vec!["a=b".into()] }]);
        let yaml = c.to_yaml();
        assert!(!yaml.contains("hunter2"), "{yaml}");
        assert_eq!(parse(&yaml.replace("<secret>", "hunter2")).unwrap(), c);
        for (bad, why) in [
            ("host: ''", "host missing"),
            ("host: /var/run/docker.sock", "not a URL"),
            ("host: unix:///d.sock\n        refresh_interval: 0s", "refresh_interval"),
            ("host: unix:///d.sock\n        host_networking_host: ''", "host_networking_host"),
            ("host: unix:///d.sock\n        filters: [{values: [x]}]", "name"),
            (
                "host: http://d:2375\n        bearer_token: t\n        basic_auth: {username: u}",
                "at most one",
            ),
            ("host: http://d:2375\n        oauth2: {client_id: x}", "oauth2"),
        ] {
            let err =
                parse(&format!("scrape_configs:\n  - job_name: d\n    docker_sd_configs:\n      - {bad}\n"))
                    .unwrap_err()
                    .to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn client_settings_and_limits() {
        let c = parse(
            "global:\n  sample_limit: 1000\n  body_size_limit: 10MB\nscrape_configs:\n  - job_name: a\n    scheme: https\n    basic_auth: {username: u, password: hunter2}\n    tls_config: {ca_file: ca.pem, insecure_skip_verify: false}\n    follow_redirects: false\n    sample_limit: 10\n    label_limit: 5\n  - job_name: b\n    authorization: {credentials_file: /run/token}\n",
        )
        .unwrap();
        let (a, b) = (&c.scrape_configs[0], &c.scrape_configs[1]);
        let limits = a.limits(&c.global);
        assert_eq!(limits.sample_limit, Some(10));
        assert_eq!(limits.body_size_limit, Some(ByteSize(10 << 20)));
        assert_eq!(limits.label_limit, Some(5));
        assert!(!a.follow_redirects);
        assert_eq!(b.authorization.as_ref().unwrap().kind, "Bearer");
        let yaml = c.to_yaml();
        assert!(!yaml.contains("hunter2"), "{yaml}");
        assert!(yaml.contains("<secret>"), "{yaml}");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(yaml.contains("body_size_limit: 10MB"), "{yaml}");

        let loaded = {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("p.yml");
            std::fs::write(&file, "scrape_configs:\n  - job_name: a\n    tls_config: {ca_file: ca.pem}\n")
                .unwrap();
            let c = Config::load(&file).unwrap();
            (c.scrape_configs[0].tls_config.clone().unwrap().ca_file.unwrap(), dir.path().join("ca.pem"))
        };
        assert_eq!(loaded.0, loaded.1, "relative to the config file");

        let numeric =
            parse("scrape_configs:\n  - job_name: a\n    basic_auth: {username: 42, password: 1234}\n")
                .unwrap();
        let basic = numeric.scrape_configs[0].basic_auth.clone().unwrap();
        assert_eq!((basic.username.as_str(), basic.password.unwrap().0.as_str()), ("42", "1234"));

        for (bad, why) in [
            ("basic_auth: {username: u, password: p}\n    authorization: {credentials: t}", "at most one"),
            ("basic_auth: {username: u, password: p, password_file: f}", "at most one"),
            ("authorization: {type: Basic, credentials: t}", "basic_auth"),
            ("tls_config: {cert_file: c.pem}", "key_file"),
            ("tls_config: {ca: x, ca_file: c.pem}", "at most one of tls_config ca & ca_file"),
            ("tls_config: {min_version: TLS13, max_version: TLS12}", "max_version"),
            ("tls_config: {min_version: SSL3}", "SSL3"),
            ("bearer_token: t\n    basic_auth: {username: u}", "at most one"),
            ("proxy_url: socks5://p:1080", "proxy_url"),
            ("body_size_limit: 10XB", "not a valid size"),
            ("sample_limit: -1", "line 3"),
        ] {
            let err =
                parse(&format!("scrape_configs:\n  - job_name: a\n    {bad}\n")).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn proxy_url_passwords_are_redacted() {
        let p = |s: &str| ProxyUrl(s.to_string()).redacted();
        assert_eq!(p("http://u:pw@proxy:3128/x@y"), "http://u:<secret>@proxy:3128/x@y");
        assert_eq!(p("http://u@proxy:3128"), "http://u@proxy:3128");
        assert_eq!(p("http://proxy:3128"), "http://proxy:3128");
    }

    #[test]
    fn byte_sizes() {
        for (text, n, shown) in [
            ("10MB", 10 << 20, "10MB"),
            ("512KiB", 512 << 10, "512KB"),
            ("1500", 1500, "1500B"),
            ("1g", 1 << 30, "1GB"),
            ("0B", 0, "0B"),
        ] {
            let b: ByteSize = text.parse().unwrap();
            assert_eq!(b.0, n, "{text}");
            assert_eq!(b.to_string(), shown);
        }
        for bad in ["", "MB", "1.5MB", "10 XB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn empty_file_is_empty_config() {
        assert!(parse("\n").unwrap().scrape_configs.is_empty());
    }

    #[test]
    fn builtin_scrapes_itself_every_15s_and_round_trips() {
        let addr: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        let c = Config::builtin(addr);
        assert_eq!(c.scrape_configs[0].interval(&c.global), Duration::from_secs(15));
        assert_eq!(c.scrape_configs[0].static_configs[0].targets, vec!["127.0.0.1:9090"]);
        assert_eq!(parse(&c.to_yaml()).unwrap(), c);
    }
}
