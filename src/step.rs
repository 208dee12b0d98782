//! One GAN training step, shared by training runs and `dcgan bench`.
//!
//! G makes images from `batch + extra_z` latent vectors in one pass; D sees the real batch
//! and the first `batch` of those (detached) as one batch of `2 * batch`, which is exact
//! because D has no batch-norm. D's losses and accuracies come back to the host in the one
//! device-to-host read of the step, [`Balancer::decide`] picks the step's updates, D is
//! updated on its loss, and G is updated through the just-updated D on all its images with
//! the non-saturating loss. G's loss stays on the device and rides along with the next
//! step's read, so a GPU never waits for the host twice per step.

use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;

use crate::balance::{Balancer, DStats, Decision};
use crate::config::RunConfig;
use crate::model::{Discriminator, Generator};

/// What one step measured and decided.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub stats: DStats,
    pub decision: Decision,
    /// G's loss of the previous step, when that step updated G (read with this step's stats).
    pub previous_g_loss: Option<f64>,
}

/// G's loss of a step, still on the device.
pub struct PendingLoss(Tensor<1>);

/// The models, their optimizers and the balancing state: everything a step changes.
pub struct StepCore {
    pub g: Generator,
    pub d: Discriminator,
    opt_g: ModuleOptimizer,
    opt_d: ModuleOptimizer,
    balancer: Balancer,
    batch: usize,
    /// Per-phase timing for `dcgan bench --phases`; off in training.
    pub phases: Option<PhaseClock>,
}

/// Times the phases of a step by waiting for the device at each phase boundary. The waits
/// cost time themselves, so phase times are for finding where time goes, not for totals.
pub struct PhaseClock {
    device: Device,
    last: Instant,
    /// Seconds per phase name, summed over steps, in first-seen order.
    pub totals: Vec<(&'static str, f64)>,
}

impl PhaseClock {
    pub fn new(device: &Device) -> Self {
        Self { device: device.clone(), last: Instant::now(), totals: Vec::new() }
    }

    fn start(&mut self) {
        let _ = self.device.sync();
        self.last = Instant::now();
    }

    fn lap(&mut self, name: &'static str) {
        let _ = self.device.sync();
        let now = Instant::now();
        let seconds = (now - self.last).as_secs_f64();
        self.last = now;
        match self.totals.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += seconds,
            None => self.totals.push((name, seconds)),
        }
    }
}

impl StepCore {
    /// Fresh models on `device` (an autodiff device), initialised from the backend's random
    /// numbers; seed the device first for repeatable weights.
    pub fn new(cfg: &RunConfig, device: &Device) -> Self {
        let shape = cfg.data.shape();
        let g = Generator::new(&cfg.model, shape, device);
        let d = Discriminator::new(&cfg.model, shape, device);
        Self::with_models(cfg, g, d)
    }

    /// Starts from given models (already on the training device).
    pub fn with_models(cfg: &RunConfig, g: Generator, d: Discriminator) -> Self {
        let t = &cfg.train;
        let adam = AdamConfig::new()
            .with_beta_1(t.beta1 as f32)
            .with_beta_2(t.beta2 as f32)
            .with_epsilon(t.epsilon as f32);
        Self {
            g,
            d,
            opt_g: adam.init(),
            opt_d: adam.init(),
            balancer: Balancer::new(cfg.balance.clone(), t.lr_d, t.lr_g),
            batch: t.batch_size,
            phases: None,
        }
    }

    /// One step on `real` (`[batch, c, h, w]`) and `z` (`[batch + extra, z_dim]`).
    /// `pending` is the previous step's G loss, read back together with this step's stats.
    pub fn step(
        &mut self,
        real: Tensor<4>,
        z: Tensor<2>,
        pending: Option<PendingLoss>,
    ) -> Result<(StepReport, Option<PendingLoss>), String> {
        let batch = self.batch;
        self.phase_start();
        let fake = self.g.forward(z); // [batch + extra, c, h, w]
        self.lap("G forward");
        let fake_for_d = fake.clone().slice([0..batch]).detach();
        let logits = self.d.forward(Tensor::cat(vec![real, fake_for_d], 0)); // [2 * batch]
        let (d_loss, summary) = d_losses(logits, batch);
        self.lap("D forward + losses");

        let mut parts = vec![summary];
        let has_previous = pending.is_some();
        parts.extend(pending.map(|p| p.0));
        let values = read(Tensor::cat(parts, 0))?;
        let stats = DStats {
            loss_real: values[0],
            loss_fake: values[1],
            acc_real: values[2],
            acc_fake: values[3],
        };
        let previous_g_loss = has_previous.then(|| values[4]);
        let decision = self.balancer.decide(&stats);
        self.lap("read + decide");

        if decision.update_d {
            let grads = GradientsParams::from_grads(d_loss.backward(), &self.d);
            self.lap("D backward");
            self.d = self.opt_d.step(decision.lr_d, self.d.clone(), grads);
            self.lap("D Adam");
        }
        crate::faults::point("step"); // crash tests: die between D's and G's update
        let g_loss = decision.update_g.then(|| self.update_g(fake, decision.lr_g));
        Ok((StepReport { stats, decision, previous_g_loss }, g_loss))
    }

