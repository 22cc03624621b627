//! Generated traffic for the demo services: one paced request loop per service, with a steady
//! base rate and a burst every [`BURST_EVERY`]. It is bounded three ways — at most [`MAX_RATE`]
//! requests a second, at most [`MAX_IN_FLIGHT`] unanswered requests (beyond that a request is
//! skipped, not queued), and only to loopback addresses — so leaving the demo running cannot
//! load the machine or reach the network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use super::services::{Tasks, GALLERY_IMAGES};

pub const MAX_RATE: f64 = 200.0;
pub const MAX_IN_FLIGHT: usize = 32;
pub const BURST_EVERY: Duration = Duration::from_secs(60);
pub const BURST_LENGTH: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("demo traffic goes to loopback only, not to {0}")]
    NotLoopback(SocketAddr),
    #[error("demo traffic needs at least one target")]
    NoTarget,
    #[error("cannot build the demo's HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// What a loop sends and how fast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Gallery,
    Iotd,
    AccessLog,
}

impl Kind {
    /// Requests a second outside bursts and during them.
    fn rates(self) -> (f64, f64) {
        match self {
            // The burst pushes the gallery past its capacity, so 503s appear.
            Kind::Gallery => (20.0, 180.0),
            Kind::Iotd => (10.0, 40.0),
            Kind::AccessLog => (15.0, 60.0),
        }
    }
}

/// The request rate `elapsed` after the loop started, never above [`MAX_RATE`]. Bursts start
/// 20 s in, so a fresh demo shows one within its first minute.
pub fn rate_at(kind: Kind, elapsed: Duration) -> f64 {
    let (base, burst) = kind.rates();
    let phase = (elapsed + BURST_EVERY - Duration::from_secs(20)).as_secs_f64() % BURST_EVERY.as_secs_f64();
    let rate = if phase < BURST_LENGTH.as_secs_f64() { burst } else { base };
    rate.clamp(0.1, MAX_RATE)
}

