//! `dcgan reproduce HASH`: trains a stored run's config again in a scratch directory and
//! compares the result with the stored run, metrics column by column and the final weights
//! tensor by tensor.
//!
//! Before training, the stored run must still be what its name says: its `config.yaml` must
//! hash (with the manifest's dataset fingerprint) to the manifest's hash, that hash must name
//! the directory, and the dataset found today must have the fingerprint it was trained on.

pub mod compare;

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::module::Module;

use crate::backend::Backend;
use crate::config::RunConfig;
use crate::data::{DataSource, DatasetCache};
use crate::hashing;
use crate::model::{self, Discriminator, Generator};
use crate::runner;
use crate::store::manifest::{Harness, Manifest, Status};
use crate::store::{self, RunsDir};
use crate::sweep::{Sweep, SweepPoint};
use compare::{Diff, MetricsComparison};

/// How to reproduce.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Train on this backend instead of the run's own (its hash then differs, as expected).
    pub backend: Option<String>,
    /// Look for the dataset here instead of the stored `data.path` (not part of the hash).
    pub data: Option<PathBuf>,
    /// Keep the scratch directory.
    pub keep: bool,
}

/// A stored run that passed the checks: its config, manifest and dataset.
#[derive(Debug, Clone)]
pub struct Verified {
    pub dir: PathBuf,
    pub short: String,
    pub config: RunConfig,
    pub manifest: Manifest,
    pub source: DataSource,
}

/// What a reproduction found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub short: String,
    /// The backend the reproduction trained on.
    pub backend: String,
    /// Where the reproduction's run directory is (gone unless `keep`).
    pub reproduced_dir: PathBuf,
    pub scratch: PathBuf,
    pub kept: bool,
    /// Stored and reproduced status (`completed`, `failed`).
    pub status: (Status, Status),
    /// Why each failed, for failed runs.
    pub failures: (Option<String>, Option<String>),
    pub metrics: MetricsComparison,
    pub weights: Vec<Diff>,
    /// Things that explain differences: another commit, another backend, resumes.
    pub notes: Vec<String>,
}

impl Outcome {
    /// Bit-exact in every compared column and tensor, and ended the same way.
    pub fn reproduced(&self) -> bool {
        self.status.0 == self.status.1
            && self.failures.0 == self.failures.1
            && self.metrics.identical()
            && self.weights.iter().all(|d| d.identical)
    }

    /// The summary as lines of text.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        lines.push(format!("reproduce {} on {}", self.short, self.backend));
        for note in &self.notes {
            lines.push(format!("note: {note}"));
        }
        if self.status.0 != self.status.1 {
            lines.push(format!(
                "status differs: the stored run is {}, the reproduction {}",
                self.status.0, self.status.1
            ));
        }
        if self.failures.0 != self.failures.1 {
            let why = |f: &Option<String>| f.clone().unwrap_or_else(|| "-".into());
            lines.push(format!(
                "failure differs: stored `{}`, reproduction `{}`",
                why(&self.failures.0),
                why(&self.failures.1)
            ));
        }
        if let Some(rows) = &self.metrics.rows {
            lines.push(format!("rows differ: {rows}"));
        }
        let (columns, skipped) = (&self.metrics.columns, &self.metrics.not_compared);
        lines.extend(compare::table("column", "step", columns, skipped));
        if self.weights.is_empty() {
            lines.push("tensors: no final weights in either run".to_string());
        } else {
            lines.extend(compare::table("tensor", "index", &self.weights, &[]));
        }
        if let (Some(failure), true) = (&self.failures.0, self.failures.0 == self.failures.1) {
            lines.push(format!("both runs failed the same way: {failure}"));
        }
        let differing: Vec<String> = self
            .metrics
            .columns
            .iter()
            .filter(|d| !d.identical)
            .map(|d| match d.first {
                Some(step) => format!("{} from step {step}", d.name),
                None => d.name.clone(),
            })
            .collect();
        let tensors: Vec<&str> =
            self.weights.iter().filter(|d| !d.identical).map(|d| d.name.as_str()).collect();
        if self.reproduced() {
            let (c, t) = (self.metrics.columns.len(), self.weights.len());
            let tensors = if t == 0 { String::new() } else { format!(" and all {t} tensors") };
            lines.push(format!("reproduced: bit-exact in all {c} compared columns{tensors}"));
        } else {
            let columns = if differing.is_empty() { "none".into() } else { differing.join(", ") };
            let tensors = if tensors.is_empty() { "none".into() } else { tensors.join(", ") };
            lines.push(format!("NOT reproduced: columns that differ: {columns}"));
            lines.push(format!("tensors that differ: {tensors}"));
        }
        if self.kept {
            lines.push(format!("reproduction kept in {}", self.reproduced_dir.display()));
        }
        lines
    }
}

