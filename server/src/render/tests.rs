use super::*;
use app::chart::Series;

fn parse(q: &str) -> Result<RenderParams, RenderError> {
    RenderParams::parse(q)
}

#[test]
fn defaults_and_grafana_parameters() {
    let p = parse("panelId=3&orgId=1&tz=UTC").unwrap();
    assert_eq!((p.panel_id, p.width, p.height, p.scale), (3, DEFAULT_WIDTH, DEFAULT_HEIGHT, 1.0));
    assert_eq!(
        (p.theme, p.format, p.from.as_deref(), p.to.as_deref()),
        (Theme::Light, Format::Png, None, None)
    );
    assert!(p.vars.is_empty());

    let p = parse(
        "panelId=panel-12&width=640&height=240&scale=2&theme=dark&format=svg&from=now-1h&to=now\
         &var-job=api&var-job=db&var-env=prod%20eu",
    )
    .unwrap();
    assert_eq!((p.panel_id, p.width, p.height, p.pixels()), (12, 640, 240, (1280, 480)));
    assert_eq!((p.theme, p.format), (Theme::Dark, Format::Svg));
    assert_eq!((p.from.as_deref(), p.to.as_deref()), (Some("now-1h"), Some("now")));
    assert_eq!(
        p.vars,
        vec![("job".into(), vec!["api".into(), "db".into()]), ("env".into(), vec!["prod eu".into()])]
    );
    // Empty values read as absent, as in Grafana's links.
    assert_eq!(parse("panelId=1&from=&width=").unwrap().width, DEFAULT_WIDTH);
}

#[test]
fn embed_links_fix_their_variables() {
    let mut p = parse("panelId=1&var-job=api&var-env=dev&var-env=prod").unwrap();
    let fixed = BTreeMap::from([("env".to_string(), vec!["staging".to_string()])]);
    p.fix_vars(&fixed);
    assert_eq!(p.vars, vec![("job".into(), vec!["api".into()]), ("env".into(), vec!["staging".into()])]);
    assert_eq!(RenderError::OutOfScope.status(), StatusCode::FORBIDDEN);
}

#[test]
fn bad_parameters_are_named() {
    let msg = |q: &str| match parse(q) {
        Err(e) => {
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{q}: {e}");
            e.to_string()
        }
        Ok(p) => panic!("{q} parsed: {p:?}"),
    };
    assert!(msg("width=10").contains("panelId is required"));
    assert!(msg("panelId=abc").contains("\"abc\""));
    assert!(msg("panelId=1&width=wide").contains("width \"wide\""));
    assert!(msg("panelId=1&height=-5").contains("height"));
    assert!(msg("panelId=1&theme=blue").contains("light or dark"));
    assert!(msg("panelId=1&format=gif").contains("png or svg"));
    assert!(msg("panelId=1&scale=0.5").contains("scale"));
    assert!(msg("panelId=1&scale=NaN").contains("scale"));
}

#[test]
fn size_limits() {
    for ok in ["width=1&height=1", "width=3000&height=3000", "width=1500&height=1000&scale=2"] {
        assert!(parse(&format!("panelId=1&{ok}")).is_ok(), "{ok}");
    }
    for too_big in
        ["width=5000", "height=3001", "width=0", "height=0", "width=1501&scale=2", "width=99999999999"]
    {
        let e = parse(&format!("panelId=1&{too_big}")).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{too_big}: {e}");
    }
    assert!(parse("panelId=1&width=5000").unwrap_err().to_string().contains("1..=3000"));
    assert!(matches!(render_png(&image(vec![]), 3001, 10), Err(RenderError::Size(3001, 10))));
    assert!(matches!(render_svg(&image(vec![]), 10, 0), Err(RenderError::Size(10, 0))));
}

#[test]
fn statuses() {
    assert_eq!(RenderError::DashboardNotFound("x".into()).status(), StatusCode::NOT_FOUND);
    assert_eq!(RenderError::PanelNotFound { uid: "x".into(), id: 2 }.status(), StatusCode::NOT_FOUND);
    assert_eq!(RenderError::Unsupported { id: 2, kind: "text".into() }.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header_safe("a\nb ü"), "a b  ");
}

