//! The Prometheus HTTP API through the real binary: remote write in, metadata endpoints out,
//! in the shapes Grafana's Prometheus data source sends and expects.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil::api::prompb::{Label, Sample, TimeSeries, WriteRequest};

struct Vigil {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Vigil {
    start_with(&[])
}

fn start_with(flags: &[&str]) -> Vigil {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // No targets: only what the test writes is stored. A one-minute out-of-order window.
    let config = dir.path().join("vigil.yml");
    std::fs::write(&config, "scrape_configs: []\nstorage:\n  tsdb:\n    out_of_order_time_window: 1m\n")
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .args(flags)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let v = Vigil { child, base: format!("http://127.0.0.1:{port}"), _dir: dir };
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

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| Label { name: n.to_string(), value: v.to_string() }).collect(),
        samples: samples.iter().map(|&(t, v)| Sample { value: v, timestamp: t }).collect(),
    }
}

fn write(base: &str, req: &WriteRequest) -> (u16, String) {
    let body = snap::raw::Encoder::new().compress_vec(&prost::Message::encode_to_vec(req)).unwrap();
    rt().block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/v1/write"))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

fn get_json(url: &str) -> (u16, Value) {
    rt().block_on(async {
        let r = reqwest::get(url).await.unwrap();
        (r.status().as_u16(), serde_json::from_str(&r.text().await.unwrap()).unwrap())
    })
}

fn post_form(url: &str, form: &str) -> (u16, Value) {
    rt().block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), serde_json::from_str(&r.text().await.unwrap()).unwrap())
    })
}

