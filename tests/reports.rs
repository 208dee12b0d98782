//! `dcgan report` over real runs: every figure decodes at its size, the numbers in report.md
//! match the Parquet files, failed and missing runs are listed, and a second report is
//! byte-identical.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{bundled_data, dcgan, run_dirs, stderr, stdout, write_file};
use dcgan_harness::store::{manifest::Manifest, metrics};
use polars::prelude::DataType;

/// Four configs (the last diverges at once), two seeds each; `extra` adds a fifth config that
/// is never trained.
fn sweep_text(extra: bool) -> String {
    let (more_strategy, more_lr) = if extra { (", skip", ", 1.0e-4") } else { ("", "") };
    format!(
        "name: tiny-report\n\
         description: Three strategies and one diverging config, two seeds.\n\
         base:\n  \
           data: {{ split: test, path: {data}, limit: 256 }}\n  \
           model: {{ width: 4, z_dim: 8 }}\n  \
           train: {{ steps: 40, batch_size: 16, extra_z: 16 }}\n  \
           logging: {{ sample_every: 10 }}\n  \
           balance: {{ lr_d_max: 1.0e+31, lr_g_max: 1.0e+31 }}\n  \
           eval: {{ enabled: false }}\n\
         axes:\n  zip:\n    \
           - balance.strategy: [none, skip, lr-adjust, none{more_strategy}]\n      \
             train.lr_d: [5.0e-5, 5.0e-5, 5.0e-5, 1.0e+30{more_lr}]\n      \
             train.lr_g: [2.0e-4, 2.0e-4, 2.0e-4, 1.0e+30{more_lr}]\n  \
           seeds: [0, 1]\n",
        data = bundled_data().display()
    )
}

