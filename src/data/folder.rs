//! A folder of PNG and JPEG files, found recursively. Left out: hidden files and folders,
//! anything but regular files (pipes, devices), folders already seen through a symbolic link,
//! and runs folders of this harness (so a runs folder inside the image folder does not feed
//! its own sample grids back into training).
//!
//! When every image lies in a sub-folder, each first-level sub-folder is a class (sorted by
//! name, label 0 first), as in torchvision's `ImageFolder`; otherwise the images have no
//! labels. The fingerprint hashes every image file's content with its path under the
//! folder. Hashing 200,000 photos takes a while, so the result is remembered in
//! `<runs>/.cache/fingerprints/`, keyed by the files' paths, sizes and modification times:
//! an unchanged folder is fingerprinted from `stat` alone.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use image::DynamicImage;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::prepare::ImageSource;
use super::{DataError, DataSource, Origin};
use crate::config::{DataConfig, DatasetName};

/// File name endings taken as images, compared without case.
pub const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];
/// Folders deeper than this are not searched (a guard against symlink loops).
const MAX_DEPTH: usize = 32;

/// An image file of a folder dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path under the folder.
    pub path: PathBuf,
    pub label: u8,
}

/// A file found while listing, with what its quick fingerprint needs.
struct Found {
    path: PathBuf,
    size: u64,
    modified_ns: u128,
}

/// What a listing passes down to the folders below.
struct Walk<'a> {
    /// Folders listed so far, canonical: a symbolic link back to one is not followed again.
    seen: HashSet<PathBuf>,
    /// The runs folder whose cache is in use, canonical, if any: never read as data.
    runs_root: Option<PathBuf>,
    out: &'a mut Vec<Found>,
}

/// Lists a config's folder, works out its classes and fingerprints its files.
pub fn locate(cfg: &DataConfig, cache_dir: Option<&Path>) -> Result<DataSource, DataError> {
    let root = cfg.path.clone().expect("validated: dataset folder names its folder");
    let mut found = Vec::new();
    let runs_root = cache_dir.and_then(|c| c.parent()).and_then(|r| fs::canonicalize(r).ok());
    let mut walk = Walk { seen: HashSet::new(), runs_root, out: &mut found };
    list(&root, Path::new(""), 0, &mut walk)?;
    if found.is_empty() {
        return Err(DataError::NoImages { path: root });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    let (classes, labels) = classes_of(&root, &found)?;
    let fingerprint = fingerprint(&root, &found, cache_dir);
    let files: Vec<Entry> =
        found.into_iter().zip(labels).map(|(f, label)| Entry { path: f.path, label }).collect();
    let count = files.len();
    let origin = Origin::Folder { root, files: Arc::new(files) };
    let (dataset, split) = (DatasetName::Folder, cfg.split);
    Ok(DataSource { dataset, split, origin, fingerprint, count, classes })
}

fn list(dir: &Path, prefix: &Path, depth: usize, walk: &mut Walk) -> Result<(), DataError> {
    let read_error = |cause| DataError::Read { path: dir.to_path_buf(), cause };
    let canonical = fs::canonicalize(dir).map_err(read_error)?;
    if !walk.seen.insert(canonical.clone()) {
        tracing::debug!("{} was listed already (a symbolic link); not again", dir.display());
        return Ok(());
    }
    let runs_folder = is_runs_folder(&canonical, walk.runs_root.as_deref());
    if depth == 0 && runs_folder {
        return Err(DataError::RunsFolder { path: dir.to_path_buf() });
    }
    if runs_folder {
        tracing::info!("{} holds dcgan runs; its images are not training data", dir.display());
        return Ok(());
    }
    for entry in fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links; a dangling one is skipped like any non-image.
        let Ok(meta) = fs::metadata(&path) else { continue };
        let relative = prefix.join(&name);
        if meta.is_dir() {
            if depth + 1 >= MAX_DEPTH {
                tracing::warn!("{} is {MAX_DEPTH} folders deep; not searched", path.display());
                continue;
            }
            list(&path, &relative, depth + 1, walk)?;
        } else if meta.is_file() && is_image_name(&name.to_string_lossy()) {
            let modified_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            walk.out.push(Found { path: relative, size: meta.len(), modified_ns });
        }
    }
    Ok(())
}

/// Whether a folder is the runs folder in use, or any folder of run directories (it holds
/// the `.locks` folder every runs folder has).
fn is_runs_folder(canonical: &Path, runs_root: Option<&Path>) -> bool {
    runs_root == Some(canonical) || canonical.join(crate::store::lock::LOCKS_DIR).is_dir()
}

/// Whether a file name ends in one of [`EXTENSIONS`].
pub fn is_image_name(name: &str) -> bool {
    let ext = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    ext.is_some_and(|ext| EXTENSIONS.contains(&ext.as_str()))
}

