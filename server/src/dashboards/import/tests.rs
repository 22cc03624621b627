use super::*;

const NODE_CLASSIC: &str = include_str!("../../../tests/fixtures/grafana/node-exporter-classic.json");
const SERVICE_10: &str = include_str!("../../../tests/fixtures/grafana/service-grafana10.json");
const LEGACY_ROWS: &str = include_str!("../../../tests/fixtures/grafana/legacy-rows.json");

fn import(text: &str, inputs: &[ImportInput], known: &[KnownDatasource]) -> Imported {
    let value: Value = serde_json::from_str(text).unwrap();
    normalize(value, inputs, known).unwrap_or_else(|e| panic!("{e:?}"))
}

/// Every `datasource` field anywhere in the JSON.
fn datasources(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(o) => {
            if let Some(d) = o.get("datasource") {
                out.push(d.clone());
            }
            o.values().for_each(|x| datasources(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| datasources(x, out)),
        _ => {}
    }
}

#[test]
fn classic_export_with_inputs_imports_unchanged_otherwise() {
    let imported = import(NODE_CLASSIC, &[], &[]);
    let d = &imported.dashboard;
    assert_eq!(d.uid, "node-classic");
    assert_eq!(d.title, "Node Exporter (classic)");
    assert_eq!(d.id, None, "the store assigns ids");
    let v = serde_json::to_value(d).unwrap();
    for gone in ["__inputs", "__requires", "__elements"] {
        assert!(v.get(gone).is_none(), "{gone} kept");
    }
    // Every Prometheus reference is Vigil's; the annotation's "-- Grafana --" stays.
    let mut all = Vec::new();
    datasources(&v, &mut all);
    assert!(all.contains(&json!("-- Grafana --")));
    for ds in all.iter().filter(|d| **d != json!("-- Grafana --")) {
        assert_eq!(*ds, vigil_datasource());
    }
    assert!(!v.to_string().contains("DS_PROMETHEUS"));
    // Old panel types are kept (the UI maps them); their options reach fieldConfig/options.
    let kinds: Vec<&str> = d.panels.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["singlestat", "singlestat", "graph", "row", "graph", "row"]);
    let cpu = d.panel(2).unwrap();
    assert_eq!(cpu.effective_kind(), "stat");
    assert_eq!(cpu.field_config.defaults.unit.as_deref(), Some("percent"));
    assert_eq!(cpu.field_config.defaults.decimals, Some(1));
    let steps: Vec<(Option<f64>, &str)> = cpu
        .field_config
        .defaults
        .thresholds
        .as_ref()
        .unwrap()
        .steps
        .iter()
        .map(|s| (s.value, s.color.as_str()))
        .collect();
    assert_eq!(steps, [(None, "#299c46"), (Some(80.0), "rgba(237, 129, 40, 0.89)"), (Some(90.0), "#d44a3a")]);
    assert_eq!(cpu.options["reduceOptions"]["calcs"], json!(["lastNotNull"]));
    assert_eq!(cpu.options["graphMode"], "area");
    assert_eq!(cpu.options["colorMode"], "value");
    assert_eq!(cpu.extra["thresholds"], "80,90", "old fields stay for Grafana");
    assert_eq!(d.panel(3).unwrap().options["colorMode"], "background");
    let mem = d.panel(4).unwrap();
    assert_eq!(mem.field_config.defaults.unit.as_deref(), Some("bytes"));
    assert_eq!(mem.field_config.defaults.min, Some(0.0));
    assert_eq!(mem.field_config.defaults.max, None);
    assert_eq!(mem.targets[1].legend_format, "available {{instance}}");
    // "short" is the default unit and is not copied.
    assert_eq!(d.panel(11).unwrap().field_config.defaults.unit.as_deref(), Some("Bps"));
    // The collapsed row keeps its panels nested, normalised too.
    let disks = d.panel(20).unwrap();
    assert_eq!(disks.collapsed, Some(true));
    assert_eq!(disks.panels.len(), 2);
    assert_eq!(disks.panels[1].effective_kind(), "table");
    assert_eq!(disks.panels[0].datasource, vigil_datasource());
    assert_eq!(disks.panels[0].field_config.defaults.unit.as_deref(), Some("Bps"));
    assert_eq!(d.panel(10).unwrap().collapsed, Some(false));
    // The instance variable queries Vigil.
    let instance = d.templating.list.iter().find(|v| v.name == "instance").unwrap();
    assert_eq!(instance.extra["datasource"], vigil_datasource());
    assert_eq!(instance.query_text(), "label_values(node_uname_info{job=\"$job\"}, instance)");
    assert!(instance.multi && instance.include_all);
    // Unknown fields survive.
    assert_eq!(v["gnetId"], 1860);
    assert_eq!(v["panels"][2]["seriesOverrides"], json!([]));
}

