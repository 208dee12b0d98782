//! The training loop of one run: feeds [`StepCore`] real batches and latent vectors, turns
//! its reports into metrics rows, and writes sample grids and weights.
//!
//! Real images and z are drawn on the host from the run's seed, so every backend sees the
//! same data; initial weights and dropout masks come from the backend's own generator, which
//! is seeded again from `(seed, step)` before every step. That makes each step's random
//! numbers a function of the step alone, so a run resumed from a checkpoint (see
//! [`crate::checkpoint`]) draws exactly what an uninterrupted run would have drawn.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use burn::prelude::*;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::checkpoint::{self, Restored};
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::data::batches::BatchOrder;
use crate::data::prefetch::Prefetch;
use crate::eval::{Evaluator, Scores};
use crate::interrupt;
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
    /// Ctrl-C or SIGTERM: the step finished and a checkpoint was written.
    #[error("interrupted by {signal} after step {step}; a checkpoint holds the work")]
    Interrupted { step: u64, signal: &'static str },
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
    /// The run's directory, when the run keeps resume checkpoints (every `checkpoint.every`
    /// steps and on Ctrl-C) and goes on from the newest one it finds there.
    pub resume_in: Option<&'a Path>,
    /// Told the step and the seconds of training so far after each checkpoint.
    pub on_checkpoint: Option<&'a dyn Fn(u64, f64)>,
}

/// The metrics of every logged step, and the error that stopped the run, if one did.
pub struct TrainOutcome {
    pub rows: Vec<MetricsRow>,
    /// Every evaluation made, in step order.
    pub evals: Vec<Scores>,
    pub error: Option<TrainError>,
    /// The checkpoint's step the run went on from (0 for a fresh start).
    pub resumed_from: u64,
    /// Seconds of training, over every attempt.
    pub elapsed_s: f64,
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
    let mut trainer = Trainer::new(cfg, data, device, init);
    let restored = match out.resume_in.and_then(checkpoint::latest) {
        Some((step, dir)) => match checkpoint::load(&dir, cfg, device) {
            Ok(restored) => Some(restored),
            Err(e) => {
                let error = Some(TrainError::Store(e));
                return TrainOutcome { resumed_from: step, error, ..TrainOutcome::empty() };
            }
        },
        None => None,
    };
    let mut progress = trainer.restore(restored);
    let error = trainer.run(&out, &mut progress).err();
    let Progress { rows, evals, step: _, elapsed_s, resumed_from } = progress;
    TrainOutcome { rows, evals, error, resumed_from, elapsed_s }
}

impl TrainOutcome {
    fn empty() -> Self {
        Self { rows: Vec::new(), evals: Vec::new(), error: None, resumed_from: 0, elapsed_s: 0.0 }
    }
}

