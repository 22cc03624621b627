//! OpenMetrics rules that span lines, checked as the samples stream by
//! ([`super::Validation::Strict`]).
//!
//! A metric family starts with metadata naming it or with a sample whose name is not one the
//! current family's type allows (`_total`/`_created` for a counter, `_bucket`/`_count`/`_sum`/
//! `_created` for a histogram, ...); such a family is `unknown`. When a family ends — the next
//! one starts or `# EOF` — its names (the family name plus every suffix its type may use) must
//! not clash with any earlier family's, and its UNIT must fit its type. Within a family, samples
//! are grouped into metrics by their labels (less `le`, `quantile` or the stateset label): a
//! metric must not reappear after another started, and its timestamps must be all present or all
//! absent and not go backwards. Histogram and gauge-histogram points (one metric at one
//! timestamp) must have sorted buckets ending at `+Inf` with non-decreasing counts, and
//! `_count`/`_sum` only as the spec pairs them. These are the semantics of the OpenMetrics
//! conformance suite's reference parser.
//!
//! All positions are offsets into the body, so the state holds no borrow and is reused across
//! scrapes. Metrics are identified exactly (sorted, unescaped label pairs), looked up through a
//! hash table keyed by a 64-bit hash with every hit verified; consecutive samples with the same
//! raw labels skip even that.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::lex::{eq, show, unescape_bytes, LabelSpan};
use super::number;
use super::{ErrorKind, Fail, MetricType};
use crate::tsdb::labels::{fmix64, PassThrough};

/// A metadata line as the family rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Meta {
    Type(MetricType),
    Help,
    Unit { empty: bool },
}

impl Meta {
    fn keyword(self) -> &'static str {
        match self {
            Meta::Type(_) => "TYPE",
            Meta::Help => "HELP",
            Meta::Unit { .. } => "UNIT",
        }
    }
}

/// What the line parser knows about a sample besides its labels.
pub(super) struct SampleFacts {
    pub name_start: usize,
    pub name_end: usize,
    pub value: f64,
    pub timestamp_s: Option<f64>,
    pub has_exemplar: bool,
    /// Start of the line, for errors.
    pub pos: usize,
}

/// A sample name's part after the family name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Suffix {
    None,
    Total,
    Created,
    Count,
    Sum,
    Bucket,
    GCount,
    GSum,
    Info,
}

impl Suffix {
    fn as_str(self) -> &'static str {
        match self {
            Suffix::None => "",
            Suffix::Total => "_total",
            Suffix::Created => "_created",
            Suffix::Count => "_count",
            Suffix::Sum => "_sum",
            Suffix::Bucket => "_bucket",
            Suffix::GCount => "_gcount",
            Suffix::GSum => "_gsum",
            Suffix::Info => "_info",
        }
    }
}

/// The sample names a family of each type owns. A family without TYPE is `unknown`.
fn suffixes(t: MetricType) -> &'static [Suffix] {
    match t {
        MetricType::Counter => &[Suffix::Total, Suffix::Created],
        MetricType::Summary => &[Suffix::None, Suffix::Count, Suffix::Sum, Suffix::Created],
        MetricType::Histogram => &[Suffix::Count, Suffix::Sum, Suffix::Bucket, Suffix::Created],
        MetricType::GaugeHistogram => &[Suffix::GCount, Suffix::GSum, Suffix::Bucket],
        MetricType::Info => &[Suffix::Info],
        MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[Suffix::None],
    }
}

#[derive(Clone, Copy, Debug)]
struct Family {
    name_start: usize,
    name_end: usize,
    /// Where the family's first line starts.
    pos: usize,
    kind: Option<MetricType>,
    help: bool,
    /// Start of the UNIT line and whether the unit was non-empty.
    unit: Option<(usize, bool)>,
    samples: bool,
}

impl Family {
    fn kind(&self) -> MetricType {
        self.kind.unwrap_or(MetricType::Unknown)
    }
}

