//! Byte-level scanning shared by both formats: character classes, label sets, escapes.
//!
//! The line parsers ([`super::text`], [`super::openmetrics`]) call [`scan_labels`] to find the end
//! of a `{...}` block and record where each label name and value lies ([`LabelSpan`], offsets
//! into the body), checking syntax and duplicate names on the way. Nothing here allocates except
//! pushing onto the caller's reused span vector. [`LabelPairs`] re-walks an already validated
//! block lazily for callers that want the pairs, and [`Escaped`] unescapes only on request.

use std::borrow::Cow;

use super::Fail;

const NAME_START: u8 = 1;
const NAME: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL: u8 = 8;
const DIGIT: u8 = 16;

/// One table lookup per byte instead of a chain of range comparisons in the hottest loops.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut v = 0;
        if alpha || b == b':' {
            v |= NAME_START | NAME;
        }
        if digit {
            v |= NAME | LABEL | DIGIT;
        }
        if alpha {
            v |= LABEL_START | LABEL;
        }
        t[c] = v;
        c += 1;
    }
    t
};

#[inline]
pub(super) fn is_name_start(b: u8) -> bool {
    CLASS[b as usize] & NAME_START != 0
}

#[inline]
pub(super) fn is_name_char(b: u8) -> bool {
    CLASS[b as usize] & NAME != 0
}

#[inline]
pub(super) fn is_label_start(b: u8) -> bool {
    CLASS[b as usize] & LABEL_START != 0
}

#[inline]
pub(super) fn is_digit(b: u8) -> bool {
    CLASS[b as usize] & DIGIT != 0
}

/// Byte-slice equality for the short names and values compared several times per sample: a
/// call to libc's `memcmp` costs more than the comparison itself at these lengths.
#[inline(always)]
pub(super) fn eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n > 16 {
        return a == b;
    }
    if n >= 8 {
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    let mut i = 0;
    while i < n {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[inline(always)]
fn word(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(src) = s.get(at..at + 8) {
        w.copy_from_slice(src);
    }
    u64::from_le_bytes(w)
}

/// End of the metric name `[a-zA-Z_:][a-zA-Z0-9_:]*` starting at `pos`; `pos` when there is none.
#[inline]
pub(super) fn scan_name(b: &[u8], pos: usize) -> usize {
    if pos >= b.len() || !is_name_start(b[pos]) {
        return pos;
    }
    run(b, pos + 1, NAME)
}

/// End of the run of bytes of class `class` from `i`, four table lookups per step (metric names
/// run to dozens of bytes, and a branch per byte is what their scan costs).
#[inline(always)]
fn run(b: &[u8], mut i: usize, class: u8) -> usize {
    while let Some(w) = b.get(i..i + 4) {
        let all = CLASS[w[0] as usize] & CLASS[w[1] as usize] & CLASS[w[2] as usize] & CLASS[w[3] as usize];
        if all & class == 0 {
            break;
        }
        i += 4;
    }
    while i < b.len() && CLASS[b[i] as usize] & class != 0 {
        i += 1;
    }
    i
}

/// End of the label name `[a-zA-Z_][a-zA-Z0-9_]*` starting at `pos`; `pos` when there is none.
#[inline]
fn scan_label_name(b: &[u8], pos: usize) -> usize {
    if pos >= b.len() || !is_label_start(b[pos]) {
        return pos;
    }
    run(b, pos + 1, LABEL)
}

/// Skips the text format's blanks (`[ \t]*`, as Prometheus's lexer).
#[inline]
pub(super) fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Marks (high bit set) the bytes of `w` equal to `c`. Borrows can also mark bytes after a true
/// match, never before one, so the lowest mark is exact: `trailing_zeros() / 8` of a
/// little-endian word is the index of the first match.
#[inline(always)]
fn match_byte(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Position of the next `\n` at or after `i`, or the body length. HELP lines are long, so
/// the search goes a word at a time.
#[inline]
pub(super) fn line_end(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let m = match_byte(word(b, i), b'\n');
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

/// Position of the first `"`, `\\` or `\n` at or after `i`, or the body length.
#[inline]
fn quoted_stop(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let w = word(b, i);
        let m = match_byte(w, b'"') | match_byte(w, b'\\') | match_byte(w, b'\n');
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !matches!(b[i], b'"' | b'\\' | b'\n') {
        i += 1;
    }
    i
}

/// How the byte at `i` reads in an error message.
pub(super) fn found(b: &[u8], i: usize) -> String {
    match b.get(i) {
        None => "end of input".to_string(),
        Some(b'\n') => "end of line".to_string(),
        Some(&c) if c.is_ascii_graphic() || c == b' ' => format!("'{}'", c as char),
        Some(&c) => format!("byte 0x{c:02x}"),
    }
}

/// Where one label of a `{...}` block lies in the body. Values are the raw text between the
/// quotes; `escaped` says whether it holds a backslash, so unescaping can be skipped otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct LabelSpan {
    pub name_start: usize,
    pub name_end: usize,
    pub value_start: usize,
    pub value_end: usize,
    pub escaped: bool,
}

impl LabelSpan {
    #[inline]
    pub fn name<'b>(&self, b: &'b [u8]) -> &'b [u8] {
        b.get(self.name_start..self.name_end).unwrap_or_default()
    }

    #[inline]
    pub fn value<'b>(&self, b: &'b [u8]) -> &'b [u8] {
        b.get(self.value_start..self.value_end).unwrap_or_default()
    }
}

