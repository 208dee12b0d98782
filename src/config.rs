//! The run configuration: every knob of one training run, with the seed's setup as defaults.
//!
//! A config has five sections (data, model, train, balance, logging). Every field has a
//! default, so a YAML file only names what it changes; unknown keys are rejected with their
//! line. This module knows nothing of tensors or files: it only describes and validates.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::balance::{Signal, Strategy};

/// Problems with a configuration's values (syntax errors are reported by the YAML loaders).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("`{key}` is {value}; it must be {expected}")]
    OutOfRange { key: &'static str, value: String, expected: String },
}

/// One training run, fully described.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub balance: BalanceConfig,
    pub logging: LoggingConfig,
    /// How samples are scored against the real images. Not part of the run's hash: it does
    /// not change what is trained, and `dcgan eval` can score a run again.
    pub eval: EvalConfig,
    /// How often a resumable checkpoint is written. Not part of the run's hash: a resumed
    /// run ends bit-identical to an uninterrupted one, so it does not change what is trained.
    pub checkpoint: CheckpointConfig,
}

/// Resume checkpoints (weights, optimizer state, RNG state, rows so far).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Write one every this many steps; 0 writes one only when Ctrl-C or SIGTERM stops the
    /// run. A crash loses at most the steps since the last one.
    pub every: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        // At width 64 on 2 CPU cores a step takes about 5 s: at most ~17 minutes are lost,
        // for a checkpoint of ~120 MB that takes well under a second to write.
        Self { every: 200 }
    }
}

/// Which images to train on, and at what size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `fashion-mnist` (the default), `idx` (any MNIST-format pair of files, named by
    /// `images` and `labels`) or `folder` (PNG and JPEG files under `path`).
    pub dataset: DatasetName,
    /// Fashion-MNIST's split: `train` (60,000 images) or `test` (10,000, bundled with the
    /// repo). Ignored by the other datasets.
    pub split: Split,
    /// Fashion-MNIST: the folder holding its IDX files; folder: the image folder. Not part of
    /// the run's hash, like every path here: the files' content fingerprint is, so the same
    /// files give the same hash wherever they live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `idx` only: the IDX file of the images (`[count, height, width]`, gzipped or not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<PathBuf>,
    /// `idx` only: the IDX file of the labels, one byte per image; optional.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// `folder` only: fail the run on an unreadable image file instead of skipping it.
    /// Not part of the hash: when a run trains at all, it trains the same images.
    #[serde(skip_serializing_if = "is_false")]
    pub strict: bool,
    /// Train on only the first `limit` images (for quick experiments and tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Side of the square images fed to the networks, in pixels: 32, 64 or 128.
    pub image_size: usize,
    /// Colour channels of the images: 1 (grey) or 3 (RGB).
    pub channels: usize,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Image sides the networks support: 4 px doubled by 3, 4 or 5 stride-2 stages.
pub const IMAGE_SIZES: [usize; 3] = [32, 64, 128];
/// Image channels: grey or RGB.
pub const CHANNELS: [usize; 2] = [1, 3];

impl DataConfig {
    /// The shape images are trained at.
    pub fn shape(&self) -> crate::data::Shape {
        crate::data::Shape { side: self.image_size, channels: self.channels }
    }

    /// Every file or folder the config names, for making them absolute.
    pub fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        [&mut self.path, &mut self.images, &mut self.labels].into_iter().flatten()
    }
}

impl DataConfig {
    /// Checks that the dataset is given the files it reads, and no others.
    fn check_files(&self) -> Result<(), ConfigError> {
        let name = self.dataset.as_str();
        let given = |key: &'static str, value: &Option<PathBuf>| match value {
            Some(path) => Err(ConfigError::OutOfRange {
                key,
                value: format!("{:?}", path.display().to_string()),
                expected: format!("left out for dataset `{name}`"),
            }),
            None => Ok(()),
        };
        let needed = |key: &'static str, value: &Option<PathBuf>, what: &str| match value {
            Some(_) => Ok(()),
            None => Err(ConfigError::OutOfRange {
                key,
                value: "missing".into(),
                expected: format!("{what} for dataset `{name}`"),
            }),
        };
        match self.dataset {
            DatasetName::FashionMnist => {
                given("data.images", &self.images)?;
                given("data.labels", &self.labels)?;
            }
            DatasetName::Idx => {
                given("data.path", &self.path)?;
                needed("data.images", &self.images, "the IDX file of the images")?;
            }
            DatasetName::Folder => {
                given("data.images", &self.images)?;
                given("data.labels", &self.labels)?;
                needed("data.path", &self.path, "the folder of PNG and JPEG files")?;
            }
        }
        if self.strict && self.dataset != DatasetName::Folder {
            let expected = "false: only dataset `folder` skips unreadable files".to_string();
            let value = "true".into();
            return Err(ConfigError::OutOfRange { key: "data.strict", value, expected });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    FashionMnist,
    Idx,
    Folder,
}

