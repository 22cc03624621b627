//! Types that cross between the server and the browser, and the [`Backend`] the server gives the
//! UI's server functions. The UI never reaches into server modules: it asks a `Backend`.

use serde::{Deserialize, Serialize};

/// What the Status page shows about the running server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusInfo {
    pub version: String,
    pub revision: String,
    pub rustc: String,
    /// Start time, milliseconds since the Unix epoch.
    pub start_time_ms: i64,
    pub storage_path: String,
    pub listen_address: String,
    /// `None` when the built-in default configuration is in use.
    pub config_file: Option<String>,
    /// The configuration as loaded, in YAML.
    pub config_yaml: String,
    /// Command-line flags with their effective values, in flag order.
    pub flags: Vec<(String, String)>,
}

/// One scrape target as the configuration defines it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub job: String,
    pub url: String,
    pub scrape_interval: String,
    pub scrape_timeout: String,
    /// `"unknown"` until the first scrape, then `"up"` or `"down"`, as in Prometheus.
    pub health: String,
    pub last_error: Option<String>,
    /// The target's labels in PromQL notation (`{instance="…", job="…"}`).
    pub labels: String,
    /// Start of the last scrape, ms since the epoch; 0 before the first.
    pub last_scrape_ms: i64,
    pub last_duration_ms: f64,
}

/// The answer to an instant query, flattened for display.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryTable {
    /// `vector`, `scalar`, `string` or `matrix`.
    pub result_type: String,
    /// Evaluation time, ms since the epoch.
    pub time_ms: i64,
    /// One row per result: the series in PromQL notation (empty for scalars) and its value.
    pub rows: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// What the server provides to the UI's server functions, through Leptos context.
#[cfg(feature = "ssr")]
pub trait Backend: DataSource + Send + Sync + 'static {
    fn status(&self) -> StatusInfo;
    fn targets(&self) -> Vec<TargetInfo>;
    /// Head statistics, top metrics by series and provisioning problems.
    fn storage_stats(&self) -> StorageStats;
    /// Evaluates a PromQL expression at the current time; the error is the message to show.
    fn instant_query(&self, expr: &str) -> Result<QueryTable, String>;
    fn dashboards(&self, query: &str, tags: &[String]) -> Vec<DashboardSummary>;
    fn dashboard(&self, uid: &str) -> Option<(crate::dashboard::Dashboard, DashboardMeta)>;
    /// Saves (Grafana semantics: version check unless `overwrite`); the new version or the error.
    fn save_dashboard(
        &self,
        dashboard: crate::dashboard::Dashboard,
        message: &str,
        overwrite: bool,
    ) -> Result<i64, String>;
    /// Checks PromQL syntax without running it; the parser's message on error.
    fn check_query(&self, expr: &str) -> Result<(), String>;
    /// Imports dashboard JSON text (Grafana's export format too): the new dashboard's URL and
    /// notes about what was adapted, or the problems by JSON path.
    fn import_dashboard(&self, json: &str, overwrite: bool) -> Result<(String, Vec<String>), String>;
}

/// The backend handle as stored in Leptos context.
#[cfg(feature = "ssr")]
pub type SharedBackend = std::sync::Arc<dyn Backend>;

/// Looks up the backend the server placed in context for this request.
#[cfg(feature = "ssr")]
pub fn backend() -> Result<SharedBackend, leptos::prelude::ServerFnError> {
    leptos::prelude::use_context::<SharedBackend>().ok_or_else(|| {
        leptos::prelude::ServerFnError::ServerError(
            "the server did not provide a backend to the UI".to_string(),
        )
    })
}

/// What a signed embed link grants, as the server's access check found it on the request: one
/// dashboard (or one of its panels) with some variables fixed. Pages and server functions that
/// find one in the request must stay inside it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedGrant {
    pub uid: String,
    pub panel_id: Option<i64>,
    pub vars: Vec<(String, Vec<String>)>,
}

/// Storage and provisioning facts for the Status page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageStats {
    pub head_series: usize,
    pub label_pairs: usize,
    /// Oldest and newest sample time in the head, ms; `None` while empty.
    pub head_range: Option<(i64, i64)>,
    pub disk_bytes: u64,
    /// Metric names with the most series: (name, series).
    pub top_metrics: Vec<(String, usize)>,
    /// Broken provisioning files, one line each.
    pub provisioning_problems: Vec<String>,
}

impl EmbedGrant {
    /// Holds a request for dashboard `uid` with query string `q` to the grant: another
    /// dashboard is refused; the grant's variables replace the address's.
    pub fn apply(&self, uid: &str, q: &mut crate::dashboard::url::Query) -> Result<(), String> {
        if self.uid != uid {
            return Err("this embed link is for another dashboard".into());
        }
        for (name, values) in &self.vars {
            q.set(&format!("var-{name}"), values);
        }
        Ok(())
    }
}

/// A dashboard in the list pages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardSummary {
    pub uid: String,
    pub title: String,
    pub url: String,
    pub tags: Vec<String>,
    /// `Some(source)` when provisioned (read-only unless copied).
    pub provisioned: Option<String>,
}

/// What the store says about a dashboard beside its JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardMeta {
    pub url: String,
    pub slug: String,
    pub can_save: bool,
    pub provisioned: Option<String>,
}

