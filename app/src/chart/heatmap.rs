//! Heatmap of a classic Prometheus histogram: the input series are its buckets (cumulative
//! counts or rates, one series per `le`), each time column is de-accumulated into per-bucket
//! counts and painted on an Oranges-like colour scale, one row per bucket.
//!
//! A bucket's bound comes from `le="…"` in the series name, or the whole name when it is a
//! number (`0.5`, `+Inf`), which is what a `{{le}}` legend format produces. Series without a
//! bound are drawn as plain rows in their given order, so any set of series still draws.

use super::colors::mix;
use super::timeseries::{effective_step, time_axis, time_range, FONT};
use super::{fit_text, text_width, units, ChartError, ChartOptions, PanelData, Pen, PlotGeometry};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::RGBAColor;

/// The bucket bound `le` carried by a series name.
pub fn bucket_le(name: &str) -> Option<f64> {
    let raw = match name.find("le=\"") {
        Some(i) => {
            let rest = &name[i + 4..];
            &rest[..rest.find('"')?]
        }
        None => name.trim(),
    };
    match raw {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        _ => raw.parse::<f64>().ok().filter(|v| !v.is_nan()),
    }
}

/// A histogram's samples regrouped for drawing, lowest bucket first.
pub struct Buckets {
    /// Every sample time of any bucket, ascending.
    pub times: Vec<i64>,
    /// `rows[b][j]`: bucket `b`'s own count at `times[j]` (its cumulative value minus the bucket
    /// below, never negative), None where the bucket has no sample.
    pub rows: Vec<Vec<Option<f64>>>,
    pub labels: Vec<String>,
    /// Whether the rows came from `le` bounds (else they are the series as given).
    pub with_le: bool,
}

/// Regroups `data`'s series into [`Buckets`].
pub fn bucket_counts(data: &PanelData) -> Buckets {
    let mut order: Vec<(f64, usize)> = Vec::new();
    let all_le = !data.series.is_empty() && data.series.iter().all(|s| bucket_le(&s.name).is_some());
    for (i, s) in data.series.iter().enumerate() {
        let key = if all_le { bucket_le(&s.name).unwrap_or(f64::INFINITY) } else { i as f64 };
        order.push((key, i));
    }
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut times: Vec<i64> =
        data.series.iter().flat_map(|s| s.points.iter().filter(|p| p.1.is_finite()).map(|p| p.0)).collect();
    times.sort_unstable();
    times.dedup();
    let mut rows: Vec<Vec<Option<f64>>> = Vec::with_capacity(order.len());
    for &(_, i) in &order {
        let mut row = vec![None; times.len()];
        for &(t, v) in &data.series[i].points {
            if let (true, Ok(j)) = (v.is_finite(), times.binary_search(&t)) {
                row[j] = Some(v);
            }
        }
        rows.push(row);
    }
    if all_le {
        // Walk downwards so each bucket subtracts the still-cumulative one below it.
        for b in (1..rows.len()).rev() {
            let (below, rest) = rows.split_at_mut(b);
            let (Some(lower), Some(upper)) = (below.last(), rest.first_mut()) else { continue };
            for (u, l) in upper.iter_mut().zip(lower) {
                if let (Some(hi), Some(lo)) = (*u, *l) {
                    *u = Some((hi - lo).max(0.0));
                }
            }
        }
    }
    let labels = order
        .iter()
        .map(|&(le, i)| if all_le { le_label(le) } else { data.series[i].name.clone() })
        .collect();
    Buckets { times, rows, labels, with_le: all_le }
}

fn le_label(le: f64) -> String {
    if le.is_infinite() {
        "+Inf".into()
    } else {
        // Bounds are exact decimal numbers as written in the exposition; keep them unscaled.
        let s = format!("{le}");
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    }
}

