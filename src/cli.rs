//! Command-line interface: parses arguments and hands each command to the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::backend::Backend;
use crate::bench::{self, BenchOptions};
use crate::data::DatasetCache;
use crate::eval::{self, rescore::Rescore};
use crate::report::{self, ReportInput};
use crate::runner::{self, PlannedRun, SweepSummary};
use crate::store::{self, RunsDir};
use crate::sweep;

#[derive(Debug, Parser)]
#[command(
    name = "dcgan",
    version,
    about = "Train DCGANs, sweep balancing strategies, keep every run"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More detail in the logs (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors in the logs.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Expand a sweep file and train every config without a completed run.
    Sweep(SweepArgs),
    /// Train the one config of a file (a plain config, or a sweep without axes).
    Run(RunArgs),
    /// Time training steps on synthetic data (compare with bench/pytorch_reference.py).
    Bench(BenchArgs),
    /// Draw comparison charts and sample sheets for a sweep's runs and write report.md.
    Report(ReportArgs),
    /// Score a finished run's final generator against the real images (adds a row to its
    /// eval.parquet).
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run's hash, or a unique prefix of it.
    pub hash: String,
    /// Where run directories are.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Images compared (default: the run's eval.n).
    #[arg(long)]
    pub n: Option<usize>,
    /// Seed of the real images and the eval z (default: the run's eval.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Backend to score on (default: the run's).
    #[arg(long)]
    pub backend: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The sweep file whose runs to report on.
    #[arg(required_unless_present = "runs")]
    pub file: Option<PathBuf>,
    /// Compare these runs instead (run hashes, or unique prefixes of them).
    #[arg(long, num_args = 1.., conflicts_with = "file", value_name = "HASH")]
    pub runs: Vec<String>,
    /// Where run directories are.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Where the report goes (default: reports/<sweep name>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What the summary chart shows: an evaluation score (frechet, kid, precision, recall,
    /// density, coverage, classes_covered, class_kl; default frechet when runs have been
    /// evaluated) or the final mean of d_loss, g_loss (default otherwise), d_acc_real,
    /// d_acc_fake, lr_d or lr_g.
    #[arg(long)]
    pub metric: Option<String>,
    /// The backend the sweep was run with, if `dcgan sweep --backend` overrode the configs'.
    #[arg(long, conflicts_with = "runs")]
    pub backend: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Backend to time: flex, tch-cpu, tch-cuda[:N].
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Model width (64 is the full model).
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps first (allocations, kernel choice, caches).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// CPU threads for the backend's kernels (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also print the mean time of each phase of the step (waits for the device between
    /// phases, so the step itself gets slower; for finding where time goes).
    #[arg(long)]
    pub phases: bool,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep file (YAML).
    pub file: PathBuf,
    #[command(flatten)]
    pub common: Common,
    /// Print the configs and their status, train nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file (YAML).
    pub file: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Common {
    /// Where run directories go.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Train every config on this backend (flex, tch-cpu, tch-cuda[:N]) instead of the one
    /// each config names (`train.backend`, default flex).
    #[arg(long)]
    pub backend: Option<String>,
}

/// Runs a parsed command; `Ok(false)` means it ran but not every config completed.
pub fn dispatch(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Sweep(args) => sweep_command(&args.file, &args.common, args.dry_run, None),
        Command::Run(args) => sweep_command(&args.file, &args.common, false, Some(1)),
        Command::Bench(args) => bench_command(&args),
        Command::Report(args) => report_command(&args),
        Command::Eval(args) => eval_command(&args),
    }
}

fn eval_command(args: &EvalArgs) -> anyhow::Result<bool> {
    let dir = report::runs::resolve_prefix(&args.runs_dir, &args.hash)?;
    let how = Rescore { n: args.n, seed: args.seed, backend: args.backend.clone() };
    let s = eval::rescore::rescore(&dir, &args.runs_dir, &how)
        .with_context(|| format!("cannot score {}", dir.display()))?;
    say(format_args!(
        "eval {} step={} n={} frechet={:.4} kid={:.4} kid_std={:.4} precision={:.4} \
         recall={:.4} density={:.4} coverage={:.4} classes_covered={} class_kl={:.4} \
         seconds={:.1}",
        dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        s.step,
        s.n,
        s.frechet,
        s.kid,
        s.kid_std,
        s.precision,
        s.recall,
        s.density,
        s.coverage,
        s.classes_covered,
        s.class_kl,
        s.seconds
    ));
    Ok(true)
}

