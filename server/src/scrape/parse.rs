//! Zero-copy parser for the Prometheus text format (0.0.4) and OpenMetrics 1.0 text.
//!
//! A [`Parser`] walks a scraped body once and yields [`Entry`] values that borrow from it:
//! samples ([`Sample`]: metric name, raw series text, lazily iterated labels, value, timestamp,
//! exemplar) and per-family metadata (TYPE, HELP, UNIT). The raw series text — metric name
//! through the closing `}` — is meant as the key of the scraper's per-target cache, so a series
//! seen in the previous scrape costs one lookup instead of label unescaping, sorting and hashing.
//! Label values are unescaped only on request ([`Escaped`]), into a caller's scratch buffer if
//! wanted, so the steady state allocates nothing per sample; the parser's own working memory
//! ([`Scratch`]) can be handed from one scrape to the next.
//!
//! Parts: `lex` scans names and label blocks, `number` parses values and timestamps exactly
//! as Prometheus, `text` and `openmetrics` hold the two line grammars, and `family` checks
//! the OpenMetrics rules that span lines (family grouping, histogram structure, counter
//! semantics, name clashes) when [`Validation::Strict`] is on. The text format follows
//! Prometheus's `textparse` lexer (blanks around tokens, comments anywhere, no `# EOF`);
//! OpenMetrics follows the spec's ABNF strictly and, by default, every rule of the OpenMetrics
//! conformance suite.
//!
//! The first error ends the walk (`next` returns `None` afterwards): the caller rejects the whole
//! scrape, as OpenMetrics requires for partial or invalid expositions. Entries yielded before an
//! error are not guaranteed valid — some rules (a histogram's `+Inf` bucket, name clashes) can
//! only be judged when the family ends — so callers must not commit anything before the walk
//! finished cleanly. No input makes the parser panic.

mod family;
mod lex;
mod number;
mod openmetrics;
mod text;

use self::family::Families;
use self::lex::LabelSpan;
pub use self::lex::{Escaped, LabelPairs, LabelsText};
pub use self::number::NORMAL_NAN_BITS;

/// Exposition format of a body, chosen from the response's `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`), also the fallback for any
    /// other or missing content type, as in Prometheus.
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// `application/openmetrics-text` (any parameters, any case) is OpenMetrics; anything else,
    /// including an empty or malformed header, is the text format.
    pub fn from_content_type(content_type: &str) -> Format {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// How much of OpenMetrics is enforced. The text format has no such choice: it is parsed as
/// Prometheus does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Validation {
    /// The ABNF plus every rule of the OpenMetrics conformance suite: families not interleaved
    /// and names not clashing, metrics grouped with ordered timestamps, counter-like values
    /// neither NaN nor negative, histogram buckets sorted with `+Inf` and consistent
    /// `_count`/`_sum`, quantiles in [0, 1], stateset and info values, exemplars only on
    /// counters' `_total` and histograms' `_bucket`, UNIT matching the name.
    #[default]
    Strict,
    /// The ABNF only (plus duplicate label names, UNIT suffix and the exemplar size limit),
    /// about what Prometheus's own OpenMetrics parser enforces. Some real exposers break the
    /// semantic rules — client_golang writes a `_sum` (possibly negative) for histograms with
    /// negative buckets, and negative quantile values — and Prometheus still ingests them.
    Syntax,
}

/// OpenMetrics metric family types; the text format's `untyped` is [`MetricType::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    /// The OpenMetrics spelling (`unknown` for the text format's `untyped`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// One item of an exposition, borrowing from the body.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    Sample(Sample<'a>),
    /// `# TYPE name type`.
    Type {
        name: &'a str,
        kind: MetricType,
    },
    /// `# HELP name text`; the text may be empty.
    Help {
        name: &'a str,
        text: Escaped<'a>,
    },
    /// `# UNIT name unit` (OpenMetrics only); the unit may be empty.
    Unit {
        name: &'a str,
        unit: &'a str,
    },
}

/// One sample line.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// The metric name as written (`foo_total`, `foo_bucket`, ...).
    pub name: &'a str,
    /// The raw series text: from the first byte of the name through the closing `}` (or just the
    /// name). Equal texts mean equal series within one format, so it keys the scrape cache.
    pub series: &'a str,
    /// The label block, iterated lazily.
    pub labels: LabelsText<'a>,
    /// The value; every NaN has the bits [`NORMAL_NAN_BITS`].
    pub value: f64,
    /// Text format: the integer milliseconds as written. OpenMetrics: seconds × 1000 truncated
    /// toward zero, as Prometheus converts them.
    pub timestamp_ms: Option<i64>,
    /// OpenMetrics exemplar, validated but not otherwise used yet.
    pub exemplar: Option<Exemplar<'a>>,
    /// OpenMetrics `_created` sample of a counter, histogram or summary (its value is the
    /// creation time in seconds). Prometheus ingests these as ordinary series unless created
    /// timestamps are enabled, so callers may append them as they are.
    pub created: bool,
}

/// `# {labels} value [timestamp]` after an OpenMetrics sample.
#[derive(Clone, Copy, Debug)]
pub struct Exemplar<'a> {
    pub labels: LabelsText<'a>,
    pub value: f64,
    /// Converted to milliseconds like sample timestamps.
    pub timestamp_ms: Option<i64>,
}

