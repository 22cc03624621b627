//! The scrape manager: one task per target, each fetching, parsing and appending on its own
//! schedule, as Prometheus's scrape pools do.
//!
//! [`ScrapeManager::apply`] diffs a new target list against the running loops: new targets get
//! a loop, vanished ones are stopped (their series receive staleness markers), unchanged ones
//! keep running with their caches. Each loop waits for its slot in the interval — an offset
//! derived from the target's key, so scrapes spread evenly and keep their phase across restarts
//! — then fetches with Prometheus's `Accept` header and timeout, and hands the body to
//! [`ingest`].
//!
//! [`ingest`] walks the body once, appending into one batch: a sample whose raw series text is
//! in the target's [`SeriesCache`] goes straight to its series ref; a new one gets its labels
//! built (target labels win clashes; the exposed label becomes `exported_<name>`) and is
//! cached. A parse error drops the whole batch. Series present in the previous scrape but not in
//! this one — or all of them, when the scrape failed — get Prometheus's stale marker, so
//! queries stop showing them at once instead of after the lookback window. Then the synthetic
//! series `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling` and `scrape_series_added` are appended.
//!
//! The job's limits fail a scrape the way a parse error does (nothing of it is stored, up = 0,
//! the error names the limit): `body_size_limit` while the body is read, `sample_limit` as
//! samples are kept, and the label limits when a series is first seen — a cached series
//! already passed them, and a change of limits restarts the loop with an empty cache.
//! Each job's targets share one HTTP client, built from its [`ClientOptions`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::client::{self, ClientOptions};
use super::parse::{Entry, Format, ParseError, Parser, Scratch, Validation};
use super::relabel::{compile_all, relabel, Rule};
use super::target::{Target, TargetSet};
use crate::config::ScrapeLimits;
use crate::tsdb::db::Db;
use crate::tsdb::head::{AppendError, Appender, MemSeries};
use crate::tsdb::index::SeriesRef;
use crate::tsdb::labels::{Labels, LabelsError, METRIC_NAME};

