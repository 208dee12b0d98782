//! Which run directories a report covers, and what state each is in.
//!
//! A report reads only what is on disk. For a sweep file it matches each config of the
//! expanded sweep with the run directory whose stored `config.yaml` is the same config; that
//! needs no dataset, so figures can be regenerated on a laptop from a copied `runs/`. A config
//! with no directory is listed as missing rather than dropped.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::config::RunConfig;
use crate::hashing;
use crate::store::manifest::{Manifest, Status};
use crate::store::{self, RunState, RunsDir};
use crate::sweep::Sweep;

use super::ReportError;

/// How a run of the report ended, as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    Completed,
    /// With the reason from the manifest.
    Failed(String),
    /// No run directory holds this config.
    Missing,
    /// A directory exists but cannot be trusted; the reason says why.
    Damaged(String),
    /// Still training, interrupted or killed: how far it got. Left out until it completes.
    Unfinished(String),
}

impl RunStatus {
    /// One word for tables.
    pub fn word(&self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Failed(_) => "failed",
            RunStatus::Missing => "missing",
            RunStatus::Damaged(_) => "damaged",
            RunStatus::Unfinished(_) => "unfinished",
        }
    }

    /// Whether the run's metrics can be drawn: completed runs and failed runs that wrote any.
    pub fn has_metrics(&self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed(_))
    }
}

/// One run of a report: a config of the sweep and what was found for it.
#[derive(Debug, Clone)]
pub struct ReportRun {
    /// The run directory's name (16 hex digits), or `-` for a missing run.
    pub short: String,
    /// Sweep that made the run (from the manifest when there is one).
    pub sweep: String,
    /// `(dotted key, value)` of the sweep's axes, seeds included.
    pub swept: Vec<(String, String)>,
    pub status: RunStatus,
    pub dir: Option<PathBuf>,
    /// The resolved config (the sweep's, or the stored one for `--runs`).
    pub config: RunConfig,
    pub manifest: Option<Manifest>,
    /// Other directories that hold the same config and were left out, with their state.
    pub left_out: Vec<String>,
}

impl ReportRun {
    /// The seed of the run, from its config.
    pub fn seed(&self) -> u64 {
        self.config.train.seed
    }

    /// The swept values without the seed: runs that share them are replicates of one config.
    pub fn config_key(&self) -> Vec<(String, String)> {
        self.swept.iter().filter(|(k, _)| k != "train.seed").cloned().collect()
    }

    pub fn metrics_file(&self) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        self.status.has_metrics().then(|| dir.join(store::METRICS_FILE))
    }
}

/// Every config of `sweep` with the run found for it, in the sweep's order.
pub fn from_sweep(
    sweep: &Sweep,
    runs: &RunsDir,
    backend: Option<&str>,
) -> Result<Vec<ReportRun>, ReportError> {
    if let Some(name) = backend {
        Backend::parse_name(name)
            .map_err(|e| ReportError::Unreadable { reason: format!("--backend: {e}") })?;
    }
    let stored = stored_configs(runs.root())?;
    let mut found = Vec::with_capacity(sweep.points.len());
    for point in &sweep.points {
        let mut config = point.config.clone();
        if let Some(name) = backend {
            config.train.backend = name.to_string();
        }
        config.train.backend = canonical_backend(&config.train.backend);
        let text = hashing::canonical_text(&config);
        let dirs = stored.by_config.get(&text).map(Vec::as_slice).unwrap_or_default();
        let mut run = match pick_dir(dirs) {
            Some((dir, left_out)) => ReportRun { left_out, ..read_run(dir, Some(config))? },
            None => unreadable_match(&stored.unreadable, &sweep.name, &point.swept, config),
        };
        // Runs made by another sweep with the same config count as this sweep's.
        run.sweep = sweep.name.clone();
        run.swept = point.swept.clone();
        found.push(run);
    }
    Ok(found)
}

/// A config with no readable run: a directory whose config.yaml cannot be read but whose
/// manifest names this sweep and these values is shown as damaged; otherwise it is missing.
fn unreadable_match(
    unreadable: &[(PathBuf, String)],
    sweep: &str,
    swept: &[(String, String)],
    config: RunConfig,
) -> ReportRun {
    let named_here = |dir: &PathBuf| {
        store::read_manifest(dir).is_ok_and(|m| m.sweep == sweep && m.swept == swept)
    };
    let found = unreadable.iter().find(|(dir, _)| named_here(dir));
    ReportRun {
        short: found.map_or("-".to_string(), |(dir, _)| file_name(dir)),
        sweep: sweep.to_string(),
        swept: swept.to_vec(),
        status: found.map_or(RunStatus::Missing, |(_, why)| RunStatus::Damaged(why.clone())),
        dir: found.map(|(dir, _)| dir.clone()),
        config,
        manifest: found.and_then(|(dir, _)| store::read_manifest(dir).ok()),
        left_out: Vec::new(),
    }
}

