//! The training commands: `sweep` (here, in worker processes, or on Slurm), `run` (a file, or
//! a recorded config by hash) and `status`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Common, Executor, RunArgs, StatusArgs, SweepArgs, say};
use crate::backend::Backend;
use crate::data::DatasetCache;
use crate::runner::{self, PlannedRun, SweepSummary};
use crate::store::{self, RunsDir};
use crate::sweep;

/// `-v`/`-q` as given, for the worker processes of `--jobs`.
pub(super) fn log_flags(verbose: u8, quiet: bool) -> Vec<String> {
    let mut flags = vec!["-v".to_string(); usize::from(verbose)];
    if quiet {
        flags.push("-q".to_string());
    }
    flags
}

pub(super) fn sweep_command(args: &SweepArgs, log_flags: Vec<String>) -> anyhow::Result<bool> {
    let local = args.executor == Executor::Local;
    anyhow::ensure!(args.jobs > 0, "--jobs must be at least 1");
    anyhow::ensure!(args.common.threads != Some(0), "--threads must be at least 1");
    if let Some(flag) = args.slurm.given().filter(|_| local) {
        anyhow::bail!("{flag} is an option of --executor slurm");
    }
    anyhow::ensure!(
        local || (args.jobs == 1 && args.devices.is_empty()),
        "--jobs and --devices are for --executor local; Slurm decides where array tasks run \
         (see --array-parallelism and --gpus-per-task)"
    );
    // Workers and Slurm tasks get --threads passed on; this process only plans and decodes.
    let in_process = local && args.jobs == 1 && args.devices.is_empty();
    if in_process {
        set_threads(args.common.threads)?;
    }
    let mut sweep = sweep::load(&args.file)?;
    let runs = RunsDir::new(&args.common.runs_dir);
    let mut cache = DatasetCache::on_disk(&runs.cache_dir());
    let what = format!("sweep {}", args.file.display());
    let planned = plan(&mut sweep, &args.common, &mut cache, &runs, &what)?;
    if args.executor == Executor::Slurm {
        let options = slurm_options(args);
        return crate::slurm::submit(&sweep, &args.file, &planned, &runs, &options);
    }
    print_plan(&sweep.name, &planned);
    if args.dry_run {
        return Ok(true);
    }
    runs.prepare().with_context(|| format!("--runs-dir {}", runs.root().display()))?;
    warn_about_leftovers(runs.root());
    crate::interrupt::install();
    let summary = if in_process {
        runner::execute(&sweep.name, &planned, &mut cache, &runs)
    } else {
        drop(cache);
        let options = crate::parallel::Options {
            jobs: args.jobs,
            devices: args.devices.clone(),
            threads: args.common.threads,
            log_flags,
        };
        crate::parallel::execute(&sweep.name, &args.file, &planned, &runs, &options)?
    };
    print_summary(&sweep.name, &summary, runs.root());
    Ok(summary.all_completed())
}

fn slurm_options(args: &SweepArgs) -> crate::slurm::Options {
    crate::slurm::Options {
        partition: args.slurm.partition.clone(),
        time: args.slurm.time.clone(),
        gpus_per_task: args.slurm.gpus_per_task,
        array_parallelism: args.slurm.array_parallelism,
        sbatch_args: args.slurm.sbatch_args.clone(),
        wait: args.slurm.wait,
        dry_run: args.dry_run,
        threads: args.common.threads,
    }
}

fn plan(
    sweep: &mut sweep::Sweep,
    common: &Common,
    cache: &mut DatasetCache,
    runs: &RunsDir,
    what: &str,
) -> anyhow::Result<Vec<PlannedRun>> {
    runner::plan(sweep, common.backend.as_deref(), cache, runs)
        .with_context(|| format!("cannot plan {what}"))
}

/// Applies `--threads` to every CPU backend; must come before any tensor work.
fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    let Some(threads) = threads else { return Ok(()) };
    for backend in [Backend::Flex, Backend::TchCpu] {
        if Backend::parse(&backend.to_string()).is_ok() {
            backend.set_cpu_threads(threads).context("--threads")?;
        }
    }
    Ok(())
}

