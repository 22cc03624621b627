//! Hot reload through the real binary: POST /-/reload and SIGHUP apply a new configuration;
//! a bad one keeps the old configuration running and sets the reload metric to 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn get(url: &str) -> String {
    rt().block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

fn post(url: &str) -> (u16, String) {
    rt().block_on(async {
        let r = reqwest::Client::new().post(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

fn jobs(base: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&get(&format!("{base}/api/v1/targets"))).unwrap();
    let mut jobs: Vec<String> = v["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["scrapePool"].as_str().unwrap().to_string())
        .collect();
    jobs.sort();
    jobs
}

fn metric(base: &str, name: &str) -> Option<f64> {
    get(&format!("{base}/metrics")).lines().find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
}

fn config(jobs: &[&str]) -> String {
    let mut s = String::from("scrape_configs:\n");
    for j in jobs {
        s.push_str(&format!("  - job_name: {j}\n    static_configs:\n      - targets: ['127.0.0.1:1']\n"));
    }
    s
}

#[test]
fn reload_applies_good_configs_and_keeps_running_on_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let file = dir.path().join("vigil.yml");
    std::fs::write(&file, config(&["a"])).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", file.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-lifecycle")
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while rt().block_on(reqwest::get(format!("{base}/-/ready"))).map(|r| r.status().as_u16()).unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(jobs(&base), vec!["a"]);

    std::fs::write(&file, config(&["b", "c"])).unwrap();
    assert_eq!(post(&format!("{base}/-/reload")).0, 200);
    assert_eq!(jobs(&base), vec!["b", "c"]);
    assert_eq!(metric(&base, "vigil_config_last_reload_successful"), Some(1.0));

    std::fs::write(&file, "scrape_configs:\n  - job_name: b\n    scrape_intervl: 5s\n").unwrap();
    let (code, text) = post(&format!("{base}/-/reload"));
    assert_eq!(code, 500);
    assert!(text.contains("scrape_intervl"), "{text}");
    assert_eq!(jobs(&base), vec!["b", "c"], "the old configuration keeps running");
    assert_eq!(metric(&base, "vigil_config_last_reload_successful"), Some(0.0));

    std::fs::write(&file, config(&["d"])).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while jobs(&base) != vec!["d"] {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(metric(&base, "vigil_config_last_reload_successful"), Some(1.0));

    assert_eq!(post(&format!("{base}/-/quit")).0, 200);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
