//! DNS service discovery: Prometheus's `dns_sd_configs`.
//!
//! Every configured name, with its record type and port, is a [`Query`]. [`DnsSd`] keeps the
//! groups each query last resolved to and when; [`refresh`] asks it which queries are due
//! (each at its `refresh_interval`, default 30 s), resolves those concurrently without holding
//! the state's lock, and stores the answers. A failed lookup keeps the query's last good groups
//! and logs the error, as Prometheus does, while a name that does not exist (NXDOMAIN) or has no
//! records of the type (NODATA) is an answer: no targets. [`DnsSd::groups`] hands the cached
//! groups to target building, one group per record with the `__meta_dns_*` labels.
//!
//! Lookups go to the name servers of the system's resolver configuration (`/etc/resolv.conf`,
//! with its search domains), never to `/etc/hosts`. Each refresh builds a fresh resolver, as
//! Prometheus re-reads `resolv.conf` for every lookup: an edited configuration takes effect
//! and no cache hides changed records. The environment variable [`NAMESERVER_ENV`]
//! (`ip:port`) replaces the system's servers with one server and no search domains: the
//! integration tests use it to point Vigil at a private DNS server on a high port.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use parking_lot::Mutex;

use super::{Discovered, TargetGroup};
use crate::config::{Config, DnsRecordType};

/// Prometheus's default `refresh_interval` for DNS discovery.
pub const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(30);

/// How early a query counts as due; see [`DnsSd::due`].
const DUE_SLACK: Duration = Duration::from_millis(100);

/// Overrides the system's name servers with one `ip:port` (for tests and special setups).
pub const NAMESERVER_ENV: &str = "VIGIL_DNS_SD_NAMESERVER";

/// One name to resolve, as a `dns_sd_configs` entry asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    pub name: String,
    pub record_type: DnsRecordType,
    /// The port targets get (0 for SRV, whose records carry their own).
    pub port: u16,
}

#[derive(Debug)]
struct QueryState {
    every: Duration,
    asked_at: Option<Instant>,
    groups: Vec<TargetGroup>,
}

/// DNS discovery for every job of a configuration: the last good answer per query.
#[derive(Default)]
pub struct DnsSd {
    queries: HashMap<Query, QueryState>,
    errors: Vec<String>,
}

/// What one query's lookup gave: groups, or why there are none this time.
pub type Answer = Result<Vec<TargetGroup>, String>;

fn queries_of(config: &Config) -> impl Iterator<Item = (&str, Query, Duration)> {
    config.scrape_configs.iter().flat_map(|sc| {
        sc.dns_sd_configs.iter().flat_map(move |d| {
            let every = d.refresh_interval.map_or(DEFAULT_DNS_REFRESH, |r| r.0);
            d.names.iter().map(move |name| {
                let port = if d.record_type == DnsRecordType::Srv { 0 } else { d.port.unwrap_or(0) };
                (sc.job_name.as_str(), Query { name: name.clone(), record_type: d.record_type, port }, every)
            })
        })
    })
}

impl DnsSd {
    /// Errors of the last lookups, one line each.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// The queries of `config` due for a lookup now; queries `config` no longer has are
    /// forgotten.
    pub fn due(&mut self, config: &Config) -> Vec<Query> {
        let mut wanted: HashMap<Query, Duration> = HashMap::new();
        for (_, q, every) in queries_of(config) {
            let e = wanted.entry(q).or_insert(every);
            *e = (*e).min(every);
        }
        self.queries.retain(|q, _| wanted.contains_key(q));
        let mut due = Vec::new();
        for (q, every) in wanted {
            let state = self.queries.entry(q.clone()).or_insert(QueryState {
                every,
                asked_at: None,
                groups: Vec::new(),
            });
            state.every = every;
            // Counted from when the lookup was handed out, with a little slack: the caller
            // polls once a second, and a query due a few milliseconds after a poll would
            // otherwise wait a whole extra second.
            if state.asked_at.is_none_or(|at| at.elapsed() + DUE_SLACK >= state.every) {
                state.asked_at = Some(Instant::now());
                due.push(q);
            }
        }
        due
    }

