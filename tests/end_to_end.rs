//! The main job through the real binary: a tiny sweep on real Fashion-MNIST images into run
//! directories, read back from disk (Parquet through polars, PNG through image).

mod common;

use std::path::Path;

use polars::prelude::*;

use dcgan_harness::store::{manifest::Manifest, metrics};

use common::{dcgan, run_dirs, stderr, stdout, tiny_base, write_file};

const STEPS: u64 = 6;

fn tiny_sweep(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        "name: tiny\nbase:\n{}axes:\n  grid:\n    balance.strategy: [none, skip, lr-adjust]\n",
        tiny_base(STEPS)
    );
    write_file(dir, "tiny.yaml", &text)
}

fn manifest(run: &Path) -> Manifest {
    serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap()
}

fn column_f64(frame: &DataFrame, name: &str) -> Vec<Option<f64>> {
    frame.column(name).unwrap().f64().unwrap().iter().collect()
}

fn column_bool(frame: &DataFrame, name: &str) -> Vec<bool> {
    frame.column(name).unwrap().bool().unwrap().iter().map(Option::unwrap).collect()
}

#[test]
fn a_sweep_trains_every_config_into_complete_run_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_sweep(tmp.path());
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let printed = stdout(&out);
    assert_eq!(printed.matches("  new  ").count(), 3, "{printed}");
    assert!(printed.contains("balance.strategy=lr-adjust"), "{printed}");

    let runs = run_dirs(&tmp.path().join("runs"));
    assert_eq!(runs.len(), 3);
    for run in &runs {
        check_run_dir(run);
    }
    let strategies: Vec<String> = runs.iter().map(|r| manifest(r).swept[0].1.clone()).collect();
    let skip = &runs[strategies.iter().position(|s| s == "skip").unwrap()];
    check_skip_metrics(&metrics::read(&skip.join("metrics.parquet")).unwrap());
    let adjust = &runs[strategies.iter().position(|s| s == "lr-adjust").unwrap()];
    check_lr_adjust_metrics(&metrics::read(&adjust.join("metrics.parquet")).unwrap());

    // Nothing left behind but run directories, their released (empty) lock files, which
    // stay (deleting a lock file others may have open would let two processes hold it), and
    // the decoded images, whole, for the next process to map.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".locks" && n != ".cache")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let cached: Vec<_> = std::fs::read_dir(tmp.path().join("runs/.cache/decoded"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(cached.len() == 1 && cached[0].ends_with("-64px-1ch.images"), "{cached:?}");
    for lock in std::fs::read_dir(tmp.path().join("runs/.locks")).unwrap() {
        let lock = lock.unwrap().path();
        assert_eq!(std::fs::metadata(&lock).unwrap().len(), 0, "{lock:?} released");
    }
    for run in &runs {
        let resume = run.join("checkpoints/resume");
        assert!(!resume.exists(), "a completed run keeps no resume checkpoint: {resume:?}");
    }

    // A second sweep finds every config done and trains nothing.
    let before = std::fs::metadata(runs[0].join("metrics.parquet")).unwrap().modified().unwrap();
    let again = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert!(again.status.success());
    assert_eq!(stdout(&again).matches("  cached  ").count(), 3, "{}", stdout(&again));
    assert!(stdout(&again).contains("0 trained, 3 cached, 0 failed"));
    let after = std::fs::metadata(runs[0].join("metrics.parquet")).unwrap().modified().unwrap();
    assert_eq!(before, after);
}