/// Reads a stored run and checks that it is what its name says.
pub fn verify(dir: &Path, data: Option<&Path>) -> anyhow::Result<Verified> {
    let short = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut config = store::read_config(dir).map_err(anyhow::Error::msg)?;
    let manifest = store::read_manifest(dir).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        hashing::short(&manifest.hash) == short,
        "{}: manifest.json names hash {} but the directory is {short}; the run was renamed or \
         its manifest replaced",
        dir.display(),
        hashing::short(&manifest.hash)
    );
    let fingerprint = &manifest.dataset.fingerprint;
    let hash = hashing::run_hash(&config, fingerprint);
    if let Some(hashing::Scheme::Older(version)) =
        hashing::scheme_of(&config, fingerprint, &manifest.hash)
    {
        anyhow::bail!(
            "{}: the run was made under an older hash scheme ({version}), by a dcgan that \
             trained this config differently (before the backend was seeded at every step); \
             this version cannot reproduce it. `dcgan sweep` trains the config afresh under \
             hash {}",
            dir.display(),
            hashing::short(&hash)
        );
    }
    if hash != manifest.hash {
        let (then, now) = (&manifest.harness, Harness::current());
        let older = if then.git_commit != now.git_commit || then.version != now.version {
            format!(
                " (or the run was made by {} {}, which may hash configs differently from this \
                 build, {} {})",
                then.version, then.git_commit, now.version, now.git_commit
            )
        } else {
            String::new()
        };
        anyhow::bail!(
            "{}: config.yaml was edited after the run: it hashes to {}, the directory is \
             {short}{older}; refusing to reproduce a tampered run",
            dir.display(),
            hashing::short(&hash)
        );
    }
    if let Some(data) = data {
        anyhow::ensure!(
            data.is_dir(),
            "--data {}: {}; it must be the folder holding the dataset's files",
            data.display(),
            if data.exists() { "not a folder" } else { "no such folder" }
        );
        move_data(&mut config.data, data);
    }
    for path in config.data.paths_mut() {
        anyhow::ensure!(
            path.exists(),
            "the run's dataset {} does not exist any more; pass --data DIR with the same files \
             (fingerprint {})",
            path.display(),
            hashing::short(fingerprint)
        );
    }
    let source = DatasetCache::default()
        .source(&config.data)
        .with_context(|| format!("cannot find the dataset {} was trained on", dir.display()))?;
    anyhow::ensure!(
        source.fingerprint == *fingerprint,
        "the dataset at {} is not the one {short} was trained on: fingerprint {} vs {}",
        source.location().display(),
        hashing::short(&source.fingerprint),
        hashing::short(fingerprint)
    );
    Ok(Verified { dir: dir.to_path_buf(), short, config, manifest, source })
}

/// Points a data config at files moved to `folder`: the IDX files by their names, else the
/// folder itself.
fn move_data(data: &mut crate::config::DataConfig, folder: &Path) {
    if data.dataset == crate::config::DatasetName::Idx {
        for path in [&mut data.images, &mut data.labels].into_iter().flatten() {
            *path = folder.join(path.file_name().unwrap_or_default());
        }
    } else {
        data.path = Some(folder.to_path_buf());
    }
}

/// Trains the stored run in `dir` again under `<runs_root>/.scratch/` and compares.
pub fn reproduce(dir: &Path, runs_root: &Path, options: &Options) -> anyhow::Result<Outcome> {
    let stored = verify(dir, options.data.as_deref())?;
    let status = stored.manifest.status;
    anyhow::ensure!(
        matches!(status, Status::Completed | Status::Failed),
        "{} is {status}: only a finished (completed or failed) run can be reproduced",
        dir.display()
    );
    let mut config = stored.config.clone();
    config.eval.enabled = false;
    let scratch = runs_root.join(store::SCRATCH_DIR).join(format!(
        "reproduce-{}-{}",
        stored.short,
        std::process::id()
    ));
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("cannot clear {}", scratch.display()))?;
    }
    let scratch_runs = RunsDir::new(&scratch);
    scratch_runs.prepare().with_context(|| format!("cannot make {}", scratch.display()))?;
    let result = train_and_compare(&stored, config, &scratch_runs, options);
    let kept = options.keep && result.is_ok();
    if !kept && let Err(e) = std::fs::remove_dir_all(&scratch) {
        tracing::warn!("cannot remove the scratch directory {}: {e}", scratch.display());
    }
    if !kept {
        // Leave no empty `.scratch/` behind; it stays when others are using it.
        let _ = std::fs::remove_dir(runs_root.join(store::SCRATCH_DIR));
    }
    let mut outcome = result?;
    outcome.kept = kept;
    Ok(outcome)
}