fn report_command(args: &ReportArgs) -> anyhow::Result<bool> {
    let runs_dir = RunsDir::new(&args.runs_dir);
    let input = match &args.file {
        Some(file) => {
            let sweep = sweep::load(file)?;
            let runs = report::runs::from_sweep(&sweep, &runs_dir, args.backend.as_deref())
                .with_context(|| format!("cannot report on sweep {}", file.display()))?;
            ReportInput {
                name: sweep.name.clone(),
                description: sweep.description.clone(),
                sweep_file: Some(file.clone()),
                runs_dir: args.runs_dir.clone(),
                runs,
                metric: args.metric.clone(),
            }
        }
        None => {
            let runs = report::runs::from_hashes(&args.runs, &runs_dir)?;
            ReportInput {
                name: match runs.len() {
                    1 => "comparison of 1 run".to_string(),
                    n => format!("comparison of {n} runs"),
                },
                description: None,
                sweep_file: None,
                runs_dir: args.runs_dir.clone(),
                runs,
                metric: args.metric.clone(),
            }
        }
    };
    let out = match &args.out {
        Some(out) => out.clone(),
        None => default_report_dir(&input)?,
    };
    let counts = report_counts(&input);
    tracing::info!("report {}: {counts}; writing to {}", input.name, out.display());
    let written = report::render(input, &out)?;
    say(format_args!(
        "wrote {} files to {}; open {}",
        written.files.len(),
        out.display(),
        out.join("report.md").display()
    ));
    Ok(true)
}

/// `reports/<sweep name>/`, or `reports/compare-<first run>-<n>/` for `--runs`.
fn default_report_dir(input: &ReportInput) -> anyhow::Result<PathBuf> {
    let name = match &input.sweep_file {
        Some(_) => input.name.clone(),
        None => {
            let first = input.runs.first().map_or("none", |r| r.short.as_str());
            format!("compare-{first}-{}", input.runs.len())
        }
    };
    let plain = Path::new(&name).components().count() == 1
        && Path::new(&name).file_name().is_some_and(|n| n == name.as_str());
    anyhow::ensure!(
        plain,
        "the sweep name `{name}` is not a plain folder name, so it cannot name the report \
         folder under reports/; pass --out"
    );
    Ok(PathBuf::from("reports").join(name))
}

fn report_counts(input: &ReportInput) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for run in &input.runs {
        match counts.iter_mut().find(|(w, _)| *w == run.status.word()) {
            Some((_, n)) => *n += 1,
            None => counts.push((run.status.word(), 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    format!("{} runs ({})", input.runs.len(), parts.join(", "))
}

fn bench_command(args: &BenchArgs) -> anyhow::Result<bool> {
    let backend = Backend::available(&args.backend).context("--backend")?;
    anyhow::ensure!(args.steps > 0, "--steps must be at least 1");
    anyhow::ensure!(args.width > 0, "--width must be at least 1");
    if let Some(threads) = args.threads {
        backend.set_cpu_threads(threads).context("--threads")?;
    }
    let options = BenchOptions {
        backend,
        width: args.width,
        steps: args.steps,
        warmup: args.warmup,
        phases: args.phases,
    };
    tracing::info!(
        "timing {} steps of width {} on {backend} after {} warm-up steps",
        args.steps,
        args.width,
        args.warmup
    );
    let result = bench::run(&options)?;
    for (phase, ms) in &result.phase_ms {
        say(format_args!("phase {phase:<24} {ms:>9.1} ms"));
    }
    say(format_args!("{result}"));
    Ok(true)
}

fn sweep_command(
    file: &Path,
    common: &Common,
    dry_run: bool,
    max_configs: Option<usize>,
) -> anyhow::Result<bool> {
    let mut sweep = sweep::load(file)?;
    if let Some(max) = max_configs {
        anyhow::ensure!(
            sweep.points.len() <= max,
            "{} expands to {} configs; `dcgan run` trains one, use `dcgan sweep` for more",
            file.display(),
            sweep.points.len()
        );
    }
    let runs = RunsDir::new(&common.runs_dir);
    let mut cache = DatasetCache::default();
    let planned = runner::plan(&mut sweep, common.backend.as_deref(), &mut cache, &runs)
        .with_context(|| format!("cannot plan sweep {}", file.display()))?;
    print_plan(&sweep.name, &planned);
    if dry_run {
        return Ok(true);
    }
    runs.prepare().with_context(|| format!("--runs-dir {}", runs.root().display()))?;
    warn_about_leftovers(runs.root());
    let summary = runner::execute(&sweep.name, &planned, &mut cache, &runs);
    print_summary(&sweep.name, &summary, runs.root());
    Ok(summary.all_completed())
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
    say(format_args!(
        "sweep {name}: {} trained, {} cached, {} failed; runs in {}",
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
            "{} unfinished run director{} (interrupted sweeps or failed writes), e.g. {}; \
             they are not resumed and can be deleted once no sweep is running",
            leftovers.len(),
            if leftovers.len() == 1 { "y" } else { "ies" },
            first.display()
        );
    }
}

/// Set once standard output has gone away, so that later lines are not attempted.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Prints a line of results. A reader that went away (`dcgan sweep ... | head -1`) is not an
/// error: the lines stop, the work goes on, and the exit code still tells how it went.
fn say(line: std::fmt::Arguments) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::warn!("cannot write to standard output: {e}");
        }
    }
}
