//! `/render` panel images: a 1,000×500 PNG of a time series panel with 10 series × 1,000
//! samples at 15 s (about 4 h), drawn with the chart code on the bitmap backend, text from the
//! embedded font, then PNG-encoded; the SVG of the same panel for comparison. Criterion medians.
//! `RENDER_BENCH_PNG=/tmp/panel.png` also writes the PNG to look at.

use std::hint::black_box;
use std::time::Duration;

use app::chart::{ChartOptions, PanelData, PanelKind, Series};
use criterion::{criterion_group, criterion_main, Criterion};
use vigil::render::{render_png, render_svg, PanelImage};

fn panel() -> PanelImage {
    let step = 15_000;
    let series = (0..10)
        .map(|s| Series {
            name: format!("instance=\"node-{s}:9100\""),
            points: (0..1_000)
                .map(|i| {
                    let x = i as f64 / 40.0 + s as f64;
                    (i * step, 100.0 + 40.0 * x.sin() + 10.0 * (3.1 * x).cos() + 8.0 * s as f64)
                })
                .collect(),
        })
        .collect();
    PanelImage {
        kind: PanelKind::TimeSeries,
        title: "CPU seconds by instance".into(),
        error: None,
        data: PanelData { series, start_ms: 0, end_ms: 999 * step, step_ms: step, ..PanelData::default() },
        opts: ChartOptions { unit: "s".into(), fill_opacity: 10.0, ..ChartOptions::default() },
    }
}

fn bench(c: &mut Criterion) {
    let image = panel();
    if let Ok(path) = std::env::var("RENDER_BENCH_PNG") {
        if let Ok(png) = render_png(&image, 1000, 500) {
            let _ = std::fs::write(path, png);
        }
    }
    let mut g = c.benchmark_group("render");
    g.sample_size(30).measurement_time(Duration::from_secs(6));
    g.bench_function("png_1000x500_10x1000", |b| b.iter(|| render_png(black_box(&image), 1000, 500)));
    g.bench_function("svg_1000x500_10x1000", |b| b.iter(|| render_svg(black_box(&image), 1000, 500)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
