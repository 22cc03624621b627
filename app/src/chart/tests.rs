//! Rendering tests through the SVG backend.

use super::*;

fn svg(kind: PanelKind, data: &PanelData, opts: &ChartOptions) -> String {
    match render_svg(kind, data, opts, 800, 300) {
        Ok(s) => s,
        Err(e) => panic!("render failed: {e}"),
    }
}

/// Polylines drawn in series colour `index`.
fn lines_of(svg: &str, index: usize) -> usize {
    let color = series_color(index).to_ascii_uppercase();
    svg.lines().filter(|l| l.contains("<polyline") && l.to_ascii_uppercase().contains(&color)).count()
}

/// Whether some `<text>` element reads exactly `text` (the SVG backend puts it on its own line).
fn has_text(svg: &str, text: &str) -> bool {
    svg.lines().any(|l| l.trim() == text)
}

fn series<P: IntoIterator<Item = (i64, f64)>>(name: &str, pts: P) -> Series {
    Series { name: name.into(), points: pts.into_iter().collect() }
}

const T0: i64 = 1_795_680_000_000;
const STEP: i64 = 15_000;

fn panel(series: Vec<Series>) -> PanelData {
    PanelData { series, start_ms: T0, end_ms: T0 + 100 * STEP, step_ms: STEP, ..PanelData::default() }
}

fn ramp(n: i64, f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    (0..=n).map(|i| (T0 + i * STEP, f(i))).collect()
}

#[test]
fn one_polyline_per_series() {
    let data = panel(vec![series("a", ramp(100, |i| i as f64)), series("b", ramp(100, |i| (i * i) as f64))]);
    let out = svg(PanelKind::TimeSeries, &data, &ChartOptions::default());
    assert!(out.starts_with("<svg"));
    assert_eq!(lines_of(&out, 0), 1, "{out}");
    assert_eq!(lines_of(&out, 1), 1);
    assert!(has_text(&out, "a") && has_text(&out, "b"), "legend names");
}

#[test]
fn gap_splits_line() {
    let mut pts = ramp(100, |i| i as f64);
    pts.retain(|p| !(p.0 > T0 + 40 * STEP && p.0 < T0 + 45 * STEP));
    let out = svg(PanelKind::TimeSeries, &panel(vec![series("a", pts)]), &ChartOptions::default());
    assert_eq!(lines_of(&out, 0), 2);
}

#[test]
fn nan_splits_line_and_never_panics() {
    let pts = ramp(100, |i| if i == 50 { f64::NAN } else { (i as f64).sin() });
    let out = svg(PanelKind::TimeSeries, &panel(vec![series("a", pts)]), &ChartOptions::default());
    assert_eq!(lines_of(&out, 0), 2);
    let all_nan = ramp(100, |_| f64::NAN);
    let out = svg(PanelKind::TimeSeries, &panel(vec![series("a", all_nan)]), &ChartOptions::default());
    assert!(has_text(&out, "No data"));
    let inf = ramp(100, |i| if i % 2 == 0 { f64::INFINITY } else { -1.0 });
    svg(PanelKind::TimeSeries, &panel(vec![series("a", inf)]), &ChartOptions::default());
}

#[test]
fn empty_data_says_no_data() {
    let out = svg(PanelKind::TimeSeries, &panel(vec![]), &ChartOptions::default());
    assert!(has_text(&out, "No data"));
    let out = svg(PanelKind::TimeSeries, &PanelData::default(), &ChartOptions::default());
    assert!(has_text(&out, "No data"));
    let out = svg(PanelKind::TimeSeries, &panel(vec![series("a", Vec::new())]), &ChartOptions::default());
    assert!(has_text(&out, "No data"));
}

#[test]
fn extreme_values_render() {
    for (lo, hi) in [(1e300, 1e301), (-1e308, 1e308), (1e-12, 3e-12), (-5.0, -1.0), (-f64::MAX, f64::MAX)] {
        let pts = ramp(100, |i| lo * (1.0 - i as f64 / 100.0) + hi * (i as f64 / 100.0));
        let out = svg(PanelKind::TimeSeries, &panel(vec![series("a", pts)]), &ChartOptions::default());
        assert_eq!(lines_of(&out, 0), 1, "{lo}..{hi}");
    }
}

