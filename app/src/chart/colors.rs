//! Colours: Grafana's classic series palette, Grafana colour names → RGB, and the light/dark
//! theme colours of the frame (background, text, grid), matching style/main.css.

use super::Theme;
use plotters::style::RGBAColor;

/// Grafana's classic palette, in its order, so series get the colours they have in Grafana.
pub const CLASSIC_PALETTE: [&str; 56] = [
    "#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0", "#508642",
    "#CCA300", "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477", "#B7DBAB", "#F4D598",
    "#70DBED", "#F9BA8F", "#F29191", "#82B5D8", "#E5A8E2", "#AEA2E0", "#629E51", "#E5AC0E", "#64B0C8",
    "#E0752D", "#BF1B00", "#0A50A1", "#962D82", "#614D93", "#9AC48A", "#F2C96D", "#65C5DB", "#F9934E",
    "#EA6460", "#5195CE", "#D683CE", "#806EB7", "#3F6833", "#967302", "#2F575E", "#99440A", "#58140C",
    "#052B51", "#511749", "#3F2B5B", "#E0F9D7", "#FCEACA", "#CFFAFF", "#F9E2D2", "#FCE2DE", "#BADFF4",
    "#F9D9F9", "#DEDAF7",
];

/// CSS colour of series number `index` (wraps around the palette), for an HTML legend that
/// must match the drawing.
pub fn series_color(index: usize) -> &'static str {
    CLASSIC_PALETTE[index % CLASSIC_PALETTE.len()]
}

/// Grafana's named visualization colours (shared by both themes in Grafana 8+).
const NAMED: &[(&str, &str)] = &[
    ("green", "#73BF69"),
    ("dark-green", "#37872D"),
    ("semi-dark-green", "#56A64B"),
    ("light-green", "#96D98D"),
    ("super-light-green", "#C8F2C2"),
    ("red", "#F2495C"),
    ("dark-red", "#C4162A"),
    ("semi-dark-red", "#E02F44"),
    ("light-red", "#FF7383"),
    ("super-light-red", "#FFA6B0"),
    ("orange", "#FF9830"),
    ("dark-orange", "#FA6400"),
    ("semi-dark-orange", "#FF780A"),
    ("light-orange", "#FFB357"),
    ("super-light-orange", "#FFCB7D"),
    ("yellow", "#FADE2A"),
    ("dark-yellow", "#E0B400"),
    ("semi-dark-yellow", "#F2CC0C"),
    ("light-yellow", "#FFEE52"),
    ("super-light-yellow", "#FFF899"),
    ("blue", "#5794F2"),
    ("dark-blue", "#1F60C4"),
    ("semi-dark-blue", "#3274D9"),
    ("light-blue", "#8AB8FF"),
    ("super-light-blue", "#C0D8FF"),
    ("purple", "#B877D9"),
    ("dark-purple", "#8F3BB8"),
    ("semi-dark-purple", "#A352CC"),
    ("light-purple", "#CA95E5"),
    ("super-light-purple", "#DEB6F2"),
    ("white", "#FFFFFF"),
    ("black", "#000000"),
    ("gray", "#808080"),
    ("grey", "#808080"),
    ("transparent", "#00000000"),
];

/// Frame colours of one theme.
#[derive(Clone, Copy, Debug)]
pub struct Palette {
    pub background: RGBAColor,
    pub text: RGBAColor,
    pub muted: RGBAColor,
    pub grid: RGBAColor,
    /// Unfilled part of gauges and bar gauges.
    pub track: RGBAColor,
}

pub fn palette(theme: Theme) -> Palette {
    match theme {
        Theme::Light => Palette {
            background: rgb(0xff, 0xff, 0xff),
            text: rgb(0x1c, 0x21, 0x28),
            muted: rgb(0x5b, 0x65, 0x73),
            grid: RGBAColor(0x1c, 0x21, 0x28, 0.10),
            track: rgb(0xe9, 0xec, 0xef),
        },
        Theme::Dark => Palette {
            background: rgb(0x18, 0x1b, 0x1f),
            text: rgb(0xd8, 0xd9, 0xda),
            muted: rgb(0x8e, 0x96, 0xa3),
            grid: RGBAColor(0xd8, 0xd9, 0xda, 0.10),
            track: rgb(0x2c, 0x30, 0x38),
        },
    }
}

