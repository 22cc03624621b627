//! Docker discovery: Prometheus's `docker_sd_configs`.
//!
//! Every `docker_sd_configs` entry of every job is a source. [`DockerSd`] keeps the groups each
//! source last produced and when it asked; [`refresh`] asks it which sources are due (each at
//! its `refresh_interval`, default 60 s), lists their daemons' containers and networks without
//! holding the state's lock, and stores the answers. A daemon that cannot be reached or answers
//! with something other than the documented JSON keeps the source's last good groups; the
//! error is logged, counted (`vigil_sd_docker_refresh_failures_total`) and kept in
//! [`DockerSd::errors`], as DNS discovery does.
//!
//! The daemon is asked `GET /v1.41/containers/json` (with the configured `filters`, JSON-encoded
//! as the Engine API documents: `{"label":["a=b"]}`) and `GET /v1.41/networks`, over its unix
//! socket with a hyper HTTP/1.1 connection (reqwest cannot dial unix sockets), or with reqwest
//! for `tcp://`, `http://` and `https://` hosts. [`groups_from`] turns the two answers into
//! targets exactly as Prometheus's `discovery/moby/docker.go` does: one target per TCP port per
//! network (only the first network by name unless `match_first_network: false`), the
//! configured `port` for containers without TCP ports, `host_networking_host` for containers in
//! host networking mode, and the `__meta_docker_*` labels.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer};

use super::{Discovered, TargetGroup};
use crate::config::{Config, DockerFilter, DockerSdConfig, PromDuration};
use crate::scrape::client::{self, ClientOptions};

/// The Engine API version Vigil speaks: Docker 20.10 and every later daemon understand it.
pub const API_VERSION: &str = "v1.41";

/// The largest answer read from a daemon; a list of thousands of containers is a few MB.
const MAX_BODY: usize = 64 << 20;

/// How early a source counts as due; see [`DockerSd::due`].
const DUE_SLACK: Duration = Duration::from_millis(100);

/// Where a daemon listens, from a `host` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    /// `unix:///var/run/docker.sock`.
    Unix(PathBuf),
    /// The base URL requests are made under, without a trailing `/`; `tcp://h:p` becomes
    /// `http://h:p`, as Docker's own client does without TLS.
    Http { base: String, tcp: bool },
}

/// Why a `host` setting names no daemon Vigil can reach.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("host {host:?} is not a URL ({reason}); use unix:///var/run/docker.sock, tcp://host:port or http://host:port")]
    NotUrl { host: String, reason: String },
    #[error("host {host:?}: scheme {scheme:?} is not supported (unix, tcp, http or https)")]
    Scheme { host: String, scheme: String },
    #[error("host {0:?} names no socket path")]
    NoSocket(String),
    #[error("host {0:?} names no host name")]
    NoHostName(String),
}

impl DockerHost {
    pub fn parse(host: &str) -> Result<DockerHost, HostError> {
        let url = reqwest::Url::parse(host)
            .map_err(|e| HostError::NotUrl { host: host.to_string(), reason: e.to_string() })?;
        match url.scheme() {
            "unix" => {
                if url.path().is_empty() || url.path() == "/" {
                    return Err(HostError::NoSocket(host.to_string()));
                }
                Ok(DockerHost::Unix(PathBuf::from(url.path())))
            }
            scheme @ ("tcp" | "http" | "https") => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(HostError::NoHostName(host.to_string()));
                }
                // The parsed URL's text is normalized (scheme in lower case, spaces trimmed). The url
                // crate cannot switch a URL from a custom scheme to a special one, so `tcp` is
                // replaced in the text.
                let text = url.as_str();
                let base = match text.strip_prefix("tcp://") {
                    Some(rest) => format!("http://{rest}"),
                    None => text.to_string(),
                };
                Ok(DockerHost::Http { base: base.trim_end_matches('/').to_string(), tcp: scheme == "tcp" })
            }
            other => Err(HostError::Scheme { host: host.to_string(), scheme: other.to_string() }),
        }
    }
}

/// Why one refresh of one source failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("cannot connect to {socket}: {source}")]
    Connect { socket: String, source: std::io::Error },
    #[error("GET {path}: {message}")]
    Http { path: String, message: String },
    #[error("GET {path} answered {status}: {message}")]
    Status { path: String, status: u16, message: String },
    #[error("GET {path}: the answer is larger than {MAX_BODY} bytes")]
    TooLarge { path: String },
    #[error("GET {path}: cannot parse the answer: {source}")]
    Json { path: String, source: serde_json::Error },
    #[error("no answer within the refresh interval ({0})")]
    Timeout(PromDuration),
    #[error("{0}")]
    Client(String),
}

