//! Vigil's own metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! [`Telemetry`] owns the prometheus-client [`Registry`] and the metric handles other modules
//! update (HTTP request counters and latencies so far). [`ProcessCollector`] reads the process's
//! CPU time, memory, file descriptors and start time from `/proc` at scrape time, under the
//! metric names Prometheus's Go and Java clients use, so existing dashboards work unchanged.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use crate::tsdb::db::Db;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of one HTTP request series: the route pattern (never the raw path, which would let
/// clients create unbounded series) and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub handler: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandlerLabels {
    pub handler: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    revision: String,
    rustc: String,
}

/// Buckets of Prometheus's `prometheus_http_request_duration_seconds`.
const DURATION_BUCKETS: [f64; 10] = [0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0, 300.0];
/// Finer buckets below 100 ms: most of Vigil's requests are page and API calls that finish well
/// under it, and the coarse Prometheus buckets would hide every regression.
const FINE_BUCKETS: [f64; 5] = [0.001, 0.005, 0.01, 0.025, 0.05];

/// The registry plus handles to the metrics Vigil updates.
#[derive(Clone)]
pub struct Telemetry {
    registry: Arc<Registry>,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: Family<HandlerLabels, Histogram>,
    pub config_reload_ok: Gauge,
    pub config_reload_time: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// DNS discovery lookups and failed lookups, as Prometheus's `prometheus_sd_dns_lookup*`.
    pub sd_dns_lookups: Counter,
    pub sd_dns_lookup_failures: Counter,
    /// Docker discovery refreshes (one per `docker_sd_configs` entry and refresh interval) and
    /// failed ones, as Prometheus's `prometheus_sd_refresh_failures_total{mechanism="docker"}`.
    pub sd_docker_refreshes: Counter,
    pub sd_docker_refresh_failures: Counter,
}

/// Facts about this build, fixed at compile time.
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
    pub rustc: &'static str,
}

pub const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    revision: env!("VIGIL_BUILD_REVISION"),
    rustc: env!("VIGIL_BUILD_RUSTC"),
};

impl Telemetry {
    /// `db` is filled once the database has opened (after WAL replay); until then the
    /// `vigil_tsdb_*` metrics are absent rather than zero.
    pub fn new(start_time_secs: f64, db: Arc<OnceLock<Arc<Db>>>) -> Telemetry {
        let mut registry = Registry::default();
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "vigil_http_requests",
            "Counter of HTTP requests by route and status code",
            http_requests.clone(),
        );
        let http_duration = Family::<HandlerLabels, Histogram>::new_with_constructor(|| {
            let mut buckets = FINE_BUCKETS.to_vec();
            buckets.extend_from_slice(&DURATION_BUCKETS);
            Histogram::new(buckets)
        });
        registry.register(
            "vigil_http_request_duration_seconds",
            "Histogram of latencies for HTTP requests",
            http_duration.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: BUILD.version.to_string(),
                revision: BUILD.revision.to_string(),
                rustc: BUILD.rustc.to_string(),
            })
            .set(1);
        registry.register(
            "vigil_build_info",
            "A metric with a constant '1' value labeled by version, revision and rustc version",
            build,
        );
        let config_reload_ok = Gauge::default();
        config_reload_ok.set(1);
        registry.register(
            "vigil_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful",
            config_reload_ok.clone(),
        );
        let config_reload_time = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        config_reload_time.set(start_time_secs);
        registry.register(
            "vigil_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload",
            config_reload_time.clone(),
        );
        let sd_dns_lookups = Counter::default();
        registry.register("vigil_sd_dns_lookups", "The number of DNS-SD lookups", sd_dns_lookups.clone());
        let sd_dns_lookup_failures = Counter::default();
        registry.register(
            "vigil_sd_dns_lookup_failures",
            "The number of DNS-SD lookup failures",
            sd_dns_lookup_failures.clone(),
        );
        let sd_docker_refreshes = Counter::default();
        registry.register(
            "vigil_sd_docker_refreshes",
            "The number of Docker-SD refreshes",
            sd_docker_refreshes.clone(),
        );
        let sd_docker_refresh_failures = Counter::default();
        registry.register(
            "vigil_sd_docker_refresh_failures",
            "The number of Docker-SD refresh failures",
            sd_docker_refresh_failures.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector { start_time_secs }));
        registry.register_collector(Box::new(TsdbCollector { db }));
        Telemetry {
            registry: Arc::new(registry),
            http_requests,
            http_duration,
            config_reload_ok,
            config_reload_time,
            sd_dns_lookups,
            sd_dns_lookup_failures,
            sd_docker_refreshes,
            sd_docker_refresh_failures,
        }
    }

    /// The current values in OpenMetrics text format, ending in `# EOF`.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    pub fn observe_request(&self, handler: &str, code: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&RequestLabels { handler: handler.to_string(), code: code.to_string() })
            .inc();
        self.http_duration.get_or_create(&HandlerLabels { handler: handler.to_string() }).observe(seconds);
    }
}

