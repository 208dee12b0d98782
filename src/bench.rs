//! `dcgan bench`: times the training step on synthetic data, so that backends (and PyTorch,
//! through `bench/pytorch_reference.py`, which prints the same line) can be compared.
//!
//! The step is the one training runs use ([`StepCore::step`], strategy `none`), with a fixed
//! random "real" batch and z drawn on the device, so data loading is not part of the time.
//! Given a dataset (`--data`), real batches come through the same prefetch thread as in
//! training instead, and the time each step waits for its batch is measured: the data's cost
//! as a share of the step.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::backend::Backend;
use crate::config::{ModelConfig, RunConfig, TrainConfig};
use crate::data::batches::{BatchOrder, batch_data};
use crate::data::prefetch::Prefetch;
use crate::data::{Dataset, Shape};
use crate::model::channel_ladder;
use crate::step::{PendingLoss, PhaseClock, StepCore, read_pending};

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub backend: Backend,
    pub width: usize,
    pub steps: usize,
    pub warmup: usize,
    /// Also time each phase of the step (with a device wait between phases).
    pub phases: bool,
    /// The images' shape (the seed's is 64 px, 1 channel).
    pub shape: Shape,
    /// Train on these images (of `shape`) instead of a pre-made random batch.
    pub data: Option<Arc<Dataset>>,
}

/// Per-step wall times and what they mean in FLOPs.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub options: BenchOptions,
    pub batch: usize,
    pub extra_z: usize,
    pub threads: usize,
    pub step_ms: Vec<f64>,
    pub flop_per_step: f64,
    /// Mean milliseconds per phase over the timed steps, when asked for.
    pub phase_ms: Vec<(&'static str, f64)>,
    /// With real data: milliseconds each timed step waited for its batch.
    pub data_wait_ms: Vec<f64>,
    /// With real data: milliseconds to assemble one batch on this thread, measured apart.
    pub batch_ms: Option<f64>,
}

/// Times `options.steps` steps after `options.warmup` untimed ones.
pub fn run(options: &BenchOptions) -> anyhow::Result<BenchResult> {
    let mut cfg = RunConfig::default();
    cfg.model.width = options.width;
    (cfg.data.image_size, cfg.data.channels) = (options.shape.side, options.shape.channels);
    cfg.validate()?;
    let total = (options.warmup + options.steps) as u64;
    match options.data.as_deref() {
        None => time_steps(options, &cfg, None),
        Some(data) => {
            anyhow::ensure!(data.shape() == options.shape, "the dataset has another shape");
            check_data(data)?;
            let order = BatchOrder::new(data.len(), cfg.train.batch_size, cfg.train.seed);
            let batch_ms = assembly_ms(data, order.clone());
            let mut result = std::thread::scope(|scope| {
                let batches = Prefetch::start(scope, data, order, 1..=total);
                time_steps(options, &cfg, Some(&batches))
            })?;
            result.batch_ms = Some(batch_ms);
            Ok(result)
        }
    }
}

/// Refuses a dataset with fewer images than the batch a step trains on.
pub fn check_data(data: &Dataset) -> anyhow::Result<()> {
    let batch = TrainConfig::default().batch_size;
    anyhow::ensure!(
        data.len() >= batch,
        "{} images, fewer than the batch of {batch} that bench times",
        data.len()
    );
    Ok(())
}

/// Mean milliseconds to assemble a batch, over 20 batches.
fn assembly_ms(data: &Dataset, mut order: BatchOrder) -> f64 {
    let started = Instant::now();
    for step in 0..20 {
        std::hint::black_box(batch_data(data, order.batch(step)));
    }
    started.elapsed().as_secs_f64() * 1e3 / 20.0
}

