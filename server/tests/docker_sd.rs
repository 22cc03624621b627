//! Docker discovery against a replayed Docker Engine: an axum server on a unix socket (and on
//! loopback TCP) answering `GET /v1.41/containers/json` and `GET /v1.41/networks` with JSON shaped
//! as the Engine API documents it. Vigil's discovery runs against it unchanged and must build
//! exactly Prometheus's targets and `__meta_docker_*` labels; the real binary, pointed at the
//! socket, must scrape a container whose address is a loopback `/metrics` server, keep its
//! targets while the daemon fails, and follow the container list when it changes. Also:
//! `vigil check config` accepts `docker_sd_configs` and names mistakes in them.

mod common;

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{json, Value};
use vigil::config::{Config, DockerSdConfig};
use vigil::discovery::docker::{discover, DockerError};

/// What the replayed daemon answers, and what it was asked.
#[derive(Default)]
struct Daemon {
    containers: Value,
    networks: Value,
    /// Answer every request with this status and Docker's `{"message"}` body instead.
    refuse: Option<StatusCode>,
    /// Answer the container list with a body that is not JSON.
    garble: bool,
    /// The raw query of the last container list request.
    last_query: Option<String>,
    last_authorization: Option<String>,
    requests: usize,
}

type Shared = Arc<Mutex<Daemon>>;

fn router(daemon: Shared) -> axum::Router {
    async fn containers(State(d): State<Shared>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
        let mut d = d.lock().unwrap();
        d.requests += 1;
        d.last_query = q;
        d.last_authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
        if let Some(status) = d.refuse {
            return (status, axum::Json(json!({"message": "daemon is shutting down"}))).into_response();
        }
        if d.garble {
            return ([("content-type", "application/json")], "[{\"Id\": ").into_response();
        }
        axum::Json(d.containers.clone()).into_response()
    }
    async fn networks(State(d): State<Shared>) -> Response {
        let d = d.lock().unwrap();
        if let Some(status) = d.refuse {
            return (status, axum::Json(json!({"message": "daemon is shutting down"}))).into_response();
        }
        axum::Json(d.networks.clone()).into_response()
    }
    axum::Router::new()
        .route("/v1.41/containers/json", get(containers))
        .route("/v1.41/networks", get(networks))
        .with_state(daemon)
}

