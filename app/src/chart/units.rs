//! Grafana's value formatting: unit ids (`short`, `bytes`, `s`, `reqps`, ...) turned into text
//! the way Grafana shows them, so a dashboard imported from Grafana reads the same here.
//!
//! Three ways to choose decimals share one code path ([`Decimals`]): a fixed count from the panel,
//! Grafana's automatic rule for a single value (about three significant digits), or the rule for
//! axis ticks, where the decimals come from the tick step after the value is scaled (so a
//! `1.5 K`/`2.0 K`/`2.5 K` axis never collapses into `2 K`/`2 K`/`3 K`).

/// How many decimals a formatted number gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decimals {
    /// Exactly this many (Grafana's `decimals` field option).
    Fixed(u32),
    /// Grafana's automatic choice for one value.
    Auto,
    /// Enough to tell apart ticks this far apart (in the unscaled unit).
    Step(f64),
}

impl Decimals {
    fn resolve(self, scaled: f64, factor: f64) -> usize {
        match self {
            Decimals::Fixed(d) => d.min(20) as usize,
            Decimals::Auto => auto_decimals(scaled) as usize,
            Decimals::Step(step) => step_decimals(step / factor) as usize,
        }
    }
}

impl From<Option<u32>> for Decimals {
    fn from(d: Option<u32>) -> Self {
        d.map_or(Decimals::Auto, Decimals::Fixed)
    }
}

/// A formatted value in parts, so a stat panel can draw the unit smaller than the number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Formatted {
    pub prefix: String,
    pub text: String,
    pub suffix: String,
}

impl std::fmt::Display for Formatted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.prefix, self.text, self.suffix)
    }
}

/// `value` in Grafana unit `unit`, with `decimals` fixed or (None) chosen automatically.
/// Unknown unit ids are shown as a suffix, as Grafana does for custom units.
pub fn format_value(value: f64, unit: &str, decimals: Option<u32>) -> String {
    format_parts(value, unit, decimals.into()).to_string()
}

/// An axis tick label: decimals follow the tick `step` so neighbouring labels differ.
pub fn format_tick(value: f64, step: f64, unit: &str) -> String {
    format_parts(value, unit, Decimals::Step(step)).to_string()
}

/// [`format_value`] in parts.
pub fn format_parts(value: f64, unit: &str, dec: Decimals) -> Formatted {
    if !value.is_finite() {
        let text = if value.is_nan() {
            "NaN"
        } else if value > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        };
        return Formatted { text: text.into(), ..Formatted::default() };
    }
    match unit {
        "" | "none" => plain(value, dec, ""),
        "short" => scaled_units(value, dec, 1000.0, SHORT, 0),
        "percent" => plain(value, dec, "%"),
        "percentunit" => scaled(value, 0.01, dec, "%"),
        "bytes" => binary(value, dec, "B", 0),
        "decbytes" => si(value, dec, "B", 0),
        "kbytes" => binary(value, dec, "B", 1),
        "mbytes" => binary(value, dec, "B", 2),
        "gbytes" => binary(value, dec, "B", 3),
        "deckbytes" => si(value, dec, "B", 1),
        "decmbytes" => si(value, dec, "B", 2),
        "decgbytes" => si(value, dec, "B", 3),
        "bits" => binary(value, dec, "b", 0),
        "decbits" => si(value, dec, "b", 0),
        "bps" => si(value, dec, "bps", 0),
        "Bps" => si(value, dec, "B/s", 0),
        "binBps" => binary(value, dec, "B/s", 0),
        "binbps" => binary(value, dec, "b/s", 0),
        "KBs" => si(value, dec, "B/s", 1),
        "Kbits" => si(value, dec, "bps", 1),
        "MBs" => si(value, dec, "B/s", 2),
        "Mbits" => si(value, dec, "bps", 2),
        "hertz" => si(value, dec, "Hz", 0),
        "watt" => si(value, dec, "W", 0),
        "volt" => si(value, dec, "V", 0),
        "amp" => si(value, dec, "A", 0),
        "joule" => si(value, dec, "J", 0),
        "lengthm" => si(value, dec, "m", 0),
        "s" => seconds(value, dec),
        "ms" => milliseconds(value, dec),
        "µs" | "us" => microseconds(value, dec),
        "ns" => nanoseconds(value, dec),
        "m" => seconds(value * 60.0, scale_dec(dec, 60.0)),
        "h" => seconds(value * 3600.0, scale_dec(dec, 3600.0)),
        "d" => seconds(value * 86_400.0, scale_dec(dec, 86_400.0)),
        "dtdurations" => duration_text(value, 1.0),
        "dtdurationms" => duration_text(value, 0.001),
        "reqps" => count(value, dec, "req/s"),
        "reqpm" => count(value, dec, "req/min"),
        "ops" | "opps" => count(value, dec, "ops"),
        "opm" => count(value, dec, "ops/min"),
        "rps" => count(value, dec, "rd/s"),
        "wps" => count(value, dec, "wr/s"),
        "iops" => count(value, dec, "io/s"),
        "cps" => count(value, dec, "c/s"),
        "cpm" => count(value, dec, "c/m"),
        "eps" => count(value, dec, "evt/s"),
        "mps" => count(value, dec, "msg/s"),
        "celsius" => plain(value, dec, "°C"),
        "fahrenheit" => plain(value, dec, "°F"),
        "kelvin" => plain(value, dec, "K"),
        "humidity" => plain(value, dec, "%H"),
        "currencyUSD" => currency(value, dec, "$"),
        "currencyEUR" => currency(value, dec, "€"),
        "currencyGBP" => currency(value, dec, "£"),
        "bool" => word(value != 0.0, "true", "false"),
        "bool_yes_no" => word(value != 0.0, "Yes", "No"),
        "bool_on_off" => word(value != 0.0, "On", "Off"),
        "locale" => plain(value, dec, ""),
        _ => custom(value, dec, unit),
    }
}