// --- The Engine API's answers, as far as discovery reads them. Go's encoder writes `null` for
// empty maps and lists, so every collection reads `null` as empty.

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Container {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub names: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ports: Vec<Port>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub host_config: HostConfig,
    #[serde(default, deserialize_with = "null_as_default")]
    pub network_settings: NetworkSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Port {
    #[serde(default, rename = "IP", deserialize_with = "null_as_default")]
    pub ip: String,
    #[serde(default)]
    pub private_port: u16,
    #[serde(default)]
    pub public_port: u16,
    #[serde(default, deserialize_with = "null_as_default")]
    pub r#type: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    pub network_mode: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    /// By network name; an entry may be `null`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub networks: BTreeMap<String, Option<Endpoint>>,
}

/// A container's attachment to one network.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Endpoint {
    #[serde(default, rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    #[serde(default, rename = "IPAddress", deserialize_with = "null_as_default")]
    pub ip_address: String,
}

/// One entry of `GET /networks`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub scope: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub ingress: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// A Docker label key as a Prometheus label name: every character outside `[a-zA-Z0-9_]`
/// becomes `_` (Prometheus's `strutil.SanitizeLabelName`, one `_` per character).
pub fn sanitize_label_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// The `filters` query value Docker's list endpoints take: a JSON object of each filter name to
/// its values (`{"label":["prometheus.io/scrape=true"],"status":["running"]}`). Entries with the
/// same name are merged and repeated values kept once, as Docker's filter set does; `None` when
/// no filter has a value, so that no parameter is sent.
pub fn encode_filters(filters: &[DockerFilter]) -> Option<String> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in filters {
        for v in &f.values {
            let values = map.entry(f.name.as_str()).or_default();
            if !values.contains(&v.as_str()) {
                values.push(v);
            }
        }
    }
    // A map of strings to lists of strings always serializes.
    (!map.is_empty()).then(|| serde_json::to_string(&map).unwrap_or_default())
}

/// The path and query of the container list for `filters`.
pub fn containers_path(filters: &[DockerFilter]) -> String {
    match encode_filters(filters) {
        Some(json) => {
            let query =
                form_urlencoded::Serializer::new(String::new()).append_pair("filters", &json).finish();
            format!("/{API_VERSION}/containers/json?{query}")
        }
        None => format!("/{API_VERSION}/containers/json"),
    }
}

/// `host:port`, with IPv6 addresses in brackets (Go's `net.JoinHostPort`).
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

const META: &str = "__meta_docker_";

/// The `__meta_docker_network_*` labels of every network, by network id.
fn network_labels(networks: &[Network]) -> HashMap<&str, BTreeMap<String, String>> {
    networks
        .iter()
        .map(|n| {
            let mut labels = BTreeMap::from([
                (format!("{META}network_id"), n.id.clone()),
                (format!("{META}network_name"), n.name.clone()),
                (format!("{META}network_scope"), n.scope.clone()),
                (format!("{META}network_internal"), n.internal.to_string()),
                (format!("{META}network_ingress"), n.ingress.to_string()),
            ]);
            for (k, v) in &n.labels {
                labels.insert(format!("{META}network_label_{}", sanitize_label_name(k)), v.clone());
            }
            (n.id.as_str(), labels)
        })
        .collect()
}

