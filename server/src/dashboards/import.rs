//! Importing Grafana dashboards: a pure function from the JSON Grafana exports (classic dashboard
//! format, "export for sharing externally" included) to a [`Dashboard`] Vigil renders unchanged.
//!
//! [`normalize`] works on the raw JSON before the model sees it, in this order: the `__inputs`
//! declarations are paired with the values the import request gives ([`ImportInput`]); the very
//! old `rows` layout (before Grafana 5) becomes panels on the 24-column grid; library panels are
//! replaced by their models from `__elements`; `__inputs`, `__requires` and `__elements` are
//! dropped; every `datasource` field (panels, nested panels, targets, variables, annotations)
//! that names a Prometheus datasource — a name such as `"Prometheus"`, a placeholder such as
//! `"${DS_PROMETHEUS}"` or `"$datasource"`, an object `{type: "prometheus", uid}` — is rewritten
//! to Vigil's own datasource ([`vigil_datasource`]) unless it names an external datasource Vigil
//! knows ([`KnownDatasource`]); a `datasource`-type variable over Prometheus becomes a hidden
//! constant; old `graph` and `singlestat` options (y-axis format, thresholds string, value name)
//! are copied into `fieldConfig`/`options` where the newer fields are absent; finally the
//! remaining `${INPUT}` placeholders in any string are replaced by their values. Problems are
//! returned by JSON path, all of them that are found, not only the first.
//!
//! [`export`] goes the other way for `GET /api/dashboards/uid/{uid}/export`.

use std::collections::{BTreeMap, HashMap, HashSet};

use app::dashboard::{dashboard_from_value, Dashboard, ModelError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The uid and type of the datasource that is Vigil's own TSDB.
pub const VIGIL_DATASOURCE_UID: &str = "vigil";
pub const VIGIL_DATASOURCE_TYPE: &str = "prometheus";

/// The `datasource` reference of Vigil's own TSDB, as it is written into imported dashboards.
pub fn vigil_datasource() -> Value {
    json!({ "type": VIGIL_DATASOURCE_TYPE, "uid": VIGIL_DATASOURCE_UID })
}

/// One of the import request's `inputs`: the value chosen for an `__inputs` placeholder.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportInput {
    #[serde(default)]
    pub name: String,
    /// `datasource` or `constant`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub plugin_id: String,
    /// A datasource's uid or name, or a constant's text.
    #[serde(default, deserialize_with = "string_or_scalar")]
    pub value: String,
}

fn string_or_scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// An external datasource Vigil can query (from provisioning); references to it are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownDatasource {
    pub uid: String,
    pub name: String,
    /// The plugin type, `prometheus` for every datasource Vigil can proxy.
    pub kind: String,
}

/// The outcome of a successful [`normalize`].
#[derive(Clone, Debug)]
pub struct Imported {
    pub dashboard: Dashboard,
    /// Things that were changed or cannot work, worth telling the user (not errors).
    pub notes: Vec<String>,
}

/// How a placeholder resolves.
#[derive(Clone, Debug)]
enum Resolved {
    /// A Prometheus datasource: Vigil's own (`None`) or a known external one.
    Prometheus(Option<KnownDatasource>),
    /// A datasource of a type Vigil cannot query; references are left alone.
    Other(String),
    Constant(String),
}

struct Ctx<'a> {
    placeholders: HashMap<String, Resolved>,
    /// Names of `datasource`-type variables over Prometheus.
    datasource_vars: HashSet<String>,
    known: &'a [KnownDatasource],
    notes: Vec<String>,
    problems: Vec<ModelError>,
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> ModelError {
    ModelError { path: path.into(), message: message.into() }
}

