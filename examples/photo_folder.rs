//! Writes a folder of JPEG "photos" made from Fashion-MNIST images, for benchmarking the
//! folder loader without downloading anything: each image is tinted by its class, scaled to
//! a random size between 160 and 400 px (not square) and saved as a JPEG in a sub-folder
//! named after its class.
//!
//! `cargo run --release --example photo_folder -- IDX_IMAGES IDX_LABELS OUT_DIR COUNT`

use std::path::Path;

use dcgan_harness::data::idx;
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [images, labels, out, count] = &args[..] else {
        return Err("usage: photo_folder IDX_IMAGES IDX_LABELS OUT_DIR COUNT".into());
    };
    let count: usize = count.parse()?;
    let images = read_idx(Path::new(images))?;
    let labels = read_idx(Path::new(labels))?;
    let available = labels.len().min(images.len() / 784);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..count {
        let k = i % available;
        let class = labels[k] as usize;
        let tint = [(class * 25 % 256) as u8, (255 - class * 20) as u8, (90 + class * 15) as u8];
        let tile = RgbImage::from_fn(28, 28, |x, y| {
            let v = images[k * 784 + (y * 28 + x) as usize] as u32;
            Rgb(tint.map(|t| (v * t as u32 / 255) as u8))
        });
        let (w, h) = (160 + next(&mut state) % 241, 160 + next(&mut state) % 241);
        let photo = imageops::resize(&tile, w as u32, h as u32, FilterType::Triangle);
        let dir = Path::new(out).join(format!("class-{class}"));
        std::fs::create_dir_all(&dir)?;
        photo.save(dir.join(format!("{i:06}.jpg")))?;
    }
    Ok(())
}

/// The data bytes of an IDX file, gzipped or not.
fn read_idx(path: &Path) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    Ok(idx::read(path, &std::fs::read(path)?)?.data)
}

/// xorshift64: any spread of sizes will do, and this needs no dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
