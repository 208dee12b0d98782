//! `eval.parquet`: one row per evaluation of a run (step, n, seed, then one column per
//! metric). A row is identified by its step, n and seed: scoring again with the same three
//! replaces it (the numbers are the same), anything else adds a row.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use super::Scores;
use crate::store::StoreError;

pub const EVAL_FILE: &str = "eval.parquet";

/// Metric columns of `eval.parquet`, after `step` and `n`.
pub const METRICS: [&str; 9] = [
    "frechet",
    "kid",
    "kid_std",
    "precision",
    "recall",
    "density",
    "coverage",
    "classes_covered",
    "class_kl",
];

fn to_frame(rows: &[Scores]) -> PolarsResult<DataFrame> {
    fn col<T>(rows: &[Scores], f: impl Fn(&Scores) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    df!(
        "step" => col(rows, |r| r.step),
        "n" => col(rows, |r| r.n as u64),
        "seed" => col(rows, |r| r.seed),
        "frechet" => col(rows, |r| r.frechet),
        "kid" => col(rows, |r| r.kid),
        "kid_std" => col(rows, |r| r.kid_std),
        "precision" => col(rows, |r| r.precision),
        "recall" => col(rows, |r| r.recall),
        "density" => col(rows, |r| r.density),
        "coverage" => col(rows, |r| r.coverage),
        "classes_covered" => col(rows, |r| r.classes_covered),
        "class_kl" => col(rows, |r| r.class_kl),
        "seconds" => col(rows, |r| r.seconds),
    )
}

/// Writes the rows, sorted by step then n, through a temporary file.
pub fn write(path: &Path, rows: &[Scores]) -> Result<(), StoreError> {
    let parquet = |e: PolarsError| StoreError::Parquet { path: path.to_path_buf(), cause: e };
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| (r.step, r.n, r.seed));
    let mut frame = to_frame(&rows).map_err(parquet)?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut frame).map_err(parquet)?;
    crate::store::write_atomic(path, &bytes)
}

/// Reads the rows back (an absent file has none).
pub fn read(path: &Path) -> Result<Vec<Scores>, StoreError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let parquet = |e: PolarsError| StoreError::Parquet { path: path.to_path_buf(), cause: e };
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let frame = ParquetReader::new(file).finish().map_err(parquet)?;
    let floats = |name: &str| -> PolarsResult<Vec<f64>> {
        let c = frame.column(name)?.cast(&DataType::Float64)?;
        Ok(c.f64()?.to_vec().into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    };
    let read_all = || -> PolarsResult<Vec<Scores>> {
        let cols: Vec<Vec<f64>> = ["step", "n", "seed"]
            .iter()
            .chain(METRICS.iter())
            .chain(["seconds"].iter())
            .map(|c| floats(c))
            .collect::<PolarsResult<_>>()?;
        Ok((0..frame.height())
            .map(|i| Scores {
                step: cols[0][i] as u64,
                n: cols[1][i] as usize,
                seed: cols[2][i] as u64,
                frechet: cols[3][i],
                kid: cols[4][i],
                kid_std: cols[5][i],
                precision: cols[6][i],
                recall: cols[7][i],
                density: cols[8][i],
                coverage: cols[9][i],
                classes_covered: cols[10][i] as u32,
                class_kl: cols[11][i],
                seconds: cols[12][i],
            })
            .collect())
    };
    read_all().map_err(parquet)
}

/// Adds rows to a run's `eval.parquet`, replacing earlier rows of the same step, n and seed.
pub fn merge(path: &Path, new: &[Scores]) -> Result<(), StoreError> {
    let mut rows = read(path)?;
    let same = |a: &Scores, b: &Scores| (a.step, a.n, a.seed) == (b.step, b.n, b.seed);
    rows.retain(|old| !new.iter().any(|r| same(r, old)));
    rows.extend(new.iter().cloned());
    write(path, &rows)
}
