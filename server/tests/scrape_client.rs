//! Scrape client settings and limits through the real binary: targets behind basic auth,
//! bearer tokens and TLS (a CA, a client certificate, `insecure_skip_verify`, all with
//! certificates made here by rcgen, and `server_name` for a certificate not made out to the
//! target's address), and jobs whose `*_limit`s their targets exceed. Every
//! job's health and error are read back from `/api/v1/targets`, and the configuration shown by
//! `/api/v1/status/config` must not contain the secrets.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

const METRICS: &str = "# TYPE ok gauge\nok 1\n";

fn auth_route(
    expected: &'static str,
) -> impl Fn(HeaderMap) -> std::future::Ready<(StatusCode, &'static str)> + Clone {
    move |headers: HeaderMap| {
        let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected);
        std::future::ready(if ok { (StatusCode::OK, METRICS) } else { (StatusCode::UNAUTHORIZED, "no\n") })
    }
}

/// A plain HTTP exporter with routes behind credentials and routes that break limits.
async fn serve_http() -> SocketAddr {
    let many: String = (0..20).map(|i| format!("many{{i=\"{i}\"}} {i}\n")).collect();
    let big: String = (0..200).map(|i| format!("big_metric_with_a_long_name{{i=\"{i}\"}} {i}\n")).collect();
    let app = axum::Router::new()
        // "u:hunter2" and "u:wrong" in base64.
        .route("/basic", get(auth_route("Basic dTpodW50ZXIy")))
        .route("/bearer", get(auth_route("Bearer tok3n")))
        .route("/custom", get(auth_route("Token tok3n")))
        .route("/many", get(move || std::future::ready(many.clone())))
        .route("/big", get(move || std::future::ready(big.clone())))
        .route("/labels", get(|| async { "wide{a=\"1\",b=\"2\",c=\"3\"} 1\n" }))
        .route("/longname", get(|| async { "m{a_very_long_label_name=\"1\"} 1\n" }))
        .route("/longvalue", get(|| async { "m{a=\"a very long label value indeed\"} 1\n" }))
        .route("/redirect", get(|| async { axum::response::Redirect::temporary("/bearer") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A TLS exporter answering every request with [`METRICS`], with or without requiring a
/// client certificate signed by `client_ca`.
async fn serve_tls(config: rustls::ServerConfig) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{METRICS}",
                    METRICS.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

struct Pki {
    ca_pem: String,
    server_cert: rustls::pki_types::CertificateDer<'static>,
    server_key: Vec<u8>,
    /// A certificate for `exporter.internal` only, not for the address it is served on.
    named_cert: rustls::pki_types::CertificateDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Vigil test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let named = rcgen::CertificateParams::new(vec!["exporter.internal".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["vigil".to_string()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_cert: server.der().clone(),
        named_cert: named.der().clone(),
        server_key: server_key.serialize_der(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

fn server_config(pki: &Pki, require_client_cert: bool, named: bool) -> rustls::ServerConfig {
    server_config_versions(pki, require_client_cert, named, rustls::DEFAULT_VERSIONS)
}

fn server_config_versions(
    pki: &Pki,
    require_client_cert: bool,
    named: bool,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(pki.server_key.clone()).unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let cert = if named { pki.named_cert.clone() } else { pki.server_cert.clone() };
    builder.with_single_cert(vec![cert], key).unwrap()
}

fn get_json(rt: &tokio::runtime::Runtime, url: &str) -> Option<serde_json::Value> {
    let text = rt.block_on(async { reqwest::get(url).await.ok()?.text().await.ok() });
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// job → (health, lastError) of its one target.
fn health(rt: &tokio::runtime::Runtime, base: &str) -> BTreeMap<String, (String, String)> {
    let Some(v) = get_json(rt, &format!("{base}/api/v1/targets")) else { return BTreeMap::new() };
    v["data"]["activeTargets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
                    (s(&t["labels"]["job"]), (s(&t["health"]), s(&t["lastError"])))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn auth_tls_and_limits() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pki = pki();
    let (http, tls, mtls, named, named_mtls, tls12) = rt.block_on(async {
        (
            serve_http().await,
            serve_tls(server_config(&pki, false, false)).await,
            serve_tls(server_config(&pki, true, false)).await,
            serve_tls(server_config(&pki, false, true)).await,
            serve_tls(server_config(&pki, true, true)).await,
            serve_tls(server_config_versions(&pki, false, false, &[&rustls::version::TLS12])).await,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("password"), "hunter2\n").unwrap();
    std::fs::write(d.join("token"), "tok3n\n").unwrap();
    std::fs::write(d.join("ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(d.join("client.pem"), &pki.client_cert_pem).unwrap();
    std::fs::write(d.join("client.key"), &pki.client_key_pem).unwrap();

    let job_at = |name: &str, addr: &str, path: &str, extra: &str| {
        format!("  - job_name: {name}\n    metrics_path: {path}\n    static_configs: [{{targets: ['{addr}']}}]\n{extra}")
    };
    let job =
        |name: &str, addr: SocketAddr, path: &str, extra: &str| job_at(name, &addr.to_string(), path, extra);
    let https = "    scheme: https\n";
    let jobs = [
        job("basic", http, "/basic", "    basic_auth: {username: u, password: hunter2}\n"),
        job("basic_file", http, "/basic", "    basic_auth: {username: u, password_file: password}\n"),
        job("basic_wrong", http, "/basic", "    basic_auth: {username: u, password: wrong}\n"),
        job("bearer_file", http, "/bearer", "    authorization: {credentials_file: token}\n"),
        job("bearer_token_file", http, "/bearer", "    bearer_token_file: token\n    enable_compression: false\n"),
        // The exporter doubles as the proxy: it answers the absolute-form request by its path.
        job_at(
            "proxied",
            "exporter.invalid:9",
            "/bearer",
            &format!("    authorization: {{credentials: tok3n}}\n    proxy_url: http://u:proxypass@{http}\n"),
        ),
        job("missing_file", http, "/bearer", "    authorization: {credentials_file: nothing-here}\n"),
        job("missing_ca", tls, "/metrics", &format!("{https}    tls_config: {{ca_file: no-ca.pem}}\n")),
        job("custom_type", http, "/custom", "    authorization: {type: Token, credentials: tok3n}\n"),
        job("redirect", http, "/redirect", "    authorization: {credentials: tok3n}\n"),
        job(
            "no_redirect",
            http,
            "/redirect",
            "    authorization: {credentials: tok3n}\n    follow_redirects: false\n",
        ),
        job("body_limit", http, "/big", "    body_size_limit: 1KB\n"),
        job("sample_limit", http, "/many", "    sample_limit: 10\n"),
        job("sample_limit_ok", http, "/many", "    sample_limit: 20\n"),
        job("label_limit", http, "/labels", "    label_limit: 5\n"),
        job("name_length", http, "/longname", "    label_name_length_limit: 10\n"),
        job("value_length", http, "/longvalue", "    label_value_length_limit: 10\n"),
        job("tls_ca", tls, "/metrics", &format!("{https}    tls_config: {{ca_file: ca.pem}}\n")),
        job("tls_untrusted", tls, "/metrics", https),
        job(
            "tls13_only",
            tls,
            "/metrics",
            &format!("{https}    tls_config: {{ca_file: ca.pem, min_version: TLS13}}\n"),
        ),
        job("tls12_server", tls12, "/metrics", &format!("{https}    tls_config: {{ca_file: ca.pem}}\n")),
        job(
            "tls13_vs_tls12_server",
            tls12,
            "/metrics",
            &format!("{https}    tls_config: {{ca_file: ca.pem, min_version: TLS13}}\n"),
        ),
        job(
            "tls12_max_named",
            named,
            "/metrics",
            &format!("{https}    tls_config: {{ca_file: ca.pem, server_name: exporter.internal, max_version: TLS12}}\n"),
        ),
        job(
            "tls_insecure",
            tls,
            "/metrics",
            &format!("{https}    tls_config: {{insecure_skip_verify: true}}\n"),
        ),
        job(
            "mtls",
            mtls,
            "/metrics",
            &format!(
                "{https}    tls_config: {{ca_file: ca.pem, cert_file: client.pem, key_file: client.key}}\n"
            ),
        ),
        job(
            "mtls_inline",
            mtls,
            "/metrics",
            &format!(
                "{https}    tls_config:\n      ca: {:?}\n      cert: {:?}\n      key: {:?}\n",
                pki.ca_pem, pki.client_cert_pem, pki.client_key_pem
            ),
        ),
        job("mtls_no_cert", mtls, "/metrics", &format!("{https}    tls_config: {{ca_file: ca.pem}}\n")),
        job("wrong_name", named, "/metrics", &format!("{https}    tls_config: {{ca_file: ca.pem}}\n")),
        job(
            "server_name",
            named,
            "/metrics",
            &format!("{https}    tls_config: {{ca_file: ca.pem, server_name: exporter.internal}}\n"),
        ),
        job(
            "server_name_mtls",
            named_mtls,
            "/metrics",
            &format!("{https}    tls_config: {{ca_file: ca.pem, server_name: exporter.internal, cert_file: client.pem, key_file: client.key}}\n"),
        ),
        job(
            "server_name_other",
            named,
            "/metrics",
            &format!("{https}    tls_config: {{ca_file: ca.pem, server_name: other.internal}}\n"),
        ),
    ];
    let config = d.join("vigil.yml");
    std::fs::write(
        &config,
        format!("global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n{}", jobs.concat()),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", d.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let all = loop {
        let h = health(&rt, &base);
        if h.len() == jobs.len() && h.values().all(|(health, _)| health != "unknown") {
            break h;
        }
        assert!(Instant::now() < deadline, "timed out waiting for every target to be scraped: {h:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let expect = [
        ("basic", "up", ""),
        ("basic_file", "up", ""),
        ("basic_wrong", "down", "401"),
        ("bearer_file", "up", ""),
        ("bearer_token_file", "up", ""),
        ("proxied", "up", ""),
        ("missing_file", "down", "cannot read authorization credentials_file"),
        ("missing_ca", "down", "cannot read tls_config ca_file"),
        ("custom_type", "up", ""),
        ("redirect", "up", ""),
        ("no_redirect", "down", "307"),
        ("body_limit", "down", "body size limit exceeded (body_size_limit: 1KB)"),
        ("sample_limit", "down", "sample limit exceeded (sample_limit: 10)"),
        ("sample_limit_ok", "up", ""),
        ("label_limit", "down", "label_limit exceeded (metric: wide, number of labels: 6, limit: 5)"),
        (
            "name_length",
            "down",
            "label_name_length_limit exceeded (metric: m, label name: a_very_long_label_name",
        ),
        (
            "value_length",
            "down",
            "label_value_length_limit exceeded (metric: m, label name: a, length: 30, limit: 10)",
        ),
        ("tls_ca", "up", ""),
        ("tls_untrusted", "down", "certificate"),
        ("tls13_only", "up", ""),
        ("tls12_max_named", "up", ""),
        ("tls12_server", "up", ""),
        ("tls13_vs_tls12_server", "down", ""),
        ("tls_insecure", "up", ""),
        ("mtls", "up", ""),
        ("mtls_inline", "up", ""),
        ("mtls_no_cert", "down", ""),
        ("wrong_name", "down", "certificate"),
        ("server_name", "up", ""),
        ("server_name_mtls", "up", ""),
        ("server_name_other", "down", "certificate"),
    ];
    for (job, want_health, want_error) in expect {
        let (health, error) = &all[job];
        assert_eq!(health, want_health, "{job}: {error}");
        assert!(error.contains(want_error), "{job}: {error:?} should mention {want_error:?}");
    }

    // The missing CA file appears: the job's target recovers without a reload.
    std::fs::write(d.join("no-ca.pem"), &pki.ca_pem).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while health(&rt, &base)["missing_ca"].0 != "up" {
        assert!(Instant::now() < deadline, "missing_ca did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn secrets_stay_out_of_the_status_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vigil.yml");
    std::fs::write(
        &config,
        "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: hunter2}\n    static_configs: [{targets: ['127.0.0.1:1']}]\n  - job_name: b\n    authorization: {credentials: s3cr3t-token}\n    proxy_url: http://u:pr0xypass@127.0.0.1:1\n    static_configs: [{targets: ['127.0.0.1:1']}]\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = format!("http://127.0.0.1:{port}/api/v1/status/config");
    let deadline = Instant::now() + Duration::from_secs(30);
    let yaml = loop {
        if let Some(v) = get_json(&rt, &url) {
            break v["data"]["yaml"].as_str().unwrap_or_default().to_string();
        }
        assert!(Instant::now() < deadline, "Vigil did not answer");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Let a few scrapes fail and log at debug level before reading the logs.
    std::thread::sleep(Duration::from_secs(2));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let logs = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(yaml.contains("<secret>"), "{yaml}");
    for secret in ["hunter2", "s3cr3t-token", "pr0xypass"] {
        assert!(!yaml.contains(secret), "{yaml}");
        assert!(!logs.contains(secret), "{logs}");
    }
}
