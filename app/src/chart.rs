//! Panel drawing for dashboards: time series, stat, gauge, bar gauge and heatmap panels drawn
//! with plotters onto any [`DrawingBackend`], so one code path paints the browser's `<canvas>`
//! (plotters-canvas, feature `hydrate`) and the server's first-frame SVG ([`render_svg`], always
//! built, which is also what the tests look at).
//!
//! The caller hands over [`PanelData`] (series already queried at a step, see [`choose_step`]
//! for Grafana's `$__interval` rule) and [`ChartOptions`] (the Grafana field config that
//! matters for drawing; build it with `..Default::default()`). [`draw_panel`] dispatches on
//! [`PanelKind`] to the drawers in `timeseries`, `single` (stat, gauge, bar gauge) and
//! `heatmap`; each lays out its own pixels through the small `Pen` wrapper, which scales every
//! size by the device pixel ratio and keeps text the same size on both backends. Value text
//! comes from [`units`] (Grafana unit ids), tick positions, time labels and the query step from
//! `ticks`, colours (classic palette, Grafana colour names, theme frame colours) from `colors`.
//! A draw returns a [`PlotGeometry`], the pixel↔time/value mapping the UI needs for hover
//! crosshairs, tooltips and drag-to-zoom; [`values_at`], [`legend_stats`],
//! [`ChartOptions::series_color`] and [`ChartOptions::format_time`] serve an HTML tooltip and
//! legend that match the drawing.
//!
//! Series lines are thinned to what the pixels can show before they reach the backend (per
//! column first/min/max/last, then points within half a pixel of the line dropped), so a
//! panel's cost and its SVG size follow its width and the data's detail, not the sample count.
//!
//! Text is never measured through plotters: with no font features plotters only estimates on
//! native and asks the DOM on wasm, so widths come from the `text_width` estimate and the
//! backends (SVG `<text>`, canvas `fillText`) render the glyphs themselves. That keeps font
//! rasterizers out of the wasm bundle.

mod b64;
mod colors;
mod heatmap;
mod single;
mod ticks;
mod timeseries;
pub mod units;

pub use colors::{color_css, palette, parse_color, series_color, Palette, CLASSIC_PALETTE};
pub use heatmap::{bucket_counts, bucket_le, draw_heatmap, Buckets};
pub use single::{draw_bargauge, draw_gauge, draw_stat};
pub use ticks::{choose_step, round_interval};
pub use timeseries::draw_timeseries;

use plotters::coord::Shift;
use plotters::element::{Circle, PathElement, Polygon, Rectangle};
use plotters::prelude::{DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontFamily, FontStyle, IntoFont, RGBAColor, ShapeStyle, TextStyle};
use serde::{Deserialize, Serialize};

/// One line of a panel: legend text and `(time in Unix ms, value)` samples in time order.
/// NaN values and missing steps are gaps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    #[serde(with = "compact_points")]
    pub points: Vec<(i64, f64)>,
}

/// Points on the wire. Query results sit on a step grid, so most series travel as
/// `{"t0":…,"dt":…,"b":"…"}`: the values only, as the base64 of their little-endian f64 bits
/// (NaN for a step without a point). That keeps every value exact (tooltips show them) in 10.7
/// characters instead of up to 24 of decimal JSON, and the browser decodes it without parsing
/// a float: the dashboard's page carries every panel's data to hydrate from, so this is most of
/// its bytes and much of its load time. Any other series travels as plain `[[t, v], …]` pairs.
/// Grids written as decimal values (`"v":[…]`, `null` for gaps) are read too.
mod compact_points {
    use std::fmt;

    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde::ser::{SerializeStruct, Serializer};

