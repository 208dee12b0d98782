//! Fashion-MNIST: where to find its IDX files. It is an IDX dataset ([`idx_set`]) that is
//! found by name.
//!
//! Lookup order: the config's `data.path`, else `$DCGAN_DATA_DIR`, else the folder of
//! Debian's `dataset-fashion-mnist` package. An explicit `data.path` or variable is taken at
//! its word: a missing file there is an error rather than a silent fall-back to another copy.
//! In a folder, a gzipped file is used in preference to a plain one of the same name.

use std::path::{Path, PathBuf};

use super::{DataError, DataSource, idx_set};
use crate::config::{DataConfig, Split};

/// Environment variable naming a folder with the IDX files.
pub const DATA_DIR_ENV: &str = "DCGAN_DATA_DIR";
/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The classes, label 0 first.
pub const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

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

fn inspect(cfg: &DataConfig, images: PathBuf, labels: PathBuf) -> Result<DataSource, DataError> {
    idx_set::inspect(cfg.dataset, cfg.split, images, Some(labels), Some(&CLASSES))
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
        dataset: cfg.dataset.as_str().to_string(),
        split: cfg.split.as_str().to_string(),
        wanted: format!("{images_stem}[.gz] and {labels_stem}[.gz]"),
        searched: searched.join(", "),
        hint,
    }
}

fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}