/// Turns Grafana's exported dashboard JSON into a dashboard Vigil draws; see the module doc.
/// `inputs` are the import request's values for `__inputs`; `known` the external datasources.
pub fn normalize(
    dashboard: Value,
    inputs: &[ImportInput],
    known: &[KnownDatasource],
) -> Result<Imported, Vec<ModelError>> {
    let Value::Object(mut root) = dashboard else {
        return Err(vec![problem("dashboard", "expected a JSON object")]);
    };
    let mut ctx = Ctx {
        placeholders: HashMap::new(),
        datasource_vars: HashSet::new(),
        known,
        notes: Vec::new(),
        problems: Vec::new(),
    };
    let declared = root.remove("__inputs");
    ctx.resolve_inputs(declared.as_ref(), inputs);
    root.remove("__requires");
    let elements = root.remove("__elements");
    // The store assigns its own numeric id; an imported one would clash.
    root.remove("id");

    if !root.contains_key("panels") {
        if let Some(Value::Array(rows)) = root.remove("rows") {
            root.insert("panels".into(), Value::Array(migrate_rows(rows)));
            ctx.notes.push("converted the pre-5.0 'rows' layout to panels".into());
        }
    }
    if let Some(Value::Array(panels)) = root.get_mut("panels") {
        ctx.library_panels(panels, elements.as_ref(), "panels");
    }
    if let Some(Value::Array(list)) = root.get_mut("templating").and_then(|t| t.get_mut("list")) {
        ctx.variables(list);
    }
    if let Some(Value::Array(panels)) = root.get_mut("panels") {
        ctx.panels(panels, "panels");
    }
    if let Some(Value::Array(list)) = root.get_mut("annotations").and_then(|t| t.get_mut("list")) {
        for a in list.iter_mut().filter_map(Value::as_object_mut) {
            ctx.datasource_field(a);
        }
    }
    let mut root = Value::Object(root);
    let constants: BTreeMap<String, String> = ctx
        .placeholders
        .iter()
        .filter_map(|(name, r)| {
            let text = match r {
                Resolved::Prometheus(Some(k)) => k.uid.clone(),
                Resolved::Prometheus(None) => VIGIL_DATASOURCE_UID.to_string(),
                // Without a chosen datasource the placeholder stays, for the user to see.
                Resolved::Other(s) if s.is_empty() => return None,
                Resolved::Other(s) | Resolved::Constant(s) => s.clone(),
            };
            Some((name.clone(), text))
        })
        .collect();
    substitute(&mut root, &constants);

    match root.get("title") {
        Some(Value::String(t)) if !t.trim().is_empty() => {}
        Some(Value::String(_)) | None | Some(Value::Null) => {
            ctx.problems.push(problem("title", "a dashboard needs a title"))
        }
        Some(_) => {}
    }
    let parsed = dashboard_from_value(root);
    let mut problems = ctx.problems;
    match parsed {
        Ok(dashboard) if problems.is_empty() => Ok(Imported { dashboard, notes: ctx.notes }),
        Ok(_) => Err(problems),
        Err(e) => {
            problems.push(e);
            Err(problems)
        }
    }
}

/// The name inside a variable reference: `${DS_X}`, `${DS_X:raw}`, `$DS_X`, `[[DS_X]]`.
fn reference_name(s: &str) -> Option<&str> {
    let s = s.trim();
    let name = if let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        inner.split(':').next().unwrap_or(inner)
    } else if let Some(inner) = s.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
        inner.split(':').next().unwrap_or(inner)
    } else {
        s.strip_prefix('$')?
    };
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then_some(name)
}

/// Grafana's built-in pseudo datasources, which are not Prometheus and stay as they are.
fn is_builtin_pseudo(s: &str) -> bool {
    matches!(s, "-- Grafana --" | "-- Mixed --" | "-- Dashboard --" | "grafana")
}