#[test]
fn negative_values_label_axis() {
    let pts = ramp(100, |i| -(i as f64));
    let out = svg(PanelKind::TimeSeries, &panel(vec![series("a", pts)]), &ChartOptions::default());
    assert!(has_text(&out, "-100") && has_text(&out, "-40"), "{out}");
}

#[test]
fn single_point_and_constant_series() {
    let one = vec![(T0 + 10 * STEP, 5.0)];
    let out = svg(PanelKind::TimeSeries, &panel(vec![series("a", one.clone())]), &ChartOptions::default());
    assert!(out.contains("<circle"), "a lone sample is a dot");
    let flat = ramp(100, |_| 42.0);
    let out = svg(PanelKind::TimeSeries, &panel(vec![series("a", flat)]), &ChartOptions::default());
    assert_eq!(lines_of(&out, 0), 1);
    let zero = ramp(100, |_| 0.0);
    svg(PanelKind::TimeSeries, &panel(vec![series("a", zero)]), &ChartOptions::default());
    // No time range given: the samples' span is used.
    let data = PanelData { series: vec![series("a", one)], ..PanelData::default() };
    svg(PanelKind::TimeSeries, &data, &ChartOptions::default());
}

#[test]
fn every_kind_survives_hostile_input() {
    let hostile = vec![
        PanelData::default(),
        panel(vec![series("a", Vec::new())]),
        panel(vec![series("a", ramp(100, |_| f64::NAN))]),
        panel(vec![series("a", vec![(T0, 1.0)])]),
        panel(vec![series("a", ramp(100, |_| 3.0))]),
        panel(vec![series("a", ramp(100, |i| if i % 3 == 0 { f64::INFINITY } else { -1e308 }))]),
        PanelData {
            series: vec![series("a", ramp(10, |i| i as f64))],
            start_ms: 5,
            end_ms: 5,
            step_ms: -1,
            ..PanelData::default()
        },
    ];
    let kinds =
        [PanelKind::TimeSeries, PanelKind::Stat, PanelKind::Gauge, PanelKind::BarGauge, PanelKind::Heatmap];
    let styles = [DrawStyle::Line, DrawStyle::Bars, DrawStyle::Points];
    for data in &hostile {
        for kind in kinds {
            for (i, style) in styles.iter().enumerate() {
                let opts = ChartOptions {
                    draw_style: *style,
                    fill_opacity: 50.0,
                    min: if i == 1 { Some(10.0) } else { None },
                    max: if i == 1 { Some(0.0) } else { None },
                    theme: if i == 2 { Theme::Dark } else { Theme::Light },
                    thresholds: Some(Thresholds::default()),
                    ..ChartOptions::default()
                };
                for (w, h) in [(800, 300), (20, 10), (1, 1)] {
                    if let Err(e) = render_svg(kind, data, &opts, w, h) {
                        panic!("{kind:?} {style:?} {w}x{h}: {e}");
                    }
                }
            }
        }
    }
    assert!(matches!(
        render_svg(PanelKind::Stat, &PanelData::default(), &ChartOptions::default(), 0, 10),
        Err(ChartError::Size(0, 10))
    ));
}

#[test]
fn many_series_use_distinct_colours() {
    let data = panel((0..10).map(|k| series(&format!("s{k}"), ramp(100, move |i| (i * k) as f64))).collect());
    let out = svg(PanelKind::TimeSeries, &data, &ChartOptions::default());
    for k in 0..10 {
        assert_eq!(lines_of(&out, k), 1, "series {k}");
    }
}

#[test]
fn long_series_are_thinned() {
    let data = PanelData {
        series: vec![series(
            "a",
            (0..20_000).map(|i| (T0 + i * 1000, (i as f64 * 0.37).sin())).collect::<Vec<_>>(),
        )],
        start_ms: T0,
        end_ms: T0 + 20_000 * 1000,
        step_ms: 1000,
        ..PanelData::default()
    };
    let out = svg(PanelKind::TimeSeries, &data, &ChartOptions::default());
    let line = out.lines().find(|l| l.contains("<polyline") && l.to_ascii_uppercase().contains("#7EB26D"));
    let points = line.map_or(0, |l| l.matches(',').count());
    assert!(points > 100 && points <= 4 * 800, "{points} points");
}