/// Prometheus's stale marker: a NaN no exporter produces.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("{0}")]
    Client(String),
    /// A `*_limit` of the scrape config was exceeded; the message names it.
    #[error("{0}")]
    Limit(String),
    #[error("{0}")]
    Http(String),
    #[error("server returned HTTP status {0}")]
    Status(reqwest::StatusCode),
    #[error("parse error: {0}")]
    Parse(#[from] ParseError),
    #[error("invalid labels in exposition: {0}")]
    Labels(#[from] LabelsError),
    #[error("storing samples failed: {0}")]
    Append(#[from] AppendError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The outcome of a target's latest scrape.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub health: Health,
    pub last_error: Option<String>,
    /// Start of the last scrape, ms since the epoch; 0 before the first.
    pub last_scrape_ms: i64,
    pub last_duration: Duration,
    pub samples_scraped: usize,
    /// Metric metadata (TYPE, HELP, UNIT) of the last successful scrape, by metric family name.
    pub metadata: Arc<BTreeMap<String, MetricMeta>>,
}

/// What an exposition says about one metric family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricMeta {
    /// `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`, `stateset` or
    /// `unknown` (the text format's `untyped`).
    pub kind: &'static str,
    pub help: String,
    pub unit: String,
}

impl Default for TargetStatus {
    fn default() -> Self {
        TargetStatus {
            health: Health::Unknown,
            last_error: None,
            last_scrape_ms: 0,
            last_duration: Duration::ZERO,
            samples_scraped: 0,
            metadata: Arc::default(),
        }
    }
}

struct Running {
    target: Target,
    status: Arc<RwLock<TargetStatus>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

pub struct ScrapeManager {
    db: Arc<Db>,
    /// One client per distinct job client settings. One that cannot be built (a CA file not
    /// there yet) is not kept: its targets report the error and retry at each scrape.
    clients: Mutex<Vec<(Arc<ClientOptions>, reqwest::Client)>>,
    loops: Mutex<HashMap<u64, Running>>,
    /// Discovered targets that relabeling dropped, with their job, for `/api/v1/targets`.
    dropped: Mutex<Vec<(String, Labels)>>,
}

impl ScrapeManager {
    pub fn new(db: Arc<Db>) -> Result<ScrapeManager, ScrapeError> {
        // The default client is built at once, so a broken TLS setup shows at start-up.
        let default = Arc::new(ClientOptions::default());
        let client = client::build(&default).map_err(ScrapeError::Client)?;
        Ok(ScrapeManager {
            db,
            clients: Mutex::new(vec![(default, client)]),
            loops: Mutex::new(HashMap::new()),
            dropped: Mutex::new(Vec::new()),
        })
    }

    fn client_for(&self, opts: &Arc<ClientOptions>) -> Result<reqwest::Client, String> {
        let mut clients = self.clients.lock();
        if let Some((_, c)) = clients.iter().find(|(o, _)| o == opts) {
            return Ok(c.clone());
        }
        let built = client::build(opts);
        match &built {
            Ok(c) => clients.push((opts.clone(), c.clone())),
            Err(e) => {
                tracing::error!(error = %e, "cannot create the HTTP client of a scrape config; its targets retry at each scrape")
            }
        }
        built
    }

    /// Starts loops for new targets and stops loops for targets no longer listed.
    pub fn apply(&self, set: TargetSet) {
        *self.dropped.lock() = set.dropped;
        let targets = set.active;
        let mut loops = self.loops.lock();
        let wanted: HashMap<u64, Target> = targets.into_iter().map(|t| (t.key(), t)).collect();
        let gone: Vec<u64> = loops.keys().filter(|k| !wanted.contains_key(k)).copied().collect();
        for k in gone {
            if let Some(r) = loops.remove(&k) {
                // The loop marks its series stale and exits; no need to wait for it here.
                let _ = r.stop.send(true);
            }
        }
        for (k, target) in wanted {
            if loops.get(&k).is_some_and(|r| r.target == target) {
                continue;
            }
            if let Some(old) = loops.remove(&k) {
                let _ = old.stop.send(true);
            }
            let status = Arc::new(RwLock::new(TargetStatus::default()));
            let (stop, stop_rx) = watch::channel(false);
            let task = tokio::spawn(scrape_loop(
                self.db.clone(),
                self.client_for(&target.client),
                target.clone(),
                status.clone(),
                stop_rx,
            ));
            loops.insert(k, Running { target, status, stop, task });
        }
        // Clients of settings no target uses any more (after a reload) are dropped; the
        // default one stays.
        self.clients.lock().retain(|(o, _)| {
            **o == ClientOptions::default() || loops.values().any(|r| r.target.client == *o)
        });
    }

    /// Every running target with its latest status, ordered by job then URL.
    pub fn targets(&self) -> Vec<(Target, TargetStatus)> {
        let mut all: Vec<(Target, TargetStatus)> =
            self.loops.lock().values().map(|r| (r.target.clone(), r.status.read().clone())).collect();
        all.sort_by(|a, b| (&a.0.job, &a.0.url).cmp(&(&b.0.job, &b.0.url)));
        all
    }

    /// Targets relabeling dropped: (job, discovered labels).
    pub fn dropped(&self) -> Vec<(String, Labels)> {
        self.dropped.lock().clone()
    }

    /// Stops every loop and waits for each to mark its series stale.
    pub async fn stop_all(&self) {
        let running: Vec<Running> = self.loops.lock().drain().map(|(_, r)| r).collect();
        for r in &running {
            let _ = r.stop.send(true);
        }
        for r in running {
            let _ = r.task.await;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

async fn scrape_loop(
    db: Arc<Db>,
    mut client: Result<reqwest::Client, String>,
    target: Target,
    status: Arc<RwLock<TargetStatus>>,
    mut stop: watch::Receiver<bool>,
) {
    let interval = target.interval.as_millis().max(1) as i64;
    let offset = (target.key() % interval as u64) as i64;
    let mut cache = SeriesCache::default();
    let now = now_ms();
    // The first slot at `offset` within the interval that is still ahead.
    let mut next = now - now.rem_euclid(interval) + offset;
    if next < now {
        next += interval;
    }
    loop {
        let wait = Duration::from_millis(u64::try_from(next - now_ms()).unwrap_or(0));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
        let start_ms = next;
        let started = Instant::now();
        if client.is_err() {
            client = client::build(&target.client);
        }
        let fetched = fetch(&client, &target).await;
        let duration = started.elapsed();
        let outcome = match &fetched {
            Ok((body, format)) => ingest(&db, &target, &mut cache, Some((body, *format)), start_ms, duration),
            Err(e) => ingest(&db, &target, &mut cache, None, start_ms, duration)
                .and(Err(ScrapeError::Http(e.to_string()))),
        };
        let outcome = match (fetched, outcome) {
            (Err(e), _) => Err(e),
            (Ok(_), r) => r,
        };
        {
            let mut s = status.write();
            s.last_scrape_ms = start_ms;
            s.last_duration = duration;
            match outcome {
                Ok(n) => {
                    s.health = Health::Up;
                    s.last_error = None;
                    s.samples_scraped = n;
                    if cache.metadata_changed {
                        s.metadata = Arc::new(cache.metadata.clone());
                        cache.metadata_changed = false;
                    }
                }
                Err(e) => {
                    tracing::debug!(target = %target.url, error = %e, "scrape failed");
                    s.health = Health::Down;
                    s.last_error = Some(e.to_string());
                }
            }
        }
        next += interval;
        let now = now_ms();
        if next <= now {
            // Fell behind (a slow scrape or a suspended machine): skip missed slots.
            next += ((now - next) / interval + 1) * interval;
        }
    }
    // The target is gone: end its series now rather than after the lookback window.
    let mut app = db.appender();
    let t = now_ms();
    cache.mark_all_stale(&mut app, t);
    for (r, labels) in cache.report_refs.values() {
        append_known(&mut app, *r, labels, t, f64::from_bits(STALE_NAN_BITS));
    }
    if let Err(e) = app.commit() {
        tracing::warn!(target = %target.url, error = %e, "cannot write staleness markers");
    }
}

async fn fetch(
    client: &Result<reqwest::Client, String>,
    target: &Target,
) -> Result<(Vec<u8>, Format), ScrapeError> {
    let client = client.as_ref().map_err(|e| ScrapeError::Client(e.clone()))?;
    let req = client
        .get(&target.url)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", target.timeout.as_secs_f64()))
        .timeout(target.timeout);
    let req = client::authorize(req, &target.client).await.map_err(ScrapeError::Client)?;
    let mut resp = req.send().await.map_err(|e| ScrapeError::Http(describe_reqwest(&e)))?;
    if !resp.status().is_success() {
        return Err(ScrapeError::Status(resp.status()));
    }
    let format = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(Format::from_content_type)
        .unwrap_or(Format::Text);
    // Read chunk by chunk so that an oversized body is refused without being held whole;
    // the chunks are already decompressed, so the limit is on the uncompressed size.
    let limit = target.limits.body_size_limit;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| ScrapeError::Http(describe_reqwest(&e)))? {
        if let Some(limit) = limit {
            if (body.len() + chunk.len()) as u64 > limit.0 {
                return Err(ScrapeError::Limit(format!(
                    "body size limit exceeded (body_size_limit: {limit})"
                )));
            }
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, format))
}

/// reqwest's Display hides the cause ("error sending request"); the innermost error names it,
/// and the shape follows Prometheus's `Get "<url>": <cause>`.
fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "context deadline exceeded (scrape timeout)".to_string();
    }
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    match e.url() {
        Some(url) => format!("Get \"{url}\": {cause}"),
        None => cause,
    }
}

/// Per-target memory of the series seen: raw series text → series, and which scrape saw it.
#[derive(Default)]
pub struct SeriesCache {
    /// Keyed by the exposed series text, in the order the target first exposed them. A target
    /// exposes its series in the same order every scrape, so the next entry is tried first
    /// (`cursor`): a sequential walk through memory instead of a hash lookup per sample. FxHash
    /// for the misses: SipHash cost as much as parsing the line.
    entries: indexmap::IndexMap<Box<str>, CacheEntry, rustc_hash::FxBuildHasher>,
    /// The head's count of removed series when the handles were last known valid.
    removed_seen: u64,
    iteration: u64,
    scratch: Option<Scratch>,
    report_refs: HashMap<&'static str, (SeriesRef, Labels)>,
    /// `metric_relabel_configs`, compiled on the first scrape.
    metric_rules: Option<Vec<Rule>>,
    /// TYPE/HELP/UNIT seen, by family; only touched when an exposition changes them.
    metadata: BTreeMap<String, MetricMeta>,
    metadata_changed: bool,
}

impl SeriesCache {
    /// Records one metadata line, allocating only when it differs from what was known.
    fn note_metadata(&mut self, name: &str, update: impl FnOnce(&mut MetricMeta) -> bool) {
        match self.metadata.get_mut(name) {
            Some(m) => self.metadata_changed |= update(m),
            None => {
                let mut m = MetricMeta { kind: "unknown", ..MetricMeta::default() };
                update(&mut m);
                self.metadata.insert(name.to_string(), m);
                self.metadata_changed = true;
            }
        }
    }
}

struct CacheEntry {
    /// `None`: metric relabeling dropped this series; later scrapes skip it for free. The series
    /// itself rather than its ref: appending needs no lookup in the head.
    series: Option<Arc<MemSeries>>,
    labels: Labels,
    seen: u64,
    /// The scrape that first saw it.
    born: u64,
}

/// The label limits, checked once per new series, with Prometheus's messages.
fn check_label_limits(labels: &Labels, limits: &ScrapeLimits) -> Result<(), ScrapeError> {
    let metric: String = labels.metric_name().unwrap_or_default().chars().take(50).collect();
    if let Some(limit) = limits.label_limit {
        if labels.len() as u64 > limit {
            return Err(ScrapeError::Limit(format!(
                "label_limit exceeded (metric: {metric}, number of labels: {}, limit: {limit})",
                labels.len()
            )));
        }
    }
    for (name, value) in labels.iter() {
        if let Some(limit) = limits.label_name_length_limit {
            if name.len() as u64 > limit {
                return Err(ScrapeError::Limit(format!(
                    "label_name_length_limit exceeded (metric: {metric}, label name: {name}, length: {}, limit: {limit})",
                    name.len()
                )));
            }
        }
        if let Some(limit) = limits.label_value_length_limit {
            if value.len() as u64 > limit {
                return Err(ScrapeError::Limit(format!(
                    "label_value_length_limit exceeded (metric: {metric}, label name: {name}, length: {}, limit: {limit})",
                    value.len()
                )));
            }
        }
    }
    Ok(())
}

impl SeriesCache {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn mark_all_stale(&mut self, app: &mut Appender<'_>, t: i64) {
        for e in self.entries.values() {
            if let Some(s) = &e.series {
                app.append_series(s, t, f64::from_bits(STALE_NAN_BITS));
            }
        }
        self.entries.clear();
    }
}

/// Appends to a cached series; after the head removed series (`recheck`), through its ref, so
/// a dropped one is found again (or re-created) by its labels and the cache gets the new one.
fn append_cached(
    app: &mut Appender<'_>,
    series: &mut Arc<MemSeries>,
    labels: &Labels,
    t: i64,
    v: f64,
    recheck: bool,
) {
    if !recheck {
        app.append_series(series, t, v);
    } else if app.append_ref(series.series_ref, t, v).is_err() {
        *series = app.append_new(labels, t, v);
    }
}

/// Appends by ref, falling back to the labels if the head dropped the series meanwhile.
fn append_known(app: &mut Appender<'_>, r: SeriesRef, labels: &Labels, t: i64, v: f64) -> SeriesRef {
    match app.append_ref(r, t, v) {
        Ok(()) => r,
        Err(_) => app.append(labels, t, v),
    }
}

/// Builds the stored labels of a sample: its own labels plus the target's, the target's winning
/// a clash (the exposed one is kept as `exported_<name>`, as Prometheus does without
/// `honor_labels`).
fn sample_labels(
    target: &Labels,
    name: &str,
    labels: super::parse::LabelsText<'_>,
    honor_labels: bool,
) -> Result<Labels, LabelsError> {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(target.len() + 4);
    pairs.push((METRIC_NAME.to_string(), name.to_string()));
    for (n, v) in labels.iter() {
        let v = v.unescape();
        if v.is_empty() {
            continue;
        }
        let mut n = n.to_string();
        while !honor_labels && target.contains(&n) {
            n = format!("exported_{n}");
        }
        pairs.push((n, v.into_owned()));
    }
    for (n, v) in target.iter() {
        // With honor_labels the exposed value wins; otherwise the exposed one was renamed.
        if !pairs.iter().any(|(e, _)| e == n) {
            pairs.push((n.to_string(), v.to_string()));
        }
    }
    Labels::new(pairs)
}

/// Parses `body` (None: the scrape failed) into the database; see the module documentation.
/// Returns the number of samples scraped.
pub fn ingest(
    db: &Db,
    target: &Target,
    cache: &mut SeriesCache,
    body: Option<(&[u8], Format)>,
    t: i64,
    duration: Duration,
) -> Result<usize, ScrapeError> {
    cache.iteration += 1;
    let iteration = cache.iteration;
    // Handles stay valid until the head removes series (after a block is cut, every 2 h or so);
    // then this scrape looks each one up once more.
    let removed = db.head().counters.series_removed.load(std::sync::atomic::Ordering::Acquire);
    let recheck = removed != cache.removed_seen;
    cache.removed_seen = removed;
    let mut scraped = 0usize;
    let mut kept = 0usize;
    let mut added = 0usize;
    if cache.metric_rules.is_none() {
        // Validated with the configuration, so this cannot fail; an empty list is the safe fallback.
        cache.metric_rules = Some(compile_all(&target.metric_relabel).unwrap_or_default());
    }
    let rules = cache.metric_rules.take().unwrap_or_default();
    let parsed: Result<Appender<'_>, ScrapeError> = match body {
        None => Err(ScrapeError::Http(String::new())),
        Some((body, format)) => {
            let mut app = db.appender();
            let scratch = cache.scratch.take().unwrap_or_default();
            let mut parser = Parser::with_scratch(body, format, Validation::Syntax, scratch);
            let mut failed = None;
            let mut cursor = 0usize;
            while let Some(entry) = parser.next_entry() {
                let sample = match entry {
                    Ok(Entry::Sample(s)) => s,
                    Ok(Entry::Type { name, kind }) => {
                        let kind = kind.as_str();
                        cache.note_metadata(name, |m| std::mem::replace(&mut m.kind, kind) != kind);
                        continue;
                    }
                    Ok(Entry::Help { name, text }) => {
                        let text = text.unescape();
                        cache.note_metadata(name, |m| {
                            let changed = m.help != text;
                            if changed {
                                m.help = text.into_owned();
                            }
                            changed
                        });
                        continue;
                    }
                    Ok(Entry::Unit { name, unit }) => {
                        cache.note_metadata(name, |m| {
                            let changed = m.unit != unit;
                            if changed {
                                m.unit = unit.to_string();
                            }
                            changed
                        });
                        continue;
                    }
                    Err(e) => {
                        failed = Some(ScrapeError::Parse(e));
                        break;
                    }
                };
                scraped += 1;
                let ts = if target.honor_timestamps { sample.timestamp_ms.unwrap_or(t) } else { t };
                let hit = match cache.entries.get_index_mut(cursor) {
                    Some((k, _)) if **k == *sample.series => Some(cursor),
                    _ => cache.entries.get_index_of(sample.series),
                };
                if let Some((_, e)) = hit.and_then(|i| {
                    cursor = i + 1;
                    cache.entries.get_index_mut(i)
                }) {
                    if let Some(s) = &mut e.series {
                        append_cached(&mut app, s, &e.labels, ts, sample.value, recheck);
                        kept += 1;
                    }
                    e.seen = iteration;
                } else {
                    match sample_labels(&target.labels, sample.name, sample.labels, target.honor_labels) {
                        Ok(labels) => {
                            let entry = match relabel(&labels, &rules).filter(|l| l.metric_name().is_some()) {
                                Some(labels) => {
                                    if let Err(e) = check_label_limits(&labels, &target.limits) {
                                        failed = Some(e);
                                        break;
                                    }
                                    let s = app.append_new(&labels, ts, sample.value);
                                    added += 1;
                                    kept += 1;
                                    CacheEntry { series: Some(s), labels, seen: iteration, born: iteration }
                                }
                                None => CacheEntry { series: None, labels, seen: iteration, born: iteration },
                            };
                            cache.entries.insert(sample.series.into(), entry);
                            cursor = cache.entries.len();
                        }
                        Err(e) => {
                            failed = Some(ScrapeError::Labels(e));
                            break;
                        }
                    }
                }
                if let Some(limit) = target.limits.sample_limit {
                    if kept as u64 > limit {
                        failed = Some(ScrapeError::Limit(format!(
                            "sample limit exceeded (sample_limit: {limit})"
                        )));
                        break;
                    }
                }
            }
            cache.scratch = Some(parser.into_scratch());
            cache.metric_rules = Some(rules);
            match failed {
                Some(e) => Err(e),
                None => Ok(app),
            }
        }
    };

    let result = match parsed {
        Ok(mut app) => {
            // Series the previous scrape had and this one did not: stale from now on.
            for e in cache.entries.values_mut().filter(|e| e.seen == iteration - 1) {
                if let Some(s) = &mut e.series {
                    append_cached(&mut app, s, &e.labels, t, f64::from_bits(STALE_NAN_BITS), recheck);
                }
            }
            cache.entries.retain(|_, e| e.seen == iteration);
            app.commit().map(|_| scraped).map_err(ScrapeError::from)
        }
        Err(e) => {
            // Nothing of a failed scrape is kept; everything it used to expose goes stale.
            // Series first seen in this scrape were never committed: forget them rather than
            // store a lone stale marker for each.
            cache.entries.retain(|_, e| e.born != iteration);
            let mut app = db.appender();
            cache.mark_all_stale(&mut app, t);
            app.commit()?;
            scraped = 0;
            kept = 0;
            added = 0;
            Err(e)
        }
    };

    let up = if result.is_ok() { 1.0 } else { 0.0 };
    let report = [
        ("up", up),
        ("scrape_duration_seconds", duration.as_secs_f64()),
        ("scrape_samples_scraped", scraped as f64),
        ("scrape_samples_post_metric_relabeling", kept as f64),
        ("scrape_series_added", added as f64),
    ];
    let mut app = db.appender();
    for (name, v) in report {
        match cache.report_refs.get(name) {
            Some((r, labels)) => {
                let r = append_known(&mut app, *r, labels, t, v);
                if let Some(e) = cache.report_refs.get_mut(name) {
                    e.0 = r;
                }
            }
            None => {
                let labels = target.labels.with(METRIC_NAME, name)?;
                let r = app.append(&labels, t, v);
                cache.report_refs.insert(name, (r, labels));
            }
        }
    }
    app.commit()?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::db::DbOptions;
    use crate::tsdb::index::Matcher;

    fn target() -> Target {
        let labels = Labels::new([("job", "app"), ("instance", "h:1")]).unwrap();
        Target {
            job: "app".into(),
            url: "http://h:1/metrics".into(),
            discovered: labels.clone(),
            labels,
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            honor_labels: false,
            honor_timestamps: true,
            metric_relabel: Vec::new(),
            client: Arc::default(),
            limits: ScrapeLimits::default(),
        }
    }

    fn values(db: &Db, name: &str) -> Vec<(Labels, Vec<(i64, u64)>)> {
        db.select(&[Matcher::equal("__name__", name)], 0, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| (s.labels.clone(), s.samples().into_iter().map(|(t, v)| (t, v.to_bits())).collect()))
            .collect()
    }

    #[test]
    fn metric_relabeling_honor_labels_and_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let mut t = target();
        t.honor_labels = true;
        t.honor_timestamps = false;
        t.metric_relabel = serde_saphyr::from_str(
            "- source_labels: [__name__]\n  regex: go_.*\n  action: drop\n- regex: noisy\n  action: labeldrop\n",
        )
        .unwrap();
        let mut cache = SeriesCache::default();
        let body = "go_goroutines 7\nreqs{job=\"inner\",noisy=\"x\"} 5 1234\n";
        for at in [10_000, 25_000] {
            ingest(&db, &t, &mut cache, Some((body.as_bytes(), Format::Text)), at, Duration::ZERO).unwrap();
        }
        assert!(values(&db, "go_goroutines").is_empty(), "dropped by metric_relabel_configs");
        let reqs = values(&db, "reqs");
        assert_eq!(reqs[0].0.to_string(), r#"reqs{instance="h:1", job="inner"}"#, "honor_labels keeps job");
        assert_eq!(
            reqs[0].1,
            vec![(10_000, 5.0f64.to_bits()), (25_000, 5.0f64.to_bits())],
            "scrape time used"
        );
        let post = values(&db, "scrape_samples_post_metric_relabeling");
        assert_eq!(post[0].1[1], (25_000, 1.0f64.to_bits()));
        assert_eq!(values(&db, "scrape_samples_scraped")[0].1[1], (25_000, 2.0f64.to_bits()));
    }

    #[test]
    fn cached_series_survive_the_head_removing_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let t = target();
        let mut cache = SeriesCache::default();
        let scrape = |cache: &mut SeriesCache, at: i64, v: f64| {
            let body = format!("a {v}\n");
            ingest(&db, &t, cache, Some((body.as_bytes(), Format::Text)), at, Duration::ZERO).unwrap();
        };
        scrape(&mut cache, 10_000, 1.0);
        // The head drops everything before 20 s: `a`'s only series goes, while the cache holds it.
        assert!(db.head().truncate(20_000) > 0);
        scrape(&mut cache, 25_000, 2.0);
        scrape(&mut cache, 40_000, 3.0);
        assert_eq!(values(&db, "a")[0].1, vec![(25_000, 2.0f64.to_bits()), (40_000, 3.0f64.to_bits())]);
        // The cache now holds the live series, the one the head's index finds.
        let live = cache.entries.values().filter_map(|e| e.series.clone()).collect::<Vec<_>>();
        assert_eq!(live.len(), 1);
        assert!(db.head().series_by_ref(live[0].series_ref).is_some_and(|s| Arc::ptr_eq(&s, &live[0])));
    }

    #[test]
    fn exceeded_limits_store_nothing_and_name_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let mut t = target();
        t.limits.sample_limit = Some(2);
        let mut cache = SeriesCache::default();
        let ok = "a 1\nb 2\n";
        ingest(&db, &t, &mut cache, Some((ok.as_bytes(), Format::Text)), 10_000, Duration::ZERO).unwrap();
        let over = "a 1\nb 2\nc 3\n";
        let err = ingest(&db, &t, &mut cache, Some((over.as_bytes(), Format::Text)), 25_000, Duration::ZERO)
            .unwrap_err();
        assert_eq!(err.to_string(), "sample limit exceeded (sample_limit: 2)");
        assert_eq!(values(&db, "a")[0].1, vec![(10_000, 1.0f64.to_bits()), (25_000, STALE_NAN_BITS)]);
        assert!(values(&db, "c").is_empty(), "a series first seen in a failed scrape is not created");
        assert_eq!(values(&db, "up")[0].1.last(), Some(&(25_000, 0.0f64.to_bits())));

        let mut t = target();
        t.limits.label_limit = Some(4);
        let mut cache = SeriesCache::default();
        let body = "x{a=\"1\"} 1\ny{a=\"1\",b=\"2\"} 1\n";
        let err = ingest(&db, &t, &mut cache, Some((body.as_bytes(), Format::Text)), 40_000, Duration::ZERO)
            .unwrap_err();
        assert_eq!(err.to_string(), "label_limit exceeded (metric: y, number of labels: 5, limit: 4)");
        assert!(values(&db, "x").is_empty(), "nothing of the failed scrape is committed");
    }

    #[test]
    fn scrape_appends_samples_report_series_and_stale_markers() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let t = target();
        let mut cache = SeriesCache::default();
        let body =
            "# TYPE reqs counter\nreqs{code=\"200\",job=\"inner\"} 5\nreqs{code=\"500\"} 1\ntemp 21.5 1234\n";
        let n = ingest(
            &db,
            &t,
            &mut cache,
            Some((body.as_bytes(), Format::Text)),
            10_000,
            Duration::from_millis(3),
        )
        .unwrap();
        assert_eq!(n, 3);
        let reqs = values(&db, "reqs");
        assert_eq!(reqs.len(), 2);
        assert_eq!(
            reqs[0].0.to_string(),
            r#"reqs{code="200", exported_job="inner", instance="h:1", job="app"}"#
        );
        assert_eq!(values(&db, "temp")[0].1, vec![(1234, 21.5f64.to_bits())]);
        assert_eq!(values(&db, "up")[0].1, vec![(10_000, 1.0f64.to_bits())]);
        assert_eq!(values(&db, "scrape_series_added")[0].1, vec![(10_000, 3.0f64.to_bits())]);
        assert_eq!(cache.metadata["reqs"].kind, "counter");
        assert!(cache.metadata_changed);

        // Second scrape: one series gone → stale marker; cached series reuse their refs.
        let body = "reqs{code=\"200\",job=\"inner\"} 6\ntemp 22 2234\n";
        ingest(&db, &t, &mut cache, Some((body.as_bytes(), Format::Text)), 25_000, Duration::ZERO).unwrap();
        let reqs = values(&db, "reqs");
        assert_eq!(reqs[1].1, vec![(10_000, 1.0f64.to_bits()), (25_000, STALE_NAN_BITS)]);
        assert_eq!(values(&db, "scrape_series_added")[0].1[1], (25_000, 0.0f64.to_bits()));

        // A broken body: nothing of it is stored, everything goes stale, up = 0.
        let body = "reqs{code=\"200\" 7\n";
        let err = ingest(&db, &t, &mut cache, Some((body.as_bytes(), Format::Text)), 40_000, Duration::ZERO)
            .unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        let reqs = values(&db, "reqs");
        assert_eq!(reqs[0].1.last(), Some(&(40_000, STALE_NAN_BITS)));
        assert_eq!(values(&db, "up")[0].1.last(), Some(&(40_000, 0.0f64.to_bits())));
        assert!(cache.is_empty());
    }
}
