//! Run directories: `runs/<first 16 hex digits of the hash>/`, written so a crash never
//! leaves one that looks complete.
//!
//! A run is written into `runs/.tmp-<short>-<pid>-<time>/` and renamed into place when it
//! ends, completed or failed. A failed or damaged directory is never overwritten: before a
//! config is trained again, the old directory moves to `runs/.attempts/`.
//!
//! ```text
//! runs/<short>/config.yaml       resolved config
//!              manifest.json     hash, status, times, versions, dataset, host
//!              metrics.parquet   one row per logged step
//!              samples/step_NNNNNN.png
//!              checkpoints/generator.bpk, discriminator.bpk
//! ```

pub mod manifest;
pub mod metrics;
pub mod samples;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::RunConfig;
use crate::hashing;
use manifest::{Manifest, Status};
use metrics::MetricsRow;

pub const CONFIG_FILE: &str = "config.yaml";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const METRICS_FILE: &str = "metrics.parquet";
pub const SAMPLES_DIR: &str = "samples";
pub const CHECKPOINTS_DIR: &str = "checkpoints";
pub const GENERATOR_FILE: &str = "generator.bpk";
pub const DISCRIMINATOR_FILE: &str = "discriminator.bpk";
const ATTEMPTS_DIR: &str = ".attempts";

/// Why a run directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error("{path}: Parquet error: {cause}")]
    Parquet { path: PathBuf, cause: polars::error::PolarsError },
    #[error("{path}: cannot write image: {message}")]
    Image { path: PathBuf, message: String },
    #[error("{path}: cannot save weights: {message}")]
    Checkpoint { path: PathBuf, message: String },
}

impl StoreError {
    pub fn io(path: &Path, cause: io::Error) -> Self {
        StoreError::Io { path: path.to_path_buf(), cause }
    }
}

/// What is on disk for a config.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Missing,
    Completed(Box<Manifest>),
    Failed(Box<Manifest>),
    /// A directory whose manifest is missing or unreadable (the reason says which).
    Damaged(String),
}

/// A folder of run directories.
#[derive(Debug, Clone)]
pub struct RunsDir {
    root: PathBuf,
}

impl RunsDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the folder if needed and checks that runs can be written into it, so a bad
    /// `--runs-dir` is reported once, before any training.
    pub fn prepare(&self) -> Result<(), StoreError> {
        if self.root.exists() && !self.root.is_dir() {
            let not_a_dir =
                io::Error::new(io::ErrorKind::AlreadyExists, "exists and is not a folder");
            return Err(StoreError::io(&self.root, not_a_dir));
        }
        fs::create_dir_all(&self.root).map_err(|e| StoreError::io(&self.root, e))?;
        let probe = self.root.join(format!(".probe-{}", std::process::id()));
        fs::create_dir(&probe).map_err(|e| StoreError::io(&self.root, e))?;
        fs::remove_dir(&probe).map_err(|e| StoreError::io(&probe, e))
    }

    /// The directory a run with this full hash lives in once finished.
    pub fn run_dir(&self, hash: &str) -> PathBuf {
        self.root.join(hashing::short(hash))
    }

    /// Reads the state of a config's run directory.
    pub fn state(&self, hash: &str) -> RunState {
        let dir = self.run_dir(hash);
        if !dir.exists() {
            return RunState::Missing;
        }
        match read_manifest(&dir) {
            Ok(m) if m.hash != hash => {
                RunState::Damaged(format!("its manifest names another hash, {}", m.hash))
            }
            Ok(m) if m.status == Status::Completed => match missing_file(&dir) {
                Some(file) => {
                    RunState::Damaged(format!("it is marked completed but has no usable {file}"))
                }
                None => RunState::Completed(Box::new(m)),
            },
            Ok(m) => RunState::Failed(Box::new(m)),
            Err(reason) => RunState::Damaged(reason),
        }
    }

    /// Starts a run: a fresh temporary directory with its config and a `running` manifest.
    pub fn begin(&self, config: &RunConfig, manifest: Manifest) -> Result<PendingRun, StoreError> {
        let short = hashing::short(&manifest.hash).to_string();
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
        let tmp = self.root.join(format!(".tmp-{short}-{}-{stamp}", std::process::id()));
        for dir in [tmp.join(SAMPLES_DIR), tmp.join(CHECKPOINTS_DIR)] {
            fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        let yaml = serde_yaml::to_string(config).expect("a RunConfig always serialises to YAML");
        write_atomic(&tmp.join(CONFIG_FILE), yaml.as_bytes())?;
        let pending = PendingRun { tmp, target: self.root.join(&short), manifest };
        pending.write_manifest()?;
        Ok(pending)
    }
}

