//! The time series panel: grid, axes, one line (or bars, or points) per series with gaps where
//! samples are missing, optional area fill and legend.
//!
//! Lines are thinned before they reach the backend: per pixel column only the first, lowest,
//! highest and last sample survive (the M4 reduction), which draws the same pixels as the full
//! line while keeping a 2,000-sample series to at most four points per column.

use super::colors::color_or_text;
use super::ticks::{auto_range, time_label, time_ticks, value_ticks};
use super::{
    fit_text, ip, text_width, units, ChartError, ChartOptions, DrawStyle, Interpolation, PanelData, Pen,
    PlotGeometry, Series, ThresholdStyle,
};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::RGBAColor;

/// Axis and legend text size, CSS pixels.
pub(crate) const FONT: f64 = 11.0;

/// Draws a time series panel and returns where its plot landed.
pub fn draw_timeseries<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    let pen = Pen::new(area, opts)?;
    pen.clear()?;
    let stacked;
    let data = if opts.stack {
        stacked = stack(data);
        &stacked
    } else {
        data
    };
    let (start, end) = time_range(data);
    let fpx = pen.px(FONT);
    let pad = pen.px(6.0);

    let legend = if opts.show_legend && !data.series.is_empty() {
        legend_layout(data, fpx, pen.w - 2.0 * pad, (pen.h * 0.3).max(fpx * 1.5), pen.s)
    } else {
        Vec::new()
    };
    let row_h = pen.px(17.0);
    let legend_h = legend.len() as f64 * row_h;
    let top = pad + fpx * 0.5;
    let bottom = (pen.h - pad - legend_h - fpx - pen.px(10.0)).max(top + 1.0);

    let log_base = opts.log_base.filter(|b| b.is_finite() && *b > 1.0);
    let (dmin, dmax, any) =
        value_extent(data, start, end, opts.draw_style == DrawStyle::Bars && log_base.is_none());
    let max_yticks = ((bottom - top) / pen.px(28.0)).floor().clamp(1.0, 12.0) as usize;
    let (y_min, y_max, ylabels) = match log_base {
        Some(b) => log_axis(data, start, end, opts, b, max_yticks),
        None => linear_axis(if any { (dmin, dmax) } else { (0.0, 1.0) }, opts, max_yticks),
    };
    let label_w = ylabels.iter().map(|(_, l)| text_width(l, fpx)).fold(0.0, f64::max);
    let left = (pad + label_w + pen.px(6.0)).min(pen.w * 0.5);
    let right = (pen.w - pad).max(left + 1.0);

    let geo = PlotGeometry {
        left,
        top,
        width: right - left,
        height: bottom - top,
        start_ms: start,
        end_ms: end,
        y_min,
        y_max,
        log_base,
    };

    // Grid and value axis.
    for (v, label) in &ylabels {
        let y = geo.y_of(*v);
        pen.hline(left, right, y, pen.pal.grid)?;
        // The lowest label rides up to stay clear of the time labels below the plot.
        let ly = y.min(bottom - fpx * 0.5);
        pen.text(label, left - pen.px(6.0), ly, FONT, pen.pal.muted, HPos::Right, VPos::Center)?;
    }

    time_axis(&pen, &geo, opts)?;

    let bands = threshold_bands(opts);
    if matches!(opts.threshold_style, ThresholdStyle::Area | ThresholdStyle::LineAndArea) {
        for &(lo, hi, c) in &bands {
            let (y0, y1) = (geo.y_of(hi.min(y_max)), geo.y_of(lo.max(y_min)));
            if y1 > y0 {
                pen.rect(left, y0, right, y1, RGBAColor(c.0, c.1, c.2, 0.12))?;
            }
        }
    }

    if !any {
        let cx = left + geo.width / 2.0;
        let cy = top + geo.height / 2.0;
        pen.text("No data", cx, cy, 16.0, pen.pal.muted, HPos::Center, VPos::Center)?;
    } else {
        for (i, s) in data.series.iter().enumerate() {
            let color = opts.series_rgba(i, &s.name);
            draw_series(&pen, &geo, &s.points, data.step_ms, color, opts)?;
        }
    }
    if matches!(
        opts.threshold_style,
        ThresholdStyle::Line | ThresholdStyle::Dashed | ThresholdStyle::LineAndArea
    ) {
        // Each band's lower edge is a step; the base band's is -∞ and gets no line.
        for &(lo, _, c) in bands.iter().filter(|b| b.0 > y_min && b.0 < y_max) {
            let y = geo.y_of(lo);
            let c = RGBAColor(c.0, c.1, c.2, 0.8);
            if opts.threshold_style == ThresholdStyle::Dashed {
                let (dash, gap) = (pen.px(6.0), pen.px(4.0));
                let mut x = left;
                while x < right {
                    pen.hline(x, (x + dash).min(right), y, c)?;
                    x += dash + gap;
                }
            } else {
                pen.hline(left, right, y, c)?;
            }
        }
    }

    let mut y = bottom + fpx + pen.px(10.0);
    for row in &legend {
        for item in row {
            let cy = y + row_h / 2.0;
            let x = pad + item.x;
            let Some(index) = item.index else {
                pen.text(&item.text, x, cy, FONT, pen.pal.muted, HPos::Left, VPos::Center)?;
                continue;
            };
            let color = data.series.get(index).map_or(pen.pal.text, |s| opts.series_rgba(index, &s.name));
            pen.rect(x, cy - pen.px(1.5), x + pen.px(14.0), cy + pen.px(1.5), color)?;
            pen.text(&item.text, x + pen.px(18.0), cy, FONT, pen.pal.text, HPos::Left, VPos::Center)?;
        }
        y += row_h;
    }
    Ok(geo)
}