#[test]
fn geometry_maps_both_ways() {
    let data = panel(vec![series("a", ramp(100, |i| i as f64))]);
    let mut out = String::new();
    let geo = {
        let root = SVGBackend::with_string(&mut out, (800, 300)).into_drawing_area();
        match draw_timeseries(&root, &data, &ChartOptions::default()) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        }
    };
    assert!(geo.left > 0.0 && geo.width > 600.0 && geo.height > 100.0);
    let t = T0 + 37 * STEP;
    assert!((geo.time_at(geo.x_of(t)) - t).abs() <= STEP / 10);
    assert_eq!(geo.time_at(-5.0), data.start_ms);
    assert_eq!(geo.time_at(1e9), data.end_ms);
    assert!((geo.value_at(geo.y_of(42.0)) - 42.0).abs() < 1e-9);
    assert!(geo.contains(geo.left + 1.0, geo.top + 1.0));
}

#[test]
fn legend_stats_and_values_at() {
    let pts = vec![(0, 1.0), (1, f64::NAN), (2, 3.0), (3, -1.0)];
    let s = legend_stats(&pts);
    assert_eq!((s.min, s.max, s.mean, s.last, s.count), (Some(-1.0), Some(3.0), Some(1.0), Some(-1.0), 3));
    assert_eq!(legend_stats(&[]).mean, None);
    let data = PanelData {
        series: vec![series("a", vec![(0, 1.0), (10, 2.0)]), series("b", vec![(100, 3.0)])],
        start_ms: 0,
        end_ms: 100,
        step_ms: 10,
        ..PanelData::default()
    };
    assert_eq!(values_at(&data, 6), vec![Some((10, 2.0)), None]);
    assert_eq!(Calc::Sum.apply(&pts), Some(3.0));
    assert_eq!(Calc::First.apply(&pts), Some(1.0));
}

#[test]
fn thresholds_pick_highest_step_reached() {
    let t =
        Thresholds { base_color: "green".into(), steps: vec![(90.0, "red".into()), (70.0, "orange".into())] };
    assert_eq!(t.color_for(10.0), "green");
    assert_eq!(t.color_for(75.0), "orange");
    assert_eq!(t.color_for(95.0), "red");
    assert_eq!(t.color_for(f64::NAN), "green");
}

/// Writes sample panels to $VIGIL_CHART_DUMP (a directory) for a person to look at.
#[test]
fn dump_samples() {
    let Some(dir) = std::env::var_os("VIGIL_CHART_DUMP") else { return };
    let dir = std::path::PathBuf::from(dir);
    let mut s: Vec<Series> = (0..6)
        .map(|k| {
            series(
                &format!("instance=\"10.0.0.{k}:9100\""),
                ramp(100, move |i| 1e6 * (1.0 + k as f64) * (1.0 + ((i + 7 * k) as f64 / 9.0).sin())),
            )
        })
        .collect();
    s[1].points.retain(|p| !(p.0 > T0 + 40 * STEP && p.0 < T0 + 55 * STEP));
    let data = panel(s);
    let kinds = [
        ("ts", PanelKind::TimeSeries),
        ("stat", PanelKind::Stat),
        ("gauge", PanelKind::Gauge),
        ("bargauge", PanelKind::BarGauge),
        ("heatmap", PanelKind::Heatmap),
    ];
    let les = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"];
    let hist = panel(
        les.iter()
            .enumerate()
            .map(|(b, le)| {
                let cum = move |i: i64| {
                    let centre = 4.0 + 2.0 * ((i as f64) / 12.0).sin();
                    (0..=b).map(|k| 100.0 * (-((k as f64 - centre).powi(2)) / 2.0).exp()).sum::<f64>()
                };
                series(&format!("{{le=\"{le}\"}}"), ramp(100, cum))
            })
            .collect(),
    );
    let opts = ChartOptions { unit: "s".into(), ..ChartOptions::default() };
    let _ = std::fs::write(dir.join("hist.svg"), svg(PanelKind::Heatmap, &hist, &opts));
    for theme in [Theme::Light, Theme::Dark] {
        for (name, kind) in kinds {
            let opts = ChartOptions {
                unit: "bytes".into(),
                theme,
                fill_opacity: 10.0,
                thresholds: Some(Thresholds::default()),
                ..ChartOptions::default()
            };
            let out = svg(kind, &data, &opts);
            let _ = std::fs::write(dir.join(format!("{name}-{theme:?}.svg")), out);
        }
    }
}

