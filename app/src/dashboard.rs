//! The dashboard JSON model: Grafana's classic dashboard format, the subset Vigil draws, shared by
//! the browser (which edits it) and the server (which stores and serves it).
//!
//! Every struct keeps the fields it does not know in an `extra` map, so a dashboard written by
//! Grafana or a newer Vigil survives a load/save round trip unchanged. Parsing goes through
//! [`parse_dashboard`], which first checks the JSON's shape with [`validate`] so that a wrong field
//! type is reported by its JSON path (`panels[3].gridPos.w: expected integer, found string`)
//! rather than by serde's position-only message. [`vars`] expands template variables in queries,
//! titles and legends; [`timerange`] turns Grafana's `now-6h` style times into milliseconds.

pub mod grid;
#[cfg(feature = "ssr")]
pub mod load;
pub mod markdown;
pub mod timerange;
pub mod url;
pub mod vars;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Grafana's dashboard grid has 24 columns; a row unit is 30 px high.
pub const GRID_COLUMNS: i64 = 24;
pub const GRID_ROW_PX: i64 = 30;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    /// Grafana's internal numeric id; Vigil assigns one per stored dashboard and drops it on export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub time: TimeRange,
    /// Auto-refresh interval (`"5s"`, `"1m"`, …); Grafana writes `false` or `""` for none.
    #[serde(default, deserialize_with = "refresh_value", skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timezone: String,
    /// 0: no shared crosshair, 1: shared crosshair, 2: shared crosshair and tooltip.
    #[serde(default)]
    pub graph_tooltip: i64,
    #[serde(default)]
    pub templating: Templating,
    #[serde(default)]
    pub panels: Vec<Panel>,
    #[serde(default)]
    pub schema_version: i64,
    #[serde(default)]
    pub version: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeRange {
    pub from: String,
    pub to: String,
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange { from: "now-6h".to_string(), to: "now".to_string() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Templating {
    #[serde(default)]
    pub list: Vec<Variable>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A template variable (`templating.list[]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A string, or (newer Grafana) an object with a `query` field.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub query: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regex: String,
    #[serde(default)]
    pub multi: bool,
    #[serde(default)]
    pub include_all: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_value: Option<String>,
    /// `{text, value}`; value is a string or, for multi-value variables, an array of strings.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub current: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Value>,
    /// 0: never, 1: on dashboard load, 2: on time range change.
    #[serde(default)]
    pub refresh: i64,
    #[serde(default)]
    pub hide: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Variable {
    /// The variable's query text, whichever of Grafana's two shapes holds it.
    pub fn query_text(&self) -> String {
        match &self.query {
            Value::String(s) => s.clone(),
            Value::Object(o) => o.get("query").and_then(Value::as_str).unwrap_or_default().to_string(),
            _ => String::new(),
        }
    }

    /// The saved current selection as a list of values.
    pub fn current_values(&self) -> Vec<String> {
        match self.current.get("value") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Panel {
    #[serde(default)]
    pub id: i64,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub grid_pos: GridPos,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub field_config: FieldConfig,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub options: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub datasource: Value,
    /// Rows only: whether the row's panels are folded into [`Panel::panels`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapsed: Option<bool>,
    /// Rows only: the panels a collapsed row holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub panels: Vec<Panel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_data_points: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Panel {
    pub fn is_row(&self) -> bool {
        self.kind == "row"
    }

    /// Grafana's old panel types, mapped to the ones Vigil draws.
    pub fn effective_kind(&self) -> &str {
        match self.kind.as_str() {
            "graph" => "timeseries",
            "singlestat" => "stat",
            "table-old" => "table",
            other => other,
        }
    }

    /// The `text` panel's markdown (`options.content`, or the old top-level `content`).
    pub fn text_content(&self) -> String {
        self.options
            .get("content")
            .or_else(|| self.extra.get("content"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridPos {
    #[serde(default)]
    pub x: i64,
    #[serde(default)]
    pub y: i64,
    #[serde(default = "default_w")]
    pub w: i64,
    #[serde(default = "default_h")]
    pub h: i64,
}

fn default_w() -> i64 {
    12
}

fn default_h() -> i64 {
    8
}

impl Default for GridPos {
    fn default() -> Self {
        GridPos { x: 0, y: 0, w: default_w(), h: default_h() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    pub ref_id: String,
    #[serde(default)]
    pub expr: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub legend_format: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub instant: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hide: bool,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub datasource: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldConfig {
    #[serde(default)]
    pub defaults: FieldDefaults,
    #[serde(default)]
    pub overrides: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdsConfig>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub color: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdsConfig {
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub steps: Vec<ThresholdStep>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdStep {
    #[serde(default)]
    pub color: String,
    /// `null` for the base step.
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn refresh_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    })
}

/// A problem found in dashboard JSON, located by its JSON path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelError {
    /// `panels[3].gridPos.w`; empty for the document itself.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ModelError {}

/// Parses dashboard JSON text, reporting syntax errors by line and column and type errors by path.
pub fn parse_dashboard(text: &str) -> Result<Dashboard, ModelError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ModelError { path: String::new(), message: format!("invalid JSON: {e}") })?;
    dashboard_from_value(value)
}

/// Checks a parsed JSON document's shape and converts it to a [`Dashboard`].
pub fn dashboard_from_value(value: Value) -> Result<Dashboard, ModelError> {
    validate(&value)?;
    serde_json::from_value(value).map_err(|e| ModelError { path: String::new(), message: e.to_string() })
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Num,
    Bool,
    Obj,
    Arr,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Int => "integer",
            Kind::Num => "number",
            Kind::Bool => "boolean",
            Kind::Obj => "object",
            Kind::Arr => "array",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Str => v.is_string(),
            Kind::Int => v.is_i64() || v.is_u64(),
            Kind::Num => v.is_number(),
            Kind::Bool => v.is_boolean(),
            Kind::Obj => v.is_object(),
            Kind::Arr => v.is_array(),
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Checks the fields in `spec` of `obj`; `null` counts as absent, as serde treats it for defaults.
fn check_fields(obj: &Map<String, Value>, path: &str, spec: &[(&str, Kind)]) -> Result<(), ModelError> {
    for &(key, kind) in spec {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(v) if kind.accepts(v) => {}
            Some(v) => {
                return Err(ModelError {
                    path: join(path, key),
                    message: format!("expected {}, found {}", kind.name(), json_kind(v)),
                })
            }
        }
    }
    Ok(())
}

fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ModelError> {
    v.as_object().ok_or_else(|| ModelError {
        path: path.to_string(),
        message: format!("expected object, found {}", json_kind(v)),
    })
}

/// Checks the types of every field the model reads, naming the first wrong one by its JSON path.
pub fn validate(v: &Value) -> Result<(), ModelError> {
    let root = as_object(v, "")?;
    use Kind::*;
    check_fields(
        root,
        "",
        &[
            ("id", Int),
            ("uid", Str),
            ("title", Str),
            ("description", Str),
            ("tags", Arr),
            ("time", Obj),
            ("timezone", Str),
            ("graphTooltip", Int),
            ("templating", Obj),
            ("panels", Arr),
            ("schemaVersion", Int),
            ("version", Int),
        ],
    )?;
    if let Some(Value::Array(tags)) = root.get("tags") {
        for (i, t) in tags.iter().enumerate() {
            if !t.is_string() {
                return Err(ModelError {
                    path: format!("tags[{i}]"),
                    message: format!("expected string, found {}", json_kind(t)),
                });
            }
        }
    }
    if let Some(time @ Value::Object(_)) = root.get("time") {
        let t = as_object(time, "time")?;
        check_fields(t, "time", &[("from", Str), ("to", Str)])?;
    }
    if let Some(Value::Object(t)) = root.get("templating") {
        check_fields(t, "templating", &[("list", Arr)])?;
        if let Some(Value::Array(list)) = t.get("list") {
            for (i, var) in list.iter().enumerate() {
                let path = format!("templating.list[{i}]");
                let o = as_object(var, &path)?;
                check_fields(
                    o,
                    &path,
                    &[
                        ("type", Str),
                        ("name", Str),
                        ("label", Str),
                        ("regex", Str),
                        ("multi", Bool),
                        ("includeAll", Bool),
                        ("allValue", Str),
                        ("current", Obj),
                        ("options", Arr),
                        ("refresh", Int),
                        ("hide", Int),
                    ],
                )?;
                if !o.get("name").is_some_and(Value::is_string) {
                    return Err(ModelError {
                        path: join(&path, "name"),
                        message: "a variable needs a name".into(),
                    });
                }
            }
        }
    }
    if let Some(Value::Array(panels)) = root.get("panels") {
        validate_panels(panels, "panels")?;
    }
    Ok(())
}

fn validate_panels(panels: &[Value], base: &str) -> Result<(), ModelError> {
    use Kind::*;
    for (i, p) in panels.iter().enumerate() {
        let path = format!("{base}[{i}]");
        let o = as_object(p, &path)?;
        check_fields(
            o,
            &path,
            &[
                ("id", Int),
                ("type", Str),
                ("title", Str),
                ("description", Str),
                ("gridPos", Obj),
                ("targets", Arr),
                ("fieldConfig", Obj),
                ("collapsed", Bool),
                ("panels", Arr),
                ("interval", Str),
                ("maxDataPoints", Int),
            ],
        )?;
        if let Some(Value::Object(g)) = o.get("gridPos") {
            let gp = join(&path, "gridPos");
            check_fields(g, &gp, &[("x", Int), ("y", Int), ("w", Int), ("h", Int)])?;
            for key in ["w", "h"] {
                if g.get(key).and_then(Value::as_i64).is_some_and(|n| n < 1) {
                    return Err(ModelError { path: join(&gp, key), message: "must be at least 1".into() });
                }
            }
        }
        if let Some(Value::Array(targets)) = o.get("targets") {
            for (j, t) in targets.iter().enumerate() {
                let tp = format!("{path}.targets[{j}]");
                let to = as_object(t, &tp)?;
                check_fields(
                    to,
                    &tp,
                    &[
                        ("refId", Str),
                        ("expr", Str),
                        ("legendFormat", Str),
                        ("instant", Bool),
                        ("interval", Str),
                        ("hide", Bool),
                    ],
                )?;
            }
        }
        if let Some(Value::Object(fc)) = o.get("fieldConfig") {
            let fp = join(&path, "fieldConfig");
            check_fields(fc, &fp, &[("defaults", Obj), ("overrides", Arr)])?;
            if let Some(Value::Object(d)) = fc.get("defaults") {
                let dp = join(&fp, "defaults");
                check_fields(
                    d,
                    &dp,
                    &[
                        ("unit", Str),
                        ("decimals", Int),
                        ("min", Num),
                        ("max", Num),
                        ("thresholds", Obj),
                        ("mappings", Arr),
                    ],
                )?;
                if let Some(Value::Object(th)) = d.get("thresholds") {
                    let thp = join(&dp, "thresholds");
                    check_fields(th, &thp, &[("mode", Str), ("steps", Arr)])?;
                    if let Some(Value::Array(steps)) = th.get("steps") {
                        for (k, s) in steps.iter().enumerate() {
                            let sp = format!("{thp}.steps[{k}]");
                            check_fields(as_object(s, &sp)?, &sp, &[("color", Str), ("value", Num)])?;
                        }
                    }
                }
            }
        }
        if let Some(Value::Array(nested)) = o.get("panels") {
            validate_panels(nested, &join(&path, "panels"))?;
        }
    }
    Ok(())
}

/// Grafana's URL slug of a title: lower case, runs of other characters become one `-`.
pub fn slugify(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    let mut dash = false;
    for c in title.chars() {
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        } else {
            dash = true;
        }
    }
    out
}

/// Whether `uid` is usable as a dashboard uid (and so as a file name): Grafana's 40-character
/// limit, letters, digits, `-` and `_` only.
pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 40
        && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Dashboard {
    /// Panels in display order with collapsed rows' children left inside their row.
    pub fn all_panels(&self) -> impl Iterator<Item = &Panel> {
        self.panels.iter().flat_map(|p| std::iter::once(p).chain(p.panels.iter()))
    }

    /// Finds a panel by id, also inside collapsed rows.
    pub fn panel(&self, id: i64) -> Option<&Panel> {
        self.all_panels().find(|p| p.id == id)
    }

    /// The dashboard as JSON for export: Grafana's shape, without the store's numeric `id`.
    pub fn export_json(&self) -> Value {
        let mut d = self.clone();
        d.id = None;
        serde_json::to_value(&d).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_keeps_unknown_fields() {
        let src = json!({
            "uid": "abc", "title": "T", "editable": true, "links": [{"title": "x"}],
            "time": {"from": "now-1h", "to": "now"}, "refresh": false, "schemaVersion": 39, "version": 3,
            "panels": [{
                "id": 1, "type": "timeseries", "title": "P", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
                "pluginVersion": "10.0.0",
                "targets": [{"refId": "A", "expr": "up", "legendFormat": "{{job}}", "exemplar": true}],
                "fieldConfig": {"defaults": {"unit": "bytes", "custom": {"lineWidth": 2},
                    "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": null}, {"color": "red", "value": 80.5}]}},
                    "overrides": []},
                "options": {"legend": {"showLegend": true}}
            }],
            "templating": {"list": [{"type": "query", "name": "instance", "query": {"query": "label_values(up, instance)", "refId": "x"},
                "current": {"text": "a", "value": ["a", "b"]}, "multi": true, "includeAll": true, "refresh": 1}]}
        });
        let d = dashboard_from_value(src.clone()).unwrap();
        assert_eq!(d.refresh, None);
        assert_eq!(d.panels[0].targets[0].legend_format, "{{job}}");
        assert_eq!(d.templating.list[0].query_text(), "label_values(up, instance)");
        assert_eq!(d.templating.list[0].current_values(), vec!["a", "b"]);
        let back = serde_json::to_value(&d).unwrap();
        assert_eq!(back["editable"], json!(true));
        assert_eq!(back["links"], src["links"]);
        assert_eq!(back["panels"][0]["pluginVersion"], json!("10.0.0"));
        assert_eq!(back["panels"][0]["targets"][0]["exemplar"], json!(true));
        assert_eq!(back["panels"][0]["fieldConfig"]["defaults"]["custom"], json!({"lineWidth": 2}));
        assert_eq!(
            back["panels"][0]["fieldConfig"]["defaults"]["thresholds"],
            src["panels"][0]["fieldConfig"]["defaults"]["thresholds"]
        );
        assert_eq!(back["templating"]["list"][0]["query"], src["templating"]["list"][0]["query"]);
        // A second trip is a fixed point.
        let again = serde_json::to_value(dashboard_from_value(back.clone()).unwrap()).unwrap();
        assert_eq!(again, back);
    }

    #[test]
    fn wrong_types_are_reported_by_path() {
        let bad =
            json!({"title": "x", "panels": [{}, {}, {}, {"gridPos": {"x": 0, "y": 0, "w": "12", "h": 8}}]});
        let e = dashboard_from_value(bad).unwrap_err();
        assert_eq!(e.to_string(), "panels[3].gridPos.w: expected integer, found string");
        let e = dashboard_from_value(json!({"title": 5})).unwrap_err();
        assert_eq!(e.to_string(), "title: expected string, found integer");
        let e = dashboard_from_value(
            json!({"panels": [{"type": "row", "panels": [{"targets": [{"expr": 1}]}]}]}),
        )
        .unwrap_err();
        assert_eq!(e.path, "panels[0].panels[0].targets[0].expr");
        let e = dashboard_from_value(json!({"templating": {"list": [{"type": "custom"}]}})).unwrap_err();
        assert_eq!(e.path, "templating.list[0].name");
        let e = dashboard_from_value(json!([1, 2])).unwrap_err();
        assert_eq!(e.to_string(), "expected object, found array");
        let e = parse_dashboard("{\"title\": ").unwrap_err();
        assert!(e.message.starts_with("invalid JSON: EOF while parsing"), "{e}");
        let e = dashboard_from_value(json!({"panels": [{"gridPos": {"w": 0}}]})).unwrap_err();
        assert_eq!(e.to_string(), "panels[0].gridPos.w: must be at least 1");
    }

    #[test]
    fn slugs_and_uids() {
        assert_eq!(slugify("Image gallery"), "image-gallery");
        assert_eq!(slugify("  Node  (exporter) / CPU "), "node-exporter-cpu");
        assert!(valid_uid("a-B_9"));
        assert!(!valid_uid("../etc"));
        assert!(!valid_uid(""));
        assert!(!valid_uid(&"a".repeat(41)));
    }

    #[test]
    fn old_panel_types_map_to_new() {
        let p = Panel { kind: "graph".into(), ..Panel::default() };
        assert_eq!(p.effective_kind(), "timeseries");
        let p = Panel { kind: "singlestat".into(), ..Panel::default() };
        assert_eq!(p.effective_kind(), "stat");
    }
}
