//! Scraping: turning a target's `/metrics` body into samples for the TSDB.
//!
//! This module will own target scraping — HTTP fetch with Prometheus's `Accept` negotiation,
//! per-target series caches, staleness markers and the `up`/`scrape_*` synthetic series. For now
//! it holds the exposition-format parser ([`parse`]), which the scrape loop drives: it picks the
//! format with [`parse::Format::from_content_type`], walks the body with a [`parse::Parser`], and
//! uses each sample's raw series text as the key of its cache so that unchanged series skip label
//! parsing and hashing.

pub mod parse;
