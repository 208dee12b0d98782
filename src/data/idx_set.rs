//! A dataset in IDX files (MNIST, KMNIST, EMNIST, Fashion-MNIST...): an images file holding
//! `[count, height, width]` bytes and, optionally, a labels file with one byte per image.
//! Either may be gzipped. Images of any size are centre-cropped and resized like any other.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage};
use sha2::{Digest, Sha256};

use super::prepare::ImageSource;
use super::{DataError, DataSource, Origin, idx};
use crate::config::{DataConfig, DatasetName, Split};

/// Finds a config's `data.images` and `data.labels` and fingerprints them.
pub fn locate(cfg: &DataConfig) -> Result<DataSource, DataError> {
    let images = cfg.images.clone().expect("validated: dataset idx names its images");
    inspect(cfg.dataset, cfg.split, images, cfg.labels.clone(), None)
}

/// Reads both files whole, so damage is found before any training starts, checks that
/// they agree, and fingerprints their content. `names` are the class names, if known.
pub fn inspect(
    dataset: DatasetName,
    split: Split,
    images: PathBuf,
    labels: Option<PathBuf>,
    names: Option<&[&str]>,
) -> Result<DataSource, DataError> {
    let image_bytes = idx::unpack(&images, &read_bytes(&images)?)?;
    let dims = check_images(&images, &idx::check(&images, &image_bytes)?)?;
    let mut hasher = Sha256::new();
    hash_content(&mut hasher, &image_bytes);
    let mut classes = Vec::new();
    if let Some(labels) = &labels {
        let label_bytes = idx::unpack(labels, &read_bytes(labels)?)?;
        let label_dims = idx::check(labels, &label_bytes)?;
        check_pair(&images, &dims, labels, &label_dims)?;
        hash_content(&mut hasher, &label_bytes);
        let header = 4 + 4 * label_dims.len();
        let most = label_bytes[header..].iter().copied().max().map_or(0, |m| m as usize + 1);
        classes = match names {
            Some(names) if names.len() >= most => names.iter().map(|n| n.to_string()).collect(),
            _ => (0..most).map(|c| c.to_string()).collect(),
        };
    }
    let fingerprint = format!("{:x}", hasher.finalize());
    let origin = Origin::Idx { images, labels };
    Ok(DataSource { dataset, split, origin, fingerprint, count: dims[0], classes })
}

fn hash_content(hasher: &mut Sha256, content: &[u8]) {
    hasher.update((content.len() as u64).to_le_bytes());
    hasher.update(content);
}

/// Checks that an images file is `[count, height, width]` with no empty dimension.
fn check_images(path: &Path, dims: &[usize]) -> Result<Vec<usize>, DataError> {
    if dims.len() != 3 || dims.contains(&0) {
        return Err(DataError::Shape { path: path.to_path_buf(), shape: format!("{dims:?}") });
    }
    Ok(dims.to_vec())
}

/// Checks that there is one label per image.
fn check_pair(
    images: &Path,
    image_dims: &[usize],
    labels: &Path,
    label_dims: &[usize],
) -> Result<(), DataError> {
    let n_images = image_dims[0];
    if label_dims.len() != 1 {
        let shape = format!("{label_dims:?}");
        return Err(DataError::LabelShape { path: labels.to_path_buf(), shape });
    }
    if label_dims[0] != n_images {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            labels: labels.to_path_buf(),
            n_images,
            n_labels: label_dims.iter().product(),
            shape: format!("{:?}", &image_dims[1..]),
        });
    }
    Ok(())
}

pub fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|cause| DataError::Read { path: path.to_path_buf(), cause })
}

/// The images of an IDX source, read into memory and checked again (the files may have
/// changed since they were located).
pub struct IdxImages {
    height: usize,
    width: usize,
    pixels: Vec<u8>,
    labels: Option<Vec<u8>>,
}

impl IdxImages {
    pub fn read(source: &DataSource) -> Result<Self, DataError> {
        let Origin::Idx { images, labels } = &source.origin else {
            unreachable!("IdxImages reads IDX sources only")
        };
        let array = idx::read(images, &read_bytes(images)?)?;
        let dims = check_images(images, &array.dims)?;
        let labels = match labels {
            Some(path) => {
                let read = idx::read(path, &read_bytes(path)?)?;
                check_pair(images, &dims, path, &read.dims)?;
                Some(read.data)
            }
            None => None,
        };
        Ok(Self { height: dims[1], width: dims[2], pixels: array.data, labels })
    }
}

impl ImageSource for IdxImages {
    fn len(&self) -> usize {
        self.pixels.len() / (self.height * self.width)
    }

    fn load(&self, index: usize) -> Result<DynamicImage, String> {
        let n = self.height * self.width;
        let bytes = self.pixels[index * n..(index + 1) * n].to_vec();
        let image = GrayImage::from_raw(self.width as u32, self.height as u32, bytes)
            .expect("the slice holds height x width bytes");
        Ok(DynamicImage::ImageLuma8(image))
    }

    fn label(&self, index: usize) -> u8 {
        self.labels.as_ref().map_or(0, |labels| labels[index])
    }

    fn name(&self, index: usize) -> String {
        format!("image {index}")
    }
}
