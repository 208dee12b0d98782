//! Runs a sweep: hash every config, report what is already done, train the rest.
//!
//! Planning is cheap (no decoding, no tensors) so `--dry-run` and the status lines come out
//! at once. Training then goes config by config; a run that fails is recorded as failed and
//! the sweep goes on, so one diverging config never costs the others.
//!
//! Each config is trained under its run's lock. A config another process is training is
//! left for last and then waited for, so two sweeps on one `runs/` share the work, each
//! config is trained once, and both end knowing every config's outcome.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::Backend;
use crate::checkpoint;
use crate::config::RunConfig;
use crate::data::{DataSource, Dataset, DatasetCache};
use crate::eval::{self, Evaluator};
use crate::hashing;
use crate::interrupt;
use crate::store::lock::{self, RunLock};
use crate::store::manifest::{
    DatasetInfo, Harness, Manifest, Resume, Status, host_name, now_rfc3339,
};
use crate::store::metrics::MetricsRow;
use crate::store::{ActiveRun, RunState, RunsDir};
use crate::sweep::{Sweep, SweepPoint};
use crate::train::{self, Outputs, TrainError};

/// One config of a sweep with its hash and what is on disk for it.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub point: SweepPoint,
    pub hash: String,
    pub source: DataSource,
    pub state: RunState,
}

impl PlannedRun {
    pub fn short(&self) -> &str {
        hashing::short(&self.hash)
    }

    /// The word shown for this config before training: what will happen to it.
    pub fn status_word(&self) -> &'static str {
        match self.state {
            RunState::Missing => "new",
            RunState::Completed(_) => "cached",
            RunState::Failed(_) => "retry-failed",
            RunState::Unfinished(_) => "resume",
            RunState::Damaged(_) => "retry-damaged",
        }
    }

    /// The config as recorded for worker processes.
    pub fn recorded(&self) -> crate::store::sweeps::RecordedRun {
        crate::store::sweeps::RecordedRun {
            hash: self.hash.clone(),
            swept: self.point.swept.clone(),
            config: self.point.config.clone(),
        }
    }

    /// Why an existing directory of this config will be trained again, if one will be.
    pub fn retry_reason(&self) -> Option<String> {
        match &self.state {
            RunState::Failed(m) => {
                Some(format!("it failed before: {}", m.failure.as_deref().unwrap_or("unknown")))
            }
            RunState::Damaged(reason) => Some(format!("its directory is damaged: {reason}")),
            RunState::Unfinished(m) if m.status == Status::Interrupted => {
                Some(format!("it was interrupted after step {}", m.steps_done))
            }
            RunState::Unfinished(m) => Some(format!(
                "its last process stopped without finishing (killed, or still running \
                 elsewhere); checkpointed at step {}",
                m.steps_done
            )),
            _ => None,
        }
    }
}

/// How a sweep went.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepSummary {
    pub trained: usize,
    pub cached: usize,
    pub failed: usize,
    /// Completed by another process while this one ran.
    pub elsewhere: usize,
    /// Stopped by Ctrl-C or SIGTERM before every config was done.
    pub interrupted: bool,
}

impl SweepSummary {
    pub fn all_completed(&self) -> bool {
        self.failed == 0 && !self.interrupted
    }
}

