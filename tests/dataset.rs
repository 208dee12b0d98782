//! Fashion-MNIST from real files: decoding, fingerprints, and errors for damaged files.

mod common;

use std::io::Write;
use std::path::Path;

use dcgan_harness::config::{DataConfig, Split};
use dcgan_harness::data::{DataError, DatasetCache, Shape, fashion};

use common::{bundled_data, gunzip};

fn test_split(path: &Path) -> DataConfig {
    DataConfig { split: Split::Test, path: Some(path.to_path_buf()), ..DataConfig::default() }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A folder with the bundled test split's files, after `damage` has rewritten them.
fn damaged_copy(damage: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut images = gunzip(&bundled_data().join("t10k-images-idx3-ubyte.gz"));
    let mut labels = gunzip(&bundled_data().join("t10k-labels-idx1-ubyte.gz"));
    damage(&mut images, &mut labels);
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), images).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), labels).unwrap();
    dir
}

#[test]
fn the_bundled_test_split_decodes_to_ten_thousand_64px_images() {
    let mut cache = DatasetCache::default();
    let data = cache.dataset(&test_split(&bundled_data())).unwrap();
    assert_eq!(data.len(), 10_000);
    assert_eq!(data.side, 64);
    assert_eq!(data.image(0).len(), 64 * 64);
    // Fashion-MNIST is ten balanced classes: 1,000 of each in the test split.
    for class in 0..10u8 {
        assert_eq!(data.labels.iter().filter(|&&l| l == class).count(), 1000);
    }
    // Real clothing: dark background corners, some bright pixels in the middle.
    let first = data.image(0);
    assert!(first[0] < 10 && first[63] < 10);
    assert!(first.iter().any(|&p| p > 200));
}

#[test]
fn a_sweep_decodes_each_split_once() {
    let mut cache = DatasetCache::default();
    let a = cache.dataset(&test_split(&bundled_data())).unwrap();
    let b = cache.dataset(&test_split(&bundled_data())).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}

#[test]
fn the_fingerprint_is_the_content_not_the_place_or_the_compression() {
    let original = fashion::locate(&test_split(&bundled_data())).unwrap();
    let plain = damaged_copy(|_, _| {});
    let copy = fashion::locate(&test_split(plain.path())).unwrap();
    assert_eq!(copy.fingerprint, original.fingerprint);
    assert!(copy.location().ends_with("t10k-images-idx3-ubyte"));

    let changed = damaged_copy(|images, _| *images.last_mut().unwrap() ^= 1);
    let other = fashion::locate(&test_split(changed.path())).unwrap();
    assert_ne!(other.fingerprint, original.fingerprint);
}

#[test]
fn missing_files_say_where_we_looked_and_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let err = fashion::locate(&test_split(empty.path())).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }));
    assert!(msg.contains(&empty.path().display().to_string()), "{msg}");
    assert!(msg.contains("t10k-images-idx3-ubyte"), "{msg}");

    let train = DataConfig { path: Some(empty.path().into()), ..DataConfig::default() };
    let msg = fashion::locate(&train).unwrap_err().to_string();
    assert!(msg.contains("dataset-fashion-mnist"), "train split names the package: {msg}");
}

fn decode_error(dir: &Path) -> String {
    let mut cache = DatasetCache::default();
    cache.dataset(&test_split(dir)).unwrap_err().to_string()
}

#[test]
fn a_truncated_image_file_is_an_error() {
    let dir = damaged_copy(|images, _| images.truncate(images.len() - 100));
    let msg = decode_error(dir.path());
    assert!(msg.contains("truncated") && msg.contains("t10k-images"), "{msg}");
}

#[test]
fn a_truncated_gzip_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let gz = std::fs::read(bundled_data().join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), &gz[..gz.len() / 3]).unwrap();
    let labels = std::fs::read(bundled_data().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), labels).unwrap();
    let msg = fashion::locate(&test_split(dir.path())).unwrap_err().to_string();
    assert!(msg.contains("gzip"), "{msg}");
}

#[test]
fn a_file_that_is_not_idx_is_an_error() {
    let dir = damaged_copy(|images, _| *images = gzip(b"<html>not found</html>"));
    let msg = decode_error(dir.path());
    assert!(msg.contains("magic"), "{msg}");
}

#[test]
fn image_and_label_counts_must_match() {
    // Drop the last label and fix the header's count, so the file itself is valid IDX.
    let dir = damaged_copy(|_, labels| {
        labels.pop();
        labels[4..8].copy_from_slice(&9_999u32.to_be_bytes());
    });
    let msg = decode_error(dir.path());
    assert!(msg.contains("10000 images") && msg.contains("9999 labels"), "{msg}");
}

/// The disk cache of decoded images: written by the first process, mapped by the next with
/// the very same pixels, and rebuilt when damaged in any of the ways a file can be.
#[test]
fn decoded_images_are_cached_on_disk_and_a_damaged_cache_is_rebuilt() {
    use dcgan_harness::data::decoded;
    let runs = tempfile::tempdir().unwrap();
    let cache_dir = runs.path().join(".cache");
    let cfg = test_split(&bundled_data());
    let decoded_here = DatasetCache::on_disk(&cache_dir).dataset(&cfg).unwrap();
    assert!(decoded_here.decoded_here && decoded_here.is_mapped(), "decoded into the cache");
    let in_memory = DatasetCache::default().dataset(&cfg).unwrap();
    assert_eq!(decoded_here.pixels(), in_memory.pixels(), "the cache holds what decoding makes");
    let shape = Shape { side: 64, channels: 1 };
    let file = decoded::path(&cache_dir, &decoded_here.source.fingerprint, shape);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len(), 132 + 10_000 * 64 * 64 + 10_000);

    let mapped = DatasetCache::on_disk(&cache_dir).dataset(&cfg).unwrap();
    assert!(mapped.is_mapped() && !mapped.decoded_here, "a cache hit");
    assert_eq!(mapped.pixels(), decoded_here.pixels());
    assert_eq!(mapped.labels, decoded_here.labels);

    let flip_a_pixel = |b: &mut Vec<u8>| b[5_000_000] ^= 1;
    let cut_short = |b: &mut Vec<u8>| b.truncate(b.len() / 2);
    let other_size = |b: &mut Vec<u8>| b[12] = 32;
    let not_ours = |b: &mut Vec<u8>| b[..8].copy_from_slice(b"PAR1PAR1");
    type Damage<'a> = (&'a str, &'a dyn Fn(&mut Vec<u8>));
    let damages: [Damage; 4] = [
        ("a flipped bit", &flip_a_pixel),
        ("half a file", &cut_short),
        ("another size in the header", &other_size),
        ("another file's magic", &not_ours),
    ];
    for (what, damage) in damages {
        let mut damaged = bytes.clone();
        damage(&mut damaged);
        std::fs::write(&file, &damaged).unwrap();
        let data = DatasetCache::on_disk(&cache_dir).dataset(&cfg).unwrap();
        assert!(data.decoded_here, "{what}: the damaged file was used");
        // Not `decoded_here`: its map shows the damage written into the file in place.
        assert_eq!(data.pixels(), in_memory.pixels(), "{what}");
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "{what}: not rebuilt whole");
    }
    let leftovers = std::fs::read_dir(file.parent().unwrap()).unwrap().count();
    assert_eq!(leftovers, 1, "no partial files left beside the cache file");
}
