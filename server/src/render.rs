//! Panel images drawn on the server: `GET /render/d-solo/{uid}[/{slug}]?panelId=…` answers a
//! PNG (or, with `format=svg`, an SVG) of one dashboard panel, as Grafana's image renderer does,
//! but without a headless browser: the panel is drawn by the same `app::chart` code that paints
//! the browser's canvas, onto plotters' bitmap backend.
//!
//! The parts: [`RenderParams::parse`] reads and bounds the query string (size, scale, theme,
//! format, range, `var-*`); the handler looks up the dashboard and panel, runs the panel's
//! queries through `app::dashboard::load::load_panel` (as the dashboard page does) and draws,
//! all in `spawn_blocking` since both are CPU work (a semaphore bounds how many at once). A
//! signed embed link, which the auth layer checks covers the dashboard and panel, fixes its
//! variables over the URL's. [`draw_image`] lays out a header (title, and the query error when
//! one failed — the image is still drawn, as Grafana does, and the error is repeated in an
//! `X-Vigil-Panel-Error` header) above the chart on any plotters backend; [`render_png`] and
//! [`render_svg`] pick the backend. Text on the bitmap goes through [`GlyphBackend`], a thin
//! wrapper that rasterizes the embedded DejaVu Sans (see `server/assets/fonts/`) with ab_glyph
//! and anchors it as a browser canvas does, so labels sit where the chart code's layout (tuned
//! for the canvas) expects them; no system font is looked up, and the wasm bundle carries none
//! of it (only the server's plotters has `bitmap_backend`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use app::chart::{self, ChartOptions, PanelData, PanelKind, Theme};
use app::dashboard::load;
use app::dashboard::url::Query;
use app::model::{DataSource, SharedBackend};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontFamily, FontStyle, IntoFont, RGBAColor, TextStyle};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
    FontStyle as BackendFontStyle,
};
use serde_json::json;

use crate::embed::EmbedScope;
use crate::web::WebState;

/// Largest width or height of an image, in output pixels (after `scale`).
pub const MAX_SIDE: u32 = 3000;
pub const DEFAULT_WIDTH: u32 = 1000;
pub const DEFAULT_HEIGHT: u32 = 500;
/// Largest device scale factor (Grafana's `scale`, for high-density screens).
pub const MAX_SCALE: f64 = 4.0;
/// Images of relative ranges (`now-6h`) go stale quickly; a short cache still spares a burst of
/// identical requests (a chat unfurling one link several times).
const CACHE_CONTROL: &str = "private, max-age=10";
/// Grafana's red, for the query error line.
const ERROR_COLOR: RGBAColor = RGBAColor(0xe0, 0x2f, 0x44, 1.0);

