//! Panel drawing speed: `render_svg` of a time series panel with 50 series × 2,000 samples
//! (1,200×400 px, 15 s step, a few gaps), plus the same data as bars, a stat panel and a
//! heatmap of 50 buckets, so a change to thinning or layout shows up as time here.
//!
//! Run: `cargo bench -p vigil-app --bench chart`

use std::hint::black_box;
use std::time::Duration;

use app::chart::{render_svg, ChartOptions, DrawStyle, PanelData, PanelKind, Series};
use criterion::{criterion_group, Criterion};

const T0: i64 = 1_795_680_000_000;
const STEP: i64 = 15_000;
const POINTS: i64 = 2_000;

fn data() -> PanelData {
    let series = (0..50)
        .map(|k| Series {
            name: format!("{{instance=\"10.0.{k}.1:9100\", job=\"node\"}}"),
            points: (0..POINTS)
                // Every seventh series misses a stretch, so gap splitting is measured too.
                .filter(|i| k % 7 != 0 || !(900..960).contains(i))
                .map(|i| {
                    let x = i as f64 / 40.0 + k as f64;
                    (T0 + i * STEP, 1e6 * (1.0 + k as f64) * (1.2 + x.sin() + 0.3 * (x * 7.3).cos()))
                })
                .collect(),
        })
        .collect();
    PanelData {
        series,
        start_ms: T0,
        end_ms: T0 + (POINTS - 1) * STEP,
        step_ms: STEP,
        ..PanelData::default()
    }
}

fn heatmap_data() -> PanelData {
    let mut d = data();
    for (b, s) in d.series.iter_mut().enumerate() {
        s.name = format!("{{le=\"{}\"}}", 0.001 * 2f64.powi(b as i32));
        for p in &mut s.points {
            p.1 = (b as f64 + 1.0) * 10.0 + p.1 / 1e6;
        }
    }
    d
}

fn bench(c: &mut Criterion) {
    let d = data();
    let line = ChartOptions { unit: "bytes".into(), fill_opacity: 10.0, ..ChartOptions::default() };
    let bars = ChartOptions { draw_style: DrawStyle::Bars, ..line.clone() };
    let mut g = c.benchmark_group("render_svg");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("timeseries_50x2000", |b| {
        b.iter(|| render_svg(PanelKind::TimeSeries, black_box(&d), &line, 1200, 400).map(|s| s.len()))
    });
    g.bench_function("bars_50x2000", |b| {
        b.iter(|| render_svg(PanelKind::TimeSeries, black_box(&d), &bars, 1200, 400).map(|s| s.len()))
    });
    g.bench_function("stat_50x2000", |b| {
        b.iter(|| render_svg(PanelKind::Stat, black_box(&d), &line, 1200, 400).map(|s| s.len()))
    });
    let h = heatmap_data();
    g.bench_function("heatmap_50x2000", |b| {
        b.iter(|| render_svg(PanelKind::Heatmap, black_box(&h), &line, 1200, 400).map(|s| s.len()))
    });
    g.finish();
    if let Ok(svg) = render_svg(PanelKind::TimeSeries, &d, &line, 1200, 400) {
        println!("timeseries_50x2000 SVG: {} bytes", svg.len());
        // To look at what was measured: CHART_BENCH_SVG=/tmp/panel.svg
        if let Some(path) = std::env::var_os("CHART_BENCH_SVG") {
            let _ = std::fs::write(path, svg);
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