/// Applies a backend override, validates backends, hashes every config and reads its state.
pub fn plan(
    sweep: &mut Sweep,
    backend: Option<&str>,
    cache: &mut DatasetCache,
    runs: &RunsDir,
) -> anyhow::Result<Vec<PlannedRun>> {
    if let Some(name) = backend {
        Backend::available(name).context("--backend")?;
    }
    let mut planned: Vec<PlannedRun> = Vec::with_capacity(sweep.points.len());
    for point in &mut sweep.points {
        if let Some(name) = backend {
            point.config.train.backend = name.to_string();
        }
        let label = point.label();
        let where_ = || format!("config {label}");
        let chosen = Backend::available(&point.config.train.backend)
            .with_context(|| format!("config {label}: train.backend"))?;
        // `tch-cuda:0` and `tch-cuda` are one backend: one spelling, one hash.
        point.config.train.backend = chosen.to_string();
        let source = cache.source(&point.config.data)?;
        check_image_count(&point.config, &source).with_context(where_)?;
        let hash = hashing::run_hash(&point.config, &source.fingerprint);
        if let Some(twin) = planned.iter().find(|p| p.hash == hash) {
            tracing::warn!(
                run = hashing::short(&hash),
                "configs {} and {} are the same config; it is trained once",
                twin.point.label(),
                point.label(),
            );
            continue;
        }
        let state = runs.state(&hash);
        planned.push(PlannedRun { point: point.clone(), hash, source, state });
    }
    Ok(planned)
}

/// A worker that cannot even plan its run (the dataset is missing on its machine, say)
/// records why in the run's directory, so `dcgan status` and `sweep --wait` can tell. Only a
/// run without a directory is marked: an unfinished one keeps its checkpoints as they are.
/// Returns the error it was given.
pub fn record_failure(
    runs: &RunsDir,
    sweep: &Sweep,
    hash: &str,
    error: anyhow::Error,
) -> anyhow::Error {
    let reason = format!("{error:#}");
    let Some(point) = sweep.points.first() else { return error };
    match mark_failed(runs, &sweep.name, point, hash, &reason) {
        Ok(true) => tracing::info!(run = hashing::short(hash), "marked failed"),
        Ok(false) => {}
        Err(e) => tracing::warn!(run = hashing::short(hash), "cannot mark the run failed: {e}"),
    }
    error
}

fn mark_failed(
    runs: &RunsDir,
    sweep_name: &str,
    point: &SweepPoint,
    hash: &str,
    reason: &str,
) -> anyhow::Result<bool> {
    if !matches!(runs.state(hash), RunState::Missing) {
        return Ok(false);
    }
    runs.prepare()?;
    let Some(lock) = lock::try_acquire(runs.root(), hashing::short(hash))? else {
        return Ok(false);
    };
    if !matches!(runs.state(hash), RunState::Missing) {
        return Ok(false);
    }
    let unknown = dataset_info(&point.config, "unknown: the run could not read its dataset");
    open_failed(runs, sweep_name, point, hash, unknown, lock, reason)?;
    Ok(true)
}

/// Writes the directory of a run that failed before training, with the reason.
fn open_failed(
    runs: &RunsDir,
    sweep_name: &str,
    point: &SweepPoint,
    hash: &str,
    dataset: DatasetInfo,
    lock: RunLock,
    reason: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let manifest = starting_manifest(sweep_name, hash, point, dataset);
    Ok(runs.open(&point.config, manifest, lock)?.finish(&[], 0.0, Some(reason.to_string()))?)
}

/// Refuses configs that ask for more images than the split has, or batches larger than the
/// images they may use.
fn check_image_count(cfg: &RunConfig, source: &DataSource) -> anyhow::Result<()> {
    check_count(cfg, source, source.count, "images")
}

/// As [`check_image_count`], for the images that could be read.
fn check_readable_count(cfg: &RunConfig, data: &Dataset) -> anyhow::Result<()> {
    check_count(cfg, &data.source, data.len(), "readable images")
}

fn check_count(
    cfg: &RunConfig,
    source: &DataSource,
    count: usize,
    what: &str,
) -> anyhow::Result<()> {
    let split = format!("{} ({})", source.describe(), source.location().display());
    let usable = match cfg.data.limit {
        Some(limit) if limit > count => {
            anyhow::bail!("data.limit is {limit} but {split} has only {count} {what}")
        }
        Some(limit) => limit,
        None => count,
    };
    anyhow::ensure!(
        cfg.train.batch_size <= usable,
        "train.batch_size is {} but only {usable} images of {split} are used",
        cfg.train.batch_size
    );
    Ok(())
}