/// Value axis range and labelled ticks for data spanning `dmin..=dmax`.
fn linear_axis(
    (dmin, dmax): (f64, f64),
    opts: &ChartOptions,
    max_ticks: usize,
) -> (f64, f64, Vec<(f64, String)>) {
    // Soft limits widen the range the data would give, never narrow it.
    let dmin = opts.soft_min.filter(|m| m.is_finite()).map_or(dmin, |m| dmin.min(m));
    let dmax = opts.soft_max.filter(|m| m.is_finite()).map_or(dmax, |m| dmax.max(m));
    // Ticks are chosen in the unit's display scale (MiB for a bytes axis) so they read round.
    let k = units::tick_scale(&opts.unit, dmin.abs().max(dmax.abs()));
    let (y_min, y_max) =
        auto_range(dmin / k, dmax / k, opts.min.map(|m| m / k), opts.max.map(|m| m / k), max_ticks);
    let yt = value_ticks(y_min, y_max, max_ticks);
    // A panel's fixed decimals apply to its axis too, as in Grafana.
    let dec = opts.decimals.map_or(units::Decimals::Step(yt.step * k), units::Decimals::Fixed);
    let labels =
        yt.values().map(|v| (v * k, units::format_parts(v * k, &opts.unit, dec).to_string())).collect();
    (y_min * k, y_max * k, labels)
}