fn manifest(dir: &Path) -> Manifest {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The cells of the report.md table row whose first cell is `first`.
fn table_row(md: &str, first: &str) -> Vec<String> {
    let line = md
        .lines()
        .find(|l| l.split('|').nth(1).is_some_and(|c| c.trim() == first))
        .unwrap_or_else(|| panic!("no row `{first}` in:\n{md}"));
    line.split('|').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
}

/// `0.6931 [0.6900, 0.6962]` or `0.6931` or `12.5 %` → the numbers in it.
fn numbers(cell: &str) -> Vec<f64> {
    let cleaned = cell.replace(['[', ']', ',', '%'], " ");
    cleaned.split_whitespace().map(|n| n.parse().unwrap()).collect()
}

/// Mean of a column over the last 10 % of steps (nulls left out), computed here from the
/// Parquet file with a plain loop, independently of the report's polars query.
fn final_mean(dir: &Path, column: &str) -> f64 {
    let frame = metrics::read(&dir.join("metrics.parquet")).unwrap();
    let steps: Vec<u64> = frame
        .column("step")
        .unwrap()
        .u64()
        .unwrap()
        .to_vec()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let values = frame.column(column).unwrap().f64().unwrap().to_vec();
    let last = *steps.iter().max().unwrap() as f64;
    let kept: Vec<f64> = steps
        .iter()
        .zip(values)
        .filter(|(s, _)| **s as f64 > 0.9 * last)
        .filter_map(|(_, v)| v)
        .collect();
    kept.iter().sum::<f64>() / kept.len() as f64
}

/// Share of steps whose D update was left out.
fn d_skip_share(dir: &Path) -> f64 {
    let frame = metrics::read(&dir.join("metrics.parquet")).unwrap();
    let updated = frame.column("d_updated").unwrap().cast(&DataType::UInt32).unwrap();
    let updated = updated.u32().unwrap().to_vec();
    updated.iter().filter(|u| **u == Some(0)).count() as f64 / updated.len() as f64
}

#[test]
fn a_report_over_a_real_sweep_lists_every_run_and_matches_the_parquet_files() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "tiny.yaml", &sweep_text(false));
    let trained = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert_eq!(trained.status.code(), Some(1), "one config diverges: {}", stderr(&trained));
    let bigger = write_file(tmp.path(), "tiny-plus.yaml", &sweep_text(true));

    let args = ["report", bigger.to_str().unwrap(), "--runs-dir", "runs", "--out", "rep"];
    let out = dcgan(tmp.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("report.md"), "{}", stdout(&out));
    let rep = tmp.path().join("rep");
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();

    // Every run is in the table with its status; the untrained config is listed as missing.
    let runs = run_dirs(&tmp.path().join("runs"));
    assert_eq!(runs.len(), 8);
    let mut by_config: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for dir in &runs {
        let m = manifest(dir);
        let short = dir.file_name().unwrap().to_string_lossy().into_owned();
        let row = table_row(&md, &format!("`{short}`"));
        assert!(row.contains(&m.status.to_string()), "{row:?} vs {:?}", m.status);
        let label: Vec<String> = m
            .swept
            .iter()
            .filter(|(k, _)| k != "train.seed")
            .map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap()))
            .collect();
        by_config.entry(label.join(" ")).or_default().push(dir.clone());
    }
    assert!(md.contains("| `-` | skip | 0.0001 | 0.0001 | 0 | missing |"), "{md}");
    assert!(md.contains("failed: step 2: D's loss on real images is NaN"), "{md}");
    assert!(
        md.contains("- Runs: 10 (6 completed, 2 failed, 0 unfinished, 2 missing, 0 damaged)"),
        "{md}"
    );

    // Summary numbers equal the ones computed here from the Parquet files.
    for (label, dirs) in &by_config {
        let row = table_row(&md, label);
        if label.contains("1e30") {
            assert_eq!(row[1], "0", "failed runs are left out of the summary: {row:?}");
            continue;
        }
        assert_eq!(row[1], "2", "two seeds: {row:?}");
        for (column, cell) in [("d_loss", 2), ("g_loss", 3), ("d_acc_fake", 5)] {
            let finals: Vec<f64> = dirs.iter().map(|d| final_mean(d, column)).collect();
            let mean = finals.iter().sum::<f64>() / finals.len() as f64;
            let lo = finals.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = finals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if mean.is_nan() {
                assert_eq!(row[cell], "-", "{label} {column}: no value in the last steps");
                continue;
            }
            let shown = numbers(&row[cell]);
            assert!((shown[0] - mean).abs() < 6e-5, "{label} {column}: {shown:?} vs {mean}");
            if shown.len() == 3 {
                assert!((shown[1] - lo).abs() < 6e-5 && (shown[2] - hi).abs() < 6e-5);
            } else {
                assert!((hi - lo).abs() < 1e-4, "{label} {column}: spread not shown");
            }
        }
        let skipped = dirs.iter().map(|d| d_skip_share(d)).sum::<f64>() / 2.0;
        let shown = numbers(&row[6])[0];
        assert!((shown - 100.0 * skipped).abs() < 0.051, "{label}: {shown} % vs {skipped}");
    }

    // Every picture decodes and has the size its layout gives.
    let sizes = [
        // Panels of 620 px plus a 280 px legend, two to a row, under a 44 px title.
        ("losses.png", (1800, 44 + 3 * 340)),
        ("accuracy.png", (1800, 44 + 3 * 340)),
        ("zones.png", (900, 384)),
        ("learning-rates.png", (1800, 384)),
        ("skips.png", (1800, 384)),
        // A heatmap (strategy x learning rates) with its colour scale as the legend.
        ("summary.png", (900, 384)),
        // 8 runs with directories: 3 x 3 thumbnails of 264 px, 12 px gaps, 52 px labels.
        ("samples.png", (12 + 3 * 276, 40 + 3 * 328)),
    ];
    for (name, size) in sizes {
        let image = image::open(rep.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((image.width(), image.height()), size, "{name}");
    }
    let strips: Vec<PathBuf> =
        files(&rep).into_iter().filter(|f| f.starts_with("strips")).collect();
    assert_eq!(strips.len(), 6, "one strip per run with sample grids: {strips:?}");
    for strip in &strips {
        let image = image::open(rep.join(strip)).unwrap();
        // Grids at steps 10 to 40: four rows of 64 px tiles with borders, under a title.
        assert_eq!((image.width(), image.height()), (96 + 530, 44 + 4 * 68), "{strip:?}");
    }

    // Text was drawn with the bundled font: the title band is not blank.
    let losses = image::open(rep.join("losses.png")).unwrap().to_luma8();
    let dark = (0..losses.width())
        .flat_map(|x| (0..44).map(move |y| (x, y)))
        .filter(|(x, y)| losses.get_pixel(*x, *y).0[0] < 100)
        .count();
    assert!(dark > 200, "the title has {dark} dark pixels");

    // Same runs, same report: every file identical.
    let again = dcgan(
        tmp.path(),
        &["report", bigger.to_str().unwrap(), "--runs-dir", "runs", "--out", "rep2"],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    let (first, second) = (files(&rep), files(&tmp.path().join("rep2")));
    assert_eq!(first, second);
    for f in &first {
        let a = std::fs::read(rep.join(f)).unwrap();
        let b = std::fs::read(tmp.path().join("rep2").join(f)).unwrap();
        assert!(a == b, "{f:?} differs between two reports of the same runs");
    }
}

#[test]
fn runs_named_by_hash_prefix_are_compared_and_bad_prefixes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let text =
        sweep_text(false).replace("steps: 40", "steps: 4").replace("seeds: [0, 1]", "seeds: [0]");
    let file = write_file(tmp.path(), "tiny.yaml", &text);
    dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    let runs = run_dirs(&tmp.path().join("runs"));
    let name = |i: usize| runs[i].file_name().unwrap().to_string_lossy().into_owned();
    let (a, b) = (name(0), name(1));

    let out = dcgan(tmp.path(), &["report", "--runs", &a[..6], &b, "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tmp.path().join(format!("reports/compare-{a}-2"));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains(&format!("`{a}`")) && md.contains(&format!("`{b}`")), "{md}");
    assert!(dir.join("summary.svg").is_file());

    let unknown = if a.starts_with('f') { "0000000" } else { "fffffff" };
    let out = dcgan(tmp.path(), &["report", "--runs", unknown, "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no run in") && stderr(&out).contains(&a), "{}", stderr(&out));

    let out = dcgan(tmp.path(), &["report", "--runs", "../etc", "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a run hash"), "{}", stderr(&out));

    let out = dcgan(tmp.path(), &["report", file.to_str().unwrap(), "--metric", "fid"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown metric `fid`"), "{}", stderr(&out));

    let out = dcgan(tmp.path(), &["report", file.to_str().unwrap(), "--runs-dir", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
}

#[test]
fn damaged_runs_are_flagged_and_the_rest_of_the_report_is_drawn() {
    let tmp = tempfile::tempdir().unwrap();
    // Square brackets in the runs dir: paths are read literally, never as glob patterns.
    let runs_dir = "runs[1]";
    let text = sweep_text(false)
        .replace("steps: 40", "steps: 8")
        .replace("sample_every: 10", "sample_every: 4")
        .replace("seeds: [0, 1]", "seeds: [0]");
    let file = write_file(tmp.path(), "tiny.yaml", &text);
    dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", runs_dir]);
    let runs = run_dirs(&tmp.path().join(runs_dir));
    let by_strategy = |s: &str| {
        let dir = runs.iter().find(|d| {
            let m = manifest(d);
            m.swept.iter().any(|(k, v)| k == "balance.strategy" && v == s)
                && m.swept.iter().any(|(k, v)| k == "train.lr_d" && v == "0.00005")
        });
        dir.unwrap().clone()
    };
    let (none, skip, adjust) = (by_strategy("none"), by_strategy("skip"), by_strategy("lr-adjust"));
    let short = |d: &Path| d.file_name().unwrap().to_string_lossy().into_owned();

    // A copy of a completed run under another name, truncated metrics, a corrupt final
    // sample grid, and a lost config.yaml.
    let copy = tmp.path().join(runs_dir).join("ffffffffffffffff");
    std::fs::create_dir(&copy).unwrap();
    for entry in ["config.yaml", "manifest.json", "metrics.parquet"] {
        std::fs::copy(none.join(entry), copy.join(entry)).unwrap();
    }
    let parquet = std::fs::read(skip.join("metrics.parquet")).unwrap();
    std::fs::write(skip.join("metrics.parquet"), &parquet[..parquet.len() / 2]).unwrap();
    std::fs::write(none.join("samples/step_000008.png"), b"not a picture").unwrap();
    std::fs::remove_file(adjust.join("config.yaml")).unwrap();

    let args = ["report", file.to_str().unwrap(), "--runs-dir", runs_dir, "--out", "rep"];
    let out = dcgan(tmp.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = std::fs::read_to_string(tmp.path().join("rep/report.md")).unwrap();

    // The real run is used, the copy is named as left out.
    assert_eq!(table_row(&md, &format!("`{}`", short(&none)))[5], "completed", "{md}");
    assert!(md.contains("`ffffffffffffffff` (damaged) holds the same config; left out"), "{md}");
    // Truncated metrics: the run is damaged, in the table and in the count.
    assert_eq!(table_row(&md, &format!("`{}`", short(&skip)))[5], "damaged", "{md}");
    assert!(md.contains("metrics.parquet is not a whole Parquet file"), "{md}");
    // No config.yaml: the directory is found through its manifest and shown as damaged.
    assert_eq!(table_row(&md, &format!("`{}`", short(&adjust)))[5], "damaged", "{md}");
    assert!(md.contains("config.yaml"), "{md}");
    assert!(
        md.contains("- Runs: 4 (1 completed, 1 failed, 0 unfinished, 0 missing, 2 damaged)"),
        "{md}"
    );
    // The unreadable grid is named; the sheets are still drawn.
    assert!(md.contains("step_000008.png"), "{md}");
    assert!(image::open(tmp.path().join("rep/samples.png")).is_ok());
    let strip = tmp.path().join(format!("rep/strips/{}.png", short(&none)));
    let strip = image::open(strip).unwrap();
    assert_eq!(strip.height(), 44 + 68, "only the readable grid (step 4) is in the strip");

    // A second report into the same folder keeps files the report did not write.
    std::fs::write(tmp.path().join("rep/strips/my-notes.png"), b"mine").unwrap();
    std::fs::write(tmp.path().join("rep/NOTES.md"), b"mine").unwrap();
    assert!(dcgan(tmp.path(), &args).status.success());
    assert!(tmp.path().join("rep/strips/my-notes.png").is_file());
    assert!(tmp.path().join("rep/NOTES.md").is_file());

    // A report folder among the runs is refused.
    let inside = ["report", file.to_str().unwrap(), "--runs-dir", runs_dir, "--out"];
    let out = dcgan(tmp.path(), &[&inside[..], &["runs[1]/rep"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("inside the runs dir"), "{}", stderr(&out));

    // A backend name that does not exist is refused, as `dcgan sweep` refuses it.
    let bogus = ["report", file.to_str().unwrap(), "--runs-dir", runs_dir, "--backend", "bogus"];
    let out = dcgan(tmp.path(), &bogus);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown backend"), "{}", stderr(&out));
}

#[test]
fn runs_of_one_config_from_two_sweeps_are_seeds_of_one_config() {
    let tmp = tempfile::tempdir().unwrap();
    let one =
        sweep_text(false).replace("steps: 40", "steps: 4").replace("seeds: [0, 1]", "seeds: [0]");
    let file = write_file(tmp.path(), "one.yaml", &one);
    dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    let two =
        one.replace("name: tiny-report", "name: more-seeds").replace("seeds: [0]", "seeds: [0, 1]");
    let file = write_file(tmp.path(), "two.yaml", &two);
    dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);

    let out = dcgan(tmp.path(), &["report", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = std::fs::read_to_string(tmp.path().join("reports/more-seeds/report.md")).unwrap();
    let row = table_row(&md, "strategy=skip lr_d=0.00005 lr_g=0.0002");
    assert_eq!(row[1], "2", "the seed-0 run of the first sweep counts: {row:?}");
    assert!(!md.contains("sweep="), "the sweep's name is not a swept value: {md}");
}
