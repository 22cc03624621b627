//! The three demo services. Each is an axum router with its own prometheus-client registry,
//! served on a listener the caller bound; [`Running`] stops one (its port closes at once, so the
//! next scrape fails and Vigil marks its series stale).
//!
//! Errors are produced by the services themselves, not faked by the traffic: image-gallery sheds
//! load with 503 when too many requests are in flight (bursts cause it), answers 404 for images
//! it does not have and 500 for the images whose thumbnails "fail"; iotd answers 404 for days
//! before it existed, 400 for malformed dates and 500 for one unlucky day of each month.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::traffic::Rng;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// image-gallery answers 503 beyond this many requests in flight; the traffic's bursts exceed it.
pub const GALLERY_CAPACITY: i64 = 8;
/// The gallery holds images 1..=GALLERY_IMAGES; the traffic also asks for some beyond.
pub const GALLERY_IMAGES: u32 = 1000;
/// An access-log replica keeps at most this many `hostname` label values, so clients cannot
/// grow its exposition without bound.
const MAX_LOGGED_HOSTNAMES: usize = 32;
/// iotd caches this many rendered images; their bytes are its "heap".
const IOTD_CACHE_ENTRIES: usize = 32;
const IOTD_IMAGE_BYTES: usize = 16 * 1024;

/// A service serving on its listener until [`Running::stop`].
pub struct Running {
    pub name: String,
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    served: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Serves `router` on `listener`; `stop` may be shared with an endpoint that stops it.
    fn spawn(
        name: String,
        listener: TcpListener,
        router: Router,
        stop: watch::Sender<bool>,
    ) -> std::io::Result<Running> {
        let addr = listener.local_addr()?;
        let mut stopped = stop.subscribe();
        let served = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|&s| s).await;
                })
                .await
        });
        Ok(Running { name, addr, stop, served })
    }

    /// A handle that stops the service when sent `true`, for whoever outlives this value.
    pub fn stop_handle(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Closes the listener and lets requests in progress finish.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until the service has stopped (by [`Running::stop`] or its own stop endpoint).
    pub async fn stopped(self) -> std::io::Result<()> {
        match self.served.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

fn metrics_response(registry: &Registry) -> Response {
    let mut out = String::with_capacity(4096);
    match prometheus_client::encoding::text::encode(&mut out, registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], out).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response(),
    }
}

/// Live tokio tasks of one service and the bytes their futures occupy. A task's future is its
/// whole state, the closest thing a tokio task has to a goroutine's stack, which is why the
/// gallery reports these under Go's metric names.
#[derive(Clone, Default)]
pub struct Tasks {
    count: Gauge,
    bytes: Gauge,
}

struct TaskGuard {
    tasks: Tasks,
    bytes: i64,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.tasks.count.dec();
        self.tasks.bytes.dec_by(self.bytes);
    }
}

