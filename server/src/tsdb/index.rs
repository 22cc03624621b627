//! The in-memory inverted index of the head: which series carry which label pairs, and which
//! series a set of Prometheus label matchers selects.
//!
//! [`Matcher`] is one PromQL matcher (`=`, `!=`, `=~`, `!~`) with Prometheus semantics: an absent
//! label matches as the empty string, and regexes are fully anchored and let `.` match newlines
//! (`^(?s:…)$`, as Prometheus compiles them). Common regex shapes — literal alternations `a|b|c`,
//! `foo.*`, `.*foo`, `.*foo.*`, `.*` and `.+` — are recognised when the matcher is built and
//! answered without the regex engine, per value and, for alternations and prefixes, as key
//! lookups or range scans in the index.
//!
//! [`MemIndex`] maps label name → value → sorted series refs (the postings), plus the sorted list
//! of every series. Names and values are stored once each, as keys of ordered maps, however many
//! series share them, so per-series cost is one ref per label; ordered maps also give sorted
//! `label_names`/`label_values` for free and turn prefix regexes into range scans. A postings list
//! with one series keeps it inline instead of allocating. [`MemIndex::select`] follows
//! Prometheus's `PostingsForMatchers`: each matcher that cannot match the empty string narrows
//! the result to the union of its matching values' postings (intersection); each matcher that can
//! match the empty string keeps series without the label, so it instead removes the postings of
//! its non-matching values (subtraction); with no narrowing matcher, subtraction starts from all
//! series. The smallest narrowing union is built first and the other lists are only probed
//! against it by galloping search, so a selective matcher bounds the work of the others. Since
//! the head numbers series consecutively, refs are dense, and unions or filters over many lists
//! switch to a bitmap over the candidates' range when a cost estimate says it is cheaper.
//! Locking is the caller's: reads take `&self`, writes `&mut self`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use regex::Regex;

use super::labels::{malloc_size, Labels, METRIC_NAME};

/// Identifies a series for the life of the process; assigned by the head in increasing order.
pub type SeriesRef = u64;

/// Why a matcher could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IndexError {
    #[error("invalid regular expression {regex:?} for label {name:?}: {source}")]
    InvalidRegex {
        name: String,
        regex: String,
        #[source]
        source: regex::Error,
    },
}

/// The four PromQL matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        })
    }
}

/// A label matcher such as `job=~"api|web"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// What the value (regex or literal) accepts; `!=` and `!~` negate it.
    pattern: Pattern,
    matches_empty: bool,
}

impl Matcher {
    /// Builds a matcher; for `=~` and `!~` the value must be a valid regex.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Matcher, IndexError> {
        let name = name.into();
        let value = value.into();
        let pattern = match op {
            MatchOp::Equal | MatchOp::NotEqual => Pattern::Literal(value.clone()),
            MatchOp::Regex | MatchOp::NotRegex => Pattern::from_regex(&value).map_err(|source| {
                IndexError::InvalidRegex { name: name.clone(), regex: value.clone(), source }
            })?,
        };
        let negated = matches!(op, MatchOp::NotEqual | MatchOp::NotRegex);
        let matches_empty = pattern.is_match("") != negated;
        Ok(Matcher { name, op, value, pattern, matches_empty })
    }

    /// `name="value"`, which cannot fail.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        let value = value.into();
        let matches_empty = value.is_empty();
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            pattern: Pattern::Literal(value.clone()),
            value,
            matches_empty,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    fn negated(&self) -> bool {
        matches!(self.op, MatchOp::NotEqual | MatchOp::NotRegex)
    }

    /// Whether a label value matches; pass `""` for an absent label.
    pub fn matches(&self, v: &str) -> bool {
        self.pattern.is_match(v) != self.negated()
    }

    /// Whether series lacking the label match. PromQL requires every selector to have at least
    /// one matcher for which this is false.
    pub fn matches_empty(&self) -> bool {
        self.matches_empty
    }

    /// Whether a series with these labels matches.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

/// Matchers are equal when they are written the same; the compiled form follows from that.
impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl Eq for Matcher {}

impl std::hash::Hash for Matcher {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (&self.name, self.op, &self.value).hash(state);
    }
}

/// PromQL form: `name="value"`, `name=~"value"`, …
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op)?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// The set of strings a matcher's value accepts, in the cheapest form that is exact.
#[derive(Debug, Clone)]
enum Pattern {
    /// `.*`
    Any,
    /// `.+`
    NonEmpty,
    Literal(String),
    /// A literal alternation, sorted and deduplicated.
    Set(Vec<String>),
    /// `literal.*`
    Prefix(String),
    /// `.*literal`
    Suffix(String),
    /// `.*literal.*`
    Contains(String),
    /// Anything else; every match starts with `prefix`, which narrows index scans.
    Regex {
        re: Regex,
        prefix: String,
    },
}

impl Pattern {
    fn from_regex(value: &str) -> Result<Pattern, regex::Error> {
        if let Some(p) = fast_pattern(value) {
            return Ok(p);
        }
        // An unbalanced `)` would close the wrapping group and turn `a)|(b` into a different,
        // valid regex; `#` could comment out the wrapper under `(?x)`. Check such values alone.
        if value.contains([')', '#']) {
            Regex::new(value)?;
        }
        let re = Regex::new(&format!("^(?s:{value})$"))?;
        Ok(Pattern::Regex { re, prefix: literal_prefix(value) })
    }

    fn is_match(&self, v: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::NonEmpty => !v.is_empty(),
            Pattern::Literal(s) => v == s,
            Pattern::Set(set) => set.binary_search_by(|s| s.as_str().cmp(v)).is_ok(),
            Pattern::Prefix(p) => v.starts_with(p.as_str()),
            Pattern::Suffix(p) => v.ends_with(p.as_str()),
            Pattern::Contains(p) => v.contains(p.as_str()),
            Pattern::Regex { re, prefix } => v.starts_with(prefix.as_str()) && re.is_match(v),
        }
    }
}

/// Characters with a meaning in regex syntax outside classes (and the ones `regex` reserves),
/// which a literal must escape; all of them may be escaped.
fn is_meta(c: char) -> bool {
    r"\.+*?()|[]{}^$#&-~".contains(c)
}

