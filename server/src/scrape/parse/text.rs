//! The Prometheus text format (0.0.4), line by line, as Prometheus's `textparse` lexer reads it.
//!
//! Blanks (`[ \t]+`) may surround every token and blank lines are skipped. A line starting with
//! `#` is `# HELP name text`, `# TYPE name type` or otherwise a comment, which is skipped
//! unchecked (so `# EOF` is harmless). A sample is `name[{labels}] value [timestamp]`, where the
//! timestamp is integer milliseconds; label blocks may end with a comma. Deliberate differences
//! from Prometheus's lexer, all on inputs no real exposer writes: a value glued to a bare
//! metric name (`a+1`) is an error instead of the value `+1`; a word glued to the metric name of
//! a HELP line is an error instead of being dropped; quoted (UTF-8) metric and label names are
//! not supported; raw newlines inside label values are errors. Duplicate label names and the
//! label name `__name__` are rejected here, where Prometheus rejects the scrape when appending.

use super::lex::{self, found, show, Block, Dialect, Escaped, Escapes};
use super::number::{self, NumError};
use super::{Entry, ErrorKind, Fail, MetricType, Parser, Sample};

impl<'a> Parser<'a> {
    pub(super) fn next_text(&mut self) -> Result<Option<Entry<'a>>, Fail> {
        let b = self.body;
        loop {
            let i = lex::skip_blanks(b, self.pos);
            if i >= b.len() {
                return Ok(None);
            }
            match b[i] {
                b'\n' => self.pos = i + 1,
                b'#' => {
                    if let Some(entry) = self.text_comment(i)? {
                        return Ok(Some(entry));
                    }
                }
                _ => return self.text_sample(i).map(Some),
            }
        }
    }

    /// `i` is at `#`. Returns the metadata entry, or `None` for a comment (skipped).
    fn text_comment(&mut self, i: usize) -> Result<Option<Entry<'a>>, Fail> {
        let b = self.body;
        let eol = lex::line_end(b, i);
        self.pos = eol + 1;
        let k = lex::skip_blanks(b, i + 1);
        let rest = &b[k..eol];
        let is_help = rest.starts_with(b"HELP");
        if k == i + 1 || !(is_help || rest.starts_with(b"TYPE")) {
            return Ok(None);
        }
        let keyword = if is_help { "HELP" } else { "TYPE" };
        let name_start = lex::skip_blanks(b, k + 4);
        if name_start == k + 4 {
            // `# HELPER ...` or `# HELP` alone: just a comment to Prometheus's lexer.
            return Ok(None);
        }
        let name_end = lex::scan_name(b, name_start);
        if name_end == name_start {
            let hint =
                if b.get(name_start) == Some(&b'"') { " (quoted UTF-8 names are not supported)" } else { "" };
            return Err(Fail::new(
                name_start,
                ErrorKind::Metadata,
                format!("expected metric name after {keyword}, found {}{hint}", found(b, name_start)),
            ));
        }
        let text_start = if name_end < eol {
            if b[name_end] != b' ' && b[name_end] != b'\t' {
                return Err(Fail::new(
                    name_end,
                    ErrorKind::Metadata,
                    format!(
                        "expected a blank after metric name \"{}\" in {keyword}, found {}",
                        show(&b[name_start..name_end]),
                        found(b, name_end)
                    ),
                ));
            }
            name_end + 1
        } else {
            eol
        };
        let name = self.str(name_start, name_end)?;
        let text = self.str(text_start, eol)?;
        if is_help {
            return Ok(Some(Entry::Help { name, text: Escaped::scan(text, Escapes::TextHelp) }));
        }
        let kind = match text {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Unknown,
            _ => {
                return Err(Fail::new(
                    text_start,
                    ErrorKind::Metadata,
                    format!(
                        "invalid metric type \"{}\" (expected counter, gauge, histogram, summary or untyped)",
                        show(text.as_bytes())
                    ),
                ))
            }
        };
        Ok(Some(Entry::Type { name, kind }))
    }

    fn text_sample(&mut self, name_start: usize) -> Result<Entry<'a>, Fail> {
        let b = self.body;
        let name_end = lex::scan_name(b, name_start);
        if name_end == name_start {
            let hint =
                if b[name_start] == b'{' { " (metric names inside braces are not supported)" } else { "" };
            return Err(Fail::syntax(
                name_start,
                format!("expected metric name, found {}{hint}", found(b, name_start)),
            ));
        }
        let after_name = lex::skip_blanks(b, name_end);
        let (labels_start, series_end) = if b.get(after_name) == Some(&b'{') {
            let end =
                lex::scan_labels(b, after_name, Dialect::Text, Block::Series, &mut self.scratch.labels)?;
            (after_name, end)
        } else {
            if after_name == name_end && after_name < b.len() && b[after_name] != b'\n' {
                return Err(Fail::syntax(
                    name_end,
                    format!(
                        "expected a blank or '{{' after metric name \"{}\", found {}",
                        show(&b[name_start..name_end]),
                        found(b, name_end)
                    ),
                ));
            }
            self.scratch.labels.clear();
            (name_end, name_end)
        };

        // Prometheus's lexer lets the value follow `}` without a blank.
        let value_start = lex::skip_blanks(b, series_end);
        let mut value_end = value_start;
        while value_end < b.len() && !matches!(b[value_end], b' ' | b'\t' | b'\n') {
            value_end += 1;
        }
        if value_end == value_start {
            return Err(Fail::syntax(
                value_start,
                format!(
                    "expected value after \"{}\", found {}",
                    show(&b[name_start..series_end]),
                    found(b, value_start)
                ),
            ));
        }
        let value = number::parse_value(&b[value_start..value_end]).map_err(|e| {
            let tok = show(&b[value_start..value_end]);
            let msg = match e {
                NumError::Syntax => format!("invalid value \"{tok}\""),
                NumError::Range => format!("value \"{tok}\" is out of range for a 64-bit float"),
            };
            Fail::new(value_start, ErrorKind::Number, msg)
        })?;

        let ts_start = lex::skip_blanks(b, value_end);
        let (timestamp_ms, end) = if ts_start >= b.len() || b[ts_start] == b'\n' {
            (None, ts_start)
        } else {
            let mut ts_end = ts_start;
            while ts_end < b.len() && lex::is_digit(b[ts_end]) {
                ts_end += 1;
            }
            if ts_end == ts_start {
                return Err(Fail::syntax(
                    ts_start,
                    format!(
                        "expected timestamp (integer milliseconds) or end of line, found {}",
                        found(b, ts_start)
                    ),
                ));
            }
            let ts = number::parse_ms(&b[ts_start..ts_end]).map_err(|_| {
                Fail::new(
                    ts_start,
                    ErrorKind::Number,
                    format!("timestamp \"{}\" is out of range", show(&b[ts_start..ts_end])),
                )
            })?;
            let end = lex::skip_blanks(b, ts_end);
            if end < b.len() && b[end] != b'\n' {
                return Err(Fail::syntax(
                    end,
                    format!("expected end of line after timestamp, found {}", found(b, end)),
                ));
            }
            (Some(ts), end)
        };
        self.pos = end + 1;

        let (name, series, labels) = self.sample(name_start, name_end, labels_start, series_end)?;
        Ok(Entry::Sample(Sample {
            name,
            series,
            labels,
            value,
            timestamp_ms,
            exemplar: None,
            created: false,
        }))
    }
}