fn image(series: Vec<Series>) -> PanelImage {
    PanelImage {
        kind: PanelKind::TimeSeries,
        title: "Requests per second".into(),
        error: None,
        data: PanelData { series, start_ms: 0, end_ms: 600_000, step_ms: 15_000, ..PanelData::default() },
        opts: ChartOptions::default(),
    }
}

fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Pixels within `tol` of `color` in every channel (lines are anti-aliased).
fn near(rgb: &[u8], color: [u8; 3], tol: u8) -> usize {
    rgb.chunks_exact(3).filter(|p| p.iter().zip(color).all(|(a, b)| a.abs_diff(b) <= tol)).count()
}

fn count(rgb: &[u8], color: [u8; 3]) -> usize {
    near(rgb, color, 0)
}

#[test]
fn png_has_the_lines_and_the_text() {
    let series =
        vec![Series { name: "up".into(), points: (0..=40).map(|i| (i * 15_000, (i % 7) as f64)).collect() }];
    let img = image(series);
    let png = render_png(&img, 400, 200).unwrap();
    if let Ok(path) = std::env::var("RENDER_TEST_PNG") {
        std::fs::write(path, &png).unwrap();
    }
    let (w, h, rgb) = decode(&png);
    assert_eq!((w, h), (400, 200));
    // Series 0 is the classic palette's green, #7EB26D.
    let line = near(&rgb, [0x7e, 0xb2, 0x6d], 16);
    assert!(line > 300, "no line pixels: {line}");
    // The title is drawn in the theme's text colour, anti-aliased glyphs included.
    let text = count(&rgb, [0x1c, 0x21, 0x28]);
    assert!(text > 50, "no title pixels: {text}");

    let mut dark = img.clone();
    dark.opts.theme = Theme::Dark;
    let (_, _, rgb) = decode(&render_png(&dark, 400, 200).unwrap());
    assert!(count(&rgb, [0x18, 0x1b, 0x1f]) > 400 * 100, "dark background");
}

#[test]
fn query_error_is_drawn_and_every_kind_renders() {
    let mut img = image(vec![]);
    img.error = Some("A: parse error at 1:5: unexpected end of input ".repeat(6));
    let png = render_png(&img, 300, 150).unwrap();
    if let Ok(dir) = std::env::var("RENDER_TEST_DIR") {
        std::fs::write(format!("{dir}/error.png"), &png).unwrap();
    }
    let (_, _, rgb) = decode(&png);
    assert!(count(&rgb, [0xe0, 0x2f, 0x44]) > 30, "error text missing");
    let svg = render_svg(&img, 300, 150).unwrap();
    assert!(svg.contains("parse error"), "{svg}");

    let series = vec![Series { name: "a".into(), points: vec![(0, 1.0), (300_000, 42.0)] }];
    for kind in [PanelKind::Stat, PanelKind::Gauge, PanelKind::BarGauge, PanelKind::Heatmap] {
        let mut img = image(series.clone());
        img.kind = kind;
        img.opts.pixel_ratio = 2.0;
        let png = render_png(&img, 300, 150).unwrap();
        if let Ok(dir) = std::env::var("RENDER_TEST_DIR") {
            std::fs::write(format!("{dir}/{kind:?}.png"), &png).unwrap();
        }
        let (w, h, _) = decode(&png);
        assert_eq!((w, h), (300, 150), "{kind:?}");
        // Tiny images draw what fits instead of failing.
        render_png(&img, 1, 1).unwrap();
    }
}

#[test]
fn text_is_measured_with_the_embedded_font() {
    let fonts = fonts().unwrap();
    let narrow = fonts.layout("iiii", 12.0, BackendFontStyle::Normal).width;
    let wide = fonts.layout("WWWW", 12.0, BackendFontStyle::Normal).width;
    assert!(wide > 2.0 * narrow, "{narrow} {wide}");
    let run = fonts.layout("Hg", 20.0, BackendFontStyle::Normal);
    // DejaVu's em box sits about 80% above the baseline.
    assert!((run.above - 16.0).abs() < 0.5, "{}", run.above);
    let bold = fonts.layout("Requests", 14.0, BackendFontStyle::Bold).width;
    assert!(bold > fonts.layout("Requests", 14.0, BackendFontStyle::Normal).width);
}