/// The histogram point being accumulated: one metric at one timestamp.
#[derive(Clone, Copy, Debug, Default)]
struct Point {
    group: u32,
    timestamp_s: Option<f64>,
    last_le: Option<f64>,
    last_bucket: f64,
    count: Option<f64>,
    sum: bool,
    gsum: bool,
    negative_buckets: bool,
    negative_gsum: bool,
    /// Start of the point's last line, for errors.
    pos: usize,
}

/// A family name plus suffix, identified by offsets into the body.
#[derive(Clone, Copy, Debug)]
struct NameKey {
    start: usize,
    end: usize,
    suffix: Suffix,
}

/// A metric's canonical label set: `len` spans from `start` in [`Families::arena`], sorted by
/// name.
#[derive(Clone, Copy, Debug)]
struct GroupKey {
    start: usize,
    len: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Families {
    current: Option<Family>,
    seen_names: Chained<NameKey>,
    groups: Chained<GroupKey>,
    arena: Vec<LabelSpan>,
    /// The previous sample's metric, its raw (unsorted, filtered) labels and timestamp.
    last_group: Option<u32>,
    last_raw: Vec<LabelSpan>,
    last_timestamp: Option<f64>,
    point: Option<Point>,
    sorted: Vec<LabelSpan>,
    buf_a: Vec<u8>,
    buf_b: Vec<u8>,
    seed: u64,
}

/// Which label does not distinguish metrics of a family (it distinguishes points' values).
#[derive(Clone, Copy)]
enum Exclude<'n> {
    Nothing,
    Name(&'n [u8]),
    /// Info families form a single group, as in the reference parser.
    All,
}

impl Exclude<'_> {
    #[inline]
    fn keeps(&self, b: &[u8], l: &LabelSpan) -> bool {
        match self {
            Exclude::Nothing => true,
            Exclude::Name(n) => !eq(l.name(b), n),
            Exclude::All => false,
        }
    }
}

impl Families {
    pub fn reset(&mut self) {
        if self.seed == 0 {
            self.seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1;
        }
        self.current = None;
        self.seen_names.clear();
        self.reset_family();
    }

    fn reset_family(&mut self) {
        self.groups.clear();
        self.arena.clear();
        self.last_group = None;
        self.last_raw.clear();
        self.last_timestamp = None;
        self.point = None;
    }

    fn is_current(&self, b: &[u8], start: usize, end: usize) -> bool {
        self.current.is_some_and(|f| b[f.name_start..f.name_end] == b[start..end])
    }

    fn open(&mut self, name_start: usize, name_end: usize, pos: usize, kind: Option<MetricType>) {
        self.current =
            Some(Family { name_start, name_end, pos, kind, help: false, unit: None, samples: false });
    }

    /// A TYPE, HELP or UNIT line (already syntax-checked) for family `name_start..name_end`,
    /// starting at `pos`.
    pub fn metadata(
        &mut self,
        b: &[u8],
        meta: Meta,
        name_start: usize,
        name_end: usize,
        pos: usize,
    ) -> Result<(), Fail> {
        let name = &b[name_start..name_end];
        if self.is_current(b, name_start, name_end) {
            if self.current.is_some_and(|f| f.samples) {
                return Err(Fail::new(
                    pos,
                    ErrorKind::Metadata,
                    format!("{} for metric family \"{}\" after its samples", meta.keyword(), show(name)),
                ));
            }
        } else {
            self.finish_family(b)?;
            self.open(name_start, name_end, pos, None);
        }
        let Some(f) = self.current.as_mut() else { return Ok(()) };
        let repeated = match meta {
            Meta::Type(t) => f.kind.replace(t).is_some(),
            Meta::Help => std::mem::replace(&mut f.help, true),
            Meta::Unit { empty } => f.unit.replace((pos, !empty)).is_some(),
        };
        if repeated {
            return Err(Fail::new(
                pos,
                ErrorKind::Metadata,
                format!("second {} line for metric family \"{}\"", meta.keyword(), show(name)),
            ));
        }
        Ok(())
    }