/// A log axis from the power of `base` at or below the smallest positive sample to the one at
/// or above the largest; ticks on powers (thinned to fit), with 2× and 5× between powers of
/// ten when the axis spans two decades or less.
fn log_axis(
    data: &PanelData,
    start: i64,
    end: i64,
    opts: &ChartOptions,
    base: f64,
    max_ticks: usize,
) -> (f64, f64, Vec<(f64, String)>) {
    let mut lo = f64::INFINITY;
    let mut hi = 0.0f64;
    for s in &data.series {
        for &(t, v) in &s.points {
            if v.is_finite() && v > 0.0 && t >= start && t <= end {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    let lb = base.ln();
    let (mut e0, mut e1) =
        if lo <= hi { ((lo.ln() / lb).floor(), (hi.ln() / lb).ceil()) } else { (0.0, 1.0) };
    if let Some(m) = opts.min.filter(|m| m.is_finite() && *m > 0.0) {
        e0 = m.ln() / lb;
    }
    if let Some(m) = opts.max.filter(|m| m.is_finite() && *m > 0.0) {
        e1 = m.ln() / lb;
    }
    // f64 spans about ±1075 binary orders; keep the powers representable and the axis non-empty.
    let limit = 1000.0 / lb.max(0.1) * std::f64::consts::LN_2;
    e0 = e0.clamp(-limit, limit);
    e1 = e1.clamp(-limit, limit);
    if e1 <= e0 {
        e1 = e0 + 1.0;
    }
    let (y_min, y_max) = (base.powf(e0), base.powf(e1));
    let decades = (e1.floor() - e0.ceil() + 1.0).max(1.0);
    let every = (decades / max_ticks.max(1) as f64).ceil().max(1.0) as i64;
    let mut labels = Vec::new();
    let mut e = e0.ceil() as i64;
    while (e as f64) <= e1 && labels.len() < 64 {
        if e.rem_euclid(every) == 0 {
            let v = base.powi(e as i32);
            labels.push((v, units::format_tick(v, v, &opts.unit)));
            if base == 10.0 && decades <= 2.0 {
                for m in [2.0, 5.0] {
                    let w = v * m;
                    if w <= y_max {
                        labels.push((w, units::format_tick(w, w, &opts.unit)));
                    }
                }
            }
        }
        e += 1;
    }
    (y_min, y_max, labels)
}

/// Threshold bands `(from, to, colour)` in value order, the base band from -∞.
fn threshold_bands(opts: &ChartOptions) -> Vec<(f64, f64, RGBAColor)> {
    let Some(th) = &opts.thresholds else { return Vec::new() };
    let mut steps: Vec<&(f64, String)> = th.steps.iter().filter(|s| s.0.is_finite()).collect();
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::with_capacity(steps.len() + 1);
    let mut from = f64::NEG_INFINITY;
    let mut color = th.base_color.as_str();
    for s in steps {
        out.push((from, s.0, color_or_text(color, opts.theme)));
        from = s.0;
        color = &s.1;
    }
    out.push((from, f64::INFINITY, color_or_text(color, opts.theme)));
    out
}

/// Grafana's normal stacking: each series' samples carry the sum of the series before it at
/// the same timestamp. Gaps stay gaps.
fn stack(data: &PanelData) -> PanelData {
    let mut sums: std::collections::HashMap<i64, f64> = std::collections::HashMap::new();
    let series = data
        .series
        .iter()
        .map(|s| Series {
            name: s.name.clone(),
            points: s
                .points
                .iter()
                .map(|&(t, v)| {
                    if !v.is_finite() {
                        return (t, v);
                    }
                    let sum = sums.entry(t).or_insert(0.0);
                    *sum += v;
                    (t, *sum)
                })
                .collect(),
        })
        .collect();
    PanelData { series, digest: Vec::new(), ..*data }
}

/// Vertical grid lines and time labels under the plot, as many as the labels fit.
pub(crate) fn time_axis<DB: DrawingBackend>(
    pen: &Pen<DB>,
    geo: &PlotGeometry,
    opts: &ChartOptions,
) -> Result<(), ChartError> {
    let fpx = pen.px(FONT);
    let (start, end) = (geo.start_ms, geo.end_ms);
    let (top, bottom) = (geo.top, geo.top + geo.height);
    let range = end.saturating_sub(start);
    let offset = opts.offset_ms();
    let sample = time_label(start, range, if range < 86_400_000 { 60_000 } else { 3_600_000 }, offset);
    let slot = text_width(&sample, fpx) + pen.px(24.0);
    let max_xticks = (geo.width / slot).floor().clamp(1.0, 30.0) as usize;
    let (xticks, xstep) = time_ticks(start, end, max_xticks, offset);
    for t in xticks {
        let x = geo.x_of(t);
        pen.vline(x, top, bottom, pen.pal.grid)?;
        let label = time_label(t, range, xstep, offset);
        let half = text_width(&label, fpx) / 2.0;
        if x - half >= 0.0 && x + half <= pen.w {
            pen.text(&label, x, bottom + pen.px(4.0), FONT, pen.pal.muted, HPos::Center, VPos::Top)?;
        }
    }
    Ok(())
}

/// The panel's time range, falling back to the samples' span when the caller left it empty.
pub(crate) fn time_range(data: &PanelData) -> (i64, i64) {
    if data.end_ms > data.start_ms {
        return (data.start_ms, data.end_ms);
    }
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for s in &data.series {
        if let (Some(a), Some(b)) = (s.points.first(), s.points.last()) {
            lo = lo.min(a.0);
            hi = hi.max(b.0);
        }
    }
    if lo < hi {
        (lo, hi)
    } else if lo == hi {
        (lo.saturating_sub(30_000), lo.saturating_add(30_000))
    } else {
        (data.start_ms, data.start_ms.saturating_add(1))
    }
}

/// Min and max of the finite samples inside the time range; bars also need zero in view.
fn value_extent(data: &PanelData, start: i64, end: i64, with_zero: bool) -> (f64, f64, bool) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in &data.series {
        for &(t, v) in &s.points {
            if v.is_finite() && t >= start && t <= end {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    let any = lo <= hi;
    if any && with_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    (lo, hi, any)
}

/// The spacing that counts as "no gap": the query step, or the smallest spacing seen.
pub(crate) fn effective_step(points: &[(i64, f64)], step_ms: i64) -> i64 {
    if step_ms > 0 {
        return step_ms;
    }
    points.windows(2).map(|w| w[1].0.saturating_sub(w[0].0)).filter(|d| *d > 0).min().unwrap_or(0)
}

/// Index ranges of the unbroken runs of `points` inside `start..=end`: a NaN/Inf sample or a
/// spacing over 1.5 steps starts a new run (a series that went stale leaves a hole).
pub(crate) fn segments(points: &[(i64, f64)], step_ms: i64, start: i64, end: i64) -> Vec<(usize, usize)> {
    let step = effective_step(points, step_ms);
    let max_gap = if step > 0 { step.saturating_mul(3) / 2 } else { i64::MAX };
    let mut out = Vec::new();
    let mut run: Option<usize> = None;
    let mut prev_t = i64::MIN;
    for (i, &(t, v)) in points.iter().enumerate() {
        let usable = v.is_finite() && t >= start && t <= end;
        if let Some(b) = run {
            if !usable || t.saturating_sub(prev_t) > max_gap {
                out.push((b, i));
                run = None;
            }
        }
        if usable {
            if run.is_none() {
                run = Some(i);
            }
            prev_t = t;
        }
    }
    if let Some(b) = run {
        out.push((b, points.len()));
    }
    out
}

/// Grafana's step interpolations: hold each value until the next sample (after) or take the
/// next value from the previous sample on (before).
fn steps(pts: Vec<Px>, how: Interpolation) -> Vec<Px> {
    if how == Interpolation::Linear || pts.len() < 2 {
        return pts;
    }
    let mut out = Vec::with_capacity(pts.len() * 2);
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        out.push(a);
        out.push(if how == Interpolation::StepAfter { (b.0, a.1) } else { (a.0, b.1) });
    }
    if let Some(&last) = pts.last() {
        out.push(last);
    }
    out
}

/// A point in pixels, not yet rounded.
type Px = (f64, f64);

/// A pixel column being collected: its x, first point, (lowest-y point, index),
/// (highest-y point, index), last point.
type Column = (i32, Px, (Px, usize), (Px, usize), Px);

/// Drops points that lie within `tol` pixels of the line the kept points draw anyway
/// (Reumann–Witkam: a strip along the direction from the last kept point; the point before
/// the first one leaving the strip is kept). It runs before rounding to whole pixels: smooth
/// curves shrink to a few points per bend, where rounded points would zigzag out of the strip
/// at every pixel step. That keeps a server-rendered SVG of a busy panel small; the drawn line
/// stays within `tol` + 0.5 px of the samples, as when rounding came first.
pub(crate) fn simplify(pts: Vec<Px>, tol: f64) -> Vec<Px> {
    if pts.len() <= 2 {
        return pts;
    }
    let mut out = Vec::with_capacity(pts.len() / 4 + 2);
    let mut anchor = pts[0];
    out.push(anchor);
    // Direction of the strip: from the anchor to the first point after it.
    let mut dir = pts[1];
    // How far along the strip the line has reached; a point that turns back (a spike's
    // return in one pixel column) leaves the strip too, or the spike's tip would be lost.
    let mut reach = 0.0f64;
    for i in 2..pts.len() {
        let p = pts[i];
        let (dx, dy) = (dir.0 - anchor.0, dir.1 - anchor.1);
        let (px, py) = (p.0 - anchor.0, p.1 - anchor.1);
        // Pixel offsets: no overflow for hypot to guard against, and sqrt is one instruction.
        let len = (dx * dx + dy * dy).sqrt();
        if len == 0.0 {
            dir = p;
            continue;
        }
        reach = reach.max(len);
        let off = (dx * py - dy * px).abs() / len;
        let along = (dx * px + dy * py) / len;
        if off > tol || along < reach - tol {
            anchor = pts[i - 1];
            out.push(anchor);
            dir = p;
            reach = 0.0;
        } else {
            reach = reach.max(along);
        }
    }
    if let Some(&last) = pts.last() {
        if out.last() != Some(&last) {
            out.push(last);
        }
    }
    out
}

/// Points rounded to whole pixels, repeats dropped.
fn to_pixels(pts: Vec<Px>) -> Vec<(i32, i32)> {
    let mut out: Vec<(i32, i32)> = Vec::with_capacity(pts.len());
    for (x, y) in pts {
        let p = (ip(x), ip(y));
        if out.last() != Some(&p) {
            out.push(p);
        }
    }
    out
}

/// The run in pixels, thinned to first/min/max/last per pixel column.
fn thin_pixels(run: &[(i64, f64)], geo: &PlotGeometry) -> Vec<Px> {
    let top = geo.top;
    let bottom = geo.top + geo.height;
    let mut out: Vec<Px> = Vec::with_capacity(run.len().min(4 * geo.width as usize + 4));
    let mut col: Option<Column> = None;
    let push = |out: &mut Vec<Px>, p: Px| {
        if out.last() != Some(&p) {
            out.push(p);
        }
    };
    let flush = |out: &mut Vec<Px>, c: Column| {
        let (_, first, lo, hi, last) = c;
        push(out, first);
        let (a, b) = if lo.1 <= hi.1 { (lo.0, hi.0) } else { (hi.0, lo.0) };
        push(out, a);
        push(out, b);
        push(out, last);
    };
    for (i, &(t, v)) in run.iter().enumerate() {
        let x = geo.x_of(t);
        let p = (x, geo.y_of(v).clamp(top, bottom));
        let column = ip(x);
        col = match col {
            Some((cx, first, lo, hi, _)) if cx == column => {
                let lo = if p.1 < lo.0 .1 { (p, i) } else { lo };
                let hi = if p.1 > hi.0 .1 { (p, i) } else { hi };
                Some((cx, first, lo, hi, p))
            }
            other => {
                if let Some(c) = other {
                    flush(&mut out, c);
                }
                Some((column, p, (p, i), (p, i), p))
            }
        };
    }
    if let Some(c) = col {
        flush(&mut out, c);
    }
    out
}

fn draw_series<DB: DrawingBackend>(
    pen: &Pen<DB>,
    geo: &PlotGeometry,
    points: &[(i64, f64)],
    step_ms: i64,
    color: RGBAColor,
    opts: &ChartOptions,
) -> Result<(), ChartError> {
    let finite: Vec<(i64, f64)>;
    let (points, step_ms) = if opts.connect_gaps {
        // Grafana's spanNulls: missing and NaN samples are skipped, the line carries on.
        finite = points.iter().copied().filter(|p| p.1.is_finite()).collect();
        (finite.as_slice(), i64::MAX / 2)
    } else {
        (points, step_ms)
    };
    let runs = segments(points, step_ms, geo.start_ms, geo.end_ms);
    let base = ip(geo.y_of(0f64.clamp(geo.y_min, geo.y_max)));
    let fill = (opts.fill_opacity / 100.0).clamp(0.0, 1.0);
    let lw = if opts.line_width.is_finite() { opts.line_width.clamp(0.0, 10.0) } else { 1.0 };
    match opts.draw_style {
        DrawStyle::Line => {
            for (a, b) in runs {
                let px = to_pixels(simplify(
                    steps(thin_pixels(&points[a..b], geo), opts.interpolation),
                    0.5 * pen.s,
                ));
                if fill > 0.0 && px.len() > 1 {
                    let mut poly = px.clone();
                    if let (Some(f), Some(l)) = (px.first(), px.last()) {
                        poly.push((l.0, base));
                        poly.push((f.0, base));
                    }
                    pen.polygon(poly, RGBAColor(color.0, color.1, color.2, fill))?;
                }
                if px.len() == 1 {
                    // A lone sample between gaps has no line to draw: show it as a dot.
                    let (x, y) = px[0];
                    pen.circle(f64::from(x), f64::from(y), lw + 1.0, color)?;
                } else if lw > 0.0 {
                    pen.line(px, color, lw)?;
                }
            }
        }
        DrawStyle::Bars => {
            let step = effective_step(points, step_ms).max(1) as f64;
            let span = (geo.end_ms as f64 - geo.start_ms as f64).max(1.0);
            let bar_w = (step / span * geo.width * 0.7).max(1.0);
            let alpha = if fill > 0.0 { fill.max(0.2) } else { 0.8 };
            let c = RGBAColor(color.0, color.1, color.2, alpha);
            let mut last_x = i32::MIN;
            for (a, b) in runs {
                for &(t, v) in &points[a..b] {
                    let x = geo.x_of(t);
                    // Bars thinner than a pixel would paint the same column many times over.
                    if bar_w < 2.0 && ip(x) == last_x {
                        continue;
                    }
                    last_x = ip(x);
                    let y = geo.y_of(v).clamp(geo.top, geo.top + geo.height);
                    pen.rect(x - bar_w / 2.0, f64::from(base), x + bar_w / 2.0, y, c)?;
                }
            }
        }
        DrawStyle::Points => {
            let mut last = (i32::MIN, i32::MIN);
            for (a, b) in runs {
                for &(t, v) in &points[a..b] {
                    let p = (ip(geo.x_of(t)), ip(geo.y_of(v).clamp(geo.top, geo.top + geo.height)));
                    if p != last {
                        pen.circle(f64::from(p.0), f64::from(p.1), 2.5, color)?;
                        last = p;
                    }
                }
            }
        }
    }
    Ok(())
}

struct LegendItem {
    /// None for the "+N more" summary.
    index: Option<usize>,
    x: f64,
    text: String,
}

/// Legend entries flowed into rows no wider than `width` and no taller than `max_h`; what does
/// not fit is summed up as "+N more".
fn legend_layout(data: &PanelData, fpx: f64, width: f64, max_h: f64, s: f64) -> Vec<Vec<LegendItem>> {
    let row_h = 17.0 * s;
    let max_rows = ((max_h / row_h).floor() as usize).max(1);
    let swatch = 18.0 * s;
    let gap = 14.0 * s;
    let total = data.series.len();
    let mut rows: Vec<Vec<LegendItem>> = vec![Vec::new()];
    let mut shown_before = 0;
    let mut x = 0.0;
    for (i, series) in data.series.iter().enumerate() {
        let name = if series.name.is_empty() { "Value" } else { series.name.as_str() };
        let text = fit_text(name, fpx, (width * 0.6 - swatch).max(fpx));
        let w = swatch + text_width(&text, fpx);
        if x > 0.0 && x + w > width {
            if rows.len() < max_rows {
                shown_before += rows.last().map_or(0, Vec::len);
                rows.push(Vec::new());
                x = 0.0;
            } else if let Some(row) = rows.last_mut() {
                // Drop entries from the last row until the summary fits after them.
                loop {
                    let end_x = row.last().map_or(0.0, |it| it.x + swatch + text_width(&it.text, fpx) + gap);
                    let more = format!("+{} more", total - shown_before - row.len());
                    if end_x + text_width(&more, fpx) <= width || row.len() <= 1 {
                        row.push(LegendItem { index: None, x: end_x, text: more });
                        return rows;
                    }
                    row.pop();
                }
            }
        }
        if let Some(row) = rows.last_mut() {
            row.push(LegendItem { index: Some(i), x, text });
        }
        x += w + gap;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::simplify;

    #[test]
    fn simplify_keeps_shape() {
        let f =
            |v: Vec<(i32, i32)>| v.into_iter().map(|(x, y)| (f64::from(x), f64::from(y))).collect::<Vec<_>>();
        let straight: Vec<(i32, i32)> = (0..100).map(|x| (x, 2 * x)).collect();
        assert_eq!(simplify(f(straight), 0.5), f(vec![(0, 0), (99, 198)]));
        // A spike inside one column keeps its tip.
        let spike = vec![(0, 100), (1, 100), (2, 100), (2, 10), (2, 100), (3, 100), (4, 100)];
        let out = simplify(f(spike), 0.5);
        assert!(out.contains(&(2.0, 10.0)), "{out:?}");
        assert_eq!(out.first(), Some(&(0.0, 100.0)));
        assert_eq!(out.last(), Some(&(4.0, 100.0)));
        let zigzag: Vec<(i32, i32)> = (0..10).map(|x| (x, if x % 2 == 0 { 0 } else { 10 })).collect();
        assert_eq!(simplify(f(zigzag.clone()), 0.5), f(zigzag));
        assert_eq!(simplify(f(vec![(1, 1), (1, 1), (1, 1)]), 0.5), f(vec![(1, 1)]));
    }

    #[test]
    fn a_smooth_curve_simplified_before_rounding_stays_within_a_pixel() {
        // A sine across 560 px sampled at 673 points: rounding first would leave a point at
        // nearly every pixel step.
        let pts: Vec<(f64, f64)> =
            (0..673).map(|i| (i as f64 * 560.0 / 672.0, 120.0 + 80.0 * (i as f64 / 40.0).sin())).collect();
        let out = simplify(pts.clone(), 0.5);
        assert!(out.len() * 4 < pts.len(), "{} points kept", out.len());
        let px = super::to_pixels(out);
        // Every sample is within 1 px (0.5 for the strip, 0.5 for rounding) of the drawn line.
        for &(x, y) in &pts {
            let d = px
                .windows(2)
                .map(|w| {
                    let (a, b) =
                        ((f64::from(w[0].0), f64::from(w[0].1)), (f64::from(w[1].0), f64::from(w[1].1)));
                    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                    let t = (((x - a.0) * dx + (y - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
                    ((a.0 + t * dx - x).powi(2) + (a.1 + t * dy - y).powi(2)).sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            assert!(d <= 1.0 + 1e-9, "({x}, {y}) is {d} px from the line");
        }
    }
}
