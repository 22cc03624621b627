//! OpenMetrics 1.0 text, line by line, following the spec's ABNF exactly.
//!
//! Every line ends with `\n` except possibly the final `# EOF`, which is required and may be
//! followed by nothing but one newline. Lines starting with `#` must be `# TYPE`, `# HELP`,
//! `# UNIT` or `# EOF`; blank lines are errors. Tokens are separated by exactly one space, label
//! blocks have no blanks or trailing comma, timestamps are (float) seconds, and a sample may end
//! with an exemplar ` # {labels} value [timestamp]` whose label names and values together hold at
//! most 128 characters. Rules that span lines are [`super::family`]'s, called from here under
//! [`super::Validation::Strict`].

use super::family::{Meta, SampleFacts};
use super::lex::{self, found, show, Block, Dialect, Escaped, Escapes, LabelsText};
use super::number::{self, NumError};
use super::{Entry, ErrorKind, Exemplar, Fail, MetricType, Parser, Sample, Validation};

/// Exemplar label names and values together may hold at most this many characters.
const EXEMPLAR_MAX_CHARS: usize = 128;

impl<'a> Parser<'a> {
    pub(super) fn next_openmetrics(&mut self) -> Result<Option<Entry<'a>>, Fail> {
        let b = self.body;
        let i = self.pos;
        match b.get(i) {
            None => Err(Fail::new(
                i,
                ErrorKind::Eof,
                "missing \"# EOF\" at the end of the exposition".to_string(),
            )),
            Some(b'\n') => Err(Fail::syntax(i, "blank line".to_string())),
            Some(b'#') => self.om_comment(i),
            Some(_) => self.om_sample(i).map(Some),
        }
    }

    /// `i` is at `#`: metadata, or `# EOF` (returns `None`).
    fn om_comment(&mut self, i: usize) -> Result<Option<Entry<'a>>, Fail> {
        let b = self.body;
        let eol = lex::line_end(b, i);
        let line = &b[i..eol];
        if line == b"# EOF" {
            if self.validation == Validation::Strict {
                self.scratch.families.finish(b)?;
            }
            if eol < b.len() && eol + 1 != b.len() {
                return Err(Fail::new(eol + 1, ErrorKind::Eof, "text after \"# EOF\"".to_string()));
            }
            self.pos = b.len();
            return Ok(None);
        }
        let keyword = if line.starts_with(b"# TYPE ") {
            "TYPE"
        } else if line.starts_with(b"# HELP ") {
            "HELP"
        } else if line.starts_with(b"# UNIT ") {
            "UNIT"
        } else {
            return Err(Fail::new(
                i,
                ErrorKind::Metadata,
                format!(
                    "a line starting with '#' must be \"# TYPE\", \"# HELP\", \"# UNIT\" or \"# EOF\", found \"{}\"",
                    show(line)
                ),
            ));
        };
        let name_start = i + 7;
        let name_end = lex::scan_name(b, name_start);
        if name_end == name_start {
            return Err(Fail::new(
                name_start,
                ErrorKind::Metadata,
                format!("expected metric name after {keyword}, found {}", found(b, name_start)),
            ));
        }
        if b.get(name_end) != Some(&b' ') {
            return Err(Fail::new(
                name_end,
                ErrorKind::Metadata,
                format!(
                    "expected ' ' after metric name \"{}\" in {keyword}, found {}",
                    show(&b[name_start..name_end]),
                    found(b, name_end)
                ),
            ));
        }
        let payload_start = name_end + 1;
        let name = self.str(name_start, name_end)?;
        let payload = self.str(payload_start, eol)?;
        let (entry, meta) = match keyword {
            "TYPE" => {
                let kind = parse_type(payload).ok_or_else(|| {
                    Fail::new(
                        payload_start,
                        ErrorKind::Metadata,
                        format!(
                            "invalid metric type \"{}\" (expected counter, gauge, histogram, gaugehistogram, \
                             summary, info, stateset or unknown)",
                            show(payload.as_bytes())
                        ),
                    )
                })?;
                self.last_type = Some((name_start, name_end, kind));
                (Entry::Type { name, kind }, Meta::Type(kind))
            }
            "HELP" => (Entry::Help { name, text: Escaped::scan(payload, Escapes::Quoted) }, Meta::Help),
            _ => {
                if let Some(p) = payload.bytes().position(|c| !lex::is_name_char(c)) {
                    return Err(Fail::new(
                        payload_start + p,
                        ErrorKind::Metadata,
                        format!("invalid character {} in unit", found(b, payload_start + p)),
                    ));
                }
                if !payload.is_empty() && !name.strip_suffix(payload).is_some_and(|p| p.ends_with('_')) {
                    return Err(Fail::new(
                        payload_start,
                        ErrorKind::Metadata,
                        format!("unit \"{payload}\" is not a suffix of metric name \"{name}\" (as \"_{payload}\")"),
                    ));
                }
                (Entry::Unit { name, unit: payload }, Meta::Unit { empty: payload.is_empty() })
            }
        };
        if self.validation == Validation::Strict {
            self.scratch.families.metadata(b, meta, name_start, name_end, i)?;
        }
        self.pos = eol + 1;
        Ok(Some(entry))
    }

    fn om_sample(&mut self, name_start: usize) -> Result<Entry<'a>, Fail> {
        let b = self.body;
        let name_end = lex::scan_name(b, name_start);
        if name_end == name_start {
            return Err(Fail::syntax(
                name_start,
                format!("expected metric name, found {}", found(b, name_start)),
            ));
        }
        let series_end = if b.get(name_end) == Some(&b'{') {
            lex::scan_labels(b, name_end, Dialect::OpenMetrics, Block::Series, &mut self.scratch.labels)?
        } else {
            self.scratch.labels.clear();
            name_end
        };
        if b.get(series_end) != Some(&b' ') {
            return Err(Fail::syntax(
                series_end,
                format!(
                    "expected ' ' before the value of \"{}\", found {}",
                    show(&b[name_start..series_end]),
                    found(b, series_end)
                ),
            ));
        }
        let value_start = series_end + 1;
        let value_end = token_end(b, value_start);
        let value = value_at(b, value_start, value_end, "value")?;

        let mut timestamp = None;
        let mut exemplar_at = None;
        let mut end = value_end;
        if b.get(end) == Some(&b' ') {
            let start = end + 1;
            if b.get(start) == Some(&b'#') {
                exemplar_at = Some(start);
            } else {
                let ts_end = token_end(b, start);
                timestamp = Some(timestamp_at(b, start, ts_end, "timestamp")?);
                end = ts_end;
                if b.get(end) == Some(&b' ') {
                    if b.get(end + 1) != Some(&b'#') {
                        return Err(Fail::syntax(
                            end + 1,
                            format!("expected '#' to start an exemplar, found {}", found(b, end + 1)),
                        ));
                    }
                    exemplar_at = Some(end + 1);
                }
            }
        }
        let mut exemplar = None;
        if let Some(hash) = exemplar_at {
            let (e, ex_end) = self.om_exemplar(hash)?;
            exemplar = Some(e);
            end = ex_end;
        }
        match b.get(end) {
            Some(b'\n') => {}
            None => {
                return Err(Fail::new(
                    end,
                    ErrorKind::Eof,
                    "sample line not ended by a newline (missing \"# EOF\")".to_string(),
                ))
            }
            Some(_) => {
                return Err(Fail::syntax(end, format!("expected end of line, found {}", found(b, end))));
            }
        }

        let created = if self.validation == Validation::Strict {
            let facts = SampleFacts {
                name_start,
                name_end,
                value,
                timestamp_s: timestamp,
                has_exemplar: exemplar.is_some(),
                pos: name_start,
            };
            self.scratch.families.sample(b, &facts, &self.scratch.labels)?
        } else {
            self.is_created(name_start, name_end)
        };
        self.pos = end + 1;

        let (name, series, labels) = self.sample(name_start, name_end, name_end, series_end)?;
        Ok(Entry::Sample(Sample {
            name,
            series,
            labels,
            value,
            timestamp_ms: timestamp.map(number::seconds_to_ms),
            exemplar,
            created,
        }))
    }

    /// `hash` is at the `#` of ` # {labels} value [timestamp]`. Returns the exemplar and the
    /// position after it.
    fn om_exemplar(&mut self, hash: usize) -> Result<(Exemplar<'a>, usize), Fail> {
        let b = self.body;
        if b.get(hash + 1) != Some(&b' ') || b.get(hash + 2) != Some(&b'{') {
            return Err(Fail::syntax(
                hash,
                format!(
                    "expected \"# {{\" to start an exemplar, found \"{}\"",
                    show(&b[hash..token_end(b, hash + 1)])
                ),
            ));
        }
        let open = hash + 2;
        let close =
            lex::scan_labels(b, open, Dialect::OpenMetrics, Block::Exemplar, &mut self.scratch.exemplar)?;
        let labels = LabelsText::new(self.str(open, close)?);
        let chars: usize = labels.iter().map(|(n, v)| n.len() + v.unescaped_chars()).sum();
        if chars > EXEMPLAR_MAX_CHARS {
            return Err(Fail::new(
                open,
                ErrorKind::Semantics,
                format!("exemplar labels hold {chars} characters, more than {EXEMPLAR_MAX_CHARS}"),
            ));
        }
        if b.get(close) != Some(&b' ') {
            return Err(Fail::syntax(
                close,
                format!("expected ' ' after exemplar labels, found {}", found(b, close)),
            ));
        }
        let value_end = token_end(b, close + 1);
        let value = value_at(b, close + 1, value_end, "exemplar value")?;
        let mut end = value_end;
        let mut timestamp_ms = None;
        if b.get(end) == Some(&b' ') {
            let ts_end = token_end(b, end + 1);
            timestamp_ms =
                Some(number::seconds_to_ms(timestamp_at(b, end + 1, ts_end, "exemplar timestamp")?));
            end = ts_end;
        }
        Ok((Exemplar { labels, value, timestamp_ms }, end))
    }

    /// Syntax-only mode: `_created` of the family named by the last TYPE line.
    fn is_created(&self, name_start: usize, name_end: usize) -> bool {
        let Some((ts, te, kind)) = self.last_type else { return false };
        let b = self.body;
        matches!(kind, MetricType::Counter | MetricType::Histogram | MetricType::Summary)
            && b[name_start..name_end].strip_suffix(b"_created") == Some(&b[ts..te])
    }
}

