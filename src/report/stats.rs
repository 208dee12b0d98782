//! The numbers of a report, computed by polars from the runs' `metrics.parquet` files.
//!
//! All files are scanned lazily as one table (a `run` and a `config` column added to each),
//! then aggregated per run and, over seeds, per config. "Final" values are means over the
//! last 10 % of steps (steps past 0.9 x the run's last step): single steps of a GAN are too
//! noisy to compare.

use std::collections::BTreeMap;
use std::path::PathBuf;

use polars::prelude::*;

use super::ReportError;

/// Share of the last steps that "final" values average over.
pub const FINAL_SHARE: f64 = 0.1;

/// Per-run and per-config numbers that report.md and the summary chart show.
pub const STATS: [&str; 11] = [
    "d_loss_final",
    "g_loss_final",
    "d_acc_real_final",
    "d_acc_fake_final",
    "lr_d_final",
    "lr_g_final",
    "d_skip_rate",
    "g_skip_rate",
    "zone_below",
    "zone_between",
    "zone_above",
];

/// Columns of `metrics.parquet` that have a final value (metric names for `--metric`).
pub const FINAL_COLUMNS: [&str; 6] =
    ["d_loss", "g_loss", "d_acc_real", "d_acc_fake", "lr_d", "lr_g"];

/// One metrics file to read, with the run and config it belongs to.
#[derive(Debug, Clone)]
pub struct Source {
    pub run: u32,
    pub config: u32,
    pub path: PathBuf,
}

/// Everything read from the files: the step table and the aggregates.
pub struct Tables {
    /// Every row of every file, run by run in the order of the sources, with `run` and
    /// `config` columns; `d_skip` and `g_skip` are 1.0 where the update was left out.
    pub steps: DataFrame,
    /// One row per run: `run`, `config`, `rows`, `steps`, then [`STATS`].
    pub per_run: DataFrame,
    /// One row per config: `config`, `seeds`, then `<stat>_mean`, `_min`, `_max`.
    pub per_config: DataFrame,
}

/// Reads and aggregates the files. A file polars cannot read is returned in the second list
/// with the reason, and the report goes on without it.
pub fn compute(sources: &[Source]) -> Result<(Tables, Vec<(u32, String)>), ReportError> {
    let mut good: Vec<&Source> = Vec::new();
    let mut bad = Vec::new();
    for source in sources {
        match scan(source).and_then(|lf| lf.limit(1).collect()) {
            Ok(_) => good.push(source),
            Err(e) => {
                let reason = first_line(&e);
                tracing::warn!("{}: unreadable, left out: {reason}", source.path.display());
                bad.push((source.run, format!("{}: {reason}", source.path.display())));
            }
        }
    }
    let steps = read_all(&good)?;
    let per_run = per_run(&steps)?;
    let per_config = per_config(&per_run)?;
    Ok((Tables { steps, per_run, per_config }, bad))
}

/// A lazy scan of one file with the columns the report uses.
fn scan(source: &Source) -> PolarsResult<LazyFrame> {
    let path = PlRefPath::new(source.path.to_string_lossy().as_ref());
    let skipped = |c: &str| lit(1.0) - col(c).cast(DataType::Float64);
    // Run directories are paths, not patterns: `runs[1]/` must not be read as a glob.
    let args = ScanArgsParquet { glob: false, ..Default::default() };
    Ok(LazyFrame::scan_parquet(path, args)?.select([
        lit(source.run).cast(DataType::UInt32).alias("run"),
        lit(source.config).cast(DataType::UInt32).alias("config"),
        col("step").cast(DataType::Float64),
        col("d_loss"),
        col("g_loss"),
        col("d_acc_real"),
        col("d_acc_fake"),
        col("lr_d"),
        col("lr_g"),
        skipped("d_updated").alias("d_skip"),
        skipped("g_updated").alias("g_skip"),
        col("zone"),
    ]))
}

