//! Grafana's time expressions (`now`, `now-6h`, `now-1d/d`, epoch milliseconds, `2026-11-26 12:00:00`)
//! and the quick ranges, refresh intervals and durations the pickers offer.

use crate::time::{civil_from_days, days_from_civil, format_utc, split_utc};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Quick ranges in the time picker: (from, label); `to` is `now` for all of them.
pub const QUICK_RANGES: &[(&str, &str)] = &[
    ("now-5m", "Last 5 minutes"),
    ("now-15m", "Last 15 minutes"),
    ("now-30m", "Last 30 minutes"),
    ("now-1h", "Last 1 hour"),
    ("now-3h", "Last 3 hours"),
    ("now-6h", "Last 6 hours"),
    ("now-12h", "Last 12 hours"),
    ("now-24h", "Last 24 hours"),
    ("now-2d", "Last 2 days"),
    ("now-7d", "Last 7 days"),
    ("now-30d", "Last 30 days"),
];

/// Refresh intervals in the refresh picker; `""` is off.
pub const REFRESH_INTERVALS: &[&str] = &["", "5s", "10s", "30s", "1m", "5m", "15m", "30m", "1h", "2h", "1d"];

/// Whether the expression is evaluated for the start (`from`) or the end (`to`) of a range:
/// rounding (`/d`) goes down for a start and up for an end, as in Grafana.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    From,
    To,
}

/// Parses a Grafana duration (`5m`, `1h30m`, `7d`, `250ms`) into milliseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0i64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ms" => 1,
            "s" => SECOND,
            "m" => MINUTE,
            "h" => HOUR,
            "d" => DAY,
            "w" => 7 * DAY,
            "M" => 30 * DAY,
            "y" => 365 * DAY,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(scale)?)?;
    }
    Some(total)
}

/// Formats milliseconds as the shortest Grafana/Prometheus duration (`90000` → `1m30s`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms.abs();
    if ms < 0 {
        out.push('-');
    }
    for (unit, size) in
        [("y", 365 * DAY), ("w", 7 * DAY), ("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND)]
    {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if rest > 0 {
        out.push_str(&format!("{rest}ms"));
    }
    out
}

/// Evaluates a time expression at `now_ms`. `None` when the text is not a time Grafana accepts.
pub fn parse_time(expr: &str, now_ms: i64, edge: Edge) -> Option<i64> {
    let s = expr.trim();
    if let Some(rest) = s.strip_prefix("now") {
        let (offset, round) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let mut t = now_ms;
        if !offset.is_empty() {
            let (sign, dur) = match offset.as_bytes()[0] {
                b'-' => (-1, &offset[1..]),
                b'+' => (1, &offset[1..]),
                _ => return None,
            };
            t = shift(t, sign, dur)?;
        }
        if let Some(unit) = round {
            t = round_to(t, unit, edge)?;
        }
        return Some(t);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    parse_absolute(s)
}

/// Applies `now-<n><unit>`; months and years move along the calendar like Grafana's moment.js.
fn shift(t: i64, sign: i64, dur: &str) -> Option<i64> {
    let digits = dur.bytes().take_while(u8::is_ascii_digit).count();
    let unit = &dur[digits..];
    if digits > 0 && (unit == "M" || unit == "y") {
        let n: i64 = dur[..digits].parse().ok()?;
        let months = if unit == "y" { n * 12 } else { n } * sign;
        return Some(add_months(t, months));
    }
    Some(t + sign * parse_duration(dur)?)
}

fn add_months(t: i64, months: i64) -> i64 {
    let days = t.div_euclid(DAY);
    let in_day = t.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + (m as i64 - 1) + months;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
    let last = days_in_month(ny, nm);
    days_from_civil(ny, nm, d.min(last)) * DAY + in_day
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)) as u32
}

fn round_to(t: i64, unit: &str, edge: Edge) -> Option<i64> {
    let start = |size: i64| t.div_euclid(size) * size;
    let (lo, next) = match unit {
        "s" => (start(SECOND), start(SECOND) + SECOND),
        "m" => (start(MINUTE), start(MINUTE) + MINUTE),
        "h" => (start(HOUR), start(HOUR) + HOUR),
        "d" => (start(DAY), start(DAY) + DAY),
        "w" => {
            // Weeks start on Monday; the epoch was a Thursday.
            let days = t.div_euclid(DAY);
            let monday = days - (days + 3).rem_euclid(7);
            (monday * DAY, (monday + 7) * DAY)
        }
        "M" => {
            let (y, m, _) = civil_from_days(t.div_euclid(DAY));
            let lo = days_from_civil(y, m, 1) * DAY;
            (lo, add_months(lo, 1))
        }
        "y" => {
            let (y, _, _) = civil_from_days(t.div_euclid(DAY));
            (days_from_civil(y, 1, 1) * DAY, days_from_civil(y + 1, 1, 1) * DAY)
        }
        _ => return None,
    };
    Some(match edge {
        Edge::From => lo,
        Edge::To => next - 1,
    })
}

/// `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS` (or with `T`, optional `Z`), in UTC.
fn parse_absolute(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&m) || day == 0 || day > days_in_month(y, m) {
        return None;
    }
    let mut ms = days_from_civil(y, m, day) * DAY;
    if let Some(time) = time {
        let mut parts = time.split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let min: i64 = parts.next()?.parse().ok()?;
        let sec: f64 = parts.next().map(str::parse).transpose().ok()?.unwrap_or(0.0);
        if parts.next().is_some()
            || !(0..24).contains(&h)
            || !(0..60).contains(&min)
            || !(0.0..60.0).contains(&sec)
        {
            return None;
        }
        ms += h * HOUR + min * MINUTE + (sec * 1000.0).round() as i64;
    }
    Some(ms)
}

