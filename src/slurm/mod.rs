//! `dcgan sweep --executor slurm`: a sweep as one Slurm job array, on a filesystem the login
//! node and the compute nodes share.
//!
//! The expanded sweep is recorded in the runs folder ([`crate::store::sweeps`]); a script is
//! written with one array task per config that has no completed run, each running
//! `dcgan run --hash H --runs-dir DIR`; it is submitted with sbatch and the submission is kept
//! beside it (`.sweeps/<name>/slurm/<job>.json`: array index to hash) for `dcgan status`.
//! Submitting again sends only what is still not complete, and unfinished runs resume from
//! their checkpoints. Whether a task worked is read from its run directory.

pub mod queue;
pub mod script;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::cli::say;
use crate::runner::PlannedRun;
use crate::store::sweeps;
use crate::store::{RunState, RunsDir, lock, write_atomic};
use crate::sweep::Sweep;
use script::Script;

/// Options of `--executor slurm`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub array_parallelism: Option<usize>,
    pub sbatch_args: Vec<String>,
    pub wait: bool,
    pub dry_run: bool,
    pub threads: Option<usize>,
}

impl Options {
    /// Refuses values that sbatch would misread, or that would end a `#SBATCH` line early and
    /// put the rest of the value into the script as a command.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.array_parallelism != Some(0),
            "--array-parallelism must be at least 1"
        );
        anyhow::ensure!(self.threads != Some(0), "--threads must be at least 1");
        let named = [("--partition", &self.partition), ("--time", &self.time)];
        let values = named.iter().filter_map(|(n, v)| v.as_ref().map(|v| (*n, v)));
        for (name, value) in values.chain(self.sbatch_args.iter().map(|a| ("--sbatch-arg", a))) {
            anyhow::ensure!(
                !value.chars().any(char::is_control),
                "{name} {value:?} holds a control character (a newline?): each value must be \
                 one line of the sbatch script"
            );
            anyhow::ensure!(!value.trim().is_empty(), "{name} is empty");
        }
        Ok(())
    }
}

/// What was submitted: `.sweeps/<name>/slurm/<job>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    pub job: String,
    pub submitted_at: String,
    pub script: PathBuf,
    /// Array index `i` trains `hashes[i]`.
    pub hashes: Vec<String>,
}

/// Where a sweep's scripts, submissions and task logs go.
pub fn slurm_dir(runs: &RunsDir, sweep: &str) -> PathBuf {
    runs.root().join(sweeps::SWEEPS_DIR).join(sweep).join("slurm")
}

/// Submits the configs of a sweep that have no completed run (or prints the script, with
/// `dry_run`); with `wait`, waits for the job and returns whether every config completed.
pub fn submit(
    sweep: &Sweep,
    file: &Path,
    planned: &[PlannedRun],
    runs: &RunsDir,
    options: &Options,
) -> anyhow::Result<bool> {
    options.check()?;
    let todo = to_submit(sweep, planned, runs);
    let done = planned.iter().filter(|p| matches!(p.state, RunState::Completed(_))).count();
    let busy = planned.len() - done - todo.len();
    if todo.is_empty() {
        say(format_args!(
            "sweep {}: nothing to submit; {done} config(s) completed, {busy} queued or running",
            sweep.name
        ));
        return Ok(true);
    }
    let root = std::path::absolute(runs.root()).context("--runs-dir")?;
    let runs = RunsDir::new(&root);
    let hashes: Vec<String> = todo.iter().map(|p| p.hash.clone()).collect();
    let text = script_text(sweep, file, &hashes, planned.len(), &runs, options)?;
    if options.dry_run {
        say(format_args!("{}", text.trim_end()));
        return Ok(true);
    }
    queue::check_sbatch()?;
    crate::parallel::prepare_workers(&sweep.name, file, planned, &runs)?;
    let submission = send(&sweep.name, &runs, &text, hashes)?;
    say(format_args!(
        "submitted job {}: {} array task(s) for sweep {} ({done} config(s) completed before, \
         {busy} queued or running); task logs in {}; watch with `{}`",
        submission.job,
        todo.len(),
        sweep.name,
        slurm_dir(&runs, &sweep.name).display(),
        status_command(file, &runs)
    ));
    if !options.wait {
        return Ok(true);
    }
    wait_for(&submission.job, &sweep.name)?;
    Ok(check_runs(&runs, &submission, &slurm_dir(&runs, &sweep.name)))
}

/// The sbatch script for these hashes, run by this binary from this folder.
fn script_text(
    sweep: &Sweep,
    file: &Path,
    hashes: &[String],
    total_configs: usize,
    runs: &RunsDir,
    options: &Options,
) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("cannot find the dcgan binary")?;
    let workdir = std::env::current_dir().context("cannot read the current folder")?;
    let script = Script {
        sweep: &sweep.name,
        sweep_file: file,
        exe: &exe,
        runs_dir: runs.root(),
        workdir: &workdir,
        logs: &slurm_dir(runs, &sweep.name),
        hashes,
        total_configs,
        options,
    };
    Ok(script.render())
}

/// Writes the script, submits it, and records the submission (`<job>.json`, beside it).
fn send(
    sweep: &str,
    runs: &RunsDir,
    text: &str,
    hashes: Vec<String>,
) -> anyhow::Result<Submission> {
    let script = write_script(sweep, runs, text)?;
    let job = queue::sbatch(&script)?;
    let submitted_at = crate::store::manifest::now_rfc3339();
    let submission = Submission { job, submitted_at, script, hashes };
    let record = slurm_dir(runs, sweep).join(format!("{}.json", submission.job));
    let json = serde_json::to_vec_pretty(&submission).expect("submissions serialise");
    write_atomic(&record, &json)?;
    Ok(submission)
}

