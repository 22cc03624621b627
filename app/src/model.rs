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
pub trait Backend: Send + Sync + 'static {
    fn status(&self) -> StatusInfo;
    fn targets(&self) -> Vec<TargetInfo>;
    /// Evaluates a PromQL expression at the current time; the error is the message to show.
    fn instant_query(&self, expr: &str) -> Result<QueryTable, String>;
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
