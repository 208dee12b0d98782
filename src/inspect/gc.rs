//! `dcgan gc`: removes what interrupted processes left in a runs folder, never a run's
//! results.
//!
//! Garbage is only what nobody can still be writing: temporary files and folders of runs
//! whose lock is free, scratch folders of dead `dcgan reproduce` processes, and lock files
//! of runs that no longer exist. Each run is cleaned while gc holds its lock, so a sweep
//! cannot start training it halfway. Completed runs stay; unfinished runs (resumable) and
//! earlier attempts go only when asked for by a flag. Of `runs/.cache/`, only half-written
//! files of processes that are gone are removed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::store::manifest::Status;
use crate::store::{self, ATTEMPTS_DIR, CHECKPOINTS_DIR, RESUME_DIR, SCRATCH_DIR, lock};

/// What to collect.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    pub runs_dir: PathBuf,
    /// List only.
    pub dry_run: bool,
    /// Also whole unfinished runs (interrupted or crashed) whose lock is free.
    pub unfinished: bool,
    /// Also earlier attempts kept in `.attempts/`.
    pub attempts: bool,
}

/// Something to remove, and why it is garbage.
#[derive(Debug, Clone)]
pub struct Garbage {
    pub path: PathBuf,
    pub bytes: u64,
    pub why: String,
}

/// What gc found and did.
#[derive(Debug, Default)]
pub struct GcOutcome {
    /// Removed (or, in a dry run, to be removed).
    pub items: Vec<Garbage>,
    /// Paths that could not be removed, with the error.
    pub failures: Vec<(PathBuf, String)>,
}

/// Finds the garbage of a runs folder and, unless it is a dry run, removes it.
pub fn collect(options: &GcOptions) -> anyhow::Result<GcOutcome> {
    let root = &options.runs_dir;
    anyhow::ensure!(root.is_dir(), "--runs-dir {}: no such folder", root.display());
    let mut outcome = GcOutcome::default();
    let mut found = Vec::new();
    old_tmp_dirs(root, &mut found);
    scratch_dirs(root, &mut found);
    cache_partials(root, &mut found);
    if options.attempts {
        attempts(root, &mut found);
    }
    outcome.remove(found, options.dry_run);
    if !options.dry_run {
        // Only goes when empty: `dcgan reproduce` may be using it.
        let _ = fs::remove_dir(root.join(SCRATCH_DIR));
    }
    for dir in super::run_dirs(root)? {
        clean_run(root, &dir, options, &mut outcome)?;
    }
    stale_locks(root, options.dry_run, &mut outcome);
    Ok(outcome)
}

impl GcOutcome {
    fn remove(&mut self, found: Vec<Garbage>, dry_run: bool) {
        for item in found {
            if !dry_run && let Err(e) = remove_path(&item.path) {
                tracing::warn!("cannot remove {}: {e}", item.path.display());
                self.failures.push((item.path.clone(), e.to_string()));
                continue;
            }
            tracing::debug!(path = %item.path.display(), "garbage: {}", item.why);
            self.items.push(item);
        }
    }
}

fn remove_path(path: &Path) -> std::io::Result<()> {
    // symlink_metadata: a link is removed itself, never what it points to.
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

fn garbage(path: PathBuf, why: impl Into<String>) -> Garbage {
    Garbage { bytes: super::disk_size(&path), path, why: why.into() }
}

/// Entries of a folder, sorted, as (path, name); none when it cannot be read.
fn entries(dir: &Path) -> Vec<(PathBuf, String)> {
    let Ok(read) = fs::read_dir(dir) else { return Vec::new() };
    let mut all: Vec<(PathBuf, String)> = read
        .filter_map(|e| e.ok())
        .map(|e| (e.path(), e.file_name().to_string_lossy().into_owned()))
        .collect();
    all.sort();
    all
}

/// `runs/.tmp-*`: earlier versions trained there and renamed at the end; never resumed.
fn old_tmp_dirs(root: &Path, found: &mut Vec<Garbage>) {
    for path in store::leftovers(root) {
        found.push(garbage(path, "unfinished directory of an earlier version"));
    }
}

/// `runs/.scratch/reproduce-<short>-<pid>/` whose process is gone.
fn scratch_dirs(root: &Path, found: &mut Vec<Garbage>) {
    for (path, name) in entries(&root.join(SCRATCH_DIR)) {
        let pid = name.strip_prefix("reproduce-").and_then(|rest| rest.rsplit_once('-'));
        let Some(pid) = pid.and_then(|(_, pid)| pid.parse::<i32>().ok()) else { continue };
        if !process_alive(pid) {
            found.push(garbage(path, format!("scratch of `dcgan reproduce`, pid {pid} is gone")));
        }
    }
}

/// Half-written files in `runs/.cache/decoded/` and `.cache/fingerprints/`
/// (`<name>.<pid>.partial`) whose writer is gone: a decode killed part way.
fn cache_partials(root: &Path, found: &mut Vec<Garbage>) {
    for folder in ["decoded", "fingerprints"] {
        for (path, name) in entries(&root.join(store::CACHE_DIR).join(folder)) {
            let pid = name.strip_prefix('.').unwrap_or(&name).strip_suffix(".partial");
            let pid = pid.and_then(|rest| rest.rsplit_once('.'));
            let Some(pid) = pid.and_then(|(_, pid)| pid.parse::<i32>().ok()) else { continue };
            if !process_alive(pid) && !locked(&path) {
                found.push(garbage(path, format!("half-written cache file, pid {pid} is gone")));
            }
        }
    }
}

/// Whether some process holds a lock on the file (its writer, wherever it runs).
fn locked(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path) else { return false };
    matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock))
}

