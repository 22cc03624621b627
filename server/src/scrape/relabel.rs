//! Relabeling, exactly as Prometheus does it: `relabel_configs` rewrite a target's labels before
//! it is scraped (and may drop it), `metric_relabel_configs` rewrite each scraped series before
//! it is stored (and may drop it).
//!
//! A [`RelabelConfig`] is the YAML form with Prometheus's defaults (`separator: ;`,
//! `regex: (.*)`, `replacement: $1`, `action: replace`); [`RelabelConfig::compile`] checks it
//! and anchors the regex (`^(?s:…)$`) into a [`Rule`]; [`relabel`] applies a list of rules to a
//! label set and returns `None` when a rule dropped it. Actions: replace, lowercase, uppercase,
//! keep, drop, keepequal, dropequal, hashmod (md5, as Prometheus, so shards agree with it),
//! labelmap, labeldrop, labelkeep.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::tsdb::labels::Labels;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Replace,
    Lowercase,
    Uppercase,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
}

/// One entry of `relabel_configs` / `metric_relabel_configs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default = "default_regex")]
    pub regex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: Action,
}

fn default_separator() -> String {
    ";".to_string()
}

fn default_regex() -> String {
    "(.*)".to_string()
}

fn default_replacement() -> String {
    "$1".to_string()
}

/// A checked, compiled relabel rule.
#[derive(Debug, Clone)]
pub struct Rule {
    cfg: RelabelConfig,
    regex: Regex,
}

fn valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl RelabelConfig {
    /// Checks the rule as Prometheus's config loader does and compiles its regex.
    pub fn compile(&self) -> Result<Rule, String> {
        let regex = Regex::new(&format!("^(?s:{})$", self.regex))
            .map_err(|e| format!("invalid relabel regex {:?}: {e}", self.regex))?;
        let a = self.action;
        let needs_target = matches!(
            a,
            Action::Replace
                | Action::Lowercase
                | Action::Uppercase
                | Action::HashMod
                | Action::KeepEqual
                | Action::DropEqual
        );
        let target = self.target_label.as_deref().unwrap_or_default();
        if needs_target && target.is_empty() {
            return Err(format!(
                "relabel configuration for {} action requires 'target_label' value",
                name(a)
            ));
        }
        if matches!(
            a,
            Action::Lowercase | Action::Uppercase | Action::HashMod | Action::KeepEqual | Action::DropEqual
        ) && !valid_label_name(target)
        {
            return Err(format!("{target:?} is invalid 'target_label' for {} action", name(a)));
        }
        if a == Action::HashMod && self.modulus.unwrap_or(0) == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".to_string());
        }
        if matches!(a, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty()
                || self.target_label.is_some()
                || self.modulus.is_some()
                || self.separator != default_separator()
                || self.replacement != default_replacement())
        {
            return Err(format!("{} action requires only 'regex', and no other fields", name(a)));
        }
        if matches!(a, Action::KeepEqual | Action::DropEqual) && self.regex != default_regex() {
            return Err(format!(
                "{} action requires only 'source_labels' and `target_label`, and no other fields",
                name(a)
            ));
        }
        for l in &self.source_labels {
            if !valid_label_name(l) {
                return Err(format!("{l:?} is not a valid label name in source_labels"));
            }
        }
        Ok(Rule { cfg: self.clone(), regex })
    }
}

fn name(a: Action) -> &'static str {
    match a {
        Action::Replace => "replace",
        Action::Lowercase => "lowercase",
        Action::Uppercase => "uppercase",
        Action::Keep => "keep",
        Action::Drop => "drop",
        Action::KeepEqual => "keepequal",
        Action::DropEqual => "dropequal",
        Action::HashMod => "hashmod",
        Action::LabelMap => "labelmap",
        Action::LabelDrop => "labeldrop",
        Action::LabelKeep => "labelkeep",
    }
}

/// Compiles a list of rules, naming the first bad one by position.
pub fn compile_all(cfgs: &[RelabelConfig]) -> Result<Vec<Rule>, String> {
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| c.compile().map_err(|e| format!("relabel rule {}: {e}", i + 1)))
        .collect()
}

/// Applies the rules in order; `None` if one of them dropped the label set.
pub fn relabel(labels: &Labels, rules: &[Rule]) -> Option<Labels> {
    if rules.is_empty() {
        return Some(labels.clone());
    }
    let mut map: BTreeMap<String, String> =
        labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    for r in rules {
        if !apply(&mut map, r) {
            return None;
        }
    }
    // Every name was checked on the way in; an empty value means "delete".
    Labels::new(map.iter().map(|(n, v)| (n.as_str(), v.as_str()))).ok()
}

