//! Single-value panels: stat (big number, optional sparkline), gauge (arc) and bar gauge (one
//! horizontal bar per series). Each series is reduced to one value by [`Calc`]; colours come
//! from the thresholds (Grafana's default green/red-at-80 when the panel has none).
//!
//! [`Calc`]: super::Calc

use super::colors::{color_or_text, mix};
use super::{
    fit_text, ip, text_width, units, ChartError, ChartOptions, ColorMode, PanelData, Pen, PlotGeometry,
    Series, Thresholds,
};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::RGBAColor;
use std::f64::consts::PI;

/// A cell of the panel: x, y, width, height in device pixels.
type Cell = (f64, f64, f64, f64);

/// Splits `w`×`h` into `n` equal cells laid out in the grid whose cells come closest to
/// `aspect` (width/height), as Grafana's auto orientation does.
fn grid(n: usize, w: f64, h: f64, aspect: f64) -> Vec<Cell> {
    let n = n.max(1);
    let mut best = (1, f64::MIN);
    for cols in 1..=n {
        let rows = n.div_ceil(cols);
        let (cw, ch) = (w / cols as f64, h / rows as f64);
        // Largest cell of the wanted aspect that fits: its height is the score; on a tie the
        // wider layout wins, as it leaves no row half empty.
        let score = ch.min(cw / aspect);
        if score >= best.1 {
            best = (cols, score);
        }
    }
    let cols = best.0;
    let rows = n.div_ceil(cols);
    let (cw, ch) = (w / cols as f64, h / rows as f64);
    (0..n).map(|i| ((i % cols) as f64 * cw, (i / cols) as f64 * ch, cw, ch)).collect()
}

fn thresholds(opts: &ChartOptions) -> Thresholds {
    opts.thresholds.clone().unwrap_or_default()
}

fn no_data<DB: DrawingBackend>(pen: &Pen<DB>, data: &PanelData) -> Result<PlotGeometry, ChartError> {
    pen.text("No data", pen.w / 2.0, pen.h / 2.0, 16.0, pen.pal.muted, HPos::Center, VPos::Center)?;
    Ok(whole(pen, data))
}

/// The whole drawing as the "plot": these panels have no value axis to map.
fn whole<DB: DrawingBackend>(pen: &Pen<DB>, data: &PanelData) -> PlotGeometry {
    PlotGeometry {
        left: 0.0,
        top: 0.0,
        width: pen.w,
        height: pen.h,
        start_ms: data.start_ms,
        end_ms: data.end_ms.max(data.start_ms),
        y_min: 0.0,
        y_max: 1.0,
        log_base: None,
    }
}

/// Text that reads on `bg`: dark on light colours, white on dark ones.
fn on(bg: RGBAColor) -> RGBAColor {
    let lum = 0.2126 * f64::from(bg.0) + 0.7152 * f64::from(bg.1) + 0.0722 * f64::from(bg.2);
    if lum > 160.0 {
        RGBAColor(0x1c, 0x21, 0x28, 1.0)
    } else {
        RGBAColor(0xff, 0xff, 0xff, 1.0)
    }
}

/// The biggest bold font size (device px) at which `text` fits `max_w`×`max_h`.
fn fit_size(text: &str, max_w: f64, max_h: f64) -> f64 {
    let per_px = text_width(text, 1.0).max(0.5) * 1.08;
    (max_w / per_px).min(max_h).max(0.0)
}

/// Draws a stat panel: one cell per series with its reduced value, coloured by thresholds.
pub fn draw_stat<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    let pen = Pen::new(area, opts)?;
    pen.clear()?;
    if data.series.is_empty() {
        return no_data(&pen, data);
    }
    let th = thresholds(opts);
    let gap = pen.px(4.0);
    let cells = grid(data.series.len(), pen.w, pen.h, 2.0);
    for (s, &(x, y, w, h)) in data.series.iter().zip(&cells) {
        let value = opts.calc.apply(&s.points);
        let color = value.map_or(pen.pal.muted, |v| color_or_text(th.color_for(v), opts.theme));
        let (x0, y0, x1, y1) = (x + gap / 2.0, y + gap / 2.0, x + w - gap / 2.0, y + h - gap / 2.0);
        let (cw, ch) = (x1 - x0, y1 - y0);
        if cw < 2.0 || ch < 2.0 {
            continue;
        }
        let (fg, spark) = match opts.color_mode {
            ColorMode::Background if value.is_some() => {
                pen.rect(x0, y0, x1, y1, color)?;
                (on(color), RGBAColor(255, 255, 255, 0.25))
            }
            ColorMode::None => (pen.pal.text, RGBAColor(color.0, color.1, color.2, 0.15)),
            _ => (color, RGBAColor(color.0, color.1, color.2, 0.15)),
        };
        if opts.sparkline && value.is_some() {
            sparkline(&pen, s, data, (x0, y0 + ch * 0.55, cw, ch * 0.45), spark)?;
        }
        let mut top = y0;
        if data.series.len() > 1 && !s.name.is_empty() {
            let size = (ch * 0.14).clamp(pen.px(8.0), pen.px(14.0));
            let name = fit_text(&s.name, size, cw - gap * 2.0);
            pen.text_px(&name, x0 + cw / 2.0, y0 + gap, size, fg, HPos::Center, VPos::Top, false)?;
            top += size + gap;
        }
        let text = match value {
            Some(v) => units::format_parts(v, &opts.unit, opts.decimals.into()).to_string(),
            None => "No data".to_string(),
        };
        let avail_h = if opts.sparkline { (y1 - top) * 0.6 } else { y1 - top };
        let size = fit_size(&text, cw * 0.9, avail_h * 0.8).min(pen.px(96.0));
        let cy = if opts.sparkline { top + (y1 - top) * 0.35 } else { (top + y1) / 2.0 };
        let fg = if value.is_some() { fg } else { pen.pal.muted };
        pen.text_px(&text, x0 + cw / 2.0, cy, size, fg, HPos::Center, VPos::Center, true)?;
    }
    Ok(whole(&pen, data))
}

