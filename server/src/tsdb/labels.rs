//! Label sets: the identity of a series.
//!
//! [`Labels`] is an immutable set of `(name, value)` pairs sorted by name, `__name__` included as
//! an ordinary label. It is what the head keys series by, what the index ([`super::index`]) is
//! built from and what queries return, so it is cloned often and kept by every series: it is one
//! reference-counted string (16 bytes inline, one heap block) holding every name and value, each
//! prefixed by its length in a 6-bit varint whose bytes are all ASCII, so the buffer stays valid
//! UTF-8 and every name and value is a plain `&str` slice of it without `unsafe`. A label with an
//! empty value is the same as an absent one (as in Prometheus) and is never stored.
//!
//! [`Labels::stable_hash`] is xxHash64 over `name 0xff value 0xff …`, the same bytes and the same
//! function Prometheus's `labels.Hash` uses, so it is identical across processes and platforms.
//! [`LabelsBuilder`] and the `with`/`without`/`keep_only` helpers derive new sets for PromQL and
//! relabeling.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Why a label set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("duplicate label name {0:?}")]
    DuplicateName(String),
    #[error("empty label name (with value {value:?})")]
    EmptyName { value: String },
}

/// An immutable, sorted set of labels; cloning is a reference-count increment.
#[derive(Clone, PartialEq, Eq)]
pub struct Labels {
    /// Canonical encoding: pairs sorted by name, no duplicates, no empty values, so two sets are
    /// equal exactly when their buffers are.
    data: Arc<str>,
}

impl Labels {
    /// Builds a set from pairs in any order. Pairs with an empty value are dropped; two pairs with
    /// the same name (whatever their values) or an empty name are errors.
    pub fn new<N, V, I>(pairs: I) -> Result<Labels, LabelsError>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut pairs: Vec<(N, V)> = pairs.into_iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        for w in pairs.windows(2) {
            if w[0].0.as_ref() == w[1].0.as_ref() {
                return Err(LabelsError::DuplicateName(w[0].0.as_ref().to_string()));
            }
        }
        if let Some((_, v)) = pairs.iter().find(|(n, _)| n.as_ref().is_empty()) {
            return Err(LabelsError::EmptyName { value: v.as_ref().to_string() });
        }
        Ok(Labels::encode(pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))))
    }

    /// The empty set.
    pub fn empty() -> Labels {
        Labels::encode(std::iter::empty())
    }

    /// Encodes pairs the caller guarantees sorted by name with unique, non-empty names; empty
    /// values are skipped here so callers need not filter.
    fn encode<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Labels {
        let size: usize =
            pairs.clone().filter(|(_, v)| !v.is_empty()).map(|(n, v)| n.len() + v.len() + 4).sum();
        let mut buf = String::with_capacity(size);
        for (n, v) in pairs.filter(|(_, v)| !v.is_empty()) {
            push_str_with_len(&mut buf, n);
            push_str_with_len(&mut buf, v);
        }
        Labels { data: Arc::from(buf) }
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        for (n, v) in self.iter() {
            match n.cmp(name) {
                Ordering::Less => continue,
                Ordering::Equal => return Some(v),
                Ordering::Greater => return None,
            }
        }
        None
    }

    /// The value of `__name__`.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Whether label `name` is present (i.e. has a non-empty value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The pairs in name order.
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter { rest: &self.data }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// xxHash64 (seed 0) of `name 0xff value 0xff` for every pair in order: Prometheus's
    /// `labels.Hash`. Collisions are possible; callers compare the sets themselves.
    pub fn stable_hash(&self) -> u64 {
        let mut h = Xxh64::new();
        for (n, v) in self.iter() {
            h.write(n.as_bytes());
            h.write(&[0xff]);
            h.write(v.as_bytes());
            h.write(&[0xff]);
        }
        h.finish()
    }

    /// Heap bytes this set owns if it is the only holder of its buffer: the reference counts plus
    /// the encoded pairs, rounded as glibc's allocator rounds.
    pub fn heap_bytes(&self) -> usize {
        malloc_size(2 * std::mem::size_of::<usize>() + self.data.len())
    }

    /// A copy with `name` set to `value`, or removed if `value` is empty.
    pub fn with(&self, name: &str, value: &str) -> Result<Labels, LabelsError> {
        let mut b = self.builder();
        b.set(name, value)?;
        Ok(b.build())
    }

    /// A copy without the named labels.
    pub fn without(&self, names: &[&str]) -> Labels {
        Labels::encode(self.iter().filter(|(n, _)| !names.contains(n)))
    }

    /// A copy with only the named labels.
    pub fn keep_only(&self, names: &[&str]) -> Labels {
        Labels::encode(self.iter().filter(|(n, _)| names.contains(n)))
    }

    /// A copy without `__name__`, as PromQL functions and operators return.
    pub fn without_metric_name(&self) -> Labels {
        if self.metric_name().is_none() {
            return self.clone();
        }
        self.without(&[METRIC_NAME])
    }

    /// A builder starting from this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder::from_labels(self)
    }
}