/// Trains every planned run that is not complete yet.
pub fn execute(
    sweep_name: &str,
    planned: &[PlannedRun],
    cache: &mut DatasetCache,
    runs: &RunsDir,
) -> SweepSummary {
    let mut sweep = Execution {
        name: sweep_name,
        runs,
        cache,
        evaluators: Evaluators::default(),
        summary: SweepSummary::default(),
        todo: planned.iter().filter(|p| !matches!(p.state, RunState::Completed(_))).count(),
        index: 0,
    };
    sweep.summary.cached = planned.len() - sweep.todo;
    let mut busy = Vec::new();
    for run in planned {
        if let RunState::Completed(_) = run.state {
            tracing::info!(run = run.short(), config = %run.point.label(), "cached, not trained");
            continue;
        }
        if sweep.stopped() {
            break;
        }
        match lock::try_acquire(runs.root(), run.short()) {
            Ok(Some(lock)) => sweep.attempt(run, lock),
            Ok(None) => {
                let holder = lock::holder(runs.root(), run.short()).unwrap_or_default();
                tracing::info!(
                    run = run.short(),
                    "another process is training it ({holder}); \
                    coming back to it after the others"
                );
                busy.push(run);
            }
            Err(e) => sweep.lock_failed(run, &e),
        }
    }
    for run in busy {
        if sweep.stopped() {
            break;
        }
        match wait_for_lock(runs, run) {
            Ok(Some(lock)) => sweep.attempt(run, lock),
            Ok(None) => {}
            Err(e) => sweep.lock_failed(run, &e),
        }
    }
    sweep.summary
}