    /// Updates G through D with the non-saturating loss; the loss stays on the device.
    fn update_g(&mut self, fake: Tensor<4>, lr: f64) -> PendingLoss {
        // D's weights get no gradient here: only G is updated, so don't compute them.
        let frozen_d = self.d.clone().no_grad();
        let g_loss = log_sigmoid(frozen_d.forward(fake)).mean().neg();
        self.lap("D forward for G");
        let grads = GradientsParams::from_grads(g_loss.backward(), &self.g);
        self.lap("G backward (through D)");
        self.g = self.opt_g.step(lr, self.g.clone(), grads);
        self.lap("G Adam");
        PendingLoss(g_loss.detach())
    }

    /// Both optimizers' state (Adam's moments and step counts), G's first.
    pub fn optimizer_records(&self) -> (OptimizerRecord, OptimizerRecord) {
        (self.opt_g.to_record(), self.opt_d.to_record())
    }

    /// Restores the optimizers' state saved by [`Self::optimizer_records`]. The state is
    /// keyed by parameter id, which the models' weight files keep, so load the weights first.
    pub fn load_optimizers(&mut self, g: OptimizerRecord, d: OptimizerRecord) {
        let placeholder = || AdamConfig::new().init();
        self.opt_g = std::mem::replace(&mut self.opt_g, placeholder()).load_record(g);
        self.opt_d = std::mem::replace(&mut self.opt_d, placeholder()).load_record(d);
    }

    /// The learning rates the balancer has reached, `(lr_d, lr_g)`.
    pub fn rates(&self) -> (f64, f64) {
        self.balancer.rates()
    }

    pub fn set_rates(&mut self, lr_d: f64, lr_g: f64) {
        self.balancer = Balancer::new(self.balancer.config().clone(), lr_d, lr_g);
    }

    fn phase_start(&mut self) {
        if let Some(clock) = &mut self.phases {
            clock.start();
        }
    }

    fn lap(&mut self, name: &'static str) {
        if let Some(clock) = &mut self.phases {
            clock.lap(name);
        }
    }
}

/// D's loss (BCE with logits: target 1 for real, 0 for fake) and, detached, what the host
/// needs: `[loss_real, loss_fake, acc_real, acc_fake]`.
fn d_losses(logits: Tensor<1>, batch: usize) -> (Tensor<1>, Tensor<1>) {
    let real = logits.clone().slice([0..batch]);
    let fake = logits.slice([batch..2 * batch]);
    let acc_real = real.clone().greater_elem(0.0).float().mean();
    let acc_fake = fake.clone().lower_elem(0.0).float().mean();
    let loss_real = log_sigmoid(real).mean().neg();
    let loss_fake = log_sigmoid(fake.neg()).mean().neg();
    let d_loss = loss_real.clone() + loss_fake.clone();
    let summary = Tensor::cat(vec![loss_real.detach(), loss_fake.detach(), acc_real, acc_fake], 0);
    (d_loss, summary)
}

/// Reads a pending G loss on its own (after the last step).
pub fn read_pending(pending: PendingLoss) -> Result<f64, String> {
    Ok(read(pending.0)?[0])
}

/// Copies a tensor to the host as f32 values.
pub fn read_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, String> {
    let data = tensor.try_into_data().map_err(|e| format!("{e:?}"))?;
    data.try_to_vec::<f32>().map_err(|e| format!("{e:?}"))
}

fn read(tensor: Tensor<1>) -> Result<Vec<f64>, String> {
    Ok(read_f32(tensor)?.into_iter().map(f64::from).collect())
}