impl Default for Labels {
    fn default() -> Self {
        Labels::empty()
    }
}

/// Prometheus's series order: pair by pair, name then value, a prefix before its extensions.
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.data, &other.data) {
            return Ordering::Equal;
        }
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.data.hash(state);
    }
}

/// Prometheus's text form: `metric{a="b", c="d"}`, `metric` alone when it has no other labels,
/// `{a="b"}` without a metric name. Names outside the classic character set are quoted the way
/// Prometheus 3 prints UTF-8 names (`{"my.metric", "a.b"="c"}`), so the output parses back.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        let plain_name = name.filter(|n| is_legacy_metric_name(n));
        if let Some(n) = plain_name {
            f.write_str(n)?;
        }
        let others = self.iter().filter(|(n, _)| *n != METRIC_NAME);
        if plain_name.is_some() && others.clone().next().is_none() {
            return Ok(());
        }
        f.write_str("{")?;
        let mut first = true;
        if let (Some(n), None) = (name, plain_name) {
            write_quoted(f, n)?;
            first = false;
        }
        for (n, v) in others {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            if is_legacy_label_name(n) {
                f.write_str(n)?;
            } else {
                write_quoted(f, n)?;
            }
            f.write_str("=")?;
            write_quoted(f, v)?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Labels({self})")
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '\\' => "\\\\",
            '"' => "\\\"",
            '\n' => "\\n",
            _ => continue,
        };
        f.write_str(&s[start..i])?;
        f.write_str(esc)?;
        start = i + 1;
    }
    f.write_str(&s[start..])?;
    f.write_str("\"")
}

fn is_legacy_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_legacy_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Iterator over the pairs of a [`Labels`], in name order.
#[derive(Clone)]
pub struct LabelsIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let name = take_str(&mut self.rest)?;
        let value = take_str(&mut self.rest)?;
        Some((name, value))
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a str, &'a str);
    type IntoIter = LabelsIter<'a>;

    fn into_iter(self) -> LabelsIter<'a> {
        self.iter()
    }
}

/// Appends `s` prefixed by its length, 6 bits per byte, low bits first, 0x40 meaning "more";
/// every length byte is below 0x80 and so a one-byte UTF-8 character.
fn push_str_with_len(buf: &mut String, s: &str) {
    let mut len = s.len();
    while len >= 0x40 {
        buf.push(char::from(0x40 | (len & 0x3f) as u8));
        len >>= 6;
    }
    buf.push(char::from(len as u8));
    buf.push_str(s);
}

/// Reads one length-prefixed string off the front of `rest`. `None` only at the end: the buffer
/// is built solely by [`push_str_with_len`].
fn take_str<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let bytes = rest.as_bytes();
    let mut len = 0usize;
    let mut shift = 0u32;
    let mut pos = 0usize;
    loop {
        let b = *bytes.get(pos)?;
        pos += 1;
        len |= usize::from(b & 0x3f).checked_shl(shift)?;
        if b & 0x40 == 0 {
            break;
        }
        shift += 6;
    }
    let end = pos.checked_add(len)?;
    let s = rest.get(pos..end)?;
    *rest = rest.get(end..)?;
    Some(s)
}