/// The targets of one daemon's answers, one group per target, built as Prometheus builds them.
pub fn groups_from(
    config: &DockerSdConfig,
    containers: &[Container],
    networks: &[Network],
) -> Vec<TargetGroup> {
    let network_labels = network_labels(networks);
    // Later duplicates win, as in Prometheus's map.
    let by_id: HashMap<&str, &Container> = containers.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut out = Vec::new();
    for c in containers {
        let Some(name) = c.names.first() else { continue };
        let mut common = BTreeMap::from([
            (format!("{META}container_id"), c.id.clone()),
            (format!("{META}container_name"), name.clone()),
            (format!("{META}container_network_mode"), c.host_config.network_mode.clone()),
        ]);
        for (k, v) in &c.labels {
            common.insert(format!("{META}container_label_{}", sanitize_label_name(k)), v.clone());
        }

        // A container sharing another's network stack (`container:<id>`) lists no networks of
        // its own: follow the chain to the first container that has some. The hop limit guards
        // against a cycle, which would loop forever.
        let mut networks = &c.network_settings.networks;
        let mut mode = c.host_config.network_mode.as_str();
        let mut hops = 0;
        while networks.is_empty() && hops < containers.len() {
            let Some(other) = mode.strip_prefix("container:").and_then(|id| by_id.get(id)) else { break };
            networks = &other.network_settings.networks;
            mode = other.host_config.network_mode.as_str();
            hops += 1;
        }

        let mut chosen: Vec<&Endpoint> = networks.values().flatten().collect();
        if config.match_first_network && networks.len() > 1 {
            // The map is ordered by name, so the first non-null entry is Prometheus's choice.
            chosen.truncate(1);
        }

        for n in chosen {
            let network = network_labels.get(n.network_id.as_str());
            let mut add = |mut labels: BTreeMap<String, String>, address: String| {
                labels.extend(common.iter().map(|(k, v)| (k.clone(), v.clone())));
                if let Some(network) = network {
                    labels.extend(network.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                out.push(TargetGroup { targets: vec![address], labels });
            };
            let mut added = false;
            for p in c.ports.iter().filter(|p| p.r#type == "tcp") {
                let mut labels = BTreeMap::from([
                    (format!("{META}network_ip"), n.ip_address.clone()),
                    (format!("{META}port_private"), p.private_port.to_string()),
                ]);
                if p.public_port > 0 {
                    labels.insert(format!("{META}port_public"), p.public_port.to_string());
                    labels.insert(format!("{META}port_public_ip"), p.ip.clone());
                }
                add(labels, join_host_port(&n.ip_address, p.private_port));
                added = true;
            }
            if !added {
                // No TCP port published: the configured port, or for host networking (where
                // Docker lists no ports) the configured host, which carries no port.
                let labels = BTreeMap::from([(format!("{META}network_ip"), n.ip_address.clone())]);
                let address = if c.host_config.network_mode == "host" {
                    config.host_networking_host.clone()
                } else {
                    join_host_port(&n.ip_address, config.port)
                };
                add(labels, address);
            }
        }
    }
    out
}

/// The client settings of an `http(s)://` host, as the scrape client takes them.
fn client_options(d: &DockerSdConfig) -> ClientOptions {
    ClientOptions {
        basic_auth: d.basic_auth.clone(),
        authorization: client::authorization_or_bearer(
            &d.authorization,
            &d.bearer_token,
            &d.bearer_token_file,
        ),
        tls: d.tls_config.clone().unwrap_or_default(),
        no_redirects: !d.follow_redirects,
        no_compression: false,
        proxy: d.proxy_url.clone(),
    }
}

/// How one source reaches its daemon.
enum Transport {
    Unix(PathBuf),
    // Boxed: the options are large and a transport lives only for one refresh anyway.
    Http { base: String, client: reqwest::Client, opts: Box<ClientOptions> },
}

impl Transport {
    fn new(d: &DockerSdConfig) -> Result<Transport, DockerError> {
        match DockerHost::parse(&d.host)? {
            DockerHost::Unix(path) => Ok(Transport::Unix(path)),
            DockerHost::Http { base, tcp } => {
                // Prometheus hands its HTTP client settings only to http(s) hosts.
                let opts = if tcp { ClientOptions::default() } else { client_options(d) };
                let client = client::build(&opts).map_err(DockerError::Client)?;
                Ok(Transport::Http { base, client, opts: Box::new(opts) })
            }
        }
    }

    /// GETs `path` (with its query) and returns the body of a 2xx answer.
    async fn get(&self, path: &str) -> Result<Vec<u8>, DockerError> {
        let http = |message: String| DockerError::Http { path: path.to_string(), message };
        let (status, body) = match self {
            Transport::Unix(socket) => {
                let stream = tokio::net::UnixStream::connect(socket).await.map_err(|source| {
                    DockerError::Connect { socket: socket.display().to_string(), source }
                })?;
                let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| http(e.to_string()))?;
                // The connection task ends when the answer has been read and `sender` dropped.
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "Docker discovery: connection ended with an error");
                    }
                });
                let request = hyper::Request::get(path)
                    // HTTP/1.1 needs a Host; Docker's own client sends this placeholder over sockets.
                    .header(hyper::header::HOST, "docker")
                    .header(hyper::header::USER_AGENT, concat!("Vigil/", env!("CARGO_PKG_VERSION")))
                    .body(Empty::<Bytes>::new())
                    .map_err(|e| http(e.to_string()))?;
                let response = sender.send_request(request).await.map_err(|e| http(e.to_string()))?;
                let status = response.status().as_u16();
                let body = Limited::new(response.into_body(), MAX_BODY).collect().await.map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        DockerError::TooLarge { path: path.to_string() }
                    } else {
                        http(e.to_string())
                    }
                })?;
                (status, body.to_bytes().to_vec())
            }
            Transport::Http { base, client, opts } => {
                let request = client.get(format!("{base}{path}"));
                let request = client::authorize(request, opts).await.map_err(DockerError::Client)?;
                let mut response = request.send().await.map_err(|e| http(innermost(&e)))?;
                let status = response.status().as_u16();
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| http(innermost(&e)))? {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(DockerError::TooLarge { path: path.to_string() });
                    }
                    body.extend_from_slice(&chunk);
                }
                (status, body)
            }
        };
        if !(200..300).contains(&status) {
            // Docker explains refusals in `{"message": "..."}`.
            #[derive(Deserialize)]
            struct Refusal {
                message: String,
            }
            let message = serde_json::from_slice::<Refusal>(&body).map(|r| r.message).unwrap_or_else(|_| {
                let text = String::from_utf8_lossy(&body);
                text.chars().take(200).collect::<String>().trim().to_string()
            });
            return Err(DockerError::Status { path: path.to_string(), status, message });
        }
        Ok(body)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, DockerError> {
        let body = self.get(path).await?;
        serde_json::from_slice(&body).map_err(|source| DockerError::Json { path: path.to_string(), source })
    }
}

