//! Run directories: `runs/<first 16 hex digits of the hash>/`, one per config, written so
//! that a crash loses at most the steps since the last checkpoint.
//!
//! A run trains in its own directory while holding its lock (`runs/.locks/<short>.lock`).
//! Its manifest says `running` until it ends `completed` or `failed`, or `interrupted` when
//! Ctrl-C stopped it; an unfinished directory is resumed from its last checkpoint. Every file
//! is written whole or not at all (write, sync, rename). A failed or damaged directory is
//! never overwritten: before its config is trained again it moves to `runs/.attempts/`.
//!
//! ```text
//! runs/<short>/config.yaml       resolved config
//!              manifest.json     hash, status, times, versions, dataset, host, resumes
//!              metrics.parquet   one row per logged step (so far, until it completes)
//!              samples/step_NNNNNN.png
//!              checkpoints/generator.bpk, discriminator.bpk         final weights
//!              checkpoints/resume/step_NNNNNN/                      last resume checkpoint
//! ```

pub mod lock;
pub mod manifest;
pub mod metrics;
pub mod samples;
pub mod sweeps;

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
/// Resume checkpoints, under `checkpoints/`: `step_NNNNNN/` complete, `.step_*` being written.
pub const RESUME_DIR: &str = "resume";
pub const ATTEMPTS_DIR: &str = ".attempts";
pub const CACHE_DIR: &str = ".cache";
/// Scratch directories of `dcgan reproduce`.
pub const SCRATCH_DIR: &str = ".scratch";

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
    /// Running now, interrupted, or killed: its last checkpoint can be resumed. Whether a
    /// process is training it now is the run's lock's to say ([`lock::holder`]).
    Unfinished(Box<Manifest>),
    /// A directory whose manifest is missing or unreadable (the reason says which).
    Damaged(String),
}

impl RunState {
    /// What the state is, in a few words, for logs.
    pub fn describe(&self) -> String {
        match self {
            RunState::Missing => "without a directory (it never started)".to_string(),
            RunState::Completed(_) => "completed".to_string(),
            RunState::Failed(m) => format!("failed: {}", m.failure.as_deref().unwrap_or("?")),
            RunState::Unfinished(m) if m.status == Status::Interrupted => {
                format!("interrupted at step {}", m.steps_done)
            }
            RunState::Unfinished(m) => {
                format!("unfinished (last checkpoint at step {})", m.steps_done)
            }
            RunState::Damaged(reason) => format!("damaged: {reason}"),
        }
    }
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

    /// Shared caches (decoded datasets, evaluation classifiers): `<runs>/.cache`.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join(CACHE_DIR)
    }

    /// The directory a run with this full hash lives in.
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
                None => match config_mismatch(&dir, &m) {
                    Some(reason) => RunState::Damaged(reason),
                    None => RunState::Completed(Box::new(m)),
                },
            },
            Ok(m) if m.status == Status::Failed => RunState::Failed(Box::new(m)),
            Ok(m) => RunState::Unfinished(Box::new(m)),
            Err(reason) => RunState::Damaged(reason),
        }
    }

    /// Opens a config's directory for training, under its lock. An unfinished directory is
    /// kept (to resume from); a failed or damaged one moves to `.attempts/` first and a fresh
    /// one is made with the config and a `running` manifest.
    pub fn open(
        &self,
        config: &RunConfig,
        manifest: Manifest,
        lock: lock::RunLock,
    ) -> Result<ActiveRun, StoreError> {
        let dir = self.run_dir(&manifest.hash);
        let previous = match self.state(&manifest.hash) {
            RunState::Unfinished(m) => Some(m),
            RunState::Missing => None,
            _ => {
                set_aside(&dir)?;
                None
            }
        };
        for sub in [dir.join(SAMPLES_DIR), dir.join(CHECKPOINTS_DIR)] {
            fs::create_dir_all(&sub).map_err(|e| StoreError::io(&sub, e))?;
        }
        if previous.is_none() {
            let yaml =
                serde_yaml::to_string(config).expect("a RunConfig always serialises to YAML");
            write_atomic(&dir.join(CONFIG_FILE), yaml.as_bytes())?;
        }
        let run = ActiveRun { dir, manifest, previous, _lock: lock };
        run.write_manifest()?;
        Ok(run)
    }
}

/// A run being trained in its directory; holds the run's lock until dropped.
#[derive(Debug)]
pub struct ActiveRun {
    dir: PathBuf,
    pub manifest: Manifest,
    /// The manifest of the unfinished attempt this one goes on from, if any.
    pub previous: Option<Box<Manifest>>,
    _lock: lock::RunLock,
}

impl ActiveRun {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn samples_dir(&self) -> PathBuf {
        self.dir.join(SAMPLES_DIR)
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.dir.join(CHECKPOINTS_DIR)
    }

