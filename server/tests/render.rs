//! `/render/d-solo/…` through the real binary: a saved dashboard's time series panel comes back
//! as a PNG of the asked size with the series' colour in it, or as an SVG with its path; a
//! failing query still gives an image (and says why in a header); sizes past the limit, missing
//! dashboards and panels, and panels without an image are refused with a clear message.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

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
        if get(&format!("{}/-/ready", v.base)).0 == 200 {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("vigil did not become ready");
}

/// Status, headers and body of a GET (status 0 when the server cannot be reached).
fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    rt().block_on(async {
        match reqwest::get(url).await {
            Ok(r) => (r.status().as_u16(), r.headers().clone(), r.bytes().await.unwrap().to_vec()),
            Err(_) => (0, Default::default(), Vec::new()),
        }
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Pixels within 16 of `color` in every channel (lines are anti-aliased).
fn near(rgb: &[u8], color: [u8; 3]) -> usize {
    rgb.chunks_exact(3).filter(|p| p.iter().zip(color).all(|(a, b)| a.abs_diff(b) <= 16)).count()
}

#[test]
fn panel_images() {
    let dir = tempfile::tempdir().unwrap();
    let v = start(dir.path());
    let b = &v.base;
    let dash = json!({
        "uid": "img-1", "title": "Images", "schemaVersion": 39, "version": 0,
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{"name": "level", "type": "custom", "query": "5,9",
            "current": {"text": "5", "value": "5"}}]},
        "panels": [
            // Known data without waiting for scrapes: two constant series, the second from a
            // variable. Series 0 is the classic palette's #7EB26D, series 1 #EAB839.
            {"id": 1, "type": "timeseries", "title": "Levels $level", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
             "targets": [{"refId": "A", "expr": "vector(1)", "legendFormat": "one"},
                         {"refId": "B", "expr": "vector($level)", "legendFormat": "level"}]},
            {"id": 2, "type": "timeseries", "title": "Broken", "gridPos": {"x": 12, "y": 0, "w": 12, "h": 8},
             "targets": [{"refId": "A", "expr": "sum(rate(x[5m]"}]},
            {"id": 3, "type": "text", "title": "Notes", "gridPos": {"x": 0, "y": 8, "w": 12, "h": 4},
             "options": {"content": "hello"}}
        ]
    });
    let client = reqwest::Client::new();
    let saved = rt().block_on(async {
        let r = client
            .post(format!("{b}/api/dashboards/db"))
            .header("Content-Type", "application/json")
            .body(json!({"dashboard": dash}).to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(saved.0, 200, "{}", saved.1);

    // The PNG, at the asked size, with both series drawn.
    let (s, h, body) =
        get(&format!("{b}/render/d-solo/img-1/images?panelId=1&width=600&height=300&var-level=9"));
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(h["content-type"], "image/png");
    assert!(h["cache-control"].to_str().unwrap().contains("max-age="));
    let (w, hgt, rgb) = decode(&body);
    assert_eq!((w, hgt), (600, 300));
    let green = near(&rgb, [0x7e, 0xb2, 0x6d]);
    let yellow = near(&rgb, [0xea, 0xb8, 0x39]);
    assert!(green > 300 && yellow > 300, "series pixels: green {green}, yellow {yellow}");

    // Defaults: 1000×500; the slug is optional; dark theme paints Grafana's dark background.
    let (s, _, body) = get(&format!("{b}/render/d-solo/img-1?panelId=1&theme=dark"));
    assert_eq!(s, 200);
    let (w, hgt, rgb) = decode(&body);
    assert_eq!((w, hgt), (1000, 500));
    assert!(near(&rgb, [0x18, 0x1b, 0x1f]) > 1000 * 250);

    // SVG: the same drawing as a document with the series path.
    let (s, h, body) =
        get(&format!("{b}/render/d-solo/img-1/images?panelId=1&format=svg&width=400&height=200"));
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], "image/svg+xml");
    let svg = String::from_utf8(body).unwrap();
    assert!(svg.starts_with("<svg") && (svg.contains("<polyline") || svg.contains("<path")), "{svg}");
    assert!(svg.contains("Levels 5") && svg.contains("\nlevel\n"), "title and legend: {svg}");

    // A signed embed link's fixed variables win over the URL's.
    let svg_of = |q: &str| {
        let (s, _, body) = get(&format!("{b}/render/d-solo/img-1/images?panelId=1&format=svg&{q}"));
        assert_eq!(s, 200, "{q}");
        String::from_utf8(body).unwrap()
    };
    assert!(svg_of("var-level=9").contains("Levels 9"));
    let token = rt().block_on(async {
        let r = client
            .post(format!("{b}/api/embed/tokens"))
            .header("Content-Type", "application/json")
            .body(json!({"uid": "img-1", "panelId": 1, "vars": {"level": ["5"]}}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        v["token"].as_str().unwrap().to_string()
    });
    assert!(svg_of(&format!("var-level=9&token={token}")).contains("Levels 5"));

    // A failing query still draws (with the error), and says why in a header.
    let (s, h, body) = get(&format!("{b}/render/d-solo/img-1/images?panelId=2&width=400&height=200"));
    assert_eq!(s, 200);
    assert!(h["x-vigil-panel-error"].to_str().unwrap().starts_with("A: "), "{h:?}");
    let (_, _, rgb) = decode(&body);
    assert!(near(&rgb, [0xe0, 0x2f, 0x44]) > 30, "error text drawn");

    // Refusals, with messages.
    let refused = |q: &str, status: u16, says: &str| {
        let (s, _, body) = get(&format!("{b}{q}"));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(s, status, "{q}: {text}");
        assert!(text.contains(says), "{q}: {text}");
    };
    refused("/render/d-solo/img-1/images?panelId=1&width=5000", 400, "1..=3000");
    refused("/render/d-solo/img-1/images?panelId=1&height=0", 400, "1..=3000");
    refused("/render/d-solo/img-1/images?width=100", 400, "panelId is required");
    refused("/render/d-solo/img-1/images?panelId=1&format=gif", 400, "png or svg");
    refused("/render/d-solo/img-1/images?panelId=3", 400, "\\\"text\\\" panel");
    refused("/render/d-solo/img-1/images?panelId=42", 404, "no panel with id 42");
    refused("/render/d-solo/nope/x?panelId=1", 404, "dashboard \\\"nope\\\" not found");
}
