//! Issue 7's server side through the real binary: Grafana dashboards imported and exported over
//! HTTP, dashboards and datasources provisioned from Grafana's files (and reloaded when a file
//! changes), editors and anonymous viewers, cross-site writes refused, the framing policy of
//! pages, and signed embed links.

use std::path::Path;
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

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grafana").join(name);
    std::fs::read_to_string(path).unwrap()
}

fn start(dir: &Path, config: &str) -> Vigil {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config_path = dir.join("vigil.yml");
    std::fs::write(&config_path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--provisioning.dir={}", dir.join("provisioning").display()))
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

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

fn call(method: &str, url: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Answer {
    rt().block_on(async {
        let c = reqwest::Client::new();
        let mut req = match method {
            "GET" => c.get(url),
            "POST" => c.post(url),
            "DELETE" => c.delete(url),
            _ => unreachable!(),
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Answer { status, headers, text: r.text().await.unwrap() }
    })
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn import_export_and_provisioning() {
    let dir = tempfile::tempdir().unwrap();
    let prov = dir.path().join("provisioning");
    std::fs::create_dir_all(prov.join("dashboards/files")).unwrap();
    std::fs::create_dir_all(prov.join("datasources")).unwrap();
    std::fs::write(
        prov.join("dashboards/team.yaml"),
        "apiVersion: 1\nproviders:\n  - name: team\n    folder: Team\n    type: file\n    updateIntervalSeconds: 1\n    \
         options:\n      path: files\n",
    )
    .unwrap();
    std::fs::write(prov.join("dashboards/files/node.json"), fixture("node-exporter-classic.json")).unwrap();
    std::fs::write(
        prov.join("datasources/ds.yaml"),
        "apiVersion: 1\ndatasources:\n  - name: Vigil\n    uid: vigil\n    type: prometheus\n    url: http://localhost:9090\n    \
         isDefault: true\n    jsonData:\n      timeInterval: 5s\n",
    )
    .unwrap();
    let v = start(dir.path(), "scrape_configs: []\n");
    let b = &v.base;

    // Import a Grafana 10 export with its inputs: Grafana's answer shape.
    let dashboard: Value = serde_json::from_str(&fixture("service-grafana10.json")).unwrap();
    let req = json!({"dashboard": dashboard, "overwrite": false, "folderUid": "",
        "inputs": [{"name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus", "value": "vigil"},
                   {"name": "VAR_JOB", "type": "constant", "value": "checkout"}]});
    let a = call("POST", &format!("{b}/api/dashboards/import"), Some(&req), &[]);
    assert_eq!(a.status, 200, "{}", a.text);
    let got = a.json();
    assert_eq!(got["uid"], "svc-overview");
    assert_eq!(got["imported"], true);
    assert_eq!(got["importedUrl"], "/d/svc-overview/service-overview");
    assert_eq!(got["title"], "Service overview");

    let a = call("GET", &format!("{b}/api/dashboards/uid/svc-overview"), None, &[]);
    let d = &a.json()["dashboard"];
    assert!(d.get("__inputs").is_none() && d.get("__requires").is_none() && d.get("__elements").is_none());
    assert_eq!(d["panels"][0]["datasource"], json!({"type": "prometheus", "uid": "vigil"}));
    assert_eq!(d["panels"][0]["title"], "Requests by status (checkout)");
    assert_eq!(d["panels"][1]["type"], "stat", "library panel in place");

    // Same uid again: refused unless overwrite.
    let a = call("POST", &format!("{b}/api/dashboards/import"), Some(&req), &[]);
    assert_eq!(a.status, 412, "{}", a.text);
    assert!(a.json()["message"].as_str().unwrap().contains("overwrite"), "{}", a.text);
    let mut again = req.clone();
    again["overwrite"] = json!(true);
    let a = call("POST", &format!("{b}/api/dashboards/import"), Some(&again), &[]);
    assert_eq!((a.status, a.json()["version"].as_i64()), (200, Some(2)), "{}", a.text);

    // Problems by JSON path.
    let bad = json!({"dashboard": {"title": "Bad", "panels": [{"type": "graph", "targets": [{"expr": 5}]}]}});
    let a = call("POST", &format!("{b}/api/dashboards/import"), Some(&bad), &[]);
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["problems"][0]["path"], "panels[0].targets[0].expr");

    // Export drops the id; externally adds the input back.
    let a = call("GET", &format!("{b}/api/dashboards/uid/svc-overview/export"), None, &[]);
    let e = a.json();
    assert!(e.get("id").is_none(), "{e}");
    assert_eq!(e["uid"], "svc-overview");
    let a = call("GET", &format!("{b}/api/dashboards/uid/svc-overview/export?externally=true"), None, &[]);
    assert_eq!(a.json()["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(call("GET", &format!("{b}/api/dashboards/uid/nope/export"), None, &[]).status, 404);

    // The classic dashboard was provisioned from its file, read-only, and renders as a page.
    let a = call("GET", &format!("{b}/api/dashboards/uid/node-classic"), None, &[]);
    assert_eq!(a.status, 200, "{}", a.text);
    let got = a.json();
    assert_eq!(got["meta"]["provisioned"], true);
    assert_eq!(got["meta"]["canSave"], false);
    assert_eq!(got["dashboard"]["panels"][0]["datasource"], json!({"type": "prometheus", "uid": "vigil"}));
    let save = json!({"dashboard": got["dashboard"], "overwrite": true});
    let a = call("POST", &format!("{b}/api/dashboards/db"), Some(&save), &[]);
    assert_eq!(a.status, 400);
    assert!(a.json()["message"].as_str().unwrap().contains("allowUiUpdates"), "{}", a.text);
    let page = call("GET", &format!("{b}/d/node-classic/node-exporter-classic"), None, &[]);
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Memory") && page.text.contains("CPU busy"), "panels render");
    // Pages may be framed by Vigil itself only.
    assert_eq!(page.headers["content-security-policy"], "frame-ancestors 'self'");
    assert_eq!(page.headers["x-frame-options"], "SAMEORIGIN");
    let api = call("GET", &format!("{b}/api/search"), None, &[]);
    assert!(api.headers.get("x-frame-options").is_none());

    // Changing the file changes the dashboard within the provider's interval.
    let changed = fixture("node-exporter-classic.json").replace("Node Exporter (classic)", "Node hosts");
    std::fs::write(prov.join("dashboards/files/node.json"), changed).unwrap();
    wait_for("the provisioned dashboard to reload", || {
        call("GET", &format!("{b}/api/dashboards/uid/node-classic"), None, &[]).json()["dashboard"]["title"]
            == "Node hosts"
    });
    // Removing it takes it out.
    std::fs::remove_file(prov.join("dashboards/files/node.json")).unwrap();
    wait_for("the provisioned dashboard to go", || {
        call("GET", &format!("{b}/api/dashboards/uid/node-classic"), None, &[]).status == 404
    });
}

#[test]
fn editors_viewers_embedding_and_signed_links() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"vigil-test-salt!").unwrap();
    let hash = argon2::Argon2::default().hash_password(b"correct horse", &salt).unwrap().to_string();
    let token = "editor-token-0123456789";
    let config = format!(
        "scrape_configs: []\nvigil:\n  auth:\n    editor_tokens: [{token}]\n    users:\n      - name: ann\n        \
         password_hash: \"{hash}\"\n  web:\n    embedding:\n      allowed_origins: [https://wiki.example.com]\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let v = start(dir.path(), &config);
    let b = &v.base;
    let bearer = format!("Bearer {token}");
    let dash = json!({"dashboard": {"uid": "emb", "title": "Embedded", "panels": [
        {"id": 1, "type": "timeseries", "title": "Up", "targets": [{"refId": "A", "expr": "up"}]},
        {"id": 2, "type": "stat", "title": "Count", "targets": [{"refId": "A", "expr": "count(up)"}]}]}});

    // Writes need an editor, even on loopback once editors are configured.
    let a = call("POST", &format!("{b}/api/dashboards/import"), Some(&dash), &[]);
    assert_eq!(a.status, 401, "{}", a.text);
    assert!(a.json()["message"].as_str().unwrap().contains("editor_tokens"), "{}", a.text);
    let a = call(
        "POST",
        &format!("{b}/api/dashboards/import"),
        Some(&dash),
        &[("Authorization", "Bearer wrong")],
    );
    assert_eq!(a.status, 401);
    // A cross-site request cannot write, whatever it carries.
    let a = call(
        "POST",
        &format!("{b}/api/dashboards/import"),
        Some(&dash),
        &[("Authorization", &bearer), ("Origin", "https://evil.example")],
    );
    assert_eq!(a.status, 403, "{}", a.text);
    let a = call(
        "POST",
        &format!("{b}/api/dashboards/import"),
        Some(&dash),
        &[("Authorization", &bearer), ("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(a.status, 403);
    let a = call("POST", &format!("{b}/api/dashboards/import"), Some(&dash), &[("Authorization", &bearer)]);
    assert_eq!(a.status, 200, "{}", a.text);
    // Basic auth against the argon2 hash works too; lifecycle endpoints are guarded the same way.
    let basic = format!("Basic {}", base64_encode("ann:correct horse"));
    let a = call("DELETE", &format!("{b}/api/dashboards/uid/nothing"), None, &[("Authorization", &basic)]);
    assert_eq!(a.status, 404, "authorised, then not found: {}", a.text);
    assert_eq!(call("POST", &format!("{b}/-/reload"), None, &[]).status, 401);

    // Reads stay anonymous; queries are reads even as POST.
    assert_eq!(call("GET", &format!("{b}/api/dashboards/uid/emb"), None, &[]).status, 200);
    assert_eq!(call("POST", &format!("{b}/api/v1/query?query=1"), None, &[]).status, 200);
    // The token is not shown in the configuration.
    let a = call("GET", &format!("{b}/api/v1/status/config"), None, &[]);
    assert!(!a.text.contains(token) && !a.text.contains("argon2id"), "{}", a.text);
    assert!(a.text.contains("<secret>"), "{}", a.text);

    // Pages may be framed by the allowed origin.
    let page = call("GET", &format!("{b}/d/emb/embedded"), None, &[]);
    assert_eq!(page.headers["content-security-policy"], "frame-ancestors 'self' https://wiki.example.com");
    assert!(page.headers.get("x-frame-options").is_none());

    // Signed embed links: editors only, for a dashboard and panel that exist.
    let req = json!({"uid": "emb", "panelId": 2, "vars": {"instance": ["a:1"]}, "expiresInSeconds": 600});
    assert_eq!(call("POST", &format!("{b}/api/embed/tokens"), Some(&req), &[]).status, 401);
    let a = call("POST", &format!("{b}/api/embed/tokens"), Some(&req), &[("Authorization", &bearer)]);
    assert_eq!(a.status, 200, "{}", a.text);
    let link = a.json();
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with("/d-solo/emb/embedded?panelId=2&var-instance=a%3A1&token="), "{url}");
    let missing = json!({"uid": "emb", "panelId": 9});
    assert_eq!(
        call("POST", &format!("{b}/api/embed/tokens"), Some(&missing), &[("Authorization", &bearer)]).status,
        404
    );
    let solo = call("GET", &format!("{b}{url}"), None, &[]);
    assert_eq!(solo.status, 200, "{}", solo.text);

    // Without anonymous viewers, the link still reads its dashboard, and nothing else.
    let closed = config.replace("  auth:\n", "  auth:\n    anonymous: false\n");
    drop(v);
    let v = start(dir.path(), &closed);
    let b = &v.base;
    assert_eq!(call("GET", &format!("{b}/api/search"), None, &[]).status, 401);
    assert_eq!(call("GET", &format!("{b}/api/search"), None, &[("Authorization", &bearer)]).status, 200);
    assert_eq!(call("GET", &format!("{b}/-/healthy"), None, &[]).status, 200);
    let t = link["token"].as_str().unwrap();
    assert_eq!(
        call("GET", &format!("{b}{url}"), None, &[]).status,
        200,
        "the signing key survived the restart"
    );
    // A panel's link opens neither another panel nor the whole dashboard, nor another one.
    assert_eq!(call("GET", &format!("{b}/d-solo/emb/embedded?panelId=1&token={t}"), None, &[]).status, 403);
    assert_eq!(call("GET", &format!("{b}/api/dashboards/uid/emb?token={t}"), None, &[]).status, 403);
    assert_eq!(call("GET", &format!("{b}/api/dashboards/uid/vigil?token={t}"), None, &[]).status, 403);
    assert_eq!(call("GET", &format!("{b}/api/v1/query?query=up&token={t}"), None, &[]).status, 403);
    // A link to the whole dashboard reads its JSON too.
    let whole = json!({"uid": "emb", "expiresInSeconds": 60});
    let a = call("POST", &format!("{b}/api/embed/tokens"), Some(&whole), &[("Authorization", &bearer)]);
    let whole_token = a.json()["token"].as_str().unwrap().to_string();
    assert!(a.json()["url"].as_str().unwrap().starts_with("/d/emb/embedded?kiosk="), "{}", a.text);
    assert_eq!(
        call("GET", &format!("{b}/api/dashboards/uid/emb?token={whole_token}"), None, &[]).status,
        200
    );
    let a = call("GET", &format!("{b}/api/dashboards/uid/emb?token={t}x"), None, &[]);
    assert_eq!(a.status, 401);
    assert!(a.json()["message"].as_str().unwrap().contains("signature"), "{}", a.text);
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
