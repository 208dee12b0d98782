//! `dcgan ls`, `dcgan show` and `dcgan gc` on real runs, through the real binary.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use dcgan_harness::config::RunConfig;
use dcgan_harness::store::{lock, manifest::Manifest, metrics};

use common::{dcgan, run_dirs, stderr, stdout, tiny_base, write_file};

/// Trains 4 tiny runs (two strategies x two seeds, 12 steps: the last 10 % holds two rows)
/// into `<tmp>/runs` and returns their directories.
fn trained(tmp: &Path) -> Vec<PathBuf> {
    let text = format!(
        "name: inspect\nbase:\n{}axes:\n  grid:\n    balance.strategy: [none, skip]\n  \
         seeds: [0, 1]\n",
        tiny_base(12)
    );
    let file = write_file(tmp, "inspect.yaml", &text);
    let out = dcgan(tmp, &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let runs = run_dirs(&tmp.join("runs"));
    assert_eq!(runs.len(), 4);
    runs
}

fn name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

fn manifest(run: &Path) -> Manifest {
    serde_json::from_str(&fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap()
}

fn config(run: &Path) -> RunConfig {
    serde_yaml::from_str(&fs::read_to_string(run.join("config.yaml")).unwrap()).unwrap()
}

/// The final value of a metrics column, computed here from the file: the mean over steps
/// past 0.9 x the last step, nulls left out.
fn final_value(run: &Path, column: &str) -> Option<f64> {
    let frame = metrics::read(&run.join("metrics.parquet")).unwrap();
    let floats = |c: &str| -> Vec<Option<f64>> {
        let col = frame.column(c).unwrap().cast(&polars::prelude::DataType::Float64).unwrap();
        col.f64().unwrap().to_vec()
    };
    let steps = floats("step");
    let last = steps.iter().flatten().copied().fold(0.0, f64::max);
    let kept: Vec<f64> = steps
        .iter()
        .zip(floats(column))
        .filter(|(s, _)| s.unwrap() > 0.9 * last)
        .filter_map(|(_, v)| v)
        .collect();
    assert!(kept.len() <= 2, "12 steps: the final share holds steps 11 and 12");
    (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64)
}

/// `dcgan ls --format json` with more arguments, parsed; asserts it succeeded.
fn ls_json(tmp: &Path, more: &[&str]) -> Vec<Value> {
    let mut args = vec!["ls", "--runs-dir", "runs", "--format", "json"];
    args.extend_from_slice(more);
    let out = dcgan(tmp, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<Vec<Value>>(&stdout(&out)).expect("ls prints a JSON array")
}

fn hashes(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r["hash"].as_str().unwrap().to_string()).collect()
}

fn by_hash<'a>(rows: &'a [Value], hash: &str) -> &'a Value {
    rows.iter().find(|r| r["hash"] == hash).unwrap_or_else(|| panic!("{hash} not listed"))
}

fn close(a: &Value, b: Option<f64>) -> bool {
    match (a.as_f64(), b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        (None, None) => a.is_null(),
        _ => false,
    }
}