/// Applies one rule; false if it dropped the set.
fn apply(map: &mut BTreeMap<String, String>, r: &Rule) -> bool {
    let c = &r.cfg;
    let value: String = c
        .source_labels
        .iter()
        .map(|l| map.get(l).map(String::as_str).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(&c.separator);
    let target = c.target_label.as_deref().unwrap_or_default();
    match c.action {
        Action::Drop => return !r.regex.is_match(&value),
        Action::Keep => return r.regex.is_match(&value),
        Action::DropEqual => return map.get(target).map(String::as_str).unwrap_or_default() != value,
        Action::KeepEqual => return map.get(target).map(String::as_str).unwrap_or_default() == value,
        Action::Replace => {
            let Some(caps) = r.regex.captures(&value) else { return true };
            let mut t = String::new();
            caps.expand(target, &mut t);
            if !valid_label_name(&t) {
                return true;
            }
            let mut v = String::new();
            caps.expand(&c.replacement, &mut v);
            if v.is_empty() {
                map.remove(&t);
            } else {
                map.insert(t, v);
            }
        }
        Action::Lowercase => set(map, target, value.to_lowercase()),
        Action::Uppercase => set(map, target, value.to_uppercase()),
        Action::HashMod => {
            let digest = Md5::digest(value.as_bytes());
            let mut last = [0u8; 8];
            last.copy_from_slice(&digest[8..16]);
            let m = u64::from_be_bytes(last) % c.modulus.unwrap_or(1).max(1);
            set(map, target, m.to_string());
        }
        Action::LabelMap => {
            let renamed: Vec<(String, String)> = map
                .iter()
                .filter_map(|(n, v)| {
                    let caps = r.regex.captures(n)?;
                    let mut new = String::new();
                    caps.expand(&c.replacement, &mut new);
                    Some((new, v.clone()))
                })
                .collect();
            for (n, v) in renamed {
                set(map, &n, v);
            }
        }
        Action::LabelDrop => map.retain(|n, _| !r.regex.is_match(n)),
        Action::LabelKeep => map.retain(|n, _| r.regex.is_match(n)),
    }
    true
}

fn set(map: &mut BTreeMap<String, String>, name: &str, value: String) {
    if value.is_empty() {
        map.remove(name);
    } else if valid_label_name(name) {
        map.insert(name.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<Rule> {
        let cfgs: Vec<RelabelConfig> = serde_saphyr::from_str(yaml).unwrap();
        compile_all(&cfgs).unwrap()
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn replace_with_defaults_and_captures() {
        let r = rules("- source_labels: [__address__]\n  regex: '([^:]+):\\d+'\n  target_label: host\n- source_labels: [a, b]\n  target_label: ab\n");
        let out = relabel(&l(&[("__address__", "web-1:8080"), ("a", "x"), ("b", "y")]), &r).unwrap();
        assert_eq!(out.get("host"), Some("web-1"));
        assert_eq!(out.get("ab"), Some("x;y"));
        // No match: unchanged. Empty replacement deletes.
        let r = rules("- source_labels: [a]\n  regex: nope\n  target_label: a\n  replacement: z\n- source_labels: [b]\n  target_label: b\n  replacement: ''\n");
        let out = relabel(&l(&[("a", "x"), ("b", "y")]), &r).unwrap();
        assert_eq!(out.to_string(), r#"{a="x"}"#);
    }

    #[test]
    fn keep_drop_and_equal_variants() {
        let keep = rules("- source_labels: [job]\n  regex: api|web\n  action: keep\n");
        assert!(relabel(&l(&[("job", "api")]), &keep).is_some());
        assert!(relabel(&l(&[("job", "apix")]), &keep).is_none(), "anchored");
        let drop = rules("- source_labels: [__name__]\n  regex: go_.*\n  action: drop\n");
        assert!(relabel(&l(&[("__name__", "go_goroutines")]), &drop).is_none());
        assert!(relabel(&l(&[("__name__", "up")]), &drop).is_some());
        let eq = rules("- source_labels: [a]\n  target_label: b\n  action: keepequal\n");
        assert!(relabel(&l(&[("a", "1"), ("b", "1")]), &eq).is_some());
        assert!(relabel(&l(&[("a", "1"), ("b", "2")]), &eq).is_none());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // Prometheus's relabel_test.go: "baz" with modulus 1000 → 976.
        let r = rules("- source_labels: [c]\n  modulus: 1000\n  target_label: d\n  action: hashmod\n");
        assert_eq!(relabel(&l(&[("a", "foo"), ("c", "baz")]), &r).unwrap().get("d"), Some("976"));
    }

    #[test]
    fn labelmap_labeldrop_labelkeep_case() {
        let r = rules("- regex: __meta_docker_(.+)\n  action: labelmap\n- regex: __meta_.*\n  action: labeldrop\n- source_labels: [service]\n  target_label: svc\n  action: uppercase\n");
        let out = relabel(&l(&[("__meta_docker_service", "gallery"), ("job", "x")]), &r).unwrap();
        assert_eq!(out.to_string(), r#"{job="x", service="gallery", svc="GALLERY"}"#);
        let keep = rules("- regex: job|instance\n  action: labelkeep\n");
        assert_eq!(relabel(&l(&[("job", "a"), ("x", "b")]), &keep).unwrap().to_string(), r#"{job="a"}"#);
    }

    #[test]
    fn invalid_rules_are_explained() {
        let bad = |yaml: &str| {
            let cfgs: Vec<RelabelConfig> = serde_saphyr::from_str(yaml).unwrap();
            compile_all(&cfgs).unwrap_err()
        };
        assert!(bad("- source_labels: [a]\n").contains("requires 'target_label'"));
        assert!(bad("- regex: '('\n  action: keep\n").contains("invalid relabel regex"));
        assert!(bad("- source_labels: [a]\n  target_label: b\n  action: hashmod\n").contains("modulus"));
        assert!(bad("- regex: x\n  target_label: y\n  action: labeldrop\n").contains("only 'regex'"));
    }
}