fn file_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The runs named by hash prefixes, in the order given.
pub fn from_hashes(prefixes: &[String], runs: &RunsDir) -> Result<Vec<ReportRun>, ReportError> {
    let mut found: Vec<ReportRun> = Vec::with_capacity(prefixes.len());
    for prefix in prefixes {
        let dir = resolve_prefix(runs.root(), prefix)?;
        if found.iter().any(|r| r.dir.as_deref() == Some(dir.as_path())) {
            tracing::warn!("{prefix} names a run already in the report; shown once");
            continue;
        }
        found.push(read_run(&dir, None)?);
    }
    Ok(found)
}

/// The one run directory whose name starts with `prefix`; an unknown or ambiguous prefix is
/// an error listing what there is.
pub fn resolve_prefix(root: &Path, prefix: &str) -> Result<PathBuf, ReportError> {
    let valid = !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_hexdigit());
    if !valid {
        return Err(ReportError::BadHash { prefix: prefix.to_string() });
    }
    let prefix = prefix.to_ascii_lowercase();
    let wanted = &prefix[..prefix.len().min(hashing::SHORT_LEN)];
    let matches: Vec<String> =
        run_dir_names(root)?.into_iter().filter(|name| name.starts_with(wanted)).collect();
    match matches.as_slice() {
        // Digits past the directory's name must match the full hash in its manifest.
        [one] if prefix.len() > hashing::SHORT_LEN => {
            let full = store::read_manifest(&root.join(one)).map(|m| m.hash).unwrap_or_default();
            if full.starts_with(&prefix) {
                Ok(root.join(one))
            } else {
                let candidates = format!("{one} (full hash {full})");
                Err(ReportError::UnknownHash { prefix, root: root.to_path_buf(), candidates })
            }
        }
        [one] => Ok(root.join(one)),
        [] => {
            let names = run_dir_names(root)?;
            let candidates = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            Err(ReportError::UnknownHash { prefix, root: root.to_path_buf(), candidates })
        }
        many => Err(ReportError::AmbiguousHash { prefix, candidates: many.join(", ") }),
    }
}

/// Reads a run directory: its manifest, its stored config and its state.
fn read_run(dir: &Path, expected: Option<RunConfig>) -> Result<ReportRun, ReportError> {
    let short = file_name(dir);
    let stored = read_config(dir);
    let manifest = store::read_manifest(dir);
    let config = match (expected, &stored) {
        (Some(config), _) => config,
        (None, Ok(config)) => config.clone(),
        (None, Err(reason)) => return Err(ReportError::Unreadable { reason: reason.clone() }),
    };
    let status = match &manifest {
        Err(reason) => RunStatus::Damaged(reason.clone()),
        Ok(m) => status_of(dir, m),
    };
    let manifest = manifest.ok();
    Ok(ReportRun {
        short,
        sweep: manifest.as_ref().map_or_else(String::new, |m| m.sweep.clone()),
        swept: manifest.as_ref().map_or_else(Vec::new, |m| m.swept.clone()),
        status,
        dir: Some(dir.to_path_buf()),
        config,
        manifest,
        left_out: Vec::new(),
    })
}

/// The state the run store sees for a directory with this manifest.
fn status_of(dir: &Path, manifest: &Manifest) -> RunStatus {
    let root = dir.parent().unwrap_or(Path::new("."));
    let at_home = RunsDir::new(root).run_dir(&manifest.hash) == dir;
    if !at_home {
        return RunStatus::Damaged(format!("its manifest names another hash, {}", manifest.hash));
    }
    match RunsDir::new(root).state(&manifest.hash) {
        RunState::Completed(_) => RunStatus::Completed,
        RunState::Unfinished(m) => {
            let how =
                if m.status == Status::Interrupted { "interrupted" } else { "last checkpoint" };
            RunStatus::Unfinished(format!(
                "{how} at step {} of {}; the next sweep resumes it",
                m.steps_done, m.steps_planned
            ))
        }
        RunState::Failed(m) => RunStatus::Failed(m.failure.clone().unwrap_or_default()),
        RunState::Damaged(reason) => RunStatus::Damaged(reason),
        RunState::Missing => RunStatus::Missing,
    }
}

/// The run directories under a runs dir, by what their config.yaml says.
struct Stored {
    /// Canonical config text → the directories holding that config.
    by_config: BTreeMap<String, Vec<PathBuf>>,
    /// Directories whose config.yaml cannot be read, with the reason.
    unreadable: Vec<(PathBuf, String)>,
}

