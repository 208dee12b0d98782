//! Evaluation in a real sweep through the binary: scores during training into eval.parquet,
//! a config that skips it, `dcgan eval` after the fact, and the report's ranking.

mod common;

use std::path::Path;

use common::{dcgan, run_dirs, stderr, stdout, tiny_base, write_file};
use dcgan_harness::eval::table;
use dcgan_harness::store::manifest::Manifest;

fn manifest(dir: &Path) -> Manifest {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn runs_are_scored_while_training_and_again_on_demand() {
    let tmp = tempfile::tempdir().unwrap();
    // One classifier epoch keeps the test short; eval every 3 of 6 steps on 100 images.
    let base = tiny_base(6)
        .replace("eval: { enabled: false }", "eval: { every: 3, n: 100, classifier_epochs: 1 }");
    let text =
        format!("name: scored\nbase:\n{base}axes:\n  grid:\n    balance.strategy: [none, skip]\n");
    let file = write_file(tmp.path(), "scored.yaml", &text);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("evaluated 100 samples"), "{}", stderr(&out));

    let runs = run_dirs(&tmp.path().join("runs"));
    assert_eq!(runs.len(), 2, "{}", stdout(&out));
    for dir in &runs {
        let rows = table::read(&dir.join(table::EVAL_FILE)).unwrap();
        let steps: Vec<u64> = rows.iter().map(|r| r.step).collect();
        assert_eq!(steps, [3, 6], "{dir:?}");
        assert!(rows.iter().all(|r| r.n == 100 && r.frechet.is_finite() && r.frechet >= 0.0));
        let about = manifest(dir).evaluation.unwrap();
        assert!(about.contains("n=100 every=3") && about.contains("accuracy"), "{about}");
    }

    // Scoring again with more images adds a row and keeps the others.
    let short = runs[0].file_name().unwrap().to_string_lossy().into_owned();
    let again = dcgan(tmp.path(), &["eval", &short[..8], "--runs-dir", "runs", "--n", "200"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("n=200 frechet="), "{}", stdout(&again));
    assert!(!stderr(&again).contains("training the evaluation classifier"), "cached");
    let other_seed = ["eval", &short, "--runs-dir", "runs", "--n", "200", "--seed", "3"];
    assert!(dcgan(tmp.path(), &other_seed).status.success());
    let rows = table::read(&runs[0].join(table::EVAL_FILE)).unwrap();
    let keys: Vec<(u64, usize, u64)> = rows.iter().map(|r| (r.step, r.n, r.seed)).collect();
    assert_eq!(keys, [(3, 100, 7), (6, 100, 7), (6, 200, 3), (6, 200, 7)]);
    let about = manifest(&runs[0]).evaluation.unwrap();
    assert!(about.contains("then dcgan eval n=200 seed=3"), "{about}");

    // The report ranks by the Fréchet distance and draws the scores over training.
    let report = dcgan(tmp.path(), &["report", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert!(report.status.success(), "{}", stderr(&report));
    let md = std::fs::read_to_string(tmp.path().join("reports/scored/report.md")).unwrap();
    assert!(md.contains("## Ranking by Fréchet distance"), "{md}");
    assert!(md.contains("![Fréchet distance by config](summary.png)"), "{md}");
    assert!(image::open(tmp.path().join("reports/scored/evaluation.png")).is_ok());

    // A run that does not exist, or a bad n, is a clear error.
    let missing = dcgan(tmp.path(), &["eval", "abcdef", "--runs-dir", "runs"]);
    assert_eq!(missing.status.code(), Some(2));
    let tiny_n = dcgan(tmp.path(), &["eval", &short, "--runs-dir", "runs", "--n", "3"]);
    assert_eq!(tiny_n.status.code(), Some(2));
    assert!(stderr(&tiny_n).contains("at least 10"), "{}", stderr(&tiny_n));
}

#[test]
fn a_config_that_skips_evaluation_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "s.yaml", &format!("name: s\nbase:\n{}", tiny_base(2)));
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = &run_dirs(&tmp.path().join("runs"))[0];
    assert!(!dir.join(table::EVAL_FILE).exists());
    assert_eq!(manifest(dir).evaluation.as_deref(), Some("skipped (eval.enabled: false)"));
}