/// Fill colours of `<rect>`s, upper-case.
fn rect_fills(svg: &str) -> Vec<String> {
    svg.lines()
        .filter(|l| l.starts_with("<rect"))
        .filter_map(|l| l.split("fill=\"").nth(1).and_then(|r| r.split('"').next()))
        .map(str::to_ascii_uppercase)
        .collect()
}

#[test]
fn stat_shows_last_value_in_threshold_colour() {
    let data = panel(vec![series("a", ramp(100, |i| 1536.0 + i as f64 * 0.0))]);
    let opts = ChartOptions {
        unit: "bytes".into(),
        thresholds: Some(Thresholds { base_color: "green".into(), steps: vec![(1000.0, "red".into())] }),
        ..ChartOptions::default()
    };
    let out = svg(PanelKind::Stat, &data, &opts);
    assert!(has_text(&out, "1.50 KiB"), "{out}");
    assert!(out.contains("fill=\"#F2495C\""), "red value text");
    let bg = ChartOptions { color_mode: ColorMode::Background, sparkline: false, ..opts };
    let out = svg(PanelKind::Stat, &data, &bg);
    assert!(rect_fills(&out).contains(&"#F2495C".to_string()), "red background");
    let out = svg(PanelKind::Stat, &panel(vec![series("a", ramp(10, |_| f64::NAN))]), &bg);
    assert!(has_text(&out, "No data"));
}

#[test]
fn stat_names_cells_when_several() {
    let data = panel(vec![series("up", ramp(10, |_| 1.0)), series("down", ramp(10, |_| 0.0))]);
    let out = svg(PanelKind::Stat, &data, &ChartOptions::default());
    assert!(has_text(&out, "up") && has_text(&out, "down") && has_text(&out, "1") && has_text(&out, "0"));
}

#[test]
fn gauge_and_bargauge_show_values() {
    let data = panel(vec![series("cpu", ramp(10, |_| 42.5)), series("mem", ramp(10, |_| 90.0))]);
    let opts = ChartOptions { unit: "percent".into(), decimals: Some(1), ..ChartOptions::default() };
    let out = svg(PanelKind::Gauge, &data, &opts);
    assert!(has_text(&out, "42.5%") && has_text(&out, "90.0%") && has_text(&out, "cpu"), "{out}");
    // Default thresholds: green below 80, red from 80.
    assert!(out.contains("#73BF69") && out.contains("#F2495C"));
    let out = svg(PanelKind::BarGauge, &data, &opts);
    assert!(has_text(&out, "42.5%") && has_text(&out, "mem"));
    let fills = rect_fills(&out);
    assert!(fills.iter().filter(|f| *f == "#F2495C").count() == 1, "{fills:?}");
}

#[test]
fn heatmap_draws_bucket_rows() {
    let les = ["0.1", "1", "+Inf"];
    let data = panel(
        les.iter()
            .enumerate()
            .map(|(b, le)| {
                series(&format!("{{le=\"{le}\"}}"), ramp(100, move |i| (b as f64 + 1.0) * i as f64))
            })
            .collect(),
    );
    let out = svg(PanelKind::Heatmap, &data, &ChartOptions::default());
    assert!(has_text(&out, "0.1") && has_text(&out, "+Inf"), "{out}");
    // Background plus cells: at least one rectangle per bucket row.
    assert!(rect_fills(&out).len() >= 4);
    assert!(!has_text(&out, "No data"));
}

#[test]
fn local_time_labels_shift() {
    let data = panel(vec![series("a", ramp(100, |i| i as f64))]);
    let utc = svg(PanelKind::TimeSeries, &data, &ChartOptions::default());
    assert!(has_text(&utc, "08:00"));
    let local = ChartOptions { timezone_utc: false, tz_offset_minutes: 120, ..ChartOptions::default() };
    let out = svg(PanelKind::TimeSeries, &data, &local);
    assert!(has_text(&out, "10:00") && !has_text(&out, "08:00"), "{out}");
}

