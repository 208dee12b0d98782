//! Looking after a runs folder: `dcgan ls` lists its runs, `dcgan show` opens one, and
//! `dcgan gc` removes what crashed processes left behind.
//!
//! These commands read only what is on disk, like reports do, so they work on a copied
//! `runs/` and while sweeps train in it. A directory that cannot be read is never an error:
//! it is listed as `damaged` with the reason, because finding such directories is one of the
//! reasons to look. What is running is told by the run locks, never guessed from times.

pub mod data;
pub mod gc;
pub mod ls;
pub mod row;
pub mod select;
pub mod show;
pub mod status;

use std::fs;
use std::path::{Path, PathBuf};

/// The run directories of a runs folder (every folder whose name does not start with a dot,
/// as `resolve_prefix` sees them), sorted by name.
pub fn run_dirs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = fs::read_dir(root)
        .map_err(|e| anyhow::anyhow!("cannot list runs in {}: {e}", root.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The last part of a path, as text.
pub fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Bytes a file or folder takes, links not followed (a link counts as itself).
pub fn disk_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(entries) = fs::read_dir(path) else { return 0 };
    entries.filter_map(|e| e.ok()).map(|e| disk_size(&e.path())).sum()
}

/// `1.5 KiB`-style sizes for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
    }
}