/// Class names and each file's label: first-level sub-folders, when every file is in one.
fn classes_of(root: &Path, found: &[Found]) -> Result<(Vec<String>, Vec<u8>), DataError> {
    let class_of = |f: &Found| {
        let mut parts = f.path.components();
        let first = parts.next()?;
        parts.next().map(|_| first.as_os_str().to_string_lossy().into_owned())
    };
    let Some(per_file) = found.iter().map(class_of).collect::<Option<Vec<String>>>() else {
        let loose = found.iter().filter(|f| class_of(f).is_none()).count();
        if loose < found.len() {
            tracing::warn!(
                "{loose} image(s) lie directly in {}, not in a sub-folder: the sub-folders are \
                 not taken as classes, and the images have no labels",
                root.display()
            );
        }
        return Ok((Vec::new(), vec![0; found.len()]));
    };
    let mut names = per_file.clone();
    names.sort();
    names.dedup();
    if names.len() > 256 {
        return Err(DataError::TooManyClasses { path: root.to_path_buf(), count: names.len() });
    }
    let labels = per_file
        .iter()
        .map(|c| names.binary_search(c).expect("every class is listed") as u8)
        .collect();
    Ok((names, labels))
}

/// The content fingerprint, from the memo when the quick key matches one.
fn fingerprint(root: &Path, found: &[Found], cache_dir: Option<&Path>) -> String {
    let memo = cache_dir.map(|dir| dir.join("fingerprints").join(quick_key(root, found)));
    if let Some(known) = memo.as_ref().and_then(|m| fs::read_to_string(m).ok()) {
        let known = known.trim();
        if known.len() == 64 && known.bytes().all(|b| b.is_ascii_hexdigit()) {
            return known.to_string();
        }
    }
    let started = std::time::Instant::now();
    let digests: Vec<Option<[u8; 32]>> = found
        .par_iter()
        .map(|f| fs::read(root.join(&f.path)).ok().map(|bytes| Sha256::digest(bytes).into()))
        .collect();
    let mut hasher = Sha256::new();
    hasher.update(b"dcgan-harness/folder-v1");
    for (file, digest) in found.iter().zip(&digests) {
        let path = file.path.as_os_str().as_encoded_bytes();
        hasher.update((path.len() as u64).to_le_bytes());
        hasher.update(path);
        // A file that cannot be read counts as such, so the fingerprint stays defined.
        match digest {
            Some(digest) => hasher.update(digest),
            None => hasher.update(b"unreadable"),
        }
    }
    let fingerprint = format!("{:x}", hasher.finalize());
    tracing::debug!(
        files = found.len(),
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "fingerprinted {}",
        root.display()
    );
    if let Some(memo) = memo
        && let Err(e) = write_memo(&memo, &fingerprint)
    {
        tracing::debug!("cannot remember the fingerprint in {}: {e}", memo.display());
    }
    fingerprint
}

/// A hash of where the files are and of their paths, sizes and modification times.
fn quick_key(root: &Path, found: &[Found]) -> String {
    let mut hasher = Sha256::new();
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    hasher.update(root.to_string_lossy().as_bytes());
    for f in found {
        hasher.update([0]);
        hasher.update(f.path.as_os_str().as_encoded_bytes());
        hasher.update(f.size.to_le_bytes());
        hasher.update(f.modified_ns.to_le_bytes());
    }
    format!("{:x}", hasher.finalize())
}

fn write_memo(memo: &Path, fingerprint: &str) -> std::io::Result<()> {
    fs::create_dir_all(memo.parent().expect("memo files live in a folder"))?;
    let tmp = memo.with_extension(format!("{}.partial", std::process::id()));
    fs::write(&tmp, fingerprint)?;
    fs::rename(&tmp, memo)
}

/// A folder's image files, decoded one by one.
pub struct FolderImages {
    root: PathBuf,
    files: Arc<Vec<Entry>>,
}

impl FolderImages {
    pub fn new(root: &Path, files: &Arc<Vec<Entry>>) -> Self {
        Self { root: root.to_path_buf(), files: files.clone() }
    }
}

impl ImageSource for FolderImages {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn load(&self, index: usize) -> Result<DynamicImage, String> {
        let path = self.root.join(&self.files[index].path);
        let bytes = fs::read(&path).map_err(|e| format!("cannot read it ({e})"))?;
        image::load_from_memory(&bytes).map_err(|e| format!("not a readable PNG or JPEG ({e})"))
    }

    fn label(&self, index: usize) -> u8 {
        self.files[index].label
    }

    fn name(&self, index: usize) -> String {
        // A name that is not UTF-8 is shown escaped, so the file can still be found.
        let path = &self.files[index].path;
        path.to_str().map_or_else(|| format!("{:?}", path.as_os_str()), str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_matched_without_case() {
        assert!(is_image_name("a.PNG") && is_image_name("b.jpeg") && is_image_name("c.Jpg"));
        assert!(!is_image_name("notes.txt") && !is_image_name("png") && !is_image_name("x.gif"));
    }

    #[test]
    fn classes_need_every_file_in_a_sub_folder() {
        let found = |paths: &[&str]| -> Vec<Found> {
            let f = |p: &&str| Found { path: PathBuf::from(p), size: 0, modified_ns: 0 };
            paths.iter().map(f).collect()
        };
        let root = Path::new("r");
        let (names, labels) =
            classes_of(root, &found(&["cat/1.png", "dog/2.png", "cat/x/3.png"])).unwrap();
        assert_eq!(names, vec!["cat", "dog"]);
        assert_eq!(labels, vec![0, 1, 0]);
        let (names, labels) = classes_of(root, &found(&["cat/1.png", "top.png"])).unwrap();
        assert!(names.is_empty());
        assert_eq!(labels, vec![0, 0]);
    }
}