    pub fn serialize<S: Serializer>(points: &[(i64, f64)], s: S) -> Result<S::Ok, S::Error> {
        let dt = points.windows(2).map(|w| w[1].0 - w[0].0).filter(|&d| d > 0).min().unwrap_or(0);
        let slots = match (points.first(), points.last()) {
            (Some(a), Some(b)) if dt > 0 => (b.0 - a.0) / dt + 1,
            _ => 0,
        };
        // On a grid (gaps allowed, but not so many that they outweigh values), with only finite
        // values (NaN marks the gaps): values only. Otherwise the pairs.
        let grid = points.len() >= 3
            && slots <= 2 * points.len() as i64
            && points.windows(2).all(|w| w[1].0 > w[0].0 && (w[1].0 - w[0].0) % dt == 0)
            && points.iter().all(|p| p.1.is_finite());
        if !grid {
            return s.collect_seq(points);
        }
        let t0 = points[0].0;
        let mut bytes = vec![0u8; slots as usize * 8];
        for chunk in bytes.chunks_exact_mut(8) {
            chunk.copy_from_slice(&f64::NAN.to_le_bytes());
        }
        for &(t, x) in points {
            let i = ((t - t0) / dt) as usize * 8;
            bytes[i..i + 8].copy_from_slice(&x.to_le_bytes());
        }
        let mut st = s.serialize_struct("Grid", 3)?;
        st.serialize_field("t0", &t0)?;
        st.serialize_field("dt", &dt)?;
        st.serialize_field("b", &super::b64::encode(&bytes))?;
        st.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(i64, f64)>, D::Error> {
        d.deserialize_any(PointsVisitor)
    }

    /// Reads either form by its shape (a map is a grid, a sequence is pairs), without serde's
    /// untagged-enum buffering of the whole value.
    struct PointsVisitor;

    impl<'de> Visitor<'de> for PointsVisitor {
        type Value = Vec<(i64, f64)>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a grid {t0, dt, b} or a list of [t, v] pairs")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(p) = seq.next_element::<(i64, f64)>()? {
                out.push(p);
            }
            Ok(out)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut t0, mut dt) = (None::<i64>, None::<i64>);
            let mut values: Vec<Option<f64>> = Vec::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match key.as_ref() {
                    "t0" => t0 = Some(map.next_value()?),
                    "dt" => dt = Some(map.next_value()?),
                    "v" => values = map.next_value()?,
                    "b" => {
                        let text = map.next_value::<std::borrow::Cow<'de, str>>()?;
                        let bytes = super::b64::decode(&text)
                            .ok_or_else(|| de::Error::custom("points: bad base64"))?;
                        if !bytes.len().is_multiple_of(8) {
                            return Err(de::Error::custom("points: not a whole number of f64s"));
                        }
                        values = bytes
                            .chunks_exact(8)
                            .map(|c| {
                                let mut b = [0u8; 8];
                                b.copy_from_slice(c);
                                Some(f64::from_le_bytes(b)).filter(|v| !v.is_nan())
                            })
                            .collect();
                    }
                    _ => {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
            }
            let t0 = t0.ok_or_else(|| de::Error::missing_field("t0"))?;
            let dt = dt.ok_or_else(|| de::Error::missing_field("dt"))?;
            Ok(values.into_iter().enumerate().filter_map(|(i, v)| Some((t0 + i as i64 * dt, v?))).collect())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::Series;

        #[test]
        fn grid_series_travel_as_base64_values_and_come_back_equal() {
            let regular = Series { name: "a".into(), points: vec![(1000, 1.5), (2000, 2.0), (3000, -3.25)] };
            let json = serde_json::to_string(&regular).unwrap();
            assert_eq!(
                json,
                r#"{"name":"a","points":{"t0":1000,"dt":1000,"b":"AAAAAAAA+D8AAAAAAAAAQAAAAAAAAArA"}}"#
            );
            assert_eq!(serde_json::from_str::<Series>(&json).unwrap(), regular);
            // Every bit survives, where decimal text would need 17 digits.
            let exact =
                Series { name: "x".into(), points: vec![(0, 0.1 + 0.2), (10, 1e-300), (20, -f64::MAX)] };
            let json = serde_json::to_string(&exact).unwrap();
            assert_eq!(serde_json::from_str::<Series>(&json).unwrap(), exact);
            let gappy = Series { name: "b".into(), points: vec![(1000, 1.0), (2000, 2.0), (4000, 4.0)] };
            let json = serde_json::to_string(&gappy).unwrap();
            assert!(json.contains(r#""dt":1000,"b":""#), "{json}");
            assert_eq!(serde_json::from_str::<Series>(&json).unwrap(), gappy);
            let irregular = Series { name: "d".into(), points: vec![(1000, 1.0), (2300, 2.0), (3000, 4.0)] };
            let json = serde_json::to_string(&irregular).unwrap();
            assert!(json.contains("[[1000,1.0]"), "{json}");
            assert_eq!(serde_json::from_str::<Series>(&json).unwrap(), irregular);
            let nan = Series { name: "e".into(), points: vec![(1, 1.0), (2, f64::NAN), (3, 1.0)] };
            assert!(serde_json::to_string(&nan).unwrap().contains("[[1,1.0]"));
            let short = Series { name: "c".into(), points: vec![(5, 1.0)] };
            assert_eq!(
                serde_json::from_str::<Series>(&serde_json::to_string(&short).unwrap()).unwrap(),
                short
            );
        }

        #[test]
        fn decimal_grids_are_still_read_and_bad_payloads_refused() {
            let json = r#"{"name":"a","points":{"t0":1000,"dt":1000,"v":[1.0,2.0,null,4.0]}}"#;
            let s = serde_json::from_str::<Series>(json).unwrap();
            assert_eq!(s.points, vec![(1000, 1.0), (2000, 2.0), (4000, 4.0)]);
            assert!(serde_json::from_str::<Series>(r#"{"name":"a","points":{"t0":1,"dt":1,"b":"AAAA"}}"#)
                .is_err());
            assert!(serde_json::from_str::<Series>(r#"{"name":"a","points":{"dt":1,"b":""}}"#).is_err());
        }
    }
}

/// What a panel shows: its series over `start_ms..=end_ms`, queried every `step_ms`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PanelData {
    pub series: Vec<Series>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The query step; a sample missing for more than 1.5 steps breaks the line. 0 means
    /// unknown (the smallest spacing between samples is used instead).
    pub step_ms: i64,
    /// Set when the points were held back (the series carry none): one digest per series, what
    /// the legend and the panel's counts show until the points arrive. See [`PanelData::held_back`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digest: Vec<SeriesDigest>,
}

/// A series' legend figures without its points, exact to the bit (as f64 bits, so that the
/// browser's legend reads exactly what the server's did).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesDigest {
    /// min, max, mean, last as f64 bits; NaN's bits where the series has no numeric sample.
    pub stats: [u64; 4],
    /// Time of the last point.
    pub last_t: Option<i64>,
    /// Points in the series.
    pub points: usize,
}

impl PanelData {
    /// A copy without points, each series summarized for its legend: what a page carries
    /// for a panel whose first frame the server drew, its points following after the page.
    pub fn held_back(&self) -> PanelData {
        let bits = |v: Option<f64>| v.unwrap_or(f64::NAN).to_bits();
        let digest = self
            .series
            .iter()
            .map(|s| {
                let st = legend_stats(&s.points);
                SeriesDigest {
                    stats: [bits(st.min), bits(st.max), bits(st.mean), bits(st.last)],
                    last_t: s.points.last().map(|p| p.0),
                    points: s.points.len(),
                }
            })
            .collect();
        PanelData {
            series: self.series.iter().map(|s| Series { name: s.name.clone(), points: Vec::new() }).collect(),
            digest,
            ..*self
        }
    }

    /// True while the points are held back (see [`PanelData::held_back`]).
    pub fn is_held_back(&self) -> bool {
        !self.digest.is_empty()
    }

    /// Each series' legend figures, from its points or, while they are held back, its digest.
    pub fn legend_stats(&self) -> Vec<LegendStats> {
        if self.is_held_back() {
            let opt = |b: u64| Some(f64::from_bits(b)).filter(|v| !v.is_nan());
            return self
                .digest
                .iter()
                .map(|d| LegendStats {
                    min: opt(d.stats[0]),
                    max: opt(d.stats[1]),
                    mean: opt(d.stats[2]),
                    last: opt(d.stats[3]),
                    count: 0,
                })
                .collect();
        }
        self.series.iter().map(|s| legend_stats(&s.points)).collect()
    }

    /// Series with at least one point.
    pub fn series_with_points(&self) -> usize {
        if self.is_held_back() {
            return self.digest.iter().filter(|d| d.points > 0).count();
        }
        self.series.iter().filter(|s| !s.points.is_empty()).count()
    }

    /// Each series' last point time (None for a series without points).
    pub fn last_times(&self) -> Vec<Option<i64>> {
        if self.is_held_back() {
            return self.digest.iter().map(|d| d.last_t).collect();
        }
        self.series.iter().map(|s| s.points.last().map(|p| p.0)).collect()
    }
}

/// Grafana's absolute thresholds: `base_color` below the first step, then each step's colour
/// from its value up. Colours are Grafana names (`green`, `red`, `dark-orange`...) or CSS.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub base_color: String,
    pub steps: Vec<(f64, String)>,
}

impl Thresholds {
    /// The colour name in force at `value` (steps need not be sorted).
    pub fn color_for(&self, value: f64) -> &str {
        let mut best: Option<&(f64, String)> = None;
        for s in &self.steps {
            if value >= s.0 && best.is_none_or(|b| s.0 >= b.0) {
                best = Some(s);
            }
        }
        best.map_or(self.base_color.as_str(), |s| s.1.as_str())
    }
}

impl Default for Thresholds {
    /// Grafana's default for new panels: green, red from 80.
    fn default() -> Self {
        Thresholds { base_color: "green".into(), steps: vec![(80.0, "red".into())] }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Theme {
    #[default]
    Light,
    Dark,
}

/// Grafana's `drawStyle` for time series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DrawStyle {
    #[default]
    Line,
    Bars,
    Points,
}

/// Grafana's stat/gauge `reduceOptions.calcs`: how a series becomes one number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Calc {
    /// `lastNotNull`, Grafana's default.
    #[default]
    Last,
    Mean,
    Min,
    Max,
    Sum,
    First,
}

impl Calc {
    /// From Grafana's calc id; unknown ids read as `lastNotNull`.
    pub fn from_grafana(id: &str) -> Calc {
        match id {
            "mean" | "avg" => Calc::Mean,
            "min" => Calc::Min,
            "max" => Calc::Max,
            "sum" | "total" => Calc::Sum,
            "first" | "firstNotNull" => Calc::First,
            _ => Calc::Last,
        }
    }

    /// The reduced value of `points` (NaN ignored); None when there is no number.
    pub fn apply(self, points: &[(i64, f64)]) -> Option<f64> {
        let s = legend_stats(points);
        match self {
            Calc::Last => s.last,
            Calc::Mean => s.mean,
            Calc::Min => s.min,
            Calc::Max => s.max,
            Calc::Sum => s.mean.map(|m| m * s.count as f64),
            Calc::First => points.iter().map(|p| p.1).find(|v| v.is_finite()),
        }
    }
}

/// Grafana's stat `colorMode`: what the threshold colour paints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColorMode {
    #[default]
    Value,
    Background,
    None,
}

/// The Grafana panel options that change the drawing. Build with `..Default::default()`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChartOptions {
    /// Grafana unit id (`short`, `bytes`, `s`, `percent`...), see [`units::format_value`].
    pub unit: String,
    pub decimals: Option<u32>,
    /// Hard axis limits (gauges: the scale, default 0..100).
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Time series: limits the axis reaches at least, further if the data goes further
    /// (Grafana `softMin`/`softMax`, e.g. 0 so a busy-looking line starts from zero).
    pub soft_min: Option<f64>,
    pub soft_max: Option<f64>,
    pub thresholds: Option<Thresholds>,
    pub theme: Theme,
    pub draw_style: DrawStyle,
    /// Area fill under lines, 0–100 as Grafana's `fillOpacity`.
    pub fill_opacity: f64,
    /// Line width in CSS pixels (Grafana's `lineWidth`, default 1).
    pub line_width: f64,
    /// Draw a legend under a time series (the UI may instead render one in HTML).
    pub show_legend: bool,
    /// Time labels in UTC; otherwise shifted by `tz_offset_minutes`.
    pub timezone_utc: bool,
    /// Minutes east of UTC for local-time labels (the browser's `-getTimezoneOffset()`).
    pub tz_offset_minutes: i32,
    /// Stat/gauge/bar gauge: how each series becomes one value.
    pub calc: Calc,
    /// Stat: what the threshold colour paints.
    pub color_mode: ColorMode,
    /// Stat: draw the series as a sparkline behind the value (Grafana `graphMode: area`).
    pub sparkline: bool,
    /// Device pixels per CSS pixel: every size is multiplied by it. [`draw_on_canvas`] sets it.
    pub pixel_ratio: f64,
    /// Time series: stack each series on the ones before it (Grafana `stacking.mode: normal`).
    pub stack: bool,
    /// Time series: how samples are joined (Grafana `lineInterpolation`).
    pub interpolation: Interpolation,
    /// Time series: draw lines across missing samples instead of breaking them (Grafana
    /// `spanNulls: true`).
    pub connect_gaps: bool,
    /// Time series: a logarithmic value axis of this base (Grafana `scaleDistribution` `log`
    /// with `log: 2` or `10`); None or a base ≤ 1 is linear. Values ≤ 0 sit on the bottom edge.
    pub log_base: Option<f64>,
    /// Time series: how thresholds show on the plot (Grafana `thresholdsStyle.mode`).
    pub threshold_style: ThresholdStyle,
    /// Fixed colours by series name (Grafana's "fields with name" colour overrides); other
    /// series take the classic palette by position. See [`ChartOptions::series_color`].
    pub color_overrides: Vec<(String, String)>,
}

