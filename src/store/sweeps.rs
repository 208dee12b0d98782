//! Expanded sweeps kept beside the runs, so that a process given only a run's hash (a Slurm
//! array task, a `--jobs` worker) finds the config to train without the sweep file.
//!
//! `<runs>/.sweeps/<sweep name>/<id>.json` holds every config of one expansion, with its hash
//! and swept values; the id is a hash of the config hashes in order, so the same expansion
//! is one file however often it is submitted, and a changed sweep file adds a file rather
//! than replacing one that queued tasks still need.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{StoreError, write_atomic};
use crate::config::RunConfig;
use crate::hashing;
use crate::sweep::SweepPoint;

pub const SWEEPS_DIR: &str = ".sweeps";

/// One expansion of a sweep file, as written to `.sweeps/<name>/<id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRecord {
    pub name: String,
    /// The sweep file it was expanded from, as given on the command line.
    pub file: String,
    pub written_at: String,
    pub runs: Vec<RecordedRun>,
}

/// A config of a recorded sweep, with `data.path` made absolute so any working folder works.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRun {
    pub hash: String,
    pub swept: Vec<(String, String)>,
    pub config: RunConfig,
}

impl RecordedRun {
    pub fn point(&self) -> SweepPoint {
        SweepPoint { config: self.config.clone(), swept: self.swept.clone() }
    }
}

/// Why a run's config could not be found among the recorded sweeps.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(
        "no recorded sweep in {dir} has a run {hash}: `dcgan sweep --jobs` and \
         `dcgan sweep --executor slurm` record their sweeps there; was --runs-dir the same?"
    )]
    NotFound { dir: PathBuf, hash: String },
    #[error("`{hash}` is not a run hash or the start of one (hexadecimal digits)")]
    NotAHash { hash: String },
    #[error("{hash} is the start of several runs' hashes ({first}, {second}); give more of it")]
    Ambiguous { hash: String, first: String, second: String },
}

/// Writes (or rewrites) the record of a sweep's configs; returns its path.
pub fn record(
    root: &Path,
    name: &str,
    file: &Path,
    runs: &[RecordedRun],
) -> Result<PathBuf, StoreError> {
    let mut digest = Sha256::new();
    for run in runs {
        digest.update(run.hash.as_bytes());
    }
    let id: String = hex(&digest.finalize())[..hashing::SHORT_LEN].to_string();
    let dir = root.join(SWEEPS_DIR).join(name);
    fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let path = dir.join(format!("{id}.json"));
    let record = SweepRecord {
        name: name.to_string(),
        file: file.display().to_string(),
        written_at: super::manifest::now_rfc3339(),
        runs: runs.iter().map(absolute_data_path).collect(),
    };
    let json = serde_json::to_vec_pretty(&record).expect("sweep records serialise");
    write_atomic(&path, &json)?;
    Ok(path)
}

fn absolute_data_path(run: &RecordedRun) -> RecordedRun {
    let mut run = run.clone();
    for path in run.config.data.paths_mut() {
        if let Ok(absolute) = std::path::absolute(&*path) {
            *path = absolute;
        }
    }
    run
}

/// Every readable sweep record under `root`, with its path. Unreadable ones are skipped with
/// a warning: one damaged record must not stop the runs of the others.
pub fn all(root: &Path) -> Vec<(PathBuf, SweepRecord)> {
    let mut found = Vec::new();
    let Ok(sweeps) = fs::read_dir(root.join(SWEEPS_DIR)) else { return found };
    let mut files: Vec<PathBuf> = sweeps
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read_dir(e.path()).ok())
        .flat_map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        let parsed = fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()));
        match parsed {
            Ok(record) => found.push((path, record)),
            Err(e) => tracing::warn!("skipping unreadable sweep record {}: {e}", path.display()),
        }
    }
    found
}

/// The recorded config whose hash is or starts with `hash`, and the sweep it belongs to.
pub fn find(root: &Path, hash: &str) -> Result<(String, RecordedRun), FindError> {
    if hash.is_empty() || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(FindError::NotAHash { hash: hash.to_string() });
    }
    let hash = &hash.to_ascii_lowercase();
    let mut hits: Vec<(String, RecordedRun)> = Vec::new();
    for (_, record) in all(root) {
        for run in record.runs {
            let new = !hits.iter().any(|(_, hit)| hit.hash == run.hash);
            if run.hash.starts_with(hash) && new {
                hits.push((record.name.clone(), run));
            }
        }
    }
    match hits.len() {
        0 => Err(FindError::NotFound { dir: root.join(SWEEPS_DIR), hash: hash.to_string() }),
        1 => Ok(hits.remove(0)),
        _ => Err(FindError::Ambiguous {
            hash: hash.to_string(),
            first: hashing::short(&hits[0].1.hash).to_string(),
            second: hashing::short(&hits[1].1.hash).to_string(),
        }),
    }
}

/// The newest record of a sweep by its name, if any (for `dcgan status` when the sweep can no
/// longer be planned, e.g. its dataset is gone).
pub fn latest(root: &Path, name: &str) -> Option<(PathBuf, SweepRecord)> {
    all(root)
        .into_iter()
        .filter(|(_, r)| r.name == name)
        .max_by(|a, b| a.1.written_at.cmp(&b.1.written_at))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(hash: &str, seed: u64) -> RecordedRun {
        let mut config = RunConfig::default();
        config.train.seed = seed;
        config.data.path = Some(PathBuf::from("relative/data"));
        RecordedRun {
            hash: hash.to_string(),
            swept: vec![("seeds".into(), seed.to_string())],
            config,
        }
    }

    #[test]
    fn a_recorded_run_is_found_by_a_prefix_of_its_hash() {
        let root = tempfile::tempdir().unwrap();
        let runs = [run("aaaa1111", 0), run("aaaa2222", 1), run("bbbb3333", 2)];
        let path = record(root.path(), "demo", Path::new("demo.yaml"), &runs).unwrap();
        assert!(path.starts_with(root.path().join(SWEEPS_DIR).join("demo")));
        let (name, found) = find(root.path(), "bbbb").unwrap();
        assert_eq!((name.as_str(), found.config.train.seed), ("demo", 2));
        let data = found.config.data.path.unwrap();
        assert!(data.is_absolute() && data.ends_with("relative/data"), "{}", data.display());
        let err = find(root.path(), "aaaa").unwrap_err().to_string();
        assert!(err.contains("aaaa1111") && err.contains("aaaa2222"), "{err}");
        let err = find(root.path(), "cccc").unwrap_err().to_string();
        assert!(err.contains("no recorded sweep"), "{err}");
        assert_eq!(find(root.path(), "BBBB").unwrap().1.config.train.seed, 2);
        for bad in ["", "xyz", "../aaaa"] {
            let err = find(root.path(), bad).unwrap_err().to_string();
            assert!(err.contains("is not a run hash"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_damaged_record_does_not_hide_the_others() {
        let root = tempfile::tempdir().unwrap();
        record(root.path(), "good", Path::new("good.yaml"), &[run("cccc", 0)]).unwrap();
        let bad = root.path().join(SWEEPS_DIR).join("bad");
        fs::create_dir_all(&bad).unwrap();
        fs::write(bad.join("0000.json"), "{ not json").unwrap();
        assert_eq!(all(root.path()).len(), 1);
        assert_eq!(find(root.path(), "cccc").unwrap().0, "good");
    }
}