/// The series as a filled area in `cell`, scaled to its own min..max.
fn sparkline<DB: DrawingBackend>(
    pen: &Pen<DB>,
    s: &Series,
    data: &PanelData,
    (x, y, w, h): Cell,
    color: RGBAColor,
) -> Result<(), ChartError> {
    let stats = super::legend_stats(&s.points);
    let (Some(lo), Some(hi)) = (stats.min, stats.max) else { return Ok(()) };
    let (t0, t1) = if data.end_ms > data.start_ms {
        (data.start_ms, data.end_ms)
    } else {
        match (s.points.first(), s.points.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => (a.0, b.0),
            _ => return Ok(()),
        }
    };
    let span_t = t1 as f64 - t0 as f64;
    let span_v = hi / 2.0 - lo / 2.0;
    let mut pts: Vec<(i32, i32)> = Vec::new();
    let mut last_x = i32::MIN;
    for &(t, v) in &s.points {
        if !v.is_finite() || t < t0 || t > t1 {
            continue;
        }
        let px = ip(x + (t as f64 - t0 as f64) / span_t * w);
        if px == last_x {
            continue;
        }
        last_x = px;
        let f = if span_v > 0.0 { (v / 2.0 - lo / 2.0) / span_v } else { 0.5 };
        pts.push((px, ip(y + h - f * h * 0.9)));
    }
    if pts.len() < 2 {
        return Ok(());
    }
    let line = pts.clone();
    if let (Some(a), Some(b)) = (pts.first().copied(), pts.last().copied()) {
        pts.push((b.0, ip(y + h)));
        pts.push((a.0, ip(y + h)));
    }
    pen.polygon(pts, color)?;
    pen.line(line, RGBAColor(color.0, color.1, color.2, (color.3 * 3.0).min(0.8)), 1.0)
}

/// The gauge/bar gauge scale: the panel's min/max, else 0 (or the lowest value) up to 100 for
/// percentages, 1 for ratios, or the highest value.
fn scale(opts: &ChartOptions, values: &[Option<f64>]) -> (f64, f64) {
    let lo_data = values.iter().flatten().copied().fold(f64::INFINITY, f64::min);
    let hi_data = values.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    let lo = opts.min.filter(|m| m.is_finite()).unwrap_or(if lo_data < 0.0 { lo_data } else { 0.0 });
    let hi = opts.max.filter(|m| m.is_finite()).unwrap_or(match opts.unit.as_str() {
        "percent" => 100.0,
        "percentunit" => 1.0,
        _ if hi_data.is_finite() && hi_data > lo => hi_data,
        _ => lo + 100.0,
    });
    if hi > lo && (hi / 2.0 - lo / 2.0).is_finite() {
        (lo, hi)
    } else {
        (lo, lo + if lo == 0.0 { 1.0 } else { lo.abs() })
    }
}

