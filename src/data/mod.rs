//! Training images: finding the dataset files, fingerprinting, decoding and batching them.
//!
//! Three kinds of dataset: Fashion-MNIST (found by name), any pair of IDX files, and a folder
//! of PNG and JPEG files. Images are kept decoded as bytes at training size, one copy per
//! machine shared by every run through the disk cache ([`decoded`]), and turned into
//! `[-1, 1]` floats one batch at a time, ahead of the step that needs them ([`prefetch`]):
//! the Fashion-MNIST train split is 250 MB as bytes but 1 GB as f32.

pub mod batches;
pub mod decoded;
pub mod fashion;
pub mod folder;
pub mod idx;
pub mod idx_set;
pub mod prefetch;
pub mod prepare;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{DataConfig, DatasetName, Split};
pub use prepare::{Shape, Skipped};

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
    #[error("{path} holds an array of {shape}; images must be [count, height, width], none 0")]
    Shape { path: PathBuf, shape: String },
    #[error("{path} holds no PNG or JPEG files (.png, .jpg, .jpeg), in it or below it")]
    NoImages { path: PathBuf },
    #[error("{path} holds an array of {shape}; labels must be [count], one byte per image")]
    LabelShape { path: PathBuf, shape: String },
    #[error("{path} is a runs folder of dcgan (it holds .locks/), not a folder of images")]
    RunsFolder { path: PathBuf },
    #[error("{path} has {count} classes (sub-folders); at most 256 are supported")]
    TooManyClasses { path: PathBuf, count: usize },
    #[error("{count} image file(s) under {path} cannot be read, and data.strict is true:\n{list}")]
    Unreadable { path: PathBuf, count: usize, list: String },
    #[error("none of the {count} image files under {path} can be read:\n{list}")]
    NothingReadable { path: PathBuf, count: usize, list: String },
    #[error("cannot keep the decoded images in {path}: {cause}")]
    Cache { path: PathBuf, cause: std::io::Error },
    #[error("images cannot be made {side} px with {channels} channel(s): 32, 64 or 128, 1 or 3")]
    BadShape { side: usize, channels: usize },
    #[error("decoding was stopped by Ctrl-C or SIGTERM; nothing of it was kept")]
    Interrupted,
}

/// Where a dataset split lives and what its files hash to; cheap to compute (no decoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    pub dataset: DatasetName,
    pub split: Split,
    pub origin: Origin,
    /// sha256 over the files' content (IDX: images then labels, gunzipped; folder: every
    /// image file with its path under the folder): independent of where the files live.
    pub fingerprint: String,
    /// Images found: IDX images, or a folder's image files (some may prove unreadable).
    pub count: usize,
    /// Class names, label 0 first; empty when the images carry no labels.
    pub classes: Vec<String>,
}

/// The files behind a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Idx { images: PathBuf, labels: Option<PathBuf> },
    Folder { root: PathBuf, files: Arc<Vec<folder::Entry>> },
}

impl DataSource {
    /// The file or folder to name in messages: the IDX images, or the image folder.
    pub fn location(&self) -> &Path {
        match &self.origin {
            Origin::Idx { images, .. } => images,
            Origin::Folder { root, .. } => root,
        }
    }

    /// The files a manifest lists: the IDX files, or the image folder.
    pub fn files(&self) -> Vec<&Path> {
        match &self.origin {
            Origin::Idx { images, labels } => {
                std::iter::once(images.as_path()).chain(labels.as_deref()).collect()
            }
            Origin::Folder { root, .. } => vec![root.as_path()],
        }
    }

    /// How the dataset is named in messages: `fashion-mnist test split`, `idx`, `folder`.
    pub fn describe(&self) -> String {
        match self.dataset {
            DatasetName::FashionMnist => format!("the fashion-mnist {} split", self.split.as_str()),
            other => format!("the {} dataset", other.as_str()),
        }
    }
}

/// How files made from a dataset at a shape are named (decoded images, the classifier, the
/// grid of `data inspect`): `<fingerprint, 16 digits>-<side>px-<channels>ch`.
pub fn shaped_name(fingerprint: &str, shape: Shape) -> String {
    let short: String = fingerprint.chars().take(16).collect();
    format!("{short}-{}px-{}ch", shape.side, shape.channels)
}

/// A decoded split: every image at training size, as bytes, plus its label.
#[derive(Debug)]
pub struct Dataset {
    pub source: DataSource,
    /// Side of the square images in pixels.
    pub side: usize,
    /// Colour channels: 1 (grey) or 3 (RGB), stored as planes.
    pub channels: usize,
    pixels: Pixels,
    /// Each image's class (0 for all when the dataset has no labels).
    pub labels: Vec<u8>,
    /// Image files that could not be read and so are not in the dataset.
    pub skipped: Vec<Skipped>,
    /// Whether this process decoded the images (rather than finding them in the disk cache).
    pub decoded_here: bool,
}

