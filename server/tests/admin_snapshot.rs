//! `POST /api/v1/admin/tsdb/snapshot` through the real binary, as Prometheus's: refused without
//! `--web.enable-admin-api`; with it, the head is written as a block under
//! `<storage.tsdb.path>/snapshots/<name>`, and Vigil started on that directory answers with the
//! same samples.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil::api::prompb::{Label, Sample, TimeSeries, WriteRequest};

struct Vigil {
    child: Child,
    base: String,
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, data: &Path, admin: bool) -> Vigil {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.join("vigil.yml");
    std::fs::write(&config, "scrape_configs: []\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null());
    if admin {
        cmd.arg("--web.enable-admin-api");
    }
    let v = Vigil { child: cmd.spawn().unwrap(), base: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if rt().block_on(reqwest::get(format!("{}/-/ready", v.base))).is_ok_and(|r| r.status() == 200) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("vigil did not become ready");
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn send(method: reqwest::Method, url: &str, body: Vec<u8>, remote_write: bool) -> (u16, String) {
    rt().block_on(async {
        let mut req = reqwest::Client::new().request(method, url).body(body);
        if remote_write {
            req = req
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn raw_samples(base: &str, t: i64) -> Value {
    let (code, body) = send(
        reqwest::Method::GET,
        &format!("{base}/api/v1/query?query=snap_test%5B1h%5D&time={}", t / 1000),
        Vec::new(),
        false,
    );
    assert_eq!(code, 200, "{body}");
    json(&body)["data"]["result"].clone()
}

#[test]
fn snapshot_needs_the_flag_and_writes_a_readable_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let snapshot_url = |base: &str| format!("{base}/api/v1/admin/tsdb/snapshot");

    // Without --web.enable-admin-api: 503 "unavailable", as Prometheus answers.
    {
        let v = start(dir.path(), &data, false);
        let (code, body) = send(reqwest::Method::POST, &snapshot_url(&v.base), Vec::new(), false);
        assert_eq!(code, 503, "{body}");
        assert_eq!(json(&body)["errorType"], "unavailable");
        assert!(!data.join("snapshots").exists());
    }

    let v = start(dir.path(), &data, true);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let t0 = now - 600_000;
    let req = WriteRequest {
        timeseries: (0..3)
            .map(|i| TimeSeries {
                labels: vec![
                    Label { name: "__name__".into(), value: "snap_test".into() },
                    Label { name: "i".into(), value: i.to_string() },
                ],
                samples: (0..40)
                    .map(|k| Sample { value: k as f64 * 0.1 + i as f64, timestamp: t0 + k * 15_000 })
                    .collect(),
            })
            .collect(),
    };
    let body = snap::raw::Encoder::new().compress_vec(&prost::Message::encode_to_vec(&req)).unwrap();
    let (code, text) = send(reqwest::Method::POST, &format!("{}/api/v1/write", v.base), body, true);
    assert_eq!(code, 204, "{text}");
    let end = t0 + 40 * 15_000;
    let before = raw_samples(&v.base, end);
    assert_eq!(before.as_array().unwrap().len(), 3);

    let (code, body) = send(reqwest::Method::POST, &snapshot_url(&v.base), Vec::new(), false);
    assert_eq!(code, 200, "{body}");
    let name = json(&body)["data"]["name"].as_str().unwrap().to_string();
    let snap = data.join("snapshots").join(&name);
    let blocks: Vec<_> = std::fs::read_dir(&snap).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(blocks.len(), 1, "one block from the head: {blocks:?}");
    let meta = json(&std::fs::read_to_string(blocks[0].join("meta.json")).unwrap());
    assert_eq!(meta["stats"]["numSamples"], 120);
    assert_eq!(meta["stats"]["numSeries"], 3);

    // skip_head: only the (here: no) blocks; a bad boolean is bad_data.
    let (code, body) =
        send(reqwest::Method::PUT, &format!("{}?skip_head=true", snapshot_url(&v.base)), vec![], false);
    assert_eq!(code, 200, "{body}");
    let empty = data.join("snapshots").join(json(&body)["data"]["name"].as_str().unwrap());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    let (code, body) =
        send(reqwest::Method::POST, &format!("{}?skip_head=maybe", snapshot_url(&v.base)), vec![], false);
    assert_eq!((code, json(&body)["errorType"].as_str()), (400, Some("bad_data")), "{body}");
    // The server goes on as before.
    assert_eq!(raw_samples(&v.base, end), before);
    drop(v);

    // Vigil started on the snapshot reads the same samples from the block.
    let copy = start(dir.path(), &snap, false);
    assert_eq!(raw_samples(&copy.base, end), before);
}