/// A template variable as the variables bar shows it, after its options were resolved.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VariableState {
    pub name: String,
    pub label: String,
    pub kind: String,
    pub multi: bool,
    pub include_all: bool,
    /// 0 shown, 1 label hidden, 2 variable hidden (Grafana's `hide`).
    pub hide: i64,
    /// (text, value) pairs; "All" is `("All", "$__all")` first when allowed.
    pub options: Vec<(String, String)>,
    /// Selected values; `["$__all"]` for All.
    pub selected: Vec<String>,
    pub error: Option<String>,
}

/// The data of one panel, queried for the dashboard's range and variables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PanelResult {
    pub id: i64,
    /// The title with variables expanded.
    pub title: String,
    pub data: crate::chart::PanelData,
    /// Label sets of the series, parallel to `data.series` (tables show them as columns).
    pub labels: Vec<Vec<(String, String)>>,
    /// The first failing query's error, as the engine reported it.
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

/// Everything the dashboard page needs, in one answer: the dashboard, its variables and every
/// panel's data. One request instead of one per panel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardView {
    pub dashboard: crate::dashboard::Dashboard,
    pub meta: DashboardMeta,
    pub variables: Vec<VariableState>,
    pub panels: Vec<PanelResult>,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Server side only: SVG first frames drawn ahead of the page's render (in parallel), by
    /// panel id; a panel without one is drawn while the page renders.
    #[serde(skip)]
    pub first_frames: Vec<(i64, String)>,
    /// With held-back points: the token under which the server keeps them a short while for
    /// this page's own fetch of them (the answer to that fetch, without running the queries
    /// again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<u64>,
}

impl DashboardView {
    /// Holds back the points of every panel drawn as a chart (the server draws their first
    /// frames into the page; the browser fetches the points after hydrating) and returns them,
    /// by panel id. Tables and text panels keep their data.
    pub fn hold_back_points(&mut self) -> Vec<(i64, crate::chart::PanelData)> {
        use crate::chart::PanelKind;
        let mut held = Vec::new();
        for r in &mut self.panels {
            let Some(panel) = self.dashboard.panel(r.id) else { continue };
            if PanelKind::from_grafana(panel.effective_kind()).is_none() || r.data.series.is_empty() {
                continue;
            }
            let light = r.data.held_back();
            held.push((r.id, std::mem::replace(&mut r.data, light)));
        }
        held
    }

    /// Puts held-back points back into their panels (the reverse of
    /// [`DashboardView::hold_back_points`]).
    pub fn restore_points(&mut self, held: Vec<(i64, crate::chart::PanelData)>) {
        for (id, data) in held {
            if let Some(r) = self.panels.iter_mut().find(|r| r.id == id) {
                r.data = data;
            }
        }
    }
}

/// A series returned by a query: labels and finite samples.
pub type QuerySeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// The queries dashboards need, answered by Vigil's engine (or, later, another data source).
pub trait DataSource: Send + Sync {
    /// A range query; each series' labels and samples.
    fn range_query(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<QuerySeries>, String>;
    /// An instant query; each result's labels and `(time, value)`. Scalars have no labels.
    fn instant_query_at(&self, expr: &str, time_ms: i64) -> Result<Vec<QuerySeries>, String>;
    /// Values of a label over series matching `selector` (all series when `None`).
    fn label_values(
        &self,
        label: &str,
        selector: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, String>;
    /// Label names over series matching `selector`.
    fn label_names(&self, selector: Option<&str>, start_ms: i64, end_ms: i64) -> Result<Vec<String>, String>;
    /// The default scrape interval, the floor of `$__interval` and the base of `$__rate_interval`.
    fn scrape_interval_ms(&self) -> i64;
    /// Another datasource a panel names (`{"type": "prometheus", "uid": …}` or a name), when it
    /// is not this one: panels then query it instead. `None` means this one.
    fn for_datasource(&self, reference: &serde_json::Value) -> Option<Box<dyn DataSource + '_>> {
        let _ = reference;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::{PanelData, Series};

    #[test]
    fn charts_hold_their_points_back_and_tables_keep_theirs() {
        let dashboard = crate::dashboard::parse_dashboard(
            r#"{"uid":"u","title":"t","panels":[
                {"id":1,"type":"timeseries","gridPos":{"x":0,"y":0,"w":12,"h":8}},
                {"id":2,"type":"table","gridPos":{"x":12,"y":0,"w":12,"h":8}},
                {"id":3,"type":"stat","gridPos":{"x":0,"y":8,"w":12,"h":8}}]}"#,
        )
        .unwrap();
        let data = PanelData {
            series: vec![Series { name: "a".into(), points: vec![(1, 1.0), (2, 2.0)] }],
            ..PanelData::default()
        };
        let result = |id| PanelResult { id, data: data.clone(), ..PanelResult::default() };
        let mut view =
            DashboardView { dashboard, panels: vec![result(1), result(2), result(3)], ..Default::default() };
        let held = view.hold_back_points();
        let light: Vec<bool> = view.panels.iter().map(|r| r.data.is_held_back()).collect();
        assert_eq!(light, [true, false, true]);
        assert_eq!(held.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(held[0].1, data);
        let mut back = view.clone();
        back.restore_points(held);
        assert!(back.panels.iter().all(|r| r.data == data));
        // What the page carries: no points for the charts.
        let wire = serde_json::to_string(&view).unwrap();
        assert_eq!(wire.matches("\"points\":[[1,1.0],[2,2.0]]").count(), 1, "{wire}");
    }
}