    /// Records lookup results; a failure keeps the query's previous groups. Returns whether
    /// any query's groups changed.
    pub fn store(&mut self, answers: Vec<(Query, Answer)>) -> bool {
        self.errors.clear();
        let mut changed = false;
        for (q, answer) in answers {
            let Some(state) = self.queries.get_mut(&q) else { continue };
            match answer {
                Ok(groups) => {
                    changed |= state.groups != groups;
                    state.groups = groups;
                }
                Err(e) => {
                    tracing::warn!(name = %q.name, error = %e, "DNS discovery: keeping the last good targets");
                    self.errors.push(format!("{} {}: {e}", q.record_type.as_str(), q.name));
                }
            }
        }
        changed
    }

    /// Every job's groups from the last good answers.
    pub fn groups(&self, config: &Config) -> Discovered {
        let mut out = Discovered::new();
        for (job, q, _) in queries_of(config) {
            if let Some(state) = self.queries.get(&q) {
                out.entry(job.to_string()).or_default().extend(state.groups.iter().cloned());
            }
        }
        out
    }
}

/// What one [`refresh`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Some job's groups changed: targets need rebuilding.
    pub changed: bool,
    pub lookups: u64,
    pub failures: u64,
}

/// Resolves the due queries of `config` and stores the answers in `state`.
pub async fn refresh(state: &Mutex<DnsSd>, config: &Config) -> Refreshed {
    let due = state.lock().due(config);
    if due.is_empty() {
        return Refreshed::default();
    }
    let answers = match build_resolver() {
        Ok(resolver) => resolve_all(&resolver, due).await,
        Err(e) => due.into_iter().map(|q| (q, Err(e.clone()))).collect(),
    };
    let lookups = answers.len() as u64;
    let failures = answers.iter().filter(|(_, a)| a.is_err()).count() as u64;
    Refreshed { changed: state.lock().store(answers), lookups, failures }
}

fn build_resolver() -> Result<TokioResolver, String> {
    let mut builder = match std::env::var(NAMESERVER_ENV) {
        Ok(addr) => {
            let addr: SocketAddr = addr
                .parse()
                .map_err(|e| format!("{NAMESERVER_ENV}={addr:?} is not an ip:port address: {e}"))?;
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = addr.port();
                    c
                })
                .collect();
            let server = NameServerConfig::new(addr.ip(), true, connections);
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        Err(_) => TokioResolver::builder_tokio()
            .map_err(|e| format!("cannot read the system's resolver configuration: {e}"))?,
    };
    // Discovery asks DNS servers, as Prometheus does; /etc/hosts is for the scraper's own lookups.
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    builder.build().map_err(|e| format!("cannot create a DNS resolver: {e}"))
}

