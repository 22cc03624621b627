//! Vigil's server: everything behind the `vigil` binary.
//!
//! Data flows one way: discovery → scrape → tsdb ← promql ← api / live ← app. So far the crate
//! holds the command line ([`cli`]), the configuration file ([`config`]), scraping of static
//! targets ([`scrape`]), the time-series database ([`tsdb`]), Vigil's own metrics
//! ([`telemetry`]) and the HTTP front ([`web`]); [`run`] wires them into a running server and
//! `main.rs` only turns its outcome into an exit code.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dashboards;
pub mod datasources;
pub mod demo;
pub mod discovery;
pub mod embed;
pub mod live;
pub mod promql;
pub mod provisioning;
pub mod render;
pub mod scrape;
pub mod telemetry;
pub mod tsdb;
pub mod web;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use app::model::StatusInfo;

use crate::cli::Flags;
use crate::config::Config;
use crate::discovery::dns::DnsSd;
use crate::discovery::docker::DockerSd;
use crate::discovery::FileSd;
use crate::scrape::manager::{ScrapeError, ScrapeManager};
use crate::scrape::target::{targets_from_config, TargetError, TargetSet};
use crate::telemetry::{Telemetry, BUILD};
use crate::tsdb::db::{Db, DbError, DbOptions};
use crate::web::{Readiness, UiBackend, WebState};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot create storage directory {path}: {source}")]
    Storage { path: String, source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot open the time-series database: {0}")]
    Db(#[from] DbError),
    #[error("opening the time-series database panicked")]
    DbPanicked,
    #[error(transparent)]
    Scrape(#[from] ScrapeError),
    #[error("cannot open the dashboard store: {0}")]
    Dashboards(#[from] dashboards::StoreError),
    #[error("invalid scrape target: {0}")]
    Target(#[from] TargetError),
}

/// The running parts of Vigil that HTTP handlers and the UI reach: fixed facts from start-up,
/// and the database and scrape manager, which appear once storage has opened.
pub struct Services {
    /// The configuration in force; replaced by a successful reload.
    pub config: RwLock<Arc<Config>>,
    pub config_file: Option<PathBuf>,
    /// Start-up facts; its `config_yaml` is the configuration at start, see [`Services::status`].
    status: StatusInfo,
    pub enable_lifecycle: bool,
    /// `--web.enable-admin-api`: the snapshot endpoint answers.
    pub enable_admin_api: bool,
    pub db: Arc<OnceLock<Arc<Db>>>,
    pub scrape: OnceLock<Arc<ScrapeManager>>,
    pub telemetry: Telemetry,
    last_reload_ms: AtomicI64,
    /// Notified by `POST /-/quit`.
    pub quit: tokio::sync::Notify,
    /// File-based discovery state (last good groups per file).
    pub file_sd: parking_lot::Mutex<FileSd>,
    /// DNS discovery state (last good groups per name), filled by [`discover_dns_periodically`].
    pub dns_sd: parking_lot::Mutex<DnsSd>,
    /// Docker discovery state (last good groups per `docker_sd_configs` entry), filled by
    /// [`discover_docker_periodically`].
    pub docker_sd: parking_lot::Mutex<DockerSd>,
    pub engine: promql::Engine,
    /// Bounds concurrent queries (`--query.max-concurrency`).
    pub query_slots: tokio::sync::Semaphore,
    /// Stored and provisioned dashboards; set at start, before the server listens.
    pub dashboards: OnceLock<Arc<dashboards::DashboardStore>>,
    /// Dashboard providers and datasources from `--provisioning.dir`.
    pub provisioning: provisioning::Provisioning,
    /// `--web.listen-address`: writes without configured editors are open only on loopback.
    pub listen_address: std::net::SocketAddr,
    /// The secret behind signed embed links, in `<storage.tsdb.path>/embed.key`.
    pub embed: embed::EmbedKeys,
    /// Websocket streams of new points to live dashboards.
    pub live: Arc<live::Live>,
}

/// Why a configuration reload was refused; the old configuration keeps running.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Target(#[from] TargetError),
}

impl Services {
    /// Status with the configuration currently in force.
    pub fn status(&self) -> StatusInfo {
        let mut s = self.status.clone();
        s.config_yaml = self.config.read().to_yaml();
        s
    }

    /// Problems with the provisioning files (broken YAML, dashboard files that do not load), one
    /// line each; the files without problems are in use.
    pub fn provisioning_problems(&self) -> Vec<String> {
        self.provisioning.problems()
    }

    /// Checks a signed embed link's token (`/d-solo/…?token=`): the dashboard, panel and fixed
    /// variables it grants, or why it grants nothing (forged, expired, malformed).
    pub fn verify_embed_token(&self, token: &str) -> Result<embed::EmbedScope, embed::EmbedError> {
        self.embed.verify(token)
    }

    /// Provisioned datasources (`jsonData.timeInterval` is the `$__rate_interval` floor).
    pub fn datasources(&self) -> Vec<provisioning::Datasource> {
        self.provisioning.datasources()
    }

    /// External Prometheus datasources whose references import keeps.
    pub fn known_datasources(&self) -> Vec<dashboards::import::KnownDatasource> {
        self.provisioning.known_datasources()
    }

    /// When the configuration in force was loaded, ms since the epoch.
    pub fn last_reload_ms(&self) -> i64 {
        self.last_reload_ms.load(Ordering::Relaxed)
    }

    /// Re-reads the configuration file and applies it: new targets start, removed ones stop
    /// (their series go stale), unchanged ones keep scraping. A bad file changes nothing but
    /// `vigil_config_last_reload_successful`, which drops to 0.
    pub fn reload(&self) -> Result<(), ReloadError> {
        let result = self.try_reload();
        match &result {
            Ok(()) => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                self.last_reload_ms.store(now.as_millis() as i64, Ordering::Relaxed);
                self.telemetry.config_reload_ok.set(1);
                self.telemetry.config_reload_time.set(now.as_secs_f64());
                tracing::info!("configuration reloaded");
            }
            Err(e) => {
                self.telemetry.config_reload_ok.set(0);
                tracing::error!(error = %e, "configuration reload failed; keeping the previous configuration");
            }
        }
        result
    }

    fn try_reload(&self) -> Result<(), ReloadError> {
        let Some(path) = &self.config_file else {
            // The built-in configuration cannot change.
            return Ok(());
        };
        let config = Arc::new(Config::load(path)?);
        let targets = self.targets_for(&config)?;
        if let Some(scrape) = self.scrape.get() {
            scrape.apply(targets);
        }
        if let Some(db) = self.db.get() {
            db.head().set_out_of_order_window(config.out_of_order_window_ms());
        }
        *self.config.write() = config;
        // Grafana re-reads provisioning on its reload API; changed dashboard files need none.
        self.provisioning.reload_config();
        if let Some(store) = self.dashboards.get() {
            self.provisioning.sync_dashboards(store, true);
        }
        Ok(())
    }

    /// The targets of `config`: static ones and those its discovery mechanisms find now.
    pub fn targets_for(&self, config: &Config) -> Result<TargetSet, TargetError> {
        let mut discovered = self.file_sd.lock().refresh(config);
        discovery::merge(&mut discovered, self.dns_sd.lock().groups(config));
        discovery::merge(&mut discovered, self.docker_sd.lock().groups(config));
        targets_from_config(config, &discovered)
    }

    /// Re-runs discovery for the configuration in force and applies the result (unchanged
    /// targets keep their loops).
    pub fn refresh_targets(&self) {
        let config = self.config.read().clone();
        match self.targets_for(&config) {
            Ok(targets) => {
                if let Some(scrape) = self.scrape.get() {
                    scrape.apply(targets);
                }
            }
            Err(e) => tracing::warn!(error = %e, "discovered targets are invalid; keeping the current ones"),
        }
    }
}

/// Everything the HTTP router needs, built from flags and configuration.
pub fn build_state(flags: &Flags, config: Arc<Config>) -> WebState {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let status = StatusInfo {
        version: BUILD.version.to_string(),
        revision: BUILD.revision.to_string(),
        rustc: BUILD.rustc.to_string(),
        start_time_ms: i64::try_from(now.as_millis()).unwrap_or(i64::MAX),
        storage_path: flags.storage_path.display().to_string(),
        listen_address: flags.listen_address.to_string(),
        config_file: flags.config_file.as_ref().map(|p| p.display().to_string()),
        config_yaml: config.to_yaml(),
        flags: flags.describe(),
    };
    let db = Arc::new(OnceLock::new());
    let telemetry = Telemetry::new(now.as_secs_f64(), db.clone());
    let services = Arc::new(Services {
        config: RwLock::new(config),
        config_file: flags.config_file.clone(),
        status,
        enable_lifecycle: flags.enable_lifecycle,
        enable_admin_api: flags.enable_admin_api,
        db,
        scrape: OnceLock::new(),
        telemetry: telemetry.clone(),
        last_reload_ms: AtomicI64::new(now.as_millis() as i64),
        quit: tokio::sync::Notify::new(),
        file_sd: parking_lot::Mutex::new(FileSd::default()),
        dns_sd: parking_lot::Mutex::new(DnsSd::default()),
        docker_sd: parking_lot::Mutex::new(DockerSd::default()),
        engine: promql::Engine::new(promql::EngineOptions {
            lookback_delta_ms: flags.query_lookback_delta.0.as_millis() as i64,
            max_samples: flags.query_max_samples,
            timeout: flags.query_timeout.0,
            ..promql::EngineOptions::default()
        }),
        query_slots: tokio::sync::Semaphore::new(flags.query_max_concurrency.max(1)),
        dashboards: OnceLock::new(),
        provisioning: provisioning::Provisioning::load(&flags.provisioning_dir),
        listen_address: flags.listen_address,
        embed: embed::EmbedKeys::new(flags.storage_path.join("embed.key")),
        live: Arc::new(live::Live::default()),
    });
    WebState {
        leptos_options: web::leptos_options(flags.listen_address),
        telemetry,
        readiness: Readiness::default(),
        backend: Arc::new(UiBackend(services.clone())),
        services,
    }
}

/// Runs Vigil until SIGINT or SIGTERM.
pub async fn run(flags: Flags, config: Config) -> Result<(), RunError> {
    std::fs::create_dir_all(&flags.storage_path)
        .map_err(|source| RunError::Storage { path: flags.storage_path.display().to_string(), source })?;
    let config = Arc::new(config);
    let state = build_state(&flags, config.clone());
    let services = state.services.clone();
    let readiness = state.readiness.clone();
    let dashboard_dir = flags.storage_path.join("dashboards");
    let (store, _problems) = dashboards::DashboardStore::open(&dashboard_dir)?;
    dashboards::provision_builtins(&store);
    services.provisioning.sync_dashboards(&store, true);
    let store = Arc::new(store);
    let _ = services.dashboards.set(store.clone());
    tokio::spawn(sync_provisioned_dashboards(services.clone(), store));
    let listener = tokio::net::TcpListener::bind(flags.listen_address)
        .await
        .map_err(|source| RunError::Listen { addr: flags.listen_address, source })?;
    let local =
        listener.local_addr().map_err(|source| RunError::Listen { addr: flags.listen_address, source })?;
    let router = web::router(state);
    tracing::info!(address = %local, "Vigil is listening");
    // Serve (health, UI, and /-/ready answering 503) while the WAL replays.
    let quit_services = services.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = shutdown_signal() => {}
                    _ = quit_services.quit.notified() => tracing::info!("shutting down on POST /-/quit"),
                }
            })
            .await
    });

    let dir = flags.storage_path.clone();
    let mut opts = DbOptions {
        retention_ms: Some(flags.retention_time.0.as_millis() as i64).filter(|&ms| ms > 0),
        retention_bytes: Some(flags.retention_size).filter(|&b| b > 0),
        ..DbOptions::default()
    };
    opts.head.out_of_order_window_ms = config.out_of_order_window_ms();
    let db = tokio::task::spawn_blocking(move || Db::open(&dir, opts))
        .await
        .map_err(|_| RunError::DbPanicked)??;
    let report = db.open_report();
    tracing::info!(
        series = db.head().series_count(),
        samples = report.replay.samples,
        corruptions = report.replay.corruptions.len(),
        "time-series database open"
    );
    let db = Arc::new(db);
    db.head().set_commit_hook(services.live.commit_hook());
    let _ = services.db.set(db.clone());
    let scrape = Arc::new(ScrapeManager::new(db.clone())?);
    scrape.apply(services.targets_for(&config)?);
    let _ = services.scrape.set(scrape.clone());
    readiness.set_ready();
    tokio::spawn(maintain_periodically(db));
    tokio::spawn(discover_periodically(services.clone()));
    tokio::spawn(discover_dns_periodically(services.clone()));
    tokio::spawn(discover_docker_periodically(services.clone()));
    tokio::spawn(reload_on_sighup(services.clone()));

    let served = server.await;
    // Mark every scraped series stale so a restart does not leave them hanging for 5 minutes.
    scrape.stop_all().await;
    match served {
        Ok(result) => result.map_err(RunError::Serve)?,
        Err(e) => return Err(RunError::Serve(std::io::Error::other(e))),
    }
    tracing::info!("Vigil stopped");
    Ok(())
}

