//! Drawing figures with plotters: a figure is a title over a grid of panels, each panel a
//! plot with its legend beside it (never on top of the data).
//!
//! Figures are described as plain data first (curves, bars, cells) and drawn afterwards, once
//! into a PNG and once into an SVG, with the same code. Text uses the DejaVu Sans font bundled
//! in `assets/fonts`, registered with plotters' ab_glyph renderer, so a machine without system
//! fonts draws the same labels.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::RangedCoordusize;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ReportError;
use crate::store;

/// The bundled font (Bitstream Vera licence with DejaVu's public-domain changes; see
/// `assets/fonts/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub const FAMILY: &str = "sans-serif";

/// Ten colours that stay apart for most colour-blind readers (Tableau 10). A panel never
/// holds more series than this: more configs are spread over more panels.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];
pub const GREY: RGBColor = RGBColor(90, 90, 90);

const PANEL_W: u32 = 620;
const PANEL_H: u32 = 340;
const LEGEND_W: u32 = 280;
const TITLE_H: u32 = 44;

/// A figure: a title and panels laid out `columns` to a row.
pub struct Figure {
    pub title: String,
    pub columns: usize,
    pub panels: Vec<Panel>,
}

/// One plot with its legend.
pub struct Panel {
    pub title: String,
    pub plot: Plot,
    pub legend: Vec<LegendEntry>,
}

/// What a panel draws.
pub enum Plot {
    Curves(Curves),
    /// One bar per category with an optional min-max whisker.
    Bars {
        y_label: String,
        bars: Vec<Bar>,
    },
    /// Cells over two categorical axes, coloured by value and labelled with it.
    Heatmap(Heatmap),
    /// One horizontal bar per category split into shares summing to 1.
    Shares {
        x_label: String,
        rows: Vec<(String, Vec<f64>)>,
        colours: Vec<RGBColor>,
    },
}

pub struct Curves {
    pub x_label: String,
    pub y_label: String,
    /// Draw y on a log10 axis (values must be positive).
    pub log_y: bool,
    /// Fixed y range; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    pub bands: Vec<Band>,
    pub lines: Vec<Line>,
    /// Horizontal reference lines, dashed.
    pub rules: Vec<(f64, RGBColor)>,
}

pub struct Line {
    pub points: Vec<(f64, f64)>,
    pub colour: RGBColor,
    /// 0 to 1; raw values are drawn faint under their moving average.
    pub opacity: f64,
    pub width: u32,
}

/// A shaded area between two curves of equal x.
pub struct Band {
    pub x: Vec<f64>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
    pub colour: RGBColor,
}

pub struct Bar {
    pub label: String,
    pub value: f64,
    pub spread: Option<(f64, f64)>,
    pub colour: RGBColor,
}

pub struct Heatmap {
    pub x_label: String,
    pub y_label: String,
    pub columns: Vec<String>,
    pub rows: Vec<String>,
    /// `cells[row][column]`; NaN draws as a grey "n/a".
    pub cells: Vec<Vec<f64>>,
    /// Values mapped to the ends of the colour scale (shared by a figure's heatmaps).
    pub range: (f64, f64),
}

pub struct LegendEntry {
    pub label: String,
    pub colour: RGBColor,
    pub dashed: bool,
}

impl LegendEntry {
    pub fn line(label: impl Into<String>, colour: RGBColor) -> Self {
        Self { label: label.into(), colour, dashed: false }
    }
}

type DrawResult = Result<(), String>;

fn fail<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Makes the bundled font the one plotters draws `sans-serif` with.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; failing to parse it is a broken build, not bad input.
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the bundled font does not parse"));
    });
}

