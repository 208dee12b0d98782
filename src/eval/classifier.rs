//! The domain classifier whose features the metrics compare: a small CNN trained on the
//! dataset's own labelled images, once per dataset, and cached.
//!
//! Inception features (the usual FID) need weights we cannot fetch and suit 64x64 grey
//! clothes poorly; a classifier trained on the domain is the usual substitute for MNIST-like
//! data. It sees images exactly as the GAN makes them (training shape, `[-1, 1]`), averages
//! them down to 32x32, then three conv + max-pool stages (16, 32, 64 channels), a 128-unit
//! hidden layer (the features) and one logit per class of the dataset. It needs labels: a
//! dataset without at least two classes cannot be scored. The cache lives in
//! `<runs>/.cache/classifier/`, keyed by the dataset's fingerprint, the image shape and this
//! file's training settings, so every run of every sweep on a dataset is scored by the same
//! network.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::EvalError;
use crate::config::EvalConfig;
use crate::data::batches::images_tensor;
use crate::data::{Dataset, Shape};
use crate::step::read_f32;
use crate::store;

/// Length of the feature vector the metrics use.
pub const FEATURES: usize = 128;
const CHANNELS: [usize; 3] = [16, 32, 64];
/// Side the classifier averages every image down to.
const SEEN_SIDE: usize = 32;
const WEIGHTS_FILE: &str = "classifier.bpk";
/// Images per forward pass when extracting features.
const CHUNK: usize = 250;

#[derive(Module, Debug)]
pub struct Classifier {
    shrink: AvgPool2d,
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
    hidden: Linear,
    classify: Linear,
    classes: usize,
}

/// How the classifier is trained; part of its cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// The learning rate is multiplied by this after each epoch.
    pub lr_decay: f64,
    pub seed: u64,
    /// Every `holdout_every`-th image is held out to measure accuracy, never trained on.
    pub holdout_every: usize,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self { epochs: 5, batch_size: 128, lr: 2e-3, lr_decay: 0.6, seed: 0, holdout_every: 6 }
    }
}

/// `manifest.json` of a cached classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierManifest {
    pub dataset_fingerprint: String,
    pub config: ClassifierConfig,
    /// Classes it tells apart (its logits).
    pub classes: usize,
    pub trained_images: usize,
    pub held_out_images: usize,
    /// Share of held-out images classified correctly.
    pub held_out_accuracy: f64,
    pub seconds: f64,
}