/// Recognises `.*`, `.+`, literals, literal alternations, `literal.*`, `.*literal` and
/// `.*literal.*`, optionally inside one `(…)` or `(?:…)` group (Grafana writes multi-value
/// variables as `(a|b|c)`). Returns `None` for anything else, which then goes to the regex
/// engine; every string accepted here is a valid regex whose meaning is exactly the pattern.
fn fast_pattern(value: &str) -> Option<Pattern> {
    let inner = value
        .strip_prefix("(?:")
        .or_else(|| value.strip_prefix('(').filter(|rest| !rest.starts_with('?')))
        .and_then(|rest| rest.strip_suffix(')'))
        .filter(|inner| !inner.contains(['(', ')']))
        .unwrap_or(value);
    match inner {
        ".*" => return Some(Pattern::Any),
        ".+" => return Some(Pattern::NonEmpty),
        _ => {}
    }
    let non_empty =
        |s: String, make: fn(String) -> Pattern| if s.is_empty() { Pattern::Any } else { make(s) };
    // A leading `.*` cannot be an escaped dot; a trailing one can (`a\.*`), and then the
    // remaining literal ends in a lone backslash, which `literal` rejects.
    if let Some(rest) = inner.strip_prefix(".*") {
        return match rest.strip_suffix(".*") {
            Some(middle) => literal(middle).map(|s| non_empty(s, Pattern::Contains)),
            None => literal(rest).map(|s| non_empty(s, Pattern::Suffix)),
        };
    }
    if let Some(head) = inner.strip_suffix(".*") {
        if let Some(s) = literal(head) {
            return Some(non_empty(s, Pattern::Prefix));
        }
    }
    let mut alternatives = inner.split('|').map(literal).collect::<Option<Vec<String>>>()?;
    alternatives.sort_unstable();
    alternatives.dedup();
    if alternatives.len() == 1 {
        return alternatives.pop().map(Pattern::Literal);
    }
    Some(Pattern::Set(alternatives))
}

/// The string a regex without operators matches: its characters, with escaped metacharacters
/// unescaped. `None` if anything in it is not a plain or escaped character. Splitting on `|`
/// before calling this is sound because an escaped `\|` leaves a lone `\` at the end of the
/// left part, which is rejected.
fn literal(re: &str) -> Option<String> {
    let mut out = String::with_capacity(re.len());
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if is_meta(e) => out.push(e),
                _ => return None,
            },
            // '-' is special only inside classes, and it is common in values.
            '-' => out.push('-'),
            c if is_meta(c) => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The literal text every match of `value` starts with (possibly empty). Conservative: any `|`
/// anywhere gives the empty prefix, and a quantifier after the last literal character removes
/// it from the prefix — even `+`, which another quantifier can make optional (`a+*`).
fn literal_prefix(value: &str) -> String {
    let mut prefix = String::new();
    if value.contains('|') {
        return prefix;
    }
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if is_meta(e) => prefix.push(e),
                _ => break,
            },
            '?' | '*' | '{' | '+' => {
                prefix.pop();
                break;
            }
            c if is_meta(c) && c != '-' => break,
            c => prefix.push(c),
        }
    }
    prefix
}

/// A sorted list of series refs; a single ref is kept inline, which is the common case for
/// high-cardinality labels (one series per pod, per id…).
#[derive(Debug, Clone)]
enum PostingList {
    One(SeriesRef),
    Many(Vec<SeriesRef>),
}

impl PostingList {
    fn as_slice(&self) -> &[SeriesRef] {
        match self {
            PostingList::One(r) => std::slice::from_ref(r),
            PostingList::Many(v) => v,
        }
    }

    fn insert(&mut self, r: SeriesRef) {
        match self {
            PostingList::One(x) if *x == r => {}
            PostingList::One(x) => *self = PostingList::Many(if *x < r { vec![*x, r] } else { vec![r, *x] }),
            PostingList::Many(v) => {
                insert_sorted(v, r);
            }
        }
    }