/// The `dcgan status` command line for this sweep file and runs folder.
fn status_command(file: &Path, runs: &RunsDir) -> String {
    let mut command = format!("dcgan status {}", script::quote(&file.display().to_string()));
    if std::path::absolute("runs").ok().as_deref() != Some(runs.root()) {
        command += &format!(" --runs-dir {}", script::quote(&runs.root().display().to_string()));
    }
    command
}

/// Prints the plan and picks the configs to submit: not completed, not queued by an earlier
/// submission, and not being trained now by anyone (their lock is held).
fn to_submit<'a>(sweep: &Sweep, planned: &'a [PlannedRun], runs: &RunsDir) -> Vec<&'a PlannedRun> {
    let mut queued = queued(runs, &sweep.name);
    // A task that is ending (cancelled, say) will not train its run again.
    queued.retain(|_, task| task.will_run());
    if !queue::available() {
        tracing::warn!(
            "squeue is not on PATH: runs queued by an earlier submission cannot be seen and \
             may be submitted again (their tasks will find them done or wait for them)"
        );
    }
    let plural = if planned.len() == 1 { "" } else { "s" };
    say(format_args!("sweep {}: {} config{plural}", sweep.name, planned.len()));
    let mut todo = Vec::new();
    for run in planned {
        let held = lock::holder(runs.root(), run.short());
        let word = match (queued.get(&run.hash), &held) {
            (Some(task), _) => format!("queued: job {}_{} {}", task.job, task.index, task.state),
            (None, Some(_)) => "running (its lock is held)".to_string(),
            (None, None) => run.status_word().to_string(),
        };
        say(format_args!("{}  {:<13}  {}", run.short(), word, run.point.label()));
        let completed = matches!(run.state, RunState::Completed(_));
        if !completed && held.is_none() && !queued.contains_key(&run.hash) {
            todo.push(run);
        }
    }
    todo
}

/// Keeps the script beside the sweep's task logs: `submit-<time>.sbatch`.
fn write_script(sweep: &str, runs: &RunsDir, text: &str) -> anyhow::Result<PathBuf> {
    let dir = slurm_dir(runs, sweep);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let script = dir.join(format!("submit-{stamp}.sbatch"));
    write_atomic(&script, text.as_bytes())?;
    Ok(script)
}

/// Polls squeue until no task of the job is listed (squeue, not `sbatch --wait`, which
/// checks rarely). Ctrl-C stops the waiting, not the job.
fn wait_for(job: &str, sweep: &str) -> anyhow::Result<()> {
    crate::interrupt::install();
    let mut last = String::new();
    loop {
        let tasks: Vec<_> =
            queue::tasks(&script::job_name(sweep))?.into_iter().filter(|t| t.job == job).collect();
        if tasks.is_empty() {
            return Ok(());
        }
        let running = tasks.iter().filter(|t| t.state == "RUNNING").count();
        let line = format!("job {job}: {running} running, {} waiting", tasks.len() - running);
        if line != last {
            tracing::info!("{line}");
            last = line;
        }
        if crate::interrupt::requested() {
            // Said here: the exit code of a stop (130) goes out without the error's text.
            tracing::warn!("stopped waiting; job {job} goes on (`scancel {job}` stops it)");
            anyhow::bail!("stopped waiting; job {job} goes on");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// After the job: says how each submitted run ended, by its directory; true when all
/// completed.
fn check_runs(runs: &RunsDir, submission: &Submission, logs: &Path) -> bool {
    let mut completed = 0;
    for (index, hash) in submission.hashes.iter().enumerate() {
        let short = crate::hashing::short(hash);
        match runs.state(hash) {
            RunState::Completed(_) => completed += 1,
            state => {
                let log = logs.join(format!("{}_{index}.log", submission.job));
                say(format_args!(
                    "{short}  task {index} did not complete: the run is {}; log: {}",
                    state.describe(),
                    log.display()
                ));
            }
        }
    }
    let n = submission.hashes.len();
    say(format_args!("job {}: {completed} of {n} run(s) completed", submission.job));
    completed == n
}

/// Every submission recorded for a sweep, oldest first.
pub fn submissions(runs: &RunsDir, sweep: &str) -> Vec<Submission> {
    let Ok(entries) = std::fs::read_dir(slurm_dir(runs, sweep)) else { return Vec::new() };
    let mut found: Vec<Submission> = Vec::new();
    let files = entries.filter_map(|e| e.ok().map(|e| e.path()));
    for path in files.filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let read = std::fs::read(&path).map_err(|e| e.to_string());
        match read.and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string())) {
            Ok(submission) => found.push(submission),
            Err(e) => tracing::warn!(
                "skipping unreadable submission record {} ({e}): its queued tasks are not \
                 recognised",
                path.display()
            ),
        }
    }
    found.sort_by_key(|s: &Submission| s.job.parse::<u64>().unwrap_or(0));
    found
}

/// Runs of a sweep that squeue lists as pending or running, from any of its submissions, so
/// they are not submitted twice. Empty where squeue is not there or fails (with a warning).
pub fn queued(runs: &RunsDir, sweep: &str) -> HashMap<String, queue::QueuedTask> {
    let mut found = HashMap::new();
    if !queue::available() {
        return found;
    }
    let tasks = match queue::tasks(&script::job_name(sweep)) {
        Ok(tasks) => tasks,
        Err(e) => {
            tracing::warn!("cannot ask Slurm what is queued: {e:#}");
            return found;
        }
    };
    let submissions = submissions(runs, sweep);
    for task in tasks {
        let submission = submissions.iter().find(|s| s.job == task.job);
        if let Some(hash) = submission.and_then(|s| s.hashes.get(task.index)) {
            found.insert(hash.clone(), task);
        }
    }
    found
}