/// Process metrics read from `/proc/self` on each scrape. Where `/proc` is missing (not Linux),
/// the metrics are left out rather than reported as zero.
#[derive(Debug)]
struct ProcessCollector {
    start_time_secs: f64,
}

/// What one read of `/proc/self` yields.
#[derive(Debug, Default, PartialEq)]
struct ProcStat {
    cpu_seconds: f64,
    virtual_bytes: u64,
    resident_bytes: u64,
}

/// Parses `/proc/self/stat`. The command name (field 2) may contain spaces and parentheses, so
/// fields are counted from the last `)`.
fn parse_proc_stat(stat: &str, ticks_per_sec: f64, page_size: u64) -> Option<ProcStat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so index i here is field i + 3.
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let utime: f64 = f.get(14 - 3)?.parse().ok()?;
    let stime: f64 = f.get(15 - 3)?.parse().ok()?;
    let vsize: u64 = f.get(23 - 3)?.parse().ok()?;
    let rss_pages: u64 = f.get(24 - 3)?.parse().ok()?;
    Some(ProcStat {
        cpu_seconds: (utime + stime) / ticks_per_sec,
        virtual_bytes: vsize,
        resident_bytes: rss_pages * page_size,
    })
}

fn read_proc_stat() -> Option<ProcStat> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if ticks <= 0 || page <= 0 {
        return None;
    }
    parse_proc_stat(&stat, ticks as f64, page as u64)
}

fn open_fds() -> Option<i64> {
    let count = std::fs::read_dir("/proc/self/fd").ok()?.count();
    // read_dir itself holds one descriptor open while counting.
    i64::try_from(count.saturating_sub(1)).ok()
}

fn max_fds() -> Option<i64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 {
        return None;
    }
    Some(i64::try_from(limit.rlim_cur).unwrap_or(i64::MAX))
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(stat) = read_proc_stat() {
            let cpu = ConstCounter::new(stat.cpu_seconds);
            // prometheus-client appends `_total` to counters.
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                cpu.metric_type(),
            )?)?;
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stat.resident_bytes as f64,
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stat.virtual_bytes as f64,
            )?;
        }
        if let Some(n) = open_fds() {
            gauge(&mut encoder, "process_open_fds", "Number of open file descriptors", n as f64)?;
        }
        if let Some(n) = max_fds() {
            gauge(&mut encoder, "process_max_fds", "Maximum number of open file descriptors", n as f64)?;
        }
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            self.start_time_secs,
        )
    }
}

/// The `vigil_tsdb_*` metrics, read from the database's own counters at scrape time.
#[derive(Debug)]
struct TsdbCollector {
    db: Arc<OnceLock<Arc<Db>>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.dir()).finish_non_exhaustive()
    }
}