fn fraction(v: f64, (lo, hi): (f64, f64)) -> f64 {
    let f = (v / 2.0 - lo / 2.0) / (hi / 2.0 - lo / 2.0);
    if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Threshold bands clipped to the scale: (from fraction, to fraction, colour).
fn bands(th: &Thresholds, range: (f64, f64), opts: &ChartOptions) -> Vec<(f64, f64, RGBAColor)> {
    let mut steps: Vec<(f64, &str)> =
        th.steps.iter().filter(|s| s.0.is_finite()).map(|s| (s.0, s.1.as_str())).collect();
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::new();
    let mut from = 0.0;
    let mut color = th.base_color.as_str();
    for (v, c) in steps {
        let f = fraction(v, range);
        if f > from {
            out.push((from, f, color_or_text(color, opts.theme)));
            from = f;
        }
        color = c;
    }
    if from < 1.0 {
        out.push((from, 1.0, color_or_text(color, opts.theme)));
    }
    out
}

/// Gauge arc angle (radians, counter-clockwise from 3 o'clock) at fraction `f`: a 240° sweep
/// from lower left to lower right.
fn angle(f: f64) -> f64 {
    (210.0 - 240.0 * f) * PI / 180.0
}

/// A filled ring sector between radii `r0 < r1` from fraction `f0` to `f1`.
#[allow(clippy::too_many_arguments)]
fn ring<DB: DrawingBackend>(
    pen: &Pen<DB>,
    cx: f64,
    cy: f64,
    r0: f64,
    r1: f64,
    f0: f64,
    f1: f64,
    color: RGBAColor,
) -> Result<(), ChartError> {
    if f1 <= f0 || r1 <= r0 {
        return Ok(());
    }
    let n = ((f1 - f0) * 120.0).ceil().max(2.0) as usize;
    let at = |r: f64, f: f64| (ip(cx + r * angle(f).cos()), ip(cy - r * angle(f).sin()));
    let mut pts: Vec<(i32, i32)> = (0..=n).map(|i| at(r1, f0 + (f1 - f0) * i as f64 / n as f64)).collect();
    pts.extend((0..=n).rev().map(|i| at(r0, f0 + (f1 - f0) * i as f64 / n as f64)));
    pen.polygon(pts, color)
}

/// Draws a gauge panel: per series an arc from the scale's min to its max, the value's part
/// in its threshold colour, the thresholds as a thin outer band.
pub fn draw_gauge<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    let pen = Pen::new(area, opts)?;
    pen.clear()?;
    if data.series.is_empty() {
        return no_data(&pen, data);
    }
    let th = thresholds(opts);
    let values: Vec<Option<f64>> = data.series.iter().map(|s| opts.calc.apply(&s.points)).collect();
    let range = scale(opts, &values);
    let bands = bands(&th, range, opts);
    let cells = grid(data.series.len(), pen.w, pen.h, 1.2);
    let named = data.series.len() > 1;
    for ((s, value), &(x, y, w, h)) in data.series.iter().zip(&values).zip(&cells) {
        let name_h = if named { (h * 0.12).clamp(pen.px(9.0), pen.px(14.0)) } else { 0.0 };
        let pad = pen.px(6.0);
        let (w_in, h_in) = (w - 2.0 * pad, h - 2.0 * pad - name_h);
        // The 240° arc is 1.5 radii tall.
        let r = (w_in / 2.0).min(h_in / 1.5);
        if r < 2.0 {
            continue;
        }
        let cx = x + w / 2.0;
        let cy = y + pad + (h_in - 1.5 * r) / 2.0 + r;
        let band = r * 0.06;
        let thick = r * 0.2;
        let r_arc = r - band * 2.0;
        for &(f0, f1, c) in &bands {
            ring(&pen, cx, cy, r - band, r, f0, f1, c)?;
        }
        ring(&pen, cx, cy, r_arc - thick, r_arc, 0.0, 1.0, pen.pal.track)?;
        let inner = r_arc - thick;
        match value {
            Some(v) => {
                let color = color_or_text(th.color_for(*v), opts.theme);
                ring(&pen, cx, cy, r_arc - thick, r_arc, 0.0, fraction(*v, range), color)?;
                let text = units::format_value(*v, &opts.unit, opts.decimals);
                let size = fit_size(&text, inner * 1.5, inner * 0.6);
                pen.text_px(&text, cx, cy, size, color, HPos::Center, VPos::Center, true)?;
            }
            None => {
                pen.text("No data", cx, cy, 12.0, pen.pal.muted, HPos::Center, VPos::Center)?;
            }
        }
        if named {
            let name = fit_text(&s.name, name_h, w - 2.0 * pad);
            let ny = (cy + r * 0.5 + pad).min(y + h - name_h - pad / 2.0);
            pen.text_px(&name, cx, ny, name_h, pen.pal.text, HPos::Center, VPos::Top, false)?;
        }
    }
    Ok(whole(&pen, data))
}