/// Where a dataset's pixels are: decoded in this process, or mapped from the disk cache.
#[derive(Debug)]
enum Pixels {
    Owned(Vec<u8>),
    Mapped { map: memmap2::Mmap, offset: usize, len: usize },
}

impl Dataset {
    pub fn new(source: DataSource, shape: Shape, pixels: Vec<u8>, labels: Vec<u8>) -> Self {
        debug_assert_eq!(pixels.len(), labels.len() * shape.bytes());
        let (side, channels) = (shape.side, shape.channels);
        let pixels = Pixels::Owned(pixels);
        Self { source, side, channels, pixels, labels, skipped: Vec::new(), decoded_here: true }
    }

    /// A dataset whose pixels are `labels.len()` images starting at `offset` in a mapped file.
    pub fn mapped(
        source: DataSource,
        shape: Shape,
        map: memmap2::Mmap,
        offset: usize,
        labels: Vec<u8>,
    ) -> Self {
        let len = labels.len() * shape.bytes();
        assert!(offset + len <= map.len(), "the map holds every image");
        let (side, channels) = (shape.side, shape.channels);
        let pixels = Pixels::Mapped { map, offset, len };
        Self { source, side, channels, pixels, labels, skipped: Vec::new(), decoded_here: false }
    }

    /// The shape of every image.
    pub fn shape(&self) -> Shape {
        Shape { side: self.side, channels: self.channels }
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

    /// The pixels of image `i`, channel by channel, each row-major, 0 (dark) to 255.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape().bytes();
        &self.pixels()[i * n..(i + 1) * n]
    }

    /// Classes the labels can name (0 when the dataset has no labels).
    pub fn class_count(&self) -> usize {
        self.source.classes.len()
    }

    /// Classes that have at least one image: what a classifier can learn to tell apart.
    pub fn classes_present(&self) -> usize {
        if self.source.classes.is_empty() {
            return 0;
        }
        let mut seen = [false; 256];
        self.labels.iter().for_each(|&l| seen[l as usize] = true);
        seen.iter().filter(|&&s| s).count()
    }
}

/// What locating a dataset depends on: its kind, its files (path, images, labels) and split.
type SourceKey = (DatasetName, Option<PathBuf>, Option<PathBuf>, Option<PathBuf>, Split);

/// Datasets already located or decoded in this process, so a sweep reads each dataset once;
/// with a disk cache, decoded images are also shared with other processes ([`decoded`]).
#[derive(Default)]
pub struct DatasetCache {
    sources: HashMap<SourceKey, DataSource>,
    decoded: HashMap<(String, Shape), Arc<Dataset>>,
    disk: Option<PathBuf>,
}

impl DatasetCache {
    /// A cache that also keeps decoded images in `dir` (`<runs>/.cache`) for other processes.
    pub fn on_disk(dir: &Path) -> Self {
        Self { disk: Some(dir.to_path_buf()), ..Self::default() }
    }

    /// Locates and fingerprints the files a config asks for.
    pub fn source(&mut self, cfg: &DataConfig) -> Result<DataSource, DataError> {
        let key =
            (cfg.dataset, cfg.path.clone(), cfg.images.clone(), cfg.labels.clone(), cfg.split);
        if let Some(found) = self.sources.get(&key) {
            return Ok(found.clone());
        }
        let found = match cfg.dataset {
            DatasetName::FashionMnist => fashion::locate(cfg)?,
            DatasetName::Idx => idx_set::locate(cfg)?,
            DatasetName::Folder => folder::locate(cfg, self.disk.as_deref())?,
        };
        self.sources.insert(key, found.clone());
        Ok(found)
    }

    /// The decoded images a config asks for, decoding them on first use. With
    /// `data.strict`, a folder with unreadable files is an error.
    pub fn dataset(&mut self, cfg: &DataConfig) -> Result<Arc<Dataset>, DataError> {
        let source = self.source(cfg)?;
        let shape = cfg.shape();
        // Configs are validated, but library callers pass any values; 0 channels would divide.
        if !shape.is_supported() {
            return Err(DataError::BadShape { side: shape.side, channels: shape.channels });
        }
        let key = (source.fingerprint.clone(), shape);
        let data = match self.decoded.get(&key) {
            Some(found) => found.clone(),
            None => {
                let decoded = Arc::new(self.decode(source, shape)?);
                self.decoded.insert(key, decoded.clone());
                decoded
            }
        };
        usable(&data, cfg.strict)?;
        Ok(data)
    }

