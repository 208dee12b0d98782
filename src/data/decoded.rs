//! Decoded images on disk: a dataset decoded once at training shape is written to
//! `<runs>/.cache/decoded/` and memory-mapped by every later process, so the workers of a
//! parallel sweep or a Slurm array share one copy in the page cache instead of each decoding
//! (6.5 s and 250 MB for the Fashion-MNIST train split at 64x64; far more for photos).
//!
//! The file is named by the dataset's fingerprint and the preprocessing settings (side and
//! channels; the crop and filter are fixed by the format version). It is a 132-byte header,
//! then the pixels, the labels, and the list of unreadable files:
//!
//! ```text
//! magic "DCGANIMG" | version u32 | side u32 | channels u32 | count u64 | skipped bytes u64 |
//! fingerprint, 64 ASCII hex digits | sha256 of everything after the header
//! ```
//!
//! Little-endian. Images are decoded straight into the file a chunk at a time, so a dataset
//! larger than memory can be cached. A file whose header, length or checksum is wrong is
//! removed and rebuilt.

use std::fs;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use memmap2::Mmap;
use sha2::{Digest, Sha256};

use super::prepare::{self, ImageSource, Shape, Skipped};
use super::{DataError, DataSource, Dataset};

const MAGIC: &[u8; 8] = b"DCGANIMG";
/// v2: channels and the unreadable files' list; images centre-cropped before resizing.
const VERSION: u32 = 2;
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 8 + 8 + 64 + 32;
const SUM_AT: usize = HEADER_LEN - 32;

/// The cache file of a dataset decoded to `shape`.
pub fn path(cache_dir: &Path, fingerprint: &str, shape: Shape) -> PathBuf {
    let name = format!("{}.images", super::shaped_name(fingerprint, shape));
    cache_dir.join("decoded").join(name)
}

/// Maps the cached images of a source, if a sound cache file is there. A damaged one is
/// removed (and so rebuilt by the caller), with a warning that says what was wrong.
pub fn load(cache_dir: &Path, source: &DataSource, shape: Shape) -> Option<Dataset> {
    map_file(cache_dir, source, shape, Checksum::Verify)
}

/// Whether mapping a file reads it all to check its sha256: not for the file this process
/// has just written and synced, whose sum it computed while writing.
#[derive(Clone, Copy, PartialEq)]
enum Checksum {
    Verify,
    Trust,
}

fn map_file(
    cache_dir: &Path,
    source: &DataSource,
    shape: Shape,
    checksum: Checksum,
) -> Option<Dataset> {
    let file = path(cache_dir, &source.fingerprint, shape);
    let opened = fs::File::open(&file).ok()?;
    // SAFETY: cache files are only ever replaced by rename, never written in place, so the
    // mapped bytes cannot change under us while a process holds the map.
    let map = match unsafe { Mmap::map(&opened) } {
        Ok(map) => map,
        Err(e) => {
            tracing::warn!("cannot map {}: {e}; decoding instead", file.display());
            return None;
        }
    };
    match check(&map, source, shape, checksum) {
        Ok((count, skipped_len)) => {
            let labels_at = HEADER_LEN + count * shape.bytes();
            let labels = map[labels_at..labels_at + count].to_vec();
            let skipped = parse_skipped(&map[labels_at + count..labels_at + count + skipped_len]);
            let mut data = Dataset::mapped(source.clone(), shape, map, HEADER_LEN, labels);
            data.skipped = skipped;
            Some(data)
        }
        Err(reason) => {
            tracing::warn!("{} is damaged ({reason}); decoding again", file.display());
            let _ = fs::remove_file(&file);
            None
        }
    }
}