/// Persists old head data into blocks and applies retention, once a minute, off the async
/// threads. Failures are logged and retried next time; they never lose data.
async fn maintain_periodically(db: Arc<Db>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let db = db.clone();
        match tokio::task::spawn_blocking(move || db.maintain()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "storage maintenance failed; will retry"),
            Err(e) => tracing::error!(error = %e, "storage maintenance panicked; will retry"),
        }
    }
}

/// Re-reads discovery sources every 5 s (files only when changed or due), so new targets start
/// scraping within seconds of appearing.
async fn discover_periodically(services: Arc<Services>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let s = services.clone();
        let _ = tokio::task::spawn_blocking(move || s.refresh_targets()).await;
    }
}

/// Looks up the DNS names that are due every second, apart from the file loop so that a slow
/// DNS server delays nothing else; targets are rebuilt only when an answer changed.
async fn discover_dns_periodically(services: Arc<Services>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let config = services.config.read().clone();
        let done = discovery::dns::refresh(&services.dns_sd, &config).await;
        services.telemetry.sd_dns_lookups.inc_by(done.lookups);
        services.telemetry.sd_dns_lookup_failures.inc_by(done.failures);
        if done.changed {
            let s = services.clone();
            let _ = tokio::task::spawn_blocking(move || s.refresh_targets()).await;
        }
    }
}