const SHORT: &[&str] = &["", " K", " Mil", " Bil", " Tri", " Quadr", " Quint", " Sext", " Sept"];
const COUNT: &[&str] = &["", "K", "M", "B", "T"];
const SI: &[&str] = &["f", "p", "n", "µ", "m", "", "k", "M", "G", "T", "P", "E", "Z", "Y"];
const BIN: &[&str] = &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];

fn word(b: bool, yes: &str, no: &str) -> Formatted {
    Formatted { text: if b { yes } else { no }.into(), ..Formatted::default() }
}

fn plain(value: f64, dec: Decimals, suffix: &str) -> Formatted {
    scaled(value, 1.0, dec, suffix)
}

/// `value / factor` with `suffix`; the step (for ticks) is scaled alike.
fn scaled(value: f64, factor: f64, dec: Decimals, suffix: &str) -> Formatted {
    let v = value / factor;
    Formatted { text: to_fixed(v, dec.resolve(v, factor)), suffix: suffix.into(), ..Formatted::default() }
}

fn scale_dec(dec: Decimals, by: f64) -> Decimals {
    match dec {
        Decimals::Step(s) => Decimals::Step(s * by),
        d => d,
    }
}

/// Grafana's `scaledUnits`: divide by `factor` per rung of `prefixes`, starting at rung `offset`
/// for the unscaled value (so SI can also go down to milli, micro...). The prefix lands in
/// `suffix`; callers decorate it.
fn scaled_units(value: f64, dec: Decimals, factor: f64, prefixes: &[&str], offset: usize) -> Formatted {
    let rung = if value == 0.0 { 0 } else { (value.abs().ln() / factor.ln()).floor() as i64 };
    let last = prefixes.len() as i64 - 1;
    let idx = (offset as i64 + rung).clamp(0, last);
    let power = (idx - offset as i64) as i32;
    let div = factor.powi(power);
    let v = value / div;
    Formatted {
        text: to_fixed(v, dec.resolve(v, div)),
        suffix: prefixes.get(idx as usize).copied().unwrap_or("").to_string(),
        ..Formatted::default()
    }
}

fn si(value: f64, dec: Decimals, sym: &str, offset: usize) -> Formatted {
    let mut f = scaled_units(value, dec, 1000.0, SI, 5 + offset);
    f.suffix = format!(" {}{sym}", f.suffix);
    f
}