fn rgb(r: u8, g: u8, b: u8) -> RGBAColor {
    RGBAColor(r, g, b, 1.0)
}

/// A Grafana colour: a name from Grafana's palette, `text` (the theme's text colour),
/// `#rgb`/`#rrggbb`/`#rrggbbaa` or `rgb(r,g,b)`/`rgba(r,g,b,a)`. None when unreadable.
pub fn parse_color(spec: &str, theme: Theme) -> Option<RGBAColor> {
    let s = spec.trim();
    if s.eq_ignore_ascii_case("text") {
        return Some(palette(theme).text);
    }
    if let Some(hex) = s.strip_prefix('#') {
        return parse_hex(hex);
    }
    if let Some(inner) = s.strip_prefix("rgba(").or_else(|| s.strip_prefix("rgb(")) {
        let inner = inner.strip_suffix(')')?;
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        if parts.len() < 3 || parts.len() > 4 {
            return None;
        }
        let c = |p: &str| p.parse::<f64>().ok().map(|v| v.clamp(0.0, 255.0).round() as u8);
        let a = match parts.get(3) {
            Some(a) => a.parse::<f64>().ok()?.clamp(0.0, 1.0),
            None => 1.0,
        };
        return Some(RGBAColor(c(parts[0])?, c(parts[1])?, c(parts[2])?, a));
    }
    let lower = s.to_ascii_lowercase();
    NAMED.iter().find(|(n, _)| *n == lower).and_then(|(_, hex)| parse_hex(&hex[1..]))
}

/// [`parse_color`], falling back to the theme's text colour for unknown names so a typo in a
/// dashboard still draws something.
pub fn color_or_text(spec: &str, theme: Theme) -> RGBAColor {
    parse_color(spec, theme).unwrap_or(palette(theme).text)
}

/// CSS text of a Grafana colour, for HTML drawn by the UI (legend swatches, tooltips).
pub fn color_css(spec: &str, theme: Theme) -> String {
    let c = color_or_text(spec, theme);
    if c.3 >= 1.0 {
        format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
    } else {
        format!("rgba({},{},{},{})", c.0, c.1, c.2, c.3)
    }
}

fn parse_hex(hex: &str) -> Option<RGBAColor> {
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    let nib = |i: usize| u8::from_str_radix(hex.get(i..i + 1)?, 16).ok().map(|v| v * 17);
    match hex.len() {
        3 => Some(RGBAColor(nib(0)?, nib(1)?, nib(2)?, 1.0)),
        6 => Some(RGBAColor(byte(0)?, byte(2)?, byte(4)?, 1.0)),
        8 => Some(RGBAColor(byte(0)?, byte(2)?, byte(4)?, f64::from(byte(6)?) / 255.0)),
        _ => None,
    }
}

/// Linear blend from `a` to `b` by `t` in 0..=1.
pub fn mix(a: RGBAColor, b: RGBAColor, t: f64) -> RGBAColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let l = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    RGBAColor(l(a.0, b.0), l(a.1, b.1), l(a.2, b.2), a.3 + (b.3 - a.3) * t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hex() {
        let c = parse_color("green", Theme::Dark).map(|c| (c.0, c.1, c.2));
        assert_eq!(c, Some((0x73, 0xbf, 0x69)));
        let c = parse_color("#f00", Theme::Light).map(|c| (c.0, c.1, c.2));
        assert_eq!(c, Some((255, 0, 0)));
        let c = parse_color("rgba(10, 20, 30, 0.5)", Theme::Light).map(|c| (c.0, c.1, c.2, c.3));
        assert_eq!(c, Some((10, 20, 30, 0.5)));
        assert!(parse_color("#zzzzzz", Theme::Light).is_none());
        assert!(parse_color("nonsense", Theme::Light).is_none());
        assert_eq!(color_css("RED", Theme::Light), "#f2495c");
        assert_eq!(series_color(56), series_color(0));
    }
}
