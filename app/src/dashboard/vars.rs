//! Template variable expansion as Grafana's Prometheus data source does it: `$var`, `${var}`,
//! `${var:format}` and `[[var]]` in queries, titles and legends, multi-value and "All" selections
//! as regex alternations with PromQL-safe escaping, and the `$__interval` family of built-ins.

/// One variable's selection as expansion sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    pub name: String,
    pub values: Vec<String>,
    /// The variable allows several values (or "All"), so queries get a regex alternation.
    pub multi: bool,
    /// "All" is selected and the variable has a custom all value (inserted as written).
    pub all_value: Option<String>,
}

/// The values in scope for one expansion: variables and built-ins.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub selections: Vec<Selection>,
    /// Built-ins such as `__interval`, inserted as written.
    pub builtins: Vec<(String, String)>,
}

/// Where the text goes; it decides how multi-value selections are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A PromQL expression: several values become `(a|b)` with regex escaping.
    Query,
    /// A title or legend: several values become `a + b`.
    Text,
}

/// Built-in variables for a panel's query: the range and the step Grafana calls the interval.
pub fn builtins(
    from_ms: i64,
    to_ms: i64,
    interval_ms: i64,
    scrape_interval_ms: i64,
) -> Vec<(String, String)> {
    use super::timerange::format_duration;
    let range_ms = (to_ms - from_ms).max(0);
    // Grafana's $__rate_interval: never less than four scrape intervals, so rate() always has
    // at least two samples to work with.
    let rate_ms = (interval_ms + scrape_interval_ms).max(4 * scrape_interval_ms);
    vec![
        ("__interval".into(), format_duration(interval_ms)),
        ("__interval_ms".into(), interval_ms.to_string()),
        ("__rate_interval".into(), format_duration(rate_ms)),
        ("__rate_interval_ms".into(), rate_ms.to_string()),
        ("__range".into(), format_duration(range_ms)),
        ("__range_s".into(), (range_ms / 1000).to_string()),
        ("__range_ms".into(), range_ms.to_string()),
        ("__from".into(), from_ms.to_string()),
        ("__to".into(), to_ms.to_string()),
    ]
}

/// Escapes regex metacharacters for a value placed inside a PromQL double-quoted regex string:
/// each metacharacter gets a backslash, itself escaped for the string literal.
pub fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '\'' | '+' | '?' | '.' | '(' | ')' | '|' => {
                out.push_str("\\\\");
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

fn format_selection(sel: &Selection, target: Target, format: Option<&str>) -> String {
    if let Some(all) = &sel.all_value {
        return all.clone();
    }
    match format {
        Some("raw") => return sel.values.join(","),
        Some("csv") => return sel.values.join(","),
        Some("pipe") => return sel.values.join("|"),
        Some("text") => return sel.values.join(" + "),
        Some("regex") => {
            let escaped: Vec<String> = sel.values.iter().map(|v| regex_escape(v)).collect();
            return if escaped.len() == 1 { escaped[0].clone() } else { format!("({})", escaped.join("|")) };
        }
        _ => {}
    }
    match target {
        Target::Text => sel.values.join(" + "),
        Target::Query if !sel.multi => sel.values.first().cloned().unwrap_or_default(),
        Target::Query => {
            let escaped: Vec<String> = sel.values.iter().map(|v| regex_escape(v)).collect();
            if escaped.len() == 1 {
                escaped[0].clone()
            } else {
                format!("({})", escaped.join("|"))
            }
        }
    }
}

impl Scope {
    fn lookup(&self, name: &str, target: Target, format: Option<&str>) -> Option<String> {
        if let Some((_, v)) = self.builtins.iter().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        self.selections.iter().find(|s| s.name == name).map(|s| format_selection(s, target, format))
    }

    /// Expands every variable reference in `text`; unknown names are left as written.
    pub fn interpolate(&self, text: &str, target: Target) -> String {
        if !text.contains('$') && !text.contains("[[") {
            return text.to_string();
        }
        let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < bytes.len() {
            let rest = &text[i..];
            if let Some(inner) = rest.strip_prefix("${") {
                if let Some(end) = inner.find('}') {
                    let body = &inner[..end];
                    let (name, format) = match body.split_once(':') {
                        Some((n, f)) => (n, Some(f)),
                        None => (body, None),
                    };
                    if let Some(v) = self.lookup(name, target, format) {
                        out.push_str(&v);
                        i += 2 + end + 1;
                        continue;
                    }
                }
            } else if let Some(inner) = rest.strip_prefix("[[") {
                if let Some(end) = inner.find("]]") {
                    let body = &inner[..end];
                    let (name, format) = match body.split_once(':') {
                        Some((n, f)) => (n, Some(f)),
                        None => (body, None),
                    };
                    if let Some(v) = self.lookup(name, target, format) {
                        out.push_str(&v);
                        i += 2 + end + 2;
                        continue;
                    }
                }
            } else if bytes[i] == b'$' {
                let len = bytes[i + 1..].iter().take_while(|&&b| is_name(b)).count();
                if len > 0 {
                    let name = &text[i + 1..i + 1 + len];
                    if let Some(v) = self.lookup(name, target, None) {
                        out.push_str(&v);
                        i += 1 + len;
                        continue;
                    }
                }
            }
            let ch_len = rest.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..ch_len]);
            i += ch_len;
        }
        out
    }
}