/// Size of the block glibc's malloc hands out for a request of `n` bytes on 64-bit targets: an
/// 8-byte header, 16-byte granularity, 32 bytes minimum. Used for memory estimates only.
pub(crate) fn malloc_size(n: usize) -> usize {
    ((n + 8 + 15) & !15).max(32)
}

/// Builds label sets by editing: set (empty value deletes), delete, keep only some names.
#[derive(Clone, Debug, Default)]
pub struct LabelsBuilder {
    /// Sorted by name, unique names, non-empty values: encodable as is.
    pairs: Vec<(String, String)>,
}

impl LabelsBuilder {
    pub fn new() -> LabelsBuilder {
        LabelsBuilder::default()
    }

    pub fn from_labels(labels: &Labels) -> LabelsBuilder {
        LabelsBuilder { pairs: labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect() }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).ok().map(|i| self.pairs[i].1.as_str())
    }

    /// Sets `name` to `value`; an empty value removes the label. An empty name is an error.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&mut LabelsBuilder, LabelsError> {
        if name.is_empty() {
            return Err(LabelsError::EmptyName { value: value.to_string() });
        }
        match (self.position(name), value.is_empty()) {
            (Ok(i), true) => {
                self.pairs.remove(i);
            }
            (Ok(i), false) => value.clone_into(&mut self.pairs[i].1),
            (Err(_), true) => {}
            (Err(i), false) => self.pairs.insert(i, (name.to_string(), value.to_string())),
        }
        Ok(self)
    }

    /// Removes `name` if present.
    pub fn del(&mut self, name: &str) -> &mut LabelsBuilder {
        if let Ok(i) = self.position(name) {
            self.pairs.remove(i);
        }
        self
    }

    /// Removes every label not in `names`.
    pub fn keep(&mut self, names: &[&str]) -> &mut LabelsBuilder {
        self.pairs.retain(|(n, _)| names.contains(&n.as_str()));
        self
    }

    pub fn build(&self) -> Labels {
        Labels::encode(self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.pairs.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }
}

/// Streaming xxHash64 with seed 0, written out so the value cannot change with a dependency.
pub(crate) struct Xxh64 {
    acc: [u64; 4],
    buf: [u8; 32],
    buf_len: usize,
    total: u64,
}

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

fn xxh_round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
}

