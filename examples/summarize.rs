//! A one-line summary per finished run, read from its `metrics.parquet` alone.
//!
//! `cargo run --example summarize -- runs/*/metrics.parquet` prints, per file: steps, the
//! median / fastest / slowest seconds per step after a short warm-up, the total time, the share
//! of steps in each zone, how many D and G updates were skipped, and D's mean accuracies.
//! Step times need every step logged (`logging.every: 1`, the default).

use std::path::{Path, PathBuf};

use anyhow::Context;

use dcgan_harness::store::metrics;

/// Steps left out of the timing at the start, when the run is longer: allocations and caches
/// settle over these.
const WARM_UP: usize = 3;

fn main() -> anyhow::Result<()> {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    anyhow::ensure!(!files.is_empty(), "usage: summarize METRICS.parquet [...]");
    println!(
        "{:<18} {:>5} {:>8} {:>6} {:>6} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "run",
        "steps",
        "median_s",
        "min_s",
        "max_s",
        "total_s",
        "below",
        "betw",
        "above",
        "skip_d",
        "skip_g",
        "acc_r",
        "acc_f"
    );
    for file in files {
        summarize(&file).with_context(|| format!("cannot summarise {}", file.display()))?;
    }
    Ok(())
}

fn summarize(file: &Path) -> anyhow::Result<()> {
    let frame = metrics::read(file)?;
    let floats = |name: &str| -> anyhow::Result<Vec<f64>> {
        Ok(frame.column(name)?.f64()?.iter().flatten().collect())
    };
    let elapsed = floats("elapsed_s")?;
    let mut steps: Vec<f64> = elapsed.windows(2).map(|w| w[1] - w[0]).collect();
    if steps.len() > WARM_UP {
        steps.drain(..WARM_UP);
    }
    steps.sort_by(f64::total_cmp);
    let pick = |i: usize| steps.get(i).copied().unwrap_or(f64::NAN);
    let zones: Vec<&str> = frame.column("zone")?.str()?.iter().flatten().collect();
    let share = |z: &str| zones.iter().filter(|&&x| x == z).count() as f64 / zones.len() as f64;
    let skipped = |name: &str| -> anyhow::Result<usize> {
        Ok(frame.column(name)?.bool()?.iter().flatten().filter(|u| !u).count())
    };
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    let run = file.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
    println!(
        "{:<18} {:>5} {:>8.3} {:>6.3} {:>6.3} {:>7.1} {:>6.2} {:>6.2} {:>6.2} {:>6} {:>6} \
         {:>6.2} {:>6.2}",
        run.unwrap_or_default(),
        zones.len(),
        pick(steps.len() / 2),
        pick(0),
        pick(steps.len().saturating_sub(1)),
        elapsed.last().copied().unwrap_or_default(),
        share("below"),
        share("between"),
        share("above"),
        skipped("d_updated")?,
        skipped("g_updated")?,
        mean(floats("d_acc_real")?),
        mean(floats("d_acc_fake")?),
    );
    Ok(())
}