fn parse_type(s: &str) -> Option<MetricType> {
    Some(match s {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "gaugehistogram" => MetricType::GaugeHistogram,
        "summary" => MetricType::Summary,
        "info" => MetricType::Info,
        "stateset" => MetricType::StateSet,
        "unknown" => MetricType::Unknown,
        _ => return None,
    })
}

/// End of the token starting at `i`: the next space, newline or end of input.
#[inline]
fn token_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b' ' && b[i] != b'\n' {
        i += 1;
    }
    i
}

fn value_at(b: &[u8], start: usize, end: usize, what: &str) -> Result<f64, Fail> {
    if start == end {
        return Err(Fail::syntax(start, format!("expected {what}, found {}", found(b, start))));
    }
    number::parse_value(&b[start..end]).map_err(|e| number_fail(b, start, end, what, e))
}

fn timestamp_at(b: &[u8], start: usize, end: usize, what: &str) -> Result<f64, Fail> {
    if start == end {
        return Err(Fail::syntax(start, format!("expected {what}, found {}", found(b, start))));
    }
    number::parse_real(&b[start..end]).map_err(|e| number_fail(b, start, end, what, e))
}

fn number_fail(b: &[u8], start: usize, end: usize, what: &str, e: NumError) -> Fail {
    let tok = show(&b[start..end]);
    let msg = match e {
        NumError::Syntax => format!("invalid {what} \"{tok}\""),
        NumError::Range => format!("{what} \"{tok}\" is out of range for a 64-bit float"),
    };
    Fail::new(start, ErrorKind::Number, msg)
}
