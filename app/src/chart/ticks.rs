//! Where axes put their ticks, and Grafana's `$__interval` rule for the query step.

use crate::time::split_utc;

/// Value-axis ticks: `first`, `first + step`, ... up to `last`, 1-2-5 × 10ⁿ apart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ticks {
    pub first: f64,
    pub step: f64,
    pub count: usize,
}

impl Ticks {
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        // Multiplying instead of accumulating keeps 0.1-step labels free of 0.30000000000000004.
        (0..self.count).map(move |i| self.first + self.step * i as f64)
    }
}

/// The 1-2-5 step that puts at most `max_count` intervals across `span`.
pub fn nice_step(span: f64, max_count: usize) -> f64 {
    let raw = span.abs() / max_count.max(1) as f64;
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Ticks inside `min..=max` (which must be finite, min < max).
pub fn value_ticks(min: f64, max: f64, max_count: usize) -> Ticks {
    if !(max - min).is_finite() {
        // Only a range near ±f64::MAX gets here: a tick at the bottom and one midway.
        return Ticks { first: min, step: max / 2.0 - min / 2.0, count: 2 };
    }
    let step = nice_step(max - min, max_count);
    let first = (min / step).ceil() * step;
    let count = (((max - first) / step + 1e-9).floor() as i64 + 1).clamp(0, 1000) as usize;
    Ticks { first, step, count }
}

/// Widens a data range to whole ticks (Grafana's soft auto-range), honouring hard limits.
/// Never returns an empty or non-finite range.
pub fn auto_range(
    data_min: f64,
    data_max: f64,
    hard_min: Option<f64>,
    hard_max: Option<f64>,
    max_count: usize,
) -> (f64, f64) {
    let (mut lo, mut hi) = if data_min.is_finite() && data_max.is_finite() && data_min <= data_max {
        (data_min, data_max)
    } else {
        (0.0, 1.0)
    };
    if lo == hi {
        // A constant series sits in the middle of the panel, as in Grafana.
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
        if lo < 0.0 && data_min >= 0.0 {
            lo = 0.0;
        }
    }
    if hi - lo > 0.0 && (hi - lo).is_finite() {
        let step = nice_step(hi - lo, max_count);
        let nlo = (lo / step).floor() * step;
        let nhi = (hi / step).ceil() * step;
        if nlo.is_finite() && nhi.is_finite() && nhi > nlo {
            lo = nlo;
            hi = nhi;
        }
    }
    if let Some(m) = hard_min.filter(|m| m.is_finite()) {
        lo = m;
    }
    if let Some(m) = hard_max.filter(|m| m.is_finite()) {
        hi = m;
    }
    // Both ends are finite here, so `<=` also covers every non-increasing case.
    if hi <= lo {
        // Hard limits that cross: keep the lower one and give the axis some height.
        let span = if lo == 0.0 { 1.0 } else { lo.abs() };
        hi = lo + span;
        if hi <= lo || !hi.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
    }
    (lo, hi)
}

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

/// Time-axis spacings, smallest first.
const TIME_STEPS: &[i64] = &[
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    SEC,
    2 * SEC,
    5 * SEC,
    10 * SEC,
    15 * SEC,
    30 * SEC,
    MIN,
    2 * MIN,
    5 * MIN,
    10 * MIN,
    15 * MIN,
    30 * MIN,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
    91 * DAY,
    365 * DAY,
];

/// Time ticks across `start..=end`, at most `max_count`, aligned to round local times
/// (`offset_ms` east of UTC).
pub fn time_ticks(start: i64, end: i64, max_count: usize, offset_ms: i64) -> (Vec<i64>, i64) {
    let span = end.saturating_sub(start).max(1);
    let want = max_count.max(1) as i64;
    let step = TIME_STEPS.iter().copied().find(|s| span / s <= want).unwrap_or(365 * DAY);
    let local = start.saturating_add(offset_ms);
    // The first round local time at or after `start`, saturating at the ends of i64.
    let rem = local.rem_euclid(step);
    let first = if rem == 0 { local } else { local.saturating_add(step - rem) }.saturating_sub(offset_ms);
    let mut out = Vec::new();
    let mut t = first;
    while t <= end && out.len() <= max_count * 2 + 2 {
        out.push(t);
        t = t.saturating_add(step);
    }
    (out, step)
}

/// How a time-axis label reads: `HH:MM` (or `HH:MM:SS` for sub-minute ticks) when the range is
/// under a day, `MM/DD HH:MM` for longer ranges, and `MM/DD` once ticks are whole days apart.
pub fn time_label(t: i64, range_ms: i64, step_ms: i64, offset_ms: i64) -> String {
    let (_, mo, d, h, mi, s, ms) = split_utc(t.saturating_add(offset_ms));
    if step_ms < SEC {
        format!("{h:02}:{mi:02}:{s:02}.{ms:03}")
    } else if step_ms < MIN {
        format!("{h:02}:{mi:02}:{s:02}")
    } else if range_ms < DAY {
        format!("{h:02}:{mi:02}")
    } else if step_ms >= DAY {
        format!("{mo:02}/{d:02}")
    } else {
        format!("{mo:02}/{d:02} {h:02}:{mi:02}")
    }
}

/// Grafana's `$__interval`: the range divided by the number of data points wanted (by default
/// one per pixel of panel width), rounded to Grafana's list of round intervals, never below
/// `min_interval_ms`, and never so small that Prometheus's 11,000-points-per-series limit
/// rejects the query.
pub fn choose_step(range_ms: i64, width_px: u32, max_data_points: Option<u32>, min_interval_ms: i64) -> i64 {
    let points = max_data_points.filter(|&p| p > 0).unwrap_or(width_px).max(1);
    let range = range_ms.max(0);
    let raw = range as f64 / f64::from(points);
    let mut step = round_interval(raw);
    step = step.max(min_interval_ms).max(1);
    // Prometheus's own safety limit, as Grafana's Prometheus data source applies it.
    let safe = range / 11_000 + i64::from(range % 11_000 != 0);
    step.max(safe)
}

/// Grafana's `roundInterval`: each raw interval maps to the round interval nearest it.
pub fn round_interval(ms: f64) -> i64 {
    const TABLE: &[(f64, i64)] = &[
        (10.0, 1),
        (15.0, 10),
        (35.0, 20),
        (75.0, 50),
        (150.0, 100),
        (350.0, 200),
        (750.0, 500),
        (1500.0, SEC),
        (3500.0, 2 * SEC),
        (7500.0, 5 * SEC),
        (12_500.0, 10 * SEC),
        (17_500.0, 15 * SEC),
        (25_000.0, 20 * SEC),
        (45_000.0, 30 * SEC),
        (90_000.0, MIN),
        (210_000.0, 2 * MIN),
        (450_000.0, 5 * MIN),
        (750_000.0, 10 * MIN),
        (1_050_000.0, 15 * MIN),
        (1_500_000.0, 20 * MIN),
        (2_700_000.0, 30 * MIN),
        (5_400_000.0, HOUR),
        (9_000_000.0, 2 * HOUR),
        (16_200_000.0, 3 * HOUR),
        (32_400_000.0, 6 * HOUR),
        (86_400_000.0, 12 * HOUR),
        (604_800_000.0, DAY),
        (1_814_400_000.0, 7 * DAY),
        (3_628_800_000.0, 30 * DAY),
    ];
    TABLE.iter().find(|(below, _)| ms < *below).map_or(365 * DAY, |&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_follows_grafana() {
        // 1 h over 1000 px: 3.6 s raw → 5 s.
        assert_eq!(choose_step(HOUR, 1000, None, 0), 5 * SEC);
        // 6 h over 1200 px: 18 s → 20 s.
        assert_eq!(choose_step(6 * HOUR, 1200, None, 0), 20 * SEC);
        // maxDataPoints wins over width.
        assert_eq!(choose_step(HOUR, 1000, Some(60), 0), MIN);
        // Never below the min interval (a 15 s scrape interval).
        assert_eq!(choose_step(5 * MIN, 1000, None, 15 * SEC), 15 * SEC);
        // 7 days over 800 px: 756 s → 15 min.
        assert_eq!(choose_step(7 * DAY, 800, None, 0), 15 * MIN);
        // A year: 31.5e9/100 = 315 360 000 ms → 1 d.
        assert_eq!(choose_step(365 * DAY, 100, None, 0), DAY);
        // Degenerate input stays positive.
        assert_eq!(choose_step(0, 0, None, 0), 1);
        assert_eq!(choose_step(-5, 100, Some(0), -3), 1);
        // 11,000-point limit: 30 days at 1 point per 10 ms wanted.
        assert!(choose_step(30 * DAY, 1000, Some(u32::MAX), 0) * 11_000 >= 30 * DAY);
        assert_eq!(round_interval(1e15), 365 * DAY);
        assert_eq!(round_interval(5.0), 1);
    }

    #[test]
    fn value_ticks_are_round() {
        let t = value_ticks(0.0, 100.0, 5);
        assert_eq!((t.first, t.step, t.count), (0.0, 20.0, 6));
        let t = value_ticks(0.13, 0.87, 4);
        assert_eq!(t.step, 0.2);
        assert_eq!(t.values().collect::<Vec<_>>(), vec![0.2, 0.4, 0.6000000000000001, 0.8]);
        assert_eq!(nice_step(0.0, 5), 1.0);
    }

    #[test]
    fn ranges_never_empty() {
        let (lo, hi) = auto_range(5.0, 5.0, None, None, 5);
        assert!(lo < 5.0 && hi > 5.0 && (5.0 - lo - (hi - 5.0)).abs() < 1e-9, "{lo}..{hi}");
        assert_eq!(auto_range(0.0, 0.0, None, None, 5), (0.0, 1.0));
        assert_eq!(auto_range(f64::NAN, 1.0, None, None, 5), (0.0, 1.0));
        assert_eq!(auto_range(3.0, 97.0, Some(0.0), Some(100.0), 5), (0.0, 100.0));
        let (lo, hi) = auto_range(1.0, 2.0, Some(10.0), Some(5.0), 5);
        assert!(hi > lo);
        let (lo, hi) = auto_range(-f64::MAX, f64::MAX, None, None, 5);
        assert!(hi > lo && value_ticks(lo, hi, 5).values().all(f64::is_finite));
        let (lo, hi) = auto_range(1e-12, 3e-12, None, None, 5);
        assert!(lo <= 1e-12 && hi >= 3e-12);
    }

    #[test]
    fn time_labels_adapt_to_range() {
        let t = 1_795_680_000_000; // 2026-11-26 08:00 UTC
        assert_eq!(time_label(t, HOUR, 5 * MIN, 0), "08:00");
        assert_eq!(time_label(t, 3 * DAY, 6 * HOUR, 0), "11/26 08:00");
        assert_eq!(time_label(t - 8 * HOUR, 30 * DAY, 7 * DAY, 0), "11/26");
        assert_eq!(time_label(t, 2 * MIN, 10 * SEC, 0), "08:00:00");
        assert_eq!(time_label(t, HOUR, 5 * MIN, 60 * MIN), "09:00");
        let (ticks, step) = time_ticks(t + 1, t + HOUR, 6, 0);
        assert_eq!(step, 10 * MIN);
        assert_eq!(ticks.first(), Some(&(t + 10 * MIN)));
        assert_eq!(ticks.len(), 6);
    }
}
