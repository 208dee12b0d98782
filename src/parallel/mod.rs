//! `dcgan sweep --jobs N`: several runs at once on this machine, each in a worker process of
//! its own (`dcgan run --hash H`), so a run that crashes or runs out of memory takes no other
//! run down.
//!
//! The sweep is recorded in the runs folder first ([`crate::store::sweeps`]), which is how a
//! worker finds its config, and its dataset is decoded once into the disk cache, which every
//! worker maps ([`crate::data::decoded`]). Workers run in process groups of their own: a
//! Ctrl-C reaches this process only, which passes it on once to each worker (each then
//! checkpoints and stops) and starts no more. Should this process die, its workers notice
//! that their parent changed and stop the same way ([`progress::watch_parent`]).
//!
//! With `--devices 0,1` each device gets `--jobs` workers, each seeing only its own GPU
//! (`CUDA_VISIBLE_DEVICES`), so configs on `tch-cuda` keep their hash wherever they run.

pub mod progress;
mod worker;

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::backend::Backend;
use crate::data::DatasetCache;
use crate::interrupt;
use crate::runner::{PlannedRun, SweepSummary};
use crate::store::sweeps::{self, RecordedRun};
use crate::store::{RunState, RunsDir, lock};
use worker::Worker;

/// How to run a sweep's configs in parallel.
#[derive(Debug, Clone)]
pub struct Options {
    /// Workers at once (per device, when devices are given).
    pub jobs: usize,
    /// CUDA devices to spread workers over; empty for none.
    pub devices: Vec<usize>,
    /// CPU threads per worker (default: the cores shared out between the workers).
    pub threads: Option<usize>,
    /// Verbosity flags passed on to workers (`-v`, `-q`).
    pub log_flags: Vec<String>,
}

impl Options {
    /// One entry per worker slot: the CUDA device it uses, if any.
    fn slots(&self) -> Vec<Option<usize>> {
        if self.devices.is_empty() {
            return vec![None; self.jobs];
        }
        let per_device = |d: &usize| std::iter::repeat_n(Some(*d), self.jobs);
        self.devices.iter().flat_map(per_device).collect()
    }

    /// Threads for each of `workers` workers running at once.
    fn threads_per_worker(&self, workers: usize) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.threads.unwrap_or((cores / workers.max(1)).max(1))
    }
}

/// Records the sweep and trains every config that is not complete, `jobs` at a time.
pub fn execute(
    sweep_name: &str,
    file: &Path,
    planned: &[PlannedRun],
    runs: &RunsDir,
    options: &Options,
) -> anyhow::Result<SweepSummary> {
    anyhow::ensure!(options.jobs > 0, "--jobs must be at least 1");
    let todo: Vec<&PlannedRun> =
        planned.iter().filter(|p| !matches!(p.state, RunState::Completed(_))).collect();
    let mut summary =
        SweepSummary { cached: planned.len() - todo.len(), ..SweepSummary::default() };
    check_devices(&todo, &options.devices)?;
    if todo.is_empty() {
        return Ok(summary);
    }
    prepare_workers(sweep_name, file, planned, runs)?;
    let mut slots = options.slots();
    // More slots than configs would only thin out the threads.
    slots.truncate(todo.len());
    let threads = options.threads_per_worker(slots.len());
    tracing::info!(
        "training {} configs, {} at a time, {threads} CPU thread{} each",
        todo.len(),
        slots.len(),
        if threads == 1 { "" } else { "s" }
    );
    let logs = runs.root().join(sweeps::SWEEPS_DIR).join(sweep_name).join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let launch = worker::Launch {
        exe: std::env::current_exe().context("cannot find the dcgan binary to start workers")?,
        runs_dir: runs.root().to_path_buf(),
        threads,
        log_flags: options.log_flags.clone(),
        logs,
    };
    supervise(&launch, todo, &slots, runs, &mut summary);
    Ok(summary)
}

/// Configs on other backends than `tch-cuda` cannot be moved between GPUs.
fn check_devices(todo: &[&PlannedRun], devices: &[usize]) -> anyhow::Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    for run in todo {
        let backend = &run.point.config.train.backend;
        anyhow::ensure!(
            Backend::parse_name(backend).ok() == Some(Backend::TchCuda(0)),
            "--devices spreads runs over CUDA GPUs, so every config must train on `tch-cuda`; \
             config {} trains on `{backend}` (use --backend tch-cuda)",
            run.point.label()
        );
    }
    Ok(())
}

/// Makes what a process given only a run's hash needs (a `--jobs` worker or a Slurm array
/// task): the sweep recorded in the runs folder, and the datasets of the configs that are not
/// complete decoded into the disk cache, once, rather than by every worker.
pub fn prepare_workers(
    name: &str,
    file: &Path,
    planned: &[PlannedRun],
    runs: &RunsDir,
) -> anyhow::Result<()> {
    runs.prepare().with_context(|| format!("--runs-dir {}", runs.root().display()))?;
    let recorded: Vec<RecordedRun> = planned.iter().map(PlannedRun::recorded).collect();
    let path = sweeps::record(runs.root(), name, file, &recorded)?;
    tracing::debug!("recorded the sweep in {}", path.display());
    let mut cache = DatasetCache::on_disk(&runs.cache_dir());
    for run in planned.iter().filter(|p| !matches!(p.state, RunState::Completed(_))) {
        cache.dataset(&run.point.config.data)?;
    }
    Ok(())
}

/// Starts workers into free slots until every config has had one, or until Ctrl-C; then
/// waits for the running ones.
fn supervise(
    launch: &worker::Launch,
    todo: Vec<&PlannedRun>,
    slots: &[Option<usize>],
    runs: &RunsDir,
    summary: &mut SweepSummary,
) {
    let mut queue: VecDeque<&PlannedRun> = todo.into();
    let mut running: Vec<Worker> = Vec::new();
    loop {
        if interrupt::requested() && !summary.interrupted {
            summary.interrupted = true;
            tracing::warn!(
                "{}: stopping {} running worker(s) after their current step",
                interrupt::signal_name(),
                running.len()
            );
            running.iter_mut().for_each(Worker::stop);
        }
        while !summary.interrupted && running.len() < slots.len() {
            let Some(run) = next_run(&mut queue, runs) else { break };
            let slot = (0..slots.len()).find(|s| running.iter().all(|w| w.slot != *s));
            let slot = slot.expect("fewer workers than slots, so a slot is free");
            match Worker::start(launch, run, slot, slots[slot]) {
                Ok(worker) => running.push(worker),
                Err(e) => {
                    tracing::error!(run = run.short(), "cannot start a worker: {e:#}");
                    summary.failed += 1;
                }
            }
        }
        running.iter_mut().for_each(Worker::poll_exit);
        let (done, still): (Vec<Worker>, Vec<Worker>) =
            running.into_iter().partition(Worker::exited);
        running = still;
        for worker in done {
            worker.conclude(runs, summary);
        }
        if running.is_empty() && (queue.is_empty() || summary.interrupted) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The next config to start: the first one nobody trains now; failing that, the first one,
/// whose worker waits for the other process and then counts its outcome.
fn next_run<'a>(queue: &mut VecDeque<&'a PlannedRun>, runs: &RunsDir) -> Option<&'a PlannedRun> {
    let free = queue.iter().position(|run| lock::holder(runs.root(), run.short()).is_none());
    queue.remove(free.unwrap_or(0))
}