impl Tasks {
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let bytes = i64::try_from(std::mem::size_of_val(&fut)).unwrap_or(i64::MAX);
        self.count.inc();
        self.bytes.inc_by(bytes);
        let guard = TaskGuard { tasks: self.clone(), bytes };
        tokio::spawn(async move {
            let _guard = guard;
            fut.await
        })
    }

    pub fn count(&self) -> i64 {
        self.count.get()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

/// image-gallery: `GET /images/{id}` and `GET /metrics`.
pub struct Gallery {
    registry: Registry,
    requests: Family<CodeLabels, Counter>,
    in_flight: Gauge,
    pub tasks: Tasks,
    rng: Mutex<Rng>,
}

impl Gallery {
    pub fn new() -> Arc<Gallery> {
        let mut registry = Registry::default();
        let requests = Family::<CodeLabels, Counter>::default();
        registry.register(
            "image_gallery_requests",
            "Image requests answered, by HTTP status code",
            requests.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "image_gallery_in_flight_requests",
            "Image requests being handled right now",
            in_flight.clone(),
        );
        let tasks = Tasks::default();
        registry.register(
            "go_goroutines",
            "Not a Go runtime: live tokio tasks of the Vigil demo's image-gallery (request handlers \
             and its traffic loop's requests), under Go's name so Go dashboards work",
            tasks.count.clone(),
        );
        registry.register(
            "go_memstats_stack_inuse_bytes",
            "Not a Go runtime: bytes held by the futures of the Vigil demo's image-gallery tasks \
             (a tokio task's state, its stand-in for a goroutine stack), under Go's name",
            tasks.bytes.clone(),
        );
        // The seed only needs to vary between runs; the time is good enough for jitter.
        Arc::new(Gallery { registry, requests, in_flight, tasks, rng: Mutex::new(Rng::from_time()) })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/images/{id}", get(gallery_image))
            .route(
                "/metrics",
                get(|State(g): State<Arc<Gallery>>| async move { metrics_response(&g.registry) }),
            )
            .with_state(self.clone())
    }

    /// Handles one image request as its own task, so the task count means something.
    async fn handle(self: Arc<Self>, id: String) -> StatusCode {
        let in_flight = self.in_flight.inc() + 1;
        let code = if in_flight > GALLERY_CAPACITY {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            let millis = 20 + self.rng.lock().below(60);
            tokio::time::sleep(Duration::from_millis(millis)).await;
            match id.parse::<u32>() {
                Ok(n) if (1..=GALLERY_IMAGES).contains(&n) && n % 97 == 0 => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                Ok(n) if (1..=GALLERY_IMAGES).contains(&n) => StatusCode::OK,
                _ => StatusCode::NOT_FOUND,
            }
        };
        self.in_flight.dec();
        self.requests.get_or_create(&CodeLabels { code: code.as_u16().to_string() }).inc();
        code
    }
}

async fn gallery_image(State(g): State<Arc<Gallery>>, Path(id): Path<String>) -> Response {
    let code = g.tasks.spawn(g.clone().handle(id.clone())).await.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match code {
        StatusCode::OK => format!("image {id}\n"),
        StatusCode::SERVICE_UNAVAILABLE => "too many requests in flight, try again\n".to_string(),
        StatusCode::NOT_FOUND => format!("no image {id}\n"),
        _ => format!("thumbnail of image {id} failed\n"),
    };
    (code, body).into_response()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MicrometerLabels {
    method: String,
    uri: String,
    status: String,
    outcome: String,
    exception: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemoryLabels {
    area: String,
    id: String,
}

/// Micrometer's default `http.server.requests` SLO-less buckets are many; these few keep the
/// exposition readable while still giving histogram_quantile something to work with.
const IOTD_BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// iotd ("image of the day"), shaped like a Spring Boot service: `GET /iotd`,
/// `GET /iotd/{date}` and `GET /actuator/prometheus`.
pub struct Iotd {
    registry: Registry,
    requests: Family<MicrometerLabels, Histogram>,
    memory: Family<MemoryLabels, Gauge<f64, AtomicU64>>,
    cpu_usage: Gauge<f64, AtomicU64>,
    /// CPU seconds of the process and when they were read, for the usage since the last scrape.
    last_cpu: Mutex<(Instant, f64)>,
    cache: Mutex<VecDeque<(String, Vec<u8>)>>,
    rng: Mutex<Rng>,
}

impl Iotd {
    pub fn new() -> Arc<Iotd> {
        let mut registry = Registry::default();
        let requests =
            Family::<MicrometerLabels, Histogram>::new_with_constructor(|| Histogram::new(IOTD_BUCKETS));
        registry.register(
            "http_server_requests_seconds",
            "Duration of HTTP server request handling",
            requests.clone(),
        );
        let memory = Family::<MemoryLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "jvm_memory_used_bytes",
            "Not a JVM: area=heap is the bytes of iotd's image cache, area=nonheap the resident \
             memory of the whole Vigil demo process, named as Micrometer names JVM memory",
            memory.clone(),
        );
        let cpu_usage = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "process_cpu_usage",
            "The recent CPU usage of the whole Vigil demo process, 0 to 1 of all CPUs, since the previous scrape",
            cpu_usage.clone(),
        );
        Arc::new(Iotd {
            registry,
            requests,
            memory,
            cpu_usage,
            last_cpu: Mutex::new((Instant::now(), process_cpu_seconds().unwrap_or(0.0))),
            cache: Mutex::new(VecDeque::new()),
            rng: Mutex::new(Rng::from_time()),
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/iotd",
                get(|State(s): State<Arc<Iotd>>| async move { s.image("today".to_string(), "/iotd").await }),
            )
            .route(
                "/iotd/{date}",
                get(|State(s): State<Arc<Iotd>>, Path(date): Path<String>| async move {
                    s.image(date, "/iotd/{date}").await
                }),
            )
            .route("/actuator/prometheus", get(|State(s): State<Arc<Iotd>>| async move { s.metrics() }))
            .with_state(self.clone())
    }

    async fn image(&self, date: String, uri: &str) -> Response {
        let start = Instant::now();
        let (status, exception) = match check_date(&date) {
            Err(status) => {
                (status, if status == StatusCode::BAD_REQUEST { "DateTimeParseException" } else { "None" })
            }
            Ok(()) => {
                let millis = {
                    let mut rng = self.rng.lock();
                    // Mostly fast, with a tail: what makes the p99 line differ from the p50.
                    if rng.below(20) == 0 {
                        100 + rng.below(400)
                    } else {
                        5 + rng.below(40)
                    }
                };
                tokio::time::sleep(Duration::from_millis(millis)).await;
                if date.ends_with("-13") {
                    (StatusCode::INTERNAL_SERVER_ERROR, "IllegalStateException")
                } else {
                    self.render(&date);
                    (StatusCode::OK, "None")
                }
            }
        };
        let outcome = match status.as_u16() {
            200..=299 => "SUCCESS",
            400..=499 => "CLIENT_ERROR",
            _ => "SERVER_ERROR",
        };
        self.requests
            .get_or_create(&MicrometerLabels {
                method: "GET".to_string(),
                uri: uri.to_string(),
                status: status.as_u16().to_string(),
                outcome: outcome.to_string(),
                exception: exception.to_string(),
            })
            .observe(start.elapsed().as_secs_f64());
        (status, format!("{} for {date}\n", status.canonical_reason().unwrap_or("answer"))).into_response()
    }

    /// Keeps the day's image in the bounded cache, evicting the oldest.
    fn render(&self, date: &str) {
        let mut cache = self.cache.lock();
        if cache.iter().any(|(d, _)| d == date) {
            return;
        }
        if cache.len() >= IOTD_CACHE_ENTRIES {
            cache.pop_front();
        }
        let seed = date.bytes().fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
        cache.push_back((date.to_string(), vec![seed; IOTD_IMAGE_BYTES]));
    }

    fn metrics(&self) -> Response {
        let heap: usize = self.cache.lock().iter().map(|(_, image)| image.len()).sum();
        self.memory
            .get_or_create(&MemoryLabels { area: "heap".to_string(), id: "iotd image cache".to_string() })
            .set(heap as f64);
        if let Some(rss) = resident_bytes() {
            self.memory
                .get_or_create(&MemoryLabels {
                    area: "nonheap".to_string(),
                    id: "process resident".to_string(),
                })
                .set(rss as f64);
        }
        if let Some(cpu) = process_cpu_seconds() {
            let mut last = self.last_cpu.lock();
            let wall = last.0.elapsed().as_secs_f64();
            let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
            if wall > 0.0 {
                self.cpu_usage.set(((cpu - last.1) / wall / cpus).clamp(0.0, 1.0));
            }
            *last = (Instant::now(), cpu);
        }
        metrics_response(&self.registry)
    }
}

/// `today` or a `YYYY-MM-DD` date from 2020 (when iotd "started") on.
fn check_date(date: &str) -> Result<(), StatusCode> {
    if date == "today" {
        return Ok(());
    }
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts[..] else { return Err(StatusCode::BAD_REQUEST) };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return Err(StatusCode::BAD_REQUEST);
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(StatusCode::BAD_REQUEST);
    }
    if y < 2020 {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(())
}

/// User plus system CPU time of this process.
fn process_cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct we own; RUSAGE_SELF is always a valid argument.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: getrusage returned 0, so it initialised the struct.
    let usage = unsafe { usage.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostnameLabels {
    hostname: String,
}

/// One access-log replica: `POST /log` takes a line `HOSTNAME [CLIENT-IP]`, `GET /metrics`, and
/// `POST /-/stop`, which stops this replica (its port closes) to show staleness in Vigil.
pub struct AccessLog {
    registry: Registry,
    lines: Family<HostnameLabels, Counter>,
    with_ip: Counter,
    hostnames: Mutex<HashSet<String>>,
    stop: watch::Sender<bool>,
}

impl AccessLog {
    pub fn new() -> Arc<AccessLog> {
        let mut registry = Registry::default();
        let lines = Family::<HostnameLabels, Counter>::default();
        registry.register(
            "access_log",
            "Access-log lines received, by the hostname that served the request",
            lines.clone(),
        );
        let with_ip = Counter::default();
        registry.register(
            "access_log_ip",
            "Access-log lines received that name a client IP address",
            with_ip.clone(),
        );
        Arc::new(AccessLog {
            registry,
            lines,
            with_ip,
            hostnames: Mutex::new(HashSet::new()),
            stop: watch::Sender::new(false),
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/log", post(|State(s): State<Arc<AccessLog>>, body: String| async move { s.log(&body) }))
            .route(
                "/metrics",
                get(|State(s): State<Arc<AccessLog>>| async move { metrics_response(&s.registry) }),
            )
            .route(
                "/-/stop",
                post(|State(s): State<Arc<AccessLog>>| async move {
                    s.stop.send_replace(true);
                    (StatusCode::ACCEPTED, "stopping this access-log replica\n")
                }),
            )
            .with_state(self.clone())
    }

    fn log(&self, line: &str) -> (StatusCode, &'static str) {
        let mut words = line.split_whitespace();
        let Some(hostname) = words.next().filter(|h| h.len() <= 64) else {
            return (StatusCode::BAD_REQUEST, "want: HOSTNAME [CLIENT-IP]\n");
        };
        let ip = words.next();
        if ip.is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_err()) {
            return (StatusCode::BAD_REQUEST, "not an IP address\n");
        }
        {
            let mut known = self.hostnames.lock();
            if !known.contains(hostname) {
                if known.len() >= MAX_LOGGED_HOSTNAMES {
                    return (StatusCode::BAD_REQUEST, "too many distinct hostnames\n");
                }
                known.insert(hostname.to_string());
            }
        }
        self.lines.get_or_create(&HostnameLabels { hostname: hostname.to_string() }).inc();
        if ip.is_some() {
            self.with_ip.inc();
        }
        (StatusCode::NO_CONTENT, "")
    }
}

pub fn serve_gallery(listener: TcpListener, gallery: &Arc<Gallery>) -> std::io::Result<Running> {
    Running::spawn("image-gallery".to_string(), listener, gallery.router(), watch::Sender::new(false))
}

pub fn serve_iotd(listener: TcpListener, iotd: &Arc<Iotd>) -> std::io::Result<Running> {
    Running::spawn("iotd".to_string(), listener, iotd.router(), watch::Sender::new(false))
}

pub fn serve_access_log(
    name: String,
    listener: TcpListener,
    log: &Arc<AccessLog>,
) -> std::io::Result<Running> {
    Running::spawn(name, listener, log.router(), log.stop.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn listener() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").await.unwrap()
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    async fn text(url: String) -> (u16, String) {
        let r = client().get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    #[tokio::test]
    async fn gallery_exposes_its_series() {
        let g = Gallery::new();
        let s = serve_gallery(listener().await, &g).unwrap();
        let base = format!("http://{}", s.addr);
        assert_eq!(text(format!("{base}/images/1")).await.0, 200);
        assert_eq!(text(format!("{base}/images/97")).await.0, 500);
        assert_eq!(text(format!("{base}/images/5000")).await.0, 404);
        assert_eq!(text(format!("{base}/images/cat")).await.0, 404);
        let (code, body) = text(format!("{base}/metrics")).await;
        assert_eq!(code, 200);
        for line in [
            "image_gallery_requests_total{code=\"200\"} 1",
            "image_gallery_requests_total{code=\"500\"} 1",
            "image_gallery_requests_total{code=\"404\"} 2",
            "# TYPE image_gallery_in_flight_requests gauge",
            "image_gallery_in_flight_requests 0",
            "# TYPE go_goroutines gauge",
            "# TYPE go_memstats_stack_inuse_bytes gauge",
            "# EOF",
        ] {
            assert!(body.contains(line), "no {line:?} in\n{body}");
        }
        assert!(body.contains("# HELP go_goroutines Not a Go runtime"), "{body}");
        s.stop();
        s.stopped().await.unwrap();
    }

    #[tokio::test]
    async fn gallery_sheds_load_beyond_capacity() {
        let g = Gallery::new();
        // On this single-threaded runtime every handler starts before the first one's sleep
        // ends, so exactly GALLERY_CAPACITY of them are served.
        let handlers: Vec<_> =
            (0..3 * GALLERY_CAPACITY).map(|_| tokio::spawn(g.clone().handle("2".to_string()))).collect();
        let mut codes = Vec::new();
        for h in handlers {
            codes.push(h.await.unwrap().as_u16());
        }
        assert_eq!(codes.iter().filter(|&&c| c == 200).count() as i64, GALLERY_CAPACITY, "{codes:?}");
        assert_eq!(codes.iter().filter(|&&c| c == 503).count() as i64, 2 * GALLERY_CAPACITY, "{codes:?}");
        assert_eq!(g.in_flight.get(), 0);
    }

    #[tokio::test]
    async fn gallery_task_metrics_count_live_handlers() {
        let g = Gallery::new();
        let h = g.tasks.spawn(tokio::time::sleep(Duration::from_millis(200)));
        assert_eq!(g.tasks.count(), 1);
        assert!(g.tasks.bytes.get() > 0);
        h.await.unwrap();
        assert_eq!((g.tasks.count(), g.tasks.bytes.get()), (0, 0));
    }

    #[tokio::test]
    async fn iotd_is_shaped_like_micrometer() {
        let i = Iotd::new();
        let s = serve_iotd(listener().await, &i).unwrap();
        let base = format!("http://{}", s.addr);
        assert_eq!(text(format!("{base}/iotd")).await.0, 200);
        assert_eq!(text(format!("{base}/iotd/2024-05-02")).await.0, 200);
        assert_eq!(text(format!("{base}/iotd/2024-05-13")).await.0, 500);
        assert_eq!(text(format!("{base}/iotd/1999-01-01")).await.0, 404);
        assert_eq!(text(format!("{base}/iotd/yesterday")).await.0, 400);
        assert_eq!(
            text(format!("{base}/metrics")).await.0,
            404,
            "Spring serves metrics under /actuator only"
        );
        let (code, body) = text(format!("{base}/actuator/prometheus")).await;
        assert_eq!(code, 200);
        for line in [
            "# TYPE http_server_requests_seconds histogram",
            "http_server_requests_seconds_count{method=\"GET\",uri=\"/iotd\",status=\"200\",outcome=\"SUCCESS\",exception=\"None\"} 1",
            "http_server_requests_seconds_count{method=\"GET\",uri=\"/iotd/{date}\",status=\"500\",outcome=\"SERVER_ERROR\",exception=\"IllegalStateException\"} 1",
            "http_server_requests_seconds_count{method=\"GET\",uri=\"/iotd/{date}\",status=\"404\",outcome=\"CLIENT_ERROR\",exception=\"None\"} 1",
            "http_server_requests_seconds_bucket{le=\"+Inf\",method=\"GET\",uri=\"/iotd\",status=\"200\",outcome=\"SUCCESS\",exception=\"None\"} 1",
            "jvm_memory_used_bytes{area=\"heap\",id=\"iotd image cache\"} 32768.0",
            "jvm_memory_used_bytes{area=\"nonheap\",id=\"process resident\"}",
            "# TYPE process_cpu_usage gauge",
        ] {
            assert!(body.contains(line), "no {line:?} in\n{body}");
        }
        assert!(body.contains("http_server_requests_seconds_sum{"), "{body}");
        s.stop();
        s.stopped().await.unwrap();
    }

    #[tokio::test]
    async fn access_log_counts_and_stops_on_request() {
        let a = AccessLog::new();
        let s = serve_access_log("access-log-1".to_string(), listener().await, &a).unwrap();
        let base = format!("http://{}", s.addr);
        let c = client();
        for line in ["image-gallery 10.0.0.1", "image-gallery", "iotd ::1", "iotd not-an-ip"] {
            c.post(format!("{base}/log")).body(line).send().await.unwrap();
        }
        let (_, body) = text(format!("{base}/metrics")).await;
        for line in [
            "access_log_total{hostname=\"image-gallery\"} 2",
            "access_log_total{hostname=\"iotd\"} 1",
            "access_log_ip_total 2",
        ] {
            assert!(body.contains(line), "no {line:?} in\n{body}");
        }
        let r = c.post(format!("{base}/-/stop")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let addr = s.addr;
        tokio::time::timeout(Duration::from_secs(5), s.stopped()).await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the stopped replica's port is closed");
    }

    #[test]
    fn dates() {
        assert_eq!(check_date("today"), Ok(()));
        assert_eq!(check_date("2024-02-29"), Ok(()));
        assert_eq!(check_date("2019-12-31"), Err(StatusCode::NOT_FOUND));
        assert_eq!(check_date("2024-13-01"), Err(StatusCode::BAD_REQUEST));
        assert_eq!(check_date("2024-1"), Err(StatusCode::BAD_REQUEST));
    }
}
