//! `dcgan reproduce` and `dcgan sample`, through the real binary.

mod common;

use std::path::{Path, PathBuf};

use polars::prelude::*;

use dcgan_harness::config::RunConfig;
use dcgan_harness::store::{metrics, samples};

use common::{dcgan, run_dirs, stderr, stdout, tiny_base, write_file};

/// Trains a tiny run in `<tmp>/runs` and returns its directory.
fn trained(tmp: &Path) -> PathBuf {
    trained_with(tmp, "")
}

/// A tiny run with extra `model` settings (`, key: value`).
fn trained_with(tmp: &Path, model: &str) -> PathBuf {
    let base = tiny_base(4).replace("z_dim: 8 }", &format!("z_dim: 8{model} }}"));
    assert!(base.contains(&format!("z_dim: 8{model} }}")), "tiny_base changed: {base}");
    let text = format!("name: repro\nbase:\n{base}");
    let file = write_file(tmp, "repro.yaml", &text);
    let out = dcgan(tmp, &["run", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dirs = run_dirs(&tmp.join("runs"));
    assert_eq!(dirs.len(), 1);
    dirs[0].clone()
}

fn short(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

fn both(out: &std::process::Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

#[test]
fn a_run_reproduces_bit_exactly_and_its_scratch_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path());
    let prefix = &short(&run)[..6];
    let out = dcgan(tmp.path(), &["reproduce", prefix]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(text.contains("reproduced: bit-exact"), "{text}");
    assert!(!text.contains("DIFFERS"), "{text}");
    for column in ["step", "d_loss", "g_loss", "lr_d", "d_updated", "zone"] {
        let line = text.lines().find(|l| l.split_whitespace().next() == Some(column));
        assert!(line.is_some_and(|l| l.contains("bit-exact")), "{column}: {text}");
    }
    let timing = text.lines().find(|l| l.starts_with("elapsed_s "));
    assert!(timing.is_some_and(|l| l.ends_with("not compared (timing)")), "{text}");
    let tensors = text.lines().filter(|l| l.starts_with("G.") || l.starts_with("D.")).count();
    assert!(tensors > 10, "every tensor is listed: {text}");
    let scratch = tmp.path().join("runs/.scratch");
    let left = std::fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "the scratch directory is removed");
    assert_eq!(run_dirs(&tmp.path().join("runs")), vec![run.clone()], "no new run appears");

    // --keep leaves the reproduction where it says.
    let out = dcgan(tmp.path(), &["reproduce", prefix, "--keep"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let kept = stdout(&out);
    let line = kept.lines().find(|l| l.starts_with("reproduction kept in ")).unwrap();
    let dir = tmp.path().join(line.trim_start_matches("reproduction kept in "));
    assert!(dir.join("metrics.parquet").is_file(), "{kept}");
    assert!(dir.starts_with(tmp.path().join("runs/.scratch")), "{kept}");
}

#[test]
fn an_edited_config_or_a_renamed_run_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path());
    let name = short(&run);
    let path = run.join("config.yaml");
    let original = std::fs::read_to_string(&path).unwrap();
    let mut cfg: RunConfig = serde_yaml::from_str(&original).unwrap();
    cfg.train.seed += 1;
    std::fs::write(&path, serde_yaml::to_string(&cfg).unwrap()).unwrap();
    let out = dcgan(tmp.path(), &["reproduce", &name]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("config.yaml was edited after the run"), "{err}");
    assert!(err.contains(&format!("the directory is {name}")), "{err}");
    assert!(!tmp.path().join("runs/.scratch").exists(), "nothing is trained");

    std::fs::write(&path, original).unwrap();
    let renamed = tmp.path().join("runs/0123456789abcdef");
    std::fs::rename(&run, &renamed).unwrap();
    let out = dcgan(tmp.path(), &["reproduce", "0123"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(stderr(&out).contains(&format!("manifest.json names hash {name}")), "{}", both(&out));
}

#[test]
fn a_changed_metric_is_named_with_its_step() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path());
    let file = run.join("metrics.parquet");
    let mut frame = metrics::read(&file).unwrap();
    let mut d_loss: Vec<Option<f64>> = frame.column("d_loss").unwrap().f64().unwrap().to_vec();
    let steps: Vec<Option<u64>> = frame.column("step").unwrap().u64().unwrap().to_vec();
    let i = 2;
    d_loss[i] = d_loss[i].map(|v| v + 0.25);
    frame.replace("d_loss", Series::new("d_loss".into(), d_loss).into()).unwrap();
    ParquetWriter::new(std::fs::File::create(&file).unwrap()).finish(&mut frame).unwrap();

    let out = dcgan(tmp.path(), &["reproduce", &short(&run)]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let step = steps[i].unwrap();
    assert!(text.contains(&format!("columns that differ: d_loss from step {step}\n")), "{text}");
    assert!(text.contains("tensors that differ: none"), "{text}");
    let line = text.lines().find(|l| l.starts_with("d_loss ")).unwrap();
    assert!(line.contains("DIFFERS") && line.contains("2.500e-1"), "{line}");
    let others = text.lines().filter(|l| l.contains("DIFFERS")).count();
    assert_eq!(others, 1, "only d_loss differs: {text}");
}

#[test]
fn unknown_and_ambiguous_prefixes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for name in ["aaaa000000000001", "aaaa000000000002"] {
        std::fs::create_dir_all(runs.join(name)).unwrap();
    }
    let out = dcgan(tmp.path(), &["reproduce", "aaaa"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("aaaa000000000001") && err.contains("aaaa000000000002"), "{err}");

    let out = dcgan(tmp.path(), &["reproduce", "bbbb"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(stderr(&out).contains("bbbb"), "{}", stderr(&out));

    let out = dcgan(tmp.path(), &["sample", "bbbb"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(!run_dirs(&runs).iter().any(|d| d.join("checkpoints").exists()));
}

#[test]
fn sample_grids_follow_their_seed() {
    let tmp = tempfile::tempdir().unwrap();
    // Four steps from the usual N(0, 0.02) start give grey images whatever z is; wider
    // initial weights make z show in the pixels.
    let run = trained_with(tmp.path(), ", init_std: 0.5");
    let name = short(&run);
    let draw = |seed: &str, file: &str| {
        let out =
            dcgan(tmp.path(), &["sample", &name[..5], "-n", "16", "--seed", seed, "-o", file]);
        assert_eq!(out.status.code(), Some(0), "{}", both(&out));
        assert!(stdout(&out).contains("final checkpoint"), "{}", stdout(&out));
        std::fs::read(tmp.path().join(file)).unwrap()
    };
    let a = draw("3", "a.png");
    let again = draw("3", "again.png");
    let other = draw("4", "other.png");
    assert_eq!(a, again, "the same seed draws the same grid");
    assert_ne!(a, other, "another seed draws another grid");
    let img = image::load_from_memory(&a).unwrap();
    assert_eq!((img.width(), img.height()), samples::grid_size(16, 64));

    // Default name and size.
    let out = dcgan(tmp.path(), &["sample", &name]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let default = tmp.path().join(format!("sample-{name}-seed0.png"));
    let img = image::open(&default).unwrap();
    assert_eq!((img.width(), img.height()), samples::grid_size(64, 64));

    let out = dcgan(tmp.path(), &["sample", &name, "-n", "0", "-o", "zero.png"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(stderr(&out).contains("-n must be at least 1"), "{}", stderr(&out));
    assert!(!tmp.path().join("zero.png").exists());

    // An unfinished run: the latest resume checkpoint, said so.
    let checkpoints = run.join("checkpoints");
    for step in ["step_000002", "step_000004"] {
        std::fs::create_dir_all(checkpoints.join("resume").join(step)).unwrap();
    }
    std::fs::rename(
        checkpoints.join("generator.bpk"),
        checkpoints.join("resume/step_000004/generator.bpk"),
    )
    .unwrap();
    let out = dcgan(tmp.path(), &["sample", &name, "-n", "16", "--seed", "3", "-o", "r.png"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("latest resume checkpoint (step 4;"), "{}", stdout(&out));
    assert_eq!(std::fs::read(tmp.path().join("r.png")).unwrap(), a, "same weights, same grid");
}

#[test]
fn other_data_or_a_missing_folder_is_refused() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path());
    let name = short(&run);

    // The same split with one pixel changed: another fingerprint.
    let other = tmp.path().join("other-data");
    std::fs::create_dir(&other).unwrap();
    let data = common::bundled_data();
    let labels = "t10k-labels-idx1-ubyte.gz";
    std::fs::copy(data.join(labels), other.join(labels)).unwrap();
    let images = "t10k-images-idx3-ubyte.gz";
    let mut raw = Vec::new();
    let file = std::fs::File::open(data.join(images)).unwrap();
    flate2::read::GzDecoder::new(file).read_to_end(&mut raw).unwrap();
    raw[16 + 300] ^= 0xff; // past the 16-byte header
    let out = std::fs::File::create(other.join(images)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap();

    let out = dcgan(tmp.path(), &["reproduce", &name, "--data", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out).contains(&format!("is not the one {name} was trained on")),
        "{}",
        both(&out)
    );

    let gone = tmp.path().join("moved-away");
    let out = dcgan(tmp.path(), &["reproduce", &name, "--data", gone.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out).contains("--data") && stderr(&out).contains("no such folder"),
        "{}",
        both(&out)
    );
    assert!(!tmp.path().join("runs/.scratch").exists(), "nothing is trained");
}

#[test]
fn a_failed_run_fails_again_the_same_way() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tiny_base(4).replace("steps: 4,", "steps: 4, lr_d: 1.0e+30, lr_g: 1.0e+30,");
    assert!(base.contains("lr_d: 1.0e+30"), "tiny_base changed: {base}");
    let file = write_file(tmp.path(), "boom.yaml", &format!("name: boom\nbase:\n{base}"));
    let out = dcgan(tmp.path(), &["run", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(1), "the run fails: {}", both(&out));
    let run = run_dirs(&tmp.path().join("runs"))[0].clone();

    let out = dcgan(tmp.path(), &["reproduce", &short(&run)]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let text = stdout(&out);
    assert!(text.contains("reproduced: bit-exact"), "{text}");
    assert!(!text.contains("status differs") && !text.contains("failure differs"), "{text}");
    assert!(text.contains("both runs failed the same way: step "), "{text}");
}
