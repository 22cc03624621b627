//! `vigil demo` through the real binary: the five demo targets come up within 30 s, the
//! access-log replicas report their series, and stopping one replica makes its target go down
//! and its series go stale while the other two keep going.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap()
}

/// The instant vector `query` evaluates to now, as (labels, value) pairs; empty while Vigil
/// is not answering yet.
fn query(base: &str, query: &str) -> Vec<(Value, String)> {
    let params = form_urlencoded::Serializer::new(String::new()).append_pair("query", query).finish();
    let text = rt().block_on(async {
        client().get(format!("{base}/api/v1/query?{params}")).send().await.ok()?.text().await.ok()
    });
    let Some(v) = text.and_then(|t| serde_json::from_str::<Value>(&t).ok()) else { return vec![] };
    v["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| (r["metric"].clone(), r["value"][1].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn demo_refuses_a_config_file() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_vigil")).args(["demo", "--config.file=x.yml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("writes its own configuration"));
}

#[test]
fn demo_targets_come_up_and_a_stopped_replica_goes_stale() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let _demo = Demo(
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("demo")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", dir.path().display()))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let started = Instant::now();
    wait_for("5 demo targets up", Duration::from_secs(30), || {
        let up = query(&base, "up == 1");
        let jobs = |job: &str| up.iter().filter(|(m, _)| m["job"] == job).count();
        up.len() == 5 && jobs("image-gallery") == 1 && jobs("iotd") == 1 && jobs("access-log") == 3
    });
    wait_for(
        "access_log_total from every replica",
        Duration::from_secs(30).saturating_sub(started.elapsed()),
        || {
            query(&base, "count(access_log_total)")
                .first()
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                >= 3.0
        },
    );
    // A first scrape may come before the first request was answered, so families that appear
    // with the first request get the same 30 s.
    for expr in [
        "image_gallery_requests_total",
        "go_goroutines",
        "http_server_requests_seconds_bucket",
        "jvm_memory_used_bytes",
    ] {
        wait_for(expr, Duration::from_secs(30).saturating_sub(started.elapsed()), || {
            !query(&base, expr).is_empty()
        });
    }

    // The demo's target file names each replica; stop the second one through its endpoint.
    let sd: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("demo/access-log.json")).unwrap())
            .unwrap();
    let victim = sd[1]["targets"][0].as_str().unwrap().to_string();
    assert_eq!(sd[1]["labels"]["replica"], "2");
    let status = rt().block_on(async {
        client().post(format!("http://{victim}/-/stop")).send().await.unwrap().status().as_u16()
    });
    assert_eq!(status, 202);

    let instance = format!("instance=\"{victim}\"");
    wait_for("the stopped replica to be down and its series stale", Duration::from_secs(30), || {
        let down = query(&base, &format!("up{{{instance}}}"));
        down.len() == 1
            && down[0].1 == "0"
            && query(&base, &format!("access_log_total{{{instance}}}")).is_empty()
    });
    assert_eq!(query(&base, "up{job=\"access-log\"} == 1").len(), 2, "the other replicas stay up");
    let mut live: Vec<String> = query(&base, "access_log_total")
        .iter()
        .filter_map(|(m, _)| m["instance"].as_str().map(str::to_string))
        .collect();
    live.sort();
    live.dedup();
    assert_eq!(live.len(), 2, "the other replicas' series stay: {live:?}");
}