    /// A sample line; returns whether it is a `_created` sample.
    pub fn sample(&mut self, b: &[u8], s: &SampleFacts, labels: &[LabelSpan]) -> Result<bool, Fail> {
        let name = &b[s.name_start..s.name_end];
        let suffix = match self.current {
            Some(f) => {
                let family = &b[f.name_start..f.name_end];
                name.get(..family.len()).filter(|p| eq(p, family)).and_then(|_| {
                    let rest = &name[family.len()..];
                    suffixes(f.kind()).iter().copied().find(|x| eq(x.as_str().as_bytes(), rest))
                })
            }
            None => None,
        };
        let suffix = match suffix {
            Some(x) => x,
            None => {
                self.finish_family(b)?;
                self.open(s.name_start, s.name_end, s.pos, Some(MetricType::Unknown));
                Suffix::None
            }
        };
        let Some(f) = self.current.as_mut() else { return Ok(false) };
        f.samples = true;
        let f = *f;
        let family = &b[f.name_start..f.name_end];
        let kind = f.kind();
        let fail = |msg: String| Fail::new(s.pos, ErrorKind::Semantics, msg);
        let v = s.value;

        let counter_like =
            matches!(suffix, Suffix::Total | Suffix::Sum | Suffix::Count | Suffix::Bucket | Suffix::GCount);
        if (counter_like || suffix == Suffix::GSum) && v.is_nan() {
            return Err(fail(format!("{} value must not be NaN", suffix.as_str())));
        }
        if counter_like && v < 0.0 {
            return Err(fail(format!("{} value {v} is negative", suffix.as_str())));
        }

        let mut le = None;
        let exclude = match (kind, suffix) {
            (MetricType::StateSet, _) => {
                if !labels.iter().any(|l| eq(l.name(b), family)) {
                    return Err(fail(format!(
                        "stateset sample without a label named after its family \"{}\"",
                        show(family)
                    )));
                }
                Exclude::Name(family)
            }
            (MetricType::Info, _) => Exclude::All,
            (MetricType::Summary, Suffix::None) => {
                let q = self
                    .number_label(b, labels, b"quantile")
                    .map_err(|m| fail(format!("summary quantile {m}")))?;
                if !(0.0..=1.0).contains(&q) {
                    return Err(fail(format!("quantile {q} is outside [0, 1]")));
                }
                if v < 0.0 {
                    return Err(fail(format!("quantile value {v} is negative")));
                }
                Exclude::Name(b"quantile")
            }
            (_, Suffix::Bucket) => {
                let bound =
                    self.number_label(b, labels, b"le").map_err(|m| fail(format!("histogram bucket {m}")))?;
                if bound.is_nan() {
                    return Err(fail("histogram bucket with le=\"NaN\"".to_string()));
                }
                le = Some(bound);
                Exclude::Name(b"le")
            }
            _ => Exclude::Nothing,
        };
        if matches!(suffix, Suffix::Bucket | Suffix::Count | Suffix::GCount) && !is_integer(v) {
            return Err(fail(format!("{} value {v} is not an integer", suffix.as_str())));
        }

        let (group, new) = self.group(b, labels, exclude);
        if let Some(last) = self.last_group {
            if group != last && !new {
                return Err(fail(format!(
                    "samples of metric \"{}\" are not grouped together (it appeared before another metric)",
                    show(&b[s.name_start..labels.last().map_or(s.name_end, |l| l.value_end + 2)])
                )));
            }
            if group == last {
                match (self.last_timestamp, s.timestamp_s) {
                    (Some(prev), Some(t)) if prev > t && kind != MetricType::Info => {
                        return Err(fail(format!("timestamp {t} goes backwards (previous {prev})")));
                    }
                    (Some(_), None) | (None, Some(_)) => {
                        return Err(fail(
                            "samples of a metric mix present and absent timestamps".to_string(),
                        ));
                    }
                    _ => {}
                }
            }
        }
        self.last_group = Some(group);
        self.last_timestamp = s.timestamp_s;

        if matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram) {
            self.histogram_sample(b, group, suffix, le, s)?;
        }

