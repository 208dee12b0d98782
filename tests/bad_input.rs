//! Bad input, one test per case: each gets a clear error that says what is wrong and where
//! (exit code 2, no panic), and nothing already written is lost. Cases covered elsewhere:
//! unknown keys, YAML syntax, unequal zips, keys in two axes (tests/sweep_files.rs); missing,
//! non-IDX and truncated datasets (tests/dataset.rs); a runs dir that is a file
//! (tests/runs_and_failures.rs); damaged run directories in reports (tests/reports.rs) and in
//! `dcgan ls` (tests/inspect.rs).

mod common;

use std::path::Path;
use std::process::Output;

use dcgan_harness::store::{self, StoreError, metrics};

use common::{bundled_data, dcgan, run_dirs, stderr, stdout, tiny_base, write_file};

/// Plans a sweep file (`--dry-run`: nothing is trained) and returns the output.
fn plan(text: &str) -> (Output, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "bad.yaml", text);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--dry-run"]);
    (out, tmp)
}

/// The output is a clean refusal whose message holds every one of `parts`.
fn refused(out: &Output, parts: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for part in parts {
        assert!(err.contains(part), "`{part}` missing from:\n{err}");
    }
}

/// A sweep of the tiny base with `section` lines added to it.
fn with(section: &str) -> String {
    format!("name: bad\nbase:\n{}{section}", tiny_base(2))
}

#[test]
fn a_yaml_syntax_error_gives_line_and_column() {
    let (out, _tmp) = plan("name: bad\nbase:\n  model: { width: 8\n  train: {}\n");
    refused(&out, &["bad.yaml", "line 4", "column"]);
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let (out, _tmp) = plan(&with("  balance: { stratgy: skip }\n"));
    refused(&out, &["stratgy", "line 8"]);
}

#[test]
fn a_value_of_the_wrong_type_is_named() {
    let (out, _tmp) = plan("name: bad\nbase:\n  train: { steps: many }\n");
    refused(&out, &["bad.yaml", "steps", "line 3"]);
}

#[test]
fn a_negative_learning_rate_is_refused() {
    let (out, _tmp) = plan("name: bad\nbase:\n  train: { lr_d: -5e-5 }\n");
    refused(&out, &["train.lr_d", "-0.00005", "positive", "line 3"]);
}

#[test]
fn a_zero_learning_rate_is_refused() {
    let (out, _tmp) = plan("name: bad\nbase:\n  train: { lr_g: 0 }\n");
    refused(&out, &["train.lr_g", "positive"]);
}

#[test]
fn a_low_threshold_at_or_above_the_high_one_is_refused() {
    for (low, high) in ["0.8", "0.9"].iter().zip(["0.8", "0.7"]) {
        let (out, _tmp) =
            plan(&format!("name: b\nbase:\n  balance: {{ low: {low}, high: {high} }}\n"));
        refused(&out, &["balance.high", "above balance.low"]);
    }
}

#[test]
fn thresholds_outside_zero_to_one_are_refused() {
    let (out, _tmp) = plan("name: bad\nbase:\n  balance: { low: -0.1 }\n");
    refused(&out, &["balance.low", "in [0, 1]"]);
    let (out, _tmp) = plan("name: bad\nbase:\n  balance: { high: 1.5 }\n");
    refused(&out, &["balance.high", "at most 1"]);
}

#[test]
fn a_batch_size_of_zero_is_refused() {
    let (out, _tmp) = plan("name: bad\nbase:\n  train: { batch_size: 0 }\n");
    refused(&out, &["train.batch_size", "at least 1"]);
}

#[test]
fn a_width_of_zero_is_refused() {
    let (out, _tmp) = plan("name: bad\nbase:\n  model: { width: 0 }\n");
    refused(&out, &["model.width", "at least 1", "line 3"]);
}

#[test]
fn an_empty_grid_axis_is_refused() {
    let (out, _tmp) = plan(&with("axes:\n  grid:\n    balance.low: []\n"));
    refused(&out, &["balance.low", "non-empty list", "line 10"]);
}

#[test]
fn an_axis_naming_a_key_that_does_not_exist_is_refused() {
    let (out, _tmp) = plan(&with("axes:\n  grid:\n    balance.threshold: [0.1, 0.2]\n"));
    refused(&out, &["unknown config key `balance.threshold`", "line 10"]);
}