#[test]
fn ls_lists_every_run_with_its_stored_values_in_all_three_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = trained(tmp.path());
    let rows = ls_json(tmp.path(), &[]);
    assert_eq!(hashes(&rows), runs.iter().map(|r| name(r)).collect::<Vec<_>>());
    let mut some_g_loss_missing = false;
    for run in &runs {
        let (row, m) = (by_hash(&rows, &name(run)), manifest(run));
        assert_eq!(row["status"], "completed", "{row}");
        assert!(row["reason"].is_null(), "{row}");
        assert_eq!(row["sweep"], "inspect");
        assert_eq!(row["swept"], serde_json::to_value(&m.swept).unwrap());
        assert_eq!(row["steps"], m.steps_done);
        assert_eq!(row["steps_planned"], m.steps_planned);
        assert!(close(&row["time"], m.duration_s), "{row}");
        assert!(row["frechet"].is_null(), "not evaluated");
        for column in ["d_loss", "g_loss", "d_acc_real", "d_acc_fake"] {
            let expected = final_value(run, column);
            assert!(close(&row[column], expected), "{column}: {row} vs {expected:?}");
        }
        some_g_loss_missing |= row["g_loss"].is_null();
    }
    assert!(some_g_loss_missing, "`skip` leaves g out at first: no g_loss at the end");

    let out = dcgan(tmp.path(), &["ls", "--runs-dir", "runs", "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(&header[..5], &["hash", "status", "sweep", "swept", "steps"]);
    assert_eq!(lines.len(), 1 + runs.len());
    let at = |c: &str| header.iter().position(|h| *h == c).unwrap();
    for (line, run) in lines[1..].iter().zip(&runs) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), header.len(), "no field needs quotes here: {line}");
        assert_eq!(fields[at("hash")], name(run));
        assert_eq!(fields[at("status")], "completed");
        let d_loss: f64 = fields[at("d_loss")].parse().unwrap();
        assert!(close(&d_loss.into(), final_value(run, "d_loss")), "{line}");
    }

    let out = dcgan(tmp.path(), &["ls", "--runs-dir", "runs"]);
    let table = stdout(&out);
    assert!(table.starts_with("hash "), "{table}");
    for column in ["status", "swept", "steps", "time", "d_loss", "g_loss", "d_acc_real", "frechet"]
    {
        assert!(table.lines().next().unwrap().contains(column), "{column}: {table}");
    }
    for run in &runs {
        let line = table.lines().find(|l| l.starts_with(&name(run))).expect("listed");
        assert!(line.contains("completed") && line.contains("12/12"), "{line}");
        assert!(line.contains(&format!("{:.4}", final_value(run, "d_loss").unwrap())), "{line}");
    }
}