/// The two label-set grammars: Prometheus's text lexer allows blanks around every token and a
/// trailing comma; OpenMetrics allows neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    Text,
    OpenMetrics,
}

/// What a label block belongs to: a series may not name a label `__name__` (the metric name
/// would be there twice once the name is added), an exemplar may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Block {
    Series,
    Exemplar,
}

/// Scans the label block whose `{` is at `open`, appending one span per label to `out` (cleared
/// first). Returns the position just after the closing `}`.
pub(super) fn scan_labels(
    b: &[u8],
    open: usize,
    dialect: Dialect,
    block: Block,
    out: &mut Vec<LabelSpan>,
) -> Result<usize, Fail> {
    out.clear();
    let what = match block {
        Block::Series => "label",
        Block::Exemplar => "exemplar label",
    };
    let text = dialect == Dialect::Text;
    let mut i = open + 1;
    if text {
        i = skip_blanks(b, i);
    }
    if b.get(i) == Some(&b'}') {
        return Ok(i + 1);
    }
    loop {
        let name_start = i;
        let name_end = scan_label_name(b, i);
        if name_end == name_start {
            let msg = if b.get(i) == Some(&b'"') {
                format!("expected {what} name, found '\"' (quoted UTF-8 names are not supported)")
            } else {
                format!("expected {what} name, found {}", found(b, i))
            };
            return Err(Fail::syntax(i, msg));
        }
        let name = &b[name_start..name_end];
        if block == Block::Series && name == b"__name__" {
            return Err(Fail::syntax(
                name_start,
                "label name \"__name__\" is reserved for the metric name".to_string(),
            ));
        }
        i = name_end;
        if text {
            i = skip_blanks(b, i);
        }
        if b.get(i) != Some(&b'=') {
            return Err(Fail::syntax(
                i,
                format!("expected '=' after {what} name \"{}\", found {}", show(name), found(b, i)),
            ));
        }
        i += 1;
        if text {
            i = skip_blanks(b, i);
        }
        if b.get(i) != Some(&b'"') {
            return Err(Fail::syntax(
                i,
                format!(
                    "expected '\"' to open the value of {what} \"{}\", found {}",
                    show(name),
                    found(b, i)
                ),
            ));
        }
        let value_start = i + 1;
        let (value_end, escaped) = scan_quoted(b, value_start, what, name)?;
        for prev in out.iter() {
            if eq(prev.name(b), name) {
                return Err(Fail::syntax(name_start, format!("duplicate {what} name \"{}\"", show(name))));
            }
        }
        out.push(LabelSpan { name_start, name_end, value_start, value_end, escaped });
        i = value_end + 1;
        if text {
            i = skip_blanks(b, i);
        }
        match b.get(i) {
            Some(b',') => {
                i += 1;
                if text {
                    i = skip_blanks(b, i);
                    // Prometheus's lexer accepts a trailing comma before the brace.
                    if b.get(i) == Some(&b'}') {
                        return Ok(i + 1);
                    }
                }
            }
            Some(b'}') => return Ok(i + 1),
            _ => {
                return Err(Fail::syntax(
                    i,
                    format!(
                        "expected ',' or '}}' after the value of {what} \"{}\", found {}",
                        show(name),
                        found(b, i)
                    ),
                ))
            }
        }
    }
}