/// Asks the Docker daemons that are due every second, apart from the other loops so that a slow
/// daemon delays nothing else; targets are rebuilt only when an answer changed.
async fn discover_docker_periodically(services: Arc<Services>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let config = services.config.read().clone();
        let done = discovery::docker::refresh(&services.docker_sd, &config).await;
        services.telemetry.sd_docker_refreshes.inc_by(done.refreshes);
        services.telemetry.sd_docker_refresh_failures.inc_by(done.failures);
        if done.changed {
            let s = services.clone();
            let _ = tokio::task::spawn_blocking(move || s.refresh_targets()).await;
        }
    }
}

/// Looks for changed provisioned dashboard files every second; each provider rescans its folder
/// only when its own `updateIntervalSeconds` are up.
async fn sync_provisioned_dashboards(services: Arc<Services>, store: Arc<dashboards::DashboardStore>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let (s, store) = (services.clone(), store.clone());
        let _ = tokio::task::spawn_blocking(move || s.provisioning.sync_dashboards(&store, false)).await;
    }
}

/// SIGHUP reloads the configuration, as for Prometheus.
async fn reload_on_sighup(services: Arc<Services>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload instead");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("received SIGHUP, reloading configuration");
            let s = services.clone();
            // Reading the file and building targets is blocking work.
            let _ = tokio::task::spawn_blocking(move || s.reload()).await;
        }
    }
    #[cfg(not(unix))]
    let _ = services;
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received SIGINT, shutting down"),
        _ = term => tracing::info!("received SIGTERM, shutting down"),
    }
}