/// Waits for another process to let go of a run, checking for Ctrl-C every half second.
fn wait_for_lock(
    runs: &RunsDir,
    run: &PlannedRun,
) -> Result<Option<RunLock>, crate::store::StoreError> {
    let holder = lock::holder(runs.root(), run.short()).unwrap_or_default();
    tracing::info!(run = run.short(), "waiting for {holder} to finish it");
    loop {
        if let Some(lock) = lock::try_acquire(runs.root(), run.short())? {
            return Ok(Some(lock));
        }
        if interrupt::requested() {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// A sweep being trained.
struct Execution<'a> {
    name: &'a str,
    runs: &'a RunsDir,
    cache: &'a mut DatasetCache,
    evaluators: Evaluators,
    summary: SweepSummary,
    todo: usize,
    index: usize,
}

/// How one attempt at a config ended.
enum Ended {
    Completed,
    Failed,
    Interrupted,
}

impl Execution<'_> {
    fn stopped(&mut self) -> bool {
        if interrupt::requested() {
            self.summary.interrupted = true;
        }
        self.summary.interrupted
    }

    fn lock_failed(&mut self, run: &PlannedRun, e: &crate::store::StoreError) {
        tracing::error!(run = run.short(), "cannot take the run's lock: {e}");
        self.summary.failed += 1;
    }

    /// Trains (or resumes) a config whose lock this process holds, unless another process
    /// completed it since the sweep was planned.
    fn attempt(&mut self, run: &PlannedRun, lock: RunLock) {
        if let Some(note) = &lock.taken_over {
            tracing::warn!(
                run = run.short(),
                "took over the run's lock from {note}, which \
                is no longer running"
            );
        }
        if let RunState::Completed(_) = self.runs.state(&run.hash) {
            tracing::info!(run = run.short(), "completed by another process meanwhile");
            self.summary.elsewhere += 1;
            return;
        }
        self.index += 1;
        let (index, todo) = (self.index, self.todo);
        tracing::info!(run = run.short(), config = %run.point.label(), "training {index}/{todo}");
        let ended = train_one(self.name, run, self.cache, self.runs, &mut self.evaluators, lock);
        match ended {
            Ok(Ended::Completed) => self.summary.trained += 1,
            Ok(Ended::Failed) => self.summary.failed += 1,
            Ok(Ended::Interrupted) => self.summary.interrupted = true,
            Err(e) => {
                tracing::error!(run = run.short(), "run could not be trained: {e:#}");
                self.summary.failed += 1;
            }
        }
    }
}

/// Trains one config in its run directory, from its last checkpoint if it has one.
fn train_one(
    sweep_name: &str,
    run: &PlannedRun,
    cache: &mut DatasetCache,
    runs: &RunsDir,
    evaluators: &mut Evaluators,
    lock: RunLock,
) -> anyhow::Result<Ended> {
    let cfg = &run.point.config;
    let readable = cache.dataset(&cfg.data).map_err(anyhow::Error::from);
    let data = match readable.and_then(|d| check_readable_count(cfg, &d).map(|()| d)) {
        Ok(data) => data,
        // Ctrl-C while decoding: nothing failed, the sweep stops.
        Err(_) if crate::interrupt::requested() => return Ok(Ended::Interrupted),
        Err(e) => return failed_before_training(sweep_name, run, runs, lock, e),
    };
    let backend = Backend::parse(&cfg.train.backend)?;
    let device = backend.training_device();
    let count = data.images_used(cfg.data.limit);
    let manifest = new_manifest(sweep_name, run, backend, &format!("{device:?}"), count);
    let mut active = runs.open(cfg, manifest, lock)?;
    carry_over(&mut active);
    let outcome = match train_opened(run, &data, &device, runs, evaluators, &mut active) {
        Ok(outcome) => outcome,
        Err(e) => {
            // Recorded in the run directory, so `dcgan status` and `ls` say why.
            let reason = format!("{e:#}");
            let dir = active.finish(&[], 0.0, Some(reason.clone()))?;
            tracing::error!(run = run.short(), dir = %dir.display(), "failed: {reason}");
            return Ok(Ended::Failed);
        }
    };
    conclude(run, active, outcome)
}

/// Records a run whose data cannot be used as failed, with the reason, so `ls` and `status`
/// say why; an unfinished run that has a directory keeps it (and its checkpoints) as it is.
fn failed_before_training(
    sweep_name: &str,
    run: &PlannedRun,
    runs: &RunsDir,
    lock: RunLock,
    error: anyhow::Error,
) -> anyhow::Result<Ended> {
    if !matches!(runs.state(&run.hash), RunState::Missing) {
        return Err(error);
    }
    let reason = format!("{error:#}");
    let dataset = dataset_info(&run.point.config, &run.source.fingerprint);
    let dir = open_failed(runs, sweep_name, &run.point, &run.hash, dataset, lock, &reason)?;
    tracing::error!(run = run.short(), dir = %dir.display(), "failed: {reason}");
    Ok(Ended::Failed)
}

/// Trains a run whose directory is open; errors before training starts are returned.
fn train_opened(
    run: &PlannedRun,
    data: &Dataset,
    device: &burn::tensor::Device,
    runs: &RunsDir,
    evaluators: &mut Evaluators,
    active: &mut ActiveRun,
) -> anyhow::Result<train::TrainOutcome> {
    let cfg = &run.point.config;
    let backend = Backend::parse(&cfg.train.backend)?;
    let evaluator = evaluators.get(cfg, data, backend, runs.root())?;
    active.manifest.evaluation = Some(match evaluator {
        Some((_, about)) => about.clone(),
        None if !cfg.eval.enabled => "skipped (eval.enabled: false)".to_string(),
        None => NO_CLASSES.to_string(),
    });
    let evaluator = evaluator.map(|(e, _)| e);
    active.write_manifest()?;

    let progress = progress_bar(cfg.train.steps, run.short());
    let on_checkpoint = |step: u64, seconds: f64| {
        let mut manifest = active.manifest.clone();
        (manifest.steps_done, manifest.duration_s) = (step, Some(seconds));
        if let Err(e) = crate::store::write_manifest(active.dir(), &manifest) {
            tracing::warn!(run = run.short(), "cannot record progress in the manifest: {e}");
        }
    };
    let outcome = train::train(
        cfg,
        data,
        device,
        Outputs {
            samples_dir: &active.samples_dir(),
            checkpoints_dir: &active.checkpoints_dir(),
            progress: &progress,
            evaluator,
            resume_in: Some(active.dir()),
            on_checkpoint: Some(&on_checkpoint),
        },
    );
    crate::terminal::remove(&progress);
    Ok(outcome)
}

/// Records how a training that ran ended: interrupted, failed or completed.
fn conclude(
    run: &PlannedRun,
    mut active: ActiveRun,
    outcome: train::TrainOutcome,
) -> anyhow::Result<Ended> {
    let seconds = outcome.elapsed_s;
    if let Some(TrainError::Interrupted { step, signal }) = outcome.error {
        let dir = active.interrupt(step, seconds)?;
        tracing::warn!(run = run.short(), dir = %dir.display(),
            "stopped by {signal} after step {step}; training it again goes on from there");
        return Ok(Ended::Interrupted);
    }
    let failure = outcome.error.map(|e| e.to_string());
    if !outcome.evals.is_empty() {
        eval::table::write(&active.dir().join(eval::table::EVAL_FILE), &outcome.evals)?;
    } else if active.manifest.evaluation.as_deref().is_some_and(|e| !e.starts_with("skipped")) {
        let planned = active.manifest.evaluation.take().unwrap_or_default();
        let none = format!("none made: the run stopped before its first evaluation ({planned})");
        active.manifest.evaluation = Some(none);
    }
    let dir = active.finish(&outcome.rows, seconds, failure.clone())?;
    match failure {
        Some(reason) => {
            tracing::warn!(run = run.short(), dir = %dir.display(), "failed: {reason}");
            Ok(Ended::Failed)
        }
        None => {
            log_completion(run.short(), &outcome.rows, seconds, &dir);
            Ok(Ended::Completed)
        }
    }
}

/// For a run that goes on from an unfinished attempt: keeps when and by which sweep it was
/// started, and records this resumption.
fn carry_over(active: &mut ActiveRun) {
    let Some(previous) = active.previous.take() else { return };
    let from_step = checkpoint::latest(active.dir()).map_or(0, |(step, _)| step);
    let m = &mut active.manifest;
    m.started_at = previous.started_at.clone();
    m.sweep = previous.sweep.clone();
    m.resumes = previous.resumes.clone();
    m.resumes.push(Resume {
        at: now_rfc3339(),
        from_step,
        host: host_name(),
        git_commit: Harness::current().git_commit,
    });
    match from_step {
        0 => tracing::info!("no checkpoint was written before it stopped: starting again"),
        step => tracing::info!("going on from the checkpoint of step {step}"),
    }
}

/// Evaluators built so far in this process, one per dataset, backend and eval settings: the
/// classifier and the real images' features are made once per sweep.
#[derive(Default)]
pub struct Evaluators {
    built: Vec<(String, Evaluator, String)>,
}

impl Evaluators {
    /// The evaluator for a config (and a line describing it for the manifest), or `None`
    /// when the config skips evaluation.
    pub fn get(
        &mut self,
        cfg: &RunConfig,
        data: &Dataset,
        backend: Backend,
        runs_root: &std::path::Path,
    ) -> anyhow::Result<Option<(&Evaluator, &String)>> {
        if !cfg.eval.enabled {
            return Ok(None);
        }
        if data.classes_present() < 2 {
            let at = data.source.location().display();
            tracing::warn!("{at} has fewer than two classes: runs on it are not scored");
            return Ok(None);
        }
        let e = &cfg.eval;
        let key = format!(
            "{} {backend} {} {} {}",
            data.source.fingerprint, e.n, e.seed, e.classifier_epochs
        );
        if !self.built.iter().any(|(k, _, _)| *k == key) {
            let (device, training) = (backend.device(), backend.training_device());
            let (classifier, made) =
                eval::classifier::load_or_train(runs_root, data, e, &device, &training)?;
            let evaluator = Evaluator::new(classifier, data, e.n, e.seed, &device)?;
            let about = format!(
                "n={} every={} seed={}; classifier held-out accuracy {:.4} on {} images",
                evaluator.n(),
                e.every,
                e.seed,
                made.held_out_accuracy,
                made.held_out_images
            );
            self.built.push((key.clone(), evaluator, about));
        }
        let found = self.built.iter().find(|(k, _, _)| *k == key);
        Ok(found.map(|(_, evaluator, about)| (evaluator, about)))
    }
}

/// Why a run with evaluation on was not scored.
const NO_CLASSES: &str = "skipped: the dataset has fewer than two classes (the metrics need a \
    classifier of its classes: labels, or one sub-folder per class)";

fn new_manifest(
    sweep_name: &str,
    run: &PlannedRun,
    backend: Backend,
    device: &str,
    count: usize,
) -> Manifest {
    let files = run.source.files();
    let mut dataset = dataset_info(&run.point.config, &run.source.fingerprint);
    dataset.count = count;
    dataset.files = files.iter().map(|p| p.display().to_string()).collect();
    let mut manifest = starting_manifest(sweep_name, &run.hash, &run.point, dataset);
    (manifest.backend, manifest.device) = (backend.to_string(), device.to_string());
    manifest
}

/// What a config's manifest says about its dataset before the files are read.
fn dataset_info(cfg: &RunConfig, fingerprint: &str) -> DatasetInfo {
    DatasetInfo {
        name: cfg.data.dataset.as_str().to_string(),
        split: cfg.data.split.as_str().to_string(),
        fingerprint: fingerprint.to_string(),
        count: 0,
        files: Vec::new(),
    }
}

/// The `running` manifest a run starts with, on the config's backend, on no device yet.
fn starting_manifest(
    sweep_name: &str,
    hash: &str,
    point: &SweepPoint,
    dataset: DatasetInfo,
) -> Manifest {
    Manifest {
        hash: hash.to_string(),
        status: Status::Running,
        failure: None,
        sweep: sweep_name.to_string(),
        swept: point.swept.clone(),
        started_at: now_rfc3339(),
        finished_at: None,
        duration_s: None,
        steps_done: 0,
        steps_planned: point.config.train.steps,
        harness: Harness::current(),
        backend: point.config.train.backend.clone(),
        device: "none".to_string(),
        dataset,
        host: host_name(),
        resumes: Vec::new(),
        evaluation: None,
    }
}

/// Set in worker processes of a parallel sweep: progress goes to the parent as lines.
static PROGRESS_AS_LINES: AtomicBool = AtomicBool::new(false);

/// Makes runs report their progress as `@progress` lines instead of drawing a bar.
pub fn report_progress_as_lines() {
    PROGRESS_AS_LINES.store(true, Ordering::Relaxed);
}

fn progress_bar(steps: u64, name: &str) -> ProgressBar {
    if PROGRESS_AS_LINES.load(Ordering::Relaxed) {
        return crate::parallel::progress::reporting_bar(steps, name);
    }
    let bar = ProgressBar::new(steps).with_prefix(name.to_string()).with_style(progress_style());
    crate::terminal::add(bar)
}

/// How a run's bar looks, here and in the bars of `--jobs` workers.
pub fn progress_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} [{bar:30}] step {pos}/{len} {per_sec} eta {eta}")
        .expect("the template is valid")
        .progress_chars("=> ")
}

fn log_completion(short: &str, rows: &[MetricsRow], seconds: f64, dir: &std::path::Path) {
    let skipped_d = rows.iter().filter(|r| !r.d_updated).count();
    let skipped_g = rows.iter().filter(|r| !r.g_updated).count();
    let last = rows.last();
    tracing::info!(
        run = short,
        seconds = format!("{seconds:.1}"),
        d_loss = last.map(|r| format!("{:.3}", r.d_loss)),
        skipped_d,
        skipped_g,
        dir = %dir.display(),
        "completed"
    );
}

/// Where the runs of a sweep go when `--runs-dir` is not given.
pub fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}
