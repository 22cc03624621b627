//! Vigil scraping Debian's real node_exporter: the host's metrics arrive, and the built-in "Node"
//! dashboard draws them (its `instance` variable lists the exporter, its panels have series).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn node_exporter_is_scraped_and_the_node_dashboard_draws_it() {
    let bin = "prometheus-node-exporter";
    if Command::new(bin).arg("--version").output().map(|o| !o.status.success()).unwrap_or(true)
        && common::skip_or_fail(
            "node_exporter test",
            "prometheus-node-exporter is not installed (../shared/peers/install.sh)",
        )
    {
        return;
    }
    let port = common::free_port();
    let _exporter = Exporter(
        Command::new(bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let vigil = common::start(
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node\n    \
             static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
        &[],
    );
    let b = &vigil.base;
    // Enough scrapes for rate() over $__rate_interval (4 × 1 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, r) = common::get_json(&format!("{b}/api/v1/query?query=count(node_cpu_seconds_total)"));
        let (_, up) = common::get_json(&format!(
            "{b}/api/v1/query?query=count_over_time(up%7Bjob%3D%22node%22%7D%5B1m%5D)"
        ));
        let cpus =
            r["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let scrapes =
            up["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        if cpus > 0.0 && scrapes >= 6.0 {
            break;
        }
        assert!(Instant::now() < deadline, "no node_exporter data after 30 s");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (s, page) = common::get(&format!("{b}/d/node/node?from=now-5m&to=now"));
    assert_eq!(s, 200);
    assert!(page.contains(&format!("127.0.0.1:{port}")), "the instance variable lists the exporter");
    // Each panel section carries how many series it drew.
    let series: Vec<(String, usize)> = page
        .split("<section ")
        .skip(1)
        .filter_map(|sec| {
            let attr = |name: &str| {
                sec.split(&format!("{name}=\"")).nth(1).and_then(|r| r.split('"').next()).map(str::to_string)
            };
            let title =
                sec.split("class=\"panel-title\"").nth(1)?.split('>').nth(1)?.split('<').next()?.to_string();
            Some((title, attr("data-series")?.parse().ok()?))
        })
        .collect();
    assert_eq!(series.len(), 6, "{series:?}");
    for needed in ["CPU by mode", "Load average", "Memory"] {
        let n = series.iter().find(|(t, _)| t == needed).map(|(_, n)| *n).unwrap_or(0);
        assert!(n > 0, "panel {needed:?} has no series: {series:?}");
    }
    eprintln!("Node dashboard over a real node_exporter, series per panel: {series:?}");
}
