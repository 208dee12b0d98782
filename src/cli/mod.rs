//! Command-line interface: parses arguments and hands each command to the library.

mod launch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::backend::Backend;
use crate::bench::{self, BenchOptions};
use crate::eval::{self, rescore::Rescore};
use crate::report::{self, ReportInput};
use crate::store::RunsDir;
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
    /// Train the one config of a file (a plain config, or a sweep without axes), or one run
    /// of a recorded sweep by its hash (what `--jobs` workers and Slurm array tasks do).
    Run(RunArgs),
    /// Show how far a sweep's configs got, from their run directories (and from Slurm's
    /// queue when `squeue` is there).
    Status(StatusArgs),
    /// Time training steps on synthetic data (compare with bench/pytorch_reference.py).
    Bench(BenchArgs),
    /// Draw comparison charts and sample sheets for a sweep's runs and write report.md.
    Report(ReportArgs),
    /// Score a finished run's final generator against the real images (adds a row to its
    /// eval.parquet).
    Eval(EvalArgs),
    /// Train a stored run's config again in a scratch directory and compare metrics and
    /// final weights with the stored run (exit 0 only when bit-exact).
    Reproduce(ReproduceArgs),
    /// Draw a grid of images from a run's generator (final checkpoint, else the latest
    /// resume checkpoint).
    Sample(SampleArgs),
    /// List run directories: status, swept values, steps, time, final metrics.
    ///
    /// Status is completed, failed, running (its lock is held), interrupted or crashed
    /// (unfinished, nobody trains it: the next sweep resumes it), or damaged (with the
    /// reason). d_loss, g_loss, d_acc_real and d_acc_fake are means over the last 10 % of
    /// steps, as in reports; frechet is the latest row of eval.parquet.
    Ls(LsArgs),
    /// Show one run: its config, manifest, final metrics, evaluations, files and lock.
    Show(ShowArgs),
    /// Remove what interrupted processes left behind; never a completed run.
    ///
    /// Removes old `.tmp-*` run directories, `.scratch/` folders of dead `dcgan reproduce`
    /// processes, `*.partial` files and half-written checkpoints of runs nobody trains, resume
    /// checkpoints of completed runs, and free lock files of runs that no longer exist. A run
    /// whose lock is held is not touched; in `.cache/` only half-written files of dead
    /// processes go.
    Gc(GcArgs),
    /// Look at a dataset as training sees it.
    #[command(subcommand)]
    Data(DataCommand),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Count, shape, fingerprint, classes and unreadable files of a dataset, and a PNG grid
    /// of its images. PATH_OR_CONFIG is a config or sweep (YAML), an image folder, a
    /// Fashion-MNIST folder, or an IDX images file (its labels file is found by name).
    Inspect(DataInspectArgs),
}

#[derive(Debug, Args)]
pub struct DataInspectArgs {
    pub path_or_config: PathBuf,
    /// Where run directories are: decoded images are cached (and found) in its `.cache/`.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Side the images are brought to, for a PATH (a config says its own): 32, 64 or 128.
    #[arg(long, default_value_t = 64)]
    pub image_size: usize,
    /// Channels, for a PATH: 1 (grey) or 3 (RGB).
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// The grid's PNG (default: reports/data/<fingerprint>-<side>px-<c>ch.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Images in the grid, spread evenly over the dataset (at most 4096).
    #[arg(short, long, default_value_t = 64)]
    pub n: usize,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Where run directories are.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Only the runs of this sweep (its `name`).
    #[arg(long)]
    pub sweep: Option<String>,
    /// Only runs where KEY equals VALUE; KEY is a column or a dotted config key
    /// (balance.strategy=skip, train.seed=1). Numbers compare as numbers. Repeat to AND.
    #[arg(long = "where", value_name = "KEY=VALUE")]
    pub conditions: Vec<String>,
    /// Order by a column or config key (numbers numerically); `-KEY` for descending.
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Descending order for --sort.
    #[arg(long, requires = "sort")]
    pub desc: bool,
    /// table for reading; json or csv for scripts (time in seconds, numbers in full).
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::inspect::ls::Format,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's hash, or a unique prefix of it.
    pub hash: String,
    /// Where run directories are.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Where run directories are.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// List what would be removed, with sizes; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove unfinished (interrupted or crashed, resumable) runs nobody trains now.
    #[arg(long)]
    pub unfinished: bool,
    /// Also remove earlier failed or damaged attempts kept in <DIR>/.attempts/.
    #[arg(long)]
    pub attempts: bool,
}

