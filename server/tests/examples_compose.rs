//! examples/compose cannot be run here (no Docker engine), so this test checks what can be
//! checked without one: every file parses, the configuration is accepted by the built binary's
//! `vigil check config`, the compose file has the services and replicas the README promises,
//! the provisioning files point at each other, the dashboard has its panels on the 24-column
//! grid with valid PromQL, and the Dockerfile's tool versions match the ones the build needs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn compose_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/compose")
}

fn read(rel: &str) -> String {
    let path = compose_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str::<Value>(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

#[test]
fn compose_file_has_the_demo_services() {
    let c = yaml("docker-compose.yml");
    let services = c["services"].as_object().expect("services");
    let names: HashSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, HashSet::from(["image-gallery", "iotd", "access-log", "vigil"]));
    assert_eq!(c["services"]["access-log"]["deploy"]["replicas"], 3);
    for (name, s) in services {
        assert_eq!(s["build"]["dockerfile"], "examples/compose/Dockerfile", "{name}");
        assert_eq!(s["build"]["context"], "../..", "{name}");
        let command: Vec<&str> = s["command"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        if name == "vigil" {
            assert!(command.contains(&"--config.file=/etc/vigil/prometheus.yml"), "{command:?}");
        } else {
            // The service names in the compose file are the job names and DNS names of prometheus.yml.
            assert_eq!(command[..2], ["demo", format!("--serve={name}").as_str()], "{name}");
        }
    }
    let volumes: Vec<&str> =
        c["services"]["vigil"]["volumes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(volumes.contains(&"./prometheus.yml:/etc/vigil/prometheus.yml:ro"), "{volumes:?}");
    assert!(volumes.contains(&"./provisioning:/etc/vigil/provisioning:ro"), "{volumes:?}");
}

#[test]
fn prometheus_yml_discovers_access_log_by_dns() {
    let c = yaml("prometheus.yml");
    let jobs = c["scrape_configs"].as_array().unwrap();
    let job =
        |name: &str| jobs.iter().find(|j| j["job_name"] == name).unwrap_or_else(|| panic!("job {name}"));
    assert_eq!(job("image-gallery")["static_configs"][0]["targets"][0], "image-gallery:8080");
    assert_eq!(job("iotd")["metrics_path"], "/actuator/prometheus");
    let dns = &job("access-log")["dns_sd_configs"][0];
    assert_eq!(
        (&dns["names"][0], &dns["type"], &dns["port"]),
        (&"access-log".into(), &"A".into(), &8080.into())
    );
}

#[test]
fn vigil_check_config_accepts_prometheus_yml() {
    let path = compose_dir().join("prometheus.yml");
    let out =
        Command::new(env!("CARGO_BIN_EXE_vigil")).args(["check", "config"]).arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "vigil check config rejected {}:\n{stdout}", path.display());
    assert!(stdout.contains("SUCCESS") && stdout.contains("(3 scrape jobs)"), "{stdout}");
}

#[test]
fn provisioning_files_point_at_the_dashboard_and_datasource() {
    let providers = yaml("provisioning/dashboards/vigil.yaml");
    assert_eq!(providers["apiVersion"], 1);
    let p = &providers["providers"][0];
    assert_eq!(p["type"], "file");
    // The compose file mounts ./provisioning at /etc/vigil/provisioning.
    assert_eq!(p["options"]["path"], "/etc/vigil/provisioning/dashboards");

    let sources = yaml("provisioning/datasources/vigil.yaml");
    assert_eq!(sources["apiVersion"], 1);
    let ds = &sources["datasources"][0];
    assert_eq!(ds["type"], "prometheus");
    assert_eq!(ds["url"], "http://vigil:9090");
    let dashboard: Value = serde_json::from_str(&read("provisioning/dashboards/image-gallery.json")).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    for p in panels {
        assert_eq!(
            p["datasource"]["uid"], ds["uid"],
            "panel {} names the provisioned datasource",
            p["title"]
        );
    }
}

#[test]
fn image_gallery_dashboard_has_its_panels() {
    let text = read("provisioning/dashboards/image-gallery.json");
    assert_eq!(text, vigil::demo::IMAGE_GALLERY_DASHBOARD, "the demo serves this very file");
    let d: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(d["uid"], "image-gallery");
    assert_eq!(d["title"], "Image gallery");
    assert_eq!(d["schemaVersion"], 39);
    let panels = d["panels"].as_array().unwrap();
    let mut exprs = Vec::new();
    let mut cells = HashSet::new();
    let mut ids = HashSet::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert!(ids.insert(p["id"].as_i64().unwrap()), "{title}: duplicate id");
        assert!(matches!(p["type"].as_str(), Some("timeseries" | "stat")), "{title}: {}", p["type"]);
        let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap();
        assert!(["reqps", "bytes", "short", "s", "percentunit"].contains(&unit), "{title}: unit {unit}");
        let g = &p["gridPos"];
        let [x, y, w, h] =
            ["x", "y", "w", "h"].map(|k| g[k].as_i64().unwrap_or_else(|| panic!("{title}: gridPos.{k}")));
        assert!(x >= 0 && w > 0 && h > 0 && x + w <= 24, "{title}: {g}");
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(cells.insert((cx, cy)), "{title} overlaps another panel at ({cx}, {cy})");
            }
        }
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}");
        for (i, t) in targets.iter().enumerate() {
            assert_eq!(t["refId"], ((b'A' + i as u8) as char).to_string(), "{title}");
            assert!(t["legendFormat"].is_string(), "{title}");
            let expr = t["expr"].as_str().unwrap();
            promql_parser::parser::parse(&expr.replace("$__rate_interval", "1m"))
                .unwrap_or_else(|e| panic!("{title}: {expr}: {e}"));
            exprs.push(expr);
        }
    }
    for want in [
        r#"sum(rate(image_gallery_requests_total{code="200"}[$__rate_interval])) without(instance)"#,
        r#"sum(image_gallery_requests_total{code="200"}) without(instance)"#,
        "sum(image_gallery_in_flight_requests) without(instance)",
        r#"go_memstats_stack_inuse_bytes{job="image-gallery"}"#,
        r#"sum(go_goroutines{job="image-gallery"}) without(instance)"#,
        r#"sum by (code) (rate(image_gallery_requests_total{code!="200"}[$__rate_interval]))"#,
        "sum by (instance) (rate(access_log_total[$__rate_interval]))",
    ] {
        assert!(exprs.contains(&want), "no panel queries {want}");
    }
    assert!(exprs
        .iter()
        .any(|e| e.starts_with("histogram_quantile(") && e.contains("http_server_requests_seconds_bucket")));
    assert!(exprs.iter().any(|e| e.contains("rate(http_server_requests_seconds_count")));
}