/// Serves the replayed daemon on `socket` (and returns a loopback TCP address serving the same).
fn start_daemon(rt: &tokio::runtime::Runtime, socket: &Path, daemon: Shared) -> std::net::SocketAddr {
    let unix = rt.block_on(async { tokio::net::UnixListener::bind(socket) }).unwrap();
    let tcp = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = tcp.local_addr().unwrap();
    rt.spawn(axum::serve(unix, router(daemon.clone())).into_future());
    rt.spawn(axum::serve(tcp, router(daemon)).into_future());
    addr
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A network attachment as `NetworkSettings.Networks` lists it.
fn endpoint(network_id: &str, ip: &str) -> Value {
    json!({
        "IPAMConfig": null, "Links": null, "Aliases": null,
        "NetworkID": network_id,
        "EndpointID": format!("ep-{network_id}-{ip}"),
        "Gateway": if ip.is_empty() { "" } else { "172.18.0.1" },
        "IPAddress": ip,
        "IPPrefixLen": if ip.is_empty() { 0 } else { 16 },
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "MacAddress": "", "DriverOpts": null
    })
}

/// One entry of `GET /containers/json`.
fn container(id: &str, name: &str, mode: &str, ports: Value, labels: Value, networks: Value) -> Value {
    json!({
        "Id": id,
        "Names": [format!("/{name}")],
        "Image": "example/app:1.0",
        "ImageID": "sha256:0b5c2d0e5d3c6f2b5e4a8f9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e",
        "Command": "/app",
        "Created": 1_732_600_000,
        "Ports": ports,
        "Labels": labels,
        "State": "running",
        "Status": "Up 5 minutes",
        "HostConfig": {"NetworkMode": mode},
        "NetworkSettings": {"Networks": networks},
        "Mounts": []
    })
}

/// One entry of `GET /networks`.
fn network(id: &str, name: &str, driver: &str, internal: bool, labels: Value) -> Value {
    json!({
        "Name": name, "Id": id, "Created": "2024-11-26T10:00:00.000000000Z",
        "Scope": "local", "Driver": driver, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": internal, "Attachable": false, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": {}, "Options": {}, "Labels": labels
    })
}

const DEFAULT_NET: &str = "3f1c8f0a4d5e6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c";
const BACKEND_NET: &str = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";
const HOST_NET: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn replay() -> Daemon {
    let containers = json!([
        // Bridge network, one published and one exposed TCP port, a UDP port, labels to sanitize.
        container(
            "aaaa",
            "shop-web-1",
            "shop_default",
            json!([
                {"IP": "0.0.0.0", "PrivatePort": 8080, "PublicPort": 18080, "Type": "tcp"},
                {"PrivatePort": 9100, "Type": "tcp"},
                {"PrivatePort": 5353, "Type": "udp"}
            ]),
            json!({"com.docker.compose.service": "web", "prometheus.io/scrape": "true"}),
            json!({"shop_default": endpoint(DEFAULT_NET, "172.18.0.2")}),
        ),
        // Host networking: Docker lists no ports and an empty address.
        container(
            "bbbb",
            "node-exporter",
            "host",
            json!([]),
            json!({}),
            json!({"host": endpoint(HOST_NET, "")})
        ),
        // No ports at all: the configured port.
        container(
            "cccc",
            "batch",
            "shop_default",
            json!([]),
            json!({"team": "data"}),
            json!({"shop_default": endpoint(DEFAULT_NET, "172.18.0.4")}),
        ),
        // Two networks: only the first by name unless match_first_network is false.
        container(
            "dddd",
            "api",
            "shop_default",
            json!([{"PrivatePort": 8000, "Type": "tcp"}]),
            json!(null),
            json!({"shop_default": endpoint(DEFAULT_NET, "172.18.0.5"), "shop_backend": endpoint(BACKEND_NET, "172.19.0.5")}),
        ),
    ]);
    let networks = json!([
        network(
            DEFAULT_NET,
            "shop_default",
            "bridge",
            false,
            json!({"com.docker.compose.network": "default"})
        ),
        network(BACKEND_NET, "shop_backend", "bridge", true, json!({})),
        network(HOST_NET, "host", "host", false, json!({})),
    ]);
    Daemon { containers, networks, ..Daemon::default() }
}

fn docker_config(yaml_entry: &str) -> DockerSdConfig {
    let text =
        format!("scrape_configs:\n  - job_name: docker\n    docker_sd_configs:\n      - {yaml_entry}\n");
    Config::parse(&text, Path::new("t.yml")).unwrap().scrape_configs[0].docker_sd_configs[0].clone()
}

/// Every target as one label set, `__address__` included, sorted.
fn label_sets(groups: &[vigil::discovery::TargetGroup]) -> Vec<BTreeMap<String, String>> {
    let mut out: Vec<BTreeMap<String, String>> = groups
        .iter()
        .flat_map(|g| {
            g.targets.iter().map(|t| {
                let mut l = g.labels.clone();
                l.insert("__address__".into(), t.clone());
                l
            })
        })
        .collect();
    out.sort();
    out
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const SHOP_NET: [(&str, &str); 6] = [
    ("__meta_docker_network_id", DEFAULT_NET),
    ("__meta_docker_network_name", "shop_default"),
    ("__meta_docker_network_scope", "local"),
    ("__meta_docker_network_internal", "false"),
    ("__meta_docker_network_ingress", "false"),
    ("__meta_docker_network_label_com_docker_compose_network", "default"),
];

fn with(base: &[(&str, &str)], more: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l = labels(base);
    l.extend(labels(more));
    l
}

fn expected_first_network() -> Vec<BTreeMap<String, String>> {
    let web = [
        ("__meta_docker_container_id", "aaaa"),
        ("__meta_docker_container_name", "/shop-web-1"),
        ("__meta_docker_container_network_mode", "shop_default"),
        ("__meta_docker_container_label_com_docker_compose_service", "web"),
        ("__meta_docker_container_label_prometheus_io_scrape", "true"),
        ("__meta_docker_network_ip", "172.18.0.2"),
    ];
    let web = with(&web, &SHOP_NET);
    let api_backend = [
        ("__address__", "172.19.0.5:8000"),
        ("__meta_docker_container_id", "dddd"),
        ("__meta_docker_container_name", "/api"),
        ("__meta_docker_container_network_mode", "shop_default"),
        ("__meta_docker_network_ip", "172.19.0.5"),
        ("__meta_docker_port_private", "8000"),
        ("__meta_docker_network_id", BACKEND_NET),
        ("__meta_docker_network_name", "shop_backend"),
        ("__meta_docker_network_scope", "local"),
        ("__meta_docker_network_internal", "true"),
        ("__meta_docker_network_ingress", "false"),
    ];
    let mut out = vec![
        with(
            &web.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
            &[
                ("__address__", "172.18.0.2:8080"),
                ("__meta_docker_port_private", "8080"),
                ("__meta_docker_port_public", "18080"),
                ("__meta_docker_port_public_ip", "0.0.0.0"),
            ],
        ),
        with(
            &web.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
            &[("__address__", "172.18.0.2:9100"), ("__meta_docker_port_private", "9100")],
        ),
        labels(&[
            ("__address__", "docker-host.internal"),
            ("__meta_docker_container_id", "bbbb"),
            ("__meta_docker_container_name", "/node-exporter"),
            ("__meta_docker_container_network_mode", "host"),
            ("__meta_docker_network_ip", ""),
            ("__meta_docker_network_id", HOST_NET),
            ("__meta_docker_network_name", "host"),
            ("__meta_docker_network_scope", "local"),
            ("__meta_docker_network_internal", "false"),
            ("__meta_docker_network_ingress", "false"),
        ]),
        with(
            &SHOP_NET,
            &[
                ("__address__", "172.18.0.4:9999"),
                ("__meta_docker_container_id", "cccc"),
                ("__meta_docker_container_name", "/batch"),
                ("__meta_docker_container_network_mode", "shop_default"),
                ("__meta_docker_container_label_team", "data"),
                ("__meta_docker_network_ip", "172.18.0.4"),
            ],
        ),
        // "shop_backend" sorts before "shop_default": the first network by name.
        labels(&api_backend),
    ];
    out.sort();
    out
}

#[test]
fn discovery_builds_prometheus_targets_from_the_engine_api() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let daemon: Shared = Arc::new(Mutex::new(replay()));
    let rt = runtime();
    let tcp = start_daemon(&rt, &socket, daemon.clone());

    let d = docker_config(&format!(
        "host: unix://{}\n        port: 9999\n        host_networking_host: docker-host.internal\n        \
         filters: [{{name: label, values: [prometheus.io/scrape=true]}}, {{name: status, values: [running]}}]",
        socket.display()
    ));
    let groups = rt.block_on(discover(&d)).unwrap();
    assert_eq!(label_sets(&groups), expected_first_network());
    // The filters reached the daemon JSON-encoded, as the Engine API documents them.
    let query = daemon.lock().unwrap().last_query.clone().unwrap();
    let decoded: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    assert_eq!(decoded["filters"], r#"{"label":["prometheus.io/scrape=true"],"status":["running"]}"#);

    // Every network: the api container also gets a target on shop_default.
    let all = docker_config(&format!(
        "host: unix://{}\n        port: 9999\n        host_networking_host: docker-host.internal\n        match_first_network: false",
        socket.display()
    ));
    let groups = rt.block_on(discover(&all)).unwrap();
    let mut expected = expected_first_network();
    expected.push(with(
        &SHOP_NET,
        &[
            ("__address__", "172.18.0.5:8000"),
            ("__meta_docker_container_id", "dddd"),
            ("__meta_docker_container_name", "/api"),
            ("__meta_docker_container_network_mode", "shop_default"),
            ("__meta_docker_network_ip", "172.18.0.5"),
            ("__meta_docker_port_private", "8000"),
        ],
    ));
    expected.sort();
    assert_eq!(label_sets(&groups), expected);
    assert_eq!(daemon.lock().unwrap().last_query, None, "no filters, no parameter");

    // Defaults: port 80 and localhost. Over TCP (reqwest) the same answers give the same targets.
    let defaults = docker_config(&format!("host: tcp://{tcp}"));
    let sets = label_sets(&rt.block_on(discover(&defaults)).unwrap());
    let addresses: Vec<&str> = sets.iter().map(|l| l["__address__"].as_str()).collect();
    assert_eq!(
        addresses,
        ["172.18.0.2:8080", "172.18.0.2:9100", "172.18.0.4:80", "172.19.0.5:8000", "localhost"]
    );
    // http:// hosts take the HTTP client settings.
    let authorized =
        docker_config(&format!("host: http://{tcp}\n        authorization: {{credentials: s3cr3t}}"));
    rt.block_on(discover(&authorized)).unwrap();
    assert_eq!(daemon.lock().unwrap().last_authorization.as_deref(), Some("Bearer s3cr3t"));

    // Failures are typed errors that say what went wrong.
    daemon.lock().unwrap().garble = true;
    let err = rt.block_on(discover(&d)).unwrap_err();
    assert!(matches!(err, DockerError::Json { .. }), "{err}");
    daemon.lock().unwrap().garble = false;
    daemon.lock().unwrap().refuse = Some(StatusCode::INTERNAL_SERVER_ERROR);
    let err = rt.block_on(discover(&d)).unwrap_err();
    assert!(matches!(err, DockerError::Status { status: 500, .. }), "{err}");
    assert!(err.to_string().contains("daemon is shutting down"), "{err}");
    let missing = docker_config(&format!("host: unix://{}", dir.path().join("nothing.sock").display()));
    let err = rt.block_on(discover(&missing)).unwrap_err();
    assert!(matches!(err, DockerError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("nothing.sock"), "{err}");
}

fn targets(base: &str) -> Vec<Value> {
    let (_, v) = common::get_json(&format!("{base}/api/v1/targets"));
    v["data"]["activeTargets"].as_array().cloned().unwrap_or_default()
}

fn counter(base: &str, name: &str) -> f64 {
    let (_, text) = common::get(&format!("{base}/metrics"));
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).map(str::to_string);
    line.and_then(|l| l.split(' ').nth(1).and_then(|v| v.parse().ok())).unwrap_or(0.0)
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn vigil_scrapes_a_container_the_daemon_lists() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let rt = runtime();
    // The "container": a loopback /metrics server.
    let metrics = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let metrics_port = metrics.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/metrics", get(|| async { "# TYPE shop_orders_total counter\nshop_orders_total 42\n" }));
    rt.spawn(axum::serve(metrics, app).into_future());
    let mut replayed = replay();
    replayed.containers = json!([container(
        "eeee",
        "shop-orders-1",
        "bridge",
        json!([{"PrivatePort": metrics_port, "Type": "tcp"}]),
        json!({"com.docker.compose.service": "orders"}),
        json!({"bridge": endpoint(DEFAULT_NET, "127.0.0.1")}),
    )]);
    let daemon: Shared = Arc::new(Mutex::new(replayed));
    start_daemon(&rt, &socket, daemon.clone());

    let vigil = common::start(
        &format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n  - job_name: docker\n    \
             docker_sd_configs:\n      - host: unix://{}\n        refresh_interval: 1s\n    relabel_configs:\n      \
             - source_labels: [__meta_docker_container_label_com_docker_compose_service]\n        target_label: service\n",
            socket.display()
        ),
        &[],
    );
    let instance = format!("127.0.0.1:{metrics_port}");
    wait_for("the container to be scraped", || {
        targets(&vigil.base)
            .iter()
            .any(|t| t["labels"]["instance"] == instance.as_str() && t["health"] == "up")
    });
    let t = targets(&vigil.base);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0]["labels"]["service"], "orders");
    assert_eq!(t[0]["labels"]["job"], "docker");
    assert_eq!(t[0]["discoveredLabels"]["__meta_docker_container_name"], "/shop-orders-1");
    assert_eq!(t[0]["discoveredLabels"]["__meta_docker_network_name"], "shop_default");
    assert_eq!(t[0]["discoveredLabels"]["__meta_docker_port_private"], metrics_port.to_string());
    wait_for("the scraped sample", || {
        let (_, q) = common::get_json(&format!(
            "{}/api/v1/query?query=shop_orders_total%7Bjob%3D%22docker%22%2Cservice%3D%22orders%22%7D",
            vigil.base
        ));
        q["data"]["result"][0]["value"][1] == "42"
    });

    // The daemon fails: the failure is counted and the target stays.
    daemon.lock().unwrap().refuse = Some(StatusCode::INTERNAL_SERVER_ERROR);
    wait_for("a failed refresh", || counter(&vigil.base, "vigil_sd_docker_refresh_failures_total") >= 1.0);
    assert!(counter(&vigil.base, "vigil_sd_docker_refreshes_total") >= 2.0);
    assert_eq!(targets(&vigil.base).len(), 1, "targets kept while the daemon fails");

    // Back, with the container gone: so is the target.
    {
        let mut d = daemon.lock().unwrap();
        d.refuse = None;
        d.containers = json!([]);
    }
    wait_for("the target to go", || targets(&vigil.base).is_empty());
}

