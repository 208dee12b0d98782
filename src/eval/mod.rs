//! Evaluation: scoring a generator's samples against the real images.
//!
//! An [`Evaluator`] holds the domain classifier ([`classifier`]) and the features of `n` real
//! images drawn with the eval seed; [`Evaluator::score`] makes `n` images from a fixed z (the
//! same for every evaluation of a run), describes them with the classifier and compares the
//! two sets ([`metrics`]). Rows go to `eval.parquet` in the run directory ([`table`]).

pub mod classifier;
pub mod metrics;
pub mod rescore;
pub mod table;

use std::time::Instant;

use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::data::batches::unit_range;
use crate::data::{Dataset, Shape};
use crate::model::Generator;
use crate::step::read_f32;
use classifier::{Classifier, FEATURES};
use metrics::{Features, Gaussian};

/// Why an evaluation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("evaluation: {0}")]
    Backend(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("evaluation needs labelled images: {0}")]
    Data(String),
}

/// KID is averaged over this many random subsets of each set.
const KID_SUBSETS: usize = 50;
const KID_SUBSET_SIZE: usize = 1000;
/// A class counts as covered when it holds at least this share of the generated images.
pub const COVERED_SHARE: f64 = 0.05;
/// Images generated per forward pass of G.
const G_CHUNK: usize = 250;

/// One evaluation of a generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub step: u64,
    pub n: usize,
    /// `eval.seed`: which real images and which fixed z.
    pub seed: u64,
    /// Fréchet distance between Gaussian fits of the classifier's features.
    pub frechet: f64,
    pub kid: f64,
    pub kid_std: f64,
    pub precision: f64,
    pub recall: f64,
    pub density: f64,
    pub coverage: f64,
    /// Classes holding at least 5 % of the generated images.
    pub classes_covered: u32,
    /// KL(real ‖ generated) between class histograms, add-one smoothed, in nats.
    pub class_kl: f64,
    pub seconds: f64,
}

/// Real-image statistics and the classifier, ready to score generators.
pub struct Evaluator {
    classifier: Classifier,
    device: Device,
    shape: Shape,
    n: usize,
    seed: u64,
    real: Features,
    real_fit: Gaussian,
    real_shares: Vec<f64>,
}

impl Evaluator {
    /// Describes `n` real images (drawn with `seed`) with the classifier.
    pub fn new(
        classifier: Classifier,
        data: &Dataset,
        n: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, EvalError> {
        if n > data.len() {
            tracing::warn!("eval.n is {n} but the dataset has {} images; using all", data.len());
        }
        let n = n.min(data.len());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let chosen = sample(&mut rng, data.len(), n).into_vec();
        let mut pixels = Vec::with_capacity(n * data.shape().bytes());
        for i in chosen {
            pixels.extend(data.image(i).iter().map(|&p| unit_range(p)));
        }
        Self::from_images(classifier, &pixels, data.shape(), seed, device)
    }

    /// Uses the given real images (`[-1, 1]`, of `shape`, one after another).
    pub fn from_images(
        classifier: Classifier,
        pixels: &[f32],
        shape: Shape,
        seed: u64,
        device: &Device,
    ) -> Result<Self, EvalError> {
        let (features, classes) = classifier.describe(pixels, shape, device)?;
        let real = Features::from_rows(&features, FEATURES);
        let class_count = classifier.classes();
        Ok(Self {
            real_fit: Gaussian::fit(&real),
            real_shares: metrics::class_shares(&classes, class_count, true),
            n: real.len(),
            real,
            classifier,
            device: device.clone(),
            shape,
            seed,
        })
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// Scores a generator (in inference mode, on this evaluator's device) at `step`.
    pub fn score(&self, g: &Generator, z_dim: usize, step: u64) -> Result<Scores, EvalError> {
        let started = Instant::now();
        let images = self.generate(g, z_dim)?;
        let mut scores = self.score_images(&images)?;
        scores.step = step;
        scores.seconds = started.elapsed().as_secs_f64();
        Ok(scores)
    }

    /// `n` images from the fixed eval z, as host values.
    fn generate(&self, g: &Generator, z_dim: usize) -> Result<Vec<f32>, EvalError> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5EED_0FE7_A1A1);
        let mut images = Vec::with_capacity(self.n * self.shape.bytes());
        let mut left = self.n;
        while left > 0 {
            let k = left.min(G_CHUNK);
            let z: Vec<f32> = (0..k * z_dim).map(|_| StandardNormal.sample(&mut rng)).collect();
            let z = Tensor::from_data(TensorData::new(z, [k, z_dim]), &self.device);
            images.extend(read_f32(g.forward(z)).map_err(EvalError::Backend)?);
            left -= k;
        }
        Ok(images)
    }

    /// Scores any images (`[-1, 1]`, the evaluator's side) against the real ones.
    pub fn score_images(&self, pixels: &[f32]) -> Result<Scores, EvalError> {
        let started = Instant::now();
        let (features, classes) = self.classifier.describe(pixels, self.shape, &self.device)?;
        let fake = Features::from_rows(&features, FEATURES);
        let frechet = metrics::frechet_distance(&self.real_fit, &Gaussian::fit(&fake));
        let (kid, kid_std) =
            metrics::kid(&self.real, &fake, KID_SUBSETS, KID_SUBSET_SIZE, self.seed);
        let manifold = metrics::manifold(&self.real, &fake);
        let class_count = self.classifier.classes();
        let raw_shares = metrics::class_shares(&classes, class_count, false);
        let smoothed = metrics::class_shares(&classes, class_count, true);
        Ok(Scores {
            step: 0,
            n: fake.len(),
            seed: self.seed,
            frechet,
            kid,
            kid_std,
            precision: manifold.precision,
            recall: manifold.recall,
            density: manifold.density,
            coverage: manifold.coverage,
            classes_covered: metrics::classes_covered(&raw_shares, COVERED_SHARE) as u32,
            class_kl: metrics::kl_divergence(&self.real_shares, &smoothed),
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}