fn time_steps(
    options: &BenchOptions,
    cfg: &RunConfig,
    batches: Option<&Prefetch>,
) -> anyhow::Result<BenchResult> {
    let (batch, extra, z_dim) = (cfg.train.batch_size, cfg.train.extra_z, cfg.model.z_dim);
    let device = options.backend.training_device();
    device.seed(cfg.train.seed);
    let mut core = StepCore::new(cfg, &device);
    let shape = cfg.data.shape();
    let dims = [batch, shape.channels, shape.side, shape.side];
    let made = Tensor::<4>::random(dims, Distribution::Uniform(-1.0, 1.0), &device);

    let mut pending: Option<PendingLoss> = None;
    let clock_on = |core: &mut StepCore| {
        if options.phases {
            core.phases = Some(PhaseClock::new(&device));
        }
    };
    let (mut step_ms, mut data_wait_ms) = (Vec::new(), Vec::new());
    let sync = || device.sync().map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"));
    for i in 0..options.warmup + options.steps {
        anyhow::ensure!(!crate::interrupt::requested(), "stopped by a signal at step {i}");
        // Each timed step owns its own work, G's update included: on a GPU that would
        // otherwise spill into the next step's time (the PyTorch reference syncs the same way).
        sync()?;
        if i == options.warmup {
            clock_on(&mut core);
        }
        let started = Instant::now();
        let real = match batches {
            Some(batches) => Tensor::from_data(batches.batch(i as u64 + 1), &device),
            None => made.clone(),
        };
        let waited = started.elapsed().as_secs_f64() * 1e3;
        let z =
            Tensor::<2>::random([batch + extra, z_dim], Distribution::Normal(0.0, 1.0), &device);
        let (_, g_loss) = core.step(real, z, pending.take()).map_err(anyhow::Error::msg)?;
        pending = g_loss;
        sync()?;
        if i >= options.warmup {
            step_ms.push(started.elapsed().as_secs_f64() * 1e3);
            data_wait_ms.extend(batches.map(|_| waited));
        }
    }
    if let Some(last) = pending {
        read_pending(last).map_err(anyhow::Error::msg)?;
    }
    Ok(BenchResult {
        options: options.clone(),
        batch,
        extra_z: extra,
        threads: options.backend.cpu_threads().unwrap_or(0),
        step_ms,
        flop_per_step: step_flops(&cfg.model, shape, batch, extra),
        phase_ms: core.phases.map_or_else(Vec::new, |clock| {
            let steps = options.steps as f64;
            clock.totals.into_iter().map(|(name, s)| (name, s * 1e3 / steps)).collect()
        }),
        data_wait_ms,
        batch_ms: None,
    })
}

/// FLOPs of one training step, counting 2 per multiply-add of the convolutions and linear
/// layers (biases, batch-norm and activations are left out, as is usual). A forward and full
/// backward pass is 3x the forward; G's loss goes through D forward and back to its input
/// only, 2x. `bench/pytorch_reference.py` counts the same way.
pub fn step_flops(model: &ModelConfig, shape: Shape, batch: usize, extra: usize) -> f64 {
    let g = generator_flops(model, shape);
    let d = discriminator_flops(model, shape);
    let (n_g, n_d) = ((batch + extra) as f64, (2 * batch) as f64);
    3.0 * g * n_g + 3.0 * d * n_d + 2.0 * d * n_g
}

/// Forward FLOPs of G for one image.
fn generator_flops(model: &ModelConfig, shape: Shape) -> f64 {
    let ladder = channel_ladder(model.width, shape);
    // A transposed conv does Cin * Cout * k^2 multiply-adds per input pixel.
    let convs: usize =
        (0..ladder.len() - 1).map(|i| ladder[i] * ladder[i + 1] * 25 * side(4 << i)).sum();
    2.0 * (model.z_dim * ladder[0] * 16 + convs) as f64
}

/// Forward FLOPs of D for one image.
fn discriminator_flops(model: &ModelConfig, shape: Shape) -> f64 {
    let mut ladder = channel_ladder(model.width, shape);
    ladder.reverse();
    // A conv does Cin * Cout * k^2 multiply-adds per output pixel.
    let convs: usize = (0..ladder.len() - 1)
        .map(|i| ladder[i] * ladder[i + 1] * 25 * side(shape.side >> (i + 1)))
        .sum();
    2.0 * (convs + ladder[ladder.len() - 1] * 16) as f64
}

fn side(s: usize) -> usize {
    s * s
}