/// The most specific message of an error chain (reqwest's outer ones only say "error sending
/// request").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}

/// Lists the daemon's containers and networks and builds the targets: one refresh of one
/// source, bounded by its `refresh_interval` as Prometheus bounds its client.
pub async fn discover(d: &DockerSdConfig) -> Result<Vec<TargetGroup>, DockerError> {
    let work = async {
        let transport = Transport::new(d)?;
        let containers: Vec<Container> = transport.get_json(&containers_path(&d.filters)).await?;
        let networks: Vec<Network> = transport.get_json(&format!("/{API_VERSION}/networks")).await?;
        Ok(groups_from(d, &containers, &networks))
    };
    tokio::time::timeout(d.refresh_interval.0, work)
        .await
        .unwrap_or(Err(DockerError::Timeout(d.refresh_interval)))
}

/// One `docker_sd_configs` entry: the job and its position there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    pub job: String,
    pub index: usize,
}

#[derive(Debug)]
struct SourceState {
    config: DockerSdConfig,
    asked_at: Option<Instant>,
    groups: Vec<TargetGroup>,
}

/// Docker discovery for every job of a configuration: the last good answer per source.
#[derive(Debug, Default)]
pub struct DockerSd {
    sources: HashMap<Source, SourceState>,
    errors: Vec<String>,
}

fn sources_of(config: &Config) -> impl Iterator<Item = (Source, &DockerSdConfig)> {
    config.scrape_configs.iter().flat_map(|sc| {
        sc.docker_sd_configs
            .iter()
            .enumerate()
            .map(move |(index, d)| (Source { job: sc.job_name.clone(), index }, d))
    })
}

/// What one source's refresh gave.
pub type Answer = Result<Vec<TargetGroup>, DockerError>;

impl DockerSd {
    /// Errors of the last refreshes, one line each.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// The sources of `config` due for a refresh now, with their settings. Sources `config` no
    /// longer has are forgotten, and a source whose settings changed starts over (its old
    /// targets may come from another daemon or other filters).
    pub fn due(&mut self, config: &Config) -> Vec<(Source, DockerSdConfig)> {
        let wanted: HashMap<Source, &DockerSdConfig> = sources_of(config).collect();
        self.sources.retain(|s, state| wanted.get(s).is_some_and(|d| **d == state.config));
        let mut due = Vec::new();
        for (source, d) in wanted {
            let state = self.sources.entry(source.clone()).or_insert_with(|| SourceState {
                config: d.clone(),
                asked_at: None,
                groups: Vec::new(),
            });
            // Counted from when the refresh was handed out, with a little slack: the caller
            // polls once a second, and a source due just after a poll would wait a whole second.
            if state.asked_at.is_none_or(|at| at.elapsed() + DUE_SLACK >= d.refresh_interval.0) {
                state.asked_at = Some(Instant::now());
                due.push((source, d.clone()));
            }
        }
        due
    }

