//! Queries through the datasource proxy to an external Prometheus: Debian's Prometheus started
//! by the peers kit in `../shared/peers` (`start-peers.sh cmp`, :9190), provisioned as a
//! datasource from Grafana's YAML; the answers through Vigil equal Prometheus's own. Without the
//! kit or the binary the test fails under CI (`CI=true`) and is skipped, saying so, elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::get_json as get;
use serde_json::Value;

const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/peers");

fn skip_or_fail(what: &str) -> bool {
    common::skip_or_fail("datasource proxy test against Prometheus", what)
}

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

fn post_form(url: &str, form: &str) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    })
}

#[test]
fn queries_reach_an_external_prometheus() {
    let kit = Path::new(PEERS).to_path_buf();
    if !kit.join("start-peers.sh").is_file() && skip_or_fail(&format!("{} is missing", kit.display())) {
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
    let prom = "http://127.0.0.1:9190";
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::get(&format!("{prom}/-/ready")).0 != 200 {
        assert!(Instant::now() < deadline, "Prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    let prov = dir.path().join("provisioning/datasources");
    std::fs::create_dir_all(&prov).unwrap();
    std::fs::write(
        prov.join("peer.yaml"),
        format!(
            "apiVersion: 1\ndatasources:\n  - name: Peer Prometheus\n    uid: peer\n    type: prometheus\n    \
             access: proxy\n    url: {prom}\n    jsonData:\n      timeInterval: 15s\n      httpMethod: POST\n"
        ),
    )
    .unwrap();
    let vigil = common::start(
        "scrape_configs: []\n",
        &[&format!("--provisioning.dir={}", dir.path().join("provisioning").display())],
    );
    let base = vigil.base.clone();

    // Both datasources are listed, Grafana's shape; Vigil's own is the default.
    let (_, list) = get(&format!("{base}/api/datasources"));
    let uids: Vec<&str> = list.as_array().unwrap().iter().map(|d| d["uid"].as_str().unwrap()).collect();
    assert_eq!(uids, ["vigil", "peer"]);
    assert_eq!(list[0]["isDefault"], true);
    assert_eq!(list[1]["jsonData"]["timeInterval"], "15s");

    // The same range query, to Prometheus directly and through the proxy (GET and POST).
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let q = format!("query=vector(42)%20%2B%20time()%20*%200&start={}&end={}&step=60", now - 600, now);
    let (s, direct) = get(&format!("{prom}/api/v1/query_range?{q}"));
    assert_eq!(s, 200, "{direct}");
    assert_eq!(direct["status"], "success");
    let (s, via) = get(&format!("{base}/api/datasources/proxy/uid/peer/api/v1/query_range?{q}"));
    assert_eq!((s, &via), (200, &direct));
    let (s, via) = post_form(&format!("{base}/api/datasources/proxy/uid/peer/api/v1/query_range"), &q);
    assert_eq!((s, &via), (200, &direct));
    // Prometheus's own errors come back as they are.
    let (s, err) = get(&format!("{base}/api/datasources/proxy/uid/peer/api/v1/query?query=sum(("));
    assert_eq!(s, 400);
    assert_eq!(err["errorType"], "bad_data");
    // Vigil's own uid answers here; unknown uids and non-query paths are refused.
    let (s, own) = get(&format!("{base}/api/datasources/proxy/uid/vigil/api/v1/query?query=vector(7)"));
    assert_eq!(s, 200, "{own}");
    assert_eq!(own["data"]["result"][0]["value"][1], "7");
    assert_eq!(get(&format!("{base}/api/datasources/proxy/uid/nope/api/v1/query?query=1")).0, 404);
    assert_eq!(
        post_form(&format!("{base}/api/datasources/proxy/uid/peer/api/v1/admin/tsdb/snapshot"), "").0,
        403
    );

    // A dashboard panel that names the external datasource draws from it: a series written only
    // to Prometheus shows on that panel and not on the one reading Vigil's own storage.
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let req = vigil::api::prompb::WriteRequest {
        timeseries: vec![vigil::api::prompb::TimeSeries {
            labels: vec![
                vigil::api::prompb::Label { name: "__name__".into(), value: "peer_only_metric".into() },
                vigil::api::prompb::Label { name: "job".into(), value: "peer".into() },
            ],
            samples: vec![
                vigil::api::prompb::Sample { value: 5.0, timestamp: ms - 60_000 },
                vigil::api::prompb::Sample { value: 6.0, timestamp: ms },
            ],
        }],
    };
    let body = snap::raw::Encoder::new().compress_vec(&prost::Message::encode_to_vec(&req)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{prom}/api/v1/write"))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert!(status == 204 || status == 200, "remote write to Prometheus: {status}");
    let dash = serde_json::json!({"dashboard": {"uid": "ext", "title": "External", "time": {"from": "now-15m", "to": "now"}, "panels": [
        {"id": 1, "type": "timeseries", "title": "peer", "datasource": {"type": "prometheus", "uid": "peer"}, "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
         "targets": [{"refId": "A", "expr": "peer_only_metric", "legendFormat": "from-peer-{{job}}"}]},
        {"id": 2, "type": "timeseries", "title": "own", "gridPos": {"x": 12, "y": 0, "w": 12, "h": 8},
         "targets": [{"refId": "A", "expr": "peer_only_metric", "legendFormat": "from-vigil"}]}
    ]}});
    let saved = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/api/dashboards/db"))
            .header("Content-Type", "application/json")
            .body(dash.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(saved, 200);
    let page = rt.block_on(async {
        reqwest::get(format!("{base}/d/ext/external")).await.unwrap().text().await.unwrap()
    });
    // Legend rows are `<span class="swatch" …></span>NAME`.
    assert!(page.contains("></span>from-peer-peer"), "the panel on the external datasource shows its series");
    assert!(!page.contains("></span>from-vigil"), "Vigil's own storage has no such series");
}
