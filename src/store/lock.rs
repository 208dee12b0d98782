//! One OS-level lock per run, so two sweeps on one `runs/` never train a config at once.
//!
//! The lock is `flock` on `runs/.locks/<short>.lock`, taken through `std::fs::File::try_lock`.
//! The kernel drops it when its process dies, however it dies, so a lock is never stale in
//! the OS's eyes; what a dead process leaves is its note in the file (pid, host, time). A
//! clean release empties the file, so a note found by the next holder means the last holder
//! died while training, and the takeover is logged.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::StoreError;
use super::manifest::{host_name, now_rfc3339};

/// Folder of lock files inside a runs dir.
pub const LOCKS_DIR: &str = ".locks";

/// A held run lock; released (and its note cleared) when dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    /// The note of a holder that died with the lock, if this lock was taken over.
    pub taken_over: Option<String>,
}

/// Where the lock file of a run lives.
pub fn lock_path(root: &Path, short: &str) -> PathBuf {
    root.join(LOCKS_DIR).join(format!("{short}.lock"))
}

fn open(root: &Path, short: &str) -> Result<(File, PathBuf), StoreError> {
    let dir = root.join(LOCKS_DIR);
    fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let path = lock_path(root, short);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    Ok((file, path))
}

/// Takes the run's lock if no other process holds it; `Ok(None)` when one does.
pub fn try_acquire(root: &Path, short: &str) -> Result<Option<RunLock>, StoreError> {
    loop {
        let (file, path) = open(root, short)?;
        match file.try_lock() {
            Ok(()) if still_named(&file, &path) => return claim(file, path).map(Some),
            // `dcgan gc` deleted the file between our open and our lock: lock the new one.
            Ok(()) => continue,
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io(&path, e)),
        }
    }
}

/// Whether the locked file is still the one its path names: a lock on a deleted file would
/// not keep anyone out.
fn still_named(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(held), Ok(named)) => held.ino() == named.ino() && held.dev() == named.dev(),
        _ => false,
    }
}

/// Who holds a run's lock now (their note), or `None` when nobody does. Probes with a shared
/// lock, so it never blocks and never makes a holder wait.
pub fn holder(root: &Path, short: &str) -> Option<String> {
    let path = lock_path(root, short);
    let file = File::open(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(_) => Some(read_note(&path).unwrap_or_else(|| "another process".to_string())),
    }
}

fn read_note(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let note = text.trim();
    (!note.is_empty()).then(|| note.to_string())
}

/// Records this process in a freshly locked file, noting a dead holder's leftover note.
fn claim(mut file: File, path: PathBuf) -> Result<RunLock, StoreError> {
    let mut old = String::new();
    let io = |e| StoreError::io(&path, e);
    file.read_to_string(&mut old).map_err(io)?;
    let old = old.trim();
    let taken_over = (!old.is_empty()).then(|| old.to_string());
    let note = format!("pid {} on {} since {}\n", std::process::id(), host_name(), now_rfc3339());
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(note.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(RunLock { file, path, taken_over })
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // An empty file tells the next holder that this one let go on purpose.
        if let Err(e) = self.file.set_len(0) {
            tracing::warn!(lock = %self.path.display(), "cannot clear the lock note: {e}");
        }
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_until_the_first_lets_go() {
        let tmp = tempfile::tempdir().unwrap();
        let first = try_acquire(tmp.path(), "abc").unwrap().expect("free at first");
        assert!(first.taken_over.is_none());
        assert!(try_acquire(tmp.path(), "abc").unwrap().is_none(), "held: refused");
        let note = holder(tmp.path(), "abc").expect("held");
        assert!(note.contains(&format!("pid {}", std::process::id())), "{note}");
        drop(first);
        assert!(holder(tmp.path(), "abc").is_none());
        let again = try_acquire(tmp.path(), "abc").unwrap().expect("free again");
        assert!(again.taken_over.is_none(), "a clean release leaves no note");
    }

    #[test]
    fn a_note_left_by_a_dead_holder_is_reported_on_takeover() {
        let tmp = tempfile::tempdir().unwrap();
        let path = lock_path(tmp.path(), "abc");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "pid 999999 on elsewhere since 2026-01-01T00:00:00Z\n").unwrap();
        let lock = try_acquire(tmp.path(), "abc").unwrap().expect("nobody holds it");
        assert!(lock.taken_over.as_deref().unwrap().contains("999999"));
    }
}
