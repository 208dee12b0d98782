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

/// Writes the rows as Parquet at `path`.
pub fn write(path: &Path, rows: &[MetricsRow]) -> Result<(), StoreError> {
    let parquet = |e: PolarsError| StoreError::Parquet { path: path.to_path_buf(), cause: e };
    let mut frame = to_frame(rows).map_err(parquet)?;
    let file = File::create(path).map_err(|e| StoreError::io(path, e))?;
    ParquetWriter::new(file).finish(&mut frame).map_err(parquet)?;
    Ok(())
}

/// Reads a metrics file back as a table.
pub fn read(path: &Path) -> Result<DataFrame, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| StoreError::Parquet { path: path.to_path_buf(), cause: e })
}
