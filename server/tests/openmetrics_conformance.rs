//! The OpenMetrics conformance suite's parser cases, and real exposition bodies, through
//! `vigil::scrape::parse`.
//!
//! The suite lives in the shared folder next to the project (`../shared/conformance/openmetrics`,
//! taken from prometheus/OpenMetrics `tests/testdata/parsers`): each case is a `metrics` body and
//! a `test.json` saying whether it must parse. Every case is run; the number passing must not
//! fall below `tests/openmetrics.ratchet`. Without the shared folder the tests fail under CI
//! (`CI=true`) and are skipped with a message elsewhere.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use vigil::scrape::parse::{Entry, ErrorKind, Format, ParseError, Parser, Validation};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance");
const RATCHET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openmetrics.ratchet");

/// The shared folder `sub` of the conformance data, or `None` (after saying so) when it is
/// missing outside CI.
fn shared(sub: &str, what: &str) -> Option<PathBuf> {
    let dir = Path::new(SHARED).join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is missing: CI must run {what}", dir.display());
    }
    say(&format!("SKIPPED {what}: {} is missing", dir.display()));
    None
}

/// Writes a line past the test harness's output capture, so it shows even when the test passes.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn parse_all(body: &[u8], format: Format, validation: Validation) -> Result<Vec<Entry<'_>>, ParseError> {
    Parser::with_validation(body, format, validation).collect()
}

#[test]
fn openmetrics_parser_cases() {
    let Some(dir) = shared("openmetrics/parsers", "the OpenMetrics conformance suite") else { return };
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    let (mut passed, mut failed) = (0usize, Vec::new());
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let spec: serde_json::Value =
            serde_json::from_slice(&fs::read(case.join("test.json")).unwrap()).unwrap();
        assert_eq!(spec["type"], "text", "{name}: only text cases are expected");
        let should_parse = spec["shouldParse"].as_bool().unwrap();
        let body = fs::read(case.join(spec["file"].as_str().unwrap())).unwrap();
        let outcome = parse_all(&body, Format::OpenMetrics, Validation::Strict);
        match (&outcome, should_parse) {
            (Ok(_), true) | (Err(_), false) => passed += 1,
            (Ok(_), false) => failed.push(format!("{name}: accepted, should be rejected")),
            (Err(e), true) => failed.push(format!("{name}: rejected ({e}), should parse")),
        }
        if let Err(e) = &outcome {
            assert!(e.line >= 1 && e.column >= 1, "{name}: {e:?}");
        }
    }
    for f in &failed {
        say(&format!("  FAILED {f}"));
    }
    say(&format!("openmetrics: {passed} passed, {} failed", failed.len()));
    let ratchet: usize = fs::read_to_string(RATCHET).unwrap().trim().parse().unwrap();
    assert!(cases.len() >= 200, "only {} cases found in {}", cases.len(), dir.display());
    assert!(
        passed >= ratchet,
        "{passed} conformance cases pass, fewer than the {ratchet} recorded in {RATCHET}"
    );
    if passed > ratchet {
        say(&format!("{passed} cases pass now, more than the {ratchet} recorded: raise {RATCHET}"));
    }
}

/// Sample lines by a crude count: non-empty lines not starting with `#`.
fn crude_sample_count(body: &str) -> usize {
    body.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count()
}

fn check_body(path: &Path, format: Format, validation: Validation) -> usize {
    let body = fs::read(path).unwrap();
    let text = String::from_utf8(body.clone()).unwrap();
    let entries = parse_all(&body, format, validation)
        .unwrap_or_else(|e| panic!("{} ({format:?}, {validation:?}): {e}", path.display()));
    let mut samples = 0;
    for entry in &entries {
        if let Entry::Sample(s) = entry {
            samples += 1;
            assert!(s.series.starts_with(s.name), "{}", s.series);
            assert!(s.series.ends_with(s.labels.as_str()), "{}", s.series);
            // Every label pair is reachable and re-renders to the raw block.
            let rendered: Vec<String> =
                s.labels.iter().map(|(n, v)| format!("{n}=\"{}\"", v.raw())).collect();
            if !s.labels.as_str().is_empty() {
                assert_eq!(format!("{{{}}}", rendered.join(",")), s.labels.as_str());
            }
        }
    }
    assert_eq!(samples, crude_sample_count(&text), "{}", path.display());
    samples
}

#[test]
fn exposition_bodies() {
    let Some(dir) = shared("exposition", "the exposition bodies") else { return };
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".prom.txt") || name.ends_with(".prom") {
            check_body(&path, Format::Text, Validation::Strict);
            seen += 1;
        } else if name.ends_with(".om.txt") {
            // Prometheus's checks accept every real body.
            let n = check_body(&path, Format::OpenMetrics, Validation::Syntax);
            seen += 1;
            let body = fs::read(&path).unwrap();
            match parse_all(&body, Format::OpenMetrics, Validation::Strict) {
                Ok(e) => assert_eq!(e.iter().filter(|e| matches!(e, Entry::Sample(_))).count(), n),
                Err(e) => {
                    // client_golang's example exposes a histogram with negative buckets and a
                    // (negative) _sum, which OpenMetrics forbids.
                    assert_eq!(name, "alltypes.5mfs.om.txt", "{e}");
                    assert_eq!(e.kind, ErrorKind::Semantics, "{e}");
                }
            }
        }
    }
    assert!(seen >= 5, "only {seen} bodies in {}", dir.display());
}