impl Collector for TsdbCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(db) = self.db.get() else { return Ok(()) };
        let head = db.head();
        let c = &head.counters;
        let wal = db.wal().stats();
        let report = db.open_report();
        gauge(&mut encoder, "vigil_tsdb_head_series", "Series in the head.", head.series_count() as f64)?;
        let dbc = &db.counters;
        let counters: [(&str, &str, u64); 13] = [
            (
                "vigil_tsdb_head_series_created",
                "Series created in the head.",
                c.series_created.load(Ordering::Relaxed),
            ),
            (
                "vigil_tsdb_head_samples_appended",
                "Samples appended to the head.",
                c.samples_appended.load(Ordering::Relaxed),
            ),
            (
                "vigil_tsdb_out_of_order_samples",
                "Samples rejected for being older than their series' newest sample.",
                c.out_of_order_rejected.load(Ordering::Relaxed),
            ),
            (
                "vigil_tsdb_duplicate_samples",
                "Samples rejected for a different value at an existing timestamp.",
                c.duplicate_rejected.load(Ordering::Relaxed),
            ),
            ("vigil_tsdb_wal_records_written", "Records written to the write-ahead log.", wal.records),
            ("vigil_tsdb_wal_bytes_written", "Bytes written to the write-ahead log.", wal.bytes),
            ("vigil_tsdb_wal_write_failures", "Failed writes to the write-ahead log.", wal.write_errors),
            (
                "vigil_tsdb_wal_corruptions",
                "Damaged write-ahead log tails cut during replay at start-up.",
                report.replay.corruptions.len() as u64,
            ),
            (
                "vigil_tsdb_out_of_bounds_samples",
                "Samples rejected because their time range is already persisted in a block.",
                c.out_of_bounds_rejected.load(Ordering::Relaxed),
            ),
            (
                "vigil_tsdb_compactions",
                "Head ranges persisted into blocks.",
                dbc.head_compactions.load(Ordering::Relaxed),
            ),
            (
                "vigil_tsdb_block_compactions",
                "Groups of blocks merged into one longer block.",
                dbc.block_compactions.load(Ordering::Relaxed),
            ),
            (
                "vigil_tsdb_compactions_failed",
                "Failed attempts to persist the head into a block or to merge blocks.",
                dbc.compaction_failures.load(Ordering::Relaxed),
            ),
            (
                "vigil_tsdb_blocks_removed_by_retention",
                "Blocks deleted by time or size retention.",
                dbc.blocks_removed_by_retention.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let m = ConstCounter::new(value);
            m.encode(encoder.encode_descriptor(name, help, None, m.metric_type())?)?;
        }
        gauge(&mut encoder, "vigil_tsdb_blocks_loaded", "Persisted blocks open.", db.blocks().len() as f64)?;
        gauge(
            &mut encoder,
            "vigil_tsdb_storage_bytes",
            "Bytes on disk in blocks and the WAL.",
            db.disk_bytes() as f64,
        )?;
        if let Some((min, max)) = head.time_range() {
            gauge(
                &mut encoder,
                "vigil_tsdb_head_min_time_seconds",
                "Oldest sample time in the head.",
                min as f64 / 1000.0,
            )?;
            gauge(
                &mut encoder,
                "vigil_tsdb_head_max_time_seconds",
                "Newest sample time in the head.",
                max as f64 / 1000.0,
            )?;
        }
        Ok(())
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_with_awkward_command_name() {
        // Fields as in proc(5); the name holds a space and a parenthesis.
        let line = "4242 (vi gil) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 8 0 12345 104857600 2560 18446744073709551615";
        let s = parse_proc_stat(line, 100.0, 4096).unwrap();
        assert_eq!(s, ProcStat { cpu_seconds: 3.0, virtual_bytes: 104_857_600, resident_bytes: 2560 * 4096 });
        assert!(parse_proc_stat("garbage", 100.0, 4096).is_none());
    }

    #[test]
    fn exposition_has_process_build_and_http_metrics() {
        let t = Telemetry::new(1_700_000_000.0, Arc::default());
        t.observe_request("/metrics", 200, 0.002);
        let text = t.encode().unwrap();
        for needle in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds 1700000000",
            "vigil_build_info{",
            "vigil_http_requests_total{handler=\"/metrics\",code=\"200\"} 1",
            "vigil_http_request_duration_seconds_bucket{le=\"0.005\",handler=\"/metrics\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("vigil_tsdb_"), "no tsdb metrics before the database opens");
    }

    #[test]
    fn tsdb_metrics_once_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path(), Default::default()).unwrap());
        let mut app = db.appender();
        let l = crate::tsdb::labels::Labels::new([("__name__", "x")]).unwrap();
        app.append(&l, 1000, 1.0);
        app.append(&l, 500, 1.0);
        app.commit().unwrap();
        let cell = Arc::new(OnceLock::new());
        let _ = cell.set(db);
        let text = Telemetry::new(0.0, cell).encode().unwrap();
        for needle in [
            "vigil_tsdb_head_series 1",
            "vigil_tsdb_head_samples_appended_total 1",
            "vigil_tsdb_out_of_order_samples_total 1",
            "vigil_tsdb_wal_corruptions_total 0",
            "vigil_tsdb_head_max_time_seconds 1",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