/// Expands a legend format such as `{{instance}} {{code}}` from a series' labels; a label the
/// series lacks becomes empty, as in Grafana.
pub fn legend(format: &str, labels: &[(String, String)]) -> String {
    let mut out = String::with_capacity(format.len());
    let mut rest = format;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                if let Some((_, v)) = labels.iter().find(|(n, _)| n == name) {
                    out.push_str(v);
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            selections: vec![
                Selection { name: "job".into(), values: vec!["api".into()], multi: false, all_value: None },
                Selection {
                    name: "instance".into(),
                    values: vec!["a:9100".into(), "b.example:9100".into()],
                    multi: true,
                    all_value: None,
                },
                Selection {
                    name: "all".into(),
                    values: vec!["x".into()],
                    multi: true,
                    all_value: Some(".*".into()),
                },
            ],
            builtins: builtins(0, 3_600_000, 15_000, 10_000),
        }
    }

    #[test]
    fn query_syntaxes() {
        let s = scope();
        assert_eq!(s.interpolate("up{job=\"$job\"}", Target::Query), "up{job=\"api\"}");
        assert_eq!(s.interpolate("up{job=\"${job}\"}", Target::Query), "up{job=\"api\"}");
        assert_eq!(s.interpolate("up{job=\"[[job]]\"}", Target::Query), "up{job=\"api\"}");
        assert_eq!(
            s.interpolate("up{instance=~\"$instance\"}", Target::Query),
            "up{instance=~\"(a:9100|b\\\\.example:9100)\"}"
        );
        assert_eq!(s.interpolate("up{i=~\"$all\"}", Target::Query), "up{i=~\".*\"}");
        assert_eq!(s.interpolate("$unknown and $", Target::Query), "$unknown and $");
        assert_eq!(s.interpolate("${instance:pipe}", Target::Query), "a:9100|b.example:9100");
    }

    #[test]
    fn builtins_expand() {
        let s = scope();
        assert_eq!(
            s.interpolate(
                "rate(x[$__rate_interval]) $__interval $__interval_ms $__range $__range_s",
                Target::Query
            ),
            "rate(x[40s]) 15s 15000 1h 3600"
        );
        assert_eq!(
            s.interpolate("Jobs: $job / $instance", Target::Text),
            "Jobs: api / a:9100 + b.example:9100"
        );
    }

    #[test]
    fn regex_escaping_is_promql_string_safe() {
        assert_eq!(regex_escape("a.b"), "a\\\\.b");
        assert_eq!(regex_escape("c\\d"), "c\\\\\\\\d");
        assert_eq!(regex_escape("plain"), "plain");
    }

    #[test]
    fn legend_formats() {
        let labels =
            vec![("instance".to_string(), "a:1".to_string()), ("code".to_string(), "500".to_string())];
        assert_eq!(legend("{{instance}} - {{ code }}", &labels), "a:1 - 500");
        assert_eq!(legend("{{missing}}x", &labels), "x");
        assert_eq!(legend("{{open", &labels), "{{open");
    }
}