    /// Keeps the refs for which `keep` holds; returns whether any are left.
    fn retain(&mut self, mut keep: impl FnMut(SeriesRef) -> bool) -> bool {
        match self {
            PostingList::One(r) => keep(*r),
            PostingList::Many(v) => {
                v.retain(|r| keep(*r));
                match v.as_slice() {
                    [] => false,
                    [r] => {
                        *self = PostingList::One(*r);
                        true
                    }
                    _ => {
                        shrink_if_sparse(v);
                        true
                    }
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn heap_bytes(&self) -> usize {
        match self {
            PostingList::Many(v) => vec_bytes(v),
            PostingList::One(_) => 0,
        }
    }
}

fn vec_bytes(v: &Vec<SeriesRef>) -> usize {
    if v.capacity() == 0 {
        0
    } else {
        malloc_size(v.capacity() * std::mem::size_of::<SeriesRef>())
    }
}

/// Inserts `r` keeping `v` sorted and unique; appending is the fast, usual case. Returns whether
/// `r` was new.
fn insert_sorted(v: &mut Vec<SeriesRef>, r: SeriesRef) -> bool {
    match v.last() {
        None => v.push(r),
        Some(&last) if last < r => v.push(r),
        Some(_) => match v.binary_search(&r) {
            Ok(_) => return false,
            Err(i) => v.insert(i, r),
        },
    }
    true
}

/// Returns memory after mass removals, which otherwise stays at the high-water mark.
fn shrink_if_sparse(v: &mut Vec<SeriesRef>) {
    if v.capacity() > 4 * v.len() + 4 {
        v.shrink_to(2 * v.len());
    }
}

/// Postings lists matched by one matcher, borrowed from the index; disjoint because a series
/// has one value per name.
struct Lists<'a> {
    lists: Vec<&'a [SeriesRef]>,
    total: usize,
}

impl<'a> Lists<'a> {
    fn push(&mut self, l: &'a PostingList) {
        let s = l.as_slice();
        self.total += s.len();
        self.lists.push(s);
    }

    fn union(&self) -> Vec<SeriesRef> {
        if let [one] = self.lists.as_slice() {
            return one.to_vec();
        }
        let lo = self.lists.iter().filter_map(|l| l.first()).min();
        let hi = self.lists.iter().filter_map(|l| l.last()).max();
        if let (Some(&lo), Some(&hi)) = (lo, hi) {
            // Refs are dense (the head numbers series consecutively), so many lists over a range
            // no wider than 64 refs per element merge faster as bits than by sorting.
            if (hi - lo) / 64 <= self.total as u64 {
                return self.union_by_bits(lo, hi);
            }
        }
        self.union_by_sort()
    }

    fn union_by_bits(&self, lo: SeriesRef, hi: SeriesRef) -> Vec<SeriesRef> {
        let mut bits = RefBitmap::new(lo, hi);
        for l in &self.lists {
            l.iter().for_each(|&r| bits.insert(r));
        }
        bits.to_vec(self.total)
    }

    fn union_by_sort(&self) -> Vec<SeriesRef> {
        let mut out = Vec::with_capacity(self.total);
        for l in &self.lists {
            out.extend_from_slice(l);
        }
        // The stable sort merges already-sorted runs, which is what the concatenation is.
        out.sort();
        // Only a caller that gave one ref two label sets could cause duplicates.
        out.dedup();
        out
    }
}

/// First index `i >= from` with `s[i] >= target` (or `s.len()`), by exponential then binary
/// search: cheap both when the answer is near `from` and when it is far.
fn gallop(s: &[SeriesRef], from: usize, target: SeriesRef) -> usize {
    let n = s.len();
    let mut lo = from;
    let mut bound = from;
    let mut step = 1usize;
    while bound < n && s[bound] < target {
        lo = bound + 1;
        bound = bound.saturating_add(step);
        step = step.saturating_mul(2);
    }
    let hi = bound.min(n);
    lo + s[lo..hi].partition_point(|&x| x < target)
}

/// Keeps the candidates that are (`keep_hits`) or are not (`!keep_hits`) in any of the lists.
fn filter(cands: &mut Vec<SeriesRef>, lists: &Lists<'_>, keep_hits: bool) {
    if let [list] = lists.lists.as_slice() {
        let mut pos = 0;
        cands.retain(|&c| {
            pos = gallop(list, pos, c);
            (pos < list.len() && list[pos] == c) == keep_hits
        });
        return;
    }
    let (Some(&lo), Some(&hi)) = (cands.first(), cands.last()) else { return };
    // Marking a bitmap costs one step per listed ref plus the bitmap's words; probing costs a
    // search per ref of the shorter side. Bits win when the lists are not much longer than the
    // candidates and the candidates are not too sparse.
    let probes: usize = lists.lists.iter().map(|l| l.len().min(cands.len())).sum();
    if lists.total <= 4 * probes && (hi - lo) / 64 <= (cands.len() + lists.total) as u64 {
        filter_by_bits(cands, lists, keep_hits, lo, hi);
    } else {
        filter_by_probes(cands, lists, keep_hits);
    }
}

fn filter_by_bits(
    cands: &mut Vec<SeriesRef>,
    lists: &Lists<'_>,
    keep_hits: bool,
    lo: SeriesRef,
    hi: SeriesRef,
) {
    let mut bits = RefBitmap::new(lo, hi);
    for list in &lists.lists {
        list.iter().for_each(|&r| bits.insert(r));
    }
    cands.retain(|&c| bits.contains(c) == keep_hits);
}

fn filter_by_probes(cands: &mut Vec<SeriesRef>, lists: &Lists<'_>, keep_hits: bool) {
    let mut hit = vec![false; cands.len()];
    for list in &lists.lists {
        mark_hits(cands, list, &mut hit);
    }
    let mut hits = hit.into_iter();
    cands.retain(|_| hits.next() == Some(keep_hits));
}

/// A set of refs within `[base, base + 64 × words)`; refs outside are ignored.
struct RefBitmap {
    base: SeriesRef,
    words: Vec<u64>,
}

impl RefBitmap {
    /// A set able to hold `lo..=hi`; callers bound `hi - lo` by their input size.
    fn new(lo: SeriesRef, hi: SeriesRef) -> RefBitmap {
        let words = usize::try_from((hi - lo) / 64 + 1).unwrap_or(0);
        RefBitmap { base: lo, words: vec![0; words] }
    }

    fn slot(&self, r: SeriesRef) -> Option<(usize, u64)> {
        let off = r.checked_sub(self.base)?;
        Some((usize::try_from(off / 64).ok()?, 1 << (off % 64)))
    }

    fn insert(&mut self, r: SeriesRef) {
        if let Some((i, bit)) = self.slot(r) {
            if let Some(w) = self.words.get_mut(i) {
                *w |= bit;
            }
        }
    }

    fn contains(&self, r: SeriesRef) -> bool {
        self.slot(r).and_then(|(i, bit)| self.words.get(i).map(|w| w & bit != 0)).unwrap_or(false)
    }

    fn to_vec(&self, capacity: usize) -> Vec<SeriesRef> {
        let mut out = Vec::with_capacity(capacity);
        for (i, &word) in self.words.iter().enumerate() {
            let mut w = word;
            while w != 0 {
                out.push(self.base + i as u64 * 64 + u64::from(w.trailing_zeros()));
                w &= w - 1;
            }
        }
        out
    }
}

/// Sets `hit[i]` for every `cands[i]` in `list`, walking the shorter of the two.
fn mark_hits(cands: &[SeriesRef], list: &[SeriesRef], hit: &mut [bool]) {
    let mut pos = 0;
    if list.len() < cands.len() {
        for &x in list {
            pos = gallop(cands, pos, x);
            match cands.get(pos) {
                None => return,
                Some(&c) if c == x => hit[pos] = true,
                Some(_) => {}
            }
        }
    } else {
        for (i, &c) in cands.iter().enumerate() {
            pos = gallop(list, pos, c);
            match list.get(pos) {
                None => return,
                Some(&x) if x == c => hit[i] = true,
                Some(_) => {}
            }
        }
    }
}

/// Selected series, tested against many postings lists (one per label value) by
/// `label_names` and `label_values`: short lists are looked up in a bitmap when the selection
/// is dense enough for one, others are galloped through.
struct Selection {
    refs: Vec<SeriesRef>,
    bits: Option<RefBitmap>,
}

impl Selection {
    fn new(refs: Vec<SeriesRef>) -> Selection {
        let bits = match (refs.first(), refs.last()) {
            (Some(&lo), Some(&hi)) if (hi - lo) / 64 <= 4 * refs.len() as u64 + 1024 => {
                let mut bits = RefBitmap::new(lo, hi);
                refs.iter().for_each(|&r| bits.insert(r));
                Some(bits)
            }
            _ => None,
        };
        Selection { refs, bits }
    }

    fn intersects(&self, list: &[SeriesRef]) -> bool {
        match &self.bits {
            Some(bits) if list.len() <= 16 => list.iter().any(|&r| bits.contains(r)),
            _ => intersects(list, &self.refs),
        }
    }
}

/// Whether two sorted lists share a ref.
fn intersects(a: &[SeriesRef], b: &[SeriesRef]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut pos = 0;
    for &x in short {
        pos = gallop(long, pos, x);
        match long.get(pos) {
            None => return false,
            Some(&y) if y == x => return true,
            Some(_) => {}
        }
    }
    false
}

type Values = BTreeMap<Arc<str>, PostingList>;

/// One entry of a top-N statistic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub name: String,
    pub count: u64,
}

/// Cardinality statistics, as `/api/v1/status/tsdb` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStats {
    pub num_series: usize,
    pub num_label_names: usize,
    pub num_label_pairs: usize,
    /// Metric names with the most series.
    pub series_count_by_metric_name: Vec<Stat>,
    /// Label names with the most distinct values.
    pub label_value_count_by_label_name: Vec<Stat>,
    /// Label names by the total length of their values over all series (Prometheus's measure).
    pub memory_in_bytes_by_label_name: Vec<Stat>,
    /// `name=value` pairs with the most series.
    pub series_count_by_label_value_pair: Vec<Stat>,
    /// Estimated heap bytes of the index itself.
    pub memory_bytes: usize,
}

/// The head's inverted index. See the module documentation.
#[derive(Default)]
pub struct MemIndex {
    postings: BTreeMap<Arc<str>, Values>,
    all: Vec<SeriesRef>,
}

impl fmt::Debug for MemIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemIndex")
            .field("series", &self.all.len())
            .field("label_names", &self.postings.len())
            .finish_non_exhaustive()
    }
}

