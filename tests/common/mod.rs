//! Helpers shared by the integration tests: the bundled data, temporary sweep files, and
//! running the real `dcgan` binary.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::prelude::*;

use dcgan_harness::config::RunConfig;
use dcgan_harness::model::{Discriminator, Generator, parameters};
use dcgan_harness::store::manifest::{Manifest, Status};
use dcgan_harness::store::metrics;

/// The Fashion-MNIST test split shipped with the repository.
pub fn bundled_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist")
}

/// Writes `text` as `name` in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A base config that trains in well under a second per step: tiny width, small batches,
/// a slice of the real test split, no evaluation (its classifier takes a minute to train;
/// tests/evaluation.rs covers it).
pub fn tiny_base(steps: u64) -> String {
    format!(
        "  data: {{ split: test, path: {data}, limit: 256 }}\n  \
         model: {{ width: 2, z_dim: 8 }}\n  \
         train: {{ steps: {steps}, batch_size: 16, extra_z: 16 }}\n  \
         logging: {{ sample_every: 4 }}\n  \
         eval: {{ enabled: false }}\n",
        data = bundled_data().display()
    )
}

/// A sweep of tiny configs (as [`tiny_base`], with a checkpoint every 10 steps) on the data in
/// `data`, with the given `axes:` section.
pub fn tiny_sweep(name: &str, steps: u64, data: &str, axes: &str) -> String {
    format!(
        "name: {name}\nbase:\n  \
         data: {{ split: test, path: {data}, limit: 256 }}\n  \
         model: {{ width: 2, z_dim: 8 }}\n  \
         train: {{ steps: {steps}, batch_size: 16, extra_z: 16 }}\n  \
         logging: {{ sample_every: 4 }}\n  \
         eval: {{ enabled: false }}\n  \
         checkpoint: {{ every: 10 }}\n\
         axes:\n{axes}"
    )
}

/// Runs `dcgan` with arguments in `cwd`, capturing everything.
pub fn dcgan(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dcgan"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .env_remove("DCGAN_DATA_DIR")
        .output()
        .expect("the dcgan binary runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The run directories (not temporary or set-aside ones) under a runs dir, sorted.
pub fn run_dirs(runs: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(runs) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    dirs.sort();
    dirs
}

/// The content of a gzipped file.
pub fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let file = std::fs::File::open(path).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut out).unwrap();
    out
}

/// A run directory's manifest.
pub fn manifest(run: &Path) -> Manifest {
    serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap()
}

/// Named parameter tensors of a network.
pub type Weights = Vec<(String, Vec<f32>)>;

/// The final weights of a run (G's, D's), read back from its checkpoint files.
pub fn final_weights(run: &Path) -> (Weights, Weights) {
    let text = std::fs::read_to_string(run.join("config.yaml")).unwrap();
    let cfg: RunConfig = serde_yaml::from_str(&text).unwrap();
    let device = Device::flex();
    let g = Generator::new(&cfg.model, cfg.data.shape(), &device)
        .load_file(run.join("checkpoints/generator.bpk"));
    let d = Discriminator::new(&cfg.model, cfg.data.shape(), &device)
        .load_file(run.join("checkpoints/discriminator.bpk"));
    (parameters(&g), parameters(&d))
}

pub fn sample_files(run: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(run.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(p).unwrap()))
        .collect();
    files.sort();
    files
}

/// Metrics (but wall-clock time), weights and sample grids of two runs are bit-identical.
pub fn assert_identical(reference: &Path, resumed: &Path, what: &str) {
    let m = manifest(resumed);
    assert_eq!(m.status, Status::Completed, "{what}: {m:?}");
    let without_time = |run: &Path| {
        metrics::read(&run.join("metrics.parquet")).unwrap().drop("elapsed_s").unwrap()
    };
    let (a, b) = (without_time(reference), without_time(resumed));
    assert_eq!(a.height(), b.height(), "{what}: row counts");
    for (x, y) in a.columns().iter().zip(b.columns()) {
        let (x, y) = (x.as_materialized_series(), y.as_materialized_series());
        assert!(x.equals_missing(y), "{what}: column {} differs:\n{x}\n{y}", x.name());
    }
    let (ga, da) = final_weights(reference);
    let (gb, db) = final_weights(resumed);
    assert!(ga == gb && da == db, "{what}: final weights differ");
    assert_eq!(sample_files(reference), sample_files(resumed), "{what}: sample grids differ");
    let leftovers = std::fs::read_dir(resumed.join("checkpoints")).unwrap().count();
    assert_eq!(leftovers, 2, "{what}: only the final weights are left in checkpoints/");
}