/// Grafana's `lineInterpolation`; `smooth` draws as linear.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interpolation {
    #[default]
    Linear,
    StepBefore,
    StepAfter,
}

impl Interpolation {
    pub fn from_grafana(id: &str) -> Interpolation {
        match id {
            "stepBefore" => Interpolation::StepBefore,
            "stepAfter" => Interpolation::StepAfter,
            _ => Interpolation::Linear,
        }
    }
}

/// Grafana's `thresholdsStyle.mode` for time series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThresholdStyle {
    #[default]
    Off,
    /// A line at each threshold step.
    Line,
    /// Dashed lines at each step.
    Dashed,
    /// Each threshold band tinted.
    Area,
    LineAndArea,
}

impl ThresholdStyle {
    /// From Grafana's mode id; unknown ids read as off.
    pub fn from_grafana(mode: &str) -> ThresholdStyle {
        match mode {
            "line" => ThresholdStyle::Line,
            "dashed" => ThresholdStyle::Dashed,
            "area" => ThresholdStyle::Area,
            "line+area" => ThresholdStyle::LineAndArea,
            "dashed+area" => ThresholdStyle::LineAndArea,
            _ => ThresholdStyle::Off,
        }
    }
}

impl Default for ChartOptions {
    fn default() -> Self {
        ChartOptions {
            unit: "short".into(),
            decimals: None,
            min: None,
            max: None,
            soft_min: None,
            soft_max: None,
            thresholds: None,
            theme: Theme::Light,
            draw_style: DrawStyle::Line,
            fill_opacity: 0.0,
            line_width: 1.0,
            show_legend: true,
            timezone_utc: true,
            tz_offset_minutes: 0,
            calc: Calc::Last,
            color_mode: ColorMode::Value,
            sparkline: true,
            pixel_ratio: 1.0,
            stack: false,
            log_base: None,
            interpolation: Interpolation::Linear,
            connect_gaps: false,
            threshold_style: ThresholdStyle::Off,
            color_overrides: Vec::new(),
        }
    }
}