/// What kind of rule an input broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The line does not follow the format's grammar.
    Syntax,
    /// A byte sequence that is not UTF-8 where text is required.
    Utf8,
    /// A value or timestamp that is not a number or out of range.
    Number,
    /// A TYPE, HELP or UNIT line that is malformed, repeated, misplaced or inconsistent.
    Metadata,
    /// An OpenMetrics rule spanning samples: grouping, ordering, histogram structure, value
    /// constraints of a type, name clashes, exemplar placement.
    Semantics,
    /// `# EOF` missing, or anything after it.
    Eof,
}

/// Why a body was rejected, with the 1-based line and column (in characters) where the problem
/// was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line} column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub kind: ErrorKind,
    pub message: String,
}

/// An error located by byte offset; turned into a [`ParseError`] (line, column) only once, when
/// the walk stops, so the hot path keeps no line counter.
#[derive(Debug)]
pub(crate) struct Fail {
    pos: usize,
    kind: ErrorKind,
    message: String,
}

impl Fail {
    fn new(pos: usize, kind: ErrorKind, message: String) -> Fail {
        Fail { pos, kind, message }
    }

    fn syntax(pos: usize, message: String) -> Fail {
        Fail::new(pos, ErrorKind::Syntax, message)
    }
}

/// Working memory of a parser, reusable across scrapes of the same target so that the steady
/// state does not allocate ([`Parser::with_scratch`], [`Parser::into_scratch`]).
#[derive(Debug, Default)]
pub struct Scratch {
    labels: Vec<LabelSpan>,
    exemplar: Vec<LabelSpan>,
    families: Families,
}

/// Walks one exposition body. Use it as an [`Iterator`] of `Result<Entry, ParseError>`; it
/// yields nothing after the first error or the end.
#[derive(Debug)]
pub struct Parser<'a> {
    body: &'a [u8],
    /// The longest prefix of the body that is valid UTF-8; slices inside it become `&str` with
    /// no further check.
    valid: &'a str,
    pos: usize,
    format: Format,
    validation: Validation,
    done: bool,
    scratch: Scratch,
    /// Syntax-only OpenMetrics: the last TYPE line (name span, type), to flag `_created` samples.
    last_type: Option<(usize, usize, MetricType)>,
}

impl<'a> Parser<'a> {
    /// A parser with [`Validation::Strict`].
    pub fn new(body: &'a [u8], format: Format) -> Parser<'a> {
        Parser::with_scratch(body, format, Validation::Strict, Scratch::default())
    }

    pub fn with_validation(body: &'a [u8], format: Format, validation: Validation) -> Parser<'a> {
        Parser::with_scratch(body, format, validation, Scratch::default())
    }

    /// A parser reusing the buffers of an earlier one (see [`Parser::into_scratch`]).
    pub fn with_scratch(
        body: &'a [u8],
        format: Format,
        validation: Validation,
        mut scratch: Scratch,
    ) -> Parser<'a> {
        let valid = match std::str::from_utf8(body) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default(),
        };
        scratch.families.reset();
        Parser { body, valid, pos: 0, format, validation, done: false, scratch, last_type: None }
    }

    /// Gives back the buffers for the next scrape.
    pub fn into_scratch(self) -> Scratch {
        self.scratch
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The next entry, `None` at the end or after an error.
    pub fn next_entry(&mut self) -> Option<Result<Entry<'a>, ParseError>> {
        if self.done {
            return None;
        }
        let step = match self.format {
            Format::Text => self.next_text(),
            Format::OpenMetrics => self.next_openmetrics(),
        };
        match step {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(fail) => {
                self.done = true;
                Some(Err(self.locate(fail)))
            }
        }
    }

    /// Body text `a..b` as `&str`: free inside the valid prefix, checked beyond it.
    #[inline]
    fn str(&self, a: usize, b: usize) -> Result<&'a str, Fail> {
        if b <= self.valid.len() {
            if let Some(s) = self.valid.get(a..b) {
                return Ok(s);
            }
        }
        let bytes = self.body.get(a..b).unwrap_or_default();
        std::str::from_utf8(bytes)
            .map_err(|e| Fail::new(a + e.valid_up_to(), ErrorKind::Utf8, "invalid UTF-8".to_string()))
    }

    fn locate(&self, fail: Fail) -> ParseError {
        let pos = fail.pos.min(self.body.len());
        let before = &self.body[..pos];
        let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
        let line_start = before.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
        let column = 1 + String::from_utf8_lossy(&self.body[line_start..pos]).chars().count();
        ParseError { line, column, kind: fail.kind, message: fail.message }
    }

    /// Builds a sample from its parts; `name_end` ends the name, `series_end` the series text,
    /// `labels_start` is where `{` is (== `series_end` without labels).
    fn sample(
        &self,
        name_start: usize,
        name_end: usize,
        labels_start: usize,
        series_end: usize,
    ) -> Result<(&'a str, &'a str, LabelsText<'a>), Fail> {
        let series = self.str(name_start, series_end)?;
        let name = series.get(..name_end - name_start).unwrap_or_default();
        let labels = series.get(labels_start - name_start..).unwrap_or_default();
        Ok((name, series, LabelsText::new(labels)))
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry()
    }
}

impl std::iter::FusedIterator for Parser<'_> {}

#[cfg(test)]
mod tests;