    /// Records refresh results; a failure keeps the source's previous groups. Returns whether
    /// any source's groups changed.
    pub fn store(&mut self, answers: Vec<(Source, Answer)>) -> bool {
        self.errors.clear();
        let mut changed = false;
        for (source, answer) in answers {
            let Some(state) = self.sources.get_mut(&source) else { continue };
            match answer {
                Ok(groups) => {
                    changed |= state.groups != groups;
                    state.groups = groups;
                }
                Err(e) => {
                    tracing::warn!(
                        job = %source.job, host = %state.config.host, error = %e,
                        "Docker discovery: keeping the last good targets"
                    );
                    self.errors.push(format!(
                        "job {:?} docker_sd_configs[{}] ({}): {e}",
                        source.job, source.index, state.config.host
                    ));
                }
            }
        }
        changed
    }

    /// Every job's groups from the last good answers.
    pub fn groups(&self, config: &Config) -> Discovered {
        let mut out = Discovered::new();
        for (source, _) in sources_of(config) {
            if let Some(state) = self.sources.get(&source) {
                out.entry(source.job.clone()).or_default().extend(state.groups.iter().cloned());
            }
        }
        out
    }
}

/// What one [`refresh`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Some job's groups changed: targets need rebuilding.
    pub changed: bool,
    pub refreshes: u64,
    pub failures: u64,
}