fn check_run_dir(run: &Path) {
    let m = manifest(run);
    assert_eq!(m.status.to_string(), "completed");
    assert_eq!(&m.hash[..16], run.file_name().unwrap().to_str().unwrap());
    assert_eq!(m.hash.len(), 64);
    assert_eq!((m.steps_done, m.dataset.count), (STEPS, 256));
    assert_eq!((m.dataset.name.as_str(), m.dataset.split.as_str()), ("fashion-mnist", "test"));
    assert_eq!(m.backend, "flex");
    assert!(chrono::DateTime::parse_from_rfc3339(&m.started_at).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(m.finished_at.as_deref().unwrap()).is_ok());

    let config = std::fs::read_to_string(run.join("config.yaml")).unwrap();
    assert!(config.contains("width: 2"), "{config}");

    let frame = metrics::read(&run.join("metrics.parquet")).unwrap();
    check_common_columns(&frame);

    for step in [4, STEPS] {
        let png = run.join(format!("samples/step_{step:06}.png"));
        let img = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert_eq!((img.width(), img.height()), (530, 530), "8x8 grid of 64 px tiles");
        assert_eq!(img.color(), image::ColorType::L8, "grayscale like the data");
        let gray = img.to_luma8();
        assert_eq!(gray.get_pixel(0, 0), gray.get_pixel(529, 529), "a uniform border frames it");
    }
    for weights in ["generator.bpk", "discriminator.bpk"] {
        let len = std::fs::metadata(run.join("checkpoints").join(weights)).unwrap().len();
        assert!(len > 1000, "{weights} is {len} bytes");
    }
}

fn check_common_columns(frame: &DataFrame) {
    let names: Vec<&str> = frame.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, metrics::COLUMNS);
    assert_eq!(frame.height() as u64, STEPS);
    let steps: Vec<u64> =
        frame.column("step").unwrap().u64().unwrap().into_no_null_iter().collect();
    assert_eq!(steps, (1..=STEPS).collect::<Vec<_>>());
    // 256 images in batches of 16: one epoch is 16 steps.
    let epochs = frame.column("epoch").unwrap().u64().unwrap();
    assert!(epochs.into_no_null_iter().all(|e| e == 0));
    let elapsed = column_f64(frame, "elapsed_s");
    assert!(elapsed.windows(2).all(|w| w[0] <= w[1]), "time only moves forward");

    let (real, fake) = (column_f64(frame, "d_loss_real"), column_f64(frame, "d_loss_fake"));
    for (i, d_loss) in column_f64(frame, "d_loss").into_iter().enumerate() {
        let sum = real[i].unwrap() + fake[i].unwrap();
        assert!((d_loss.unwrap() - sum).abs() < 1e-12, "d_loss is the sum of both halves");
        assert!(real[i].unwrap() > 0.0 && fake[i].unwrap() > 0.0, "BCE is positive");
    }
    for col in ["d_acc_real", "d_acc_fake"] {
        let ok = column_f64(frame, col).into_iter().all(|a| (0.0..=1.0).contains(&a.unwrap()));
        assert!(ok, "{col} is a fraction");
    }
    let zones = frame.column("zone").unwrap().str().unwrap();
    assert!(zones.iter().map(Option::unwrap).all(|z| ["below", "between", "above"].contains(&z)));
    let g_updated = column_bool(frame, "g_updated");
    for (loss, updated) in column_f64(frame, "g_loss").into_iter().zip(g_updated) {
        assert_eq!(loss.is_some(), updated, "G's loss exists exactly when G was updated");
    }
}

fn check_skip_metrics(frame: &DataFrame) {
    let zones: Vec<&str> =
        frame.column("zone").unwrap().str().unwrap().iter().map(Option::unwrap).collect();
    let (d, g) = (column_bool(frame, "d_updated"), column_bool(frame, "g_updated"));
    for (i, zone) in zones.iter().enumerate() {
        assert_eq!(d[i], *zone != "above", "step {}: D skipped only when D is too strong", i + 1);
        assert_eq!(g[i], *zone != "below", "step {}: G skipped only when D is too weak", i + 1);
    }
}

fn check_lr_adjust_metrics(frame: &DataFrame) {
    let lr_d = column_f64(frame, "lr_d");
    let zones: Vec<&str> =
        frame.column("zone").unwrap().str().unwrap().iter().map(Option::unwrap).collect();
    // The first step's rate already reflects that step's zone (default factor 1.02).
    let expected = match zones[0] {
        "above" => 5e-5 / 1.02,
        _ => 5e-5 * 1.02,
    };
    assert!((lr_d[0].unwrap() - expected).abs() < 1e-15, "{lr_d:?} {zones:?}");
    assert!(lr_d.windows(2).all(|w| w[0] != w[1]), "lr_d moves every step");
}
