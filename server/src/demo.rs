//! `vigil demo`: Vigil scraping three small instrumented services, with traffic, in one process.
//!
//! This module owns the demo's wiring; [`services`] owns the services (image-gallery, iotd
//! shaped like Spring Boot, and three access-log replicas), each an axum router with its own
//! prometheus-client registry on a free loopback port, and [`traffic`] owns the bounded request
//! loops that drive them. [`run`] starts the services and their traffic, writes a
//! `prometheus.yml` and the access-log replicas' file-SD target file under
//! `<storage.tsdb.path>/demo/`, and then runs the ordinary server ([`crate::run`]) with that
//! configuration, so the demo exercises exactly the code a user's configuration would.
//! [`IMAGE_GALLERY_DASHBOARD`] is the dashboard examples/compose provisions, compiled in so the
//! dashboards store can provision it too. [`serve_one`] runs a single service, which is how the
//! containers of examples/compose use the same code.

pub mod services;
pub mod traffic;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::{DemoService, Flags};
use crate::config::{Config, ConfigError};
use crate::RunError;
use services::{AccessLog, Gallery, Iotd, Running};
use traffic::{Kind, TrafficError};

/// The "Image gallery" dashboard, Grafana classic JSON (uid `image-gallery`).
pub const IMAGE_GALLERY_DASHBOARD: &str =
    include_str!("../../examples/compose/provisioning/dashboards/image-gallery.json");
/// Where the dashboard opens, as in Grafana (`/d/<uid>`).
pub const DASHBOARD_PATH: &str = "/d/image-gallery";
pub const ACCESS_LOG_REPLICAS: usize = 3;
/// Short enough that the demo's graphs move and a stopped replica goes stale within seconds.
const SCRAPE_INTERVAL: &str = "5s";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot listen for the demo's {service} on {addr}: {source}")]
    Listen { service: String, addr: SocketAddr, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("the demo needs a UTF-8 storage path to name it in its configuration, not {0:?}")]
    NonUtf8Path(PathBuf),
    #[error("the demo's generated configuration is invalid: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Traffic(#[from] TrafficError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("demo service failed: {0}")]
    Serve(std::io::Error),
}

/// The running demo services and their traffic.
pub struct Demo {
    pub gallery: Running,
    pub iotd: Running,
    pub access_logs: Vec<Running>,
    stop_traffic: watch::Sender<bool>,
}

impl Demo {
    /// Starts the services on free loopback ports, and traffic to them.
    pub async fn start() -> Result<Demo, DemoError> {
        let gallery = Gallery::new();
        let iotd = Iotd::new();
        let gallery_run = services::serve_gallery(bind("image-gallery", loopback()).await?, &gallery)
            .map_err(listen_error("image-gallery", loopback()))?;
        let iotd_run = services::serve_iotd(bind("iotd", loopback()).await?, &iotd)
            .map_err(listen_error("iotd", loopback()))?;
        let mut access_logs = Vec::new();
        for n in 1..=ACCESS_LOG_REPLICAS {
            let name = format!("access-log-{n}");
            let listener = bind(&name, loopback()).await?;
            let running = services::serve_access_log(name.clone(), listener, &AccessLog::new())
                .map_err(listen_error(&name, loopback()))?;
            access_logs.push(running);
        }
        let (stop_traffic, stop) = watch::channel(false);
        traffic::start(Kind::Gallery, vec![gallery_run.addr], Some(gallery.tasks.clone()), stop.clone())?;
        traffic::start(Kind::Iotd, vec![iotd_run.addr], None, stop.clone())?;
        traffic::start(Kind::AccessLog, access_logs.iter().map(|r| r.addr).collect(), None, stop)?;
        Ok(Demo { gallery: gallery_run, iotd: iotd_run, access_logs, stop_traffic })
    }

    /// Stops traffic, then every service.
    pub async fn stop(self) {
        self.stop_traffic.send_replace(true);
        let all = [self.gallery, self.iotd].into_iter().chain(self.access_logs);
        for s in all {
            s.stop();
            let name = s.name.clone();
            if let Err(e) = s.stopped().await {
                tracing::warn!(service = %name, error = %e, "demo service did not stop cleanly");
            }
        }
    }