fn train_and_compare(
    stored: &Verified,
    config: RunConfig,
    scratch: &RunsDir,
    options: &Options,
) -> anyhow::Result<Outcome> {
    let name = stored.manifest.sweep.clone();
    let mut sweep = Sweep {
        name: name.clone(),
        description: None,
        source: stored.dir.join(store::CONFIG_FILE),
        points: vec![SweepPoint { config, swept: stored.manifest.swept.clone() }],
    };
    let mut cache = DatasetCache::default();
    let planned = runner::plan(&mut sweep, options.backend.as_deref(), &mut cache, scratch)?;
    let run = planned.first().context("the plan of one config is empty")?;
    let backend = run.point.config.train.backend.clone();
    let mut notes = Vec::new();
    if run.hash != stored.manifest.hash {
        notes.push(format!(
            "trained as {} (the backend is part of the hash: {} here, {} stored)",
            run.short(),
            backend,
            stored.config.train.backend
        ));
    }
    let now = Harness::current();
    let then = &stored.manifest.harness;
    if then.git_commit != now.git_commit || then.version != now.version {
        notes.push(format!(
            "the stored run was made by {} {}, this is {} {}: code changes can explain \
             differences",
            then.version, then.git_commit, now.version, now.git_commit
        ));
    }
    if backend != stored.manifest.backend {
        notes.push(format!(
            "the stored run trained on {}, this reproduction on {backend}: only the same \
             deterministic backend can match bit for bit",
            stored.manifest.backend
        ));
    }
    if !stored.manifest.resumes.is_empty() {
        let steps: Vec<String> =
            stored.manifest.resumes.iter().map(|r| r.from_step.to_string()).collect();
        notes.push(format!(
            "the stored run was resumed from checkpoints (steps {}); the reproduction trains \
             in one go",
            steps.join(", ")
        ));
    }
    tracing::info!(
        run = stored.short,
        scratch = %scratch.root().display(),
        "training {} again on {backend}",
        stored.short
    );
    let summary = runner::execute(&name, &planned, &mut cache, scratch);
    let reproduced_dir = scratch.run_dir(&run.hash);
    anyhow::ensure!(!summary.interrupted, "interrupted before the reproduction finished");
    let again = store::read_manifest(&reproduced_dir).map_err(|reason| {
        anyhow::anyhow!("the reproduction left no readable run ({reason}); summary {summary:?}")
    })?;
    anyhow::ensure!(
        matches!(again.status, Status::Completed | Status::Failed),
        "the reproduction did not finish: it is {}",
        again.status
    );

    let metrics_of = |dir: &Path| store::metrics::read(&dir.join(store::METRICS_FILE));
    let metrics =
        compare::compare_metrics(&metrics_of(&stored.dir)?, &metrics_of(&reproduced_dir)?);
    let weights = compare_weights(&stored.config, &stored.dir, &reproduced_dir)?;
    Ok(Outcome {
        short: stored.short.clone(),
        backend,
        reproduced_dir,
        scratch: scratch.root().to_path_buf(),
        kept: false,
        status: (stored.manifest.status, again.status),
        failures: (stored.manifest.failure.clone(), again.failure.clone()),
        metrics,
        weights,
        notes,
    })
}

/// A model's named float tensors, as [`model::parameters`] returns them.
type Weights = Vec<(String, Vec<f32>)>;

/// Compares the final generator and discriminator of two runs of one config, on the CPU.
fn compare_weights(cfg: &RunConfig, stored: &Path, reproduced: &Path) -> anyhow::Result<Vec<Diff>> {
    let backend = Backend::parse("flex").or_else(|_| Backend::parse("tch-cpu"))?;
    let device = backend.device();
    let shape = cfg.data.shape();
    let mut diffs = Vec::new();
    for (label, file) in [("G", store::GENERATOR_FILE), ("D", store::DISCRIMINATOR_FILE)] {
        let read = |dir: &Path| -> anyhow::Result<Option<Weights>> {
            let path = dir.join(store::CHECKPOINTS_DIR).join(file);
            if !path.is_file() {
                return Ok(None);
            }
            let bad = |e| anyhow::anyhow!("{} is not a readable checkpoint: {e}", path.display());
            Ok(Some(if label == "G" {
                let empty = Generator::new(&cfg.model, shape, &device);
                model::parameters(&empty.try_load_file(&path).map_err(bad)?)
            } else {
                let empty = Discriminator::new(&cfg.model, shape, &device);
                model::parameters(&empty.try_load_file(&path).map_err(bad)?)
            }))
        };
        match (read(stored)?, read(reproduced)?) {
            (Some(a), Some(b)) => diffs.extend(compare::compare_tensors(label, &a, &b)),
            (None, None) => {}
            (a, _) => {
                let which = if a.is_none() { "the stored run" } else { "the reproduction" };
                diffs.push(Diff {
                    name: format!("{label} ({file})"),
                    identical: false,
                    first: None,
                    max_abs: None,
                    max_rel: None,
                    note: Some(format!("missing in {which}")),
                });
            }
        }
    }
    Ok(diffs)
}