/// Draws the heatmap. The geometry's value axis counts buckets: row `b` spans `b..b+1`.
pub fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    let pen = Pen::new(area, opts)?;
    pen.clear()?;
    let (start, end) = time_range(data);
    let Buckets { times, rows, labels, with_le } = bucket_counts(data);
    let fpx = pen.px(FONT);
    let pad = pen.px(6.0);
    let labels: Vec<String> = labels
        .into_iter()
        .map(|l| match l.parse::<f64>() {
            Ok(v) if with_le && v.is_finite() && opts.unit != "short" && opts.unit != "none" => {
                units::format_tick(v, v, &opts.unit)
            }
            _ => l,
        })
        .collect();
    let label_w = labels.iter().map(|l| text_width(l, fpx)).fold(0.0, f64::max).min(pen.w * 0.3);
    let left = pad + label_w + pen.px(6.0);
    let top = pad;
    let legend_h = if opts.show_legend { pen.px(18.0) } else { 0.0 };
    let bottom = (pen.h - pad - fpx - pen.px(6.0) - legend_h).max(top + 1.0);
    let geo = PlotGeometry {
        left,
        top,
        width: (pen.w - pad - left).max(1.0),
        height: bottom - top,
        start_ms: start,
        end_ms: end,
        y_min: 0.0,
        y_max: rows.len().max(1) as f64,
        log_base: None,
    };
    time_axis(&pen, &geo, opts)?;
    if rows.is_empty() || times.is_empty() {
        let (cx, cy) = (left + geo.width / 2.0, top + geo.height / 2.0);
        pen.text("No data", cx, cy, 16.0, pen.pal.muted, HPos::Center, VPos::Center)?;
        return Ok(geo);
    }
    let row_h = geo.height / rows.len() as f64;
    // Label every row that has room, skipping rows rather than overlapping text.
    let every = (fpx * 1.2 / row_h).ceil().max(1.0) as usize;
    for (b, label) in labels.iter().enumerate() {
        if b % every == 0 {
            let y = geo.y_of(b as f64 + 0.5);
            let label = fit_text(label, fpx, label_w.max(fpx));
            pen.text(&label, left - pen.px(6.0), y, FONT, pen.pal.muted, HPos::Right, VPos::Center)?;
        }
    }
    let step = effective_step(&times.iter().map(|&t| (t, 0.0)).collect::<Vec<_>>(), data.step_ms).max(1);
    let right = geo.left + geo.width;
    // Cells narrower than a pixel are merged (their mean drawn once): a 2,000-step range on a
    // 1,000-pixel panel would otherwise paint every pixel twice per bucket.
    let mut cols: Vec<(f64, f64, usize, usize)> = Vec::new();
    for (j, &t) in times.iter().enumerate() {
        if t < start || t > end {
            continue;
        }
        // A rate at t covers the step that ends at t.
        let x1 = geo.x_of(t).min(right);
        match cols.last_mut() {
            Some(c) if c.1 - c.0 < 1.0 => {
                c.1 = x1;
                c.3 = j + 1;
            }
            last => {
                let x0 = geo.x_of(t.saturating_sub(step)).max(geo.left).max(last.map_or(geo.left, |c| c.1));
                cols.push((x0, x1, j, j + 1));
            }
        }
    }
    let cells: Vec<Vec<Option<f64>>> = rows
        .iter()
        .map(|row| {
            cols.iter()
                .map(|&(_, _, a, b)| {
                    let (sum, n) = row[a..b].iter().flatten().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
                    (n > 0).then(|| sum / n as f64)
                })
                .collect()
        })
        .collect();
    let max = cells.iter().flatten().flatten().copied().fold(0.0, f64::max);
    if max <= 0.0 || !max.is_finite() {
        let (cx, cy) = (left + geo.width / 2.0, top + geo.height / 2.0);
        pen.text("No data", cx, cy, 16.0, pen.pal.muted, HPos::Center, VPos::Center)?;
        return Ok(geo);
    }
    let (low, high) = scale_colors(&pen);
    if opts.show_legend {
        // Colour scale: a gradient bar from zero to the largest cell, as Grafana's legend.
        let y = pen.h - pad - pen.px(9.0);
        let (x0, w) = (left, pen.px(120.0).min(geo.width * 0.5));
        pen.text("0", x0, y, FONT, pen.pal.muted, HPos::Right, VPos::Center)?;
        let bar = x0 + pen.px(6.0);
        const STEPS: usize = 24;
        for k in 0..STEPS {
            let f = k as f64 / (STEPS - 1) as f64;
            let sx = bar + w * k as f64 / STEPS as f64;
            let c = mix(low, high, f.sqrt());
            pen.rect(sx, y - pen.px(4.0), sx + w / STEPS as f64 + 0.5, y + pen.px(4.0), c)?;
        }
        let top_label = units::format_value(max, "short", None);
        pen.text(&top_label, bar + w + pen.px(6.0), y, FONT, pen.pal.muted, HPos::Left, VPos::Center)?;
    }
    for (b, row) in cells.iter().enumerate() {
        let (y0, y1) = (geo.y_of(b as f64 + 1.0), geo.y_of(b as f64));
        // Neighbouring cells of one colour become one rectangle: smooth data has long runs.
        let mut run: Option<(f64, f64, RGBAColor)> = None;
        for (&(x0, x1, _, _), v) in cols.iter().zip(row) {
            let cell = v.filter(|v| *v > 0.0 && x1 > x0).map(|v| {
                // Square-root scale, as Grafana's default exponential 0.5, so small counts show.
                mix(low, high, (v / max).sqrt())
            });
            run = match (run, cell) {
                (Some((rx0, rx1, rc)), Some(c)) if same(rc, c) && x0 - rx1 < 1.0 => Some((rx0, x1, rc)),
                (prev, next) => {
                    if let Some((rx0, rx1, rc)) = prev {
                        // Half a pixel of overlap hides anti-aliasing seams between cells.
                        pen.rect(rx0, y0, rx1 + 0.5, y1, rc)?;
                    }
                    next.map(|c| (x0, x1, c))
                }
            };
        }
        if let Some((rx0, rx1, rc)) = run {
            pen.rect(rx0, y0, rx1 + 0.5, y1, rc)?;
        }
    }
    Ok(geo)
}

