//! Grafana's dashboard HTTP API through the real binary: save, load, version conflicts, search,
//! delete, bad JSON named by path, read-only built-ins, and dashboards surviving a restart.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

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

fn start(dir: &std::path::Path) -> Vigil {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.join("vigil.yml");
    std::fs::write(&config, "scrape_configs: []\n").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let v = Vigil { child, base: format!("http://127.0.0.1:{port}") };
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

fn call(method: &str, url: &str, body: Option<String>) -> (u16, Value) {
    rt().block_on(async {
        let c = reqwest::Client::new();
        let mut req = match method {
            "GET" => c.get(url),
            "POST" => c.post(url),
            "DELETE" => c.delete(url),
            _ => unreachable!(),
        };
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
    })
}

#[test]
fn grafana_dashboard_api() {
    let dir = tempfile::tempdir().unwrap();
    let v = start(dir.path());
    let b = &v.base;
    let dash = json!({
        "uid": "web-1", "title": "Web front", "tags": ["web", "prod"], "schemaVersion": 39, "version": 0,
        "graphTooltip": 1, "liveNow": false,
        "panels": [{"id": 1, "type": "timeseries", "title": "Requests", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
            "targets": [{"refId": "A", "expr": "sum(rate(http_requests_total[5m]))"}], "transparent": true}]
    });
    let (s, saved) = call(
        "POST",
        &format!("{b}/api/dashboards/db"),
        Some(json!({"dashboard": dash, "message": "first"}).to_string()),
    );
    assert_eq!(s, 200, "{saved}");
    assert_eq!(saved["uid"], "web-1");
    assert_eq!(saved["url"], "/d/web-1/web-front");
    assert_eq!(saved["status"], "success");
    assert_eq!(saved["version"], 1);

    let (s, got) = call("GET", &format!("{b}/api/dashboards/uid/web-1"), None);
    assert_eq!(s, 200);
    assert_eq!(got["dashboard"]["title"], "Web front");
    assert_eq!(got["dashboard"]["liveNow"], false, "unknown fields survive");
    assert_eq!(got["dashboard"]["panels"][0]["transparent"], true);
    assert_eq!(got["meta"]["slug"], "web-front");
    assert_eq!(got["meta"]["canSave"], true);

    // A save based on an old version is refused with Grafana's 412 version-mismatch.
    let stale = json!({"dashboard": {"uid": "web-1", "title": "Stale", "version": 0}});
    let (s, err) = call("POST", &format!("{b}/api/dashboards/db"), Some(stale.to_string()));
    assert_eq!(s, 412, "{err}");
    assert_eq!(err["status"], "version-mismatch");
    let fresh = json!({"dashboard": {"uid": "web-1", "title": "Web front", "version": 1, "tags": ["web"]}});
    let (s, saved) = call("POST", &format!("{b}/api/dashboards/db"), Some(fresh.to_string()));
    assert_eq!((s, saved["version"].as_i64()), (200, Some(2)));

    // Bad input: the JSON path of the wrong field, or the position of a syntax error.
    let bad = json!({"dashboard": {"title": "x", "panels": [{}, {}, {}, {"gridPos": {"x": 0, "y": 0, "w": "wide", "h": 8}}]}});
    let (s, err) = call("POST", &format!("{b}/api/dashboards/db"), Some(bad.to_string()));
    assert_eq!(s, 400);
    assert_eq!(err["message"], "invalid dashboard: panels[3].gridPos.w: expected integer, found string");
    let (s, err) = call("POST", &format!("{b}/api/dashboards/db"), Some("{\"dashboard\": {".into()));
    assert_eq!(s, 400);
    assert!(err["message"].as_str().unwrap().contains("line 1 column"), "{err}");
    let (s, _) = call(
        "POST",
        &format!("{b}/api/dashboards/db"),
        Some(json!({"dashboard": {"title": ""}}).to_string()),
    );
    assert_eq!(s, 400);

    // Search: built-ins and the saved one, by text and tag.
    let (_, all) = call("GET", &format!("{b}/api/search"), None);
    let titles: Vec<&str> = all.as_array().unwrap().iter().map(|h| h["title"].as_str().unwrap()).collect();
    assert!(
        titles.contains(&"Vigil") && titles.contains(&"Node") && titles.contains(&"Web front"),
        "{titles:?}"
    );
    let (_, hits) = call("GET", &format!("{b}/api/search?query=web&tag=web"), None);
    assert_eq!(hits.as_array().unwrap().len(), 1);
    assert_eq!(hits[0]["type"], "dash-db");
    let (_, none) = call("GET", &format!("{b}/api/search?tag=prod"), None);
    assert_eq!(none.as_array().unwrap().len(), 0);

    // Built-ins are read-only.
    let (s, err) = call(
        "POST",
        &format!("{b}/api/dashboards/db"),
        Some(json!({"dashboard": {"uid": "vigil", "title": "Mine"}, "overwrite": true}).to_string()),
    );
    assert_eq!(s, 400);
    assert!(err["message"].as_str().unwrap().contains("provisioned"), "{err}");
    let (s, _) = call("DELETE", &format!("{b}/api/dashboards/uid/vigil"), None);
    assert_eq!(s, 400);

    // Saved dashboards survive a restart.
    drop(v);
    let v = start(dir.path());
    let b = &v.base;
    let (s, got) = call("GET", &format!("{b}/api/dashboards/uid/web-1"), None);
    assert_eq!((s, got["dashboard"]["version"].as_i64()), (200, Some(2)));
    let (s, del) = call("DELETE", &format!("{b}/api/dashboards/uid/web-1"), None);
    assert_eq!(s, 200);
    assert_eq!(del["title"], "Web front");
    let (s, _) = call("GET", &format!("{b}/api/dashboards/uid/web-1"), None);
    assert_eq!(s, 404);
}