#[test]
fn duplicate_configs_in_a_sweep_are_trained_once_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let text = with("axes:\n  grid:\n    train.lr_g: [2e-4, 0.0002, 1e-4]\n");
    let file = write_file(tmp.path(), "dup.yaml", &text);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("train.lr_g=0.0002 are the same config; it is trained once"), "{err}");
    assert!(stdout(&out).contains("sweep bad: 2 configs"), "{}", stdout(&out));
    assert!(stdout(&out).contains("2 trained"), "{}", stdout(&out));
    assert_eq!(run_dirs(&tmp.path().join("runs")).len(), 2);
}

#[test]
fn a_missing_dataset_path_is_named() {
    let (out, _tmp) = plan("name: bad\nbase:\n  data: { split: test, path: /no/such/place }\n");
    refused(&out, &["/no/such/place"]);
}

#[test]
fn a_dataset_file_that_is_not_idx_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        write_file(tmp.path(), name, "these are not the images you are looking for");
    }
    let text =
        format!("name: bad\nbase:\n  data: {{ split: test, path: {} }}\n", tmp.path().display());
    let (out, _t) = plan(&text);
    refused(&out, &["t10k-", "IDX"]);
}

#[test]
fn a_truncated_dataset_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let source = bundled_data();
    let images = std::fs::read(source.join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(tmp.path().join("t10k-images-idx3-ubyte.gz"), &images[..images.len() / 3])
        .unwrap();
    let labels = source.join("t10k-labels-idx1-ubyte.gz");
    std::fs::copy(labels, tmp.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let text =
        format!("name: bad\nbase:\n  data: {{ split: test, path: {} }}\n", tmp.path().display());
    let (out, _t) = plan(&text);
    refused(&out, &["t10k-images-idx3-ubyte.gz"]);
}

#[test]
fn a_runs_dir_that_cannot_be_written_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "s.yaml", &with(""));
    // Under a regular file no folder can be made, even for root (who ignores modes).
    write_file(tmp.path(), "plain-file", "");
    let out =
        dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "plain-file/runs"]);
    refused(&out, &["--runs-dir plain-file/runs", "Not a directory"]);
}

#[test]
fn a_full_disk_while_writing_parquet_keeps_the_old_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("metrics.parquet");
    metrics::write(&path, &[]).unwrap();
    let before = std::fs::read(&path).unwrap();
    // The half-written copy goes to /dev/full: the real ENOSPC, through the real code path.
    std::os::unix::fs::symlink("/dev/full", store::partial_path(&path)).unwrap();
    let err = metrics::write(&path, &[]).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("metrics.parquet.partial"), "{message}");
    assert!(message.contains("No space left on device"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the old file is intact");
    assert!(!store::partial_path(&path).exists(), "the partial copy is cleaned up");
}

#[test]
fn a_writer_that_fails_midway_is_an_error_not_a_panic() {
    struct Full(usize);
    impl std::io::Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 < buf.len() {
                return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Polars reports the failure in its own words; what matters is an error, not a panic.
    let err = metrics::write_to(&mut Full(16), &[]).unwrap_err();
    assert!(err.to_string().contains("parquet"), "{err}");
}

#[test]
fn a_sweep_name_with_dot_dot_is_refused() {
    let (out, tmp) = plan(&format!("name: ../../escape\nbase:\n{}", tiny_base(2)));
    refused(&out, &["`../../escape`", "plain name", "line 1"]);
    let out = dcgan(tmp.path(), &["report", tmp.path().join("bad.yaml").to_str().unwrap()]);
    refused(&out, &["`../../escape`"]);
    assert!(!tmp.path().join("../escape").exists() && !Path::new("../escape").exists());
}

#[test]
fn a_data_path_with_dot_dot_is_only_read_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let nested = tmp.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    let data = bundled_data();
    // Relative to the sweep file, going up and out of its folder.
    let up = pathdiff(&data, &nested);
    let text = format!(
        "name: up\nbase:\n  data: {{ split: test, path: {up}, limit: 64 }}\n  \
         model: {{ width: 2, z_dim: 8 }}\n  train: {{ steps: 2, batch_size: 16, extra_z: 16 }}\n  \
         eval: {{ enabled: false }}\n"
    );
    let file = write_file(&nested, "up.yaml", &text);
    let listing = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let data_before = listing(&data);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(listing(&data), data_before, "nothing written beside the dataset");
    assert_eq!(listing(tmp.path()), ["a", "runs"], "runs go to runs/ only");
}

/// `to` written relative to `from`, with `..` for every level up.
fn pathdiff(to: &Path, from: &Path) -> String {
    let ups = from.components().count();
    let mut rel = "../".repeat(ups);
    rel.push_str(to.to_str().unwrap().trim_start_matches('/'));
    rel
}

#[test]
fn a_hash_prefix_that_matches_nothing_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "s.yaml", &with(""));
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for command in ["eval", "reproduce", "show", "sample"] {
        let out = dcgan(tmp.path(), &[command, "fedcba98"]);
        refused(&out, &["fedcba98"]);
    }
}

