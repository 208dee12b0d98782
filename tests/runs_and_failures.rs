//! Determinism, failed runs, and the CLI's refusals, through the real binary.

mod common;

use std::path::Path;

use dcgan_harness::store::{manifest::Manifest, metrics};

use common::{dcgan, final_weights, manifest, run_dirs, stderr, stdout, tiny_base, write_file};

#[test]
fn the_same_config_gives_bit_identical_metrics_and_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!("name: twice\nbase:\n{}", tiny_base(5));
    let file = write_file(tmp.path(), "twice.yaml", &text);
    for dir in ["a", "b"] {
        let out = dcgan(tmp.path(), &["run", file.to_str().unwrap(), "--runs-dir", dir]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let (a, b) = (&run_dirs(&tmp.path().join("a"))[0], &run_dirs(&tmp.path().join("b"))[0]);
    assert_eq!(a.file_name(), b.file_name(), "same config, same hash");

    let without_time = |run: &Path| {
        metrics::read(&run.join("metrics.parquet")).unwrap().drop("elapsed_s").unwrap()
    };
    let (ma, mb) = (without_time(a), without_time(b));
    assert!(ma.equals_missing(&mb), "metrics differ:\n{ma}\n{mb}");
    let (ga, da) = final_weights(a);
    let (gb, db) = final_weights(b);
    assert!(ga.len() > 10 && da.len() > 5, "every layer is compared");
    assert!(ga == gb, "the generators' weights differ");
    assert!(da == db, "the discriminators' weights differ");
    for png in ["samples/step_000004.png", "samples/step_000005.png"] {
        assert_eq!(std::fs::read(a.join(png)).unwrap(), std::fs::read(b.join(png)).unwrap());
    }
}

#[test]
fn a_diverging_run_is_kept_as_failed_and_the_sweep_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    // Learning rates this large blow the weights up within a few steps.
    let text = format!(
        "name: boom\nbase:\n{}axes:\n  grid:\n    train.lr_d: [1.0e+30, 5.0e-5]\n    \
         train.lr_g: [1.0e+30]\n",
        tiny_base(4)
    );
    let file = write_file(tmp.path(), "boom.yaml", &text);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(1), "not every config completed: {}", stderr(&out));
    assert!(stdout(&out).contains("failed"), "{}", stdout(&out));

    let runs = run_dirs(&tmp.path().join("runs"));
    assert_eq!(runs.len(), 2, "both configs ran, the first failing did not stop the second");
    let failed: Vec<Manifest> =
        runs.iter().map(|r| manifest(r)).filter(|m| m.failure.is_some()).collect();
    assert!(!failed.is_empty());
    let reason = failed[0].failure.as_deref().unwrap();
    assert!(reason.contains("diverged") && reason.contains("step"), "{reason}");
    assert_eq!(failed[0].status.to_string(), "failed");

    // The metrics up to the failure are kept and readable.
    let failed_dir = runs.iter().find(|r| manifest(r).failure.is_some()).unwrap();
    let frame = metrics::read(&failed_dir.join("metrics.parquet")).unwrap();
    assert_eq!(frame.height() as u64, failed[0].steps_done);

    // Re-running retries the failed config and keeps the earlier attempt.
    let again = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert!(stdout(&again).contains("retry-failed"), "{}", stdout(&again));
    let kept = std::fs::read_dir(tmp.path().join("runs/.attempts")).unwrap().count();
    assert!(kept >= 1, "the failed attempt was set aside, not deleted");
}

#[test]
fn dry_run_lists_configs_and_trains_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!("name: dry\nbase:\n{}axes:\n  seeds: [1, 2, 3]\n", tiny_base(3));
    let file = write_file(tmp.path(), "dry.yaml", &text);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("sweep dry: 3 configs"), "{printed}");
    assert!(printed.contains("train.seed=3"), "{printed}");
    assert!(!tmp.path().join("runs").exists());
}

#[test]
fn an_unknown_backend_stops_before_any_run() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "b.yaml", &format!("name: b\nbase:\n{}", tiny_base(2)));
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--backend", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown backend `tpu`") && err.contains("flex"), "{err}");
    assert!(!tmp.path().join("runs").exists());
}

#[test]
fn run_refuses_a_file_with_several_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!("name: many\nbase:\n{}axes:\n  seeds: [1, 2]\n", tiny_base(2));
    let file = write_file(tmp.path(), "many.yaml", &text);
    let out = dcgan(tmp.path(), &["run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("2 configs"), "{}", stderr(&out));
}

#[test]
fn a_bad_sweep_file_is_a_clear_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "bad.yaml", "name: x\nbase:\n  modle: {}\n");
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("modle") && err.contains("line 3") && !err.contains("panicked"), "{err}");
}

#[test]
fn a_missing_dataset_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "name: x\nbase:\n  data: { split: test, path: /nowhere }\n";
    let file = write_file(tmp.path(), "x.yaml", text);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nowhere"), "{}", stderr(&out));
}

#[test]
fn a_batch_larger_than_the_usable_images_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::bundled_data();
    let text = format!(
        "name: big\nbase:\n  data: {{ split: test, path: {} }}\n  train: {{ batch_size: 20000 }}\n",
        data.display()
    );
    let file = write_file(tmp.path(), "big.yaml", &text);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("train.batch_size is 20000") && err.contains("10000"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let text = format!(
        "name: lim\nbase:\n  data: {{ split: test, path: {}, limit: 20000 }}\n",
        data.display()
    );
    let file = write_file(tmp.path(), "lim.yaml", &text);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("data.limit is 20000"), "{}", stderr(&out));
}

#[test]
fn a_runs_dir_that_cannot_hold_runs_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "s.yaml", &format!("name: s\nbase:\n{}", tiny_base(2)));
    write_file(tmp.path(), "not-a-dir", "");
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "not-a-dir"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--runs-dir not-a-dir") && err.contains("not a folder"), "{err}");
}

#[test]
fn a_completed_run_missing_its_metrics_is_trained_again_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "s.yaml", &format!("name: s\nbase:\n{}", tiny_base(2)));
    let args = ["sweep", file.to_str().unwrap(), "--runs-dir", "runs"];
    assert!(dcgan(tmp.path(), &args).status.success());
    let run = &run_dirs(&tmp.path().join("runs"))[0];
    // An emptied file is as unusable as a missing one.
    std::fs::write(run.join("metrics.parquet"), b"").unwrap();

    let again = dcgan(tmp.path(), &args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("retry-damaged"), "{}", stdout(&again));
    assert!(stderr(&again).contains("has no usable metrics.parquet"), "{}", stderr(&again));
    assert!(metrics::read(&run.join("metrics.parquet")).is_ok(), "trained again into place");
    let kept = std::fs::read_dir(tmp.path().join("runs/.attempts")).unwrap().count();
    assert_eq!(kept, 1, "the damaged directory was set aside, not deleted");
}

#[test]
fn a_closed_stderr_does_not_stop_the_sweep() {
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "s.yaml", &format!("name: s\nbase:\n{}", tiny_base(2)));
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcgan"))
        .args(["sweep", file.to_str().unwrap(), "--runs-dir", "runs"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both readers go away at once, as with `dcgan sweep ... 2>&1 | head -1`.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(run_dirs(&tmp.path().join("runs")).len(), 1, "the run was trained");
}