impl MemIndex {
    pub fn new() -> MemIndex {
        MemIndex::default()
    }

    /// Indexes series `r`. Refs may arrive in any order; adding the same series twice is a no-op.
    pub fn add(&mut self, r: SeriesRef, labels: &Labels) {
        insert_sorted(&mut self.all, r);
        for (name, value) in labels.iter() {
            if let Some(values) = self.postings.get_mut(name) {
                if let Some(list) = values.get_mut(value) {
                    list.insert(r);
                } else {
                    values.insert(Arc::from(value), PostingList::One(r));
                }
            } else {
                let values = BTreeMap::from([(Arc::from(value), PostingList::One(r))]);
                self.postings.insert(Arc::from(name), values);
            }
        }
    }

    /// Unindexes series `r`, which must have been added with these labels. Returns whether it was
    /// indexed. For many series at once, [`MemIndex::remove_batch`] is much cheaper.
    pub fn remove(&mut self, r: SeriesRef, labels: &Labels) -> bool {
        self.remove_batch([(r, labels)]) > 0
    }

    /// Unindexes many series in one pass over each affected postings list. Returns how many of
    /// them were indexed.
    pub fn remove_batch<'a>(&mut self, series: impl IntoIterator<Item = (SeriesRef, &'a Labels)>) -> usize {
        let mut dead = Vec::new();
        let mut pairs: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (r, labels) in series {
            dead.push(r);
            pairs.extend(labels.iter());
        }
        dead.sort_unstable();
        dead.dedup();
        let is_live = |r: SeriesRef| dead.binary_search(&r).is_err();
        let before = self.all.len();
        self.all.retain(|&r| is_live(r));
        shrink_if_sparse(&mut self.all);
        for (name, value) in pairs {
            let Some(values) = self.postings.get_mut(name) else { continue };
            if let Some(list) = values.get_mut(value) {
                if !list.retain(is_live) {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                self.postings.remove(name);
            }
        }
        before - self.all.len()
    }

    /// Gives back the spare capacity postings lists keep for appends (up to half of a list
    /// grown by doubling); worth calling after a bulk load such as WAL replay.
    pub fn shrink_to_fit(&mut self) {
        self.all.shrink_to_fit();
        for values in self.postings.values_mut() {
            for list in values.values_mut() {
                if let PostingList::Many(v) = list {
                    v.shrink_to_fit();
                }
            }
        }
    }

    /// Number of indexed series.
    pub fn series_count(&self) -> usize {
        self.all.len()
    }

    /// Every indexed series, ascending.
    pub fn all_series(&self) -> &[SeriesRef] {
        &self.all
    }

    /// The series with label `name="value"`, ascending.
    pub fn postings(&self, name: &str, value: &str) -> &[SeriesRef] {
        self.postings.get(name).and_then(|values| values.get(value)).map_or(&[], PostingList::as_slice)
    }

    /// The series matching every matcher, ascending. An empty slice of matchers selects every
    /// series, as does a set of matchers that all match the empty string and no value.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<SeriesRef> {
        let mut narrowing = Vec::new();
        let mut removing = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                let lists = self.lists_for(m, false);
                if lists.total > 0 {
                    removing.push(lists);
                }
            } else {
                let lists = self.lists_for(m, true);
                if lists.total == 0 {
                    return Vec::new();
                }
                narrowing.push(lists);
            }
        }
        narrowing.sort_by_key(|l| l.total);
        let mut narrowing = narrowing.iter();
        let mut cands = match narrowing.next() {
            Some(smallest) => smallest.union(),
            None => self.all.clone(),
        };
        for lists in narrowing.map(|l| (l, true)).chain(removing.iter().map(|l| (l, false))) {
            if cands.is_empty() {
                break;
            }
            filter(&mut cands, lists.0, lists.1);
        }
        cands
    }

    /// The postings of the values of `m.name` for which `m.matches` equals `want`. Values are
    /// never empty (empty-valued labels are not stored), which the fast paths rely on.
    fn lists_for<'a>(&'a self, m: &Matcher, want: bool) -> Lists<'a> {
        let mut out = Lists { lists: Vec::new(), total: 0 };
        let Some(values) = self.postings.get(m.name()) else { return out };
        // Values the pattern itself must accept (or reject) for `m.matches` to equal `want`.
        let accept = want != m.negated();
        if !accept {
            if !matches!(m.pattern, Pattern::Any | Pattern::NonEmpty) {
                for (v, l) in values {
                    if !m.pattern.is_match(v) {
                        out.push(l);
                    }
                }
            }
            return out;
        }
        match &m.pattern {
            Pattern::Any | Pattern::NonEmpty => values.values().for_each(|l| out.push(l)),
            Pattern::Literal(s) => {
                if let Some(l) = values.get(s.as_str()) {
                    out.push(l);
                }
            }
            Pattern::Set(set) => {
                for s in set {
                    if let Some(l) = values.get(s.as_str()) {
                        out.push(l);
                    }
                }
            }
            Pattern::Prefix(p) => {
                for (_, l) in values_with_prefix(values, p) {
                    out.push(l);
                }
            }
            Pattern::Regex { re, prefix } => {
                for (v, l) in values_with_prefix(values, prefix) {
                    if re.is_match(v) {
                        out.push(l);
                    }
                }
            }
            Pattern::Suffix(_) | Pattern::Contains(_) => {
                for (v, l) in values {
                    if m.pattern.is_match(v) {
                        out.push(l);
                    }
                }
            }
        }
        out
    }

    /// Label names, sorted, of the series matching `matchers` (of every series if there are none).
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        if matchers.is_empty() {
            return self.postings.keys().map(|n| n.to_string()).collect();
        }
        let selected = self.select(matchers);
        if selected.is_empty() {
            return Vec::new();
        }
        let everything = selected.len() == self.all.len();
        let selected = Selection::new(selected);
        self.postings
            .iter()
            .filter(|(_, values)| everything || values.values().any(|l| selected.intersects(l.as_slice())))
            .map(|(n, _)| n.to_string())
            .collect()
    }

    /// Values, sorted, of label `name` on the series matching `matchers` (on every series if
    /// there are none).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let Some(values) = self.postings.get(name) else { return Vec::new() };
        if matchers.is_empty() {
            return values.keys().map(|v| v.to_string()).collect();
        }
        let selected = self.select(matchers);
        if selected.is_empty() {
            return Vec::new();
        }
        let everything = selected.len() == self.all.len();
        let selected = Selection::new(selected);
        values
            .iter()
            .filter(|(_, l)| everything || selected.intersects(l.as_slice()))
            .map(|(v, _)| v.to_string())
            .collect()
    }

    /// Cardinality statistics with the `top_n` largest entries of each ranking.
    pub fn stats(&self, top_n: usize) -> IndexStats {
        let mut by_metric = Vec::new();
        let mut value_counts = Vec::new();
        let mut value_bytes = Vec::new();
        let mut pairs: Vec<(u64, &str, &str)> = Vec::new();
        for (name, values) in &self.postings {
            value_counts.push((values.len() as u64, name.as_ref(), ""));
            let mut bytes = 0u64;
            for (value, l) in values {
                let n = l.len() as u64;
                bytes += value.len() as u64 * n;
                pairs.push((n, &**name, &**value));
                if name.as_ref() == METRIC_NAME {
                    by_metric.push((n, value.as_ref(), ""));
                }
            }
            value_bytes.push((bytes, name.as_ref(), ""));
        }
        let num_label_pairs = pairs.len();
        IndexStats {
            num_series: self.all.len(),
            num_label_names: self.postings.len(),
            num_label_pairs,
            series_count_by_metric_name: top(by_metric, top_n),
            label_value_count_by_label_name: top(value_counts, top_n),
            memory_in_bytes_by_label_name: top(value_bytes, top_n),
            series_count_by_label_value_pair: top(pairs, top_n),
            memory_bytes: self.memory_bytes(),
        }
    }

    /// Estimated heap bytes of the index: postings, keys, and ordered-map nodes (assumed about
    /// two-thirds full, which is what sequential and random inserts give on average).
    pub fn memory_bytes(&self) -> usize {
        fn entry<K, V>() -> usize {
            (std::mem::size_of::<K>() + std::mem::size_of::<V>()) * 3 / 2
        }
        fn key(s: &str) -> usize {
            malloc_size(2 * std::mem::size_of::<usize>() + s.len())
        }
        let mut bytes = vec_bytes(&self.all);
        for (name, values) in &self.postings {
            bytes += entry::<Arc<str>, Values>() + key(name);
            for (value, l) in values {
                bytes += entry::<Arc<str>, PostingList>() + key(value) + l.heap_bytes();
            }
        }
        bytes
    }
}