#[test]
fn grafana10_objects_library_panels_and_datasource_variable() {
    let imported = import(SERVICE_10, &[], &[]);
    let d = &imported.dashboard;
    let v = serde_json::to_value(d).unwrap();
    let mut all = Vec::new();
    datasources(&v, &mut all);
    for ds in &all {
        assert!(
            *ds == vigil_datasource() || *ds == json!({"type": "grafana", "uid": "-- Grafana --"}),
            "{ds}"
        );
    }
    // The datasource variable is now a hidden constant naming Vigil's datasource.
    let ds_var = d.templating.list.iter().find(|v| v.name == "datasource").unwrap();
    assert_eq!((ds_var.kind.as_str(), ds_var.hide), ("constant", 2));
    assert_eq!(ds_var.query, json!("vigil"));
    // The constant input's default value replaces ${VAR_JOB} everywhere.
    let job = d.templating.list.iter().find(|v| v.name == "job").unwrap();
    assert_eq!(job.query, json!("api"));
    assert_eq!(job.current_values(), ["api"]);
    assert_eq!(d.panel(1).unwrap().title, "Requests by status (api)");
    // The library panel's model is in place, at the dashboard's position.
    let lib = d.panel(2).unwrap();
    assert_eq!((lib.kind.as_str(), lib.title.as_str()), ("stat", "Error ratio"));
    assert_eq!(lib.grid_pos.x, 16);
    assert!(lib.targets[0].expr.contains("5.."));
    assert!(!lib.extra.contains_key("libraryPanel"));
    // A mixed panel whose targets all resolve to Vigil is a Vigil panel.
    assert_eq!(d.panel(3).unwrap().datasource, vigil_datasource());
    assert!(imported.notes.is_empty(), "{:?}", imported.notes);
}

#[test]
fn inputs_choose_values_and_known_external_datasources_stay() {
    let known =
        [KnownDatasource { uid: "ext-prom".into(), name: "Remote".into(), kind: "prometheus".into() }];
    let inputs = [
        ImportInput {
            name: "DS_PROMETHEUS".into(),
            kind: "datasource".into(),
            plugin_id: "prometheus".into(),
            value: "Remote".into(),
        },
        ImportInput {
            name: "VAR_JOB".into(),
            kind: "constant".into(),
            plugin_id: String::new(),
            value: "web".into(),
        },
    ];
    let d = import(SERVICE_10, &inputs, &known).dashboard;
    assert_eq!(d.panel(2).unwrap().datasource, json!({"type": "prometheus", "uid": "ext-prom"}));
    // "${datasource}" is the (only) Vigil choice; a literal "Prometheus" name is Vigil too.
    assert_eq!(d.panel(1).unwrap().datasource, vigil_datasource());
    assert_eq!(d.panel(3).unwrap().targets[0].datasource, vigil_datasource());
    assert_eq!(d.panel(1).unwrap().title, "Requests by status (web)");
}

