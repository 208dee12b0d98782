//! One run directory read into a row of `dcgan ls`: its state, its swept values and its
//! final numbers.
//!
//! Every file is read independently and any of them may be broken: the first problem found
//! makes the row `damaged` with that reason, and what could be read is still shown, so a
//! damaged run can be told apart from its neighbours.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::eval::table::{self as eval_table, EVAL_FILE};
use crate::store::manifest::{Manifest, Status};
use crate::store::{self, RunState, RunsDir, lock, metrics};

/// Share of the last steps that final values average over, as in reports.
pub const FINAL_SHARE: f64 = crate::report::stats::FINAL_SHARE;

/// Columns of `metrics.parquet` whose final values `ls` shows.
pub const FINAL_COLUMNS: [&str; 4] = ["d_loss", "g_loss", "d_acc_real", "d_acc_fake"];

/// What `ls` knows of one run directory.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// The directory's name (16 hex digits for a run).
    pub hash: String,
    pub dir: PathBuf,
    /// completed, failed, running, interrupted, crashed or damaged.
    pub status: &'static str,
    /// Why a run is damaged or failed, who trains a running one, how to resume a crashed one.
    pub reason: Option<String>,
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// Final values by metrics column ([`FINAL_COLUMNS`]); absent without metrics.
    pub finals: BTreeMap<&'static str, Option<f64>>,
    /// `frechet` of the last row of `eval.parquet`, if the run was evaluated.
    pub frechet: Option<f64>,
    /// The stored config as dotted keys (`train.seed` -> `1`); empty when unreadable.
    pub config: BTreeMap<String, String>,
}

impl RunRow {
    /// Records a problem: the first one found is the reason shown.
    fn damage(&mut self, reason: String) {
        tracing::debug!(run = %self.hash, "damaged: {reason}");
        if self.status != "damaged" {
            self.status = "damaged";
            self.reason = Some(reason);
        }
    }
}

/// Reads a run directory of the runs folder `root`; never fails, flags problems instead.
pub fn read(root: &Path, dir: &Path) -> RunRow {
    let hash = super::file_name(dir);
    let mut row = RunRow {
        hash: hash.clone(),
        dir: dir.to_path_buf(),
        status: "damaged",
        reason: None,
        manifest: None,
        finals: BTreeMap::new(),
        frechet: None,
        config: BTreeMap::new(),
    };
    match store::read_manifest(dir) {
        Ok(m) => {
            (row.status, row.reason) = state(root, &hash, &m);
            row.manifest = Some(m);
        }
        Err(reason) => row.reason = Some(reason),
    }
    match store::read_config(dir) {
        Ok(config) => row.config = dotted(&config),
        Err(reason) => row.damage(reason),
    }
    read_numbers(&mut row);
    row
}

/// Final metrics and the last Fréchet distance; an unreadable file damages the row.
fn read_numbers(row: &mut RunRow) {
    let path = row.dir.join(store::METRICS_FILE);
    if path.exists() {
        match metrics::read(&path).map_err(|e| e.to_string()).and_then(|f| finals(&f)) {
            Ok(finals) => row.finals = finals,
            Err(reason) => row.damage(first_line(&reason)),
        }
    }
    match eval_table::read(&row.dir.join(EVAL_FILE)) {
        Ok(scores) => row.frechet = scores.last().map(|s| s.frechet),
        Err(e) => row.damage(first_line(&e.to_string())),
    }
}

/// The status word of a run with a readable manifest, and its reason.
fn state(root: &Path, hash: &str, m: &Manifest) -> (&'static str, Option<String>) {
    if crate::hashing::short(&m.hash) != hash {
        return ("damaged", Some(format!("its manifest names another run, {}", m.hash)));
    }
    match RunsDir::new(root).state(&m.hash) {
        RunState::Completed(_) => ("completed", None),
        RunState::Failed(m) => ("failed", m.failure.clone()),
        RunState::Damaged(reason) => ("damaged", Some(reason)),
        RunState::Missing => ("damaged", Some("the directory went away while read".into())),
        // The lock, not the manifest, says whether a process trains it now.
        RunState::Unfinished(m) => match lock::holder(root, hash) {
            Some(note) => ("running", Some(format!("lock held by {note}"))),
            None if m.status == Status::Interrupted => {
                ("interrupted", Some("stopped on request; the next sweep resumes it".into()))
            }
            None => ("crashed", Some("no process trains it; the next sweep resumes it".into())),
        },
    }
}

/// Mean of each final column over the steps past `(1 - FINAL_SHARE)` x the last step;
/// nulls (steps without a generator update) are left out of the mean.
pub fn finals(frame: &DataFrame) -> Result<BTreeMap<&'static str, Option<f64>>, String> {
    let steps = floats(frame, "step")?;
    let last = steps.iter().flatten().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let cutoff = last * (1.0 - FINAL_SHARE);
    let mut out = BTreeMap::new();
    for name in FINAL_COLUMNS {
        let values = floats(frame, name)?;
        let kept: Vec<f64> = steps
            .iter()
            .zip(values)
            .filter(|(s, _)| s.is_some_and(|s| s > cutoff))
            .filter_map(|(_, v)| v)
            .collect();
        let mean = (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64);
        out.insert(name, mean);
    }
    Ok(out)
}

/// A column as floats, nulls kept as `None`.
fn floats(frame: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, String> {
    let read = || -> PolarsResult<Vec<Option<f64>>> {
        Ok(frame.column(name)?.cast(&DataType::Float64)?.f64()?.to_vec())
    };
    read().map_err(|e| format!("metrics column `{name}`: {}", first_line(&e.to_string())))
}

/// Polars appends plans and hints to its errors; the first line says what went wrong.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// A config as `section.key -> value` text, values as YAML writes them.
pub fn dotted(config: &crate::config::RunConfig) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(value) = serde_json::to_value(config) {
        flatten("", &value, &mut out);
    }
    out
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    use serde_json::Value;
    let text = match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let key = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&key, inner, out);
            }
            return;
        }
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    };
    out.insert(prefix.to_string(), text);
}