/// The `(key, value)` entries whose key starts with `prefix`, by a range scan.
fn values_with_prefix<'a, 'p>(
    values: &'a Values,
    prefix: &'p str,
) -> impl Iterator<Item = (&'a str, &'a PostingList)> + use<'a, 'p> {
    values
        .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .map(|(v, l)| (v.as_ref(), l))
        .take_while(move |(v, _)| v.starts_with(prefix))
}

/// The `n` entries with the highest counts, ties by name; names are `a` or `a=b`.
fn top(mut entries: Vec<(u64, &str, &str)>, n: usize) -> Vec<Stat> {
    let order = |a: &(u64, &str, &str), b: &(u64, &str, &str)| -> Ordering {
        b.0.cmp(&a.0).then_with(|| (a.1, a.2).cmp(&(b.1, b.2)))
    };
    if n == 0 {
        return Vec::new();
    }
    if entries.len() > n {
        entries.select_nth_unstable_by(n - 1, order);
        entries.truncate(n);
    }
    entries.sort_unstable_by(order);
    entries
        .into_iter()
        .map(|(count, a, b)| Stat {
            name: if b.is_empty() { a.to_string() } else { format!("{a}={b}") },
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher::new(op, name, value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).unwrap()
    }

    /// 1 {m, a=1}  2 {m, a=2, b=x}  3 {m}  4 {n, b=y}  5 {n, a=foo}
    fn fixture() -> MemIndex {
        let mut ix = MemIndex::new();
        let series: [&[(&str, &str)]; 5] = [
            &[("__name__", "m"), ("a", "1")],
            &[("__name__", "m"), ("a", "2"), ("b", "x")],
            &[("__name__", "m")],
            &[("__name__", "n"), ("b", "y")],
            &[("__name__", "n"), ("a", "foo")],
        ];
        // Out of order on purpose.
        for i in [3usize, 1, 5, 2, 4] {
            ix.add(i as u64, &labels(series[i - 1]));
        }
        ix
    }

    fn sel(ix: &MemIndex, ms: &[(&str, MatchOp, &str)]) -> Vec<SeriesRef> {
        let ms: Vec<Matcher> = ms.iter().map(|(n, op, v)| m(n, *op, v)).collect();
        ix.select(&ms)
    }

    use MatchOp::{Equal as Eq, NotEqual as Ne, NotRegex as Nre, Regex as Re};

    #[test]
    fn prometheus_empty_value_rules() {
        let ix = fixture();
        assert_eq!(sel(&ix, &[("a", Eq, "")]), vec![3, 4]);
        assert_eq!(sel(&ix, &[("a", Ne, "")]), vec![1, 2, 5]);
        assert_eq!(sel(&ix, &[("a", Re, ".*")]), vec![1, 2, 3, 4, 5]);
        assert_eq!(sel(&ix, &[("a", Re, ".+")]), vec![1, 2, 5]);
        assert_eq!(sel(&ix, &[("a", Nre, "x")]), vec![1, 2, 3, 4, 5]);
        assert_eq!(sel(&ix, &[("a", Nre, "1")]), vec![2, 3, 4, 5]);
        assert_eq!(sel(&ix, &[("a", Nre, ".*")]), Vec::<u64>::new());
        assert_eq!(sel(&ix, &[("a", Nre, ".+")]), vec![3, 4]);
        assert_eq!(sel(&ix, &[("a", Re, "")]), vec![3, 4]);
        assert_eq!(sel(&ix, &[("a", Re, "1|")]), vec![1, 3, 4]);
        assert_eq!(sel(&ix, &[("a", Nre, "1|")]), vec![2, 5]);
        assert_eq!(sel(&ix, &[("a", Ne, "1")]), vec![2, 3, 4, 5]);
        assert_eq!(sel(&ix, &[("a", Eq, "1")]), vec![1]);
        assert_eq!(sel(&ix, &[("a", Re, "f.*")]), vec![5]);
        assert_eq!(sel(&ix, &[("a", Re, "f")]), Vec::<u64>::new());
        // A label no series has.
        assert_eq!(sel(&ix, &[("zz", Eq, "x")]), Vec::<u64>::new());
        assert_eq!(sel(&ix, &[("zz", Eq, "")]), vec![1, 2, 3, 4, 5]);
        assert_eq!(sel(&ix, &[("zz", Ne, "x")]), vec![1, 2, 3, 4, 5]);
        assert_eq!(sel(&ix, &[("zz", Re, ".+")]), Vec::<u64>::new());
        // Combinations.
        assert_eq!(sel(&ix, &[("__name__", Eq, "m"), ("a", Eq, "")]), vec![3]);
        assert_eq!(sel(&ix, &[("__name__", Eq, "m"), ("b", Ne, "")]), vec![2]);
        assert_eq!(sel(&ix, &[("a", Re, ".+"), ("a", Ne, "2")]), vec![1, 5]);
        assert_eq!(sel(&ix, &[("a", Eq, ""), ("b", Eq, "")]), vec![3]);
        assert_eq!(sel(&ix, &[("__name__", Re, "m|n"), ("b", Re, "x|y"), ("a", Nre, "2")]), vec![4]);
        assert_eq!(sel(&ix, &[]), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn matcher_semantics_per_value() {
        assert!(m("a", Eq, "").matches(""));
        assert!(!m("a", Ne, "").matches(""));
        assert!(m("a", Ne, "").matches("x"));
        assert!(m("a", Re, ".*").matches_empty());
        assert!(!m("a", Re, ".+").matches_empty());
        assert!(m("a", Nre, "x").matches_empty());
        assert!(!m("a", Nre, "").matches_empty());
        // Fully anchored, unlike the regex crate's default search.
        assert!(!m("a", Re, "b").matches("abc"));
        assert!(!m("a", Re, "a|b").matches("ab"));
        assert!(m("a", Re, "a.c").matches("a\nc"), "dot matches newline, as in Prometheus");
        assert!(m("a", Re, "(?i)ABC").matches("abc"));
        assert!(m("a", Re, "a|b").matches_labels(&labels(&[("a", "b")])));
        assert!(m("x", Eq, "").matches_labels(&labels(&[("a", "b")])));
        assert_eq!(Matcher::equal("job", "a").to_string(), r#"job="a""#);
        assert_eq!(m("job", Nre, "a\"b\\.").to_string(), r#"job!~"a\"b\\.""#);
        assert_eq!(m("job", Nre, "x").op(), MatchOp::NotRegex);
        assert_eq!(m("job", Nre, "x").name(), "job");
        assert_eq!(m("job", Nre, "x").value(), "x");
        assert_eq!(m("job", Re, "a|b"), m("job", Re, "a|b"));
        assert_ne!(m("job", Re, "a|b"), m("job", Nre, "a|b"));
        assert_eq!(Matcher::equal("job", "x"), m("job", Eq, "x"));
    }

    #[test]
    fn invalid_regexes_are_errors_naming_them() {
        for bad in ["a(", "a)|(b", "[z-a]", "a{2,1}", "(?x)a#", "\\"] {
            let err = Matcher::new(Re, "job", bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
            assert!(Matcher::new(Nre, "job", bad).is_err());
        }
        // Not regexes for = and !=.
        assert!(Matcher::new(Eq, "job", "a(").is_ok());
    }

    fn kind(p: &Pattern) -> String {
        match p {
            Pattern::Any => "any".into(),
            Pattern::NonEmpty => "nonempty".into(),
            Pattern::Literal(s) => format!("lit {s}"),
            Pattern::Set(s) => format!("set {}", s.join(",")),
            Pattern::Prefix(s) => format!("prefix {s}"),
            Pattern::Suffix(s) => format!("suffix {s}"),
            Pattern::Contains(s) => format!("contains {s}"),
            Pattern::Regex { prefix, .. } => format!("regex {prefix}"),
        }
    }

    #[test]
    fn fast_paths_are_recognised() {
        let cases = [
            (".*", "any"),
            ("(.*)", "any"),
            (".+", "nonempty"),
            ("(?:.+)", "nonempty"),
            ("abc", "lit abc"),
            ("", "lit "),
            ("a|b|c", "set a,b,c"),
            ("c|a|a", "set a,c"),
            ("(a|b)", "set a,b"),
            ("(?:a|b)", "set a,b"),
            ("a|", "set ,a"),
            ("foo\\.bar|x-y", "set foo.bar,x-y"),
            ("foo.*", "prefix foo"),
            ("(foo.*)", "prefix foo"),
            ("foo\\|.*", "prefix foo|"),
            ("foo.+", "regex foo"),
            ("fo?o.*", "regex f"),
            ("ab*", "regex a"),
            ("ab+c", "regex a"),
            ("-+*", "regex "),
            ("a\\d", "regex a"),
            ("a|b.*", "regex "),
            ("(?i)abc", "regex "),
            ("(a)|(b)", "regex "),
            ("a.*b", "regex a"),
            (".*foo", "suffix foo"),
            ("(.*foo)", "suffix foo"),
            (".*foo.*", "contains foo"),
            (".*\\..*", "contains ."),
            (".*.*", "any"),
            (".*a|b", "regex "),
            (".*a.+", "regex "),
            ("a\\.*", "regex a"),
            ("a\\\\.*", "prefix a\\"),
            // Sound but not fast: escaped pipes go to the regex engine.
            ("a\\|b", "regex "),
            ("a\\||b", "regex "),
        ];
        for (re, want) in cases {
            assert_eq!(kind(&m("x", Re, re).pattern), want, "{re}");
        }
    }

    /// Regex pieces whose concatenations exercise every fast path and its edges.
    fn regex_piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a", "b", "ab", "foo", "-", " ", "é", "\\.", "\\|", "\\(", "\\*", "|", ".*", ".+", ".", "(", ")",
            "(?:", "?", "*", "+", "[ab]", "\\d", "(?i)", "{2}", "\n",
        ])
    }

    fn probe_string() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "f", "o", ".", "|", "-", " ", "é", "\n", "A", "(", "*"]),
            0..6,
        )
        .prop_map(|v| v.concat())
    }

    #[test]
    fn stacked_quantifiers_keep_prefixes_sound() {
        for value in ["-+*", "a+?", "a+??", "ab+*c", "ab+{0}", "ab*+"] {
            let ours = m("x", Re, value);
            let reference = Regex::new(&format!("^(?s:{value})$")).unwrap();
            for probe in ["", "a", "ab", "abc", "ac", "c", "-", "--", "abbb"] {
                assert_eq!(ours.matches(probe), reference.is_match(probe), "{value:?} on {probe:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn fast_paths_agree_with_regex(
            pieces in prop::collection::vec(regex_piece(), 0..6),
            probes in prop::collection::vec(probe_string(), 1..20),
        ) {
            let value = pieces.concat();
            let reference = Regex::new(&format!("^(?s:{value})$")).ok().filter(|_| Regex::new(&value).is_ok());
            let ours = Matcher::new(Re, "x", value.as_str());
            match (&reference, &ours) {
                (None, Ok(m)) => prop_assert!(false, "{value:?} accepted as {}", kind(&m.pattern)),
                (Some(_), Err(e)) => prop_assert!(false, "{value:?} rejected: {e}"),
                _ => {}
            }
            if let (Some(re), Ok(m)) = (reference, ours) {
                let prefix = match &m.pattern {
                    Pattern::Regex { prefix, .. } | Pattern::Prefix(prefix) => prefix.clone(),
                    _ => String::new(),
                };
                let mut probes = probes;
                probes.extend(["", "a", "b", "ab", "foo", "foo.", "foo|", "a\nb"].map(String::from));
                for p in probes {
                    prop_assert_eq!(m.matches(&p), re.is_match(&p), "{:?} on {:?} ({})", value, p, kind(&m.pattern));
                    prop_assert!(!re.is_match(&p) || p.starts_with(&prefix), "prefix {:?} of {:?}", prefix, value);
                }
            }
        }
    }

    const NAMES: [&str; 4] = ["__name__", "a", "b", "c"];
    const VALUES: [&str; 9] = ["", "x", "y", "xy", "yx", "foo", "foobar", "f\no", "a|b"];
    const REGEXES: [&str; 16] = [
        ".*", ".+", "x|y", "foo.*", "x.*|y", "", "x", "(x|foo)", "f.+", "[xy]+", "fo?o.*", "f.o", "x|",
        "a\\|b", "(?i)X.*", "foo.*|",
    ];

    fn series_strategy() -> impl Strategy<Value = Vec<Labels>> {
        let set =
            prop::collection::vec(prop::sample::select(VALUES.to_vec()), NAMES.len()).prop_map(|vals| {
                let pairs: Vec<(&str, &str)> = NAMES.iter().copied().zip(vals).collect();
                Labels::new(pairs).unwrap()
            });
        prop::collection::vec(set, 0..60)
    }

    fn matcher_strategy() -> impl Strategy<Value = Matcher> {
        let op = prop::sample::select(vec![Eq, Ne, Re, Nre]);
        let name = prop::sample::select(vec!["__name__", "a", "b", "c", "zz"]);
        let value = prop::sample::select([VALUES.as_slice(), REGEXES.as_slice()].concat());
        (op, name, value).prop_map(|(op, name, value)| m(name, op, value))
    }

    fn brute_select(series: &[(SeriesRef, Labels)], ms: &[Matcher]) -> Vec<SeriesRef> {
        let mut out: Vec<SeriesRef> =
            series.iter().filter(|(_, l)| ms.iter().all(|m| m.matches_labels(l))).map(|(r, _)| *r).collect();
        out.sort_unstable();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn select_and_label_queries_match_brute_force(
            sets in series_strategy(),
            order_seed in any::<u64>(),
            stride in prop_oneof![Just(3u64), Just(997u64)],
            remove_mask in any::<u64>(),
            ms in prop::collection::vec(matcher_strategy(), 0..4),
        ) {
            // Refs with gaps, inserted in a shuffled order.
            let mut series: Vec<(SeriesRef, Labels)> =
                sets.into_iter().enumerate().map(|(i, l)| (i as u64 * stride + 1, l)).collect();
            let mut shuffled = series.clone();
            let mut s = order_seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut ix = MemIndex::new();
            for (r, l) in &shuffled {
                ix.add(*r, l);
            }
            // Remove some series: a few one by one, the rest in a batch.
            let (gone, kept): (Vec<_>, Vec<_>) =
                series.drain(..).enumerate().partition(|(i, _)| (remove_mask >> (i % 64)) & 1 == 1 && i % 3 != 0);
            let gone: Vec<(SeriesRef, Labels)> = gone.into_iter().map(|(_, s)| s).collect();
            series = kept.into_iter().map(|(_, s)| s).collect();
            let (singles, batch) = gone.split_at(gone.len().min(3));
            for (r, l) in singles {
                prop_assert!(ix.remove(*r, l));
                prop_assert!(!ix.remove(*r, l));
            }
            prop_assert_eq!(ix.remove_batch(batch.iter().map(|(r, l)| (*r, l))), batch.len());
            prop_assert_eq!(ix.series_count(), series.len());

            let want = brute_select(&series, &ms);
            prop_assert_eq!(&ix.select(&ms), &want, "matchers {:?}", ms.iter().map(|m| m.to_string()).collect::<Vec<_>>());

            let chosen: Vec<&Labels> = series.iter().filter(|(r, _)| want.binary_search(r).is_ok()).map(|(_, l)| l).collect();
            let names: BTreeSet<String> = chosen.iter().flat_map(|l| l.iter().map(|(n, _)| n.to_string())).collect();
            prop_assert_eq!(ix.label_names(&ms), names.into_iter().collect::<Vec<_>>());
            for name in ["__name__", "a", "zz"] {
                let values: BTreeSet<String> = chosen.iter().filter_map(|l| l.get(name)).map(String::from).collect();
                prop_assert_eq!(ix.label_values(name, &ms), values.into_iter().collect::<Vec<_>>());
            }
            // Postings agree with a scan for every stored pair.
            for name in NAMES {
                for value in VALUES {
                    let scan: Vec<SeriesRef> =
                        series.iter().filter(|(_, l)| !value.is_empty() && l.get(name) == Some(value)).map(|(r, _)| *r).collect();
                    let mut scan = scan;
                    scan.sort_unstable();
                    prop_assert_eq!(ix.postings(name, value), scan.as_slice());
                }
            }
        }
    }

    #[test]
    fn removing_everything_leaves_an_empty_index() {
        let mut ix = fixture();
        let all: Vec<(SeriesRef, Labels)> = [
            (1, labels(&[("__name__", "m"), ("a", "1")])),
            (2, labels(&[("__name__", "m"), ("a", "2"), ("b", "x")])),
            (3, labels(&[("__name__", "m")])),
        ]
        .into();
        assert_eq!(ix.remove_batch(all.iter().map(|(r, l)| (*r, l))), 3);
        assert_eq!(ix.select(&[]), vec![4, 5]);
        assert_eq!(ix.label_values("__name__", &[]), vec!["n"]);
        assert!(ix.remove(4, &labels(&[("__name__", "n"), ("b", "y")])));
        assert!(ix.remove(5, &labels(&[("__name__", "n"), ("a", "foo")])));
        assert_eq!(ix.series_count(), 0);
        assert!(ix.label_names(&[]).is_empty());
        assert!(ix.postings.is_empty());
        assert_eq!(ix.memory_bytes(), 0);
    }

    #[test]
    fn re_adding_is_idempotent() {
        let mut ix = fixture();
        ix.add(2, &labels(&[("__name__", "m"), ("a", "2"), ("b", "x")]));
        ix.add(1, &labels(&[("__name__", "m"), ("a", "1")]));
        assert_eq!(ix.series_count(), 5);
        assert_eq!(ix.postings("__name__", "m"), &[1, 2, 3]);
        assert_eq!(ix.postings("a", "2"), &[2]);
        let before = ix.memory_bytes();
        ix.shrink_to_fit();
        assert!(ix.memory_bytes() <= before);
        assert_eq!(ix.select(&[]), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn label_names_and_values() {
        let ix = fixture();
        assert_eq!(ix.label_names(&[]), vec!["__name__", "a", "b"]);
        assert_eq!(ix.label_names(&[m("__name__", Eq, "m"), m("b", Eq, "")]), vec!["__name__", "a"]);
        assert_eq!(ix.label_names(&[m("__name__", Eq, "nope")]), Vec::<String>::new());
        assert_eq!(ix.label_values("a", &[]), vec!["1", "2", "foo"]);
        assert_eq!(ix.label_values("a", &[m("__name__", Eq, "n")]), vec!["foo"]);
        assert_eq!(ix.label_values("zz", &[]), Vec::<String>::new());
        assert_eq!(ix.label_values("b", &[m("a", Re, ".*")]), vec!["x", "y"]);
    }

    #[test]
    fn stats_rank_by_count_then_name() {
        let ix = fixture();
        let s = ix.stats(2);
        assert_eq!(s.num_series, 5);
        assert_eq!(s.num_label_names, 3);
        assert_eq!(s.num_label_pairs, 7);
        let st = |n: &str, c: u64| Stat { name: n.to_string(), count: c };
        assert_eq!(s.series_count_by_metric_name, vec![st("m", 3), st("n", 2)]);
        assert_eq!(s.label_value_count_by_label_name, vec![st("a", 3), st("__name__", 2)]);
        assert_eq!(s.memory_in_bytes_by_label_name, vec![st("__name__", 5), st("a", 5)]);
        assert_eq!(s.series_count_by_label_value_pair, vec![st("__name__=m", 3), st("__name__=n", 2)]);
        assert!(s.memory_bytes > 0);
        assert!(ix.stats(0).series_count_by_metric_name.is_empty());
        assert_eq!(ix.stats(100).series_count_by_label_value_pair.len(), 7);
    }

    fn sorted_refs() -> impl Strategy<Value = Vec<SeriesRef>> {
        prop::collection::btree_set(prop_oneof![0u64..300, 0u64..100_000], 0..80)
            .prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        /// Every strategy of `filter` and `union` against sets, whichever one the cost model
        /// would pick for the input.
        #[test]
        fn set_operations_agree(
            cands in sorted_refs(),
            lists in prop::collection::vec(sorted_refs().prop_filter("non-empty", |l| !l.is_empty()), 0..6),
            keep in any::<bool>(),
        ) {
            let lists = Lists { total: lists.iter().map(Vec::len).sum(), lists: lists.iter().map(Vec::as_slice).collect() };
            let members: BTreeSet<SeriesRef> = lists.lists.iter().flat_map(|l| l.iter().copied()).collect();
            let want: Vec<SeriesRef> = cands.iter().copied().filter(|c| members.contains(c) == keep).collect();
            let mut got = cands.clone();
            filter(&mut got, &lists, keep);
            prop_assert_eq!(&got, &want);
            let mut got = cands.clone();
            filter_by_probes(&mut got, &lists, keep);
            prop_assert_eq!(&got, &want);
            if let (Some(&lo), Some(&hi)) = (cands.first(), cands.last()) {
                let mut got = cands.clone();
                filter_by_bits(&mut got, &lists, keep, lo, hi);
                prop_assert_eq!(&got, &want);
            }
            let selection = Selection::new(cands.clone());
            for l in &lists.lists {
                prop_assert_eq!(selection.intersects(l), l.iter().any(|r| cands.binary_search(r).is_ok()));
            }
            let all: Vec<SeriesRef> = members.into_iter().collect();
            prop_assert_eq!(&lists.union(), &all);
            prop_assert_eq!(&lists.union_by_sort(), &all);
            if let (Some(&lo), Some(&hi)) = (all.first(), all.last()) {
                prop_assert_eq!(&lists.union_by_bits(lo, hi), &all);
            }
        }
    }

    #[test]
    fn galloping_helpers() {
        let s = [1u64, 3, 5, 7, 9, 11, 13, 15, 17];
        for from in 0..s.len() {
            for target in 0..20 {
                let want = from + s[from..].partition_point(|&x| x < target);
                assert_eq!(gallop(&s, from, target), want, "from {from} target {target}");
            }
        }
        assert!(intersects(&[2, 9], &s));
        assert!(!intersects(&[2, 4, 18], &s));
        assert!(!intersects(&[], &s));
    }

    #[test]
    fn posting_lists_stay_compact() {
        let mut l = PostingList::One(5);
        l.insert(5);
        assert!(matches!(l, PostingList::One(5)));
        l.insert(3);
        l.insert(9);
        l.insert(7);
        assert_eq!(l.as_slice(), &[3, 5, 7, 9]);
        assert!(l.retain(|r| r == 7));
        assert!(matches!(l, PostingList::One(7)));
        assert!(!l.retain(|_| false));
        assert_eq!(std::mem::size_of::<PostingList>(), 24);
    }
}