/// Formats epoch milliseconds for the absolute-time inputs (`2026-11-26 12:00:00`).
pub fn format_absolute(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split_utc(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// A short description of a range for the picker button.
pub fn describe_range(from: &str, to: &str) -> String {
    if to == "now" {
        if let Some((_, label)) = QUICK_RANGES.iter().find(|(f, _)| *f == from) {
            return label.to_string();
        }
        if let Some(d) = from.strip_prefix("now-") {
            return format!("Last {d}");
        }
    }
    let show = |s: &str| match s.parse::<i64>() {
        Ok(ms) => format_utc(ms).replace('T', " ").trim_end_matches('Z').to_string(),
        Err(_) => s.to_string(),
    };
    format!("{} to {}", show(from), show(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-26 12:34:56.789 UTC, a Thursday.
    const NOW: i64 = 1_795_696_496_789;

    #[test]
    fn relative_times() {
        assert_eq!(parse_time("now", NOW, Edge::To), Some(NOW));
        assert_eq!(parse_time("now-6h", NOW, Edge::From), Some(NOW - 6 * HOUR));
        assert_eq!(parse_time("now-1h30m", NOW, Edge::From), Some(NOW - 90 * MINUTE));
        assert_eq!(parse_time("now+5m", NOW, Edge::To), Some(NOW + 5 * MINUTE));
        assert_eq!(parse_time("now-7d", NOW, Edge::From), Some(NOW - 7 * DAY));
        assert_eq!(format_absolute(parse_time("now-1M", NOW, Edge::From).unwrap()), "2026-10-26 12:34:56");
        assert_eq!(format_absolute(parse_time("now-1y", NOW, Edge::From).unwrap()), "2025-11-26 12:34:56");
        assert_eq!(parse_time("now-", NOW, Edge::From), None);
        assert_eq!(parse_time("now-5x", NOW, Edge::From), None);
        assert_eq!(parse_time("later", NOW, Edge::From), None);
    }

    #[test]
    fn rounding_goes_down_for_from_and_up_for_to() {
        assert_eq!(format_absolute(parse_time("now/d", NOW, Edge::From).unwrap()), "2026-11-26 00:00:00");
        assert_eq!(format_absolute(parse_time("now/d", NOW, Edge::To).unwrap()), "2026-11-26 23:59:59");
        assert_eq!(format_absolute(parse_time("now-1d/d", NOW, Edge::From).unwrap()), "2026-11-25 00:00:00");
        assert_eq!(format_absolute(parse_time("now/w", NOW, Edge::From).unwrap()), "2026-11-23 00:00:00");
        assert_eq!(format_absolute(parse_time("now/M", NOW, Edge::From).unwrap()), "2026-11-01 00:00:00");
        assert_eq!(format_absolute(parse_time("now/y", NOW, Edge::To).unwrap()), "2026-12-31 23:59:59");
    }

    #[test]
    fn absolute_times() {
        assert_eq!(parse_time("1700000000000", NOW, Edge::From), Some(1_700_000_000_000));
        assert_eq!(parse_time("2026-11-26 12:34:56", NOW, Edge::From), Some(NOW - 789));
        assert_eq!(parse_time("2026-11-26T12:34:56Z", NOW, Edge::From), Some(NOW - 789));
        assert_eq!(parse_time("2026-11-26", NOW, Edge::From), Some(NOW - NOW.rem_euclid(DAY)));
        assert_eq!(parse_time("2026-02-30", NOW, Edge::From), None);
        assert_eq!(parse_time("2026-11-26 25:00", NOW, Edge::From), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("1h30m"), Some(90 * MINUTE));
        assert_eq!(parse_duration("m"), None);
        assert_eq!(format_duration(90 * MINUTE), "1h30m");
        assert_eq!(format_duration(15_000), "15s");
        assert_eq!(format_duration(1500), "1s500ms");
        assert_eq!(describe_range("now-6h", "now"), "Last 6 hours");
        assert_eq!(describe_range("now-45m", "now"), "Last 45m");
    }
}