/// IEC prefixes; `offset` enters the ladder a few rungs up (`kbytes` is KiB-based input).
fn binary(value: f64, dec: Decimals, sym: &str, offset: usize) -> Formatted {
    let mut f = scaled_units(value, dec, 1024.0, BIN, offset);
    f.suffix = format!(" {}{sym}", f.suffix);
    f
}

fn count(value: f64, dec: Decimals, sym: &str) -> Formatted {
    let mut f = scaled_units(value, dec, 1000.0, COUNT, 0);
    f.suffix = format!("{} {sym}", f.suffix);
    f
}

fn currency(value: f64, dec: Decimals, sym: &str) -> Formatted {
    let mut f = scaled_units(value, dec, 1000.0, COUNT, 0);
    f.prefix = sym.into();
    f
}

/// `suffix:<text>`, `prefix:<text>`, `si:<sym>`, `count:<sym>` and any other id as a suffix.
fn custom(value: f64, dec: Decimals, unit: &str) -> Formatted {
    if let Some(s) = unit.strip_prefix("suffix:") {
        return plain(value, dec, s);
    }
    if let Some(p) = unit.strip_prefix("prefix:") {
        let mut f = plain(value, dec, "");
        f.prefix = p.into();
        return f;
    }
    if let Some(s) = unit.strip_prefix("si:") {
        return si(value, dec, s, 0);
    }
    if let Some(s) = unit.strip_prefix("count:") {
        return count(value, dec, s);
    }
    plain(value, dec, &format!(" {unit}"))
}

fn seconds(v: f64, dec: Decimals) -> Formatted {
    let a = v.abs();
    if v == 0.0 {
        return Formatted { text: "0".into(), suffix: " s".into(), ..Formatted::default() };
    }
    match a {
        _ if a < 1e-6 => scaled(v, 1e-9, dec, " ns"),
        _ if a < 1e-3 => scaled(v, 1e-6, dec, " µs"),
        _ if a < 1.0 => scaled(v, 1e-3, dec, " ms"),
        _ if a < 60.0 => scaled(v, 1.0, dec, " s"),
        _ if a < 3600.0 => scaled(v, 60.0, dec, " min"),
        _ if a < 86_400.0 => scaled(v, 3600.0, dec, " hour"),
        _ if a < 604_800.0 => scaled(v, 86_400.0, dec, " day"),
        _ if a < 31_536_000.0 => scaled(v, 604_800.0, dec, " week"),
        _ => scaled(v, 3.15569e7, dec, " year"),
    }
}

fn milliseconds(v: f64, dec: Decimals) -> Formatted {
    let a = v.abs();
    match a {
        _ if a < 1000.0 => scaled(v, 1.0, dec, " ms"),
        _ if a < 60_000.0 => scaled(v, 1000.0, dec, " s"),
        _ if a < 3_600_000.0 => scaled(v, 60_000.0, dec, " min"),
        _ if a < 86_400_000.0 => scaled(v, 3_600_000.0, dec, " hour"),
        _ if a < 31_536_000_000.0 => scaled(v, 86_400_000.0, dec, " day"),
        _ => scaled(v, 31_536_000_000.0, dec, " year"),
    }
}

fn microseconds(v: f64, dec: Decimals) -> Formatted {
    let a = v.abs();
    match a {
        _ if a < 1000.0 => scaled(v, 1.0, dec, " µs"),
        _ if a < 1e6 => scaled(v, 1000.0, dec, " ms"),
        _ => seconds(v / 1e6, scale_dec(dec, 1e-6)),
    }
}

fn nanoseconds(v: f64, dec: Decimals) -> Formatted {
    let a = v.abs();
    match a {
        _ if a < 1000.0 => scaled(v, 1.0, dec, " ns"),
        _ if a < 1e6 => scaled(v, 1e3, dec, " µs"),
        _ if a < 1e9 => scaled(v, 1e6, dec, " ms"),
        _ if a < 6e10 => scaled(v, 1e9, dec, " s"),
        _ if a < 3.6e12 => scaled(v, 6e10, dec, " min"),
        _ if a < 8.64e13 => scaled(v, 3.6e12, dec, " hour"),
        _ => scaled(v, 8.64e13, dec, " day"),
    }
}