impl Figure {
    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        let columns = self.columns.clamp(1, self.panels.len().max(1));
        let rows = self.panels.len().div_ceil(columns).max(1);
        let legend = if self.panels.iter().any(|p| !p.legend.is_empty()) { LEGEND_W } else { 0 };
        // Never narrower than one panel with its legend, so the title fits.
        let width = ((PANEL_W + legend) * columns as u32).max(PANEL_W + LEGEND_W);
        (width, TITLE_H + PANEL_H * rows as u32)
    }

    /// Draws the figure as `<stem>.png` and, when `svg`, `<stem>.svg` in `dir`.
    pub fn save(&self, dir: &Path, stem: &str, svg: bool) -> Result<(), ReportError> {
        register_font();
        let (w, h) = self.size();
        let png_path = dir.join(format!("{stem}.png"));
        let chart = |message: String| ReportError::Chart { path: png_path.clone(), message };
        let mut pixels = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            self.draw(&root).map_err(chart)?;
            root.present().map_err(|e| chart(e.to_string()))?;
        }
        let image = image::RgbImage::from_raw(w, h, pixels).expect("buffer sized w x h x 3");
        super::sheets::save_png(&png_path, &image.into())?;
        if svg {
            let svg_path = dir.join(format!("{stem}.svg"));
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
                self.draw(&root)
                    .map_err(|message| ReportError::Chart { path: svg_path.clone(), message })?;
                root.present().map_err(|e| ReportError::Chart {
                    path: svg_path.clone(),
                    message: e.to_string(),
                })?;
            }
            store::write_atomic(&svg_path, text.as_bytes())?;
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(fail)?;
        let (top, body) = root.split_vertically(TITLE_H);
        let style = (FAMILY, 22).into_font().color(&BLACK).pos(centre());
        let (w, _) = top.dim_in_pixel();
        top.draw_text(&self.title, &style, ((w / 2) as i32, (TITLE_H / 2) as i32)).map_err(fail)?;
        let columns = self.columns.clamp(1, self.panels.len().max(1));
        let rows = self.panels.len().div_ceil(columns).max(1);
        let has_legend = self.panels.iter().any(|p| !p.legend.is_empty());
        for (panel, area) in self.panels.iter().zip(body.split_evenly((rows, columns))) {
            if has_legend {
                let (plot, legend) = area.split_horizontally(PANEL_W);
                draw_plot(&plot, panel)?;
                draw_legend(&legend, &panel.legend)?;
            } else {
                draw_plot(&area, panel)?;
            }
        }
        Ok(())
    }
}

fn centre() -> Pos {
    Pos::new(HPos::Center, VPos::Center)
}

fn draw_plot<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> DrawResult {
    match &panel.plot {
        Plot::Curves(curves) => draw_curves(area, &panel.title, curves),
        Plot::Bars { y_label, bars } => draw_bars(area, &panel.title, y_label, bars),
        Plot::Heatmap(map) => draw_heatmap(area, &panel.title, map),
        Plot::Shares { x_label, rows, colours } => {
            draw_shares(area, &panel.title, x_label, rows, colours)
        }
    }
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> DrawResult {
    let (_, h) = area.dim_in_pixel();
    let row = 18;
    let fits = ((h as i32 - 40) / row).max(1) as usize;
    let style = (FAMILY, 12).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, entry) in entries.iter().take(fits).enumerate() {
        let y = 34 + i as i32 * row;
        let stroke = entry.colour.stroke_width(3);
        if entry.dashed {
            for x in [6, 16] {
                area.draw(&PathElement::new(vec![(x, y), (x + 6, y)], stroke)).map_err(fail)?;
            }
        } else {
            area.draw(&PathElement::new(vec![(6, y), (28, y)], stroke)).map_err(fail)?;
        }
        area.draw_text(&shorten(&entry.label, 40), &style, (34, y)).map_err(fail)?;
    }
    if entries.len() > fits {
        let more = format!("... {} more", entries.len() - fits);
        area.draw_text(&more, &style, (34, 34 + fits as i32 * row)).map_err(fail)?;
    }
    Ok(())
}

/// Cuts a label to `max` characters with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(3)).collect();
    format!("{kept}...")
}

