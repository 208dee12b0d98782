//! Sample pictures: the final grid of every run on one contact sheet, and per run a strip of
//! the fixed-z samples over training.
//!
//! The grids are read back from the runs' PNG files (reports never load a model). Every grid
//! of a run comes from the same fixed z, so the first row of tiles of successive grids shows
//! the same eight samples developing.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rayon::prelude::*;

use super::ReportError;
use super::charts::{FAMILY, register_font};
use crate::store::{self, samples};

/// Side of a run's final grid on the contact sheet, in pixels.
const THUMB: u32 = 264;
/// Height of the label under each thumbnail.
const LABEL_H: u32 = 52;
const TITLE_H: u32 = 40;
const STRIP_TITLE_H: u32 = 44;
const GAP: u32 = 12;
/// Rows of a strip: grids spread evenly over training, first and last included.
pub const STRIP_STEPS: usize = 10;
const STEP_LABEL_W: u32 = 96;

/// A run's pictures: its label and its sample grids in step order.
pub struct RunSamples {
    pub short: String,
    pub label: String,
    /// `(step, path)` of every sample grid.
    pub grids: Vec<(u64, PathBuf)>,
    /// Pixels per image side in the grids.
    pub side: usize,
}

/// The sample grids of a run directory, in step order (none when it has no `samples/`).
pub fn list_grids(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir.join(store::SAMPLES_DIR)) else { return Vec::new() };
    let mut grids: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let step = name.strip_prefix("step_")?.strip_suffix(".png")?.parse().ok()?;
            Some((step, p))
        })
        .collect();
    grids.sort();
    grids
}

/// The grids of a run a report shows, decoded: up to [`STRIP_STEPS`] spread over training,
/// the last one included. Unreadable files are skipped and named in `problems`.
pub struct Decoded {
    pub grids: Vec<(u64, RgbImage)>,
    /// Whether the run's last grid (the contact sheet's) could be read.
    pub last_readable: bool,
    pub problems: Vec<String>,
}

pub fn decode(run: &RunSamples) -> Decoded {
    let mut decoded = Decoded { grids: Vec::new(), last_readable: false, problems: Vec::new() };
    let chosen = spread(&run.grids, STRIP_STEPS);
    for (i, (step, path)) in chosen.iter().enumerate() {
        match read_rgb(path) {
            Ok(grid) => {
                decoded.grids.push((*step, grid));
                decoded.last_readable = i + 1 == chosen.len();
            }
            Err(e) => {
                tracing::warn!(run = %run.short, "{e}; left out of the sample pictures");
                decoded.problems.push(e.to_string());
            }
        }
    }
    decoded
}

