//! Scraping: turning targets' `/metrics` bodies into samples in the TSDB.
//!
//! [`target`] derives the targets and their labels from the configuration, through
//! [`relabel`]'s `relabel_configs`; [`manager`] runs one
//! loop per target (schedule, HTTP fetch with Prometheus's `Accept` negotiation, per-target
//! series cache, staleness markers, the `up`/`scrape_*` series); [`parse`] is the zero-copy
//! exposition parser the loop drives: it picks the format with
//! [`parse::Format::from_content_type`], walks the body with a [`parse::Parser`], and uses each
//! sample's raw series text as the key of the cache so that unchanged series skip label parsing
//! and hashing. [`client`] turns a job's `basic_auth`, `authorization` and `tls_config` into
//! the HTTP client and request headers the loop uses.

pub mod client;
pub mod manager;
pub mod parse;
pub mod relabel;
pub mod target;