    pub fn write_manifest(&self) -> Result<(), StoreError> {
        write_manifest(&self.dir, &self.manifest)
    }

    /// Records a stop by Ctrl-C or SIGTERM; the last checkpoint holds the work.
    pub fn interrupt(mut self, steps_done: u64, duration_s: f64) -> Result<PathBuf, StoreError> {
        self.manifest.status = Status::Interrupted;
        self.manifest.steps_done = steps_done;
        self.manifest.duration_s = Some(duration_s);
        self.write_manifest()?;
        Ok(self.dir)
    }

    /// Writes the metrics and the final manifest. A completed run's resume checkpoints go:
    /// its final weights are in `checkpoints/`.
    pub fn finish(
        mut self,
        rows: &[MetricsRow],
        duration_s: f64,
        failure: Option<String>,
    ) -> Result<PathBuf, StoreError> {
        metrics::write(&self.dir.join(METRICS_FILE), rows)?;
        self.manifest.status = if failure.is_some() { Status::Failed } else { Status::Completed };
        self.manifest.failure = failure;
        self.manifest.steps_done = rows.last().map_or(0, |r| r.step);
        self.manifest.finished_at = Some(manifest::now_rfc3339());
        self.manifest.duration_s = Some(duration_s);
        self.write_manifest()?;
        if self.manifest.status == Status::Completed {
            let resume = self.checkpoints_dir().join(RESUME_DIR);
            if resume.exists() {
                fs::remove_dir_all(&resume).map_err(|e| StoreError::io(&resume, e))?;
            }
        }
        Ok(self.dir)
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
    for weights in [GENERATOR_FILE, DISCRIMINATOR_FILE] {
        let path = dir.join(CHECKPOINTS_DIR).join(weights);
        if !looks_like_burnpack(&path) {
            return Some(format!("{} (not a burnpack weights file)", path.display()));
        }
    }
    let metrics = dir.join(METRICS_FILE);
    if !looks_like_parquet(&metrics) {
        return Some(format!("{METRICS_FILE}: {} is not a whole Parquet file", metrics.display()));
    }
    (!dir.join(SAMPLES_DIR).is_dir()).then(|| format!("{SAMPLES_DIR}/ folder"))
}

/// Why a completed run's config.yaml cannot be trusted: unreadable, or no longer the config
/// its hash names (edited after the run).
fn config_mismatch(dir: &Path, manifest: &Manifest) -> Option<String> {
    let config = match read_config(dir) {
        Ok(config) => config,
        Err(reason) => return Some(reason),
    };
    let fingerprint = &manifest.dataset.fingerprint;
    match hashing::scheme_of(&config, fingerprint, &manifest.hash) {
        Some(_) => None,
        None => Some(format!(
            "its config.yaml was edited after the run: it hashes to {}, not {}",
            hashing::short(&hashing::run_hash(&config, fingerprint)),
            hashing::short(&manifest.hash)
        )),
    }
}

/// Whether a file starts with burnpack's magic bytes (`NRUB`): catches weights files that
/// were overwritten, though not ones cut short past their header.
fn looks_like_burnpack(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let read = fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    read.is_ok() && &magic == b"NRUB"
}

/// Whether a file starts and ends with Parquet's magic bytes: a cheap check that catches
/// truncated and overwritten files without reading them.
fn looks_like_parquet(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut ends = ([0u8; 4], [0u8; 4]);
    let read = fs::File::open(path).and_then(|mut f| {
        f.read_exact(&mut ends.0)?;
        f.seek(SeekFrom::End(-4))?;
        f.read_exact(&mut ends.1)
    });
    read.is_ok() && &ends.0 == b"PAR1" && &ends.1 == b"PAR1"
}

/// Run directories left by versions that trained in `runs/.tmp-*` and renamed at the end.
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

/// Writes `manifest.json` of a run directory, whole or not at all.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    let json = serde_json::to_vec_pretty(manifest).expect("manifests serialise");
    write_atomic(&dir.join(MANIFEST_FILE), &json)
}

/// Reads `manifest.json` of a run directory; the error says what is wrong with it.
pub fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST_FILE);
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a valid manifest: {e}", path.display()))
}

/// Writes a file so that readers see the old or the new content, never a partial one, even
/// after a crash or a full disk: the bytes go to `<name>.partial`, reach the disk, and then
/// take the name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = partial_path(path);
    if path.extension().is_some_and(|e| e == "parquet") && crate::faults::due("parquet") {
        // A crash test: leave half a file behind, as a kill in the middle of the write would.
        let _ = fs::write(&tmp, &bytes[..bytes.len() / 2]);
        crate::faults::die();
    }
    let written = fs::File::create(&tmp).and_then(|mut file| {
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io(&tmp, e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(path, e)
    })
}

/// `<name>.partial` beside a file: where [`write_atomic`] writes before renaming.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}