impl ChartOptions {
    /// CSS colour of series `index` named `name`: its override, else the palette's. An HTML
    /// legend or tooltip uses this to match the drawing.
    pub fn series_color(&self, index: usize, name: &str) -> String {
        match self.color_overrides.iter().find(|(n, _)| n == name) {
            Some((_, c)) => color_css(c, self.theme),
            None => series_color(index).to_string(),
        }
    }

    fn series_rgba(&self, index: usize, name: &str) -> RGBAColor {
        let spec =
            self.color_overrides.iter().find(|(n, _)| n == name).map_or(series_color(index), |(_, c)| c);
        colors::color_or_text(spec, self.theme)
    }

    /// `YYYY-MM-DD HH:MM:SS` of `t_ms` in the panel's time zone, for tooltips.
    pub fn format_time(&self, t_ms: i64) -> String {
        let (y, mo, d, h, mi, s, _) = crate::time::split_utc(t_ms.saturating_add(self.offset_ms()));
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    }

    fn offset_ms(&self) -> i64 {
        if self.timezone_utc {
            0
        } else {
            i64::from(self.tz_offset_minutes) * 60_000
        }
    }
}

/// Panel types this module draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PanelKind {
    #[default]
    TimeSeries,
    Stat,
    Gauge,
    BarGauge,
    Heatmap,
}

