//! Fashion-MNIST: where to find its IDX files and how to decode them to training size.
//!
//! Lookup order: the config's `data.path`, else `$DCGAN_DATA_DIR`, else the folder of
//! Debian's `dataset-fashion-mnist` package. An explicit `data.path` or variable is taken at
//! its word: a missing file there is an error rather than a silent fall-back to another copy.
//! In a folder, a gzipped file is used in preference to a plain one of the same name.

use std::path::{Path, PathBuf};

use image::{GrayImage, imageops::FilterType};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{DataError, DataSource, Dataset, idx};
use crate::config::{DataConfig, DatasetName, Split};

/// Environment variable naming a folder with the IDX files.
pub const DATA_DIR_ENV: &str = "DCGAN_DATA_DIR";
/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Side of the images as stored in the files.
const STORED_SIDE: usize = 28;

fn file_stems(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// The folders to search, in order, for a config.
pub fn search_dirs(cfg: &DataConfig) -> Vec<PathBuf> {
    if let Some(path) = &cfg.path {
        return vec![path.clone()];
    }
    // A variable set on purpose is taken at its word too: no silent fall-back.
    match std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(env) => vec![PathBuf::from(env)],
        None => vec![PathBuf::from(SYSTEM_DIR)],
    }
}

/// Finds a split's two files (gzipped or plain) and fingerprints them.
pub fn locate(cfg: &DataConfig) -> Result<DataSource, DataError> {
    let (images_stem, labels_stem) = file_stems(cfg.split);
    let dirs = search_dirs(cfg);
    for dir in &dirs {
        let images = find_file(dir, images_stem);
        let labels = find_file(dir, labels_stem);
        if let (Some(images), Some(labels)) = (images, labels) {
            return inspect(cfg, images, labels);
        }
    }
    Err(missing(cfg, &dirs))
}

/// Reads both files whole, so damage is found before any training starts, and fingerprints
/// their content.
fn inspect(cfg: &DataConfig, images: PathBuf, labels: PathBuf) -> Result<DataSource, DataError> {
    let image_bytes = idx::unpack(&images, &read_bytes(&images)?)?;
    let label_bytes = idx::unpack(&labels, &read_bytes(&labels)?)?;
    let image_dims = idx::check(&images, &image_bytes)?;
    let label_dims = idx::check(&labels, &label_bytes)?;
    let count = check_pair(&images, &image_dims, &labels, &label_dims)?;
    let mut hasher = Sha256::new();
    for content in [&image_bytes, &label_bytes] {
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(content);
    }
    let fingerprint = format!("{:x}", hasher.finalize());
    let (dataset, split) = (cfg.dataset, cfg.split);
    Ok(DataSource { dataset, split, images, labels, fingerprint, count })
}

/// Checks that the images are 28x28 and that there is one label per image; returns the count.
fn check_pair(
    images: &Path,
    image_dims: &[usize],
    labels: &Path,
    label_dims: &[usize],
) -> Result<usize, DataError> {
    let shape = &image_dims[1..];
    if shape != [STORED_SIDE, STORED_SIDE] {
        return Err(DataError::Shape { path: images.to_path_buf(), shape: format!("{shape:?}") });
    }
    let n_images = image_dims[0];
    if label_dims.len() != 1 || label_dims[0] != n_images {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            labels: labels.to_path_buf(),
            n_images,
            n_labels: label_dims.iter().product(),
            shape: format!("{shape:?}"),
        });
    }
    Ok(n_images)
}

fn missing(cfg: &DataConfig, dirs: &[PathBuf]) -> DataError {
    let (images_stem, labels_stem) = file_stems(cfg.split);
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let hint = match cfg.split {
        Split::Train => format!(
            "Install them with `apt-get install dataset-fashion-mnist` (Debian), or point \
             data.path or ${DATA_DIR_ENV} at a folder holding the official IDX files"
        ),
        Split::Test => format!(
            "The repository ships them in data/fashion-mnist/: set data.path or \
             ${DATA_DIR_ENV} to that folder"
        ),
    };
    DataError::Missing {
        dataset: dataset_name(cfg.dataset).to_string(),
        split: cfg.split.as_str().to_string(),
        wanted: format!("{images_stem}[.gz] and {labels_stem}[.gz]"),
        searched: searched.join(", "),
        hint,
    }
}

pub fn dataset_name(name: DatasetName) -> &'static str {
    match name {
        DatasetName::FashionMnist => "fashion-mnist",
    }
}

fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|cause| DataError::Read { path: path.to_path_buf(), cause })
}

/// Reads both files, checks them again (they may have changed since `locate`), and upscales
/// every image to `side` x `side`.
pub fn decode(source: DataSource, side: usize) -> Result<Dataset, DataError> {
    let images = idx::read(&source.images, &read_bytes(&source.images)?)?;
    let labels = idx::read(&source.labels, &read_bytes(&source.labels)?)?;
    check_pair(&source.images, &images.dims, &source.labels, &labels.dims)?;
    let pixels = resize_all(&images.data, STORED_SIDE, side);
    Ok(Dataset::new(source, side, pixels, labels.data))
}

/// Bilinear resize of a stack of square grayscale images, in parallel.
pub fn resize_all(pixels: &[u8], from: usize, to: usize) -> Vec<u8> {
    if from == to {
        return pixels.to_vec();
    }
    let chunks: Vec<Vec<u8>> = pixels
        .par_chunks(from * from)
        .map(|img| {
            let img = GrayImage::from_raw(from as u32, from as u32, img.to_vec())
                .expect("chunk length is from * from");
            image::imageops::resize(&img, to as u32, to as u32, FilterType::Triangle).into_raw()
        })
        .collect();
    chunks.concat()
}