/// What a run has produced so far; a checkpoint saves it and a resumed run starts from it.
struct Progress {
    rows: Vec<MetricsRow>,
    evals: Vec<Scores>,
    /// Steps completed.
    step: u64,
    /// Seconds of training before this attempt started.
    elapsed_s: f64,
    resumed_from: u64,
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

/// The backend's seed for one step: a mix of the run's seed and the step, so that no two
/// steps (or runs) share a stream (splitmix64's finaliser).
pub fn step_seed(seed: u64, step: u64) -> u64 {
    let mut x = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
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

    /// Puts a checkpoint's networks, optimizers and state in place; `None` starts afresh.
    fn restore(&mut self, restored: Option<Restored>) -> Progress {
        let Some(r) = restored else {
            let (rows, evals) = (Vec::new(), Vec::new());
            return Progress { rows, evals, step: 0, elapsed_s: 0.0, resumed_from: 0 };
        };
        self.core.g = r.g;
        self.core.d = r.d;
        self.core.load_optimizers(r.opt_g, r.opt_d);
        self.core.set_rates(r.state.lr_d, r.state.lr_g);
        let position = r.state.z_word_pos.parse().expect("checked when the checkpoint was read");
        self.z_rng.set_word_pos(position);
        let step = r.state.step;
        tracing::info!(step, "resumed from the checkpoint of step {step}");
        Progress {
            rows: r.rows,
            evals: r.evals,
            step,
            elapsed_s: r.state.elapsed_s,
            resumed_from: step,
        }
    }

    fn run(&mut self, out: &Outputs, progress: &mut Progress) -> Result<(), TrainError> {
        let (data, order) = (self.data, self.order.clone());
        let steps = progress.step + 1..=self.cfg.train.steps;
        std::thread::scope(|scope| {
            let batches = Prefetch::start(scope, data, order, steps);
            self.run_steps(out, progress, &batches)
        })
    }

    fn run_steps(
        &mut self,
        out: &Outputs,
        progress: &mut Progress,
        batches: &Prefetch,
    ) -> Result<(), TrainError> {
        let steps = self.cfg.train.steps;
        let every = self.cfg.checkpoint.every;
        let started = Instant::now();
        let before = progress.elapsed_s;
        let mut unfinished: Option<Unfinished> = None;
        out.progress.set_position(progress.step);
        for step in progress.step + 1..=steps {
            let pending = unfinished.as_mut().and_then(|u| u.g_loss.take());
            let (report, g_loss) = self.step(step, batches.batch(step), pending)?;
            if let Some(previous) = unfinished.take() {
                self.finish_row(previous, report.previous_g_loss, &mut progress.rows)?;
            }
            let elapsed_s = before + started.elapsed().as_secs_f64();
            let mut row = row(step, self.order.epoch_of(step - 1), &report);
            row.elapsed_s = elapsed_s;
            unfinished = Some(Unfinished { row, g_loss });
            if step % self.cfg.logging.sample_every == 0 || step == steps {
                self.write_samples(step, out.samples_dir)?;
            }
            let every_eval = self.cfg.eval.every;
            let due = (every_eval > 0 && step % every_eval == 0) || step == steps;
            if let Some(evaluator) = out.evaluator.filter(|_| due) {
                progress.evals.push(self.evaluate(evaluator, step)?);
            }
            out.progress.inc(1);
            progress.step = step;
            let stop = interrupt::requested() && step < steps;
            let checkpoint_due = every > 0 && step % every == 0 && step < steps;
            if let Some(run_dir) = out.resume_in.filter(|_| stop || checkpoint_due) {
                // A checkpoint holds whole rows: read this step's G loss now, not next step.
                self.finish_pending(unfinished.take(), &mut progress.rows)?;
                progress.elapsed_s = before + started.elapsed().as_secs_f64();
                self.save_checkpoint(run_dir, progress)?;
                if let Some(tell) = out.on_checkpoint {
                    tell(step, progress.elapsed_s);
                }
            }
            if stop {
                let signal = interrupt::signal_name();
                out.progress.abandon();
                return Err(TrainError::Interrupted { step, signal });
            }
        }
        self.finish_pending(unfinished, &mut progress.rows)?;
        progress.elapsed_s = before + started.elapsed().as_secs_f64();
        self.write_weights(out.checkpoints_dir)
    }

    /// Completes the row still waiting for its G loss, reading the loss now.
    fn finish_pending(
        &self,
        unfinished: Option<Unfinished>,
        rows: &mut Vec<MetricsRow>,
    ) -> Result<(), TrainError> {
        let Some(mut last) = unfinished else { return Ok(()) };
        let step = last.row.step;
        let g_loss = last.g_loss.take().map(read_pending).transpose();
        let g_loss = g_loss.map_err(|message| TrainError::Backend { step, message })?;
        self.finish_row(last, g_loss, rows)
    }

    fn save_checkpoint(&self, run_dir: &Path, progress: &Progress) -> Result<(), TrainError> {
        let (lr_d, lr_g) = self.core.rates();
        let state = checkpoint::State {
            step: progress.step,
            elapsed_s: progress.elapsed_s,
            lr_d,
            lr_g,
            z_word_pos: self.z_rng.get_word_pos().to_string(),
        };
        let dir = checkpoint::save(run_dir, &self.core, &state, &progress.rows, &progress.evals)?;
        tracing::debug!(step = progress.step, dir = %dir.display(), "checkpoint written");
        Ok(())
    }

    /// One training step; `step` counts from 1.
    fn step(
        &mut self,
        step: u64,
        real: TensorData,
        pending: Option<PendingLoss>,
    ) -> Result<(StepReport, Option<PendingLoss>), TrainError> {
        let (batch, extra) = (self.cfg.train.batch_size, self.cfg.train.extra_z);
        self.device.seed(step_seed(self.cfg.train.seed, step));
        let real = Tensor::from_data(real, &self.device);
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
        samples::save_grid(&path, &images, SAMPLE_COUNT, self.cfg.data.shape())?;
        Ok(())
    }

    fn write_weights(&self, dir: &Path) -> Result<(), TrainError> {
        let save = |name: &str, record: burn::store::ModuleRecord| {
            let path = dir.join(name);
            // Written beside and renamed: a crash never leaves half a weights file.
            let partial = store::partial_path(&path);
            let failed = |message: String| StoreError::Checkpoint { path: path.clone(), message };
            record.save(&partial).map_err(|e| failed(e.to_string()))?;
            std::fs::rename(&partial, &path).map_err(|e| failed(e.to_string()))
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
