//! File-based discovery through the real binary: targets listed in a JSON file are scraped, and
//! editing the file adds and removes targets without a reload.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn targets(base: &str) -> Vec<(String, String)> {
    let text =
        rt().block_on(async { reqwest::get(format!("{base}/api/v1/targets")).await.ok()?.text().await.ok() });
    let Some(v) = text.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) else {
        return vec![];
    };
    let mut out: Vec<(String, String)> = v["data"]["activeTargets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    (
                        t["labels"]["instance"].as_str().unwrap_or("").to_string(),
                        t["health"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn file_sd_targets_follow_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let sd = dir.path().join("targets.json");
    std::fs::write(&sd, format!(r#"[{{"targets": ["127.0.0.1:{port}"], "labels": {{"team": "obs"}}}}]"#))
        .unwrap();
    let config = dir.path().join("vigil.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n  - job_name: files\n    file_sd_configs:\n      - files: ['{}/*.json']\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let me = format!("127.0.0.1:{port}");
    wait_for("the file's target to be scraped", || targets(&base) == vec![(me.clone(), "up".to_string())]);

    std::fs::write(&sd, format!(r#"[{{"targets": ["127.0.0.1:{port}", "127.0.0.1:1"]}}]"#)).unwrap();
    wait_for("a second target", || targets(&base).len() == 2);

    std::fs::write(&sd, "[]").unwrap();
    wait_for("targets to go", || targets(&base).is_empty());
    let _ = child.kill();
    let _ = child.wait();
}