/// Whether a process with this id exists (one we may not signal counts as existing).
fn process_alive(pid: i32) -> bool {
    // 0 and negative ids address process groups, not a process: never "gone".
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let status = unsafe { libc::kill(pid, 0) };
    status == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

fn attempts(root: &Path, found: &mut Vec<Garbage>) {
    for (path, _) in entries(&root.join(ATTEMPTS_DIR)) {
        found.push(garbage(path, "earlier attempt (--attempts)"));
    }
}

/// Cleans one run directory under its lock; a run being trained is left alone.
fn clean_run(
    root: &Path,
    dir: &Path,
    options: &GcOptions,
    outcome: &mut GcOutcome,
) -> anyhow::Result<()> {
    let short = super::file_name(dir);
    // Only run directories: a folder someone else put here is not ours to clean.
    let is_run = short.len() == crate::hashing::SHORT_LEN
        && short.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if !is_run {
        return Ok(());
    }
    // A dry run changes nothing, so it only looks at the lock; a real one takes it.
    let _lock = if options.dry_run {
        if let Some(note) = lock::holder(root, &short) {
            tracing::info!(run = %short, "left alone: lock held by {note}");
            return Ok(());
        }
        None
    } else {
        match lock::try_acquire(root, &short)? {
            Some(lock) => Some(lock),
            None => {
                tracing::info!(run = %short, "left alone: another process holds its lock");
                return Ok(());
            }
        }
    };
    let found = run_garbage(dir, options.unfinished);
    outcome.remove(found, options.dry_run);
    Ok(())
}

/// What of a run directory (its lock free) is garbage.
fn run_garbage(dir: &Path, unfinished: bool) -> Vec<Garbage> {
    let status = store::read_manifest(dir).ok().map(|m| m.status);
    let resumable = matches!(status, Some(Status::Running | Status::Interrupted));
    if unfinished && resumable {
        return vec![garbage(dir.to_path_buf(), "unfinished run (--unfinished)")];
    }
    let mut found = Vec::new();
    let resume = dir.join(CHECKPOINTS_DIR).join(RESUME_DIR);
    if status == Some(Status::Completed) && resume.exists() {
        found.push(garbage(resume.clone(), "resume checkpoints of a completed run"));
    } else {
        for (path, name) in entries(&resume) {
            if name.starts_with(".step_") && name.contains(".tmp-") {
                found.push(garbage(path, "checkpoint whose writing was cut short"));
            }
        }
    }
    let skip = found.iter().map(|g| g.path.clone()).collect::<Vec<_>>();
    partials(dir, &skip, &mut found);
    found
}

/// `*.partial` files (cut-short atomic writes) under a folder, outside `skip`.
fn partials(dir: &Path, skip: &[PathBuf], found: &mut Vec<Garbage>) {
    for (path, name) in entries(dir) {
        if skip.contains(&path) {
            continue;
        }
        let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if is_dir {
            partials(&path, skip, found);
        } else if name.ends_with(".partial") {
            found.push(garbage(path, "file whose writing was cut short"));
        }
    }
}

/// Lock files of runs that no longer exist and that nobody holds. Each is removed while gc
/// holds it, so a sweep that takes it in between is seen as holding it and keeps it.
fn stale_locks(root: &Path, dry_run: bool, outcome: &mut GcOutcome) {
    for (path, name) in entries(&root.join(lock::LOCKS_DIR)) {
        let Some(short) = name.strip_suffix(".lock") else { continue };
        let Ok(file) = fs::File::open(&path) else { continue };
        if file.try_lock().is_err() || root.join(short).symlink_metadata().is_ok() {
            continue;
        }
        let item = garbage(path, "lock of a run that no longer exists");
        outcome.remove(vec![item], dry_run);
    }
}

/// The lines `dcgan gc` prints: each item with its size and why, then the total.
pub fn render(outcome: &GcOutcome, options: &GcOptions) -> String {
    let root = options.runs_dir.display();
    if outcome.items.is_empty() && outcome.failures.is_empty() {
        return format!("nothing to remove in {root}");
    }
    let verb = if options.dry_run { "would remove" } else { "removed" };
    let mut lines: Vec<String> = outcome
        .items
        .iter()
        .map(|g| {
            let size = super::human_size(g.bytes);
            format!("{verb} {size:>10}  {}  ({})", g.path.display(), g.why)
        })
        .collect();
    for (path, error) in &outcome.failures {
        lines.push(format!("cannot remove {}: {error}", path.display()));
    }
    let total = super::human_size(outcome.items.iter().map(|g| g.bytes).sum());
    let n = outcome.items.len();
    lines.push(match options.dry_run {
        true => format!("dry run: {n} items, {total}, would go from {root}; nothing removed"),
        false => format!("removed {n} items, {total}, from {root}"),
    });
    lines.join("\n")
}
