//! Training images: finding the dataset files, fingerprinting, decoding and batching them.
//!
//! Images are kept decoded as bytes at training size (64x64), one copy per process shared by
//! every run of a sweep, and turned into `[-1, 1]` floats one batch at a time: the train split
//! is 250 MB as bytes but 1 GB as f32.

pub mod batches;
pub mod decoded;
pub mod fashion;
pub mod idx;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{DataConfig, DatasetName, Split};

/// Why a dataset could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{dataset} {split} split not found; looked for {wanted} in: {searched}. {hint}")]
    Missing { dataset: String, split: String, wanted: String, searched: String, hint: String },
    #[error("cannot read {path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("{path} is not a valid IDX file: {reason}")]
    NotIdx { path: PathBuf, reason: String },
    #[error("{images} holds {n_images} images of {shape} but {labels} holds {n_labels} labels")]
    CountMismatch {
        images: PathBuf,
        labels: PathBuf,
        n_images: usize,
        n_labels: usize,
        shape: String,
    },
    #[error("{path} holds images of {shape} pixels; Fashion-MNIST images are [28, 28]")]
    Shape { path: PathBuf, shape: String },
}

/// Where a dataset split lives and what its files hash to; cheap to compute (no decoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    pub dataset: DatasetName,
    pub split: Split,
    pub images: PathBuf,
    pub labels: PathBuf,
    /// sha256 over the files' IDX content, images then labels: independent of where they
    /// live and of whether they are gzipped.
    pub fingerprint: String,
    /// Images in the split, from the checked headers.
    pub count: usize,
}

/// A decoded split: every image at training size, as bytes, plus its label.
#[derive(Debug)]
pub struct Dataset {
    pub source: DataSource,
    /// Side of the square images in pixels.
    pub side: usize,
    pixels: Pixels,
    pub labels: Vec<u8>,
}

/// Where a dataset's pixels are: decoded in this process, or mapped from the disk cache.
#[derive(Debug)]
enum Pixels {
    Owned(Vec<u8>),
    Mapped { map: memmap2::Mmap, offset: usize, len: usize },
}

impl Dataset {
    pub fn new(source: DataSource, side: usize, pixels: Vec<u8>, labels: Vec<u8>) -> Self {
        debug_assert_eq!(pixels.len(), labels.len() * side * side);
        Self { source, side, pixels: Pixels::Owned(pixels), labels }
    }

    /// A dataset whose pixels are `labels.len()` images starting at `offset` in a mapped file.
    pub fn mapped(
        source: DataSource,
        side: usize,
        map: memmap2::Mmap,
        offset: usize,
        labels: Vec<u8>,
    ) -> Self {
        let len = labels.len() * side * side;
        assert!(offset + len <= map.len(), "the map holds every image");
        Self { source, side, pixels: Pixels::Mapped { map, offset, len }, labels }
    }

    /// Every image's pixels, one after another.
    pub fn pixels(&self) -> &[u8] {
        match &self.pixels {
            Pixels::Owned(pixels) => pixels,
            Pixels::Mapped { map, offset, len } => &map[*offset..offset + len],
        }
    }

    /// Whether the pixels are mapped from the disk cache rather than decoded here.
    pub fn is_mapped(&self) -> bool {
        matches!(self.pixels, Pixels::Mapped { .. })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// How many images a run uses: the first `limit`, or all of them.
    pub fn images_used(&self, limit: Option<usize>) -> usize {
        limit.unwrap_or(self.len()).min(self.len())
    }

    /// The pixels of image `i`, row-major, 0 (black) to 255 (white).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.side * self.side;
        &self.pixels()[i * n..(i + 1) * n]
    }
}

/// Datasets already located or decoded in this process, so a sweep reads each split once;
/// with a disk cache, decoded images are also shared with other processes ([`decoded`]).
#[derive(Default)]
pub struct DatasetCache {
    sources: HashMap<(Option<PathBuf>, Split), DataSource>,
    decoded: HashMap<(String, usize), Arc<Dataset>>,
    disk: Option<PathBuf>,
}

impl DatasetCache {
    /// A cache that also keeps decoded images in `dir` (`<runs>/.cache`) for other processes.
    pub fn on_disk(dir: &Path) -> Self {
        Self { disk: Some(dir.to_path_buf()), ..Self::default() }
    }

    /// Locates and fingerprints the files a config asks for.
    pub fn source(&mut self, cfg: &DataConfig) -> Result<DataSource, DataError> {
        let key = (cfg.path.clone(), cfg.split);
        if let Some(found) = self.sources.get(&key) {
            return Ok(found.clone());
        }
        let found = fashion::locate(cfg)?;
        self.sources.insert(key, found.clone());
        Ok(found)
    }

    /// The decoded images a config asks for, decoding them on first use.
    pub fn dataset(&mut self, cfg: &DataConfig) -> Result<Arc<Dataset>, DataError> {
        let source = self.source(cfg)?;
        let key = (source.fingerprint.clone(), cfg.image_size);
        if let Some(found) = self.decoded.get(&key) {
            return Ok(found.clone());
        }
        let decoded = Arc::new(self.decode(source, cfg.image_size)?);
        self.decoded.insert(key, decoded.clone());
        Ok(decoded)
    }

    /// Maps the images from the disk cache, or decodes them (and fills the disk cache).
    fn decode(&self, source: DataSource, side: usize) -> Result<Dataset, DataError> {
        if let Some(found) = self.disk.as_deref().and_then(|d| decoded::load(d, &source, side)) {
            tracing::debug!("mapped the decoded images of {}", source.images.display());
            return Ok(found);
        }
        let started = std::time::Instant::now();
        let decoded = fashion::decode(source, side)?;
        tracing::info!(
            images = decoded.len(),
            side,
            seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
            "decoded {}",
            decoded.source.images.display()
        );
        if let Some(dir) = &self.disk {
            match decoded::store(dir, &decoded) {
                Ok(file) => tracing::debug!("kept the decoded images in {}", file.display()),
                Err(e) => tracing::warn!("cannot keep the decoded images for other runs: {e}"),
            }
        }
        Ok(decoded)
    }
}
