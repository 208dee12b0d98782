//! Evaluation scores of a report's runs (`eval.parquet`), read like their metrics: one lazy
//! scan per file, then per run and per config (mean, min and max over seeds) through polars.
//! A run's score is its last evaluation with its own `eval.n` and `eval.seed` (the ones made
//! while training), so rows added by `dcgan eval --n` do not mix sample sizes in a ranking;
//! a run without such a row uses its last row.

use std::collections::BTreeMap;
use std::path::PathBuf;

use polars::prelude::*;

use super::ReportError;
use super::stats::{by_id, first_line, floats, ids};
use crate::eval::table::EVAL_FILE;

/// Scores a report can show; also names for `--metric`.
pub const EVAL_METRICS: [&str; 8] =
    ["frechet", "kid", "precision", "recall", "density", "coverage", "classes_covered", "class_kl"];

/// One run's evaluations over training (at the n of its last evaluation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalCurve {
    pub steps: Vec<f64>,
    pub frechet: Vec<f64>,
    pub coverage: Vec<f64>,
}

/// What the report takes from the eval files.
#[derive(Debug, Default)]
pub struct EvalNumbers {
    /// `<metric>_final` per run index.
    pub per_run: BTreeMap<u32, BTreeMap<String, f64>>,
    /// `<metric>_final_{mean,min,max}` and `eval_seeds` per config index.
    pub per_config: BTreeMap<u32, BTreeMap<String, f64>>,
    pub curves: BTreeMap<usize, EvalCurve>,
    /// Eval files polars could not read, by run index.
    pub unreadable: BTreeMap<u32, String>,
}

/// A run to read: its index, config index (`u32::MAX` for failed runs, which stay out of the
/// per-config numbers), directory, and the `eval.n` and `eval.seed` it was trained with.
pub struct EvalSource {
    pub run: u32,
    pub config: u32,
    pub dir: PathBuf,
    pub n: u64,
    pub seed: u64,
}

pub fn read(sources: &[EvalSource]) -> Result<EvalNumbers, ReportError> {
    let mut numbers = EvalNumbers::default();
    let mut scans = Vec::new();
    for source in sources {
        let (run, file) = (&source.run, source.dir.join(EVAL_FILE));
        if file.is_dir() {
            numbers.unreadable.insert(*run, format!("{} is a folder", file.display()));
            continue;
        }
        if !file.is_file() {
            continue;
        }
        match scan(&file, source).and_then(|lf| lf.clone().limit(1).collect().map(|_| lf)) {
            Ok(lf) => scans.push(lf),
            Err(e) => {
                let reason = first_line(&e);
                tracing::warn!("{}: unreadable, left out: {reason}", file.display());
                numbers.unreadable.insert(*run, format!("{}: {reason}", file.display()));
            }
        }
    }
    if scans.is_empty() {
        return Ok(numbers);
    }
    let args = UnionArgs { parallel: true, rechunk: true, ..Default::default() };
    let rows = concat(scans, args)?
        .sort(["run", "own", "step", "n"], SortMultipleOptions::default())
        .collect()?;
    let per_run = last_per_run(&rows)?;
    numbers.per_run = by_id(&per_run, "run")?;
    let mut per_config = by_id(&per_config(&per_run)?, "config")?;
    per_config.remove(&u32::MAX);
    numbers.per_config = per_config;
    numbers.curves = curves(&rows)?;
    Ok(numbers)
}

fn scan(path: &std::path::Path, source: &EvalSource) -> PolarsResult<LazyFrame> {
    let path = PlRefPath::new(path.to_string_lossy().as_ref());
    let args = ScanArgsParquet { glob: false, ..Default::default() };
    // 1 for rows made with the run's own eval settings: sorted last, so `last()` picks them.
    let own = col("n")
        .cast(DataType::UInt64)
        .eq(lit(source.n))
        .and(col("seed").cast(DataType::UInt64).eq(lit(source.seed)));
    let mut columns = vec![
        lit(source.run).cast(DataType::UInt32).alias("run"),
        lit(source.config).cast(DataType::UInt32).alias("config"),
        own.cast(DataType::UInt32).alias("own"),
        col("step").cast(DataType::Float64),
        col("n").cast(DataType::Float64),
        col("seed").cast(DataType::Float64),
    ];
    columns.extend(EVAL_METRICS.iter().map(|m| col(*m).cast(DataType::Float64)));
    Ok(LazyFrame::scan_parquet(path, args)?.select(columns))
}

/// The last evaluation of each run (rows are sorted by run, step, n).
fn last_per_run(rows: &DataFrame) -> PolarsResult<DataFrame> {
    let mut aggs = vec![col("step").last().alias("eval_step"), col("n").last().alias("eval_n")];
    aggs.extend(EVAL_METRICS.iter().map(|m| col(*m).last().alias(format!("{m}_final"))));
    rows.clone().lazy().group_by_stable([col("run"), col("config")]).agg(aggs).collect()
}

fn per_config(per_run: &DataFrame) -> PolarsResult<DataFrame> {
    let mut aggs = vec![
        len().alias("eval_seeds"),
        col("eval_n").min().alias("eval_n_min"),
        col("eval_n").max().alias("eval_n_max"),
    ];
    for m in EVAL_METRICS {
        let stat = format!("{m}_final");
        aggs.push(col(&stat).mean().alias(format!("{stat}_mean")));
        aggs.push(col(&stat).min().alias(format!("{stat}_min")));
        aggs.push(col(&stat).max().alias(format!("{stat}_max")));
    }
    let grouped = per_run.clone().lazy().group_by_stable([col("config")]).agg(aggs);
    grouped.sort(["config"], Default::default()).collect()
}

/// Each run's Fréchet distance and coverage over steps, at the n and seed of the evaluation
/// the report uses for it. Rows are sorted by run, then own settings, then step.
fn curves(rows: &DataFrame) -> Result<BTreeMap<usize, EvalCurve>, ReportError> {
    let (run, step) = (ids(rows, "run")?, floats(rows, "step")?);
    let (n, seed) = (floats(rows, "n")?, floats(rows, "seed")?);
    let (frechet, coverage) = (floats(rows, "frechet")?, floats(rows, "coverage")?);
    let mut chosen: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for i in 0..run.len() {
        chosen.insert(run[i], (n[i], seed[i]));
    }
    let mut out: BTreeMap<usize, EvalCurve> = BTreeMap::new();
    for i in (0..run.len()).filter(|&i| chosen.get(&run[i]) == Some(&(n[i], seed[i]))) {
        let curve = out.entry(run[i] as usize).or_default();
        curve.steps.push(step[i]);
        curve.frechet.push(frechet[i]);
        curve.coverage.push(coverage[i]);
    }
    Ok(out)
}