#[test]
fn multi_day_range_shows_dates() {
    let day = 86_400_000;
    let data = PanelData {
        series: vec![series("a", (0..=300).map(|i| (T0 + i * 864_000, i as f64)).collect::<Vec<_>>())],
        start_ms: T0,
        end_ms: T0 + 3 * day,
        step_ms: 864_000,
        ..PanelData::default()
    };
    let out = svg(PanelKind::TimeSeries, &data, &ChartOptions::default());
    assert!(out.lines().any(|l| l.trim().starts_with("11/27")), "{out}");
}

#[test]
fn pixel_ratio_scales_layout() {
    let data = panel(vec![series("a", ramp(100, |i| i as f64))]);
    let geo = |ratio: f64| {
        let mut out = String::new();
        let root = SVGBackend::with_string(&mut out, (1600, 600)).into_drawing_area();
        let opts = ChartOptions { pixel_ratio: ratio, ..ChartOptions::default() };
        match draw_timeseries(&root, &data, &opts) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        }
    };
    let (one, two) = (geo(1.0), geo(2.0));
    assert!(two.left > one.left * 1.5, "margins grow with the ratio: {one:?} {two:?}");
    let half = two.scaled(0.5);
    assert!((half.width * 2.0 - two.width).abs() < 1e-9 && half.start_ms == two.start_ms);
}

#[test]
fn stacking_adds_up() {
    let data = panel(vec![series("a", ramp(100, |_| 1.0)), series("b", ramp(100, |_| 2.0))]);
    let opts = ChartOptions { stack: true, ..ChartOptions::default() };
    let mut out = String::new();
    let geo = {
        let root = SVGBackend::with_string(&mut out, (800, 300)).into_drawing_area();
        match draw_timeseries(&root, &data, &opts) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        }
    };
    assert!(geo.y_max >= 3.0, "the axis reaches the stacked total: {geo:?}");
}

#[test]
fn thresholds_drawn_on_time_series() {
    let data = panel(vec![series("a", ramp(100, |i| i as f64))]);
    let th = Some(Thresholds { base_color: "green".into(), steps: vec![(50.0, "red".into())] });
    let plain = svg(
        PanelKind::TimeSeries,
        &data,
        &ChartOptions { thresholds: th.clone(), ..ChartOptions::default() },
    );
    assert!(!rect_fills(&plain).contains(&"#F2495C".to_string()));
    let line = ChartOptions {
        thresholds: th.clone(),
        threshold_style: ThresholdStyle::Line,
        ..ChartOptions::default()
    };
    let out = svg(PanelKind::TimeSeries, &data, &line);
    assert_eq!(rect_fills(&out).iter().filter(|f| *f == "#F2495C").count(), 1);
    let dashed = ChartOptions { threshold_style: ThresholdStyle::Dashed, ..line.clone() };
    assert!(
        rect_fills(&svg(PanelKind::TimeSeries, &data, &dashed)).iter().filter(|f| *f == "#F2495C").count()
            > 10
    );
    let area = ChartOptions { threshold_style: ThresholdStyle::Area, ..line };
    let fills = rect_fills(&svg(PanelKind::TimeSeries, &data, &area));
    assert!(fills.contains(&"#73BF69".to_string()) && fills.contains(&"#F2495C".to_string()));
}

#[test]
fn colour_overrides_by_name() {
    let data = panel(vec![series("a", ramp(10, |i| i as f64)), series("errors", ramp(10, |i| i as f64))]);
    let opts =
        ChartOptions { color_overrides: vec![("errors".into(), "red".into())], ..ChartOptions::default() };
    let out = svg(PanelKind::TimeSeries, &data, &opts);
    assert!(out.lines().any(|l| l.starts_with("<polyline") && l.contains("#F2495C")));
    assert_eq!(opts.series_color(1, "errors"), "#f2495c");
    assert_eq!(opts.series_color(0, "a"), series_color(0));
    assert_eq!(opts.format_time(T0), "2026-11-26 08:00:00");
    let local = ChartOptions { timezone_utc: false, tz_offset_minutes: -300, ..ChartOptions::default() };
    assert_eq!(local.format_time(T0), "2026-11-26 03:00:00");
}

