//! DNS discovery through the real binary against a real DNS server: Debian's dnsmasq, started
//! on a high port with records of its own, and Vigil pointed at it with
//! `VIGIL_DNS_SD_NAMESERVER`. A and SRV names yield targets that are scraped; changing the
//! records changes the targets; a server that stops answering keeps the last good targets and
//! counts failed lookups.
//!
//! Without dnsmasq the test fails under CI (`CI=true`) and is skipped, saying so, elsewhere
//! (`make test` installs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn dnsmasq() -> Option<PathBuf> {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn get_json(url: &str) -> Option<serde_json::Value> {
    let text = rt().block_on(async { reqwest::get(url).await.ok()?.text().await.ok() });
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// (job, instance, health) of every active target, sorted.
fn targets(base: &str) -> Vec<(String, String, String)> {
    let Some(v) = get_json(&format!("{base}/api/v1/targets")) else { return vec![] };
    let mut out: Vec<(String, String, String)> = v["data"]["activeTargets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
                    (s(&t["labels"]["job"]), s(&t["labels"]["instance"]), s(&t["health"]))
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

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_dnsmasq(bin: &Path, port: u16, hosts: &Path, srv: &str) -> Child {
    let mut child = Command::new(bin)
        .args([
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--keep-in-foreground",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
            "--local=/vigil.test/",
            "--local-ttl=0",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--addn-hosts={}", hosts.display()))
        .arg(format!("--srv-host={srv}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dnsmasq");
    // dnsmasq binds before answering; give it a moment rather than racing the first lookup.
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(status)) = child.try_wait() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!("dnsmasq exited at start ({status}): {err}");
    }
    child
}

#[test]
fn dns_sd_targets_follow_the_records() {
    let Some(bin) = dnsmasq() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("dnsmasq is missing: CI must run the DNS discovery test (apt-get install dnsmasq-base)");
        }
        eprintln!("SKIPPED dns_sd_targets_follow_the_records: dnsmasq is not installed (apt-get install dnsmasq-base)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dns_port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 web.vigil.test\n").unwrap();
    // The SRV record points at `localhost`, which Vigil's scraper resolves through /etc/hosts.
    let mut dns =
        start_dnsmasq(&bin, dns_port, &hosts, &format!("_metrics._tcp.vigil.test,localhost,{port}"));

    let config = dir.path().join("vigil.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n  - job_name: dns_a\n    dns_sd_configs:\n      - names: [web.vigil.test]\n        type: A\n        port: {port}\n        refresh_interval: 1s\n  - job_name: dns_srv\n    dns_sd_configs:\n      - names: [_metrics._tcp.vigil.test]\n        refresh_interval: 1s\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=error")
        .env("VIGIL_DNS_SD_NAMESERVER", format!("127.0.0.1:{dns_port}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = |job: &str, instance: String, health: &str| (job.to_string(), instance, health.to_string());
    let up_a = t("dns_a", format!("127.0.0.1:{port}"), "up");
    let up_srv = t("dns_srv", format!("localhost:{port}"), "up");
    wait_for("A and SRV targets to be scraped", || targets(&base) == vec![up_a.clone(), up_srv.clone()]);

    let v = get_json(&format!("{base}/api/v1/targets")).unwrap();
    let srv = v["data"]["activeTargets"].as_array().unwrap().iter().find(|t| t["labels"]["job"] == "dns_srv");
    let discovered = &srv.unwrap()["discoveredLabels"];
    assert_eq!(discovered["__meta_dns_name"], "_metrics._tcp.vigil.test");
    assert_eq!(discovered["__meta_dns_srv_record_target"], "localhost.");
    assert_eq!(discovered["__meta_dns_srv_record_port"], port.to_string());
    let q = get_json(&format!("{base}/api/v1/query?query=up%7Bjob%3D%22dns_a%22%7D")).unwrap();
    assert_eq!(q["data"]["result"][0]["value"][1], "1", "{q}");

    // A second address for the A name: dnsmasq re-reads its hosts file on SIGHUP.
    std::fs::write(&hosts, "127.0.0.1 web.vigil.test\n127.0.0.2 web.vigil.test\n").unwrap();
    // SAFETY: signals our own child process by its id.
    unsafe { libc::kill(dns.id() as i32, libc::SIGHUP) };
    let second = format!("127.0.0.2:{port}");
    wait_for("a second A target", || {
        targets(&base).iter().any(|(job, instance, _)| job == "dns_a" && *instance == second)
    });

    // The DNS server goes away: lookups fail (once they time out) and the last good targets stay.
    let _ = dns.kill();
    let _ = dns.wait();
    let counter = |name: &str| -> f64 {
        let metrics =
            rt().block_on(async { reqwest::get(format!("{base}/metrics")).await.ok()?.text().await.ok() });
        let metrics = metrics.unwrap_or_default();
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).map(str::to_string);
        line.and_then(|l| l.split(' ').nth(1).and_then(|v| v.parse().ok())).unwrap_or(0.0)
    };
    wait_for("a failed lookup", || counter("vigil_sd_dns_lookup_failures_total") >= 1.0);
    assert!(counter("vigil_sd_dns_lookups_total") >= 4.0);
    let now: Vec<(String, String)> = targets(&base).into_iter().map(|(j, i, _)| (j, i)).collect();
    assert_eq!(now.len(), 3, "targets kept while DNS fails: {now:?}");

    // Back with another SRV record: the SRV job follows.
    let mut dns = start_dnsmasq(&bin, dns_port, &hosts, "_metrics._tcp.vigil.test,localhost,1");
    wait_for("the new SRV target", || {
        targets(&base).iter().any(|(job, instance, _)| job == "dns_srv" && instance == "localhost:1")
            && targets(&base).iter().filter(|(job, _, _)| job == "dns_srv").count() == 1
    });

    let _ = child.kill();
    let _ = child.wait();
    let _ = dns.kill();
    let _ = dns.wait();
}
