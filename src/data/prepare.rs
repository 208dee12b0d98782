//! Turning source images of any size and colour into training images: converted to the
//! configured channels, centre-cropped to a square, resized to the training side with a
//! triangle (bilinear) filter, and laid out channel by channel (planar, as tensors want).
//!
//! Decoding runs in parallel, a chunk of images at a time, and hands each chunk's pixels to a
//! sink in order, so a large dataset can be written straight to the disk cache without ever
//! being whole in memory.

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Pixel};
use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::config::{CHANNELS, IMAGE_SIZES};

/// The training shape every image is brought to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    pub side: usize,
    pub channels: usize,
}

impl Shape {
    /// Bytes of one prepared image.
    pub fn bytes(&self) -> usize {
        self.side * self.side * self.channels
    }

    /// Whether the networks can be built for it.
    pub fn is_supported(&self) -> bool {
        IMAGE_SIZES.contains(&self.side) && CHANNELS.contains(&self.channels)
    }
}

/// Images decoded in parallel per chunk: big enough to keep every core busy, small enough
/// that a chunk of 128 px RGB images stays well under 100 MB.
const CHUNK: usize = 2048;

/// Where images come from, by index; loading must be safe from many threads at once.
pub trait ImageSource: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The image, or why it cannot be read.
    fn load(&self, index: usize) -> Result<DynamicImage, String>;
    fn label(&self, index: usize) -> u8;
    /// How to name the image in a message (its file, or its index).
    fn name(&self, index: usize) -> String;
}

/// An image that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// What decoding produced besides the pixels.
#[derive(Debug, Default)]
pub struct Prepared {
    pub labels: Vec<u8>,
    pub skipped: Vec<Skipped>,
    /// Ctrl-C or SIGTERM stopped decoding before the end: the result is partial.
    pub interrupted: bool,
}

/// Decodes every image of `source` to `shape`, passing the pixels of each chunk to `sink`
/// in source order; unreadable images are left out and listed.
pub fn decode_all<E>(
    source: &dyn ImageSource,
    shape: Shape,
    bar: &ProgressBar,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<Prepared, E> {
    let mut prepared = Prepared::default();
    let mut start = 0;
    while start < source.len() {
        if crate::interrupt::requested() {
            prepared.interrupted = true;
            break;
        }
        let end = (start + CHUNK).min(source.len());
        let results: Vec<Result<Vec<u8>, String>> = (start..end)
            .into_par_iter()
            .map(|i| source.load(i).map(|image| prepare(image, shape)))
            .collect();
        let mut pixels = Vec::with_capacity((end - start) * shape.bytes());
        for (i, result) in (start..end).zip(results) {
            match result {
                Ok(image) => {
                    pixels.extend_from_slice(&image);
                    prepared.labels.push(source.label(i));
                }
                Err(reason) => prepared.skipped.push(Skipped { name: source.name(i), reason }),
            }
        }
        sink(&pixels)?;
        bar.inc((end - start) as u64);
        start = end;
    }
    Ok(prepared)
}

/// One image brought to the training shape, planar.
pub fn prepare(image: DynamicImage, shape: Shape) -> Vec<u8> {
    let side = shape.side as u32;
    if shape.channels == 1 {
        square_resized(image.into_luma8(), side).into_raw()
    } else {
        let rgb = square_resized(image.into_rgb8(), side).into_raw();
        planar(&rgb, shape.channels)
    }
}

/// The centre square of an image, resized to `side` x `side`.
fn square_resized<P>(image: ImageBuffer<P, Vec<u8>>, side: u32) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let (w, h) = image.dimensions();
    let edge = w.min(h);
    let square = if w == h {
        image
    } else {
        imageops::crop_imm(&image, (w - edge) / 2, (h - edge) / 2, edge, edge).to_image()
    };
    if edge == side { square } else { imageops::resize(&square, side, side, FilterType::Triangle) }
}

/// Interleaved pixels (`rgbrgb...`) to planes (`rrr...ggg...bbb...`).
fn planar(interleaved: &[u8], channels: usize) -> Vec<u8> {
    let per_plane = interleaved.len() / channels;
    let mut out = vec![0; interleaved.len()];
    for (p, pixel) in interleaved.chunks_exact(channels).enumerate() {
        for (c, &value) in pixel.iter().enumerate() {
            out[c * per_plane + p] = value;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    #[test]
    fn a_wide_image_keeps_its_centre_square() {
        // 6x2: black, black, white, white, black, black in each row.
        let image =
            GrayImage::from_fn(6, 2, |x, _| Luma([if (2..4).contains(&x) { 255 } else { 0 }]));
        let shape = Shape { side: 2, channels: 1 };
        assert_eq!(prepare(DynamicImage::ImageLuma8(image), shape), vec![255; 4]);
    }

    #[test]
    fn colour_is_laid_out_in_planes_and_grey_is_spread_over_them() {
        let image = RgbImage::from_pixel(3, 3, Rgb([10, 20, 30]));
        let shape = Shape { side: 3, channels: 3 };
        let planes = prepare(DynamicImage::ImageRgb8(image), shape);
        assert_eq!(&planes[..9], &[10; 9]);
        assert_eq!(&planes[9..18], &[20; 9]);
        assert_eq!(&planes[18..], &[30; 9]);
        let grey = GrayImage::from_pixel(4, 4, Luma([77]));
        assert_eq!(
            prepare(DynamicImage::ImageLuma8(grey), Shape { side: 2, channels: 3 }),
            vec![77; 12]
        );
    }

    #[test]
    fn square_sources_resize_exactly_as_a_plain_resize() {
        let image = GrayImage::from_fn(28, 28, |x, y| Luma([(x * 9 + y * 3) as u8]));
        let plain = imageops::resize(&image, 64, 64, FilterType::Triangle).into_raw();
        let shape = Shape { side: 64, channels: 1 };
        assert_eq!(prepare(DynamicImage::ImageLuma8(image), shape), plain);
    }
}
