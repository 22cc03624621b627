//! The dashboard page's state lives in its address (Grafana's names: `from`, `to`, `refresh`,
//! `var-<name>`, `viewPanel`), so the address bar is always a working share link. This is the
//! query-string model both halves use to read and rewrite it.

/// Query parameters in order, repeated keys kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query(pub Vec<(String, String)>);

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space); bad escapes stay as written.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a query component, keeping the characters Grafana's links keep readable.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Query {
    /// Parses `a=1&b=2` (a leading `?` is ignored).
    pub fn parse(s: &str) -> Query {
        let s = s.strip_prefix('?').unwrap_or(s);
        Query(
            s.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                // Nameless form fields carry nothing.
                .filter(|(k, _)| !k.is_empty())
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    /// Sets `key` to `values` (removing it when empty), keeping the other parameters' order.
    pub fn set(&mut self, key: &str, values: &[String]) {
        let pos = self.0.iter().position(|(k, _)| k == key).unwrap_or(self.0.len());
        self.0.retain(|(k, _)| k != key);
        let pos = pos.min(self.0.len());
        for (i, v) in values.iter().enumerate() {
            self.0.insert(pos + i, (key.to_string(), v.clone()));
        }
    }

    /// A copy with `key` set to one value (or removed for `None`).
    pub fn with(&self, key: &str, value: Option<&str>) -> Query {
        let mut q = self.clone();
        q.set(key, &value.map(|v| vec![v.to_string()]).unwrap_or_default());
        q
    }

    /// The `var-<name>` selections.
    pub fn variables(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for (k, v) in &self.0 {
            if let Some(name) = k.strip_prefix("var-") {
                match out.iter_mut().find(|(n, _)| n == name) {
                    Some((_, vals)) => vals.push(v.clone()),
                    None => out.push((name.to_string(), vec![v.clone()])),
                }
            }
        }
        out
    }

    /// `?a=1&b=2`, or the empty string without parameters.
    pub fn to_search(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        format!("?{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_rewrite() {
        let q = Query::parse("?from=now-6h&to=now&var-instance=a%3A9100&var-instance=b+c&viewPanel=2");
        assert_eq!(q.get("from"), Some("now-6h"));
        assert_eq!(
            q.variables(),
            vec![("instance".to_string(), vec!["a:9100".to_string(), "b c".to_string()])]
        );
        let q2 = q.with("from", Some("1700000000000")).with("viewPanel", None);
        assert_eq!(q2.to_search(), "?from=1700000000000&to=now&var-instance=a%3A9100&var-instance=b%20c");
        assert_eq!(Query::parse(&q2.to_search()), q2);
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(Query::default().to_search(), "");
    }
}
