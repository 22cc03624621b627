//! End to end through the binary: Vigil scrapes its own /metrics, reports the target up, and
//! on shutdown leaves every scraped series durable in the WAL, ended by a stale marker.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil::tsdb::db::{Db, DbOptions};
use vigil::tsdb::index::Matcher;

const STALE: u64 = 0x7ff0_0000_0000_0002;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(url: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(async { reqwest::get(url).await.ok()?.text().await.ok() })
}

#[test]
fn scrapes_itself_and_persists_samples() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("vigil.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n        labels: {{env: test}}\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut up = false;
    while Instant::now() < deadline && !up {
        std::thread::sleep(Duration::from_millis(250));
        let metrics = get(&format!("http://127.0.0.1:{port}/metrics")).unwrap_or_default();
        let appended = metrics
            .lines()
            .find_map(|l| l.strip_prefix("vigil_tsdb_head_samples_appended_total "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        let page = get(&format!("http://127.0.0.1:{port}/targets")).unwrap_or_default();
        up = appended > 0.0 && page.contains("health-up");
    }
    // Metadata of the scraped families is served as Prometheus does.
    let meta: serde_json::Value = serde_json::from_str(
        &get(&format!("http://127.0.0.1:{port}/api/v1/metadata?metric=process_cpu_seconds"))
            .unwrap_or_default(),
    )
    .unwrap();
    assert_eq!(meta["data"]["process_cpu_seconds"][0]["type"], "counter", "{meta}");
    // The HTTP request family has samples (and so metadata) only after a scrape that followed
    // the first request; the very first scrape can come before it.
    let per_target_url = format!(
        "http://127.0.0.1:{port}/api/v1/targets/metadata?match_target={{job=%22vigil%22}}&metric=vigil_http_requests"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let per_target: serde_json::Value = loop {
        let v: serde_json::Value =
            serde_json::from_str(&get(&per_target_url).unwrap_or_default()).unwrap_or_default();
        if v["data"].as_array().is_some_and(|a| !a.is_empty()) || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(per_target["data"][0]["target"]["job"], "vigil", "{per_target}");
    assert!(per_target["data"][0]["help"].as_str().unwrap().contains("HTTP requests"), "{per_target}");

    // Let a few more scrapes happen.
    std::thread::sleep(Duration::from_millis(2500));
    // SIGTERM: graceful shutdown, as a service manager would stop it.
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(up, "target never reported up with samples stored");
    assert!(status.success(), "vigil exited with {status}");

    let db = Db::open(&data, DbOptions::default()).unwrap();
    let sel =
        db.select(&[Matcher::equal("__name__", "up"), Matcher::equal("job", "vigil")], 0, i64::MAX).unwrap();
    assert_eq!(sel.len(), 1);
    assert_eq!(sel[0].labels.get("env"), Some("test"));
    assert_eq!(sel[0].labels.get("instance"), Some(format!("127.0.0.1:{port}").as_str()));
    let samples = sel[0].samples();
    assert!(samples.len() >= 2, "{samples:?}");
    assert!(samples[..samples.len() - 1].iter().all(|&(_, v)| v == 1.0));
    assert_eq!(samples.last().map(|s| s.1.to_bits()), Some(STALE), "shutdown ends the series");
    let cpu = db.select(&[Matcher::equal("__name__", "process_cpu_seconds_total")], 0, i64::MAX).unwrap();
    assert_eq!(cpu.len(), 1, "the process metrics were scraped");
}
