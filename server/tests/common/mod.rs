//! What the integration tests share: starting the built `vigil` binary on a free loopback port
//! with a temporary data directory and waiting until it is ready, and small HTTP helpers.
//! (Older tests still carry their own copies; new ones use this.)

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `vigil`, killed when dropped.
pub struct Vigil {
    child: Child,
    pub base: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Vigil {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// Starts vigil with `config` (`{port}` in it becomes Vigil's own port) and waits for `/-/ready`.
pub fn start(config: &str, extra_args: &[&str]) -> Vigil {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("vigil.yml");
    std::fs::write(&file, config.replace("{port}", &port.to_string())).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", file.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .args(extra_args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let v = Vigil { child, base: format!("http://127.0.0.1:{port}"), port, dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if get(&format!("{}/-/ready", v.base)).0 == 200 {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("vigil did not become ready within 30 s");
}

/// GET: status and body text (status 0 when the request failed).
pub fn get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        match reqwest::get(url).await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(_) => (0, String::new()),
        }
    })
}

/// GET and parse JSON (`Value::Null` when it is not JSON).
pub fn get_json(url: &str) -> (u16, Value) {
    let (status, text) = get(url);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A test that needs a program this machine lacks: under CI (`CI=true`) that is a failure;
/// elsewhere the test is skipped with a message naming what was not run.
pub fn skip_or_fail(test: &str, what: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {what}; CI must run it");
    }
    eprintln!("SKIPPED {test}: {what}");
    true
}