impl PanelKind {
    /// From Grafana's panel `type`; None for types drawn elsewhere (text, table...).
    pub fn from_grafana(ty: &str) -> Option<PanelKind> {
        Some(match ty {
            "timeseries" | "graph" => PanelKind::TimeSeries,
            "stat" | "singlestat" => PanelKind::Stat,
            "gauge" => PanelKind::Gauge,
            "bargauge" => PanelKind::BarGauge,
            "heatmap" => PanelKind::Heatmap,
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing failed: {0}")]
    Backend(String),
    #[error("cannot draw into a {0}×{1} area")]
    Size(u32, u32),
    #[error("canvas unavailable: {0}")]
    Canvas(String),
}

/// Where the plot sits in the drawn pixels and what it spans, so pointer positions map to
/// times and values. Pixels are relative to the drawing's top-left corner, in the caller's
/// units: CSS pixels from [`draw_on_canvas`], device pixels from the `draw_*` functions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlotGeometry {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The value axis (bottom, top); 0..1 for panels without one.
    pub y_min: f64,
    pub y_max: f64,
    /// Logarithmic value axis of this base (> 1), else linear.
    pub log_base: Option<f64>,
}

impl PlotGeometry {
    /// The time under horizontal pixel `x_px`, clamped to the plotted range.
    pub fn time_at(&self, x_px: f64) -> i64 {
        if self.width <= 0.0 || !x_px.is_finite() {
            return self.start_ms;
        }
        let f = ((x_px - self.left) / self.width).clamp(0.0, 1.0);
        // In f64: the span of an extreme range does not fit i64 (the cast saturates).
        let t = self.start_ms as f64 + f * (self.end_ms as f64 - self.start_ms as f64);
        t.round() as i64
    }

    /// Horizontal pixel of time `t_ms` (outside the plot when the time is outside the range).
    pub fn x_of(&self, t_ms: i64) -> f64 {
        let span = (self.end_ms as f64 - self.start_ms as f64).max(1.0);
        self.left + (t_ms as f64 - self.start_ms as f64) / span * self.width
    }

    /// Vertical pixel of `value` (the bottom edge for values a log axis cannot show).
    pub fn y_of(&self, value: f64) -> f64 {
        let bottom = self.top + self.height;
        let (lo, hi, v) = (self.axis(self.y_min), self.axis(self.y_max), self.axis(value));
        // Halves first: the span of a ±f64::MAX axis would overflow to infinity.
        let span = hi / 2.0 - lo / 2.0;
        if span <= 0.0 || !span.is_finite() || v == f64::NEG_INFINITY {
            return bottom;
        }
        self.top + (hi / 2.0 - v / 2.0) / span * self.height
    }

    /// The value at vertical pixel `y_px`.
    pub fn value_at(&self, y_px: f64) -> f64 {
        if self.height <= 0.0 {
            return self.y_min;
        }
        let f = (y_px - self.top) / self.height;
        let (lo, hi) = (self.axis(self.y_min), self.axis(self.y_max));
        let v = hi - f * (hi / 2.0 - lo / 2.0) * 2.0;
        match self.log_base {
            Some(b) if b > 1.0 => b.powf(v),
            _ => v,
        }
    }

    /// A value in axis units: itself, or its logarithm on a log axis (-∞ for v ≤ 0).
    fn axis(&self, v: f64) -> f64 {
        match self.log_base {
            Some(b) if b > 1.0 => {
                if v > 0.0 {
                    v.ln() / b.ln()
                } else {
                    f64::NEG_INFINITY
                }
            }
            _ => v,
        }
    }

    /// The time range between two horizontal pixels in either order, clamped to the plot: what
    /// a drag selects for zooming.
    pub fn time_range_between(&self, x0: f64, x1: f64) -> (i64, i64) {
        let (a, b) = (self.time_at(x0), self.time_at(x1));
        (a.min(b), a.max(b))
    }

    /// Whether the pixel is inside the plot rectangle.
    pub fn contains(&self, x_px: f64, y_px: f64) -> bool {
        x_px >= self.left
            && x_px <= self.left + self.width
            && y_px >= self.top
            && y_px <= self.top + self.height
    }

    /// The same geometry with pixel lengths multiplied by `by` (device ↔ CSS pixels).
    pub fn scaled(self, by: f64) -> PlotGeometry {
        PlotGeometry {
            left: self.left * by,
            top: self.top * by,
            width: self.width * by,
            height: self.height * by,
            ..self
        }
    }
}

/// Summary of one series for a legend: min, max, mean and last of its numeric samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LegendStats {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub last: Option<f64>,
    /// Numeric samples counted (NaN and ±Inf are skipped).
    pub count: usize,
}

/// [`LegendStats`] of `points`, skipping NaN and infinities.
pub fn legend_stats(points: &[(i64, f64)]) -> LegendStats {
    let mut s = LegendStats::default();
    let mut sum = 0.0;
    for &(_, v) in points {
        if !v.is_finite() {
            continue;
        }
        s.min = Some(s.min.map_or(v, |m: f64| m.min(v)));
        s.max = Some(s.max.map_or(v, |m: f64| m.max(v)));
        s.last = Some(v);
        sum += v;
        s.count += 1;
    }
    if s.count > 0 {
        s.mean = Some(sum / s.count as f64);
    }
    s
}

/// For a tooltip at time `t_ms`: each series' sample nearest to it within half a step (or
/// None), in series order.
pub fn values_at(data: &PanelData, t_ms: i64) -> Vec<Option<(i64, f64)>> {
    let tol = if data.step_ms > 0 { data.step_ms / 2 } else { i64::MAX };
    data.series
        .iter()
        .map(|s| {
            let i = s.points.partition_point(|p| p.0 < t_ms);
            let cands = [i.checked_sub(1).and_then(|j| s.points.get(j)), s.points.get(i)];
            cands
                .into_iter()
                .flatten()
                .filter(|p| p.0.abs_diff(t_ms) <= tol.unsigned_abs())
                .min_by_key(|p| p.0.abs_diff(t_ms))
                .copied()
        })
        .collect()
}

/// The series whose sample near time `t_ms` is drawn closest to vertical pixel `y_px` (for
/// highlighting the hovered line), with that sample; None when no series has one.
pub fn nearest_series(
    data: &PanelData,
    geo: &PlotGeometry,
    t_ms: i64,
    y_px: f64,
) -> Option<(usize, (i64, f64))> {
    values_at(data, t_ms)
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| p.filter(|p| p.1.is_finite()).map(|p| (i, p)))
        .min_by(|a, b| (geo.y_of(a.1 .1) - y_px).abs().total_cmp(&(geo.y_of(b.1 .1) - y_px).abs()))
}