    /// Writes the configuration and target file into `dir`; returns the configuration's path.
    pub fn write_config(&self, dir: &Path) -> Result<PathBuf, DemoError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| DemoError::Write { path: dir.to_path_buf(), source })?;
        let sd = dir.join("access-log.json");
        let sd_text = sd.to_str().ok_or_else(|| DemoError::NonUtf8Path(sd.clone()))?;
        let replicas: Vec<SocketAddr> = self.access_logs.iter().map(|r| r.addr).collect();
        write_atomically(&sd, &file_sd_json(&replicas))?;
        let config = dir.join("prometheus.yml");
        write_atomically(&config, &config_yaml(self.gallery.addr, self.iotd.addr, sd_text))?;
        Ok(config)
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

async fn bind(service: &str, addr: SocketAddr) -> Result<TcpListener, DemoError> {
    TcpListener::bind(addr).await.map_err(listen_error(service, addr))
}

fn listen_error(service: &str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Listen { service: service.to_string(), addr, source }
}

/// The demo's `prometheus.yml`, in the shape of examples/compose/prometheus.yml with file
/// discovery standing in for DNS.
pub fn config_yaml(gallery: SocketAddr, iotd: SocketAddr, sd_file: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar, whatever the path contains.
    let sd_file = serde_json::Value::from(sd_file);
    format!(
        "# Written by `vigil demo` at each start; edits are lost on the next start.\n\
         global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: 4s\n\
         scrape_configs:\n\
         \x20 - job_name: image-gallery\n    static_configs:\n      - targets: ['{gallery}']\n\
         \x20 - job_name: iotd\n    metrics_path: /actuator/prometheus\n    static_configs:\n      - targets: ['{iotd}']\n\
         \x20 - job_name: access-log\n    file_sd_configs:\n      - files: [{sd_file}]\n"
    )
}

/// One target group per replica, so each carries its `replica` label.
pub fn file_sd_json(replicas: &[SocketAddr]) -> String {
    let groups: Vec<serde_json::Value> = replicas
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            serde_json::json!({"targets": [addr.to_string()], "labels": {"replica": (i + 1).to_string()}})
        })
        .collect();
    serde_json::Value::from(groups).to_string()
}

/// Writes through a temporary file and a rename, so discovery never reads half a file.
fn write_atomically(path: &Path, text: &str) -> Result<(), DemoError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| DemoError::Write { path: path.to_path_buf(), source })
}

/// Runs the demo until SIGINT/SIGTERM: services, traffic, and Vigil with the generated
/// configuration. `flags.config_file` is replaced by the generated file (so reloads work).
pub async fn run(mut flags: Flags, open: bool) -> Result<(), DemoError> {
    let demo = Demo::start().await?;
    let config_path = demo.write_config(&flags.storage_path.join("demo"))?;
    let config = Config::load(&config_path)?;
    flags.config_file = Some(config_path.clone());
    let url = format!("http://{}{DASHBOARD_PATH}", flags.listen_address);
    println!("Vigil demo: {url}");
    println!("  configuration: {}", config_path.display());
    println!("  image-gallery: http://{}/metrics", demo.gallery.addr);
    println!("  iotd:          http://{}/actuator/prometheus", demo.iotd.addr);
    for r in &demo.access_logs {
        println!("  {}:  http://{}/metrics   stop it: curl -X POST http://{}/-/stop", r.name, r.addr, r.addr);
    }
    if open {
        tokio::spawn(open_when_listening(flags.listen_address, url));
    }
    let served = crate::run(flags, config).await;
    demo.stop().await;
    Ok(served?)
}