impl Ctx<'_> {
    fn find_known(&self, key: &str) -> Option<KnownDatasource> {
        if key == VIGIL_DATASOURCE_UID {
            return None;
        }
        self.known.iter().find(|k| k.uid == key || k.name == key).cloned()
    }

    fn resolve_inputs(&mut self, declared: Option<&Value>, given: &[ImportInput]) {
        let mut all: Vec<ImportInput> = Vec::new();
        match declared {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match ImportInput::deserialize(item) {
                        Ok(input) if !input.name.is_empty() => all.push(input),
                        Ok(_) => self.problems.push(problem(format!("__inputs[{i}].name"), "missing")),
                        Err(e) => self.problems.push(problem(format!("__inputs[{i}]"), e.to_string())),
                    }
                }
            }
            Some(_) => self.problems.push(problem("__inputs", "expected array")),
        }
        for g in given {
            match all.iter_mut().find(|d| d.name == g.name) {
                Some(d) => {
                    if !g.value.is_empty() {
                        d.value = g.value.clone();
                    }
                    if d.plugin_id.is_empty() {
                        d.plugin_id = g.plugin_id.clone();
                    }
                }
                None => all.push(g.clone()),
            }
        }
        for input in all {
            let resolved = if input.kind == "datasource" || input.name.starts_with("DS_") {
                if input.plugin_id.is_empty() || input.plugin_id == "prometheus" {
                    Resolved::Prometheus(self.find_known(&input.value))
                } else {
                    self.notes.push(format!(
                        "input {} is a {} datasource, which Vigil cannot query; its panels will show an error",
                        input.name, input.plugin_id
                    ));
                    Resolved::Other(input.value.clone())
                }
            } else {
                Resolved::Constant(input.value.clone())
            };
            self.placeholders.insert(input.name, resolved);
        }
    }

    /// The rewritten value of a `datasource` field, or `None` to leave it as it is.
    fn resolve_datasource(&mut self, v: &Value) -> Option<Value> {
        let to = |k: Option<KnownDatasource>| match k {
            Some(k) => json!({ "type": k.kind, "uid": k.uid }),
            None => vigil_datasource(),
        };
        match v {
            Value::String(s) => {
                if is_builtin_pseudo(s) {
                    return None;
                }
                if let Some(name) = reference_name(s) {
                    return match self.placeholders.get(name) {
                        Some(Resolved::Prometheus(k)) => Some(to(k.clone())),
                        Some(Resolved::Other(_)) => None,
                        // A variable of any other kind (or an unknown one) is assumed to select
                        // among Prometheus datasources: the only kind Vigil has.
                        _ => Some(vigil_datasource()),
                    };
                }
                Some(to(self.find_known(s)))
            }
            Value::Object(o) => {
                let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
                let uid = o.get("uid").and_then(Value::as_str).unwrap_or_default();
                match kind {
                    "prometheus" | "" => {
                        if kind.is_empty() && (uid.is_empty() || is_builtin_pseudo(uid)) {
                            return None;
                        }
                        if reference_name(uid).is_some() {
                            return self.resolve_datasource(&Value::String(uid.to_string()));
                        }
                        Some(to(self.find_known(uid)))
                    }
                    "datasource" | "grafana" | "__expr__" => None,
                    other => {
                        let note = format!("a {other} datasource is used, which Vigil cannot query");
                        if !self.notes.contains(&note) {
                            self.notes.push(note);
                        }
                        None
                    }
                }
            }
            _ => None,
        }
    }

    fn datasource_field(&mut self, o: &mut Map<String, Value>) {
        if let Some(v) = o.get("datasource") {
            if let Some(new) = self.resolve_datasource(v) {
                o.insert("datasource".into(), new);
            }
        }
    }

    fn variables(&mut self, list: &mut [Value]) {
        for var in list.iter_mut().filter_map(Value::as_object_mut) {
            let kind = var.get("type").and_then(Value::as_str).unwrap_or_default();
            let query = var.get("query").and_then(Value::as_str).unwrap_or_default();
            if kind == "datasource" && (query == "prometheus" || query.is_empty()) {
                let name = var.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                // Vigil has one Prometheus datasource to choose from: the variable becomes a
                // hidden constant naming it, so `$name` still expands.
                var.insert("type".into(), json!("constant"));
                var.insert("query".into(), json!(VIGIL_DATASOURCE_UID));
                var.insert("hide".into(), json!(2));
                var.insert(
                    "current".into(),
                    json!({"text": VIGIL_DATASOURCE_UID, "value": VIGIL_DATASOURCE_UID}),
                );
                var.remove("options");
                var.remove("regex");
                var.insert("multi".into(), json!(false));
                var.insert("includeAll".into(), json!(false));
                self.datasource_vars.insert(name.clone());
                self.placeholders.entry(name).or_insert(Resolved::Prometheus(None));
            }
        }
        for var in list.iter_mut().filter_map(Value::as_object_mut) {
            self.datasource_field(var);
        }
    }

    fn panels(&mut self, panels: &mut [Value], base: &str) {
        for (i, p) in panels.iter_mut().enumerate() {
            let Some(o) = p.as_object_mut() else { continue };
            self.datasource_field(o);
            let mut all_vigil = true;
            if let Some(Value::Array(targets)) = o.get_mut("targets") {
                for t in targets.iter_mut().filter_map(Value::as_object_mut) {
                    self.datasource_field(t);
                    all_vigil &= t.get("datasource").is_none_or(|d| *d == vigil_datasource() || d.is_null());
                }
            }
            // A "-- Mixed --" panel whose targets all went to Vigil is a plain Vigil panel now.
            let mixed = o.get("datasource").and_then(|d| d.get("uid")).and_then(Value::as_str)
                == Some("-- Mixed --")
                || o.get("datasource").and_then(Value::as_str) == Some("-- Mixed --");
            if mixed && all_vigil {
                o.insert("datasource".into(), vigil_datasource());
            }
            migrate_old_panel(o);
            if let Some(Value::Array(nested)) = o.get_mut("panels") {
                self.panels(nested, &format!("{base}[{i}].panels"));
            }
        }
    }

    /// Replaces panels that reference a library panel by the model `__elements` carries.
    fn library_panels(&mut self, panels: &mut [Value], elements: Option<&Value>, base: &str) {
        for (i, p) in panels.iter_mut().enumerate() {
            let Some(o) = p.as_object_mut() else { continue };
            if let Some(Value::Array(nested)) = o.get_mut("panels") {
                self.library_panels(nested, elements, &format!("{base}[{i}].panels"));
            }
            let Some(lib) = o.get("libraryPanel") else { continue };
            let uid = lib.get("uid").and_then(Value::as_str).unwrap_or_default().to_string();
            let model =
                elements.and_then(|e| e.get(&uid)).and_then(|e| e.get("model")).and_then(Value::as_object);
            match model {
                Some(model) => {
                    for (k, v) in model {
                        // The dashboard's own placement and id win over the library's.
                        if !matches!(k.as_str(), "id" | "gridPos" | "libraryPanel") {
                            o.insert(k.clone(), v.clone());
                        }
                    }
                    o.remove("libraryPanel");
                }
                None => self.notes.push(format!(
                    "{base}[{i}]: library panel {uid:?} is not in __elements and cannot be drawn"
                )),
            }
        }
    }
}