/// Draws a bar gauge: a horizontal bar per series over the scale, filled to its value in the
/// threshold colour, the value at the right.
pub fn draw_bargauge<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    let pen = Pen::new(area, opts)?;
    pen.clear()?;
    if data.series.is_empty() {
        return no_data(&pen, data);
    }
    let th = thresholds(opts);
    let values: Vec<Option<f64>> = data.series.iter().map(|s| opts.calc.apply(&s.points)).collect();
    let range = scale(opts, &values);
    let texts: Vec<String> = values
        .iter()
        .map(|v| {
            v.map_or_else(|| "No data".to_string(), |v| units::format_value(v, &opts.unit, opts.decimals))
        })
        .collect();
    let pad = pen.px(6.0);
    let n = data.series.len() as f64;
    let row = (pen.h - 2.0 * pad) / n;
    let font = (row * 0.35).clamp(pen.px(8.0), pen.px(16.0));
    // Names above the bars when rows are tall enough, else in a column on the left.
    let names_above = row >= font * 2.6;
    let name_w = if names_above { 0.0 } else { (pen.w * 0.3).min(pen.px(200.0)) };
    let value_font =
        if names_above { (row - font) * 0.6 } else { row * 0.6 }.clamp(pen.px(8.0), pen.px(28.0));
    let value_w = texts.iter().map(|t| text_width(t, value_font)).fold(0.0, f64::max) + pen.px(8.0);
    let bar_x0 = pad + name_w;
    let bar_x1 = (pen.w - pad - value_w).max(bar_x0 + 1.0);
    for (i, (s, value)) in data.series.iter().zip(&values).enumerate() {
        let y = pad + i as f64 * row;
        let (by0, by1) = if names_above {
            let name = fit_text(&s.name, font, pen.w - 2.0 * pad);
            pen.text_px(&name, pad, y + font * 0.1, font, pen.pal.text, HPos::Left, VPos::Top, false)?;
            (y + font * 1.3, y + row - pen.px(3.0))
        } else {
            let name = fit_text(&s.name, font, name_w - pen.px(6.0));
            pen.text_px(&name, pad, y + row / 2.0, font, pen.pal.text, HPos::Left, VPos::Center, false)?;
            (y + pen.px(2.0), y + row - pen.px(2.0))
        };
        if by1 - by0 < 1.0 {
            continue;
        }
        pen.rect(bar_x0, by0, bar_x1, by1, pen.pal.track)?;
        let color = value.map_or(pen.pal.muted, |v| color_or_text(th.color_for(v), opts.theme));
        if let Some(v) = value {
            let x = bar_x0 + (bar_x1 - bar_x0) * fraction(*v, range);
            // Grafana's gradient mode: faded at the start, the threshold colour at the end;
            // a handful of steps reads as a gradient and works on every backend.
            const STEPS: usize = 12;
            let w = (x - bar_x0) / STEPS as f64;
            for k in 0..STEPS {
                let fade = 0.55 * (1.0 - k as f64 / (STEPS - 1) as f64);
                let sx = bar_x0 + w * k as f64;
                pen.rect(sx, by0, sx + w + 0.5, by1, mix(color, pen.pal.background, fade))?;
            }
        }
        let text = &texts[i];
        pen.text_px(
            text,
            pen.w - pad,
            (by0 + by1) / 2.0,
            value_font,
            color,
            HPos::Right,
            VPos::Center,
            true,
        )?;
    }
    Ok(whole(&pen, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_prefers_wanted_aspect() {
        assert_eq!(grid(1, 400.0, 200.0, 2.0), vec![(0.0, 0.0, 400.0, 200.0)]);
        let g = grid(4, 800.0, 200.0, 2.0);
        assert_eq!(g.len(), 4);
        assert!(g.iter().all(|c| c.3 == 200.0), "one row of four: {g:?}");
        let g = grid(3, 200.0, 600.0, 2.0);
        assert!(g.iter().all(|c| c.2 == 200.0), "one column: {g:?}");
    }

    #[test]
    fn gauge_scale_defaults() {
        let o = ChartOptions { unit: "percent".into(), ..ChartOptions::default() };
        assert_eq!(scale(&o, &[Some(42.0)]), (0.0, 100.0));
        let o = ChartOptions::default();
        assert_eq!(scale(&o, &[Some(5.0), Some(7.0)]), (0.0, 7.0));
        assert_eq!(scale(&o, &[None]), (0.0, 100.0));
        let o = ChartOptions { min: Some(10.0), max: Some(10.0), ..ChartOptions::default() };
        assert_eq!(scale(&o, &[Some(10.0)]), (10.0, 20.0));
        assert_eq!(fraction(150.0, (0.0, 100.0)), 1.0);
        assert_eq!(fraction(f64::NAN, (0.0, 100.0)), 0.0);
    }

    #[test]
    fn bands_cover_the_scale() {
        let th = Thresholds {
            base_color: "green".into(),
            steps: vec![(80.0, "red".into()), (50.0, "orange".into())],
        };
        let b = bands(&th, (0.0, 100.0), &ChartOptions::default());
        let spans: Vec<(f64, f64)> = b.iter().map(|b| (b.0, b.1)).collect();
        assert_eq!(spans, vec![(0.0, 0.5), (0.5, 0.8), (0.8, 1.0)]);
    }
}