fn read_all(sources: &[&Source]) -> Result<DataFrame, ReportError> {
    if sources.is_empty() {
        return Ok(DataFrame::empty_with_schema(&empty_schema()));
    }
    let scans: Vec<LazyFrame> = sources.iter().map(|s| scan(s)).collect::<PolarsResult<_>>()?;
    let args = UnionArgs { parallel: true, rechunk: true, ..Default::default() };
    Ok(concat(scans, args)?.collect()?)
}

/// The step table's schema, for a report where no run has metrics.
fn empty_schema() -> Schema {
    let f64s = ["step", "d_loss", "g_loss", "d_acc_real", "d_acc_fake", "lr_d", "lr_g"];
    let mut fields = vec![
        Field::new("run".into(), DataType::UInt32),
        Field::new("config".into(), DataType::UInt32),
    ];
    fields.extend(f64s.iter().map(|c| Field::new((*c).into(), DataType::Float64)));
    fields.push(Field::new("d_skip".into(), DataType::Float64));
    fields.push(Field::new("g_skip".into(), DataType::Float64));
    fields.push(Field::new("zone".into(), DataType::String));
    Schema::from_iter(fields)
}

fn per_run(steps: &DataFrame) -> PolarsResult<DataFrame> {
    let in_final = col("step").gt(col("step").max() * lit(1.0 - FINAL_SHARE));
    let final_mean = |c: &str| col(c).filter(in_final.clone()).mean().alias(format!("{c}_final"));
    let share = |zone: &str| {
        col("zone").eq(lit(zone)).cast(DataType::Float64).mean().alias(format!("zone_{zone}"))
    };
    let mut aggs = vec![len().alias("rows"), col("step").max().alias("steps")];
    aggs.extend(FINAL_COLUMNS.iter().map(|c| final_mean(c)));
    aggs.extend([
        col("d_skip").mean().alias("d_skip_rate"),
        col("g_skip").mean().alias("g_skip_rate"),
        share("below"),
        share("between"),
        share("above"),
    ]);
    steps.clone().lazy().group_by_stable([col("run"), col("config")]).agg(aggs).collect()
}

fn per_config(per_run: &DataFrame) -> PolarsResult<DataFrame> {
    let mut aggs = vec![len().alias("seeds")];
    for stat in STATS {
        aggs.push(col(stat).mean().alias(format!("{stat}_mean")));
        aggs.push(col(stat).min().alias(format!("{stat}_min")));
        aggs.push(col(stat).max().alias(format!("{stat}_max")));
    }
    let by_config = per_run.clone().lazy().group_by_stable([col("config")]).agg(aggs);
    by_config.sort(["config"], Default::default()).collect()
}

/// A float column as values, nulls as NaN.
pub fn floats(frame: &DataFrame, name: &str) -> Result<Vec<f64>, ReportError> {
    let column = frame.column(name)?.cast(&DataType::Float64)?;
    Ok(column.f64()?.to_vec().into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Numbers by run or config index, then by column name.
pub type ById = BTreeMap<u32, BTreeMap<String, f64>>;

/// A table's float columns by the id in column `id`: `{id: {column: value}}`.
pub fn by_id(
    frame: &DataFrame,
    id: &str,
) -> Result<std::collections::BTreeMap<u32, std::collections::BTreeMap<String, f64>>, ReportError> {
    let ids = ids(frame, id)?;
    let mut table = std::collections::BTreeMap::<u32, std::collections::BTreeMap<_, _>>::new();
    for column in frame.get_column_names() {
        for (id, v) in ids.iter().zip(floats(frame, column)?) {
            table.entry(*id).or_default().insert(column.to_string(), v);
        }
    }
    Ok(table)
}

/// The first line of a polars error (it appends query plans and hints after it).
pub fn first_line(e: &PolarsError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// A u32 column as values (nulls as 0, which the report's id columns never hold).
pub fn ids(frame: &DataFrame, name: &str) -> Result<Vec<u32>, ReportError> {
    let column = frame.column(name)?.cast(&DataType::UInt32)?;
    Ok(column.u32()?.to_vec().into_iter().map(|v| v.unwrap_or(0)).collect())
}
