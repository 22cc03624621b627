use super::*;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn dash(uid: &str, title: &str) -> String {
    format!(
        r#"{{"uid": "{uid}", "title": "{title}", "panels": [{{"id": 1, "type": "graph", "datasource": "${{DS_PROMETHEUS}}",
            "targets": [{{"refId": "A", "expr": "up"}}]}}]}}"#
    )
}

/// Rewinds a file's mtime so that a rewrite within the same second is still seen as a change
/// by size or time.
fn touch_later(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
}

#[test]
fn compose_example_files_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/compose/provisioning");
    let p = Provisioning::load(&dir);
    let ds = p.datasources();
    assert_eq!(ds.len(), 1);
    assert_eq!(
        (ds[0].name.as_str(), ds[0].uid.as_str(), ds[0].kind.as_str()),
        ("Vigil", "vigil", "prometheus")
    );
    assert!(ds[0].is_default && ds[0].builtin);
    assert_eq!(ds[0].time_interval.as_deref(), Some("5s"));
    assert_eq!(ds[0].http_method.as_deref(), Some("POST"));
    let providers = p.providers();
    assert_eq!(providers.len(), 1);
    let pr = &providers[0];
    assert_eq!((pr.name.as_str(), pr.folder.as_str()), ("vigil-demo", "Demo"));
    assert_eq!(pr.path, PathBuf::from("/etc/vigil/provisioning/dashboards"));
    assert!(!pr.allow_ui_updates && pr.disable_deletion);
    assert_eq!(pr.update_interval, Duration::from_secs(30));
    assert!(p.problems().is_empty(), "{:?}", p.problems());
    // The dashboard in that folder (mounted at the absolute path in the container) provisions.
    let provider = Provider { path: dir.join("dashboards"), ..pr.clone() };
    let store_dir = tempfile::tempdir().unwrap();
    let (store, _) = DashboardStore::open(store_dir.path()).unwrap();
    let mut scan = Scan::default();
    scan_provider(&provider, &mut scan, &store, &[]);
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let e = store.get("image-gallery").unwrap();
    assert_eq!(e.meta.provisioned.as_deref(), Some("provider vigil-demo"));
    assert!(e.read_only());
}