/// Refreshes the due sources of `config` concurrently and stores the answers in `state`.
pub async fn refresh(state: &Mutex<DockerSd>, config: &Config) -> Refreshed {
    let due = state.lock().due(config);
    if due.is_empty() {
        return Refreshed::default();
    }
    let mut set = tokio::task::JoinSet::new();
    for (source, d) in due {
        set.spawn(async move {
            let answer = discover(&d).await;
            (source, answer)
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = set.join_next().await {
        // A panicked refresh leaves its source without an answer, i.e. with its old groups.
        if let Ok(pair) = joined {
            answers.push(pair);
        }
    }
    let refreshes = answers.len() as u64;
    let failures = answers.iter().filter(|(_, a)| a.is_err()).count() as u64;
    Refreshed { changed: state.lock().store(answers), refreshes, failures }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn filter(name: &str, values: &[&str]) -> DockerFilter {
        DockerFilter { name: name.into(), values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn filters_encode_as_docker_documents_them() {
        assert_eq!(encode_filters(&[]), None);
        assert_eq!(encode_filters(&[filter("label", &[])]), None, "a name without values filters nothing");
        let filters = [
            filter("status", &["running"]),
            filter("label", &["prometheus.io/scrape=true", "team"]),
            filter("label", &["team", "env=prod"]),
        ];
        assert_eq!(
            encode_filters(&filters).as_deref(),
            Some(r#"{"label":["prometheus.io/scrape=true","team","env=prod"],"status":["running"]}"#)
        );
        assert_eq!(
            containers_path(&[filter("name", &["web"])]),
            "/v1.41/containers/json?filters=%7B%22name%22%3A%5B%22web%22%5D%7D"
        );
        assert_eq!(containers_path(&[]), "/v1.41/containers/json");
    }

    #[test]
    fn label_names_are_sanitized_per_character() {
        assert_eq!(sanitize_label_name("com.docker.compose.project"), "com_docker_compose_project");
        assert_eq!(sanitize_label_name("prometheus-job"), "prometheus_job");
        assert_eq!(sanitize_label_name("a_B9"), "a_B9");
        assert_eq!(sanitize_label_name("ünï/x"), "_n__x", "one `_` per character, not per byte");
        assert_eq!(sanitize_label_name(""), "");
    }

    #[test]
    fn hosts() {
        assert_eq!(
            DockerHost::parse("unix:///var/run/docker.sock").unwrap(),
            DockerHost::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            DockerHost::parse("tcp://10.0.0.1:2375").unwrap(),
            DockerHost::Http { base: "http://10.0.0.1:2375".into(), tcp: true }
        );
        assert_eq!(
            DockerHost::parse("https://docker.example.org:2376/").unwrap(),
            DockerHost::Http { base: "https://docker.example.org:2376".into(), tcp: false }
        );
        for bad in
            ["/var/run/docker.sock", "unix://", "ssh://host", "tcp://", "npipe:////./pipe/docker_engine"]
        {
            assert!(DockerHost::parse(bad).is_err(), "{bad}");
        }
    }

    fn config(yaml: &str) -> Config {
        Config::parse(yaml, Path::new("t.yml")).unwrap()
    }

    #[test]
    fn containers_sharing_a_network_stack_and_null_fields() {
        let d = &config(
            "scrape_configs:\n  - job_name: d\n    docker_sd_configs:\n      - host: unix:///x.sock\n",
        )
        .scrape_configs[0]
            .docker_sd_configs[0];
        let containers: Vec<Container> = serde_json::from_str(
            r#"[
              {"Id": "a", "Names": ["/db"], "Labels": null, "Ports": [{"PrivatePort": 5432, "Type": "tcp"},
                {"PrivatePort": 53, "Type": "udp"}],
               "HostConfig": {"NetworkMode": "net"},
               "NetworkSettings": {"Networks": {"net": {"NetworkID": "n1", "IPAddress": "10.1.0.2"}, "zz": null}}},
              {"Id": "b", "Names": ["/exporter"], "Ports": null, "HostConfig": {"NetworkMode": "container:a"},
               "NetworkSettings": {"Networks": {}}},
              {"Id": "c", "Names": [], "HostConfig": {"NetworkMode": "bridge"}},
              {"Id": "d", "Names": ["/loop"], "HostConfig": {"NetworkMode": "container:e"}, "NetworkSettings": {"Networks": null}},
              {"Id": "e", "Names": ["/loop2"], "HostConfig": {"NetworkMode": "container:d"}, "NetworkSettings": {"Networks": null}}
            ]"#,
        )
        .unwrap();
        let networks: Vec<Network> =
            serde_json::from_str(r#"[{"Id": "n1", "Name": "net", "Scope": "local", "Labels": null}]"#)
                .unwrap();
        let groups = groups_from(d, &containers, &networks);
        let addresses: Vec<&str> = groups.iter().map(|g| g.targets[0].as_str()).collect();
        // The UDP port is skipped; the exporter shares the database's network; the nameless
        // container and the cycle yield nothing.
        assert_eq!(addresses, ["10.1.0.2:5432", "10.1.0.2:80"]);
        let exporter = &groups[1].labels;
        assert_eq!(exporter["__meta_docker_container_name"], "/exporter");
        assert_eq!(exporter["__meta_docker_container_network_mode"], "container:a");
        assert_eq!(exporter["__meta_docker_network_name"], "net");
        assert!(!exporter.contains_key("__meta_docker_port_private"));
    }

    #[test]
    fn failures_keep_the_last_good_groups_and_sources_follow_the_config() {
        let c = config(
            "scrape_configs:\n  - job_name: a\n    docker_sd_configs:\n      - host: unix:///x.sock\n        refresh_interval: 1h\n",
        );
        let mut sd = DockerSd::default();
        let due = sd.due(&c);
        assert_eq!(due.len(), 1);
        let source = due[0].0.clone();
        let group = TargetGroup { targets: vec!["10.0.0.1:80".into()], labels: BTreeMap::new() };
        assert!(sd.store(vec![(source.clone(), Ok(vec![group.clone()]))]));
        assert!(sd.due(&c).is_empty(), "refreshed an hour from now");
        let err = DockerError::Timeout(PromDuration(Duration::from_secs(1)));
        assert!(!sd.store(vec![(source.clone(), Err(err))]));
        assert_eq!(sd.errors().len(), 1);
        assert!(sd.errors()[0].contains("unix:///x.sock"), "{:?}", sd.errors());
        assert_eq!(sd.groups(&c)["a"], vec![group]);

        // Changed settings start over: due at once, without the old daemon's targets.
        let other = config(
            "scrape_configs:\n  - job_name: a\n    docker_sd_configs:\n      - host: unix:///y.sock\n        refresh_interval: 1h\n",
        );
        assert_eq!(sd.due(&other).len(), 1);
        assert!(sd.groups(&other)["a"].is_empty());
        assert!(sd.groups(&config("scrape_configs: []\n")).is_empty());
    }
}
