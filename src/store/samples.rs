//! Sample grids: a batch of generated images tiled into one PNG.
//!
//! Images arrive as `[-1, 1]` floats (the generator's tanh range), `n` images of `side` x
//! `side` pixels with one channel (grey) or three (RGB planes). They are laid out row by row
//! in a square-ish grid with a 2-pixel dark border, so 64 images of 64 px make a 530 x 530
//! picture: a grey PNG for grey images, an RGB one for colour.

use std::path::Path;

use image::{DynamicImage, Rgb, RgbImage};

use crate::data::Shape;

use super::StoreError;

/// Pixels of border between and around the tiles.
pub const BORDER: u32 = 2;
const BORDER_SHADE: u8 = 32;

/// Columns of the grid for `n` images: the smallest square that holds them.
pub fn columns(n: usize) -> usize {
    (1..=n.max(1)).find(|c| c * c >= n).unwrap_or(1)
}

/// The side in pixels of a grid of `n` tiles of `side` pixels, as `(width, height)`.
pub fn grid_size(n: usize, side: usize) -> (u32, u32) {
    let cols = columns(n) as u32;
    let rows = n.div_ceil(cols as usize) as u32;
    let side = side as u32;
    (cols * side + (cols + 1) * BORDER, rows * side + (rows + 1) * BORDER)
}

/// Tiles the images into one picture: grey for one channel, RGB for three.
pub fn grid(values: &[f32], n: usize, shape: Shape) -> DynamicImage {
    let Shape { side, channels } = shape;
    assert_eq!(values.len(), n * shape.bytes(), "caller passes n images of the shape");
    let (width, height) = grid_size(n, side);
    let mut out = RgbImage::from_pixel(width, height, Rgb([BORDER_SHADE; 3]));
    let cols = columns(n);
    let plane = side * side;
    for (i, tile) in values.chunks_exact(shape.bytes()).enumerate() {
        let x0 = BORDER + ((i % cols) * (side + BORDER as usize)) as u32;
        let y0 = BORDER + ((i / cols) * (side + BORDER as usize)) as u32;
        for p in 0..plane {
            // Grey images use their one plane for all three colours.
            let shade = |c: usize| shade(tile[(c % channels) * plane + p]);
            let pixel = Rgb([shade(0), shade(1), shade(2)]);
            out.put_pixel(x0 + (p % side) as u32, y0 + (p / side) as u32, pixel);
        }
    }
    if channels == 1 {
        DynamicImage::ImageLuma8(DynamicImage::from(out).to_luma8())
    } else {
        out.into()
    }
}

fn shade(value: f32) -> u8 {
    ((value.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// Writes a grid as PNG.
pub fn save_grid(path: &Path, values: &[f32], n: usize, shape: Shape) -> Result<(), StoreError> {
    let mut png = std::io::Cursor::new(Vec::new());
    grid(values, n, shape)
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| StoreError::Image { path: path.to_path_buf(), message: e.to_string() })?;
    // Whole or not at all: a resumed run writes the grids after its checkpoint again.
    super::write_atomic(path, &png.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_four_tiles_make_an_eight_by_eight_grid() {
        assert_eq!(columns(64), 8);
        assert_eq!(grid_size(64, 64), (530, 530));
        assert_eq!(grid_size(10, 4), (4 * 4 + 5 * 2, 3 * 4 + 4 * 2));
    }

    #[test]
    fn tiles_land_in_their_cells_with_the_tanh_range_mapped_to_shades() {
        let side = 2;
        let mut values = vec![-1.0; 4 * side * side];
        values[side * side..2 * side * side].fill(1.0); // second tile white
        let img = grid(&values, 4, Shape { side, channels: 1 }).into_luma8();
        assert_eq!(img.get_pixel(BORDER, BORDER).0, [0]);
        let second_x = BORDER + side as u32 + BORDER;
        assert_eq!(img.get_pixel(second_x, BORDER).0, [255]);
        assert_eq!(img.get_pixel(0, 0).0, [BORDER_SHADE]);
    }

    #[test]
    fn colour_tiles_take_their_planes_as_red_green_and_blue() {
        // One 1-pixel image: red plane -1 (0), green 1 (255), blue 0 (128).
        let img = grid(&[-1.0, 1.0, 0.0], 1, Shape { side: 1, channels: 3 });
        let DynamicImage::ImageRgb8(img) = img else { panic!("colour grids are RGB") };
        assert_eq!(img.get_pixel(BORDER, BORDER).0, [0, 255, 128]);
    }
}
