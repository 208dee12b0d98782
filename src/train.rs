//! The training loop of one run: D on real and fake, the balancing decision, then the
//! updates it allows.
//!
//! Per step: G makes images from `batch + extra_z` latent vectors in one pass; D sees the
//! real batch and the first `batch` of those (detached) as one batch, which is exact because
//! D has no batch-norm. Its losses and accuracies come back to the host in one small read,
//! [`Balancer::decide`] picks the step's updates, D is updated on its loss, and G is updated
//! through the (just updated) D on all its images with the non-saturating loss.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::balance::{Balancer, DStats, Decision};
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::data::batches::{BatchOrder, images_tensor};
use crate::model::{Discriminator, Generator};
use crate::store::metrics::MetricsRow;
use crate::store::{self, StoreError, samples};

/// Sample grids are 8 x 8.
pub const SAMPLE_COUNT: usize = 64;

/// Burn seeds a backend's random numbers process-wide, so two runs training at once in one
/// process would draw from each other's stream. Runs in a process take turns.
static BACKEND_RNG: Mutex<()> = Mutex::new(());

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("step {step}: {what} is {value}; training diverged")]
    NonFinite { step: u64, what: &'static str, value: f64 },
    #[error("step {step}: the backend failed: {message}")]
    Backend { step: u64, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a run writes its sample grids and weights.
pub struct Outputs<'a> {
    pub samples_dir: &'a Path,
    pub checkpoints_dir: &'a Path,
    pub progress: &'a ProgressBar,
}

/// The metrics of every logged step, and the error that stopped the run, if one did.
pub struct TrainOutcome {
    pub rows: Vec<MetricsRow>,
    pub error: Option<TrainError>,
}

/// Trains one run to its last step (or its first error) on `device` (an autodiff device).
pub fn train(cfg: &RunConfig, data: &Dataset, device: &Device, out: Outputs) -> TrainOutcome {
    let _turn = BACKEND_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut rows = Vec::new();
    let error = Trainer::new(cfg, data, device).run(&out, &mut rows).err();
    TrainOutcome { rows, error }
}

struct Trainer<'a> {
    cfg: &'a RunConfig,
    data: &'a Dataset,
    device: Device,
    g: Generator,
    d: Discriminator,
    opt_g: ModuleOptimizer,
    opt_d: ModuleOptimizer,
    balancer: Balancer,
    order: BatchOrder,
    z_rng: ChaCha8Rng,
    fixed_z: Vec<f32>,
}

impl<'a> Trainer<'a> {
    fn new(cfg: &'a RunConfig, data: &'a Dataset, device: &Device) -> Self {
        let t = &cfg.train;
        // Initial weights and dropout masks come from the backend's generator.
        device.seed(t.seed);
        let channels = cfg.data.channels;
        let adam = AdamConfig::new()
            .with_beta_1(t.beta1 as f32)
            .with_beta_2(t.beta2 as f32)
            .with_epsilon(t.epsilon as f32);
        let n_images = data.images_used(cfg.data.limit);
        let mut fixed_rng = ChaCha8Rng::seed_from_u64(cfg.logging.sample_seed);
        Self {
            cfg,
            data,
            device: device.clone(),
            g: Generator::new(&cfg.model, channels, device),
            d: Discriminator::new(&cfg.model, channels, device),
            opt_g: adam.init(),
            opt_d: adam.init(),
            balancer: Balancer::new(cfg.balance.clone(), t.lr_d, t.lr_g),
            order: BatchOrder::new(n_images, t.batch_size, t.seed),
            z_rng: ChaCha8Rng::seed_from_u64(t.seed),
            fixed_z: normal_vec(&mut fixed_rng, SAMPLE_COUNT * cfg.model.z_dim),
        }
    }

    fn run(&mut self, out: &Outputs, rows: &mut Vec<MetricsRow>) -> Result<(), TrainError> {
        let (steps, log) = (self.cfg.train.steps, &self.cfg.logging);
        let started = Instant::now();
        for step in 1..=steps {
            let mut row = self.step(step)?;
            row.elapsed_s = started.elapsed().as_secs_f64();
            tracing::debug!(
                step,
                d_loss = row.d_loss,
                g_loss = row.g_loss,
                acc_real = row.d_acc_real,
                acc_fake = row.d_acc_fake,
                zone = row.zone,
                d_updated = row.d_updated,
                g_updated = row.g_updated,
            );
            if step % log.every == 0 || step == steps {
                rows.push(row);
            }
            if step % log.sample_every == 0 || step == steps {
                self.write_samples(step, out.samples_dir)?;
            }
            out.progress.inc(1);
        }
        self.write_weights(out.checkpoints_dir)
    }

    /// One training step; `step` counts from 1.
    fn step(&mut self, step: u64) -> Result<MetricsRow, TrainError> {
        let (batch, extra) = (self.cfg.train.batch_size, self.cfg.train.extra_z);
        let epoch = self.order.epoch_of(step - 1);
        let indices = self.order.batch(step - 1).to_vec();
        let real = images_tensor(self.data, &indices, &self.device);
        let z = self.sample_z(batch + extra);
        let fake = self.g.forward(z); // [batch + extra, 1, 64, 64]

        let fake_for_d = fake.clone().slice([0..batch]).detach();
        let logits = self.d.forward(Tensor::cat(vec![real, fake_for_d], 0)); // [2 * batch]
        let (d_loss, stats) = self.d_pass(logits, batch, step)?;
        let decision = self.balancer.decide(&stats);

        if decision.update_d {
            let grads = GradientsParams::from_grads(d_loss.backward(), &self.d);
            self.d = self.opt_d.step(decision.lr_d, self.d.clone(), grads);
        }
        let g_loss =
            if decision.update_g { Some(self.update_g(fake, &decision, step)?) } else { None };
        Ok(row(step, epoch, &stats, g_loss, &decision))
    }

