//! `manifest.json`: what a run is, where and when it ran, and how it ended.

use serde::{Deserialize, Serialize};

/// How far a run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    /// Stopped by Ctrl-C or SIGTERM after writing a checkpoint; the next sweep resumes it.
    Interrupted,
    Completed,
    Failed,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Running => "running",
            Status::Interrupted => "interrupted",
            Status::Completed => "completed",
            Status::Failed => "failed",
        })
    }
}

/// The contents of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Full sha256 of the resolved config and dataset; the directory is named by its start.
    pub hash: String,
    pub status: Status,
    /// Why a failed run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The sweep that asked for this run, and the axis values that made its config.
    pub sweep: String,
    pub swept: Vec<(String, String)>,
    /// RFC 3339 times.
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    pub steps_done: u64,
    pub steps_planned: u64,
    pub harness: Harness,
    pub backend: String,
    pub device: String,
    pub dataset: DatasetInfo,
    pub host: String,
    /// Every time training went on from a checkpoint: when, where, and from which step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumes: Vec<Resume>,
    /// How the run's samples were scored (`eval.*` settings and the classifier), or why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<String>,
}

/// One resumption of an unfinished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    /// RFC 3339 time training went on.
    pub at: String,
    /// The checkpoint's step (0: no checkpoint was written, training started again).
    pub from_step: u64,
    pub host: String,
    /// Commit of the program that went on, which may differ from the one that started.
    pub git_commit: String,
}

/// The program that made the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Harness {
    pub version: String,
    /// Commit the binary was built from, `unknown` outside a git checkout; `-dirty` marks
    /// uncommitted changes.
    pub git_commit: String,
}

/// The data the run trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub split: String,
    pub fingerprint: String,
    /// Images actually used (after `data.limit`).
    pub count: usize,
    pub files: Vec<String>,
}

impl Harness {
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: env!("DCGAN_GIT_COMMIT").to_string(),
        }
    }
}

/// This machine's name, for the manifest.
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Now, in RFC 3339 with seconds, UTC.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