/// A run being written, in its temporary directory.
#[derive(Debug)]
pub struct PendingRun {
    tmp: PathBuf,
    target: PathBuf,
    pub manifest: Manifest,
}

impl PendingRun {
    /// Where the run is being written now.
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    pub fn samples_dir(&self) -> PathBuf {
        self.tmp.join(SAMPLES_DIR)
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.tmp.join(CHECKPOINTS_DIR)
    }

    fn write_manifest(&self) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(&self.manifest).expect("manifests serialise");
        write_atomic(&self.tmp.join(MANIFEST_FILE), &json)
    }

    /// Writes the metrics and the final manifest, then moves the run into place. Any earlier
    /// directory of the same config (failed or damaged) is moved to `.attempts/` first.
    pub fn finish(
        mut self,
        rows: &[MetricsRow],
        duration_s: f64,
        failure: Option<String>,
    ) -> Result<PathBuf, StoreError> {
        metrics::write(&self.tmp.join(METRICS_FILE), rows)?;
        self.manifest.status = if failure.is_some() { Status::Failed } else { Status::Completed };
        self.manifest.failure = failure;
        self.manifest.steps_done = rows.last().map_or(0, |r| r.step);
        self.manifest.finished_at = Some(manifest::now_rfc3339());
        self.manifest.duration_s = Some(duration_s);
        self.write_manifest()?;
        if self.target.exists() {
            set_aside(&self.target)?;
        }
        fs::rename(&self.tmp, &self.target).map_err(|e| StoreError::io(&self.target, e))?;
        Ok(self.target)
    }
}

/// Moves an existing run directory to `<runs>/.attempts/<name>-<time>/`.
fn set_aside(dir: &Path) -> Result<PathBuf, StoreError> {
    let root = dir.parent().unwrap_or(Path::new("."));
    let attempts = root.join(ATTEMPTS_DIR);
    fs::create_dir_all(&attempts).map_err(|e| StoreError::io(&attempts, e))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let dest = attempts.join(format!("{name}-{stamp}"));
    fs::rename(dir, &dest).map_err(|e| StoreError::io(&dest, e))?;
    tracing::info!(from = %dir.display(), to = %dest.display(), "kept the earlier attempt");
    Ok(dest)
}

/// The first file a completed run directory must hold, non-empty, but does not.
fn missing_file(dir: &Path) -> Option<String> {
    let required = [
        CONFIG_FILE.to_string(),
        METRICS_FILE.to_string(),
        format!("{CHECKPOINTS_DIR}/{GENERATOR_FILE}"),
        format!("{CHECKPOINTS_DIR}/{DISCRIMINATOR_FILE}"),
    ];
    let usable = |file: &String| fs::metadata(dir.join(file)).is_ok_and(|m| m.len() > 0);
    if let Some(file) = required.iter().find(|file| !usable(file)) {
        return Some(file.clone());
    }
    (!dir.join(SAMPLES_DIR).is_dir()).then(|| format!("{SAMPLES_DIR}/ folder"))
}

/// Unfinished run directories left by interrupted sweeps (`.tmp-*`).
pub fn leftovers(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp-")))
        .collect();
    found.sort();
    found
}

/// Reads `config.yaml` of a run directory; the error says what is wrong with it.
pub fn read_config(dir: &Path) -> Result<RunConfig, String> {
    let path = dir.join(CONFIG_FILE);
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_yaml::from_str(&text)
        .map_err(|e| format!("{} is not a valid config: {e}", path.display()))
}

/// Reads `manifest.json` of a run directory; the error says what is wrong with it.
pub fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST_FILE);
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a valid manifest: {e}", path.display()))
}

/// Writes a file so that readers see the old or the new content, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("partial");
    fs::write(&tmp, bytes).map_err(|e| StoreError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
}