    /// Maps the images from the disk cache, or decodes them (into the disk cache if any).
    fn decode(&self, source: DataSource, shape: Shape) -> Result<Dataset, DataError> {
        if let Some(found) = self.disk.as_deref().and_then(|d| decoded::load(d, &source, shape)) {
            tracing::debug!("mapped the decoded images of {}", source.location().display());
            if !found.skipped.is_empty() {
                tracing::info!(
                    "{} unreadable file(s) under {} are left out (`dcgan data inspect` lists them)",
                    found.skipped.len(),
                    source.location().display()
                );
            }
            return Ok(found);
        }
        let started = std::time::Instant::now();
        let decoded = self.decode_fresh(source, shape)?;
        tracing::info!(
            images = decoded.len(),
            side = shape.side,
            channels = shape.channels,
            seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
            "decoded {}",
            decoded.source.location().display()
        );
        if !decoded.skipped.is_empty() {
            tracing::warn!(
                "{} of {} image files under {} cannot be read and are left out:\n{}",
                decoded.skipped.len(),
                decoded.source.count,
                decoded.source.location().display(),
                list_skipped(&decoded.skipped)
            );
        }
        Ok(decoded)
    }

    /// Decodes the source's files, straight into the disk cache when there is one.
    fn decode_fresh(&self, source: DataSource, shape: Shape) -> Result<Dataset, DataError> {
        let images = load_images(&source)?;
        let bar = decoding_bar(&source);
        let result = match &self.disk {
            Some(dir) => match decoded::build(dir, source.clone(), shape, &*images, &bar) {
                Ok(found) => Ok(found),
                Err(DataError::Cache { path, cause }) => {
                    tracing::warn!(
                        "cannot keep the decoded images in {} for other runs ({cause}); \
                         decoding them into memory",
                        path.display()
                    );
                    bar.set_position(0);
                    in_memory(source, shape, &*images, &bar)
                }
                Err(e) => Err(e),
            },
            None => in_memory(source, shape, &*images, &bar),
        };
        crate::terminal::remove(&bar);
        result
    }
}

/// Refuses a dataset with no readable image, or (when strict) any unreadable one.
fn usable(data: &Dataset, strict: bool) -> Result<(), DataError> {
    let path = data.source.location().to_path_buf();
    let (count, list) = (data.skipped.len(), list_skipped(&data.skipped));
    if data.is_empty() {
        return Err(DataError::NothingReadable { path, count, list });
    }
    if strict && count > 0 {
        return Err(DataError::Unreadable { path, count, list });
    }
    Ok(())
}

/// The source's images, ready to decode one by one.
fn load_images(source: &DataSource) -> Result<Box<dyn prepare::ImageSource>, DataError> {
    Ok(match &source.origin {
        Origin::Idx { .. } => Box::new(idx_set::IdxImages::read(source)?),
        Origin::Folder { root, files } => Box::new(folder::FolderImages::new(root, files)),
    })
}

fn in_memory(
    source: DataSource,
    shape: Shape,
    images: &dyn prepare::ImageSource,
    bar: &indicatif::ProgressBar,
) -> Result<Dataset, DataError> {
    let mut pixels = Vec::with_capacity(images.len() * shape.bytes());
    let sink = &mut |chunk: &[u8]| -> Result<(), std::convert::Infallible> {
        pixels.extend_from_slice(chunk);
        Ok(())
    };
    let Ok(prepared) = prepare::decode_all(images, shape, bar, sink);
    if prepared.interrupted {
        return Err(DataError::Interrupted);
    }
    let mut data = Dataset::new(source, shape, pixels, prepared.labels);
    data.skipped = prepared.skipped;
    Ok(data)
}

fn decoding_bar(source: &DataSource) -> indicatif::ProgressBar {
    let style = indicatif::ProgressStyle::with_template(
        "decoding {prefix} [{bar:30}] {pos}/{len} images {per_sec} eta {eta}",
    )
    .expect("the template is valid")
    .progress_chars("=> ");
    let name = source.location().file_name().unwrap_or_default().to_string_lossy().into_owned();
    let bar = indicatif::ProgressBar::new(source.count as u64).with_style(style).with_prefix(name);
    crate::terminal::add(bar)
}

/// The unreadable files, one per line with the reason; at most 50, then how many more.
pub fn list_skipped(skipped: &[Skipped]) -> String {
    const SHOWN: usize = 50;
    let mut lines: Vec<String> =
        skipped.iter().take(SHOWN).map(|s| format!("  {}: {}", s.name, s.reason)).collect();
    if skipped.len() > SHOWN {
        lines.push(format!("  ... and {} more", skipped.len() - SHOWN));
    }
    lines.join("\n")
}