impl DatasetName {
    /// The name as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Idx => "idx",
            DatasetName::Folder => "folder",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Train,
    Test,
}

impl Split {
    /// The name as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// Shape of the generator and discriminator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Length of the latent vector z.
    pub z_dim: usize,
    /// Channels of the discriminator's first conv; the generator starts at 8 x width
    /// (64 gives the seed's 512x4x4).
    pub width: usize,
    /// Dropout rate after the discriminator's 2nd and 4th conv.
    pub dropout: f64,
    /// Standard deviation of the N(0, std) weight initialisation (Radford et al.: 0.02).
    pub init_std: f64,
}

/// Optimisation: steps, batches, Adam, seed and backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Training steps (one D pass and at most one update of each network per step).
    pub steps: u64,
    /// Real images per step, and generated images D sees per step.
    pub batch_size: usize,
    /// Extra z the generator is updated on, beside the batch D saw.
    pub extra_z: usize,
    pub lr_d: f64,
    pub lr_g: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Adam's epsilon, set on purpose: burn's default (1e-5) differs from PyTorch's (1e-8).
    pub epsilon: f64,
    /// Seeds the data order, z, dropout and initialisation.
    pub seed: u64,
    /// Where tensors run: `flex` (pure-Rust CPU).
    pub backend: String,
}

/// How D's accuracy (or loss) steers the updates; see `balance.rs` for the rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BalanceConfig {
    pub strategy: Strategy,
    pub signal: Signal,
    /// Under this, `min(acc_real, acc_fake)` puts the step in zone `below` (D too weak).
    pub low: f64,
    /// Over this, `min(acc_real, acc_fake)` puts the step in zone `above` (D too strong).
    pub high: f64,
    /// For `signal: loss`: a loss under `margin` means D is too good on that half, a loss
    /// over `1 - margin` means it is too bad.
    pub margin: f64,
    /// Multiplicative step of `lr-adjust` per step (1.05 = 5 % up or down).
    pub lr_factor: f64,
    pub lr_d_min: f64,
    pub lr_d_max: f64,
    pub lr_g_min: f64,
    pub lr_g_max: f64,
}

/// What gets written while training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// Write a metrics row every this many steps (the last step always gets one).
    pub every: u64,
    /// Write an 8x8 sample grid every this many steps (and at the end).
    pub sample_every: u64,
    /// Seed of the fixed z behind every sample grid, so grids of one run are comparable.
    pub sample_seed: u64,
}

/// Scoring samples against real images (Fréchet distance, KID, precision/recall, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// `false` skips evaluation (recorded in the manifest).
    pub enabled: bool,
    /// Evaluate every this many steps; 0 evaluates only at the end (which always happens).
    pub every: u64,
    /// Generated and real images compared per evaluation.
    pub n: usize,
    /// Seed of the real images drawn and of the generator's fixed eval z.
    pub seed: u64,
    /// Epochs the dataset's classifier trains for (once per dataset; cached by this value).
    pub classifier_epochs: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self { enabled: true, every: 0, n: 1000, seed: 7, classifier_epochs: 5 }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetName::FashionMnist,
            split: Split::Train,
            path: None,
            images: None,
            labels: None,
            strict: false,
            limit: None,
            image_size: 64,
            channels: 1,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self { z_dim: 100, width: 64, dropout: 0.3, init_std: 0.02 }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 5000,
            batch_size: 64,
            extra_z: 64,
            lr_d: 5e-5,
            lr_g: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            epsilon: 1e-8,
            seed: 0,
            backend: "flex".to_string(),
        }
    }
}

impl Default for BalanceConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::None,
            signal: Signal::Accuracy,
            // At or under chance on either half, D cannot teach G; past 0.8 on both it
            // separates them so well that G's gradient fades. See the README for the
            // quickstart's measured zone shares under these values.
            low: 0.5,
            high: 0.8,
            margin: 0.3,
            lr_factor: 1.02,
            // One decade either side of the seed's rates.
            lr_d_min: 5e-6,
            lr_d_max: 5e-4,
            lr_g_min: 2e-5,
            lr_g_max: 2e-3,
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { every: 1, sample_every: 100, sample_seed: 2024 }
    }
}