#[test]
fn check_config_accepts_docker_sd_configs_and_names_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, text: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out =
            Command::new(env!("CARGO_BIN_EXE_vigil")).args(["check", "config"]).arg(&file).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (ok, out) = check(
        "good.yml",
        "scrape_configs:\n  - job_name: containers\n    docker_sd_configs:\n      - host: unix:///var/run/docker.sock\n        \
         port: 9100\n        host_networking_host: 10.0.0.1\n        match_first_network: false\n        \
         refresh_interval: 30s\n        filters:\n          - name: label\n            values: [prometheus.io/scrape=true]\n      \
         - host: https://docker.example.org:2376\n        tls_config: {insecure_skip_verify: true}\n        \
         basic_auth: {username: u, password: p}\n",
    );
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");

    let (ok, out) = check(
        "typo.yml",
        "scrape_configs:\n  - job_name: containers\n    docker_sd_configs:\n      - host: unix:///var/run/docker.sock\n        refresh_intervall: 30s\n",
    );
    assert!(!ok, "{out}");
    assert!(out.contains("refresh_intervall") && out.contains("typo.yml") && out.contains("line 5"), "{out}");

    let (ok, out) = check(
        "scheme.yml",
        "scrape_configs:\n  - job_name: containers\n    docker_sd_configs:\n      - host: ssh://docker.example.org\n",
    );
    assert!(!ok && out.contains("ssh"), "{out}");
    let (ok, out) = check(
        "nohost.yml",
        "scrape_configs:\n  - job_name: containers\n    docker_sd_configs:\n      - port: 80\n",
    );
    assert!(!ok && out.contains("host"), "{out}");
}