/// `dtdurations`: the two largest whole parts, e.g. `1 day, 2 hours`.
fn duration_text(v: f64, unit_s: f64) -> Formatted {
    const PARTS: [(f64, &str); 6] = [
        (31_536_000.0, "year"),
        (2_592_000.0, "month"),
        (86_400.0, "day"),
        (3600.0, "hour"),
        (60.0, "minute"),
        (1.0, "second"),
    ];
    let secs = (v * unit_s).abs();
    let sign = if v < 0.0 { "-" } else { "" };
    if secs < 1.0 {
        return Formatted {
            text: format!("{sign}{}", to_fixed(secs * 1000.0, 0)),
            suffix: " ms".into(),
            ..Formatted::default()
        };
    }
    let mut rest = secs.floor();
    let mut out = Vec::new();
    for (size, name) in PARTS {
        if out.len() == 2 {
            break;
        }
        let n = (rest / size).floor();
        if n >= 1.0 {
            rest -= n * size;
            out.push(format!("{n} {name}{}", if n == 1.0 { "" } else { "s" }));
        } else if !out.is_empty() {
            break;
        }
    }
    Formatted { text: format!("{sign}{}", out.join(", ")), ..Formatted::default() }
}

/// The factor axis ticks should be round multiples of, for data reaching `max_abs`: a power of
/// 1024 for IEC units (so a bytes axis reads 2 MiB, 4 MiB rather than 1.90735 MiB, 3.8147 MiB),
/// otherwise 1 (plain 1-2-5 steps are already round under SI and count prefixes).
pub fn tick_scale(unit: &str, max_abs: f64) -> f64 {
    let offset = match unit {
        "bytes" | "bits" | "binBps" | "binbps" => 0,
        "kbytes" => 1,
        "mbytes" => 2,
        "gbytes" => 3,
        _ => return 1.0,
    };
    if !max_abs.is_finite() || max_abs < 1024.0 {
        return 1.0;
    }
    let rung = ((max_abs.ln() / 1024f64.ln()).floor() as i32).clamp(0, BIN.len() as i32 - 1 - offset);
    1024f64.powi(rung)
}

/// Grafana's `getDecimalsForValue`: about three significant digits, none for whole numbers.
pub fn auto_decimals(value: f64) -> u32 {
    let a = value.abs();
    if a == 0.0 || !a.is_finite() || value.fract() == 0.0 {
        return 0;
    }
    let mut dec = -(a.log10().floor() as i64) + 1;
    let norm = a * 10f64.powi(dec as i32);
    // Grafana's special case so 2.5-style values keep their last digit.
    if norm > 2.25 {
        dec += 1;
    }
    dec.clamp(0, 20) as u32
}

/// Fewest decimals that show `step` exactly (0.25 → 2, 5 → 0, 0.1 → 1).
pub fn step_decimals(step: f64) -> u32 {
    let step = step.abs();
    if step == 0.0 || !step.is_finite() {
        return 0;
    }
    for d in 0..=15u32 {
        let x = step * 10f64.powi(d as i32);
        if (x - x.round()).abs() <= 1e-6 * x.max(1.0) {
            return d;
        }
    }
    15
}