/// Writes the final grid of every run side by side, each labelled with its swept values.
pub fn contact_sheet(
    path: &Path,
    title: &str,
    runs: &[RunSamples],
    decoded: &[Decoded],
) -> Result<(), ReportError> {
    let columns = (runs.len() as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (runs.len() as u32).div_ceil(columns).max(1);
    let cell_w = THUMB + GAP;
    let cell_h = THUMB + LABEL_H + GAP;
    let (w, h) = (GAP + columns * cell_w, TITLE_H + rows * cell_h);
    let mut sheet = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let thumbs: Vec<RgbImage> = decoded.par_iter().map(thumbnail).collect();
    for (i, thumb) in thumbs.iter().enumerate() {
        let x = GAP + (i as u32 % columns) * cell_w;
        let y = TITLE_H + (i as u32 / columns) * cell_h;
        imageops::overlay(&mut sheet, thumb, x.into(), y.into());
    }
    let labels = runs.iter().zip(decoded).enumerate().flat_map(|(i, (run, d))| {
        let x = (GAP + (i as u32 % columns) * cell_w + THUMB / 2) as i32;
        let y = (TITLE_H + (i as u32 / columns) * cell_h + THUMB) as i32;
        let mut lines = vec![(run.short.clone(), x, y + 10)];
        let (first, second) = two_lines(&run.label, 36);
        lines.push((first, x, y + 25));
        lines.push((second, x, y + 39));
        if run.grids.is_empty() {
            lines.push(("no samples".to_string(), x, y - THUMB as i32 / 2));
        } else if !d.last_readable {
            lines.push(("last grid unreadable".to_string(), x, y - THUMB as i32 / 2));
        }
        lines
    });
    let labels: Vec<(String, i32, i32)> = labels.collect();
    write_text(&mut sheet, title, &labels, path)?;
    save_png(path, &DynamicImage::from(sheet))
}

/// A run's last grid shrunk to the sheet's cell, or a grey square when it cannot be shown.
fn thumbnail(decoded: &Decoded) -> RgbImage {
    match decoded.grids.last() {
        Some((_, grid)) if decoded.last_readable => {
            imageops::resize(grid, THUMB, THUMB, FilterType::Triangle)
        }
        _ => RgbImage::from_pixel(THUMB, THUMB, Rgb([215, 215, 215])),
    }
}

/// Writes one run's strip: the first row of tiles of its decoded grids, one row per step,
/// labelled with the step. Nothing is written for a run without readable grids.
pub fn strip(
    path: &Path,
    title: &str,
    run: &RunSamples,
    decoded: &Decoded,
) -> Result<bool, ReportError> {
    let Some((_, first)) = decoded.grids.first() else { return Ok(false) };
    let row_h = run.side as u32 + 2 * samples::BORDER;
    let rows = decoded.grids.len() as u32;
    let (w, h) = (STEP_LABEL_W + first.width(), STRIP_TITLE_H + row_h * rows);
    let mut out = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let mut labels = Vec::with_capacity(decoded.grids.len() + 2);
    for (i, (step, grid)) in decoded.grids.iter().enumerate() {
        let height = row_h.min(grid.height());
        let row = imageops::crop_imm(grid, 0, 0, grid.width(), height).to_image();
        let y = STRIP_TITLE_H + i as u32 * row_h;
        imageops::overlay(&mut out, &row, STEP_LABEL_W.into(), y.into());
        labels.push((format!("step {step}"), (STEP_LABEL_W / 2) as i32, (y + row_h / 2) as i32));
    }
    let (first, second) = match title.split_once('\n') {
        Some((a, b)) => (a.to_string(), super::charts::shorten(b, (w / 8) as usize)),
        None => two_lines(title, (w / 8) as usize),
    };
    labels.push((first, (w / 2) as i32, 14));
    labels.push((second, (w / 2) as i32, 32));
    write_text(&mut out, "", &labels, path)?;
    save_png(path, &DynamicImage::from(out))?;
    Ok(true)
}

/// Splits a label at a space into two lines of at most `max` characters (the second cut
/// short if needed).
fn two_lines(text: &str, max: usize) -> (String, String) {
    if text.chars().count() <= max {
        return (text.to_string(), String::new());
    }
    let mut first = String::new();
    let mut words = text.split(' ').peekable();
    while let Some(word) = words.peek() {
        let longer = first.chars().count() + word.chars().count() + usize::from(!first.is_empty());
        if longer > max && !first.is_empty() {
            break;
        }
        if !first.is_empty() {
            first.push(' ');
        }
        first.push_str(word);
        words.next();
    }
    let rest: Vec<&str> = words.collect();
    (first, super::charts::shorten(&rest.join(" "), max))
}

/// Up to `n` items spread evenly, first and last always included.
pub fn spread<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    if n < 2 {
        return items.last().cloned().into_iter().collect();
    }
    let last = items.len() - 1;
    let mut picked: Vec<usize> = (0..n).map(|i| i * last / (n - 1)).collect();
    picked.dedup();
    picked.into_iter().map(|i| items[i].clone()).collect()
}

fn read_rgb(path: &Path) -> Result<RgbImage, ReportError> {
    let image = image::open(path)
        .map_err(|e| ReportError::Picture { path: path.to_path_buf(), message: e.to_string() })?;
    Ok(image.to_rgb8())
}

/// Draws a title centred at the top and labels centred on their points.
fn write_text(
    image: &mut RgbImage,
    title: &str,
    labels: &[(String, i32, i32)],
    path: &Path,
) -> Result<(), ReportError> {
    register_font();
    let (w, h) = image.dimensions();
    let chart = |e: String| ReportError::Chart { path: path.to_path_buf(), message: e };
    let root = BitMapBackend::with_buffer(image.as_mut(), (w, h)).into_drawing_area();
    let centred = Pos::new(HPos::Center, VPos::Center);
    let big = (FAMILY, 20).into_font().color(&BLACK).pos(centred);
    let small = (FAMILY, 13).into_font().color(&BLACK).pos(centred);
    let draw = |text: &str, style: &TextStyle, at: (i32, i32)| {
        root.draw_text(text, style, at).map_err(|e| chart(e.to_string()))
    };
    if !title.is_empty() {
        draw(title, &big, ((w / 2) as i32, (TITLE_H / 2) as i32))?;
    }
    for (text, x, y) in labels {
        draw(text, &small, (*x, *y))?;
    }
    root.present().map_err(|e| chart(e.to_string()))
}

/// Encodes a PNG in memory and writes it atomically.
pub fn save_png(path: &Path, image: &DynamicImage) -> Result<(), ReportError> {
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, ImageFormat::Png)
        .map_err(|e| ReportError::Picture { path: path.to_path_buf(), message: e.to_string() })?;
    store::write_atomic(path, bytes.get_ref())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_keeps_first_and_last() {
        let items: Vec<u32> = (0..21).collect();
        assert_eq!(spread(&items, 5), vec![0, 5, 10, 15, 20]);
        assert_eq!(spread(&items[..3], 5), vec![0, 1, 2]);
    }
}