#[test]
fn extreme_timestamps_never_overflow() {
    let pts = vec![(i64::MIN, 1.0), (-1, 2.0), (0, 3.0), (i64::MAX, 4.0)];
    let cases = [
        PanelData {
            series: vec![series("a", pts.clone())],
            start_ms: i64::MIN,
            end_ms: i64::MAX,
            step_ms: i64::MAX,
            ..PanelData::default()
        },
        PanelData {
            series: vec![series("a", pts.clone())],
            start_ms: 0,
            end_ms: 0,
            step_ms: 0,
            ..PanelData::default()
        },
        PanelData { series: vec![series("a", vec![(i64::MAX, 1.0)])], ..PanelData::default() },
        PanelData { series: vec![series("a", vec![(i64::MIN, 1.0)])], ..PanelData::default() },
        PanelData {
            series: vec![series("{le=\"1\"}", pts)],
            start_ms: i64::MIN,
            end_ms: i64::MAX,
            step_ms: 1,
            ..PanelData::default()
        },
    ];
    let kinds =
        [PanelKind::TimeSeries, PanelKind::Stat, PanelKind::Gauge, PanelKind::BarGauge, PanelKind::Heatmap];
    for data in &cases {
        for kind in kinds {
            for utc in [true, false] {
                let opts = ChartOptions {
                    timezone_utc: utc,
                    tz_offset_minutes: if utc { 0 } else { 14 * 60 },
                    draw_style: DrawStyle::Bars,
                    ..ChartOptions::default()
                };
                if let Err(e) = render_svg(kind, data, &opts, 400, 200) {
                    panic!("{kind:?}: {e}");
                }
            }
        }
        let _ = values_at(data, i64::MAX);
        let _ = values_at(data, i64::MIN);
    }
    let geo = PlotGeometry { start_ms: i64::MIN, end_ms: i64::MAX, width: 100.0, ..PlotGeometry::default() };
    assert_eq!(geo.time_at(1e9), i64::MAX);
    assert!(geo.x_of(0).is_finite());
    assert_eq!(choose_step(i64::MAX, 1, None, i64::MAX), i64::MAX);
}

#[test]
fn log_axis_ticks_on_powers() {
    let data = panel(vec![series("latency", ramp(100, |i| 0.001 * 10f64.powf(i as f64 / 25.0)))]);
    let opts = ChartOptions { unit: "s".into(), log_base: Some(10.0), ..ChartOptions::default() };
    let mut out = String::new();
    let geo = {
        let root = SVGBackend::with_string(&mut out, (800, 300)).into_drawing_area();
        match draw_timeseries(&root, &data, &opts) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        }
    };
    assert!(has_text(&out, "1 ms") && has_text(&out, "100 ms") && has_text(&out, "10 s"), "{out}");
    assert!((geo.y_min - 0.001).abs() < 1e-12 && (geo.y_max - 10.0).abs() < 1e-9, "{geo:?}");
    // Decades are evenly spaced.
    let (a, b, c) = (geo.y_of(0.001), geo.y_of(0.01), geo.y_of(0.1));
    assert!(((a - b) - (b - c)).abs() < 1e-6);
    assert!((geo.value_at(geo.y_of(0.5)) - 0.5).abs() < 1e-9);
    assert_eq!(geo.y_of(0.0), geo.top + geo.height);
    assert_eq!(lines_of(&out, 0), 1);
    // Zeros, negatives and no positive sample at all still draw.
    for f in [|_: i64| 0.0, |i: i64| -(i as f64), |i: i64| if i % 2 == 0 { 0.0 } else { 1e300 }] {
        let data = panel(vec![series("a", ramp(100, f))]);
        for base in [2.0, 10.0, 1.0, f64::NAN] {
            let opts =
                ChartOptions { log_base: Some(base), draw_style: DrawStyle::Bars, ..ChartOptions::default() };
            svg(PanelKind::TimeSeries, &data, &opts);
        }
    }
}