#[test]
fn dockerfile_is_multi_stage_with_the_build_tool_versions() {
    let docker = read("Dockerfile");
    let arg = |name: &str| {
        docker
            .lines()
            .find_map(|l| l.strip_prefix(&format!("ARG {name}=")))
            .unwrap_or_else(|| panic!("Dockerfile has no ARG {name}"))
            .to_string()
    };
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock")).unwrap();
    let wasm_bindgen = lock
        .split("\n[[package]]\n")
        .find(|p| p.starts_with("name = \"wasm-bindgen\"\n"))
        .and_then(|p| p.lines().nth(1))
        .and_then(|l| l.strip_prefix("version = \""))
        .map(|v| v.trim_end_matches('"'))
        .unwrap();
    assert_eq!(
        arg("WASM_BINDGEN_VERSION"),
        wasm_bindgen,
        "wasm-bindgen-cli must equal Cargo.lock's wasm-bindgen"
    );
    let makefile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Makefile")).unwrap();
    let leptos = makefile.lines().find_map(|l| l.strip_prefix("CARGO_LEPTOS_VERSION := ")).unwrap();
    assert_eq!(arg("CARGO_LEPTOS_VERSION"), leptos.trim());
    assert_eq!(
        docker.lines().filter(|l| l.starts_with("FROM ")).count(),
        2,
        "a build stage and a runtime stage"
    );
    assert!(docker.contains("cargo leptos build --release"), "the UI is built too");
    assert!(docker.contains("COPY --from=build /src/target/site"), "the runtime image carries the UI");
    assert!(read("README.md").contains("examples_compose.rs"), "the README says how this folder is checked");
}
