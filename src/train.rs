//! The training loop of one run: feeds [`StepCore`] real batches and latent vectors, turns
//! its reports into metrics rows, and writes sample grids and weights.
//!
//! Real images and z are drawn on the host from the run's seed, so every backend sees the
//! same data; initial weights and dropout masks come from the backend's own generator.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use burn::prelude::*;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::config::RunConfig;
use crate::data::Dataset;
use crate::data::batches::{BatchOrder, images_tensor};
use crate::eval::{Evaluator, Scores};
use crate::model::{Discriminator, Generator};
use crate::step::{PendingLoss, StepCore, StepReport, read_f32, read_pending};
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
    #[error("step {step}: evaluation failed: {message}")]
    Eval { step: u64, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a run writes its sample grids and weights.
pub struct Outputs<'a> {
    pub samples_dir: &'a Path,
    pub checkpoints_dir: &'a Path,
    pub progress: &'a ProgressBar,
    /// Scores samples every `eval.every` steps and at the end, when evaluation is on.
    pub evaluator: Option<&'a Evaluator>,
}

/// The metrics of every logged step, and the error that stopped the run, if one did.
pub struct TrainOutcome {
    pub rows: Vec<MetricsRow>,
    /// Every evaluation made, in step order.
    pub evals: Vec<Scores>,
    pub error: Option<TrainError>,
}

/// A generator and discriminator to start from.
pub type Models = (Generator, Discriminator);

/// Trains one run to its last step (or its first error) on `device` (an autodiff device).
pub fn train(cfg: &RunConfig, data: &Dataset, device: &Device, out: Outputs) -> TrainOutcome {
    train_from(cfg, data, device, None, out)
}

/// As [`train`], from given initial models (on `device`) instead of fresh ones: lets two
/// backends start from the same weights.
pub fn train_from(
    cfg: &RunConfig,
    data: &Dataset,
    device: &Device,
    init: Option<Models>,
    out: Outputs,
) -> TrainOutcome {
    let _turn = BACKEND_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (mut rows, mut evals) = (Vec::new(), Vec::new());
    let error = Trainer::new(cfg, data, device, init).run(&out, &mut rows, &mut evals).err();
    TrainOutcome { rows, evals, error }
}

struct Trainer<'a> {
    cfg: &'a RunConfig,
    data: &'a Dataset,
    device: Device,
    core: StepCore,
    order: BatchOrder,
    z_rng: ChaCha8Rng,
    fixed_z: Vec<f32>,
}

/// A step whose row waits for G's loss, which comes back with the next step's read.
struct Unfinished {
    row: MetricsRow,
    g_loss: Option<PendingLoss>,
}

impl<'a> Trainer<'a> {
    fn new(cfg: &'a RunConfig, data: &'a Dataset, device: &Device, init: Option<Models>) -> Self {
        let t = &cfg.train;
        // Initial weights and dropout masks come from the backend's generator.
        device.seed(t.seed);
        let core = match init {
            Some((g, d)) => StepCore::with_models(cfg, g, d),
            None => StepCore::new(cfg, device),
        };
        let n_images = data.images_used(cfg.data.limit);
        let mut fixed_rng = ChaCha8Rng::seed_from_u64(cfg.logging.sample_seed);
        Self {
            cfg,
            data,
            device: device.clone(),
            core,
            order: BatchOrder::new(n_images, t.batch_size, t.seed),
            z_rng: ChaCha8Rng::seed_from_u64(t.seed),
            fixed_z: normal_vec(&mut fixed_rng, SAMPLE_COUNT * cfg.model.z_dim),
        }
    }

    fn run(
        &mut self,
        out: &Outputs,
        rows: &mut Vec<MetricsRow>,
        evals: &mut Vec<Scores>,
    ) -> Result<(), TrainError> {
        let steps = self.cfg.train.steps;
        let started = Instant::now();
        let mut unfinished: Option<Unfinished> = None;
        for step in 1..=steps {
            let pending = unfinished.as_mut().and_then(|u| u.g_loss.take());
            let (report, g_loss) = self.step(step, pending)?;
            if let Some(previous) = unfinished.take() {
                self.finish_row(previous, report.previous_g_loss, rows)?;
            }
            let mut row = row(step, self.order.epoch_of(step - 1), &report);
            row.elapsed_s = started.elapsed().as_secs_f64();
            unfinished = Some(Unfinished { row, g_loss });
            if step % self.cfg.logging.sample_every == 0 || step == steps {
                self.write_samples(step, out.samples_dir)?;
            }
            let every = self.cfg.eval.every;
            let due = (every > 0 && step % every == 0) || step == steps;
            if let Some(evaluator) = out.evaluator.filter(|_| due) {
                evals.push(self.evaluate(evaluator, step)?);
            }
            out.progress.inc(1);
        }
        if let Some(mut last) = unfinished {
            let step = last.row.step;
            let g_loss = last.g_loss.take().map(read_pending).transpose();
            let g_loss = g_loss.map_err(|message| TrainError::Backend { step, message })?;
            self.finish_row(last, g_loss, rows)?;
        }
        self.write_weights(out.checkpoints_dir)
    }