/// Finds the closing quote of a label value starting at `start`. A backslash escapes any
/// following character except a newline; raw newlines are rejected because both formats
/// require them escaped and a value spanning lines would make every later position wrong.
#[inline]
fn scan_quoted(b: &[u8], start: usize, what: &str, name: &[u8]) -> Result<(usize, bool), Fail> {
    let mut i = start;
    let mut escaped = false;
    loop {
        i = quoted_stop(b, i);
        match b.get(i) {
            Some(b'"') => return Ok((i, escaped)),
            Some(b'\\') if i + 1 < b.len() && b[i + 1] != b'\n' => {
                escaped = true;
                i += 2;
            }
            Some(b'\\') => {
                i += 1;
                break;
            }
            _ => break,
        }
    }
    Err(Fail::syntax(
        i.min(b.len()),
        format!("value of {what} \"{}\" is not closed by '\"' before {}", show(name), found(b, i)),
    ))
}

/// A name or short token for an error message (lossy, since it may not be UTF-8).
pub(super) fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.chars().count() > 64 {
        let mut t: String = s.chars().take(64).collect();
        t.push('…');
        t
    } else {
        s.into_owned()
    }
}

/// Which backslash sequences a string unescapes. Label values (both formats) and OpenMetrics
/// HELP know `\\`, `\"` and `\n`; Prometheus's text HELP knows only `\\` and `\n`. Any other
/// backslash pair is kept verbatim, as Prometheus does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Escapes {
    Quoted,
    TextHelp,
}

/// A string as written in the exposition, still escaped. Borrowed from the body; unescaping
/// allocates only when the raw text holds a backslash, or not at all with
/// [`Escaped::unescape_into`].
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a> {
    raw: &'a str,
    has_escapes: bool,
    escapes: Escapes,
}

impl<'a> Escaped<'a> {
    pub(super) fn new(raw: &'a str, has_escapes: bool, escapes: Escapes) -> Escaped<'a> {
        Escaped { raw, has_escapes, escapes }
    }

    pub(super) fn scan(raw: &'a str, escapes: Escapes) -> Escaped<'a> {
        Escaped { raw, has_escapes: raw.as_bytes().contains(&b'\\'), escapes }
    }

    /// The text between the quotes (or after the metric name, for HELP) exactly as exposed.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the raw text contains a backslash (and so may differ from its unescaped form).
    pub fn has_escapes(&self) -> bool {
        self.has_escapes
    }

    /// The unescaped value: borrowed when there is nothing to unescape.
    pub fn unescape(&self) -> Cow<'a, str> {
        if !self.has_escapes {
            return Cow::Borrowed(self.raw);
        }
        let mut s = String::with_capacity(self.raw.len());
        unescape_to(self.raw, self.escapes, &mut s);
        Cow::Owned(s)
    }

    /// The unescaped value, written into `scratch` (cleared first) only when there are escapes:
    /// lets a caller unescape every label of a scrape without allocating.
    pub fn unescape_into<'s>(&self, scratch: &'s mut String) -> &'s str
    where
        'a: 's,
    {
        if !self.has_escapes {
            return self.raw;
        }
        scratch.clear();
        unescape_to(self.raw, self.escapes, scratch);
        scratch.as_str()
    }