/// Waits (up to a minute) until Vigil accepts connections, then asks the desktop to open `url`.
async fn open_when_listening(addr: SocketAddr, url: String) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            let target = url.clone();
            let opened = tokio::task::spawn_blocking(move || {
                std::process::Command::new("xdg-open")
                    .arg(target)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .status()
            })
            .await;
            match opened {
                Ok(Ok(s)) if s.success() => {}
                Ok(Ok(s)) => tracing::warn!(%url, status = %s, "xdg-open failed; open the URL yourself"),
                Ok(Err(e)) => tracing::warn!(%url, error = %e, "cannot run xdg-open; open the URL yourself"),
                Err(e) => tracing::warn!(%url, error = %e, "opening the browser panicked"),
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::warn!(%url, "Vigil did not start listening within a minute; not opening the browser");
}

/// `vigil demo --serve=SERVICE`: one service on `listen` with its own traffic on loopback, until
/// SIGINT/SIGTERM (or, for access-log, `POST /-/stop`).
pub async fn serve_one(service: DemoService, listen: SocketAddr) -> Result<(), DemoError> {
    let name = match service {
        DemoService::ImageGallery => "image-gallery",
        DemoService::Iotd => "iotd",
        DemoService::AccessLog => "access-log",
    };
    let listener = bind(name, listen).await?;
    let local = listener.local_addr().map_err(listen_error(name, listen))?;
    // Traffic stays on this host: it reaches the service through loopback whatever address the
    // service listens on.
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()));
    let (stop_traffic, stop) = watch::channel(false);
    let running = match service {
        DemoService::ImageGallery => {
            let g = Gallery::new();
            traffic::start(Kind::Gallery, vec![target], Some(g.tasks.clone()), stop)?;
            services::serve_gallery(listener, &g)
        }
        DemoService::Iotd => {
            traffic::start(Kind::Iotd, vec![target], None, stop)?;
            services::serve_iotd(listener, &Iotd::new())
        }
        DemoService::AccessLog => {
            traffic::start(Kind::AccessLog, vec![target], None, stop)?;
            services::serve_access_log(name.to_string(), listener, &AccessLog::new())
        }
    }
    .map_err(listen_error(name, listen))?;
    tracing::info!(service = name, address = %local, "demo service listening");
    let stopper = running.stop_handle();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        stopper.send_replace(true);
    });
    let result = running.stopped().await;
    stop_traffic.send_replace(true);
    result.map_err(DemoError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_config_is_accepted_with_the_three_jobs() {
        let a = SocketAddr::from(([127, 0, 0, 1], 1001));
        let b = SocketAddr::from(([127, 0, 0, 1], 1002));
        let text = config_yaml(a, b, "/tmp/it's \"quoted\"/access-log.json");
        let config = Config::parse(&text, Path::new("demo.yml")).unwrap();
        let jobs: Vec<&str> = config.scrape_configs.iter().map(|s| s.job_name.as_str()).collect();
        assert_eq!(jobs, ["image-gallery", "iotd", "access-log"]);
        assert_eq!(config.scrape_configs[1].metrics_path, "/actuator/prometheus");
        assert_eq!(
            config.scrape_configs[2].file_sd_configs[0].files,
            ["/tmp/it's \"quoted\"/access-log.json"]
        );
    }

    #[test]
    fn file_sd_lists_each_replica_with_its_label() {
        let addrs: Vec<SocketAddr> = (1..=3).map(|p| SocketAddr::from(([127, 0, 0, 1], 2000 + p))).collect();
        let v: serde_json::Value = serde_json::from_str(&file_sd_json(&addrs)).unwrap();
        assert_eq!(v[2]["targets"][0], "127.0.0.1:2003");
        assert_eq!(v[2]["labels"]["replica"], "3");
    }

    /// The dashboards store reads dashboards with the UI crate's model; the demo's must pass it.
    #[test]
    fn dashboard_is_compiled_in_and_the_store_accepts_it() {
        let d = app::dashboard::parse_dashboard(IMAGE_GALLERY_DASHBOARD).unwrap();
        assert_eq!(
            (d.uid.as_str(), d.title.as_str(), d.schema_version),
            ("image-gallery", "Image gallery", 39)
        );
        assert_eq!(DASHBOARD_PATH, format!("/d/{}", d.uid));
        assert!(d.all_panels().count() >= 8);
    }
}