    /// One training step; `step` counts from 1.
    fn step(
        &mut self,
        step: u64,
        pending: Option<PendingLoss>,
    ) -> Result<(StepReport, Option<PendingLoss>), TrainError> {
        let (batch, extra) = (self.cfg.train.batch_size, self.cfg.train.extra_z);
        let indices = self.order.batch(step - 1).to_vec();
        let real = images_tensor(self.data, &indices, &self.device);
        let z = self.sample_z(batch + extra);
        let (report, g_loss) = self
            .core
            .step(real, z, pending)
            .map_err(|message| TrainError::Backend { step, message })?;
        let stats = &report.stats;
        finite(step, "D's loss on real images", stats.loss_real)?;
        finite(step, "D's loss on generated images", stats.loss_fake)?;
        Ok((report, g_loss))
    }

    /// Completes a step's row with its G loss (when G was updated) and keeps it if logged.
    fn finish_row(
        &self,
        unfinished: Unfinished,
        g_loss: Option<f64>,
        rows: &mut Vec<MetricsRow>,
    ) -> Result<(), TrainError> {
        let mut row = unfinished.row;
        if let Some(value) = g_loss {
            finite(row.step, "G's loss", value)?;
        }
        row.g_loss = g_loss;
        tracing::debug!(
            step = row.step,
            d_loss = row.d_loss,
            g_loss = row.g_loss,
            acc_real = row.d_acc_real,
            acc_fake = row.d_acc_fake,
            zone = row.zone,
            d_updated = row.d_updated,
            g_updated = row.g_updated,
        );
        if row.step % self.cfg.logging.every == 0 || row.step == self.cfg.train.steps {
            rows.push(row);
        }
        Ok(())
    }

    /// Scores G (in inference mode) against the real images.
    fn evaluate(&self, evaluator: &Evaluator, step: u64) -> Result<Scores, TrainError> {
        let g = self.core.g.valid();
        let scores = evaluator
            .score(&g, self.cfg.model.z_dim, step)
            .map_err(|e| TrainError::Eval { step, message: e.to_string() })?;
        tracing::info!(
            step,
            frechet = format!("{:.3}", scores.frechet),
            kid = format!("{:.4}", scores.kid),
            precision = format!("{:.3}", scores.precision),
            recall = format!("{:.3}", scores.recall),
            seconds = format!("{:.1}", scores.seconds),
            "evaluated {} samples",
            scores.n
        );
        Ok(scores)
    }

    /// `[n, z_dim]` standard-normal latent vectors from the run's own stream.
    fn sample_z(&mut self, n: usize) -> Tensor<2> {
        let z_dim = self.cfg.model.z_dim;
        let values = normal_vec(&mut self.z_rng, n * z_dim);
        Tensor::from_data(TensorData::new(values, [n, z_dim]), &self.device)
    }

    /// Writes `samples/step_NNNNNN.png` from the fixed z, with G in inference mode.
    fn write_samples(&self, step: u64, dir: &Path) -> Result<(), TrainError> {
        let g = self.core.g.valid();
        let inner = self.device.clone().inner();
        let z_dim = self.cfg.model.z_dim;
        let z =
            Tensor::from_data(TensorData::new(self.fixed_z.clone(), [SAMPLE_COUNT, z_dim]), &inner);
        let images = read_f32(g.forward(z).reshape([-1]))
            .map_err(|message| TrainError::Backend { step, message })?;
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
        save(store::GENERATOR_FILE, self.core.g.valid().into_record())?;
        save(store::DISCRIMINATOR_FILE, self.core.d.valid().into_record())?;
        Ok(())
    }
}

/// A step's metrics row; G's loss is filled in when it comes back.
fn row(step: u64, epoch: u64, report: &StepReport) -> MetricsRow {
    let (s, d) = (&report.stats, &report.decision);
    MetricsRow {
        step,
        epoch,
        elapsed_s: 0.0,
        d_loss: s.loss_real + s.loss_fake,
        d_loss_real: s.loss_real,
        d_loss_fake: s.loss_fake,
        g_loss: None,
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

fn finite(step: u64, what: &'static str, value: f64) -> Result<(), TrainError> {
    if value.is_finite() { Ok(()) } else { Err(TrainError::NonFinite { step, what, value }) }
}