#[test]
fn remote_write_then_metadata_endpoints() {
    let v = start();
    let req = WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "http_requests_total"), ("job", "api"), ("code", "200")],
                &[(1000, 1.0), (16_000, 5.0)],
            ),
            series(&[("__name__", "http_requests_total"), ("job", "api"), ("code", "500")], &[(1000, 0.0)]),
            series(&[("__name__", "temperature"), ("job", "sensor")], &[(1000, 21.5)]),
        ],
    };
    assert_eq!(write(&v.base, &req), (204, String::new()));

    // Same samples again with a different value at an existing timestamp: refused, named.
    let dup = WriteRequest {
        timeseries: vec![series(&[("__name__", "temperature"), ("job", "sensor")], &[(1000, 99.0)])],
    };
    let (code, text) = write(&v.base, &dup);
    assert_eq!(code, 400);
    assert!(text.contains("duplicate"), "{text}");
    // Older than the newest sample: inside the configured window accepted, beyond it refused.
    let late =
        |t| WriteRequest { timeseries: vec![series(&[("__name__", "late"), ("job", "x")], &[(t, 1.0)])] };
    assert_eq!(write(&v.base, &late(200_000)).0, 204);
    assert_eq!(write(&v.base, &late(150_000)).0, 204, "50 s late, window 1 m");
    let (code, text) = write(&v.base, &late(100_000));
    assert_eq!(code, 400, "100 s late");
    assert!(text.contains("out of order"), "{text}");
    let (code, text) = write(&v.base, &WriteRequest { timeseries: vec![] });
    assert_eq!((code, text.as_str()), (204, ""));
    let bad = rt().block_on(async {
        reqwest::Client::new().post(format!("{}/api/v1/write", v.base)).body("nope").send().await.unwrap()
    });
    assert_eq!(bad.status().as_u16(), 400);

    let (code, body) = get_json(&format!("{}/api/v1/labels", v.base));
    assert_eq!(code, 200);
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"], serde_json::json!(["__name__", "code", "job"]));

    // Grafana posts form bodies.
    let (_, body) =
        post_form(&format!("{}/api/v1/labels", v.base), "match%5B%5D=temperature&start=0&end=100");
    assert_eq!(body["data"], serde_json::json!(["__name__", "job"]));

    let (_, body) = get_json(&format!("{}/api/v1/label/__name__/values", v.base));
    assert_eq!(body["data"], serde_json::json!(["http_requests_total", "late", "temperature"]));
    let (_, body) = get_json(&format!("{}/api/v1/label/code/values?match[]=http_requests_total", v.base));
    assert_eq!(body["data"], serde_json::json!(["200", "500"]));

    let (_, body) = post_form(
        &format!("{}/api/v1/series", v.base),
        "match%5B%5D=http_requests_total%7Bcode%3D%22200%22%7D&start=0&end=100",
    );
    assert_eq!(
        body["data"],
        serde_json::json!([{"__name__": "http_requests_total", "code": "200", "job": "api"}])
    );
    // Time range applies: no sample of the 500 series after 10 s.
    let (_, body) = get_json(&format!("{}/api/v1/series?match[]=http_requests_total&start=10", v.base));
    assert_eq!(body["data"].as_array().unwrap().len(), 1);

    let (code, body) = get_json(&format!("{}/api/v1/series", v.base));
    assert_eq!(code, 400);
    assert_eq!(body["errorType"], "bad_data");
    let (code, body) = get_json(&format!("{}/api/v1/series?match[]=up{{", v.base));
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("match[]"), "{body}");

    // PromQL through the API, as Grafana asks: instant and range, form bodies, errors typed.
    let (code, body) = get_json(&format!("{}/api/v1/query?query=sum(http_requests_total)&time=20", v.base));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "vector");
    // At t=20 s the 200 series has 5 (t=16 s) and the 500 series 0 (t=1 s, within lookback).
    assert_eq!(body["data"]["result"][0]["value"], serde_json::json!([20, "5"]));
    let (code, body) = post_form(
        &format!("{}/api/v1/query_range", v.base),
        "query=http_requests_total%7Bcode%3D%22200%22%7D&start=0&end=30&step=15",
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    assert_eq!(body["data"]["result"][0]["values"], serde_json::json!([[15, "1"], [30, "5"]]));
    assert_eq!(body["data"]["result"][0]["metric"]["code"], "200");
    let (code, body) = get_json(&format!("{}/api/v1/query?query=sum(", v.base));
    assert_eq!((code, body["errorType"].as_str()), (400, Some("bad_data")));
    let (code, body) = get_json(&format!("{}/api/v1/query_range?query=up&start=0&end=100000&step=1", v.base));
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("11,000 points"), "{body}");
    let (code, _) = get_json(&format!("{}/api/v1/query?query=scalar(temperature)&time=5", v.base));
    assert_eq!(code, 200);

    let (_, body) = get_json(&format!("{}/api/v1/status/tsdb", v.base));
    assert_eq!(body["data"]["headStats"]["numSeries"], 4);
    assert_eq!(
        body["data"]["seriesCountByMetricName"][0],
        serde_json::json!({"name": "http_requests_total", "value": 2})
    );

    let (_, body) = get_json(&format!("{}/api/v1/status/buildinfo", v.base));
    assert!(body["data"]["version"].is_string());
    let (_, body) = get_json(&format!("{}/api/v1/status/flags", v.base));
    assert_eq!(body["data"]["storage.tsdb.retention.time"], "2w1d");
    let (_, body) = get_json(&format!("{}/api/v1/targets", v.base));
    assert_eq!(body["data"]["activeTargets"], serde_json::json!([]));
    let (_, body) = get_json(&format!("{}/api/v1/status/config", v.base));
    assert!(body["data"]["yaml"].as_str().unwrap().contains("scrape_configs"));
}

#[test]
fn query_limits_answer_with_prometheus_error_types() {
    let v = start_with(&["--query.max-samples=50"]);
    let samples: Vec<(i64, f64)> = (0..100).map(|i| (i * 1000, i as f64)).collect();
    let req = WriteRequest { timeseries: vec![series(&[("__name__", "x")], &samples)] };
    assert_eq!(write(&v.base, &req).0, 204);

    // 100 samples in one range vector: over the limit, 422 `execution`, as Prometheus answers.
    let (code, body) = get_json(&format!("{}/api/v1/query?query=x[1m]&time=99", v.base));
    assert_eq!((code, body["errorType"].as_str()), (422, Some("execution")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("too many samples"), "{body}");
    // 40 fit; the server is still there.
    let (code, body) = get_json(&format!("{}/api/v1/query?query=x[40s]&time=99", v.base));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["result"][0]["values"].as_array().unwrap().len(), 40);

    // A per-query timeout of zero: 503 `timeout`.
    let (code, body) = get_json(&format!("{}/api/v1/query?query=x&time=99&timeout=0", v.base));
    assert_eq!((code, body["errorType"].as_str()), (503, Some("timeout")), "{body}");
    let (code, _) = get_json(&format!("{}/api/v1/query?query=x&time=99", v.base));
    assert_eq!(code, 200);
}