/// JavaScript-like fixed-point text: exponent form where JavaScript would switch to it, and no
/// `-0`.
fn to_fixed(v: f64, decimals: usize) -> String {
    let a = v.abs();
    if a >= 1e21 || (a > 0.0 && a < 1e-6 && decimals > 6) {
        return format!("{v:.2e}");
    }
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].bytes().all(|b| b == b'0' || b == b'.') {
        return s[1..].to_string();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(f64, &str, Option<u32>, &str)] = &[
            (0.0, "short", None, "0"),
            (1234.5, "short", None, "1.23 K"),
            (999.0, "short", None, "999"),
            (1_500_000.0, "short", Some(1), "1.5 Mil"),
            (-2_000_000_000.0, "short", None, "-2 Bil"),
            (1.23456, "none", None, "1.23"),
            (12.345, "none", None, "12.3"),
            (42.0, "none", None, "42"),
            (42.0, "", Some(2), "42.00"),
            (55.5, "percent", Some(1), "55.5%"),
            (0.255, "percentunit", Some(1), "25.5%"),
            (1.0, "percentunit", None, "100%"),
            (1024.0, "bytes", None, "1 KiB"),
            (1536.0, "bytes", None, "1.50 KiB"),
            (3.0 * 1024.0 * 1024.0 * 1024.0, "bytes", None, "3 GiB"),
            (512.0, "bytes", None, "512 B"),
            (1500.0, "decbytes", None, "1.50 kB"),
            (2_000_000.0, "decbytes", None, "2 MB"),
            (2048.0, "bits", None, "2 Kib"),
            (1_000_000.0, "bps", None, "1 Mbps"),
            (2500.0, "Bps", None, "2.50 kB/s"),
            (2048.0, "binBps", None, "2 KiB/s"),
            (0.5, "s", None, "500 ms"),
            (0.0, "s", None, "0 s"),
            (90.0, "s", None, "1.50 min"),
            (7200.0, "s", None, "2 hour"),
            (2e-7, "s", None, "200 ns"),
            (1500.0, "ms", None, "1.50 s"),
            (250.0, "ms", None, "250 ms"),
            (1500.0, "µs", None, "1.50 ms"),
            (1500.0, "us", None, "1.50 ms"),
            (2.5e6, "us", None, "2.50 s"),
            (1500.0, "ns", None, "1.50 µs"),
            (3e9, "ns", None, "3 s"),
            (1500.0, "reqps", None, "1.50K req/s"),
            (12.0, "reqps", None, "12 req/s"),
            (12.0, "ops", None, "12 ops"),
            (3.0, "rps", None, "3 rd/s"),
            (2_000_000.0, "cps", None, "2M c/s"),
            (2_400_000_000.0, "hertz", None, "2.40 GHz"),
            (21.5, "celsius", Some(1), "21.5°C"),
            (1234.0, "currencyUSD", None, "$1.23K"),
            (7.0, "widgets", None, "7 widgets"),
            (7.0, "suffix:/min", None, "7/min"),
            (93_784.0, "dtdurations", None, "1 day, 2 hours"),
            (61.0, "dtdurations", None, "1 minute, 1 second"),
            (f64::NAN, "short", None, "NaN"),
            (f64::INFINITY, "bytes", None, "+Inf"),
            (f64::NEG_INFINITY, "s", None, "-Inf"),
            (-0.0001, "none", Some(2), "0.00"),
            (1e300, "none", None, "1.00e300"),
            (1e300, "short", None, "1.00e276 Sept"),
            (1e-9, "none", None, "1.00e-9"),
        ];
        for &(v, unit, dec, want) in cases {
            assert_eq!(format_value(v, unit, dec), want, "{v} {unit} {dec:?}");
        }
    }

    #[test]
    fn ticks_use_step_after_scaling() {
        assert_eq!(format_tick(1500.0, 500.0, "short"), "1.5 K");
        assert_eq!(format_tick(2000.0, 500.0, "short"), "2.0 K");
        assert_eq!(format_tick(0.25, 0.25, "none"), "0.25");
        assert_eq!(format_tick(20.0, 10.0, "percent"), "20%");
        assert_eq!(format_tick(0.5, 0.1, "s"), "500 ms");
        assert_eq!(format_tick(1536.0, 512.0, "bytes"), "1.5 KiB");
    }

    #[test]
    fn binary_axes_tick_in_binary_steps() {
        assert_eq!(tick_scale("bytes", 12e6), 1024.0 * 1024.0);
        assert_eq!(tick_scale("bytes", 100.0), 1.0);
        assert_eq!(tick_scale("short", 12e6), 1.0);
        assert_eq!(tick_scale("bytes", f64::NAN), 1.0);
        assert_eq!(format_tick(2.0 * 1024.0 * 1024.0, 2.0 * 1024.0 * 1024.0, "bytes"), "2 MiB");
    }

    #[test]
    fn decimals() {
        assert_eq!(auto_decimals(0.25), 3);
        assert_eq!(auto_decimals(123.456), 0);
        assert_eq!(step_decimals(0.25), 2);
        assert_eq!(step_decimals(5.0), 0);
        assert_eq!(step_decimals(0.1), 1);
        assert_eq!(step_decimals(2e-5), 5);
    }
}