fn same(a: RGBAColor, b: RGBAColor) -> bool {
    (a.0, a.1, a.2) == (b.0, b.1, b.2) && (a.3 - b.3).abs() < 1e-3
}

/// Ends of the colour scale: a pale orange to a deep one, the pale end nearer the background.
fn scale_colors<DB: DrawingBackend>(pen: &Pen<DB>) -> (RGBAColor, RGBAColor) {
    let pale = RGBAColor(0xfd, 0xd0, 0xa2, 1.0);
    let deep = RGBAColor(0xd9, 0x48, 0x01, 1.0);
    (mix(pale, pen.pal.background, 0.3), deep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::Series;

    #[test]
    fn le_from_names() {
        assert_eq!(bucket_le("{le=\"0.25\", job=\"x\"}"), Some(0.25));
        assert_eq!(bucket_le("le=\"+Inf\""), Some(f64::INFINITY));
        assert_eq!(bucket_le("10"), Some(10.0));
        assert_eq!(bucket_le("+Inf"), Some(f64::INFINITY));
        assert_eq!(bucket_le("le=\"oops"), None);
        assert_eq!(bucket_le("NaN"), None);
        assert_eq!(bucket_le("http_requests"), None);
    }

    #[test]
    fn cumulative_buckets_are_split() {
        let s = |le: &str, v: [f64; 2]| Series {
            name: format!("le=\"{le}\""),
            points: vec![(0, v[0]), (10, v[1])],
        };
        let data = PanelData {
            series: vec![s("+Inf", [10.0, 20.0]), s("0.1", [2.0, 5.0]), s("1", [7.0, 4.0])],
            start_ms: 0,
            end_ms: 10,
            step_ms: 10,
            ..PanelData::default()
        };
        let Buckets { times, rows, labels, with_le } = bucket_counts(&data);
        assert!(with_le);
        assert_eq!(times, vec![0, 10]);
        assert_eq!(labels, vec!["0.1", "1", "+Inf"]);
        assert_eq!(rows[0], vec![Some(2.0), Some(5.0)]);
        // 4 - 5 is a counter reset artefact: clamped to zero.
        assert_eq!(rows[1], vec![Some(5.0), Some(0.0)]);
        assert_eq!(rows[2], vec![Some(3.0), Some(16.0)]);
    }
}