        match kind {
            MetricType::StateSet if v != 0.0 && v != 1.0 => {
                return Err(fail(format!("stateset value {v} is neither 0 nor 1")));
            }
            MetricType::Info if v != 1.0 => return Err(fail(format!("info value {v} is not 1"))),
            _ => {}
        }
        if s.has_exemplar {
            let allowed = match kind {
                MetricType::Counter => suffix == Suffix::Total,
                MetricType::Histogram | MetricType::GaugeHistogram => suffix == Suffix::Bucket,
                _ => false,
            };
            if !allowed {
                return Err(fail(
                    "exemplars are allowed only on a counter's _total and a histogram's _bucket samples"
                        .to_string(),
                ));
            }
        }
        Ok(suffix == Suffix::Created)
    }

    fn histogram_sample(
        &mut self,
        b: &[u8],
        group: u32,
        suffix: Suffix,
        le: Option<f64>,
        s: &SampleFacts,
    ) -> Result<(), Fail> {
        if let Some(p) = self.point {
            if p.group != group || p.timestamp_s != s.timestamp_s {
                self.finish_point(b)?;
            }
        }
        let p = self.point.get_or_insert(Point { group, timestamp_s: s.timestamp_s, ..Point::default() });
        p.pos = s.pos;
        let v = s.value;
        match suffix {
            Suffix::Bucket => {
                let le = le.unwrap_or(f64::NAN);
                if le < 0.0 {
                    p.negative_buckets = true;
                }
                if p.last_le.is_some_and(|prev| le <= prev) {
                    return Err(Fail::new(
                        s.pos,
                        ErrorKind::Semantics,
                        format!("bucket le={le} is not above the previous bucket's"),
                    ));
                }
                if v < p.last_bucket {
                    return Err(Fail::new(
                        s.pos,
                        ErrorKind::Semantics,
                        format!(
                            "bucket le={le} counts {v}, less than the previous bucket's {}",
                            p.last_bucket
                        ),
                    ));
                }
                p.last_le = Some(le);
                p.last_bucket = v;
            }
            Suffix::Count | Suffix::GCount => p.count = Some(v),
            Suffix::Sum => p.sum = true,
            Suffix::GSum => {
                p.gsum = true;
                if v < 0.0 {
                    p.negative_gsum = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_point(&mut self, b: &[u8]) -> Result<(), Fail> {
        let Some(p) = self.point.take() else { return Ok(()) };
        let name = self.current.map_or(&b[..0], |f| &b[f.name_start..f.name_end]);
        let fail = |msg: &str| {
            Fail::new(p.pos, ErrorKind::Semantics, format!("histogram \"{}\": {msg}", show(name)))
        };
        if p.last_le != Some(f64::INFINITY) {
            return Err(fail("metric point without a +Inf bucket"));
        }
        if p.count.is_some_and(|c| c != p.last_bucket) {
            return Err(fail("count does not match the +Inf bucket"));
        }
        if p.sum && p.count.is_none() {
            return Err(fail("_sum without _count"));
        }
        if p.gsum && p.count.is_none() {
            return Err(fail("_gsum without _gcount"));
        }
        if !(p.sum || p.gsum) && p.count.is_some() {
            return Err(fail("count without sum"));
        }
        if p.negative_buckets && p.sum {
            return Err(fail("_sum with negative buckets"));
        }
        if !p.negative_buckets && p.negative_gsum {
            return Err(fail("negative _gsum without negative buckets"));
        }
        Ok(())
    }

    /// Ends the current family: its last histogram point, its names, its UNIT.
    fn finish_family(&mut self, b: &[u8]) -> Result<(), Fail> {
        self.finish_point(b)?;
        let Some(f) = self.current.take() else { return Ok(()) };
        let kind = f.kind();
        let own = suffixes(kind);
        let all = own.iter().copied().chain((!own.contains(&Suffix::None)).then_some(Suffix::None));
        for suffix in all {
            let key = NameKey { start: f.name_start, end: f.name_end, suffix };
            let h = self.name_hash(b, &key);
            if self.seen_names.find(h, |k| name_eq(b, k, &key)).is_some() {
                return Err(Fail::new(
                    f.pos,
                    ErrorKind::Semantics,
                    format!(
                        "metric family \"{}\" repeats or clashes with an earlier family's name \"{}{}\"",
                        show(&b[f.name_start..f.name_end]),
                        show(&b[f.name_start..f.name_end]),
                        suffix.as_str()
                    ),
                ));
            }
            self.seen_names.insert(h, key);
        }
        if let Some((pos, true)) = f.unit {
            if matches!(kind, MetricType::Info | MetricType::StateSet) {
                return Err(Fail::new(
                    pos,
                    ErrorKind::Metadata,
                    format!(
                        "{} metric family \"{}\" must not have a unit",
                        kind.as_str(),
                        show(&b[f.name_start..f.name_end])
                    ),
                ));
            }
        }
        self.reset_family();
        Ok(())
    }

    /// `# EOF`: ends the last family.
    pub fn finish(&mut self, b: &[u8]) -> Result<(), Fail> {
        self.finish_family(b)
    }

    /// The unescaped value of label `name` parsed as an OpenMetrics number; infinities must be
    /// spelled canonically (`+Inf`, `-Inf`).
    /// Errors are phrased to follow "histogram bucket " or "summary quantile ".
    fn number_label(&mut self, b: &[u8], labels: &[LabelSpan], name: &[u8]) -> Result<f64, String> {
        let l = labels
            .iter()
            .find(|l| eq(l.name(b), name))
            .ok_or_else(|| format!("without a \"{}\" label", show(name)))?;
        let raw = l.value(b);
        let text: &[u8] = if l.escaped {
            unescape_bytes(raw, &mut self.buf_a);
            &self.buf_a
        } else {
            raw
        };
        let bad = |why: &str| format!("label {}=\"{}\" {why}", show(name), show(text));
        let x = number::parse_value(text).map_err(|_| bad("is not a number"))?;
        if x.is_infinite() && text != b"+Inf" && text != b"-Inf" {
            return Err(bad("is not canonical (infinity is written +Inf or -Inf)"));
        }
        Ok(x)
    }

    /// The id of the metric the labels (less `exclude`) identify within the family, and whether
    /// it is new.
    fn group(&mut self, b: &[u8], labels: &[LabelSpan], exclude: Exclude<'_>) -> (u32, bool) {
        if let Some(last) = self.last_group {
            let mut kept = labels.iter().filter(|l| exclude.keeps(b, l));
            let same = self
                .last_raw
                .iter()
                .all(|p| kept.next().is_some_and(|l| l.name(b) == p.name(b) && l.value(b) == p.value(b)))
                && kept.next().is_none();
            if same {
                return (last, false);
            }
        }
        self.last_raw.clear();
        self.last_raw.extend(labels.iter().filter(|l| exclude.keeps(b, l)));
        self.sorted.clear();
        self.sorted.extend_from_slice(&self.last_raw);
        self.sorted.sort_unstable_by(|x, y| x.name(b).cmp(y.name(b)));

        let mut h = Fx(self.seed);
        for l in &self.sorted {
            h.bytes(l.name(b));
            if l.escaped {
                unescape_bytes(l.value(b), &mut self.buf_a);
                h.bytes(&self.buf_a);
            } else {
                h.bytes(l.value(b));
            }
        }
        let hash = h.finish();
        let (arena, sorted) = (&self.arena, &self.sorted);
        let (buf_a, buf_b) = (&mut self.buf_a, &mut self.buf_b);
        let found = self.groups.find(hash, |g| {
            g.len == sorted.len()
                && arena[g.start..g.start + g.len]
                    .iter()
                    .zip(sorted.iter())
                    .all(|(x, y)| x.name(b) == y.name(b) && value_eq(b, x, y, buf_a, buf_b))
        });
        if let Some(id) = found {
            return (id, false);
        }
        let key = GroupKey { start: self.arena.len(), len: self.sorted.len() };
        self.arena.extend_from_slice(&self.sorted);
        (self.groups.insert(hash, key), true)
    }

    fn name_hash(&self, b: &[u8], k: &NameKey) -> u64 {
        let mut h = Fx(self.seed);
        // Hashing the concatenation keeps "a" + "_total" and "a_total" + "" equal.
        h.concat(&b[k.start..k.end], k.suffix.as_str().as_bytes());
        h.finish()
    }
}

/// Whether `v` is a finite whole number, without the libm call behind `f64::fract`: from 2^53
/// up every finite f64 is whole, and below it the round trip through i64 is exact.
#[inline]
fn is_integer(v: f64) -> bool {
    v.is_finite() && (v.abs() >= 9_007_199_254_740_992.0 || (v as i64) as f64 == v)
}

fn name_eq(b: &[u8], x: &NameKey, y: &NameKey) -> bool {
    let (xn, xs) = (&b[x.start..x.end], x.suffix.as_str().as_bytes());
    let (yn, ys) = (&b[y.start..y.end], y.suffix.as_str().as_bytes());
    xn.len() + xs.len() == yn.len() + ys.len() && xn.iter().chain(xs).eq(yn.iter().chain(ys))
}

fn value_eq(b: &[u8], x: &LabelSpan, y: &LabelSpan, buf_a: &mut Vec<u8>, buf_b: &mut Vec<u8>) -> bool {
    if !x.escaped && !y.escaped {
        return x.value(b) == y.value(b);
    }
    unescape_bytes(x.value(b), buf_a);
    unescape_bytes(y.value(b), buf_b);
    buf_a == buf_b
}

/// A fast word-at-a-time hash (FxHash's mixing with a length-delimited, finalized stream);
/// every table hit is verified, so quality only affects speed.
struct Fx(u64);

impl Fx {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }

    fn bytes(&mut self, s: &[u8]) {
        let mut chunks = s.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        self.word(u64::from_le_bytes(w));
        self.word(s.len() as u64);
    }

    /// Hashes `x` followed by `y` exactly as `bytes` would hash their concatenation.
    fn concat(&mut self, x: &[u8], y: &[u8]) {
        let mut w = [0u8; 8];
        let mut n = 0;
        for &c in x.iter().chain(y) {
            w[n] = c;
            n += 1;
            if n == 8 {
                self.word(u64::from_le_bytes(w));
                n = 0;
            }
        }
        w[n..].fill(0);
        self.word(u64::from_le_bytes(w));
        self.word((x.len() + y.len()) as u64);
    }

    fn finish(&self) -> u64 {
        // So that the table sees well-spread bits.
        fmix64(self.0)
    }
}

const NONE: u32 = u32::MAX;

/// A hash table of items that cannot be keys themselves (they are offsets into the body):
/// the map holds each hash's newest item, items chain to older ones with the same hash.
#[derive(Debug)]
struct Chained<T> {
    heads: HashMap<u64, u32, PassThrough>,
    items: Vec<(u32, T)>,
}

impl<T> Default for Chained<T> {
    fn default() -> Self {
        Chained { heads: HashMap::default(), items: Vec::new() }
    }
}

impl<T> Chained<T> {
    fn clear(&mut self) {
        self.heads.clear();
        self.items.clear();
    }

    fn find(&self, hash: u64, mut eq: impl FnMut(&T) -> bool) -> Option<u32> {
        let mut i = *self.heads.get(&hash)?;
        while let Some((next, item)) = self.items.get(i as usize) {
            if eq(item) {
                return Some(i);
            }
            i = *next;
        }
        None
    }

    fn insert(&mut self, hash: u64, item: T) -> u32 {
        let id = u32::try_from(self.items.len()).unwrap_or(NONE - 1);
        let next = self.heads.insert(hash, id).unwrap_or(NONE);
        self.items.push((next, item));
        id
    }
}