impl Classifier {
    /// A fresh classifier for images of `shape` (side 32 or more) and `classes` classes.
    pub fn new(shape: Shape, classes: usize, device: &Device) -> Self {
        let conv = |pair: &[usize]| {
            Conv2dConfig::new([pair[0], pair[1]], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let ladder = [&[shape.channels][..], &CHANNELS[..]].concat();
        let shrink = (shape.side / SEEN_SIDE).max(1);
        let deepest = CHANNELS[2] * 4 * 4;
        Self {
            shrink: AvgPool2dConfig::new([shrink, shrink]).with_strides([shrink, shrink]).init(),
            convs: ladder.windows(2).map(conv).collect(),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            hidden: LinearConfig::new(deepest, FEATURES).init(device),
            classify: LinearConfig::new(FEATURES, classes).init(device),
            classes,
        }
    }

    /// How many classes its logits stand for.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// `[batch, channels, side, side]` → (`[batch, FEATURES]` features, `[batch, classes]`
    /// logits).
    pub fn forward(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let batch = images.dims()[0];
        let mut x = self.shrink.forward(images); // [batch, channels, 32, 32]
        for conv in &self.convs {
            x = self.pool.forward(relu(conv.forward(x)));
        }
        // [batch, 64, 4, 4] -> [batch, 1024]
        let x = x.reshape([batch, CHANNELS[2] * 16]);
        let features = relu(self.hidden.forward(x));
        let logits = self.classify.forward(features.clone());
        (features, logits)
    }

    /// Features and predicted classes of `n` images of `shape`, in chunks.
    pub fn describe(
        &self,
        images: &[f32],
        shape: Shape,
        device: &Device,
    ) -> Result<(Vec<f32>, Vec<usize>), EvalError> {
        let per_image = shape.bytes();
        let dims = |n| [n, shape.channels, shape.side, shape.side];
        let mut features = Vec::with_capacity(images.len() / per_image * FEATURES);
        let mut classes = Vec::with_capacity(images.len() / per_image);
        for chunk in images.chunks(CHUNK * per_image) {
            let n = chunk.len() / per_image;
            let x = Tensor::from_data(TensorData::new(chunk.to_vec(), dims(n)), device);
            let (f, logits) = self.forward(x);
            features.extend(read_f32(f).map_err(EvalError::Backend)?);
            let logits = read_f32(logits).map_err(EvalError::Backend)?;
            classes.extend(argmax_rows(&logits, self.classes));
        }
        Ok((features, classes))
    }
}

fn argmax_rows(values: &[f32], width: usize) -> Vec<usize> {
    values
        .chunks(width)
        .map(|row| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |m| m.0))
        .collect()
}

/// The cache folder of the classifier for a dataset at a training shape.
pub fn cache_dir(
    runs_root: &Path,
    fingerprint: &str,
    shape: Shape,
    cfg: &ClassifierConfig,
) -> PathBuf {
    let json = serde_json::to_string(cfg).expect("the classifier config serialises");
    let key = format!("{:x}", Sha256::digest(json.as_bytes()));
    let name = format!("{}-{}", crate::data::shaped_name(fingerprint, shape), &key[..16]);
    runs_root.join(".cache/classifier").join(name)
}

/// The cached classifier for `data`, trained first if there is none.
pub fn load_or_train(
    runs_root: &Path,
    data: &Dataset,
    eval: &EvalConfig,
    device: &Device,
    training_device: &Device,
) -> Result<(Classifier, ClassifierManifest), EvalError> {
    let cfg = ClassifierConfig { epochs: eval.classifier_epochs, ..ClassifierConfig::default() };
    load_or_train_with(runs_root, data, device, training_device, cfg)
}

/// As [`load_or_train`] with other training settings (tests train a quicker one).
pub fn load_or_train_with(
    runs_root: &Path,
    data: &Dataset,
    device: &Device,
    training_device: &Device,
    cfg: ClassifierConfig,
) -> Result<(Classifier, ClassifierManifest), EvalError> {
    let (classes, present) = (data.class_count(), data.classes_present());
    if present < 2 {
        let at = data.source.location().display();
        let why = format!("{at} has {present} class(es) with images; two or more needed");
        return Err(EvalError::Data(why));
    }
    let dir = cache_dir(runs_root, &data.source.fingerprint, data.shape(), &cfg);
    // Workers of a parallel sweep all want it at once: one trains it, the rest wait and read.
    let _lock = lock_cache(&dir)?;
    if let Some(cached) = read_cached(&dir, data.shape(), device) {
        return Ok(cached);
    }
    if dir.exists() {
        tracing::warn!("{}: unreadable classifier cache; training it again", dir.display());
    }
    tracing::info!(
        "training the evaluation classifier on {} images (once per dataset)",
        data.len()
    );
    let started = Instant::now();
    let (model, trained, held_out) = train(data, &cfg, training_device)?;
    let model = model.valid();
    let accuracy = accuracy(&model, data, &held_out, device)?;
    let manifest = ClassifierManifest {
        dataset_fingerprint: data.source.fingerprint.clone(),
        config: cfg,
        classes,
        trained_images: trained,
        held_out_images: held_out.len(),
        held_out_accuracy: accuracy,
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(
        accuracy = format!("{:.3}", accuracy),
        "classifier ready; cached in {}",
        dir.display()
    );
    save(&dir, data.shape(), &model, &manifest)?;
    Ok((model, manifest))
}

/// Holds `<dir>.lock` (an OS lock, let go when the file is dropped) while a classifier is
/// read or trained.
fn lock_cache(dir: &Path) -> Result<std::fs::File, EvalError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| store::StoreError::io(parent, e))?;
    let path = dir.with_extension("lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path);
    let file = file.map_err(|e| store::StoreError::io(&path, e))?;
    if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
        tracing::info!("another process is training the evaluation classifier; waiting for it");
        file.lock().map_err(|e| store::StoreError::io(&path, e))?;
    }
    Ok(file)
}