pub(super) fn run_command(args: &RunArgs) -> anyhow::Result<bool> {
    set_threads(args.common.threads)?;
    if args.worker {
        runner::report_progress_as_lines();
        crate::parallel::progress::watch_parent();
    }
    let runs = RunsDir::new(&args.common.runs_dir);
    let mut cache = DatasetCache::on_disk(&runs.cache_dir());
    let (mut sweep, file, recorded) = match (&args.hash, &args.file) {
        (Some(hash), _) => {
            let (sweep, file, full_hash) = recorded_run(hash, &runs)?;
            (sweep, file, Some(full_hash))
        }
        (None, Some(file)) => (sweep::load(file)?, file.clone(), None),
        (None, None) => anyhow::bail!("give a config file or --hash"),
    };
    anyhow::ensure!(
        sweep.points.len() <= 1,
        "{} expands to {} configs; `dcgan run` trains one, use `dcgan sweep` for more",
        file.display(),
        sweep.points.len()
    );
    let what = match &recorded {
        Some(hash) => format!("run {} (recorded in {})", hash, file.display()),
        None => format!("sweep {}", file.display()),
    };
    let planned = plan(&mut sweep, &args.common, &mut cache, &runs, &what);
    let planned = match &recorded {
        None => planned?,
        Some(hash) => match planned.and_then(|p| check_recorded_hash(p, hash)) {
            Ok(planned) => planned,
            Err(e) => return Err(runner::record_failure(&runs, &sweep, hash, e)),
        },
    };
    print_plan(&sweep.name, &planned);
    runs.prepare().with_context(|| format!("--runs-dir {}", runs.root().display()))?;
    crate::interrupt::install();
    let summary = runner::execute(&sweep.name, &planned, &mut cache, &runs);
    print_summary(&sweep.name, &summary, runs.root());
    if args.worker && summary.cached + summary.elsewhere > 0 {
        // Completed, but not by this worker: the sweep must not count it as trained.
        say(format_args!("{}", crate::parallel::progress::ELSEWHERE));
    }
    Ok(summary.all_completed())
}

/// The one-config sweep of a recorded run, where it was recorded, and its full hash.
fn recorded_run(hash: &str, runs: &RunsDir) -> anyhow::Result<(sweep::Sweep, PathBuf, String)> {
    let (name, run) = crate::store::sweeps::find(runs.root(), hash)?;
    let source = runs.root().join(crate::store::sweeps::SWEEPS_DIR).join(&name);
    let points = vec![run.point()];
    let sweep = sweep::Sweep { name, description: None, source: source.clone(), points };
    Ok((sweep, source, run.hash))
}

/// A recorded config must hash here as it did where it was recorded, or this machine sees
/// other data (or runs another version of dcgan) and the run would land under another name.
fn check_recorded_hash(planned: Vec<PlannedRun>, wanted: &str) -> anyhow::Result<Vec<PlannedRun>> {
    let got = planned.first().map(|p| p.hash.clone()).unwrap_or_default();
    anyhow::ensure!(
        got == wanted,
        "the recorded config {wanted} hashes to {} here: this machine sees other dataset \
         files, or runs another version of dcgan, than the one that recorded the sweep",
        crate::hashing::short(&got)
    );
    Ok(planned)
}

fn print_plan(name: &str, planned: &[PlannedRun]) {
    let plural = if planned.len() == 1 { "" } else { "s" };
    say(format_args!("sweep {name}: {} config{plural}", planned.len()));
    for run in planned {
        say(format_args!("{}  {:<13}  {}", run.short(), run.status_word(), run.point.label()));
        if let Some(reason) = run.retry_reason() {
            tracing::warn!(run = run.short(), "will train again: {reason}");
        }
    }
}

fn print_summary(name: &str, s: &SweepSummary, root: &Path) {
    let elsewhere = match s.elsewhere {
        0 => String::new(),
        n => format!(", {n} completed by another process"),
    };
    let stopped = if s.interrupted { "; interrupted, run it again to go on" } else { "" };
    say(format_args!(
        "sweep {name}: {} trained, {} cached, {} failed{elsewhere}; runs in {}{stopped}",
        s.trained,
        s.cached,
        s.failed,
        root.display()
    ));
}

fn warn_about_leftovers(root: &Path) {
    let leftovers = store::leftovers(root);
    if let Some(first) = leftovers.first() {
        tracing::warn!(
            "{} unfinished run director{} left by an older version of dcgan, e.g. {}; \
             they cannot be resumed; `dcgan gc` removes them",
            leftovers.len(),
            if leftovers.len() == 1 { "y" } else { "ies" },
            first.display()
        );
    }
}

pub(super) fn status_command(args: &StatusArgs) -> anyhow::Result<bool> {
    let mut sweep = sweep::load(&args.file)?;
    let runs = RunsDir::new(&args.runs_dir);
    if !runs.root().is_dir() {
        tracing::warn!("there is no runs folder {}", runs.root().display());
    }
    let mut cache = DatasetCache::default();
    let planned = runner::plan(&mut sweep, args.backend.as_deref(), &mut cache, &runs);
    let configs: Vec<(String, sweep::SweepPoint)> = match planned {
        Ok(planned) => planned.into_iter().map(|p| (p.hash, p.point)).collect(),
        Err(e) => match store::sweeps::latest(runs.root(), &sweep.name) {
            // The dataset is not on this machine, say: the record has the runs' hashes.
            Some((path, record)) => {
                tracing::warn!(
                    "cannot plan the sweep here ({e:#}); showing the configs recorded in {}",
                    path.display()
                );
                record.runs.iter().map(|r| (r.hash.clone(), r.point())).collect()
            }
            None => return Err(e.context(format!("cannot read sweep {}", args.file.display()))),
        },
    };
    let queued = crate::slurm::queued(&runs, &sweep.name);
    for line in crate::inspect::status::render(&sweep.name, &configs, &runs, &queued) {
        say(format_args!("{line}"));
    }
    Ok(true)
}