/// Renders running at once. Each holds up to a 27 MB pixel buffer and a core; a burst of
/// requests waits here rather than filling the blocking pool (hundreds of threads) and memory.
static RENDERS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::sync::Semaphore::new(cores.clamp(2, 16))
});

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    BadRequest(String),
    #[error("width and height must each be 1..={max} pixels (after scale); asked for {0}×{1}", max = MAX_SIDE)]
    Size(u32, u32),
    #[error("dashboard {0:?} not found")]
    DashboardNotFound(String),
    #[error("dashboard {uid:?} has no panel with id {id}")]
    PanelNotFound { uid: String, id: i64 },
    #[error(
        "panel {id} is a {kind:?} panel, which has no image; images are drawn for timeseries, \
         stat, gauge, bargauge and heatmap panels"
    )]
    Unsupported { id: i64, kind: String },
    #[error("this embed link is for another dashboard or panel")]
    OutOfScope,
    #[error("the embedded font cannot be read")]
    Font,
    #[error(transparent)]
    Draw(#[from] chart::ChartError),
    #[error("encoding the PNG failed: {0}")]
    Png(#[from] png::EncodingError),
    #[error("the render task failed: {0}")]
    Task(String),
}

impl RenderError {
    fn status(&self) -> StatusCode {
        match self {
            RenderError::BadRequest(_) | RenderError::Size(..) | RenderError::Unsupported { .. } => {
                StatusCode::BAD_REQUEST
            }
            RenderError::DashboardNotFound(_) | RenderError::PanelNotFound { .. } => StatusCode::NOT_FOUND,
            RenderError::OutOfScope => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for RenderError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({ "message": self.to_string() }))).into_response()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

/// What a render request asks for. Parameters Grafana sends that change nothing here (`orgId`,
/// `tz`, `timeout`...) are ignored.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderParams {
    pub panel_id: i64,
    /// CSS pixels; the image is `width × scale` pixels wide.
    pub width: u32,
    pub height: u32,
    pub scale: f64,
    pub theme: Theme,
    pub format: Format,
    pub from: Option<String>,
    pub to: Option<String>,
    pub vars: Vec<(String, Vec<String>)>,
}

impl RenderParams {
    /// Reads a raw query string. `panelId` is required (Grafana's `panel-3` form is accepted);
    /// the rest have defaults: 1000×500, scale 1, light theme, PNG, the dashboard's own range.
    pub fn parse(query: &str) -> Result<RenderParams, RenderError> {
        let q = Query::parse(query);
        let given = |k: &str| q.get(k).map(str::trim).filter(|v| !v.is_empty());
        let bad = |msg: String| RenderError::BadRequest(msg);
        let panel = given("panelId").ok_or_else(|| bad("panelId is required, e.g. ?panelId=2".into()))?;
        let panel_id = panel
            .strip_prefix("panel-")
            .unwrap_or(panel)
            .parse::<i64>()
            .map_err(|_| bad(format!("panelId {panel:?} is not a panel id (a whole number)")))?;
        let side = |k: &str, default: u32| -> Result<u32, RenderError> {
            match given(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u32>()
                    .map_err(|_| bad(format!("{k} {v:?} is not a whole number of pixels (1..={MAX_SIDE})"))),
            }
        };
        let (width, height) = (side("width", DEFAULT_WIDTH)?, side("height", DEFAULT_HEIGHT)?);
        let scale = match given("scale") {
            None => 1.0,
            Some(v) => match v.parse::<f64>() {
                Ok(s) if (1.0..=MAX_SCALE).contains(&s) => s,
                _ => return Err(bad(format!("scale {v:?} must be a number from 1 to {MAX_SCALE}"))),
            },
        };
        let theme = match given("theme") {
            None | Some("light") => Theme::Light,
            Some("dark") => Theme::Dark,
            Some(t) => return Err(bad(format!("theme {t:?} must be light or dark"))),
        };
        let format = match given("format") {
            None | Some("png") => Format::Png,
            Some("svg") => Format::Svg,
            Some(f) => return Err(bad(format!("format {f:?} must be png or svg"))),
        };
        let p = RenderParams {
            panel_id,
            width,
            height,
            scale,
            theme,
            format,
            from: given("from").map(str::to_string),
            to: given("to").map(str::to_string),
            vars: q.variables(),
        };
        let (w, h) = p.pixels();
        if width == 0 || height == 0 || w > MAX_SIDE || h > MAX_SIDE {
            return Err(RenderError::Size(w.max(width), h.max(height)));
        }
        Ok(p)
    }

    /// Replaces the URL's selections of the variables an embed link fixes with the link's.
    pub fn fix_vars(&mut self, fixed: &BTreeMap<String, Vec<String>>) {
        self.vars.retain(|(name, _)| !fixed.contains_key(name));
        self.vars.extend(fixed.iter().map(|(name, values)| (name.clone(), values.clone())));
    }

    /// The image's size in pixels.
    pub fn pixels(&self) -> (u32, u32) {
        let px = |css: u32| (f64::from(css) * self.scale).round().min(f64::from(u32::MAX)) as u32;
        (px(self.width), px(self.height))
    }
}

/// Everything one image shows.
#[derive(Clone, Debug)]
pub struct PanelImage {
    pub kind: PanelKind,
    pub title: String,
    /// The first failing query's error, drawn under the title.
    pub error: Option<String>,
    pub data: PanelData,
    pub opts: ChartOptions,
}

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/render/d-solo/{uid}", get(render_unslugged))
        .route("/render/d-solo/{uid}/{slug}", get(render_slugged))
}

async fn render_unslugged(
    State(backend): State<SharedBackend>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
    scope: Option<Extension<EmbedScope>>,
) -> Response {
    render(backend, uid, query.unwrap_or_default(), scope.map(|s| s.0)).await
}