#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// The run's hash, or a unique prefix of it.
    pub hash: String,
    /// Where run directories are; the scratch run goes under <DIR>/.scratch/.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Train on this backend instead of the run's (flex, tch-cpu, tch-cuda[:N]); then the
    /// largest differences are reported, as different backends do not match bit for bit.
    #[arg(long)]
    pub backend: Option<String>,
    /// The folder the run's dataset moved to (the files must be the same): its Fashion-MNIST
    /// or image folder, or the folder now holding its IDX files.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Keep the scratch run directory after comparing.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The run's hash, or a unique prefix of it.
    pub hash: String,
    /// Where run directories are.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Images in the grid.
    #[arg(short, long, default_value_t = 64)]
    pub n: usize,
    /// Seed of the z vectors (ChaCha8, N(0, 1)).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The PNG to write (default: sample-<run>-seed<S>.png in the current folder).
    #[arg(short, long, value_name = "FILE.png")]
    pub output: Option<PathBuf>,
    /// Backend to generate on (default: the run's).
    #[arg(long)]
    pub backend: Option<String>,
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
    /// Also time the step on real batches of this dataset (a config, a folder or an IDX
    /// file, as for `data inspect`), through the prefetch thread training uses, and report
    /// how long steps wait for data.
    #[arg(long, value_name = "PATH_OR_CONFIG")]
    pub data: Option<PathBuf>,
    /// Image side for the step (and for a PATH given to --data): 32, 64 or 128.
    #[arg(long, default_value_t = 64)]
    pub image_size: usize,
    /// Image channels, likewise: 1 or 3.
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Where decoded --data images are cached (its `.cache/`).
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep file (YAML).
    pub file: PathBuf,
    #[command(flatten)]
    pub common: Common,
    /// Print the configs and their status, train nothing; with `--executor slurm`, also
    /// print the sbatch script that would be submitted.
    #[arg(long)]
    pub dry_run: bool,
    /// Train this many configs at once, each in a process of its own (per device with
    /// --devices). CPU threads are shared out between them unless --threads says otherwise.
    #[arg(short, long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
    /// CUDA GPUs to spread the runs over, e.g. `0,1`: --jobs runs on each. Configs must
    /// train on `tch-cuda`; each run sees only its GPU.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub devices: Vec<usize>,
    /// Where the configs train: here (`local`), or as a Slurm job array (`slurm`).
    #[arg(long, value_enum, default_value = "local")]
    pub executor: Executor,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Executor {
    Local,
    Slurm,
}

/// Options of `--executor slurm`.
#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// Slurm partition (sbatch --partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each array task (sbatch --time), e.g. 2:00:00. A task stopped by the
    /// limit checkpoints; submitting again resumes it.
    #[arg(long)]
    pub time: Option<String>,
    /// GPUs for each array task (sbatch --gpus-per-task).
    #[arg(long, value_name = "G")]
    pub gpus_per_task: Option<u32>,
    /// At most K array tasks running at once (sbatch --array=...%K).
    #[arg(long, value_name = "K")]
    pub array_parallelism: Option<usize>,
    /// Any other sbatch option, passed as written (repeat for several): --sbatch-arg=--mem=8G
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Wait until every task has ended, then check the run directories; exit 1 when any
    /// config did not complete.
    #[arg(long)]
    pub wait: bool,
}