fn read_cached(
    dir: &Path,
    shape: Shape,
    device: &Device,
) -> Option<(Classifier, ClassifierManifest)> {
    let text = std::fs::read_to_string(dir.join(store::MANIFEST_FILE)).ok()?;
    let manifest: ClassifierManifest = serde_json::from_str(&text).ok()?;
    let weights = dir.join(WEIGHTS_FILE);
    let model = Classifier::new(shape, manifest.classes, device).try_load_file(&weights).ok()?;
    Some((model, manifest))
}

/// Writes the classifier into a temporary folder and renames it into place, so a reader sees
/// a whole cache entry or none; if another process got there first, its entry is kept.
fn save(
    dir: &Path,
    shape: Shape,
    model: &Classifier,
    manifest: &ClassifierManifest,
) -> Result<(), EvalError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let tmp = parent.join(format!(".tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| store::StoreError::io(&tmp, e))?;
    let weights = tmp.join(WEIGHTS_FILE);
    model.clone().into_record().save(&weights).map_err(|e| store::StoreError::Checkpoint {
        path: weights.clone(),
        message: e.to_string(),
    })?;
    let json = serde_json::to_vec_pretty(manifest).expect("manifests serialise");
    store::write_atomic(&tmp.join(store::MANIFEST_FILE), &json)?;
    // An unreadable entry (we only get here when the cache could not be read) is replaced.
    if dir.exists() && read_cached(dir, shape, &Device::default()).is_none() {
        std::fs::remove_dir_all(dir).map_err(|e| store::StoreError::io(dir, e))?;
    }
    if std::fs::rename(&tmp, dir).is_err() {
        // Another process finished first: keep its entry.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

/// Trains on every image but each `holdout_every`-th; returns the model, the number of
/// training images and the held-out indices.
fn train(
    data: &Dataset,
    cfg: &ClassifierConfig,
    device: &Device,
) -> Result<(Classifier, usize, Vec<u32>), EvalError> {
    device.seed(cfg.seed);
    let mut model = Classifier::new(data.shape(), data.class_count(), device);
    let mut optimizer = AdamConfig::new().init();
    let (train_idx, held_out): (Vec<u32>, Vec<u32>) =
        (0..data.len() as u32).partition(|i| !(*i as usize).is_multiple_of(cfg.holdout_every));
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    // A small dataset would otherwise have no whole batch at all, and train nothing.
    let batch_size = cfg.batch_size.min(train_idx.len()).max(1);
    let batches = train_idx.len() / batch_size;
    let bar = crate::terminal::add(indicatif::ProgressBar::new((cfg.epochs * batches) as u64));
    for epoch in 0..cfg.epochs {
        let lr = cfg.lr * cfg.lr_decay.powi(epoch as i32);
        let mut order = train_idx.clone();
        order.shuffle(&mut rng);
        for batch in order.chunks_exact(batch_size) {
            let images = images_tensor(data, batch, device);
            let (_, logits) = model.forward(images);
            let loss = cross_entropy(logits, &labels_of(data, batch), device);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr, model, grads);
            bar.inc(1);
        }
    }
    crate::terminal::remove(&bar);
    Ok((model, train_idx.len(), held_out))
}

fn labels_of(data: &Dataset, indices: &[u32]) -> Vec<usize> {
    indices.iter().map(|&i| data.labels[i as usize] as usize).collect()
}

/// Mean cross-entropy of logits against class labels.
fn cross_entropy(logits: Tensor<2>, labels: &[usize], device: &Device) -> Tensor<1> {
    let classes = logits.dims()[1];
    let mut one_hot = vec![0f32; labels.len() * classes];
    for (row, &label) in labels.iter().enumerate() {
        one_hot[row * classes + label.min(classes - 1)] = 1.0;
    }
    let target = Tensor::from_data(TensorData::new(one_hot, [labels.len(), classes]), device);
    (log_softmax(logits, 1) * target).sum_dim(1).mean().neg()
}

fn accuracy(
    model: &Classifier,
    data: &Dataset,
    held_out: &[u32],
    device: &Device,
) -> Result<f64, EvalError> {
    let mut right = 0usize;
    for chunk in held_out.chunks(CHUNK) {
        let (_, logits) = model.forward(images_tensor(data, chunk, device));
        let predicted = argmax_rows(&read_f32(logits).map_err(EvalError::Backend)?, model.classes);
        right += predicted.iter().zip(labels_of(data, chunk)).filter(|(p, l)| **p == *l).count();
    }
    Ok(right as f64 / held_out.len().max(1) as f64)
}
