//! PromQL answers against a real Prometheus (Debian's 2.42) on the same data: the peers kit in
//! `../shared/peers` starts Prometheus on loopback, `gen-remote-write.py` sends byte-identical
//! remote-write requests to it and to Vigil, and `compare.py` runs every query of
//! `queries-sample.txt` (range and instant) against both: any difference beyond a relative
//! 1e-12 fails the test.
//!
//! Needs `../shared` and the `prometheus` binary (`make test` installs it with the kit's
//! `install.sh`). Without them the test fails under CI (`CI=true`) and is skipped, saying so,
//! elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/peers");

fn skip_or_fail(what: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}: CI must run the comparison against Prometheus");
    }
    eprintln!("SKIPPED PromQL comparison against Prometheus: {what}");
    true
}

/// Stops the peers however the test ends.
struct Peers {
    kit: PathBuf,
    work: PathBuf,
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = Command::new(self.kit.join("stop-peers.sh"))
            .arg("cmp")
            .env("PEERS_WORK", &self.work)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn promql_answers_match_prometheus() {
    let kit = Path::new(PEERS).to_path_buf();
    if !kit.join("compare.py").is_file() && skip_or_fail(&format!("{} is missing", kit.display())) {
        return;
    }
    let has_prometheus =
        Command::new("prometheus").arg("--version").output().is_ok_and(|o| o.status.success());
    if !has_prometheus && skip_or_fail("the prometheus binary is not installed (../shared/peers/install.sh)")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("peers");
    let started =
        Command::new(kit.join("start-peers.sh")).arg("cmp").env("PEERS_WORK", &work).output().unwrap();
    let _peers = Peers { kit: kit.clone(), work: work.clone() };
    assert!(
        started.status.success(),
        "start-peers.sh cmp failed: {}",
        String::from_utf8_lossy(&started.stderr)
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("vigil.yml");
    std::fs::write(&config, "scrape_configs: []\n").unwrap();
    let mut vigil = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("vigil").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new("curl")
        .args(["-sf", &format!("{base}/-/ready")])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(Instant::now() < deadline, "vigil did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A fixed hour boundary in the past, as the kit's README does, so the data is deterministic.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let end = (now - 600) / 3600 * 3600;
    let gen = Command::new("python3")
        .arg(kit.join("gen-remote-write.py"))
        .args(["--end", &end.to_string()])
        .args(["--url", "http://127.0.0.1:9190/api/v1/write"])
        .args(["--url", &format!("{base}/api/v1/write")])
        .output()
        .unwrap();
    let gen_out = String::from_utf8_lossy(&gen.stdout).to_string() + &String::from_utf8_lossy(&gen.stderr);
    assert!(gen.status.success(), "gen-remote-write.py failed:\n{gen_out}");
    assert!(!gen_out.contains("{4") && !gen_out.contains("{5"), "a receiver refused requests:\n{gen_out}");
    // The generator prints the range that has full windows: "--start S --end E".
    let range = gen_out.lines().find_map(|l| l.split_once("--start ")).map(|(_, r)| r.to_string()).unwrap();
    let mut words = range.split_whitespace();
    let start = words.next().unwrap().to_string();
    let stop = words.nth(1).unwrap().to_string();

    let cmp = Command::new("python3")
        .arg(kit.join("compare.py"))
        .args(["--a", "http://127.0.0.1:9190", "--b", &base])
        .args(["--start", &start, "--end", &stop, "--step", "60", "--mode", "both", "--fail-empty"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&cmp.stdout).to_string() + &String::from_utf8_lossy(&cmp.stderr);
    let _ = vigil.kill();
    let _ = vigil.wait();
    let summary = report.lines().find(|l| l.starts_with("SUMMARY")).unwrap_or("no SUMMARY line");
    eprintln!("{summary}");
    assert!(cmp.status.success(), "Vigil's answers differ from Prometheus's:\n{report}");
    assert!(summary.contains(" 0 DIFFERENT"), "{report}");
}