impl BenchResult {
    pub fn median_ms(&self) -> f64 {
        percentile(&self.step_ms, 0.5)
    }

    /// FLOP rate at the median step time, in GFLOP/s.
    pub fn gflops(&self) -> f64 {
        self.flop_per_step / (self.median_ms() / 1e3) / 1e9
    }
}

/// The `q` quantile with linear interpolation between order statistics (numpy's default).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The line `bench/compare.sh` parses; the PyTorch reference prints the same keys.
impl fmt::Display for BenchResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = &self.step_ms;
        let o = &self.options;
        write!(
            f,
            "bench backend={} width={} batch={} extra_z={} steps={} threads={} median_ms={:.1} \
             p25_ms={:.1} p75_ms={:.1} min_ms={:.1} max_ms={:.1} gflop_per_step={:.3} \
             gflops={:.1}",
            o.backend,
            o.width,
            self.batch,
            self.extra_z,
            ms.len(),
            self.threads,
            self.median_ms(),
            percentile(ms, 0.25),
            percentile(ms, 0.75),
            percentile(ms, 0.0),
            percentile(ms, 1.0),
            self.flop_per_step / 1e9,
            self.gflops()
        )?;
        if let Some(batch_ms) = self.batch_ms {
            let wait =
                self.data_wait_ms.iter().sum::<f64>() / self.data_wait_ms.len().max(1) as f64;
            let share = 100.0 * wait / (self.step_ms.iter().sum::<f64>() / ms.len().max(1) as f64);
            write!(
                f,
                " side={} channels={} batch_assembly_ms={batch_ms:.2} data_wait_ms={wait:.2} \
                 data_share_pct={share:.2}",
                o.shape.side, o.shape.channels
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREY_64: Shape = Shape { side: 64, channels: 1 };

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&v, 0.5), 2.5);
        assert_eq!(percentile(&v, 0.25), 1.75);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn flops_of_the_full_model_match_a_hand_count() {
        let model = ModelConfig::default();
        // G: linear 100 -> 8192; convT 512->256 @4x4, 256->128 @8x8, 128->64 @16x16, 64->1 @32x32.
        let g_macs: u64 = 100 * 8192
            + 512 * 256 * 25 * 16
            + 256 * 128 * 25 * 64
            + 128 * 64 * 25 * 256
            + 64 * 25 * 1024;
        // D: conv 1->64 @32x32, 64->128 @16x16, 128->256 @8x8, 256->512 @4x4; linear 8192 -> 1.
        let d_macs: u64 =
            64 * 25 * 1024 + 64 * 128 * 25 * 256 + 128 * 256 * 25 * 64 + 256 * 512 * 25 * 16 + 8192;
        assert_eq!(generator_flops(&model, GREY_64), 2.0 * g_macs as f64);
        assert_eq!(discriminator_flops(&model, GREY_64), 2.0 * d_macs as f64);
        let step = step_flops(&model, GREY_64, 64, 64);
        let expected = 2.0 * (3 * 128 * g_macs + 3 * 128 * d_macs + 2 * 128 * d_macs) as f64;
        assert_eq!(step, expected);
    }

    #[test]
    fn flops_at_32px_in_colour_drop_the_deepest_stage() {
        let model = ModelConfig::default();
        let shape = Shape { side: 32, channels: 3 };
        // G: linear 100 -> 256 * 16; convT 256->128 @4x4, 128->64 @8x8, 64->3 @16x16.
        let g_macs: u64 = 100 * 4096 + 256 * 128 * 25 * 16 + 128 * 64 * 25 * 64 + 64 * 3 * 25 * 256;
        // D: conv 3->64 @16x16, 64->128 @8x8, 128->256 @4x4; linear 4096 -> 1.
        let d_macs: u64 = 3 * 64 * 25 * 256 + 64 * 128 * 25 * 64 + 128 * 256 * 25 * 16 + 4096;
        assert_eq!(generator_flops(&model, shape), 2.0 * g_macs as f64);
        assert_eq!(discriminator_flops(&model, shape), 2.0 * d_macs as f64);
    }
}
