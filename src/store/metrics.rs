//! Per-step metrics and their Parquet file, `metrics.parquet`.
//!
//! One row per logged step. `g_loss` is null on steps where the generator was not updated:
//! its loss is only computed as part of its update, and inventing a value would mislead.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use super::StoreError;

/// The columns of `metrics.parquet`, in order.
pub const COLUMNS: [&str; 14] = [
    "step",
    "epoch",
    "elapsed_s",
    "d_loss",
    "d_loss_real",
    "d_loss_fake",
    "g_loss",
    "d_acc_real",
    "d_acc_fake",
    "lr_d",
    "lr_g",
    "d_updated",
    "g_updated",
    "zone",
];

/// What one training step measured and decided.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRow {
    /// Steps completed, from 1.
    pub step: u64,
    /// Epoch the step's batch came from, from 0.
    pub epoch: u64,
    /// Seconds since training started.
    pub elapsed_s: f64,
    /// `d_loss_real + d_loss_fake`.
    pub d_loss: f64,
    pub d_loss_real: f64,
    pub d_loss_fake: f64,
    pub g_loss: Option<f64>,
    pub d_acc_real: f64,
    pub d_acc_fake: f64,
    /// Learning rates used for this step's updates.
    pub lr_d: f64,
    pub lr_g: f64,
    pub d_updated: bool,
    pub g_updated: bool,
    /// `below`, `between` or `above`.
    pub zone: &'static str,
}

/// Builds the metrics table from rows.
pub fn to_frame(rows: &[MetricsRow]) -> PolarsResult<DataFrame> {
    fn col<T>(rows: &[MetricsRow], f: impl Fn(&MetricsRow) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    df!(
        "step" => col(rows, |r| r.step),
        "epoch" => col(rows, |r| r.epoch),
        "elapsed_s" => col(rows, |r| r.elapsed_s),
        "d_loss" => col(rows, |r| r.d_loss),
        "d_loss_real" => col(rows, |r| r.d_loss_real),
        "d_loss_fake" => col(rows, |r| r.d_loss_fake),
        "g_loss" => col(rows, |r| r.g_loss),
        "d_acc_real" => col(rows, |r| r.d_acc_real),
        "d_acc_fake" => col(rows, |r| r.d_acc_fake),
        "lr_d" => col(rows, |r| r.lr_d),
        "lr_g" => col(rows, |r| r.lr_g),
        "d_updated" => col(rows, |r| r.d_updated),
        "g_updated" => col(rows, |r| r.g_updated),
        "zone" => col(rows, |r| r.zone),
    )
}

/// Writes the rows as Parquet at `path`, whole or not at all.
pub fn write(path: &Path, rows: &[MetricsRow]) -> Result<(), StoreError> {
    let mut bytes = Vec::new();
    write_to(&mut bytes, rows)
        .map_err(|e| StoreError::Parquet { path: path.to_path_buf(), cause: e })?;
    super::write_atomic(path, &bytes)
}

/// Writes the rows as Parquet into any writer.
pub fn write_to(out: &mut impl std::io::Write, rows: &[MetricsRow]) -> PolarsResult<()> {
    let mut frame = to_frame(rows)?;
    ParquetWriter::new(out).finish(&mut frame)?;
    Ok(())
}

/// Reads a metrics file back as rows (how a resumed run gets the rows it had).
pub fn read_rows(path: &Path) -> Result<Vec<MetricsRow>, StoreError> {
    let frame = read(path)?;
    rows_of(&frame).map_err(|e| StoreError::Parquet { path: path.to_path_buf(), cause: e })
}

fn rows_of(frame: &DataFrame) -> PolarsResult<Vec<MetricsRow>> {
    let u64s =
        |name: &str| -> PolarsResult<Vec<Option<u64>>> { Ok(frame.column(name)?.u64()?.to_vec()) };
    let f64s =
        |name: &str| -> PolarsResult<Vec<Option<f64>>> { Ok(frame.column(name)?.f64()?.to_vec()) };
    let bools = |name: &str| -> PolarsResult<Vec<Option<bool>>> {
        Ok(frame.column(name)?.bool()?.iter().collect())
    };
    let (step, epoch) = (u64s("step")?, u64s("epoch")?);
    let [elapsed, d_loss, real, fake, g_loss, acc_real, acc_fake, lr_d, lr_g] =
        ["elapsed_s", "d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_acc_real"]
            .into_iter()
            .chain(["d_acc_fake", "lr_d", "lr_g"])
            .map(f64s)
            .collect::<PolarsResult<Vec<_>>>()?
            .try_into()
            .expect("nine columns asked for");
    let (d_updated, g_updated) = (bools("d_updated")?, bools("g_updated")?);
    let zones: Vec<Option<&str>> = frame.column("zone")?.str()?.iter().collect();
    let missing = || PolarsError::ComputeError("a metrics value is null".into());
    (0..frame.height())
        .map(|i| {
            let zone = match zones[i] {
                Some("below") => "below",
                Some("between") => "between",
                Some("above") => "above",
                other => polars_bail!(ComputeError: "unknown zone {other:?}"),
            };
            Ok(MetricsRow {
                step: step[i].ok_or_else(missing)?,
                epoch: epoch[i].ok_or_else(missing)?,
                elapsed_s: elapsed[i].ok_or_else(missing)?,
                d_loss: d_loss[i].ok_or_else(missing)?,
                d_loss_real: real[i].ok_or_else(missing)?,
                d_loss_fake: fake[i].ok_or_else(missing)?,
                g_loss: g_loss[i],
                d_acc_real: acc_real[i].ok_or_else(missing)?,
                d_acc_fake: acc_fake[i].ok_or_else(missing)?,
                lr_d: lr_d[i].ok_or_else(missing)?,
                lr_g: lr_g[i].ok_or_else(missing)?,
                d_updated: d_updated[i].ok_or_else(missing)?,
                g_updated: g_updated[i].ok_or_else(missing)?,
                zone,
            })
        })
        .collect()
}

/// Reads a metrics file back as a table.
pub fn read(path: &Path) -> Result<DataFrame, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| StoreError::Parquet { path: path.to_path_buf(), cause: e })
}