fn stored_configs(root: &Path) -> Result<Stored, ReportError> {
    let mut stored = Stored { by_config: BTreeMap::new(), unreadable: Vec::new() };
    for name in run_dir_names(root)? {
        let dir = root.join(&name);
        match read_config(&dir) {
            Ok(config) if edited(&dir, &config) => {
                let reason = "its config.yaml was edited after the run".to_string();
                tracing::warn!(run = %name, "{reason}");
                stored.unreadable.push((dir, reason));
            }
            Ok(config) => {
                stored.by_config.entry(hashing::canonical_text(&config)).or_default().push(dir)
            }
            Err(reason) => {
                tracing::warn!(run = %name, "{reason}");
                stored.unreadable.push((dir, reason));
            }
        }
    }
    Ok(stored)
}

/// Whether a run's stored config no longer hashes to the hash its manifest names. A run
/// without a readable manifest cannot be checked and counts as not edited.
fn edited(dir: &Path, config: &RunConfig) -> bool {
    store::read_manifest(dir)
        .is_ok_and(|m| hashing::scheme_of(config, &m.dataset.fingerprint, &m.hash).is_none())
}

/// Of several directories holding one config (a copy, or runs on different datasets), the
/// most usable (completed before failed before damaged), then the one that finished last.
/// The others come back as notes for the report.
fn pick_dir(dirs: &[PathBuf]) -> Option<(&PathBuf, Vec<String>)> {
    let rank = |d: &PathBuf| {
        let manifest = store::read_manifest(d).ok();
        let status = manifest.as_ref().map_or(RunStatus::Missing, |m| status_of(d, m));
        let usable = match status {
            RunStatus::Completed => 3,
            RunStatus::Failed(_) => 2,
            RunStatus::Damaged(_) | RunStatus::Unfinished(_) => 1,
            RunStatus::Missing => 0,
        };
        let finished = manifest.and_then(|m| m.finished_at).unwrap_or_default();
        (usable, finished, status.word())
    };
    let ranked: Vec<(&PathBuf, (u8, String, &str))> = dirs.iter().map(|d| (d, rank(d))).collect();
    let (chosen, _) = ranked.iter().max_by(|a, b| a.1.0.cmp(&b.1.0).then(a.1.1.cmp(&b.1.1)))?;
    let left_out: Vec<String> = ranked
        .iter()
        .filter(|(d, _)| d != chosen)
        .map(|(d, r)| format!("`{}` ({}) holds the same config; left out", file_name(d), r.2))
        .collect();
    for note in &left_out {
        tracing::warn!("{note} (the report uses {})", chosen.display());
    }
    Some((chosen, left_out))
}

fn read_config(dir: &Path) -> Result<RunConfig, String> {
    let mut config = store::read_config(dir)?;
    config.train.backend = canonical_backend(&config.train.backend);
    Ok(config)
}

/// Backend names as runs store them (`tch-cuda:0` → `tch-cuda`); names this build does not
/// know are kept as written, since reports never train.
fn canonical_backend(name: &str) -> String {
    Backend::parse_name(name).map_or_else(|_| name.to_string(), |b| b.to_string())
}

/// Names of the run directories under `root`, sorted (hidden folders are not runs).
fn run_dir_names(root: &Path) -> Result<Vec<String>, ReportError> {
    let entries = fs::read_dir(root)
        .map_err(|cause| ReportError::RunsDir { path: root.to_path_buf(), cause })?;
    let mut names: Vec<String> = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // `is_dir` follows symbolic links, as the run store does.
        if entry.path().is_dir() {
            names.push(name);
        } else if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            tracing::warn!("{}: a link to nothing usable, not a run", entry.path().display());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_prefixes_resolve_like_git() {
        let tmp = tempfile::tempdir().unwrap();
        for name in ["abc123", "abc456", "def000", ".tmp-abc789"] {
            fs::create_dir(tmp.path().join(name)).unwrap();
        }
        let root = tmp.path();
        assert_eq!(resolve_prefix(root, "ABC1").unwrap(), root.join("abc123"));
        assert_eq!(resolve_prefix(root, "def000ffff").ok(), None, "longer than the name");
        let many = resolve_prefix(root, "abc").unwrap_err().to_string();
        assert!(many.contains("abc123, abc456") && many.contains("more digits"), "{many}");
        let none = resolve_prefix(root, "fff").unwrap_err().to_string();
        assert!(none.contains("abc123, abc456, def000"), "{none}");
        assert!(!none.contains("abc789"), "hidden folders are not runs: {none}");
        // A link to a run directory is a run, as it is for the run store.
        std::os::unix::fs::symlink(root.join("def000"), root.join("0123ab")).unwrap();
        assert_eq!(resolve_prefix(root, "0123").unwrap(), root.join("0123ab"));
        let bad = resolve_prefix(root, "ab/c").unwrap_err().to_string();
        assert!(bad.contains("not a run hash"), "{bad}");
    }
}