impl RunConfig {
    /// Checks every value that YAML types alone cannot: ranges, orderings, supported shapes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (d, m, t, b, l) = (&self.data, &self.model, &self.train, &self.balance, &self.logging);
        let sizes = IMAGE_SIZES.contains(&d.image_size);
        check("data.image_size", d.image_size as f64, sizes, "32, 64 or 128")?;
        let channels = CHANNELS.contains(&d.channels);
        check("data.channels", d.channels as f64, channels, "1 (grey) or 3 (RGB)")?;
        d.check_files()?;
        if let Some(limit) = d.limit {
            let at_least = format!("at least train.batch_size ({})", t.batch_size);
            check("data.limit", limit as f64, limit >= t.batch_size, &at_least)?;
        }
        let e = &self.eval;
        // k-NN metrics need a 5th neighbour, and a covariance needs more samples than a few.
        check("eval.n", e.n as f64, e.n >= 10, "at least 10")?;
        let epochs = e.classifier_epochs;
        check("eval.classifier_epochs", epochs as f64, epochs >= 1, "at least 1")?;
        check("model.z_dim", m.z_dim as f64, m.z_dim >= 1, "at least 1")?;
        check("model.width", m.width as f64, m.width >= 1, "at least 1")?;
        check("model.dropout", m.dropout, (0.0..1.0).contains(&m.dropout), "in [0, 1)")?;
        check("model.init_std", m.init_std, m.init_std > 0.0, "a positive number")?;
        check("train.steps", t.steps as f64, t.steps >= 1, "at least 1")?;
        check("train.batch_size", t.batch_size as f64, t.batch_size >= 1, "at least 1")?;
        positive("train.lr_d", t.lr_d)?;
        positive("train.lr_g", t.lr_g)?;
        check("train.beta1", t.beta1, (0.0..1.0).contains(&t.beta1), "in [0, 1)")?;
        check("train.beta2", t.beta2, (0.0..1.0).contains(&t.beta2), "in [0, 1)")?;
        positive("train.epsilon", t.epsilon)?;
        check("balance.low", b.low, (0.0..=1.0).contains(&b.low), "in [0, 1]")?;
        let above_low = b.high > b.low && b.high <= 1.0;
        check("balance.high", b.high, above_low, "above balance.low and at most 1")?;
        check("balance.margin", b.margin, b.margin > 0.0 && b.margin < 0.5, "in (0, 0.5)")?;
        check("balance.lr_factor", b.lr_factor, b.lr_factor >= 1.0, "at least 1")?;
        positive("balance.lr_d_min", b.lr_d_min)?;
        positive("balance.lr_g_min", b.lr_g_min)?;
        check("balance.lr_d_max", b.lr_d_max, b.lr_d_max >= b.lr_d_min, "at least lr_d_min")?;
        check("balance.lr_g_max", b.lr_g_max, b.lr_g_max >= b.lr_g_min, "at least lr_g_min")?;
        if b.strategy == Strategy::LrAdjust {
            let in_d = (b.lr_d_min..=b.lr_d_max).contains(&t.lr_d);
            check("train.lr_d", t.lr_d, in_d, "within [balance.lr_d_min, balance.lr_d_max]")?;
            let in_g = (b.lr_g_min..=b.lr_g_max).contains(&t.lr_g);
            check("train.lr_g", t.lr_g, in_g, "within [balance.lr_g_min, balance.lr_g_max]")?;
        }
        check("logging.every", l.every as f64, l.every >= 1, "at least 1")?;
        check("logging.sample_every", l.sample_every as f64, l.sample_every >= 1, "at least 1")
    }
}

fn positive(key: &'static str, value: f64) -> Result<(), ConfigError> {
    check(key, value, value > 0.0 && value.is_finite(), "a positive, finite number")
}

fn check(key: &'static str, value: f64, ok: bool, expected: &str) -> Result<(), ConfigError> {
    if ok {
        return Ok(());
    }
    Err(ConfigError::OutOfRange { key, value: value.to_string(), expected: expected.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seed_setup_and_valid() {
        let c = RunConfig::default();
        assert_eq!((c.model.z_dim, c.model.width), (100, 64));
        assert_eq!((c.train.batch_size, c.train.extra_z), (64, 64));
        assert_eq!((c.train.lr_d, c.train.lr_g, c.train.beta1), (5e-5, 2e-4, 0.5));
        assert_eq!((c.data.image_size, c.data.channels), (64, 1));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let mut c = RunConfig::default();
        c.balance.low = 0.95;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("balance.high"), "{err}");

        let mut c = RunConfig::default();
        c.train.lr_g = -1.0;
        assert!(c.validate().unwrap_err().to_string().contains("train.lr_g"));
    }

    #[test]
    fn a_limit_under_the_batch_size_names_both() {
        let mut c = RunConfig::default();
        c.data.limit = Some(10);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("data.limit") && err.contains("(64)"), "{err}");
    }

    #[test]
    fn lr_adjust_needs_start_rates_inside_their_bounds() {
        let mut c = RunConfig::default();
        c.balance.strategy = Strategy::LrAdjust;
        c.train.lr_d = 1.0;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("train.lr_d") && err.contains("lr_d_max"), "{err}");
    }
}