/// Draws panel `kind` into `area`.
pub fn draw_panel<DB: DrawingBackend>(
    kind: PanelKind,
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    match kind {
        PanelKind::TimeSeries => draw_timeseries(area, data, opts),
        PanelKind::Stat => draw_stat(area, data, opts),
        PanelKind::Gauge => draw_gauge(area, data, opts),
        PanelKind::BarGauge => draw_bargauge(area, data, opts),
        PanelKind::Heatmap => draw_heatmap(area, data, opts),
    }
}

/// The panel as an SVG document `width`×`height` pixels: the server's first frame, before the
/// browser's canvas takes over.
pub fn render_svg(
    kind: PanelKind,
    data: &PanelData,
    opts: &ChartOptions,
    width: u32,
    height: u32,
) -> Result<String, ChartError> {
    if width == 0 || height == 0 || width > 16_384 || height > 16_384 {
        return Err(ChartError::Size(width, height));
    }
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw_panel(kind, &root, data, opts)?;
        root.present().map_err(backend_err)?;
    }
    Ok(out)
}

/// The SVG with each `<polyline points="x,y x,y …"/>` written as the equivalent
/// `<path d="Mx yl dx dy …"/>`: relative steps between neighbouring pixels take about half the
/// characters of absolute pairs. For the first frames of a dashboard page, most of whose bytes
/// are these lines. Anything it does not recognise is copied unchanged.
pub fn compact_polylines(svg: &str) -> String {
    const OPEN: &str = "<polyline ";
    const POINTS: &str = "points=\"";
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let tag = &rest[i..];
        let converted = tag.find(POINTS).and_then(|p| {
            let start = p + POINTS.len();
            let len = tag[start..].find('"')?;
            let (attrs, points) = (&tag[OPEN.len()..p], &tag[start..start + len]);
            // Only a tag whose attributes stop before `points` and that closes right after it.
            if attrs.contains('>') || !tag[start + len + 1..].starts_with("/>") {
                return None;
            }
            let mut d = String::with_capacity(points.len() / 2 + 8);
            let mut prev: Option<(i64, i64)> = None;
            for pair in points.split_ascii_whitespace() {
                let (x, y) = pair.split_once(',')?;
                let (x, y) = (x.parse::<i64>().ok()?, y.parse::<i64>().ok()?);
                match prev {
                    None => {
                        d.push('M');
                        push_pair(&mut d, x, y);
                        d.push('l');
                    }
                    Some((px, py)) => {
                        if x - px >= 0 && !d.ends_with('l') {
                            d.push(' ');
                        }
                        push_pair(&mut d, x - px, y - py);
                    }
                }
                prev = Some((x, y));
            }
            if d.ends_with('l') {
                d.pop();
            }
            Some((format!("<path {attrs}d=\"{d}\"/>"), start + len + 3))
        });
        match converted {
            Some((path, used)) => {
                out.push_str(&path);
                rest = &tag[used..];
            }
            None => {
                out.push_str(OPEN);
                rest = &tag[OPEN.len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `x y` with the separator left out before a minus sign, as path data allows.
fn push_pair(d: &mut String, x: i64, y: i64) {
    use std::fmt::Write;
    let _ = if y < 0 { write!(d, "{x}{y}") } else { write!(d, "{x} {y}") };
}

/// Draws the panel into `canvas` at its CSS size times `devicePixelRatio`, so lines stay sharp
/// on high-density screens. The canvas needs a CSS size (e.g. `width:100%;height:100%` in a
/// sized box); without one its `width`/`height` attributes are used. The geometry returned is
/// in CSS pixels relative to the canvas, ready for `offsetX`/`offsetY` of pointer events.
#[cfg(feature = "hydrate")]
pub fn draw_on_canvas(
    canvas: &web_sys::HtmlCanvasElement,
    kind: PanelKind,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    let ratio = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
    let ratio = if ratio.is_finite() && ratio > 0.0 { ratio.min(4.0) } else { 1.0 };
    let (css_w, css_h) = match (canvas.client_width(), canvas.client_height()) {
        (w, h) if w > 0 && h > 0 => (f64::from(w), f64::from(h)),
        _ => (f64::from(canvas.width()) / ratio, f64::from(canvas.height()) / ratio),
    };
    let (w, h) = ((css_w * ratio).round() as u32, (css_h * ratio).round() as u32);
    if w == 0 || h == 0 {
        return Err(ChartError::Size(w, h));
    }
    // Assigning the size clears the canvas even when unchanged; only do it when needed.
    if canvas.width() != w {
        canvas.set_width(w);
    }
    if canvas.height() != h {
        canvas.set_height(h);
    }
    // plotters-canvas leaves the joins at the canvas default (miter), which draws spikes past
    // every sharp turn of a noisy series; the context is shared, so set it here.
    if let Ok(Some(ctx)) = canvas.get_context("2d") {
        use wasm_bindgen::JsCast;
        if let Ok(ctx) = ctx.dyn_into::<web_sys::CanvasRenderingContext2d>() {
            ctx.set_line_join("round");
            ctx.set_line_cap("round");
        }
    }
    let backend = plotters_canvas::CanvasBackend::with_canvas_object(canvas.clone())
        .ok_or_else(|| ChartError::Canvas("no 2d context".into()))?;
    let root = backend.into_drawing_area();
    let mut o = opts.clone();
    o.pixel_ratio = ratio * opts.pixel_ratio.clamp(0.25, 4.0);
    let geo = draw_panel(kind, &root, data, &o)?;
    root.present().map_err(backend_err)?;
    Ok(geo.scaled(1.0 / ratio))
}

fn backend_err<E: std::error::Error + Send + Sync>(
    e: plotters::drawing::DrawingAreaErrorKind<E>,
) -> ChartError {
    ChartError::Backend(e.to_string())
}

/// Pixel-level drawing on one area with sizes given in CSS pixels (scaled by the pixel
/// ratio) and colours from the theme. Coordinates are device pixels, relative to the area.
pub(crate) struct Pen<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    /// Device pixels per CSS pixel.
    pub s: f64,
    pub pal: colors::Palette,
    pub w: f64,
    pub h: f64,
    /// Font size multiplier that makes text the same pixel size on every backend.
    font_k: f64,
}

impl<'a, DB: DrawingBackend> Pen<'a, DB> {
    fn new(area: &'a DrawingArea<DB, Shift>, opts: &ChartOptions) -> Result<Self, ChartError> {
        let (w, h) = area.dim_in_pixel();
        if w == 0 || h == 0 {
            return Err(ChartError::Size(w, h));
        }
        let s = if opts.pixel_ratio.is_finite() && opts.pixel_ratio > 0.0 { opts.pixel_ratio } else { 1.0 };
        // plotters' SVG backend writes `font-size` as the requested size / 1.24 while the
        // canvas backend uses it as is; undo the SVG shrink so both draw the same text.
        let font_k = if std::any::type_name::<DB>().contains("SVGBackend") { 1.24 } else { 1.0 };
        Ok(Pen { area, s, pal: colors::palette(opts.theme), w: f64::from(w), h: f64::from(h), font_k })
    }

    /// `css` CSS pixels in device pixels.
    fn px(&self, css: f64) -> f64 {
        css * self.s
    }

    fn clear(&self) -> Result<(), ChartError> {
        self.area.fill(&self.pal.background).map_err(backend_err)
    }

    fn line(&self, pts: Vec<(i32, i32)>, color: RGBAColor, width_css: f64) -> Result<(), ChartError> {
        if pts.len() < 2 {
            return Ok(());
        }
        let style = ShapeStyle { color, filled: false, stroke_width: self.stroke(width_css) };
        self.area.draw(&PathElement::new(pts, style)).map_err(backend_err)
    }

    /// A one-CSS-pixel horizontal rule. Drawn as a filled rectangle on whole pixels: a canvas
    /// path stroked on integer coordinates smears over two pixel rows.
    fn hline(&self, x0: f64, x1: f64, y: f64, color: RGBAColor) -> Result<(), ChartError> {
        let y = y.round();
        self.rect(x0, y, x1, y + f64::from(self.stroke(1.0)), color)
    }

    /// The vertical counterpart of [`Pen::hline`].
    fn vline(&self, x: f64, y0: f64, y1: f64, color: RGBAColor) -> Result<(), ChartError> {
        let x = x.round();
        self.rect(x, y0, x + f64::from(self.stroke(1.0)), y1, color)
    }

    fn stroke(&self, width_css: f64) -> u32 {
        (width_css * self.s).round().clamp(1.0, 100.0) as u32
    }

    fn polygon(&self, pts: Vec<(i32, i32)>, color: RGBAColor) -> Result<(), ChartError> {
        if pts.len() < 3 {
            return Ok(());
        }
        let style = ShapeStyle { color, filled: true, stroke_width: 0 };
        self.area.draw(&Polygon::new(pts, style)).map_err(backend_err)
    }

    fn rect(&self, x0: f64, y0: f64, x1: f64, y1: f64, color: RGBAColor) -> Result<(), ChartError> {
        let style = ShapeStyle { color, filled: true, stroke_width: 0 };
        let (x0, x1) = (x0.min(x1), x0.max(x1));
        let (y0, y1) = (y0.min(y1), y0.max(y1));
        self.area.draw(&Rectangle::new([(ip(x0), ip(y0)), (ip(x1), ip(y1))], style)).map_err(backend_err)
    }

    fn circle(&self, x: f64, y: f64, r_css: f64, color: RGBAColor) -> Result<(), ChartError> {
        let style = ShapeStyle { color, filled: true, stroke_width: 0 };
        let r = (r_css * self.s).round().max(1.0) as i32;
        self.area.draw(&Circle::new((ip(x), ip(y)), r, style)).map_err(backend_err)
    }

    /// Text of `size_css` pixels anchored at `(x, y)` by `h`/`v`.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &self,
        text: &str,
        x: f64,
        y: f64,
        size_css: f64,
        color: RGBAColor,
        h: HPos,
        v: VPos,
    ) -> Result<(), ChartError> {
        self.text_px(text, x, y, size_css * self.s, color, h, v, false)
    }

    /// Text whose size is already in device pixels (fitted to a box).
    #[allow(clippy::too_many_arguments)]
    fn text_px(
        &self,
        text: &str,
        x: f64,
        y: f64,
        size_px: f64,
        color: RGBAColor,
        h: HPos,
        v: VPos,
        bold: bool,
    ) -> Result<(), ChartError> {
        if text.is_empty() || size_px < 1.0 {
            return Ok(());
        }
        let style = if bold { FontStyle::Bold } else { FontStyle::Normal };
        let font = (FontFamily::SansSerif, size_px.round() * self.font_k, style).into_font();
        let ts = TextStyle::from(font).color(&color).pos(Pos::new(h, v));
        self.area.draw_text(text, &ts, (ip(x), ip(y))).map_err(backend_err)
    }
}

/// Estimated width in device pixels of `text` at `size_px`: the average advance of a sans-serif
/// face, a little generous so labels never collide.
fn text_width(text: &str, size_px: f64) -> f64 {
    text.chars()
        .map(|c| match c {
            '.' | ',' | ':' | ' ' | 'i' | 'l' | '|' | '\'' | '!' => 0.3,
            'm' | 'w' | 'M' | 'W' | '%' => 0.9,
            c if c.is_ascii_uppercase() => 0.68,
            _ => 0.58,
        })
        .sum::<f64>()
        * size_px
}

/// Float pixel to backend pixel, saturating far-off coordinates so they cannot overflow.
fn ip(v: f64) -> i32 {
    if v.is_nan() {
        return 0;
    }
    // f64::round, without its libm call (x86-64 before SSE4.1 has no rounding instruction, and
    // this runs for every point of every line): truncate, then step away from zero at a half.
    // `c - t` is exact for |c| ≤ 1e7.
    let c = v.clamp(-1e7, 1e7);
    let t = c as i32;
    let frac = c - f64::from(t);
    if frac >= 0.5 {
        t + 1
    } else if frac <= -0.5 {
        t - 1
    } else {
        t
    }
}

/// Trims `text` with an ellipsis to fit `max_px` at `size_px`.
fn fit_text(text: &str, size_px: f64, max_px: f64) -> String {
    if text_width(text, size_px) <= max_px {
        return text.to_string();
    }
    let mut out = String::new();
    for c in text.chars() {
        out.push(c);
        if text_width(&out, size_px) + size_px * 0.6 > max_px {
            out.pop();
            break;
        }
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests;