/// xorshift64*: enough randomness for request mixes and latency jitter, without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn from_time() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Rng::new(nanos)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// One request of the mix: mostly successes, a share of requests the service rejects.
fn request(kind: Kind, rng: &mut Rng, client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
    match kind {
        Kind::Gallery => {
            // About 5% ask for images the gallery does not have.
            let id = 1 + rng.below(u64::from(GALLERY_IMAGES) * 105 / 100);
            client.get(format!("{base}/images/{id}"))
        }
        Kind::Iotd => {
            let path = match rng.below(100) {
                0..=79 => "/iotd".to_string(),
                80..=94 => format!("/iotd/2024-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28)),
                95..=97 => "/iotd/1999-01-01".to_string(),
                _ => "/iotd/yesterday".to_string(),
            };
            client.get(format!("{base}{path}"))
        }
        Kind::AccessLog => {
            let host = if rng.below(3) == 0 { "iotd" } else { "image-gallery" };
            let line = match rng.below(4) {
                0 => host.to_string(),
                n => format!("{host} 10.0.{n}.{}", rng.below(250) + 1),
            };
            client.post(format!("{base}/log")).body(line)
        }
    }
}

/// Starts a loop sending `kind`'s requests round-robin to `targets` until `stop` turns true.
/// Request tasks are spawned through `tasks` when given, so the service can count them.
pub fn start(
    kind: Kind,
    targets: Vec<SocketAddr>,
    tasks: Option<Tasks>,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, TrafficError> {
    if let Some(bad) = targets.iter().find(|t| !t.ip().is_loopback()) {
        return Err(TrafficError::NotLoopback(*bad));
    }
    if targets.is_empty() {
        return Err(TrafficError::NoTarget);
    }
    start_with_timeout(kind, targets, tasks, stop, REQUEST_TIMEOUT)
}

fn start_with_timeout(
    kind: Kind,
    targets: Vec<SocketAddr>,
    tasks: Option<Tasks>,
    stop: watch::Receiver<bool>,
    timeout: Duration,
) -> Result<JoinHandle<()>, TrafficError> {
    // no_proxy: a proxy from the environment must not see (or break) loopback demo traffic.
    let client = reqwest::Client::builder().no_proxy().timeout(timeout).build()?;
    Ok(tokio::spawn(drive(kind, targets, client, tasks, stop)))
}

async fn drive(
    kind: Kind,
    targets: Vec<SocketAddr>,
    client: reqwest::Client,
    tasks: Option<Tasks>,
    mut stop: watch::Receiver<bool>,
) {
    let bases: Vec<String> = targets.iter().map(|t| format!("http://{t}")).collect();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut rng = Rng::from_time();
    let start = Instant::now();
    let mut next = tokio::time::Instant::now();
    for i in 0usize.. {
        let pause = Duration::from_secs_f64(1.0 / rate_at(kind, start.elapsed()));
        next += pause;
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.wait_for(|&s| s) => return,
        }
        // Behind schedule (a slow machine): do not fire a catch-up volley.
        if let Some(floor) = tokio::time::Instant::now().checked_sub(pause) {
            next = next.max(floor);
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
        let req = request(kind, &mut rng, &client, &bases[i % bases.len()]);
        let send = async move {
            // Failures (a stopped replica, a timeout) are part of the show; nothing to report.
            if let Ok(r) = req.send().await {
                let _ = r.bytes().await;
            }
            drop(permit);
        };
        match &tasks {
            Some(t) => drop(t.spawn(send)),
            None => drop(tokio::spawn(send)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn rates_are_bounded_and_burst() {
        for kind in [Kind::Gallery, Kind::Iotd, Kind::AccessLog] {
            let rates: Vec<f64> = (0..600).map(|s| rate_at(kind, Duration::from_millis(s * 500))).collect();
            assert!(rates.iter().all(|&r| r > 0.0 && r <= MAX_RATE), "{kind:?}");
            let (lo, hi) = kind.rates();
            assert!(rates.contains(&lo) && rates.contains(&hi), "{kind:?} has a burst");
            let in_burst = rates.iter().filter(|&&r| r == hi).count();
            assert_eq!(in_burst, 5 * 20, "{kind:?}: 10 s of each minute, sampled twice a second");
        }
        assert_eq!(rate_at(Kind::Gallery, Duration::from_secs(5)), 20.0);
        assert_eq!(rate_at(Kind::Gallery, Duration::from_secs(25)), 180.0);
    }

    #[test]
    fn refuses_targets_off_loopback() {
        let (_tx, rx) = watch::channel(false);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _guard = rt.enter();
        let far = SocketAddr::from(([192, 0, 2, 1], 80));
        assert!(
            matches!(start(Kind::Gallery, vec![far], None, rx.clone()), Err(TrafficError::NotLoopback(a)) if a == far)
        );
        assert!(matches!(start(Kind::Gallery, vec![], None, rx), Err(TrafficError::NoTarget)));
    }

    /// Against a server that accepts and never answers, unanswered requests stop at
    /// MAX_IN_FLIGHT: the loop skips requests rather than queueing them.
    #[tokio::test]
    async fn unanswered_requests_are_bounded() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                held.push(conn);
            }
        });
        let (stop, rx) = watch::channel(false);
        let tasks = Tasks::default();
        // A long timeout, so no slot frees up during the test even on a loaded machine.
        let driver =
            start_with_timeout(Kind::Gallery, vec![addr], Some(tasks.clone()), rx, Duration::from_secs(60))
                .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while accepted.load(Ordering::Relaxed) < MAX_IN_FLIGHT && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // 20 requests a second: another 10 or so are due in this time, and must be skipped.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(accepted.load(Ordering::Relaxed), MAX_IN_FLIGHT);
        assert_eq!(tasks.count(), MAX_IN_FLIGHT as i64, "one live task per unanswered request");
        stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(1), driver).await.unwrap().unwrap();
        server.abort();
    }

    #[test]
    fn rng_spreads() {
        let mut rng = Rng::new(7);
        let mut seen = [0usize; 10];
        for _ in 0..10_000 {
            seen[rng.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }
}
