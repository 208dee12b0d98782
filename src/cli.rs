//! Command-line interface: parses arguments and hands each command to the library.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::data::DatasetCache;
use crate::runner::{self, PlannedRun, SweepSummary};
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
    /// Train the one config of a file (a plain config, or a sweep without axes).
    Run(RunArgs),
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
    /// Train on this backend instead of the configs' own (`flex`).
    #[arg(long)]
    pub backend: Option<String>,
}

/// Runs a parsed command; `Ok(false)` means it ran but not every config completed.
pub fn dispatch(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Sweep(args) => sweep_command(&args.file, &args.common, args.dry_run, None),
        Command::Run(args) => sweep_command(&args.file, &args.common, false, Some(1)),
    }
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
    let summary = runner::execute(&sweep.name, &planned, &mut cache, &runs);
    print_summary(&sweep.name, &summary, runs.root());
    Ok(summary.all_completed())
}

fn print_plan(name: &str, planned: &[PlannedRun]) {
    say(format_args!("sweep {name}: {} configs", planned.len()));
    for run in planned {
        say(format_args!("{}  {:<8}  {}", run.short(), run.status_word(), run.point.label()));
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

/// Prints a line of results. A reader that went away (`dcgan sweep ... | head -1`) is not an
/// error: we stop quietly, as other command-line tools do.
fn say(line: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        tracing::warn!("cannot write to standard output: {e}");
    }
}