fn xxh_merge(acc: u64, v: u64) -> u64 {
    (acc ^ xxh_round(0, v)).wrapping_mul(P1).wrapping_add(P4)
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

impl Xxh64 {
    pub(crate) fn new() -> Xxh64 {
        Xxh64 { acc: [P1.wrapping_add(P2), P2, 0, 0u64.wrapping_sub(P1)], buf: [0; 32], buf_len: 0, total: 0 }
    }

    fn stripe(acc: &mut [u64; 4], s: &[u8]) {
        for (i, a) in acc.iter_mut().enumerate() {
            *a = xxh_round(*a, read_u64(&s[i * 8..]));
        }
    }

    pub(crate) fn write(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.buf_len > 0 {
            let n = (32 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + n].copy_from_slice(&data[..n]);
            self.buf_len += n;
            data = &data[n..];
            if self.buf_len < 32 {
                return;
            }
            let buf = self.buf;
            Self::stripe(&mut self.acc, &buf);
            self.buf_len = 0;
        }
        let mut chunks = data.chunks_exact(32);
        for c in &mut chunks {
            Self::stripe(&mut self.acc, c);
        }
        let rest = chunks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    pub(crate) fn finish(&self) -> u64 {
        let [v1, v2, v3, v4] = self.acc;
        let mut h = if self.total >= 32 {
            let mut h = v1
                .rotate_left(1)
                .wrapping_add(v2.rotate_left(7))
                .wrapping_add(v3.rotate_left(12))
                .wrapping_add(v4.rotate_left(18));
            for v in self.acc {
                h = xxh_merge(h, v);
            }
            h
        } else {
            P5
        };
        h = h.wrapping_add(self.total);
        let mut tail = &self.buf[..self.buf_len];
        while tail.len() >= 8 {
            h = (h ^ xxh_round(0, read_u64(tail))).rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
            tail = &tail[8..];
        }
        if tail.len() >= 4 {
            h = (h ^ u64::from(read_u32(tail)).wrapping_mul(P1))
                .rotate_left(23)
                .wrapping_mul(P2)
                .wrapping_add(P3);
            tail = &tail[4..];
        }
        for &b in tail {
            h = (h ^ u64::from(b).wrapping_mul(P5)).rotate_left(11).wrapping_mul(P1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^= h >> 29;
        h = h.wrapping_mul(P3);
        h ^ (h >> 32)
    }
}

/// A [`Hasher`](std::hash::Hasher) for maps keyed by a value that already is a good hash (such
/// as [`Labels::stable_hash`]): it hands the `u64` through instead of hashing it again.
#[derive(Default, Clone, Copy)]
pub struct PassThroughHasher(u64);

impl std::hash::Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than u64; fold them in rather than drop them.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// MurmurHash3's 64-bit finalizer (fmix64): spreads the bits of a key that is unique but not
/// random (consecutive refs, a running hash) so a hash table's low bits are well distributed.
pub fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Builds [`PassThroughHasher`]s, for `HashMap<u64, V, PassThrough>`.
pub type PassThrough = std::hash::BuildHasherDefault<PassThroughHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).unwrap()
    }

    fn xxh(data: &[u8]) -> u64 {
        let mut h = Xxh64::new();
        h.write(data);
        h.finish()
    }

    #[test]
    fn sorts_and_reads_back() {
        let s = l(&[("job", "api"), ("__name__", "up"), ("Instance", "a:1"), ("z", "")]);
        let pairs: Vec<_> = s.iter().collect();
        assert_eq!(pairs, vec![("Instance", "a:1"), ("__name__", "up"), ("job", "api")]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.get("job"), Some("api"));
        assert_eq!(s.get("z"), None);
        assert_eq!(s.get("a"), None);
        assert_eq!(s.metric_name(), Some("up"));
        assert!(!s.is_empty());
        assert!(Labels::empty().is_empty());
        assert_eq!(Labels::empty().len(), 0);
        assert_eq!(l(&[("a", "")]), Labels::empty());
    }

    #[test]
    fn long_and_unicode_strings_round_trip() {
        for len in [0usize, 1, 63, 64, 65, 4095, 4096, 4097, 300_000] {
            let v: String = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let s = l(&[("v", &v), ("ü", "ä\u{0}\u{ff}"), ("k", "x")]);
            assert_eq!(s.get("v"), if v.is_empty() { None } else { Some(v.as_str()) });
            assert_eq!(s.get("ü"), Some("ä\u{0}\u{ff}"));
            assert_eq!(s.get("k"), Some("x"));
        }
    }

    #[test]
    fn rejects_duplicates_and_empty_names() {
        assert_eq!(
            Labels::new([("a", "1"), ("b", "2"), ("a", "3")]),
            Err(LabelsError::DuplicateName("a".into()))
        );
        assert_eq!(Labels::new([("a", ""), ("a", "3")]), Err(LabelsError::DuplicateName("a".into())));
        assert_eq!(Labels::new([("", "x")]), Err(LabelsError::EmptyName { value: "x".into() }));
        let owned: Vec<(String, String)> = vec![("b".into(), "1".into()), ("a".into(), "2".into())];
        assert_eq!(Labels::new(owned).unwrap().to_string(), r#"{a="2", b="1"}"#);
    }

    #[test]
    fn display_matches_prometheus() {
        assert_eq!(
            l(&[("__name__", "up"), ("job", "a"), ("env", "b")]).to_string(),
            r#"up{env="b", job="a"}"#
        );
        assert_eq!(l(&[("__name__", "up")]).to_string(), "up");
        assert_eq!(l(&[("job", "x")]).to_string(), r#"{job="x"}"#);
        assert_eq!(Labels::empty().to_string(), "{}");
        assert_eq!(l(&[("a", "q\"b\\s\nn")]).to_string(), r#"{a="q\"b\\s\nn"}"#);
        assert_eq!(
            l(&[("__name__", "my.metric"), ("a.b", "c"), ("d", "e")]).to_string(),
            r#"{"my.metric", "a.b"="c", d="e"}"#
        );
        assert_eq!(l(&[("__name__", "my.metric")]).to_string(), r#"{"my.metric"}"#);
        assert_eq!(l(&[("__name__", "a:b_c")]).to_string(), "a:b_c");
        assert_eq!(format!("{:?}", l(&[("a", "b")])), r#"Labels({a="b"})"#);
    }

    #[test]
    fn ordering_is_pairwise_lexicographic() {
        let mut sets = [
            l(&[("a", "2")]),
            l(&[("a", "1"), ("b", "1")]),
            l(&[("a", "1")]),
            l(&[("b", "0")]),
            Labels::empty(),
            l(&[("a", "1"), ("c", "0")]),
            l(&[("a", "10")]),
        ];
        sets.sort();
        let shown: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "{}",
                r#"{a="1"}"#,
                r#"{a="1", b="1"}"#,
                r#"{a="1", c="0"}"#,
                r#"{a="10"}"#,
                r#"{a="2"}"#,
                r#"{b="0"}"#
            ]
        );
        // Against the definition, on sets whose encodings differ in length-prefix bytes.
        let a = l(&[("ab", "x")]);
        let b = l(&[("a", "zzz")]);
        assert_eq!(a.cmp(&b), Ordering::Greater);
        assert_eq!(a.iter().cmp(b.iter()), Ordering::Greater);
    }

    #[test]
    fn eq_and_hash_follow_content() {
        let a = l(&[("x", "1"), ("y", "2")]);
        let b = l(&[("y", "2"), ("x", "1"), ("z", "")]);
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), Ordering::Equal);
        let set: HashSet<Labels> = [a.clone(), b.clone(), l(&[("x", "1")])].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(a.stable_hash(), b.stable_hash());
        assert_ne!(a.stable_hash(), l(&[("x", "1"), ("y", "3")]).stable_hash());
        // The separator keeps boundaries: {a="bc"} and {ab="c"} must differ.
        assert_ne!(l(&[("a", "bc")]).stable_hash(), l(&[("ab", "c")]).stable_hash());
    }

    #[test]
    fn xxh64_known_vectors() {
        assert_eq!(xxh(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh(b"a"), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxh(b"abc"), 0x44BC_2CF5_AD77_0999);
        assert_eq!(xxh(b"Nobody inspects the spammish repetition"), 0xFBCE_A83C_8A37_8BF1);
        // Reference values from the xxhash-rust crate, covering every tail length class.
        let data = pseudo_random_bytes(200);
        for (len, want) in [
            (8, 0x521F_D287_8EA6_9D17u64),
            (16, 0xB1A3_75C6_BD6B_A7AF),
            (24, 0x96D6_D4E3_1120_0682),
            (40, 0x2B6E_6889_96C3_747C),
            (48, 0x5571_5152_3479_ED85),
            (56, 0x4C6D_5189_D62D_87B9),
            (71, 0xC34E_DA66_B8CB_41F2),
            (72, 0x34F9_0180_93CF_B836),
            (100, 0xD61E_A92C_5AE1_3676),
            (200, 0xDC2D_5A9D_E81B_7D4C),
        ] {
            assert_eq!(xxh(&data[..len]), want, "len {len}");
        }
    }

    fn pseudo_random_bytes(n: u32) -> Vec<u8> {
        (0..n).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
    }

    #[test]
    fn xxh64_streaming_equals_one_shot() {
        let data = pseudo_random_bytes(1000);
        for len in [0, 1, 3, 4, 7, 8, 31, 32, 33, 63, 64, 65, 100, 1000] {
            let whole = xxh(&data[..len]);
            for split in [1, 5, 16, 31, 32, 40] {
                let mut h = Xxh64::new();
                for c in data[..len].chunks(split) {
                    h.write(c);
                }
                assert_eq!(h.finish(), whole, "len {len} split {split}");
            }
        }
        // stable_hash is the hash of the concatenation, as in Prometheus.
        let s = l(&[("__name__", "up"), ("job", "node")]);
        assert_eq!(s.stable_hash(), xxh(b"__name__\xffup\xffjob\xffnode\xff"));
    }

    #[test]
    fn builder_and_helpers() {
        let base = l(&[("__name__", "up"), ("job", "a"), ("instance", "h:1")]);
        let mut b = base.builder();
        b.set("job", "b").unwrap().set("new", "n").unwrap().set("instance", "").unwrap().del("nope");
        assert_eq!(b.get("job"), Some("b"));
        assert_eq!(b.build(), l(&[("__name__", "up"), ("job", "b"), ("new", "n")]));
        b.keep(&["job"]);
        assert_eq!(b.build(), l(&[("job", "b")]));
        assert!(b.set("", "x").is_err());
        assert_eq!(LabelsBuilder::new().build(), Labels::empty());

        assert_eq!(
            base.with("job", "z").unwrap(),
            l(&[("__name__", "up"), ("job", "z"), ("instance", "h:1")])
        );
        assert_eq!(base.with("job", "").unwrap(), l(&[("__name__", "up"), ("instance", "h:1")]));
        assert_eq!(base.without(&["job", "x"]), l(&[("__name__", "up"), ("instance", "h:1")]));
        assert_eq!(base.keep_only(&["job", "x"]), l(&[("job", "a")]));
        assert_eq!(base.without_metric_name(), l(&[("job", "a"), ("instance", "h:1")]));
    }

    type Model = std::collections::BTreeMap<String, String>;

    fn model_strategy() -> impl proptest::strategy::Strategy<Value = Vec<(String, String)>> {
        use proptest::prelude::*;
        let text = prop::collection::vec(
            prop::sample::select(vec!["a", "b", "_", "é", "\n", "\"", "\u{0}", "zz"]),
            0..4,
        )
        .prop_map(|v| v.concat());
        prop::collection::vec((text.clone(), text), 0..6)
    }

    fn model(pairs: &[(String, String)]) -> Option<Model> {
        let mut m = Model::new();
        for (n, v) in pairs {
            if n.is_empty() || m.insert(n.clone(), v.clone()).is_some() {
                return None;
            }
        }
        m.retain(|_, v| !v.is_empty());
        Some(m)
    }

    proptest::proptest! {
        #[test]
        fn behaves_like_a_sorted_map(a in model_strategy(), b in model_strategy()) {
            use proptest::prop_assert_eq;
            let (la, lb) = (Labels::new(a.clone()), Labels::new(b.clone()));
            let (ma, mb) = (model(&a), model(&b));
            prop_assert_eq!(la.is_ok(), ma.is_some());
            prop_assert_eq!(lb.is_ok(), mb.is_some());
            if let (Ok(la), Ok(lb), Some(ma), Some(mb)) = (la, lb, ma, mb) {
                let pairs: Vec<(String, String)> = la.iter().map(|(n, v)| (n.into(), v.into())).collect();
                let want: Vec<(String, String)> = ma.clone().into_iter().collect();
                prop_assert_eq!(&pairs, &want);
                prop_assert_eq!(la.len(), ma.len());
                for (n, v) in &ma {
                    prop_assert_eq!(la.get(n), Some(v.as_str()));
                }
                let want_b: Vec<(String, String)> = mb.clone().into_iter().collect();
                prop_assert_eq!(la.cmp(&lb), want.cmp(&want_b));
                prop_assert_eq!(la == lb, ma == mb);
                if la == lb {
                    prop_assert_eq!(la.stable_hash(), lb.stable_hash());
                }
                prop_assert_eq!(LabelsBuilder::from_labels(&la).build(), la.clone());
                let _ = la.to_string();
            }
        }
    }

    #[test]
    fn compact_in_memory() {
        assert_eq!(std::mem::size_of::<Labels>(), 16);
        let s = l(&[("__name__", "http_requests_total"), ("job", "api"), ("instance", "10.0.0.1:9100")]);
        // 8 + 19 + 3 + 3 + 8 + 13 bytes of text, 6 length bytes, 16 bytes of counts.
        assert_eq!(s.heap_bytes(), malloc_size(16 + 54 + 6));
    }
}