async fn render_slugged(
    State(backend): State<SharedBackend>,
    Path((uid, _slug)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    scope: Option<Extension<EmbedScope>>,
) -> Response {
    render(backend, uid, query.unwrap_or_default(), scope.map(|s| s.0)).await
}

/// `scope` is a signed embed link's, when the request came with one (the auth layer checked
/// it covers this dashboard and panel).
async fn render(backend: SharedBackend, uid: String, query: String, scope: Option<EmbedScope>) -> Response {
    let mut params = match RenderParams::parse(&query) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if let Some(scope) = scope {
        if !scope.allows(&uid, Some(params.panel_id)) {
            return RenderError::OutOfScope.into_response();
        }
        params.fix_vars(&scope.vars);
    }
    let permit = match RENDERS.acquire().await {
        Ok(p) => p,
        Err(e) => return RenderError::Task(e.to_string()).into_response(),
    };
    // The permit moves into the task: a client that hangs up does not end the work it started.
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        render_blocking(backend.as_ref(), &uid, &params)
    });
    let (body, content_type, error) = match task.await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return e.into_response(),
        Err(e) => return RenderError::Task(e.to_string()).into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    if let Some(value) = error.and_then(|e| HeaderValue::from_str(&header_safe(&e)).ok()) {
        headers.insert("x-vigil-panel-error", value);
    }
    response
}

/// Runs the panel's queries and draws it: the body, its content type and the query error.
fn render_blocking(
    backend: &dyn app::model::Backend,
    uid: &str,
    p: &RenderParams,
) -> Result<(Vec<u8>, &'static str, Option<String>), RenderError> {
    let (dashboard, _) = backend.dashboard(uid).ok_or_else(|| RenderError::DashboardNotFound(uid.into()))?;
    let panel = dashboard
        .panel(p.panel_id)
        .filter(|panel| !panel.is_row())
        .ok_or_else(|| RenderError::PanelNotFound { uid: uid.into(), id: p.panel_id })?;
    let kind = PanelKind::from_grafana(panel.effective_kind())
        .ok_or_else(|| RenderError::Unsupported { id: panel.id, kind: panel.kind.clone() })?;
    let range = load::resolve_range(&dashboard, p.from.as_deref(), p.to.as_deref(), now_ms());
    let source: &dyn DataSource = backend;
    let result = load::load_panel(source, &dashboard, panel, range, &p.vars);
    let mut opts = app::pages::dashboard::chart_options(panel, p.theme);
    // The page draws the legend in HTML; an image has only the drawing to show it.
    let legend = panel.options.get("legend");
    opts.show_legend = legend.and_then(|l| l.get("showLegend")).and_then(|v| v.as_bool()) != Some(false)
        && legend.and_then(|l| l.get("displayMode")).and_then(|v| v.as_str()) != Some("hidden");
    opts.pixel_ratio = p.scale;
    let title = if result.title.is_empty() { panel.title.clone() } else { result.title };
    let image = PanelImage { kind, title, error: result.error, data: result.data, opts };
    let (w, h) = p.pixels();
    let body = match p.format {
        Format::Png => (render_png(&image, w, h)?, "image/png"),
        Format::Svg => (render_svg(&image, w, h)?.into_bytes(), "image/svg+xml"),
    };
    Ok((body.0, body.1, image.error))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One line of visible ASCII, short enough for a header.
fn header_safe(s: &str) -> String {
    let line: String = s.chars().map(|c| if c.is_ascii_graphic() { c } else { ' ' }).collect();
    line.chars().take(500).collect()
}

/// The image as PNG bytes, `width`×`height` pixels.
pub fn render_png(image: &PanelImage, width: u32, height: u32) -> Result<Vec<u8>, RenderError> {
    check_size(width, height)?;
    let fonts = fonts()?;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let backend = GlyphBackend { inner: BitMapBackend::with_buffer(&mut rgb, (width, height)), fonts };
        let root = backend.into_drawing_area();
        draw_image(&root, image, 1.0)?;
        root.present().map_err(draw_err)?;
    }
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Charts are mostly flat colour: the fast setting is several times quicker than the
    // default for a few percent more bytes.
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

/// The image as an SVG document; the viewer's fonts draw its text.
pub fn render_svg(image: &PanelImage, width: u32, height: u32) -> Result<String, RenderError> {
    check_size(width, height)?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        // plotters' SVG backend writes font-size as the requested size / 1.24 (as the chart
        // code's own text compensates for).
        draw_image(&root, image, 1.24)?;
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

fn check_size(width: u32, height: u32) -> Result<(), RenderError> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(RenderError::Size(width, height));
    }
    Ok(())
}