    /// D's loss (for its update) and what it measured, read back in one transfer.
    fn d_pass(
        &self,
        logits: Tensor<1>,
        batch: usize,
        step: u64,
    ) -> Result<(Tensor<1>, DStats), TrainError> {
        let real = logits.clone().slice([0..batch]);
        let fake = logits.slice([batch..2 * batch]);
        let acc_real = real.clone().greater_elem(0.0).float().mean();
        let acc_fake = fake.clone().lower_elem(0.0).float().mean();
        // BCE with logits: target 1 for real, 0 for fake.
        let loss_real = log_sigmoid(real).mean().neg();
        let loss_fake = log_sigmoid(fake.neg()).mean().neg();
        let d_loss = loss_real.clone() + loss_fake.clone();
        let summary =
            Tensor::cat(vec![loss_real.detach(), loss_fake.detach(), acc_real, acc_fake], 0);
        let v = read(summary, step)?;
        let stats = DStats { loss_real: v[0], loss_fake: v[1], acc_real: v[2], acc_fake: v[3] };
        finite(step, "D's loss on real images", stats.loss_real)?;
        finite(step, "D's loss on generated images", stats.loss_fake)?;
        Ok((d_loss, stats))
    }

    /// Updates G through D with the non-saturating loss; returns that loss.
    fn update_g(
        &mut self,
        fake: Tensor<4>,
        decision: &Decision,
        step: u64,
    ) -> Result<f64, TrainError> {
        let g_loss = log_sigmoid(self.d.forward(fake)).mean().neg();
        let grads = GradientsParams::from_grads(g_loss.backward(), &self.g);
        self.g = self.opt_g.step(decision.lr_g, self.g.clone(), grads);
        let value = read(g_loss.detach(), step)?[0];
        finite(step, "G's loss", value)?;
        Ok(value)
    }

    /// `[n, z_dim]` standard-normal latent vectors from the run's own stream.
    fn sample_z(&mut self, n: usize) -> Tensor<2> {
        let z_dim = self.cfg.model.z_dim;
        let values = normal_vec(&mut self.z_rng, n * z_dim);
        Tensor::from_data(TensorData::new(values, [n, z_dim]), &self.device)
    }

    /// Writes `samples/step_NNNNNN.png` from the fixed z, with G in inference mode.
    fn write_samples(&self, step: u64, dir: &Path) -> Result<(), TrainError> {
        let g = self.g.valid();
        let inner = self.device.clone().inner();
        let z_dim = self.cfg.model.z_dim;
        let z =
            Tensor::from_data(TensorData::new(self.fixed_z.clone(), [SAMPLE_COUNT, z_dim]), &inner);
        let images = read_f32(g.forward(z).reshape([-1]), step)?;
        let path = dir.join(format!("step_{step:06}.png"));
        tracing::debug!(step, path = %path.display(), "sample grid");
        samples::save_grid(&path, &images, SAMPLE_COUNT, self.cfg.data.image_size)?;
        Ok(())
    }

    fn write_weights(&self, dir: &Path) -> Result<(), TrainError> {
        let save = |name: &str, record: burn::store::ModuleRecord| {
            let path = dir.join(name);
            record.save(&path).map_err(|e| StoreError::Checkpoint { path, message: e.to_string() })
        };
        save(store::GENERATOR_FILE, self.g.valid().into_record())?;
        save(store::DISCRIMINATOR_FILE, self.d.valid().into_record())?;
        Ok(())
    }
}

fn row(step: u64, epoch: u64, s: &DStats, g_loss: Option<f64>, d: &Decision) -> MetricsRow {
    MetricsRow {
        step,
        epoch,
        elapsed_s: 0.0,
        d_loss: s.loss_real + s.loss_fake,
        d_loss_real: s.loss_real,
        d_loss_fake: s.loss_fake,
        g_loss,
        d_acc_real: s.acc_real,
        d_acc_fake: s.acc_fake,
        lr_d: d.lr_d,
        lr_g: d.lr_g,
        d_updated: d.update_d,
        g_updated: d.update_g,
        zone: d.zone.as_str(),
    }
}

fn normal_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

fn read_f32<const D: usize>(tensor: Tensor<D>, step: u64) -> Result<Vec<f32>, TrainError> {
    let backend = |message: String| TrainError::Backend { step, message };
    let data = tensor.try_into_data().map_err(|e| backend(format!("{e:?}")))?;
    data.try_to_vec::<f32>().map_err(|e| backend(format!("{e:?}")))
}

fn read(tensor: Tensor<1>, step: u64) -> Result<Vec<f64>, TrainError> {
    Ok(read_f32(tensor, step)?.into_iter().map(f64::from).collect())
}

fn finite(step: u64, what: &'static str, value: f64) -> Result<(), TrainError> {
    if value.is_finite() { Ok(()) } else { Err(TrainError::NonFinite { step, what, value }) }
}