/// Checks a mapped file against what it should hold; returns the image count and the
/// length of the unreadable files' list.
fn check(
    bytes: &[u8],
    source: &DataSource,
    shape: Shape,
    checksum: Checksum,
) -> Result<(usize, usize), String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err("not a decoded-images file".into());
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let version = u32_at(8);
    if version != VERSION {
        return Err(format!("format version {version}, this dcgan writes {VERSION}"));
    }
    let stored = Shape { side: u32_at(12) as usize, channels: u32_at(16) as usize };
    let (count, skipped_len) = (u64_at(20) as usize, u64_at(28) as usize);
    if stored != shape || bytes[36..100] != *source.fingerprint.as_bytes() {
        return Err("it holds another dataset or shape".into());
    }
    let expected =
        count.checked_mul(shape.bytes() + 1).and_then(|n| n.checked_add(HEADER_LEN + skipped_len));
    if count > source.count || expected != Some(bytes.len()) {
        let promised = expected.map_or("more than fits in memory".into(), |n| n.to_string());
        return Err(format!("{} bytes where the header promises {promised}", bytes.len()));
    }
    let verify = checksum == Checksum::Verify;
    if verify && Sha256::digest(&bytes[HEADER_LEN..]).as_slice() != &bytes[SUM_AT..HEADER_LEN] {
        return Err("checksum mismatch".into());
    }
    Ok((count, skipped_len))
}

/// Decodes a source into the cache, whole or not at all (into a file of this process's own,
/// synced, then renamed, so concurrent writers and readers never see half a file), and maps
/// the result.
pub fn build(
    cache_dir: &Path,
    source: DataSource,
    shape: Shape,
    images: &dyn ImageSource,
    bar: &ProgressBar,
) -> Result<Dataset, DataError> {
    let file = path(cache_dir, &source.fingerprint, shape);
    let dir = file.parent().expect("cache files live in a folder");
    let cache_error = |cause| DataError::Cache { path: file.clone(), cause };
    fs::create_dir_all(dir).map_err(cache_error)?;
    let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let tmp = dir.join(format!(".{name}.{}.partial", std::process::id()));
    let written = write(&tmp, &source, shape, images, bar);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, &file)) {
        let _ = fs::remove_file(&tmp);
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Err(DataError::Interrupted);
        }
        return Err(cache_error(e));
    }
    let mut data = map_file(cache_dir, &source, shape, Checksum::Trust).ok_or_else(|| {
        cache_error(std::io::Error::other("the file just written does not read back"))
    })?;
    data.decoded_here = true;
    Ok(data)
}

fn write(
    tmp: &Path,
    source: &DataSource,
    shape: Shape,
    images: &dyn ImageSource,
    bar: &ProgressBar,
) -> std::io::Result<()> {
    let file = fs::File::create(tmp)?;
    // Held until the file is closed: `dcgan gc` leaves a locked partial alone, even when its
    // writer's pid means nothing on the machine gc runs on (another node, a container).
    file.lock()?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&[0; HEADER_LEN])?;
    let mut digest = Sha256::new();
    let prepared = prepare::decode_all(images, shape, bar, &mut |pixels: &[u8]| {
        digest.update(pixels);
        out.write_all(pixels)
    })?;
    if prepared.interrupted {
        return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "stopped by a signal"));
    }
    let skipped = skipped_text(&prepared.skipped);
    for part in [&prepared.labels[..], skipped.as_bytes()] {
        digest.update(part);
        out.write_all(part)?;
    }
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(shape.side as u32).to_le_bytes());
    header.extend_from_slice(&(shape.channels as u32).to_le_bytes());
    header.extend_from_slice(&(prepared.labels.len() as u64).to_le_bytes());
    header.extend_from_slice(&(skipped.len() as u64).to_le_bytes());
    header.extend_from_slice(source.fingerprint.as_bytes());
    header.extend_from_slice(&digest.finalize());
    if header.len() != HEADER_LEN {
        let bad = format!("a fingerprint of {} characters", source.fingerprint.len());
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, bad));
    }
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header)?;
    file.sync_all()
}

/// The unreadable files as `name\treason` lines (tabs and newlines in either replaced).
fn skipped_text(skipped: &[Skipped]) -> String {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    skipped.iter().map(|s| format!("{}\t{}\n", clean(&s.name), clean(&s.reason))).collect()
}

fn parse_skipped(bytes: &[u8]) -> Vec<Skipped> {
    let text = String::from_utf8_lossy(bytes);
    let line = |l: &str| {
        let (name, reason) = l.split_once('\t').unwrap_or((l, ""));
        Skipped { name: name.to_string(), reason: reason.to_string() }
    };
    text.lines().map(line).collect()
}