fn draw_err<E: std::error::Error + Send + Sync>(
    e: plotters::drawing::DrawingAreaErrorKind<E>,
) -> RenderError {
    RenderError::Draw(chart::ChartError::Backend(e.to_string()))
}

/// Draws the header (title, error lines) and the chart below it into `root`. `font_k`
/// multiplies font sizes for backends that shrink them (SVG).
pub fn draw_image<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    image: &PanelImage,
    font_k: f64,
) -> Result<(), RenderError> {
    let s = image.opts.pixel_ratio.clamp(0.25, MAX_SCALE);
    let pal = chart::palette(image.opts.theme);
    root.fill(&pal.background).map_err(draw_err)?;
    let (w, h) = root.dim_in_pixel();
    let (w, h) = (f64::from(w), f64::from(h));
    let pad = 8.0 * s;
    let mut y = 0.0;
    if !image.title.trim().is_empty() {
        // Grafana's panel header: 32 px, 14 px medium text.
        let size = 14.0 * s;
        let title = fit(root, &image.title, size, font_k, w - 2.0 * pad, FontStyle::Bold);
        text(root, &title, pad, 16.0 * s, size, font_k, pal.text, FontStyle::Bold)?;
        y = 32.0 * s;
    }
    if let Some(err) = &image.error {
        let size = 12.0 * s;
        let lines = wrap(root, err, size, font_k, w - 2.0 * pad, 3);
        y = y.max(pad / 2.0);
        for line in lines {
            text(root, &line, pad, y + 8.0 * s, size, font_k, ERROR_COLOR, FontStyle::Normal)?;
            y += 16.0 * s;
        }
        y += 4.0 * s;
    }
    let top = y.round().min(h) as i32;
    let (_, body) = root.split_vertically(top);
    let (bw, bh) = body.dim_in_pixel();
    if bw < 8 || bh < 8 {
        return Ok(());
    }
    chart::draw_panel(image.kind, &body, &image.data, &image.opts)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    x: f64,
    y: f64,
    size: f64,
    font_k: f64,
    color: RGBAColor,
    style: FontStyle,
) -> Result<(), RenderError> {
    let ts = text_style(size, font_k, color, style);
    area.draw_text(s, &ts, (x.round() as i32, y.round() as i32)).map_err(draw_err)
}

fn text_style(size: f64, font_k: f64, color: RGBAColor, style: FontStyle) -> TextStyle<'static> {
    let font = (FontFamily::SansSerif, size.round() * font_k, style).into_font();
    TextStyle { font, color: color.to_backend_color(), pos: Pos::new(HPos::Left, VPos::Center) }
}

/// The width of `s` as the backend measures it (exactly on the bitmap, estimated for SVG).
fn width_of<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    size: f64,
    font_k: f64,
    style: FontStyle,
) -> f64 {
    let ts = text_style(size, font_k, RGBAColor(0, 0, 0, 1.0), style);
    // An estimate failing only makes the text overflow; 0.6 em a character is a fair guess.
    area.estimate_text_size(s, &ts).map_or(s.chars().count() as f64 * size * 0.6, |(w, _)| f64::from(w))
}

/// `s` trimmed with an ellipsis to fit `max` pixels.
fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    size: f64,
    font_k: f64,
    max: f64,
    style: FontStyle,
) -> String {
    if width_of(area, s, size, font_k, style) <= max {
        return s.to_string();
    }
    let mut chars: Vec<char> = s.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let cut: String = chars.iter().collect::<String>() + "…";
        if width_of(area, &cut, size, font_k, style) <= max {
            return cut;
        }
    }
    String::new()
}

/// `s` broken at spaces into at most `max_lines` lines of `max` pixels, the last trimmed.
fn wrap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    size: f64,
    font_k: f64,
    max: f64,
    max_lines: usize,
) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in s.split_whitespace() {
        let candidate = if current.is_empty() { word.to_string() } else { format!("{current} {word}") };
        if current.is_empty() || width_of(area, &candidate, size, font_k, FontStyle::Normal) <= max {
            current = candidate;
            continue;
        }
        lines.push(std::mem::replace(&mut current, word.to_string()));
        if lines.len() == max_lines {
            break;
        }
    }
    if lines.len() < max_lines && !current.is_empty() {
        lines.push(current);
    } else if let Some(last) = lines.last_mut() {
        last.push_str(" …");
    }
    lines.into_iter().map(|l| fit(area, &l, size, font_k, max, FontStyle::Normal)).collect()
}