impl SlurmArgs {
    /// The first Slurm option given, if any: they mean nothing to a local sweep.
    fn given(&self) -> Option<&'static str> {
        let given = [
            ("--partition", self.partition.is_some()),
            ("--time", self.time.is_some()),
            ("--gpus-per-task", self.gpus_per_task.is_some()),
            ("--array-parallelism", self.array_parallelism.is_some()),
            ("--sbatch-arg", !self.sbatch_args.is_empty()),
            ("--wait", self.wait),
        ];
        given.iter().find(|(_, set)| *set).map(|(flag, _)| *flag)
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file (YAML).
    #[arg(required_unless_present = "hash", conflicts_with = "hash")]
    pub file: Option<PathBuf>,
    /// A run of a sweep recorded in --runs-dir by `--jobs` or `--executor slurm`: its hash,
    /// or a unique prefix of it.
    #[arg(long)]
    pub hash: Option<String>,
    #[command(flatten)]
    pub common: Common,
    /// Run as a worker of `sweep --jobs`: progress as `@progress` lines on standard output,
    /// and a checkpoint and stop once the sweep that started it is gone.
    #[arg(long, hide = true)]
    pub worker: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The sweep file (YAML).
    pub file: PathBuf,
    /// Where run directories are.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// The backend the sweep was run with, if `dcgan sweep --backend` overrode the configs'.
    #[arg(long)]
    pub backend: Option<String>,
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
    /// CPU threads each run's kernels use (default: every core, or the cores shared out
    /// between the runs of `--jobs`).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Runs a parsed command; `Ok(false)` means it ran but not every config completed.
pub fn dispatch(cli: Cli) -> anyhow::Result<bool> {
    let log_flags = launch::log_flags(cli.verbose, cli.quiet);
    match cli.command {
        Command::Sweep(args) => launch::sweep_command(&args, log_flags),
        Command::Run(args) => launch::run_command(&args),
        Command::Status(args) => launch::status_command(&args),
        Command::Bench(args) => bench_command(&args),
        Command::Report(args) => report_command(&args),
        Command::Eval(args) => eval_command(&args),
        Command::Reproduce(args) => reproduce_command(&args),
        Command::Sample(args) => sample_command(&args),
        Command::Ls(args) => ls_command(args),
        Command::Show(args) => show_command(&args),
        Command::Gc(args) => gc_command(args),
        Command::Data(DataCommand::Inspect(args)) => data_inspect_command(&args),
    }
}

fn reproduce_command(args: &ReproduceArgs) -> anyhow::Result<bool> {
    let dir = report::runs::resolve_prefix(&args.runs_dir, &args.hash)?;
    let options = crate::reproduce::Options {
        backend: args.backend.clone(),
        data: args.data.clone(),
        keep: args.keep,
    };
    // Ctrl-C stops the re-training after its step; the scratch directory is then removed.
    crate::interrupt::install();
    let outcome = crate::reproduce::reproduce(&dir, &args.runs_dir, &options)
        .with_context(|| format!("cannot reproduce {}", dir.display()))?;
    for line in outcome.lines() {
        say(format_args!("{line}"));
    }
    Ok(outcome.reproduced())
}

fn sample_command(args: &SampleArgs) -> anyhow::Result<bool> {
    let dir = report::runs::resolve_prefix(&args.runs_dir, &args.hash)?;
    let short = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let out = match &args.output {
        Some(out) => out.clone(),
        None => PathBuf::from(format!("sample-{short}-seed{}.png", args.seed)),
    };
    let request =
        crate::sample::Request { n: args.n, seed: args.seed, backend: args.backend.clone() };
    let drawn = crate::sample::draw(&dir, &request, &out)
        .with_context(|| format!("cannot sample {}", dir.display()))?;
    let from = match drawn.source.resume_step {
        None => "its final checkpoint".to_string(),
        Some(step) => {
            format!("its latest resume checkpoint (step {step}; the run has not finished)")
        }
    };
    say(format_args!(
        "sample {short}: {} images of {} px, seed {}, on {}, from {}; wrote {}",
        drawn.n,
        drawn.side,
        args.seed,
        drawn.backend,
        from,
        out.display()
    ));
    Ok(true)
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
    let mut shape = shape_flags(args.image_size, args.channels)?;
    let data = match &args.data {
        Some(target) => {
            crate::interrupt::install();
            let data = bench_data(target, shape, &args.runs_dir)
                .with_context(|| format!("--data {}", target.display()))?;
            shape = data.shape();
            Some(data)
        }
        None => None,
    };
    let mut options = BenchOptions {
        backend,
        width: args.width,
        steps: args.steps,
        warmup: args.warmup,
        phases: args.phases,
        shape,
        data: None,
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
    if let Some(data) = data {
        tracing::info!("timing again on real batches of {}", data.source.location().display());
        options.data = Some(data);
        let real = bench::run(&options)?;
        say(format_args!("{real}"));
        let (made, with_data) = (result.median_ms(), real.median_ms());
        say(format_args!(
            "data: median step {with_data:.1} ms with real batches vs {made:.1} ms with a \
             pre-made tensor ({:+.1} %)",
            100.0 * (with_data - made) / made
        ));
    }
    Ok(true)
}

/// `--image-size` and `--channels`, checked.
fn shape_flags(side: usize, channels: usize) -> anyhow::Result<crate::data::Shape> {
    use crate::config::{CHANNELS, IMAGE_SIZES};
    anyhow::ensure!(IMAGE_SIZES.contains(&side), "--image-size is {side}; use 32, 64 or 128");
    anyhow::ensure!(CHANNELS.contains(&channels), "--channels is {channels}; use 1 or 3");
    Ok(crate::data::Shape { side, channels })
}

/// The first dataset a `--data` target names, decoded (or mapped from the cache), if bench
/// can time the step on it.
fn bench_data(
    target: &Path,
    shape: crate::data::Shape,
    runs_dir: &Path,
) -> anyhow::Result<std::sync::Arc<crate::data::Dataset>> {
    let configs = crate::inspect::data::configs(target, shape)?;
    let cfg = configs.first().context("the file names no dataset")?;
    let mut cache = crate::data::DatasetCache::on_disk(&RunsDir::new(runs_dir).cache_dir());
    let data = cache.dataset(cfg)?;
    bench::check_data(&data)?;
    Ok(data)
}

fn data_inspect_command(args: &DataInspectArgs) -> anyhow::Result<bool> {
    use crate::inspect::data;
    let shape = shape_flags(args.image_size, args.channels)?;
    anyhow::ensure!(args.n >= 1, "-n must be at least 1");
    anyhow::ensure!(
        args.n <= crate::sample::MAX_IMAGES,
        "-n is at most {}",
        crate::sample::MAX_IMAGES
    );
    if let Some(out) = &args.out {
        let png = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
        anyhow::ensure!(png, "--out {} must end in .png: the grid is a PNG", out.display());
    }
    // Ctrl-C stops a long decode between chunks, leaving no partial cache file.
    crate::interrupt::install();
    let request = data::Request {
        target: args.path_or_config.clone(),
        cache_dir: RunsDir::new(&args.runs_dir).cache_dir(),
        shape,
        out: args.out.clone(),
        n: args.n,
    };
    let text = data::inspect(&request)
        .with_context(|| format!("cannot inspect {}", args.path_or_config.display()))?;
    say(format_args!("{}", text.trim_end()));
    Ok(true)
}

fn ls_command(args: LsArgs) -> anyhow::Result<bool> {
    let options = crate::inspect::ls::LsOptions {
        runs_dir: args.runs_dir,
        sweep: args.sweep,
        conditions: args.conditions,
        sort: args.sort,
        descending: args.desc,
        format: args.format,
    };
    say_lines(&crate::inspect::ls::list(&options)?);
    Ok(true)
}

fn show_command(args: &ShowArgs) -> anyhow::Result<bool> {
    say_lines(&crate::inspect::show::show(&args.runs_dir, &args.hash)?);
    Ok(true)
}

/// Exit 1 when something could not be removed.
fn gc_command(args: GcArgs) -> anyhow::Result<bool> {
    let options = crate::inspect::gc::GcOptions {
        runs_dir: args.runs_dir,
        dry_run: args.dry_run,
        unfinished: args.unfinished,
        attempts: args.attempts,
    };
    let outcome = crate::inspect::gc::collect(&options)?;
    say_lines(&crate::inspect::gc::render(&outcome, &options));
    Ok(outcome.failures.is_empty())
}

fn say_lines(text: &str) {
    for line in text.lines() {
        say(format_args!("{line}"));
    }
}

/// Set once standard output has gone away, so that later lines are not attempted.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Prints a line of results. A reader that went away (`dcgan sweep ... | head -1`) is not an
/// error: the lines stop, the work goes on, and the exit code still tells how it went.
pub(crate) fn say(line: std::fmt::Arguments) {
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