#[test]
fn connect_gaps_and_steps() {
    let mut pts = ramp(100, |i| if i == 20 { f64::NAN } else { i as f64 });
    pts.retain(|p| !(p.0 > T0 + 40 * STEP && p.0 < T0 + 45 * STEP));
    let data = panel(vec![series("a", pts)]);
    assert_eq!(lines_of(&svg(PanelKind::TimeSeries, &data, &ChartOptions::default()), 0), 3);
    let joined = ChartOptions { connect_gaps: true, ..ChartOptions::default() };
    assert_eq!(lines_of(&svg(PanelKind::TimeSeries, &data, &joined), 0), 1);
    // A step line of a ramp has only horizontal and vertical moves.
    let stepped = ChartOptions { interpolation: Interpolation::StepAfter, ..ChartOptions::default() };
    let few = panel(vec![series("a", ramp(10, |i| (i * i) as f64))]);
    let out = svg(PanelKind::TimeSeries, &few, &stepped);
    let line = out.lines().find(|l| l.starts_with("<polyline") && l.contains("#7EB26D")).unwrap_or_default();
    let pts: Vec<(i32, i32)> = line
        .split("points=\"")
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| {
            p.split_once(',')
                .and_then(|(x, y)| Some((x.parse().ok()?, y.trim_end_matches('"').parse().ok()?)))
        })
        .collect();
    assert!(pts.len() >= 19, "{line}");
    assert!(pts.windows(2).all(|w| w[0].0 == w[1].0 || w[0].1 == w[1].1), "{pts:?}");
}

#[test]
fn soft_limits_and_fixed_decimals_on_axis() {
    let data = panel(vec![series("a", ramp(100, |i| 50.0 + (i % 10) as f64))]);
    let geo = |opts: &ChartOptions| {
        let mut out = String::new();
        let root = SVGBackend::with_string(&mut out, (800, 300)).into_drawing_area();
        match draw_timeseries(&root, &data, opts) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        }
    };
    assert!(geo(&ChartOptions::default()).y_min >= 40.0);
    let soft = ChartOptions { soft_min: Some(0.0), soft_max: Some(10.0), ..ChartOptions::default() };
    let g = geo(&soft);
    assert_eq!(g.y_min, 0.0);
    assert!(g.y_max >= 59.0, "soft max never cuts data: {g:?}");
    let out =
        svg(PanelKind::TimeSeries, &data, &ChartOptions { decimals: Some(2), ..ChartOptions::default() });
    assert!(has_text(&out, "50.00"), "{out}");
}

#[test]
fn hover_helpers() {
    let data = panel(vec![series("low", ramp(100, |_| 10.0)), series("high", ramp(100, |_| 90.0))]);
    let mut out = String::new();
    let geo = {
        let root = SVGBackend::with_string(&mut out, (800, 300)).into_drawing_area();
        match draw_timeseries(&root, &data, &ChartOptions::default()) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        }
    };
    let t = T0 + 50 * STEP;
    assert_eq!(nearest_series(&data, &geo, t, geo.y_of(80.0)).map(|n| n.0), Some(1));
    assert_eq!(nearest_series(&data, &geo, t, geo.y_of(20.0)).map(|n| n.0), Some(0));
    assert_eq!(nearest_series(&PanelData::default(), &geo, t, 0.0), None);
    let (a, b) = geo.time_range_between(geo.x_of(T0 + 60 * STEP), geo.x_of(T0 + 20 * STEP));
    assert!(a < b && (a - (T0 + 20 * STEP)).abs() <= STEP && (b - (T0 + 60 * STEP)).abs() <= STEP);
}

#[test]
fn crowded_legend_sums_up_the_rest() {
    let data = panel(
        (0..50).map(|k| series(&format!("a rather long series name {k}"), ramp(10, |i| i as f64))).collect(),
    );
    let out = svg(PanelKind::TimeSeries, &data, &ChartOptions::default());
    let more = out.lines().find(|l| l.trim().starts_with('+') && l.trim().ends_with("more"));
    let hidden: usize = more.and_then(|l| l.trim()[1..].split(' ').next()?.parse().ok()).unwrap_or(0);
    let shown = out.lines().filter(|l| l.trim().starts_with("a rather long")).count();
    assert!(hidden > 0 && shown > 0 && shown + hidden == 50, "{shown} + {hidden}");
    // Every series is still drawn even when its legend entry is not.
    assert_eq!(lines_of(&out, 49), 1);
}