async fn resolve_all(resolver: &TokioResolver, queries: Vec<Query>) -> Vec<(Query, Answer)> {
    let mut set = tokio::task::JoinSet::new();
    for q in queries {
        let resolver = resolver.clone();
        set.spawn(async move {
            let answer = resolve(&resolver, &q).await;
            (q, answer)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        // A panicked lookup leaves its query without an answer, i.e. with its old groups.
        if let Ok(pair) = joined {
            out.push(pair);
        }
    }
    out
}

async fn resolve(resolver: &TokioResolver, q: &Query) -> Answer {
    let record_type = match q.record_type {
        DnsRecordType::Srv => RecordType::SRV,
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::AAAA,
        DnsRecordType::Mx => RecordType::MX,
        DnsRecordType::Ns => RecordType::NS,
    };
    match resolver.lookup(q.name.as_str(), record_type).await {
        Ok(lookup) => Ok(groups_from(q, lookup.answers())),
        // The name does not exist or has no such records: a valid, empty answer.
        Err(e) if e.is_no_records_found() => Ok(Vec::new()),
        Err(e) => Err(format!("cannot resolve {:?}: {e}", q.name)),
    }
}

/// One group per usable record, addressed and labelled as Prometheus does.
pub fn groups_from(q: &Query, records: &[Record]) -> Vec<TargetGroup> {
    let mut out = Vec::new();
    for r in records {
        let mut labels = BTreeMap::from([("__meta_dns_name".to_string(), q.name.clone())]);
        let address = match &r.data {
            RData::SRV(srv) => {
                let target = srv.target.to_string();
                let address = host_port(target.trim_end_matches('.'), srv.port);
                labels.insert("__meta_dns_srv_record_target".into(), target);
                labels.insert("__meta_dns_srv_record_port".into(), srv.port.to_string());
                address
            }
            RData::A(a) => host_port(&a.0.to_string(), q.port),
            RData::AAAA(a) => host_port(&a.0.to_string(), q.port),
            RData::MX(mx) => {
                let target = mx.exchange.to_string();
                let address = host_port(target.trim_end_matches('.'), q.port);
                labels.insert("__meta_dns_mx_record_target".into(), target);
                address
            }
            RData::NS(ns) => {
                let target = ns.0.to_string();
                let address = host_port(target.trim_end_matches('.'), q.port);
                labels.insert("__meta_dns_ns_record_target".into(), target);
                address
            }
            // CNAMEs accompany the records they point to; other types are not asked for.
            _ => continue,
        };
        out.push(TargetGroup { targets: vec![address], labels });
    }
    out.sort_by(|a, b| a.targets.cmp(&b.targets));
    out
}

/// `host:port`, with IPv6 addresses in brackets.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::{A, AAAA, MX, NS, SRV};
    use hickory_resolver::proto::rr::Name;
    use std::path::Path;

    fn record(data: RData) -> Record {
        Record::from_rdata(Name::from_ascii("q.example.org.").unwrap(), 30, data)
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn records_become_targets_with_meta_labels() {
        let srv = Query { name: "_m._tcp.example.org".into(), record_type: DnsRecordType::Srv, port: 0 };
        let groups = groups_from(
            &srv,
            &[
                record(RData::SRV(SRV::new(0, 0, 9100, name("b.example.org.")))),
                record(RData::SRV(SRV::new(0, 0, 9101, name("a.example.org.")))),
            ],
        );
        assert_eq!(groups[0].targets, vec!["a.example.org:9101"]);
        assert_eq!(groups[0].labels["__meta_dns_srv_record_target"], "a.example.org.");
        assert_eq!(groups[0].labels["__meta_dns_srv_record_port"], "9101");
        assert_eq!(groups[0].labels["__meta_dns_name"], "_m._tcp.example.org");

        let a = Query { name: "web".into(), record_type: DnsRecordType::A, port: 80 };
        let groups = groups_from(
            &a,
            &[
                record(RData::A(A::new(10, 0, 0, 1))),
                record(RData::AAAA(AAAA::new(0xfd00, 0, 0, 0, 0, 0, 0, 1))),
                record(RData::MX(MX::new(10, name("mail.example.org.")))),
                record(RData::NS(NS(name("ns1.example.org.")))),
            ],
        );
        let targets: Vec<&str> = groups.iter().map(|g| g.targets[0].as_str()).collect();
        assert_eq!(targets, ["10.0.0.1:80", "[fd00::1]:80", "mail.example.org:80", "ns1.example.org:80"]);
        assert_eq!(groups[2].labels["__meta_dns_mx_record_target"], "mail.example.org.");
        assert_eq!(groups[3].labels["__meta_dns_ns_record_target"], "ns1.example.org.");
        assert_eq!(groups[0].labels.len(), 1);
    }

    #[test]
    fn failures_keep_the_last_good_groups_and_queries_follow_the_config() {
        let config = Config::parse(
            "scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - names: [x.test, y.test]\n        type: A\n        port: 80\n        refresh_interval: 1h\n",
            Path::new("t.yml"),
        )
        .unwrap();
        let mut sd = DnsSd::default();
        let due = sd.due(&config);
        assert_eq!(due.len(), 2);
        let group = TargetGroup { targets: vec!["10.0.0.1:80".into()], labels: BTreeMap::new() };
        let x = Query { name: "x.test".into(), record_type: DnsRecordType::A, port: 80 };
        let y = Query { name: "y.test".into(), record_type: DnsRecordType::A, port: 80 };
        assert!(sd.store(vec![(x.clone(), Ok(vec![group.clone()])), (y.clone(), Ok(vec![]))]));
        assert!(sd.due(&config).is_empty(), "refreshed an hour from now");
        assert!(!sd.store(vec![(x.clone(), Err("timeout".into()))]));
        assert_eq!(sd.errors().len(), 1);
        assert_eq!(sd.groups(&config)["a"], vec![group]);

        let other = Config::parse("scrape_configs:\n  - job_name: a\n", Path::new("t.yml")).unwrap();
        assert!(sd.due(&other).is_empty());
        assert!(sd.groups(&config).is_empty(), "queries the config dropped are forgotten");
    }
}
