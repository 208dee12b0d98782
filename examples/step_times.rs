//! Seconds per training step, from the `elapsed_s` column of finished runs.
//!
//! `cargo run --example step_times -- runs/<hash>/metrics.parquet [...]` prints, per file, the
//! median, fastest and slowest step after the first few (warm-up), and the whole run's time.
//! Runs must log every step (`logging.every: 1`, the default).

use std::path::PathBuf;

use dcgan_harness::store::metrics;

/// Steps left out at the start: allocation and caches settle over the first few.
const WARM_UP: usize = 3;

fn main() -> anyhow::Result<()> {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    anyhow::ensure!(!files.is_empty(), "usage: step_times METRICS.parquet [...]");
    println!(
        "{:<60} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "file", "steps", "median_s", "min_s", "max_s", "total_s"
    );
    for file in files {
        let frame = metrics::read(&file)?;
        let elapsed: Vec<f64> = frame.column("elapsed_s")?.f64()?.iter().flatten().collect();
        let mut steps: Vec<f64> = elapsed.windows(2).map(|w| w[1] - w[0]).skip(WARM_UP).collect();
        anyhow::ensure!(!steps.is_empty(), "{}: too few steps to time", file.display());
        steps.sort_by(f64::total_cmp);
        let median = steps[steps.len() / 2];
        let total = elapsed.last().copied().unwrap_or_default();
        println!(
            "{:<60} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.1}",
            file.display(),
            elapsed.len(),
            median,
            steps[0],
            steps[steps.len() - 1],
            total
        );
    }
    Ok(())
}
