//! `dcgan eval HASH`: scores a finished run's final generator after the fact (runs trained
//! before evaluation existed, or a larger `n`), adding a row to its `eval.parquet`.

use std::path::Path;

use anyhow::Context;
use burn::module::Module;

use super::{Evaluator, Scores, classifier, table};
use crate::backend::Backend;
use crate::config::RunConfig;
use crate::data::DatasetCache;
use crate::model::Generator;
use crate::store::{self, manifest::Status};

/// What to score a run with; `None` keeps the run's own `eval` settings and backend.
#[derive(Debug, Clone, Default)]
pub struct Rescore {
    pub n: Option<usize>,
    pub seed: Option<u64>,
    pub backend: Option<String>,
}

/// Scores the completed run in `dir` and merges the row into its `eval.parquet`.
pub fn rescore(dir: &Path, runs_root: &Path, how: &Rescore) -> anyhow::Result<Scores> {
    let manifest = store::read_manifest(dir).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        manifest.status == Status::Completed,
        "{} is {}, not completed: there is no final generator to score",
        dir.display(),
        manifest.status
    );
    let cfg = store::read_config(dir).map_err(anyhow::Error::msg)?;
    let backend = Backend::available(how.backend.as_deref().unwrap_or(&cfg.train.backend))
        .context("backend")?;
    let data = DatasetCache::default().dataset(&cfg.data)?;
    anyhow::ensure!(
        data.source.fingerprint == manifest.dataset.fingerprint,
        "the dataset at {} is not the one {} was trained on (fingerprint {} vs {})",
        data.source.location().display(),
        dir.display(),
        &data.source.fingerprint[..16],
        &manifest.dataset.fingerprint[..16.min(manifest.dataset.fingerprint.len())]
    );
    let device = backend.device();
    let training = backend.training_device();
    let (net, _) = classifier::load_or_train(runs_root, &data, &cfg.eval, &device, &training)?;
    let n = how.n.unwrap_or(cfg.eval.n);
    anyhow::ensure!(n >= 10, "--n must be at least 10");
    let evaluator = Evaluator::new(net, &data, n, how.seed.unwrap_or(cfg.eval.seed), &device)?;
    let g = load_generator(dir, &cfg, &device)?;
    let scores = evaluator.score(&g, cfg.model.z_dim, manifest.steps_done)?;
    table::merge(&dir.join(table::EVAL_FILE), std::slice::from_ref(&scores))?;
    note_in_manifest(dir, manifest, &scores)?;
    Ok(scores)
}

/// Adds "scored again" to the manifest's evaluation line, so it no longer says "skipped".
fn note_in_manifest(
    dir: &Path,
    mut manifest: crate::store::manifest::Manifest,
    scores: &Scores,
) -> anyhow::Result<()> {
    let earlier = manifest.evaluation.take().unwrap_or_else(|| "none while training".into());
    let when = crate::store::manifest::now_rfc3339();
    let again = format!("dcgan eval n={} seed={} at {when}", scores.n, scores.seed);
    manifest.evaluation = Some(format!("{earlier}; then {again}"));
    let json = serde_json::to_vec_pretty(&manifest).expect("manifests serialise");
    store::write_atomic(&dir.join(store::MANIFEST_FILE), &json)?;
    Ok(())
}

/// The run's final generator, in inference mode on `device`.
fn load_generator(
    dir: &Path,
    cfg: &RunConfig,
    device: &burn::prelude::Device,
) -> anyhow::Result<Generator> {
    let path = dir.join(store::CHECKPOINTS_DIR).join(store::GENERATOR_FILE);
    anyhow::ensure!(path.is_file(), "{} is missing", path.display());
    let empty = Generator::new(&cfg.model, cfg.data.shape(), device);
    empty.try_load_file(&path).map_err(|e| {
        anyhow::anyhow!("{} is not a readable generator checkpoint: {e}", path.display())
    })
}
