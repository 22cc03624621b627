//! Unit tests of the parser as a whole; the number grammar has its own in `number.rs`.

use super::*;

fn entries(body: &str, format: Format) -> Result<Vec<Entry<'_>>, ParseError> {
    Parser::new(body.as_bytes(), format).collect()
}

fn err(body: &str, format: Format) -> ParseError {
    match entries(body, format) {
        Ok(e) => panic!("expected an error for {body:?}, got {e:?}"),
        Err(e) => e,
    }
}

#[test]
fn smoke() {
    let e = entries("# TYPE a counter\na_total{b=\"c\"} 1\n# EOF\n", Format::OpenMetrics).unwrap();
    assert_eq!(e.len(), 2);
    let e = entries("a{b=\"c\"} 1 123\n", Format::Text).unwrap();
    assert_eq!(e.len(), 1);
    let _ = err("a{b=\"c} 1\n", Format::Text);
}