#[test]
fn where_selects_by_columns_and_config_keys_and_sort_orders() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = trained(tmp.path());
    let with = |f: &dyn Fn(&RunConfig) -> bool| -> Vec<String> {
        runs.iter().filter(|r| f(&config(r))).map(|r| name(r)).collect()
    };
    // 1.0 is 1: numbers compare as numbers.
    let seed_one = ls_json(tmp.path(), &["--where", "train.seed=1.0"]);
    assert_eq!(hashes(&seed_one), with(&|c| c.train.seed == 1));
    assert_eq!(seed_one.len(), 2);
    let both =
        ls_json(tmp.path(), &["--where", "balance.strategy=skip", "--where", "train.seed=1"]);
    let expected = with(&|c| c.train.seed == 1 && format!("{:?}", c.balance.strategy) == "Skip");
    assert_eq!(hashes(&both), expected);
    assert_eq!(both.len(), 1);
    assert_eq!(ls_json(tmp.path(), &["--where", "status=completed"]).len(), 4);
    assert_eq!(ls_json(tmp.path(), &["--where", "steps=12", "--where", "model.width=2"]).len(), 4);
    assert!(ls_json(tmp.path(), &["--where", "status=failed"]).is_empty());
    assert_eq!(ls_json(tmp.path(), &["--sweep", "inspect"]).len(), 4);

    let d_losses = |rows: &[Value]| -> Vec<f64> {
        rows.iter().map(|r| r["d_loss"].as_f64().unwrap()).collect()
    };
    let up = d_losses(&ls_json(tmp.path(), &["--sort", "d_loss"]));
    assert!(up.windows(2).all(|w| w[0] <= w[1]), "{up:?}");
    assert!(up.first() < up.last(), "the runs differ: {up:?}");
    let down = d_losses(&ls_json(tmp.path(), &["--sort", "-d_loss"]));
    assert_eq!(down, up.iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(d_losses(&ls_json(tmp.path(), &["--sort", "d_loss", "--desc"])), down);
    // Runs without a value go last, whichever way.
    let by_g = ls_json(tmp.path(), &["--sort", "-g_loss"]);
    assert!(by_g.last().unwrap()["g_loss"].is_null(), "{by_g:?}");

    for (args, says) in [
        (vec!["--where", "nope=1"], "balance.strategy"),
        (vec!["--where", "train.seed"], "KEY=VALUE"),
        (vec!["--sort", "nope"], "unknown key `nope`"),
        (vec!["--sweep", "other"], "sweeps there: inspect"),
    ] {
        let mut all = vec!["ls", "--runs-dir", "runs"];
        all.extend(&args);
        let out = dcgan(tmp.path(), &all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    let out = dcgan(tmp.path(), &["ls", "--runs-dir", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
}

#[test]
fn show_prints_config_manifest_finals_files_and_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = trained(tmp.path());
    let run = &runs[1];
    let out = dcgan(tmp.path(), &["show", &name(run)[..7], "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with(&format!("run {}", name(run))), "{text}");
    assert!(text.contains("status: completed"), "{text}");
    let yaml = fs::read_to_string(run.join("config.yaml")).unwrap();
    assert!(text.contains(yaml.trim_end()), "the stored config, as stored:\n{text}");
    assert!(text.contains(&format!("\"hash\": \"{}\"", manifest(run).hash)), "{text}");
    let d_loss = final_value(run, "d_loss").unwrap();
    assert!(text.contains(&format!("d_loss       {d_loss:.6}")), "{text}");
    for file in ["metrics.parquet", "checkpoints/generator.bpk", "samples/step_000012.png"] {
        let path = Path::new("runs").join(name(run)).join(file);
        assert!(text.contains(&path.display().to_string()), "{file}: {text}");
    }
    assert!(text.contains("== lock ==\nfree"), "{text}");

    let lock = lock::try_acquire(&tmp.path().join("runs"), &name(run)).unwrap().unwrap();
    let out = dcgan(tmp.path(), &["show", &name(run), "--runs-dir", "runs"]);
    assert!(stdout(&out).contains(&format!("held by pid {}", std::process::id())));
    drop(lock);
}

#[test]
fn unknown_and_ambiguous_prefixes_are_errors_listing_candidates() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = trained(tmp.path());
    let names: Vec<String> = runs.iter().map(|r| name(r)).collect();
    let unused = "0123456789abcdef".chars().find(|c| !names.iter().any(|n| n.starts_with(*c)));
    let unused = unused.expect("4 runs leave some first digit unused").to_string();
    let out = dcgan(tmp.path(), &["show", &unused, "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(2));
    for n in &names {
        assert!(stderr(&out).contains(n.as_str()), "candidates listed: {}", stderr(&out));
    }

    // A copy under a name sharing the first 8 digits makes the prefix ambiguous (and is
    // itself listed as damaged: its manifest names another run).
    let twin = format!("{}00000000", &names[0][..8]);
    assert_ne!(twin, names[0]);
    let copy = tmp.path().join("runs").join(&twin);
    fs::create_dir(&copy).unwrap();
    fs::copy(runs[0].join("manifest.json"), copy.join("manifest.json")).unwrap();
    fs::copy(runs[0].join("config.yaml"), copy.join("config.yaml")).unwrap();
    let out = dcgan(tmp.path(), &["show", &names[0][..8], "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&names[0]) && err.contains(&twin) && err.contains("several"), "{err}");
    let row = ls_json(tmp.path(), &[]).into_iter().find(|r| r["hash"] == twin.as_str()).unwrap();
    assert_eq!(row["status"], "damaged");
    assert!(row["reason"].as_str().unwrap().contains("another run"), "{row}");

    let out = dcgan(tmp.path(), &["show", "not-hex", "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a run hash"), "{}", stderr(&out));
}

#[test]
fn damaged_manifest_and_metrics_are_listed_as_damaged_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = trained(tmp.path());
    fs::write(runs[0].join("manifest.json"), "{ not json at all").unwrap();
    fs::write(runs[1].join("metrics.parquet"), b"PAR1 garbage, not parquet").unwrap();
    let rows = ls_json(tmp.path(), &[]);
    assert_eq!(rows.len(), 4, "damaged runs are still listed");
    let bad_manifest = by_hash(&rows, &name(&runs[0]));
    assert_eq!(bad_manifest["status"], "damaged");
    let reason = bad_manifest["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("{}/manifest.json", name(&runs[0]))), "{reason}");
    let bad_metrics = by_hash(&rows, &name(&runs[1]));
    assert_eq!(bad_metrics["status"], "damaged");
    let reason = bad_metrics["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("{}/metrics.parquet", name(&runs[1]))), "{reason}");
    assert!(bad_metrics["d_loss"].is_null(), "no numbers from a broken file");
    assert_eq!(bad_metrics["sweep"], "inspect", "what could be read is still shown");
    for run in &runs[2..] {
        assert_eq!(by_hash(&rows, &name(run))["status"], "completed");
    }
    let damaged = ls_json(tmp.path(), &["--where", "status=damaged"]);
    assert_eq!(hashes(&damaged), vec![name(&runs[0]), name(&runs[1])]);

    let out = dcgan(tmp.path(), &["ls", "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out).lines().find(|l| l.starts_with(&name(&runs[0]))).unwrap().to_owned();
    assert!(line.contains("damaged") && line.contains("not a valid manifest"), "{line}");
    let out = dcgan(tmp.path(), &["show", &name(&runs[1]), "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("status: damaged"), "{}", stdout(&out));
}

/// Every file under a folder with its bytes, for before/after comparisons.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(snapshot(&path));
        } else {
            all.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
    all.sort();
    all
}

#[test]
fn gc_removes_leftovers_and_never_a_completed_run() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = trained(tmp.path());
    let root = tmp.path().join("runs");
    // An interrupted run: its last checkpoint is kept, a half-written one goes.
    set_status(&runs[0], "interrupted");
    fs::create_dir_all(runs[0].join("checkpoints/resume/step_000006")).unwrap();
    write_file(&runs[0].join("checkpoints/resume/step_000006"), "state.json", "{}");
    let before: Vec<_> = runs.iter().map(|r| snapshot(r)).collect();
    let plant_dir = |path: PathBuf| {
        fs::create_dir_all(&path).unwrap();
        fs::write(path.join("x"), "leftover").unwrap();
        path
    };
    let garbage = [
        plant_dir(root.join(".tmp-0123-456")),
        plant_dir(root.join(".scratch/reproduce-abc-999999")),
        plant_dir(runs[0].join("checkpoints/resume/.step_000002.tmp-999999")),
        plant_dir(runs[1].join("checkpoints/resume/step_000008")),
        write_file(&runs[2].join("samples"), "step_000004.png.partial", "half"),
        write_file(&runs[2], "manifest.json.partial", "half"),
        {
            fs::create_dir_all(root.join(".locks")).unwrap();
            write_file(&root.join(".locks"), "ffffffffffffffff.lock", "")
        },
        // A decode killed part way: its writer (pid 999999) is gone.
        write_file(
            &plant_dir(root.join(".cache/decoded")),
            ".ab-64px-1ch.images.999999.partial",
            "half",
        ),
    ];
    let kept = [
        plant_dir(root.join(".cache/classifier")),
        plant_dir(root.join(".attempts/a-1")),
        // Not a run directory: not gc's to clean, whatever it holds.
        write_file(&plant_dir(root.join("notes")), "draft.partial", "mine"),
        // A decode under way (this process is alive), and a whole cache file.
        write_file(
            &root.join(".cache/decoded"),
            &format!(".cd-64px-1ch.images.{}.partial", std::process::id()),
            "being written",
        ),
        write_file(&root.join(".cache/decoded"), "cd-64px-1ch.images", "whole"),
    ];
    // A decode whose pid is gone here but whose file is locked (a writer on another node).
    let elsewhere = write_file(
        &root.join(".cache/decoded"),
        ".ef-64px-1ch.images.999998.partial",
        "being written elsewhere",
    );
    let elsewhere_lock = fs::File::open(&elsewhere).unwrap();
    elsewhere_lock.lock().unwrap();
    // A run being trained (its lock held) keeps even its leftovers.
    let held = lock::try_acquire(&root, &name(&runs[3])).unwrap().unwrap();
    let held_partial = write_file(&runs[3], "metrics.parquet.partial", "being written");

    let out = dcgan(tmp.path(), &["gc", "--runs-dir", "runs", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    for path in &garbage {
        let shown = path.strip_prefix(tmp.path()).unwrap().display().to_string();
        let shown = shown.replace("checkpoints/resume/step_000008", "checkpoints/resume");
        assert!(listed.contains(&format!("{shown}  (")), "{shown} listed:\n{listed}");
        assert!(path.exists(), "a dry run removes nothing: {}", path.display());
    }
    assert!(listed.contains("8 B"), "sizes are shown: {listed}");
    assert!(!listed.contains(".cache/classifier") && !listed.contains(".attempts"), "{listed}");
    assert!(!listed.contains("cd-64px"), "live and whole cache files stay: {listed}");
    assert!(!listed.contains(&held_partial.display().to_string()), "{listed}");

    let out = dcgan(tmp.path(), &["gc", "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for path in &garbage {
        assert!(!path.exists(), "removed: {}", path.display());
    }
    for path in kept.iter().chain([&held_partial, &elsewhere]) {
        assert!(path.exists(), "kept: {}", path.display());
    }
    drop(elsewhere_lock);
    drop(held);
    fs::remove_file(&held_partial).unwrap();
    let after: Vec<_> = runs.iter().map(|r| snapshot(r)).collect();
    assert!(before == after, "every file of the runs is as it was");
    let rows = ls_json(tmp.path(), &["--where", "status=completed"]);
    assert_eq!(hashes(&rows), runs[1..].iter().map(|r| name(r)).collect::<Vec<_>>());
    assert_eq!(by_hash(&ls_json(tmp.path(), &[]), &name(&runs[0]))["status"], "interrupted");

    let out = dcgan(tmp.path(), &["gc", "--runs-dir", "runs", "--attempts"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!kept[1].exists() && kept[0].exists(), "--attempts removes .attempts, not .cache");
    assert!(kept[2].exists());
    assert_eq!(ls_json(tmp.path(), &[]).len(), 5, "4 runs and notes/, listed as damaged");
}

/// Rewrites a run's manifest with another status.
fn set_status(run: &Path, status: &str) {
    let path = run.join("manifest.json");
    let mut m: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    m["status"] = status.into();
    fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

#[test]
fn unfinished_runs_are_told_apart_and_removed_only_on_request_and_when_free() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = trained(tmp.path());
    let root = tmp.path().join("runs");
    let status = |run: &Path| by_hash(&ls_json(tmp.path(), &[]), &name(run))["status"].clone();
    set_status(&runs[0], "interrupted");
    set_status(&runs[1], "running");
    assert_eq!(status(&runs[0]), "interrupted");
    assert_eq!(status(&runs[1]), "crashed", "running, but nobody holds its lock");
    let held = lock::try_acquire(&root, &name(&runs[1])).unwrap().unwrap();
    assert_eq!(status(&runs[1]), "running");

    let out = dcgan(tmp.path(), &["gc", "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(runs[0].exists() && runs[1].exists(), "resumable runs stay without --unfinished");
    let out = dcgan(tmp.path(), &["gc", "--runs-dir", "runs", "--unfinished"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!runs[0].exists(), "a free unfinished run goes with --unfinished");
    assert!(runs[1].exists(), "a run whose lock is held stays");
    assert!(!lock::lock_path(&root, &name(&runs[0])).exists(), "and its lock file goes");
    drop(held);
    let out = dcgan(tmp.path(), &["gc", "--runs-dir", "runs", "--unfinished"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!runs[1].exists());
    let rows = ls_json(tmp.path(), &[]);
    assert_eq!(hashes(&rows), vec![name(&runs[2]), name(&runs[3])]);
    assert!(rows.iter().all(|r| r["status"] == "completed"));
}