#[test]
fn legacy_rows_become_grid_panels() {
    let imported = import(LEGACY_ROWS, &[], &[]);
    let d = &imported.dashboard;
    assert!(imported.notes.iter().any(|n| n.contains("rows")));
    let layout: Vec<(i64, &str, i64, i64, i64, i64)> = d
        .panels
        .iter()
        .map(|p| (p.id, p.kind.as_str(), p.grid_pos.x, p.grid_pos.y, p.grid_pos.w, p.grid_pos.h))
        .collect();
    // 250 px → 7 cells; span 6 → 12 columns; rows get fresh ids after the panels'.
    assert_eq!(
        layout,
        [
            (4, "row", 0, 0, 24, 1),
            (1, "graph", 0, 1, 12, 7),
            (2, "singlestat", 12, 1, 12, 7),
            (5, "row", 0, 8, 24, 1)
        ]
    );
    let details = d.panel(5).unwrap();
    assert_eq!(details.collapsed, Some(true));
    assert_eq!(details.panels[0].grid_pos, app::dashboard::GridPos { x: 0, y: 9, w: 24, h: 8 });
    assert_eq!(details.panels[0].datasource, vigil_datasource());
    assert_eq!(details.panels[0].field_config.defaults.unit.as_deref(), Some("percentunit"));
    assert!(d.panels[1].extra.get("span").is_none());
    assert_eq!(d.panel(2).unwrap().options["reduceOptions"]["calcs"], json!(["mean"]));
}

#[test]
fn problems_are_reported_by_path() {
    let bad = json!({"__inputs": [{"label": "x"}], "panels": [{"gridPos": {"w": "wide"}}]});
    let errs = normalize(bad, &[], &[]).unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "__inputs[0].name: missing",
            "title: a dashboard needs a title",
            "panels[0].gridPos.w: expected integer, found string"
        ]
    );
    let errs = normalize(json!([1]), &[], &[]).unwrap_err();
    assert_eq!(errs[0].to_string(), "dashboard: expected a JSON object");
}

#[test]
fn other_datasource_types_are_left_and_noted() {
    let d = json!({"title": "Logs", "__inputs": [{"name": "DS_LOKI", "type": "datasource", "pluginId": "loki"}],
        "panels": [{"id": 1, "type": "logs", "datasource": "${DS_LOKI}"},
                   {"id": 2, "type": "logs", "datasource": {"type": "loki", "uid": "abc"}}]});
    let imported = normalize(d, &[], &[]).unwrap();
    assert_eq!(imported.dashboard.panel(1).unwrap().datasource, json!("${DS_LOKI}"));
    assert_eq!(imported.dashboard.panel(2).unwrap().datasource, json!({"type": "loki", "uid": "abc"}));
    assert_eq!(imported.notes.len(), 2, "{:?}", imported.notes);
}

#[test]
fn references_and_substitution() {
    assert_eq!(reference_name("${DS_PROMETHEUS}"), Some("DS_PROMETHEUS"));
    assert_eq!(reference_name("$datasource"), Some("datasource"));
    assert_eq!(reference_name("[[ds]]"), Some("ds"));
    assert_eq!(reference_name("${ds:raw}"), Some("ds"));
    assert_eq!(reference_name("Prometheus"), None);
    assert_eq!(reference_name("$"), None);
    let mut v = json!({"a": ["x ${A} ${B:text} ${C} ${", 1]});
    substitute(&mut v, &BTreeMap::from([("A".into(), "1".into()), ("B".into(), "2".into())]));
    assert_eq!(v, json!({"a": ["x 1 2 ${C} ${", 1]}));
}

#[test]
fn export_drops_id_and_externally_declares_the_datasource() {
    let mut d = import(NODE_CLASSIC, &[], &[]).dashboard;
    d.id = Some(12);
    let plain = export(&d, false);
    assert!(plain.get("id").is_none());
    assert_eq!(plain["uid"], "node-classic");
    let shared = export(&d, true);
    assert_eq!(shared["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(shared["panels"][0]["datasource"], json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"}));
    // And it imports back to the same dashboard.
    let back = normalize(shared, &[], &[]).unwrap().dashboard;
    d.id = None;
    assert_eq!(back, d);
}
