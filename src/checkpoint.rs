//! Resume checkpoints: everything a run needs to go on from a step exactly as if it had not
//! stopped, so that a resumed run ends bit-identical to an uninterrupted one.
//!
//! ```text
//! checkpoints/resume/step_NNNNNN/   generator.bpk, discriminator.bpk   weights (with ids)
//!                                   optim_g.bpk, optim_d.bpk           Adam's state
//!                                   metrics.parquet, eval.parquet      rows so far
//!                                   state.json                         step, rates, RNG, time
//! ```
//!
//! The rest needs no saving: the data order and the backend's random numbers are functions
//! of `(seed, step)` (see `data::batches` and `train`). A checkpoint is written into
//! `.step_NNNNNN.tmp-<pid>/` and renamed into place, so a `step_*` folder is always whole;
//! older ones are deleted only after the new one is in place.

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::OptimizerRecord;
use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::eval::{Scores, table as eval_table};
use crate::faults;
use crate::model::{Discriminator, Generator};
use crate::step::StepCore;
use crate::store::metrics::{self, MetricsRow};
use crate::store::{self, CHECKPOINTS_DIR, RESUME_DIR, StoreError};

const STATE_FILE: &str = "state.json";
const OPTIM_G_FILE: &str = "optim_g.bpk";
const OPTIM_D_FILE: &str = "optim_d.bpk";

/// The small part of a checkpoint: where training stood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Steps completed.
    pub step: u64,
    /// Seconds of training so far (over every attempt).
    pub elapsed_s: f64,
    /// The balancer's learning rates after this step.
    pub lr_d: f64,
    pub lr_g: f64,
    /// Words the latent-vector generator (ChaCha8) has used, in decimal: a u128.
    pub z_word_pos: String,
}

/// A checkpoint read back: the state, the rows so far, and the networks with their
/// optimizers (still to be put into a [`StepCore`]).
pub struct Restored {
    pub state: State,
    pub rows: Vec<MetricsRow>,
    pub evals: Vec<Scores>,
    pub g: Generator,
    pub d: Discriminator,
    pub opt_g: OptimizerRecord,
    pub opt_d: OptimizerRecord,
}

/// The folder of a run's resume checkpoints.
pub fn resume_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(CHECKPOINTS_DIR).join(RESUME_DIR)
}

/// The newest whole checkpoint of a run: its step and folder.
pub fn latest(run_dir: &Path) -> Option<(u64, PathBuf)> {
    let entries = fs::read_dir(resume_dir(run_dir)).ok()?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| Some((step_of(&p)?, p)))
        .max_by_key(|(step, _)| *step)
}

fn step_of(dir: &Path) -> Option<u64> {
    let name = dir.file_name()?.to_str()?;
    name.strip_prefix("step_")?.parse().ok()
}

/// Writes a checkpoint of `core` after `state.step` steps, then drops older ones.
pub fn save(
    run_dir: &Path,
    core: &StepCore,
    state: &State,
    rows: &[MetricsRow],
    evals: &[Scores],
) -> Result<PathBuf, StoreError> {
    let resume = resume_dir(run_dir);
    let name = format!("step_{:06}", state.step);
    let tmp = resume.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    save_record(&tmp.join(store::GENERATOR_FILE), core.g.valid().into_record())?;
    faults::point("checkpoint");
    save_record(&tmp.join(store::DISCRIMINATOR_FILE), core.d.valid().into_record())?;
    let (opt_g, opt_d) = core.optimizer_records();
    save_optimizer(&tmp.join(OPTIM_G_FILE), opt_g)?;
    save_optimizer(&tmp.join(OPTIM_D_FILE), opt_d)?;
    metrics::write(&tmp.join(store::METRICS_FILE), rows)?;
    if !evals.is_empty() {
        eval_table::write(&tmp.join(eval_table::EVAL_FILE), evals)?;
    }
    let json = serde_json::to_vec_pretty(state).expect("checkpoint state serialises");
    store::write_atomic(&tmp.join(STATE_FILE), &json)?;
    let dest = resume.join(&name);
    fs::rename(&tmp, &dest).map_err(|e| StoreError::io(&dest, e))?;
    remove_older(&resume, &dest);
    Ok(dest)
}

/// Deletes every checkpoint but `keep`, and folders of checkpoints this process left half
/// written. Failures only cost disk space, so they are logged, not raised.
fn remove_older(resume: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(resume) else { return };
    let own_tmp = format!(".tmp-{}", std::process::id());
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let old = step_of(&path).is_some() && path != keep;
        if (old || name.ends_with(&own_tmp))
            && let Err(e) = fs::remove_dir_all(&path)
        {
            tracing::warn!(dir = %path.display(), "cannot remove an old checkpoint: {e}");
        }
    }
}

fn save_record(path: &Path, record: burn::store::ModuleRecord) -> Result<(), StoreError> {
    record
        .save(path)
        .map_err(|e| StoreError::Checkpoint { path: path.to_path_buf(), message: e.to_string() })
}

fn save_optimizer(path: &Path, record: OptimizerRecord) -> Result<(), StoreError> {
    record
        .save(path)
        .map_err(|e| StoreError::Checkpoint { path: path.to_path_buf(), message: e.to_string() })
}

/// Reads the checkpoint in `dir` for a run of `cfg`, its networks on `device`.
pub fn load(dir: &Path, cfg: &RunConfig, device: &Device) -> Result<Restored, StoreError> {
    let bad = |path: &Path, message: String| StoreError::Checkpoint {
        path: path.to_path_buf(),
        message: format!("unreadable resume checkpoint: {message}"),
    };
    let state_path = dir.join(STATE_FILE);
    let text = fs::read_to_string(&state_path).map_err(|e| StoreError::io(&state_path, e))?;
    let state: State = serde_json::from_str(&text).map_err(|e| bad(&state_path, e.to_string()))?;
    state.z_word_pos.parse::<u128>().map_err(|e| bad(&state_path, e.to_string()))?;
    let shape = cfg.data.shape();
    let g_path = dir.join(store::GENERATOR_FILE);
    let g = Generator::new(&cfg.model, shape, device)
        .try_load_file(&g_path)
        .map_err(|e| bad(&g_path, e.to_string()))?;
    let d_path = dir.join(store::DISCRIMINATOR_FILE);
    let d = Discriminator::new(&cfg.model, shape, device)
        .try_load_file(&d_path)
        .map_err(|e| bad(&d_path, e.to_string()))?;
    let load_optimizer = |name: &str| {
        let path = dir.join(name);
        OptimizerRecord::load(&path).map_err(|e| bad(&path, e.to_string()))
    };
    let (opt_g, opt_d) = (load_optimizer(OPTIM_G_FILE)?, load_optimizer(OPTIM_D_FILE)?);
    let rows = metrics::read_rows(&dir.join(store::METRICS_FILE))?;
    let evals = eval_table::read(&dir.join(eval_table::EVAL_FILE))?;
    Ok(Restored { state, rows, evals, g, d, opt_g, opt_d })
}
