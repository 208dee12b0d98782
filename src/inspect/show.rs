//! `dcgan show HASH`: everything about one run in one place, for a person deciding what to
//! do with it (compare, resume, evaluate, delete).
//!
//! Each part is read on its own, so a broken file only blanks its own section.

use std::fmt::Write;
use std::fs;
use std::path::{Path, PathBuf};

use super::row::{self, FINAL_COLUMNS, FINAL_SHARE, RunRow};
use crate::eval::table::{self as eval_table, EVAL_FILE};
use crate::store::{self, lock};

/// The text of `dcgan show` for the run whose hash starts with `prefix`.
pub fn show(runs_dir: &Path, prefix: &str) -> anyhow::Result<String> {
    let dir = crate::report::runs::resolve_prefix(runs_dir, prefix)?;
    let row = row::read(runs_dir, &dir);
    let mut out = String::new();
    header(&mut out, &row);
    config(&mut out, &dir);
    manifest(&mut out, &dir);
    finals(&mut out, &row);
    evaluations(&mut out, &dir);
    files(&mut out, &dir);
    lock_holder(&mut out, runs_dir, &row.hash);
    Ok(out.trim_end().to_string())
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n== {title} ==");
}

fn header(out: &mut String, row: &RunRow) {
    let _ = writeln!(out, "run {} in {}", row.hash, row.dir.display());
    let _ = writeln!(out, "status: {}", row.status);
    if let Some(reason) = &row.reason {
        let _ = writeln!(out, "reason: {reason}");
    }
}

fn config(out: &mut String, dir: &Path) {
    section(out, store::CONFIG_FILE);
    let path = dir.join(store::CONFIG_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => out.push_str(text.trim_end()),
        Err(e) => out.push_str(&format!("cannot read {}: {e}", path.display())),
    }
    out.push('\n');
}

/// The manifest pretty-printed; an unreadable one is shown with why.
fn manifest(out: &mut String, dir: &Path) {
    section(out, store::MANIFEST_FILE);
    match store::read_manifest(dir) {
        Ok(m) => out.push_str(&serde_json::to_string_pretty(&m).expect("manifests serialise")),
        Err(reason) => out.push_str(&reason),
    }
    out.push('\n');
}

fn finals(out: &mut String, row: &RunRow) {
    let share = FINAL_SHARE * 100.0;
    section(out, &format!("final metrics (means over the last {share:.0} % of steps)"));
    if row.finals.is_empty() {
        out.push_str("none (no readable metrics.parquet)\n");
        return;
    }
    for name in FINAL_COLUMNS {
        let value = row.finals.get(name).copied().flatten();
        let text = value.map_or("-".to_string(), |v| format!("{v:.6}"));
        let _ = writeln!(out, "{name:<12} {text}");
    }
}

fn evaluations(out: &mut String, dir: &Path) {
    section(out, "evaluation");
    let scores = match eval_table::read(&dir.join(EVAL_FILE)) {
        Ok(scores) => scores,
        Err(e) => {
            let _ = writeln!(out, "{e}");
            return;
        }
    };
    if scores.is_empty() {
        out.push_str("none (see `dcgan eval`)\n");
        return;
    }
    let _ = writeln!(
        out,
        "{:>8} {:>6} {:>6} {:>10} {:>8} {:>9} {:>7} {:>7} {:>8}",
        "step", "n", "seed", "frechet", "kid", "precision", "recall", "classes", "class_kl"
    );
    for s in scores {
        let _ = writeln!(
            out,
            "{:>8} {:>6} {:>6} {:>10.4} {:>8.4} {:>9.4} {:>7.4} {:>7} {:>8.4}",
            s.step,
            s.n,
            s.seed,
            s.frechet,
            s.kid,
            s.precision,
            s.recall,
            s.classes_covered,
            s.class_kl
        );
    }
}

/// Every file of the run with its size, paths relative to the runs folder's parent.
fn files(out: &mut String, dir: &Path) {
    section(out, "files");
    let mut found = Vec::new();
    walk(dir, &mut found);
    found.sort();
    for path in found {
        let size = super::human_size(super::disk_size(&path));
        let _ = writeln!(out, "{size:>10}  {}", path.display());
    }
}

/// Files under a folder, links listed as themselves rather than followed.
fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&entry.path(), found),
            _ => found.push(entry.path()),
        }
    }
}

fn lock_holder(out: &mut String, root: &Path, hash: &str) {
    section(out, "lock");
    match lock::holder(root, hash) {
        Some(note) => writeln!(out, "held by {note}"),
        None => writeln!(out, "free (no process trains this run)"),
    }
    .ok();
}