/// The embedded faces: DejaVu Sans and its bold.
pub struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

static FONTS: LazyLock<Option<Fonts>> = LazyLock::new(|| {
    Some(Fonts {
        regular: FontRef::try_from_slice(include_bytes!("../assets/fonts/DejaVuSans.ttf")).ok()?,
        bold: FontRef::try_from_slice(include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf")).ok()?,
    })
});

/// The embedded fonts, parsed once.
pub fn fonts() -> Result<&'static Fonts, RenderError> {
    FONTS.as_ref().ok_or(RenderError::Font)
}

/// A text run laid out at one size: the face, the scale that makes its em `size` pixels, the
/// glyph origins and the advance width.
struct Run<'f> {
    font: &'f FontRef<'static>,
    scale: PxScale,
    glyphs: Vec<(ab_glyph::GlyphId, f32)>,
    width: f32,
    /// Distance from the em box's top to the baseline.
    above: f32,
    em: f32,
}

impl Fonts {
    fn layout(&self, text: &str, size: f64, style: BackendFontStyle) -> Run<'_> {
        let font = if matches!(style, BackendFontStyle::Bold) { &self.bold } else { &self.regular };
        let em = size.max(0.0) as f32;
        // ab_glyph's PxScale is the ascent-to-descent height; a canvas font size is the em.
        let units = font.units_per_em().unwrap_or(2048.0);
        let scale = PxScale::from(em * font.height_unscaled() / units);
        let scaled = font.as_scaled(scale);
        let mut caret = 0.0f32;
        let mut prev = None;
        let mut glyphs = Vec::with_capacity(text.len());
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            glyphs.push((id, caret));
            caret += scaled.h_advance(id);
            prev = Some(id);
        }
        // A canvas's `top`/`bottom` baselines are the em box, split between ascent and descent
        // in their proportion.
        let (asc, desc) = (font.ascent_unscaled(), -font.descent_unscaled());
        let above = if asc + desc > 0.0 { em * asc / (asc + desc) } else { em * 0.8 };
        Run { font, scale, glyphs, width: caret, above, em }
    }
}

/// plotters' bitmap backend with text drawn from the embedded fonts. Everything but text goes
/// straight to the inner backend.
pub struct GlyphBackend<'a> {
    inner: BitMapBackend<'a>,
    fonts: &'static Fonts,
}

type DrawResult<E> = Result<(), DrawingErrorKind<E>>;

impl<'a> DrawingBackend for GlyphBackend<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> DrawResult<Self::ErrorType> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> DrawResult<Self::ErrorType> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> DrawResult<Self::ErrorType> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> DrawResult<Self::ErrorType> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> DrawResult<Self::ErrorType> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> DrawResult<Self::ErrorType> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> DrawResult<Self::ErrorType> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> DrawResult<Self::ErrorType> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> DrawResult<Self::ErrorType> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<T: BackendTextStyle>(
        &self,
        text: &str,
        style: &T,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let run = self.fonts.layout(text, style.size(), style.style());
        Ok((run.width.ceil() as u32, run.em.ceil() as u32))
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> DrawResult<Self::ErrorType> {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let run = self.fonts.layout(text, style.size(), style.style());
        let anchor = style.anchor();
        let x0 = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -run.width / 2.0,
            HPos::Right => -run.width,
        };
        let baseline = match anchor.v_pos {
            VPos::Top => run.above,
            VPos::Center => run.above - run.em / 2.0,
            VPos::Bottom => run.above - run.em,
        };
        let transform = style.transform();
        for &(id, caret) in &run.glyphs {
            let glyph = id.with_scale_and_position(run.scale, ab_glyph::point(x0 + caret, baseline));
            let Some(outline) = run.font.outline_glyph(glyph) else { continue };
            let bounds = outline.px_bounds();
            let mut pixels = Vec::new();
            outline.draw(|gx, gy, coverage| {
                if coverage > 0.0 {
                    pixels.push((gx, gy, coverage));
                }
            });
            for (gx, gy, coverage) in pixels {
                let (dx, dy) = ((bounds.min.x as i32) + gx as i32, (bounds.min.y as i32) + gy as i32);
                let (dx, dy) = transform.transform(dx, dy);
                let alpha = color.alpha * f64::from(coverage.min(1.0));
                self.inner.draw_pixel((pos.0 + dx, pos.1 + dy), BackendColor { alpha, rgb: color.rgb })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