#[test]
fn a_completed_run_with_garbage_metrics_is_trained_again_and_the_old_one_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "s.yaml", &with(""));
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = run_dirs(&tmp.path().join("runs")).remove(0);
    std::fs::write(run.join("metrics.parquet"), "not parquet at all").unwrap();
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("retry-damaged"), "{}", stdout(&out));
    assert!(stderr(&out).contains("not a whole Parquet file"), "{}", stderr(&out));
    assert!(metrics::read(&run.join("metrics.parquet")).is_ok(), "trained again");
    let kept = std::fs::read_dir(tmp.path().join("runs/.attempts")).unwrap().count();
    assert_eq!(kept, 1, "the damaged directory is kept, not deleted");
}

#[test]
fn edited_unreadable_or_overwritten_run_files_are_damaged_everywhere_and_retrained() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "s.yaml", &with("axes:\n  seeds: [0, 1, 2]\n"));
    let sweep =
        |args: &[&str]| dcgan(tmp.path(), &[&["sweep", file.to_str().unwrap()], args].concat());
    assert!(sweep(&[]).status.success());
    let runs = run_dirs(&tmp.path().join("runs"));
    let config = |run: &Path| run.join("config.yaml");
    let edited = std::fs::read_to_string(config(&runs[0])).unwrap().replace("steps: 2", "steps: 3");
    std::fs::write(config(&runs[0]), edited).unwrap();
    std::fs::write(config(&runs[1]), ": : [").unwrap();
    std::fs::write(runs[2].join("checkpoints/generator.bpk"), "garbage").unwrap();

    let ls = dcgan(tmp.path(), &["ls", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&ls)).unwrap();
    assert!(rows.iter().all(|r| r["status"] == "damaged"), "{rows:?}");
    let report = dcgan(tmp.path(), &["report", file.to_str().unwrap(), "--out", "rep"]);
    assert!(report.status.success(), "{}", stderr(&report));
    let md = std::fs::read_to_string(tmp.path().join("rep/report.md")).unwrap();
    assert!(md.contains("edited after the run") && md.contains("3 damaged"), "{md}");

    let out = sweep(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).matches("retry-damaged").count(), 3, "{}", stdout(&out));
    let err = stderr(&out);
    for reason in ["edited after the run", "not a valid config", "not a burnpack weights file"] {
        assert!(err.contains(reason), "`{reason}` missing from:\n{err}");
    }
    let kept = std::fs::read_dir(tmp.path().join("runs/.attempts")).unwrap().count();
    assert_eq!(kept, 3, "the damaged directories are kept");
    let again = sweep(&[]);
    assert!(stdout(&again).contains("0 trained, 3 cached"), "{}", stdout(&again));
}

#[test]
fn a_sample_into_a_folder_is_refused_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "s.yaml", &with(""));
    assert!(dcgan(tmp.path(), &["sweep", file.to_str().unwrap()]).status.success());
    let short = run_dirs(&tmp.path().join("runs"))[0].file_name().unwrap().to_owned();
    std::fs::create_dir(tmp.path().join("dir.png")).unwrap();
    let out = dcgan(tmp.path(), &["sample", short.to_str().unwrap(), "-o", "dir.png"]);
    refused(&out, &["dir.png"]);
    assert!(!tmp.path().join("dir.png.partial").exists(), "no half-written file is left");
}