    /// Number of characters (Unicode scalar values) of the unescaped value, without unescaping.
    pub fn unescaped_chars(&self) -> usize {
        let b = self.raw.as_bytes();
        let mut n = b.iter().filter(|&&c| (c as i8) >= -0x40).count();
        if self.has_escapes {
            let mut i = 0;
            while i + 1 < b.len() {
                if b[i] == b'\\' {
                    if is_known_escape(b[i + 1], self.escapes) {
                        n -= 1;
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
        n
    }
}

/// Compares the unescaped value with `other` without allocating.
impl PartialEq<str> for Escaped<'_> {
    fn eq(&self, other: &str) -> bool {
        if !self.has_escapes {
            return self.raw == other;
        }
        let mut o = other.as_bytes();
        let mut ok = true;
        for_each_unescaped(self.raw.as_bytes(), self.escapes, |piece| {
            if ok {
                match o.strip_prefix(piece) {
                    Some(rest) => o = rest,
                    None => ok = false,
                }
            }
        });
        ok && o.is_empty()
    }
}

impl PartialEq<&str> for Escaped<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

#[inline]
fn is_known_escape(c: u8, escapes: Escapes) -> bool {
    c == b'\\' || c == b'n' || (c == b'"' && escapes == Escapes::Quoted)
}

/// Calls `f` with consecutive byte pieces whose concatenation is the unescaped `raw`. Pieces
/// are cut only at ASCII bytes, so each piece of valid UTF-8 input is valid UTF-8 again.
pub(super) fn for_each_unescaped(raw: &[u8], escapes: Escapes, mut f: impl FnMut(&[u8])) {
    let mut last = 0;
    let mut i = 0;
    while i + 1 < raw.len() {
        if raw[i] != b'\\' {
            i += 1;
            continue;
        }
        let rep: &[u8] = match raw[i + 1] {
            b'\\' => b"\\",
            b'n' => b"\n",
            b'"' if escapes == Escapes::Quoted => b"\"",
            _ => {
                i += 2;
                continue;
            }
        };
        f(&raw[last..i]);
        f(rep);
        i += 2;
        last = i;
    }
    f(&raw[last..]);
}

fn unescape_to(raw: &str, escapes: Escapes, out: &mut String) {
    for_each_unescaped(raw.as_bytes(), escapes, |piece| {
        // Pieces of a &str cut at ASCII bytes are always valid UTF-8.
        if let Ok(s) = std::str::from_utf8(piece) {
            out.push_str(s);
        }
    });
}

/// Unescapes a label value into a byte buffer (cleared first), for validation that compares or
/// parses values.
pub(super) fn unescape_bytes(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for_each_unescaped(raw, Escapes::Quoted, |piece| out.extend_from_slice(piece));
}

/// The label block of a sample or exemplar, exactly as exposed (`{...}`, or empty when the
/// sample has none). It was fully validated while parsing; [`LabelsText::iter`] walks it again
/// only when a caller asks for the pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelsText<'a> {
    text: &'a str,
}

impl<'a> LabelsText<'a> {
    pub(super) fn new(text: &'a str) -> LabelsText<'a> {
        LabelsText { text }
    }

    /// The raw block including braces; empty when the sample had no braces.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Whether there are no label pairs (no braces, or `{}`).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The `(name, value)` pairs in exposition order.
    pub fn iter(&self) -> LabelPairs<'a> {
        LabelPairs { text: self.text, pos: 1 }
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<Escaped<'a>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for LabelsText<'a> {
    type Item = (&'a str, Escaped<'a>);
    type IntoIter = LabelPairs<'a>;

    fn into_iter(self) -> LabelPairs<'a> {
        self.iter()
    }
}

/// Iterator over the pairs of a validated label block. Blanks and a trailing comma (text format)
/// are skipped; the block's syntax was checked when it was parsed, so this walk never fails.
#[derive(Clone, Debug)]
pub struct LabelPairs<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for LabelPairs<'a> {
    type Item = (&'a str, Escaped<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.text.as_bytes();
        let mut i = skip_blanks(b, self.pos);
        let name_start = i;
        let name_end = scan_label_name(b, i);
        if name_end == name_start {
            self.pos = b.len();
            return None;
        }
        i = skip_blanks(b, name_end);
        // '=' then blanks then '"'.
        i = skip_blanks(b, i + 1) + 1;
        let value_start = i;
        let mut escaped = false;
        loop {
            i = quoted_stop(b, i);
            if b.get(i) != Some(&b'\\') {
                break;
            }
            escaped = true;
            i += 2;
        }
        let value_end = i.min(b.len());
        i = skip_blanks(b, i + 1);
        if b.get(i) == Some(&b',') {
            i += 1;
        }
        self.pos = i;
        // Every cut is at an ASCII delimiter, so these slices are on character boundaries.
        let name = self.text.get(name_start..name_end)?;
        let value = self.text.get(value_start..value_end)?;
        Some((name, Escaped::new(value, escaped, Escapes::Quoted)))
    }
}