#[test]
fn held_back_data_keeps_the_legend_and_counts_exact_through_json() {
    // Values whose decimal forms parse back to a neighbour without care, plus a gap, an empty
    // series and a NaN-only one.
    let data = panel(vec![
        series("a", [(T0, 0.1 + 0.2), (T0 + STEP, 1e-300 / 3.0), (T0 + 3 * STEP, 2.0f64.sqrt())]),
        series("empty", []),
        series("nan", [(T0, f64::NAN)]),
    ]);
    let light = data.held_back();
    assert!(light.is_held_back() && !data.is_held_back());
    assert!(light.series.iter().all(|s| s.points.is_empty()));
    let wire: PanelData = serde_json::from_str(&serde_json::to_string(&light).unwrap()).unwrap();
    assert_eq!(wire, light);
    let bits = |st: &[LegendStats]| {
        st.iter().map(|s| [s.min, s.max, s.mean, s.last].map(|v| v.map(f64::to_bits))).collect::<Vec<_>>()
    };
    assert_eq!(bits(&wire.legend_stats()), bits(&data.legend_stats()));
    assert_eq!(wire.series_with_points(), 2);
    assert_eq!(wire.series_with_points(), data.series_with_points());
    assert_eq!(wire.last_times(), data.last_times());
    // Data with its points never carries a digest on the wire.
    assert!(!serde_json::to_string(&data).unwrap().contains("digest"));
}

#[test]
fn pixel_rounding_matches_f64_round() {
    let mut v = -1.0e7 - 3.0;
    let mut cases = vec![
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        -0.0,
        0.49999999999999994,
        -0.49999999999999994,
        1e7 - 0.5,
        -1e7 + 0.5,
        4503599627370497.0,
    ];
    while v < 1.0e7 + 3.0 {
        cases.push(v);
        v += 0.123_456_7 * (1.0 + v.abs() / 1000.0);
    }
    for v in cases {
        let want = if v.is_nan() { 0 } else { v.round().clamp(-1e7, 1e7) as i32 };
        assert_eq!(ip(v), want, "{v}");
    }
}

/// Absolute points of a `d` written by `compact_polylines` (M, then relative l pairs).
fn path_points(d: &str) -> Vec<(i64, i64)> {
    let nums: Vec<i64> = d
        .replace(['M', 'l'], " ")
        .replace('-', " -")
        .split_ascii_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for pair in nums.chunks(2) {
        let p = match out.last() {
            None => (pair[0], pair[1]),
            Some(&(x, y)) => (x + pair[0], y + pair[1]),
        };
        out.push(p);
    }
    out
}

#[test]
fn compact_polylines_draw_the_same_points_in_fewer_bytes() {
    let data = panel(vec![
        series("a", ramp(100, |i| (i as f64 / 7.0).sin() * 50.0)),
        series("b", ramp(100, |i| if i % 9 == 0 { f64::NAN } else { (i * i % 17) as f64 })),
    ]);
    let svg = svg(PanelKind::TimeSeries, &data, &ChartOptions::default());
    let compact = compact_polylines(&svg);
    assert!(!compact.contains("<polyline"));
    let lines = |s: &str, attr: &str| -> Vec<String> {
        s.split(attr).skip(1).map(|p| p[..p.find('"').unwrap()].to_string()).collect()
    };
    let bytes = |v: Vec<String>| v.iter().map(String::len).sum::<usize>();
    let (old, new) = (bytes(lines(&svg, " points=\"")), bytes(lines(&compact, " d=\"")));
    assert!(new * 10 < old * 7, "{new} vs {old}");
    let before: Vec<Vec<(i64, i64)>> = lines(&svg, " points=\"")
        .iter()
        .map(|p| {
            p.split_whitespace()
                .map(|xy| {
                    let (x, y) = xy.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect();
    let after: Vec<Vec<(i64, i64)>> = lines(&compact, " d=\"").iter().map(|d| path_points(d)).collect();
    assert!(before.len() > 2);
    assert_eq!(before, after);
    // Everything else is untouched.
    assert_eq!(compact.matches("<text").count(), svg.matches("<text").count());
    // Unrecognised input is copied as it is.
    for odd in [
        "<polyline points=\"1,2 x,3\"/>",
        "<polyline points=\"1,2\">",
        "a<polyline ",
        "<polyline points=\"1,2",
    ] {
        assert_eq!(compact_polylines(odd), odd);
    }
}