fn draw_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    c: &Curves,
) -> DrawResult {
    let tf = |y: f64| if c.log_y { y.max(f64::MIN_POSITIVE).log10() } else { y };
    let (x0, x1) = x_extent(c);
    let (y0, y1) = c.y_range.map(|(a, b)| (tf(a), tf(b))).unwrap_or_else(|| y_extent(c, &tf));
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(fail)?;
    let (x_span, y_span) = (x1 - x0, y1 - y0);
    let y_fmt = |v: &f64| if c.log_y { log_tick(*v, y_span) } else { tick(*v, y_span) };
    chart
        .configure_mesh()
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .max_light_lines(1)
        .light_line_style(RGBColor(245, 245, 245))
        .bold_line_style(RGBColor(220, 220, 220))
        .x_label_formatter(&|v| tick(*v, x_span))
        .y_label_formatter(&y_fmt)
        .draw()
        .map_err(fail)?;
    for band in &c.bands {
        let mut outline: Vec<(f64, f64)> =
            band.x.iter().zip(&band.high).map(|(x, y)| (*x, tf(*y))).collect();
        outline.extend(band.x.iter().zip(&band.low).rev().map(|(x, y)| (*x, tf(*y))));
        outline.retain(|(_, y)| y.is_finite());
        chart
            .draw_series(std::iter::once(Polygon::new(outline, band.colour.mix(0.18))))
            .map_err(fail)?;
    }
    for (y, colour) in &c.rules {
        let style = colour.mix(0.9).stroke_width(1);
        let dashes = DashedLineSeries::new([(x0, tf(*y)), (x1, tf(*y))], 6, 4, style);
        chart.draw_series(dashes).map_err(fail)?;
    }
    for line in &c.lines {
        let style = line.colour.mix(line.opacity).stroke_width(line.width);
        let points = line.points.iter().map(|(x, y)| (*x, tf(*y))).filter(|(_, y)| y.is_finite());
        let points: Vec<(f64, f64)> = points.collect();
        if let [single] = points.as_slice() {
            // A line needs two points; a lone value (one G update in a run) is a dot.
            let dot = Circle::new(*single, line.width + 2, style.filled());
            chart.draw_series(std::iter::once(dot)).map_err(fail)?;
        }
        chart.draw_series(LineSeries::new(points, style)).map_err(fail)?;
    }
    if c.lines.iter().all(|l| l.points.is_empty()) && c.bands.is_empty() {
        let note = (FAMILY, 14).into_font().color(&GREY).pos(centre());
        let (w, h) = area.dim_in_pixel();
        area.draw_text("no values to draw", &note, ((w / 2) as i32, (h / 2) as i32))
            .map_err(fail)?;
    }
    Ok(())
}

/// A value for a label: four decimals, or three significant digits for small values (a
/// learning rate of 5e-5 would otherwise print as 0.0001).
pub fn value_text(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.01 { format!("{v:.3e}") } else { format!("{v:.4}") }
}

/// Axis numbers without float noise (`0.1`, not `0.10000000000000001`), with enough
/// decimals that neighbouring ticks of an axis spanning `span` differ.
fn tick(v: f64, span: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".to_string();
    }
    if !(1e-3..1e5).contains(&a) && span > a * 1e-3 {
        return format!("{v:.1e}");
    }
    let decimals = if span > 0.0 { (2.0 - span.log10().floor()).clamp(0.0, 12.0) } else { 4.0 };
    let s = format!("{v:.*}", decimals as usize);
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// A tick of a log10 axis (`v` is the exponent), with more digits on a narrow axis.
fn log_tick(v: f64, span: f64) -> String {
    let digits = if span < 0.05 {
        3
    } else if span < 0.5 {
        2
    } else {
        1
    };
    format!("{:.*e}", digits, 10f64.powf(v))
}

fn x_extent(c: &Curves) -> (f64, f64) {
    let xs = c.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let xs = xs.chain(c.bands.iter().flat_map(|b| b.x.iter().copied()));
    let (lo, hi) =
        xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    match (lo.is_finite(), hi > lo) {
        (true, true) => (lo, hi),
        // A single step (one evaluation at the end): centre it on a small range around it.
        (true, false) => (lo - lo.abs().max(1.0) * 0.05, hi + hi.abs().max(1.0) * 0.05),
        (false, _) => (0.0, 1.0),
    }
}

fn y_extent(c: &Curves, tf: &dyn Fn(f64) -> f64) -> (f64, f64) {
    let ys = c.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let ys = ys.chain(c.bands.iter().flat_map(|b| b.low.iter().chain(&b.high).copied()));
    let ys = ys.chain(c.rules.iter().map(|r| r.0)).map(tf).filter(|y| y.is_finite());
    let (lo, hi) =
        ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { lo.abs().max(1.0) * 0.05 };
    (lo - pad, hi + pad)
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    bars: &[Bar],
) -> DrawResult {
    let values = bars.iter().flat_map(|b| {
        let (lo, hi) = b.spread.unwrap_or((b.value, b.value));
        [b.value, lo, hi, 0.0]
    });
    let values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    let lo = values.iter().copied().fold(0.0, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    let pad = ((hi - lo) * 0.08).max(1e-9);
    let n = bars.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(segments(n), (lo - pad)..(hi + pad))
        .map_err(fail)?;
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => bars.get(*i).map(|b| shorten(&b.label, 36)),
        _ => None,
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|v| label(v).unwrap_or_default())
        .y_desc(y_label)
        .y_label_formatter(&|v| tick(*v, hi - lo))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(fail)?;
    for (i, bar) in bars.iter().enumerate().filter(|(_, b)| b.value.is_finite()) {
        let corners = [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), bar.value)];
        let mut rect = Rectangle::new(corners, bar.colour.mix(0.85).filled());
        rect.set_margin(0, 0, 12, 12);
        chart.draw_series(std::iter::once(rect)).map_err(fail)?;
        if let Some((lo, hi)) = bar.spread {
            let whisker = vec![(SegmentValue::CenterOf(i), lo), (SegmentValue::CenterOf(i), hi)];
            chart
                .draw_series(std::iter::once(PathElement::new(whisker, BLACK.stroke_width(2))))
                .map_err(fail)?;
        }
    }
    Ok(())
}

fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    map: &Heatmap,
) -> DrawResult {
    let (nx, ny) = (map.columns.len().max(1), map.rows.len().max(1));
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 16))
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(150)
        .build_cartesian_2d(segments(nx), segments(ny))
        .map_err(fail)?;
    let name = |names: &[String], v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => names.get(*i).map(|s| shorten(s, 22)).unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(nx)
        .y_labels(ny)
        .x_desc(&map.x_label)
        .y_desc(&map.y_label)
        .x_label_formatter(&|v| name(&map.columns, v))
        .y_label_formatter(&|v| name(&map.rows, v))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .draw()
        .map_err(fail)?;
    let finite = map.cells.iter().flatten().copied().filter(|v| v.is_finite());
    let (lo, hi) =
        finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    for (j, row) in map.cells.iter().enumerate() {
        for (i, v) in row.iter().enumerate() {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            let fill = if v.is_finite() { colour_map(t) } else { RGBColor(200, 200, 200) };
            let cell = [
                (SegmentValue::Exact(i), SegmentValue::Exact(j)),
                (SegmentValue::Exact(i + 1), SegmentValue::Exact(j + 1)),
            ];
            let mut rect = Rectangle::new(cell, fill.filled());
            rect.set_margin(1, 1, 1, 1);
            chart.draw_series(std::iter::once(rect)).map_err(fail)?;
            let ink = if v.is_finite() && t < 0.55 { WHITE } else { BLACK };
            let text = if v.is_finite() { value_text(*v) } else { "n/a".to_string() };
            let style = (FAMILY, 13).into_font().color(&ink).pos(centre());
            let at = (SegmentValue::CenterOf(i), SegmentValue::CenterOf(j));
            chart.draw_series(std::iter::once(Text::new(text, at, style))).map_err(fail)?;
        }
    }
    Ok(())
}

/// `n` categories on an axis. plotters' segmented `0..k` has a slot for `k` itself, so `n`
/// slots are `0..n - 1`; one category still gets two slots (`0..0` has no width).
fn segments(n: usize) -> SegmentedCoord<RangedCoordusize> {
    (0..n.max(2) - 1).into_segmented()
}

/// Dark blue (low) through teal to yellow (high), close to viridis, readable in grey.
pub fn colour_map(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn draw_shares<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    rows: &[(String, Vec<f64>)],
    colours: &[RGBColor],
) -> DrawResult {
    let n = rows.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(320)
        .build_cartesian_2d(0.0..1.0, segments(n))
        .map_err(fail)?;
    let name = |v: &SegmentValue<usize>| match v {
        // The first row on top.
        SegmentValue::CenterOf(i) => {
            (n - 1).checked_sub(*i).and_then(|k| rows.get(k)).map(|r| shorten(&r.0, 52))
        }
        _ => None,
    };
    let name = |v: &SegmentValue<usize>| name(v).unwrap_or_default();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&name)
        .x_desc(x_label)
        .x_label_formatter(&|v| format!("{:.0} %", v * 100.0))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(fail)?;
    for (row, (_, shares)) in rows.iter().enumerate() {
        let j = n - 1 - row;
        let mut start = 0.0;
        for (share, colour) in shares.iter().zip(colours) {
            if !share.is_finite() || *share <= 0.0 {
                continue;
            }
            let corners =
                [(start, SegmentValue::Exact(j)), (start + share, SegmentValue::Exact(j + 1))];
            let mut rect = Rectangle::new(corners, colour.filled());
            rect.set_margin(4, 4, 0, 0);
            chart.draw_series(std::iter::once(rect)).map_err(fail)?;
            start += share;
        }
    }
    Ok(())
}