/// Replaces `${NAME}` (and `${NAME:format}`) in every string of `v` by the named value.
fn substitute(v: &mut Value, values: &BTreeMap<String, String>) {
    match v {
        Value::String(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start..];
                match after.find('}') {
                    Some(end) => {
                        let inner = &after[2..end];
                        let name = inner.split(':').next().unwrap_or(inner);
                        match values.get(name) {
                            Some(value) => out.push_str(value),
                            None => out.push_str(&after[..=end]),
                        }
                        rest = &after[end + 1..];
                    }
                    None => {
                        out.push_str(after);
                        rest = "";
                    }
                }
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, values)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, values)),
        _ => {}
    }
}

/// A number from Grafana's loose fields: numbers, or strings holding one (`"0"`, `"250px"`).
fn loose_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches("px").trim().parse().ok(),
        _ => None,
    }
}

/// The grid height of an old row or panel height in pixels, as Grafana's own migration
/// computes it (30 px cells with an 8 px margin, at least 3 cells).
fn grid_height(px: f64) -> i64 {
    (px.max(90.0) / 38.0).ceil() as i64
}

/// Converts the pre-5.0 layout (`rows[].panels[]` with 12-column `span`s) to grid panels.
fn migrate_rows(rows: Vec<Value>) -> Vec<Value> {
    let max_id = rows
        .iter()
        .filter_map(|r| r.get("panels").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.get("id").and_then(Value::as_i64))
        .max()
        .unwrap_or(0);
    let mut next_id = max_id + 1;
    let flag = |r: &Value, k: &str| r.get(k).and_then(Value::as_bool).unwrap_or(false);
    let show_rows = rows.iter().any(|r| {
        flag(r, "collapse")
            || flag(r, "showTitle")
            || r.get("repeat").and_then(Value::as_str).is_some_and(|s| !s.is_empty())
    });
    let mut out = Vec::new();
    let mut y = 0i64;
    for row in rows {
        let row_h = grid_height(row.get("height").and_then(loose_number).unwrap_or(250.0));
        let collapsed = flag(&row, "collapse");
        let mut row_panel = show_rows.then(|| {
            let id = next_id;
            next_id += 1;
            let title = row.get("title").and_then(Value::as_str).unwrap_or_default();
            json!({"type": "row", "id": id, "title": title, "collapsed": collapsed,
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
        });
        if show_rows {
            y += 1;
        }
        let mut x = 0i64;
        let mut line_h = 0i64;
        let mut placed = Vec::new();
        for mut p in row.get("panels").and_then(Value::as_array).cloned().unwrap_or_default() {
            let Some(o) = p.as_object_mut() else { continue };
            let span = o.remove("span").as_ref().and_then(loose_number).unwrap_or(4.0);
            let w = ((span * 2.0).round() as i64).clamp(1, 24);
            let h = o.remove("height").as_ref().and_then(loose_number).map(grid_height).unwrap_or(row_h);
            if x + w > 24 {
                x = 0;
                y += line_h;
                line_h = 0;
            }
            o.insert("gridPos".into(), json!({"x": x, "y": y, "w": w, "h": h}));
            x += w;
            line_h = line_h.max(h);
            placed.push(p);
        }
        y += line_h;
        match row_panel.as_mut() {
            Some(rp) if collapsed => {
                rp["panels"] = Value::Array(placed);
                out.push(rp.take());
            }
            Some(rp) => {
                out.push(rp.take());
                out.extend(placed);
            }
            None => out.extend(placed),
        }
    }
    out
}

fn defaults_of(o: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    let fc = o.entry("fieldConfig").or_insert_with(|| json!({"defaults": {}, "overrides": []}));
    let fc = fc.as_object_mut()?;
    fc.entry("defaults").or_insert_with(|| json!({})).as_object_mut()
}

/// Copies the options of `graph` and `singlestat` panels that newer panels keep elsewhere,
/// without touching the old fields (Grafana still reads them) or any newer field already set.
fn migrate_old_panel(o: &mut Map<String, Value>) {
    let kind = o.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    match kind.as_str() {
        "graph" => {
            let Some(axis) = o.get("yaxes").and_then(|a| a.get(0)).cloned() else { return };
            let Some(d) = defaults_of(o) else { return };
            if let Some(unit) = axis.get("format").and_then(Value::as_str).filter(|u| *u != "short") {
                d.entry("unit").or_insert_with(|| json!(unit));
            }
            for key in ["min", "max"] {
                if let Some(n) = axis.get(key).and_then(loose_number) {
                    d.entry(key).or_insert_with(|| json!(n));
                }
            }
            if let Some(n) = axis.get("decimals").and_then(Value::as_u64) {
                d.entry("decimals").or_insert_with(|| json!(n));
            }
        }
        "singlestat" => {
            let format = o.get("format").and_then(Value::as_str).map(str::to_string);
            let decimals = o.get("decimals").and_then(Value::as_u64);
            let thresholds = o.get("thresholds").and_then(Value::as_str).map(str::to_string);
            let colors: Vec<String> = o
                .get("colors")
                .and_then(Value::as_array)
                .map(|c| c.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let value_name = o.get("valueName").and_then(Value::as_str).map(str::to_string);
            let sparkline = o.get("sparkline").and_then(|s| s.get("show")).and_then(Value::as_bool);
            let background = o.get("colorBackground").and_then(Value::as_bool).unwrap_or(false);
            let color_value = o.get("colorValue").and_then(Value::as_bool).unwrap_or(false);
            if let Some(d) = defaults_of(o) {
                if let Some(unit) = format.filter(|u| u != "none" && u != "short") {
                    d.entry("unit").or_insert_with(|| json!(unit));
                }
                if let Some(n) = decimals {
                    d.entry("decimals").or_insert_with(|| json!(n));
                }
                let values: Vec<f64> = thresholds
                    .iter()
                    .flat_map(|t| t.split(','))
                    .filter_map(|s| s.trim().parse().ok())
                    .collect();
                if !values.is_empty() && !colors.is_empty() && !d.contains_key("thresholds") {
                    let color = |i: usize| colors.get(i).or(colors.last()).cloned().unwrap_or_default();
                    let mut steps = vec![json!({"color": color(0), "value": null})];
                    steps.extend(
                        values.iter().enumerate().map(|(i, v)| json!({"color": color(i + 1), "value": v})),
                    );
                    d.insert("thresholds".into(), json!({"mode": "absolute", "steps": steps}));
                }
            }
            let options = o.entry("options").or_insert_with(|| json!({}));
            if let Some(opts) = options.as_object_mut() {
                if let Some(name) = value_name {
                    let calc = match name.as_str() {
                        "avg" => "mean",
                        "current" => "lastNotNull",
                        "total" => "sum",
                        "first" => "firstNotNull",
                        "delta" => "delta",
                        "diff" => "diff",
                        "range" => "range",
                        "min" => "min",
                        "max" => "max",
                        _ => "lastNotNull",
                    };
                    opts.entry("reduceOptions")
                        .or_insert_with(|| json!({"calcs": [calc], "fields": "", "values": false}));
                }
                if let Some(show) = sparkline {
                    opts.entry("graphMode").or_insert_with(|| json!(if show { "area" } else { "none" }));
                }
                if background || color_value {
                    opts.entry("colorMode")
                        .or_insert_with(|| json!(if background { "background" } else { "value" }));
                }
            }
        }
        _ => {}
    }
}

/// The dashboard as `GET /api/dashboards/uid/{uid}/export` returns it: Grafana's JSON without the
/// store's numeric `id`. With `externally`, Grafana's "export for sharing externally" shape:
/// references to Vigil's datasource become `${DS_PROMETHEUS}` declared in `__inputs`, so the file
/// imports into Grafana (or another Vigil) with a datasource chosen there.
pub fn export(dashboard: &Dashboard, externally: bool) -> Value {
    let mut v = dashboard.export_json();
    if !externally {
        return v;
    }
    fn walk(v: &mut Value, found: &mut bool) {
        match v {
            Value::Object(o) => {
                if let Some(ds) = o.get_mut("datasource") {
                    if *ds == vigil_datasource() {
                        *ds = json!({"type": VIGIL_DATASOURCE_TYPE, "uid": "${DS_PROMETHEUS}"});
                        *found = true;
                    }
                }
                o.values_mut().for_each(|x| walk(x, found));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, found)),
            _ => {}
        }
    }
    let mut found = false;
    walk(&mut v, &mut found);
    if let Value::Object(o) = &mut v {
        if found {
            o.insert(
                "__inputs".into(),
                json!([{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "",
                    "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}]),
            );
            o.insert(
                "__requires".into(),
                json!([{"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}]),
            );
        }
    }
    v
}

#[cfg(test)]
mod tests;