#[test]
fn providers_load_reload_and_report_broken_files() {
    let root = tempfile::tempdir().unwrap();
    let prov = root.path().join("provisioning");
    write(
        &prov.join("dashboards/team.yaml"),
        "apiVersion: 1\nproviders:\n  - name: team\n    folder: Team\n    type: file\n    updateIntervalSeconds: 1\n    \
         allowUiUpdates: false\n    options:\n      path: json\n      foldersFromFilesStructure: true\n",
    );
    write(&prov.join("dashboards/broken.yaml"), "apiVersion: 1\nproviders: [\n");
    write(&prov.join("datasources/ds.yml"), "apiVersion: 1\ndatasources:\n  - name: Remote\n    type: prometheus\n    \
         url: http://prom:9090/\n    jsonData:\n      timeInterval: 30s\n  - name: Logs\n    type: loki\n    url: http://loki\n");
    let json_dir = prov.join("dashboards/json");
    write(&json_dir.join("a.json"), &dash("a", "Alpha"));
    write(&json_dir.join("sub/b.json"), &dash("", "Beta"));
    write(&json_dir.join("bad.json"), "{\"title\": ");
    write(&json_dir.join("notes.txt"), "not a dashboard");
    write(
        &json_dir.join("api.json"),
        &format!(r#"{{"dashboard": {}, "meta": {{"slug": "w"}}}}"#, dash("w", "Wrapped")),
    );

    let store_dir = root.path().join("store");
    let (store, _) = DashboardStore::open(&store_dir).unwrap();
    let p = Provisioning::load(&prov);
    p.sync_dashboards(&store, true);

    let problems = p.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().any(|s| s.contains("broken.yaml")), "{problems:?}");
    assert!(problems.iter().any(|s| s.contains("loki") && s.contains("not supported")), "{problems:?}");
    assert!(problems.iter().any(|s| s.contains("bad.json") && s.contains("invalid JSON")), "{problems:?}");

    let ds = p.datasources();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].url, "http://prom:9090");
    assert_eq!(ds[0].time_interval.as_deref(), Some("30s"));
    assert_eq!(ds[0].uid.len(), 16, "a stable uid is derived from the name");
    assert_eq!(p.known_datasources()[0].name, "Remote");

    assert_eq!(store.get("w").unwrap().dashboard.title, "Wrapped");
    let a = store.get("a").unwrap();
    assert_eq!(a.meta.provisioned.as_deref(), Some("provider team"));
    assert!(a.read_only());
    assert_eq!(a.dashboard.panels[0].datasource, import::vigil_datasource());
    let beta = store.search("Beta", &[]);
    assert_eq!(beta.len(), 1);
    let beta_uid = beta[0].dashboard.uid.clone();
    assert_eq!(beta_uid, stable_uid(&["dashboard", "team", "sub/b.json"]));
    // Saving a provisioned dashboard without allowUiUpdates is refused, saying why.
    let err = store.save(a.dashboard.clone(), true, "").unwrap_err();
    assert!(err.to_string().contains("allowUiUpdates"), "{err}");

    // A change is picked up at the next due sync; a fix clears the problem; a removal unprovisions.
    touch_later(&json_dir.join("a.json"), &dash("a", "Alpha two"));
    touch_later(&json_dir.join("bad.json"), &dash("c", "Gamma"));
    std::fs::remove_file(json_dir.join("sub/b.json")).unwrap();
    p.sync_dashboards(&store, false);
    assert_eq!(store.get("a").unwrap().dashboard.title, "Alpha", "not due yet");
    std::thread::sleep(Duration::from_millis(1100));
    p.sync_dashboards(&store, false);
    assert_eq!(store.get("a").unwrap().dashboard.title, "Alpha two");
    assert_eq!(store.get("c").unwrap().dashboard.title, "Gamma");
    assert!(store.get(&beta_uid).is_none());
    assert_eq!(p.problems().len(), 2, "{:?}", p.problems());

    // A broken edit keeps the last good dashboard and reports the file.
    touch_later(&json_dir.join("a.json"), "{\"uid\": \"a\", \"title\": 1}");
    p.sync_dashboards(&store, true);
    assert_eq!(store.get("a").unwrap().dashboard.title, "Alpha two");
    assert!(p.problems().iter().any(|s| s.contains("a.json") && s.contains("title: expected string")));

    // The provider's YAML going away takes its dashboards out.
    std::fs::remove_file(prov.join("dashboards/team.yaml")).unwrap();
    p.reload_config();
    p.sync_dashboards(&store, true);
    assert!(store.get("a").is_none() && store.get("c").is_none());
    assert!(p.providers().is_empty());
}

#[test]
fn ui_updates_and_deletion_follow_the_provider() {
    let root = tempfile::tempdir().unwrap();
    let prov = root.path().join("p");
    write(
        &prov.join("dashboards/open.yaml"),
        "apiVersion: 1\nproviders:\n  - name: open\n    allowUiUpdates: true\n    disableDeletion: true\n    options:\n      path: d\n",
    );
    write(&prov.join("dashboards/d/x.json"), &dash("x", "X"));
    let (store, _) = DashboardStore::open(&root.path().join("store")).unwrap();
    let p = Provisioning::load(&prov);
    p.sync_dashboards(&store, true);
    let x = store.get("x").unwrap();
    assert!(!x.read_only());
    let mut d = x.dashboard.clone();
    d.title = "Edited".into();
    store.save(d, false, "").unwrap();
    assert!(store.delete("x").is_err(), "disableDeletion");
    // Without its file, the UI's saved copy remains, as a normal dashboard.
    std::fs::remove_file(prov.join("dashboards/d/x.json")).unwrap();
    p.sync_dashboards(&store, true);
    let x = store.get("x").unwrap();
    assert_eq!((x.dashboard.title.as_str(), x.meta.provisioned.clone()), ("Edited", None));
}

#[test]
fn missing_directory_is_fine_and_env_is_expanded() {
    let p = Provisioning::load(Path::new("/no/such/provisioning"));
    assert!(p.problems().is_empty() && p.datasources().is_empty());
    std::env::set_var("VIGIL_TEST_PROM_URL", "http://remote:9090");
    assert_eq!(
        expand_env("url: ${VIGIL_TEST_PROM_URL}/x ${not valid} $${"),
        "url: http://remote:9090/x ${not valid} $${"
    );
}
