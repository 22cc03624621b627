//! Dashboards: the store ([`store`]: one JSON file per dashboard under `<data>/dashboards`,
//! atomic writes, version checks), the built-in dashboards provisioned read-only at start
//! ([`provision_builtins`]), Grafana's import normalisation ([`import`]: placeholders and
//! datasource references resolved to Vigil's TSDB), and Grafana's dashboard HTTP API over them
//! ([`api`]), so tools that push dashboards to Grafana can push them to Vigil. The JSON model itself lives in the UI
//! crate (`app::dashboard`), shared with the browser.

pub mod api;
pub mod import;
pub mod store;

use app::dashboard::parse_dashboard;

pub use store::{DashboardStore, Entry, LoadProblem, StoreError};

/// Dashboards compiled into the binary: (file name, JSON).
pub const BUILTIN: &[(&str, &str)] = &[
    ("vigil.json", include_str!("dashboards/builtin/vigil.json")),
    ("node.json", include_str!("dashboards/builtin/node.json")),
    // The container-app dashboard ships with the compose example; `vigil demo` opens it.
    ("image-gallery.json", crate::demo::IMAGE_GALLERY_DASHBOARD),
];

/// Adds the built-in dashboards to `store`, read-only. A built-in that does not parse is a bug
/// caught by the tests; at run time it is logged and skipped.
pub fn provision_builtins(store: &DashboardStore) {
    for (name, json) in BUILTIN {
        match parse_dashboard(json) {
            Ok(d) => store.provision(d, "built-in", false, false),
            Err(e) => tracing::error!(dashboard = name, error = %e, "built-in dashboard is invalid"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_their_queries_are_valid_promql() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = DashboardStore::open(dir.path()).unwrap();
        provision_builtins(&store);
        assert_eq!(store.search("", &[]).len(), BUILTIN.len());
        for (name, json) in BUILTIN {
            let d = parse_dashboard(json).unwrap();
            for p in d.all_panels() {
                for t in &p.targets {
                    // Built-ins are parsed with the interval variables expanded, as they run.
                    let expr = t.expr.replace("$__rate_interval", "1m").replace("$instance", ".*");
                    promql_parser::parser::parse(&expr)
                        .unwrap_or_else(|e| panic!("{name} panel {}: {e}", p.id));
                }
            }
        }
    }
}
